//! NPU performance model: cycles, bytes per memory level and energy per op and per graph for
//! an Ethos-U target, calibrated against Arm's Vela 5.2 (crates/npuc-npu/tests/perf_vela.rs).
//!
//! The model is the one Vela 5.2 states in `ethosu/vela/npu_performance.py` (facts and
//! formulas cited where used; no code copied), driven by the target file only. (Vela 5.2
//! compiles with its C++ core by default, whose estimate the calibration test compares
//! against; where its per-layer report shows a different decomposition, e.g. memory copies
//! for data movement or Dedicated_Sram feature maps in DRAM, the model follows the report.)
//! - **compute**: per OFM block ([`crate::block`]), MAC-array cycles per kernel step over the
//!   micro-blocks of the block (lost utilisation from rounding OFM/IFM to blocks and
//!   micro-blocks), sub-kernels of at most 8×8, pipeline delay of one-micro-block blocks, and
//!   the output stage (cycles per OFM element by op class and activation, the target's
//!   `[timing]`); block command overhead (IFM/OFM block transfer latency over 4 DPU stages);
//!   elementwise ops at their output-stage rate;
//! - **memory**: IFM re-reads per OFM block and sub-kernel, OFM writes, scaled by burst
//!   efficiency, over each level's bandwidth (`[memory]`); weights from external memory
//!   either streamed into an SRAM buffer by DMA (convolutions) or read in place (fully
//!   connected), their bytes being the op's real encoded weight stream ([`crate::codec`]
//!   over [`crate::reorder`]) plus the 10-byte scale/bias record per OFM channel;
//! - **overlap**: an op takes the longest of its compute (with the weight DMA that cannot
//!   hide under the previous op), its SRAM access and its external access.
//!
//! Float graphs are costed as if int8 (the NPU runs them only after quantization): 8-bit
//! activations and per-channel int8 weights quantized from the float values. Activations
//! are always costed as 8-bit: int16 graphs (half-rate MACs, 40-bit accumulators, twice the
//! bytes) are not modelled yet and come out too fast. Ops the
//! partition leaves on the CPU are counted (`cpu_ops`) and get no NPU cycles. Reshape-like
//! ops cost nothing (Vela removes them). Energy: MACs × pJ/MAC + bytes × pJ/byte per level
//! + static power × latency (the target's `[energy]`, estimates).

use std::collections::HashMap;

use npuc_ir::graph::{Graph, OpId, ValueId};
use npuc_ir::op::{Activation, Op};
use npuc_target::{MemoryMode, Target};
use thiserror::Error;

use crate::block::{find_block_config, BlockConfig, BlockError, BlockKind, BlockQuery};
use crate::partition::{partition, Device, PartitionError};
use crate::plan::{plan_memory, PlanError, PlanOptions};
use crate::reorder::{reorder, ReorderParams, Traversal};

mod int8;
mod lower;
use int8::{int8_view, weight_values};

/// Errors of the performance estimate.
#[derive(Debug, Error)]
pub enum PerfError {
    /// The target has no NPU timing model.
    #[error("target {target}: no [timing] section, so no NPU cycle model")]
    NoTiming {
        /// Target name.
        target: String,
    },
    /// Partitioning failed.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// Memory planning failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The graph has a cycle.
    #[error("graph {graph}: not a DAG ({reason})")]
    Order {
        /// Graph name.
        graph: String,
        /// Why.
        reason: String,
    },
    /// No block configuration for an op.
    #[error("op {index} ({mnemonic}, output {output}): {source}")]
    Block {
        /// Op position in topological order.
        index: usize,
        /// Op mnemonic.
        mnemonic: &'static str,
        /// Name of the op's first output.
        output: String,
        /// The block search error.
        source: BlockError,
    },
    /// An operand has a shape the model cannot cost.
    #[error("op {index} ({mnemonic}, output {output}): {what}")]
    Shape {
        /// Op position in topological order.
        index: usize,
        /// Op mnemonic.
        mnemonic: &'static str,
        /// Name of the op's first output.
        output: String,
        /// What is wrong.
        what: String,
    },
}

/// Cycles of one op, in total and by component.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpCycles {
    /// Wall cycles of the op: the longest of compute, SRAM access and external access.
    pub total: u64,
    /// MAC array / elementwise unit and output stage, with exposed weight DMA.
    pub compute: u64,
    /// SRAM access cycles (burst-efficiency-scaled bytes over bandwidth).
    pub sram: u64,
    /// External memory (flash or DRAM) access cycles.
    pub external: u64,
    /// Cycles the weight decoder needs for the op's weights (`weights_per_cycle`); it runs
    /// alongside the MAC array, so this bounds compute from below.
    pub weight_decode: u64,
    /// Weight DMA cycles (external to SRAM buffer), overlapped with compute where possible.
    pub weight_dma: u64,
}

/// Performance of one op.
#[derive(Debug, Clone, PartialEq)]
pub struct OpPerf {
    /// The op.
    pub op: OpId,
    /// Its mnemonic.
    pub mnemonic: &'static str,
    /// Name of its first output (the TFLite tensor name after import).
    pub output: String,
    /// Where it runs.
    pub device: Device,
    /// Cycles (all zero on the CPU).
    pub cycles: OpCycles,
    /// Multiply-accumulates (`npuc_ir::stats::macs`).
    pub macs: u64,
    /// Bytes read and written in SRAM.
    pub sram_bytes: u64,
    /// Bytes read from external memory (flash or DRAM).
    pub external_bytes: u64,
    /// Bytes of the op's encoded weight stream (16-byte aligned; 0 without weights). Its
    /// 10-byte-per-channel scale/bias record moves with it but is not counted here, as in
    /// Vela's `total_npu_encoded_weights`.
    pub encoded_weight_bytes: u64,
    /// OFM block of the op's main pass, if it has one.
    pub block: Option<BlockConfig>,
    /// Dynamic energy in pJ (MACs and bytes moved; static power is in the report).
    pub energy_pj: f64,
}

/// Performance of a whole graph on a target.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfReport {
    /// Target name.
    pub target: String,
    /// Per op, in execution (topological) order.
    pub ops: Vec<OpPerf>,
    /// NPU cycles, summed over ops (ops run one after another).
    pub cycles: u64,
    /// `cycles` at the target's clock, in µs (NPU time only; CPU ops are not timed).
    pub latency_us: f64,
    /// Dynamic energy of all NPU ops plus static power over the latency, in µJ.
    pub energy_uj: f64,
    /// Peak SRAM arena bytes (`plan_memory`).
    pub sram_bytes: u64,
    /// Constant bytes in flash/DRAM (`plan_memory`).
    pub flash_bytes: u64,
    /// Encoded weight stream bytes over NPU ops (as Vela's `total_npu_encoded_weights`).
    pub encoded_weight_bytes: u64,
    /// Ops on the NPU.
    pub npu_ops: usize,
    /// Ops left on the CPU.
    pub cpu_ops: usize,
}

/// Output-stage op classes: indices into `Timing::output_cycles_per_elem` (Vela
/// `_estimate_output_cycles_per_element`).
const OUT_MUL: usize = 3;
const OUT_ADVANCED_ADD: usize = 5;
const OUT_MAXPOOL: usize = 6;
const OUT_OTHER: usize = 7;
/// Activation classes: indices into `Timing::activation_cycles_per_elem`.
const ACT_LUT: usize = 0;
const ACT_RELU: usize = 1;
const ACT_NONE: usize = 2;
/// SHRAM banks a LUT occupies: Vela's 2048-byte `shram_lut_size` over 1024-byte banks.
const LUT_BANKS: u32 = 2;
/// Bytes of an int8 LUT: 256 one-byte entries (Vela lut.py, 8-bit activations).
const LUT_BYTES: u64 = 256;
/// Bytes of the per-OFM-channel scale/bias record (docs/ethos-u-weight-stream.md;
/// `reorder::scale_bias_record`).
const SCALE_BIAS_BYTES: u64 = 10;
/// Vela's output stage and block command run as 4 pipelined DPU stages: per-block command
/// overhead is the block's memory latency over 4 (npu_performance.py `# per DPU`).
const DPU_STAGES: f64 = 4.0;
/// Softmax on the NPU (Vela softmax.py, int8 path): passes over the full tensor (max
/// subtraction with the exp LUT, the sum, the final scaling) and passes over one element per
/// row (reciprocal by Newton–Raphson: CLZ, shifts, 3 iterations of multiply-add).
const SOFTMAX_FULL_PASSES: usize = 3;
const SOFTMAX_ROW_PASSES: usize = 24;

/// Tensor layout in memory: Vela keeps NPU-internal feature maps in NHCWB16 (depth in bricks
/// of 16) and graph inputs/outputs and CPU-shared tensors in NHWC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Nhwc,
    Nhcwb16,
}

/// A feature map's layout and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fm {
    format: Format,
    level: Level,
}

/// Where a tensor lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Sram,
    External,
}

/// One hardware pass of an op.
#[derive(Debug, Clone)]
struct Pass {
    query: BlockQuery,
    out_class: usize,
    act_class: usize,
    /// Weight operand (filter) and its OHWI shape (depthwise: `[C, H, W, 1]`).
    weights: Option<(ValueId, [usize; 4])>,
    /// A memory copy: at least a DMA transfer of the tensor with the source's read latency.
    copy: bool,
}

/// Estimates `g` on `target`. See the module doc for the model.
pub fn estimate(g: &Graph, target: &Target) -> Result<PerfReport, PerfError> {
    estimate_with(g, target, &WeightStreams::default())
}

/// The OFM block the model picks for the pass of `op` that reads its weights: its depth and
/// part-kernel choice fix the weight stream order, so lowering reorders with it (as Vela
/// encodes per block config). `None` when the op has no weights or the target no
/// `[timing]` model.
pub fn weight_block(g: &Graph, target: &Target, op: OpId) -> Option<BlockConfig> {
    let timing = target.timing.as_ref()?;
    let (device, streams) = (HashMap::new(), WeightStreams::default());
    // The block search looks at shapes and kinds only, not at where tensors live.
    let cx = Ctx {
        streams: &streams,
        g,
        target,
        timing,
        device: &device,
        fm_level: Level::Sram,
        weight_level: Level::External,
    };
    let pass = cx.passes(op).ok()?.into_iter().find(|p| p.weights.is_some())?;
    find_block_config(target, &pass.query).ok()
}

/// [`estimate`], reusing (and adding to) the weight streams already encoded in `streams`.
pub fn estimate_with(g: &Graph, target: &Target, streams: &WeightStreams) -> Result<PerfReport, PerfError> {
    let timing = target.timing.as_ref().ok_or_else(|| PerfError::NoTiming { target: target.name.clone() })?;
    // Float graphs are placed as their int8 form would be.
    let part = partition(&int8_view(g), target)?;
    let device: HashMap<OpId, Device> = part.assignments.iter().map(|(id, d, _)| (*id, *d)).collect();
    let order = g.topo_order().map_err(|e| PerfError::Order { graph: g.name.clone(), reason: e.to_string() })?;
    let plan = plan_memory(g, &order, &PlanOptions::default())?;
    let fm_level = if plan.arena_bytes <= target.memory.sram.size_bytes { Level::Sram } else { Level::External };
    let weight_level = if target.memory.mode == MemoryMode::SramOnly { Level::Sram } else { Level::External };
    let cx = Ctx { g, target, timing, device: &device, fm_level, weight_level, streams };

    let mut ops = Vec::with_capacity(order.len());
    let mut prev_slack = 0u64;
    for (index, &id) in order.iter().enumerate() {
        let o = g.op(id);
        let mnemonic = o.op.mnemonic();
        let output = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
        let dev = device.get(&id).copied().unwrap_or(Device::Cpu);
        let macs = npuc_ir::stats::macs(g, id);
        let mut perf = OpPerf {
            op: id,
            mnemonic,
            output,
            device: dev,
            cycles: OpCycles::default(),
            macs,
            sram_bytes: 0,
            external_bytes: 0,
            encoded_weight_bytes: 0,
            block: None,
            energy_pj: 0.0,
        };
        if dev == Device::Npu {
            let passes = cx.passes(id).map_err(|what| PerfError::Shape {
                index,
                mnemonic,
                output: perf.output.clone(),
                what,
            })?;
            for pass in &passes {
                let c = cx.pass_cost(id, pass, prev_slack).map_err(|e| match e {
                    PassError::Block(source) => {
                        PerfError::Block { index, mnemonic, output: perf.output.clone(), source }
                    }
                    PassError::Shape(what) => PerfError::Shape { index, mnemonic, output: perf.output.clone(), what },
                })?;
                prev_slack = c.slack;
                perf.cycles.total += c.cycles.total;
                perf.cycles.compute += c.cycles.compute;
                perf.cycles.sram += c.cycles.sram;
                perf.cycles.external += c.cycles.external;
                perf.cycles.weight_decode += c.cycles.weight_decode;
                perf.cycles.weight_dma += c.cycles.weight_dma;
                perf.sram_bytes += c.sram_bytes;
                perf.external_bytes += c.external_bytes;
                perf.encoded_weight_bytes += c.encoded_weight_bytes;
                if perf.block.is_none() {
                    perf.block = c.block;
                }
            }
            let e = &target.energy;
            perf.energy_pj = macs as f64 * e.mac_i8xi8_pj
                + perf.sram_bytes as f64 * e.sram_pj_per_byte
                + perf.external_bytes as f64 * e.external_pj_per_byte;
        }
        ops.push(perf);
    }
    let cycles: u64 = ops.iter().map(|o| o.cycles.total).sum();
    let latency_us = cycles as f64 / target.compute.clock_hz as f64 * 1e6;
    // mW × µs = nJ; /1000 → µJ. pJ / 1e6 → µJ.
    let energy_uj =
        ops.iter().map(|o| o.energy_pj).sum::<f64>() / 1e6 + target.energy.static_power_mw * latency_us / 1e3;
    let npu_ops = ops.iter().filter(|o| o.device == Device::Npu).count();
    Ok(PerfReport {
        target: target.name.clone(),
        encoded_weight_bytes: ops.iter().map(|o| o.encoded_weight_bytes).sum(),
        cpu_ops: ops.len() - npu_ops,
        npu_ops,
        ops,
        cycles,
        latency_us,
        energy_uj,
        sram_bytes: plan.arena_bytes,
        flash_bytes: plan.flash_bytes,
    })
}

/// Cost of one pass.
struct PassCost {
    cycles: OpCycles,
    sram_bytes: u64,
    external_bytes: u64,
    encoded_weight_bytes: u64,
    block: Option<BlockConfig>,
    /// Cycles of the pass's last OFM depth slice: time the next op's weight DMA can hide under.
    slack: u64,
}

enum PassError {
    Block(BlockError),
    Shape(String),
}

struct Ctx<'a> {
    streams: &'a WeightStreams,
    g: &'a Graph,
    target: &'a Target,
    timing: &'a npuc_target::Timing,
    device: &'a HashMap<OpId, Device>,
    fm_level: Level,
    weight_level: Level,
}

/// `[h, w, c]` of a tensor shape, leading dimensions folded into h (Vela's Shape4D pads
/// shorter shapes with leading 1s).
fn hwc(shape: &[usize]) -> Option<[u32; 3]> {
    let n = shape.len();
    let d = |i: usize| shape.get(i).copied().unwrap_or(1);
    let (h, w, c) = match n {
        0 => (1, 1, 1),
        1 => (1, 1, d(0)),
        2 => (1, d(0), d(1)),
        _ => (shape[..n - 2].iter().product(), d(n - 2), d(n - 1)),
    };
    Some([u32::try_from(h).ok()?, u32::try_from(w).ok()?, u32::try_from(c).ok()?])
}

fn act_class(a: Activation) -> usize {
    match a {
        Activation::None | Activation::SignBit => ACT_NONE,
        Activation::Relu | Activation::Relu6 | Activation::ReluN1To1 => ACT_RELU,
        Activation::Tanh => ACT_LUT,
    }
}

fn elems(s: [u32; 3]) -> u64 {
    s.iter().map(|&d| u64::from(d)).product()
}

fn round_up(v: u64, m: u64) -> u64 {
    v.div_ceil(m) * m
}

impl Ctx<'_> {
    fn shape_of(&self, v: Option<ValueId>, what: &str) -> Result<[u32; 3], String> {
        let v = v.ok_or_else(|| format!("missing {what} operand"))?;
        hwc(&self.g.value(v).ty.shape).ok_or_else(|| format!("{what} shape too large"))
    }

    /// Tensor layout of a feature map (see [`Format`]).
    fn format(&self, v: Option<ValueId>) -> Format {
        let Some(v) = v else { return Format::Nhwc };
        let val = self.g.value(v);
        let npu = |op: OpId| self.device.get(&op) == Some(&Device::Npu);
        let produced_on_npu = val.producer.is_some_and(|(p, _)| npu(p));
        let all_uses_npu = self.g.uses(v).all(|(u, _)| npu(u));
        let has_uses = self.g.uses(v).next().is_some();
        // Graph outputs (no uses) and inputs (no producer) stay NHWC, as do CPU-shared ones
        // and maps shallower than an OFM micro-block (Vela 5.2's per-layer report: depth-1
        // maps are costed unpadded, depth-8 maps padded to 16).
        let depth = val.ty.shape.last().copied().unwrap_or(1);
        let shallow = depth < self.target.blocks.ofm_ublock[2] as usize;
        if produced_on_npu && has_uses && all_uses_npu && !shallow {
            Format::Nhcwb16
        } else {
            Format::Nhwc
        }
    }

    fn bandwidth(&self, l: Level) -> f64 {
        match l {
            Level::Sram => self.target.memory.sram.bandwidth,
            Level::External => self.target.memory.external.bandwidth,
        }
    }

    fn burst(&self, l: Level) -> u64 {
        u64::from(match l {
            Level::Sram => self.target.memory.sram.burst_bytes,
            Level::External => self.target.memory.external.burst_bytes,
        })
    }

    fn latency(&self, l: Level, read: bool) -> f64 {
        let (r, w) = match l {
            Level::Sram => (self.target.memory.sram.read_latency, self.target.memory.sram.write_latency),
            Level::External => (self.target.memory.external.read_latency, self.target.memory.external.write_latency),
        };
        f64::from(if read { r } else { w })
    }

    /// Burst efficiency: bytes actually transferred per useful byte (Vela
    /// `_estimate_memory_transfer_efficiency`: the burst a block row allows against the
    /// memory's burst length).
    fn transfer_scale(&self, read: bool, level: Level, format: Format, block: [u32; 3], shape: [u32; 3]) -> f64 {
        let bits = 8u64;
        let cores = u64::from(self.target.compute.cores);
        let (bw, bd) = (u64::from(block[1]), u64::from(block[2]));
        let burst_bits = match format {
            Format::Nhcwb16 => {
                if bits * 16 * u64::from(shape[1]) / 8 == bd {
                    bits * bd * bw
                } else if read {
                    16 * bits * bw
                } else {
                    16 * bits * bw * cores
                }
            }
            Format::Nhwc => {
                // Vela compares the element stride in bytes with the block depth.
                let contiguous = bits / 8 == bd;
                if read {
                    if contiguous {
                        bits * bd * bw
                    } else {
                        bits * bd
                    }
                } else if bd <= 16 && contiguous {
                    bits * bd * bw
                } else {
                    (64 * 8).min(16 * bits * cores).min(bd * bits)
                }
            }
        };
        let mem_burst = self.burst(level);
        let burst = (burst_bits / 8).clamp(1, mem_burst);
        mem_burst as f64 / burst as f64
    }

    /// Cycles to move one IFM block in and one OFM block out (Vela
    /// `_estimate_minimum_memory_cycles`).
    fn block_memory_cycles(&self, q: &BlockQuery, cfg: &BlockConfig, ifm: Fm, ofm: Fm) -> f64 {
        let ib = [0, 1, 2].map(|i| q.ifm[i].min(cfg.ifm_block[i]));
        let ob = [0, 1, 2].map(|i| q.ofm[i].min(cfg.ofm_block[i]));
        let (li, lo) = (ifm.level, ofm.level);
        let read = self.latency(li, true)
            + elems(ib) as f64 * self.transfer_scale(true, li, ifm.format, cfg.ifm_block, q.ifm) / self.bandwidth(li);
        let write = self.latency(lo, false)
            + elems(ob) as f64 * self.transfer_scale(false, lo, ofm.format, cfg.ofm_block, q.ofm) / self.bandwidth(lo);
        read + write
    }

    /// Where a feature map lives: in SRAM when the arena fits it, except in Dedicated_Sram
    /// mode, where the arena is in external memory and SRAM serves as the NPU's cache for
    /// weights (targets/README.md, `memory.mode`; Vela's Dedicated_Sram memory mode).
    fn level(&self, _v: Option<ValueId>) -> Level {
        if self.fm_level == Level::External || self.target.memory.mode == MemoryMode::DedicatedSram {
            Level::External
        } else {
            Level::Sram
        }
    }

    fn fm(&self, v: Option<ValueId>) -> Fm {
        Fm { format: self.format(v), level: self.level(v) }
    }

    /// Output-stage cycles per OFM element (Vela `_estimate_output_cycles_per_element`).
    fn output_cycles_per_elem(&self, p: &Pass, cfg: &BlockConfig, fmts: (Fm, Fm)) -> f64 {
        let mut out_class = p.out_class;
        if cfg.acc_bits == 40 && p.query.kind != BlockKind::Elementwise {
            out_class = OUT_MUL;
        }
        let c = self.timing.output_cycles_per_elem[out_class].max(self.timing.activation_cycles_per_elem[p.act_class]);
        if p.query.kind == BlockKind::Elementwise {
            let n = elems(cfg.ofm_block) as f64;
            let cmd = (self.block_memory_cycles(&p.query, cfg, fmts.0, fmts.1) + c * n) / DPU_STAGES;
            c.max(cmd / n)
        } else {
            c
        }
    }

    /// MAC-array cycles of one OFM block, summed over sub-kernels (Vela `_estimate_conv_cycles`).
    fn dpu_block_cycles(&self, q: &BlockQuery, cfg: &BlockConfig, ofm_block: [u32; 3], ublock: [u32; 3]) -> f64 {
        let t = self.target;
        let nx = u64::from(ofm_block[1].div_ceil(ublock[1]));
        let ny = u64::from(ofm_block[0].div_ceil(ublock[0]));
        let nxy = nx * ny;
        let nz = u64::from(ofm_block[2].div_ceil(ublock[2]));
        let ifm_block_depth = u64::from(q.ifm[2].min(cfg.ifm_block[2]));
        let lim = u64::from(q.kind.sub_kernel_limit());
        let (kh, kw) = (u64::from(q.kernel.size[0]), u64::from(q.kernel.size[1]));
        let subs_y: Vec<u64> = (0..kh.div_ceil(lim)).map(|i| (kh - i * lim).min(lim)).collect();
        let subs_x: Vec<u64> = (0..kw.div_ceil(lim)).map(|i| (kw - i * lim).min(lim)).collect();
        // The weight decoder delivers a micro-block depth of weights every 32 × depth / 8
        // cycles (Vela `cycles_wb`), i.e. weights_per_cycle per core.
        let cycles_wb = 32 * u64::from(ublock[2]) / u64::from(t.weight_decoder.weights_per_cycle);
        let delay = u64::from(if cfg.acc_bits == 40 {
            self.timing.single_ublock_delay_cycles + 1
        } else {
            self.timing.single_ublock_delay_cycles
        });
        let mut total = 0u64;
        for &sy in &subs_y {
            for &sx in &subs_x {
                let kelems = sy * sx;
                let (steps, cycles) = match q.kind {
                    BlockKind::Pooling => (1, 4u64.max(kelems) * nxy * nz),
                    BlockKind::Depthwise => {
                        let steps = kelems.div_ceil(4);
                        (steps, cycles_wb.max(4 * nxy) * steps * nz)
                    }
                    BlockKind::ConvMxN if cfg.is_partkernel => {
                        let steps = kelems.div_ceil(4);
                        (steps, cycles_wb.max(4 * nxy) * steps * ifm_block_depth.div_ceil(8) * nz)
                    }
                    _ => (kelems, cycles_wb.max(4 * nxy) * kelems * nz),
                };
                let mut delay_cycles = if nx == 1 && ny == 1 {
                    if nz == 1 {
                        delay * steps
                    } else if steps > 1 {
                        delay * (steps - 1) * nz
                    } else {
                        0
                    }
                } else {
                    0
                };
                if q.kind == BlockKind::ConvMxN && cfg.is_partkernel {
                    delay_cycles *= ifm_block_depth.div_ceil(8);
                }
                total += cycles + delay_cycles;
            }
        }
        if matches!(q.kind, BlockKind::ConvMxN | BlockKind::VectorProduct | BlockKind::ReduceSum) {
            total *= u64::from(q.ifm[2]).div_ceil(ifm_block_depth.max(1));
        }
        total as f64 / f64::from(t.compute.cores)
    }

    fn pass_cost(&self, id: OpId, p: &Pass, prev_slack: u64) -> Result<PassCost, PassError> {
        let o = self.g.op(id);
        let ifm_fm = self.fm(o.input(if matches!(o.op, Op::TransposeConv(_)) { 2 } else { 0 }));
        let ofm_fm = self.fm(o.outputs.first().copied());
        let (ifm_fmt, ofm_fmt) = (ifm_fm.format, ofm_fm.format);
        let q = &p.query;
        let cfg = find_block_config(self.target, q).map_err(PassError::Block)?;
        let blocks = &self.target.blocks;
        let store = |s: [u32; 3], f: Format| -> [u32; 3] {
            if f == Format::Nhcwb16 {
                [s[0], s[1], round_up(u64::from(s[2]), 16) as u32]
            } else {
                s
            }
        };

        // ---- compute cycles
        let mut ofm_block = [0, 1, 2].map(|i| q.ofm[i].min(cfg.ofm_block[i]));
        let mut ublock = blocks.ofm_ublock;
        // 1-D optimisation on 2-high micro-blocks (Vela `_estimate_conv_cycles`).
        if ublock[0] == 2
            && matches!(q.kind, BlockKind::ConvMxN | BlockKind::Depthwise | BlockKind::VectorProduct)
            && q.ofm[0] == 1
            && q.ofm[1] % 2 == 0
            && q.kernel.size[0] == 1
        {
            ublock = [1, 4, ublock[2]];
            ofm_block[0] = 1;
        }
        let per_elem = self.output_cycles_per_elem(p, &cfg, (ifm_fm, ofm_fm));
        let compute = if q.kind == BlockKind::Elementwise {
            (per_elem * elems(store(q.ofm, ofm_fmt)) as f64).ceil()
        } else {
            let dpu = self.dpu_block_cycles(q, &cfg, ofm_block, ublock);
            let mut out = (per_elem * elems(ofm_block) as f64).ceil();
            if p.weights.is_some() {
                // Scale/bias fetch per block (Vela: 10 × depth × const latency / 256).
                let lvl = if o.op.mnemonic() == "fully_connected" { self.weight_level } else { Level::Sram };
                out = out.max(10.0 * f64::from(ofm_block[2]) * self.latency(lvl, true) / 256.0);
            }
            let cmd = (self.block_memory_cycles(q, &cfg, ifm_fm, ofm_fm) + out + dpu) / DPU_STAGES;
            let (dpu, out) = (dpu.max(cmd), out.max(cmd));
            let n_blocks = (0..3).map(|i| u64::from(q.ofm[i].div_ceil(ofm_block[i]))).product::<u64>() as f64;
            if dpu > out {
                dpu * n_blocks + out
            } else {
                out * n_blocks + dpu
            }
        };

        let mut npu_extra = 0.0;
        // ---- element accesses (Vela `measure_element_access`)
        let ofm_blocks_all = [0, 1, 2].map(|i| u64::from(q.ofm[i].div_ceil(ofm_block[i])));
        let is_dw_pool = matches!(q.kind, BlockKind::Depthwise | BlockKind::Pooling);
        let ofm_block_count =
            if is_dw_pool { ofm_blocks_all[0] * ofm_blocks_all[1] } else { ofm_blocks_all.iter().product() };
        let ifm_read = if q.kind == BlockKind::Elementwise {
            let out = elems(store(q.ofm, ifm_fmt));
            let first = if elems(q.ifm) == 1 { 0 } else { out };
            let second = match q.ifm2 {
                Some(b) if elems(b) > 1 => out,
                _ => 0,
            };
            first + second
        } else {
            let ib = [0, 1, 2].map(|i| q.ifm[i].min(cfg.ifm_block[i]));
            let lim = q.kind.sub_kernel_limit();
            let area = q.kernel.area();
            let subkernels = u64::from(area[1].div_ceil(lim)) * u64::from(area[0].div_ceil(lim));
            let ifm_fetch = u64::from(ib[0]) * u64::from(ib[1]) * u64::from(store(q.ifm, ifm_fmt)[2]);
            ifm_fetch * subkernels * ofm_block_count
        };
        let ofm_write = elems(store(q.ofm, ofm_fmt));
        let ifm_scaled = ifm_read as f64 * self.transfer_scale(true, ifm_fm.level, ifm_fmt, cfg.ifm_block, q.ifm);
        let ofm_scaled = ofm_write as f64 * self.transfer_scale(false, ofm_fm.level, ofm_fmt, cfg.ofm_block, q.ofm);

        // ---- weights
        let mut stream_bytes = 0u64;
        let mut weight_decode = 0u64;
        let mut weight_dma = 0u64;
        let (mut sram_scaled, mut ext_scaled) = (0.0, 0.0);
        let (mut sram_bytes, mut ext_bytes) = (0u64, 0u64);
        for (level, bytes, scaled) in [(ifm_fm.level, ifm_read, ifm_scaled), (ofm_fm.level, ofm_write, ofm_scaled)] {
            if level == Level::Sram {
                sram_bytes += bytes;
                sram_scaled += scaled;
            } else {
                ext_bytes += bytes;
                ext_scaled += scaled;
            }
        }
        if p.query.lut_banks > 0 {
            // The LUT is copied from permanent storage into the shared buffer before the op
            // (Vela `measure_mem2mem_cycles`: read latency plus bytes over the slower side).
            let l = self.weight_level;
            let lut = LUT_BYTES as f64;
            npu_extra += (lut / self.bandwidth(l) + self.latency(l, true)).max(lut / self.bandwidth(Level::Sram));
            if l == Level::External {
                ext_bytes += LUT_BYTES;
            } else {
                sram_bytes += LUT_BYTES;
            }
        }
        if p.copy {
            // DMA floor of a copy (Vela `measure_mem2mem_cycles`): source latency + bytes/bw.
            let l = ifm_fm.level;
            npu_extra += (elems(q.ofm) as f64 / self.bandwidth(l) + self.latency(l, true) - compute).max(0.0);
        }
        let mut npu = compute + npu_extra;
        let mut slack = compute.ceil() as u64;
        if let Some((w, shape)) = p.weights {
            let stream = self.encoded_weights(w, shape, q.kind, &cfg).map_err(PassError::Shape)?;
            let ofm_depth = shape[0] as u64;
            stream_bytes = stream;
            let encoded = stream + SCALE_BIAS_BYTES * ofm_depth;
            weight_decode = (shape.iter().product::<usize>() as u64)
                .div_ceil(u64::from(self.target.weight_decoder.weights_per_cycle));
            let orig = shape.iter().product::<usize>().max(1) as f64;
            let compression = stream as f64 / orig;
            // Weight elements fetched: each OFM block (all depth slices) re-reads its kernel.
            let kernel_read = q.kernel.elements() * if is_dw_pool { 1 } else { u64::from(q.ifm[2]) };
            let block_depth = if is_dw_pool { u64::from(q.ifm[2]) } else { u64::from(ofm_block[2]) };
            let fetch = kernel_read as f64 * block_depth as f64 * ofm_block_count as f64 * compression
                + (SCALE_BIAS_BYTES * ofm_depth) as f64;
            let buffered = self.weight_level == Level::External && q.kind != BlockKind::VectorProduct;
            if buffered {
                // DMA into a double buffer in SRAM, one OFM depth slice at a time; the MAC
                // array reads the buffer. Vela (npu_performance.py, double-buffered weights):
                // NPU time is the longer of (the whole transfer, less what hid under the
                // previous op, plus this op's last slice) and (compute plus the first slice's
                // transfer that did not hide).
                let bw = self.bandwidth(Level::External);
                let lat = self.latency(Level::External, true);
                let full = encoded as f64 / bw + lat;
                let slices = ofm_depth.div_ceil(u64::from(cfg.ofm_block[2]).max(1)).max(1) as f64;
                let first = encoded as f64 / slices / bw + lat;
                let last_slice = compute / slices;
                let p_slack = prev_slack as f64;
                npu = (full - p_slack + last_slice).max(compute + (first - p_slack).max(0.0));
                weight_dma = full.ceil() as u64;
                slack = last_slice.ceil() as u64;
                ext_bytes += encoded;
                sram_bytes += 2 * encoded + fetch as u64;
                sram_scaled += fetch;
            } else if self.weight_level == Level::External {
                ext_bytes += fetch as u64;
                ext_scaled += fetch;
            } else {
                sram_bytes += fetch as u64;
                sram_scaled += fetch;
            }
            npu = npu.max(weight_decode as f64);
        }
        let sram = (sram_scaled / self.bandwidth(Level::Sram)).ceil() as u64;
        let external = (ext_scaled / self.bandwidth(Level::External)).ceil() as u64;
        let npu = npu.ceil() as u64;
        Ok(PassCost {
            cycles: OpCycles {
                total: npu.max(sram).max(external),
                compute: npu,
                sram,
                external,
                weight_decode,
                weight_dma,
            },
            sram_bytes,
            external_bytes: ext_bytes,
            encoded_weight_bytes: stream_bytes,
            block: Some(cfg),
            slack,
        })
    }

    /// Bytes of the encoded weight stream of a filter for the chosen block (16-byte aligned).
    fn encoded_weights(
        &self,
        w: ValueId,
        shape: [usize; 4],
        kind: BlockKind,
        cfg: &BlockConfig,
    ) -> Result<u64, String> {
        let val = self.g.value(w);
        let n: usize = shape.iter().product();
        let values = weight_values(val, shape[0], n)?;
        // The same micro-block depths the lowering encodes with (also for non-Ethos-U NPUs).
        let accelerator = crate::lower::accelerator(self.target);
        let traversal = match kind {
            BlockKind::Depthwise => Traversal::Depthwise,
            _ if cfg.is_partkernel => Traversal::PartKernelFirst,
            _ => Traversal::DepthFirst,
        };
        let params = ReorderParams {
            accelerator,
            ofm_block_depth: cfg.ofm_block[2] as usize,
            traversal,
            ifm_bits: 8,
            dilation: (1, 1),
        };
        let ordered = reorder(&values, shape, &params).map_err(|e| format!("weight reorder: {e}"))?;
        let stream = self.streams.encode(&ordered).map_err(|e| format!("weight encode: {e}"))?;
        Ok(round_up(stream.len() as u64, 16))
    }
}

/// Weight streams encoded so far, by the hash of the reordered values: a graph re-costed at
/// every stage of a pipeline, then lowered, encodes each unchanged filter once (encoding
/// dominates both the estimate's and the lowering's time).
#[derive(Debug, Default)]
pub struct WeightStreams(std::sync::Mutex<HashMap<[u8; 32], std::sync::Arc<Vec<u8>>>>);

impl WeightStreams {
    /// The compressed stream of `ordered` (reordered weights), encoded at most once.
    pub fn encode(&self, ordered: &[i16]) -> Result<std::sync::Arc<Vec<u8>>, crate::codec::CodecError> {
        let bytes: Vec<u8> = ordered.iter().flat_map(|v| v.to_le_bytes()).collect();
        let key = *blake3::hash(&bytes).as_bytes();
        if let Some(s) = self.0.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let stream = std::sync::Arc::new(crate::codec::encode(ordered)?);
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, stream.clone());
        }
        Ok(stream)
    }
}

/// The model as a stage-table cost provider: columns cycles, latency_us, energy_uj and
/// sram_bytes of [`estimate`] on one target.
#[derive(Debug, Clone)]
pub struct SimulatedCost {
    /// The target costed.
    pub target: Target,
    /// Weight streams shared by every stage (and with whoever holds the other `Arc`).
    pub streams: std::sync::Arc<WeightStreams>,
}

impl SimulatedCost {
    /// A provider for `target` with an empty size cache.
    pub fn new(target: Target) -> Self {
        SimulatedCost { target, streams: Default::default() }
    }
}

impl npuc_pass::CostProvider for SimulatedCost {
    fn name(&self) -> &str {
        "npu"
    }

    fn columns(&self) -> Vec<&'static str> {
        vec!["cycles", "latency_us", "energy_uj", "sram_bytes"]
    }

    /// NaN in every column when the graph cannot be costed (e.g. a target without a
    /// `[timing]` model, or a stage whose shapes are not inferred yet): the stage table shows
    /// the gap instead of failing the pipeline.
    fn cost(&self, g: &Graph) -> Vec<f64> {
        match estimate_with(g, &self.target, &self.streams) {
            Ok(r) => vec![r.cycles as f64, r.latency_us, r.energy_uj, r.sram_bytes as f64],
            Err(_) => vec![f64::NAN; 4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwc_folds_leading_dimensions() {
        assert_eq!(hwc(&[1, 8, 4, 16]), Some([8, 4, 16]));
        assert_eq!(hwc(&[3, 10]), Some([1, 3, 10]));
        assert_eq!(hwc(&[]), Some([1, 1, 1]));
    }
}
