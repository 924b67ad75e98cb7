//! The workloads, driven by one Rust client over keep-alive HTTP (alloy's reqwest transport).
//! Transactions are signed before the clock starts; a transaction workload ends when the last
//! transaction's receipt is available.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::Encodable2718;
use alloy::network::Ethereum;
use alloy::primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Chain id of every node under test.
pub(crate) const CHAIN_ID: u64 = 31337;

/// Throughput and latency of one workload on one node.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Stats {
    pub count: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Transactions the node left pending until the client sent `evm_mine` (see
    /// [`Client::wait_success`]).
    pub stalled: u64,
}

impl Stats {
    fn new(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        Self {
            count: latencies.len() as u64,
            seconds: wall.as_secs_f64(),
            per_second: latencies.len() as f64 / wall.as_secs_f64().max(1e-9),
            p50_us: at(0.50),
            p99_us: at(0.99),
            stalled: 0,
        }
    }
}

/// A JSON-RPC connection to one node.
#[derive(Clone)]
pub(crate) struct Client {
    provider: RootProvider<Ethereum>,
    stalls: Arc<AtomicU64>,
    /// Whether a stalled transaction gets an `evm_mine` (not on a validator network).
    nudge: bool,
}

impl Client {
    pub(crate) fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            provider: RootProvider::new_http(url.parse()?),
            stalls: Arc::default(),
            nudge: true,
        })
    }

    /// A client of a validator network's validator: no `evm_mine` nudges (blocks are the
    /// network's), transactions simply wait to finalize.
    pub(crate) fn network(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            nudge: false,
            ..Self::new(url)?
        })
    }

    /// One call; the node's error is the error.
    pub(crate) async fn rpc<
        T: DeserializeOwned + Send + Sync + Unpin + 'static + std::fmt::Debug,
    >(
        &self,
        method: &'static str,
        params: Value,
    ) -> anyhow::Result<T> {
        self.provider
            .raw_request(method.into(), params)
            .await
            .with_context(|| method.to_string())
    }

    /// Wait until `hash` has a receipt; errors if it reverted.
    ///
    /// A transaction still pending after [`STALL`] gets one `evm_mine` and counts as stalled:
    /// anvil 1.7.1 with automine sometimes leaves a transaction that arrived while it was
    /// mining in its pool until the next transaction comes, and a workload's last transaction
    /// has no next one. The stall's time counts, as it would for a user waiting on it.
    pub(crate) async fn wait_success(&self, hash: B256) -> anyhow::Result<Value> {
        let started = Instant::now();
        let mut nudged = false;
        loop {
            let receipt: Value = self.rpc("eth_getTransactionReceipt", json!([hash])).await?;
            if !receipt.is_null() {
                if receipt["status"] != "0x1" {
                    bail!("transaction {hash} reverted: {receipt}");
                }
                return Ok(receipt);
            }
            if self.nudge && !nudged && started.elapsed() > STALL {
                nudged = true;
                self.stalls.fetch_add(1, Ordering::Relaxed);
                let _: Value = self.rpc("evm_mine", json!([])).await?;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let tx: Value = self.rpc("eth_getTransactionByHash", json!([hash])).await?;
                let state = if tx.is_null() {
                    "unknown to the node"
                } else {
                    "still pending"
                };
                bail!("no receipt for {hash} after 30 s: the transaction is {state}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Transactions stalled so far.
    pub(crate) fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }
}

/// How long a transaction may stay pending under automine before it counts as stalled.
pub(crate) const STALL: Duration = Duration::from_secs(2);

/// A key with its next nonce, signing EIP-1559 transactions offline.
pub(crate) struct Sender {
    key: PrivateKeySigner,
    pub nonce: u64,
}

impl Sender {
    /// `key` with its pending nonce on the node.
    pub(crate) async fn new(client: &Client, key: PrivateKeySigner) -> anyhow::Result<Self> {
        let nonce: alloy::primitives::U64 = client
            .rpc("eth_getTransactionCount", json!([key.address(), "pending"]))
            .await?;
        Ok(Self {
            key,
            nonce: nonce.to(),
        })
    }

    /// `key` of an account that never sent a transaction.
    pub(crate) fn fresh(key: PrivateKeySigner) -> Self {
        Self { key, nonce: 0 }
    }

    pub(crate) fn address(&self) -> Address {
        self.key.address()
    }

    /// Sign the next transaction.
    pub(crate) fn sign(
        &mut self,
        to: TxKind,
        value: U256,
        input: Bytes,
        gas: u64,
    ) -> anyhow::Result<Bytes> {
        let tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: self.nonce,
            gas_limit: gas,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to,
            value,
            access_list: Default::default(),
            input,
        };
        let signature = self.key.sign_hash_sync(&tx.signature_hash())?;
        self.nonce += 1;
        Ok(TxEnvelope::Eip1559(tx.into_signed(signature))
            .encoded_2718()
            .into())
    }

    /// `count` signed 1-wei transfers, each to a fresh address (so state grows).
    pub(crate) fn transfers(&mut self, count: u64, salt: u64) -> anyhow::Result<Vec<Bytes>> {
        (0..count)
            .map(|i| {
                let to = fresh_address(salt, i);
                self.sign(TxKind::Call(to), U256::from(1), Bytes::new(), 21_000)
            })
            .collect()
    }
}

/// A deterministic address nobody holds the key of.
pub(crate) fn fresh_address(salt: u64, i: u64) -> Address {
    let mut seed = [0u8; 16];
    seed[..8].copy_from_slice(&salt.to_be_bytes());
    seed[8..].copy_from_slice(&i.to_be_bytes());
    Address::from_word(keccak256(seed))
}

/// Send signed transactions one after another, each after the previous one's receipt.
pub(crate) async fn send_sequential(client: &Client, raws: Vec<Bytes>) -> anyhow::Result<Stats> {
    send_concurrent(client, vec![raws]).await
}

/// Send each sender's transactions from its own task, concurrently, on one connection pool.
/// Each sender waits for its transaction's receipt before sending its next one (as a wallet
/// does), so one transaction per sender is in flight; latency is send to receipt.
///
/// (Pipelining a sender's transactions without the wait makes anvil 1.7.1 leave some pending
/// until another transaction arrives, and halves its throughput; see [`Client::wait_success`].)
pub(crate) async fn send_concurrent(
    client: &Client,
    batches: Vec<Vec<Bytes>>,
) -> anyhow::Result<Stats> {
    let stalls = client.stalls();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|raws| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(raws.len());
                for raw in raws {
                    let t = Instant::now();
                    let hash: B256 = client.rpc("eth_sendRawTransaction", json!([raw])).await?;
                    client.wait_success(hash).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let mut stats = Stats::new(latencies, started.elapsed());
    stats.stalled = client.stalls() - stalls;
    Ok(stats)
}

/// Send signed transactions one after another from a JavaScript client (`bench/js/send.mjs`,
/// Node's fetch with keep-alive), waiting for each receipt as [`send_sequential`] does: what a
/// dapp's script sees, beside the Rust client's figure.
pub(crate) async fn send_sequential_js(url: &str, raws: Vec<Bytes>) -> anyhow::Result<Stats> {
    run_js(url, &serde_json::to_value(raws)?, false).await
}

/// Repeat one read-only call `count` times from the JavaScript client (see
/// [`send_sequential_js`]).
pub(crate) async fn repeat_call_js(
    url: &str,
    method: &str,
    params: Value,
    count: u64,
) -> anyhow::Result<Stats> {
    let input = json!({"method": method, "params": params, "count": count});
    run_js(url, &input, true).await
}

/// Run `bench/js/send.mjs` on `input` and read its latencies.
async fn run_js(url: &str, input: &Value, calls: bool) -> anyhow::Result<Stats> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Output {
        latencies_us: Vec<f64>,
        wall_us: f64,
        stalled: u64,
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js/send.mjs");
    let mut file = tempfile::NamedTempFile::new()?;
    serde_json::to_writer(&mut file, input)?;
    let (url, path) = (url.to_string(), file.path().to_path_buf());
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new("node");
        command.arg(&script).arg(url).arg(path);
        if calls {
            command.arg("--call");
        }
        command.output()
    })
    .await?
    .context("running node (Node.js) for the JavaScript client")?;
    if !output.status.success() {
        bail!(
            "the JavaScript client failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let out: Output = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the JavaScript client printed {:?}", output.stdout))?;
    let micros = |us: f64| Duration::from_nanos((us * 1e3) as u64);
    let mut stats = Stats::new(
        out.latencies_us.into_iter().map(micros).collect(),
        micros(out.wall_us),
    );
    stats.stalled = out.stalled;
    Ok(stats)
}

/// Repeat one read-only call `count` times.
pub(crate) async fn repeat_call(
    client: &Client,
    method: &'static str,
    params: Value,
    count: u64,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let t = Instant::now();
        let _: Value = client.rpc(method, params.clone()).await?;
        latencies.push(t.elapsed());
    }
    Ok(Stats::new(latencies, started.elapsed()))
}

/// Deploy `init` code from `sender`; returns the contract address.
pub(crate) async fn deploy(
    client: &Client,
    sender: &mut Sender,
    init: &[u8],
) -> anyhow::Result<Address> {
    let raw = sender.sign(
        TxKind::Create,
        U256::ZERO,
        Bytes::copy_from_slice(init),
        300_000,
    )?;
    let hash: B256 = client.rpc("eth_sendRawTransaction", json!([raw])).await?;
    let receipt = client.wait_success(hash).await?;
    serde_json::from_value(receipt["contractAddress"].clone())
        .with_context(|| format!("no contract address in {receipt}"))
}

/// `readers` clients repeating `reads` (each its method and params, in turn) for as long as
/// one sender sends `raws` (each after the previous one's receipt, as [`send_sequential`]): the
/// reads' stats over that window, and the sender's. The readers are other clients than the
/// sender: their own connections, on a runtime (threads) of their own, as other programs
/// would be.
pub(crate) async fn reads_while_sending(
    client: &Client,
    url: &str,
    readers: usize,
    reads: Vec<(&'static str, Value)>,
    raws: Vec<Bytes>,
) -> anyhow::Result<(Stats, Stats)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sending = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reads = Arc::new(reads);
    let started = Instant::now();
    let tasks = (0..readers)
        .map(|reader| {
            let (client, sending, reads) = (Client::new(url)?, sending.clone(), reads.clone());
            Ok(runtime.spawn(async move {
                let mut latencies = Vec::new();
                // Readers start at different reads of the cycle, so every kind runs at once.
                let mut next = reader;
                while sending.load(Ordering::Relaxed) {
                    let (method, params) = &reads[next % reads.len()];
                    next += 1;
                    let t = Instant::now();
                    let _: Value = client.rpc(method, params.clone()).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sent = send_sequential(client, raws).await;
    let window = started.elapsed();
    sending.store(false, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    runtime.shutdown_background();
    Ok((Stats::new(latencies, window), sent?))
}

/// A burst: every sender sends all its transactions at once, one after another without waiting
/// for receipts (each send waits only for the node's answer), all senders together; the clock
/// stops when every sender's last transaction has its receipt. Throughput only: a transaction's
/// latency in a burst is its place in the queue.
pub(crate) async fn send_burst(client: &Client, batches: Vec<Vec<Bytes>>) -> anyhow::Result<Stats> {
    let count: usize = batches.iter().map(Vec::len).sum();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|raws| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut last = None;
                for raw in raws {
                    let hash: B256 = client.rpc("eth_sendRawTransaction", json!([raw])).await?;
                    last = Some(hash);
                }
                if let Some(hash) = last {
                    // Nonces are consecutive: the last one mined means every one was.
                    client.wait_success(hash).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let wall = started.elapsed();
    Ok(Stats {
        count: count as u64,
        seconds: wall.as_secs_f64(),
        per_second: count as f64 / wall.as_secs_f64().max(1e-9),
        ..Stats::default()
    })
}
