//! The binary's own usage errors. (Being an integration test of this package, it also makes
//! `cargo test --workspace` build `target/*/verinfer`, which the end-to-end tests in `tests/` run.)

use std::process::Command;

#[test]
fn bad_usage_and_missing_files_are_clear_errors() {
    let verinfer = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_verinfer"))
            .args(args)
            .output()
            .expect("verinfer runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = verinfer(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("unrecognized subcommand") && out.contains("Usage"),
        "{out}"
    );
    let (code, out) = verinfer(&["model", "check", "/nonexistent/model.onnx"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("reading /nonexistent/model.onnx"), "{out}");
    assert_eq!(verinfer(&["--help"]).0, 0);
}
