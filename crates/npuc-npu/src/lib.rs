//! npuc's NPU back end.
//!
//! This crate turns an optimized, quantized graph into what an NPU executes: [`partition`]
//! decides NPU or CPU per op with a reason; [`plan`] places every activation in the SRAM
//! arena (liveness, reshape aliasing) and the constants in flash; [`reorder`] and [`codec`]
//! produce the Arm Ethos-U55/U65 compressed weight stream (interoperable with Vela's
//! `ethosu.mlw_codec`) and the per-channel scale/bias records; [`lower`] ties these into an
//! [`program::NpuProgram`] (command stream, weights, records, tables, memory map, I/O
//! descriptors, CPU fallback as embedded TFLite); [`artifact`] writes and reads it as a
//! checksummed `.npu` file (docs/artifact-format.md); [`sim`] executes a program from its
//! own bytes, bit-exact with the reference interpreter; [`block`] searches the OFM block
//! configuration per op and [`perf`] is the cycle, memory and energy model calibrated
//! against Arm's Vela (also a stage-table cost provider). It is not a TFLite reader (see
//! `npuc-tflite`), nor an interpreter of graphs.

pub mod artifact;
pub mod block;
pub mod codec;
mod exec;
pub mod lower;
pub mod mac;
pub mod partition;
pub mod perf;
pub mod plan;
pub mod program;
pub mod reorder;
pub mod schedule;
pub mod sim;
