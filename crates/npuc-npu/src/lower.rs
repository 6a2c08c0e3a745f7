//! Lowering a quantized graph to an [`NpuProgram`].
//!
//! Steps: [`partition`] decides NPU or CPU per op against the target; ops the target
//! accepts but npuc has no NPU command for fall back to the CPU too, with that reason. The
//! execution order is the graph's topological order; [`plan_memory`] gives every activation
//! its arena offset. When the arena exceeds the SRAM of a DRAM target, the activations live
//! in DRAM and [`crate::schedule`] cuts every NPU command into stripes staged through the
//! SRAM by DMA; on flash-only targets that is an error. Weighted ops get their weights reordered for the
//! target's micro-block depths and encoded ([`crate::reorder`], [`crate::codec`]) and one
//! scale/bias record per OFM channel with TFLite's per-channel multiplier
//! (`PopulateConvolutionQuantizationParams`: input scale × filter scale / output scale,
//! encoded by `QuantizeMultiplier`). Int8 elementwise functions become 256-entry tables
//! computed by the interpreter's own kernels. Each maximal run of CPU ops becomes one
//! subgraph of the embedded TFLite model, whose inputs and outputs are the run's boundary
//! tensors.

use std::collections::{BTreeMap, BTreeSet};

use npuc_interp::fixed_point::quantize_multiplier;
use npuc_interp::{Data, Tensor};
use npuc_ir::{Activation, DType, Graph, Module, Op, OpId, Operation, Quantization, TensorType, Value, ValueId};
use npuc_target::{ExternalKind, Family, Target};
use thiserror::Error;

use crate::exec::eval_op;
use crate::partition::{partition, Device, PartitionError};
use crate::plan::{plan_memory, MemoryPlan, PlanError, PlanOptions, FLASH_ALIGNMENT};
use crate::program::{
    Command, CpuCall, IoDesc, MapEntry, MemoryMap, NpuCommand, NpuOp, NpuProgram, Region, TensorRef, WeightRef,
};
use crate::reorder::{reorder, scale_bias_record, Accelerator, ReorderParams, Traversal};
use crate::schedule::stripe;

/// Options of [`lower`].
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// The pass pipeline that produced the graph, recorded in the metadata.
    pub pipeline: String,
    /// The compiler's stage table (as JSON), recorded in the metadata when given.
    pub stage_table: Option<serde_json::Value>,
    /// OFM block depth used to reorder weights until the block configuration search
    /// chooses one per op.
    pub ofm_block_depth: usize,
    /// Arena alignment in bytes.
    pub alignment: u64,
    /// Weight streams already encoded (e.g. by the cycle model's estimates of the same graph).
    pub streams: std::sync::Arc<crate::perf::WeightStreams>,
}

impl Default for LowerOptions {
    fn default() -> Self {
        LowerOptions {
            pipeline: String::new(),
            stage_table: None,
            ofm_block_depth: 16,
            alignment: 16,
            streams: Default::default(),
        }
    }
}

/// Why a graph could not be lowered.
#[derive(Debug, Error)]
pub enum LowerError {
    /// The graph computes in floating point.
    #[error("graph '{graph}' is not quantized ({what}); quantize first (e.g. --passes quantize)")]
    Float {
        /// Graph name.
        graph: String,
        /// The float tensor found.
        what: String,
    },
    /// Partitioning failed.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The memory plan failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The feature maps do not fit a target without external RAM.
    #[error(
        "the SRAM arena needs {needed} bytes but {target} has {available} and only flash outside it; \
         a smaller input size or a target with DRAM is needed"
    )]
    SramOverflow {
        /// Target name.
        target: String,
        /// Arena bytes needed.
        needed: u64,
        /// SRAM bytes of the target.
        available: u64,
    },
    /// An op's operands cannot be lowered.
    #[error("op #{index} {op} ('{name}'): {reason}")]
    Op {
        /// Op index in the graph.
        index: usize,
        /// Op mnemonic.
        op: String,
        /// Name of its first result.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A graph input or output cannot be described.
    #[error("graph {role} '{name}': {reason}")]
    Io {
        /// "input" or "output".
        role: &'static str,
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A CPU segment could not be exported to TFLite.
    #[error("CPU segment {segment}: {reason}")]
    CpuSegment {
        /// Segment number.
        segment: usize,
        /// The exporter's error.
        reason: String,
    },
    /// The CPU segments could not be exported as one TFLite model.
    #[error("the CPU model ({segments} segments): {reason}")]
    CpuModel {
        /// Number of segments.
        segments: usize,
        /// The exporter's error.
        reason: String,
    },
}

/// How one op is lowered.
enum Lowering {
    /// An NPU command of this kind.
    Npu(NpuOp),
    /// A byte copy (reshape-like ops).
    Copy,
    /// The CPU, for this reason.
    Cpu(String),
}

/// Lowers a quantized graph for `target`.
pub fn lower(g: &Graph, target: &Target, opts: &LowerOptions) -> Result<NpuProgram, LowerError> {
    check_quantized(g)?;
    // IF/WHILE call other graphs of the module; the CPU model is built from this graph
    // alone, so it could not carry them.
    if let Some(id) = g.op_ids().find(|&id| matches!(g.op(id).op, npuc_ir::Op::If { .. } | npuc_ir::Op::While { .. })) {
        return Err(op_error(
            g,
            id,
            "control flow calls other graphs of the model, which the artifact's CPU part cannot carry yet".into(),
        ));
    }
    let part = partition(g, target)?;
    let order: Vec<OpId> = part.assignments.iter().map(|(id, _, _)| *id).collect();
    let mut devices = Vec::with_capacity(order.len());
    let mut cpu_reasons = Vec::new();
    for (id, device, reason) in &part.assignments {
        let l = match device {
            Device::Cpu => Lowering::Cpu(reason.clone().unwrap_or_default()),
            Device::Npu => lowering_of(g, g.op(*id)),
        };
        if let Lowering::Cpu(r) = &l {
            cpu_reasons.push(serde_json::json!({
                "op": g.op(*id).op.display_name(),
                "index": id.index(),
                "reason": r,
            }));
        }
        devices.push(l);
    }

    let plan = plan_memory(g, &order, &PlanOptions { alignment: opts.alignment, sram_bytes: None })?;
    let sram = target.memory.sram.size_bytes;
    let region = if plan.arena_bytes <= sram {
        Region::Sram
    } else if target.memory.external.kind == ExternalKind::Dram {
        Region::Dram
    } else {
        return Err(LowerError::SramOverflow {
            target: target.name.clone(),
            needed: plan.arena_bytes,
            available: sram,
        });
    };

    let mut b = Builder {
        g,
        plan: &plan,
        region,
        program: NpuProgram::default(),
        opts,
        target,
        constants: BTreeMap::new(),
        cpu_graphs: Vec::new(),
    };
    b.program.target = target.name.clone();
    let mut step = 0;
    let mut segment = 0;
    while step < order.len() {
        let id = order[step];
        match &devices[step] {
            Lowering::Cpu(_) => {
                let end = (step..order.len()).find(|&i| !matches!(devices[i], Lowering::Cpu(_))).unwrap_or(order.len());
                let call = b.cpu_segment(&order[step..end], &order[end..], segment)?;
                b.program.commands.push(Command::Cpu(call));
                segment += 1;
                step = end;
                continue;
            }
            Lowering::Copy => {
                let o = g.op(id);
                let (Some(x), Some(&y)) = (o.input(0), o.outputs.first()) else {
                    return Err(op_error(g, id, "a reshape needs data and a result".into()));
                };
                let src = b.tensor(x, id)?;
                let dst = b.tensor(y, id)?;
                let len = dst.bytes().unwrap_or(0);
                b.program.commands.push(Command::Dma {
                    src_region: src.region,
                    src: src.offset,
                    dst_region: dst.region,
                    dst: dst.offset,
                    len,
                });
            }
            Lowering::Npu(kind) => {
                let cmd = b.npu_command(id, kind.clone())?;
                if region == Region::Dram {
                    let stripes = stripe(&cmd, sram, opts.alignment).map_err(|e| op_error(g, id, e.0))?;
                    b.program.commands.extend(stripes);
                } else {
                    b.program.commands.push(Command::Npu(Box::new(cmd)));
                }
            }
        }
        step += 1;
    }

    for (role, values) in [("input", &g.inputs), ("output", &g.outputs)] {
        for &v in values.iter() {
            let val = g.value(v);
            let Some(offset) = plan.offset_of(v) else {
                return Err(LowerError::Io {
                    role,
                    name: val.name.clone(),
                    reason: "it is a constant, which the artifact does not carry as an I/O tensor".into(),
                });
            };
            let desc = IoDesc { name: val.name.clone(), tensor: tref(region, offset, &val.ty) };
            if role == "input" {
                b.program.inputs.push(desc);
            } else {
                b.program.outputs.push(desc);
            }
        }
    }
    if !b.cpu_graphs.is_empty() {
        let module = Module { graphs: std::mem::take(&mut b.cpu_graphs), ..Default::default() };
        b.program.cpu_model = npuc_tflite::export(&module)
            .map_err(|e| LowerError::CpuModel { segments: module.graphs.len(), reason: e.to_string() })?;
    }
    b.program.memory = memory_map(g, &plan, region);
    if region == Region::Dram {
        b.program.memory.sram_bytes = staging_bytes(&b.program.commands);
    }
    let p = &mut b.program;
    let cpu_ops = devices.iter().filter(|d| matches!(d, Lowering::Cpu(_))).count();
    let npu_ops = devices.len() - cpu_ops;
    let (sram_bytes, dram_bytes) = (p.memory.sram_bytes, p.memory.dram_bytes);
    let report = [
        ("compiler", serde_json::json!(format!("npuc {}", env!("CARGO_PKG_VERSION")))),
        ("pipeline", serde_json::json!(opts.pipeline)),
        ("target", serde_json::json!(target.name)),
        ("graph", serde_json::json!(g.name)),
        ("npu_ops", serde_json::json!(npu_ops)),
        ("cpu_ops", serde_json::json!(cpu_ops)),
        ("cpu_segments", serde_json::json!(segment)),
        ("cpu_reasons", serde_json::Value::Array(cpu_reasons)),
        ("sram_bytes", serde_json::json!(sram_bytes)),
        ("dram_bytes", serde_json::json!(dram_bytes)),
        ("flash_bytes", serde_json::json!(p.flash_bytes())),
        ("encoded_weight_bytes", serde_json::json!(p.encoded_weight_bytes())),
        // Filled by the performance model; null until it runs, never a guess.
        ("cycles", serde_json::Value::Null),
        ("latency_us", serde_json::Value::Null),
        ("energy_uj", serde_json::Value::Null),
    ];
    for (k, v) in report {
        p.metadata.insert(k.to_string(), v);
    }
    if let Some(table) = &opts.stage_table {
        p.metadata.insert("stage_table".into(), table.clone());
    }
    Ok(b.program)
}

/// Rejects graphs with no quantized integer tensor at all, and weighted ops with float
/// weights.
fn check_quantized(g: &Graph) -> Result<(), LowerError> {
    let live = g.live_values();
    let quantized = g.value_ids().filter(|v| live[v.index()]).any(|v| {
        let t = &g.value(v).ty;
        t.dtype.is_int() && t.quant.as_ref().is_some_and(|q| !q.scale.is_empty())
    });
    let float_weight = g.op_ids().map(|id| g.op(id)).find_map(|o| {
        let w =
            matches!(o.op, Op::Conv2d(_) | Op::DepthwiseConv2d(_) | Op::FullyConnected(_)).then(|| o.input(1))??;
        g.value(w).ty.dtype.is_float().then(|| format!("{} weights '{}' are float", o.op.mnemonic(), g.value(w).name))
    });
    match (quantized, float_weight) {
        (true, None) => Ok(()),
        (false, _) => Err(LowerError::Float { graph: g.name.clone(), what: "no quantized integer tensor".into() }),
        (true, Some(what)) => Err(LowerError::Float { graph: g.name.clone(), what }),
    }
}

/// How an op the partition put on the NPU is lowered.
fn lowering_of(g: &Graph, o: &Operation) -> Lowering {
    if matches!(o.op, Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims) {
        return Lowering::Copy;
    }
    let ty = |v: Option<ValueId>| v.map(|v| &g.value(v).ty);
    if o.op.is_unary_elementwise() {
        let int8 = |t: Option<&TensorType>| t.is_some_and(|t| t.dtype == DType::I8);
        return if int8(ty(o.input(0))) && int8(ty(o.outputs.first().copied())) {
            Lowering::Npu(NpuOp::Lut)
        } else {
            Lowering::Cpu(format!("npuc builds {} tables for int8 only", o.op.mnemonic()))
        };
    }
    let Some(kind) = NpuOp::from_ir(&o.op) else {
        return Lowering::Cpu(format!("npuc has no NPU command for {} yet", o.op.mnemonic()));
    };
    for v in o.inputs.iter().flatten() {
        let val = g.value(*v);
        if val.is_constant() && (val.sparsity.is_some() || val.data.as_ref().is_some_and(|d| d.is_elided())) {
            return Lowering::Cpu(format!("constant '{}' is sparse or elided", val.name));
        }
        if val.is_variable {
            return Lowering::Cpu(format!("'{}' is a variable", val.name));
        }
    }
    if let NpuOp::Conv2d { dilation, .. } | NpuOp::DepthwiseConv2d { dilation, .. } = &kind {
        if dilation.iter().any(|&d| d > 2) {
            return Lowering::Cpu(format!(
                "dilation {}x{} needs a kernel decomposition npuc lacks",
                dilation[0], dilation[1]
            ));
        }
    }
    if kind.has_weights() {
        let w = ty(o.input(1));
        if w.is_none_or(|w| w.dtype != DType::I8) {
            return Lowering::Cpu("the weight stream holds int8 weights only".into());
        }
    }
    Lowering::Npu(kind)
}

/// An op-level error.
fn op_error(g: &Graph, id: OpId, reason: String) -> LowerError {
    let o = g.op(id);
    let name = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
    LowerError::Op { index: id.index(), op: o.op.mnemonic().to_string(), name, reason }
}

/// A tensor reference with the quantization's executable part.
fn tref(region: Region, offset: u64, ty: &TensorType) -> TensorRef {
    let quant = ty
        .quant
        .as_ref()
        .filter(|q| !q.scale.is_empty() || !q.zero_point.is_empty())
        .map(|q| Quantization::per_channel(q.scale.clone(), q.zero_point.clone(), q.axis));
    TensorRef { region, offset, dtype: ty.dtype, shape: ty.shape.clone(), quant }
}

/// The accelerator whose micro-block depths a target's weight decoder uses: the Ethos-U
/// configuration of the target's family and MAC count, or, for other NPUs, the one with the
/// target's declared micro-block depth.
pub fn accelerator(target: &Target) -> Accelerator {
    match (target.family, target.compute.macs_per_cycle.i8xi8) {
        (Family::EthosU55, 32) => Accelerator::U55_32,
        (Family::EthosU55, 64) => Accelerator::U55_64,
        (Family::EthosU55, 256) => Accelerator::U55_256,
        (Family::EthosU65, 512) => Accelerator::U65_512,
        (Family::EthosU65, _) => Accelerator::U65_256,
        _ if target.weight_decoder.micro_block_depth == 4 => Accelerator::U55_32,
        _ => Accelerator::U55_128,
    }
}

/// Accumulates the program while walking the order.
struct Builder<'a> {
    g: &'a Graph,
    plan: &'a MemoryPlan,
    region: Region,
    program: NpuProgram,
    opts: &'a LowerOptions,
    target: &'a Target,
    /// Offsets of the constants already in the constants section.
    constants: BTreeMap<ValueId, u64>,
    /// One graph per CPU segment, exported together as the CPU model.
    cpu_graphs: Vec<Graph>,
}

impl Builder<'_> {
    /// The reference of an activation (arena) or constant (appended to the constants).
    fn tensor(&mut self, v: ValueId, id: OpId) -> Result<TensorRef, LowerError> {
        let val = self.g.value(v);
        if let Some(offset) = self.plan.offset_of(v) {
            return Ok(tref(self.region, offset, &val.ty));
        }
        let bytes = val.data.as_ref().and_then(|d| d.bytes()).ok_or_else(|| {
            op_error(self.g, id, format!("operand '{}' is neither an activation nor a constant with data", val.name))
        })?;
        if let Some(&offset) = self.constants.get(&v) {
            return Ok(tref(Region::Flash, offset, &val.ty));
        }
        let c = &mut self.program.constants;
        let offset = (c.len() as u64).div_ceil(FLASH_ALIGNMENT) * FLASH_ALIGNMENT;
        c.resize(offset as usize, 0);
        c.extend_from_slice(bytes);
        self.constants.insert(v, offset);
        Ok(tref(Region::Flash, offset, &val.ty))
    }

    /// One NPU command.
    fn npu_command(&mut self, id: OpId, kind: NpuOp) -> Result<NpuCommand, LowerError> {
        let g = self.g;
        let o = g.op(id);
        let name = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
        let outputs = o.outputs.iter().map(|&v| self.tensor(v, id)).collect::<Result<Vec<_>, _>>()?;
        let height = outputs.first().and_then(|t| (t.shape.len() == 4).then(|| t.shape[1])).unwrap_or(1) as u32;
        let mut cmd = NpuCommand {
            op: kind.clone(),
            name,
            operands: Vec::new(),
            outputs,
            weights: None,
            scale_bias: None,
            lut: None,
            stripe: (0, height),
            clamp: None,
            pad: None,
        };
        if kind.has_weights() {
            let ifm = o.input(0).ok_or_else(|| op_error(g, id, "no input".into()))?;
            cmd.operands = vec![Some(self.tensor(ifm, id)?), None, None];
            let (w, sb) = self.weights(id, &kind)?;
            cmd.weights = Some(w);
            cmd.scale_bias = Some(sb);
            let act = o.op.fused_activation().unwrap_or_default();
            let ofm = o.outputs.first().map(|&v| &g.value(v).ty).ok_or_else(|| op_error(g, id, "no result".into()))?;
            cmd.clamp = Some(clamp(act, ofm).map_err(|r| op_error(g, id, r))?);
        } else {
            for v in &o.inputs {
                let r = match v {
                    Some(v) => Some(self.tensor(*v, id)?),
                    None => None,
                };
                cmd.operands.push(r);
            }
        }
        if kind == NpuOp::Lut {
            cmd.lut = Some(self.lut(id)?);
        }
        Ok(cmd)
    }

    /// The 256-entry table of an int8 elementwise op, computed by the interpreter's kernel.
    fn lut(&mut self, id: OpId) -> Result<u32, LowerError> {
        let g = self.g;
        let o = g.op(id);
        let (Some(x), Some(&y)) = (o.input(0), o.outputs.first()) else {
            return Err(op_error(g, id, "a table op needs one input and one result".into()));
        };
        let mut in_ty = g.value(x).ty.clone();
        in_ty.shape = vec![256];
        let mut out_ty = g.value(y).ty.clone();
        out_ty.shape = vec![256];
        let all = Tensor { shape: vec![256], data: Data::I8((-128..=127).collect()) };
        let t = eval_op(&o.op, &[Some((in_ty, all))], &[out_ty]).map_err(|r| op_error(g, id, r))?;
        let table = t[0].as_i8().ok_or_else(|| op_error(g, id, "table result is not int8".into()))?;
        self.program.luts.push(table.iter().map(|&v| v as u8).collect());
        Ok(self.program.luts.len() as u32 - 1)
    }

    /// Reorders and encodes the weights and packs the scale/bias records of a weighted op.
    fn weights(&mut self, id: OpId, kind: &NpuOp) -> Result<(WeightRef, u32), LowerError> {
        let g = self.g;
        let o = g.op(id);
        let fail = |r: String| op_error(g, id, r);
        let (ifm, w) = match (o.input(0), o.input(1)) {
            (Some(a), Some(b)) => (g.value(a), g.value(b)),
            _ => return Err(fail("missing input or weights".into())),
        };
        let ofm = o.outputs.first().map(|&v| g.value(v)).ok_or_else(|| fail("no result".into()))?;
        let bytes = w
            .data
            .as_ref()
            .and_then(|d| d.bytes())
            .ok_or_else(|| fail(format!("weights '{}' have no data", w.name)))?;
        let s = &w.ty.shape;
        let (ohwi, traversal, channel_last) = match (kind, s.as_slice()) {
            (NpuOp::Conv2d { .. }, &[a, b, c, d]) => ([a, b, c, d], Traversal::DepthFirst, false),
            (NpuOp::DepthwiseConv2d { .. }, &[1, b, c, d]) => ([d, b, c, 1], Traversal::Depthwise, true),
            (NpuOp::FullyConnected { .. }, &[a, d]) => ([a, 1, 1, d], Traversal::DepthFirst, false),
            _ => return Err(fail(format!("weights '{}' have an unexpected shape {s:?}", w.name))),
        };
        let channels = ohwi[0];
        let wq = w.ty.quant.clone().unwrap_or_default();
        let zp = |c: usize| -> i64 {
            match wq.zero_point.len() {
                0 => 0,
                1 => wq.zero_point[0],
                _ => wq.zero_point.get(c).copied().unwrap_or(0),
            }
        };
        // OHWI order with the zero point removed, as the decoder feeds the MACs.
        let (kh, kw) = (ohwi[1], ohwi[2]);
        let mut values = vec![0i16; bytes.len()];
        for (i, &b) in bytes.iter().enumerate() {
            let (c, dst) = if channel_last {
                let c = i % channels;
                let tap = i / channels;
                (c, c * kh * kw + tap)
            } else {
                (i / (bytes.len() / channels.max(1)), i)
            };
            values[dst] = (i64::from(b as i8) - zp(c)) as i16;
        }
        let dilation = match kind {
            NpuOp::Conv2d { dilation, .. } | NpuOp::DepthwiseConv2d { dilation, .. } => {
                (dilation[1] as usize, dilation[0] as usize)
            }
            _ => (1, 1),
        };
        let ifm_bits = if ifm.ty.dtype == DType::I16 { 16 } else { 8 };
        // The stream follows the op's block configuration, as the hardware consumes it (and
        // as Vela encodes it); targets without a block model use the option's depth.
        let block = crate::perf::weight_block(g, self.target, id);
        let ofm_block_depth = block.as_ref().map_or(self.opts.ofm_block_depth, |b| b.ofm_block[2] as usize);
        let traversal = match (traversal, &block) {
            (Traversal::DepthFirst, Some(b)) if b.is_partkernel && ifm_bits == 8 => Traversal::PartKernelFirst,
            (t, _) => t,
        };
        let params =
            ReorderParams { accelerator: accelerator(self.target), ofm_block_depth, traversal, ifm_bits, dilation };
        let reordered = reorder(&values, ohwi, &params).map_err(|e| fail(e.to_string()))?;
        let stream = self.opts.streams.encode(&reordered).map_err(|e| fail(e.to_string()))?;
        self.program.weights.push(stream.as_ref().clone());
        let wref = WeightRef {
            stream: self.program.weights.len() as u32 - 1,
            ohwi,
            accelerator: params.accelerator,
            traversal,
            ofm_block_depth: params.ofm_block_depth,
            ifm_bits,
            dilation,
            tensor: tref(Region::Flash, 0, &w.ty),
        };

        let bias: Vec<i64> = match o.input(2).map(|b| g.value(b)) {
            Some(b) => {
                let d = b
                    .data
                    .as_ref()
                    .and_then(|d| d.bytes())
                    .ok_or_else(|| fail(format!("bias '{}' has no data", b.name)))?;
                let t = Tensor::from_constant(&b.ty, &npuc_ir::Constant::new(d.clone()))
                    .and_then(|t| t.to_i64_vec())
                    .ok_or_else(|| fail(format!("bias '{}' does not decode as {}", b.name, b.ty.dtype)))?;
                if t.len() != channels {
                    return Err(fail(format!("bias '{}' has {} values for {channels} channels", b.name, t.len())));
                }
                t
            }
            None => vec![0; channels],
        };
        let scale_of = |t: &TensorType, what: &str| -> Result<f32, LowerError> {
            t.quant
                .as_ref()
                .and_then(|q| q.scale.first().copied())
                .ok_or_else(|| fail(format!("{what} is not quantized")))
        };
        let (in_scale, out_scale) = (scale_of(&ifm.ty, "input")?, scale_of(&ofm.ty, "output")?);
        let mut records = Vec::with_capacity(channels);
        for (c, &bias) in bias.iter().enumerate() {
            let ws = match wq.scale.len() {
                0 => return Err(fail(format!("weights '{}' are not quantized", w.name))),
                1 => wq.scale[0],
                _ => *wq
                    .scale
                    .get(c)
                    .ok_or_else(|| fail(format!("weights '{}' lack a scale for channel {c}", w.name)))?,
            };
            let m = quantize_multiplier(f64::from(in_scale) * f64::from(ws) / f64::from(out_scale));
            records.push(record(bias, m.multiplier, m.shift).map_err(|r| fail(format!("channel {c}: {r}")))?);
        }
        self.program.scale_bias.push(records);
        Ok((wref, self.program.scale_bias.len() as u32 - 1))
    }

    /// One CPU segment: its ops as a TFLite model whose inputs are the tensors it reads from
    /// outside and whose outputs are the tensors read after it (or graph outputs).
    fn cpu_segment(&mut self, ops: &[OpId], later: &[OpId], segment: usize) -> Result<CpuCall, LowerError> {
        let g = self.g;
        let produced: BTreeSet<ValueId> = ops.iter().flat_map(|&id| g.op(id).outputs.clone()).collect();
        let read_later: BTreeSet<ValueId> =
            later.iter().flat_map(|&id| g.op(id).inputs.iter().flatten().copied().collect::<Vec<_>>()).collect();
        let mut sub = Graph::new(format!("{}_cpu{segment}", g.name));
        let mut map: BTreeMap<ValueId, ValueId> = BTreeMap::new();
        let mut inputs = Vec::new();
        let mut ops_out = Vec::new();
        for &id in ops {
            let o = g.op(id);
            let mut remap = |v: ValueId, sub: &mut Graph, inputs: &mut Vec<ValueId>| -> ValueId {
                *map.entry(v).or_insert_with(|| {
                    let val = g.value(v);
                    let mut nv = Value { producer: None, ..val.clone() };
                    if !val.is_constant() && !produced.contains(&v) {
                        nv.data = None;
                        inputs.push(v);
                        let id = sub.add_value(nv);
                        sub.inputs.push(id);
                        id
                    } else {
                        sub.add_value(nv)
                    }
                })
            };
            let ins = o.inputs.iter().map(|v| v.map(|v| remap(v, &mut sub, &mut inputs))).collect();
            let outs = o.outputs.iter().map(|&v| remap(v, &mut sub, &mut inputs)).collect();
            let inter = o.intermediates.iter().map(|&v| remap(v, &mut sub, &mut inputs)).collect();
            let op =
                Operation { op: o.op.clone(), inputs: ins, outputs: outs, intermediates: inter, version: o.version };
            sub.add_op(op).map_err(|e| LowerError::CpuSegment { segment, reason: e.to_string() })?;
            for &v in &o.outputs {
                if read_later.contains(&v) || g.outputs.contains(&v) {
                    ops_out.push(v);
                }
            }
        }
        sub.outputs = ops_out.iter().map(|v| map[v]).collect();
        self.cpu_graphs.push(sub);
        let at = |v: &ValueId| -> Result<TensorRef, LowerError> {
            let val = g.value(*v);
            let off = self.plan.offset_of(*v).ok_or_else(|| LowerError::CpuSegment {
                segment,
                reason: format!("boundary tensor '{}' has no arena offset", val.name),
            })?;
            Ok(tref(self.region, off, &val.ty))
        };
        Ok(CpuCall {
            subgraph: self.cpu_graphs.len() as u32 - 1,
            inputs: inputs.iter().map(at).collect::<Result<_, _>>()?,
            outputs: ops_out.iter().map(at).collect::<Result<_, _>>()?,
        })
    }
}

/// Packs a record with the hardware's right-shift convention: TFLite's `multiplier ·
/// 2^(shift − 31)` is stored as the multiplier and a right shift of `31 − shift` (Vela's
/// `quantise_scale` exponent).
pub(crate) fn record(bias: i64, multiplier: i32, shift: i32) -> Result<[u8; 10], String> {
    let right = 31 - shift;
    if !(0..64).contains(&right) || multiplier < 0 {
        return Err(format!("multiplier {multiplier} · 2^{shift} is outside the record's range"));
    }
    scale_bias_record(bias, multiplier as u32, right as u32).map_err(|e| e.to_string())
}

/// The fused clamp of an activation in OFM units, as TFLite's
/// `CalculateActivationRangeQuantized`: the bound divided by the output scale in single
/// precision, rounded half away from zero, plus the zero point, within the dtype's range.
fn clamp(act: Activation, out: &TensorType) -> Result<[i32; 2], String> {
    let (qmin, qmax) = match out.dtype {
        DType::I8 => (i32::from(i8::MIN), i32::from(i8::MAX)),
        DType::I16 => (i32::from(i16::MIN), i32::from(i16::MAX)),
        d => return Err(format!("no fused clamp for {d} results")),
    };
    let q = out.quant.as_ref().ok_or("the result is not quantized")?;
    let (scale, zp) = (q.scale.first().copied().unwrap_or(1.0), q.zero_point.first().copied().unwrap_or(0) as i32);
    let at = |f: f32| -> Result<i32, String> {
        let t = (f / scale).round();
        if !(t >= i32::MIN as f32 && t <= i32::MAX as f32) {
            return Err(format!("activation bound {f} does not quantize with scale {scale}"));
        }
        Ok(zp.wrapping_add(t as i32))
    };
    Ok(match act {
        Activation::Relu => [qmin.max(at(0.0)?), qmax],
        Activation::Relu6 => [qmin.max(at(0.0)?), qmax.min(at(6.0)?)],
        Activation::ReluN1To1 => [qmin.max(at(-1.0)?), qmax.min(at(1.0)?)],
        Activation::None | Activation::Tanh | Activation::SignBit => [qmin, qmax],
    })
}

/// The SRAM the stripes of a DRAM-resident program use: the end of the highest staged tensor.
fn staging_bytes(commands: &[Command]) -> u64 {
    let end = |t: &TensorRef| if t.region == Region::Sram { t.offset + t.bytes().unwrap_or(0) } else { 0 };
    commands
        .iter()
        .map(|c| match c {
            Command::Npu(n) => n.operands.iter().flatten().chain(&n.outputs).map(end).max().unwrap_or(0),
            Command::Dma { src_region, src, dst_region, dst, len } => {
                let s = if *src_region == Region::Sram { src + len } else { 0 };
                let d = if *dst_region == Region::Sram { dst + len } else { 0 };
                s.max(d)
            }
            Command::Cpu(_) => 0,
        })
        .max()
        .unwrap_or(0)
}

/// The memory map of a plan.
fn memory_map(g: &Graph, plan: &MemoryPlan, region: Region) -> MemoryMap {
    let entries = plan
        .buffers
        .iter()
        .map(|b| MapEntry {
            name: g.value(b.value).name.clone(),
            region,
            offset: b.offset,
            size: b.size,
            first: b.first as u32,
            last: b.last as u32,
        })
        .collect();
    let (sram_bytes, dram_bytes) = if region == Region::Dram { (0, plan.arena_bytes) } else { (plan.arena_bytes, 0) };
    MemoryMap { sram_bytes, dram_bytes, entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_target_maps_to_its_micro_block_depth() {
        for name in npuc_target::builtin_names() {
            let t = Target::builtin(name).unwrap();
            let a = accelerator(&t);
            assert_eq!(a.ofm_ublock_depth() as u32, t.weight_decoder.micro_block_depth, "{name}: {a:?}");
        }
        assert_eq!(accelerator(&Target::builtin("ethos-u65-512").unwrap()), Accelerator::U65_512);
    }

    #[test]
    fn record_stores_a_right_shift() {
        let r = record(-5, 1 << 30, -3).unwrap();
        assert_eq!(r[9], 34);
        assert_eq!(&r[5..9], &(1u32 << 30).to_le_bytes());
        assert!(record(0, 1 << 30, 40).is_err());
    }
}
