//! Model builders for npuc's benchmarks.
//!
//! The committed fixtures are small; growth with model size only shows on a large model,
//! and committing a 4 MB one is waste. So the 224×224 MobileNetV2 α 1.0 is built here,
//! in the IR, with seeded weights, and exported through npuc's own TFLite writer.

use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph, Module, Op, Operation,
    Padding, Quantization, TensorType, ValueId,
};

/// A small deterministic generator (SplitMix64) so weights need no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Builder {
    g: Graph,
    rng: Rng,
    int8: bool,
    n: usize,
}

/// Rounds channels as Keras' MobileNetV2 does (`_make_divisible(v, 8)`).
fn make_divisible(v: f32) -> usize {
    let d = 8.0;
    let mut n = ((v + d / 2.0) / d).floor() * d;
    n = n.max(d);
    if n < 0.9 * v {
        n += d;
    }
    n as usize
}

impl Builder {
    fn act_type(&self, shape: Vec<usize>) -> TensorType {
        if self.int8 {
            TensorType::new(DType::I8, shape).with_quant(Quantization::per_tensor(0.0235, -128))
        } else {
            TensorType::new(DType::F32, shape)
        }
    }

    fn name(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}_{}", self.n)
    }

    /// Seeded weights; int8 ones are quantized per channel along `axis`.
    fn weights(&mut self, shape: Vec<usize>, axis: usize) -> ValueId {
        let count: usize = shape.iter().product();
        let out = shape[axis];
        let name = self.name("w");
        if self.int8 {
            let data: Vec<u8> = (0..count).map(|_| ((self.rng.next() % 255) as i32 - 127) as i8 as u8).collect();
            let scales = (0..out).map(|i| 0.002 + 0.0001 * (i % 7) as f32).collect();
            let ty = TensorType::new(DType::I8, shape).with_quant(Quantization::per_channel(
                scales,
                vec![0; out],
                axis as u32,
            ));
            self.g.add_const(name, ty, Constant::from(data))
        } else {
            let data: Vec<u8> = (0..count)
                .flat_map(|_| ((self.rng.next() % 2001) as f32 / 1000.0 - 1.0).mul_add(0.05, 0.0).to_le_bytes())
                .collect();
            self.g.add_const(name, TensorType::new(DType::F32, shape), Constant::from(data))
        }
    }

    fn bias(&mut self, n: usize, w_scales: Option<&[f32]>) -> ValueId {
        let name = self.name("b");
        if self.int8 {
            let data: Vec<u8> = (0..n).flat_map(|_| ((self.rng.next() % 2001) as i32 - 1000).to_le_bytes()).collect();
            let scales: Vec<f32> = w_scales.unwrap().iter().map(|s| s * 0.0235).collect();
            let ty = TensorType::new(DType::I32, vec![n]).with_quant(Quantization::per_channel(scales, vec![0; n], 0));
            self.g.add_const(name, ty, Constant::from(data))
        } else {
            let data: Vec<u8> = (0..n).flat_map(|_| 0.01f32.to_le_bytes()).collect();
            self.g.add_const(name, TensorType::new(DType::F32, vec![n]), Constant::from(data))
        }
    }

    fn w_scales(&self, w: ValueId) -> Option<Vec<f32>> {
        self.g.value(w).ty.quant.as_ref().map(|q| q.scale.clone())
    }

    fn op(&mut self, op: Op, inputs: Vec<ValueId>, shape: Vec<usize>) -> ValueId {
        let name = self.name(op.mnemonic());
        let ty = self.act_type(shape);
        let out = self.g.add_value(npuc_ir::Value::new(name, ty));
        self.g.add_op(Operation::new(op, inputs.into_iter().map(Some).collect(), vec![out])).expect("valid op");
        out
    }

    fn conv(&mut self, x: ValueId, cout: usize, k: usize, stride: u32, act: Activation) -> ValueId {
        let s = self.g.value(x).ty.shape.clone();
        let w = self.weights(vec![cout, k, k, s[3]], 0);
        let b = self.bias(cout, self.w_scales(w).as_deref());
        let (h, wd) = (s[1].div_ceil(stride as usize), s[2].div_ceil(stride as usize));
        let attrs = Conv2dAttrs {
            padding: Padding::Same,
            stride: [stride; 2],
            dilation: [1, 1],
            activation: act,
            bias_type: None,
        };
        self.op(Op::Conv2d(attrs), vec![x, w, b], vec![1, h, wd, cout])
    }

    fn depthwise(&mut self, x: ValueId, stride: u32) -> ValueId {
        let s = self.g.value(x).ty.shape.clone();
        let c = s[3];
        // Depthwise filters are 1×H×W×C, quantized along the last axis.
        let w = self.weights(vec![1, 3, 3, c], 3);
        let b = self.bias(c, self.w_scales(w).as_deref());
        let (h, wd) = (s[1].div_ceil(stride as usize), s[2].div_ceil(stride as usize));
        let attrs = DepthwiseConv2dAttrs {
            padding: Padding::Same,
            stride: [stride; 2],
            dilation: [1, 1],
            depth_multiplier: 1,
            activation: Activation::Relu6,
        };
        self.op(Op::DepthwiseConv2d(attrs), vec![x, w, b], vec![1, h, wd, c])
    }
}

/// MobileNetV2 (Sandler et al. 2018) at width `alpha` and square input `res`, as Keras
/// builds it, with seeded weights; int8 with per-channel weights or float32.
pub fn mobilenet_v2(alpha: f32, res: usize, int8: bool) -> Module {
    let mut b = Builder { g: Graph::new("main"), rng: Rng(0x5EED), int8, n: 0 };
    let in_ty = b.act_type(vec![1, res, res, 3]);
    let x = b.g.add_input("input", in_ty);
    let mut x = b.conv(x, make_divisible(32.0 * alpha), 3, 2, Activation::Relu6);
    let blocks: [(usize, f32, usize, u32); 7] = [
        (1, 16.0, 1, 1),
        (6, 24.0, 2, 2),
        (6, 32.0, 3, 2),
        (6, 64.0, 4, 2),
        (6, 96.0, 3, 1),
        (6, 160.0, 3, 2),
        (6, 320.0, 1, 1),
    ];
    for (t, c, n, s) in blocks {
        let cout = make_divisible(c * alpha);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let cin = b.g.value(x).ty.shape[3];
            let mut y = x;
            if t != 1 {
                y = b.conv(y, cin * t, 1, 1, Activation::Relu6);
            }
            y = b.depthwise(y, stride);
            y = b.conv(y, cout, 1, 1, Activation::None);
            if stride == 1 && cin == cout {
                let shape = b.g.value(y).ty.shape.clone();
                y = b.op(Op::Add { activation: Activation::None, pot_scale_int16: true }, vec![x, y], shape);
            }
            x = y;
        }
    }
    let last = if alpha > 1.0 { make_divisible(1280.0 * alpha) } else { 1280 };
    x = b.conv(x, last, 1, 1, Activation::Relu6);
    let axes = b.g.add_const(
        "axes",
        TensorType::new(DType::I32, vec![2]),
        Constant::from([1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
    );
    x = b.op(Op::Mean { keep_dims: false }, vec![x, axes], vec![1, last]);
    let w = b.weights(vec![1000, last], 0);
    let bias = b.bias(1000, b.w_scales(w).as_deref());
    let fc = FullyConnectedAttrs {
        activation: Activation::None,
        keep_num_dims: false,
        shuffled_weights: false,
        asymmetric_quantize_inputs: false,
        bias_type: None,
    };
    x = b.op(Op::FullyConnected(fc), vec![x, w, bias], vec![1, 1000]);
    let out = b.op(Op::Softmax { beta: 1.0 }, vec![x], vec![1, 1000]);
    if int8 {
        b.g.value_mut(out).ty.quant = Some(Quantization::per_tensor(1.0 / 256.0, -128));
    }
    b.g.outputs.push(out);
    Module::from_graph(b.g)
}

/// The main graph of a committed fixture (`tools/fixtures/models/NAME`, NAME with its
/// `.tflite` extension).
pub fn fixture_graph(name: &str) -> Graph {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/models").join(name);
    let module = npuc_tflite::import_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    module.main().unwrap_or_else(|| panic!("{}: no graph", path.display())).clone()
}
