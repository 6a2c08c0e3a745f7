//! Shape inference: the element type and shape of every result of an op, derived from its
//! operands and attributes with TFLite's semantics.
//!
//! [`infer`] is the pure rule set (an op, its operand values, how many results it has);
//! [`infer_output_types`] applies it to an op of a [`Graph`]. Besides deriving types, the
//! rules check what the TFLite kernels' `Prepare` functions check: operand and result
//! counts, ranks, dtypes, channel agreement, and the constant operands that determine a
//! shape (reshape's shape, pad's paddings, strided slice's begin/end/strides, …). Those
//! operands are decoded from their little-endian constant data; an operand that is not a
//! constant (or whose bytes were elided from the text form) is an error, because the
//! result shape would only be known at run time.
//!
//! Quantization of results is never inferred: scales and zero points are part of the
//! model, so only dtype and shape are derived and compared.
//!
//! Deliberate differences from TFLite, all rejecting inputs TFLite would mishandle:
//! * VALID windows larger than the input are an error (TFLite yields a size of 0 or less).
//! * STRIDED_SLICE rejects more than one ellipsis bit, an ellipsis that would cover no
//!   dimension, a spec longer than the (new-axis extended) rank, and an out-of-range
//!   shrink index; mask bits past the spec length are ignored. With `offset`, dimensions
//!   not named by the spec keep their full extent (TFLite indexes `end` by the extended
//!   dimension there, which only agrees when no ellipsis or new axis is present).
//! * REDUCE ops check axis range with `keep_dims` too (TFLite only checks without).
//! * Shape operands may be i32 or i64 unless the kernel only reads i32 (STRIDED_SLICE,
//!   TRANSPOSE_CONV, RESIZE_*, SPLIT's axis); a non-constant RESHAPE shape falls back to
//!   the `new_shape` attribute when the file has one.
//! * DEPTHWISE_CONV_2D's `depth_multiplier` attribute is not checked: TFLite ignores it
//!   and derives the multiplier from the filter and input channels.
//! * TRANSPOSE_CONV's output shape is taken as given (TFLite does not relate its spatial
//!   extent to the input's either), but batch and channels must agree with the operands.

use std::fmt::Write as _;

use crate::error::IrError;
use crate::graph::{Graph, Module, OpId, Value};
use crate::op::{
    Conv2dAttrs, DepthwiseConv2dAttrs, FullyConnectedAttrs, Op, Padding, Pool2dAttrs, ResizeAttrs, StridedSliceAttrs,
    TransposeConvAttrs,
};
use crate::types::{DType, TensorType, MAX_TENSOR_ELEMENTS};

#[cfg(test)]
mod tests;

/// The type inference derives for one result; `None` parts are not determined by the op.
///
/// Only two things are undetermined: the dtype of QUANTIZE's result (any quantized type
/// may be requested) and everything about an opaque op's results or the workspace result
/// of a shuffled-weights FULLY_CONNECTED.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InferredType {
    /// Element type, if the op determines it.
    pub dtype: Option<DType>,
    /// Shape, if the op determines it.
    pub shape: Option<Vec<usize>>,
}

impl InferredType {
    /// A fully determined type.
    pub fn known(dtype: DType, shape: Vec<usize>) -> Self {
        InferredType { dtype: Some(dtype), shape: Some(shape) }
    }

    /// A type about which the op says nothing.
    pub fn unknown() -> Self {
        InferredType { dtype: None, shape: None }
    }

    /// Whether a declared type agrees (undetermined parts agree with anything).
    pub fn matches(&self, ty: &TensorType) -> bool {
        self.dtype.is_none_or(|d| d == ty.dtype) && self.shape.as_ref().is_none_or(|s| *s == ty.shape)
    }
}

/// Formats a dtype and shape the way error messages show types: `f32[1,48,48,32]`.
pub fn format_type(dtype: DType, shape: &[usize]) -> String {
    format!("{dtype}{}", format_shape(shape))
}

/// Formats a shape as `[1,4]` (`[]` for a scalar).
pub fn format_shape(shape: &[usize]) -> String {
    let mut s = String::from("[");
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{d}");
    }
    s.push(']');
    s
}

/// Infers the result types of the op `id` of `g`.
///
/// Parts the op does not determine (see [`InferredType`]) and all quantization are taken
/// from the declared results, so for an opaque op this returns the declared types.
pub fn infer_output_types(g: &Graph, id: OpId) -> Result<Vec<TensorType>, IrError> {
    let operation = g.get_op(id).ok_or_else(|| IrError::InvalidOp {
        index: id.index(),
        op: "?".to_string(),
        reason: "no such op in the graph".to_string(),
    })?;
    let invalid =
        |reason: String| IrError::InvalidOp { index: id.index(), op: operation.op.display_name().to_string(), reason };
    let mut inputs = Vec::with_capacity(operation.inputs.len());
    for (slot, v) in operation.inputs.iter().enumerate() {
        match v {
            None => inputs.push(None),
            Some(v) => match g.get_value(*v) {
                Some(value) => inputs.push(Some(value)),
                None => return Err(invalid(format!("operand {slot} refers to value #{}, which does not exist", v.0))),
            },
        }
    }
    let mut declared = Vec::with_capacity(operation.outputs.len());
    for (k, v) in operation.outputs.iter().enumerate() {
        match g.get_value(*v) {
            Some(value) => declared.push(&value.ty),
            None => return Err(invalid(format!("result {k} refers to value #{}, which does not exist", v.0))),
        }
    }
    let inferred = infer(&operation.op, &inputs, declared.len()).map_err(invalid)?;
    Ok(inferred
        .into_iter()
        .zip(declared)
        .map(|(t, d)| TensorType {
            dtype: t.dtype.unwrap_or(d.dtype),
            shape: t.shape.unwrap_or_else(|| d.shape.clone()),
            quant: d.quant.clone(),
        })
        .collect())
}

/// Operand slots whose *values* (not just types) determine an op's result shape.
pub fn shape_operands(op: &Op) -> &'static [usize] {
    match op {
        Op::TransposeConv(_) | Op::Split { .. } => &[0],
        Op::Mean { .. }
        | Op::Sum { .. }
        | Op::ReduceProd { .. }
        | Op::Reshape { .. }
        | Op::ExpandDims
        | Op::Pad
        | Op::PadV2
        | Op::Transpose
        | Op::ResizeBilinear(_)
        | Op::ResizeNearestNeighbor(_)
        | Op::ArgMax { .. } => &[1],
        Op::Slice | Op::SplitV { .. } | Op::BatchToSpaceNd | Op::SpaceToBatchNd => &[1, 2],
        Op::StridedSlice(_) => &[1, 2, 3],
        _ => &[],
    }
}

/// Infers the result types of `op` applied to `inputs` (`None` = omitted optional operand),
/// checking operand and result counts, dtypes and shapes the way TFLite's kernels do.
///
/// The error is a reason without the op's name (callers add op index and name).
pub fn infer(op: &Op, inputs: &[Option<&Value>], num_outputs: usize) -> Result<Vec<InferredType>, String> {
    let (min_out, max_out) = result_count(op);
    if num_outputs < min_out || num_outputs > max_out {
        return Err(if min_out == max_out {
            format!("expects {} {}, has {num_outputs}", min_out, plural(min_out, "result"))
        } else if max_out == usize::MAX {
            format!("expects at least {min_out} {}, has {num_outputs}", plural(min_out, "result"))
        } else {
            format!("expects {min_out} to {max_out} results, has {num_outputs}")
        });
    }
    let a = Args { vals: inputs };
    use DType::*;
    let one = |t: InferredType| vec![t];
    let out = match op {
        Op::Conv2d(at) => one(conv2d(&a, at)?),
        Op::DepthwiseConv2d(at) => one(depthwise_conv2d(&a, at)?),
        Op::TransposeConv(at) => one(transpose_conv(&a, at)?),
        Op::FullyConnected(at) => fully_connected(&a, at, num_outputs)?,
        Op::Add { .. }
        | Op::Sub { .. }
        | Op::Mul { .. }
        | Op::Div { .. }
        | Op::Maximum
        | Op::Minimum
        | Op::SquaredDifference => one(binary(&a)?),
        Op::AveragePool2d(at) | Op::MaxPool2d(at) => one(pool2d(&a, at)?),
        Op::Mean { keep_dims } | Op::Sum { keep_dims } | Op::ReduceProd { keep_dims } => one(reduce(&a, *keep_dims)?),
        Op::Greater | Op::GreaterEqual | Op::Less | Op::LessEqual => one(comparison(&a, false)?),
        Op::Equal | Op::NotEqual => one(comparison(&a, true)?),
        // The results are the callee's outputs, which only the module knows: see
        // `infer_call_types`, which the module verifier applies.
        Op::If { .. } | Op::While { .. } => vec![InferredType::unknown(); num_outputs],
        Op::Reshape { new_shape } => one(reshape(&a, new_shape.as_deref())?),
        Op::Squeeze { axes } => one(squeeze(&a, axes)?),
        Op::ExpandDims => one(expand_dims(&a)?),
        Op::Concatenation { axis, .. } => one(concatenation(&a, *axis)?),
        Op::Split { num_splits } => split(&a, *num_splits)?,
        Op::SplitV { num_splits } => split_v(&a, *num_splits)?,
        Op::Pack { values_count, axis } => one(pack(&a, *values_count, *axis)?),
        Op::Unpack { num, axis } => unpack(&a, *num, *axis)?,
        Op::Pad | Op::PadV2 => one(pad(&a)?),
        Op::StridedSlice(at) => one(strided_slice(&a, at)?),
        Op::Slice => one(slice(&a)?),
        Op::Transpose => one(transpose(&a)?),
        Op::DepthToSpace { block_size } => one(depth_to_space(&a, *block_size)?),
        Op::SpaceToDepth { block_size } => one(space_to_depth(&a, *block_size)?),
        Op::BatchToSpaceNd => one(batch_to_space_nd(&a)?),
        Op::SpaceToBatchNd => one(space_to_batch_nd(&a)?),
        Op::ResizeBilinear(at) => one(resize(&a, at, true)?),
        Op::ResizeNearestNeighbor(at) => one(resize(&a, at, false)?),
        Op::Relu | Op::Relu6 | Op::ReluN1To1 | Op::LeakyRelu { .. } | Op::HardSwish => {
            one(unary(&a, &[F32, F16, U8, I8, I16, I32, I64])?)
        }
        Op::Logistic | Op::Tanh | Op::Exp | Op::Sqrt | Op::Rsqrt => one(unary(&a, &[F32, F16, BF16, U8, I8, I16])?),
        Op::Softmax { .. } => one(rank_at_least_one(&a, &[F32, F16, U8, I8, I16])?),
        Op::L2Normalization { .. } => one(rank_at_least_one(&a, &[F32, U8, I8])?),
        Op::Prelu => one(prelu(&a)?),
        Op::Quantize => one(quantize(&a)?),
        Op::Dequantize => one(dequantize(&a)?),
        Op::Densify => one(densify(&a)?),
        Op::Gather { axis, batch_dims } => one(gather(&a, *axis, *batch_dims)?),
        Op::ArgMax { output_type } => one(arg_max(&a, *output_type)?),
        Op::Shape { output_type } => one(shape_of(&a, *output_type)?),
        Op::Opaque(_) => vec![InferredType::unknown(); num_outputs],
    };
    for t in &out {
        if let Some(shape) = &t.shape {
            let n = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
            match n {
                Some(n) if n <= MAX_TENSOR_ELEMENTS => {}
                _ => {
                    return Err(format!(
                        "result shape {} has more than 2^32 elements (MAX_TENSOR_ELEMENTS)",
                        format_shape(shape)
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// Allowed result counts `(min, max)` of an op.
fn result_count(op: &Op) -> (usize, usize) {
    match op {
        Op::Split { num_splits } | Op::SplitV { num_splits } => (*num_splits as usize, *num_splits as usize),
        Op::Unpack { num, .. } => (*num as usize, *num as usize),
        // The legacy shuffled kernel may declare its input workspace as a second output
        // (tensorflow/lite/kernels/fully_connected.cc, kShuffledInputWorkspaceTensor).
        Op::FullyConnected(at) if at.shuffled_weights => (1, 2),
        Op::Opaque(_) | Op::If { .. } | Op::While { .. } => (0, usize::MAX),
        _ => (1, 1),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

type R<T> = Result<T, String>;

/// Broadcasts two shapes with NumPy rules (trailing dimensions aligned; equal, or one is
/// 1), or `None` if they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        // Dimension i counted from the end; a missing dimension acts as 1.
        let da = if i < a.len() { a[a.len() - 1 - i] } else { 1 };
        let db = if i < b.len() { b[b.len() - 1 - i] } else { 1 };
        out[rank - 1 - i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// Output extent of a windowed op along one spatial dimension, as TFLite computes it
/// (tensorflow/lite/kernels/padding.h, `ComputeOutSize`): SAME gives `ceil(in / stride)`,
/// VALID gives `ceil((in - effective_window + 1) / stride)` with
/// `effective_window = (window - 1) * dilation + 1`.
///
/// Stride, dilation and window must be positive, and a VALID window must fit the input.
pub fn window_output_size(
    padding: Padding,
    input: usize,
    window: usize,
    stride: u32,
    dilation: u32,
) -> Result<usize, String> {
    if stride == 0 {
        return Err("stride 0 is not positive".to_string());
    }
    if dilation == 0 {
        return Err("dilation 0 is not positive".to_string());
    }
    if window == 0 {
        return Err("window size is 0".to_string());
    }
    let stride = stride as usize;
    let effective = (window - 1)
        .checked_mul(dilation as usize)
        .and_then(|x| x.checked_add(1))
        .ok_or_else(|| "effective window size overflows".to_string())?;
    match padding {
        Padding::Same => Ok(input.div_ceil(stride)),
        Padding::Valid => {
            if input < effective {
                Err(format!("effective window {effective} is larger than the input extent {input} under VALID padding"))
            } else {
                Ok((input - effective) / stride + 1)
            }
        }
    }
}

/// TFLite's SAME padding `[before, after]` of one spatial dimension: the total
/// `max((ceil(input / stride) - 1) * stride + effective_window - input, 0)`, split with the
/// odd element after (tensorflow/lite/kernels/padding.h). Zero sizes or a zero stride give
/// no padding.
pub fn same_padding(input: usize, window: usize, stride: usize, dilation: usize) -> [usize; 2] {
    let out = if stride == 0 { 0 } else { input.div_ceil(stride) };
    if out == 0 || window == 0 {
        return [0, 0];
    }
    let effective = (window - 1) * dilation + 1;
    let total = ((out - 1) * stride + effective).saturating_sub(input);
    [total / 2, total - total / 2]
}

/// Operand access with error messages that name the operand's role.
struct Args<'a, 'v> {
    vals: &'a [Option<&'v Value>],
}

impl<'v> Args<'_, 'v> {
    fn arity(&self, min: usize, max: usize) -> R<()> {
        let n = self.vals.len();
        if n >= min && n <= max {
            return Ok(());
        }
        Err(if min == max {
            format!("expects {min} {}, has {n}", plural(min, "operand"))
        } else if max == usize::MAX {
            format!("expects at least {min} {}, has {n}", plural(min, "operand"))
        } else {
            format!("expects {min} to {max} operands, has {n}")
        })
    }

    fn req(&self, i: usize, role: &str) -> R<&'v Value> {
        self.vals.get(i).copied().flatten().ok_or_else(|| format!("operand {i} ({role}) is missing"))
    }

    fn opt(&self, i: usize) -> Option<&'v Value> {
        self.vals.get(i).copied().flatten()
    }
}

fn dtype_list(allowed: &[DType]) -> String {
    allowed.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
}

fn dtype_in(v: &Value, role: &str, allowed: &[DType]) -> R<()> {
    if allowed.contains(&v.ty.dtype) {
        Ok(())
    } else {
        Err(format!("{role} has dtype {}, expected one of {}", v.ty.dtype, dtype_list(allowed)))
    }
}

fn same_dtype(v: &Value, role: &str, reference: &Value, ref_role: &str) -> R<()> {
    if v.ty.dtype == reference.ty.dtype {
        Ok(())
    } else {
        Err(format!("{role} has dtype {} but {ref_role} has {}", v.ty.dtype, reference.ty.dtype))
    }
}

fn rank_is(v: &Value, role: &str, rank: usize) -> R<()> {
    if v.ty.rank() == rank {
        Ok(())
    } else {
        Err(format!("{role} must have rank {rank}, has shape {}", format_shape(&v.ty.shape)))
    }
}

fn elements(v: &Value) -> R<u64> {
    v.ty.num_elements().ok_or_else(|| format!("element count of '{}' overflows", v.name))
}

/// Resolves a possibly negative axis against `rank` (valid: `-rank..rank`).
fn norm_axis(axis: i64, rank: usize, what: &str) -> R<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        Err(format!("{what} {axis} is out of range for rank {rank}"))
    } else {
        Ok(a as usize)
    }
}

fn to_i64(d: usize) -> i64 {
    i64::try_from(d).unwrap_or(i64::MAX)
}

fn to_dim(x: i64, what: &str) -> R<usize> {
    usize::try_from(x).map_err(|_| format!("{what} would be {x}, which is negative"))
}

/// Decodes a constant integer operand (little-endian), accepting the given dtypes.
fn const_ints(v: &Value, role: &str, allowed: &[DType]) -> R<Vec<i64>> {
    if v.is_variable || v.producer.is_some() || v.data.is_none() {
        return Err(format!("{role} operand '{}' is not constant", v.name));
    }
    if v.sparsity.is_some() {
        return Err(format!("{role} operand '{}' is stored sparse", v.name));
    }
    dtype_in(v, role, allowed)?;
    let data = v.data.as_ref().and_then(|c| c.bytes()).ok_or_else(|| {
        format!("{role} operand '{}' is elided (only its hash is known), so its values cannot be read", v.name)
    })?;
    let n = elements(v)?;
    let width: usize = match v.ty.dtype {
        DType::I32 => 4,
        DType::I64 => 8,
        other => return Err(format!("{role} has dtype {other}, expected i32 or i64")),
    };
    let expected = n.checked_mul(width as u64);
    if expected != Some(data.len() as u64) {
        return Err(format!(
            "{role} operand '{}' holds {} bytes but its type {} needs {}",
            v.name,
            data.len(),
            format_type(v.ty.dtype, &v.ty.shape),
            expected.map_or_else(|| "more than 2^64".to_string(), |e| e.to_string())
        ));
    }
    Ok(data
        .chunks_exact(width)
        .map(|c| {
            if width == 4 {
                i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            } else {
                i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
            }
        })
        .collect())
}

/// A constant operand that must hold exactly one integer (a scalar or a 1-element vector).
fn const_scalar(v: &Value, role: &str, allowed: &[DType]) -> R<i64> {
    let vals = const_ints(v, role, allowed)?;
    if vals.len() != 1 {
        return Err(format!("{role} must hold exactly one value, holds {}", vals.len()));
    }
    Ok(vals[0])
}

/// A constant 1-D integer operand.
fn const_vector(v: &Value, role: &str, allowed: &[DType]) -> R<Vec<i64>> {
    rank_is(v, role, 1)?;
    const_ints(v, role, allowed)
}

/// Checks a bias operand: element count, dtype for the input's dtype, zero point 0.
fn check_bias(bias: Option<&Value>, input: DType, channels: usize) -> R<()> {
    let Some(b) = bias else { return Ok(()) };
    use DType::*;
    let allowed: &[DType] = match input {
        U8 | I8 => &[I32],
        I16 => &[I32, I64],
        _ => &[F32],
    };
    dtype_in(b, "bias", allowed)?;
    let n = elements(b)?;
    if n != channels as u64 {
        return Err(format!("bias has {n} elements but there are {channels} output channels"));
    }
    // Quantized kernels add the bias as raw accumulator values, so it must be symmetric
    // (e.g. tensorflow/lite/kernels/depthwise_conv.cc, transpose_conv.cc Prepare).
    if let Some(q) = &b.ty.quant {
        if let Some(zp) = q.zero_point.iter().find(|&&z| z != 0) {
            return Err(format!("bias '{}' has zero point {zp}; quantized biases need zero point 0", b.name));
        }
    }
    Ok(())
}

fn spatial(name: &str, r: R<usize>) -> R<usize> {
    r.map_err(|e| format!("{name}: {e}"))
}

/// CONV_2D (tensorflow/lite/kernels/conv.cc): NHWC input, OHWI filter; the filter's input
/// channels may divide the input's (grouped convolution).
fn conv2d(a: &Args, at: &Conv2dAttrs) -> R<InferredType> {
    use DType::*;
    a.arity(2, 3)?;
    let x = a.req(0, "input")?;
    let w = a.req(1, "filter")?;
    rank_is(x, "input", 4)?;
    rank_is(w, "filter", 4)?;
    dtype_in(x, "input", &[F32, U8, I8, I16])?;
    let filter_types: &[DType] = match x.ty.dtype {
        F32 => &[F32, I8, U8],
        U8 => &[U8],
        I8 => &[I8, I4],
        _ => &[I8],
    };
    dtype_in(w, "filter", filter_types)?;
    let (xs, ws) = (&x.ty.shape, &w.ty.shape);
    if ws.contains(&0) {
        return Err(format!("filter has a zero dimension: {}", format_shape(ws)));
    }
    let (in_c, f_in, out_c) = (xs[3], ws[3], ws[0]);
    if in_c % f_in != 0 {
        return Err(format!("filter has {f_in} input channels but input has {in_c}"));
    }
    let groups = in_c / f_in;
    if groups > 0 && out_c % groups != 0 {
        return Err(format!("{out_c} output channels do not divide into {groups} groups"));
    }
    check_bias(a.opt(2), x.ty.dtype, out_c)?;
    conv_output(x, ws, out_c, at.padding, at.stride, at.dilation)
}

/// The NHWC result of a 2-D convolution window over `x` with an `[_, kh, kw, _]` filter.
fn conv_output(
    x: &Value,
    ws: &[usize],
    out_c: usize,
    padding: Padding,
    stride: [u32; 2],
    dilation: [u32; 2],
) -> R<InferredType> {
    let xs = &x.ty.shape;
    let oh = spatial("height", window_output_size(padding, xs[1], ws[1], stride[0], dilation[0]))?;
    let ow = spatial("width", window_output_size(padding, xs[2], ws[2], stride[1], dilation[1]))?;
    Ok(InferredType::known(x.ty.dtype, vec![xs[0], oh, ow, out_c]))
}

/// DEPTHWISE_CONV_2D (tensorflow/lite/kernels/depthwise_conv.cc): filter `[1, H, W, C·m]`,
/// the multiplier `m` derived from the channel counts.
fn depthwise_conv2d(a: &Args, at: &DepthwiseConv2dAttrs) -> R<InferredType> {
    use DType::*;
    a.arity(2, 3)?;
    let x = a.req(0, "input")?;
    let w = a.req(1, "filter")?;
    rank_is(x, "input", 4)?;
    rank_is(w, "filter", 4)?;
    dtype_in(x, "input", &[F32, U8, I8, I16])?;
    let filter_types: &[DType] = match x.ty.dtype {
        F32 => &[F32, I8],
        U8 => &[U8],
        I8 => &[I8, I4],
        _ => &[I8, I16],
    };
    dtype_in(w, "filter", filter_types)?;
    let (xs, ws) = (&x.ty.shape, &w.ty.shape);
    if ws[0] != 1 {
        return Err(format!("filter must be [1, h, w, channels], is {}", format_shape(ws)));
    }
    if ws.contains(&0) {
        return Err(format!("filter has a zero dimension: {}", format_shape(ws)));
    }
    let (in_c, out_c) = (xs[3], ws[3]);
    if in_c == 0 {
        return Err("input has 0 channels".to_string());
    }
    if out_c % in_c != 0 {
        return Err(format!("filter has {out_c} channels, not a multiple of the input's {in_c}"));
    }
    check_bias(a.opt(2), x.ty.dtype, out_c)?;
    conv_output(x, ws, out_c, at.padding, at.stride, at.dilation)
}

/// TRANSPOSE_CONV (tensorflow/lite/kernels/transpose_conv.cc): operands output shape
/// (constant int32 `[4]`), OHWI filter, input, optional bias.
fn transpose_conv(a: &Args, at: &TransposeConvAttrs) -> R<InferredType> {
    use DType::*;
    a.arity(3, 4)?;
    let s = a.req(0, "output shape")?;
    let w = a.req(1, "filter")?;
    let x = a.req(2, "input")?;
    rank_is(x, "input", 4)?;
    rank_is(w, "filter", 4)?;
    dtype_in(x, "input", &[F32, U8, I8, I16])?;
    let filter_types: &[DType] = if x.ty.dtype == I16 { &[I8] } else { std::slice::from_ref(&x.ty.dtype) };
    dtype_in(w, "filter", filter_types)?;
    if at.stride.contains(&0) {
        return Err(format!("stride {:?} has a zero", at.stride));
    }
    let (xs, ws) = (&x.ty.shape, &w.ty.shape);
    if ws.contains(&0) {
        return Err(format!("filter has a zero dimension: {}", format_shape(ws)));
    }
    if xs[3] != ws[3] {
        return Err(format!("filter has {} input channels but input has {}", ws[3], xs[3]));
    }
    let shape = const_vector(s, "output shape", &[I32])?;
    if shape.len() != 4 {
        return Err(format!("output shape must have 4 entries, has {}", shape.len()));
    }
    let dims = shape.iter().map(|&d| to_dim(d, "output dimension")).collect::<R<Vec<_>>>()?;
    if dims[0] != xs[0] {
        return Err(format!("output batch {} differs from input batch {}", dims[0], xs[0]));
    }
    if dims[3] != ws[0] {
        return Err(format!("output shape has {} channels but the filter has {}", dims[3], ws[0]));
    }
    check_bias(a.opt(3), x.ty.dtype, ws[0])?;
    Ok(InferredType::known(x.ty.dtype, dims))
}

/// FULLY_CONNECTED (tensorflow/lite/kernels/fully_connected.cc): weights `[units, depth]`;
/// the input is flattened to `[elements / depth, depth]` unless `keep_num_dims`.
fn fully_connected(a: &Args, at: &FullyConnectedAttrs, num_outputs: usize) -> R<Vec<InferredType>> {
    use DType::*;
    a.arity(2, 3)?;
    let x = a.req(0, "input")?;
    let w = a.req(1, "weights")?;
    rank_is(w, "weights", 2)?;
    dtype_in(x, "input", &[F32, U8, I8, I16])?;
    let weight_types: &[DType] = match x.ty.dtype {
        F32 => &[F32, I8, U8],
        U8 => &[U8],
        I8 => &[I8, I4],
        _ => &[I8],
    };
    dtype_in(w, "weights", weight_types)?;
    let (units, depth) = (w.ty.shape[0], w.ty.shape[1]);
    if depth == 0 {
        return Err(format!("weights have depth 0: {}", format_shape(&w.ty.shape)));
    }
    check_bias(a.opt(2), x.ty.dtype, units)?;
    let shape = if at.keep_num_dims {
        let Some(&last) = x.ty.shape.last() else {
            return Err("keep_num_dims needs an input of rank 1 or more".to_string());
        };
        if last != depth {
            return Err(format!("input's last dimension is {last} but the weights take {depth}"));
        }
        let mut s = x.ty.shape.clone();
        *s.last_mut().expect("rank checked") = units;
        s
    } else {
        let n = elements(x)?;
        if n % depth as u64 != 0 {
            return Err(format!(
                "input {} ({n} elements) does not flatten into rows of the weights' depth {depth}",
                format_shape(&x.ty.shape)
            ));
        }
        vec![(n / depth as u64) as usize, units]
    };
    if at.shuffled_weights {
        // The shuffled kernel takes uint8 input and writes int16 (reference_ops::
        // ShuffledFullyConnected); its optional workspace result is not modelled.
        if x.ty.dtype != U8 {
            return Err(format!("shuffled weights need a u8 input, input has dtype {}", x.ty.dtype));
        }
        let mut out = vec![InferredType::known(I16, shape)];
        if num_outputs == 2 {
            out.push(InferredType::unknown());
        }
        return Ok(out);
    }
    Ok(vec![InferredType::known(x.ty.dtype, shape)])
}

/// Broadcasting binary ops (tensorflow/lite/kernels/add.cc, sub.cc, mul.cc, div.cc,
/// maximum_minimum.cc, squared_difference.cc): equal dtypes, NumPy broadcasting.
fn binary(a: &Args) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "lhs")?;
    let y = a.req(1, "rhs")?;
    if x.ty.dtype == DType::Bool {
        return Err("operands have dtype bool, which is not arithmetic".to_string());
    }
    same_dtype(y, "rhs", x, "lhs")?;
    let shape = broadcast_shapes(&x.ty.shape, &y.ty.shape).ok_or_else(|| {
        format!("shapes {} and {} do not broadcast", format_shape(&x.ty.shape), format_shape(&y.ty.shape))
    })?;
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// GREATER, LESS, EQUAL, … (tensorflow/lite/kernels/comparisons.cc): same operand dtypes,
/// broadcast shapes, bool result; only EQUAL and NOT_EQUAL accept bool operands.
fn comparison(a: &Args, allow_bool: bool) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "lhs")?;
    let y = a.req(1, "rhs")?;
    if x.ty.dtype == DType::Bool && !allow_bool {
        return Err("operands have dtype bool, which is not ordered".to_string());
    }
    same_dtype(y, "rhs", x, "lhs")?;
    let shape = broadcast_shapes(&x.ty.shape, &y.ty.shape).ok_or_else(|| {
        format!("shapes {} and {} do not broadcast", format_shape(&x.ty.shape), format_shape(&y.ty.shape))
    })?;
    Ok(InferredType::known(DType::Bool, shape))
}

/// The result types of an IF or WHILE op of `m`: the outputs of the graph it calls (IF:
/// the then graph; WHILE: the body), or `None` for other ops or a callee index out of
/// range (the verifier reports that).
pub fn infer_call_types(m: &Module, op: &Op) -> Option<Vec<TensorType>> {
    let callee = match op {
        Op::If { then_graph, .. } => *then_graph,
        Op::While { body_graph, .. } => *body_graph,
        _ => return None,
    };
    let g = m.graphs.get(callee as usize)?;
    g.outputs.iter().map(|v| g.get_value(*v).map(|v| v.ty.clone())).collect()
}

/// AVERAGE_POOL_2D / MAX_POOL_2D (tensorflow/lite/kernels/pooling.cc).
fn pool2d(a: &Args, at: &Pool2dAttrs) -> R<InferredType> {
    use DType::*;
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    rank_is(x, "input", 4)?;
    dtype_in(x, "input", &[F32, U8, I8, I16])?;
    let xs = &x.ty.shape;
    let oh = spatial("height", window_output_size(at.padding, xs[1], at.filter[0] as usize, at.stride[0], 1))?;
    let ow = spatial("width", window_output_size(at.padding, xs[2], at.filter[1] as usize, at.stride[1], 1))?;
    Ok(InferredType::known(x.ty.dtype, vec![xs[0], oh, ow, xs[3]]))
}

/// MEAN / SUM (tensorflow/lite/kernels/reduce.cc): axes may be negative and repeat; a
/// scalar input gives a scalar.
fn reduce(a: &Args, keep_dims: bool) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    if x.ty.dtype == DType::Bool {
        return Err("input has dtype bool, which is not arithmetic".to_string());
    }
    let ax = a.req(1, "axes")?;
    if ax.ty.rank() > 1 {
        return Err(format!("axes must be a scalar or a vector, has shape {}", format_shape(&ax.ty.shape)));
    }
    let axes = const_ints(ax, "axes", &[DType::I32, DType::I64])?;
    let rank = x.ty.rank();
    if rank == 0 {
        return Ok(InferredType::known(x.ty.dtype, vec![]));
    }
    let mut reduced = vec![false; rank];
    for &axis in &axes {
        reduced[norm_axis(axis, rank, "axis")?] = true;
    }
    Ok(InferredType::known(x.ty.dtype, reduced_dims(&x.ty.shape, &reduced, keep_dims)))
}

/// The result shape of a reduction of `shape` over the dimensions flagged in `reduced`:
/// reduced dimensions become 1 with `keep_dims`, and disappear without.
pub fn reduced_dims(shape: &[usize], reduced: &[bool], keep_dims: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .filter_map(|(&d, &r)| match (r, keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// RESHAPE (tensorflow/lite/kernels/reshape.cc): the shape comes from a 1-D int32 operand
/// if there is one, else from `new_shape` (where TFLite's legacy `[0]` means a scalar, and
/// no attribute at all also gives a scalar); one `-1` is inferred.
fn reshape(a: &Args, new_shape: Option<&[i32]>) -> R<InferredType> {
    a.arity(1, 2)?;
    let x = a.req(0, "input")?;
    let from_attr = || -> Vec<i64> {
        match new_shape {
            Some([0]) | None => vec![],
            Some(s) => s.iter().map(|&d| i64::from(d)).collect(),
        }
    };
    let target: Vec<i64> = match a.opt(1) {
        Some(s) if s.ty.rank() == 1 && s.ty.dtype == DType::I32 => {
            let constant = s.data.is_some() && !s.is_variable && s.producer.is_none();
            if constant || new_shape.is_none() {
                const_ints(s, "shape", &[DType::I32])?
            } else {
                from_attr()
            }
        }
        // TFLite reads only int32 shape tensors; an int64 one is used when there is
        // nothing else to go by (TFLite would produce a scalar there).
        Some(s) if s.ty.rank() == 1 && s.ty.dtype == DType::I64 && new_shape.is_none() => {
            const_ints(s, "shape", &[DType::I64])?
        }
        _ => from_attr(),
    };
    let n = elements(x)?;
    let mut stretch = None;
    let mut known: u64 = 1;
    for (i, &d) in target.iter().enumerate() {
        if d == -1 {
            if stretch.is_some() {
                return Err(format!("target shape {target:?} has more than one -1"));
            }
            stretch = Some(i);
        } else if d < 0 {
            return Err(format!("target shape {target:?} has negative dimension {d}"));
        } else {
            known =
                known.checked_mul(d as u64).ok_or_else(|| format!("target shape {target:?} has too many elements"))?;
        }
    }
    let mut shape: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = stretch {
        if known == 0 {
            return Err(format!("cannot infer the -1 in {target:?}: the other dimensions multiply to 0"));
        }
        if n % known != 0 {
            return Err(format!("cannot reshape {} ({n} elements) into {target:?}", format_shape(&x.ty.shape)));
        }
        shape[i] = usize::try_from(n / known).map_err(|_| "inferred dimension overflows".to_string())?;
        known = n;
    }
    if known != n {
        return Err(format!(
            "cannot reshape {} ({n} elements) into {} ({known} elements)",
            format_shape(&x.ty.shape),
            format_shape(&shape)
        ));
    }
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// SQUEEZE (tensorflow/lite/kernels/squeeze.cc): listed axes must have size 1; no axes
/// removes every size-1 dimension.
fn squeeze(a: &Args, axes: &[i32]) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    let xs = &x.ty.shape;
    let mut drop = vec![false; xs.len()];
    if axes.is_empty() {
        for (d, &s) in drop.iter_mut().zip(xs) {
            *d = s == 1;
        }
    } else {
        for &axis in axes {
            let i = norm_axis(i64::from(axis), xs.len(), "squeeze axis")?;
            if xs[i] != 1 {
                return Err(format!("cannot squeeze dimension {i} of size {} in {}", xs[i], format_shape(xs)));
            }
            drop[i] = true;
        }
    }
    let shape = xs.iter().zip(&drop).filter(|&(_, &d)| !d).map(|(&s, _)| s).collect();
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// EXPAND_DIMS (tensorflow/lite/kernels/expand_dims.cc): axis in `-(rank+1)..=rank`.
fn expand_dims(a: &Args) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    let axis = const_scalar(a.req(1, "axis")?, "axis", &[DType::I32, DType::I64])?;
    let i = norm_axis(axis, x.ty.rank() + 1, "axis")?;
    let mut shape = x.ty.shape.clone();
    shape.insert(i, 1);
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// CONCATENATION (tensorflow/lite/kernels/concatenation.cc): equal ranks and dtypes,
/// equal extents except along the axis.
fn concatenation(a: &Args, axis: i32) -> R<InferredType> {
    a.arity(1, usize::MAX)?;
    let first = a.req(0, "input 0")?;
    let rank = first.ty.rank();
    let ax = norm_axis(i64::from(axis), rank, "axis")?;
    let mut total: usize = 0;
    for i in 0..a.vals.len() {
        let v = a.req(i, &format!("input {i}"))?;
        same_dtype(v, &format!("input {i}"), first, "input 0")?;
        let vs = &v.ty.shape;
        let fits = vs.len() == rank && vs.iter().zip(&first.ty.shape).enumerate().all(|(k, (p, q))| k == ax || p == q);
        if !fits {
            return Err(format!(
                "input {i} has shape {} which does not match input 0's {} outside axis {ax}",
                format_shape(vs),
                format_shape(&first.ty.shape)
            ));
        }
        total = total.checked_add(vs[ax]).ok_or_else(|| "concatenated extent overflows".to_string())?;
    }
    let mut shape = first.ty.shape.clone();
    shape[ax] = total;
    Ok(InferredType::known(first.ty.dtype, shape))
}

/// SPLIT (tensorflow/lite/kernels/split.cc): operands axis (int32), input; equal parts.
fn split(a: &Args, num_splits: u32) -> R<Vec<InferredType>> {
    a.arity(2, 2)?;
    let axis = const_scalar(a.req(0, "axis")?, "axis", &[DType::I32])?;
    let x = a.req(1, "input")?;
    if num_splits == 0 {
        return Err("num_splits is 0".to_string());
    }
    let ax = norm_axis(axis, x.ty.rank(), "axis")?;
    let d = x.ty.shape[ax];
    let n = num_splits as usize;
    if d % n != 0 {
        return Err(format!("dimension {ax} of size {d} does not split into {n} equal parts"));
    }
    let mut shape = x.ty.shape.clone();
    shape[ax] = d / n;
    Ok(vec![InferredType::known(x.ty.dtype, shape); n])
}

/// SPLIT_V (tensorflow/lite/kernels/split_v.cc): operands input, sizes, axis; one size
/// may be -1 (the remainder).
fn split_v(a: &Args, num_splits: u32) -> R<Vec<InferredType>> {
    a.arity(3, 3)?;
    let x = a.req(0, "input")?;
    let sizes = const_vector(a.req(1, "size_splits")?, "size_splits", &[DType::I32, DType::I64])?;
    let axis = const_scalar(a.req(2, "axis")?, "axis", &[DType::I32])?;
    let ax = norm_axis(axis, x.ty.rank(), "axis")?;
    if sizes.len() != num_splits as usize {
        return Err(format!("size_splits has {} entries but num_splits is {num_splits}", sizes.len()));
    }
    let d = to_i64(x.ty.shape[ax]);
    let mut rest = None;
    let mut sum: i64 = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if s == -1 {
            if rest.is_some() {
                return Err(format!("size_splits {sizes:?} has more than one -1"));
            }
            rest = Some(i);
        } else if s < 0 {
            return Err(format!("size_splits {sizes:?} has negative size {s}"));
        } else {
            sum = sum.checked_add(s).ok_or_else(|| "size_splits sum overflows".to_string())?;
        }
    }
    let mut resolved = sizes.clone();
    match rest {
        Some(i) if sum <= d => resolved[i] = d - sum,
        None if sum == d => {}
        _ => return Err(format!("size_splits {sizes:?} do not add up to dimension {ax} of size {d}")),
    }
    Ok(resolved
        .into_iter()
        .map(|s| {
            let mut shape = x.ty.shape.clone();
            shape[ax] = s as usize;
            InferredType::known(x.ty.dtype, shape)
        })
        .collect())
}

/// PACK (tensorflow/lite/kernels/pack.cc): equal inputs stacked along a new axis.
fn pack(a: &Args, values_count: u32, axis: i32) -> R<InferredType> {
    a.arity(1, usize::MAX)?;
    if a.vals.len() != values_count as usize {
        return Err(format!("values_count is {values_count} but there are {} inputs", a.vals.len()));
    }
    let first = a.req(0, "input 0")?;
    for i in 1..a.vals.len() {
        let v = a.req(i, &format!("input {i}"))?;
        same_dtype(v, &format!("input {i}"), first, "input 0")?;
        if v.ty.shape != first.ty.shape {
            return Err(format!(
                "input {i} has shape {} but input 0 has {}",
                format_shape(&v.ty.shape),
                format_shape(&first.ty.shape)
            ));
        }
    }
    let ax = norm_axis(i64::from(axis), first.ty.rank() + 1, "axis")?;
    let mut shape = first.ty.shape.clone();
    shape.insert(ax, values_count as usize);
    Ok(InferredType::known(first.ty.dtype, shape))
}

/// UNPACK (tensorflow/lite/kernels/unpack.cc): `num` results, the axis removed.
fn unpack(a: &Args, num: u32, axis: i32) -> R<Vec<InferredType>> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    let ax = norm_axis(i64::from(axis), x.ty.rank(), "axis")?;
    if x.ty.shape[ax] != num as usize {
        return Err(format!("num is {num} but dimension {ax} has size {}", x.ty.shape[ax]));
    }
    let mut shape = x.ty.shape.clone();
    shape.remove(ax);
    Ok(vec![InferredType::known(x.ty.dtype, shape); num as usize])
}

/// PAD / PADV2 (tensorflow/lite/kernels/pad.cc): paddings `[rank, 2]`, non-negative; the
/// optional third operand is a one-element pad value of the input's dtype.
fn pad(a: &Args) -> R<InferredType> {
    a.arity(2, 3)?;
    let x = a.req(0, "input")?;
    let p = a.req(1, "paddings")?;
    let rank = x.ty.rank();
    if p.ty.shape != [rank, 2] {
        return Err(format!("paddings must have shape [{rank},2], has {}", format_shape(&p.ty.shape)));
    }
    let pads = const_ints(p, "paddings", &[DType::I32, DType::I64])?;
    if let Some(c) = a.opt(2) {
        same_dtype(c, "pad value", x, "input")?;
        if elements(c)? != 1 {
            return Err(format!("pad value must have one element, has shape {}", format_shape(&c.ty.shape)));
        }
    }
    let mut shape = Vec::with_capacity(rank);
    for (i, &d) in x.ty.shape.iter().enumerate() {
        let (before, after) = (pads[2 * i], pads[2 * i + 1]);
        if before < 0 || after < 0 {
            return Err(format!("padding [{before}, {after}] of dimension {i} is negative"));
        }
        let total = to_i64(d)
            .checked_add(before)
            .and_then(|t| t.checked_add(after))
            .ok_or_else(|| "padded extent overflows".to_string())?;
        shape.push(to_dim(total, "padded extent")?);
    }
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// Integer `ceil(a / b)` for `b != 0`, any signs.
fn ceil_div(a: i64, b: i64) -> i64 {
    let q = a / b;
    if a % b != 0 && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

/// How one dimension of STRIDED_SLICE's (new-axis extended) input is sliced.
enum SliceDim {
    /// Taken whole (ellipsis or past the end of the spec).
    Full(usize),
    /// A size-1 axis inserted by `new_axis_mask`.
    NewAxis,
    /// Sliced by spec entry `orig` on a dimension of the given extent.
    Spec { orig: usize, size: usize },
}

/// STRIDED_SLICE (tensorflow/lite/kernels/strided_slice.cc `BuildStridedSliceParams` and
/// `ResizeOutputTensor`, tensorflow/lite/kernels/internal/strided_slice_logic.h
/// `StridedSliceStartForAxis`/`StridedSliceEndForAxis`).
fn strided_slice(a: &Args, at: &StridedSliceAttrs) -> R<InferredType> {
    a.arity(4, 4)?;
    let x = a.req(0, "input")?;
    let begin_v = a.req(1, "begin")?;
    let end = const_vector(a.req(2, "end")?, "end", &[DType::I32])?;
    let strides = const_vector(a.req(3, "strides")?, "strides", &[DType::I32])?;
    rank_is(begin_v, "begin", 1)?;
    let count = begin_v.ty.shape[0];
    // With `offset`, `end` holds sizes and begin may be computed at run time.
    let begin_const = begin_v.data.is_some() && !begin_v.is_variable && begin_v.producer.is_none();
    let begin = if at.offset && !begin_const { None } else { Some(const_vector(begin_v, "begin", &[DType::I32])?) };
    if end.len() != count || strides.len() != count {
        return Err(format!(
            "begin, end and strides must have equal lengths, have {count}, {} and {}",
            end.len(),
            strides.len()
        ));
    }
    let rank = x.ty.rank();
    if rank > 5 {
        return Err(format!("input has rank {rank}; strided_slice supports at most 5"));
    }
    // Mask bits past the spec name nothing; TFLite reads the same bits for begin, end and
    // shrink masks and would misplace new axes for them, so they are ignored.
    let spec_bits: u32 = if count >= 32 { u32::MAX } else { (1u32 << count) - 1 };
    let bit = |m: i32| (m as u32) & spec_bits;
    let ellipsis = bit(at.ellipsis_mask);
    let new_axis = bit(at.new_axis_mask) & !ellipsis;
    let (begin_mask, end_mask, shrink) = (bit(at.begin_mask), bit(at.end_mask), bit(at.shrink_axis_mask));
    if ellipsis.count_ones() > 1 {
        return Err(format!("ellipsis_mask {:#b} has more than one bit set", at.ellipsis_mask));
    }
    let eff = rank + new_axis.count_ones() as usize;
    if eff > 5 {
        return Err(format!("slicing yields {eff} dimensions including new axes; strided_slice supports at most 5"));
    }
    if count > eff {
        return Err(if ellipsis != 0 {
            format!("spec of {count} entries leaves the ellipsis no dimension of the rank-{rank} input")
        } else {
            format!("spec has {count} entries but the input has rank {rank} (plus {} new axes)", eff - rank)
        });
    }
    // Map every dimension of the extended input to what slices it (as TFLite does).
    let (ell_pos, expanded) =
        if ellipsis != 0 { (ellipsis.trailing_zeros() as usize, eff - count) } else { (usize::MAX, 0) };
    let mut dims = Vec::with_capacity(eff);
    let mut added = 0;
    for i in 0..eff {
        if ellipsis != 0 && i >= ell_pos && i <= ell_pos + expanded {
            dims.push(SliceDim::Full(x.ty.shape[i - added]));
            continue;
        }
        let orig = if ellipsis != 0 && i > ell_pos { i - expanded } else { i };
        if orig < count && new_axis & (1 << orig) != 0 {
            dims.push(SliceDim::NewAxis);
            added += 1;
        } else if orig >= count {
            dims.push(SliceDim::Full(x.ty.shape[i - added]));
        } else {
            dims.push(SliceDim::Spec { orig, size: x.ty.shape[i - added] });
        }
    }
    let mut shape = Vec::with_capacity(eff);
    for d in dims {
        let (orig, size) = match d {
            SliceDim::Full(n) => {
                shape.push(n);
                continue;
            }
            SliceDim::NewAxis => {
                shape.push(1);
                continue;
            }
            SliceDim::Spec { orig, size } => (orig, size),
        };
        let stride = strides[orig];
        if stride == 0 {
            return Err(format!("stride of spec entry {orig} is 0"));
        }
        let n = to_i64(size);
        let mask_bit = 1u32 << orig;
        if shrink & mask_bit != 0 {
            // TFLite drops a shrunk axis without reading it; an index outside the
            // dimension would read out of bounds at run time, so it is rejected here.
            if let Some(begin) = &begin {
                let b = begin[orig];
                let idx = if begin_mask & mask_bit != 0 {
                    0
                } else if b < 0 {
                    b + n
                } else {
                    b
                };
                if idx < 0 || idx >= n {
                    return Err(format!("shrink_axis index {b} is out of range for a dimension of size {size}"));
                }
            }
            continue;
        }
        let extent = if at.offset {
            end[orig]
        } else {
            let begin = begin.as_ref().expect("begin is constant without offset");
            let (lo, hi) = if stride > 0 { (0, n) } else { (-1, n - 1) };
            let mut start = begin[orig];
            if start < 0 {
                start += n;
            }
            start = start.clamp(lo, hi);
            if begin_mask & mask_bit != 0 {
                start = if stride > 0 { 0 } else { n - 1 };
            }
            let mut stop = end[orig];
            if stop < 0 {
                stop += n;
            }
            stop = stop.clamp(lo, hi);
            if end_mask & mask_bit != 0 {
                stop = if stride > 0 { n } else { -1 };
            }
            stop - start
        };
        shape.push(ceil_div(extent, stride).max(0) as usize);
    }
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// SLICE (tensorflow/lite/kernels/slice.cc): begin and size per dimension, size -1 meaning
/// "to the end".
fn slice(a: &Args) -> R<InferredType> {
    a.arity(3, 3)?;
    let x = a.req(0, "input")?;
    let begin = const_vector(a.req(1, "begin")?, "begin", &[DType::I32, DType::I64])?;
    let size = const_vector(a.req(2, "size")?, "size", &[DType::I32, DType::I64])?;
    let rank = x.ty.rank();
    if begin.len() != rank || size.len() != rank {
        return Err(format!(
            "begin and size need {rank} entries (the input's rank), have {} and {}",
            begin.len(),
            size.len()
        ));
    }
    let mut shape = Vec::with_capacity(rank);
    for (i, &d) in x.ty.shape.iter().enumerate() {
        let (b, s, n) = (begin[i], size[i], to_i64(d));
        if b < 0 || b > n {
            return Err(format!("begin {b} is out of range for dimension {i} of size {d}"));
        }
        let s = if s == -1 { n - b } else { s };
        if s < 0 || b.checked_add(s).is_none_or(|e| e > n) {
            return Err(format!("begin {b} with size {} exceeds dimension {i} of size {d}", size[i]));
        }
        shape.push(s as usize);
    }
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// TRANSPOSE (tensorflow/lite/kernels/transpose.cc): `perm` is a permutation of `0..rank`.
fn transpose(a: &Args) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    let perm = const_vector(a.req(1, "perm")?, "perm", &[DType::I32, DType::I64])?;
    let rank = x.ty.rank();
    if perm.len() != rank {
        return Err(format!("perm has {} entries but the input has rank {rank}", perm.len()));
    }
    let mut seen = vec![false; rank];
    let mut shape = Vec::with_capacity(rank);
    for &p in &perm {
        if p < 0 || p as usize >= rank || seen[p as usize] {
            return Err(format!("perm {perm:?} is not a permutation of 0..{rank}"));
        }
        seen[p as usize] = true;
        shape.push(x.ty.shape[p as usize]);
    }
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// DEPTH_TO_SPACE (tensorflow/lite/kernels/depth_to_space.cc).
fn depth_to_space(a: &Args, block: u32) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    rank_is(x, "input", 4)?;
    if block == 0 {
        return Err("block_size is 0".to_string());
    }
    let b = block as usize;
    let bb = b.checked_mul(b).ok_or_else(|| "block_size squared overflows".to_string())?;
    let s = &x.ty.shape;
    if s[3] % bb != 0 {
        return Err(format!("depth {} is not a multiple of block_size² = {bb}", s[3]));
    }
    let h = s[1].checked_mul(b).ok_or_else(|| "height overflows".to_string())?;
    let w = s[2].checked_mul(b).ok_or_else(|| "width overflows".to_string())?;
    Ok(InferredType::known(x.ty.dtype, vec![s[0], h, w, s[3] / bb]))
}

/// SPACE_TO_DEPTH (tensorflow/lite/kernels/space_to_depth.cc).
fn space_to_depth(a: &Args, block: u32) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    rank_is(x, "input", 4)?;
    if block == 0 {
        return Err("block_size is 0".to_string());
    }
    let b = block as usize;
    let s = &x.ty.shape;
    if s[1] % b != 0 || s[2] % b != 0 {
        return Err(format!("height {} and width {} must be multiples of block_size {b}", s[1], s[2]));
    }
    let c = b.checked_mul(b).and_then(|bb| s[3].checked_mul(bb)).ok_or_else(|| "depth overflows".to_string())?;
    Ok(InferredType::known(x.ty.dtype, vec![s[0], s[1] / b, s[2] / b, c]))
}

/// BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND operands: input, block shape, and per spatial
/// dimension a `[before, after]` pair (crops or paddings).
struct BlockSpec<'v> {
    x: &'v Value,
    block: Vec<usize>,
    pairs: Vec<[i64; 2]>,
}

/// Reads a [`BlockSpec`], checking ranks (the kernels take 3-D or 4-D inputs) and signs.
fn block_and_pairs<'v>(a: &Args<'_, 'v>, pairs_role: &str) -> R<BlockSpec<'v>> {
    a.arity(3, 3)?;
    let x = a.req(0, "input")?;
    let rank = x.ty.rank();
    if !(3..=4).contains(&rank) {
        return Err(format!("input must have rank 3 or 4, has shape {}", format_shape(&x.ty.shape)));
    }
    let spatial = rank - 2;
    let block = const_vector(a.req(1, "block_shape")?, "block_shape", &[DType::I32, DType::I64])?;
    if block.len() != spatial {
        return Err(format!("block_shape has {} entries, expected {spatial}", block.len()));
    }
    let block = block
        .iter()
        .map(|&b| if b >= 1 { Ok(b as usize) } else { Err(format!("block_shape {block:?} has a value below 1")) })
        .collect::<R<Vec<_>>>()?;
    let p = a.req(2, pairs_role)?;
    if p.ty.shape != [spatial, 2] {
        return Err(format!("{pairs_role} must have shape [{spatial},2], has {}", format_shape(&p.ty.shape)));
    }
    let vals = const_ints(p, pairs_role, &[DType::I32, DType::I64])?;
    let pairs: Vec<[i64; 2]> = vals.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    if let Some(bad) = pairs.iter().find(|c| c[0] < 0 || c[1] < 0) {
        return Err(format!("{pairs_role} {bad:?} is negative"));
    }
    Ok(BlockSpec { x, block, pairs })
}

/// BATCH_TO_SPACE_ND (tensorflow/lite/kernels/batch_to_space_nd.cc).
fn batch_to_space_nd(a: &Args) -> R<InferredType> {
    let BlockSpec { x, block, pairs: crops } = block_and_pairs(a, "crops")?;
    let prod = block.iter().try_fold(1usize, |acc, &b| acc.checked_mul(b)).ok_or("block overflows")?;
    let s = &x.ty.shape;
    if s[0] % prod != 0 {
        return Err(format!("batch {} is not a multiple of the block size product {prod}", s[0]));
    }
    let mut shape = vec![s[0] / prod];
    for (i, (&b, c)) in block.iter().zip(&crops).enumerate() {
        let full = s[i + 1].checked_mul(b).ok_or("spatial extent overflows")?;
        let out = to_i64(full).checked_sub(c[0]).and_then(|t| t.checked_sub(c[1])).unwrap_or(-1);
        shape.push(to_dim(out, &format!("cropped extent of spatial dimension {i}"))?);
    }
    shape.push(s[s.len() - 1]);
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// SPACE_TO_BATCH_ND (tensorflow/lite/kernels/space_to_batch_nd.cc).
fn space_to_batch_nd(a: &Args) -> R<InferredType> {
    let BlockSpec { x, block, pairs: pads } = block_and_pairs(a, "paddings")?;
    let prod = block.iter().try_fold(1usize, |acc, &b| acc.checked_mul(b)).ok_or("block overflows")?;
    let s = &x.ty.shape;
    let mut shape = vec![s[0].checked_mul(prod).ok_or("batch overflows")?];
    for (i, (&b, p)) in block.iter().zip(&pads).enumerate() {
        let padded = to_i64(s[i + 1]).checked_add(p[0]).and_then(|t| t.checked_add(p[1])).ok_or("padding overflows")?;
        if padded % b as i64 != 0 {
            return Err(format!("padded extent {padded} of spatial dimension {i} is not a multiple of block {b}"));
        }
        shape.push((padded / b as i64) as usize);
    }
    shape.push(s[s.len() - 1]);
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR (tensorflow/lite/kernels/resize_bilinear.cc,
/// resize_nearest_neighbor.cc): size is a constant int32 `[2]`.
fn resize(a: &Args, at: &ResizeAttrs, bilinear: bool) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    rank_is(x, "input", 4)?;
    if bilinear && at.align_corners && at.half_pixel_centers {
        return Err("align_corners and half_pixel_centers cannot both be set".to_string());
    }
    let size = const_vector(a.req(1, "size")?, "size", &[DType::I32])?;
    if size.len() != 2 {
        return Err(format!("size must have 2 entries, has {}", size.len()));
    }
    if size.iter().any(|&d| d <= 0) {
        return Err(format!("size {size:?} must be positive"));
    }
    let s = &x.ty.shape;
    Ok(InferredType::known(x.ty.dtype, vec![s[0], size[0] as usize, size[1] as usize, s[3]]))
}

/// Elementwise unary ops: the result has the input's type.
fn unary(a: &Args, allowed: &[DType]) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    dtype_in(x, "input", allowed)?;
    Ok(InferredType::known(x.ty.dtype, x.ty.shape.clone()))
}

/// SOFTMAX and L2_NORMALIZATION work along the last dimension, so they need one.
fn rank_at_least_one(a: &Args, allowed: &[DType]) -> R<InferredType> {
    let t = unary(a, allowed)?;
    if t.shape.as_ref().is_some_and(|s| s.is_empty()) {
        return Err("input must have rank 1 or more, is a scalar".to_string());
    }
    Ok(t)
}

/// PRELU (tensorflow/lite/kernels/activations.cc `PreluPrepare`): alpha broadcasts.
fn prelu(a: &Args) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    let alpha = a.req(1, "alpha")?;
    dtype_in(x, "input", &[DType::F32, DType::U8, DType::I8, DType::I16])?;
    same_dtype(alpha, "alpha", x, "input")?;
    let shape = broadcast_shapes(&x.ty.shape, &alpha.ty.shape).ok_or_else(|| {
        format!("shapes {} and {} do not broadcast", format_shape(&x.ty.shape), format_shape(&alpha.ty.shape))
    })?;
    Ok(InferredType::known(x.ty.dtype, shape))
}

/// QUANTIZE (tensorflow/lite/kernels/quantize.cc): the result dtype is whatever quantized
/// type the model asks for, so it is not inferred; the shape is the input's.
fn quantize(a: &Args) -> R<InferredType> {
    use DType::*;
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    dtype_in(x, "input", &[F32, F16, U8, I8, I16])?;
    Ok(InferredType { dtype: None, shape: Some(x.ty.shape.clone()) })
}

/// DEQUANTIZE (tensorflow/lite/kernels/dequantize.cc): always produces f32.
fn dequantize(a: &Args) -> R<InferredType> {
    use DType::*;
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    dtype_in(x, "input", &[U8, I8, I16, F16, I4])?;
    Ok(InferredType::known(F32, x.ty.shape.clone()))
}

/// DENSIFY (tensorflow/lite/kernels/densify.cc): the input must be a sparse constant; the
/// result has its dense type.
fn densify(a: &Args) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    if x.sparsity.is_none() || x.data.is_none() {
        return Err(format!("input '{}' is not a sparse constant", x.name));
    }
    Ok(InferredType::known(x.ty.dtype, x.ty.shape.clone()))
}

/// GATHER (tensorflow/lite/kernels/gather.cc): result shape
/// `params[..axis] ++ indices[batch_dims..] ++ params[axis+1..]`.
fn gather(a: &Args, axis: i32, batch_dims: i32) -> R<InferredType> {
    a.arity(2, 2)?;
    let p = a.req(0, "params")?;
    let idx = a.req(1, "indices")?;
    dtype_in(idx, "indices", &[DType::I16, DType::I32, DType::I64])?;
    let (pr, ir) = (p.ty.rank(), idx.ty.rank());
    let ax = norm_axis(i64::from(axis), pr, "axis")?;
    let bd = if batch_dims < 0 { i64::from(batch_dims) + ir as i64 } else { i64::from(batch_dims) };
    if bd < 0 || bd as usize > ir {
        return Err(format!("batch_dims {batch_dims} is out of range for params rank {pr} and indices rank {ir}"));
    }
    let bd = bd as usize;
    if bd > ax {
        return Err(format!("batch_dims {bd} exceeds axis {ax}"));
    }
    if p.ty.shape[..bd] != idx.ty.shape[..bd] {
        return Err(format!(
            "the first {bd} dimensions of params {} and indices {} differ",
            format_shape(&p.ty.shape),
            format_shape(&idx.ty.shape)
        ));
    }
    let mut shape = p.ty.shape[..ax].to_vec();
    shape.extend_from_slice(&idx.ty.shape[bd..]);
    shape.extend_from_slice(&p.ty.shape[ax + 1..]);
    Ok(InferredType::known(p.ty.dtype, shape))
}

/// ARG_MAX (tensorflow/lite/kernels/arg_min_max.cc): the axis is removed; the result has
/// `output_type` (i32 or i64).
/// SHAPE (tensorflow/lite/kernels/shape.cc): a vector of the input's dimensions.
fn shape_of(a: &Args, output_type: DType) -> R<InferredType> {
    a.arity(1, 1)?;
    let x = a.req(0, "input")?;
    if !matches!(output_type, DType::I32 | DType::I64) {
        return Err(format!("output_type {output_type} must be i32 or i64"));
    }
    Ok(InferredType::known(output_type, vec![x.ty.rank()]))
}

fn arg_max(a: &Args, output_type: DType) -> R<InferredType> {
    a.arity(2, 2)?;
    let x = a.req(0, "input")?;
    if !matches!(output_type, DType::I32 | DType::I64) {
        return Err(format!("output_type {output_type} must be i32 or i64"));
    }
    let axis = const_scalar(a.req(1, "axis")?, "axis", &[DType::I32, DType::I64])?;
    let ax = norm_axis(axis, x.ty.rank(), "axis")?;
    let mut shape = x.ty.shape.clone();
    shape.remove(ax);
    Ok(InferredType::known(output_type, shape))
}
