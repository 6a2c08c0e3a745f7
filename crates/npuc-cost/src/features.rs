//! PerfSAGE's inputs: per-op node features, value edges, and target features.
//!
//! PerfSAGE (Chai et al., 2023) describes each op by its type and by the sizes that drive
//! its cost on an accelerator; npuc adds what compression changes on an NPU — weight bits,
//! sparsity and encoded weight bytes (UDC, papers.md §2). Sizes span nine decades, so they
//! enter as `log2(1 + x)`; ratios and flags enter as they are. The layout is fixed: a
//! trained model depends on it, so columns are only ever appended, never reordered.

use std::collections::BTreeMap;

use npuc_ir::{Activation, Graph, Op, OpId, Padding};
use npuc_target::{ExternalKind, Family, Target};
use serde::{Deserialize, Serialize};

/// Op types with their own embedding row, by IR mnemonic; everything else shares the last
/// row (`other`). Append only: the index is part of a trained model.
pub const OP_VOCABULARY: &[&str] = &[
    "conv_2d",
    "depthwise_conv_2d",
    "transpose_conv",
    "fully_connected",
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "minimum",
    "squared_difference",
    "average_pool_2d",
    "max_pool_2d",
    "mean",
    "sum",
    "reshape",
    "squeeze",
    "expand_dims",
    "concatenation",
    "split",
    "split_v",
    "pack",
    "unpack",
    "pad",
    "padv2",
    "strided_slice",
    "slice",
    "transpose",
    "depth_to_space",
    "space_to_depth",
    "batch_to_space_nd",
    "space_to_batch_nd",
    "resize_bilinear",
    "resize_nearest_neighbor",
    "relu",
    "relu6",
    "relu_n1_to_1",
    "leaky_relu",
    "prelu",
    "logistic",
    "tanh",
    "hard_swish",
    "softmax",
    "quantize",
    "dequantize",
    "gather",
    "arg_max",
    "l2_normalization",
    "exp",
    "sqrt",
    "rsqrt",
    "shape",
    "other",
];

/// Names of the node feature columns, in order.
pub const NODE_FEATURES: &[&str] = &[
    "log_out_elements",
    "log_out_h",
    "log_out_w",
    "log_out_c",
    "log_in_elements",
    "log_in_h",
    "log_in_w",
    "log_in_c",
    "log_macs",
    "log_bytes_moved",
    "log_weight_elements",
    "log_weight_bytes",
    "log_encoded_weight_bytes",
    "kernel_h",
    "kernel_w",
    "stride_h",
    "stride_w",
    "dilation_h",
    "dilation_w",
    "padding_same",
    "in_bits",
    "out_bits",
    "weight_bits",
    "weight_value_bits",
    "weight_sparsity",
    "act_relu",
    "act_relu6",
    "act_other",
    "reads_graph_input",
    "writes_graph_output",
];

/// Names of the target feature columns, in order.
pub const TARGET_FEATURES: &[&str] = &[
    "log_clock_hz",
    "log_macs_i8",
    "log_macs_i16",
    "log_sram_bytes",
    "sram_bytes_per_cycle",
    "external_bytes_per_cycle",
    "external_is_dram",
    "weights_per_cycle",
    "mac_i8_pj",
    "sram_pj_per_byte",
    "external_pj_per_byte",
    "static_power_mw",
    "family_ethos_u55",
    "family_ethos_u65",
    "family_mobile_npu",
];

/// A graph as the GNN sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphFeatures {
    /// Per op (in topological order): index into [`OP_VOCABULARY`].
    pub op_type: Vec<u32>,
    /// Per op: [`NODE_FEATURES`] values.
    pub nodes: Vec<Vec<f32>>,
    /// Producer → consumer pairs of op positions, one per non-constant value use.
    pub edges: Vec<(u32, u32)>,
}

fn log2p(x: f64) -> f32 {
    (1.0 + x.max(0.0)).log2() as f32
}

/// The vocabulary index of an op.
pub fn op_type_index(op: &Op) -> u32 {
    let m = op.mnemonic();
    let other = OP_VOCABULARY.len() - 1;
    OP_VOCABULARY.iter().position(|&v| v == m).unwrap_or(other) as u32
}

/// The `[h, w, c]` of an NHWC shape, or `[elements, 1, last]` for other ranks.
fn hwc(shape: &[usize]) -> [f64; 3] {
    match shape {
        [_, h, w, c] => [*h as f64, *w as f64, *c as f64],
        [] => [1.0, 1.0, 1.0],
        s => {
            let last = *s.last().unwrap_or(&1) as f64;
            let rest: f64 = s[..s.len() - 1].iter().map(|&d| d as f64).product();
            [rest, 1.0, last]
        }
    }
}

/// The weight operand's position, if the op has constant weights.
fn weight_slot(op: &Op) -> Option<usize> {
    match op {
        Op::Conv2d(_) | Op::DepthwiseConv2d(_) | Op::FullyConnected(_) => Some(1),
        Op::TransposeConv(_) => Some(1),
        _ => None,
    }
}

/// Zeros among the weight values, and the bits their largest magnitude needs (sign
/// included): a 4-bit layer stored in int8 shows up as 4.
fn weight_stats(g: &Graph, id: OpId) -> Option<(f64, f64)> {
    let v = g.value(g.op(id).input(weight_slot(&g.op(id).op)?)?);
    let bytes = v.data.as_ref()?.bytes()?;
    let (zeros, total, max_abs) = match v.ty.dtype {
        npuc_ir::DType::I8 => {
            let vals = bytes.iter().map(|&b| i64::from(b as i8));
            vals.fold((0u64, 0u64, 0i64), |(z, n, m), x| (z + u64::from(x == 0), n + 1, m.max(x.abs())))
        }
        npuc_ir::DType::F32 => {
            let (mut z, mut n) = (0u64, 0u64);
            for c in bytes.chunks_exact(4) {
                let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                z += u64::from(x == 0.0);
                n += 1;
            }
            // Float weights have no integer range yet: they will be quantized to 8 bits.
            (z, n, 127)
        }
        _ => return None,
    };
    let bits = if max_abs == 0 { 1.0 } else { (max_abs as f64 + 1.0).log2().ceil() + 1.0 };
    Some((zeros as f64 / total.max(1) as f64, bits))
}

/// Node features, op types and edges of `g`. `encoded_weight_bytes` gives, per op, the
/// size of its weights in the target's compressed stream when known (from the NPU back
/// end); otherwise the weights' storage bytes stand in.
pub fn graph_features(g: &Graph, encoded_weight_bytes: Option<&BTreeMap<OpId, u64>>) -> GraphFeatures {
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids().collect());
    let position: BTreeMap<OpId, u32> = order.iter().enumerate().map(|(i, &id)| (id, i as u32)).collect();
    let mut out = GraphFeatures { op_type: Vec::new(), nodes: Vec::new(), edges: Vec::new() };
    for &id in &order {
        let o = g.op(id);
        let first_input = o.inputs.iter().flatten().map(|&v| g.value(v)).find(|v| !v.is_constant());
        let result = o.outputs.first().map(|&v| g.value(v));
        let (out_shape, in_shape) = (
            result.map(|v| v.ty.shape.clone()).unwrap_or_default(),
            first_input.map(|v| v.ty.shape.clone()).unwrap_or_default(),
        );
        let elements = |s: &[usize]| s.iter().map(|&d| d as f64).product::<f64>();
        let weights = weight_slot(&o.op).and_then(|s| o.input(s)).map(|v| g.value(v));
        let weight_elements = weights.and_then(|w| w.ty.num_elements()).unwrap_or(0) as f64;
        let weight_bytes = weights.and_then(|w| w.ty.storage_bytes()).unwrap_or(0) as f64;
        let encoded = encoded_weight_bytes.and_then(|m| m.get(&id)).map_or(weight_bytes, |&b| b as f64);
        let (kernel, stride, dilation, same) = match &o.op {
            Op::Conv2d(a) => (kernel_of(weights), a.stride, a.dilation, a.padding == Padding::Same),
            Op::DepthwiseConv2d(a) => (kernel_of(weights), a.stride, a.dilation, a.padding == Padding::Same),
            Op::TransposeConv(a) => (kernel_of(weights), a.stride, [1, 1], a.padding == Padding::Same),
            Op::AveragePool2d(a) | Op::MaxPool2d(a) => (a.filter, a.stride, [1, 1], a.padding == Padding::Same),
            _ => ([1, 1], [1, 1], [1, 1], false),
        };
        let activation = fused_activation(&o.op);
        let (sparsity, value_bits) = weight_stats(g, id).unwrap_or((0.0, 0.0));
        let bits = |v: Option<&npuc_ir::Value>| v.map_or(0.0, |v| v.ty.dtype.bits() as f32 / 32.0);
        let [oh, ow, oc] = hwc(&out_shape);
        let [ih, iw, ic] = hwc(&in_shape);
        let row = vec![
            log2p(elements(&out_shape)),
            log2p(oh),
            log2p(ow),
            log2p(oc),
            log2p(elements(&in_shape)),
            log2p(ih),
            log2p(iw),
            log2p(ic),
            log2p(npuc_ir::stats::macs(g, id) as f64),
            log2p(npuc_ir::stats::bytes_moved(g, id) as f64),
            log2p(weight_elements),
            log2p(weight_bytes),
            log2p(encoded),
            kernel[0] as f32,
            kernel[1] as f32,
            stride[0] as f32,
            stride[1] as f32,
            dilation[0] as f32,
            dilation[1] as f32,
            f32::from(u8::from(same)),
            bits(first_input),
            bits(result),
            bits(weights),
            value_bits as f32 / 8.0,
            sparsity as f32,
            f32::from(u8::from(activation == Activation::Relu)),
            f32::from(u8::from(activation == Activation::Relu6)),
            f32::from(u8::from(!matches!(activation, Activation::None | Activation::Relu | Activation::Relu6))),
            f32::from(u8::from(o.inputs.iter().flatten().any(|v| g.inputs.contains(v)))),
            f32::from(u8::from(o.outputs.iter().any(|v| g.outputs.contains(v)))),
        ];
        debug_assert_eq!(row.len(), NODE_FEATURES.len());
        out.op_type.push(op_type_index(&o.op));
        out.nodes.push(row);
        for &v in o.inputs.iter().flatten() {
            if let Some(p) = g.producer(v) {
                out.edges.push((position[&p], position[&id]));
            }
        }
    }
    out
}

/// `[kh, kw]` of an OHWI (or 1HWC) weight tensor.
fn kernel_of(weights: Option<&npuc_ir::Value>) -> [u32; 2] {
    match weights.map(|w| w.ty.shape.as_slice()) {
        Some([_, h, w, _]) => [*h as u32, *w as u32],
        _ => [1, 1],
    }
}

/// The activation an op applies to its result, fused or as the op itself.
fn fused_activation(op: &Op) -> Activation {
    match op {
        Op::Conv2d(a) => a.activation,
        Op::DepthwiseConv2d(a) => a.activation,
        Op::TransposeConv(a) => a.activation,
        Op::FullyConnected(a) => a.activation,
        Op::AveragePool2d(a) | Op::MaxPool2d(a) => a.activation,
        Op::Add { activation, .. } | Op::Sub { activation, .. } | Op::Mul { activation } => *activation,
        Op::Relu => Activation::Relu,
        Op::Relu6 => Activation::Relu6,
        _ => Activation::None,
    }
}

/// The target as a vector, so one model can serve every target (and be asked about one it
/// was not trained on).
pub fn target_features(t: &Target) -> Vec<f32> {
    let family = |f: Family| f32::from(u8::from(t.family == f));
    let row = vec![
        log2p(t.compute.clock_hz as f64),
        log2p(f64::from(t.compute.macs_per_cycle.i8xi8)),
        log2p(f64::from(t.compute.macs_per_cycle.i16xi8)),
        log2p(t.memory.sram.size_bytes as f64),
        t.memory.sram.bandwidth as f32,
        t.memory.external.bandwidth as f32,
        f32::from(u8::from(t.memory.external.kind == ExternalKind::Dram)),
        t.weight_decoder.weights_per_cycle as f32,
        t.energy.mac_i8xi8_pj as f32,
        t.energy.sram_pj_per_byte as f32,
        t.energy.external_pj_per_byte as f32,
        t.energy.static_power_mw as f32,
        family(Family::EthosU55),
        family(Family::EthosU65),
        family(Family::MobileNpu),
    ];
    debug_assert_eq!(row.len(), TARGET_FEATURES.len());
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_graph() -> Graph {
        let s = npuc_zoo::space::sample(npuc_zoo::space::Space::KeywordSpotting, 0).unwrap();
        s.module.graphs.into_iter().next().unwrap()
    }

    #[test]
    fn one_row_per_op_with_every_column_finite() {
        let g = sample_graph();
        let f = graph_features(&g, None);
        assert_eq!(f.nodes.len(), g.op_count());
        assert_eq!(f.op_type.len(), g.op_count());
        for row in &f.nodes {
            assert_eq!(row.len(), NODE_FEATURES.len());
            assert!(row.iter().all(|x| x.is_finite()), "{row:?}");
        }
        // A chain of ops: every op but the first reads a produced value.
        assert!(f.edges.len() >= g.op_count() - 1);
        assert!(f.edges.iter().all(|&(a, b)| a < b), "edges follow topological order");
    }

    #[test]
    fn convolutions_carry_their_geometry_and_work() {
        let g = sample_graph();
        let f = graph_features(&g, None);
        let col = |name: &str| NODE_FEATURES.iter().position(|&c| c == name).unwrap();
        let conv = f.op_type.iter().position(|&t| OP_VOCABULARY[t as usize] == "conv_2d").unwrap();
        let row = &f.nodes[conv];
        assert!(row[col("log_macs")] > 10.0);
        assert_eq!(row[col("stride_h")], 2.0, "the first DS-CNN conv has stride 2");
        assert_eq!(row[col("padding_same")], 1.0);
        assert_eq!(row[col("reads_graph_input")], 1.0);
        assert_eq!(row[col("weight_sparsity")], 0.0);
        let softmax = f.op_type.iter().position(|&t| OP_VOCABULARY[t as usize] == "softmax").unwrap();
        assert_eq!(f.nodes[softmax][col("writes_graph_output")], 1.0);
    }

    #[test]
    fn encoded_weight_bytes_replace_storage_bytes_when_known() {
        let g = sample_graph();
        let order = g.topo_order().unwrap();
        let conv = order[0];
        let col = NODE_FEATURES.iter().position(|&c| c == "log_encoded_weight_bytes").unwrap();
        let plain = graph_features(&g, None).nodes[0][col];
        let known = graph_features(&g, Some(&BTreeMap::from([(conv, 100u64)]))).nodes[0][col];
        assert!(plain > known && (known - 101f32.log2()).abs() < 1e-6);
    }

    #[test]
    fn every_target_gives_a_distinct_vector() {
        let rows: Vec<Vec<f32>> =
            npuc_target::builtin_names().map(|n| target_features(&Target::builtin(n).unwrap())).collect();
        assert!(rows.len() >= 7);
        for (i, a) in rows.iter().enumerate() {
            assert_eq!(a.len(), TARGET_FEATURES.len());
            for b in &rows[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_vocabulary_ends_with_other_and_has_no_duplicates() {
        assert_eq!(OP_VOCABULARY.last(), Some(&"other"));
        let set: std::collections::BTreeSet<_> = OP_VOCABULARY.iter().collect();
        assert_eq!(set.len(), OP_VOCABULARY.len());
    }
}
