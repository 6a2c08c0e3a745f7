//! Property tests of the `prune` pass on random conv/FC weights: unstructured pruning
//! reaches exactly `round(s·n)` zeros by magnitude, N:M holds in every group, and channel
//! pruning of channels that are already dead (zero weights and bias) keeps the graph valid
//! and its output unchanged.

use npuc_interp::{random_inputs, Data, Interpreter, Options, Tensor};
use npuc_ir::{
    verify_graph, Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph, Op,
    Operation, Padding, TensorType, ValueId,
};
use npuc_pass::{CompressionConfig, Structure};
use npuc_prune::Prune;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn f32_bytes(v: &[f32]) -> Constant {
    Constant::from(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
}

fn f32s_of(g: &Graph, v: ValueId) -> Vec<f32> {
    let b = g.value(v).data.as_ref().unwrap().bytes().unwrap();
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn random_weights(rng: &mut ChaCha8Rng, n: usize, zero_fraction: f64) -> Vec<f32> {
    (0..n).map(|_| if rng.random_bool(zero_fraction) { 0.0 } else { rng.random_range(-1.0f32..1.0) }).collect()
}

fn conv_attrs() -> Op {
    Op::Conv2d(Conv2dAttrs {
        padding: Padding::Same,
        stride: [1, 1],
        dilation: [1, 1],
        activation: Activation::None,
        bias_type: None,
    })
}

fn fc_graph(out: usize, inn: usize, w: &[f32]) -> (Graph, ValueId) {
    let mut g = Graph::new("fc");
    let x = g.add_input("x", TensorType::new(DType::F32, vec![1, inn]));
    let wv = g.add_const("fc/w", TensorType::new(DType::F32, vec![out, inn]), f32_bytes(w));
    let y = g.add_value(npuc_ir::Value::new("fc", TensorType::new(DType::F32, vec![1, out])));
    let attrs = FullyConnectedAttrs {
        activation: Activation::None,
        keep_num_dims: false,
        shuffled_weights: false,
        asymmetric_quantize_inputs: false,
        bias_type: None,
    };
    g.add_op(Operation::new(Op::FullyConnected(attrs), vec![Some(x), Some(wv), None], vec![y])).unwrap();
    g.outputs.push(y);
    (g, wv)
}

fn the_weights(g: &Graph) -> Vec<f32> {
    let op = g.op_ids().next().unwrap();
    f32s_of(g, g.op(op).input(1).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn unstructured_zeros_exactly_round_s_n_smallest(seed in any::<u64>(), out in 1usize..6, inn in 1usize..20, s in 0.0f64..0.99, pre in 0.0f64..0.3) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = random_weights(&mut rng, out * inn, pre);
        let (mut g, _) = fc_graph(out, inn, &w);
        Prune::new(s, Structure::Unstructured).prune(&mut g, 0).unwrap();
        verify_graph(&g).unwrap();
        let after = the_weights(&g);
        let n = w.len();
        let before_zeros = w.iter().filter(|x| **x == 0.0).count();
        let want = ((s * n as f64).round() as usize).max(before_zeros);
        prop_assert_eq!(after.iter().filter(|x| **x == 0.0).count(), want);
        // Kept weights are unchanged, and none is smaller than a removed one.
        let mut max_removed = 0.0f32;
        let mut min_kept = f32::INFINITY;
        for (a, b) in w.iter().zip(&after) {
            if *b == 0.0 { max_removed = max_removed.max(a.abs()); } else { prop_assert_eq!(a, b); min_kept = min_kept.min(b.abs()); }
        }
        prop_assert!(max_removed <= min_kept, "removed {} > kept {}", max_removed, min_kept);
    }

    #[test]
    fn n_of_m_holds_in_every_group(seed in any::<u64>(), out in 1usize..5, inn in 1usize..20, m in 2u32..9, n_raw in 1u32..8) {
        let n = 1 + n_raw % (m - 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = random_weights(&mut rng, out * inn, 0.0);
        let (mut g, _) = fc_graph(out, inn, &w);
        Prune::new(0.5, Structure::NOfM { n, m }).prune(&mut g, 0).unwrap();
        let after = the_weights(&g);
        for row in after.chunks(inn) {
            for (gi, group) in row.chunks(m as usize).enumerate() {
                let keep = (n as usize * group.len()).div_ceil(m as usize);
                let nz = group.iter().filter(|x| **x != 0.0).count();
                prop_assert_eq!(nz, keep, "row {:?} group {}", row, gi);
            }
        }
        // Kept values are the originals.
        for (a, b) in w.iter().zip(&after) {
            prop_assert!(*b == 0.0 || a == b);
        }
    }

    #[test]
    fn pruning_dead_channels_keeps_the_output(seed in any::<u64>(), c1 in 2usize..7, c2 in 2usize..7, dead1_raw in any::<u64>(), dead2_raw in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Dead channel sets: at least one channel of each space stays alive.
        let dead1: Vec<usize> = (0..c1).filter(|i| dead1_raw >> i & 1 == 1).take(c1 - 1).collect();
        let dead2: Vec<usize> = (0..c2).filter(|i| dead2_raw >> i & 1 == 1).take(c2 - 1).collect();
        let (mut g, _) = residual_graph(&mut rng, c1, c2, &dead1, &dead2);
        verify_graph(&g).unwrap();
        let inputs = random_inputs(&g, seed);
        let before = run(&g, inputs.clone());
        // floor((k + 0.5) / c · c) = k: each space drops exactly its dead channels.
        let s1 = (dead1.len() as f64 + 0.5) / c1 as f64;
        let s2 = (dead2.len() as f64 + 0.5) / c2 as f64;
        let text = format!(
            "[[layer]]\nmatch = \"conv1\"\nsparsity = {s1}\nstructure = \"channel\"\n[[layer]]\nmatch = \"conv[23]\"\nsparsity = {s2}\nstructure = \"channel\"\n"
        );
        let config = CompressionConfig::parse(&text, "t.toml").unwrap();
        let mut pass = Prune::new(0.0, Structure::Channel);
        pass.config = Some(config);
        let report = pass.prune(&mut g, 0).unwrap();
        verify_graph(&g).unwrap();
        let conv2 = g.op_ids().find(|&o| g.value(g.op(o).outputs[0]).name == "conv2").unwrap();
        prop_assert_eq!(g.value(g.op(conv2).outputs[0]).ty.shape[3], c2 - dead2.len(), "{:?}", report.notes);
        let dw = g.op_ids().find(|&o| g.value(g.op(o).outputs[0]).name == "dw").unwrap();
        prop_assert_eq!(g.value(g.op(dw).outputs[0]).ty.shape[3], c1 - dead1.len(), "{:?}", report.notes);
        let after = run(&g, inputs);
        prop_assert_eq!(before, after);
    }
}

fn run(g: &Graph, inputs: Vec<Tensor>) -> Vec<f32> {
    let out = Interpreter::new(g, &Options { threads: 1 }).unwrap().run(inputs).unwrap();
    match &out[0].data {
        Data::F32(v) => v.clone(),
        other => panic!("f32 output expected, got {:?}", other.dtype()),
    }
}

/// x → conv1 → relu → depthwise → conv2 ─┐
///  └──────────────────────────→ conv3 ─ add → conv4 → output
/// Channels `dead1` of conv1 (weights, bias, and the depthwise bias) and `dead2` of conv2
/// and conv3 (weights and bias) are zero, so they carry exact zeros.
fn residual_graph(rng: &mut ChaCha8Rng, c1: usize, c2: usize, dead1: &[usize], dead2: &[usize]) -> (Graph, ValueId) {
    let mut g = Graph::new("residual");
    let cin = 3;
    let x = g.add_input("x", TensorType::new(DType::F32, vec![1, 5, 5, cin]));
    let conv =
        |g: &mut Graph, name: &str, input: ValueId, cout: usize, k: usize, dead: &[usize], rng: &mut ChaCha8Rng| {
            let cinn = *g.value(input).ty.shape.last().unwrap();
            let per = k * k * cinn;
            let mut w = random_weights(rng, cout * per, 0.0);
            let mut b = random_weights(rng, cout, 0.0);
            for &d in dead {
                w[d * per..(d + 1) * per].fill(0.0);
                b[d] = 0.0;
            }
            let wv =
                g.add_const(format!("{name}/w"), TensorType::new(DType::F32, vec![cout, k, k, cinn]), f32_bytes(&w));
            let bv = g.add_const(format!("{name}/b"), TensorType::new(DType::F32, vec![cout]), f32_bytes(&b));
            let y = g.add_value(npuc_ir::Value::new(name, TensorType::new(DType::F32, vec![1, 5, 5, cout])));
            g.add_op(Operation::new(conv_attrs(), vec![Some(input), Some(wv), Some(bv)], vec![y])).unwrap();
            y
        };
    let a = conv(&mut g, "conv1", x, c1, 3, dead1, rng);
    let r = g.add_value(npuc_ir::Value::new("relu", TensorType::new(DType::F32, vec![1, 5, 5, c1])));
    g.add_op(Operation::new(Op::Relu, vec![Some(a)], vec![r])).unwrap();
    let dw_w = random_weights(rng, 9 * c1, 0.0);
    let mut dw_b = random_weights(rng, c1, 0.0);
    for &d in dead1 {
        dw_b[d] = 0.0;
    }
    let dwv = g.add_const("dw/w", TensorType::new(DType::F32, vec![1, 3, 3, c1]), f32_bytes(&dw_w));
    let dbv = g.add_const("dw/b", TensorType::new(DType::F32, vec![c1]), f32_bytes(&dw_b));
    let d = g.add_value(npuc_ir::Value::new("dw", TensorType::new(DType::F32, vec![1, 5, 5, c1])));
    let attrs = DepthwiseConv2dAttrs {
        padding: Padding::Same,
        stride: [1, 1],
        dilation: [1, 1],
        depth_multiplier: 1,
        activation: Activation::None,
    };
    g.add_op(Operation::new(Op::DepthwiseConv2d(attrs), vec![Some(r), Some(dwv), Some(dbv)], vec![d])).unwrap();
    let b2 = conv(&mut g, "conv2", d, c2, 1, dead2, rng);
    let b3 = conv(&mut g, "conv3", x, c2, 1, dead2, rng);
    let s = g.add_value(npuc_ir::Value::new("add", TensorType::new(DType::F32, vec![1, 5, 5, c2])));
    g.add_op(Operation::new(
        Op::Add { activation: Activation::None, pot_scale_int16: false },
        vec![Some(b2), Some(b3)],
        vec![s],
    ))
    .unwrap();
    let y = conv(&mut g, "conv4", s, 2, 1, &[], rng);
    g.outputs.push(y);
    (g, y)
}
