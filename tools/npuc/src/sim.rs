//! `npuc sim`: run a `.npu` artifact on the functional simulator.
//!
//! Inputs are given as in `npuc run` (`NAME=FILE.npy`, by tensor name or position; the rest
//! random from `--seed`, drawn in input order with the same generator), so `npuc run` on the
//! quantized model and `npuc sim` on its artifact print the same outputs for the same seed.

use std::fmt::Write as _;
use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use npuc_interp::{npy, random_tensor, Tensor};
use npuc_npu::{artifact, sim};

use crate::error::DriverError;
use crate::run::summary;

/// Arguments of `npuc sim`.
pub struct SimArgs {
    /// The artifact.
    pub model: PathBuf,
    /// `NAME=FILE.npy` pairs.
    pub inputs: Vec<String>,
    /// Seed for inputs not given.
    pub seed: u64,
    /// Directory for the outputs (`<index>.npy`), if any.
    pub out_dir: Option<PathBuf>,
}

/// Reads the artifact, simulates it and summarizes each output.
pub fn sim(args: &SimArgs) -> Result<String, DriverError> {
    let file = args.model.display().to_string();
    let p = artifact::read_file(&args.model).map_err(|e| match e {
        artifact::ArtifactError::Io { source, .. } => DriverError::input(&file, format!("cannot read: {source}")),
        e => DriverError::input(&file, e.to_string()),
    })?;
    let mut given: Vec<Option<Tensor>> = vec![None; p.inputs.len()];
    for spec in &args.inputs {
        let (name, path) =
            spec.split_once('=').ok_or_else(|| DriverError::usage(spec, "--input takes NAME=FILE.npy"))?;
        let index = p
            .inputs
            .iter()
            .position(|d| d.name == name)
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < p.inputs.len()))
            .ok_or_else(|| {
                let names: Vec<&str> = p.inputs.iter().map(|d| d.name.as_str()).collect();
                DriverError::usage(spec, format!("no input named '{name}' (inputs: {})", names.join(", ")))
            })?;
        let want = &p.inputs[index].tensor;
        let bytes = std::fs::read(path).map_err(|e| DriverError::input(path, format!("cannot read: {e}")))?;
        let t = npy::read(&bytes, want.dtype).map_err(|e| DriverError::input(path, e))?;
        if t.shape != want.shape {
            return Err(DriverError::input(
                path,
                format!("array has shape {:?} but input '{name}' is {:?}", t.shape, want.shape),
            ));
        }
        given[index] = Some(t);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let inputs: Vec<Tensor> = given
        .into_iter()
        .zip(&p.inputs)
        .map(|(t, d)| t.unwrap_or_else(|| random_tensor(&d.tensor.tensor_type(), &mut rng)))
        .collect();
    let outputs = sim::simulate(&p, &inputs).map_err(|e| DriverError::input(&file, e.to_string()))?;
    let mut report = String::new();
    for (i, (t, d)) in outputs.iter().zip(&p.outputs).enumerate() {
        let shape = t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
        let _ = write!(report, "output {i} '{}': {}[{shape}] {}", d.name, t.dtype(), summary(t));
        if let Some(dir) = &args.out_dir {
            let path = dir.join(format!("{i}.npy"));
            let bytes = npy::write(t).map_err(|e| DriverError::internal(format!("cannot encode output {i}: {e}")))?;
            std::fs::create_dir_all(dir).map_err(|e| DriverError::input(dir.display().to_string(), e.to_string()))?;
            crate::model_io::write_output(&path, &bytes)?;
            let _ = write!(report, " -> {}", path.display());
        }
        report.push('\n');
    }
    Ok(report)
}
