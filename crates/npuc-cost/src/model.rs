//! The PerfSAGE network in candle: op-type embedding plus node and target features, GraphSAGE
//! layers over the value edges, a sum+max readout, and one head per metric.
//!
//! Each layer aggregates predecessors and successors separately (a value's producer and its
//! readers play different roles in cost: a conv's cost depends on what feeds it, a spill on
//! who reads it) with the mean aggregator of GraphSAGE (Hamilton et al., NeurIPS 2017),
//! `h' = relu(W_s h + W_p mean_pred(h) + W_n mean_succ(h)) + h`; the residual keeps deeper
//! stacks trainable. The readout concatenates the sum over nodes (costs add up over ops)
//! and the max (peak memory is a max), then the target features again. Heads predict
//! `ln(metric)`, so a loss on their difference to `ln(label)` is a relative (MAPE-style)
//! error. PerfSAGE's own configuration (2 layers, mean aggregation over all neighbours,
//! mean readout) is [`ModelConfig::paper`], kept as a baseline.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::features::{GraphFeatures, NODE_FEATURES, OP_VOCABULARY, TARGET_FEATURES};

/// Factor on the sum readout: keeps it near the max readout's scale for graphs of tens to
/// hundreds of ops, so neither dominates the heads at initialization.
const SUM_SCALE: f64 = 1.0 / 16.0;

/// How a graph's node states become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// Sum and max over nodes, concatenated.
    SumMax,
    /// Mean over nodes (the paper's baseline).
    Mean,
}

/// Which neighbours a layer aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Neighbours {
    /// Predecessors and successors, each with its own weights.
    Directed,
    /// All neighbours together (the paper's baseline).
    Undirected,
}

/// Shape of the network; stored beside the weights in a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Width of node states.
    pub hidden: usize,
    /// GraphSAGE layers.
    pub layers: usize,
    /// Width of the op-type embedding.
    pub op_embedding: usize,
    /// Graph readout.
    pub readout: Readout,
    /// Neighbour aggregation.
    pub neighbours: Neighbours,
    /// Metric names, one head each, in output order.
    pub metrics: Vec<String>,
    /// Per node-feature column: mean and standard deviation over the training set.
    pub node_norm: Vec<(f32, f32)>,
    /// Per target-feature column: mean and standard deviation over the training set.
    pub target_norm: Vec<(f32, f32)>,
    /// Per metric: mean and standard deviation of `ln(label)` over the training set; heads
    /// predict the standardized log, so no head has to learn an offset of 20.
    pub label_norm: Vec<(f32, f32)>,
}

impl ModelConfig {
    /// npuc's configuration: 4 directed layers of 64, sum+max readout.
    pub fn npuc(metrics: Vec<String>) -> Self {
        ModelConfig {
            hidden: 64,
            layers: 4,
            op_embedding: 16,
            readout: Readout::SumMax,
            neighbours: Neighbours::Directed,
            node_norm: vec![(0.0, 1.0); NODE_FEATURES.len()],
            target_norm: vec![(0.0, 1.0); TARGET_FEATURES.len()],
            label_norm: vec![(0.0, 1.0); metrics.len()],
            metrics,
        }
    }

    /// The PerfSAGE paper's configuration: 2 undirected mean layers, mean readout.
    pub fn paper(metrics: Vec<String>) -> Self {
        ModelConfig { layers: 2, readout: Readout::Mean, neighbours: Neighbours::Undirected, ..Self::npuc(metrics) }
    }
}

/// Graphs packed into one batch: nodes of all graphs stacked, edges re-indexed.
pub struct Batch {
    op_type: Tensor,
    nodes: Tensor,
    /// Edge sources and destinations (u32), for both directions of aggregation.
    src: Tensor,
    dst: Tensor,
    inv_in: Tensor,
    inv_out: Tensor,
    inv_all: Tensor,
    graph_of_node: Tensor,
    ranges: Vec<(usize, usize)>,
    targets: Tensor,
}

/// One graph on one target, as the network takes it.
pub struct Input<'a> {
    /// The graph's features.
    pub graph: &'a GraphFeatures,
    /// The target's features (`features::target_features`).
    pub target: &'a [f32],
}

fn normalize(x: f32, (mean, std): (f32, f32)) -> f32 {
    (x - mean) / std
}

impl Batch {
    /// Packs `inputs`, normalizing features with `cfg`'s statistics.
    pub fn new(inputs: &[Input<'_>], cfg: &ModelConfig, dev: &Device) -> candle_core::Result<Batch> {
        let (mut op_type, mut nodes, mut src, mut dst, mut graph_of_node) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut ranges, mut targets) = (Vec::new(), Vec::new());
        for (gi, input) in inputs.iter().enumerate() {
            let base = op_type.len();
            // An empty graph still gets one node so every graph has a readout.
            let n = input.graph.nodes.len().max(1);
            if input.graph.nodes.is_empty() {
                op_type.push((OP_VOCABULARY.len() - 1) as u32);
                nodes.extend(cfg.node_norm.iter().map(|&s| normalize(0.0, s)));
            }
            for (t, row) in input.graph.op_type.iter().zip(&input.graph.nodes) {
                op_type.push(*t);
                nodes.extend(row.iter().zip(&cfg.node_norm).map(|(&x, &s)| normalize(x, s)));
            }
            for &(a, b) in &input.graph.edges {
                src.push(base as u32 + a);
                dst.push(base as u32 + b);
            }
            graph_of_node.extend(std::iter::repeat_n(gi as u32, n));
            ranges.push((base, n));
            targets.extend(input.target.iter().zip(&cfg.target_norm).map(|(&x, &s)| normalize(x, s)));
        }
        let total = op_type.len();
        let (mut deg_in, mut deg_out) = (vec![0f32; total], vec![0f32; total]);
        for (&s, &d) in src.iter().zip(&dst) {
            deg_out[s as usize] += 1.0;
            deg_in[d as usize] += 1.0;
        }
        let deg_all: Vec<f32> = deg_in.iter().zip(&deg_out).map(|(a, b)| a + b).collect();
        let inv = |d: Vec<f32>| -> Vec<f32> { d.into_iter().map(|x| if x > 0.0 { 1.0 / x } else { 0.0 }).collect() };
        Ok(Batch {
            op_type: Tensor::from_vec(op_type, total, dev)?,
            nodes: Tensor::from_vec(nodes, (total, NODE_FEATURES.len()), dev)?,
            src: Tensor::from_vec(src.clone(), src.len(), dev)?,
            dst: Tensor::from_vec(dst.clone(), dst.len(), dev)?,
            inv_in: Tensor::from_vec(inv(deg_in), (total, 1), dev)?,
            inv_out: Tensor::from_vec(inv(deg_out), (total, 1), dev)?,
            inv_all: Tensor::from_vec(inv(deg_all), (total, 1), dev)?,
            graph_of_node: Tensor::from_vec(graph_of_node, total, dev)?,
            ranges,
            targets: Tensor::from_vec(targets, (inputs.len(), TARGET_FEATURES.len()), dev)?,
        })
    }

    /// Number of graphs.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the batch holds no graph.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

struct SageLayer {
    own: Linear,
    pred: Linear,
    succ: Option<Linear>,
}

/// The network with its weights.
pub struct PerfSage {
    /// Its configuration.
    pub config: ModelConfig,
    /// Its weights (saved as safetensors).
    pub vars: VarMap,
    embedding: Embedding,
    input: Linear,
    layers: Vec<SageLayer>,
    heads: Vec<(Linear, Linear)>,
}

impl PerfSage {
    /// A network with weights drawn from `seed` (Glorot-uniform, zero biases), so training
    /// from equal seeds is reproducible.
    pub fn new(config: ModelConfig, seed: u64) -> candle_core::Result<PerfSage> {
        let vars = VarMap::new();
        let net = Self::build(config, vars, &Device::Cpu)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = net.vars.data().lock().expect("var map lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = if name.ends_with(".bias") {
                vec![0.0; n]
            } else {
                let (fan_out, fan_in) = (dims[0] as f32, *dims.last().unwrap_or(&1) as f32);
                let bound = (6.0 / (fan_in + fan_out)).sqrt();
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            var.set(&Tensor::from_vec(values, dims, &Device::Cpu)?)?;
        }
        drop(data);
        Ok(net)
    }

    /// The layers of `config`, with variables registered in `vars`.
    pub(crate) fn build(config: ModelConfig, vars: VarMap, dev: &Device) -> candle_core::Result<PerfSage> {
        let vb = VarBuilder::from_varmap(&vars, DType::F32, dev);
        let h = config.hidden;
        let embedding = candle_nn::embedding(OP_VOCABULARY.len(), config.op_embedding, vb.pp("op_embedding"))?;
        let input =
            candle_nn::linear(NODE_FEATURES.len() + config.op_embedding + TARGET_FEATURES.len(), h, vb.pp("input"))?;
        let mut layers = Vec::new();
        for i in 0..config.layers {
            let vb = vb.pp(format!("sage{i}"));
            let succ = match config.neighbours {
                Neighbours::Directed => Some(candle_nn::linear(h, h, vb.pp("succ"))?),
                Neighbours::Undirected => None,
            };
            layers.push(SageLayer {
                own: candle_nn::linear(h, h, vb.pp("own"))?,
                pred: candle_nn::linear(h, h, vb.pp("pred"))?,
                succ,
            });
        }
        let readout_width = match config.readout {
            Readout::SumMax => 2 * h,
            Readout::Mean => h,
        } + TARGET_FEATURES.len();
        let mut heads = Vec::new();
        for m in &config.metrics {
            let vb = vb.pp(format!("head_{m}"));
            heads.push((candle_nn::linear(readout_width, h, vb.pp("hidden"))?, candle_nn::linear(h, 1, vb.pp("out"))?));
        }
        Ok(PerfSage { config, vars, embedding, input, layers, heads })
    }

    /// Mean over each node's neighbours in one direction: messages from `from` nodes
    /// summed into `to` nodes, times 1/degree.
    fn aggregate(h: &Tensor, from: &Tensor, to: &Tensor, inv_degree: &Tensor) -> candle_core::Result<Tensor> {
        if from.dim(0)? == 0 {
            return h.zeros_like();
        }
        let messages = h.index_select(from, 0)?;
        h.zeros_like()?.index_add(to, &messages, 0)?.broadcast_mul(inv_degree)
    }

    /// Predictions `ln(metric)`, shape `[graphs, metrics]`.
    pub fn forward(&self, b: &Batch) -> candle_core::Result<Tensor> {
        let node_targets = b.targets.index_select(&b.graph_of_node, 0)?;
        let x = Tensor::cat(&[&b.nodes, &self.embedding.forward(&b.op_type)?, &node_targets], 1)?;
        let mut h = self.input.forward(&x)?.relu()?;
        for layer in &self.layers {
            let mixed = match &layer.succ {
                Some(succ) => {
                    let pred = Self::aggregate(&h, &b.src, &b.dst, &b.inv_in)?;
                    let next = Self::aggregate(&h, &b.dst, &b.src, &b.inv_out)?;
                    ((layer.own.forward(&h)? + layer.pred.forward(&pred)?)? + succ.forward(&next)?)?
                }
                None => {
                    // Undirected: both directions pooled under one weight, mean over all.
                    let both_from = Tensor::cat(&[&b.src, &b.dst], 0)?;
                    let both_to = Tensor::cat(&[&b.dst, &b.src], 0)?;
                    let all = Self::aggregate(&h, &both_from, &both_to, &b.inv_all)?;
                    (layer.own.forward(&h)? + layer.pred.forward(&all)?)?
                }
            };
            h = (mixed.relu()? + h)?;
        }
        let pooled = match self.config.readout {
            Readout::SumMax => {
                let sums = Tensor::zeros((b.len(), self.config.hidden), DType::F32, h.device())?.index_add(
                    &b.graph_of_node,
                    &h,
                    0,
                )?;
                let maxes: Vec<Tensor> = b
                    .ranges
                    .iter()
                    .map(|&(s, n)| h.narrow(0, s, n)?.max_keepdim(0))
                    .collect::<candle_core::Result<_>>()?;
                // Scaled so a 100-op graph's sum stays O(10) at initialization.
                Tensor::cat(&[(sums * SUM_SCALE)?, Tensor::cat(&maxes, 0)?], 1)?
            }
            Readout::Mean => {
                let means: Vec<Tensor> = b
                    .ranges
                    .iter()
                    .map(|&(s, n)| h.narrow(0, s, n)?.mean_keepdim(0))
                    .collect::<candle_core::Result<_>>()?;
                Tensor::cat(&means, 0)?
            }
        };
        let r = Tensor::cat(&[&pooled, &b.targets], 1)?;
        let outs: Vec<Tensor> = self
            .heads
            .iter()
            .map(|(hidden, out)| out.forward(&hidden.forward(&r)?.relu()?))
            .collect::<candle_core::Result<_>>()?;
        let (mean, std): (Vec<f32>, Vec<f32>) = self.config.label_norm.iter().copied().unzip();
        let m = self.config.metrics.len();
        let dev = h.device();
        Tensor::cat(&outs, D::Minus1)?
            .broadcast_mul(&Tensor::from_vec(std, (1, m), dev)?)?
            .broadcast_add(&Tensor::from_vec(mean, (1, m), dev)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{graph_features, target_features};

    fn inputs() -> (Vec<GraphFeatures>, Vec<f32>) {
        let graphs = (0..3)
            .map(|seed| {
                let s = npuc_zoo::space::sample(npuc_zoo::space::Space::KeywordSpotting, seed).unwrap();
                graph_features(s.module.main().unwrap(), None)
            })
            .collect();
        (graphs, target_features(&npuc_target::Target::builtin("ethos-u55-128").unwrap()))
    }

    #[test]
    fn predictions_have_one_column_per_metric_and_are_deterministic() {
        let (graphs, target) = inputs();
        let metrics = vec!["latency_us".to_string(), "energy_uj".to_string()];
        for cfg in [ModelConfig::npuc(metrics.clone()), ModelConfig::paper(metrics.clone())] {
            let batch_inputs: Vec<Input> = graphs.iter().map(|g| Input { graph: g, target: &target }).collect();
            let batch = Batch::new(&batch_inputs, &cfg, &Device::Cpu).unwrap();
            let a = PerfSage::new(cfg.clone(), 7).unwrap().forward(&batch).unwrap();
            let b = PerfSage::new(cfg.clone(), 7).unwrap().forward(&batch).unwrap();
            assert_eq!(a.dims(), [3, 2]);
            assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
            // A graph's prediction does not depend on its batch mates.
            let alone = Batch::new(&batch_inputs[1..2], &cfg, &Device::Cpu).unwrap();
            let c = PerfSage::new(cfg, 7).unwrap().forward(&alone).unwrap().to_vec2::<f32>().unwrap();
            let a = a.to_vec2::<f32>().unwrap();
            for (x, y) in a[1].iter().zip(&c[0]) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn gradients_reach_every_weight() {
        let (graphs, target) = inputs();
        let cfg = ModelConfig::npuc(vec!["latency_us".into()]);
        let net = PerfSage::new(cfg.clone(), 1).unwrap();
        let batch_inputs: Vec<Input> = graphs.iter().map(|g| Input { graph: g, target: &target }).collect();
        let batch = Batch::new(&batch_inputs, &cfg, &Device::Cpu).unwrap();
        let loss = net.forward(&batch).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let data = net.vars.data().lock().unwrap();
        for (name, var) in data.iter() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
            let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm.is_finite(), "{name}");
            if !name.ends_with(".bias") && !name.starts_with("op_embedding") {
                assert!(norm > 0.0, "zero gradient for {name}");
            }
        }
    }
}
