//! Folding a standalone RELU / RELU6 / RELU_N1_TO_1 into the fused-activation field of the
//! op producing its input.

use npuc_ir::{Activation, Graph, Op, OpId, Operation};
use npuc_pass::{Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

/// Registry entry of the `fuse-activation` pass.
pub const FUSE_ACTIVATION: PassInfo = PassInfo {
    name: "fuse-activation",
    summary: "fold relu/relu6/relu_n1_to_1 into the fused activation of the op feeding it (exact cases only)",
    options: &[],
    build: build_fuse_activation,
};

fn build_fuse_activation(_: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    Ok(Box::new(FuseActivation))
}

/// The `fuse-activation` pass: see [`fuse_activations`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FuseActivation;

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse-activation"
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let fused = fuse_activations(graph);
        Ok(PassReport { ops_removed: fused, ops_added: 0, notes: Vec::new() })
    }
}

/// The fused activation equivalent to a standalone activation op, if any.
fn standalone_activation(op: &Op) -> Option<Activation> {
    match op {
        Op::Relu => Some(Activation::Relu),
        Op::Relu6 => Some(Activation::Relu6),
        Op::ReluN1To1 => Some(Activation::ReluN1To1),
        _ => None,
    }
}

/// Sets the fused activation of an op that has one; `false` if it has none.
fn set_fused_activation(op: &mut Op, act: Activation) -> bool {
    let slot = match op {
        Op::Conv2d(a) => &mut a.activation,
        Op::DepthwiseConv2d(a) => &mut a.activation,
        Op::TransposeConv(a) => &mut a.activation,
        Op::FullyConnected(a) => &mut a.activation,
        Op::AveragePool2d(a) | Op::MaxPool2d(a) => &mut a.activation,
        Op::Add { activation, .. }
        | Op::Sub { activation, .. }
        | Op::Mul { activation }
        | Op::Div { activation }
        | Op::Concatenation { activation, .. }
        | Op::L2Normalization { activation } => activation,
        _ => return false,
    };
    *slot = act;
    true
}

/// The producer the activation op `id` can be folded into, with the activation, if the
/// fold is exact: the activation's input is the only result of a producer whose fused
/// activation is `none`, is read by nothing else and is no graph output; input and output
/// types are identical (same dtype, shape and quantization) and either float or quantized;
/// no variable is involved.
fn fusable(g: &Graph, id: OpId) -> Option<(OpId, Activation)> {
    let o = g.op(id);
    let act = standalone_activation(&o.op)?;
    if o.inputs.len() != 1 || o.outputs.len() != 1 || !o.intermediates.is_empty() {
        return None;
    }
    let (x, y) = (o.input(0)?, o.outputs[0]);
    let (xv, yv) = (g.value(x), g.value(y));
    if xv.is_variable || yv.is_variable || xv.ty != yv.ty {
        return None;
    }
    if !(xv.ty.dtype.is_float() || xv.ty.quant.as_ref().is_some_and(|q| !q.scale.is_empty())) {
        return None;
    }
    let p = g.producer(x)?;
    let po = g.op(p);
    if po.op.fused_activation() != Some(Activation::None) || po.outputs.len() != 1 {
        return None;
    }
    if g.outputs.contains(&x) || g.uses(x).count() != 1 {
        return None;
    }
    Some((p, act))
}

/// Folds every exact standalone relu/relu6/relu_n1_to_1 into its producer and returns the
/// number of activation ops removed.
///
/// The producer is rebuilt to write the activation's result value directly, so that value
/// keeps its name and type and anything naming it (graph outputs, signatures) stays valid;
/// the producer's former result is left unreferenced.
pub fn fuse_activations(g: &mut Graph) -> usize {
    let candidates: Vec<OpId> = g.op_ids().filter(|&id| standalone_activation(&g.op(id).op).is_some()).collect();
    let mut fused = 0;
    for id in candidates {
        if g.get_op(id).is_none() {
            continue;
        }
        let Some((p, act)) = fusable(g, id) else { continue };
        let y = g.op(id).outputs[0];
        g.remove_op(id);
        let prod = g.remove_op(p).expect("producer is live");
        let mut op = prod.op;
        let ok = set_fused_activation(&mut op, act);
        debug_assert!(ok, "producer has a fused activation");
        let rebuilt = Operation { op, outputs: vec![y], ..prod };
        g.add_op(rebuilt).expect("rebuilt producer re-adds cleanly");
        fused += 1;
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_module, print_module, verify_module, PrintOptions};

    /// Parses `text`, runs the pass on every graph, verifies, and returns (fused, printout).
    fn fuse(text: &str) -> (usize, String) {
        let mut m = parse_module(text).unwrap();
        verify_module(&m).unwrap();
        let n = m.graphs.iter_mut().map(fuse_activations).sum();
        for g in &m.graphs {
            npuc_ir::verify_graph(g).unwrap();
        }
        verify_module(&m).unwrap();
        (n, print_module(&m, &PrintOptions::default()))
    }

    fn unchanged(src: &str) {
        let (n, text) = fuse(src);
        assert_eq!(n, 0, "{text}");
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
    }

    #[test]
    fn fuses_relu_into_add() {
        let (n, text) = fuse(
            "graph @g(%x: tensor<4xf32>, %y: tensor<4xf32>) {
  %a = add(%x, %y) : tensor<4xf32> {name = \"sum\"}
  %r = relu(%a) : tensor<4xf32> {name = \"out\"}
  return %r
}",
        );
        assert_eq!(n, 1);
        assert!(text.contains("add(%arg0, %arg1) {activation = relu} : tensor<4xf32> {name = \"out\"}"), "{text}");
        assert!(!text.contains("relu("), "{text}");
    }

    #[test]
    fn fuses_relu6_into_quantized_conv_with_same_quantization() {
        let (n, text) = fuse(
            "graph @g(%x: tensor<1x4x4x3xi8, q<0.5:-1>>) {
  %w = const dense<hash 3f9a1c0b2d4e5f60, 216 bytes> : tensor<8x3x3x3xi8, q<0.25:0>>
  %c = conv_2d(%x, %w) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x4x4x8xi8, q<0.1:-128>>
  %r = relu6(%c) : tensor<1x4x4x8xi8, q<0.1:-128>>
  %t = tanh(%r) : tensor<1x4x4x8xi8, q<0.1:-128>>
  return %t
}",
        );
        assert_eq!(n, 1);
        assert!(text.contains("activation = relu6"), "{text}");
        assert!(!text.contains("relu6("), "{text}");
    }

    #[test]
    fn fuses_relu_n1_to_1_into_fully_connected() {
        let (n, text) = fuse(
            "graph @g(%x: tensor<1x4xf32>) {
  %w = const dense<hash 3f9a1c0b2d4e5f60, 32 bytes> : tensor<2x4xf32>
  %f = fully_connected(%x, %w, none) : tensor<1x2xf32>
  %r = relu_n1_to_1(%f) : tensor<1x2xf32>
  return %r
}",
        );
        assert_eq!(n, 1);
        assert!(text.contains("activation = relu_n1_to_1"), "{text}");
    }

    #[test]
    fn keeps_when_producer_already_has_activation() {
        unchanged(
            "graph @g(%x: tensor<4xf32>, %y: tensor<4xf32>) {
  %a = add(%x, %y) {activation = relu6} : tensor<4xf32>
  %r = relu(%a) : tensor<4xf32>
  return %r
}",
        );
    }

    #[test]
    fn keeps_when_input_has_other_use_or_is_output() {
        unchanged(
            "graph @g(%x: tensor<4xf32>, %y: tensor<4xf32>) {
  %a = add(%x, %y) : tensor<4xf32>
  %r = relu(%a) : tensor<4xf32>
  %m = mul(%r, %a) : tensor<4xf32>
  return %m
}",
        );
        unchanged(
            "graph @g(%x: tensor<4xf32>, %y: tensor<4xf32>) {
  %a = add(%x, %y) : tensor<4xf32>
  %r = relu(%a) : tensor<4xf32>
  return %r, %a
}",
        );
    }

    #[test]
    fn keeps_when_quantization_differs() {
        unchanged(
            "graph @g(%x: tensor<4xi8, q<0.5:0>>, %y: tensor<4xi8, q<0.5:0>>) {
  %a = add(%x, %y) : tensor<4xi8, q<0.5:0>>
  %r = relu(%a) : tensor<4xi8, q<0.25:-128>>
  return %r
}",
        );
    }

    #[test]
    fn keeps_when_producer_has_no_fused_activation() {
        unchanged(
            "graph @g(%x: tensor<4xf32>) {
  %a = tanh(%x) : tensor<4xf32>
  %r = relu(%a) : tensor<4xf32>
  return %r
}",
        );
        unchanged(
            "graph @g(%x: tensor<4xf32>) {
  %r = relu(%x) : tensor<4xf32>
  return %r
}",
        );
    }
}
