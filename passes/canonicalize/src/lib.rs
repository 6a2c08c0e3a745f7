//! Canonicalization passes: plumbing rewrites that put a graph in a normal form without
//! changing what it computes.
//!
//! [`DCE`] (`dce`), [`FUSE_ACTIVATION`] (`fuse-activation`) and [`REMOVE_IDENTITY`]
//! (`remove-identity`). Each pass is declared as a [`PassInfo`](npuc_pass::PassInfo)
//! constant the driver lists in its registry. This crate is not for algebraic rewrites
//! (those are egg rules in their own crates) nor for anything target-specific.

mod dce;
mod fuse_activation;
mod remove_identity;

pub use dce::{eliminate_dead_code, Dce, DCE};
pub use fuse_activation::{fuse_activations, FuseActivation, FUSE_ACTIVATION};
pub use remove_identity::{remove_identities, RemoveIdentity, REMOVE_IDENTITY};
