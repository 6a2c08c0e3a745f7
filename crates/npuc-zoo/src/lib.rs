//! npuc's model builders: the SESR family in training-time (expanded) form, and seeded
//! samplers of the four task search spaces PerfSAGE's dataset is drawn from ([`space`]),
//! both on top of [`net`], a small builder whose result types come from shape inference.
//!
//! [`sesr`] builds the super-resolution network of Bhardwaj et al. (MLSys 2022, code:
//! ARM-software/sesr) as its training code builds it with expanded linear blocks: every
//! convolution is a k×k conv into `p` channels followed by a 1×1 conv back, with no
//! nonlinearity between them. That is the form the collapse pass starts from, so the
//! builders give the compiler a real, scalable input at any resolution and depth without
//! committing large files. Weights are seeded, not trained: they are scaled so
//! activations stay O(1) through the whole network, which keeps numerical comparisons
//! meaningful, but the models do not super-resolve anything.
//!
//! This crate does not compute collapsed parameter counts or MACs analytically (the
//! collapse pass is checked against the paper's table instead), and it holds no file
//! formats: the driver exports the graphs.

pub mod net;
pub mod space;

use std::fmt;

use npuc_ir::{Activation, Graph, Module, Op, Signature, ValueId};
use rand::Rng;

use crate::net::Net;

/// A builder's failure: an option out of range, or (a bug) a graph the IR refuses.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// The model name is not in the zoo.
    #[error("unknown model '{name}' (known: {known})")]
    UnknownModel {
        /// The name given.
        name: String,
        /// The names the zoo knows, comma separated.
        known: String,
    },
    /// The search space name is not known.
    #[error("unknown search space '{name}' (known: {known})")]
    UnknownSpace {
        /// The name given.
        name: String,
        /// The spaces the zoo knows, comma separated.
        known: String,
    },
    /// SESR upsamples by 2 or 4 only.
    #[error("scale {scale} is not supported (SESR upsamples by 2 or 4)")]
    BadScale {
        /// The scale given.
        scale: u32,
    },
    /// A size option is zero or so large an output dimension would not fit TFLite's int32.
    #[error("{what} {value} is out of range (must be between 1 and {max})")]
    BadSize {
        /// Which option (`height`, `width`, `batch`, `expansion`).
        what: &'static str,
        /// The value given.
        value: usize,
        /// The largest value allowed.
        max: usize,
    },
    /// An activation name that is neither `prelu` nor `relu`.
    #[error("unknown activation '{name}' (use prelu or relu)")]
    UnknownActivation {
        /// The name given.
        name: String,
    },
    /// The IR refused an op the builder made: a bug in this crate, not bad input.
    #[error("internal error while building {model}: {source}")]
    Ir {
        /// The model being built.
        model: String,
        /// The IR's complaint.
        source: npuc_ir::IrError,
    },
}

/// The five published SESR sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SesrVariant {
    /// f = 16, m = 3.
    M3,
    /// f = 16, m = 5.
    M5,
    /// f = 16, m = 7.
    M7,
    /// f = 16, m = 11.
    M11,
    /// f = 32, m = 11.
    Xl,
}

impl SesrVariant {
    /// Every variant, smallest first.
    pub const ALL: [SesrVariant; 5] =
        [SesrVariant::M3, SesrVariant::M5, SesrVariant::M7, SesrVariant::M11, SesrVariant::Xl];

    /// The zoo name, e.g. `sesr-m5`.
    pub fn name(self) -> &'static str {
        match self {
            SesrVariant::M3 => "sesr-m3",
            SesrVariant::M5 => "sesr-m5",
            SesrVariant::M7 => "sesr-m7",
            SesrVariant::M11 => "sesr-m11",
            SesrVariant::Xl => "sesr-xl",
        }
    }

    /// The variant a zoo name denotes (`sesr-m5`, case-insensitive; `_` works for `-`).
    pub fn from_name(name: &str) -> Option<SesrVariant> {
        let norm = name.trim().to_ascii_lowercase().replace('_', "-");
        SesrVariant::ALL.into_iter().find(|v| v.name() == norm)
    }

    /// Feature channels `f` between blocks.
    pub fn features(self) -> usize {
        match self {
            SesrVariant::Xl => 32,
            _ => 16,
        }
    }

    /// Number of body blocks `m`.
    pub fn body_blocks(self) -> usize {
        match self {
            SesrVariant::M3 => 3,
            SesrVariant::M5 => 5,
            SesrVariant::M7 => 7,
            SesrVariant::M11 | SesrVariant::Xl => 11,
        }
    }

    /// Expansion width `p` inside linear blocks: the public code's defaults (256 for M5,
    /// 64 for M11 and XL), with 256 for M3 and M7.
    pub fn default_expansion(self) -> usize {
        match self {
            SesrVariant::M3 | SesrVariant::M5 | SesrVariant::M7 => 256,
            SesrVariant::M11 | SesrVariant::Xl => 64,
        }
    }
}

impl fmt::Display for SesrVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The nonlinearity after each body block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SesrActivation {
    /// Per-channel PReLU (the float model).
    #[default]
    Prelu,
    /// ReLU (the int8-deployment variant).
    Relu,
}

impl SesrActivation {
    /// The option spelling (`prelu`, `relu`).
    pub fn name(self) -> &'static str {
        match self {
            SesrActivation::Prelu => "prelu",
            SesrActivation::Relu => "relu",
        }
    }

    /// Parses `prelu` or `relu` (case-insensitive).
    pub fn from_name(name: &str) -> Result<SesrActivation, ZooError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "prelu" => Ok(SesrActivation::Prelu),
            "relu" => Ok(SesrActivation::Relu),
            _ => Err(ZooError::UnknownActivation { name: name.to_string() }),
        }
    }
}

/// Everything that determines a built SESR graph; equal configs build identical graphs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SesrConfig {
    /// Which network.
    pub variant: SesrVariant,
    /// Upsampling factor: 2 or 4.
    pub scale: u32,
    /// Low-resolution input height.
    pub height: usize,
    /// Low-resolution input width.
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Seed of the weights.
    pub seed: u64,
    /// Expansion width `p`; `None` takes [`SesrVariant::default_expansion`].
    pub expansion: Option<usize>,
    /// Nonlinearity after each body block.
    pub activation: SesrActivation,
}

impl SesrConfig {
    /// A config with batch 1, seed 0, the default expansion and PReLU.
    pub fn new(variant: SesrVariant, scale: u32, height: usize, width: usize) -> Self {
        SesrConfig {
            variant,
            scale,
            height,
            width,
            batch: 1,
            seed: 0,
            expansion: None,
            activation: SesrActivation::Prelu,
        }
    }

    /// The expansion width `p` in effect.
    pub fn expansion(&self) -> usize {
        self.expansion.unwrap_or_else(|| self.variant.default_expansion())
    }

    /// A one-line description, e.g. `sesr-m5 x2 1x64x64x1 p=256 prelu seed=0`.
    pub fn describe(&self) -> String {
        format!(
            "{} x{} {}x{}x{}x1 p={} {} seed={} (training-time expanded form, seeded weights)",
            self.variant,
            self.scale,
            self.batch,
            self.height,
            self.width,
            self.expansion(),
            self.activation.name(),
            self.seed
        )
    }

    /// Checks every option, so building cannot fail on user input.
    pub fn validate(&self) -> Result<(), ZooError> {
        if self.scale != 2 && self.scale != 4 {
            return Err(ZooError::BadScale { scale: self.scale });
        }
        // Every dimension, including the upscaled output, is an int32 in TFLite.
        let max_dim = i32::MAX as usize / self.scale as usize;
        for (what, value, max) in [
            ("height", self.height, max_dim),
            ("width", self.width, max_dim),
            ("batch", self.batch, i32::MAX as usize),
            ("expansion", self.expansion(), 1 << 16),
        ] {
            if value == 0 || value > max {
                return Err(ZooError::BadSize { what, value, max });
            }
        }
        Ok(())
    }
}

/// One line per model for listings: name and what it is.
pub fn list() -> Vec<(&'static str, String)> {
    SesrVariant::ALL
        .into_iter()
        .map(|v| {
            (
                v.name(),
                format!(
                    "SESR f={} m={} p={} (expanded linear blocks), scale 2 or 4, any HxW",
                    v.features(),
                    v.body_blocks(),
                    v.default_expansion()
                ),
            )
        })
        .collect()
}

/// Builds the SESR graph (`main`) for `config`: input `input` (N×H×W×1 f32), output
/// `output` (N×sH×sW×1 f32).
pub fn sesr(config: &SesrConfig) -> Result<Graph, ZooError> {
    config.validate()?;
    let mut net = Net::new("main", config.seed);
    build_sesr(&mut net, config).map_err(|source| ZooError::Ir { model: config.variant.name().to_string(), source })?;
    Ok(net.g)
}

/// [`sesr`] wrapped in a module with a `serving_default` signature (`input` → `output`)
/// and a description naming the config.
pub fn sesr_module(config: &SesrConfig) -> Result<Module, ZooError> {
    let g = sesr(config)?;
    let (input, output) = (g.inputs[0], g.outputs[0]);
    let mut m = Module::from_graph(g);
    m.signatures.push(Signature {
        key: "serving_default".to_string(),
        graph: 0,
        inputs: vec![("input".to_string(), input)],
        outputs: vec![("output".to_string(), output)],
    });
    m.description = format!("npuc zoo {}", config.describe());
    Ok(m)
}

/// Total variance gain of the body blocks' residual branches, split evenly over the `m`
/// blocks. Small branches keep `x + branch(x)` close to `x`, so the mean square grows by at
/// most `(1 + 0.9/m)^m < e^0.9` over the body before the activations take some away: the
/// RMS between blocks stays within 0.3–0.7 for M11 and XL, PReLU or ReLU (measured; the
/// `activations_stay_order_one_in_the_deepest_variants` test guards it).
const BODY_BRANCH_GAIN: f32 = 0.9;

/// The SESR graph, in the layer order (and so the weight draw order) of the public code.
fn build_sesr(net: &mut Net, c: &SesrConfig) -> Result<(), npuc_ir::IrError> {
    let (f, p, s2) = (c.variant.features(), c.expansion(), (c.scale * c.scale) as usize);
    let x = net.input("input", vec![c.batch, c.height, c.width, 1]);
    let offset = net.scalar("input_shift/offset", 0.5);
    let sub = Op::Sub { activation: Activation::None, pot_scale_int16: true };
    let shifted = net.op("input_shift", sub, vec![x, offset])?;

    // Input block: 5×5 into p, 1×1 back to f; He gain so F0 has unit-ish scale.
    let f0 = linear_block(net, "input_block", shifted, 5, p, f, 2.0, 1.0)?;

    let mut feat = f0;
    for i in 0..c.variant.body_blocks() {
        let name = format!("body{i}");
        let gain = BODY_BRANCH_GAIN / c.variant.body_blocks() as f32;
        let branch = linear_block(net, &name, feat, 3, p, f, 2.0, gain)?;
        let sum = net.add(&format!("{name}/residual"), branch, feat)?;
        feat = match c.activation {
            SesrActivation::Prelu => {
                let alpha: Vec<f32> = (0..f).map(|_| net.rng.random_range(0.05f32..0.45)).collect();
                let alpha = net.constant(&format!("{name}/prelu/alpha"), vec![1, 1, f], &alpha);
                net.op(&format!("{name}/prelu"), Op::Prelu, vec![sum, alpha])?
            }
            SesrActivation::Relu => net.op(&format!("{name}/relu"), Op::Relu, vec![sum])?,
        };
    }
    let long = net.add("long_residual", feat, f0)?;

    // Output block: small gain so `x + residual` mostly stays inside [0, 1].
    let out = linear_block(net, "output_block", long, 5, p, s2, 1.0, 0.1)?;
    let mut y = net.add("global_residual", out, x)?;

    // ×4 applies depth_to_space(2) twice, as the public code does.
    let steps = if c.scale == 4 { 2 } else { 1 };
    for step in 0..steps {
        let name = if steps == 1 { "depth_to_space".to_string() } else { format!("depth_to_space{}", step + 1) };
        y = net.op(&name, Op::DepthToSpace { block_size: 2 }, vec![y])?;
    }
    let one = net.scalar("clip/one", 1.0);
    let zero = net.scalar("clip/zero", 0.0);
    let min = net.op("clip/minimum", Op::Minimum, vec![y, one])?;
    let out = net.op("output", Op::Maximum, vec![min, zero])?;
    net.g.outputs.push(out);
    Ok(())
}

/// A linear block: conv k×k into `p`, then conv 1×1 into `cout`, no activation between.
/// `gain1` and `gain2` scale the two weight variances (see [`Net::conv`]).
#[allow(clippy::too_many_arguments)]
fn linear_block(
    net: &mut Net,
    name: &str,
    x: ValueId,
    k: usize,
    p: usize,
    cout: usize,
    gain1: f32,
    gain2: f32,
) -> Result<ValueId, npuc_ir::IrError> {
    let wide = net.conv(&format!("{name}/conv_kxk"), x, [k, k], p, 1, Activation::None, gain1)?;
    net.conv(&format!("{name}/conv_1x1"), wide, [1, 1], cout, 1, Activation::None, gain2)
}
