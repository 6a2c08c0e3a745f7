//! LSB-first bit packing, the order of the Ethos-U weight stream (docs/ethos-u-weight-stream.md):
//! every field is written least significant bit first, and bytes fill from their bit 0.

use super::CodecError;

/// Appends fields to a byte vector, least significant bit first.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    /// Finished bytes.
    bytes: Vec<u8>,
    /// Pending bits not yet forming a whole byte (low `nacc` bits are valid).
    acc: u64,
    /// Number of valid bits in `acc` (always < 8 between calls).
    nacc: u32,
}

impl BitWriter {
    /// A writer with room for roughly `bytes` bytes.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self { bytes: Vec::with_capacity(bytes), acc: 0, nacc: 0 }
    }

    /// Writes the low `n` bits of `v` (n ≤ 32).
    #[inline]
    pub(crate) fn put(&mut self, n: u32, v: u32) {
        debug_assert!(n <= 32);
        if n == 0 {
            return;
        }
        let mask = if n == 32 { u32::MAX } else { (1u32 << n) - 1 };
        self.acc |= u64::from(v & mask) << self.nacc;
        self.nacc += n;
        while self.nacc >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.nacc -= 8;
        }
    }

    /// Fills the current byte with ones and returns the bytes.
    pub(crate) fn finish_ones(mut self) -> Vec<u8> {
        if self.nacc > 0 {
            let fill = 8 - self.nacc;
            self.put(fill, (1u32 << fill) - 1);
        }
        self.bytes
    }
}

/// Reads LSB-first fields from a byte slice, failing with the bit offset on underrun.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    /// The stream.
    data: &'a [u8],
    /// Next bit to read.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at bit 0 of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Bit offset of the next read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Total bits in the stream.
    pub(crate) fn len_bits(&self) -> usize {
        self.data.len() * 8
    }

    /// Reads an `n`-bit field (n ≤ 32) named `field` (for the error message).
    #[inline]
    pub(crate) fn get(&mut self, n: u32, field: &'static str) -> Result<u32, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        if self.pos + n as usize > self.len_bits() {
            return Err(CodecError::Truncated { field, bit: self.pos, need: n, have: self.len_bits() - self.pos });
        }
        let mut v: u64 = 0;
        let mut got = 0u32;
        let mut pos = self.pos;
        while got < n {
            let byte = self.data[pos / 8] as u64;
            let off = (pos % 8) as u32;
            let take = (8 - off).min(n - got);
            let bits = (byte >> off) & ((1u64 << take) - 1);
            v |= bits << got;
            got += take;
            pos += take as usize;
        }
        self.pos = pos;
        Ok(v as u32)
    }

    /// Skips to the next byte boundary.
    pub(crate) fn align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
    }
}
