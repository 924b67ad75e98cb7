//! The `verinfer` tools that talk to a running node: `model add|list|show` and `infer`.

use std::process::Command;

use alloy::primitives::keccak256;
use verinfer_tests::models;
use verinfer_tests::node::{run_verinfer as verinfer, verinfer_bin, ChildNode};

#[test]
fn add_list_show_and_infer_against_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = ChildNode::start(dir.path(), &["--no-mining"]);
    let url = node.url();
    let linear = models().join("linear.onnx");
    let id = keccak256(std::fs::read(&linear).unwrap()).to_string();

    let (code, out) = verinfer(&["model", "add", linear.to_str().unwrap(), "--rpc", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("added    {id}")), "{out}");
    let hostile = models().join("hostile/random_normal_like.onnx");
    let (code, out) = verinfer(&["model", "add", hostile.to_str().unwrap(), "--rpc", &url]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused") && out.contains("nondeterministic"),
        "{out}"
    );

    // Over what one upload carries (hex doubles it past the 32 MiB body cap): a clear
    // refusal with what to do, not "Broken pipe".
    let big = dir.path().join("big.onnx");
    std::fs::write(&big, vec![0u8; 20 << 20]).unwrap();
    let (code, out) = verinfer(&["model", "add", big.to_str().unwrap(), "--rpc", &url]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("over what one upload carries") && out.contains("--models"),
        "{out}"
    );

    let (code, out) = verinfer(&["model", "list", "--rpc", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id), "{out}");

    let saved = dir.path().join("saved.onnx");
    let (code, out) = verinfer(&[
        "model",
        "show",
        &id,
        "--rpc",
        &url,
        "--out",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&linear).unwrap()
    );

    // 0.5·1 − 1.25·2 + 2·3 + 0.125·4 + 0.75 = 5.25
    let (code, out) = verinfer(&[
        "infer",
        &id,
        "--input",
        "1,2,3,4",
        "--decimals",
        "3",
        "--rpc",
        &url,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("output 0 [1, 1]: [5.250]"), "{out}");
    let (code, out) = verinfer(&["infer", &id, "--input", "0.1,0.2", "--rpc", &url]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("ValueCountMismatch: input 0 has 2 values, its shape needs 4"),
        "{out}"
    );
    assert!(!out.contains('{'), "no Rust Debug text: {out}");
    // Exponent notation, and ETH_RPC_URL in place of --rpc (foundry's convention).
    let out = Command::new(verinfer_bin())
        .args([
            "infer",
            &id,
            "--input",
            "1e0,2,0.3e1,400e-2",
            "--decimals",
            "3",
        ])
        .env("ETH_RPC_URL", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("output 0 [1, 1]: [5.250]"), "{text}");
    let (code, out) = verinfer(&[
        "infer",
        &format!("0x{}", "00".repeat(32)),
        "--input",
        "1",
        "--rpc",
        &url,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no model"), "{out}");
    drop(node);
    let (code, out) = verinfer(&["model", "list", "--rpc", &url]);
    assert_eq!(code, 2);
    assert!(out.contains("cannot reach"), "{out}");
}
