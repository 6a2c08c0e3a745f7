//! Import and export of TFLite models: the committed MobileNetV2 α 0.35 fixtures and a
//! generated 224×224 MobileNetV2 α 1.0 (int8 ≈ 3.9 MB), so growth with size shows.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn fixture(name: &str) -> Bytes {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/models").join(name);
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn models() -> Vec<(String, Bytes)> {
    let large_int8 = npuc_tflite::export(&npuc_benches::mobilenet_v2(1.0, 224, true)).expect("export");
    let large_f32 = npuc_tflite::export(&npuc_benches::mobilenet_v2(1.0, 224, false)).expect("export");
    vec![
        ("mobilenet_v2_035_96_int8".into(), fixture("mobilenet_v2_035_96_int8.tflite")),
        ("mobilenet_v2_035_96_f32".into(), fixture("mobilenet_v2_035_96_f32.tflite")),
        ("mobilenet_v2_100_224_int8".into(), Bytes::from(large_int8)),
        ("mobilenet_v2_100_224_f32".into(), Bytes::from(large_f32)),
    ]
}

fn bench(c: &mut Criterion) {
    let models = models();
    let mut group = c.benchmark_group("tflite_import");
    for (name, bytes) in &models {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), bytes, |b, bytes| {
            b.iter(|| npuc_tflite::import(bytes.clone()).expect("import"))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("tflite_export");
    for (name, bytes) in &models {
        let module = npuc_tflite::import(bytes.clone()).expect("import");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &module, |b, m| {
            b.iter(|| npuc_tflite::export(m).expect("export"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
