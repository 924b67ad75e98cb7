//! `--zk`: the zero-knowledge proof of inference per model family, on a fresh node: setup
//! time, prove time, proof size, verification gas, the gas of the registry's `submit`, and the
//! deviation of the circuit's outputs from the node's f32 record.

use std::path::Path;
use std::time::Instant;

use alloy::primitives::{keccak256, Bytes, I256, U256};
use alloy_sol_types::{sol, SolCall};
use anyhow::{anyhow, Context};
use serde::Serialize;
use serde_json::json;
use verinfer_node::client::Client;
use verinfer_node::wire::InferenceJson;
use verinfer_node::zk::{self, send::Sender, ProveOptions, SetupOptions};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::ADDRESS;

use crate::peer::{Binaries, Kind, Peer};
use crate::progress;

sol! {
    function verifyProof(bytes proof, uint256[] instances) external returns (bool);
}

/// The families measured: (name, file under models/).
const FAMILIES: &[(&str, &str)] = &[
    ("linear (MatMul + Add, 4 → 1)", "linear.onnx"),
    ("MLP, 4 → 8 → 1 (Gemm, ReLU, Sigmoid)", "credit.onnx"),
    (
        "MLP, 64 → 512 → 512 → 10 (Gemm, ReLU; 300k weights)",
        "mlp.onnx",
    ),
    (
        "CNN, 1×12×12 (Conv, ReLU, MaxPool, Conv, GlobalAveragePool, Gemm, Softmax)",
        "cnn.onnx",
    ),
];

/// One family's figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ZkRow {
    family: String,
    file: String,
    logrows: u32,
    setup_s: f64,
    prove_s: f64,
    proof_bytes: usize,
    verifier_code_bytes: usize,
    verify_gas: u64,
    submit_gas: u64,
    max_deviation: f64,
    tolerance: String,
    error: Option<String>,
}

/// Measure every family, each on its own fresh node.
pub(crate) fn run_all(bins: &Binaries) -> anyhow::Result<Vec<ZkRow>> {
    let mut rows = Vec::new();
    for (family, file) in FAMILIES {
        progress(&format!("zk: {family}"));
        let peer = Peer::start(Kind::VerinferEphemeral, bins)?;
        let cache = tempfile::tempdir()?;
        let row =
            run_one(&peer.url, &bins.models.join(file), cache.path()).unwrap_or_else(|e| ZkRow {
                family: String::new(),
                file: String::new(),
                logrows: 0,
                setup_s: 0.0,
                prove_s: 0.0,
                proof_bytes: 0,
                verifier_code_bytes: 0,
                verify_gas: 0,
                submit_gas: 0,
                max_deviation: 0.0,
                tolerance: String::new(),
                error: Some(format!("{e:#}")),
            });
        rows.push(ZkRow {
            family: family.to_string(),
            file: file.to_string(),
            ..row
        });
    }
    Ok(rows)
}

fn run_one(url: &str, onnx: &Path, cache: &Path) -> anyhow::Result<ZkRow> {
    let client = Client::new(url)?;
    let key = verinfer_tests::node::dev_keys()[0].to_bytes();
    let sender = Sender::new(&client, key)?;
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let model = keccak256(&bytes);

    let started = Instant::now();
    let setup = zk::setup(&SetupOptions {
        rpc: url.to_string(),
        model: model.to_string(),
        private_key: key,
        cache: cache.to_path_buf(),
        calibration: None,
        srs: None,
        tolerance: None,
        python: None,
        solc: None,
        max_logrows: zk::DEFAULT_MAX_LOGROWS,
    })?;
    let setup_s = started.elapsed().as_secs_f64();

    // One record, from a direct call of infer.
    let info: verinfer_node::wire::ModelJson = client
        .call("verinfer_getModel", json!([model]))
        .map_err(|e| anyhow!("{e}"))?;
    let inputs: Vec<Tensor> = info
        .inputs
        .iter()
        .map(|spec| {
            let n: usize = spec.shape.iter().product();
            Tensor {
                shape: spec.shape.iter().map(|&d| d as u32).collect(),
                values: (0..n)
                    .map(|i| I256::try_from((i as i64 * 37) % 181 - 90).unwrap_or_default())
                    .collect(),
                decimals: 2,
            }
        })
        .collect();
    let call = IInference::inferCall {
        modelId: model,
        inputs,
        outputDecimals: 9,
    };
    sender.send(Some(ADDRESS), call.abi_encode())?;
    let id: U256 = client
        .call("verinfer_inferenceCount", json!([]))
        .map_err(|e| anyhow!("{e}"))?;

    let report = zk::prove(&ProveOptions {
        rpc: url.to_string(),
        id,
        private_key: key,
        cache: cache.to_path_buf(),
        out: None,
        no_submit: false,
        python: None,
    })?;
    let receipt = report
        .receipt
        .ok_or_else(|| anyhow!("the proof was not submitted"))?;

    // The verifier alone.
    let verify = verifyProofCall {
        proof: report.proof.proof.clone(),
        instances: report.proof.instances.clone(),
    };
    let verify_gas: U256 = client
        .call(
            "eth_estimateGas",
            json!([{"to": setup.verifier, "data": Bytes::from(verify.abi_encode())}]),
        )
        .map_err(|e| anyhow!("{e}"))?;

    // The circuit's outputs beside the f32 record.
    let record: InferenceJson = client
        .call("verinfer_getInference", json!([id]))
        .map_err(|e| anyhow!("{e}"))?;
    let recorded: Vec<f64> = record
        .outputs
        .iter()
        .flat_map(|t| {
            let scale = 10f64.powi(i32::from(t.decimals));
            t.values
                .iter()
                .map(move |v| v.parse::<f64>().unwrap_or(f64::NAN) / scale)
        })
        .collect();
    let step = 2f64.powi(-i32::from(setup.output_scale));
    let proven = report.proof.instances[setup.input_count as usize..]
        .iter()
        .map(|f| zk::quantize::from_field(*f).map(|o| o as f64 * step));
    let mut max_deviation = 0f64;
    for (p, r) in proven.zip(&recorded) {
        let p = p.ok_or_else(|| anyhow!("an output instance out of range"))?;
        max_deviation = max_deviation.max((p - r).abs());
    }
    Ok(ZkRow {
        family: String::new(),
        file: String::new(),
        logrows: setup.logrows,
        setup_s,
        prove_s: report.prove_seconds,
        proof_bytes: report.proof.proof.len(),
        verifier_code_bytes: setup.verifier_code_size,
        verify_gas: u64::try_from(verify_gas).unwrap_or(u64::MAX),
        submit_gas: u64::try_from(receipt.gas_used).unwrap_or(u64::MAX),
        max_deviation,
        tolerance: zk::format_tolerance(setup.tolerance),
        error: None,
    })
}

/// The rows as a Markdown table.
pub(crate) fn markdown(rows: &[ZkRow]) -> String {
    let mut out = String::from(
        "# Zero-knowledge proof of inference (ezkl 23.0.5, halo2-KZG, local devnet SRS)\n\n",
    );
    out.push_str(&format!(
        "Command: `scripts/bench --zk`. Machine: {} cores, load {}. One fresh node per family; \
         setup = circuit, calibration, SRS, keys, verifier compiled, deployed and registered; \
         prove = witness and proof; verify gas = `eth_estimateGas` of a transaction calling \
         the verifier's `verifyProof` (21 000 and calldata included); submit gas = the registry's `submit` (record read, inputs hashed and \
         quantized, outputs checked, proof verified); deviation = largest |circuit output − f32 \
         record| over the outputs.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "?".into()),
    ));
    out.push_str("| family | rows | setup | prove | proof | verifier code | verify gas | submit gas | deviation | tolerance |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        match &r.error {
            Some(e) => out.push_str(&format!(
                "| {} (`{}`) | refused: {} | | | | | | | | |\n",
                r.family,
                r.file,
                e.replace('|', "\\|").replace('\n', " ")
            )),
            None => out.push_str(&format!(
                "| {} (`{}`) | 2^{} | {:.1} s | {:.1} s | {} B | {} B | {} | {} | {:.6} | {} |\n",
                r.family,
                r.file,
                r.logrows,
                r.setup_s,
                r.prove_s,
                r.proof_bytes,
                r.verifier_code_bytes,
                r.verify_gas,
                r.submit_gas,
                r.max_deviation,
                r.tolerance
            )),
        }
    }
    out
}
