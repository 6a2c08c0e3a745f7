//! Post-training quantization of float graphs to full integer.
//!
//! The `quantize` pass ([`QUANTIZE`]) calibrates a float graph by running it through
//! `npuc-interp` on sample inputs ([`calibrate`]), picks activation ranges with an
//! observer ([`observer`]), and rewrites the graph the way TFLite's full-integer
//! quantization does ([`rewrite`], [`params`]): int8 asymmetric per-tensor activations (or
//! int16 symmetric in 16x8 mode), per-channel symmetric narrow-range weights (8, 4 or 2
//! bits, stored as int8; per-layer bits from a compression config, UDC-style), int32
//! biases (int64 in 16x8 mode). The result runs bit-exactly on npuc's integer kernels and
//! on LiteRT. This crate is not for quantization-aware training or for formats other than
//! TFLite's.
//!
//! Calibration data (`calibration=DIR`): for a single-input model, `.npy` files directly
//! in DIR (one sample each, sorted by name); otherwise one sub-folder per input, named by
//! the input tensor's name or its index, each with one `.npy` per sample. Without it,
//! `samples` synthetic samples uniform in `[-1, 1]` are used.

pub mod calibrate;
pub mod observer;
pub mod params;
pub mod rewrite;

use std::path::PathBuf;

use npuc_ir::Graph;
use npuc_pass::{
    CompressionConfig, OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo, PassOptions, PassReport,
};

pub use calibrate::CalibrationData;
pub use observer::{ObserverKind, ValueStats};
pub use params::{act_params, quantize_bias, quantize_weights, sqnr_db, ActParams, ActType, QuantWeights};
pub use rewrite::{quantize_graph, quantize_graph_in, QuantizeConfig, QuantizeStats};

/// Registry entry of the `quantize` pass.
pub const QUANTIZE: PassInfo = PassInfo {
    name: "quantize",
    summary: "post-training full-integer quantization (TFLite int8 or 16x8): calibrate through the interpreter, per-channel weights, int32 biases",
    options: &[
        OptionInfo {
            name: "activations",
            ty: OptionType::Str,
            default: "int8",
            doc: "int8 (asymmetric) or int16 (TFLite 16x8: symmetric int16 activations, int8 weights, int64 bias)",
        },
        OptionInfo { name: "bits", ty: OptionType::Int, default: "8", doc: "weight bits for every layer: 8, 4 or 2" },
        OptionInfo {
            name: "io",
            ty: OptionType::Str,
            default: "int8",
            doc: "int8: integer graph inputs/outputs; float: keep float inputs/outputs (QUANTIZE/DEQUANTIZE inserted)",
        },
        OptionInfo {
            name: "calibration",
            ty: OptionType::Str,
            default: "",
            doc: "directory of .npy samples (one sub-folder per input for multi-input models); empty: synthetic",
        },
        OptionInfo {
            name: "samples",
            ty: OptionType::Int,
            default: "32",
            doc: "synthetic calibration samples (uniform in [-1, 1])",
        },
        OptionInfo { name: "seed", ty: OptionType::Int, default: "0", doc: "seed of the synthetic samples" },
        OptionInfo {
            name: "observer",
            ty: OptionType::Str,
            default: "minmax",
            doc: "activation range: minmax, percentile (of |x|) or mse (histogram search)",
        },
        OptionInfo {
            name: "percentile",
            ty: OptionType::Float,
            default: "99.99",
            doc: "percentile of |x| the percentile observer clips at (0 < p <= 100)",
        },
        OptionInfo {
            name: "config",
            ty: OptionType::Str,
            default: "",
            doc: "compression config TOML with per-layer bits (rules matching no layer are an error)",
        },
    ],
    build: build_quantize,
};

fn bad(option: &str, value: impl ToString, expected: &str) -> PassError {
    PassError::BadOptionValue {
        pass: "quantize".into(),
        option: option.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

fn build_quantize(o: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    let act = match o.string("activations")? {
        "int8" => ActType::Int8,
        "int16" => ActType::Int16,
        v => return Err(bad("activations", v, "int8 or int16")),
    };
    let bits = match o.int("bits")? {
        b @ (8 | 4 | 2) => b as u32,
        b => return Err(bad("bits", b, "8, 4 or 2")),
    };
    let io_float = match o.string("io")? {
        "int8" => false,
        "float" => true,
        v => return Err(bad("io", v, "int8 or float")),
    };
    let samples = o.int("samples")?;
    if samples < 1 {
        return Err(bad("samples", samples, "a positive integer"));
    }
    let seed = o.int("seed")?;
    let seed = u64::try_from(seed).map_err(|_| bad("seed", seed, "a non-negative integer"))?;
    let p = o.float("percentile")?;
    let observer = match o.string("observer")? {
        "minmax" => ObserverKind::MinMax,
        "percentile" if p > 0.0 && p <= 100.0 => ObserverKind::Percentile(p),
        "percentile" => return Err(bad("percentile", p, "0 < percentile <= 100")),
        "mse" => ObserverKind::Mse,
        v => return Err(bad("observer", v, "minmax, percentile or mse")),
    };
    let data = match o.string("calibration")? {
        "" => CalibrationData::Synthetic { count: samples as usize, seed },
        dir => CalibrationData::Dir(PathBuf::from(dir)),
    };
    let config = match o.string("config")? {
        "" => None,
        path => Some(
            CompressionConfig::load(std::path::Path::new(path))
                .map_err(|e| bad("config", path, &format!("a valid compression config ({e})")))?,
        ),
    };
    Ok(Box::new(Quantize { config: QuantizeConfig { act, bits, io_float, data, observer, config } }))
}

/// The `quantize` pass: see [`quantize_graph`].
#[derive(Clone, Debug)]
pub struct Quantize {
    /// What to do.
    pub config: QuantizeConfig,
}

impl Pass for Quantize {
    fn name(&self) -> &'static str {
        "quantize"
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
        // Graphs called by IF/WHILE stay float, as the TF converter keeps them: their
        // callers quantize around the call.
        if let Some(m) = &cx.module {
            let called = m.graphs.iter().any(|g| g.op_ids().any(|id| g.op(id).op.callees().contains(&cx.graph_index)));
            if called {
                cx.note(format!("graph '{}' is called by control flow: kept float", graph.name));
                return Ok(PassReport::default());
            }
        }
        let module = cx.module.as_deref().map(|m| (m, cx.graph_index));
        let stats = quantize_graph_in(graph, module, &self.config).map_err(|message| PassError::Unsupported {
            pass: "quantize".into(),
            graph: cx.graph_index,
            graph_name: graph.name.clone(),
            message,
        })?;
        let mut notes = stats.layer_notes;
        notes.push(format!(
            "quantized {} values to {} with the {} observer over {} samples{}",
            stats.values,
            match self.config.act {
                ActType::Int8 => "int8",
                ActType::Int16 => "int16 (16x8)",
            },
            self.config.observer.name(),
            stats.samples,
            match &self.config.data {
                CalibrationData::Synthetic { .. } => " (synthetic, uniform in [-1, 1])",
                CalibrationData::Dir(_) => "",
            }
        ));
        Ok(PassReport { ops_removed: stats.ops_removed, ops_added: stats.ops_added, notes })
    }
}
