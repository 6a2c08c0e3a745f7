//! Removal of ops that pass their data operand through unchanged.

use npuc_ir::{DType, Graph, Op, OpId, ValueId};
use npuc_pass::{Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

/// Registry entry of the `remove-identity` pass.
pub const REMOVE_IDENTITY: PassInfo = PassInfo {
    name: "remove-identity",
    summary: "remove no-op reshape/squeeze/expand_dims/transpose/quantize/pad/padv2/slice/strided_slice (output type equal to input type)",
    options: &[],
    build: build_remove_identity,
};

fn build_remove_identity(_: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    Ok(Box::new(RemoveIdentity))
}

/// The `remove-identity` pass: see [`remove_identities`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove-identity"
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let removed = remove_identities(graph);
        Ok(PassReport { ops_removed: removed, ops_added: 0, notes: Vec::new() })
    }
}

/// The integer contents of a constant operand (i32 or i64, little-endian), if known.
pub(crate) fn const_ints(g: &Graph, v: Option<ValueId>) -> Option<Vec<i64>> {
    let val = g.value(v?);
    if !val.is_constant() || val.sparsity.is_some() {
        return None;
    }
    let bytes = val.data.as_ref()?.bytes()?;
    let n = val.ty.num_elements()? as usize;
    let out: Vec<i64> = match val.ty.dtype {
        DType::I32 if bytes.len() == 4 * n => {
            bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect()
        }
        DType::I64 if bytes.len() == 8 * n => {
            bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
        }
        _ => return None,
    };
    Some(out)
}

/// Whether op `id` is an identity on its operand 0 (see [`remove_identities`]).
fn is_identity(g: &Graph, id: OpId) -> bool {
    let o = g.op(id);
    if o.outputs.len() != 1 || !o.intermediates.is_empty() {
        return false;
    }
    let Some(x) = o.input(0) else { return false };
    let y = o.outputs[0];
    let (xv, yv) = (g.value(x), g.value(y));
    if xv.is_variable || yv.is_variable || xv.ty != yv.ty || g.outputs.contains(&y) {
        return false;
    }
    let shape = &xv.ty.shape;
    match &o.op {
        // Equal input and output types: the data is reinterpreted with the same shape.
        Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims => true,
        // Equal dtype and quantization: requantizing to the same parameters is exact.
        Op::Quantize => true,
        Op::Transpose => const_ints(g, o.input(1))
            .is_some_and(|p| p.len() == shape.len() && p.iter().enumerate().all(|(i, &d)| d == i as i64)),
        Op::Pad | Op::PadV2 => const_ints(g, o.input(1)).is_some_and(|p| p.iter().all(|&d| d == 0)),
        Op::Slice => {
            let (Some(begin), Some(size)) = (const_ints(g, o.input(1)), const_ints(g, o.input(2))) else {
                return false;
            };
            begin.len() == shape.len()
                && size.len() == shape.len()
                && begin.iter().all(|&b| b == 0)
                && size.iter().zip(shape).all(|(&s, &d)| s == -1 || s == d as i64)
        }
        Op::StridedSlice(a) => {
            if a.ellipsis_mask != 0 || a.new_axis_mask != 0 || a.shrink_axis_mask != 0 {
                return false;
            }
            let (Some(begin), Some(end), Some(strides)) =
                (const_ints(g, o.input(1)), const_ints(g, o.input(2)), const_ints(g, o.input(3)))
            else {
                return false;
            };
            let r = shape.len();
            if begin.len() != r || end.len() != r || strides.len() != r || r > 31 {
                return false;
            }
            (0..r).all(|i| {
                let bit = 1 << i;
                let begin_ok = a.begin_mask & bit != 0 || begin[i] == 0;
                // With `offset`, end is relative to begin, which is 0 here (begin mask or 0).
                let end_ok = a.end_mask & bit != 0 || end[i] == shape[i] as i64;
                strides[i] == 1 && begin_ok && end_ok
            })
        }
        _ => false,
    }
}

/// Removes ops that pass operand 0 through unchanged and returns how many went: reshape,
/// squeeze and expand_dims whose output type equals the input's; transpose by the identity
/// permutation; quantize to the same dtype and quantization; pad/padv2 with all-zero
/// paddings; slice and strided_slice taking the whole tensor. Always required: input and
/// output types identical (dtype, shape, quantization), constant operands (where they
/// matter) known, no variable involved, and the output not a graph output (signatures name
/// it). Readers of the output read the input instead; constants only the removed op read
/// are left unreferenced.
pub fn remove_identities(g: &mut Graph) -> usize {
    let ids: Vec<OpId> = g.op_ids().collect();
    let mut removed = 0;
    for id in ids {
        if !is_identity(g, id) {
            continue;
        }
        let o = g.op(id);
        let (x, y) = (o.input(0).expect("checked"), o.outputs[0]);
        g.replace_all_uses(y, x);
        g.remove_op(id);
        removed += 1;
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_module, print_module, verify_module, PrintOptions};

    /// Parses `text`, runs the pass on every graph, verifies, and returns (removed, printout).
    fn run(text: &str) -> (usize, String) {
        let mut m = parse_module(text).unwrap();
        verify_module(&m).unwrap();
        let n = m.graphs.iter_mut().map(remove_identities).sum();
        for g in &m.graphs {
            npuc_ir::verify_graph(g).unwrap();
        }
        verify_module(&m).unwrap();
        (n, print_module(&m, &PrintOptions::default()))
    }

    fn unchanged(src: &str) {
        let (n, text) = run(src);
        assert_eq!(n, 0, "{text}");
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
    }

    #[test]
    fn removes_same_shape_reshape_and_squeeze() {
        let (n, text) = run("graph @g(%x: tensor<2x3xf32>) {
  %s = const dense<[2, 3]> : tensor<2xi32>
  %a = reshape(%x, %s) : tensor<2x3xf32>
  %b = squeeze(%a) : tensor<2x3xf32>
  %c = tanh(%b) : tensor<2x3xf32>
  return %c
}");
        assert_eq!(n, 2);
        assert!(text.contains("tanh(%arg0)") && !text.contains("reshape") && !text.contains("squeeze"), "{text}");
    }

    #[test]
    fn removes_identity_transpose_zero_pad_and_requantize() {
        let (n, text) = run("graph @g(%x: tensor<2x3xi8, q<0.5:1>>) {
  %p = const dense<[0, 1]> : tensor<2xi32>
  %z = const dense<[0, 0, 0, 0]> : tensor<2x2xi32>
  %a = transpose(%x, %p) : tensor<2x3xi8, q<0.5:1>>
  %b = pad(%a, %z) : tensor<2x3xi8, q<0.5:1>>
  %c = quantize(%b) : tensor<2x3xi8, q<0.5:1>>
  %d = tanh(%c) : tensor<2x3xi8, q<0.5:1>>
  return %d
}");
        assert_eq!(n, 3);
        assert!(text.contains("tanh(%arg0)"), "{text}");
    }

    #[test]
    fn removes_whole_slices() {
        let (n, text) = run("graph @g(%x: tensor<2x3xf32>) {
  %b = const dense<[0, 0]> : tensor<2xi32>
  %s = const dense<[-1, 3]> : tensor<2xi32>
  %e = const dense<[2, 3]> : tensor<2xi32>
  %one = const dense<[1, 1]> : tensor<2xi32>
  %a = slice(%x, %b, %s) : tensor<2x3xf32>
  %c = strided_slice(%a, %b, %e, %one) : tensor<2x3xf32>
  %d = tanh(%c) : tensor<2x3xf32>
  return %d
}");
        assert_eq!(n, 2);
        assert!(text.contains("tanh(%arg0)"), "{text}");
    }

    #[test]
    fn keeps_real_transpose_pad_slice_and_requantize() {
        unchanged(
            "graph @g(%x: tensor<3x3xf32>) {
  %p = const dense<[1, 0]> : tensor<2xi32>
  %a = transpose(%x, %p) : tensor<3x3xf32>
  %d = tanh(%a) : tensor<3x3xf32>
  return %d
}",
        );
        unchanged(
            "graph @g(%x: tensor<2x3xf32>) {
  %z = const dense<[0, 1, 0, 0]> : tensor<2x2xi32>
  %a = pad(%x, %z) : tensor<3x3xf32>
  %d = tanh(%a) : tensor<3x3xf32>
  return %d
}",
        );
        unchanged(
            "graph @g(%x: tensor<4xf32>) {
  %b = const dense<[1]> : tensor<1xi32>
  %e = const dense<[4]> : tensor<1xi32>
  %s = const dense<[2]> : tensor<1xi32>
  %a = strided_slice(%x, %b, %e, %s) : tensor<2xf32>
  %d = tanh(%a) : tensor<2xf32>
  return %d
}",
        );
        unchanged(
            "graph @g(%x: tensor<4xi8, q<0.5:0>>) {
  %a = quantize(%x) : tensor<4xi8, q<0.25:0>>
  %d = tanh(%a) : tensor<4xi8, q<0.25:0>>
  return %d
}",
        );
    }

    #[test]
    fn keeps_identity_producing_graph_output_and_reshape_changing_shape() {
        unchanged(
            "graph @g(%x: tensor<2x3xf32>) {
  %a = squeeze(%x) : tensor<2x3xf32>
  return %a
}",
        );
        unchanged(
            "graph @g(%x: tensor<2x3xf32>) {
  %s = const dense<[3, 2]> : tensor<2xi32>
  %a = reshape(%x, %s) : tensor<3x2xf32>
  %d = tanh(%a) : tensor<3x2xf32>
  return %d
}",
        );
    }
}
