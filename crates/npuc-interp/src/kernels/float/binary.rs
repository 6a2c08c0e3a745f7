//! Broadcasting elementwise binary ops (ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM,
//! SQUARED_DIFFERENCE) and PRELU.
//!
//! Broadcasting follows NumPy: shapes are aligned at the end, a missing or size-1 dimension
//! repeats. The engine collapses runs of dimensions that broadcast alike, so the inner loop
//! is always a contiguous run in which each operand either advances or repeats one value.

use npuc_ir::{Activation, Op};

use super::{input_f32, single_output, Clamp, KResult, KernelCtx, Outcome};
use crate::error::KernelError;
use crate::tensor::{Data, Tensor};

/// The integer version: wrapping arithmetic (C++ signed overflow is undefined, wrapping is
/// what the hardware does), truncating division that rejects a zero divisor, and the fused
/// activation as an integer clamp (`CalculateActivationRange<int>`).
macro_rules! int_binary {
    ($cx:expr, $op:expr, $act:expr, $a:expr, $x:expr, $b:expr, $y:expr, $t:ty, $variant:ident) => {{
        (|| -> KResult {
            let ty = $cx.output_type(0)?;
            if ty.dtype != npuc_ir::DType::$variant {
                return Err(KernelError::new(format!("result has dtype {}, operands {}", ty.dtype, $a.dtype())));
            }
            let (lo, hi): ($t, $t) = match $act {
                Activation::Relu => (0, <$t>::MAX),
                Activation::Relu6 => (0, 6),
                Activation::ReluN1To1 => (-1, 1),
                _ => (<$t>::MIN, <$t>::MAX),
            };
            let cl = move |v: $t| v.clamp(lo, hi);
            let (ash, bsh, osh) = (&$a.shape[..], &$b.shape[..], &ty.shape[..]);
            let out = match $op {
                Op::Add { .. } => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| cl(p.wrapping_add(q))),
                Op::Sub { .. } => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| cl(p.wrapping_sub(q))),
                Op::Mul { .. } => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| cl(p.wrapping_mul(q))),
                Op::Div { .. } => {
                    if $y.contains(&0) {
                        return Err(KernelError::new("integer division by zero"));
                    }
                    broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| cl(p.wrapping_div(q)))
                }
                Op::Maximum => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| p.max(q)),
                Op::Minimum => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| p.min(q)),
                Op::SquaredDifference => broadcast_map($x, ash, $y, bsh, osh, |p: $t, q: $t| {
                    p.wrapping_sub(q).wrapping_mul(p.wrapping_sub(q))
                }),
                other => return Err(KernelError::new(format!("{} is not a binary op", other.mnemonic()))),
            }?;
            Ok(vec![Tensor { shape: ty.shape.clone(), data: Data::$variant(out) }])
        })()
    }};
}

/// Runs a broadcasting binary op on f32, i32 or i64 operands (`None` for other dtypes).
pub(super) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    let (Some(a), Some(b)) = (cx.opt_input(0), cx.opt_input(1)) else {
        return Some(Err(KernelError::new("a binary op needs two operands")));
    };
    let op = &cx.op.op;
    let activation = op.fused_activation().unwrap_or_default();
    Some(match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => float_binary(cx, op, activation, a, x, b, y),
        (Data::I32(x), Data::I32(y)) => int_binary!(cx, op, activation, a, x, b, y, i32, I32),
        (Data::I64(x), Data::I64(y)) => int_binary!(cx, op, activation, a, x, b, y, i64, I64),
        _ => return None,
    })
}

fn float_binary(cx: &KernelCtx<'_>, op: &Op, act: Activation, a: &Tensor, x: &[f32], b: &Tensor, y: &[f32]) -> KResult {
    let out_shape = super::output_shape(cx)?;
    let c = Clamp::new(act);
    let (ash, bsh) = (&a.shape[..], &b.shape[..]);
    let out = match op {
        Op::Add { .. } => broadcast_map(x, ash, y, bsh, out_shape, |p, q| c.apply(p + q)),
        Op::Sub { .. } => broadcast_map(x, ash, y, bsh, out_shape, |p, q| c.apply(p - q)),
        Op::Mul { .. } => broadcast_map(x, ash, y, bsh, out_shape, |p, q| c.apply(p * q)),
        Op::Div { .. } => broadcast_map(x, ash, y, bsh, out_shape, |p, q| c.apply(p / q)),
        // tensorflow/lite/kernels/maximum_minimum.cc: `a > b ? a : b`, `a < b ? a : b`.
        Op::Maximum => broadcast_map(x, ash, y, bsh, out_shape, |p, q| if p > q { p } else { q }),
        Op::Minimum => broadcast_map(x, ash, y, bsh, out_shape, |p, q| if p < q { p } else { q }),
        Op::SquaredDifference => broadcast_map(x, ash, y, bsh, out_shape, |p, q| (p - q) * (p - q)),
        other => return Err(KernelError::new(format!("{} is not a binary op", other.mnemonic()))),
    }?;
    single_output(cx, out)
}

/// PRELU: `x >= 0 ? x : x * alpha` with alpha broadcast against the input
/// (reference_ops::BroadcastPrelu4DSlowFloat).
pub(super) fn prelu(cx: &KernelCtx<'_>) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let alpha = input_f32(cx, 1, "alpha")?;
    let out_shape = super::output_shape(cx)?;
    let out =
        broadcast_map(
            x,
            &cx.input(0)?.shape,
            alpha,
            &cx.input(1)?.shape,
            out_shape,
            |v, a| {
                if v >= 0.0 {
                    v
                } else {
                    v * a
                }
            },
        )?;
    single_output(cx, out)
}

/// `f(a[i], b[j])` over the broadcast of `a` (shape `ash`) and `b` (shape `bsh`) to `osh`.
pub(super) fn broadcast_map<T: Copy, F: Fn(T, T) -> T>(
    a: &[T],
    ash: &[usize],
    b: &[T],
    bsh: &[usize],
    osh: &[usize],
    f: F,
) -> Result<Vec<T>, KernelError> {
    let rank = osh.len();
    let n: usize = osh.iter().product();
    let mismatch = || KernelError::new(format!("shapes {ash:?} and {bsh:?} do not broadcast to {osh:?}"));
    if ash.len() > rank || bsh.len() > rank {
        return Err(mismatch());
    }
    if a.len() != ash.iter().product::<usize>() || b.len() != bsh.iter().product::<usize>() {
        return Err(KernelError::new("operand data does not match its shape"));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    // Strides of each operand per output dimension, 0 where it repeats.
    let strides = |sh: &[usize]| -> Result<Vec<usize>, KernelError> {
        let mut s = vec![0usize; rank];
        let mut acc = 1usize;
        for d in (0..rank).rev() {
            let ext = if d + sh.len() >= rank { sh[d + sh.len() - rank] } else { 1 };
            if ext == osh[d] {
                s[d] = if ext == 1 { 0 } else { acc };
            } else if ext != 1 {
                return Err(mismatch());
            }
            acc *= ext;
        }
        Ok(s)
    };
    let (sa, sb) = (strides(ash)?, strides(bsh)?);
    // Collapse: (extent, stride in a, stride in b), outermost first, size-1 dims dropped.
    let mut dims: Vec<(usize, usize, usize)> = Vec::with_capacity(rank);
    for d in 0..rank {
        if osh[d] == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == sa[d] * osh[d] && last.2 == sb[d] * osh[d] => {
                *last = (last.0 * osh[d], sa[d], sb[d]);
            }
            _ => dims.push((osh[d], sa[d], sb[d])),
        }
    }
    let Some((inner, ia, ib)) = dims.pop() else {
        return Ok(vec![f(a[0], b[0])]);
    };
    let outer = dims;
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; outer.len()];
    let (mut oa, mut ob) = (0usize, 0usize);
    loop {
        match (ia != 0, ib != 0) {
            (true, true) => out.extend(a[oa..oa + inner].iter().zip(&b[ob..ob + inner]).map(|(&p, &q)| f(p, q))),
            (true, false) => {
                let q = b[ob];
                out.extend(a[oa..oa + inner].iter().map(|&p| f(p, q)));
            }
            (false, true) => {
                let p = a[oa];
                out.extend(b[ob..ob + inner].iter().map(|&q| f(p, q)));
            }
            (false, false) => {
                let v = f(a[oa], b[ob]);
                out.extend(std::iter::repeat_n(v, inner));
            }
        }
        // Advance the odometer over the outer dimensions.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return Ok(out);
            }
            d -= 1;
            idx[d] += 1;
            oa += outer[d].1;
            ob += outer[d].2;
            if idx[d] < outer[d].0 {
                break;
            }
            oa -= outer[d].1 * outer[d].0;
            ob -= outer[d].2 * outer[d].0;
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], ash: &[usize], b: &[f32], bsh: &[usize], osh: &[usize]) -> Vec<f32> {
        let n: usize = osh.iter().product();
        let rank = osh.len();
        let offset = |sh: &[usize], idx: &[usize]| {
            let mut off = 0;
            for (k, &e) in sh.iter().enumerate() {
                let d = rank - sh.len() + k;
                off = off * e + if e == 1 { 0 } else { idx[d] };
            }
            off
        };
        (0..n)
            .map(|mut i| {
                let mut idx = vec![0; rank];
                for d in (0..rank).rev() {
                    idx[d] = i % osh[d];
                    i /= osh[d];
                }
                a[offset(ash, &idx)] * 10.0 + b[offset(bsh, &idx)]
            })
            .collect()
    }

    #[test]
    fn broadcasting_matches_naive() {
        let cases: &[(&[usize], &[usize], &[usize])] = &[
            (&[2, 3], &[2, 3], &[2, 3]),
            (&[2, 3], &[3], &[2, 3]),
            (&[2, 1, 4], &[3, 1], &[2, 3, 4]),
            (&[1], &[2, 2], &[2, 2]),
            (&[], &[5], &[5]),
            (&[4, 1, 1, 3], &[1, 5, 2, 1], &[4, 5, 2, 3]),
            (&[1, 1], &[1], &[1, 1]),
            (&[2, 1, 3], &[2, 1, 3], &[2, 1, 3]),
        ];
        for (ash, bsh, osh) in cases {
            let a: Vec<f32> = (0..ash.iter().product::<usize>()).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..bsh.iter().product::<usize>()).map(|i| i as f32 * 0.01).collect();
            let got = broadcast_map(&a, ash, &b, bsh, osh, |p, q| p * 10.0 + q).unwrap();
            assert_eq!(got, naive(&a, ash, &b, bsh, osh), "{ash:?} {bsh:?}");
        }
        assert!(broadcast_map(&[0.0; 2], &[2], &[0.0; 3], &[3], &[3], |p, _| p).is_err());
    }
}
