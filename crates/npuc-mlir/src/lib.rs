//! npuc's MLIR export: a [`npuc_ir::Graph`] as a `func.func @main` of TOSA ops, built with
//! melior and checked by MLIR's own verifier before it is printed.
//!
//! Everything that touches MLIR sits behind the cargo feature `mlir`, which needs LLVM/MLIR
//! 22 (`libmlir-22-dev`, `MLIR_SYS_220_PREFIX`, `TABLEGEN_220_PREFIX`); without it the crate
//! holds only the LLVM-free layout arithmetic and its error type, so default builds of npuc
//! need no LLVM. It is not an MLIR importer, runs no MLIR passes and does not lower past TOSA.
//!
//! This step covers float graphs; quantized tensors are reported as unsupported with the
//! op's name and index, as is every op TOSA cannot express.

pub mod cost;
pub mod error;
#[cfg(feature = "mlir")]
mod export;
pub mod layout;

pub use cost::{graph_cost, op_cost, Cost, COST_ATTRIBUTE};
pub use error::MlirError;
#[cfg(feature = "mlir")]
pub use export::{export_graph, export_module};
