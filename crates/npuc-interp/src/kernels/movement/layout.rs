//! Layout changes: TRANSPOSE, DEPTH_TO_SPACE, SPACE_TO_DEPTH, RESIZE_NEAREST_NEIGHBOR.

use npuc_ir::ResizeAttrs;

use super::{check_result, checked, ints, map_data, strided_gather, strides, KResult, Walk};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

/// TRANSPOSE (tensorflow/lite/kernels/transpose.cc): result dimension `i` is input
/// dimension `perm[i]`; `perm` must be a permutation of `0..rank` (no negative entries).
pub(super) fn transpose(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let perm = ints(cx, 1, "perm")?;
    let rank = x.shape.len();
    if perm.len() != rank {
        return Err(KernelError::new(format!("perm has {} entries but the input has rank {rank}", perm.len())));
    }
    let mut seen = vec![false; rank];
    for &p in &perm {
        if p < 0 || p as usize >= rank || std::mem::replace(&mut seen[p as usize], true) {
            return Err(KernelError::new(format!("perm {perm:?} is not a permutation of 0..{rank}")));
        }
    }
    let s = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p as usize]).collect();
    let walk: Vec<Walk> = perm.iter().map(|&p| Walk { n: x.shape[p as usize], step: s[p as usize] as isize }).collect();
    check_result(cx, 0, x.dtype(), &shape)?;
    let data = map_data!(&x.data, v => strided_gather(v, 0, &walk));
    Ok(vec![Tensor { shape, data }])
}

/// A rank-4 input and a positive block size.
fn nhwc_block<'a>(cx: &KernelCtx<'a>, block: u32) -> KResult<(&'a Tensor, usize)> {
    let x = checked(cx.input(0)?)?;
    if x.shape.len() != 4 {
        return Err(KernelError::new(format!("input must have rank 4, has shape {:?}", x.shape)));
    }
    if block == 0 {
        return Err(KernelError::new("block_size is 0"));
    }
    Ok((x, block as usize))
}

/// DEPTH_TO_SPACE (tensorflow/lite/kernels/depth_to_space.cc,
/// internal/reference/reference_ops.h `DepthToSpace`, DCR order): output
/// `(b, h·bs + dy, w·bs + dx, c)` is input `(b, h, w, (dy·bs + dx)·C_out + c)`.
pub(super) fn depth_to_space(cx: &KernelCtx<'_>, block: u32) -> KResult<Vec<Tensor>> {
    let (x, bs) = nhwc_block(cx, block)?;
    let [n, h, w, d] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    if d % (bs * bs) != 0 {
        return Err(KernelError::new(format!("depth {d} is not a multiple of block_size² = {}", bs * bs)));
    }
    let od = d / (bs * bs);
    let shape = vec![n, h * bs, w * bs, od];
    check_result(cx, 0, x.dtype(), &shape)?;
    let s = strides(&x.shape);
    let walk = [
        Walk { n, step: s[0] as isize },
        Walk { n: h, step: s[1] as isize },
        Walk { n: bs, step: (bs * od) as isize },
        Walk { n: w, step: s[2] as isize },
        Walk { n: bs, step: od as isize },
        Walk { n: od, step: 1 },
    ];
    let data = map_data!(&x.data, v => strided_gather(v, 0, &walk));
    Ok(vec![Tensor { shape, data }])
}

/// SPACE_TO_DEPTH (tensorflow/lite/kernels/space_to_depth.cc,
/// internal/reference/reference_ops.h `SpaceToDepth`): output
/// `(b, h, w, (dy·bs + dx)·C + c)` is input `(b, h·bs + dy, w·bs + dx, c)`.
pub(super) fn space_to_depth(cx: &KernelCtx<'_>, block: u32) -> KResult<Vec<Tensor>> {
    let (x, bs) = nhwc_block(cx, block)?;
    let [n, h, w, d] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    if h % bs != 0 || w % bs != 0 {
        return Err(KernelError::new(format!("height {h} and width {w} must be multiples of block_size {bs}")));
    }
    let shape = vec![n, h / bs, w / bs, d * bs * bs];
    check_result(cx, 0, x.dtype(), &shape)?;
    let s = strides(&x.shape);
    let walk = [
        Walk { n, step: s[0] as isize },
        Walk { n: h / bs, step: (bs * s[1]) as isize },
        Walk { n: w / bs, step: (bs * s[2]) as isize },
        Walk { n: bs, step: s[1] as isize },
        Walk { n: bs, step: s[2] as isize },
        Walk { n: d, step: 1 },
    ];
    let data = map_data!(&x.data, v => strided_gather(v, 0, &walk));
    Ok(vec![Tensor { shape, data }])
}

/// TFLite's `GetNearestNeighbor` (internal/reference/resize_nearest_neighbor.h), in f32
/// exactly as the kernel computes it: `scale = (in-1)/(out-1)` with `align_corners` (and
/// more than one output), else `in/out`; the source index is
/// `round((o + offset)·scale)` with `align_corners` (round half away from zero), else
/// `floor((o + offset)·scale)`, with `offset = 0.5` for `half_pixel_centers`; it is
/// capped at `in-1`, and at 0 from below with `half_pixel_centers`.
pub(crate) fn nearest_index(o: usize, input: usize, output: usize, align_corners: bool, half_pixel: bool) -> usize {
    let scale = if align_corners && output > 1 {
        (input as i32 - 1) as f32 / (output as i32 - 1) as f32
    } else {
        input as i32 as f32 / output as i32 as f32
    };
    let offset = if half_pixel { 0.5f32 } else { 0.0 };
    let v = (o as i32 as f32 + offset) * scale;
    let idx = if align_corners { v.round() as i32 } else { v.floor() as i32 };
    let mut idx = idx.min(input as i32 - 1);
    if half_pixel {
        idx = idx.max(0);
    }
    idx.max(0) as usize
}

/// RESIZE_NEAREST_NEIGHBOR (tensorflow/lite/kernels/resize_nearest_neighbor.cc): NHWC
/// input, operand 1 holds the output `[height, width]`; each output pixel copies the
/// input pixel [`nearest_index`] picks in each direction.
pub(super) fn resize_nearest_neighbor(cx: &KernelCtx<'_>, at: &ResizeAttrs) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    if x.shape.len() != 4 {
        return Err(KernelError::new(format!("input must have rank 4, has shape {:?}", x.shape)));
    }
    let size = ints(cx, 1, "size")?;
    if size.len() != 2 || size.iter().any(|&d| d <= 0 || d > i64::from(i32::MAX)) {
        return Err(KernelError::new(format!("size {size:?} must be two positive extents")));
    }
    let [n, h, w, c] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let (oh, ow) = (size[0] as usize, size[1] as usize);
    let shape = vec![n, oh, ow, c];
    check_result(cx, 0, x.dtype(), &shape)?;
    let ys: Vec<usize> = (0..oh).map(|y| nearest_index(y, h, oh, at.align_corners, at.half_pixel_centers)).collect();
    let xs: Vec<usize> = (0..ow).map(|v| nearest_index(v, w, ow, at.align_corners, at.half_pixel_centers)).collect();
    let data = map_data!(&x.data, v => {
        let mut out = Vec::with_capacity(n * oh * ow * c);
        if c > 0 && h > 0 && w > 0 {
            for b in 0..n {
                for &iy in &ys {
                    for &ix in &xs {
                        let o = ((b * h + iy) * w + ix) * c;
                        out.extend_from_slice(&v[o..o + c]);
                    }
                }
            }
        }
        out
    });
    Ok(vec![Tensor { shape, data }])
}

#[cfg(test)]
mod tests {
    use npuc_ir::{DType, Op, ResizeAttrs};

    use super::super::testutil::*;
    use super::nearest_index;
    use crate::tensor::Data;

    #[test]
    fn transpose_2d_and_4d() {
        let r = OpTest::new().input(iota(&[2, 3])).konst(i32s(&[2], &[1, 0])).one(Op::Transpose);
        assert_eq!(r.shape, vec![3, 2]);
        assert_eq!(r.data, Data::F32(vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
        // NHWC -> NCHW on i16.
        let x = t(&[1, 2, 2, 3], Data::I16((0..12).collect()));
        let r = OpTest::new().input(x).konst(i64s(&[4], &[0, 3, 1, 2])).one(Op::Transpose);
        assert_eq!(r.shape, vec![1, 3, 2, 2]);
        assert_eq!(r.data, Data::I16(vec![0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]));
        let bad = OpTest::new()
            .input(iota(&[2, 3]))
            .input(i32s(&[2], &[0, 0]))
            .run_with(Op::Transpose, vec![ty(DType::F32, &[2, 2], None)]);
        assert_err(bad, "not a permutation");
    }

    #[test]
    fn transpose_large_matches_naive() {
        let shape = [3usize, 5, 7, 2];
        let x = iota(&shape);
        let perm = [2usize, 0, 3, 1];
        let r = OpTest::new().input(x).konst(i32s(&[4], &[2, 0, 3, 1])).one(Op::Transpose);
        let mut want = Vec::new();
        for a in 0..shape[perm[0]] {
            for b in 0..shape[perm[1]] {
                for c in 0..shape[perm[2]] {
                    for d in 0..shape[perm[3]] {
                        let mut idx = [0usize; 4];
                        idx[perm[0]] = a;
                        idx[perm[1]] = b;
                        idx[perm[2]] = c;
                        idx[perm[3]] = d;
                        want.push((((idx[0] * 5 + idx[1]) * 7 + idx[2]) * 2 + idx[3]) as f32);
                    }
                }
            }
        }
        assert_eq!(r.data, Data::F32(want));
    }

    #[test]
    fn depth_to_space_and_back() {
        // TF's example: [1, 1, 1, 4] -> [1, 2, 2, 1].
        let r = OpTest::new().input(f32s(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0])).one(Op::DepthToSpace { block_size: 2 });
        assert_eq!((r.shape.clone(), r.data.clone()), (vec![1, 2, 2, 1], Data::F32(vec![1.0, 2.0, 3.0, 4.0])));
        // [1, 2, 2, 4] -> [1, 4, 4, 1] (TF docs example 3).
        let x = iota(&[1, 2, 2, 4]);
        let r = OpTest::new().input(x.clone()).one(Op::DepthToSpace { block_size: 2 });
        assert_eq!(r.data, Data::F32(vec![0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.]));
        let back = OpTest::new().input(r).one(Op::SpaceToDepth { block_size: 2 });
        assert_eq!(back, x);
        // Depth > 1 per output pixel, u8.
        let x = t(&[1, 1, 2, 8], Data::U8((0..16).collect()));
        let r = OpTest::new().input(x.clone()).one(Op::DepthToSpace { block_size: 2 });
        assert_eq!(r.shape, vec![1, 2, 4, 2]);
        assert_eq!(r.data, Data::U8(vec![0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]));
        let back = OpTest::new().input(r).one(Op::SpaceToDepth { block_size: 2 });
        assert_eq!(back, x);
    }

    #[test]
    fn nearest_index_formula() {
        // Plain: floor(o * in/out).
        let plain: Vec<usize> = (0..5).map(|o| nearest_index(o, 2, 5, false, false)).collect();
        assert_eq!(plain, vec![0, 0, 0, 1, 1]);
        // align_corners: round(o * (in-1)/(out-1)); 3 -> 5: scale 0.5 -> 0, 0.5->1, 1, 1.5->2, 2.
        let ac: Vec<usize> = (0..5).map(|o| nearest_index(o, 3, 5, true, false)).collect();
        assert_eq!(ac, vec![0, 1, 1, 2, 2]);
        // half_pixel: floor((o + 0.5) * in/out); 2 -> 5: 0.2, 0.6, 1.0, 1.4, 1.8.
        let hp: Vec<usize> = (0..5).map(|o| nearest_index(o, 2, 5, false, true)).collect();
        assert_eq!(hp, vec![0, 0, 1, 1, 1]);
        // Downscale 5 -> 2 with half-pixel: floor(1.25)=1, floor(3.75)=3.
        let d: Vec<usize> = (0..2).map(|o| nearest_index(o, 5, 2, false, true)).collect();
        assert_eq!(d, vec![1, 3]);
        // align_corners with one output pixel falls back to in/out.
        assert_eq!(nearest_index(0, 4, 1, true, false), 0);
    }

    #[test]
    fn resize_nearest_neighbor_runs() {
        let x = t(&[1, 2, 2, 1], Data::I8(vec![1, 2, 3, 4]));
        let r = OpTest::new()
            .input(x.clone())
            .konst(i32s(&[2], &[3, 3]))
            .one(Op::ResizeNearestNeighbor(ResizeAttrs::default()));
        assert_eq!(r.data, Data::I8(vec![1, 1, 2, 1, 1, 2, 3, 3, 4]));
        let at = ResizeAttrs { align_corners: true, half_pixel_centers: false };
        let r = OpTest::new().input(x.clone()).konst(i32s(&[2], &[3, 3])).one(Op::ResizeNearestNeighbor(at));
        assert_eq!(r.data, Data::I8(vec![1, 2, 2, 3, 4, 4, 3, 4, 4]));
        let at = ResizeAttrs { align_corners: false, half_pixel_centers: true };
        let r = OpTest::new().input(x).konst(i32s(&[2], &[3, 3])).one(Op::ResizeNearestNeighbor(at));
        assert_eq!(r.data, Data::I8(vec![1, 2, 2, 3, 4, 4, 3, 4, 4]));
        // Depth 2, batch 2, f32.
        let x = iota(&[2, 1, 2, 2]);
        let r =
            OpTest::new().input(x).konst(i32s(&[2], &[2, 1])).one(Op::ResizeNearestNeighbor(ResizeAttrs::default()));
        assert_eq!(r.data, Data::F32(vec![0., 1., 0., 1., 4., 5., 4., 5.]));
    }
}
