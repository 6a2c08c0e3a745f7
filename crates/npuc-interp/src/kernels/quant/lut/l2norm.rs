//! L2_NORMALIZATION (`l2norm.cc`, `reference_integer_ops::L2Normalization`).

use npuc_ir::{Activation, DType};

use super::gemmlowp::{inv_sqrt_quantized_multiplier_exp, mbqm};
use super::{ensure, from_ints, input_q, output_q, unary, unsupported};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

/// int8 L2 normalization over the last dimension: the sum of squares of `q - zero_point`
/// gives an integer inverse square root that rescales each element straight to the fixed
/// output quantization (scale 1/128, zero point 0). The reference and optimized TFLite
/// kernels run the same code for int8.
pub(super) fn l2_normalization(cx: &KernelCtx<'_>, activation: Activation) -> Result<Vec<Tensor>, KernelError> {
    const OP: &str = "L2_NORMALIZATION";
    let (x, out, v) = unary(cx, OP)?;
    if x.dtype() != DType::I8 {
        return Err(unsupported(OP, x.dtype()));
    }
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    ensure(!x.shape.is_empty(), OP, || "the operand is a scalar".into())?;
    ensure(f64::from(oq.scale) == 1.0 / 128.0, OP, || format!("output scale {} is not 1/128", oq.scale))?;
    ensure(oq.zero_point == 0, OP, || format!("int8 output zero point {} is not 0", oq.zero_point))?;
    ensure(activation == Activation::None, OP, || format!("fused activation {} is not supported", activation.name()))?;

    let depth = *x.shape.last().unwrap();
    const OUTPUT_SCALE: i32 = 7;
    let mut values = vec![0i32; v.len()];
    if depth > 0 {
        for (row, out_row) in v.chunks(depth).zip(values.chunks_mut(depth)) {
            let acc = row.iter().fold(0i32, |acc, &q| {
                let d = q - iq.zero_point;
                acc.wrapping_add(d.wrapping_mul(d))
            });
            let (multiplier, shift) = inv_sqrt_quantized_multiplier_exp(acc, -1);
            for (o, &q) in out_row.iter_mut().zip(row) {
                *o = mbqm(q - iq.zero_point, multiplier, shift + OUTPUT_SCALE).clamp(-128, 127);
            }
        }
    }
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}
