//! Seeded samplers for the four task search spaces of PerfSAGE's dataset (papers.md §3).
//!
//! A sample is an architecture drawn from a space, built as a float graph with seeded
//! weights, plus a per-layer compression plan (weight bits 8 or 4, sparsity 0–90%), since
//! bitwidth and sparsity change what an NPU spends on weights. Equal `(space, seed)` pairs
//! give identical samples on every machine: the architecture and the weights come from two
//! separate ChaCha8 streams of the seed, so a change to how weights are drawn does not move
//! the architectures.
//!
//! | space | family | varies |
//! |---|---|---|
//! | `classification` | MobileNetV2/V3-style inverted residuals | input 96–224, width 0.35–1.0, depth per stage, expansion 1–6, kernel 3/5/7, squeeze-excite, ReLU6 or hard-swish, classes |
//! | `super-resolution` | SESR (collapsed) or FSRCNN | f, m, expansion/shrink widths, kernels, ×2/×4, inputs 64×64 up to 1080×1920 |
//! | `keyword-spotting` | DS-CNN or MicroNet-style | 49×10 or 98×40 features, first kernel, per-layer widths, depth, strides |
//! | `detection` | SSDLite heads or U-Net | input, backbone, heads at 2–4 scales or 2–4 U-Net levels, skips, resize, concat, two outputs |
//!
//! The samplers draw; they do not judge whether a sample fits a target (the compiler does).

mod classification;
mod detection;
mod keyword;
mod super_resolution;

use std::fmt;

use npuc_ir::{Graph, Module, Signature};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::net::Net;
use crate::ZooError;

/// A task search space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Image classification with inverted residual blocks.
    Classification,
    /// Single-image super resolution.
    SuperResolution,
    /// Keyword spotting on MFCC features.
    KeywordSpotting,
    /// Object detection and segmentation.
    Detection,
}

impl Space {
    /// Every space, in a fixed order.
    pub const ALL: [Space; 4] =
        [Space::Classification, Space::SuperResolution, Space::KeywordSpotting, Space::Detection];

    /// The space's name as options spell it.
    pub fn name(self) -> &'static str {
        match self {
            Space::Classification => "classification",
            Space::SuperResolution => "super-resolution",
            Space::KeywordSpotting => "keyword-spotting",
            Space::Detection => "detection",
        }
    }

    /// Parses a space name (`super_resolution` and the short forms `cls`, `sr`, `kws`,
    /// `det` work too).
    pub fn from_name(name: &str) -> Result<Space, ZooError> {
        let n = name.trim().to_ascii_lowercase().replace('_', "-");
        let short = ["cls", "sr", "kws", "det"];
        Space::ALL.into_iter().zip(short).find(|(s, abbr)| s.name() == n || *abbr == n).map(|(s, _)| s).ok_or_else(
            || ZooError::UnknownSpace { name: name.to_string(), known: Space::ALL.map(Space::name).join(", ") },
        )
    }

    /// The ChaCha stream index of this space's architecture draws (weights use the next one).
    fn stream(self) -> u64 {
        2 * self as u64
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Weight compression drawn for one layer (an op with weights, named by its result).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerCompression {
    /// The layer's result tensor name.
    pub layer: String,
    /// Weight bits: 8 or 4.
    pub bits: u32,
    /// Fraction of weights pruned to zero, a multiple of 0.05 in [0, 0.9].
    pub sparsity: f64,
}

/// One drawn model.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The space it came from.
    pub space: Space,
    /// Its seed.
    pub seed: u64,
    /// The drawn architecture in one line, e.g. `classification mbv3 r=160 w=0.75 …`.
    pub description: String,
    /// The float model (graph `main`, signature `serving_default`).
    pub module: Module,
    /// The per-layer compression plan, in graph order.
    pub compression: Vec<LayerCompression>,
}

impl Sample {
    /// The compression plan as an npuc compression config (docs/compression.md): one
    /// exact-name rule per layer.
    pub fn compression_toml(&self) -> String {
        let mut t = format!("# npuc zoo sample {} --seed {}\nversion = 1\n", self.space, self.seed);
        for l in &self.compression {
            t.push_str(&format!("\n[[layer]]\nmatch = \"{}\"\nbits = {}\n", l.layer, l.bits));
            if l.sparsity > 0.0 {
                t.push_str(&format!("sparsity = {:.2}\n", l.sparsity));
            }
        }
        t
    }
}

/// Draws sample `seed` of `space`.
pub fn sample(space: Space, seed: u64) -> Result<Sample, ZooError> {
    let mut arch = ChaCha8Rng::seed_from_u64(seed);
    arch.set_stream(space.stream());
    let mut weights = ChaCha8Rng::seed_from_u64(seed);
    weights.set_stream(space.stream() + 1);
    let mut net = Net::with_rng("main", weights);
    let description = match space {
        Space::Classification => classification::build(&mut arch, &mut net),
        Space::SuperResolution => super_resolution::build(&mut arch, &mut net),
        Space::KeywordSpotting => keyword::build(&mut arch, &mut net),
        Space::Detection => detection::build(&mut arch, &mut net),
    }
    .map_err(|source| ZooError::Ir { model: format!("{space} sample {seed}"), source })?;
    let compression = draw_compression(&mut arch, &net.g);
    let module = into_module(net.g, &description);
    Ok(Sample { space, seed, description, module, compression })
}

/// Per-layer bits and sparsity. Each sample has its own mix, so the dataset holds dense
/// 8-bit models, fully 4-bit ones and everything between: a share of 4-bit layers in
/// {0, U(0,1), 1} and a probability that a layer is pruned, with sparsity uniform in steps
/// of 0.05 up to 0.9.
fn draw_compression(rng: &mut ChaCha8Rng, g: &Graph) -> Vec<LayerCompression> {
    let four_bit_share = match rng.random_range(0..4) {
        0 => 0.0,
        1 => 1.0,
        _ => rng.random::<f64>(),
    };
    let pruned_share = match rng.random_range(0..3) {
        0 => 0.0,
        _ => rng.random::<f64>(),
    };
    npuc_pass::compression::weighted_layers(g)
        .into_iter()
        .map(|(_, layer)| {
            let bits = if rng.random::<f64>() < four_bit_share { 4 } else { 8 };
            let sparsity =
                if rng.random::<f64>() < pruned_share { f64::from(rng.random_range(1..=18u32)) * 0.05 } else { 0.0 };
            LayerCompression { layer, bits, sparsity }
        })
        .collect()
}

/// Wraps a built graph with a `serving_default` signature over all its inputs and outputs.
fn into_module(g: Graph, description: &str) -> Module {
    let inputs = g.inputs.iter().map(|&v| (g.value(v).name.clone(), v)).collect();
    let outputs = g.outputs.iter().map(|&v| (g.value(v).name.clone(), v)).collect();
    let mut m = Module::from_graph(g);
    m.signatures.push(Signature { key: "serving_default".to_string(), graph: 0, inputs, outputs });
    m.description = format!("npuc zoo sample: {description}");
    m
}

/// `c` rounded to the nearest multiple of 8, at least 8 (MobileNet's `_make_divisible`
/// rule, which also keeps channels aligned to Ethos-U's 8-deep micro-blocks).
fn round8(c: f64) -> usize {
    let r = ((c + 4.0) / 8.0).floor() as usize * 8;
    // As MobileNet does: never round down by more than 10%.
    let r = r.max(8);
    if (r as f64) < 0.9 * c {
        r + 8
    } else {
        r
    }
}

/// One of `items`, uniformly.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests;
