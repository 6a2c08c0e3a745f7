//! Executing a graph: preparation (order, decoded constants, liveness) and the run loop.

use npuc_ir::{Graph, Op, OpId, ValueId};

use crate::error::InterpError;
use crate::kernels::{self, KernelCtx};
use crate::tensor::Tensor;

/// Sees every value as it is computed: graph inputs first, then each op's results in
/// execution order. Calibration and debugging hang off this. `Send` because runs execute
/// inside the interpreter's worker pool.
pub trait Observer: Send {
    /// Called once per value with its tensor; `producer` is `None` for graph inputs.
    fn observe(&mut self, graph: &Graph, value: ValueId, producer: Option<OpId>, tensor: &Tensor);
}

/// Execution options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads for kernels that parallelize; 0 means one per core.
    pub threads: usize,
}

/// A graph prepared for execution. Preparation decodes every constant once (densifying
/// sparse ones) and computes each value's last use, so runs free activations early.
pub struct Interpreter<'g> {
    graph: &'g Graph,
    order: Vec<OpId>,
    constants: Vec<Option<Tensor>>,
    last_use: Vec<usize>,
    /// Worker pool; `None` for single-threaded runs, which execute inline.
    pool: Option<rayon::ThreadPool>,
}

impl<'g> Interpreter<'g> {
    /// Prepares `graph`; fails on cycles, ops npuc cannot execute at all (opaque ops) and
    /// constants whose data is missing or elided.
    pub fn new(graph: &'g Graph, options: &Options) -> Result<Self, InterpError> {
        let order = graph.topo_order().map_err(|e| InterpError::Graph(e.to_string()))?;
        for (i, &id) in order.iter().enumerate() {
            if let Op::Opaque(o) = &graph.op(id).op {
                return Err(InterpError::Op {
                    index: i,
                    op: o.name.clone(),
                    reason: "npuc has no kernel for this operator (it is kept opaque)".into(),
                });
            }
        }
        let mut constants = vec![None; graph.value_count()];
        let live = graph.live_values();
        for v in graph.value_ids().filter(|v| live[v.index()]) {
            let val = graph.value(v);
            // Zero-size tensors have no meaningful execution in the kernels npuc models
            // (TFLite's own kernels mostly skip or reject them); refuse them up front with
            // the value's name instead of failing somewhere inside a kernel.
            if val.ty.shape.contains(&0) {
                return Err(InterpError::Graph(format!(
                    "value '{}' (#{}) has a zero-size dimension {:?}",
                    val.name, v.0, val.ty.shape
                )));
            }
            let Some(c) = &val.data else { continue };
            if val.producer.is_some() {
                continue;
            }
            let t = match &val.sparsity {
                Some(s) => crate::sparse::densify(&val.ty, c, s),
                None => Tensor::from_constant(&val.ty, c).ok_or_else(|| {
                    if c.is_elided() {
                        "its data was elided in text form".to_string()
                    } else {
                        format!("{} bytes do not decode as {:?} {}", c.len(), val.ty.shape, val.ty.dtype)
                    }
                }),
            }
            .map_err(|reason| InterpError::Graph(format!("constant '{}' (#{}): {reason}", val.name, v.0)))?;
            constants[v.index()] = Some(t);
        }
        let mut last_use = vec![0usize; graph.value_count()];
        for (i, &id) in order.iter().enumerate() {
            for v in graph.op(id).inputs.iter().flatten() {
                last_use[v.index()] = i;
            }
        }
        for &v in &graph.outputs {
            last_use[v.index()] = usize::MAX;
        }
        let pool = if options.threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(options.threads)
                .build()
                .map_err(|e| InterpError::Graph(format!("cannot start worker threads: {e}")))?;
            Some(pool)
        };
        Ok(Interpreter { graph, order, constants, last_use, pool })
    }

    /// The graph being executed.
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    /// Runs the graph on `inputs` (one per graph input, in order) and returns the outputs.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, InterpError> {
        self.run_observed(inputs, None)
    }

    /// Runs the graph, calling `observer` with every computed value.
    pub fn run_observed(
        &self,
        inputs: Vec<Tensor>,
        mut observer: Option<&mut dyn Observer>,
    ) -> Result<Vec<Tensor>, InterpError> {
        let g = self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(InterpError::Input {
                name: String::new(),
                reason: format!("the graph has {} inputs, {} were given", g.inputs.len(), inputs.len()),
            });
        }
        let mut env: Vec<Option<Tensor>> = vec![None; g.value_count()];
        for (t, &v) in inputs.into_iter().zip(&g.inputs) {
            let val = g.value(v);
            if t.dtype() != val.ty.dtype || t.shape != val.ty.shape {
                return Err(InterpError::Input {
                    name: val.name.clone(),
                    reason: format!("expected {} {:?}, got {} {:?}", val.ty.dtype, val.ty.shape, t.dtype(), t.shape),
                });
            }
            if let Some(o) = observer.as_deref_mut() {
                o.observe(g, v, None, &t);
            }
            env[v.index()] = Some(t);
        }
        let body = || {
            for (i, &id) in self.order.iter().enumerate() {
                let op = g.op(id);
                let outputs = {
                    let fetch = |v: &ValueId| env[v.index()].as_ref().or(self.constants[v.index()].as_ref());
                    let inputs: Vec<Option<&Tensor>> = op.inputs.iter().map(|v| v.as_ref().and_then(fetch)).collect();
                    if let Some(slot) = op.inputs.iter().zip(&inputs).position(|(v, t)| v.is_some() && t.is_none()) {
                        return Err(InterpError::Op {
                            index: i,
                            op: op.op.display_name().to_string(),
                            reason: format!("operand {slot} has no value (graph input not provided or value freed)"),
                        });
                    }
                    let cx = KernelCtx {
                        graph: g,
                        id,
                        op,
                        inputs,
                        input_values: op.inputs.iter().map(|v| v.map(|v| g.value(v))).collect(),
                        output_types: op.outputs.iter().map(|&v| &g.value(v).ty).collect(),
                    };
                    kernels::eval(&cx).map_err(|e| InterpError::Op {
                        index: i,
                        op: op.op.display_name().to_string(),
                        reason: e.0,
                    })?
                };
                if outputs.len() != op.outputs.len() {
                    return Err(InterpError::Op {
                        index: i,
                        op: op.op.display_name().to_string(),
                        reason: format!("kernel produced {} results, the op has {}", outputs.len(), op.outputs.len()),
                    });
                }
                for (t, &v) in outputs.into_iter().zip(&op.outputs) {
                    let ty = &g.value(v).ty;
                    if t.dtype() != ty.dtype || t.shape != ty.shape {
                        return Err(InterpError::Op {
                            index: i,
                            op: op.op.display_name().to_string(),
                            reason: format!(
                                "kernel produced {} {:?} for a result declared {} {:?}",
                                t.dtype(),
                                t.shape,
                                ty.dtype,
                                ty.shape
                            ),
                        });
                    }
                    if let Some(o) = observer.as_deref_mut() {
                        o.observe(g, v, Some(id), &t);
                    }
                    env[v.index()] = Some(t);
                }
                // Free activations nobody reads any more (large models at high resolution
                // would otherwise hold every feature map at once).
                for v in op.inputs.iter().flatten() {
                    if self.last_use[v.index()] == i {
                        env[v.index()] = None;
                    }
                }
            }
            g.outputs
                .iter()
                .map(|&v| {
                    env[v.index()]
                        .clone()
                        .or_else(|| self.constants[v.index()].clone())
                        .ok_or_else(|| InterpError::Graph(format!("output '{}' was never computed", g.value(v).name)))
                })
                .collect()
        };
        match &self.pool {
            Some(pool) => pool.install(body),
            None => crate::kernels::inline(body),
        }
    }
}
