//! npuc's MLIR export: a [`npuc_ir::Graph`] as a `func.func @main` of TOSA ops, built with
//! melior and checked by MLIR's own verifier before it is printed.
//!
//! Everything that touches MLIR sits behind the cargo feature `mlir`, which needs LLVM/MLIR
//! 22 (`libmlir-22-dev`, `MLIR_SYS_220_PREFIX`, `TABLEGEN_220_PREFIX`); without it the crate
//! holds only the LLVM-free layout arithmetic and its error type, so default builds of npuc
//! need no LLVM. It is not an MLIR importer, runs no MLIR passes and does not lower past TOSA.
//!
//! Float graphs map op for op. Quantized (int8) graphs keep signless integer tensors with
//! the zero points as operands, and every op is lowered to reproduce TFLite's integer
//! kernel (as npuc's interpreter does) bit for bit: convolutions and matmuls accumulate in
//! i32 and `tosa.rescale` requantizes with TFLite's multipliers ([`requant`]); int8
//! elementwise functions become `tosa.table`s, and DIV a 64 Ki-entry pair table, computed
//! by the interpreter ([`lut`]); average pooling, MEAN, SUM, bilinear resize and softmax
//! follow the kernels' own fixed-point arithmetic and rounding. The few ops with no integer
//! lowering here (l2 normalization, squared difference, int16 variants …) are
//! dequantized, computed in f32 and quantized again, which is close to but not guaranteed
//! bit-exact with TFLite. Ops TOSA cannot express (control flow among them) are reported
//! with the op's name and index.

pub mod cost;
pub mod error;
#[cfg(feature = "mlir")]
mod export;
pub mod layout;
pub mod lut;
pub mod requant;

pub use cost::{graph_cost, op_cost, Cost, COST_ATTRIBUTE};
pub use error::MlirError;
#[cfg(feature = "mlir")]
pub use export::{export_graph, export_module};
