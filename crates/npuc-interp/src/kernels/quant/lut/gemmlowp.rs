//! gemmlowp's fixed-point machinery and the TFLite helpers built on it, on raw integers.
//!
//! A gemmlowp `FixedPoint<int32_t, IntegerBits>` is represented here by its raw `i32`, with
//! the integer bits passed explicitly where an operation depends on them. Every function
//! reproduces the scalar C++ code bit for bit, including its wrapping (gemmlowp's `Add`,
//! `Sub` and `ShiftLeft` are plain int32 arithmetic, which wraps on the hardware TFLite runs
//! on) and saturation. Sources (facts, not code): gemmlowp `fixedpoint/fixedpoint.h`,
//! TFLite `kernels/internal/common.h` (`GetReciprocal`,
//! `GetInvSqrtQuantizedMultiplierExp`, `DownScaleInt32ToInt16Multiplier`), `common.cc`
//! (`MultiplyByQuantizedMultiplier`, double-rounding build) and `quantization_util.cc`
//! (`QuantizeMultiplier`, `PreprocessSoftmaxScaling`, `CalculateInputRadius`,
//! `CheckedLog2`).

// The shared primitives under the short names gemmlowp-style code reads best with.
pub(crate) use crate::kernels::quant::fixed_point::{
    multiply_by_quantized_multiplier as mbqm,
    multiply_by_quantized_multiplier_greater_than_one as mbqm_greater_than_one, rounding_divide_by_pot as rdbp,
    saturating_rounding_doubling_high_mul as mul,
};

/// `SaturatingRoundingMultiplyByPOT<exponent>` on int32: a saturating left shift for
/// positive exponents, a rounding right shift for negative ones.
#[inline]
pub(crate) fn sat_mul_pot(x: i32, exponent: i32) -> i32 {
    match exponent {
        0 => x,
        e if e > 0 => {
            let threshold = ((1i64 << (31 - e)) - 1) as i32;
            if x > threshold {
                i32::MAX
            } else if x < -threshold {
                i32::MIN
            } else {
                x.wrapping_shl(e as u32)
            }
        }
        e => rdbp(x, -e),
    }
}

/// `Rescale<dst_bits>` of a value with `src_bits` integer bits.
#[inline]
pub(crate) fn rescale(x: i32, src_bits: i32, dst_bits: i32) -> i32 {
    sat_mul_pot(x, src_bits - dst_bits)
}

/// `RoundingHalfSum<int32_t>`: `(a + b) / 2` rounded away from zero.
#[inline]
pub(crate) fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = i64::from(a) + i64::from(b);
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `FixedPoint<int32_t, integer_bits>::One()`.
#[inline]
pub(crate) fn one(integer_bits: i32) -> i32 {
    if integer_bits == 0 {
        i32::MAX
    } else {
        1 << (31 - integer_bits)
    }
}

/// `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in, Q0.31 out).
pub(crate) fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const ONE_THIRD: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28); // a + 1/8
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = sat_mul_pot(x4, -2);
    let poly = sat_mul_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    CONSTANT_TERM.wrapping_add(mul(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// `exp_on_negative_values` for an input with `integer_bits` integer bits; Q0.31 result.
pub(crate) fn exp_on_negative_values(a: i32, integer_bits: i32) -> i32 {
    let fractional_bits = 31 - integer_bits;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        integer_bits,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(-2^k) for k = -2 ..= 4, in Q0.31.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        if integer_bits > exponent {
            let shift = fractional_bits + exponent;
            if remainder & (1i32 << shift) != 0 {
                result = mul(result, multiplier);
            }
        }
    }
    if integer_bits > 5 {
        let clamp = -(1i32 << (36 - integer_bits)); // -32
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = one(0);
    }
    result
}

/// `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in, Q0.31 out), Newton-Raphson division.
pub(crate) fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const C48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CNEG32_OVER_17: i32 = -1_010_580_540; // Q2.29
    let half_denominator = rounding_half_sum(a, one(0));
    let mut x = C48_OVER_17.wrapping_add(mul(half_denominator, CNEG32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = mul(half_denominator, x);
        let one_minus = one(2).wrapping_sub(half_denominator_times_x);
        x = x.wrapping_add(rescale(mul(x, one_minus), 4, 2));
    }
    // ExactMulByPot<-1> (Q2 → Q1, same raw), then Rescale<0>.
    rescale(x, 1, 0)
}

/// `CountLeadingZeros` of the bits of `x` read as unsigned.
#[inline]
pub(crate) fn clz(x: i32) -> i32 {
    (x as u32).leading_zeros() as i32
}

/// `GetReciprocal`: `1 / x` for `x` with `x_integer_digits` integer bits, as a Q0.31
/// mantissa and the number of bits the result is shifted by (`num_bits_over_unit`).
pub(crate) fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = clz(x);
    let num_bits_over_unit = x_integer_digits - headroom_plus_one;
    let shifted_sum_minus_one = (x as u32).wrapping_shl(headroom_plus_one as u32).wrapping_sub(1u32 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

/// `GetInvSqrtQuantizedMultiplierExp`: `1 / sqrt(input)` as a multiplier and a shift
/// (`reverse_shift` = -1 turns TFLite's right shift into a left shift).
pub(crate) fn inv_sqrt_quantized_multiplier_exp(input: i32, reverse_shift: i32) -> (i32, i32) {
    if input <= 1 {
        return (i32::MAX, 0);
    }
    let mut input = input;
    let mut output_shift = 11;
    while input >= (1 << 29) {
        input /= 4;
        output_shift += 1;
    }
    let max_left_shift_bits = (clz(input) - 1) as u32;
    let max_left_shift_bit_pairs = max_left_shift_bits / 2;
    let left_shift_bit_pairs = max_left_shift_bit_pairs.wrapping_sub(1);
    output_shift -= left_shift_bit_pairs as i32;
    input = input.wrapping_shl(2 * left_shift_bit_pairs);
    // Newton-Raphson in Q3.28.
    let fixedpoint_input = input >> 1;
    let fixedpoint_half_input = sat_mul_pot(fixedpoint_input, -1);
    let fixedpoint_half_three = (1 << 28) + (1 << 27);
    let mut x = one(3);
    for _ in 0..5 {
        let x3 = rescale(mul(mul(x, x), x), 9, 3);
        x = rescale(mul(fixedpoint_half_three, x).wrapping_sub(mul(fixedpoint_half_input, x3)), 6, 3);
    }
    const HALF_SQRT_2: i32 = 1_518_500_250; // Q0.31
    let mut inv = mul(x, HALF_SQRT_2);
    if output_shift < 0 {
        inv = inv.wrapping_shl((-output_shift) as u32);
        output_shift = 0;
    }
    (inv, output_shift * reverse_shift)
}

/// `QuantizeMultiplier` as `(multiplier, shift)`.
pub(crate) fn quantize_multiplier(real: f64) -> (i32, i32) {
    let q = crate::kernels::quant::fixed_point::quantize_multiplier(real);
    (q.multiplier, q.shift)
}

/// `DownScaleInt32ToInt16Multiplier`: round a Q0.31 multiplier to Q0.15.
pub(crate) fn downscale_multiplier_to_i16(m: i32) -> i16 {
    const ROUNDING: i32 = 1 << 15;
    if m >= i32::MAX - ROUNDING {
        return i16::MAX;
    }
    ((m + ROUNDING) >> 16) as i16
}

/// `PreprocessSoftmaxScaling` (double-rounding build): `beta · input_scale` as a Q(bits)
/// multiplier capped at 2^31 - 1, returned as `(multiplier, left_shift)`.
pub(crate) fn preprocess_softmax_scaling(beta: f64, input_scale: f64, input_integer_bits: i32) -> (i32, i32) {
    let max_real_multiplier = ((1i64 << 31) - 1) as f64;
    let real = (beta * input_scale * (1i64 << (31 - input_integer_bits)) as f64).min(max_real_multiplier);
    quantize_multiplier(real)
}

/// `CalculateInputRadius` (floating-point build).
pub(crate) fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32, total_signed_bits: i32) -> i32 {
    let max_input_rescaled =
        1.0 * ((1i64 << input_integer_bits) - 1) as f64 * (1i64 << (total_signed_bits - input_integer_bits)) as f64
            / 2f64.powi(input_left_shift);
    f64_to_i32(max_input_rescaled.floor())
}

/// `CheckedLog2`: the rounded base-2 logarithm of `x` and whether `x` is (within 1e-3 in
/// the exponent) a power of two. Computed in f32 with `logf`, as TFLite does.
pub(crate) fn checked_log2(x: f32) -> (bool, i32) {
    if x <= 0.0 {
        return (false, 0);
    }
    let x_log2 = x.ln() * (1.0f32 / 2.0f32.ln());
    let rounded = x_log2.round();
    let frac = x_log2 - rounded;
    (frac.abs() < 1e-3, f32_to_i32(rounded))
}

/// `SaturatingRoundingDoublingHighMul<int16_t>`.
#[inline]
pub(crate) fn mul_i16(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    let ab = i32::from(a) * i32::from(b);
    let nudge: i32 = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
    ((ab + nudge) / (1 << 15)) as i16
}

/// TFLite's `SaturatingDoublingHighMul<int16_t>` (hard_swish.h): like [`mul_i16`] but
/// rounding toward zero.
#[inline]
pub(crate) fn mul_i16_truncating(a: i16, b: i16) -> i16 {
    if a == b && a == i16::MIN {
        return i16::MAX;
    }
    ((i32::from(a) * i32::from(b)) / (1 << 15)) as i16
}

/// `RoundingDivideByPOT<int16_t>`, with int16 intermediates as gemmlowp's template has
/// them (the mask is truncated to 16 bits, so exponents of 16 and more give gemmlowp's
/// odd results, reproduced here).
#[inline]
pub(crate) fn rdbp_i16(x: i16, exponent: i32) -> i16 {
    let e = exponent.clamp(0, 63) as u32;
    let mask = ((1i64 << e) - 1) as i16;
    let remainder = x & mask;
    let threshold = (mask >> 1).wrapping_add(i16::from(x < 0));
    let shifted = (i32::from(x) >> (e & 31)) as i16;
    shifted.wrapping_add(i16::from(remainder > threshold))
}

/// x86-64 `cvttss2si`: float to int32 truncating toward zero; NaN and out-of-range values
/// give `i32::MIN` (what TFLite's `static_cast<int32_t>(float)` does on its x86-64 build).
#[inline]
pub(crate) fn f32_to_i32(x: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        x as i32
    } else {
        i32::MIN
    }
}

/// x86-64 `cvttsd2si`: double to int32, as [`f32_to_i32`].
#[inline]
pub(crate) fn f64_to_i32(x: f64) -> i32 {
    if x > -2_147_483_649.0 && x < 2_147_483_648.0 {
        x as i32
    } else {
        i32::MIN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: i32, integer_bits: i32) -> f64 {
        f64::from(raw) / 2f64.powi(31 - integer_bits)
    }

    #[test]
    fn exp_on_negative_values_is_exp() {
        assert_eq!(exp_on_negative_values(0, 5), i32::MAX);
        for k in 1..2000 {
            let a = -(k * (1 << 16));
            let got = q(exp_on_negative_values(a, 5), 0);
            let want = q(a, 5).exp();
            assert!((got - want).abs() < 1e-6, "{a}: {got} vs {want}");
        }
    }

    #[test]
    fn one_over_one_plus_x_is_reciprocal() {
        for k in 0..100 {
            let a = k * (i32::MAX / 100);
            let got = q(one_over_one_plus_x_for_x_in_0_1(a), 0);
            let want = 1.0 / (1.0 + q(a, 0));
            assert!((got - want).abs() < 1e-7, "{a}: {got} vs {want}");
        }
    }

    #[test]
    fn inv_sqrt_matches_definition() {
        for &x in &[2, 3, 17, 1000, 65025, 1 << 20, 123_456_789, i32::MAX] {
            let (m, s) = inv_sqrt_quantized_multiplier_exp(x, -1);
            let got = f64::from(m) / 2f64.powi(31) * 2f64.powi(s);
            let want = 1.0 / f64::from(x).sqrt();
            assert!((got / want - 1.0).abs() < 1e-5, "{x}: {got} vs {want}");
        }
        assert_eq!(inv_sqrt_quantized_multiplier_exp(1, -1), (i32::MAX, 0));
    }

    #[test]
    fn reciprocal_of_two() {
        // 2.0 in Q12.19.
        let (m, bits) = get_reciprocal(2 << 19, 12);
        assert_eq!(bits, 1);
        assert!((q(m, 0) - 1.0).abs() < 1e-8);
    }

    #[test]
    fn int16_primitives() {
        assert_eq!(mul_i16(i16::MIN, i16::MIN), i16::MAX);
        assert_eq!(mul_i16(1 << 14, 1 << 14), 1 << 13);
        assert_eq!(mul_i16_truncating(-3, 1 << 14), -1);
        assert_eq!(rdbp_i16(5, 1), 3);
        assert_eq!(rdbp_i16(-5, 1), -3);
        assert_eq!(rdbp_i16(100, 0), 100);
        assert_eq!(downscale_multiplier_to_i16(1 << 30), 1 << 14);
        assert_eq!(downscale_multiplier_to_i16(i32::MAX), i16::MAX);
    }

    #[test]
    fn float_to_int_like_x86() {
        assert_eq!(f32_to_i32(f32::INFINITY), i32::MIN);
        assert_eq!(f32_to_i32(f32::NAN), i32::MIN);
        assert_eq!(f32_to_i32(-1.9), -1);
        assert_eq!(f64_to_i32(3e9), i32::MIN);
    }

    #[test]
    fn checked_log2_detects_powers_of_two() {
        assert_eq!(checked_log2(1.0 / 32768.0), (true, -15));
        assert_eq!(checked_log2(4096.0), (true, 12));
        assert!(!checked_log2(0.3).0);
    }
}
