//! Algebraic rewrites of linear regions on an e-graph (egg): the SESR paper's collapse of
//! linear blocks (`collapse-linear`), batch-norm style folding of per-channel constants
//! into convolutions (`fold-batchnorm`) and folding of zero PAD into convolution padding
//! (`fold-pad`).
//!
//! One engine serves all three: [`engine`] cuts the graph into regions of float linear
//! ops, [`lang`] is the term language and its analysis (which evaluates kernel algebra
//! exactly, in f64), [`rules`] are the rewrites, and extraction picks the cheapest
//! equivalent term under a [`CostModel`] (MACs by default). A region is rewritten only
//! when that term is strictly cheaper, and only by rewrites exact at every pixel, borders
//! included. This crate does not touch quantized tensors: collapse before quantizing.

pub mod engine;
pub mod kernel;
pub mod lang;
mod passes;
pub mod rules;

pub use engine::{run, CostModel, EngineError, Limits, MacCost, Outcome, Rewritten};
pub use passes::{CollapseLinear, FoldBatchnorm, FoldPad, COLLAPSE_LINEAR, FOLD_BATCHNORM, FOLD_PAD};
pub use rules::RuleSet;
