//! `npuc inspect`: a model summary as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use npuc_ir::stats::{graph_stats, macs};
use npuc_ir::{Graph, Module, Quantization, ValueId};

/// The whole report (also the JSON schema of `inspect --json`).
#[derive(Serialize)]
pub struct Report {
    /// Model description string.
    pub description: String,
    /// Total MACs of the main graph.
    pub macs: u64,
    /// Parameters of all graphs.
    pub parameters: u64,
    /// Constant bytes of all graphs.
    pub constant_bytes: u64,
    /// Signature keys.
    pub signatures: Vec<String>,
    /// Metadata names and sizes.
    pub metadata: Vec<MetadataEntry>,
    /// One entry per graph; the first is the main graph.
    pub graphs: Vec<GraphReport>,
}

/// One metadata blob.
#[derive(Serialize)]
pub struct MetadataEntry {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub bytes: usize,
}

/// Summary of one graph.
#[derive(Serialize)]
pub struct GraphReport {
    /// Graph name.
    pub name: String,
    /// Number of ops.
    pub ops: usize,
    /// Number of live tensors.
    pub tensors: usize,
    /// Op name → count, sorted by name.
    pub op_histogram: BTreeMap<String, usize>,
    /// Parameters (weights and biases).
    pub parameters: u64,
    /// Bytes of constant data.
    pub constant_bytes: u64,
    /// Total MACs.
    pub macs: u64,
    /// Graph inputs.
    pub inputs: Vec<TensorReport>,
    /// Graph outputs.
    pub outputs: Vec<TensorReport>,
    /// Every op in execution order.
    pub op_list: Vec<OpReport>,
    /// Every live tensor.
    pub tensor_list: Vec<TensorReport>,
}

/// One op.
#[derive(Serialize)]
pub struct OpReport {
    /// Position in execution order.
    pub index: usize,
    /// Op name.
    pub op: String,
    /// Shape of the first result.
    pub output_shape: Vec<usize>,
    /// MACs.
    pub macs: u64,
}

/// One tensor.
#[derive(Serialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Static shape.
    pub shape: Vec<usize>,
    /// Declared shape with dynamic dims as -1, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape_signature: Option<Vec<i64>>,
    /// Bytes of constant data (0 for activations).
    pub constant_bytes: usize,
    /// Quantization, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantReport>,
}

/// Quantization parameters.
#[derive(Serialize)]
pub struct QuantReport {
    /// Scales (one per tensor or per channel).
    pub scale: Vec<f32>,
    /// Zero points.
    pub zero_point: Vec<i64>,
    /// Quantized axis for per-channel quantization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<u32>,
}

fn quant(q: &Quantization) -> QuantReport {
    QuantReport { scale: q.scale.clone(), zero_point: q.zero_point.clone(), axis: q.is_per_channel().then_some(q.axis) }
}

fn tensor(g: &Graph, v: ValueId) -> TensorReport {
    let val = g.value(v);
    TensorReport {
        name: val.name.clone(),
        dtype: val.ty.dtype.to_string(),
        shape: val.ty.shape.clone(),
        shape_signature: val.shape_signature.clone(),
        constant_bytes: val.data.as_ref().map_or(0, |d| d.len()),
        quantization: val.ty.quant.as_ref().map(quant),
    }
}

fn graph_report(g: &Graph) -> GraphReport {
    let stats = graph_stats(g);
    let order = g.topo_order().unwrap_or_else(|_| g.op_ids().collect());
    let mut hist = BTreeMap::new();
    let mut op_list = Vec::with_capacity(order.len());
    for (index, &id) in order.iter().enumerate() {
        let o = g.op(id);
        *hist.entry(o.op.display_name().to_string()).or_insert(0) += 1;
        op_list.push(OpReport {
            index,
            op: o.op.display_name().to_string(),
            output_shape: o.outputs.first().map(|&v| g.value(v).ty.shape.clone()).unwrap_or_default(),
            macs: macs(g, id),
        });
    }
    let live = g.live_values();
    GraphReport {
        name: g.name.clone(),
        ops: stats.ops,
        tensors: stats.values,
        op_histogram: hist,
        parameters: stats.parameters,
        constant_bytes: stats.constant_bytes,
        macs: stats.macs,
        inputs: g.inputs.iter().map(|&v| tensor(g, v)).collect(),
        outputs: g.outputs.iter().map(|&v| tensor(g, v)).collect(),
        op_list,
        tensor_list: g.value_ids().filter(|v| live[v.index()]).map(|v| tensor(g, v)).collect(),
    }
}

fn fmt_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn fmt_tensor(t: &TensorReport) -> String {
    let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let mut s = format!("{} {}[{}]", t.name, t.dtype, shape);
    if let Some(sig) = &t.shape_signature {
        if sig.iter().any(|&d| d < 0) {
            let _ = write!(s, " signature {sig:?}");
        }
    }
    if let Some(q) = &t.quantization {
        if q.scale.len() == 1 {
            let _ = write!(s, " scale {} zero_point {}", q.scale[0], q.zero_point.first().copied().unwrap_or(0));
        } else {
            let _ = write!(s, " per-channel axis {} ({} scales)", q.axis.unwrap_or(0), q.scale.len());
        }
    }
    s
}

impl Report {
    /// Builds the report for a module.
    pub fn new(m: &Module) -> Self {
        let graphs: Vec<GraphReport> = m.graphs.iter().map(graph_report).collect();
        Report {
            description: m.description.clone(),
            macs: graphs.first().map_or(0, |g| g.macs),
            parameters: graphs.iter().map(|g| g.parameters).sum(),
            constant_bytes: graphs.iter().map(|g| g.constant_bytes).sum(),
            signatures: m.signatures.iter().map(|s| s.key.clone()).collect(),
            metadata: m.metadata.iter().map(|x| MetadataEntry { name: x.name.clone(), bytes: x.data.len() }).collect(),
            graphs,
        }
    }

    /// Renders the report as aligned text.
    pub fn to_text(&self, file: &str, list_tensors: bool) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model: {file}");
        if !self.description.is_empty() {
            let _ = writeln!(s, "description: {}", self.description);
        }
        let _ = writeln!(s, "graphs: {}", self.graphs.len());
        if !self.signatures.is_empty() {
            let _ = writeln!(s, "signatures: {}", self.signatures.join(", "));
        }
        for m in &self.metadata {
            let _ = writeln!(s, "metadata: {} ({} bytes)", m.name, m.bytes);
        }
        let _ = writeln!(s, "parameters: {} ({})", self.parameters, fmt_count(self.parameters));
        let _ = writeln!(s, "constant bytes: {}", self.constant_bytes);
        let _ = writeln!(s, "MACs: {} ({})", self.macs, fmt_count(self.macs));
        for (i, g) in self.graphs.iter().enumerate() {
            let _ = writeln!(
                s,
                "\ngraph {i} '{}': {} ops, {} tensors, {} MACs",
                g.name,
                g.ops,
                g.tensors,
                fmt_count(g.macs)
            );
            for t in &g.inputs {
                let _ = writeln!(s, "  input  {}", fmt_tensor(t));
            }
            for t in &g.outputs {
                let _ = writeln!(s, "  output {}", fmt_tensor(t));
            }
            let _ = writeln!(s, "  op histogram:");
            for (name, n) in &g.op_histogram {
                let _ = writeln!(s, "    {name:<28} {n:>5}");
            }
            let _ = writeln!(s, "  ops:");
            for o in &g.op_list {
                let shape = o.output_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
                let _ = writeln!(s, "    {:>4}  {:<28} {:<18} {:>14}", o.index, o.op, shape, o.macs);
            }
            if list_tensors {
                let _ = writeln!(s, "  tensors:");
                for (i, t) in g.tensor_list.iter().enumerate() {
                    let _ = writeln!(s, "    {i:>4}  {} ({} constant bytes)", fmt_tensor(t), t.constant_bytes);
                }
            }
        }
        s
    }
}

/// `npuc inspect model.npu`: the artifact's report (its metadata at the top level, so the
/// performance figures appear beside the memory ones), sections, I/O and command stream.
pub fn npu(path: &std::path::Path, json: bool) -> Result<String, crate::error::DriverError> {
    use npuc_npu::artifact;
    use npuc_npu::program::{Command, TensorRef};
    use std::fmt::Write as _;

    let file = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| crate::error::DriverError::input(&file, format!("cannot read: {e}")))?;
    let p = artifact::read(&bytes).map_err(|e| crate::error::DriverError::input(&file, e.to_string()))?;
    let sections: Vec<(&str, u64)> = artifact::section_sizes(&p);
    let desc = |t: &TensorRef| {
        let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        let q = t.quant.as_ref().and_then(|q| Some((q.scale.first()?, q.zero_point.first()?)));
        let q = q.map(|(s, z)| format!(" scale {s} zp {z}")).unwrap_or_default();
        format!("{}[{shape}] {}@{}{q}", t.dtype, t.region.name(), t.offset)
    };
    if json {
        let mut top = serde_json::Map::new();
        for (k, v) in &p.metadata {
            top.insert(k.clone(), v.clone());
        }
        top.insert("format_version".into(), artifact::VERSION.into());
        top.insert("file_bytes".into(), (bytes.len() as u64).into());
        top.insert("commands".into(), p.commands.len().into());
        top.insert("weight_streams".into(), p.weights.len().into());
        top.insert("luts".into(), p.luts.len().into());
        let secs: serde_json::Map<String, serde_json::Value> =
            sections.iter().map(|(n, b)| (n.to_string(), (*b).into())).collect();
        top.insert("sections".into(), secs.into());
        let io = |l: &[npuc_npu::program::IoDesc]| -> serde_json::Value {
            l.iter().map(|d| serde_json::json!({"name": d.name, "tensor": desc(&d.tensor)})).collect()
        };
        top.insert("inputs".into(), io(&p.inputs));
        top.insert("outputs".into(), io(&p.outputs));
        return serde_json::to_string_pretty(&top)
            .map(|s| s + "\n")
            .map_err(|e| crate::error::DriverError::internal(e.to_string()));
    }
    let meta = |k: &str| match p.metadata.get(k) {
        None | Some(serde_json::Value::Null) => "-".to_string(),
        Some(v) => v.to_string(),
    };
    let mut s = String::new();
    let _ = writeln!(s, "{file}: npuc artifact v{} for {}, {} bytes", artifact::VERSION, p.target, bytes.len());
    let _ = writeln!(s, "  compiler {}  pipeline {}", meta("compiler"), meta("pipeline"));
    let _ = writeln!(
        s,
        "  {} NPU ops, {} CPU ops in {} segments, {} commands",
        meta("npu_ops"),
        meta("cpu_ops"),
        meta("cpu_segments"),
        p.commands.len()
    );
    let _ = writeln!(
        s,
        "  memory: SRAM {} bytes, DRAM {} bytes, flash {} bytes (encoded weights {} bytes in {} streams)",
        p.memory.sram_bytes,
        p.memory.dram_bytes,
        p.flash_bytes(),
        p.encoded_weight_bytes(),
        p.weights.len()
    );
    if p.metadata.get("cycles").is_none_or(serde_json::Value::is_null) {
        let _ = writeln!(s, "  performance: not estimated (no cycle model has filled this artifact's report)");
    } else {
        let _ = writeln!(
            s,
            "  performance: {} cycles, {} us, {} uJ",
            meta("cycles"),
            meta("latency_us"),
            meta("energy_uj")
        );
    }
    for d in &p.inputs {
        let _ = writeln!(s, "  input  '{}': {}", d.name, desc(&d.tensor));
    }
    for d in &p.outputs {
        let _ = writeln!(s, "  output '{}': {}", d.name, desc(&d.tensor));
    }
    let _ = writeln!(s, "  sections:");
    for (n, b) in &sections {
        let _ = writeln!(s, "    {n:<12} {b} bytes");
    }
    let _ = writeln!(s, "  commands:");
    for (i, c) in p.commands.iter().enumerate() {
        let line = match c {
            Command::Npu(n) => {
                let mut l = format!("npu {} '{}'", n.op.name(), n.name);
                if let Some(Some(t)) = n.operands.first() {
                    let _ = write!(l, " ifm {}", desc(t));
                }
                if let Some(Some(t)) = n.operands.get(1) {
                    let _ = write!(l, " ifm2 {}", desc(t));
                }
                if n.stripe.0 > 0 || n.pad.is_some() {
                    let _ = write!(l, " rows {}..{}", n.stripe.0, n.stripe.1);
                }
                if let Some(t) = n.outputs.first() {
                    let _ = write!(l, " -> ofm {}", desc(t));
                }
                if let Some(w) = &n.weights {
                    let len = p.weights.get(w.stream as usize).map_or(0, Vec::len);
                    let _ = write!(l, " weights #{} ({len} bytes)", w.stream);
                }
                if let Some(t) = n.lut {
                    let _ = write!(l, " lut #{t}");
                }
                l
            }
            Command::Dma { src_region, src, dst_region, dst, len } => {
                format!("dma {len} bytes {}@{src} -> {}@{dst}", src_region.name(), dst_region.name())
            }
            Command::Cpu(c) => {
                format!("cpu subgraph #{} ({} inputs, {} outputs)", c.subgraph, c.inputs.len(), c.outputs.len())
            }
        };
        let _ = writeln!(s, "    {i:>4} {line}");
    }
    if let Some(serde_json::Value::Array(reasons)) = p.metadata.get("cpu_reasons") {
        if !reasons.is_empty() {
            let _ = writeln!(s, "  cpu fallback:");
        }
        for r in reasons {
            let _ = writeln!(
                s,
                "    #{} {}: {}",
                r["index"],
                r["op"].as_str().unwrap_or("?"),
                r["reason"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(s)
}
