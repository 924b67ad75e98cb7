//! Fork mode: the state of a remote chain at a pinned block, fetched over JSON-RPC the first
//! time something reads it and cached from then on.
//!
//! The remote's values at the fork block never change, so a value fetched once is good for the
//! life of the fork; everything the local chain writes shadows them in the [`WorldState`]
//! (see `state.rs`). An account costs one request (a batch of `eth_getBalance`,
//! `eth_getTransactionCount` and `eth_getCode`), a storage slot one `eth_getStorageAt`.
//!
//! `foundry-fork-db`, which anvil uses, was the first choice; its latest release (0.27) is built
//! on revm 41 while this node runs revm 43, so its types do not meet ours. This module is the
//! small part of it a devnet needs, synchronous, over the node's own HTTP client.
//!
//! [`WorldState`]: crate::state::WorldState

mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, B256, U256, U64};
use revm::primitives::KECCAK_EMPTY;
use revm::state::Bytecode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{Client, ClientError};
use crate::state::AccountState;
use store::ForkStore;
pub use store::StoreError;

/// The largest answer the node accepts from the remote (code is at most 48 KiB; a header a few).
const MAX_ANSWER: usize = 8 << 20;

/// The wait before the first retry of a failed request; it doubles with each retry.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How many block hashes below the fork block `BLOCKHASH` can see (the EVM's window).
pub const HASH_WINDOW: u64 = 256;

/// What to fork and how to talk to it (`verinfer node --fork-url …`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkConfig {
    /// The remote's JSON-RPC URL.
    pub url: String,
    /// The block to fork at; `None`: the remote's latest at start.
    pub block_number: Option<u64>,
    /// The chain id the fork runs under; `None`: the remote's.
    pub chain_id: Option<u64>,
    /// Retries of a failed request (connection refused, timeout), with doubling back-off.
    pub retries: u32,
    /// Timeout of one request, in milliseconds.
    pub timeout_ms: u64,
}

impl ForkConfig {
    /// Retries of a failed request when none are given (`--fork-retries`).
    pub const DEFAULT_RETRIES: u32 = 3;
    /// Timeout of one request when none is given (`--fork-timeout-ms`).
    pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
}

/// The fork block as the remote sealed it: the local chain's first block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// The remote's JSON-RPC URL.
    pub url: String,
    /// The remote's chain id.
    pub remote_chain_id: u64,
    /// The fork block's header, as the remote serves it (`eth_getBlockByNumber`).
    pub header: alloy_rpc_types_eth::Header,
    /// Hashes of the blocks below and at the fork block `BLOCKHASH` can reach, lowest first.
    pub hashes: Vec<B256>,
}

impl ForkPoint {
    /// The fork block's number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// The number of the first block in [`Self::hashes`].
    pub fn first_hashed(&self) -> u64 {
        self.number() + 1 - self.hashes.len() as u64
    }

    /// The hashes of the remote's blocks below the fork block (`BLOCKHASH` reaches them).
    pub fn hashes_below(&self) -> Vec<B256> {
        self.hashes[..self.hashes.len().saturating_sub(1)].to_vec()
    }
}

/// Why the remote could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    /// A request failed after its retries.
    #[error("fork remote {url}: fetching {what}: {}", describe(.cause))]
    Remote {
        /// The remote's URL.
        url: String,
        /// What was being fetched.
        what: String,
        /// The last failure.
        cause: ClientError,
    },
    /// The remote's answer is not what an Ethereum node answers.
    #[error("fork remote {url}: fetching {what}: unexpected answer: {detail}")]
    Garbage {
        /// The remote's URL.
        url: String,
        /// What was being fetched.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The fork block is past the remote's head.
    #[error("fork block {asked} is beyond the remote's head {head} ({url})")]
    BeyondHead {
        /// The remote's URL.
        url: String,
        /// The block asked for.
        asked: u64,
        /// The remote's latest block.
        head: u64,
    },
    /// The data dir's file of fetched values cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The URL is not one the node can reach.
    #[error("fork URL {0:?} is not supported: use http://host:port[/path] (https is not built in; put anvil --fork-url https://… in front and fork that)")]
    Url(String),
}

#[derive(Default)]
struct Cache {
    accounts: HashMap<Address, Option<AccountState>>,
    storage: HashMap<(Address, U256), U256>,
    codes: HashMap<B256, Bytecode>,
    requests: u64,
}

/// A remote chain at the fork block, with everything fetched from it so far.
pub struct Fork {
    client: Client,
    retries: u32,
    point: ForkPoint,
    cache: Mutex<Cache>,
    /// With a data dir: every fetched value, kept for the next start on the same fork block.
    store: Option<ForkStore>,
}

impl std::fmt::Debug for Fork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fork")
            .field("url", &self.point.url)
            .field("block", &self.point.number())
            .finish_non_exhaustive()
    }
}

fn client(config: &ForkConfig) -> Result<Client, ForkError> {
    Ok(Client::new(&config.url)
        .map_err(|_| ForkError::Url(config.url.clone()))?
        .with_timeout(Duration::from_millis(config.timeout_ms.max(1)))
        .with_max_body(MAX_ANSWER))
}

impl Fork {
    /// Reach the remote and pin the fork block: its header and the hashes `BLOCKHASH` needs.
    pub fn connect(config: &ForkConfig) -> Result<Self, ForkError> {
        let fork = Self {
            client: client(config)?,
            retries: config.retries,
            point: ForkPoint {
                url: config.url.clone(),
                remote_chain_id: 0,
                header: Default::default(),
                hashes: Vec::new(),
            },
            cache: Mutex::default(),
            store: None,
        };
        let chain_id: U64 = fork.request("the chain id", "eth_chainId", json!([]))?;
        let head: U64 = fork.request("the latest block number", "eth_blockNumber", json!([]))?;
        let head = head.to::<u64>();
        let number = config.block_number.unwrap_or(head);
        if number > head {
            return Err(ForkError::BeyondHead {
                url: config.url.clone(),
                asked: number,
                head,
            });
        }
        let first = number.saturating_sub(HASH_WINDOW - 1);
        let calls: Vec<(&str, Value)> = (first..=number)
            .map(|n| ("eth_getBlockByNumber", json!([format!("{n:#x}"), false])))
            .collect();
        let what = format!("blocks {first}..={number}");
        let blocks: Vec<Option<alloy_rpc_types_eth::Block>> =
            fork.with_retries(&what, || fork.client.batch(&calls))?;
        let mut hashes = Vec::with_capacity(blocks.len());
        let mut header = None;
        for (n, block) in (first..=number).zip(blocks) {
            let block =
                block.ok_or_else(|| fork.garbage(&what, format!("block {n} is missing")))?;
            if block.header.number != n {
                return Err(fork.garbage(
                    &what,
                    format!("asked block {n}, got {}", block.header.number),
                ));
            }
            hashes.push(block.header.hash);
            header = Some(block.header);
        }
        let point = ForkPoint {
            url: config.url.clone(),
            remote_chain_id: chain_id.to(),
            header: header.ok_or_else(|| fork.garbage(&what, "no block".into()))?,
            hashes,
        };
        Ok(Self { point, ..fork })
    }

    /// A fork of `point`, reached with `config`'s timeout and retries.
    pub fn open(config: &ForkConfig, point: ForkPoint) -> Result<Self, ForkError> {
        Ok(Self {
            client: client(config)?,
            retries: config.retries,
            point,
            cache: Mutex::default(),
            store: None,
        })
    }

    /// Keep what is fetched in the file at `path` (the data dir's `fork.redb`), starting from
    /// what it holds already for this fork block: none of that is asked of the remote again.
    pub fn with_store(mut self, path: &Path) -> Result<Self, ForkError> {
        let store = ForkStore::open(path, &self.point)?;
        let fetched = store.load()?;
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        cache.accounts.extend(fetched.accounts);
        cache.storage.extend(fetched.storage);
        cache.codes.extend(fetched.codes);
        self.store = Some(store);
        Ok(self)
    }

    /// The fork block.
    pub fn point(&self) -> &ForkPoint {
        &self.point
    }

    /// Requests sent to the remote so far (a batch counts once).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// An account at the fork block (`None`: empty, as EIP-161 counts it).
    pub fn account(&self, address: &Address) -> Result<Option<AccountState>, ForkError> {
        if let Some(account) = self.lock().accounts.get(address) {
            return Ok(*account);
        }
        let at = self.block_tag();
        let what = format!("account {address}");
        let calls = [
            ("eth_getBalance", json!([address, at])),
            ("eth_getTransactionCount", json!([address, at])),
            ("eth_getCode", json!([address, at])),
        ];
        let answers: Vec<Value> = self.with_retries(&what, || self.client.batch(&calls))?;
        let parse = |i: usize| -> Result<U256, ForkError> {
            serde_json::from_value(answers[i].clone())
                .map_err(|e| self.garbage(&what, format!("{}: {e}", calls[i].0)))
        };
        let balance = parse(0)?;
        let nonce = u64::try_from(parse(1)?)
            .map_err(|_| self.garbage(&what, "nonce over 64 bits".into()))?;
        let code: Bytes = serde_json::from_value(answers[2].clone())
            .map_err(|e| self.garbage(&what, format!("eth_getCode: {e}")))?;
        let code_hash = if code.is_empty() {
            KECCAK_EMPTY
        } else {
            keccak256(&code)
        };
        let account =
            (balance != U256::ZERO || nonce != 0 || !code.is_empty()).then_some(AccountState {
                nonce,
                balance,
                code_hash,
            });
        if let Some(store) = &self.store {
            let code = (!code.is_empty()).then_some(&code);
            if let Err(e) = store.put_account(address, account.as_ref(), code) {
                tracing::warn!("{e}: account {address} will be fetched again after a restart");
            }
        }
        let mut cache = self.lock();
        if !code.is_empty() {
            cache.codes.insert(code_hash, Bytecode::new_raw(code));
        }
        cache.accounts.insert(*address, account);
        Ok(account)
    }

    /// A storage slot at the fork block.
    pub fn storage(&self, address: &Address, slot: &U256) -> Result<U256, ForkError> {
        if let Some(value) = self.lock().storage.get(&(*address, *slot)) {
            return Ok(*value);
        }
        let what = format!("storage slot {slot:#x} of {address}");
        let value: U256 = self.with_retries(&what, || {
            self.client.call(
                "eth_getStorageAt",
                json!([address, B256::from(*slot), self.block_tag()]),
            )
        })?;
        if let Some(store) = &self.store {
            if let Err(e) = store.put_slot(address, slot, &value) {
                tracing::warn!(
                    "{e}: slot {slot:#x} of {address} will be fetched again after a restart"
                );
            }
        }
        self.lock().storage.insert((*address, *slot), value);
        Ok(value)
    }

    /// The remote's answer to `method` (history at or below the fork block, which the local
    /// chain does not hold: blocks, transactions, receipts, logs).
    pub fn history(&self, method: &str, params: Value) -> Result<Value, ForkError> {
        self.request(&format!("{method} {params}"), method, params)
    }

    /// Code by hash, if an account fetched so far has it.
    pub fn code(&self, hash: &B256) -> Option<Bytecode> {
        self.lock().codes.get(hash).cloned()
    }

    fn block_tag(&self) -> String {
        format!("{:#x}", self.point.number())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain values: a panic elsewhere cannot leave it half-written.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn garbage(&self, what: &str, detail: String) -> ForkError {
        ForkError::Garbage {
            url: self.point.url.clone(),
            what: what.to_string(),
            detail,
        }
    }

    fn request<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        method: &str,
        params: Value,
    ) -> Result<T, ForkError> {
        self.with_retries(what, || self.client.call(method, params.clone()))
    }

    /// Run `send`, retrying transport failures; an answer that is not JSON-RPC is not retried.
    fn with_retries<T>(
        &self,
        what: &str,
        send: impl Fn() -> Result<T, ClientError>,
    ) -> Result<T, ForkError> {
        let mut delay = RETRY_BACKOFF;
        let mut attempt = 0;
        loop {
            self.lock().requests += 1;
            match send() {
                Ok(value) => return Ok(value),
                Err(e @ (ClientError::Malformed(_) | ClientError::TooLarge(_))) => {
                    return Err(self.garbage(what, e.to_string()))
                }
                Err(e) if attempt < self.retries && transient(&e) => {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(e) => {
                    return Err(ForkError::Remote {
                        url: self.point.url.clone(),
                        what: what.to_string(),
                        cause: e,
                    })
                }
            }
        }
    }
}

/// A client error with its cause, in one line (the URL is said already).
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Connect { source, .. } => format!("cannot connect: {source}"),
        e => e.to_string(),
    }
}

/// Whether a failure may pass on a retry: the connection, not the answer.
fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Connect { .. } | ClientError::Io(_) => true,
        ClientError::Http(code) => *code >= 500 || *code == 429,
        _ => false,
    }
}
