//! int8 ops lowered to reproduce TFLite's fixed-point kernels exactly where a plain rescale
//! would round differently: AVERAGE_POOL_2D, MEAN/SUM, RESIZE_BILINEAR, SOFTMAX, and DIV
//! (as a table). Each follows the integer arithmetic of npuc's interpreter, which
//! reproduces LiteRT's reference kernels, and takes its tables and multipliers from it.

use melior::ir::attribute::{BoolAttribute, DenseElementsAttribute};
use melior::ir::Value;
use npuc_ir::{DType, OpId, TensorType};

use super::{Emitter, Res};
use crate::lut::int8_pair_table;
use crate::requant::{activation_range, from_tflite, int_range, Rescale};

impl<'c, 'a> Emitter<'c, 'a> {
    /// AVERAGE_POOL_2D as TFLite's integer kernel: the window sum of the raw values (a
    /// depthwise convolution with a filter of ones, padding contributing nothing) divided
    /// by the number of in-bounds taps with ties away from zero, clamped to the fused
    /// activation's range. (`tosa.avg_pool2d` subtracts the zero point and divides by a
    /// fixed-point reciprocal, which rounds differently.)
    pub(super) fn q_average_pool(&mut self, id: OpId, ot: &TensorType, p: &npuc_ir::Pool2dAttrs) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        if xt.dtype != DType::I8 || ot.dtype != DType::I8 || xt.rank() != 4 || ot.rank() != 4 {
            return Err(self.unsupported("needs int8 NHWC input and result"));
        }
        let kernel = [p.filter[0] as usize, p.filter[1] as usize];
        let (x, pad) = self.spatial(x, &xt, kernel, p.stride, [1, 1], p.padding, ot)?;
        let c = xt.shape[3];
        let ones = self.int_const(&[kernel[0], kernel[1], c, 1], DType::I8, &vec![1; kernel[0] * kernel[1] * c])?;
        let bias = self.int_const(&[c], DType::I32, &vec![0; c])?;
        let zp = self.int_const(&[1], DType::I8, &[0])?;
        let attrs = [
            ("acc_type", self.int_type_attr(32)),
            ("pad", self.array(&pad)),
            ("stride", self.array(&p.stride.map(i64::from))),
            ("dilation", self.array(&[1, 1])),
        ];
        let acc_ty = self.ty(&ot.shape, DType::I32)?;
        let acc = self.op("tosa.depthwise_conv2d", &[x, ones, bias, zp, zp], &attrs, acc_ty)?;
        // Taps inside the input per output position (TFLite's filter_count).
        let (oh, ow) = (ot.shape[1], ot.shape[2]);
        let inside = |o: usize, stride: u32, before: i64, k: usize, size: usize| -> i64 {
            let origin = (o as i64) * i64::from(stride) - before;
            let start = (-origin).max(0);
            let end = (k as i64).min(size as i64 - origin);
            (end - start).max(0)
        };
        let mut counts = Vec::with_capacity(oh * ow);
        let mut halves = Vec::with_capacity(oh * ow);
        for oy in 0..oh {
            for ox in 0..ow {
                let n = inside(oy, p.stride[0], pad[0], kernel[0], xt.shape[1])
                    * inside(ox, p.stride[1], pad[2], kernel[1], xt.shape[2]);
                counts.push(n.max(1));
                halves.push(n / 2);
            }
        }
        let n = self.int_const(&[1, oh, ow, 1], DType::I32, &counts)?;
        let half = self.int_const(&[1, oh, ow, 1], DType::I32, &halves)?;
        let avg = self.div_round_away(acc, &ot.shape, half, n)?;
        let (lo, hi) = activation_range(p.activation, ot)
            .ok_or_else(|| self.unsupported(format!("fused activation {:?}", p.activation)))?;
        let wide = TensorType::new(DType::I32, ot.shape.clone());
        let avg = self.int_clamp(avg, &wide, lo, hi)?;
        let y = self.op("tosa.cast", &[avg], &[], self.ty(&ot.shape, ot.dtype)?)?;
        self.pre_activation.set(Some(acc));
        Ok(y)
    }

    /// Whether every operand and the result are quantized int8.
    pub(super) fn all_int8(&self, id: OpId, ot: &TensorType) -> bool {
        let o = self.graph.op(id);
        o.inputs.iter().all(|v| {
            v.is_some_and(|v| {
                let t = &self.graph.value(v).ty;
                t.dtype == DType::I8 && t.quant.is_some()
            })
        }) && ot.dtype == DType::I8
            && ot.quant.is_some()
    }

    /// A binary int8 op as a 64 Ki-entry table the interpreter computed, indexed by
    /// `(a + 128) · 256 + (b + 128)` through `tosa.gather`.
    pub(super) fn q_pair_table(&mut self, id: OpId, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (a, at) = self.ranked(id, 0, ot.rank())?;
        let (b, bt) = self.ranked(id, 1, ot.rank())?;
        let table = int8_pair_table(&self.graph.op(id).op, &at, &bt, ot).map_err(|r| self.unsupported(r))?;
        let values: Vec<i64> = table.into_iter().map(i64::from).collect();
        let t = self.int_const(&[1, 256 * 256, 1], DType::I8, &values)?;
        let ones = vec![1; ot.rank()];
        let a32 = self.rescale(a, &at.shape, DType::I8, 0, DType::I32, 0, &[1.0])?;
        let b32 = self.rescale(b, &bt.shape, DType::I8, 0, DType::I32, 0, &[1.0])?;
        let k = self.int_const(&ones, DType::I32, &[256])?;
        let shift = self.shift()?;
        let wide = self.ty(&ot.shape, DType::I32)?;
        let hi = self.op("tosa.mul", &[a32, k, shift], &[], self.ty(&at.shape, DType::I32)?)?;
        let idx = self.op("tosa.add", &[hi, b32], &[], wide)?;
        let base = self.int_const(&ones, DType::I32, &[128 * 256 + 128])?;
        let idx = self.op("tosa.add", &[idx, base], &[], wide)?;
        let count: usize = ot.shape.iter().product();
        let idx = self.reshape(idx, &ot.shape, &[1, count], DType::I32)?;
        let y = self.op("tosa.gather", &[t, idx], &[], self.ty(&[1, count, 1], DType::I8)?)?;
        self.reshape(y, &[1, count, 1], &ot.shape, ot.dtype)
    }

    /// `tosa.mul` of i32 tensors with a right shift of 31: `(a·b + 2^30) >> 31`, which is
    /// gemmlowp's `SaturatingRoundingDoublingHighMul` (its nudge for negative products
    /// rounds the same way) but for the single saturating case `a = b = i32::MIN`.
    fn mul_high(&mut self, a: Value<'c, 'a>, b: Value<'c, 'a>, shape: &[usize]) -> Res<Value<'c, 'a>> {
        let ty = self.ty(&[1], DType::I8)?;
        let shift = self.dense_const(DenseElementsAttribute::i8_values(ty, &[31]), ty)?;
        self.op("tosa.mul", &[a, b, shift], &[], self.ty(shape, DType::I32)?)
    }

    /// An i32 tensor times `2^k` (k = 1, 2), saturating (gemmlowp's
    /// `SaturatingRoundingMultiplyByPOT`), as a rescale, which saturates to its type.
    fn times_pot(&self, x: Value<'c, 'a>, shape: &[usize], k: i8) -> Res<Value<'c, 'a>> {
        let p = Rescale { multiplier: 1 << 30, shift: 30 - k };
        self.rescale_with(x, shape, (DType::I32, 0), (DType::I32, 0), &[p])
    }

    /// int8 SOFTMAX as TFLite's reference kernel (gemmlowp fixed point): per element the
    /// exponential of `x - max` from the interpreter's table
    /// ([`npuc_interp::softmax_8bit_exp_table`]), their sum in Q12.19, its reciprocal by
    /// `GetReciprocal` (count leading zeros, normalize, three Newton-Raphson steps of
    /// `1 / (1 + x)` in Q2.29), and each output `exp · 1/sum` shifted by `35 - clz(sum)`
    /// with rounding, offset by -128.
    pub(super) fn q_softmax(&mut self, id: OpId, ot: &TensorType, beta: f32) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        let (sx, _) = self.qparams(&xt)?;
        let (so, zo) = self.qparams(ot)?;
        if zo != -128 || (f64::from(so) - 1.0 / 256.0).abs() > 0.001 / 256.0 {
            return Err(self.unsupported("int8 softmax needs the output quantization 1/256 : -128"));
        }
        let shape = xt.shape.clone();
        let axis = shape.len() - 1;
        let mut row = shape.clone();
        let count: usize = shape.iter().product();
        let ones = vec![1; shape.len()];
        let i32c = |em: &Self, v: i64| em.int_const(&ones, DType::I32, &[v]);
        let mx = self.reduce("tosa.reduce_max", x, &mut row, axis, DType::I8)?;
        let x32 = self.rescale(x, &shape, DType::I8, 0, DType::I32, 0, &[1.0])?;
        let m32 = self.rescale(mx, &row, DType::I8, 0, DType::I32, 0, &[1.0])?;
        let diff = self.op("tosa.sub", &[x32, m32], &[], self.ty(&shape, DType::I32)?)?;
        let off = i32c(self, 255)?;
        let idx = self.op("tosa.add", &[diff, off], &[], self.ty(&shape, DType::I32)?)?;
        let idx = self.reshape(idx, &shape, &[1, count], DType::I32)?;
        let table: Vec<i64> = npuc_interp::softmax_8bit_exp_table(sx, beta).into_iter().map(i64::from).collect();
        let table = self.int_const(&[1, 256, 1], DType::I32, &table)?;
        let e = self.op("tosa.gather", &[table, idx], &[], self.ty(&[1, count, 1], DType::I32)?)?;
        let e = self.reshape(e, &[1, count, 1], &shape, DType::I32)?;
        // Q0.31 -> Q12.19 (Rescale<12>: a rounding right shift of 12; the values are >= 0).
        let twelve = i32c(self, 12)?;
        let round = [("round", BoolAttribute::new(self.context, true).into())];
        let acc = self.op("tosa.arithmetic_right_shift", &[e, twelve], &round, self.ty(&shape, DType::I32)?)?;
        let sum = self.reduce("tosa.reduce_sum", acc, &mut row.clone(), axis, DType::I32)?;
        // GetReciprocal(sum, 12).
        let rt = self.ty(&row, DType::I32)?;
        let h = self.op("tosa.clz", &[sum], &[], rt)?;
        let shifted = self.op("tosa.logical_left_shift", &[sum, h], &[], rt)?;
        let min = i32c(self, i64::from(i32::MIN))?;
        let a = self.op("tosa.add", &[shifted, min], &[], rt)?;
        // RoundingHalfSum(a, One) for a >= 0: (a >> 1) + 2^30.
        let one_bit = i32c(self, 1)?;
        let no_round = [("round", BoolAttribute::new(self.context, false).into())];
        let half = self.op("tosa.arithmetic_right_shift", &[a, one_bit], &no_round, rt)?;
        let q30 = i32c(self, 1 << 30)?;
        let hd = self.op("tosa.add", &[half, q30], &[], rt)?;
        // 48/17 and -32/17 in Q2.29 (gemmlowp's constants), then x += 4·(x·(1 - hd·x)).
        let c48 = i32c(self, 1_515_870_810)?;
        let cn32 = i32c(self, -1_010_580_540)?;
        let t = self.mul_high(hd, cn32, &row)?;
        let mut r = self.op("tosa.add", &[c48, t], &[], rt)?;
        let one_q2 = i32c(self, 1 << 29)?;
        for _ in 0..3 {
            let t = self.mul_high(hd, r, &row)?;
            let om = self.op("tosa.sub", &[one_q2, t], &[], rt)?;
            let p = self.mul_high(r, om, &row)?;
            let p = self.times_pot(p, &row, 2)?;
            r = self.op("tosa.add", &[r, p], &[], rt)?;
        }
        let scale = self.times_pot(r, &row, 1)?;
        // exponent = num_bits_over_unit + 31 - 8 = (12 - clz) + 23.
        let c35 = i32c(self, 35)?;
        let exponent = self.op("tosa.sub", &[c35, h], &[], rt)?;
        let v = self.mul_high(scale, e, &shape)?;
        let st = self.ty(&shape, DType::I32)?;
        let unsat = self.op("tosa.arithmetic_right_shift", &[v, exponent], &round, st)?;
        let base = i32c(self, -128)?;
        let y = self.op("tosa.add", &[unsat, base], &[], st)?;
        let y = self.int_clamp(y, &TensorType::new(DType::I32, shape.clone()), -128, 127)?;
        let y = self.op("tosa.cast", &[y], &[], self.ty(&shape, ot.dtype)?)?;
        self.pre_activation.set(Some(sum));
        self.reshape(y, &shape, &ot.shape, ot.dtype)
    }

    /// Whether operand 0 and the result are int8 with the same quantization (the values
    /// then pass through an integer kernel without requantization).
    pub(super) fn same_int8_quant(&self, id: OpId, ot: &TensorType) -> bool {
        self.graph.op(id).input(0).is_some_and(|v| {
            let t = &self.graph.value(v).ty;
            t.dtype == DType::I8 && ot.dtype == DType::I8 && t.quant == ot.quant
        })
    }

    /// `(acc + sign(acc)·half) / n`: integer division rounding ties away from zero, as
    /// TFLite's kernels write it (`half` and `n` broadcast against `acc`).
    fn div_round_away(
        &mut self,
        acc: Value<'c, 'a>,
        shape: &[usize],
        half: Value<'c, 'a>,
        n: Value<'c, 'a>,
    ) -> Res<Value<'c, 'a>> {
        let ty = self.ty(shape, DType::I32)?;
        let up = self.op("tosa.add", &[acc, half], &[], ty)?;
        let down = self.op("tosa.sub", &[acc, half], &[], ty)?;
        let zero = self.int_const(&vec![1; shape.len()], DType::I32, &[0])?;
        let positive = self.op("tosa.greater", &[acc, zero], &[], self.ty(shape, DType::Bool)?)?;
        let biased = self.op("tosa.select", &[positive, up, down], &[], ty)?;
        self.op("tosa.intdiv", &[biased, n], &[], ty)
    }

    /// int8 RESIZE_BILINEAR as TFLite's `ResizeBilinearInteger`: per axis, gather the lower
    /// and upper source rows (columns) and weight them by `1024 - f` and `f` (Q10 taps from
    /// the interpreter's [`npuc_interp::bilinear_taps_q10`]), then divide the Q20 sum by
    /// 2^20 with ties away from zero. Separable, so rows are mixed first, then columns.
    pub(super) fn q_resize_bilinear(
        &mut self,
        id: OpId,
        ot: &TensorType,
        r: &npuc_ir::ResizeAttrs,
    ) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        if xt.rank() != 4 || ot.rank() != 4 {
            return Err(self.unsupported("needs NHWC input and output"));
        }
        let [n, h, w, c] = [xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3]];
        let (oh, ow) = (ot.shape[1], ot.shape[2]);
        let x32 = self.rescale(x, &xt.shape, DType::I8, 0, DType::I32, 0, &[1.0])?;
        // Rows: [N, H, W·C] gathered at the lower and upper taps of each output row.
        let rows = self.reshape(x32, &xt.shape, &[n, h, w * c], DType::I32)?;
        let ty = npuc_interp::bilinear_taps_q10(h, oh, r.align_corners, r.half_pixel_centers);
        let mixed = self.mix_taps(rows, [n, h, w * c], &ty)?;
        // Columns: [N·OH, W, C] gathered at the taps of each output column.
        let cols = self.reshape(mixed, &[n, oh, w * c], &[n * oh, w, c], DType::I32)?;
        let tx = npuc_interp::bilinear_taps_q10(w, ow, r.align_corners, r.half_pixel_centers);
        let acc = self.mix_taps(cols, [n * oh, w, c], &tx)?;
        let shape = [n * oh, ow, c];
        let half = self.int_const(&[1, 1, 1], DType::I32, &[1 << 19])?;
        let div = self.int_const(&[1, 1, 1], DType::I32, &[1 << 20])?;
        let y = self.div_round_away(acc, &shape, half, div)?;
        let y = self.op("tosa.cast", &[y], &[], self.ty(&shape, ot.dtype)?)?;
        self.reshape(y, &shape, &ot.shape, ot.dtype)
    }

    /// `v[lower]·(1024 - f) + v[upper]·f` along the middle axis of `[B, K, C]` i32 values,
    /// one tap per output index: `[B, taps, C]`.
    fn mix_taps(&mut self, v: Value<'c, 'a>, [b, _, c]: [usize; 3], taps: &[(i32, i32, i32)]) -> Res<Value<'c, 'a>> {
        let t = taps.len();
        let out = [b, t, c];
        let ty = self.ty(&out, DType::I32)?;
        let gather = |em: &mut Self, pick: fn(&(i32, i32, i32)) -> i32| -> Res<Value<'c, 'a>> {
            let idx: Vec<i64> = (0..b).flat_map(|_| taps.iter().map(|tap| i64::from(pick(tap)))).collect();
            let idx = em.int_const(&[b, t], DType::I32, &idx)?;
            em.op("tosa.gather", &[v, idx], &[], ty)
        };
        let lower = gather(self, |tap| tap.0)?;
        let upper = gather(self, |tap| tap.1)?;
        let wl: Vec<i64> = taps.iter().map(|tap| i64::from((1 << 10) - tap.2)).collect();
        let wu: Vec<i64> = taps.iter().map(|tap| i64::from(tap.2)).collect();
        let wl = self.int_const(&[1, t, 1], DType::I32, &wl)?;
        let wu = self.int_const(&[1, t, 1], DType::I32, &wu)?;
        let shift = self.shift()?;
        let a = self.op("tosa.mul", &[lower, wl, shift], &[], ty)?;
        let bb = self.op("tosa.mul", &[upper, wu, shift], &[], ty)?;
        self.op("tosa.add", &[a, bb], &[], ty)
    }

    /// MEAN / SUM over constant axes of the i32 sum of `x - zp`. MEAN rescales it with
    /// LiteRT's multiplier (`in / out` with `1 / count` folded in, the interpreter's
    /// [`npuc_interp::mean_multiplier`]); SUM, whose LiteRT kernel works in f32, is
    /// `round(sum · (in / out)) + zp` in f32 with TFLite's rounding.
    pub(super) fn q_reduce(&mut self, id: OpId, ot: &TensorType, mean: bool) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        let (sx, zx) = self.qparams(&xt)?;
        let (so, zo) = self.qparams(ot)?;
        let axes = self.reduce_axes(id, xt.rank())?;
        let raw = TensorType::new(DType::I32, xt.shape.clone());
        let mut y =
            if mean { self.widen(x, &xt)? } else { self.rescale(x, &xt.shape, xt.dtype, 0, DType::I32, 0, &[1.0])? };
        let mut shape = raw.shape.clone();
        let mut count = 1usize;
        for &a in &axes {
            count *= shape[a];
            y = self.reduce("tosa.reduce_sum", y, &mut shape, a, DType::I32)?;
        }
        let sum = y;
        let y = if mean {
            let q = npuc_interp::mean_multiplier(sx, so, count);
            let p = from_tflite(q).ok_or_else(|| self.unsupported(format!("mean multiplier {q:?} is out of range")))?;
            self.rescale_with(sum, &shape, (DType::I32, 0), (ot.dtype, zo), &[p])?
        } else {
            // LiteRT's SUM: scale = in / out and bias = -zp · scale · count, both f32.
            let scale = sx / so;
            let bias = (-zx) as f32 * scale * count as f32;
            let st = TensorType::new(DType::F32, shape.clone());
            let f = self.op("tosa.cast", &[sum], &[], self.ty(&shape, DType::F32)?)?;
            let ones = vec![1; shape.len()];
            let k = self.splat(&ones, DType::F32, f64::from(scale))?;
            let f = self.mul(f, k, &st)?;
            let b = self.splat(&ones, DType::F32, f64::from(bias))?;
            let f = self.op("tosa.add", &[f, b], &[], self.ty(&shape, DType::F32)?)?;
            let r = self.round_half_away(f, &st)?;
            let i = self.op("tosa.cast", &[r], &[], self.ty(&shape, DType::I32)?)?;
            let z = self.int_const(&ones, DType::I32, &[zo])?;
            let i = self.op("tosa.add", &[i, z], &[], self.ty(&shape, DType::I32)?)?;
            let (lo, hi) = int_range(ot.dtype).ok_or_else(|| self.unsupported(format!("SUM to {}", ot.dtype)))?;
            let i = self.int_clamp(i, &TensorType::new(DType::I32, shape.clone()), lo, hi)?;
            self.op("tosa.cast", &[i], &[], self.ty(&shape, ot.dtype)?)?
        };
        let y = self.reshape(y, &shape, &ot.shape, ot.dtype)?;
        self.pre_activation.set(Some(sum));
        Ok(y)
    }

    /// `round(x)` with ties away from zero (C's `roundf`, TFLite's `TfLiteRound`), exact:
    /// `floor(|x|)` plus one where the dropped fraction is at least one half, signed back.
    fn round_half_away(&mut self, x: Value<'c, 'a>, t: &TensorType) -> Res<Value<'c, 'a>> {
        let ty = self.ty(&t.shape, DType::F32)?;
        let ones = vec![1; t.rank()];
        let a = self.op("tosa.abs", &[x], &[], ty)?;
        let fl = self.op("tosa.floor", &[a], &[], ty)?;
        let frac = self.op("tosa.sub", &[a, fl], &[], ty)?;
        let half = self.splat(&ones, DType::F32, 0.5)?;
        let up = self.op("tosa.greater_equal", &[frac, half], &[], self.ty(&t.shape, DType::Bool)?)?;
        let one = self.splat(&ones, DType::F32, 1.0)?;
        let next = self.op("tosa.add", &[fl, one], &[], ty)?;
        let r = self.op("tosa.select", &[up, next, fl], &[], ty)?;
        let zero = self.splat(&ones, DType::F32, 0.0)?;
        let neg = self.op("tosa.greater", &[zero, x], &[], self.ty(&t.shape, DType::Bool)?)?;
        let minus = self.op("tosa.sub", &[zero, r], &[], ty)?;
        self.op("tosa.select", &[neg, minus, r], &[], ty)
    }
}
