//! The verifier: structural and type invariants every [`Graph`] must hold between stages.
//!
//! [`verify_graph`] checks, in this order (the first violation is reported):
//! 1. every id an op or the graph interface names is in the value arena;
//! 2. every value is produced at most once, and producer links agree with op results;
//! 3. the op graph is acyclic;
//! 4. each referenced value on its own: at most [`MAX_TENSOR_ELEMENTS`] elements, constant
//!    data of the right size, consistent quantization;
//! 5. graph inputs are neither produced by an op nor constants;
//! 6. every operand and graph output is defined (produced by an op, a graph input, a
//!    constant or a variable);
//! 7. every non-opaque op's result dtypes and shapes equal what [`crate::shape::infer`]
//!    derives (which also checks operand counts, dtypes and shape operands), except for
//!    ops touching a value with a run-time dimension (`shape_signature` -1), whose static
//!    shapes are placeholders, and ops whose shape operands are computed at run time.
//!
//! Values no op and no interface list refer to are not checked: they are dead arena slots
//! (the arena never shrinks) and are neither printed nor exported.
//!
//! Quantization rules (TFLite's interpreter_builder.cc `ParseQuantization` plus what the
//! kernels assume): as many zero points as scales; `axis` below the rank; one scale, or
//! one per index of dimension `axis`; zero points within the dtype's range; scales only on
//! integer types (float and bool tensors may carry min/max ranges, nothing else); scales
//! finite and positive. A zero scale is accepted on constants only: dequantizing a
//! constant multiplies by the scale, so a zero scale is just an all-zero channel (converters
//! emit these for dead weight channels), whereas on an activation every kernel would
//! divide by it when computing its requantization multiplier.
//!
//! The work is linear in the size of the graph (ops, operands, values, and constant shape
//! operands that inference decodes).

use crate::error::IrError;
use crate::graph::{Graph, Module, OpId, Value, ValueId};
use crate::op::Op;
use crate::shape::{format_type, infer, shape_operands};
use crate::types::{DType, MAX_TENSOR_ELEMENTS};

/// Checks every invariant of one graph (see the module docs for the list and order).
pub fn verify_graph(g: &Graph) -> Result<(), IrError> {
    let n = g.value_count();
    let graph_err = |reason: String| IrError::InvalidGraph { graph: g.name.clone(), reason };
    let op_err = |id: OpId, reason: String| IrError::InvalidOp {
        index: id.index(),
        op: g.op(id).op.display_name().to_string(),
        reason,
    };

    // 1. Ids in range (everything below indexes the arena by them).
    for (role, list) in [("input", &g.inputs), ("output", &g.outputs)] {
        for (i, v) in list.iter().enumerate() {
            if v.index() >= n {
                return Err(graph_err(format!("graph {role} {i} refers to value #{}, which does not exist", v.0)));
            }
        }
    }
    for id in g.op_ids() {
        let o = g.op(id);
        let named = o
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| ("operand", i, v)))
            .chain(o.outputs.iter().enumerate().map(|(i, &v)| ("result", i, v)))
            .chain(o.intermediates.iter().enumerate().map(|(i, &v)| ("intermediate", i, v)));
        for (role, i, v) in named {
            if v.index() >= n {
                return Err(op_err(id, format!("{role} {i} refers to value #{}, which does not exist", v.0)));
            }
        }
    }

    // 2. One producer per value, agreeing with the values' producer links.
    let mut producer: Vec<Option<(OpId, u32)>> = vec![None; n];
    for id in g.op_ids() {
        for (k, &v) in g.op(id).outputs.iter().enumerate() {
            let value = g.value(v);
            if let Some((first, _)) = producer[v.index()] {
                return Err(IrError::ValueProducedTwice {
                    value: value.name.clone(),
                    first: if first == id { usize::MAX } else { first.index() },
                    op: format!("op #{} ({})", id.index(), g.op(id).op.display_name()),
                });
            }
            producer[v.index()] = Some((id, k as u32));
            if value.producer != Some((id, k as u32)) {
                return Err(value_err(
                    g,
                    v,
                    format!("is result {k} of op #{} but its producer link says {}", id.index(), link(value)),
                ));
            }
        }
    }
    for v in g.value_ids() {
        let value = g.value(v);
        if value.producer.is_some() && producer[v.index()] != value.producer {
            return Err(value_err(g, v, format!("claims to be {}, which does not produce it", link(value))));
        }
    }

    // 3. Acyclic.
    let order = g.topo_order()?;

    // 4. Each referenced value on its own.
    let live = g.live_values();
    for v in g.value_ids().filter(|v| live[v.index()]) {
        verify_value(g, v)?;
    }

    // 5. Graph inputs are fed from outside.
    let mut is_input = vec![false; n];
    for &v in &g.inputs {
        is_input[v.index()] = true;
        if let Some((p, _)) = producer[v.index()] {
            return Err(value_err(g, v, format!("is a graph input but is produced by op #{}", p.index())));
        }
        if g.value(v).is_constant() {
            return Err(value_err(g, v, "is a graph input but is a constant".to_string()));
        }
    }

    // 6. Everything read is defined.
    let defined = |v: ValueId| {
        let value = g.value(v);
        producer[v.index()].is_some() || is_input[v.index()] || value.data.is_some() || value.is_variable
    };
    let dangling = |v: ValueId| {
        format!(
            "value {} is dangling: no op produces it and it is not a graph input, constant or variable",
            describe(g, v)
        )
    };
    for &id in &order {
        for (slot, v) in g.op(id).inputs.iter().enumerate() {
            if let Some(v) = *v {
                if !defined(v) {
                    return Err(op_err(id, format!("operand {slot}: {}", dangling(v))));
                }
            }
        }
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        if !defined(v) {
            return Err(graph_err(format!("output {i}: {}", dangling(v))));
        }
    }

    // 7. Declared result types agree with inference.
    for &id in &order {
        let o = g.op(id);
        if matches!(o.op, Op::Opaque(_)) {
            continue;
        }
        // Where a dimension is only known at run time (`shape_signature` -1), the static
        // shape is the converter's placeholder and need not be consistent: such ops are
        // checked when the dimension is fixed, not here.
        let dynamic = |v: &ValueId| g.value(*v).shape_signature.as_ref().is_some_and(|s| s.iter().any(|&d| d < 0));
        if o.inputs.iter().flatten().chain(&o.outputs).any(dynamic) {
            continue;
        }
        // Likewise a shape operand computed by other ops (converters emit SHAPE →
        // STRIDED_SLICE → PACK chains for flatten layers) has no value until run time.
        let computed = |s: &usize| o.input(*s).is_some_and(|v| g.value(v).data.is_none());
        if shape_operands(&o.op).iter().any(computed) {
            continue;
        }
        let inputs: Vec<Option<&Value>> = o.inputs.iter().map(|v| v.map(|v| g.value(v))).collect();
        let inferred = infer(&o.op, &inputs, o.outputs.len()).map_err(|r| op_err(id, r))?;
        for (k, (t, &v)) in inferred.iter().zip(&o.outputs).enumerate() {
            let declared = &g.value(v).ty;
            if !t.matches(declared) {
                let dtype = t.dtype.unwrap_or(declared.dtype);
                let shape = t.shape.as_deref().unwrap_or(&declared.shape);
                return Err(op_err(
                    id,
                    format!(
                        "result {k} {} is declared {} but inference gives {}",
                        describe(g, v),
                        format_type(declared.dtype, &declared.shape),
                        format_type(dtype, shape)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks every graph of a module and its signatures.
///
/// Errors inside a graph are reported as [`IrError::InvalidGraph`] naming the graph by
/// index and name, with the graph's own error as the reason. Then every IF and WHILE is
/// checked against the graphs it calls (see [`verify_calls`]). Graph indices that opaque
/// control-flow ops carry in their options cannot be checked (the options are front-end
/// encoded), so they are not.
pub fn verify_module(m: &Module) -> Result<(), IrError> {
    for (i, g) in m.graphs.iter().enumerate() {
        verify_graph(g).map_err(|e| {
            // A graph-level error already names this graph; keep only its reason.
            let reason = match e {
                IrError::InvalidGraph { reason, .. } => reason,
                other => other.to_string(),
            };
            IrError::InvalidGraph { graph: graph_label(i, g), reason }
        })?;
    }
    verify_calls(m)?;
    for s in &m.signatures {
        let sig_err = |graph: String, reason: String| IrError::InvalidGraph { graph, reason };
        let Some(g) = m.graphs.get(s.graph) else {
            return Err(sig_err(
                "module".to_string(),
                format!("signature '{}' runs graph #{}, but there are {} graphs", s.key, s.graph, m.graphs.len()),
            ));
        };
        for (role, names, list) in [("input", &s.inputs, &g.inputs), ("output", &s.outputs, &g.outputs)] {
            for (name, v) in names {
                if !list.contains(v) {
                    return Err(sig_err(
                        graph_label(s.graph, g),
                        format!("signature '{}' {role} '{name}' is value #{}, which is not a graph {role}", s.key, v.0),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks every IF and WHILE of a module: callee indices in range and never the main
/// graph, no cycle of calls (a graph calling itself, directly or not, would recurse
/// without bound), and operands and results that match the callees' inputs and outputs
/// in count, dtype and shape (shapes only where neither side has a run-time dimension).
/// IF takes a one-element bool condition; a WHILE condition graph returns one.
pub fn verify_calls(m: &Module) -> Result<(), IrError> {
    for (gi, g) in m.graphs.iter().enumerate() {
        verify_graph_calls(m, gi)
            .map_err(|e| IrError::InvalidGraph { graph: graph_label(gi, g), reason: e.to_string() })?;
    }
    verify_no_recursion(m)
}

/// Checks the IF and WHILE ops of graph `gi` against their callees (the per-op part of
/// [`verify_calls`]); the error is the op's, for callers that name the graph themselves.
pub fn verify_graph_calls(m: &Module, gi: usize) -> Result<(), IrError> {
    let Some(g) = m.graphs.get(gi) else { return Ok(()) };
    for id in g.op_ids() {
        verify_call(m, gi, g, id).map_err(|reason| IrError::InvalidOp {
            index: id.index(),
            op: g.op(id).op.display_name().to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Checks that no graph calls itself through IF/WHILE, directly or not.
pub fn verify_no_recursion(m: &Module) -> Result<(), IrError> {
    // Depth-first search over the call graph with three colours finds any cycle.
    let n = m.graphs.len();
    let mut state = vec![0u8; n];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, callees_of(&m.graphs[root]), 0usize)];
        state[root] = 1;
        while let Some((g, callees, next)) = stack.last_mut() {
            if let Some(&c) = callees.get(*next) {
                *next += 1;
                match state.get(c) {
                    Some(1) => {
                        return Err(IrError::InvalidGraph {
                            graph: graph_label(*g, &m.graphs[*g]),
                            reason: format!("calls graph #{c}, which is already on the call stack (recursion)"),
                        })
                    }
                    Some(0) => {
                        state[c] = 1;
                        stack.push((c, callees_of(&m.graphs[c]), 0));
                    }
                    _ => {}
                }
            } else {
                state[*g] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Every graph index the ops of `g` call.
fn callees_of(g: &Graph) -> Vec<usize> {
    g.op_ids().flat_map(|id| g.op(id).op.callees()).collect()
}

/// Checks one op of graph `gi` against its callees (nothing to check for other ops).
fn verify_call(m: &Module, gi: usize, g: &Graph, id: OpId) -> Result<(), String> {
    let o = g.op(id);
    let callees = o.op.callees();
    if callees.is_empty() {
        return Ok(());
    }
    let roles: [&str; 2] = match o.op {
        Op::If { .. } => ["then", "else"],
        _ => ["cond", "body"],
    };
    let mut graphs = Vec::with_capacity(2);
    for (&c, role) in callees.iter().zip(roles) {
        if c == 0 {
            return Err(format!("{role} graph is the main graph #0, which nothing may call"));
        }
        if c == gi {
            return Err(format!("{role} graph #{c} is the graph the op is in (recursion)"));
        }
        let callee = m
            .graphs
            .get(c)
            .ok_or_else(|| format!("{role} graph #{c} does not exist (the module has {} graphs)", m.graphs.len()))?;
        graphs.push((role, c, callee));
    }
    let operands: Vec<ValueId> = o.inputs.iter().flatten().copied().collect();
    if operands.len() != o.inputs.len() {
        return Err("has an omitted operand; every operand is required".to_string());
    }
    match o.op {
        Op::If { .. } => {
            let Some((&cond, args)) = operands.split_first() else {
                return Err("has no condition operand".to_string());
            };
            let ct = &g.value(cond).ty;
            if ct.dtype != DType::Bool || ct.num_elements() != Some(1) {
                return Err(format!("condition is {}, expected a one-element bool", format_type(ct.dtype, &ct.shape)));
            }
            for &(role, c, callee) in &graphs {
                match_list(g, args, callee, &callee.inputs, &format!("operands vs {role} graph #{c} inputs"))?;
                match_list(g, &o.outputs, callee, &callee.outputs, &format!("results vs {role} graph #{c} outputs"))?;
            }
        }
        _ => {
            let (_, cc, cond) = graphs[0];
            let (_, bc, body) = graphs[1];
            match_list(g, &operands, cond, &cond.inputs, &format!("operands vs cond graph #{cc} inputs"))?;
            match_list(g, &operands, body, &body.inputs, &format!("operands vs body graph #{bc} inputs"))?;
            match_list(g, &o.outputs, body, &body.outputs, &format!("results vs body graph #{bc} outputs"))?;
            match cond.outputs.as_slice() {
                [v] if cond.value(*v).ty.dtype == DType::Bool && cond.value(*v).ty.num_elements() == Some(1) => {}
                other => {
                    return Err(format!(
                        "cond graph #{cc} must return one one-element bool, returns {} values",
                        other.len()
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Checks that values `ours` of `g` and `theirs` of `callee` agree pairwise in count, dtype
/// and (where both are static) shape.
fn match_list(g: &Graph, ours: &[ValueId], callee: &Graph, theirs: &[ValueId], what: &str) -> Result<(), String> {
    if ours.len() != theirs.len() {
        return Err(format!("{what}: {} vs {}", ours.len(), theirs.len()));
    }
    for (i, (&a, &b)) in ours.iter().zip(theirs).enumerate() {
        let (va, vb) = (g.value(a), callee.value(b));
        let dynamic = |v: &Value| v.shape_signature.as_ref().is_some_and(|s| s.contains(&-1));
        let shapes_agree = va.ty.shape == vb.ty.shape || dynamic(va) || dynamic(vb);
        if va.ty.dtype != vb.ty.dtype || !shapes_agree {
            return Err(format!(
                "{what}: {i} is {} vs {}",
                format_type(va.ty.dtype, &va.ty.shape),
                format_type(vb.ty.dtype, &vb.ty.shape)
            ));
        }
    }
    Ok(())
}

fn graph_label(i: usize, g: &Graph) -> String {
    if g.name.is_empty() {
        format!("#{i}")
    } else {
        format!("#{i} {}", g.name)
    }
}

fn link(value: &Value) -> String {
    match value.producer {
        Some((p, k)) => format!("result {k} of op #{}", p.index()),
        None => "no producer".to_string(),
    }
}

/// A value as errors name it: `'name' (#id)`, or just `#id` when it has no name.
fn describe(g: &Graph, v: ValueId) -> String {
    match g.value(v).name.as_str() {
        "" => format!("#{}", v.0),
        name => format!("'{name}' (#{})", v.0),
    }
}

fn value_err(g: &Graph, v: ValueId, reason: String) -> IrError {
    IrError::InvalidValue { index: v.0, name: g.value(v).name.clone(), reason }
}

/// Checks one value: element count, constant data size, sparsity and quantization.
fn verify_value(g: &Graph, v: ValueId) -> Result<(), IrError> {
    let value = g.value(v);
    let ty = &value.ty;
    let err = |reason: String| value_err(g, v, reason);
    let shown = || format_type(ty.dtype, &ty.shape);
    let elements = match ty.num_elements() {
        Some(e) if e <= MAX_TENSOR_ELEMENTS => e,
        Some(e) => return Err(err(format!("{} has {e} elements, more than the limit of 2^32", shown()))),
        None => return Err(err(format!("{} has more than 2^64 elements", shown()))),
    };
    if value.producer.is_some() && value.data.is_some() {
        return Err(err("has constant data but is also produced by an op".to_string()));
    }
    if let Some(data) = &value.data {
        let needed = ty.dtype.storage_bytes(elements).unwrap_or(u64::MAX);
        match &value.sparsity {
            None => {
                if data.len() as u64 != needed {
                    return Err(err(format!("{} needs {needed} bytes but its data holds {}", shown(), data.len())));
                }
            }
            Some(sp) => {
                // The data is the sparse payload, whose size depends on the index
                // vectors; check the metadata's shape and that the payload is no larger
                // than the dense tensor.
                let rank = ty.rank();
                if sp.dim_metadata.len() != sp.traversal_order.len() {
                    return Err(err(format!(
                        "sparsity has {} dim_metadata entries for a traversal order of {}",
                        sp.dim_metadata.len(),
                        sp.traversal_order.len()
                    )));
                }
                if sp.traversal_order.len() != rank + sp.block_map.len() {
                    return Err(err(format!(
                        "sparsity traverses {} dimensions but the rank-{rank} tensor has {} block dimensions",
                        sp.traversal_order.len(),
                        sp.block_map.len()
                    )));
                }
                if data.len() as u64 > needed {
                    return Err(err(format!(
                        "sparse payload of {} bytes is larger than the dense {} ({needed} bytes)",
                        data.len(),
                        shown()
                    )));
                }
            }
        }
    } else if value.sparsity.is_some() {
        return Err(err("has sparsity parameters but no data".to_string()));
    }
    let Some(q) = &ty.quant else { return Ok(()) };
    if q.scale.len() != q.zero_point.len() {
        return Err(err(format!("quantization has {} scales but {} zero points", q.scale.len(), q.zero_point.len())));
    }
    if q.scale.is_empty() {
        return Ok(());
    }
    if !ty.dtype.is_int() {
        return Err(err(format!("has quantization scales but dtype {} is not an integer type", ty.dtype)));
    }
    let rank = ty.rank();
    let axis = q.axis as usize;
    if rank > 0 && axis >= rank {
        return Err(err(format!("quantization axis {axis} is out of range for {}", shown())));
    }
    if q.scale.len() != 1 {
        if rank == 0 {
            return Err(err(format!("a scalar cannot have {} per-channel scales", q.scale.len())));
        }
        if q.scale.len() != ty.shape[axis] {
            return Err(err(format!(
                "has {} per-channel scales but dimension {axis} of {} has size {}",
                q.scale.len(),
                shown(),
                ty.shape[axis]
            )));
        }
    }
    // Per-channel lists run to thousands of entries per model: check them with branch-free
    // folds (which vectorize) and search for the culprit only when one fails.
    let zero_ok = value.is_constant();
    let scale_ok = |s: f32| s.is_finite() && (s > 0.0 || (zero_ok && s == 0.0));
    if !q.scale.iter().fold(true, |ok, &s| ok & scale_ok(s)) {
        if let Some((i, s)) = q.scale.iter().enumerate().find(|(_, &s)| !scale_ok(s)) {
            let what = if zero_ok { "finite and non-negative" } else { "finite and positive" };
            return Err(err(format!("quantization scale {i} is {s}; scales must be {what}")));
        }
    }
    let (lo, hi) = zero_point_range(ty.dtype);
    let (min, max) = q.zero_point.iter().fold((i64::MAX, i64::MIN), |(a, b), &z| (a.min(z), b.max(z)));
    if !q.zero_point.is_empty() && (i128::from(min) < lo || i128::from(max) > hi) {
        if let Some((i, z)) = q.zero_point.iter().enumerate().find(|(_, &z)| i128::from(z) < lo || i128::from(z) > hi) {
            return Err(err(format!("zero point {i} is {z}, outside the {} range [{lo}, {hi}]", ty.dtype)));
        }
    }
    Ok(())
}

/// The representable range of an integer dtype.
fn zero_point_range(d: DType) -> (i128, i128) {
    match d {
        DType::I4 => (-8, 7),
        DType::I8 => (i128::from(i8::MIN), i128::from(i8::MAX)),
        DType::U8 => (0, i128::from(u8::MAX)),
        DType::I16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        DType::U16 => (0, i128::from(u16::MAX)),
        DType::I32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        DType::U32 => (0, i128::from(u32::MAX)),
        DType::U64 => (0, i128::from(u64::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    }
}

#[cfg(test)]
mod tests;
