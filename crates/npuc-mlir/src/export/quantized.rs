//! Quantized ops: signless integer tensors, zero points as operands, i32 accumulation and
//! `tosa.rescale` with TFLite's multipliers; int8 elementwise functions as `tosa.table`;
//! the kernels a rescale cannot match are in `exact`; ops without an integer lowering go
//! through f32 (dequantize, compute, quantize).
//!
//! Requantization follows TFLite's Prepare (facts from `tensorflow/lite/kernels/*.cc`):
//! convolutions scale by `in · filter[c] / out` per channel, ADD/SUB bring both operands to
//! `2 · max(scale)` with 20 bits of headroom, MUL scales the product by `a · b / out`.

use melior::ir::attribute::{Attribute, BoolAttribute, DenseElementsAttribute, IntegerAttribute};
use melior::ir::r#type::IntegerType;
use melior::ir::Value;
use npuc_ir::{Activation, DType, Op, OpId, TensorType};

use super::{transpose_conv_pad, Emitter, Res};
use crate::layout::{expand_rank, transpose_bytes};
use crate::lut::{int8_table, is_table_op};
use crate::requant::{int_range, rescale, scale_zp, Rescale};

/// TFLite ADD/SUB's headroom: operands are shifted left by 20 bits before rescaling.
const ADD_LEFT_SHIFT: i32 = 20;

impl<'c, 'a> Emitter<'c, 'a> {
    /// Lowers an op with quantized operands or results.
    pub(super) fn lower_quantized(&mut self, id: OpId) -> Res<Vec<Value<'c, 'a>>> {
        let g = self.graph;
        let o = g.op(id);
        let Some(&out) = o.outputs.first() else { return self.lower_plain(id) };
        let ot = g.value(out).ty.clone();
        let y = match &o.op {
            Op::Conv2d(a) => self.q_conv(id, &ot, false, a.stride, a.dilation, a.padding, a.activation)?,
            Op::DepthwiseConv2d(a) => self.q_conv(id, &ot, true, a.stride, a.dilation, a.padding, a.activation)?,
            Op::TransposeConv(a) => self.q_transpose_conv(id, &ot, a)?,
            Op::FullyConnected(a) => self.q_fully_connected(id, &ot, a)?,
            Op::Add { activation, .. } | Op::Sub { activation, .. } => {
                self.q_add_sub(id, &ot, matches!(o.op, Op::Sub { .. }), *activation)?
            }
            Op::Mul { activation } => self.q_mul(id, &ot, *activation)?,
            Op::Prelu => self.q_prelu(id, &ot)?,
            Op::Div { .. } if self.all_int8(id, &ot) => self.q_pair_table(id, &ot)?,
            Op::Softmax { beta } if self.all_int8(id, &ot) && ot.rank() > 0 => self.q_softmax(id, &ot, *beta)?,
            Op::Maximum | Op::Minimum => {
                let (a, at) = self.ranked(id, 0, ot.rank())?;
                let (b, bt) = self.ranked(id, 1, ot.rank())?;
                let a = self.requantize_to(a, &at, &ot)?;
                let b = self.requantize_to(b, &bt, &ot)?;
                let name = if matches!(o.op, Op::Maximum) { "tosa.maximum" } else { "tosa.minimum" };
                self.op(name, &[a, b], &[], self.ty(&ot.shape, ot.dtype)?)?
            }
            Op::AveragePool2d(p) => self.q_average_pool(id, &ot, p)?,
            Op::ResizeBilinear(r) if self.same_int8_quant(id, &ot) => self.q_resize_bilinear(id, &ot, r)?,
            Op::Mean { .. } | Op::Sum { .. } => self.q_reduce(id, &ot, matches!(o.op, Op::Mean { .. }))?,
            Op::Quantize => self.q_quantize(id, &ot)?,
            Op::Dequantize => {
                let (x, xt) = self.input(id, 0)?;
                self.dequantize(x, &xt)?.0
            }
            op if is_table_op(op) && self.is_int8_unary(id, &ot) => {
                let (x, xt) = self.input(id, 0)?;
                let table = int8_table(op, &xt, &ot).map_err(|r| self.unsupported(r))?;
                let values: Vec<i64> = table.into_iter().map(i64::from).collect();
                let t = self.int_const(&[256], DType::I8, &values)?;
                self.op("tosa.table", &[x, t], &[], self.ty(&ot.shape, ot.dtype)?)?
            }
            // Data movement copies elements: the integer values pass through unchanged.
            Op::Reshape { .. }
            | Op::Squeeze { .. }
            | Op::ExpandDims
            | Op::Transpose
            | Op::Slice
            | Op::StridedSlice(_)
            | Op::DepthToSpace { .. }
            | Op::SpaceToDepth { .. }
            | Op::SpaceToBatchNd
            | Op::BatchToSpaceNd
            | Op::Gather { .. }
            | Op::Split { .. }
            | Op::SplitV { .. }
            | Op::Pack { .. }
            | Op::Unpack { .. }
            | Op::ResizeNearestNeighbor(_)
            | Op::ArgMax { .. }
            | Op::MaxPool2d(_)
            | Op::Pad
            | Op::PadV2
            | Op::Concatenation { .. }
            | Op::Densify => return self.lower_plain(id),
            _ => return self.lower_through_f32(id),
        };
        Ok(vec![y])
    }

    /// Lowers the op in f32 and quantizes each result to its declared type.
    fn lower_through_f32(&mut self, id: OpId) -> Res<Vec<Value<'c, 'a>>> {
        self.float_view = true;
        let results = self.lower_plain(id);
        self.float_view = false;
        let results = results?;
        let outs = self.graph.op(id).outputs.clone();
        let mut quantized = Vec::with_capacity(results.len());
        for (r, v) in results.into_iter().zip(outs) {
            let t = self.graph.value(v).ty.clone();
            quantized.push(if t.quant.is_some() { self.quantize_f32(r, &t)? } else { r });
        }
        Ok(quantized)
    }

    fn is_int8_unary(&self, id: OpId, ot: &TensorType) -> bool {
        let o = self.graph.op(id);
        let one_operand = o.inputs.iter().flatten().count() == 1;
        let input_i8 = o.input(0).is_some_and(|v| {
            let t = &self.graph.value(v).ty;
            t.dtype == DType::I8 && t.quant.is_some()
        });
        one_operand && input_i8 && ot.dtype == DType::I8 && ot.quant.is_some()
    }

    /// Per-tensor scale and zero point of a quantized type.
    pub(super) fn qparams(&self, t: &TensorType) -> Res<(f32, i64)> {
        scale_zp(t).ok_or_else(|| self.unsupported(format!("a {} tensor without quantization", t.dtype)))
    }

    /// A `tosa.const` of integers of `dtype` (little-endian bytes of each value).
    pub(super) fn int_const(&self, shape: &[usize], dtype: DType, values: &[i64]) -> Res<Value<'c, 'a>> {
        let bytes: Vec<u8> = match dtype {
            DType::I8 => values.iter().map(|&v| v as i8 as u8).collect(),
            DType::I16 => values.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect(),
            DType::I32 => values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
            DType::I64 => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
            other => return Err(self.unsupported(format!("integer constant of {other}"))),
        };
        let ty = self.ty(shape, dtype)?;
        self.dense_const(DenseElementsAttribute::raw_buffer(ty, &bytes), ty)
    }

    pub(super) fn int_type_attr(&self, bits: u32) -> Attribute<'c> {
        melior::ir::attribute::TypeAttribute::new(IntegerType::new(self.context, bits).into()).into()
    }

    /// `tosa.rescale` of `x` (elements `in_dtype`, zero point `in_zp`) to `out` at
    /// `out_zp`, scaling by `reals` (one value, or one per channel of the last dimension).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rescale(
        &self,
        x: Value<'c, 'a>,
        shape: &[usize],
        in_dtype: DType,
        in_zp: i64,
        out_dtype: DType,
        out_zp: i64,
        reals: &[f64],
    ) -> Res<Value<'c, 'a>> {
        let mut params = Vec::with_capacity(reals.len());
        for &r in reals {
            params.push(rescale(r).ok_or_else(|| self.unsupported(format!("rescale by {r} is out of TOSA's range")))?);
        }
        self.rescale_with(x, shape, (in_dtype, in_zp), (out_dtype, out_zp), &params)
    }

    /// `tosa.rescale` with explicit multipliers and shifts.
    pub(super) fn rescale_with(
        &self,
        x: Value<'c, 'a>,
        shape: &[usize],
        (in_dtype, in_zp): (DType, i64),
        (out_dtype, out_zp): (DType, i64),
        params: &[Rescale],
    ) -> Res<Value<'c, 'a>> {
        let multipliers: Vec<i64> = params.iter().map(|p| i64::from(p.multiplier)).collect();
        let shifts: Vec<i64> = params.iter().map(|p| i64::from(p.shift)).collect();
        let n = params.len();
        let per_channel = n > 1;
        if per_channel && shape.last() != Some(&n) {
            return Err(self.unsupported(format!("{n} channel scales for a result of shape {shape:?}")));
        }
        let m = self.int_const(&[n], DType::I32, &multipliers)?;
        let s = self.int_const(&[n], DType::I8, &shifts)?;
        let izp = self.int_const(&[1], in_dtype, &[in_zp])?;
        let ozp = self.int_const(&[1], out_dtype, &[out_zp])?;
        let mode = Attribute::parse(self.context, "#tosa.rounding_mode<DOUBLE_ROUND>")
            .ok_or_else(|| self.internal("cannot build the rounding mode attribute"))?;
        let attrs = [
            ("scale32", BoolAttribute::new(self.context, true).into()),
            ("rounding_mode", mode),
            ("per_channel", BoolAttribute::new(self.context, per_channel).into()),
            ("input_unsigned", BoolAttribute::new(self.context, false).into()),
            ("output_unsigned", BoolAttribute::new(self.context, false).into()),
        ];
        self.op("tosa.rescale", &[x, m, s, izp, ozp], &attrs, self.ty(shape, out_dtype)?)
    }

    /// The integer values minus their zero point, as i32.
    pub(super) fn widen(&self, x: Value<'c, 'a>, t: &TensorType) -> Res<Value<'c, 'a>> {
        let (_, zp) = self.qparams(t)?;
        self.rescale(x, &t.shape, t.dtype, zp, DType::I32, 0, &[1.0])
    }

    /// `x` (of type `from`) brought to the quantization of `to` (a no-op if they agree or
    /// `to` is not quantized).
    pub(super) fn requantize_to(&self, x: Value<'c, 'a>, from: &TensorType, to: &TensorType) -> Res<Value<'c, 'a>> {
        if to.quant.is_none() || (from.quant == to.quant && from.dtype == to.dtype) {
            return Ok(x);
        }
        let (si, zi) = self.qparams(from)?;
        let (so, zo) = self.qparams(to)?;
        self.rescale(x, &from.shape, from.dtype, zi, to.dtype, zo, &[f64::from(si) / f64::from(so)])
    }

    pub(super) fn int_clamp(&self, x: Value<'c, 'a>, ty: &TensorType, lo: i64, hi: i64) -> Res<Value<'c, 'a>> {
        let et = super::element_type(self.context, ty.dtype).map_err(|r| self.unsupported(r))?;
        let attrs =
            [("min_val", IntegerAttribute::new(et, lo).into()), ("max_val", IntegerAttribute::new(et, hi).into())];
        self.op("tosa.clamp", &[x], &attrs, self.ty(&ty.shape, ty.dtype)?)
    }

    /// A quantized tensor as f32: `(x - zp) · scale`, as TFLite's DEQUANTIZE computes it.
    pub(super) fn dequantize(&mut self, x: Value<'c, 'a>, t: &TensorType) -> Res<(Value<'c, 'a>, TensorType)> {
        let q = t.quant.as_ref().ok_or_else(|| self.internal("dequantize of an unquantized tensor"))?;
        let ft = TensorType::new(DType::F32, t.shape.clone());
        let scale = if q.scale.len() == 1 {
            self.splat(&vec![1; t.rank()], DType::F32, f64::from(q.scale[0]))?
        } else {
            // Per-channel: the scales broadcast along the quantized axis.
            let axis = q.axis as usize;
            if t.shape.get(axis) != Some(&q.scale.len()) {
                return Err(self.unsupported(format!("{} scales along axis {axis} of {:?}", q.scale.len(), t.shape)));
            }
            let mut shape = vec![1; t.rank()];
            shape[axis] = q.scale.len();
            let bytes: Vec<u8> = q.scale.iter().flat_map(|s| s.to_le_bytes()).collect();
            self.bytes_const(&shape, DType::F32, &bytes)?
        };
        let zp = q.zero_point.first().copied().unwrap_or(0);
        if q.zero_point.iter().any(|&z| z != zp) {
            return Err(self.unsupported("per-channel zero points"));
        }
        let wide = if t.dtype == DType::I32 && zp == 0 {
            x
        } else {
            self.rescale(x, &t.shape, t.dtype, zp, DType::I32, 0, &[1.0])?
        };
        let f = self.op("tosa.cast", &[wide], &[], self.ty(&t.shape, DType::F32)?)?;
        let shift = self.shift()?;
        let y = self.op("tosa.mul", &[f, scale, shift], &[], self.ty(&t.shape, DType::F32)?)?;
        Ok((y, ft))
    }

    /// An f32 tensor quantized to `t`: `clamp(round(x / scale) + zp)`.
    fn quantize_f32(&mut self, x: Value<'c, 'a>, t: &TensorType) -> Res<Value<'c, 'a>> {
        let (scale, zp) = self.qparams(t)?;
        let (lo, hi) = int_range(t.dtype).ok_or_else(|| self.unsupported(format!("quantize to {}", t.dtype)))?;
        let ones = vec![1; t.rank()];
        let inv = self.splat(&ones, DType::F32, 1.0 / f64::from(scale))?;
        let shift = self.shift()?;
        let scaled = self.op("tosa.mul", &[x, inv, shift], &[], self.ty(&t.shape, DType::F32)?)?;
        let i = self.op("tosa.cast", &[scaled], &[], self.ty(&t.shape, DType::I32)?)?;
        let z = self.int_const(&ones, DType::I32, &[zp])?;
        let i = self.op("tosa.add", &[i, z], &[], self.ty(&t.shape, DType::I32)?)?;
        let wide = TensorType::new(DType::I32, t.shape.clone());
        let i = self.int_clamp(i, &wide, lo, hi)?;
        if t.dtype == DType::I32 {
            return Ok(i);
        }
        self.op("tosa.cast", &[i], &[], self.ty(&t.shape, t.dtype)?)
    }

    /// The padding element of a tensor: its zero point when quantized, else zero.
    pub(super) fn pad_zero(&mut self, t: &TensorType) -> Res<Value<'c, 'a>> {
        if t.dtype.is_float() {
            return self.splat(&[1], t.dtype, 0.0);
        }
        let zp = scale_zp(t).map_or(0, |(_, z)| z);
        self.int_const(&[1], t.dtype, &[zp])
    }

    /// The i32 bias of a quantized conv-like op, zeros when it has none.
    fn int_bias(&mut self, id: OpId, slot: usize, len: usize) -> Res<Value<'c, 'a>> {
        if self.graph.op(id).input(slot).is_none() {
            return self.int_const(&[len], DType::I32, &vec![0; len]);
        }
        let (b, bt) = self.input(id, slot)?;
        if bt.dtype != DType::I32 {
            return Err(self.unsupported(format!("a {} bias (int16 activations need 48-bit accumulators)", bt.dtype)));
        }
        self.reshape(b, &bt.shape, &[len], bt.dtype)
    }

    /// Per-channel real multipliers `in · filter[c] / out` (in double, as TFLite's
    /// `PopulateConvolutionQuantizationParams`).
    fn channel_reals(&self, xt: &TensorType, wt: &TensorType, ot: &TensorType, channels: usize) -> Res<Vec<f64>> {
        let (sx, _) = self.qparams(xt)?;
        let (so, _) = self.qparams(ot)?;
        let ws = &wt.quant.as_ref().ok_or_else(|| self.unsupported("the filter is not quantized"))?.scale;
        if ws.len() != 1 && ws.len() != channels {
            return Err(self.unsupported(format!("the filter has {} scales for {channels} channels", ws.len())));
        }
        let reals: Vec<f64> = (0..channels)
            .map(|c| f64::from(sx) * f64::from(ws[if ws.len() == 1 { 0 } else { c }]) / f64::from(so))
            .collect();
        Ok(if reals.iter().all(|&r| r == reals[0]) { vec![reals[0]] } else { reals })
    }

    fn check_int8(&self, t: &TensorType, what: &str) -> Res<()> {
        if t.dtype != DType::I8 {
            return Err(self.unsupported(format!("{what} is {} (only int8 convolutions are exported)", t.dtype)));
        }
        Ok(())
    }

    /// The i32 accumulator's rescale to the result, its activation, and the cost anchor.
    fn finish_acc(&self, acc: Value<'c, 'a>, ot: &TensorType, reals: &[f64], act: Activation) -> Res<Value<'c, 'a>> {
        let (_, zo) = self.qparams(ot)?;
        let y = self.rescale(acc, &ot.shape, DType::I32, 0, ot.dtype, zo, reals)?;
        let y = self.activation(y, act, ot)?;
        self.pre_activation.set(Some(acc));
        Ok(y)
    }

    #[allow(clippy::too_many_arguments)]
    fn q_conv(
        &mut self,
        id: OpId,
        ot: &TensorType,
        depthwise: bool,
        stride: [u32; 2],
        dilation: [u32; 2],
        padding: npuc_ir::Padding,
        act: Activation,
    ) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        let wid = self.graph.op(id).input(1).ok_or_else(|| self.unsupported("filter is missing"))?;
        let wt = self.graph.value(wid).ty.clone();
        self.check_int8(&xt, "the input")?;
        self.check_int8(&wt, "the filter")?;
        if wt.rank() != 4 || xt.rank() != 4 || xt.shape[3] == 0 {
            return Err(self.unsupported("needs an NHWC input and a rank-4 filter"));
        }
        let (_, zx) = self.qparams(&xt)?;
        let channels = if depthwise { wt.shape[3] } else { wt.shape[0] };
        let w = if depthwise {
            let c = xt.shape[3];
            self.as_shape(id, 1, &[wt.shape[1], wt.shape[2], c, wt.shape[3] / c])?
        } else {
            self.input(id, 1)?.0
        };
        let (x, pad) = self.spatial(x, &xt, [wt.shape[1], wt.shape[2]], stride, dilation, padding, ot)?;
        let b = self.int_bias(id, 2, channels)?;
        let izp = self.int_const(&[1], DType::I8, &[zx])?;
        // TFLite's int8 filters are symmetric (zero point 0).
        let wzp = self.int_const(&[1], DType::I8, &[0])?;
        let attrs = [
            ("acc_type", self.int_type_attr(32)),
            ("pad", self.array(&pad)),
            ("stride", self.array(&stride.map(i64::from))),
            ("dilation", self.array(&dilation.map(i64::from))),
        ];
        let name = if depthwise { "tosa.depthwise_conv2d" } else { "tosa.conv2d" };
        let acc = self.op(name, &[x, w, b, izp, wzp], &attrs, self.ty(&ot.shape, DType::I32)?)?;
        let reals = self.channel_reals(&xt, &wt, ot, channels)?;
        self.finish_acc(acc, ot, &reals, act)
    }

    fn q_transpose_conv(&mut self, id: OpId, ot: &TensorType, a: &npuc_ir::TransposeConvAttrs) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 2)?;
        let (w, wt) = self.input(id, 1)?;
        self.check_int8(&xt, "the input")?;
        self.check_int8(&wt, "the filter")?;
        if wt.rank() != 4 || xt.rank() != 4 || ot.rank() != 4 {
            return Err(self.unsupported("needs NHWC input/output and an OHWI filter"));
        }
        let (_, zx) = self.qparams(&xt)?;
        let out_pad = transpose_conv_pad(&xt, &wt, a, ot);
        let b = self.int_bias(id, 3, wt.shape[0])?;
        let izp = self.int_const(&[1], DType::I8, &[zx])?;
        let wzp = self.int_const(&[1], DType::I8, &[0])?;
        let attrs = [
            ("acc_type", self.int_type_attr(32)),
            ("out_pad", self.array(&out_pad)),
            ("stride", self.array(&a.stride.map(i64::from))),
        ];
        let acc = self.op("tosa.transpose_conv2d", &[x, w, b, izp, wzp], &attrs, self.ty(&ot.shape, DType::I32)?)?;
        let reals = self.channel_reals(&xt, &wt, ot, wt.shape[0])?;
        self.finish_acc(acc, ot, &reals, a.activation)
    }

    fn q_fully_connected(&mut self, id: OpId, ot: &TensorType, a: &npuc_ir::FullyConnectedAttrs) -> Res<Value<'c, 'a>> {
        if a.shuffled_weights {
            return Err(self.unsupported("shuffled weights"));
        }
        let (x, xt) = self.input(id, 0)?;
        let wid = self.graph.op(id).input(1).ok_or_else(|| self.unsupported("weights are missing"))?;
        let wv = self.graph.value(wid);
        let wt = wv.ty.clone();
        self.check_int8(&xt, "the input")?;
        self.check_int8(&wt, "the weights")?;
        let (n, k, rows) = self.fc_rows(&xt, &wt)?;
        let (_, zx) = self.qparams(&xt)?;
        let x3 = self.reshape(x, &xt.shape, &[1, rows, k], xt.dtype)?;
        let w3 = match (wv.producer, wv.data.as_ref().and_then(|d| d.bytes()), &wv.sparsity) {
            (None, Some(bytes), None) => {
                let t = transpose_bytes(bytes, &wt.shape, &[1, 0], 1)
                    .ok_or_else(|| self.unsupported("weights do not match their shape"))?;
                self.bytes_const(&[1, k, n], wt.dtype, &t)?
            }
            _ => {
                let (w, _) = self.input(id, 1)?;
                let t = self.transpose(w, &wt.shape, &[1, 0], wt.dtype)?;
                self.reshape(t, &[k, n], &[1, k, n], wt.dtype)?
            }
        };
        let azp = self.int_const(&[1], DType::I8, &[zx])?;
        let bzp = self.int_const(&[1], DType::I8, &[0])?;
        let mm = self.op("tosa.matmul", &[x3, w3, azp, bzp], &[], self.ty(&[1, rows, n], DType::I32)?)?;
        let acc = self.reshape(mm, &[1, rows, n], &ot.shape, DType::I32)?;
        let acc = if self.graph.op(id).input(2).is_some() {
            let (b, bt) = self.input(id, 2)?;
            if bt.dtype != DType::I32 {
                return Err(self.unsupported(format!("a {} bias", bt.dtype)));
            }
            let b = self.reshape(b, &bt.shape, &expand_rank(&[n], ot.rank()), DType::I32)?;
            self.op("tosa.add", &[acc, b], &[], self.ty(&ot.shape, DType::I32)?)?
        } else {
            acc
        };
        let reals = self.channel_reals(&xt, &wt, ot, n)?;
        let y = self.finish_acc(acc, ot, &reals, a.activation)?;
        self.pre_activation.set(Some(mm));
        Ok(y)
    }

    /// ADD/SUB as TFLite computes them: each operand `(x - zp) << 20`, then scaled by
    /// `scale / (2 · max scale)` (two rescales, so the second rounds exactly as TFLite's
    /// `MultiplyByQuantizedMultiplierSmallerThanOneExp` of the shifted value), summed in
    /// i32 and rescaled by `2 · max scale / (2^20 · out scale)`.
    fn q_add_sub(&mut self, id: OpId, ot: &TensorType, sub: bool, act: Activation) -> Res<Value<'c, 'a>> {
        let (a, at) = self.ranked(id, 0, ot.rank())?;
        let (b, bt) = self.ranked(id, 1, ot.rank())?;
        let ((sa, za), (sb, zb), (so, zo)) = (self.qparams(&at)?, self.qparams(&bt)?, self.qparams(ot)?);
        let twice_max = 2.0 * f64::from(sa.max(sb));
        let headroom = f64::from(1u32 << ADD_LEFT_SHIFT);
        let mut scaled = Vec::new();
        for (x, t, s, z) in [(a, &at, sa, za), (b, &bt, sb, zb)] {
            let shifted = self.rescale(x, &t.shape, t.dtype, z, DType::I32, 0, &[headroom])?;
            scaled.push(self.rescale(shifted, &t.shape, DType::I32, 0, DType::I32, 0, &[f64::from(s) / twice_max])?);
        }
        let name = if sub { "tosa.sub" } else { "tosa.add" };
        let s = self.op(name, &scaled, &[], self.ty(&ot.shape, DType::I32)?)?;
        let y = self.rescale(s, &ot.shape, DType::I32, 0, ot.dtype, zo, &[twice_max / (headroom * f64::from(so))])?;
        let y = self.activation(y, act, ot)?;
        self.pre_activation.set(Some(s));
        Ok(y)
    }

    /// PRELU as TFLite's reference kernel: `x - zp` rescaled by `in / out` where it is
    /// non-negative, else `(x - zp) · (alpha - alpha zp)` rescaled by `in · alpha / out`.
    fn q_prelu(&mut self, id: OpId, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.ranked(id, 0, ot.rank())?;
        let (al, alt) = self.ranked(id, 1, ot.rank())?;
        let ((sx, _), (sa, _), (so, zo)) = (self.qparams(&xt)?, self.qparams(&alt)?, self.qparams(ot)?);
        if xt.shape != ot.shape {
            return Err(self.unsupported("the input must have the result's shape"));
        }
        let x32 = self.widen(x, &xt)?;
        let a32 = self.widen(al, &alt)?;
        let pos = self.rescale(x32, &ot.shape, DType::I32, 0, ot.dtype, zo, &[f64::from(sx) / f64::from(so)])?;
        let shift = self.shift()?;
        let prod = self.op("tosa.mul", &[x32, a32, shift], &[], self.ty(&ot.shape, DType::I32)?)?;
        let real = f64::from(sx) * f64::from(sa) / f64::from(so);
        let neg = self.rescale(prod, &ot.shape, DType::I32, 0, ot.dtype, zo, &[real])?;
        let zero = self.int_const(&vec![1; ot.rank()], DType::I32, &[0])?;
        let ge = self.op("tosa.greater_equal", &[x32, zero], &[], self.ty(&ot.shape, DType::Bool)?)?;
        self.op("tosa.select", &[ge, pos, neg], &[], self.ty(&ot.shape, ot.dtype)?)
    }

    fn q_mul(&mut self, id: OpId, ot: &TensorType, act: Activation) -> Res<Value<'c, 'a>> {
        let (a, at) = self.ranked(id, 0, ot.rank())?;
        let (b, bt) = self.ranked(id, 1, ot.rank())?;
        let ((sa, _), (sb, _), (so, zo)) = (self.qparams(&at)?, self.qparams(&bt)?, self.qparams(ot)?);
        let a32 = self.widen(a, &at)?;
        let b32 = self.widen(b, &bt)?;
        let shift = self.shift()?;
        let p = self.op("tosa.mul", &[a32, b32, shift], &[], self.ty(&ot.shape, DType::I32)?)?;
        let real = f64::from(sa) * f64::from(sb) / f64::from(so);
        let y = self.rescale(p, &ot.shape, DType::I32, 0, ot.dtype, zo, &[real])?;
        let y = self.activation(y, act, ot)?;
        self.pre_activation.set(Some(p));
        Ok(y)
    }

    /// QUANTIZE from f32 (scale, round, offset, clamp) or between integer quantizations
    /// (int8 to int8 is a table, anything else a rescale).
    fn q_quantize(&mut self, id: OpId, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        if xt.dtype.is_float() {
            let x = if xt.dtype == DType::F32 {
                x
            } else {
                self.op("tosa.cast", &[x], &[], self.ty(&xt.shape, DType::F32)?)?
            };
            return self.quantize_f32(x, ot);
        }
        if self.is_int8_unary(id, ot) {
            let table = int8_table(&Op::Quantize, &xt, ot).map_err(|r| self.unsupported(r))?;
            let values: Vec<i64> = table.into_iter().map(i64::from).collect();
            let t = self.int_const(&[256], DType::I8, &values)?;
            return self.op("tosa.table", &[x, t], &[], self.ty(&ot.shape, ot.dtype)?);
        }
        self.requantize_to(x, &xt, ot)
    }
}
