//! Per-op and per-graph analytic cost (MACs and bytes moved), attached to the MLIR export
//! as `npuc.cost`. Free of LLVM so it is testable in default builds.

use npuc_ir::{Graph, OpId};

/// Name of the discardable cost attribute on ops and on `@main`.
pub const COST_ATTRIBUTE: &str = "npuc.cost";

/// The analytic cost of one op or graph, as the stage table's `analytic` columns count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Multiply-accumulates ([`npuc_ir::stats::macs`]).
    pub macs: u64,
    /// Storage bytes of every operand and result, weights included ([`npuc_ir::stats::bytes_moved`]).
    pub bytes: u64,
}

/// The cost of op `id` of `graph`: the same per-op terms that npuc-pass's `AnalyticCost` sums.
pub fn op_cost(graph: &Graph, id: OpId) -> Cost {
    Cost { macs: npuc_ir::stats::macs(graph, id), bytes: npuc_ir::stats::bytes_moved(graph, id) }
}

/// The cost of the whole graph: [`op_cost`] summed over every op (also those the export
/// drops as shape plumbing), so it equals the stage table's analytic columns.
pub fn graph_cost(graph: &Graph) -> Cost {
    graph.op_ids().map(|id| op_cost(graph, id)).fold(Cost::default(), |a, c| Cost {
        macs: a.macs.saturating_add(c.macs),
        bytes: a.bytes.saturating_add(c.bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_cost_counts_taps_and_every_operand() {
        let module = npuc_ir::parse_module(
            r#"graph @main(%x: tensor<1x4x4x1xf32> {name = "x"}) {
  %w = const dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]> : tensor<2x3x3x1xf32> {name = "w"}
  %c = conv_2d(%x, %w) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x4x4x2xf32> {name = "c"}
  %r = add(%c, %c) : tensor<1x4x4x2xf32> {name = "r"}
  return %r
}"#,
        )
        .expect("test IR parses");
        let g = module.main().expect("graph");
        let ids: Vec<OpId> = g.op_ids().collect();
        // 32 outputs × 9 taps; x (16) + w (18) + out (32) f32 values.
        assert_eq!(op_cost(g, ids[0]), Cost { macs: 288, bytes: 4 * (16 + 18 + 32) });
        // Both operands count, even when they are the same value.
        assert_eq!(op_cost(g, ids[1]), Cost { macs: 0, bytes: 4 * (32 + 32 + 32) });
        assert_eq!(graph_cost(g), Cost { macs: 288, bytes: 4 * (16 + 18 + 32 + 96) });
    }
}
