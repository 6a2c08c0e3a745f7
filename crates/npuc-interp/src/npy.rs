//! Tensors to and from NumPy `.npy` files (through the `npyz` crate).

use std::io::Cursor;

use crate::tensor::{Data, Tensor};
use half::f16;
use npuc_ir::DType;
use npyz::{TypeChar, WriterBuilder};

/// How NumPy stores each dtype `.npy` files can hold: type character and byte size.
const NUMPY_TYPES: &[(DType, TypeChar, u64)] = &[
    (DType::F32, TypeChar::Float, 4),
    (DType::F16, TypeChar::Float, 2),
    (DType::F64, TypeChar::Float, 8),
    (DType::I8, TypeChar::Int, 1),
    (DType::U8, TypeChar::Uint, 1),
    (DType::I16, TypeChar::Int, 2),
    (DType::U16, TypeChar::Uint, 2),
    (DType::I32, TypeChar::Int, 4),
    (DType::U32, TypeChar::Uint, 4),
    (DType::I64, TypeChar::Int, 8),
    (DType::U64, TypeChar::Uint, 8),
    (DType::Bool, TypeChar::Bool, 1),
];

type Npy<'a> = npyz::NpyFile<Cursor<&'a [u8]>>;

/// A plain NumPy dtype: type character and byte size.
type PlainType = (TypeChar, u64);

/// Parses the header: the reader positioned at the data, the shape and the plain dtype
/// (type character, byte size).
fn open(bytes: &[u8]) -> Result<(Npy<'_>, Vec<usize>, PlainType), String> {
    let npy = npyz::NpyFile::new(Cursor::new(bytes)).map_err(|e| format!("not a .npy file: {e}"))?;
    if npy.order() != npyz::Order::C {
        return Err("Fortran-ordered arrays are not supported; save with np.ascontiguousarray".into());
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let found = match npy.dtype() {
        npyz::DType::Plain(t) => (t.type_char(), t.size_field()),
        other => return Err(format!("structured dtype {other:?} is not a tensor")),
    };
    Ok((npy, shape, found))
}

/// Decodes the data of an opened file whose dtype has been checked to be `dtype`.
fn decode(npy: Npy<'_>, shape: Vec<usize>, dtype: DType) -> Result<Tensor, String> {
    let err = |e: std::io::Error| format!("cannot read the array data: {e}");
    let data = match dtype {
        DType::F32 => Data::F32(npy.into_vec().map_err(err)?),
        DType::F16 => Data::F16(npy.into_vec::<f16>().map_err(err)?),
        DType::F64 => Data::F64(npy.into_vec().map_err(err)?),
        DType::I8 => Data::I8(npy.into_vec().map_err(err)?),
        DType::U8 => Data::U8(npy.into_vec().map_err(err)?),
        DType::I16 => Data::I16(npy.into_vec().map_err(err)?),
        DType::U16 => Data::U16(npy.into_vec().map_err(err)?),
        DType::I32 => Data::I32(npy.into_vec().map_err(err)?),
        DType::U32 => Data::U32(npy.into_vec().map_err(err)?),
        DType::I64 => Data::I64(npy.into_vec().map_err(err)?),
        DType::U64 => Data::U64(npy.into_vec().map_err(err)?),
        DType::Bool => Data::Bool(npy.into_vec().map_err(err)?),
        DType::I4 | DType::BF16 => return Err(format!("{dtype} inputs cannot be read from .npy")),
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// Reads a `.npy` file's bytes as a tensor of `want` dtype; the file's own dtype must
/// match (no silent conversion: a float file fed to an int8 input is a user error).
pub fn read(bytes: &[u8], want: DType) -> Result<Tensor, String> {
    let (npy, shape, found) = open(bytes)?;
    let Some(&(_, c, size)) = NUMPY_TYPES.iter().find(|t| t.0 == want) else {
        return Err(format!("{want} inputs cannot be read from .npy"));
    };
    if found != (c, size) {
        return Err(format!("array has dtype {:?}{} but the input is {}", found.0, found.1, want));
    }
    decode(npy, shape, want)
}

/// Reads a `.npy` file's bytes as a tensor of whatever dtype the file holds.
pub fn read_any(bytes: &[u8]) -> Result<Tensor, String> {
    let (npy, shape, found) = open(bytes)?;
    let Some(&(dtype, ..)) = NUMPY_TYPES.iter().find(|t| (t.1, t.2) == found) else {
        return Err(format!("array has dtype {:?}{}, which is not a tensor dtype", found.0, found.1));
    };
    decode(npy, shape, dtype)
}

/// Encodes a tensor as `.npy` bytes (`i4` as int8, `bf16` widened to f32: NumPy has neither).
pub fn write(t: &Tensor) -> Result<Vec<u8>, String> {
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut buf = Vec::new();
    macro_rules! emit {
        ($ty:ty, $iter:expr) => {{
            let mut w = npyz::WriteOptions::<$ty>::new()
                .default_dtype()
                .shape(&shape)
                .writer(&mut buf)
                .begin_nd()
                .map_err(|e| e.to_string())?;
            w.extend($iter).map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())?;
        }};
    }
    match &t.data {
        Data::F32(v) => emit!(f32, v.iter().copied()),
        Data::F16(v) => emit!(f16, v.iter().copied()),
        Data::BF16(v) => emit!(f32, v.iter().map(|x| x.to_f32())),
        Data::F64(v) => emit!(f64, v.iter().copied()),
        Data::I4(v) | Data::I8(v) => emit!(i8, v.iter().copied()),
        Data::U8(v) => emit!(u8, v.iter().copied()),
        Data::I16(v) => emit!(i16, v.iter().copied()),
        Data::U16(v) => emit!(u16, v.iter().copied()),
        Data::I32(v) => emit!(i32, v.iter().copied()),
        Data::U32(v) => emit!(u32, v.iter().copied()),
        Data::I64(v) => emit!(i64, v.iter().copied()),
        Data::U64(v) => emit!(u64, v.iter().copied()),
        Data::Bool(v) => emit!(bool, v.iter().copied()),
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_numpy_dtype() {
        let cases = vec![
            Tensor::new(vec![2, 2], Data::F32(vec![1.5, -2.0, 0.0, f32::MAX])).unwrap(),
            Tensor::new(vec![3], Data::I8(vec![-128, 0, 127])).unwrap(),
            Tensor::new(vec![1, 2], Data::I64(vec![i64::MIN, 7])).unwrap(),
            Tensor::new(vec![2], Data::Bool(vec![true, false])).unwrap(),
            Tensor::new(vec![], Data::I32(vec![42])).unwrap(),
            Tensor::new(vec![2], Data::F16(vec![f16::from_f32(0.5), f16::from_f32(-3.0)])).unwrap(),
        ];
        for t in cases {
            let bytes = write(&t).unwrap();
            assert_eq!(&bytes[..6], b"\x93NUMPY");
            assert_eq!(read(&bytes, t.dtype()).unwrap(), t);
            assert_eq!(read_any(&bytes).unwrap(), t);
        }
    }

    #[test]
    fn dtype_mismatch_is_an_error() {
        let bytes = write(&Tensor::new(vec![2], Data::F32(vec![1.0, 2.0])).unwrap()).unwrap();
        let e = read(&bytes, DType::I8).unwrap_err();
        assert!(e.contains("but the input is i8"), "{e}");
        assert!(read(b"garbage", DType::F32).unwrap_err().contains("not a .npy file"));
    }

    #[test]
    fn read_any_takes_the_dtype_from_the_header() {
        for t in [
            Tensor::new(vec![2], Data::U16(vec![0, u16::MAX])).unwrap(),
            Tensor::new(vec![1, 2], Data::I16(vec![-7, 300])).unwrap(),
            Tensor::new(vec![2], Data::F64(vec![0.25, -1e300])).unwrap(),
            Tensor::new(vec![1], Data::U8(vec![200])).unwrap(),
        ] {
            let got = read_any(&write(&t).unwrap()).unwrap();
            assert_eq!(got.dtype(), t.dtype());
            assert_eq!(got, t);
        }
        assert!(read_any(b"garbage").unwrap_err().contains("not a .npy file"));
    }
}
