//! The crate's error type.

/// Why a graph could not be exported to MLIR.
#[derive(Debug, thiserror::Error)]
pub enum MlirError {
    /// An op (or one of its operands) that this exporter cannot express in TOSA.
    #[error("op {index} ({op}) cannot be exported to TOSA: {reason}")]
    Unsupported {
        /// The op's name.
        op: String,
        /// The op's index in the graph.
        index: usize,
        /// What exactly is missing.
        reason: String,
    },
    /// A graph input, output or constant whose type or data cannot be expressed.
    #[error("tensor '{name}' cannot be exported to MLIR: {reason}")]
    Value {
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The module has no graph to export.
    #[error("the module has no graph")]
    NoGraph,
    /// The graph itself is malformed (e.g. has a cycle).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// MLIR's verifier rejected what the exporter built: a bug in npuc, not in the model.
    #[error("MLIR's verifier rejected the exported module: {0}")]
    Verify(String),
    /// MLIR refused to build an operation or attribute (also a bug in npuc).
    #[error("internal error building MLIR: {0}")]
    Internal(String),
}
