//! The memory planner: unit cases (reshape aliasing, outputs living to the end, a diamond,
//! errors), a property test on random DAGs checked against liveness recomputed here, and
//! the plans of the int8 fixture models against their lower bounds.

use std::collections::BTreeSet;
use std::path::Path;

use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, Graph, Op, OpId, Operation, Padding, TensorType, Value, ValueId,
};
use npuc_npu::plan::{plan_memory, MemoryPlan, PlanError, PlanOptions, FLASH_ALIGNMENT};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Builds int8 graphs whose ops are only as real as the planner needs (it reads sizes and
/// dataflow, not attributes).
struct B {
    g: Graph,
    n: usize,
}

impl B {
    fn new() -> Self {
        B { g: Graph::new("main"), n: 0 }
    }

    fn name(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}{}", self.n)
    }

    fn input(&mut self, shape: Vec<usize>) -> ValueId {
        let name = self.name("in");
        self.g.add_input(name, TensorType::new(DType::I8, shape))
    }

    fn value(&mut self, shape: Vec<usize>) -> ValueId {
        let name = self.name("v");
        self.g.add_value(Value::new(name, TensorType::new(DType::I8, shape)))
    }

    fn konst(&mut self, len: usize) -> ValueId {
        let name = self.name("w");
        let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
        self.g.add_const(name, TensorType::new(DType::I8, vec![len]), Constant::from_slice(&bytes))
    }

    fn op(&mut self, op: Op, inputs: Vec<ValueId>, out: Vec<usize>) -> ValueId {
        let y = self.value(out);
        self.g.add_op(Operation::new(op, inputs.into_iter().map(Some).collect(), vec![y])).expect("add op");
        y
    }

    fn relu(&mut self, x: ValueId) -> ValueId {
        let s = self.g.value(x).ty.shape.clone();
        self.op(Op::Relu, vec![x], s)
    }

    /// A 1×1 convolution to `c` channels (weights in flash).
    fn conv(&mut self, x: ValueId, c: usize) -> ValueId {
        let s = self.g.value(x).ty.shape.clone();
        let w = self.konst(c * s[3]);
        let attrs = Conv2dAttrs {
            padding: Padding::Same,
            stride: [1, 1],
            dilation: [1, 1],
            activation: Activation::None,
            bias_type: None,
        };
        self.op(Op::Conv2d(attrs), vec![x, w], vec![s[0], s[1], s[2], c])
    }

    fn add(&mut self, a: ValueId, b: ValueId) -> ValueId {
        let s = self.g.value(a).ty.shape.clone();
        self.op(Op::Add { activation: Activation::None, pot_scale_int16: false }, vec![a, b], s)
    }

    fn reshape(&mut self, x: ValueId) -> ValueId {
        let n = self.g.value(x).ty.num_elements().expect("small") as usize;
        self.op(Op::Reshape { new_shape: Some(vec![1, n as i32]) }, vec![x], vec![1, n])
    }

    fn plan(&self) -> MemoryPlan {
        let order = self.g.topo_order().expect("acyclic");
        let plan = plan_memory(&self.g, &order, &PlanOptions::default()).expect("plan");
        plan.check().expect("plan is sound");
        plan
    }
}

/// Liveness recomputed from the definition: `(first, last)` step of every arena value.
fn liveness(g: &Graph, order: &[OpId]) -> Vec<(ValueId, usize, usize)> {
    let end = order.len().saturating_sub(1);
    let step = |op: OpId| order.iter().position(|&o| o == op).expect("op scheduled");
    let referenced = g.live_values();
    g.value_ids()
        .filter(|&v| referenced[v.index()] && !g.value(v).is_constant())
        .map(|v| {
            let first = g.producer(v).map_or(0, step);
            let read = g.uses(v).map(|(op, _)| step(op)).max().unwrap_or(first);
            let last = if g.outputs.contains(&v) { end } else { read.max(first) };
            (v, first, last)
        })
        .collect()
}

/// Whether `a` and `b` may share bytes while both live at step `i`: one is the data operand
/// of an alias op (reshape and friends) producing the other, and that op runs at step `i`
/// (the operand must be dead after it; a later step with both live is a real clash).
fn may_share(g: &Graph, order: &[OpId], i: usize, a: ValueId, b: ValueId) -> bool {
    let direct = |x: ValueId, y: ValueId| {
        g.producer(y).is_some_and(|p| {
            let o = g.op(p);
            matches!(o.op, Op::Reshape { .. } | Op::Squeeze { .. } | Op::ExpandDims)
                && o.input(0) == Some(x)
                && order.get(i) == Some(&p)
        })
    };
    direct(a, b) || direct(b, a)
}

/// Independent soundness: at every step, the byte ranges of the values live there are
/// disjoint unless the values are one alias chain; every arena value has a buffer.
fn assert_sound(g: &Graph, order: &[OpId], plan: &MemoryPlan) {
    let live = liveness(g, order);
    for &(v, _, _) in &live {
        assert!(plan.buffer_of(v).is_some(), "{v:?} has no buffer");
    }
    for i in 0..order.len().max(1) {
        let here: Vec<ValueId> = live.iter().filter(|&&(_, f, l)| f <= i && i <= l).map(|&(v, _, _)| v).collect();
        for (k, &a) in here.iter().enumerate() {
            for &b in &here[k + 1..] {
                let (x, y) = (plan.buffer_of(a).unwrap(), plan.buffer_of(b).unwrap());
                let (xs, ys) = (g.value(a).ty.storage_bytes().unwrap(), g.value(b).ty.storage_bytes().unwrap());
                let overlap = xs > 0 && ys > 0 && x.offset < y.offset + ys && y.offset < x.offset + xs;
                assert!(
                    !overlap || may_share(g, order, i, a, b),
                    "step {i}: {a:?} at {}+{xs} and {b:?} at {}+{ys} overlap",
                    x.offset,
                    y.offset
                );
            }
        }
    }
}

#[test]
fn reshape_takes_its_dying_operand_buffer() {
    let mut b = B::new();
    let x = b.input(vec![1, 4, 4, 8]);
    let a = b.relu(x);
    let r = b.reshape(a);
    let y = b.relu(r);
    b.g.outputs = vec![y];
    let plan = b.plan();
    let buf = plan.buffer_of(a).unwrap();
    assert_eq!(buf.aliases, vec![r]);
    assert_eq!(plan.buffer_of(r), Some(buf));
    // x, a/r and y: three buffers, the shared one live from a's producer to y's.
    assert_eq!(plan.buffers.len(), 3);
    assert_eq!((buf.first, buf.last), (0, 2));
    assert_sound(&b.g, &b.g.topo_order().unwrap(), &plan);
}

#[test]
fn reshape_of_a_value_read_later_gets_its_own_buffer() {
    let mut b = B::new();
    let x = b.input(vec![1, 4, 4, 8]);
    let a = b.relu(x);
    let r = b.reshape(a);
    let y = b.relu(a);
    b.g.outputs = vec![y, r];
    let plan = b.plan();
    assert!(plan.buffer_of(a).unwrap().aliases.is_empty());
    assert_ne!(plan.offset_of(a), plan.offset_of(r));
    assert_sound(&b.g, &b.g.topo_order().unwrap(), &plan);
}

#[test]
fn reshape_of_a_graph_output_is_not_aliased() {
    let mut b = B::new();
    let x = b.input(vec![1, 2, 2, 16]);
    let a = b.relu(x);
    let r = b.reshape(a);
    b.g.outputs = vec![a, r];
    let plan = b.plan();
    assert_eq!(plan.buffers.len(), 3);
    assert_ne!(plan.offset_of(a), plan.offset_of(r));
}

#[test]
fn graph_outputs_live_to_the_end() {
    let mut b = B::new();
    let x = b.input(vec![1, 8, 8, 4]);
    let y = b.relu(x);
    let z = b.relu(y);
    let w = b.relu(z);
    b.g.outputs = vec![y, w];
    let plan = b.plan();
    let by = plan.buffer_of(y).unwrap();
    assert_eq!((by.first, by.last), (0, 2));
    // Without the output rule w could take y's bytes once z has read them.
    for v in [z, w] {
        assert!(!by.address_overlaps(plan.buffer_of(v).unwrap()), "{v:?} overwrites output {y:?}");
    }
    // x is read only by y's op, at step 0.
    assert_eq!(plan.buffer_of(x).unwrap().last, 0);
}

#[test]
fn diamond_branches_get_disjoint_buffers() {
    let mut b = B::new();
    let x = b.input(vec![1, 8, 8, 8]);
    let l = b.conv(x, 8);
    let r = b.conv(x, 8);
    let s = b.add(l, r);
    b.g.outputs = vec![s];
    let plan = b.plan();
    let (bl, br) = (plan.buffer_of(l).unwrap(), plan.buffer_of(r).unwrap());
    assert!(bl.lifetime_overlaps(br));
    assert!(!bl.address_overlaps(br));
    // x dies at step 1, so s (step 2) may take its bytes: the arena is three tensors.
    assert_eq!(plan.arena_bytes, 3 * 512);
    assert_eq!(plan.arena_bytes, plan.lower_bound_bytes);
    assert_sound(&b.g, &b.g.topo_order().unwrap(), &plan);
}

#[test]
fn constants_go_to_flash_aligned_in_declaration_order() {
    let mut b = B::new();
    let x = b.input(vec![1, 2, 2, 3]);
    let a = b.conv(x, 5); // 15 bytes of weights
    let c = b.conv(a, 7); // 35 bytes
    b.g.outputs = vec![c];
    let plan = b.plan();
    let sizes: Vec<(u64, u64)> = plan.flash.iter().map(|f| (f.offset, f.size)).collect();
    assert_eq!(sizes, vec![(0, 15), (16, 35)]);
    assert_eq!(plan.flash_bytes, 64);
    assert!(plan.flash.iter().all(|f| f.offset % FLASH_ALIGNMENT == 0 && plan.buffer_of(f.value).is_none()));
}

#[test]
fn alignment_rounds_sizes_up() {
    let mut b = B::new();
    let x = b.input(vec![1, 1, 1, 3]);
    let y = b.relu(x);
    b.g.outputs = vec![y];
    let order = b.g.topo_order().unwrap();
    let plan = plan_memory(&b.g, &order, &PlanOptions { alignment: 64, sram_bytes: None }).unwrap();
    plan.check().unwrap();
    assert!(plan.buffers.iter().all(|b| b.size == 64 && b.offset % 64 == 0));
    assert_eq!(plan.arena_bytes, 128);
    assert_eq!(
        plan_memory(&b.g, &order, &PlanOptions { alignment: 0, sram_bytes: None }),
        Err(PlanError::ZeroAlignment)
    );
}

#[test]
fn too_small_sram_names_the_peak_step() {
    let mut b = B::new();
    let x = b.input(vec![1, 4, 4, 4]); // 64 bytes
    let a = b.conv(x, 32); // 512 bytes: x + a = 576 at step 0
    let c = b.conv(a, 2); // 32 bytes
    b.g.outputs = vec![c];
    let order = b.g.topo_order().unwrap();
    let err = plan_memory(&b.g, &order, &PlanOptions { alignment: 16, sram_bytes: Some(500) }).unwrap_err();
    match err {
        PlanError::DoesNotFit { needed, available, largest_step, op } => {
            assert_eq!((needed, available, largest_step), (576, 500, 0));
            assert!(op.starts_with("conv_2d #0"), "{op}");
        }
        other => panic!("expected DoesNotFit, got {other:?}"),
    }
    assert!(plan_memory(&b.g, &order, &PlanOptions { alignment: 16, sram_bytes: Some(576) }).is_ok());
}

#[test]
fn bad_orders_are_errors() {
    let mut b = B::new();
    let x = b.input(vec![1, 2, 2, 2]);
    let a = b.relu(x);
    let c = b.relu(a);
    b.g.outputs = vec![c];
    let o = b.g.topo_order().unwrap();
    let opts = PlanOptions::default();
    assert!(matches!(plan_memory(&b.g, &o[..1], &opts), Err(PlanError::MissingOp { .. })));
    assert!(matches!(plan_memory(&b.g, &[o[0], o[0], o[1]], &opts), Err(PlanError::DuplicateOp { .. })));
    assert!(matches!(plan_memory(&b.g, &[o[1], o[0]], &opts), Err(PlanError::UseBeforeDef { .. })));
    assert!(matches!(plan_memory(&b.g, &[o[0], OpId::new(9)], &opts), Err(PlanError::UnknownOp { .. })));
}

/// One step of a random graph: what op, which earlier values it reads, how big its result is.
#[derive(Clone, Debug)]
enum Step {
    /// A 1×1 conv of a recent value to `c` channels.
    Conv { pick: usize, c: usize },
    /// Relu of a recent value.
    Relu { pick: usize },
    /// A residual add of a recent value and an older one.
    Add { pick: usize, skip: usize },
    /// A reshape of a recent value.
    Reshape { pick: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..3, 1usize..40).prop_map(|(pick, c)| Step::Conv { pick, c }),
        2 => (0usize..3).prop_map(|pick| Step::Relu { pick }),
        2 => (0usize..3, 0usize..8).prop_map(|(pick, skip)| Step::Add { pick, skip }),
        1 => (0usize..3).prop_map(|pick| Step::Reshape { pick }),
    ]
}

/// A random DAG: chains that branch (picks among the three newest values) and rejoin
/// (residual adds with older values), outputs the newest value and maybe one more.
fn build(h: usize, c: usize, steps: &[Step], extra_output: Option<usize>) -> Graph {
    let mut b = B::new();
    let x = b.input(vec![1, h, h, c]);
    let mut vals = vec![x];
    let recent = |vals: &Vec<ValueId>, pick: usize| vals[vals.len() - 1 - pick.min(vals.len() - 1)];
    for s in steps {
        let v = match *s {
            Step::Conv { pick, c } => {
                let a = recent(&vals, pick);
                if b.g.value(a).ty.rank() == 4 {
                    b.conv(a, c)
                } else {
                    b.relu(a)
                }
            }
            Step::Relu { pick } => {
                let a = recent(&vals, pick);
                b.relu(a)
            }
            Step::Add { pick, skip } => {
                let a = recent(&vals, pick);
                let o = vals[skip % vals.len()];
                b.add(a, o)
            }
            Step::Reshape { pick } => {
                let a = recent(&vals, pick);
                b.reshape(a)
            }
        };
        vals.push(v);
    }
    let mut outs = vec![*vals.last().expect("input")];
    if let Some(e) = extra_output {
        let v = vals[e % vals.len()];
        if !outs.contains(&v) {
            outs.push(v);
        }
    }
    b.g.outputs = outs;
    b.g
}

/// A random topological order (any ready op may go next), to test more than `topo_order`.
fn random_order(g: &Graph, seed: u64) -> Vec<OpId> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut done: BTreeSet<OpId> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < g.op_count() {
        let ready: Vec<OpId> = g
            .op_ids()
            .filter(|id| !done.contains(id))
            .filter(|&id| g.op(id).inputs.iter().flatten().all(|&v| g.producer(v).is_none_or(|p| done.contains(&p))))
            .collect();
        let pick = ready[rng.random_range(0..ready.len())];
        done.insert(pick);
        order.push(pick);
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_dags_plan_soundly(
        h in 1usize..9,
        c in 1usize..17,
        steps in prop::collection::vec(step(), 0..24),
        extra in prop::option::of(0usize..30),
        align in prop::sample::select(vec![1u64, 4, 16, 64]),
        seed in any::<u64>(),
    ) {
        let g = build(h, c, &steps, extra);
        for order in [g.topo_order().unwrap(), random_order(&g, seed)] {
            let opts = PlanOptions { alignment: align, sram_bytes: None };
            let plan = plan_memory(&g, &order, &opts).unwrap();
            prop_assert_eq!(plan.check(), Ok(()));
            prop_assert!(plan.arena_bytes >= plan.lower_bound_bytes);
            let peak = (0..order.len().max(1)).map(|i| plan.live_bytes_at(i)).max().unwrap_or(0);
            prop_assert_eq!(peak, plan.lower_bound_bytes);
            prop_assert!(plan.buffers.iter().all(|b| b.offset % align == 0));
            assert_sound(&g, &order, &plan);
            // Deterministic: the same input plans the same.
            prop_assert_eq!(plan_memory(&g, &order, &opts).unwrap(), plan.clone());
            // A budget of exactly the arena fits; one byte less does not.
            let fits = PlanOptions { alignment: align, sram_bytes: Some(plan.arena_bytes) };
            prop_assert!(plan_memory(&g, &order, &fits).is_ok());
            if plan.arena_bytes > 0 {
                let short = PlanOptions { alignment: align, sram_bytes: Some(plan.arena_bytes - 1) };
                let is_does_not_fit = matches!(plan_memory(&g, &order, &short), Err(PlanError::DoesNotFit { .. }));
                prop_assert!(is_does_not_fit);
            }
        }
    }
}

/// Plans every int8 fixture (main graph, topo order) and prints arena vs lower bound vs
/// `npuc_pass::peak_activation_bytes` (unaligned, without aliasing).
#[test]
fn int8_fixtures_plan_near_their_lower_bound() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tflite") && n.contains("_int8"))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "expected the int8 fixtures, found {names:?}");
    println!(
        "{:<32} {:>5} {:>10} {:>10} {:>7} {:>10} {:>9} {:>10}",
        "model", "ops", "arena", "lower", "ratio", "peak_act", "buffers", "flash"
    );
    for name in &names {
        let module = npuc_tflite::import_file(&dir.join(name)).expect("import");
        let g = module.main().expect("main graph");
        let order = g.topo_order().expect("acyclic");
        let plan = plan_memory(g, &order, &PlanOptions::default()).expect("plan");
        plan.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_sound(g, &order, &plan);
        let ratio = plan.arena_bytes as f64 / plan.lower_bound_bytes.max(1) as f64;
        let peak = npuc_pass::peak_activation_bytes(g);
        println!(
            "{name:<32} {:>5} {:>10} {:>10} {:>7.3} {:>10} {:>9} {:>10}",
            order.len(),
            plan.arena_bytes,
            plan.lower_bound_bytes,
            ratio,
            peak,
            plan.buffers.len(),
            plan.flash_bytes
        );
        assert!(plan.arena_bytes >= plan.lower_bound_bytes);
        assert!(ratio <= 1.25, "{name}: arena {} is {ratio:.3}× the lower bound", plan.arena_bytes);
        let consts: u64 = plan.flash.iter().map(|f| f.size).sum();
        assert!(consts > 0 && plan.flash_bytes >= consts, "{name}: flash {} for {consts} bytes", plan.flash_bytes);
    }
}
