//! Joining and splitting along an axis: CONCATENATION, SPLIT, SPLIT_V, PACK, UNPACK.

use npuc_ir::{Activation, TensorType};

use super::{
    check_result, checked, ints, match_variant, norm_axis, same_quant, scalar_int, strided_gather, tensor_params,
    to_dim, KResult, Walk,
};
use crate::error::KernelError;
use crate::kernels::{KernelCtx, Outcome};
use crate::tensor::Tensor;

/// Every operand, all required and of one dtype.
fn operands<'a>(cx: &KernelCtx<'a>) -> KResult<Vec<&'a Tensor>> {
    let ts = (0..cx.inputs.len()).map(|i| cx.input(i).and_then(checked)).collect::<KResult<Vec<_>>>()?;
    let Some(first) = ts.first() else { return Err(KernelError::new("the op has no operands")) };
    if let Some((i, t)) = ts.iter().enumerate().find(|(_, t)| t.dtype() != first.dtype()) {
        return Err(KernelError::new(format!(
            "operand {i} has dtype {} but operand 0 has {}",
            t.dtype(),
            first.dtype()
        )));
    }
    Ok(ts)
}

/// Concatenates, for each of `outer` rows, chunk `row` of every part (part `k` contributes
/// `chunks[k]` elements per row). Concatenation and pack are both this.
fn interleave(parts: &[&Tensor], chunks: &[usize], outer: usize) -> KResult<crate::Data> {
    let first = &parts[0].data;
    Ok(match_variant!(first, V => {
        let slices = parts
            .iter()
            .map(|t| match &t.data {
                V(v) => Ok(v.as_slice()),
                d => Err(KernelError::new(format!("operand has dtype {}, expected {}", d.dtype(), first.dtype()))),
            })
            .collect::<KResult<Vec<_>>>()?;
        let total: usize = chunks.iter().sum::<usize>() * outer;
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for (s, &c) in slices.iter().zip(chunks) {
                out.extend_from_slice(&s[o * c..(o + 1) * c]);
            }
        }
        V(out)
    }))
}

/// CONCATENATION (tensorflow/lite/kernels/concatenation.cc): equal ranks and dtypes, equal
/// extents outside the (possibly negative) axis. Claimed only without a fused activation
/// and when every input shares the output's quantization; otherwise the integer group
/// requantizes (TFLite's uint8 `ConcatenationWithScaling`).
pub(super) fn concatenation(cx: &KernelCtx<'_>, axis: i32, activation: Activation) -> Outcome {
    if activation != Activation::None {
        return None;
    }
    let out_q = cx.output_types.first()?.quant.as_ref();
    if cx.input_values.iter().any(|v| v.is_some_and(|v| !same_quant(v.ty.quant.as_ref(), out_q))) {
        return None;
    }
    Some(concat_impl(cx, axis))
}

fn concat_impl(cx: &KernelCtx<'_>, axis: i32) -> KResult<Vec<Tensor>> {
    let ts = operands(cx)?;
    let first = ts[0];
    let rank = first.shape.len();
    let ax = norm_axis(i64::from(axis), rank, "axis")?;
    let mut shape = first.shape.clone();
    shape[ax] = 0;
    for (i, t) in ts.iter().enumerate() {
        let fits =
            t.shape.len() == rank && t.shape.iter().zip(&first.shape).enumerate().all(|(k, (a, b))| k == ax || a == b);
        if !fits {
            return Err(KernelError::new(format!(
                "operand {i} has shape {:?}, which does not match operand 0's {:?} outside axis {ax}",
                t.shape, first.shape
            )));
        }
        shape[ax] += t.shape[ax];
    }
    check_result(cx, 0, first.dtype(), &shape)?;
    let outer: usize = shape[..ax].iter().product();
    let chunks: Vec<usize> = ts.iter().map(|t| t.shape[ax..].iter().product()).collect();
    Ok(vec![Tensor { shape, data: interleave(&ts, &chunks, outer)? }])
}

/// Splits `x` along `ax` into consecutive pieces of the given sizes.
fn split_along(x: &Tensor, ax: usize, sizes: &[usize]) -> Vec<Tensor> {
    let d = x.shape[ax];
    let outer: usize = x.shape[..ax].iter().product();
    let inner: usize = x.shape[ax + 1..].iter().product();
    let mut start = 0;
    sizes
        .iter()
        .map(|&s| {
            let mut shape = x.shape.clone();
            shape[ax] = s;
            let walk = [Walk { n: outer, step: (d * inner) as isize }, Walk { n: s * inner, step: 1 }];
            let data = super::map_data!(&x.data, v => strided_gather(v, start * inner, &walk));
            start += s;
            Tensor { shape, data }
        })
        .collect()
}

/// SPLIT (tensorflow/lite/kernels/split.cc): operands axis (scalar), input; `num_splits`
/// equal parts.
pub(super) fn split(cx: &KernelCtx<'_>, num_splits: u32) -> KResult<Vec<Tensor>> {
    let axis = scalar_int(cx, 0, "axis")?;
    let x = checked(cx.input(1)?)?;
    let ax = norm_axis(axis, x.shape.len(), "axis")?;
    let n = num_splits as usize;
    if n == 0 || x.shape[ax] % n != 0 {
        return Err(KernelError::new(format!(
            "dimension {ax} of size {} does not split into {num_splits} equal parts",
            x.shape[ax]
        )));
    }
    finish_split(cx, x, ax, &vec![x.shape[ax] / n; n])
}

/// SPLIT_V (tensorflow/lite/kernels/split_v.cc): operands input, sizes, axis; one size may
/// be -1, meaning whatever the others leave.
pub(super) fn split_v(cx: &KernelCtx<'_>, num_splits: u32) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let sizes = ints(cx, 1, "size_splits")?;
    let axis = scalar_int(cx, 2, "axis")?;
    let ax = norm_axis(axis, x.shape.len(), "axis")?;
    if sizes.len() != num_splits as usize {
        return Err(KernelError::new(format!(
            "size_splits has {} entries but num_splits is {num_splits}",
            sizes.len()
        )));
    }
    let d = x.shape[ax] as i64;
    let mut rest = None;
    let mut sum: i64 = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if s == -1 {
            if rest.replace(i).is_some() {
                return Err(KernelError::new(format!("size_splits {sizes:?} has more than one -1")));
            }
        } else if s < 0 {
            return Err(KernelError::new(format!("size_splits {sizes:?} has negative size {s}")));
        } else {
            sum = sum.checked_add(s).ok_or_else(|| KernelError::new("size_splits overflow"))?;
        }
    }
    let mut resolved = sizes.clone();
    match rest {
        Some(i) if sum <= d => resolved[i] = d - sum,
        None if sum == d => {}
        _ => {
            return Err(KernelError::new(format!("size_splits {sizes:?} do not add up to dimension {ax} of size {d}")))
        }
    }
    let resolved = resolved.iter().map(|&s| to_dim(s, "split size")).collect::<KResult<Vec<_>>>()?;
    finish_split(cx, x, ax, &resolved)
}

fn finish_split(cx: &KernelCtx<'_>, x: &Tensor, ax: usize, sizes: &[usize]) -> KResult<Vec<Tensor>> {
    if cx.output_types.len() != sizes.len() {
        return Err(KernelError::new(format!("{} results for {} parts", cx.output_types.len(), sizes.len())));
    }
    for (k, &s) in sizes.iter().enumerate() {
        let mut shape = x.shape.clone();
        shape[ax] = s;
        check_result(cx, k, x.dtype(), &shape)?;
    }
    Ok(split_along(x, ax, sizes))
}

/// TFLite's PACK/UNPACK `Prepare` requires every input's per-tensor scale and zero point
/// to equal the output's (tensorflow/lite/kernels/pack.cc, unpack.cc).
fn require_same_params(a: &TensorType, b: &TensorType, what: &str) -> KResult<()> {
    let (pa, pb) = (tensor_params(a.quant.as_ref()), tensor_params(b.quant.as_ref()));
    if pa.0.to_bits() != pb.0.to_bits() || pa.1 != pb.1 {
        return Err(KernelError::new(format!(
            "{what}: quantization (scale {}, zero point {}) differs from (scale {}, zero point {}); TFLite does not rescale here",
            pa.0, pa.1, pb.0, pb.1
        )));
    }
    Ok(())
}

/// PACK (tensorflow/lite/kernels/pack.cc): `values_count` equal inputs stacked along a new
/// axis (negative: counted from the end of the result's rank).
pub(super) fn pack(cx: &KernelCtx<'_>, values_count: u32, axis: i32) -> KResult<Vec<Tensor>> {
    let ts = operands(cx)?;
    if ts.len() != values_count as usize {
        return Err(KernelError::new(format!("values_count is {values_count} but there are {} inputs", ts.len())));
    }
    let first = ts[0];
    if let Some((i, t)) = ts.iter().enumerate().find(|(_, t)| t.shape != first.shape) {
        return Err(KernelError::new(format!("input {i} has shape {:?} but input 0 has {:?}", t.shape, first.shape)));
    }
    let out_ty = cx.output_type(0)?;
    for i in 0..ts.len() {
        require_same_params(cx.input_type(i)?, out_ty, &format!("input {i}"))?;
    }
    let ax = norm_axis(i64::from(axis), first.shape.len() + 1, "axis")?;
    let mut shape = first.shape.clone();
    shape.insert(ax, ts.len());
    check_result(cx, 0, first.dtype(), &shape)?;
    let outer: usize = first.shape[..ax].iter().product();
    let inner: usize = first.shape[ax..].iter().product();
    Ok(vec![Tensor { shape, data: interleave(&ts, &vec![inner; ts.len()], outer)? }])
}

/// UNPACK (tensorflow/lite/kernels/unpack.cc): `num` results, the (possibly negative) axis
/// removed.
pub(super) fn unpack(cx: &KernelCtx<'_>, num: u32, axis: i32) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let ax = norm_axis(i64::from(axis), x.shape.len(), "axis")?;
    if x.shape[ax] != num as usize {
        return Err(KernelError::new(format!("num is {num} but dimension {ax} has size {}", x.shape[ax])));
    }
    if cx.output_types.len() != num as usize {
        return Err(KernelError::new(format!("{} results for num {num}", cx.output_types.len())));
    }
    let in_ty = cx.input_type(0)?;
    let mut shape = x.shape.clone();
    shape.remove(ax);
    for k in 0..num as usize {
        require_same_params(in_ty, cx.output_type(k)?, &format!("result {k}"))?;
        check_result(cx, k, x.dtype(), &shape)?;
    }
    Ok(split_along(x, ax, &vec![1; num as usize])
        .into_iter()
        .map(|t| Tensor { shape: shape.clone(), data: t.data })
        .collect())
}

#[cfg(test)]
mod tests {
    use npuc_ir::{Activation, DType, Op, Quantization};

    use super::super::testutil::*;
    use crate::tensor::Data;

    #[test]
    fn concatenation_along_negative_and_inner_axes() {
        let a = iota(&[2, 2]);
        let b = f32s(&[2, 1], &[10.0, 11.0]);
        let r = OpTest::new()
            .input(a.clone())
            .input(b.clone())
            .one(Op::Concatenation { axis: -1, activation: Activation::None });
        assert_eq!(r.shape, vec![2, 3]);
        assert_eq!(r.data, Data::F32(vec![0.0, 1.0, 10.0, 2.0, 3.0, 11.0]));
        let c = f32s(&[1, 2], &[20.0, 21.0]);
        let r = OpTest::new().input(a).konst(c).one(Op::Concatenation { axis: 0, activation: Activation::None });
        assert_eq!(r.data, Data::F32(vec![0.0, 1.0, 2.0, 3.0, 20.0, 21.0]));
    }

    #[test]
    fn concatenation_of_bool_i64_and_same_quant_int8() {
        let r = OpTest::new()
            .input(t(&[1], Data::Bool(vec![true])))
            .input(t(&[2], Data::Bool(vec![false, true])))
            .one(Op::Concatenation { axis: 0, activation: Activation::None });
        assert_eq!(r.data, Data::Bool(vec![true, false, true]));
        let q = Some(Quantization::per_tensor(0.25, 5));
        let r = OpTest::new()
            .input_q(i8s(&[1, 2], &[1, 2]), q.clone())
            .input_q(i8s(&[1, 1], &[3]), q)
            .one(Op::Concatenation { axis: 1, activation: Activation::None });
        assert_eq!(r.data, Data::I8(vec![1, 2, 3]));
    }

    #[test]
    fn concatenation_not_claimed_when_rescaling_or_activation_needed() {
        let q1 = Some(Quantization::per_tensor(0.25, 5));
        let q2 = Some(Quantization::per_tensor(0.5, 5));
        let concat = Op::Concatenation { axis: 0, activation: Activation::None };
        let claimed = OpTest::new()
            .input_q(i8s(&[1], &[1]), q1.clone())
            .input_q(i8s(&[1], &[2]), q2)
            .claimed(concat.clone(), vec![ty(DType::I8, &[2], q1.clone())]);
        assert!(!claimed, "differing input quantization needs rescaling");
        let claimed = OpTest::new()
            .input_q(i8s(&[1], &[1]), q1.clone())
            .input_q(i8s(&[1], &[2]), q1.clone())
            .claimed(concat.clone(), vec![ty(DType::I8, &[2], Some(Quantization::per_tensor(0.25, 6)))]);
        assert!(!claimed, "differing output quantization needs rescaling");
        let claimed = OpTest::new()
            .input_q(i8s(&[1], &[1]), q1.clone())
            .input_q(i8s(&[1], &[2]), q1.clone())
            .claimed(concat, vec![ty(DType::I8, &[2], q1)]);
        assert!(claimed);
        let claimed = OpTest::new()
            .input(f32s(&[1], &[-1.0]))
            .input(f32s(&[1], &[2.0]))
            .claimed(Op::Concatenation { axis: 0, activation: Activation::Relu }, vec![ty(DType::F32, &[2], None)]);
        assert!(!claimed, "a fused activation is not a copy");
    }

    #[test]
    fn split_equal_parts_negative_axis() {
        let x = iota(&[2, 4]);
        let r = OpTest::new().konst(i32s(&[], &[-1])).input(x).run(Op::Split { num_splits: 2 }).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].data, Data::F32(vec![0.0, 1.0, 4.0, 5.0]));
        assert_eq!(r[1].data, Data::F32(vec![2.0, 3.0, 6.0, 7.0]));
        assert_eq!(r[1].shape, vec![2, 2]);
    }

    #[test]
    fn split_v_with_inferred_size() {
        let x = t(&[5, 1], Data::I16((0..5).collect()));
        let r = OpTest::new()
            .input(x)
            .konst(i64s(&[3], &[1, -1, 2]))
            .konst(i32s(&[], &[0]))
            .run(Op::SplitV { num_splits: 3 })
            .unwrap();
        assert_eq!(r[0].data, Data::I16(vec![0]));
        assert_eq!(r[1].data, Data::I16(vec![1, 2]));
        assert_eq!(r[2].data, Data::I16(vec![3, 4]));
        let bad = OpTest::new()
            .input(iota(&[4]))
            .input(i32s(&[2], &[3, 3]))
            .konst(i32s(&[], &[0]))
            .run_with(Op::SplitV { num_splits: 2 }, vec![ty(DType::F32, &[2], None), ty(DType::F32, &[2], None)]);
        assert_err(bad, "do not add up");
    }

    #[test]
    fn pack_and_unpack_round_trip() {
        let a = iota(&[2, 3]);
        let b = f32s(&[2, 3], &[10.0, 11.0, 12.0, 13.0, 14.0, 15.0]);
        let p = OpTest::new().input(a.clone()).input(b.clone()).one(Op::Pack { values_count: 2, axis: 1 });
        assert_eq!(p.shape, vec![2, 2, 3]);
        assert_eq!(p.data, Data::F32(vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 3.0, 4.0, 5.0, 13.0, 14.0, 15.0]));
        let p = OpTest::new().input(a.clone()).input(b.clone()).one(Op::Pack { values_count: 2, axis: -1 });
        assert_eq!(p.shape, vec![2, 3, 2]);
        assert_eq!(p.data, Data::F32(vec![0.0, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0, 4.0, 14.0, 5.0, 15.0]));
        let u = OpTest::new().input(p).run(Op::Unpack { num: 2, axis: -1 }).unwrap();
        assert_eq!(u, vec![a, b]);
        let u = OpTest::new().input(iota(&[2, 3])).run(Op::Unpack { num: 3, axis: 1 }).unwrap();
        assert_eq!(u[2].data, Data::F32(vec![2.0, 5.0]));
        assert_eq!(u[2].shape, vec![2]);
    }

    #[test]
    fn pack_rejects_differing_quantization_like_tflite() {
        let q1 = Some(Quantization::per_tensor(0.25, 5));
        let q2 = Some(Quantization::per_tensor(0.5, 5));
        let r = OpTest::new()
            .input_q(i8s(&[1], &[1]), q1.clone())
            .input_q(i8s(&[1], &[2]), q2)
            .run_with(Op::Pack { values_count: 2, axis: 0 }, vec![ty(DType::I8, &[2, 1], q1.clone())]);
        assert_err(r, "input 1: quantization");
        let r = OpTest::new()
            .input_q(t(&[2], Data::U8(vec![7, 9])), q1.clone())
            .input_q(t(&[2], Data::U8(vec![8, 6])), q1)
            .one(Op::Pack { values_count: 2, axis: 0 });
        assert_eq!(r.data, Data::U8(vec![7, 9, 8, 6]));
    }
}
