//! Errors of the TFLite front and back end.

use thiserror::Error;

use npuc_ir::IrError;

/// Why a TFLite file could not be read or a module could not be written as one.
///
/// Every variant carries the place in the file (subgraph, tensor, operator index) so the
/// driver can print one line a user can act on.
#[derive(Debug, Error)]
pub enum TfliteError {
    /// The bytes are not a TFLite flatbuffer at all.
    #[error("not a TFLite model: {reason}")]
    NotTflite {
        /// What was found instead.
        reason: String,
    },
    /// The flatbuffer verifier rejected the file.
    #[error("corrupt flatbuffer: {0}")]
    Flatbuffer(#[from] flatbuffers::InvalidFlatbuffer),
    /// A required field is absent.
    #[error("missing {field} ({place})")]
    Missing {
        /// Where in the model.
        place: String,
        /// Which field.
        field: &'static str,
    },
    /// An index points outside the table it indexes.
    #[error("{what} index {index} out of range, have {len} ({place})")]
    BadIndex {
        /// Where in the model.
        place: String,
        /// What kind of index (buffer, tensor, opcode, subgraph).
        what: &'static str,
        /// The index found.
        index: i64,
        /// Number of entries available.
        len: usize,
    },
    /// A value in the file is out of its legal range or inconsistent.
    #[error("{reason} ({place})")]
    Invalid {
        /// Where in the model.
        place: String,
        /// What is wrong.
        reason: String,
    },
    /// A feature of the format npuc does not handle (and will not silently drop).
    #[error("unsupported {what} ({place})")]
    Unsupported {
        /// Where in the model.
        place: String,
        /// What is not supported.
        what: String,
    },
    /// An operator version newer than npuc knows the semantics of.
    #[error("{op} version {version} is not supported, npuc knows versions 1 to {max} ({place})")]
    UnsupportedVersion {
        /// Where in the model.
        place: String,
        /// Operator name.
        op: String,
        /// Version found.
        version: i32,
        /// Highest known version.
        max: u32,
    },
    /// The imported graph failed the IR verifier.
    #[error("{source} (subgraph {graph})")]
    Verify {
        /// Subgraph index.
        graph: usize,
        /// The verifier's finding.
        #[source]
        source: IrError,
    },
    /// The module cannot be written as TFLite.
    #[error("cannot export: {0}")]
    Export(String),
}

impl TfliteError {
    /// Shorthand for [`TfliteError::Invalid`].
    pub(crate) fn invalid(place: impl Into<String>, reason: impl Into<String>) -> Self {
        TfliteError::Invalid { place: place.into(), reason: reason.into() }
    }
}
