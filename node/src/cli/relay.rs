//! `verinfer relay`: prove a validator network's record on another EVM chain through
//! `InferenceLightClient` (submit the finalized header it needs, then `verifyInference`), and
//! `verinfer relay deploy`: put a light client for a network's group key on that chain.

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, B256, U256, U64};
use anyhow::{bail, Context, Result};
use serde_json::json;
use verinfer_node::client::Client;
use verinfer_node::consensus::Genesis;
use verinfer_node::light_client::{self, IInferenceLightClient, Sender};
use verinfer_node::wire::BlockCertificateJson;

/// `verinfer relay`'s arguments: a record to prove, or `deploy`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct RelayArgs {
    #[command(subcommand)]
    deploy: Option<RelayCommand>,
    /// The validator network's JSON-RPC URL (any validator).
    #[arg(long, value_name = "URL", required = true)]
    from: Option<String>,
    /// The target chain's JSON-RPC URL (any Prague EVM: EIP-2537's precompiles).
    #[arg(long, value_name = "URL", required = true)]
    to: Option<String>,
    /// The light client's address on the target chain (from `verinfer relay deploy`).
    #[arg(long, value_name = "ADDR", required = true)]
    light_client: Option<Address>,
    /// The record to prove (its id: `verinfer_getInference`'s `id`).
    #[arg(long, value_name = "ID", required = true)]
    record: Option<U256>,
    /// Prove the record at this finalized block [default: the latest finalized block].
    #[arg(long, value_name = "N")]
    block: Option<u64>,
    /// The target chain account that pays for `submitHeader`.
    #[arg(long, env = "ETH_PRIVATE_KEY", value_name = "KEY", required = true)]
    private_key: Option<B256>,
}

#[derive(clap::Subcommand)]
enum RelayCommand {
    /// Deploy `InferenceLightClient` for a network's group key (from its genesis.json) on the
    /// target chain and print its address.
    Deploy {
        /// The validator network's genesis.json (its group key and chain id).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
        /// The target chain's JSON-RPC URL.
        #[arg(long, value_name = "URL")]
        to: String,
        /// A validator's JSON-RPC URL: checked to serve the genesis's chain.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The target chain account that pays for the deployment.
        #[arg(long, env = "ETH_PRIVATE_KEY", value_name = "KEY")]
        private_key: B256,
    },
}

/// Run `verinfer relay` or `verinfer relay deploy`; false when the light client refused.
pub(crate) fn relay(args: &RelayArgs) -> Result<bool> {
    if let Some(RelayCommand::Deploy {
        genesis,
        to,
        from,
        private_key,
    }) = &args.deploy
    {
        return deploy(genesis, to, from.as_deref(), *private_key).map(|_| true);
    }
    let (Some(from), Some(to), Some(light_client), Some(record), Some(key)) = (
        &args.from,
        &args.to,
        args.light_client,
        args.record,
        args.private_key,
    ) else {
        bail!("--from, --to, --light-client, --record and --private-key are all needed");
    };
    prove(from, to, light_client, record, args.block, key)
}

fn deploy(genesis: &std::path::Path, to: &str, from: Option<&str>, key: B256) -> Result<()> {
    let genesis = Genesis::read(genesis)?;
    let group_key = genesis.group_key_eip2537()?;
    if let Some(from) = from {
        let source = Client::new(from)?;
        let chain_id: U64 = source
            .call("eth_chainId", json!([]))
            .with_context(|| format!("eth_chainId of {from}"))?;
        if chain_id.to::<u64>() != genesis.chain_id {
            bail!(
                "{from} serves chain {chain_id}, the genesis is chain {}",
                genesis.chain_id
            );
        }
    }
    let target = Client::new(to)?;
    let sender = Sender::new(&target, key)?;
    let address = light_client::deploy(&sender, group_key, genesis.chain_id)
        .with_context(|| format!("deploying the light client on {to}"))?;
    eprintln!(
        "light client for chain {} deployed on {to} by {}",
        genesis.chain_id,
        sender.address()
    );
    out!("{address}");
    Ok(())
}

fn prove(
    from: &str,
    to: &str,
    address: Address,
    id: U256,
    block: Option<u64>,
    key: B256,
) -> Result<bool> {
    let source = Client::new(from)?;
    let target = Client::new(to)?;
    let block = match block {
        Some(block) => block,
        None => {
            let head: Option<serde_json::Value> = source
                .call("eth_getBlockByNumber", json!(["finalized", false]))
                .with_context(|| format!("the finalized block of {from}"))?;
            let number = head
                .as_ref()
                .and_then(|h| h.get("number"))
                .and_then(|n| serde_json::from_value::<U64>(n.clone()).ok())
                .context("the network has no finalized block yet")?;
            number.to()
        }
    };
    let certificate: Option<BlockCertificateJson> = source
        .call("verinfer_getBlockCertificate", json!([block]))
        .with_context(|| format!("the certificate of block {block}"))?;
    let certificate = certificate.with_context(|| format!("block {block} is not finalized"))?;
    // The proof is checked against the certified block's state: the same as or a descendant of
    // `block`, and records are never removed.
    let proven = certificate.block_number;
    let known = light_client::call(
        &target,
        address,
        &IInferenceLightClient::stateRootsCall { number: proven },
    )
    .map_err(|e| anyhow::anyhow!("reading the light client at {address}: {e}"))?;
    if known == certificate.state_root {
        eprintln!("block {proven}: header already on the light client");
    } else {
        let sender = Sender::new(&target, key)?;
        let call = light_client::submit_header_call(&certificate);
        let receipt = sender
            .send(Some(address), alloy_sol_types::SolCall::abi_encode(&call))
            .with_context(|| format!("submitting the header of block {proven}"))?;
        let gas: U64 = serde_json::from_value(receipt["gasUsed"].clone()).unwrap_or_default();
        eprintln!("block {proven}: header submitted (gas {gas})");
    }
    let (account_proof, storage_proofs, count) = light_client::record_proof(&source, proven, id)?;
    if id.is_zero() || id > count {
        eprintln!("record {id} is not in block {proven}'s state ({count} records)");
    }
    let verify = IInferenceLightClient::verifyInferenceCall {
        blockNumber: proven,
        recordId: id,
        accountProof: account_proof,
        storageProofs: storage_proofs,
    };
    match light_client::call(&target, address, &verify) {
        Ok(record) => {
            let data = Bytes::from(alloy_sol_types::SolCall::abi_encode(&verify));
            let gas: Option<U64> = target
                .call("eth_estimateGas", json!([{"to": address, "data": &data}]))
                .ok();
            out!("record {id} proven at block {proven}");
            out!("model: {}", record.modelId);
            out!("input hash: {}", record.inputHash);
            out!("output hash: {}", record.outputHash);
            out!("caller: {}", record.caller);
            out!("recorded in block: {}", record.blockNumber);
            for (i, tensor) in record.outputs.iter().enumerate() {
                out!(
                    "output {i}: shape {:?}, decimals {}, {:?}",
                    tensor.shape,
                    tensor.decimals,
                    tensor.values
                );
            }
            if let Some(gas) = gas {
                out!(
                    "verifyInference gas: {gas} as a transaction ({})",
                    light_client::gas_split(gas.to::<u64>(), &data)
                );
            }
            Ok(true)
        }
        Err(reason) => {
            eprintln!("verifyInference refused record {id} at block {proven}: {reason}");
            Ok(false)
        }
    }
}
