//! The functional simulator against the reference interpreter: every int8 fixture lowered
//! for two targets, written to a `.npu` artifact, read back and simulated, must give the
//! interpreter's outputs byte for byte on seeded random inputs.

use std::path::{Path, PathBuf};

use npuc_interp::{random_inputs, Interpreter, Options};
use npuc_ir::Graph;
use npuc_npu::artifact;
use npuc_npu::lower::{lower, LowerOptions};
use npuc_npu::program::{Command, NpuProgram};
use npuc_npu::sim::simulate;
use npuc_target::Target;

fn fixture(name: &str) -> Graph {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models").join(name);
    let m = npuc_tflite::import_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m.main().expect("main graph").clone()
}

/// Lowers, round-trips through the artifact bytes, simulates and compares.
fn check(name: &str, target: &str) -> NpuProgram {
    let g = fixture(name);
    let t = Target::builtin(target).expect("builtin target");
    let p = lower(&g, &t, &LowerOptions::default()).unwrap_or_else(|e| panic!("{name} on {target}: {e}"));
    let bytes = artifact::write(&p);
    let back = artifact::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(back, p, "{name}: the artifact round trip changed the program");
    let interp = Interpreter::new(&g, &Options { threads: 1 }).expect("interpreter");
    for seed in [1u64, 2] {
        let inputs = random_inputs(&g, seed);
        let want = interp.run(inputs.clone()).expect("interpreter run");
        let got = simulate(&back, &inputs).unwrap_or_else(|e| panic!("{name} on {target}: {e}"));
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.shape, b.shape, "{name} output {i}");
            assert!(a.data == b.data, "{name} on {target} seed {seed}: output {i} differs from the interpreter");
        }
    }
    p
}

macro_rules! fixture_tests {
    ($($test:ident: $file:literal, $min_npu:expr;)*) => {$(
        #[test]
        fn $test() {
            for target in ["ethos-u55-128", "ethos-u65-256"] {
                let p = check($file, target);
                assert!(p.npu_ops() >= $min_npu, "{}: {} NPU commands", $file, p.npu_ops());
            }
        }
    )*};
}

fixture_tests! {
    ds_cnn_int8: "ds_cnn_int8.tflite", 10;
    mobilenet_v2_int8: "mobilenet_v2_035_96_int8.tflite", 64;
    resnet8_int8: "resnet8_int8.tflite", 12;
    sesr_m5_x2_int8: "sesr_m5_x2_int8.tflite", 10;
    zoo_a_int8: "zoo_a_int8.tflite", 1;
    zoo_b_int8: "zoo_b_int8.tflite", 1;
    zoo_d_int8: "zoo_d_int8.tflite", 1;
    ds_cnn_int8fio: "ds_cnn_int8fio.tflite", 10;
    zoo_a_int8fio: "zoo_a_int8fio.tflite", 1;
}

#[test]
fn sesr_runs_depth_to_space_on_the_cpu() {
    let p = check("sesr_m5_x2_int8.tflite", "ethos-u55-128");
    assert!(p.commands.iter().any(|c| matches!(c, Command::Cpu(_))));
    assert!(!p.cpu_model.is_empty());
}

/// zoo_c's IF/WHILE call other graphs of the model, which the artifact's CPU part cannot
/// carry yet: lowering says so, naming the op, instead of writing an artifact that cannot run.
#[test]
fn control_flow_is_refused_by_name() {
    let g = fixture("zoo_c_int8.tflite");
    let t = Target::builtin("ethos-u55-128").expect("builtin target");
    let err = lower(&g, &t, &LowerOptions::default()).expect_err("zoo_c has IF/WHILE").to_string();
    assert!(err.contains("if") && err.contains("control flow"), "{err}");
}

/// Other micro-block depths (ethos-u55-32) and partitions (the mobile NPU runs the pixel
/// shuffle) reorder and split differently; the results must not change.
#[test]
fn every_builtin_target_is_bit_exact() {
    for target in npuc_target::builtin_names() {
        check("ds_cnn_int8.tflite", target);
    }
    check("sesr_m5_x2_int8.tflite", "mobile-npu");
}
