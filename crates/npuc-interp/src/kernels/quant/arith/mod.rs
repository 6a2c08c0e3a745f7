//! Integer kernels of the `arith` group: convolutions, fully connected, pooling,
//! reductions, elementwise arithmetic, (de)quantization and the activations TFLite
//! computes without tables.
//!
//! Every kernel reproduces LiteRT's reference kernels (`BUILTIN_REF`) bit for bit: the
//! multipliers are derived from the scales with the same float/double arithmetic TFLite's
//! `Prepare` uses (a `float * float` product stays a float before it is widened, where
//! TFLite writes it that way), and the integer paths use the primitives of
//! [`super::fixed_point`]. Where TFLite refuses an operand combination, so do we, with
//! the reason. Sources (facts, not code): `tensorflow/lite/kernels/*.cc` (Prepare) and
//! `tensorflow/lite/kernels/internal/reference/**` (kernels). Where LiteRT versions
//! differ, the oracle (`tests/quant_arith_oracle.rs`, LiteRT 2.3) decided: e.g. its
//! reference FULLY_CONNECTED rescales in double while CONV_2D uses fixed point.
//! Exceptions to "bit for bit with BUILTIN_REF": quantized SUM, whose reference kernel in
//! LiteRT 2.3 writes garbage, follows LiteRT's builtin (optimized) kernel instead; and
//! undefined C++ behaviour that LiteRT's results expose (out-of-range shifts in DIV,
//! float-to-int conversion of NaN/overflow) is reproduced as x86 executes it.
//!
//! Submodules: `conv` (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED),
//! `pool` (AVERAGE/MAX_POOL_2D, MEAN, SUM), `binary` (ADD, SUB, MUL, DIV, MAXIMUM,
//! MINIMUM, SQUARED_DIFFERENCE), `unary` (RELU family, LEAKY_RELU, PRELU, QUANTIZE,
//! DEQUANTIZE), `concat` (CONCATENATION with differing quantization and the quantization
//! checks of pure data-movement ops).

mod binary;
mod concat;
mod conv;
mod pool;
mod unary;

use npuc_ir::{Activation, DType, Op, TensorType};

use crate::error::KernelError;
use crate::kernels::{KernelCtx, Outcome};
use crate::tensor::{Data, Tensor};

/// Runs the op if this group handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    match &cx.op.op {
        Op::Conv2d(a) => Some(conv::conv2d(cx, a)),
        Op::DepthwiseConv2d(a) => Some(conv::depthwise_conv2d(cx, a)),
        Op::TransposeConv(a) => Some(conv::transpose_conv(cx, a)),
        Op::FullyConnected(a) => Some(conv::fully_connected(cx, a)),
        Op::AveragePool2d(a) => Some(pool::average_pool(cx, a)),
        Op::MaxPool2d(a) => Some(pool::max_pool(cx, a)),
        Op::Mean { .. } => Some(pool::mean_or_sum(cx, false)),
        Op::Sum { .. } => Some(pool::mean_or_sum(cx, true)),
        Op::Add { activation, pot_scale_int16 } => Some(binary::add_sub(cx, *activation, *pot_scale_int16, false)),
        Op::Sub { activation, pot_scale_int16 } => Some(binary::add_sub(cx, *activation, *pot_scale_int16, true)),
        Op::Mul { activation } => Some(binary::mul(cx, *activation)),
        Op::Div { activation } => Some(binary::div(cx, *activation)),
        Op::Maximum => Some(binary::max_min(cx, true)),
        Op::Minimum => Some(binary::max_min(cx, false)),
        Op::SquaredDifference => Some(binary::squared_difference(cx)),
        Op::Relu => Some(unary::relu_x(cx, 0.0, f32::INFINITY)),
        Op::Relu6 => Some(unary::relu_x(cx, 0.0, 6.0)),
        Op::ReluN1To1 => Some(unary::relu_x(cx, -1.0, 1.0)),
        Op::LeakyRelu { alpha } => Some(unary::leaky_relu(cx, *alpha)),
        Op::Prelu => Some(unary::prelu(cx)),
        Op::Quantize => Some(unary::quantize(cx)),
        Op::Dequantize => Some(unary::dequantize(cx)),
        Op::Concatenation { axis, activation } => Some(concat::concatenation(cx, *axis, *activation)),
        _ => concat::movement_quant_mismatch(cx),
    }
}

/// Per-tensor quantization as TFLite's kernels read it (`TfLiteTensor::params`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Q {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zp: i32,
}

/// The per-tensor quantization of `ty` (the first scale and zero point of a per-channel
/// type, as TFLite's legacy `params` would not help there either).
pub(super) fn q_of(ty: &TensorType, what: &str) -> Result<Q, KernelError> {
    let q = ty
        .quant
        .as_ref()
        .filter(|q| !q.scale.is_empty())
        .ok_or_else(|| KernelError::new(format!("{what} ({} {:?}) has no quantization", ty.dtype, ty.shape)))?;
    let zp = q.zero_point.first().copied().unwrap_or(0);
    let zp = i32::try_from(zp).map_err(|_| KernelError::new(format!("{what}: zero point {zp} out of range")))?;
    Ok(Q { scale: q.scale[0], zp })
}

/// The quantization of operand `i`.
pub(super) fn in_q(cx: &KernelCtx<'_>, i: usize) -> Result<Q, KernelError> {
    q_of(cx.input_type(i)?, &format!("operand {i}"))
}

/// The quantization of result 0.
pub(super) fn out_q(cx: &KernelCtx<'_>) -> Result<Q, KernelError> {
    q_of(cx.output_type(0)?, "result 0")
}

/// Scales of a (possibly per-channel) quantized type.
pub(super) fn scales(ty: &TensorType) -> &[f32] {
    ty.quant.as_ref().map_or(&[][..], |q| &q.scale[..])
}

/// Value range of an integer storage type.
pub(super) fn int_range(d: DType) -> Result<(i32, i32), KernelError> {
    Ok(match d {
        DType::I8 => (-128, 127),
        DType::U8 => (0, 255),
        DType::I16 => (-32768, 32767),
        DType::U16 => (0, 65535),
        DType::I32 => (i32::MIN, i32::MAX),
        _ => return Err(KernelError::new(format!("{d} is not a quantized integer type"))),
    })
}

/// Checks that a zero point lies in the range of its storage type (TFLite's Prepare checks
/// this for the elementwise kernels; elsewhere it holds for every valid model).
pub(super) fn check_zp(q: Q, d: DType, what: &str) -> Result<(), KernelError> {
    let (lo, hi) = int_range(d)?;
    if q.zp < lo || q.zp > hi {
        return Err(KernelError::new(format!("{what}: zero point {} outside the {d} range", q.zp)));
    }
    Ok(())
}

/// The elements of an integer tensor widened to i32.
pub(super) fn ints(t: &Tensor) -> Result<Vec<i32>, KernelError> {
    Ok(match &t.data {
        Data::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::I16(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::U16(v) => v.iter().map(|&x| i32::from(x)).collect(),
        Data::I32(v) => v.clone(),
        d => return Err(KernelError::new(format!("expected quantized integer elements, got {}", d.dtype()))),
    })
}

/// Narrows i32 values (already clamped to the type's range) into storage of `d`.
pub(super) fn from_ints(d: DType, v: Vec<i32>) -> Result<Data, KernelError> {
    Ok(match d {
        DType::I8 => Data::I8(v.into_iter().map(|x| x as i8).collect()),
        DType::U8 => Data::U8(v.into_iter().map(|x| x as u8).collect()),
        DType::I16 => Data::I16(v.into_iter().map(|x| x as i16).collect()),
        DType::U16 => Data::U16(v.into_iter().map(|x| x as u16).collect()),
        DType::I32 => Data::I32(v),
        _ => return Err(KernelError::new(format!("{d} is not a quantized integer type"))),
    })
}

/// A result tensor of the declared type of result 0.
pub(super) fn out_tensor(cx: &KernelCtx<'_>, data: Data) -> Result<Vec<Tensor>, KernelError> {
    let ty = cx.output_type(0)?;
    Ok(vec![Tensor { shape: ty.shape.clone(), data }])
}

/// `CalculateActivationRangeQuantized`: the clamp range of a fused activation on an
/// integer output, quantizing 0, 6, -1 and 1 with the output's float scale
/// (`zero_point + round(f / scale)` in float, rounding half away from zero).
pub(super) fn act_range(act: Activation, out: &TensorType) -> Result<(i32, i32), KernelError> {
    let (qmin, qmax) = int_range(out.dtype)?;
    let q = q_of(out, "result 0")?;
    let quantize = |f: f32| -> Result<i32, KernelError> {
        let t = (f / q.scale).round();
        if !(t >= i32::MIN as f32 && t <= i32::MAX as f32) {
            return Err(KernelError::new(format!("activation bound {f} does not quantize with scale {}", q.scale)));
        }
        Ok(q.zp.wrapping_add(t as i32))
    };
    Ok(match act {
        Activation::Relu => (qmin.max(quantize(0.0)?), qmax),
        Activation::Relu6 => (qmin.max(quantize(0.0)?), qmax.min(quantize(6.0)?)),
        Activation::ReluN1To1 => (qmin.max(quantize(-1.0)?), qmax.min(quantize(1.0)?)),
        Activation::None | Activation::Tanh | Activation::SignBit => (qmin, qmax),
    })
}

/// `static_cast<int32_t>(x)` of a float as x86 computes it (`cvttss2si`): truncation, and
/// the "integer indefinite" `i32::MIN` for NaN and out-of-range values (Rust's `as`
/// saturates instead).
pub(super) fn f32_to_i32_x86(x: f32) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// `static_cast<int32_t>(x)` of a double as x86 computes it (`cvttsd2si`).
pub(super) fn f64_to_i32_x86(x: f64) -> i32 {
    if !(x > -2_147_483_649.0 && x < 2_147_483_648.0) {
        i32::MIN
    } else {
        x as i32
    }
}

/// Shapes broadcast against each other with numpy rules (TFLite's
/// `CalculateShapeForBroadcast`), checked against the declared result shape.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize], out: &[usize]) -> Result<(), KernelError> {
    let rank = a.len().max(b.len());
    let mut shape = vec![0usize; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        if da != db && da != 1 && db != 1 {
            return Err(KernelError::new(format!("shapes {a:?} and {b:?} do not broadcast")));
        }
        shape[i] = if da == 0 || db == 0 { 0 } else { da.max(db) };
    }
    if shape != out {
        return Err(KernelError::new(format!(
            "shapes {a:?} and {b:?} broadcast to {shape:?}, but the result is declared {out:?}"
        )));
    }
    Ok(())
}

/// Applies `f` to every pair of elements of `a` and `b` broadcast to `out` (row-major).
/// The pairing, not the evaluation order, is what matters: every kernel using this is a
/// pure function of its two elements.
pub(super) fn broadcast_map<A: Copy, B: Copy, R>(
    a: &[A],
    a_shape: &[usize],
    b: &[B],
    b_shape: &[usize],
    out: &[usize],
    mut f: impl FnMut(A, B) -> R,
) -> Vec<R> {
    let n: usize = out.iter().product();
    if a_shape == b_shape {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    if a.len() == 1 && b.len() == n {
        let x = a[0];
        return b.iter().map(|&y| f(x, y)).collect();
    }
    if b.len() == 1 && a.len() == n {
        let y = b[0];
        return a.iter().map(|&x| f(x, y)).collect();
    }
    let rank = out.len();
    let strides = |shape: &[usize]| -> Vec<usize> {
        // Row-major strides of `shape` aligned to the output rank, 0 where broadcast.
        let mut s = vec![0usize; rank];
        let mut acc = 1usize;
        for i in (0..shape.len()).rev() {
            let o = rank - shape.len() + i;
            s[o] = if shape[i] == 1 { 0 } else { acc };
            acc *= shape[i];
        }
        s
    };
    let (sa, sb) = (strides(a_shape), strides(b_shape));
    let mut r = Vec::with_capacity(n);
    if n == 0 {
        return r;
    }
    let inner = out[rank - 1];
    let (ia_step, ib_step) = (sa[rank - 1], sb[rank - 1]);
    let mut idx = vec![0usize; rank];
    let (mut oa, mut ob) = (0usize, 0usize);
    loop {
        let (mut pa, mut pb) = (oa, ob);
        for _ in 0..inner {
            r.push(f(a[pa], b[pb]));
            pa += ia_step;
            pb += ib_step;
        }
        // Advance the odometer over the outer dimensions.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return r;
            }
            d -= 1;
            idx[d] += 1;
            oa += sa[d];
            ob += sb[d];
            if idx[d] < out[d] {
                break;
            }
            oa -= sa[d] * idx[d];
            ob -= sb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

/// An integer constant operand (axes, shapes) as i64 values.
pub(super) fn int_operand(cx: &KernelCtx<'_>, i: usize) -> Result<Vec<i64>, KernelError> {
    cx.input(i)?.to_i64_vec().ok_or_else(|| KernelError::new(format!("operand {i} must be an integer tensor")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_pairs_follow_numpy() {
        let a: Vec<i32> = (0..6).collect(); // [2,3]
        let b = vec![10, 20, 30]; // [3]
        let r = broadcast_map(&a, &[2, 3], &b, &[3], &[2, 3], |x, y| x + y);
        assert_eq!(r, vec![10, 21, 32, 13, 24, 35]);
        let c = vec![100, 200]; // [2,1]
        let r = broadcast_map(&a, &[2, 3], &c, &[2, 1], &[2, 3], |x, y| x + y);
        assert_eq!(r, vec![100, 101, 102, 203, 204, 205]);
        let r = broadcast_map(&c, &[2, 1], &b, &[1, 3], &[2, 3], |x, y| x + y);
        assert_eq!(r, vec![110, 120, 130, 210, 220, 230]);
    }

    #[test]
    fn x86_conversion_of_out_of_range_floats() {
        assert_eq!(f32_to_i32_x86(f32::NAN), i32::MIN);
        assert_eq!(f32_to_i32_x86(3e9), i32::MIN);
        assert_eq!(f32_to_i32_x86(-2.7), -2);
        assert_eq!(f64_to_i32_x86(-2_147_483_648.5), -2_147_483_648);
    }
}
