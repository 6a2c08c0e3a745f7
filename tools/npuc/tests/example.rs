//! The README's built-in example: `tools/fixtures/examples/sesr-m5-x2-360x640-expanded.tflite`
//! is exactly what `npuc zoo` writes for it (so its provenance is reproducible), and the
//! README's main command compiles it into the collapsed network of the SESR paper.

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
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(&format!("cargo run --release -p npuc -- compile {EXAMPLE}")), "README names the example");
}
