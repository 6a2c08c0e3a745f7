//! Test helpers: one-op graphs run through the real interpreter.

use npuc_ir::{Constant, DType, Graph, Op, Operation, Quantization, TensorType, Value, ValueId};

use crate::error::InterpError;
use crate::interpreter::{Interpreter, Options};
use crate::tensor::{Data, Tensor};

/// A tensor from a shape and data (panics on a count mismatch: tests only).
pub(crate) fn t(shape: &[usize], data: Data) -> Tensor {
    Tensor::new(shape.to_vec(), data).expect("element count matches shape")
}

/// An f32 tensor.
pub(crate) fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    t(shape, Data::F32(v.to_vec()))
}

/// An i32 tensor.
pub(crate) fn i32s(shape: &[usize], v: &[i32]) -> Tensor {
    t(shape, Data::I32(v.to_vec()))
}

/// An i64 tensor.
pub(crate) fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    t(shape, Data::I64(v.to_vec()))
}

/// An i8 tensor.
pub(crate) fn i8s(shape: &[usize], v: &[i8]) -> Tensor {
    t(shape, Data::I8(v.to_vec()))
}

/// An f32 tensor `0, 1, 2, …` of the given shape.
pub(crate) fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    f32s(shape, &(0..n).map(|i| i as f32).collect::<Vec<_>>())
}

/// Builds a one-op graph operand by operand, then runs it.
pub(crate) struct OpTest {
    g: Graph,
    feeds: Vec<Tensor>,
    operands: Vec<Option<ValueId>>,
    first_quant: Option<Option<Quantization>>,
}

impl OpTest {
    pub(crate) fn new() -> Self {
        OpTest { g: Graph::new("t"), feeds: Vec::new(), operands: Vec::new(), first_quant: None }
    }

    fn note_quant(&mut self, q: &Option<Quantization>) {
        if self.first_quant.is_none() {
            self.first_quant = Some(q.clone());
        }
    }

    /// A graph input fed with `x`.
    pub(crate) fn input(self, x: Tensor) -> Self {
        self.input_q(x, None)
    }

    /// A graph input with quantization.
    pub(crate) fn input_q(mut self, x: Tensor, q: Option<Quantization>) -> Self {
        self.note_quant(&q);
        let ty = TensorType { dtype: x.dtype(), shape: x.shape.clone(), quant: q };
        let n = self.operands.len();
        let v = self.g.add_input(format!("in{n}"), ty);
        self.operands.push(Some(v));
        self.feeds.push(x);
        self
    }

    /// A constant operand.
    pub(crate) fn konst(self, x: Tensor) -> Self {
        self.konst_q(x, None)
    }

    /// A constant operand with quantization.
    pub(crate) fn konst_q(mut self, x: Tensor, q: Option<Quantization>) -> Self {
        self.note_quant(&q);
        let ty = TensorType { dtype: x.dtype(), shape: x.shape.clone(), quant: q };
        let n = self.operands.len();
        let v = self.g.add_const(format!("c{n}"), ty, Constant::from(x.data.to_le_bytes()));
        self.operands.push(Some(v));
        self
    }

    /// An omitted optional operand.
    pub(crate) fn none(mut self) -> Self {
        self.operands.push(None);
        self
    }

    /// Runs `op` with result types inferred by `npuc_ir::infer` (quantization copied from
    /// the first operand).
    pub(crate) fn run(self, op: Op) -> Result<Vec<Tensor>, InterpError> {
        let n = match &op {
            Op::Split { num_splits } | Op::SplitV { num_splits } => *num_splits as usize,
            Op::Unpack { num, .. } => *num as usize,
            _ => 1,
        };
        let vals: Vec<Option<&Value>> = self.operands.iter().map(|v| v.map(|v| self.g.value(v))).collect();
        let inferred = npuc_ir::infer(&op, &vals, n).unwrap_or_else(|e| panic!("shape inference failed: {e}"));
        let q = self.first_quant.clone().flatten();
        let outs = inferred
            .into_iter()
            .map(|t| TensorType {
                dtype: t.dtype.expect("dtype inferred"),
                shape: t.shape.expect("shape inferred"),
                quant: q.clone(),
            })
            .collect();
        self.run_with(op, outs)
    }

    /// Runs `op` with the given result types.
    pub(crate) fn run_with(mut self, op: Op, outs: Vec<TensorType>) -> Result<Vec<Tensor>, InterpError> {
        let outputs: Vec<ValueId> =
            outs.into_iter().enumerate().map(|(k, ty)| self.g.add_value(Value::new(format!("out{k}"), ty))).collect();
        self.g.add_op(Operation::new(op, self.operands.clone(), outputs.clone())).expect("op added");
        self.g.outputs = outputs;
        let it = Interpreter::new(&self.g, &Options { threads: 1 })?;
        it.run(self.feeds)
    }

    /// Whether the movement group claims `op` with these operands and result types.
    pub(crate) fn claimed(mut self, op: Op, outs: Vec<TensorType>) -> bool {
        let outputs: Vec<ValueId> =
            outs.into_iter().enumerate().map(|(k, ty)| self.g.add_value(Value::new(format!("out{k}"), ty))).collect();
        let id = self.g.add_op(Operation::new(op, self.operands.clone(), outputs)).expect("op added");
        let g = &self.g;
        let o = g.op(id);
        let mut feeds = self.feeds.iter();
        let consts: Vec<Option<Tensor>> = o
            .inputs
            .iter()
            .map(|v| {
                v.map(|v| {
                    let val = g.value(v);
                    match &val.data {
                        Some(c) => Tensor::from_constant(&val.ty, c).expect("constant decodes"),
                        None => feeds.next().expect("feed").clone(),
                    }
                })
            })
            .collect();
        let cx = crate::kernels::KernelCtx {
            graph: g,
            id,
            op: o,
            inputs: consts.iter().map(|t| t.as_ref()).collect(),
            input_values: o.inputs.iter().map(|v| v.map(|v| g.value(v))).collect(),
            output_types: o.outputs.iter().map(|&v| &g.value(v).ty).collect(),
        };
        super::eval(&cx).is_some()
    }

    /// Runs and returns the single result, panicking on failure.
    pub(crate) fn one(self, op: Op) -> Tensor {
        let mut r = self.run(op).unwrap_or_else(|e| panic!("run failed: {e}"));
        assert_eq!(r.len(), 1);
        r.remove(0)
    }
}

/// The type `dtype[shape]` with optional quantization.
pub(crate) fn ty(dtype: DType, shape: &[usize], q: Option<Quantization>) -> TensorType {
    TensorType { dtype, shape: shape.to_vec(), quant: q }
}

/// Asserts that `r` failed with a message containing `needle`.
#[track_caller]
pub(crate) fn assert_err<T: std::fmt::Debug>(r: Result<T, InterpError>, needle: &str) {
    match r {
        Ok(v) => panic!("expected an error containing {needle:?}, got {v:?}"),
        Err(e) => assert!(e.to_string().contains(needle), "error {e:?} does not contain {needle:?}"),
    }
}
