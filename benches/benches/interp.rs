//! The reference interpreter, single-threaded, on the fixture models and the generated
//! MobileNetV2 1.0 224×224: one inference per iteration on a fixed input.
//! `tools/compare-interp-speed.py` runs this beside LiteRT and reports the ratios.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{DType, Module};

fn fixture(name: &str) -> Module {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tools/fixtures/models")
        .join(format!("{name}.tflite"));
    npuc_tflite::import(Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))))
        .expect("import")
}

/// A deterministic input that exercises every value range (a ramp over the dtype).
fn input(ty: &npuc_ir::TensorType) -> Tensor {
    let n: usize = ty.shape.iter().product();
    let data = match ty.dtype {
        DType::F32 => Data::F32((0..n).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0).collect()),
        DType::I8 => Data::I8((0..n).map(|i| ((i * 7919) % 256) as u8 as i8).collect()),
        other => panic!("benchmark inputs of type {other} are not generated"),
    };
    Tensor { shape: ty.shape.clone(), data }
}

/// The models measured: name → module.
pub fn models() -> Vec<(String, Module)> {
    let mut v: Vec<(String, Module)> = [
        "mobilenet_v2_035_96_f32",
        "mobilenet_v2_035_96_int8",
        "sesr_m5_x2_f32",
        "sesr_m5_x2_int8",
        "ds_cnn_f32",
        "ds_cnn_int8",
        "resnet8_f32",
        "resnet8_int8",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    v.push(("mobilenet_v2_100_224_f32".into(), npuc_benches::mobilenet_v2(1.0, 224, false)));
    v.push(("mobilenet_v2_100_224_int8".into(), npuc_benches::mobilenet_v2(1.0, 224, true)));
    v
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("interp_1thread");
    group.sample_size(10);
    for (name, m) in models() {
        let g = &m.graphs[0];
        let interp = Interpreter::new(g, &Options { threads: 1 }).expect("prepare");
        let inputs: Vec<Tensor> = g.inputs.iter().map(|&v| input(&g.value(v).ty)).collect();
        group.bench_with_input(BenchmarkId::from_parameter(&name), &inputs, |b, inputs| {
            b.iter(|| interp.run(inputs.clone()).expect("run"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
