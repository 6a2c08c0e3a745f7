//! Intrinsic size and work of a graph: parameters, constant bytes, multiply-accumulates.
//!
//! These depend only on ops and shapes, not on any target, so they live with the IR; cost
//! models build on them.

use crate::graph::{Graph, OpId};
use crate::op::Op;

/// Bytes one op moves: the storage bytes of every operand (weights included, a value read
/// twice counted twice) and every result. The analytic cost model's memory term.
pub fn bytes_moved(g: &Graph, id: OpId) -> u64 {
    let o = g.op(id);
    o.inputs
        .iter()
        .flatten()
        .chain(&o.outputs)
        .map(|&v| g.value(v).ty.storage_bytes().unwrap_or(0))
        .fold(0u64, u64::saturating_add)
}

/// Multiply-accumulate operations of one op, counted as TFLite-style tools count them:
/// one per weight tap per output element for convolutions and fully connected layers, one
/// per element for elementwise multiplies, and zero for data movement.
pub fn macs(g: &Graph, id: OpId) -> u64 {
    let o = g.op(id);
    let ty = |slot: usize| o.input(slot).map(|v| &g.value(v).ty);
    let out_elems = o.outputs.first().and_then(|&v| g.value(v).ty.num_elements()).unwrap_or(0);
    let mul = |a: u64, b: u64| a.saturating_mul(b);
    match &o.op {
        Op::Conv2d(_) => {
            // Filter OHWI: every output element takes H·W·I taps.
            let f = ty(1).map(|t| t.shape.iter().skip(1).map(|&d| d as u64).product()).unwrap_or(0);
            mul(out_elems, f)
        }
        Op::DepthwiseConv2d(_) => {
            let f = ty(1).map(|t| t.shape.iter().skip(1).take(2).map(|&d| d as u64).product()).unwrap_or(0);
            mul(out_elems, f)
        }
        Op::TransposeConv(_) => {
            // Operands: output shape, filter OHWI, input. Each input element scatters into
            // O·H·W outputs.
            let in_elems = ty(2).and_then(|t| t.num_elements()).unwrap_or(0);
            let f = ty(1).map(|t| t.shape.iter().take(3).map(|&d| d as u64).product()).unwrap_or(0);
            mul(in_elems, f)
        }
        Op::FullyConnected(_) => {
            let k = ty(1).and_then(|t| t.shape.last().copied()).unwrap_or(0) as u64;
            mul(out_elems, k)
        }
        Op::Mul { .. } | Op::SquaredDifference | Op::Prelu => out_elems,
        Op::AveragePool2d(a) => mul(out_elems, u64::from(a.filter[0]) * u64::from(a.filter[1])),
        Op::Mean { .. } | Op::Sum { .. } | Op::L2Normalization { .. } => {
            ty(0).and_then(|t| t.num_elements()).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Whether a constant counts as a model parameter: weights and biases (float or
/// quantized), not the integer shape/axis operands that ride along as constants.
pub fn is_parameter(g: &Graph, v: crate::graph::ValueId) -> bool {
    let val = g.value(v);
    val.is_constant() && (val.ty.dtype.is_float() || val.ty.quant.is_some())
}

/// Totals for one graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// Number of ops.
    pub ops: usize,
    /// Number of live values.
    pub values: usize,
    /// Elements of all parameter constants.
    pub parameters: u64,
    /// Bytes of all constants (parameters and shape operands).
    pub constant_bytes: u64,
    /// Sum of [`macs`] over ops.
    pub macs: u64,
}

/// Computes [`GraphStats`] for a graph.
pub fn graph_stats(g: &Graph) -> GraphStats {
    let live = g.live_values();
    let mut s = GraphStats { ops: g.op_count(), ..Default::default() };
    for v in g.value_ids().filter(|v| live[v.index()]) {
        s.values += 1;
        let val = g.value(v);
        if val.is_constant() {
            s.constant_bytes += val.data.as_ref().map_or(0, |d| d.len() as u64);
            if is_parameter(g, v) {
                s.parameters += val.ty.num_elements().unwrap_or(0);
            }
        }
    }
    s.macs = g.op_ids().map(|id| macs(g, id)).fold(0u64, u64::saturating_add);
    s
}
