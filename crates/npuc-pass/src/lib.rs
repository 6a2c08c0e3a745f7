//! npuc's pass infrastructure.
//!
//! This crate is what every graph-to-graph transformation plugs into: the [`Pass`] trait,
//! typed pass options with their declarations ([`OptionInfo`]), an explicit [`Registry`]
//! of [`PassInfo`] entries (assembled by the driver from the pass crates, like rustc's MIR
//! pass list; no global registration), the pipeline text syntax
//! (`dce,prune{sparsity=0.5}`, see [`parse_pipeline`]), and the [`PassManager`] that runs a
//! pipeline over every graph of a module with instrumentation (verify after each pass,
//! print after passes, timing, numerics through the reference interpreter) and records a
//! [`StageTable`] with cost columns from pluggable [`CostProvider`]s.
//!
//! It is not a place for passes themselves (those live in `passes/*`, one crate per family)
//! and knows nothing about targets; target-aware costs arrive as further cost providers.

pub mod compression;
pub mod cost;
pub mod error;
pub mod manager;
pub mod options;
pub mod pass;
pub mod pipeline;
pub mod registry;
pub mod stage;

pub use compression::{weighted_layers, CompressionConfig, ConfigError, LayerSpec, Structure};
pub use cost::{AnalyticCost, CostProvider};
pub use error::PassError;
pub use manager::{Instrumentation, PassManager, PipelineReport};
pub use options::{OptionInfo, OptionType, OptionValue, PassOptions};
pub use pass::{Pass, PassContext, PassReport};
pub use pipeline::{parse_pipeline, PipelineEntry};
pub use registry::{PassInfo, Registry};
pub use stage::{peak_activation_bytes, Numerics, OutputError, StageRecord, StageTable};
