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

/// The SESR fixture with its input resized (every result shape re-inferred; the
/// quantization is unchanged, as the network is fully convolutional).
fn sesr_at(h: usize, w: usize) -> Graph {
    let mut g = fixture("sesr_m5_x2_int8.tflite");
    let x = g.inputs[0];
    g.value_mut(x).ty.shape = vec![1, h, w, 1];
    for id in g.topo_order().expect("order") {
        let types = npuc_ir::infer_output_types(&g, id).expect("shapes");
        for (v, ty) in g.op(id).outputs.clone().into_iter().zip(types) {
            g.value_mut(v).ty = ty;
        }
    }
    g
}

/// On the real ethos-u65-256 (384 KiB of SRAM), SESR at 128x128 needs more than the SRAM
/// and runs in stripes, bit-exact.
#[test]
fn sesr_128_on_ethos_u65_256_stripes_and_is_bit_exact() {
    let g = sesr_at(128, 128);
    let t = Target::builtin("ethos-u65-256").expect("target");
    let p = lower(&g, &t, &LowerOptions::default()).expect("lower");
    assert!(p.memory.dram_bytes > t.memory.sram.size_bytes && p.memory.sram_bytes <= t.memory.sram.size_bytes);
    let inputs = random_inputs(&g, 5);
    let want = Interpreter::new(&g, &Options { threads: 1 }).expect("interp").run(inputs.clone()).expect("run");
    assert!(simulate(&p, &inputs).expect("sim") == want, "striped SESR 128x128 differs from the interpreter");
}

/// SESR at a 1080p input lowers on ethos-u65-256 within its SRAM, and is refused on the
/// flash-only ethos-u55-128, whose 4 MiB cannot hold one 16-channel 1080p feature map.
#[test]
fn sesr_1080p_lowers_in_stripes_within_the_u65_sram() {
    let g = sesr_at(1080, 1920);
    let t = Target::builtin("ethos-u65-256").expect("target");
    let p = lower(&g, &t, &LowerOptions::default()).expect("lower");
    assert!(p.memory.sram_bytes <= t.memory.sram.size_bytes, "stripes use {} bytes", p.memory.sram_bytes);
    assert!(p.memory.dram_bytes >= 1080 * 1920 * 16, "DRAM holds the feature maps: {}", p.memory.dram_bytes);
    let u55 = Target::builtin("ethos-u55-128").expect("target");
    assert!(matches!(lower(&g, &u55, &LowerOptions::default()), Err(LowerError::SramOverflow { .. })));
}
