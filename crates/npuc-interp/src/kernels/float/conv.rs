//! CONV_2D, TRANSPOSE_CONV and FULLY_CONNECTED (DEPTHWISE_CONV_2D is in `depthwise`).
//!
//! Layouts are TFLite's: NHWC activations, OHWI filters (`[1, H, W, C·m]` for depthwise),
//! `[units, depth]` fully connected weights. Padding offsets are TFLite's: half the total
//! padding before the first element, the odd one after the last
//! (tensorflow/lite/kernels/padding.h). Each output is `Σ input·weight`, then `+ bias`, then
//! the activation clamp, as in the reference kernels.

use npuc_ir::{Activation, Conv2dAttrs, FullyConnectedAttrs, TransposeConvAttrs};

use super::gemm::{gemm, gemm_packed_a, gemm_packed_a_raw, pack_weights, Packed};
use super::simd::gemv_rows;
use super::{
    bias_and_clamp, bias_f32, conv_out_size, dims4, for_ranges, for_row_blocks, input_f32, output_shape, positive,
    single_output, weights_f32, Clamp, KResult, KernelCtx, SyncPtr,
};
use crate::error::KernelError;
use crate::kernels::window::{out_size, padding_before};

/// Below this many rows a product is computed as dot products against the weight rows,
/// which needs no packing of the weights (a fully connected layer on one vector). The dot
/// products keep 16 partial sums, so these outputs may differ from TFLite's sequential sum
/// in the last bits.
const SMALL_M: usize = 4;

/// `c[i·ldc + j] = Σ_k a[i·lda + k] · b[j·ldb + k]` for `i < m`, `j < n`: A times the
/// transpose of B, B stored like weights `[out, in]`. Only the `n` columns of each row of C
/// are written.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_abt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if m < SMALL_M && ldb == k && k > 0 {
        assert!(c.len() >= (m - 1) * ldc + n && a.len() >= (m - 1) * lda + k, "gemm: operands too short");
        for i in 0..m {
            gemv_rows(&a[i * lda..i * lda + k], &b[..n * k], k, &mut c[i * ldc..i * ldc + n]);
        }
        return;
    }
    let clamp = Clamp::new(Activation::None);
    if pack_weights(m, n, k) {
        gemm(m, a, lda, &Packed::new(b, ldb, n, k), None, c, ldc, clamp);
    } else {
        gemm_packed_a(&Packed::new(a, lda, m, k), n, b, ldb, None, c, ldc, clamp);
    }
}

/// Output rows per im2col buffer fill: few enough that the buffer stays in cache, enough to
/// amortize a call.
fn chunk_rows(k: usize, n: usize) -> usize {
    (32768 / k.max(n).max(1)).clamp(16, 512)
}

/// Geometry of a (grouped) convolution.
#[derive(Clone, Debug)]
struct ConvGeom {
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
    pad_t: usize,
    pad_l: usize,
    groups: usize,
    /// Input channels per group (the filter's inner dimension).
    icg: usize,
    /// Output channels per group.
    ocg: usize,
}

impl ConvGeom {
    /// Length of one im2col row: one filter's weights.
    fn k(&self) -> usize {
        self.kh * self.kw * self.icg
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the few values of a filter row
/// (a call costs more than copying 3 or 12 floats).
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if dst.len() > 32 {
        dst.copy_from_slice(src);
        return;
    }
    let src = &src[..dst.len()];
    let mut d4 = dst.chunks_exact_mut(4);
    let mut s4 = src.chunks_exact(4);
    for (d, s) in (&mut d4).zip(&mut s4) {
        let v: [f32; 4] = [s[0], s[1], s[2], s[3]];
        d.copy_from_slice(&v);
    }
    for (d, s) in d4.into_remainder().iter_mut().zip(s4.remainder()) {
        *d = *s;
    }
}

/// Fills `buf` (rows × k) with the input patches of output rows `m0..m0 + rows` for group
/// `group`; padding reads as zero.
fn im2col(g: &ConvGeom, x: &[f32], group: usize, m0: usize, rows: usize, buf: &mut [f32]) {
    let k = g.k();
    let cofs = group * g.icg;
    let seg = g.kw * g.icg;
    let (mut b, mut y, mut xo) = (m0 / (g.oh * g.ow), (m0 / g.ow) % g.oh, m0 % g.ow);
    for dst in buf.chunks_exact_mut(k).take(rows) {
        let iy0 = (y * g.sh) as isize - g.pad_t as isize;
        let ix0 = (xo * g.sw) as isize - g.pad_l as isize;
        let whole_row = g.dw == 1 && g.icg == g.ic && ix0 >= 0 && ix0 as usize + g.kw <= g.iw;
        for (ky, drow) in dst.chunks_exact_mut(seg).enumerate() {
            let iy = iy0 + (ky * g.dh) as isize;
            if iy < 0 || iy >= g.ih as isize {
                drow.fill(0.0);
                continue;
            }
            let base = (b * g.ih + iy as usize) * g.iw;
            if whole_row {
                let s = (base + ix0 as usize) * g.ic;
                copy_short(drow, &x[s..s + seg]);
                continue;
            }
            for (kx, d) in drow.chunks_exact_mut(g.icg).enumerate() {
                let ix = ix0 + (kx * g.dw) as isize;
                if ix < 0 || ix >= g.iw as isize {
                    d.fill(0.0);
                } else {
                    let s = (base + ix as usize) * g.ic + cofs;
                    copy_short(d, &x[s..s + g.icg]);
                }
            }
        }
        xo += 1;
        if xo == g.ow {
            xo = 0;
            y += 1;
            if y == g.oh {
                y = 0;
                b += 1;
            }
        }
    }
}

/// CONV_2D (reference_ops::Conv): NHWC input, OHWI filter whose input channels may divide
/// the input's (grouped convolution), optional bias, fused activation.
pub(super) fn conv2d(cx: &KernelCtx<'_>, at: &Conv2dAttrs) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let w = weights_f32(cx, 1, "filter")?;
    let [n, ih, iw, ic] = dims4(&cx.input(0)?.shape, "input")?;
    let [oc, kh, kw, icg] = dims4(&cx.input(1)?.shape, "filter")?;
    positive(&at.stride, "stride")?;
    positive(&at.dilation, "dilation")?;
    if icg == 0 || ic % icg != 0 {
        return Err(KernelError::new(format!("filter has {icg} input channels, input has {ic}")));
    }
    let groups = ic / icg;
    if groups == 0 || oc % groups != 0 {
        return Err(KernelError::new(format!("{oc} output channels do not split into {groups} groups")));
    }
    let bias = bias_f32(cx, 2, oc)?;
    let (sh, sw) = (at.stride[0] as usize, at.stride[1] as usize);
    let (dh, dw) = (at.dilation[0] as usize, at.dilation[1] as usize);
    let (oh, ow) = conv_out_size(cx, at.padding, [n, ih, iw], [kh, kw], [sh, sw], [dh, dw], oc)?;
    let g = ConvGeom {
        ih,
        iw,
        ic,
        oh,
        ow,
        oc,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pad_t: padding_before(sh, dh, ih, kh, oh),
        pad_l: padding_before(sw, dw, iw, kw, ow),
        groups,
        icg,
        ocg: oc / groups,
    };
    let mut out = vec![0.0f32; n * oh * ow * oc];
    conv_gemm(&g, x, w, bias, Clamp::new(at.activation), &mut out);
    single_output(cx, out)
}

fn conv_gemm(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, clamp: Clamp, out: &mut [f32]) {
    let k = g.k();
    let pixels = out.len() / g.oc.max(1);
    let group_bias = |grp: usize| bias.map(|b| &b[grp * g.ocg..(grp + 1) * g.ocg]);
    let group_weights = |grp: usize| &w[grp * g.ocg * k..(grp + 1) * g.ocg * k];
    // A 1×1 stride-1 convolution reads the input as it is: each pixel's channels are a row.
    let direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.oh == g.ih && g.ow == g.iw;
    if direct && !pack_weights(pixels, g.ocg, k) {
        // Few pixels, many channels (the end of a MobileNet): pack the pixels and read the
        // weights in place; threads take ranges of output channels.
        let c = SyncPtr(out.as_mut_ptr());
        for grp in 0..g.groups {
            let a = Packed::new(&x[grp * g.icg..], g.ic, pixels, g.icg);
            let (wg, bg) = (group_weights(grp), group_bias(grp));
            for_ranges(g.ocg, pixels * k, |js| {
                // SAFETY: `out` holds pixels × oc values; each range writes its own columns
                // grp·ocg + js of every pixel, and nothing else runs on `out` meanwhile.
                unsafe {
                    gemm_packed_a_raw(
                        &a,
                        js.len(),
                        &wg[js.start * k..],
                        k,
                        bg.map(|b| &b[js.start..]),
                        { c }.0.add(grp * g.ocg + js.start),
                        g.oc,
                        clamp,
                    )
                }
            });
        }
        return;
    }
    // Otherwise the weights are packed once and shared by all threads, which take blocks of
    // output rows.
    let packed: Vec<Packed> = (0..g.groups).map(|grp| Packed::new(group_weights(grp), k, g.ocg, k)).collect();
    let chunk = chunk_rows(k, g.oc);
    for_row_blocks(out, g.oc, k * g.oc, |m0, block| {
        let rows = block.len() / g.oc;
        let mut buf = if direct { Vec::new() } else { vec![0.0f32; chunk.min(rows) * k] };
        let mut r0 = 0;
        while r0 < rows {
            let mr = chunk.min(rows - r0);
            let c = &mut block[r0 * g.oc..(r0 + mr) * g.oc];
            for (grp, pb) in packed.iter().enumerate() {
                let cg = &mut c[grp * g.ocg..];
                if direct {
                    let a = &x[(m0 + r0) * g.ic + grp * g.icg..];
                    gemm(mr, a, g.ic, pb, group_bias(grp), cg, g.oc, clamp);
                } else {
                    im2col(g, x, grp, m0 + r0, mr, &mut buf);
                    gemm(mr, &buf, k, pb, group_bias(grp), cg, g.oc, clamp);
                }
            }
            r0 += mr;
        }
    });
}

/// TRANSPOSE_CONV (reference_ops::TransposeConv): operands output shape, OHWI filter, input,
/// optional bias. Padding is computed as TFLite does, by treating the result as the input
/// of a forward convolution with the same filter and stride; the fused activation is
/// applied as by TFLite versions that have one.
///
/// Computed as a product `input · filterᵀ` giving every input pixel's contribution to each
/// tap (col), then scattered onto the output (col2im).
pub(super) fn transpose_conv(cx: &KernelCtx<'_>, at: &TransposeConvAttrs) -> KResult {
    let x = input_f32(cx, 2, "input")?;
    let w = weights_f32(cx, 1, "filter")?;
    let [n, ih, iw, ic] = dims4(&cx.input(2)?.shape, "input")?;
    let [oc, kh, kw, wic] = dims4(&cx.input(1)?.shape, "filter")?;
    positive(&at.stride, "stride")?;
    if wic != ic {
        return Err(KernelError::new(format!("filter has {wic} input channels, input has {ic}")));
    }
    let bias = bias_f32(cx, 3, oc)?;
    let [on, oh, ow, ooc] = dims4(output_shape(cx)?, "result")?;
    if on != n || ooc != oc {
        return Err(KernelError::new(format!(
            "result [{on}, {oh}, {ow}, {ooc}] does not fit batch {n} and {oc} channels"
        )));
    }
    let (sh, sw) = (at.stride[0] as usize, at.stride[1] as usize);
    let pad_t = padding_before(sh, 1, oh, kh, out_size(at.padding, oh, kh, sh, 1)) as isize;
    let pad_l = padding_before(sw, 1, ow, kw, out_size(at.padding, ow, kw, sw, 1)) as isize;
    let taps = kh * kw;
    let ncol = taps * oc;
    // Filter rearranged to [tap, out channel, in channel] so that a col row holds, per tap, the
    // contiguous output channels one output pixel receives.
    let mut wt = vec![0.0f32; ncol * ic];
    for co in 0..oc {
        for t in 0..taps {
            wt[(t * oc + co) * ic..(t * oc + co + 1) * ic]
                .copy_from_slice(&w[(co * taps + t) * ic..(co * taps + t + 1) * ic]);
        }
    }
    let mut out = vec![0.0f32; n * oh * ow * oc];
    let m_total = n * ih * iw;
    let chunk = (65536 / ncol.max(1)).clamp(1, m_total.max(1));
    let mut col = vec![0.0f32; chunk * ncol];
    let mut m0 = 0;
    while m0 < m_total {
        let mr = chunk.min(m_total - m0);
        gemm_abt(mr, ncol, ic, &x[m0 * ic..], ic, &wt, ic, &mut col, ncol);
        for r in 0..mr {
            let m = m0 + r;
            let (b, iy, ix) = (m / (ih * iw), (m / iw) % ih, m % iw);
            for ky in 0..kh {
                let oy = (iy * sh + ky) as isize - pad_t;
                if oy < 0 || oy >= oh as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ox = (ix * sw + kx) as isize - pad_l;
                    if ox < 0 || ox >= ow as isize {
                        continue;
                    }
                    let src = &col[r * ncol + (ky * kw + kx) * oc..][..oc];
                    let o = ((b * oh + oy as usize) * ow + ox as usize) * oc;
                    for (d, &s) in out[o..o + oc].iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
        m0 += mr;
    }
    bias_and_clamp(&mut out, oc, bias, Clamp::new(at.activation));
    single_output(cx, out)
}

/// FULLY_CONNECTED (reference_ops::FullyConnected): the input flattened to rows of the
/// weights' depth, `[units, depth]` weights, optional bias, fused activation; with
/// `keep_num_dims` only the declared result shape differs.
pub(super) fn fully_connected(cx: &KernelCtx<'_>, at: &FullyConnectedAttrs) -> KResult {
    if at.shuffled_weights {
        return Err(KernelError::new("shuffled weights (TFLite's 4x16 uint8 layout) have no float kernel"));
    }
    let x = input_f32(cx, 0, "input")?;
    let w = weights_f32(cx, 1, "weights")?;
    let wshape = &cx.input(1)?.shape;
    let &[units, depth] = wshape.as_slice() else {
        return Err(KernelError::new(format!("weights must have rank 2, have shape {wshape:?}")));
    };
    if depth == 0 || x.len() % depth != 0 {
        return Err(KernelError::new(format!("input of {} values does not split into rows of {depth}", x.len())));
    }
    let rows = x.len() / depth;
    let bias = bias_f32(cx, 2, units)?;
    let clamp = Clamp::new(at.activation);
    let mut out = vec![0.0f32; rows * units];
    if rows < SMALL_M {
        for (xr, o) in x.chunks_exact(depth).zip(out.chunks_exact_mut(units.max(1))) {
            gemv_rows(xr, w, depth, o);
        }
        bias_and_clamp(&mut out, units, bias, clamp);
    } else if pack_weights(rows, units, depth) {
        let packed = Packed::new(w, depth, units, depth);
        for_row_blocks(&mut out, units, depth * units, |m0, block| {
            gemm(block.len() / units, &x[m0 * depth..], depth, &packed, bias, block, units, clamp);
        });
    } else {
        let a = Packed::new(x, depth, rows, depth);
        let c = SyncPtr(out.as_mut_ptr());
        for_ranges(units, rows * depth, |js| {
            // SAFETY: `out` holds rows × units values; each range writes its own columns.
            unsafe {
                gemm_packed_a_raw(
                    &a,
                    js.len(),
                    &w[js.start * depth..],
                    depth,
                    bias.map(|b| &b[js.start..]),
                    { c }.0.add(js.start),
                    units,
                    clamp,
                )
            }
        });
    }
    single_output(cx, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_for_all_paths() {
        for &(m, n, k) in &[(1usize, 5usize, 7usize), (3, 4, 1), (9, 17, 33), (70, 9, 130), (5, 0, 3), (4, 3, 0)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
            let b: Vec<f32> = (0..n * k).map(|i| ((i * 5 % 11) as f32) * 0.5 - 2.0).collect();
            let mut c = vec![f32::NAN; m * n];
            gemm_abt(m, n, k, &a, k, &b, k, &mut c, n);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum();
                    assert_eq!(c[i * n + j], want, "m={m} n={n} k={k} at {i},{j}");
                }
            }
        }
    }
}
