//! `npuc run`: execute a model with the reference interpreter.

use std::fmt::Write as _;
use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use npuc_interp::{random_tensor, Interpreter, Options, Tensor};
use npuc_ir::Module;

use crate::error::DriverError;
use crate::model_io;
use npuc_interp::npy;

/// Makes a name safe as a file name: anything but ASCII letters, digits, `.`, `_`, `-`
/// becomes `_`.
fn file_stem(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if s.is_empty() {
        "output".into()
    } else {
        s
    }
}

/// One-line statistics of a tensor: min, max, mean.
pub fn summary(t: &Tensor) -> String {
    let v = t.data.to_f64_vec();
    if v.is_empty() {
        return "empty".into();
    }
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &x in &v {
        lo = lo.min(x);
        hi = hi.max(x);
        sum += x;
    }
    format!("min {lo:.6} max {hi:.6} mean {:.6}", sum / v.len() as f64)
}

/// Arguments of `npuc run`.
pub struct RunArgs {
    /// The model file.
    pub model: PathBuf,
    /// `NAME=FILE.npy` pairs.
    pub inputs: Vec<String>,
    /// Seed for inputs not given.
    pub seed: u64,
    /// Directory for the outputs, if any.
    pub out_dir: Option<PathBuf>,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

/// Runs the model and prints a summary of each output; writes them as `.npy` when asked.
pub fn run(m: &Module, args: &RunArgs) -> Result<String, DriverError> {
    let file = args.model.display().to_string();
    let g = m.main().ok_or_else(|| DriverError::input(&file, "model has no graph"))?;
    let interp = Interpreter::for_module(m, 0, &Options { threads: args.threads })
        .map_err(|e| DriverError::input(&file, format!("cannot execute: {e}")))?;

    // Inputs are named by tensor name, signature name or position.
    let sig = m.signatures.iter().find(|s| s.graph == 0);
    let mut given: Vec<Option<Tensor>> = vec![None; g.inputs.len()];
    for spec in &args.inputs {
        let (name, path) =
            spec.split_once('=').ok_or_else(|| DriverError::usage(spec, "--input takes NAME=FILE.npy"))?;
        let index = g
            .inputs
            .iter()
            .position(|&v| g.value(v).name == name)
            .or_else(|| {
                sig.and_then(|s| s.inputs.iter().find(|(n, _)| n == name))
                    .and_then(|(_, v)| g.inputs.iter().position(|x| x == v))
            })
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < g.inputs.len()))
            .ok_or_else(|| {
                let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
                DriverError::usage(spec, format!("no input named '{name}' (inputs: {})", names.join(", ")))
            })?;
        let ty = &g.value(g.inputs[index]).ty;
        let bytes = std::fs::read(path).map_err(|e| DriverError::input(path, format!("cannot read: {e}")))?;
        let t = npy::read(&bytes, ty.dtype).map_err(|e| DriverError::input(path, e))?;
        if t.shape != ty.shape {
            return Err(DriverError::input(
                path,
                format!("array has shape {:?} but input '{name}' is {:?}", t.shape, ty.shape),
            ));
        }
        given[index] = Some(t);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let inputs: Vec<Tensor> = given
        .into_iter()
        .zip(&g.inputs)
        .map(|(t, &v)| t.unwrap_or_else(|| random_tensor(&g.value(v).ty, &mut rng)))
        .collect();

    let outputs = interp.run(inputs).map_err(|e| DriverError::input(&file, e.to_string()))?;

    let mut report = String::new();
    let mut used = std::collections::HashSet::new();
    for (i, (t, &v)) in outputs.iter().zip(&g.outputs).enumerate() {
        let name = sig
            .and_then(|s| s.outputs.iter().find(|(_, x)| *x == v).map(|(n, _)| n.clone()))
            .unwrap_or_else(|| g.value(v).name.clone());
        let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        let _ = write!(report, "output {i} '{name}': {}[{shape}] {}", t.dtype(), summary(t));
        if let Some(dir) = &args.out_dir {
            let mut stem = format!("{i}-{}", file_stem(&name));
            while !used.insert(stem.clone()) {
                stem.push('_');
            }
            let path = dir.join(format!("{stem}.npy"));
            let bytes = npy::write(t).map_err(|e| DriverError::internal(format!("cannot encode output {i}: {e}")))?;
            std::fs::create_dir_all(dir).map_err(|e| DriverError::input(dir.display().to_string(), e.to_string()))?;
            model_io::write_output(&path, &bytes)?;
            let _ = write!(report, " -> {}", path.display());
        }
        report.push('\n');
    }
    Ok(report)
}
