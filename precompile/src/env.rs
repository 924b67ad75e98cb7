//! What a call sees of the EVM around it.
//!
//! The precompile's logic runs against [`CallEnv`], not against revm directly, so the same code
//! answers a call inside the node's EVM ([`PrecompileInput`]) and a call handed over by the
//! Solidity shim at `0xA00` in an EVM without the precompile (forge, through `verinfer ffi`,
//! with a [`MemoryEnv`] that collects the writes for the shim to replay).

use std::collections::BTreeMap;

use alloy_evm::precompiles::PrecompileInput;
use alloy_primitives::{Address, Log, U256};

use crate::ADDRESS;

/// The context of one call to the precompile and the state it may touch (its own storage and
/// logs).
pub trait CallEnv {
    /// Gas available to the call.
    fn gas_limit(&self) -> u64;
    /// `msg.sender`.
    fn caller(&self) -> Address;
    /// `msg.value`.
    fn value(&self) -> U256;
    /// Called with CALL or STATICCALL (not DELEGATECALL or CALLCODE).
    fn is_direct_call(&self) -> bool;
    /// In a STATICCALL context.
    fn is_static_call(&self) -> bool;
    /// `block.chainid`.
    fn chain_id(&self) -> u64;
    /// `block.number`.
    fn block_number(&self) -> U256;
    /// Read a slot of the precompile's storage.
    fn sload(&mut self, slot: U256) -> Result<U256, String>;
    /// Write a slot of the precompile's storage.
    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), String>;
    /// Emit a log.
    fn log(&mut self, log: Log);
}

impl CallEnv for PrecompileInput<'_> {
    fn gas_limit(&self) -> u64 {
        self.gas
    }
    fn caller(&self) -> Address {
        self.caller
    }
    fn value(&self) -> U256 {
        self.value
    }
    fn is_direct_call(&self) -> bool {
        PrecompileInput::is_direct_call(self)
    }
    fn is_static_call(&self) -> bool {
        PrecompileInput::is_static_call(self)
    }
    fn chain_id(&self) -> u64 {
        self.internals().chain_id()
    }
    fn block_number(&self) -> U256 {
        self.internals().block_number()
    }
    fn sload(&mut self, slot: U256) -> Result<U256, String> {
        // Reached through the facade at 0xF4, 0xA00 may not be in the journal yet.
        self.internals_mut()
            .load_account(ADDRESS)
            .map_err(|e| e.to_string())?;
        self.internals_mut()
            .sload(ADDRESS, slot)
            .map(|s| s.data)
            .map_err(|e| e.to_string())
    }
    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), String> {
        self.internals_mut()
            .load_account(ADDRESS)
            .map_err(|e| e.to_string())?;
        self.internals_mut()
            .sstore(ADDRESS, slot, value)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn log(&mut self, log: Log) {
        self.internals_mut().log(log);
    }
}

/// A call context held in memory: storage reads come from `storage` (zero elsewhere), writes
/// and logs are collected in order.
#[derive(Clone, Debug, Default)]
pub struct MemoryEnv {
    /// Gas available to the call.
    pub gas_limit: u64,
    /// `msg.sender`.
    pub caller: Address,
    /// `msg.value`.
    pub value: U256,
    /// Called with CALL or STATICCALL.
    pub direct: bool,
    /// In a STATICCALL context.
    pub is_static: bool,
    /// `block.chainid`.
    pub chain_id: u64,
    /// `block.number`.
    pub block_number: U256,
    /// The precompile's storage as the call finds it, with the call's writes applied.
    pub storage: BTreeMap<U256, U256>,
    /// Every write, in order.
    pub writes: Vec<(U256, U256)>,
    /// Every log, in order.
    pub logs: Vec<Log>,
}

impl CallEnv for MemoryEnv {
    fn gas_limit(&self) -> u64 {
        self.gas_limit
    }
    fn caller(&self) -> Address {
        self.caller
    }
    fn value(&self) -> U256 {
        self.value
    }
    fn is_direct_call(&self) -> bool {
        self.direct
    }
    fn is_static_call(&self) -> bool {
        self.is_static
    }
    fn chain_id(&self) -> u64 {
        self.chain_id
    }
    fn block_number(&self) -> U256 {
        self.block_number
    }
    fn sload(&mut self, slot: U256) -> Result<U256, String> {
        Ok(self.storage.get(&slot).copied().unwrap_or_default())
    }
    fn sstore(&mut self, slot: U256, value: U256) -> Result<(), String> {
        self.storage.insert(slot, value);
        self.writes.push((slot, value));
        Ok(())
    }
    fn log(&mut self, log: Log) {
        self.logs.push(log);
    }
}
