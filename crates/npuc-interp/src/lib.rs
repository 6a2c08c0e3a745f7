//! npuc's reference interpreter.
//!
//! Executes a [`npuc_ir::Graph`] on concrete inputs. Float graphs run f32 kernels; quantized
//! graphs run integer kernels that reproduce TFLite's reference kernels bit for bit
//! (fixed-point multipliers, rounding, saturation, lookup tables). Every later stage leans
//! on it: passes prove they kept what a model computes, quantization calibrates through its
//! [`Observer`] hook, and the NPU simulator is checked against it.
//!
//! Control flow (IF, WHILE) runs the module's other graphs: prepare such a graph with
//! [`Interpreter::for_module`], which checks the calls and bounds every WHILE loop
//! ([`Interpreter::with_while_limit`], default [`DEFAULT_WHILE_LIMIT`] iterations).
//!
//! It is not an optimizing runtime and knows nothing of targets; opaque operators are
//! rejected with their name and position rather than guessed at.

pub mod error;
mod interpreter;
pub mod kernels;
pub mod npy;
mod random;
pub mod sparse;
pub mod tensor;

pub use error::{InterpError, KernelError};
pub use interpreter::{Interpreter, Observer, Options, DEFAULT_WHILE_LIMIT};
/// TFLite's fixed-point primitives, for back ends that must requantize exactly as the kernels do.
pub use kernels::quant::fixed_point;
/// TFLite's multiplier encoding, for back ends that must requantize exactly as the kernels do.
pub use kernels::quant::fixed_point::{mean_multiplier, quantize_multiplier, QuantizedMultiplier};
/// Source taps of int8/int16 bilinear resize, for back ends that must resize exactly as it does.
pub use kernels::quant::lut::bilinear_taps_q10;
/// The exponential table of 8-bit softmax, for back ends that must run its arithmetic.
pub use kernels::quant::lut::softmax_8bit_exp_table;
pub use random::{random_inputs, random_tensor};
pub use tensor::{Data, Tensor};
