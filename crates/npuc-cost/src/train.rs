//! Training, evaluation and checkpoints of the PerfSAGE network.
//!
//! Targets are `ln(label)` and the loss is the mean absolute difference of logs, which is
//! the relative error for small errors and does not let a 1080p model's microseconds drown
//! a keyword spotter's (a MAPE-style loss, as the issue asks). Training is seeded end to
//! end (weights, split, batch order) and keeps the weights of the best validation epoch,
//! stopping after `patience` epochs without improvement.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::features::{GraphFeatures, NODE_FEATURES, TARGET_FEATURES};
use crate::model::{Batch, Input, ModelConfig, PerfSage};

/// One labelled graph: a model on a target with its measured metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The graph's features.
    pub graph: GraphFeatures,
    /// The target's features.
    pub target: Vec<f32>,
    /// Label per metric, in the model's metric order; every label is positive.
    pub labels: Vec<f64>,
}

/// Why training, evaluation or a checkpoint failed.
#[derive(Debug, Error)]
pub enum CostError {
    /// The tensor library failed.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A checkpoint file could not be read or written.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The data cannot be used as given.
    #[error("{0}")]
    Data(String),
}

/// Training options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Upper bound on epochs.
    pub epochs: usize,
    /// Graphs per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// Share of the examples held out for early stopping.
    pub validation_share: f64,
    /// Seed of weights, split and batch order.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { epochs: 200, batch_size: 32, learning_rate: 2e-3, patience: 20, validation_share: 0.1, seed: 0 }
    }
}

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 0.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation MAPE in percent, averaged over metrics.
    pub validation_mape: f64,
}

/// Accuracy on one metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricScore {
    /// Mean absolute percentage error.
    pub mape: f64,
    /// Share of predictions within ±5% (percent).
    pub within_5: f64,
    /// Share within ±10% (percent).
    pub within_10: f64,
    /// Spearman rank correlation of predictions and labels.
    pub spearman: f64,
    /// Number of examples.
    pub count: usize,
}

/// Mean and standard deviation of each column (std never below 1e-3, so constant columns
/// stay finite).
fn column_stats(rows: impl Iterator<Item = Vec<f32>>, width: usize) -> Vec<(f32, f32)> {
    let (mut sum, mut sq, mut n) = (vec![0f64; width], vec![0f64; width], 0f64);
    for r in rows {
        for (i, &x) in r.iter().enumerate() {
            sum[i] += f64::from(x);
            sq[i] += f64::from(x) * f64::from(x);
        }
        n += 1.0;
    }
    (0..width)
        .map(|i| {
            let mean = if n > 0.0 { sum[i] / n } else { 0.0 };
            let var = if n > 0.0 { sq[i] / n - mean * mean } else { 1.0 };
            (mean as f32, var.max(0.0).sqrt().max(1e-3) as f32)
        })
        .collect()
}

fn batch_of(examples: &[&Example], cfg: &ModelConfig) -> Result<(Batch, Tensor), CostError> {
    let inputs: Vec<Input> = examples.iter().map(|e| Input { graph: &e.graph, target: &e.target }).collect();
    let batch = Batch::new(&inputs, cfg, &Device::Cpu)?;
    let mut logs = Vec::with_capacity(examples.len() * cfg.metrics.len());
    for e in examples {
        if e.labels.len() != cfg.metrics.len() || e.labels.iter().any(|&y| y.is_nan() || y <= 0.0 || y.is_infinite()) {
            return Err(CostError::Data(format!(
                "an example has labels {:?}; expected {} positive values ({})",
                e.labels,
                cfg.metrics.len(),
                cfg.metrics.join(", ")
            )));
        }
        logs.extend(e.labels.iter().map(|&y| y.ln() as f32));
    }
    let labels = Tensor::from_vec(logs, (examples.len(), cfg.metrics.len()), &Device::Cpu)?;
    Ok((batch, labels))
}

/// Predicted metrics (not logs) for `examples`, one row each.
pub fn predict(model: &PerfSage, examples: &[&Example], batch_size: usize) -> Result<Vec<Vec<f64>>, CostError> {
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let inputs: Vec<Input> = chunk.iter().map(|e| Input { graph: &e.graph, target: &e.target }).collect();
        let batch = Batch::new(&inputs, &model.config, &Device::Cpu)?;
        for row in model.forward(&batch)?.to_vec2::<f32>()? {
            out.push(row.into_iter().map(|x| f64::from(x).exp()).collect());
        }
    }
    Ok(out)
}

/// Ranks with ties averaged.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's ρ: Pearson correlation of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let (va, vb): (f64, f64) = (ra.iter().map(|x| (x - ma).powi(2)).sum(), rb.iter().map(|y| (y - mb).powi(2)).sum());
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Scores of predictions against labels, per metric.
pub fn score(predictions: &[Vec<f64>], examples: &[&Example], metrics: &[String]) -> BTreeMap<String, MetricScore> {
    let mut out = BTreeMap::new();
    for (m, name) in metrics.iter().enumerate() {
        let pred: Vec<f64> = predictions.iter().map(|p| p[m]).collect();
        let label: Vec<f64> = examples.iter().map(|e| e.labels[m]).collect();
        let err: Vec<f64> = pred.iter().zip(&label).map(|(p, y)| ((p - y) / y).abs()).collect();
        let n = err.len().max(1) as f64;
        out.insert(
            name.clone(),
            MetricScore {
                mape: 100.0 * err.iter().sum::<f64>() / n,
                within_5: 100.0 * err.iter().filter(|&&e| e <= 0.05).count() as f64 / n,
                within_10: 100.0 * err.iter().filter(|&&e| e <= 0.10).count() as f64 / n,
                spearman: spearman(&pred, &label),
                count: err.len(),
            },
        );
    }
    out
}

/// Trains a network of shape `config` on `examples`; `progress` is called after each epoch.
pub fn train(
    mut config: ModelConfig,
    examples: &[Example],
    opts: &TrainOptions,
    mut progress: impl FnMut(&EpochRecord),
) -> Result<(PerfSage, Vec<EpochRecord>), CostError> {
    if examples.len() < 2 {
        return Err(CostError::Data(format!("{} examples; training needs at least 2", examples.len())));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut order: Vec<&Example> = examples.iter().collect();
    order.shuffle(&mut rng);
    let n_val = ((examples.len() as f64 * opts.validation_share).round() as usize).clamp(1, examples.len() - 1);
    let (val, mut train_set) = (order[..n_val].to_vec(), order[n_val..].to_vec());

    config.node_norm = column_stats(train_set.iter().flat_map(|e| e.graph.nodes.iter().cloned()), NODE_FEATURES.len());
    config.target_norm = column_stats(train_set.iter().map(|e| e.target.clone()), TARGET_FEATURES.len());
    let log_labels = train_set.iter().map(|e| e.labels.iter().map(|&y| y.max(f64::MIN_POSITIVE).ln() as f32).collect());
    config.label_norm = column_stats(log_labels, config.metrics.len());
    let model = PerfSage::new(config, opts.seed)?;
    let params = ParamsAdamW { lr: opts.learning_rate, weight_decay: 1e-5, ..Default::default() };
    let mut optimizer = AdamW::new(model.vars.all_vars(), params)?;

    let mut history = Vec::new();
    let (mut best, mut best_weights, mut since_best) = (f64::INFINITY, snapshot(&model.vars)?, 0);
    for epoch in 0..opts.epochs {
        train_set.shuffle(&mut rng);
        let (mut total, mut steps) = (0.0, 0);
        for chunk in train_set.chunks(opts.batch_size.max(1)) {
            let (batch, labels) = batch_of(chunk, &model.config)?;
            let loss = (model.forward(&batch)? - labels)?.abs()?.mean_all()?;
            optimizer.backward_step(&loss)?;
            total += f64::from(loss.to_scalar::<f32>()?);
            steps += 1;
        }
        let scores = score(&predict(&model, &val, 256)?, &val, &model.config.metrics);
        let validation_mape = scores.values().map(|s| s.mape).sum::<f64>() / scores.len().max(1) as f64;
        let record = EpochRecord { epoch, train_loss: total / f64::from(steps.max(1)), validation_mape };
        progress(&record);
        history.push(record);
        if validation_mape < best {
            (best, best_weights, since_best) = (validation_mape, snapshot(&model.vars)?, 0);
        } else {
            since_best += 1;
            if since_best >= opts.patience {
                break;
            }
        }
    }
    restore(&model.vars, &best_weights)?;
    Ok((model, history))
}

fn snapshot(vars: &VarMap) -> Result<BTreeMap<String, Tensor>, CostError> {
    let data = vars.data().lock().map_err(|_| CostError::Data("weights lock poisoned".into()))?;
    data.iter().map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?))).collect()
}

fn restore(vars: &VarMap, weights: &BTreeMap<String, Tensor>) -> Result<(), CostError> {
    let data = vars.data().lock().map_err(|_| CostError::Data("weights lock poisoned".into()))?;
    for (k, v) in data.iter() {
        v.set(&weights[k])?;
    }
    Ok(())
}

/// File names inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The configuration file beside the weights.
pub const CONFIG_FILE: &str = "config.json";

/// Writes `model` into `dir` as safetensors weights plus a JSON configuration.
pub fn save(model: &PerfSage, dir: &Path) -> Result<(), CostError> {
    let err = |p: &Path, e: &dyn std::fmt::Display| CostError::Checkpoint {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    let config = serde_json::to_string_pretty(&model.config).map_err(|e| err(dir, &e))?;
    let cpath = dir.join(CONFIG_FILE);
    std::fs::write(&cpath, config + "\n").map_err(|e| err(&cpath, &e))?;
    let wpath = dir.join(WEIGHTS_FILE);
    model.vars.save(&wpath).map_err(|e| err(&wpath, &e))
}

/// Reads a checkpoint written by [`save`].
pub fn load(dir: &Path) -> Result<PerfSage, CostError> {
    let cpath = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cpath)
        .map_err(|e| CostError::Checkpoint { path: cpath.display().to_string(), message: e.to_string() })?;
    let config: ModelConfig = serde_json::from_str(&text)
        .map_err(|e| CostError::Checkpoint { path: cpath.display().to_string(), message: e.to_string() })?;
    let mut vars = VarMap::new();
    let model = PerfSage::build(config, vars.clone(), &Device::Cpu)?;
    let wpath = dir.join(WEIGHTS_FILE);
    vars.load(&wpath)
        .map_err(|e| CostError::Checkpoint { path: wpath.display().to_string(), message: e.to_string() })?;
    Ok(model)
}

#[cfg(test)]
mod tests;
