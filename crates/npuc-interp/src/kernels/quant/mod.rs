//! Integer kernels with TFLite's reference arithmetic.
//!
//! Submodules: `fixed_point` (the shared primitives), `arith` (convolutions, fully
//! connected, pooling, reductions, elementwise arithmetic, (de)quantization, activations
//! computed without tables), `lut` (ops TFLite computes through lookup tables or gemmlowp
//! fixed-point transcendental functions: logistic, tanh, hard swish, softmax, exp, sqrt,
//! rsqrt, l2 normalization, bilinear resize).

pub(crate) mod arith;
pub mod fixed_point;
pub(crate) mod lut;

use super::{KernelCtx, Outcome};

/// Runs the op if an integer kernel handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    arith::eval(cx).or_else(|| lut::eval(cx))
}
