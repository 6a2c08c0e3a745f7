//! `npuc`: the compiler driver.
//!
//! Each subcommand is a thin layer over the library crates: it loads a model, calls into
//! them, and writes results atomically. Errors surface as one line,
//! `error: <file>: <what> (<where>)`, with exit code 2 for bad input and 1 for internal
//! failures; the driver never panics on user input.

mod compile;
mod error;
mod inspect;
mod model_io;
mod npu;
mod opt;
mod passes;
mod run;
mod sim;
mod targets;
mod zoo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use error::DriverError;
use model_io::Format;

/// npuc — a compiler for edge neural-network accelerators.
#[derive(Parser)]
#[command(name = "npuc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Summarize a model: ops, tensors, parameters, MACs, constants, inputs and outputs.
    Inspect {
        /// Model file (.tflite or .nir).
        model: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// List every tensor (text mode).
        #[arg(long)]
        tensors: bool,
    },
    /// Convert a model between formats (.tflite, .nir text IR, .dot Graphviz, .mlir TOSA).
    Convert {
        /// Input model (.tflite or .nir).
        input: PathBuf,
        /// Output file; `-` writes text formats to stdout.
        #[arg(short, long)]
        output: PathBuf,
        /// Output format; by default taken from the output file's extension.
        #[arg(long, value_enum)]
        emit: Option<Emit>,
        /// Write every constant in full in .nir output (default: large ones as a hash).
        #[arg(long)]
        full_constants: bool,
    },
    /// Execute a model with the reference interpreter and summarize its outputs.
    Run {
        /// Model file (.tflite or .nir).
        model: PathBuf,
        /// An input as NAME=FILE.npy (NAME: tensor name, signature name or index);
        /// inputs not given are random from --seed.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Seed of the random inputs: integers uniform over the dtype, floats in [-1, 1].
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write each output as <index>-<name>.npy into this directory.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Worker threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Run a .npu artifact on the functional simulator and summarize its outputs.
    Sim {
        /// The artifact (.npu).
        model: PathBuf,
        /// An input as NAME=FILE.npy (NAME: tensor name or index); inputs not given are
        /// random from --seed, as in `npuc run`.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write each output as <index>.npy into this directory.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Compile a model: run the default pipeline (or --passes) with the verifier after every
    /// pass, write the optimized model and print the stage table and a summary.
    Compile(compile::CompileArgs),
    /// Run a pass pipeline over a model and write the result (format from -o's extension).
    ///
    /// The registered passes and their options are listed below.
    Opt {
        /// Model file (.tflite or .nir).
        model: PathBuf,
        /// The pipeline: pass names separated by commas, options in braces, e.g.
        /// `dce` or `name{option=value,option=value},dce`.
        #[arg(long, value_name = "PIPELINE")]
        passes: String,
        /// Output file (.tflite, .nir or .dot); `-` writes .nir to stdout.
        #[arg(short, long)]
        output: PathBuf,
        /// Run the IR verifier after every pass.
        #[arg(long)]
        verify_each: bool,
        /// Print the IR to stderr after every pass.
        #[arg(long)]
        print_after_all: bool,
        /// Print the IR to stderr after each pass with this name (repeatable).
        #[arg(long = "print-after", value_name = "NAME")]
        print_after: Vec<String>,
        /// Add each pass's wall time to the stage table.
        #[arg(long)]
        timing: bool,
        /// Run the interpreter before and after each pass on seeded random inputs and add
        /// each stage's max abs error and SQNR to the stage table.
        #[arg(long)]
        check_numerics: bool,
        /// Seed of the --check-numerics inputs (as `npuc run --seed`).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the stage table (stdout, or stderr when the model goes to stdout).
        #[arg(long)]
        stage_table: bool,
        /// Print the stage table as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a model of the zoo (SESR in expanded training-time form) and write it
    /// (format from -o's extension).
    Zoo(zoo::ZooArgs),
    /// List the NPU targets npuc knows (targets/*.toml, built in), or show one in full.
    Targets(targets::TargetsArgs),
    /// Print a model as text IR (.nir) on stdout.
    Print {
        /// Model file (.tflite or .nir).
        model: PathBuf,
        /// Print every constant in full instead of a hash and preview.
        #[arg(long)]
        full_constants: bool,
    },
}

/// Output formats of `convert`.
#[derive(Clone, Copy, ValueEnum)]
enum Emit {
    /// TFLite flatbuffer.
    Tflite,
    /// npuc text IR.
    Nir,
    /// Graphviz DOT of the main graph.
    Dot,
    /// MLIR of TOSA ops (builds with the `mlir` feature).
    Mlir,
}

impl From<Emit> for Format {
    fn from(e: Emit) -> Self {
        match e {
            Emit::Tflite => Format::Tflite,
            Emit::Nir => Format::Nir,
            Emit::Dot => Format::Dot,
            Emit::Mlir => Format::Mlir,
        }
    }
}

fn run(cli: Cli) -> Result<(), DriverError> {
    match cli.command {
        Command::Inspect { model, json, tensors } => {
            if model.extension().is_some_and(|e| e == "npu") {
                print!("{}", inspect::npu(&model, json)?);
                return Ok(());
            }
            let m = model_io::load(&model)?;
            let report = inspect::Report::new(&m);
            if json {
                let text = serde_json::to_string_pretty(&report).map_err(|e| DriverError::internal(e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", report.to_text(&model.display().to_string(), tensors));
            }
            Ok(())
        }
        Command::Convert { input, output, emit, full_constants } => {
            let m = model_io::load(&input)?;
            let format = match emit {
                Some(e) => e.into(),
                None => Format::from_extension(&output).ok_or_else(|| {
                    DriverError::usage(
                        output.display().to_string(),
                        "cannot tell the output format from the extension (use .tflite, .nir, .dot or .mlir, or --emit)",
                    )
                })?,
            };
            let bytes = model_io::render(&m, format, full_constants).map_err(|e| e.in_file(&input))?;
            model_io::write_output(&output, &bytes)
        }
        Command::Run { model, inputs, seed, output, threads } => {
            let m = model_io::load(&model)?;
            let args = run::RunArgs { model, inputs, seed, out_dir: output, threads };
            print!("{}", run::run(&m, &args)?);
            Ok(())
        }
        Command::Opt {
            model,
            passes,
            output,
            verify_each,
            print_after_all,
            print_after,
            timing,
            check_numerics,
            seed,
            stage_table,
            json,
        } => opt::opt(opt::OptArgs {
            model,
            passes,
            output,
            instrumentation: npuc_pass::Instrumentation {
                verify_each,
                print_after_all,
                print_after,
                timing,
                check_numerics,
                seed,
            },
            stage_table,
            json,
        }),
        Command::Sim { model, inputs, seed, output } => {
            print!("{}", sim::sim(&sim::SimArgs { model, inputs, seed, out_dir: output })?);
            Ok(())
        }
        Command::Compile(args) => compile::compile(args),
        Command::Zoo(args) => zoo::zoo(args),
        Command::Targets(args) => targets::targets(args),
        Command::Print { model, full_constants } => {
            let m = model_io::load(&model)?;
            let bytes = model_io::render(&m, Format::Nir, full_constants).map_err(|e| e.in_file(&model))?;
            model_io::write_output(std::path::Path::new("-"), &bytes)
        }
    }
}

fn main() -> ExitCode {
    // The pass list in `opt --help` comes from the registry, so it is attached at run time.
    let matches = Cli::command().mut_subcommand("opt", |c| c.after_long_help(passes::help_text())).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever a library's message looks like: scripts and tests read
            // the first line of stderr as the whole diagnosis.
            let text = e.to_string();
            let line = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            eprintln!("error: {line}");
            ExitCode::from(e.exit_code())
        }
    }
}
