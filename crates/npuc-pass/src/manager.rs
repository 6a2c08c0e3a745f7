//! The pass manager: runs passes over every graph of a module, with instrumentation, and
//! records the stage table.

use std::io::Write;
use std::time::Instant;

use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{DType, Graph, Module};
use serde::Serialize;

use crate::cost::{AnalyticCost, CostProvider};
use crate::error::PassError;
use crate::pass::{Pass, PassContext, PassReport};
use crate::stage::{Numerics, OutputError, StageRecord, StageTable};

/// What the manager does around each pass.
#[derive(Clone, Debug, Default)]
pub struct Instrumentation {
    /// Run the IR verifier on the whole module after each pass; a failure names the pass.
    pub verify_each: bool,
    /// Print the module as `.nir` after every pass.
    pub print_after_all: bool,
    /// Print the module as `.nir` after the passes with these names.
    pub print_after: Vec<String>,
    /// Record each pass's wall time in the stage table.
    pub timing: bool,
    /// Run the main graph in the interpreter before the pipeline and after each pass on
    /// seeded random inputs and record the error of every output.
    pub check_numerics: bool,
    /// Seed of the numerics inputs (same stream as `npuc run --seed`).
    pub seed: u64,
}

/// Everything one pipeline run produced besides the rewritten module.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PipelineReport {
    /// The stage table.
    pub stages: StageTable,
    /// Per pass, in order: its name and merged report over all graphs.
    pub passes: Vec<(String, PassReport)>,
    /// Diagnostics passes recorded, prefixed with pass and graph.
    pub diagnostics: Vec<String>,
}

/// Runs a sequence of passes with instrumentation and cost providers.
pub struct PassManager {
    passes: Vec<Box<dyn Pass>>,
    instrumentation: Instrumentation,
    providers: Vec<Box<dyn CostProvider>>,
}

impl PassManager {
    /// A manager for `passes` with no instrumentation and the [`AnalyticCost`] provider.
    pub fn new(passes: Vec<Box<dyn Pass>>) -> Self {
        PassManager { passes, instrumentation: Instrumentation::default(), providers: vec![Box::new(AnalyticCost)] }
    }

    /// Sets the instrumentation.
    pub fn with_instrumentation(mut self, instrumentation: Instrumentation) -> Self {
        self.instrumentation = instrumentation;
        self
    }

    /// Adds a cost provider (its columns follow those already present).
    pub fn add_cost_provider(&mut self, provider: Box<dyn CostProvider>) {
        self.providers.push(provider);
    }

    /// Names of the passes, in order.
    pub fn pass_names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs every pass over every graph of `module`, writing `.nir` printouts to `print_out`.
    pub fn run(&mut self, module: &mut Module, print_out: &mut dyn Write) -> Result<PipelineReport, PassError> {
        let inst = self.instrumentation.clone();
        let mut report = PipelineReport::default();
        let mut input = StageRecord::measure("input", module, &self.providers);

        // The reference: the main graph's outputs on seeded inputs before any pass.
        let mut reference: Option<Result<Reference, String>> = None;
        if inst.check_numerics {
            let r = module.main().ok_or_else(|| "the module has no graph".to_string()).and_then(|g| {
                let inputs = npuc_interp::random_inputs(g, inst.seed);
                let real = real_values(g, &g.inputs, &inputs);
                execute(module, inputs).map(|out| (real, real_outputs(g, &out)))
            });
            input.numerics = Some(match &r {
                Ok((_, out)) => compare(out, out),
                Err(reason) => Numerics::NotExecutable { reason: reason.clone() },
            });
            reference = Some(r);
        }
        report.stages.stages.push(input);

        for pass in &mut self.passes {
            let name = pass.name();
            let start = Instant::now();
            let mut merged = PassReport::default();
            // Cheap: graphs share their constant data.
            let snapshot = (module.graphs.len() > 1).then(|| std::sync::Arc::new(module.clone()));
            for (i, g) in module.graphs.iter_mut().enumerate() {
                let mut cx = PassContext::new(i);
                cx.module = snapshot.clone();
                let r = pass.run(g, &mut cx)?;
                merged.merge(r);
                report.diagnostics.extend(cx.diagnostics.into_iter().map(|d| format!("{name}: graph #{i}: {d}")));
            }
            let elapsed = start.elapsed();
            if inst.verify_each {
                npuc_ir::verify_module(module)
                    .map_err(|e| PassError::Verify { pass: name.into(), message: e.to_string() })?;
            }
            if inst.print_after_all || inst.print_after.iter().any(|p| p == name) {
                let text = npuc_ir::print_module(module, &npuc_ir::PrintOptions::default());
                write!(print_out, "// -----// IR after pass '{name}' //----- //\n{text}")
                    .map_err(|e| PassError::Io(e.to_string()))?;
            }
            let mut rec = StageRecord::measure(name, module, &self.providers);
            if inst.timing {
                rec.time_ms = Some(elapsed.as_secs_f64() * 1e3);
            }
            if let Some(r) = &reference {
                rec.numerics = Some(match r {
                    Err(reason) => Numerics::NotExecutable { reason: format!("reference: {reason}") },
                    Ok((inputs, want)) => match module.main() {
                        None => Numerics::NotExecutable { reason: "the module has no graph".into() },
                        Some(g) => match stage_inputs(g, inputs).and_then(|x| execute(module, x)) {
                            Ok(got) => compare(want, &real_outputs(g, &got)),
                            Err(reason) => Numerics::NotExecutable { reason },
                        },
                    },
                });
            }
            report.stages.stages.push(rec);
            report.passes.push((name.to_string(), merged));
        }
        Ok(report)
    }
}

/// A tensor in real units, with its shape.
type RealOutput = (Vec<usize>, Vec<f64>);

/// The seeded inputs and the outputs of the main graph before any pass, in real units
/// (so a pass may change the graph's input or output types, e.g. quantize them).
type Reference = (Vec<RealOutput>, Vec<RealOutput>);

/// The outputs of `g` in real units (see [`real_values`]).
fn real_outputs(g: &Graph, outputs: &[Tensor]) -> Vec<RealOutput> {
    real_values(g, &g.outputs, outputs)
}

/// The reference inputs converted to the graph's own input types: quantized inputs get
/// `clamp(round(x / scale) + zero_point)`, as a QUANTIZE op in front of the model would.
fn stage_inputs(g: &Graph, real: &[RealOutput]) -> Result<Vec<Tensor>, String> {
    if real.len() != g.inputs.len() {
        return Err(format!("the graph has {} inputs, the input stage had {}", g.inputs.len(), real.len()));
    }
    g.inputs
        .iter()
        .zip(real)
        .map(|(&v, (shape, x))| {
            let ty = &g.value(v).ty;
            if ty.shape != *shape {
                return Err(format!(
                    "input '{}' has shape {:?}, the input stage had {:?}",
                    g.value(v).name,
                    ty.shape,
                    shape
                ));
            }
            let q = ty.quant.as_ref().filter(|q| q.scale.len() == 1);
            let quantize = |lo: f64, hi: f64| -> Vec<f64> {
                let (scale, zp) =
                    q.map_or((1.0, 0), |q| (f64::from(q.scale[0]), q.zero_point.first().copied().unwrap_or(0)));
                x.iter().map(|r| ((r / scale).round() + zp as f64).clamp(lo, hi)).collect()
            };
            let data = match ty.dtype {
                DType::F32 => Data::F32(x.iter().map(|&r| r as f32).collect()),
                DType::I8 if q.is_some() => Data::I8(quantize(-128.0, 127.0).into_iter().map(|v| v as i8).collect()),
                DType::U8 if q.is_some() => Data::U8(quantize(0.0, 255.0).into_iter().map(|v| v as u8).collect()),
                DType::I16 if q.is_some() => {
                    Data::I16(quantize(-32768.0, 32767.0).into_iter().map(|v| v as i16).collect())
                }
                // Unquantized integers (loop counts, indices) pass through unchanged.
                DType::I32 if q.is_none() => Data::I32(x.iter().map(|&r| r as i32).collect()),
                DType::I64 if q.is_none() => Data::I64(x.iter().map(|&r| r as i64).collect()),
                other => return Err(format!("cannot feed the reference inputs to an input of type {}", other.name())),
            };
            Tensor::new(shape.clone(), data).map_err(|e| e.to_string())
        })
        .collect()
}

/// `tensors` (the values `ids` of `g`) in real units: quantized ones dequantized with
/// their own (per-tensor or per-axis) scale and zero point.
fn real_values(g: &Graph, ids: &[npuc_ir::ValueId], tensors: &[Tensor]) -> Vec<RealOutput> {
    tensors
        .iter()
        .zip(ids)
        .map(|(t, &v)| {
            let mut x = t.data.to_f64_vec();
            if let Some(q) = g.value(v).ty.quant.as_ref().filter(|q| !q.scale.is_empty()) {
                // Per-axis: the index along `axis` is (flat / inner) % dim.
                let axis = q.axis as usize;
                let inner: usize = t.shape.iter().skip(axis + 1).product();
                let dim = t.shape.get(axis).copied().unwrap_or(1).max(1);
                for (i, e) in x.iter_mut().enumerate() {
                    let c = if q.scale.len() > 1 { (i / inner.max(1)) % dim } else { 0 };
                    let (scale, zp) = (q.scale[c.min(q.scale.len() - 1)], q.zero_point.get(c).copied().unwrap_or(0));
                    *e = f64::from(scale) * (*e - zp as f64);
                }
            }
            (t.shape.clone(), x)
        })
        .collect()
}

/// Runs `g` single-threaded (deterministic, and the manager may itself run in a pool).
fn execute(m: &Module, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
    let interp = Interpreter::for_module(m, 0, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    interp.run(inputs).map_err(|e| e.to_string())
}

/// Per-output max absolute error and SQNR of `got` against `want`.
fn compare(want: &[RealOutput], got: &[RealOutput]) -> Numerics {
    if want.len() != got.len() {
        return Numerics::NotExecutable {
            reason: format!("the graph has {} outputs, the input stage had {}", got.len(), want.len()),
        };
    }
    let mut outputs = Vec::with_capacity(want.len());
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w.0 != g.0 {
            return Numerics::NotExecutable {
                reason: format!("output {i} has shape {:?}, the input stage had {:?}", g.0, w.0),
            };
        }
        let (w, g) = (&w.1, &g.1);
        let (mut max, mut signal, mut noise) = (0.0f64, 0.0f64, 0.0f64);
        for (a, b) in w.iter().zip(g) {
            let d = a - b;
            max = max.max(d.abs());
            signal += a * a;
            noise += d * d;
        }
        let sqnr_db = if noise == 0.0 { f64::INFINITY } else { 10.0 * (signal / noise).log10() };
        outputs.push(OutputError { max_abs_error: max, sqnr_db });
    }
    Numerics::Compared { outputs }
}
