//! Canonicalization passes: plumbing rewrites that put a graph in a normal form without
//! changing what it computes.
//!
//! [`DCE`] (`dce`), [`FOLD_CONSTANTS`] (`fold-constants`, which evaluates all-constant ops
//! with `npuc-interp`), [`FUSE_ACTIVATION`] (`fuse-activation`), [`REMOVE_IDENTITY`]
//! (`remove-identity`), [`CANCEL_RESHAPE_TRANSPOSE`] (`cancel-reshape-transpose`), and the
//! umbrella [`CANONICALIZE`] (`canonicalize`), which runs the passes listed in
//! [`CANONICALIZE_PASSES`] to a fixed point. Each pass is declared as a
//! [`PassInfo`](npuc_pass::PassInfo) constant the driver lists in its registry. This crate
//! is not for algebraic rewrites (those are egg rules in their own crates) nor for anything
//! target-specific.

mod cancel_reshape_transpose;
mod canonicalize;
mod dce;
mod fold_constants;
mod fuse_activation;
mod remove_identity;

pub use cancel_reshape_transpose::{
    cancel_reshapes_transposes, CancelReshapeTranspose, CancelStats, CANCEL_RESHAPE_TRANSPOSE,
};
pub use canonicalize::{Canonicalize, CANONICALIZE, CANONICALIZE_PASSES, DEFAULT_MAX_ROUNDS};
pub use dce::{eliminate_dead_code, Dce, DCE};
pub use fold_constants::{fold_constants, FoldConstants, FoldStats, DEFAULT_MAX_BYTES, FOLD_CONSTANTS};
pub use fuse_activation::{fuse_activations, FuseActivation, FUSE_ACTIVATION};
pub use remove_identity::{remove_identities, RemoveIdentity, REMOVE_IDENTITY};
