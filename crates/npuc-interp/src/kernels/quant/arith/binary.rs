//! ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM and SQUARED_DIFFERENCE with numpy broadcasting.
//!
//! ADD/SUB (int8, uint8, and int16 outside the power-of-two case) rescale both inputs to
//! a common `2 * max(input scales)` after shifting them left by 20 bits (15 for int16),
//! add or subtract, and rescale to the output; multipliers come from `double` ratios of
//! float scales as add.cc/sub.cc write them. int16 with `pot_scale_int16` and
//! power-of-two scales and zero points 0 takes the saturating fixed-point path instead.
//! MUL multiplies the offset-corrected values and rescales by
//! `input1_scale * input2_scale / output_scale`, evaluated in float (mul.cc). DIV uses
//! gemmlowp's Newton-Raphson reciprocal; TFLite rejects a divisor equal to its zero
//! point, and so do we. MAXIMUM and MINIMUM compare raw values, as TFLite does.

use npuc_ir::{Activation, DType};

use super::{act_range, broadcast_map, broadcast_shape, check_zp, from_ints, in_q, int_range, ints, out_q, out_tensor};
use crate::error::KernelError;
use crate::kernels::quant::fixed_point::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
    multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier, saturating_rounding_doubling_high_mul,
    QuantizedMultiplier,
};
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

type R = Result<Vec<Tensor>, KernelError>;

fn err<T>(msg: impl Into<String>) -> Result<T, KernelError> {
    Err(KernelError::new(msg))
}

/// Operand types of a binary quantized op: both inputs and the result share one integer
/// dtype. Returns it and checks the broadcast.
fn binary_types(cx: &KernelCtx<'_>, allowed: &[DType], name: &str) -> Result<DType, KernelError> {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let out = cx.output_type(0)?;
    let d = a.dtype();
    if b.dtype() != d || out.dtype != d || !allowed.contains(&d) {
        return err(format!(
            "quantized {name} takes {} operands of one type, got {} and {} -> {}",
            allowed.iter().map(|d| d.name()).collect::<Vec<_>>().join("/"),
            a.dtype(),
            b.dtype(),
            out.dtype
        ));
    }
    broadcast_shape(&a.shape, &b.shape, &out.shape)?;
    Ok(d)
}

/// gemmlowp's `RoundingDivideByPOT` as compiled for x86, for every exponent: within
/// [0, 31] it is the usual rounding shift; outside, the C++ shifts are out of range and
/// x86 masks their counts (`1ll << e` by 63, the int32 `x >> e` by 31). DIV reaches
/// exponents above 31 (a small numerator with a large divisor) and LiteRT's results carry
/// exactly this: e.g. 0 / d comes out as 1, not 0.
#[inline]
fn rdivpot(x: i32, exponent: i32) -> i32 {
    let e = exponent as u32;
    let mask = 1i64.wrapping_shl(e & 63).wrapping_sub(1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> (e & 31)) + i32::from(remainder > threshold)
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`. Multipliers below one have their
/// shift in [-31, 0]; a degenerate one above one (only from absurd output scales) gets
/// the x86 behaviour of the out-of-range rounding shift.
#[inline]
fn mul_smaller(x: i32, m: QuantizedMultiplier) -> i32 {
    if m.shift <= 0 {
        multiply_by_quantized_multiplier_smaller_than_one_exp(x, m.multiplier, m.shift)
    } else {
        rdivpot(saturating_rounding_doubling_high_mul(x, m.multiplier), -m.shift)
    }
}

/// `QuantizeMultiplierSmallerThanOneExp` / `QuantizeMultiplierGreaterThanOne` both encode
/// like `QuantizeMultiplier`; the kernel side decides how the shift is applied.
fn qm(real: f64) -> QuantizedMultiplier {
    quantize_multiplier(real)
}

// ---------------------------------------------------------------------------------------
// ADD / SUB
// ---------------------------------------------------------------------------------------

/// `CheckedLog2`: whether `x` is a power of two (within 1e-3 of its rounded log2), and
/// that log2.
fn checked_log2(x: f32) -> Option<i32> {
    let l = f64::from(x).log2();
    let r = l.round();
    ((l - r).abs() < 1e-3).then_some(r as i32)
}

pub(super) fn add_sub(cx: &KernelCtx<'_>, act: Activation, pot_scale_int16: bool, sub: bool) -> R {
    let name = if sub { "SUB" } else { "ADD" };
    let d = binary_types(cx, &[DType::I8, DType::U8, DType::I16], name)?;
    let (q1, q2, qo) = (in_q(cx, 0)?, in_q(cx, 1)?, out_q(cx)?);
    let out_ty = cx.output_type(0)?;
    let (lo, hi) = act_range(act, out_ty)?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (x, y) = (ints(a)?, ints(b)?);

    // int16: the power-of-two path when asked for and possible.
    if d == DType::I16 && pot_scale_int16 {
        let logs = (checked_log2(q1.scale), checked_log2(q2.scale), checked_log2(qo.scale));
        // ADD needs zero points 0 for this path (else the general one); SUB only needs
        // power-of-two scales and then insists on zero points 0.
        let zps_zero = q1.zp == 0 && q2.zp == 0 && qo.zp == 0;
        if let (Some(l1), Some(l2), Some(lo2)) = logs {
            if zps_zero || sub {
                if !zps_zero {
                    return err("int16 SUB with power-of-two scales needs zero points 0");
                }
                let (s1, s2) = (l1 - lo2, l2 - lo2);
                if !(s1 == 0 || s2 == 0) || s1 > 0 || s2 > 0 {
                    return err(format!(
                        "int16 {name} with power-of-two scales can only shift one input right (shifts {s1}, {s2})"
                    ));
                }
                let out = broadcast_map(&x, &a.shape, &y, &b.shape, &out_ty.shape, |v1, v2| {
                    let r1 = rdivpot(v1, -s1);
                    let r2 = rdivpot(v2, -s2);
                    // Saturating int16 add/sub, then the activation clamp (within int16).
                    if sub {
                        (r1 - r2).clamp(lo, hi)
                    } else {
                        (r1 + r2).clamp(lo, hi)
                    }
                });
                return out_tensor(cx, from_ints(d, out)?);
            }
        }
    }

    check_zp(q1, d, "operand 0")?;
    check_zp(q2, d, "operand 1")?;
    check_zp(qo, d, "result 0")?;
    let left_shift = if d == DType::I16 { 15 } else { 20 };
    // float max, doubled (exactly) and widened: `2 * std::max(s1, s2)` in add.cc.
    let twice_max = f64::from(2.0 * q1.scale.max(q2.scale));
    let m1 = qm(f64::from(q1.scale) / twice_max);
    let m2 = qm(f64::from(q2.scale) / twice_max);
    // `(1 << left_shift) * output_scale` is a float product.
    let real_out = twice_max / f64::from((1 << left_shift) as f32 * qo.scale);
    let mo = qm(real_out);
    let (off1, off2) = (-q1.zp, -q2.zp);
    let scaled = |v: i32, off: i32, m: QuantizedMultiplier| mul_smaller((off + v).wrapping_mul(1 << left_shift), m);
    // 8-bit inputs take one of 256 values: tabulate each input's rescaled value.
    let (tmin, _) = int_range(d)?;
    let small = matches!(d, DType::I8 | DType::U8);
    let t1: Vec<i32> = if small { (tmin..tmin + 256).map(|v| scaled(v, off1, m1)).collect() } else { Vec::new() };
    let t2: Vec<i32> = if small { (tmin..tmin + 256).map(|v| scaled(v, off2, m2)).collect() } else { Vec::new() };
    let out = broadcast_map(&x, &a.shape, &y, &b.shape, &out_ty.shape, |v1, v2| {
        let (s1, s2) = if small {
            (t1[(v1 - tmin) as usize], t2[(v2 - tmin) as usize])
        } else {
            (scaled(v1, off1, m1), scaled(v2, off2, m2))
        };
        let raw = if sub { s1.wrapping_sub(s2) } else { s1.wrapping_add(s2) };
        // A real output multiplier above 1 (only for degenerate output scales) is applied
        // with the general multiply, as TFLite's QuantizeMultiplierGreaterThanOne path.
        let r = if mo.shift > 0 {
            multiply_by_quantized_multiplier(raw, mo.multiplier, mo.shift)
        } else {
            mul_smaller(raw, mo)
        };
        r.wrapping_add(qo.zp).clamp(lo, hi)
    });
    out_tensor(cx, from_ints(d, out)?)
}

// ---------------------------------------------------------------------------------------
// MUL
// ---------------------------------------------------------------------------------------

pub(super) fn mul(cx: &KernelCtx<'_>, act: Activation) -> R {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let out_ty = cx.output_type(0)?;
    let (q1, q2, qo) = (in_q(cx, 0)?, in_q(cx, 1)?, out_q(cx)?);
    let (lo, hi) = act_range(act, out_ty)?;
    // int16 x int16 -> int8/uint8 (LSTM helper): fixed-point Q0.15 product.
    if a.dtype() == DType::I16 && b.dtype() == DType::I16 && matches!(out_ty.dtype, DType::I8 | DType::U8) {
        if a.shape != b.shape || a.shape != out_ty.shape {
            return err("int16 x int16 -> 8-bit MUL does not broadcast");
        }
        let (x, y) = (ints(a)?, ints(b)?);
        let out = x
            .iter()
            .zip(&y)
            .map(|(&v1, &v2)| {
                // gemmlowp F0 (int16) multiply: SaturatingRoundingDoublingHighMul on int16.
                let p = if v1 == -32768 && v2 == -32768 {
                    32767
                } else {
                    let ab = v1 * v2;
                    let nudge = if ab >= 0 { 1 << 14 } else { 1 - (1 << 14) };
                    (ab + nudge) / (1 << 15)
                };
                let r = rdivpot(p, 8);
                r.clamp(lo - qo.zp, hi - qo.zp) + qo.zp
            })
            .collect();
        return out_tensor(cx, from_ints(out_ty.dtype, out)?);
    }
    let d = binary_types(cx, &[DType::I8, DType::U8, DType::I16], "MUL")?;
    if d == DType::I16 && (q1.zp != 0 || q2.zp != 0 || qo.zp != 0) {
        return err(format!("int16 MUL needs zero points 0, got {}, {} and {}", q1.zp, q2.zp, qo.zp));
    }
    // mul.cc: `input1->params.scale * input2->params.scale / output->params.scale`, all
    // float, then widened.
    let m = quantize_multiplier(f64::from(q1.scale * q2.scale / qo.scale));
    let (x, y) = (ints(a)?, ints(b)?);
    let (off1, off2) = (-q1.zp, -q2.zp);
    let out = broadcast_map(&x, &a.shape, &y, &b.shape, &out_ty.shape, |v1, v2| {
        let p = (off1 + v1).wrapping_mul(off2 + v2);
        multiply_by_quantized_multiplier(p, m.multiplier, m.shift).wrapping_add(qo.zp).clamp(lo, hi)
    });
    out_tensor(cx, from_ints(d, out)?)
}

// ---------------------------------------------------------------------------------------
// DIV
// ---------------------------------------------------------------------------------------

/// `CountLeadingSignBits` of an int32 (31 for 0).
fn leading_sign_bits(x: i32) -> i32 {
    if x >= 0 {
        x.leading_zeros() as i32 - 1
    } else {
        x.leading_ones() as i32 - 1
    }
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT<e>` for e > 0 (saturating left shift).
fn sat_shl(x: i32, e: u32) -> i32 {
    let threshold = (1i32 << (31 - e)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << e
    }
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1` on Q0.31 raw values (Newton-Raphson with
/// three iterations in Q2.29).
fn one_over_one_plus_x(a: i32) -> i32 {
    // RoundingHalfSum(a, One()) with One() saturated to i32::MAX (0 integer bits).
    let sum = i64::from(a) + i64::from(i32::MAX);
    let sign = if sum >= 0 { 1 } else { -1 };
    let half_denominator = ((sum + sign) / 2) as i32;
    const C48_17: i32 = 1_515_870_810;
    const CNEG32_17: i32 = -1_010_580_540;
    const ONE_Q2: i32 = 1 << 29;
    let mut x = C48_17.wrapping_add(saturating_rounding_doubling_high_mul(half_denominator, CNEG32_17));
    for _ in 0..3 {
        let hdx = saturating_rounding_doubling_high_mul(half_denominator, x);
        let one_minus = ONE_Q2.wrapping_sub(hdx);
        // x * one_minus is Q4.27; Rescale to Q2.29 is a saturating left shift by 2.
        x = x.wrapping_add(sat_shl(saturating_rounding_doubling_high_mul(x, one_minus), 2));
    }
    // ExactMulByPot<-1> (Q2.29 -> Q1.30, same raw) then Rescale to Q0.31: shift left 1.
    sat_shl(x, 1)
}

/// TFLite's `GetReciprocal(x, 31, &num_bits_over_unit)` for x > 0.
fn reciprocal(x: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let bits_over_unit = 31 - headroom_plus_one;
    let shifted_minus_one = ((x as u32).wrapping_shl(headroom_plus_one as u32).wrapping_sub(1u32 << 31)) as i32;
    (one_over_one_plus_x(shifted_minus_one), bits_over_unit)
}

pub(super) fn div(cx: &KernelCtx<'_>, act: Activation) -> R {
    let d = binary_types(cx, &[DType::I8, DType::U8, DType::I16, DType::U16], "DIV")?;
    let (q1, q2, qo) = (in_q(cx, 0)?, in_q(cx, 1)?, out_q(cx)?);
    let out_ty = cx.output_type(0)?;
    let (lo, hi) = act_range(act, out_ty)?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (x, y) = (ints(a)?, ints(b)?);
    if let Some(i) = y.iter().position(|&v| v == q2.zp) {
        return err(format!("divisor element {i} equals its zero point {} (division by zero)", q2.zp));
    }
    // div.cc: `input1_scale / (input2_scale * output_scale)` in float, widened.
    let m = quantize_multiplier(f64::from(q1.scale / (q2.scale * qo.scale)));
    if matches!(d, DType::I16 | DType::U16) && a.shape == b.shape {
        // Non-broadcast 16-bit DIV is computed in float (EvalDiv16AffineFloat).
        let out = x
            .iter()
            .zip(&y)
            .map(|(&v1, &v2)| {
                let l = (v1 - q1.zp) as f32 * q1.scale;
                let r = (v2 - q2.zp) as f32 * q2.scale;
                if r == 0.0 {
                    if l >= 0.0 {
                        hi
                    } else {
                        lo
                    }
                } else {
                    super::f32_to_i32_x86((l / r / qo.scale).round()).wrapping_add(qo.zp).clamp(lo, hi)
                }
            })
            .collect();
        return out_tensor(cx, from_ints(d, out)?);
    }
    let (off1, off2) = (-q1.zp, -q2.zp);
    let out = broadcast_map(&x, &a.shape, &y, &b.shape, &out_ty.shape, |v1, v2| {
        let (mut n, mut dd) = (off1 + v1, off2 + v2);
        if dd < 0 {
            n = -n;
            dd = -dd;
        }
        let (inv, recip_shift) = reciprocal(dd);
        let headroom = leading_sign_bits(n);
        let unscaled = multiply_by_quantized_multiplier_greater_than_one(n, inv, headroom);
        let total_shift = m.shift - recip_shift - headroom;
        let r = rdivpot(saturating_rounding_doubling_high_mul(unscaled, m.multiplier), -total_shift);
        r.wrapping_add(qo.zp).clamp(lo, hi)
    });
    out_tensor(cx, from_ints(d, out)?)
}

// ---------------------------------------------------------------------------------------
// MAXIMUM / MINIMUM, SQUARED_DIFFERENCE
// ---------------------------------------------------------------------------------------

pub(super) fn max_min(cx: &KernelCtx<'_>, max: bool) -> R {
    let d = binary_types(cx, &[DType::I8, DType::U8, DType::I16], if max { "MAXIMUM" } else { "MINIMUM" })?;
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (x, y) = (ints(a)?, ints(b)?);
    let out =
        broadcast_map(
            &x,
            &a.shape,
            &y,
            &b.shape,
            &cx.output_type(0)?.shape,
            |v1, v2| {
                if max {
                    v1.max(v2)
                } else {
                    v1.min(v2)
                }
            },
        );
    out_tensor(cx, from_ints(d, out)?)
}

pub(super) fn squared_difference(cx: &KernelCtx<'_>) -> R {
    let d = binary_types(cx, &[DType::I8], "SQUARED_DIFFERENCE")?;
    let (q1, q2, qo) = (in_q(cx, 0)?, in_q(cx, 1)?, out_q(cx)?);
    check_zp(q1, d, "operand 0")?;
    check_zp(q2, d, "operand 1")?;
    check_zp(qo, d, "result 0")?;
    let (lo, hi) = int_range(d)?;
    let left_shift = 7;
    let twice_max = f64::from(2.0 * q1.scale.max(q2.scale));
    let m1 = qm(f64::from(q1.scale) / twice_max);
    let m2 = qm(f64::from(q2.scale) / twice_max);
    let mo = qm(twice_max * twice_max / f64::from((1 << (left_shift * 2)) as f32 * qo.scale));
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let (x, y) = (ints(a)?, ints(b)?);
    let (off1, off2) = (-q1.zp, -q2.zp);
    let out = broadcast_map(&x, &a.shape, &y, &b.shape, &cx.output_type(0)?.shape, |v1, v2| {
        let s1 = mul_smaller((off1 + v1) * (1 << left_shift), m1);
        let s2 = mul_smaller((off2 + v2) * (1 << left_shift), m2);
        let diff = s1 - s2;
        let sq = diff.wrapping_mul(diff);
        mul_smaller(sq, mo).wrapping_add(qo.zp).clamp(lo, hi)
    });
    out_tensor(cx, from_ints(d, out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_is_close_to_one_over_x() {
        for x in [1, 2, 3, 7, 100, 255, 256, 32767] {
            let (inv, bits) = reciprocal(x);
            // inv is the Q0.31 value of 2^bits / x (in [0.5, 1]).
            let approx = f64::from(inv) / 2f64.powi(31) / 2f64.powi(bits);
            assert!((approx - 1.0 / f64::from(x)).abs() * f64::from(x) < 1e-6, "{x}: {approx}");
        }
    }

    #[test]
    fn rounding_divide_matches_gemmlowp_in_range_and_x86_outside() {
        use crate::kernels::quant::fixed_point::rounding_divide_by_pot;
        for x in [-1_000_000, -7, -5, -4, -1, 0, 1, 3, 4, 5, 7, 1 << 30, i32::MAX, i32::MIN] {
            for e in 0..=31 {
                assert_eq!(rdivpot(x, e), rounding_divide_by_pot(x, e), "{x} >> {e}");
            }
        }
        // Out of range: the mask is all ones and the shift count wraps.
        assert_eq!(rdivpot(0, 32), 1);
        assert_eq!(rdivpot(-6, 33), -3);
    }

    #[test]
    fn log2_of_powers_of_two() {
        assert_eq!(checked_log2(0.25), Some(-2));
        assert_eq!(checked_log2(1.0 / 32768.0), Some(-15));
        assert_eq!(checked_log2(0.3), None);
    }
}
