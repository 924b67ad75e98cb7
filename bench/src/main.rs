//! `verinfer-bench`: verinfer beside anvil and hardhat, in one run, on one machine, with one
//! client — and the precompile beside bare tract, and inference gas beside EVM gas.
//!
//! Normally run through `scripts/bench`, which installs the peers and builds everything.

mod attacks;
mod fork;
mod inprocess;
mod network;
mod peer;
mod report;
mod workload;
mod zk;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use anyhow::Context;
use clap::Parser;
use serde_json::json;
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::{ModelInfo, ModelStore, ADDRESS};

use peer::{Binaries, Kind, Peer};
use report::{Goals, ModelRow, Results, ScalingRow};
use workload::{Client, Sender, Stats};

/// Benchmarks: verinfer beside anvil and hardhat; the precompile beside bare tract.
#[derive(Parser)]
#[command(name = "verinfer-bench")]
struct Args {
    /// Full mode: larger workloads and the 100k-transaction scaling step (tens of minutes).
    /// The default quick mode takes a few seconds per workload.
    #[arg(long)]
    full: bool,
    /// Nodes to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "verinfer,verinfer-ephemeral,anvil,hardhat"
    )]
    nodes: Vec<String>,
    /// Skip the scaling runs (chain length, funded accounts).
    #[arg(long)]
    no_scaling: bool,
    /// Only the scaling runs (chain length, funded accounts: throughput and peak RSS), with
    /// the in-process figures; no workloads, no network.
    #[arg(long, conflicts_with = "no_scaling")]
    scaling_only: bool,
    /// Skip the validator network row (4 validators of `verinfer testnet` on loopback).
    #[arg(long)]
    no_network: bool,
    /// Only the in-process measurements (bare tract beside the precompile call, gas
    /// calibration): no node is started. Seconds, not minutes.
    #[arg(long)]
    in_process_only: bool,
    /// Only the hostile-load campaign: each attack of the hardening issue on a fresh node, with
    /// the node's peak memory and the slowest `eth_blockNumber` meanwhile (writes attacks.md
    /// and attacks.json into --out). About two minutes.
    #[arg(long)]
    attacks: bool,
    /// With --attacks: only the attacks of these findings (F1, F2/F3, F4, ...; repeatable).
    #[arg(long, value_name = "FINDING", requires = "attacks")]
    only: Vec<String>,
    /// Only the zero-knowledge proofs: per model family, setup and prove time, proof size,
    /// verification gas and the deviation from the f32 record (writes results-zk.md and results-zk.json into
    /// --out). Needs ezkl (scripts/install-ezkl) and solc. About five minutes.
    #[arg(long)]
    zk: bool,
    /// Only fork mode: verinfer --fork-url beside anvil --fork-url on the same remote, with
    /// the requests each kind of read sends to the remote and its latency (writes
    /// results-fork.md and results-fork.json into --out). About a minute.
    #[arg(long, conflicts_with = "zk")]
    fork: bool,
    /// Write results-MODE.json and results-MODE.md (MODE: quick or full) into DIR.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The npm prefix holding @foundry-rs/anvil and hardhat [default: .tools/peers].
    #[arg(long, value_name = "DIR")]
    peers: Option<PathBuf>,
    /// The verinfer binary [default: target/release/verinfer].
    #[arg(long, value_name = "FILE")]
    verinfer: Option<PathBuf>,
    /// Also measure the validator network with this other verinfer binary, right after this
    /// build's, in the same run (e.g. one built from 7ad3e94, the last build whose validators
    /// signed with ed25519 alone): its rows stand beside this build's.
    #[arg(long, value_name = "FILE", conflicts_with = "no_network")]
    network_baseline: Option<PathBuf>,
}

/// Workload sizes of a mode.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sizes {
    /// Sequential transfers from one sender.
    pub transfers: u64,
    /// Senders sending at once in the concurrent workload.
    pub concurrent_senders: u64,
    /// Transfers each concurrent sender sends.
    pub concurrent_per_sender: u64,
    /// Transfers of the burst (all sent at once from the concurrent senders), on verinfer and
    /// the validator network.
    pub burst_transfers: u64,
    /// `eth_call`s in the call workload.
    pub calls: u64,
    /// Contract deployments.
    pub deployments: u64,
    /// `infer` transactions per shipped model.
    pub infers_per_model: u64,
    /// `predict` calls per shipped model.
    pub predicts_per_model: u64,
    /// Chain lengths (blocks) at which the scaling run measures.
    pub scaling_steps: Vec<u64>,
    /// A node's scaling run stops filling after this many seconds (anvil and hardhat slow down
    /// as their chains grow; the steps they did not reach are left out).
    pub scaling_budget_secs: u64,
    /// Transfers measured at each scaling step.
    pub scaling_probe: u64,
    /// Dev accounts funded at genesis (senders of the concurrent workload among them).
    pub funded_accounts: u64,
    /// Repetitions of each in-process measurement.
    pub inprocess_runs: usize,
}

impl Sizes {
    fn new(full: bool) -> Self {
        if full {
            Self {
                transfers: 5000,
                concurrent_senders: 8,
                concurrent_per_sender: 1000,
                burst_transfers: 10_000,
                calls: 10_000,
                deployments: 1000,
                infers_per_model: 200,
                predicts_per_model: 1000,
                scaling_steps: vec![1000, 10_000, 100_000],
                scaling_budget_secs: 480,
                scaling_probe: 2000,
                funded_accounts: 10_000,
                inprocess_runs: 2000,
            }
        } else {
            Self {
                transfers: 1000,
                concurrent_senders: 8,
                concurrent_per_sender: 200,
                burst_transfers: 2000,
                calls: 2000,
                deployments: 200,
                infers_per_model: 100,
                predicts_per_model: 200,
                scaling_steps: vec![1000, 3000],
                scaling_budget_secs: 60,
                scaling_probe: 500,
                funded_accounts: 1000,
                inprocess_runs: 300,
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let root = peer::repo_root();
    let bins = Binaries {
        verinfer: args
            .verinfer
            .clone()
            .unwrap_or_else(|| root.join("target/release/verinfer")),
        peers: args
            .peers
            .clone()
            .unwrap_or_else(|| root.join(".tools/peers")),
        models: root.join("models"),
    };
    if args.attacks {
        let rows = attacks::run_all(&bins, &args.only)?;
        return report_only(
            args.out.as_deref(),
            "attacks",
            &rows,
            &attacks::markdown(&rows),
        );
    }
    if args.zk {
        let rows = zk::run_all(&bins)?;
        return report_only(
            args.out.as_deref(),
            "results-zk",
            &rows,
            &zk::markdown(&rows),
        );
    }
    if args.fork {
        let rows = fork::run_all(&bins)?;
        return report_only(
            args.out.as_deref(),
            "results-fork",
            &rows,
            &fork::markdown(&rows),
        );
    }
    let kinds = args
        .nodes
        .iter()
        .map(|n| match n.as_str() {
            "verinfer" => Ok(Kind::Verinfer),
            "verinfer-ephemeral" => Ok(Kind::VerinferEphemeral),
            "anvil" => Ok(Kind::Anvil),
            "hardhat" => Ok(Kind::Hardhat),
            other => anyhow::bail!(
                "unknown node {other:?} (verinfer, verinfer-ephemeral, anvil, hardhat)"
            ),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sizes = Sizes::new(args.full);
    let (store, models) = load_models(&bins.models)?;
    let mut cost_models = models.clone();
    cost_models.extend(load_in_process_models(&store, &bins.models)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let mut results = Results::new(&sizes, args.full);
    progress("in-process: bare tract and the precompile call, per model");
    results.costs = inprocess::model_costs(&store, &cost_models, sizes.inprocess_runs)?;
    progress("in-process: EVM gas per second");
    results.evm = inprocess::evm_speed(sizes.inprocess_runs.min(50))?;

    let kinds = if args.in_process_only { vec![] } else { kinds };
    for &kind in kinds.iter().filter(|_| !args.scaling_only) {
        progress(&format!("{kind}: workloads"));
        let peer = Peer::start(kind, &bins)?;
        let workloads = runtime
            .block_on(run_workloads(&peer, &sizes, &models))
            .with_context(|| format!("workloads on {kind}"))?;
        for (name, stats) in workloads {
            results.record(&name, kind, stats);
        }
        results
            .idle_rss
            .insert(kind.to_string(), peer.peak_rss().unwrap_or_default());
    }
    if !args.no_network && !args.in_process_only && !args.scaling_only {
        progress(&format!(
            "validator network: {} validators, transfers and inferences until finalized",
            network::VALIDATORS
        ));
        let (_, info, inputs) = models
            .iter()
            .find(|(name, ..)| name == "linear")
            .context("the linear test model is missing")?;
        let row = runtime
            .block_on(network::measure(
                &bins,
                &bins.verinfer,
                (info, inputs),
                &sizes,
                true,
            ))
            .context("the validator network")?;
        results.network = Some(row);
        if let Some(baseline) = &args.network_baseline {
            progress(&format!(
                "validator network again, with the baseline {}",
                baseline.display()
            ));
            let row = runtime
                .block_on(network::measure(
                    &bins,
                    baseline,
                    (info, inputs),
                    &sizes,
                    false,
                ))
                .context("the validator network of the baseline build")?;
            results.network_baseline = Some((format!("baseline {}", baseline.display()), row));
        }
    }
    if !args.no_scaling {
        for &kind in &kinds {
            progress(&format!("{kind}: scaling with chain length"));
            let rows = runtime
                .block_on(scale_chain(kind, &bins, &sizes))
                .with_context(|| format!("scaling on {kind}"))?;
            results.scaling.extend(rows);
            progress(&format!(
                "{kind}: {} funded accounts",
                sizes.funded_accounts
            ));
            let row = runtime
                .block_on(funded_accounts(kind, &bins, &sizes))
                .with_context(|| format!("funded accounts on {kind}"))?;
            results.funded.push(row);
        }
    }
    results.models = model_rows(&results, &models);
    results.goals = Goals::evaluate(&results);

    let markdown = report::markdown(&results);
    println!("{markdown}");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        let stem = format!("results-{}", results.mode);
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&results)?,
        )?;
        std::fs::write(dir.join(format!("{stem}.md")), &markdown)?;
        progress(&format!("wrote {}/{stem}.{{md,json}}", dir.display()));
    }
    Ok(())
}

/// Print a single-workload run's `markdown` and, with `--out DIR`, write it and its `rows` to
/// `DIR/NAME.md` and `DIR/NAME.json`.
fn report_only(
    out: Option<&std::path::Path>,
    name: &str,
    rows: &impl serde::Serialize,
    markdown: &str,
) -> anyhow::Result<()> {
    println!("{markdown}");
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(rows)?,
        )?;
        std::fs::write(dir.join(format!("{name}.md")), markdown)?;
        progress(&format!("wrote {}/{name}.{{md,json}}", dir.display()));
    }
    Ok(())
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// The models of `models/*.onnx`, admitted, each with its name and a fixed input.
type Models = Vec<(String, ModelInfo, Vec<Tensor>)>;

fn load_models(dir: &std::path::Path) -> anyhow::Result<(Arc<ModelStore>, Models)> {
    let store = Arc::new(ModelStore::default());
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    for path in paths {
        if path.extension().is_none_or(|e| e != "onnx") {
            continue;
        }
        out.push(admit(&store, &path)?);
    }
    Ok((store, out))
}

/// Admit one model file: its name (the file stem), metadata and a fixed input.
fn admit(
    store: &ModelStore,
    path: &std::path::Path,
) -> anyhow::Result<(String, ModelInfo, Vec<Tensor>)> {
    let info = store
        .add_file(path)
        .with_context(|| format!("admitting {}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let inputs = verinfer_tests::workload::inputs_for(&info.inputs, 7);
    Ok((name, info, inputs))
}

/// Models measured in process only (paths under `models/`, without `.onnx`): one per family the
/// gas calibration must cover (tree ensembles, linear, SVM, recurrent) and a 2 000-node chain of
/// cheap ops (per-node dispatch). They stay out of the node workloads.
const IN_PROCESS_MODELS: &[&str] = &[
    "real/xgb_regressor",
    "real/random_forest_classifier",
    "real/lgbm_classifier",
    "real/logistic_regression",
    "real/scaler_svc",
    "real/lstm_forecaster",
    "real/gru_forecaster",
    "real/volatility_lgbm",
    "stress/relu_chain",
];

fn load_in_process_models(store: &ModelStore, dir: &std::path::Path) -> anyhow::Result<Models> {
    IN_PROCESS_MODELS
        .iter()
        .map(|name| admit(store, &dir.join(format!("{name}.onnx"))))
        .collect()
}

/// Dev account `i` of anvil's mnemonic (derived once).
fn dev_key(i: usize) -> PrivateKeySigner {
    static KEYS: std::sync::LazyLock<Vec<PrivateKeySigner>> =
        std::sync::LazyLock::new(verinfer_tests::node::dev_keys);
    KEYS[i].clone()
}

/// The results of one node's workloads, in order, each reported as it finishes.
#[derive(Default)]
struct Measured(Vec<(String, Stats)>);

impl Measured {
    /// Record `stats` (or say which workload failed).
    fn push(&mut self, name: String, stats: anyhow::Result<Stats>) -> anyhow::Result<()> {
        let stats = stats.with_context(|| format!("workload {name:?}"))?;
        progress(&format!(
            "  {name}: {:.0}/s, p50 {:.0} µs{}",
            stats.per_second,
            stats.p50_us,
            if stats.stalled > 0 {
                format!(", {} stalled", stats.stalled)
            } else {
                String::new()
            }
        ));
        self.0.push((name, stats));
        Ok(())
    }
}

/// The workloads of one node, by name.
async fn run_workloads(
    peer: &Peer,
    sizes: &Sizes,
    models: &Models,
) -> anyhow::Result<Vec<(String, Stats)>> {
    let client = Client::new(&peer.url)?;
    let mut out = Measured::default();

    let mut deployer = Sender::new(&client, dev_key(9)).await?;
    let contract = workload::deploy(
        &client,
        &mut deployer,
        &verinfer_tests::node::storage_contract(),
    )
    .await
    .context("deploying the storage contract")?;

    let mut sender = Sender::new(&client, dev_key(0)).await?;
    let raws = sender.transfers(sizes.transfers, 1)?;
    out.push(
        "transfers, 1 sender".into(),
        workload::send_sequential(&client, raws).await,
    )?;

    let raws = sender.transfers(sizes.transfers, 2)?;
    out.push(
        "transfers, 1 sender, JS client".into(),
        workload::send_sequential_js(&peer.url, raws).await,
    )?;

    let mut batches = Vec::new();
    for i in 0..sizes.concurrent_senders as usize {
        let mut s = Sender::new(&client, dev_key(1 + i % 8)).await?;
        batches.push(s.transfers(sizes.concurrent_per_sender, 100 + i as u64)?);
    }
    out.push(
        format!("transfers, {} senders", sizes.concurrent_senders),
        workload::send_concurrent(&client, batches).await,
    )?;

    if peer.kind.is_verinfer() {
        let batches = burst(&client, sizes).await?;
        out.push(
            format!("transfer burst, {} senders", sizes.concurrent_senders),
            workload::send_burst(&client, batches).await,
        )?;
    }

    let view = json!([{"to": contract, "data": "0x"}, "latest"]);
    out.push(
        "eth_call (view function)".into(),
        workload::repeat_call(&client, "eth_call", view.clone(), sizes.calls).await,
    )?;
    out.push(
        "eth_call (view function), JS client".into(),
        workload::repeat_call_js(&peer.url, "eth_call", view.clone(), sizes.calls).await,
    )?;
    // A call no node does any work for: the floor of the client and the HTTP stack, which
    // bounds every read-only ratio above (most of a JS client's round trip is its own).
    out.push(
        "eth_blockNumber".into(),
        workload::repeat_call(&client, "eth_blockNumber", json!([]), sizes.calls).await,
    )?;
    out.push(
        "eth_blockNumber, JS client".into(),
        workload::repeat_call_js(&peer.url, "eth_blockNumber", json!([]), sizes.calls).await,
    )?;
    let balance = json!([sender.address(), "latest"]);
    out.push(
        "eth_getBalance".into(),
        workload::repeat_call(&client, "eth_getBalance", balance.clone(), sizes.calls).await,
    )?;

    // Goal 2 of performance round 3: readers beside a writer.
    let predict = predict_call(peer, &client, models).await?;
    let reads = vec![
        ("eth_call", view),
        ("eth_call", predict),
        ("eth_getBalance", balance),
    ];
    let raws = sender.transfers(sizes.transfers, 3)?;
    let (reads, sent) =
        workload::reads_while_sending(&client, &peer.url, READERS, reads, raws).await?;
    out.push(
        format!("reads, {READERS} clients, while 1 sender sends"),
        Ok(reads),
    )?;
    out.push(
        format!("transfers, 1 sender, while {READERS} clients read"),
        Ok(sent),
    )?;

    let init = Bytes::from(verinfer_tests::node::storage_contract());
    let raws = (0..sizes.deployments)
        .map(|_| deployer.sign(TxKind::Create, U256::ZERO, init.clone(), 300_000))
        .collect::<anyhow::Result<Vec<_>>>()?;
    out.push(
        "contract deployment".into(),
        workload::send_sequential(&client, raws).await,
    )?;

    if peer.kind.is_verinfer() {
        for (name, info, inputs) in models {
            let infer: Bytes = IInference::inferCall {
                modelId: info.id,
                inputs: inputs.clone(),
                outputDecimals: 6,
            }
            .abi_encode()
            .into();
            let raws = (0..sizes.infers_per_model)
                .map(|_| sender.sign(TxKind::Call(ADDRESS), U256::ZERO, infer.clone(), 3_000_000))
                .collect::<anyhow::Result<Vec<_>>>()?;
            out.push(
                format!("infer tx: {name}"),
                workload::send_sequential(&client, raws).await,
            )?;
            let predict: Bytes = IInference::predictCall {
                modelId: info.id,
                inputs: inputs.clone(),
                outputDecimals: 6,
            }
            .abi_encode()
            .into();
            let call = json!([{"to": ADDRESS, "data": predict}, "latest"]);
            out.push(
                format!("predict eth_call: {name}"),
                workload::repeat_call(&client, "eth_call", call, sizes.predicts_per_model).await,
            )?;
        }
    }
    Ok(out.0)
}

/// The burst's transactions: `sizes.burst_transfers` transfers split among the concurrent
/// senders (dev accounts 1 to 8), signed from their pending nonces.
pub(crate) async fn burst(client: &Client, sizes: &Sizes) -> anyhow::Result<Vec<Vec<Bytes>>> {
    let per_sender = sizes.burst_transfers / sizes.concurrent_senders;
    let mut batches = Vec::new();
    for i in 0..sizes.concurrent_senders as usize {
        let mut s = Sender::new(client, dev_key(1 + i % 8)).await?;
        batches.push(s.transfers(per_sender, 200 + i as u64)?);
    }
    Ok(batches)
}

/// Clients reading at once beside the sender (goal 2 of performance round 3).
const READERS: usize = 8;

/// The `eth_call` params of a `predict` of the linear model at the precompile's address. A node
/// without the precompile (anvil, hardhat) gets a stand-in there first: code returning 256
/// zero bytes (about the ABI size of the linear model's answer), so its readers make an EVM
/// call to the same address with an answer of the same size.
async fn predict_call(
    peer: &Peer,
    client: &Client,
    models: &Models,
) -> anyhow::Result<serde_json::Value> {
    let (_, info, inputs) = models
        .iter()
        .find(|(name, ..)| name == "linear")
        .context("the linear test model is missing")?;
    let data: Bytes = IInference::predictCall {
        modelId: info.id,
        inputs: inputs.clone(),
        outputDecimals: 6,
    }
    .abi_encode()
    .into();
    if !peer.kind.is_verinfer() {
        // PUSH2 0x0100 PUSH1 0 RETURN
        let stand_in = Bytes::from_static(&[0x61, 0x01, 0x00, 0x60, 0x00, 0xf3]);
        let method = if peer.kind == Kind::Hardhat {
            "hardhat_setCode"
        } else {
            "anvil_setCode"
        };
        let _: serde_json::Value = client.rpc(method, json!([ADDRESS, stand_in])).await?;
    }
    Ok(json!([{"to": ADDRESS, "data": data}, "latest"]))
}

/// Transfer throughput after each step of prior transactions, with peak RSS. A node stops
/// early (its last steps missing from the report) once filling has taken `scaling_budget`.
async fn scale_chain(
    kind: Kind,
    bins: &Binaries,
    sizes: &Sizes,
) -> anyhow::Result<Vec<ScalingRow>> {
    let peer = Peer::start(kind, bins)?;
    let client = Client::new(&peer.url)?;
    let mut filler = Sender::new(&client, dev_key(1)).await?;
    let mut probe = Sender::new(&client, dev_key(0)).await?;
    let started = std::time::Instant::now();
    let budget = std::time::Duration::from_secs(sizes.scaling_budget_secs);
    let mut prior = 0u64;
    let mut rows = Vec::new();
    for &step in &sizes.scaling_steps {
        // Fill up to `step` prior transactions from one sender, in chunks (signed per chunk to
        // bound memory), each chunk to its last receipt.
        while prior < step {
            if started.elapsed() > budget {
                progress(&format!(
                    "  stopped at {prior} prior transactions: filling took over {} s",
                    budget.as_secs()
                ));
                return Ok(rows);
            }
            let chunk = (step - prior).min(5000);
            let raws = filler.transfers(chunk, 1_000_000 + prior)?;
            workload::send_sequential(&client, raws).await?;
            prior += chunk;
        }
        let raws = probe.transfers(sizes.scaling_probe, 7_000_000 + prior)?;
        let stats = workload::send_sequential(&client, raws).await?;
        prior += sizes.scaling_probe;
        progress(&format!(
            "  after {step}: {:.0} transfers/s, peak RSS {} MiB",
            stats.per_second,
            peer.peak_rss().unwrap_or_default() >> 20
        ));
        rows.push(ScalingRow {
            node: kind.to_string(),
            prior_transactions: step,
            accounts: None,
            transfers_per_second: stats.per_second,
            p50_us: stats.p50_us,
            stalled: stats.stalled,
            peak_rss_bytes: peer.peak_rss().unwrap_or_default(),
        });
    }
    Ok(rows)
}

/// Transfers between `funded_accounts` accounts funded by `anvil_setBalance`, one from each.
async fn funded_accounts(kind: Kind, bins: &Binaries, sizes: &Sizes) -> anyhow::Result<ScalingRow> {
    let peer = Peer::start(kind, bins)?;
    let client = Client::new(&peer.url)?;
    let method = if kind == Kind::Hardhat {
        "hardhat_setBalance"
    } else {
        "anvil_setBalance"
    };
    let mut keys = Vec::new();
    for i in 0..sizes.funded_accounts {
        let key = PrivateKeySigner::from_bytes(&keccak256(format!("verinfer-bench account {i}")))?;
        let _: serde_json::Value = client
            .rpc(method, json!([key.address(), U256::from(10u128.pow(20))]))
            .await?;
        keys.push(key);
    }
    let probe = sizes.scaling_probe.min(sizes.funded_accounts);
    let mut raws = Vec::new();
    for (i, key) in keys.into_iter().take(probe as usize).enumerate() {
        let mut s = Sender::fresh(key);
        let to: Address = workload::fresh_address(9_000_000, i as u64);
        raws.push(s.sign(TxKind::Call(to), U256::from(1), Bytes::new(), 21_000)?);
    }
    let stats = workload::send_sequential(&client, raws).await?;
    Ok(ScalingRow {
        node: kind.to_string(),
        prior_transactions: 0,
        accounts: Some(sizes.funded_accounts),
        transfers_per_second: stats.per_second,
        p50_us: stats.p50_us,
        stalled: stats.stalled,
        peak_rss_bytes: peer.peak_rss().unwrap_or_default(),
    })
}

/// Per-model rows: in-process figures beside the verinfer node's transaction latencies.
fn model_rows(results: &Results, models: &Models) -> Vec<ModelRow> {
    let node = Kind::Verinfer.to_string();
    let stat = |workload: &str| -> Option<Stats> {
        results
            .workloads
            .get(workload)
            .and_then(|m: &BTreeMap<String, Stats>| m.get(&node))
            .cloned()
    };
    let transfer = stat("transfers, 1 sender");
    let baseline = results
        .costs
        .iter()
        .filter(|c| models.iter().any(|(name, ..)| *name == c.name))
        .min_by(|a, b| a.bare_us.total_cmp(&b.bare_us))
        .and_then(|c| {
            Some((
                c.name.clone(),
                stat(&format!("infer tx: {}", c.name))?.p50_us,
            ))
        });
    models
        .iter()
        .filter_map(|(name, _, _)| {
            let cost = results.costs.iter().find(|c| &c.name == name)?.clone();
            let infer = stat(&format!("infer tx: {name}"));
            let predict = stat(&format!("predict eth_call: {name}"));
            Some(ModelRow::new(
                cost,
                infer,
                predict,
                transfer.clone(),
                baseline.clone(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tiny sizes: a smoke run of every workload, not a measurement.
    fn tiny() -> Sizes {
        Sizes {
            transfers: 5,
            concurrent_senders: 2,
            concurrent_per_sender: 3,
            burst_transfers: 8,
            calls: 5,
            deployments: 2,
            infers_per_model: 2,
            predicts_per_model: 2,
            scaling_steps: vec![10, 20],
            scaling_budget_secs: 60,
            scaling_probe: 5,
            funded_accounts: 5,
            inprocess_runs: 3,
        }
    }

    /// The whole pipeline against a verinfer node (anvil and hardhat are not installed in CI):
    /// every workload runs and counts what it sent, inference rows pair the in-process figures
    /// with the node's, and the report carries the rows and the goals it can evaluate.
    #[test]
    fn smoke_run_against_verinfer() -> anyhow::Result<()> {
        let root = peer::repo_root();
        let bins = Binaries {
            verinfer: verinfer_tests::node::verinfer_bin(),
            peers: root.join(".tools/peers"),
            models: root.join("models"),
        };
        let sizes = tiny();
        let (store, models) = load_models(&bins.models)?;
        let runtime = tokio::runtime::Runtime::new()?;
        let mut results = Results::new(&sizes, false);
        results.costs = inprocess::model_costs(&store, &models, sizes.inprocess_runs)?;
        results.evm = inprocess::evm_speed(2)?;
        let peer = Peer::start(Kind::VerinferEphemeral, &bins)?;
        for (name, stats) in runtime.block_on(run_workloads(&peer, &sizes, &models))? {
            results.record(&name, Kind::VerinferEphemeral, stats);
        }
        drop(peer);
        results.scaling = runtime.block_on(scale_chain(Kind::Verinfer, &bins, &sizes))?;
        results
            .funded
            .push(runtime.block_on(funded_accounts(Kind::Verinfer, &bins, &sizes))?);
        results.goals = Goals::evaluate(&results);

        let node = Kind::VerinferEphemeral.to_string();
        let count = |w: &str| results.workloads[w][&node].count;
        assert_eq!(count("transfers, 1 sender"), 5);
        assert_eq!(count("transfers, 2 senders"), 6);
        assert_eq!(count("eth_call (view function)"), 5);
        assert_eq!(count("contract deployment"), 2);
        assert_eq!(count("transfer burst, 2 senders"), 8);
        assert_eq!(count("transfers, 1 sender, while 8 clients read"), 5);
        assert!(count("reads, 8 clients, while 1 sender sends") > 0);
        for (name, _, _) in &models {
            assert_eq!(count(&format!("infer tx: {name}")), 2, "{name}");
            assert_eq!(count(&format!("predict eth_call: {name}")), 2, "{name}");
        }
        assert_eq!(results.costs.len(), models.len());
        assert!(results
            .costs
            .iter()
            .all(|c| c.bare_us > 0.0 && c.precompile_us > c.bare_us));
        assert!(results.evm.iter().all(|e| e.gas > 15_000_000));
        let steps: Vec<u64> = results
            .scaling
            .iter()
            .map(|s| s.prior_transactions)
            .collect();
        assert_eq!(steps, [10, 20]);
        assert_eq!(results.funded[0].accounts, Some(5));
        assert!(results
            .goals
            .iter()
            .any(|g| g.goal.starts_with("gas calibration")));

        let markdown = report::markdown(&results);
        assert!(markdown.contains("| transfers, 1 sender |"), "{markdown}");
        assert!(markdown.contains("## Gas calibration"), "{markdown}");
        serde_json::to_string(&results)?;
        Ok(())
    }
}
