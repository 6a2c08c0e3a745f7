//! Calibration of npuc's NPU performance model (`npuc_npu::perf`) against Arm's Vela 5.2:
//! every int8 fixture Vela compiles, on ethos-u55-128 and ethos-u65-256. Vela runs through
//! tools/vela_perf.py (a missing .venv or Vela fails the test loudly).
//!
//! Cycles are compared over the ops both place on the NPU, matched by output tensor name
//! (Vela names its operators after their output tensors; vela_perf.py groups the operators
//! Vela splits an op into). Goals: median |npuc − Vela| / Vela ≤ 15 %, no model beyond 30 %.
//! The model has no per-model constants: everything comes from the target file or cited
//! Vela facts. The table also prints both encoded weight sizes, and npuc's must not exceed
//! Vela's on any model (the lowering encodes the same streams with the same block configs;
//! Vela also adds weights of ops it rewrites into convolutions, e.g. MEAN and RESIZE_BILINEAR).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use npuc_npu::partition::Device;
use npuc_npu::perf::{estimate, PerfReport};
use npuc_target::Target;
use serde_json::Value as Json;

/// The int8 fixtures Vela 5.2 compiles with ops both place on the NPU. Left out: zoo_d
/// (Vela stops with "Non-passthrough operation (Conv2D) could not run on NPU" on its
/// DENSIFY-fed conv) and zoo_c (Vela runs one TANH inside the WHILE body on the NPU; npuc
/// costs the main graph, whose control-flow ops stay on the CPU, so no op is shared).
const MODELS: [&str; 6] = ["ds_cnn", "mobilenet_v2_035_96", "resnet8", "sesr_m5_x2", "zoo_a", "zoo_b"];
const TARGETS: [&str; 2] = ["ethos-u55-128", "ethos-u65-256"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vela_perf(model: &Path, target: &str) -> Json {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} missing: run tools/setup-venv.sh (the Vela oracle is required)", python.display());
    assert!(root.join(".venv/bin/vela").exists(), ".venv/bin/vela missing: run tools/setup-venv.sh");
    let out = Command::new(&python)
        .arg(root.join("tools/vela_perf.py"))
        .arg(model)
        .arg("--target-toml")
        .arg(root.join("targets").join(format!("{target}.toml")))
        .output()
        .expect("run vela_perf.py");
    assert!(
        out.status.success(),
        "vela_perf.py {} {target} failed ({}): {}",
        model.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("vela_perf.py prints JSON")
}

struct Row {
    model: String,
    target: String,
    matched: usize,
    npuc: u64,
    vela: u64,
    npuc_all: u64,
    vela_all: u64,
    npuc_weights: u64,
    vela_weights: u64,
}

impl Row {
    fn error(&self) -> f64 {
        (self.npuc as f64 - self.vela as f64).abs() / self.vela as f64
    }
}

fn compare(model: &str, target: &str) -> Row {
    let path = repo_root().join("tools/fixtures/models").join(format!("{model}_int8.tflite"));
    let vela = vela_perf(&path, target);
    let module = npuc_tflite::import_file(&path).expect("import");
    let graph = module.main().expect("main graph");
    let t = Target::builtin(target).expect("builtin target");
    let report: PerfReport = estimate(graph, &t).expect("estimate");

    let verbose = std::env::var_os("NPUC_PERF_VERBOSE").is_some();
    let vela_ops: HashMap<&str, u64> = vela["ops"]
        .as_array()
        .expect("ops array")
        .iter()
        .filter(|o| o["ends_at_model_tensor"].as_bool() == Some(true))
        .map(|o| (o["name"].as_str().expect("name"), o["cycles"].as_u64().expect("cycles")))
        .collect();
    let (mut matched, mut npuc, mut vela_sum) = (0, 0, 0);
    for op in report.ops.iter().filter(|o| o.device == Device::Npu) {
        if let Some(&c) = vela_ops.get(op.output.as_str()) {
            matched += 1;
            npuc += op.cycles.total;
            vela_sum += c;
            if verbose {
                println!(
                    "  {model} {target} {:<24} npuc {:>8} (compute {:>8} sram {:>7} ext {:>7}) vela {:>8} {:?} {}",
                    op.mnemonic,
                    op.cycles.total,
                    op.cycles.compute,
                    op.cycles.sram,
                    op.cycles.external,
                    c,
                    op.block.map(|b| b.ofm_block),
                    op.output
                );
            }
        } else if verbose {
            println!("  {model} {target} {:<24} npuc {:>8} unmatched {}", op.mnemonic, op.cycles.total, op.output);
        }
    }
    Row {
        model: model.into(),
        target: target.into(),
        matched,
        npuc,
        vela: vela_sum,
        npuc_all: report.cycles,
        vela_all: vela["cycles"].as_u64().expect("cycles"),
        npuc_weights: report.encoded_weight_bytes,
        vela_weights: vela["encoded_weight_bytes"].as_u64().expect("encoded weights"),
    }
}

#[test]
fn npuc_cycles_track_vela_on_every_int8_fixture() {
    let mut rows = Vec::new();
    for target in TARGETS {
        for model in MODELS {
            rows.push(compare(model, target));
        }
    }
    println!(
        "{:<20} {:<14} {:>4} {:>10} {:>10} {:>6} {:>10} {:>10} {:>9} {:>9}",
        "model", "target", "ops", "npuc", "vela", "ratio", "npuc_all", "vela_all", "npuc_wB", "vela_wB"
    );
    for r in &rows {
        println!(
            "{:<20} {:<14} {:>4} {:>10} {:>10} {:>6.3} {:>10} {:>10} {:>9} {:>9}",
            r.model,
            r.target,
            r.matched,
            r.npuc,
            r.vela,
            r.npuc as f64 / r.vela as f64,
            r.npuc_all,
            r.vela_all,
            r.npuc_weights,
            r.vela_weights
        );
    }
    for r in &rows {
        assert!(r.matched > 0 && r.vela > 0, "{} {}: no op matched between npuc and Vela", r.model, r.target);
    }
    let mut errors: Vec<f64> = rows.iter().map(Row::error).collect();
    errors.sort_by(f64::total_cmp);
    let median = errors[errors.len() / 2];
    println!("median |npuc - vela| / vela = {:.1}%", median * 100.0);
    assert!(median <= 0.15, "median error {:.1}% exceeds 15%", median * 100.0);
    for r in &rows {
        assert!(r.error() <= 0.30, "{} on {}: error {:.1}% exceeds 30%", r.model, r.target, r.error() * 100.0);
        assert!(
            r.npuc_weights <= r.vela_weights,
            "{} on {}: npuc encodes {} weight bytes, Vela {}",
            r.model,
            r.target,
            r.npuc_weights,
            r.vela_weights
        );
    }
}
