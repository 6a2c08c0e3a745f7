//! NPU/CPU partitioning: which ops a target's NPU runs and which fall back to the CPU.
//!
//! Every op is checked, in topological order, against the target description
//! (`targets/*.toml` through `npuc-target`): the op must be listed under `[ops]`, its data
//! tensors must have a listed dtype, its weights a listed weight dtype and be constant, its
//! kernel, strides and weight sum must be within the op's limits, its tensors within the
//! target's dimension and batch limits, and its fused activation one the NPU applies. The
//! first rule an op breaks is its reason for running on the CPU; the reasons name the limit
//! so a user sees what to change. Consecutive ops on the same device form a [`Segment`],
//! the unit a later step hands to the NPU command stream or to the embedded CPU subgraph.
//!
//! The rules mirror Vela's `tflite_supported_operators.py` where the target files cite it
//! (per-output-channel weight sums, batch checked on 4-D IFMs, fully connected exempt from
//! the batch limit); the constraints a target keeps only as a `note` are not enforced here.

use std::fmt::Write as _;

use npuc_ir::{DType, Graph, IrError, Op, OpId, Operation, Value, ValueId};
use npuc_target::{OpSupport, Target};
use thiserror::Error;

/// Where an op runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// On the target's NPU.
    Npu,
    /// On the host CPU (TFLite reference kernels), as a fallback.
    Cpu,
}

impl Device {
    /// Lower-case name for reports (`npu`, `cpu`).
    pub fn name(self) -> &'static str {
        match self {
            Device::Npu => "npu",
            Device::Cpu => "cpu",
        }
    }
}

/// A maximal run of consecutive ops (in topological order) on one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Device of every op in the run.
    pub device: Device,
    /// The ops, in execution order.
    pub ops: Vec<OpId>,
}

/// The result of [`partition`]: a device per op, and the ops grouped into segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Target name the decisions were made for.
    pub target: String,
    /// Every op in topological order with its device and, for CPU ops, why.
    pub assignments: Vec<(OpId, Device, Option<String>)>,
    /// Maximal same-device runs of `assignments`, in order.
    pub segments: Vec<Segment>,
}

/// Errors of [`partition`].
#[derive(Debug, Error)]
pub enum PartitionError {
    /// The graph has no topological order.
    #[error("graph '{graph}': cannot partition: {source}")]
    Order {
        /// Graph name.
        graph: String,
        /// The IR's error (a cycle).
        source: IrError,
    },
}

impl Partition {
    /// Number of ops assigned to the NPU.
    pub fn npu_ops(&self) -> usize {
        self.assignments.iter().filter(|(_, d, _)| *d == Device::Npu).count()
    }

    /// Number of ops falling back to the CPU.
    pub fn cpu_ops(&self) -> usize {
        self.assignments.iter().filter(|(_, d, _)| *d == Device::Cpu).count()
    }

    /// The device of an op, if the op was partitioned.
    pub fn device_of(&self, op: OpId) -> Option<Device> {
        self.assignments.iter().find(|(id, _, _)| *id == op).map(|(_, d, _)| *d)
    }

    /// The CPU ops with their reasons, in order.
    pub fn cpu_reasons(&self) -> impl Iterator<Item = (OpId, &str)> + '_ {
        self.assignments
            .iter()
            .filter(|(_, d, _)| *d == Device::Cpu)
            .map(|(id, _, r)| (*id, r.as_deref().unwrap_or("unspecified")))
    }

    /// A human-readable summary: counts, segments and one line per CPU op with its reason.
    pub fn report(&self, g: &Graph) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "partition for {}: {} NPU ops, {} CPU ops, {} segments",
            self.target,
            self.npu_ops(),
            self.cpu_ops(),
            self.segments.len()
        );
        for (i, seg) in self.segments.iter().enumerate() {
            let _ = writeln!(s, "  segment {i}: {} x{}", seg.device.name(), seg.ops.len());
        }
        for (id, reason) in self.cpu_reasons() {
            let name = g.get_op(id).map_or("<removed>", |o| o.op.display_name());
            let _ = writeln!(s, "  cpu #{} {name}: {reason}", id.index());
        }
        s
    }
}

/// Decides NPU or CPU for every op of `g` (see the module docs for the rules).
pub fn partition(g: &Graph, target: &Target) -> Result<Partition, PartitionError> {
    let order = g.topo_order().map_err(|source| PartitionError::Order { graph: g.name.clone(), source })?;
    let mut assignments = Vec::with_capacity(order.len());
    let mut segments: Vec<Segment> = Vec::new();
    for id in order {
        let reason = cpu_reason(g, g.op(id), target);
        let device = if reason.is_some() { Device::Cpu } else { Device::Npu };
        match segments.last_mut() {
            Some(seg) if seg.device == device => seg.ops.push(id),
            _ => segments.push(Segment { device, ops: vec![id] }),
        }
        assignments.push((id, device, reason));
    }
    Ok(Partition { target: target.name.clone(), assignments, segments })
}

/// Operand roles that the checks treat differently.
struct Roles {
    /// Operand slots holding feature-map data (checked for dtype and dimensions).
    data: Vec<usize>,
    /// The weight operand slot, for ops with weights.
    weight: Option<usize>,
    /// Whether outputs are data (not index or shape results).
    outputs_are_data: bool,
}

/// Which operands of an op are data, which are weights; the rest (bias, axes, shapes,
/// paddings, sizes) are parameters whose int32/int64 types say nothing about the NPU.
fn roles(op: &Operation) -> Roles {
    let only = |slots: &[usize]| Roles { data: slots.to_vec(), weight: None, outputs_are_data: true };
    match &op.op {
        Op::Conv2d(_) | Op::DepthwiseConv2d(_) | Op::FullyConnected(_) => {
            Roles { data: vec![0], weight: Some(1), outputs_are_data: true }
        }
        Op::TransposeConv(_) => Roles { data: vec![2], weight: Some(1), outputs_are_data: true },
        Op::Split { .. } => only(&[1]),
        Op::ArgMax { .. } | Op::Shape { .. } => Roles { data: vec![0], weight: None, outputs_are_data: false },
        Op::Reshape { .. }
        | Op::Squeeze { .. }
        | Op::ExpandDims
        | Op::Mean { .. }
        | Op::Sum { .. }
        | Op::SplitV { .. }
        | Op::Pad
        | Op::PadV2
        | Op::StridedSlice(_)
        | Op::Slice
        | Op::Transpose
        | Op::BatchToSpaceNd
        | Op::SpaceToBatchNd
        | Op::ResizeBilinear(_)
        | Op::ResizeNearestNeighbor(_)
        | Op::Gather { .. } => only(&[0]),
        _ => only(&(0..op.inputs.len()).collect::<Vec<_>>()),
    }
}

/// Why `op` cannot run on the NPU of `target`, or `None` if it can.
fn cpu_reason(g: &Graph, op: &Operation, target: &Target) -> Option<String> {
    let mnemonic = op.op.mnemonic();
    if let Op::Opaque(o) = &op.op {
        return Some(format!("custom/opaque op '{}' never runs on an NPU", o.name));
    }
    let roles = roles(op);
    let data_in = roles.data.iter().filter_map(|&i| op.input(i).map(|v| ("input", v)));
    let data_out = op.outputs.iter().filter(|_| roles.outputs_are_data).map(|&v| ("output", v));
    let data: Vec<(&str, ValueId)> = data_in.chain(data_out).collect();
    let support = target.ops.get(mnemonic);
    // Floats first: for an unquantized model "float" is the one reason worth reading, even
    // on ops the target does not list at all.
    let listed = |dt: DType| support.is_some_and(|s| s.dtypes.iter().any(|a| a == dt.name()));
    if let Some(&(role, v)) =
        data.iter().find(|&&(_, v)| g.value(v).ty.dtype.is_float() && !listed(g.value(v).ty.dtype))
    {
        let val = g.value(v);
        return Some(format!(
            "float: {role} '{}' is {}; {} runs integer ops only",
            val.name, val.ty.dtype, target.name
        ));
    }
    let Some(support) = support else {
        return Some(format!("{mnemonic} not supported by {}", target.name));
    };
    for &(role, v) in &data {
        let val = g.value(v);
        if !support.dtypes.iter().any(|a| a == val.ty.dtype.name()) {
            return Some(format!(
                "dtype: {role} '{}' is {}, not in [{}]",
                val.name,
                val.ty.dtype,
                support.dtypes.join(", ")
            ));
        }
    }
    if let Some(r) = weight_reason(g, op, &roles, support) {
        return Some(r);
    }
    if let Some(r) = geometry_reason(g, op, support) {
        return Some(r);
    }
    for &(role, v) in &data {
        let val = g.value(v);
        if let Some(&d) = val.ty.shape.iter().find(|&&d| d as u64 > u64::from(target.limits.tensor_dim_max)) {
            return Some(format!(
                "tensor_dim_max: {role} '{}' has dimension {d} > {}",
                val.name, target.limits.tensor_dim_max
            ));
        }
    }
    if let Some(r) = batch_reason(g, op, &roles, target) {
        return Some(r);
    }
    if let Some(act) = op.op.fused_activation() {
        if !target.limits.fused_activations.iter().any(|a| a == act.name()) {
            return Some(format!(
                "fused activation {} not in [{}]",
                act.name(),
                target.limits.fused_activations.join(", ")
            ));
        }
    }
    None
}

/// The batch limit, as Vela's `constraint_batch_size`: on the first two non-constant data
/// inputs, batch being dimension 0 of a 4-D tensor (lower ranks have batch 1), with Vela's
/// exceptions for ops that treat leading dimensions as plain rows.
fn batch_reason(g: &Graph, op: &Operation, roles: &Roles, target: &Target) -> Option<String> {
    let exempt = matches!(
        op.op,
        Op::FullyConnected(_)
            | Op::Softmax { .. }
            | Op::Reshape { .. }
            | Op::Shape { .. }
            | Op::Squeeze { .. }
            | Op::Split { .. }
            | Op::SplitV { .. }
            | Op::StridedSlice(_)
            | Op::Slice
            | Op::Unpack { .. }
    );
    if exempt {
        return None;
    }
    let max = u64::from(target.limits.batch_max);
    let inputs = roles.data.iter().filter_map(|&i| op.input(i)).map(|v| g.value(v)).filter(|v| !v.is_constant());
    inputs
        .take(2)
        .filter(|v| v.ty.rank() == 4)
        .find(|v| v.ty.shape[0] as u64 > max)
        .map(|v| format!("batch_max: input '{}' has batch {} > {}", v.name, v.ty.shape[0], target.limits.batch_max))
}

/// Weight checks: constant, of a listed weight dtype, and within the weight-sum limit.
fn weight_reason(g: &Graph, op: &Operation, roles: &Roles, support: &OpSupport) -> Option<String> {
    let w = roles.weight.and_then(|i| op.input(i))?;
    let val = g.value(w);
    if !val.is_constant() {
        return Some(format!("weights '{}' are not constant", val.name));
    }
    if let Some(allowed) = &support.weight_dtypes {
        if !allowed.iter().any(|a| a == val.ty.dtype.name()) {
            let dt = val.ty.dtype;
            let kind = if dt.is_float() { "float: " } else { "" };
            return Some(format!("{kind}weight dtype: '{}' is {dt}, not in [{}]", val.name, allowed.join(", ")));
        }
    }
    let limit = support.weights_sum_max?;
    let sum = max_channel_weight_sum(op, val)?;
    (sum > limit).then(|| format!("weights_sum_max: weights '{}' sum to {sum} in one channel > {limit}", val.name))
}

/// The largest per-output-channel sum of |w − zero point| (Vela's `constraint_weights_limit`
/// sums over everything but the output channel). `None` when the data is elided, not 8-bit,
/// or does not match the shape.
fn max_channel_weight_sum(op: &Operation, val: &Value) -> Option<u64> {
    let bytes = val.data.as_ref()?.bytes()?;
    let shape = &val.ty.shape;
    let n: usize = shape.iter().product();
    if shape.is_empty() || bytes.len() != n || !matches!(val.ty.dtype, DType::I8 | DType::U8) {
        return None;
    }
    // OHWI / [out, in] filters have the output channel first; depthwise 1HW(C·m) last.
    let channel_last = matches!(op.op, Op::DepthwiseConv2d(_));
    let channels = if channel_last { shape[shape.len() - 1] } else { shape[0] };
    if channels == 0 {
        return Some(0);
    }
    let zp_of = |c: usize| -> i64 {
        val.ty.quant.as_ref().map_or(0, |q| match q.zero_point.len() {
            0 => 0,
            1 => q.zero_point[0],
            _ => q.zero_point.get(c).copied().unwrap_or(0),
        })
    };
    let mut sums = vec![0u64; channels];
    for (i, &b) in bytes.iter().enumerate() {
        let c = if channel_last { i % channels } else { i / (n / channels) };
        let q = if val.ty.dtype == DType::I8 { i64::from(b as i8) } else { i64::from(b) };
        sums[c] += (q - zp_of(c)).unsigned_abs();
    }
    sums.into_iter().max()
}

/// Kernel and stride limits of windowed ops, on the dilated kernel as Vela checks them.
///
/// Strides follow Vela's rewrites and checks: a pool whose window and stride both equal the
/// IFM's height and width is a global pool run with stride 1 (`fixup_pool_strides`), and for
/// conv_2d and average_pool_2d a stride along an OFM dimension of size 1 is never taken
/// (`constraint_stride_width_no_upper_limit`).
fn geometry_reason(g: &Graph, op: &Operation, support: &OpSupport) -> Option<String> {
    let shape_of = |slot: usize| op.input(slot).map(|v| g.value(v).ty.shape.as_slice());
    let filter_hw = |slot: usize| -> Option<[u64; 2]> {
        let shape = shape_of(slot)?;
        (shape.len() == 4).then(|| [shape[1] as u64, shape[2] as u64])
    };
    let dilate = |k: [u64; 2], d: [u32; 2]| {
        [k[0].saturating_sub(1) * u64::from(d[0]) + 1, k[1].saturating_sub(1) * u64::from(d[1]) + 1]
    };
    let (kernel, mut stride) = match &op.op {
        Op::Conv2d(a) => (filter_hw(1).map(|k| dilate(k, a.dilation)), a.stride),
        Op::DepthwiseConv2d(a) => (filter_hw(1).map(|k| dilate(k, a.dilation)), a.stride),
        Op::TransposeConv(a) => (filter_hw(1), a.stride),
        Op::AveragePool2d(a) | Op::MaxPool2d(a) => (Some([u64::from(a.filter[0]), u64::from(a.filter[1])]), a.stride),
        _ => return None,
    };
    if let Some([kh, kw]) = kernel {
        let over = |what: &str, v: u64, max: Option<u32>| {
            max.filter(|&m| v > u64::from(m)).map(|m| format!("{what}: kernel {kh}x{kw} (dilated), {v} > {m}"))
        };
        let r = over("kernel_h_max", kh, support.kernel_h_max)
            .or_else(|| over("kernel_w_max", kw, support.kernel_w_max))
            .or_else(|| over("kernel_area_max", kh * kw, support.kernel_area_max));
        if r.is_some() {
            return r;
        }
    }
    if let (Op::AveragePool2d(a) | Op::MaxPool2d(a), Some(ifm)) = (&op.op, shape_of(0)) {
        let global = ifm.len() == 4
            && a.filter[0] == a.stride[0]
            && a.filter[1] == a.stride[1]
            && a.stride[0] as usize == ifm[1]
            && a.stride[1] as usize == ifm[2];
        if global {
            stride = [1, 1];
        }
    }
    if matches!(op.op, Op::Conv2d(_) | Op::AveragePool2d(_)) {
        if let Some(ofm) = op.outputs.first().map(|&v| &g.value(v).ty.shape).filter(|s| s.len() == 4) {
            for (i, &d) in [ofm[1], ofm[2]].iter().enumerate() {
                if d == 1 {
                    stride[i] = 1;
                }
            }
        }
    }
    let over = |what: &str, v: u32, max: Option<u32>| {
        max.filter(|&m| v > m).map(|m| format!("{what}: stride {}x{}, {v} > {m}", stride[0], stride[1]))
    };
    over("stride_h_max", stride[0], support.stride_h_max)
        .or_else(|| over("stride_w_max", stride[1], support.stride_w_max))
}
