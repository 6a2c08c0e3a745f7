//! The engine: finds linear regions in a graph, saturates each region's e-graph with the
//! rules, extracts the cheapest equivalent term and writes it back.
//!
//! A *region* is a tree of float linear ops (conv, depthwise conv with multiplier 1, fully
//! connected, same-shape add, per-channel mul/add/sub by a constant, zero pad) whose inner
//! results each have exactly one reader, inside the region. Everything else — nonlinear
//! ops, fused activations other than on the region's last op, quantized tensors, values
//! read twice or returned by the graph — is a boundary: regions never cross it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use egg::{CostFunction, Extractor, Id, Language, RecExpr, Runner};
use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph, Op, OpId, Operation,
    Padding, TensorType, Value, ValueId,
};

use npuc_ir::shape::same_padding;

use crate::kernel::{Kernel, KernelKind, PaddingFit};
use crate::lang::{evaluate, Data, Leaf, Lin, LinAnalysis, LinGraph, Tables};
use crate::rules::{rules, RuleSet};

/// What extraction minimises. The default, [`MacCost`], counts multiply-accumulates and one
/// unit per element an elementwise op or PAD writes; a target-aware model replaces it.
pub trait CostModel {
    /// Cost of applying kernel `k` to produce a tensor of shape `out`.
    fn kernel(&self, k: &Kernel, out: &[usize]) -> u64;
    /// Cost of an elementwise op (or PAD) writing `elements` values.
    fn elementwise(&self, elements: u64) -> u64;
}

/// Multiply-accumulates, plus one per element written by elementwise ops.
#[derive(Clone, Copy, Debug, Default)]
pub struct MacCost;

impl CostModel for MacCost {
    fn kernel(&self, k: &Kernel, out: &[usize]) -> u64 {
        k.macs(out)
    }

    fn elementwise(&self, elements: u64) -> u64 {
        elements
    }
}

/// Cost that marks a term as unrealisable.
const INFINITE: u64 = u64::MAX;

fn elements(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

/// Cost of one node given its children's data (shared by extraction and by costing the
/// original term).
fn node_cost<'a>(model: &dyn CostModel, node: &Lin, child: impl Fn(Id) -> &'a Data) -> u64 {
    match node {
        Lin::Conv([k, x]) => {
            let (Some(k), Some(s)) = (child(*k).kernel(), child(*x).shape()) else { return INFINITE };
            let Some(out) = k.output_shape(s) else { return INFINITE };
            let pad = match (k.kind, s) {
                (KernelKind::Dense, _) => 0,
                (_, &[n, h, w, c]) if k.padding_for(h, w) == PaddingFit::Explicit => {
                    elements(&[n, h + k.pads[0] + k.pads[1], w + k.pads[2] + k.pads[3], c])
                }
                _ => 0,
            };
            model.kernel(k, &out).saturating_add(if pad == 0 { 0 } else { model.elementwise(pad) })
        }
        Lin::Add([a, _]) | Lin::MulC([a, _]) | Lin::AddC([a, _]) => {
            child(*a).shape().map_or(INFINITE, |s| model.elementwise(elements(s)))
        }
        Lin::Pad([p, x]) => match (child(*p).pads(), child(*x).shape()) {
            (Some(p), Some(&[n, h, w, c])) => model.elementwise(elements(&[n, h + p[0] + p[1], w + p[2] + p[3], c])),
            _ => INFINITE,
        },
        _ => 0,
    }
}

/// egg cost function over a region's e-graph.
struct EGraphCost<'a> {
    graph: &'a LinGraph,
    model: &'a dyn CostModel,
}

impl CostFunction<Lin> for EGraphCost<'_> {
    type Cost = u64;

    fn cost<C>(&mut self, enode: &Lin, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        let own = node_cost(self.model, enode, |id| &self.graph[id].data);
        enode.fold(own, |acc, id| acc.saturating_add(costs(id)))
    }
}

/// Data of every node of a term, bottom-up.
fn term_data(expr: &RecExpr<Lin>, tables: &Tables) -> Vec<Data> {
    let mut data: Vec<Data> = Vec::with_capacity(expr.len());
    for node in expr.as_ref() {
        let d = evaluate(node, tables, |id| &data[usize::from(id)]);
        data.push(d);
    }
    data
}

/// Cost of a term as written (each node counted once).
fn term_cost(expr: &RecExpr<Lin>, data: &[Data], model: &dyn CostModel) -> u64 {
    expr.as_ref().iter().map(|node| node_cost(model, node, |id| &data[usize::from(id)])).fold(0u64, u64::saturating_add)
}

/// Limits of one region's saturation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Rule-application rounds.
    pub iterations: usize,
    /// E-nodes.
    pub nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { iterations: 24, nodes: 20_000 }
    }
}

/// One rewritten region, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// Name of the region's result value.
    pub root: String,
    /// Ops in the region before.
    pub ops_before: usize,
    /// Ops written in its place.
    pub ops_after: usize,
    /// Cost before (in the cost model's unit).
    pub cost_before: u64,
    /// Cost after.
    pub cost_after: u64,
}

/// What a run of the engine did to a graph.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Regions rewritten, in graph order.
    pub rewritten: Vec<Rewritten>,
    /// Regions examined (with at least one kernel and two ops).
    pub regions: usize,
}

/// Errors of the engine (all are internal: a rewrite that the graph refuses).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The graph rejected a rewritten op.
    #[error("cannot write back region '{root}': {message}")]
    WriteBack {
        /// Result value of the region.
        root: String,
        /// The graph's complaint.
        message: String,
    },
    /// The graph has a cycle.
    #[error("graph is not acyclic: {0}")]
    Cyclic(String),
}

// ---------------------------------------------------------------------------------------
// Reading the graph.

fn f32_tensor(v: &Value) -> bool {
    // Empty tensors have nothing to save and make padding arithmetic degenerate.
    v.ty.dtype == DType::F32
        && v.ty.shape.iter().all(|&d| d > 0)
        && v.ty.quant.as_ref().is_none_or(|q| q.is_empty())
        && !v.is_variable
        && v.shape_signature.as_ref().is_none_or(|s| s.iter().all(|&d| d >= 0))
}

/// Contents of a dense f32 constant.
fn f32_const(g: &Graph, v: ValueId) -> Option<Vec<f32>> {
    let val = g.value(v);
    if !val.is_constant() || val.sparsity.is_some() || val.ty.dtype != DType::F32 || val.ty.quant.is_some() {
        return None;
    }
    let bytes = val.data.as_ref()?.bytes()?;
    let n = val.ty.num_elements()? as usize;
    (bytes.len() == n * 4)
        .then(|| bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Contents of an integer constant (PAD's paddings).
fn int_const(g: &Graph, v: ValueId) -> Option<Vec<i64>> {
    let val = g.value(v);
    if !val.is_constant() || val.sparsity.is_some() {
        return None;
    }
    let bytes = val.data.as_ref()?.bytes()?;
    match val.ty.dtype {
        DType::I32 => {
            Some(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect())
        }
        DType::I64 => Some(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()),
        _ => None,
    }
}

/// A per-channel constant for a tensor with `channels` channels: one value, or a shape of
/// ones ending in `channels`.
fn channel_const(g: &Graph, v: ValueId, channels: usize) -> Option<Vec<f64>> {
    let shape = &g.value(v).ty.shape;
    let n: usize = shape.iter().product();
    let per_channel = shape.last() == Some(&channels) && shape.iter().rev().skip(1).all(|&d| d == 1);
    if n != 1 && !per_channel {
        return None;
    }
    Some(f32_const(g, v)?.into_iter().map(f64::from).collect())
}

/// A linear op as the region builder sees it (weights not read yet).
#[derive(Clone, Copy, Debug)]
pub(crate) enum LinOp {
    /// Conv-like op reading tensor `x`.
    Kernel { x: ValueId },
    /// Same-shape add of two tensors.
    Add { a: ValueId, b: ValueId },
    /// Multiply by a per-channel constant.
    MulC { x: ValueId, c: ValueId },
    /// Add (`negate`: subtract) a per-channel constant.
    AddC { x: ValueId, c: ValueId, negate: bool },
    /// Zero padding of H and W.
    Pad { x: ValueId },
}

/// Whether some rule of `set` could match op `outer` reading the result of op `inner`
/// (every rule's left-hand side contains such a pair), judged from signatures only.
fn may_match(g: &Graph, set: RuleSet, internal: &[bool], outer: (LinOp, OpId), inner: (LinOp, OpId)) -> bool {
    use LinOp::*;
    match (outer.0, inner.0) {
        (Kernel { .. }, Kernel { x }) => {
            set.collapse
                && match (read_kernel(g, outer.1, false), read_kernel(g, inner.1, false)) {
                    (Some(b), Some(a)) => {
                        let xs = &g.value(x).ty.shape;
                        let mid = &g.value(g.op(inner.1).outputs[0]).ty.shape;
                        let out = &g.value(g.op(outer.1).outputs[0]).ty.shape;
                        crate::kernel::can_compose(&b, &a)
                            && crate::kernel::composite_macs(&b, &a, out) <= a.macs(mid) + b.macs(out)
                            && xs.len() == mid.len()
                    }
                    _ => false,
                }
        }
        (Add { a, b }, Kernel { x }) => {
            // A branch sum needs the other operand to read the same input (directly, as
            // an identity residual, or through a kernel or a further add).
            let other = if g.producer(a) == Some(inner.1) { b } else { a };
            set.collapse
                && (other == x
                    || (internal[other.index()]
                        && g.producer(other)
                            .is_some_and(|p| matches!(classify(g, p), Some((Kernel { .. } | Add { .. }, _))))))
        }
        (Add { .. }, Add { .. }) => set.collapse,
        (MulC { .. } | AddC { .. }, Kernel { .. }) | (Kernel { .. }, MulC { .. } | AddC { .. }) => set.affine,
        (Kernel { .. }, Pad { .. }) => set.pad,
        _ => false,
    }
}

impl LinOp {
    /// The tensors the op reads (its region operands).
    fn tensors(self) -> Vec<ValueId> {
        match self {
            LinOp::Kernel { x } | LinOp::MulC { x, .. } | LinOp::AddC { x, .. } | LinOp::Pad { x } => vec![x],
            LinOp::Add { a, b } => vec![a, b],
        }
    }
}

/// Classifies op `id` as linear (with its fused activation), cheaply: shapes and dtypes
/// only, no weights read.
fn classify(g: &Graph, id: OpId) -> Option<(LinOp, Activation)> {
    let o = g.op(id);
    if o.outputs.len() != 1 || !o.intermediates.is_empty() {
        return None;
    }
    let y = o.outputs[0];
    if !f32_tensor(g.value(y)) {
        return None;
    }
    let konst = |slot: usize| o.input(slot).filter(|&v| g.value(v).is_constant());
    let tensor = |slot: usize| o.input(slot).filter(|&v| !g.value(v).is_constant() && f32_tensor(g.value(v)));
    let out_shape = &g.value(y).ty.shape;
    let channels = *out_shape.last()?;
    let lin = match &o.op {
        Op::Conv2d(a) => {
            let x = tensor(0)?;
            let (w, xs) = (konst(1)?, &g.value(x).ty.shape);
            let ws = &g.value(w).ty.shape;
            (xs.len() == 4 && ws.len() == 4 && ws[3] == xs[3] && a.bias_type.is_none()).then_some(())?;
            (LinOp::Kernel { x }, a.activation)
        }
        Op::DepthwiseConv2d(a) => {
            let x = tensor(0)?;
            konst(1)?;
            let xs = &g.value(x).ty.shape;
            (xs.len() == 4 && (a.depth_multiplier == 1 || xs[3] == 1)).then_some(())?;
            (LinOp::Kernel { x }, a.activation)
        }
        Op::FullyConnected(a) => {
            let x = tensor(0)?;
            konst(1)?;
            let xs = &g.value(x).ty.shape;
            (xs.len() == 2 && out_shape.len() == 2 && !a.shuffled_weights && a.bias_type.is_none()).then_some(())?;
            (LinOp::Kernel { x }, a.activation)
        }
        Op::Add { activation, .. } | Op::Sub { activation, .. } | Op::Mul { activation } => {
            let negate = matches!(o.op, Op::Sub { .. });
            let is_mul = matches!(o.op, Op::Mul { .. });
            let lin = match (tensor(0), tensor(1), konst(0), konst(1)) {
                (Some(a), Some(b), ..) if !negate && !is_mul => {
                    (g.value(a).ty.shape == *out_shape && g.value(b).ty.shape == *out_shape).then_some(())?;
                    LinOp::Add { a, b }
                }
                (Some(x), _, _, Some(c)) | (_, Some(x), Some(c), _) => {
                    // SUB(c, x) is not x plus a constant.
                    if negate && o.input(0) == Some(c) {
                        return None;
                    }
                    (g.value(x).ty.shape == *out_shape).then_some(())?;
                    channel_const(g, c, channels)?;
                    if is_mul {
                        LinOp::MulC { x, c }
                    } else {
                        LinOp::AddC { x, c, negate }
                    }
                }
                _ => return None,
            };
            (lin, *activation)
        }
        Op::Pad | Op::PadV2 => {
            let x = tensor(0)?;
            let p = int_const(g, konst(1)?)?;
            if matches!(o.op, Op::PadV2) && f32_const(g, konst(2)?)?.iter().any(|&v| v != 0.0) {
                return None;
            }
            (g.value(x).ty.shape.len() == 4 && p.len() == 8 && p[0] == 0 && p[1] == 0 && p[6] == 0 && p[7] == 0)
                .then_some(())?;
            p.iter().all(|&d| d >= 0).then_some(())?;
            (LinOp::Pad { x }, Activation::None)
        }
        _ => return None,
    };
    Some(lin)
}

/// Reads the kernel of a conv-like op into f64.
///
/// With `weights = false` only the signature is read (weights and bias left empty), for
/// deciding cheaply whether a rule could apply.
fn read_kernel(g: &Graph, id: OpId, weights: bool) -> Option<Kernel> {
    let o = g.op(id);
    let x = g.value(o.input(0)?).ty.shape.clone();
    let w = if weights { f32_const(g, o.input(1)?)? } else { Vec::new() };
    let wshape = g.value(o.input(1)?).ty.shape.clone();
    let cout = *g.value(o.outputs[0]).ty.shape.last()?;
    let bias = match o.input(2) {
        _ if !weights => Vec::new(),
        Some(b) => f32_const(g, b)?.into_iter().map(f64::from).collect(),
        None => vec![0.0; cout],
    };
    if weights && bias.len() != cout {
        return None;
    }
    let size = |n: usize| if weights { n } else { 0 };
    let mut k = match &o.op {
        Op::Conv2d(a) => {
            // TFLite filter layout OHWI → kernel [kh][kw][cin][cout].
            let (kh, kw, cin) = (wshape[1], wshape[2], wshape[3]);
            let mut data = vec![0.0; size(kh * kw * cin * cout)];
            for (oc, chunk) in w.chunks_exact(kh * kw * cin).enumerate() {
                for (t, &v) in chunk.iter().enumerate() {
                    data[t * cout + oc] = f64::from(v);
                }
            }
            let window = Window { padding: a.padding, stride: a.stride, dilation: a.dilation };
            window.kernel(KernelKind::Conv, [kh, kw, cin, cout], &x, data, bias)
        }
        Op::DepthwiseConv2d(a) => {
            // Filter [1, kh, kw, C·multiplier]: [kh][kw][c] for a true depthwise kernel, and
            // [kh][kw][1][cout] — an ordinary conv — when there is one input channel.
            let (kh, kw, cin) = (wshape[1], wshape[2], x[3]);
            let kind = if cin == cout && a.depth_multiplier == 1 { KernelKind::Depthwise } else { KernelKind::Conv };
            let window = Window { padding: a.padding, stride: a.stride, dilation: a.dilation };
            window.kernel(kind, [kh, kw, cin, cout], &x, w.iter().map(|&v| f64::from(v)).collect(), bias)
        }
        Op::FullyConnected(_) => {
            let cin = wshape[1];
            let mut data = vec![0.0; size(cin * cout)];
            for (oc, row) in w.chunks_exact(cin).enumerate() {
                for (i, &v) in row.iter().enumerate() {
                    data[i * cout + oc] = f64::from(v);
                }
            }
            Kernel {
                kind: KernelKind::Dense,
                kh: 1,
                kw: 1,
                cin,
                cout,
                stride: [1, 1],
                dilation: [1, 1],
                pads: [0; 4],
                w: data,
                bias,
            }
        }
        _ => return None,
    };
    k = k.normalized();
    let fits = k.output_shape(&x).as_deref() == Some(&g.value(o.outputs[0]).ty.shape[..]);
    ((!weights || k.is_well_formed()) && fits).then_some(k)
}

/// The window attributes conv-like ops share.
struct Window {
    padding: Padding,
    stride: [u32; 2],
    dilation: [u32; 2],
}

impl Window {
    /// A kernel of `kind` and size `[kh, kw, cin, cout]` applied with this window to `x`.
    fn kernel(&self, kind: KernelKind, size: [usize; 4], x: &[usize], w: Vec<f64>, bias: Vec<f64>) -> Kernel {
        let [kh, kw, cin, cout] = size;
        Kernel {
            kind,
            kh,
            kw,
            cin,
            cout,
            stride: [self.stride[0] as usize, self.stride[1] as usize],
            dilation: [self.dilation[0] as usize, self.dilation[1] as usize],
            pads: padding(self.padding, x, kh, kw, self.stride, self.dilation),
            w,
            bias,
        }
    }
}

/// Explicit pads of a TFLite padding scheme for input `x` (NHWC).
fn padding(p: Padding, x: &[usize], kh: usize, kw: usize, stride: [u32; 2], dilation: [u32; 2]) -> [usize; 4] {
    if p == Padding::Valid {
        return [0; 4];
    }
    let (s, d) = (stride.map(|v| v as usize), dilation.map(|v| v as usize));
    let (a, b) = (same_padding(x[1], kh, s[0], d[0]), same_padding(x[2], kw, s[1], d[1]));
    [a[0], a[1], b[0], b[1]]
}

/// One region: its term, leaves and ops.
struct Region {
    root: ValueId,
    activation: Activation,
    ops: Vec<OpId>,
    /// For each expanded node of `expr`: the op that computes it and its result.
    produced: HashMap<Id, (OpId, ValueId)>,
    leaves: Vec<ValueId>,
    tables: Tables,
    expr: RecExpr<Lin>,
}

struct Builder<'g> {
    g: &'g Graph,
    internal: &'g [bool],
    leaves: HashMap<ValueId, Id>,
    region: Region,
    kernels: usize,
}

impl Builder<'_> {
    /// Adds the term for value `v` (expanding it when it is inside the region).
    fn term(&mut self, v: ValueId, expand: bool) -> Option<Id> {
        if !expand {
            if let Some(&id) = self.leaves.get(&v) {
                return Some(id);
            }
            let i = self.region.leaves.len() as u32;
            self.region.leaves.push(v);
            self.region.tables.values.push(self.g.value(v).ty.shape.clone());
            let id = self.region.expr.add(Lin::Leaf(Leaf::Value(i)));
            self.leaves.insert(v, id);
            return Some(id);
        }
        let g = self.g;
        let op = g.producer(v)?;
        let (lin, _) = classify(g, op)?;
        self.region.ops.push(op);
        let sub = |b: &mut Self, x: ValueId| b.term(x, b.internal[x.index()]);
        let node = match lin {
            LinOp::Kernel { x } => {
                let xi = sub(self, x)?;
                let k = read_kernel(g, op, true)?;
                let ki = self.region.tables.kernels.len() as u32;
                self.region.tables.kernels.push(Arc::new(k));
                self.kernels += 1;
                let kl = self.region.expr.add(Lin::Leaf(Leaf::Kernel(ki)));
                Lin::Conv([kl, xi])
            }
            LinOp::Add { a, b } => {
                let (ai, bi) = (sub(self, a)?, sub(self, b)?);
                Lin::Add([ai, bi])
            }
            LinOp::MulC { x, c } | LinOp::AddC { x, c, .. } => {
                let xi = sub(self, x)?;
                let channels = *g.value(v).ty.shape.last()?;
                let mut values = channel_const(g, c, channels)?;
                if let LinOp::AddC { negate: true, .. } = lin {
                    values.iter_mut().for_each(|x| *x = -*x);
                }
                let ci = self.region.tables.consts.len() as u32;
                self.region.tables.consts.push(Arc::new(values));
                let cl = self.region.expr.add(Lin::Leaf(Leaf::Const(ci)));
                if matches!(lin, LinOp::MulC { .. }) {
                    Lin::MulC([xi, cl])
                } else {
                    Lin::AddC([xi, cl])
                }
            }
            LinOp::Pad { x } => {
                let xi = sub(self, x)?;
                let p = int_const(g, g.op(op).input(1)?)?;
                let pads = [p[2] as usize, p[3] as usize, p[4] as usize, p[5] as usize];
                let pi = self.region.tables.pads.len() as u32;
                self.region.tables.pads.push(pads);
                let pl = self.region.expr.add(Lin::Leaf(Leaf::Pads(pi)));
                Lin::Pad([pl, xi])
            }
        };
        let id = self.region.expr.add(node);
        self.region.produced.insert(id, (op, v));
        Some(id)
    }
}

/// Which values are inner results of a region: produced by a linear op without fused
/// activation, read exactly once, as a tensor operand of a linear op, and not a graph
/// output.
fn internal_values(g: &Graph, linear: &HashMap<OpId, (LinOp, Activation)>) -> Vec<bool> {
    let mut internal = vec![false; g.value_count()];
    for (&op, &(_, act)) in linear {
        if act != Activation::None {
            continue;
        }
        let v = g.op(op).outputs[0];
        if g.outputs.contains(&v) {
            continue;
        }
        let mut uses = g.uses(v);
        let (Some((user, _)), None) = (uses.next(), uses.next()) else { continue };
        if linear.get(&user).is_some_and(|(l, _)| l.tensors().contains(&v)) {
            internal[v.index()] = true;
        }
    }
    internal
}

/// Runs `set`'s rules over every region of `g` and rewrites the regions whose cheapest
/// equivalent costs less than they do now.
pub fn run(g: &mut Graph, set: RuleSet, limits: Limits, model: &dyn CostModel) -> Result<Outcome, EngineError> {
    let order = g.topo_order().map_err(|e| EngineError::Cyclic(e.to_string()))?;
    let linear: HashMap<OpId, (LinOp, Activation)> =
        order.iter().filter_map(|&id| classify(g, id).map(|c| (id, c))).collect();
    let internal = internal_values(g, &linear);
    let rule_list = rules(set);
    let mut outcome = Outcome::default();
    let mut plans = Vec::new();
    for &op in &order {
        let Some(&(lin, activation)) = linear.get(&op) else { continue };
        let root = g.op(op).outputs[0];
        if internal[root.index()] {
            continue;
        }
        // Cheap pre-check before any weight is read: some rule of the set must be able to
        // match a pair of adjacent ops of the region.
        let mut stack = vec![(lin, op)];
        let mut matchable = false;
        while let Some((l, lop)) = stack.pop() {
            for v in l.tensors() {
                if internal[v.index()] {
                    let p = g.producer(v).expect("internal values have producers");
                    let (inner, _) = linear[&p];
                    matchable |= may_match(g, set, &internal, (l, lop), (inner, p));
                    stack.push((inner, p));
                }
            }
        }
        if !matchable {
            continue;
        }
        let mut b = Builder {
            g,
            internal: &internal,
            leaves: HashMap::new(),
            region: Region {
                root,
                activation,
                ops: Vec::new(),
                produced: HashMap::new(),
                leaves: Vec::new(),
                tables: Tables::default(),
                expr: RecExpr::default(),
            },
            kernels: 0,
        };
        if b.term(root, true).is_none() || b.kernels == 0 {
            continue;
        }
        outcome.regions += 1;
        let region = b.region;
        if let Some(plan) = optimize(g, region, &rule_list, limits, model) {
            plans.push(plan);
        }
    }
    for plan in plans {
        outcome.rewritten.push(write_back(g, plan)?);
    }
    Ok(outcome)
}

/// A region with its better term, ready to be written back.
struct Plan {
    region: Region,
    best: RecExpr<Lin>,
    best_data: Vec<Data>,
    cost_before: u64,
    cost_after: u64,
}

fn optimize(
    g: &Graph,
    region: Region,
    rule_list: &[egg::Rewrite<Lin, LinAnalysis>],
    limits: Limits,
    model: &dyn CostModel,
) -> Option<Plan> {
    let data = term_data(&region.expr, &region.tables);
    let cost_before = term_cost(&region.expr, &data, model);
    let runner: Runner<Lin, LinAnalysis> = Runner::new(LinAnalysis { tables: region.tables.clone() })
        .with_expr(&region.expr)
        .with_iter_limit(limits.iterations)
        .with_node_limit(limits.nodes)
        // Determinism: stop on counts, never on wall-clock time.
        .with_time_limit(Duration::from_secs(u64::MAX / 4))
        .run(rule_list);
    let root = runner.roots[0];
    let extractor = Extractor::new(&runner.egraph, EGraphCost { graph: &runner.egraph, model });
    let (cost_after, best) = extractor.find_best(root);
    if cost_after >= cost_before {
        return None;
    }
    let best_data = term_data(&best, &region.tables);
    // The top of the new term must be able to carry the region's activation.
    let top = best.as_ref().last()?;
    let carries = match top {
        Lin::Conv(_) | Lin::Add(_) | Lin::MulC(_) | Lin::AddC(_) => true,
        Lin::Pad(_) => region.activation == Activation::None,
        _ => false,
    };
    let shape_ok = best_data.last()?.shape() == Some(&g.value(region.root).ty.shape[..]);
    (carries && shape_ok).then_some(Plan { region, best, best_data, cost_before, cost_after })
}

/// Writes a plan into the graph: the new ops replace the region's, and the last one
/// writes the region's result value (so its name, type and readers stay).
fn write_back(g: &mut Graph, plan: Plan) -> Result<Rewritten, EngineError> {
    let Plan { region, best, best_data, cost_before, cost_after } = plan;
    let root_name = match g.value(region.root).name.as_str() {
        "" => format!("collapsed{}", region.root.0),
        name => name.to_string(),
    };
    let fail = |message: String| EngineError::WriteBack { root: root_name.clone(), message };
    let mut new_ops: Vec<Operation> = Vec::new();
    let mut values: Vec<Option<ValueId>> = vec![None; best.len()];
    // Parts of the new term that are parts of the old one keep their ops (and op kinds:
    // a SUB stays a SUB); `original[i]` is node i's id in the region's own term.
    let index: HashMap<&Lin, Id> = region.expr.as_ref().iter().enumerate().map(|(i, n)| (n, Id::from(i))).collect();
    let mut original: Vec<Option<Id>> = Vec::with_capacity(best.len());
    let mut kept: Vec<OpId> = Vec::new();
    let last = best.len() - 1;
    let mut fresh = 0usize;
    let mut name = |what: &str| {
        fresh += 1;
        format!("{root_name}/{what}{fresh}")
    };
    for (i, node) in best.as_ref().iter().enumerate() {
        let out_of = |g: &mut Graph, what: &str, name: &mut dyn FnMut(&str) -> String| -> ValueId {
            if i == last {
                region.root
            } else {
                let shape = best_data[i].shape().expect("tensor node").to_vec();
                g.add_value(Value::new(name(what), TensorType::new(DType::F32, shape)))
            }
        };
        let act = if i == last { region.activation } else { Activation::None };
        let mut mapped = Some(node.clone());
        if let Some(m) = mapped.as_mut() {
            for c in m.children_mut() {
                match original[usize::from(*c)] {
                    Some(o) => *c = o,
                    None => {
                        mapped = None;
                        break;
                    }
                }
            }
        }
        let orig = mapped.as_ref().and_then(|m| index.get(m).copied());
        original.push(orig);
        if let Some(&(op, v)) = orig.and_then(|o| region.produced.get(&o)) {
            if i != last {
                values[i] = Some(v);
                kept.push(op);
                continue;
            }
        }
        let at = |id: Id| values[usize::from(id)].expect("children come first");
        match node {
            Lin::Leaf(Leaf::Value(j)) => values[i] = Some(region.leaves[*j as usize]),
            Lin::Conv([k, x]) => {
                let k = best_data[usize::from(*k)].kernel().expect("extracted kernels are valid").clone();
                let mut x = at(*x);
                let xs = g.value(x).ty.shape.clone();
                let fit = if k.kind == KernelKind::Dense { PaddingFit::Valid } else { k.padding_for(xs[1], xs[2]) };
                if fit == PaddingFit::Explicit {
                    let padded = vec![xs[0], xs[1] + k.pads[0] + k.pads[1], xs[2] + k.pads[2] + k.pads[3], xs[3]];
                    let pv = g.add_value(Value::new(name("pad"), TensorType::new(DType::F32, padded)));
                    let pc = pads_const(g, k.pads, &mut name);
                    new_ops.push(Operation::new(Op::Pad, vec![Some(x), Some(pc)], vec![pv]));
                    x = pv;
                }
                let y = out_of(g, "conv", &mut name);
                new_ops.push(kernel_op(g, &k, x, y, fit, act, &mut name));
                values[i] = Some(y);
            }
            Lin::Add([a, b]) => {
                let (a, b) = (at(*a), at(*b));
                let y = out_of(g, "add", &mut name);
                new_ops.push(Operation::new(
                    Op::Add { activation: act, pot_scale_int16: false },
                    vec![Some(a), Some(b)],
                    vec![y],
                ));
                values[i] = Some(y);
            }
            Lin::MulC([x, c]) | Lin::AddC([x, c]) => {
                let x = at(*x);
                let c = best_data[usize::from(*c)].constant().expect("constant").clone();
                let cv = g.add_const(
                    name("const"),
                    TensorType::new(DType::F32, vec![c.len()]),
                    f32_bytes(c.iter().map(|&v| v as f32)),
                );
                let y = out_of(g, "affine", &mut name);
                let op = if matches!(node, Lin::MulC(_)) {
                    Op::Mul { activation: act }
                } else {
                    Op::Add { activation: act, pot_scale_int16: false }
                };
                new_ops.push(Operation::new(op, vec![Some(x), Some(cv)], vec![y]));
                values[i] = Some(y);
            }
            Lin::Pad([p, x]) => {
                let x = at(*x);
                let p = best_data[usize::from(*p)].pads().expect("pads");
                let pc = pads_const(g, p, &mut name);
                let y = out_of(g, "pad", &mut name);
                new_ops.push(Operation::new(Op::Pad, vec![Some(x), Some(pc)], vec![y]));
                values[i] = Some(y);
            }
            _ => {}
        }
    }
    let ops_before = region.ops.len();
    let ops_after = new_ops.len() + kept.len();
    for &op in region.ops.iter().filter(|op| !kept.contains(op)) {
        g.remove_op(op);
    }
    for op in new_ops {
        g.add_op(op).map_err(|e| fail(e.to_string()))?;
    }
    Ok(Rewritten { root: root_name.clone(), ops_before, ops_after, cost_before, cost_after })
}

fn f32_bytes(values: impl Iterator<Item = f32>) -> Constant {
    let bytes: Vec<u8> = values.flat_map(f32::to_le_bytes).collect();
    Constant::from_slice(&bytes)
}

fn pads_const(g: &mut Graph, p: [usize; 4], name: &mut dyn FnMut(&str) -> String) -> ValueId {
    let v: [i32; 8] = [0, 0, p[0] as i32, p[1] as i32, p[2] as i32, p[3] as i32, 0, 0];
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    g.add_const(name("paddings"), TensorType::new(DType::I32, vec![4, 2]), Constant::from_slice(&bytes))
}

/// The TFLite op applying kernel `k` to `x`, writing `y`.
fn kernel_op(
    g: &mut Graph,
    k: &Kernel,
    x: ValueId,
    y: ValueId,
    fit: PaddingFit,
    activation: Activation,
    name: &mut dyn FnMut(&str) -> String,
) -> Operation {
    let padding = if fit == PaddingFit::Same { Padding::Same } else { Padding::Valid };
    let stride = [k.stride[0] as u32, k.stride[1] as u32];
    let dilation = [k.dilation[0] as u32, k.dilation[1] as u32];
    let bias = g.add_const(
        name("bias"),
        TensorType::new(DType::F32, vec![k.cout]),
        f32_bytes(k.bias.iter().map(|&b| b as f32)),
    );
    let (op, wshape, w): (Op, Vec<usize>, Vec<f32>) = match k.kind {
        KernelKind::Conv => {
            // [kh][kw][cin][cout] → OHWI.
            let taps = k.kh * k.kw * k.cin;
            let mut w = vec![0f32; taps * k.cout];
            for t in 0..taps {
                for o in 0..k.cout {
                    w[o * taps + t] = k.w[t * k.cout + o] as f32;
                }
            }
            (
                Op::Conv2d(Conv2dAttrs { padding, stride, dilation, activation, bias_type: None }),
                vec![k.cout, k.kh, k.kw, k.cin],
                w,
            )
        }
        KernelKind::Depthwise => (
            Op::DepthwiseConv2d(DepthwiseConv2dAttrs { padding, stride, dilation, depth_multiplier: 1, activation }),
            vec![1, k.kh, k.kw, k.cout],
            k.w.iter().map(|&v| v as f32).collect(),
        ),
        KernelKind::Dense => {
            let mut w = vec![0f32; k.cin * k.cout];
            for i in 0..k.cin {
                for o in 0..k.cout {
                    w[o * k.cin + i] = k.w[i * k.cout + o] as f32;
                }
            }
            (
                Op::FullyConnected(FullyConnectedAttrs {
                    activation,
                    keep_num_dims: false,
                    shuffled_weights: false,
                    asymmetric_quantize_inputs: false,
                    bias_type: None,
                }),
                vec![k.cout, k.cin],
                w,
            )
        }
    };
    let wv = g.add_const(name("weights"), TensorType::new(DType::F32, wshape), f32_bytes(w.into_iter()));
    Operation::new(op, vec![Some(x), Some(wv), Some(bias)], vec![y])
}
