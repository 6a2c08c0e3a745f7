//! Padding and block rearrangements that pad or crop: PAD, PADV2, SPACE_TO_BATCH_ND,
//! BATCH_TO_SPACE_ND.

use npuc_ir::DType;

use super::{check_result, checked, int_scalar, ints, is_quantized, match_variant, strides, tensor_params, KResult};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::{Data, Tensor};

/// Reads a `[n, 2]` operand of non-negative `(before, after)` pairs.
fn pairs(cx: &KernelCtx<'_>, i: usize, n: usize, role: &str) -> KResult<Vec<[usize; 2]>> {
    let t = cx.input(i)?;
    if t.shape != [n, 2] {
        return Err(KernelError::new(format!("{role} must have shape [{n}, 2], has {:?}", t.shape)));
    }
    let v = ints(cx, i, role)?;
    v.chunks_exact(2)
        .enumerate()
        .map(|(d, c)| {
            if c[0] < 0 || c[1] < 0 {
                Err(KernelError::new(format!("{role} [{}, {}] of dimension {d} is negative", c[0], c[1])))
            } else {
                Ok([c[0] as usize, c[1] as usize])
            }
        })
        .collect()
}

/// The pad value of a quantized integer result: its zero point, which TFLite requires to
/// lie in the type's range (tensorflow/lite/kernels/pad.cc `EvalInt`).
fn zero_point_value(cx: &KernelCtx<'_>, dtype: DType) -> KResult<Data> {
    let (_, zp) = tensor_params(cx.output_type(0)?.quant.as_ref());
    int_scalar(dtype, zp).ok_or_else(|| KernelError::new(format!("output zero point {zp} does not fit {dtype}")))
}

/// PAD and PADV2 (tensorflow/lite/kernels/pad.cc; one kernel serves both): paddings
/// `[rank, 2]`, non-negative. The pad value is the optional third operand, else zero; a
/// quantized result (uint8 always, int8/int16 when quantized) is padded with its zero point,
/// and an explicit value must then carry the result's scale and zero point.
pub(super) fn pad(cx: &KernelCtx<'_>, _v2: bool) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let rank = x.shape.len();
    let p = pairs(cx, 1, rank, "paddings")?;
    let dtype = x.dtype();
    let in_ty = cx.input_type(0)?;
    let quant_path = dtype == DType::U8 || (matches!(dtype, DType::I4 | DType::I8 | DType::I16) && is_quantized(in_ty));
    let value = match cx.opt_input(2) {
        Some(c) => {
            if c.dtype() != dtype || c.len() != 1 {
                return Err(KernelError::new(format!(
                    "pad value must be one {dtype} element, is {} {:?}",
                    c.dtype(),
                    c.shape
                )));
            }
            if quant_path {
                let out = tensor_params(cx.output_type(0)?.quant.as_ref());
                let val = tensor_params(cx.input_type(2)?.quant.as_ref());
                if out.0.to_bits() != val.0.to_bits() || out.1 != val.1 {
                    return Err(KernelError::new(format!(
                        "pad value quantization (scale {}, zero point {}) differs from the result's (scale {}, zero point {})",
                        val.0, val.1, out.0, out.1
                    )));
                }
            }
            c.data.clone()
        }
        None if quant_path => zero_point_value(cx, dtype)?,
        None => Data::zeros(dtype, 1),
    };
    let shape: Vec<usize> = x.shape.iter().zip(&p).map(|(&d, q)| d + q[0] + q[1]).collect();
    check_result(cx, 0, dtype, &shape)?;
    let before: Vec<usize> = p.iter().map(|q| q[0]).collect();
    let data = match_variant!(&x.data, V => {
        let (V(src), V(val)) = (&x.data, &value) else { return Err(KernelError::new("pad value and input differ in dtype")) };
        V(pad_impl(src, &x.shape, &before, &shape, val[0]))
    });
    Ok(vec![Tensor { shape, data }])
}

/// Copies `src` (shape `in_shape`) into a `value`-filled tensor of `out_shape`, offset by
/// `before` in every dimension.
fn pad_impl<T: Copy>(src: &[T], in_shape: &[usize], before: &[usize], out_shape: &[usize], value: T) -> Vec<T> {
    let n: usize = out_shape.iter().product();
    let mut out = vec![value; n];
    if src.is_empty() {
        return out;
    }
    let Some((&row, outer)) = in_shape.split_last() else {
        out[0] = src[0];
        return out;
    };
    let os = strides(out_shape);
    let last = in_shape.len() - 1;
    let mut idx = vec![0usize; outer.len()];
    let mut s = 0;
    loop {
        let dst: usize = idx.iter().enumerate().map(|(d, &i)| (i + before[d]) * os[d]).sum::<usize>() + before[last];
        out[dst..dst + row].copy_from_slice(&src[s..s + row]);
        s += row;
        let mut k = outer.len();
        loop {
            if k == 0 {
                return out;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < outer[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Input, block shape and `(before, after)` pairs of the batch/space ops, whose reference
/// kernels take 3-D (`[N, W, C]`) or 4-D (`[N, H, W, C]`) inputs.
struct BlockOp<'a> {
    x: &'a Tensor,
    block: Vec<usize>,
    pairs: Vec<[usize; 2]>,
}

fn block_operands<'a>(cx: &KernelCtx<'a>, pairs_role: &str) -> KResult<BlockOp<'a>> {
    let x = checked(cx.input(0)?)?;
    let rank = x.shape.len();
    if !(3..=4).contains(&rank) {
        return Err(KernelError::new(format!("input must have rank 3 or 4, has shape {:?}", x.shape)));
    }
    let m = rank - 2;
    let block = ints(cx, 1, "block_shape")?;
    if block.len() != m || block.iter().any(|&b| b < 1) {
        return Err(KernelError::new(format!("block_shape {block:?} must be {m} values of at least 1")));
    }
    let block = block.iter().map(|&b| b as usize).collect();
    let pairs = pairs(cx, 2, m, pairs_role)?;
    Ok(BlockOp { x, block, pairs })
}

/// SPACE_TO_BATCH_ND (tensorflow/lite/kernels/space_to_batch_nd.cc,
/// internal/reference/space_to_batch_nd.h): output batch `ob` takes input batch
/// `ob % N` at block offset `ob / N` (row-major over the block dimensions); positions in the
/// padding get the pad value, which is the output zero point for 8-bit types (TFLite's
/// `output_offset`, written with `memset`) and zero otherwise.
pub(super) fn space_to_batch_nd(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let BlockOp { x, block, pairs: pads } = block_operands(cx, "paddings")?;
    let s = &x.shape;
    let m = block.len();
    let prod: usize = block.iter().product();
    let mut shape = vec![s[0] * prod];
    for i in 0..m {
        let padded = s[i + 1] + pads[i][0] + pads[i][1];
        if padded % block[i] != 0 {
            return Err(KernelError::new(format!(
                "padded extent {padded} of spatial dimension {i} is not a multiple of block {}",
                block[i]
            )));
        }
        shape.push(padded / block[i]);
    }
    let depth = s[m + 1];
    shape.push(depth);
    let dtype = x.dtype();
    check_result(cx, 0, dtype, &shape)?;
    let value = match dtype {
        DType::I4 | DType::I8 | DType::U8 => zero_point_value(cx, dtype)?,
        _ => Data::zeros(dtype, 1),
    };
    let in_batch = s[0];
    let in_spatial = &s[1..=m];
    let out_spatial = &shape[1..=m];
    let in_strides = strides(s);
    let data = match_variant!(&x.data, V => {
        let (V(src), V(val)) = (&x.data, &value) else { return Err(KernelError::new("pad value and input differ in dtype")) };
        let mut out = Vec::with_capacity(shape.iter().product());
        let mut shift = vec![0usize; m];
        let mut pos = vec![0usize; m];
        for ob in 0..shape[0] {
            let b = ob % in_batch;
            let mut k = ob / in_batch;
            for i in (0..m).rev() {
                shift[i] = k % block[i];
                k /= block[i];
            }
            for_each_position(out_spatial, &mut pos, |pos| {
                let mut off = b * in_strides[0];
                for i in 0..m {
                    let p = pos[i] * block[i] + shift[i];
                    if p < pads[i][0] || p >= pads[i][0] + in_spatial[i] {
                        out.extend(std::iter::repeat_n(val[0], depth));
                        return;
                    }
                    off += (p - pads[i][0]) * in_strides[i + 1];
                }
                out.extend_from_slice(&src[off..off + depth]);
            });
        }
        V(out)
    });
    Ok(vec![Tensor { shape, data }])
}

/// BATCH_TO_SPACE_ND (tensorflow/lite/kernels/batch_to_space_nd.cc,
/// internal/reference/batch_to_space_nd.h): input batch `ib` goes to output batch
/// `ib % N_out` at block offset `ib / N_out` (row-major over the block dimensions), then
/// `crops` are cut from both ends. Written here as a gather over output positions.
pub(super) fn batch_to_space_nd(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let BlockOp { x, block, pairs: crops } = block_operands(cx, "crops")?;
    let s = &x.shape;
    let m = block.len();
    let prod: usize = block.iter().product();
    if s[0] % prod != 0 {
        return Err(KernelError::new(format!("batch {} is not a multiple of the block size product {prod}", s[0])));
    }
    let mut shape = vec![s[0] / prod];
    for i in 0..m {
        let full = s[i + 1] * block[i];
        let cut = crops[i][0] + crops[i][1];
        if cut > full {
            return Err(KernelError::new(format!("crops {:?} exceed spatial extent {full}", crops[i])));
        }
        shape.push(full - cut);
    }
    let depth = s[m + 1];
    shape.push(depth);
    check_result(cx, 0, x.dtype(), &shape)?;
    let out_batch = shape[0];
    let out_spatial = shape[1..=m].to_vec();
    let in_strides = strides(s);
    let data = super::map_data!(&x.data, src => {
        let mut out = Vec::with_capacity(shape.iter().product());
        let mut pos = vec![0usize; m];
        for ob in 0..out_batch {
            for_each_position(&out_spatial, &mut pos, |pos| {
                let mut k = 0;
                let mut off = 0;
                for i in 0..m {
                    let t = pos[i] + crops[i][0];
                    k = k * block[i] + t % block[i];
                    off += (t / block[i]) * in_strides[i + 1];
                }
                off += (k * out_batch + ob) * in_strides[0];
                out.extend_from_slice(&src[off..off + depth]);
            });
        }
        out
    });
    Ok(vec![Tensor { shape, data }])
}

/// Calls `f` with every position of `extent` in row-major order (`pos` is scratch).
fn for_each_position(extent: &[usize], pos: &mut [usize], mut f: impl FnMut(&[usize])) {
    if extent.contains(&0) {
        return;
    }
    pos.iter_mut().for_each(|p| *p = 0);
    loop {
        f(pos);
        let mut k = extent.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            pos[k] += 1;
            if pos[k] < extent[k] {
                break;
            }
            pos[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use npuc_ir::{DType, Op, Quantization};

    use super::super::testutil::*;
    use crate::tensor::Data;

    #[test]
    fn pad_float_zero_and_explicit_value() {
        let x = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let r = OpTest::new().input(x.clone()).konst(i32s(&[2, 2], &[1, 0, 0, 1])).one(Op::Pad);
        assert_eq!(r.shape, vec![3, 3]);
        assert_eq!(r.data, Data::F32(vec![0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0]));
        let r = OpTest::new().input(x).konst(i64s(&[2, 2], &[0, 0, 1, 1])).konst(f32s(&[], &[9.0])).one(Op::PadV2);
        assert_eq!(r.data, Data::F32(vec![9.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 9.0]));
        // An omitted value operand pads with zero.
        let r = OpTest::new().input(f32s(&[1], &[3.0])).konst(i32s(&[1, 2], &[0, 1])).none().one(Op::PadV2);
        assert_eq!(r.data, Data::F32(vec![3.0, 0.0]));
    }

    #[test]
    fn pad_quantized_uses_the_output_zero_point() {
        let q = Some(Quantization::per_tensor(0.5, -3));
        let r = OpTest::new().input_q(i8s(&[2], &[5, 6]), q.clone()).konst(i32s(&[1, 2], &[1, 2])).one(Op::Pad);
        assert_eq!(r.data, Data::I8(vec![-3, 5, 6, -3, -3]));
        // Unquantized int8 pads with 0; uint8 always uses the zero point (0 when absent).
        let r = OpTest::new().input(i8s(&[1], &[5])).konst(i32s(&[1, 2], &[1, 0])).one(Op::Pad);
        assert_eq!(r.data, Data::I8(vec![0, 5]));
        let qu = Some(Quantization::per_tensor(0.5, 128));
        let r = OpTest::new().input_q(t(&[1], Data::U8(vec![7])), qu).konst(i32s(&[1, 2], &[0, 1])).one(Op::Pad);
        assert_eq!(r.data, Data::U8(vec![7, 128]));
        // PADV2's value must share the result's quantization.
        let r = OpTest::new()
            .input_q(i8s(&[1], &[5]), q.clone())
            .konst(i32s(&[1, 2], &[1, 0]))
            .konst_q(i8s(&[], &[4]), q.clone())
            .one(Op::PadV2);
        assert_eq!(r.data, Data::I8(vec![4, 5]));
        let r = OpTest::new()
            .input_q(i8s(&[1], &[5]), q.clone())
            .konst(i32s(&[1, 2], &[1, 0]))
            .konst_q(i8s(&[], &[4]), Some(Quantization::per_tensor(0.5, 0)))
            .run_with(Op::PadV2, vec![ty(DType::I8, &[2], q)]);
        assert_err(r, "pad value quantization");
    }

    #[test]
    fn pad_negative_is_an_error_and_i4_bool_i64_work() {
        let r = OpTest::new()
            .input(iota(&[3]))
            .input(i32s(&[1, 2], &[-1, 0]))
            .run_with(Op::Pad, vec![ty(DType::F32, &[2], None)]);
        assert_err(r, "negative");
        let r = OpTest::new().input(t(&[2], Data::I4(vec![-8, 7]))).konst(i32s(&[1, 2], &[1, 1])).one(Op::Pad);
        assert_eq!(r.data, Data::I4(vec![0, -8, 7, 0]));
        let r = OpTest::new()
            .input(t(&[1, 1], Data::Bool(vec![true])))
            .konst(i32s(&[2, 2], &[0, 1, 1, 0]))
            .konst(t(&[], Data::Bool(vec![false])))
            .one(Op::PadV2);
        assert_eq!(r.data, Data::Bool(vec![false, true, false, false]));
        let r = OpTest::new().input(t(&[1], Data::I64(vec![42]))).konst(i64s(&[1, 2], &[2, 0])).one(Op::Pad);
        assert_eq!(r.data, Data::I64(vec![0, 0, 42]));
    }

    #[test]
    fn space_to_batch_and_back() {
        // [1, 4, 4, 1] with block [2, 2]: TF's documented example layout.
        let x = iota(&[1, 4, 4, 1]);
        let s2b = OpTest::new()
            .input(x.clone())
            .konst(i32s(&[2], &[2, 2]))
            .konst(i32s(&[2, 2], &[0, 0, 0, 0]))
            .one(Op::SpaceToBatchNd);
        assert_eq!(s2b.shape, vec![4, 2, 2, 1]);
        assert_eq!(s2b.data, Data::F32(vec![0., 2., 8., 10., 1., 3., 9., 11., 4., 6., 12., 14., 5., 7., 13., 15.]));
        let b2s = OpTest::new()
            .input(s2b)
            .konst(i32s(&[2], &[2, 2]))
            .konst(i32s(&[2, 2], &[0, 0, 0, 0]))
            .one(Op::BatchToSpaceNd);
        assert_eq!(b2s, x);
    }

    #[test]
    fn space_to_batch_pads_and_batch_to_space_crops() {
        // 3-D input [N, W, C] = [1, 3, 1], block [2], paddings [1, 0]: padded [p,0,1,2].
        let q = Some(Quantization::per_tensor(1.0, 7));
        let x = i8s(&[1, 3, 1], &[0, 1, 2]);
        let s2b = OpTest::new()
            .input_q(x.clone(), q.clone())
            .konst(i32s(&[1], &[2]))
            .konst(i32s(&[1, 2], &[1, 0]))
            .one(Op::SpaceToBatchNd);
        assert_eq!(s2b.shape, vec![2, 2, 1]);
        assert_eq!(s2b.data, Data::I8(vec![7, 1, 0, 2]));
        let back =
            OpTest::new().input_q(s2b, q).konst(i32s(&[1], &[2])).konst(i32s(&[1, 2], &[1, 0])).one(Op::BatchToSpaceNd);
        assert_eq!(back, x);
        // Batch 2 and depth 2 with crops on both spatial dims.
        let x = iota(&[4, 2, 2, 2]);
        let r = OpTest::new()
            .input(x)
            .konst(i32s(&[2], &[2, 2]))
            .konst(i32s(&[2, 2], &[1, 0, 0, 1]))
            .one(Op::BatchToSpaceNd);
        assert_eq!(r.shape, vec![1, 3, 3, 2]);
        // Output (0, h, w) = input batch ((h+1)%2)*2 + w%2 at ((h+1)/2, w/2).
        let want: Vec<f32> = (0..3)
            .flat_map(|h: usize| (0..3).map(move |w: usize| (h, w)))
            .flat_map(|(h, w)| {
                let ib = ((h + 1) % 2) * 2 + w % 2;
                let base = ((ib * 2 + h.div_ceil(2)) * 2 + w / 2) * 2;
                [base as f32, base as f32 + 1.0]
            })
            .collect();
        assert_eq!(r.data, Data::F32(want));
    }
}
