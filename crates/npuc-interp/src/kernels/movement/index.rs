//! Indexing ops: GATHER and ARG_MAX.

use npuc_ir::DType;

use super::{check_result, checked, ints, map_data, norm_axis, scalar_int, KResult};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::{Data, Tensor};
use crate::with_data;

/// GATHER (tensorflow/lite/kernels/gather.cc, internal/reference/gather.h): result
/// `params[..axis] ++ indices[batch_dims..] ++ params[axis+1..]`. A negative `axis` counts
/// from the end of `params`' rank, a negative `batch_dims` from the end of `indices`' rank;
/// `batch_dims <= axis` and the leading `batch_dims` extents of both must agree. Every
/// index must lie in `0..params[axis]`: TFLite rejects negative indices and out-of-range
/// ones alike.
pub(super) fn gather(cx: &KernelCtx<'_>, axis: i32, batch_dims: i32) -> KResult<Vec<Tensor>> {
    let p = checked(cx.input(0)?)?;
    let it = checked(cx.input(1)?)?;
    let idx = ints(cx, 1, "indices")?;
    let (pr, ir) = (p.shape.len(), it.shape.len());
    let ax = norm_axis(i64::from(axis), pr, "axis")?;
    let bd = if batch_dims < 0 { i64::from(batch_dims) + ir as i64 } else { i64::from(batch_dims) };
    if bd < 0 || bd as usize > ir || bd as usize > ax {
        return Err(KernelError::new(format!(
            "batch_dims {batch_dims} must lie in 0..={} (indices rank {ir}, axis {ax})",
            ir.min(ax)
        )));
    }
    let bd = bd as usize;
    if p.shape[..bd] != it.shape[..bd] {
        return Err(KernelError::new(format!(
            "the first {bd} dimensions of params {:?} and indices {:?} differ",
            p.shape, it.shape
        )));
    }
    let axis_size = p.shape[ax];
    if let Some(&bad) = idx.iter().find(|&&i| i < 0 || i as u64 >= axis_size as u64) {
        return Err(KernelError::new(format!("index {bad} is out of range for axis {ax} of size {axis_size}")));
    }
    let mut shape = p.shape[..ax].to_vec();
    shape.extend_from_slice(&it.shape[bd..]);
    shape.extend_from_slice(&p.shape[ax + 1..]);
    check_result(cx, 0, p.dtype(), &shape)?;
    let batch: usize = p.shape[..bd].iter().product();
    let outer: usize = p.shape[bd..ax].iter().product();
    let inner: usize = p.shape[ax + 1..].iter().product();
    let coords: usize = it.shape[bd..].iter().product();
    let data = map_data!(&p.data, v => {
        let mut out = Vec::with_capacity(batch * outer * coords * inner);
        for b in 0..batch {
            let ids = &idx[b * coords..(b + 1) * coords];
            for o in 0..outer {
                let row = (b * outer + o) * axis_size;
                for &i in ids {
                    let s = (row + i as usize) * inner;
                    out.extend_from_slice(&v[s..s + inner]);
                }
            }
        }
        out
    });
    Ok(vec![Tensor { shape, data }])
}

/// ARG_MAX (tensorflow/lite/kernels/arg_min_max.cc, internal/reference/arg_min_max.h): the
/// index of the largest element along the axis held by operand 1 (one value, negative
/// counts from the end), which is removed from the shape. Ties keep the first index: an
/// element replaces the running maximum only when it compares strictly greater. The result
/// is `output_type` (i32 or i64).
///
/// NaN: TFLite's reference loop would let a leading NaN win, but LiteRT runs
/// `optimized_ops::ArgMinMax` under every resolver, which skips NaNs: the result is the
/// first index of the largest non-NaN element, 0 when all are NaN. npuc does the same,
/// which matches LiteRT 2.3 exactly along any axis but the last; along the last axis its
/// vectorised float path answers NaN-containing rows depending on the row length (SSE max
/// semantics), which is not reproduced.
pub(super) fn arg_max(cx: &KernelCtx<'_>, output_type: DType) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let axis = scalar_int(cx, 1, "axis")?;
    let ax = norm_axis(axis, x.shape.len(), "axis")?;
    let mut shape = x.shape.clone();
    let axis_size = shape.remove(ax);
    if axis_size == 0 {
        return Err(KernelError::new(format!("axis {ax} has size 0")));
    }
    check_result(cx, 0, output_type, &shape)?;
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..].iter().product();
    let best = with_data!(&x.data, v => argmax_impl(v, outer, axis_size, inner));
    let data = match output_type {
        DType::I64 => Data::I64(best.into_iter().map(|i| i as i64).collect()),
        DType::I32 => Data::I32(
            best.into_iter()
                .map(|i| i32::try_from(i).map_err(|_| KernelError::new(format!("index {i} does not fit i32"))))
                .collect::<KResult<_>>()?,
        ),
        other => return Err(KernelError::new(format!("output_type {other} must be i32 or i64"))),
    };
    Ok(vec![Tensor { shape, data }])
}

/// First index of the maximum along the middle dimension of an `[outer, n, inner]` view,
/// NaNs skipped (`x != x` only holds for NaN; for integers the NaN terms are constant).
fn argmax_impl<T: Copy + PartialOrd>(v: &[T], outer: usize, n: usize, inner: usize) -> Vec<usize> {
    let mut idx = vec![0usize; outer * inner];
    let mut best: Vec<T> = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        best.extend_from_slice(&v[o * n * inner..o * n * inner + inner]);
    }
    for o in 0..outer {
        let (bo, io) = (&mut best[o * inner..(o + 1) * inner], &mut idx[o * inner..(o + 1) * inner]);
        for k in 1..n {
            let row = &v[(o * n + k) * inner..(o * n + k + 1) * inner];
            for ((b, i), &c) in bo.iter_mut().zip(io.iter_mut()).zip(row) {
                #[allow(clippy::eq_op)]
                let better = c > *b || (*b != *b && c == c);
                if better {
                    *b = c;
                    *i = k;
                }
            }
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use half::f16;
    use npuc_ir::{DType, Op, Quantization};

    use super::super::testutil::*;
    use crate::tensor::Data;

    #[test]
    fn gather_axis_zero_and_inner_axis() {
        let p = iota(&[3, 2]);
        let r = OpTest::new().input(p.clone()).konst(i32s(&[2], &[2, 0])).one(Op::Gather { axis: 0, batch_dims: 0 });
        assert_eq!((r.shape, r.data), (vec![2, 2], Data::F32(vec![4.0, 5.0, 0.0, 1.0])));
        let r = OpTest::new()
            .input(p.clone())
            .konst(i64s(&[2, 2], &[1, 1, 0, 1]))
            .one(Op::Gather { axis: -1, batch_dims: 0 });
        assert_eq!(r.shape, vec![3, 2, 2]);
        assert_eq!(r.data, Data::F32(vec![1., 1., 0., 1., 3., 3., 2., 3., 5., 5., 4., 5.]));
        // Scalar index drops the axis.
        let r = OpTest::new().input(p).konst(i32s(&[], &[1])).one(Op::Gather { axis: 1, batch_dims: 0 });
        assert_eq!((r.shape, r.data), (vec![3], Data::F32(vec![1.0, 3.0, 5.0])));
    }

    #[test]
    fn gather_with_batch_dims() {
        // params [2, 3], indices [2, 2], batch_dims 1: out[b, i] = params[b, idx[b, i]].
        let p = t(&[2, 3], Data::I8(vec![10, 11, 12, 20, 21, 22]));
        let q = Some(Quantization::per_tensor(0.5, 1));
        let r = OpTest::new()
            .input_q(p.clone(), q)
            .konst(i32s(&[2, 2], &[2, 0, 1, 1]))
            .one(Op::Gather { axis: 1, batch_dims: 1 });
        assert_eq!((r.shape, r.data), (vec![2, 2], Data::I8(vec![12, 10, 21, 21])));
        // batch_dims -1 with indices rank 2 is 1 too.
        let r = OpTest::new().input(p).konst(i32s(&[2, 1], &[1, 2])).one(Op::Gather { axis: 1, batch_dims: -1 });
        assert_eq!((r.shape, r.data), (vec![2, 1], Data::I8(vec![11, 22])));
        // params [2, 2, 2], axis 2, batch_dims 1, indices [2, 1].
        let p = t(&[2, 2, 2], Data::Bool(vec![true, false, false, true, true, true, false, false]));
        let r = OpTest::new().input(p).konst(i32s(&[2, 1], &[1, 0])).one(Op::Gather { axis: 2, batch_dims: 1 });
        assert_eq!(r.shape, vec![2, 2, 1]);
        assert_eq!(r.data, Data::Bool(vec![false, true, true, false]));
    }

    #[test]
    fn gather_rejects_negative_and_large_indices() {
        let r = OpTest::new()
            .input(iota(&[3]))
            .input(i32s(&[1], &[-1]))
            .run_with(Op::Gather { axis: 0, batch_dims: 0 }, vec![ty(DType::F32, &[1], None)]);
        assert_err(r, "index -1 is out of range");
        let r = OpTest::new()
            .input(iota(&[3]))
            .input(t(&[1], Data::I16(vec![3])))
            .run_with(Op::Gather { axis: 0, batch_dims: 0 }, vec![ty(DType::F32, &[1], None)]);
        assert_err(r, "index 3 is out of range");
    }

    #[test]
    fn arg_max_ties_axes_and_output_types() {
        let x = f32s(&[2, 3], &[1.0, 5.0, 5.0, 7.0, 7.0, 2.0]);
        let r = OpTest::new().input(x.clone()).konst(i32s(&[], &[1])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!((r.shape, r.data), (vec![2], Data::I32(vec![1, 0])));
        let r = OpTest::new().input(x.clone()).konst(i64s(&[1], &[-2])).one(Op::ArgMax { output_type: DType::I64 });
        assert_eq!((r.shape, r.data), (vec![3], Data::I64(vec![1, 1, 0])));
        // NaNs are skipped; all-NaN gives 0.
        let n = f32::NAN;
        let x = f32s(&[4, 3], &[n, 0.0, n, 1.0, n, n, 2.0, -1.0, n, 2.0, n, n]);
        let r = OpTest::new().input(x).konst(i32s(&[], &[0])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!(r.data, Data::I32(vec![2, 0, 0]));
    }

    #[test]
    fn arg_max_integer_bool_and_half_inputs() {
        let x = t(&[1, 4], Data::I8(vec![-128, 127, 127, 0]));
        let r = OpTest::new().input(x).konst(i32s(&[], &[1])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!(r.data, Data::I32(vec![1]));
        let x = t(&[4], Data::U8(vec![3, 200, 9, 200]));
        let r = OpTest::new().input(x).konst(i32s(&[], &[0])).one(Op::ArgMax { output_type: DType::I64 });
        assert_eq!(r.data, Data::I64(vec![1]));
        let x = t(&[3], Data::Bool(vec![false, true, true]));
        let r = OpTest::new().input(x).konst(i32s(&[], &[0])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!(r.data, Data::I32(vec![1]));
        let x = t(&[2], Data::F16(vec![f16::from_f32(-1.0), f16::from_f32(0.5)]));
        let r = OpTest::new().input(x).konst(i32s(&[], &[0])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!(r.data, Data::I32(vec![1]));
        let x = t(&[2, 2], Data::I64(vec![i64::MIN, i64::MAX, 5, 5]));
        let r = OpTest::new().input(x).konst(i32s(&[], &[0])).one(Op::ArgMax { output_type: DType::I32 });
        assert_eq!(r.data, Data::I32(vec![1, 0]));
    }
}
