//! The NPU performance model (`npuc_npu::perf::estimate`): whole-graph estimates of
//! MobileNetV2 (α 0.35, 96×96, 65 NPU ops with weights to encode) and SESR-M5 ×2 on
//! ethos-u55-128, so the cost of weight encoding and the block search shows with model size.

use criterion::{criterion_group, criterion_main, Criterion};
use npuc_npu::perf::estimate;
use npuc_target::Target;

fn bench(c: &mut Criterion) {
    let target = Target::builtin("ethos-u55-128").expect("builtin target");
    let mut group = c.benchmark_group("perf_estimate_u55_128");
    group.sample_size(10);
    for model in ["mobilenet_v2_035_96_int8.tflite", "sesr_m5_x2_int8.tflite"] {
        let g = npuc_benches::fixture_graph(model);
        group
            .bench_function(model.trim_end_matches(".tflite"), |b| b.iter(|| estimate(&g, &target).expect("estimate")));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
