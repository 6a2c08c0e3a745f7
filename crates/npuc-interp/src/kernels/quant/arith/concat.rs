//! CONCATENATION of quantized tensors, and the quantization checks of pure data-movement
//! ops whose input and output quantization differ.
//!
//! TFLite's CONCATENATION requantizes only uint8 inputs (`ConcatenationWithScaling`, in
//! float); int8 inputs must share the output's scale and zero point, int16 inputs must
//! have zero point 0 and are copied raw whatever their scales. Data-movement ops copy raw
//! values, which is only meaningful when input and output quantization agree; the
//! `movement` group runs them, and when the quantizations differ they land here and are
//! rejected with the mismatch named.

use npuc_ir::{Activation, DType, Op};

use super::{q_of, Q};
use crate::error::KernelError;
use crate::kernels::{KernelCtx, Outcome};
use crate::tensor::{Data, Tensor};

type R = Result<Vec<Tensor>, KernelError>;

fn err<T>(msg: impl Into<String>) -> Result<T, KernelError> {
    Err(KernelError::new(msg))
}

fn same_q(a: Q, b: Q) -> bool {
    a.scale == b.scale && a.zp == b.zp
}

pub(super) fn concatenation(cx: &KernelCtx<'_>, axis: i32, act: Activation) -> R {
    let out_ty = cx.output_type(0)?;
    let d = out_ty.dtype;
    if act != Activation::None {
        return err(format!("TFLite's CONCATENATION does not fuse {}", act.name()));
    }
    let rank = out_ty.shape.len() as i32;
    let ax = if axis < 0 { axis + rank } else { axis };
    if ax < 0 || ax >= rank.max(1) {
        return err(format!("axis {axis} is out of range for rank {rank}"));
    }
    let ax = ax as usize;
    let n_in = cx.inputs.len();
    let mut inputs = Vec::with_capacity(n_in);
    for i in 0..n_in {
        let t = cx.input(i)?;
        if t.dtype() != d {
            return err(format!("operand {i} is {}, the result {d}", t.dtype()));
        }
        if t.shape.len() != out_ty.shape.len()
            || t.shape.iter().zip(&out_ty.shape).enumerate().any(|(k, (a, b))| k != ax && a != b)
        {
            return err(format!(
                "operand {i} {:?} does not fit the result {:?} along axis {ax}",
                t.shape, out_ty.shape
            ));
        }
        inputs.push((t, q_of(cx.input_type(i)?, &format!("operand {i}"))?));
    }
    if inputs.iter().map(|(t, _)| t.shape.get(ax).copied().unwrap_or(1)).sum::<usize>()
        != out_ty.shape.get(ax).copied().unwrap_or(1)
    {
        return err("the operands' extents along the axis do not add up to the result's");
    }
    let oq = q_of(out_ty, "result 0")?;
    let outer: usize = out_ty.shape[..ax].iter().product();
    let inner: usize = out_ty.shape[ax + 1..].iter().product();
    match d {
        DType::I8 => {
            if let Some((i, (_, q))) = inputs.iter().enumerate().find(|(_, (_, q))| !same_q(*q, oq)) {
                return err(format!(
                    "TFLite's int8 CONCATENATION needs every input quantized like the result: operand {i} has scale {} zero point {}, the result scale {} zero point {}",
                    q.scale, q.zp, oq.scale, oq.zp
                ));
            }
        }
        DType::I16 => {
            if let Some((i, (_, q))) = inputs.iter().enumerate().find(|(_, (_, q))| q.zp != 0) {
                return err(format!("TFLite's int16 CONCATENATION needs zero points 0: operand {i} has {}", q.zp));
            }
        }
        DType::U8 => {}
        _ => return err(format!("quantized CONCATENATION of {d} is not supported")),
    }
    let data = match d {
        DType::I8 => Data::I8(copy_concat(&inputs, ax, outer, inner, |t| t.as_i8().map(<[i8]>::to_vec))?),
        DType::I16 => Data::I16(copy_concat(&inputs, ax, outer, inner, |t| match &t.data {
            Data::I16(v) => Some(v.clone()),
            _ => None,
        })?),
        _ => {
            // uint8: ConcatenationWithScaling.
            let inv = 1.0f32 / oq.scale;
            let parts: Vec<(Vec<u8>, usize)> = inputs
                .iter()
                .map(|(t, q)| {
                    let Data::U8(v) = &t.data else { unreachable!("checked above") };
                    let len = t.shape.get(ax).copied().unwrap_or(1) * inner;
                    if same_q(*q, oq) {
                        (v.clone(), len)
                    } else {
                        let scale = q.scale * inv;
                        let bias = -(q.zp as f32) * scale;
                        let r = v
                            .iter()
                            .map(|&x| {
                                let r =
                                    super::f32_to_i32_x86((f32::from(x) * scale + bias).round()).wrapping_add(oq.zp);
                                r.clamp(0, 255) as u8
                            })
                            .collect();
                        (r, len)
                    }
                })
                .collect();
            let mut out = Vec::with_capacity(outer * out_ty.shape.get(ax).copied().unwrap_or(1) * inner);
            for k in 0..outer {
                for (v, len) in &parts {
                    out.extend_from_slice(&v[k * len..(k + 1) * len]);
                }
            }
            Data::U8(out)
        }
    };
    Ok(vec![Tensor { shape: out_ty.shape.clone(), data }])
}

fn copy_concat<T: Copy>(
    inputs: &[(&Tensor, Q)],
    ax: usize,
    outer: usize,
    inner: usize,
    get: impl Fn(&Tensor) -> Option<Vec<T>>,
) -> Result<Vec<T>, KernelError> {
    let parts: Vec<(Vec<T>, usize)> = inputs
        .iter()
        .map(|(t, _)| {
            get(t)
                .map(|v| (v, t.shape.get(ax).copied().unwrap_or(1) * inner))
                .ok_or_else(|| KernelError::new("operand type changed"))
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(parts.iter().map(|(v, _)| v.len()).sum());
    for k in 0..outer {
        for (v, len) in &parts {
            out.extend_from_slice(&v[k * len..(k + 1) * len]);
        }
    }
    Ok(out)
}

/// Data-movement ops reaching this group: an error naming the quantization mismatch when
/// input and output quantization differ, `None` otherwise (they are not ours).
pub(super) fn movement_quant_mismatch(cx: &KernelCtx<'_>) -> Outcome {
    let data_slots: Vec<usize> = match &cx.op.op {
        Op::Reshape { .. }
        | Op::Squeeze { .. }
        | Op::ExpandDims
        | Op::SplitV { .. }
        | Op::Unpack { .. }
        | Op::Pad
        | Op::PadV2
        | Op::StridedSlice(_)
        | Op::Slice
        | Op::Transpose
        | Op::DepthToSpace { .. }
        | Op::SpaceToDepth { .. }
        | Op::BatchToSpaceNd
        | Op::SpaceToBatchNd
        | Op::Gather { .. }
        | Op::ResizeNearestNeighbor(_) => vec![0],
        Op::Split { .. } => vec![1],
        Op::Pack { .. } => (0..cx.inputs.len()).collect(),
        _ => return None,
    };
    let name = cx.op.op.mnemonic().to_uppercase();
    for &slot in &data_slots {
        let Some(ity) = cx.input_values.get(slot).copied().flatten().map(|v| &v.ty) else { continue };
        let Ok(iq) = q_of(ity, "input") else { continue };
        for (k, oty) in cx.output_types.iter().enumerate() {
            let Ok(oq) = q_of(oty, "result") else { continue };
            if !same_q(iq, oq) {
                return Some(err(format!(
                    "{name} copies quantized values unchanged, so TFLite requires equal quantization: operand {slot} has scale {} zero point {}, result {k} scale {} zero point {}",
                    iq.scale, iq.zp, oq.scale, oq.zp
                )));
            }
        }
    }
    None
}
