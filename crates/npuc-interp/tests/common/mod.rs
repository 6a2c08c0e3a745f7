//! Helpers shared by the integration tests that judge npuc against LiteRT: the
//! repository, its Python environment, scratch directories, the LiteRT oracle and `.npy`
//! files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use npuc_interp::{npy, Tensor};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The repository's Python (with LiteRT). A missing `.venv` fails the test: these tests
/// never skip.
pub fn python() -> PathBuf {
    let py = repo().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: the LiteRT oracle needs it. Run tools/setup-venv.sh (tools/test.sh does); these tests never skip.",
        py.display()
    );
    py
}

/// A fresh, empty scratch directory, unique to this process and call.
pub fn scratch(label: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "npuc-interp-test-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        label.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `tools/litert_oracle.py` on `model` for seeds 0..`seeds` (one process): the seed
/// folders (`seed_<s>` under `out`) on success, the oracle's stderr otherwise.
pub fn oracle(model: &Path, resolver: &str, out: &Path, seeds: usize) -> Result<Vec<PathBuf>, String> {
    let res = Command::new(python())
        .arg(repo().join("tools/litert_oracle.py"))
        .arg("run")
        .arg(model)
        .args(["--seed", "0", "--count", &seeds.to_string(), "--resolver", resolver, "--out"])
        .arg(out)
        .output()
        .expect("cannot start the oracle");
    if res.status.success() {
        Ok((0..seeds).map(|s| out.join(format!("seed_{s}"))).collect())
    } else {
        Err(String::from_utf8_lossy(&res.stderr).trim().to_string())
    }
}

/// Reads a `.npy` file as a tensor of the dtype it holds; panics naming the file.
pub fn read_npy(path: &Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npy::read_any(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
