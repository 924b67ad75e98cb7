//! The hostile-load campaign (`verinfer-bench --attacks`): each attack of the hardening issue
//! against a fresh `verinfer node`, with `eth_blockNumber` probed every 100 ms meanwhile; the
//! node's peak resident memory (VmHWM) and the slowest probe are what each row reports.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, TxKind};
use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_tests::node::{open_ws, post, post_chunked, signed_tx};

use crate::peer::{Binaries, Kind, Peer};

/// One attack's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct AttackRow {
    /// The finding of the hardening issue it reproduces.
    pub finding: &'static str,
    pub attack: &'static str,
    /// What the node did.
    pub outcome: String,
    /// Peak resident memory of the node process (VmHWM), MB.
    pub peak_rss_mb: f64,
    /// The slowest `eth_blockNumber` during the attack, ms.
    pub slowest_probe_ms: f64,
    /// Probes sent during the attack.
    pub probes: usize,
    /// Probes that got no answer.
    pub failed_probes: usize,
    pub seconds: f64,
}

/// The budgets every row is held to (the hardening issue's "done when").
pub(crate) const MAX_RSS_MB: f64 = 1536.0;
pub(crate) const MAX_PROBE_MS: f64 = 1000.0;

type Attack = fn(&Target) -> anyhow::Result<String>;

/// Run every attack (or those of the findings in `only`), each on a fresh node.
pub(crate) fn run_all(bins: &Binaries, only: &[String]) -> anyhow::Result<Vec<AttackRow>> {
    let attacks: [(&str, &str, Attack); 9] = [
        (
            "F1",
            "16.7M-gas tx looping STATICCALL predict on a 2 000-node Relu chain",
            predict_loop,
        ),
        (
            "F2/F3",
            "every hostile and stress model uploaded, 3 at a time",
            hostile_uploads,
        ),
        (
            "F4",
            "3 concurrent default-tracer traces of the F1 transaction",
            concurrent_traces,
        ),
        ("F5", "evm_mine of 2^64-1 blocks", mine_forever),
        (
            "F6",
            "pool flood: 300 future-nonce txs of 1.5 MB, nonce 2^64-1",
            pool_flood,
        ),
        (
            "F7",
            "8 MB of code by anvil_setCode, then 50 transfers",
            big_code,
        ),
        ("F10", "1 100 idle WebSockets", idle_websockets),
        ("F14", "a chunked 50 MB request body", chunked_body),
        (
            "uploads",
            "4 concurrent uploads of 4 real models",
            concurrent_uploads,
        ),
    ];
    let mut rows = Vec::new();
    for (finding, attack, run) in attacks {
        if !only.is_empty() && !only.iter().any(|o| o == finding) {
            continue;
        }
        crate::progress(&format!("attack {finding}: {attack}"));
        rows.push(
            run_one(bins, finding, attack, run)
                .with_context(|| format!("attack {finding}: {attack}"))?,
        );
    }
    Ok(rows)
}

/// A node under attack.
pub(crate) struct Target<'a> {
    addr: SocketAddr,
    bins: &'a Binaries,
    /// Dev account 0's next nonce.
    nonce: Mutex<u64>,
}

impl Target<'_> {
    fn rpc(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (_, reply) = post(self.addr, &body.to_string())?;
        let reply: Value = serde_json::from_str(&reply)?;
        match reply.get("error") {
            Some(e) => Err(anyhow!("{method}: {e}")),
            None => Ok(reply["result"].clone()),
        }
    }

    /// Send a transaction from dev account 0 and wait for its receipt.
    fn send(&self, to: TxKind, input: Vec<u8>, gas: u64) -> anyhow::Result<Value> {
        let nonce = {
            let mut nonce = self.nonce.lock().unwrap_or_else(|p| p.into_inner());
            *nonce += 1;
            *nonce - 1
        };
        let hash = self.rpc(
            "eth_sendRawTransaction",
            json!([signed_tx(nonce, to, input, 0, gas)]),
        )?;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]))?;
            if !receipt.is_null() {
                return Ok(receipt);
            }
            if Instant::now() > deadline {
                bail!("no receipt for {hash} in 300 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn upload(&self, path: &Path) -> anyhow::Result<Value> {
        let bytes = Bytes::from(std::fs::read(path)?);
        self.rpc("verinfer_uploadModel", json!([bytes]))
    }
}

fn run_one(
    bins: &Binaries,
    finding: &'static str,
    attack: &'static str,
    run: Attack,
) -> anyhow::Result<AttackRow> {
    let peer = Peer::start(Kind::VerinferEphemeral, bins)?;
    let addr: SocketAddr = peer.url.trim_start_matches("http://").parse()?;
    let target = Target {
        addr,
        bins,
        nonce: Mutex::new(0),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
            let (mut slowest, mut probes, mut failed) = (Duration::ZERO, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answered = post(addr, body).is_ok_and(|(status, _)| status == 200);
                slowest = slowest.max(sent.elapsed());
                probes += 1;
                failed += usize::from(!answered);
                std::thread::sleep(Duration::from_millis(100));
            }
            (slowest, probes, failed)
        })
    };
    let started = Instant::now();
    let outcome = run(&target).unwrap_or_else(|e| format!("attack failed: {e:#}"));
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (slowest, probes, failed_probes) = prober
        .join()
        .map_err(|_| anyhow!("the probe thread panicked"))?;
    Ok(AttackRow {
        finding,
        attack,
        outcome,
        peak_rss_mb: peer.peak_rss().unwrap_or_default() as f64 / 1e6,
        slowest_probe_ms: slowest.as_secs_f64() * 1e3,
        probes,
        failed_probes,
        seconds,
    })
}

/// Runtime code that STATICCALLs 0xA00 with the calldata appended to it until less than
/// 2.1M gas is left.
fn predict_looper(calldata: &[u8]) -> anyhow::Result<Vec<u8>> {
    let len = u16::try_from(calldata.len())?.to_be_bytes();
    const DATA: u8 = 41;
    let mut code = vec![
        0x61, len[0], len[1], 0x61, 0, DATA, 0x60, 0, 0x39, // codecopy(0, DATA, len)
        0x5b, // 9: loop
        0x62, 0x20, 0x00, 0x00, 0x5a, 0x10, // gas() < 0x200000
        0x61, 0, 39, 0x57, // jumpi(end)
        0x60, 0, 0x60, 0, 0x61, len[0], len[1], 0x60, 0, // ret 0,0; args 0,len
        0x61, 0x0a, 0x00, 0x5a, 0xfa, 0x50, // staticcall(gas(), 0xA00, ...); pop
        0x61, 0, 9, 0x56, // jump(loop)
        0x5b, 0x00, // 39: end: stop
    ];
    debug_assert_eq!(code.len(), DATA as usize);
    code.extend_from_slice(calldata);
    Ok(code)
}

fn relu_chain_predict(target: &Target) -> anyhow::Result<Vec<u8>> {
    let model = target.upload(&target.bins.models.join("stress/relu_chain.onnx"))?;
    let id = model["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no model id: {model}"))?
        .parse()?;
    let inputs = model["inputs"][0]["shape"]
        .as_array()
        .ok_or_else(|| anyhow!("no input shape: {model}"))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as u32))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| anyhow!("a non-numeric dimension: {model}"))?;
    let elements: u32 = inputs.iter().product();
    Ok(IInference::predictCall {
        modelId: id,
        inputs: vec![Tensor {
            shape: inputs,
            values: vec![Default::default(); elements as usize],
            decimals: 0,
        }],
        outputDecimals: 0,
    }
    .abi_encode())
}

/// Deploy the looper and send one transaction of 16.7M gas (about the EIP-7825 cap) through it;
/// its hash and how long it took to mine.
fn send_predict_loop(target: &Target) -> anyhow::Result<(String, f64)> {
    let predict = relu_chain_predict(target)?;
    // The call the loop repeats must succeed, or the loop only measures reverts.
    let call = json!([{"to": verinfer_precompile::ADDRESS, "data": Bytes::from(predict.clone())}, "latest"]);
    target
        .rpc("eth_call", call)
        .context("the predict call the loop repeats")?;
    let runtime = predict_looper(&predict)?;
    let deployed = target.send(
        TxKind::Create,
        verinfer_tests::evm::deployer(&runtime),
        3_000_000,
    )?;
    let looper: Address = serde_json::from_value(deployed["contractAddress"].clone())?;
    let sent = Instant::now();
    let receipt = target.send(TxKind::Call(looper), Vec::new(), 16_700_000)?;
    let hash = receipt["transactionHash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((hash, sent.elapsed().as_secs_f64()))
}

fn predict_loop(target: &Target) -> anyhow::Result<String> {
    let (hash, seconds) = send_predict_loop(target)?;
    let receipt = target.rpc("eth_getTransactionReceipt", json!([hash]))?;
    let gas = receipt["gasUsed"]
        .as_str()
        .and_then(|g| u64::from_str_radix(g.trim_start_matches("0x"), 16).ok())
        .unwrap_or_default();
    Ok(format!(
        "{:.1}M gas of predicts mined in {seconds:.2} s",
        gas as f64 / 1e6
    ))
}

fn concurrent_traces(target: &Target) -> anyhow::Result<String> {
    let (hash, _) = send_predict_loop(target)?;
    let outcomes: Vec<String> = std::thread::scope(|s| {
        let traces: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(
                    || match target.rpc("debug_traceTransaction", json!([hash])) {
                        Ok(trace) => format!(
                            "{} steps",
                            trace["structLogs"].as_array().map_or(0, Vec::len)
                        ),
                        Err(e) => format!("refused ({})", short(&e.to_string())),
                    },
                )
            })
            .collect();
        traces
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| "panicked".into()))
            .collect()
    });
    Ok(outcomes.join("; "))
}

fn hostile_uploads(target: &Target) -> anyhow::Result<String> {
    let mut files = Vec::new();
    for dir in ["hostile", "stress"] {
        files.extend(verinfer_precompile::store::onnx_files(
            &target.bins.models.join(dir),
        )?);
    }
    let queue = Mutex::new(files.clone());
    let (admitted, refused) = (Mutex::new(0), Mutex::new(0));
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let Some(file) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                    return;
                };
                let counter = match target.upload(&file) {
                    Ok(_) => &admitted,
                    Err(_) => &refused,
                };
                if let Ok(mut n) = counter.lock() {
                    *n += 1;
                }
            });
        }
    });
    let count = |m: Mutex<i32>| m.into_inner().unwrap_or_default();
    Ok(format!(
        "{} files: {} refused, {} admitted",
        files.len(),
        count(refused),
        count(admitted)
    ))
}

fn mine_forever(target: &Target) -> anyhow::Result<String> {
    Ok(
        match target.rpc("evm_mine", json!([{"blocks": "0xffffffffffffffff"}])) {
            Ok(v) => format!("accepted: {v}"),
            Err(e) => format!("refused ({})", short(&e.to_string())),
        },
    )
}

fn pool_flood(target: &Target) -> anyhow::Result<String> {
    let (mut accepted, mut refused, mut reason) = (0, 0, String::new());
    let to = TxKind::Call(Address::repeat_byte(0x42));
    for i in 0..300u64 {
        let raw = signed_tx(1_000 + i, to, vec![0u8; 1_500_000], 0, 16_000_000);
        match target.rpc("eth_sendRawTransaction", json!([raw])) {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused += 1;
                reason = short(&e.to_string());
            }
        }
    }
    let max_nonce = signed_tx(u64::MAX, to, Vec::new(), 0, 21_000);
    let last = match target.rpc("eth_sendRawTransaction", json!([max_nonce])) {
        Ok(_) => "accepted".to_string(),
        Err(e) => format!("refused ({})", short(&e.to_string())),
    };
    Ok(format!(
        "{accepted} pooled, {refused} refused ({reason}); nonce 2^64-1 {last}"
    ))
}

fn big_code(target: &Target) -> anyhow::Result<String> {
    let transfer = || target.send(TxKind::Call(Address::repeat_byte(0x43)), Vec::new(), 21_000);
    let mean_ms = |count: u32| -> anyhow::Result<f64> {
        let started = Instant::now();
        for _ in 0..count {
            transfer()?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e3 / f64::from(count))
    };
    let before = mean_ms(49)?;
    let code = Bytes::from(vec![0x5bu8; 8 << 20]);
    target.rpc("anvil_setCode", json!([Address::repeat_byte(0x77), code]))?;
    let first = mean_ms(1)?;
    let after = mean_ms(49)?;
    Ok(format!(
        "a transfer's block {before:.1} ms before; {first:.0} ms for the one carrying the edit, \
         {after:.1} ms after"
    ))
}

fn idle_websockets(target: &Target) -> anyhow::Result<String> {
    let mut open: Vec<TcpStream> = Vec::new();
    let mut refused = 0;
    for _ in 0..1_100 {
        let (status, stream) = open_ws(target.addr);
        if status == 101 {
            open.push(stream);
        } else {
            refused += 1;
        }
    }
    let http = target.rpc("eth_chainId", json!([])).is_ok();
    Ok(format!(
        "{} open, {refused} refused; HTTP answers meanwhile: {http}",
        open.len()
    ))
}

fn chunked_body(target: &Target) -> anyhow::Result<String> {
    Ok(format!("HTTP {}", post_chunked(target.addr, 50 << 20)))
}

fn concurrent_uploads(target: &Target) -> anyhow::Result<String> {
    let real = target.bins.models.join("real");
    let files = [
        "mlp_classifier",
        "xgb_classifier",
        "random_forest_classifier",
        "lstm_forecaster",
    ]
    .map(|name| real.join(format!("{name}.onnx")));
    let started = Instant::now();
    let results: Vec<bool> = std::thread::scope(|s| {
        let uploads: Vec<_> = files
            .iter()
            .map(|file| s.spawn(|| target.upload(file).is_ok()))
            .collect();
        uploads
            .into_iter()
            .map(|u| u.join().unwrap_or(false))
            .collect()
    });
    Ok(format!(
        "{} of 4 admitted in {:.2} s",
        results.iter().filter(|ok| **ok).count(),
        started.elapsed().as_secs_f64()
    ))
}

/// The first 100 characters of an error.
fn short(text: &str) -> String {
    text.chars().take(100).collect()
}

/// The rows as a Markdown table, with whether each stayed within the budgets.
pub(crate) fn markdown(rows: &[AttackRow]) -> String {
    let mut out = format!(
        "# Hostile-load campaign\n\nEach attack on a fresh `verinfer node --ephemeral`; \
         `eth_blockNumber` probed every 100 ms meanwhile. Budgets: peak RSS < {MAX_RSS_MB:.0} MB, \
         every probe answered in < {MAX_PROBE_MS:.0} ms.\n\n\
         | finding | attack | outcome | peak RSS MB | slowest probe ms | probes (failed) | s | within budget |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let within =
            r.peak_rss_mb < MAX_RSS_MB && r.slowest_probe_ms < MAX_PROBE_MS && r.failed_probes == 0;
        out += &format!(
            "| {} | {} | {} | {:.0} | {:.0} | {} ({}) | {:.1} | {} |\n",
            r.finding,
            r.attack,
            r.outcome.replace('|', "/"),
            r.peak_rss_mb,
            r.slowest_probe_ms,
            r.probes,
            r.failed_probes,
            r.seconds,
            if within { "yes" } else { "**no**" }
        );
    }
    out
}
