//! Data movement and indexing ops TOSA has no single op for, built from slice, reshape,
//! transpose, pad, concat, gather, argmax and resize. Element-type agnostic: the same
//! lowering serves float and quantized tensors.

use melior::ir::Value;
use npuc_ir::{DType, Op, OpId, ResizeAttrs, StridedSliceAttrs, TensorType};

use super::{Emitter, Res};

impl<'c, 'a> Emitter<'c, 'a> {
    /// Multi-result ops (SPLIT, SPLIT_V, UNPACK): one value per result, or `None` for
    /// other ops.
    pub(super) fn lower_multi(&mut self, id: OpId) -> Res<Option<Vec<Value<'c, 'a>>>> {
        let g = self.graph;
        let o = g.op(id);
        let (data_slot, axis) = match &o.op {
            Op::Split { .. } => (1, self.const_ints(id, 0)?),
            Op::SplitV { .. } => (0, self.const_ints(id, 2)?),
            Op::Unpack { axis, .. } => (0, vec![i64::from(*axis)]),
            _ => return Ok(None),
        };
        let (x, xt) = self.input(id, data_slot)?;
        let rank = xt.rank() as i64;
        let a = match axis.as_slice() {
            [a] if (-rank..rank).contains(a) => (if *a < 0 { a + rank } else { *a }) as usize,
            other => return Err(self.unsupported(format!("axis {other:?} for rank {rank}"))),
        };
        let mut results = Vec::with_capacity(o.outputs.len());
        let mut offset = 0usize;
        for &out in &o.outputs {
            let ot = self.result_type(out);
            let mut size = xt.shape.clone();
            // UNPACK drops the axis; its pieces are one element thick.
            size[a] = if matches!(o.op, Op::Unpack { .. }) { 1 } else { ot.shape.get(a).copied().unwrap_or(0) };
            let mut start = vec![0; xt.rank()];
            start[a] = offset;
            offset += size[a];
            if offset > xt.shape[a] {
                return Err(self.unsupported(format!("results overrun dimension {a} of {:?}", xt.shape)));
            }
            let piece = self.slice(x, &start, &size, xt.dtype)?;
            results.push(self.reshape(piece, &size, &ot.shape, ot.dtype)?);
        }
        Ok(Some(results))
    }

    /// Single-result movement ops; `None` if the op is not one of them.
    pub(super) fn lower_movement(&mut self, id: OpId, ot: &TensorType) -> Res<Option<Value<'c, 'a>>> {
        let o = self.graph.op(id);
        Ok(Some(match &o.op {
            Op::Pack { axis, .. } => {
                let rank = ot.rank() as i64;
                let a = i64::from(*axis);
                let a = if a < 0 { a + rank } else { a };
                if !(0..rank).contains(&a) {
                    return Err(self.unsupported(format!("axis {axis} out of range")));
                }
                let mut xs = Vec::new();
                for i in 0..o.inputs.len() {
                    let (x, xt) = self.input(id, i)?;
                    let x = self.requantize_to(x, &xt, ot)?;
                    let mut s = xt.shape.clone();
                    s.insert(a as usize, 1);
                    xs.push(self.reshape(x, &xt.shape, &s, xt.dtype)?);
                }
                self.op("tosa.concat", &xs, &[("axis", self.axis_attr(a as usize))], self.ty(&ot.shape, ot.dtype)?)?
            }
            Op::StridedSlice(a) => self.strided_slice(id, a, ot)?,
            Op::SpaceToBatchNd => self.space_to_batch(id, ot)?,
            Op::BatchToSpaceNd => self.batch_to_space(id, ot)?,
            Op::Gather { axis, batch_dims } => self.gather(id, *axis, *batch_dims, ot)?,
            Op::ArgMax { .. } => {
                let (x, xt) = self.input(id, 0)?;
                let rank = xt.rank() as i64;
                let a = match self.const_ints(id, 1)?.as_slice() {
                    [a] if (-rank..rank).contains(a) => (if *a < 0 { a + rank } else { *a }) as usize,
                    other => return Err(self.unsupported(format!("axis {other:?} for rank {rank}"))),
                };
                let mut reduced = xt.shape.clone();
                reduced.remove(a);
                let i = self.op("tosa.argmax", &[x], &[("axis", self.axis_attr(a))], self.ty(&reduced, DType::I32)?)?;
                let i = self.reshape(i, &reduced, &ot.shape, DType::I32)?;
                if ot.dtype == DType::I32 {
                    i
                } else {
                    self.op("tosa.cast", &[i], &[], self.ty(&ot.shape, ot.dtype)?)?
                }
            }
            // Comparisons (they feed control flow). TOSA has greater, greater_equal and
            // equal; the others swap operands or negate.
            op if op.is_comparison() => {
                let (a, at) = self.ranked(id, 0, ot.rank())?;
                let (b, bt) = self.ranked(id, 1, ot.rank())?;
                if at.dtype != bt.dtype || at.quant != bt.quant {
                    return Err(self.unsupported("operands of different types"));
                }
                let bool_ty = self.ty(&ot.shape, ot.dtype)?;
                match op {
                    Op::Greater => self.op("tosa.greater", &[a, b], &[], bool_ty)?,
                    Op::Less => self.op("tosa.greater", &[b, a], &[], bool_ty)?,
                    Op::GreaterEqual => self.op("tosa.greater_equal", &[a, b], &[], bool_ty)?,
                    Op::LessEqual => self.op("tosa.greater_equal", &[b, a], &[], bool_ty)?,
                    Op::Equal => self.op("tosa.equal", &[a, b], &[], bool_ty)?,
                    _ => {
                        let eq = self.op("tosa.equal", &[a, b], &[], bool_ty)?;
                        self.op("tosa.logical_not", &[eq], &[], self.ty(&ot.shape, ot.dtype)?)?
                    }
                }
            }
            Op::ResizeBilinear(r) => self.resize(id, r, "BILINEAR", ot)?,
            Op::ResizeNearestNeighbor(r) => self.resize(id, r, "NEAREST_NEIGHBOR", ot)?,
            _ => return Ok(None),
        }))
    }

    /// STRIDED_SLICE with positive strides: slice the covered range, pad it to a whole
    /// number of strides, split each dimension into `[n, stride]` and keep index 0 of the
    /// stride, then reshape to the result (which drops shrunk axes).
    fn strided_slice(&mut self, id: OpId, a: &StridedSliceAttrs, ot: &TensorType) -> Res<Value<'c, 'a>> {
        if a.ellipsis_mask != 0 || a.new_axis_mask != 0 {
            return Err(self.unsupported("ellipsis and new-axis masks"));
        }
        let (x, xt) = self.input(id, 0)?;
        let (begin, end, strides) = (self.const_ints(id, 1)?, self.const_ints(id, 2)?, self.const_ints(id, 3)?);
        let rank = xt.rank();
        if begin.len() != rank || end.len() != rank || strides.len() != rank {
            return Err(self.unsupported("begin/end/strides do not match the input rank"));
        }
        let (mut start, mut count, mut step) = (Vec::new(), Vec::new(), Vec::new());
        for d in 0..rank {
            let dim = xt.shape[d] as i64;
            let s = strides[d];
            if s <= 0 {
                return Err(self.unsupported(format!("stride {s} (only positive strides are exported)")));
            }
            let clampi = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim);
            let b = if a.begin_mask & (1 << d) != 0 { 0 } else { clampi(begin[d]) };
            let shrink = a.shrink_axis_mask & (1 << d) != 0;
            let e = if shrink {
                b + 1
            } else if a.end_mask & (1 << d) != 0 {
                dim
            } else if a.offset {
                (b + end[d]).clamp(0, dim)
            } else {
                clampi(end[d])
            };
            let n = if e > b { (e - b + s - 1) / s } else { 0 };
            start.push(b as usize);
            count.push(n as usize);
            step.push(s as usize);
        }
        // The covered range, cut to what the input has, then padded to count · step.
        let span: Vec<usize> = (0..rank).map(|d| (count[d] * step[d]).min(xt.shape[d] - start[d])).collect();
        let mut y = self.slice(x, &start, &span, xt.dtype)?;
        let full: Vec<usize> = (0..rank).map(|d| count[d] * step[d]).collect();
        if full != span {
            let pads: Vec<i64> = (0..rank).flat_map(|d| [0, (full[d] - span[d]) as i64]).collect();
            let pads = self.const_shape(&pads)?;
            let zero = self.pad_zero(&xt)?;
            y = self.op("tosa.pad", &[y, pads, zero], &[], self.ty(&full, xt.dtype)?)?;
        }
        if step.iter().any(|&s| s > 1) {
            let split: Vec<usize> = (0..rank).flat_map(|d| [count[d], step[d]]).collect();
            y = self.reshape(y, &full, &split, xt.dtype)?;
            let keep: Vec<usize> = (0..rank).flat_map(|d| [count[d], 1]).collect();
            y = self.slice(y, &vec![0; 2 * rank], &keep, xt.dtype)?;
            y = self.reshape(y, &keep, &count, xt.dtype)?;
        }
        self.reshape(y, &count, &ot.shape, ot.dtype)
    }

    /// SPACE_TO_BATCH_ND on NHWC: pad, `[N, H/bh, bh, W/bw, bw, C]`, move the block to the
    /// front, fold it into the batch.
    fn space_to_batch(&mut self, id: OpId, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        let block = self.const_ints(id, 1)?;
        let pads = self.const_ints(id, 2)?;
        let ([bh, bw], 4, 4) = (block_pair(&block), xt.rank(), pads.len()) else {
            return Err(self.unsupported("needs an NHWC input, a 2-D block and 2x2 paddings"));
        };
        if bh == 0 || bw == 0 || pads.iter().any(|&p| p < 0) {
            return Err(self.unsupported(format!("block {block:?} / paddings {pads:?}")));
        }
        let [n, h, w, c] = [xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3]];
        let (ph, pw) = (h + (pads[0] + pads[1]) as usize, w + (pads[2] + pads[3]) as usize);
        let y = if pads.iter().any(|&p| p != 0) {
            let p = self.const_shape(&[0, 0, pads[0], pads[1], pads[2], pads[3], 0, 0])?;
            let zero = self.pad_zero(&xt)?;
            self.op("tosa.pad", &[x, p, zero], &[], self.ty(&[n, ph, pw, c], xt.dtype)?)?
        } else {
            x
        };
        let s6 = [n, ph / bh, bh, pw / bw, bw, c];
        let y = self.reshape(y, &[n, ph, pw, c], &s6, xt.dtype)?;
        let y = self.transpose(y, &s6, &[2, 4, 0, 1, 3, 5], xt.dtype)?;
        self.reshape(y, &[bh, bw, n, ph / bh, pw / bw, c], &ot.shape, ot.dtype)
    }

    /// BATCH_TO_SPACE_ND on NHWC: unfold the block from the batch, interleave it with the
    /// spatial dimensions, crop.
    fn batch_to_space(&mut self, id: OpId, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        let block = self.const_ints(id, 1)?;
        let crops = self.const_ints(id, 2)?;
        let ([bh, bw], 4, 4) = (block_pair(&block), xt.rank(), crops.len()) else {
            return Err(self.unsupported("needs an NHWC input, a 2-D block and 2x2 crops"));
        };
        if bh == 0 || bw == 0 || crops.iter().any(|&p| p < 0) || xt.shape[0] % (bh * bw) != 0 {
            return Err(self.unsupported(format!("block {block:?} / crops {crops:?}")));
        }
        let [b, h, w, c] = [xt.shape[0], xt.shape[1], xt.shape[2], xt.shape[3]];
        let n = b / (bh * bw);
        let s6 = [bh, bw, n, h, w, c];
        let y = self.reshape(x, &xt.shape, &s6, xt.dtype)?;
        let y = self.transpose(y, &s6, &[2, 3, 0, 4, 1, 5], xt.dtype)?;
        let full = [n, h * bh, w * bw, c];
        let y = self.reshape(y, &[n, h, bh, w, bw, c], &full, xt.dtype)?;
        let size = [
            n,
            full[1].saturating_sub((crops[0] + crops[1]) as usize),
            full[2].saturating_sub((crops[2] + crops[3]) as usize),
            c,
        ];
        let y = if size != full {
            self.slice(y, &[0, crops[0] as usize, crops[2] as usize, 0], &size, xt.dtype)?
        } else {
            y
        };
        self.reshape(y, &size, &ot.shape, ot.dtype)
    }

    /// GATHER of constant indices: params as `[outer, axis, inner]`, one row of indices
    /// per outer index, `tosa.gather`, reshape to the result.
    fn gather(&mut self, id: OpId, axis: i32, batch_dims: i32, ot: &TensorType) -> Res<Value<'c, 'a>> {
        if batch_dims != 0 {
            return Err(self.unsupported("batch_dims"));
        }
        let (x, xt) = self.input(id, 0)?;
        let indices = self.const_ints(id, 1)?;
        let rank = xt.rank() as i64;
        let a = i64::from(axis);
        let a = if a < 0 { a + rank } else { a };
        if !(0..rank).contains(&a) {
            return Err(self.unsupported(format!("axis {axis} for rank {rank}")));
        }
        let a = a as usize;
        let k = xt.shape[a];
        if indices.iter().any(|&i| i < 0 || i as usize >= k) {
            return Err(self.unsupported(format!("indices {indices:?} out of range 0..{k}")));
        }
        let outer: usize = xt.shape[..a].iter().product();
        let inner: usize = xt.shape[a + 1..].iter().product();
        let w = indices.len();
        let values = self.reshape(x, &xt.shape, &[outer, k, inner], xt.dtype)?;
        let rows: Vec<i64> = (0..outer).flat_map(|_| indices.iter().copied()).collect();
        let idx = self.int_const(&[outer, w], DType::I32, &rows)?;
        let y = self.op("tosa.gather", &[values, idx], &[], self.ty(&[outer, w, inner], xt.dtype)?)?;
        self.reshape(y, &[outer, w, inner], &ot.shape, ot.dtype)
    }

    /// RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR as `tosa.resize`. TOSA samples input row
    /// `(oy · scale_d + offset) / scale_n`; TFLite's coordinate conventions map to:
    /// align corners `(out-1)/(in-1)`; half-pixel centres `(2·out)/(2·in)` offset `in - out`
    /// (`(oy + 0.5)·in/out - 0.5`); otherwise `out/in`, and for nearest neighbour (TFLite
    /// floors where TOSA rounds) `(2·out)/(2·in)` offset `-out`.
    fn resize(&mut self, id: OpId, r: &ResizeAttrs, mode: &str, ot: &TensorType) -> Res<Value<'c, 'a>> {
        let (x, xt) = self.input(id, 0)?;
        if xt.rank() != 4 || ot.rank() != 4 {
            return Err(self.unsupported("needs NHWC input and output"));
        }
        if mode == "BILINEAR" && !xt.dtype.is_float() {
            return Err(self.unsupported("integer bilinear resize"));
        }
        let nearest = mode == "NEAREST_NEIGHBOR";
        let mut scale = [0i64; 4];
        let mut offset = [0i64; 2];
        let mut border = [0i64; 2];
        for d in 0..2 {
            let (i, o) = (xt.shape[1 + d] as i64, ot.shape[1 + d] as i64);
            let (n, dd, off) = if r.align_corners && o > 1 && i > 1 {
                (o - 1, i - 1, 0)
            } else if r.half_pixel_centers {
                (2 * o, 2 * i, i - o)
            } else if nearest {
                (2 * o, 2 * i, -o)
            } else {
                (o, i, 0)
            };
            scale[2 * d] = n;
            scale[2 * d + 1] = dd;
            offset[d] = off;
            // TOSA: out = ((in - 1)·scale_n - offset + border) / scale_d + 1.
            border[d] = (o - 1) * dd - (i - 1) * n + off;
        }
        let mode_attr = melior::ir::Attribute::parse(self.context, &format!("#tosa.resize_mode<{mode}>"))
            .ok_or_else(|| self.internal("cannot build the resize mode attribute"))?;
        let (s, of, b) = (self.const_shape(&scale)?, self.const_shape(&offset)?, self.const_shape(&border)?);
        self.op("tosa.resize", &[x, s, of, b], &[("mode", mode_attr)], self.ty(&ot.shape, ot.dtype)?)
    }
}

/// A 2-element block shape as sizes, `[0, 0]` if it is not one.
fn block_pair(block: &[i64]) -> [usize; 2] {
    match block {
        [h, w] if *h > 0 && *w > 0 => [*h as usize, *w as usize],
        _ => [0, 0],
    }
}
