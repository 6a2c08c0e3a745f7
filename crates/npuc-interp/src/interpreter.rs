//! Executing a graph: preparation (order, decoded constants, liveness) and the run loop.

use npuc_ir::{Graph, Module, Op, OpId, ValueId};

use crate::error::InterpError;
use crate::kernels::{self, KernelCtx};
use crate::tensor::{Data, Tensor};

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

/// Default bound on the iterations of one WHILE op: far more than any real model runs,
/// small enough that a file whose loop never ends fails in seconds.
pub const DEFAULT_WHILE_LIMIT: u64 = 1_000_000;

/// One graph prepared for execution: order, decoded constants, liveness.
struct Prepared<'g> {
    graph: &'g Graph,
    order: Vec<OpId>,
    constants: Vec<Option<Tensor>>,
    last_use: Vec<usize>,
}

/// A graph prepared for execution. Preparation decodes every constant once (densifying
/// sparse ones) and computes each value's last use, so runs free activations early.
///
/// Graphs with IF or WHILE are prepared from their module ([`Interpreter::for_module`]),
/// which also prepares every graph they call, directly or not.
pub struct Interpreter<'g> {
    main: Prepared<'g>,
    /// Prepared callees by module index (`None` for graphs the main graph never calls).
    callees: Vec<Option<Prepared<'g>>>,
    /// Worker pool; `None` for single-threaded runs, which execute inline.
    pool: Option<rayon::ThreadPool>,
    while_limit: u64,
}

/// Whether a value's extents are only known at run time (a `-1` in its signature); its
/// static shape is then a placeholder, and run-time tensors may differ from it.
fn is_dynamic(v: &npuc_ir::Value) -> bool {
    v.shape_signature.as_ref().is_some_and(|s| s.contains(&-1))
}

impl<'g> Prepared<'g> {
    /// Prepares one graph; IF/WHILE are accepted only when `calls` is set (the module's
    /// graphs are at hand).
    fn new(graph: &'g Graph, calls: bool) -> Result<Self, InterpError> {
        let order = graph.topo_order().map_err(|e| InterpError::Graph(e.to_string()))?;
        for (i, &id) in order.iter().enumerate() {
            match &graph.op(id).op {
                Op::Opaque(o) => {
                    return Err(InterpError::Op {
                        index: i,
                        op: o.name.clone(),
                        reason: "npuc has no kernel for this operator (it is kept opaque)".into(),
                    })
                }
                op @ (Op::If { .. } | Op::While { .. }) if !calls => {
                    return Err(InterpError::Op {
                        index: i,
                        op: op.mnemonic().into(),
                        reason: "calls other graphs of the module: prepare it with Interpreter::for_module".into(),
                    })
                }
                _ => {}
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
        Ok(Prepared { graph, order, constants, last_use })
    }
}

impl<'g> Interpreter<'g> {
    /// Prepares `graph`; fails on cycles, ops npuc cannot execute at all (opaque ops, and
    /// IF/WHILE, which need [`Interpreter::for_module`]) and constants whose data is missing
    /// or elided.
    pub fn new(graph: &'g Graph, options: &Options) -> Result<Self, InterpError> {
        let main = Prepared::new(graph, false)?;
        Self::with_graphs(main, Vec::new(), options)
    }

    /// Prepares graph `graph_index` of `module` and every graph its IF and WHILE ops call,
    /// directly or not. The calls are checked first (indices, arity, types, no recursion:
    /// see `npuc_ir::verify::verify_calls`), so a run can neither index out of range nor
    /// recurse without end.
    pub fn for_module(module: &'g Module, graph_index: usize, options: &Options) -> Result<Self, InterpError> {
        let graph = module.graphs.get(graph_index).ok_or_else(|| {
            InterpError::Graph(format!("the module has no graph #{graph_index} ({} graphs)", module.graphs.len()))
        })?;
        npuc_ir::verify::verify_no_recursion(module).map_err(|e| InterpError::Graph(e.to_string()))?;
        let mut callees: Vec<Option<Prepared<'g>>> = (0..module.graphs.len()).map(|_| None).collect();
        let mut pending = vec![graph_index];
        let mut seen = vec![false; module.graphs.len()];
        seen[graph_index] = true;
        while let Some(gi) = pending.pop() {
            npuc_ir::verify::verify_graph_calls(module, gi)
                .map_err(|e| InterpError::Graph(format!("graph #{gi} '{}': {e}", module.graphs[gi].name)))?;
            let g = &module.graphs[gi];
            for c in g.op_ids().flat_map(|id| g.op(id).op.callees()) {
                if !seen[c] {
                    seen[c] = true;
                    pending.push(c);
                    let p = Prepared::new(&module.graphs[c], true)
                        .map_err(|e| InterpError::Graph(format!("graph #{c} '{}': {e}", module.graphs[c].name)))?;
                    callees[c] = Some(p);
                }
            }
        }
        let main = Prepared::new(graph, true)?;
        Self::with_graphs(main, callees, options)
    }

    /// Sets the bound on the iterations of any one WHILE op (default
    /// [`DEFAULT_WHILE_LIMIT`]); a loop that would run longer fails naming the op.
    pub fn with_while_limit(mut self, limit: u64) -> Self {
        self.while_limit = limit;
        self
    }

    fn with_graphs(
        main: Prepared<'g>,
        callees: Vec<Option<Prepared<'g>>>,
        options: &Options,
    ) -> Result<Self, InterpError> {
        let pool = if options.threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(options.threads)
                .build()
                .map_err(|e| InterpError::Graph(format!("cannot start worker threads: {e}")))?;
            Some(pool)
        };
        Ok(Interpreter { main, callees, pool, while_limit: DEFAULT_WHILE_LIMIT })
    }

    /// The graph being executed.
    pub fn graph(&self) -> &'g Graph {
        self.main.graph
    }

    /// Runs the graph on `inputs` (one per graph input, in order) and returns the outputs.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, InterpError> {
        self.run_observed(inputs, None)
    }

    /// Runs the graph, calling `observer` with every computed value of the graph being
    /// executed (values inside the graphs IF/WHILE call are not observed: they belong to
    /// other graphs, whose value ids would collide with this one's).
    pub fn run_observed(
        &self,
        inputs: Vec<Tensor>,
        observer: Option<&mut dyn Observer>,
    ) -> Result<Vec<Tensor>, InterpError> {
        let body = || self.run_graph(&self.main, inputs, observer);
        match &self.pool {
            Some(pool) => pool.install(body),
            None => crate::kernels::inline(body),
        }
    }

    /// Runs one prepared graph (the main graph or a callee) inside the caller's pool.
    fn run_graph(
        &self,
        p: &Prepared<'g>,
        inputs: Vec<Tensor>,
        mut observer: Option<&mut dyn Observer>,
    ) -> Result<Vec<Tensor>, InterpError> {
        let g = p.graph;
        if inputs.len() != g.inputs.len() {
            return Err(InterpError::Input {
                name: String::new(),
                reason: format!("the graph has {} inputs, {} were given", g.inputs.len(), inputs.len()),
            });
        }
        let mut env: Vec<Option<Tensor>> = vec![None; g.value_count()];
        for (t, &v) in inputs.into_iter().zip(&g.inputs) {
            let val = g.value(v);
            if t.dtype() != val.ty.dtype || (t.shape != val.ty.shape && !is_dynamic(val)) {
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
        for (i, &id) in p.order.iter().enumerate() {
            let op = g.op(id);
            let op_err = |reason: String| InterpError::Op { index: i, op: op.op.display_name().to_string(), reason };
            let outputs = {
                let fetch = |v: &ValueId| env[v.index()].as_ref().or(p.constants[v.index()].as_ref());
                let inputs: Vec<Option<&Tensor>> = op.inputs.iter().map(|v| v.as_ref().and_then(fetch)).collect();
                if let Some(slot) = op.inputs.iter().zip(&inputs).position(|(v, t)| v.is_some() && t.is_none()) {
                    return Err(op_err(format!(
                        "operand {slot} has no value (graph input not provided or value freed)"
                    )));
                }
                match &op.op {
                    Op::If { then_graph, else_graph } => {
                        self.run_if(&inputs, *then_graph as usize, *else_graph as usize).map_err(op_err)?
                    }
                    Op::While { cond_graph, body_graph } => {
                        self.run_while(&inputs, *cond_graph as usize, *body_graph as usize).map_err(op_err)?
                    }
                    _ => {
                        let cx = KernelCtx {
                            graph: g,
                            id,
                            op,
                            inputs,
                            input_values: op.inputs.iter().map(|v| v.map(|v| g.value(v))).collect(),
                            output_types: op.outputs.iter().map(|&v| &g.value(v).ty).collect(),
                        };
                        kernels::eval(&cx).map_err(|e| op_err(e.0))?
                    }
                }
            };
            if outputs.len() != op.outputs.len() {
                return Err(op_err(format!(
                    "kernel produced {} results, the op has {}",
                    outputs.len(),
                    op.outputs.len()
                )));
            }
            for (t, &v) in outputs.into_iter().zip(&op.outputs) {
                let val = g.value(v);
                let ty = &val.ty;
                if t.dtype() != ty.dtype || (t.shape != ty.shape && !is_dynamic(val)) {
                    return Err(op_err(format!(
                        "kernel produced {} {:?} for a result declared {} {:?}",
                        t.dtype(),
                        t.shape,
                        ty.dtype,
                        ty.shape
                    )));
                }
                if let Some(o) = observer.as_deref_mut() {
                    o.observe(g, v, Some(id), &t);
                }
                env[v.index()] = Some(t);
            }
            // Free activations nobody reads any more (large models at high resolution
            // would otherwise hold every feature map at once).
            for v in op.inputs.iter().flatten() {
                if p.last_use[v.index()] == i {
                    env[v.index()] = None;
                }
            }
        }
        g.outputs
            .iter()
            .map(|&v| {
                env[v.index()]
                    .clone()
                    .or_else(|| p.constants[v.index()].clone())
                    .ok_or_else(|| InterpError::Graph(format!("output '{}' was never computed", g.value(v).name)))
            })
            .collect()
    }

    /// Runs callee graph `c` on `args`; errors name the graph.
    fn call(&self, c: usize, role: &str, args: Vec<Tensor>) -> Result<Vec<Tensor>, String> {
        let p = self
            .callees
            .get(c)
            .and_then(Option::as_ref)
            .ok_or_else(|| format!("{role} graph #{c} was not prepared"))?;
        self.run_graph(p, args, None).map_err(|e| format!("in {role} graph #{c} '{}': {e}", p.graph.name))
    }

    /// IF (tensorflow/lite/kernels/if.cc): a one-element bool condition picks the graph,
    /// which runs on the remaining operands.
    fn run_if(&self, inputs: &[Option<&Tensor>], then_graph: usize, else_graph: usize) -> Result<Vec<Tensor>, String> {
        let cond = match inputs.first().copied().flatten().map(|t| &t.data) {
            Some(Data::Bool(b)) if b.len() == 1 => b[0],
            _ => return Err("the condition is not a one-element bool".to_string()),
        };
        let args = inputs[1..].iter().map(|t| t.cloned().ok_or("an operand is missing")).collect::<Result<_, _>>()?;
        if cond {
            self.call(then_graph, "then", args)
        } else {
            self.call(else_graph, "else", args)
        }
    }

    /// WHILE (tensorflow/lite/kernels/while.cc): the state is the operands; while the
    /// condition graph returns true, the body graph maps the state to the next state. The
    /// iteration count is bounded by the interpreter's WHILE limit.
    fn run_while(
        &self,
        inputs: &[Option<&Tensor>],
        cond_graph: usize,
        body_graph: usize,
    ) -> Result<Vec<Tensor>, String> {
        let mut state: Vec<Tensor> =
            inputs.iter().map(|t| t.cloned().ok_or("an operand is missing")).collect::<Result<_, _>>()?;
        let mut iterations = 0u64;
        loop {
            let c = self.call(cond_graph, "cond", state.clone())?;
            let go = match c.first().map(|t| &t.data) {
                Some(Data::Bool(b)) if b.len() == 1 => b[0],
                _ => return Err(format!("cond graph #{cond_graph} did not return a one-element bool")),
            };
            if !go {
                return Ok(state);
            }
            if iterations == self.while_limit {
                return Err(format!(
                    "the loop did not finish within {} iterations (the interpreter's WHILE limit)",
                    self.while_limit
                ));
            }
            iterations += 1;
            state = self.call(body_graph, "body", state)?;
        }
    }
}
