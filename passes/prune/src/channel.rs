//! Output-channel pruning with the shape change propagated to every reader.
//!
//! A *channel space* is the set of tensors that index the same channels in their last
//! dimension: a conv/FC result, the channel-preserving ops after it (activations, pools,
//! pads, resizes, depthwise convs with multiplier 1, per-channel arithmetic, means over
//! other axes) and, through residual ADDs of two such tensors, the other branch with its
//! own conv/FC *sources*. Dropping channel `c` means cutting `c` from every tensor of the
//! space, from every source's weights (axis 0) and bias, from every depthwise conv's
//! weights and bias, from per-channel constants, and from the input-channel axis of every
//! conv/FC that reads the space (the *sinks*). Sources of one space share the choice of
//! channels (by summed L2 norm), so residual adds stay aligned.
//!
//! A concatenation along channels starts a derived space (its result) in which the cut
//! channels are shifted by the operand's offset; other operands keep all their channels.
//!
//! A space is refused as a whole, with the reason, when any of its tensors is a graph
//! input or output (outputs keep their shape), or is read by an op whose meaning depends
//! on the channel count or layout: reshape (e.g. a flatten before FC), concatenation along
//! another axis (or whose result meets a conv in a residual add), softmax, transpose, depth-to-space, transpose conv, opaque ops, a depthwise conv with
//! multiplier ≠ 1, a mean over the channel axis, and so on.

use std::collections::{BTreeSet, HashMap, HashSet};

use npuc_ir::{DType, Graph, Op, OpId, ValueId};

use crate::magnitude::smallest;
use crate::weights::{bytes_of, const_operand, element_bytes, magnitudes, set_const, slice_axis, slice_type};

/// One constant operand to cut along an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cut {
    op: OpId,
    slot: usize,
    axis: usize,
}

/// A channel space found from a layer, ready to cut.
#[derive(Clone, Debug, Default)]
pub struct Space {
    /// Channel count of every tensor in the space.
    pub channels: usize,
    /// The tensors (last dimension indexes the channels).
    pub values: BTreeSet<ValueId>,
    /// Conv/FC layers producing the space, in discovery order.
    pub sources: Vec<OpId>,
    /// Depthwise convs that carry the space through (their channels are cut too).
    pub followers: Vec<OpId>,
    cuts: Vec<Cut>,
    /// Concatenations along channels the space feeds, each with the space of its result
    /// (whose kept channels are this space's, shifted by the operand's offset).
    concats: Vec<(OpId, Space)>,
}

struct Planner<'g> {
    g: &'g Graph,
    space: Space,
    work: Vec<ValueId>,
    done: HashSet<OpId>,
}

fn result_name(g: &Graph, op: OpId) -> String {
    g.op(op).outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default()
}

fn describe(g: &Graph, op: OpId) -> String {
    format!("{} '{}'", g.op(op).op.display_name(), result_name(g, op))
}

impl<'g> Planner<'g> {
    fn join(&mut self, v: ValueId) -> Result<(), String> {
        let val = self.g.value(v);
        if val.ty.shape.last() != Some(&self.space.channels) {
            return Err(format!(
                "tensor '{}' of shape {:?} does not carry the {} channels in its last dimension",
                val.name, val.ty.shape, self.space.channels
            ));
        }
        if self.space.values.insert(v) {
            self.work.push(v);
        }
        Ok(())
    }

    fn cut_const(&mut self, op: OpId, slot: usize, what: &str) -> Result<(), String> {
        let v = const_operand(self.g, op, slot).map_err(|e| format!("{what} of {}: {e}", describe(self.g, op)))?;
        let shape = &self.g.value(v).ty.shape;
        match shape.last() {
            None | Some(1) => Ok(()),
            Some(&d) if d == self.space.channels => {
                element_bytes(&self.g.value(v).name, self.g.value(v).ty.dtype).map_err(|e| e.to_string())?;
                self.space.cuts.push(Cut { op, slot, axis: shape.len() - 1 });
                Ok(())
            }
            Some(_) => Err(format!("{what} of {} does not broadcast per channel ({shape:?})", describe(self.g, op))),
        }
    }

    fn source(&mut self, op: OpId) -> Result<(), String> {
        if !self.done.insert(op) {
            return Ok(());
        }
        let g = self.g;
        let (rank, ok) = match &g.op(op).op {
            Op::Conv2d(_) => (4, true),
            Op::FullyConnected(a) => (2, !a.shuffled_weights),
            _ => (0, false),
        };
        if !ok {
            return Err(format!("{} produces channels but is not a prunable conv/FC layer", describe(g, op)));
        }
        let w = const_operand(g, op, 1).map_err(|e| format!("weights of {}: {e}", describe(g, op)))?;
        let wt = &g.value(w).ty;
        if wt.rank() != rank || wt.shape[0] != self.space.channels {
            return Err(format!("weights of {} have shape {:?}", describe(g, op), wt.shape));
        }
        element_bytes(&g.value(w).name, wt.dtype).map_err(|e| e.to_string())?;
        self.space.cuts.push(Cut { op, slot: 1, axis: 0 });
        if g.op(op).input(2).is_some() {
            self.cut_const(op, 2, "bias")?;
        }
        self.space.sources.push(op);
        Ok(())
    }

    fn sink(&mut self, op: OpId) -> Result<(), String> {
        if !self.done.insert(op) {
            return Ok(());
        }
        let g = self.g;
        let (rank, axis) = match &g.op(op).op {
            Op::Conv2d(_) => (4, 3),
            Op::FullyConnected(a) if !a.shuffled_weights => (2, 1),
            _ => return Err(format!("{} reads the channels and cannot follow", describe(g, op))),
        };
        let w = const_operand(g, op, 1).map_err(|e| format!("weights of {}: {e}", describe(g, op)))?;
        let wt = &g.value(w).ty;
        if wt.rank() != rank || wt.shape[axis] != self.space.channels {
            // A fully-connected layer flattening more than the channels (e.g. HxWxC) would
            // need its columns regrouped; that is refused rather than guessed.
            return Err(format!(
                "{} flattens its input: weights {:?} do not take the channels alone",
                describe(g, op),
                wt.shape
            ));
        }
        element_bytes(&g.value(w).name, wt.dtype).map_err(|e| e.to_string())?;
        self.space.cuts.push(Cut { op, slot: 1, axis });
        Ok(())
    }

    /// A channel-preserving op: its data operands and its result join the space.
    fn follow(&mut self, op: OpId) -> Result<(), String> {
        if !self.done.insert(op) {
            return Ok(());
        }
        let g = self.g;
        let o = g.op(op);
        let data = |i: usize| o.input(i).ok_or_else(|| format!("{} lacks operand {i}", describe(g, op)));
        match &o.op {
            op if op.is_unary_elementwise() => self.join(data(0)?)?,
            Op::Quantize
            | Op::Dequantize
            | Op::AveragePool2d(_)
            | Op::MaxPool2d(_)
            | Op::ResizeBilinear(_)
            | Op::ResizeNearestNeighbor(_) => self.join(data(0)?)?,
            Op::Prelu => {
                self.join(data(0)?)?;
                self.cut_const(op, 1, "alpha")?;
            }
            o if o.is_binary_elementwise() => {
                for slot in 0..2 {
                    let v = data(slot)?;
                    let val = g.value(v);
                    if val.is_constant() {
                        self.cut_const(op, slot, "constant operand")?;
                    } else {
                        match val.ty.shape.last() {
                            None | Some(1) => {}
                            // Same channel axis on both sides: a residual join of two
                            // branches, which must drop the same channels.
                            Some(_) => self.join(v)?,
                        }
                    }
                }
            }
            Op::Pad | Op::PadV2 => {
                let x = data(0)?;
                let rank = g.value(x).ty.rank();
                let pads =
                    read_ints(g, op, 1).ok_or_else(|| format!("paddings of {} are not constant", describe(g, op)))?;
                if pads.len() != 2 * rank || pads[2 * rank - 2] != 0 || pads[2 * rank - 1] != 0 {
                    return Err(format!("{} pads the channel axis", describe(g, op)));
                }
                self.join(x)?;
            }
            Op::Mean { .. } | Op::Sum { .. } => {
                let x = data(0)?;
                let rank = g.value(x).ty.rank() as i64;
                let axes =
                    read_ints(g, op, 1).ok_or_else(|| format!("axes of {} are not constant", describe(g, op)))?;
                if axes.iter().any(|&a| (if a < 0 { a + rank } else { a }) == rank - 1) {
                    return Err(format!("{} reduces over the channels", describe(g, op)));
                }
                self.join(x)?;
            }
            Op::DepthwiseConv2d(a) => {
                if a.depth_multiplier != 1 {
                    return Err(format!("{} has depth multiplier {}", describe(g, op), a.depth_multiplier));
                }
                self.join(data(0)?)?;
                let w = const_operand(g, op, 1).map_err(|e| format!("weights of {}: {e}", describe(g, op)))?;
                let wt = &g.value(w).ty;
                if wt.rank() != 4 || wt.shape[3] != self.space.channels {
                    return Err(format!("weights of {} have shape {:?}", describe(g, op), wt.shape));
                }
                element_bytes(&g.value(w).name, wt.dtype).map_err(|e| e.to_string())?;
                self.space.cuts.push(Cut { op, slot: 1, axis: 3 });
                self.space.followers.push(op);
                if o.input(2).is_some() {
                    self.cut_const(op, 2, "bias")?;
                }
            }
            Op::Concatenation { axis, .. } => {
                let out = *o.outputs.first().ok_or_else(|| format!("{} has no result", describe(g, op)))?;
                let rank = g.value(out).ty.rank() as i64;
                let ax = if *axis < 0 { i64::from(*axis) + rank } else { i64::from(*axis) };
                if ax != rank - 1 || o.inputs.iter().flatten().any(|&v| g.value(v).ty.rank() as i64 != rank) {
                    return Err(format!("{} concatenates along another axis", describe(g, op)));
                }
                let derived = plan_from(g, out, Some(op))?;
                if let Some(&s) = derived.sources.first() {
                    return Err(format!(
                        "the result of {} meets {} in a residual add (not supported)",
                        describe(g, op),
                        describe(g, s)
                    ));
                }
                self.space.concats.push((op, derived));
                return Ok(());
            }
            _ => return Err(format!("{} depends on the channel layout", describe(g, op))),
        }
        for &out in &o.outputs {
            self.join(out)?;
        }
        Ok(())
    }

    fn visit(&mut self, v: ValueId) -> Result<(), String> {
        let g = self.g;
        let val = g.value(v);
        if g.outputs.contains(&v) {
            return Err(format!("its channels reach graph output '{}'", val.name));
        }
        if g.inputs.contains(&v) || val.is_variable {
            return Err(format!("its channels reach graph input or variable '{}'", val.name));
        }
        match g.producer(v) {
            Some(p) => match g.op(p).op {
                Op::Conv2d(_) | Op::FullyConnected(_) => self.source(p)?,
                _ => self.follow(p)?,
            },
            None => return Err(format!("tensor '{}' has no producer", val.name)),
        }
        let uses: Vec<(OpId, usize)> = g.uses(v).collect();
        for (op, slot) in uses {
            match (&g.op(op).op, slot) {
                (Op::Conv2d(_) | Op::FullyConnected(_), 0) => self.sink(op)?,
                (Op::DepthwiseConv2d(_), 0) => self.follow(op)?,
                (Op::Conv2d(_) | Op::FullyConnected(_) | Op::DepthwiseConv2d(_), _) => {
                    return Err(format!("tensor '{}' is read as weights by {}", val.name, describe(g, op)))
                }
                (o, 0 | 1) if o.is_binary_elementwise() => self.follow(op)?,
                (Op::Concatenation { .. }, _) | (_, 0) => self.follow(op)?,
                // A size, axis or padding operand computed from the channels.
                _ => return Err(format!("tensor '{}' is operand {slot} of {}", val.name, describe(g, op))),
            }
        }
        Ok(())
    }
}

/// The integers of constant operand `slot` (i32 or i64), if it is one.
fn read_ints(g: &Graph, op: OpId, slot: usize) -> Option<Vec<i64>> {
    let v = const_operand(g, op, slot).ok()?;
    let b = bytes_of(g, v).ok()?;
    match g.value(v).ty.dtype {
        DType::I32 => {
            Some(b.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
        }
        DType::I64 => Some(b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()),
        _ => None,
    }
}

/// Finds the channel space of the result of conv/FC layer `layer`, or why it cannot be cut.
pub fn plan(g: &Graph, layer: OpId) -> Result<Space, String> {
    if !matches!(g.op(layer).op, Op::Conv2d(_) | Op::FullyConnected(_)) {
        return Err(
            "channel pruning starts at conv and fully-connected layers (depthwise convs follow their producer)".into(),
        );
    }
    let out = *g.op(layer).outputs.first().ok_or("the layer has no result")?;
    plan_from(g, out, None)
}

/// The channel space of `start`; `root` is the concatenation producing it, if the space is
/// derived from another one (then it is taken as given, not followed back).
fn plan_from(g: &Graph, start: ValueId, root: Option<OpId>) -> Result<Space, String> {
    let channels = g.value(start).ty.shape.last().copied().unwrap_or(0);
    let mut p = Planner { g, space: Space { channels, ..Default::default() }, work: Vec::new(), done: HashSet::new() };
    p.done.extend(root);
    p.join(start)?;
    while let Some(v) = p.work.pop() {
        p.visit(v)?;
    }
    // Check every constant now, so `apply` cannot stop halfway through a graph.
    for cut in &p.space.cuts {
        if let Some(v) = g.op(cut.op).input(cut.slot) {
            bytes_of(g, v).map_err(|e| e.to_string())?;
        }
    }
    Ok(p.space)
}

/// Per output channel, the sum over the space's sources of each source's L2 weight norm.
pub fn channel_scores(g: &Graph, space: &Space) -> Result<Vec<f64>, String> {
    let mut scores = vec![0.0; space.channels];
    for &s in &space.sources {
        let w = const_operand(g, s, 1).map_err(|e| e.to_string())?;
        let mags = magnitudes(g, w).map_err(|e| e.to_string())?;
        let per = mags.len() / space.channels.max(1);
        for (c, score) in scores.iter_mut().enumerate() {
            *score += mags[c * per..(c + 1) * per].iter().map(|x| x * x).sum::<f64>().sqrt();
        }
    }
    Ok(scores)
}

/// `space` with the channels it keeps, then every concatenation-derived space with its
/// shifted channels; computed before anything changes shape.
fn with_derived<'s>(g: &Graph, space: &'s Space, keep: Vec<usize>, out: &mut Vec<(&'s Space, Vec<usize>)>) {
    for (cat, derived) in &space.concats {
        let mut shifted = Vec::with_capacity(derived.channels);
        let mut offset = 0;
        for &v in g.op(*cat).inputs.iter().flatten() {
            let c = g.value(v).ty.shape.last().copied().unwrap_or(0);
            if space.values.contains(&v) {
                shifted.extend(keep.iter().map(|k| offset + k));
            } else {
                shifted.extend(offset..offset + c);
            }
            offset += c;
        }
        with_derived(g, derived, shifted, out);
    }
    out.insert(0, (space, keep));
}

/// Cuts every tensor and constant of `space` (and of the spaces its concatenations
/// derive) down to the channels `keep` (ascending); returns the constant elements removed.
pub fn apply(g: &mut Graph, space: &Space, keep: &[usize]) -> Result<u64, String> {
    let mut all = Vec::new();
    with_derived(g, space, keep.to_vec(), &mut all);
    let mut removed = 0;
    for (s, k) in all {
        removed += apply_one(g, s, &k)?;
    }
    Ok(removed)
}

fn apply_one(g: &mut Graph, space: &Space, keep: &[usize]) -> Result<u64, String> {
    let mut removed = 0u64;
    for cut in &space.cuts {
        let Some(v) = g.op(cut.op).input(cut.slot) else { continue };
        let ty = g.value(v).ty.clone();
        let elem = element_bytes(&g.value(v).name, ty.dtype).map_err(|e| e.to_string())?;
        let bytes = bytes_of(g, v).map_err(|e| e.to_string())?;
        let data = slice_axis(&bytes, &ty.shape, elem, cut.axis, keep);
        let new_ty = slice_type(&ty, cut.axis, keep);
        removed += ty.num_elements().unwrap_or(0) - new_ty.num_elements().unwrap_or(0);
        set_const(g, cut.op, cut.slot, data, new_ty);
    }
    for &v in &space.values {
        let rank = g.value(v).ty.rank();
        let ty = slice_type(&g.value(v).ty, rank - 1, keep);
        let val = g.value_mut(v);
        val.ty = ty;
        if let Some(sig) = &mut val.shape_signature {
            if let Some(last) = sig.last_mut() {
                *last = keep.len() as i64;
            }
        }
    }
    Ok(removed)
}

/// What channel pruning did to one space.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelOutcome {
    /// Names of the source layers.
    pub layers: Vec<String>,
    /// Channels before.
    pub channels: usize,
    /// Channels dropped.
    pub dropped: usize,
    /// Constant elements removed (weights, biases, readers' weights, per-channel constants).
    pub params_removed: u64,
}

/// Channel-prunes `layers` (`op → sparsity`, in `order`), keeping at least `min_channels`
/// per space. Returns what was cut and one note per layer left alone.
pub fn prune_channels(
    g: &mut Graph,
    order: &[OpId],
    layers: &HashMap<OpId, f64>,
    min_channels: usize,
) -> (Vec<ChannelOutcome>, Vec<String>) {
    let mut done: HashSet<OpId> = HashSet::new();
    let mut outcomes = Vec::new();
    let mut notes = Vec::new();
    let mut later = Vec::new();
    let mut cut_followers: HashSet<OpId> = HashSet::new();
    for &op in order {
        if done.contains(&op) || !layers.contains_key(&op) {
            continue;
        }
        let name = result_name(g, op);
        if !matches!(g.op(op).op, Op::Conv2d(_) | Op::FullyConnected(_)) {
            // Depthwise convs are cut with the conv feeding them; note only the others
            // (and depthwise convs left uncut), after all spaces are known.
            later.push(op);
            continue;
        }
        let space = match plan(g, op) {
            Ok(s) => s,
            Err(reason) => {
                notes.push(format!("layer '{name}': not channel-pruned: {reason}"));
                continue;
            }
        };
        done.extend(space.sources.iter().copied());
        let followers = space.followers.clone();
        let names: Vec<String> = space.sources.iter().map(|&s| result_name(g, s)).collect();
        if let Some(&other) = space.sources.iter().find(|s| !layers.contains_key(s)) {
            notes.push(format!(
                "layer '{name}': not channel-pruned: shares its channels (through a residual add) with layer '{}', which is not set to channel pruning",
                result_name(g, other)
            ));
            continue;
        }
        let sparsity = space.sources.iter().map(|s| layers[s]).fold(f64::INFINITY, f64::min);
        let c = space.channels;
        let keep_min = min_channels.clamp(1, c.max(1));
        let drop = ((sparsity * c as f64).floor() as usize).min(c.saturating_sub(keep_min));
        if drop == 0 {
            notes.push(format!("layer '{name}': channel pruning of {c} channels at sparsity {sparsity} drops none"));
            continue;
        }
        let scores = match channel_scores(g, &space) {
            Ok(s) => s,
            Err(reason) => {
                notes.push(format!("layer '{name}': not channel-pruned: {reason}"));
                continue;
            }
        };
        let dropped: BTreeSet<usize> = smallest(&scores, drop).into_iter().collect();
        let keep: Vec<usize> = (0..c).filter(|i| !dropped.contains(i)).collect();
        match apply(g, &space, &keep) {
            Ok(params_removed) => {
                cut_followers.extend(followers);
                outcomes.push(ChannelOutcome { layers: names, channels: c, dropped: drop, params_removed });
            }
            Err(reason) => notes.push(format!("layer '{name}': channel pruning failed midway: {reason}")),
        }
    }
    for op in later {
        if !cut_followers.contains(&op) {
            let reason = match g.op(op).op {
                Op::DepthwiseConv2d(_) => {
                    "a depthwise conv is cut only together with the conv feeding it, which was not cut"
                }
                _ => "channel pruning starts at conv and fully-connected layers",
            };
            notes.push(format!("layer '{}': not channel-pruned: {reason}", result_name(g, op)));
        }
    }
    (outcomes, notes)
}
