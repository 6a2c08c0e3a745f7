//! Dead-code elimination.

use npuc_ir::{Graph, Op, OpId};
use npuc_pass::{Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

/// Registry entry of the `dce` pass.
pub const DCE: PassInfo = PassInfo {
    name: "dce",
    summary: "remove ops none of whose results reach a graph output (opaque and variable-touching ops stay)",
    options: &[],
    build: build_dce,
};

fn build_dce(_: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    Ok(Box::new(Dce))
}

/// The `dce` pass: see [`eliminate_dead_code`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let removed = eliminate_dead_code(graph);
        Ok(PassReport { ops_removed: removed, ops_added: 0, notes: Vec::new() })
    }
}

/// Whether an op must stay whatever reads its results: opaque ops (custom ops: npuc
/// cannot see their effects), IF and WHILE (the graphs they call may hold such ops or
/// variables, which dce, seeing one graph, cannot inspect) and ops reading or writing a
/// variable tensor.
fn has_side_effects(g: &Graph, id: OpId) -> bool {
    let o = g.op(id);
    matches!(o.op, Op::Opaque(_) | Op::If { .. } | Op::While { .. })
        || o.inputs.iter().flatten().chain(&o.outputs).chain(&o.intermediates).any(|&v| g.value(v).is_variable)
}

/// Removes every op none of whose results reaches a graph output, directly or through
/// other ops, unless it has side effects (then it and what it reads stay). Returns the
/// number of ops removed. Linear in ops plus operands: one backward marking walk from the
/// roots, one sweep.
pub fn eliminate_dead_code(g: &mut Graph) -> usize {
    let bound = g.op_ids().map(|id| id.index() + 1).max().unwrap_or(0);
    let mut live = vec![false; bound];
    let mut work: Vec<OpId> = Vec::new();
    let mark = |id: OpId, live: &mut Vec<bool>, work: &mut Vec<OpId>| {
        if !live[id.index()] {
            live[id.index()] = true;
            work.push(id);
        }
    };
    for &v in &g.outputs {
        if let Some(p) = g.producer(v) {
            mark(p, &mut live, &mut work);
        }
    }
    for id in g.op_ids() {
        if has_side_effects(g, id) {
            mark(id, &mut live, &mut work);
        }
    }
    while let Some(id) = work.pop() {
        for &v in g.op(id).inputs.iter().flatten() {
            if let Some(p) = g.producer(v) {
                mark(p, &mut live, &mut work);
            }
        }
    }
    let dead: Vec<OpId> = g.op_ids().filter(|id| !live[id.index()]).collect();
    for &id in &dead {
        g.remove_op(id);
    }
    dead.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_module, print_module, verify_module, PrintOptions};

    /// Parses `text`, runs DCE on every graph, verifies, and returns (removed, printout).
    fn dce(text: &str) -> (usize, String) {
        let mut m = parse_module(text).unwrap();
        verify_module(&m).unwrap();
        let removed = m.graphs.iter_mut().map(eliminate_dead_code).sum();
        verify_module(&m).unwrap();
        (removed, print_module(&m, &PrintOptions::default()))
    }

    #[test]
    fn removes_dead_branch() {
        let (removed, text) = dce("graph @g(%x: tensor<4xf32>) {
  %a = relu(%x) : tensor<4xf32> {name = \"live\"}
  %b = tanh(%x) : tensor<4xf32> {name = \"dead1\"}
  %c = relu6(%b) : tensor<4xf32> {name = \"dead2\"}
  return %a
}");
        assert_eq!(removed, 2);
        assert!(text.contains("relu(") && !text.contains("tanh") && !text.contains("relu6"), "{text}");
    }

    #[test]
    fn keeps_live_chain() {
        let src = "graph @g(%x: tensor<4xf32>) {
  %a = relu(%x) : tensor<4xf32>
  %b = tanh(%a) : tensor<4xf32>
  %c = mul(%b, %a) : tensor<4xf32>
  return %c
}";
        let (removed, text) = dce(src);
        assert_eq!(removed, 0);
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
    }

    #[test]
    fn keeps_multi_output_op_with_one_live_result() {
        let (removed, text) = dce("graph @g(%x: tensor<4x2xf32>) {
  %axis = const dense<[1]> : tensor<i32>
  %s:2 = split(%axis, %x) {num_splits = 2} : tensor<4x1xf32>, tensor<4x1xf32>
  %d = relu(%s#1) : tensor<4x1xf32> {name = \"dead\"}
  return %s#0
}");
        assert_eq!(removed, 1);
        assert!(text.contains("split(") && !text.contains("relu("), "{text}");
    }

    #[test]
    fn keeps_opaque_ops_and_their_inputs() {
        let (removed, text) = dce("graph @g(%x: tensor<4xf32>) {
  %a = tanh(%x) : tensor<4xf32>
  %o = opaque \"MY_SINK\"(%a) : tensor<4xf32>
  %d = relu(%x) : tensor<4xf32>
  return %x
}");
        assert_eq!(removed, 1);
        assert!(text.contains("opaque \"MY_SINK\"") && text.contains("tanh(") && !text.contains("relu("), "{text}");
    }

    #[test]
    fn keeps_ops_touching_variables() {
        let (removed, _) = dce("graph @g(%x: tensor<4xf32>) {
  %v = variable dense<[0.0, 0.0, 0.0, 0.0]> : tensor<4xf32>
  %a = add(%v, %x) : tensor<4xf32>
  return %x
}");
        assert_eq!(removed, 0);
    }
}
