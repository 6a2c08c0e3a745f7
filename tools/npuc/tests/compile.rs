//! `npuc compile` end to end: SESR-M5 from the zoo collapses to one conv per linear block
//! with the MACs the shapes predict, numerically equal to the expanded model in npuc's
//! interpreter and in LiteRT; outputs are deterministic; bad input is a one-line error with
//! exit code 2; and the printed IR of every fixture after the default pipeline is snapshot.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use npuc_ir::{Graph, Op};
use serde_json::Value;
use support::{npuc, python, repo, stderr};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes the expanded (training-time) SESR-M5, x2, 16×16 input, to `dir/m5.tflite`.
fn expanded_m5(dir: &Path) -> PathBuf {
    let model = dir.join("m5.tflite");
    let o = npuc(&["zoo", "sesr-m5", "--scale", "2", "--input", "16x16", "-o", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    model
}

fn main_graph(path: &Path) -> Graph {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = npuc_tflite::import(bytes::Bytes::from(bytes)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(m.graphs.len(), 1, "SESR has one graph");
    m.graphs.remove(0)
}

fn elements(g: &Graph, v: npuc_ir::ValueId) -> u64 {
    g.value(v).ty.shape.iter().map(|&d| d as u64).product()
}

#[test]
fn sesr_m5_collapses_to_one_conv_per_linear_block() {
    let dir = tempfile::tempdir().unwrap();
    let model = expanded_m5(dir.path());
    let out = dir.path().join("c.tflite");
    let o = npuc(&["compile", s(&model), "-o", s(&out), "--json", "--check-numerics"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: Value = serde_json::from_slice(&o.stdout).expect("with --json, stdout is one JSON object");

    let before = main_graph(&model);
    let after = main_graph(&out);
    let convs = |g: &Graph| g.op_ids().filter(|&id| matches!(g.op(id).op, Op::Conv2d(_))).collect::<Vec<_>>();
    // Expanded: a k×k conv into P channels and a 1×1 conv back per linear block.
    assert_eq!(convs(&before).len(), 14);
    let after_convs = convs(&after);
    assert_eq!(after_convs.len(), 7, "one conv per linear block");

    // Conv MACs from the shapes: output pixels × taps per output element.
    let mut conv_macs = 0u64;
    let mut taps_per_pixel = 0u64;
    for &id in &after_convs {
        let op = after.op(id);
        let w = &after.value(op.input(1).unwrap()).ty.shape;
        let (o_ch, kh, kw, i_ch) = (w[0] as u64, w[1] as u64, w[2] as u64, w[3] as u64);
        assert!(kh > 1 && kw > 1, "a 1×1 conv survived: weights {w:?}");
        let out_shape = &after.value(op.outputs[0]).ty.shape;
        let pixels = (out_shape[0] * out_shape[1] * out_shape[2]) as u64;
        assert_eq!(pixels, 256, "every conv runs at the 16×16 input resolution");
        taps_per_pixel += o_ch * kh * kw * i_ch;
        conv_macs += pixels * o_ch * kh * kw * i_ch;
    }
    // 5×5 1→16, five 3×3 16→16 and 5×5 16→4 (scale² channels): SESR-M5's collapsed form.
    assert_eq!(taps_per_pixel, 400 + 5 * 2304 + 1600);
    assert_eq!(taps_per_pixel, 13_520);
    assert_eq!(conv_macs, 13_520 * 256);
    let prelu_macs: u64 = after
        .op_ids()
        .filter(|&id| matches!(after.op(id).op, Op::Prelu))
        .map(|id| elements(&after, after.op(id).outputs[0]))
        .sum();
    assert_eq!(prelu_macs, 5 * 256 * 16, "five PReLUs over 16×16×16");

    let stages = json["stages"].as_array().expect("stages");
    let names: Vec<&str> = stages.iter().map(|r| r["stage"].as_str().unwrap()).collect();
    assert_eq!(names, ["input", "canonicalize", "collapse-linear"]);
    let last = stages.last().unwrap();
    assert_eq!(last["macs"].as_u64(), Some(conv_macs + prelu_macs));
    assert_eq!(last["ops"].as_u64(), Some(after.op_count() as u64));
    assert_eq!(json["summary"]["output"]["macs"], last["macs"]);
    assert_eq!(json["summary"]["input"]["ops"].as_u64(), Some(before.op_count() as u64));
    assert_eq!(json["pipeline"], "canonicalize,collapse-linear");

    // The collapse is exact up to float rounding: < 1e-5 relative (SQNR ≥ 100 dB).
    let numerics = &last["numerics"];
    assert_eq!(numerics["status"], "compared", "{numerics}");
    for out in numerics["outputs"].as_array().unwrap() {
        let err = out["max_abs_error"].as_f64().unwrap();
        assert!(err < 1e-5, "max abs error {err}");
        let sqnr = out["sqnr_db"].as_f64().unwrap_or(f64::INFINITY);
        assert!(sqnr >= 100.0, "SQNR {sqnr} dB");
    }
}

#[test]
fn text_report_has_the_stage_table_and_a_summary_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = expanded_m5(dir.path());
    let out = dir.path().join("c.nir");
    let o = npuc(&["compile", s(&model), "-o", s(&out), "--timing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("stage ") && lines[0].contains("peak_act_bytes") && lines[0].ends_with("time_ms"));
    assert!(lines[1].starts_with("input ") && lines[3].starts_with("collapse-linear "), "{text}");
    assert_eq!(
        lines[4],
        "m5: 30 ops -> 18, 320695 params -> 13703, constants 1.28 MB -> 54.8 KB, 81.61 M MACs -> 3.48 M (23.4x fewer)"
    );
    let nir = std::fs::read_to_string(&out).unwrap();
    assert!(nir.contains("graph @main(") && nir.matches("conv_2d(").count() == 7, "{nir}");
}

#[test]
fn collapsed_model_matches_the_expanded_one_in_litert() {
    let dir = tempfile::tempdir().unwrap();
    let model = expanded_m5(dir.path());
    let out = dir.path().join("c.tflite");
    let o = npuc(&["compile", s(&model), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The expanded model's output scale, and that it is not all clipped to 0 or 1.
    let run_dir = dir.path().join("litert");
    let r = Command::new(python())
        .arg(repo().join("tools/litert_oracle.py"))
        .args(["run", s(&model), "--seed", "0", "--out", s(&run_dir)])
        .output()
        .unwrap();
    assert!(r.status.success(), "LiteRT failed: {}", stderr(&r));
    let bytes = std::fs::read(run_dir.join("out_0.npy")).unwrap();
    let want = npuc_interp::npy::read_any(&bytes).unwrap().data.to_f64_vec();
    let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let inside = want.iter().filter(|&&v| v > 0.0 && v < 1.0).count();
    assert!(inside >= want.len() / 4, "only {inside} of {} outputs inside (0, 1)", want.len());

    // `compare` exits 1 when any bit differs; it is the size of the differences that counts.
    let c = Command::new(python())
        .arg(repo().join("tools/litert_oracle.py"))
        .args(["compare", s(&model), s(&out), "--seeds", "2"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&c.stdout)
        .unwrap_or_else(|e| panic!("litert_oracle compare printed no JSON ({e}): {}", stderr(&c)));
    assert!(matches!(c.status.code(), Some(0 | 1)), "compare failed: {}", stderr(&c));
    assert_eq!(report["seeds"], 2);
    assert_eq!(report["signature_mismatches"].as_array().map(Vec::len), Some(0), "{report}");
    for m in report["mismatches"].as_array().unwrap() {
        let d = m["max_abs_diff"].as_f64().unwrap_or_else(|| panic!("no difference measure: {m}"));
        assert!(d <= 1e-5 * scale, "seed {}: LiteRT outputs differ by {d} (output scale {scale})", m["seed"]);
    }
}

#[test]
fn compiling_twice_writes_identical_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let model = expanded_m5(dir.path());
    for ext in ["tflite", "nir"] {
        let (a, b) = (dir.path().join(format!("a.{ext}")), dir.path().join(format!("b.{ext}")));
        for out in [&a, &b] {
            let o = npuc(&["compile", s(&model), "-o", s(out)]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(!a.is_empty() && a == b, "two compiles of the same model wrote different .{ext} files");
    }
}

#[test]
fn bad_input_is_one_line_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = expanded_m5(dir.path());
    let out = dir.path().join("out.tflite");
    let dot = dir.path().join("out.dot");
    let missing = dir.path().join("missing.tflite");
    let (m, o) = (s(&model), s(&out));
    let bad_bits = dir.path().join("bits.toml");
    std::fs::write(&bad_bits, "[[layer]]\nmatch = \"body*\"\nbits = 3\n").unwrap();
    let bad_sparsity = dir.path().join("sparsity.toml");
    std::fs::write(&bad_sparsity, "[default]\nsparsity = 1.5\n").unwrap();
    let cases: [(Vec<&str>, &str); 11] = [
        (vec![s(&missing), "-o", o], "missing.tflite: cannot read"),
        (vec![m, "-o", o, "--passes", "canonicalize,,dce"], "error: --passes: bad pipeline"),
        (vec![m, "-o", o, "--passes", "frobnicate"], "error: --passes: unknown pass 'frobnicate'"),
        (vec![m, "-o", o, "--emit", "dot"], "error: --emit: unknown format 'dot' (valid: tflite, nir, mlir)"),
        (vec![m, "-o", s(&dot)], "cannot tell the output format"),
        (vec![m, "-o", "-", "--emit", "tflite"], "cannot be written to stdout"),
        (vec![m, "-o", o, "--seed", "-3"], "error: --seed: '-3' is not a non-negative integer"),
        (
            vec![m, "-o", o, "--compression", s(&bad_bits)],
            "bits.toml: layer[0].bits: 3 bits is not supported (8, 4 or 2)",
        ),
        (
            vec![m, "-o", o, "--compression", s(&bad_sparsity)],
            "sparsity.toml: default.sparsity: 1.5 is not a sparsity (0 <= sparsity < 1)",
        ),
        (vec![m, "-o", o, "--compression", s(&missing)], "missing.tflite: cannot read"),
        (vec![m, "-o", o, "--calibration", s(&missing)], "not a directory of calibration samples"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["compile"];
        all.extend_from_slice(&args);
        let r = npuc(&all);
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{args:?}: {err}");
        assert!(r.stdout.is_empty(), "{args:?}: a failed compile printed to stdout");
    }
    assert!(!out.exists(), "a failed compile left an output file");
}

/// Every committed fixture, sorted by name.
fn fixtures() -> Vec<PathBuf> {
    let dir = repo().join("tools/fixtures/models");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tflite"))
        .collect();
    v.sort();
    assert!(v.len() >= 20, "expected the committed fixture set in {}, found {}", dir.display(), v.len());
    v
}

/// The printed IR (constants elided, as `npuc print`) of every fixture after the default
/// pipeline. A change here is a change in what `npuc compile` produces for real models:
/// review it with `cargo insta review` before accepting.
#[test]
fn printed_ir_of_every_fixture_after_the_default_pipeline() {
    for path in fixtures() {
        let o = npuc(&["compile", s(&path), "-o", "-"]);
        assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
        let text = String::from_utf8(o.stdout).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, text);
    }
}
