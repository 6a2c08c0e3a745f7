//! Property tests: on random shapes and weights, every rewrite of every rule family keeps
//! the graph valid and its outputs equal (relative error ≤ 1e-5 through the interpreter),
//! and never makes the graph more expensive.

use npuc_collapse_linear::{run, Limits, MacCost, RuleSet};
use npuc_interp::{random_inputs, Interpreter, Options};
use npuc_ir::{
    stats, verify_graph, Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph,
    Op, Operation, Padding, TensorType, Value, ValueId,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Builds small float graphs with random weights.
struct B {
    g: Graph,
    rng: ChaCha8Rng,
    n: usize,
}

impl B {
    fn new(seed: u64) -> Self {
        B { g: Graph::new("main"), rng: ChaCha8Rng::seed_from_u64(seed), n: 0 }
    }

    fn name(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}{}", self.n)
    }

    fn konst(&mut self, shape: Vec<usize>) -> ValueId {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n).flat_map(|_| self.rng.random_range(-1.0f32..1.0).to_le_bytes()).collect();
        let name = self.name("c");
        self.g.add_const(name, TensorType::new(DType::F32, shape), Constant::from_slice(&bytes))
    }

    fn value(&mut self, shape: Vec<usize>) -> ValueId {
        let name = self.name("v");
        self.g.add_value(Value::new(name, TensorType::new(DType::F32, shape)))
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.g.value(v).ty.shape.clone()
    }

    fn op(&mut self, op: Op, inputs: Vec<ValueId>, out: Vec<usize>) -> ValueId {
        let y = self.value(out);
        self.g.add_op(Operation::new(op, inputs.into_iter().map(Some).collect(), vec![y])).unwrap();
        y
    }

    fn out_extent(n: usize, k: usize, s: usize, same: bool) -> usize {
        if same {
            n.div_ceil(s)
        } else {
            (n - k) / s + 1
        }
    }

    fn conv(&mut self, x: ValueId, k: usize, cout: usize, stride: usize, same: bool, act: Activation) -> ValueId {
        let s = self.shape(x);
        let w = self.konst(vec![cout, k, k, s[3]]);
        let b = self.konst(vec![cout]);
        let out = vec![s[0], Self::out_extent(s[1], k, stride, same), Self::out_extent(s[2], k, stride, same), cout];
        let padding = if same { Padding::Same } else { Padding::Valid };
        let attrs =
            Conv2dAttrs { padding, stride: [stride as u32; 2], dilation: [1, 1], activation: act, bias_type: None };
        self.op(Op::Conv2d(attrs), vec![x, w, b], out)
    }

    fn depthwise(&mut self, x: ValueId, k: usize, same: bool) -> ValueId {
        let s = self.shape(x);
        let w = self.konst(vec![1, k, k, s[3]]);
        let b = self.konst(vec![s[3]]);
        let out = vec![s[0], Self::out_extent(s[1], k, 1, same), Self::out_extent(s[2], k, 1, same), s[3]];
        let padding = if same { Padding::Same } else { Padding::Valid };
        let attrs = DepthwiseConv2dAttrs {
            padding,
            stride: [1, 1],
            dilation: [1, 1],
            depth_multiplier: 1,
            activation: Activation::None,
        };
        self.op(Op::DepthwiseConv2d(attrs), vec![x, w, b], out)
    }

    fn dense(&mut self, x: ValueId, cout: usize) -> ValueId {
        let s = self.shape(x);
        let w = self.konst(vec![cout, s[1]]);
        let b = self.konst(vec![cout]);
        let attrs = FullyConnectedAttrs {
            activation: Activation::None,
            keep_num_dims: false,
            shuffled_weights: false,
            asymmetric_quantize_inputs: false,
            bias_type: None,
        };
        self.op(Op::FullyConnected(attrs), vec![x, w, b], vec![s[0], cout])
    }

    fn add(&mut self, a: ValueId, b: ValueId, act: Activation) -> ValueId {
        let s = self.shape(a);
        self.op(Op::Add { activation: act, pot_scale_int16: false }, vec![a, b], s)
    }

    fn affine(&mut self, x: ValueId, mul: bool) -> ValueId {
        let s = self.shape(x);
        let c = self.konst(vec![*s.last().unwrap()]);
        let op = if mul {
            Op::Mul { activation: Activation::None }
        } else {
            Op::Sub { activation: Activation::None, pot_scale_int16: false }
        };
        self.op(op, vec![x, c], s)
    }

    fn pad(&mut self, x: ValueId, p: [usize; 4]) -> ValueId {
        let s = self.shape(x);
        let v: Vec<u8> = [0, 0, p[0], p[1], p[2], p[3], 0, 0].iter().flat_map(|&d| (d as i32).to_le_bytes()).collect();
        let name = self.name("paddings");
        let pc = self.g.add_const(name, TensorType::new(DType::I32, vec![4, 2]), Constant::from_slice(&v));
        self.op(Op::Pad, vec![x, pc], vec![s[0], s[1] + p[0] + p[1], s[2] + p[2] + p[3], s[3]])
    }
}

/// The shapes of linear structure the properties are tested on.
#[derive(Clone, Debug)]
enum Pattern {
    /// k×k conv C→P (SAME or VALID) then 1×1 P→D (SESR linear block), optional relu.
    Block { k: usize, p: usize, d: usize, same: bool, relu: bool },
    /// Linear block C→P→C plus the block input, then relu (SESR body block).
    Residual { k: usize, p: usize },
    /// k×k conv + 1×1 conv + identity on one input, summed (RepVGG), with stride.
    Branches { k: usize, stride: usize, identity: bool },
    /// VALID k1×k1 conv then VALID k2×k2 conv with stride (kernel sizes add).
    ValidChain { k1: usize, k2: usize, stride: usize },
    /// conv → mul → sub by per-channel constants (batch norm).
    Affine { k: usize, same: bool },
    /// Explicit zero pad then VALID conv.
    PadConv { k: usize, pads: [usize; 4], stride: usize },
    /// depthwise k×k then pointwise conv.
    DepthwisePointwise { k: usize, d: usize },
    /// fully connected chain.
    Dense { widths: Vec<usize> },
}

fn pattern() -> impl Strategy<Value = Pattern> {
    let k = prop::sample::select(vec![1usize, 2, 3, 5]);
    prop_oneof![
        (k.clone(), 1..40usize, 1..5usize, any::<bool>(), any::<bool>())
            .prop_map(|(k, p, d, same, relu)| Pattern::Block { k, p, d, same, relu }),
        (prop::sample::select(vec![1usize, 3, 5]), 1..40usize).prop_map(|(k, p)| Pattern::Residual { k, p }),
        (prop::sample::select(vec![1usize, 3, 5]), 1..3usize, any::<bool>())
            .prop_map(|(k, stride, identity)| Pattern::Branches { k, stride, identity }),
        (1..4usize, 1..4usize, 1..3usize).prop_map(|(k1, k2, stride)| Pattern::ValidChain { k1, k2, stride }),
        (k.clone(), any::<bool>()).prop_map(|(k, same)| Pattern::Affine { k, same }),
        (k.clone(), prop::array::uniform4(0..3usize), 1..3usize).prop_map(|(k, pads, stride)| Pattern::PadConv {
            k,
            pads,
            stride
        }),
        (k, 1..6usize).prop_map(|(k, d)| Pattern::DepthwisePointwise { k, d }),
        prop::collection::vec(1..12usize, 2..5).prop_map(|widths| Pattern::Dense { widths }),
    ]
}

fn build(p: &Pattern, h: usize, w: usize, c: usize, seed: u64) -> Graph {
    let mut b = B::new(seed);
    let spatial = !matches!(p, Pattern::Dense { .. });
    let in_shape = if spatial { vec![1, h, w, c] } else { vec![2, c] };
    let x = b.g.add_input("x", TensorType::new(DType::F32, in_shape));
    let y = match p {
        Pattern::Block { k, p, d, same, relu } => {
            let a = b.conv(x, *k, *p, 1, *same, Activation::None);
            b.conv(a, 1, *d, 1, false, if *relu { Activation::Relu } else { Activation::None })
        }
        Pattern::Residual { k, p } => {
            let a = b.conv(x, *k, *p, 1, true, Activation::None);
            let z = b.conv(a, 1, c, 1, false, Activation::None);
            b.add(z, x, Activation::Relu)
        }
        Pattern::Branches { k, stride, identity } => {
            let a = b.conv(x, *k, c, *stride, true, Activation::None);
            let z = b.conv(x, 1, c, *stride, true, Activation::None);
            let s = b.add(a, z, Activation::None);
            if *identity && *stride == 1 {
                b.add(x, s, Activation::Relu6)
            } else {
                s
            }
        }
        Pattern::ValidChain { k1, k2, stride } => {
            let a = b.conv(x, *k1, 3, 1, false, Activation::None);
            b.conv(a, *k2, 2, *stride, false, Activation::None)
        }
        Pattern::Affine { k, same } => {
            let a = b.conv(x, *k, 3, 1, *same, Activation::None);
            let m = b.affine(a, true);
            b.affine(m, false)
        }
        Pattern::PadConv { k, pads, stride } => {
            let a = b.pad(x, *pads);
            b.conv(a, *k, 2, *stride, false, Activation::None)
        }
        Pattern::DepthwisePointwise { k, d } => {
            let a = b.depthwise(x, *k, true);
            b.conv(a, 1, *d, 1, false, Activation::None)
        }
        Pattern::Dense { widths } => {
            let mut v = x;
            for &wd in widths {
                v = b.dense(v, wd);
            }
            v
        }
    };
    b.g.outputs.push(y);
    b.g
}

fn outputs(g: &Graph, seed: u64) -> Vec<Vec<f64>> {
    let interp = Interpreter::new(g, &Options { threads: 1 }).unwrap();
    interp.run(random_inputs(g, seed)).unwrap().iter().map(|t| t.data.to_f64_vec()).collect()
}

fn total_macs(g: &Graph) -> u64 {
    g.op_ids().map(|id| stats::macs(g, id)).sum()
}

/// Whether the pattern's convs fit the input (VALID kernels no larger than the input).
fn fits(p: &Pattern, h: usize, w: usize) -> bool {
    let n = h.min(w);
    match p {
        Pattern::Block { k, same, .. } | Pattern::Affine { k, same } => *same || *k <= n,
        Pattern::ValidChain { k1, k2, .. } => k1 + k2 - 1 <= n,
        Pattern::PadConv { k, pads, .. } => *k <= (h + pads[0] + pads[1]).min(w + pads[2] + pads[3]),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn rewrites_are_exact_and_never_costlier(
        p in pattern(), h in 1..9usize, w in 1..9usize, c in 1..5usize, seed in 0..1000u64
    ) {
        prop_assume!(fits(&p, h, w));
        let before = build(&p, h, w, c, seed);
        verify_graph(&before).unwrap();
        let mut after = before.clone();
        let outcome = run(&mut after, RuleSet::ALL, Limits::default(), &MacCost).unwrap();
        verify_graph(&after).map_err(|e| TestCaseError::fail(format!("{p:?}: invalid after rewrite: {e}")))?;
        prop_assert!(after.op_count() <= before.op_count() + 1, "{p:?}: grew");
        if outcome.rewritten.is_empty() {
            prop_assert_eq!(after.op_count(), before.op_count());
        }
        for r in &outcome.rewritten {
            prop_assert!(r.cost_after < r.cost_before, "{:?}: rewrite not cheaper: {:?}", p, r);
        }
        // MACs by the IR's own count (not the engine's) do not grow either.
        prop_assert!(total_macs(&after) <= total_macs(&before) + 2 * before.value(before.outputs[0]).ty.num_elements().unwrap(),
            "{p:?}: MACs grew");
        let (want, got) = (outputs(&before, seed), outputs(&after, seed));
        for (expected, actual) in want.iter().zip(&got) {
            let scale = expected.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
            let err = expected.iter().zip(actual).fold(0f64, |m, (a, b)| m.max((a - b).abs())) / scale;
            prop_assert!(err <= 1e-5, "{:?} {}x{}x{}: relative error {:e}", p, h, w, c, err);
        }
    }
}

#[test]
fn every_pattern_family_rewrites_somewhere() {
    // The property above would pass vacuously if nothing ever fired; check that each
    // family does collapse on a representative case.
    let cases = [
        Pattern::Block { k: 3, p: 32, d: 2, same: true, relu: true },
        Pattern::Residual { k: 3, p: 32 },
        Pattern::Branches { k: 3, stride: 1, identity: true },
        Pattern::ValidChain { k1: 2, k2: 2, stride: 1 },
        Pattern::Affine { k: 3, same: true },
        Pattern::PadConv { k: 3, pads: [1, 1, 1, 1], stride: 1 },
        Pattern::Dense { widths: vec![8, 1, 8] },
    ];
    for p in cases {
        let mut g = build(&p, 6, 6, 3, 1);
        let before = g.op_count();
        let outcome = run(&mut g, RuleSet::ALL, Limits::default(), &MacCost).unwrap();
        assert!(!outcome.rewritten.is_empty() && g.op_count() < before, "{p:?} did not collapse");
    }
}
