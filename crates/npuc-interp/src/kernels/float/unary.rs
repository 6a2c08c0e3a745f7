//! Elementwise activations and math (RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, LOGISTIC, TANH,
//! HARD_SWISH, EXP, SQRT, RSQRT), SOFTMAX, L2_NORMALIZATION and DEQUANTIZE of floats.

use half::f16;
use npuc_ir::{Activation, DType, Op};

use super::{for_row_blocks, input_f32, single_output, Clamp, KResult, KernelCtx, Outcome};
use crate::error::KernelError;
use crate::tensor::Data;

/// Elements per parallel task row of elementwise maps.
const MAP_ROW: usize = 4096;

/// `f` over every element, split over threads for big tensors (`cost` is a rough per-element
/// cost in multiply-add units, so cheap maps stay on one thread).
fn map(x: &[f32], cost: usize, f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for_row_blocks(&mut out, MAP_ROW, MAP_ROW * cost, |r0, block| {
        let src = &x[r0 * MAP_ROW..r0 * MAP_ROW + block.len()];
        for (o, &v) in block.iter_mut().zip(src) {
            *o = f(v);
        }
    });
    out
}

/// TFLite's float logistic (reference_ops::Logistic): `1 / (1 + exp(-x))`, with the
/// cut-offs it uses to avoid overflow.
#[inline]
pub(super) fn logistic(v: f32) -> f32 {
    const CUTOFF_UPPER: f32 = 16.619_047;
    const CUTOFF_LOWER: f32 = -9.0;
    if v > CUTOFF_UPPER {
        1.0
    } else if v < CUTOFF_LOWER {
        v.exp()
    } else {
        1.0 / (1.0 + (-v).exp())
    }
}

/// The single-input activations and math functions.
pub(super) fn elementwise(cx: &KernelCtx<'_>) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let out = match &cx.op.op {
        Op::Relu => {
            let c = Clamp::range(0.0, f32::INFINITY);
            map(x, 1, move |v| c.apply(v))
        }
        Op::Relu6 => {
            let c = Clamp::range(0.0, 6.0);
            map(x, 1, move |v| c.apply(v))
        }
        Op::ReluN1To1 => {
            let c = Clamp::range(-1.0, 1.0);
            map(x, 1, move |v| c.apply(v))
        }
        Op::LeakyRelu { alpha } => {
            let a = *alpha;
            map(x, 1, move |v| if v > 0.0 { v } else { v * a })
        }
        Op::Logistic => map(x, 16, logistic),
        Op::Tanh => map(x, 16, f32::tanh),
        // reference_ops::HardSwish: `x * min(6, max(0, x + 3)) / 6`.
        Op::HardSwish => map(x, 2, |v| {
            let r = v + 3.0;
            let r = if 0.0 < r { r } else { 0.0 };
            let r = if r < 6.0 { r } else { 6.0 };
            v * r / 6.0
        }),
        Op::Exp => map(x, 16, f32::exp),
        Op::Sqrt => map(x, 4, f32::sqrt),
        Op::Rsqrt => map(x, 4, |v| 1.0 / v.sqrt()),
        other => return Err(KernelError::new(format!("{} is not an elementwise unary op", other.mnemonic()))),
    };
    single_output(cx, out)
}

/// The length of the last dimension (softmax and L2 normalization work along it).
fn last_dim(cx: &KernelCtx<'_>) -> Result<usize, KernelError> {
    let shape = &cx.input(0)?.shape;
    shape.last().copied().ok_or_else(|| KernelError::new("input must have rank 1 or more, is a scalar"))
}

/// SOFTMAX over the last dimension (reference_ops::Softmax): subtract the row maximum,
/// `exp((x - max) · beta)`, divide by the row sum.
pub(super) fn softmax(cx: &KernelCtx<'_>, beta: f32) -> KResult {
    let x = input_f32(cx, 0, "input")?;
    let depth = last_dim(cx)?;
    let mut out = vec![0.0f32; x.len()];
    if depth > 0 {
        for_row_blocks(&mut out, depth, depth * 16, |r0, block| {
            for (row, o) in x[r0 * depth..].chunks_exact(depth).zip(block.chunks_exact_mut(depth)) {
                let max = row.iter().fold(f32::MIN, |m, &v| if m < v { v } else { m });
                let mut sum = 0.0f32;
                for (o, &v) in o.iter_mut().zip(row) {
                    let e = ((v - max) * beta).exp();
                    *o = e;
                    sum += e;
                }
                o.iter_mut().for_each(|v| *v /= sum);
            }
        });
    }
    single_output(cx, out)
}

/// L2_NORMALIZATION over the last dimension (reference_ops::L2Normalization):
/// `x / max(sqrt(Σ x²), 1e-6)`. TFLite accepts no fused activation here.
pub(super) fn l2_normalization(cx: &KernelCtx<'_>, activation: Activation) -> KResult {
    if activation != Activation::None {
        return Err(KernelError::new(format!(
            "fused activation {} is not supported (TFLite requires none)",
            activation.name()
        )));
    }
    const EPSILON: f32 = 1e-6;
    let x = input_f32(cx, 0, "input")?;
    let depth = last_dim(cx)?;
    let mut out = vec![0.0f32; x.len()];
    if depth > 0 {
        for_row_blocks(&mut out, depth, depth * 2, |r0, block| {
            for (row, o) in x[r0 * depth..].chunks_exact(depth).zip(block.chunks_exact_mut(depth)) {
                let mut sq = 0.0f32;
                for &v in row {
                    sq += v * v;
                }
                let norm = sq.sqrt();
                let norm = if norm < EPSILON { EPSILON } else { norm };
                for (o, &v) in o.iter_mut().zip(row) {
                    *o = v / norm;
                }
            }
        });
    }
    single_output(cx, out)
}

/// DEQUANTIZE of an f16 tensor (TFLite's float16-weights models): exact widening to f32;
/// f32 input is copied. Other dtypes belong to the integer group.
pub(super) fn dequantize(cx: &KernelCtx<'_>) -> Outcome {
    let x = cx.opt_input(0)?;
    let out = match &x.data {
        Data::F16(v) => v.iter().map(|&h| f16::to_f32(h)).collect(),
        Data::F32(v) => v.clone(),
        _ => return None,
    };
    Some(cx.output_type(0).and_then(|ty| {
        if ty.dtype != DType::F32 {
            return Err(KernelError::new(format!(
                "DEQUANTIZE of {} must produce f32, result is {}",
                x.dtype(),
                ty.dtype
            )));
        }
        single_output(cx, out)
    }))
}
