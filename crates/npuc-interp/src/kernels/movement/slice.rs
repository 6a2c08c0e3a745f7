//! STRIDED_SLICE and SLICE.

use npuc_ir::StridedSliceAttrs;

use super::{check_result, checked, ints, map_data, strided_gather, strides, KResult, Walk};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

/// How one dimension of the new-axis extended input is sliced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    /// Taken whole: covered by the ellipsis or past the end of the spec. Holds the input
    /// dimension.
    Full(usize),
    /// A size-1 axis inserted by `new_axis_mask`.
    NewAxis,
    /// Sliced by spec entry `orig` on input dimension `dim`.
    Spec { orig: usize, dim: usize },
}

/// Maps every dimension of the (new-axis extended) input to what slices it, as TFLite's
/// `BuildStridedSliceParams` does (tensorflow/lite/kernels/strided_slice.cc): the ellipsis
/// stands for as many whole dimensions as the spec leaves over, a new axis inserts a
/// size-1 dimension (ignored where the ellipsis bit is also set), and dimensions past the
/// spec are taken whole.
///
/// Like `npuc_ir::shape`, mask bits past the spec are ignored (TFLite would misplace new
/// axes for them), and more than one ellipsis bit or a spec longer than the extended rank
/// is an error.
fn map_dims(rank: usize, count: usize, ellipsis_mask: u32, new_axis_mask: u32) -> KResult<Vec<Dim>> {
    let ellipsis = ellipsis_mask;
    let new_axis = new_axis_mask & !ellipsis;
    if ellipsis.count_ones() > 1 {
        return Err(KernelError::new(format!("ellipsis_mask {ellipsis:#b} has more than one bit set")));
    }
    let eff = rank + new_axis.count_ones() as usize;
    if count > eff {
        return Err(KernelError::new(format!(
            "spec of {count} entries is longer than the input's rank {rank} plus {} new axes",
            eff - rank
        )));
    }
    let (ell_pos, expanded) =
        if ellipsis != 0 { (ellipsis.trailing_zeros() as usize, eff - count) } else { (usize::MAX, 0) };
    let mut dims = Vec::with_capacity(eff);
    let mut added = 0;
    for i in 0..eff {
        if ellipsis != 0 && i >= ell_pos && i <= ell_pos + expanded {
            dims.push(Dim::Full(i - added));
            continue;
        }
        let orig = if ellipsis != 0 && i > ell_pos { i - expanded } else { i };
        if orig < count && new_axis & (1 << orig) != 0 {
            dims.push(Dim::NewAxis);
            added += 1;
        } else if orig >= count {
            dims.push(Dim::Full(i - added));
        } else {
            dims.push(Dim::Spec { orig, dim: i - added });
        }
    }
    Ok(dims)
}

/// STRIDED_SLICE (tensorflow/lite/kernels/strided_slice.cc with
/// internal/strided_slice_logic.h `StridedSliceStartForAxis`/`StridedSliceEndForAxis` and
/// internal/reference/strided_slice.h):
/// - start: negative values count from the end, then clamp to `[0, n]` (stride > 0) or
///   `[-1, n-1]` (stride < 0); `begin_mask` makes it `0` or `n-1`;
/// - end: with `shrink_axis_mask`, `start + 1` (or `start` if `start >= n`); otherwise the
///   given end (plus `start` with `offset`), negative counted from the end, clamped the
///   same way; `end_mask` makes it `n` or `-1`;
/// - iteration runs from start while `i < end` (stride > 0) or `i > end` (stride < 0).
///
/// The result keeps every non-shrunk dimension, new axes as size 1. A shrunk dimension
/// that selects nothing (an index out of range, or a negative stride, for which TFLite's
/// loop runs zero times and leaves the result unwritten) is an error.
pub(super) fn strided_slice(cx: &KernelCtx<'_>, at: &StridedSliceAttrs) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let begin = ints(cx, 1, "begin")?;
    let end = ints(cx, 2, "end")?;
    let stride = ints(cx, 3, "strides")?;
    let count = begin.len();
    if end.len() != count || stride.len() != count {
        return Err(KernelError::new(format!(
            "begin, end and strides must have equal lengths, have {count}, {} and {}",
            end.len(),
            stride.len()
        )));
    }
    let spec_bits: u32 = if count >= 32 { u32::MAX } else { (1u32 << count) - 1 };
    let bit = |m: i32| (m as u32) & spec_bits;
    let dims = map_dims(x.shape.len(), count, bit(at.ellipsis_mask), bit(at.new_axis_mask))?;
    let (begin_mask, end_mask, shrink_mask) = (bit(at.begin_mask), bit(at.end_mask), bit(at.shrink_axis_mask));
    let in_strides = strides(&x.shape);
    let mut base: usize = 0;
    let mut walk = Vec::with_capacity(dims.len());
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        let (orig, dim) = match d {
            Dim::Full(dim) => {
                walk.push(Walk { n: x.shape[dim], step: in_strides[dim] as isize });
                shape.push(x.shape[dim]);
                continue;
            }
            Dim::NewAxis => {
                walk.push(Walk { n: 1, step: 0 });
                shape.push(1);
                continue;
            }
            Dim::Spec { orig, dim } => (orig, dim),
        };
        let s = stride[orig];
        if s == 0 {
            return Err(KernelError::new(format!("stride of spec entry {orig} is 0")));
        }
        let n = x.shape[dim] as i64;
        let m = 1u32 << orig;
        let (lo, hi) = if s > 0 { (0, n) } else { (-1, n - 1) };
        let mut start = begin[orig];
        if start < 0 {
            start += n;
        }
        start = start.clamp(lo, hi);
        if begin_mask & m != 0 {
            start = if s > 0 { 0 } else { n - 1 };
        }
        let shrink = shrink_mask & m != 0;
        let stop = if shrink {
            if start >= n {
                start
            } else {
                start + 1
            }
        } else {
            let mut e = end[orig];
            if at.offset {
                e = e.saturating_add(start);
            }
            if e < 0 {
                e += n;
            }
            e = e.clamp(lo, hi);
            if end_mask & m != 0 {
                e = if s > 0 { n } else { -1 };
            }
            e
        };
        let steps = if s > 0 { (stop - start + s - 1) / s } else { (start - stop + (-s) - 1) / (-s) };
        let steps = steps.max(0) as usize;
        if shrink {
            if steps != 1 {
                return Err(KernelError::new(format!(
                    "shrink_axis entry {orig} (begin {}, stride {s}) selects no element of a dimension of size {n}",
                    begin[orig]
                )));
            }
            base += start as usize * in_strides[dim];
            continue;
        }
        if steps > 0 {
            base += start as usize * in_strides[dim];
        }
        walk.push(Walk { n: steps, step: s as isize * in_strides[dim] as isize });
        shape.push(steps);
    }
    check_result(cx, 0, x.dtype(), &shape)?;
    let data = map_data!(&x.data, v => strided_gather(v, base, &walk));
    Ok(vec![Tensor { shape, data }])
}

/// SLICE (tensorflow/lite/kernels/slice.cc): operands input, begin, size (one entry per
/// dimension); a size of -1 means "to the end". `0 <= begin` and `begin + size <= n`.
pub(super) fn slice(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let begin = ints(cx, 1, "begin")?;
    let size = ints(cx, 2, "size")?;
    let rank = x.shape.len();
    if begin.len() != rank || size.len() != rank {
        return Err(KernelError::new(format!(
            "begin and size need {rank} entries (the input's rank), have {} and {}",
            begin.len(),
            size.len()
        )));
    }
    let in_strides = strides(&x.shape);
    let mut base = 0;
    let mut shape = Vec::with_capacity(rank);
    let mut walk = Vec::with_capacity(rank);
    for d in 0..rank {
        let (b, n) = (begin[d], x.shape[d] as i64);
        if b < 0 || b > n {
            return Err(KernelError::new(format!("begin {b} is out of range for dimension {d} of size {n}")));
        }
        let s = if size[d] == -1 { n - b } else { size[d] };
        if s < 0 || b + s > n {
            return Err(KernelError::new(format!("begin {b} with size {} exceeds dimension {d} of size {n}", size[d])));
        }
        if s > 0 {
            base += b as usize * in_strides[d];
        }
        shape.push(s as usize);
        walk.push(Walk { n: s as usize, step: in_strides[d] as isize });
    }
    check_result(cx, 0, x.dtype(), &shape)?;
    let data = map_data!(&x.data, v => strided_gather(v, base, &walk));
    Ok(vec![Tensor { shape, data }])
}

#[cfg(test)]
mod tests {
    use npuc_ir::{DType, Op, StridedSliceAttrs};

    use super::super::testutil::*;
    use crate::tensor::{Data, Tensor};

    fn ss(x: Tensor, b: &[i32], e: &[i32], s: &[i32], at: StridedSliceAttrs) -> Tensor {
        let n = b.len();
        OpTest::new().input(x).konst(i32s(&[n], b)).konst(i32s(&[n], e)).konst(i32s(&[n], s)).one(Op::StridedSlice(at))
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        match &t.data {
            Data::F32(v) => v.clone(),
            d => panic!("not f32: {d:?}"),
        }
    }

    #[test]
    fn basic_and_negative_indices() {
        let x = iota(&[3, 4]);
        let r = ss(x.clone(), &[1, -3], &[3, -1], &[1, 1], Default::default());
        assert_eq!(r.shape, vec![2, 2]);
        assert_eq!(vals(&r), vec![5.0, 6.0, 9.0, 10.0]);
        // Out-of-range ends clamp.
        let r = ss(x, &[-10, 2], &[10, 100], &[2, 1], Default::default());
        assert_eq!(r.shape, vec![2, 2]);
        assert_eq!(vals(&r), vec![2.0, 3.0, 10.0, 11.0]);
    }

    #[test]
    fn negative_strides_and_masks() {
        let x = iota(&[5]);
        // x[::-1]
        let at = StridedSliceAttrs { begin_mask: 1, end_mask: 1, ..Default::default() };
        assert_eq!(vals(&ss(x.clone(), &[0], &[0], &[-1], at)), vec![4.0, 3.0, 2.0, 1.0, 0.0]);
        // x[3:0:-2]
        assert_eq!(vals(&ss(x.clone(), &[3], &[0], &[-2], Default::default())), vec![3.0, 1.0]);
        // x[-1:-6:-3] -> 4, 1
        assert_eq!(vals(&ss(x.clone(), &[-1], &[-6], &[-3], Default::default())), vec![4.0, 1.0]);
        // end_mask with positive stride from 2
        let at = StridedSliceAttrs { end_mask: 1, ..Default::default() };
        assert_eq!(vals(&ss(x, &[2], &[0], &[1], at)), vec![2.0, 3.0, 4.0]);
    }

    #[test]
    fn shrink_axis_and_new_axis() {
        let x = iota(&[2, 3, 4]);
        // x[1, :, -1] -> shape [3]
        let at =
            StridedSliceAttrs { shrink_axis_mask: 0b101, begin_mask: 0b010, end_mask: 0b010, ..Default::default() };
        let r = ss(x.clone(), &[1, 0, -1], &[2, 0, 0], &[1, 1, 1], at);
        assert_eq!(r.shape, vec![3]);
        assert_eq!(vals(&r), vec![15.0, 19.0, 23.0]);
        // x[tf.newaxis, 0] -> shape [1, 3, 4]
        let at = StridedSliceAttrs { new_axis_mask: 0b01, shrink_axis_mask: 0b10, ..Default::default() };
        let r = ss(x.clone(), &[0, 0], &[0, 1], &[1, 1], at);
        assert_eq!(r.shape, vec![1, 3, 4]);
        assert_eq!(vals(&r), (0..12).map(|i| i as f32).collect::<Vec<_>>());
        // x[:, newaxis, 1:3] -> shape [2, 1, 2, 4]
        let at = StridedSliceAttrs { begin_mask: 1, end_mask: 1, new_axis_mask: 0b10, ..Default::default() };
        let r = ss(x.clone(), &[0, 0, 1], &[0, 0, 3], &[1, 1, 1], at);
        assert_eq!(r.shape, vec![2, 1, 2, 4]);
        assert_eq!(vals(&r)[..4], [4.0, 5.0, 6.0, 7.0]);
        // Out-of-range shrink index is an error.
        let r =
            OpTest::new().input(x).konst(i32s(&[1], &[2])).konst(i32s(&[1], &[3])).konst(i32s(&[1], &[1])).run_with(
                Op::StridedSlice(StridedSliceAttrs { shrink_axis_mask: 1, ..Default::default() }),
                vec![ty(DType::F32, &[3, 4], None)],
            );
        assert_err(r, "selects no element");
    }

    #[test]
    fn ellipsis() {
        let x = iota(&[2, 3, 4]);
        // x[..., 1] -> [2, 3]
        let at = StridedSliceAttrs { ellipsis_mask: 0b01, shrink_axis_mask: 0b10, ..Default::default() };
        let r = ss(x.clone(), &[0, 1], &[0, 2], &[1, 1], at);
        assert_eq!(r.shape, vec![2, 3]);
        assert_eq!(vals(&r), vec![1.0, 5.0, 9.0, 13.0, 17.0, 21.0]);
        // x[1, ..., ::2] -> [3, 2]
        let at = StridedSliceAttrs {
            ellipsis_mask: 0b010,
            shrink_axis_mask: 0b001,
            begin_mask: 0b100,
            end_mask: 0b100,
            ..Default::default()
        };
        let r = ss(x.clone(), &[1, 0, 0], &[2, 0, 0], &[1, 1, 2], at);
        assert_eq!(r.shape, vec![3, 2]);
        assert_eq!(vals(&r), vec![12.0, 14.0, 16.0, 18.0, 20.0, 22.0]);
        // x[..., newaxis] with ellipsis then new axis -> [2, 3, 4, 1]
        let at = StridedSliceAttrs { ellipsis_mask: 0b01, new_axis_mask: 0b10, ..Default::default() };
        let r = ss(x, &[0, 0], &[0, 0], &[1, 1], at);
        assert_eq!(r.shape, vec![2, 3, 4, 1]);
    }

    #[test]
    fn offset_end_is_a_size() {
        let x = iota(&[6]);
        let at = StridedSliceAttrs { offset: true, ..Default::default() };
        // begin 2, size 3 -> 2, 3, 4; begin is a runtime input.
        let r = OpTest::new()
            .input(x.clone())
            .input(i32s(&[1], &[2]))
            .konst(i32s(&[1], &[3]))
            .konst(i32s(&[1], &[1]))
            .run_with(Op::StridedSlice(at.clone()), vec![ty(DType::F32, &[3], None)])
            .unwrap();
        assert_eq!(vals(&r[0]), vec![2.0, 3.0, 4.0]);
        // begin -2, size 2 -> 4, 5.
        let r = ss(x, &[-2], &[2], &[1], at);
        assert_eq!(vals(&r), vec![4.0, 5.0]);
    }

    #[test]
    fn strided_slice_other_dtypes() {
        let x = t(&[4], Data::I4(vec![-8, -1, 3, 7]));
        let r = OpTest::new()
            .input(x)
            .konst(i32s(&[1], &[3]))
            .konst(i32s(&[1], &[0]))
            .konst(i32s(&[1], &[-2]))
            .one(Op::StridedSlice(Default::default()));
        assert_eq!(r.data, Data::I4(vec![7, -1]));
        let x = t(&[2, 2], Data::Bool(vec![true, false, false, true]));
        let r = OpTest::new()
            .input(x)
            .konst(i32s(&[2], &[0, 1]))
            .konst(i32s(&[2], &[2, 2]))
            .konst(i32s(&[2], &[1, 1]))
            .one(Op::StridedSlice(Default::default()));
        assert_eq!(r.data, Data::Bool(vec![false, true]));
    }

    #[test]
    fn slice_with_minus_one_and_errors() {
        let x = t(&[3, 4], Data::I64((0..12).collect()));
        let r = OpTest::new().input(x.clone()).konst(i32s(&[2], &[1, 1])).konst(i64s(&[2], &[-1, 2])).one(Op::Slice);
        assert_eq!(r.shape, vec![2, 2]);
        assert_eq!(r.data, Data::I64(vec![5, 6, 9, 10]));
        let r = OpTest::new()
            .input(x)
            .input(i32s(&[2], &[2, 0]))
            .konst(i32s(&[2], &[2, 1]))
            .run_with(Op::Slice, vec![ty(DType::I64, &[2, 1], None)]);
        assert_err(r, "exceeds dimension 0");
    }
}
