//! The lowered program: what the `.npu` artifact holds and the simulator executes.
//!
//! An [`NpuProgram`] is self-contained: a command stream whose tensors are named only by
//! region and byte offset (no graph ids), the compressed weight streams, the per-channel
//! scale/bias records, the lookup tables, the constants the NPU reads from flash, the memory
//! map, the input/output descriptors and the CPU fallback models (TFLite bytes). Everything
//! a command needs is reachable from the command itself, so the artifact alone can run.

use std::collections::BTreeMap;

use npuc_ir::{
    Activation, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Op, Padding, Pool2dAttrs, Quantization,
    TensorType,
};

use crate::reorder::{Accelerator, Traversal};

/// The memory a tensor lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// The SRAM arena (activations).
    Sram,
    /// The constants section, read from flash/DRAM.
    Flash,
    /// External DRAM (large feature maps on DRAM targets).
    Dram,
}

impl Region {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Region::Sram => "sram",
            Region::Flash => "flash",
            Region::Dram => "dram",
        }
    }
}

/// A tensor as the hardware sees it: where it is and how to read it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// Memory region.
    pub region: Region,
    /// Byte offset in the region.
    pub offset: u64,
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Quantization (scales, zero points, axis), if any.
    pub quant: Option<Quantization>,
}

impl TensorRef {
    /// The IR type of the tensor (quantization without min/max, which nothing executes).
    pub fn tensor_type(&self) -> TensorType {
        TensorType { dtype: self.dtype, shape: self.shape.clone(), quant: self.quant.clone() }
    }

    /// Storage bytes, or `None` on overflow.
    pub fn bytes(&self) -> Option<u64> {
        self.tensor_type().storage_bytes()
    }
}

/// How a weight stream was reordered, so the simulator can undo it.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightRef {
    /// Index into [`NpuProgram::weights`].
    pub stream: u32,
    /// The weights' OHWI shape (depthwise: `[C·m, H, W, 1]`, fully connected: `[O, 1, 1, I]`).
    pub ohwi: [usize; 4],
    /// The accelerator whose micro-block depths the reorder used.
    pub accelerator: Accelerator,
    /// Decoder traversal.
    pub traversal: Traversal,
    /// OFM block depth of the reorder.
    pub ofm_block_depth: usize,
    /// IFM element width (8 or 16).
    pub ifm_bits: u32,
    /// Dilation (x, y) the reorder split sub-kernels for.
    pub dilation: (usize, usize),
    /// Weight dtype and quantization (the stream holds `w − zero point`).
    pub tensor: TensorRef,
}

/// What an NPU command computes; the attributes the hardware needs for each kind.
#[derive(Clone, Debug, PartialEq)]
pub enum NpuOp {
    /// 2-D convolution (weights from a stream, bias/scale from records).
    Conv2d {
        /// Padding scheme.
        padding: Padding,
        /// Strides `[h, w]`.
        stride: [u32; 2],
        /// Dilation `[h, w]`.
        dilation: [u32; 2],
        /// Fused clamp.
        activation: Activation,
    },
    /// Depthwise 2-D convolution.
    DepthwiseConv2d {
        /// Padding scheme.
        padding: Padding,
        /// Strides `[h, w]`.
        stride: [u32; 2],
        /// Dilation `[h, w]`.
        dilation: [u32; 2],
        /// Output channels per input channel.
        depth_multiplier: u32,
        /// Fused clamp.
        activation: Activation,
    },
    /// Fully connected (a 1×1 convolution on the NPU).
    FullyConnected {
        /// Fused clamp.
        activation: Activation,
        /// Keep the IFM's leading dimensions.
        keep_num_dims: bool,
    },
    /// Average pooling.
    AveragePool(Pool2dAttrs),
    /// Max pooling.
    MaxPool(Pool2dAttrs),
    /// Elementwise addition (IFM, IFM2).
    Add {
        /// Fused clamp.
        activation: Activation,
        /// TFLite's power-of-two int16 scaling flag, kept so the kernel matches.
        pot_scale_int16: bool,
    },
    /// Elementwise subtraction.
    Sub {
        /// Fused clamp.
        activation: Activation,
        /// TFLite's power-of-two int16 scaling flag, kept so the kernel matches.
        pot_scale_int16: bool,
    },
    /// Elementwise multiplication.
    Mul {
        /// Fused clamp.
        activation: Activation,
    },
    /// Elementwise maximum.
    Maximum,
    /// Elementwise minimum.
    Minimum,
    /// Parametric ReLU (IFM, alpha).
    Prelu,
    /// Softmax over the innermost dimension.
    Softmax {
        /// Inverse temperature.
        beta: f32,
    },
    /// Mean over the axes of operand 1.
    Mean {
        /// Keep reduced dimensions as size 1.
        keep_dims: bool,
    },
    /// Concatenation of the operands along an axis.
    Concatenation {
        /// Axis (may be negative).
        axis: i32,
    },
    /// Constant zero-point padding (operand 1: paddings).
    Pad,
    /// An int8 elementwise function through a 256-entry table.
    Lut,
}

impl NpuOp {
    /// Short name for reports and errors.
    pub fn name(&self) -> &'static str {
        match self {
            NpuOp::Conv2d { .. } => "conv_2d",
            NpuOp::DepthwiseConv2d { .. } => "depthwise_conv_2d",
            NpuOp::FullyConnected { .. } => "fully_connected",
            NpuOp::AveragePool(_) => "average_pool_2d",
            NpuOp::MaxPool(_) => "max_pool_2d",
            NpuOp::Add { .. } => "add",
            NpuOp::Sub { .. } => "sub",
            NpuOp::Mul { .. } => "mul",
            NpuOp::Maximum => "maximum",
            NpuOp::Minimum => "minimum",
            NpuOp::Prelu => "prelu",
            NpuOp::Softmax { .. } => "softmax",
            NpuOp::Mean { .. } => "mean",
            NpuOp::Concatenation { .. } => "concatenation",
            NpuOp::Pad => "pad",
            NpuOp::Lut => "lut",
        }
    }

    /// The NPU op for an IR op, if npuc lowers that kind to the NPU (table ops are chosen
    /// by the lowering, which knows the dtypes).
    pub fn from_ir(op: &Op) -> Option<NpuOp> {
        Some(match op {
            Op::Conv2d(a) => {
                NpuOp::Conv2d { padding: a.padding, stride: a.stride, dilation: a.dilation, activation: a.activation }
            }
            Op::DepthwiseConv2d(a) => NpuOp::DepthwiseConv2d {
                padding: a.padding,
                stride: a.stride,
                dilation: a.dilation,
                depth_multiplier: a.depth_multiplier,
                activation: a.activation,
            },
            Op::FullyConnected(a) if !a.shuffled_weights => {
                NpuOp::FullyConnected { activation: a.activation, keep_num_dims: a.keep_num_dims }
            }
            Op::AveragePool2d(a) => NpuOp::AveragePool(a.clone()),
            Op::MaxPool2d(a) => NpuOp::MaxPool(a.clone()),
            Op::Add { activation, pot_scale_int16 } => {
                NpuOp::Add { activation: *activation, pot_scale_int16: *pot_scale_int16 }
            }
            Op::Sub { activation, pot_scale_int16 } => {
                NpuOp::Sub { activation: *activation, pot_scale_int16: *pot_scale_int16 }
            }
            Op::Mul { activation } => NpuOp::Mul { activation: *activation },
            Op::Maximum => NpuOp::Maximum,
            Op::Minimum => NpuOp::Minimum,
            Op::Prelu => NpuOp::Prelu,
            Op::Softmax { beta } => NpuOp::Softmax { beta: *beta },
            Op::Mean { keep_dims } => NpuOp::Mean { keep_dims: *keep_dims },
            Op::Concatenation { axis, activation: Activation::None } => NpuOp::Concatenation { axis: *axis },
            Op::Pad => NpuOp::Pad,
            _ => return None,
        })
    }

    /// The IR op computing the same function, for the reference kernels (`None` for
    /// [`NpuOp::Lut`], which is a table lookup).
    pub fn to_ir(&self) -> Option<Op> {
        Some(match self {
            NpuOp::Conv2d { padding, stride, dilation, activation } => Op::Conv2d(Conv2dAttrs {
                padding: *padding,
                stride: *stride,
                dilation: *dilation,
                activation: *activation,
                bias_type: None,
            }),
            NpuOp::DepthwiseConv2d { padding, stride, dilation, depth_multiplier, activation } => {
                Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
                    padding: *padding,
                    stride: *stride,
                    dilation: *dilation,
                    depth_multiplier: *depth_multiplier,
                    activation: *activation,
                })
            }
            NpuOp::FullyConnected { activation, keep_num_dims } => Op::FullyConnected(FullyConnectedAttrs {
                activation: *activation,
                keep_num_dims: *keep_num_dims,
                shuffled_weights: false,
                asymmetric_quantize_inputs: false,
                bias_type: None,
            }),
            NpuOp::AveragePool(a) => Op::AveragePool2d(a.clone()),
            NpuOp::MaxPool(a) => Op::MaxPool2d(a.clone()),
            NpuOp::Add { activation, pot_scale_int16 } => {
                Op::Add { activation: *activation, pot_scale_int16: *pot_scale_int16 }
            }
            NpuOp::Sub { activation, pot_scale_int16 } => {
                Op::Sub { activation: *activation, pot_scale_int16: *pot_scale_int16 }
            }
            NpuOp::Mul { activation } => Op::Mul { activation: *activation },
            NpuOp::Maximum => Op::Maximum,
            NpuOp::Minimum => Op::Minimum,
            NpuOp::Prelu => Op::Prelu,
            NpuOp::Softmax { beta } => Op::Softmax { beta: *beta },
            NpuOp::Mean { keep_dims } => Op::Mean { keep_dims: *keep_dims },
            NpuOp::Concatenation { axis } => Op::Concatenation { axis: *axis, activation: Activation::None },
            NpuOp::Pad => Op::Pad,
            NpuOp::Lut => return None,
        })
    }

    /// The same op with VALID padding (what a stripe with explicit padding runs).
    pub fn with_valid_padding(&self) -> NpuOp {
        let mut op = self.clone();
        match &mut op {
            NpuOp::Conv2d { padding, .. } | NpuOp::DepthwiseConv2d { padding, .. } => *padding = Padding::Valid,
            NpuOp::AveragePool(a) | NpuOp::MaxPool(a) => a.padding = Padding::Valid,
            _ => {}
        }
        op
    }

    /// Whether the op reads a weight stream and scale/bias records.
    pub fn has_weights(&self) -> bool {
        matches!(self, NpuOp::Conv2d { .. } | NpuOp::DepthwiseConv2d { .. } | NpuOp::FullyConnected { .. })
    }
}

/// One NPU operation.
#[derive(Clone, Debug, PartialEq)]
pub struct NpuCommand {
    /// What it computes.
    pub op: NpuOp,
    /// Name of its first result in the source graph (for reports and errors).
    pub name: String,
    /// Operands in the IR op's order; weighted ops leave the weight and bias slots `None`
    /// (they come from [`NpuCommand::weights`] and [`NpuCommand::scale_bias`]).
    pub operands: Vec<Option<TensorRef>>,
    /// Results (OFM).
    pub outputs: Vec<TensorRef>,
    /// The weight stream, for weighted ops.
    pub weights: Option<WeightRef>,
    /// Index into [`NpuProgram::scale_bias`], for weighted ops.
    pub scale_bias: Option<u32>,
    /// Index into [`NpuProgram::luts`], for [`NpuOp::Lut`].
    pub lut: Option<u32>,
    /// OFM rows `[start, end)` this command computes; the full height when not striped.
    pub stripe: (u32, u32),
    /// Fused clamp `[lo, hi]` in OFM units (TFLite's `CalculateActivationRangeQuantized`),
    /// for weighted ops.
    pub clamp: Option<[i32; 2]>,
    /// Explicit IFM padding `[top, bottom, left, right]` of a stripe (the op then runs as
    /// VALID over the padded rows); `None` when the op's own padding applies.
    pub pad: Option<[u32; 4]>,
}

/// A call of one subgraph of the embedded CPU model.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuCall {
    /// Subgraph of [`NpuProgram::cpu_model`] to run.
    pub subgraph: u32,
    /// Where the model's inputs are, in its input order.
    pub inputs: Vec<TensorRef>,
    /// Where its outputs go, in its output order.
    pub outputs: Vec<TensorRef>,
}

/// One command of the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// An NPU operation (boxed: it is much larger than the other commands).
    Npu(Box<NpuCommand>),
    /// A byte copy (DMA), also what RESHAPE-like ops become when not aliased in place.
    Dma {
        /// Source region.
        src_region: Region,
        /// Source byte offset.
        src: u64,
        /// Destination region.
        dst_region: Region,
        /// Destination byte offset.
        dst: u64,
        /// Bytes to move.
        len: u64,
    },
    /// A CPU fallback segment.
    Cpu(CpuCall),
}

/// A named graph input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct IoDesc {
    /// Tensor name in the source model.
    pub name: String,
    /// Where it lives and how it is quantized.
    pub tensor: TensorRef,
}

/// One entry of the memory map (informative: the commands carry their own offsets).
#[derive(Clone, Debug, PartialEq)]
pub struct MapEntry {
    /// Tensor name.
    pub name: String,
    /// Region.
    pub region: Region,
    /// Byte offset.
    pub offset: u64,
    /// Size in bytes (aligned).
    pub size: u64,
    /// First command index at which it is live.
    pub first: u32,
    /// Last command index at which it is live.
    pub last: u32,
}

/// Sizes of the memories and where every buffer is.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MemoryMap {
    /// SRAM arena bytes.
    pub sram_bytes: u64,
    /// DRAM bytes used for feature maps.
    pub dram_bytes: u64,
    /// The buffers.
    pub entries: Vec<MapEntry>,
}

/// A lowered model.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NpuProgram {
    /// Target name.
    pub target: String,
    /// The command stream, in execution order.
    pub commands: Vec<Command>,
    /// Compressed weight streams.
    pub weights: Vec<Vec<u8>>,
    /// Per-op scale/bias records, 10 bytes per OFM channel.
    pub scale_bias: Vec<Vec<[u8; 10]>>,
    /// Lookup tables (256 bytes each, indexed by the int8 input + 128).
    pub luts: Vec<Vec<u8>>,
    /// Constants read by NPU commands ([`Region::Flash`] offsets point here).
    pub constants: Vec<u8>,
    /// Memory map.
    pub memory: MemoryMap,
    /// Graph inputs.
    pub inputs: Vec<IoDesc>,
    /// Graph outputs.
    pub outputs: Vec<IoDesc>,
    /// The CPU fallback: one TFLite flatbuffer with a subgraph per CPU segment (empty when
    /// every op runs on the NPU).
    pub cpu_model: Vec<u8>,
    /// The report: compiler version, pipeline, statistics; new keys may be added freely.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl NpuProgram {
    /// Number of NPU commands.
    pub fn npu_ops(&self) -> usize {
        self.commands.iter().filter(|c| matches!(c, Command::Npu(_))).count()
    }

    /// Bytes of all compressed weight streams.
    pub fn encoded_weight_bytes(&self) -> u64 {
        self.weights.iter().map(|w| w.len() as u64).sum()
    }

    /// Bytes the program keeps in flash: weights, records, tables, constants, CPU models.
    pub fn flash_bytes(&self) -> u64 {
        self.encoded_weight_bytes()
            + self.scale_bias.iter().map(|r| 10 * r.len() as u64).sum::<u64>()
            + self.luts.iter().map(|l| l.len() as u64).sum::<u64>()
            + self.constants.len() as u64
            + self.cpu_model.len() as u64
    }
}
