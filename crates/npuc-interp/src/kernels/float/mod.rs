//! Kernels of the `float` group (see the parent module): f32 arithmetic with TFLite's float
//! semantics, and DEQUANTIZE of f16 (or f32) to f32.
//!
//! Each kernel follows the formula of TFLite's float reference kernel: padding offsets,
//! clamping order, `1 / (1 + exp(-x))`, `x * relu6(x + 3) / 6`, the L2 norm's epsilon, the
//! bilinear source coordinates. Convolutions, depthwise convolutions, pooling and
//! reductions also keep the reference kernels' order of summation, so on the fixtures they
//! reproduce LiteRT's reference kernels bit for bit; the exceptions are TRANSPOSE_CONV and
//! FULLY_CONNECTED on fewer than 4 rows, which sum in another order. The results do not
//! depend on the CPU's instruction set or the number of threads.
//!
//! Speed: CONV_2D and FULLY_CONNECTED are matrix products with our own register tiles
//! (`gemm`: im2col rows or the input itself for 1×1 stride-1 windows, one operand packed;
//! AVX-512 in inline assembly, AVX intrinsics, portable code); depthwise convolutions run
//! several output pixels and channel vectors at once. Work is split over the interpreter's
//! rayon pool when it has more than one thread and an op is big enough to pay for it.
//!
//! Non-quantized integer tensors also arrive here (the quantized group only sees tensors
//! with scales), so the broadcasting binary ops accept i32 and i64 too: shape arithmetic in
//! converted models uses them.
//!
//! Submodules: `binary` (broadcasting elementwise ops, PRELU), `conv` (CONV_2D,
//! TRANSPOSE_CONV, FULLY_CONNECTED), `depthwise`, `gemm` (the matrix product), `pool`
//! (pooling, MEAN, SUM), `unary` (activations, SOFTMAX, L2_NORMALIZATION, DEQUANTIZE),
//! `resize` (RESIZE_BILINEAR), `simd` (run-time CPU feature dispatch, dot products).

#[macro_use]
mod simd;
mod binary;
mod conv;
mod depthwise;
mod gemm;
mod pool;
mod resize;
mod unary;

use npuc_ir::{Activation, DType, Op};
use rayon::prelude::*;

use super::{KernelCtx, Outcome};
use crate::error::KernelError;
use crate::kernels::window::out_size;
use crate::tensor::{Data, Tensor};

type KResult = Result<Vec<Tensor>, KernelError>;

/// Runs the op if this group handles it.
pub(crate) fn eval(cx: &KernelCtx<'_>) -> Outcome {
    let dtype = |i: usize| cx.input_values.get(i).copied().flatten().map(|v| v.ty.dtype);
    let op = &cx.op.op;
    match op {
        Op::Dequantize => return unary::dequantize(cx),
        op if op.is_binary_elementwise() => return binary::eval(cx),
        // The data input of TRANSPOSE_CONV is operand 2 (0 is the output shape).
        Op::TransposeConv(a) => {
            return (dtype(2) == Some(DType::F32)).then(|| conv::transpose_conv(cx, a));
        }
        _ => {}
    }
    if dtype(0) != Some(DType::F32) {
        return None;
    }
    Some(match op {
        Op::Conv2d(a) => conv::conv2d(cx, a),
        Op::DepthwiseConv2d(a) => depthwise::depthwise_conv2d(cx, a),
        Op::FullyConnected(a) => conv::fully_connected(cx, a),
        Op::AveragePool2d(a) => pool::pool2d(cx, a, pool::PoolKind::Average),
        Op::MaxPool2d(a) => pool::pool2d(cx, a, pool::PoolKind::Max),
        Op::Mean { .. } => pool::reduce(cx, pool::ReduceKind::Mean),
        Op::Sum { .. } => pool::reduce(cx, pool::ReduceKind::Sum),
        Op::Prelu => binary::prelu(cx),
        op if op.is_unary_elementwise() => unary::elementwise(cx),
        Op::Softmax { beta } => unary::softmax(cx, *beta),
        Op::L2Normalization { activation } => unary::l2_normalization(cx, *activation),
        Op::ResizeBilinear(a) => resize::resize_bilinear(cx, a),
        _ => return None,
    })
}

/// The clamp a fused activation applies, as TFLite's `CalculateActivationRange` computes it
/// for float kernels: RELU, RELU6 and RELU_N1_TO_1 clamp; every other activation (including
/// TANH and SIGN_BIT, which no float kernel applies) leaves values unchanged.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clamp {
    lo: f32,
    hi: f32,
}

impl Clamp {
    pub(super) fn new(a: Activation) -> Clamp {
        let (lo, hi) = match a {
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Relu6 => (0.0, 6.0),
            Activation::ReluN1To1 => (-1.0, 1.0),
            Activation::None | Activation::Tanh | Activation::SignBit => (f32::NEG_INFINITY, f32::INFINITY),
        };
        Clamp { lo, hi }
    }

    pub(super) fn range(lo: f32, hi: f32) -> Clamp {
        Clamp { lo, hi }
    }

    /// `min(max(x, lo), hi)` with `std::max`/`std::min` semantics, so NaN passes through as
    /// in TFLite's `ActivationFunctionWithMinMax`.
    #[inline(always)]
    pub(super) fn apply(self, x: f32) -> f32 {
        let y = if x < self.lo { self.lo } else { x };
        if self.hi < y {
            self.hi
        } else {
            y
        }
    }

    /// `(lo, hi)`.
    pub(super) fn bounds(self) -> (f32, f32) {
        (self.lo, self.hi)
    }
}

/// Adds the bias to every row of `block` (rows of `channels` values) and clamps. Without a
/// bias TFLite adds 0, which turns a sum of -0 into +0, so this does too.
pub(super) fn bias_and_clamp(block: &mut [f32], channels: usize, bias: Option<&[f32]>, clamp: Clamp) {
    if channels == 0 {
        return;
    }
    match bias {
        Some(b) => {
            for row in block.chunks_exact_mut(channels) {
                for (o, &b) in row.iter_mut().zip(b) {
                    *o = clamp.apply(*o + b);
                }
            }
        }
        None => block.iter_mut().for_each(|o| *o = clamp.apply(*o + 0.0)),
    }
}

/// The f32 elements of operand `i`, or an error naming its role and dtype.
pub(super) fn input_f32<'a>(cx: &KernelCtx<'a>, i: usize, role: &str) -> Result<&'a [f32], KernelError> {
    let t = cx.input(i)?;
    t.as_f32().ok_or_else(|| KernelError::new(format!("{role} has dtype {}; this float kernel needs f32", t.dtype())))
}

/// The optional f32 bias at operand `i`, checked to hold `channels` values.
pub(super) fn bias_f32<'a>(cx: &KernelCtx<'a>, i: usize, channels: usize) -> Result<Option<&'a [f32]>, KernelError> {
    let Some(b) = cx.opt_input(i) else { return Ok(None) };
    let v = b.as_f32().ok_or_else(|| KernelError::new(format!("bias has dtype {}, expected f32", b.dtype())))?;
    if v.len() != channels {
        return Err(KernelError::new(format!("bias has {} values for {channels} output channels", v.len())));
    }
    Ok(Some(v))
}

/// The declared shape of result 0, checked to be f32.
pub(super) fn output_shape<'a>(cx: &KernelCtx<'a>) -> Result<&'a [usize], KernelError> {
    let ty = cx.output_type(0)?;
    if ty.dtype != DType::F32 {
        return Err(KernelError::new(format!("result has dtype {}; this float kernel produces f32", ty.dtype)));
    }
    Ok(&ty.shape)
}

/// Wraps `data` as the op's single f32 result with its declared shape.
pub(super) fn single_output(cx: &KernelCtx<'_>, data: Vec<f32>) -> KResult {
    let shape = output_shape(cx)?;
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(KernelError::new(format!(
            "kernel computed {} values but the result is declared {shape:?} ({n} values)",
            data.len()
        )));
    }
    Ok(vec![Tensor { shape: shape.to_vec(), data: Data::F32(data) }])
}

/// A 4-D shape as an array, or an error naming the operand.
pub(super) fn dims4(shape: &[usize], role: &str) -> Result<[usize; 4], KernelError> {
    shape.try_into().map_err(|_| KernelError::new(format!("{role} must have rank 4, has shape {shape:?}")))
}

/// Minimum work (multiply-adds or element visits) per task before an op is split over
/// threads: below it rayon's scheduling costs more than it saves.
const PAR_MIN_WORK: usize = 1 << 19;

/// Calls `f(first_row, rows)` over `out`, a sequence of rows of `row_len` values, in blocks
/// of whole rows. With more than one thread in the pool and at least two tasks' worth of
/// work (`cost_per_row` per row), the blocks run in parallel; otherwise `f` sees all rows at
/// once, without any parallel overhead.
pub(super) fn for_row_blocks<T, F>(out: &mut [T], row_len: usize, cost_per_row: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    let threads = crate::kernels::worker_threads();
    let total = rows.saturating_mul(cost_per_row.max(1));
    let max_tasks = (total / PAR_MIN_WORK).min(rows).min(threads * 4);
    if threads <= 1 || max_tasks < 2 {
        f(0, out);
        return;
    }
    // A multiple of the thread count keeps the last wave from running on one thread.
    let tasks = if max_tasks >= threads { max_tasks - max_tasks % threads } else { max_tasks };
    let rows_per_task = rows.div_ceil(tasks);
    out.par_chunks_mut(rows_per_task * row_len).enumerate().for_each(|(i, block)| f(i * rows_per_task, block));
}

/// A pointer that may cross threads; users guarantee the threads touch disjoint elements.
#[derive(Clone, Copy)]
pub(super) struct SyncPtr(pub(super) *mut f32);

// SAFETY: only used to hand disjoint parts of one buffer to worker threads.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

/// Calls `f(range)` over `0..n` split into ranges, in parallel under the same rule as
/// [`for_row_blocks`] (`cost` per element of the range).
pub(super) fn for_ranges<F>(n: usize, cost: usize, f: F)
where
    F: Fn(std::ops::Range<usize>) + Sync + Send,
{
    let threads = crate::kernels::worker_threads();
    let total = n.saturating_mul(cost.max(1));
    let max_tasks = (total / PAR_MIN_WORK).min(n).min(threads * 4);
    if threads <= 1 || max_tasks < 2 {
        f(0..n);
        return;
    }
    let tasks = if max_tasks >= threads { max_tasks - max_tasks % threads } else { max_tasks };
    let per = n.div_ceil(tasks);
    (0..n.div_ceil(per)).into_par_iter().for_each(|t| f(t * per..((t + 1) * per).min(n)));
}

/// The f32 weights at operand `i`; integer weights with f32 activations are TFLite's hybrid
/// kernels, which quantize the activations on the fly and are not modelled here.
pub(super) fn weights_f32<'a>(cx: &KernelCtx<'a>, i: usize, role: &str) -> Result<&'a [f32], KernelError> {
    let t = cx.input(i)?;
    t.as_f32().ok_or_else(|| {
        KernelError::new(format!(
            "{role} has dtype {} with f32 activations: hybrid kernels are not implemented (dequantize the {role} first)",
            t.dtype()
        ))
    })
}

/// The output height and width of a convolution (CONV_2D, DEPTHWISE_CONV_2D) of an
/// `[n, ih, iw, _]` input giving `oc` channels, checked against the declared result.
pub(super) fn conv_out_size(
    cx: &KernelCtx<'_>,
    padding: npuc_ir::Padding,
    [n, ih, iw]: [usize; 3],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [dh, dw]: [usize; 2],
    oc: usize,
) -> Result<(usize, usize), KernelError> {
    let oh = out_size(padding, ih, kh, sh, dh);
    let ow = out_size(padding, iw, kw, sw, dw);
    let declared = output_shape(cx)?;
    if declared != [n, oh, ow, oc] {
        return Err(KernelError::new(format!(
            "result is declared {declared:?}, the convolution gives {:?}",
            [n, oh, ow, oc]
        )));
    }
    Ok((oh, ow))
}

/// Checks that stride and dilation values are positive.
pub(super) fn positive(vals: &[u32], what: &str) -> Result<(), KernelError> {
    if vals.contains(&0) {
        return Err(KernelError::new(format!("{what} {vals:?} has a zero")));
    }
    Ok(())
}
