//! Property tests of the `.nir` text format: random modules (every op variant, random
//! types, quantization, sparsity, constants, signatures, metadata; graphs need not be
//! consistent or even acyclic) must print, parse back to the same content and print to
//! the same text again.

use std::collections::HashMap;

use bytes::Bytes;
use npuc_ir::parse::{parse_module, MNEMONICS};
use npuc_ir::print::{print_module, PrintOptions};
use npuc_ir::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Names: mostly tame, sometimes anything at all (quotes, controls, non-ASCII).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_/:;.]{0,12}",
        1 => Just(String::new()),
        2 => vec(any::<char>(), 0..8).prop_map(String::from_iter),
        1 => Just("quote\" back\\slash\nnewline\ttab\u{0}nul\u{85}é名".to_string()),
    ]
}

/// f32 values including every special class and NaN payloads.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => any::<f32>(),
        1 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(vec![0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-45, 0.1]),
    ]
}

fn dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

fn quant() -> impl Strategy<Value = Quantization> {
    prop_oneof![
        (any_f32(), any::<i64>()).prop_map(|(s, z)| Quantization::per_tensor(s, z)),
        (vec((any_f32(), -128i64..128), 0..6), 0u32..5).prop_map(|(pairs, axis)| {
            let (s, z) = pairs.into_iter().unzip();
            Quantization::per_channel(s, z, axis)
        }),
        (vec(any_f32(), 0..4), vec(any::<i64>(), 0..4), any::<u32>(), vec(any_f32(), 0..3), vec(any_f32(), 0..3))
            .prop_map(|(scale, zero_point, axis, min, max)| Quantization { scale, zero_point, axis, min, max }),
    ]
}

fn tensor_type() -> impl Strategy<Value = TensorType> {
    (dtype(), vec(0usize..7, 0..5), option::weighted(0.4, quant())).prop_map(|(dtype, shape, quant)| TensorType {
        dtype,
        shape,
        quant,
    })
}

fn index_vector() -> impl Strategy<Value = IndexVector> {
    prop_oneof![
        vec(any::<i32>(), 0..4).prop_map(IndexVector::I32),
        vec(any::<u16>(), 0..4).prop_map(IndexVector::U16),
        vec(any::<u8>(), 0..4).prop_map(IndexVector::U8),
    ]
}

fn sparsity() -> impl Strategy<Value = Sparsity> {
    let dim = (any::<bool>(), any::<i32>(), option::of(index_vector()), option::of(index_vector())).prop_map(
        |(csr, dense_size, array_segments, array_indices)| DimMetadata {
            format: if csr { DimFormat::SparseCsr } else { DimFormat::Dense },
            dense_size,
            array_segments,
            array_indices,
        },
    );
    (vec(any::<i32>(), 0..4), vec(any::<i32>(), 0..3), vec(dim, 0..4))
        .prop_map(|(traversal_order, block_map, dim_metadata)| Sparsity { traversal_order, block_map, dim_metadata })
}

/// Constant data: whole elements of the dtype (printed as element lists when small),
/// ragged bytes (printed as hex), or already elided.
fn data(dtype: DType) -> impl Strategy<Value = Constant> {
    let size = (dtype.bits() / 8).max(1) as usize;
    prop_oneof![
        4 => vec(any::<u8>(), 0..24).prop_map(move |b| {
            let n = b.len() / size * size;
            let mut b = b[..n].to_vec();
            if dtype == DType::Bool {
                b.iter_mut().for_each(|x| *x &= 1);
            }
            Constant::from(b)
        }),
        2 => vec(any::<u8>(), 0..150).prop_map(Constant::from),
        1 => ("[0-9a-f]{16}", 0usize..100_000).prop_map(|(h, n)| Constant::elided(h, n)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    tensor_type().prop_flat_map(|ty| {
        let dt = ty.dtype;
        (
            Just(ty),
            name(),
            option::weighted(0.2, vec(any::<i64>(), 0..5)),
            option::weighted(0.4, data(dt)),
            option::weighted(0.1, sparsity()),
            prop::bool::weighted(0.1),
        )
            .prop_map(|(ty, name, shape_signature, data, sparsity, is_variable)| {
                let mut v = Value::new(name, ty);
                v.shape_signature = shape_signature;
                v.data = data;
                v.sparsity = sparsity;
                v.is_variable = is_variable;
                v
            })
    })
}

/// Raw material for one op of any variant; [`make_op`] turns it into an [`Op`].
#[derive(Clone, Debug)]
struct OpSeed {
    kind: usize,
    ints: Vec<i32>,
    flags: Vec<bool>,
    floats: (f32, f32),
    dtypes: (DType, Option<DType>),
    bytes: (Vec<u8>, Vec<u8>),
    name: String,
    list: Option<Vec<i32>>,
}

fn op_seed() -> impl Strategy<Value = OpSeed> {
    (
        0..MNEMONICS.len(),
        vec(any::<i32>(), 8),
        vec(any::<bool>(), 8),
        (any_f32(), any_f32()),
        (dtype(), option::of(dtype())),
        (vec(any::<u8>(), 0..6), vec(any::<u8>(), 0..6)),
        name(),
        option::of(vec(any::<i32>(), 0..4)),
    )
        .prop_map(|(kind, ints, flags, floats, dtypes, bytes, name, list)| OpSeed {
            kind,
            ints,
            flags,
            floats,
            dtypes,
            bytes,
            name,
            list,
        })
}

fn make_op(s: &OpSeed) -> Op {
    let i = |k: usize| s.ints[k];
    let u = |k: usize| s.ints[k] as u32;
    let f = |k: usize| s.flags[k];
    let act = Activation::ALL[(s.ints[7] as u32 % 6) as usize];
    let pad = if f(7) { Padding::Same } else { Padding::Valid };
    match s.kind {
        0 => Op::Conv2d(Conv2dAttrs {
            padding: pad,
            stride: [u(0), u(1)],
            dilation: [u(2), u(3)],
            activation: act,
            bias_type: s.dtypes.1,
        }),
        1 => Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
            padding: pad,
            stride: [u(0), u(1)],
            dilation: [u(2), u(3)],
            depth_multiplier: u(4),
            activation: act,
        }),
        2 => Op::TransposeConv(TransposeConvAttrs {
            padding: pad,
            stride: [u(0), u(1)],
            activation: act,
            bias_type: s.dtypes.1,
        }),
        3 => Op::FullyConnected(FullyConnectedAttrs {
            activation: act,
            keep_num_dims: f(0),
            shuffled_weights: f(1),
            asymmetric_quantize_inputs: f(2),
            bias_type: s.dtypes.1,
        }),
        4 => Op::Add { activation: act, pot_scale_int16: f(0) },
        5 => Op::Sub { activation: act, pot_scale_int16: f(0) },
        6 => Op::Mul { activation: act },
        7 => Op::Div { activation: act },
        8 => Op::Maximum,
        9 => Op::Minimum,
        10 => Op::SquaredDifference,
        11 => {
            Op::AveragePool2d(Pool2dAttrs { padding: pad, stride: [u(0), u(1)], filter: [u(2), u(3)], activation: act })
        }
        12 => Op::MaxPool2d(Pool2dAttrs { padding: pad, stride: [u(0), u(1)], filter: [u(2), u(3)], activation: act }),
        13 => Op::Mean { keep_dims: f(0) },
        14 => Op::Sum { keep_dims: f(0) },
        15 => Op::Reshape { new_shape: s.list.clone() },
        16 => Op::Squeeze { axes: s.list.clone().unwrap_or_default() },
        17 => Op::ExpandDims,
        18 => Op::Concatenation { axis: i(0), activation: act },
        19 => Op::Split { num_splits: u(0) },
        20 => Op::SplitV { num_splits: u(0) },
        21 => Op::Pack { values_count: u(0), axis: i(1) },
        22 => Op::Unpack { num: u(0), axis: i(1) },
        23 => Op::Pad,
        24 => Op::PadV2,
        25 => Op::StridedSlice(StridedSliceAttrs {
            begin_mask: i(0),
            end_mask: i(1),
            ellipsis_mask: i(2),
            new_axis_mask: i(3),
            shrink_axis_mask: i(4),
            offset: f(0),
        }),
        26 => Op::Slice,
        27 => Op::Transpose,
        28 => Op::DepthToSpace { block_size: u(0) },
        29 => Op::SpaceToDepth { block_size: u(0) },
        30 => Op::BatchToSpaceNd,
        31 => Op::SpaceToBatchNd,
        32 => Op::ResizeBilinear(ResizeAttrs { align_corners: f(0), half_pixel_centers: f(1) }),
        33 => Op::ResizeNearestNeighbor(ResizeAttrs { align_corners: f(0), half_pixel_centers: f(1) }),
        34 => Op::Relu,
        35 => Op::Relu6,
        36 => Op::ReluN1To1,
        37 => Op::LeakyRelu { alpha: s.floats.0 },
        38 => Op::Prelu,
        39 => Op::Logistic,
        40 => Op::Tanh,
        41 => Op::HardSwish,
        42 => Op::Softmax { beta: s.floats.1 },
        43 => Op::Quantize,
        44 => Op::Dequantize,
        45 => Op::Densify,
        46 => Op::Gather { axis: i(0), batch_dims: i(1) },
        47 => Op::ArgMax { output_type: s.dtypes.0 },
        48 => Op::L2Normalization { activation: act },
        49 => Op::Exp,
        50 => Op::Sqrt,
        51 => Op::Rsqrt,
        52 => Op::Shape { output_type: s.dtypes.0 },
        53 => Op::ReduceProd { keep_dims: f(0) },
        54 => Op::Greater,
        55 => Op::GreaterEqual,
        56 => Op::Less,
        57 => Op::LessEqual,
        58 => Op::Equal,
        59 => Op::NotEqual,
        60 => Op::If { then_graph: u(0), else_graph: u(1) },
        61 => Op::While { cond_graph: u(0), body_graph: u(1) },
        _ => Op::Opaque(OpaqueOp {
            name: s.name.clone(),
            builtin_code: if f(0) { Some(i(0)) } else { None },
            options: Bytes::from(s.bytes.0.clone()),
            custom_options: Bytes::from(s.bytes.1.clone()),
        }),
    }
}

#[derive(Clone, Debug)]
struct OpRecipe {
    seed: OpSeed,
    /// Operand picks (index into the arena, `None` = omitted).
    inputs: Vec<Option<usize>>,
    /// How many results (taken from values nobody produces yet).
    outputs: usize,
    intermediates: Vec<usize>,
    version: u32,
    /// Remove the op after building, leaving a hole in the petgraph.
    remove: bool,
}

fn op_recipe() -> impl Strategy<Value = OpRecipe> {
    (
        op_seed(),
        vec(option::weighted(0.85, any::<usize>()), 0..4),
        prop_oneof![1 => Just(0usize), 6 => Just(1), 2 => 2usize..4],
        vec(any::<usize>(), 0..2),
        prop_oneof![4 => Just(1u32), 1 => any::<u32>()],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(seed, inputs, outputs, intermediates, version, remove)| OpRecipe {
            seed,
            inputs,
            outputs,
            intermediates,
            version,
            remove,
        })
}

#[derive(Clone, Debug)]
struct GraphRecipe {
    name: String,
    values: Vec<Value>,
    ops: Vec<OpRecipe>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

fn graph_recipe() -> impl Strategy<Value = GraphRecipe> {
    (
        prop_oneof![3 => Just("main".to_string()), 1 => Just("g".to_string()), 1 => name()],
        vec(value(), 1..14),
        vec(op_recipe(), 0..8),
        vec(any::<usize>(), 0..4),
        vec(any::<usize>(), 0..4),
    )
        .prop_map(|(name, values, ops, inputs, outputs)| GraphRecipe { name, values, ops, inputs, outputs })
}

fn build_graph(r: &GraphRecipe) -> Graph {
    let mut g = Graph::new(r.name.clone());
    let ids: Vec<ValueId> = r.values.iter().map(|v| g.add_value(v.clone())).collect();
    let n = ids.len();
    let mut unproduced: Vec<ValueId> = ids.clone();
    let mut to_remove = Vec::new();
    for (k, o) in r.ops.iter().enumerate() {
        let take = o.outputs.min(unproduced.len());
        // Rotate the pick so results are not always the lowest ids.
        let start = if unproduced.is_empty() { 0 } else { (k * 7) % unproduced.len() };
        let mut outputs = Vec::new();
        for _ in 0..take {
            let at = start.min(unproduced.len() - 1);
            outputs.push(unproduced.remove(at));
        }
        let mut op =
            Operation::new(make_op(&o.seed), o.inputs.iter().map(|x| x.map(|i| ids[i % n])).collect(), outputs);
        op.intermediates = o.intermediates.iter().map(|&i| ids[i % n]).collect();
        op.version = o.version;
        let id = g.add_op(op).expect("recipe ops are valid");
        if o.remove {
            to_remove.push(id);
        }
    }
    for id in to_remove {
        g.remove_op(id);
    }
    g.inputs = r.inputs.iter().map(|&i| ids[i % n]).collect();
    g.outputs = r.outputs.iter().map(|&i| ids[i % n]).collect();
    g
}

#[derive(Clone, Debug)]
struct SigRecipe {
    key: String,
    graph: usize,
    inputs: Vec<(String, usize)>,
    outputs: Vec<(String, usize)>,
}

fn module() -> impl Strategy<Value = Module> {
    let sig = (name(), any::<usize>(), vec((name(), any::<usize>()), 0..3), vec((name(), any::<usize>()), 0..3))
        .prop_map(|(key, graph, inputs, outputs)| SigRecipe { key, graph, inputs, outputs });
    let meta = (
        name(),
        prop_oneof![
            vec(any::<u8>(), 0..40),
            "[ -~]{0,20}".prop_map(|s| {
                let mut b = s.into_bytes();
                b.extend([0, 0, 0]);
                b
            })
        ],
    );
    (vec(graph_recipe(), 1..4), vec(sig, 0..3), vec(meta, 0..3), name()).prop_map(
        |(graphs, sigs, meta, description)| {
            let graphs: Vec<Graph> = graphs.iter().map(build_graph).collect();
            let signatures = sigs
                .into_iter()
                .map(|s| {
                    // One in (graphs + 1) signatures names a graph that does not exist: allowed
                    // by the data structure as long as it names no values.
                    let gi = s.graph % (graphs.len() + 1);
                    match graphs.get(gi) {
                        Some(g) => {
                            let pick = |m: Vec<(String, usize)>| {
                                m.into_iter().map(|(k, i)| (k, ValueId((i % g.value_count()) as u32))).collect()
                            };
                            Signature { key: s.key, graph: gi, inputs: pick(s.inputs), outputs: pick(s.outputs) }
                        }
                        None => Signature { key: s.key, graph: gi, inputs: vec![], outputs: vec![] },
                    }
                })
                .collect();
            let metadata = meta.into_iter().map(|(name, data)| Metadata { name, data: Bytes::from(data) }).collect();
            Module { graphs, signatures, metadata, description }
        },
    )
}

// ---------------------------------------------------------------------------------------
// Content equality up to arena renumbering
// ---------------------------------------------------------------------------------------

fn f32s_eq(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn quant_eq(a: &Option<Quantization>, b: &Option<Quantization>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            f32s_eq(&a.scale, &b.scale)
                && a.zero_point == b.zero_point
                && a.axis == b.axis
                && f32s_eq(&a.min, &b.min)
                && f32s_eq(&a.max, &b.max)
        }
        _ => false,
    }
}

/// Equal data: the same bytes, or (when the text elided them) the same hash and length.
fn data_eq(a: &Option<Constant>, b: &Option<Constant>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (a.bytes(), b.bytes()) {
            (Some(x), Some(y)) => x == y,
            _ => a.short_hash() == b.short_hash() && a.len() == b.len(),
        },
        _ => false,
    }
}

fn op_eq(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::LeakyRelu { alpha: x }, Op::LeakyRelu { alpha: y })
        | (Op::Softmax { beta: x }, Op::Softmax { beta: y }) => {
            x.to_bits() == y.to_bits() && a.mnemonic() == b.mnemonic()
        }
        _ => a == b,
    }
}

/// Maps values of graph `a` to values of graph `b`, checking they match one to one.
struct Matcher<'g> {
    a: &'g Graph,
    b: &'g Graph,
    fwd: HashMap<ValueId, ValueId>,
    back: HashMap<ValueId, ValueId>,
}

impl Matcher<'_> {
    fn value(&mut self, va: ValueId, vb: ValueId) -> Result<(), String> {
        if let Some(&prev) = self.fwd.get(&va) {
            return if prev == vb { Ok(()) } else { Err(format!("value {va:?} maps to {prev:?} and {vb:?}")) };
        }
        if self.back.contains_key(&vb) {
            return Err(format!("two values map to {vb:?}"));
        }
        self.fwd.insert(va, vb);
        self.back.insert(vb, va);
        let (x, y) = (self.a.value(va), self.b.value(vb));
        let same = x.name == y.name
            && x.ty.dtype == y.ty.dtype
            && x.ty.shape == y.ty.shape
            && quant_eq(&x.ty.quant, &y.ty.quant)
            && x.shape_signature == y.shape_signature
            && data_eq(&x.data, &y.data)
            && x.sparsity == y.sparsity
            && x.is_variable == y.is_variable;
        if same {
            Ok(())
        } else {
            Err(format!("value differs:\n  {x:?}\n  {y:?}"))
        }
    }

    fn values(&mut self, a: &[ValueId], b: &[ValueId]) -> Result<(), String> {
        if a.len() != b.len() {
            return Err(format!("lists differ in length: {a:?} vs {b:?}"));
        }
        a.iter().zip(b).try_for_each(|(&x, &y)| self.value(x, y))
    }
}

fn print_order(g: &Graph) -> Vec<OpId> {
    g.topo_order().unwrap_or_else(|_| g.op_ids().collect())
}

fn modules_equal(a: &Module, b: &Module) -> Result<(), String> {
    if a.description != b.description || a.metadata != b.metadata || a.graphs.len() != b.graphs.len() {
        return Err("description, metadata or graph count differs".into());
    }
    let mut matchers = Vec::new();
    for (ga, gb) in a.graphs.iter().zip(&b.graphs) {
        if ga.name != gb.name {
            return Err(format!("graph name {:?} vs {:?}", ga.name, gb.name));
        }
        let mut m = Matcher { a: ga, b: gb, fwd: HashMap::new(), back: HashMap::new() };
        m.values(&ga.inputs, &gb.inputs)?;
        let (oa, ob) = (print_order(ga), print_order(gb));
        if oa.len() != ob.len() {
            return Err("op count differs".into());
        }
        for (&x, &y) in oa.iter().zip(&ob) {
            let (x, y) = (ga.op(x), gb.op(y));
            if !op_eq(&x.op, &y.op) || x.version != y.version || x.inputs.len() != y.inputs.len() {
                return Err(format!("op differs:\n  {x:?}\n  {y:?}"));
            }
            for (p, q) in x.inputs.iter().zip(&y.inputs) {
                match (p, q) {
                    (None, None) => {}
                    (Some(p), Some(q)) => m.value(*p, *q)?,
                    _ => return Err("omitted operand differs".into()),
                }
            }
            m.values(&x.outputs, &y.outputs)?;
            m.values(&x.intermediates, &y.intermediates)?;
        }
        m.values(&ga.outputs, &gb.outputs)?;
        matchers.push(m);
    }
    if a.signatures.len() != b.signatures.len() {
        return Err("signature count differs".into());
    }
    for (sa, sb) in a.signatures.iter().zip(&b.signatures) {
        if sa.key != sb.key || sa.graph != sb.graph {
            return Err(format!("signature differs: {sa:?} vs {sb:?}"));
        }
        for (ma, mb) in [(&sa.inputs, &sb.inputs), (&sa.outputs, &sb.outputs)] {
            if ma.len() != mb.len() {
                return Err("signature map length differs".into());
            }
            for ((ka, va), (kb, vb)) in ma.iter().zip(mb) {
                if ka != kb {
                    return Err(format!("signature name {ka:?} vs {kb:?}"));
                }
                matchers[sa.graph].value(*va, *vb)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn parse_ok(text: &str) -> Module {
    parse_module(text).unwrap_or_else(|e| panic!("printed text does not parse: {e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn full_constants_round_trip(m in module()) {
        let opts = PrintOptions::full();
        let text = print_module(&m, &opts);
        let back = parse_ok(&text);
        let again = print_module(&back, &opts);
        prop_assert_eq!(&again, &text);
        if let Err(e) = modules_equal(&m, &back) {
            panic!("content differs after round trip: {e}\n{text}");
        }
    }

    #[test]
    fn elided_constants_round_trip(m in module(), threshold in 0usize..16) {
        let opts = PrintOptions { full_constants: false, elide_threshold: threshold };
        let text = print_module(&m, &opts);
        let back = parse_ok(&text);
        let again = print_module(&back, &opts);
        // Elided constants keep the preview they were printed with: a strict fixed point.
        prop_assert_eq!(&again, &text);
        prop_assert_eq!(&print_module(&parse_ok(&again), &opts), &again);
        if let Err(e) = modules_equal(&m, &back) {
            panic!("content differs after round trip: {e}\n{text}");
        }
    }

    #[test]
    fn default_options_round_trip(m in module()) {
        let opts = PrintOptions::default();
        let text = print_module(&m, &opts);
        let again = print_module(&parse_ok(&text), &opts);
        prop_assert_eq!(&again, &text);
    }

    #[test]
    fn damaged_text_never_panics(m in module(), cut in any::<prop::sample::Index>(), edits in vec((any::<prop::sample::Index>(), any::<char>()), 1..4)) {
        let text = print_module(&m, &PrintOptions::default());
        let chars: Vec<char> = text.chars().collect();
        let truncated: String = chars[..cut.index(chars.len() + 1)].iter().collect();
        let _ = parse_module(&truncated);
        let mut edited = chars.clone();
        for (at, c) in edits {
            let i = at.index(edited.len());
            edited[i] = c;
        }
        let edited: String = edited.into_iter().collect();
        if let Err(IrError::Parse { line, col, .. }) = parse_module(&edited) {
            prop_assert!(line >= 1 && col >= 1);
        }
    }

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,80}", t in "[%@#:,(){}<>\\[\\]=\" a-z0-9.x-]{0,80}") {
        let _ = parse_module(&s);
        let _ = parse_module(&t);
        let _ = parse_module(&format!("graph @g(%x: tensor<2xf32>) {{\n{t}\n}}"));
    }
}

// ---------------------------------------------------------------------------------------
// Handwritten snippets
// ---------------------------------------------------------------------------------------

#[test]
fn op_seeds_cover_every_variant() {
    let mut seen: Vec<&str> = (0..MNEMONICS.len())
        .map(|kind| {
            make_op(&OpSeed {
                kind,
                ints: vec![1; 8],
                flags: vec![false; 8],
                floats: (1.0, 1.0),
                dtypes: (DType::I32, None),
                bytes: (vec![], vec![]),
                name: String::new(),
                list: None,
            })
            .mnemonic()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let mut all = MNEMONICS.to_vec();
    all.sort_unstable();
    assert_eq!(seen, all);
}

#[test]
fn handwritten_mobilenet_block() {
    let text = r#"
module attributes {description = "MLIR Converted."} {
  metadata "min_runtime_version" = "1.14.0\00\00\00\00\00\00\00\00\00\00"
  metadata "CONVERSION_METADATA" = hex"100000000c000c000800040000000000"
  signature "serving_default" @main inputs {"input" = %arg0} outputs {"logits" = %4}

  graph @main(%arg0: tensor<1x8x8x3xi8, q<0.0078125:-1>> {name = "serving_default_input:0", shape_signature = [-1, 8, 8, 3]}) {
    %c0 = const dense<hash 0123456789abcdef, 432 bytes, [1, 2, ...]> : tensor<16x3x3x3xi8, q<axis 0: [0.01:0, 0.02:0, 0.03:0, 0.04:0, 0.05:0, 0.06:0, 0.07:0, 0.08:0, 0.09:0, 0.1:0, 0.11:0, 0.12:0, 0.13:0, 0.14:0, 0.15:0, 0.16:0]>> {name = "conv/w"}
    %c1 = const dense<[0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1, 2, 2, 2, 2]> : tensor<16xi32> {name = "conv/b"}
    %c2 = const dense<[1, 16]> : tensor<2xi32>
    %0 = conv_2d(%arg0, %c0, %c1) {padding = same, stride = [2, 2], dilation = [1, 1], activation = relu6} : tensor<1x4x4x16xi8, q<0.0235:-128>> {name = "conv"}
    %1 = average_pool_2d(%0) {padding = valid, stride = [4, 4], filter = [4, 4]} : tensor<1x1x1x16xi8, q<0.0235:-128>>
    %2 = reshape(%1, %c2) {new_shape = [1, 16]} : tensor<1x16xi8, q<0.0235:-128>>
    %3 = softmax(%2) {beta = 1.0} : tensor<1x16xi8, q<0.00390625:-128>>
    %4 = dequantize(%3) : tensor<1x16xf32> {name = "logits"}
    return %4
  }
}
"#;
    let m = parse_module(text).unwrap_or_else(|e| panic!("{e}"));
    let g = m.main().unwrap();
    assert_eq!(g.op_count(), 5);
    assert_eq!(m.metadata.len(), 2);
    assert_eq!(m.metadata[1].data.len(), 16);
    let printed = print_module(&m, &PrintOptions::default());
    // This text is already in printed form.
    assert_eq!(printed, text.trim_start());
    assert_eq!(print_module(&parse_ok(&printed), &PrintOptions::default()), printed);
}

#[test]
fn handwritten_multi_graph_module() {
    let text = r#"
// Comments are allowed anywhere whitespace is.
graph @main(%a: tensor<f32>, %b: tensor<f32>) {
  %r = opaque "WHILE"(%a, %b) {builtin_code = 119, options = hex"0c00000008000c"} : tensor<f32>
  return %r
}
graph @cond(%x: tensor<f32>) {
  %y:2 = opaque "Custom Op"(none, %x) : tensor<bool>, tensor<f32>
  return %y#0
}
graph @"body graph"(%x: tensor<f32>) {
  return %x
}
signature "run" 0 inputs {"a" = %a, "b" = %b} outputs {"r" = %r}
signature "cond" @cond inputs {} outputs {"y" = %y#1}
"#;
    let m = parse_module(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.graphs.len(), 3);
    assert_eq!(m.graphs[2].name, "body graph");
    assert_eq!(m.signatures[1].graph, 1);
    let cond = &m.graphs[1];
    let op = cond.op(cond.topo_order().unwrap()[0]);
    assert_eq!(op.inputs[0], None);
    assert_eq!(op.outputs.len(), 2);
    assert_eq!(m.signatures[1].outputs[0].1, op.outputs[1]);
    let printed = print_module(&m, &PrintOptions::default());
    assert!(printed.contains("graph @\"body graph\"(%arg0: tensor<f32>) {"), "{printed}");
    assert!(printed.contains("signature \"cond\" @cond inputs {} outputs {\"y\" = %0#1}"), "{printed}");
    assert_eq!(print_module(&parse_ok(&printed), &PrintOptions::default()), printed);
}

#[test]
fn duplicate_graph_names_use_indices() {
    let mut m = Module::default();
    for _ in 0..2 {
        let mut g = Graph::new("same");
        let x = g.add_input("x", TensorType::new(DType::F32, vec![]));
        g.outputs.push(x);
        m.graphs.push(g);
    }
    m.signatures.push(Signature { key: "s".into(), graph: 1, inputs: vec![("x".into(), ValueId(0))], outputs: vec![] });
    let printed = print_module(&m, &PrintOptions::default());
    assert!(printed.contains("signature \"s\" 1 inputs {\"x\" = %arg0} outputs {}"), "{printed}");
    let back = parse_ok(&printed);
    assert_eq!(back.signatures[0].graph, 1);
    assert_eq!(print_module(&back, &PrintOptions::default()), printed);
}

#[test]
fn docs_example_is_in_printed_form() {
    // The first example of docs/ir.md must stay valid, printed-form text.
    let doc = include_str!("../../../docs/ir.md");
    let start = doc.find("## A first example").expect("docs/ir.md has its example");
    let block = &doc[start..];
    let open = block.find("```\n").expect("example block") + 4;
    let close = block[open..].find("```").expect("example block end") + open;
    let example = &block[open..close];
    let m = parse_module(example).unwrap_or_else(|e| panic!("docs example does not parse: {e}"));
    npuc_ir::verify::verify_module(&m).unwrap_or_else(|e| panic!("docs example does not verify: {e}"));
    assert_eq!(print_module(&m, &PrintOptions::default()), example);
}
