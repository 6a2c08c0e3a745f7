//! Lookup tables for int8 elementwise ops (`tosa.table`), computed by running the op in
//! npuc's reference interpreter on all 256 input values. The interpreter reproduces
//! TFLite's integer kernels (its `LUTPopulate` tables and fixed-point activations) bit for
//! bit, so the table is exact by construction, whatever the op's own formula is.

use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{DType, Graph, Op, Operation, TensorType};

/// Whether the op is a one-operand elementwise function that a 256-entry table can carry
/// for int8 operands and results.
pub fn is_table_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Logistic
            | Op::Tanh
            | Op::HardSwish
            | Op::Exp
            | Op::LeakyRelu { .. }
            | Op::Relu
            | Op::Relu6
            | Op::ReluN1To1
            | Op::Sqrt
            | Op::Rsqrt
            | Op::Quantize
    )
}

/// `table[i]` = the op's int8 result for input `i - 128`, between the given operand and
/// result types (their quantization decides the numbers; shapes are ignored). Errors carry
/// the interpreter's reason (e.g. a scale TFLite refuses).
pub fn int8_table(op: &Op, input: &TensorType, output: &TensorType) -> Result<Vec<i8>, String> {
    if input.dtype != DType::I8 || output.dtype != DType::I8 {
        return Err(format!("a table needs int8 operand and result, found {} -> {}", input.dtype, output.dtype));
    }
    let mut g = Graph::new("table");
    let x = g.add_input("x", TensorType { shape: vec![256], ..input.clone() });
    let y = g.add_value(npuc_ir::Value::new("y", TensorType { shape: vec![256], ..output.clone() }));
    g.add_op(Operation::new(op.clone(), vec![Some(x)], vec![y])).map_err(|e| e.to_string())?;
    g.outputs = vec![y];
    let interp = Interpreter::new(&g, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    let all = Tensor::new(vec![256], Data::I8((-128..=127).collect())).map_err(|e| e.to_string())?;
    let mut out = interp.run(vec![all]).map_err(|e| e.to_string())?;
    match out.pop().map(|t| t.data) {
        Some(Data::I8(v)) if v.len() == 256 => Ok(v),
        _ => Err("the interpreter returned no int8 table".into()),
    }
}

/// `table[(a + 128) · 256 + (b + 128)]` = the int8 result of the binary op for operands
/// `a` and `b`, computed by the interpreter one divisor row at a time. Used for DIV, whose
/// TFLite kernel (a fixed-point reciprocal with data-dependent shifts) has no TOSA form.
/// A DIV by the divisor's zero point, which TFLite refuses, maps to the output zero point.
pub fn int8_pair_table(op: &Op, a: &TensorType, b: &TensorType, output: &TensorType) -> Result<Vec<i8>, String> {
    if [a.dtype, b.dtype, output.dtype] != [DType::I8; 3] {
        return Err(format!(
            "a pair table needs int8 operands and result, found {} {} -> {}",
            a.dtype, b.dtype, output.dtype
        ));
    }
    let b_zp = b.quant.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0);
    let out_zp = output.quant.as_ref().and_then(|q| q.zero_point.first().copied()).unwrap_or(0);
    let mut g = Graph::new("pair_table");
    let x = g.add_input("a", TensorType { shape: vec![256], ..a.clone() });
    let y = g.add_input("b", TensorType { shape: vec![256], ..b.clone() });
    let z = g.add_value(npuc_ir::Value::new("z", TensorType { shape: vec![256], ..output.clone() }));
    g.add_op(Operation::new(op.clone(), vec![Some(x), Some(y)], vec![z])).map_err(|e| e.to_string())?;
    g.outputs = vec![z];
    let interp = Interpreter::new(&g, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    // Column-major while computing (one run per divisor), transposed into the table.
    let mut columns = Vec::with_capacity(256);
    for vb in -128i32..=127 {
        if matches!(op, Op::Div { .. }) && i64::from(vb) == b_zp {
            columns.push(vec![out_zp as i8; 256]);
            continue;
        }
        let all = Tensor::new(vec![256], Data::I8((-128..=127).collect())).map_err(|e| e.to_string())?;
        let row = Tensor::new(vec![256], Data::I8(vec![vb as i8; 256])).map_err(|e| e.to_string())?;
        match interp.run(vec![all, row]).map_err(|e| e.to_string())?.pop().map(|t| t.data) {
            Some(Data::I8(v)) if v.len() == 256 => columns.push(v),
            _ => return Err("the interpreter returned no int8 results".into()),
        }
    }
    let mut table = Vec::with_capacity(256 * 256);
    for ia in 0..256 {
        table.extend(columns.iter().map(|col| col[ia]));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::Quantization;

    fn q(scale: f32, zp: i64) -> TensorType {
        TensorType::new(DType::I8, vec![1]).with_quant(Quantization::per_tensor(scale, zp))
    }

    #[test]
    fn relu_table_clamps_at_the_zero_point() {
        let t = int8_table(&Op::Relu, &q(0.1, -5), &q(0.1, -5)).expect("table");
        assert_eq!(t[0], -5, "-128 clamps to the zero point");
        assert_eq!(t[(-5i32 + 128) as usize], -5);
        assert_eq!(t[255], 127);
    }

    #[test]
    fn logistic_table_is_monotone_and_spans_the_output() {
        let t = int8_table(&Op::Logistic, &q(0.1, 0), &q(1.0 / 256.0, -128)).expect("table");
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        // sigmoid(-12.8) ≈ 2.8e-6 -> -128; sigmoid(0) = 0.5 -> 0; sigmoid(12.7) -> 127.
        assert_eq!((t[0], t[128], t[255]), (-128, 0, 127));
    }

    #[test]
    fn div_pair_table_matches_the_real_quotient() {
        let (a, b, o) = (q(0.1, 0), q(0.1, 0), q(0.05, 0));
        let t = int8_pair_table(&Op::Div { activation: npuc_ir::Activation::None }, &a, &b, &o).expect("table");
        let at = |x: i32, y: i32| t[((x + 128) * 256 + (y + 128)) as usize];
        // 2.0 / 0.5 = 4.0 -> 80 at scale 0.05; -1.2 / 0.4 = -3.0 -> -60.
        assert_eq!(at(20, 5), 80);
        assert_eq!(at(-12, 4), -60);
        // Division by the zero point maps to the output zero point.
        assert_eq!(at(7, 0), 0);
    }

    #[test]
    fn refused_quantization_is_an_error() {
        // TFLite's int8 LOGISTIC requires an output scale of 1/256.
        let e = int8_table(&Op::Logistic, &q(0.1, 0), &q(0.5, 0)).expect_err("TFLite refuses");
        assert!(e.contains("1/256"), "{e}");
        assert!(int8_table(&Op::Relu, &TensorType::new(DType::F32, vec![1]), &q(0.1, 0)).is_err());
    }
}
