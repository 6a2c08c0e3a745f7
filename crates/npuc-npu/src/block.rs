//! OFM block configuration: the output tile an Ethos-U op computes per block and the IFM
//! tile and shared-buffer (SHRAM) layout that feed it.
//!
//! The search follows Vela 5.2's `architecture_allocator.py` `find_block_config` (facts, not
//! code): candidate OFM blocks are multiples of the OFM micro-block up to `ofm_block_max`,
//! depth starting at `min(depth, OFMSplitDepth)` and growing by the micro-block depth
//! (rounded to the split depth while smaller than the OFM); a block is kept if its
//! double-buffered IFM block and accumulators fit the SHRAM banks between the reserved
//! output banks and the LUT banks; among those the one that fetches the fewest IFM and
//! weight elements per OFM element wins (ties: the smaller IFM coverage for blocks of at
//! most 4×4). Shapes are `[h, w, c]`, batch 1.

use std::collections::HashSet;

use npuc_target::Target;
use thiserror::Error;

/// The hardware pipeline an op runs on (Vela's `NpuBlockType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Convolution with an M×N kernel over all IFM channels.
    ConvMxN,
    /// Depthwise convolution: one IFM channel per OFM channel.
    Depthwise,
    /// Fully connected (matrix × vector).
    VectorProduct,
    /// Max/average pooling.
    Pooling,
    /// Elementwise unary or binary op.
    Elementwise,
    /// Reduction over depth.
    ReduceSum,
}

impl BlockKind {
    /// Whether the kernel is split into sub-kernels of at most 8×8 (Vela's
    /// `sub_kernel_limits`: 8×8 for convolutions and pooling, 1×1 for the rest).
    pub fn sub_kernel_limit(self) -> u32 {
        match self {
            BlockKind::VectorProduct | BlockKind::Elementwise => 1,
            _ => SUB_KERNEL_MAX,
        }
    }
}

/// Largest sub-kernel side (Vela `ArchitectureFeatures.SubKernelMax = Block(8, 8, 65536)`).
pub const SUB_KERNEL_MAX: u32 = 8;

/// A kernel: size, stride and dilation as `[y, x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel {
    /// Height and width.
    pub size: [u32; 2],
    /// Stride `[y, x]`.
    pub stride: [u32; 2],
    /// Dilation `[y, x]`.
    pub dilation: [u32; 2],
}

impl Kernel {
    /// A 1×1 kernel with unit stride.
    pub const UNIT: Kernel = Kernel { size: [1, 1], stride: [1, 1], dilation: [1, 1] };

    /// Dilated extent `[h, w]`.
    pub fn area(&self) -> [u32; 2] {
        [(self.size[0] - 1) * self.dilation[0] + 1, (self.size[1] - 1) * self.dilation[1] + 1]
    }

    /// Kernel elements (height × width).
    pub fn elements(&self) -> u64 {
        u64::from(self.size[0]) * u64::from(self.size[1])
    }
}

/// What the block search needs to know about one op.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockQuery {
    /// Pipeline.
    pub kind: BlockKind,
    /// OFM shape `[h, w, c]`.
    pub ofm: [u32; 3],
    /// IFM shape `[h, w, c]` (for FC: `[1, 1, in]`).
    pub ifm: [u32; 3],
    /// Second IFM of a binary elementwise op.
    pub ifm2: Option<[u32; 3]>,
    /// The second operand is a scalar.
    pub uses_scalar: bool,
    /// IFM element width in bits (8, 16 or 32).
    pub ifm_bits: u32,
    /// Kernel (1×1 for elementwise and FC).
    pub kernel: Kernel,
    /// SHRAM banks the op's LUT needs (0 without one).
    pub lut_banks: u32,
}

/// The chosen configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockConfig {
    /// OFM block `[h, w, c]`.
    pub ofm_block: [u32; 3],
    /// IFM block `[h, w, c]` feeding it.
    pub ifm_block: [u32; 3],
    /// Part-kernel-first traversal (else depth-first).
    pub is_partkernel: bool,
    /// Accumulator width in bits (32, or 40 for scaled 16-bit IFMs).
    pub acc_bits: u32,
}

/// Why no block configuration exists.
#[derive(Debug, Error, PartialEq)]
pub enum BlockError {
    /// The target has no `[timing]` section with the SHRAM granules.
    #[error("target {target}: no [timing] section (shared-buffer granules) for the block search")]
    NoTiming {
        /// Target name.
        target: String,
    },
    /// The IFM element width is not 8, 16 or 32 bits.
    #[error("IFM element width {bits} bits is not supported by the block search (8, 16 or 32)")]
    IfmBits {
        /// The width found.
        bits: u32,
    },
    /// A shape has a zero dimension.
    #[error("empty shape: OFM {ofm:?}, IFM {ifm:?}")]
    EmptyShape {
        /// OFM shape.
        ofm: [u32; 3],
        /// IFM shape.
        ifm: [u32; 3],
    },
    /// Not even the smallest block fits the shared buffer.
    #[error("no OFM block of {ofm:?} fits the {banks} shared-buffer banks")]
    NoFit {
        /// OFM shape.
        ofm: [u32; 3],
        /// Banks available.
        banks: u32,
    },
}

fn round_up(v: u64, m: u64) -> u64 {
    v.div_ceil(m) * m
}

fn elems(s: [u32; 3]) -> u64 {
    s.iter().map(|&d| u64::from(d)).product()
}

fn elems_wh(s: [u32; 3]) -> u64 {
    u64::from(s[0]) * u64::from(s[1])
}

/// Vela `_choose_kernel_method`: part-kernel-first when the IFM has at most 8 channels or
/// it wastes less of the MAC array than depth-first.
fn choose_partkernel(ifm_depth: u32, ifm_bits: u32, kernel: &Kernel) -> bool {
    if ifm_depth <= 8 {
        return true;
    }
    let d = f64::from(ifm_depth);
    let k = kernel.elements();
    let depth_util = d / round_up(u64::from(ifm_depth), if ifm_bits == 8 { 32 } else { 16 }) as f64;
    let part_util =
        d * k as f64 / (round_up(u64::from(ifm_depth), 8) * round_up(k, if ifm_bits == 8 { 4 } else { 2 })) as f64;
    part_util > depth_util
}

/// IFM block height/width for an OFM extent (Vela `_required_size` without resampling).
fn required(ofm: u32, stride: u32, border: u32) -> u32 {
    (ofm - 1) * stride + border
}

/// Shared-buffer geometry of a target.
struct Shram {
    total_banks: u32,
    bank_bytes: u64,
    reserved_output: u32,
    reserved_end: u32,
    granules: [u32; 8],
}

/// Granule indices into `Timing::shram_granules`.
const IFM8: usize = 0;
const IFM16: usize = 1;
const IFM8_EW: usize = 2;
const IFM16_EW: usize = 3;
const IFM32: usize = 4;
const ACC32: usize = 6;
const ACC40: usize = 7;

#[derive(PartialEq, Eq, Clone, Copy)]
enum EwUsage {
    No,
    Full,
    Scalar,
}

/// Vela `_try_block_config`: does a double-buffered IFM block plus accumulators fit?
/// `(bits, ifm_gran)` and `acc` are the element width and bank granule of IFM and
/// accumulators.
fn fits(
    sh: &Shram,
    ew: EwUsage,
    ofm_block: [u32; 3],
    ifm_block: [u32; 3],
    (bits, ifm_gran): (u32, u32),
    acc: (u32, u32),
    lut_banks: u32,
) -> bool {
    let ifm_bytes = elems_wh(ifm_block) * round_up(u64::from(ifm_block[2]) * u64::from(bits) / 8, 8);
    let ifm_banks = round_up(ifm_bytes.div_ceil(sh.bank_bytes) * 2, u64::from(ifm_gran));
    let lut_start = u64::from(sh.total_banks.saturating_sub(lut_banks));
    let ifm_end = u64::from(sh.reserved_output) + ifm_banks;
    let mut acc_start = lut_start;
    if ew == EwUsage::No {
        let (acc_bits, acc_gran) = acc;
        let acc_bytes = elems_wh(ofm_block) * round_up(u64::from(ofm_block[2]), 8) * u64::from(acc_bits) / 8;
        let acc_banks = round_up(acc_bytes.div_ceil(sh.bank_bytes) * 2, u64::from(acc_gran));
        if acc_banks > acc_start {
            return false;
        }
        acc_start -= acc_banks;
    } else {
        let ifm2_banks = if ew == EwUsage::Full { ifm_banks } else { 0 };
        return ifm_end + ifm2_banks <= acc_start;
    }
    ifm_end <= acc_start
}

/// Find the OFM block configuration Vela 5.2 would choose for `q` on `target`.
pub fn find_block_config(target: &Target, q: &BlockQuery) -> Result<BlockConfig, BlockError> {
    let timing = target.timing.as_ref().ok_or_else(|| BlockError::NoTiming { target: target.name.clone() })?;
    if ![8, 16, 32].contains(&q.ifm_bits) {
        return Err(BlockError::IfmBits { bits: q.ifm_bits });
    }
    if q.ofm.contains(&0) || q.ifm.contains(&0) {
        return Err(BlockError::EmptyShape { ofm: q.ofm, ifm: q.ifm });
    }
    let b = &target.blocks;
    let sh = Shram {
        total_banks: b.shram_banks,
        bank_bytes: u64::from(b.shram_bank_bytes),
        reserved_output: timing.shram_reserved_output_banks,
        reserved_end: timing.shram_reserved_end_banks,
        granules: timing.shram_granules,
    };
    let ublock = b.ofm_ublock;
    let ofm = q.ofm;
    // Elementwise: the larger operand sizes the IFM (Vela's "larger-volume correction").
    let ifm = match q.ifm2 {
        Some(i2) if elems(i2) > elems(q.ifm) => i2,
        _ => q.ifm,
    };
    let ew = match (q.kind, q.uses_scalar) {
        (BlockKind::Elementwise, false) => EwUsage::Full,
        (BlockKind::Elementwise, true) => EwUsage::Scalar,
        _ => EwUsage::No,
    };
    let is_depthwise = q.kind == BlockKind::Depthwise;
    let equal_depth = ew != EwUsage::No || q.kind == BlockKind::Pooling || is_depthwise;
    let is_conv = q.kind == BlockKind::ConvMxN || is_depthwise;
    let is_partkernel = is_conv && choose_partkernel(ifm[2], q.ifm_bits, &q.kernel);
    // 40-bit accumulators for 16-bit IFMs outside pooling (Vela `_acc_type`, scaled ops).
    let acc_bits = if q.ifm_bits == 16 && q.kind != BlockKind::Pooling { 40 } else { 32 };
    let acc = (acc_bits, sh.granules[if acc_bits == 40 { ACC40 } else { ACC32 }]);
    let ifm_gran = match (ew != EwUsage::No, q.ifm_bits) {
        (true, 8) => sh.granules[IFM8_EW],
        (true, 16) => sh.granules[IFM16_EW],
        (false, 8) => sh.granules[IFM8],
        (false, 16) => sh.granules[IFM16],
        _ => sh.granules[IFM32],
    };
    let lut_banks = q.lut_banks.max(sh.reserved_end);
    let area = q.kernel.area();
    let sub = SUB_KERNEL_MAX;
    let ifm_repeats = u64::from(area[1].div_ceil(sub)) * u64::from(area[0].div_ceil(sub));
    // Vela `_ifm_blockdepth`.
    let ifm_block_depth = if q.ifm_bits == 16 {
        round_up(u64::from(ifm[2].min(16)), 4) as u32
    } else {
        round_up(u64::from(ifm[2].min(if is_partkernel { 16 } else { 32 })), u64::from(target.blocks.ifm_ublock[2]))
            as u32
    };
    let weight_fetch_wh = if is_conv { u64::from(area[0]) * u64::from(area[1]) } else { 0 };

    let space = [0, 1, 2].map(|i| round_up(u64::from(ofm[i].min(b.ofm_block_max[i])), u64::from(ublock[i])) as u32);
    let split = b.ofm_split_depth;
    let ofm_elems = elems(ofm) as f64;
    let ifm_elems = elems(ifm);
    let mut best: Option<(f64, f64, BlockConfig)> = None;
    let mut depth = ublock[2].max(space[2].min(split));
    if depth < ofm[2] {
        depth = round_up(u64::from(depth), u64::from(split)) as u32;
    }
    while depth <= space[2] {
        let mut wont_fit: HashSet<(u32, u32)> = HashSet::new();
        for height in (ublock[0]..=space[0]).step_by(ublock[0] as usize) {
            for width in (ublock[1]..=space[1]).step_by(ublock[1] as usize) {
                // Vela records misses as (width, height) and skips (height, width): the
                // transposed block of one that did not fit.
                if wont_fit.contains(&(height, width)) {
                    continue;
                }
                let ifm_h =
                    round_up(u64::from(required(height, q.kernel.stride[0], area[0].min(sub))), u64::from(ublock[0]))
                        as u32;
                let ifm_w =
                    round_up(u64::from(required(width, q.kernel.stride[1], area[1].min(sub))), u64::from(ublock[1]))
                        as u32;
                let ifm_block = [ifm_h, ifm_w, if equal_depth { depth } else { ifm_block_depth }];
                // Conv1D optimisation on 2-high micro-blocks (Vela `fit_block_for_ofm`).
                let fitted = if ofm[0] == 1 && q.kernel.size[0] == 1 && ublock[0] == 2 {
                    [height.min(ofm[0]), width, depth]
                } else {
                    [height, width, depth]
                };
                if !fits(&sh, ew, fitted, ifm_block, (q.ifm_bits, ifm_gran), acc, lut_banks) {
                    wont_fit.insert((width, height));
                    continue;
                }
                let full = [0, 1, 2].map(|i| u64::from(ofm[i].div_ceil(fitted[i])));
                let frac = [0, 1, 2].map(|i| f64::from(ofm[i]) / f64::from(fitted[i]));
                let mut weight_fetch = (weight_fetch_wh * u64::from(ifm[2]) * full[0] * full[1]) as f64;
                if !is_depthwise {
                    weight_fetch *= f64::from(fitted[2]) * frac[2];
                }
                let mut ifm_fetch = (elems_wh(ifm_block) * u64::from(ifm[2]) * ifm_repeats) as f64 * frac[0] * frac[1];
                if !equal_depth {
                    ifm_fetch *= full[2] as f64;
                }
                let mut cost = if q.kind == BlockKind::Elementwise {
                    (ofm_elems / f64::from(height * width * depth)).max(1.0)
                } else {
                    (ifm_fetch + weight_fetch) / ofm_elems
                };
                // Prefer blocks whose double-buffered IFM holds the whole IFM.
                if ifm_elems < elems(ifm_block) * 2 {
                    cost /= 2.0;
                }
                let cfg = BlockConfig { ofm_block: [height, width, depth], ifm_block, is_partkernel, acc_bits };
                match &mut best {
                    None => best = Some((cost, f64::INFINITY, cfg)),
                    Some((best_cost, best_cov, best_cfg)) => {
                        if cost < *best_cost {
                            *best_cost = cost;
                            *best_cov = f64::INFINITY;
                            *best_cfg = cfg;
                        } else if cost == *best_cost && height <= 4 && width <= 4 {
                            let cover = [ifm[0].min(ifm_block[0]), ifm[1].min(ifm_block[1]), 1];
                            let coverage = elems_wh(ifm) as f64 / elems_wh(cover) as f64;
                            if coverage <= *best_cov {
                                *best_cov = coverage;
                                *best_cfg = cfg;
                            }
                        }
                    }
                }
            }
        }
        depth += ublock[2];
        if depth < ofm[2] {
            depth = round_up(u64::from(depth), u64::from(split)) as u32;
        }
    }
    best.map(|(_, _, c)| c).ok_or(BlockError::NoFit { ofm, banks: sh.total_banks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(kind: BlockKind, hw: [u32; 2], cin: u32, cout: u32, k: u32) -> BlockQuery {
        BlockQuery {
            kind,
            ofm: [hw[0], hw[1], cout],
            ifm: [hw[0], hw[1], cin],
            ifm2: None,
            uses_scalar: false,
            ifm_bits: 8,
            kernel: Kernel { size: [k, k], stride: [1, 1], dilation: [1, 1] },
            lut_banks: 0,
        }
    }

    /// The six layers of crates/npuc-target/scripts/vela_blocks.py, whose Vela 5.2 blocks
    /// (printed by that script) are the `blocks.candidates` of each target file.
    fn layers() -> Vec<BlockQuery> {
        use BlockKind::*;
        vec![
            conv(ConvMxN, [540, 960], 16, 16, 3),
            conv(ConvMxN, [540, 960], 1, 16, 5),
            conv(ConvMxN, [56, 56], 64, 64, 1),
            conv(ConvMxN, [112, 112], 32, 64, 3),
            conv(Depthwise, [56, 56], 128, 128, 3),
            conv(ConvMxN, [14, 14], 256, 256, 1),
        ]
    }

    fn blocks_for(target: &str) -> Vec<[u32; 3]> {
        let t = Target::builtin(target).expect("builtin target");
        layers().iter().map(|q| find_block_config(&t, q).expect("block").ofm_block).collect()
    }

    fn dedup(v: Vec<[u32; 3]>) -> Vec<[u32; 3]> {
        let mut out: Vec<[u32; 3]> = Vec::new();
        for b in v {
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn reproduces_vela_blocks_per_layer_on_u55_128() {
        // Per-layer output of vela_blocks.py for ethos-u55-128.
        let want = vec![[7, 12, 16], [8, 16, 16], [8, 8, 32], [8, 8, 16], [7, 12, 16], [3, 14, 48]];
        assert_eq!(blocks_for("ethos-u55-128"), want);
    }

    #[test]
    fn reproduces_the_candidates_of_every_ethos_u_target() {
        for name in ["ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512"]
        {
            let t = Target::builtin(name).expect("builtin");
            assert_eq!(dedup(blocks_for(name)), t.blocks.candidates, "{name}");
        }
    }

    #[test]
    fn part_kernel_for_shallow_ifm_depth_first_for_deep() {
        assert!(choose_partkernel(3, 8, &Kernel { size: [3, 3], stride: [1, 1], dilation: [1, 1] }));
        assert!(!choose_partkernel(64, 8, &Kernel { size: [3, 3], stride: [1, 1], dilation: [1, 1] }));
    }

    #[test]
    fn elementwise_blocks_fit_and_target_without_timing_is_an_error() {
        let t = Target::builtin("ethos-u55-128").expect("builtin");
        let q = BlockQuery {
            kind: BlockKind::Elementwise,
            ofm: [32, 32, 16],
            ifm: [32, 32, 16],
            ifm2: Some([32, 32, 16]),
            uses_scalar: false,
            ifm_bits: 8,
            kernel: Kernel::UNIT,
            lut_banks: 0,
        };
        let c = find_block_config(&t, &q).expect("block");
        assert!(c.ofm_block.iter().zip(t.blocks.ofm_block_max).all(|(a, m)| *a <= m));
        let mut m = Target::builtin("mobile-npu").expect("builtin");
        assert!(find_block_config(&m, &q).is_ok(), "mobile-npu has an (assumed) timing model");
        m.timing = None;
        assert!(matches!(find_block_config(&m, &q), Err(BlockError::NoTiming { .. })));
        let bad = BlockQuery { ifm_bits: 4, ..q };
        assert_eq!(find_block_config(&t, &bad), Err(BlockError::IfmBits { bits: 4 }));
    }
}
