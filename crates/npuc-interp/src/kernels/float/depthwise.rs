//! DEPTHWISE_CONV_2D.
//!
//! Each output is `Σ_(ky,kx) input · filter` over the taps inside the input, in (ky, kx)
//! order from 0, then `+ bias` and the activation clamp: TFLite's reference loop, so the
//! results are bit-identical to it. Channels are innermost: the interior of the image (every
//! tap inside) runs vector kernels over whole vectors of channels with several output pixels
//! in flight; borders, leftover channels and depth multipliers above 1 take the general
//! per-pixel path.

use npuc_ir::DepthwiseConv2dAttrs;

use super::gemm::Isa;
use super::simd::LANES;
use super::{
    bias_f32, conv_out_size, dims4, for_row_blocks, input_f32, positive, single_output, weights_f32, Clamp, KResult,
    KernelCtx,
};
use crate::error::KernelError;
use crate::kernels::window::{padding_before, valid_taps};

/// Geometry and operands of a depthwise convolution.
struct Depthwise<'a> {
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    clamp: Clamp,
    ih: usize,
    iw: usize,
    ic: usize,
    oh: usize,
    ow: usize,
    oc: usize,
    mult: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pad_t: usize,
    pad_l: usize,
}

/// DEPTHWISE_CONV_2D (reference_ops::DepthwiseConv): filter `[1, H, W, C·m]`, output
/// channel `c·m + j` reads input channel `c`; the multiplier comes from the shapes (TFLite
/// ignores the attribute).
pub(super) fn depthwise_conv2d(cx: &KernelCtx<'_>, at: &DepthwiseConv2dAttrs) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let w = weights_f32(cx, 1, "filter")?;
    let [n, ih, iw, ic] = dims4(&cx.input(0)?.shape, "input")?;
    let [one, kh, kw, oc] = dims4(&cx.input(1)?.shape, "filter")?;
    positive(&at.stride, "stride")?;
    positive(&at.dilation, "dilation")?;
    if one != 1 || ic == 0 || oc % ic != 0 {
        return Err(KernelError::new(format!(
            "filter [{one}, {kh}, {kw}, {oc}] does not fit an input with {ic} channels"
        )));
    }
    let bias = bias_f32(cx, 2, oc)?;
    let (sh, sw) = (at.stride[0] as usize, at.stride[1] as usize);
    let (dh, dw) = (at.dilation[0] as usize, at.dilation[1] as usize);
    let (oh, ow) = conv_out_size(cx, at.padding, [n, ih, iw], [kh, kw], [sh, sw], [dh, dw], oc)?;
    let p = Depthwise {
        x,
        w,
        bias,
        clamp: Clamp::new(at.activation),
        ih,
        iw,
        ic,
        oh,
        ow,
        oc,
        mult: oc / ic,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pad_t: padding_before(sh, dh, ih, kh, oh),
        pad_l: padding_before(sw, dw, iw, kw, ow),
    };
    let mut out = vec![0.0f32; n * oh * ow * oc];
    for_row_blocks(&mut out, ow * oc, ow * oc * kh * kw, |r0, block| depthwise_rows(&p, r0, block));
    single_output(cx, out)
}

/// One output pixel, taps clipped to the input: the general path. Channels `c_from..oc`.
#[allow(clippy::too_many_arguments)]
fn dw_pixel(
    p: &Depthwise<'_>,
    b: usize,
    iy0: isize,
    ix0: isize,
    kys: std::ops::Range<usize>,
    kxs: std::ops::Range<usize>,
    c_from: usize,
    o: &mut [f32],
) {
    let oc = p.oc;
    let tap = |ky: usize, kx: usize| {
        let iy = (iy0 + (ky * p.dh) as isize) as usize;
        let ix = (ix0 + (kx * p.dw) as isize) as usize;
        (((b * p.ih + iy) * p.iw + ix) * p.ic, (ky * p.kw + kx) * oc)
    };
    let o = &mut o[..oc];
    if p.mult == 1 {
        let full = c_from + (oc - c_from) / LANES * LANES;
        for c0 in (c_from..full).step_by(LANES) {
            let mut acc = [0.0f32; LANES];
            for ky in kys.clone() {
                for kx in kxs.clone() {
                    let (xi, wi) = tap(ky, kx);
                    let xv = &p.x[xi + c0..xi + c0 + LANES];
                    let wv = &p.w[wi + c0..wi + c0 + LANES];
                    for l in 0..LANES {
                        acc[l] += xv[l] * wv[l];
                    }
                }
            }
            o[c0..c0 + LANES].copy_from_slice(&acc);
        }
        let tail = &mut o[full..];
        tail.fill(0.0);
        if !tail.is_empty() {
            for ky in kys.clone() {
                for kx in kxs.clone() {
                    let (xi, wi) = tap(ky, kx);
                    let xv = &p.x[xi + full..xi + oc];
                    let wv = &p.w[wi + full..wi + oc];
                    for ((a, &xv), &wv) in tail.iter_mut().zip(xv).zip(wv) {
                        *a += xv * wv;
                    }
                }
            }
        }
    } else {
        o.fill(0.0);
        for ky in kys.clone() {
            for kx in kxs.clone() {
                let (xi, wi) = tap(ky, kx);
                let xv = &p.x[xi..xi + p.ic];
                let wv = &p.w[wi..wi + oc];
                for ((oo, ww), &xv) in o.chunks_exact_mut(p.mult).zip(wv.chunks_exact(p.mult)).zip(xv) {
                    for (a, &w) in oo.iter_mut().zip(ww) {
                        *a += xv * w;
                    }
                }
            }
        }
    }
    let bias = p.bias.map(|b| &b[c_from..]);
    super::bias_and_clamp(&mut o[c_from..], oc - c_from, bias, p.clamp);
}

multiversion! {
    /// The general path for output rows `r0..` (one row = one batch and output y), channels
    /// `from..oc` of every pixel.
    fn general_rows(p: &Depthwise<'_>, r0: usize, block: &mut [f32], from: usize) {
        let oc = p.oc;
        for (ri, orow) in block.chunks_exact_mut(p.ow * oc).enumerate() {
            let r = r0 + ri;
            let (b, y) = (r / p.oh, r % p.oh);
            let iy0 = (y * p.sh) as isize - p.pad_t as isize;
            let kys = valid_taps(iy0, p.dh, p.kh, p.ih);
            for xo in 0..p.ow {
                let ix0 = (xo * p.sw) as isize - p.pad_l as isize;
                let kxs = valid_taps(ix0, p.dw, p.kw, p.iw);
                dw_pixel(p, b, iy0, ix0, kys.clone(), kxs, from, &mut orow[xo * oc..(xo + 1) * oc]);
            }
        }
    }
}

/// Output rows `r0..` of a depthwise convolution.
fn depthwise_rows(p: &Depthwise<'_>, r0: usize, block: &mut [f32]) {
    depthwise_rows_on(Isa::detect(), p, r0, block)
}

/// [`depthwise_rows`] with the vector kernels of `isa`, which must run on this CPU.
fn depthwise_rows_on(isa: Isa, p: &Depthwise<'_>, r0: usize, block: &mut [f32]) {
    let oc = p.oc;
    // Output columns whose whole window lies inside the input.
    let x_lo = p.pad_l.div_ceil(p.sw).min(p.ow);
    let reach = (p.kw - 1) * p.dw;
    let x_hi = if p.iw + p.pad_l > reach { ((p.iw + p.pad_l - reach - 1) / p.sw + 1).min(p.ow) } else { 0 };
    let x_hi = x_hi.max(x_lo);
    let lanes = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx => avx::L,
        Isa::Portable => portable::L,
    };
    // Channels the vector kernels handle: whole vectors, multiplier 1.
    let vec_channels = if p.mult == 1 { oc / lanes * lanes } else { 0 };
    if vec_channels < oc {
        general_rows(p, r0, block, vec_channels);
    }
    if vec_channels == 0 {
        return;
    }
    for (ri, orow) in block.chunks_exact_mut(p.ow * oc).enumerate() {
        let r = r0 + ri;
        let (b, y) = (r / p.oh, r % p.oh);
        let iy0 = (y * p.sh) as isize - p.pad_t as isize;
        let kys = valid_taps(iy0, p.dh, p.kh, p.ih);
        let row = Row {
            x: p.x.as_ptr(),
            w: p.w.as_ptr(),
            bias: p.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
            out: orow.as_mut_ptr(),
            in_row: (b * p.ih) as isize + iy0,
            ky_lo: kys.start,
            ky_hi: kys.end,
            ..Row::new(p, x_lo, x_hi, vec_channels)
        };
        // SAFETY: only taps inside the input are read: rows ky_lo..ky_hi are this output
        // row's valid taps, blocks of XB pixels use all kw taps only within x_lo..x_hi
        // (whole windows inside), other pixels use their clipped taps; channel vectors stay below
        // vec_channels <= oc; the pointers come from slices of the shapes described by `p`,
        // and `orow` is this row's ow·oc outputs. The ISA was detected on this CPU.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx => avx::row(&row),
                Isa::Portable => portable::row(&row),
            }
        }
    }
}

/// One output row for the vector kernels, as raw pointers and strides.
struct Row {
    x: *const f32,
    w: *const f32,
    /// Null without a bias.
    bias: *const f32,
    out: *mut f32,
    /// `b·ih + iy0`: the input row of tap ky = 0 (may lie outside; only taps
    /// `ky_lo..ky_hi` are read).
    in_row: isize,
    ky_lo: usize,
    ky_hi: usize,
    ow: usize,
    iw: usize,
    ic: usize,
    oc: usize,
    kw: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    pad_l: usize,
    x_lo: usize,
    x_hi: usize,
    channels: usize,
    lo: f32,
    hi: f32,
}

impl Row {
    /// The taps of output column `xo` inside the input.
    #[inline(always)]
    fn kx_range(&self, xo: usize) -> (usize, usize) {
        let r = valid_taps((xo * self.sw) as isize - self.pad_l as isize, self.dw, self.kw, self.iw);
        (r.start, r.end)
    }

    fn new(p: &Depthwise<'_>, x_lo: usize, x_hi: usize, channels: usize) -> Row {
        let (lo, hi) = p.clamp.bounds();
        Row {
            x: std::ptr::null(),
            w: std::ptr::null(),
            bias: std::ptr::null(),
            out: std::ptr::null_mut(),
            in_row: 0,
            ky_lo: 0,
            ky_hi: 0,
            ow: p.ow,
            iw: p.iw,
            ic: p.ic,
            oc: p.oc,
            kw: p.kw,
            sw: p.sw,
            dh: p.dh,
            dw: p.dw,
            pad_l: p.pad_l,
            x_lo,
            x_hi,
            channels,
            lo,
            hi,
        }
    }
}

/// Output pixels computed together in the interior: independent accumulators hide the
/// latency of the adds.
const XB: usize = 8;

macro_rules! dw_impl {
    (
        $(#[$attr:meta])* mod $name:ident, $(features = $feat:literal,)? lanes = $l:expr,
        zero = $zero:path, load = $load:path, store = $store:path, splat = $splat:path,
        add = $add:path, mul = $mul:path, max = $max:path, min = $min:path $(,)?
    ) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::super::simd::lanes4;
            use super::{Row, XB};
            #[cfg(target_arch = "x86_64")]
            #[allow(unused_imports)]
            use std::arch::x86_64::*;

            pub(super) const L: usize = $l;

            /// `N` pixels from output column `xo`, channels `c0..c0 + V·L`, taps
            /// `ky_lo..ky_hi` × `kx_lo..kx_hi` (inside the input for every one of the pixels).
            /// `N · V` independent sums are in flight.
            $(#[target_feature(enable = $feat)])?
            #[inline]
            unsafe fn pixels<const N: usize, const V: usize>(r: &Row, xo: usize, c0: usize, kx_lo: usize, kx_hi: usize) {
                let mut acc = [[$zero(); V]; N];
                for ky in r.ky_lo..r.ky_hi {
                    let iy = r.in_row + (ky * r.dh) as isize;
                    let base = r.x.offset(iy * (r.iw * r.ic) as isize).add(c0);
                    for kx in kx_lo..kx_hi {
                        let wp = r.w.add((ky * r.kw + kx) * r.oc + c0);
                        let mut wv = [$zero(); V];
                        for (v, w) in wv.iter_mut().enumerate() {
                            *w = $load(wp.add(v * $l));
                        }
                        let x0 = (xo * r.sw + kx * r.dw - r.pad_l) * r.ic;
                        for (n, a) in acc.iter_mut().enumerate() {
                            let xp = base.add(x0 + n * r.sw * r.ic);
                            for v in 0..V {
                                a[v] = $add(a[v], $mul($load(xp.add(v * $l)), wv[v]));
                            }
                        }
                    }
                }
                let (lov, hiv) = ($splat(r.lo), $splat(r.hi));
                for v in 0..V {
                    let bias = if r.bias.is_null() { $zero() } else { $load(r.bias.add(c0 + v * $l)) };
                    for (n, a) in acc.iter().enumerate() {
                        let y = $min(hiv, $max(lov, $add(a[v], bias)));
                        $store(r.out.add((xo + n) * r.oc + c0 + v * $l), y);
                    }
                }
            }

            /// Vectors of channels a single pixel works on at once.
            const SV: usize = 4;

            /// All channels of one pixel with its clipped taps, `SV` vectors at a time.
            $(#[target_feature(enable = $feat)])?
            #[inline]
            unsafe fn single(r: &Row, xo: usize) {
                let (kx_lo, kx_hi) = r.kx_range(xo);
                let mut c0 = 0;
                while c0 + SV * L <= r.channels {
                    pixels::<1, SV>(r, xo, c0, kx_lo, kx_hi);
                    c0 += SV * L;
                }
                while c0 < r.channels {
                    pixels::<1, 1>(r, xo, c0, kx_lo, kx_hi);
                    c0 += L;
                }
            }

            /// Channels `0..channels` of every pixel of the row: blocks of `XB` pixels in the
            /// interior columns `x_lo..x_hi` (the last block overlapping the one before it
            /// rather than falling back to single pixels: recomputed outputs come out the
            /// same), single pixels with their clipped taps elsewhere.
            $(#[target_feature(enable = $feat)])?
            pub(super) unsafe fn row(r: &Row) {
                let blocks = r.x_hi - r.x_lo >= XB;
                let (single_lo, single_hi) = if blocks { (r.x_lo, r.x_hi) } else { (r.ow, r.ow) };
                for xo in (0..single_lo).chain(single_hi..r.ow) {
                    single(r, xo);
                }
                if !blocks {
                    return;
                }
                for c0 in (0..r.channels).step_by(L) {
                    let mut xo = r.x_lo;
                    while xo + XB <= r.x_hi {
                        pixels::<XB, 1>(r, xo, c0, 0, r.kw);
                        xo += XB;
                    }
                    if xo < r.x_hi {
                        pixels::<XB, 1>(r, r.x_hi - XB, c0, 0, r.kw);
                    }
                }
            }
        }
    };
}

dw_impl! {
    #[cfg(target_arch = "x86_64")]
    mod avx, features = "avx", lanes = 8,
    zero = _mm256_setzero_ps, load = _mm256_loadu_ps, store = _mm256_storeu_ps, splat = _mm256_set1_ps,
    add = _mm256_add_ps, mul = _mm256_mul_ps, max = _mm256_max_ps, min = _mm256_min_ps,
}

dw_impl! {
    mod portable, lanes = 4,
    zero = lanes4::zero, load = lanes4::load, store = lanes4::store, splat = lanes4::splat,
    add = lanes4::add, mul = lanes4::mul, max = lanes4::max, min = lanes4::min,
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::Activation;

    /// Every instruction set gives the same bits as the reference loop, written out here in
    /// its order (taps in (ky, kx) order from 0, then bias, then the clamp).
    #[test]
    fn every_isa_matches_the_reference_loop_bit_for_bit() {
        let vals = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 23) as f32 - 1.0)
                .collect()
        };
        // (ih, iw, channels, multiplier, kernel, stride, dilation, pad): interiors wider and
        // narrower than a block of pixels, channel counts with and without vector tails.
        let cases = [
            (9, 21, 48, 1, 3, 1, 1, 1),
            (7, 5, 64, 1, 3, 1, 1, 1),
            (11, 13, 37, 1, 5, 2, 1, 2),
            (6, 17, 16, 1, 3, 2, 2, 2),
            (5, 6, 3, 2, 3, 1, 1, 1),
        ];
        for &(ih, iw, ic, mult, k, s, d, pad) in &cases {
            let oc = ic * mult;
            let (oh, ow) = ((ih + 2 * pad - (k - 1) * d - 1) / s + 1, (iw + 2 * pad - (k - 1) * d - 1) / s + 1);
            let x = vals(ih * iw * ic, 1);
            let w = vals(k * k * oc, 2);
            let b = vals(oc, 3);
            let p = Depthwise {
                x: &x,
                w: &w,
                bias: Some(&b),
                clamp: Clamp::new(Activation::Relu6),
                ih,
                iw,
                ic,
                oh,
                ow,
                oc,
                mult,
                kh: k,
                kw: k,
                sh: s,
                sw: s,
                dh: d,
                dw: d,
                pad_t: pad,
                pad_l: pad,
            };
            let mut want = vec![0.0f32; oh * ow * oc];
            for y in 0..oh {
                for xo in 0..ow {
                    for o in 0..oc {
                        let mut total = 0.0f32;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (y * s + ky * d) as isize - pad as isize;
                                let ix = (xo * s + kx * d) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw {
                                    total +=
                                        x[(iy as usize * iw + ix as usize) * ic + o / mult] * w[(ky * k + kx) * oc + o];
                                }
                            }
                        }
                        want[(y * ow + xo) * oc + o] = Clamp::new(Activation::Relu6).apply(total + b[o]);
                    }
                }
            }
            for isa in Isa::available() {
                let mut got = vec![f32::NAN; oh * ow * oc];
                depthwise_rows_on(isa, &p, 0, &mut got);
                assert!(
                    got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()),
                    "{isa:?} differs from the reference loop for {ih}x{iw}x{ic} m{mult} k{k} s{s} d{d}"
                );
            }
        }
    }
}
