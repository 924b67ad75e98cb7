//! `verinfer model check|add|list|show`.

use std::path::{Path, PathBuf};

use alloy_primitives::Bytes;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use verinfer_node::client::{Client, ClientError};
use verinfer_node::wire::{DimJson, ModelJson, TensorSpecJson};
use verinfer_precompile::{with_bounds, AdmissionError, Dim, ModelInfo, ModelStore};

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Run admission on .onnx files or directories of them (`-`: one model on stdin), locally;
    /// exit 1 if any is refused.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Bound a symbolic input dimension, e.g. `--bound seq=256` (repeatable): written into
        /// the model's `verinfer.bound.<symbol>` metadata, which makes it another model, with
        /// another id. Without it a symbol is bounded by the model's own metadata, else 1 for a
        /// batch-only dimension and 128 for any other.
        #[arg(long = "bound", value_name = "SYMBOL=N", value_parser = parse_bound)]
        bounds: Vec<(String, usize)>,
    },
    /// Upload models (files or directories of .onnx files) to a running node.
    Add {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Bind an OpenGradient-style CID to the model, so `runModelInference` at 0xF4 can name
        /// it (repeatable; one file only). Bindings are kept in chain state and cannot change.
        #[arg(long = "cid", value_name = "CID")]
        cids: Vec<String>,
        /// Bound a symbolic input dimension, as for `check` (the uploaded model is the file
        /// with the bound written in, so its id is not the file's keccak256).
        #[arg(long = "bound", value_name = "SYMBOL=N", value_parser = parse_bound)]
        bounds: Vec<(String, usize)>,
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
    /// List a node's models.
    List {
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
    /// Show one model; `--out FILE` saves its ONNX bytes.
    Show {
        /// Model id (0x…) or a CID bound to it.
        id: String,
        #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `SYMBOL=N`, as `--bound` takes it.
fn parse_bound(s: &str) -> Result<(String, usize), String> {
    let (symbol, n) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not SYMBOL=N (e.g. seq=256)"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a bound: a positive integer"))?;
    if symbol.is_empty() || n == 0 {
        return Err(format!("{s:?}: a bound names a symbol and is at least 1"));
    }
    Ok((symbol.to_string(), n))
}

/// A model's bytes with `bounds` written in (unchanged when there are none).
fn bounded(bytes: Vec<u8>, bounds: &[(String, usize)]) -> Result<Vec<u8>, AdmissionError> {
    if bounds.is_empty() {
        return Ok(bytes);
    }
    with_bounds(&bytes, bounds)
}

/// Admit every model under `paths` (`-`: the bytes on stdin), with `bounds` written in;
/// returns whether all were accepted.
pub(crate) fn check(paths: &[PathBuf], bounds: &[(String, usize)]) -> Result<bool> {
    let store = ModelStore::default();
    let mut all_ok = true;
    let refused = |path: &Path, source| verinfer_precompile::store::AddError::Refused {
        path: path.into(),
        source,
    };
    for path in paths {
        let results = if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("reading the model from stdin")?;
            vec![bounded(bytes, bounds)
                .and_then(|b| store.add_bytes(&b))
                .map_err(|source| refused(path, source))]
        } else if !bounds.is_empty() {
            let mut results = vec![];
            for file in onnx_files(std::slice::from_ref(path))? {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                results.push(
                    bounded(bytes, bounds)
                        .and_then(|b| store.add_bytes(&b))
                        .map_err(|source| refused(&file, source)),
                );
            }
            results
        } else if path.is_dir() {
            store
                .add_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
        } else {
            vec![store.add_file(path)]
        };
        for result in results {
            match result {
                Ok(info) => print_model(&info),
                Err(e) => {
                    all_ok = false;
                    out!("refused  {e}");
                }
            }
        }
    }
    Ok(all_ok)
}

pub(crate) fn print_model(info: &ModelInfo) {
    let specs = |specs: &[verinfer_precompile::TensorSpec]| {
        specs
            .iter()
            .map(|s| {
                let dims: Vec<String> = s
                    .dims
                    .iter()
                    .map(|d| match *d {
                        Dim::Fixed(n) => n.to_string(),
                        Dim::Symbol(k) => {
                            format!("{}<={}", info.symbols[k].name, info.symbols[k].max)
                        }
                    })
                    .collect();
                format!("{}:{:?}[{}]", s.name, s.dtype, dims.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    out!(
        "admitted {}  in [{}]  out [{}]  infer gas {}  predict gas {}",
        info.id,
        specs(&info.inputs),
        specs(&info.outputs),
        info.infer_gas,
        info.predict_gas
    );
}

pub(crate) fn onnx_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub(crate) fn add_models(
    rpc: &str,
    paths: &[PathBuf],
    cids: &[String],
    bounds: &[(String, usize)],
) -> Result<bool> {
    let client = Client::new(rpc)?;
    let files = onnx_files(paths)?;
    if !cids.is_empty() && files.len() != 1 {
        bail!(
            "--cid binds one model: give one .onnx file ({} found)",
            files.len()
        );
    }
    let mut all_ok = true;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let bytes = match bounded(bytes, bounds) {
            Ok(bytes) => bytes,
            Err(e) => {
                all_ok = false;
                out!("refused  {}: {e}", file.display());
                continue;
            }
        };
        let size = bytes.len();
        eprintln!("uploading {} ({size} bytes)", file.display());
        match client.call::<ModelJson>("verinfer_uploadModel", json!([Bytes::from(bytes), cids])) {
            Ok(model) => {
                out!("added    {}  {}", model.id, file.display());
                for cid in cids {
                    out!("cid      {cid}");
                }
            }
            Err(ClientError::Rpc { message, .. }) => {
                all_ok = false;
                out!("refused  {}: {message}", file.display());
            }
            // Hex doubles the bytes: past the node's body cap the server stops reading (413,
            // or a broken pipe while the body is still being sent).
            Err(ClientError::Http(413) | ClientError::Io(_)) if 2 * size > UPLOAD_HINT_BYTES => {
                all_ok = false;
                out!(
                    "refused  {}: {size} bytes is over what one upload carries (the node's \
                     --max-request-body, 32 MiB by default, holds models up to about 16 MiB as \
                     hex); put the file in the node's --models folder (64 MiB cap) or raise \
                     --max-request-body",
                    file.display()
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(all_ok)
}

/// The default request body cap: an upload of more than half of it (hex) may be cut off.
pub(crate) const UPLOAD_HINT_BYTES: usize = 32 * 1024 * 1024;

pub(crate) fn list_models(rpc: &str) -> Result<()> {
    let models: Vec<ModelJson> = Client::new(rpc)?.call("verinfer_listModels", json!([]))?;
    if models.is_empty() {
        out!("no models");
    }
    let specs = |m: &ModelJson, specs: &[TensorSpecJson]| {
        specs
            .iter()
            .map(|s| {
                let dims: Vec<String> = match s.dims.is_empty() {
                    true => s.shape.iter().map(usize::to_string).collect(),
                    false => s
                        .dims
                        .iter()
                        .map(|d| match d {
                            DimJson::Fixed(n) => n.to_string(),
                            DimJson::Symbol(name) => match m.bounds.get(name) {
                                Some(max) => format!("{name}<={max}"),
                                None => name.clone(),
                            },
                        })
                        .collect(),
                };
                format!("{}:{}[{}]", s.name, s.dtype, dims.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for m in models {
        out!(
            "{}  {} bytes  in [{}]  out [{}]  infer gas {}  runs {}",
            m.id,
            m.size,
            specs(&m, &m.inputs),
            specs(&m, &m.outputs),
            m.infer_gas,
            m.runs
        );
        if !m.cids.is_empty() {
            out!("    cids {}", m.cids.join(", "));
        }
    }
    Ok(())
}

/// The model a node serves under an id or CID.
pub(crate) fn get_model(client: &Client, id: &str) -> Result<ModelJson> {
    let model: Option<ModelJson> = client.call("verinfer_getModel", json!([id]))?;
    model.with_context(|| format!("the node has no model {id}"))
}

pub(crate) fn show_model(rpc: &str, id: &str, out: Option<&Path>) -> Result<()> {
    let mut model = get_model(&Client::new(rpc)?, id)?;
    let bytes = model.bytes.take();
    out!("{}", serde_json::to_string_pretty(&model)?);
    if let (Some(path), Some(bytes)) = (out, bytes) {
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("saved {} bytes to {}", bytes.len(), path.display());
    }
    Ok(())
}
