//! The int8 convolutions as the NPU computes them: from the decoded weights, the
//! per-channel scale/bias records and the command's fused clamp alone.
//!
//! Per output element: a 32-bit accumulator of `(ifm − ifm_zero_point) · weight` over the
//! window (padded taps contribute nothing), plus the record's bias, rescaled by the record's
//! multiplier and shift with TFLite's `MultiplyByQuantizedMultiplier` (the interpreter's own
//! primitive), plus the OFM zero point, clamped. Sums wrap in 32 bits as TFLite's do, so
//! the order of the taps does not matter and the result equals TFLite's reference kernels
//! whenever the records hold TFLite's multipliers — which the simulator's comparison with
//! the interpreter checks.

use npuc_interp::fixed_point::multiply_by_quantized_multiplier;
use npuc_ir::Padding;

/// A parsed scale/bias record: bias, and the multiplier with TFLite's shift convention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Bias added to the accumulator.
    pub bias: i64,
    /// Q0.31 multiplier.
    pub multiplier: i32,
    /// TFLite shift (positive = left).
    pub shift: i32,
}

impl Record {
    /// Parses a 10-byte record (40-bit bias, 32-bit multiplier, 6-bit right shift).
    pub fn parse(r: &[u8; 10]) -> Record {
        let bias = i64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], 0, 0, 0]) << 24 >> 24;
        let multiplier = u32::from_le_bytes([r[5], r[6], r[7], r[8]]) as i32;
        Record { bias, multiplier, shift: 31 - i32::from(r[9] & 0x3f) }
    }
}

/// Geometry and quantization of one convolution.
#[derive(Clone, Debug)]
pub struct ConvSpec {
    /// IFM shape `[n, h, w, c]`.
    pub ifm: [usize; 4],
    /// OFM shape `[n, h, w, c]`.
    pub ofm: [usize; 4],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides `[h, w]`.
    pub stride: [usize; 2],
    /// Dilations `[h, w]`.
    pub dilation: [usize; 2],
    /// Padding scheme.
    pub padding: Padding,
    /// Depthwise (weights `[1, kh, kw, oc]`, `oc = ic · multiplier`) or full (`[oc, kh, kw, ic]`).
    pub depthwise: bool,
    /// IFM zero point.
    pub ifm_zp: i32,
    /// OFM zero point.
    pub ofm_zp: i32,
    /// Fused clamp `[lo, hi]` in OFM units.
    pub clamp: [i32; 2],
}

/// Runs the convolution; the error names the inconsistency a corrupted command would have.
pub fn conv_i8(x: &[i8], w: &[i8], records: &[Record], s: &ConvSpec) -> Result<Vec<i8>, String> {
    let [n, ih, iw, ic] = s.ifm;
    let [on, oh, ow, oc] = s.ofm;
    let [kh, kw] = s.kernel;
    let [sh, sw] = s.stride;
    let [dh, dw] = s.dilation;
    let per_group = if s.depthwise { 1 } else { ic };
    let expect_w = if s.depthwise { kh * kw * oc } else { oc * kh * kw * ic };
    if x.len() != n * ih * iw * ic || w.len() != expect_w || records.len() != oc || on != n {
        return Err(format!(
            "convolution operands disagree: IFM {:?} ({} values), {} weights, {} records, OFM {:?}",
            s.ifm,
            x.len(),
            w.len(),
            records.len(),
            s.ofm
        ));
    }
    let [lo, hi] = s.clamp;
    if lo > hi || lo < i32::from(i8::MIN) || hi > i32::from(i8::MAX) {
        return Err(format!("fused clamp [{lo}, {hi}] is not an int8 range"));
    }
    if s.depthwise && (ic == 0 || oc % ic != 0) {
        return Err(format!("depthwise OFM depth {oc} is not a multiple of IFM depth {ic}"));
    }
    let dims = |input: usize, k: usize, st: usize, d: usize| -> Result<(usize, usize), String> {
        let r = npuc_ir::shape::window_output_size(s.padding, input, k, st as u32, d as u32)?;
        let pad = match s.padding {
            Padding::Same => npuc_ir::shape::same_padding(input, k, st, d)[0],
            Padding::Valid => 0,
        };
        Ok((r, pad))
    };
    let (eh, pt) = dims(ih, kh, sh, dh)?;
    let (ew, pl) = dims(iw, kw, sw, dw)?;
    if (eh, ew) != (oh, ow) {
        return Err(format!("the OFM is {oh}x{ow} but the window gives {eh}x{ew}"));
    }
    let multiplier = if s.depthwise { oc / ic } else { 1 };
    let mut out = vec![0i8; n * oh * ow * oc];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..oc {
                    let mut acc = 0i32;
                    for ky in 0..kh {
                        let iy = (oy * sh + ky * dh) as isize - pt as isize;
                        if iy < 0 || iy >= ih as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * sw + kx * dw) as isize - pl as isize;
                            if ix < 0 || ix >= iw as isize {
                                continue;
                            }
                            let base = ((b * ih + iy as usize) * iw + ix as usize) * ic;
                            if s.depthwise {
                                let xv = i32::from(x[base + o / multiplier]).wrapping_sub(s.ifm_zp);
                                let wv = i32::from(w[(ky * kw + kx) * oc + o]);
                                acc = acc.wrapping_add(xv.wrapping_mul(wv));
                            } else {
                                let wb = ((o * kh + ky) * kw + kx) * per_group;
                                for i in 0..ic {
                                    let xv = i32::from(x[base + i]).wrapping_sub(s.ifm_zp);
                                    acc = acc.wrapping_add(xv.wrapping_mul(i32::from(w[wb + i])));
                                }
                            }
                        }
                    }
                    let r = records[o];
                    acc = acc.wrapping_add(r.bias as i32);
                    let v = multiply_by_quantized_multiplier(acc, r.multiplier, r.shift).wrapping_add(s.ofm_zp);
                    out[((b * oh + oy) * ow + ox) * oc + o] = v.clamp(lo, hi) as i8;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_back() {
        let r = crate::reorder::scale_bias_record(-7, 1 << 30, 34).unwrap();
        assert_eq!(Record::parse(&r), Record { bias: -7, multiplier: 1 << 30, shift: -3 });
    }

    #[test]
    fn one_by_one_conv_is_a_scaled_dot_product() {
        // 1x1 conv, 2 input channels, multiplier 0.5 (2^30 · 2^(0−31)), zero points 1 and 3.
        let spec = ConvSpec {
            ifm: [1, 1, 1, 2],
            ofm: [1, 1, 1, 1],
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            padding: Padding::Valid,
            depthwise: false,
            ifm_zp: 1,
            ofm_zp: 3,
            clamp: [-128, 127],
        };
        let rec = [Record { bias: 4, multiplier: 1 << 30, shift: 0 }];
        // ((5−1)·2 + (3−1)·3 + 4) · 0.5 + 3 = 12
        assert_eq!(conv_i8(&[5, 3], &[2, 3], &rec, &spec).unwrap(), vec![12]);
        let clamped = ConvSpec { clamp: [-128, 10], ..spec.clone() };
        assert_eq!(conv_i8(&[5, 3], &[2, 3], &rec, &clamped).unwrap(), vec![10]);
        assert!(conv_i8(&[5], &[2, 3], &rec, &spec).is_err());
    }
}
