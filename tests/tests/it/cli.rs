//! `verinfer model check` as an operator runs it.

use verinfer_tests::models;
use verinfer_tests::node::{run_verinfer as verinfer, verinfer_bin};

#[test]
fn check_admits_the_test_models() {
    let models = models().to_string_lossy().into_owned();
    let (code, out) = verinfer(&["model", "check", &models]);
    assert_eq!(code, 0, "{out}");
    let onnx_files = std::fs::read_dir(&models)
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
    let hostile = models().join("hostile");
    let (code, out) = verinfer(&["model", "check", hostile.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("op RandomNormalLike is nondeterministic"),
        "{out}"
    );
    assert!(out.contains("ConstantOfShape node"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("refused")).count(),
        14,
        "{out}"
    );
}

/// A reader that closes early (`| head`) ends the output quietly instead of a panic (exit 101).
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::process::Stdio;
    let models = models().to_string_lossy().into_owned();
    // Enough lines to overflow a pipe buffer: the same directory many times over.
    let args: Vec<&str> = std::iter::once("model")
        .chain(std::iter::once("check"))
        .chain(std::iter::repeat_n(models.as_str(), 400))
        .collect();
    let mut child = std::process::Command::new(verinfer_bin())
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

/// `model check -` reads one model from stdin (what the node's admission sandbox runs).
#[test]
fn check_reads_a_model_from_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    let check = |file: &str| {
        let mut child = std::process::Command::new(verinfer_bin())
            .args(["model", "check", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let bytes = std::fs::read(models().join(file)).unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = check("credit.onnx");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("admitted 0x5b989c29"), "{out}");
    let (code, out) = check("hostile/unknown_op.onnx");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.starts_with("refused  -: ") && out.contains("TotallyMadeUpOp"),
        "{out}"
    );
}
