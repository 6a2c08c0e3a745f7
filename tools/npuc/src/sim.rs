//! `npuc sim`: run a `.npu` artifact on the functional simulator.
//!
//! Inputs are given as in `npuc run` (`NAME=FILE.npy`, by tensor name or position; the rest
//! random from `--seed`, drawn in input order with the same generator), so `npuc run` on the
//! quantized model and `npuc sim` on its artifact print the same outputs for the same seed.

use std::fmt::Write as _;
use std::path::PathBuf;

use npuc_interp::npy;
use npuc_npu::{artifact, sim};

use crate::error::DriverError;
use crate::run::{gather_inputs, summary, InputSlot};

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
    let slots: Vec<InputSlot> =
        p.inputs.iter().map(|d| InputSlot { names: vec![d.name.clone()], ty: d.tensor.tensor_type() }).collect();
    let inputs = gather_inputs(&args.inputs, &slots, args.seed)?;
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
