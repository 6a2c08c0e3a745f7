//! Shape inference tests: one positive and one error case per op family at least, with
//! expected sizes computed by hand from the TFLite formulas.

use super::*;
use crate::constant::Constant;
use crate::graph::Operation;
use crate::op::*;
use crate::types::{DimFormat, DimMetadata, Quantization, Sparsity};
use DType::*;

fn val(d: DType, s: &[usize]) -> Value {
    Value::new("x", TensorType::new(d, s.to_vec()))
}

fn c32(vals: &[i32], shape: &[usize]) -> Value {
    let mut v = val(I32, shape);
    v.name = "c".to_string();
    v.data = Some(Constant::from(vals.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()));
    v
}

fn c64(vals: &[i64], shape: &[usize]) -> Value {
    let mut v = val(I64, shape);
    v.name = "c".to_string();
    v.data = Some(Constant::from(vals.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()));
    v
}

fn vec32(vals: &[i32]) -> Value {
    c32(vals, &[vals.len()])
}

fn run(op: &Op, inputs: &[&Value], outputs: usize) -> Result<Vec<InferredType>, String> {
    let ins: Vec<Option<&Value>> = inputs.iter().map(|v| Some(*v)).collect();
    infer(op, &ins, outputs)
}

/// Infers a single-result op and returns its (fully known) dtype and shape.
fn one(op: &Op, inputs: &[&Value]) -> (DType, Vec<usize>) {
    let r = run(op, inputs, 1).unwrap_or_else(|e| panic!("{} failed: {e}", op.mnemonic()));
    assert_eq!(r.len(), 1);
    (r[0].dtype.expect("dtype known"), r[0].shape.clone().expect("shape known"))
}

fn shape_of(op: &Op, inputs: &[&Value]) -> Vec<usize> {
    one(op, inputs).1
}

fn fails(op: &Op, inputs: &[&Value]) -> String {
    match run(op, inputs, 1) {
        Ok(t) => panic!("{} unexpectedly gave {t:?}", op.mnemonic()),
        Err(e) => e,
    }
}

fn assert_err(op: &Op, inputs: &[&Value], needle: &str) {
    let e = fails(op, inputs);
    assert!(e.contains(needle), "error {e:?} does not mention {needle:?}");
}

fn conv(padding: Padding, stride: u32, dilation: u32) -> Op {
    Op::Conv2d(Conv2dAttrs {
        padding,
        stride: [stride, stride],
        dilation: [dilation, dilation],
        activation: Activation::None,
        bias_type: None,
    })
}

fn dwconv(padding: Padding, stride: u32) -> Op {
    Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
        padding,
        stride: [stride, stride],
        dilation: [1, 1],
        depth_multiplier: 1,
        activation: Activation::None,
    })
}

fn pool(padding: Padding, filter: u32, stride: u32) -> Op {
    Op::MaxPool2d(Pool2dAttrs {
        padding,
        stride: [stride, stride],
        filter: [filter, filter],
        activation: Activation::None,
    })
}

fn add() -> Op {
    Op::Add { activation: Activation::None, pot_scale_int16: false }
}

// ---- padding.h formulas ----

#[test]
fn window_sizes_match_hand_computed_values() {
    use Padding::*;
    // MobileNetV2 stem at 96x96: SAME, 3x3, stride 2 -> ceil(96 / 2) = 48.
    assert_eq!(window_output_size(Same, 96, 3, 2, 1), Ok(48));
    // SAME with an odd input: ceil(5 / 2) = 3.
    assert_eq!(window_output_size(Same, 5, 3, 2, 1), Ok(3));
    // VALID 224, 3x3, stride 2: (224 - 3) / 2 + 1 = 111.
    assert_eq!(window_output_size(Valid, 224, 3, 2, 1), Ok(111));
    // Dilation 2 makes a 3-tap window span 5: VALID 10 -> 10 - 5 + 1 = 6.
    assert_eq!(window_output_size(Valid, 10, 3, 1, 2), Ok(6));
    // SAME ignores the window: ceil(10 / 1) = 10 whatever the dilation.
    assert_eq!(window_output_size(Same, 10, 3, 1, 4), Ok(10));
    // Window exactly the input: one output.
    assert_eq!(window_output_size(Valid, 7, 7, 1, 1), Ok(1));
    // VALID 7, 3x3, stride 2, dilation 2 (span 5): (7 - 5) / 2 + 1 = 2.
    assert_eq!(window_output_size(Valid, 7, 3, 2, 2), Ok(2));
}

#[test]
fn window_size_errors_instead_of_dividing_by_zero() {
    assert!(window_output_size(Padding::Same, 8, 3, 0, 1).unwrap_err().contains("stride 0"));
    assert!(window_output_size(Padding::Same, 8, 3, 1, 0).unwrap_err().contains("dilation 0"));
    assert!(window_output_size(Padding::Valid, 8, 0, 1, 1).unwrap_err().contains("window size is 0"));
    assert!(window_output_size(Padding::Valid, 4, 3, 1, 2).unwrap_err().contains("larger than the input"));
    assert!(window_output_size(Padding::Valid, 4, usize::MAX, 1, 2).is_err());
}

// ---- convolutions ----

#[test]
fn conv2d_same_stride_2() {
    let x = val(F32, &[1, 96, 96, 3]);
    let w = val(F32, &[32, 3, 3, 3]);
    let b = val(F32, &[32]);
    assert_eq!(one(&conv(Padding::Same, 2, 1), &[&x, &w, &b]), (F32, vec![1, 48, 48, 32]));
    // VALID with dilation 2 on 10x10: span 5 -> 6.
    let x = val(I8, &[2, 10, 10, 8]);
    let w = val(I8, &[4, 3, 3, 8]);
    assert_eq!(one(&conv(Padding::Valid, 1, 2), &[&x, &w]), (I8, vec![2, 6, 6, 4]));
}

#[test]
fn conv2d_grouped() {
    // 8 input channels, filter takes 4: two groups of 8 output channels each.
    let x = val(F32, &[1, 5, 5, 8]);
    let w = val(F32, &[16, 1, 1, 4]);
    assert_eq!(shape_of(&conv(Padding::Valid, 1, 1), &[&x, &w]), vec![1, 5, 5, 16]);
    let w = val(F32, &[15, 1, 1, 4]);
    assert_err(&conv(Padding::Valid, 1, 1), &[&x, &w], "15 output channels do not divide into 2 groups");
}

#[test]
fn conv2d_errors() {
    let x = val(F32, &[1, 8, 8, 8]);
    let w = val(F32, &[16, 3, 3, 3]);
    assert_err(&conv(Padding::Same, 1, 1), &[&x, &w], "filter has 3 input channels but input has 8");
    let w = val(F32, &[16, 3, 3, 8]);
    assert_err(&conv(Padding::Same, 0, 1), &[&x, &w], "height: stride 0 is not positive");
    assert_err(&conv(Padding::Same, 1, 0), &[&x, &w], "dilation 0");
    assert_err(&conv(Padding::Same, 1, 1), &[&x, &val(F32, &[16, 0, 3, 8])], "zero dimension");
    assert_err(&conv(Padding::Same, 1, 1), &[&x, &w, &val(F32, &[8])], "bias has 8 elements but there are 16");
    assert_err(&conv(Padding::Same, 1, 1), &[&x], "expects 2 to 3 operands, has 1");
    assert_err(&conv(Padding::Same, 1, 1), &[&val(F32, &[8, 8, 8]), &w], "input must have rank 4");
    assert_err(&conv(Padding::Same, 1, 1), &[&val(Bool, &[1, 8, 8, 8]), &w], "input has dtype bool");
    // A quantized bias must be symmetric.
    let xq = val(I8, &[1, 8, 8, 8]);
    let wq = val(I8, &[16, 3, 3, 8]);
    let mut bq = val(I32, &[16]);
    bq.ty.quant = Some(Quantization::per_tensor(0.1, 3));
    assert_err(&conv(Padding::Same, 1, 1), &[&xq, &wq, &bq], "quantized biases need zero point 0");
    assert_err(&conv(Padding::Same, 1, 1), &[&xq, &wq, &val(F32, &[16])], "bias has dtype f32");
}

#[test]
fn conv2d_optional_bias_may_be_omitted() {
    let x = val(U8, &[1, 4, 4, 2]);
    let w = val(U8, &[3, 2, 2, 2]);
    let r = infer(&conv(Padding::Valid, 2, 1), &[Some(&x), Some(&w), None], 1).unwrap();
    assert_eq!(r, vec![InferredType::known(U8, vec![1, 2, 2, 3])]);
    let r = infer(&conv(Padding::Valid, 2, 1), &[Some(&x), None], 1).unwrap_err();
    assert!(r.contains("operand 1 (filter) is missing"), "{r}");
}

#[test]
fn depthwise_conv() {
    let x = val(F32, &[1, 112, 112, 32]);
    let w = val(F32, &[1, 3, 3, 32]);
    assert_eq!(shape_of(&dwconv(Padding::Same, 1), &[&x, &w]), vec![1, 112, 112, 32]);
    assert_eq!(shape_of(&dwconv(Padding::Same, 2), &[&x, &w]), vec![1, 56, 56, 32]);
    // Depth multiplier 2 is derived from the channel counts.
    let w2 = val(F32, &[1, 3, 3, 64]);
    assert_eq!(shape_of(&dwconv(Padding::Valid, 1), &[&x, &w2, &val(F32, &[64])]), vec![1, 110, 110, 64]);
    assert_err(&dwconv(Padding::Same, 1), &[&x, &val(F32, &[2, 3, 3, 32])], "filter must be [1, h, w, channels]");
    assert_err(&dwconv(Padding::Same, 1), &[&x, &val(F32, &[1, 3, 3, 48])], "not a multiple of the input's 32");
}

#[test]
fn transpose_conv_reads_the_constant_output_shape() {
    let op = Op::TransposeConv(TransposeConvAttrs {
        padding: Padding::Same,
        stride: [2, 2],
        activation: Activation::None,
        bias_type: None,
    });
    let s = vec32(&[1, 8, 8, 16]);
    let w = val(F32, &[16, 3, 3, 4]);
    let x = val(F32, &[1, 4, 4, 4]);
    assert_eq!(one(&op, &[&s, &w, &x]), (F32, vec![1, 8, 8, 16]));
    assert_err(&op, &[&s, &val(F32, &[16, 3, 3, 5]), &x], "filter has 5 input channels but input has 4");
    assert_err(&op, &[&vec32(&[1, 8, 8, 15]), &w, &x], "output shape has 15 channels but the filter has 16");
    // Shape operand not constant, elided, or int64 (the kernel reads int32 only).
    assert_err(&op, &[&val(I32, &[4]), &w, &x], "output shape operand 'x' is not constant");
    let mut elided = val(I32, &[4]);
    elided.data = Some(Constant::elided("0123456789abcdef", 16));
    assert_err(&op, &[&elided, &w, &x], "is elided");
    assert_err(&op, &[&c64(&[1, 8, 8, 16], &[4]), &w, &x], "output shape has dtype i64");
    // Data of the wrong length is reported, not read past.
    let mut short = vec32(&[1, 8, 8, 16]);
    short.ty.shape = vec![5];
    assert_err(&op, &[&short, &w, &x], "holds 16 bytes but its type i32[5] needs 20");
}

#[test]
fn fully_connected_flattens_or_keeps_dims() {
    let fc = |keep: bool| {
        Op::FullyConnected(FullyConnectedAttrs {
            activation: Activation::None,
            keep_num_dims: keep,
            shuffled_weights: false,
            asymmetric_quantize_inputs: false,
            bias_type: None,
        })
    };
    // 1x7x7x64 = 3136 inputs per row.
    let x = val(F32, &[1, 7, 7, 64]);
    let w = val(F32, &[10, 3136]);
    assert_eq!(one(&fc(false), &[&x, &w, &val(F32, &[10])]), (F32, vec![1, 10]));
    // [4, 6] with depth 3 flattens to 8 rows.
    assert_eq!(shape_of(&fc(false), &[&val(F32, &[4, 6]), &val(F32, &[5, 3])]), vec![8, 5]);
    assert_eq!(shape_of(&fc(true), &[&val(F32, &[2, 5, 64]), &val(F32, &[8, 64])]), vec![2, 5, 8]);
    // Hybrid: float input, int8 weights, float output.
    assert_eq!(one(&fc(false), &[&val(F32, &[2, 16]), &val(I8, &[4, 16])]).0, F32);
    assert_err(&fc(false), &[&val(F32, &[1, 10]), &val(F32, &[3, 7])], "does not flatten into rows");
    assert_err(&fc(true), &[&val(F32, &[2, 5, 63]), &val(F32, &[8, 64])], "last dimension is 63");
    assert_err(&fc(false), &[&val(F32, &[1, 10]), &val(F32, &[3, 0])], "depth 0");
    assert_err(&fc(false), &[&val(F32, &[1, 10]), &val(F32, &[3, 10, 1])], "weights must have rank 2");
}

// ---- elementwise ----

#[test]
fn broadcasting_follows_numpy() {
    assert_eq!(broadcast_shapes(&[1, 4], &[3, 1]), Some(vec![3, 4]));
    assert_eq!(broadcast_shapes(&[2, 1, 5], &[4, 1]), Some(vec![2, 4, 5]));
    assert_eq!(broadcast_shapes(&[], &[2, 3]), Some(vec![2, 3]));
    assert_eq!(broadcast_shapes(&[0, 3], &[1, 3]), Some(vec![0, 3]));
    assert_eq!(broadcast_shapes(&[2, 3], &[3, 2]), None);
    assert_eq!(shape_of(&add(), &[&val(F32, &[1, 4]), &val(F32, &[3, 1])]), vec![3, 4]);
    assert_eq!(shape_of(&Op::Maximum, &[&val(I8, &[8]), &val(I8, &[])]), vec![8]);
    assert_err(&add(), &[&val(F32, &[1, 4]), &val(F32, &[1, 3])], "shapes [1,4] and [1,3] do not broadcast");
    assert_err(&Op::Mul { activation: Activation::None }, &[&val(F32, &[4]), &val(I8, &[4])], "rhs has dtype i8");
    assert_err(&add(), &[&val(F32, &[4])], "expects 2 operands, has 1");
}

#[test]
fn unary_ops_keep_the_input_type() {
    for op in [Op::Relu, Op::Relu6, Op::ReluN1To1, Op::LeakyRelu { alpha: 0.2 }, Op::HardSwish, Op::Logistic, Op::Tanh]
    {
        assert_eq!(one(&op, &[&val(I8, &[1, 3, 3, 2])]), (I8, vec![1, 3, 3, 2]), "{}", op.mnemonic());
    }
    for op in [Op::Exp, Op::Sqrt, Op::Rsqrt] {
        assert_eq!(one(&op, &[&val(F32, &[5])]), (F32, vec![5]));
    }
    assert_err(&Op::Relu, &[&val(Bool, &[2])], "input has dtype bool");
    assert_err(&Op::Tanh, &[&val(F32, &[2]), &val(F32, &[2])], "expects 1 operand, has 2");
    assert_eq!(shape_of(&Op::Softmax { beta: 1.0 }, &[&val(F32, &[1, 1001])]), vec![1, 1001]);
    assert_err(&Op::Softmax { beta: 1.0 }, &[&val(F32, &[])], "rank 1 or more");
    let l2 = Op::L2Normalization { activation: Activation::None };
    assert_eq!(shape_of(&l2, &[&val(F32, &[2, 128])]), vec![2, 128]);
    assert_err(&l2, &[&val(I32, &[2, 128])], "input has dtype i32");
}

#[test]
fn prelu_broadcasts_alpha() {
    assert_eq!(shape_of(&Op::Prelu, &[&val(F32, &[1, 4, 4, 8]), &val(F32, &[1, 1, 8])]), vec![1, 4, 4, 8]);
    assert_err(&Op::Prelu, &[&val(F32, &[1, 4, 4, 8]), &val(F32, &[3])], "do not broadcast");
    assert_err(&Op::Prelu, &[&val(F32, &[1, 4]), &val(I8, &[4])], "alpha has dtype i8 but input has f32");
}

#[test]
fn quantize_and_dequantize_dtypes() {
    // QUANTIZE: the target dtype is the model's choice, so it is left undetermined.
    let r = run(&Op::Quantize, &[&val(F32, &[1, 8])], 1).unwrap();
    assert_eq!(r, vec![InferredType { dtype: None, shape: Some(vec![1, 8]) }]);
    assert!(r[0].matches(&TensorType::new(I8, vec![1, 8])));
    assert!(!r[0].matches(&TensorType::new(I8, vec![8])));
    assert_eq!(one(&Op::Dequantize, &[&val(I8, &[3, 3])]), (F32, vec![3, 3]));
    assert_eq!(one(&Op::Dequantize, &[&val(F16, &[7])]), (F32, vec![7]));
    assert_err(&Op::Dequantize, &[&val(F32, &[7])], "input has dtype f32");
    assert_err(&Op::Quantize, &[&val(Bool, &[7])], "input has dtype bool");
}

#[test]
fn densify_needs_a_sparse_constant() {
    let mut w = val(F32, &[4, 4]);
    w.data = Some(Constant::from(vec![0u8; 8]));
    w.sparsity = Some(Sparsity {
        traversal_order: vec![0, 1],
        block_map: vec![],
        dim_metadata: vec![
            DimMetadata { format: DimFormat::Dense, dense_size: 4, array_segments: None, array_indices: None },
            DimMetadata { format: DimFormat::Dense, dense_size: 4, array_segments: None, array_indices: None },
        ],
    });
    assert_eq!(one(&Op::Densify, &[&w]), (F32, vec![4, 4]));
    assert_err(&Op::Densify, &[&val(F32, &[4, 4])], "is not a sparse constant");
}

// ---- pooling and reductions ----

#[test]
fn pools() {
    assert_eq!(shape_of(&pool(Padding::Same, 3, 2), &[&val(F32, &[1, 112, 112, 64])]), vec![1, 56, 56, 64]);
    // VALID 2x2 stride 2 on 7: (7 - 2) / 2 + 1 = 3.
    assert_eq!(shape_of(&pool(Padding::Valid, 2, 2), &[&val(I8, &[1, 7, 7, 8])]), vec![1, 3, 3, 8]);
    let avg = Op::AveragePool2d(Pool2dAttrs {
        padding: Padding::Valid,
        stride: [1, 1],
        filter: [7, 7],
        activation: Activation::None,
    });
    assert_eq!(shape_of(&avg, &[&val(U8, &[1, 7, 7, 1280])]), vec![1, 1, 1, 1280]);
    assert_err(&pool(Padding::Valid, 0, 1), &[&val(F32, &[1, 7, 7, 8])], "window size is 0");
    assert_err(&pool(Padding::Valid, 8, 1), &[&val(F32, &[1, 7, 7, 8])], "larger than the input extent 7");
    assert_err(&pool(Padding::Same, 2, 2), &[&val(F32, &[7, 7, 8])], "input must have rank 4");
}

#[test]
fn mean_and_sum_axes() {
    let x = val(F32, &[1, 7, 7, 64]);
    let keep = Op::Mean { keep_dims: true };
    let drop = Op::Mean { keep_dims: false };
    assert_eq!(shape_of(&keep, &[&x, &vec32(&[1, 2])]), vec![1, 1, 1, 64]);
    assert_eq!(shape_of(&drop, &[&x, &vec32(&[1, 2])]), vec![1, 64]);
    assert_eq!(shape_of(&drop, &[&x, &vec32(&[-1])]), vec![1, 7, 7]);
    // 1 and -3 name the same axis of a rank-4 tensor: reduced once.
    assert_eq!(shape_of(&Op::Sum { keep_dims: false }, &[&x, &vec32(&[1, -3])]), vec![1, 7, 64]);
    // A scalar axis and int64 axes work too.
    assert_eq!(shape_of(&drop, &[&x, &c32(&[3], &[])]), vec![1, 7, 7]);
    assert_eq!(shape_of(&drop, &[&x, &c64(&[0, 3], &[2])]), vec![7, 7]);
    // No axes: nothing reduced.
    assert_eq!(shape_of(&drop, &[&x, &c32(&[], &[0])]), vec![1, 7, 7, 64]);
    assert_err(&drop, &[&x, &vec32(&[4])], "axis 4 is out of range for rank 4");
    assert_err(&keep, &[&x, &vec32(&[-5])], "axis -5 is out of range");
    assert_err(&drop, &[&x, &val(I32, &[2])], "axes operand 'x' is not constant");
    assert_err(&drop, &[&x, &c32(&[1, 2], &[1, 2])], "axes must be a scalar or a vector");
}

// ---- shape manipulation ----

#[test]
fn reshape_shapes() {
    let x = val(F32, &[2, 3, 4]);
    let op = Op::Reshape { new_shape: None };
    assert_eq!(shape_of(&op, &[&x, &vec32(&[-1, 4])]), vec![6, 4]);
    assert_eq!(shape_of(&op, &[&x, &c64(&[4, -1], &[2])]), vec![4, 6]);
    // From the attribute alone.
    let attr = Op::Reshape { new_shape: Some(vec![24]) };
    assert_eq!(shape_of(&attr, &[&x]), vec![24]);
    // A non-constant shape tensor falls back to the attribute.
    assert_eq!(shape_of(&attr, &[&x, &val(I32, &[1])]), vec![24]);
    // Scalars: an empty shape operand, TFLite's legacy [0] attribute, or no attribute.
    let one_elem = val(F32, &[1, 1]);
    assert_eq!(shape_of(&op, &[&one_elem, &c32(&[], &[0])]), Vec::<usize>::new());
    assert_eq!(shape_of(&Op::Reshape { new_shape: Some(vec![0]) }, &[&one_elem]), Vec::<usize>::new());
    assert_eq!(shape_of(&op, &[&one_elem]), Vec::<usize>::new());
    // Zero-element tensors reshape when the counts agree.
    assert_eq!(shape_of(&op, &[&val(F32, &[0, 3]), &vec32(&[3, 0])]), vec![3, 0]);
    assert_err(&op, &[&x, &vec32(&[-1, -1])], "more than one -1");
    assert_err(&op, &[&x, &vec32(&[5, 5])], "cannot reshape [2,3,4] (24 elements) into [5,5] (25 elements)");
    assert_err(&op, &[&x, &vec32(&[-1, 5])], "cannot reshape [2,3,4] (24 elements) into [-1, 5]");
    assert_err(&op, &[&x, &vec32(&[-2, 12])], "negative dimension -2");
    assert_err(&op, &[&x, &vec32(&[0, -1])], "multiply to 0");
    assert_err(&op, &[&x, &val(I32, &[2])], "shape operand 'x' is not constant");
}

#[test]
fn squeeze_and_expand_dims() {
    let x = val(F32, &[1, 3, 1, 2]);
    assert_eq!(shape_of(&Op::Squeeze { axes: vec![] }, &[&x]), vec![3, 2]);
    assert_eq!(shape_of(&Op::Squeeze { axes: vec![-2] }, &[&x]), vec![1, 3, 2]);
    assert_eq!(shape_of(&Op::Squeeze { axes: vec![0, 2, 0] }, &[&x]), vec![3, 2]);
    assert_err(&Op::Squeeze { axes: vec![1] }, &[&x], "cannot squeeze dimension 1 of size 3");
    assert_err(&Op::Squeeze { axes: vec![4] }, &[&x], "squeeze axis 4 is out of range");

    let y = val(I8, &[2, 3]);
    assert_eq!(shape_of(&Op::ExpandDims, &[&y, &c32(&[0], &[])]), vec![1, 2, 3]);
    assert_eq!(shape_of(&Op::ExpandDims, &[&y, &vec32(&[-1])]), vec![2, 3, 1]);
    assert_eq!(shape_of(&Op::ExpandDims, &[&y, &c64(&[2], &[1])]), vec![2, 3, 1]);
    assert_err(&Op::ExpandDims, &[&y, &vec32(&[3])], "axis 3 is out of range for rank 3");
    assert_err(&Op::ExpandDims, &[&y, &vec32(&[0, 1])], "exactly one value, holds 2");
}

#[test]
fn concatenation_sums_the_axis() {
    let op = |axis| Op::Concatenation { axis, activation: Activation::None };
    let a = val(F32, &[1, 2, 3]);
    let b = val(F32, &[1, 5, 3]);
    assert_eq!(shape_of(&op(1), &[&a, &b, &a]), vec![1, 9, 3]);
    assert_eq!(shape_of(&op(-2), &[&a, &b]), vec![1, 7, 3]);
    assert_err(&op(2), &[&a, &b], "input 1 has shape [1,5,3] which does not match input 0's [1,2,3] outside axis 2");
    assert_err(&op(1), &[&a, &val(I8, &[1, 5, 3])], "input 1 has dtype i8 but input 0 has f32");
    assert_err(&op(3), &[&a, &b], "axis 3 is out of range for rank 3");
    assert_err(&op(0), &[&a, &val(F32, &[2, 3])], "does not match");
}

#[test]
fn split_equal_parts() {
    let x = val(F32, &[1, 4, 4, 6]);
    let op = Op::Split { num_splits: 3 };
    let r = run(&op, &[&c32(&[3], &[]), &x], 3).unwrap();
    assert_eq!(r, vec![InferredType::known(F32, vec![1, 4, 4, 2]); 3]);
    let r = run(&op, &[&vec32(&[-1]), &x], 3).unwrap();
    assert_eq!(r[0].shape, Some(vec![1, 4, 4, 2]));
    assert!(run(&Op::Split { num_splits: 4 }, &[&vec32(&[3]), &x], 4)
        .unwrap_err()
        .contains("dimension 3 of size 6 does not split into 4 equal parts"));
    assert_eq!(run(&op, &[&vec32(&[3]), &x], 2).unwrap_err(), "expects 3 results, has 2");
    assert!(run(&Op::Split { num_splits: 0 }, &[&vec32(&[3]), &x], 0).unwrap_err().contains("num_splits is 0"));
}

#[test]
fn split_v_with_inferred_size() {
    let x = val(F32, &[10, 3]);
    let op = Op::SplitV { num_splits: 3 };
    let r = run(&op, &[&x, &vec32(&[2, -1, 3]), &c32(&[0], &[])], 3).unwrap();
    let shapes: Vec<_> = r.into_iter().map(|t| t.shape.unwrap()).collect();
    assert_eq!(shapes, vec![vec![2, 3], vec![5, 3], vec![3, 3]]);
    let r = run(&op, &[&x, &vec32(&[1, 1, 1]), &vec32(&[-1])], 3).unwrap();
    assert_eq!(r[2].shape, Some(vec![10, 1]));
    assert!(run(&op, &[&x, &vec32(&[2, 2, 3]), &vec32(&[0])], 3).unwrap_err().contains("do not add up"));
    assert!(run(&op, &[&x, &vec32(&[8, -1, 3]), &vec32(&[0])], 3).unwrap_err().contains("do not add up"));
    assert!(run(&op, &[&x, &vec32(&[-1, -1, 3]), &vec32(&[0])], 3).unwrap_err().contains("more than one -1"));
    assert!(run(&op, &[&x, &vec32(&[5, 5]), &vec32(&[0])], 3).unwrap_err().contains("num_splits is 3"));
}

#[test]
fn pack_and_unpack() {
    let a = val(F32, &[2, 3]);
    assert_eq!(shape_of(&Op::Pack { values_count: 3, axis: 1 }, &[&a, &a, &a]), vec![2, 3, 3]);
    assert_eq!(shape_of(&Op::Pack { values_count: 2, axis: -1 }, &[&a, &a]), vec![2, 3, 2]);
    assert_err(&Op::Pack { values_count: 3, axis: 0 }, &[&a, &a], "values_count is 3 but there are 2 inputs");
    assert_err(&Op::Pack { values_count: 2, axis: 0 }, &[&a, &val(F32, &[3, 2])], "input 1 has shape [3,2]");
    assert_err(&Op::Pack { values_count: 2, axis: 3 }, &[&a, &a], "axis 3 is out of range for rank 3");

    let x = val(I8, &[4, 5]);
    let r = run(&Op::Unpack { num: 4, axis: 0 }, &[&x], 4).unwrap();
    assert_eq!(r, vec![InferredType::known(I8, vec![5]); 4]);
    let r = run(&Op::Unpack { num: 5, axis: -1 }, &[&x], 5).unwrap();
    assert_eq!(r[0].shape, Some(vec![4]));
    assert!(run(&Op::Unpack { num: 3, axis: 0 }, &[&x], 3)
        .unwrap_err()
        .contains("num is 3 but dimension 0 has size 4"));
}

#[test]
fn pad_and_padv2() {
    let x = val(F32, &[1, 4, 4, 3]);
    let p = c32(&[0, 0, 1, 1, 2, 2, 0, 0], &[4, 2]);
    assert_eq!(shape_of(&Op::Pad, &[&x, &p]), vec![1, 6, 8, 3]);
    let p64 = c64(&[0, 0, 1, 0, 0, 3, 0, 0], &[4, 2]);
    assert_eq!(shape_of(&Op::Pad, &[&x, &p64]), vec![1, 5, 7, 3]);
    assert_eq!(shape_of(&Op::PadV2, &[&x, &p, &val(F32, &[])]), vec![1, 6, 8, 3]);
    assert_err(&Op::PadV2, &[&x, &p, &val(I8, &[])], "pad value has dtype i8 but input has f32");
    assert_err(&Op::PadV2, &[&x, &p, &val(F32, &[2])], "pad value must have one element");
    assert_err(
        &Op::Pad,
        &[&x, &c32(&[0, 0, -1, 0, 0, 0, 0, 0], &[4, 2])],
        "padding [-1, 0] of dimension 1 is negative",
    );
    assert_err(&Op::Pad, &[&x, &c32(&[0; 6], &[3, 2])], "paddings must have shape [4,2], has [3,2]");
    // A padding that would exceed the element limit is reported, not allocated.
    let big = c64(&[0, 0, 0, 1 << 40, 0, 0, 0, 0], &[4, 2]);
    assert_err(&Op::Pad, &[&x, &big], "more than 2^32 elements");
}

fn ss(begin_mask: i32, end_mask: i32, ellipsis_mask: i32, new_axis_mask: i32, shrink_axis_mask: i32) -> Op {
    Op::StridedSlice(StridedSliceAttrs {
        begin_mask,
        end_mask,
        ellipsis_mask,
        new_axis_mask,
        shrink_axis_mask,
        offset: false,
    })
}

fn slice_shape(op: &Op, x: &[usize], begin: &[i32], end: &[i32], strides: &[i32]) -> Result<Vec<usize>, String> {
    run(op, &[&val(F32, x), &vec32(begin), &vec32(end), &vec32(strides)], 1).map(|r| r[0].shape.clone().unwrap())
}

#[test]
fn strided_slice_basic_and_negative_indices() {
    let plain = ss(0, 0, 0, 0, 0);
    assert_eq!(slice_shape(&plain, &[4], &[1], &[3], &[1]), Ok(vec![2]));
    // x[-3:-1] on 10 -> indices 7, 8.
    assert_eq!(slice_shape(&plain, &[10], &[-3], &[-1], &[1]), Ok(vec![2]));
    // x[1:8:2] -> 1, 3, 5, 7.
    assert_eq!(slice_shape(&plain, &[10], &[1], &[8], &[2]), Ok(vec![4]));
    // x[-1:0:-1] on 10 -> 9 down to 1: 9 elements.
    assert_eq!(slice_shape(&plain, &[10], &[-1], &[0], &[-1]), Ok(vec![9]));
    // x[-1::-1] (end masked) -> all 10.
    assert_eq!(slice_shape(&ss(0, 1, 0, 0, 0), &[10], &[-1], &[0], &[-1]), Ok(vec![10]));
    // x[::-1] with both masks.
    assert_eq!(slice_shape(&ss(1, 1, 0, 0, 0), &[5], &[0], &[0], &[-1]), Ok(vec![5]));
    // Out-of-range indices clamp: x[2:100] on 5 -> 3; an empty range gives 0.
    assert_eq!(slice_shape(&plain, &[5], &[2], &[100], &[1]), Ok(vec![3]));
    assert_eq!(slice_shape(&plain, &[5], &[4], &[1], &[1]), Ok(vec![0]));
    // Masks per dimension: x[:3, 2:] on [5,6].
    assert_eq!(slice_shape(&ss(1, 2, 0, 0, 0), &[5, 6], &[1, 2], &[3, 4], &[1, 1]), Ok(vec![3, 4]));
    // A short spec leaves trailing dimensions whole.
    assert_eq!(slice_shape(&plain, &[2, 3, 4], &[1], &[2], &[1]), Ok(vec![1, 3, 4]));
}

#[test]
fn strided_slice_shrink_new_axis_and_ellipsis() {
    // x[1] on [3,4] -> [4].
    assert_eq!(slice_shape(&ss(0, 0, 0, 0, 1), &[3, 4], &[1, 0], &[2, 4], &[1, 1]), Ok(vec![4]));
    // x[:, -1] on [2,3] -> [2].
    assert_eq!(slice_shape(&ss(1, 1, 0, 0, 2), &[2, 3], &[0, -1], &[0, 0], &[1, 1]), Ok(vec![2]));
    // x[None, :3, :4] on [3,4] -> [1,3,4].
    assert_eq!(slice_shape(&ss(0, 0, 0, 1, 0), &[3, 4], &[0, 0, 0], &[0, 3, 4], &[1, 1, 1]), Ok(vec![1, 3, 4]));
    // x[..., 1:3] on [2,3,4,5] -> [2,3,4,2].
    assert_eq!(slice_shape(&ss(0, 0, 1, 0, 0), &[2, 3, 4, 5], &[0, 1], &[0, 3], &[1, 1]), Ok(vec![2, 3, 4, 2]));
    // x[..., None] on [2,3] -> [2,3,1].
    assert_eq!(slice_shape(&ss(0, 0, 1, 2, 0), &[2, 3], &[0, 0], &[0, 0], &[1, 1]), Ok(vec![2, 3, 1]));
    // x[0, ..., 1] on [2,3,4] -> [3].
    assert_eq!(slice_shape(&ss(0, 0, 2, 0, 5), &[2, 3, 4], &[0, 0, 1], &[1, 0, 2], &[1, 1, 1]), Ok(vec![3]));
    // x[..., ::2] on [4,6]: ellipsis then a strided last dimension -> [4,3].
    assert_eq!(slice_shape(&ss(2, 2, 1, 0, 0), &[4, 6], &[0, 0], &[0, 0], &[1, 2]), Ok(vec![4, 3]));
    // Mask bits beyond the spec are ignored.
    assert_eq!(slice_shape(&ss(-2, -2, 0, 0, 0), &[4, 6], &[1], &[3], &[1]), Ok(vec![2, 6]));
}

#[test]
fn strided_slice_offset_takes_sizes_from_end() {
    let op = Op::StridedSlice(StridedSliceAttrs { offset: true, ..Default::default() });
    assert_eq!(slice_shape(&op, &[10], &[2], &[5], &[1]), Ok(vec![5]));
    assert_eq!(slice_shape(&op, &[10, 4], &[2, 0], &[6, 4], &[2, 1]), Ok(vec![3, 4]));
    // With offset, begin may be computed at run time.
    let r = run(&op, &[&val(F32, &[10]), &val(I32, &[1]), &vec32(&[4]), &vec32(&[1])], 1).unwrap();
    assert_eq!(r[0].shape, Some(vec![4]));
}

#[test]
fn strided_slice_errors() {
    let plain = ss(0, 0, 0, 0, 0);
    assert!(slice_shape(&plain, &[10], &[0], &[5], &[0]).unwrap_err().contains("stride of spec entry 0 is 0"));
    assert!(slice_shape(&ss(0, 0, 0, 0, 1), &[4], &[4], &[5], &[1]).unwrap_err().contains("shrink_axis index 4"));
    assert!(slice_shape(&ss(0, 0, 0, 0, 1), &[4], &[-5], &[0], &[1]).unwrap_err().contains("shrink_axis index -5"));
    assert!(slice_shape(&ss(0, 0, 3, 0, 0), &[4, 4], &[0, 0], &[0, 0], &[1, 1])
        .unwrap_err()
        .contains("more than one bit"));
    assert!(slice_shape(&plain, &[4], &[0, 0], &[1, 1], &[1, 1]).unwrap_err().contains("spec has 2 entries"));
    assert!(slice_shape(&ss(0, 0, 1, 0, 3), &[2, 3], &[0, 0, 0], &[0, 1, 1], &[1, 1, 1])
        .unwrap_err()
        .contains("leaves the ellipsis no dimension"));
    assert!(slice_shape(&plain, &[1; 6], &[0], &[1], &[1]).unwrap_err().contains("at most 5"));
    assert!(slice_shape(&plain, &[4], &[0], &[1, 2], &[1]).unwrap_err().contains("equal lengths"));
    let x = val(F32, &[4]);
    let e = run(&plain, &[&x, &c64(&[0], &[1]), &vec32(&[1]), &vec32(&[1])], 1).unwrap_err();
    assert!(e.contains("begin has dtype i64"), "{e}");
    let e = run(&plain, &[&x, &val(I32, &[1]), &vec32(&[1]), &vec32(&[1])], 1).unwrap_err();
    assert!(e.contains("begin operand 'x' is not constant"), "{e}");
}

#[test]
fn slice_with_minus_one() {
    let x = val(F32, &[4, 5]);
    assert_eq!(shape_of(&Op::Slice, &[&x, &vec32(&[1, 0]), &vec32(&[2, -1])]), vec![2, 5]);
    assert_eq!(shape_of(&Op::Slice, &[&x, &c64(&[3, 2], &[2]), &c64(&[-1, 3], &[2])]), vec![1, 3]);
    assert_err(&Op::Slice, &[&x, &vec32(&[3, 0]), &vec32(&[2, 1])], "begin 3 with size 2 exceeds dimension 0");
    assert_err(&Op::Slice, &[&x, &vec32(&[-1, 0]), &vec32(&[1, 1])], "begin -1 is out of range");
    assert_err(&Op::Slice, &[&x, &vec32(&[0]), &vec32(&[1])], "need 2 entries");
    assert_err(&Op::Slice, &[&x, &vec32(&[0, 0]), &vec32(&[-2, 1])], "exceeds dimension 0");
}

#[test]
fn transpose_permutes() {
    let x = val(F32, &[1, 2, 3]);
    assert_eq!(shape_of(&Op::Transpose, &[&x, &vec32(&[2, 0, 1])]), vec![3, 1, 2]);
    assert_err(&Op::Transpose, &[&x, &vec32(&[0, 0, 1])], "is not a permutation");
    assert_err(&Op::Transpose, &[&x, &vec32(&[0, 1, 3])], "is not a permutation");
    assert_err(&Op::Transpose, &[&x, &vec32(&[1, 0])], "perm has 2 entries but the input has rank 3");
}

#[test]
fn depth_and_space() {
    let x = val(F32, &[1, 4, 4, 16]);
    assert_eq!(shape_of(&Op::DepthToSpace { block_size: 2 }, &[&x]), vec![1, 8, 8, 4]);
    assert_eq!(shape_of(&Op::SpaceToDepth { block_size: 2 }, &[&x]), vec![1, 2, 2, 64]);
    assert_err(&Op::DepthToSpace { block_size: 3 }, &[&x], "depth 16 is not a multiple of block_size² = 9");
    assert_err(&Op::SpaceToDepth { block_size: 3 }, &[&x], "must be multiples of block_size 3");
    assert_err(&Op::DepthToSpace { block_size: 0 }, &[&x], "block_size is 0");
    assert_err(&Op::SpaceToDepth { block_size: 0 }, &[&x], "block_size is 0");
    assert_err(&Op::SpaceToDepth { block_size: u32::MAX }, &[&val(F32, &[1, 0, 0, 3])], "overflow");
}

#[test]
fn batch_and_space_nd() {
    let zero = c32(&[0, 0, 0, 0], &[2, 2]);
    let block = vec32(&[2, 2]);
    assert_eq!(shape_of(&Op::SpaceToBatchNd, &[&val(F32, &[1, 4, 4, 1]), &block, &zero]), vec![4, 2, 2, 1]);
    let pads = c32(&[1, 1, 1, 1], &[2, 2]);
    assert_eq!(shape_of(&Op::SpaceToBatchNd, &[&val(F32, &[1, 2, 2, 1]), &block, &pads]), vec![4, 2, 2, 1]);
    assert_eq!(shape_of(&Op::BatchToSpaceNd, &[&val(F32, &[4, 2, 2, 1]), &block, &zero]), vec![1, 4, 4, 1]);
    let crops = c32(&[0, 1, 0, 1], &[2, 2]);
    assert_eq!(shape_of(&Op::BatchToSpaceNd, &[&val(F32, &[4, 2, 2, 1]), &block, &crops]), vec![1, 3, 3, 1]);
    // 3-D inputs have one spatial dimension.
    let r = shape_of(&Op::BatchToSpaceNd, &[&val(F32, &[4, 3, 2]), &vec32(&[2]), &c32(&[0, 0], &[1, 2])]);
    assert_eq!(r, vec![2, 6, 2]);
    assert_err(&Op::SpaceToBatchNd, &[&val(F32, &[1, 3, 4, 1]), &block, &zero], "not a multiple of block 2");
    assert_err(&Op::BatchToSpaceNd, &[&val(F32, &[3, 2, 2, 1]), &block, &zero], "batch 3 is not a multiple");
    assert_err(&Op::BatchToSpaceNd, &[&val(F32, &[4, 2, 2, 1]), &vec32(&[0, 2]), &zero], "below 1");
    let big_crop = c32(&[0, 5, 0, 0], &[2, 2]);
    assert_err(&Op::BatchToSpaceNd, &[&val(F32, &[4, 2, 2, 1]), &block, &big_crop], "is negative");
    assert_err(&Op::SpaceToBatchNd, &[&val(F32, &[1, 4]), &vec32(&[2]), &c32(&[0, 0], &[1, 2])], "rank 3 or 4");
    assert_err(
        &Op::SpaceToBatchNd,
        &[&val(F32, &[1, 4, 4, 1]), &block, &c32(&[0, 0], &[1, 2])],
        "must have shape [2,2]",
    );
}

#[test]
fn resize_sizes() {
    let bilinear = Op::ResizeBilinear(ResizeAttrs::default());
    let x = val(F32, &[1, 10, 10, 3]);
    assert_eq!(shape_of(&bilinear, &[&x, &vec32(&[20, 30])]), vec![1, 20, 30, 3]);
    let nn = Op::ResizeNearestNeighbor(ResizeAttrs { align_corners: true, half_pixel_centers: true });
    assert_eq!(shape_of(&nn, &[&x, &vec32(&[5, 5])]), vec![1, 5, 5, 3]);
    let both = Op::ResizeBilinear(ResizeAttrs { align_corners: true, half_pixel_centers: true });
    assert_err(&both, &[&x, &vec32(&[20, 30])], "cannot both be set");
    assert_err(&bilinear, &[&x, &vec32(&[20])], "size must have 2 entries");
    assert_err(&bilinear, &[&x, &vec32(&[0, 3])], "must be positive");
}

#[test]
fn gather_with_axis_and_batch_dims() {
    let op = |axis, batch_dims| Op::Gather { axis, batch_dims };
    let p = val(F32, &[5, 6, 7]);
    assert_eq!(shape_of(&op(1, 0), &[&p, &val(I32, &[2, 3])]), vec![5, 2, 3, 7]);
    assert_eq!(shape_of(&op(-1, 0), &[&p, &val(I64, &[])]), vec![5, 6]);
    let p = val(I8, &[2, 5, 7]);
    assert_eq!(one(&op(1, 1), &[&p, &val(I32, &[2, 3])]), (I8, vec![2, 3, 7]));
    assert_eq!(shape_of(&op(1, -1), &[&p, &val(I32, &[2, 3])]), vec![2, 3, 7]);
    assert_err(&op(1, 1), &[&p, &val(I32, &[3, 3])], "the first 1 dimensions");
    assert_err(&op(0, 1), &[&p, &val(I32, &[2, 3])], "batch_dims 1 exceeds axis 0");
    assert_err(&op(3, 0), &[&p, &val(I32, &[2])], "axis 3 is out of range for rank 3");
    assert_err(&op(0, 0), &[&p, &val(F32, &[2])], "indices has dtype f32");
}

#[test]
fn arg_max_removes_the_axis() {
    let x = val(F32, &[1, 10]);
    assert_eq!(one(&Op::ArgMax { output_type: I64 }, &[&x, &vec32(&[-1])]), (I64, vec![1]));
    assert_eq!(one(&Op::Shape { output_type: I32 }, &[&x]), (I32, vec![x.ty.rank()]));
    assert_err(&Op::Shape { output_type: F32 }, &[&x], "output_type f32 must be i32 or i64");
    assert_eq!(one(&Op::ArgMax { output_type: I32 }, &[&x, &c64(&[0], &[])]), (I32, vec![10]));
    assert_err(&Op::ArgMax { output_type: F32 }, &[&x, &vec32(&[1])], "output_type f32 must be i32 or i64");
    assert_err(&Op::ArgMax { output_type: I32 }, &[&x, &vec32(&[2])], "axis 2 is out of range");
}

#[test]
fn opaque_ops_determine_nothing() {
    let op = Op::Opaque(OpaqueOp {
        name: "WHILE".to_string(),
        builtin_code: Some(119),
        options: Default::default(),
        custom_options: Default::default(),
    });
    assert_eq!(run(&op, &[&val(F32, &[1])], 2).unwrap(), vec![InferredType::unknown(); 2]);
}

#[test]
fn result_counts_are_checked() {
    assert_eq!(run(&Op::Relu, &[&val(F32, &[1])], 2).unwrap_err(), "expects 1 result, has 2");
    assert_eq!(run(&Op::Relu, &[&val(F32, &[1])], 0).unwrap_err(), "expects 1 result, has 0");
}

#[test]
fn infer_output_types_on_a_graph() {
    let mut g = Graph::new("g");
    let x = g.add_input("x", TensorType::new(F32, vec![1, 8]));
    let q = g.add_value(Value::new("q", TensorType::new(I8, vec![1, 8]).with_quant(Quantization::per_tensor(0.5, -3))));
    let r = g.add_value(Value::new("r", TensorType::new(F32, vec![1, 1])));
    let quant = g.add_op(Operation::new(Op::Quantize, vec![Some(x)], vec![q])).unwrap();
    let relu = g.add_op(Operation::new(Op::Relu, vec![Some(x)], vec![r])).unwrap();
    // QUANTIZE keeps the declared dtype and quantization; the shape is inferred.
    let t = infer_output_types(&g, quant).unwrap();
    assert_eq!(t, vec![TensorType::new(I8, vec![1, 8]).with_quant(Quantization::per_tensor(0.5, -3))]);
    // RELU's declared shape is wrong; inference says what it should be.
    assert_eq!(infer_output_types(&g, relu).unwrap(), vec![TensorType::new(F32, vec![1, 8])]);
    let bad = g.add_op(Operation::new(Op::Relu, vec![Some(x), Some(x)], vec![])).unwrap();
    let e = infer_output_types(&g, bad).unwrap_err();
    assert_eq!(e.to_string(), "op #2 (relu): expects 1 result, has 0");
}

#[test]
fn format_helpers() {
    assert_eq!(format_type(F32, &[1, 48, 48, 32]), "f32[1,48,48,32]");
    assert_eq!(format_shape(&[]), "[]");
}
