//! SOFTMAX over the last dimension (`activations.cc` `SoftmaxPrepare`/`SoftmaxEval` with
//! `kReference`, `reference_ops::Softmax` and `SoftmaxInt16` in reference/softmax.h).
//!
//! int8/uint8 inputs: the reference kernel scales `q - max` by `beta · input_scale` into
//! Q5.26, takes gemmlowp's `exp_on_negative_values`, sums in Q12.19 and multiplies by the
//! fixed-point reciprocal of the sum. LiteRT's default resolver (`kGenericOptimized`)
//! computes 8-bit softmax differently (a float `exp` table, `PopulateSoftmaxLookupTable`):
//! measured on LiteRT 2.3 it agrees with the reference for 8-bit outputs but differs by one
//! unit now and then for int16 outputs. int16 input: both resolvers run `SoftmaxInt16`.

use npuc_ir::DType;

use super::gemmlowp::{
    calculate_input_radius, exp_on_negative_values, get_reciprocal, mbqm, mbqm_greater_than_one, mul,
    preprocess_softmax_scaling, quantize_multiplier, rdbp, rescale,
};
use super::table::{lookup16, lut16_f64};
use super::{ensure, from_ints, input_q, int_range, ints, output_q, unsupported, QParams};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::Tensor;

const OP: &str = "SOFTMAX";

/// SOFTMAX with inverse temperature `beta`.
pub(super) fn softmax(cx: &KernelCtx<'_>, beta: f32) -> Result<Vec<Tensor>, KernelError> {
    let x = cx.input(0)?;
    let out = cx.output_type(0)?;
    if x.shape != out.shape {
        return Err(KernelError::new(format!(
            "{OP}: result shape {:?} differs from operand shape {:?}",
            out.shape, x.shape
        )));
    }
    let (iq, oq) = (input_q(cx, 0)?, output_q(cx, 0)?);
    ensure(!x.shape.is_empty(), OP, || "the operand is a scalar".into())?;
    let near = |a: f32, b: f32, eps: f32| (if a > b { a - b } else { b - a }) <= eps;
    match (x.dtype(), out.dtype) {
        (DType::I8, DType::I8) => {
            ensure(oq.zero_point == -128, OP, || format!("int8 output zero point {} is not -128", oq.zero_point))?;
            ensure(near(oq.scale, 1.0 / 256.0, 0.001 * 1.0 / 256.0), OP, || {
                format!("int8 output scale {} is not 1/256", oq.scale)
            })?;
        }
        (DType::I16, DType::I16) => {
            ensure(oq.zero_point == 0, OP, || format!("int16 output zero point {} is not 0", oq.zero_point))?;
            ensure(near(oq.scale, 1.0 / 32768.0, 0.001 * 1.0 / 32768.0), OP, || {
                format!("int16 output scale {} is not 1/32768", oq.scale)
            })?;
        }
        _ => {}
    }
    let v = ints(x).ok_or_else(|| unsupported(OP, x.dtype()))?;
    let depth = *x.shape.last().unwrap();
    let values = match (x.dtype(), out.dtype) {
        (DType::I8, DType::I8 | DType::I16) | (DType::U8, DType::U8 | DType::I16) => {
            softmax_8bit(&v, depth, int_range(x.dtype()).unwrap().0, int_range(out.dtype).unwrap(), iq, beta)?
        }
        (DType::I16, DType::I16) => {
            ensure(iq.zero_point == 0, OP, || format!("int16 input zero point {} is not 0", iq.zero_point))?;
            ensure(x.shape.len() <= 4, OP, || {
                format!("int16 softmax supports 1-D to 4-D tensors, got {}-D", x.shape.len())
            })?;
            softmax_i16(&v, depth, iq, beta)
        }
        (i, o) => return Err(KernelError::new(format!("{OP}: no quantized kernel for {i} operands with {o} results"))),
    };
    Ok(vec![from_ints(out.dtype, out.shape.clone(), values)?])
}

/// The per-element exponentials of 8-bit SOFTMAX as a table: entry `d + 255` is
/// `exp_on_negative_values` of the scaled difference `d = x - max` (Q0.31), 0 where `d` is
/// below the kernel's `diff_min`, for back ends that must run the kernel's arithmetic.
pub fn softmax_8bit_exp_table(input_scale: f32, beta: f32) -> Vec<i32> {
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    let (multiplier, left_shift) =
        preprocess_softmax_scaling(f64::from(beta), f64::from(input_scale), SCALED_DIFF_INTEGER_BITS);
    let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift, 31);
    (-255..=0)
        .map(|diff| {
            if diff >= diff_min {
                exp_on_negative_values(mbqm_greater_than_one(diff, multiplier, left_shift), SCALED_DIFF_INTEGER_BITS)
            } else {
                0
            }
        })
        .collect()
}

/// `reference_ops::Softmax<InputT, OutputT>` with the kReference Prepare parameters.
fn softmax_8bit(
    v: &[i32],
    depth: usize,
    input_min: i32,
    (out_min, out_max): (i32, i32),
    iq: QParams,
    beta: f32,
) -> Result<Vec<i32>, KernelError> {
    const SCALED_DIFF_INTEGER_BITS: i32 = 5;
    const ACCUMULATION_INTEGER_BITS: i32 = 12;
    let (multiplier, left_shift) =
        preprocess_softmax_scaling(f64::from(beta), f64::from(iq.scale), SCALED_DIFF_INTEGER_BITS);
    let diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift, 31);
    let out_bits = if out_max > 255 { 16 } else { 8 };
    let mut values = vec![0i32; v.len()];
    if depth == 0 {
        return Ok(values);
    }
    let scaled = |diff: i32| mbqm_greater_than_one(diff, multiplier, left_shift);
    for (row, out_row) in v.chunks(depth).zip(values.chunks_mut(depth)) {
        let max_in_row = row.iter().copied().fold(input_min, i32::max);
        let mut sum_of_exps = 0i32;
        for &q in row {
            let diff = q - max_in_row;
            if diff >= diff_min {
                let e = exp_on_negative_values(scaled(diff), SCALED_DIFF_INTEGER_BITS);
                sum_of_exps = sum_of_exps.wrapping_add(rescale(e, 0, ACCUMULATION_INTEGER_BITS));
            }
        }
        let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        let exponent = num_bits_over_unit + 31 - out_bits;
        if !(0..=31).contains(&exponent) {
            return Err(KernelError::new(format!(
                "{OP}: reciprocal exponent {exponent} is outside [0, 31] (TFLite aborts)"
            )));
        }
        for (o, &q) in out_row.iter_mut().zip(row) {
            let diff = q - max_in_row;
            *o = if diff >= diff_min {
                let e = exp_on_negative_values(scaled(diff), SCALED_DIFF_INTEGER_BITS);
                let unsat = rdbp(mul(shifted_scale, e), exponent);
                unsat.wrapping_add(out_min).min(out_max).max(out_min)
            } else {
                out_min
            };
        }
    }
    Ok(values)
}

/// `SoftmaxInt16` with the tables and multiplier of the int16 Prepare.
fn softmax_i16(v: &[i32], depth: usize, iq: QParams, beta: f32) -> Vec<i32> {
    const RANGE: i32 = 65535;
    let exp_lut = lut16_f64(10.0 / f64::from(RANGE), 32767, 2.0 / f64::from(RANGE), 0, f64::exp);
    let one_over_one_plus_x_lut =
        lut16_f64(1.0 / f64::from(RANGE), -32768, 2.0 / f64::from(RANGE), 0, |x| 1.0 / (1.0 + x));
    let (multiplier, shift) = quantize_multiplier(f64::from(iq.scale * beta) / (10.0 / 65535.0));
    let mut values = vec![0i32; v.len()];
    if depth == 0 {
        return values;
    }
    for (row, out_row) in v.chunks(depth).zip(values.chunks_mut(depth)) {
        let max_in_row = row.iter().copied().fold(-32768, i32::max);
        let mut sum_of_exps = 0i32;
        for (o, &q) in out_row.iter_mut().zip(row) {
            let scaled_diff = mbqm(q - max_in_row, multiplier, shift);
            let sym = scaled_diff.wrapping_add(32767).clamp(-32768, 32767) as i16;
            let e = i32::from(lookup16(sym, &exp_lut));
            *o = e;
            sum_of_exps = sum_of_exps.wrapping_add(e);
        }
        let headroom_plus_one = (sum_of_exps as u32).leading_zeros() as i32;
        let shifted_sum = (((i64::from(sum_of_exps) << (headroom_plus_one - 1).clamp(0, 63)) + (1 << 13)) >> 14) as i32;
        let sym_shifted_sum = shifted_sum.wrapping_add(-((1 << 15) + (1 << 16)));
        let sat = sym_shifted_sum.clamp(-32768, 32767) as i16;
        let reciprocal = i64::from(lookup16(sat, &one_over_one_plus_x_lut));
        let right_shift = (31 - headroom_plus_one).clamp(1, 63);
        let round = 1i64 << (right_shift - 1);
        for o in out_row.iter_mut() {
            let result = ((i64::from(*o) * reciprocal + round) >> right_shift) as i32;
            *o = result.clamp(0, 32767);
        }
    }
    values
}
