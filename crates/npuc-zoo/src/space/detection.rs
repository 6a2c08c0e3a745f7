//! Detection and segmentation: SSDLite heads on an inverted-residual backbone, and U-Net.
//!
//! SSDLite (MobileNetV2 paper, §6.2): box and class predictors made of a depthwise 3×3 and a
//! 1×1 conv on 2–4 feature maps of decreasing size, their outputs reshaped to
//! `[1, anchors, 4]` and `[1, anchors, classes]` and concatenated over scales: two outputs.
//! U-Net (Ronneberger et al., MICCAI 2015): an encoder of conv pairs and 2× downsampling, a
//! decoder that upsamples (resize), concatenates the skip connection and convolves; two
//! outputs here, the full-resolution logits and a deep-supervision head at the bottleneck.

use npuc_ir::{Activation, IrError, Op, ValueId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::classification::{inverted_residual, Nonlinearity};
use super::{pick, round8};
use crate::net::Net;

/// Draws and builds one detector or segmenter; returns its description.
pub(super) fn build(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    if rng.random::<bool>() {
        ssdlite(rng, net)
    } else {
        unet(rng, net)
    }
}

fn ssdlite(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    let res = pick(rng, &[128, 160, 192, 224, 256, 320]);
    let width = pick(rng, &[0.35, 0.5, 0.75, 1.0]);
    let classes = pick(rng, &[2, 10, 21, 91]);
    let heads = rng.random_range(2..=4);
    let anchors = pick(rng, &[3, 6]);
    let x = net.input("input", vec![1, res, res, 3]);
    let nl = Nonlinearity::Relu6;
    let mut y = nl.conv(net, "stem", x, 3, round8(32.0 * width), 2)?;
    // Backbone stages down to stride 32, then extra stride-2 blocks for the smaller heads.
    let mut features = Vec::new();
    let stages = [(16, 1), (24, 2), (32, 2), (64, 2), (96, 1), (160, 2)];
    for (i, (base, stride)) in stages.into_iter().enumerate() {
        let depth = if i == 0 { 1 } else { rng.random_range(1..=3) };
        let (e, k) = (if i == 0 { 1 } else { pick(rng, &[3, 6]) }, pick(rng, &[3, 5]));
        for d in 0..depth {
            let s = if d == 0 { stride } else { 1 };
            y = inverted_residual(
                net,
                &format!("stage{i}/block{d}"),
                y,
                round8(base as f64 * width),
                k,
                s,
                e,
                false,
                nl,
            )?;
        }
        if i == 4 || i == 5 {
            features.push(y);
        }
    }
    let mut extra = 0;
    while features.len() < heads {
        let c = round8(256.0 * width);
        y = net.conv(&format!("extra{extra}/reduce"), y, [1, 1], c / 2, 1, Activation::Relu6, 2.0)?;
        y = net.depthwise(&format!("extra{extra}/depthwise"), y, 3, 2, Activation::Relu6, 2.0)?;
        y = net.conv(&format!("extra{extra}/project"), y, [1, 1], c, 1, Activation::Relu6, 2.0)?;
        features.push(y);
        extra += 1;
    }
    let (mut boxes, mut scores) = (Vec::new(), Vec::new());
    for (i, &f) in features.iter().enumerate() {
        let [_, h, w, _] = net.shape(f).try_into().expect("rank-4 feature map");
        for (kind, per_anchor, list) in [("boxes", 4, &mut boxes), ("scores", classes, &mut scores)] {
            let name = format!("head{i}/{kind}");
            let d = net.depthwise(&format!("{name}/depthwise"), f, 3, 1, Activation::Relu6, 2.0)?;
            let p =
                net.conv(&format!("{name}/pointwise"), d, [1, 1], anchors * per_anchor, 1, Activation::None, 1.0)?;
            list.push(net.reshape(&format!("{name}/reshape"), p, &[1, h * w * anchors, per_anchor])?);
        }
    }
    let boxes = net.concat("boxes", boxes, 1)?;
    let logits = net.concat("class_logits", scores, 1)?;
    let scores = net.op("scores", Op::Logistic, vec![logits])?;
    net.g.outputs.extend([boxes, scores]);
    Ok(format!("detection ssdlite r={res} w={width} heads={heads} anchors={anchors} classes={classes}"))
}

fn unet(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    let res = pick(rng, &[96, 128, 160, 192, 256]);
    let levels = rng.random_range(2..=4);
    let base = pick(rng, &[8, 16, 24, 32]);
    let classes = pick(rng, &[2, 5, 21]);
    let bilinear = rng.random::<bool>();
    let strided = rng.random::<bool>();
    let x = net.input("input", vec![1, res, res, 3]);
    let pair = |net: &mut Net, name: &str, x: ValueId, c: usize| -> Result<ValueId, IrError> {
        let y = net.conv(&format!("{name}/conv0"), x, [3, 3], c, 1, Activation::Relu, 2.0)?;
        net.conv(&format!("{name}/conv1"), y, [3, 3], c, 1, Activation::Relu, 2.0)
    };
    let mut skips = Vec::new();
    let mut y = x;
    for l in 0..levels {
        let c = base << l;
        y = pair(net, &format!("down{l}"), y, c)?;
        skips.push(y);
        y = if strided {
            net.conv(&format!("down{l}/stride2"), y, [3, 3], c, 2, Activation::Relu, 2.0)?
        } else {
            net.pool(&format!("down{l}/pool"), y, 2, 2, true)?
        };
    }
    y = pair(net, "bottleneck", y, base << levels)?;
    let aux = net.conv("aux_logits", y, [1, 1], classes, 1, Activation::None, 1.0)?;
    for l in (0..levels).rev() {
        let up = net.upsample(&format!("up{l}/resize"), y, 2, bilinear)?;
        let cat = net.concat(&format!("up{l}/concat"), vec![up, skips[l]], 3)?;
        y = pair(net, &format!("up{l}"), cat, base << l)?;
    }
    let logits = net.conv("logits", y, [1, 1], classes, 1, Activation::None, 1.0)?;
    net.g.outputs.extend([logits, aux]);
    Ok(format!(
        "detection unet r={res} levels={levels} base={base} classes={classes} {} {}",
        if bilinear { "bilinear" } else { "nearest" },
        if strided { "strided-conv" } else { "maxpool" }
    ))
}
