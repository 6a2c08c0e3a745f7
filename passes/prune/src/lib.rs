//! Weight pruning for flash-constrained NPUs (papers.md §2: the NPU decodes compressed
//! weight streams, so zeros shrink the stored model).
//!
//! One pass, `prune`, in three structures: unstructured magnitude pruning (per layer, or
//! one global threshold across layers), N:M pruning along the input-channel (innermost)
//! axis of conv, transpose-conv and fully-connected weights, and output-channel pruning of
//! conv/FC layers with the shape change propagated to every reader (see [`channel`]).
//! Per-layer settings come from a compression config (`npuc_pass::compression`).
//!
//! Exact rules: unstructured zeroes `round(sparsity × count)` weights of smallest
//! magnitude per layer (ties: lower index; weights already zero count). N:M keeps the N
//! largest of every M consecutive weights along the innermost axis (input channels of OHWI
//! conv / `[out, in]` FC weights); a trailing group of `len < M` keeps `⌈N·len/M⌉`;
//! depthwise convs are skipped (their innermost axis is not a reduction). With a config,
//! a layer whose resolved sparsity is 0 or unset is left alone, and N:M applies when the
//! sparsity is above 0 (the sparsity reached is set by N:M). Channel pruning drops
//! `floor(sparsity × C)` channels, keeping at least `min_channels`.
//!
//! Supported weights: f32 constants, and i8/i16 constants with symmetric quantization
//! (zero point 0), pruned by real magnitude `|q|·scale`. Weights that are produced by an op
//! (DEQUANTIZE of f16, DENSIFY of sparse storage) are skipped with a note; run
//! `fold-constants` first to prune them. Biases are never pruned. This crate does not
//! retrain or fine-tune: it only removes weights.

pub mod channel;
pub mod magnitude;
pub mod weights;

use std::collections::HashMap;
use std::path::Path;

use npuc_ir::{Graph, Op, OpId};
use npuc_pass::{
    weighted_layers, CompressionConfig, OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo, PassOptions,
    PassReport, Structure,
};

use crate::weights::{bytes_of, const_operand, element_bytes, magnitudes, set_const, zero_element};

/// Registry entry of the `prune` pass.
pub const PRUNE: PassInfo = PassInfo {
    name: "prune",
    summary: "zero the smallest weights of conv/FC layers (unstructured or N:M) or drop whole output channels with the shape change propagated",
    options: &[
        OptionInfo { name: "sparsity", ty: OptionType::Float, default: "0.5", doc: "fraction of weights (or output channels) to remove, 0 <= sparsity < 1" },
        OptionInfo { name: "structure", ty: OptionType::Str, default: "unstructured", doc: "unstructured, channel, or N:M (e.g. 2:4, along input channels)" },
        OptionInfo { name: "scope", ty: OptionType::Str, default: "layer", doc: "layer (each layer to the target) or global (one magnitude threshold across layers; unstructured only)" },
        OptionInfo { name: "config", ty: OptionType::Str, default: "", doc: "compression config TOML with per-layer sparsity/structure (overrides sparsity and structure)" },
        OptionInfo { name: "min_channels", ty: OptionType::Int, default: "1", doc: "output channels channel pruning keeps at least" },
    ],
    build: build_prune,
};

/// Whether each layer meets its own target or all layers share one threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every layer is pruned to the target sparsity.
    Layer,
    /// One magnitude threshold across all prunable layers; the total meets the target.
    Global,
}

fn bad(option: &str, value: impl Into<String>, expected: impl Into<String>) -> PassError {
    PassError::BadOptionValue {
        pass: "prune".into(),
        option: option.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn build_prune(options: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    let sparsity = options.float("sparsity")?;
    if !(0.0..1.0).contains(&sparsity) {
        return Err(bad("sparsity", sparsity.to_string(), "a fraction with 0 <= sparsity < 1"));
    }
    let text = options.string("structure")?;
    let structure = Structure::parse(text).map_err(|m| bad("structure", text, m))?;
    let scope = match options.string("scope")? {
        "layer" => Scope::Layer,
        "global" => Scope::Global,
        other => return Err(bad("scope", other, "layer or global")),
    };
    let path = options.string("config")?;
    let config = if path.is_empty() {
        None
    } else {
        Some(
            CompressionConfig::load(Path::new(path))
                .map_err(|e| bad("config", path, format!("a valid compression config: {e}")))?,
        )
    };
    if scope == Scope::Global && structure != Structure::Unstructured {
        return Err(bad(
            "scope",
            "global",
            format!("layer with structure {structure} (global scope is for unstructured pruning)"),
        ));
    }
    if scope == Scope::Global && config.is_some() {
        return Err(bad("scope", "global", "layer when a config gives per-layer sparsities"));
    }
    let min_channels = options.int("min_channels")?;
    if min_channels < 1 {
        return Err(bad("min_channels", min_channels.to_string(), "an integer >= 1"));
    }
    Ok(Box::new(Prune { sparsity, structure, scope, config, min_channels: min_channels as usize }))
}

/// The `prune` pass; see the crate documentation.
#[derive(Clone, Debug)]
pub struct Prune {
    /// Target fraction of weights (or channels) removed.
    pub sparsity: f64,
    /// How removed weights are laid out.
    pub structure: Structure,
    /// Per-layer or global threshold.
    pub scope: Scope,
    /// Per-layer settings overriding `sparsity` and `structure`.
    pub config: Option<CompressionConfig>,
    /// Output channels channel pruning always keeps.
    pub min_channels: usize,
}

impl Prune {
    /// A pass pruning every layer to `sparsity` with `structure`, per layer.
    pub fn new(sparsity: f64, structure: Structure) -> Self {
        Prune { sparsity, structure, scope: Scope::Layer, config: None, min_channels: 1 }
    }
}

/// A layer's weight operand, with its magnitudes, or why it is skipped.
fn weights_of(g: &Graph, op: OpId) -> Result<(npuc_ir::ValueId, Vec<f64>), String> {
    let w = const_operand(g, op, 1).map_err(|e| format!("weights: {e}"))?;
    element_bytes(&g.value(w).name, g.value(w).ty.dtype).map_err(|e| e.to_string())?;
    let mags = magnitudes(g, w).map_err(|e| e.to_string())?;
    Ok((w, mags))
}

/// Zeroes `indices` of `op`'s weights; returns (zeros after, total, newly zeroed).
fn zero_weights(g: &mut Graph, op: OpId, indices: &[usize]) -> Result<(usize, usize, usize), String> {
    let w = const_operand(g, op, 1).map_err(|e| e.to_string())?;
    let ty = g.value(w).ty.clone();
    let elem = element_bytes(&g.value(w).name, ty.dtype).map_err(|e| e.to_string())?;
    let mut bytes = bytes_of(g, w).map_err(|e| e.to_string())?;
    let is_zero = |b: &[u8], i: usize| b[i * elem..(i + 1) * elem].iter().all(|&x| x == 0);
    let total = bytes.len() / elem.max(1);
    let mut newly = 0;
    for &i in indices {
        if !is_zero(&bytes, i) {
            newly += 1;
            zero_element(&mut bytes, elem, i);
        }
    }
    let zeros = (0..total).filter(|&i| is_zero(&bytes, i)).count();
    if newly > 0 {
        set_const(g, op, 1, bytes, ty);
    }
    Ok((zeros, total, newly))
}

fn percent(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

impl Pass for Prune {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
        let report = self.prune(graph, cx.graph_index)?;
        // The driver prints diagnostics, not report notes: the per-layer lines go to both.
        for n in &report.notes {
            cx.note(n.clone());
        }
        Ok(report)
    }
}

impl Prune {
    /// Prunes one graph (`index` within its module, for messages) and reports per layer.
    pub fn prune(&self, graph: &mut Graph, index: usize) -> Result<PassReport, PassError> {
        let layers = weighted_layers(graph);
        let names: Vec<String> = layers.iter().map(|(_, n)| n.clone()).collect();
        if let Some(config) = &self.config {
            config
                .check_layers(&names)
                .map_err(|e| bad("config", &config.source_name, format!("rules that match layers: {e}")))?;
        }
        // (op, name, sparsity, structure) of every layer to prune.
        let mut plan: Vec<(OpId, String, f64, Structure)> = Vec::new();
        for (op, name) in &layers {
            let (s, st) = match &self.config {
                Some(c) => {
                    let spec = c.resolve(name);
                    (spec.sparsity.unwrap_or(0.0), spec.structure.unwrap_or(self.structure))
                }
                None => (self.sparsity, self.structure),
            };
            if s > 0.0 {
                plan.push((*op, name.clone(), s, st));
            }
        }
        let mut report = PassReport::default();

        // Channels first: cutting a reader's input channels after N:M pruning would break
        // its groups.
        let channel_layers: HashMap<OpId, f64> =
            plan.iter().filter(|p| p.3 == Structure::Channel).map(|p| (p.0, p.2)).collect();
        if !channel_layers.is_empty() {
            let order: Vec<OpId> = plan.iter().map(|p| p.0).collect();
            let (outcomes, notes) = channel::prune_channels(graph, &order, &channel_layers, self.min_channels);
            for o in outcomes {
                let who = if o.layers.len() == 1 {
                    format!("layer '{}'", o.layers[0])
                } else {
                    format!(
                        "layers {} (channels shared through residual adds)",
                        o.layers.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                    )
                };
                report.notes.push(format!(
                    "{who}: channel, dropped {}/{} output channels (sparsity {:.2}%), {} parameters removed",
                    o.dropped,
                    o.channels,
                    percent(o.dropped, o.channels),
                    o.params_removed
                ));
            }
            report.notes.extend(notes);
        }

        let magnitude: Vec<&(OpId, String, f64, Structure)> =
            plan.iter().filter(|p| p.3 != Structure::Channel).collect();
        if self.scope == Scope::Global {
            let mut ops = Vec::new();
            let mut all = Vec::new();
            for (op, name, _, _) in &magnitude {
                match weights_of(graph, *op) {
                    Ok((_, m)) => {
                        ops.push((*op, name.clone()));
                        all.push(m);
                    }
                    Err(reason) => report.notes.push(format!("layer '{name}': skipped: {reason}")),
                }
            }
            let chosen = magnitude::global(&all, self.sparsity);
            let (mut zeros_sum, mut total_sum) = (0, 0);
            for ((op, name), idx) in ops.iter().zip(chosen) {
                let (zeros, total, newly) = zero_weights(graph, *op, &idx).map_err(|m| failed(graph, index, m))?;
                zeros_sum += zeros;
                total_sum += total;
                report.notes.push(format!(
                    "layer '{name}': unstructured (global), {zeros}/{total} weights zero ({:.2}%), {newly} parameters removed",
                    percent(zeros, total)
                ));
            }
            report.notes.push(format!(
                "global: {zeros_sum}/{total_sum} weights zero ({:.2}%) across {} layers",
                percent(zeros_sum, total_sum),
                ops.len()
            ));
            return Ok(report);
        }
        for (op, name, s, st) in magnitude {
            let (_, mags) = match weights_of(graph, *op) {
                Ok(x) => x,
                Err(reason) => {
                    report.notes.push(format!("layer '{name}': skipped: {reason}"));
                    continue;
                }
            };
            let indices = match *st {
                Structure::NOfM { n, m } => {
                    if matches!(graph.op(*op).op, Op::DepthwiseConv2d(_)) {
                        // Depthwise weights have no input-channel reduction axis to group.
                        report
                            .notes
                            .push(format!("layer '{name}': skipped: {st} pruning does not apply to depthwise convs"));
                        continue;
                    }
                    let inner = graph
                        .value(const_operand(graph, *op, 1).map_err(|e| failed(graph, index, e.to_string()))?)
                        .ty
                        .shape
                        .last()
                        .copied()
                        .unwrap_or(1);
                    magnitude::n_of_m(&mags, inner, n, m)
                }
                _ => magnitude::smallest(&mags, magnitude::target_zeros(*s, mags.len())),
            };
            let (zeros, total, newly) = zero_weights(graph, *op, &indices).map_err(|m| failed(graph, index, m))?;
            report.notes.push(format!(
                "layer '{name}': {st}, {zeros}/{total} weights zero ({:.2}%), {newly} parameters removed",
                percent(zeros, total)
            ));
        }
        Ok(report)
    }
}

fn failed(g: &Graph, graph: usize, message: String) -> PassError {
    PassError::Failed { pass: "prune".into(), graph, graph_name: g.name.clone(), message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_graph, verify_graph, ValueId};

    fn f32s(g: &Graph, v: ValueId) -> Vec<f32> {
        let b = g.value(v).data.as_ref().unwrap().bytes().unwrap();
        b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    fn weights_named(g: &Graph, layer: &str) -> Vec<f32> {
        let op = g.op_ids().find(|&o| g.value(g.op(o).outputs[0]).name == layer).unwrap();
        f32s(g, g.op(op).input(1).unwrap())
    }

    const TWO_FC: &str = r#"
graph @two(%x: tensor<1x4xf32> {name = "x"}) {
  %w1 = const dense<[0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0]> : tensor<2x4xf32> {name = "a/w"}
  %w2 = const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<1x4xf32> {name = "b/w"}
  %a = fully_connected(%x, %w1) : tensor<1x2xf32> {name = "a"}
  %b = fully_connected(%x, %w2) : tensor<1x1xf32> {name = "b"}
  return %a, %b
}
"#;

    #[test]
    fn global_scope_uses_one_threshold() {
        let mut g = parse_graph(TWO_FC).unwrap();
        let mut p = Prune::new(0.5, Structure::Unstructured);
        p.scope = Scope::Global;
        let r = p.prune(&mut g, 0).unwrap();
        // 12 weights, 6 smallest: a's 0.1..0.4 and b's 1.0, 2.0.
        assert_eq!(weights_named(&g, "a"), vec![0.0, 0.0, 0.0, 0.0, 5.0, 6.0, 7.0, 8.0]);
        assert_eq!(weights_named(&g, "b"), vec![0.0, 0.0, 3.0, 4.0]);
        assert!(r.notes.last().unwrap().starts_with("global: 6/12 weights zero (50.00%)"), "{:?}", r.notes);
    }

    #[test]
    fn shared_weights_are_copied_not_changed_for_the_other_reader() {
        let text = r#"
graph @shared(%x: tensor<1x2xf32> {name = "x"}) {
  %w = const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<2x2xf32> {name = "w"}
  %a = fully_connected(%x, %w) : tensor<1x2xf32> {name = "a"}
  %b = fully_connected(%x, %w) : tensor<1x2xf32> {name = "b"}
  return %a, %b
}
"#;
        let mut g = parse_graph(text).unwrap();
        let mut p = Prune::new(0.5, Structure::Unstructured);
        p.config = Some(CompressionConfig::parse("[[layer]]\nmatch = \"a\"\nsparsity = 0.5\n", "c.toml").unwrap());
        p.prune(&mut g, 0).unwrap();
        verify_graph(&g).unwrap();
        assert_eq!(weights_named(&g, "a"), vec![0.0, 0.0, 3.0, 4.0]);
        assert_eq!(weights_named(&g, "b"), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn channel_pruning_keeps_min_channels_and_shifts_through_concatenation() {
        let text = r#"
graph @c(%x: tensor<1x1x1x1xf32> {name = "x"}) {
  %w1 = const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4x1x1x1xf32> {name = "w1"}
  %w2 = const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<1x1x1x4xf32> {name = "w2"}
  %w3 = const dense<[4.0, 3.0, 2.0, 1.0]> : tensor<4x1x1x1xf32> {name = "w3"}
  %w4 = const dense<[1.0, 2.0, 3.0, 4.0, 5.0]> : tensor<1x1x1x5xf32> {name = "w4"}
  %a = conv_2d(%x, %w1) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x4xf32> {name = "a"}
  %b = conv_2d(%a, %w2) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x1xf32> {name = "b"}
  %c = conv_2d(%x, %w3) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x4xf32> {name = "c"}
  %k = concatenation(%x, %c) {axis = 3} : tensor<1x1x1x5xf32> {name = "cat"}
  %d = conv_2d(%k, %w4) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x1xf32> {name = "d"}
  return %b, %d
}
"#;
        let mut g = parse_graph(text).unwrap();
        let mut p = Prune::new(0.9, Structure::Channel);
        p.min_channels = 2;
        let r = p.prune(&mut g, 0).unwrap();
        verify_graph(&g).unwrap();
        assert_eq!(weights_named(&g, "a"), vec![3.0, 4.0]);
        assert_eq!(weights_named(&g, "b"), vec![3.0, 4.0]);
        // c keeps its channels 0 and 1; in the concatenation they sit behind x's one channel.
        assert_eq!(weights_named(&g, "c"), vec![4.0, 3.0]);
        assert_eq!(weights_named(&g, "d"), vec![1.0, 2.0, 3.0]);
        assert!(r.notes.iter().any(|n| n == "layer 'a': channel, dropped 2/4 output channels (sparsity 50.00%), 4 parameters removed"), "{:?}", r.notes);
        assert!(
            r.notes
                .iter()
                .any(|n| n == "layer 'c': channel, dropped 2/4 output channels (sparsity 50.00%), 4 parameters removed"),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn weights_that_are_not_constants_are_skipped_with_a_note() {
        let text = r#"
graph @dq(%x: tensor<1x2xf32> {name = "x"}) {
  %w0 = const dense<[1.0, 2.0, 3.0, 4.0]> : tensor<2x2xf32> {name = "w0"}
  %w = relu(%w0) : tensor<2x2xf32> {name = "w"}
  %a = fully_connected(%x, %w) : tensor<1x2xf32> {name = "a"}
  return %a
}
"#;
        let mut g = parse_graph(text).unwrap();
        let r = Prune::new(0.5, Structure::Unstructured).prune(&mut g, 0).unwrap();
        assert_eq!(r.notes, vec!["layer 'a': skipped: weights: operand 1 is not a constant".to_string()]);
    }
}
