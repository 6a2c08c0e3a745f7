//! The `.nir` text printer.
//!
//! The text format is documented in `docs/ir.md`. The printer is deterministic: the same
//! [`Module`] always prints to the same bytes, whatever order its arena or petgraph holds
//! things in, because every name the printer shows is derived from a fixed walk of the
//! graph (inputs, then ops in [`Graph::topo_order`], then outputs). Source names are kept
//! as `{name = "…"}` attributes, never as SSA names, because they are neither unique nor
//! valid identifiers in general.
//!
//! Printing never fails and never panics, even on a graph the verifier would reject: a
//! dangling value id prints as `%invalidN`, which the parser reports as undefined.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::constant::Constant;
use crate::graph::{Graph, Module, OpId, Value, ValueId};
use crate::op::{Activation, Op, Padding};
use crate::types::{DType, DimFormat, IndexVector, Quantization, Sparsity, TensorType};

/// How the printer renders constant data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Print every constant's bytes, however large (lossless text).
    pub full_constants: bool,
    /// Constants of at most this many bytes are printed in full even when
    /// `full_constants` is off; larger ones are abbreviated to hash, size and preview.
    pub elide_threshold: usize,
}

/// Default elision threshold: 64 bytes keeps shapes, axes and small biases readable
/// while weight tensors shrink to one line.
pub const DEFAULT_ELIDE_THRESHOLD: usize = 64;

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions { full_constants: false, elide_threshold: DEFAULT_ELIDE_THRESHOLD }
    }
}

impl PrintOptions {
    /// Options that print every constant in full, so the text loses nothing.
    pub fn full() -> Self {
        PrintOptions { full_constants: true, ..Default::default() }
    }

    /// Whether `c`'s bytes are printed (rather than its hash).
    fn prints_in_full(&self, c: &Constant) -> bool {
        !c.is_elided() && (self.full_constants || c.len() <= self.elide_threshold)
    }
}

/// Number of elements shown in the preview of an elided constant.
const PREVIEW_ELEMENTS: usize = 8;

/// Prints a whole module: description, metadata, signatures and every graph.
pub fn print_module(m: &Module, opts: &PrintOptions) -> String {
    let layouts: Vec<Layout> = m
        .graphs
        .iter()
        .enumerate()
        .map(|(gi, g)| {
            // Values reachable only through a signature must still be defined in the graph.
            let extra: Vec<ValueId> = m
                .signatures
                .iter()
                .filter(|s| s.graph == gi)
                .flat_map(|s| s.inputs.iter().chain(&s.outputs).map(|(_, v)| *v))
                .collect();
            Layout::new(g, &extra)
        })
        .collect();

    let mut out = String::new();
    out.push_str("module");
    if !m.description.is_empty() {
        out.push_str(" attributes {description = ");
        write_str_lit(&mut out, m.description.as_bytes());
        out.push('}');
    }
    out.push_str(" {\n");
    for md in &m.metadata {
        out.push_str("  metadata ");
        write_str_lit(&mut out, md.name.as_bytes());
        out.push_str(" = ");
        write_bytes_lit(&mut out, &md.data);
        out.push('\n');
    }
    for s in &m.signatures {
        out.push_str("  signature ");
        write_str_lit(&mut out, s.key.as_bytes());
        out.push(' ');
        match m.graphs.get(s.graph) {
            Some(g) if m.graphs.iter().filter(|o| o.name == g.name).count() == 1 => write_symbol(&mut out, &g.name),
            _ => {
                let _ = write!(out, "{}", s.graph);
            }
        }
        let layout = layouts.get(s.graph);
        for (kw, map) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
            let _ = write!(out, " {kw} {{");
            for (i, (name, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_lit(&mut out, name.as_bytes());
                out.push_str(" = ");
                match layout {
                    Some(l) => out.push_str(&l.name(*v)),
                    None => out.push_str(&invalid_name(*v)),
                }
            }
            out.push('}');
        }
        out.push('\n');
    }
    for (i, (g, layout)) in m.graphs.iter().zip(&layouts).enumerate() {
        if i > 0 || !m.metadata.is_empty() || !m.signatures.is_empty() {
            out.push('\n');
        }
        write_graph(&mut out, g, layout, opts, "  ");
    }
    out.push_str("}\n");
    out
}

/// Prints one graph on its own (no module, no signatures); the result parses as a module
/// holding just this graph.
pub fn print_graph(g: &Graph, opts: &PrintOptions) -> String {
    let mut out = String::new();
    write_graph(&mut out, g, &Layout::new(g, &[]), opts, "");
    out
}

/// How a value that is neither a graph input nor an op result is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreeKind {
    /// `const dense<…>`: has data, not variable.
    Const,
    /// `variable [dense<…>]`: a stateful tensor.
    Variable,
    /// `undef`: no data, no producer (scratch tensors, dangling values).
    Undef,
}

impl FreeKind {
    fn of(v: &Value) -> FreeKind {
        if v.is_variable {
            FreeKind::Variable
        } else if v.data.is_some() {
            FreeKind::Const
        } else {
            FreeKind::Undef
        }
    }
}

/// How one position of the graph's input list is printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderItem {
    /// The input is defined here (`%argN: type {attrs}`).
    Def(ValueId),
    /// The input is defined elsewhere (an op result or an earlier input) and only named.
    Ref(ValueId),
}

/// The printer's deterministic naming and ordering of one graph, shared with DOT export.
pub(crate) struct Layout {
    /// Ops in print order: topological, or insertion order if the graph has a cycle.
    pub order: Vec<OpId>,
    /// Whether `order` fell back to insertion order because of a cycle.
    pub cyclic: bool,
    /// SSA name of each value that is printed, indexed by arena index.
    names: Vec<Option<String>>,
    /// One item per graph input.
    pub header: Vec<HeaderItem>,
    /// Free values (constants, variables, undefs) in first-use order.
    pub free: Vec<(ValueId, FreeKind)>,
    /// Result-group name (`%N`) of each op with results.
    pub groups: HashMap<OpId, String>,
}

impl Layout {
    /// Computes names for `g`; `extra` are further referenced values (signatures).
    pub fn new(g: &Graph, extra: &[ValueId]) -> Layout {
        let (order, cyclic) = match g.topo_order() {
            Ok(o) => (o, false),
            Err(_) => (g.op_ids().collect(), true),
        };
        let mut names: Vec<Option<String>> = vec![None; g.value_count()];
        let mut groups = HashMap::new();
        let mut next_result = 0usize;
        for &id in &order {
            let op = g.op(id);
            if op.outputs.is_empty() {
                continue;
            }
            let group = format!("%{next_result}");
            next_result += 1;
            for (i, v) in op.outputs.iter().enumerate() {
                if let Some(slot) = names.get_mut(v.index()) {
                    if slot.is_none() {
                        *slot = Some(if op.outputs.len() == 1 { group.clone() } else { format!("{group}#{i}") });
                    }
                }
            }
            groups.insert(id, group);
        }
        let mut header = Vec::with_capacity(g.inputs.len());
        for (i, &v) in g.inputs.iter().enumerate() {
            match names.get_mut(v.index()) {
                Some(slot @ None) => {
                    *slot = Some(format!("%arg{i}"));
                    header.push(HeaderItem::Def(v));
                }
                _ => header.push(HeaderItem::Ref(v)),
            }
        }
        let mut free = Vec::new();
        let mut counters = [0usize; 3];
        let uses = order
            .iter()
            .flat_map(|&id| {
                let op = g.op(id);
                op.inputs.iter().flatten().chain(&op.intermediates).copied()
            })
            .chain(g.outputs.iter().copied())
            .chain(extra.iter().copied());
        for v in uses {
            let Some(slot) = names.get_mut(v.index()) else { continue };
            if slot.is_some() {
                continue;
            }
            let kind = FreeKind::of(g.value(v));
            let (prefix, n) = match kind {
                FreeKind::Const => ("c", &mut counters[0]),
                FreeKind::Variable => ("v", &mut counters[1]),
                FreeKind::Undef => ("t", &mut counters[2]),
            };
            *slot = Some(format!("%{prefix}{n}"));
            *n += 1;
            free.push((v, kind));
        }
        Layout { order, cyclic, names, header, free, groups }
    }

    /// The SSA name of `v` (`%invalidN` for an id the graph does not define).
    pub fn name(&self, v: ValueId) -> String {
        match self.names.get(v.index()) {
            Some(Some(n)) => n.clone(),
            _ => invalid_name(v),
        }
    }
}

fn invalid_name(v: ValueId) -> String {
    format!("%invalid{}", v.0)
}

fn write_graph(out: &mut String, g: &Graph, layout: &Layout, opts: &PrintOptions, indent: &str) {
    let body = format!("{indent}  ");
    out.push_str(indent);
    out.push_str("graph ");
    write_symbol(out, &g.name);
    out.push('(');
    for (i, item) in layout.header.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match *item {
            HeaderItem::Def(v) => {
                out.push_str(&layout.name(v));
                out.push_str(": ");
                write_value_type_and_attrs(out, g.value(v), true, opts);
            }
            HeaderItem::Ref(v) => out.push_str(&layout.name(v)),
        }
    }
    out.push_str(") {\n");
    if layout.cyclic {
        out.push_str(&body);
        out.push_str("// graph has a cycle: ops are in insertion order\n");
    }
    for &(v, kind) in &layout.free {
        let value = g.value(v);
        out.push_str(&body);
        out.push_str(&layout.name(v));
        match kind {
            FreeKind::Const => out.push_str(" = const "),
            FreeKind::Variable => out.push_str(" = variable "),
            FreeKind::Undef => out.push_str(" = undef "),
        }
        if let Some(data) = &value.data {
            write_dense(out, data, value.ty.dtype, opts);
            out.push(' ');
        }
        out.push_str(": ");
        write_value_type_and_attrs(out, value, false, opts);
        out.push('\n');
    }
    for &id in &layout.order {
        let op = g.op(id);
        out.push_str(&body);
        if let Some(group) = layout.groups.get(&id) {
            out.push_str(group);
            if op.outputs.len() > 1 {
                let _ = write!(out, ":{}", op.outputs.len());
            }
            out.push_str(" = ");
        }
        out.push_str(op.op.mnemonic());
        if let Op::Opaque(o) = &op.op {
            out.push(' ');
            write_str_lit(out, o.name.as_bytes());
        }
        out.push('(');
        for (i, v) in op.inputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match v {
                Some(v) => out.push_str(&layout.name(*v)),
                None => out.push_str("none"),
            }
        }
        out.push(')');
        let mut attrs = op_attrs(&op.op);
        if op.version != 1 {
            attrs.push(("version", op.version.to_string()));
        }
        if !op.intermediates.is_empty() {
            let list: Vec<String> = op.intermediates.iter().map(|v| layout.name(*v)).collect();
            attrs.push(("intermediates", format!("[{}]", list.join(", "))));
        }
        write_attr_dict(out, &attrs);
        for (i, &v) in op.outputs.iter().enumerate() {
            out.push_str(if i == 0 { " : " } else { ", " });
            match g.get_value(v) {
                Some(value) => write_value_type_and_attrs(out, value, true, opts),
                None => out.push_str("tensor<invalid>"),
            }
        }
        out.push('\n');
    }
    out.push_str(&body);
    out.push_str("return");
    for (i, &v) in g.outputs.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(&layout.name(v));
    }
    out.push('\n');
    out.push_str(indent);
    out.push_str("}\n");
}

/// Writes ` {k = v, …}` (nothing for an empty list).
fn write_attr_dict(out: &mut String, attrs: &[(&str, String)]) {
    if attrs.is_empty() {
        return;
    }
    out.push_str(" {");
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        if !v.is_empty() {
            out.push_str(" = ");
            out.push_str(v);
        }
    }
    out.push('}');
}

/// Writes `tensor<…> {name = …, …}` for a value; `full` adds `variable` and `data`, which
/// free values carry in their declaration keyword instead.
fn write_value_type_and_attrs(out: &mut String, v: &Value, full: bool, opts: &PrintOptions) {
    out.push_str(&type_to_string(&v.ty));
    let mut attrs: Vec<(&str, String)> = Vec::new();
    if !v.name.is_empty() {
        let mut s = String::new();
        write_str_lit(&mut s, v.name.as_bytes());
        attrs.push(("name", s));
    }
    if let Some(sig) = &v.shape_signature {
        attrs.push(("shape_signature", list(sig.iter())));
    }
    if full && v.is_variable {
        attrs.push(("variable", String::new()));
    }
    if let Some(sp) = &v.sparsity {
        attrs.push(("sparsity", sparsity_to_string(sp)));
    }
    if full {
        if let Some(data) = &v.data {
            let mut s = String::new();
            write_dense(&mut s, data, v.ty.dtype, opts);
            attrs.push(("data", s));
        }
    }
    write_attr_dict(out, &attrs);
}

/// `[a, b, c]` of displayable items.
fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = items.map(|x| x.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// `tensor<1x96x96x3xi8, q<…>>`.
pub(crate) fn type_to_string(t: &TensorType) -> String {
    let mut s = String::from("tensor<");
    for d in &t.shape {
        let _ = write!(s, "{d}x");
    }
    s.push_str(t.dtype.name());
    if let Some(q) = &t.quant {
        s.push_str(", ");
        s.push_str(&quant_to_string(q));
    }
    s.push('>');
    s
}

/// `1x96x96x3xi8`: a type's shape and dtype without quantization (DOT edge labels).
pub(crate) fn shape_dtype_string(t: &TensorType) -> String {
    let mut s = String::new();
    for d in &t.shape {
        let _ = write!(s, "{d}x");
    }
    s.push_str(t.dtype.name());
    s
}

/// `q<scale:zp>`, `q<axis N: [s:z, …]>`, or the general keyed form; see docs/ir.md.
pub(crate) fn quant_to_string(q: &Quantization) -> String {
    let mut items: Vec<String> = Vec::new();
    if q.scale.len() == q.zero_point.len() {
        let pairs: Vec<String> =
            q.scale.iter().zip(&q.zero_point).map(|(s, z)| format!("{}:{}", fmt_f32(*s), z)).collect();
        if pairs.len() == 1 && q.axis == 0 {
            items.push(pairs[0].clone());
        } else if !pairs.is_empty() || q.axis != 0 {
            items.push(format!("axis {}: [{}]", q.axis, pairs.join(", ")));
        }
    } else {
        items.push(format!("scale {}", list(q.scale.iter().map(|x| fmt_f32(*x)))));
        items.push(format!("zero_point {}", list(q.zero_point.iter())));
        if q.axis != 0 {
            items.push(format!("axis {}", q.axis));
        }
    }
    if !q.min.is_empty() {
        items.push(format!("min {}", list(q.min.iter().map(|x| fmt_f32(*x)))));
    }
    if !q.max.is_empty() {
        items.push(format!("max {}", list(q.max.iter().map(|x| fmt_f32(*x)))));
    }
    format!("q<{}>", items.join(", "))
}

fn index_vector_to_string(v: &IndexVector) -> String {
    match v {
        IndexVector::I32(x) => format!("i32{}", list(x.iter())),
        IndexVector::U16(x) => format!("u16{}", list(x.iter())),
        IndexVector::U8(x) => format!("u8{}", list(x.iter())),
    }
}

/// `sparse<traversal_order = […], block_map = […], dims = [dense(size = 4), csr(…)]>`.
pub(crate) fn sparsity_to_string(sp: &Sparsity) -> String {
    let dims: Vec<String> = sp
        .dim_metadata
        .iter()
        .map(|d| {
            let mut s = String::from(match d.format {
                DimFormat::Dense => "dense",
                DimFormat::SparseCsr => "csr",
            });
            let mut fields = Vec::new();
            if d.dense_size != 0 {
                fields.push(format!("size = {}", d.dense_size));
            }
            if let Some(v) = &d.array_segments {
                fields.push(format!("segments = {}", index_vector_to_string(v)));
            }
            if let Some(v) = &d.array_indices {
                fields.push(format!("indices = {}", index_vector_to_string(v)));
            }
            if !fields.is_empty() {
                let _ = write!(s, "({})", fields.join(", "));
            }
            s
        })
        .collect();
    format!(
        "sparse<traversal_order = {}, block_map = {}, dims = [{}]>",
        list(sp.traversal_order.iter()),
        list(sp.block_map.iter()),
        dims.join(", ")
    )
}

/// Shortest text that parses back to exactly `x`; NaNs print as their bit pattern so
/// payload and sign survive.
pub(crate) fn fmt_f32(x: f32) -> String {
    let mut s = String::new();
    let _ = write_f32(&mut s, x);
    s
}

/// Whether constant data of this dtype and length prints as an element list: the
/// element list must reproduce the bytes exactly, so only whole elements of types with
/// an exact decimal text qualify (f16/bf16/i4 use hex).
pub(crate) fn list_element_bytes(dtype: DType, data: &[u8]) -> Option<usize> {
    let size = match dtype {
        DType::I8 | DType::U8 | DType::Bool => 1,
        DType::I16 | DType::U16 => 2,
        DType::I32 | DType::U32 | DType::F32 => 4,
        DType::I64 | DType::U64 | DType::F64 => 8,
        DType::F16 | DType::BF16 | DType::I4 => return None,
    };
    if data.len() % size != 0 || (dtype == DType::Bool && data.iter().any(|&b| b > 1)) {
        return None;
    }
    Some(size)
}

/// Writes one element of `dtype` decoded from exactly its bytes (exact for list types; the
/// f16/bf16 preview goes through f32, also exact). Writes straight into `out` because
/// full-constant dumps print millions of elements.
fn write_element(out: &mut String, dtype: DType, b: &[u8]) {
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        a
    }
    let _ = match dtype {
        DType::I8 | DType::I4 => write!(out, "{}", b[0] as i8),
        DType::U8 => write!(out, "{}", b[0]),
        DType::Bool => write!(out, "{}", b[0] != 0),
        DType::I16 => write!(out, "{}", i16::from_le_bytes(arr(b))),
        DType::U16 => write!(out, "{}", u16::from_le_bytes(arr(b))),
        DType::I32 => write!(out, "{}", i32::from_le_bytes(arr(b))),
        DType::U32 => write!(out, "{}", u32::from_le_bytes(arr(b))),
        DType::I64 => write!(out, "{}", i64::from_le_bytes(arr(b))),
        DType::U64 => write!(out, "{}", u64::from_le_bytes(arr(b))),
        DType::F32 => write_f32(out, f32::from_le_bytes(arr(b))),
        DType::F64 => write_f64(out, f64::from_le_bytes(arr(b))),
        DType::F16 => write_f32(out, f16_to_f32(u16::from_le_bytes(arr(b)))),
        DType::BF16 => write_f32(out, f32::from_bits(u32::from(u16::from_le_bytes(arr(b))) << 16)),
    };
}

/// Like [`write_f32`] for `f64`.
fn write_f64(out: &mut String, x: f64) -> std::fmt::Result {
    if x.is_nan() {
        write!(out, "0x{:016x}", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// Writes the shortest text that parses back to exactly `x`; NaNs as their bit pattern.
fn write_f32(out: &mut String, x: f32) -> std::fmt::Result {
    if x.is_nan() {
        write!(out, "0x{:08x}", x.to_bits())
    } else {
        write!(out, "{x:?}")
    }
}

/// IEEE binary16 → binary32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// The first few elements of constant data, decoded by dtype, for elided constants.
fn preview(dtype: DType, data: &[u8]) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut more = false;
    if dtype == DType::I4 {
        'outer: for &byte in data {
            for nib in [byte & 0xf, byte >> 4] {
                if items.len() == PREVIEW_ELEMENTS {
                    more = true;
                    break 'outer;
                }
                // Sign-extend the nibble.
                let mut s = String::new();
                write_element(&mut s, DType::I4, &[((nib << 4) as i8 >> 4) as u8]);
                items.push(s);
            }
        }
    } else {
        let size = (dtype.bits() / 8) as usize;
        let mut chunks = data.chunks_exact(size);
        for c in chunks.by_ref().take(PREVIEW_ELEMENTS) {
            let mut s = String::new();
            write_element(&mut s, dtype, c);
            items.push(s);
        }
        more = chunks.next().is_some();
    }
    if more {
        items.push("...".into());
    }
    format!("[{}]", items.join(", "))
}

/// `dense<[…]>`, `dense<"hex">` or `dense<hash H, N bytes, [preview]>`.
pub(crate) fn write_dense(out: &mut String, c: &Constant, dtype: DType, opts: &PrintOptions) {
    out.push_str("dense<");
    match c.bytes() {
        Some(b) if opts.prints_in_full(c) => match list_element_bytes(dtype, b) {
            Some(size) => {
                out.push('[');
                for (i, e) in b.chunks_exact(size).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_element(out, dtype, e);
                }
                out.push(']');
            }
            None => {
                out.push('"');
                write_hex(out, b);
                out.push('"');
            }
        },
        bytes => {
            out.push_str("hash ");
            let h = c.short_hash();
            if !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric()) {
                out.push_str(&h);
            } else {
                write_str_lit(out, h.as_bytes());
            }
            let _ = write!(out, ", {} bytes", c.len());
            if let Some(b) = bytes {
                out.push_str(", ");
                out.push_str(&preview(dtype, b));
            } else if let Some(p) = c.elided_preview().filter(|p| !p.is_empty()) {
                // Parsed from abbreviated text: reprint the preview it came with, so
                // print → parse → print is a fixed point.
                out.push_str(", ");
                out.push_str(p);
            }
        }
    }
    out.push('>');
}

fn write_hex(out: &mut String, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(b.len() * 2);
    for &x in b {
        out.push(HEX[usize::from(x >> 4)] as char);
        out.push(HEX[usize::from(x & 0xf)] as char);
    }
}

/// Writes `b` as a string literal, escaping what is not printable. Returns the number of
/// bytes that needed a `\XX` escape.
fn write_escaped(out: &mut String, b: &[u8]) -> usize {
    let mut escaped = 0;
    out.push('"');
    for chunk in b.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() || (!c.is_ascii() && c.is_whitespace()) => {
                    let mut buf = [0u8; 4];
                    for &x in c.encode_utf8(&mut buf).as_bytes() {
                        let _ = write!(out, "\\{x:02x}");
                        escaped += 1;
                    }
                }
                c => out.push(c),
            }
        }
        for &x in chunk.invalid() {
            let _ = write!(out, "\\{x:02x}");
            escaped += 1;
        }
    }
    out.push('"');
    escaped
}

/// Writes a string literal (names, keys, descriptions).
pub(crate) fn write_str_lit(out: &mut String, b: &[u8]) {
    write_escaped(out, b);
}

/// Writes a byte blob: a string literal when it is text (trailing NUL padding allowed,
/// as in `min_runtime_version`), `hex"…"` otherwise.
fn write_bytes_lit(out: &mut String, b: &[u8]) {
    let text_len = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
    let mut probe = String::new();
    if write_escaped(&mut probe, &b[..text_len]) == 0 && text_len > 0 {
        write_escaped(out, b);
    } else {
        out.push_str("hex\"");
        write_hex(out, b);
        out.push('"');
    }
}

/// Whether `s` can be printed as a bare symbol or key (`[A-Za-z_][A-Za-z0-9_.$]*`).
pub(crate) fn is_bare_ident(s: &str) -> bool {
    let mut chars = s.bytes();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$')
}

/// `@name`, or `@"quoted name"` when the name is not an identifier.
fn write_symbol(out: &mut String, name: &str) {
    out.push('@');
    if is_bare_ident(name) {
        out.push_str(name);
    } else {
        write_str_lit(out, name.as_bytes());
    }
}

fn padding_name(p: Padding) -> &'static str {
    match p {
        Padding::Same => "same",
        Padding::Valid => "valid",
    }
}

fn pair(p: [u32; 2]) -> String {
    format!("[{}, {}]", p[0], p[1])
}

/// The attributes of an op kind as `(key, printed value)`, in the fixed order the format
/// documents; attributes at their default are left out (an empty value is a unit flag).
pub(crate) fn op_attrs(op: &Op) -> Vec<(&'static str, String)> {
    let mut a: Vec<(&'static str, String)> = Vec::new();
    let act = |a: &mut Vec<(&'static str, String)>, x: Activation| {
        if x != Activation::None {
            a.push(("activation", x.name().to_string()));
        }
    };
    let flag = |a: &mut Vec<(&'static str, String)>, k: &'static str, x: bool| {
        if x {
            a.push((k, "true".to_string()));
        }
    };
    let bias = |a: &mut Vec<(&'static str, String)>, x: Option<DType>| {
        if let Some(t) = x {
            a.push(("bias_type", t.name().to_string()));
        }
    };
    match op {
        Op::Conv2d(c) => {
            a.push(("padding", padding_name(c.padding).into()));
            a.push(("stride", pair(c.stride)));
            a.push(("dilation", pair(c.dilation)));
            act(&mut a, c.activation);
            bias(&mut a, c.bias_type);
        }
        Op::DepthwiseConv2d(c) => {
            a.push(("padding", padding_name(c.padding).into()));
            a.push(("stride", pair(c.stride)));
            a.push(("dilation", pair(c.dilation)));
            a.push(("depth_multiplier", c.depth_multiplier.to_string()));
            act(&mut a, c.activation);
        }
        Op::TransposeConv(c) => {
            a.push(("padding", padding_name(c.padding).into()));
            a.push(("stride", pair(c.stride)));
            act(&mut a, c.activation);
            bias(&mut a, c.bias_type);
        }
        Op::FullyConnected(c) => {
            act(&mut a, c.activation);
            flag(&mut a, "keep_num_dims", c.keep_num_dims);
            flag(&mut a, "shuffled_weights", c.shuffled_weights);
            flag(&mut a, "asymmetric_quantize_inputs", c.asymmetric_quantize_inputs);
            bias(&mut a, c.bias_type);
        }
        Op::Add { activation, pot_scale_int16 } | Op::Sub { activation, pot_scale_int16 } => {
            act(&mut a, *activation);
            flag(&mut a, "pot_scale_int16", *pot_scale_int16);
        }
        Op::Mul { activation } | Op::Div { activation } | Op::L2Normalization { activation } => {
            act(&mut a, *activation)
        }
        Op::AveragePool2d(p) | Op::MaxPool2d(p) => {
            a.push(("padding", padding_name(p.padding).into()));
            a.push(("stride", pair(p.stride)));
            a.push(("filter", pair(p.filter)));
            act(&mut a, p.activation);
        }
        Op::Mean { keep_dims } | Op::Sum { keep_dims } | Op::ReduceProd { keep_dims } => {
            flag(&mut a, "keep_dims", *keep_dims)
        }
        Op::Reshape { new_shape } => {
            if let Some(s) = new_shape {
                a.push(("new_shape", list(s.iter())));
            }
        }
        Op::Squeeze { axes } => {
            if !axes.is_empty() {
                a.push(("axes", list(axes.iter())));
            }
        }
        Op::Concatenation { axis, activation } => {
            a.push(("axis", axis.to_string()));
            act(&mut a, *activation);
        }
        Op::Split { num_splits } | Op::SplitV { num_splits } => a.push(("num_splits", num_splits.to_string())),
        Op::Pack { values_count, axis } => {
            a.push(("values_count", values_count.to_string()));
            a.push(("axis", axis.to_string()));
        }
        Op::Unpack { num, axis } => {
            a.push(("num", num.to_string()));
            a.push(("axis", axis.to_string()));
        }
        Op::StridedSlice(s) => {
            for (k, v) in [
                ("begin_mask", s.begin_mask),
                ("end_mask", s.end_mask),
                ("ellipsis_mask", s.ellipsis_mask),
                ("new_axis_mask", s.new_axis_mask),
                ("shrink_axis_mask", s.shrink_axis_mask),
            ] {
                if v != 0 {
                    a.push((k, v.to_string()));
                }
            }
            flag(&mut a, "offset", s.offset);
        }
        Op::DepthToSpace { block_size } | Op::SpaceToDepth { block_size } => {
            a.push(("block_size", block_size.to_string()))
        }
        Op::ResizeBilinear(r) | Op::ResizeNearestNeighbor(r) => {
            flag(&mut a, "align_corners", r.align_corners);
            flag(&mut a, "half_pixel_centers", r.half_pixel_centers);
        }
        Op::LeakyRelu { alpha } => a.push(("alpha", fmt_f32(*alpha))),
        Op::Softmax { beta } => a.push(("beta", fmt_f32(*beta))),
        Op::Gather { axis, batch_dims } => {
            a.push(("axis", axis.to_string()));
            if *batch_dims != 0 {
                a.push(("batch_dims", batch_dims.to_string()));
            }
        }
        Op::ArgMax { output_type } | Op::Shape { output_type } => {
            a.push(("output_type", output_type.name().to_string()))
        }
        Op::If { then_graph, else_graph } => {
            a.push(("then_graph", then_graph.to_string()));
            a.push(("else_graph", else_graph.to_string()));
        }
        Op::While { cond_graph, body_graph } => {
            a.push(("cond_graph", cond_graph.to_string()));
            a.push(("body_graph", body_graph.to_string()));
        }
        Op::Opaque(o) => {
            if let Some(code) = o.builtin_code {
                a.push(("builtin_code", code.to_string()));
            }
            for (k, b) in [("options", &o.options), ("custom_options", &o.custom_options)] {
                if !b.is_empty() {
                    let mut s = String::from("hex\"");
                    write_hex(&mut s, b);
                    s.push('"');
                    a.push((k, s));
                }
            }
        }
        Op::Maximum
        | Op::Minimum
        | Op::SquaredDifference
        | Op::ExpandDims
        | Op::Pad
        | Op::PadV2
        | Op::Slice
        | Op::Transpose
        | Op::BatchToSpaceNd
        | Op::SpaceToBatchNd
        | Op::Relu
        | Op::Relu6
        | Op::ReluN1To1
        | Op::Prelu
        | Op::Logistic
        | Op::Tanh
        | Op::HardSwish
        | Op::Quantize
        | Op::Dequantize
        | Op::Densify
        | Op::Exp
        | Op::Sqrt
        | Op::Rsqrt
        | Op::Greater
        | Op::GreaterEqual
        | Op::Less
        | Op::LessEqual
        | Op::Equal
        | Op::NotEqual => {}
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Metadata, Operation, Signature};
    use crate::op::*;
    use crate::types::DimMetadata;
    use bytes::Bytes;

    /// One instance of every op variant, with non-default attributes, and the text its
    /// mnemonic and attribute dictionary print as.
    pub(crate) fn all_ops() -> Vec<(Op, &'static str)> {
        vec![
            (
                Op::Conv2d(Conv2dAttrs {
                    padding: Padding::Same,
                    stride: [2, 1],
                    dilation: [1, 3],
                    activation: Activation::Relu6,
                    bias_type: Some(DType::I64),
                }),
                "conv_2d {padding = same, stride = [2, 1], dilation = [1, 3], activation = relu6, bias_type = i64}",
            ),
            (
                Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
                    padding: Padding::Valid,
                    stride: [1, 1],
                    dilation: [1, 1],
                    depth_multiplier: 2,
                    activation: Activation::None,
                }),
                "depthwise_conv_2d {padding = valid, stride = [1, 1], dilation = [1, 1], depth_multiplier = 2}",
            ),
            (
                Op::TransposeConv(TransposeConvAttrs {
                    padding: Padding::Same,
                    stride: [2, 2],
                    activation: Activation::Relu,
                    bias_type: None,
                }),
                "transpose_conv {padding = same, stride = [2, 2], activation = relu}",
            ),
            (
                Op::FullyConnected(FullyConnectedAttrs {
                    activation: Activation::Tanh,
                    keep_num_dims: true,
                    shuffled_weights: true,
                    asymmetric_quantize_inputs: true,
                    bias_type: Some(DType::I32),
                }),
                "fully_connected {activation = tanh, keep_num_dims = true, shuffled_weights = true, asymmetric_quantize_inputs = true, bias_type = i32}",
            ),
            (
                Op::Add { activation: Activation::ReluN1To1, pot_scale_int16: true },
                "add {activation = relu_n1_to_1, pot_scale_int16 = true}",
            ),
            (Op::Sub { activation: Activation::None, pot_scale_int16: true }, "sub {pot_scale_int16 = true}"),
            (Op::Mul { activation: Activation::SignBit }, "mul {activation = sign_bit}"),
            (Op::Div { activation: Activation::None }, "div"),
            (Op::Maximum, "maximum"),
            (Op::Minimum, "minimum"),
            (Op::SquaredDifference, "squared_difference"),
            (
                Op::AveragePool2d(Pool2dAttrs {
                    padding: Padding::Valid,
                    stride: [2, 2],
                    filter: [3, 3],
                    activation: Activation::None,
                }),
                "average_pool_2d {padding = valid, stride = [2, 2], filter = [3, 3]}",
            ),
            (
                Op::MaxPool2d(Pool2dAttrs {
                    padding: Padding::Same,
                    stride: [1, 2],
                    filter: [2, 1],
                    activation: Activation::Relu,
                }),
                "max_pool_2d {padding = same, stride = [1, 2], filter = [2, 1], activation = relu}",
            ),
            (Op::Mean { keep_dims: true }, "mean {keep_dims = true}"),
            (Op::Sum { keep_dims: false }, "sum"),
            (Op::Reshape { new_shape: Some(vec![1, -1]) }, "reshape {new_shape = [1, -1]}"),
            (Op::Reshape { new_shape: Some(vec![]) }, "reshape {new_shape = []}"),
            (Op::Reshape { new_shape: None }, "reshape"),
            (Op::Squeeze { axes: vec![0, -2] }, "squeeze {axes = [0, -2]}"),
            (Op::ExpandDims, "expand_dims"),
            (
                Op::Concatenation { axis: -1, activation: Activation::Relu },
                "concatenation {axis = -1, activation = relu}",
            ),
            (Op::Split { num_splits: 3 }, "split {num_splits = 3}"),
            (Op::SplitV { num_splits: 2 }, "split_v {num_splits = 2}"),
            (Op::Pack { values_count: 4, axis: 1 }, "pack {values_count = 4, axis = 1}"),
            (Op::Unpack { num: 2, axis: -3 }, "unpack {num = 2, axis = -3}"),
            (Op::Pad, "pad"),
            (Op::PadV2, "padv2"),
            (
                Op::StridedSlice(StridedSliceAttrs {
                    begin_mask: 1,
                    end_mask: 2,
                    ellipsis_mask: 4,
                    new_axis_mask: 8,
                    shrink_axis_mask: -16,
                    offset: true,
                }),
                "strided_slice {begin_mask = 1, end_mask = 2, ellipsis_mask = 4, new_axis_mask = 8, shrink_axis_mask = -16, offset = true}",
            ),
            (Op::StridedSlice(StridedSliceAttrs::default()), "strided_slice"),
            (Op::Slice, "slice"),
            (Op::Transpose, "transpose"),
            (Op::DepthToSpace { block_size: 2 }, "depth_to_space {block_size = 2}"),
            (Op::SpaceToDepth { block_size: 4 }, "space_to_depth {block_size = 4}"),
            (Op::BatchToSpaceNd, "batch_to_space_nd"),
            (Op::SpaceToBatchNd, "space_to_batch_nd"),
            (
                Op::ResizeBilinear(ResizeAttrs { align_corners: true, half_pixel_centers: false }),
                "resize_bilinear {align_corners = true}",
            ),
            (
                Op::ResizeNearestNeighbor(ResizeAttrs { align_corners: false, half_pixel_centers: true }),
                "resize_nearest_neighbor {half_pixel_centers = true}",
            ),
            (Op::Relu, "relu"),
            (Op::Relu6, "relu6"),
            (Op::ReluN1To1, "relu_n1_to_1"),
            (Op::LeakyRelu { alpha: 0.1 }, "leaky_relu {alpha = 0.1}"),
            (Op::LeakyRelu { alpha: f32::from_bits(0xffc0_0001) }, "leaky_relu {alpha = 0xffc00001}"),
            (Op::Prelu, "prelu"),
            (Op::Logistic, "logistic"),
            (Op::Tanh, "tanh"),
            (Op::HardSwish, "hard_swish"),
            (Op::Softmax { beta: 1.0 }, "softmax {beta = 1.0}"),
            (Op::Softmax { beta: f32::NEG_INFINITY }, "softmax {beta = -inf}"),
            (Op::Quantize, "quantize"),
            (Op::Dequantize, "dequantize"),
            (Op::Densify, "densify"),
            (Op::Gather { axis: 1, batch_dims: 0 }, "gather {axis = 1}"),
            (Op::Gather { axis: 0, batch_dims: 2 }, "gather {axis = 0, batch_dims = 2}"),
            (Op::ArgMax { output_type: DType::I64 }, "arg_max {output_type = i64}"),
            (Op::L2Normalization { activation: Activation::None }, "l2_normalization"),
            (Op::Exp, "exp"),
            (Op::Sqrt, "sqrt"),
            (Op::Rsqrt, "rsqrt"),
            (Op::Shape { output_type: DType::I32 }, "shape {output_type = i32}"),
            (Op::ReduceProd { keep_dims: true }, "reduce_prod {keep_dims = true}"),
            (Op::Greater, "greater"),
            (Op::GreaterEqual, "greater_equal"),
            (Op::Less, "less"),
            (Op::LessEqual, "less_equal"),
            (Op::Equal, "equal"),
            (Op::NotEqual, "not_equal"),
            (Op::If { then_graph: 2, else_graph: 1 }, "if {then_graph = 2, else_graph = 1}"),
            (Op::While { cond_graph: 3, body_graph: 4 }, "while {cond_graph = 3, body_graph = 4}"),
            (
                Op::Opaque(OpaqueOp {
                    name: "WHILE".into(),
                    builtin_code: Some(119),
                    options: Bytes::from_static(&[0x0a, 0xff]),
                    custom_options: Bytes::new(),
                }),
                "opaque \"WHILE\" {builtin_code = 119, options = hex\"0aff\"}",
            ),
            (
                Op::Opaque(OpaqueOp {
                    name: "My\"Custom".into(),
                    builtin_code: None,
                    options: Bytes::new(),
                    custom_options: Bytes::from_static(&[0, 1, 2]),
                }),
                "opaque \"My\\\"Custom\" {custom_options = hex\"000102\"}",
            ),
        ]
    }

    fn one_op_graph(op: Op) -> Graph {
        let mut g = Graph::new("main");
        let x = g.add_input("x", TensorType::new(DType::F32, vec![1, 2]));
        let y = g.add_value(Value::new("y", TensorType::new(DType::F32, vec![1, 2])));
        g.add_op(Operation::new(op, vec![Some(x), None], vec![y])).unwrap();
        g.outputs.push(y);
        g
    }

    #[test]
    fn every_op_variant_prints_and_parses_back() {
        let ops = all_ops();
        let mnemonics: std::collections::BTreeSet<&str> = ops.iter().map(|(o, _)| o.mnemonic()).collect();
        let known: std::collections::BTreeSet<&str> = crate::parse::MNEMONICS.iter().copied().collect();
        assert_eq!(mnemonics, known, "all_ops() must cover every op variant");
        for (op, expected) in ops {
            let g = one_op_graph(op.clone());
            let text = print_graph(&g, &PrintOptions::default());
            let (mnemonic, attrs) = match expected.find(" {") {
                Some(i) => (&expected[..i], &expected[i..]),
                None => (expected, ""),
            };
            let line = format!("%0 = {mnemonic}(%arg0, none){attrs} : tensor<1x2xf32> {{name = \"y\"}}");
            assert!(text.contains(&line), "expected line\n  {line}\nin\n{text}");
            let back = crate::parse::parse_graph(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let parsed = &back.op(back.topo_order().unwrap()[0]).op;
            // Compare through the printer: f32 NaN attributes are not `==` to themselves.
            assert_eq!(format!("{:?}", op_attrs(parsed)), format!("{:?}", op_attrs(&op)));
            assert_eq!(parsed.mnemonic(), op.mnemonic());
            if let (Op::LeakyRelu { alpha: a }, Op::LeakyRelu { alpha: b }) = (&op, parsed) {
                assert_eq!(a.to_bits(), b.to_bits());
            } else {
                assert_eq!(parsed, &op);
            }
            assert_eq!(print_graph(&back, &PrintOptions::default()), text);
        }
    }

    #[test]
    fn floats_print_exactly() {
        for bits in [0u32, 0x8000_0000, 1, 0x7f7f_ffff, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001, 0x3dcc_cccd]
        {
            let x = f32::from_bits(bits);
            let back = crate::parse::parse_f32(&fmt_f32(x)).unwrap();
            assert_eq!(back.to_bits(), bits, "{}", fmt_f32(x));
        }
        assert_eq!(fmt_f32(0.1), "0.1");
        assert_eq!(fmt_f32(-0.0), "-0.0");
        assert_eq!(fmt_f32(f32::NAN), "0x7fc00000");
        let mut s = String::new();
        write_f64(&mut s, f64::NAN).unwrap();
        assert_eq!(s, "0x7ff8000000000000");
    }

    #[test]
    fn quantization_forms() {
        let q = |s: Vec<f32>, z: Vec<i64>, axis, min: Vec<f32>, max: Vec<f32>| Quantization {
            scale: s,
            zero_point: z,
            axis,
            min,
            max,
        };
        assert_eq!(quant_to_string(&Quantization::per_tensor(0.5, -1)), "q<0.5:-1>");
        assert_eq!(
            quant_to_string(&Quantization::per_channel(vec![0.5, 0.25], vec![0, 1], 3)),
            "q<axis 3: [0.5:0, 0.25:1]>"
        );
        assert_eq!(quant_to_string(&q(vec![0.5], vec![0], 2, vec![], vec![])), "q<axis 2: [0.5:0]>");
        assert_eq!(quant_to_string(&q(vec![], vec![], 0, vec![-1.0], vec![1.0])), "q<min [-1.0], max [1.0]>");
        assert_eq!(quant_to_string(&q(vec![1.0], vec![], 1, vec![], vec![])), "q<scale [1.0], zero_point [], axis 1>");
        assert_eq!(quant_to_string(&Quantization::default()), "q<>");
    }

    #[test]
    fn names_are_escaped() {
        let mut s = String::new();
        write_str_lit(&mut s, "a\"b\\c\nd\te\u{1}f\u{85}g é 名".as_bytes());
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\te\\01f\\c2\\85g é 名\"");
        let mut s = String::new();
        write_bytes_lit(&mut s, b"1.5.0\0\0");
        assert_eq!(s, "\"1.5.0\\00\\00\"");
        let mut s = String::new();
        write_bytes_lit(&mut s, &[0xff, 0x00, 0x41]);
        assert_eq!(s, "hex\"ff0041\"");
        assert!(is_bare_ident("main_1.x"));
        assert!(!is_bare_ident("1main"));
        assert!(!is_bare_ident(""));
    }

    #[test]
    fn constants_elide_above_threshold() {
        let opts = PrintOptions::default();
        let mut s = String::new();
        write_dense(&mut s, &Constant::from(vec![1u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), DType::I32, &opts);
        assert_eq!(s, "dense<[1, -1]>");
        let big: Vec<u8> = (0..100u8).collect();
        let c = Constant::from(big.clone());
        let mut s = String::new();
        write_dense(&mut s, &c, DType::I8, &opts);
        assert_eq!(s, format!("dense<hash {}, 100 bytes, [0, 1, 2, 3, 4, 5, 6, 7, ...]>", c.short_hash()));
        let mut s = String::new();
        write_dense(&mut s, &c, DType::I8, &PrintOptions::full());
        assert!(s.starts_with("dense<[0, 1, 2,") && s.ends_with("98, 99]>"));
        // f16 data prints as hex; so does data that is not a whole number of elements.
        let mut s = String::new();
        write_dense(&mut s, &Constant::from(vec![0x00u8, 0x3c]), DType::F16, &opts);
        assert_eq!(s, "dense<\"003c\">");
        let mut s = String::new();
        write_dense(&mut s, &Constant::from(vec![1u8, 2, 3]), DType::I16, &opts);
        assert_eq!(s, "dense<\"010203\">");
        let mut s = String::new();
        write_dense(&mut s, &Constant::elided("not a hash!", 7), DType::I16, &opts);
        assert_eq!(s, "dense<hash \"not a hash!\", 7 bytes>");
        // Previews decode f16 and i4.
        assert_eq!(preview(DType::F16, &[0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]), "[1.0, -2.0, 5.9604645e-8]");
        assert_eq!(preview(DType::I4, &[0xf1, 0x7f]), "[1, -1, -1, 7]");
    }

    #[test]
    fn sparsity_prints() {
        let sp = Sparsity {
            traversal_order: vec![0, 1, 2],
            block_map: vec![1],
            dim_metadata: vec![
                DimMetadata { format: DimFormat::Dense, dense_size: 4, array_segments: None, array_indices: None },
                DimMetadata {
                    format: DimFormat::SparseCsr,
                    dense_size: 0,
                    array_segments: Some(IndexVector::I32(vec![0, 2])),
                    array_indices: Some(IndexVector::U8(vec![1, 3])),
                },
                DimMetadata { format: DimFormat::SparseCsr, dense_size: 0, array_segments: None, array_indices: None },
            ],
        };
        assert_eq!(
            sparsity_to_string(&sp),
            "sparse<traversal_order = [0, 1, 2], block_map = [1], dims = [dense(size = 4), csr(segments = i32[0, 2], indices = u8[1, 3]), csr]>"
        );
    }

    #[test]
    fn module_layout_and_naming() {
        let mut g = Graph::new("main");
        let x = g.add_input("x", TensorType::new(DType::F32, vec![2]));
        let c = g.add_const("c", TensorType::new(DType::F32, vec![2]), Constant::from(vec![0u8; 8]));
        let unused = g.add_const("unused", TensorType::new(DType::F32, vec![2]), Constant::from(vec![0u8; 8]));
        let y = g.add_value(Value::new("y", TensorType::new(DType::F32, vec![2])));
        let z = g.add_value(Value::new("z", TensorType::new(DType::F32, vec![2])));
        // Inserted consumer-first: the printer still shows producers first.
        g.add_op(Operation::new(Op::Relu, vec![Some(y)], vec![z])).unwrap();
        g.add_op(Operation::new(
            Op::Add { activation: Activation::None, pot_scale_int16: false },
            vec![Some(x), Some(c)],
            vec![y],
        ))
        .unwrap();
        g.outputs = vec![z];
        let mut m = Module::from_graph(g);
        m.description = "d".into();
        m.metadata.push(Metadata { name: "k".into(), data: Bytes::from_static(b"v") });
        m.signatures.push(Signature {
            key: "serving_default".into(),
            graph: 0,
            inputs: vec![("in".into(), x)],
            outputs: vec![("out".into(), z), ("extra".into(), unused)],
        });
        let text = print_module(&m, &PrintOptions::default());
        assert_eq!(
            text,
            r#"module attributes {description = "d"} {
  metadata "k" = "v"
  signature "serving_default" @main inputs {"in" = %arg0} outputs {"out" = %1, "extra" = %c1}

  graph @main(%arg0: tensor<2xf32> {name = "x"}) {
    %c0 = const dense<[0.0, 0.0]> : tensor<2xf32> {name = "c"}
    %c1 = const dense<[0.0, 0.0]> : tensor<2xf32> {name = "unused"}
    %0 = add(%arg0, %c0) : tensor<2xf32> {name = "y"}
    %1 = relu(%0) : tensor<2xf32> {name = "z"}
    return %1
  }
}
"#
        );
    }
}
