//! npuc's NPU back end.
//!
//! This crate turns an optimized, quantized graph into what an NPU executes. For now it holds
//! [`codec`], the encoder and decoder of the Arm Ethos-U55/U65 compressed weight stream,
//! interoperable with Vela's `ethosu.mlw_codec`; [`reorder`], the weight traversal order
//! with its zero padding and the per-channel scale/bias record; [`plan`], the memory
//! planner (liveness-based offsets in the SRAM arena with reshape aliasing, flash offsets of
//! the constants); [`partition`], the NPU/CPU split of a graph for a target with a
//! reason per CPU op; [`block`], the OFM block configuration search; and [`perf`], the
//! performance model (cycles by component, bytes per memory level, energy) calibrated
//! against Arm's Vela, also a stage-table cost provider. Scheduling, the artifact and the
//! simulator arrive in later steps. It
//! is not a TFLite reader (see `npuc-tflite`) nor an interpreter.

pub mod block;
pub mod codec;
pub mod partition;
pub mod perf;
pub mod plan;
pub mod reorder;
