//! AVERAGE_POOL_2D, MAX_POOL_2D, MEAN and SUM.

use npuc_ir::Pool2dAttrs;

use super::{dims4, for_row_blocks, input_f32, output_shape, positive, single_output, Clamp, KResult, KernelCtx};
use crate::error::KernelError;
use crate::kernels::window::{out_size, padding_before, valid_taps};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PoolKind {
    Average,
    Max,
}

struct Pool<'a> {
    x: &'a [f32],
    kind: PoolKind,
    clamp: Clamp,
    ih: usize,
    iw: usize,
    c: usize,
    oh: usize,
    ow: usize,
    fh: usize,
    fw: usize,
    sh: usize,
    sw: usize,
    pad_t: usize,
    pad_l: usize,
}

/// The window taps `0..filter` starting at `origin` that fall inside `0..size`
/// (TFLite's `filter_*_start` / `filter_*_end`).
fn window(origin: isize, filter: usize, size: usize) -> std::ops::Range<usize> {
    valid_taps(origin, 1, filter, size)
}

/// Pooling (reference_ops::AveragePool / MaxPool): the average divides by the number of
/// window elements inside the input (padding is not counted); the maximum starts from the
/// lowest finite float. Then the fused activation.
pub(super) fn pool2d(cx: &KernelCtx<'_>, at: &Pool2dAttrs, kind: PoolKind) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let [n, ih, iw, c] = dims4(&cx.input(0)?.shape, "input")?;
    positive(&at.stride, "stride")?;
    positive(&at.filter, "filter size")?;
    let (fh, fw) = (at.filter[0] as usize, at.filter[1] as usize);
    let (sh, sw) = (at.stride[0] as usize, at.stride[1] as usize);
    let oh = out_size(at.padding, ih, fh, sh, 1);
    let ow = out_size(at.padding, iw, fw, sw, 1);
    let declared = output_shape(cx)?;
    if declared != [n, oh, ow, c] {
        return Err(KernelError::new(format!("result is declared {declared:?}, pooling gives {:?}", [n, oh, ow, c])));
    }
    let p = Pool {
        x,
        kind,
        clamp: Clamp::new(at.activation),
        ih,
        iw,
        c,
        oh,
        ow,
        fh,
        fw,
        sh,
        sw,
        pad_t: padding_before(sh, 1, ih, fh, oh),
        pad_l: padding_before(sw, 1, iw, fw, ow),
    };
    // TFLite fails an average over a window that lies entirely in the padding.
    let empty_y = (0..oh).any(|y| window((y * sh) as isize - p.pad_t as isize, fh, ih).is_empty());
    let empty_x = (0..ow).any(|x| window((x * sw) as isize - p.pad_l as isize, fw, iw).is_empty());
    if n * c > 0 && (empty_y || empty_x) {
        return Err(KernelError::new("a pooling window lies entirely in the padding"));
    }
    let mut out = vec![0.0f32; n * oh * ow * c];
    for_row_blocks(&mut out, ow * c, ow * c * fh * fw, |r0, block| pool_rows(&p, r0, block));
    single_output(cx, out)
}

multiversion! {
    /// Output rows `r0..` (one row = one batch and output y) of a pooling op.
    fn pool_rows(p: &Pool<'_>, r0: usize, block: &mut [f32]) {
        let c = p.c;
        for (ri, orow) in block.chunks_exact_mut(p.ow * c).enumerate() {
            let r = r0 + ri;
            let (b, y) = (r / p.oh, r % p.oh);
            let iy0 = (y * p.sh) as isize - p.pad_t as isize;
            let ys = window(iy0, p.fh, p.ih);
            for (xo, o) in orow.chunks_exact_mut(c).enumerate() {
                let ix0 = (xo * p.sw) as isize - p.pad_l as isize;
                let xs = window(ix0, p.fw, p.iw);
                let init = if p.kind == PoolKind::Average { 0.0 } else { f32::MIN };
                o.fill(init);
                for fy in ys.clone() {
                    let row = ((b * p.ih) + (iy0 + fy as isize) as usize) * p.iw;
                    for fx in xs.clone() {
                        let s = (row + (ix0 + fx as isize) as usize) * c;
                        let v = &p.x[s..s + c];
                        match p.kind {
                            PoolKind::Average => o.iter_mut().zip(v).for_each(|(a, &v)| *a += v),
                            // std::max(a, v): `a < v ? v : a`.
                            PoolKind::Max => o.iter_mut().zip(v).for_each(|(a, &v)| *a = if *a < v { v } else { *a }),
                        }
                    }
                }
                if p.kind == PoolKind::Average {
                    let count = (ys.len() * xs.len()) as f32;
                    o.iter_mut().for_each(|a| *a = p.clamp.apply(*a / count));
                } else {
                    o.iter_mut().for_each(|a| *a = p.clamp.apply(*a));
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReduceKind {
    Mean,
    Sum,
}

/// MEAN / SUM over the axes in operand 1 (negative axes count from the end, repeats are
/// allowed), as reference_ops::ReduceGeneric / Mean compute them: the input is visited in
/// row-major order, each element added to its output's f32 sum; a mean then divides by the
/// number of elements reduced into each output.
pub(super) fn reduce(cx: &KernelCtx<'_>, kind: ReduceKind) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let shape = &cx.input(0)?.shape;
    let axes_t = cx.input(1)?;
    let axes = axes_t.to_i64_vec().ok_or_else(|| KernelError::new(format!("axes have dtype {}", axes_t.dtype())))?;
    let rank = shape.len();
    let mut reduced = vec![false; rank];
    for &a in &axes {
        let r = rank as i64;
        let ax = if a < 0 { a + r } else { a };
        if ax < 0 || ax >= r {
            return Err(KernelError::new(format!("axis {a} is out of range for rank {rank}")));
        }
        reduced[ax as usize] = true;
    }
    let out_len: usize = shape.iter().zip(&reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).product();
    let count: usize = shape.iter().zip(&reduced).filter(|(_, &r)| r).map(|(&d, _)| d).product();
    let mut acc = vec![0.0f32; out_len];
    if rank == 0 {
        acc.copy_from_slice(x);
    } else if !x.is_empty() {
        // Output strides per input dimension (0 for reduced ones).
        let mut ostride = vec![0usize; rank];
        let mut s = 1;
        for d in (0..rank).rev() {
            if !reduced[d] {
                ostride[d] = s;
                s *= shape[d];
            }
        }
        let inner = shape[rank - 1];
        let last_reduced = reduced[rank - 1];
        let outer = &shape[..rank - 1];
        let mut idx = vec![0usize; outer.len()];
        let mut base = 0usize;
        for row in x.chunks_exact(inner) {
            if last_reduced {
                let mut s = acc[base];
                for &v in row {
                    s += v;
                }
                acc[base] = s;
            } else {
                for (a, &v) in acc[base..base + inner].iter_mut().zip(row) {
                    *a += v;
                }
            }
            let mut d = outer.len();
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                base += ostride[d];
                if idx[d] < outer[d] {
                    break;
                }
                base -= ostride[d] * outer[d];
                idx[d] = 0;
            }
        }
    }
    if kind == ReduceKind::Mean {
        let n = count as f32;
        acc.iter_mut().for_each(|a| *a /= n);
    }
    single_output(cx, acc)
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn window_clips_to_the_input() {
        assert_eq!(window(-1, 3, 4), 1..3);
        assert_eq!(window(2, 3, 4), 0..2);
        assert_eq!(window(0, 2, 4), 0..2);
        assert_eq!(window(-5, 3, 4), 3..3);
        assert_eq!(window(5, 3, 4), 0..0);
    }
}
