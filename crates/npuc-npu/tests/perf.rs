//! The NPU performance model on fixture models: report invariants (totals are sums of the
//! ops, CPU ops get no cycles, energy adds static power), float graphs costed as int8, the
//! stage-table provider, and targets without a timing model.

use std::path::{Path, PathBuf};

use npuc_npu::partition::Device;
use npuc_npu::perf::{estimate, PerfError, SimulatedCost};
use npuc_pass::CostProvider;
use npuc_target::Target;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models").join(name)
}

fn load(name: &str) -> npuc_ir::Graph {
    let module = npuc_tflite::import_file(&fixture(name)).expect("import");
    module.main().expect("main graph").clone()
}

fn u55() -> Target {
    Target::builtin("ethos-u55-128").expect("builtin target")
}

#[test]
fn report_totals_are_the_sums_of_the_ops() {
    let t = u55();
    let r = estimate(&load("mobilenet_v2_035_96_int8.tflite"), &t).expect("estimate");
    assert_eq!(r.cycles, r.ops.iter().map(|o| o.cycles.total).sum::<u64>());
    assert_eq!(r.encoded_weight_bytes, r.ops.iter().map(|o| o.encoded_weight_bytes).sum::<u64>());
    assert_eq!(r.npu_ops + r.cpu_ops, r.ops.len());
    let latency = r.cycles as f64 / t.compute.clock_hz as f64 * 1e6;
    assert!((r.latency_us - latency).abs() < 1e-9);
    let dynamic_uj = r.ops.iter().map(|o| o.energy_pj).sum::<f64>() / 1e6;
    let static_uj = t.energy.static_power_mw * r.latency_us / 1e3;
    assert!((r.energy_uj - dynamic_uj - static_uj).abs() < 1e-9 * r.energy_uj.max(1.0));
    assert!(r.sram_bytes > 0 && r.flash_bytes > 0);
    for o in &r.ops {
        // The op's wall time is the longest of its components.
        assert!(o.cycles.total >= o.cycles.compute.max(o.cycles.sram).max(o.cycles.external), "{}", o.output);
        if o.mnemonic == "conv_2d" {
            assert!(o.encoded_weight_bytes > 0 && o.block.is_some() && o.macs > 0, "{}", o.output);
        }
    }
}

#[test]
fn cpu_ops_are_counted_without_npu_cycles() {
    // zoo_a has ops the NPU does not run (e.g. GATHER).
    let r = estimate(&load("zoo_a_int8.tflite"), &u55()).expect("estimate");
    assert!(r.cpu_ops > 0, "zoo_a should keep ops on the CPU");
    for o in r.ops.iter().filter(|o| o.device == Device::Cpu) {
        assert_eq!(o.cycles.total, 0, "{}", o.output);
        assert_eq!(o.energy_pj, 0.0, "{}", o.output);
    }
}

#[test]
fn float_graphs_cost_about_as_their_int8_form() {
    // Same layers; only the weights' values (quantized here from float, there by TFLite)
    // and so their encoded size differ.
    let t = u55();
    let f = estimate(&load("resnet8_f32.tflite"), &t).expect("float estimate");
    let q = estimate(&load("resnet8_int8.tflite"), &t).expect("int8 estimate");
    let ratio = f.cycles as f64 / q.cycles as f64;
    assert!((0.9..=1.1).contains(&ratio), "float {} vs int8 {} cycles", f.cycles, q.cycles);
}

#[test]
fn bigger_macs_array_is_faster() {
    let g = load("sesr_m5_x2_int8.tflite");
    let slow = estimate(&g, &Target::builtin("ethos-u55-64").expect("target")).expect("estimate");
    let fast = estimate(&g, &Target::builtin("ethos-u55-256").expect("target")).expect("estimate");
    assert!(fast.cycles < slow.cycles, "u55-256 {} vs u55-64 {}", fast.cycles, slow.cycles);
}

#[test]
fn stage_table_provider_reports_the_estimate() {
    let g = load("ds_cnn_int8.tflite");
    let p = SimulatedCost::new(u55());
    let cols = p.cost(&g);
    assert_eq!(cols.len(), p.columns().len());
    let r = estimate(&g, &u55()).expect("estimate");
    assert_eq!(cols, vec![r.cycles as f64, r.latency_us, r.energy_uj, r.sram_bytes as f64]);
}

#[test]
fn target_without_timing_is_an_error_and_a_gap_in_the_table() {
    let g = load("ds_cnn_int8.tflite");
    let mut m = Target::builtin("mobile-npu").expect("target");
    m.timing = None;
    assert!(matches!(estimate(&g, &m), Err(PerfError::NoTiming { .. })));
    assert!(SimulatedCost::new(m).cost(&g).iter().all(|c| c.is_nan()));
}

/// The mobile NPU (assumed timing, 8x the MACs of the U65-256) costs SESR with its pixel
/// shuffle on the NPU, faster than the microNPUs.
#[test]
fn the_mobile_npu_is_costed_and_outruns_the_micro_npus() {
    let g = load("sesr_m5_x2_int8.tflite");
    let mobile = estimate(&g, &Target::builtin("mobile-npu").unwrap()).expect("mobile estimate");
    let u65 = estimate(&g, &Target::builtin("ethos-u65-256").unwrap()).expect("u65 estimate");
    assert_eq!((mobile.npu_ops, mobile.cpu_ops), (18, 0));
    assert!(
        mobile.latency_us > 0.0 && mobile.latency_us < u65.latency_us,
        "{} vs {}",
        mobile.latency_us,
        u65.latency_us
    );
}
