//! Runtime tensors: a shape and typed element storage.

use half::{bf16, f16};
use npuc_ir::{Constant, DType, TensorType};

use crate::error::InterpError;

/// Typed element storage, one variant per dtype. `I4` is kept unpacked (one `i8` per
/// element, sign-extended) because every kernel wants elements, not nibbles.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i4 elements, unpacked.
    I4(Vec<i8>),
    /// i8 elements.
    I8(Vec<i8>),
    /// u8 elements.
    U8(Vec<u8>),
    /// i16 elements.
    I16(Vec<i16>),
    /// u16 elements.
    U16(Vec<u16>),
    /// i32 elements.
    I32(Vec<i32>),
    /// u32 elements.
    U32(Vec<u32>),
    /// i64 elements.
    I64(Vec<i64>),
    /// u64 elements.
    U64(Vec<u64>),
    /// bool elements.
    Bool(Vec<bool>),
}

/// Applies `$body` to the vector inside any [`Data`] variant, binding it as `$v`.
#[macro_export]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::Data::F32($v) => $body,
            $crate::Data::F16($v) => $body,
            $crate::Data::BF16($v) => $body,
            $crate::Data::F64($v) => $body,
            $crate::Data::I4($v) => $body,
            $crate::Data::I8($v) => $body,
            $crate::Data::U8($v) => $body,
            $crate::Data::I16($v) => $body,
            $crate::Data::U16($v) => $body,
            $crate::Data::I32($v) => $body,
            $crate::Data::U32($v) => $body,
            $crate::Data::I64($v) => $body,
            $crate::Data::U64($v) => $body,
            $crate::Data::Bool($v) => $body,
        }
    };
}

impl Data {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::F64(_) => DType::F64,
            Data::I4(_) => DType::I4,
            Data::I8(_) => DType::I8,
            Data::U8(_) => DType::U8,
            Data::I16(_) => DType::I16,
            Data::U16(_) => DType::U16,
            Data::I32(_) => DType::I32,
            Data::U32(_) => DType::U32,
            Data::I64(_) => DType::I64,
            Data::U64(_) => DType::U64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zero elements of `dtype`.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F16 => Data::F16(vec![f16::ZERO; n]),
            DType::BF16 => Data::BF16(vec![bf16::ZERO; n]),
            DType::F64 => Data::F64(vec![0.0; n]),
            DType::I4 => Data::I4(vec![0; n]),
            DType::I8 => Data::I8(vec![0; n]),
            DType::U8 => Data::U8(vec![0; n]),
            DType::I16 => Data::I16(vec![0; n]),
            DType::U16 => Data::U16(vec![0; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::U32 => Data::U32(vec![0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::U64 => Data::U64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
        }
    }

    /// Decodes `n` elements of `dtype` from little-endian storage bytes (`I4` packed two
    /// per byte, low nibble first).
    pub fn from_le_bytes(dtype: DType, bytes: &[u8], n: usize) -> Option<Data> {
        if dtype.storage_bytes(n as u64)? != bytes.len() as u64 {
            return None;
        }
        macro_rules! le {
            ($t:ty, $w:expr) => {
                bytes.chunks_exact($w).map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk width"))).collect()
            };
        }
        Some(match dtype {
            DType::F32 => Data::F32(le!(f32, 4)),
            DType::F16 => Data::F16(bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()),
            DType::BF16 => Data::BF16(bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]])).collect()),
            DType::F64 => Data::F64(le!(f64, 8)),
            DType::I4 => Data::I4(
                (0..n)
                    .map(|i| {
                        let b = bytes[i / 2];
                        let nib = if i % 2 == 0 { b & 0x0f } else { b >> 4 };
                        ((nib << 4) as i8) >> 4
                    })
                    .collect(),
            ),
            DType::I8 => Data::I8(bytes.iter().map(|&b| b as i8).collect()),
            DType::U8 => Data::U8(bytes.to_vec()),
            DType::I16 => Data::I16(le!(i16, 2)),
            DType::U16 => Data::U16(le!(u16, 2)),
            DType::I32 => Data::I32(le!(i32, 4)),
            DType::U32 => Data::U32(le!(u32, 4)),
            DType::I64 => Data::I64(le!(i64, 8)),
            DType::U64 => Data::U64(le!(u64, 8)),
            DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
        })
    }

    /// Encodes the elements as little-endian storage bytes (`I4` packed).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I4(v) => {
                v.chunks(2).map(|c| (c[0] as u8 & 0x0f) | ((c.get(1).copied().unwrap_or(0) as u8) << 4)).collect()
            }
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) => v.clone(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&b| b as u8).collect(),
        }
    }

    /// Elements widened to f64 (for summaries and tolerance checks; not for kernels).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            Data::F64(v) => v.clone(),
            Data::I4(v) | Data::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }
}

/// A runtime tensor: shape plus elements (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements.
    pub data: Data,
}

impl Tensor {
    /// A tensor from shape and data; the element count must match the shape.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, InterpError> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(InterpError::Input {
                name: String::new(),
                reason: format!("shape {shape:?} has {n} elements but {} were given", data.len()),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A zero tensor of the given type.
    pub fn zeros(ty: &TensorType) -> Tensor {
        let n: usize = ty.shape.iter().product();
        Tensor { shape: ty.shape.clone(), data: Data::zeros(ty.dtype, n) }
    }

    /// A dense tensor decoded from constant bytes of type `ty`.
    pub fn from_constant(ty: &TensorType, c: &Constant) -> Option<Tensor> {
        let n = usize::try_from(ty.num_elements()?).ok()?;
        let bytes = c.bytes()?;
        Some(Tensor { shape: ty.shape.clone(), data: Data::from_le_bytes(ty.dtype, bytes, n)? })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The f32 elements, if the tensor is f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The i8 elements, if the tensor is i8.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.data {
            Data::I8(v) => Some(v),
            _ => None,
        }
    }

    /// The i32 elements, if the tensor is i32.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            Data::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Integer elements widened to i64 (for shape/axis/index operands), `None` for floats.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            Data::I4(v) | Data::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::U16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I64(v) => v.clone(),
            Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }
}
