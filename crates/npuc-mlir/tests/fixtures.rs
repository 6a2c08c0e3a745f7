//! Every fixture, float and int8, exports to TOSA and MLIR's own `mlir-opt` parses and
//! verifies the file; the one family that cannot (zoo_c: IF/WHILE control flow, not yet an
//! IR op here) fails with the op named, never with a verifier or internal error.
#![cfg(feature = "mlir")]

use std::path::{Path, PathBuf};
use std::process::Command;

use npuc_mlir::MlirError;

/// LLVM 22's mlir-opt, where Debian's `mlir-22-tools` puts it.
const MLIR_OPT: &str = "/usr/lib/llvm-22/bin/mlir-opt";

/// Fixture families with control flow, which the export reports as unsupported.
const CONTROL_FLOW: &[&str] = &["zoo_c_"];

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .collect();
    files.sort();
    files
}

fn stem(p: &Path) -> String {
    p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string()
}

#[test]
fn every_fixture_exports_and_mlir_opt_verifies_it() {
    assert!(Path::new(MLIR_OPT).exists(), "{MLIR_OPT} is missing: install mlir-22-tools");
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut exported = Vec::new();
    let mut report = Vec::new();
    for path in fixtures() {
        let name = stem(&path);
        let module = npuc_tflite::import_file(&path).unwrap_or_else(|e| panic!("{name}: import: {e}"));
        match npuc_mlir::export_module(&module) {
            Ok(text) => {
                let out = tmp.path().join(format!("{name}.mlir"));
                std::fs::write(&out, &text).expect("write .mlir");
                let run = Command::new(MLIR_OPT).arg(&out).arg("-o").arg("/dev/null").output().expect("run mlir-opt");
                assert!(
                    run.status.success(),
                    "{name}: mlir-opt rejects the export: {}",
                    String::from_utf8_lossy(&run.stderr)
                );
                if name.contains("int8") {
                    // Quantized graphs stay integer: requantized by rescales, convolutions and
                    // pools accumulating in i32, never in f32.
                    assert!(text.contains("tosa.rescale"), "{name}: no rescale");
                    assert!(!text.contains("acc_type = f32"), "{name}: a float convolution or pool");
                }
                // Deterministic: a second export is byte-identical.
                let again = npuc_mlir::export_module(&module).expect("second export");
                assert_eq!(text, again, "{name}: export is not deterministic");
                exported.push(name);
            }
            Err(e @ (MlirError::Unsupported { .. } | MlirError::Value { .. })) => report.push(format!("{name}: {e}")),
            Err(e) => panic!("{name}: exporter bug: {e}"),
        }
    }
    eprintln!("exported: {exported:?}\nnot exported:\n  {}", report.join("\n  "));
    let all: Vec<String> = fixtures().iter().map(|p| stem(p)).collect();
    assert!(all.iter().filter(|n| n.contains("int8")).count() >= 10, "int8 fixtures are missing: {all:?}");
    for name in &all {
        let control_flow = CONTROL_FLOW.iter().any(|p| name.starts_with(p));
        let ok = exported.contains(name);
        assert_eq!(ok, !control_flow, "{name}: exported = {ok}; failures:\n{}", report.join("\n"));
    }
    // The control-flow fixtures name the op that stops them.
    for line in &report {
        assert!(line.contains("(if)") || line.contains("(while)"), "{line}");
    }
}

/// `@main`'s `npuc.cost` totals equal the stage table's analytic columns (counted here as
/// npuc-pass's `AnalyticCost` counts them), every emitted convolution carries its own, and
/// `mlir-opt` keeps them all.
#[test]
fn cost_annotations_match_the_analytic_provider_and_survive_mlir_opt() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models");
    for name in ["resnet8_f32", "ds_cnn_f32"] {
        let module = npuc_tflite::import_file(&dir.join(format!("{name}.tflite")))
            .unwrap_or_else(|e| panic!("{name}: import: {e}"));
        let graph = module.main().expect("graph");
        let text = npuc_mlir::export_module(&module).unwrap_or_else(|e| panic!("{name}: export: {e}"));
        let macs = npuc_ir::stats::graph_stats(graph).macs;
        let mut bytes = 0u64;
        for id in graph.op_ids() {
            let o = graph.op(id);
            for &v in o.inputs.iter().flatten().chain(&o.outputs) {
                bytes += graph.value(v).ty.storage_bytes().expect("fixture sizes fit");
            }
        }
        assert!(macs > 0 && bytes > 0, "{name}: empty cost");
        let main = text.lines().find(|l| l.contains("func.func @main")).expect("@main");
        let expect = format!("npuc.cost = {{bytes = {bytes} : i64, macs = {macs} : i64}}");
        assert!(main.contains(&expect), "{name}: want {expect} on {main}");
        let convs = text.lines().filter(|l| l.contains("tosa.conv2d") || l.contains("tosa.depthwise_conv2d"));
        let mut n = 0;
        for line in convs {
            assert!(line.contains("npuc.cost = {bytes = "), "{name}: conv without cost: {line}");
            n += 1;
        }
        assert!(n > 0, "{name} has no convolution");
        let annotated = text.matches("npuc.cost").count();
        let out = tmp.path().join(format!("{name}.mlir"));
        std::fs::write(&out, &text).expect("write .mlir");
        let run = Command::new(MLIR_OPT).arg(&out).output().expect("run mlir-opt");
        assert!(run.status.success(), "{name}: {}", String::from_utf8_lossy(&run.stderr));
        let round = String::from_utf8_lossy(&run.stdout);
        assert_eq!(round.matches("npuc.cost").count(), annotated, "{name}: mlir-opt dropped annotations");
        assert!(round.contains(&expect), "{name}: mlir-opt changed the totals");
    }
}
