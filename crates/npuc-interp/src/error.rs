//! Errors of the interpreter.

use thiserror::Error;

/// Why a graph could not be executed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum InterpError {
    /// A caller-supplied input does not fit the graph.
    #[error("input '{name}': {reason}")]
    Input {
        /// Input name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// An op cannot be executed (unsupported kind or dtype, bad operands).
    #[error("op #{index} ({op}): {reason}")]
    Op {
        /// Position in execution order.
        index: usize,
        /// Op name.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// The graph itself cannot be prepared (cycle, elided or undecodable constant).
    #[error("{0}")]
    Graph(String),
}

/// A kernel's own failure, before the interpreter adds the op's index and name.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{0}")]
pub struct KernelError(pub String);

impl KernelError {
    /// A kernel error with a message.
    pub fn new(msg: impl Into<String>) -> Self {
        KernelError(msg.into())
    }
}

impl From<String> for KernelError {
    fn from(s: String) -> Self {
        KernelError(s)
    }
}
