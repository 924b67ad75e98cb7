//! `verinfer node`: its flags, start-up and banner.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::model::print_model;
use alloy_primitives::{hex, utils::format_ether, utils::parse_ether, B256};
use anyhow::{bail, Context, Result};
use verinfer_node::config::{default_attester_key, DEFAULT_MNEMONIC};
use verinfer_node::fork::ForkConfig;
use verinfer_node::sandbox::AdmissionBudget;
use verinfer_node::zk::prover::{self, ProverConfig};
use verinfer_node::{NodeConfig, NodeHandle};
use verinfer_precompile::ADDRESS;

/// How the node writes its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

#[derive(clap::Args)]
pub(crate) struct NodeArgs {
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
    /// The gas schedule of a new chain: a JSON file with any of `inferBase`, `predictBase`,
    /// `perInputElement`, `computeUnitsPerGas`, `perRecordSlot`, `counterUpdate`,
    /// `perCalldataWord`, `perSlotRead`, `viewBase` (the rest keep their defaults). A chain
    /// records its schedule at creation and keeps it: on an existing data dir this is refused
    /// unless it is the recorded one.
    #[arg(long, value_name = "FILE")]
    gas_schedule: Option<PathBuf>,
    /// Largest JSON-RPC request body, in bytes.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_request_body: u32,
    /// Most blocks one eth_getLogs call or filter poll may scan; a filter left further behind
    /// is reset to the head with an error saying so.
    #[arg(long, default_value_t = verinfer_node::filters::DEFAULT_MAX_LOG_RANGE)]
    max_log_range: u64,
    /// Seconds a polling filter (eth_newFilter and kin) lives without a poll; at most 10 000
    /// are kept, installing one more drops the one polled longest ago.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = verinfer_node::filters::DEFAULT_FILTER_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    filter_timeout: u64,
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
    /// Log format: `text` on stdout, or `json` (one object a line) on stderr, the banner staying
    /// on stdout; what is logged is chosen with RUST_LOG (e.g. `info`, `debug,jsonrpsee=warn`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Prove, in the background, every record of a model that has a ZK setup in --zk-cache
    /// (made by `verinfer zk setup`), and submit the proofs to the registry at 0xA02. Needs ezkl
    /// (scripts/install-ezkl). The chain is the queue: a restart picks up every unproven record.
    #[arg(long)]
    zk_prover: bool,
    /// Setups the prover uses [default: as `verinfer zk`: $VERINFER_ZK_DIR, else
    /// ~/.cache/verinfer/zk].
    #[arg(long, value_name = "DIR", requires = "zk_prover")]
    zk_cache: Option<PathBuf>,
    /// Key the prover submits with [default: the first dev account].
    #[arg(long, value_name = "KEY", requires = "zk_prover")]
    zk_prover_key: Option<B256>,
    /// Records the prover proves at once (each proof keeps the cores busy for seconds to
    /// minutes).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "zk_prover")]
    zk_prover_concurrency: usize,
    /// Resident memory one uploaded model's admission may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    admission_memory: u64,
    /// Start from another node's chain (its RPC URL, or a copy of its data directory): replay
    /// it from genesis, verifying every block, then serve it. Needs an empty data directory
    /// (or --ephemeral); the chain id comes from the source. Keep the same mnemonic or
    /// --attester-key to go on attesting as the same attester.
    #[arg(long, value_name = "URL|DIR")]
    replay_from: Option<verinfer_node::replay::ReplayFrom>,
    /// Run as one validator of a network (`verinfer testnet` starts a whole one): blocks are
    /// proposed by a leader, re-executed by every validator and applied once a quorum
    /// finalizes them. Needs --key and --genesis; the peers are the genesis file's validators.
    #[arg(long, requires_all = ["key", "genesis"], conflicts_with_all = ["block_time", "no_mining", "ephemeral", "replay_from"])]
    validator: bool,
    /// The validator's key file (hex ed25519 key, as `verinfer testnet` writes them).
    #[arg(long, value_name = "FILE", requires = "validator")]
    key: Option<PathBuf>,
    /// The validator's threshold share file (hex, as `verinfer testnet` writes them)
    /// [default: the file `share` beside --key].
    #[arg(long, value_name = "FILE", requires = "validator")]
    share: Option<PathBuf>,
    /// The network's genesis file (chain id, timestamp, block times, validators).
    #[arg(long, value_name = "FILE", requires = "validator")]
    genesis: Option<PathBuf>,
    /// Fork the chain at URL (http://host:port): accounts, code and storage are read from it
    /// at the fork block the first time something needs them; the blocks, numbers and
    /// timestamps go on from that block. Without --data-dir a fork keeps nothing
    /// (as anvil); with one, it reopens on the same fork block.
    #[arg(long, value_name = "URL", conflicts_with_all = ["validator", "replay_from"])]
    fork_url: Option<String>,
    /// The block to fork at [default: the remote's latest].
    #[arg(long, value_name = "N", requires = "fork_url")]
    fork_block_number: Option<u64>,
    /// The chain id the fork runs under [default: the remote's].
    #[arg(long, value_name = "ID", requires = "fork_url")]
    fork_chain_id: Option<u64>,
    /// Retries of a failed request to the remote, with doubling back-off from 100 ms.
    #[arg(long, value_name = "N", default_value_t = ForkConfig::DEFAULT_RETRIES, requires = "fork_url")]
    fork_retries: u32,
    /// Timeout of one request to the remote, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = ForkConfig::DEFAULT_TIMEOUT_MS,
        requires = "fork_url"
    )]
    fork_timeout_ms: u64,
    /// Test-only: forge one output of every inference this validator proposes.
    #[arg(long, hide = true, requires = "validator")]
    forge_outputs: bool,
}

pub(crate) fn default_data_dir(chain_id: u64) -> PathBuf {
    if let Some(dir) = std::env::var_os("VERINFER_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("verinfer").join(format!("chain-{chain_id}"))
}

pub(crate) fn run_node(args: NodeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,jsonrpsee=warn".into());
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            // Plain text in log files (`verinfer testnet` writes each validator's to one).
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        // One JSON object a line (tracing's JSON layer: timestamp, level, message, the event's
        // fields and the spans it is in), on stderr, apart from the banner on stdout.
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
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
    let forking = args.fork_url.is_some();
    let data_dir = match (args.ephemeral, args.data_dir) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        // A fork is in memory unless asked otherwise, as anvil's: it would meet the devnet's dir.
        (false, None) if forking => None,
        (false, None) => Some(default_data_dir(args.chain_id)),
    };
    let fork = args.fork_url.map(|url| ForkConfig {
        url,
        block_number: args.fork_block_number,
        chain_id: args.fork_chain_id,
        retries: args.fork_retries,
        timeout_ms: args.fork_timeout_ms,
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
        filter_timeout: std::time::Duration::from_secs(args.filter_timeout),
        trace_max_steps: args.trace_max_steps,
        max_concurrent_traces: args.max_concurrent_traces.max(1),
        max_ws_connections: args.max_ws_connections,
        admission_budget: Some(admission_budget),
        replay_from: args.replay_from,
        validator: match (args.validator, args.key, args.genesis) {
            (true, Some(key), Some(genesis)) => Some(verinfer_node::config::ValidatorConfig {
                share: args.share.unwrap_or_else(|| key.with_file_name("share")),
                key,
                genesis,
                forge_outputs: args.forge_outputs,
            }),
            _ => None,
        },
        fork,
        gas_schedule: args
            .gas_schedule
            .as_deref()
            .map(verinfer_node::schedule::read_file)
            .transpose()?,
    };
    let prover = if args.zk_prover {
        // Fail at start, not at the first record, when ezkl is missing.
        verinfer_node::zk::ezkl::Ezkl::locate(None)?;
        let key = match args.zk_prover_key {
            Some(key) => key,
            None => verinfer_node::config::first_dev_key(&config.mnemonic)?,
        };
        Some((
            key,
            args.zk_cache
                .unwrap_or_else(verinfer_node::zk::default_cache_dir),
            args.zk_prover_concurrency.max(1),
        ))
    } else {
        None
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let handle = verinfer_node::start(config.clone()).await?;
        print_banner(&config, &handle);
        let stop = Arc::new(AtomicBool::new(false));
        let _prover = prover.map(|(private_key, cache, concurrency)| {
            let config = ProverConfig {
                rpc: handle.http_url(),
                cache,
                private_key,
                concurrency,
                poll: Duration::from_secs(1),
            };
            let stop = stop.clone();
            std::thread::spawn(move || prover::run(config, stop))
        });
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                out!("\nShutting down");
                stop.store(true, Ordering::Relaxed);
                handle.stop().await;
            }
        }
        // A proof in flight is abandoned (the thread is detached): its record stays unproven
        // and is proven after a restart.
        Ok(())
    })
}

pub(crate) fn print_banner(config: &NodeConfig, handle: &NodeHandle) {
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
    out!("Gas limit:         {}", chain.block_params.gas_limit);
    if let Some(fork) = &chain.config().fork {
        let point = fork.point();
        out!(
            "Fork:              {} at block {} ({}), remote chain id {}",
            point.url,
            point.number(),
            point.header.hash,
            point.remote_chain_id
        );
    }
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
    if head > chain.first_block() {
        out!("Head:              block {head} (resumed)");
    }
    let mining = match (config.mining, config.block_time) {
        _ if node.in_network() => "by the validator network (blocks apply once finalized)".into(),
        (false, _) => "manual (evm_mine)".to_string(),
        (true, Some(t)) => format!("every {}s", t.as_secs_f64()),
        (true, None) => "automine".to_string(),
    };
    out!("Mining:            {mining}");
    out!(
        "Explorer:          http://{}{}   Metrics: /metrics",
        handle.addr,
        verinfer_node::explorer::PATH
    );
    out!("\nListening on {}", handle.addr);
}
