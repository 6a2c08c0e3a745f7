//! LOGISTIC, TANH and HARD_SWISH (TFLite `activations.cc`).
//!
//! int8/uint8 LOGISTIC and TANH run the same table under the reference and the
//! generic-optimized kernel types (`reference_integer_ops::Logistic/Tanh` with an input
//! radius belong to `kFixedPointOptimized`, which neither resolver registers). int16 differs:
//! for power-of-two input scales (multiplier 0) the optimized kernel runs
//! `optimized_ops::Logistic/Tanh` instead of the reference integer code, and LiteRT's
//! default resolver gives different numbers there.

use npuc_ir::DType;

use super::gemmlowp::{
    checked_log2, downscale_multiplier_to_i16, f64_to_i32, mul_i16, mul_i16_truncating, quantize_multiplier, rdbp_i16,
};
use super::table::Lut8;
use super::{ensure, from_ints, input_q, int_range, output_q, unary, unsupported};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

/// LOGISTIC. int8/uint8: `SigmoidPrepare` requires an output scale of exactly 1/256 and
/// builds a table of `1.0f / (1.0f + expf(-x))`. int16: symmetric, output scale 2^-15,
/// `reference_integer_ops::Logistic`.
pub(super) fn logistic(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "LOGISTIC";
    let (x, out, v) = unary(cx, OP)?;
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    let values: Vec<i32> = match x.dtype() {
        DType::I8 | DType::U8 => {
            ensure(f64::from(oq.scale) == 1.0 / 256.0, OP, || format!("output scale {} is not 1/256", oq.scale))?;
            let lut = Lut8::new(int_range(x.dtype()).unwrap(), iq.scale, iq.zero_point, oq.scale, oq.zero_point, |x| {
                1.0f32 / (1.0f32 + (-x).exp())
            });
            v.into_iter().map(|x| lut.get(x)).collect()
        }
        DType::I16 => {
            ensure(f64::from(oq.scale) == 1.0 / 32768.0, OP, || format!("output scale {} is not 1/32768", oq.scale))?;
            let (multiplier, left_shift) = int16_input_rescale(OP, iq, oq, &[0])?;
            v.into_iter().map(|x| logistic_i16(x, multiplier, left_shift)).collect()
        }
        other => return Err(unsupported(OP, other)),
    };
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// TANH. int8/uint8: a table of `tanhf` (no constraint on the output quantization).
/// int16: symmetric, output scale 2^-15, `reference_integer_ops::Tanh`.
pub(super) fn tanh(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "TANH";
    let (x, out, v) = unary(cx, OP)?;
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    let values: Vec<i32> = match x.dtype() {
        DType::I8 | DType::U8 => {
            let lut =
                Lut8::new(int_range(x.dtype()).unwrap(), iq.scale, iq.zero_point, oq.scale, oq.zero_point, f32::tanh);
            v.into_iter().map(|x| lut.get(x)).collect()
        }
        DType::I16 => {
            let (multiplier, left_shift) = int16_input_rescale(OP, iq, oq, &[0, 1])?;
            v.into_iter().map(|x| tanh_i16(x, multiplier, left_shift)).collect()
        }
        other => return Err(unsupported(OP, other)),
    };
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// The int16 part of `SigmoidPrepare`/`TanhPrepare`: zero points must be 0; a power-of-two
/// input scale whose left shift `12 + log2(scale)` is one of `pot_shifts` keeps multiplier
/// 0 (the kernels then use `3 << shift`), any other scale gets an integer multiplier for
/// the input scale 1/(3·4096); the output scale must be 2^-15.
fn int16_input_rescale(
    op: &str,
    iq: super::QParams,
    oq: super::QParams,
    pot_shifts: &[i32],
) -> Result<(i32, i32), KernelError> {
    ensure(iq.zero_point == 0, op, || format!("int16 input zero point {} is not 0", iq.zero_point))?;
    ensure(oq.zero_point == 0, op, || format!("int16 output zero point {} is not 0", oq.zero_point))?;
    let (pot, log2) = checked_log2(iq.scale);
    let mut left_shift = (15 - 3) + log2;
    let mut multiplier = 0;
    if !(pot && pot_shifts.contains(&left_shift)) {
        let mut m = f64::from(iq.scale) * 4096.0 * 3.0;
        left_shift = 0;
        while m <= 32767.0 / 2.0 && left_shift <= 30 {
            left_shift += 1;
            m *= 2.0;
        }
        multiplier = f64_to_i32(m);
    }
    let (out_pot, out_log2) = checked_log2(oq.scale);
    ensure(out_pot && out_log2 == -15, op, || format!("int16 output scale {} is not 2^-15", oq.scale))?;
    Ok((multiplier, left_shift))
}

/// Rescales an int16 input for the sigmoid table (`3 << shift` for power-of-two scales).
fn rescale_i16_input(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    let (multiplier, left_shift) =
        if multiplier == 0 { (3i32.wrapping_shl(left_shift as u32), 0) } else { (multiplier, left_shift) };
    let round = if left_shift > 0 { 1i32 << (left_shift - 1) } else { 0 };
    x.wrapping_mul(multiplier).wrapping_add(round) >> left_shift
}

/// `reference_integer_ops::Logistic` (int16).
fn logistic_i16(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    let input = rescale_i16_input(x, multiplier, left_shift);
    let abs = input.unsigned_abs();
    let uh = abs >> 9;
    let mut result: u32 = if uh >= 255 {
        0x7FFF << 10
    } else {
        let ua = u32::from(SIGMOID_TABLE_U16[uh as usize]);
        let ub = u32::from(SIGMOID_TABLE_U16[uh as usize + 1]);
        let ut = abs & 0x1ff;
        (ua << 9).wrapping_add(ut.wrapping_mul(ub.wrapping_sub(ua)))
    };
    result = if input >= 0 {
        result.wrapping_add(1 << 9)
    } else {
        (1u32 << 25).wrapping_sub(result).wrapping_add(1 << 9).wrapping_sub(1)
    };
    (result >> 10) as i16 as i32
}

/// `reference_integer_ops::Tanh` (int16), `tanh(x) = 2·sigmoid(2x) - 1` on the same table.
fn tanh_i16(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    let input = rescale_i16_input(x, multiplier, left_shift);
    let abs = input.unsigned_abs();
    let uh = abs >> 8;
    let mut result: i32 = if uh >= 255 {
        0xFFFF << 8
    } else {
        let ua = u32::from(SIGMOID_TABLE_U16[uh as usize]);
        let ub = u32::from(SIGMOID_TABLE_U16[uh as usize + 1]);
        let ut = abs & 0xff;
        (ua << 8).wrapping_add(ut.wrapping_mul(ub.wrapping_sub(ua))) as i32
    };
    result = if input >= 0 {
        result.wrapping_sub(1 << 23).wrapping_add(1 << 7)
    } else {
        result.wrapping_neg().wrapping_add(1 << 23).wrapping_add(1 << 7).wrapping_sub(1)
    };
    (result >> 8) as i16 as i32
}

/// HARD_SWISH (int8/uint8): `HardSwishPrepare` parameters and `reference_ops::HardSwish`.
pub(super) fn hard_swish(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "HARD_SWISH";
    let (x, out, v) = unary(cx, OP)?;
    let (lo, hi) = match x.dtype() {
        DType::I8 | DType::U8 => int_range(x.dtype()).unwrap(),
        other => return Err(unsupported(OP, other)),
    };
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    // HardSwishPrepare, in f32 as written there.
    let hires_input_scale = (1.0f32 / 128.0f32) * iq.scale;
    let reluish_scale = 3.0f32 / 32768.0f32;
    let output_multiplier = hires_input_scale / oq.scale;
    let (m, output_exponent) = quantize_multiplier(f64::from(output_multiplier));
    let output_fixedpoint = downscale_multiplier_to_i16(m);
    ensure(output_exponent <= 0, OP, || format!("output multiplier {output_multiplier} is 1 or more"))?;
    let reluish_multiplier = hires_input_scale / reluish_scale;
    let (m, reluish_exponent) = quantize_multiplier(f64::from(reluish_multiplier));
    let reluish_fixedpoint = downscale_multiplier_to_i16(m);

    let values = v
        .into_iter()
        .map(|q| {
            let input_value = q.wrapping_sub(iq.zero_point) as i16;
            let hires = (i32::from(input_value) * (1 << 7)) as i16;
            let preshift_output = mul_i16(hires, output_fixedpoint);
            let mut reluish = hires;
            if reluish_exponent > 0 {
                reluish = saturating_left_shift(reluish, reluish_exponent - 1);
            }
            reluish = mul_i16(reluish, reluish_fixedpoint);
            if reluish_exponent > 0 {
                reluish = saturating_left_shift(reluish, 1);
            }
            if reluish_exponent < 0 {
                reluish = rdbp_i16(reluish, -reluish_exponent);
            }
            reluish = ((i32::from(reluish) + (1 << 15)) >> 1) as i16;
            let preshift_output_value = mul_i16_truncating(reluish, preshift_output);
            let mut output = rdbp_i16(preshift_output_value, -output_exponent);
            output = (i32::from(output).wrapping_add(oq.zero_point)) as i16;
            i32::from(output).min(hi).max(lo)
        })
        .collect();
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// hard_swish.h `SaturatingLeftShift`: `value · 2^amount` clamped to int16.
fn saturating_left_shift(value: i16, amount: i32) -> i16 {
    let factor = 1i64.checked_shl(amount.clamp(0, 62) as u32).unwrap_or(0);
    (i64::from(value) * factor).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// `sigmoid_table_uint16` (TFLite common.h): sigmoid(i/24) in 0.16 format.
static SIGMOID_TABLE_U16: [u16; 256] = [
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_table_is_sigmoid_of_i_over_24() {
        for (i, &t) in SIGMOID_TABLE_U16.iter().enumerate() {
            let want = 65536.0 / (1.0 + (-(i as f64) / 24.0).exp());
            assert!((f64::from(t) - want).abs() <= 1.2, "{i}: {t} vs {want}");
        }
        assert!(SIGMOID_TABLE_U16.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn int16_logistic_and_tanh_are_close() {
        // Input scale 2^-12 (power of two): multiplier 0, shift 0.
        for x in [-32768, -4096, -1, 0, 1, 4096, 20000, 32767] {
            let real = f64::from(x) / 4096.0;
            let l = f64::from(logistic_i16(x, 0, 0)) / 32768.0;
            assert!((l - 1.0 / (1.0 + (-real).exp())).abs() < 1e-3, "logistic {x}: {l}");
            let t = f64::from(tanh_i16(x, 0, 0)) / 32768.0;
            assert!((t - real.tanh()).abs() < 2e-3, "tanh {x}: {t}");
        }
    }
}
