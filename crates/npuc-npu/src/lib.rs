//! npuc's NPU back end.
//!
//! This crate turns an optimized, quantized graph into what an NPU executes. For now it holds
//! [`codec`], the encoder and decoder of the Arm Ethos-U55/U65 compressed weight stream,
//! interoperable with Vela's `ethosu.mlw_codec`, and [`reorder`], the weight traversal order
//! with its zero padding and the per-channel scale/bias record. Lowering (partition,
//! schedule), memory planning, the artifact and the simulator arrive in later steps. It is
//! not a TFLite reader (see `npuc-tflite`) nor an interpreter.

pub mod codec;
pub mod reorder;
