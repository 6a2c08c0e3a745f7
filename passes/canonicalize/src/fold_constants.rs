//! Constant folding: ops whose operands are all constants are evaluated at compile time.

use std::collections::HashMap;

use npuc_interp::{Interpreter, Options};
use npuc_ir::{Constant, Graph, Op, OpId, Operation, ValueId};
use npuc_pass::{OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

/// Default of the `max_bytes` option: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// Registry entry of the `fold-constants` pass.
pub const FOLD_CONSTANTS: PassInfo = PassInfo {
    name: "fold-constants",
    summary: "evaluate ops whose operands are all constants (e.g. dequantize of f16 weights, densify of sparse ones) with the interpreter and replace their results by constants",
    options: &[OptionInfo {
        name: "max_bytes",
        ty: OptionType::Int,
        default: "67108864",
        doc: "do not fold an op whose results would take more than this many bytes",
    }],
    build: build_fold_constants,
};

fn build_fold_constants(options: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    let max_bytes = options.int("max_bytes")?;
    Ok(Box::new(FoldConstants { max_bytes: u64::try_from(max_bytes).unwrap_or(0) }))
}

/// The `fold-constants` pass: see [`fold_constants`].
#[derive(Clone, Copy, Debug)]
pub struct FoldConstants {
    /// Largest total result size, in bytes, an op may have to be folded.
    pub max_bytes: u64,
}

impl Default for FoldConstants {
    fn default() -> Self {
        FoldConstants { max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&mut self, graph: &mut Graph, _cx: &mut PassContext) -> Result<PassReport, PassError> {
        let stats = fold_constants(graph, self.max_bytes);
        let mut notes = stats.notes;
        if stats.folded > 0 {
            notes.push(format!("folded {} ops into {} bytes of constants", stats.folded, stats.bytes));
        }
        Ok(PassReport { ops_removed: stats.folded, ops_added: 0, notes })
    }
}

/// What [`fold_constants`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoldStats {
    /// Ops evaluated and removed.
    pub folded: usize,
    /// Bytes of constant data created for their results.
    pub bytes: u64,
    /// Ops that qualified but whose evaluation failed (left in place), one line each.
    pub notes: Vec<String>,
}

/// Whether op `id` qualifies for folding: not opaque, no intermediates, at least one
/// operand, every operand a non-elided constant, no variable involved, and results of
/// known size at most `max_bytes` in total.
fn foldable(g: &Graph, id: OpId, max_bytes: u64) -> bool {
    let o = g.op(id);
    if matches!(o.op, Op::Opaque(_)) || !o.intermediates.is_empty() || o.outputs.is_empty() {
        return false;
    }
    let mut any = false;
    for &v in o.inputs.iter().flatten() {
        let val = g.value(v);
        if !val.is_constant() || val.data.as_ref().is_none_or(|c| c.is_elided()) {
            return false;
        }
        any = true;
    }
    if !any {
        return false;
    }
    let mut total = 0u64;
    for &v in &o.outputs {
        let val = g.value(v);
        if val.is_variable {
            return false;
        }
        match val.ty.storage_bytes() {
            Some(b) => total = total.saturating_add(b),
            None => return false,
        }
    }
    total <= max_bytes
}

/// Runs op `id` alone on copies of its constant operands; returns each result's bytes.
fn evaluate(g: &Graph, id: OpId) -> Result<Vec<Vec<u8>>, String> {
    let o = g.op(id);
    let mut mini = Graph::new("fold");
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut inputs = Vec::with_capacity(o.inputs.len());
    for v in &o.inputs {
        let Some(v) = *v else {
            inputs.push(None);
            continue;
        };
        let nv = *map.entry(v).or_insert_with(|| {
            let mut val = g.value(v).clone();
            val.producer = None;
            mini.add_value(val)
        });
        inputs.push(Some(nv));
    }
    let outputs: Vec<ValueId> = o
        .outputs
        .iter()
        .map(|&v| {
            let mut val = g.value(v).clone();
            val.producer = None;
            val.data = None;
            val.sparsity = None;
            mini.add_value(val)
        })
        .collect();
    let mut op = Operation::new(o.op.clone(), inputs, outputs.clone());
    op.version = o.version;
    mini.add_op(op).map_err(|e| e.to_string())?;
    mini.outputs = outputs;
    let interp = Interpreter::new(&mini, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    let results = interp.run(Vec::new()).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(results.len());
    for (t, &v) in results.iter().zip(&o.outputs) {
        let ty = &g.value(v).ty;
        if t.shape != ty.shape || t.dtype() != ty.dtype {
            return Err(format!(
                "result '{}' came out as {:?} {} but is declared {:?} {}",
                g.value(v).name,
                t.shape,
                t.dtype().name(),
                ty.shape,
                ty.dtype.name()
            ));
        }
        out.push(t.data.to_le_bytes());
    }
    if out.len() != o.outputs.len() {
        return Err(format!("{} results for {} declared", out.len(), o.outputs.len()));
    }
    Ok(out)
}

/// Folds every op whose operands are all constants (sparse ones included; elided ones
/// not), in topological order so chains of such ops fold completely. Each op runs alone in
/// the interpreter on copies of its operands; its results become constants in place (same
/// value ids, names and types, dense storage), so graph outputs and signatures referring
/// to them stay valid, and the op is removed. Operands left unread stay for `dce`. Ops
/// whose results exceed `max_bytes` in total, opaque ops, ops with intermediates and ops
/// touching variables are kept; an op whose evaluation fails is kept and noted.
pub fn fold_constants(g: &mut Graph, max_bytes: u64) -> FoldStats {
    let mut stats = FoldStats::default();
    let Ok(order) = g.topo_order() else {
        stats.notes.push("graph has a cycle; nothing folded".into());
        return stats;
    };
    for id in order {
        if !foldable(g, id, max_bytes) {
            continue;
        }
        match evaluate(g, id) {
            Ok(results) => {
                let outputs = g.op(id).outputs.clone();
                g.remove_op(id);
                for (v, bytes) in outputs.into_iter().zip(results) {
                    stats.bytes += bytes.len() as u64;
                    let val = g.value_mut(v);
                    val.data = Some(Constant::from(bytes));
                    val.sparsity = None;
                }
                stats.folded += 1;
            }
            Err(e) => {
                let o = g.op(id);
                let name = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
                stats.notes.push(format!("not folded: {} '{}': {e}", o.op.display_name(), name));
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_module, print_module, verify_graph, verify_module, PrintOptions};

    /// Parses `text`, folds every graph, verifies, and returns (module, stats).
    fn fold(text: &str) -> (npuc_ir::Module, FoldStats) {
        let mut m = parse_module(text).unwrap();
        verify_module(&m).unwrap();
        let mut stats = FoldStats::default();
        for g in &mut m.graphs {
            let s = fold_constants(g, DEFAULT_MAX_BYTES);
            stats.folded += s.folded;
            stats.bytes += s.bytes;
            stats.notes.extend(s.notes);
        }
        for g in &m.graphs {
            verify_graph(g).unwrap();
        }
        verify_module(&m).unwrap();
        (m, stats)
    }

    fn f32s(g: &Graph, v: ValueId) -> Vec<f32> {
        let val = g.value(v);
        assert!(val.is_constant() && val.sparsity.is_none(), "{val:?}");
        val.data
            .as_ref()
            .unwrap()
            .bytes()
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn folds_f16_dequantize_exactly() {
        let (m, stats) = fold(
            "graph @g(%x: tensor<4xf32>) {
  %w = const dense<\"003c00c1662eff7b\"> : tensor<4xf16> {name = \"w16\"}
  %d = dequantize(%w) : tensor<4xf32> {name = \"w32\"}
  %y = add(%x, %d) : tensor<4xf32>
  return %y
}",
        );
        assert_eq!((stats.folded, stats.bytes), (1, 16), "{stats:?}");
        let g = &m.graphs[0];
        assert_eq!(g.op_count(), 1);
        let add = g.op_ids().next().unwrap();
        let d = g.op(add).input(1).unwrap();
        assert_eq!(g.value(d).name, "w32");
        // 0.1 in f16 is 0.0999755859375; widening to f32 is exact.
        assert_eq!(f32s(g, d), vec![1.0, -2.5, 0.099_975_586, 65504.0]);
    }

    #[test]
    fn folds_sparse_densify_like_the_interpreter() {
        let src = "graph @g(%x: tensor<2x3xf32>) {
  %s = const dense<\"0000803f0000004000004040\"> : tensor<2x3xf32> {name = \"sp\", sparsity = sparse<traversal_order = [0, 1], block_map = [], dims = [dense(size = 2), csr(segments = i32[0, 1, 3], indices = i32[2, 0, 1])]>}
  %d = densify(%s) : tensor<2x3xf32> {name = \"dense\"}
  %y = add(%x, %d) : tensor<2x3xf32>
  return %y
}";
        let orig = parse_module(src).unwrap();
        let og = &orig.graphs[0];
        let sv = og.value_ids().find(|&v| og.value(v).name == "sp").unwrap();
        let s = og.value(sv);
        let want = npuc_interp::sparse::densify(&s.ty, s.data.as_ref().unwrap(), s.sparsity.as_ref().unwrap()).unwrap();
        assert_eq!(want.as_f32().unwrap(), &[0.0, 0.0, 1.0, 2.0, 3.0, 0.0]);
        let (m, stats) = fold(src);
        assert_eq!(stats.folded, 1);
        let g = &m.graphs[0];
        let add = g.op_ids().next().unwrap();
        assert_eq!(f32s(g, g.op(add).input(1).unwrap()), want.as_f32().unwrap());
    }

    #[test]
    fn folds_chain_completely_and_keeps_output_ids() {
        let (m, stats) = fold(
            "graph @g(%x: tensor<3x2xf32>) {
  %c = const dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<6xf32>
  %s = const dense<[2, 3]> : tensor<2xi32>
  %p = const dense<[1, 0]> : tensor<2xi32>
  %r = reshape(%c, %s) : tensor<2x3xf32> {name = \"r\"}
  %t = transpose(%r, %p) : tensor<3x2xf32> {name = \"t\"}
  %y = add(%x, %t) : tensor<3x2xf32>
  return %y, %t
}",
        );
        assert_eq!(stats.folded, 2, "{stats:?}");
        let g = &m.graphs[0];
        assert_eq!(g.op_count(), 1);
        let t = g.outputs[1];
        assert_eq!(g.value(t).name, "t");
        assert_eq!(f32s(g, t), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let text = print_module(&m, &PrintOptions::default());
        assert!(!text.contains("reshape") && !text.contains("transpose"), "{text}");
    }

    #[test]
    fn leaves_ops_with_non_constant_operands() {
        let src = "graph @g(%x: tensor<2xf32>) {
  %c = const dense<[1.0, 2.0]> : tensor<2xf32>
  %a = add(%x, %c) : tensor<2xf32>
  %b = relu(%a) : tensor<2xf32>
  return %b
}";
        let (m, stats) = fold(src);
        assert_eq!(stats, FoldStats::default());
        assert_eq!(
            print_module(&m, &PrintOptions::default()),
            print_module(&parse_module(src).unwrap(), &PrintOptions::default())
        );
    }

    #[test]
    fn respects_max_bytes() {
        let mut m = parse_module(
            "graph @g(%x: tensor<4xf32>) {
  %w = const dense<\"003c004000420044\"> : tensor<4xf16>
  %d = dequantize(%w) : tensor<4xf32>
  %y = add(%x, %d) : tensor<4xf32>
  return %y
}",
        )
        .unwrap();
        assert_eq!(fold_constants(&mut m.graphs[0], 15).folded, 0);
        assert_eq!(fold_constants(&mut m.graphs[0], 16).folded, 1);
        verify_graph(&m.graphs[0]).unwrap();
    }
}
