//! Seeded random inputs, shared by `npuc run` and the pass manager's numerics check so a
//! seed means the same tensors everywhere.

use half::{bf16, f16};
use npuc_ir::{DType, Graph, TensorType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tensor::{Data, Tensor};

/// Seeded random tensor: integers uniform over the dtype's whole range, floats uniform in
/// [-1, 1], bools fair coins. The same seed gives the same tensor on every machine
/// (ChaCha8 is a fixed, portable stream).
pub fn random_tensor(ty: &TensorType, rng: &mut ChaCha8Rng) -> Tensor {
    let n: usize = ty.shape.iter().product();
    let data = match ty.dtype {
        DType::F32 => Data::F32((0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect()),
        DType::F16 => Data::F16((0..n).map(|_| f16::from_f32(rng.random_range(-1.0f32..=1.0))).collect()),
        DType::BF16 => Data::BF16((0..n).map(|_| bf16::from_f32(rng.random_range(-1.0f32..=1.0))).collect()),
        DType::F64 => Data::F64((0..n).map(|_| rng.random_range(-1.0f64..=1.0)).collect()),
        DType::I4 => Data::I4((0..n).map(|_| rng.random_range(-8i8..=7)).collect()),
        DType::I8 => Data::I8((0..n).map(|_| rng.random()).collect()),
        DType::U8 => Data::U8((0..n).map(|_| rng.random()).collect()),
        DType::I16 => Data::I16((0..n).map(|_| rng.random()).collect()),
        DType::U16 => Data::U16((0..n).map(|_| rng.random()).collect()),
        DType::I32 => Data::I32((0..n).map(|_| rng.random()).collect()),
        DType::U32 => Data::U32((0..n).map(|_| rng.random()).collect()),
        DType::I64 => Data::I64((0..n).map(|_| rng.random()).collect()),
        DType::U64 => Data::U64((0..n).map(|_| rng.random()).collect()),
        DType::Bool => Data::Bool((0..n).map(|_| rng.random()).collect()),
    };
    Tensor { shape: ty.shape.clone(), data }
}

/// One random tensor per graph input, in order, from a ChaCha8 stream seeded with `seed`:
/// exactly what `npuc run --seed SEED` feeds when no input is given.
pub fn random_inputs(g: &Graph, seed: u64) -> Vec<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    g.inputs.iter().map(|&v| random_tensor(&g.value(v).ty, &mut rng)).collect()
}
