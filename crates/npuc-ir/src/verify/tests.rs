//! Verifier tests: a valid graph passes, and each broken invariant is reported with the
//! op or value it concerns.

use super::*;
use crate::constant::Constant;
use crate::graph::{Operation, Signature};
use crate::op::{Activation, Conv2dAttrs, Padding};
use crate::types::{DimFormat, DimMetadata, Quantization, Sparsity, TensorType};
use DType::*;

fn ty(d: DType, s: &[usize]) -> TensorType {
    TensorType::new(d, s.to_vec())
}

fn zeros(t: &TensorType) -> Constant {
    Constant::from(vec![0u8; t.storage_bytes().unwrap() as usize])
}

fn conv_op() -> Op {
    Op::Conv2d(Conv2dAttrs {
        padding: Padding::Same,
        stride: [2, 2],
        dilation: [1, 1],
        activation: Activation::Relu6,
        bias_type: None,
    })
}

/// input -> conv_2d (int8, per-channel weights, int32 bias) -> relu -> output.
fn quantized_conv_graph() -> Graph {
    let mut g = Graph::new("main");
    let x = g.add_input("x", ty(I8, &[1, 96, 96, 3]).with_quant(Quantization::per_tensor(0.02, -128)));
    let wt = ty(I8, &[8, 3, 3, 3]).with_quant(Quantization::per_channel(vec![0.01; 8], vec![0; 8], 0));
    let w = g.add_const("w", wt.clone(), zeros(&wt));
    let bt = ty(I32, &[8]).with_quant(Quantization::per_channel(vec![0.0002; 8], vec![0; 8], 0));
    let b = g.add_const("b", bt.clone(), zeros(&bt));
    let y = g.add_value(Value::new("y", ty(I8, &[1, 48, 48, 8]).with_quant(Quantization::per_tensor(0.05, -128))));
    let z = g.add_value(Value::new("z", ty(I8, &[1, 48, 48, 8]).with_quant(Quantization::per_tensor(0.05, -128))));
    g.add_op(Operation::new(conv_op(), vec![Some(x), Some(w), Some(b)], vec![y])).unwrap();
    g.add_op(Operation::new(Op::Relu, vec![Some(y)], vec![z])).unwrap();
    g.outputs.push(z);
    g
}

fn find(g: &Graph, name: &str) -> ValueId {
    g.value_ids().find(|&v| g.value(v).name == name).unwrap()
}

fn err_text(g: &Graph) -> String {
    verify_graph(g).expect_err("graph should be rejected").to_string()
}

fn assert_rejects(g: &Graph, needle: &str) {
    let e = err_text(g);
    assert!(e.contains(needle), "error {e:?} does not mention {needle:?}");
}

#[test]
fn valid_graph_passes() {
    let g = quantized_conv_graph();
    assert_eq!(verify_graph(&g), Ok(()));
    assert_eq!(verify_module(&Module::from_graph(g)), Ok(()));
}

#[test]
fn catches_a_cycle() {
    let mut g = Graph::new("loop");
    let x = g.add_input("x", ty(F32, &[4]));
    let a = g.add_value(Value::new("a", ty(F32, &[4])));
    let b = g.add_value(Value::new("b", ty(F32, &[4])));
    let add = Op::Add { activation: Activation::None, pot_scale_int16: false };
    g.add_op(Operation::new(add, vec![Some(x), Some(b)], vec![a])).unwrap();
    g.add_op(Operation::new(Op::Relu, vec![Some(a)], vec![b])).unwrap();
    g.outputs.push(b);
    assert!(matches!(verify_graph(&g), Err(IrError::Cycle { .. })), "{:?}", verify_graph(&g));
}

#[test]
fn catches_a_dangling_value() {
    let mut g = Graph::new("g");
    let ghost = g.add_value(Value::new("ghost", ty(F32, &[4])));
    let y = g.add_value(Value::new("y", ty(F32, &[4])));
    g.add_op(Operation::new(Op::Relu, vec![Some(ghost)], vec![y])).unwrap();
    g.outputs.push(y);
    let e = err_text(&g);
    assert_eq!(
        e,
        "op #0 (relu): operand 0: value 'ghost' (#0) is dangling: no op produces it and it is not a graph input, \
         constant or variable"
    );
    // A graph output nobody produces is dangling too.
    let mut g = Graph::new("g");
    let out = g.add_value(Value::new("out", ty(F32, &[1])));
    g.outputs.push(out);
    assert_rejects(&g, "output 0: value 'out' (#0) is dangling");
    // A variable needs no producer.
    let mut g = Graph::new("g");
    let mut var = Value::new("state", ty(F32, &[4]));
    var.is_variable = true;
    let var = g.add_value(var);
    let y = g.add_value(Value::new("y", ty(F32, &[4])));
    g.add_op(Operation::new(Op::Relu, vec![Some(var)], vec![y])).unwrap();
    g.outputs.push(y);
    assert_eq!(verify_graph(&g), Ok(()));
}

#[test]
fn catches_bad_per_channel_quantization_length() {
    let mut g = quantized_conv_graph();
    let w = find(&g, "w");
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(vec![0.01; 4], vec![0; 4], 0));
    assert_eq!(err_text(&g), "value 'w' (#1): has 4 per-channel scales but dimension 0 of i8[8,3,3,3] has size 8");
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(vec![0.01; 3], vec![0; 3], 4));
    assert_rejects(&g, "quantization axis 4 is out of range for i8[8,3,3,3]");
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(vec![0.01; 8], vec![0; 7], 0));
    assert_rejects(&g, "quantization has 8 scales but 7 zero points");
}

#[test]
fn quantization_value_rules() {
    let mut g = quantized_conv_graph();
    let x = find(&g, "x");
    let y = find(&g, "y");
    let w = find(&g, "w");
    // Zero points must fit the dtype.
    g.value_mut(x).ty.quant = Some(Quantization::per_tensor(0.02, 128));
    assert_rejects(&g, "value 'x' (#0): zero point 0 is 128, outside the i8 range [-128, 127]");
    // Activation scales must be positive and finite.
    g.value_mut(x).ty.quant = Some(Quantization::per_tensor(0.0, 0));
    assert_rejects(&g, "quantization scale 0 is 0; scales must be finite and positive");
    g.value_mut(x).ty.quant = Some(Quantization::per_tensor(f32::NAN, 0));
    assert_rejects(&g, "quantization scale 0 is NaN");
    g.value_mut(x).ty.quant = Some(Quantization::per_tensor(0.02, -128));
    // A zero scale on a constant is a dead channel and is accepted.
    let mut scales = vec![0.01; 8];
    scales[5] = 0.0;
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(scales, vec![0; 8], 0));
    assert_eq!(verify_graph(&g), Ok(()));
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(vec![-0.01; 8], vec![0; 8], 0));
    assert_rejects(&g, "scales must be finite and non-negative");
    g.value_mut(w).ty.quant = Some(Quantization::per_channel(vec![0.01; 8], vec![0; 8], 0));
    // Float tensors may carry calibration ranges but no scales.
    let mut f = Graph::new("f");
    let calibrated = Quantization { min: vec![-1.0], max: vec![1.0], ..Default::default() };
    let a = f.add_input("a", ty(F32, &[2]).with_quant(calibrated));
    f.outputs.push(a);
    assert_eq!(verify_graph(&f), Ok(()));
    f.value_mut(a).ty.quant = Some(Quantization::per_tensor(0.1, 0));
    assert_rejects(&f, "has quantization scales but dtype f32 is not an integer type");
    // The quantized bias of a conv must have zero point 0.
    let b = find(&g, "b");
    g.value_mut(b).ty.quant = Some(Quantization::per_channel(vec![0.0002; 8], vec![1; 8], 0));
    assert_rejects(&g, "op #0 (conv_2d): bias 'b' has zero point 1; quantized biases need zero point 0");
    let _ = y;
}

#[test]
fn catches_constant_of_wrong_byte_size() {
    let mut g = quantized_conv_graph();
    let b = find(&g, "b");
    g.value_mut(b).data = Some(Constant::from(vec![0u8; 31]));
    assert_eq!(err_text(&g), "value 'b' (#2): i32[8] needs 32 bytes but its data holds 31");
    // Elided constants are checked by their recorded length.
    g.value_mut(b).data = Some(Constant::elided("0011223344556677", 32));
    assert_eq!(verify_graph(&g), Ok(()));
    // int4 packs two values a byte: 5 values need 3 bytes.
    let mut g = Graph::new("g");
    let c = g.add_const("c", ty(I4, &[5]), Constant::from(vec![0u8; 3]));
    g.outputs.push(c);
    assert_eq!(verify_graph(&g), Ok(()));
    g.value_mut(c).data = Some(Constant::from(vec![0u8; 5]));
    assert_rejects(&g, "i4[5] needs 3 bytes but its data holds 5");
}

#[test]
fn sparse_constants_are_checked_loosely() {
    let mut g = Graph::new("g");
    let t = ty(F32, &[4, 4]);
    let mut w = Value::new("w", t);
    w.data = Some(Constant::from(vec![0u8; 12]));
    let dense = DimMetadata { format: DimFormat::Dense, dense_size: 4, array_segments: None, array_indices: None };
    w.sparsity =
        Some(Sparsity { traversal_order: vec![0, 1], block_map: vec![], dim_metadata: vec![dense.clone(); 2] });
    let w = g.add_value(w);
    let y = g.add_value(Value::new("y", ty(F32, &[4, 4])));
    g.add_op(Operation::new(Op::Densify, vec![Some(w)], vec![y])).unwrap();
    g.outputs.push(y);
    assert_eq!(verify_graph(&g), Ok(()));
    g.value_mut(w).sparsity.as_mut().unwrap().dim_metadata.pop();
    assert_rejects(&g, "sparsity has 1 dim_metadata entries for a traversal order of 2");
    g.value_mut(w).sparsity.as_mut().unwrap().dim_metadata.push(dense);
    g.value_mut(w).data = Some(Constant::from(vec![0u8; 65]));
    assert_rejects(&g, "sparse payload of 65 bytes is larger than the dense f32[4,4] (64 bytes)");
}

#[test]
fn catches_a_2_to_the_40_element_tensor() {
    let mut g = Graph::new("g");
    let x = g.add_input("huge", ty(I8, &[1 << 20, 1 << 20]));
    g.outputs.push(x);
    assert_eq!(
        err_text(&g),
        "value 'huge' (#0): i8[1048576,1048576] has 1099511627776 elements, more than the limit of 2^32"
    );
    let mut g = Graph::new("g");
    let x = g.add_input("overflow", ty(I8, &[usize::MAX, 3]));
    g.outputs.push(x);
    assert_rejects(&g, "more than 2^64 elements");
}

#[test]
fn catches_a_shape_mismatch() {
    let mut g = quantized_conv_graph();
    let y = find(&g, "y");
    g.value_mut(y).ty.shape = vec![1, 96, 96, 8];
    let e = err_text(&g);
    assert_eq!(e, "op #0 (conv_2d): result 0 'y' (#3) is declared i8[1,96,96,8] but inference gives i8[1,48,48,8]");
    // The relu after it now disagrees too, but the first op in order is reported.
    let mut g = quantized_conv_graph();
    let z = find(&g, "z");
    g.value_mut(z).ty.dtype = U8;
    g.value_mut(z).ty.quant = Some(Quantization::per_tensor(0.05, 0));
    assert_rejects(&g, "op #1 (relu): result 0 'z' (#4) is declared u8[1,48,48,8] but inference gives i8[1,48,48,8]");
}

#[test]
fn op_level_errors_name_the_op() {
    let mut g = quantized_conv_graph();
    let w = find(&g, "w");
    let wt = ty(I8, &[8, 3, 3, 4]).with_quant(Quantization::per_channel(vec![0.01; 8], vec![0; 8], 0));
    g.value_mut(w).data = Some(zeros(&wt));
    g.value_mut(w).ty = wt;
    assert_eq!(err_text(&g), "op #0 (conv_2d): filter has 4 input channels but input has 3");
}

#[test]
fn graph_interface_rules() {
    // A graph input may not be a constant.
    let mut g = Graph::new("g");
    let c = g.add_input("c", ty(F32, &[1]));
    g.value_mut(c).data = Some(Constant::from(vec![0u8; 4]));
    g.outputs.push(c);
    assert_rejects(&g, "value 'c' (#0): is a graph input but is a constant");
    // Nor produced by an op.
    let mut g = Graph::new("g");
    let x = g.add_input("x", ty(F32, &[1]));
    let y = g.add_input("y", ty(F32, &[1]));
    g.add_op(Operation::new(Op::Relu, vec![Some(x)], vec![y])).unwrap();
    g.outputs.push(y);
    assert_rejects(&g, "value 'y' (#1): is a graph input but is produced by op #0");
    // Interface ids must exist.
    let mut g = Graph::new("g");
    g.outputs.push(ValueId(7));
    assert_eq!(err_text(&g), "graph 'g': graph output 0 refers to value #7, which does not exist");
}

#[test]
fn module_reports_the_graph_and_checks_signatures() {
    let good = quantized_conv_graph();
    let mut bad = Graph::new("body");
    let ghost = bad.add_value(Value::new("ghost", ty(F32, &[2])));
    bad.outputs.push(ghost);
    let mut m = Module { graphs: vec![good, bad], ..Default::default() };
    assert_eq!(
        verify_module(&m).unwrap_err().to_string(),
        "graph '#1 body': output 0: value 'ghost' (#0) is dangling: no op produces it and it is not a \
         graph input, constant or variable"
    );
    m.graphs.pop();
    let x = m.graphs[0].inputs[0];
    let z = m.graphs[0].outputs[0];
    let sig = |graph, input| Signature {
        key: "serving_default".to_string(),
        graph,
        inputs: vec![("image".to_string(), input)],
        outputs: vec![("logits".to_string(), z)],
    };
    m.signatures = vec![sig(0, x)];
    assert_eq!(verify_module(&m), Ok(()));
    m.signatures = vec![sig(3, x)];
    assert!(verify_module(&m).unwrap_err().to_string().contains("runs graph #3, but there are 1 graphs"));
    m.signatures = vec![sig(0, z)];
    assert!(verify_module(&m)
        .unwrap_err()
        .to_string()
        .contains("signature 'serving_default' input 'image' is value #4, which is not a graph input"));
}

#[test]
fn opaque_ops_are_not_shape_checked() {
    let mut g = Graph::new("g");
    let x = g.add_input("x", ty(F32, &[2]));
    let y = g.add_value(Value::new("y", ty(I64, &[9, 9])));
    let op = Op::Opaque(crate::op::OpaqueOp {
        name: "CUSTOM_THING".to_string(),
        builtin_code: None,
        options: Default::default(),
        custom_options: Default::default(),
    });
    g.add_op(Operation::new(op, vec![Some(x)], vec![y])).unwrap();
    g.outputs.push(y);
    assert_eq!(verify_graph(&g), Ok(()));
}

#[test]
fn verifies_a_long_chain_quickly() {
    // Linear work: 20k ops verify well within a test's budget even in debug builds.
    let mut g = Graph::new("chain");
    let mut prev = g.add_input("x", ty(F32, &[1, 16]));
    for i in 0..20_000 {
        let next = g.add_value(Value::new(format!("v{i}"), ty(F32, &[1, 16])));
        g.add_op(Operation::new(Op::Relu, vec![Some(prev)], vec![next])).unwrap();
        prev = next;
    }
    g.outputs.push(prev);
    assert_eq!(verify_graph(&g), Ok(()));
}

/// A module with an IF (graphs 1 and 2) and a WHILE (cond 3, body 4), shaped like the
/// TF converter's output for `tf.cond` and `tf.while_loop`.
const CONTROL_FLOW: &str = r#"module {
  graph @main(%arg0: tensor<1x8xf32>, %arg1: tensor<i32>) {
    %c0 = const dense<[2]> : tensor<i32>
    %c1 = const dense<[0]> : tensor<i32>
    %0 = greater(%arg1, %c0) : tensor<bool>
    %1 = if(%0, %arg0) {then_graph = 2, else_graph = 1} : tensor<1x8xf32>
    %2:3 = while(%c1, %1, %arg1) {cond_graph = 3, body_graph = 4} : tensor<i32>, tensor<1x8xf32>, tensor<i32>
    return %2#1
  }

  graph @else(%arg0: tensor<1x8xf32>) {
    %c0 = const dense<[1.0]> : tensor<f32>
    %0 = sub(%arg0, %c0) : tensor<1x8xf32>
    return %0
  }

  graph @then(%arg0: tensor<1x8xf32>) {
    %c0 = const dense<[2.0]> : tensor<f32>
    %0 = mul(%arg0, %c0) : tensor<1x8xf32>
    return %0
  }

  graph @cond(%arg0: tensor<i32>, %arg1: tensor<1x8xf32>, %arg2: tensor<i32>) {
    %0 = less(%arg0, %arg2) : tensor<bool>
    return %0
  }

  graph @body(%arg0: tensor<i32>, %arg1: tensor<1x8xf32>, %arg2: tensor<i32>) {
    %c0 = const dense<[1]> : tensor<i32>
    %0 = add(%arg0, %c0) : tensor<i32>
    %1 = tanh(%arg1) : tensor<1x8xf32>
    return %0, %1, %arg2
  }
}
"#;

fn control_flow() -> Module {
    crate::parse::parse_module(CONTROL_FLOW).unwrap()
}

fn call_error(m: &Module) -> String {
    verify_module(m).expect_err("module should be rejected").to_string()
}

/// The first op of graph 0 with the given mnemonic.
fn op_named(m: &Module, mnemonic: &str) -> OpId {
    let g = &m.graphs[0];
    g.op_ids().find(|&id| g.op(id).op.mnemonic() == mnemonic).unwrap()
}

#[test]
fn control_flow_module_verifies_and_prints_back() {
    let m = control_flow();
    assert_eq!(verify_module(&m), Ok(()));
    let printed = crate::print::print_module(&m, &crate::print::PrintOptions::default());
    assert_eq!(printed, CONTROL_FLOW);
    assert_eq!(
        crate::shape::infer_call_types(&m, &Op::If { then_graph: 2, else_graph: 1 }),
        Some(vec![ty(F32, &[1, 8])])
    );
}

#[test]
fn calls_out_of_range_or_into_main_are_rejected() {
    let mut m = control_flow();
    let id = op_named(&m, "if");
    *m.graphs[0].op_kind_mut(id) = Op::If { then_graph: 9, else_graph: 1 };
    assert_eq!(call_error(&m), "graph '#0 main': op #1 (if): then graph #9 does not exist (the module has 5 graphs)");
    *m.graphs[0].op_kind_mut(id) = Op::If { then_graph: 2, else_graph: 0 };
    assert!(call_error(&m).contains("else graph is the main graph #0"), "{}", call_error(&m));
}

#[test]
fn recursion_between_callees_is_rejected() {
    let mut m = control_flow();
    // The else graph calls the then graph, which calls the else graph.
    for (caller, callee) in [(1usize, 2u32), (2, 1)] {
        let g = &mut m.graphs[caller];
        let x = g.inputs[0];
        let c = g.add_const("c", ty(Bool, &[]), Constant::from(vec![1u8]));
        let out = g.add_value(Value::new("r", ty(F32, &[1, 8])));
        g.add_op(Operation::new(Op::If { then_graph: callee, else_graph: callee }, vec![Some(c), Some(x)], vec![out]))
            .unwrap();
    }
    assert!(call_error(&m).contains("already on the call stack (recursion)"), "{}", call_error(&m));
}

#[test]
fn call_arity_and_types_must_match_the_callee() {
    let mut m = control_flow();
    // The body returns i32 where the loop state holds f32.
    let body = &mut m.graphs[4];
    let first = body.outputs[0];
    body.outputs[1] = first;
    assert_eq!(
        call_error(&m),
        "graph '#0 main': op #2 (while): results vs body graph #4 outputs: 1 is f32[1,8] vs i32[]"
    );
    let mut m = control_flow();
    m.graphs[3].add_input("extra", ty(F32, &[1]));
    assert!(call_error(&m).contains("operands vs cond graph #3 inputs: 3 vs 4"), "{}", call_error(&m));
    // An IF condition must be a bool.
    let mut m = control_flow();
    let id = op_named(&m, "if");
    let arg1 = m.graphs[0].inputs[1];
    m.graphs[0].set_input(id, 0, Some(arg1));
    assert!(call_error(&m).contains("condition is i32[], expected a one-element bool"), "{}", call_error(&m));
}

#[test]
fn comparisons_infer_bool_and_broadcast() {
    let mut g = Graph::new("g");
    let a = g.add_input("a", ty(I8, &[2, 1]));
    let b = g.add_input("b", ty(I8, &[3]));
    let out = g.add_value(Value::new("o", ty(Bool, &[2, 3])));
    g.add_op(Operation::new(Op::GreaterEqual, vec![Some(a), Some(b)], vec![out])).unwrap();
    g.outputs.push(out);
    assert_eq!(verify_graph(&g), Ok(()));
    g.value_mut(out).ty = ty(I8, &[2, 3]);
    assert_rejects(&g, "bool[2,3]");
}
