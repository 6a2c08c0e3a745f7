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
/// Characters of a tensor name kept in an output file name.
const MAX_STEM_CHARS: usize = 120;

fn file_stem(name: &str) -> String {
    // File names are limited to 255 bytes and converter-made tensor names can be longer
    // (fused op chains): keep the first characters, the index prefix keeps names unique.
    let s: String = name
        .chars()
        .take(MAX_STEM_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
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

/// A model input as `--input` finds it: its names (the tensor's first, then aliases such as
/// the signature's) and its type.
pub struct InputSlot {
    /// Names the input answers to.
    pub names: Vec<String>,
    /// Its type (random inputs follow it; given arrays must match its shape).
    pub ty: npuc_ir::TensorType,
}

/// The inputs that `NAME=FILE.npy` specs give (by any name of a slot, or by position), the
/// others drawn from `seed` as `npuc run` draws them.
pub fn gather_inputs(specs: &[String], slots: &[InputSlot], seed: u64) -> Result<Vec<Tensor>, DriverError> {
    let mut given: Vec<Option<Tensor>> = vec![None; slots.len()];
    for spec in specs {
        let (name, path) =
            spec.split_once('=').ok_or_else(|| DriverError::usage(spec, "--input takes NAME=FILE.npy"))?;
        let index = slots
            .iter()
            .position(|s| s.names.iter().any(|n| n == name))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < slots.len()))
            .ok_or_else(|| {
                let names: Vec<&str> = slots.iter().filter_map(|s| s.names.first().map(String::as_str)).collect();
                DriverError::usage(spec, format!("no input named '{name}' (inputs: {})", names.join(", ")))
            })?;
        let ty = &slots[index].ty;
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(given.into_iter().zip(slots).map(|(t, s)| t.unwrap_or_else(|| random_tensor(&s.ty, &mut rng))).collect())
}

/// Runs the model and prints a summary of each output; writes them as `.npy` when asked.
pub fn run(m: &Module, args: &RunArgs) -> Result<String, DriverError> {
    let file = args.model.display().to_string();
    let g = m.main().ok_or_else(|| DriverError::input(&file, "model has no graph"))?;
    let interp = Interpreter::for_module(m, 0, &Options { threads: args.threads })
        .map_err(|e| DriverError::input(&file, format!("cannot execute: {e}")))?;

    // Inputs are named by tensor name, signature name or position.
    let sig = m.signatures.iter().find(|s| s.graph == 0);
    let slots: Vec<InputSlot> = g
        .inputs
        .iter()
        .map(|&v| {
            let mut names = vec![g.value(v).name.clone()];
            if let Some((n, _)) = sig.and_then(|s| s.inputs.iter().find(|(_, x)| *x == v)) {
                names.push(n.clone());
            }
            InputSlot { names, ty: g.value(v).ty.clone() }
        })
        .collect();
    let inputs = gather_inputs(&args.inputs, &slots, args.seed)?;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_file_stems_are_sanitized_and_short_enough_for_any_file_system() {
        assert_eq!(file_stem("PartitionedCall:0"), "PartitionedCall_0");
        assert_eq!(file_stem(""), "output");
        let long = "model/block_16/project/BatchNorm/FusedBatchNormV3;".repeat(8);
        let stem = file_stem(&long);
        assert_eq!(stem.len(), MAX_STEM_CHARS);
        assert!(stem.starts_with("model_block_16_project_BatchNorm"), "{stem}");
    }
}
