//! Errors of the pass infrastructure.

use thiserror::Error;

/// Why a pipeline could not be parsed, built or run.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PassError {
    /// The pipeline text is malformed.
    #[error("bad pipeline '{text}' at column {col}: {message}")]
    Syntax {
        /// The whole pipeline text.
        text: String,
        /// 1-based column (in characters) of the offending character.
        col: usize,
        /// What was expected or found.
        message: String,
    },
    /// No registered pass has this name.
    #[error("unknown pass '{name}' (valid passes: {valid})")]
    UnknownPass {
        /// The name given.
        name: String,
        /// Comma-separated names of the registered passes.
        valid: String,
    },
    /// A pass was given an option it does not declare.
    #[error("pass '{pass}' has no option '{option}' (valid options: {valid})")]
    UnknownOption {
        /// The pass.
        pass: String,
        /// The option given.
        option: String,
        /// Comma-separated declared options, or `none`.
        valid: String,
    },
    /// An option value does not parse as the option's type or is out of range.
    #[error("pass '{pass}': option '{option}' has bad value '{value}' (expected {expected})")]
    BadOptionValue {
        /// The pass.
        pass: String,
        /// The option.
        option: String,
        /// The value given.
        value: String,
        /// What was expected (type and range).
        expected: String,
    },
    /// An option was given twice.
    #[error("pass '{pass}': option '{option}' is given twice")]
    DuplicateOption {
        /// The pass.
        pass: String,
        /// The option.
        option: String,
    },
    /// A pass asked for an option it never declared (a bug in the pass).
    #[error("pass '{pass}' reads undeclared option '{option}' as {expected}")]
    UndeclaredOption {
        /// The pass.
        pass: String,
        /// The option.
        option: String,
        /// The type the pass asked for.
        expected: String,
    },
    /// A pass cannot handle this model or its data (an unsupported op, calibration samples
    /// of the wrong shape, …): the input's fault, not npuc's.
    #[error("pass '{pass}' cannot handle graph #{graph} '{graph_name}': {message}")]
    Unsupported {
        /// The pass.
        pass: String,
        /// Graph index in the module.
        graph: usize,
        /// Graph name.
        graph_name: String,
        /// What the pass cannot handle, and where.
        message: String,
    },
    /// A pass failed on a graph (a bug in the pass).
    #[error("pass '{pass}' failed on graph #{graph} '{graph_name}': {message}")]
    Failed {
        /// The pass.
        pass: String,
        /// Graph index in the module.
        graph: usize,
        /// Graph name.
        graph_name: String,
        /// What went wrong.
        message: String,
    },
    /// The IR verifier rejected the module after a pass (`verify_each`).
    #[error("IR verification failed after pass '{pass}': {message}")]
    Verify {
        /// The pass that ran last.
        pass: String,
        /// The verifier's message.
        message: String,
    },
    /// Writing instrumentation output failed.
    #[error("cannot write pass output: {0}")]
    Io(String),
}
