//! Cost providers: pluggable estimators that add columns to the stage table.
//!
//! This crate ships the target-independent [`AnalyticCost`]; simulator- and GNN-based
//! providers live in crates above (they implement the same trait).

use npuc_ir::Graph;

/// Something that puts numbers on a graph: each call returns one value per column.
pub trait CostProvider {
    /// Provider name, prefixed to its column names in the stage table.
    fn name(&self) -> &str;
    /// Column names, in the order [`CostProvider::cost`] returns values.
    fn columns(&self) -> Vec<&'static str>;
    /// The cost of one graph, one value per column.
    fn cost(&self, g: &Graph) -> Vec<f64>;
}

/// Target-independent analytic cost: multiply-accumulates and bytes moved (the sum over
/// ops of the storage bytes of every operand and result, weights included).
#[derive(Clone, Copy, Debug, Default)]
pub struct AnalyticCost;

impl CostProvider for AnalyticCost {
    fn name(&self) -> &str {
        "analytic"
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["macs", "bytes_moved"]
    }

    fn cost(&self, g: &Graph) -> Vec<f64> {
        let macs = npuc_ir::stats::graph_stats(g).macs;
        let bytes = g.op_ids().map(|id| npuc_ir::stats::bytes_moved(g, id)).fold(0u64, u64::saturating_add);
        vec![macs as f64, bytes as f64]
    }
}
