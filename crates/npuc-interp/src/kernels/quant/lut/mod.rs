//! Integer kernels of the `lut` group: ops TFLite computes through lookup tables or
//! gemmlowp fixed-point transcendental functions.
//!
//! Each kernel reproduces what LiteRT's reference resolver (`BUILTIN_REF`) runs:
//! - LOGISTIC, TANH: int8/uint8 through a 256-entry table built in Prepare
//!   (`LUTPopulate` with `1/(1+expf(-x))` / `tanhf`; reference and generic-optimized
//!   kernels share it); int16 through `reference_integer_ops::Logistic/Tanh` (the
//!   interpolated `sigmoid_table_uint16`).
//! - HARD_SWISH: int8/uint8 `reference_ops::HardSwish` with `HardSwishParams`.
//! - SOFTMAX: int8/uint8 input with int8/uint8/int16 output through
//!   `reference_ops::Softmax` (gemmlowp `exp_on_negative_values` and `GetReciprocal`; the
//!   default resolver instead uses a float table, see the `softmax` module); int16
//!   through `SoftmaxInt16` with its two interpolated int16 tables.
//! - EXP: int8 and int16 tables (`exp.cc`; LiteRT 2.3 wants int16 zero points of 0).
//! - SQRT: int8/int16 dequantize, `sqrtf`, truncate (`elementwise.cc`).
//! - RSQRT: int8 through `GetInvSqrtQuantizedMultiplierExp`, int16 through a table.
//! - L2_NORMALIZATION: int8 `reference_integer_ops::L2Normalization`.
//! - RESIZE_BILINEAR: int8/int16 `reference_ops::ResizeBilinearInteger` (10-bit
//!   fixed-point source coordinates); uint8 the float `reference_ops::ResizeBilinear`.
//!
//! Checks TFLite makes in Prepare (fixed output scales, zero points) are errors here too,
//! so a graph LiteRT refuses is not silently given numbers.

mod activation;
mod elementwise;
pub(crate) mod gemmlowp;
mod l2norm;
mod resize;
mod softmax;
mod table;

pub use resize::bilinear_taps_q10;
pub use softmax::softmax_8bit_exp_table;

use npuc_ir::{DType, Op, TensorType};

use crate::error::KernelError;
use crate::kernels::{KernelCtx, Outcome};
use crate::tensor::{Data, Tensor};

/// Runs the op if this group handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    let r = match &cx.op.op {
        Op::Logistic => activation::logistic(cx),
        Op::Tanh => activation::tanh(cx),
        Op::HardSwish => activation::hard_swish(cx),
        Op::Softmax { beta } => softmax::softmax(cx, *beta),
        Op::Exp => elementwise::exp(cx),
        Op::Sqrt => elementwise::sqrt(cx),
        Op::Rsqrt => elementwise::rsqrt(cx),
        Op::L2Normalization { activation } => l2norm::l2_normalization(cx, *activation),
        Op::ResizeBilinear(attrs) => resize::resize_bilinear(cx, attrs),
        _ => return None,
    };
    Some(r)
}

/// Per-tensor affine quantization as TFLite's `params` has it (first scale/zero point).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct QParams {
    pub(super) scale: f32,
    pub(super) zero_point: i32,
}

/// The quantization of a tensor type; `what` names it in the error.
pub(super) fn qparams(ty: &TensorType, what: &str) -> Result<QParams, KernelError> {
    let q = ty
        .quant
        .as_ref()
        .filter(|q| !q.scale.is_empty())
        .ok_or_else(|| KernelError::new(format!("{what} ({}) is not quantized", ty.dtype)))?;
    let zp = q.zero_point.first().copied().unwrap_or(0);
    let zero_point =
        i32::try_from(zp).map_err(|_| KernelError::new(format!("{what}: zero point {zp} is out of range")))?;
    Ok(QParams { scale: q.scale[0], zero_point })
}

/// Quantization of operand `i`.
pub(super) fn input_q(cx: &KernelCtx<'_>, i: usize) -> Result<QParams, KernelError> {
    qparams(cx.input_type(i)?, &format!("operand {i}"))
}

/// Quantization of result `i`.
pub(super) fn output_q(cx: &KernelCtx<'_>, i: usize) -> Result<QParams, KernelError> {
    qparams(cx.output_type(i)?, &format!("result {i}"))
}

/// The range of an integer element type the kernels here handle.
pub(super) fn int_range(dtype: DType) -> Option<(i32, i32)> {
    Some(match dtype {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        DType::U16 => (0, 65535),
        _ => return None,
    })
}

/// The elements of an 8/16-bit integer tensor widened to i32.
pub(super) fn ints(t: &Tensor) -> Option<Vec<i32>> {
    Some(match &t.data {
        Data::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::I16(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::U16(v) => v.iter().map(|&x| i32::from(x)).collect(),
        _ => return None,
    })
}

/// A tensor of `dtype` from i32 values, narrowed as C++'s `static_cast` does (kernels
/// clamp first where TFLite clamps).
pub(super) fn from_ints(dtype: DType, shape: Vec<usize>, v: Vec<i32>) -> Result<Tensor, KernelError> {
    let data = match dtype {
        DType::I8 => Data::I8(v.into_iter().map(|x| x as i8).collect()),
        DType::U8 => Data::U8(v.into_iter().map(|x| x as u8).collect()),
        DType::I16 => Data::I16(v.into_iter().map(|x| x as i16).collect()),
        DType::U16 => Data::U16(v.into_iter().map(|x| x as u16).collect()),
        other => return Err(KernelError::new(format!("cannot produce {other} results"))),
    };
    Ok(Tensor { shape, data })
}

/// The single operand and result of an elementwise op, checked for the same dtype and
/// shape, with the operand's elements as i32.
pub(super) fn unary<'a>(
    cx: &'a KernelCtx<'_>,
    op: &str,
) -> Result<(&'a Tensor, &'a TensorType, Vec<i32>), KernelError> {
    let x = cx.input(0)?;
    let out = cx.output_type(0)?;
    if x.dtype() != out.dtype {
        return Err(KernelError::new(format!("{op}: operand is {} but the result is {}", x.dtype(), out.dtype)));
    }
    if x.shape != out.shape {
        return Err(KernelError::new(format!(
            "{op}: result shape {:?} differs from operand shape {:?}",
            out.shape, x.shape
        )));
    }
    let v = ints(x).ok_or_else(|| unsupported(op, x.dtype()))?;
    Ok((x, out, v))
}

/// The error for an element type a kernel does not support.
pub(super) fn unsupported(op: &str, dtype: DType) -> KernelError {
    KernelError::new(format!("{op}: no quantized kernel for {dtype} operands"))
}

/// TFLite's `TF_LITE_ENSURE` in Prepare: an error naming the failed condition.
pub(super) fn ensure(cond: bool, op: &str, what: impl FnOnce() -> String) -> Result<(), KernelError> {
    if cond {
        Ok(())
    } else {
        Err(KernelError::new(format!("{op}: {} (TFLite refuses this in Prepare)", what())))
    }
}
