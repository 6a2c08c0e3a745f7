//! The stage table: one record per pipeline stage (the input, then after each pass) with
//! size, work, memory, cost columns and, when checked, numerical error.

use std::fmt::Write as _;

use npuc_ir::{Graph, Module};
use serde::{Serialize, Serializer};

use crate::cost::CostProvider;

/// Error of one output against the pre-pipeline output on the same inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputError {
    /// Largest absolute difference, in real units (quantized outputs are dequantized with
    /// their own scale and zero point, so stages that change quantization compare fairly).
    pub max_abs_error: f64,
    /// Signal-to-quantization-noise ratio in dB (`inf` when identical).
    #[serde(serialize_with = "ser_f64")]
    pub sqnr_db: f64,
}

/// Outcome of the numerics check at one stage (main graph only).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Numerics {
    /// The graph ran; one entry per output.
    Compared {
        /// Per-output error.
        outputs: Vec<OutputError>,
    },
    /// The interpreter cannot run this stage (or the reference), e.g. opaque ops.
    NotExecutable {
        /// Why.
        reason: String,
    },
}

/// Writes non-finite floats as strings (`"inf"`, `"-inf"`, `"nan"`): JSON has no such
/// numbers.
fn ser_f64<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_str(&x.to_string().to_lowercase())
    }
}

/// Writes cost columns as a JSON object, keeping their order.
fn ser_costs<S: Serializer>(costs: &[(String, f64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(costs.len()))?;
    for (k, v) in costs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

/// Measurements of one graph of the module after one stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GraphRecord {
    /// Index of the graph in the module.
    pub index: usize,
    /// Graph name.
    pub name: String,
    /// Operations.
    pub ops: usize,
    /// Parameter elements.
    pub parameters: u64,
    /// Bytes of constants.
    pub constant_bytes: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Peak live activation bytes.
    pub peak_activation_bytes: u64,
    /// Cost columns, as in [`StageRecord::costs`].
    #[serde(serialize_with = "ser_costs")]
    pub costs: Vec<(String, f64)>,
}

/// Measurements of the module after one stage; counts are summed over all graphs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageRecord {
    /// `input` for the module as loaded, else the pass name.
    pub stage: String,
    /// Operations.
    pub ops: usize,
    /// Parameter elements (weights and biases).
    pub parameters: u64,
    /// Bytes of constants.
    pub constant_bytes: u64,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Largest sum of live activation bytes over the execution order (max over graphs).
    pub peak_activation_bytes: u64,
    /// Cost columns: `provider.column` → value, in provider and column order (a JSON
    /// object).
    #[serde(serialize_with = "ser_costs")]
    pub costs: Vec<(String, f64)>,
    /// Per-graph measurements, for modules with more than one graph (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub graphs: Vec<GraphRecord>,
    /// Wall time of the pass in milliseconds, when timing is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<f64>,
    /// Numerical error against the input stage, when numerics are checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numerics: Option<Numerics>,
}

impl StageRecord {
    /// Measures `module` (times and numerics are filled in by the caller).
    pub fn measure(stage: &str, module: &Module, providers: &[Box<dyn CostProvider>]) -> Self {
        let mut r = StageRecord {
            stage: stage.into(),
            ops: 0,
            parameters: 0,
            constant_bytes: 0,
            macs: 0,
            peak_activation_bytes: 0,
            costs: Vec::new(),
            graphs: Vec::new(),
            time_ms: None,
            numerics: None,
        };
        for p in providers {
            for c in p.columns() {
                r.costs.push((format!("{}.{c}", p.name()), 0.0));
            }
        }
        for (index, g) in module.graphs.iter().enumerate() {
            let s = npuc_ir::stats::graph_stats(g);
            let peak = peak_activation_bytes(g);
            r.ops += s.ops;
            r.parameters += s.parameters;
            r.constant_bytes += s.constant_bytes;
            r.macs = r.macs.saturating_add(s.macs);
            r.peak_activation_bytes = r.peak_activation_bytes.max(peak);
            let mut costs = Vec::new();
            for p in providers {
                costs.extend(p.columns().iter().map(|c| format!("{}.{c}", p.name())).zip(p.cost(g)));
            }
            for (slot, (_, x)) in r.costs.iter_mut().zip(&costs) {
                slot.1 += x;
            }
            if module.graphs.len() > 1 {
                r.graphs.push(GraphRecord {
                    index,
                    name: g.name.clone(),
                    ops: s.ops,
                    parameters: s.parameters,
                    constant_bytes: s.constant_bytes,
                    macs: s.macs,
                    peak_activation_bytes: peak,
                    costs,
                });
            }
        }
        r
    }
}

/// Peak activation memory of a graph: the largest sum of the bytes of non-constant values
/// alive while an op runs, over the deterministic execution order, with the interpreter's
/// liveness (a value lives from its producer, or the start for graph inputs, to its last
/// reader; graph outputs live to the end). 0 for a graph with a cycle.
pub fn peak_activation_bytes(g: &Graph) -> u64 {
    let Ok(order) = g.topo_order() else { return 0 };
    let n = g.value_count();
    let size = |v: npuc_ir::ValueId| {
        let val = g.value(v);
        if val.is_constant() {
            0
        } else {
            val.ty.storage_bytes().unwrap_or(0)
        }
    };
    // Last step at which each value is needed; usize::MAX for graph outputs.
    let mut last_use = vec![None::<usize>; n];
    for (i, &id) in order.iter().enumerate() {
        for v in g.op(id).inputs.iter().flatten() {
            last_use[v.index()] = Some(i);
        }
    }
    for &v in &g.outputs {
        last_use[v.index()] = Some(usize::MAX);
    }
    let mut live: u64 = 0;
    let mut counted = vec![false; n];
    for &v in &g.inputs {
        if !counted[v.index()] {
            counted[v.index()] = true;
            live += size(v);
        }
    }
    let mut peak = live;
    for (i, &id) in order.iter().enumerate() {
        let o = g.op(id);
        for &v in &o.outputs {
            if !counted[v.index()] {
                counted[v.index()] = true;
                live += size(v);
            }
        }
        peak = peak.max(live);
        // Free what this op read last, and results nobody reads.
        for &v in o.inputs.iter().flatten().chain(&o.outputs) {
            let dead = match last_use[v.index()] {
                Some(l) => l == i,
                None => true,
            };
            if dead && counted[v.index()] {
                counted[v.index()] = false;
                live -= size(v);
            }
        }
    }
    peak
}

/// Every stage of one pipeline run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageTable {
    /// Records in order: `input`, then one per pass.
    pub stages: Vec<StageRecord>,
}

impl StageTable {
    /// The table as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("stage table serializes")
    }

    /// The table as aligned text: one row per stage; time and numerics columns appear
    /// when any stage has them.
    pub fn to_text(&self) -> String {
        let mut header: Vec<String> =
            ["stage", "ops", "params", "const_bytes", "macs", "peak_act_bytes"].iter().map(|s| s.to_string()).collect();
        let cost_cols: Vec<String> =
            self.stages.first().map(|s| s.costs.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
        header.extend(cost_cols.iter().cloned());
        let timed = self.stages.iter().any(|s| s.time_ms.is_some());
        let checked = self.stages.iter().any(|s| s.numerics.is_some());
        if timed {
            header.push("time_ms".into());
        }
        if checked {
            header.push("max_abs_err".into());
            header.push("sqnr_db".into());
        }
        let mut rows = vec![header];
        for s in &self.stages {
            let mut row = vec![
                s.stage.clone(),
                s.ops.to_string(),
                s.parameters.to_string(),
                s.constant_bytes.to_string(),
                s.macs.to_string(),
                s.peak_activation_bytes.to_string(),
            ];
            row.extend(s.costs.iter().map(|(_, x)| format_num(*x)));
            if timed {
                row.push(s.time_ms.map_or("-".into(), |t| format!("{t:.3}")));
            }
            if checked {
                let (err, sqnr) = match &s.numerics {
                    None => ("-".to_string(), "-".to_string()),
                    Some(Numerics::NotExecutable { .. }) => ("not executable".into(), "-".into()),
                    Some(Numerics::Compared { outputs }) => {
                        // The worst output speaks for the stage.
                        let err = outputs.iter().map(|o| o.max_abs_error).fold(0.0, f64::max);
                        let sqnr = outputs.iter().map(|o| o.sqnr_db).fold(f64::INFINITY, f64::min);
                        (format!("{err:.6e}"), if sqnr.is_finite() { format!("{sqnr:.2}") } else { sqnr.to_string() })
                    }
                };
                row.push(err);
                row.push(sqnr);
            }
            rows.push(row);
            for g in &s.graphs {
                let mut row = vec![
                    format!("  #{} {}", g.index, g.name),
                    g.ops.to_string(),
                    g.parameters.to_string(),
                    g.constant_bytes.to_string(),
                    g.macs.to_string(),
                    g.peak_activation_bytes.to_string(),
                ];
                row.extend(g.costs.iter().map(|(_, x)| format_num(*x)));
                // Time and numerics are per stage (numerics: main graph), not per graph.
                row.extend(std::iter::repeat_n(String::new(), usize::from(timed) + 2 * usize::from(checked)));
                rows.push(row);
            }
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c == 0 {
                    let _ = write!(line, "{cell:<w$}", w = widths[c]);
                } else {
                    let _ = write!(line, "  {cell:>w$}", w = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for s in &self.stages {
            if let Some(Numerics::NotExecutable { reason }) = &s.numerics {
                let _ = writeln!(out, "note: stage '{}' not executable: {reason}", s.stage);
            }
        }
        out
    }
}

/// Integers without a fraction, others with three decimals.
fn format_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e18 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}
