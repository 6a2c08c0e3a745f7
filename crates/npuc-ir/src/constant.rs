//! Shared constant data.

use bytes::Bytes;
use std::fmt;

/// The contents of a constant tensor, in the tensor's storage layout (row-major,
/// little-endian, `I4` packed).
///
/// Cloning is a reference-count increment: the importer slices constants straight out of
/// the file's buffer, and passes share them until they actually change a value.
///
/// A constant parsed from abbreviated text (`npuc print` shows large constants as a hash)
/// is *elided*: its length and hash are known, its bytes are not. Anything that needs the
/// bytes (export, execution) reports that instead of guessing.
#[derive(Clone, PartialEq, Eq)]
pub struct Constant {
    repr: Repr,
}

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Data(Bytes),
    Elided { hash: String, len: usize, preview: String },
}

/// Number of hex digits of the BLAKE3 hash the text format shows: 64 bits keep accidental
/// collisions out of reach for any real model.
pub const HASH_DIGITS: usize = 16;

impl Constant {
    /// Wraps shared bytes without copying.
    pub fn new(bytes: Bytes) -> Self {
        Constant { repr: Repr::Data(bytes) }
    }

    /// Copies a slice into a new constant.
    pub fn from_slice(data: &[u8]) -> Self {
        Constant::new(Bytes::copy_from_slice(data))
    }

    /// A constant known only by its length and short hash (from abbreviated text).
    pub fn elided(hash: impl Into<String>, len: usize) -> Self {
        Constant::elided_with_preview(hash, len, String::new())
    }

    /// An elided constant that keeps the preview text it was printed with (e.g.
    /// `[1, -2, ...]`), so printing it again reproduces the same text.
    pub fn elided_with_preview(hash: impl Into<String>, len: usize, preview: impl Into<String>) -> Self {
        Constant { repr: Repr::Elided { hash: hash.into(), len, preview: preview.into() } }
    }

    /// The preview text of an elided constant (empty if none), `None` for real data.
    pub fn elided_preview(&self) -> Option<&str> {
        match &self.repr {
            Repr::Data(_) => None,
            Repr::Elided { preview, .. } => Some(preview),
        }
    }

    /// The bytes, or `None` if the constant was elided.
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.repr {
            Repr::Data(b) => Some(b),
            Repr::Elided { .. } => None,
        }
    }

    /// Whether only the hash is known.
    pub fn is_elided(&self) -> bool {
        matches!(self.repr, Repr::Elided { .. })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Data(b) => b.len(),
            Repr::Elided { len, .. } => *len,
        }
    }

    /// Whether the constant holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// BLAKE3 content hash, hex, truncated to [`HASH_DIGITS`] digits.
    pub fn short_hash(&self) -> String {
        match &self.repr {
            Repr::Data(b) => blake3::hash(b).to_hex()[..HASH_DIGITS].to_string(),
            Repr::Elided { hash, .. } => hash.clone(),
        }
    }
}

impl fmt::Debug for Constant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_elided() { ", elided" } else { "" };
        write!(f, "Constant({} bytes, {}{kind})", self.len(), self.short_hash())
    }
}

impl From<Vec<u8>> for Constant {
    fn from(v: Vec<u8>) -> Self {
        Constant::new(Bytes::from(v))
    }
}
