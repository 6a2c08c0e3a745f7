//! Errors of the IR crate.

use thiserror::Error;

/// Everything that can go wrong building, checking or parsing a graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// An operand or result names a value that is not in the arena.
    #[error("op {op} refers to value #{value}, which does not exist")]
    UnknownValue {
        /// Value id.
        value: u32,
        /// Op name.
        op: String,
    },
    /// Two ops (or two results of one op) claim the same value.
    #[error("value '{value}' is produced twice (second time by {op})")]
    ValueProducedTwice {
        /// Value name.
        value: String,
        /// Index of the first producer (`usize::MAX` if the same op).
        first: usize,
        /// Op name of the second producer.
        op: String,
    },
    /// The graph has a cycle through the given op.
    #[error("graph has a cycle through op #{op}")]
    Cycle {
        /// Index of an op on the cycle.
        op: usize,
    },
    /// Shape inference or type checking failed for an op.
    #[error("op #{index} ({op}): {reason}")]
    InvalidOp {
        /// Op index in the graph.
        index: usize,
        /// Op name.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// A value is malformed on its own (bad quantization, data size, …).
    #[error("value '{name}' (#{index}): {reason}")]
    InvalidValue {
        /// Value index.
        index: u32,
        /// Value name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Something about the graph as a whole (inputs, outputs, signatures).
    #[error("graph '{graph}': {reason}")]
    InvalidGraph {
        /// Graph name.
        graph: String,
        /// What is wrong.
        reason: String,
    },
    /// The text format could not be parsed.
    #[error("{line}:{col}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What was expected or found.
        message: String,
    },
}
