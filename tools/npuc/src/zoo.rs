//! `npuc zoo`: builds a model from `npuc-zoo` and writes it like `convert` does.
//!
//! Numeric options are taken as text and parsed here, not by clap, so a bad value is the
//! driver's usual one-line error (exit 2) rather than clap's multi-line usage message.

use std::path::{Path, PathBuf};

use npuc_zoo::{SesrActivation, SesrConfig, SesrVariant, ZooError};

use crate::error::DriverError;
use crate::model_io::{self, Format};
use crate::Emit;

/// Options of `npuc zoo`.
#[derive(clap::Args)]
pub struct ZooArgs {
    /// Model name, e.g. sesr-m5 (see --list).
    model: Option<String>,
    /// Draw a model from a search space instead (classification, super-resolution,
    /// keyword-spotting, detection); --seed picks the sample.
    #[arg(long, value_name = "SPACE", conflicts_with_all = ["model", "input", "expansion", "batch"])]
    space: Option<String>,
    /// With --space: also write the sample's per-layer compression plan (bits and
    /// sparsity, a compression config for `npuc compile --compression`).
    #[arg(long, value_name = "FILE", requires = "space")]
    compression_out: Option<PathBuf>,
    /// List the models and exit.
    #[arg(long)]
    list: bool,
    /// Upsampling factor: 2 or 4.
    #[arg(long, default_value = "2", allow_hyphen_values = true)]
    scale: String,
    /// Low-resolution input size as HEIGHTxWIDTH, e.g. 1080x1920.
    #[arg(long, value_name = "HxW", allow_hyphen_values = true)]
    input: Option<String>,
    /// Batch size.
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    batch: String,
    /// Seed of the weights; equal seeds give byte-identical models.
    #[arg(long, default_value = "0", allow_hyphen_values = true)]
    seed: String,
    /// Expansion width p inside the linear blocks (default: 256 for M3/M5/M7, 64 for M11/XL).
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    expansion: Option<String>,
    /// Nonlinearity after each body block: prelu (float model) or relu (int8 deployment).
    #[arg(long, default_value = "prelu")]
    activation: String,
    /// Output file (.tflite, .nir or .dot); `-` writes .nir to stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Output format; by default taken from the output file's extension.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Write every constant in full in .nir output (default: large ones as a hash).
    #[arg(long)]
    full_constants: bool,
}

/// Runs `npuc zoo`.
pub fn zoo(args: ZooArgs) -> Result<(), DriverError> {
    if args.list {
        for (name, what) in npuc_zoo::list() {
            println!("{name:<10} {what}");
        }
        let spaces = npuc_zoo::space::Space::ALL.map(|s| s.name()).join(", ");
        println!("search spaces (--space NAME --seed N): {spaces}");
        return Ok(());
    }
    let output = args.output.as_deref().ok_or_else(|| DriverError::usage("-o", "an output file is required"))?;
    let format = match args.emit {
        Some(e) => e.into(),
        None if output == Path::new("-") => Format::Nir,
        None => Format::from_extension(output).ok_or_else(|| {
            DriverError::usage(
                output.display().to_string(),
                "cannot tell the output format from the extension (use .tflite, .nir or .dot, or --emit)",
            )
        })?,
    };
    let (module, description) = match &args.space {
        Some(space) => {
            let space = npuc_zoo::space::Space::from_name(space).map_err(zoo_error)?;
            let sample = npuc_zoo::space::sample(space, number("--seed", &args.seed)?).map_err(zoo_error)?;
            if let Some(path) = &args.compression_out {
                model_io::write_output(path, sample.compression_toml().as_bytes())?;
            }
            (sample.module, format!("{} (seed {})", sample.description, sample.seed))
        }
        None => {
            let config = config(&args)?;
            (npuc_zoo::sesr_module(&config).map_err(zoo_error)?, config.describe())
        }
    };
    let bytes = model_io::render(&module, format, args.full_constants).map_err(|e| e.in_file(output))?;
    model_io::write_output(output, &bytes)?;
    if output != Path::new("-") {
        let stats = module.main().map(npuc_ir::stats::graph_stats).unwrap_or_default();
        println!(
            "{}: {} ops, {} parameters, {} MACs -> {}",
            description,
            stats.ops,
            stats.parameters,
            stats.macs,
            output.display()
        );
    }
    Ok(())
}

/// The builder config the options describe, every value checked.
fn config(args: &ZooArgs) -> Result<SesrConfig, DriverError> {
    let name = args
        .model
        .as_deref()
        .ok_or_else(|| DriverError::usage("zoo", "give a model name or --space (see npuc zoo --list)"))?;
    let variant = SesrVariant::from_name(name).ok_or_else(|| {
        zoo_error(ZooError::UnknownModel {
            name: name.to_string(),
            known: SesrVariant::ALL.map(SesrVariant::name).join(", "),
        })
    })?;
    let input = args.input.as_deref().ok_or_else(|| DriverError::usage("--input", "the input size HxW is required"))?;
    let (height, width) = parse_size(input)?;
    let config = SesrConfig {
        variant,
        scale: number("--scale", &args.scale)?,
        height,
        width,
        batch: number("--batch", &args.batch)?,
        seed: number("--seed", &args.seed)?,
        expansion: args.expansion.as_deref().map(|p| number("--expansion", p)).transpose()?,
        activation: SesrActivation::from_name(&args.activation).map_err(zoo_error)?,
    };
    config.validate().map_err(zoo_error)?;
    Ok(config)
}

/// Parses `HEIGHTxWIDTH`.
fn parse_size(text: &str) -> Result<(usize, usize), DriverError> {
    let bad = || DriverError::usage("--input", format!("'{text}' is not HEIGHTxWIDTH (e.g. 1080x1920)"));
    let (h, w) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    Ok((parse(h)?, parse(w)?))
}

/// Parses a non-negative integer option.
fn number<T: std::str::FromStr>(option: &str, text: &str) -> Result<T, DriverError> {
    text.trim()
        .parse()
        .map_err(|_| DriverError::usage(option, format!("'{text}' is not a non-negative integer (or is too large)")))
}

/// A builder error as a usage error naming the option at fault.
fn zoo_error(e: ZooError) -> DriverError {
    let option = match &e {
        ZooError::UnknownModel { .. } => "zoo",
        ZooError::UnknownSpace { .. } => "--space",
        ZooError::BadScale { .. } => "--scale",
        ZooError::BadSize { what: "height" | "width", .. } => "--input",
        ZooError::BadSize { what: "batch", .. } => "--batch",
        ZooError::BadSize { .. } => "--expansion",
        ZooError::UnknownActivation { .. } => "--activation",
        ZooError::Ir { .. } => return DriverError::internal(e.to_string()),
    };
    DriverError::usage(option, e.to_string())
}
