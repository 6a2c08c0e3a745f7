//! The NPU end of `npuc compile --target`: lower the optimized graph, put the cycle model's
//! figures into the artifact's report, write the `.npu` file, and say what it costs.

use std::fmt::Write as _;
use std::path::Path;

use npuc_ir::Module;
use npuc_npu::{artifact, lower, perf};
use npuc_target::Target;

use crate::error::DriverError;
use npuc_pass::PipelineReport;

/// What the driver prints and reports after writing an artifact.
pub struct NpuOutcome {
    /// The artifact's report (its metadata, as `npuc inspect --json` shows it), without the
    /// stage table, which the compile report already has.
    pub report: serde_json::Map<String, serde_json::Value>,
    /// The final report as text lines.
    pub text: String,
}

/// A byte count in binary units, as SRAM sizes are quoted: `196.0 KiB`.
fn kib(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.2} MiB", n as f64 / 1_048_576.0),
    }
}

/// Lowers `module`'s main graph for `target` and writes the artifact to `output`.
pub fn lower_and_write(
    module: &Module,
    target: &Target,
    pipeline: &str,
    report: &PipelineReport,
    streams: &std::sync::Arc<perf::WeightStreams>,
    model: &Path,
    output: &Path,
) -> Result<NpuOutcome, DriverError> {
    let file = model.display().to_string();
    let g = module.main().ok_or_else(|| DriverError::input(&file, "the model has no graph"))?;
    let stage_table = serde_json::to_value(&report.stages.stages).map_err(|e| DriverError::internal(e.to_string()))?;
    let opts =
        lower::LowerOptions { pipeline: pipeline.to_string(), stage_table: Some(stage_table), ..Default::default() };
    let mut program = lower::lower(g, target, &opts)
        .map_err(|e| DriverError::input(&file, format!("cannot lower for {}: {e}", target.name)))?;

    // The cycle model costs the same graph the program was lowered from.
    let mut notes = Vec::new();
    match perf::estimate_with(g, target, streams) {
        Ok(r) => {
            program.metadata.insert("cycles".into(), r.cycles.into());
            program.metadata.insert("latency_us".into(), r.latency_us.into());
            program.metadata.insert("energy_uj".into(), r.energy_uj.into());
            program.metadata.insert("cycle_model".into(), "npuc perf (calibrated against Vela 5.2)".into());
        }
        Err(e) => notes.push(format!("no cycle estimate: {e}")),
    }
    let bytes = artifact::write(&program);
    crate::model_io::write_output(output, &bytes)?;

    let mut json = serde_json::Map::new();
    for (k, v) in &program.metadata {
        if k != "stage_table" {
            json.insert(k.clone(), v.clone());
        }
    }
    let input_weight_bytes = report.stages.stages.first().map_or(0, |s| s.constant_bytes);
    let stored = program.flash_bytes();
    json.insert("artifact_bytes".into(), (bytes.len() as u64).into());
    json.insert("input_constant_bytes".into(), input_weight_bytes.into());
    let ratio = (stored > 0).then(|| input_weight_bytes as f64 / stored as f64);
    json.insert("compression_ratio".into(), ratio.into());

    let num = |k: &str| program.metadata.get(k).and_then(serde_json::Value::as_f64);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}: {} NPU ops, {} CPU ops, {} commands -> {}",
        target.name,
        num("npu_ops").unwrap_or(0.0),
        num("cpu_ops").unwrap_or(0.0),
        program.commands.len(),
        output.display()
    );
    match (num("cycles"), num("latency_us"), num("energy_uj")) {
        (Some(c), Some(l), Some(e)) => {
            let _ = writeln!(
                text,
                "  {:.0} cycles, {:.1} us at {} MHz, {:.2} uJ",
                c,
                l,
                target.compute.clock_hz / 1_000_000,
                e
            );
        }
        _ => {
            for n in &notes {
                let _ = writeln!(text, "  {n}");
            }
        }
    }
    let _ = writeln!(
        text,
        "  SRAM {}{}, flash {} (encoded weights {}); constants {} in the input -> {} stored: compression ratio {}",
        kib(program.memory.sram_bytes),
        if program.memory.dram_bytes > 0 {
            format!(", DRAM {}", kib(program.memory.dram_bytes))
        } else {
            String::new()
        },
        kib(stored),
        kib(program.encoded_weight_bytes()),
        kib(input_weight_bytes),
        kib(stored),
        ratio.map_or("-".to_string(), |r| format!("{r:.2}"))
    );
    Ok(NpuOutcome { report: json, text })
}
