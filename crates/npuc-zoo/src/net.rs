//! A small network builder with seeded weights, shared by the SESR builder and the search
//! space samplers.
//!
//! Every op's result type comes from the IR's own shape inference, so a builder cannot
//! declare a type the verifier would reject. Weights are drawn uniform with variance
//! `gain / fan_in` (He-style for ReLU networks), biases small and never zero: models are
//! seeded, not trained, but their activations stay O(1) so quantization and numerical
//! comparisons behave like on real models.

use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph, IrError, Op, Operation,
    Padding, Pool2dAttrs, ResizeAttrs, TensorType, TransposeConvAttrs, Value, ValueId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A graph under construction and the random stream its weights come from.
pub struct Net {
    /// The graph built so far.
    pub g: Graph,
    /// The weight stream; draws happen in build order, so equal seeds build equal graphs.
    pub rng: ChaCha8Rng,
}

impl Net {
    /// An empty graph named `name` whose weights come from `seed`.
    pub fn new(name: &str, seed: u64) -> Self {
        Net::with_rng(name, ChaCha8Rng::seed_from_u64(seed))
    }

    /// An empty graph named `name` whose weights come from `rng`.
    pub fn with_rng(name: &str, rng: ChaCha8Rng) -> Self {
        Net { g: Graph::new(name), rng }
    }

    /// Adds an f32 graph input.
    pub fn input(&mut self, name: &str, shape: Vec<usize>) -> ValueId {
        self.g.add_input(name, TensorType::new(DType::F32, shape))
    }

    /// The shape of a value.
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.g.value(v).ty.shape
    }

    /// The channel (last) dimension of a value.
    pub fn channels(&self, v: ValueId) -> usize {
        self.shape(v).last().copied().unwrap_or(1)
    }

    /// An f32 constant.
    pub fn constant(&mut self, name: &str, shape: Vec<usize>, data: &[f32]) -> ValueId {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.g.add_const(name, TensorType::new(DType::F32, shape), Constant::from(bytes))
    }

    /// An i32 constant (axes, shapes, sizes).
    pub fn constant_i32(&mut self, name: &str, data: &[i32]) -> ValueId {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.g.add_const(name, TensorType::new(DType::I32, vec![data.len()]), Constant::from(bytes))
    }

    /// An f32 scalar constant.
    pub fn scalar(&mut self, name: &str, v: f32) -> ValueId {
        self.constant(name, vec![], &[v])
    }

    /// Adds `op` with one result named `name`, typed by shape inference.
    pub fn op(&mut self, name: &str, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, IrError> {
        let ty = {
            let values: Vec<Option<&Value>> = inputs.iter().map(|&v| self.g.get_value(v)).collect();
            let inferred = npuc_ir::shape::infer(&op, &values, 1).map_err(|reason| IrError::InvalidOp {
                index: self.g.op_count(),
                op: op.mnemonic().to_string(),
                reason: format!("{name}: {reason}"),
            })?;
            let t = &inferred[0];
            match (t.dtype, &t.shape) {
                (Some(d), Some(s)) => TensorType::new(d, s.clone()),
                _ => {
                    return Err(IrError::InvalidOp {
                        index: self.g.op_count(),
                        op: op.mnemonic().to_string(),
                        reason: format!("{name}: result type is not determined by the operands"),
                    })
                }
            }
        };
        let out = self.g.add_value(Value::new(name, ty));
        self.g.add_op(Operation::new(op, inputs.into_iter().map(Some).collect(), vec![out]))?;
        Ok(out)
    }

    /// `n` weights uniform with variance `gain / fan_in`.
    fn weights(&mut self, n: usize, fan_in: usize, gain: f32) -> Vec<f32> {
        let bound = (3.0 * gain / fan_in as f32).sqrt();
        (0..n).map(|_| self.rng.random_range(-bound..bound)).collect()
    }

    /// `n` biases in ±[0.005, 0.05): never zero, so bias folding has something to fold.
    fn biases(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let mag = self.rng.random_range(0.005f32..0.05);
                if self.rng.random::<bool>() {
                    mag
                } else {
                    -mag
                }
            })
            .collect()
    }

    /// A SAME conv with a `kh×kw` kernel, OHWI weights and bias.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        name: &str,
        x: ValueId,
        kernel: [usize; 2],
        cout: usize,
        stride: u32,
        activation: Activation,
        gain: f32,
    ) -> Result<ValueId, IrError> {
        let cin = self.channels(x);
        let [kh, kw] = kernel;
        let w = self.weights(cout * kh * kw * cin, kh * kw * cin, gain);
        self.conv_with(name, x, w, kernel, cout, stride, activation)
    }

    /// `x + conv(x)` as one stride-1 SAME conv: the identity is folded into the centre tap,
    /// which is how a residual linear block looks once the collapse pass has run (`k` odd).
    pub fn residual_conv(&mut self, name: &str, x: ValueId, k: usize, gain: f32) -> Result<ValueId, IrError> {
        let c = self.channels(x);
        let mut w = self.weights(c * k * k * c, k * k * c, gain);
        for o in 0..c {
            w[((o * k + k / 2) * k + k / 2) * c + o] += 1.0;
        }
        self.conv_with(name, x, w, [k, k], c, 1, Activation::None)
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_with(
        &mut self,
        name: &str,
        x: ValueId,
        w: Vec<f32>,
        kernel: [usize; 2],
        cout: usize,
        stride: u32,
        activation: Activation,
    ) -> Result<ValueId, IrError> {
        let cin = self.channels(x);
        let w = self.constant(&format!("{name}/weights"), vec![cout, kernel[0], kernel[1], cin], &w);
        let b = self.biases(cout);
        let b = self.constant(&format!("{name}/bias"), vec![cout], &b);
        let attrs = Conv2dAttrs {
            padding: Padding::Same,
            stride: [stride, stride],
            dilation: [1, 1],
            activation,
            bias_type: None,
        };
        self.op(name, Op::Conv2d(attrs), vec![x, w, b])
    }

    /// A SAME depthwise conv (multiplier 1) with a `k×k` kernel.
    pub fn depthwise(
        &mut self,
        name: &str,
        x: ValueId,
        k: usize,
        stride: u32,
        activation: Activation,
        gain: f32,
    ) -> Result<ValueId, IrError> {
        let c = self.channels(x);
        let w = self.weights(k * k * c, k * k, gain);
        let w = self.constant(&format!("{name}/weights"), vec![1, k, k, c], &w);
        let b = self.biases(c);
        let b = self.constant(&format!("{name}/bias"), vec![c], &b);
        let attrs = DepthwiseConv2dAttrs {
            padding: Padding::Same,
            stride: [stride, stride],
            dilation: [1, 1],
            depth_multiplier: 1,
            activation,
        };
        self.op(name, Op::DepthwiseConv2d(attrs), vec![x, w, b])
    }

    /// A SAME transpose conv upsampling height and width by `stride` into `cout` channels
    /// (FSRCNN's deconvolution).
    pub fn transpose_conv(
        &mut self,
        name: &str,
        x: ValueId,
        k: usize,
        cout: usize,
        stride: usize,
        gain: f32,
    ) -> Result<ValueId, IrError> {
        let s = self.shape(x).to_vec();
        let cin = s[3];
        // Each output pixel sees about k²/stride² input taps per input channel.
        let fan_in = (k * k * cin / (stride * stride)).max(1);
        let w = self.weights(cout * k * k * cin, fan_in, gain);
        let w = self.constant(&format!("{name}/weights"), vec![cout, k, k, cin], &w);
        let b = self.biases(cout);
        let b = self.constant(&format!("{name}/bias"), vec![cout], &b);
        let out = [s[0], s[1] * stride, s[2] * stride, cout].map(|d| d as i32);
        let out = self.constant_i32(&format!("{name}/output_shape"), &out);
        let attrs = TransposeConvAttrs {
            padding: Padding::Same,
            stride: [stride as u32, stride as u32],
            activation: Activation::None,
            bias_type: None,
        };
        self.op(name, Op::TransposeConv(attrs), vec![out, w, x, b])
    }

    /// A fully connected layer over the last dimension (`[out, in]` weights).
    pub fn fully_connected(
        &mut self,
        name: &str,
        x: ValueId,
        cout: usize,
        activation: Activation,
        gain: f32,
    ) -> Result<ValueId, IrError> {
        let cin = self.channels(x);
        let w = self.weights(cout * cin, cin, gain);
        let w = self.constant(&format!("{name}/weights"), vec![cout, cin], &w);
        let b = self.biases(cout);
        let b = self.constant(&format!("{name}/bias"), vec![cout], &b);
        let attrs = FullyConnectedAttrs {
            activation,
            keep_num_dims: false,
            shuffled_weights: false,
            asymmetric_quantize_inputs: false,
            bias_type: None,
        };
        self.op(name, Op::FullyConnected(attrs), vec![x, w, b])
    }

    /// `a + b` (broadcasting).
    pub fn add(&mut self, name: &str, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.op(name, Op::Add { activation: Activation::None, pot_scale_int16: true }, vec![a, b])
    }

    /// `a * b` (broadcasting).
    pub fn mul(&mut self, name: &str, a: ValueId, b: ValueId) -> Result<ValueId, IrError> {
        self.op(name, Op::Mul { activation: Activation::None }, vec![a, b])
    }

    /// Mean over height and width, keeping them as size 1 (`N×1×1×C`).
    pub fn global_mean(&mut self, name: &str, x: ValueId) -> Result<ValueId, IrError> {
        let axes = self.constant_i32(&format!("{name}/axes"), &[1, 2]);
        self.op(name, Op::Mean { keep_dims: true }, vec![x, axes])
    }

    /// A SAME pooling window of `k×k` with stride `stride`.
    pub fn pool(&mut self, name: &str, x: ValueId, k: u32, stride: u32, max: bool) -> Result<ValueId, IrError> {
        let attrs = Pool2dAttrs {
            padding: Padding::Same,
            stride: [stride, stride],
            filter: [k, k],
            activation: Activation::None,
        };
        let op = if max { Op::MaxPool2d(attrs) } else { Op::AveragePool2d(attrs) };
        self.op(name, op, vec![x])
    }

    /// Reshape to `shape` (given both as the options and as the shape operand, as the
    /// TFLite converter writes it).
    pub fn reshape(&mut self, name: &str, x: ValueId, shape: &[usize]) -> Result<ValueId, IrError> {
        let dims: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let s = self.constant_i32(&format!("{name}/shape"), &dims);
        self.op(name, Op::Reshape { new_shape: Some(dims) }, vec![x, s])
    }

    /// Concatenation along `axis`.
    pub fn concat(&mut self, name: &str, xs: Vec<ValueId>, axis: i32) -> Result<ValueId, IrError> {
        self.op(name, Op::Concatenation { axis, activation: Activation::None }, xs)
    }

    /// Resize height and width by an integer `factor` (nearest neighbour or bilinear with
    /// half-pixel centres, as Keras `UpSampling2D` converts).
    pub fn upsample(&mut self, name: &str, x: ValueId, factor: usize, bilinear: bool) -> Result<ValueId, IrError> {
        let s = self.shape(x).to_vec();
        let size = self.constant_i32(&format!("{name}/size"), &[(s[1] * factor) as i32, (s[2] * factor) as i32]);
        let attrs = ResizeAttrs { align_corners: false, half_pixel_centers: true };
        let op = if bilinear { Op::ResizeBilinear(attrs) } else { Op::ResizeNearestNeighbor(attrs) };
        self.op(name, op, vec![x, size])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_typed_by_shape_inference() {
        let mut n = Net::new("t", 0);
        let x = n.input("x", vec![1, 9, 7, 3]);
        let y = n.conv("c", x, [3, 3], 8, 2, Activation::Relu, 2.0).unwrap();
        assert_eq!(n.shape(y), [1, 5, 4, 8]);
        let d = n.depthwise("d", y, 5, 1, Activation::Relu6, 2.0).unwrap();
        let m = n.global_mean("m", d).unwrap();
        assert_eq!(n.shape(m), [1, 1, 1, 8]);
        let u = n.upsample("u", d, 2, true).unwrap();
        assert_eq!(n.shape(u), [1, 10, 8, 8]);
        let r = n.reshape("r", m, &[1, 8]).unwrap();
        let f = n.fully_connected("f", r, 4, Activation::None, 1.0).unwrap();
        assert_eq!(n.shape(f), [1, 4]);
        let t = n.transpose_conv("t", d, 9, 1, 3, 1.0).unwrap();
        assert_eq!(n.shape(t), [1, 15, 12, 1]);
        n.g.outputs.extend([f, t]);
        npuc_ir::verify_graph(&n.g).unwrap();
    }

    #[test]
    fn a_wrong_operand_is_an_error_not_a_bad_graph() {
        let mut n = Net::new("t", 0);
        let a = n.input("a", vec![1, 4, 4, 3]);
        let b = n.input("b", vec![1, 4, 4, 5]);
        let e = n.add("sum", a, b).unwrap_err().to_string();
        assert!(e.contains("sum"), "{e}");
    }
}
