//! Kernel dispatch.
//!
//! Kernels are grouped by numeric domain, each group in its own module returning `None`
//! for the op/dtype combinations it does not handle:
//! - `movement`: dtype-generic data movement and indexing (reshape, concat, pad, slice,
//!   gather, transpose, depth/space rearrangements, arg_max, densify, …), which are exact
//!   for every dtype because they only copy elements;
//! - `float`: f32 arithmetic (and f16/f32 dequantize);
//! - `quant`: integer kernels with TFLite's reference arithmetic (int8/int16 activations,
//!   per-channel int8 weights, fixed-point multipliers, LUTs).
//!
//! - `compare`: comparisons (all dtypes, quantized ones rescaled) and REDUCE_PROD.
//!
//! The first group that claims an op runs it; if none does, the op is reported unsupported
//! with its operand types.

pub(crate) mod compare;
pub(crate) mod float;
pub(crate) mod movement;
pub(crate) mod quant;
pub(crate) mod window;

use npuc_ir::{Graph, OpId, Operation, TensorType, Value};

use crate::error::KernelError;
use crate::tensor::Tensor;

/// What a kernel sees: the op, its operand tensors with their IR types (quantization
/// lives there), and the declared types of its results.
pub struct KernelCtx<'a> {
    /// The graph the op belongs to.
    pub graph: &'a Graph,
    /// The op's id.
    pub id: OpId,
    /// The op.
    pub op: &'a Operation,
    /// Operand tensors; `None` for omitted optional operands.
    pub inputs: Vec<Option<&'a Tensor>>,
    /// Operand values (types, quantization, sparsity); `None` for omitted operands.
    pub input_values: Vec<Option<&'a Value>>,
    /// Declared result types (shape, dtype, quantization).
    pub output_types: Vec<&'a TensorType>,
}

thread_local! {
    /// Set while a single-threaded run executes inline on the caller's thread.
    static INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The number of threads a kernel may split its work over: 1 for a single-threaded run
/// (which executes inline, without the cost of handing work to a pool), else the size of
/// the interpreter's worker pool the kernel runs in.
pub(crate) fn worker_threads() -> usize {
    if INLINE.with(|c| c.get()) {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Runs `f` with [`worker_threads`] pinned to 1, restoring the previous state after.
pub(crate) fn inline<R>(f: impl FnOnce() -> R) -> R {
    let prev = INLINE.with(|c| c.replace(true));
    let r = f();
    INLINE.with(|c| c.set(prev));
    r
}

/// The result of a kernel group: `None` when the group does not handle the op.
pub type Outcome = Option<Result<Vec<Tensor>, KernelError>>;

impl<'a> KernelCtx<'a> {
    /// Operand `i`, or an error naming the missing slot.
    pub fn input(&self, i: usize) -> Result<&'a Tensor, KernelError> {
        self.inputs.get(i).copied().flatten().ok_or_else(|| KernelError::new(format!("operand {i} is missing")))
    }

    /// Operand `i` if present.
    pub fn opt_input(&self, i: usize) -> Option<&'a Tensor> {
        self.inputs.get(i).copied().flatten()
    }

    /// The IR type of operand `i`.
    pub fn input_type(&self, i: usize) -> Result<&'a TensorType, KernelError> {
        self.input_values
            .get(i)
            .copied()
            .flatten()
            .map(|v| &v.ty)
            .ok_or_else(|| KernelError::new(format!("operand {i} is missing")))
    }

    /// The declared type of result `i`.
    pub fn output_type(&self, i: usize) -> Result<&'a TensorType, KernelError> {
        self.output_types.get(i).copied().ok_or_else(|| KernelError::new(format!("result {i} is missing")))
    }

    /// Whether result `k` has run-time extents (`-1` in its shape signature), so its
    /// declared shape is a placeholder that kernels must not insist on.
    pub fn result_is_dynamic(&self, k: usize) -> bool {
        self.op
            .outputs
            .get(k)
            .and_then(|&v| self.graph.get_value(v))
            .is_some_and(|v| v.shape_signature.as_ref().is_some_and(|s| s.contains(&-1)))
    }

    /// Whether the op computes on quantized integers (its first operand or first result is
    /// an integer tensor with quantization).
    pub fn is_quantized(&self) -> bool {
        let q = |t: &TensorType| t.dtype.is_int() && t.quant.as_ref().is_some_and(|q| !q.scale.is_empty());
        self.input_values.first().copied().flatten().is_some_and(|v| q(&v.ty))
            || self.output_types.first().is_some_and(|t| q(t))
    }
}

/// Runs one op.
pub fn eval(cx: &KernelCtx<'_>) -> Result<Vec<Tensor>, KernelError> {
    if let Some(r) = compare::eval(cx) {
        return r;
    }
    if let Some(r) = movement::eval(cx) {
        return r;
    }
    let r = if cx.is_quantized() { quant::eval(cx) } else { float::eval(cx) };
    r.unwrap_or_else(|| {
        let types: Vec<String> =
            cx.input_values.iter().map(|v| v.map_or_else(|| "none".to_string(), |v| v.ty.dtype.to_string())).collect();
        let out: Vec<String> = cx.output_types.iter().map(|t| t.dtype.to_string()).collect();
        Err(KernelError::new(format!("no kernel for operands ({}) -> ({})", types.join(", "), out.join(", "))))
    })
}
