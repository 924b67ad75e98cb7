//! Starting a node: open the chain, load the models, start the JSON-RPC server and the miner.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::RpcModule;
use tokio::sync::watch;
use verinfer_precompile::{
    AdmissionLimits, Attester, InferencePrecompile, Mode, ModelStore, DEFAULT_PLAN_CACHE_BYTES,
};

use crate::chain::{Chain, ChainConfig};
use crate::config::{default_attester_key, dev_accounts, NodeConfig, MAX_HTTP_CONNECTIONS};
use crate::fork::{Fork, ForkConfig, ForkPoint};
use crate::models::{self, persist_model, Rejected};
use crate::node::{MiningMode, Node};
use crate::replay::ReplayFrom;
use crate::storage::Storage;

/// A started node.
pub struct NodeHandle {
    /// The node's shared state.
    pub node: Arc<Node>,
    /// Where the RPC server listens.
    pub addr: SocketAddr,
    /// Models the start-up scan refused.
    pub rejected: Vec<Rejected>,
    server: ServerHandle,
    miner: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// The HTTP URL of the RPC server.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The WebSocket URL of the RPC server.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stop the miner and the server, giving open connections up to five seconds to finish,
    /// then wait (up to five seconds more) until nothing else holds the node, so its database
    /// is closed when this returns and the data directory can be opened again.
    pub async fn stop(self) {
        self.miner.abort();
        let _ = self.miner.await;
        let _ = self.server.stop();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server.stopped()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.node) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until the server stops.
    pub async fn stopped(self) {
        self.server.stopped().await;
    }
}

/// Open the chain, load models and start the RPC server and the miner.
pub async fn start(config: NodeConfig) -> Result<NodeHandle> {
    if config.validator.is_some() && config.gas_schedule.is_some() {
        // Every validator must price models alike; genesis.json carries no schedule yet.
        anyhow::bail!(
            "--gas-schedule is not for validators: a network's chains use the default schedule"
        );
    }
    let signers = dev_accounts(&config.mnemonic, config.accounts)?;
    let attester_key = config
        .attester_key
        .unwrap_or_else(|| default_attester_key(&config.mnemonic));
    let attester = Attester::from_bytes(&attester_key).context("invalid attester key")?;
    let attester_address = attester.address();

    let network = match &config.validator {
        Some(v) => Some((
            (
                crate::consensus::ValidatorKey::read(&v.key)?,
                crate::consensus::ValidatorShare::read(&v.share)?,
            ),
            crate::consensus::Genesis::read(&v.genesis)?,
        )),
        None => None,
    };
    if network.is_some() && (config.data_dir.is_none() || config.replay_from.is_some()) {
        anyhow::bail!("a validator needs --data-dir (and cannot start with --replay-from)");
    }
    let (storage, model_dir) = open_storage(config.data_dir.as_deref())?;
    let (storage, chain_id, replayed) = match config.replay_from.clone() {
        Some(from) => replay_first(from, storage, config.chain_id).await?,
        None => (
            storage,
            network
                .as_ref()
                .map_or(config.chain_id, |(_, g)| g.chain_id),
            Default::default(),
        ),
    };
    // Models are priced by the chain's own schedule, recorded when it was created.
    let schedule = crate::schedule::of_chain(&storage, config.gas_schedule.as_ref())?;
    // A model one call of which no transaction could pay for is refused at admission.
    let limits = AdmissionLimits {
        max_call_gas: config.gas_limit.min(crate::chain::TX_GAS_LIMIT_CAP),
        ..AdmissionLimits::default()
    };
    let models = Arc::new(ModelStore::new(limits, schedule, DEFAULT_PLAN_CACHE_BYTES));
    for bytes in &replayed.models {
        let info = models
            .add_bytes(bytes)
            .context("admitting a model of the replayed chain")?;
        if let Some(dir) = model_dir.as_deref() {
            persist_model(dir, &info.id, bytes)?;
        }
    }
    let replayed_cids = replayed.cids;
    let fork = open_fork(&storage, config.fork.as_ref(), config.data_dir.as_deref()).await?;
    let chain_id = match (&fork, &config.fork) {
        (Some(fork), Some(asked)) => asked.chain_id.unwrap_or(fork.point().remote_chain_id),
        _ => chain_id,
    };
    let mut scan = Vec::new();
    scan.extend(model_dir.clone());
    scan.extend(config.model_dirs.iter().cloned());
    let rejected = models::scan(&models, &scan, model_dir.as_deref())?;

    let precompile = Arc::new(InferencePrecompile::new(
        models.clone(),
        Mode::Sign(attester),
    ));
    let chain_config = ChainConfig {
        genesis_timestamp: network.as_ref().map(|(_, g)| g.timestamp),
        ..ChainConfig::for_node(&config, &signers, chain_id, fork)
    };
    let chain = Chain::open(chain_config, storage, precompile)?;

    let mode = match (config.mining, config.block_time) {
        (false, _) => MiningMode::Manual,
        (true, Some(interval)) => MiningMode::Interval(interval),
        (true, None) => MiningMode::Auto,
    };
    let (mining, mining_rx) = watch::channel(mode);
    let node = Arc::new(Node::new(
        config.clone(),
        chain,
        signers,
        models,
        attester_address,
        model_dir,
        mining,
    ));

    // The CIDs of each folder's cids.json (the data dir's first), then a replayed source's.
    for (cid, model, file) in models::start_up_cids(&scan)? {
        node.bind_cid(&cid, model)
            .with_context(|| format!("{}: binding {cid}", file.display()))?;
    }
    for (cid, model) in replayed_cids {
        node.bind_cid(&cid, model)
            .with_context(|| format!("binding {cid} as the replayed chain's source does"))?;
    }

    if let (Some(((key, share), genesis)), Some(data_dir), Some(v)) =
        (network, &config.data_dir, &config.validator)
    {
        crate::consensus::start(
            node.clone(),
            crate::consensus::ValidatorOptions {
                key,
                share,
                genesis,
                dir: data_dir.join("consensus"),
                listen: None,
                attester_key,
                forge_outputs: v.forge_outputs,
            },
        )?;
    }

    let (server, addr) = serve(&config, crate::rpc::module(node.clone())?, node.clone()).await?;

    let miner = tokio::spawn(mine_on_interval(node.clone(), mining_rx));

    Ok(NodeHandle {
        node,
        addr,
        rejected,
        server,
        miner,
    })
}

/// The data dir's file of values fetched from a fork's remote.
const FORK_FILE: &str = "fork.redb";

/// The data dir's database and model folder, or an in-memory database.
fn open_storage(data_dir: Option<&Path>) -> Result<(Storage, Option<PathBuf>)> {
    Ok(match data_dir {
        Some(dir) => {
            let model_dir = dir.join("models");
            std::fs::create_dir_all(&model_dir)
                .with_context(|| format!("creating {}", model_dir.display()))?;
            let storage = Storage::open(&dir.join("chain.redb"))
                .with_context(|| format!("opening the database in {}", dir.display()))?;
            (storage, Some(model_dir))
        }
        None => (Storage::in_memory()?, None),
    })
}

/// The fork the data dir holds, or a new one of `asked`'s remote (whose fork block is then
/// kept, so a restart reopens the same fork without asking the remote for it again). With a
/// data dir, what the fork fetches is kept in its `fork.redb` and not asked for again.
async fn open_fork(
    storage: &Storage,
    asked: Option<&ForkConfig>,
    data_dir: Option<&Path>,
) -> Result<Option<Arc<Fork>>> {
    let kept: Option<ForkPoint> = match storage.meta("fork")? {
        Some(bytes) => Some(
            serde_json::from_slice(&bytes).context("the data dir's fork record does not decode")?,
        ),
        None => None,
    };
    let fork = match (asked, kept) {
        (None, None) => return Ok(None),
        (None, Some(kept)) => anyhow::bail!(
            "the data dir holds a fork of {} at block {}: start with --fork-url {}",
            kept.url,
            kept.number(),
            kept.url
        ),
        (Some(asked), Some(kept)) => {
            if asked.url != kept.url || asked.block_number.is_some_and(|n| n != kept.number()) {
                anyhow::bail!(
                    "the data dir holds a fork of {} at block {}, not of {} at {}: use another --data-dir",
                    kept.url,
                    kept.number(),
                    asked.url,
                    asked
                        .block_number
                        .map_or("its latest block".to_string(), |n| format!("block {n}"))
                );
            }
            Fork::open(asked, kept)?
        }
        (Some(asked), None) => {
            if storage.head()?.is_some() {
                anyhow::bail!("the data dir holds a chain that is not a fork: use another --data-dir to fork {}", asked.url);
            }
            let config = asked.clone();
            let fork = tokio::task::spawn_blocking(move || Fork::connect(&config))
                .await
                .context("the fork's start-up task failed")?
                .context("starting the fork")?;
            storage.set_meta("fork", &serde_json::to_vec(fork.point())?)?;
            fork
        }
    };
    let fork = match data_dir {
        Some(dir) => fork.with_store(&dir.join(FORK_FILE))?,
        None => fork,
    };
    Ok(Some(Arc::new(fork)))
}

/// Replay the chain at `from` into `storage` before the node starts on it: admits (and keeps
/// in `model_dir`) the models the chain used; returns the storage, the replayed chain's id
/// and its CID bindings.
async fn replay_first(
    from: ReplayFrom,
    storage: Storage,
    default_chain_id: u64,
) -> Result<(Storage, u64, models::Replayed)> {
    let (storage, replayed) =
        tokio::task::spawn_blocking(move || models::replay_from(&from, storage))
            .await
            .context("the replay thread failed")??;
    let chain_id = storage
        .meta("chain_id")?
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(default_chain_id);
    Ok((storage, chain_id, replayed))
}

/// Serve `module` on the configured address, with the body, connection and WebSocket caps.
async fn serve(
    config: &NodeConfig,
    module: RpcModule<Node>,
    node: Arc<Node>,
) -> Result<(ServerHandle, SocketAddr)> {
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_body)
        .max_response_body_size(u32::MAX)
        // WebSockets have their own cap below this one (the HTTP guard), so HTTP keeps
        // MAX_HTTP_CONNECTIONS slots however many WebSockets are open.
        .max_connections((config.max_ws_connections + MAX_HTTP_CONNECTIONS) as u32)
        .set_id_provider(crate::rpc::subscribe::HexIdProvider::default())
        .build();
    let http_guard = crate::rpc::http_guard::HttpGuardLayer::new(
        config.max_request_body as usize,
        config.max_ws_connections,
        node.clone(),
    );
    let methods: std::collections::HashSet<String> =
        module.method_names().map(str::to_string).collect();
    let methods = Arc::new(methods);
    let telemetry = node.telemetry.clone();
    let rpc_middleware =
        jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer_fn(move |service| {
            crate::rpc::telemetry::RpcTelemetry::new(service, telemetry.clone(), methods.clone())
        });
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(http_guard))
        .set_rpc_middleware(rpc_middleware)
        .build(SocketAddr::new(config.host, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = server.local_addr()?;
    Ok((server.start(module), addr))
}

/// The interval miner: mines a block every interval while the mode says so, and waits for a
/// mode change otherwise.
async fn mine_on_interval(node: Arc<Node>, mut mining_rx: watch::Receiver<MiningMode>) {
    loop {
        let mode = *mining_rx.borrow_and_update();
        match mode {
            MiningMode::Interval(interval) => {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {
                        let node = node.clone();
                        let mined = tokio::task::spawn_blocking(move || node.mine(None)).await;
                        if let Ok(Err(e)) = mined {
                            tracing::error!("interval mining failed: {e}");
                        }
                    }
                    changed = mining_rx.changed() => if changed.is_err() { return },
                }
            }
            MiningMode::Auto | MiningMode::Manual | MiningMode::Network => {
                if mining_rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}
