//! CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV and FULLY_CONNECTED on int8 activations
//! (int32 bias) and in the 16x8 mode (int16 activations, int8 weights, int64 bias).
//!
//! CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV rescale with fixed-point multipliers
//! from `PopulateConvolutionQuantizationParams`: per output channel,
//! `double(input_scale) * double(filter_scale[c]) / double(output_scale)` (a per-tensor
//! filter scale is broadcast to every channel), encoded by `QuantizeMultiplier`, applied by
//! the 32-bit `MultiplyByQuantizedMultiplier` (int8) or the 64-bit one (16x8).
//!
//! FULLY_CONNECTED differs: LiteRT 2.3's reference kernel rescales in double,
//! `round(double(acc) * double(input_scale) * double(filter_scale) / double(output_scale))`
//! (per channel or per tensor, int8 and 16x8 alike). The oracle tells the two apart: a
//! fixed-point FULLY_CONNECTED is off by one on some outputs.
//!
//! The loops are organised for speed, not like TFLite's (which recompute every offset
//! per tap): integer sums are exact and wrap identically in any order, so the results
//! are the reference kernels' bit for bit. A padded tap contributes nothing in TFLite;
//! here the im2col patch holds the input zero point there, whose offset-corrected value
//! is 0, so the same holds.

use npuc_ir::{Activation, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Padding, TransposeConvAttrs};
use rayon::prelude::*;

use super::{act_range, in_q, out_q, out_tensor, scales};
use crate::error::KernelError;
use crate::kernels::quant::fixed_point::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_i64, quantize_multiplier, QuantizedMultiplier,
};
use crate::kernels::window::{out_size, padding_before};
use crate::kernels::KernelCtx;
use crate::tensor::{Data, Tensor};

type R = Result<Vec<Tensor>, KernelError>;

fn err<T>(msg: impl Into<String>) -> Result<T, KernelError> {
    Err(KernelError::new(msg))
}

/// Geometry of a 2-D windowed op over NHWC tensors.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    ih: usize,
    iw: usize,
    ic: usize,
    oh: usize,
    ow: usize,
    oc: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    ph: usize,
    pw: usize,
}

fn dims4(shape: &[usize], what: &str) -> Result<[usize; 4], KernelError> {
    match shape {
        &[a, b, c, d] => Ok([a, b, c, d]),
        _ => err(format!("{what} must be 4-D, got {shape:?}")),
    }
}

/// Geometry of a convolution-like op whose output size follows from its input, checked
/// against the declared result shape.
#[allow(clippy::too_many_arguments)]
fn window_geom(
    input: &[usize],
    out: &[usize],
    kh: usize,
    kw: usize,
    oc: usize,
    padding: Padding,
    stride: [u32; 2],
    dilation: [u32; 2],
) -> Result<Geom, KernelError> {
    let [n, ih, iw, ic] = dims4(input, "input")?;
    let (sh, sw) = (stride[0] as usize, stride[1] as usize);
    let (dh, dw) = (dilation[0].max(1) as usize, dilation[1].max(1) as usize);
    if sh == 0 || sw == 0 || kh == 0 || kw == 0 {
        return err("zero stride or empty window");
    }
    let oh = out_size(padding, ih, kh, sh, dh);
    let ow = out_size(padding, iw, kw, sw, dw);
    if out != [n, oh, ow, oc] {
        return err(format!("the result is declared {out:?}, TFLite computes [{n}, {oh}, {ow}, {oc}]"));
    }
    let ph = padding_before(sh, dh, ih, kh, oh);
    let pw = padding_before(sw, dw, iw, kw, ow);
    Ok(Geom { n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh, dw, ph, pw })
}

/// Per-channel multipliers (`PopulateConvolutionQuantizationParams`).
fn channel_multipliers(
    in_scale: f32,
    filter_scales: &[f32],
    out_scale: f32,
    channels: usize,
) -> Result<Vec<QuantizedMultiplier>, KernelError> {
    if filter_scales.len() != 1 && filter_scales.len() != channels {
        return err(format!("the filter has {} scales for {channels} output channels", filter_scales.len()));
    }
    Ok((0..channels)
        .map(|c| {
            let fs = if filter_scales.len() == 1 { filter_scales[0] } else { filter_scales[c] };
            quantize_multiplier(f64::from(in_scale) * f64::from(fs) / f64::from(out_scale))
        })
        .collect())
}

/// Per-channel effective scales in double (LiteRT 2.3's reference FULLY_CONNECTED
/// rescales with `round(acc * scale)` rather than with a fixed-point multiplier).
fn channel_scales_f64(in_scale: f32, filter_scales: &[f32], out_scale: f32, channels: usize) -> Vec<f64> {
    (0..channels)
        .map(|c| {
            let fs = if filter_scales.len() == 1 { filter_scales[0] } else { filter_scales[c] };
            f64::from(in_scale) * f64::from(fs) / f64::from(out_scale)
        })
        .collect()
}

/// The filter must be quantized along `axis` if it is per-channel.
fn check_filter_axis(cx: &KernelCtx<'_>, slot: usize, axis: u32) -> Result<(), KernelError> {
    let ty = cx.input_type(slot)?;
    if let Some(q) = &ty.quant {
        if q.scale.len() > 1 && q.axis != axis {
            return err(format!("per-channel filter quantized along axis {}, expected {axis}", q.axis));
        }
    }
    Ok(())
}

fn i8s<'a>(t: &'a Tensor, what: &str) -> Result<&'a [i8], KernelError> {
    t.as_i8().ok_or_else(|| KernelError::new(format!("{what} must be i8, got {}", t.dtype())))
}

fn i16s<'a>(t: &'a Tensor, what: &str) -> Result<&'a [i16], KernelError> {
    match &t.data {
        Data::I16(v) => Ok(v),
        d => err(format!("{what} must be i16, got {}", d.dtype())),
    }
}

/// A bias operand widened to i64 (int32 for int8 kernels, int64 for 16x8), or `None`.
fn bias_of(cx: &KernelCtx<'_>, slot: usize, channels: usize, want: &[DType]) -> Result<Option<Vec<i64>>, KernelError> {
    let Some(b) = cx.opt_input(slot) else { return Ok(None) };
    if !want.contains(&b.dtype()) {
        return err(format!(
            "bias must be {}, got {}",
            want.iter().map(|d| d.name()).collect::<Vec<_>>().join(" or "),
            b.dtype()
        ));
    }
    if b.len() != channels {
        return err(format!("bias has {} elements for {channels} output channels", b.len()));
    }
    Ok(b.to_i64_vec())
}

/// Runs `f(row_index, row)` over the rows of `out`, on the worker pool when it has more
/// than one thread.
fn for_each_row<T: Send>(out: &mut [T], row_len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if row_len == 0 {
        return;
    }
    if crate::kernels::worker_threads() > 1 && out.len() > row_len {
        out.par_chunks_mut(row_len).enumerate().for_each(|(i, r)| f(i, r));
    } else {
        out.chunks_mut(row_len).enumerate().for_each(|(i, r)| f(i, r));
    }
}

#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).fold(0i32, |s, (&x, &y)| s.wrapping_add(i32::from(x) * i32::from(y)))
}

/// The int8 requantization of an accumulator: `MultiplyByQuantizedMultiplier`, output
/// offset, clamp.
#[inline]
fn requant8(acc: i32, m: QuantizedMultiplier, out_off: i32, lo: i32, hi: i32) -> i8 {
    (multiply_by_quantized_multiplier(acc, m.multiplier, m.shift).wrapping_add(out_off)).clamp(lo, hi) as i8
}

/// The fully-connected requantization of LiteRT 2.3's reference kernels:
/// `round(double(acc) * scale)`, offset, clamp.
#[inline]
fn requant8_f64(acc: i32, scale: f64, out_off: i32, lo: i32, hi: i32) -> i8 {
    super::f64_to_i32_x86((f64::from(acc) * scale).round()).wrapping_add(out_off).clamp(lo, hi) as i8
}

/// The 16x8 fully-connected requantization: `round(acc * scale)` in double, then offset
/// and clamp.
#[inline]
fn requant16(acc: i64, scale: f64, out_off: i32, lo: i32, hi: i32) -> i16 {
    super::f64_to_i32_x86((acc as f64 * scale).round()).wrapping_add(out_off).clamp(lo, hi) as i16
}

/// The 16x8 convolution requantization: the 64-bit `MultiplyByQuantizedMultiplier`
/// (multiplier rounded to 16 bits, one rounding shift), offset, clamp.
#[inline]
fn requant16_fixed(acc: i64, m: QuantizedMultiplier, out_off: i32, lo: i32, hi: i32) -> i16 {
    multiply_by_quantized_multiplier_i64(acc, m.multiplier, m.shift).wrapping_add(out_off).clamp(lo, hi) as i16
}

// ---------------------------------------------------------------------------------------
// CONV_2D
// ---------------------------------------------------------------------------------------

pub(super) fn conv2d(cx: &KernelCtx<'_>, a: &Conv2dAttrs) -> R {
    let input = cx.input(0)?;
    let filter = cx.input(1)?;
    let out_ty = cx.output_type(0)?;
    let [oc, kh, kw, fic] = dims4(&filter.shape, "filter")?;
    let g = window_geom(&input.shape, &out_ty.shape, kh, kw, oc, a.padding, a.stride, a.dilation)?;
    if fic == 0 || g.ic % fic != 0 || oc % (g.ic / fic).max(1) != 0 {
        return err(format!("input depth {} does not split into groups of the filter depth {fic}", g.ic));
    }
    let groups = g.ic / fic;
    check_filter_axis(cx, 1, 0)?;
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    let fscales = scales(cx.input_type(1)?);
    let (lo, hi) = act_range(a.activation, out_ty)?;
    match (input.dtype(), filter.dtype(), out_ty.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let bias = bias_of(cx, 2, oc, &[DType::I32])?;
            let mults = channel_multipliers(iq.scale, fscales, oq.scale, oc)?;
            let out = conv_i8(
                &g,
                groups,
                i8s(input, "input")?,
                i8s(filter, "filter")?,
                bias.as_deref(),
                -iq.zp,
                oq.zp,
                &mults,
                lo,
                hi,
            );
            out_tensor(cx, Data::I8(out))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let bias = bias_of(cx, 2, oc, &[DType::I64, DType::I32])?;
            let mults = channel_multipliers(iq.scale, fscales, oq.scale, oc)?;
            let out = conv_i16(
                &g,
                groups,
                i16s(input, "input")?,
                i8s(filter, "filter")?,
                bias.as_deref(),
                -iq.zp,
                oq.zp,
                &mults,
                lo,
                hi,
            );
            out_tensor(cx, Data::I16(out))
        }
        (i, f, o) => err(format!("quantized CONV_2D takes i8 x i8 -> i8 or i16 x i8 -> i16, got {i} x {f} -> {o}")),
    }
}

/// Dot-product rows are padded to a multiple of this many lanes (zeros in the filter's
/// padding), so the inner loop has no remainder and vectorizes as i16 multiply-adds.
const LANES: usize = 16;

#[inline]
fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    // i16 x i16 products summed in i32: the shape LLVM turns into pmaddwd.
    let mut acc = 0i32;
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        acc = acc.wrapping_add(x.iter().zip(y).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum::<i32>());
    }
    acc
}

#[allow(clippy::too_many_arguments)]
fn conv_i8(
    g: &Geom,
    groups: usize,
    input: &[i8],
    filter: &[i8],
    bias: Option<&[i64]>,
    in_off: i32,
    out_off: i32,
    mults: &[QuantizedMultiplier],
    lo: i32,
    hi: i32,
) -> Vec<i8> {
    let fic = g.ic / groups;
    let k = g.kh * g.kw * fic;
    let kp = k.div_ceil(LANES) * LANES;
    let ocg = g.oc / groups;
    // acc = sum f * (x + in_off) + bias = dot(f, x) + (in_off * sum f + bias): the second
    // term is per channel.
    let base: Vec<i32> = (0..g.oc)
        .map(|c| {
            let rs = filter[c * k..(c + 1) * k].iter().fold(0i32, |s, &f| s.wrapping_add(i32::from(f)));
            in_off.wrapping_mul(rs).wrapping_add(bias.map_or(0, |b| b[c] as i32))
        })
        .collect();
    let mut f16 = vec![0i16; g.oc * kp];
    for c in 0..g.oc {
        for (d, &s) in f16[c * kp..c * kp + k].iter_mut().zip(&filter[c * k..(c + 1) * k]) {
            *d = i16::from(s);
        }
    }
    // A padded tap holds the input zero point (-in_off): its corrected value is 0.
    let pad_value = (-in_off) as i16;
    let mut out = vec![0i8; g.n * g.oh * g.ow * g.oc];
    for_each_row(&mut out, g.ow * g.oc, |row, out_row| {
        let (b, oy) = (row / g.oh, row % g.oh);
        let mut patch = vec![0i16; kp];
        for ox in 0..g.ow {
            let o = &mut out_row[ox * g.oc..(ox + 1) * g.oc];
            for grp in 0..groups {
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky * g.dh) as isize - g.ph as isize;
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx * g.dw) as isize - g.pw as isize;
                        let dst = &mut patch[(ky * g.kw + kx) * fic..(ky * g.kw + kx + 1) * fic];
                        if iy >= 0 && (iy as usize) < g.ih && ix >= 0 && (ix as usize) < g.iw {
                            let at = ((b * g.ih + iy as usize) * g.iw + ix as usize) * g.ic + grp * fic;
                            for (d, &s) in dst.iter_mut().zip(&input[at..at + fic]) {
                                *d = i16::from(s);
                            }
                        } else {
                            dst.fill(pad_value);
                        }
                    }
                }
                for c in grp * ocg..(grp + 1) * ocg {
                    let acc = dot_i16(&patch, &f16[c * kp..(c + 1) * kp]).wrapping_add(base[c]);
                    o[c] = requant8(acc, mults[c], out_off, lo, hi);
                }
            }
        }
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn conv_i16(
    g: &Geom,
    groups: usize,
    input: &[i16],
    filter: &[i8],
    bias: Option<&[i64]>,
    in_off: i32,
    out_off: i32,
    mults: &[QuantizedMultiplier],
    lo: i32,
    hi: i32,
) -> Vec<i16> {
    let fic = g.ic / groups;
    let k = g.kh * g.kw * fic;
    let ocg = g.oc / groups;
    let mut out = vec![0i16; g.n * g.oh * g.ow * g.oc];
    for_each_row(&mut out, g.ow * g.oc, |row, out_row| {
        let (b, oy) = (row / g.oh, row % g.oh);
        for ox in 0..g.ow {
            for c in 0..g.oc {
                let grp = c / ocg;
                let mut acc = 0i64;
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky * g.dh) as isize - g.ph as isize;
                    if iy < 0 || iy as usize >= g.ih {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx * g.dw) as isize - g.pw as isize;
                        if ix < 0 || ix as usize >= g.iw {
                            continue;
                        }
                        let at = ((b * g.ih + iy as usize) * g.iw + ix as usize) * g.ic + grp * fic;
                        let x = &input[at..at + fic];
                        let f = &filter[c * k + (ky * g.kw + kx) * fic..][..fic];
                        acc += x
                            .iter()
                            .zip(f)
                            .map(|(&x, &f)| i64::from(i32::from(f) * (i32::from(x) + in_off)))
                            .sum::<i64>();
                    }
                }
                if let Some(bias) = bias {
                    acc = acc.wrapping_add(bias[c]);
                }
                out_row[ox * g.oc + c] = requant16_fixed(acc, mults[c], out_off, lo, hi);
            }
        }
    });
    out
}

// ---------------------------------------------------------------------------------------
// DEPTHWISE_CONV_2D
// ---------------------------------------------------------------------------------------

pub(super) fn depthwise_conv2d(cx: &KernelCtx<'_>, a: &DepthwiseConv2dAttrs) -> R {
    let input = cx.input(0)?;
    let filter = cx.input(1)?;
    let out_ty = cx.output_type(0)?;
    let [one, kh, kw, oc] = dims4(&filter.shape, "filter")?;
    if one != 1 {
        return err(format!("depthwise filter must be [1, h, w, c], got {:?}", filter.shape));
    }
    let g = window_geom(&input.shape, &out_ty.shape, kh, kw, oc, a.padding, a.stride, a.dilation)?;
    if g.ic == 0 || oc % g.ic != 0 {
        return err(format!("{oc} output channels are not a multiple of {} input channels", g.ic));
    }
    let mult = oc / g.ic;
    check_filter_axis(cx, 1, 3)?;
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    let fscales = scales(cx.input_type(1)?);
    let (lo, hi) = act_range(a.activation, out_ty)?;
    match (input.dtype(), filter.dtype(), out_ty.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let bias = bias_of(cx, 2, oc, &[DType::I32])?;
            let mults = channel_multipliers(iq.scale, fscales, oq.scale, oc)?;
            let (x, f) = (i8s(input, "input")?, i8s(filter, "filter")?);
            let finalize = |c: usize, acc: i32| {
                let acc = acc.wrapping_add(bias.as_ref().map_or(0, |b| b[c] as i32));
                requant8(acc, mults[c], oq.zp, lo, hi)
            };
            let out = if mult == 1 {
                depthwise_i8_m1(&g, x, f, -iq.zp, finalize)
            } else {
                depthwise(&g, mult, x, f, -iq.zp, finalize)
            };
            out_tensor(cx, Data::I8(out))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let bias = bias_of(cx, 2, oc, &[DType::I64, DType::I32])?;
            let mults = channel_multipliers(iq.scale, fscales, oq.scale, oc)?;
            let (x, f) = (i16s(input, "input")?, i8s(filter, "filter")?);
            let out = depthwise(&g, mult, x, f, -iq.zp, |c, acc: i64| {
                let acc = acc.wrapping_add(bias.as_ref().map_or(0, |b| b[c]));
                requant16_fixed(acc, mults[c], oq.zp, lo, hi)
            });
            out_tensor(cx, Data::I16(out))
        }
        (i, f, o) => {
            err(format!("quantized DEPTHWISE_CONV_2D takes i8 x i8 -> i8 or i16 x i8 -> i16, got {i} x {f} -> {o}"))
        }
    }
}

/// The int8 depthwise kernel with one output per input channel: per tap, the offset
/// input row and the filter row as i16, multiplied into i32 accumulators (vectorizes
/// without 32-bit multiplies).
fn depthwise_i8_m1(
    g: &Geom,
    input: &[i8],
    filter: &[i8],
    in_off: i32,
    finalize: impl Fn(usize, i32) -> i8 + Sync + Send,
) -> Vec<i8> {
    let f16: Vec<i16> = filter.iter().map(|&f| i16::from(f)).collect();
    let mut out = vec![0i8; g.n * g.oh * g.ow * g.oc];
    for_each_row(&mut out, g.ow * g.oc, |row, out_row| {
        let (b, oy) = (row / g.oh, row % g.oh);
        let mut acc = vec![0i32; g.oc];
        let mut x16 = vec![0i16; g.oc];
        for ox in 0..g.ow {
            acc.fill(0);
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.ph as isize;
                if iy < 0 || iy as usize >= g.ih {
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = (ox * g.sw + kx * g.dw) as isize - g.pw as isize;
                    if ix < 0 || ix as usize >= g.iw {
                        continue;
                    }
                    let at = ((b * g.ih + iy as usize) * g.iw + ix as usize) * g.ic;
                    // |x + in_off| <= 255 fits i16.
                    for (d, &x) in x16.iter_mut().zip(&input[at..at + g.ic]) {
                        *d = (i32::from(x) + in_off) as i16;
                    }
                    let f = &f16[(ky * g.kw + kx) * g.oc..][..g.oc];
                    for ((a, &x), &f) in acc.iter_mut().zip(&x16).zip(f) {
                        *a = a.wrapping_add(i32::from(x) * i32::from(f));
                    }
                }
            }
            for (c, o) in out_row[ox * g.oc..(ox + 1) * g.oc].iter_mut().enumerate() {
                *o = finalize(c, acc[c]);
            }
        }
    });
    out
}

/// Accumulates `sum f * (x + in_off)` per output channel in `A` (i32 for int8 as TFLite
/// does, i64 for 16x8) and finalizes each channel.
fn depthwise<X, A, O>(
    g: &Geom,
    mult: usize,
    input: &[X],
    filter: &[i8],
    in_off: i32,
    finalize: impl Fn(usize, A) -> O + Sync + Send,
) -> Vec<O>
where
    X: Copy + Into<i32> + Sync,
    A: Copy + Default + From<i32> + std::ops::AddAssign + Send,
    O: Copy + Default + Send,
{
    let mut out = vec![O::default(); g.n * g.oh * g.ow * g.oc];
    for_each_row(&mut out, g.ow * g.oc, |row, out_row| {
        let (b, oy) = (row / g.oh, row % g.oh);
        let mut acc = vec![A::default(); g.oc];
        for ox in 0..g.ow {
            acc.fill(A::default());
            for ky in 0..g.kh {
                let iy = (oy * g.sh + ky * g.dh) as isize - g.ph as isize;
                if iy < 0 || iy as usize >= g.ih {
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = (ox * g.sw + kx * g.dw) as isize - g.pw as isize;
                    if ix < 0 || ix as usize >= g.iw {
                        continue;
                    }
                    let at = ((b * g.ih + iy as usize) * g.iw + ix as usize) * g.ic;
                    let x = &input[at..at + g.ic];
                    let f = &filter[(ky * g.kw + kx) * g.oc..][..g.oc];
                    // One tap's product fits i32 (|f| <= 128, |x + off| <= 65535).
                    if mult == 1 {
                        for ((a, &f), &x) in acc.iter_mut().zip(f).zip(x) {
                            *a += A::from(i32::from(f) * (x.into() + in_off));
                        }
                    } else {
                        for (ci, &x) in x.iter().enumerate() {
                            let xv = x.into() + in_off;
                            for m in 0..mult {
                                let o = ci * mult + m;
                                acc[o] += A::from(i32::from(f[o]) * xv);
                            }
                        }
                    }
                }
            }
            for (c, o) in out_row[ox * g.oc..(ox + 1) * g.oc].iter_mut().enumerate() {
                *o = finalize(c, acc[c]);
            }
        }
    });
    out
}

// ---------------------------------------------------------------------------------------
// TRANSPOSE_CONV
// ---------------------------------------------------------------------------------------

pub(super) fn transpose_conv(cx: &KernelCtx<'_>, a: &TransposeConvAttrs) -> R {
    // Operands: output shape, filter [oc, kh, kw, ic], input, optional bias.
    let filter = cx.input(1)?;
    let input = cx.input(2)?;
    let out_ty = cx.output_type(0)?;
    let [oc, kh, kw, fic] = dims4(&filter.shape, "filter")?;
    let [n, ih, iw, ic] = dims4(&input.shape, "input")?;
    let [on, oh, ow, ooc] = dims4(&out_ty.shape, "result")?;
    if fic != ic || ooc != oc || on != n {
        return err(format!(
            "input {:?}, filter {:?} and result {:?} do not fit together",
            input.shape, filter.shape, out_ty.shape
        ));
    }
    let (sh, sw) = (a.stride[0] as usize, a.stride[1] as usize);
    if sh == 0 || sw == 0 {
        return err("zero stride");
    }
    // TFLite pads as a forward conv from the result back to the input would. An empty
    // forward result is padded like a one-element one here (`.max(1)`).
    let ph = padding_before(sh, 1, oh, kh, out_size(a.padding, oh, kh, sh, 1).max(1));
    let pw = padding_before(sw, 1, ow, kw, out_size(a.padding, ow, kw, sw, 1).max(1));
    let g = Geom { n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, dh: 1, dw: 1, ph, pw };
    check_filter_axis(cx, 1, 0)?;
    let (iq, oq) = (in_q(cx, 2)?, out_q(cx)?);
    let fscales = scales(cx.input_type(1)?);
    let (lo, hi) = act_range(a.activation, out_ty)?;
    let mults = channel_multipliers(iq.scale, fscales, oq.scale, oc)?;
    let f = i8s(filter, "filter")?;
    match (input.dtype(), filter.dtype(), out_ty.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let bias = bias_of(cx, 3, oc, &[DType::I32])?;
            let x = i8s(input, "input")?;
            let acc = transpose_accumulate(&g, x, f, -iq.zp);
            let out = acc
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let c = i % oc;
                    let acc = (s as i32).wrapping_add(bias.as_ref().map_or(0, |b| b[c] as i32));
                    requant8(acc, mults[c], oq.zp, lo, hi)
                })
                .collect();
            out_tensor(cx, Data::I8(out))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let bias = bias_of(cx, 3, oc, &[DType::I64, DType::I32])?;
            let x = i16s(input, "input")?;
            let acc = transpose_accumulate(&g, x, f, -iq.zp);
            // With an int32 bias TFLite accumulates in int32 and uses the 32-bit multiplier.
            let wide = cx.opt_input(3).is_none_or(|b| b.dtype() == DType::I64);
            let out = acc
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let c = i % oc;
                    if wide {
                        let acc = s.wrapping_add(bias.as_ref().map_or(0, |b| b[c]));
                        requant16_fixed(acc, mults[c], oq.zp, lo, hi)
                    } else {
                        let acc = (s as i32).wrapping_add(bias.as_ref().map_or(0, |b| b[c] as i32));
                        (multiply_by_quantized_multiplier(acc, mults[c].multiplier, mults[c].shift).wrapping_add(oq.zp))
                            .clamp(lo, hi) as i16
                    }
                })
                .collect();
            out_tensor(cx, Data::I16(out))
        }
        (i, f, o) => {
            err(format!("quantized TRANSPOSE_CONV takes i8 x i8 -> i8 or i16 x i8 -> i16, got {i} x {f} -> {o}"))
        }
    }
}

/// TFLite's scatter: every input element adds `(x + in_off) * f` to the outputs it
/// touches. Computed here as a gather per output row (the same sums).
fn transpose_accumulate<X: Copy + Into<i32> + Sync>(g: &Geom, input: &[X], filter: &[i8], in_off: i32) -> Vec<i64> {
    let k_ic = g.ic;
    let mut acc = vec![0i64; g.n * g.oh * g.ow * g.oc];
    for_each_row(&mut acc, g.ow * g.oc, |row, acc_row| {
        let (b, oy) = (row / g.oh, row % g.oh);
        for ox in 0..g.ow {
            let a = &mut acc_row[ox * g.oc..(ox + 1) * g.oc];
            // Input pixels (iy, ix) with iy*sh - ph + ky = oy.
            for ky in 0..g.kh {
                let t = oy as isize + g.ph as isize - ky as isize;
                if t < 0 || t as usize % g.sh != 0 {
                    continue;
                }
                let iy = t as usize / g.sh;
                if iy >= g.ih {
                    continue;
                }
                for kx in 0..g.kw {
                    let t = ox as isize + g.pw as isize - kx as isize;
                    if t < 0 || t as usize % g.sw != 0 {
                        continue;
                    }
                    let ix = t as usize / g.sw;
                    if ix >= g.iw {
                        continue;
                    }
                    let at = ((b * g.ih + iy) * g.iw + ix) * k_ic;
                    let x = &input[at..at + k_ic];
                    for (c, s) in a.iter_mut().enumerate() {
                        let f = &filter[((c * g.kh + ky) * g.kw + kx) * k_ic..][..k_ic];
                        let d: i64 =
                            x.iter().zip(f).map(|(&x, &f)| i64::from((x.into() + in_off) * i32::from(f))).sum();
                        *s += d;
                    }
                }
            }
        }
    });
    acc
}

// ---------------------------------------------------------------------------------------
// FULLY_CONNECTED
// ---------------------------------------------------------------------------------------

pub(super) fn fully_connected(cx: &KernelCtx<'_>, a: &FullyConnectedAttrs) -> R {
    let input = cx.input(0)?;
    let filter = cx.input(1)?;
    let out_ty = cx.output_type(0)?;
    if a.shuffled_weights {
        return err("shuffled 4x16 weights are a uint8 -> int16 format npuc does not execute");
    }
    if !matches!(a.activation, Activation::None | Activation::Relu | Activation::ReluN1To1 | Activation::Relu6) {
        return err(format!("TFLite's quantized FULLY_CONNECTED does not fuse {}", a.activation.name()));
    }
    let &[units, depth] = &filter.shape[..] else {
        return err(format!("the filter must be 2-D, got {:?}", filter.shape));
    };
    if depth == 0 || input.len() % depth != 0 {
        return err(format!("input of {} elements does not split into rows of {depth}", input.len()));
    }
    let batches = input.len() / depth;
    let n_out: usize = out_ty.shape.iter().product();
    if n_out != batches * units {
        return err(format!("the result {:?} does not hold {batches} x {units} values", out_ty.shape));
    }
    check_filter_axis(cx, 1, 0)?;
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    let fty = cx.input_type(1)?;
    let fq = super::q_of(fty, "filter")?;
    let fscales = scales(fty);
    let per_channel = fscales.len() > 1;
    if per_channel && fscales.len() != units {
        return err(format!("the filter has {} scales for {units} units", fscales.len()));
    }
    let (lo, hi) = act_range(a.activation, out_ty)?;
    let f = i8s(filter, "filter")?;
    // Per-channel filters are symmetric by the quantization spec: TFLite ignores their
    // zero point; per-tensor ones keep `weights_offset`.
    let f_off = if per_channel { 0 } else { -fq.zp };
    match (input.dtype(), filter.dtype(), out_ty.dtype) {
        (DType::I8, DType::I8, DType::I8) => {
            let bias = bias_of(cx, 2, units, &[DType::I32])?;
            let x = i8s(input, "input")?;
            let s = channel_scales_f64(iq.scale, fscales, oq.scale, units);
            let in_off = -iq.zp;
            let mut out = vec![0i8; batches * units];
            for_each_row(&mut out, units, |b, o| {
                let xr = &x[b * depth..(b + 1) * depth];
                let xsum = xr.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
                for (u, o) in o.iter_mut().enumerate() {
                    let fr = &f[u * depth..(u + 1) * depth];
                    // sum (f + f_off)(x + in_off), expanded.
                    let fsum = fr.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v)));
                    let acc = dot_i8(fr, xr)
                        .wrapping_add(in_off.wrapping_mul(fsum))
                        .wrapping_add(f_off.wrapping_mul(xsum))
                        .wrapping_add(f_off.wrapping_mul(in_off).wrapping_mul(depth as i32))
                        .wrapping_add(bias.as_ref().map_or(0, |b| b[u] as i32));
                    *o = requant8_f64(acc, s[u], oq.zp, lo, hi);
                }
            });
            out_tensor(cx, Data::I8(out))
        }
        (DType::I16, DType::I8, DType::I16) => {
            let bias = bias_of(cx, 2, units, &[DType::I64, DType::I32])?;
            let x = i16s(input, "input")?;
            let s = channel_scales_f64(iq.scale, fscales, oq.scale, units);
            let in_off = -iq.zp;
            let mut out = vec![0i16; batches * units];
            for_each_row(&mut out, units, |b, o| {
                let xr = &x[b * depth..(b + 1) * depth];
                for (u, o) in o.iter_mut().enumerate() {
                    let fr = &f[u * depth..(u + 1) * depth];
                    let mut acc: i64 = xr
                        .iter()
                        .zip(fr)
                        .map(|(&x, &f)| i64::from(i32::from(f) + f_off) * i64::from(i32::from(x) + in_off))
                        .sum();
                    acc = acc.wrapping_add(bias.as_ref().map_or(0, |b| b[u]));
                    *o = requant16(acc, s[u], oq.zp, lo, hi);
                }
            });
            out_tensor(cx, Data::I16(out))
        }
        (i, f, o) => {
            err(format!("quantized FULLY_CONNECTED takes i8 x i8 -> i8 or i16 x i8 -> i16, got {i} x {f} -> {o}"))
        }
    }
}
