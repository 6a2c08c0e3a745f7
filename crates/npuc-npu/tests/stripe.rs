//! Striping: on a target whose SRAM cannot hold the feature maps, activations live in DRAM
//! and NPU commands run in stripes staged through the SRAM — still bit-exact with the
//! interpreter, within the SRAM, and refused on a target with flash only.

use std::path::{Path, PathBuf};

use npuc_interp::{random_inputs, Interpreter, Options};
use npuc_ir::Graph;
use npuc_npu::artifact;
use npuc_npu::lower::{lower, LowerError, LowerOptions};
use npuc_npu::program::{Command, Region};
use npuc_npu::sim::simulate;
use npuc_target::{ExternalKind, Target};

fn fixture(name: &str) -> Graph {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models").join(name);
    npuc_tflite::import_file(&path).expect("import").main().expect("main").clone()
}

fn tiny() -> Target {
    Target::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/tiny-sram-u65.toml")).expect("test target")
}

fn check_striped(name: &str) -> npuc_npu::program::NpuProgram {
    let g = fixture(name);
    let t = tiny();
    let p = lower(&g, &t, &LowerOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(p.memory.dram_bytes > t.memory.sram.size_bytes, "{name}: the feature maps should not fit");
    assert!(p.memory.sram_bytes <= t.memory.sram.size_bytes, "{name}: stripes use {} bytes", p.memory.sram_bytes);
    let striped = p.commands.iter().filter(|c| matches!(c, Command::Npu(n) if n.stripe.0 > 0)).count();
    assert!(striped > 0, "{name}: no command was cut into stripes");
    assert!(p.commands.iter().any(|c| matches!(c, Command::Dma { src_region: Region::Dram, .. })));
    let back = artifact::read(&artifact::write(&p)).expect("round trip");
    let interp = Interpreter::new(&g, &Options { threads: 1 }).expect("interp");
    for seed in [11u64, 12] {
        let inputs = random_inputs(&g, seed);
        let want = interp.run(inputs.clone()).expect("run");
        let got = simulate(&back, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == want, "{name} seed {seed}: striped simulation differs from the interpreter");
    }
    p
}

#[test]
fn sesr_m5_x2_in_stripes_is_bit_exact() {
    let p = check_striped("sesr_m5_x2_int8.tflite");
    // 17 NPU ops over 64x64 feature maps of 16 channels (1 KiB a row) in 16 KiB of SRAM.
    assert!(p.npu_ops() > 100, "{} NPU commands", p.npu_ops());
}

#[test]
fn mobilenet_v2_in_stripes_is_bit_exact() {
    let _ = check_striped("mobilenet_v2_035_96_int8.tflite");
}

#[test]
fn resnet8_in_stripes_is_bit_exact() {
    let _ = check_striped("resnet8_int8.tflite");
}

#[test]
fn flash_only_targets_refuse_oversized_feature_maps() {
    let mut t = tiny();
    t.memory.external.kind = ExternalKind::Flash;
    let e = lower(&fixture("sesr_m5_x2_int8.tflite"), &t, &LowerOptions::default()).expect_err("does not fit");
    assert!(matches!(e, LowerError::SramOverflow { available: 16384, .. }), "{e}");
    assert!(e.to_string().contains("only flash"), "{e}");
}
