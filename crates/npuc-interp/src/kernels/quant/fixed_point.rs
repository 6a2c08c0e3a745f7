//! The fixed-point arithmetic of TFLite's integer kernels.
//!
//! Bit-exactness with TFLite depends on reproducing these primitives exactly, including
//! their rounding (half away from zero in `quantize_multiplier`, round-half-up with a sign
//! correction in `rounding_divide_by_pot`) and saturation. Sources (facts, not code):
//! `tensorflow/lite/kernels/internal/quantization_util.cc` (`QuantizeMultiplier`),
//! `tensorflow/lite/kernels/internal/common.h` (`MultiplyByQuantizedMultiplier*`, the
//! default double-rounding build) and gemmlowp's `fixedpoint.h`
//! (`SaturatingRoundingDoublingHighMul`, `RoundingDivideByPOT`).

/// A real multiplier as TFLite encodes it: `multiplier · 2^(shift - 31)`, with the
/// multiplier a Q0.31 value in [2^30, 2^31) (or 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizedMultiplier {
    /// Q0.31 mantissa.
    pub multiplier: i32,
    /// Power-of-two exponent (positive = left shift).
    pub shift: i32,
}

/// Encodes a real multiplier (`QuantizeMultiplier`): frexp, round the mantissa to 31
/// bits half away from zero, renormalise on overflow, flush tiny values to zero.
pub fn quantize_multiplier(real: f64) -> QuantizedMultiplier {
    if real == 0.0 {
        return QuantizedMultiplier { multiplier: 0, shift: 0 };
    }
    let (q, mut shift) = frexp(real);
    let mut q_fixed = (q * (1i64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    // No clamp of shifts above 30: that belongs to TFLite's single-rounding build, and
    // LiteRT ships the default double-rounding one.
    QuantizedMultiplier { multiplier: q_fixed as i32, shift }
}

/// The multiplier of quantized MEAN (LiteRT's integer mean): `in_scale / out_scale`
/// encoded by [`quantize_multiplier`], with `1 / count` folded into the mantissa by up to
/// `log2(count)` bits (no more than 32, and no more than the shift allows).
pub fn mean_multiplier(in_scale: f32, out_scale: f32, count: usize) -> QuantizedMultiplier {
    let qm = quantize_multiplier(f64::from(in_scale) / f64::from(out_scale));
    let count = count.max(1);
    let fold = (63 - (count as u64).leading_zeros() as i32).min(32).min(31 + qm.shift);
    QuantizedMultiplier {
        multiplier: ((i64::from(qm.multiplier) << fold) / count as i64) as i32,
        shift: qm.shift - fold,
    }
}

/// `frexp`: `x = m · 2^e` with `|m|` in [0.5, 1) (for finite, non-zero `x`).
pub fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up into the normal range first.
        let (m, e) = frexp(x * (1u64 << 54) as f64);
        return (m, e - 54);
    }
    let e = exp - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e)
}

/// `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2·a·b`, rounded to nearest
/// (ties away from zero), saturating the single overflow case `a = b = i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge = if ab >= 0 { 1i64 << 30 } else { 1 - (1i64 << 30) };
    // C++ integer division truncates toward zero; so does Rust's.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
/// Exponents outside [0, 31] (reached only with degenerate scales) behave as TFLite's
/// x86-64 build does: the 64-bit mask is truncated to 32 bits and the arithmetic shift
/// count is taken modulo 32.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = exponent.clamp(0, 63) as u32;
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1).wrapping_add(i32::from(x < 0));
    (x >> (e & 31)).wrapping_add(i32::from(remainder > threshold))
}

/// `MultiplyByQuantizedMultiplier` (32-bit accumulator, double rounding): `x · m · 2^s`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, m: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(saturating_rounding_doublings_input(x, left, m), right)
}

#[inline]
fn saturating_rounding_doublings_input(x: i32, left: i32, m: i32) -> i32 {
    // TFLite multiplies `x * (1 << left_shift)` in int32; on the hardware it runs on this
    // wraps, so wrapping reproduces it.
    saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32.wrapping_shl(left as u32)), m)
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`: for multipliers below one
/// (`left_shift <= 0`).
#[inline]
pub fn multiply_by_quantized_multiplier_smaller_than_one_exp(x: i32, m: i32, left_shift: i32) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), -left_shift)
}

/// `MultiplyByQuantizedMultiplierGreaterThanOne`: for multipliers of one or more.
#[inline]
pub fn multiply_by_quantized_multiplier_greater_than_one(x: i32, m: i32, left_shift: i32) -> i32 {
    saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32.wrapping_shl(left_shift as u32)), m)
}

/// `MultiplyByQuantizedMultiplier` for a 64-bit accumulator (int16 activations): the
/// multiplier is reduced to 16 bits and applied with a single rounding shift.
#[inline]
pub fn multiply_by_quantized_multiplier_i64(x: i64, m: i32, shift: i32) -> i32 {
    let reduced = if m < 0x7FFF_0000 { (m + (1 << 15)) >> 16 } else { 0x7FFF };
    let total_shift = 15 - shift;
    let x = x.wrapping_mul(i64::from(reduced)).wrapping_add(1i64 << (total_shift - 1));
    (x >> total_shift) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_matches_hand_values() {
        // 0.5 = 0.5 · 2^0 → mantissa 2^30, shift 0.
        assert_eq!(quantize_multiplier(0.5), QuantizedMultiplier { multiplier: 1 << 30, shift: 0 });
        // 1.0 = 0.5 · 2^1.
        assert_eq!(quantize_multiplier(1.0), QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
        // 0.75 · 2^-3.
        assert_eq!(quantize_multiplier(0.09375), QuantizedMultiplier { multiplier: 1610612736, shift: -3 });
        assert_eq!(quantize_multiplier(0.0), QuantizedMultiplier { multiplier: 0, shift: 0 });
        // A mantissa that rounds up to 2^31 renormalises.
        let q = quantize_multiplier(1.0 - 1e-12);
        assert_eq!(q, QuantizedMultiplier { multiplier: 1 << 30, shift: 1 });
        // Too small to represent flushes to zero.
        assert_eq!(quantize_multiplier(1e-12), QuantizedMultiplier { multiplier: 0, shift: 0 });
    }

    #[test]
    fn frexp_agrees_with_definition() {
        for &x in &[1.0, 0.3, 123.456, 1e-300, -2.5] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
            assert_eq!(m * 2f64.powi(e), x);
        }
    }

    #[test]
    fn doubling_high_mul_rounds_and_saturates() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        // 2·3·2^30 / 2^32 = 1.5: the nudge rounds ties up (toward +inf), as gemmlowp does.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
    }

    #[test]
    fn rounding_divide_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(7, 2), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    }

    #[test]
    fn multiply_by_multiplier_scales() {
        let q = quantize_multiplier(0.25);
        assert_eq!(multiply_by_quantized_multiplier(100, q.multiplier, q.shift), 25);
        assert_eq!(multiply_by_quantized_multiplier(-102, q.multiplier, q.shift), -26);
        let q = quantize_multiplier(3.0);
        assert_eq!(multiply_by_quantized_multiplier(7, q.multiplier, q.shift), 21);
    }
}
