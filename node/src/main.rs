//! `verinfer`: the command-line tool. The devnet node itself (`verinfer node`) is the node
//! issue's work; until it lands this binary offers the model admission check, so operators can
//! see today whether their models will load.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use verinfer_precompile::{ModelInfo, ModelStore};

const HELP: &str = "\
verinfer — verifiable ONNX inference for EVM smart contracts

USAGE:
    verinfer model check <PATH>...   Run admission on .onnx files or directories of them and
                                     print each model's id, inputs, outputs and gas; exits 1
                                     if any model is refused
    verinfer --version               Print the version
    verinfer --help                  Print this help

The devnet node (`verinfer node`) is not built yet.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["--help" | "-h" | "help"] => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        ["--version" | "-V"] => {
            println!("verinfer {}", env!("CARGO_PKG_VERSION"));
            println!(
                "tract kernels: {}",
                verinfer_precompile::engine::active_isa()
            );
            ExitCode::SUCCESS
        }
        ["model", "check", paths @ ..] if !paths.is_empty() => match check(paths) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("error: unknown command {:?}\n\n{HELP}", words.join(" "));
            ExitCode::from(2)
        }
    }
}

/// Admit every model under `paths`; returns whether all were accepted.
fn check(paths: &[&str]) -> Result<bool> {
    let store = ModelStore::default();
    let mut all_ok = true;
    for path in paths.iter().map(Path::new) {
        let results = if path.is_dir() {
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
                    println!("refused  {e}");
                }
            }
        }
    }
    Ok(all_ok)
}

fn print_model(info: &ModelInfo) {
    let specs = |specs: &[verinfer_precompile::TensorSpec]| {
        specs
            .iter()
            .map(|s| format!("{}:{:?}{:?}", s.name, s.dtype, s.shape))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "admitted {}  in [{}]  out [{}]  infer gas {}  predict gas {}",
        info.id,
        specs(&info.inputs),
        specs(&info.outputs),
        info.infer_gas,
        info.predict_gas
    );
}
