//! `sparse::densify` on the real sparse constants of the committed fixtures, judged by
//! LiteRT:
//! - `zoo_d_*` (DENSIFY of a block-sparse conv weight): the DENSIFY result LiteRT computes
//!   inside the original model (`experimental_preserve_all_tensors`);
//! - every sparse constant of `zoo_d_*` and `zoo_e_f32` (sparse FULLY_CONNECTED weights,
//!   no DENSIFY in the model): a one-op model `constant → DENSIFY` exported by npuc and run
//!   by LiteRT.
//!
//! Hand-made examples (CSR, column-major, block-sparse) live beside the code in
//! `src/sparse.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python, repo, scratch};

use bytes::Bytes;
use npuc_interp::{sparse, Interpreter, Options, Tensor};
use npuc_ir::{Graph, Module, Op, Operation, Value, ValueId};

/// Runs a model on zero inputs without delegates and dumps the requested tensors (all
/// outputs when none are named) as raw bytes to `<prefix>_<index>.bin`.
const DUMP: &str = r#"
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

model, prefix, *wanted = sys.argv[1:]
it = Interpreter(model_path=model, num_threads=1, experimental_preserve_all_tensors=True,
                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
indices = [int(w) for w in wanted] or [d["index"] for d in it.get_output_details()]
for i in indices:
    it.get_tensor(i).tofile(f"{prefix}_{i}.bin")
    print(i)
"#;

/// LiteRT's bytes for `tensors` of `model` (all outputs when empty), in order.
fn litert_dump(dir: &Path, model: &Path, tag: &str, tensors: &[usize]) -> Vec<Vec<u8>> {
    let script = dir.join("dump.py");
    std::fs::write(&script, DUMP).unwrap();
    let prefix = dir.join(tag);
    let out = Command::new(python())
        .arg(&script)
        .arg(model)
        .arg(&prefix)
        .args(tensors.iter().map(|t| t.to_string()))
        .output()
        .unwrap();
    assert!(out.status.success(), "LiteRT failed on {}: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|i| std::fs::read(format!("{}_{i}.bin", prefix.display())).unwrap())
        .collect()
}

fn fixture(name: &str) -> (PathBuf, Module) {
    let path = repo().join("tools/fixtures/models").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = npuc_tflite::import(Bytes::from(bytes)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, m)
}

/// The sparse constants of a graph.
fn sparse_constants(g: &Graph) -> Vec<ValueId> {
    g.value_ids().filter(|&v| g.value(v).sparsity.is_some() && g.value(v).data.is_some()).collect()
}

fn densify(g: &Graph, v: ValueId) -> Tensor {
    let val = g.value(v);
    sparse::densify(&val.ty, val.data.as_ref().unwrap(), val.sparsity.as_ref().unwrap())
        .unwrap_or_else(|e| panic!("densify '{}': {e}", val.name))
}

/// A model holding only `constant → DENSIFY → output`.
fn densify_model(g: &Graph, v: ValueId) -> Graph {
    let src = g.value(v);
    let mut h = Graph::new("densify");
    let mut c = Value::new(src.name.clone(), src.ty.clone());
    c.data = src.data.clone();
    c.sparsity = src.sparsity.clone();
    let c = h.add_value(c);
    let y = h.add_value(Value::new("dense", src.ty.clone()));
    h.add_op(Operation::new(Op::Densify, vec![Some(c)], vec![y])).unwrap();
    h.outputs.push(y);
    h
}

#[test]
fn fixture_sparse_constants_densify_like_litert() {
    let dir = scratch("consts");
    let mut checked = 0;
    for name in ["zoo_d_f32.tflite", "zoo_d_f16.tflite", "zoo_d_int8.tflite", "zoo_e_f32.tflite"] {
        let (_, m) = fixture(name);
        let g = &m.graphs[0];
        let sparse = sparse_constants(g);
        assert!(!sparse.is_empty(), "{name}: expected a sparse constant");
        for v in sparse {
            let ours = densify(g, v);
            let zeros = ours.data.to_f64_vec().iter().filter(|&&x| x == 0.0).count();
            assert!(zeros > 0 && zeros < ours.len(), "{name}: a sparse weight has zeros and non-zeros");
            // LiteRT densifies the same constant in a one-op model.
            let h = densify_model(g, v);
            let model = dir.join(format!("{name}.{}.densify.tflite", v.0));
            std::fs::write(&model, npuc_tflite::export(&Module::from_graph(h.clone())).unwrap()).unwrap();
            let theirs = litert_dump(&dir, &model, &format!("{name}_{}", v.0), &[]);
            assert_eq!(theirs.len(), 1);
            assert!(
                theirs[0] == ours.data.to_le_bytes(),
                "{name}: constant '{}' densifies differently from LiteRT",
                g.value(v).name
            );
            // And npuc's DENSIFY op on that model gives the same tensor.
            let out = Interpreter::new(&h, &Options::default()).unwrap().run(vec![]).unwrap();
            assert_eq!(out[0], ours);
            checked += 1;
        }
    }
    assert!(checked >= 4, "checked {checked} sparse constants");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn zoo_d_densify_results_match_litert_in_the_original_model() {
    let dir = scratch("models");
    for name in ["zoo_d_f32.tflite", "zoo_d_f16.tflite", "zoo_d_int8.tflite"] {
        let (path, m) = fixture(name);
        let g = &m.graphs[0];
        let densify_ops: Vec<_> = g.op_ids().filter(|&id| matches!(g.op(id).op, Op::Densify)).collect();
        assert!(!densify_ops.is_empty(), "{name} has a DENSIFY op");
        for id in densify_ops {
            let op = g.op(id);
            let input = op.input(0).unwrap();
            let output = op.outputs[0];
            // The importer keeps TFLite's tensor indices as value ids.
            let theirs = litert_dump(&dir, &path, &format!("{name}_orig"), &[output.index()]);
            let ours = densify(g, input);
            assert_eq!(ours.shape, g.value(output).ty.shape);
            assert!(
                theirs[0] == ours.data.to_le_bytes(),
                "{name}: DENSIFY result '{}' differs from LiteRT's",
                g.value(output).name
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
