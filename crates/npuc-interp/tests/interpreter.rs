//! The run loop itself: input checking, observers, degenerate graphs, opaque ops.

use npuc_interp::{Data, InterpError, Interpreter, Observer, Options, Tensor};
use npuc_ir::{DType, Graph, Op, OpaqueOp, Operation, TensorType, Value, ValueId};

fn f32_ty(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// `x → reshape → reshape`, which only needs data movement.
fn chain() -> Graph {
    let mut g = Graph::new("main");
    let x = g.add_input("x", f32_ty(&[2, 3]));
    let shape =
        g.add_const("s", TensorType::new(DType::I32, vec![1]), npuc_ir::Constant::from(6i32.to_le_bytes().to_vec()));
    let y = g.add_value(Value::new("y", f32_ty(&[6])));
    g.add_op(Operation::new(Op::Reshape { new_shape: None }, vec![Some(x), Some(shape)], vec![y])).unwrap();
    let shape2 = g.add_const(
        "s2",
        TensorType::new(DType::I32, vec![2]),
        npuc_ir::Constant::from([3i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
    );
    let z = g.add_value(Value::new("z", f32_ty(&[3, 2])));
    g.add_op(Operation::new(Op::Reshape { new_shape: None }, vec![Some(y), Some(shape2)], vec![z])).unwrap();
    g.outputs.push(z);
    g
}

#[test]
fn inputs_must_match_the_declared_type() {
    let g = chain();
    let it = Interpreter::new(&g, &Options::default()).unwrap();
    let wrong = Tensor::new(vec![3, 2], Data::F32(vec![0.0; 6])).unwrap();
    let e = it.run(vec![wrong]).unwrap_err();
    assert!(matches!(&e, InterpError::Input { name, .. } if name == "x"), "{e}");
    let e = it.run(vec![]).unwrap_err();
    assert!(e.to_string().contains("1 inputs, 0 were given"), "{e}");
    let ok = Tensor::new(vec![2, 3], Data::F32((0..6).map(|i| i as f32).collect())).unwrap();
    let out = it.run(vec![ok]).unwrap();
    assert_eq!(out[0].shape, vec![3, 2]);
    assert_eq!(out[0].data, Data::F32((0..6).map(|i| i as f32).collect()));
}

struct Recorder(Vec<(ValueId, bool)>);

impl Observer for Recorder {
    fn observe(&mut self, _g: &Graph, v: ValueId, producer: Option<npuc_ir::OpId>, _t: &Tensor) {
        self.0.push((v, producer.is_some()));
    }
}

#[test]
fn observers_see_every_value_in_order() {
    let g = chain();
    let it = Interpreter::new(&g, &Options { threads: 1 }).unwrap();
    let mut rec = Recorder(Vec::new());
    let x = Tensor::new(vec![2, 3], Data::F32(vec![1.0; 6])).unwrap();
    it.run_observed(vec![x], Some(&mut rec)).unwrap();
    let names: Vec<(&str, bool)> = rec.0.iter().map(|(v, p)| (g.value(*v).name.as_str(), *p)).collect();
    assert_eq!(names, vec![("x", false), ("y", true), ("z", true)]);
}

#[test]
fn zero_size_values_are_rejected_by_name() {
    let mut g = Graph::new("main");
    let x = g.add_input("empty", f32_ty(&[1, 0, 4]));
    let y = g.add_value(Value::new("y", f32_ty(&[1, 0, 4])));
    g.add_op(Operation::new(Op::Relu, vec![Some(x)], vec![y])).unwrap();
    g.outputs.push(y);
    let e = Interpreter::new(&g, &Options::default()).err().unwrap();
    assert!(e.to_string().contains("'empty'") && e.to_string().contains("zero-size"), "{e}");
}

#[test]
fn opaque_ops_are_named_with_their_position() {
    let mut g = Graph::new("main");
    let x = g.add_input("x", f32_ty(&[2]));
    let y = g.add_value(Value::new("y", f32_ty(&[2])));
    let custom = OpaqueOp {
        name: "MyCustomOp".into(),
        builtin_code: None,
        options: Default::default(),
        custom_options: Default::default(),
    };
    g.add_op(Operation::new(Op::Opaque(custom), vec![Some(x)], vec![y])).unwrap();
    g.outputs.push(y);
    let e = Interpreter::new(&g, &Options::default()).err().unwrap();
    assert_eq!(e.to_string(), "op #0 (MyCustomOp): npuc has no kernel for this operator (it is kept opaque)");
}

#[test]
fn elided_constants_cannot_run() {
    let mut g = Graph::new("main");
    let x = g.add_input("x", f32_ty(&[4]));
    let c = g.add_const("w", f32_ty(&[4]), npuc_ir::Constant::elided("0123456789abcdef", 16));
    let y = g.add_value(Value::new("y", f32_ty(&[4])));
    g.add_op(Operation::new(
        Op::Add { activation: Default::default(), pot_scale_int16: true },
        vec![Some(x), Some(c)],
        vec![y],
    ))
    .unwrap();
    g.outputs.push(y);
    let e = Interpreter::new(&g, &Options::default()).err().unwrap();
    assert!(e.to_string().contains("constant 'w'") && e.to_string().contains("elided"), "{e}");
}
