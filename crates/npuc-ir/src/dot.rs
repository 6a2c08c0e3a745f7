//! Graphviz DOT export of a graph, for looking at a model's structure.
//!
//! The output is deterministic: node ids and order come from the same walk the text printer
//! uses (inputs, free values in first-use order, ops in topological order), so two runs on
//! the same graph produce the same file and diffs between stages stay small.

use std::fmt::Write as _;

use crate::graph::{Graph, ValueId};
use crate::op::Op;
use crate::print::{fmt_f32, op_attrs, shape_dtype_string, FreeKind, HeaderItem, Layout};

/// Renders `g` as a Graphviz `digraph`: one node per op, graph input and free value
/// (constants as small boxes), one per graph output, and one edge per use labelled with the
/// value's shape and element type.
pub fn to_dot(g: &Graph) -> String {
    let layout = Layout::new(g, &[]);
    let mut out = String::new();
    out.push_str("digraph ");
    write_quoted(&mut out, if g.name.is_empty() { "graph" } else { &g.name });
    out.push_str(" {\n");
    out.push_str("  rankdir=TB;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=8];\n");
    if layout.cyclic {
        out.push_str("  // graph has a cycle: ops are in insertion order\n");
    }

    // The DOT node that defines each value: (node id, port label shown on the edge).
    let mut source: Vec<Option<String>> = vec![None; g.value_count()];
    let mut set_source = |v: ValueId, node: String| {
        if let Some(slot) = source.get_mut(v.index()) {
            if slot.is_none() {
                *slot = Some(node);
            }
        }
    };

    for (i, item) in layout.header.iter().enumerate() {
        if let HeaderItem::Def(v) = *item {
            let value = g.value(v);
            let node = format!("arg{i}");
            let _ = write!(out, "  {node} [shape=ellipse, style=filled, fillcolor=\"#d8e8ff\", label=");
            write_quoted(
                &mut out,
                &label_lines(&[format!("input {i}"), short_name(&value.name), shape_dtype_string(&value.ty)]),
            );
            write_tooltip(&mut out, &value.name);
            out.push_str("];\n");
            set_source(v, node);
        }
    }
    for (i, &(v, kind)) in layout.free.iter().enumerate() {
        let value = g.value(v);
        let node = format!("v{i}");
        let (what, style) = match kind {
            FreeKind::Const => ("const", "shape=box, style=filled, fillcolor=\"#eeeeee\", fontsize=8, height=0.2"),
            FreeKind::Variable => ("variable", "shape=box, style=\"filled,dashed\", fillcolor=\"#fff4d0\", fontsize=8"),
            FreeKind::Undef => ("undef", "shape=box, style=dashed, fontsize=8"),
        };
        let _ = write!(out, "  {node} [{style}, label=");
        let name = if value.name.is_empty() { layout.name(v) } else { short_name(&value.name) };
        write_quoted(&mut out, &label_lines(&[format!("{what} {name}"), shape_dtype_string(&value.ty)]));
        write_tooltip(&mut out, &value.name);
        out.push_str("];\n");
        set_source(v, node);
    }
    for (i, &id) in layout.order.iter().enumerate() {
        let op = g.op(id);
        let node = format!("op{i}");
        let mut lines = vec![op.op.display_name().to_string()];
        let attrs = key_attrs(&op.op);
        if !attrs.is_empty() {
            lines.push(attrs);
        }
        let first_name = op.outputs.first().and_then(|&v| g.get_value(v)).map_or("", |v| v.name.as_str());
        lines.push(short_name(first_name));
        let _ = write!(out, "  {node} [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", label=");
        write_quoted(&mut out, &label_lines(&lines));
        write_tooltip(&mut out, first_name);
        out.push_str("];\n");
        for &v in &op.outputs {
            set_source(v, node.clone());
        }
    }
    for i in 0..g.outputs.len() {
        let _ = writeln!(out, "  out{i} [shape=ellipse, style=filled, fillcolor=\"#d8ffd8\", label=\"output {i}\"];");
    }
    let edge = |out: &mut String, from: &str, to: &str, v: ValueId, extra: &str| {
        let label = g.get_value(v).map(|x| shape_dtype_string(&x.ty)).unwrap_or_default();
        let _ = write!(out, "  {from} -> {to} [label=");
        write_quoted(out, &label);
        out.push_str(extra);
        out.push_str("];\n");
    };
    for (i, &id) in layout.order.iter().enumerate() {
        let op = g.op(id);
        let to = format!("op{i}");
        for &v in op.inputs.iter().flatten() {
            if let Some(Some(from)) = source.get(v.index()) {
                edge(&mut out, from, &to, v, "");
            }
        }
        for &v in &op.intermediates {
            if let Some(Some(from)) = source.get(v.index()) {
                edge(&mut out, from, &to, v, ", style=dotted");
            }
        }
    }
    for (i, &v) in g.outputs.iter().enumerate() {
        if let Some(Some(from)) = source.get(v.index()) {
            edge(&mut out, from, &format!("out{i}"), v, "");
        }
    }
    out.push_str("}\n");
    out
}

/// The attributes worth seeing at a glance, compactly (`same s2x2 relu6`).
fn key_attrs(op: &Op) -> String {
    match op {
        Op::LeakyRelu { alpha } => format!("alpha {}", fmt_f32(*alpha)),
        Op::Softmax { beta } => format!("beta {}", fmt_f32(*beta)),
        Op::Opaque(o) => match o.builtin_code {
            Some(c) => format!("builtin {c}"),
            None => "custom".to_string(),
        },
        _ => op_attrs(op)
            .into_iter()
            .map(|(k, v)| match k {
                "padding" | "activation" => v,
                "stride" => format!("s{}", v.trim_matches(['[', ']']).replace(", ", "x")),
                "dilation" if v == "[1, 1]" => String::new(),
                "dilation" => format!("d{}", v.trim_matches(['[', ']']).replace(", ", "x")),
                "filter" => format!("k{}", v.trim_matches(['[', ']']).replace(", ", "x")),
                _ if v == "true" => k.to_string(),
                _ => format!("{k}={v}"),
            })
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Longest source name shown in a label; converters join fused tensors' names with `;`
/// into strings of hundreds of characters that would make every node page-wide.
const MAX_LABEL_NAME: usize = 40;

/// A source name shortened for a label: its first `;`-separated part, and of that the
/// end (the most specific part of a scope path) if it is still too long. The full name
/// goes into the node's tooltip.
fn short_name(name: &str) -> String {
    let first = name.split(';').next().unwrap_or(name);
    let chars: Vec<char> = first.chars().collect();
    if chars.len() <= MAX_LABEL_NAME {
        return first.to_string();
    }
    let tail: String = chars[chars.len() - (MAX_LABEL_NAME - 1)..].iter().collect();
    format!("…{tail}")
}

/// Adds `, tooltip="…"` with the full name (shown on hover in SVG output).
fn write_tooltip(out: &mut String, name: &str) {
    if !name.is_empty() {
        out.push_str(", tooltip=");
        write_quoted(out, name);
    }
}

/// Joins non-empty label lines with DOT's `\n` line break.
fn label_lines(lines: &[String]) -> String {
    lines.iter().filter(|l| !l.is_empty()).cloned().collect::<Vec<_>>().join("\n")
}

/// Writes a DOT quoted string: `"` and `\` escaped, newlines as `\n`, other control
/// characters dropped (DOT has no escape for them).
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constant::Constant;
    use crate::graph::Operation;
    use crate::types::{DType, TensorType};

    #[test]
    fn dot_is_valid_and_escapes_names() {
        let mut g = Graph::new("my \"graph\"");
        let x = g.add_input("in\\put", TensorType::new(DType::F32, vec![1, 4]));
        let c = g.add_const("w\n", TensorType::new(DType::F32, vec![4]), Constant::from(vec![0u8; 16]));
        let y = g.add_value(crate::graph::Value::new("y", TensorType::new(DType::F32, vec![1, 4])));
        g.add_op(Operation::new(
            Op::Add { activation: crate::op::Activation::Relu, pot_scale_int16: false },
            vec![Some(x), Some(c)],
            vec![y],
        ))
        .unwrap();
        g.outputs.push(y);
        let dot = to_dot(&g);
        assert!(dot.starts_with("digraph \"my \\\"graph\\\"\" {"));
        assert!(dot.contains("in\\\\put"));
        assert!(dot.contains("w\\n"));
        assert!(dot.contains("arg0 -> op0 [label=\"1x4xf32\"]"));
        assert!(dot.contains("v0 -> op0 [label=\"4xf32\"]"));
        assert!(dot.contains("op0 -> out0"));
        assert!(dot.contains("add\\nrelu"));
        assert_eq!(short_name("a/b;c/d"), "a/b");
        let long = format!("{}/Conv2D", "x".repeat(60));
        assert_eq!(short_name(&long), format!("…{}/Conv2D", "x".repeat(32)));
        // Every quote is balanced on every line (a cheap validity check).
        for line in dot.lines() {
            let unescaped = line.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
        }
        assert_eq!(dot, to_dot(&g.clone()));
    }
}
