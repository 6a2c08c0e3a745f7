//! Helpers shared by the driver's integration tests: running the built `npuc`, locating the
//! repository and its oracle venv, and checking a model bit for bit against LiteRT.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use npuc_interp::{npy, Interpreter, Options};
use npuc_ir::Op;

/// Runs the `npuc` binary under test with `args`, from the repository root.
pub fn npuc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_npuc")).current_dir(repo()).args(args).output().unwrap()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The oracle venv's Python; missing, the calling test fails (tests never skip).
pub fn python() -> PathBuf {
    let py = repo().join(".venv/bin/python");
    assert!(py.exists(), "{} is missing: run tools/setup-venv.sh (these tests never skip)", py.display());
    py
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A copy of `model` LiteRT's reference resolver runs correctly: DEPTH_TO_SPACE at version
/// 1, and each rescaling int8 SUM replaced by a new graph input (LiteRT 2.3's `BUILTIN_REF` registers DEPTH_TO_SPACE only up to version 1 while int8
/// DEPTH_TO_SPACE is version 2, same kernel; and its int8 SUM leaves the output unwritten
/// when it must rescale, see `tests/quantize.rs`).
pub fn ref_loadable(model: &Path) -> PathBuf {
    let mut m = npuc_tflite::import_file(model).unwrap();
    for g in &mut m.graphs {
        let ids: Vec<_> = g.op_ids().collect();
        for id in ids {
            match &g.op(id).op {
                Op::DepthToSpace { .. } => *g.op_version_mut(id) = 1,
                Op::Sum { .. } => {
                    let (x, y) = (g.op(id).inputs[0].unwrap(), g.op(id).outputs[0]);
                    let (qx, qy) = (&g.value(x).ty.quant, &g.value(y).ty.quant);
                    if g.value(x).ty.dtype.to_string() == "i8" && qx != qy {
                        g.remove_op(id);
                        g.inputs.push(y);
                    }
                }
                _ => {}
            }
        }
    }
    let out = model.with_extension("ref.tflite");
    std::fs::write(&out, npuc_tflite::export(&m).unwrap()).unwrap();
    out
}

/// Runs LiteRT (`resolver`) on seeds 0..`seeds` and npuc's interpreter on the same inputs
/// and the same model file (for `ref`, the [`ref_loadable`] copy); returns a description of
/// every output that differs (empty: bit-exact).
pub fn litert_differences(model: &Path, resolver: &str, seeds: usize) -> Vec<String> {
    let python = python();
    let out = model.with_extension(format!("oracle-{resolver}"));
    let oracle_model = if resolver == "ref" { ref_loadable(model) } else { model.to_path_buf() };
    let o = Command::new(&python)
        .arg(repo().join("tools/litert_oracle.py"))
        .args(["run", oracle_model.to_str().unwrap(), "--seed", "0", "--count", &seeds.to_string()])
        .args(["--resolver", resolver, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "LiteRT cannot run {}: {}", model.display(), stderr(&o));
    let module = npuc_tflite::import_file(&oracle_model).unwrap();
    let g = &module.graphs[0];
    let interp = Interpreter::for_module(&module, 0, &Options { threads: 1 }).unwrap();
    let mut diffs = Vec::new();
    for s in 0..seeds {
        let dir = out.join(format!("seed_{s}"));
        let read = |f: String| npy::read_any(&std::fs::read(dir.join(&f)).unwrap()).unwrap();
        let inputs = (0..g.inputs.len()).map(|i| read(format!("in_{i}.npy"))).collect();
        let got = interp.run(inputs).unwrap();
        for (i, t) in got.iter().enumerate() {
            let want = read(format!("out_{i}.npy"));
            if want != *t {
                let (a, b) = (want.data.to_f64_vec(), t.data.to_f64_vec());
                let n = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                diffs.push(format!("seed {s} output {i}: {n}/{} elements differ", a.len()));
            }
        }
    }
    diffs
}

/// Runs LiteRT (reference kernels) on `model` with `seed`; returns the inputs and outputs
/// it used and produced. The oracle's venv is part of the development setup: its absence
/// is a failure, not a skip.
pub fn litert_run(model: &Path, seed: u64, out: &Path) -> (Vec<npuc_interp::Tensor>, Vec<npuc_interp::Tensor>) {
    let o = Command::new(python())
        .arg(repo().join("tools/litert_oracle.py"))
        .args(["run", "--seed", &seed.to_string(), "--resolver", "ref", "--out"])
        .arg(out)
        .arg(model)
        .output()
        .unwrap();
    assert!(o.status.success(), "litert_oracle.py failed on {}: {}", model.display(), stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let read = |key: &str| -> Vec<npuc_interp::Tensor> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let file = t["file"].as_str().unwrap();
                npuc_interp::npy::read_any(&std::fs::read(file).unwrap()).unwrap()
            })
            .collect()
    };
    (read("inputs"), read("outputs"))
}
