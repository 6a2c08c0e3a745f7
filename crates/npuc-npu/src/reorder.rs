//! Weight reorder: OHWI weights into the order the Ethos-U weight decoder feeds the MAC array,
//! zero-padded, ready for [`crate::codec::encode`]; and the per-channel scale/bias record.
//!
//! The traversal (facts in docs/ethos-u-weight-stream.md, "Reorder") was checked against
//! Vela 5.2's `ethosu.vela.api.npu_encode_weights` (which reorders and encodes in one call):
//! decoding Vela's stream yields exactly [`reorder`]'s output. Per-core interleaving on
//! multi-core Ethos-U65 happens before this step (every `cores`-th OFM channel per core).

use thiserror::Error;

/// The Ethos-U configurations, which differ in micro-block depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// Ethos-U55 with 32 MACs/cycle.
    U55_32,
    /// Ethos-U55 with 64 MACs/cycle.
    U55_64,
    /// Ethos-U55 with 128 MACs/cycle.
    U55_128,
    /// Ethos-U55 with 256 MACs/cycle.
    U55_256,
    /// Ethos-U65 with 256 MACs/cycle.
    U65_256,
    /// Ethos-U65 with 512 MACs/cycle (two cores).
    U65_512,
}

impl Accelerator {
    /// OFM micro-block depth: 4 on U55-32, 8 elsewhere (Vela's architecture table).
    pub fn ofm_ublock_depth(self) -> usize {
        if self == Accelerator::U55_32 {
            4
        } else {
            8
        }
    }

    /// IFM micro-block depth: 8 on every configuration.
    pub fn ifm_ublock_depth(self) -> usize {
        8
    }
}

/// How the weight decoder walks a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traversal {
    /// IFM depth innermost, in blocks of 32 (8-bit IFM) or 16 (16-bit IFM).
    DepthFirst,
    /// Kernel elements innermost in groups of 4 (8-bit) or 2 (16-bit), IFM blocks of 16.
    PartKernelFirst,
    /// One IFM channel per OFM channel; kernel elements padded to a multiple of 4.
    Depthwise,
}

/// Everything the reorder depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorderParams {
    /// The accelerator (micro-block depths).
    pub accelerator: Accelerator,
    /// OFM channels per block of the chosen block configuration.
    pub ofm_block_depth: usize,
    /// Kernel traversal.
    pub traversal: Traversal,
    /// IFM element width: 8 or 16.
    pub ifm_bits: u32,
    /// Dilation (x, y): 1 or 2; sub-kernels are at most 8×8 / dilation.
    pub dilation: (usize, usize),
}

/// Errors of the reorder and the scale/bias record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReorderError {
    /// The weight buffer does not match the OHWI shape.
    #[error("weights hold {got} values but shape {shape:?} (OHWI) needs {want}")]
    ShapeMismatch {
        /// The OHWI shape.
        shape: [usize; 4],
        /// Values the shape needs.
        want: usize,
        /// Values given.
        got: usize,
    },
    /// A parameter is outside what the hardware supports.
    #[error("unsupported reorder parameter: {0}")]
    Unsupported(String),
    /// A scale/bias field does not fit its bit width.
    #[error("{field} = {value} does not fit the scale/bias record ({bits}-bit {kind})")]
    FieldRange {
        /// Field name.
        field: &'static str,
        /// The value.
        value: i64,
        /// Field width.
        bits: u32,
        /// "signed" or "unsigned".
        kind: &'static str,
    },
}

/// Reorders OHWI weights (`shape` = [O, H, W, I], row-major) into weight-stream order with
/// the hardware's zero padding. For depthwise, I is 1 and O is the channel count.
pub fn reorder(weights: &[i16], shape: [usize; 4], p: &ReorderParams) -> Result<Vec<i16>, ReorderError> {
    let [ofm_depth, kh, kw, ifm_depth] = shape;
    let want = shape.iter().product::<usize>();
    if weights.len() != want {
        return Err(ReorderError::ShapeMismatch { shape, want, got: weights.len() });
    }
    if p.ifm_bits != 8 && p.ifm_bits != 16 {
        return Err(ReorderError::Unsupported(format!("IFM bit depth {}", p.ifm_bits)));
    }
    let (dx, dy) = p.dilation;
    if !(1..=2).contains(&dx) || !(1..=2).contains(&dy) {
        return Err(ReorderError::Unsupported(format!("dilation {dx}x{dy}")));
    }
    if p.ofm_block_depth == 0 {
        return Err(ReorderError::Unsupported("OFM block depth 0".into()));
    }
    let depthwise = p.traversal == Traversal::Depthwise;
    let part_kernel = p.traversal == Traversal::PartKernelFirst;
    let ifm_ub = p.accelerator.ifm_ublock_depth();
    let ofm_ub = p.accelerator.ofm_ublock_depth();
    let ifm_block_depth = if part_kernel || p.ifm_bits == 16 { 16 } else { 32 };
    // Sub-kernels are at most 8×8 taps of the dilated kernel.
    let (decomp_h, decomp_w) = (8 / dy, 8 / dx);
    let at = |o: usize, y: usize, x: usize, i: usize| weights[((o * kh + y) * kw + x) * ifm_depth + i];
    let mut out = Vec::with_capacity(want * 2);
    for ofm_block in (0..ofm_depth).step_by(p.ofm_block_depth) {
        let ofm_block_len = p.ofm_block_depth.min(ofm_depth - ofm_block);
        let ifm_blocks = if depthwise { 1 } else { ifm_depth };
        for ifm_block in (0..ifm_blocks).step_by(ifm_block_depth) {
            let ifm_block_len = if depthwise {
                ifm_ub
            } else if part_kernel {
                ifm_block_depth.min(ifm_depth - ifm_block)
            } else {
                ifm_block_depth
            };
            for sub_y in (0..kh).step_by(decomp_h) {
                let sub_h = decomp_h.min(kh - sub_y);
                for sub_x in (0..kw).step_by(decomp_w) {
                    let sub_w = decomp_w.min(kw - sub_x);
                    let group = match p.traversal {
                        Traversal::PartKernelFirst if p.ifm_bits == 16 => 2,
                        Traversal::PartKernelFirst | Traversal::Depthwise => 4,
                        Traversal::DepthFirst => 1,
                    };
                    let elements = (sub_w * sub_h).div_ceil(group) * group;
                    // Part-kernel-first walks IFM micro-blocks outside the kernel elements,
                    // depth-first inside them.
                    let (outer, inner) = if part_kernel { (ifm_block_len, 1) } else { (1, ifm_block_len) };
                    for ifm_outer in (0..outer).step_by(ifm_ub) {
                        for ofm_ublk in (0..ofm_block_len).step_by(ofm_ub) {
                            for e in 0..elements {
                                let (ky, kx) = (e / sub_w, e % sub_w);
                                for ifm_inner in (0..inner).step_by(ifm_ub) {
                                    for oz in 0..ofm_ub {
                                        for iz in 0..(if depthwise { 1 } else { ifm_ub }) {
                                            let i = ifm_block + ifm_outer + ifm_inner + iz;
                                            let o = ofm_block + ofm_ublk + oz;
                                            let v = if i < ifm_depth && o < ofm_depth && ky < sub_h {
                                                at(o, sub_y + ky, sub_x + kx, i)
                                            } else {
                                                0
                                            };
                                            out.push(v);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Packs one OFM channel's scale/bias record: 10 bytes, little-endian — a signed 40-bit
/// bias, an unsigned 32-bit multiplier, then a 6-bit shift (top two bits zero).
pub fn scale_bias_record(bias: i64, scale: u32, shift: u32) -> Result<[u8; 10], ReorderError> {
    if !(-(1i64 << 39)..(1i64 << 39)).contains(&bias) {
        return Err(ReorderError::FieldRange { field: "bias", value: bias, bits: 40, kind: "signed" });
    }
    if shift >= 64 {
        return Err(ReorderError::FieldRange { field: "shift", value: i64::from(shift), bits: 6, kind: "unsigned" });
    }
    let mut r = [0u8; 10];
    r[..5].copy_from_slice(&bias.to_le_bytes()[..5]);
    r[5..9].copy_from_slice(&scale.to_le_bytes());
    r[9] = shift as u8;
    Ok(r)
}
