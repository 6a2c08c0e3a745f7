//! npuc's hardware target descriptions.
//!
//! A target is one TOML file under `targets/` (see `targets/README.md` for every field and
//! its source). This crate parses such a file into a typed [`Target`], rejects unknown and
//! missing fields, and validates the values (positive rates, powers of two where the
//! hardware needs them, non-empty block lists, op names and dtypes npuc knows). The repo's
//! own targets are compiled in ([`Target::builtin`], [`builtin_names`]) so the driver works
//! from any directory; any other file is loaded by path ([`Target::load`]) without
//! recompiling.
//!
//! It is not a cost model or a scheduler: it only says what the hardware is. How cycles,
//! energy and memory follow from these numbers is the NPU back end's business.

mod error;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::TargetError;

/// The targets shipped in `targets/`, compiled into the binary.
///
/// Adding a builtin is adding a `targets/<name>.toml` file and one line here; a file that
/// is not listed still loads with [`Target::load`].
pub const BUILTINS: &[(&str, &str)] = &[
    ("ethos-u55-32", include_str!("../../../targets/ethos-u55-32.toml")),
    ("ethos-u55-64", include_str!("../../../targets/ethos-u55-64.toml")),
    ("ethos-u55-128", include_str!("../../../targets/ethos-u55-128.toml")),
    ("ethos-u55-256", include_str!("../../../targets/ethos-u55-256.toml")),
    ("ethos-u65-256", include_str!("../../../targets/ethos-u65-256.toml")),
    ("ethos-u65-512", include_str!("../../../targets/ethos-u65-512.toml")),
    ("mobile-npu", include_str!("../../../targets/mobile-npu.toml")),
];

/// Names of the builtin targets, in the order of [`BUILTINS`].
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}

/// Hardware family; decides which rules (weight codec, block search) apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Arm Ethos-U55 microNPU (Cortex-M systems, SRAM + flash).
    EthosU55,
    /// Arm Ethos-U65 microNPU (Cortex-A/M systems, SRAM + DRAM).
    EthosU65,
    /// A generic mobile NPU of several TOPS with LPDDR memory (assumed figures).
    MobileNpu,
}

impl Family {
    /// Whether this is an Arm Ethos-U family (compressed weight streams, Vela-comparable).
    pub fn is_ethos_u(self) -> bool {
        matches!(self, Family::EthosU55 | Family::EthosU65)
    }
}

/// One hardware target, as read from a `targets/*.toml` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Target name as used on the command line (`--target ethos-u55-128`).
    pub name: String,
    /// Hardware family.
    pub family: Family,
    /// One-line human description.
    pub description: String,
    /// Arithmetic throughput and clock.
    pub compute: Compute,
    /// Memory levels and where tensors live.
    pub memory: Memory,
    /// Hardware weight-stream decoder.
    pub weight_decoder: WeightDecoder,
    /// Block (tile) geometry of the compute array.
    pub blocks: Blocks,
    /// Energy per event and static power (estimates; see the file's comments).
    pub energy: Energy,
    /// Limits that apply to every op.
    pub limits: Limits,
    /// Ops the NPU runs, by npuc IR mnemonic, with their constraints; others fall back to the CPU.
    pub ops: BTreeMap<String, OpSupport>,
    /// The Vela configuration this target mirrors, for side-by-side comparisons.
    #[serde(default)]
    pub vela: Option<VelaConfig>,
    /// Block-level timing constants of the NPU's cycle model (Ethos-U only).
    #[serde(default)]
    pub timing: Option<Timing>,
}

/// Timing constants of the NPU's block pipeline, as Vela's performance model states them
/// (npuc's cost model in `npuc-npu::perf` uses them; absent on targets without one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Shared-buffer bank granules per element kind: IFM8, IFM16, IFM8 elementwise, IFM16
    /// elementwise, IFM32, Acc16, Acc32, Acc40.
    pub shram_granules: [u32; 8],
    /// Shared-buffer banks reserved at the start for the output stage.
    pub shram_reserved_output_banks: u32,
    /// Shared-buffer banks reserved at the end (LUT space).
    pub shram_reserved_end_banks: u32,
    /// Output-stage cycles per OFM element by op class: 32-bit unary elementwise, 32-bit
    /// binary elementwise, 32-bit-result multiply, multiply or 40-bit accumulators, simple
    /// add/sub, advanced add/sub, max pooling, anything else.
    pub output_cycles_per_elem: [f64; 8],
    /// Activation-stage cycles per OFM element: LUT (sigmoid, tanh), ReLU family, none.
    pub activation_cycles_per_elem: [f64; 3],
    /// Accumulator pipeline delay, cycles per kernel step, when an OFM block is one
    /// micro-block wide and high (int8 with 32-bit accumulators).
    pub single_ublock_delay_cycles: u32,
}

/// Clock and MAC throughput.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// NPU core clock in Hz.
    pub clock_hz: u64,
    /// Number of NPU cores (Ethos-U65-512 has two of 256 MACs).
    pub cores: u32,
    /// MACs per cycle, summed over all cores.
    pub macs_per_cycle: MacsPerCycle,
}

/// MACs per cycle by operand types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacsPerCycle {
    /// 8-bit activations × 8-bit weights.
    pub i8xi8: u32,
    /// 16-bit activations × 8-bit weights.
    pub i16xi8: u32,
}

/// Memory system.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Where weights, the tensor arena and the fast cache live (Vela's memory modes).
    pub mode: MemoryMode,
    /// On-chip SRAM.
    pub sram: MemoryLevel,
    /// Off-chip memory (flash or DRAM).
    pub external: ExternalMemory,
}

/// Placement of constants and feature maps, after Vela's `Memory_Mode` sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryMode {
    /// Everything in SRAM.
    SramOnly,
    /// Weights in external memory (read-only), tensor arena in SRAM.
    SharedSram,
    /// Weights and arena in external memory, SRAM used by the NPU alone as a cache.
    DedicatedSram,
}

/// One on-chip memory level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLevel {
    /// Capacity in bytes available to the NPU.
    pub size_bytes: u64,
    /// Bandwidth in bytes per NPU core cycle.
    pub bandwidth: f64,
    /// Read latency in NPU cycles.
    pub read_latency: u32,
    /// Write latency in NPU cycles.
    pub write_latency: u32,
    /// Burst length in bytes.
    pub burst_bytes: u32,
}

/// Kind of external memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalKind {
    /// Off-chip flash (read-only at run time).
    Flash,
    /// Off-chip DRAM (LPDDR).
    Dram,
}

/// The off-chip memory level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalMemory {
    /// Flash or DRAM.
    pub kind: ExternalKind,
    /// Bandwidth in bytes per NPU core cycle.
    pub bandwidth: f64,
    /// Read latency in NPU cycles.
    pub read_latency: u32,
    /// Write latency in NPU cycles (0 for read-only flash).
    pub write_latency: u32,
    /// Burst length in bytes.
    pub burst_bytes: u32,
}

/// The weight decoder that expands compressed weight streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightDecoder {
    /// Decoded weights per cycle, per core.
    pub weights_per_cycle: u32,
    /// OFM-depth granule of the weight encoding (weights are padded to it).
    pub micro_block_depth: u32,
}

/// Block geometry: `[h, w, c]` triples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blocks {
    /// OFM micro-block: the shape computed per step; blocks are multiples of it.
    pub ofm_ublock: [u32; 3],
    /// IFM micro-block.
    pub ifm_ublock: [u32; 3],
    /// Largest OFM block.
    pub ofm_block_max: [u32; 3],
    /// OFM depth granule when an op's depth is split across blocks.
    pub ofm_split_depth: u32,
    /// Shared buffer (SHRAM) banks holding IFM, accumulator and LUT blocks.
    pub shram_banks: u32,
    /// Bytes per shared-buffer bank.
    pub shram_bank_bytes: u32,
    /// OFM block candidates a scheduler tries first.
    pub candidates: Vec<[u32; 3]>,
}

/// Energy per event and static power.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    /// pJ per int8×int8 MAC.
    pub mac_i8xi8_pj: f64,
    /// pJ per int16×int8 MAC.
    pub mac_i16xi8_pj: f64,
    /// pJ per byte read or written in SRAM.
    pub sram_pj_per_byte: f64,
    /// pJ per byte read or written in external memory.
    pub external_pj_per_byte: f64,
    /// Static (leakage) power in mW while the NPU is powered.
    pub static_power_mw: f64,
}

/// Limits common to all ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest tensor dimension.
    pub tensor_dim_max: u32,
    /// Largest batch size.
    pub batch_max: u32,
    /// Fused activations the NPU applies (npuc activation names).
    pub fused_activations: Vec<String>,
}

/// One supported op and its constraints; an absent limit means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSupport {
    /// Activation (IFM/OFM) dtypes, npuc dtype names.
    pub dtypes: Vec<String>,
    /// Weight dtypes, for ops with weights.
    #[serde(default)]
    pub weight_dtypes: Option<Vec<String>>,
    /// Largest dilated kernel height.
    #[serde(default)]
    pub kernel_h_max: Option<u32>,
    /// Largest dilated kernel width.
    #[serde(default)]
    pub kernel_w_max: Option<u32>,
    /// Largest dilated kernel height × width.
    #[serde(default)]
    pub kernel_area_max: Option<u32>,
    /// Largest vertical stride.
    #[serde(default)]
    pub stride_h_max: Option<u32>,
    /// Largest horizontal stride.
    #[serde(default)]
    pub stride_w_max: Option<u32>,
    /// Largest sum of |weight − zero point| over the op (Vela's weight-sum limit).
    #[serde(default)]
    pub weights_sum_max: Option<u64>,
    /// Other constraints in words (not enforced by the loader).
    #[serde(default)]
    pub note: Option<String>,
}

/// The Vela settings this target corresponds to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelaConfig {
    /// `--accelerator-config`.
    pub accelerator_config: String,
    /// `--system-config` (a section of Vela's `vela.ini`).
    pub system_config: String,
    /// `--memory-mode` (a section of Vela's `vela.ini`).
    pub memory_mode: String,
}

/// Operand types of a MAC, for throughput and energy look-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacKind {
    /// 8-bit activations × 8-bit weights.
    I8xI8,
    /// 16-bit activations × 8-bit weights.
    I16xI8,
}

impl Target {
    /// Loads and validates a target file.
    pub fn load(path: impl AsRef<Path>) -> Result<Target, TargetError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Io { file: file.clone(), source })?;
        Target::parse(&text, &file)
    }

    /// A builtin target by name (see [`builtin_names`]).
    pub fn builtin(name: &str) -> Result<Target, TargetError> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).ok_or_else(|| TargetError::UnknownBuiltin {
            name: name.to_string(),
            known: builtin_names().collect::<Vec<_>>().join(", "),
        })?;
        Target::parse(text, &format!("<builtin>/targets/{name}.toml"))
    }

    /// A builtin by name, or else a file by path (what a `--target` option accepts).
    pub fn resolve(name_or_path: &str) -> Result<Target, TargetError> {
        if builtin_names().any(|n| n == name_or_path) {
            Target::builtin(name_or_path)
        } else if name_or_path.ends_with(".toml") || Path::new(name_or_path).exists() {
            Target::load(name_or_path)
        } else {
            Target::builtin(name_or_path)
        }
    }

    /// Parses and validates target text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Target, TargetError> {
        let target = error::deserialize(text, file)?;
        validate::validate(&target).map_err(|(path, reason)| TargetError::Invalid {
            file: file.to_string(),
            line: error::line_of_path(text, &path),
            path,
            reason,
        })?;
        Ok(target)
    }

    /// MACs per cycle (all cores) for a MAC kind.
    pub fn macs_per_cycle(&self, kind: MacKind) -> u32 {
        match kind {
            MacKind::I8xI8 => self.compute.macs_per_cycle.i8xi8,
            MacKind::I16xI8 => self.compute.macs_per_cycle.i16xi8,
        }
    }

    /// Peak tera-operations per second (one MAC = two operations).
    pub fn peak_tops(&self, kind: MacKind) -> f64 {
        2.0 * f64::from(self.macs_per_cycle(kind)) * self.compute.clock_hz as f64 / 1e12
    }

    /// Energy of one MAC in pJ.
    pub fn mac_energy_pj(&self, kind: MacKind) -> f64 {
        match kind {
            MacKind::I8xI8 => self.energy.mac_i8xi8_pj,
            MacKind::I16xI8 => self.energy.mac_i16xi8_pj,
        }
    }

    /// Seconds per core cycle.
    pub fn cycle_seconds(&self) -> f64 {
        1.0 / self.compute.clock_hz as f64
    }

    /// Whether the NPU runs the op with this mnemonic at all (constraints aside).
    pub fn supports_op(&self, mnemonic: &str) -> bool {
        self.ops.contains_key(mnemonic)
    }
}

/// Every op mnemonic npuc's IR knows, except `opaque` (custom ops never run on an NPU).
pub fn known_op_names() -> impl Iterator<Item = &'static str> {
    npuc_ir::parse::MNEMONICS.iter().copied().filter(|m| *m != "opaque")
}
