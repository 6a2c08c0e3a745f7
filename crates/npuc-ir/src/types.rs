//! Element types, shapes, quantization and sparsity of tensors.

use std::fmt;

/// Element type of a tensor.
///
/// The set covers what edge models carry; `I4` is packed two values per byte,
/// low nibble first, as TFLite stores INT4 buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE 754 binary64.
    F64,
    /// Signed 4-bit integer, packed two per byte.
    I4,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte per element.
    Bool,
}

impl DType {
    /// Every dtype, in a fixed order (used by parsers and property tests).
    pub const ALL: [DType; 14] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::F64,
        DType::I4,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::Bool,
    ];

    /// Width of one element in bits.
    pub fn bits(self) -> u32 {
        match self {
            DType::I4 => 4,
            DType::I8 | DType::U8 | DType::Bool => 8,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 16,
            DType::F32 | DType::I32 | DType::U32 => 32,
            DType::F64 | DType::I64 | DType::U64 => 64,
        }
    }

    /// Bytes needed to store `elements` values of this type (packed for `I4`).
    pub fn storage_bytes(self, elements: u64) -> Option<u64> {
        match self {
            DType::I4 => Some(elements.div_ceil(2)),
            _ => elements.checked_mul(u64::from(self.bits() / 8)),
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
    }

    /// Whether the type is an integer type (bool excluded).
    pub fn is_int(self) -> bool {
        !self.is_float() && self != DType::Bool
    }

    /// The name used by the text format (`f32`, `i8`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F64 => "f64",
            DType::I4 => "i4",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::I16 => "i16",
            DType::U16 => "u16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::I64 => "i64",
            DType::U64 => "u64",
            DType::Bool => "bool",
        }
    }

    /// Parses a text-format name back into a dtype.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Affine quantization `real = scale * (q - zero_point)`, per tensor or per channel.
///
/// Per-tensor quantization has one scale; per-channel quantization has one scale per
/// index of dimension `axis`. `min`/`max` are kept only because TFLite files carry them
/// (calibration ranges) and a lossless round trip must not drop them.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Quantization {
    /// Scales, one per tensor or per channel.
    pub scale: Vec<f32>,
    /// Zero points, as many as scales.
    pub zero_point: Vec<i64>,
    /// The quantized dimension for per-channel quantization (0 when per tensor).
    pub axis: u32,
    /// Recorded minimum of the real values, if any.
    pub min: Vec<f32>,
    /// Recorded maximum of the real values, if any.
    pub max: Vec<f32>,
}

impl Quantization {
    /// Per-tensor quantization with one scale and zero point.
    pub fn per_tensor(scale: f32, zero_point: i64) -> Self {
        Quantization { scale: vec![scale], zero_point: vec![zero_point], ..Default::default() }
    }

    /// Per-channel quantization along `axis`.
    pub fn per_channel(scale: Vec<f32>, zero_point: Vec<i64>, axis: u32) -> Self {
        Quantization { scale, zero_point, axis, ..Default::default() }
    }

    /// Whether there is more than one scale (per-channel).
    pub fn is_per_channel(&self) -> bool {
        self.scale.len() > 1
    }

    /// Whether nothing at all is recorded (equivalent to no quantization).
    pub fn is_empty(&self) -> bool {
        self.scale.is_empty() && self.zero_point.is_empty() && self.min.is_empty() && self.max.is_empty()
    }
}

/// Static tensor type: element type, shape and optional quantization.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// Quantization parameters, if the tensor is quantized.
    pub quant: Option<Quantization>,
}

/// Upper bound on the elements of one tensor: 2^32. Larger declared sizes are treated as
/// corrupt input rather than allocated (no edge model comes near it).
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 32;

impl TensorType {
    /// A tensor type without quantization.
    pub fn new(dtype: DType, shape: Vec<usize>) -> Self {
        TensorType { dtype, shape, quant: None }
    }

    /// The same type with quantization attached.
    pub fn with_quant(mut self, q: Quantization) -> Self {
        self.quant = Some(q);
        self
    }

    /// Number of elements, or `None` on overflow of `u64`.
    pub fn num_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
    }

    /// Bytes needed to store the tensor, or `None` on overflow.
    pub fn storage_bytes(&self) -> Option<u64> {
        self.dtype.storage_bytes(self.num_elements()?)
    }

    /// Rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Same element type and shape, ignoring quantization.
    pub fn same_shape_and_dtype(&self, other: &TensorType) -> bool {
        self.dtype == other.dtype && self.shape == other.shape
    }
}

/// Storage format of one dimension of a sparse tensor (TFLite `DimensionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimFormat {
    /// Stored densely; `dense_size` gives its extent.
    Dense,
    /// Compressed sparse row: segments and indices.
    SparseCsr,
}

/// An index vector of a sparse dimension, kept in the integer width the file used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexVector {
    /// 32-bit indices.
    I32(Vec<i32>),
    /// 16-bit indices.
    U16(Vec<u16>),
    /// 8-bit indices.
    U8(Vec<u8>),
}

impl IndexVector {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            IndexVector::I32(v) => v.len(),
            IndexVector::U16(v) => v.len(),
            IndexVector::U8(v) => v.len(),
        }
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i` widened to `i64`.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IndexVector::I32(v) => v.get(i).map(|&x| i64::from(x)),
            IndexVector::U16(v) => v.get(i).map(|&x| i64::from(x)),
            IndexVector::U8(v) => v.get(i).map(|&x| i64::from(x)),
        }
    }
}

/// Metadata of one traversal dimension of a sparse tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimMetadata {
    /// Dense or CSR.
    pub format: DimFormat,
    /// Extent of a dense dimension.
    pub dense_size: i32,
    /// CSR segment boundaries.
    pub array_segments: Option<IndexVector>,
    /// CSR indices.
    pub array_indices: Option<IndexVector>,
}

/// Sparse storage of a constant (TFLite `SparsityParameters`), kept so a DENSIFY input
/// round-trips; the dense type of the value is still the tensor's `TensorType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sparsity {
    /// Order in which dimensions (including block dimensions) are traversed.
    pub traversal_order: Vec<i32>,
    /// Which original dimension each block dimension splits.
    pub block_map: Vec<i32>,
    /// One entry per traversal dimension.
    pub dim_metadata: Vec<DimMetadata>,
}
