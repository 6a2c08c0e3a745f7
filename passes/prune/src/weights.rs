//! Reading and rewriting weight constants: real magnitudes, zeroing elements, slicing
//! along an axis (with per-channel quantization parameters kept in step).

use npuc_ir::{DType, Graph, OpId, Quantization, TensorType, ValueId};
use thiserror::Error;

/// Why a constant cannot be pruned or sliced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WeightError {
    /// The operand is missing or produced by an op (e.g. DEQUANTIZE of f16 weights).
    #[error("operand {slot} is not a constant")]
    NotConstant {
        /// Operand slot.
        slot: usize,
    },
    /// The constant's bytes are unknown (elided text) or stored sparse.
    #[error("constant '{name}' is elided or stored sparse")]
    Unavailable {
        /// Tensor name.
        name: String,
    },
    /// The element type is not supported.
    #[error("constant '{name}' has element type {dtype} (supported: f32, and i8/i16 with symmetric quantization)")]
    DType {
        /// Tensor name.
        name: String,
        /// Its type.
        dtype: DType,
    },
    /// Quantized weights with a non-zero zero point: zero is not `q = 0`.
    #[error("constant '{name}' is quantized with a non-zero zero point")]
    Asymmetric {
        /// Tensor name.
        name: String,
    },
    /// Declared shape and data length disagree.
    #[error("constant '{name}' has {found} bytes, its type needs {expected}")]
    Length {
        /// Tensor name.
        name: String,
        /// Bytes the type needs.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
}

/// The constant at operand `slot` of `op`, checked to be readable.
pub fn const_operand(g: &Graph, op: OpId, slot: usize) -> Result<ValueId, WeightError> {
    let v = g.op(op).input(slot).ok_or(WeightError::NotConstant { slot })?;
    let val = g.value(v);
    if !val.is_constant() {
        return Err(WeightError::NotConstant { slot });
    }
    if val.sparsity.is_some() || val.data.as_ref().is_none_or(|d| d.is_elided()) {
        return Err(WeightError::Unavailable { name: val.name.clone() });
    }
    Ok(v)
}

/// Bytes of one element, for types sliced bytewise (everything but packed `i4`).
pub fn element_bytes(name: &str, dtype: DType) -> Result<usize, WeightError> {
    if dtype == DType::I4 {
        return Err(WeightError::DType { name: name.into(), dtype });
    }
    Ok((dtype.bits() / 8) as usize)
}

/// A constant's bytes, length-checked against its type.
pub fn bytes_of(g: &Graph, v: ValueId) -> Result<Vec<u8>, WeightError> {
    let val = g.value(v);
    let name = &val.name;
    let data =
        val.data.as_ref().and_then(|d| d.bytes()).ok_or_else(|| WeightError::Unavailable { name: name.clone() })?;
    let expected = val.ty.storage_bytes().unwrap_or(u64::MAX);
    if data.len() as u64 != expected {
        return Err(WeightError::Length { name: name.clone(), expected: expected as usize, found: data.len() });
    }
    Ok(data.to_vec())
}

/// Real magnitudes `|w|` of every element of a weight constant: f32 as is, i8/i16 as
/// `|q|·scale` of its channel. Zeroing an element must mean writing zero bytes, so
/// quantized weights need all zero points 0.
pub fn magnitudes(g: &Graph, v: ValueId) -> Result<Vec<f64>, WeightError> {
    let val = g.value(v);
    let name = &val.name;
    let bytes = bytes_of(g, v)?;
    match val.ty.dtype {
        DType::F32 => {
            Ok(bytes.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]).abs())).collect())
        }
        DType::I8 | DType::I16 => {
            let q =
                val.ty.quant.as_ref().ok_or_else(|| WeightError::DType { name: name.clone(), dtype: val.ty.dtype })?;
            if q.scale.is_empty() || q.zero_point.iter().any(|&z| z != 0) {
                return Err(WeightError::Asymmetric { name: name.clone() });
            }
            let ints: Vec<f64> = if val.ty.dtype == DType::I8 {
                bytes.iter().map(|&b| f64::from((b as i8).unsigned_abs())).collect()
            } else {
                bytes.chunks_exact(2).map(|c| f64::from(i16::from_le_bytes([c[0], c[1]]).unsigned_abs())).collect()
            };
            Ok(scale_by_channel(&ints, &val.ty.shape, q))
        }
        dtype => Err(WeightError::DType { name: name.clone(), dtype }),
    }
}

/// Multiplies each element by the scale of its channel along `q.axis` (per tensor: one).
fn scale_by_channel(ints: &[f64], shape: &[usize], q: &Quantization) -> Vec<f64> {
    if !q.is_per_channel() {
        let s = f64::from(q.scale[0]).abs();
        return ints.iter().map(|x| x * s).collect();
    }
    let axis = q.axis as usize;
    let inner: usize = shape.iter().skip(axis + 1).product();
    let dim = shape.get(axis).copied().unwrap_or(1);
    ints.iter()
        .enumerate()
        .map(|(i, x)| {
            let c = (i / inner.max(1)) % dim.max(1);
            x * f64::from(q.scale.get(c).copied().unwrap_or(0.0)).abs()
        })
        .collect()
}

/// Writes zero bytes over element `i` (zero is all-zero bytes in f32, f16 and symmetric
/// integer storage).
pub fn zero_element(bytes: &mut [u8], elem: usize, i: usize) {
    bytes[i * elem..(i + 1) * elem].fill(0);
}

/// `bytes` (row-major, `shape`, `elem` bytes per element) with only the indices `keep`
/// of dimension `axis` left.
pub fn slice_axis(bytes: &[u8], shape: &[usize], elem: usize, axis: usize, keep: &[usize]) -> Vec<u8> {
    let outer: usize = shape[..axis].iter().product();
    let dim = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product::<usize>() * elem;
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            let start = (o * dim + k) * inner;
            out.extend_from_slice(&bytes[start..start + inner]);
        }
    }
    out
}

/// `ty` with dimension `axis` cut to the indices `keep`; per-channel quantization along
/// that axis keeps the matching scales and zero points.
pub fn slice_type(ty: &TensorType, axis: usize, keep: &[usize]) -> TensorType {
    let mut out = ty.clone();
    let dim = ty.shape[axis];
    out.shape[axis] = keep.len();
    if let Some(q) = &mut out.quant {
        if q.is_per_channel() && q.axis as usize == axis && q.scale.len() == dim {
            let pick = |v: &Vec<f32>| if v.len() == dim { keep.iter().map(|&k| v[k]).collect() } else { v.clone() };
            q.scale = pick(&q.scale);
            q.min = pick(&q.min);
            q.max = pick(&q.max);
            if q.zero_point.len() == dim {
                q.zero_point = keep.iter().map(|&k| q.zero_point[k]).collect();
            }
        }
    }
    out
}

/// Replaces the constant read at operand `slot` of `op` by `data` of type `ty`. A constant
/// read elsewhere too (shared weights, a graph output) is left alone and `op` gets a copy,
/// so pruning one layer never changes another.
pub fn set_const(g: &mut Graph, op: OpId, slot: usize, data: Vec<u8>, ty: TensorType) {
    let Some(v) = g.op(op).input(slot) else { return };
    let shared = g.uses(v).count() > 1 || g.outputs.contains(&v) || g.inputs.contains(&v);
    if shared {
        let mut val = g.value(v).clone();
        val.producer = None;
        val.data = Some(data.into());
        val.sparsity = None;
        val.shape_signature = None;
        val.ty = ty;
        let nv = g.add_value(val);
        g.set_input(op, slot, Some(nv));
    } else {
        let val = g.value_mut(v);
        val.data = Some(data.into());
        val.sparsity = None;
        if val.ty.shape != ty.shape {
            val.shape_signature = None;
        }
        val.ty = ty;
    }
}
