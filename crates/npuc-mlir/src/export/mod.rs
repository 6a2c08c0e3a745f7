//! Graph → `func.func @main` of TOSA ops, built with melior (feature `mlir`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use melior::dialect::{func, DialectRegistry};
use melior::ir::attribute::{
    DenseElementsAttribute, DenseI32ArrayAttribute, DenseI64ArrayAttribute, FloatAttribute, IntegerAttribute,
    StringAttribute, TypeAttribute,
};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike, OperationMutLike, OperationRef};
use melior::ir::r#type::{FunctionType, IntegerType, RankedTensorType};
use melior::ir::RegionLike;
use melior::ir::{Attribute, Block, Identifier, Location, Module as MlirModule, Region, Type, Value};
use melior::utility::register_all_dialects;
use melior::Context;
use npuc_ir::{Activation, DType, Graph, Module, Op, OpId, Padding, TensorType, ValueId};

use crate::cost::{graph_cost, op_cost, Cost, COST_ATTRIBUTE};
use crate::error::MlirError;
use crate::layout::{expand_rank, transpose_bytes, window, Window};
use crate::requant::activation_range;

mod exact;
mod movement;
mod quantized;

/// Exports the main graph of `module` (see [`export_graph`]).
pub fn export_module(module: &Module) -> Result<String, MlirError> {
    export_graph(module.main().ok_or(MlirError::NoGraph)?)
}

/// Exports `graph` as an MLIR module holding `func.func @main` of TOSA ops, verified by
/// MLIR, in MLIR's generic-free pretty text form. Ops only feeding a reshape's shape
/// operand (dynamic-batch plumbing) are dropped: TOSA takes the shape from the result type.
///
/// Cost annotations: the MLIR op producing each npuc op's result (the compute op, not the
/// clamp of a fused activation) carries the discardable attribute
/// `npuc.cost = {bytes = M : i64, macs = N : i64}` with that op's [`op_cost`], and
/// `@main` carries the graph's totals ([`graph_cost`], the numbers of the stage table's
/// analytic columns), so they survive `mlir-opt` round trips.
pub fn export_graph(graph: &Graph) -> Result<String, MlirError> {
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.get_or_load_dialect("func");
    context.get_or_load_dialect("tosa");
    let diagnostics = Rc::new(RefCell::new(Vec::<String>::new()));
    let sink = Rc::clone(&diagnostics);
    let handler = context.attach_diagnostic_handler(move |d| {
        sink.borrow_mut().push(d.to_string());
        true
    });
    let result = build(&context, graph, &diagnostics);
    context.detach_diagnostic_handler(handler);
    result
}

fn build(context: &Context, graph: &Graph, diagnostics: &Rc<RefCell<Vec<String>>>) -> Result<String, MlirError> {
    let loc = Location::unknown(context);
    let module = MlirModule::new(loc);
    let order = needed_ops(graph)?;
    let input_types = graph
        .inputs
        .iter()
        .map(|&v| tensor_type(context, &graph.value(v).ty).map_err(|r| value_error(graph, v, r)))
        .collect::<Result<Vec<_>, _>>()?;
    let output_types = graph
        .outputs
        .iter()
        .map(|&v| tensor_type(context, &graph.value(v).ty).map_err(|r| value_error(graph, v, r)))
        .collect::<Result<Vec<_>, _>>()?;
    let block = Block::new(&input_types.iter().map(|&t| (t, loc)).collect::<Vec<_>>());
    {
        let mut em = Emitter::new(context, &block, graph, loc);
        for (i, &v) in graph.inputs.iter().enumerate() {
            let arg = block.argument(i).map_err(|e| MlirError::Internal(e.to_string()))?;
            em.values.insert(v, arg.into());
        }
        for id in order {
            em.lower(id)?;
        }
        em.annotate()?;
        let results = graph.outputs.iter().map(|&v| em.value(v)).collect::<Result<Vec<_>, _>>()?;
        block.append_operation(func::r#return(&results, loc));
    }
    let total = cost_attribute(context, graph_cost(graph))?;
    let region = Region::new();
    region.append_block(block);
    let ftype = FunctionType::new(context, &input_types, &output_types);
    module.body().append_operation(func::func(
        context,
        StringAttribute::new(context, "main"),
        TypeAttribute::new(ftype.into()),
        region,
        &[(Identifier::new(context, COST_ATTRIBUTE), total)],
        loc,
    ));
    if !module.as_operation().verify() {
        let text = diagnostics.borrow().join("; ");
        return Err(MlirError::Verify(if text.is_empty() { "no diagnostic".into() } else { text }));
    }
    Ok(module.as_operation().to_string())
}

/// `{bytes = M : i64, macs = N : i64}` (saturating at `i64::MAX`: MLIR integers are signed).
fn cost_attribute(context: &Context, cost: Cost) -> Result<Attribute<'_>, MlirError> {
    let i = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let text = format!("{{bytes = {} : i64, macs = {} : i64}}", i(cost.bytes), i(cost.macs));
    Attribute::parse(context, &text).ok_or_else(|| MlirError::Internal(format!("cannot parse cost attribute {text}")))
}

fn value_error(graph: &Graph, v: ValueId, reason: impl Into<String>) -> MlirError {
    MlirError::Value { name: graph.value(v).name.clone(), reason: reason.into() }
}

/// The ops the outputs depend on through data operands, in topological order.
fn needed_ops(graph: &Graph) -> Result<Vec<OpId>, MlirError> {
    let order = graph.topo_order().map_err(|e| MlirError::Graph(e.to_string()))?;
    let mut needed = HashSet::new();
    let mut work: Vec<ValueId> = graph.outputs.clone();
    while let Some(v) = work.pop() {
        let Some(p) = graph.producer(v) else { continue };
        if !needed.insert(p) {
            continue;
        }
        let o = graph.op(p);
        // A reshape's shape operand and a transpose conv's output-shape operand only restate
        // the (static) result type.
        let data_operands: &[Option<ValueId>] = match o.op {
            Op::Reshape { .. } => &o.inputs[..o.inputs.len().min(1)],
            Op::TransposeConv(_) => o.inputs.get(1..).unwrap_or(&[]),
            _ => &o.inputs,
        };
        work.extend(data_operands.iter().flatten().copied());
    }
    Ok(order.into_iter().filter(|id| needed.contains(id)).collect())
}

fn element_type(context: &Context, dtype: DType) -> Result<Type<'_>, String> {
    Ok(match dtype {
        DType::F32 => Type::float32(context),
        DType::F16 => Type::float16(context),
        DType::BF16 => Type::bfloat16(context),
        DType::I8 => IntegerType::new(context, 8).into(),
        DType::I16 => IntegerType::new(context, 16).into(),
        DType::I32 => IntegerType::new(context, 32).into(),
        DType::I64 => IntegerType::new(context, 64).into(),
        DType::Bool => IntegerType::new(context, 1).into(),
        other => return Err(format!("element type {other} has no TOSA equivalent")),
    })
}

/// The MLIR type of a tensor; quantized tensors keep their signless storage type (their
/// scale and zero point become rescale and zero-point operands).
fn tensor_type<'c>(context: &'c Context, ty: &TensorType) -> Result<Type<'c>, String> {
    shaped(context, &ty.shape, ty.dtype)
}

fn shaped<'c>(context: &'c Context, shape: &[usize], dtype: DType) -> Result<Type<'c>, String> {
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    Ok(RankedTensorType::new(&dims, element_type(context, dtype)?, None).into())
}

/// TOSA's `out_pad` (negative: crop) of a TFLite transpose conv. TOSA's output is
/// `(in - 1) * stride + kernel + out_pad`; TFLite's padding crops that full output (SAME:
/// split with the extra at the end).
fn transpose_conv_pad(xt: &TensorType, wt: &TensorType, a: &npuc_ir::TransposeConvAttrs, ot: &TensorType) -> [i64; 4] {
    let mut out_pad = [0i64; 4];
    for d in 0..2 {
        let full = (xt.shape[1 + d] as i64 - 1) * i64::from(a.stride[d]) + wt.shape[1 + d] as i64;
        let want = ot.shape[1 + d] as i64;
        let (before, after) = match a.padding {
            Padding::Same => {
                let total = (full - want).max(0);
                (total / 2, total - total / 2)
            }
            Padding::Valid => (0, 0),
        };
        // VALID with a larger requested output pads zeros at the end.
        let after = after - (want - (full - before - after)).max(0);
        out_pad[2 * d] = -before;
        out_pad[2 * d + 1] = -after;
    }
    out_pad
}

/// Builds the body of `@main` op by op; `values` maps npuc values to MLIR values.
struct Emitter<'c, 'a> {
    context: &'c Context,
    block: &'a Block<'c>,
    graph: &'a Graph,
    loc: Location<'c>,
    values: HashMap<ValueId, Value<'c, 'a>>,
    zero_points: HashMap<DType, Value<'c, 'a>>,
    shift: Option<Value<'c, 'a>>,
    /// The op being lowered, for error messages.
    current: (String, usize),
    /// Ops appended while lowering the current npuc op.
    appended: RefCell<Vec<OperationRef<'c, 'a>>>,
    /// The value before a fused activation of the current npuc op: its compute op carries
    /// the cost rather than the clamp.
    pre_activation: Cell<Option<Value<'c, 'a>>>,
    /// Per npuc op in emission order, the MLIR op carrying its cost and the attribute.
    costs: Vec<(OperationRef<'c, 'a>, Attribute<'c>)>,
    /// Set while a quantized op without an integer TOSA form is lowered through f32:
    /// quantized operands are then dequantized as they are read.
    float_view: bool,
}

type Res<T> = Result<T, MlirError>;

impl<'c, 'a> Emitter<'c, 'a> {
    fn new(context: &'c Context, block: &'a Block<'c>, graph: &'a Graph, loc: Location<'c>) -> Self {
        Emitter {
            context,
            block,
            graph,
            loc,
            values: HashMap::new(),
            zero_points: HashMap::new(),
            shift: None,
            current: (String::new(), 0),
            appended: RefCell::new(Vec::new()),
            pre_activation: Cell::new(None),
            costs: Vec::new(),
            float_view: false,
        }
    }

    /// Attaches the recorded cost attributes. Done after lowering because melior hands out
    /// mutable op references only by walking the block.
    fn annotate(&mut self) -> Res<()> {
        let mut pending = self.costs.iter().peekable();
        let mut cursor = self.block.first_operation_mut();
        while let Some(mut op) = cursor {
            if let Some((target, attr)) = pending.peek() {
                if op.to_raw().ptr == target.to_raw().ptr {
                    op.set_discardable_attribute(COST_ATTRIBUTE, *attr);
                    pending.next();
                }
            }
            cursor = op.next_in_block_mut();
        }
        match pending.next() {
            Some((target, _)) => Err(MlirError::Internal(format!("cost target not found in the block: {target}"))),
            None => Ok(()),
        }
    }

    /// Records the cost of npuc op `id` for the op that produced `result`, if that op was
    /// emitted for `id` (ops lowered to nothing, or to an earlier value, carry no cost).
    fn record_cost(&mut self, id: OpId, result: Value<'c, 'a>) -> Res<()> {
        let anchor = self.pre_activation.take().unwrap_or(result);
        let Ok(r) = melior::ir::operation::OperationResult::try_from(anchor) else { return Ok(()) };
        let owner = r.owner();
        if !self.appended.borrow().iter().any(|op| op.to_raw().ptr == owner.to_raw().ptr) {
            return Ok(());
        }
        let attr = cost_attribute(self.context, op_cost(self.graph, id))?;
        self.costs.push((owner, attr));
        Ok(())
    }

    fn unsupported(&self, reason: impl Into<String>) -> MlirError {
        MlirError::Unsupported { op: self.current.0.clone(), index: self.current.1, reason: reason.into() }
    }

    fn internal(&self, what: impl std::fmt::Display) -> MlirError {
        MlirError::Internal(format!("op {} ({}): {what}", self.current.1, self.current.0))
    }

    fn ty(&self, shape: &[usize], dtype: DType) -> Res<Type<'c>> {
        shaped(self.context, shape, dtype).map_err(|r| self.unsupported(r))
    }

    fn id(&self, name: &str) -> Identifier<'c> {
        Identifier::new(self.context, name)
    }

    /// Appends a one-result op.
    fn op(
        &self,
        name: &str,
        operands: &[Value<'c, 'a>],
        attrs: &[(&str, Attribute<'c>)],
        result: Type<'c>,
    ) -> Res<Value<'c, 'a>> {
        let attrs: Vec<_> = attrs.iter().map(|(n, a)| (self.id(n), *a)).collect();
        let op = OperationBuilder::new(name, self.loc)
            .add_operands(operands)
            .add_attributes(&attrs)
            .add_results(&[result])
            .build()
            .map_err(|e| self.internal(format!("{name}: {e}")))?;
        let op = self.block.append_operation(op);
        self.appended.borrow_mut().push(op);
        Ok(op.result(0).map_err(|e| self.internal(e))?.into())
    }

    fn dense_const(&self, attr: DenseElementsAttribute<'c>, ty: Type<'c>) -> Res<Value<'c, 'a>> {
        self.op("tosa.const", &[], &[("values", attr.into())], ty)
    }

    /// A `tosa.const` of raw little-endian bytes.
    fn bytes_const(&self, shape: &[usize], dtype: DType, bytes: &[u8]) -> Res<Value<'c, 'a>> {
        let ty = self.ty(shape, dtype)?;
        let attr = if dtype == DType::Bool {
            // MLIR packs i1 raw buffers in bits; give it one value per element instead.
            DenseElementsAttribute::bool_values(ty, &bytes.iter().map(|&b| i32::from(b != 0)).collect::<Vec<_>>())
        } else {
            DenseElementsAttribute::raw_buffer(ty, bytes)
        };
        self.dense_const(attr, ty)
    }

    fn float_attr(&self, dtype: DType, v: f64) -> Res<Attribute<'c>> {
        let t = element_type(self.context, dtype).map_err(|r| self.unsupported(r))?;
        Ok(FloatAttribute::new(self.context, t, v).into())
    }

    /// A splat float constant of `shape`.
    fn splat(&self, shape: &[usize], dtype: DType, v: f64) -> Res<Value<'c, 'a>> {
        if !dtype.is_float() {
            return Err(self.unsupported(format!("needs a float tensor, found {dtype}")));
        }
        let ty = self.ty(shape, dtype)?;
        let attr = DenseElementsAttribute::splat(ty, self.float_attr(dtype, v)?);
        self.dense_const(attr, ty)
    }

    /// The zero point operand (`tensor<1xT>` of 0) of conv, matmul and avg_pool.
    fn zero_point(&mut self, dtype: DType) -> Res<Value<'c, 'a>> {
        if let Some(&v) = self.zero_points.get(&dtype) {
            return Ok(v);
        }
        let v = self.splat(&[1], dtype, 0.0)?;
        self.zero_points.insert(dtype, v);
        Ok(v)
    }

    /// The `shift` operand of `tosa.mul` (0: a plain product).
    fn shift(&mut self) -> Res<Value<'c, 'a>> {
        if let Some(v) = self.shift {
            return Ok(v);
        }
        let ty = self.ty(&[1], DType::I8)?;
        let v = self.dense_const(DenseElementsAttribute::i8_values(ty, &[0]), ty)?;
        self.shift = Some(v);
        Ok(v)
    }

    fn const_shape(&self, values: &[i64]) -> Res<Value<'c, 'a>> {
        let list = values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        let n = values.len();
        let attr = Attribute::parse(self.context, &format!("dense<[{list}]> : tensor<{n}xindex>"))
            .ok_or_else(|| self.internal("cannot build a shape attribute"))?;
        let ty = Type::parse(self.context, &format!("!tosa.shape<{n}>"))
            .ok_or_else(|| self.internal("cannot build a !tosa.shape type"))?;
        self.op("tosa.const_shape", &[], &[("values", attr)], ty)
    }

    /// The MLIR value of an npuc value: an earlier result, an argument, or a constant
    /// emitted on first use.
    fn value(&mut self, v: ValueId) -> Res<Value<'c, 'a>> {
        if let Some(&m) = self.values.get(&v) {
            return Ok(m);
        }
        let val = self.graph.value(v);
        let data = val.data.as_ref().filter(|_| val.producer.is_none());
        let Some(data) = data else {
            return Err(MlirError::Value {
                name: val.name.clone(),
                reason: "it is neither computed nor constant".into(),
            });
        };
        if data.is_elided() {
            return Err(MlirError::Value {
                name: val.name.clone(),
                reason: "its data was elided (abbreviated text IR); export from the full model".into(),
            });
        }
        let m = match &val.sparsity {
            // MLIR has no TFLite sparse encoding: the constant goes in dense.
            Some(sp) => {
                let t = npuc_interp::sparse::densify(&val.ty, data, sp)
                    .map_err(|e| MlirError::Value { name: val.name.clone(), reason: e })?;
                self.bytes_const(&val.ty.shape, val.ty.dtype, &t.data.to_le_bytes())?
            }
            None => {
                let bytes = data.bytes().ok_or_else(|| self.internal("constant bytes vanished"))?;
                self.bytes_const(&val.ty.shape, val.ty.dtype, bytes)?
            }
        };
        self.values.insert(v, m);
        Ok(m)
    }

    fn input(&mut self, id: OpId, i: usize) -> Res<(Value<'c, 'a>, TensorType)> {
        let v = self.graph.op(id).input(i).ok_or_else(|| self.unsupported(format!("operand {i} is missing")))?;
        let (x, t) = (self.value(v)?, self.graph.value(v).ty.clone());
        if self.float_view && t.quant.is_some() {
            return self.dequantize(x, &t);
        }
        Ok((x, t))
    }

    /// The type an op's result is lowered at: its own, or f32 in the float view.
    fn result_type(&self, v: ValueId) -> TensorType {
        let t = &self.graph.value(v).ty;
        if self.float_view && t.quant.is_some() {
            TensorType::new(DType::F32, t.shape.clone())
        } else {
            t.clone()
        }
    }

    /// The contents of an integer constant operand (axes, permutations, paddings).
    fn const_ints(&self, id: OpId, i: usize) -> Res<Vec<i64>> {
        let v = self.graph.op(id).input(i).ok_or_else(|| self.unsupported(format!("operand {i} is missing")))?;
        let val = self.graph.value(v);
        let bytes = val
            .data
            .as_ref()
            .filter(|_| val.producer.is_none())
            .and_then(|d| d.bytes())
            .ok_or_else(|| self.unsupported(format!("operand {i} ('{}') must be a constant", val.name)))?;
        match val.ty.dtype {
            DType::I32 => {
                Ok(bytes.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
            }
            DType::I64 => Ok(bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()),
            d => Err(self.unsupported(format!("operand {i} must be i32 or i64, found {d}"))),
        }
    }

    fn reshape(&self, x: Value<'c, 'a>, from: &[usize], to: &[usize], dtype: DType) -> Res<Value<'c, 'a>> {
        if from == to {
            return Ok(x);
        }
        let shape = self.const_shape(&to.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
        self.op("tosa.reshape", &[x, shape], &[], self.ty(to, dtype)?)
    }

    fn transpose(&self, x: Value<'c, 'a>, from: &[usize], perm: &[i32], dtype: DType) -> Res<Value<'c, 'a>> {
        let to: Vec<usize> = perm.iter().map(|&p| from[p as usize]).collect();
        let perms = DenseI32ArrayAttribute::new(self.context, perm).into();
        self.op("tosa.transpose", &[x], &[("perms", perms)], self.ty(&to, dtype)?)
    }

    fn slice(&self, x: Value<'c, 'a>, start: &[usize], size: &[usize], dtype: DType) -> Res<Value<'c, 'a>> {
        let s = self.const_shape(&start.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
        let z = self.const_shape(&size.iter().map(|&d| d as i64).collect::<Vec<_>>())?;
        self.op("tosa.slice", &[x, s, z], &[], self.ty(size, dtype)?)
    }

    fn clamp(&self, x: Value<'c, 'a>, ty: &TensorType, lo: f64, hi: f64) -> Res<Value<'c, 'a>> {
        let attrs = [("min_val", self.float_attr(ty.dtype, lo)?), ("max_val", self.float_attr(ty.dtype, hi)?)];
        self.op("tosa.clamp", &[x], &attrs, self.ty(&ty.shape, ty.dtype)?)
    }

    fn unary(&self, name: &str, x: Value<'c, 'a>, ty: &TensorType) -> Res<Value<'c, 'a>> {
        self.op(name, &[x], &[], self.ty(&ty.shape, ty.dtype)?)
    }

    fn mul(&mut self, a: Value<'c, 'a>, b: Value<'c, 'a>, ty: &TensorType) -> Res<Value<'c, 'a>> {
        let shift = self.shift()?;
        self.op("tosa.mul", &[a, b, shift], &[], self.ty(&ty.shape, ty.dtype)?)
    }

    fn activation(&self, x: Value<'c, 'a>, act: Activation, ty: &TensorType) -> Res<Value<'c, 'a>> {
        if act != Activation::None {
            self.pre_activation.set(Some(x));
        }
        if ty.quant.is_some() && act != Activation::None {
            let (lo, hi) = activation_range(act, ty)
                .ok_or_else(|| self.unsupported(format!("fused activation {act:?} on a quantized result")))?;
            return self.int_clamp(x, ty, lo, hi);
        }
        match act {
            Activation::None => Ok(x),
            // f32::MAX rather than +inf as the open upper end, as TOSA legalizations do.
            Activation::Relu => self.clamp(x, ty, 0.0, f64::from(f32::MAX)),
            Activation::Relu6 => self.clamp(x, ty, 0.0, 6.0),
            Activation::ReluN1To1 => self.clamp(x, ty, -1.0, 1.0),
            Activation::Tanh => self.unary("tosa.tanh", x, ty),
            Activation::SignBit => Err(self.unsupported("fused activation sign_bit")),
        }
    }

    /// An operand brought to `rank` by leading 1s, for TOSA's equal-rank broadcasting.
    fn ranked(&mut self, id: OpId, i: usize, rank: usize) -> Res<(Value<'c, 'a>, TensorType)> {
        let (x, mut t) = self.input(id, i)?;
        let to = expand_rank(&t.shape, rank);
        let x = self.reshape(x, &t.shape, &to, t.dtype)?;
        t.shape = to;
        Ok((x, t))
    }

    fn window(
        &self,
        input: usize,
        kernel: usize,
        stride: u32,
        dilation: u32,
        padding: Padding,
        output: usize,
    ) -> Res<Window> {
        window(input, kernel, stride as usize, dilation as usize, padding, output)
            .ok_or_else(|| self.unsupported(format!("inconsistent window: {input} -> {output} with {kernel} taps")))
    }

    /// Pads (`[top, bottom, left, right]`) of a NHWC window op, slicing off input rows and
    /// columns it never reads.
    #[allow(clippy::too_many_arguments)]
    fn spatial(
        &self,
        x: Value<'c, 'a>,
        xt: &TensorType,
        kernel: [usize; 2],
        stride: [u32; 2],
        dilation: [u32; 2],
        padding: Padding,
        out: &TensorType,
    ) -> Res<(Value<'c, 'a>, [i64; 4])> {
        if xt.rank() != 4 || out.rank() != 4 {
            return Err(self.unsupported("needs rank-4 NHWC input and output"));
        }
        let h = self.window(xt.shape[1], kernel[0], stride[0], dilation[0], padding, out.shape[1])?;
        let w = self.window(xt.shape[2], kernel[1], stride[1], dilation[1], padding, out.shape[2])?;
        let x = if h.used < xt.shape[1] || w.used < xt.shape[2] {
            let size = [xt.shape[0], h.used, w.used, xt.shape[3]];
            self.slice(x, &[0, 0, 0, 0], &size, xt.dtype)?
        } else {
            x
        };
        Ok((x, [h.before as i64, h.after as i64, w.before as i64, w.after as i64]))
    }

    fn array(&self, values: &[i64]) -> Attribute<'c> {
        DenseI64ArrayAttribute::new(self.context, values).into()
    }

    fn axis_attr(&self, axis: usize) -> Attribute<'c> {
        IntegerAttribute::new(IntegerType::new(self.context, 32).into(), axis as i64).into()
    }

    fn acc_type(&self) -> Attribute<'c> {
        TypeAttribute::new(Type::float32(self.context)).into()
    }

    /// The sorted, distinct axes of a reduction (operand 1 of `id`) over a rank-`rank` input.
    fn reduce_axes(&self, id: OpId, rank: usize) -> Res<Vec<usize>> {
        let rank = rank as i64;
        let mut axes = Vec::new();
        for a in self.const_ints(id, 1)? {
            let n = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&n) {
                return Err(self.unsupported(format!("axis {a} out of range for rank {rank}")));
            }
            axes.push(n as usize);
        }
        axes.sort_unstable();
        axes.dedup();
        Ok(axes)
    }

    /// A fully connected layer's `(out, in, rows)`: `[out, in]` weights over an input read as
    /// rows of `in` elements.
    fn fc_rows(&self, xt: &TensorType, wt: &TensorType) -> Res<(usize, usize, usize)> {
        if wt.rank() != 2 || wt.shape[1] == 0 {
            return Err(self.unsupported("weights must be [out, in]"));
        }
        let (n, k) = (wt.shape[0], wt.shape[1]);
        let count: usize = xt.shape.iter().product();
        if count % k != 0 {
            return Err(self.unsupported(format!("input of {count} elements is not rows of {k}")));
        }
        Ok((n, k, count / k))
    }

    /// The attributes every TOSA convolution takes: accumulator type, padding, stride, dilation.
    fn window_attrs(&self, pad: &[i64; 4], stride: [u32; 2], dilation: [u32; 2]) -> [(&'static str, Attribute<'c>); 4] {
        [
            ("acc_type", self.acc_type()),
            ("pad", self.array(pad)),
            ("stride", self.array(&stride.map(i64::from))),
            ("dilation", self.array(&dilation.map(i64::from))),
        ]
    }

    /// A bias operand of `len` channels, zeros when the op has none.
    fn bias(&mut self, id: OpId, slot: usize, len: usize, dtype: DType) -> Res<Value<'c, 'a>> {
        match self.graph.op(id).input(slot) {
            Some(_) => {
                let (b, bt) = self.input(id, slot)?;
                self.reshape(b, &bt.shape, &[len], bt.dtype)
            }
            None => self.splat(&[len], dtype, 0.0),
        }
    }

    /// A constant reinterpreted (same bytes) under another shape, or a reshape if the
    /// operand is computed.
    fn as_shape(&mut self, id: OpId, slot: usize, to: &[usize]) -> Res<Value<'c, 'a>> {
        let v = self.graph.op(id).input(slot).ok_or_else(|| self.unsupported(format!("operand {slot} is missing")))?;
        let val = self.graph.value(v);
        if let (None, Some(bytes), None) = (val.producer, val.data.as_ref().and_then(|d| d.bytes()), &val.sparsity) {
            let dequantized = self.float_view && val.ty.quant.is_some();
            if !self.values.contains_key(&v) && !dequantized {
                return self.bytes_const(to, val.ty.dtype, bytes);
            }
        }
        let (x, t) = self.input(id, slot)?;
        self.reshape(x, &t.shape, to, t.dtype)
    }

    fn reduce(
        &self,
        name: &str,
        x: Value<'c, 'a>,
        shape: &mut [usize],
        axis: usize,
        dtype: DType,
    ) -> Res<Value<'c, 'a>> {
        shape[axis] = 1;
        self.op(name, &[x], &[("axis", self.axis_attr(axis))], self.ty(shape, dtype)?)
    }

    fn lower(&mut self, id: OpId) -> Res<()> {
        let g = self.graph;
        let o = g.op(id);
        self.current = (o.op.display_name().to_string(), id.index());
        self.appended.borrow_mut().clear();
        self.pre_activation.set(None);
        let quantized = o.inputs.iter().flatten().chain(&o.outputs).any(|&v| g.value(v).ty.quant.is_some());
        let results = if quantized { self.lower_quantized(id)? } else { self.lower_plain(id)? };
        if results.len() != o.outputs.len() {
            return Err(self.internal(format!("{} results for {} outputs", results.len(), o.outputs.len())));
        }
        if let Some(&first) = results.first() {
            self.record_cost(id, first)?;
        }
        for (&v, r) in o.outputs.iter().zip(results) {
            self.values.insert(v, r);
        }
        Ok(())
    }

    /// Lowers an op at its own types (or in the float view, at f32): one value per result.
    fn lower_plain(&mut self, id: OpId) -> Res<Vec<Value<'c, 'a>>> {
        let g = self.graph;
        let o = g.op(id);
        if let Some(results) = self.lower_multi(id)? {
            return Ok(results);
        }
        if o.outputs.len() != 1 {
            return Err(self.unsupported(format!("{} results; only single-result ops are exported", o.outputs.len())));
        }
        let out = o.outputs[0];
        let ot = self.result_type(out);
        let rt = self.ty(&ot.shape, ot.dtype)?;
        let result = match &o.op {
            Op::Conv2d(a) => {
                let (x, xt) = self.input(id, 0)?;
                let (w, wt) = self.input(id, 1)?;
                if wt.rank() != 4 {
                    return Err(self.unsupported("filter must be rank 4 (OHWI)"));
                }
                let (x, pad) =
                    self.spatial(x, &xt, [wt.shape[1], wt.shape[2]], a.stride, a.dilation, a.padding, &ot)?;
                let b = self.bias(id, 2, wt.shape[0], ot.dtype)?;
                let zp = self.zero_point(xt.dtype)?;
                let attrs = self.window_attrs(&pad, a.stride, a.dilation);
                let y = self.op("tosa.conv2d", &[x, w, b, zp, zp], &attrs, rt)?;
                self.activation(y, a.activation, &ot)?
            }
            Op::DepthwiseConv2d(a) => {
                let (x, xt) = self.input(id, 0)?;
                let wt = g.value(o.input(1).ok_or_else(|| self.unsupported("filter is missing"))?).ty.clone();
                if wt.rank() != 4 || xt.rank() != 4 || wt.shape[0] != 1 || xt.shape[3] == 0 {
                    return Err(self.unsupported("filter must be 1HW(C*M) over an NHWC input"));
                }
                let c = xt.shape[3];
                let m = wt.shape[3] / c;
                // TFLite's [1, KH, KW, C*M] and TOSA's [KH, KW, C, M] share one byte order.
                let w = self.as_shape(id, 1, &[wt.shape[1], wt.shape[2], c, m])?;
                let (x, pad) =
                    self.spatial(x, &xt, [wt.shape[1], wt.shape[2]], a.stride, a.dilation, a.padding, &ot)?;
                let b = self.bias(id, 2, c * m, ot.dtype)?;
                let zp = self.zero_point(xt.dtype)?;
                let attrs = self.window_attrs(&pad, a.stride, a.dilation);
                let y = self.op("tosa.depthwise_conv2d", &[x, w, b, zp, zp], &attrs, rt)?;
                self.activation(y, a.activation, &ot)?
            }
            Op::FullyConnected(a) => {
                if a.shuffled_weights {
                    return Err(self.unsupported("shuffled weights"));
                }
                let (x, xt) = self.input(id, 0)?;
                let wid = o.input(1).ok_or_else(|| self.unsupported("weights are missing"))?;
                let wt = g.value(wid).ty.clone();
                let (n, k, rows) = self.fc_rows(&xt, &wt)?;
                let x3 = self.reshape(x, &xt.shape, &[1, rows, k], xt.dtype)?;
                let wv = g.value(wid);
                let w3 = match (wv.producer, wv.data.as_ref().and_then(|d| d.bytes())) {
                    (None, Some(bytes)) if wv.sparsity.is_none() && wv.ty.quant.is_none() => {
                        let t = transpose_bytes(bytes, &wt.shape, &[1, 0], (wt.dtype.bits() / 8) as usize)
                            .ok_or_else(|| self.unsupported("weights do not match their shape"))?;
                        self.bytes_const(&[1, k, n], wt.dtype, &t)?
                    }
                    _ => {
                        let (w, _) = self.input(id, 1)?;
                        let t = self.transpose(w, &wt.shape, &[1, 0], wt.dtype)?;
                        self.reshape(t, &[k, n], &[1, k, n], wt.dtype)?
                    }
                };
                let zp = self.zero_point(xt.dtype)?;
                let mm = self.op("tosa.matmul", &[x3, w3, zp, zp], &[], self.ty(&[1, rows, n], ot.dtype)?)?;
                let y = self.reshape(mm, &[1, rows, n], &ot.shape, ot.dtype)?;
                let y = if o.input(2).is_some() {
                    let bshape = expand_rank(&[n], ot.rank());
                    let b = self.as_shape(id, 2, &bshape)?;
                    self.op("tosa.add", &[y, b], &[], rt)?
                } else {
                    y
                };
                self.activation(y, a.activation, &ot)?
            }
            Op::Add { activation, .. }
            | Op::Sub { activation, .. }
            | Op::Mul { activation }
            | Op::Div { activation } => {
                let (a, _) = self.ranked(id, 0, ot.rank())?;
                let (b, bt) = self.ranked(id, 1, ot.rank())?;
                let y = match &o.op {
                    Op::Add { .. } => self.op("tosa.add", &[a, b], &[], rt)?,
                    Op::Sub { .. } => self.op("tosa.sub", &[a, b], &[], rt)?,
                    Op::Mul { .. } => self.mul(a, b, &ot)?,
                    _ => {
                        if !ot.dtype.is_float() {
                            return Err(self.unsupported("integer division"));
                        }
                        let r = self.unary("tosa.reciprocal", b, &bt)?;
                        self.mul(a, r, &ot)?
                    }
                };
                self.activation(y, *activation, &ot)?
            }
            Op::Maximum | Op::Minimum | Op::SquaredDifference => {
                let (a, _) = self.ranked(id, 0, ot.rank())?;
                let (b, _) = self.ranked(id, 1, ot.rank())?;
                match o.op {
                    Op::Maximum => self.op("tosa.maximum", &[a, b], &[], rt)?,
                    Op::Minimum => self.op("tosa.minimum", &[a, b], &[], rt)?,
                    _ => {
                        let d = self.op("tosa.sub", &[a, b], &[], rt)?;
                        self.mul(d, d, &ot)?
                    }
                }
            }
            Op::Relu => {
                let (x, _) = self.input(id, 0)?;
                self.activation(x, Activation::Relu, &ot)?
            }
            Op::Relu6 => {
                let (x, _) = self.input(id, 0)?;
                self.activation(x, Activation::Relu6, &ot)?
            }
            Op::ReluN1To1 => {
                let (x, _) = self.input(id, 0)?;
                self.activation(x, Activation::ReluN1To1, &ot)?
            }
            Op::Logistic | Op::Tanh | Op::Exp | Op::Rsqrt => {
                let (x, _) = self.input(id, 0)?;
                let name = match o.op {
                    Op::Logistic => "tosa.sigmoid",
                    Op::Tanh => "tosa.tanh",
                    Op::Exp => "tosa.exp",
                    _ => "tosa.rsqrt",
                };
                self.unary(name, x, &ot)?
            }
            Op::Sqrt => {
                // TOSA has no sqrt: 1 / rsqrt(x) (0 -> 1/inf = 0).
                let (x, _) = self.input(id, 0)?;
                let r = self.unary("tosa.rsqrt", x, &ot)?;
                self.unary("tosa.reciprocal", r, &ot)?
            }
            Op::LeakyRelu { alpha } => {
                let (x, _) = self.input(id, 0)?;
                let a = self.splat(&vec![1; ot.rank()], ot.dtype, f64::from(*alpha))?;
                let ax = self.mul(x, a, &ot)?;
                // max(x, a*x) for a <= 1, min(x, a*x) for a > 1: no select needed.
                let name = if *alpha <= 1.0 { "tosa.maximum" } else { "tosa.minimum" };
                self.op(name, &[x, ax], &[], rt)?
            }
            Op::Prelu => {
                let (x, _) = self.input(id, 0)?;
                let (alpha, _) = self.ranked(id, 1, ot.rank())?;
                let zero = self.splat(&vec![1; ot.rank()], ot.dtype, 0.0)?;
                let ge = self.op("tosa.greater_equal", &[x, zero], &[], self.ty(&ot.shape, DType::Bool)?)?;
                let ax = self.mul(x, alpha, &ot)?;
                self.op("tosa.select", &[ge, x, ax], &[], rt)?
            }
            Op::HardSwish => {
                let (x, _) = self.input(id, 0)?;
                let ones = vec![1; ot.rank()];
                let three = self.splat(&ones, ot.dtype, 3.0)?;
                let sixth = self.splat(&ones, ot.dtype, 1.0 / 6.0)?;
                let t = self.op("tosa.add", &[x, three], &[], rt)?;
                let t = self.clamp(t, &ot, 0.0, 6.0)?;
                let t = self.mul(x, t, &ot)?;
                self.mul(t, sixth, &ot)?
            }
            Op::Softmax { beta } => {
                let (x, _) = self.input(id, 0)?;
                let axis = ot.rank().checked_sub(1).ok_or_else(|| self.unsupported("scalar input"))?;
                let ones = vec![1; ot.rank()];
                let x = if *beta != 1.0 {
                    let b = self.splat(&ones, ot.dtype, f64::from(*beta))?;
                    self.mul(x, b, &ot)?
                } else {
                    x
                };
                let mut red = ot.shape.clone();
                let m = self.reduce("tosa.reduce_max", x, &mut red, axis, ot.dtype)?;
                let d = self.op("tosa.sub", &[x, m], &[], rt)?;
                let e = self.unary("tosa.exp", d, &ot)?;
                let s = self.reduce("tosa.reduce_sum", e, &mut red, axis, ot.dtype)?;
                let r = self.op("tosa.reciprocal", &[s], &[], self.ty(&red, ot.dtype)?)?;
                self.mul(e, r, &ot)?
            }
            Op::Mean { .. } | Op::Sum { .. } => {
                let (x, xt) = self.input(id, 0)?;
                let axes = self.reduce_axes(id, xt.rank())?;
                let mut shape = xt.shape.clone();
                let mut y = x;
                let mut count = 1usize;
                for &a in &axes {
                    count *= shape[a];
                    y = self.reduce("tosa.reduce_sum", y, &mut shape, a, xt.dtype)?;
                }
                if matches!(o.op, Op::Mean { .. }) {
                    if !xt.dtype.is_float() {
                        return Err(self.unsupported("integer mean"));
                    }
                    let st = TensorType::new(xt.dtype, shape.clone());
                    let inv = self.splat(&vec![1; shape.len()], xt.dtype, 1.0 / count.max(1) as f64)?;
                    y = self.mul(y, inv, &st)?;
                }
                self.reshape(y, &shape, &ot.shape, ot.dtype)?
            }
            Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims => {
                let (x, xt) = self.input(id, 0)?;
                self.reshape(x, &xt.shape, &ot.shape, ot.dtype)?
            }
            Op::Transpose => {
                let (x, xt) = self.input(id, 0)?;
                let perm: Vec<i32> = self.const_ints(id, 1)?.into_iter().map(|p| p as i32).collect();
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..xt.rank() as i32).collect::<Vec<_>>() {
                    return Err(self.unsupported(format!("{perm:?} is not a permutation")));
                }
                self.transpose(x, &xt.shape, &perm, xt.dtype)?
            }
            Op::Pad | Op::PadV2 => {
                let (x, xt) = self.input(id, 0)?;
                let pads = self.const_ints(id, 1)?;
                if pads.len() != 2 * xt.rank() || pads.iter().any(|&p| p < 0) {
                    return Err(self.unsupported(format!("paddings {pads:?} do not fit rank {}", xt.rank())));
                }
                let pads = self.const_shape(&pads)?;
                let value = if matches!(o.op, Op::PadV2) && o.input(2).is_some() {
                    self.as_shape(id, 2, &[1])?
                } else {
                    self.pad_zero(&xt)?
                };
                self.op("tosa.pad", &[x, pads, value], &[], rt)?
            }
            Op::Concatenation { axis, activation } => {
                let rank = ot.rank() as i64;
                let a = i64::from(*axis);
                let a = if a < 0 { a + rank } else { a };
                if !(0..rank).contains(&a) {
                    return Err(self.unsupported(format!("axis {axis} out of range")));
                }
                let mut xs = Vec::new();
                for i in 0..o.inputs.len() {
                    let (x, xt) = self.input(id, i)?;
                    xs.push(self.requantize_to(x, &xt, &ot)?);
                }
                let y = self.op("tosa.concat", &xs, &[("axis", self.axis_attr(a as usize))], rt)?;
                self.activation(y, *activation, &ot)?
            }
            Op::AveragePool2d(p) | Op::MaxPool2d(p) => {
                let (x, xt) = self.input(id, 0)?;
                let kernel = [p.filter[0] as usize, p.filter[1] as usize];
                let (x, pad) = self.spatial(x, &xt, kernel, p.stride, [1, 1], p.padding, &ot)?;
                let common = [
                    ("kernel", self.array(&p.filter.map(i64::from))),
                    ("stride", self.array(&p.stride.map(i64::from))),
                    ("pad", self.array(&pad)),
                ];
                let y = if matches!(o.op, Op::AveragePool2d(_)) {
                    let zp = self.zero_point(xt.dtype)?;
                    let mut attrs = common.to_vec();
                    attrs.push(("acc_type", self.acc_type()));
                    self.op("tosa.avg_pool2d", &[x, zp, zp], &attrs, rt)?
                } else {
                    self.op("tosa.max_pool2d", &[x], &common, rt)?
                };
                self.activation(y, p.activation, &ot)?
            }
            Op::Slice => {
                let (x, xt) = self.input(id, 0)?;
                let begin = self.const_ints(id, 1)?;
                let size = self.const_ints(id, 2)?;
                if begin.len() != xt.rank() || size.len() != xt.rank() {
                    return Err(self.unsupported("begin/size do not match the input rank"));
                }
                let begin: Vec<usize> = begin.iter().map(|&b| b.max(0) as usize).collect();
                if ot.shape.len() != xt.rank() {
                    return Err(self.unsupported("output rank differs from input rank"));
                }
                self.slice(x, &begin, &ot.shape, xt.dtype)?
            }
            Op::DepthToSpace { block_size } | Op::SpaceToDepth { block_size } => {
                let (x, xt) = self.input(id, 0)?;
                let b = *block_size as usize;
                if xt.rank() != 4 || b == 0 {
                    return Err(self.unsupported("needs NHWC input"));
                }
                let [n, h, w, c] = [xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3]];
                if matches!(o.op, Op::DepthToSpace { .. }) {
                    // [N,H,W,(bh,bw,C')] -> [N,H,bh,W,bw,C'].
                    let cc = c / (b * b);
                    let s6 = [n, h, w, b, b, cc];
                    let y = self.reshape(x, &xt.shape, &s6, xt.dtype)?;
                    let y = self.transpose(y, &s6, &[0, 1, 3, 2, 4, 5], xt.dtype)?;
                    self.reshape(y, &[n, h, b, w, b, cc], &ot.shape, ot.dtype)?
                } else {
                    // [N,(H',bh),(W',bw),C] -> [N,H',W',bh,bw,C].
                    let s6 = [n, h / b, b, w / b, b, c];
                    let y = self.reshape(x, &xt.shape, &s6, xt.dtype)?;
                    let y = self.transpose(y, &s6, &[0, 1, 3, 2, 4, 5], xt.dtype)?;
                    self.reshape(y, &[n, h / b, w / b, b, b, c], &ot.shape, ot.dtype)?
                }
            }
            Op::L2Normalization { activation } => {
                // x * rsqrt(max(sum(x^2), 1e-12)) = x / max(sqrt(sum(x^2)), 1e-6), as TFLite.
                let (x, _) = self.input(id, 0)?;
                let axis = ot.rank().checked_sub(1).ok_or_else(|| self.unsupported("scalar input"))?;
                let sq = self.mul(x, x, &ot)?;
                let mut red = ot.shape.clone();
                let s = self.reduce("tosa.reduce_sum", sq, &mut red, axis, ot.dtype)?;
                let eps = self.splat(&vec![1; red.len()], ot.dtype, 1e-12)?;
                let rt_red = self.ty(&red, ot.dtype)?;
                let s = self.op("tosa.maximum", &[s, eps], &[], rt_red)?;
                let r = self.op("tosa.rsqrt", &[s], &[], rt_red)?;
                let y = self.mul(x, r, &ot)?;
                self.activation(y, *activation, &ot)?
            }
            Op::TransposeConv(a) => {
                // Operands: output shape, filter [O, KH, KW, I], input, optional bias.
                let (x, xt) = self.input(id, 2)?;
                let (w, wt) = self.input(id, 1)?;
                if wt.rank() != 4 || xt.rank() != 4 || ot.rank() != 4 {
                    return Err(self.unsupported("needs NHWC input/output and an OHWI filter"));
                }
                let out_pad = transpose_conv_pad(&xt, &wt, a, &ot);
                let b = self.bias(id, 3, wt.shape[0], ot.dtype)?;
                let zp = self.zero_point(xt.dtype)?;
                let attrs = [
                    ("acc_type", self.acc_type()),
                    ("out_pad", self.array(&out_pad)),
                    ("stride", self.array(&a.stride.map(i64::from))),
                ];
                let y = self.op("tosa.transpose_conv2d", &[x, w, b, zp, zp], &attrs, rt)?;
                self.activation(y, a.activation, &ot)?
            }
            Op::Dequantize => {
                let (x, xt) = self.input(id, 0)?;
                if !xt.dtype.is_float() {
                    return Err(self.unsupported(format!("dequantize from {}", xt.dtype)));
                }
                self.unary("tosa.cast", x, &ot)?
            }
            Op::Densify => {
                let v = o.input(0).ok_or_else(|| self.unsupported("operand 0 is missing"))?;
                let val = g.value(v);
                let (Some(data), Some(sp)) = (&val.data, &val.sparsity) else {
                    return Err(self.unsupported("input is not a sparse constant"));
                };
                let t = npuc_interp::sparse::densify(&val.ty, data, sp).map_err(|e| self.unsupported(e))?;
                self.bytes_const(&ot.shape, ot.dtype, &t.data.to_le_bytes())?
            }
            other => match self.lower_movement(id, &ot)? {
                Some(y) => y,
                None => return Err(self.unsupported(format!("no TOSA lowering for {}", other.display_name()))),
            },
        };
        Ok(vec![result])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(text: &str) -> Result<String, MlirError> {
        let module = npuc_ir::parse_module(text).expect("test IR parses");
        export_module(&module)
    }

    #[test]
    fn cost_goes_on_the_conv_not_its_fused_clamp_and_totals_on_main() {
        let out = export(
            r#"graph @main(%x: tensor<1x4x4x1xf32> {name = "x"}) {
  %w = const dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]> : tensor<1x3x3x1xf32> {name = "w"}
  %c = conv_2d(%x, %w) {padding = same, stride = [2, 2], dilation = [1, 1], activation = relu6} : tensor<1x2x2x1xf32> {name = "c"}
  %m = mul(%c, %c) : tensor<1x2x2x1xf32> {name = "m"}
  return %m
}"#,
        )
        .expect("exports");
        // conv: 4 outputs × 9 taps; bytes 4·(16 + 9 + 4). mul: 4 products; bytes 4·(4 + 4 + 4).
        let conv = out.lines().find(|l| l.contains("tosa.conv2d")).expect("a conv");
        assert!(conv.contains("npuc.cost = {bytes = 116 : i64, macs = 36 : i64}"), "{out}");
        let clamp = out.lines().find(|l| l.contains("tosa.clamp")).expect("a clamp");
        assert!(!clamp.contains("npuc.cost"), "{out}");
        let mul = out.lines().find(|l| l.contains("tosa.mul")).expect("a mul");
        assert!(mul.contains("npuc.cost = {bytes = 48 : i64, macs = 4 : i64}"), "{out}");
        let main = out.lines().find(|l| l.contains("func.func @main")).expect("@main");
        assert!(main.contains("npuc.cost = {bytes = 164 : i64, macs = 40 : i64}"), "{out}");
        assert_eq!(out.matches("npuc.cost").count(), 3, "{out}");
    }

    #[test]
    fn conv_with_same_padding_gets_explicit_pads_and_a_zero_bias() {
        let out = export(
            r#"graph @main(%x: tensor<1x4x4x1xf32> {name = "x"}) {
  %w = const dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]> : tensor<1x3x3x1xf32> {name = "w"}
  %c = conv_2d(%x, %w) {padding = same, stride = [2, 2], dilation = [1, 1]} : tensor<1x2x2x1xf32> {name = "c"}
  return %c
}"#,
        )
        .expect("exports");
        assert!(out.contains("pad = array<i64: 0, 1, 0, 1>"), "{out}");
        assert!(out.contains("dense<0.000000e+00> : tensor<1xf32>"), "{out}");
        assert!(out.contains("-> tensor<1x2x2x1xf32>"), "{out}");
    }

    #[test]
    fn fully_connected_weights_are_transposed_in_the_constant() {
        let out = export(
            r#"graph @main(%x: tensor<1x2xf32> {name = "x"}) {
  %w = const dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<3x2xf32> {name = "w"}
  %y = fully_connected(%x, %w) : tensor<1x3xf32> {name = "y"}
  return %y
}"#,
        )
        .expect("exports");
        let want = "dense<[[[1.000000e+00, 3.000000e+00, 5.000000e+00], [2.000000e+00, 4.000000e+00, 6.000000e+00]]]> : tensor<1x2x3xf32>";
        assert!(out.contains(want), "{out}");
        assert!(out.contains("tosa.matmul"), "{out}");
        assert!(!out.contains("tosa.add"), "no bias, no add: {out}");
    }

    #[test]
    fn reshape_shape_plumbing_is_dropped() {
        // The shape operand comes from ops (dynamic-batch style); TOSA needs only the type.
        let out = export(
            r#"graph @main(%x: tensor<2x3xf32> {name = "x"}) {
  %s = shape(%x) {output_type = i32} : tensor<2xi32> {name = "s"}
  %r = reshape(%x, %s) : tensor<3x2xf32> {name = "r"}
  return %r
}"#,
        )
        .expect("exports");
        assert!(out.contains("tosa.reshape"), "{out}");
        assert!(!out.contains("shape("), "{out}");
    }

    #[test]
    fn unsupported_ops_are_named_with_their_index() {
        let err = export(
            r#"graph @main(%x: tensor<4xf32> {name = "x"}) {
  %r = relu(%x) : tensor<4xf32> {name = "r"}
  %m = opaque "REDUCE_PROD"(%r) {builtin_code = 81} : tensor<f32> {name = "m"}
  return %m
}"#,
        )
        .expect_err("REDUCE_PROD has no lowering");
        match err {
            MlirError::Unsupported { op, index, .. } => assert_eq!((op.as_str(), index), ("REDUCE_PROD", 1)),
            other => panic!("wrong error: {other}"),
        }
    }

    #[test]
    fn quantized_relu_is_a_table_computed_by_the_interpreter() {
        let out = export(
            r#"graph @main(%x: tensor<4xi8, q<0.5:-3>> {name = "x"}) {
  %r = relu(%x) : tensor<4xi8, q<0.5:-3>> {name = "r"}
  return %r
}"#,
        )
        .expect("exports");
        assert!(out.contains("tosa.table"), "{out}");
        // Entry i is relu of i - 128: the zero point -3 (0xFD) for -128..-4, then the input.
        let table =
            format!("0x{}{}", "FD".repeat(125), (-3i32..=127).map(|v| format!("{:02X}", v as u8)).collect::<String>());
        assert!(out.contains(&table), "{out}");
    }
}
