//! Kernels of the `movement` group (see the parent module): ops that only move or select
//! elements, so they are exact for every dtype.
//!
//! Every op is written once, generically over the element type, and dispatched over the
//! [`Data`] variants with [`map_data!`] (one operand) or [`match_variant!`] (operands that
//! must share a variant). Result shapes are computed from the operands the way TFLite's
//! kernels compute them and compared with the declared result types; a disagreement is an
//! error rather than a silently reshaped result.
//!
//! Quantized tensors: an op is claimed when copying is exact, i.e. when TFLite's kernel
//! itself only copies bytes (reshape, slice, gather, transpose, …), or when every data
//! operand and the result share one quantization. CONCATENATION with differing
//! quantization, or with a fused activation other than NONE, is left to the integer group
//! (`None`). Padding ops fill quantized tensors with the output zero point, as TFLite does.
//!
//! Submodules: `shape` (RESHAPE, SQUEEZE, EXPAND_DIMS, DENSIFY, SHAPE), `join` (CONCATENATION,
//! SPLIT, SPLIT_V, PACK, UNPACK), `pad` (PAD, PADV2, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND),
//! `slice` (STRIDED_SLICE, SLICE), `layout` (TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH,
//! RESIZE_NEAREST_NEIGHBOR), `index` (GATHER, ARG_MAX).

mod index;
mod join;
mod layout;
mod pad;
mod shape;
mod slice;

#[cfg(test)]
pub(crate) mod testutil;

use npuc_ir::{DType, Op, Quantization, TensorType};

use super::{KernelCtx, Outcome};
use crate::error::KernelError;
use crate::tensor::{Data, Tensor};

/// Maps the vector inside any [`Data`] variant to a new vector of the same element type,
/// wrapped in the same variant. `$body` sees the vector as `$v` and yields a `Vec`.
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::Data::F32($v) => $crate::Data::F32($body),
            $crate::Data::F16($v) => $crate::Data::F16($body),
            $crate::Data::BF16($v) => $crate::Data::BF16($body),
            $crate::Data::F64($v) => $crate::Data::F64($body),
            $crate::Data::I4($v) => $crate::Data::I4($body),
            $crate::Data::I8($v) => $crate::Data::I8($body),
            $crate::Data::U8($v) => $crate::Data::U8($body),
            $crate::Data::I16($v) => $crate::Data::I16($body),
            $crate::Data::U16($v) => $crate::Data::U16($body),
            $crate::Data::I32($v) => $crate::Data::I32($body),
            $crate::Data::U32($v) => $crate::Data::U32($body),
            $crate::Data::I64($v) => $crate::Data::I64($body),
            $crate::Data::U64($v) => $crate::Data::U64($body),
            $crate::Data::Bool($v) => $crate::Data::Bool($body),
        }
    };
}
pub(crate) use map_data;

/// Runs `$body` with `$V` naming the variant of `$data` (usable as pattern and
/// constructor), for ops whose operands must all share one variant.
macro_rules! match_variant {
    ($data:expr, $V:ident => $body:expr) => {
        match $data {
            $crate::Data::F32(_) => {
                use $crate::Data::F32 as $V;
                $body
            }
            $crate::Data::F16(_) => {
                use $crate::Data::F16 as $V;
                $body
            }
            $crate::Data::BF16(_) => {
                use $crate::Data::BF16 as $V;
                $body
            }
            $crate::Data::F64(_) => {
                use $crate::Data::F64 as $V;
                $body
            }
            $crate::Data::I4(_) => {
                use $crate::Data::I4 as $V;
                $body
            }
            $crate::Data::I8(_) => {
                use $crate::Data::I8 as $V;
                $body
            }
            $crate::Data::U8(_) => {
                use $crate::Data::U8 as $V;
                $body
            }
            $crate::Data::I16(_) => {
                use $crate::Data::I16 as $V;
                $body
            }
            $crate::Data::U16(_) => {
                use $crate::Data::U16 as $V;
                $body
            }
            $crate::Data::I32(_) => {
                use $crate::Data::I32 as $V;
                $body
            }
            $crate::Data::U32(_) => {
                use $crate::Data::U32 as $V;
                $body
            }
            $crate::Data::I64(_) => {
                use $crate::Data::I64 as $V;
                $body
            }
            $crate::Data::U64(_) => {
                use $crate::Data::U64 as $V;
                $body
            }
            $crate::Data::Bool(_) => {
                use $crate::Data::Bool as $V;
                $body
            }
        }
    };
}
pub(crate) use match_variant;

type KResult<T> = Result<T, KernelError>;

/// Runs the op if this group handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    match &cx.op.op {
        Op::Reshape { new_shape } => Some(shape::reshape(cx, new_shape.as_deref())),
        Op::Squeeze { axes } => Some(shape::squeeze(cx, axes)),
        Op::ExpandDims => Some(shape::expand_dims(cx)),
        Op::Densify => Some(shape::densify(cx)),
        Op::Shape { output_type } => Some(shape::shape_of(cx, *output_type)),
        Op::Concatenation { axis, activation } => join::concatenation(cx, *axis, *activation),
        Op::Split { num_splits } => Some(join::split(cx, *num_splits)),
        Op::SplitV { num_splits } => Some(join::split_v(cx, *num_splits)),
        Op::Pack { values_count, axis } => Some(join::pack(cx, *values_count, *axis)),
        Op::Unpack { num, axis } => Some(join::unpack(cx, *num, *axis)),
        Op::Pad => Some(pad::pad(cx, false)),
        Op::PadV2 => Some(pad::pad(cx, true)),
        Op::SpaceToBatchNd => Some(pad::space_to_batch_nd(cx)),
        Op::BatchToSpaceNd => Some(pad::batch_to_space_nd(cx)),
        Op::StridedSlice(at) => Some(slice::strided_slice(cx, at)),
        Op::Slice => Some(slice::slice(cx)),
        Op::Transpose => Some(layout::transpose(cx)),
        Op::DepthToSpace { block_size } => Some(layout::depth_to_space(cx, *block_size)),
        Op::SpaceToDepth { block_size } => Some(layout::space_to_depth(cx, *block_size)),
        Op::ResizeNearestNeighbor(at) => Some(layout::resize_nearest_neighbor(cx, at)),
        Op::Gather { axis, batch_dims } => Some(index::gather(cx, *axis, *batch_dims)),
        Op::ArgMax { output_type } => Some(index::arg_max(cx, *output_type)),
        _ => None,
    }
}

// ----------------------------------------------------------------------------------------
// Shared helpers
// ----------------------------------------------------------------------------------------

/// Whether two optional quantizations describe the same affine mapping (scales and zero
/// points; no quantization equals an empty one).
pub(crate) fn same_quant(a: Option<&Quantization>, b: Option<&Quantization>) -> bool {
    fn parts(q: Option<&Quantization>) -> (&[f32], &[i64]) {
        q.map_or((&[], &[]), |q| (&q.scale, &q.zero_point))
    }
    let ((sa, za), (sb, zb)) = (parts(a), parts(b));
    sa.len() == sb.len() && sa.iter().zip(sb).all(|(x, y)| x.to_bits() == y.to_bits()) && za == zb
}

/// TFLite's per-tensor `params` view of a quantization: the first scale and zero point, or
/// `(0, 0)` without quantization.
pub(crate) fn tensor_params(q: Option<&Quantization>) -> (f32, i64) {
    q.map_or((0.0, 0), |q| (q.scale.first().copied().unwrap_or(0.0), q.zero_point.first().copied().unwrap_or(0)))
}

/// Whether a type is an integer type with quantization attached.
pub(crate) fn is_quantized(t: &TensorType) -> bool {
    t.dtype.is_int() && t.quant.as_ref().is_some_and(|q| !q.scale.is_empty() || !q.zero_point.is_empty())
}

/// Resolves a possibly negative axis against `rank` (valid: `-rank..rank`).
pub(crate) fn norm_axis(axis: i64, rank: usize, what: &str) -> KResult<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        Err(KernelError::new(format!("{what} {axis} is out of range for rank {rank}")))
    } else {
        Ok(a as usize)
    }
}

/// The integer values of an index/shape operand.
pub(crate) fn ints(cx: &KernelCtx<'_>, i: usize, role: &str) -> KResult<Vec<i64>> {
    let t = cx.input(i)?;
    t.to_i64_vec()
        .ok_or_else(|| KernelError::new(format!("{role} (operand {i}) has dtype {}, expected integers", t.dtype())))
}

/// The single integer of a scalar (or one-element) operand.
pub(crate) fn scalar_int(cx: &KernelCtx<'_>, i: usize, role: &str) -> KResult<i64> {
    let v = ints(cx, i, role)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(KernelError::new(format!("{role} must hold exactly one value, holds {}", v.len()))),
    }
}

/// Converts an operand-derived extent to `usize`, rejecting negative values.
pub(crate) fn to_dim(x: i64, what: &str) -> KResult<usize> {
    usize::try_from(x).map_err(|_| KernelError::new(format!("{what} would be {x}, which is negative")))
}

/// Checks that result `k` is declared with `shape` and the dtype `dtype`.
pub(crate) fn check_result(cx: &KernelCtx<'_>, k: usize, dtype: DType, shape: &[usize]) -> KResult<()> {
    let t = cx.output_type(k)?;
    if t.dtype != dtype {
        return Err(KernelError::new(format!("result {k} is declared {} but the op produces {dtype}", t.dtype)));
    }
    if t.shape != shape && !cx.result_is_dynamic(k) {
        return Err(KernelError::new(format!(
            "the operands give result {k} the shape {shape:?}, but it is declared {:?}",
            t.shape
        )));
    }
    Ok(())
}

/// Row-major element strides of `shape`.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Checks that a tensor's element count matches its shape (kernels index by shape).
pub(crate) fn checked(t: &Tensor) -> KResult<&Tensor> {
    let n: usize = t.shape.iter().product();
    if n != t.len() {
        return Err(KernelError::new(format!("tensor of shape {:?} holds {} elements", t.shape, t.len())));
    }
    Ok(t)
}

/// One output dimension of a [`strided_gather`]: its extent and the signed step, in source
/// elements, between neighbouring output positions along it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Output extent.
    pub n: usize,
    /// Source step per output step.
    pub step: isize,
}

/// Reads `src` along an affine walk: output element `(k0, k1, …)` (row-major over `axes`)
/// is `src[base + Σ k_d · step_d]`. Callers guarantee every visited position is in range
/// (an out-of-range position would panic, never read out of bounds).
///
/// Size-1 dimensions are dropped and dimensions that continue each other are merged, so
/// contiguous runs are copied as slices.
pub(crate) fn strided_gather<T: Copy>(src: &[T], base: usize, axes: &[Walk]) -> Vec<T> {
    let total: usize = axes.iter().map(|a| a.n).product();
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    // Merge: dimension d followed by d+1 is one dimension when step_d = step_{d+1} · n_{d+1}.
    let mut dims: Vec<Walk> = Vec::with_capacity(axes.len());
    for &a in axes.iter().filter(|a| a.n != 1) {
        match dims.last_mut() {
            Some(last) if last.step == a.step * a.n as isize => {
                last.n *= a.n;
                last.step = a.step;
            }
            _ => dims.push(a),
        }
    }
    let Some((&inner, outer)) = dims.split_last() else {
        out.push(src[base]);
        return out;
    };
    let mut idx = vec![0usize; outer.len()];
    let mut off = base as isize;
    loop {
        if inner.step == 1 {
            let o = off as usize;
            out.extend_from_slice(&src[o..o + inner.n]);
        } else {
            let mut o = off;
            for _ in 0..inner.n {
                out.push(src[o as usize]);
                o += inner.step;
            }
        }
        // Advance the odometer over the outer dimensions.
        let mut k = outer.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            off += outer[k].step;
            if idx[k] < outer[k].n {
                break;
            }
            off -= outer[k].step * outer[k].n as isize;
            idx[k] = 0;
        }
    }
}

/// The same tensor data under a new shape (checked against the element count).
pub(crate) fn reshaped(x: &Tensor, shape: Vec<usize>) -> KResult<Tensor> {
    let n: usize = shape.iter().product();
    if n != x.len() {
        return Err(KernelError::new(format!(
            "cannot give {} elements (shape {:?}) the shape {shape:?}",
            x.len(),
            x.shape
        )));
    }
    Ok(Tensor { shape, data: x.data.clone() })
}

/// A one-element [`Data`] of an integer `dtype` holding `v`, if `v` fits the type.
pub(crate) fn int_scalar(dtype: DType, v: i64) -> Option<Data> {
    Some(match dtype {
        DType::I4 => Data::I4(vec![i8::try_from(v).ok().filter(|x| (-8..=7).contains(x))?]),
        DType::I8 => Data::I8(vec![i8::try_from(v).ok()?]),
        DType::U8 => Data::U8(vec![u8::try_from(v).ok()?]),
        DType::I16 => Data::I16(vec![i16::try_from(v).ok()?]),
        DType::U16 => Data::U16(vec![u16::try_from(v).ok()?]),
        DType::I32 => Data::I32(vec![i32::try_from(v).ok()?]),
        DType::U32 => Data::U32(vec![u32::try_from(v).ok()?]),
        DType::I64 => Data::I64(vec![v]),
        DType::U64 => Data::U64(vec![u64::try_from(v).ok()?]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gather_merges_and_reverses() {
        let src: Vec<i32> = (0..24).collect();
        // A plain copy of a [2,3,4] tensor merges to one slice.
        let all = strided_gather(&src, 0, &[Walk { n: 2, step: 12 }, Walk { n: 3, step: 4 }, Walk { n: 4, step: 1 }]);
        assert_eq!(all, src);
        // Reverse the last axis of row 1 of a [6,4] view.
        let rev = strided_gather(&src, 7, &[Walk { n: 4, step: -1 }]);
        assert_eq!(rev, vec![7, 6, 5, 4]);
        // Transpose [2,3] -> [3,2].
        let t = strided_gather(&src[..6], 0, &[Walk { n: 3, step: 1 }, Walk { n: 2, step: 3 }]);
        assert_eq!(t, vec![0, 3, 1, 4, 2, 5]);
        // Scalar and empty walks.
        assert_eq!(strided_gather(&src, 5, &[]), vec![5]);
        assert_eq!(strided_gather(&src, 5, &[Walk { n: 0, step: 1 }]), Vec::<i32>::new());
    }

    #[test]
    fn quantization_comparison() {
        let a = Quantization::per_tensor(0.5, 3);
        let mut b = a.clone();
        b.min = vec![-1.0];
        assert!(same_quant(Some(&a), Some(&b)));
        assert!(same_quant(None, Some(&Quantization::default())));
        assert!(!same_quant(Some(&a), Some(&Quantization::per_tensor(0.5, 4))));
        assert!(!same_quant(Some(&a), None));
        assert_eq!(tensor_params(Some(&a)), (0.5, 3));
        assert_eq!(tensor_params(None), (0.0, 0));
    }

    #[test]
    fn int_scalars_respect_their_range() {
        assert_eq!(int_scalar(DType::I8, -128), Some(Data::I8(vec![-128])));
        assert_eq!(int_scalar(DType::I8, 128), None);
        assert_eq!(int_scalar(DType::I4, -9), None);
        assert_eq!(int_scalar(DType::U8, 255), Some(Data::U8(vec![255])));
        assert_eq!(int_scalar(DType::F32, 0), None);
    }
}
