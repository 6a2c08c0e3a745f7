//! Operators and their typed attributes.
//!
//! Attribute sets follow the TFLite builtin options closely, because TFLite is the format
//! npuc reads and writes and a lossless round trip needs every field; the names are
//! npuc's own. Operand order is TFLite's too (e.g. conv: input, filter, optional bias).

use bytes::Bytes;

use crate::types::DType;

/// Padding scheme of windowed ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output size `ceil(in / stride)`, zero padding split with the extra at the end.
    Same,
    /// No padding: output size `ceil((in - effective_kernel + 1) / stride)`.
    Valid,
}

/// Activation fused into an op's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// No activation.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, -1, 1)`.
    ReluN1To1,
    /// `clamp(x, 0, 6)`.
    Relu6,
    /// `tanh(x)`.
    Tanh,
    /// Sign bit (TFLite's `SIGN_BIT`; no builtin kernel uses it, kept for round trips).
    SignBit,
}

impl Activation {
    /// Every activation, in a fixed order.
    pub const ALL: [Activation; 6] = [
        Activation::None,
        Activation::Relu,
        Activation::ReluN1To1,
        Activation::Relu6,
        Activation::Tanh,
        Activation::SignBit,
    ];

    /// Text-format name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::ReluN1To1 => "relu_n1_to_1",
            Activation::Relu6 => "relu6",
            Activation::Tanh => "tanh",
            Activation::SignBit => "sign_bit",
        }
    }
}

/// Attributes of CONV_2D.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dAttrs {
    /// Padding scheme.
    pub padding: Padding,
    /// Strides `[h, w]`.
    pub stride: [u32; 2],
    /// Dilations `[h, w]`.
    pub dilation: [u32; 2],
    /// Fused activation.
    pub activation: Activation,
    /// Requested accumulator/bias type of quantized kernels, if set in the file.
    pub bias_type: Option<DType>,
}

/// Attributes of DEPTHWISE_CONV_2D.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthwiseConv2dAttrs {
    /// Padding scheme.
    pub padding: Padding,
    /// Strides `[h, w]`.
    pub stride: [u32; 2],
    /// Dilations `[h, w]`.
    pub dilation: [u32; 2],
    /// Output channels per input channel.
    pub depth_multiplier: u32,
    /// Fused activation.
    pub activation: Activation,
}

/// Attributes of TRANSPOSE_CONV (operands: output shape, filter, input, optional bias).
#[derive(Clone, Debug, PartialEq)]
pub struct TransposeConvAttrs {
    /// Padding scheme.
    pub padding: Padding,
    /// Strides `[h, w]`.
    pub stride: [u32; 2],
    /// Fused activation.
    pub activation: Activation,
    /// Requested bias type of quantized kernels, if set in the file.
    pub bias_type: Option<DType>,
}

/// Attributes of FULLY_CONNECTED.
#[derive(Clone, Debug, PartialEq)]
pub struct FullyConnectedAttrs {
    /// Fused activation.
    pub activation: Activation,
    /// Keep the input's leading dimensions instead of flattening to 2-D.
    pub keep_num_dims: bool,
    /// Weights are stored in TFLite's shuffled 4x16 int8 layout.
    pub shuffled_weights: bool,
    /// Hybrid kernels quantize inputs asymmetrically.
    pub asymmetric_quantize_inputs: bool,
    /// Requested bias type of quantized kernels, if set in the file.
    pub bias_type: Option<DType>,
}

/// Attributes of AVERAGE_POOL_2D and MAX_POOL_2D.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dAttrs {
    /// Padding scheme.
    pub padding: Padding,
    /// Strides `[h, w]`.
    pub stride: [u32; 2],
    /// Window `[h, w]`.
    pub filter: [u32; 2],
    /// Fused activation.
    pub activation: Activation,
}

/// Attributes of STRIDED_SLICE (bit masks over dimensions, as in TFLite).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StridedSliceAttrs {
    /// Ignore `begin[i]` where bit i is set.
    pub begin_mask: i32,
    /// Ignore `end[i]` where bit i is set.
    pub end_mask: i32,
    /// Ellipsis position mask.
    pub ellipsis_mask: i32,
    /// Insert a new axis where bit i is set.
    pub new_axis_mask: i32,
    /// Drop dimension i (taking a single index) where bit i is set.
    pub shrink_axis_mask: i32,
    /// `end` is an offset from `begin` rather than an absolute index.
    pub offset: bool,
}

/// Attributes of RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ResizeAttrs {
    /// Align the corner pixels of input and output.
    pub align_corners: bool,
    /// Sample at pixel centres (`(x + 0.5) * scale - 0.5`).
    pub half_pixel_centers: bool,
}

/// An operator npuc does not model: kept verbatim so it survives a round trip.
#[derive(Clone, Debug, PartialEq)]
pub struct OpaqueOp {
    /// Builtin operator name (e.g. `WHILE`) or custom code.
    pub name: String,
    /// The TFLite builtin code, or `None` for a custom operator.
    pub builtin_code: Option<i32>,
    /// Front-end specific encoding of the builtin options (for TFLite: a standalone
    /// flatbuffer of npuc's `OpaqueOptions` table); empty if there were none.
    pub options: Bytes,
    /// Custom options, verbatim.
    pub custom_options: Bytes,
}

/// An operation's kind and typed attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// 2-D convolution, NHWC input, OHWI filter, optional bias.
    Conv2d(Conv2dAttrs),
    /// Depthwise 2-D convolution, 1HW(C·m) filter.
    DepthwiseConv2d(DepthwiseConv2dAttrs),
    /// Transposed convolution.
    TransposeConv(TransposeConvAttrs),
    /// Fully connected layer, `[out, in]` weights.
    FullyConnected(FullyConnectedAttrs),
    /// Elementwise add with broadcasting.
    Add {
        /// Fused activation.
        activation: Activation,
        /// int16 kernels require power-of-two scales (TFLite's `pot_scale_int16`).
        pot_scale_int16: bool,
    },
    /// Elementwise subtract with broadcasting.
    Sub {
        /// Fused activation.
        activation: Activation,
        /// int16 kernels require power-of-two scales.
        pot_scale_int16: bool,
    },
    /// Elementwise multiply with broadcasting.
    Mul {
        /// Fused activation.
        activation: Activation,
    },
    /// Elementwise divide with broadcasting.
    Div {
        /// Fused activation.
        activation: Activation,
    },
    /// Elementwise maximum.
    Maximum,
    /// Elementwise minimum.
    Minimum,
    /// `(a - b)^2` elementwise.
    SquaredDifference,
    /// Average pooling.
    AveragePool2d(Pool2dAttrs),
    /// Max pooling.
    MaxPool2d(Pool2dAttrs),
    /// Mean over the axes given by the second operand.
    Mean {
        /// Keep reduced dimensions with size 1.
        keep_dims: bool,
    },
    /// Sum over the axes given by the second operand.
    Sum {
        /// Keep reduced dimensions with size 1.
        keep_dims: bool,
    },
    /// Reshape; the target shape is the optional second operand or `new_shape`.
    Reshape {
        /// Target shape from the options, if the file gave one.
        new_shape: Option<Vec<i32>>,
    },
    /// Remove size-1 dimensions (all if `axes` is empty).
    Squeeze {
        /// Dimensions to remove.
        axes: Vec<i32>,
    },
    /// Insert a size-1 dimension at the axis given by the second operand.
    ExpandDims,
    /// Concatenate along an axis.
    Concatenation {
        /// Axis (negative counts from the end).
        axis: i32,
        /// Fused activation.
        activation: Activation,
    },
    /// Split into equal parts; operands: axis, input.
    Split {
        /// Number of outputs.
        num_splits: u32,
    },
    /// Split into given sizes; operands: input, sizes, axis.
    SplitV {
        /// Number of outputs.
        num_splits: u32,
    },
    /// Stack tensors along a new axis.
    Pack {
        /// Number of inputs.
        values_count: u32,
        /// New axis.
        axis: i32,
    },
    /// Unstack along an axis.
    Unpack {
        /// Number of outputs.
        num: u32,
        /// Axis to remove.
        axis: i32,
    },
    /// Zero (or zero-point) padding; operands: input, paddings.
    Pad,
    /// Padding with an explicit value; operands: input, paddings, value.
    PadV2,
    /// Strided slice; operands: input, begin, end, strides.
    StridedSlice(StridedSliceAttrs),
    /// Slice; operands: input, begin, size.
    Slice,
    /// Permute dimensions; operands: input, permutation.
    Transpose,
    /// Move depth blocks into spatial blocks.
    DepthToSpace {
        /// Block size.
        block_size: u32,
    },
    /// Move spatial blocks into depth.
    SpaceToDepth {
        /// Block size.
        block_size: u32,
    },
    /// Batch to space; operands: input, block shape, crops.
    BatchToSpaceNd,
    /// Space to batch; operands: input, block shape, paddings.
    SpaceToBatchNd,
    /// Bilinear resize; operands: input, size `[h, w]`.
    ResizeBilinear(ResizeAttrs),
    /// Nearest-neighbour resize; operands: input, size `[h, w]`.
    ResizeNearestNeighbor(ResizeAttrs),
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, 0, 6)`.
    Relu6,
    /// `clamp(x, -1, 1)`.
    ReluN1To1,
    /// `x if x >= 0 else alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// Parametric ReLU; operands: input, alpha (broadcast).
    Prelu,
    /// Sigmoid.
    Logistic,
    /// Hyperbolic tangent.
    Tanh,
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// Softmax over the last dimension.
    Softmax {
        /// Inverse temperature.
        beta: f32,
    },
    /// Convert float to quantized, or requantize.
    Quantize,
    /// Convert quantized or f16 to f32.
    Dequantize,
    /// Expand a sparse constant to dense.
    Densify,
    /// Gather slices; operands: params, indices.
    Gather {
        /// Axis of `params` to gather along.
        axis: i32,
        /// Number of leading batch dimensions.
        batch_dims: i32,
    },
    /// Index of the maximum along an axis; operands: input, axis.
    ArgMax {
        /// Output index type (`i32` or `i64`).
        output_type: DType,
    },
    /// L2 normalization over the last dimension.
    L2Normalization {
        /// Fused activation.
        activation: Activation,
    },
    /// `e^x`.
    Exp,
    /// Square root.
    Sqrt,
    /// Reciprocal square root.
    Rsqrt,
    /// The input's shape as a 1-D integer tensor (converters emit it for dynamic batch).
    Shape {
        /// Output element type (`i32` or `i64`).
        output_type: DType,
    },
    /// Product over the axes given by the second operand.
    ReduceProd {
        /// Keep reduced dimensions with size 1.
        keep_dims: bool,
    },
    /// `a > b` elementwise with broadcasting; bool result.
    Greater,
    /// `a >= b` elementwise with broadcasting; bool result.
    GreaterEqual,
    /// `a < b` elementwise with broadcasting; bool result.
    Less,
    /// `a <= b` elementwise with broadcasting; bool result.
    LessEqual,
    /// `a == b` elementwise with broadcasting; bool result.
    Equal,
    /// `a != b` elementwise with broadcasting; bool result.
    NotEqual,
    /// Runs one of two graphs of the module: operands are a scalar bool condition, then
    /// the callee's inputs; results are the callee's outputs.
    If {
        /// Module index of the graph run when the condition is true.
        then_graph: u32,
        /// Module index of the graph run when the condition is false.
        else_graph: u32,
    },
    /// Loop: while `cond_graph(state)` is true, `state = body_graph(state)`; operands are
    /// the initial state, results the final state.
    While {
        /// Module index of the condition graph (state in, one scalar bool out).
        cond_graph: u32,
        /// Module index of the body graph (state in, state out).
        body_graph: u32,
    },
    /// An operator kept verbatim.
    Opaque(OpaqueOp),
}

impl Op {
    /// The text-format mnemonic (snake case of the TFLite name; `opaque` for opaque ops).
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv_2d",
            Op::DepthwiseConv2d(_) => "depthwise_conv_2d",
            Op::TransposeConv(_) => "transpose_conv",
            Op::FullyConnected(_) => "fully_connected",
            Op::Add { .. } => "add",
            Op::Sub { .. } => "sub",
            Op::Mul { .. } => "mul",
            Op::Div { .. } => "div",
            Op::Maximum => "maximum",
            Op::Minimum => "minimum",
            Op::SquaredDifference => "squared_difference",
            Op::AveragePool2d(_) => "average_pool_2d",
            Op::MaxPool2d(_) => "max_pool_2d",
            Op::Mean { .. } => "mean",
            Op::Sum { .. } => "sum",
            Op::Reshape { .. } => "reshape",
            Op::Squeeze { .. } => "squeeze",
            Op::ExpandDims => "expand_dims",
            Op::Concatenation { .. } => "concatenation",
            Op::Split { .. } => "split",
            Op::SplitV { .. } => "split_v",
            Op::Pack { .. } => "pack",
            Op::Unpack { .. } => "unpack",
            Op::Pad => "pad",
            Op::PadV2 => "padv2",
            Op::StridedSlice(_) => "strided_slice",
            Op::Slice => "slice",
            Op::Transpose => "transpose",
            Op::DepthToSpace { .. } => "depth_to_space",
            Op::SpaceToDepth { .. } => "space_to_depth",
            Op::BatchToSpaceNd => "batch_to_space_nd",
            Op::SpaceToBatchNd => "space_to_batch_nd",
            Op::ResizeBilinear(_) => "resize_bilinear",
            Op::ResizeNearestNeighbor(_) => "resize_nearest_neighbor",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::ReluN1To1 => "relu_n1_to_1",
            Op::LeakyRelu { .. } => "leaky_relu",
            Op::Prelu => "prelu",
            Op::Logistic => "logistic",
            Op::Tanh => "tanh",
            Op::HardSwish => "hard_swish",
            Op::Softmax { .. } => "softmax",
            Op::Quantize => "quantize",
            Op::Dequantize => "dequantize",
            Op::Densify => "densify",
            Op::Gather { .. } => "gather",
            Op::ArgMax { .. } => "arg_max",
            Op::L2Normalization { .. } => "l2_normalization",
            Op::Exp => "exp",
            Op::Sqrt => "sqrt",
            Op::Rsqrt => "rsqrt",
            Op::Shape { .. } => "shape",
            Op::ReduceProd { .. } => "reduce_prod",
            Op::Greater => "greater",
            Op::GreaterEqual => "greater_equal",
            Op::Less => "less",
            Op::LessEqual => "less_equal",
            Op::Equal => "equal",
            Op::NotEqual => "not_equal",
            Op::If { .. } => "if",
            Op::While { .. } => "while",
            Op::Opaque(_) => "opaque",
        }
    }

    /// A human-readable name: the mnemonic, or the opaque op's own name.
    pub fn display_name(&self) -> &str {
        match self {
            Op::Opaque(o) => &o.name,
            _ => self.mnemonic(),
        }
    }

    /// Whether the op combines two tensors element by element with broadcasting (ADD, SUB,
    /// MUL, DIV, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE): the result has the broadcast shape.
    pub fn is_binary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Add { .. }
                | Op::Sub { .. }
                | Op::Mul { .. }
                | Op::Div { .. }
                | Op::Maximum
                | Op::Minimum
                | Op::SquaredDifference
        )
    }

    /// Whether the op maps each element to one element by a fixed function of it alone
    /// (activations, exp, sqrt, …): shape, layout and channel count pass through.
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::Relu6
                | Op::ReluN1To1
                | Op::LeakyRelu { .. }
                | Op::Logistic
                | Op::Tanh
                | Op::HardSwish
                | Op::Exp
                | Op::Sqrt
                | Op::Rsqrt
        )
    }

    /// Whether the op is an elementwise comparison with a bool result.
    pub fn is_comparison(&self) -> bool {
        matches!(self, Op::Greater | Op::GreaterEqual | Op::Less | Op::LessEqual | Op::Equal | Op::NotEqual)
    }

    /// The module graphs the op calls (IF: then, else; WHILE: cond, body), if any.
    pub fn callees(&self) -> Vec<usize> {
        match self {
            Op::If { then_graph, else_graph } => vec![*then_graph as usize, *else_graph as usize],
            Op::While { cond_graph, body_graph } => vec![*cond_graph as usize, *body_graph as usize],
            _ => Vec::new(),
        }
    }

    /// Rewrites the graph indices the op calls through `map` (old index → new index), for
    /// passes that drop or reorder a module's graphs.
    pub fn remap_callees(&mut self, map: impl Fn(u32) -> u32) {
        match self {
            Op::If { then_graph, else_graph } => {
                *then_graph = map(*then_graph);
                *else_graph = map(*else_graph);
            }
            Op::While { cond_graph, body_graph } => {
                *cond_graph = map(*cond_graph);
                *body_graph = map(*body_graph);
            }
            _ => {}
        }
    }

    /// The fused activation, for ops that have one.
    pub fn fused_activation(&self) -> Option<Activation> {
        match self {
            Op::Conv2d(a) => Some(a.activation),
            Op::DepthwiseConv2d(a) => Some(a.activation),
            Op::TransposeConv(a) => Some(a.activation),
            Op::FullyConnected(a) => Some(a.activation),
            Op::AveragePool2d(a) | Op::MaxPool2d(a) => Some(a.activation),
            Op::Add { activation, .. }
            | Op::Sub { activation, .. }
            | Op::Mul { activation }
            | Op::Div { activation }
            | Op::Concatenation { activation, .. }
            | Op::L2Normalization { activation } => Some(*activation),
            _ => None,
        }
    }
}
