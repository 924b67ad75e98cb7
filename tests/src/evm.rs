//! An EVM with the inference precompile installed, driven transaction by transaction.

use std::sync::Arc;

use alloy_evm::precompiles::PrecompileInput;
use alloy_evm::{EthEvmFactory, Evm, EvmEnv, EvmFactory, EvmInternals};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use revm::context::result::ExecutionResult;
use revm::context::{Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::precompile::PrecompileOutput;
use revm::state::AccountInfo;
use revm::{DatabaseCommit, MainContext};
use verinfer_precompile::{InferencePrecompile, ADDRESS, GENESIS_NONCE};

/// Chain id the harness runs with (anvil's).
pub const CHAIN_ID: u64 = 31337;

/// Opcode a [`proxy`] contract reaches the precompile with.
#[derive(Clone, Copy, Debug)]
pub enum CallKind {
    /// CALL, value 0.
    Call,
    /// STATICCALL.
    StaticCall,
    /// DELEGATECALL.
    DelegateCall,
    /// CALLCODE, value 0.
    CallCode,
}

/// Runtime code of a contract that forwards its calldata to the precompile with `kind`, all
/// gas, and returns or reverts with whatever comes back.
pub fn proxy(kind: CallKind) -> Vec<u8> {
    let (with_value, opcode) = match kind {
        CallKind::Call => (true, 0xf1),
        CallKind::StaticCall => (false, 0xfa),
        CallKind::DelegateCall => (false, 0xf4),
        CallKind::CallCode => (true, 0xf2),
    };
    // calldatacopy(0, 0, calldatasize); push retSize retOffset argsSize argsOffset [value]
    let mut code = vec![0x36, 0x5f, 0x5f, 0x37, 0x5f, 0x5f, 0x36, 0x5f];
    if with_value {
        code.push(0x5f);
    }
    let [hi, lo] = [ADDRESS.0[18], ADDRESS.0[19]];
    code.extend([0x61, hi, lo, 0x5a, opcode]);
    // returndatacopy(0, 0, returndatasize); jumpi(ok, success); revert(0, rds); ok: return(0, rds)
    let dest = code.len() as u8 + 10;
    code.extend([
        0x3d, 0x5f, 0x5f, 0x3e, 0x60, dest, 0x57, 0x3d, 0x5f, 0xfd, 0x5b, 0x3d, 0x5f, 0xf3,
    ]);
    code
}

/// Init code that deploys `runtime`.
pub fn deployer(runtime: &[u8]) -> Vec<u8> {
    let len = runtime.len() as u8;
    let mut code = vec![0x60, len, 0x60, 10, 0x5f, 0x39, 0x60, len, 0x5f, 0xf3];
    code.extend_from_slice(runtime);
    code
}

/// An empty state holding only the precompile account, with the nonce it needs in genesis.
pub fn genesis() -> CacheDB<EmptyDB> {
    let mut db = CacheDB::new(EmptyDB::default());
    db.insert_account_info(
        ADDRESS,
        AccountInfo {
            nonce: GENESIS_NONCE,
            ..Default::default()
        },
    );
    db
}

/// An in-memory chain: a database, the precompile, and a block number.
pub struct TestEvm {
    /// The state.
    pub db: CacheDB<EmptyDB>,
    /// The precompile installed in every EVM built.
    pub precompile: Arc<InferencePrecompile>,
    /// Number of the block transactions run in.
    pub block: u64,
    /// Install the precompile (false: an EVM without it, as forge or another node).
    pub with_precompile: bool,
}

impl TestEvm {
    /// A chain whose genesis holds the precompile account (nonce 1) and funds `accounts`.
    pub fn new(precompile: Arc<InferencePrecompile>, accounts: &[Address]) -> Self {
        let mut db = genesis();
        for a in accounts {
            db.insert_account_info(
                *a,
                AccountInfo {
                    balance: U256::from(10u128.pow(24)),
                    ..Default::default()
                },
            );
        }
        Self {
            db,
            precompile,
            block: 1,
            with_precompile: true,
        }
    }

    fn env(&self) -> EvmEnv {
        let mut env: EvmEnv = EvmEnv::default();
        env.cfg_env.chain_id = CHAIN_ID;
        env.block_env.number = U256::from(self.block);
        env.block_env.gas_limit = 60_000_000;
        env.block_env.basefee = 0;
        env
    }

    /// Execute and commit a transaction; returns its result.
    pub fn transact(
        &mut self,
        from: Address,
        to: TxKind,
        data: Vec<u8>,
        gas_limit: u64,
    ) -> ExecutionResult {
        self.transact_full(from, to, data, gas_limit, U256::ZERO)
    }

    /// Execute and commit a call carrying `value` wei, 10M gas.
    pub fn transact_with_value(
        &mut self,
        from: Address,
        to: Address,
        data: Vec<u8>,
        value: U256,
    ) -> ExecutionResult {
        self.transact_full(from, TxKind::Call(to), data, 10_000_000, value)
    }

    fn transact_full(
        &mut self,
        from: Address,
        to: TxKind,
        data: Vec<u8>,
        gas_limit: u64,
        value: U256,
    ) -> ExecutionResult {
        let nonce = self
            .db
            .cache
            .accounts
            .get(&from)
            .map_or(0, |a| a.info.nonce);
        let tx = TxEnv::builder()
            .caller(from)
            .kind(to)
            .data(Bytes::from(data))
            .gas_limit(gas_limit)
            .gas_price(0)
            .nonce(nonce)
            .value(value)
            .chain_id(Some(CHAIN_ID))
            .build_fill();
        let env = self.env();
        let mut evm = EthEvmFactory::default().create_evm(&mut self.db, env);
        if self.with_precompile {
            self.precompile.install(evm.precompiles_mut());
        }
        let outcome = match evm.transact(tx) {
            Ok(outcome) => outcome,
            Err(e) => panic!("transaction invalid: {e:?}"),
        };
        drop(evm);
        self.db.commit(outcome.state);
        outcome.result
    }

    /// Call `to` with `data` from `from`, 10M gas.
    pub fn call(&mut self, from: Address, to: Address, data: Vec<u8>) -> ExecutionResult {
        self.transact(from, TxKind::Call(to), data, 10_000_000)
    }

    /// Deploy `runtime` code through a CREATE transaction; returns the new address.
    pub fn deploy(&mut self, from: Address, runtime: &[u8]) -> Address {
        match self.transact(from, TxKind::Create, deployer(runtime), 1_000_000) {
            ExecutionResult::Success { output, .. } => match output.address() {
                Some(a) => *a,
                None => panic!("create returned no address"),
            },
            other => panic!("deployment failed: {other:?}"),
        }
    }

    /// A storage slot of the precompile account.
    pub fn precompile_slot(&self, slot: U256) -> U256 {
        self.db
            .cache
            .accounts
            .get(&ADDRESS)
            .and_then(|a| a.storage.get(&slot).copied())
            .unwrap_or_default()
    }
}

/// Call the precompile directly (no transaction around it) with `gas`, as a CALL from
/// `caller`, on an empty state with the precompile account in it.
pub fn call_direct(
    precompile: &InferencePrecompile,
    caller: Address,
    data: &[u8],
    gas: u64,
) -> PrecompileOutput {
    let db = genesis();
    let mut ctx = Context::mainnet().with_db(db);
    ctx.cfg.chain_id = CHAIN_ID;
    let _ = revm::context::JournalTr::load_account(&mut ctx.journaled_state, ADDRESS);
    let input = PrecompileInput {
        data,
        gas,
        reservoir: 0,
        caller,
        value: U256::ZERO,
        target_address: ADDRESS,
        is_static: false,
        bytecode_address: ADDRESS,
        internals: EvmInternals::from_context(&mut ctx),
    };
    match precompile.call(input) {
        Ok(out) => out,
        Err(e) => panic!("fatal precompile error: {e}"),
    }
}
