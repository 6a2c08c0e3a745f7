//! Single-image super resolution: SESR in its deployed (collapsed) form and FSRCNN.
//!
//! SESR (Bhardwaj et al., MLSys 2022): a k×k input conv into f channels, m residual k×k
//! blocks with ReLU or PReLU (the short residual folded into the conv, as collapsed), a long residual, an output conv into scale² channels added to
//! the input, and depth-to-space. After the collapse pass a linear block is one conv, so
//! this is what the NPU runs; the expansion width only matters before the collapse.
//! FSRCNN (Dong et al., ECCV 2016): 5×5 feature extraction into d, 1×1 shrink into s, m 3×3
//! mapping layers, 1×1 expansion back to d and a 9×9 transpose conv by the scale.
//! Inputs reach 1080×1920, so the dataset holds models whose feature maps exceed any SRAM.

use npuc_ir::{Activation, IrError, Op, ValueId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::pick;
use crate::net::Net;

/// Low-resolution input sizes `(h, w)`, small ones listed more often: most of a dataset
/// should be cheap to label, yet every size up to 1080p must appear.
const SIZES: [(usize, usize); 12] = [
    (32, 32),
    (48, 48),
    (64, 64),
    (64, 64),
    (96, 96),
    (128, 128),
    (128, 128),
    (180, 320),
    (270, 480),
    (360, 640),
    (540, 960),
    (1080, 1920),
];

/// PReLU or ReLU after `x`.
fn activation(net: &mut Net, name: &str, x: ValueId, prelu: bool) -> Result<ValueId, IrError> {
    if prelu {
        let c = net.channels(x);
        let alpha: Vec<f32> = (0..c).map(|_| net.rng.random_range(0.05f32..0.45)).collect();
        let alpha = net.constant(&format!("{name}/alpha"), vec![1, 1, c], &alpha);
        net.op(name, Op::Prelu, vec![x, alpha])
    } else {
        net.op(name, Op::Relu, vec![x])
    }
}

/// Draws and builds one super-resolution network; returns its description.
pub(super) fn build(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    let (h, w) = pick(rng, &SIZES);
    let scale = pick(rng, &[2usize, 4]);
    let prelu = rng.random::<bool>();
    let x = net.input("input", vec![1, h, w, 1]);
    let act = if prelu { "prelu" } else { "relu" };
    let (y, desc) = if rng.random::<bool>() {
        let f = pick(rng, &[16, 24, 32]);
        let m = rng.random_range(1..=11);
        let (k_in, k_body) = (pick(rng, &[3, 5]), pick(rng, &[3, 5]));
        let f0 = net.conv("input_block", x, [k_in, k_in], f, 1, Activation::None, 2.0)?;
        let mut feat = f0;
        for i in 0..m {
            let sum = net.residual_conv(&format!("body{i}/conv"), feat, k_body, 0.9 / m as f32)?;
            feat = activation(net, &format!("body{i}/{act}"), sum, prelu)?;
        }
        let long = net.add("long_residual", feat, f0)?;
        let out = net.conv("output_block", long, [k_in, k_in], scale * scale, 1, Activation::None, 0.1)?;
        let mut y = net.add("global_residual", out, x)?;
        for step in 0..scale / 2 {
            y = net.op(&format!("depth_to_space{step}"), Op::DepthToSpace { block_size: 2 }, vec![y])?;
        }
        (y, format!("super-resolution sesr f={f} m={m} k={k_in}/{k_body} {act} x{scale} {h}x{w}"))
    } else {
        let d = pick(rng, &[32, 48, 56]);
        let s = pick(rng, &[12, 16]);
        let m = rng.random_range(2..=4);
        let mut y = net.conv("extract", x, [5, 5], d, 1, Activation::None, 2.0)?;
        y = activation(net, &format!("extract/{act}"), y, prelu)?;
        y = net.conv("shrink", y, [1, 1], s, 1, Activation::None, 2.0)?;
        y = activation(net, &format!("shrink/{act}"), y, prelu)?;
        for i in 0..m {
            y = net.conv(&format!("map{i}"), y, [3, 3], s, 1, Activation::None, 2.0)?;
            y = activation(net, &format!("map{i}/{act}"), y, prelu)?;
        }
        y = net.conv("expand", y, [1, 1], d, 1, Activation::None, 2.0)?;
        y = activation(net, &format!("expand/{act}"), y, prelu)?;
        let y = net.transpose_conv("deconv", y, 9, 1, scale, 1.0)?;
        (y, format!("super-resolution fsrcnn d={d} s={s} m={m} {act} x{scale} {h}x{w}"))
    };
    net.g.outputs.push(y);
    Ok(desc)
}
