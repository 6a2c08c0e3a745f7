//! npuc's NPU back end.
//!
//! This crate turns an optimized, quantized graph into what an NPU executes. For now it holds
//! [`codec`], the encoder and decoder of the Arm Ethos-U55/U65 compressed weight stream,
//! interoperable with Vela's `ethosu.mlw_codec`; [`reorder`], the weight traversal order
//! with its zero padding and the per-channel scale/bias record; [`plan`], the memory
//! planner (liveness-based offsets in the SRAM arena with reshape aliasing, flash offsets of
//! the constants); and [`partition`], the NPU/CPU split of a graph for a target with a
//! reason per CPU op. Scheduling, the artifact and the simulator arrive in later steps. It
//! is not a TFLite reader (see `npuc-tflite`) nor an interpreter.

pub mod artifact;
pub mod codec;
mod exec;
pub mod lower;
pub mod partition;
pub mod plan;
pub mod program;
pub mod reorder;
pub mod sim;
