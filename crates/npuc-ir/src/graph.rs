//! The graph: operations as petgraph nodes, values in an arena the edges point into.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use bytes::Bytes;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction;

use crate::constant::Constant;
use crate::error::IrError;
use crate::op::Op;
use crate::types::{Sparsity, TensorType};

/// Identifies an operation within its graph (stable across removals).
pub type OpId = NodeIndex<u32>;

/// Identifies a value (tensor) within its graph's arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// Arena index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A tensor flowing through the graph: a graph input, a constant, or an op result.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Name carried from the source model (not required to be unique).
    pub name: String,
    /// Static type.
    pub ty: TensorType,
    /// Dimensions as declared with unknown extents (`-1`), if the model had any.
    pub shape_signature: Option<Vec<i64>>,
    /// Constant contents, for constants and initialised variables.
    pub data: Option<Constant>,
    /// Sparse storage of `data`, if the constant is stored sparse.
    pub sparsity: Option<Sparsity>,
    /// A mutable (stateful) tensor.
    pub is_variable: bool,
    /// The op that produces the value and its result index.
    pub producer: Option<(OpId, u32)>,
}

impl Value {
    /// A value of the given type with nothing else attached.
    pub fn new(name: impl Into<String>, ty: TensorType) -> Self {
        Value {
            name: name.into(),
            ty,
            shape_signature: None,
            data: None,
            sparsity: None,
            is_variable: false,
            producer: None,
        }
    }

    /// Whether the value is a constant (has data and no producer and is not a variable).
    pub fn is_constant(&self) -> bool {
        self.data.is_some() && self.producer.is_none() && !self.is_variable
    }
}

/// One operation: its kind, operands and results.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Kind and attributes.
    pub op: Op,
    /// Operands; `None` marks an omitted optional operand (TFLite's `-1`).
    pub inputs: Vec<Option<ValueId>>,
    /// Results.
    pub outputs: Vec<ValueId>,
    /// Scratch tensors some kernels declare (TFLite `intermediates`), kept for round trips.
    pub intermediates: Vec<ValueId>,
    /// Operator version in the TFLite sense; exporters may raise it.
    pub version: u32,
}

impl Operation {
    /// An operation of version 1 without intermediates.
    pub fn new(op: Op, inputs: Vec<Option<ValueId>>, outputs: Vec<ValueId>) -> Self {
        Operation { op, inputs, outputs, intermediates: Vec::new(), version: 1 }
    }

    /// The operand at `i`, if present.
    pub fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }
}

/// Edge payload: which value flows from producer to consumer, into which operand slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The value.
    pub value: ValueId,
    /// Operand index at the consumer.
    pub operand: u32,
}

/// A dataflow graph (one TFLite subgraph).
///
/// Representation: operations are the nodes of a petgraph `StableDiGraph`; values live in
/// an arena (`Vec<Value>`) indexed by [`ValueId`]. An edge `a → b` exists for every operand
/// of `b` produced by `a` and names the value and operand slot, so petgraph's traversals
/// and cycle checks see true data dependencies. Values without a producer (graph inputs,
/// constants) have no node; a use index per value finds their readers. The arena
/// never shrinks while a graph is edited, so ids stay valid; unreferenced values are simply
/// not printed or exported.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Name (TFLite subgraph name).
    pub name: String,
    ops: StableDiGraph<Operation, Edge, u32>,
    values: Vec<Value>,
    /// `uses[v]`: every `(op, operand slot)` reading value `v`, kept in step with operands.
    uses: Vec<Vec<(OpId, u32)>>,
    /// Graph inputs, in order.
    pub inputs: Vec<ValueId>,
    /// Graph outputs, in order.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    /// Adds a value to the arena.
    pub fn add_value(&mut self, value: Value) -> ValueId {
        let id = ValueId(u32::try_from(self.values.len()).expect("more than 2^32 values"));
        self.values.push(value);
        self.uses.push(Vec::new());
        id
    }

    /// Adds a constant value.
    pub fn add_const(&mut self, name: impl Into<String>, ty: TensorType, data: Constant) -> ValueId {
        let mut v = Value::new(name, ty);
        v.data = Some(data);
        self.add_value(v)
    }

    /// Adds a graph input and appends it to the input list.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueId {
        let id = self.add_value(Value::new(name, ty));
        self.inputs.push(id);
        id
    }

    /// The value with id `id`.
    ///
    /// Panics on an id from another graph: ids are only minted by this graph.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    /// Mutable access to a value.
    pub fn value_mut(&mut self, id: ValueId) -> &mut Value {
        &mut self.values[id.index()]
    }

    /// The value if `id` is in range.
    pub fn get_value(&self, id: ValueId) -> Option<&Value> {
        self.values.get(id.index())
    }

    /// Number of values in the arena (live or not).
    pub fn value_count(&self) -> usize {
        self.values.len()
    }

    /// All arena ids in order.
    pub fn value_ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        (0..self.values.len() as u32).map(ValueId)
    }

    /// Adds an operation, wiring producer links and dependency edges.
    ///
    /// Ops may be added in any order: edges to consumers already present are added too.
    pub fn add_op(&mut self, operation: Operation) -> Result<OpId, IrError> {
        for v in operation.inputs.iter().flatten().chain(&operation.outputs).chain(&operation.intermediates) {
            if v.index() >= self.values.len() {
                return Err(IrError::UnknownValue { value: v.0, op: operation.op.display_name().to_string() });
            }
        }
        for (i, &out) in operation.outputs.iter().enumerate() {
            if let Some((prev, _)) = self.values[out.index()].producer {
                return Err(IrError::ValueProducedTwice {
                    value: self.values[out.index()].name.clone(),
                    first: prev.index(),
                    op: operation.op.display_name().to_string(),
                });
            }
            if operation.outputs[..i].contains(&out) {
                return Err(IrError::ValueProducedTwice {
                    value: self.values[out.index()].name.clone(),
                    first: usize::MAX,
                    op: operation.op.display_name().to_string(),
                });
            }
        }
        let outputs = operation.outputs.clone();
        let inputs = operation.inputs.clone();
        let id = self.ops.add_node(operation);
        for (i, &out) in outputs.iter().enumerate() {
            self.values[out.index()].producer = Some((id, i as u32));
        }
        for (slot, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                if let Some((p, _)) = self.values[v.index()].producer {
                    self.ops.add_edge(p, id, Edge { value: *v, operand: slot as u32 });
                }
            }
        }
        for (slot, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.uses[v.index()].push((id, slot as u32));
            }
        }
        // Consumers added before this producer (files need not list ops in order).
        for &out in &outputs {
            let early: Vec<(OpId, u32)> = self.uses[out.index()].iter().copied().filter(|&(n, _)| n != id).collect();
            for (n, slot) in early {
                self.ops.add_edge(id, n, Edge { value: out, operand: slot });
            }
        }
        Ok(id)
    }

    /// The operation with id `id`.
    pub fn op(&self, id: OpId) -> &Operation {
        &self.ops[id]
    }

    /// The operation if `id` names a live op.
    pub fn get_op(&self, id: OpId) -> Option<&Operation> {
        self.ops.node_weight(id)
    }

    /// Mutable access to an operation's kind and attributes.
    ///
    /// Operand and result lists are changed through [`Graph::set_input`] so edges stay right.
    pub fn op_kind_mut(&mut self, id: OpId) -> &mut Op {
        &mut self.ops[id].op
    }

    /// Mutable access to the operator version.
    pub fn op_version_mut(&mut self, id: OpId) -> &mut u32 {
        &mut self.ops[id].version
    }

    /// Number of live operations.
    pub fn op_count(&self) -> usize {
        self.ops.node_count()
    }

    /// Live op ids in insertion order.
    pub fn op_ids(&self) -> impl Iterator<Item = OpId> + '_ {
        self.ops.node_indices()
    }

    /// The underlying petgraph (read-only), for graph algorithms.
    pub fn petgraph(&self) -> &StableDiGraph<Operation, Edge, u32> {
        &self.ops
    }

    /// Replaces operand `slot` of `op` and updates edges.
    pub fn set_input(&mut self, op: OpId, slot: usize, value: Option<ValueId>) {
        let old: Vec<_> = self
            .ops
            .edges_directed(op, Direction::Incoming)
            .filter(|e| e.weight().operand as usize == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.ops.remove_edge(e);
        }
        if slot >= self.ops[op].inputs.len() {
            self.ops[op].inputs.resize(slot + 1, None);
        }
        if let Some(prev) = self.ops[op].inputs[slot] {
            self.uses[prev.index()].retain(|&(n, s)| !(n == op && s as usize == slot));
        }
        self.ops[op].inputs[slot] = value;
        if let Some(v) = value {
            self.uses[v.index()].push((op, slot as u32));
            if let Some((p, _)) = self.values[v.index()].producer {
                self.ops.add_edge(p, op, Edge { value: v, operand: slot as u32 });
            }
        }
    }

    /// Redirects every use of `old` (operands and graph outputs) to `new`.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        let uses: Vec<(OpId, usize)> = self.uses(old).collect();
        for (op, slot) in uses {
            self.set_input(op, slot, Some(new));
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes an operation; its results lose their producer.
    pub fn remove_op(&mut self, id: OpId) -> Option<Operation> {
        let op = self.ops.remove_node(id)?;
        for v in op.inputs.iter().flatten() {
            self.uses[v.index()].retain(|&(n, _)| n != id);
        }
        for &out in &op.outputs {
            self.values[out.index()].producer = None;
        }
        Some(op)
    }

    /// Every `(op, operand slot)` that reads `value`.
    pub fn uses(&self, value: ValueId) -> impl Iterator<Item = (OpId, usize)> + '_ {
        self.uses[value.index()].iter().map(|&(n, s)| (n, s as usize))
    }

    /// The op producing `value`, if any.
    pub fn producer(&self, value: ValueId) -> Option<OpId> {
        self.values[value.index()].producer.map(|(p, _)| p)
    }

    /// Ops in a deterministic topological order: among ready ops the lowest id goes first,
    /// so a graph built in execution order keeps that order.
    pub fn topo_order(&self) -> Result<Vec<OpId>, IrError> {
        let mut indeg: Vec<usize> = vec![0; self.ops.node_bound()];
        for e in self.ops.edge_references() {
            indeg[e.target().index()] += 1;
        }
        let mut ready: BinaryHeap<Reverse<u32>> =
            self.ops.node_indices().filter(|n| indeg[n.index()] == 0).map(|n| Reverse(n.index() as u32)).collect();
        let mut order = Vec::with_capacity(self.ops.node_count());
        while let Some(Reverse(i)) = ready.pop() {
            let n = OpId::new(i as usize);
            order.push(n);
            for e in self.ops.edges_directed(n, Direction::Outgoing) {
                let t = e.target().index();
                indeg[t] -= 1;
                if indeg[t] == 0 {
                    ready.push(Reverse(t as u32));
                }
            }
        }
        if order.len() != self.ops.node_count() {
            let stuck = self.ops.node_indices().find(|n| indeg[n.index()] > 0).map(|n| n.index()).unwrap_or(0);
            return Err(IrError::Cycle { op: stuck });
        }
        Ok(order)
    }

    /// Whether a value is referenced by an op or the graph interface.
    pub fn live_values(&self) -> Vec<bool> {
        let mut live = vec![false; self.values.len()];
        for &v in self.inputs.iter().chain(&self.outputs) {
            live[v.index()] = true;
        }
        for n in self.ops.node_indices() {
            let o = &self.ops[n];
            for v in o.inputs.iter().flatten().chain(&o.outputs).chain(&o.intermediates) {
                live[v.index()] = true;
            }
        }
        live
    }
}

/// A named signature: a public entry point mapping names to a graph's inputs and outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Signature key (e.g. `serving_default`).
    pub key: String,
    /// Index of the graph it runs.
    pub graph: usize,
    /// `(name, value)` for each input.
    pub inputs: Vec<(String, ValueId)>,
    /// `(name, value)` for each output.
    pub outputs: Vec<(String, ValueId)>,
}

/// A named metadata blob carried through unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// Metadata name (e.g. `min_runtime_version`).
    pub name: String,
    /// Contents.
    pub data: Bytes,
}

/// A whole model: graphs (the first is the entry), signatures and metadata.
#[derive(Clone, Debug, Default)]
pub struct Module {
    /// Graphs; index 0 is the main graph, others are called by control-flow ops.
    pub graphs: Vec<Graph>,
    /// Signatures.
    pub signatures: Vec<Signature>,
    /// Metadata blobs.
    pub metadata: Vec<Metadata>,
    /// Free-text description (TFLite `description`).
    pub description: String,
}

impl Module {
    /// A module with one graph.
    pub fn from_graph(graph: Graph) -> Self {
        Module { graphs: vec![graph], ..Default::default() }
    }

    /// The main graph.
    pub fn main(&self) -> Option<&Graph> {
        self.graphs.first()
    }
}
