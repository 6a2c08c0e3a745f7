//! npuc's graph IR.
//!
//! This crate is the one representation every other part of npuc speaks: front ends build
//! a [`Module`] of [`Graph`]s, passes rewrite them, back ends consume them. It holds the
//! data structures ([`Graph`], [`Op`], [`TensorType`], [`Quantization`], shared
//! [`Constant`] data), shape inference, the verifier, the `.nir` text format (printer and
//! parser, see `docs/ir.md`) and Graphviz export.
//!
//! It is not a front end (no file formats but its own text), not an interpreter and not a
//! place for target knowledge.
//!
//! Graph representation: operations are nodes of a petgraph `StableDiGraph`; values live
//! in an arena indexed by [`ValueId`] and edges point into it (see [`Graph`]).

pub mod constant;
pub mod dot;
pub mod error;
pub mod graph;
pub mod op;
pub mod parse;
pub mod print;
pub mod shape;
pub mod stats;
pub mod types;
pub mod verify;

pub use constant::Constant;
pub use dot::to_dot;
pub use error::IrError;
pub use graph::{Edge, Graph, Metadata, Module, OpId, Operation, Signature, Value, ValueId};
pub use op::*;
pub use parse::{parse_graph, parse_module};
pub use print::{print_graph, print_module, PrintOptions};
pub use shape::{infer, infer_call_types, infer_output_types, InferredType};
pub use types::*;
pub use verify::{verify_calls, verify_graph, verify_module};
