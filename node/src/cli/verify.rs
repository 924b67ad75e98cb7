//! `verinfer verify` (a whole chain) and `verinfer verify-inference` (one record).

use std::path::PathBuf;

use alloy_primitives::B256;
use anyhow::{bail, Result};
use verinfer_node::client::Client;
use verinfer_node::consensus::{check_finalization, Genesis};
use verinfer_node::proof::StateRootSource;
use verinfer_node::replay::Mismatch;
use verinfer_node::storage::StoredFinalization;
use verinfer_node::tensor::format_tensor;

#[derive(clap::Args)]
pub(crate) struct VerifyInferenceArgs {
    /// The inference id (decimal or 0x hex), as `infer` returned it.
    id: alloy_primitives::U256,
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// The attester the signature must recover to (default: the node's).
    #[arg(long, value_name = "ADDRESS")]
    attester: Option<alloy_primitives::Address>,
    /// Print the proof report as JSON.
    #[arg(long)]
    json: bool,
    /// Also prove the record's storage slots against a block's state root (eth_getProof), so
    /// the record is shown to be in the chain's committed state: the latest block's, as the
    /// node says, or with --genesis the certified block's.
    #[arg(long)]
    proof: bool,
    /// A validator network's genesis.json: prove the record against the block its
    /// finalization certificate names, the certificate checked against the genesis group key
    /// (implies --proof).
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["rpc", "data_dir"])))]
pub(crate) struct VerifyArgs {
    /// A running node to verify.
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
    /// A node's data directory to verify (a copy, or of a stopped node).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Report every mismatch instead of stopping at the first.
    #[arg(long)]
    keep_going: bool,
    /// The attester signatures must recover to (default: the node's, or the first record's).
    #[arg(long, value_name = "ADDRESS")]
    attester: Option<alloy_primitives::Address>,
    /// Threads re-running models beside the EVM replay (default: one per core; 0 re-runs each
    /// model on the replay's thread).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// A validator network's genesis file: also check that every block carries a finalization
    /// certificate signed by a quorum of its validators.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// On a fork: the remote whose state below the fork block the replay reads (default: the
    /// URL the fork was made from); it must hold the same fork block.
    #[arg(long, value_name = "URL")]
    fork_url: Option<String>,
}

/// `verinfer verify`: replay, print a report, succeed only if nothing differed.
pub(crate) fn verify(args: &VerifyArgs) -> Result<bool> {
    use verinfer_node::replay::{self, data_dir::DataDir, rpc::Rpc, Options, Source};
    let source: Box<dyn Source> = match (&args.rpc, &args.data_dir) {
        (Some(url), _) => Box::new(Rpc::new(url)?),
        (None, Some(dir)) => Box::new(DataDir::open(dir)?),
        (None, None) => bail!("give --rpc URL or --data-dir DIR"),
    };
    let options = Options {
        keep_going: args.keep_going,
        attester: args.attester,
        threads: args.threads,
        fork_url: args.fork_url.clone(),
    };
    let bar = indicatif::ProgressBar::new(0);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "replaying {bar:40} block {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut report = replay::replay(source.as_ref(), &options, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    // The data dir's database opens once per process.
    drop(source);
    let validators = match &args.genesis {
        Some(path) => {
            let genesis = Genesis::read(path)?;
            let certificates = Certificates::open(args)?;
            report
                .mismatches
                .extend(certificates.check(&genesis, report.blocks)?);
            Some(genesis.validators.len())
        }
        None => None,
    };
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(report.mismatches.is_empty());
    }
    let secs = report.elapsed.as_secs_f64();
    out!(
        "replayed {} blocks, {} transactions, {} inferences over {} models in {:.2} s ({:.0} blocks/s)",
        report.blocks,
        report.transactions,
        report.inferences,
        report.models,
        secs,
        report.blocks as f64 / secs.max(1e-9)
    );
    out!("attester   {}", report.attester);
    out!("state root {}", report.state_root);
    if report.impersonated > 0 {
        out!(
            "impersonated {} transactions carry no signature: executed as sent by the sender the chain recorded",
            report.impersonated
        );
    }
    if let Some(fork) = &report.forked_from {
        out!(
            "fork       blocks after {} replayed over the state of {} at that block, as it serves it",
            fork.block,
            fork.url
        );
    }
    if let (Some(n), true) = (validators, report.mismatches.is_empty()) {
        out!("certificates: every block finalized by a quorum of the {n} genesis validators");
    }
    if report.mismatches.is_empty() {
        out!("OK: every block, receipt, inference and attestation checks out");
        return Ok(true);
    }
    out!("MISMATCH ({}):", report.mismatches.len());
    for m in &report.mismatches {
        out!("  {m}");
    }
    if !args.keep_going {
        out!("(stopped at the first; --keep-going lists them all)");
    }
    Ok(false)
}

/// Where `verify --genesis` reads each block's hash and finalization.
enum Certificates {
    Rpc(Client),
    DataDir(verinfer_node::storage::Storage),
}

impl Certificates {
    fn open(args: &VerifyArgs) -> Result<Self> {
        Ok(match (&args.rpc, &args.data_dir) {
            (Some(url), _) => Self::Rpc(Client::new(url)?),
            (None, Some(dir)) => Self::DataDir(verinfer_node::storage::Storage::open(
                &dir.join("chain.redb"),
            )?),
            (None, None) => bail!("give --rpc URL or --data-dir DIR"),
        })
    }

    fn hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(match self {
            Self::Rpc(client) => client
                .call::<Option<serde_json::Value>>(
                    "eth_getBlockByNumber",
                    serde_json::json!([format!("0x{number:x}"), false]),
                )?
                .and_then(|b| b["hash"].as_str().and_then(|h| h.parse().ok())),
            Self::DataDir(storage) => storage.block(number)?.map(|b| b.hash),
        })
    }

    fn finalization(&self, number: u64) -> Result<Option<StoredFinalization>> {
        Ok(match self {
            Self::Rpc(client) => {
                client.call("verinfer_getFinalization", serde_json::json!([number]))?
            }
            Self::DataDir(storage) => storage.finalization(number)?,
        })
    }

    /// A mismatch for every block 1..=`head` without a valid certificate.
    fn check(&self, genesis: &Genesis, head: u64) -> Result<Vec<Mismatch>> {
        let mut mismatches = Vec::new();
        for number in 1..=head {
            let Some(finalization) = self.finalization(number)? else {
                mismatches.push(Mismatch::block(number, "no finalization certificate"));
                continue;
            };
            if finalization.certified_block < number {
                mismatches.push(Mismatch::block(
                    number,
                    format!(
                        "finalized by block {}, an earlier one",
                        finalization.certified_block
                    ),
                ));
                continue;
            }
            let Some(certified) = self.hash(finalization.certified_block)? else {
                mismatches.push(Mismatch::block(
                    number,
                    format!(
                        "certified by block {}, which the chain lacks",
                        finalization.certified_block
                    ),
                ));
                continue;
            };
            if let Err(what) = check_finalization(genesis, certified, &finalization) {
                mismatches.push(Mismatch::block(number, what));
            }
        }
        Ok(mismatches)
    }
}

pub(crate) fn verify_inference(args: &VerifyInferenceArgs) -> Result<bool> {
    let client = Client::new(&args.rpc)?;
    let genesis = args.genesis.as_deref().map(Genesis::read).transpose()?;
    let source = match &genesis {
        Some(genesis) => Some(StateRootSource::Certified(genesis)),
        None => args.proof.then_some(StateRootSource::Latest),
    };
    let proof = verinfer_node::proof::check_inference(&client, args.id, args.attester, source)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&proof)?);
        return Ok(proof.verified());
    }
    out!("inference {} on chain {}", proof.id, proof.chain_id);
    out!(
        "  recorded by   {} in block {}, caller {}",
        proof.transaction_hash,
        proof.block_number,
        proof.caller
    );
    out!(
        "  model         {} ({} bytes)",
        proof.model_id,
        proof.model_size
    );
    for (i, t) in proof.inputs.iter().enumerate() {
        out!("  input {i}       shape {:?} {}", t.shape, format_tensor(t));
    }
    for (i, t) in proof.outputs.iter().enumerate() {
        out!("  output {i}      shape {:?} {}", t.shape, format_tensor(t));
    }
    out!("  input hash    {}", proof.input_hash);
    out!("  output hash   {}", proof.output_hash);
    out!("  digest        {} (EIP-712)", proof.digest);
    out!("  attester      {}", proof.attester);
    if let Some(state) = &proof.state_proof {
        out!(
            "  state root    {} of block {} ({}), {} slots proven",
            state.state_root,
            state.block_number,
            state.block_hash,
            state.slots
        );
    }
    let certificate = match &proof.state_proof {
        Some(state) if state.certified => "certificate checked",
        _ => "certificate not checked (--genesis)",
    };
    let storage = match &proof.state_proof {
        Some(_) => "storage proof checked",
        None => "storage proof not checked (--proof)",
    };
    out!("  checked       replay, attestation; {storage}; {certificate}");
    for check in &proof.checks {
        if check.passed {
            out!("  ok    {}", check.what);
        } else {
            out!("  FAIL  {}: {}", check.what, check.detail);
        }
    }
    if proof.verified() {
        out!("VERIFIED");
    } else {
        out!("NOT VERIFIED");
    }
    Ok(proof.verified())
}
