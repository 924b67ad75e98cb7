//! Devnet controls: `evm_*`, `anvil_*` and their `hardhat_*` aliases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256, U64};
use jsonrpsee::types::Params;
use jsonrpsee::RpcModule;
use revm::state::Bytecode;
use serde::{Deserialize, Serialize};

use super::{invalid_params, rpc_error, RpcResult, SERVER_ERROR};
use crate::chain::ChainConfig;
use crate::fork::{Fork, ForkConfig};
use crate::node::{MiningMode, Node};
use crate::state::{AccountChange, AccountState, StateDiff};

/// One account of an `anvil_dumpState` dump.
#[derive(Debug, Serialize, Deserialize)]
struct DumpedAccount {
    nonce: u64,
    balance: U256,
    code: Bytes,
    storage: BTreeMap<U256, U256>,
}

/// The `anvil_dumpState` format (hex-encoded JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Dump {
    accounts: BTreeMap<Address, DumpedAccount>,
}

/// Apply one account edit read from the current state.
fn edit(
    node: &Node,
    address: Address,
    f: impl FnOnce(&mut AccountState, &mut StateDiff),
) -> RpcResult<()> {
    let mut chain = node.chain();
    let mut account = chain
        .world()
        .account(&address)
        .map_err(crate::chain::ChainError::from)?
        .unwrap_or_default();
    let mut diff = StateDiff::default();
    f(&mut account, &mut diff);
    diff.set_account(address, account);
    chain.edit_state(diff)?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MineParams {
    Timestamp(U64),
    Options {
        timestamp: Option<U64>,
        blocks: Option<U64>,
    },
}

/// Most blocks one `evm_mine` / `anvil_mine` call may mine.
const MAX_BLOCKS_PER_CALL: u64 = 1_000_000;

fn mine_blocks(
    node: &Node,
    blocks: u64,
    interval: Option<u64>,
    first_timestamp: Option<u64>,
) -> RpcResult<()> {
    let mut timestamp = first_timestamp;
    for _ in 0..blocks {
        let mined = node.mine(timestamp)?;
        timestamp = interval.map(|i| mined.block.header.timestamp + i.max(1));
    }
    Ok(())
}

pub(super) fn register(m: &mut RpcModule<Node>) -> anyhow::Result<()> {
    m.register_blocking_method("evm_mine", |p, n, _| evm_mine(p, &n))?;
    m.register_blocking_method("anvil_mine", |p, n, _| anvil_mine(p, &n))?;
    m.register_alias("hardhat_mine", "anvil_mine")?;
    m.register_method("evm_snapshot", |_, n, _| -> RpcResult<_> {
        Ok(U256::from(n.chain().snapshot()))
    })?;
    m.register_method("evm_revert", |p, n, _| -> RpcResult<bool> {
        let id: U256 = p.one()?;
        Ok(n.chain().revert(id.saturating_to())?)
    })?;
    // anvil answers null.
    m.register_method("evm_setAutomine", |p, n, _| evm_set_automine(p, n))?;
    m.register_alias("anvil_setAutomine", "evm_setAutomine")?;
    m.register_method("anvil_getAutomine", |_, n, _| -> RpcResult<_> {
        Ok(n.mining() == MiningMode::Auto)
    })?;
    m.register_alias("hardhat_getAutomine", "anvil_getAutomine")?;
    m.register_method("evm_setIntervalMining", |p, n, _| {
        evm_set_interval_mining(p, n)
    })?;
    m.register_alias("anvil_setIntervalMining", "evm_setIntervalMining")?;
    m.register_method("evm_increaseTime", |p, n, _| -> RpcResult<i64> {
        let seconds: U256 = p.one()?;
        Ok(n.chain().increase_time(seconds.saturating_to()))
    })?;
    m.register_alias("anvil_increaseTime", "evm_increaseTime")?;
    m.register_method("evm_setNextBlockTimestamp", |p, n, _| -> RpcResult<()> {
        let timestamp: U256 = p.one()?;
        Ok(n.chain().set_next_timestamp(timestamp.saturating_to())?)
    })?;
    m.register_alias("anvil_setNextBlockTimestamp", "evm_setNextBlockTimestamp")?;
    m.register_method("anvil_setBalance", |p, n, _| -> RpcResult<()> {
        let (address, balance): (Address, U256) = p.parse()?;
        edit(n, address, |a, _| a.balance = balance)
    })?;
    m.register_alias("hardhat_setBalance", "anvil_setBalance")?;
    m.register_method("anvil_setNonce", |p, n, _| -> RpcResult<()> {
        let (address, nonce): (Address, U256) = p.parse()?;
        edit(n, address, |a, _| a.nonce = nonce.saturating_to())
    })?;
    m.register_alias("hardhat_setNonce", "anvil_setNonce")?;
    m.register_method("anvil_setCode", |p, n, _| anvil_set_code(p, n))?;
    m.register_alias("hardhat_setCode", "anvil_setCode")?;
    m.register_method("anvil_setStorageAt", |p, n, _| anvil_set_storage_at(p, n))?;
    m.register_alias("hardhat_setStorageAt", "anvil_setStorageAt")?;
    m.register_method("anvil_impersonateAccount", |p, n, _| -> RpcResult<()> {
        let address: Address = p.one()?;
        n.chain().impersonated.insert(address);
        Ok(())
    })?;
    m.register_alias("hardhat_impersonateAccount", "anvil_impersonateAccount")?;
    m.register_method(
        "anvil_stopImpersonatingAccount",
        |p, n, _| -> RpcResult<()> {
            let address: Address = p.one()?;
            n.chain().impersonated.remove(&address);
            Ok(())
        },
    )?;
    m.register_alias(
        "hardhat_stopImpersonatingAccount",
        "anvil_stopImpersonatingAccount",
    )?;
    m.register_method("anvil_dumpState", |_, n, _| anvil_dump_state(n))?;
    m.register_alias("hardhat_dumpState", "anvil_dumpState")?;
    m.register_method("anvil_loadState", |p, n, _| anvil_load_state(p, n))?;
    m.register_alias("hardhat_loadState", "anvil_loadState")?;
    m.register_alias("anvil_snapshot", "evm_snapshot")?;
    m.register_alias("anvil_revert", "evm_revert")?;
    m.register_method("anvil_reset", |p, n, _| anvil_reset(p, n))?;
    m.register_alias("hardhat_reset", "anvil_reset")?;
    m.register_method(
        "anvil_dropTransaction",
        |p, n, _| -> RpcResult<Option<B256>> {
            let hash: B256 = p.one()?;
            Ok(n.chain().drop_transaction(&hash))
        },
    )?;
    m.register_alias("hardhat_dropTransaction", "anvil_dropTransaction")?;
    m.register_method("anvil_setCoinbase", |p, n, _| -> RpcResult<()> {
        let coinbase: Address = p.one()?;
        n.chain().block_params.coinbase = coinbase;
        Ok(())
    })?;
    m.register_alias("hardhat_setCoinbase", "anvil_setCoinbase")?;
    m.register_method("anvil_setNextBlockBaseFeePerGas", |p, n, _| {
        anvil_set_next_block_base_fee_per_gas(p, n)
    })?;
    m.register_alias(
        "hardhat_setNextBlockBaseFeePerGas",
        "anvil_setNextBlockBaseFeePerGas",
    )?;
    m.register_method("anvil_setBlockGasLimit", |p, n, _| {
        anvil_set_block_gas_limit(p, n)
    })?;
    m.register_method("anvil_nodeInfo", |_, n, _| anvil_node_info(n))?;
    m.register_method("anvil_metadata", |_, n, _| anvil_metadata(n))?;
    m.register_alias("hardhat_metadata", "anvil_metadata")?;
    Ok(())
}
/// `evm_mine`.
fn evm_mine(p: Params<'_>, n: &Node) -> RpcResult<String> {
    let params: Option<MineParams> = p.sequence().optional_next()?;
    let (timestamp, blocks) = match params {
        None => (None, 1),
        Some(MineParams::Timestamp(t)) => (Some(t.to()), 1),
        Some(MineParams::Options { timestamp, blocks }) => (
            timestamp.map(|t| t.saturating_to()),
            blocks.map_or(1, |b| b.saturating_to()),
        ),
    };
    if blocks > MAX_BLOCKS_PER_CALL {
        return Err(invalid_params("at most 1000000 blocks per call"));
    }
    mine_blocks(n, blocks, None, timestamp)?;
    Ok("0x0".into())
}

/// `anvil_mine`.
fn anvil_mine(p: Params<'_>, n: &Node) -> RpcResult<()> {
    let mut seq = p.sequence();
    let blocks: Option<U256> = seq.optional_next()?;
    let interval: Option<U256> = seq.optional_next()?;
    let blocks: u64 = blocks.map_or(1, |b| b.saturating_to());
    if blocks > MAX_BLOCKS_PER_CALL {
        return Err(invalid_params("at most 1000000 blocks per call"));
    }
    mine_blocks(n, blocks, interval.map(|i| i.saturating_to()), None)
}

/// `evm_setAutomine`.
fn evm_set_automine(p: Params<'_>, n: &Node) -> RpcResult<()> {
    let on: bool = p.one()?;
    n.set_mining(if on {
        MiningMode::Auto
    } else {
        MiningMode::Manual
    });
    if on {
        let has_ready = n.chain().has_ready();
        if has_ready {
            n.mine(None)?;
        }
    }
    Ok(())
}

/// `evm_setIntervalMining`.
fn evm_set_interval_mining(p: Params<'_>, n: &Node) -> RpcResult<bool> {
    let seconds: u64 = p.one()?;
    n.set_mining(match seconds {
        0 => MiningMode::Manual,
        s => MiningMode::Interval(Duration::from_secs(s)),
    });
    Ok(true)
}

/// `anvil_setCode`.
fn anvil_set_code(p: Params<'_>, n: &Node) -> RpcResult<()> {
    let (address, code): (Address, Bytes) = p.parse()?;
    edit(n, address, |a, diff| {
        let hash = keccak256(&code);
        a.code_hash = if code.is_empty() {
            revm::primitives::KECCAK_EMPTY
        } else {
            hash
        };
        if !code.is_empty() {
            diff.codes.insert(hash, Bytecode::new_raw(code));
        }
    })
}

/// `anvil_setStorageAt`.
fn anvil_set_storage_at(p: Params<'_>, n: &Node) -> RpcResult<bool> {
    let (address, slot, value): (Address, U256, B256) = p.parse()?;
    let mut chain = n.chain();
    let mut diff = StateDiff::default();
    diff.set_storage(address, slot, value.into());
    // On a fork the account's header comes from the remote first, so the edit keeps it.
    match chain
        .world()
        .account(&address)
        .map_err(crate::chain::ChainError::from)?
    {
        Some(account) => diff.set_account(address, account),
        None => diff.set_account(address, AccountState::default()),
    }
    chain.edit_state(diff)?;
    Ok(true)
}

/// `anvil_dumpState`.
fn anvil_dump_state(n: &Node) -> RpcResult<Bytes> {
    let chain = n.chain();
    let world = chain.world();
    let accounts = world
        .accounts()
        .map(|(address, state, storage)| {
            let code = world
                .code(&state.code_hash)
                .map(|c| c.original_bytes())
                .unwrap_or_default();
            (
                *address,
                DumpedAccount {
                    nonce: state.nonce,
                    balance: state.balance,
                    code,
                    storage: storage.iter().map(|(k, v)| (*k, *v)).collect(),
                },
            )
        })
        .collect();
    let json = serde_json::to_vec(&Dump { accounts })
        .map_err(|e| super::rpc_error(super::INTERNAL_ERROR, e.to_string()))?;
    Ok(json.into())
}

/// `anvil_loadState`.
fn anvil_load_state(p: Params<'_>, n: &Node) -> RpcResult<bool> {
    let bytes: Bytes = p.one()?;
    let dump: Dump = serde_json::from_slice(&bytes)
        .map_err(|e| invalid_params(format!("not a state dump: {e}")))?;
    let mut diff = StateDiff::default();
    for (address, account) in dump.accounts {
        let code_hash = if account.code.is_empty() {
            revm::primitives::KECCAK_EMPTY
        } else {
            let hash = keccak256(&account.code);
            diff.codes.insert(hash, Bytecode::new_raw(account.code));
            hash
        };
        diff.accounts.insert(
            address,
            AccountChange {
                state: Some(AccountState {
                    nonce: account.nonce,
                    balance: account.balance,
                    code_hash,
                }),
                storage_cleared: true,
                storage: account.storage.into_iter().collect(),
            },
        );
    }
    n.chain().load_state(diff)?;
    Ok(true)
}

/// `anvil_reset` / `hardhat_reset`, as anvil and hardhat do them: with `forking:
/// {jsonRpcUrl, blockNumber}`, start over on a fork of that remote at that block (the current
/// fork's URL when none is given, its latest block when no number is); without, a fresh
/// chain, which on a fork means leaving it. A fork on a data dir is bound to its fork block:
/// there, a reset without `forking` goes back to the fork block and re-pointing is refused.
fn anvil_reset(p: Params<'_>, n: &Node) -> RpcResult<()> {
    let options: Option<ResetOptions> = p.sequence().optional_next()?;
    let forking = options.and_then(|o| o.forking);
    let (current, chain_id) = {
        let chain = n.chain();
        (chain.config().fork.clone(), chain.config().chain_id)
    };
    if n.config.data_dir.is_some() {
        return match (forking, current) {
            (None, _) => Ok(n.chain().reset()?),
            (Some(_), _) => Err(invalid_params(
                "anvil_reset with `forking` is not available on a data dir, which is bound to \
             its chain: start another node (another --data-dir, or none) with --fork-url URL \
             [--fork-block-number N]; anvil_reset with no arguments goes back to the chain's \
             first block",
            )),
        };
    }
    let Some(forking) = forking else {
        return match current {
            None => Ok(n.chain().reset()?),
            Some(_) => Ok(n
                .chain()
                .start_over(ChainConfig::for_node(&n.config, &n.signers, chain_id, None))?),
        };
    };
    let mut fork_config = n.config.fork.clone().unwrap_or_else(|| ForkConfig {
        url: String::new(),
        block_number: None,
        chain_id: None,
        retries: ForkConfig::DEFAULT_RETRIES,
        timeout_ms: ForkConfig::DEFAULT_TIMEOUT_MS,
    });
    fork_config.url = match (forking.json_rpc_url, &current) {
        (Some(url), _) => url,
        (None, Some(fork)) => fork.point().url.clone(),
        (None, None) => {
            return Err(invalid_params(
                "anvil_reset: `forking.jsonRpcUrl` is required on a chain that is not a fork",
            ))
        }
    };
    fork_config.block_number = forking.block_number.map(|n| n.to());
    // Reaching the remote takes time: the chain keeps serving meanwhile.
    let fork = super::eth::in_place(|| Fork::connect(&fork_config))
        .map_err(|e| rpc_error(SERVER_ERROR, format!("anvil_reset: {e}")))?;
    let remote = fork.point().remote_chain_id;
    if fork_config.chain_id.is_none() && remote != chain_id {
        return Err(invalid_params(format!(
            "anvil_reset: {} is chain {remote}, this node runs chain {chain_id}: start another \
             node to fork it (or this one with --fork-chain-id)",
            fork_config.url
        )));
    }
    let fork = Some(Arc::new(fork));
    let config = ChainConfig::for_node(&n.config, &n.signers, chain_id, fork);
    Ok(n.chain().start_over(config)?)
}

/// `anvil_reset`'s optional argument.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetOptions {
    forking: Option<ResetForking>,
}

/// What `forking` names: the remote and the block (hardhat's and anvil's spelling).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetForking {
    #[serde(alias = "jsonRpcURL")]
    json_rpc_url: Option<String>,
    block_number: Option<U64>,
}

/// `anvil_setNextBlockBaseFeePerGas`.
fn anvil_set_next_block_base_fee_per_gas(p: Params<'_>, n: &Node) -> RpcResult<()> {
    let fee: U256 = p.one()?;
    let fee = u64::try_from(fee).map_err(|_| invalid_params("base fee does not fit 64 bits"))?;
    n.chain().block_params.next_base_fee = Some(fee);
    Ok(())
}

/// `anvil_setBlockGasLimit`.
fn anvil_set_block_gas_limit(p: Params<'_>, n: &Node) -> RpcResult<bool> {
    let limit: U256 = p.one()?;
    let limit = u64::try_from(limit)
        .ok()
        .filter(|l| *l >= MIN_GAS_LIMIT)
        .ok_or_else(|| {
            invalid_params(format!(
                "gas limit must be between {MIN_GAS_LIMIT} and 2^64 - 1"
            ))
        })?;
    n.chain().block_params.gas_limit = limit;
    Ok(true)
}

/// `anvil_nodeInfo`.
fn anvil_node_info(n: &Node) -> RpcResult<serde_json::Value> {
    let chain = n.chain();
    let head = &chain.head().header;
    Ok(serde_json::json!({
        "currentBlockNumber": U64::from(head.number),
        "currentBlockTimestamp": head.timestamp,
        "currentBlockHash": chain.head().hash,
        "hardFork": format!("{:?}", revm::primitives::hardfork::SpecId::default()),
        "transactionOrder": "fees",
        "environment": {
            "baseFee": U256::from(chain.next_base_fee()),
            "chainId": n.config.chain_id,
            "gasLimit": U256::from(chain.block_params.gas_limit),
            "gasPrice": U256::from(u128::from(chain.next_base_fee()) + super::eth::DEFAULT_PRIORITY_FEE),
        },
        "forkConfig": match &chain.config().fork {
            Some(fork) => serde_json::json!({
                "forkUrl": fork.point().url,
                "forkBlockNumber": fork.point().number(),
                "forkRetryBackoff": crate::fork::RETRY_BACKOFF.as_millis() as u64,
            }),
            None => serde_json::json!({"forkUrl": null, "forkBlockNumber": null, "forkRetryBackoff": null}),
        },
    }))
}

/// `anvil_metadata`.
fn anvil_metadata(n: &Node) -> RpcResult<serde_json::Value> {
    let chain = n.chain();
    let head = chain.head();
    Ok(serde_json::json!({
        "clientVersion": super::eth::CLIENT_VERSION,
        "clientSemver": env!("CARGO_PKG_VERSION"),
        "clientCommitSha": option_env!("VERINFER_GIT_SHA"),
        "chainId": n.config.chain_id,
        "instanceId": n.instance_id,
        "latestBlockNumber": head.header.number,
        "latestBlockHash": head.hash,
        "forkedNetwork": chain.config().fork.as_ref().map(|fork| serde_json::json!({
            "chainId": fork.point().remote_chain_id,
            "forkBlockNumber": fork.point().number(),
            "forkBlockHash": fork.point().header.hash,
        })),
        "snapshots": {},
    }))
}

/// Lowest block gas limit `anvil_setBlockGasLimit` accepts: one plain transfer.
const MIN_GAS_LIMIT: u64 = 21_000;
