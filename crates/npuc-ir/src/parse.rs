//! The `.nir` text parser.
//!
//! A hand-written recursive-descent parser working directly on characters (no separate
//! lexer): the format has context-dependent tokens such as `1x96x96x3xi8` or `0.5:-1` that
//! a context-free tokenizer would split wrongly. Each graph is parsed in two phases:
//! definitions first (so values can be referenced before they are defined, as in a graph
//! with a cycle or an input that an op produces), then references are resolved and ops
//! added in text order.
//!
//! No input text makes the parser panic: every failure is an [`IrError::Parse`] with a
//! 1-based line and column and a message saying what was expected and what was found.
//! Nesting is bounded by the grammar (lists hold scalars only), so there is no unbounded
//! recursion either.

use std::collections::HashMap;

use bytes::Bytes;

use crate::constant::Constant;
use crate::error::IrError;
use crate::graph::{Graph, Metadata, Module, Operation, Signature, Value, ValueId};
use crate::op::{
    Activation, Conv2dAttrs, DepthwiseConv2dAttrs, FullyConnectedAttrs, Op, OpaqueOp, Padding, Pool2dAttrs,
    ResizeAttrs, StridedSliceAttrs, TransposeConvAttrs,
};
use crate::types::{DType, DimFormat, DimMetadata, IndexVector, Quantization, Sparsity, TensorType};

type PResult<T> = Result<T, IrError>;

/// Parses a module from `.nir` text (a `module { … }` or bare top-level items).
pub fn parse_module(text: &str) -> Result<Module, IrError> {
    let mut p = Parser::new(text);
    p.module()
}

/// Parses text holding exactly one graph (as [`crate::print::print_graph`] prints it)
/// and no signatures.
pub fn parse_graph(text: &str) -> Result<Graph, IrError> {
    let mut m = parse_module(text)?;
    if m.graphs.len() != 1 || !m.signatures.is_empty() {
        return Err(IrError::Parse {
            line: 1,
            col: 1,
            message: format!(
                "expected exactly one graph and no signatures, found {} graphs and {} signatures",
                m.graphs.len(),
                m.signatures.len()
            ),
        });
    }
    Ok(m.graphs.remove(0))
}

/// Every op mnemonic the parser knows (kept in step with [`Op::mnemonic`] by a test).
pub const MNEMONICS: &[&str] = &[
    "conv_2d",
    "depthwise_conv_2d",
    "transpose_conv",
    "fully_connected",
    "add",
    "sub",
    "mul",
    "div",
    "maximum",
    "minimum",
    "squared_difference",
    "average_pool_2d",
    "max_pool_2d",
    "mean",
    "sum",
    "reshape",
    "squeeze",
    "expand_dims",
    "concatenation",
    "split",
    "split_v",
    "pack",
    "unpack",
    "pad",
    "padv2",
    "strided_slice",
    "slice",
    "transpose",
    "depth_to_space",
    "space_to_depth",
    "batch_to_space_nd",
    "space_to_batch_nd",
    "resize_bilinear",
    "resize_nearest_neighbor",
    "relu",
    "relu6",
    "relu_n1_to_1",
    "leaky_relu",
    "prelu",
    "logistic",
    "tanh",
    "hard_swish",
    "softmax",
    "quantize",
    "dequantize",
    "densify",
    "gather",
    "arg_max",
    "l2_normalization",
    "exp",
    "sqrt",
    "rsqrt",
    "shape",
    "reduce_prod",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "equal",
    "not_equal",
    "if",
    "while",
    "opaque",
];

/// 1-based line and column (in characters) of byte offset `pos` of `src`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let b = src.as_bytes();
    let pos = pos.min(b.len());
    let line_start = b[..pos].iter().rposition(|&c| c == b'\n').map_or(0, |p| p + 1);
    let line = 1 + b[..pos].iter().filter(|&&c| c == b'\n').count();
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let col = 1 + b[line_start..pos].iter().filter(|&&c| c & 0xc0 != 0x80).count();
    (line, col)
}

/// Builds a parse error at byte offset `pos` of `src`.
fn error_at(src: &str, pos: usize, message: impl Into<String>) -> IrError {
    let (line, col) = line_col(src, pos);
    IrError::Parse { line, col, message: message.into() }
}

/// A `%name` use and where it appeared.
#[derive(Clone, Debug)]
struct Ref {
    name: String,
    pos: usize,
}

/// Constant data as written, before the element type is known.
#[derive(Clone, Debug)]
enum DenseLit {
    /// `"0a0b…"`: raw bytes.
    Hex(Vec<u8>),
    /// `[1, 2, 3]`: the byte offset of the `[`. Elements are decoded from the text once the
    /// element type is known, without holding a string per element (full-constant dumps
    /// of real models have millions).
    List(usize),
    /// `hash H, N bytes[, preview]`.
    Elided { hash: String, len: usize, preview: String },
}

/// A generic attribute value, typed later by whoever asks for the key.
#[derive(Clone, Debug)]
enum AttrValue {
    Unit,
    Num(String),
    Word(String),
    Str(Vec<u8>),
    Hex(Vec<u8>),
    List(Vec<(AttrValue, usize)>),
    Ref(Ref),
    Dense(DenseLit, usize),
    Sparse(Sparsity),
}

impl AttrValue {
    /// Short description for "found …" in messages.
    fn describe(&self) -> String {
        match self {
            AttrValue::Unit => "no value".into(),
            AttrValue::Num(s) | AttrValue::Word(s) => format!("'{s}'"),
            AttrValue::Str(_) => "a string".into(),
            AttrValue::Hex(_) => "a hex literal".into(),
            AttrValue::List(_) => "a list".into(),
            AttrValue::Ref(r) => format!("'{}'", r.name),
            AttrValue::Dense(..) => "a dense literal".into(),
            AttrValue::Sparse(_) => "a sparse literal".into(),
        }
    }
}

/// One `key = value` of an attribute dictionary.
struct AttrEntry {
    key: String,
    val: AttrValue,
    val_pos: usize,
}

/// An attribute dictionary being consumed by a typed reader; whatever is left over at
/// [`Attrs::finish`] is an unknown attribute.
struct Attrs<'a> {
    src: &'a str,
    entries: Vec<Option<AttrEntry>>,
    /// What the dictionary belongs to, for messages (`conv_2d`, `value`).
    owner: String,
    /// Where the owner starts, for "missing attribute" errors.
    pos: usize,
}

fn parse_int<T: TryFrom<i128>>(text: &str) -> Option<T> {
    text.parse::<i128>().ok().and_then(|x| T::try_from(x).ok())
}

pub(crate) fn parse_f32(text: &str) -> Option<f32> {
    if let Some(h) = text.strip_prefix("0x") {
        if (1..=8).contains(&h.len()) {
            return u32::from_str_radix(h, 16).ok().map(f32::from_bits);
        }
        return None;
    }
    match text {
        "nan" => Some(f32::NAN),
        "inf" => Some(f32::INFINITY),
        "-inf" => Some(f32::NEG_INFINITY),
        _ if text.bytes().any(|b| b.is_ascii_digit()) => text.parse::<f32>().ok(),
        _ => None,
    }
}

fn parse_f64(text: &str) -> Option<f64> {
    if let Some(h) = text.strip_prefix("0x") {
        if (1..=16).contains(&h.len()) {
            return u64::from_str_radix(h, 16).ok().map(f64::from_bits);
        }
        return None;
    }
    match text {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ if text.bytes().any(|b| b.is_ascii_digit()) => text.parse::<f64>().ok(),
        _ => None,
    }
}

fn short_type_name<T>() -> &'static str {
    let n = std::any::type_name::<T>();
    n.rsplit("::").next().unwrap_or(n)
}

impl<'a> Attrs<'a> {
    fn new(src: &'a str, entries: Vec<AttrEntry>, owner: impl Into<String>, pos: usize) -> Self {
        Attrs { src, entries: entries.into_iter().map(Some).collect(), owner: owner.into(), pos }
    }

    fn take(&mut self, key: &str) -> Option<(AttrValue, usize)> {
        self.entries
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|e| e.key == key))
            .and_then(Option::take)
            .map(|e| (e.val, e.val_pos))
    }

    fn bad(&self, key: &str, pos: usize, expected: &str, found: &AttrValue) -> IrError {
        error_at(
            self.src,
            pos,
            format!("attribute '{key}' of {}: expected {expected}, found {}", self.owner, found.describe()),
        )
    }

    fn missing(&self, key: &str) -> IrError {
        error_at(self.src, self.pos, format!("{} requires attribute '{key}'", self.owner))
    }

    /// Errors on any attribute nobody asked for.
    fn finish(self, known: &str) -> PResult<()> {
        if let Some(e) = self.entries.into_iter().flatten().next() {
            let hint = if known.is_empty() { "it has none".to_string() } else { format!("expected {known}") };
            return Err(error_at(
                self.src,
                e.val_pos,
                format!("unknown attribute '{}' for {} ({hint})", e.key, self.owner),
            ));
        }
        Ok(())
    }

    fn int_opt<T: TryFrom<i128>>(&mut self, key: &str) -> PResult<Option<T>> {
        match self.take(key) {
            None => Ok(None),
            Some((AttrValue::Num(s), pos)) => parse_int::<T>(&s).map(Some).ok_or_else(|| {
                error_at(
                    self.src,
                    pos,
                    format!("attribute '{key}' of {}: '{s}' is not a valid {}", self.owner, short_type_name::<T>()),
                )
            }),
            Some((v, pos)) => Err(self.bad(key, pos, "an integer", &v)),
        }
    }

    fn int_req<T: TryFrom<i128>>(&mut self, key: &str) -> PResult<T> {
        self.int_opt(key)?.ok_or_else(|| self.missing(key))
    }

    fn int_list_opt<T: TryFrom<i128>>(&mut self, key: &str) -> PResult<Option<Vec<T>>> {
        match self.take(key) {
            None => Ok(None),
            Some((AttrValue::List(items), _)) => {
                let mut out = Vec::with_capacity(items.len());
                for (v, pos) in items {
                    match v {
                        AttrValue::Num(s) => out.push(parse_int::<T>(&s).ok_or_else(|| {
                            error_at(
                                self.src,
                                pos,
                                format!(
                                    "attribute '{key}' of {}: '{s}' is not a valid {}",
                                    self.owner,
                                    short_type_name::<T>()
                                ),
                            )
                        })?),
                        other => return Err(self.bad(key, pos, "integers in the list", &other)),
                    }
                }
                Ok(Some(out))
            }
            Some((v, pos)) => Err(self.bad(key, pos, "a list of integers", &v)),
        }
    }

    fn pair_req(&mut self, key: &str) -> PResult<[u32; 2]> {
        let pos = self.entries.iter().flatten().find(|e| e.key == key).map(|e| e.val_pos);
        match self.int_list_opt::<u32>(key)? {
            None => Err(self.missing(key)),
            Some(v) if v.len() == 2 => Ok([v[0], v[1]]),
            Some(v) => Err(error_at(
                self.src,
                pos.unwrap_or(self.pos),
                format!(
                    "attribute '{key}' of {}: expected [h, w] (2 integers), found {} integers",
                    self.owner,
                    v.len()
                ),
            )),
        }
    }

    fn bool_opt(&mut self, key: &str) -> PResult<bool> {
        match self.take(key) {
            None => Ok(false),
            Some((AttrValue::Unit, _)) => Ok(true),
            Some((AttrValue::Word(w), _)) if w == "true" => Ok(true),
            Some((AttrValue::Word(w), _)) if w == "false" => Ok(false),
            Some((v, pos)) => Err(self.bad(key, pos, "'true' or 'false'", &v)),
        }
    }

    fn word_opt(&mut self, key: &str, choices: &[&str]) -> PResult<Option<String>> {
        match self.take(key) {
            None => Ok(None),
            Some((AttrValue::Word(w), _)) if choices.contains(&w.as_str()) => Ok(Some(w)),
            Some((v, pos)) => Err(self.bad(key, pos, &format!("one of {}", choices.join(", ")), &v)),
        }
    }

    fn activation(&mut self) -> PResult<Activation> {
        let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
        Ok(match self.word_opt("activation", &names)? {
            None => Activation::None,
            Some(w) => Activation::ALL.into_iter().find(|a| a.name() == w).unwrap_or_default(),
        })
    }

    fn padding(&mut self) -> PResult<Padding> {
        match self.word_opt("padding", &["same", "valid"])?.as_deref() {
            None => Err(self.missing("padding")),
            Some("same") => Ok(Padding::Same),
            Some(_) => Ok(Padding::Valid),
        }
    }

    fn dtype_opt(&mut self, key: &str) -> PResult<Option<DType>> {
        let names: Vec<&str> = DType::ALL.iter().map(|d| d.name()).collect();
        Ok(self.word_opt(key, &names)?.and_then(|w| DType::from_name(&w)))
    }

    fn f32_req(&mut self, key: &str) -> PResult<f32> {
        match self.take(key) {
            None => Err(self.missing(key)),
            Some((AttrValue::Num(s) | AttrValue::Word(s), pos)) => parse_f32(&s).ok_or_else(|| {
                error_at(self.src, pos, format!("attribute '{key}' of {}: '{s}' is not a valid f32", self.owner))
            }),
            Some((v, pos)) => Err(self.bad(key, pos, "a float", &v)),
        }
    }

    fn hex_opt(&mut self, key: &str) -> PResult<Bytes> {
        match self.take(key) {
            None => Ok(Bytes::new()),
            Some((AttrValue::Hex(b), _)) => Ok(Bytes::from(b)),
            Some((v, pos)) => Err(self.bad(key, pos, "a hex literal (hex\"…\")", &v)),
        }
    }

    fn refs_opt(&mut self, key: &str) -> PResult<Vec<Ref>> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some((AttrValue::List(items), _)) => {
                let mut out = Vec::with_capacity(items.len());
                for (v, pos) in items {
                    match v {
                        AttrValue::Ref(r) => out.push(r),
                        other => return Err(self.bad(key, pos, "value names in the list", &other)),
                    }
                }
                Ok(out)
            }
            Some((v, pos)) => Err(self.bad(key, pos, "a list of values", &v)),
        }
    }
}

/// Attribute names each op accepts, for "unknown attribute" hints.
fn known_attrs(mnemonic: &str) -> &'static str {
    match mnemonic {
        "conv_2d" => "padding, stride, dilation, activation, bias_type",
        "depthwise_conv_2d" => "padding, stride, dilation, depth_multiplier, activation",
        "transpose_conv" => "padding, stride, activation, bias_type",
        "fully_connected" => "activation, keep_num_dims, shuffled_weights, asymmetric_quantize_inputs, bias_type",
        "add" | "sub" => "activation, pot_scale_int16",
        "mul" | "div" | "l2_normalization" => "activation",
        "average_pool_2d" | "max_pool_2d" => "padding, stride, filter, activation",
        "mean" | "sum" | "reduce_prod" => "keep_dims",
        "if" => "then_graph, else_graph",
        "while" => "cond_graph, body_graph",
        "reshape" => "new_shape",
        "squeeze" => "axes",
        "concatenation" => "axis, activation",
        "split" | "split_v" => "num_splits",
        "pack" => "values_count, axis",
        "unpack" => "num, axis",
        "strided_slice" => "begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_axis_mask, offset",
        "depth_to_space" | "space_to_depth" => "block_size",
        "resize_bilinear" | "resize_nearest_neighbor" => "align_corners, half_pixel_centers",
        "leaky_relu" => "alpha",
        "softmax" => "beta",
        "gather" => "axis, batch_dims",
        "arg_max" => "output_type",
        "opaque" => "builtin_code, options, custom_options",
        _ => "",
    }
}

/// Builds the typed [`Op`] for a mnemonic from its attribute dictionary.
fn build_op(mnemonic: &str, opaque_name: Option<String>, a: &mut Attrs<'_>) -> PResult<Op> {
    Ok(match mnemonic {
        "conv_2d" => Op::Conv2d(Conv2dAttrs {
            padding: a.padding()?,
            stride: a.pair_req("stride")?,
            dilation: a.pair_req("dilation")?,
            activation: a.activation()?,
            bias_type: a.dtype_opt("bias_type")?,
        }),
        "depthwise_conv_2d" => Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
            padding: a.padding()?,
            stride: a.pair_req("stride")?,
            dilation: a.pair_req("dilation")?,
            depth_multiplier: a.int_req("depth_multiplier")?,
            activation: a.activation()?,
        }),
        "transpose_conv" => Op::TransposeConv(TransposeConvAttrs {
            padding: a.padding()?,
            stride: a.pair_req("stride")?,
            activation: a.activation()?,
            bias_type: a.dtype_opt("bias_type")?,
        }),
        "fully_connected" => Op::FullyConnected(FullyConnectedAttrs {
            activation: a.activation()?,
            keep_num_dims: a.bool_opt("keep_num_dims")?,
            shuffled_weights: a.bool_opt("shuffled_weights")?,
            asymmetric_quantize_inputs: a.bool_opt("asymmetric_quantize_inputs")?,
            bias_type: a.dtype_opt("bias_type")?,
        }),
        "add" => Op::Add { activation: a.activation()?, pot_scale_int16: a.bool_opt("pot_scale_int16")? },
        "sub" => Op::Sub { activation: a.activation()?, pot_scale_int16: a.bool_opt("pot_scale_int16")? },
        "mul" => Op::Mul { activation: a.activation()? },
        "div" => Op::Div { activation: a.activation()? },
        "maximum" => Op::Maximum,
        "minimum" => Op::Minimum,
        "squared_difference" => Op::SquaredDifference,
        "average_pool_2d" | "max_pool_2d" => {
            let p = Pool2dAttrs {
                padding: a.padding()?,
                stride: a.pair_req("stride")?,
                filter: a.pair_req("filter")?,
                activation: a.activation()?,
            };
            if mnemonic == "max_pool_2d" {
                Op::MaxPool2d(p)
            } else {
                Op::AveragePool2d(p)
            }
        }
        "mean" => Op::Mean { keep_dims: a.bool_opt("keep_dims")? },
        "sum" => Op::Sum { keep_dims: a.bool_opt("keep_dims")? },
        "reshape" => Op::Reshape { new_shape: a.int_list_opt("new_shape")? },
        "squeeze" => Op::Squeeze { axes: a.int_list_opt("axes")?.unwrap_or_default() },
        "expand_dims" => Op::ExpandDims,
        "concatenation" => Op::Concatenation { axis: a.int_req("axis")?, activation: a.activation()? },
        "split" => Op::Split { num_splits: a.int_req("num_splits")? },
        "split_v" => Op::SplitV { num_splits: a.int_req("num_splits")? },
        "pack" => Op::Pack { values_count: a.int_req("values_count")?, axis: a.int_req("axis")? },
        "unpack" => Op::Unpack { num: a.int_req("num")?, axis: a.int_req("axis")? },
        "pad" => Op::Pad,
        "padv2" => Op::PadV2,
        "strided_slice" => Op::StridedSlice(StridedSliceAttrs {
            begin_mask: a.int_opt("begin_mask")?.unwrap_or(0),
            end_mask: a.int_opt("end_mask")?.unwrap_or(0),
            ellipsis_mask: a.int_opt("ellipsis_mask")?.unwrap_or(0),
            new_axis_mask: a.int_opt("new_axis_mask")?.unwrap_or(0),
            shrink_axis_mask: a.int_opt("shrink_axis_mask")?.unwrap_or(0),
            offset: a.bool_opt("offset")?,
        }),
        "slice" => Op::Slice,
        "transpose" => Op::Transpose,
        "depth_to_space" => Op::DepthToSpace { block_size: a.int_req("block_size")? },
        "space_to_depth" => Op::SpaceToDepth { block_size: a.int_req("block_size")? },
        "batch_to_space_nd" => Op::BatchToSpaceNd,
        "space_to_batch_nd" => Op::SpaceToBatchNd,
        "resize_bilinear" | "resize_nearest_neighbor" => {
            let r = ResizeAttrs {
                align_corners: a.bool_opt("align_corners")?,
                half_pixel_centers: a.bool_opt("half_pixel_centers")?,
            };
            if mnemonic == "resize_bilinear" {
                Op::ResizeBilinear(r)
            } else {
                Op::ResizeNearestNeighbor(r)
            }
        }
        "relu" => Op::Relu,
        "relu6" => Op::Relu6,
        "relu_n1_to_1" => Op::ReluN1To1,
        "leaky_relu" => Op::LeakyRelu { alpha: a.f32_req("alpha")? },
        "prelu" => Op::Prelu,
        "logistic" => Op::Logistic,
        "tanh" => Op::Tanh,
        "hard_swish" => Op::HardSwish,
        "softmax" => Op::Softmax { beta: a.f32_req("beta")? },
        "quantize" => Op::Quantize,
        "dequantize" => Op::Dequantize,
        "densify" => Op::Densify,
        "gather" => Op::Gather { axis: a.int_req("axis")?, batch_dims: a.int_opt("batch_dims")?.unwrap_or(0) },
        "arg_max" => Op::ArgMax { output_type: a.dtype_opt("output_type")?.ok_or_else(|| a.missing("output_type"))? },
        "l2_normalization" => Op::L2Normalization { activation: a.activation()? },
        "exp" => Op::Exp,
        "sqrt" => Op::Sqrt,
        "rsqrt" => Op::Rsqrt,
        "shape" => Op::Shape { output_type: a.dtype_opt("output_type")?.ok_or_else(|| a.missing("output_type"))? },
        "reduce_prod" => Op::ReduceProd { keep_dims: a.bool_opt("keep_dims")? },
        "greater" => Op::Greater,
        "greater_equal" => Op::GreaterEqual,
        "less" => Op::Less,
        "less_equal" => Op::LessEqual,
        "equal" => Op::Equal,
        "not_equal" => Op::NotEqual,
        "if" => Op::If { then_graph: a.int_req("then_graph")?, else_graph: a.int_req("else_graph")? },
        "while" => Op::While { cond_graph: a.int_req("cond_graph")?, body_graph: a.int_req("body_graph")? },
        "opaque" => Op::Opaque(OpaqueOp {
            name: opaque_name.unwrap_or_default(),
            builtin_code: a.int_opt("builtin_code")?,
            options: a.hex_opt("options")?,
            custom_options: a.hex_opt("custom_options")?,
        }),
        other => return Err(error_at(a.src, a.pos, format!("unknown op '{other}'"))),
    })
}

/// Decodes constant data written as an element list / hex / hash into a [`Constant`].
fn dense_to_constant(src: &str, lit: DenseLit, pos: usize, dtype: DType) -> PResult<Constant> {
    let start = match lit {
        DenseLit::Hex(b) => return Ok(Constant::from(b)),
        DenseLit::Elided { hash, len, preview } => return Ok(Constant::elided_with_preview(hash, len, preview)),
        DenseLit::List(start) => start,
    };
    if matches!(dtype, DType::F16 | DType::BF16 | DType::I4) {
        return Err(error_at(
            src,
            pos,
            format!("element lists are not supported for {dtype} data; write the bytes as a hex string"),
        ));
    }
    let mut out: Vec<u8> = Vec::new();
    let mut p = Parser::new(src);
    p.pos = start;
    p.list("constant elements", |p| {
        let (text, tpos) = p.scalar_text("a constant element")?;
        let bad = || error_at(src, tpos, format!("'{text}' is not a valid {dtype} element"));
        match dtype {
            DType::I8 => out.extend(parse_int::<i8>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::U8 => out.extend(parse_int::<u8>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::I16 => out.extend(parse_int::<i16>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::U16 => out.extend(parse_int::<u16>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::I32 => out.extend(parse_int::<i32>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::U32 => out.extend(parse_int::<u32>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::I64 => out.extend(parse_int::<i64>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::U64 => out.extend(parse_int::<u64>(text).ok_or_else(bad)?.to_le_bytes()),
            DType::F32 => out.extend(parse_f32(text).ok_or_else(bad)?.to_le_bytes()),
            DType::F64 => out.extend(parse_f64(text).ok_or_else(bad)?.to_le_bytes()),
            DType::Bool => out.push(match text {
                "true" | "1" => 1,
                "false" | "0" => 0,
                _ => return Err(bad()),
            }),
            DType::F16 | DType::BF16 | DType::I4 => {}
        }
        Ok(())
    })?;
    Ok(Constant::from(out))
}

/// Value attributes as written after a type.
#[derive(Default)]
struct ValueAttrs {
    name: String,
    shape_signature: Option<Vec<i64>>,
    variable: bool,
    sparsity: Option<Sparsity>,
    data: Option<(DenseLit, usize)>,
}

/// One position of a graph header: a definition (already in the arena) or a reference.
enum HeaderArg {
    Def(ValueId),
    Ref(Ref),
}

/// An op statement waiting for its operands to be resolved.
struct PendingOp {
    pos: usize,
    op: Op,
    operands: Vec<Option<Ref>>,
    intermediates: Vec<Ref>,
    outputs: Vec<ValueId>,
    version: u32,
}

/// How a signature names its graph.
enum GraphRef {
    Index(usize),
    Name(String),
}

/// A signature waiting for all graphs to be parsed.
struct PendingSignature {
    key: String,
    graph: GraphRef,
    graph_pos: usize,
    inputs: Vec<(String, Ref)>,
    outputs: Vec<(String, Ref)>,
}

/// Names of one parsed graph's values (kept to resolve signatures).
type NameTable = HashMap<String, (ValueId, usize)>;

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$'
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { src, b: src.as_bytes(), pos: 0 }
    }

    fn err_at(&self, pos: usize, message: impl Into<String>) -> IrError {
        error_at(self.src, pos, message)
    }

    /// An error at the next token.
    fn err(&mut self, message: impl Into<String>) -> IrError {
        self.ws();
        self.err_at(self.pos, message)
    }

    /// Skips whitespace and `//` comments.
    fn ws(&mut self) {
        loop {
            match self.b.get(self.pos) {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') if self.b.get(self.pos + 1) == Some(&b'/') => {
                    while self.b.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.pos).copied()
    }

    /// Describes the next token for "found …".
    fn found(&mut self) -> String {
        self.ws();
        let Some(rest) = self.src.get(self.pos..) else { return "invalid text".into() };
        let Some(c) = rest.chars().next() else { return "end of input".into() };
        let tok: String = if c.is_ascii_alphanumeric() || "_%@-+.".contains(c) {
            rest.chars().take_while(|&c| c.is_ascii_alphanumeric() || "_%@#$.-+".contains(c)).take(40).collect()
        } else if c == '"' {
            let mut s: String = rest.chars().skip(1).take_while(|&c| c != '"' && c != '\n').take(40).collect();
            s.insert(0, '"');
            s.push('"');
            s
        } else {
            c.to_string()
        };
        format!("'{tok}'")
    }

    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.b[self.pos..].starts_with(s.as_bytes()) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str, context: &str) -> PResult<()> {
        if self.eat(s) {
            return Ok(());
        }
        let found = self.found();
        let sep = if context.is_empty() { "" } else { " " };
        Err(self.err(format!("expected '{s}'{sep}{context}, found {found}")))
    }

    /// The identifier at the cursor, without consuming it.
    fn peek_ident(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        if !self.b.get(start).copied().is_some_and(is_ident_start) {
            return None;
        }
        let mut end = start + 1;
        while self.b.get(end).copied().is_some_and(is_ident_char) {
            end += 1;
        }
        self.src.get(start..end)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_ident() == Some(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str, context: &str) -> PResult<()> {
        if self.eat_kw(kw) {
            return Ok(());
        }
        let found = self.found();
        let sep = if context.is_empty() { "" } else { " " };
        Err(self.err(format!("expected '{kw}'{sep}{context}, found {found}")))
    }

    fn ident(&mut self, what: &str) -> PResult<(&'a str, usize)> {
        match self.peek_ident() {
            Some(w) => {
                let pos = self.pos;
                self.pos += w.len();
                Ok((w, pos))
            }
            None => {
                let found = self.found();
                Err(self.err(format!("expected {what}, found {found}")))
            }
        }
    }

    /// A number as text: optional sign, then digits, letters, `.` and exponent signs.
    fn number_text(&mut self) -> Option<(&'a str, usize)> {
        self.ws();
        let start = self.pos;
        let mut end = start;
        if matches!(self.b.get(end), Some(b'-' | b'+')) {
            end += 1;
        }
        let body = end;
        if !self.b.get(body).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.') {
            return None;
        }
        let hex = self.b[body..].starts_with(b"0x");
        while let Some(&c) = self.b.get(end) {
            let exp_sign = (c == b'-' || c == b'+') && !hex && end > body && matches!(self.b[end - 1], b'e' | b'E');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                end += 1;
            } else {
                break;
            }
        }
        self.pos = end;
        self.src.get(start..end).map(|s| (s, start))
    }

    /// A scalar element: a number or a word (`true`, `inf`, `nan`).
    fn scalar_text(&mut self, what: &str) -> PResult<(&'a str, usize)> {
        if let Some(t) = self.number_text() {
            return Ok(t);
        }
        self.ident(what)
    }

    fn int<T: TryFrom<i128>>(&mut self, what: &str) -> PResult<T> {
        let Some((text, pos)) = self.number_text() else {
            let found = self.found();
            return Err(self.err(format!("expected {what} (an integer), found {found}")));
        };
        parse_int::<T>(text)
            .ok_or_else(|| self.err_at(pos, format!("'{text}' is not a valid {} for {what}", short_type_name::<T>())))
    }

    fn float32(&mut self, what: &str) -> PResult<f32> {
        let (text, pos) = self.scalar_text(what)?;
        parse_f32(text).ok_or_else(|| self.err_at(pos, format!("'{text}' is not a valid f32 for {what}")))
    }

    /// `[a, b, …]` with each element read by `f`.
    fn list<T>(&mut self, what: &str, mut f: impl FnMut(&mut Self) -> PResult<T>) -> PResult<Vec<T>> {
        self.expect("[", &format!("to start {what}"))?;
        let mut out = Vec::new();
        if self.eat("]") {
            return Ok(out);
        }
        loop {
            out.push(f(self)?);
            if self.eat("]") {
                return Ok(out);
            }
            self.expect(",", &format!("or ']' in {what}"))?;
        }
    }

    /// A string literal's bytes; escapes `\"`, `\\`, `\n`, `\t` and `\XX` (hex).
    fn string(&mut self, what: &str) -> PResult<Vec<u8>> {
        if self.peek() != Some(b'"') {
            let found = self.found();
            return Err(self.err(format!("expected {what} (a string), found {found}")));
        }
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.b.get(self.pos).copied() {
                None | Some(b'\n') => return Err(self.err_at(start, "unterminated string literal")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let esc = self.pos;
                    match self.b.get(self.pos + 1).copied() {
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(h) if h.is_ascii_hexdigit() => {
                            let l = self.b.get(self.pos + 2).copied().filter(u8::is_ascii_hexdigit);
                            let Some(l) = l else {
                                return Err(self.err_at(esc, "a '\\' hex escape needs two hex digits"));
                            };
                            out.push(hex_val(h) << 4 | hex_val(l));
                            self.pos += 1;
                        }
                        _ => {
                            return Err(
                                self.err_at(esc, "unknown escape in string literal (use \\\", \\\\, \\n, \\t or \\XX)")
                            )
                        }
                    }
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// A string literal that must be UTF-8 (names, keys).
    fn utf8_string(&mut self, what: &str) -> PResult<String> {
        self.ws();
        let pos = self.pos;
        let b = self.string(what)?;
        String::from_utf8(b).map_err(|_| self.err_at(pos, format!("{what} is not valid UTF-8")))
    }

    /// The digits of a hex string literal.
    fn hex_string(&mut self, what: &str) -> PResult<Vec<u8>> {
        self.ws();
        let pos = self.pos;
        let s = self.string(what)?;
        decode_hex(&s).ok_or_else(|| self.err_at(pos, format!("{what} must hold an even number of hex digits")))
    }

    /// `%name` (a definition: no `#`).
    fn value_def_name(&mut self) -> PResult<(String, usize)> {
        self.ws();
        let pos = self.pos;
        if self.b.get(pos) != Some(&b'%') {
            let found = self.found();
            return Err(self.err(format!("expected a value name ('%…'), found {found}")));
        }
        let mut end = pos + 1;
        while self.b.get(end).copied().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$')) {
            end += 1;
        }
        if end == pos + 1 {
            return Err(self.err_at(pos, "expected a name after '%'"));
        }
        self.pos = end;
        Ok((self.src[pos..end].to_string(), pos))
    }

    /// `%name` or `%name#N` (a use).
    fn value_ref(&mut self) -> PResult<Ref> {
        let (mut name, pos) = self.value_def_name()?;
        if self.b.get(self.pos) == Some(&b'#') {
            let start = self.pos;
            let mut end = start + 1;
            while self.b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start + 1 {
                return Err(self.err_at(start, "expected a result number after '#'"));
            }
            name.push_str(&self.src[start..end]);
            self.pos = end;
        }
        Ok(Ref { name, pos })
    }

    /// `@name` or `@"name"`.
    fn symbol(&mut self, what: &str) -> PResult<String> {
        if !self.eat("@") {
            let found = self.found();
            return Err(self.err(format!("expected {what} ('@name'), found {found}")));
        }
        if self.b.get(self.pos) == Some(&b'"') {
            return self.utf8_string(what);
        }
        match self.peek_ident() {
            Some(w) if self.b.get(self.pos.wrapping_sub(1)) == Some(&b'@') => {
                self.pos += w.len();
                Ok(w.to_string())
            }
            _ => Err(self.err(format!("expected {what} right after '@' (an identifier or a string)"))),
        }
    }

    fn module(&mut self) -> PResult<Module> {
        let mut m = Module::default();
        let mut sigs = Vec::new();
        let mut tables = Vec::new();
        let wrapped = self.eat_kw("module");
        if wrapped {
            if self.eat_kw("attributes") {
                self.ws();
                let pos = self.pos;
                let entries = self.attr_dict()?;
                let mut a = Attrs::new(self.src, entries, "module", pos);
                if let Some((v, p)) = a.take("description") {
                    match v {
                        AttrValue::Str(b) => {
                            m.description =
                                String::from_utf8(b).map_err(|_| self.err_at(p, "description is not valid UTF-8"))?
                        }
                        other => return Err(a.bad("description", p, "a string", &other)),
                    }
                }
                a.finish("description")?;
            }
            self.expect("{", "to open the module body")?;
        }
        loop {
            self.ws();
            if wrapped && self.eat("}") {
                break;
            }
            if !wrapped && self.pos >= self.b.len() {
                break;
            }
            if self.eat_kw("metadata") {
                let name = self.utf8_string("metadata name")?;
                self.expect("=", "after metadata name")?;
                let data = if self.eat_kw("hex") {
                    self.hex_string("metadata bytes")?
                } else {
                    self.string("metadata contents")?
                };
                m.metadata.push(Metadata { name, data: Bytes::from(data) });
            } else if self.eat_kw("signature") {
                sigs.push(self.signature()?);
            } else if self.peek_ident() == Some("graph") {
                let (g, table) = self.graph()?;
                m.graphs.push(g);
                tables.push(table);
            } else {
                let found = self.found();
                let close = if wrapped { ", '}'" } else { "" };
                return Err(self.err(format!("expected 'graph', 'signature', 'metadata'{close}, found {found}")));
            }
        }
        if self.peek().is_some() {
            let found = self.found();
            return Err(self.err(format!("expected end of input after the module, found {found}")));
        }
        for s in sigs {
            m.signatures.push(self.resolve_signature(s, &m.graphs, &tables)?);
        }
        Ok(m)
    }

    fn signature(&mut self) -> PResult<PendingSignature> {
        let key = self.utf8_string("signature key")?;
        self.ws();
        let graph_pos = self.pos;
        let graph = if self.peek() == Some(b'@') {
            GraphRef::Name(self.symbol("graph")?)
        } else {
            GraphRef::Index(self.int("signature graph index")?)
        };
        let mut maps = Vec::new();
        for kw in ["inputs", "outputs"] {
            self.expect_kw(kw, "in signature")?;
            self.expect("{", &format!("to open signature {kw}"))?;
            let mut map = Vec::new();
            if !self.eat("}") {
                loop {
                    let name = self.utf8_string("signature tensor name")?;
                    self.expect("=", "after signature tensor name")?;
                    map.push((name, self.value_ref()?));
                    if self.eat("}") {
                        break;
                    }
                    self.expect(",", &format!("or '}}' in signature {kw}"))?;
                }
            }
            maps.push(map);
        }
        let outputs = maps.pop().unwrap_or_default();
        let inputs = maps.pop().unwrap_or_default();
        Ok(PendingSignature { key, graph, graph_pos, inputs, outputs })
    }

    fn resolve_signature(&self, s: PendingSignature, graphs: &[Graph], tables: &[NameTable]) -> PResult<Signature> {
        let graph = match s.graph {
            GraphRef::Index(i) => i,
            GraphRef::Name(name) => {
                let mut hits = graphs.iter().enumerate().filter(|(_, g)| g.name == name).map(|(i, _)| i);
                match (hits.next(), hits.next()) {
                    (Some(i), None) => i,
                    (None, _) => {
                        return Err(self.err_at(s.graph_pos, format!("signature '{}': no graph named @{name}", s.key)))
                    }
                    (Some(_), Some(_)) => {
                        return Err(self.err_at(
                            s.graph_pos,
                            format!("signature '{}': several graphs are named @{name}; refer to one by index", s.key),
                        ))
                    }
                }
            }
        };
        let resolve = |map: Vec<(String, Ref)>| -> PResult<Vec<(String, ValueId)>> {
            map.into_iter()
                .map(|(name, r)| {
                    let Some(table) = tables.get(graph) else {
                        return Err(self.err_at(
                            s.graph_pos,
                            format!(
                                "signature '{}' refers to graph {graph}, but there are {} graphs",
                                s.key,
                                graphs.len()
                            ),
                        ));
                    };
                    match table.get(&r.name) {
                        Some(&(v, _)) => Ok((name, v)),
                        None => Err(self.err_at(
                            r.pos,
                            format!("use of undefined value '{}' in signature '{}' (graph {graph})", r.name, s.key),
                        )),
                    }
                })
                .collect()
        };
        let inputs = resolve(s.inputs)?;
        let outputs = resolve(s.outputs)?;
        Ok(Signature { key: s.key, graph, inputs, outputs })
    }

    fn define(&self, table: &mut NameTable, g: &mut Graph, name: String, pos: usize, v: Value) -> PResult<ValueId> {
        if let Some(&(_, first)) = table.get(&name) {
            let (line, col) = line_col(self.src, first);
            return Err(self.err_at(pos, format!("redefinition of value '{name}' (first defined at {line}:{col})")));
        }
        let id = g.add_value(v);
        table.insert(name, (id, pos));
        Ok(id)
    }

    fn resolve(&self, table: &NameTable, r: &Ref) -> PResult<ValueId> {
        table
            .get(&r.name)
            .map(|&(v, _)| v)
            .ok_or_else(|| self.err_at(r.pos, format!("use of undefined value '{}'", r.name)))
    }

    fn graph(&mut self) -> PResult<(Graph, NameTable)> {
        self.expect_kw("graph", "")?;
        let name = self.symbol("graph name")?;
        let mut g = Graph::new(name);
        let mut table = NameTable::new();
        let mut header = Vec::new();
        self.expect("(", "to open the graph's argument list")?;
        if !self.eat(")") {
            loop {
                let r = self.value_ref()?;
                if self.eat(":") {
                    if r.name.contains('#') {
                        return Err(self.err_at(r.pos, "a graph argument name cannot contain '#'"));
                    }
                    let v = self.typed_value(None)?;
                    header.push(HeaderArg::Def(self.define(&mut table, &mut g, r.name, r.pos, v)?));
                } else {
                    header.push(HeaderArg::Ref(r));
                }
                if self.eat(")") {
                    break;
                }
                self.expect(",", "or ')' after graph argument")?;
            }
        }
        self.expect("{", "to open the graph body")?;
        let mut ops = Vec::new();
        let outputs = loop {
            self.ws();
            let pos = self.pos;
            match self.peek() {
                Some(b'%') => {
                    let (name, npos) = self.value_def_name()?;
                    let count = if self.eat(":") {
                        let cpos = self.pos;
                        let n: usize = self.int("result count")?;
                        if n == 0 {
                            return Err(self.err_at(cpos, "a result count must be at least 1"));
                        }
                        Some(n)
                    } else {
                        None
                    };
                    self.expect("=", &format!("after '{name}'"))?;
                    let kw = self.peek_ident();
                    if let Some(kind @ ("const" | "variable" | "undef")) = kw {
                        if count.is_some() {
                            return Err(self.err_at(npos, format!("'{kind}' defines a single value")));
                        }
                        self.pos += kind.len();
                        self.ws();
                        let dpos = self.pos;
                        let data = match kind {
                            "const" => Some((self.dense()?, dpos)),
                            "variable" if self.peek_ident() == Some("dense") => Some((self.dense()?, dpos)),
                            _ => None,
                        };
                        self.expect(":", &format!("before the type of '{name}'"))?;
                        let mut v = self.typed_value(data)?;
                        v.is_variable |= kind == "variable";
                        self.define(&mut table, &mut g, name, npos, v)?;
                    } else {
                        let names: Vec<(String, usize)> = match count {
                            None => vec![(name, npos)],
                            Some(n) => (0..n).map(|i| (format!("{name}#{i}"), npos)).collect(),
                        };
                        ops.push(self.op_stmt(pos, names, &mut g, &mut table)?);
                    }
                }
                Some(c) if is_ident_start(c) => {
                    if matches!(self.peek_ident(), Some("graph" | "signature" | "metadata")) {
                        return Err(self.err("expected 'return' before the end of the graph body"));
                    }
                    if self.eat_kw("return") {
                        let mut outs = Vec::new();
                        if self.peek() == Some(b'%') {
                            loop {
                                outs.push(self.value_ref()?);
                                if !self.eat(",") {
                                    break;
                                }
                            }
                        }
                        self.expect("}", "after 'return' (it must be the last statement of a graph)")?;
                        break outs;
                    }
                    ops.push(self.op_stmt(pos, Vec::new(), &mut g, &mut table)?);
                }
                Some(b'}') => return Err(self.err("expected 'return' before the end of the graph body")),
                _ => {
                    let found = self.found();
                    return Err(
                        self.err(format!("expected a statement ('%name = …', an op or 'return'), found {found}"))
                    );
                }
            }
        };
        for op in ops {
            let inputs = op
                .operands
                .iter()
                .map(|o| o.as_ref().map(|r| self.resolve(&table, r)).transpose())
                .collect::<PResult<Vec<_>>>()?;
            let intermediates =
                op.intermediates.iter().map(|r| self.resolve(&table, r)).collect::<PResult<Vec<_>>>()?;
            let operation = Operation { op: op.op, inputs, outputs: op.outputs, intermediates, version: op.version };
            g.add_op(operation).map_err(|e| self.err_at(op.pos, e.to_string()))?;
        }
        for h in header {
            let v = match h {
                HeaderArg::Def(v) => v,
                HeaderArg::Ref(r) => self.resolve(&table, &r)?,
            };
            g.inputs.push(v);
        }
        for r in &outputs {
            let v = self.resolve(&table, r)?;
            g.outputs.push(v);
        }
        Ok((g, table))
    }

    /// An op statement after its result names: `mnemonic ["name"](operands) {attrs} : types`.
    fn op_stmt(
        &mut self,
        pos: usize,
        results: Vec<(String, usize)>,
        g: &mut Graph,
        table: &mut NameTable,
    ) -> PResult<PendingOp> {
        let (mnemonic, mpos) = self.ident("an op name")?;
        if !MNEMONICS.contains(&mnemonic) {
            let hint = if MNEMONICS.contains(&mnemonic.to_ascii_lowercase().as_str()) {
                format!("; mnemonics are lower case: '{}'", mnemonic.to_ascii_lowercase())
            } else {
                format!("; ops npuc does not model are written opaque \"{mnemonic}\"(…)")
            };
            return Err(self.err_at(mpos, format!("unknown op '{mnemonic}'{hint}")));
        }
        let opaque_name = if mnemonic == "opaque" { Some(self.utf8_string("opaque op name")?) } else { None };
        let owner = match &opaque_name {
            Some(n) => format!("opaque \"{n}\""),
            None => mnemonic.to_string(),
        };
        self.expect("(", &format!("to open the operand list of {owner}"))?;
        let mut operands = Vec::new();
        if !self.eat(")") {
            loop {
                if self.eat_kw("none") {
                    operands.push(None);
                } else if self.peek() == Some(b'%') {
                    operands.push(Some(self.value_ref()?));
                } else {
                    let found = self.found();
                    return Err(self.err(format!("expected an operand ('%name' or 'none'), found {found}")));
                }
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    let found = self.found();
                    return Err(self.err(format!("expected ')' after operand list, found {found}")));
                }
            }
        }
        let entries = if self.peek() == Some(b'{') { self.attr_dict()? } else { Vec::new() };
        let mut attrs = Attrs::new(self.src, entries, owner.clone(), mpos);
        let op = build_op(mnemonic, opaque_name, &mut attrs)?;
        let version = attrs.int_opt::<u32>("version")?.unwrap_or(1);
        let intermediates = attrs.refs_opt("intermediates")?;
        let known = known_attrs(mnemonic);
        let known = if known.is_empty() {
            "version, intermediates".to_string()
        } else {
            format!("{known}, version, intermediates")
        };
        attrs.finish(&known)?;
        let mut outputs = Vec::with_capacity(results.len().min(64));
        for (i, (name, npos)) in results.into_iter().enumerate() {
            if i == 0 {
                self.expect(":", &format!("before the result types of {owner}"))?;
            } else {
                self.expect(",", &format!("before the type of result {i} of {owner}"))?;
            }
            let v = self.typed_value(None)?;
            outputs.push(self.define(table, g, name, npos, v)?);
        }
        Ok(PendingOp { pos, op, operands, intermediates, outputs, version })
    }

    /// `tensor<…> {value attrs}`, completed with data given by a declaration keyword.
    fn typed_value(&mut self, data: Option<(DenseLit, usize)>) -> PResult<Value> {
        let ty = self.tensor_type()?;
        let mut attrs = if self.peek() == Some(b'{') { self.value_attrs()? } else { ValueAttrs::default() };
        if let Some(d) = data {
            if let Some((_, pos)) = attrs.data {
                return Err(self.err_at(pos, "'data' repeats the data given by the declaration"));
            }
            attrs.data = Some(d);
        }
        let dtype = ty.dtype;
        let mut v = Value::new(attrs.name, ty);
        v.shape_signature = attrs.shape_signature;
        v.is_variable = attrs.variable;
        v.sparsity = attrs.sparsity;
        if let Some((lit, pos)) = attrs.data {
            v.data = Some(dense_to_constant(self.src, lit, pos, dtype)?);
        }
        Ok(v)
    }

    fn value_attrs(&mut self) -> PResult<ValueAttrs> {
        self.ws();
        let pos = self.pos;
        let entries = self.attr_dict()?;
        let mut a = Attrs::new(self.src, entries, "value", pos);
        let mut out = ValueAttrs::default();
        match a.take("name") {
            None => {}
            Some((AttrValue::Str(b), p)) => {
                out.name = String::from_utf8(b).map_err(|_| self.err_at(p, "value name is not valid UTF-8"))?
            }
            Some((v, p)) => return Err(a.bad("name", p, "a string", &v)),
        }
        out.shape_signature = a.int_list_opt::<i64>("shape_signature")?;
        out.variable = a.bool_opt("variable")?;
        match a.take("sparsity") {
            None => {}
            Some((AttrValue::Sparse(s), _)) => out.sparsity = Some(s),
            Some((v, p)) => return Err(a.bad("sparsity", p, "sparse<…>", &v)),
        }
        match a.take("data") {
            None => {}
            Some((AttrValue::Dense(d, dp), _)) => out.data = Some((d, dp)),
            Some((v, p)) => return Err(a.bad("data", p, "dense<…>", &v)),
        }
        a.finish("name, shape_signature, variable, sparsity, data")?;
        Ok(out)
    }

    /// `{key = value, key, …}` with values kept generic.
    fn attr_dict(&mut self) -> PResult<Vec<AttrEntry>> {
        self.expect("{", "to open an attribute dictionary")?;
        let mut out: Vec<AttrEntry> = Vec::new();
        if self.eat("}") {
            return Ok(out);
        }
        loop {
            let (key, kpos) = self.ident("an attribute name")?;
            if out.iter().any(|e| e.key == key) {
                return Err(self.err_at(kpos, format!("duplicate attribute '{key}'")));
            }
            let (val, val_pos) = if self.eat("=") {
                self.ws();
                let p = self.pos;
                (self.attr_value(true)?, p)
            } else {
                (AttrValue::Unit, kpos)
            };
            out.push(AttrEntry { key: key.to_string(), val, val_pos });
            if self.eat("}") {
                return Ok(out);
            }
            if !self.eat(",") {
                let found = self.found();
                return Err(self.err(format!("expected ',' or '}}' after attribute '{key}', found {found}")));
            }
        }
    }

    fn attr_value(&mut self, allow_list: bool) -> PResult<AttrValue> {
        self.ws();
        let pos = self.pos;
        match self.peek() {
            Some(b'"') => Ok(AttrValue::Str(self.string("string")?)),
            Some(b'[') if allow_list => {
                let items = self.list("a list", |p| {
                    p.ws();
                    let ipos = p.pos;
                    Ok((p.attr_value(false)?, ipos))
                })?;
                Ok(AttrValue::List(items))
            }
            Some(b'[') => Err(self.err_at(pos, "nested lists are not allowed in attributes")),
            Some(b'%') => Ok(AttrValue::Ref(self.value_ref()?)),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() => match self.number_text() {
                Some((t, _)) => Ok(AttrValue::Num(t.to_string())),
                None => Err(self.err_at(pos, "expected a number")),
            },
            Some(c) if is_ident_start(c) => {
                let next_is = |p: &Self, w: &str, c: u8| p.b.get(p.pos + w.len()) == Some(&c);
                match self.peek_ident() {
                    Some("hex") if next_is(self, "hex", b'"') => {
                        self.pos += 3;
                        Ok(AttrValue::Hex(self.hex_string("hex literal")?))
                    }
                    Some("dense") => Ok(AttrValue::Dense(self.dense()?, pos)),
                    Some("sparse") => Ok(AttrValue::Sparse(self.sparse()?)),
                    _ => {
                        let (w, _) = self.ident("an attribute value")?;
                        Ok(AttrValue::Word(w.to_string()))
                    }
                }
            }
            _ => {
                let found = self.found();
                Err(self.err(format!("expected an attribute value, found {found}")))
            }
        }
    }

    /// `dense<"hex">`, `dense<[elements]>` or `dense<hash H, N bytes[, preview]>`.
    fn dense(&mut self) -> PResult<DenseLit> {
        self.expect_kw("dense", "(constant data)")?;
        self.expect("<", "after 'dense'")?;
        let lit = match self.peek() {
            Some(b'"') => DenseLit::Hex(self.hex_string("constant data")?),
            Some(b'[') => {
                // Check the syntax now; decode later, when the element type is known.
                let start = self.pos;
                self.list("constant elements", |p| p.scalar_text("a constant element").map(|_| ()))?;
                DenseLit::List(start)
            }
            _ if self.eat_kw("hash") => {
                let hash = if self.peek() == Some(b'"') {
                    self.utf8_string("constant hash")?
                } else {
                    self.ws();
                    let start = self.pos;
                    let mut end = start;
                    while self.b.get(end).is_some_and(u8::is_ascii_alphanumeric) {
                        end += 1;
                    }
                    if end == start {
                        let found = self.found();
                        return Err(self.err(format!("expected a hash after 'hash', found {found}")));
                    }
                    self.pos = end;
                    self.src[start..end].to_string()
                };
                self.expect(",", "after the constant hash")?;
                let len: usize = self.int("constant size")?;
                self.expect_kw("bytes", "after the constant size")?;
                let mut preview = String::new();
                if self.eat(",") {
                    // The preview is informational: kept verbatim for reprinting, not read.
                    self.expect("[", "to start the constant preview")?;
                    let start = self.pos;
                    match self.b[self.pos..].iter().position(|&c| c == b']' || c == b'>') {
                        Some(off) if self.b[self.pos + off] == b']' => self.pos += off + 1,
                        _ => return Err(self.err_at(start, "expected ']' to close the constant preview")),
                    }
                    preview = self.src[start - 1..self.pos].to_string();
                }
                DenseLit::Elided { hash, len, preview }
            }
            _ => {
                let found = self.found();
                return Err(self.err(format!("expected constant data (\"hex\", [elements] or hash …), found {found}")));
            }
        };
        self.expect(">", "to close 'dense<'")?;
        Ok(lit)
    }

    fn index_vector(&mut self) -> PResult<IndexVector> {
        let (w, pos) = self.ident("an index vector type (i32, u16 or u8)")?;
        Ok(match w {
            "i32" => IndexVector::I32(self.list("an i32 index vector", |p| p.int("an index"))?),
            "u16" => IndexVector::U16(self.list("a u16 index vector", |p| p.int("an index"))?),
            "u8" => IndexVector::U8(self.list("a u8 index vector", |p| p.int("an index"))?),
            _ => return Err(self.err_at(pos, format!("expected i32, u16 or u8 before an index vector, found '{w}'"))),
        })
    }

    /// `sparse<traversal_order = […], block_map = […], dims = […]>`.
    fn sparse(&mut self) -> PResult<Sparsity> {
        self.expect_kw("sparse", "(sparsity)")?;
        self.expect("<", "after 'sparse'")?;
        self.expect_kw("traversal_order", "in sparse<…>")?;
        self.expect("=", "after 'traversal_order'")?;
        let traversal_order = self.list("traversal_order", |p| p.int("a dimension"))?;
        self.expect(",", "after traversal_order")?;
        self.expect_kw("block_map", "in sparse<…>")?;
        self.expect("=", "after 'block_map'")?;
        let block_map = self.list("block_map", |p| p.int("a dimension"))?;
        self.expect(",", "after block_map")?;
        self.expect_kw("dims", "in sparse<…>")?;
        self.expect("=", "after 'dims'")?;
        let dim_metadata = self.list("dims", |p| {
            let (w, pos) = p.ident("a dimension format (dense or csr)")?;
            let format = match w {
                "dense" => DimFormat::Dense,
                "csr" => DimFormat::SparseCsr,
                _ => return Err(p.err_at(pos, format!("expected 'dense' or 'csr', found '{w}'"))),
            };
            let mut d = DimMetadata { format, dense_size: 0, array_segments: None, array_indices: None };
            if p.eat("(") {
                let mut seen: Vec<&str> = Vec::new();
                loop {
                    let (f, fpos) = p.ident("size, segments or indices")?;
                    if seen.contains(&f) {
                        return Err(p.err_at(fpos, format!("duplicate '{f}' in sparse dimension")));
                    }
                    seen.push(f);
                    p.expect("=", &format!("after '{f}'"))?;
                    match f {
                        "size" => d.dense_size = p.int("size")?,
                        "segments" => d.array_segments = Some(p.index_vector()?),
                        "indices" => d.array_indices = Some(p.index_vector()?),
                        _ => return Err(p.err_at(fpos, format!("expected size, segments or indices, found '{f}'"))),
                    }
                    if p.eat(")") {
                        break;
                    }
                    p.expect(",", "or ')' in sparse dimension")?;
                }
            }
            Ok(d)
        })?;
        self.expect(">", "to close 'sparse<'")?;
        Ok(Sparsity { traversal_order, block_map, dim_metadata })
    }

    /// `tensor<DIMSxDTYPE[, q<…>]>`.
    fn tensor_type(&mut self) -> PResult<TensorType> {
        if !self.eat_kw("tensor") {
            let found = self.found();
            return Err(self.err(format!("expected a tensor type ('tensor<…>'), found {found}")));
        }
        self.expect("<", "after 'tensor'")?;
        self.ws();
        let start = self.pos;
        let mut end = start;
        while self.b.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            end += 1;
        }
        if end == start {
            let found = self.found();
            return Err(self.err(format!("expected shape and element type (e.g. '1x8xf32'), found {found}")));
        }
        self.pos = end;
        let word = &self.src[start..end];
        let mut parts: Vec<(&str, usize)> = Vec::new();
        let mut off = start;
        for part in word.split('x') {
            parts.push((part, off));
            off += part.len() + 1;
        }
        let (dt, dt_pos) = parts.pop().unwrap_or(("", start));
        let dtype = DType::from_name(dt).ok_or_else(|| {
            if dt.is_empty() {
                self.err_at(dt_pos, "expected an element type after the last 'x'")
            } else {
                self.err_at(dt_pos, format!("unknown element type '{dt}'"))
            }
        })?;
        let mut shape = Vec::with_capacity(parts.len());
        for (p, ppos) in parts {
            shape.push(p.parse::<usize>().map_err(|_| self.err_at(ppos, format!("invalid dimension '{p}'")))?);
        }
        let quant = if self.eat(",") { Some(self.quant()?) } else { None };
        self.expect(">", "to close the tensor type")?;
        Ok(TensorType { dtype, shape, quant })
    }

    /// `q<…>`: see docs/ir.md for the forms.
    fn quant(&mut self) -> PResult<Quantization> {
        self.expect_kw("q", "(quantization) after ',' in tensor type")?;
        self.expect("<", "after 'q'")?;
        let mut q = Quantization::default();
        if self.eat(">") {
            return Ok(q);
        }
        let mut seen: Vec<&'static str> = Vec::new();
        let see = |p: &Self, seen: &mut Vec<&'static str>, items: &[&'static str], pos: usize| -> PResult<()> {
            for item in items {
                if seen.contains(item) {
                    return Err(p.err_at(pos, format!("duplicate '{item}' in quantization")));
                }
                seen.push(item);
            }
            Ok(())
        };
        loop {
            self.ws();
            let pos = self.pos;
            if self.eat_kw("axis") {
                see(self, &mut seen, &["axis"], pos)?;
                q.axis = self.int("quantization axis")?;
                if self.eat(":") {
                    see(self, &mut seen, &["scale", "zero_point"], pos)?;
                    let pairs = self.list("per-channel scales", |p| {
                        let s = p.float32("a scale")?;
                        p.expect(":", "between scale and zero point")?;
                        Ok((s, p.int::<i64>("a zero point")?))
                    })?;
                    (q.scale, q.zero_point) = pairs.into_iter().unzip();
                }
            } else if self.eat_kw("scale") {
                see(self, &mut seen, &["scale"], pos)?;
                q.scale = self.list("scales", |p| p.float32("a scale"))?;
            } else if self.eat_kw("zero_point") {
                see(self, &mut seen, &["zero_point"], pos)?;
                q.zero_point = self.list("zero points", |p| p.int("a zero point"))?;
            } else if self.eat_kw("min") {
                see(self, &mut seen, &["min"], pos)?;
                q.min = self.list("min values", |p| p.float32("a min value"))?;
            } else if self.eat_kw("max") {
                see(self, &mut seen, &["max"], pos)?;
                q.max = self.list("max values", |p| p.float32("a max value"))?;
            } else {
                see(self, &mut seen, &["scale", "zero_point"], pos)?;
                let s = self.float32("a scale")?;
                self.expect(":", "between scale and zero point")?;
                q.scale = vec![s];
                q.zero_point = vec![self.int("a zero point")?];
            }
            if self.eat(">") {
                return Ok(q);
            }
            self.expect(",", "or '>' in quantization")?;
        }
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    Some(s.chunks_exact(2).map(|p| hex_val(p[0]) << 4 | hex_val(p[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::{print_module, PrintOptions};

    const EXAMPLE: &str = r#"// A small hand-written module.
module attributes {description = "TOCO Converted."} {
  metadata "min_runtime_version" = "1.5.0\00\00"
  signature "serving_default" @main inputs {"input_1" = %arg0} outputs {"dense" = %3}
  graph @main(%arg0: tensor<1x8x8x3xi8, q<0.007843:-1>> {name = "in:0", shape_signature = [-1, 8, 8, 3]}) {
    %w = const dense<hash 3f9a1c0b2d4e5f60, 432 bytes, [12, -3, 7, ...]> : tensor<16x3x3x3xi8, q<axis 0: [0.5:0, 0.25:0]>> {name = "w"}
    %b = const dense<[1, 2, -3, 4]> : tensor<4xi32>
    %0 = conv_2d(%arg0, %w, %b) {padding = same, stride = [2, 2], dilation = [1, 1], activation = relu6} : tensor<1x4x4x16xi8, q<0.0235:-128>> {name = "conv"}
    %1:2 = split(%b, %0) {num_splits = 2} : tensor<1x4x4x8xi8>, tensor<1x4x4x8xi8> {name = "s"}
    %2 = fully_connected(%1#0, %w, none) {keep_num_dims} : tensor<1x16xf32>
    %3 = opaque "MY_CUSTOM"(%2) {custom_options = hex"00ff", version = 2} : tensor<1x16xf32>
    return %3, %1#1
  }
}
"#;

    fn parse_err(text: &str) -> (usize, usize, String) {
        match parse_module(text) {
            Err(IrError::Parse { line, col, message }) => (line, col, message),
            Err(e) => panic!("unexpected error kind {e:?}"),
            Ok(_) => panic!("expected a parse error for:\n{text}"),
        }
    }

    /// Wraps graph body lines in a graph with one f32 input `%x`.
    fn body(lines: &str) -> String {
        format!("graph @g(%x: tensor<2xf32>) {{\n{lines}\n}}\n")
    }

    #[test]
    fn handwritten_module_parses() {
        let m = parse_module(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.description, "TOCO Converted.");
        assert_eq!(m.metadata[0].data.as_ref(), b"1.5.0\0\0");
        let g = &m.graphs[0];
        assert_eq!(g.op_count(), 4);
        assert_eq!(g.inputs.len(), 1);
        assert_eq!(g.outputs.len(), 2);
        let input = g.value(g.inputs[0]);
        assert_eq!(input.name, "in:0");
        assert_eq!(input.shape_signature, Some(vec![-1, 8, 8, 3]));
        assert_eq!(input.ty.quant, Some(Quantization::per_tensor(0.007843, -1)));
        let order = g.topo_order().unwrap();
        let conv = g.op(order[0]);
        let w = g.value(conv.inputs[1].unwrap());
        assert!(w.data.as_ref().unwrap().is_elided());
        assert_eq!(w.data.as_ref().unwrap().short_hash(), "3f9a1c0b2d4e5f60");
        assert_eq!(w.data.as_ref().unwrap().len(), 432);
        assert_eq!(w.ty.quant.as_ref().unwrap().axis, 0);
        let b = g.value(conv.inputs[2].unwrap());
        assert_eq!(
            b.data.as_ref().unwrap().bytes().unwrap().as_ref(),
            &[1, 0, 0, 0, 2, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 4, 0, 0, 0]
        );
        let fc = g.op(order[2]);
        assert_eq!(fc.inputs[2], None);
        assert!(matches!(&fc.op, Op::FullyConnected(a) if a.keep_num_dims));
        let custom = g.op(order[3]);
        assert_eq!(custom.version, 2);
        assert!(
            matches!(&custom.op, Op::Opaque(o) if o.name == "MY_CUSTOM" && o.builtin_code.is_none() && o.custom_options.as_ref() == [0, 0xff])
        );
        assert_eq!(m.signatures[0].inputs[0].1, g.inputs[0]);
        assert_eq!(m.signatures[0].outputs[0].1, g.outputs[0]);
        // Printing renames (%w → %c0) and keeps the preview; after that the text is a fixed point.
        let t = print_module(&m, &PrintOptions::default());
        assert!(t.contains("%c0 = const dense<hash 3f9a1c0b2d4e5f60, 432 bytes, [12, -3, 7, ...]> : tensor<16x3x3x3xi8, q<axis 0: [0.5:0, 0.25:0]>> {name = \"w\"}"), "{t}");
        let m2 = parse_module(&t).unwrap();
        assert_eq!(print_module(&m2, &PrintOptions::default()), t);
    }

    #[test]
    fn bare_graph_and_forward_references() {
        // A cycle and a header input produced by an op: both need forward references.
        let text = "graph @g(%arg0: tensor<f32>, %1) {\n  %0 = add(%arg0, %1) : tensor<f32>\n  %1 = relu(%0) : tensor<f32>\n  return %1\n}\n";
        let g = parse_graph(text).unwrap();
        assert!(g.topo_order().is_err());
        assert_eq!(g.inputs.len(), 2);
        assert_eq!(g.producer(g.inputs[1]), g.producer(g.outputs[0]));
        let printed = crate::print::print_graph(&g, &PrintOptions::default());
        assert!(printed.contains("// graph has a cycle"), "{printed}");
        assert_eq!(crate::print::print_graph(&parse_graph(&printed).unwrap(), &PrintOptions::default()), printed);
    }

    #[test]
    fn free_values_and_value_attributes() {
        let text = body(concat!(
            "  %v = variable : tensor<2xf32> {name = \"state\"}\n",
            "  %w = variable dense<[1.5, 0x7fc00001]> : tensor<2xf32>\n",
            "  %t = undef : tensor<4xi8>\n",
            "  %s = const dense<\"00ff\"> : tensor<2xi8> {sparsity = sparse<traversal_order = [0], block_map = [], dims = [csr(size = 2, segments = u16[0, 2], indices = i32[0, 1])]>}\n",
            "  %0 = add(%x, %v) {intermediates = [%t]} : tensor<2xf32> {variable, data = dense<[1.0, 2.0]>}\n",
            "  %1 = mul(%0, %w) : tensor<2xf32>\n",
            "  return %1, %s",
        ));
        let g = parse_graph(&text).unwrap_or_else(|e| panic!("{e}"));
        let order = g.topo_order().unwrap();
        let add = g.op(order[0]);
        let v = g.value(add.inputs[1].unwrap());
        assert!(v.is_variable && v.data.is_none() && v.name == "state");
        let t = g.value(add.intermediates[0]);
        assert!(t.data.is_none() && !t.is_variable);
        let out = g.value(add.outputs[0]);
        assert!(out.is_variable);
        assert_eq!(
            out.data.as_ref().unwrap().bytes().unwrap().as_ref(),
            [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat()
        );
        let w = g.value(g.op(order[1]).inputs[1].unwrap());
        assert!(w.is_variable);
        let wb = w.data.as_ref().unwrap().bytes().unwrap();
        assert_eq!(&wb[4..], &0x7fc0_0001u32.to_le_bytes());
        let s = g.value(g.outputs[1]);
        let sp = s.sparsity.as_ref().unwrap();
        assert_eq!(sp.dim_metadata[0].format, DimFormat::SparseCsr);
        assert_eq!(sp.dim_metadata[0].dense_size, 2);
        assert_eq!(sp.dim_metadata[0].array_segments, Some(IndexVector::U16(vec![0, 2])));
        let printed = crate::print::print_graph(&g, &PrintOptions::default());
        assert!(printed.contains("%v0 = variable : tensor<2xf32> {name = \"state\"}"), "{printed}");
        assert!(printed.contains("%v1 = variable dense<[1.5, 0x7fc00001]> : tensor<2xf32>"), "{printed}");
        assert!(printed.contains("%t0 = undef : tensor<4xi8>"), "{printed}");
        assert_eq!(crate::print::print_graph(&parse_graph(&printed).unwrap(), &PrintOptions::default()), printed);
    }

    #[test]
    fn error_positions_and_messages() {
        // (body lines, line of the error within them, text the column points at, message)
        let cases: &[(&str, usize, &str, &str)] = &[
            ("  %0 = relu(%x foo) : tensor<2xf32>\n  return %0", 1, "foo)", "expected ')' after operand list, found 'foo'"),
            ("  %0 = frobnicate(%x) : tensor<2xf32>\n  return %0", 1, "frob", "unknown op 'frobnicate'"),
            ("  %0 = CONV_2D(%x) : tensor<2xf32>\n  return %0", 1, "CONV", "mnemonics are lower case: 'conv_2d'"),
            ("  %0 = relu(%y) : tensor<2xf32>\n  return %0", 1, "%y", "use of undefined value '%y'"),
            ("  %0 = relu(%x) : tensor<2xf32>\n  %0 = relu(%x) : tensor<2xf32>\n  return %0", 2, "%0", "redefinition of value '%0' (first defined at 2:3)"),
            ("  %0 = softmax(%x) : tensor<2xf32>\n  return %0", 1, "softmax", "softmax requires attribute 'beta'"),
            ("  %0 = softmax(%x) {beta = fast} : tensor<2xf32>\n  return %0", 1, "fast", "'fast' is not a valid f32"),
            ("  %0 = split(%x) {num_splits = -1} : tensor<2xf32>\n  return %0", 1, "-1", "'-1' is not a valid u32"),
            ("  %0 = relu(%x) {alpha = 1.0} : tensor<2xf32>\n  return %0", 1, "1.0", "unknown attribute 'alpha' for relu"),
            ("  %0 = conv_2d(%x) {padding = same, stride = [1], dilation = [1, 1]} : tensor<2xf32>\n  return %0", 1, "[1]", "expected [h, w] (2 integers), found 1 integers"),
            ("  %0 = conv_2d(%x) {padding = sideways, stride = [1, 1], dilation = [1, 1]} : tensor<2xf32>\n  return %0", 1, "sideways", "expected one of same, valid, found 'sideways'"),
            ("  %0 = relu(%x) {version = 1, version = 2} : tensor<2xf32>\n  return %0", 1, "version = 2", "duplicate attribute 'version'"),
            ("  %0 = relu(%x) : tensor<2xf33>\n  return %0", 1, "f33", "unknown element type 'f33'"),
            ("  %0 = relu(%x) : tensor<2xqxf32>\n  return %0", 1, "qxf32", "invalid dimension 'q'"),
            ("  %0 = relu(%x) : tensor<2xf32\n  return %0", 2, "return", "expected '>' to close the tensor type, found 'return'"),
            ("  %0 = relu(%x) : tensor<2xf32> {name = \"abc}\n  return %0", 1, "\"abc", "unterminated string literal"),
            ("  %0:2 = relu(%x) : tensor<2xf32>\n  return %0", 2, "return", "expected ',' before the type of result 1 of relu, found 'return'"),
            ("  %0 = relu(%x) : tensor<2xf32>\n}", 2, "}", "expected 'return' before the end of the graph body"),
            ("  %c = const dense<[1, 300]> : tensor<2xi8>\n  return %c", 1, "300", "'300' is not a valid i8 element"),
            ("  %c = const dense<\"abc\"> : tensor<2xi8>\n  return %c", 1, "\"abc", "constant data must hold an even number of hex digits"),
            ("  %c = const dense<[1]> : tensor<2xf16>\n  return %c", 1, "dense", "element lists are not supported for f16"),
            ("  %0 = relu(%x) : tensor<2xf32>\n  return %0\n}\n  %1 = relu(%x)\n", 4, "%1", "expected 'graph', 'signature', 'metadata', found '%1'"),
            ("  %0 = relu(%x) : tensor<2xf32> {colour = red}\n  return %0", 1, "red", "unknown attribute 'colour' for value"),
            ("  %0 = relu(%x) : tensor<2xf32, q<0.5:1, 0.25:2>>\n  return %0", 1, "0.25:2", "duplicate 'scale' in quantization"),
            ("  %0 = relu(%x) : tensor<2xf32, q<axis 1: [0.5:1], scale [1.0]>>\n  return %0", 1, "scale [", "duplicate 'scale' in quantization"),
            ("  %0 = relu(%x, %x#1) : tensor<2xf32>\n  return %0", 1, "%x#1", "use of undefined value '%x#1'"),
            ("  %0 = relu(%x) {intermediates = [%nope]} : tensor<2xf32>\n  return %0", 1, "%nope", "use of undefined value '%nope'"),
            ("  return %x, %gone", 1, "%gone", "use of undefined value '%gone'"),
            ("  %c:2 = const dense<[1]> : tensor<1xi8>\n  return %c", 1, "%c", "'const' defines a single value"),
            ("  %c = const dense<[1]> : tensor<1xi8> {data = dense<[2]>}\n  return %c", 1, "dense<[2]", "'data' repeats the data given by the declaration"),
            ("  %c = const [1] : tensor<1xi8>\n  return %c", 1, "[1]", "expected 'dense' (constant data), found '['"),
            ("  %c = const dense<[1, 2> : tensor<2xi8>\n  return %c", 1, "> :", "expected ',' or ']' in constant elements, found '>'"),
            ("  %c = const dense<hash abc, 9 bytes, [1, 2> : tensor<2xi8>\n  return %c", 1, "1, 2>", "expected ']' to close the constant preview"),
            ("  %0 = relu(%x) : tensor<2xf32, q<axis 0: [0.5]>>\n  return %0", 1, "]>>", "expected ':' between scale and zero point, found ']'"),
            ("  %0 = relu(%x) : tensor<2xf32> {sparsity = sparse<traversal_order = [0], block_map = [], dims = [coo]>}\n  return %0", 1, "coo", "expected 'dense' or 'csr', found 'coo'"),
        ];
        for &(lines, line, needle, message) in cases {
            let text = body(lines);
            let (l, c, m) = parse_err(&text);
            assert!(m.contains(message), "message {m:?} does not contain {message:?}\n{text}");
            let src_line = text.lines().nth(line).unwrap_or("");
            let col = src_line.find(needle).map(|i| i + 1).unwrap_or(0);
            assert_eq!((l, c), (line + 1, col), "position of {m:?} in\n{text}");
        }
    }

    #[test]
    fn module_level_errors() {
        let (l, c, m) =
            parse_err("module {\n  signature \"s\" @nope inputs {} outputs {}\n  graph @g() {\n    return\n  }\n}\n");
        assert_eq!((l, c), (2, 17));
        assert!(m.contains("no graph named @nope"), "{m}");
        let (_, _, m) =
            parse_err("graph @g() {\n return\n}\ngraph @g() {\n return\n}\nsignature \"s\" @g inputs {} outputs {}");
        assert!(m.contains("several graphs are named @g"), "{m}");
        let (l, c, m) = parse_err("graph @g() {\n return\n}\nsignature \"s\" 0 inputs {\"a\" = %q} outputs {}");
        assert_eq!((l, c), (4, 31));
        assert!(m.contains("use of undefined value '%q' in signature 's'"), "{m}");
        let (_, _, m) = parse_err("signature \"s\" 3 inputs {\"a\" = %q} outputs {}");
        assert!(m.contains("refers to graph 3, but there are 0 graphs"), "{m}");
        // A signature naming a missing graph but no values is representable.
        assert_eq!(parse_module("signature \"s\" 3 inputs {} outputs {}").unwrap().signatures[0].graph, 3);
        let (l, c, m) = parse_err("module {\n");
        assert_eq!((l, c), (2, 1));
        assert!(m.contains("found end of input"), "{m}");
        let (_, _, m) = parse_err("module {} trailing");
        assert!(m.contains("expected end of input after the module, found 'trailing'"), "{m}");
        let (_, _, m) = parse_err("graph @\"bad\\q\"() {\n return\n}");
        assert!(m.contains("unknown escape"), "{m}");
        assert!(parse_graph("").is_err());
        assert_eq!(parse_module("").unwrap().graphs.len(), 0);
    }

    #[test]
    fn columns_count_characters() {
        let (l, c, _) =
            parse_err("graph @\"é\"(%x: tensor<2xf32>) {\n  %0 = relu(%x) {é} : tensor<2xf32>\n  return %0\n}");
        assert_eq!((l, c), (2, 18));
    }

    #[test]
    fn no_panic_on_truncations_and_mutations() {
        let texts = [
            EXAMPLE.to_string(),
            body("  %c = const dense<[1.0]> : tensor<1xf32, q<axis 1: [0.5:1], min [0.0], max [1.0]>>\n  return %c"),
        ];
        for text in &texts {
            let chars: Vec<(usize, char)> = text.char_indices().collect();
            for &(i, _) in &chars {
                let _ = parse_module(&text[..i]);
            }
            // Deterministic pseudo-random single-character mutations.
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let alphabet: Vec<char> = "%@#:,()[]{}<>=\"\\x0123456789-.e é\n".chars().collect();
            for _ in 0..2000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (at, _) = chars[(state % chars.len() as u64) as usize];
                let c = alphabet[((state >> 32) % alphabet.len() as u64) as usize];
                let mut mutated = text.clone();
                let end = at + mutated[at..].chars().next().map_or(0, char::len_utf8);
                mutated.replace_range(at..end, &c.to_string());
                if let Err(IrError::Parse { line, col, .. }) = parse_module(&mutated) {
                    assert!(line >= 1 && col >= 1 && line <= mutated.lines().count() + 1);
                }
            }
        }
    }
}
