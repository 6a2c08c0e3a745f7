//! `npuc compile`: the user-facing path. Runs the default pipeline (or `--passes`) with the
//! IR verifier after every pass, writes the optimized model atomically, and always reports
//! the stage table and an input → output summary.
//!
//! It shares `npuc opt`'s machinery (pipeline parsing, pass manager, stage table); what it
//! adds is a fixed default pipeline, verification that cannot be turned off (compile must
//! never write an invalid model) and the summary. Numeric options are parsed here, not by
//! clap, so a bad value is the driver's one-line error with exit code 2.
//!
//! With `--target`, compile is the NPU compiler: a float model is quantized (synthetic
//! calibration unless `--calibration` is given), the stage table gains the target's
//! simulated cost per stage, and the result is lowered and written as a `.npu` artifact
//! (docs/artifact-format.md) whose report carries the cycle model's figures.

use std::path::{Path, PathBuf};

use npuc_pass::{Instrumentation, StageRecord};
use serde::Serialize;

use crate::error::DriverError;
use crate::model_io::{self, Format};

/// The pipeline `npuc compile` runs when `--passes` is not given. Defined once here; later
/// stages (quantization, lowering) are appended to it.
pub const DEFAULT_PIPELINE: &str = "canonicalize,collapse-linear";

/// Options of `npuc compile`.
#[derive(clap::Args)]
pub struct CompileArgs {
    /// Model file (.tflite or .nir).
    model: PathBuf,
    /// Output file (.tflite or .nir); `-` writes .nir to stdout (the stage table then goes
    /// to stderr).
    #[arg(short, long)]
    output: PathBuf,
    /// The pipeline, as in `npuc opt --passes` (see `npuc opt --help` for the passes).
    #[arg(long, value_name = "PIPELINE", default_value = DEFAULT_PIPELINE)]
    passes: String,
    /// Run the IR verifier after every pass. Always on in compile; accepted for symmetry
    /// with `npuc opt`.
    #[arg(long)]
    verify_each: bool,
    /// Run the interpreter before and after each pass on seeded random inputs and add each
    /// stage's max abs error and SQNR to the stage table.
    #[arg(long)]
    check_numerics: bool,
    /// Seed of the --check-numerics inputs (as `npuc run --seed`).
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    seed: String,
    /// Print the stage table and summary as one JSON object (the only stdout output).
    #[arg(long)]
    json: bool,
    /// Add each pass's wall time to the stage table.
    #[arg(long)]
    timing: bool,
    /// Per-layer compression config (TOML, docs/compression.md): appends
    /// `prune{config=FILE},quantize{config=FILE}` to the pipeline.
    #[arg(long, value_name = "FILE")]
    compression: Option<PathBuf>,
    /// Calibration samples for quantization (a folder of .npy files, see
    /// docs/compression.md); implies quantizing even without --compression.
    #[arg(long, value_name = "DIR")]
    calibration: Option<PathBuf>,
    /// Output format: tflite, nir or mlir (mlir needs an npuc built with --features mlir;
    /// default: from -o's extension).
    #[arg(long, value_name = "FORMAT")]
    emit: Option<String>,
    /// Write every constant in full in .nir output (default: large ones as a hash).
    #[arg(long)]
    full_constants: bool,
    /// Compile for an NPU target (a built-in name such as ethos-u55-128, see `npuc targets`,
    /// or a target .toml file): quantize if needed, lower, and write a .npu artifact.
    #[arg(long, value_name = "TARGET")]
    target: Option<String>,
}

/// Sizes of the model at one end of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Totals {
    /// Operations (all graphs).
    pub ops: usize,
    /// Parameter elements (all graphs).
    pub parameters: u64,
    /// Multiply-accumulates (all graphs).
    pub macs: u64,
    /// Bytes of constants (weights, biases, tables; all graphs).
    pub constant_bytes: u64,
}

impl From<&StageRecord> for Totals {
    fn from(r: &StageRecord) -> Self {
        Totals { ops: r.ops, parameters: r.parameters, macs: r.macs, constant_bytes: r.constant_bytes }
    }
}

/// Input → output comparison printed after the stage table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The model as loaded.
    pub input: Totals,
    /// The model as written.
    pub output: Totals,
    /// Input MACs over output MACs (`null` when the output has none).
    pub mac_reduction: Option<f64>,
    /// The summary as one line of text.
    pub line: String,
}

/// A byte count for people: `812 B`, `54.8 KB`, `1.28 MB` (decimal units).
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

impl Summary {
    /// Compares the first and last stage of a run of `name`.
    pub fn new(name: &str, first: &StageRecord, last: &StageRecord) -> Self {
        let (input, output) = (Totals::from(first), Totals::from(last));
        let mac_reduction = (output.macs > 0).then(|| input.macs as f64 / output.macs as f64);
        // Both MAC counts in the larger one's unit, so the two numbers read against each other.
        let (div, unit) = mac_unit(input.macs.max(output.macs));
        let scaled = |m: u64| if div == 1.0 { m.to_string() } else { format!("{:.2} {unit}", m as f64 / div) };
        let change = match (input.macs, output.macs) {
            (a, b) if a == b => "unchanged".to_string(),
            (_, 0) => "all removed".to_string(),
            (a, b) if b < a => format!("{:.1}x fewer", a as f64 / b as f64),
            (0, b) => format!("{b} more"),
            (a, b) => format!("{:.1}x more", b as f64 / a as f64),
        };
        let line = format!(
            "{name}: {} ops -> {}, {} params -> {}, constants {} -> {}, {} MACs -> {} ({change})",
            input.ops,
            output.ops,
            input.parameters,
            output.parameters,
            bytes(input.constant_bytes),
            bytes(output.constant_bytes),
            scaled(input.macs),
            scaled(output.macs),
        );
        Summary { input, output, mac_reduction, line }
    }
}

/// Divisor and SI prefix for printing `macs` with two decimals.
fn mac_unit(macs: u64) -> (f64, &'static str) {
    match macs {
        m if m >= 1_000_000_000 => (1e9, "G"),
        m if m >= 1_000_000 => (1e6, "M"),
        m if m >= 10_000 => (1e3, "K"),
        _ => (1.0, ""),
    }
}

/// The `--json` output: what was compiled, the stage table and the summary.
#[derive(Serialize)]
struct Report<'a> {
    model: String,
    output: String,
    pipeline: &'a str,
    stages: &'a [StageRecord],
    summary: &'a Summary,
    /// With `--target`: the artifact's report (the keys `npuc inspect --json` shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    npu: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Whether `m` is a float model: some op computes in floating point (DEQUANTIZE only
/// converts a quantized model's output back) and no tensor is quantized yet (a model that is
/// already partly quantized, with float fallbacks, is lowered as it is).
fn is_float_model(m: &npuc_ir::Module) -> bool {
    let float_compute = m.graphs.iter().any(|g| {
        g.op_ids().any(|id| {
            let o = g.op(id);
            !matches!(o.op, npuc_ir::Op::Dequantize) && o.outputs.iter().any(|&v| g.value(v).ty.dtype.is_float())
        })
    });
    let quantized = m.graphs.iter().any(|g| g.value_ids().any(|v| g.value(v).ty.quant.is_some()));
    float_compute && !quantized
}

/// What compile writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// A model file.
    Model(Format),
    /// A `.npu` artifact.
    Npu,
}

/// Whether `path` names a `.npu` artifact.
fn is_npu(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npu"))
}

/// What compile writes: a `.npu` artifact with `--target`, else a model (see
/// [`output_format`]).
fn output_kind(output: &Path, emit: Option<&str>, target: Option<&str>) -> Result<Output, DriverError> {
    match (target, emit) {
        (Some(_), None | Some("npu")) => {
            if output == Path::new("-") {
                return Err(DriverError::usage("-o", "a .npu artifact cannot be written to stdout (use a file)"));
            }
            if !is_npu(output) && emit.is_none() {
                return Err(DriverError::usage(
                    output.display().to_string(),
                    "with --target compile writes a .npu artifact (name the output *.npu)",
                ));
            }
            Ok(Output::Npu)
        }
        (Some(_), Some(other)) => Err(DriverError::usage(
            "--emit",
            format!("'{other}' cannot be combined with --target, which writes a .npu artifact"),
        )),
        (None, Some("npu")) => Err(DriverError::usage("--emit", "npu needs --target (which NPU to compile for)")),
        (None, _) if emit.is_none() && is_npu(output) => Err(DriverError::usage(
            output.display().to_string(),
            "a .npu artifact is compiled for a target: add --target (e.g. --target ethos-u55-128)",
        )),
        (None, _) => output_format(output, emit).map(Output::Model),
    }
}

/// The output format: `--emit`, else `-o`'s extension; compile writes models only.
fn output_format(output: &Path, emit: Option<&str>) -> Result<Format, DriverError> {
    let to_stdout = output == Path::new("-");
    let format = match emit {
        Some("tflite") => Format::Tflite,
        Some("nir") => Format::Nir,
        Some("mlir") => Format::Mlir,
        Some(other) => {
            return Err(DriverError::usage("--emit", format!("unknown format '{other}' (valid: tflite, nir, mlir)")));
        }
        None if to_stdout => Format::Nir,
        None => match Format::from_extension(output) {
            Some(f @ (Format::Tflite | Format::Nir | Format::Mlir)) => f,
            _ => {
                return Err(DriverError::usage(
                    output.display().to_string(),
                    "cannot tell the output format from the extension (use .tflite, .nir or .mlir, or --emit)",
                ));
            }
        },
    };
    // Say so before any pass runs, not after.
    if format == Format::Mlir && !cfg!(feature = "mlir") {
        return Err(DriverError::usage(
            output.display().to_string(),
            "this npuc was built without MLIR support; rebuild with --features mlir",
        ));
    }
    if to_stdout && format == Format::Tflite {
        return Err(DriverError::usage("-o", "a .tflite model cannot be written to stdout (use a file or --emit nir)"));
    }
    Ok(format)
}

/// Text of a pipeline option value: paths may not contain the pipeline syntax's own
/// characters.
fn option_path(flag: &str, path: &Path) -> Result<String, DriverError> {
    let text = path.to_str().ok_or_else(|| DriverError::usage(flag, format!("{}: not UTF-8", path.display())))?;
    if text.is_empty() || text.contains([',', '{', '}', '=']) || text.chars().any(char::is_whitespace) {
        return Err(DriverError::usage(
            flag,
            format!("'{text}': paths with ',', '{{', '}}', '=' or spaces are not supported"),
        ));
    }
    Ok(text.to_string())
}

/// The pipeline compile runs: `passes`, then pruning and quantization when a compression
/// config or calibration data is given, or quantization alone when `quantize` is set (a
/// float model compiled for an NPU). The config is validated here, before any work.
fn full_pipeline(
    passes: &str,
    compression: Option<&Path>,
    calibration: Option<&Path>,
    quantize_anyway: bool,
) -> Result<String, DriverError> {
    let mut pipeline = passes.to_string();
    let mut quantize = Vec::new();
    if let Some(path) = compression {
        npuc_pass::CompressionConfig::load(path).map_err(|e| DriverError::usage("--compression", e.to_string()))?;
        let p = option_path("--compression", path)?;
        pipeline.push_str(&format!(",prune{{config={p}}}"));
        quantize.push(format!("config={p}"));
    }
    if let Some(dir) = calibration {
        if !dir.is_dir() {
            return Err(DriverError::input(dir.display().to_string(), "not a directory of calibration samples"));
        }
        quantize.push(format!("calibration={}", option_path("--calibration", dir)?));
    }
    if compression.is_some() || calibration.is_some() {
        pipeline.push_str(&format!(",quantize{{{}}}", quantize.join(",")));
    } else if quantize_anyway {
        pipeline.push_str(",quantize");
    }
    Ok(pipeline)
}

/// Runs `npuc compile`.
pub fn compile(args: CompileArgs) -> Result<(), DriverError> {
    let seed: u64 = args
        .seed
        .parse()
        .map_err(|_| DriverError::usage("--seed", format!("'{}' is not a non-negative integer", args.seed)))?;
    let output = output_kind(&args.output, args.emit.as_deref(), args.target.as_deref())?;
    let target = args.target.as_deref().map(crate::targets::resolve).transpose()?;
    let mut module = model_io::load(&args.model)?;
    // An NPU runs integers: a float model is quantized on the way (unless the user's own
    // pipeline already does).
    let quantize = target.is_some() && is_float_model(&module) && !args.passes.contains("quantize");
    let pipeline = full_pipeline(&args.passes, args.compression.as_deref(), args.calibration.as_deref(), quantize)?;
    let passes = crate::opt::build_pipeline(&pipeline)?;
    // `args.verify_each` is implied: compile never writes a model the verifier rejects.
    let _ = args.verify_each;
    let instrumentation = Instrumentation {
        verify_each: true,
        print_after_all: false,
        print_after: Vec::new(),
        timing: args.timing,
        check_numerics: args.check_numerics,
        seed,
    };
    // One cache of encoded weight streams for every stage's estimate, the lowering and the
    // final estimate.
    let streams = std::sync::Arc::new(npuc_npu::perf::WeightStreams::default());
    let providers: Vec<Box<dyn npuc_pass::CostProvider>> = match &target {
        Some(t) => vec![Box::new(npuc_npu::perf::SimulatedCost { target: t.clone(), streams: streams.clone() })],
        None => Vec::new(),
    };
    let report = crate::opt::run_pipeline(&mut module, passes, instrumentation, &args.model, providers)?;
    let npu = match (output, &target) {
        (Output::Npu, Some(t)) => {
            Some(crate::npu::lower_and_write(&module, t, &pipeline, &report, &streams, &args.model, &args.output)?)
        }
        (Output::Model(format), _) => {
            let bytes = model_io::render(&module, format, args.full_constants).map_err(|e| e.in_file(&args.output))?;
            model_io::write_output(&args.output, &bytes)?;
            None
        }
        (Output::Npu, None) => return Err(DriverError::internal("a .npu output without a target")),
    };

    let stages = &report.stages.stages;
    let (first, last) = match (stages.first(), stages.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(DriverError::internal("the pass manager recorded no stages")),
    };
    let name = args.model.file_stem().map_or_else(|| args.model.display().to_string(), |s| s.to_string_lossy().into());
    let summary = Summary::new(&name, first, last);
    let text = if args.json {
        let r = Report {
            model: args.model.display().to_string(),
            output: args.output.display().to_string(),
            pipeline: &pipeline,
            stages,
            summary: &summary,
            npu: npu.as_ref().map(|n| &n.report),
        };
        serde_json::to_string_pretty(&r).map_err(|e| DriverError::internal(e.to_string()))? + "\n"
    } else {
        let npu_lines = npu.as_ref().map(|n| n.text.clone()).unwrap_or_default();
        format!("{}{}\n{npu_lines}", report.stages.to_text(), summary.line)
    };
    // The model owns stdout when written there; the report then goes to stderr.
    if args.output == Path::new("-") {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ops: usize, parameters: u64, macs: u64) -> StageRecord {
        StageRecord {
            stage: "x".into(),
            ops,
            parameters,
            constant_bytes: parameters * 4,
            macs,
            peak_activation_bytes: 0,
            costs: Vec::new(),
            graphs: Vec::new(),
            time_ms: None,
            numerics: None,
        }
    }

    #[test]
    fn summary_scales_both_mac_counts_by_the_input_unit() {
        let s = Summary::new("sesr-m5", &record(30, 320_695, 13_030_000_000), &record(18, 13_703, 570_000_000));
        assert_eq!(
            s.line,
            "sesr-m5: 30 ops -> 18, 320695 params -> 13703, constants 1.28 MB -> 54.8 KB, 13.03 G MACs -> 0.57 G (22.9x fewer)"
        );
        assert_eq!(s.mac_reduction, Some(13_030_000_000.0 / 570_000_000.0));
    }

    #[test]
    fn summary_names_unchanged_removed_and_grown_work() {
        assert!(Summary::new("m", &record(2, 0, 500), &record(1, 0, 500))
            .line
            .ends_with("500 MACs -> 500 (unchanged)"));
        let gone = Summary::new("m", &record(2, 0, 500), &record(0, 0, 0));
        assert!(gone.line.ends_with("(all removed)") && gone.mac_reduction.is_none(), "{}", gone.line);
        let grown = Summary::new("m", &record(1, 0, 40_000), &record(1, 0, 60_000));
        assert!(grown.line.ends_with("40.00 K MACs -> 60.00 K (1.5x more)"), "{}", grown.line);
    }

    #[test]
    fn byte_counts_read_in_decimal_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(54_812), "54.8 KB");
        assert_eq!(bytes(1_282_780), "1.28 MB");
        assert_eq!(bytes(3_000_000_000), "3.00 GB");
    }

    #[test]
    fn output_format_follows_emit_then_extension() {
        assert_eq!(output_format(Path::new("a.nir"), Some("tflite")).unwrap(), Format::Tflite);
        assert_eq!(output_format(Path::new("a.tflite"), None).unwrap(), Format::Tflite);
        assert_eq!(output_format(Path::new("-"), None).unwrap(), Format::Nir);
        assert!(output_format(Path::new("a.dot"), None).is_err());
        assert!(output_format(Path::new("a.tflite"), Some("dot")).is_err());
        assert_eq!(output_format(Path::new("a.mlir"), None).is_ok(), cfg!(feature = "mlir"));
        assert_eq!(output_format(Path::new("-"), Some("mlir")).is_ok(), cfg!(feature = "mlir"));
        assert!(output_format(Path::new("-"), Some("tflite")).is_err());
    }

    #[test]
    fn a_target_means_a_npu_artifact_and_a_npu_artifact_needs_a_target() {
        let t = Some("ethos-u55-128");
        assert_eq!(output_kind(Path::new("m.npu"), None, t).unwrap(), Output::Npu);
        assert_eq!(output_kind(Path::new("m.bin"), Some("npu"), t).unwrap(), Output::Npu);
        assert!(output_kind(Path::new("m.tflite"), None, t).is_err());
        assert!(output_kind(Path::new("-"), None, t).is_err());
        assert!(output_kind(Path::new("m.npu"), Some("tflite"), t).is_err());
        assert!(output_kind(Path::new("m.npu"), None, None).is_err());
        assert!(output_kind(Path::new("m.bin"), Some("npu"), None).is_err());
        assert_eq!(output_kind(Path::new("m.tflite"), None, None).unwrap(), Output::Model(Format::Tflite));
    }
}
