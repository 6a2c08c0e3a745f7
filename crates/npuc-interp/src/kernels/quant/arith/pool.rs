//! AVERAGE_POOL_2D, MAX_POOL_2D (int8, int16, uint8), MEAN (int8, int16, uint8) and SUM.
//!
//! Pooling works on raw values: TFLite's integer pooling kernels neither read nor check
//! the output quantization (the converter keeps it equal to the input's); the average is
//! rounded half away from zero over the taps inside the input, and the fused activation
//! clamps with the output's quantization.
//!
//! MEAN follows `reference_ops::QuantizedMeanOrSum` (what LiteRT 2.3's reference resolver
//! runs for every quantized MEAN): an int32 sum per output, the input zero point removed,
//! then one `MultiplyByQuantizedMultiplier` by `input_scale / output_scale` (from `double`
//! scales) with `1 / count` folded into the multiplier (`(m << s) / count`, `shift - s`).
//!
//! SUM: LiteRT 2.3's reference kernel for quantized SUM writes garbage (see the oracle
//! test), so SUM reproduces the builtin kernel LiteRT actually runs, `optimized_ops::
//! QuantizedMeanOrSum` with `compute_sum`: in float, `round(sum * scale + bias) +
//! output_zero_point` with `scale = input_scale / output_scale` and
//! `bias = -input_zero_point * scale * count`, then clamped.

use npuc_ir::{DType, Pool2dAttrs};

use super::{act_range, from_ints, in_q, int_operand, int_range, ints, out_q, out_tensor};
use crate::error::KernelError;
use crate::kernels::quant::fixed_point::{mean_multiplier, multiply_by_quantized_multiplier};
use crate::kernels::window::{out_size, padding_before};
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

type R = Result<Vec<Tensor>, KernelError>;

fn err<T>(msg: impl Into<String>) -> Result<T, KernelError> {
    Err(KernelError::new(msg))
}

struct PoolGeom {
    n: usize,
    ih: usize,
    iw: usize,
    c: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

fn pool_geom(cx: &KernelCtx<'_>, a: &Pool2dAttrs) -> Result<PoolGeom, KernelError> {
    let input = cx.input(0)?;
    let out = &cx.output_type(0)?.shape;
    let &[n, ih, iw, c] = &input.shape[..] else {
        return err(format!("pooling input must be 4-D, got {:?}", input.shape));
    };
    let (kh, kw) = (a.filter[0] as usize, a.filter[1] as usize);
    let (sh, sw) = (a.stride[0] as usize, a.stride[1] as usize);
    if kh == 0 || kw == 0 || sh == 0 || sw == 0 {
        return err("zero window or stride");
    }
    let (oh, ow) = (out_size(a.padding, ih, kh, sh, 1), out_size(a.padding, iw, kw, sw, 1));
    if out[..] != [n, oh, ow, c] {
        return err(format!("the result is declared {out:?}, TFLite computes [{n}, {oh}, {ow}, {c}]"));
    }
    let (ph, pw) = (padding_before(sh, 1, ih, kh, oh), padding_before(sw, 1, iw, kw, ow));
    Ok(PoolGeom { n, ih, iw, c, oh, ow, kh, kw, sh, sw, ph, pw })
}

/// Runs `reduce(values of the window inside the input, count)` per output element.
fn pool(g: &PoolGeom, x: &[i32], reduce: impl Fn(&mut dyn Iterator<Item = i32>, i32) -> i32) -> Vec<i32> {
    let mut out = Vec::with_capacity(g.n * g.oh * g.ow * g.c);
    for b in 0..g.n {
        for oy in 0..g.oh {
            let y0 = (oy * g.sh) as isize - g.ph as isize;
            let ys = y0.max(0) as usize;
            let ye = ((y0 + g.kh as isize).min(g.ih as isize)).max(0) as usize;
            for ox in 0..g.ow {
                let x0 = (ox * g.sw) as isize - g.pw as isize;
                let xs = x0.max(0) as usize;
                let xe = ((x0 + g.kw as isize).min(g.iw as isize)).max(0) as usize;
                let count = (ye.saturating_sub(ys) * xe.saturating_sub(xs)) as i32;
                for ch in 0..g.c {
                    let mut it = (ys..ye)
                        .flat_map(|iy| (xs..xe).map(move |ix| ((b * g.ih + iy) * g.iw + ix) * g.c + ch))
                        .map(|i| x[i]);
                    out.push(reduce(&mut it, count));
                }
            }
        }
    }
    out
}

fn check_pool_types(cx: &KernelCtx<'_>) -> Result<DType, KernelError> {
    let d = cx.input(0)?.dtype();
    let o = cx.output_type(0)?.dtype;
    if d != o || !matches!(d, DType::I8 | DType::U8 | DType::I16) {
        return err(format!("quantized pooling takes i8, u8 or i16 to the same type, got {d} -> {o}"));
    }
    Ok(d)
}

pub(super) fn average_pool(cx: &KernelCtx<'_>, a: &Pool2dAttrs) -> R {
    let d = check_pool_types(cx)?;
    let g = pool_geom(cx, a)?;
    let (lo, hi) = act_range(a.activation, cx.output_type(0)?)?;
    let x = ints(cx.input(0)?)?;
    if g.oh * g.ow > 0 && g.ih * g.iw == 0 {
        return err("empty pooling window");
    }
    let out = pool(&g, &x, |it, count| {
        let acc: i32 = it.fold(0i32, |s, v| s.wrapping_add(v));
        if count == 0 {
            return lo;
        }
        // Round to the closest integer, ties away from zero (C++ division truncates).
        let avg = if acc > 0 { (acc + count / 2) / count } else { (acc - count / 2) / count };
        avg.clamp(lo, hi)
    });
    out_tensor(cx, from_ints(d, out)?)
}

pub(super) fn max_pool(cx: &KernelCtx<'_>, a: &Pool2dAttrs) -> R {
    let d = check_pool_types(cx)?;
    let g = pool_geom(cx, a)?;
    let (lo, hi) = act_range(a.activation, cx.output_type(0)?)?;
    let (tmin, _) = int_range(d)?;
    let x = ints(cx.input(0)?)?;
    let out = pool(&g, &x, |it, _| it.fold(tmin, i32::max).clamp(lo, hi));
    out_tensor(cx, from_ints(d, out)?)
}

/// The reduced axes, resolved and deduplicated in the order given (TFLite's ResolveAxis).
fn resolve_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, KernelError> {
    let mut out = Vec::new();
    for &a in axes {
        let r = if a < 0 { a + rank as i64 } else { a };
        if r < 0 || r >= rank as i64 {
            return err(format!("axis {a} is out of range for rank {rank}"));
        }
        if !out.contains(&(r as usize)) {
            out.push(r as usize);
        }
    }
    Ok(out)
}

/// Sums (int32, wrapping) of `x` over `axes`, one per output element in row-major order
/// of the kept dimensions, and the number of elements in each sum.
fn reduce_sum(x: &[i32], shape: &[usize], axes: &[usize]) -> (Vec<i32>, usize) {
    let rank = shape.len();
    let kept: Vec<usize> = (0..rank).filter(|d| !axes.contains(d)).collect();
    let n_out: usize = kept.iter().map(|&d| shape[d]).product();
    let count: usize = axes.iter().map(|&d| shape[d]).product();
    let mut sums = vec![0i32; n_out];
    // Output stride of each input dimension (0 for reduced ones).
    let mut ostride = vec![0usize; rank];
    let mut acc = 1usize;
    for &d in kept.iter().rev() {
        ostride[d] = acc;
        acc *= shape[d];
    }
    let mut idx = vec![0usize; rank];
    let mut o = 0usize;
    for &v in x {
        sums[o] = sums[o].wrapping_add(v);
        // Odometer step.
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            o += ostride[d];
            if idx[d] < shape[d] {
                break;
            }
            o -= ostride[d] * idx[d];
            idx[d] = 0;
        }
    }
    (sums, count)
}

pub(super) fn mean_or_sum(cx: &KernelCtx<'_>, compute_sum: bool) -> R {
    let input = cx.input(0)?;
    let out_ty = cx.output_type(0)?;
    let d = input.dtype();
    if d != out_ty.dtype || !matches!(d, DType::I8 | DType::U8 | DType::I16) {
        return err(format!("quantized MEAN/SUM takes i8, u8 or i16 to the same type, got {d} -> {}", out_ty.dtype));
    }
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    if d == DType::I16 && (iq.zp != 0 || oq.zp != 0) {
        return err(format!("int16 MEAN/SUM needs zero points 0, got {} and {}", iq.zp, oq.zp));
    }
    let axes = resolve_axes(&int_operand(cx, 1)?, input.shape.len())?;
    let (kmin, kmax) = int_range(d)?;
    let x = ints(input)?;
    let (sums, count) = reduce_sum(&x, &input.shape, &axes);
    let n_out: usize = out_ty.shape.iter().product();
    if sums.len() != n_out {
        return err(format!(
            "reducing {:?} over {axes:?} gives {} values, the result holds {n_out}",
            input.shape,
            sums.len()
        ));
    }
    if x.is_empty() || count == 0 {
        return out_tensor(cx, from_ints(d, vec![0; n_out])?);
    }
    if compute_sum {
        let scale = iq.scale / oq.scale;
        let bias = (-iq.zp) as f32 * scale * count as f32;
        let out = sums
            .into_iter()
            .map(|s| {
                let v = super::f32_to_i32_x86((s as f32 * scale + bias).round());
                v.wrapping_add(oq.zp).clamp(kmin, kmax)
            })
            .collect();
        return out_tensor(cx, from_ints(d, out)?);
    }
    let qm = mean_multiplier(iq.scale, oq.scale, count);
    let (mult, shift) = (qm.multiplier, qm.shift);
    let zp_total = (count as i64).wrapping_mul(i64::from(iq.zp));
    let out = sums
        .into_iter()
        .map(|s| {
            let shifted = (i64::from(s) - zp_total) as i32;
            multiply_by_quantized_multiplier(shifted, mult, shift).wrapping_add(oq.zp).clamp(kmin, kmax)
        })
        .collect();
    out_tensor(cx, from_ints(d, out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce_sum_over_middle_axes() {
        // [2, 2, 3] summed over axis 1.
        let x: Vec<i32> = (0..12).collect();
        let (s, n) = reduce_sum(&x, &[2, 2, 3], &[1]);
        assert_eq!(n, 2);
        assert_eq!(s, vec![3, 5, 7, 15, 17, 19]);
        let (s, n) = reduce_sum(&x, &[2, 2, 3], &[0, 2]);
        assert_eq!(n, 6);
        assert_eq!(s, vec![1 + 2 + 6 + 7 + 8, 3 + 4 + 5 + 9 + 10 + 11]);
    }
}
