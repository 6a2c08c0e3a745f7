//! Canonicalization passes: plumbing rewrites that put a graph in a normal form without
//! changing what it computes.
//!
//! For now one pass, [`DCE`] (`dce`). Each pass is declared as a [`PassInfo`] constant the
//! driver lists in its registry. This crate is not for algebraic rewrites (those are egg
//! rules in their own crates) nor for anything target-specific.

mod dce;

pub use dce::{eliminate_dead_code, Dce, DCE};
