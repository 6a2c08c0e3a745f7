//! `prune` end to end on the float fixtures: every structure writes a model that verifies,
//! loads and runs in LiteRT with the same outputs as npuc's interpreter, reports the
//! sparsity it reached per layer, honours a per-layer config, and rejects bad options with
//! one line and exit code 2.

mod support;

use std::path::{Path, PathBuf};

use npuc_interp::{Data, Interpreter, Options, Tensor};
use support::{litert_run, npuc, repo, stderr};

fn fixture(name: &str) -> PathBuf {
    repo().join("tools/fixtures/models").join(name)
}

fn f32s(t: &Tensor) -> Vec<f64> {
    match &t.data {
        Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Data::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Data::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
        other => panic!("unexpected output type {:?}", other.dtype()),
    }
}

/// Prunes `model` with `passes`, checks the result verifies, runs in LiteRT and matches
/// npuc's interpreter within 1e-5 relative; returns the driver's stderr (notes and table).
fn prune_and_compare(model: &str, passes: &str, dir: &Path) -> String {
    prune_and_compare_within(model, passes, dir, |scale| 1e-5 * scale)
}

/// [`prune_and_compare`] with the allowed error a function of the outputs' largest magnitude.
fn prune_and_compare_within(model: &str, passes: &str, dir: &Path, tolerance: fn(f64) -> f64) -> String {
    let src = fixture(model);
    let out = dir.join(format!("{}.tflite", model.trim_end_matches(".tflite")));
    let o = npuc(&[
        "opt",
        src.to_str().unwrap(),
        &format!("--passes={passes}"),
        "--verify-each",
        "--check-numerics",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{model} {passes}: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(text.contains("prune"), "{model}: no stage table row for prune:\n{text}");

    let m = npuc_tflite::import_file(&out).unwrap();
    npuc_ir::verify_module(&m).unwrap();
    let (inputs, want) = litert_run(&out, 7, &dir.join(format!("lite-{model}")));
    // for_module: zoo_c's IF/WHILE run their graphs.
    let interp = Interpreter::for_module(&m, 0, &Options { threads: 1 })
        .unwrap_or_else(|e| panic!("npuc cannot run pruned {model}: {e}"));
    let got = interp.run(inputs).unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.shape, b.shape, "{model} {passes}: output {i} shape");
        let (a, b) = (f32s(a), f32s(b));
        let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-6);
        let err = a.iter().zip(&b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err <= tolerance(scale),
            "{model} {passes}: output {i}: LiteRT and npuc differ by {err} (scale {scale})"
        );
    }
    text
}

const FLOAT_FIXTURES: [&str; 9] = [
    "ds_cnn_f32.tflite",
    "mobilenet_v2_035_96_f32.tflite",
    "resnet8_f32.tflite",
    "sesr_m5_x2_f32.tflite",
    "zoo_a_f32.tflite",
    "zoo_b_f32.tflite",
    "zoo_c_f32.tflite",
    "zoo_d_f32.tflite",
    "zoo_e_f32.tflite",
];

/// The fixtures with conv/FC layers whose weights are plain f32 constants.
const PRUNABLE: [&str; 5] = [
    "ds_cnn_f32.tflite",
    "mobilenet_v2_035_96_f32.tflite",
    "resnet8_f32.tflite",
    "sesr_m5_x2_f32.tflite",
    "zoo_a_f32.tflite",
];

#[test]
fn unstructured_half_on_every_float_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for model in FLOAT_FIXTURES {
        let text = prune_and_compare(model, "prune{sparsity=0.5}", dir.path());
        if PRUNABLE.contains(&model) {
            assert!(
                text.contains(": unstructured, ") && text.contains("(50.00%)"),
                "{model}: no sparsity reported:\n{text}"
            );
        }
    }
    // The written weights really are half zero, layer by layer.
    let m = npuc_tflite::import_file(&dir.path().join("ds_cnn_f32.tflite")).unwrap();
    let g = m.main().unwrap();
    let mut checked = 0;
    for (op, name) in npuc_pass::weighted_layers(g) {
        let w = g.value(g.op(op).input(1).unwrap());
        let b = w.data.as_ref().unwrap().bytes().unwrap();
        let n = b.len() / 4;
        let zeros = b.chunks_exact(4).filter(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) == 0.0).count();
        assert!(zeros >= (n as f64 * 0.5).round() as usize, "{name}: {zeros}/{n} zero");
        checked += 1;
    }
    assert!(checked >= 5);
}

#[test]
fn two_of_four_on_every_float_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for model in FLOAT_FIXTURES {
        let text = prune_and_compare(model, "prune{structure=2:4}", dir.path());
        if PRUNABLE.contains(&model) {
            assert!(text.contains(": 2:4, "), "{model}: no 2:4 report:\n{text}");
        }
    }
}

#[test]
fn channel_quarter_on_every_float_fixture() {
    let dir = tempfile::tempdir().unwrap();
    for model in FLOAT_FIXTURES {
        let text = prune_and_compare(model, "prune{structure=channel,sparsity=0.25}", dir.path());
        if ["ds_cnn_f32.tflite", "mobilenet_v2_035_96_f32.tflite", "resnet8_f32.tflite", "sesr_m5_x2_f32.tflite"]
            .contains(&model)
        {
            assert!(text.contains("output channels (sparsity 25.00%)"), "{model}: no channel report:\n{text}");
        }
    }
    // Fewer parameters than the original, same interface.
    let before = npuc_tflite::import_file(&fixture("mobilenet_v2_035_96_f32.tflite")).unwrap();
    let after = npuc_tflite::import_file(&dir.path().join("mobilenet_v2_035_96_f32.tflite")).unwrap();
    let (b, a) = (before.main().unwrap(), after.main().unwrap());
    let params = |g: &npuc_ir::Graph| npuc_ir::stats::graph_stats(g).parameters;
    assert!(params(a) < params(b) * 3 / 4, "{} -> {}", params(b), params(a));
    assert_eq!(a.value(a.outputs[0]).ty.shape, b.value(b.outputs[0]).ty.shape);
}

#[test]
fn config_prunes_only_the_layers_its_globs_match() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "version = 1\n[[layer]]\nmatch = \"*conv2d_1/convolution*\"\nsparsity = 0.75\n[[layer]]\nmatch = \"*dense_1/MatMul*\"\nsparsity = 0.5\nstructure = \"2:4\"\n",
    )
    .unwrap();
    let text = prune_and_compare("ds_cnn_f32.tflite", &format!("prune{{config={}}}", config.display()), dir.path());
    let notes: Vec<&str> = text.lines().filter(|l| l.starts_with("note: prune:")).collect();
    assert_eq!(notes.len(), 2, "{text}");
    assert!(
        notes[0].contains("conv2d_1/convolution")
            && notes[0].contains(": unstructured, 1920/2560 weights zero (75.00%)"),
        "{}",
        notes[0]
    );
    assert!(notes[1].contains("dense_1/MatMul") && notes[1].contains(": 2:4, "), "{}", notes[1]);
}

#[test]
fn bad_options_are_one_line_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let unmatched = dir.path().join("u.toml");
    std::fs::write(&unmatched, "[[layer]]\nmatch = \"nothing*\"\nsparsity = 0.5\n").unwrap();
    let model = fixture("ds_cnn_f32.tflite");
    let out = dir.path().join("x.tflite");
    for (passes, expect) in [
        ("prune{sparsity=1.5}".to_string(), "option 'sparsity' has bad value '1.5'"),
        ("prune{structure=4:2}".to_string(), "N:M needs 1 <= N < M <= 64"),
        (format!("prune{{config={}}}", unmatched.display()), "pattern 'nothing*' matches no layer"),
    ] {
        let o = npuc(&["opt", model.to_str().unwrap(), &format!("--passes={passes}"), "-o", out.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{passes}: {err}");
        assert_eq!(err.lines().count(), 1, "{passes}: {err}");
        assert!(err.starts_with("error: ") && err.contains(expect), "{passes}: {err}");
    }
}

#[test]
fn int8_weights_prune_by_real_magnitude_and_still_match_litert() {
    // Integer kernels are TFLite-exact; one step of rounding is allowed for safety.
    let dir = tempfile::tempdir().unwrap();
    for model in ["ds_cnn_int8.tflite", "mobilenet_v2_035_96_int8.tflite", "resnet8_int8.tflite"] {
        for passes in ["prune{sparsity=0.5}", "prune{structure=2:4}", "prune{structure=channel,sparsity=0.25}"] {
            let text = prune_and_compare_within(model, passes, dir.path(), |_| 1.0);
            assert!(text.contains("weights zero") || text.contains("output channels"), "{model} {passes}:\n{text}");
        }
    }
}
