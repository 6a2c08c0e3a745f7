//! Cancellation of layout plumbing: chains of reshapes (reshape, squeeze, expand_dims)
//! collapse into one reshape, pairs of transposes compose into one, and a transpose that
//! moves only size-1 dimensions becomes a reshape.

use npuc_ir::shape::shape_operands;
use npuc_ir::{Constant, DType, Graph, Op, OpId, Operation, Quantization, TensorType, ValueId};
use npuc_pass::{Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

use crate::remove_identity::const_ints;

/// Registry entry of the `cancel-reshape-transpose` pass.
pub const CANCEL_RESHAPE_TRANSPOSE: PassInfo = PassInfo {
    name: "cancel-reshape-transpose",
    summary: "collapse reshape/squeeze/expand_dims chains into one reshape, compose transpose pairs (removing identities), turn transposes of size-1 dims into reshapes",
    options: &[],
    build: build_cancel_reshape_transpose,
};

fn build_cancel_reshape_transpose(_: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    Ok(Box::new(CancelReshapeTranspose))
}

/// The `cancel-reshape-transpose` pass: see [`cancel_reshapes_transposes`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CancelReshapeTranspose;

impl Pass for CancelReshapeTranspose {
    fn name(&self) -> &'static str {
        "cancel-reshape-transpose"
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let s = cancel_reshapes_transposes(graph);
        let mut notes = Vec::new();
        if s.reshape_chains > 0 {
            notes.push(format!("collapsed {} reshape pairs", s.reshape_chains));
        }
        if s.transpose_pairs > 0 {
            notes.push(format!("composed {} transpose pairs", s.transpose_pairs));
        }
        if s.cancelled > 0 {
            notes.push(format!("{} of those pairs cancelled out entirely", s.cancelled));
        }
        if s.transposes_to_reshape > 0 {
            notes.push(format!("turned {} transposes of size-1 dims into reshapes", s.transposes_to_reshape));
        }
        Ok(PassReport { ops_removed: s.ops_removed, ops_added: s.ops_added, notes })
    }
}

/// What [`cancel_reshapes_transposes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelStats {
    /// Pairs of reshape-like ops merged (into one reshape, or into nothing).
    pub reshape_chains: usize,
    /// Pairs of transposes composed (into one transpose, or into nothing).
    pub transpose_pairs: usize,
    /// Of the pairs above, those that were an identity and disappeared entirely.
    pub cancelled: usize,
    /// Transposes that moved only size-1 dimensions and became reshapes.
    pub transposes_to_reshape: usize,
    /// Ops removed (a replaced op counts as one removed and one added).
    pub ops_removed: usize,
    /// Ops added.
    pub ops_added: usize,
}

/// Whether `op` only reinterprets its operand 0 with another shape (same bytes, same order).
fn is_reshape_like(op: &Op) -> bool {
    matches!(op, Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims)
}

/// Quantization with "nothing recorded" and "absent" treated alike.
fn quant_of(ty: &TensorType) -> Option<&Quantization> {
    ty.quant.as_ref().filter(|q| !q.is_empty())
}

/// Whether two types hold bit-identical elements: same dtype and same quantization
/// (shapes may differ). Reshape and transpose only move bytes, so across such types they
/// compose exactly.
fn same_elements(a: &TensorType, b: &TensorType) -> bool {
    a.dtype == b.dtype && quant_of(a) == quant_of(b)
}

/// Whether value `v`'s static shape is its real shape: not a variable, and no run-time
/// (`-1`) dimension in its shape signature.
fn is_static(g: &Graph, v: ValueId) -> bool {
    let val = g.value(v);
    !val.is_variable && !val.shape_signature.as_ref().is_some_and(|s| s.iter().any(|&d| d < 0))
}

/// Whether op `id` is a plain single-result op we may rewrite: operand 0 present, one
/// result, no intermediates, every shape operand (where present) a constant, and operand 0
/// and the result static.
fn plain(g: &Graph, id: OpId) -> bool {
    let o = g.op(id);
    let Some(x) = o.input(0) else { return false };
    if o.outputs.len() != 1 || !o.intermediates.is_empty() {
        return false;
    }
    let shape_ops_constant = shape_operands(&o.op).iter().all(|&s| o.input(s).is_none_or(|v| g.value(v).is_constant()));
    shape_ops_constant && is_static(g, x) && is_static(g, o.outputs[0])
}

/// For op `id` reading the single result `m` of op `p`: `(p, x, m, y)` where `x` is `p`'s
/// operand 0 and `y` is `id`'s result, if the pair may be fused: both plain, `m` read only
/// by `id` (once) and no graph output, and `x`, `m`, `y` of identical element types.
fn pair(g: &Graph, id: OpId) -> Option<(OpId, ValueId, ValueId, ValueId)> {
    if !plain(g, id) {
        return None;
    }
    let o = g.op(id);
    let (m, y) = (o.input(0)?, o.outputs[0]);
    let p = g.producer(m)?;
    if !plain(g, p) || g.outputs.contains(&m) || g.uses(m).count() != 1 {
        return None;
    }
    let x = g.op(p).input(0)?;
    let (xt, mt, yt) = (&g.value(x).ty, &g.value(m).ty, &g.value(y).ty);
    (same_elements(xt, mt) && same_elements(mt, yt)).then_some((p, x, m, y))
}

/// Adds an int32 vector constant named `name`.
fn add_i32_vector(g: &mut Graph, name: String, items: &[i64]) -> Option<ValueId> {
    let mut bytes = Vec::with_capacity(4 * items.len());
    for &d in items {
        bytes.extend_from_slice(&i32::try_from(d).ok()?.to_le_bytes());
    }
    let ty = TensorType::new(DType::I32, vec![items.len()]);
    Some(g.add_const(name, ty, Constant::from(bytes)))
}

/// Replaces op `id` (single result `y`) by a reshape of `x` into `y`'s shape, with a fresh
/// int32 shape constant (and the same `new_shape` attribute, as TFLite's converter
/// writes both). `None`, with the graph unchanged, when `y` is a scalar (an empty shape
/// constant would have no buffer) or a dimension does not fit in int32.
fn rebuild_as_reshape(g: &mut Graph, id: OpId, x: ValueId, y: ValueId) -> Option<OpId> {
    let dims: Vec<i64> = g.value(y).ty.shape.iter().map(|&d| d as i64).collect();
    if dims.is_empty() || dims.iter().any(|&d| d > i64::from(i32::MAX)) {
        return None;
    }
    let attr: Vec<i32> = dims.iter().map(|&d| d as i32).collect();
    let name = format!("{}/shape", g.value(y).name);
    let shape = add_i32_vector(g, name, &dims)?;
    g.remove_op(id);
    let op = Operation::new(Op::Reshape { new_shape: Some(attr) }, vec![Some(x), Some(shape)], vec![y]);
    Some(g.add_op(op).expect("rebuilt reshape re-adds cleanly"))
}

/// Removes the identity pair `p` → `id` (reading `x`, writing `y`, with `x`'s type equal
/// to `y`'s): readers of `y` read `x`. Callers ensure `y` is no graph output.
fn drop_pair(g: &mut Graph, p: OpId, id: OpId, x: ValueId, y: ValueId) {
    g.replace_all_uses(y, x);
    g.remove_op(id);
    g.remove_op(p);
}

/// Collapses reshape-like `id` with a reshape-like producer; returns the surviving op.
fn collapse_reshapes(g: &mut Graph, id: OpId, s: &mut CancelStats) -> Option<OpId> {
    if !is_reshape_like(&g.op(id).op) {
        return None;
    }
    let (p, x, _m, y) = pair(g, id)?;
    if !is_reshape_like(&g.op(p).op) {
        return None;
    }
    if g.value(x).ty == g.value(y).ty && !g.outputs.contains(&y) {
        drop_pair(g, p, id, x, y);
        s.reshape_chains += 1;
        s.cancelled += 1;
        s.ops_removed += 2;
        return None;
    }
    let survivor = if matches!(g.op(id).op, Op::Reshape { .. }) {
        // The element count is unchanged along the chain, so the last reshape's own target
        // (operand or attribute, `-1` included) resolves against `x` to `y`'s shape.
        g.set_input(id, 0, Some(x));
        g.remove_op(p);
        s.ops_removed += 1;
        id
    } else {
        let new = rebuild_as_reshape(g, id, x, y)?;
        g.remove_op(p);
        s.ops_removed += 2;
        s.ops_added += 1;
        new
    };
    s.reshape_chains += 1;
    Some(survivor)
}

/// The constant permutation of transpose `id`, if it is a valid one of its input's rank.
fn perm_of(g: &Graph, id: OpId) -> Option<Vec<usize>> {
    let o = g.op(id);
    if !matches!(o.op, Op::Transpose) {
        return None;
    }
    let rank = g.value(o.input(0)?).ty.rank();
    let perm = const_ints(g, o.input(1))?;
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in &perm {
        let p = usize::try_from(p).ok().filter(|&p| p < rank && !seen[p])?;
        seen[p] = true;
        out.push(p);
    }
    (out.len() == rank).then_some(out)
}

/// Composes transpose `id` with a transpose producer; returns the surviving op.
///
/// `m = transpose(x, p1)` has `m.shape[i] = x.shape[p1[i]]` (likewise for indices), and
/// `y = transpose(m, p2)` gives `y.shape[i] = m.shape[p2[i]] = x.shape[p1[p2[i]]]`: the
/// composition is `c[i] = p1[p2[i]]`.
fn compose_transposes(g: &mut Graph, id: OpId, s: &mut CancelStats) -> Option<OpId> {
    let p2 = perm_of(g, id)?;
    let (p, x, _m, y) = pair(g, id)?;
    let p1 = perm_of(g, p)?;
    let c: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
    let identity = c.iter().enumerate().all(|(i, &d)| i == d);
    if identity && g.value(x).ty == g.value(y).ty && !g.outputs.contains(&y) {
        drop_pair(g, p, id, x, y);
        s.transpose_pairs += 1;
        s.cancelled += 1;
        s.ops_removed += 2;
        return None;
    }
    let c64: Vec<i64> = c.iter().map(|&d| d as i64).collect();
    let name = format!("{}/perm", g.value(y).name);
    let perm = add_i32_vector(g, name, &c64)?;
    g.set_input(id, 0, Some(x));
    g.set_input(id, 1, Some(perm));
    g.remove_op(p);
    s.transpose_pairs += 1;
    s.ops_removed += 1;
    Some(id)
}

/// Turns transpose `id` into a reshape when it moves only size-1 dimensions (the dims of
/// other sizes keep their relative order, so the bytes keep theirs); identity
/// permutations are left to `remove-identity`. Returns the new reshape.
fn transpose_to_reshape(g: &mut Graph, id: OpId, s: &mut CancelStats) -> Option<OpId> {
    let perm = perm_of(g, id)?;
    if !plain(g, id) || perm.iter().enumerate().all(|(i, &d)| i == d) {
        return None;
    }
    let o = g.op(id);
    let (x, y) = (o.input(0)?, o.outputs[0]);
    if !same_elements(&g.value(x).ty, &g.value(y).ty) {
        return None;
    }
    let xs = &g.value(x).ty.shape;
    let moved: Vec<usize> = perm.iter().copied().filter(|&d| xs[d] != 1).collect();
    if moved.windows(2).any(|w| w[0] > w[1]) {
        return None;
    }
    let new = rebuild_as_reshape(g, id, x, y)?;
    s.transposes_to_reshape += 1;
    s.ops_removed += 1;
    s.ops_added += 1;
    Some(new)
}

/// Cancels layout plumbing in one topological sweep and returns what it did:
///
/// - a transpose reading a transpose is composed into one transpose (permutation
///   `c[i] = p1[p2[i]]`), and both disappear when the composition is the identity;
/// - a transpose moving only size-1 dimensions becomes a reshape;
/// - a reshape, squeeze or expand_dims reading another of these becomes one reshape from
///   the first input to the last result, and both disappear when those types are equal.
///
/// Exact rewrites only: the values involved have identical dtype and quantization, none is
/// a variable or has a run-time (`-1`) dimension, shape and permutation operands are
/// constants, and the middle value is read by the second op alone and is no graph output.
/// The surviving op writes the last value of the chain, so names, graph outputs and
/// signatures stay valid; a pair cancels out entirely only if its result is no graph
/// output. New shape and permutation operands are fresh int32 constants; operands no longer
/// read are left for `dce`.
pub fn cancel_reshapes_transposes(g: &mut Graph) -> CancelStats {
    let mut s = CancelStats::default();
    let Ok(order) = g.topo_order() else { return s };
    for id in order {
        if g.get_op(id).is_none() {
            continue;
        }
        // Each step returns the op now writing this op's result (or `None` when it is
        // unchanged or gone); later steps look at that op.
        let mut cur = id;
        if let Some(n) = compose_transposes(g, cur, &mut s) {
            cur = n;
        }
        if g.get_op(cur).is_none() {
            continue;
        }
        if let Some(n) = transpose_to_reshape(g, cur, &mut s) {
            cur = n;
        }
        if g.get_op(cur).is_none() {
            continue;
        }
        collapse_reshapes(g, cur, &mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_interp::{random_inputs, Interpreter, Options, Tensor};
    use npuc_ir::{parse_module, print_module, verify_graph, PrintOptions};

    fn run_graph(g: &Graph, inputs: Vec<Tensor>) -> Vec<Tensor> {
        Interpreter::new(g, &Options { threads: 1 }).unwrap().run(inputs).unwrap()
    }

    /// Parses `text`, rewrites it, verifies, checks the outputs are bit-identical on seeded
    /// random inputs, and returns (stats, printout).
    fn cancel(text: &str) -> (CancelStats, String) {
        let mut m = parse_module(text).unwrap();
        let before = m.graphs[0].clone();
        verify_graph(&before).unwrap();
        let stats = cancel_reshapes_transposes(&mut m.graphs[0]);
        let after = &m.graphs[0];
        verify_graph(after).unwrap();
        npuc_ir::verify_module(&m).unwrap();
        for seed in [1, 2] {
            let inputs = random_inputs(&before, seed);
            assert_eq!(run_graph(&before, inputs.clone()), run_graph(after, inputs), "seed {seed}");
        }
        (stats, print_module(&m, &PrintOptions::default()))
    }

    fn unchanged(src: &str) {
        let (s, text) = cancel(src);
        assert_eq!(s, CancelStats::default(), "{text}");
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
    }

    fn count(text: &str, op: &str) -> usize {
        text.matches(&format!("= {op}(")).count()
    }

    #[test]
    fn reshape_chain_collapses_into_last_reshape() {
        let (s, text) = cancel(
            "graph @g(%x: tensor<2x3x4xf32>) {
  %s1 = const dense<[6, 4]> : tensor<2xi32>
  %s2 = const dense<[4, -1]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<6x4xf32>
  %b = reshape(%a, %s2) : tensor<4x6xf32> {name = \"out\"}
  %t = tanh(%b) : tensor<4x6xf32>
  return %t
}",
        );
        assert_eq!((s.reshape_chains, s.ops_removed, s.ops_added), (1, 1, 0), "{s:?}");
        assert_eq!(count(&text, "reshape"), 1, "{text}");
        assert!(text.contains("reshape(%arg0, %c0) : tensor<4x6xf32> {name = \"out\"}"), "{text}");
    }

    #[test]
    fn squeeze_expand_dims_chain_becomes_one_reshape_with_fresh_shape() {
        let (s, text) = cancel(
            "graph @g(%x: tensor<1x3x1x4xi8, q<0.5:3>>) {
  %ax = const dense<[0]> : tensor<i32>
  %a = squeeze(%x) : tensor<3x4xi8, q<0.5:3>>
  %b = expand_dims(%a, %ax) : tensor<1x3x4xi8, q<0.5:3>>
  %c = squeeze(%b) {axes = [0]} : tensor<3x4xi8, q<0.5:3>>
  %d = expand_dims(%c, %ax) : tensor<1x3x4xi8, q<0.5:3>> {name = \"last\"}
  return %d
}",
        );
        assert_eq!(s.reshape_chains, 3, "{s:?}");
        assert_eq!(count(&text, "reshape"), 1, "{text}");
        assert!(!text.contains("squeeze") && !text.contains("expand_dims"), "{text}");
        assert!(text.contains("dense<[1, 3, 4]> : tensor<3xi32>"), "{text}");
        assert!(text.contains("{new_shape = [1, 3, 4]} : tensor<1x3x4xi8, q<0.5:3>> {name = \"last\"}"), "{text}");
    }

    #[test]
    fn identity_reshape_pair_disappears_unless_it_writes_an_output() {
        let (s, text) = cancel(
            "graph @g(%x: tensor<2x3xf32>) {
  %s1 = const dense<[6]> : tensor<1xi32>
  %s2 = const dense<[2, 3]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<6xf32>
  %b = reshape(%a, %s2) : tensor<2x3xf32>
  %t = tanh(%b) : tensor<2x3xf32>
  return %t
}",
        );
        assert_eq!((s.cancelled, s.ops_removed), (1, 2), "{s:?}");
        assert!(text.contains("tanh(%arg0)") && !text.contains("reshape"), "{text}");
        // Writing a graph output, one reshape has to stay to write it.
        let (s, text) = cancel(
            "graph @g(%x: tensor<2x3xf32>) {
  %s1 = const dense<[6]> : tensor<1xi32>
  %s2 = const dense<[2, 3]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<6xf32>
  %b = reshape(%a, %s2) : tensor<2x3xf32>
  return %b
}",
        );
        assert_eq!((s.cancelled, s.ops_removed), (0, 1), "{s:?}");
        assert_eq!(count(&text, "reshape"), 1, "{text}");
    }

    #[test]
    fn transpose_pair_composes_in_the_right_order() {
        // p1 = [1, 2, 0], p2 = [0, 2, 1]: c[i] = p1[p2[i]] = [1, 0, 2]; the reverse order
        // p2[p1[i]] = [2, 1, 0] would give 4x3x2 and fail verification.
        let (s, text) = cancel(
            "graph @g(%x: tensor<2x3x4xf32>) {
  %p1 = const dense<[1, 2, 0]> : tensor<3xi32>
  %p2 = const dense<[0, 2, 1]> : tensor<3xi32>
  %a = transpose(%x, %p1) : tensor<3x4x2xf32>
  %b = transpose(%a, %p2) : tensor<3x2x4xf32> {name = \"out\"}
  return %b
}",
        );
        assert_eq!((s.transpose_pairs, s.ops_removed), (1, 1), "{s:?}");
        assert_eq!(count(&text, "transpose"), 1, "{text}");
        assert!(text.contains("dense<[1, 0, 2]> : tensor<3xi32>"), "{text}");
    }

    #[test]
    fn transpose_pair_composes_with_i64_perms_on_a_cube() {
        // A cube makes every permutation shape-valid, so only the data can tell a wrong
        // composition order apart; `cancel` compares outputs bit for bit.
        let (s, text) = cancel(
            "graph @g(%x: tensor<3x3x3xf32>) {
  %p1 = const dense<[1, 2, 0]> : tensor<3xi64>
  %p2 = const dense<[0, 2, 1]> : tensor<3xi64>
  %a = transpose(%x, %p1) : tensor<3x3x3xf32>
  %b = transpose(%a, %p2) : tensor<3x3x3xf32>
  %t = tanh(%b) : tensor<3x3x3xf32>
  return %t
}",
        );
        assert_eq!(s.transpose_pairs, 1, "{s:?}");
        assert_eq!(count(&text, "transpose"), 1, "{text}");
    }

    #[test]
    fn inverse_transposes_cancel() {
        let (s, text) = cancel(
            "graph @g(%x: tensor<1x4x5x6xi8, q<0.1:-2>>) {
  %p1 = const dense<[0, 3, 1, 2]> : tensor<4xi32>
  %p2 = const dense<[0, 2, 3, 1]> : tensor<4xi32>
  %a = transpose(%x, %p1) : tensor<1x6x4x5xi8, q<0.1:-2>>
  %b = transpose(%a, %p2) : tensor<1x4x5x6xi8, q<0.1:-2>>
  %t = tanh(%b) : tensor<1x4x5x6xi8, q<0.1:-2>>
  return %t
}",
        );
        assert_eq!((s.cancelled, s.ops_removed), (1, 2), "{s:?}");
        assert!(text.contains("tanh(%arg0)") && !text.contains("transpose"), "{text}");
    }

    #[test]
    fn transpose_of_size_one_dims_becomes_reshape_and_merges() {
        let (s, text) = cancel(
            "graph @g(%x: tensor<1x5x1x3xf32>) {
  %p = const dense<[2, 0, 1, 3]> : tensor<4xi32>
  %s = const dense<[5, 3]> : tensor<2xi32>
  %a = transpose(%x, %p) : tensor<1x1x5x3xf32>
  %b = reshape(%a, %s) : tensor<5x3xf32> {name = \"flat\"}
  return %b
}",
        );
        assert_eq!((s.transposes_to_reshape, s.reshape_chains), (1, 1), "{s:?}");
        assert!(!text.contains("transpose"), "{text}");
        assert_eq!(count(&text, "reshape"), 1, "{text}");
        assert!(text.contains("reshape(%arg0, %c0) : tensor<5x3xf32> {name = \"flat\"}"), "{text}");
    }

    #[test]
    fn keeps_real_transposes_and_non_exact_chains() {
        // Moves a non-1 dim past another: a real transpose.
        unchanged(
            "graph @g(%x: tensor<1x5x1x3xf32>) {
  %p = const dense<[0, 3, 2, 1]> : tensor<4xi32>
  %a = transpose(%x, %p) : tensor<1x3x1x5xf32>
  return %a
}",
        );
        // Middle value read twice.
        unchanged(
            "graph @g(%x: tensor<2x3xf32>) {
  %s1 = const dense<[6]> : tensor<1xi32>
  %s2 = const dense<[3, 2]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<6xf32>
  %b = reshape(%a, %s2) : tensor<3x2xf32>
  return %b, %a
}",
        );
        // Quantization changes along the chain.
        unchanged(
            "graph @g(%x: tensor<2x3xi8, q<0.5:0>>) {
  %s1 = const dense<[6]> : tensor<1xi32>
  %s2 = const dense<[3, 2]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<6xi8, q<0.25:0>>
  %b = reshape(%a, %s2) : tensor<3x2xi8, q<0.25:0>>
  return %b
}",
        );
    }

    #[test]
    fn keeps_chains_with_dynamic_dims() {
        let src = "graph @g(%x: tensor<1x6xf32> {shape_signature = [-1, 6]}) {
  %s1 = const dense<[-1, 2, 3]> : tensor<3xi32>
  %s2 = const dense<[-1, 6]> : tensor<2xi32>
  %a = reshape(%x, %s1) : tensor<1x2x3xf32> {shape_signature = [-1, 2, 3]}
  %b = reshape(%a, %s2) : tensor<1x6xf32> {shape_signature = [-1, 6]}
  return %b
}";
        let mut m = parse_module(src).unwrap();
        let s = cancel_reshapes_transposes(&mut m.graphs[0]);
        assert_eq!(s, CancelStats::default());
    }
}
