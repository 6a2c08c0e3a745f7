//! Keyword spotting on MFCC features: DS-CNN and MicroNet-style networks.
//!
//! DS-CNN (Zhang et al., "Hello Edge", 2017): a first conv with a tall kernel (10×4 on
//! 49×10 features) and stride 2, then depthwise-separable blocks of one width, global
//! average pooling and a 12-way classifier (Speech Commands' 10 words, silence, unknown).
//! MicroNet (Banbury et al., MLSys 2021) searched per-layer widths and strides for
//! microcontrollers; the MicroNet-style branch draws every block's width and stride alone.

use npuc_ir::{Activation, IrError, Op};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{pick, round8};
use crate::net::Net;

/// Draws and builds one keyword spotter; returns its description.
pub(super) fn build(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    let (frames, features) = pick(rng, &[(49, 10), (98, 40)]);
    let micronet = rng.random::<bool>();
    let kernel = pick(rng, &[[10, 4], [3, 3], [5, 5], [10, 2]]);
    let blocks = rng.random_range(2..=6);
    let base = pick(rng, &[64, 96, 128, 172, 196, 276]);
    let x = net.input("input", vec![1, frames, features, 1]);
    let mut y = net.conv("conv0", x, kernel, round8(base as f64), 2, Activation::Relu, 2.0)?;
    let mut widths = Vec::new();
    for i in 0..blocks {
        let (width, stride) = if micronet {
            (round8(base as f64 * pick(rng, &[0.5, 0.75, 1.0, 1.25])), if rng.random_range(0..4) == 0 { 2 } else { 1 })
        } else {
            (round8(base as f64), 1)
        };
        // A stride-2 depthwise needs something to halve.
        let stride = if net.shape(y)[1] < 4 || net.shape(y)[2] < 4 { 1 } else { stride };
        widths.push(if stride == 2 { format!("{width}/2") } else { width.to_string() });
        let k = if micronet { pick(rng, &[3, 5]) } else { 3 };
        y = net.depthwise(&format!("block{i}/depthwise"), y, k, stride, Activation::Relu, 2.0)?;
        y = net.conv(&format!("block{i}/pointwise"), y, [1, 1], width, 1, Activation::Relu, 2.0)?;
    }
    let c = net.channels(y);
    let pooled = net.global_mean("pool", y)?;
    let flat = net.reshape("flatten", pooled, &[1, c])?;
    let logits = net.fully_connected("logits", flat, 12, Activation::None, 1.0)?;
    let probs = net.op("probabilities", Op::Softmax { beta: 1.0 }, vec![logits])?;
    net.g.outputs.push(probs);
    Ok(format!(
        "keyword-spotting {} {frames}x{features} k={}x{} widths={}",
        if micronet { "micronet" } else { "ds-cnn" },
        kernel[0],
        kernel[1],
        widths.join(",")
    ))
}
