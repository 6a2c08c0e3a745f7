//! npuc's learned cost model, after PerfSAGE (papers.md §3): a graph neural network that
//! predicts a graph's latency, energy and memory on a target without lowering it.
//!
//! This first step holds [`features`]: the fixed-width numeric description of every op (node
//! features), the value edges between ops, and the target description as a vector, so one
//! model can serve every target. The GNN, its training and the shipped predictor build on
//! these. The analytic cost (MACs, bytes moved) stays in `npuc-pass`; simulation lives in
//! `npuc-npu`. This crate does not read model files.

pub mod features;

pub use features::{graph_features, target_features, GraphFeatures, NODE_FEATURES, OP_VOCABULARY, TARGET_FEATURES};
