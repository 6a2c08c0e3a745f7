//! `npuc opt`: run a pass pipeline over a model and write the result.

use std::path::{Path, PathBuf};

use npuc_ir::Module;
use npuc_pass::{parse_pipeline, Instrumentation, Pass, PassError, PassManager, PipelineReport};

use crate::error::DriverError;
use crate::model_io::{self, Format};

/// Arguments of `npuc opt`.
pub struct OptArgs {
    /// Input model.
    pub model: PathBuf,
    /// Pipeline text.
    pub passes: String,
    /// Output path (`-`: .nir on stdout).
    pub output: PathBuf,
    /// Instrumentation flags.
    pub instrumentation: Instrumentation,
    /// Print the stage table.
    pub stage_table: bool,
    /// Print the stage table as JSON.
    pub json: bool,
}

fn usage(e: PassError) -> DriverError {
    DriverError::usage("--passes", e.to_string())
}

/// Parses pipeline text and builds its passes from the registry; bad text, an unknown pass
/// or a bad option is a usage error on `--passes`.
pub fn build_pipeline(text: &str) -> Result<Vec<Box<dyn Pass>>, DriverError> {
    let entries = parse_pipeline(text).map_err(usage)?;
    crate::passes::registry().build_pipeline(&entries).map_err(usage)
}

/// Runs `passes` over `module` (loaded from `model`) with `instrumentation`, printing IR
/// dumps to stderr and each pass diagnostic as a `note:` line on stderr. A pass that fails
/// or leaves invalid IR is an internal error (a bug in npuc); a pass that cannot handle the
/// model or its data, and anything else, blames the input.
pub fn run_pipeline(
    module: &mut Module,
    passes: Vec<Box<dyn Pass>>,
    instrumentation: Instrumentation,
    model: &Path,
    providers: Vec<Box<dyn npuc_pass::CostProvider>>,
) -> Result<PipelineReport, DriverError> {
    let mut pm = PassManager::new(passes).with_instrumentation(instrumentation);
    for p in providers {
        pm.add_cost_provider(p);
    }
    let report = pm.run(module, &mut std::io::stderr().lock()).map_err(|e| match e {
        PassError::Verify { .. } | PassError::Failed { .. } => DriverError::internal(e.to_string()),
        other => DriverError::input(model.display().to_string(), other.to_string()),
    })?;
    for d in &report.diagnostics {
        eprintln!("note: {d}");
    }
    Ok(report)
}

/// Loads, optimizes and writes the model; prints instrumentation and the stage table.
pub fn opt(args: OptArgs) -> Result<(), DriverError> {
    let registry = crate::passes::registry();
    let passes = build_pipeline(&args.passes)?;
    for name in &args.instrumentation.print_after {
        registry.lookup(name).map_err(|e| DriverError::usage("--print-after", e.to_string()))?;
    }
    let to_stdout = args.output == Path::new("-");
    let format = if to_stdout {
        Format::Nir
    } else {
        Format::from_extension(&args.output).ok_or_else(|| {
            DriverError::usage(
                args.output.display().to_string(),
                "cannot tell the output format from the extension (use .tflite, .nir or .dot)",
            )
        })?
    };
    let mut module = model_io::load(&args.model)?;
    let show_table =
        args.stage_table || args.json || args.instrumentation.timing || args.instrumentation.check_numerics;
    let report = run_pipeline(&mut module, passes, args.instrumentation, &args.model, Vec::new())?;
    let bytes = model_io::render(&module, format, false).map_err(|e| e.in_file(&args.output))?;
    model_io::write_output(&args.output, &bytes)?;
    if show_table {
        let table = if args.json { report.stages.to_json() + "\n" } else { report.stages.to_text() };
        // The model owns stdout when written there; the table then goes to stderr.
        if to_stdout {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    Ok(())
}
