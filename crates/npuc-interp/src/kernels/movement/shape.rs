//! Ops that change only the shape: RESHAPE, SQUEEZE, EXPAND_DIMS, DENSIFY (whose sparse
//! input the interpreter already densified while preparing the graph), and SHAPE.

use npuc_ir::DType;

use super::{check_result, checked, norm_axis, reshaped, scalar_int, KResult};
use crate::error::KernelError;
use crate::kernels::KernelCtx;
use crate::tensor::{Data, Tensor};

/// RESHAPE (tensorflow/lite/kernels/reshape.cc): the target shape comes from operand 1 when
/// it is a 1-D int32 tensor, otherwise from the `new_shape` attribute, where the legacy
/// `[0]` (and no attribute at all) means a scalar. One `-1` is inferred from the element
/// count. As in `npuc_ir::shape`, a 1-D int64 shape operand is read when there is no
/// attribute to fall back on.
pub(super) fn reshape(cx: &KernelCtx<'_>, new_shape: Option<&[i32]>) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let from_attr = || -> Vec<i64> {
        match new_shape {
            Some([0]) | None => vec![],
            Some(s) => s.iter().map(|&d| i64::from(d)).collect(),
        }
    };
    let target = match cx.opt_input(1) {
        Some(s)
            if s.shape.len() == 1 && (s.dtype() == DType::I32 || (s.dtype() == DType::I64 && new_shape.is_none())) =>
        {
            s.to_i64_vec().expect("integer shape operand")
        }
        _ => from_attr(),
    };
    let shape = resolve_shape(&target, x.len())?;
    check_result(cx, 0, x.dtype(), &shape)?;
    Ok(vec![reshaped(x, shape)?])
}

/// Resolves a reshape target with at most one `-1` against `n` elements.
fn resolve_shape(target: &[i64], n: usize) -> KResult<Vec<usize>> {
    let mut stretch = None;
    let mut known: u64 = 1;
    for (i, &d) in target.iter().enumerate() {
        if d == -1 {
            if stretch.replace(i).is_some() {
                return Err(KernelError::new(format!("target shape {target:?} has more than one -1")));
            }
        } else if d < 0 {
            return Err(KernelError::new(format!("target shape {target:?} has negative dimension {d}")));
        } else {
            known = known
                .checked_mul(d as u64)
                .ok_or_else(|| KernelError::new(format!("target shape {target:?} has too many elements")))?;
        }
    }
    let mut shape: Vec<usize> = target.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = stretch {
        if known == 0 || n as u64 % known != 0 {
            return Err(KernelError::new(format!("cannot infer the -1 in {target:?} for {n} elements")));
        }
        shape[i] = (n as u64 / known) as usize;
        known = n as u64;
    }
    if known != n as u64 {
        return Err(KernelError::new(format!("cannot reshape {n} elements into {target:?} ({known} elements)")));
    }
    Ok(shape)
}

/// SQUEEZE (tensorflow/lite/kernels/squeeze.cc): removes the listed size-1 dimensions
/// (negative axes count from the end), or every size-1 dimension when none are listed.
pub(super) fn squeeze(cx: &KernelCtx<'_>, axes: &[i32]) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let rank = x.shape.len();
    let mut drop = vec![false; rank];
    if axes.is_empty() {
        for (d, &s) in drop.iter_mut().zip(&x.shape) {
            *d = s == 1;
        }
    } else {
        for &a in axes {
            let i = norm_axis(i64::from(a), rank, "squeeze axis")?;
            if x.shape[i] != 1 {
                return Err(KernelError::new(format!("cannot squeeze dimension {i} of size {}", x.shape[i])));
            }
            drop[i] = true;
        }
    }
    let shape: Vec<usize> = x.shape.iter().zip(&drop).filter(|&(_, &d)| !d).map(|(&s, _)| s).collect();
    check_result(cx, 0, x.dtype(), &shape)?;
    Ok(vec![reshaped(x, shape)?])
}

/// EXPAND_DIMS (tensorflow/lite/kernels/expand_dims.cc): inserts a size-1 dimension at the
/// axis held by operand 1, which may be negative (`-(rank+1)..=rank`).
pub(super) fn expand_dims(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    let axis = scalar_int(cx, 1, "axis")?;
    let i = norm_axis(axis, x.shape.len() + 1, "axis")?;
    let mut shape = x.shape.clone();
    shape.insert(i, 1);
    check_result(cx, 0, x.dtype(), &shape)?;
    Ok(vec![reshaped(x, shape)?])
}

/// DENSIFY (tensorflow/lite/kernels/densify.cc): the interpreter expands sparse constants
/// once while preparing the graph (`crate::sparse::densify`), so the operand arrives dense
/// and the kernel copies it.
pub(super) fn densify(cx: &KernelCtx<'_>) -> KResult<Vec<Tensor>> {
    let x = checked(cx.input(0)?)?;
    check_result(cx, 0, x.dtype(), &x.shape)?;
    Ok(vec![x.clone()])
}

/// SHAPE (tensorflow/lite/kernels/shape.cc): the input's dimensions as a 1-D tensor of
/// `output_type` (i32 or i64); the input's elements are not read.
pub(super) fn shape_of(cx: &KernelCtx<'_>, output_type: DType) -> KResult<Vec<Tensor>> {
    let x = cx.input(0)?;
    let dims = &x.shape;
    check_result(cx, 0, output_type, &[dims.len()])?;
    let data = match output_type {
        DType::I32 => Data::I32(
            dims.iter()
                .map(|&d| i32::try_from(d).map_err(|_| KernelError::new(format!("dimension {d} does not fit i32"))))
                .collect::<KResult<_>>()?,
        ),
        DType::I64 => Data::I64(dims.iter().map(|&d| d as i64).collect()),
        other => return Err(KernelError::new(format!("output_type {other} must be i32 or i64"))),
    };
    Ok(vec![Tensor { shape: vec![dims.len()], data }])
}

#[cfg(test)]
mod tests {
    use npuc_ir::{Constant, DType, DimFormat, DimMetadata, IndexVector, Op, Quantization, Sparsity};

    use super::super::testutil::*;
    use crate::tensor::Data;

    #[test]
    fn reshape_from_operand_attribute_and_stretch() {
        let x = iota(&[2, 3]);
        let r = OpTest::new().input(x.clone()).konst(i32s(&[2], &[3, -1])).one(Op::Reshape { new_shape: None });
        assert_eq!((r.shape.clone(), r.data.clone()), (vec![3, 2], x.data.clone()));
        // No shape operand: the attribute is used.
        let r = OpTest::new().input(x.clone()).one(Op::Reshape { new_shape: Some(vec![6]) });
        assert_eq!(r.shape, vec![6]);
        // Legacy [0] means a scalar.
        let s = OpTest::new().input(f32s(&[1, 1], &[4.0])).one(Op::Reshape { new_shape: Some(vec![0]) });
        assert_eq!(s.shape, Vec::<usize>::new());
        // i64 shape operand without attribute.
        let r = OpTest::new().input(x).konst(i64s(&[3], &[1, -1, 2])).one(Op::Reshape { new_shape: None });
        assert_eq!(r.shape, vec![1, 3, 2]);
    }

    #[test]
    fn reshape_disagreeing_with_the_declared_shape_fails() {
        let r = OpTest::new()
            .input(iota(&[2, 3]))
            .input(i32s(&[2], &[2, 3]))
            .run_with(Op::Reshape { new_shape: None }, vec![ty(DType::F32, &[3, 2], None)]);
        assert_err(r, "declared [3, 2]");
        let r = OpTest::new()
            .input(iota(&[2, 3]))
            .input(i32s(&[2], &[4, -1]))
            .run_with(Op::Reshape { new_shape: None }, vec![ty(DType::F32, &[6], None)]);
        assert_err(r, "cannot infer the -1");
    }

    #[test]
    fn reshape_keeps_i4_bool_and_quantized_data() {
        let x = t(&[4], Data::I4(vec![-8, 7, 0, -1]));
        let r = OpTest::new().input(x.clone()).konst(i32s(&[2], &[2, 2])).one(Op::Reshape { new_shape: None });
        assert_eq!(r.data, x.data);
        let b = t(&[2, 1], Data::Bool(vec![true, false]));
        let r = OpTest::new().input(b.clone()).one(Op::Reshape { new_shape: Some(vec![2]) });
        assert_eq!(r.data, b.data);
        let q = Some(Quantization::per_tensor(0.1, -3));
        let r = OpTest::new().input_q(i8s(&[2, 2], &[1, 2, 3, 4]), q).one(Op::Reshape { new_shape: Some(vec![4]) });
        assert_eq!(r.data, Data::I8(vec![1, 2, 3, 4]));
    }

    #[test]
    fn squeeze_all_listed_and_negative_axes() {
        let x = iota(&[1, 2, 1, 3, 1]);
        assert_eq!(OpTest::new().input(x.clone()).one(Op::Squeeze { axes: vec![] }).shape, vec![2, 3]);
        assert_eq!(OpTest::new().input(x.clone()).one(Op::Squeeze { axes: vec![-1, 0] }).shape, vec![2, 1, 3]);
        let r =
            OpTest::new().input(x).run_with(Op::Squeeze { axes: vec![1] }, vec![ty(DType::F32, &[1, 1, 3, 1], None)]);
        assert_err(r, "cannot squeeze dimension 1 of size 2");
    }

    #[test]
    fn expand_dims_positive_and_negative_axis() {
        let x = t(&[2, 3], Data::I64((0..6).collect()));
        let r = OpTest::new().input(x.clone()).konst(i32s(&[], &[-1])).one(Op::ExpandDims);
        assert_eq!((r.shape, r.data), (vec![2, 3, 1], x.data.clone()));
        let r = OpTest::new().input(x.clone()).konst(i64s(&[1], &[0])).one(Op::ExpandDims);
        assert_eq!(r.shape, vec![1, 2, 3]);
        let r = OpTest::new().input(x).konst(i32s(&[], &[-3])).one(Op::ExpandDims);
        assert_eq!(r.shape, vec![1, 2, 3]);
    }

    #[test]
    fn shape_reports_dimensions() {
        let r = OpTest::new().input(t(&[2, 1, 3], Data::I8(vec![0; 6]))).one(Op::Shape { output_type: DType::I32 });
        assert_eq!((r.shape, r.data), (vec![3], Data::I32(vec![2, 1, 3])));
        let r = OpTest::new().input(iota(&[4])).one(Op::Shape { output_type: DType::I64 });
        assert_eq!(r.data, Data::I64(vec![4]));
    }

    #[test]
    fn densify_copies_the_prepared_dense_constant() {
        // 2x3 CSR: [[0, 5, 0], [7, 0, 9]].
        let ty_ = ty(DType::F32, &[2, 3], None);
        let mut g = npuc_ir::Graph::new("d");
        let vals: Vec<u8> = [5.0f32, 7.0, 9.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let c = g.add_const("w", ty_.clone(), Constant::from(vals));
        g.value_mut(c).sparsity = Some(Sparsity {
            traversal_order: vec![0, 1],
            block_map: vec![],
            dim_metadata: vec![
                DimMetadata { format: DimFormat::Dense, dense_size: 2, array_segments: None, array_indices: None },
                DimMetadata {
                    format: DimFormat::SparseCsr,
                    dense_size: 0,
                    array_segments: Some(IndexVector::I32(vec![0, 1, 3])),
                    array_indices: Some(IndexVector::U8(vec![1, 0, 2])),
                },
            ],
        });
        let y = g.add_value(npuc_ir::Value::new("y", ty_));
        g.add_op(npuc_ir::Operation::new(Op::Densify, vec![Some(c)], vec![y])).unwrap();
        g.outputs.push(y);
        let out = crate::Interpreter::new(&g, &Default::default()).unwrap().run(vec![]).unwrap();
        assert_eq!(out[0].data, Data::F32(vec![0.0, 5.0, 0.0, 7.0, 0.0, 9.0]));
    }
}
