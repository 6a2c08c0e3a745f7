//! Every registered pass on its own, and the default pipeline `canonicalize,collapse-linear`,
//! on MobileNetV2 α 1.0 224×224 float and on the expanded (training-time) SESR-XL and
//! SESR-M5 ×2 at 360×640. The goal: the default pipeline on MobileNetV2 under 20 ms.
//!
//! Each iteration rewrites a fresh clone of the graph (cloned in the untimed setup, since a
//! pass rewrites in place), built through its `PassInfo` with default options exactly as
//! `npuc opt --passes=NAME` builds it. The compression passes (prune in three modes, and
//! quantize with two calibration samples) run on MobileNetV2.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use npuc_ir::{Graph, Module};
use npuc_pass::{parse_pipeline, Pass, PassContext, PassInfo, PassManager, Registry};
use npuc_zoo::{SesrConfig, SesrVariant};

/// The default pipeline of `npuc opt`.
const DEFAULT_PIPELINE: &str = "canonicalize,collapse-linear";

/// The passes measured one by one; the list mirrors the driver's registry
/// (`tools/npuc/src/passes.rs`) minus `static-batch`, which needs a batch option and is a
/// no-op on these batch-1 models.
fn registry() -> Registry {
    Registry::new(vec![
        npuc_canonicalize::DCE,
        npuc_canonicalize::FOLD_CONSTANTS,
        npuc_canonicalize::FUSE_ACTIVATION,
        npuc_canonicalize::REMOVE_IDENTITY,
        npuc_canonicalize::CANCEL_RESHAPE_TRANSPOSE,
        npuc_collapse_linear::FOLD_BATCHNORM,
        npuc_collapse_linear::FOLD_PAD,
        npuc_canonicalize::CANONICALIZE,
        npuc_collapse_linear::COLLAPSE_LINEAR,
        npuc_prune::PRUNE,
        npuc_quantize::QUANTIZE,
    ])
}

/// Compression pipelines measured on MobileNetV2 (quantize calibrates through the
/// interpreter, so it runs on few samples here; its cost grows linearly with `samples`).
const COMPRESSION: [&str; 4] =
    ["prune{sparsity=0.5}", "prune{structure=2:4}", "prune{structure=channel,sparsity=0.25}", "quantize{samples=2}"];

/// The models measured: name, main graph, and the criterion sample size (large models get
/// fewer samples so the whole bench stays within minutes).
fn models() -> Vec<(&'static str, Graph, usize)> {
    let sesr = |v| npuc_zoo::sesr(&SesrConfig::new(v, 2, 360, 640)).unwrap_or_else(|e| panic!("building {v}: {e}"));
    let mbv2 = npuc_benches::mobilenet_v2(1.0, 224, false).graphs.swap_remove(0);
    vec![
        ("mobilenet_v2_100_224_f32", mbv2, 20),
        ("sesr_m5_x2_360x640", sesr(SesrVariant::M5), 10),
        ("sesr_xl_x2_360x640", sesr(SesrVariant::Xl), 10),
    ]
}

/// Builds the passes of `pipeline` through the registry, with default options.
fn build(registry: &Registry, pipeline: &str) -> Vec<Box<dyn Pass>> {
    let entries = parse_pipeline(pipeline).unwrap_or_else(|e| panic!("pipeline '{pipeline}': {e}"));
    registry.build_pipeline(&entries).unwrap_or_else(|e| panic!("pipeline '{pipeline}': {e}"))
}

/// Runs `passes` in order over `graph`, as the manager does for one graph but without
/// instrumentation or the stage table.
fn run(passes: &mut [Box<dyn Pass>], graph: &mut Graph) {
    for p in passes {
        let name = p.name();
        p.run(graph, &mut PassContext::new(0)).unwrap_or_else(|e| panic!("pass '{name}': {e}"));
    }
}

/// Runs `pipeline` once on a clone, checks the result verifies, and says what it did, so a
/// benchmark of a pass that fails or breaks the graph fails instead of timing an error.
fn check_once(registry: &Registry, model: &str, graph: &Graph, pipeline: &str) {
    let mut g = graph.clone();
    let before = g.op_count();
    run(&mut build(registry, pipeline), &mut g);
    if let Err(e) = npuc_ir::verify_graph(&g) {
        panic!("{model}: '{pipeline}' left an invalid graph: {e}");
    }
    eprintln!("{model}: {pipeline}: {before} -> {} ops", g.op_count());
}

fn bench(c: &mut Criterion) {
    let registry = registry();
    let names: Vec<&str> = registry.passes().iter().map(|p: &PassInfo| p.name).collect();
    for (model, graph, samples) in models() {
        let mut group = c.benchmark_group(format!("passes/{model}"));
        group.sample_size(samples);
        // Prune and quantize are measured with explicit options below, on MobileNetV2 only
        // (quantizing the expanded SESR networks at 360p would time the interpreter).
        let measured: Vec<&str> = names.iter().copied().filter(|n| !["prune", "quantize"].contains(n)).collect();
        let compression: &[&str] = if model.starts_with("mobilenet") { &COMPRESSION } else { &[] };
        for &name in measured.iter().chain([DEFAULT_PIPELINE].iter()).chain(compression) {
            check_once(&registry, model, &graph, name);
            group.bench_with_input(BenchmarkId::from_parameter(name), &graph, |b, graph| {
                b.iter_batched(
                    || (graph.clone(), build(&registry, name)),
                    |(mut g, mut passes)| {
                        run(&mut passes, &mut g);
                        g
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        // What `npuc opt` pays on top: the manager's stage table (cost columns per stage).
        let module = Module::from_graph(graph.clone());
        group.bench_with_input(BenchmarkId::new("manager", DEFAULT_PIPELINE), &module, |b, module| {
            b.iter_batched(
                || (module.clone(), PassManager::new(build(&registry, DEFAULT_PIPELINE))),
                |(mut m, mut pm)| {
                    pm.run(&mut m, &mut std::io::sink()).expect("pipeline");
                    m
                },
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
