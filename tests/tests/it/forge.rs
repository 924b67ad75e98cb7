//! Solidity developers' own tools against verinfer: `forge test` with real inference and no
//! node (contracts/test through `Verinfer.install()` and `verinfer ffi`), the same tests with
//! `--fork-url` against a node, `forge script --broadcast` landing on a node with the node's own
//! result, and `cast run` naming its limit. Needs forge and cast: `$FOUNDRY_BIN`, or
//! `.tools/foundry/bin` (scripts/install-foundry; scripts/test runs it).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

use alloy_primitives::{hex, Address, U256};
use alloy_sol_types::{SolCall, SolValue};
use verinfer_precompile::IInference;
use verinfer_tests::harness::{model_id, solc_path};
use verinfer_tests::node::{rpc_result, verinfer_bin, ChildNode};
use verinfer_tests::tensor;

/// forge runs share contracts/out and contracts/cache: one at a time.
static FORGE: Mutex<()> = Mutex::new(());

const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn foundry_bin() -> PathBuf {
    let dir = std::env::var_os("FOUNDRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/foundry/bin"));
    assert!(
        dir.join("forge").exists(),
        "no forge in {}: run scripts/install-foundry (scripts/test does) or set FOUNDRY_BIN",
        dir.display()
    );
    dir
}

/// Run forge in contracts/ with the project's solc and `verinfer ffi` set up as a user would.
fn forge(args: &[&str]) -> Output {
    forge_with(args, &[])
}

/// [`forge`] with more environment variables (later ones win).
fn forge_with(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let _one = FORGE.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(foundry_bin().join("forge"))
        .args(args)
        .arg("--use")
        .arg(
            solc_path()
                .unwrap()
                .canonicalize()
                .unwrap_or(solc_path().unwrap()),
        )
        .args(["--offline", "--ffi"])
        .current_dir(root().join("contracts"))
        .env("VERINFER_BIN", verinfer_bin())
        .env("VERINFER_MODELS", root().join("models"))
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("forge runs");
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The counts of forge test's summary line `N tests passed, M failed, K skipped`.
fn summary(out: &Output) -> (u32, u32) {
    let all = text(out);
    let line = all
        .lines()
        .rev()
        .find(|l| l.contains("tests passed,"))
        .unwrap_or_else(|| panic!("no forge test summary in:\n{all}"));
    let number_before = |word: &str| -> u32 {
        let words: Vec<&str> = line
            .split([' ', ',', ':'])
            .filter(|w| !w.is_empty())
            .collect();
        let at = words.iter().position(|w| *w == word).unwrap();
        words[at - 1].parse().unwrap()
    };
    (number_before("tests"), number_before("failed"))
}

#[test]
fn forge_test_runs_real_inference_without_a_node() {
    let out = forge(&["test"]);
    let (passed, failed) = summary(&out);
    assert!(
        out.status.success() && failed == 0 && passed >= 16,
        "forge test: {passed} passed, {failed} failed\n{}",
        text(&out)
    );
}

/// An OpenGradient contract under forge test: its calls at 0xF4 run through the shim's copy
/// there, by CID (bound by a `cids.json` beside the models) and by hex id, recorded at 0xA00.
#[test]
fn forge_test_runs_opengradient_contracts() {
    let models = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("models/credit.onnx"),
        models.path().join("credit.onnx"),
    )
    .unwrap();
    std::fs::write(
        models.path().join("cids.json"),
        r#"{"QmCreditScore": "credit.onnx"}"#,
    )
    .unwrap();
    let out = forge_with(
        &["test"],
        &[
            ("FOUNDRY_PROFILE", "opengradient".as_ref()),
            ("VERINFER_MODELS", models.path().as_os_str()),
        ],
    );
    let (passed, failed) = summary(&out);
    assert!(
        out.status.success() && failed == 0 && passed >= 4,
        "forge test (opengradient profile): {passed} passed, {failed} failed\n{}",
        text(&out)
    );
}

fn eth_call(node: &ChildNode, to: Address, data: Vec<u8>) -> Vec<u8> {
    let params = serde_json::json!([{"to": to, "data": hex::encode_prefixed(data)}, "latest"]);
    hex::decode(
        rpc_result(node.addr(), "eth_call", params)
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// `forge script --broadcast` deploys a pool and scores a borrower on the node; the node's
/// precompile records its own result. Then the forge tests pass again on a fork of that node,
/// reading the node's record through the shim, and `cast run` of the transaction names the
/// limit of an EVM without the precompile.
#[test]
fn forge_script_and_fork_tests_against_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let models = root().join("models");
    let node = ChildNode::start(dir.path(), &["--models", models.to_str().unwrap()]);
    let url = node.url();
    let precompile = verinfer_precompile::ADDRESS;

    let out = forge(&[
        "script",
        "script/Assess.s.sol",
        "--rpc-url",
        &url,
        "--private-key",
        DEPLOYER_KEY,
        "--broadcast",
        "--skip-simulation",
    ]);
    assert!(
        out.status.success() && text(&out).contains("ONCHAIN EXECUTION COMPLETE & SUCCESSFUL"),
        "forge script failed:\n{}",
        text(&out)
    );
    let count = eth_call(
        &node,
        precompile,
        IInference::inferenceCountCall {}.abi_encode(),
    );
    assert_eq!(
        U256::abi_decode(&count).unwrap(),
        U256::ONE,
        "the node recorded one inference"
    );
    let record = eth_call(
        &node,
        precompile,
        IInference::getInferenceCall { id: U256::ONE }.abi_encode(),
    );
    let record = IInference::getInferenceCall::abi_decode_returns(&record).unwrap();
    let credit = model_id("models/credit.onnx").unwrap();
    let predicted = eth_call(
        &node,
        precompile,
        IInference::predictCall {
            modelId: credit,
            inputs: vec![tensor(&[1, 4], &[12000, 20, 1000, 0], 2)],
            outputDecimals: 4,
        }
        .abi_encode(),
    );
    let predicted = IInference::predictCall::abi_decode_returns(&predicted).unwrap();
    assert_eq!(record.modelId, credit);
    assert_eq!(
        record.outputs, predicted,
        "the record holds the node's own result"
    );
    assert_eq!(record.outputs[0].values[0].as_i64(), 9982);

    let out = forge(&["test", "--fork-url", &url]);
    let (passed, failed) = summary(&out);
    assert!(
        out.status.success() && failed == 0 && passed >= 16,
        "forge test --fork-url: {passed} passed, {failed} failed\n{}",
        text(&out)
    );

    // cast run replays the transaction in cast's own EVM, which has no precompile.
    let head = rpc_result(
        node.addr(),
        "eth_getBlockByNumber",
        serde_json::json!(["latest", false]),
    );
    let tx = head["transactions"][0].as_str().unwrap().to_string();
    let run = Command::new(foundry_bin().join("cast"))
        .args(["run", &tx, "--rpc-url", &url])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let shown = text(&run);
    assert!(
        shown.contains("PrecompileUnavailable") && shown.contains("verinfer node"),
        "cast run does not name the limit:\n{shown}"
    );
}
