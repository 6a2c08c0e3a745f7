//! RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, PRELU, QUANTIZE and DEQUANTIZE.
//!
//! The ReLU family requantizes with `input_scale / output_scale` (a float quotient,
//! activations.cc) and clamps at the activation's bounds quantized with `roundf`.
//! LEAKY_RELU has one multiplier for each sign (`input_scale * alpha / output_scale` in
//! float); PRELU likewise with the alpha tensor's scale. QUANTIZE from float divides by
//! the float scale and rounds half away from zero; between integer types it is
//! `Requantize` with `double(input_scale) / double(output_scale)`. DEQUANTIZE computes
//! `float(double(scale) * (q - zero_point))` per tensor and
//! `float((q - zero_point[c]) * scale[c])` (float arithmetic) per channel.

use npuc_ir::DType;

use super::{
    broadcast_map, broadcast_shape, f32_to_i32_x86, from_ints, in_q, int_range, ints, out_q, out_tensor, q_of,
};
use crate::error::KernelError;
use crate::kernels::quant::fixed_point::{multiply_by_quantized_multiplier, quantize_multiplier};
use crate::kernels::KernelCtx;
use crate::tensor::{Data, Tensor};

type R = Result<Vec<Tensor>, KernelError>;

fn err<T>(msg: impl Into<String>) -> Result<T, KernelError> {
    Err(KernelError::new(msg))
}

fn same_type(cx: &KernelCtx<'_>, allowed: &[DType], name: &str) -> Result<DType, KernelError> {
    let d = cx.input(0)?.dtype();
    let o = cx.output_type(0)?.dtype;
    if d != o || !allowed.contains(&d) {
        return err(format!(
            "quantized {name} takes {} to the same type, got {d} -> {o}",
            allowed.iter().map(|d| d.name()).collect::<Vec<_>>().join("/")
        ));
    }
    if cx.input(0)?.shape != cx.output_type(0)?.shape {
        return err(format!("{name} keeps the shape: {:?} -> {:?}", cx.input(0)?.shape, cx.output_type(0)?.shape));
    }
    Ok(d)
}

/// `QuantizedReluX`: requantize, then clamp to the quantized `[act_min, act_max]`.
pub(super) fn relu_x(cx: &KernelCtx<'_>, act_min: f32, act_max: f32) -> R {
    let d = same_type(cx, &[DType::I8, DType::U8, DType::I16], "RELU")?;
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    if d == DType::I16 && (iq.zp != 0 || oq.zp != 0) {
        return err(format!("int16 RELU needs zero points 0, got {} and {}", iq.zp, oq.zp));
    }
    let (tmin, tmax) = int_range(d)?;
    let m = quantize_multiplier(f64::from(iq.scale / oq.scale));
    let lo = tmin.max(oq.zp.wrapping_add(f32_to_i32_x86((act_min / oq.scale).round())));
    let hi = if act_max == f32::INFINITY {
        tmax
    } else {
        tmax.min(oq.zp.wrapping_add(f32_to_i32_x86((act_max / oq.scale).round())))
    };
    let out = ints(cx.input(0)?)?
        .into_iter()
        .map(|v| oq.zp.wrapping_add(multiply_by_quantized_multiplier(v - iq.zp, m.multiplier, m.shift)).max(lo).min(hi))
        .collect();
    out_tensor(cx, from_ints(d, out)?)
}

pub(super) fn leaky_relu(cx: &KernelCtx<'_>, alpha: f32) -> R {
    let d = same_type(cx, &[DType::I8, DType::U8, DType::I16], "LEAKY_RELU")?;
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    if d == DType::I16 && (iq.zp != 0 || oq.zp != 0) {
        return err(format!("int16 LEAKY_RELU needs zero points 0, got {} and {}", iq.zp, oq.zp));
    }
    let (tmin, tmax) = int_range(d)?;
    // `input->params.scale * params->alpha / output->params.scale`: float arithmetic.
    let ma = quantize_multiplier(f64::from(iq.scale * alpha / oq.scale));
    let mi = quantize_multiplier(f64::from(iq.scale / oq.scale));
    let out = ints(cx.input(0)?)?
        .into_iter()
        .map(|v| {
            let x = v - iq.zp;
            let m = if x >= 0 { mi } else { ma };
            oq.zp.wrapping_add(multiply_by_quantized_multiplier(x, m.multiplier, m.shift)).clamp(tmin, tmax)
        })
        .collect();
    out_tensor(cx, from_ints(d, out)?)
}

pub(super) fn prelu(cx: &KernelCtx<'_>) -> R {
    let (input, alpha) = (cx.input(0)?, cx.input(1)?);
    let out_ty = cx.output_type(0)?;
    let d = input.dtype();
    if alpha.dtype() != d || out_ty.dtype != d || !matches!(d, DType::I8 | DType::U8) {
        return err(format!(
            "quantized PRELU takes i8 or u8 input and alpha of one type, got {d}, {} -> {}",
            alpha.dtype(),
            out_ty.dtype
        ));
    }
    broadcast_shape(&input.shape, &alpha.shape, &out_ty.shape)?;
    let (iq, aq, oq) = (in_q(cx, 0)?, in_q(cx, 1)?, out_q(cx)?);
    let (tmin, tmax) = int_range(d)?;
    let m1 = quantize_multiplier(f64::from(iq.scale / oq.scale));
    let m2 = quantize_multiplier(f64::from(iq.scale * aq.scale / oq.scale));
    let (x, a) = (ints(input)?, ints(alpha)?);
    let out = broadcast_map(&x, &input.shape, &a, &alpha.shape, &out_ty.shape, |v, al| {
        let iv = v - iq.zp;
        let o = if iv >= 0 {
            multiply_by_quantized_multiplier(iv, m1.multiplier, m1.shift)
        } else {
            multiply_by_quantized_multiplier(iv * (al - aq.zp), m2.multiplier, m2.shift)
        };
        o.wrapping_add(oq.zp).clamp(tmin, tmax)
    });
    out_tensor(cx, from_ints(d, out)?)
}

pub(super) fn quantize(cx: &KernelCtx<'_>) -> R {
    let input = cx.input(0)?;
    let out_ty = cx.output_type(0)?;
    if input.shape != out_ty.shape {
        return err(format!("QUANTIZE keeps the shape: {:?} -> {:?}", input.shape, out_ty.shape));
    }
    let od = out_ty.dtype;
    if let Some(x) = input.as_f32() {
        if !matches!(od, DType::I8 | DType::U8 | DType::I16) {
            return err(format!("QUANTIZE from f32 produces i8, u8 or i16, not {od}"));
        }
        let (tmin, tmax) = int_range(od)?;
        let q = out_ty
            .quant
            .as_ref()
            .filter(|q| !q.scale.is_empty())
            .ok_or_else(|| KernelError::new("result 0 has no quantization"))?;
        let quant =
            |v: f32, scale: f32, zp: i32| f32_to_i32_x86((v / scale).round()).wrapping_add(zp).clamp(tmin, tmax);
        let out: Vec<i32> = if q.scale.len() > 1 {
            // PerChannelQuantize along the quantized dimension.
            let axis = q.axis as usize;
            if axis >= input.shape.len() || input.shape[axis] != q.scale.len() {
                return err(format!("{} scales along axis {axis} of {:?}", q.scale.len(), input.shape));
            }
            let inner: usize = input.shape[axis + 1..].iter().product();
            let ch = q.scale.len();
            let zps: Vec<i32> =
                (0..ch).map(|c| *q.zero_point.get(c).or(q.zero_point.first()).unwrap_or(&0) as i32).collect();
            x.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = (i / inner) % ch;
                    quant(v, q.scale[c], zps[c])
                })
                .collect()
        } else {
            let oq = out_q(cx)?;
            x.iter().map(|&v| quant(v, oq.scale, oq.zp)).collect()
        };
        return out_tensor(cx, from_ints(od, out)?);
    }
    let id = input.dtype();
    let supported = matches!(
        (id, od),
        (DType::I8 | DType::U8, DType::I8 | DType::U8)
            | (DType::I16, DType::I8 | DType::I16 | DType::I32)
            | (DType::I32, DType::I8 | DType::I16)
    );
    if !supported {
        return err(format!("TFLite's QUANTIZE does not requantize {id} to {od}"));
    }
    let (iq, oq) = (in_q(cx, 0)?, out_q(cx)?);
    if id == DType::I16 && od == DType::I16 && (iq.zp != 0 || oq.zp != 0) {
        return err(format!("int16 -> int16 QUANTIZE needs zero points 0, got {} and {}", iq.zp, oq.zp));
    }
    let m = quantize_multiplier(f64::from(iq.scale) / f64::from(oq.scale));
    let (tmin, tmax) = int_range(od)?;
    let out = ints(input)?
        .into_iter()
        .map(|v| {
            multiply_by_quantized_multiplier(v.wrapping_sub(iq.zp), m.multiplier, m.shift)
                .wrapping_add(oq.zp)
                .clamp(tmin, tmax)
        })
        .collect();
    out_tensor(cx, from_ints(od, out)?)
}

pub(super) fn dequantize(cx: &KernelCtx<'_>) -> R {
    let input = cx.input(0)?;
    let out_ty = cx.output_type(0)?;
    if out_ty.dtype != DType::F32 {
        return err(format!("DEQUANTIZE produces f32, not {}", out_ty.dtype));
    }
    if !matches!(input.dtype(), DType::I8 | DType::U8 | DType::I16 | DType::I4) {
        return err(format!("quantized DEQUANTIZE takes i4, i8, u8 or i16, not {}", input.dtype()));
    }
    let ity = cx.input_type(0)?;
    let q = ity
        .quant
        .as_ref()
        .filter(|q| !q.scale.is_empty())
        .ok_or_else(|| KernelError::new("operand 0 has no quantization"))?;
    let x: Vec<i32> = match &input.data {
        Data::I4(v) => v.iter().map(|&x| i32::from(x)).collect(),
        _ => ints(input)?,
    };
    let out: Vec<f32> = if q.scale.len() > 1 {
        let axis = q.axis as usize;
        if axis >= input.shape.len() || input.shape[axis] != q.scale.len() {
            return err(format!("{} scales along axis {axis} of {:?}", q.scale.len(), input.shape));
        }
        let inner: usize = input.shape[axis + 1..].iter().product();
        let ch = q.scale.len();
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / inner) % ch;
                let zp = *q.zero_point.get(c).or(q.zero_point.first()).unwrap_or(&0) as i32;
                (v - zp) as f32 * q.scale[c]
            })
            .collect()
    } else {
        let iq = q_of(ity, "operand 0")?;
        let scale = f64::from(iq.scale);
        x.iter().map(|&v| (scale * f64::from(v - iq.zp)) as f32).collect()
    };
    out_tensor(cx, Data::F32(out))
}
