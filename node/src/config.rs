//! What `verinfer node` can be told, with its defaults (anvil's where anvil has one).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{keccak256, utils::parse_ether, B256, U256};
use alloy_signer_local::{coins_bip39::English, MnemonicBuilder, PrivateKeySigner};
use anyhow::{Context, Result};

use crate::replay::ReplayFrom;
use crate::sandbox::AdmissionBudget;

/// Anvil's default mnemonic.
pub const DEFAULT_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Everything `verinfer node` can be told.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Address to listen on.
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Number of dev accounts derived from the mnemonic and funded at genesis.
    pub accounts: usize,
    /// Balance of each dev account, in wei.
    pub balance: U256,
    /// BIP-39 mnemonic of the dev accounts (and, by default, of the attester key).
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
    /// Block gas limit.
    pub gas_limit: u64,
    /// Largest JSON-RPC request body, in bytes.
    pub max_request_body: u32,
    /// Most blocks one log query or filter poll scans; a filter further behind is reset.
    pub max_log_range: u64,
    /// How long a polling filter lives without a poll.
    pub filter_timeout: std::time::Duration,
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
    /// Run as one validator of a network (see [`crate::consensus`]) instead of a devnet that
    /// mines its own blocks.
    pub validator: Option<ValidatorConfig>,
    /// Fork a remote chain at a block (`--fork-url`).
    pub fork: Option<crate::fork::ForkConfig>,
    /// The gas schedule of a chain this node creates (`None`: the default); a chain that exists
    /// keeps the one it recorded, and refuses another (see [`crate::schedule`]).
    pub gas_schedule: Option<verinfer_precompile::GasSchedule>,
}

/// What a validator is started with.
#[derive(Clone, Debug)]
pub struct ValidatorConfig {
    /// Its key file.
    pub key: PathBuf,
    /// Its threshold share file.
    pub share: PathBuf,
    /// The network's genesis file.
    pub genesis: PathBuf,
    /// Test-only: forge one output of every inference it proposes (a byzantine proposer).
    pub forge_outputs: bool,
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
            filter_timeout: crate::filters::DEFAULT_FILTER_TIMEOUT,
            trace_max_steps: DEFAULT_TRACE_MAX_STEPS,
            max_concurrent_traces: DEFAULT_MAX_CONCURRENT_TRACES,
            max_ws_connections: DEFAULT_MAX_WS_CONNECTIONS,
            admission_budget: None,
            replay_from: None,
            validator: None,
            fork: None,
            gas_schedule: None,
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

/// The private key of the first dev account of `mnemonic` (what tools send with by default).
pub fn first_dev_key(mnemonic: &str) -> Result<B256> {
    let accounts = dev_accounts(mnemonic, 1)?;
    let first = accounts.first().context("no dev account")?;
    Ok(first.to_bytes())
}

/// The default attester key: derived from the mnemonic, so a devnet restarts with the same one.
pub fn default_attester_key(mnemonic: &str) -> B256 {
    keccak256(format!("verinfer attester key\0{mnemonic}"))
}
