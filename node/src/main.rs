//! `verinfer`: the devnet node and the tools around it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use alloy_primitives::{hex, utils::format_ether, utils::parse_ether, Bytes, B256, I256, U256};
use alloy_sol_types::{SolCall, SolInterface};
use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{json, Value};
use verinfer_node::client::{Client, ClientError};
use verinfer_node::config::{default_attester_key, DEFAULT_MNEMONIC};
use verinfer_node::sandbox::AdmissionBudget;
use verinfer_node::tensor::{format_fixed, format_tensor};
use verinfer_node::wire::{ModelJson, TensorSpecJson};
use verinfer_node::{NodeConfig, NodeHandle};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::{ModelInfo, ModelStore, ADDRESS};

#[derive(Parser)]
#[command(
    name = "verinfer",
    about = "verifiable ONNX inference for EVM smart contracts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a devnet node (JSON-RPC over HTTP and WebSocket, anvil's defaults).
    Node(Box<NodeArgs>),
    /// Check models, or add, list and show the models of a running node.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a model on a node through `predict` (an eth_call) and print its outputs.
    Infer(InferArgs),
    /// Replay a chain from genesis and check every block, inference and attestation in it.
    Verify(VerifyArgs),
    /// Check one recorded inference: re-run its model on the transaction's inputs, check the
    /// hashes, the outputs and the attester's signature, and print the proof.
    VerifyInference(VerifyInferenceArgs),
    /// Answer one call of the code at 0xA00 in an EVM without the precompile (forge's
    /// vm.tryFfi, set up by contracts/test/Verinfer.sol): run the precompile on the request and
    /// print the response, both ABI-encoded hex.
    Ffi(FfiArgs),
}

#[derive(clap::Args)]
struct FfiArgs {
    /// Models: .onnx files or folders of them (repeatable).
    #[arg(
        long = "models",
        value_name = "PATH",
        env = "VERINFER_MODELS",
        default_value = "models"
    )]
    models: Vec<PathBuf>,
    /// The attester's private key [default: the node's default, derived from the dev mnemonic].
    #[arg(long, value_name = "KEY", env = "VERINFER_ATTESTER_KEY")]
    attester_key: Option<B256>,
    /// abi.encode(FfiRequest) as 0x-hex, split over any number of arguments.
    #[arg(required = true, value_name = "REQUEST")]
    request: Vec<String>,
}

#[derive(clap::Args)]
struct VerifyInferenceArgs {
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
    /// Also prove the record's storage slots against the latest block's state root
    /// (eth_getProof), so the record is shown to be in the chain's committed state.
    #[arg(long)]
    proof: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["rpc", "data_dir"])))]
struct VerifyArgs {
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
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Port to listen on (HTTP and WebSocket).
    #[arg(short, long, default_value_t = 8545)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Chain id.
    #[arg(long, default_value_t = 31337)]
    chain_id: u64,
    /// Number of funded dev accounts.
    #[arg(short, long, default_value_t = 10)]
    accounts: usize,
    /// Balance of each dev account, in ETH.
    #[arg(long, default_value = "10000")]
    balance: String,
    /// BIP-39 mnemonic the dev accounts derive from.
    #[arg(short, long, default_value = DEFAULT_MNEMONIC)]
    mnemonic: String,
    /// Mine a block every SECS seconds instead of one per transaction.
    #[arg(short, long, value_name = "SECS")]
    block_time: Option<f64>,
    /// Mine only on evm_mine / anvil_mine.
    #[arg(long, conflicts_with = "block_time")]
    no_mining: bool,
    /// Where the chain and uploaded models are kept
    /// [default: $VERINFER_DATA_DIR, else ~/.local/share/verinfer/chain-<chain id>].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory; nothing survives a restart.
    #[arg(long, conflicts_with = "data_dir")]
    ephemeral: bool,
    /// Admit every .onnx file in DIR at start (repeatable); a `cids.json` there
    /// (`{"<CID>": "<file>.onnx"}`) binds OpenGradient-style CIDs to them.
    #[arg(long = "models", value_name = "DIR")]
    models: Vec<PathBuf>,
    /// The attester's private key (hex) [default: derived from the mnemonic, shown at start].
    #[arg(long, value_name = "KEY")]
    attester_key: Option<B256>,
    /// Block gas limit.
    #[arg(long, default_value_t = 30_000_000)]
    gas_limit: u64,
    /// Largest JSON-RPC request body, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_request_body: u32,
    /// Most blocks one eth_getLogs call or filter poll may scan; a filter left further behind
    /// is reset to the head with an error saying so.
    #[arg(long, default_value_t = verinfer_node::filters::DEFAULT_MAX_LOG_RANGE)]
    max_log_range: u64,
    /// Most steps the default (struct logger) tracer records; a longer trace is refused unless
    /// the request sets a `limit` (callTracer has no such bound).
    #[arg(long, default_value_t = verinfer_node::config::DEFAULT_TRACE_MAX_STEPS)]
    trace_max_steps: u64,
    /// Most debug_trace* calls running at once; more get an error asking to retry.
    #[arg(long, default_value_t = verinfer_node::config::DEFAULT_MAX_CONCURRENT_TRACES)]
    max_concurrent_traces: usize,
    /// Most WebSocket connections open at once; HTTP keeps 1 024 connections of its own
    /// however many WebSockets are open.
    #[arg(long, default_value_t = verinfer_node::config::DEFAULT_MAX_WS_CONNECTIONS)]
    max_ws_connections: usize,
    /// Seconds one uploaded model's admission may take (it runs in a child process, stopped
    /// past the budget, before the node admits the model itself).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    admission_timeout: f64,
    /// Resident memory one uploaded model's admission may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    admission_memory: u64,
    /// Start from another node's chain (its RPC URL, or a copy of its data directory): replay
    /// it from genesis, verifying every block, then serve it. Needs an empty data directory
    /// (or --ephemeral); the chain id comes from the source. Keep the same mnemonic or
    /// --attester-key to go on attesting as the same attester.
    #[arg(long, value_name = "URL|DIR")]
    replay_from: Option<verinfer_node::replay::ReplayFrom>,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Run admission on .onnx files or directories of them (`-`: one model on stdin), locally;
    /// exit 1 if any is refused.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Upload models (files or directories of .onnx files) to a running node.
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Bind an OpenGradient-style CID to the model, so `runModelInference` at 0xF4 can name
        /// it (repeatable; one file only). Bindings are kept in chain state and cannot change.
        #[arg(long = "cid", value_name = "CID")]
        cids: Vec<String>,
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
    /// List a node's models.
    List {
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
    /// Show one model; `--out FILE` saves its ONNX bytes.
    Show {
        /// Model id (0x…) or a CID bound to it.
        id: String,
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct InferArgs {
    /// Model id (0x…) as `verinfer model list` shows it.
    model: B256,
    /// One input tensor's values, comma-separated decimals (repeat once per model input, in order).
    #[arg(short, long = "input", value_name = "VALUES", required = true)]
    inputs: Vec<String>,
    /// Decimals of the outputs.
    #[arg(short, long, default_value_t = 6)]
    decimals: u8,
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Print the outputs as JSON.
    #[arg(long)]
    json: bool,
}

/// `println!` that ends the program quietly (exit 0) once stdout is closed, as `| head` does,
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

fn ffi(args: &FfiArgs) -> Result<()> {
    let key = args
        .attester_key
        .unwrap_or_else(|| default_attester_key(DEFAULT_MNEMONIC));
    out!(
        "{}",
        verinfer_node::ffi::answer(&args.request, &args.models, &key)?
    );
    Ok(())
}

fn main() -> ExitCode {
    let version = format!(
        "{} (tract kernels: {})",
        env!("CARGO_PKG_VERSION"),
        verinfer_precompile::engine::active_isa()
    );
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Node(args) => run_node(*args).map(|_| true),
        Command::Model(ModelCommand::Check { paths }) => check(&paths),
        Command::Model(ModelCommand::Add { paths, cids, rpc }) => add_models(&rpc, &paths, &cids),
        Command::Model(ModelCommand::List { rpc }) => list_models(&rpc).map(|_| true),
        Command::Model(ModelCommand::Show { id, rpc, out }) => {
            show_model(&rpc, &id, out.as_deref()).map(|_| true)
        }
        Command::Infer(args) => infer(&args).map(|_| true),
        Command::Verify(args) => verify(&args),
        Command::VerifyInference(args) => verify_inference(&args),
        Command::Ffi(args) => ffi(&args).map(|_| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn default_data_dir(chain_id: u64) -> PathBuf {
    if let Some(dir) = std::env::var_os("VERINFER_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("verinfer").join(format!("chain-{chain_id}"))
}

fn run_node(args: NodeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jsonrpsee=warn".into()),
        )
        .with_target(false)
        .init();
    let balance = parse_ether(&args.balance)
        .with_context(|| format!("--balance {:?} is not an ETH amount", args.balance))?;
    let block_time = match args.block_time {
        Some(secs) if !(secs > 0.0 && secs.is_finite()) => {
            bail!("--block-time must be a positive number of seconds")
        }
        Some(secs) => Some(Duration::from_secs_f64(secs)),
        None => None,
    };
    if !(args.admission_timeout > 0.0 && args.admission_timeout.is_finite()) {
        bail!("--admission-timeout must be a positive number of seconds");
    }
    let admission_budget = AdmissionBudget {
        program: std::env::current_exe().context("locating the verinfer binary")?,
        timeout: Duration::from_secs_f64(args.admission_timeout),
        max_rss: args.admission_memory.saturating_mul(1 << 20),
    };
    let data_dir = (!args.ephemeral).then(|| {
        args.data_dir
            .unwrap_or_else(|| default_data_dir(args.chain_id))
    });
    let config = NodeConfig {
        host: args.host,
        port: args.port,
        chain_id: args.chain_id,
        accounts: args.accounts,
        balance,
        mnemonic: args.mnemonic,
        block_time,
        mining: !args.no_mining,
        data_dir,
        model_dirs: args.models,
        attester_key: args.attester_key,
        gas_limit: args.gas_limit,
        max_request_body: args.max_request_body,
        max_log_range: args.max_log_range,
        trace_max_steps: args.trace_max_steps,
        max_concurrent_traces: args.max_concurrent_traces.max(1),
        max_ws_connections: args.max_ws_connections,
        admission_budget: Some(admission_budget),
        replay_from: args.replay_from,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let handle = verinfer_node::start(config.clone()).await?;
        print_banner(&config, &handle);
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                out!("\nShutting down");
                handle.stop().await;
            }
        }
        Ok(())
    })
}

fn print_banner(config: &NodeConfig, handle: &NodeHandle) {
    let node = &handle.node;
    out!(
        "\n  verinfer {}  —  verifiable ONNX inference devnet\n",
        env!("CARGO_PKG_VERSION")
    );
    out!("Available Accounts\n==================");
    for (i, s) in node.signers.iter().enumerate() {
        out!(
            "({i}) {} ({} ETH)",
            s.address(),
            format_ether(config.balance)
        );
    }
    out!("\nPrivate Keys\n==================");
    for (i, s) in node.signers.iter().enumerate() {
        out!("({i}) 0x{}", hex::encode(s.to_bytes()));
    }
    out!("\nWallet\n==================");
    out!("Mnemonic:          {}", config.mnemonic);
    out!("Derivation path:   m/44'/60'/0'/0/");
    out!("\nAttester\n==================");
    out!("Address:           {}", node.attester);
    match config.attester_key {
        Some(_) => out!("Key:               from --attester-key"),
        None => out!(
            "Key:               {} (derived from the mnemonic; --attester-key sets another)",
            default_attester_key(&config.mnemonic)
        ),
    }
    out!("\nModels\n==================");
    let models = node.models.list();
    if models.is_empty() {
        out!("none (add with --models DIR, `verinfer model add`, or verinfer_uploadModel)");
    }
    for info in &models {
        print_model(info);
    }
    for r in &handle.rejected {
        out!("refused  {}", r.reason);
    }
    let chain = node.chain();
    out!("\nChain ID:          {}", chain.config().chain_id);
    out!("Base fee:          {}", chain.next_base_fee());
    out!("Gas limit:         {}", config.gas_limit);
    out!("Precompile:        {ADDRESS}");
    out!(
        "Tract kernels:     {}",
        verinfer_precompile::engine::active_isa()
    );
    match &config.data_dir {
        Some(dir) => out!("Data dir:          {}", dir.display()),
        None => out!("Data dir:          none (--ephemeral: memory only)"),
    }
    let head = chain.head().header.number;
    if head > 0 {
        out!("Head:              block {head} (resumed)");
    }
    let mining = match (config.mining, config.block_time) {
        (false, _) => "manual (evm_mine)".to_string(),
        (true, Some(t)) => format!("every {}s", t.as_secs_f64()),
        (true, None) => "automine".to_string(),
    };
    out!("Mining:            {mining}");
    out!("\nListening on {}", handle.addr);
}

/// Admit every model under `paths` (`-`: the bytes on stdin); returns whether all were
/// accepted.
fn check(paths: &[PathBuf]) -> Result<bool> {
    let store = ModelStore::default();
    let mut all_ok = true;
    for path in paths {
        let results = if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("reading the model from stdin")?;
            vec![store.add_bytes(&bytes).map_err(|source| {
                verinfer_precompile::store::AddError::Refused {
                    path: path.clone(),
                    source,
                }
            })]
        } else if path.is_dir() {
            store
                .add_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
        } else {
            vec![store.add_file(path)]
        };
        for result in results {
            match result {
                Ok(info) => print_model(&info),
                Err(e) => {
                    all_ok = false;
                    out!("refused  {e}");
                }
            }
        }
    }
    Ok(all_ok)
}

fn print_model(info: &ModelInfo) {
    let specs = |specs: &[verinfer_precompile::TensorSpec]| {
        specs
            .iter()
            .map(|s| format!("{}:{:?}{:?}", s.name, s.dtype, s.shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out!(
        "admitted {}  in [{}]  out [{}]  infer gas {}  predict gas {}",
        info.id,
        specs(&info.inputs),
        specs(&info.outputs),
        info.infer_gas,
        info.predict_gas
    );
}

fn onnx_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn add_models(rpc: &str, paths: &[PathBuf], cids: &[String]) -> Result<bool> {
    let client = Client::new(rpc)?;
    let files = onnx_files(paths)?;
    if !cids.is_empty() && files.len() != 1 {
        bail!(
            "--cid binds one model: give one .onnx file ({} found)",
            files.len()
        );
    }
    let mut all_ok = true;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let size = bytes.len();
        eprintln!("uploading {} ({size} bytes)", file.display());
        match client.call::<ModelJson>("verinfer_uploadModel", json!([Bytes::from(bytes), cids])) {
            Ok(model) => {
                out!("added    {}  {}", model.id, file.display());
                for cid in cids {
                    out!("cid      {cid}");
                }
            }
            Err(ClientError::Rpc { message, .. }) => {
                all_ok = false;
                out!("refused  {}: {message}", file.display());
            }
            // Hex doubles the bytes: past the node's body cap the server stops reading (413,
            // or a broken pipe while the body is still being sent).
            Err(ClientError::Http(413) | ClientError::Io(_)) if 2 * size > UPLOAD_HINT_BYTES => {
                all_ok = false;
                out!(
                    "refused  {}: {size} bytes is over what one upload carries (the node's \
                     --max-request-body, 32 MiB by default, holds models up to about 16 MiB as \
                     hex); put the file in the node's --models folder (64 MiB cap) or raise \
                     --max-request-body",
                    file.display()
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(all_ok)
}

/// The default request body cap: an upload of more than half of it (hex) may be cut off.
const UPLOAD_HINT_BYTES: usize = 32 * 1024 * 1024;

fn list_models(rpc: &str) -> Result<()> {
    let models: Vec<ModelJson> = Client::new(rpc)?.call("verinfer_listModels", json!([]))?;
    if models.is_empty() {
        out!("no models");
    }
    let specs = |specs: &[TensorSpecJson]| {
        specs
            .iter()
            .map(|s| format!("{}:{}{:?}", s.name, s.dtype, s.shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for m in models {
        out!(
            "{}  {} bytes  in [{}]  out [{}]  infer gas {}  runs {}",
            m.id,
            m.size,
            specs(&m.inputs),
            specs(&m.outputs),
            m.infer_gas,
            m.runs
        );
        if !m.cids.is_empty() {
            out!("    cids {}", m.cids.join(", "));
        }
    }
    Ok(())
}

/// The model a node serves under an id or CID.
fn get_model(client: &Client, id: &str) -> Result<ModelJson> {
    let model: Option<ModelJson> = client.call("verinfer_getModel", json!([id]))?;
    model.with_context(|| format!("the node has no model {id}"))
}

fn show_model(rpc: &str, id: &str, out: Option<&Path>) -> Result<()> {
    let mut model = get_model(&Client::new(rpc)?, id)?;
    let bytes = model.bytes.take();
    out!("{}", serde_json::to_string_pretty(&model)?);
    if let (Some(path), Some(bytes)) = (out, bytes) {
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("saved {} bytes to {}", bytes.len(), path.display());
    }
    Ok(())
}

/// Parse "1.5,-2,0.25,3e-4" into fixed-point integers with the fewest decimals that are exact.
fn parse_values(text: &str) -> Result<(Vec<I256>, u8)> {
    let parts = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| parse_decimal(p).with_context(|| format!("{p:?} is not a decimal number")))
        .collect::<Result<Vec<_>>>()?;
    let decimals = parts.iter().map(|(_, d)| *d).max().unwrap_or(0);
    let Ok(decimals @ 0..=38) = u8::try_from(decimals) else {
        bail!("at most 38 decimals ({decimals} needed)");
    };
    let values = parts
        .iter()
        .map(|(digits, d)| scale_up(*digits, u32::from(decimals) - d))
        .collect::<Result<_>>()?;
    Ok((values, decimals))
}

/// One decimal (`-12.5`, `1e40`, `2.5E-3`) as (digits, decimals): value = digits / 10^decimals.
fn parse_decimal(text: &str) -> Result<(I256, u32)> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().context("bad exponent")?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.strip_prefix('+').unwrap_or(int);
    let unsigned = int.strip_prefix('-').unwrap_or(int);
    if unsigned.is_empty() && frac.is_empty()
        || !unsigned
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        bail!("expected digits, an optional fraction and an optional exponent");
    }
    let digits: I256 = format!("{int}{frac}")
        .parse()
        .context("value too large for int256")?;
    let decimals = frac.len() as i64 - exponent as i64;
    if decimals >= 0 {
        return Ok((digits, u32::try_from(decimals)?));
    }
    Ok((scale_up(digits, u32::try_from(-decimals)?)?, 0))
}

/// `value × 10^places`, refused past int256.
fn scale_up(value: I256, places: u32) -> Result<I256> {
    I256::try_from(10u64)?
        .checked_pow(U256::from(places))
        .and_then(|scale| value.checked_mul(scale))
        .context("value too large for int256")
}

fn infer(args: &InferArgs) -> Result<()> {
    let client = Client::new(&args.rpc)?;
    let model = get_model(&client, &args.model.to_string())?;
    let specs = model.inputs;
    if specs.len() != args.inputs.len() {
        bail!(
            "the model takes {} inputs, {} given (one --input per input)",
            specs.len(),
            args.inputs.len()
        );
    }
    let mut tensors = Vec::new();
    for (spec, text) in specs.iter().zip(&args.inputs) {
        let shape = spec
            .shape
            .iter()
            .map(|&d| u32::try_from(d))
            .collect::<Result<Vec<u32>, _>>()
            .context("an input dimension past u32")?;
        let (values, decimals) = parse_values(text)?;
        tensors.push(Tensor {
            shape,
            values,
            decimals,
        });
    }
    let call = IInference::predictCall {
        modelId: args.model,
        inputs: tensors,
        outputDecimals: args.decimals,
    };
    let request = json!({"to": ADDRESS, "data": Bytes::from(call.abi_encode())});
    let output: Bytes = match client.call("eth_call", json!([request, "latest"])) {
        Ok(out) => out,
        Err(ClientError::Rpc {
            message,
            data: Some(data),
            ..
        }) => {
            let data: Bytes = serde_json::from_value(data).unwrap_or_default();
            match IInference::IInferenceErrors::abi_decode(&data) {
                Ok(error) => bail!("{message}: {}", describe_error(&error)),
                Err(_) => bail!("{message}"),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let outputs = IInference::predictCall::abi_decode_returns(&output)
        .context("decoding predict's outputs")?;
    if args.json {
        let json: Vec<Value> = outputs
            .iter()
            .map(|t| json!({"shape": t.shape, "values": t.values.iter().map(|v| format_fixed(*v, t.decimals)).collect::<Vec<_>>()}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for (i, t) in outputs.iter().enumerate() {
            let values: Vec<String> = t
                .values
                .iter()
                .map(|v| format_fixed(*v, t.decimals))
                .collect();
            out!("output {i} {:?}: [{}]", t.shape, values.join(", "));
        }
    }
    Ok(())
}

/// A precompile error by name with its fields, as a Solidity developer reads it.
fn describe_error(error: &IInference::IInferenceErrors) -> String {
    use IInference::IInferenceErrors as E;
    match error {
        E::UnknownSelector(e) => {
            format!("UnknownSelector({}): not a precompile function", e.selector)
        }
        E::MalformedCalldata(e) => format!("MalformedCalldata: {}", e.reason),
        E::UnknownModel(e) => format!("UnknownModel({}): the node has no such model", e.modelId),
        E::WrongInputCount(e) => {
            format!(
                "WrongInputCount: the model takes {} inputs, {} given",
                e.expected, e.got
            )
        }
        E::ShapeMismatch(e) => format!(
            "ShapeMismatch: input {} expects shape {:?}, got {:?}",
            e.input, e.expected, e.got
        ),
        E::ValueCountMismatch(e) => format!(
            "ValueCountMismatch: input {} has {} values, its shape needs {}",
            e.input, e.got, e.expected
        ),
        E::TooManyElements(e) => {
            format!("TooManyElements: {} values, at most {}", e.got, e.limit)
        }
        E::DecimalsTooLarge(e) => {
            format!(
                "DecimalsTooLarge: {} decimals, at most {}",
                e.decimals, e.limit
            )
        }
        E::ValueOutOfRange(e) => format!(
            "ValueOutOfRange: input {} value {} does not fit the model's element type",
            e.input, e.index
        ),
        E::NonFiniteOutput(e) => format!(
            "NonFiniteOutput: output {} value {} is NaN or infinite",
            e.output, e.index
        ),
        E::InferenceFailed(e) => format!("InferenceFailed: {}", e.reason),
        E::NotDirectCall(_) => "NotDirectCall: infer needs a direct CALL".into(),
        E::ValueNotAccepted(_) => "ValueNotAccepted: the precompile takes no ether".into(),
        E::UnknownInference(e) => format!("UnknownInference({}): no such record", e.id),
        E::PrecompileUnavailable(e) => format!("PrecompileUnavailable: {}", e.hint),
    }
}

/// `verinfer verify`: replay, print a report, succeed only if nothing differed.
fn verify(args: &VerifyArgs) -> Result<bool> {
    use verinfer_node::replay::{self, data_dir::DataDir, rpc::Rpc, Options, Source};
    let source: Box<dyn Source> = match (&args.rpc, &args.data_dir) {
        (Some(url), _) => Box::new(Rpc::new(url)?),
        (None, Some(dir)) => Box::new(DataDir::open(dir)?),
        (None, None) => bail!("give --rpc URL or --data-dir DIR"),
    };
    let options = Options {
        keep_going: args.keep_going,
        attester: args.attester,
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
    let report = replay::replay(source.as_ref(), &options, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
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

fn verify_inference(args: &VerifyInferenceArgs) -> Result<bool> {
    let client = Client::new(&args.rpc)?;
    let proof = verinfer_node::proof::check_inference(&client, args.id, args.attester, args.proof)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Vec<String>, u8) {
        let (values, decimals) = parse_values(text).unwrap();
        (values.iter().map(|v| v.to_string()).collect(), decimals)
    }

    #[test]
    fn decimals_and_exponents() {
        assert_eq!(
            parsed("1.5,-2,0.25"),
            (vec!["150".into(), "-200".into(), "25".into()], 2)
        );
        assert_eq!(
            parsed("1e3,2.5E-2,+4"),
            (vec!["1000000".into(), "25".into(), "4000".into()], 3)
        );
        assert_eq!(parsed("1e40").0, vec![format!("1{}", "0".repeat(40))]);
        assert_eq!(parsed("-0.5"), (vec!["-5".into()], 1));
        for bad in ["a", "1.2.3", "1e", "--1", ".", "1e-39", "1e80"] {
            assert!(parse_values(bad).is_err(), "{bad} parsed");
        }
    }
}
