//! `static-batch` end to end on the dynamic-batch fixture: after `static-batch{size=4}` the
//! exported model is fully static, LiteRT runs it at batch 4 and agrees with npuc's
//! interpreter, and each batch row equals the original model run on that sample alone.

mod support;

use std::path::Path;

use npuc_interp::{Data, Interpreter, Options, Tensor};
use support::{litert_run, npuc, repo, stderr};

fn read_npy(path: &Path) -> Tensor {
    npuc_interp::npy::read_any(&std::fs::read(path).unwrap()).unwrap()
}

fn f32s(t: &Tensor) -> &[f32] {
    match &t.data {
        Data::F32(v) => v,
        other => panic!("expected f32 data, got {:?}", other.dtype()),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn resnet8_at_batch_4_runs_in_litert_and_matches_the_interpreter() {
    let fixture = repo().join("tools/fixtures/models/resnet8_f32.tflite");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("resnet8_b4.tflite");
    let o = npuc(&[
        "opt",
        fixture.to_str().unwrap(),
        "--passes=static-batch{size=4},fold-constants",
        "--verify-each",
        "-o",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The written model is static: batch 4 everywhere, no run-time dimension, and the
    // flatten's SHAPE → STRIDED_SLICE → PACK chain folded into a constant target.
    let m = npuc_tflite::import_file(&model).unwrap();
    let g = m.main().unwrap();
    assert_eq!(g.value(g.inputs[0]).ty.shape, vec![4, 32, 32, 3]);
    assert_eq!(g.value(g.outputs[0]).ty.shape, vec![4, 10]);
    let live = g.live_values();
    assert!(g.value_ids().filter(|v| live[v.index()]).all(|v| g.value(v).shape_signature.is_none()));
    assert!(!g.op_ids().any(|id| matches!(g.op(id).op, npuc_ir::Op::Shape { .. })));
    npuc_ir::verify_graph(g).unwrap();

    // LiteRT (reference kernels) at batch 4 against npuc's interpreter on the same input.
    let lite = dir.path().join("litert");
    litert_run(&model, 11, &lite);
    let input = read_npy(&lite.join("in_0.npy"));
    assert_eq!(input.shape, vec![4, 32, 32, 3]);
    let want = read_npy(&lite.join("out_0.npy"));
    assert_eq!(want.shape, vec![4, 10]);
    let got = Interpreter::new(g, &Options { threads: 1 }).unwrap().run(vec![input.clone()]).unwrap();
    assert_eq!(got[0].shape, vec![4, 10]);
    let err = max_abs_diff(f32s(&want), f32s(&got[0]));
    assert!(err <= 1e-5, "LiteRT and npuc disagree at batch 4: max abs error {err}");

    // Each row is the original (dynamic-batch) model run on that sample alone: the batch
    // was fixed, not the computation changed. Rows differ, so a broadcast bug shows.
    let original = npuc_tflite::import_file(&fixture).unwrap();
    let og = original.main().unwrap();
    let interp = Interpreter::new(og, &Options { threads: 1 }).unwrap();
    let sample = 32 * 32 * 3;
    let rows: Vec<Vec<f32>> = (0..4)
        .map(|i| {
            let x = f32s(&input)[i * sample..(i + 1) * sample].to_vec();
            let t = Tensor::new(vec![1, 32, 32, 3], Data::F32(x)).unwrap();
            f32s(&interp.run(vec![t]).unwrap()[0]).to_vec()
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let err = max_abs_diff(row, &f32s(&got[0])[i * 10..(i + 1) * 10]);
        assert!(err <= 1e-6, "row {i} differs from the single-sample run by {err}");
    }
    assert!(max_abs_diff(&rows[0], &rows[1]) > 1e-4, "random samples should give different outputs");
}

#[test]
fn static_batch_on_a_static_model_changes_nothing() {
    let fixture = repo().join("tools/fixtures/models/ds_cnn_f32.tflite");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.nir"), dir.path().join("b.nir"));
    let o = npuc(&["opt", fixture.to_str().unwrap(), "--passes=dce", "-o", a.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = npuc(&["opt", fixture.to_str().unwrap(), "--passes=dce,static-batch{size=8}", "-o", b.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), std::fs::read_to_string(&b).unwrap());
}
