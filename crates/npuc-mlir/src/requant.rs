//! TFLite's requantization arithmetic in TOSA's terms: the `tosa.rescale` multiplier and
//! shift of a real scale, and the integer range of a fused activation. Free of LLVM so it
//! is tested in default builds.

use npuc_ir::{Activation, DType, TensorType};

/// The `multiplier` / `shift` operands of one channel of a `tosa.rescale`
/// (`y = (x · multiplier + round) >> shift`, TOSA spec `apply_scale_32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rescale {
    /// Q0.31 multiplier (as TFLite's `QuantizeMultiplier` rounds it).
    pub multiplier: i32,
    /// Right shift, within TOSA's `[2, 62]` for 32-bit scales.
    pub shift: i8,
}

/// TOSA's bounds on the shift of a 32-bit scale (spec: `REQUIRE(2 <= shift <= 62)`).
const SHIFT_RANGE: std::ops::RangeInclusive<i32> = 2..=62;

/// The rescale for `real`, from TFLite's encoding `m · 2^(s - 31)` (so TOSA's right shift
/// is `31 - s`). Scales too small for the range flush to zero as TFLite's do; `None` for
/// scales of 2^29 and more, which no quantized model produces.
pub fn rescale(real: f64) -> Option<Rescale> {
    from_tflite(npuc_interp::quantize_multiplier(real))
}

/// TFLite's encoded multiplier (`multiplier · 2^(shift - 31)`) as a TOSA rescale.
pub fn from_tflite(q: npuc_interp::QuantizedMultiplier) -> Option<Rescale> {
    if q.multiplier == 0 {
        return Some(Rescale { multiplier: 0, shift: 2 });
    }
    let shift = 31 - q.shift;
    if shift > *SHIFT_RANGE.end() {
        // Shift the mantissa down instead; the product is below half an LSB anyway for
        // every 8/16-bit input once the shift passes 62.
        let excess = (shift - SHIFT_RANGE.end()) as u32;
        let m = if excess >= 31 { 0 } else { q.multiplier >> excess };
        return Some(Rescale { multiplier: m, shift: *SHIFT_RANGE.end() as i8 });
    }
    if !SHIFT_RANGE.contains(&shift) {
        return None;
    }
    Some(Rescale { multiplier: q.multiplier, shift: shift as i8 })
}

/// Per-tensor (first) scale and zero point of a quantized type.
pub fn scale_zp(ty: &TensorType) -> Option<(f32, i64)> {
    let q = ty.quant.as_ref()?;
    Some((*q.scale.first()?, q.zero_point.first().copied().unwrap_or(0)))
}

/// The integer range of an 8/16/32-bit signed type.
pub fn int_range(dtype: DType) -> Option<(i64, i64)> {
    Some(match dtype {
        DType::I8 => (-128, 127),
        DType::I16 => (-32768, 32767),
        DType::I32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => return None,
    })
}

/// The clamp bounds a fused activation imposes on a quantized result
/// (TFLite `CalculateActivationRangeQuantized`: `zp + round(x / scale)` of the real
/// bounds, intersected with the type's range). `None` for activations that are not a
/// clamp or types that are not quantized integers.
pub fn activation_range(act: Activation, ty: &TensorType) -> Option<(i64, i64)> {
    let (lo, hi) = int_range(ty.dtype)?;
    let (scale, zp) = scale_zp(ty)?;
    // TfLiteRound on floats: half away from zero, as f32::round.
    let q = |x: f32| zp + i64::from((x / scale).round() as i32);
    Some(match act {
        Activation::None => (lo, hi),
        Activation::Relu => (lo.max(zp), hi),
        Activation::Relu6 => (lo.max(zp), hi.min(q(6.0))),
        Activation::ReluN1To1 => (lo.max(q(-1.0)), hi.min(q(1.0))),
        Activation::Tanh | Activation::SignBit => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::Quantization;

    #[test]
    fn rescale_of_a_half_is_two_to_the_thirty_shifted_thirty_one() {
        // 0.5 = 0.5 · 2^0: TFLite gives m = 2^30, s = 0.
        assert_eq!(rescale(0.5), Some(Rescale { multiplier: 1 << 30, shift: 31 }));
        // 1.0 = 0.5 · 2^1.
        assert_eq!(rescale(1.0), Some(Rescale { multiplier: 1 << 30, shift: 30 }));
        // A typical conv scale: y = x · m >> shift stays within one LSB of x · real.
        let r = rescale(0.0123).expect("in range");
        let y = (1000i64 * i64::from(r.multiplier)) >> r.shift;
        assert!((y as f64 - 12.3).abs() <= 1.0, "{r:?} -> {y}");
    }

    #[test]
    fn tiny_and_zero_scales_flush_and_huge_ones_are_refused() {
        assert_eq!(rescale(0.0), Some(Rescale { multiplier: 0, shift: 2 }));
        let r = rescale(1e-12).expect("flushes");
        assert!(r.shift <= 62 && r.shift >= 2);
        assert_eq!(rescale(1e12), None);
    }

    #[test]
    fn activation_ranges_follow_tflite() {
        let ty = TensorType::new(DType::I8, vec![4]).with_quant(Quantization::per_tensor(0.05, -10));
        assert_eq!(activation_range(Activation::Relu, &ty), Some((-10, 127)));
        // 6 / 0.05 = 120 -> 110.
        assert_eq!(activation_range(Activation::Relu6, &ty), Some((-10, 110)));
        assert_eq!(activation_range(Activation::ReluN1To1, &ty), Some((-30, 10)));
        assert_eq!(activation_range(Activation::None, &ty), Some((-128, 127)));
    }
}
