//! Image classification: MobileNetV2/V3-style inverted residual networks.
//!
//! Stage layout follows MobileNetV2 (Sandler et al., CVPR 2018, Table 2: base widths
//! 16/24/32/64/96/160/320, strides 1/2/2/2/1/2/1 after a stride-2 stem); per stage the
//! sampler draws depth, expansion and kernel (3/5/7, as in MobileNetV3's search space) and
//! whether a squeeze-excite block is used (MobileNetV3, Howard et al., ICCV 2019).

use npuc_ir::{Activation, IrError, Op, ValueId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{pick, round8};
use crate::net::Net;

/// MobileNetV2's base stage widths and strides.
const STAGES: [(usize, u32); 7] = [(16, 1), (24, 2), (32, 2), (64, 2), (96, 1), (160, 2), (320, 1)];

/// The nonlinearity of a network.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nonlinearity {
    /// ReLU6, fused into the conv (MobileNetV2).
    Relu6,
    /// hard-swish as its own op (MobileNetV3).
    HardSwish,
}

impl Nonlinearity {
    /// Applies the nonlinearity after `x`'s producer: fused ReLU6 needs nothing here.
    fn fused(self) -> Activation {
        match self {
            Nonlinearity::Relu6 => Activation::Relu6,
            Nonlinearity::HardSwish => Activation::None,
        }
    }

    /// A conv followed by this nonlinearity.
    pub(crate) fn conv(
        self,
        net: &mut Net,
        name: &str,
        x: ValueId,
        k: usize,
        cout: usize,
        stride: u32,
    ) -> Result<ValueId, IrError> {
        let y = net.conv(name, x, [k, k], cout, stride, self.fused(), 2.0)?;
        self.after(net, name, y)
    }

    fn after(self, net: &mut Net, name: &str, y: ValueId) -> Result<ValueId, IrError> {
        match self {
            Nonlinearity::Relu6 => Ok(y),
            Nonlinearity::HardSwish => net.op(&format!("{name}/hard_swish"), Op::HardSwish, vec![y]),
        }
    }
}

/// One inverted residual block: 1×1 expansion (unless `expansion` is 1), k×k depthwise,
/// optional squeeze-excite, linear 1×1 projection, and a residual when shapes allow.
#[allow(clippy::too_many_arguments)]
pub(crate) fn inverted_residual(
    net: &mut Net,
    name: &str,
    x: ValueId,
    cout: usize,
    k: usize,
    stride: u32,
    expansion: usize,
    se: bool,
    nl: Nonlinearity,
) -> Result<ValueId, IrError> {
    let cin = net.channels(x);
    let mut y = x;
    if expansion > 1 {
        y = nl.conv(net, &format!("{name}/expand"), y, 1, cin * expansion, 1)?;
    }
    let dw = net.depthwise(&format!("{name}/depthwise"), y, k, stride, nl.fused(), 2.0)?;
    y = nl.after(net, &format!("{name}/depthwise"), dw)?;
    if se {
        y = squeeze_excite(net, &format!("{name}/se"), y)?;
    }
    let out = net.conv(&format!("{name}/project"), y, [1, 1], cout, 1, Activation::None, 1.0)?;
    if stride == 1 && cin == cout {
        net.add(&format!("{name}/residual"), out, x)
    } else {
        Ok(out)
    }
}

/// Squeeze-excite: global mean, 1×1 reduce by 4 with ReLU, 1×1 back, logistic gate.
fn squeeze_excite(net: &mut Net, name: &str, x: ValueId) -> Result<ValueId, IrError> {
    let c = net.channels(x);
    let m = net.global_mean(&format!("{name}/mean"), x)?;
    let r = net.conv(&format!("{name}/reduce"), m, [1, 1], round8(c as f64 / 4.0), 1, Activation::Relu, 2.0)?;
    let e = net.conv(&format!("{name}/expand"), r, [1, 1], c, 1, Activation::None, 1.0)?;
    let gate = net.op(&format!("{name}/gate"), Op::Logistic, vec![e])?;
    net.mul(&format!("{name}/scale"), x, gate)
}

/// Draws and builds one classifier; returns its description.
pub(super) fn build(rng: &mut ChaCha8Rng, net: &mut Net) -> Result<String, IrError> {
    let res = pick(rng, &[96, 112, 128, 160, 192, 224]);
    let width = pick(rng, &[0.35, 0.5, 0.75, 1.0]);
    let v3 = rng.random::<bool>();
    let nl = if v3 { Nonlinearity::HardSwish } else { Nonlinearity::Relu6 };
    let classes = pick(rng, &[10, 100, 1000]);
    let mut desc =
        format!("classification {} r={res} w={width} classes={classes} stages=", if v3 { "mbv3" } else { "mbv2" });

    let x = net.input("input", vec![1, res, res, 3]);
    let mut y = nl.conv(net, "stem", x, 3, round8(32.0 * width), 2)?;
    for (i, (base, stride)) in STAGES.into_iter().enumerate() {
        let cout = round8(base as f64 * width);
        // MobileNetV2's depths are 1,2,3,4,3,3,1: the first and last stages stay single.
        let depth = if i == 0 || i == STAGES.len() - 1 { 1 } else { rng.random_range(1..=4) };
        let expansion = if i == 0 { 1 } else { pick(rng, &[3, 4, 6]) };
        let k = pick(rng, &[3, 5, 7]);
        let se = v3 && rng.random::<bool>();
        desc.push_str(&format!(
            "{}{depth}x(e{expansion},k{k}{})",
            if i > 0 { "," } else { "" },
            if se { ",se" } else { "" }
        ));
        for d in 0..depth {
            let s = if d == 0 { stride } else { 1 };
            y = inverted_residual(net, &format!("stage{i}/block{d}"), y, cout, k, s, expansion, se, nl)?;
        }
    }
    let head = round8(1280.0 * width.max(1.0));
    y = nl.conv(net, "head", y, 1, head, 1)?;
    let pooled = net.global_mean("pool", y)?;
    let flat = net.reshape("flatten", pooled, &[1, head])?;
    let logits = net.fully_connected("logits", flat, classes, Activation::None, 1.0)?;
    let probs = net.op("probabilities", Op::Softmax { beta: 1.0 }, vec![logits])?;
    net.g.outputs.push(probs);
    Ok(desc)
}
