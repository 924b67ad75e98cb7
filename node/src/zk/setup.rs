//! `verinfer zk setup`: a model's circuit, keys and verifier, deployed and registered.

use std::path::{Path, PathBuf};

use alloy_primitives::{keccak256, Address, Bytes, B256, I256, U256};
use alloy_sol_types::SolCall;
use serde::{Deserialize, Serialize};
use serde_json::json;
use verinfer_precompile::abi::Tensor;
use verinfer_precompile::zk_registry::IZkRegistry;
use verinfer_precompile::{IInference, ADDRESS as PRECOMPILE};

use super::ezkl::Ezkl;
use super::send::Sender;
use super::{model_dir, registered_setup, solc, ZkError, REGISTRY_ADDRESS};
use crate::client::Client;
use crate::wire::ModelJson;

/// Calibration samples generated when none are given.
const CALIBRATION_SAMPLES: usize = 8;
/// Calibration samples the tolerance is measured on.
const TOLERANCE_SAMPLES: usize = 3;
/// Decimals of generated calibration values (and of the outputs the tolerance compares).
const CALIBRATION_DECIMALS: u8 = 4;
/// The measured deviation is multiplied by this to make the tolerance.
const TOLERANCE_MARGIN: u32 = 4;

/// What `zk setup` is told.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    /// The node.
    pub rpc: String,
    /// A model id the node serves, or an `.onnx` file (uploaded when the node lacks it).
    pub model: String,
    /// The sender's key.
    pub private_key: B256,
    /// Where setups are cached.
    pub cache: PathBuf,
    /// ezkl's calibration data (`{"input_data": [[…], …]}`), instead of generated samples.
    pub calibration: Option<PathBuf>,
    /// An SRS file (a ceremony's), instead of a locally generated devnet-only one.
    pub srs: Option<PathBuf>,
    /// The output tolerance, instead of the measured one.
    pub tolerance: Option<f64>,
    /// ezkl's Python.
    pub python: Option<PathBuf>,
    /// solc.
    pub solc: Option<PathBuf>,
    /// The largest circuit set up, as log2 of its rows ([`DEFAULT_MAX_LOGROWS`]).
    pub max_logrows: u32,
}

/// Default bound on a circuit's rows (log2): 2^18 rows took 80 s to set up and 30 s to prove
/// here (2 cores, `scripts/bench --zk`), with a 1.1 GB proving key; each further row doubling
/// about doubles all three.
pub const DEFAULT_MAX_LOGROWS: u32 = 18;

/// A setup, as `setup.json` keeps it in the model's folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupRecord {
    /// The model.
    pub model_id: B256,
    /// The deployed verifier.
    pub verifier: Address,
    /// keccak256 of `settings.json`.
    pub settings_hash: B256,
    /// Inputs are quantized as `round(x · 2^inputScale)`.
    pub input_scale: u8,
    /// Outputs read as `o / 2^outputScale`.
    pub output_scale: u8,
    /// Input instances.
    pub input_count: u32,
    /// Output instances.
    pub output_count: u32,
    /// Largest accepted |proof output − recorded output|, units of 1e-18.
    pub tolerance: U256,
    /// The circuit has 2^logrows rows.
    pub logrows: u32,
    /// The SRS used.
    pub srs: PathBuf,
    /// `local` (generated here: devnet only) or `file` (given).
    pub srs_kind: String,
    /// Seconds the circuit, keys and verifier took.
    pub setup_seconds: f64,
    /// Runtime code size of the verifier, bytes.
    pub verifier_code_size: usize,
    /// Gas the verifier's deployment used.
    pub deploy_gas: u64,
}

/// What the driver's `setup` prints.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriverSetup {
    input_scales: Vec<u8>,
    output_scales: Vec<u8>,
    logrows: u32,
    srs: PathBuf,
    srs_kind: String,
    seconds: f64,
}

/// What the driver's `witness` prints of the circuit's outputs.
#[derive(Deserialize)]
struct DriverWitness {
    outputs: Vec<Vec<U256>>,
}

/// Set up `opts.model`: circuit, keys, verifier deployed and registered. Returns the setup.
pub fn setup(opts: &SetupOptions) -> Result<SetupRecord, ZkError> {
    let client = Client::new(&opts.rpc).map_err(ZkError::Rpc)?;
    let sender = Sender::new(&client, opts.private_key)?;
    let ezkl = Ezkl::locate(opts.python.as_deref())?;
    let solc = solc::locate(opts.solc.as_deref())?;
    let model = resolve_model(&client, &opts.model)?;
    let specs = &model.inputs;
    if let Some(bad) = specs.iter().find(|s| s.dtype != "f32") {
        return Err(ZkError::Model(format!(
            "input {:?} is {}: ZK setup takes models with f32 inputs only",
            bad.name, bad.dtype
        )));
    }
    let existing = registered_setup(&sender, model.id)?;
    if existing.verifier != Address::ZERO {
        return Err(ZkError::Model(format!(
            "model {} already has a verifier at {} (registered by {}); the registry keeps the first",
            model.id, existing.verifier, existing.registrant
        )));
    }

    let dir = model_dir(&opts.cache, model.id);
    std::fs::create_dir_all(&dir).map_err(|e| ZkError::io(&dir, e))?;
    let onnx = dir.join("model.onnx");
    let bytes = model
        .bytes
        .as_ref()
        .ok_or_else(|| ZkError::Node("the node sent no model bytes".into()))?;
    write(&onnx, bytes)?;

    // Samples in [-1, 1]: ezkl calibrates on them unless given a file, and the tolerance is
    // measured on the first few either way.
    let samples = calibration_samples(specs.iter().map(|s| s.shape.iter().product()));
    let calibration = dir.join("calibration.json");
    match &opts.calibration {
        Some(file) => {
            let text = std::fs::read(file).map_err(|e| ZkError::io(file, e))?;
            write(&calibration, &text)?;
        }
        None => write(&calibration, ezkl_input(&samples).to_string().as_bytes())?,
    }

    eprintln!("zk setup: model {} ({} bytes)", model.id, bytes.len());
    let mut args: Vec<&Path> = vec![&onnx, &calibration];
    if let Some(srs) = &opts.srs {
        args.push(srs);
    }
    let limit = opts.max_logrows.to_string();
    let out: DriverSetup =
        ezkl.run(&dir, "setup", &args, &[("VERINFER_ZK_MAX_LOGROWS", &limit)])?;
    let input_scale = one_scale(&out.input_scales, "input")?;
    let output_scale = one_scale(&out.output_scales, "output")?;
    if out.srs_kind == "local" {
        eprintln!("zk setup: the SRS was generated here: a devnet-only SRS, not a ceremony's");
    }
    let settings = std::fs::read(dir.join("settings.json"))
        .map_err(|e| ZkError::io(&dir.join("settings.json"), e))?;

    let input_count = count(specs.iter().map(|s| s.shape.iter().product()))?;
    let output_count = count(model.outputs.iter().map(|s| s.shape.iter().product()))?;
    let tolerance = match opts.tolerance {
        Some(t) => to_units(t)?,
        None => measure_tolerance(
            &ezkl,
            &dir,
            &sender,
            &model,
            &samples,
            input_scale,
            output_scale,
        )?,
    };

    let source = std::fs::read_to_string(dir.join("Verifier.sol"))
        .map_err(|e| ZkError::io(&dir.join("Verifier.sol"), e))?;
    let compiled = solc::compile(&solc, &source, "Halo2Verifier")?;
    if compiled.runtime.len() > solc::MAX_CODE_SIZE {
        return Err(ZkError::Model(format!(
            "the verifier is {} bytes of code, over the {} bytes a contract may hold (EIP-170)",
            compiled.runtime.len(),
            solc::MAX_CODE_SIZE
        )));
    }
    eprintln!(
        "zk setup: deploying the verifier ({} bytes of code)",
        compiled.runtime.len()
    );
    let deployed = sender.send(None, compiled.creation.clone())?;
    let verifier = deployed
        .contract_address
        .ok_or_else(|| ZkError::Node("the deployment's receipt names no contract".into()))?;
    let settings_hash = keccak256(&settings);
    let register = IZkRegistry::registerCall {
        modelId: model.id,
        verifier,
        settingsHash: settings_hash,
        inputScale: input_scale,
        outputScale: output_scale,
        inputCount: input_count,
        outputCount: output_count,
        tolerance,
    };
    sender.send(Some(REGISTRY_ADDRESS), register.abi_encode())?;
    let record = SetupRecord {
        model_id: model.id,
        verifier,
        settings_hash,
        input_scale,
        output_scale,
        input_count,
        output_count,
        tolerance,
        logrows: out.logrows,
        srs: out.srs,
        srs_kind: out.srs_kind,
        setup_seconds: out.seconds,
        verifier_code_size: compiled.runtime.len(),
        deploy_gas: u64::try_from(deployed.gas_used).unwrap_or(u64::MAX),
    };
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| ZkError::Node(format!("encoding setup.json: {e}")))?;
    write(&dir.join("setup.json"), &json)?;
    Ok(record)
}

/// The model a node serves under `model` (an id), or the `.onnx` file `model`, uploaded first
/// when the node lacks it.
fn resolve_model(client: &Client, model: &str) -> Result<ModelJson, ZkError> {
    let id = if model.ends_with(".onnx") || Path::new(model).is_file() {
        let path = Path::new(model);
        let bytes = std::fs::read(path).map_err(|e| ZkError::io(path, e))?;
        let id = keccak256(&bytes);
        let known: Option<ModelJson> = client
            .call("verinfer_getModel", json!([id]))
            .map_err(ZkError::Rpc)?;
        if known.is_none() {
            eprintln!("zk setup: uploading {model}");
            let _: ModelJson = client
                .call(
                    "verinfer_uploadModel",
                    json!([Bytes::from(bytes), Vec::<String>::new()]),
                )
                .map_err(ZkError::Rpc)?;
        }
        format!("{id}")
    } else {
        model.to_string()
    };
    let found: Option<ModelJson> = client
        .call("verinfer_getModel", json!([id]))
        .map_err(ZkError::Rpc)?;
    found.ok_or_else(|| ZkError::Model(format!("the node has no model {id}")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ZkError> {
    std::fs::write(path, bytes).map_err(|e| ZkError::io(path, e))
}

fn one_scale(scales: &[u8], what: &str) -> Result<u8, ZkError> {
    match scales {
        [first, rest @ ..] if rest.iter().all(|s| s == first) => Ok(*first),
        [] => Err(ZkError::Ezkl(format!("the settings name no {what} scale"))),
        _ => Err(ZkError::Model(format!(
            "the circuit's {what}s have different scales {scales:?}: not supported"
        ))),
    }
}

fn count(sizes: impl Iterator<Item = usize>) -> Result<u32, ZkError> {
    u32::try_from(sizes.sum::<usize>())
        .map_err(|_| ZkError::Model("more than 2^32 instances".into()))
}

/// A tolerance in units of 1e-18.
fn to_units(t: f64) -> Result<U256, ZkError> {
    if !(0.0..1e20).contains(&t) {
        return Err(ZkError::Model(format!(
            "tolerance {t} must be a number from 0 to 1e20"
        )));
    }
    Ok(U256::from((t * 1e18).ceil() as u128))
}

/// Deterministic calibration samples: values in [-1, 1] with [`CALIBRATION_DECIMALS`]
/// decimals, one `Vec` per input per sample.
fn calibration_samples(sizes: impl Iterator<Item = usize> + Clone) -> Vec<Vec<Vec<I256>>> {
    let mut state = 0x7665_7269_6e66_6572_u64; // "verinfer"
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let span = 2 * 10i64.pow(u32::from(CALIBRATION_DECIMALS)) + 1;
    (0..CALIBRATION_SAMPLES)
        .map(|_| {
            sizes
                .clone()
                .map(|n| {
                    (0..n)
                        .map(|_| {
                            let v = (next() % span as u64) as i64 - span / 2;
                            I256::try_from(v).unwrap_or_default()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// ezkl's input JSON for `samples` (each input's values of every sample, concatenated).
fn ezkl_input(samples: &[Vec<Vec<I256>>]) -> serde_json::Value {
    let inputs = samples.first().map_or(0, Vec::len);
    let data: Vec<Vec<f64>> = (0..inputs)
        .map(|i| {
            samples
                .iter()
                .flat_map(|s| {
                    s[i].iter()
                        .map(|v| decimal_to_f64(*v, CALIBRATION_DECIMALS))
                })
                .collect()
        })
        .collect();
    json!({ "input_data": data })
}

fn decimal_to_f64(v: I256, decimals: u8) -> f64 {
    let text = crate::tensor::format_fixed(v, decimals);
    text.parse().unwrap_or(0.0)
}

/// The largest deviation of the circuit's outputs from the node's f32 outputs over a few
/// calibration samples, times [`TOLERANCE_MARGIN`], and at least a few of the output scale's
/// steps.
fn measure_tolerance(
    ezkl: &Ezkl,
    dir: &Path,
    sender: &Sender<'_>,
    model: &ModelJson,
    samples: &[Vec<Vec<I256>>],
    input_scale: u8,
    output_scale: u8,
) -> Result<U256, ZkError> {
    let step = 1.0 / f64::from(1u32 << output_scale.min(31));
    let mut deviation = 0f64;
    for sample in samples.iter().take(TOLERANCE_SAMPLES) {
        let tensors = tensors(model, sample, CALIBRATION_DECIMALS)?;
        let data = super::prove::ezkl_input_file(dir, &tensors, input_scale)?;
        let witness: DriverWitness = ezkl.run(dir, "witness", &[&data], &[])?;
        let call = IInference::predictCall {
            modelId: model.id,
            inputs: tensors,
            outputDecimals: 9,
        };
        let ret = sender.call(PRECOMPILE, &call.abi_encode())?;
        let outputs = IInference::predictCall::abi_decode_returns(&ret)
            .map_err(|e| ZkError::Node(format!("predict answered undecodable data: {e}")))?;
        let expected = outputs
            .iter()
            .flat_map(|t| t.values.iter().map(|v| decimal_to_f64(*v, t.decimals)));
        let proven = witness.outputs.iter().flatten();
        for (felt, f) in proven.zip(expected) {
            let o = super::quantize::from_field(*felt)
                .ok_or_else(|| ZkError::Ezkl("an output instance out of range".into()))?;
            deviation = deviation.max((o as f64 * step - f).abs());
        }
    }
    let tolerance = (deviation * f64::from(TOLERANCE_MARGIN)).max(4.0 * step);
    eprintln!(
        "zk setup: circuit vs f32 outputs: largest deviation {deviation:.6} on {} samples; tolerance {tolerance:.6}",
        samples.len().min(TOLERANCE_SAMPLES)
    );
    to_units(tolerance)
}

/// Tensors of `model`'s input shapes holding `values` with `decimals`.
fn tensors(model: &ModelJson, values: &[Vec<I256>], decimals: u8) -> Result<Vec<Tensor>, ZkError> {
    model
        .inputs
        .iter()
        .zip(values)
        .map(|(spec, values)| {
            let shape = spec
                .shape
                .iter()
                .map(|&d| u32::try_from(d))
                .collect::<Result<Vec<u32>, _>>()
                .map_err(|_| ZkError::Model("an input dimension past u32".into()))?;
            Ok(Tensor {
                shape,
                values: values.clone(),
                decimals,
            })
        })
        .collect()
}
