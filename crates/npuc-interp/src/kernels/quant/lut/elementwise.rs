//! EXP (`exp.cc`), SQRT and RSQRT (`elementwise.cc`).

use npuc_ir::DType;

use super::gemmlowp::{f32_to_i32, inv_sqrt_quantized_multiplier_exp, mbqm, quantize_multiplier};
use super::table::{lookup16, lut16_f32, Lut8};
use super::{ensure, from_ints, input_q, int_range, output_q, unary, unsupported};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

/// EXP: int8 through a 256-entry `expf` table, int16 through an interpolated int16 table.
/// LiteRT 2.3's Prepare requires int16 zero points of 0 (later TFLite sources lift this).
pub(super) fn exp(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "EXP";
    let (x, out, v) = unary(cx, OP)?;
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    let values: Vec<i32> = match x.dtype() {
        DType::I8 => {
            let lut =
                Lut8::new(int_range(DType::I8).unwrap(), iq.scale, iq.zero_point, oq.scale, oq.zero_point, f32::exp);
            v.into_iter().map(|x| lut.get(x)).collect()
        }
        DType::I16 => {
            zero_points_are_zero(OP, iq, oq)?;
            let lut = lut16_f32(iq.scale, iq.zero_point, oq.scale, oq.zero_point, f32::exp);
            v.into_iter().map(|x| i32::from(lookup16(x as i16, &lut))).collect()
        }
        other => return Err(unsupported(OP, other)),
    };
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// SQRT (`SqrtEvalQuantized`): dequantize in f32, fail on a negative value, `sqrtf`,
/// divide by the output scale and truncate toward zero, add the output zero point, clamp.
/// A quotient beyond int32 becomes `INT_MIN` (x86-64 `cvttss2si`, as LiteRT's build does
/// here) and so clamps to the minimum. int16 needs zero points of 0.
pub(super) fn sqrt(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "SQRT";
    let (x, out, v) = unary(cx, OP)?;
    let (lo, hi) = match x.dtype() {
        DType::I8 | DType::I16 => int_range(x.dtype()).unwrap(),
        other => return Err(unsupported(OP, other)),
    };
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    if x.dtype() == DType::I16 {
        zero_points_are_zero(OP, iq, oq)?;
    }
    let mut values = Vec::with_capacity(v.len());
    for q in v {
        let dequantized = iq.scale * q.wrapping_sub(iq.zero_point) as f32;
        if dequantized.is_nan() || dequantized < 0.0 {
            return Err(KernelError::new(format!(
                "{OP}: Sqrt is only defined for non-negative values (element {q} dequantizes to {dequantized})"
            )));
        }
        let quantized = f32_to_i32(dequantized.sqrt() / oq.scale).wrapping_add(oq.zero_point);
        values.push(quantized.max(lo).min(hi));
    }
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// RSQRT. int8 (`RsqrtEvalQuantizedInt8`): the integer inverse square root of
/// `q - zero_point` through `GetInvSqrtQuantizedMultiplierExp`, rescaled by
/// `1 / (sqrtf(input_scale) · output_scale)`; 0 maps to 127; values below the zero point
/// are an error. int16: an interpolated table of `1.0f / sqrtf(x)` (zero points 0).
pub(super) fn rsqrt(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "RSQRT";
    let (x, out, v) = unary(cx, OP)?;
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    let negative = |q: i32| {
        KernelError::new(format!(
            "{OP}: Rsqrt is only defined for positive values (element {q} is below the zero point {})",
            iq.zero_point
        ))
    };
    let values: Vec<i32> = match x.dtype() {
        DType::I8 => {
            let scale = 1.0 / f64::from(iq.scale.sqrt() * oq.scale);
            let (multiplier, shift) = quantize_multiplier(scale);
            const SHIFT: i32 = 20;
            let mut values = Vec::with_capacity(v.len());
            for q in v {
                if q < iq.zero_point {
                    return Err(negative(q));
                }
                let value = q - iq.zero_point;
                if value == 0 {
                    values.push(127);
                    continue;
                }
                let (inv_sqrt_multiplier, inv_sqrt_shift) = inv_sqrt_quantized_multiplier_exp(value, -1);
                let data = mbqm(1, inv_sqrt_multiplier, inv_sqrt_shift + SHIFT);
                let output = mbqm(data, multiplier, shift - SHIFT).wrapping_add(oq.zero_point);
                values.push(output.clamp(-128, 127));
            }
            values
        }
        DType::I16 => {
            zero_points_are_zero(OP, iq, oq)?;
            let output_scale = oq.scale;
            let lut = lut16_f32(iq.scale, iq.zero_point, oq.scale, oq.zero_point, |x| {
                if x <= 0.0 {
                    32767.0 * output_scale
                } else {
                    1.0f32 / x.sqrt()
                }
            });
            if let Some(&q) = v.iter().find(|&&q| q < iq.zero_point) {
                return Err(negative(q));
            }
            v.into_iter().map(|x| i32::from(lookup16(x as i16, &lut))).collect()
        }
        other => return Err(unsupported(OP, other)),
    };
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// `GenericPrepare` of elementwise.cc for quantized int16: both zero points must be 0.
fn zero_points_are_zero(op: &str, iq: super::QParams, oq: super::QParams) -> Result<(), KernelError> {
    ensure(iq.zero_point == 0 && oq.zero_point == 0, op, || {
        format!("int16 zero points must be 0 (input {}, output {})", iq.zero_point, oq.zero_point)
    })
}
