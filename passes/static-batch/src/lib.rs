//! The `static-batch` pass: fixes the dynamic batch of a graph's inputs and makes every
//! shape in the graph static.
//!
//! Converters write a Keras model's batch as a run-time dimension (TFLite `shape_signature`
//! with `-1` in dimension 0, and a placeholder `1` in the static shape); NPU back ends need
//! static shapes. This pass sets that batch to `size` and re-derives every affected type
//! with [`npuc_ir::shape::infer`], in topological order. It is also the worked example of
//! `passes/README.md`, so it is written to be read.
//!
//! It is not a general shape specializer: only dimension 0 of graph inputs is fixed, and an
//! op whose result cannot follow the new batch exactly is an error, not a guess.

use npuc_ir::shape::{format_shape, shape_operands};
use npuc_ir::{Constant, DType, Graph, Op, OpId, TensorType, Value};
use npuc_pass::{OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

/// Largest batch the pass accepts: TFLite stores dimensions as `i32`.
pub const MAX_BATCH: i64 = i32::MAX as i64;

/// Registry entry of the `static-batch` pass.
pub const STATIC_BATCH: PassInfo = PassInfo {
    name: "static-batch",
    summary: "fix the dynamic batch (shape_signature -1 in dim 0) of graph inputs to `size`; make all shapes static",
    options: &[OptionInfo {
        name: "size",
        ty: OptionType::Int,
        default: "1",
        doc: "the batch to fix dynamic inputs to (at least 1)",
    }],
    build: build_static_batch,
};

/// Reads and range-checks the options; the registry has already checked names and types.
fn build_static_batch(options: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    let size = options.int("size")?;
    if !(1..=MAX_BATCH).contains(&size) {
        return Err(PassError::BadOptionValue {
            pass: STATIC_BATCH.name.into(),
            option: "size".into(),
            value: size.to_string(),
            expected: format!("a batch from 1 to {MAX_BATCH}"),
        });
    }
    // In range, so the conversion cannot fail on any supported platform.
    let size = usize::try_from(size).map_err(|_| PassError::BadOptionValue {
        pass: STATIC_BATCH.name.into(),
        option: "size".into(),
        value: size.to_string(),
        expected: "a batch that fits in usize".into(),
    })?;
    Ok(Box::new(StaticBatch { size }))
}

/// The `static-batch` pass: see [`make_batch_static`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticBatch {
    /// The batch dynamic inputs get.
    pub size: usize,
}

impl Pass for StaticBatch {
    fn name(&self) -> &'static str {
        STATIC_BATCH.name
    }

    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
        let stats = make_batch_static(graph, self.size).map_err(|e| PassError::Unsupported {
            pass: STATIC_BATCH.name.into(),
            graph: cx.graph_index,
            graph_name: graph.name.clone(),
            message: e.to_string(),
        })?;
        let mut notes = Vec::new();
        if stats.inputs_fixed > 0 {
            notes.push(format!(
                "fixed the batch of {} input(s) to {} and made {} value type(s) static",
                stats.inputs_fixed, self.size, stats.values_updated
            ));
        }
        notes.extend(stats.rewrites);
        Ok(PassReport { ops_removed: stats.shapes_folded, ops_added: 0, notes })
    }
}

/// What [`make_batch_static`] did to a graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Graph inputs whose dynamic batch was fixed.
    pub inputs_fixed: usize,
    /// Values (inputs included) whose shape changed or whose `shape_signature` was cleared.
    pub values_updated: usize,
    /// SHAPE ops replaced by a constant because their operand became static.
    pub shapes_folded: usize,
    /// One line per rewrite beyond a type update (reshape shape constants, folded SHAPE ops).
    pub rewrites: Vec<String>,
}

/// Why the batch could not be fixed; every variant names the op and value involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A graph input has a run-time dimension other than the batch.
    #[error("input '{value}' has shape_signature {signature:?}: only dimension 0 (the batch) may be dynamic")]
    DynamicNonBatchDim {
        /// The input's name.
        value: String,
        /// Its `shape_signature`.
        signature: Vec<i64>,
    },
    /// Shape inference rejects an op once the batch changed.
    #[error("op {op} (result '{value}') cannot follow the new batch: {reason}")]
    Inference {
        /// Op index and name, `#3 reshape`.
        op: String,
        /// The op's first result.
        value: String,
        /// What inference said.
        reason: String,
    },
    /// Inference gives a result shape that contradicts the converter's `shape_signature`
    /// (a static dimension would change), and no exact rewrite exists.
    #[error("op {op}: result '{value}' would become {inferred:?} but its shape_signature {signature:?} fixes the other dimensions")]
    Contradicts {
        /// Op index and name.
        op: String,
        /// The result.
        value: String,
        /// The inferred shape.
        inferred: Vec<usize>,
        /// The result's `shape_signature`.
        signature: Vec<i64>,
    },
    /// The op's result shape depends on something only known at run time or only known to
    /// an opaque kernel.
    #[error("op {op}: the shape of result '{value}' cannot be derived: {reason}")]
    Underivable {
        /// Op index and name.
        op: String,
        /// The result.
        value: String,
        /// Why the shape cannot be derived.
        reason: String,
    },
    /// A value no op produces (a variable or constant) still has a run-time dimension.
    #[error("value '{value}' (no op produces it) has shape_signature {signature:?} that the batch does not determine")]
    StillDynamic {
        /// The value.
        value: String,
        /// Its `shape_signature`.
        signature: Vec<i64>,
    },
}

/// Whether a value's `shape_signature` has a run-time dimension.
fn is_dynamic(v: &Value) -> bool {
    v.shape_signature.as_ref().is_some_and(|s| s.iter().any(|&d| d < 0))
}

/// `#3 reshape`: how errors name an op.
fn op_label(g: &Graph, id: OpId) -> String {
    format!("#{} {}", id.index(), g.op(id).op.display_name())
}

/// Fixes the batch of every graph input whose `shape_signature` has `-1` in dimension 0 to
/// `size`, then walks the ops in topological order and re-derives the type of every result
/// that reads a changed value or is itself dynamic; `shape_signature`s are cleared.
///
/// A graph without run-time dimensions is left untouched (all counts 0). Exact rewrites:
/// * a SHAPE op whose operand became static is replaced by a constant (follow with
///   `fold-constants` to fold the flatten chain that usually reads it);
/// * a RESHAPE whose constant target shape pins the old batch in dimension 0, where the
///   result's signature says dimension 0 is the batch, gets a new target constant with the
///   batch solved from the element count;
/// * a RESHAPE whose target shape is computed at run time (SHAPE → STRIDED_SLICE → PACK)
///   takes its result's signature with the one `-1` solved from the element count, which
///   is what the run-time shape yields.
///
/// Anything else inference rejects, or a result contradicting its signature, is an error
/// and leaves the graph partly updated: the pass manager discards the module on error.
pub fn make_batch_static(g: &mut Graph, size: usize) -> Result<BatchStats, BatchError> {
    let mut stats = BatchStats::default();
    let live = g.live_values();
    if !g.value_ids().any(|v| live[v.index()] && is_dynamic(g.value(v))) {
        return Ok(stats);
    }
    // `touched[v]`: the value's shape changed or its signature was cleared, so its readers
    // must be re-derived. `resized[v]`: its shape changed (not just its signature).
    let mut touched = vec![false; g.value_count()];
    let mut resized = vec![false; g.value_count()];
    for v in g.inputs.clone() {
        let value = g.value(v);
        let Some(sig) = value.shape_signature.clone().filter(|_| is_dynamic(value)) else { continue };
        if sig.first().is_none_or(|&d| d >= 0) || sig[1..].iter().any(|&d| d < 0) {
            return Err(BatchError::DynamicNonBatchDim { value: value.name.clone(), signature: sig });
        }
        let value = g.value_mut(v);
        resized[v.index()] = value.ty.shape[0] != size;
        value.ty.shape[0] = size;
        value.shape_signature = None;
        touched[v.index()] = true;
        stats.inputs_fixed += 1;
        stats.values_updated += 1;
    }
    let order = g.topo_order().map_err(|e| BatchError::Underivable {
        op: "?".into(),
        value: "?".into(),
        reason: e.to_string(),
    })?;
    for id in order {
        // Rewrites add constants; they are neither touched nor resized.
        touched.resize(g.value_count(), false);
        resized.resize(g.value_count(), false);
        let o = g.op(id);
        let reads_touched = o.inputs.iter().flatten().any(|v| touched[v.index()]);
        let writes_dynamic = o.outputs.iter().any(|&v| is_dynamic(g.value(v)));
        if !reads_touched && !writes_dynamic {
            continue;
        }
        if let Op::Shape { output_type } = o.op {
            if let Some(note) = fold_shape(g, id, output_type) {
                stats.shapes_folded += 1;
                stats.rewrites.push(note);
                continue;
            }
        }
        let types = derive_result_types(g, id, &resized, &mut stats)?;
        let outputs = g.op(id).outputs.clone();
        for (v, shape) in outputs.into_iter().zip(types) {
            let value = g.value_mut(v);
            if value.ty.shape != shape || value.shape_signature.is_some() {
                resized[v.index()] = value.ty.shape != shape;
                value.ty.shape = shape;
                value.shape_signature = None;
                touched[v.index()] = true;
                stats.values_updated += 1;
            }
        }
    }
    let live = g.live_values();
    if let Some(v) = g.value_ids().find(|v| live[v.index()] && is_dynamic(g.value(*v))) {
        let value = g.value(v);
        return Err(BatchError::StillDynamic {
            value: value.name.clone(),
            signature: value.shape_signature.clone().unwrap_or_default(),
        });
    }
    Ok(stats)
}

/// The result shapes of op `id` after its operands changed (the op itself is rewritten if a
/// reshape needs a new target constant).
fn derive_result_types(
    g: &mut Graph,
    id: OpId,
    resized: &[bool],
    stats: &mut BatchStats,
) -> Result<Vec<Vec<usize>>, BatchError> {
    let o = g.op(id);
    let first = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
    if matches!(o.op, Op::Opaque(_)) {
        // An opaque kernel's shape rule is unknown: only a signature-only change (the batch
        // kept its stored value) is safe to pass through.
        if o.inputs.iter().flatten().any(|v| resized[v.index()]) {
            return Err(BatchError::Underivable {
                op: op_label(g, id),
                value: first,
                reason: "an opaque op's result shapes are unknown to npuc and an operand's shape changed".into(),
            });
        }
        return Ok(o.outputs.iter().map(|&v| g.value(v).ty.shape.clone()).collect());
    }
    let computed = shape_operands(&o.op).iter().any(|&s| o.input(s).is_some_and(|v| g.value(v).data.is_none()));
    if computed {
        return computed_reshape_type(g, id, &first).map(|s| vec![s]);
    }
    match infer_checked(g, id) {
        Ok(types) => Ok(types),
        Err(e) => match rewrite_reshape_target(g, id) {
            Some(note) => {
                stats.rewrites.push(note);
                infer_checked(g, id)
            }
            None => Err(e),
        },
    }
}

/// Infers op `id`'s result shapes and checks them against the results' signatures.
fn infer_checked(g: &Graph, id: OpId) -> Result<Vec<Vec<usize>>, BatchError> {
    let o = g.op(id);
    let first = o.outputs.first().map(|&v| g.value(v).name.clone()).unwrap_or_default();
    let inputs: Vec<Option<&Value>> = o.inputs.iter().map(|v| v.map(|v| g.value(v))).collect();
    let inferred = npuc_ir::infer(&o.op, &inputs, o.outputs.len()).map_err(|reason| BatchError::Inference {
        op: op_label(g, id),
        value: first.clone(),
        reason,
    })?;
    let mut shapes = Vec::with_capacity(inferred.len());
    for (t, &v) in inferred.into_iter().zip(&o.outputs) {
        let value = g.value(v);
        let Some(shape) = t.shape else {
            if is_dynamic(value) {
                return Err(BatchError::Underivable {
                    op: op_label(g, id),
                    value: value.name.clone(),
                    reason: "the op does not determine this result's shape".into(),
                });
            }
            shapes.push(value.ty.shape.clone());
            continue;
        };
        if let Some(sig) = &value.shape_signature {
            let agrees = sig.len() == shape.len() && sig.iter().zip(&shape).all(|(&s, &d)| s < 0 || s as usize == d);
            if !agrees {
                return Err(BatchError::Contradicts {
                    op: op_label(g, id),
                    value: value.name.clone(),
                    inferred: shape,
                    signature: sig.clone(),
                });
            }
        }
        shapes.push(shape);
    }
    Ok(shapes)
}

/// Replaces a SHAPE op whose operand is now static by a constant holding that shape, and
/// returns a note; `None` if the operand is still dynamic or the result is a graph output.
fn fold_shape(g: &mut Graph, id: OpId, output_type: DType) -> Option<String> {
    let o = g.op(id);
    let (Some(x), [y]) = (o.input(0), o.outputs.as_slice()) else { return None };
    let y = *y;
    // A graph output may be named by a module signature, which a pass cannot redirect.
    if is_dynamic(g.value(x)) || g.outputs.contains(&y) {
        return None;
    }
    let dims = &g.value(x).ty.shape;
    let mut bytes = Vec::with_capacity(dims.len() * 8);
    for &d in dims {
        match output_type {
            DType::I32 => bytes.extend_from_slice(&i32::try_from(d).unwrap_or(i32::MAX).to_le_bytes()),
            DType::I64 => bytes.extend_from_slice(&i64::try_from(d).unwrap_or(i64::MAX).to_le_bytes()),
            // Inference rejects other output types; leave such an op to it.
            _ => return None,
        }
    }
    let label = op_label(g, id);
    let note = format!("replaced {label} of '{}' by the constant {}", g.value(y).name, format_shape(dims));
    let ty = TensorType { dtype: output_type, shape: vec![dims.len()], quant: g.value(y).ty.quant.clone() };
    let c = g.add_const(g.value(y).name.clone(), ty, Constant::from(bytes));
    g.replace_all_uses(y, c);
    g.remove_op(id);
    Some(note)
}

/// The result shape of a RESHAPE whose target is computed at run time: its signature with
/// the single `-1` solved from the element count (what the run-time target yields, since
/// the signature's other dimensions are the converter's promise).
fn computed_reshape_type(g: &Graph, id: OpId, first: &str) -> Result<Vec<usize>, BatchError> {
    let o = g.op(id);
    let underivable = |reason: String| BatchError::Underivable { op: op_label(g, id), value: first.into(), reason };
    if !matches!(o.op, Op::Reshape { .. }) || o.outputs.len() != 1 {
        return Err(underivable("a shape operand is computed at run time".into()));
    }
    let x = o.input(0).ok_or_else(|| underivable("the input operand is missing".into()))?;
    let n = g.value(x).ty.num_elements().ok_or_else(|| underivable("the input's element count overflows".into()))?;
    let out = g.value(o.outputs[0]);
    let Some(sig) = &out.shape_signature else {
        return Err(underivable(
            "the target shape is computed at run time and the result has no shape_signature".into(),
        ));
    };
    solve_signature(sig, n).ok_or_else(|| {
        underivable(format!(
            "the target shape is computed at run time and shape_signature {sig:?} does not determine it \
             for {n} elements (it needs exactly one -1 dividing the element count)"
        ))
    })
}

/// `sig` with its one negative dimension set so the shape has `n` elements.
fn solve_signature(sig: &[i64], n: u64) -> Option<Vec<usize>> {
    let mut unknown = None;
    let mut known: u64 = 1;
    for (i, &d) in sig.iter().enumerate() {
        if d < 0 {
            if unknown.replace(i).is_some() {
                return None;
            }
        } else {
            known = known.checked_mul(u64::try_from(d).ok()?)?;
        }
    }
    let i = unknown?;
    if known == 0 || n % known != 0 {
        return None;
    }
    let mut shape: Vec<usize> = sig.iter().map(|&d| usize::try_from(d.max(0)).unwrap_or(0)).collect();
    shape[i] = usize::try_from(n / known).ok()?;
    Some(shape)
}

/// Rewrites a RESHAPE whose constant i32 target pins dimension 0 (the old batch) when the
/// result's signature says dimension 0 is the batch: the new target has dimension 0 solved
/// from the element count, in a new constant (the old one may have other readers). Returns
/// a note, or `None` if the op is not such a reshape.
fn rewrite_reshape_target(g: &mut Graph, id: OpId) -> Option<String> {
    let o = g.op(id);
    let Op::Reshape { new_shape } = &o.op else { return None };
    let (Some(x), Some(s), [y]) = (o.input(0), o.input(1), o.outputs.as_slice()) else { return None };
    let (sv, yv) = (g.value(s), g.value(*y));
    let sig = yv.shape_signature.as_ref().filter(|sig| sig.first().is_some_and(|&d| d < 0))?;
    if !sv.is_constant() || sv.ty.dtype != DType::I32 || sv.ty.rank() != 1 {
        return None;
    }
    let bytes = sv.data.as_ref().and_then(|c| c.bytes())?;
    let target: Vec<i64> =
        bytes.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect();
    if target.len() != sig.len() || target[0] < 0 {
        return None;
    }
    // Dimension 0 is the batch: solved below. The others are what the signature promises
    // where it promises something (a -1 in the target there resolves to the same value),
    // and the target's own fixed value elsewhere.
    let mut solvable = vec![-1i64];
    for (&t, &s) in target[1..].iter().zip(&sig[1..]) {
        match (t, s) {
            (t, s) if s >= 0 && (t == s || t == -1) => solvable.push(s),
            (t, s) if s < 0 && t >= 0 => solvable.push(t),
            _ => return None,
        }
    }
    let shape = solve_signature(&solvable, g.value(x).ty.num_elements()?)?;
    let new_target: Vec<i32> = shape.iter().map(|&d| i32::try_from(d).ok()).collect::<Option<_>>()?;
    let data: Vec<u8> = new_target.iter().flat_map(|d| d.to_le_bytes()).collect();
    let note =
        format!("rewrote the target of {} (result '{}') from {target:?} to {new_target:?}", op_label(g, id), yv.name);
    let had_attr = new_shape.is_some();
    let name = sv.name.clone();
    let ty = sv.ty.clone();
    let c = g.add_const(name, ty, Constant::from(data));
    g.set_input(id, 1, Some(c));
    if had_attr {
        // Exporters write the attribute too and some kernels read it: keep the two equal.
        *g.op_kind_mut(id) = Op::Reshape { new_shape: Some(new_target) };
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_ir::{parse_module, print_module, verify_graph, PrintOptions};

    /// Parses `text`, fixes the batch of its one graph to `size`, verifies the result and
    /// returns the stats and the printout.
    fn fix(text: &str, size: usize) -> Result<(BatchStats, String), BatchError> {
        let mut m = parse_module(text).expect("test IR parses");
        let stats = make_batch_static(&mut m.graphs[0], size)?;
        verify_graph(&m.graphs[0]).unwrap_or_else(|e| panic!("verifier rejects the result: {e}"));
        Ok((stats, print_module(&m, &PrintOptions::default())))
    }

    const CONV_RESHAPE: &str = r#"graph @main(%x: tensor<1x4x4x2xf32> {name = "x", shape_signature = [-1, 4, 4, 2]}) {
  %w = const dense<[1.0, 0.5, -1.0, 2.0, 0.25, 1.0, 0.0, -0.5, 1.5, 1.0, 2.0, 0.5, -1.0, 0.0, 1.0, 0.75]> : tensor<8x1x1x2xf32> {name = "w"}
  %t = const dense<[1, 128]> : tensor<2xi32> {name = "target"}
  %c = conv_2d(%x, %w) {padding = same, stride = [1, 1], dilation = [1, 1]} : tensor<1x4x4x8xf32> {name = "conv", shape_signature = [-1, 4, 4, 8]}
  %r = reshape(%c, %t) : tensor<1x128xf32> {name = "flat", shape_signature = [-1, 128]}
  return %r
}"#;

    #[test]
    fn size_equal_to_stored_batch_only_clears_signatures() {
        let (stats, text) = fix(CONV_RESHAPE, 1).unwrap();
        assert_eq!(stats.inputs_fixed, 1);
        assert_eq!(stats.values_updated, 3, "x, conv and flat lose their signatures");
        assert!(stats.rewrites.is_empty(), "{:?}", stats.rewrites);
        assert!(!text.contains("shape_signature"), "{text}");
        assert!(text.contains("tensor<1x4x4x2xf32>") && text.contains("tensor<1x128xf32>"), "{text}");
    }

    #[test]
    fn size_four_flows_through_conv_and_rewrites_the_pinned_reshape_target() {
        let (stats, text) = fix(CONV_RESHAPE, 4).unwrap();
        assert_eq!((stats.inputs_fixed, stats.values_updated), (1, 3));
        assert_eq!(stats.rewrites.len(), 1, "{:?}", stats.rewrites);
        assert!(stats.rewrites[0].contains("[1, 128] to [4, 128]"), "{:?}", stats.rewrites);
        assert!(text.contains("tensor<4x4x4x2xf32>"), "{text}");
        assert!(text.contains("tensor<4x4x4x8xf32>"), "{text}");
        assert!(text.contains("const dense<[4, 128]> : tensor<2xi32>"), "{text}");
        assert!(text.contains(": tensor<4x128xf32> {name = \"flat\"}"), "{text}");
        assert!(!text.contains("shape_signature"), "{text}");
    }

    #[test]
    fn reshape_target_with_minus_one_in_the_wrong_place_is_rewritten_to_keep_the_signature() {
        // [1, -1] would silently give [1, 512] at batch 4; the signature says [-1, 128].
        let src = CONV_RESHAPE.replace("dense<[1, 128]>", "dense<[1, -1]>");
        let (stats, text) = fix(&src, 4).unwrap();
        assert!(stats.rewrites[0].contains("[1, -1] to [4, 128]"), "{:?}", stats.rewrites);
        assert!(text.contains(": tensor<4x128xf32> {name = \"flat\"}"), "{text}");
    }

    #[test]
    fn reshape_target_with_minus_one_in_the_batch_follows_without_rewrite() {
        let src = CONV_RESHAPE.replace("dense<[1, 128]>", "dense<[-1, 128]>");
        let (stats, text) = fix(&src, 3).unwrap();
        assert!(stats.rewrites.is_empty(), "{:?}", stats.rewrites);
        assert!(text.contains(": tensor<3x128xf32> {name = \"flat\"}"), "{text}");
    }

    #[test]
    fn run_time_reshape_target_is_solved_from_the_signature_and_shape_is_folded() {
        let src = r#"graph @main(%x: tensor<1x2x3xf32> {name = "x", shape_signature = [-1, 2, 3]}) {
  %b = const dense<[0]> : tensor<1xi32> {name = "begin"}
  %e = const dense<[1]> : tensor<1xi32> {name = "end"}
  %k = const dense<[6]> : tensor<i32> {name = "k"}
  %s = shape(%x) {output_type = i32} : tensor<3xi32> {name = "shape"}
  %n = strided_slice(%s, %b, %e, %e) {shrink_axis_mask = 1} : tensor<i32> {name = "n"}
  %p = pack(%n, %k) {values_count = 2, axis = 0} : tensor<2xi32> {name = "target"}
  %r = reshape(%x, %p) : tensor<1x6xf32> {name = "flat", shape_signature = [-1, 6]}
  return %r
}"#;
        let (stats, text) = fix(src, 5).unwrap();
        assert_eq!(stats.shapes_folded, 1);
        assert!(text.contains("const dense<[5, 2, 3]> : tensor<3xi32> {name = \"shape\"}"), "{text}");
        assert!(!text.contains(" = shape("), "{text}");
        assert!(text.contains(": tensor<5x6xf32> {name = \"flat\"}"), "{text}");
    }

    #[test]
    fn static_graph_is_left_unchanged() {
        let src = r#"graph @main(%x: tensor<2x4xf32> {name = "x"}) {
  %y = tanh(%x) : tensor<2x4xf32> {name = "y"}
  return %y
}"#;
        let (stats, text) = fix(src, 8).unwrap();
        assert_eq!(stats, BatchStats::default());
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
    }

    #[test]
    fn reshape_pinning_a_static_result_is_an_error_naming_op_and_value() {
        let src = r#"graph @main(%x: tensor<1x16xf32> {name = "x", shape_signature = [-1, 16]}) {
  %t = const dense<[2, 8]> : tensor<2xi32> {name = "target"}
  %r = reshape(%x, %t) : tensor<2x8xf32> {name = "pinned"}
  return %r
}"#;
        let err = fix(src, 4).unwrap_err();
        assert!(matches!(err, BatchError::Inference { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("reshape") && msg.contains("'pinned'") && msg.contains("64 elements"), "{msg}");
    }

    #[test]
    fn dynamic_non_batch_dimension_is_an_error() {
        let src = r#"graph @main(%x: tensor<1x4xf32> {name = "x", shape_signature = [-1, -1]}) {
  %y = tanh(%x) : tensor<1x4xf32> {name = "y", shape_signature = [-1, -1]}
  return %y
}"#;
        let err = fix(src, 2).unwrap_err();
        assert_eq!(err, BatchError::DynamicNonBatchDim { value: "x".into(), signature: vec![-1, -1] });
    }

    #[test]
    fn size_zero_and_unknown_values_are_option_errors() {
        let build = |text: &str| {
            let given = vec![("size".to_string(), text.to_string())];
            PassOptions::validate(STATIC_BATCH.name, STATIC_BATCH.options, &given)
                .and_then(|o| (STATIC_BATCH.build)(&o))
        };
        let err = build("0").err().expect("size=0 is rejected");
        assert!(
            matches!(&err, PassError::BadOptionValue { option, value, .. } if option == "size" && value == "0"),
            "{err:?}"
        );
        assert!(err.to_string().contains("a batch from 1 to"), "{err}");
        assert!(build("-3").is_err());
        assert!(build("four").is_err());
        assert!(build("4").is_ok());
        let defaults = PassOptions::validate(STATIC_BATCH.name, STATIC_BATCH.options, &[]).unwrap();
        assert_eq!(defaults.int("size").unwrap(), 1);
    }
}
