//! `verinfer model check` as an operator runs it.

use std::process::Command;

fn verinfer(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verinfer"))
        .args(args)
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");

#[test]
fn check_admits_the_test_models() {
    let (code, out) = verinfer(&["model", "check", MODELS]);
    assert_eq!(code, 0, "{out}");
    let onnx_files = std::fs::read_dir(MODELS)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "onnx")
        })
        .count();
    assert!(onnx_files >= 10, "models/ holds {onnx_files} models");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("admitted 0x")).count(),
        onnx_files,
        "{out}"
    );
    assert!(out.contains("x:F32[1, 64]"), "{out}");
}

#[test]
fn check_reports_each_refusal_and_fails() {
    let (code, out) = verinfer(&["model", "check", &format!("{MODELS}/hostile")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("op RandomNormalLike is nondeterministic"),
        "{out}"
    );
    assert!(out.contains("ConstantOfShape node"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("refused")).count(),
        13,
        "{out}"
    );
}

#[test]
fn bad_usage_and_missing_files_are_clear_errors() {
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

/// A reader that closes early (`| head`) ends the output quietly instead of a panic (exit 101).
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::process::Stdio;
    // Enough lines to overflow a pipe buffer: the same directory many times over.
    let args: Vec<&str> = std::iter::once("model")
        .chain(std::iter::once("check"))
        .chain(std::iter::repeat_n(MODELS, 400))
        .collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_verinfer"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
