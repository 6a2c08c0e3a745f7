//! `npuc targets`: the NPU targets npuc knows (built in, from `targets/*.toml`), or one
//! target in full.

use npuc_target::{builtin_names, MacKind, Target};

use crate::error::DriverError;

/// Options of `npuc targets`.
#[derive(clap::Args)]
pub struct TargetsArgs {
    /// Show this target in full: a built-in name (`ethos-u55-128`) or a target file.
    target: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// A built-in target by name or a target file; errors name `option`.
pub fn resolve_for(option: &str, name_or_path: &str) -> Result<Target, DriverError> {
    Target::resolve(name_or_path).map_err(|e| DriverError::usage(option, e.to_string()))
}

/// A built-in target by name or a target file, as `--target` takes it.
pub fn resolve(name_or_path: &str) -> Result<Target, DriverError> {
    resolve_for("--target", name_or_path)
}

fn load(name_or_path: &str) -> Result<Target, DriverError> {
    resolve_for("target", name_or_path)
}

/// The external memory kind as the target file spells it (`flash`, `dram`).
fn kind_name(t: &Target) -> String {
    serde_json::to_value(t.memory.external.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Runs `npuc targets`.
pub fn targets(args: TargetsArgs) -> Result<(), DriverError> {
    if let Some(t) = &args.target {
        let target = load(t)?;
        let text = if args.json {
            serde_json::to_string_pretty(&target).map_err(|e| DriverError::internal(e.to_string()))? + "\n"
        } else {
            toml::to_string(&target).map_err(|e| DriverError::internal(e.to_string()))?
        };
        print!("{text}");
        return Ok(());
    }
    let targets: Vec<Target> = builtin_names().map(load).collect::<Result<_, _>>()?;
    if args.json {
        let rows: Vec<serde_json::Value> = targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "family": t.family,
                    "macs_per_cycle_i8": t.macs_per_cycle(MacKind::I8xI8),
                    "clock_hz": t.compute.clock_hz,
                    "peak_tops_i8": t.peak_tops(MacKind::I8xI8),
                    "sram_bytes": t.memory.sram.size_bytes,
                    "external": t.memory.external.kind,
                    "description": t.description,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| DriverError::internal(e.to_string()))?);
        return Ok(());
    }
    println!(
        "{:<15} {:>8} {:>9} {:>10} {:>10}  {:<6} description",
        "target", "MACs/cyc", "clock", "int8 TOPS", "SRAM", "memory"
    );
    for t in &targets {
        println!(
            "{:<15} {:>8} {:>5} MHz {:>10.3} {:>6} KiB  {:<6} {}",
            t.name,
            t.macs_per_cycle(MacKind::I8xI8),
            t.compute.clock_hz / 1_000_000,
            t.peak_tops(MacKind::I8xI8),
            t.memory.sram.size_bytes / 1024,
            kind_name(t),
            t.description
        );
    }
    Ok(())
}
