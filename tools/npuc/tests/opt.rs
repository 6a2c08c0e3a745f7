//! `npuc opt` end to end: exit codes and formats.

use std::process::Command;

fn npuc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_npuc"))
}

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../lit-tests/opt/dce-dead-branch.nir");

#[test]
fn bad_pipelines_exit_2_with_one_line() {
    for passes in ["frobnicate", "dce,,", "dce{x=1}"] {
        let out = npuc().args(["opt", MODEL, "--passes", passes, "-o", "-"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{passes}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: --passes: "), "{err}");
    }
}

#[test]
fn writes_tflite_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.tflite");
    let out = npuc().args(["opt", MODEL, "--passes=dce", "-o"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[4..8], b"TFL3");
}
