//! Compiling ezkl's `Verifier.sol` with the project's solc (ezkl would download one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ZkError;

/// Largest runtime code a chain accepts (EIP-170).
pub const MAX_CODE_SIZE: usize = 24_576;

/// The compiled verifier.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Creation code.
    pub creation: Vec<u8>,
    /// Runtime code.
    pub runtime: Vec<u8>,
}

/// `explicit`, else `$SOLC`, else `solc` on PATH, else `.tools/bin/solc` in the current directory
/// or a parent (where `scripts/install-solc` puts it).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ZkError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("SOLC") {
        return Ok(p.into());
    }
    let runs = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs(Path::new("solc")) {
        return Ok("solc".into());
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let shim = dir.join(".tools/bin/solc");
            if shim.exists() && runs(&shim) {
                return Ok(shim);
            }
        }
    }
    Err(ZkError::Solc(
        "no solc found: run scripts/install-solc, or set SOLC (or pass --solc)".into(),
    ))
}

/// Compile contract `name` of `source` (optimizer on, 200 runs, EVM paris, no metadata hash,
/// so the code is a function of the source alone).
pub fn compile(solc: &Path, source: &str, name: &str) -> Result<Compiled, ZkError> {
    let input = serde_json::json!({
        "language": "Solidity",
        "sources": {"Verifier.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": true, "runs": 200},
            "evmVersion": "paris",
            "metadata": {"appendCBOR": false},
            "outputSelection": {"Verifier.sol": {name: ["evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    });
    let mut child = Command::new(solc)
        .arg("--standard-json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ZkError::Solc(format!("running {}: {e}", solc.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.to_string().as_bytes())
            .map_err(|e| ZkError::Solc(format!("writing to {}: {e}", solc.display())))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ZkError::Solc(format!("running {}: {e}", solc.display())))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        ZkError::Solc(format!(
            "{} printed no standard-json output ({e}): {}",
            solc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    let contract = &json["contracts"]["Verifier.sol"][name]["evm"];
    let hex = |v: &serde_json::Value| {
        v["object"]
            .as_str()
            .and_then(|s| alloy_primitives::hex::decode(s).ok())
            .filter(|b| !b.is_empty())
    };
    match (
        hex(&contract["bytecode"]),
        hex(&contract["deployedBytecode"]),
    ) {
        (Some(creation), Some(runtime)) => Ok(Compiled { creation, runtime }),
        _ => Err(ZkError::Solc(format!(
            "{name} did not compile: {}",
            json["errors"]
        ))),
    }
}
