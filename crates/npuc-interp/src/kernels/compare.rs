//! Comparisons (GREATER, GREATER_EQUAL, LESS, LESS_EQUAL, EQUAL, NOT_EQUAL) and REDUCE_PROD:
//! the ops control flow leans on (loop counters, shape arithmetic).
//!
//! Comparisons follow tensorflow/lite/kernels/comparisons.cc: NumPy broadcasting and a
//! bool result. Float and unquantized integer operands compare directly. Quantized int8 and
//! uint8 operands are first brought to a common scale the way the reference kernel's
//! `ComparisonWithScaling` does: `(q - zero_point) << 8`, then each side multiplied by its
//! own scale encoded as a quantized multiplier (`QuantizeMultiplierSmallerThanOneExp`),
//! so operands with different parameters compare by real value.
//!
//! REDUCE_PROD follows reference_ops::ReduceGeneric with initial value 1, visiting the
//! input in row-major order (f32, i32 and i64; integer products wrap, as the C++ `*` does
//! on the hardware). TFLite's quantized int8 product kernel is not modelled.

use npuc_ir::{DType, Op};

use super::quant::fixed_point::{multiply_by_quantized_multiplier_smaller_than_one_exp, quantize_multiplier};
use super::{KernelCtx, Outcome};
use crate::error::KernelError;
use crate::tensor::{Data, Tensor};

type KResult = Result<Vec<Tensor>, KernelError>;

/// Runs the op if this group handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    match &cx.op.op {
        op if op.is_comparison() => Some(compare(cx, op)),
        Op::ReduceProd { .. } => reduce_prod(cx),
        _ => None,
    }
}

/// Row-major strides of `shape` for an operand broadcast to `out` (0 where it repeats).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0usize; out.len()];
    let offset = out.len() - shape.len();
    let mut s = 1;
    for d in (0..shape.len()).rev() {
        if shape[d] != 1 {
            strides[offset + d] = s;
        }
        s *= shape[d];
    }
    strides
}

/// `f(a[i], b[j])` over the broadcast of `a` and `b` to `out`.
fn broadcast<T: Copy>(
    a: &[T],
    ash: &[usize],
    b: &[T],
    bsh: &[usize],
    out: &[usize],
    f: impl Fn(T, T) -> bool,
) -> Vec<bool> {
    let (sa, sb) = (broadcast_strides(ash, out), broadcast_strides(bsh, out));
    let n: usize = out.iter().product();
    let mut idx = vec![0usize; out.len()];
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut res = Vec::with_capacity(n);
    for _ in 0..n {
        res.push(f(a[ia], b[ib]));
        let mut d = out.len();
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < out[d] {
                break;
            }
            ia -= sa[d] * out[d];
            ib -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
    res
}

/// The predicate of a comparison op on any ordered type.
fn predicate<T: PartialOrd>(op: &Op) -> fn(T, T) -> bool {
    match op {
        Op::Greater => |p, q| p > q,
        Op::GreaterEqual => |p, q| p >= q,
        Op::Less => |p, q| p < q,
        Op::LessEqual => |p, q| p <= q,
        Op::Equal => |p, q| p == q,
        _ => |p, q| p != q,
    }
}

/// Scale and zero point of operand `i` if it is a quantized tensor (per-tensor).
fn quant_params(cx: &KernelCtx<'_>, i: usize) -> Result<Option<(f32, i64)>, KernelError> {
    let ty = cx.input_type(i)?;
    match &ty.quant {
        Some(q) if !q.scale.is_empty() => {
            if q.scale.len() != 1 {
                return Err(KernelError::new(format!("operand {i} is quantized per channel")));
            }
            Ok(Some((q.scale[0], q.zero_point[0])))
        }
        _ => Ok(None),
    }
}

fn compare(cx: &KernelCtx<'_>, op: &Op) -> KResult {
    let (a, b) = (cx.input(0)?, cx.input(1)?);
    let out = npuc_ir::shape::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| KernelError::new(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
    let (ash, bsh) = (&a.shape[..], &b.shape[..]);
    let quantized = match (quant_params(cx, 0)?, quant_params(cx, 1)?) {
        (Some(pa), Some(pb)) if matches!(a.dtype(), DType::I8 | DType::U8) => Some((pa, pb)),
        _ => None,
    };
    let res = if let Some(((sa, za), (sb, zb))) = quantized {
        // comparisons.cc, ComparisonQuantized: left_shift 8, one multiplier per side.
        let (ma, mb) = (quantize_multiplier(f64::from(sa)), quantize_multiplier(f64::from(sb)));
        let scaled = |v: i32, z: i64, m: &super::quant::fixed_point::QuantizedMultiplier| {
            let shifted = (v - z as i32).wrapping_mul(1 << 8);
            multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m.multiplier, m.shift)
        };
        let widen = |t: &Tensor| -> Vec<i32> {
            match &t.data {
                Data::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                Data::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
                _ => Vec::new(),
            }
        };
        let xa: Vec<i32> = widen(a).into_iter().map(|v| scaled(v, za, &ma)).collect();
        let xb: Vec<i32> = widen(b).into_iter().map(|v| scaled(v, zb, &mb)).collect();
        broadcast(&xa, ash, &xb, bsh, &out, predicate(op))
    } else {
        match (&a.data, &b.data) {
            (Data::F32(x), Data::F32(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::F16(x), Data::F16(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::I8(x), Data::I8(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::U8(x), Data::U8(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::I16(x), Data::I16(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::I32(x), Data::I32(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::I64(x), Data::I64(y)) => broadcast(x, ash, y, bsh, &out, predicate(op)),
            (Data::Bool(x), Data::Bool(y)) if matches!(op, Op::Equal | Op::NotEqual) => {
                broadcast(x, ash, y, bsh, &out, predicate(op))
            }
            _ => return Err(KernelError::new(format!("cannot compare {} with {}", a.dtype(), b.dtype()))),
        }
    };
    Ok(vec![Tensor { shape: out, data: Data::Bool(res) }])
}

/// The reduced flags and output shape of a reduction over `axes` of a tensor of `shape`.
fn reduced_shape(shape: &[usize], axes: &[i64], keep_dims: bool) -> Result<(Vec<bool>, Vec<usize>), KernelError> {
    let rank = shape.len();
    let mut reduced = vec![false; rank];
    for &a in axes {
        let r = rank as i64;
        let ax = if a < 0 { a + r } else { a };
        if rank > 0 && (ax < 0 || ax >= r) {
            return Err(KernelError::new(format!("axis {a} is out of range for rank {rank}")));
        }
        if rank > 0 {
            reduced[ax as usize] = true;
        }
    }
    let out = npuc_ir::shape::reduced_dims(shape, &reduced, keep_dims);
    Ok((reduced, out))
}

/// Products of `x` over the reduced dimensions, one per output element in row-major order.
fn product<T: Copy>(x: &[T], shape: &[usize], reduced: &[bool], one: T, mul: impl Fn(T, T) -> T) -> Vec<T> {
    let rank = shape.len();
    let mut ostride = vec![0usize; rank];
    let mut s = 1;
    for d in (0..rank).rev() {
        if !reduced[d] {
            ostride[d] = s;
            s *= shape[d];
        }
    }
    let mut acc = vec![one; s];
    let mut idx = vec![0usize; rank];
    let mut base = 0usize;
    for &v in x {
        acc[base] = mul(acc[base], v);
        let mut d = rank;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            base += ostride[d];
            if idx[d] < shape[d] {
                break;
            }
            base -= ostride[d] * shape[d];
            idx[d] = 0;
        }
    }
    acc
}

fn reduce_prod(cx: &KernelCtx<'_>) -> Outcome {
    let Op::ReduceProd { keep_dims } = cx.op.op else { return None };
    let x = cx.opt_input(0)?;
    if cx.is_quantized() {
        return None;
    }
    Some((|| {
        let axes_t = cx.input(1)?;
        let axes =
            axes_t.to_i64_vec().ok_or_else(|| KernelError::new(format!("axes have dtype {}", axes_t.dtype())))?;
        let (reduced, shape) = reduced_shape(&x.shape, &axes, keep_dims)?;
        let data = match &x.data {
            Data::F32(v) => Data::F32(product(v, &x.shape, &reduced, 1.0, |a, b| a * b)),
            Data::I32(v) => Data::I32(product(v, &x.shape, &reduced, 1, i32::wrapping_mul)),
            Data::I64(v) => Data::I64(product(v, &x.shape, &reduced, 1, i64::wrapping_mul)),
            _ => return Err(KernelError::new(format!("no product kernel for {}", x.dtype()))),
        };
        Ok(vec![Tensor { shape, data }])
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_compares_every_pair() {
        let r = broadcast(&[1, 5], &[2, 1], &[0, 3, 6], &[3], &[2, 3], |p, q| p > q);
        assert_eq!(r, [true, false, false, true, true, false]);
    }

    #[test]
    fn product_over_middle_axis_and_all_axes() {
        let x: Vec<i32> = (1..=12).collect();
        let (red, shape) = reduced_shape(&[2, 3, 2], &[1], false).unwrap();
        assert_eq!(shape, [2, 2]);
        assert_eq!(product(&x, &[2, 3, 2], &red, 1, i32::wrapping_mul), [3 * 5, 2 * 4 * 6, 7 * 9 * 11, 8 * 10 * 12]);
        let (red, shape) = reduced_shape(&[2, 3, 2], &[0, -1, 1], true).unwrap();
        assert_eq!(shape, [1, 1, 1]);
        assert_eq!(product(&x, &[2, 3, 2], &red, 1, i32::wrapping_mul), [479001600]);
        let (_, shape) = reduced_shape(&[], &[0], false).unwrap();
        assert!(shape.is_empty());
    }

    #[test]
    fn quantized_operands_compare_by_real_value() {
        use crate::kernels::movement::testutil::{i8s, OpTest};
        use npuc_ir::{Quantization, TensorType};
        // Reals 1, 2, 3 against 1.5, 1.5, 3.5: the raw integers (10 > 6) would say otherwise.
        let run = |op: Op| {
            OpTest::new()
                .input_q(i8s(&[3], &[10, 20, 30]), Some(Quantization::per_tensor(0.1, 0)))
                .input_q(i8s(&[3], &[6, 6, 14]), Some(Quantization::per_tensor(0.25, 0)))
                .run_with(op, vec![TensorType::new(DType::Bool, vec![3])])
                .unwrap()
                .remove(0)
                .data
        };
        assert_eq!(run(Op::Greater), Data::Bool(vec![false, true, false]));
        assert_eq!(run(Op::LessEqual), Data::Bool(vec![true, false, true]));
    }
}
