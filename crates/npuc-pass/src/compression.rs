//! Per-layer compression configuration: weight bits and sparsity by layer name or glob.
//!
//! This is the interface between a compression search (UDC-style, papers.md §2) and the
//! `prune` and `quantize` passes, which both read it; `docs/compression.md` documents the
//! file. A *layer* is an op with weights (conv, depthwise conv, transpose conv, fully
//! connected), named by its result tensor, as `npuc inspect --tensors` shows it.
//!
//! ```toml
//! version = 1
//! [default]
//! bits = 8
//! [[layer]]
//! match = "body*/conv*"
//! bits = 4
//! sparsity = 0.5
//! structure = "2:4"
//! ```
//!
//! Rules apply in file order on top of `[default]`; a later rule overrides the fields it
//! sets. Every rule must match at least one layer of the model, so a typo is an error
//! rather than a silently uncompressed layer.

use std::fmt;
use std::path::Path;

use globset::{Glob, GlobMatcher};
use npuc_ir::{Graph, Op, OpId};
use serde::Deserialize;
use thiserror::Error;

/// Weight bit widths the passes support (stored as int8 in TFLite; 4 and 2 use the value
/// ranges ±7 and ±1).
pub const SUPPORTED_BITS: [u32; 3] = [8, 4, 2];

/// Why a compression config was rejected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{source_name}: cannot read: {message}")]
    Io {
        /// The file.
        source_name: String,
        /// The system's message.
        message: String,
    },
    /// The text is not valid TOML or has unknown or mistyped keys.
    #[error("{source_name}: {message}")]
    Syntax {
        /// The file.
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("{source_name}: {place}: {message}")]
    BadValue {
        /// The file.
        source_name: String,
        /// Where: `default.bits`, `layer[2].sparsity`, …
        place: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A rule matches no layer of the model.
    #[error("{source_name}: layer[{index}]: pattern '{pattern}' matches no layer (the model's {count} layers include {examples})")]
    Unmatched {
        /// The file.
        source_name: String,
        /// Rule index (0-based, file order).
        index: usize,
        /// The rule's pattern.
        pattern: String,
        /// How many layers the model has.
        count: usize,
        /// A few layer names, for orientation.
        examples: String,
    },
}

/// How pruned weights are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// Any weights (smallest magnitudes first).
    Unstructured,
    /// At most `n` non-zero weights in every group of `m` consecutive input-channel weights
    /// (e.g. 2:4).
    NOfM {
        /// Non-zeros kept per group.
        n: u32,
        /// Group size.
        m: u32,
    },
    /// Whole output channels (smallest norm first), with the shape change propagated.
    Channel,
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Structure::Unstructured => f.write_str("unstructured"),
            Structure::NOfM { n, m } => write!(f, "{n}:{m}"),
            Structure::Channel => f.write_str("channel"),
        }
    }
}

impl Structure {
    /// Parses `unstructured`, `channel` or `N:M` (1 ≤ N < M ≤ 64).
    pub fn parse(text: &str) -> Result<Structure, String> {
        match text {
            "unstructured" => return Ok(Structure::Unstructured),
            "channel" => return Ok(Structure::Channel),
            _ => {}
        }
        let bad = || format!("'{text}' is not a structure (expected unstructured, channel or N:M such as 2:4)");
        let (n, m) = text.split_once(':').ok_or_else(bad)?;
        let (n, m): (u32, u32) = (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
        if n == 0 || n >= m || m > 64 {
            return Err(format!("'{text}': N:M needs 1 <= N < M <= 64"));
        }
        Ok(Structure::NOfM { n, m })
    }
}

/// Compression settings of one layer; `None` fields are left to the pass's own options.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerSpec {
    /// Weight bits (8, 4 or 2).
    pub bits: Option<u32>,
    /// Fraction of weights set to zero, in `[0, 1)`.
    pub sparsity: Option<f64>,
    /// Layout of the pruned weights.
    pub structure: Option<Structure>,
}

impl LayerSpec {
    /// This spec with the fields `over` sets replaced.
    pub fn overlaid(self, over: LayerSpec) -> LayerSpec {
        LayerSpec {
            bits: over.bits.or(self.bits),
            sparsity: over.sparsity.or(self.sparsity),
            structure: over.structure.or(self.structure),
        }
    }
}

/// One `[[layer]]` rule.
#[derive(Clone, Debug)]
pub struct LayerRule {
    /// The glob as written.
    pub pattern: String,
    matcher: GlobMatcher,
    /// What it sets.
    pub spec: LayerSpec,
}

/// A parsed, validated compression config.
#[derive(Clone, Debug)]
pub struct CompressionConfig {
    /// Where it came from (file path or a label), for messages.
    pub source_name: String,
    /// Settings for layers no rule matches (and the base the rules overlay).
    pub default: LayerSpec,
    /// Rules in file order.
    pub rules: Vec<LayerRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    bits: Option<i64>,
    sparsity: Option<f64>,
    structure: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    pattern: String,
    bits: Option<i64>,
    sparsity: Option<f64>,
    structure: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: Option<i64>,
    default: Option<RawSpec>,
    #[serde(default)]
    layer: Vec<RawRule>,
}

impl CompressionConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { source_name: source_name.clone(), message: e.to_string() })?;
        Self::parse(&text, &source_name)
    }

    /// Parses and validates config text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            source_name: source_name.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let bad =
            |place: String, message: String| ConfigError::BadValue { source_name: source_name.into(), place, message };
        if let Some(v) = raw.version {
            if v != 1 {
                return Err(bad("version".into(), format!("version {v} is not supported (this npuc reads version 1)")));
            }
        }
        let spec = |place: &str, bits: Option<i64>, sparsity: Option<f64>, structure: Option<String>| {
            let bits = match bits {
                None => None,
                Some(b) if b >= 0 && SUPPORTED_BITS.contains(&(b as u32)) => Some(b as u32),
                Some(b) => {
                    return Err(bad(format!("{place}.bits"), format!("{b} bits is not supported (8, 4 or 2)")));
                }
            };
            if let Some(s) = sparsity {
                if !(0.0..1.0).contains(&s) {
                    return Err(bad(format!("{place}.sparsity"), format!("{s} is not a sparsity (0 <= sparsity < 1)")));
                }
            }
            let structure = structure
                .map(|s| Structure::parse(&s))
                .transpose()
                .map_err(|m| bad(format!("{place}.structure"), m))?;
            Ok(LayerSpec { bits, sparsity, structure })
        };
        let default = match raw.default {
            Some(d) => spec("default", d.bits, d.sparsity, d.structure)?,
            None => LayerSpec::default(),
        };
        let mut rules = Vec::with_capacity(raw.layer.len());
        for (i, r) in raw.layer.into_iter().enumerate() {
            let place = format!("layer[{i}]");
            // `*` may cross `/`: layer names are paths like `body3/conv_kxk`, and
            // `body*` should reach into them.
            let glob = Glob::new(&r.pattern).map_err(|e| bad(format!("{place}.match"), e.kind().to_string()))?;
            let s = spec(&place, r.bits, r.sparsity, r.structure)?;
            rules.push(LayerRule { pattern: r.pattern, matcher: glob.compile_matcher(), spec: s });
        }
        Ok(CompressionConfig { source_name: source_name.into(), default, rules })
    }

    /// The settings for `layer`: the default overlaid with every matching rule in order.
    pub fn resolve(&self, layer: &str) -> LayerSpec {
        self.rules.iter().filter(|r| r.matcher.is_match(layer)).fold(self.default, |acc, r| acc.overlaid(r.spec))
    }

    /// Checks that every rule matches at least one of `layers`.
    pub fn check_layers(&self, layers: &[String]) -> Result<(), ConfigError> {
        for (index, r) in self.rules.iter().enumerate() {
            if !layers.iter().any(|l| r.matcher.is_match(l)) {
                let mut examples: Vec<String> = layers.iter().take(4).map(|l| format!("'{l}'")).collect();
                if layers.len() > 4 {
                    examples.push("…".into());
                }
                return Err(ConfigError::Unmatched {
                    source_name: self.source_name.clone(),
                    index,
                    pattern: r.pattern.clone(),
                    count: layers.len(),
                    examples: if examples.is_empty() { "none".into() } else { examples.join(", ") },
                });
            }
        }
        Ok(())
    }
}

/// The layers of a graph (ops with weights), in execution order, with their names (the
/// name of their first result).
pub fn weighted_layers(g: &Graph) -> Vec<(OpId, String)> {
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids().collect());
    order
        .into_iter()
        .filter(|&id| {
            matches!(g.op(id).op, Op::Conv2d(_) | Op::DepthwiseConv2d(_) | Op::TransposeConv(_) | Op::FullyConnected(_))
        })
        .map(|id| (id, g.op(id).outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
version = 1
[default]
bits = 8
[[layer]]
match = "body*"
bits = 4
sparsity = 0.5
[[layer]]
match = "body3/*"
structure = "2:4"
bits = 2
"#;

    #[test]
    fn rules_overlay_in_file_order() {
        let c = CompressionConfig::parse(EXAMPLE, "t.toml").unwrap();
        assert_eq!(c.resolve("input_block/conv"), LayerSpec { bits: Some(8), ..Default::default() });
        assert_eq!(c.resolve("body1/conv_kxk"), LayerSpec { bits: Some(4), sparsity: Some(0.5), structure: None });
        assert_eq!(
            c.resolve("body3/conv_kxk"),
            LayerSpec { bits: Some(2), sparsity: Some(0.5), structure: Some(Structure::NOfM { n: 2, m: 4 }) }
        );
        let layers: Vec<String> = ["body3/conv_kxk", "out"].iter().map(|s| s.to_string()).collect();
        c.check_layers(&layers).unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let err = |text: &str| CompressionConfig::parse(text, "c.toml").unwrap_err().to_string();
        assert_eq!(err("[default]\nbits = 3"), "c.toml: default.bits: 3 bits is not supported (8, 4 or 2)");
        assert_eq!(
            err("[[layer]]\nmatch = \"a\"\nsparsity = 1.5"),
            "c.toml: layer[0].sparsity: 1.5 is not a sparsity (0 <= sparsity < 1)"
        );
        assert!(err("[[layer]]\nmatch = \"a\"\nstructure = \"4:2\"").contains("layer[0].structure"));
        assert!(err("[[layer]]\nmatch = \"a[\"").contains("layer[0].match"));
        assert!(err("[default]\nbitz = 8").contains("bitz"), "{}", err("[default]\nbitz = 8"));
        assert!(err("version = 2").contains("version 2 is not supported"));
    }

    #[test]
    fn a_rule_matching_nothing_is_an_error() {
        let c = CompressionConfig::parse("[[layer]]\nmatch = \"bodyy*\"\nbits = 4", "c.toml").unwrap();
        let layers: Vec<String> = ["body0/conv", "body1/conv"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            c.check_layers(&layers).unwrap_err().to_string(),
            "c.toml: layer[0]: pattern 'bodyy*' matches no layer (the model's 2 layers include 'body0/conv', 'body1/conv')"
        );
    }

    #[test]
    fn structures_parse() {
        assert_eq!(Structure::parse("2:4"), Ok(Structure::NOfM { n: 2, m: 4 }));
        assert_eq!(Structure::parse("channel"), Ok(Structure::Channel));
        assert!(Structure::parse("4:4").is_err());
        assert!(Structure::parse("x").is_err());
    }
}
