//! Running one op through the reference interpreter's kernels.
//!
//! The lowering builds lookup tables this way and the simulator computes NPU commands this
//! way, so both share TFLite's integer arithmetic bit for bit with `npuc-interp` instead of
//! re-deriving it.

use npuc_interp::kernels::{self, KernelCtx};
use npuc_interp::Tensor;
use npuc_ir::{Graph, Op, Operation, TensorType, Value};

/// Evaluates `op` on `inputs` (a type and a tensor per operand, `None` for omitted ones)
/// producing results of the `outputs` types; the error is the kernel's message.
pub(crate) fn eval_op(
    op: &Op,
    inputs: &[Option<(TensorType, Tensor)>],
    outputs: &[TensorType],
) -> Result<Vec<Tensor>, String> {
    let mut g = Graph::new("command");
    let ins: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| x.as_ref().map(|(ty, _)| g.add_input(format!("in{i}"), ty.clone())))
        .collect();
    let outs =
        outputs.iter().enumerate().map(|(i, ty)| g.add_value(Value::new(format!("out{i}"), ty.clone()))).collect();
    let id = g.add_op(Operation::new(op.clone(), ins.clone(), outs)).map_err(|e| e.to_string())?;
    let operation = g.op(id);
    let cx = KernelCtx {
        graph: &g,
        id,
        op: operation,
        inputs: inputs.iter().map(|x| x.as_ref().map(|(_, t)| t)).collect(),
        input_values: ins.iter().map(|v| v.map(|v| g.value(v))).collect(),
        output_types: operation.outputs.iter().map(|&v| &g.value(v).ty).collect(),
    };
    let results = kernels::eval(&cx).map_err(|e| e.0)?;
    if results.len() != outputs.len() {
        return Err(format!("kernel produced {} results, the command has {}", results.len(), outputs.len()));
    }
    for (t, ty) in results.iter().zip(outputs) {
        if t.dtype() != ty.dtype || t.shape != ty.shape {
            return Err(format!(
                "kernel produced {} {:?} for a result declared {} {:?}",
                t.dtype(),
                t.shape,
                ty.dtype,
                ty.shape
            ));
        }
    }
    Ok(results)
}
