//! `--fork`: a fork of a remote chain, verinfer beside `anvil --fork-url`, in one run. The remote
//! is an anvil holding reader contracts with storage; between it and each fork stands a proxy
//! that counts what the fork asks of the remote. For each kind of read — an account never read
//! before, a slot never read before, a read already cached — the rows give the JSON-RPC requests
//! and HTTP round trips a call costs, and its latency seen by the fork's client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, B256, U256};
use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use verinfer_node::client::Client;
use verinfer_tests::proxy::{Proxy, ProxyCounts};

use crate::peer::{Binaries, Kind, Peer};
use crate::progress;

/// Reader contracts on the remote.
const CONTRACTS: u64 = 50;
/// Storage slots each reader holds.
const SLOTS: u64 = 20;
/// Rounds of reads over every slot once all are cached.
const WARM_ROUNDS: u64 = 3;
/// Blocks the remote mines before the fork (more than `BLOCKHASH`'s window of 256).
const REMOTE_BLOCKS: u64 = 300;
/// `return sload(calldataload(0))`: a call reads the slot its calldata names.
const READER: &str = "0x6000355460005260206000f3";

/// One kind of read on one fork.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ForkRow {
    node: String,
    read: String,
    calls: u64,
    requests_per_call: f64,
    round_trips_per_call: f64,
    p50_us: u64,
    p99_us: u64,
    /// The remote methods asked in this phase, with their counts.
    methods: BTreeMap<String, u64>,
}

fn reader(c: u64) -> Address {
    Address::left_padding_from(&(0xf0_0000 + c).to_be_bytes())
}

fn value(c: u64, slot: u64) -> U256 {
    U256::from(1000 * c + slot + 1)
}

/// The remote with its readers, the fork block, and each fork's rows.
pub(crate) fn run_all(bins: &Binaries) -> anyhow::Result<Vec<ForkRow>> {
    progress("fork: the remote (anvil) and its readers");
    let remote = Peer::start(Kind::Anvil, bins)?;
    let client = Client::new(&remote.url)?;
    let rpc = |method: &str, params: Value| -> anyhow::Result<Value> {
        client
            .call(method, params)
            .map_err(|e| anyhow!("remote {method}: {e}"))
    };
    for c in 0..CONTRACTS {
        rpc("anvil_setCode", json!([reader(c), READER]))?;
        for slot in 0..SLOTS {
            rpc(
                "anvil_setStorageAt",
                json!([reader(c), U256::from(slot), B256::from(value(c, slot))]),
            )?;
        }
    }
    rpc("anvil_mine", json!([REMOTE_BLOCKS]))?;
    let head: U256 = serde_json::from_value(rpc("eth_blockNumber", json!([]))?)?;
    let block = head.to::<u64>().to_string();
    let remote_addr: SocketAddr = remote.url.trim_start_matches("http://").parse()?;

    let mut rows = Vec::new();
    for kind in [Kind::VerinferEphemeral, Kind::Anvil] {
        progress(&format!("fork: {kind} --fork-url at block {block}"));
        let proxy = Proxy::start(remote_addr)?;
        let fork = Peer::start_with(
            kind,
            bins,
            &["--fork-url", proxy.url(), "--fork-block-number", &block],
        )?;
        rows.extend(measure(kind, &fork.url, &proxy).with_context(|| format!("{kind} fork"))?);
    }
    Ok(rows)
}

fn measure(kind: Kind, url: &str, proxy: &Proxy) -> anyhow::Result<Vec<ForkRow>> {
    let client = Client::new(url)?;
    let read = |c: u64, slot: u64| -> anyhow::Result<Duration> {
        let data = Bytes::from(B256::from(U256::from(slot)).0.to_vec());
        let started = Instant::now();
        let out: Bytes = client
            .call(
                "eth_call",
                json!([{"to": reader(c), "data": data}, "latest"]),
            )
            .map_err(|e| anyhow!("eth_call reader {c} slot {slot}: {e}"))?;
        let took = started.elapsed();
        let got = U256::try_from_be_slice(&out).unwrap_or_default();
        if got != value(c, slot) {
            bail!(
                "reader {c} slot {slot}: {got} where the remote holds {}",
                value(c, slot)
            );
        }
        Ok(took)
    };
    let mut rows = Vec::new();
    let mut phase = |name: &str, reads: &mut dyn Iterator<Item = (u64, u64)>| {
        let before = proxy.counts();
        let times = reads
            .map(|(c, slot)| read(c, slot))
            .collect::<anyhow::Result<Vec<_>>>()?;
        rows.push(row(kind, name, &times, proxy.counts().since(&before)));
        anyhow::Ok(())
    };
    phase(
        "account not read before (code, slot 0)",
        &mut (0..CONTRACTS).map(|c| (c, 0)),
    )?;
    phase(
        "slot not read before",
        &mut (0..CONTRACTS).flat_map(|c| (1..SLOTS).map(move |s| (c, s))),
    )?;
    phase(
        "cached (every slot again)",
        &mut (0..WARM_ROUNDS)
            .flat_map(|_| (0..CONTRACTS).flat_map(|c| (0..SLOTS).map(move |s| (c, s)))),
    )?;
    Ok(rows)
}

fn row(kind: Kind, read: &str, times: &[Duration], remote: ProxyCounts) -> ForkRow {
    let mut micros: Vec<u64> = times.iter().map(|t| t.as_micros() as u64).collect();
    micros.sort_unstable();
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 * q) as usize).min(micros.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let calls = times.len().max(1) as f64;
    ForkRow {
        node: kind.to_string(),
        read: read.to_string(),
        calls: times.len() as u64,
        requests_per_call: remote.requests as f64 / calls,
        round_trips_per_call: remote.round_trips as f64 / calls,
        p50_us: at(0.5),
        p99_us: at(0.99),
        methods: remote.methods,
    }
}

/// The rows as markdown, with verinfer's p50 beside anvil's for each kind of read.
pub(crate) fn markdown(rows: &[ForkRow]) -> String {
    let mut out = String::from(
        "# Fork mode: verinfer --fork-url beside anvil --fork-url\n\n\
         The remote is anvil 1.7.1 with 50 reader contracts of 20 slots each, forked at its \
         block 300. Each fork's requests to the remote cross a counting proxy: *requests* are \
         JSON-RPC requests (each member of a batch counts), *round trips* HTTP requests. \
         Latency is one `eth_call` as the fork's client sees it, remote fetches included. \
         Both forks in one run on this machine (`scripts/bench --fork`).\n\n\
         | node | read | calls | requests/call | round trips/call | p50 µs | p99 µs | p50 ÷ anvil's | remote methods |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let anvil = rows
            .iter()
            .find(|a| a.node == Kind::Anvil.to_string() && a.read == r.read)
            .map(|a| a.p50_us)
            .filter(|&p| p > 0);
        let ratio = anvil
            .map(|a| format!("{:.2}×", r.p50_us as f64 / a as f64))
            .unwrap_or_default();
        let methods = r
            .methods
            .iter()
            .map(|(m, n)| format!("{m} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {methods} |\n",
            r.node,
            r.read,
            r.calls,
            r.requests_per_call,
            r.round_trips_per_call,
            r.p50_us,
            r.p99_us,
            ratio
        ));
    }
    out
}
