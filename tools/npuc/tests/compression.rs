//! `npuc compile --compression`: a per-layer config prunes and quantizes the collapsed SESR
//! network layer by layer, and the result runs in LiteRT bit for bit like npuc's
//! interpreter.

mod support;

use npuc_ir::{Graph, Op};
use support::{litert_differences, npuc, stderr};

/// (name, int8 weight values) of every conv of the main graph, in execution order.
fn conv_weights(g: &Graph) -> Vec<(String, Vec<i8>)> {
    g.topo_order()
        .unwrap()
        .into_iter()
        .filter(|&id| matches!(g.op(id).op, Op::Conv2d(_)))
        .map(|id| {
            let o = g.op(id);
            let w = g.value(o.input(1).unwrap());
            let bytes = w.data.as_ref().unwrap().bytes().unwrap();
            (g.value(o.outputs[0]).name.clone(), bytes.iter().map(|&b| b as i8).collect())
        })
        .collect()
}

#[test]
fn per_layer_bits_and_sparsity_reach_the_compiled_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let o = npuc(&["zoo", "sesr-m5", "--scale", "2", "--input", "12x10", "-o", &p("m5.tflite")]);
    assert!(o.status.success(), "{}", stderr(&o));
    // After collapse-linear each body block is one conv named after its residual add.
    std::fs::write(
        p("c.toml"),
        "version = 1\n[default]\nbits = 8\n[[layer]]\nmatch = \"body*\"\nbits = 4\nsparsity = 0.5\n",
    )
    .unwrap();
    let o = npuc(&["compile", &p("m5.tflite"), "--compression", &p("c.toml"), "-o", &p("q.tflite"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stages: Vec<&str> = report["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["input", "canonicalize", "collapse-linear", "prune", "quantize"]);

    let m = npuc_tflite::import_file(&dir.path().join("q.tflite")).unwrap();
    let convs = conv_weights(&m.graphs[0]);
    assert_eq!(convs.len(), 7, "{:?}", convs.iter().map(|c| &c.0).collect::<Vec<_>>());
    for (name, w) in &convs {
        let zeros = w.iter().filter(|&&v| v == 0).count();
        let max = w.iter().map(|v| v.unsigned_abs()).max().unwrap();
        if name.starts_with("body") {
            // 4 bits: the value range ±7, and at least the pruned half is exactly zero.
            assert_eq!(max, 7, "{name}: 4-bit weights reach ±7");
            assert!(zeros >= w.len() / 2, "{name}: {zeros} zeros of {}", w.len());
        } else {
            assert_eq!(max, 127, "{name}: 8-bit weights reach ±127");
            assert!(zeros < w.len() / 4, "{name}: unpruned layer has {zeros} zeros of {}", w.len());
        }
    }
    let diffs = litert_differences(&dir.path().join("q.tflite"), "ref", 2);
    assert!(diffs.is_empty(), "npuc and LiteRT differ: {diffs:?}");
}

#[test]
fn a_rule_matching_no_layer_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_string();
    let o = npuc(&["zoo", "sesr-m3", "--scale", "2", "--input", "8x8", "-o", &p("m3.tflite")]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(p("c.toml"), "[[layer]]\nmatch = \"bodyy*\"\nbits = 4\n").unwrap();
    let o = npuc(&["compile", &p("m3.tflite"), "--compression", &p("c.toml"), "-o", &p("q.tflite")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("pattern 'bodyy*' matches no layer"), "{err}");
    assert!(!dir.path().join("q.tflite").exists());
}

/// The printed IR (constants elided, as `npuc print`) of float fixtures after quantization
/// and after each pruning mode: what `npuc compile --compression` writes for real models.
/// Review changes with `cargo insta review` before accepting them.
#[test]
fn printed_ir_after_compression() {
    let cases = [
        ("ds_cnn_f32", "canonicalize,quantize"),
        ("resnet8_f32", "canonicalize,quantize{io=float}"),
        ("resnet8_f32", "canonicalize,quantize{activations=int16}"),
        ("mobilenet_v2_035_96_f32", "canonicalize,prune{sparsity=0.5}"),
        ("mobilenet_v2_035_96_f32", "canonicalize,prune{structure=2:4}"),
        ("ds_cnn_f32", "canonicalize,prune{structure=channel,sparsity=0.25}"),
    ];
    for (fixture, pipeline) in cases {
        let model = format!("tools/fixtures/models/{fixture}.tflite");
        let o = npuc(&["opt", &model, &format!("--passes={pipeline}"), "-o", "-"]);
        assert!(o.status.success(), "{fixture} {pipeline}: {}", stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        let slug: String =
            pipeline.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        insta::assert_snapshot!(format!("{fixture}__{slug}"), text);
    }
}
