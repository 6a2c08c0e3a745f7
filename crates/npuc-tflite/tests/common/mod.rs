//! Shared helpers of the TFLite integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Every committed fixture model, sorted by name.
pub fn fixtures() -> Vec<PathBuf> {
    let dir = repo_root().join("tools/fixtures/models");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "expected the committed fixture set in {}, found {} models", dir.display(), v.len());
    v
}

/// The oracle venv's Python; panics with the fix when it is missing, never skips.
pub fn oracle_python() -> PathBuf {
    let py = repo_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: the LiteRT oracle needs it. Run tools/setup-venv.sh (tools/test.sh does).",
        py.display()
    );
    py
}

/// A fixture's file stem, for naming snapshots and temp files.
pub fn stem(p: &std::path::Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}
