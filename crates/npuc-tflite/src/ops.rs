//! The mapping between TFLite builtin operators and npuc's typed [`Op`]s, both ways.

use npuc_ir::{
    Activation, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Op, Padding, Pool2dAttrs, ResizeAttrs,
    StridedSliceAttrs, TransposeConvAttrs,
};

use crate::error::TfliteError;
use crate::generated::tflite as fb;
use fb::BuiltinOperator as B;

/// Highest operator version npuc knows the semantics of, per modeled builtin.
///
/// Source: the `max_version` of each kernel registration in the builtin op resolver,
/// `tensorflow/lite/core/kernels/register.cc` (2023 and later). A file with a
/// higher version uses an operator revision npuc has not modelled, which is an error
/// rather than a silent misreading.
pub fn max_version(code: B) -> Option<u32> {
    Some(match code {
        B::CONV_2D => 8,
        B::DEPTHWISE_CONV_2D => 7,
        B::TRANSPOSE_CONV => 5,
        B::FULLY_CONNECTED => 13,
        B::ADD => 5,
        B::SUB => 5,
        B::MUL => 7,
        B::DIV => 2,
        B::MAXIMUM | B::MINIMUM => 4,
        B::SQUARED_DIFFERENCE => 2,
        B::AVERAGE_POOL_2D | B::MAX_POOL_2D => 3,
        B::MEAN => 3,
        B::SUM => 2,
        B::RESHAPE => 1,
        B::SQUEEZE => 2,
        B::EXPAND_DIMS => 1,
        B::CONCATENATION => 4,
        B::SPLIT => 4,
        B::SPLIT_V => 2,
        B::PACK | B::UNPACK => 4,
        B::PAD | B::PADV2 => 5,
        B::STRIDED_SLICE => 8,
        B::SLICE => 6,
        B::TRANSPOSE => 7,
        B::DEPTH_TO_SPACE | B::SPACE_TO_DEPTH => 2,
        B::BATCH_TO_SPACE_ND | B::SPACE_TO_BATCH_ND => 4,
        B::RESIZE_BILINEAR | B::RESIZE_NEAREST_NEIGHBOR => 4,
        B::RELU | B::RELU6 => 3,
        B::RELU_N1_TO_1 => 1,
        B::LEAKY_RELU => 2,
        B::PRELU => 1,
        B::LOGISTIC | B::TANH => 3,
        B::HARD_SWISH => 1,
        B::SOFTMAX => 3,
        B::QUANTIZE => 4,
        B::DEQUANTIZE => 6,
        B::DENSIFY => 1,
        B::GATHER => 7,
        B::ARG_MAX => 3,
        B::L2_NORMALIZATION => 2,
        B::EXP => 2,
        B::SQRT => 2,
        B::RSQRT => 3,
        B::SHAPE => 1,
        B::REDUCE_PROD => 2,
        B::GREATER | B::GREATER_EQUAL | B::LESS | B::LESS_EQUAL => 2,
        B::EQUAL => 4,
        B::NOT_EQUAL => 3,
        B::IF | B::WHILE => 1,
        _ => return None,
    })
}

/// The TFLite builtin code of a modeled op (`None` for opaque ops).
pub fn builtin_code(op: &Op) -> Option<B> {
    Some(match op {
        Op::Conv2d(_) => B::CONV_2D,
        Op::DepthwiseConv2d(_) => B::DEPTHWISE_CONV_2D,
        Op::TransposeConv(_) => B::TRANSPOSE_CONV,
        Op::FullyConnected(_) => B::FULLY_CONNECTED,
        Op::Add { .. } => B::ADD,
        Op::Sub { .. } => B::SUB,
        Op::Mul { .. } => B::MUL,
        Op::Div { .. } => B::DIV,
        Op::Maximum => B::MAXIMUM,
        Op::Minimum => B::MINIMUM,
        Op::SquaredDifference => B::SQUARED_DIFFERENCE,
        Op::AveragePool2d(_) => B::AVERAGE_POOL_2D,
        Op::MaxPool2d(_) => B::MAX_POOL_2D,
        Op::Mean { .. } => B::MEAN,
        Op::Sum { .. } => B::SUM,
        Op::Reshape { .. } => B::RESHAPE,
        Op::Squeeze { .. } => B::SQUEEZE,
        Op::ExpandDims => B::EXPAND_DIMS,
        Op::Concatenation { .. } => B::CONCATENATION,
        Op::Split { .. } => B::SPLIT,
        Op::SplitV { .. } => B::SPLIT_V,
        Op::Pack { .. } => B::PACK,
        Op::Unpack { .. } => B::UNPACK,
        Op::Pad => B::PAD,
        Op::PadV2 => B::PADV2,
        Op::StridedSlice(_) => B::STRIDED_SLICE,
        Op::Slice => B::SLICE,
        Op::Transpose => B::TRANSPOSE,
        Op::DepthToSpace { .. } => B::DEPTH_TO_SPACE,
        Op::SpaceToDepth { .. } => B::SPACE_TO_DEPTH,
        Op::BatchToSpaceNd => B::BATCH_TO_SPACE_ND,
        Op::SpaceToBatchNd => B::SPACE_TO_BATCH_ND,
        Op::ResizeBilinear(_) => B::RESIZE_BILINEAR,
        Op::ResizeNearestNeighbor(_) => B::RESIZE_NEAREST_NEIGHBOR,
        Op::Relu => B::RELU,
        Op::Relu6 => B::RELU6,
        Op::ReluN1To1 => B::RELU_N1_TO_1,
        Op::LeakyRelu { .. } => B::LEAKY_RELU,
        Op::Prelu => B::PRELU,
        Op::Logistic => B::LOGISTIC,
        Op::Tanh => B::TANH,
        Op::HardSwish => B::HARD_SWISH,
        Op::Softmax { .. } => B::SOFTMAX,
        Op::Quantize => B::QUANTIZE,
        Op::Dequantize => B::DEQUANTIZE,
        Op::Densify => B::DENSIFY,
        Op::Gather { .. } => B::GATHER,
        Op::ArgMax { .. } => B::ARG_MAX,
        Op::L2Normalization { .. } => B::L2_NORMALIZATION,
        Op::Exp => B::EXP,
        Op::Sqrt => B::SQRT,
        Op::Rsqrt => B::RSQRT,
        Op::Shape { .. } => B::SHAPE,
        Op::ReduceProd { .. } => B::REDUCE_PROD,
        Op::Greater => B::GREATER,
        Op::GreaterEqual => B::GREATER_EQUAL,
        Op::Less => B::LESS,
        Op::LessEqual => B::LESS_EQUAL,
        Op::Equal => B::EQUAL,
        Op::NotEqual => B::NOT_EQUAL,
        Op::If { .. } => B::IF,
        Op::While { .. } => B::WHILE,
        Op::Opaque(_) => return None,
    })
}

/// npuc dtype of a TFLite tensor type; `None` for types npuc does not model (strings,
/// complex numbers, resources, variants, int2).
pub fn dtype_from_tflite(t: fb::TensorType) -> Option<DType> {
    use fb::TensorType as T;
    Some(match t {
        T::FLOAT32 => DType::F32,
        T::FLOAT16 => DType::F16,
        T::BFLOAT16 => DType::BF16,
        T::FLOAT64 => DType::F64,
        T::INT4 => DType::I4,
        T::INT8 => DType::I8,
        T::UINT8 => DType::U8,
        T::INT16 => DType::I16,
        T::UINT16 => DType::U16,
        T::INT32 => DType::I32,
        T::UINT32 => DType::U32,
        T::INT64 => DType::I64,
        T::UINT64 => DType::U64,
        T::BOOL => DType::Bool,
        _ => return None,
    })
}

/// TFLite tensor type of an npuc dtype.
pub fn dtype_to_tflite(d: DType) -> fb::TensorType {
    use fb::TensorType as T;
    match d {
        DType::F32 => T::FLOAT32,
        DType::F16 => T::FLOAT16,
        DType::BF16 => T::BFLOAT16,
        DType::F64 => T::FLOAT64,
        DType::I4 => T::INT4,
        DType::I8 => T::INT8,
        DType::U8 => T::UINT8,
        DType::I16 => T::INT16,
        DType::U16 => T::UINT16,
        DType::I32 => T::INT32,
        DType::U32 => T::UINT32,
        DType::I64 => T::INT64,
        DType::U64 => T::UINT64,
        DType::Bool => T::BOOL,
    }
}

fn padding(p: fb::Padding, place: &str) -> Result<Padding, TfliteError> {
    match p {
        fb::Padding::SAME => Ok(Padding::Same),
        fb::Padding::VALID => Ok(Padding::Valid),
        other => Err(TfliteError::invalid(place, format!("unknown padding {}", other.0))),
    }
}

fn padding_to(p: Padding) -> fb::Padding {
    match p {
        Padding::Same => fb::Padding::SAME,
        Padding::Valid => fb::Padding::VALID,
    }
}

fn activation(a: fb::ActivationFunctionType, place: &str) -> Result<Activation, TfliteError> {
    use fb::ActivationFunctionType as A;
    Ok(match a {
        A::NONE => Activation::None,
        A::RELU => Activation::Relu,
        A::RELU_N1_TO_1 => Activation::ReluN1To1,
        A::RELU6 => Activation::Relu6,
        A::TANH => Activation::Tanh,
        A::SIGN_BIT => Activation::SignBit,
        other => return Err(TfliteError::invalid(place, format!("unknown fused activation {}", other.0))),
    })
}

fn activation_to(a: Activation) -> fb::ActivationFunctionType {
    use fb::ActivationFunctionType as A;
    match a {
        Activation::None => A::NONE,
        Activation::Relu => A::RELU,
        Activation::ReluN1To1 => A::RELU_N1_TO_1,
        Activation::Relu6 => A::RELU6,
        Activation::Tanh => A::TANH,
        Activation::SignBit => A::SIGN_BIT,
    }
}

/// `quantized_bias_type`: FLOAT32 (0) is the schema default and means "not set".
fn bias_type(t: fb::TensorType, place: &str) -> Result<Option<DType>, TfliteError> {
    if t == fb::TensorType::FLOAT32 {
        return Ok(None);
    }
    dtype_from_tflite(t)
        .map(Some)
        .ok_or_else(|| TfliteError::invalid(place, format!("unknown quantized_bias_type {}", t.0)))
}

fn bias_type_to(t: Option<DType>) -> fb::TensorType {
    t.map(dtype_to_tflite).unwrap_or(fb::TensorType::FLOAT32)
}

fn positive(v: i32, what: &str, place: &str) -> Result<u32, TfliteError> {
    if v <= 0 {
        return Err(TfliteError::invalid(place, format!("{what} must be positive, found {v}")));
    }
    Ok(v as u32)
}

fn non_negative(v: i32, what: &str, place: &str) -> Result<u32, TfliteError> {
    u32::try_from(v).map_err(|_| TfliteError::invalid(place, format!("{what} must not be negative, found {v}")))
}

macro_rules! need {
    ($op:expr, $accessor:ident, $name:literal, $place:expr) => {
        $op.$accessor().ok_or_else(|| TfliteError::Missing { place: $place.to_string(), field: $name })?
    };
}

/// Decodes a modeled builtin into an [`Op`]; `Ok(None)` means "not modeled, keep opaque".
pub fn op_from_tflite(code: B, o: &fb::Operator<'_>, place: &str) -> Result<Option<Op>, TfliteError> {
    let op = match code {
        B::CONV_2D => {
            let x = need!(o, builtin_options_as_conv_2_doptions, "Conv2DOptions", place);
            Op::Conv2d(Conv2dAttrs {
                padding: padding(x.padding(), place)?,
                stride: [positive(x.stride_h(), "stride_h", place)?, positive(x.stride_w(), "stride_w", place)?],
                dilation: [
                    positive(x.dilation_h_factor(), "dilation_h_factor", place)?,
                    positive(x.dilation_w_factor(), "dilation_w_factor", place)?,
                ],
                activation: activation(x.fused_activation_function(), place)?,
                bias_type: bias_type(x.quantized_bias_type(), place)?,
            })
        }
        B::DEPTHWISE_CONV_2D => {
            let x = need!(o, builtin_options_as_depthwise_conv_2_doptions, "DepthwiseConv2DOptions", place);
            Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
                padding: padding(x.padding(), place)?,
                stride: [positive(x.stride_h(), "stride_h", place)?, positive(x.stride_w(), "stride_w", place)?],
                dilation: [
                    positive(x.dilation_h_factor(), "dilation_h_factor", place)?,
                    positive(x.dilation_w_factor(), "dilation_w_factor", place)?,
                ],
                // The converter writes 0 for "derive from shapes" in old files; keep it.
                depth_multiplier: non_negative(x.depth_multiplier(), "depth_multiplier", place)?,
                activation: activation(x.fused_activation_function(), place)?,
            })
        }
        B::TRANSPOSE_CONV => {
            let x = need!(o, builtin_options_as_transpose_conv_options, "TransposeConvOptions", place);
            Op::TransposeConv(TransposeConvAttrs {
                padding: padding(x.padding(), place)?,
                stride: [positive(x.stride_h(), "stride_h", place)?, positive(x.stride_w(), "stride_w", place)?],
                activation: activation(x.fused_activation_function(), place)?,
                bias_type: bias_type(x.quantized_bias_type(), place)?,
            })
        }
        B::FULLY_CONNECTED => {
            // Options are optional here: TFLite treats a missing table as all defaults.
            let x = o.builtin_options_as_fully_connected_options();
            if x.and_then(|x| x.quant_spec()).is_some_and(|q| !q.is_empty()) {
                return Err(TfliteError::Unsupported {
                    place: place.to_string(),
                    what: "FULLY_CONNECTED quant_spec".into(),
                });
            }
            let weights_format = x.map(|x| x.weights_format()).unwrap_or_default();
            let shuffled = match weights_format {
                fb::FullyConnectedOptionsWeightsFormat::DEFAULT => false,
                fb::FullyConnectedOptionsWeightsFormat::SHUFFLED4x16INT8 => true,
                other => return Err(TfliteError::invalid(place, format!("unknown weights_format {}", other.0))),
            };
            Op::FullyConnected(FullyConnectedAttrs {
                activation: match x {
                    Some(x) => activation(x.fused_activation_function(), place)?,
                    None => Activation::None,
                },
                keep_num_dims: x.map(|x| x.keep_num_dims()).unwrap_or(false),
                shuffled_weights: shuffled,
                asymmetric_quantize_inputs: x.map(|x| x.asymmetric_quantize_inputs()).unwrap_or(false),
                bias_type: match x {
                    Some(x) => bias_type(x.quantized_bias_type(), place)?,
                    None => None,
                },
            })
        }
        B::ADD => {
            let x = o.builtin_options_as_add_options();
            Op::Add {
                activation: x
                    .map(|x| activation(x.fused_activation_function(), place))
                    .transpose()?
                    .unwrap_or_default(),
                pot_scale_int16: x.map(|x| x.pot_scale_int16()).unwrap_or(true),
            }
        }
        B::SUB => {
            let x = o.builtin_options_as_sub_options();
            Op::Sub {
                activation: x
                    .map(|x| activation(x.fused_activation_function(), place))
                    .transpose()?
                    .unwrap_or_default(),
                pot_scale_int16: x.map(|x| x.pot_scale_int16()).unwrap_or(true),
            }
        }
        B::MUL => Op::Mul {
            activation: o
                .builtin_options_as_mul_options()
                .map(|x| activation(x.fused_activation_function(), place))
                .transpose()?
                .unwrap_or_default(),
        },
        B::DIV => Op::Div {
            activation: o
                .builtin_options_as_div_options()
                .map(|x| activation(x.fused_activation_function(), place))
                .transpose()?
                .unwrap_or_default(),
        },
        B::MAXIMUM => Op::Maximum,
        B::MINIMUM => Op::Minimum,
        B::SQUARED_DIFFERENCE => Op::SquaredDifference,
        B::AVERAGE_POOL_2D | B::MAX_POOL_2D => {
            let x = need!(o, builtin_options_as_pool_2_doptions, "Pool2DOptions", place);
            let attrs = Pool2dAttrs {
                padding: padding(x.padding(), place)?,
                stride: [positive(x.stride_h(), "stride_h", place)?, positive(x.stride_w(), "stride_w", place)?],
                filter: [
                    positive(x.filter_height(), "filter_height", place)?,
                    positive(x.filter_width(), "filter_width", place)?,
                ],
                activation: activation(x.fused_activation_function(), place)?,
            };
            if code == B::AVERAGE_POOL_2D {
                Op::AveragePool2d(attrs)
            } else {
                Op::MaxPool2d(attrs)
            }
        }
        B::MEAN => Op::Mean { keep_dims: o.builtin_options_as_reducer_options().is_some_and(|x| x.keep_dims()) },
        B::SUM => Op::Sum { keep_dims: o.builtin_options_as_reducer_options().is_some_and(|x| x.keep_dims()) },
        B::REDUCE_PROD => {
            Op::ReduceProd { keep_dims: o.builtin_options_as_reducer_options().is_some_and(|x| x.keep_dims()) }
        }
        B::GREATER => Op::Greater,
        B::GREATER_EQUAL => Op::GreaterEqual,
        B::LESS => Op::Less,
        B::LESS_EQUAL => Op::LessEqual,
        B::EQUAL => Op::Equal,
        B::NOT_EQUAL => Op::NotEqual,
        // Indices are checked against the module's graphs by the module verifier.
        B::IF => {
            let x = need!(o, builtin_options_as_if_options, "IfOptions", place);
            Op::If {
                then_graph: non_negative(x.then_subgraph_index(), "then_subgraph_index", place)?,
                else_graph: non_negative(x.else_subgraph_index(), "else_subgraph_index", place)?,
            }
        }
        B::WHILE => {
            let x = need!(o, builtin_options_as_while_options, "WhileOptions", place);
            Op::While {
                cond_graph: non_negative(x.cond_subgraph_index(), "cond_subgraph_index", place)?,
                body_graph: non_negative(x.body_subgraph_index(), "body_subgraph_index", place)?,
            }
        }
        B::RESHAPE => Op::Reshape {
            new_shape: o.builtin_options_as_reshape_options().and_then(|x| x.new_shape()).map(|v| v.iter().collect()),
        },
        B::SQUEEZE => Op::Squeeze {
            axes: o
                .builtin_options_as_squeeze_options()
                .and_then(|x| x.squeeze_dims())
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
        },
        B::EXPAND_DIMS => Op::ExpandDims,
        B::CONCATENATION => {
            let x = need!(o, builtin_options_as_concatenation_options, "ConcatenationOptions", place);
            Op::Concatenation { axis: x.axis(), activation: activation(x.fused_activation_function(), place)? }
        }
        B::SPLIT => {
            let x = need!(o, builtin_options_as_split_options, "SplitOptions", place);
            Op::Split { num_splits: positive(x.num_splits(), "num_splits", place)? }
        }
        B::SPLIT_V => {
            let x = need!(o, builtin_options_as_split_voptions, "SplitVOptions", place);
            Op::SplitV { num_splits: positive(x.num_splits(), "num_splits", place)? }
        }
        B::PACK => {
            let x = need!(o, builtin_options_as_pack_options, "PackOptions", place);
            Op::Pack { values_count: positive(x.values_count(), "values_count", place)?, axis: x.axis() }
        }
        B::UNPACK => {
            let x = need!(o, builtin_options_as_unpack_options, "UnpackOptions", place);
            Op::Unpack { num: positive(x.num(), "num", place)?, axis: x.axis() }
        }
        B::PAD => Op::Pad,
        B::PADV2 => Op::PadV2,
        B::STRIDED_SLICE => {
            let x = o.builtin_options_as_strided_slice_options();
            Op::StridedSlice(match x {
                Some(x) => StridedSliceAttrs {
                    begin_mask: x.begin_mask(),
                    end_mask: x.end_mask(),
                    ellipsis_mask: x.ellipsis_mask(),
                    new_axis_mask: x.new_axis_mask(),
                    shrink_axis_mask: x.shrink_axis_mask(),
                    offset: x.offset(),
                },
                None => StridedSliceAttrs::default(),
            })
        }
        B::SLICE => Op::Slice,
        B::TRANSPOSE => Op::Transpose,
        B::DEPTH_TO_SPACE => {
            let x = need!(o, builtin_options_as_depth_to_space_options, "DepthToSpaceOptions", place);
            Op::DepthToSpace { block_size: positive(x.block_size(), "block_size", place)? }
        }
        B::SPACE_TO_DEPTH => {
            let x = need!(o, builtin_options_as_space_to_depth_options, "SpaceToDepthOptions", place);
            Op::SpaceToDepth { block_size: positive(x.block_size(), "block_size", place)? }
        }
        B::BATCH_TO_SPACE_ND => Op::BatchToSpaceNd,
        B::SPACE_TO_BATCH_ND => Op::SpaceToBatchNd,
        B::RESIZE_BILINEAR => {
            let x = o.builtin_options_as_resize_bilinear_options();
            Op::ResizeBilinear(ResizeAttrs {
                align_corners: x.is_some_and(|x| x.align_corners()),
                half_pixel_centers: x.is_some_and(|x| x.half_pixel_centers()),
            })
        }
        B::RESIZE_NEAREST_NEIGHBOR => {
            let x = o.builtin_options_as_resize_nearest_neighbor_options();
            Op::ResizeNearestNeighbor(ResizeAttrs {
                align_corners: x.is_some_and(|x| x.align_corners()),
                half_pixel_centers: x.is_some_and(|x| x.half_pixel_centers()),
            })
        }
        B::RELU => Op::Relu,
        B::RELU6 => Op::Relu6,
        B::RELU_N1_TO_1 => Op::ReluN1To1,
        B::LEAKY_RELU => {
            let x = need!(o, builtin_options_as_leaky_relu_options, "LeakyReluOptions", place);
            Op::LeakyRelu { alpha: x.alpha() }
        }
        B::PRELU => Op::Prelu,
        B::LOGISTIC => Op::Logistic,
        B::TANH => Op::Tanh,
        B::HARD_SWISH => Op::HardSwish,
        B::SOFTMAX => {
            let x = need!(o, builtin_options_as_softmax_options, "SoftmaxOptions", place);
            Op::Softmax { beta: x.beta() }
        }
        B::QUANTIZE => Op::Quantize,
        B::DEQUANTIZE => Op::Dequantize,
        B::DENSIFY => Op::Densify,
        B::GATHER => {
            let x = o.builtin_options_as_gather_options();
            Op::Gather { axis: x.map(|x| x.axis()).unwrap_or(0), batch_dims: x.map(|x| x.batch_dims()).unwrap_or(0) }
        }
        B::ARG_MAX => {
            let t = o.builtin_options_as_arg_max_options().map(|x| x.output_type()).unwrap_or(fb::TensorType::INT64);
            let output_type = match t {
                fb::TensorType::INT32 => DType::I32,
                fb::TensorType::INT64 => DType::I64,
                other => {
                    return Err(TfliteError::invalid(
                        place,
                        format!("ARG_MAX output_type {} is not i32 or i64", other.0),
                    ))
                }
            };
            Op::ArgMax { output_type }
        }
        B::L2_NORMALIZATION => Op::L2Normalization {
            activation: o
                .builtin_options_as_l2_norm_options()
                .map(|x| activation(x.fused_activation_function(), place))
                .transpose()?
                .unwrap_or_default(),
        },
        B::EXP => Op::Exp,
        B::SQRT => Op::Sqrt,
        B::RSQRT => Op::Rsqrt,
        B::SHAPE => {
            let t = o.builtin_options_as_shape_options().map(|x| x.out_type()).unwrap_or(fb::TensorType::INT32);
            let output_type = match t {
                fb::TensorType::INT32 => DType::I32,
                fb::TensorType::INT64 => DType::I64,
                other => {
                    return Err(TfliteError::invalid(place, format!("SHAPE out_type {} is not i32 or i64", other.0)))
                }
            };
            Op::Shape { output_type }
        }
        _ => return Ok(None),
    };
    Ok(Some(op))
}

/// The builtin options a modeled op is written with (what the official converter writes).
pub fn options_to_tflite(op: &Op) -> fb::BuiltinOptionsT {
    use fb::BuiltinOptionsT as O;
    match op {
        Op::Conv2d(a) => O::Conv2DOptions(Box::new(fb::Conv2DOptionsT {
            padding: padding_to(a.padding),
            stride_w: a.stride[1] as i32,
            stride_h: a.stride[0] as i32,
            fused_activation_function: activation_to(a.activation),
            dilation_w_factor: a.dilation[1] as i32,
            dilation_h_factor: a.dilation[0] as i32,
            quantized_bias_type: bias_type_to(a.bias_type),
        })),
        Op::DepthwiseConv2d(a) => O::DepthwiseConv2DOptions(Box::new(fb::DepthwiseConv2DOptionsT {
            padding: padding_to(a.padding),
            stride_w: a.stride[1] as i32,
            stride_h: a.stride[0] as i32,
            depth_multiplier: a.depth_multiplier as i32,
            fused_activation_function: activation_to(a.activation),
            dilation_w_factor: a.dilation[1] as i32,
            dilation_h_factor: a.dilation[0] as i32,
        })),
        Op::TransposeConv(a) => O::TransposeConvOptions(Box::new(fb::TransposeConvOptionsT {
            padding: padding_to(a.padding),
            stride_w: a.stride[1] as i32,
            stride_h: a.stride[0] as i32,
            fused_activation_function: activation_to(a.activation),
            quantized_bias_type: bias_type_to(a.bias_type),
        })),
        Op::FullyConnected(a) => O::FullyConnectedOptions(Box::new(fb::FullyConnectedOptionsT {
            fused_activation_function: activation_to(a.activation),
            weights_format: if a.shuffled_weights {
                fb::FullyConnectedOptionsWeightsFormat::SHUFFLED4x16INT8
            } else {
                fb::FullyConnectedOptionsWeightsFormat::DEFAULT
            },
            keep_num_dims: a.keep_num_dims,
            asymmetric_quantize_inputs: a.asymmetric_quantize_inputs,
            quantized_bias_type: bias_type_to(a.bias_type),
            ..Default::default()
        })),
        Op::Add { activation, pot_scale_int16 } => O::AddOptions(Box::new(fb::AddOptionsT {
            fused_activation_function: activation_to(*activation),
            pot_scale_int16: *pot_scale_int16,
        })),
        Op::Sub { activation, pot_scale_int16 } => O::SubOptions(Box::new(fb::SubOptionsT {
            fused_activation_function: activation_to(*activation),
            pot_scale_int16: *pot_scale_int16,
        })),
        Op::Mul { activation } => {
            O::MulOptions(Box::new(fb::MulOptionsT { fused_activation_function: activation_to(*activation) }))
        }
        Op::Div { activation } => {
            O::DivOptions(Box::new(fb::DivOptionsT { fused_activation_function: activation_to(*activation) }))
        }
        Op::Maximum | Op::Minimum => O::MaximumMinimumOptions(Box::default()),
        Op::SquaredDifference => O::SquaredDifferenceOptions(Box::default()),
        Op::AveragePool2d(a) | Op::MaxPool2d(a) => O::Pool2DOptions(Box::new(fb::Pool2DOptionsT {
            padding: padding_to(a.padding),
            stride_w: a.stride[1] as i32,
            stride_h: a.stride[0] as i32,
            filter_width: a.filter[1] as i32,
            filter_height: a.filter[0] as i32,
            fused_activation_function: activation_to(a.activation),
        })),
        Op::Mean { keep_dims } | Op::Sum { keep_dims } | Op::ReduceProd { keep_dims } => {
            O::ReducerOptions(Box::new(fb::ReducerOptionsT { keep_dims: *keep_dims }))
        }
        Op::Reshape { new_shape } => match new_shape {
            Some(s) => O::ReshapeOptions(Box::new(fb::ReshapeOptionsT { new_shape: Some(s.clone()) })),
            None => O::NONE,
        },
        Op::Squeeze { axes } => O::SqueezeOptions(Box::new(fb::SqueezeOptionsT { squeeze_dims: Some(axes.clone()) })),
        Op::ExpandDims => O::ExpandDimsOptions(Box::default()),
        Op::Concatenation { axis, activation } => O::ConcatenationOptions(Box::new(fb::ConcatenationOptionsT {
            axis: *axis,
            fused_activation_function: activation_to(*activation),
        })),
        Op::Split { num_splits } => O::SplitOptions(Box::new(fb::SplitOptionsT { num_splits: *num_splits as i32 })),
        Op::SplitV { num_splits } => O::SplitVOptions(Box::new(fb::SplitVOptionsT { num_splits: *num_splits as i32 })),
        Op::Pack { values_count, axis } => {
            O::PackOptions(Box::new(fb::PackOptionsT { values_count: *values_count as i32, axis: *axis }))
        }
        Op::Unpack { num, axis } => O::UnpackOptions(Box::new(fb::UnpackOptionsT { num: *num as i32, axis: *axis })),
        Op::Pad => O::PadOptions(Box::default()),
        Op::PadV2 => O::PadV2Options(Box::default()),
        Op::StridedSlice(a) => O::StridedSliceOptions(Box::new(fb::StridedSliceOptionsT {
            begin_mask: a.begin_mask,
            end_mask: a.end_mask,
            ellipsis_mask: a.ellipsis_mask,
            new_axis_mask: a.new_axis_mask,
            shrink_axis_mask: a.shrink_axis_mask,
            offset: a.offset,
        })),
        Op::Slice => O::SliceOptions(Box::default()),
        Op::Transpose => O::TransposeOptions(Box::default()),
        Op::DepthToSpace { block_size } => {
            O::DepthToSpaceOptions(Box::new(fb::DepthToSpaceOptionsT { block_size: *block_size as i32 }))
        }
        Op::SpaceToDepth { block_size } => {
            O::SpaceToDepthOptions(Box::new(fb::SpaceToDepthOptionsT { block_size: *block_size as i32 }))
        }
        Op::BatchToSpaceNd => O::BatchToSpaceNDOptions(Box::default()),
        Op::SpaceToBatchNd => O::SpaceToBatchNDOptions(Box::default()),
        Op::ResizeBilinear(a) => O::ResizeBilinearOptions(Box::new(fb::ResizeBilinearOptionsT {
            align_corners: a.align_corners,
            half_pixel_centers: a.half_pixel_centers,
            ..Default::default()
        })),
        Op::ResizeNearestNeighbor(a) => O::ResizeNearestNeighborOptions(Box::new(fb::ResizeNearestNeighborOptionsT {
            align_corners: a.align_corners,
            half_pixel_centers: a.half_pixel_centers,
        })),
        Op::LeakyRelu { alpha } => O::LeakyReluOptions(Box::new(fb::LeakyReluOptionsT { alpha: *alpha })),
        Op::HardSwish => O::HardSwishOptions(Box::default()),
        Op::Softmax { beta } => O::SoftmaxOptions(Box::new(fb::SoftmaxOptionsT { beta: *beta })),
        Op::Quantize => O::QuantizeOptions(Box::default()),
        Op::Dequantize => O::DequantizeOptions(Box::default()),
        Op::Densify => O::DensifyOptions(Box::default()),
        Op::Gather { axis, batch_dims } => {
            O::GatherOptions(Box::new(fb::GatherOptionsT { axis: *axis, batch_dims: *batch_dims }))
        }
        Op::ArgMax { output_type } => {
            O::ArgMaxOptions(Box::new(fb::ArgMaxOptionsT { output_type: dtype_to_tflite(*output_type) }))
        }
        Op::L2Normalization { activation } => {
            O::L2NormOptions(Box::new(fb::L2NormOptionsT { fused_activation_function: activation_to(*activation) }))
        }
        Op::Exp => O::ExpOptions(Box::default()),
        Op::Shape { output_type } => {
            O::ShapeOptions(Box::new(fb::ShapeOptionsT { out_type: dtype_to_tflite(*output_type) }))
        }
        Op::Greater => O::GreaterOptions(Box::default()),
        Op::GreaterEqual => O::GreaterEqualOptions(Box::default()),
        Op::Less => O::LessOptions(Box::default()),
        Op::LessEqual => O::LessEqualOptions(Box::default()),
        Op::Equal => O::EqualOptions(Box::default()),
        Op::NotEqual => O::NotEqualOptions(Box::default()),
        Op::If { then_graph, else_graph } => O::IfOptions(Box::new(fb::IfOptionsT {
            then_subgraph_index: *then_graph as i32,
            else_subgraph_index: *else_graph as i32,
        })),
        Op::While { cond_graph, body_graph } => O::WhileOptions(Box::new(fb::WhileOptionsT {
            cond_subgraph_index: *cond_graph as i32,
            body_subgraph_index: *body_graph as i32,
        })),
        Op::Relu
        | Op::Relu6
        | Op::ReluN1To1
        | Op::Prelu
        | Op::Logistic
        | Op::Tanh
        | Op::Sqrt
        | Op::Rsqrt
        | Op::Opaque(_) => O::NONE,
    }
}
