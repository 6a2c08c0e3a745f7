//! The graph rewrite: float values become int8 (or int16) with calibrated parameters,
//! weights and biases become per-channel integer constants, op versions are raised to
//! the quantized revisions.
//!
//! Op constraints follow TFLite (tensorflow/lite/tools/optimize/operator_property.cc and
//! the quantization spec): data-movement ops, pooling, concatenation, pack/unpack and
//! maximum/minimum keep their input's parameters on the output (their int8 kernels copy or
//! compare raw integers), so their operands and results form one group sharing the union
//! of their ranges; logistic, softmax, tanh and l2 normalization have fixed output
//! parameters. A group containing a fixed-parameter value takes the fixed parameters.

use std::collections::HashMap;

use bytes::Bytes;
use npuc_interp::Tensor;
use npuc_ir::{
    Activation, Constant, DType, Graph, Module, Op, OpId, Operation, Quantization, TensorType, Value, ValueId,
};
use npuc_pass::CompressionConfig;

use crate::calibrate::{calibrate_in, load_samples, CalibrationData};
use crate::observer::ObserverKind;
use crate::params::{act_params, bias_min_weight_scales, quantize_bias, quantize_weights, ActParams, ActType};

/// Everything the rewrite needs besides the graph.
#[derive(Clone, Debug)]
pub struct QuantizeConfig {
    /// Activation type.
    pub act: ActType,
    /// Default weight bits (8, 4 or 2).
    pub bits: u32,
    /// Keep float graph inputs/outputs (QUANTIZE after inputs, DEQUANTIZE before outputs).
    pub io_float: bool,
    /// Calibration inputs.
    pub data: CalibrationData,
    /// How ranges are chosen.
    pub observer: ObserverKind,
    /// Per-layer bits.
    pub config: Option<CompressionConfig>,
}

/// What [`quantize_graph`] did.
#[derive(Clone, Debug, Default)]
pub struct QuantizeStats {
    /// Float values (activations and non-weight constants) given integer types.
    pub values: usize,
    /// Samples the calibration ran.
    pub samples: usize,
    /// Ops added (requantizing QUANTIZE ops; QUANTIZE/DEQUANTIZE with io=float).
    pub ops_added: usize,
    /// Ops removed (DENSIFY of constant sparse weights).
    pub ops_removed: usize,
    /// One line per weighted layer: name, bits, weight scale range.
    pub layer_notes: Vec<String>,
}

/// How an op is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Weights at `w`, optional bias at `b`, quantized axis `axis`.
    Weighted { w: usize, b: usize, axis: usize },
    /// Operands at these slots and all float results share one range.
    Shared(&'static [usize]),
    /// All float operands and results share one range.
    SharedAll,
    /// Output parameters are fixed.
    Fixed,
    /// Requantizing op: each value has its own range.
    Free,
    /// Stays float (control flow, comparisons, products): DEQUANTIZE/QUANTIZE at the
    /// boundaries with the quantized ops around it, as TFLite's converter does.
    Float,
}

fn classify(op: &Op, act: ActType) -> Result<Kind, String> {
    Ok(match op {
        Op::Conv2d(_) | Op::FullyConnected(_) => Kind::Weighted { w: 1, b: 2, axis: 0 },
        Op::DepthwiseConv2d(_) => Kind::Weighted { w: 1, b: 2, axis: 3 },
        Op::TransposeConv(_) => Kind::Weighted { w: 1, b: 3, axis: 0 },
        Op::Reshape { .. }
        | Op::Squeeze { .. }
        | Op::ExpandDims
        | Op::Transpose
        | Op::Pad
        | Op::Slice
        | Op::StridedSlice(_)
        | Op::Gather { .. }
        | Op::DepthToSpace { .. }
        | Op::SpaceToDepth { .. }
        | Op::BatchToSpaceNd
        | Op::SpaceToBatchNd
        | Op::ResizeNearestNeighbor(_)
        | Op::ResizeBilinear(_)
        | Op::MaxPool2d(_)
        | Op::AveragePool2d(_)
        | Op::SplitV { .. }
        | Op::Unpack { .. } => Kind::Shared(&[0]),
        Op::PadV2 => Kind::Shared(&[0, 2]),
        Op::Split { .. } => Kind::Shared(&[1]),
        Op::Concatenation { .. } | Op::Pack { .. } | Op::Maximum | Op::Minimum => Kind::SharedAll,
        Op::Logistic | Op::Softmax { .. } | Op::Tanh => Kind::Fixed,
        Op::L2Normalization { .. } if act == ActType::Int8 => Kind::Fixed,
        Op::Add { .. }
        | Op::Sub { .. }
        | Op::Mul { .. }
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::Relu
        | Op::Relu6
        | Op::ReluN1To1
        | Op::LeakyRelu { .. }
        | Op::Prelu
        | Op::HardSwish
        | Op::SquaredDifference
        | Op::Exp
        | Op::Sqrt
        | Op::Rsqrt
        | Op::ArgMax { .. }
        | Op::Shape { .. } => Kind::Free,
        Op::L2Normalization { .. } => return Err("TFLite has no 16x8 kernel for it".into()),
        // div.cc: int8 and uint8 quantized kernels only.
        Op::Div { .. } if act == ActType::Int8 => Kind::Free,
        Op::Div { .. } => return Err("TFLite has no 16x8 kernel for it".into()),
        Op::Densify => return Err("it densifies a non-constant tensor".into()),
        Op::Quantize | Op::Dequantize => return Err("the graph is already (partly) quantized".into()),
        Op::Opaque(_) => return Err("it is opaque (custom or control flow): npuc cannot calibrate it".into()),
        // TFLite has integer kernels for comparisons and REDUCE_PROD, but the converter
        // keeps them float around control flow; IF/WHILE call float graphs.
        Op::ReduceProd { .. }
        | Op::Greater
        | Op::GreaterEqual
        | Op::Less
        | Op::LessEqual
        | Op::Equal
        | Op::NotEqual
        | Op::If { .. }
        | Op::While { .. } => Kind::Float,
    })
}

/// Fixed output parameters (TFLite quantization spec; 16x8: scale 1/32768, zp 0).
fn fixed_params(op: &Op, act: ActType) -> Option<ActParams> {
    let p = |scale: f32, zero_point: i64| Some(ActParams { scale, zero_point });
    match (op, act) {
        (Op::Logistic | Op::Softmax { .. }, ActType::Int8) => p(1.0 / 256.0, -128),
        (Op::Tanh | Op::L2Normalization { .. }, ActType::Int8) => p(1.0 / 128.0, 0),
        (Op::Logistic | Op::Softmax { .. } | Op::Tanh, ActType::Int16) => p(1.0 / 32768.0, 0),
        _ => None,
    }
}

/// The TFLite version of a quantized op: `tensorflow/lite/tools/versioning/op_version.cc`
/// (`GetBuiltinOperatorVersion`), for the signatures this pass produces. Never lowers the
/// existing version (float-only features like dilation keep theirs).
fn quantized_version(g: &Graph, o: &Operation, act: ActType) -> u32 {
    let i16 = act == ActType::Int16;
    let rank = o.input(0).map(|v| g.value(v).ty.rank()).unwrap_or(0);
    let pick = |int8: u32, int16: u32| if i16 { int16 } else { int8 };
    let v = match &o.op {
        Op::Conv2d(_) => pick(3, 4),
        Op::DepthwiseConv2d(_) => pick(3, 5),
        Op::TransposeConv(a) => {
            if a.activation != Activation::None {
                4
            } else if o.input(3).is_some() {
                3
            } else {
                2
            }
        }
        Op::FullyConnected(a) => {
            // Complete for the signatures produced here, and the float version may be 8
            // (sparse weights), which the dense quantized weights no longer are.
            return if i16 {
                7
            } else if o.input(2).is_none() {
                6
            } else if a.keep_num_dims {
                5
            } else {
                4
            };
        }
        Op::Add { .. } => pick(2, 3),
        // op_version.cc raises DIV only for broadcasting beyond 4 dimensions.
        Op::Div { .. } => {
            let ranks: Vec<usize> = o.inputs.iter().flatten().map(|&v| g.value(v).ty.rank()).collect();
            let shapes: Vec<&[usize]> = o.inputs.iter().flatten().map(|&v| g.value(v).ty.shape.as_slice()).collect();
            if shapes.windows(2).any(|w| w[0] != w[1]) && ranks.iter().any(|&r| r > 4) {
                2
            } else {
                1
            }
        }
        Op::Sub { .. } => pick(2, 5),
        Op::Mul { .. } => pick(2, 4),
        Op::Maximum | Op::Minimum => pick(2, 4),
        Op::AveragePool2d(_) | Op::MaxPool2d(_) => pick(2, 3),
        Op::Mean { .. } | Op::Softmax { .. } | Op::Relu6 | Op::Rsqrt => pick(2, 3),
        Op::Sum { .. } | Op::Exp | Op::Sqrt | Op::ArgMax { .. } | Op::L2Normalization { .. } => 2,
        Op::Concatenation { .. } => pick(2, 3),
        Op::Split { .. } => pick(2, 4),
        Op::SplitV { .. } => 2,
        Op::Pack { .. } => pick(2, 3),
        Op::Unpack { .. } => pick(2, 4),
        Op::Pad | Op::PadV2 => {
            if rank > 4 {
                4
            } else {
                pick(2, 3)
            }
        }
        Op::StridedSlice(_) => {
            if rank > 4 {
                4
            } else {
                2
            }
        }
        Op::Slice => {
            if rank > 4 {
                5
            } else {
                pick(2, 4)
            }
        }
        Op::Transpose => {
            if rank > 5 {
                6
            } else if i16 {
                5
            } else if rank > 4 {
                4
            } else {
                2
            }
        }
        Op::DepthToSpace { .. } | Op::SpaceToDepth { .. } => 2,
        Op::BatchToSpaceNd | Op::SpaceToBatchNd => {
            if i16 {
                4
            } else if rank != 4 {
                3
            } else {
                2
            }
        }
        Op::ResizeBilinear(a) => {
            if i16 {
                4
            } else if a.half_pixel_centers {
                3
            } else {
                2
            }
        }
        Op::ResizeNearestNeighbor(a) => {
            if i16 {
                4
            } else if a.half_pixel_centers || a.align_corners {
                3
            } else {
                2
            }
        }
        Op::Relu => pick(2, 3),
        Op::LeakyRelu { .. } => pick(1, 2),
        Op::Logistic | Op::Tanh => pick(2, 3),
        Op::Gather { batch_dims, .. } => {
            if *batch_dims != 0 {
                5
            } else {
                pick(2, 4)
            }
        }
        Op::SquaredDifference => 2,
        Op::Quantize => pick(1, 2),
        Op::Dequantize => pick(2, 3),
        _ => 1,
    };
    v.max(o.version)
}

/// Union-find over value indices.
struct Groups(Vec<usize>);

impl Groups {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[rb.max(ra)] = rb.min(ra);
        }
    }
}

fn is_f32(g: &Graph, v: ValueId) -> bool {
    g.value(v).ty.dtype == DType::F32
}

/// The elements of an f32 constant (sparse ones densified: the quantized copy is dense).
fn const_f32(g: &Graph, v: ValueId) -> Option<Vec<f32>> {
    let val = g.value(v);
    if !val.is_constant() {
        return None;
    }
    let t = match &val.sparsity {
        Some(s) => npuc_interp::sparse::densify(&val.ty, val.data.as_ref()?, s).ok()?,
        None => Tensor::from_constant(&val.ty, val.data.as_ref()?)?,
    };
    t.as_f32().map(<[f32]>::to_vec)
}

fn int_const(g: &mut Graph, name: String, shape: Vec<usize>, dtype: DType, q: Quantization, bytes: Vec<u8>) -> ValueId {
    g.add_const(name, TensorType::new(dtype, shape).with_quant(q), Constant::new(Bytes::from(bytes)))
}

/// Unions the values that must share parameters and records fixed output parameters.
fn build_groups(g: &Graph, order: &[OpId], kinds: &[Kind], act: ActType) -> (Groups, Vec<Option<ActParams>>) {
    let n = g.value_count();
    let mut groups = Groups((0..n).collect());
    let mut fixed: Vec<Option<ActParams>> = vec![None; n];
    for (&id, &k) in order.iter().zip(kinds) {
        let o = g.op(id);
        let outs: Vec<ValueId> = o.outputs.iter().copied().filter(|&v| is_f32(g, v)).collect();
        let ins: Vec<ValueId> = match k {
            Kind::Shared(slots) => slots.iter().filter_map(|&s| o.input(s)).filter(|&v| is_f32(g, v)).collect(),
            Kind::SharedAll => o.inputs.iter().flatten().copied().filter(|&v| is_f32(g, v)).collect(),
            _ => Vec::new(),
        };
        if matches!(k, Kind::Shared(_) | Kind::SharedAll) {
            for &v in ins.iter().chain(&outs).skip(1) {
                groups.union(ins.first().or(outs.first()).map_or(v.index(), |f| f.index()), v.index());
            }
        }
        if k == Kind::Fixed {
            for &v in &outs {
                fixed[v.index()] = fixed_params(&o.op, act);
            }
        }
    }
    (groups, fixed)
}

/// Float values to quantize, in a stable order: graph inputs, then per op (topological)
/// its operands outside weight/bias slots and its results.
fn collect_act_values(
    g: &Graph,
    order: &[OpId],
    weight_slot: &HashMap<(OpId, usize), ()>,
    keep_float: &[bool],
) -> Vec<ValueId> {
    let mut act_values: Vec<ValueId> = Vec::new();
    let mut seen = vec![false; g.value_count()];
    for (i, &k) in keep_float.iter().enumerate() {
        seen[i] = k;
    }
    let mut push = |v: ValueId| {
        if !seen[v.index()] {
            seen[v.index()] = true;
            act_values.push(v);
        }
    };
    for &v in &g.inputs {
        if is_f32(g, v) {
            push(v);
        }
    }
    for &id in order {
        let o = g.op(id);
        for (s, v) in o.inputs.iter().enumerate() {
            if let Some(v) = *v {
                if is_f32(g, v) && !weight_slot.contains_key(&(id, s)) {
                    push(v);
                }
            }
        }
        for &v in &o.outputs {
            if is_f32(g, v) {
                push(v);
            }
        }
    }
    act_values
}

/// The real range of one value: a constant's own elements, else the observer's choice.
fn value_range(g: &Graph, stats: &[crate::observer::ValueStats], v: ValueId, cfg: &QuantizeConfig) -> (f32, f32) {
    if let Some(data) = const_f32(g, v) {
        data.iter().filter(|x| x.is_finite()).fold((0f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)))
    } else {
        stats[v.index()].range(cfg.observer, cfg.act)
    }
}

/// Fixed-parameter values (logistic, softmax, tanh outputs) whose sharing group cannot
/// take their fixed parameters: another member's range reaches more than one step past
/// the fixed range (a concatenation of a tanh with wider activations), or the group holds
/// values with different fixed parameters. Forcing the fixed parameters on such a group
/// would clip every other member to the fixed range; TFLite's converter instead
/// requantizes the fixed output into the group's parameters, and so does
/// [`insert_requantize`]. A group that only moves a fixed output around (a reshape after
/// a softmax) keeps the fixed parameters.
fn conflicting_fixed_values(
    g: &Graph,
    groups: &mut Groups,
    fixed: &[Option<ActParams>],
    act_values: &[ValueId],
    stats: &[crate::observer::ValueStats],
    cfg: &QuantizeConfig,
) -> Vec<ValueId> {
    #[derive(Default)]
    struct Members {
        fixed: Vec<(ValueId, ActParams)>,
        others: Option<(f32, f32)>,
    }
    let mut by_group: HashMap<usize, Members> = HashMap::new();
    for &v in act_values {
        let m = by_group.entry(groups.find(v.index())).or_default();
        match fixed[v.index()] {
            Some(p) => m.fixed.push((v, p)),
            None => {
                let (lo, hi) = value_range(g, stats, v, cfg);
                m.others = Some(m.others.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
    }
    let (qmin, qmax) = cfg.act.range();
    let mut out: Vec<ValueId> = Vec::new();
    for m in by_group.values() {
        let Some(&(_, p)) = m.fixed.first() else { continue };
        let same = m.fixed.iter().all(|&(_, q)| q == p);
        let fits = m.others.is_none_or(|(lo, hi)| {
            let step = p.scale as f64;
            let (rlo, rhi) = (step * (qmin - p.zero_point) as f64, step * (qmax - p.zero_point) as f64);
            lo as f64 >= rlo - step && hi as f64 <= rhi + step
        });
        if !(same && fits) {
            out.extend(m.fixed.iter().map(|&(v, _)| v));
        }
    }
    out.sort_by_key(|v| v.index());
    out
}

/// Gives the shared consumers of fixed-parameter value `v` a requantized copy instead:
/// `c = QUANTIZE(v)` (int8 to int8 after the rewrite), so `v` keeps its fixed parameters
/// and `c` joins the consumers' group. Returns the number of ops added (0 or 1).
fn insert_requantize(
    g: &mut Graph,
    order: &mut Vec<OpId>,
    kinds: &mut Vec<Kind>,
    stats: &mut Vec<crate::observer::ValueStats>,
    v: ValueId,
) -> Result<usize, String> {
    let kind_of: HashMap<OpId, Kind> = order.iter().copied().zip(kinds.iter().copied()).collect();
    let shared_uses: Vec<(OpId, usize)> = g
        .uses(v)
        .filter(|&(op, slot)| match kind_of.get(&op) {
            Some(Kind::Shared(slots)) => slots.contains(&slot),
            Some(Kind::SharedAll) => true,
            _ => false,
        })
        .collect();
    if shared_uses.is_empty() {
        return Ok(0);
    }
    let val = g.value(v).clone();
    let c = g.add_value(Value::new(format!("{}/requantized", val.name), val.ty));
    debug_assert_eq!(c.index(), stats.len());
    stats.resize(g.value_count(), Default::default());
    stats[c.index()] = stats[v.index()].clone();
    for (op, slot) in shared_uses {
        g.set_input(op, slot, Some(c));
    }
    let id = g.add_op(Operation::new(Op::Quantize, vec![Some(v)], vec![c])).map_err(|e| e.to_string())?;
    // Right after the producer keeps `order` topological.
    let at = g.producer(v).and_then(|p| order.iter().position(|&o| o == p)).map_or(0, |i| i + 1);
    order.insert(at, id);
    kinds.insert(at, Kind::Free);
    Ok(1)
}

/// Replaces each DENSIFY of a constant sparse f32 tensor (TFLite's sparse-weight pattern)
/// by the dense constant, so its weighted consumer sees plain weights: the quantized copy
/// is dense anyway. Returns the number of ops removed.
fn densify_constants(g: &mut Graph) -> Result<usize, String> {
    let ids: Vec<OpId> = g.op_ids().filter(|&id| matches!(g.op(id).op, Op::Densify)).collect();
    let mut removed = 0;
    for id in ids {
        let o = g.op(id);
        let (Some(src), [out]) = (o.input(0), o.outputs.as_slice()) else { continue };
        let out = *out;
        if !g.value(src).is_constant() || !is_f32(g, src) || !is_f32(g, out) {
            continue;
        }
        let data = const_f32(g, src)
            .ok_or_else(|| format!("densify of '{}': the sparse constant cannot be decoded", g.value(src).name))?;
        let ty = g.value(out).ty.clone();
        if data.len() != ty.shape.iter().product::<usize>() {
            return Err(format!(
                "densify of '{}': {} elements for the result shape {:?}",
                g.value(src).name,
                data.len(),
                ty.shape
            ));
        }
        let name = g.value(out).name.clone();
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let c = g.add_const(name, TensorType::new(DType::F32, ty.shape.clone()), Constant::new(Bytes::from(bytes)));
        g.remove_op(id);
        g.replace_all_uses(out, c);
        removed += 1;
    }
    Ok(removed)
}

/// Separates the ops of kind [`Kind::Float`] from the quantized rest of the graph. Every
/// f32 value such an op reads or writes stays float; where a float value meets a quantized
/// op or a graph output, it is split in two:
/// * produced by a quantized op or a graph input, read by a float op: the float readers
///   get `DEQUANTIZE(v)` instead;
/// * produced by a float op, read by a quantized op or a graph output: the float op now
///   writes a new float value and `v` (keeping its id, so signatures still name it)
///   becomes `QUANTIZE` of it.
///
/// Constants read by float ops stay float constants. Returns which values stay float (by
/// index) and the number of ops added; `order`, `kinds` and `stats` follow the new ops
/// and values (a split value's float half shares its statistics).
fn isolate_float_ops(
    g: &mut Graph,
    order: &mut Vec<OpId>,
    kinds: &mut Vec<Kind>,
    stats: &mut Vec<crate::observer::ValueStats>,
) -> Result<(Vec<bool>, usize), String> {
    let is_float_op: HashMap<OpId, bool> = order.iter().copied().zip(kinds.iter().map(|&k| k == Kind::Float)).collect();
    let float_op = |id: OpId| is_float_op.get(&id).copied().unwrap_or(false);
    let mut float_side: Vec<ValueId> = Vec::new();
    let mut seen = vec![false; g.value_count()];
    for (&id, &k) in order.iter().zip(kinds.iter()) {
        if k != Kind::Float {
            continue;
        }
        let o = g.op(id);
        for &v in o.inputs.iter().flatten().chain(&o.outputs) {
            if is_f32(g, v) && !seen[v.index()] {
                seen[v.index()] = true;
                float_side.push(v);
            }
        }
    }
    let mut keep_float = vec![false; g.value_count()];
    let mut added = 0;
    let twin = |g: &mut Graph, stats: &mut Vec<crate::observer::ValueStats>, v: ValueId, suffix: &str| {
        let mut val = Value::new(format!("{}/{suffix}", g.value(v).name), g.value(v).ty.clone());
        val.shape_signature = g.value(v).shape_signature.clone();
        let f = g.add_value(val);
        stats.resize(g.value_count(), Default::default());
        stats[f.index()] = stats[v.index()].clone();
        f
    };
    for v in float_side {
        if g.value(v).is_constant() {
            keep_float[v.index()] = true;
            continue;
        }
        let producer = g.producer(v);
        let produced_float = producer.is_some_and(float_op);
        let uses: Vec<(OpId, usize)> = g.uses(v).collect();
        if produced_float {
            let quantized_readers: Vec<(OpId, usize)> = uses.iter().copied().filter(|&(op, _)| !float_op(op)).collect();
            if quantized_readers.is_empty() && !g.outputs.contains(&v) {
                keep_float[v.index()] = true;
                continue;
            }
            // The float op writes `f`; `v` becomes QUANTIZE(f).
            let p = producer.expect("produced_float implies a producer");
            let f = twin(g, stats, v, "float");
            for &(op, slot) in uses.iter().filter(|&&(op, _)| float_op(op)) {
                g.set_input(op, slot, Some(f));
            }
            let mut operation = g.remove_op(p).ok_or_else(|| "float op vanished".to_string())?;
            for r in &mut operation.outputs {
                if *r == v {
                    *r = f;
                }
            }
            let new_p = g.add_op(operation).map_err(|e| e.to_string())?;
            let at = order.iter().position(|&o| o == p).ok_or_else(|| "float op not in order".to_string())?;
            order[at] = new_p;
            let q = g.add_op(Operation::new(Op::Quantize, vec![Some(f)], vec![v])).map_err(|e| e.to_string())?;
            order.insert(at + 1, q);
            kinds.insert(at + 1, Kind::Free);
            keep_float.resize(g.value_count(), false);
            keep_float[f.index()] = true;
            added += 1;
        } else {
            // Produced by a quantized op or a graph input: float readers get a DEQUANTIZE.
            let f = twin(g, stats, v, "dequantized");
            for &(op, slot) in uses.iter().filter(|&&(op, _)| float_op(op)) {
                g.set_input(op, slot, Some(f));
            }
            let d = g.add_op(Operation::new(Op::Dequantize, vec![Some(v)], vec![f])).map_err(|e| e.to_string())?;
            let at = producer.and_then(|p| order.iter().position(|&o| o == p)).map_or(0, |i| i + 1);
            order.insert(at, d);
            kinds.insert(at, Kind::Free);
            keep_float.resize(g.value_count(), false);
            keep_float[f.index()] = true;
            added += 1;
        }
    }
    keep_float.resize(g.value_count(), false);
    Ok((keep_float, added))
}

/// Quantizes `g` in place. Errors are messages for [`npuc_pass::PassError::Failed`].
pub fn quantize_graph(g: &mut Graph, cfg: &QuantizeConfig) -> Result<QuantizeStats, String> {
    quantize_graph_in(g, None, cfg)
}

/// [`quantize_graph`] for graph `g` at index `module.1` of `module.0`, whose IF/WHILE ops
/// call other graphs of the module (calibration runs them; they are not rewritten).
pub fn quantize_graph_in(
    g: &mut Graph,
    module: Option<(&Module, usize)>,
    cfg: &QuantizeConfig,
) -> Result<QuantizeStats, String> {
    let densified = densify_constants(g)?;
    let mut order = g.topo_order().map_err(|e| e.to_string())?;
    let mut kinds = Vec::with_capacity(order.len());
    for (i, &id) in order.iter().enumerate() {
        let o = g.op(id);
        let k = classify(&o.op, cfg.act)
            .map_err(|why| format!("op #{i} '{}' cannot be quantized: {why}", o.op.display_name()))?;
        for &v in o.inputs.iter().flatten().chain(&o.outputs) {
            let dt = g.value(v).ty.dtype;
            if dt.is_float() && dt != DType::F32 {
                return Err(format!(
                    "op #{i} '{}' has a {dt} operand '{}': only f32 graphs are quantized (run canonicalize first to fold f16 weights)",
                    o.op.display_name(),
                    g.value(v).name
                ));
            }
        }
        if let Kind::Weighted { w, .. } = k {
            let Some(wv) = o.input(w) else {
                return Err(format!("op #{i} '{}' has no weights", o.op.display_name()));
            };
            if !g.value(wv).is_constant() || !is_f32(g, wv) || const_f32(g, wv).is_none() {
                return Err(format!(
                    "op #{i} '{}': weights '{}' are not a dense f32 constant",
                    o.op.display_name(),
                    g.value(wv).name
                ));
            }
        }
        kinds.push(k);
    }
    let layers = npuc_pass::weighted_layers(g);
    if let Some(c) = &cfg.config {
        let names: Vec<String> = layers.iter().map(|(_, n)| n.clone()).collect();
        c.check_layers(&names).map_err(|e| e.to_string())?;
    }

    // Calibration (through the graphs IF/WHILE call, when the module is at hand).
    let samples = load_samples(g, &cfg.data)?;
    let mut stats = calibrate_in(g, module, &samples, cfg.observer.needs_histogram())?;

    // Ops that stay float get DEQUANTIZE/QUANTIZE at their boundaries.
    let (mut keep_float, boundary_ops) = isolate_float_ops(g, &mut order, &mut kinds, &mut stats)?;

    // Weight and bias slots: not activations.
    let mut weight_slot: HashMap<(OpId, usize), ()> = HashMap::new();
    for (&id, &k) in order.iter().zip(&kinds) {
        if let Kind::Weighted { w, b, .. } = k {
            weight_slot.insert((id, w), ());
            weight_slot.insert((id, b), ());
        }
    }

    // Groups and ranges. A fixed-parameter value whose group needs a wider range gets a
    // requantizing QUANTIZE in front of its shared consumers; the groups are then rebuilt.
    let mut requantized = 0;
    let (groups, fixed, act_values) = loop {
        let (mut groups, fixed) = build_groups(g, &order, &kinds, cfg.act);
        keep_float.resize(g.value_count(), false);
        let act_values = collect_act_values(g, &order, &weight_slot, &keep_float);
        let split = conflicting_fixed_values(g, &mut groups, &fixed, &act_values, &stats, cfg);
        if split.is_empty() {
            break (groups, fixed, act_values);
        }
        for v in split {
            requantized += insert_requantize(g, &mut order, &mut kinds, &mut stats, v)?;
        }
    };
    let mut groups = groups;
    let mut group_range: HashMap<usize, (f32, f32)> = HashMap::new();
    let mut group_fixed: HashMap<usize, ActParams> = HashMap::new();
    for &v in &act_values {
        let r = groups.find(v.index());
        let (lo, hi) = value_range(g, &stats, v, cfg);
        let e = group_range.entry(r).or_insert((lo, hi));
        *e = (e.0.min(lo), e.1.max(hi));
        if let Some(p) = fixed[v.index()] {
            group_fixed.entry(r).or_insert(p);
        }
    }
    let mut params: HashMap<ValueId, ActParams> = HashMap::new();
    for &v in &act_values {
        let r = groups.find(v.index());
        let p = group_fixed.get(&r).copied().unwrap_or_else(|| {
            let (lo, hi) = group_range[&r];
            act_params(lo, hi, cfg.act)
        });
        params.insert(v, p);
    }
    let act_dtype = match cfg.act {
        ActType::Int8 => DType::I8,
        ActType::Int16 => DType::I16,
    };

    // Rewrite activation slots: non-constant values change type in place; constants in
    // activation slots are replaced by quantized copies. A constant read both by a
    // parameter-sharing op (a PADV2 pad value) and by a requantizing op (a MUL by the same
    // scalar) gets a second copy with its own range for the latter, as TFLite's converter
    // does: the shared group's parameters need not represent it well (0.5 in a group
    // scaled for [-1.4, 6.8] loses the exact product's rounding behaviour).
    let quantize_const = |g: &mut Graph, v: ValueId, p: ActParams, suffix: &str| -> Option<ValueId> {
        let data = const_f32(g, v)?;
        let val = g.value(v);
        let (name, shape) = (format!("{}/{suffix}", val.name), val.ty.shape.clone());
        let bytes: Vec<u8> = match cfg.act {
            ActType::Int8 => data.iter().map(|&x| p.quantize(x, cfg.act) as i8 as u8).collect(),
            ActType::Int16 => data.iter().flat_map(|&x| (p.quantize(x, cfg.act) as i16).to_le_bytes()).collect(),
        };
        Some(int_const(g, name, shape, act_dtype, Quantization::per_tensor(p.scale, p.zero_point), bytes))
    };
    let mut const_copies: HashMap<ValueId, ValueId> = HashMap::new();
    let mut own_copies: HashMap<ValueId, ValueId> = HashMap::new();
    for &v in &act_values {
        let p = params[&v];
        if let Some(c) = quantize_const(g, v, p, "quantized") {
            const_copies.insert(v, c);
            let (lo, hi) = value_range(g, &stats, v, cfg);
            let own = act_params(lo, hi, cfg.act);
            if own != p {
                if let Some(c) = quantize_const(g, v, own, "quantized_own") {
                    own_copies.insert(v, c);
                }
            }
        } else {
            let val = g.value_mut(v);
            val.ty.dtype = act_dtype;
            val.ty.quant = Some(Quantization::per_tensor(p.scale, p.zero_point));
        }
    }
    for (&id, &k) in order.iter().zip(&kinds) {
        if k == Kind::Float {
            continue;
        }
        let slots: Vec<(usize, ValueId)> =
            g.op(id).inputs.iter().enumerate().filter_map(|(s, v)| v.map(|v| (s, v))).collect();
        for (s, v) in slots {
            if weight_slot.contains_key(&(id, s)) {
                continue;
            }
            let own = matches!(k, Kind::Free | Kind::Fixed);
            if let Some(&c) = own.then(|| own_copies.get(&v)).flatten().or_else(|| const_copies.get(&v)) {
                g.set_input(id, s, Some(c));
            }
        }
    }

    // Weights and biases.
    let layer_names: HashMap<OpId, String> = layers.into_iter().collect();
    let mut layer_notes = Vec::new();
    for (&id, &k) in order.iter().zip(&kinds) {
        let Kind::Weighted { w, b, axis } = k else { continue };
        let o = g.op(id).clone();
        let name = layer_names.get(&id).cloned().unwrap_or_default();
        let bits = cfg.config.as_ref().and_then(|c| c.resolve(&name).bits).unwrap_or(cfg.bits);
        let data_slot = if matches!(o.op, Op::TransposeConv(_)) { 2 } else { 0 };
        let in_scale = o.input(data_slot).and_then(|v| params.get(&v)).map(|p| p.scale).ok_or_else(|| {
            format!("layer '{name}' ({}): its input is not a quantized float value", o.op.display_name())
        })?;
        let wv = o.input(w).ok_or_else(|| format!("layer '{name}' has no weights"))?;
        let wdata = const_f32(g, wv).ok_or_else(|| format!("layer '{name}': weights are not a dense f32 constant"))?;
        let wshape = g.value(wv).ty.shape.clone();
        let bias_max: i64 = match cfg.act {
            ActType::Int8 => i32::MAX as i64,
            ActType::Int16 => i64::MAX / 2,
        };
        let bias = match o.input(b) {
            Some(bv) => {
                Some((bv, const_f32(g, bv).ok_or_else(|| format!("layer '{name}': bias is not a dense f32 constant"))?))
            }
            None => None,
        };
        let floor = bias.as_ref().map(|(_, bd)| bias_min_weight_scales(bd, in_scale, bias_max as f64));
        let qw = quantize_weights(&wdata, &wshape, axis, bits, floor.as_deref());
        let (smin, smax) = qw.scales.iter().fold((f32::INFINITY, 0f32), |(a, b), &s| (a.min(s), b.max(s)));
        layer_notes.push(format!("layer '{name}': {bits} bits, weight scales {smin:.3e}..{smax:.3e}"));
        let wq = Quantization::per_channel(qw.scales.clone(), vec![0; qw.scales.len()], axis as u32);
        let wname = format!("{}/quantized", g.value(wv).name);
        let bytes: Vec<u8> = qw.values.iter().map(|&x| x as u8).collect();
        let nw = int_const(g, wname, wshape, DType::I8, wq, bytes);
        g.set_input(id, w, Some(nw));
        if let Some((bv, bd)) = bias {
            let (ints, scales) = quantize_bias(&bd, in_scale, &qw.scales, bias_max);
            let bq = Quantization::per_channel(scales, vec![0; ints.len()], 0);
            let (dtype, bytes): (DType, Vec<u8>) = match cfg.act {
                ActType::Int8 => (DType::I32, ints.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect()),
                ActType::Int16 => (DType::I64, ints.iter().flat_map(|&x| x.to_le_bytes()).collect()),
            };
            let bname = format!("{}/quantized", g.value(bv).name);
            let bshape = g.value(bv).ty.shape.clone();
            let nb = int_const(g, bname, bshape, dtype, bq, bytes);
            g.set_input(id, b, Some(nb));
        }
    }

    // Op attributes and versions (float ops keep theirs).
    for (&id, &k) in order.iter().zip(&kinds) {
        if k == Kind::Float {
            continue;
        }
        if cfg.act == ActType::Int16 {
            // General (non power-of-two) int16 scales need the rescaling ADD/SUB kernels.
            if let Op::Add { pot_scale_int16, .. } | Op::Sub { pot_scale_int16, .. } = g.op_kind_mut(id) {
                *pot_scale_int16 = false;
            }
        }
        let v = quantized_version(g, g.op(id), cfg.act);
        *g.op_version_mut(id) = v;
    }

    // Float graph inputs and outputs.
    let mut ops_added = requantized + boundary_ops;
    if boundary_ops > 0 {
        let kept = kinds.iter().filter(|&&k| k == Kind::Float).count();
        layer_notes.push(format!(
            "kept {kept} op(s) float (control flow, comparisons, products) with {boundary_ops} QUANTIZE/DEQUANTIZE at their boundaries"
        ));
    }
    if densified > 0 {
        layer_notes.push(format!("densified {densified} sparse weight constant(s)"));
    }
    if requantized > 0 {
        layer_notes.push(format!(
            "requantized {requantized} fixed-range output(s) (logistic/softmax/tanh) into a wider shared range"
        ));
    }
    if cfg.io_float {
        ops_added += keep_float_io(g, &act_values, cfg.act)?;
    }
    Ok(QuantizeStats {
        values: act_values.len(),
        samples: samples.len(),
        ops_added,
        ops_removed: densified,
        layer_notes,
    })
}

/// Puts float types back on the graph inputs and outputs, with a QUANTIZE after each input
/// and a DEQUANTIZE before each output. The float values keep their ids (signatures point
/// at them); the integer values are new.
fn keep_float_io(g: &mut Graph, act_values: &[ValueId], act: ActType) -> Result<usize, String> {
    let quantized: std::collections::HashSet<ValueId> = act_values.iter().copied().collect();
    let mut added = 0;
    let float_ty = |t: &TensorType| TensorType::new(DType::F32, t.shape.clone());
    for v in g.inputs.clone() {
        if !quantized.contains(&v) {
            continue;
        }
        let qty = g.value(v).ty.clone();
        let q = g.add_value(Value::new(format!("{}/quantized", g.value(v).name), qty.clone()));
        let outputs_before = g.outputs.clone();
        g.replace_all_uses(v, q);
        g.outputs = outputs_before;
        g.value_mut(v).ty = float_ty(&qty);
        let mut op = Operation::new(Op::Quantize, vec![Some(v)], vec![q]);
        op.version = quantized_version(g, &op, act);
        g.add_op(op).map_err(|e| e.to_string())?;
        added += 1;
    }
    let mut done = std::collections::HashSet::new();
    for o in g.outputs.clone() {
        if !quantized.contains(&o) || !done.insert(o) {
            continue;
        }
        let qty = g.value(o).ty.clone();
        if !qty.dtype.is_int() {
            // A graph input that is also an output was restored to float above.
            continue;
        }
        let q = g.add_value(Value::new(format!("{}/quantized", g.value(o).name), qty.clone()));
        let uses: Vec<(OpId, usize)> = g.uses(o).collect();
        for (op, slot) in uses {
            g.set_input(op, slot, Some(q));
        }
        if let Some(p) = g.producer(o) {
            let mut op = g.remove_op(p).ok_or_else(|| "producer vanished".to_string())?;
            for r in &mut op.outputs {
                if *r == o {
                    *r = q;
                }
            }
            g.add_op(op).map_err(|e| e.to_string())?;
        }
        g.value_mut(o).ty = float_ty(&qty);
        let mut op = Operation::new(Op::Dequantize, vec![Some(q)], vec![o]);
        op.version = quantized_version(g, &Operation::new(Op::Dequantize, vec![Some(q)], vec![]), act);
        g.add_op(op).map_err(|e| e.to_string())?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONVS: &str = r#"
graph @main(%x: tensor<1x1x1x2xf32> {name = "x"}) {
  %w = const dense<[1.0, -0.5, 0.25, 0.3]> : tensor<2x1x1x2xf32> {name = "w"}
  %a = conv_2d(%x, %w) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x2xf32> {name = "body/conv_a"}
  %b = conv_2d(%a, %w) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x1x1x2xf32> {name = "head/conv_b"}
  %s = logistic(%b) : tensor<1x1x1x2xf32> {name = "s"}
  return %s
}
"#;

    fn config(config: Option<&str>) -> QuantizeConfig {
        QuantizeConfig {
            act: ActType::Int8,
            bits: 8,
            io_float: false,
            data: CalibrationData::Synthetic { count: 4, seed: 1 },
            observer: ObserverKind::MinMax,
            config: config.map(|t| CompressionConfig::parse(t, "test.toml").unwrap()),
        }
    }

    fn weights_of(g: &Graph, layer: &str) -> Vec<i8> {
        let id = g.op_ids().find(|&id| g.value(g.op(id).outputs[0]).name == layer).unwrap();
        let w = g.op(id).input(1).unwrap();
        assert_eq!(g.value(w).ty.dtype, DType::I8);
        g.value(w).data.as_ref().unwrap().bytes().unwrap().iter().map(|&b| b as i8).collect()
    }

    #[test]
    fn per_layer_bits_come_from_the_config() {
        let mut g = npuc_ir::parse_module(TWO_CONVS).unwrap().graphs.remove(0);
        let cfg = config(Some("version = 1\n[[layer]]\nmatch = \"head/*\"\nbits = 2\n"));
        let stats = quantize_graph(&mut g, &cfg).unwrap();
        assert_eq!(weights_of(&g, "body/conv_a"), vec![127, -64, 106, 127]);
        assert_eq!(weights_of(&g, "head/conv_b"), vec![1, -1, 1, 1]);
        assert!(stats.layer_notes.iter().any(|n| n.contains("head/conv_b': 2 bits")), "{:?}", stats.layer_notes);
        npuc_ir::verify_graph(&g).unwrap();
    }

    #[test]
    fn unmatched_config_rules_are_errors() {
        let mut g = npuc_ir::parse_module(TWO_CONVS).unwrap().graphs.remove(0);
        let cfg = config(Some("version = 1\n[[layer]]\nmatch = \"tail/*\"\nbits = 4\n"));
        let err = quantize_graph(&mut g, &cfg).unwrap_err();
        assert!(err.contains("tail/*"), "{err}");
    }

    #[test]
    fn logistic_output_is_fixed_and_conv_is_versioned() {
        let mut g = npuc_ir::parse_module(TWO_CONVS).unwrap().graphs.remove(0);
        quantize_graph(&mut g, &config(None)).unwrap();
        let out = g.value(g.outputs[0]);
        assert_eq!(out.ty.quant, Some(Quantization::per_tensor(1.0 / 256.0, -128)));
        assert!(g.op_ids().filter(|&id| matches!(g.op(id).op, Op::Conv2d(_))).all(|id| g.op(id).version == 3));
    }
}
