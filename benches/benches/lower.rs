//! The NPU back end's compile of an int8 model, as `npuc compile --target` runs it after the
//! passes: the cycle model's estimate (which encodes every filter once) followed by the
//! lowering (which reuses those streams), then the artifact's bytes. MobileNetV2 (α 0.35,
//! 96×96, 0.5 MB of weights) and SESR-M5 ×2 on ethos-u55-128; the weight encoder dominates,
//! so growth with the weight bytes shows. Vela 5.2's compile of the same models is measured
//! side by side by tools/compare-vela.py. A second group runs the functional simulator on the
//! lowered artifacts (decode, un-reorder, execute at planned offsets), against the
//! reference interpreter on the same graph and inputs as the peer.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use npuc_npu::lower::{lower, LowerOptions};
use npuc_npu::perf::{estimate_with, WeightStreams};
use npuc_target::Target;

fn bench(c: &mut Criterion) {
    let target = Target::builtin("ethos-u55-128").expect("builtin target");
    let mut group = c.benchmark_group("npu_compile_u55_128");
    group.sample_size(10);
    for model in ["mobilenet_v2_035_96_int8.tflite", "sesr_m5_x2_int8.tflite"] {
        let g = npuc_benches::fixture_graph(model);
        group.bench_function(model.trim_end_matches(".tflite"), |b| {
            b.iter(|| {
                let streams = Arc::new(WeightStreams::default());
                estimate_with(&g, &target, &streams).expect("estimate");
                let p = lower(&g, &target, &LowerOptions { streams, ..Default::default() }).expect("lower");
                npuc_npu::artifact::write(&p)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("npu_sim_vs_interpreter");
    group.sample_size(10);
    for model in ["mobilenet_v2_035_96_int8.tflite", "sesr_m5_x2_int8.tflite"] {
        let g = npuc_benches::fixture_graph(model);
        let p = lower(&g, &target, &LowerOptions::default()).expect("lower");
        let inputs = npuc_interp::random_inputs(&g, 0);
        let name = model.trim_end_matches(".tflite");
        group.bench_function(format!("{name}/sim"), |b| {
            b.iter(|| npuc_npu::sim::simulate(&p, &inputs).expect("simulate"))
        });
        let interp = npuc_interp::Interpreter::new(&g, &npuc_interp::Options { threads: 1 }).expect("interpreter");
        group.bench_function(format!("{name}/interpreter"), |b| b.iter(|| interp.run(inputs.clone()).expect("run")));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
