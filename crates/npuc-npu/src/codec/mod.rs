//! Encoder and decoder of the Arm Ethos-U55/U65 compressed weight stream.
//!
//! The format is the one Vela's `ethosu.mlw_codec` reads and writes (PyPI `ethos-u-vela`);
//! its facts — those public in /work/shared/reference/ethos-u-weight-stream.md and those
//! established against `ethosu.mlw_codec` — are written down in docs/ethos-u-weight-stream.md.
//! No code is taken from Vela: the decoder follows the documented bit layout, and the encoder's
//! choices (zero-run mode, palette, Golomb–Rice parameters per chunk) are npuc's own cost search.
//!
//! A stream holds signed 9-bit values (−255..=255) — weights minus their zero point, already
//! in hardware traversal order (the reorder is a later step).

mod bits;
mod decode;
mod encode;

pub use decode::decode;
pub use encode::encode;

/// Smallest value a stream can carry.
pub const MIN_VALUE: i16 = -255;
/// Largest value a stream can carry.
pub const MAX_VALUE: i16 = 255;
/// Most weight-stream values in one slice (SLICELEN is 15 bits holding length − 1).
pub const MAX_SLICE_VALUES: usize = 1 << 15;
/// Streams are padded with 0xFF to a multiple of this many bytes.
pub const STREAM_ALIGN: usize = 16;

/// ZDIV value meaning "no zero-run stream in this slice".
pub(crate) const ZDIV_DISABLE: u32 = 6;
/// ZDIV value marking the end of a stream.
pub(crate) const ZDIV_EOS: u32 = 7;
/// WDIV value meaning "indices stored uncompressed at a fixed width".
pub(crate) const WDIV_UNCOMPRESSED: u32 = 7;
/// Largest Golomb–Rice divisor exponent for weights.
pub(crate) const MAX_WDIV: u32 = 5;
/// Largest Golomb–Rice divisor exponent for zero runs.
pub(crate) const MAX_ZDIV: u32 = 3;
/// Most palette entries (PALSIZE is 5 bits holding size − 1; 0 means no palette).
pub(crate) const MAX_PALETTE: usize = 32;

/// Errors of the weight stream codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A value to encode is outside the signed 9-bit range.
    #[error("value {value} at index {index} is outside the encodable range -255..=255")]
    ValueOutOfRange {
        /// Position of the value in the input.
        index: usize,
        /// The offending value.
        value: i32,
    },
    /// The stream ended inside a field.
    #[error("truncated weight stream: field {field} needs {need} bits at bit offset {bit}, only {have} left")]
    Truncated {
        /// Name of the field being read.
        field: &'static str,
        /// Bit offset of the field.
        bit: usize,
        /// Bits the field needs.
        need: u32,
        /// Bits left in the stream.
        have: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("corrupt weight stream at bit offset {bit}: {what}")]
    Corrupt {
        /// Bit offset where the problem was detected.
        bit: usize,
        /// What is wrong.
        what: String,
    },
}
