//! The README's built-in example: `tools/fixtures/examples/sesr-m5-x2-360x640-expanded.tflite`
//! is exactly what `npuc zoo` writes for it (so its provenance is reproducible), and the
//! README's main command compiles it for an NPU: collapsed into the SESR paper's network,
//! quantized, lowered and written as a `.npu` artifact. The target path is exercised on the
//! same network at 64×64 (the 360×640 calibration is a release-build job, not a debug test).

mod support;

use support::{npuc, repo};

const EXAMPLE: &str = "tools/fixtures/examples/sesr-m5-x2-360x640-expanded.tflite";

#[test]
fn example_is_the_zoo_model_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m5.tflite");
    let o = npuc(&["zoo", "sesr-m5", "--scale", "2", "--input", "360x640", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let built = std::fs::read(&out).unwrap();
    let committed = std::fs::read(repo().join(EXAMPLE)).unwrap();
    assert!(built == committed, "{EXAMPLE} differs from `npuc zoo sesr-m5 --scale 2 --input 360x640`; regenerate it");
}

#[test]
fn readme_command_collapses_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sesr-m5-x2.tflite");
    let o = npuc(&["compile", EXAMPLE, "-o", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stages = report["stages"]["stages"].as_array().or_else(|| report["stages"].as_array()).unwrap();
    let (first, last) = (&stages[0], stages.last().unwrap());
    assert_eq!(first["ops"], 30);
    assert_eq!(last["ops"], 18);
    // papers.md: SESR-M5 x2 has 13,520 conv weights, 3.12 G MACs at 360p -> 720p; the
    // remaining MACs are the 5 PReLUs (one per feature-map element).
    let prelu = 5 * 360 * 640 * 16;
    assert_eq!(last["macs"].as_u64().unwrap(), 13_520 * 360 * 640 + prelu);
    assert!(out.exists());
}

#[test]
fn readme_command_compiles_the_network_for_an_npu() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let command = format!("cargo run --release -p npuc -- compile {EXAMPLE} --target ethos-u65-256 -o sesr-m5-x2.npu");
    assert!(readme.contains(&command), "README's main command is not `{command}`");

    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("m5-64.tflite");
    let o = npuc(&["zoo", "sesr-m5", "--scale", "2", "--input", "64x64", "-o", small.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("sesr-m5-x2.npu");
    let o =
        npuc(&["compile", small.to_str().unwrap(), "--target", "ethos-u65-256", "-o", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stages: Vec<&str> = report["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["input", "canonicalize", "collapse-linear", "quantize"]);
    let npu = &report["npu"];
    // Every conv, add and activation on the NPU; DEPTH_TO_SPACE has no Ethos-U command.
    assert_eq!((npu["npu_ops"].as_u64(), npu["cpu_ops"].as_u64()), (Some(17), Some(1)), "{npu}");
    assert!(npu["cycles"].as_u64().is_some_and(|c| c > 0) && npu["energy_uj"].as_f64().is_some_and(|e| e > 0.0));
    assert!(npu["encoded_weight_bytes"].as_u64().is_some_and(|b| b < 16 * 1024), "{npu}");
    assert!(out.exists());
}
