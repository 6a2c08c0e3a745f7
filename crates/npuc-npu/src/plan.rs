//! The memory plan: where every tensor lives while the graph runs.
//!
//! Activations (graph inputs, op results, variables, scratch tensors) share one SRAM arena;
//! constants live in flash/DRAM and are listed apart. The plan works on a given execution
//! order (one op per step):
//!
//! - **Liveness.** A value lives from the step of its producer (step 0 for graph inputs and
//!   other values without a producer) to the step of its last reader. Graph outputs and
//!   variables live to the last step. A value nobody reads lives only at its producer's
//!   step. An op's operands and results are live at the same step, so an op never writes
//!   over what it reads.
//! - **Aliasing.** RESHAPE, SQUEEZE and EXPAND_DIMS only relabel the shape of their data, so
//!   when their data operand dies at that step (it is not read later, not a graph output,
//!   not a variable) and both have the same storage size, the result takes the operand's
//!   buffer instead of a copy — as TFLite's arena planner and Vela do. The shared buffer is
//!   one [`Buffer`] listing the result among its [`aliases`](Buffer::aliases).
//! - **Sizes.** Storage bytes of the tensor type, rounded up to [`PlanOptions::alignment`].
//! - **Placement.** TFLite's "greedy by size": buffers are placed largest first (ties: the
//!   earlier first step, then the lower value id, so the plan is deterministic) at the lowest
//!   offset that does not overlap any placed buffer whose lifetime intersects.
//!
//! [`MemoryPlan::lower_bound_bytes`] is the largest sum of the sizes of the buffers live at
//! one step; no plan of these buffers can use less, and greedy by size usually meets it.
//! Striping and cascading (when even that does not fit) are the scheduler's job.

use std::collections::BTreeMap;

use npuc_ir::{Graph, OpId, ValueId};
use thiserror::Error;

/// Alignment of constants in flash/DRAM, in bytes (the NPU's DMA burst alignment).
pub const FLASH_ALIGNMENT: u64 = 16;

/// Options of [`plan_memory`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// Alignment of every SRAM buffer's offset and size, in bytes (non-zero).
    pub alignment: u64,
    /// SRAM available to the arena; `None` for no limit.
    pub sram_bytes: Option<u64>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { alignment: 16, sram_bytes: None }
    }
}

/// One SRAM buffer: a value (and the values aliasing it) at an offset for a range of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// The value that owns the buffer (the first of an alias chain).
    pub value: ValueId,
    /// Values sharing the buffer through RESHAPE/SQUEEZE/EXPAND_DIMS, in execution order.
    pub aliases: Vec<ValueId>,
    /// Byte offset in the arena.
    pub offset: u64,
    /// Size in bytes, rounded up to the alignment.
    pub size: u64,
    /// First step (index into the execution order) at which the buffer is live.
    pub first: usize,
    /// Last step at which the buffer is live (inclusive).
    pub last: usize,
}

impl Buffer {
    /// Whether the two buffers are live at a common step.
    pub fn lifetime_overlaps(&self, other: &Buffer) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// Whether the two buffers share a byte of the arena (empty buffers share none).
    pub fn address_overlaps(&self, other: &Buffer) -> bool {
        self.size > 0
            && other.size > 0
            && self.offset < other.offset + other.size
            && other.offset < self.offset + self.size
    }
}

/// One constant in flash/DRAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlashBuffer {
    /// The constant.
    pub value: ValueId,
    /// Byte offset, a multiple of [`FLASH_ALIGNMENT`].
    pub offset: u64,
    /// Size of its data in bytes (unpadded).
    pub size: u64,
}

/// Where every tensor of a graph lives for one execution order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// SRAM buffers, ordered by owning value id.
    pub buffers: Vec<Buffer>,
    /// Size of the SRAM arena: the highest end offset of any buffer.
    pub arena_bytes: u64,
    /// Largest sum of buffer sizes live at one step; a lower bound on `arena_bytes`.
    pub lower_bound_bytes: u64,
    /// The step at which `lower_bound_bytes` is reached (the first such step).
    pub peak_step: usize,
    /// Alignment the plan was made with.
    pub alignment: u64,
    /// Constants in flash/DRAM, in declaration (value id) order.
    pub flash: Vec<FlashBuffer>,
    /// Total flash/DRAM bytes, padding included.
    pub flash_bytes: u64,
    /// Buffer index of every value in the arena (owners and aliases).
    index: BTreeMap<ValueId, usize>,
}

/// Why a memory plan could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    /// The alignment option is zero.
    #[error("memory plan: alignment must be non-zero")]
    ZeroAlignment,
    /// The order names an op the graph does not have.
    #[error("memory plan: step {step} names op {op}, which is not in graph `{graph}`")]
    UnknownOp {
        /// Graph name.
        graph: String,
        /// Step in the order.
        step: usize,
        /// Op index.
        op: usize,
    },
    /// The order names an op twice.
    #[error("memory plan: op {op} appears at steps {first} and {second} of the order")]
    DuplicateOp {
        /// Op description.
        op: String,
        /// First step.
        first: usize,
        /// Second step.
        second: usize,
    },
    /// The order leaves out an op of the graph.
    #[error("memory plan: op {op} of graph `{graph}` is missing from the order")]
    MissingOp {
        /// Graph name.
        graph: String,
        /// Op description.
        op: String,
    },
    /// An op reads a value before the op producing it runs.
    #[error("memory plan: op {op} at step {step} reads `{value}` before its producer {producer} runs")]
    UseBeforeDef {
        /// Reading op description.
        op: String,
        /// Its step.
        step: usize,
        /// Value name.
        value: String,
        /// Producer description.
        producer: String,
    },
    /// A tensor's size does not fit in 64 bits.
    #[error("memory plan: the size of tensor `{value}` overflows")]
    SizeOverflow {
        /// Value name.
        value: String,
    },
    /// The arena is larger than the SRAM.
    #[error(
        "memory plan: the SRAM arena needs {needed} bytes but {available} are available (most memory is live at \
         step {largest_step}, {op})"
    )]
    DoesNotFit {
        /// Arena bytes the plan needs.
        needed: u64,
        /// SRAM bytes available.
        available: u64,
        /// The step with the most live bytes.
        largest_step: usize,
        /// The op running at that step.
        op: String,
    },
}

/// `conv_2d #3 (-> name)`: an op as error messages name it.
fn describe(g: &Graph, id: OpId) -> String {
    match g.get_op(id) {
        Some(o) => {
            let out = o.outputs.first().map(|&v| format!(" -> `{}`", g.value(v).name)).unwrap_or_default();
            format!("{} #{}{}", o.op.mnemonic(), id.index(), out)
        }
        None => format!("#{}", id.index()),
    }
}

/// Plans SRAM offsets for every non-constant value of `g` and flash offsets for its
/// constants, for the execution order `order` (every op of `g` exactly once, producers
/// before readers). See the module documentation for the rules.
pub fn plan_memory(g: &Graph, order: &[OpId], opts: &PlanOptions) -> Result<MemoryPlan, PlanError> {
    if opts.alignment == 0 {
        return Err(PlanError::ZeroAlignment);
    }
    validate_order(g, order)?;
    let n = g.value_count();
    let end = order.len().saturating_sub(1);
    let referenced = g.live_values();
    let in_arena = |v: ValueId| referenced[v.index()] && !g.value(v).is_constant();

    // Liveness per value.
    let mut first: Vec<Option<usize>> = vec![None; n];
    let mut last: Vec<Option<usize>> = vec![None; n];
    let mut touch = |v: ValueId, i: usize| {
        let f = &mut first[v.index()];
        *f = Some(f.map_or(i, |f| f.min(i)));
        let l = &mut last[v.index()];
        *l = Some(l.map_or(i, |l| l.max(i)));
    };
    for v in g.value_ids().filter(|&v| in_arena(v)) {
        // Values without a producer (graph inputs, variables) exist from the start.
        if g.producer(v).is_none() {
            touch(v, 0);
        }
    }
    for (i, &id) in order.iter().enumerate() {
        let o = g.op(id);
        for v in o.inputs.iter().flatten().chain(&o.outputs).chain(&o.intermediates) {
            if in_arena(*v) {
                touch(*v, i);
            }
        }
    }
    for v in g.outputs.iter().copied().chain(g.value_ids().filter(|&v| g.value(v).is_variable)) {
        if in_arena(v) {
            touch(v, end);
        }
    }

    // Raw sizes.
    let mut raw = vec![0u64; n];
    for v in g.value_ids().filter(|&v| in_arena(v)) {
        let val = g.value(v);
        raw[v.index()] = val.ty.storage_bytes().ok_or_else(|| PlanError::SizeOverflow { value: val.name.clone() })?;
    }

    // Alias chains: owner[v] is the value whose buffer v uses.
    let mut owner: Vec<ValueId> = (0..n as u32).map(ValueId).collect();
    for (i, &id) in order.iter().enumerate() {
        let o = g.op(id);
        if !matches!(o.op, npuc_ir::Op::Reshape { .. } | npuc_ir::Op::Squeeze { .. } | npuc_ir::Op::ExpandDims) {
            continue;
        }
        let (Some(x), [y]) = (o.input(0), o.outputs.as_slice()) else { continue };
        let xv = g.value(x);
        let dies_here = last[x.index()] == Some(i) && !g.outputs.contains(&x) && !xv.is_variable;
        if in_arena(x) && in_arena(*y) && dies_here && raw[x.index()] == raw[y.index()] {
            owner[y.index()] = owner[x.index()];
        }
    }

    // One buffer per owner, covering the lifetimes of its aliases.
    let mut by_owner: BTreeMap<ValueId, Buffer> = BTreeMap::new();
    for v in g.value_ids().filter(|&v| in_arena(v)) {
        let (Some(f), Some(l)) = (first[v.index()], last[v.index()]) else { continue };
        let o = owner[v.index()];
        let size = raw[v.index()]
            .div_ceil(opts.alignment)
            .checked_mul(opts.alignment)
            .ok_or_else(|| PlanError::SizeOverflow { value: g.value(v).name.clone() })?;
        let b =
            by_owner.entry(o).or_insert(Buffer { value: o, aliases: Vec::new(), offset: 0, size, first: f, last: l });
        if v != o {
            b.aliases.push(v);
            b.size = b.size.max(size);
        }
        b.first = b.first.min(f);
        b.last = b.last.max(l);
    }
    let mut buffers: Vec<Buffer> = by_owner.into_values().collect();
    for b in &mut buffers {
        b.aliases.sort_by_key(|&v| (first[v.index()], v));
    }

    let arena_bytes = place_greedy_by_size(&mut buffers)?;
    let (lower_bound_bytes, peak_step) = lower_bound(&buffers, order.len());
    if let Some(available) = opts.sram_bytes {
        if arena_bytes > available {
            let op = order.get(peak_step).map_or_else(|| "before the first op".to_string(), |&id| describe(g, id));
            return Err(PlanError::DoesNotFit { needed: arena_bytes, available, largest_step: peak_step, op });
        }
    }

    // Constants, in declaration order.
    let mut flash = Vec::new();
    let mut flash_bytes = 0u64;
    for v in g.value_ids().filter(|&v| referenced[v.index()] && g.value(v).is_constant()) {
        let val = g.value(v);
        let size = val.data.as_ref().map_or(0, |d| d.len() as u64);
        let offset = flash_bytes;
        flash.push(FlashBuffer { value: v, offset, size });
        flash_bytes = size
            .div_ceil(FLASH_ALIGNMENT)
            .checked_mul(FLASH_ALIGNMENT)
            .and_then(|s| offset.checked_add(s))
            .ok_or_else(|| PlanError::SizeOverflow { value: val.name.clone() })?;
    }

    let mut index = BTreeMap::new();
    for (i, b) in buffers.iter().enumerate() {
        for &v in std::iter::once(&b.value).chain(&b.aliases) {
            index.insert(v, i);
        }
    }
    Ok(MemoryPlan {
        buffers,
        arena_bytes,
        lower_bound_bytes,
        peak_step,
        alignment: opts.alignment,
        flash,
        flash_bytes,
        index,
    })
}

/// Checks that `order` runs every op of `g` once, producers before their readers.
fn validate_order(g: &Graph, order: &[OpId]) -> Result<(), PlanError> {
    let mut step: BTreeMap<OpId, usize> = BTreeMap::new();
    for (i, &id) in order.iter().enumerate() {
        if g.get_op(id).is_none() {
            return Err(PlanError::UnknownOp { graph: g.name.clone(), step: i, op: id.index() });
        }
        if let Some(&prev) = step.get(&id) {
            return Err(PlanError::DuplicateOp { op: describe(g, id), first: prev, second: i });
        }
        step.insert(id, i);
    }
    if let Some(missing) = g.op_ids().find(|id| !step.contains_key(id)) {
        return Err(PlanError::MissingOp { graph: g.name.clone(), op: describe(g, missing) });
    }
    for (i, &id) in order.iter().enumerate() {
        for &v in g.op(id).inputs.iter().flatten() {
            if let Some(p) = g.producer(v) {
                if step.get(&p).is_none_or(|&s| s >= i) {
                    return Err(PlanError::UseBeforeDef {
                        op: describe(g, id),
                        step: i,
                        value: g.value(v).name.clone(),
                        producer: describe(g, p),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Greedy by size: largest buffer first, each at the lowest offset clear of every placed
/// buffer live at the same time. Returns the arena size.
fn place_greedy_by_size(buffers: &mut [Buffer]) -> Result<u64, PlanError> {
    let mut todo: Vec<usize> = (0..buffers.len()).collect();
    todo.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].size), buffers[i].first, buffers[i].value));
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut arena = 0u64;
    for i in todo {
        let mut conflicts: Vec<(u64, u64)> = placed
            .iter()
            .map(|&j| &buffers[j])
            .filter(|p| p.size > 0 && p.lifetime_overlaps(&buffers[i]))
            .map(|p| (p.offset, p.offset + p.size))
            .collect();
        conflicts.sort_unstable();
        let size = buffers[i].size;
        let mut offset = 0u64;
        for (start, stop) in conflicts {
            if offset.checked_add(size).is_some_and(|e| e <= start) {
                break;
            }
            offset = offset.max(stop);
        }
        let stop =
            offset.checked_add(size).ok_or(PlanError::SizeOverflow { value: format!("{:?}", buffers[i].value) })?;
        buffers[i].offset = offset;
        arena = arena.max(stop);
        placed.push(i);
    }
    Ok(arena)
}

/// The largest sum of sizes of buffers live at one step over `steps` steps, and its first step.
fn lower_bound(buffers: &[Buffer], steps: usize) -> (u64, usize) {
    let steps = steps.max(1);
    let mut delta = vec![0i128; steps + 1];
    for b in buffers {
        delta[b.first.min(steps - 1)] += i128::from(b.size);
        delta[b.last.min(steps - 1) + 1] -= i128::from(b.size);
    }
    let (mut live, mut best, mut at) = (0i128, 0i128, 0usize);
    for (i, d) in delta.iter().take(steps).enumerate() {
        live += d;
        if live > best {
            best = live;
            at = i;
        }
    }
    (u64::try_from(best).unwrap_or(u64::MAX), at)
}

impl MemoryPlan {
    /// The buffer holding `value`, if it lives in the arena.
    pub fn buffer_of(&self, value: ValueId) -> Option<&Buffer> {
        self.index.get(&value).map(|&i| &self.buffers[i])
    }

    /// The arena offset of `value`, if it lives in the arena.
    pub fn offset_of(&self, value: ValueId) -> Option<u64> {
        self.buffer_of(value).map(|b| b.offset)
    }

    /// Bytes of the buffers live at `step`.
    pub fn live_bytes_at(&self, step: usize) -> u64 {
        self.buffers.iter().filter(|b| b.first <= step && step <= b.last).map(|b| b.size).sum()
    }

    /// Proves the plan sound: no two buffers live at the same step share a byte, every
    /// buffer is aligned and inside the arena, each value has one buffer, the arena is at
    /// least the live-bytes lower bound, and constants are aligned and disjoint in flash.
    pub fn check(&self) -> Result<(), String> {
        let a = self.alignment;
        if a == 0 {
            return Err("alignment is zero".into());
        }
        let mut seen = BTreeMap::new();
        for (i, b) in self.buffers.iter().enumerate() {
            if b.offset % a != 0 || b.size % a != 0 {
                return Err(format!("buffer of {:?} at {}+{} is not {a}-aligned", b.value, b.offset, b.size));
            }
            if b.first > b.last {
                return Err(format!("buffer of {:?} ends (step {}) before it starts ({})", b.value, b.last, b.first));
            }
            if b.offset.checked_add(b.size).is_none_or(|e| e > self.arena_bytes) {
                return Err(format!(
                    "buffer of {:?} at {}+{} exceeds the arena ({})",
                    b.value, b.offset, b.size, self.arena_bytes
                ));
            }
            for &v in std::iter::once(&b.value).chain(&b.aliases) {
                if let Some(j) = seen.insert(v, i) {
                    return Err(format!("{v:?} is in buffers {j} and {i}"));
                }
                if self.index.get(&v) != Some(&i) {
                    return Err(format!("the index does not map {v:?} to buffer {i}"));
                }
            }
        }
        if seen.len() != self.index.len() {
            return Err(format!("the index has {} values, the buffers {}", self.index.len(), seen.len()));
        }
        for (i, x) in self.buffers.iter().enumerate() {
            for y in &self.buffers[i + 1..] {
                if x.lifetime_overlaps(y) && x.address_overlaps(y) {
                    return Err(format!(
                        "{:?} ({}..{} at steps {}..={}) and {:?} ({}..{} at steps {}..={}) overlap",
                        x.value,
                        x.offset,
                        x.offset + x.size,
                        x.first,
                        x.last,
                        y.value,
                        y.offset,
                        y.offset + y.size,
                        y.first,
                        y.last
                    ));
                }
            }
        }
        let steps = self.buffers.iter().map(|b| b.last + 1).max().unwrap_or(1);
        let (bound, _) = lower_bound(&self.buffers, steps);
        if bound != self.lower_bound_bytes {
            return Err(format!("recorded lower bound {} differs from the buffers' {bound}", self.lower_bound_bytes));
        }
        if self.arena_bytes < bound {
            return Err(format!("arena {} is below the live-bytes lower bound {bound}", self.arena_bytes));
        }
        let mut end = 0u64;
        for f in &self.flash {
            if f.offset % FLASH_ALIGNMENT != 0 {
                return Err(format!("constant {:?} at flash offset {} is not aligned", f.value, f.offset));
            }
            if f.offset < end {
                return Err(format!("constant {:?} at flash offset {} overlaps the previous one", f.value, f.offset));
            }
            end = f.offset + f.size;
        }
        if end > self.flash_bytes {
            return Err(format!("constants end at {end}, past flash_bytes {}", self.flash_bytes));
        }
        Ok(())
    }
}
