//! A running node: configuration, the shared state RPC handlers use, and start-up.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use alloy_primitives::{keccak256, utils::parse_ether, Address, B256, U256};
use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use anyhow::{Context, Result};
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use tokio::sync::{broadcast, watch};
use verinfer_precompile::{Attester, InferencePrecompile, Mode, ModelInfo, ModelStore};

use crate::chain::{Chain, ChainConfig, ChainError, MinedBlock};
use crate::cids::{self, CidError};
use crate::filters::Filters;
use crate::sandbox::{AdmissionBudget, Sandbox, SandboxError};
use crate::storage::Storage;

/// Anvil's default mnemonic.
pub const DEFAULT_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Everything `verinfer node` can be told.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub chain_id: u64,
    pub accounts: usize,
    /// Balance of each dev account, in wei.
    pub balance: U256,
    pub mnemonic: String,
    /// Interval mining; `None` with `mining` on means automine.
    pub block_time: Option<Duration>,
    /// Mine blocks at all (automatically or on a timer).
    pub mining: bool,
    /// Where the database and uploaded models live; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Directories of `.onnx` models to admit at start.
    pub model_dirs: Vec<PathBuf>,
    /// The attester's private key; derived from the mnemonic when absent.
    pub attester_key: Option<B256>,
    pub gas_limit: u64,
    /// Largest JSON-RPC request body, in bytes.
    pub max_request_body: u32,
    /// Most blocks one log query or filter poll scans; a filter further behind is reset.
    pub max_log_range: u64,
    /// Most steps the default (struct logger) tracer records.
    pub trace_max_steps: u64,
    /// Most `debug_trace*` calls running at once.
    pub max_concurrent_traces: usize,
    /// Most WebSocket connections open at once (HTTP keeps its own slots).
    pub max_ws_connections: usize,
    /// Admit uploaded models in a child process within this budget first (see
    /// [`crate::sandbox`]); `None` admits them in the node's own process (embedded nodes).
    pub admission_budget: Option<AdmissionBudget>,
    /// Start from another node's chain: replay it from genesis, verifying every block, into
    /// this node's (empty) database, then serve it. The chain id comes from the source.
    pub replay_from: Option<ReplayFrom>,
}

/// Where `verinfer node --replay-from` reads a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// A running node's JSON-RPC URL.
    Rpc(String),
    /// A copy of a node's data directory.
    DataDir(PathBuf),
}

impl std::str::FromStr for ReplayFrom {
    type Err = std::convert::Infallible;

    /// `http://…` is a node's RPC; anything else a data directory.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s.starts_with("http://") || s.starts_with("https://") {
            Self::Rpc(s.to_string())
        } else {
            Self::DataDir(PathBuf::from(s))
        })
    }
}

impl std::fmt::Display for ReplayFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rpc(url) => f.write_str(url),
            Self::DataDir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8545,
            chain_id: 31337,
            accounts: 10,
            balance: parse_ether("10000").unwrap_or_default(),
            mnemonic: DEFAULT_MNEMONIC.to_string(),
            block_time: None,
            mining: true,
            data_dir: None,
            model_dirs: Vec::new(),
            attester_key: None,
            gas_limit: 30_000_000,
            max_request_body: 32 * 1024 * 1024,
            max_log_range: crate::filters::DEFAULT_MAX_LOG_RANGE,
            trace_max_steps: DEFAULT_TRACE_MAX_STEPS,
            max_concurrent_traces: DEFAULT_MAX_CONCURRENT_TRACES,
            max_ws_connections: DEFAULT_MAX_WS_CONNECTIONS,
            admission_budget: None,
            replay_from: None,
        }
    }
}

/// Default of `--trace-max-steps`: about 50 MB of struct-logger JSON at most.
pub const DEFAULT_TRACE_MAX_STEPS: u64 = 100_000;
/// Connections kept for HTTP on top of the WebSocket cap.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;
/// Default of `--max-ws-connections`.
pub const DEFAULT_MAX_WS_CONNECTIONS: usize = 1024;
/// Default of `--max-concurrent-traces`.
pub const DEFAULT_MAX_CONCURRENT_TRACES: usize = 2;

/// How blocks get mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MiningMode {
    /// A block as soon as a transaction arrives.
    Auto,
    /// A block every interval, with whatever is pending.
    Interval(Duration),
    /// Only on `evm_mine` / `anvil_mine`.
    Manual,
}

/// A model the start-up scan refused.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

/// The state shared by every RPC handler.
pub struct Node {
    chain: Mutex<Chain>,
    pub config: NodeConfig,
    /// Dev accounts, in mnemonic order.
    pub signers: Vec<PrivateKeySigner>,
    pub models: Arc<ModelStore>,
    pub attester: Address,
    /// Where uploaded models are kept, when the node has a data dir.
    pub model_dir: Option<PathBuf>,
    /// Where uploads are admitted first, when the node has an admission budget.
    sandbox: Option<Sandbox>,
    /// Every CID bound on this node, with its model (the strings behind the bindings in
    /// state; see [`crate::cids`]).
    cids: Mutex<BTreeMap<String, B256>>,
    /// Every mined block, for subscriptions.
    pub blocks: broadcast::Sender<Arc<MinedBlock>>,
    /// The hash of every transaction accepted into the pool, for pending-transaction
    /// subscriptions and filters.
    pub pending_transactions: broadcast::Sender<B256>,
    pub filters: Mutex<Filters>,
    /// Identifies this run of the node (`anvil_metadata`).
    pub instance_id: B256,
    /// `debug_trace*` calls running now.
    pub traces: std::sync::atomic::AtomicUsize,
    mining: watch::Sender<MiningMode>,
}

impl Node {
    /// Lock the chain. A panic while holding the lock cannot leave the database half written
    /// (blocks commit in one transaction), so a poisoned lock is taken over.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mining mode.
    pub fn mining(&self) -> MiningMode {
        *self.mining.borrow()
    }

    /// Change the mining mode.
    pub fn set_mining(&self, mode: MiningMode) {
        self.mining.send_replace(mode);
    }

    /// Mine one block and announce it. The announcement goes out under the chain lock, so
    /// subscribers see blocks in order even when several callers mine at once.
    pub fn mine(&self, timestamp: Option<u64>) -> Result<Arc<MinedBlock>, ChainError> {
        let mut chain = self.chain();
        let mined = Arc::new(chain.mine(timestamp)?);
        let _ = self.blocks.send(mined.clone());
        Ok(mined)
    }

    /// Admit uploaded model bytes (within the admission budget, when the node has one), keep
    /// them in the data dir, and return the model's metadata.
    pub fn add_model(&self, bytes: &[u8]) -> Result<ModelInfo, UploadError> {
        let known = self.models.get(&keccak256(bytes)).is_some();
        if let (Some(sandbox), false) = (&self.sandbox, known) {
            sandbox.check(bytes)?;
        }
        let info = self.models.add_bytes(bytes)?;
        if let Some(dir) = &self.model_dir {
            if let Err(e) = persist_model(dir, &info.id, bytes) {
                tracing::error!(
                    "could not keep model {} in {}: {e:#}",
                    info.id,
                    dir.display()
                );
            }
        }
        Ok(info)
    }

    /// Bind an OpenGradient-style CID to an admitted model (in chain state, and in the data
    /// dir's `cids.json`); returns false when it was bound to that model already.
    pub fn bind_cid(&self, cid: &str, model: B256) -> Result<bool, CidError> {
        if self.models.get(&model).is_none() {
            return Err(CidError::UnknownModel {
                cid: cid.into(),
                model,
            });
        }
        let mut chain = self.chain();
        let added = cids::bind(&mut chain, cid, model)?;
        let mut book = self.cids.lock().unwrap_or_else(|p| p.into_inner());
        if book.insert(cid.into(), model).is_none() {
            if let Some(dir) = &self.model_dir {
                if let Err(e) = cids::write_file(dir, &book) {
                    tracing::error!("could not keep the CIDs in {}: {e:#}", dir.display());
                }
            }
        }
        Ok(added)
    }

    /// The CIDs bound to each model in the current state, by model id.
    pub fn cids_by_model(&self) -> BTreeMap<B256, Vec<String>> {
        let chain = self.chain();
        let book = self.cids.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_model: BTreeMap<B256, Vec<String>> = BTreeMap::new();
        for (cid, model) in book.iter() {
            // A snapshot revert or a reset may have undone the binding since.
            if cids::bound_model(&chain, cid) == Some(*model) {
                by_model.entry(*model).or_default().push(cid.clone());
            }
        }
        by_model
    }

    /// The model a `modelCID` names: a hex id or a CID bound in the current state.
    pub fn resolve_cid(&self, cid: &str) -> Option<B256> {
        cids::resolve(&self.chain(), cid)
    }
}

/// Bind the CIDs listed in each folder's `cids.json` (the data dir's models first), then the
/// ones a replayed chain's source listed.
fn bind_start_up_cids(node: &Node, dirs: &[PathBuf], replayed: &[(String, B256)]) -> Result<()> {
    for dir in dirs {
        let file = dir.join(cids::CIDS_FILE);
        for (cid, target) in cids::read_file(dir)? {
            let model = match target {
                cids::Target::Id(id) => id,
                cids::Target::File(path) => {
                    keccak256(std::fs::read(&path).with_context(|| {
                        format!("{}: reading {}", file.display(), path.display())
                    })?)
                }
            };
            node.bind_cid(&cid, model)
                .with_context(|| format!("{}: binding {cid}", file.display()))?;
        }
    }
    for (cid, model) in replayed {
        node.bind_cid(cid, *model)
            .with_context(|| format!("binding {cid} as the replayed chain's source does"))?;
    }
    Ok(())
}

/// Why an upload was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Admission refused the model.
    #[error(transparent)]
    Refused(#[from] verinfer_precompile::AdmissionError),
    /// The sandboxed admission refused it, or it ran past its budget.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

fn persist_model(dir: &Path, id: &B256, bytes: &[u8]) -> Result<()> {
    let path = dir.join(format!("{id}.onnx"));
    if path.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!(".{id}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Replay the chain at `from` into `storage` (see [`crate::replay::replay_into`]) unless a
/// finished replay is there already; returns the storage, the source's models' bytes and its
/// CIDs.
fn replay_from(from: &ReplayFrom, storage: Storage) -> Result<(Storage, Replayed)> {
    use crate::replay::{data_dir::DataDir, replay_into, rpc::Rpc, Options, Source};
    if let Some(done) = storage.meta("replayed_from")? {
        tracing::info!(
            "the database already holds the chain replayed from {}: resuming it",
            String::from_utf8_lossy(&done)
        );
        return Ok((storage, Replayed::default()));
    }
    let source: Box<dyn Source> = match from {
        ReplayFrom::Rpc(url) => Box::new(Rpc::new(url)?),
        ReplayFrom::DataDir(dir) => Box::new(DataDir::open(dir)?),
    };
    tracing::info!("replaying the chain of {from} from genesis, verifying every block");
    let mut shown = std::time::Instant::now();
    let report = replay_into(
        source.as_ref(),
        &Options::default(),
        &storage,
        |done, total| {
            if shown.elapsed() >= Duration::from_secs(2) {
                tracing::info!("replayed block {done} of {total}");
                shown = std::time::Instant::now();
            }
        },
    )
    .with_context(|| format!("replaying {from}"))?;
    if let Some(mismatch) = report.mismatches.first() {
        anyhow::bail!(
            "the chain of {from} does not verify ({mismatch}); not serving it \
             (`verinfer verify` lists every mismatch)"
        );
    }
    let mut models = Vec::new();
    for id in source.models()? {
        let bytes = source.model(id)?;
        if keccak256(&bytes) != id {
            anyhow::bail!("{from} serves other bytes under model id {id}");
        }
        models.push(bytes);
    }
    let cids = source.cids()?;
    storage.set_meta("replayed_from", from.to_string().as_bytes())?;
    tracing::info!(
        "replayed {} blocks, {} transactions, {} inferences from {from} in {:.2} s; state root {}",
        report.blocks,
        report.transactions,
        report.inferences,
        report.elapsed.as_secs_f64(),
        report.state_root
    );
    Ok((storage, Replayed { models, cids }))
}

/// What `--replay-from` brings besides the chain.
#[derive(Default)]
struct Replayed {
    /// Every model's bytes.
    models: Vec<Vec<u8>>,
    /// Every CID binding, with its model.
    cids: Vec<(String, B256)>,
}

/// Derive the dev accounts from a mnemonic (BIP-44 path m/44'/60'/0'/0/i, as anvil does).
pub fn dev_accounts(mnemonic: &str, count: usize) -> Result<Vec<PrivateKeySigner>> {
    (0..count)
        .map(|i| {
            MnemonicBuilder::<English>::default()
                .phrase(mnemonic)
                .index(i as u32)
                .and_then(|b| b.build())
                .with_context(|| format!("deriving account {i} from the mnemonic"))
        })
        .collect()
}

/// The default attester key: derived from the mnemonic, so a devnet restarts with the same one.
pub fn default_attester_key(mnemonic: &str) -> B256 {
    keccak256(format!("verinfer attester key\0{mnemonic}"))
}

/// A started node.
pub struct NodeHandle {
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
    let signers = dev_accounts(&config.mnemonic, config.accounts)?;
    let attester_key = config
        .attester_key
        .unwrap_or_else(|| default_attester_key(&config.mnemonic));
    let attester = Attester::from_bytes(&attester_key).context("invalid attester key")?;
    let attester_address = attester.address();

    let models = Arc::new(ModelStore::default());
    let mut rejected = Vec::new();
    let (storage, model_dir) = match &config.data_dir {
        Some(dir) => {
            let model_dir = dir.join("models");
            std::fs::create_dir_all(&model_dir)
                .with_context(|| format!("creating {}", model_dir.display()))?;
            let storage = Storage::open(&dir.join("chain.redb"))
                .with_context(|| format!("opening the database in {}", dir.display()))?;
            (storage, Some(model_dir))
        }
        None => (Storage::in_memory()?, None),
    };
    let mut chain_id = config.chain_id;
    let mut replayed_cids = Vec::new();
    let storage = match config.replay_from.clone() {
        Some(from) => {
            let (storage, seen) = tokio::task::spawn_blocking(move || replay_from(&from, storage))
                .await
                .context("the replay thread failed")??;
            replayed_cids = seen.cids;
            for bytes in seen.models {
                let info = models
                    .add_bytes(&bytes)
                    .context("admitting a model of the replayed chain")?;
                if let Some(dir) = &model_dir {
                    persist_model(dir, &info.id, &bytes)?;
                }
            }
            chain_id = storage
                .meta("chain_id")?
                .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(chain_id);
            storage
        }
        None => storage,
    };
    let mut scan = Vec::new();
    scan.extend(model_dir.clone());
    scan.extend(config.model_dirs.iter().cloned());
    for dir in &scan {
        let results = models
            .add_dir(dir)
            .with_context(|| format!("reading models from {}", dir.display()))?;
        for result in results {
            if let Err(e) = result {
                rejected.push(Rejected {
                    path: dir.display().to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if let Some(store_dir) = &model_dir {
        for info in models.list() {
            if let Some(model) = models.get(&info.id) {
                persist_model(store_dir, &info.id, &model.bytes)?;
            }
        }
    }

    let precompile = Arc::new(InferencePrecompile::new(
        models.clone(),
        Mode::Sign(attester),
    ));
    let chain_config = ChainConfig {
        chain_id,
        gas_limit: config.gas_limit,
        initial_base_fee: 1_000_000_000,
        genesis_accounts: signers
            .iter()
            .map(|s| (s.address(), config.balance))
            .collect(),
    };
    let chain = Chain::open(chain_config, storage, precompile)?;

    let mode = match (config.mining, config.block_time) {
        (false, _) => MiningMode::Manual,
        (true, Some(interval)) => MiningMode::Interval(interval),
        (true, None) => MiningMode::Auto,
    };
    let (mining, mut mining_rx) = watch::channel(mode);
    let (blocks, _) = broadcast::channel(1024);
    let (pending_transactions, _) = broadcast::channel(4096);
    let node = Arc::new(Node {
        chain: Mutex::new(chain),
        config: config.clone(),
        signers,
        models,
        attester: attester_address,
        model_dir,
        sandbox: config.admission_budget.clone().map(Sandbox::new),
        cids: Mutex::default(),
        blocks,
        pending_transactions,
        filters: Mutex::new(Filters::default()),
        instance_id: keccak256(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
                .to_be_bytes(),
        ),
        traces: Default::default(),
        mining,
    });

    bind_start_up_cids(&node, &scan, &replayed_cids)?;

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
    );
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(http_guard))
        .build(SocketAddr::new(config.host, config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let addr = server.local_addr()?;
    let module = crate::rpc::module(node.clone())?;
    let server = server.start(module);

    let miner_node = node.clone();
    let miner = tokio::spawn(async move {
        loop {
            let mode = *mining_rx.borrow_and_update();
            match mode {
                MiningMode::Interval(interval) => {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {
                            let node = miner_node.clone();
                            let mined = tokio::task::spawn_blocking(move || node.mine(None)).await;
                            if let Ok(Err(e)) = mined {
                                tracing::error!("interval mining failed: {e}");
                            }
                        }
                        changed = mining_rx.changed() => if changed.is_err() { return },
                    }
                }
                MiningMode::Auto | MiningMode::Manual => {
                    if mining_rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    });

    Ok(NodeHandle {
        node,
        addr,
        rejected,
        server,
        miner,
    })
}

impl Node {
    /// Pool a signed transaction and, under automine, mine it at once. Returns its hash once
    /// it is pooled (or mined and durably stored, under automine).
    pub fn submit(
        &self,
        tx: alloy_consensus::transaction::Recovered<alloy_consensus::TxEnvelope>,
    ) -> Result<B256, ChainError> {
        let (hash, mined) = {
            let mut chain = self.chain();
            let hash = chain.submit(tx)?;
            let _ = self.pending_transactions.send(hash);
            let mined = if self.mining() == MiningMode::Auto && chain.has_ready() {
                let mined = Arc::new(chain.mine(None)?);
                // Announced under the chain lock: concurrent senders' blocks go out in order.
                let _ = self.blocks.send(mined.clone());
                Some(mined)
            } else {
                None
            };
            (hash, mined)
        };
        if let Some(mined) = mined {
            if let Some((_, reason)) = mined.dropped.iter().find(|(h, _)| *h == hash) {
                return Err(ChainError::InvalidTransaction(reason.clone()));
            }
        }
        Ok(hash)
    }
}
