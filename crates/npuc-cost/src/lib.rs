//! npuc's learned cost model, after PerfSAGE (papers.md §3): a graph neural network that
//! predicts a graph's latency, energy and memory on a target without lowering it.
//!
//! [`features`] is the fixed-width numeric description of every op (node features), the value
//! edges between ops, and the target description as a vector, so one model can serve every
//! target. [`model`] is the GraphSAGE network in candle, [`train`] its seeded training with
//! early stopping, its scores (MAPE, ±5/±10% shares, Spearman ρ) and its checkpoints
//! (safetensors + JSON). The dataset (labelled by npuc's simulator) and the shipped
//! predictor build on these. The analytic cost (MACs, bytes moved) stays in `npuc-pass`; simulation lives in
//! `npuc-npu`. This crate does not read model files.

pub mod features;
pub mod model;
pub mod train;

pub use features::{graph_features, target_features, GraphFeatures, NODE_FEATURES, OP_VOCABULARY, TARGET_FEATURES};
