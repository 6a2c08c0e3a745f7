//! Calibration: the float graph runs on sample inputs through `npuc-interp` while an
//! [`Observer`] gathers statistics for every float value.
//!
//! Samples come from a directory of `.npy` files or, by default, are synthetic: `samples`
//! tensors per input from a ChaCha8 stream seeded with `seed`, uniform in `[-1, 1]` for
//! float inputs and uniform over the whole range for integer inputs (the same generator
//! as `npuc run --seed`). Synthetic data is only a stand-in: real ranges need real data.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use npuc_interp::{random_tensor, Interpreter, Observer, Options, Tensor};
use npuc_ir::{Graph, Module, OpId, ValueId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::observer::ValueStats;

/// Where calibration inputs come from.
#[derive(Clone, Debug, PartialEq)]
pub enum CalibrationData {
    /// `count` seeded random samples.
    Synthetic {
        /// Number of samples.
        count: usize,
        /// Seed of the stream.
        seed: u64,
    },
    /// `.npy` files in a directory (see the module docs of the crate).
    Dir(PathBuf),
}

/// Samples at or above which a progress bar is shown (on a terminal).
const PROGRESS_MIN_SAMPLES: usize = 64;

/// The sample inputs: one `Vec<Tensor>` (one tensor per graph input) per sample.
pub fn load_samples(g: &Graph, data: &CalibrationData) -> Result<Vec<Vec<Tensor>>, String> {
    match data {
        CalibrationData::Synthetic { count, seed } => {
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            Ok((0..*count)
                .map(|_| g.inputs.iter().map(|&v| random_tensor(&g.value(v).ty, &mut rng)).collect())
                .collect())
        }
        CalibrationData::Dir(dir) => load_dir(g, dir),
    }
}

/// `.npy` files directly in `dir`, sorted by name.
fn npy_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("calibration directory '{}': {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "npy"))
        .collect();
    files.sort();
    Ok(files)
}

fn read_sample(g: &Graph, input: ValueId, path: &Path) -> Result<Tensor, String> {
    let ty = &g.value(input).ty;
    let bytes = std::fs::read(path).map_err(|e| format!("calibration sample '{}': {e}", path.display()))?;
    let t = npuc_interp::npy::read(&bytes, ty.dtype)
        .map_err(|e| format!("calibration sample '{}' for input '{}': {e}", path.display(), g.value(input).name))?;
    if t.shape != ty.shape {
        return Err(format!(
            "calibration sample '{}' has shape {:?} but input '{}' expects {:?}",
            path.display(),
            t.shape,
            g.value(input).name,
            ty.shape
        ));
    }
    Ok(t)
}

fn load_dir(g: &Graph, dir: &Path) -> Result<Vec<Vec<Tensor>>, String> {
    if !dir.is_dir() {
        return Err(format!("calibration directory '{}' does not exist or is not a directory", dir.display()));
    }
    let mut per_input: Vec<Vec<PathBuf>> = Vec::new();
    if g.inputs.len() == 1 && !npy_files(dir)?.is_empty() {
        per_input.push(npy_files(dir)?);
    } else {
        for (i, &v) in g.inputs.iter().enumerate() {
            let by_name = dir.join(&g.value(v).name);
            let by_index = dir.join(i.to_string());
            let sub = if by_name.is_dir() {
                by_name
            } else if by_index.is_dir() {
                by_index
            } else {
                return Err(format!(
                    "calibration directory '{}' has no folder '{}' or '{i}' for input #{i}{}",
                    dir.display(),
                    g.value(v).name,
                    if g.inputs.len() == 1 { " (and no .npy files of its own)" } else { "" }
                ));
            };
            per_input.push(npy_files(&sub)?);
        }
    }
    let count = per_input.iter().map(Vec::len).min().unwrap_or(0);
    if count == 0 {
        return Err(format!("calibration directory '{}' holds no .npy samples", dir.display()));
    }
    if let Some((i, files)) = per_input.iter().enumerate().find(|(_, f)| f.len() != count) {
        return Err(format!(
            "calibration directory '{}': input #{i} has {} samples but another input has {count}",
            dir.display(),
            files.len()
        ));
    }
    (0..count)
        .map(|s| g.inputs.iter().zip(&per_input).map(|(&v, files)| read_sample(g, v, &files[s])).collect())
        .collect()
}

/// Collects [`ValueStats`] for every float value: min/max in the first phase, histograms
/// in the second.
struct Collector {
    stats: Vec<ValueStats>,
    histogram: bool,
}

impl Observer for Collector {
    fn observe(&mut self, _graph: &Graph, value: ValueId, _producer: Option<OpId>, tensor: &Tensor) {
        let Some(xs) = tensor.as_f32() else { return };
        let s = &mut self.stats[value.index()];
        if self.histogram {
            s.add_hist(xs);
        } else {
            s.add_minmax(xs);
        }
    }
}

/// Runs the calibration: statistics per value id (index = `ValueId::index`).
pub fn calibrate(g: &Graph, samples: &[Vec<Tensor>], histogram: bool) -> Result<Vec<ValueStats>, String> {
    calibrate_in(g, None, samples, histogram)
}

/// [`calibrate`] for graph `g` of a module whose graphs it may call through IF/WHILE:
/// `module` is the module and `g`'s index in it (`g` itself replaces that graph, since
/// the pass may already have edited it). Only `g`'s own values are observed.
pub fn calibrate_in(
    g: &Graph,
    module: Option<(&Module, usize)>,
    samples: &[Vec<Tensor>],
    histogram: bool,
) -> Result<Vec<ValueStats>, String> {
    let opts = Options { threads: 0 };
    let calls = g.op_ids().any(|id| !g.op(id).op.callees().is_empty());
    let view;
    let interp = match module {
        Some((m, gi)) if calls && gi < m.graphs.len() => {
            let mut mm = m.clone();
            mm.graphs[gi] = g.clone();
            view = mm;
            Interpreter::for_module(&view, gi, &opts)
        }
        _ => Interpreter::new(g, &opts),
    }
    .map_err(|e| format!("cannot run the float graph: {e}"))?;
    let mut c = Collector { stats: vec![ValueStats::default(); g.value_count()], histogram: false };
    let phases: &[bool] = if histogram { &[false, true] } else { &[false] };
    let bar = (std::io::stderr().is_terminal() && samples.len() >= PROGRESS_MIN_SAMPLES).then(|| {
        let pb = indicatif::ProgressBar::new((samples.len() * phases.len()) as u64);
        pb.set_message("calibrating");
        pb
    });
    for &phase in phases {
        c.histogram = phase;
        for (i, s) in samples.iter().enumerate() {
            interp
                .run_observed(s.clone(), Some(&mut c))
                .map_err(|e| format!("calibration sample #{i} failed to run: {e}"))?;
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(c.stats)
}
