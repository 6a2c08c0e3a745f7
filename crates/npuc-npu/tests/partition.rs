//! NPU/CPU partitioning: every fixture model against ethos-u55-128 (and SESR against the
//! mobile NPU, which runs its pixel shuffle), and hand-built graphs that break one limit each.

use std::path::{Path, PathBuf};

use npuc_ir::{Activation, Constant, Conv2dAttrs, DType, Graph, Op, OpaqueOp, Operation, Padding, TensorType, Value};
use npuc_npu::partition::{partition, Device, Partition};
use npuc_target::Target;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/fixtures/models")
}

fn fixtures(filter: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tflite") && filter(n))
        .collect();
    names.sort();
    names
}

fn load(name: &str) -> Graph {
    let module = npuc_tflite::import_file(&fixture_dir().join(name)).expect("import");
    module.main().expect("main graph").clone()
}

fn u55() -> Target {
    Target::builtin("ethos-u55-128").expect("builtin target")
}

/// (op mnemonic or opaque name, reason) of every CPU op.
fn cpu_list(g: &Graph, p: &Partition) -> Vec<(String, String)> {
    p.cpu_reasons().map(|(id, r)| (g.op(id).op.display_name().to_string(), r.to_string())).collect()
}

/// Invariants every partition keeps: each op once, in topological order, segments being the
/// maximal same-device runs of the assignments, reasons exactly on CPU ops.
fn check_invariants(name: &str, g: &Graph, p: &Partition) {
    let order = g.topo_order().expect("acyclic");
    let assigned: Vec<_> = p.assignments.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(assigned, order, "{name}: assignments follow the topological order");
    assert_eq!(p.npu_ops() + p.cpu_ops(), g.op_count(), "{name}");
    for (id, d, r) in &p.assignments {
        assert_eq!(*d == Device::Cpu, r.is_some(), "{name}: op #{} {d:?} reason {r:?}", id.index());
    }
    let flat: Vec<_> = p.segments.iter().flat_map(|s| s.ops.iter().copied()).collect();
    assert_eq!(flat, order, "{name}: segments cover the order");
    for w in p.segments.windows(2) {
        assert_ne!(w[0].device, w[1].device, "{name}: adjacent segments differ in device");
    }
    for s in &p.segments {
        assert!(!s.ops.is_empty());
        assert!(s.ops.iter().all(|&id| p.device_of(id) == Some(s.device)), "{name}");
    }
}

/// A fixture, its NPU op count, and its CPU ops as (name, reason substring).
type Expectation = (&'static str, usize, &'static [(&'static str, &'static str)]);

/// What each int8 fixture must do on ethos-u55-128: the CPU ops (mnemonic, reason substring)
/// in order, and the NPU op count. The reasons come from the target file's op list and
/// Vela's rules it cites (DEPTH_TO_SPACE, SPACE_TO_DEPTH, GATHER, … are not NPU ops there).
#[test]
fn int8_fixtures_on_ethos_u55_128() {
    let target = u55();
    const NOT_SUPPORTED: &str = "not supported by ethos-u55-128";
    let expected: &[Expectation] = &[
        // Global average pool with stride 25x5 = IFM size: Vela resets the stride to 1.
        ("ds_cnn_int8.tflite", 12, &[]),
        ("ds_cnn_int8fio.tflite", 12, &[("quantize", "float"), ("dequantize", "float")]),
        ("mobilenet_v2_035_96_int8.tflite", 65, &[]),
        // The flatten's Shape → StridedSlice → Pack computes an i32 shape (folded away by
        // constant folding in a full pipeline).
        ("resnet8_int8.tflite", 17, &[("strided_slice", "dtype: input"), ("pack", "is i32")]),
        ("sesr_m5_x2_int8.tflite", 17, &[("depth_to_space", NOT_SUPPORTED)]),
        (
            "zoo_a_int8.tflite",
            64,
            &[
                ("depth_to_space", NOT_SUPPORTED),
                ("space_to_depth", NOT_SUPPORTED),
                ("space_to_batch_nd", NOT_SUPPORTED),
                ("padv2", NOT_SUPPORTED),
                ("mul", "batch_max: input 'SpaceToBatchND' has batch 4 > 1"),
                ("batch_to_space_nd", NOT_SUPPORTED),
                ("sum", NOT_SUPPORTED),
                ("gather", NOT_SUPPORTED),
            ],
        ),
        (
            "zoo_b_int8.tflite",
            13,
            &[("sqrt", NOT_SUPPORTED), ("div", NOT_SUPPORTED), ("l2_normalization", NOT_SUPPORTED)],
        ),
        (
            "zoo_c_int8.tflite",
            1,
            &[
                ("dequantize", "float"),
                ("greater", "not supported"),
                ("if", "float"),
                ("maximum", "is i32"),
                ("minimum", "is i32"),
                ("while", "float"),
                ("quantize", "float"),
            ],
        ),
        ("zoo_d_int8.tflite", 2, &[("densify", NOT_SUPPORTED), ("conv_2d", "not constant")]),
    ];
    let names = fixtures(|n| n.contains("_int8"));
    assert!(names.len() >= 10, "expected the int8 fixtures, found {names:?}");
    println!("{:<34} {:>4} {:>4} {:>4}  cpu reasons", "fixture", "npu", "cpu", "segs");
    for name in &names {
        let g = load(name);
        let p = partition(&g, &target).expect("partition");
        check_invariants(name, &g, &p);
        let cpu = cpu_list(&g, &p);
        println!("{name:<34} {:>4} {:>4} {:>4}  {cpu:?}", p.npu_ops(), p.cpu_ops(), p.segments.len());
        if name == "zoo_a_int8fio.tflite" {
            // As zoo_a_int8, plus the float interface: quantize of each input, dequantize of
            // each output on the CPU.
            let base = partition(&load("zoo_a_int8.tflite"), &target).expect("partition");
            assert_eq!(p.npu_ops(), base.npu_ops(), "{name}");
            let extra: Vec<_> = cpu.iter().filter(|(_, r)| r.starts_with("float")).collect();
            assert_eq!(p.cpu_ops(), base.cpu_ops() + extra.len(), "{name}: {cpu:?}");
            assert!(extra.iter().all(|(m, _)| m == "quantize" || m == "dequantize"), "{name}: {extra:?}");
            continue;
        }
        let Some((_, npu, want)) = expected.iter().find(|(n, _, _)| n == name) else {
            panic!("{name}: no expectation written for this fixture");
        };
        assert_eq!(p.npu_ops(), *npu, "{name}: NPU ops; CPU: {cpu:?}");
        assert_eq!(cpu.len(), want.len(), "{name}: CPU ops {cpu:?}");
        for ((m, r), (wm, wr)) in cpu.iter().zip(want.iter()) {
            assert_eq!(m, wm, "{name}: {cpu:?}");
            assert!(r.contains(wr), "{name}: {m}: reason {r:?} lacks {wr:?}");
        }
        let report = p.report(&g);
        assert!(report.contains(&format!("{} NPU ops, {} CPU ops", p.npu_ops(), p.cpu_ops())), "{report}");
        for (_, r) in &cpu {
            assert!(report.contains(r.as_str()), "{name}: report lacks {r:?}:\n{report}");
        }
    }
}

/// Ethos-U is integer-only: a float model gets nothing onto the NPU, and every op that reads
/// or writes a float tensor says "float".
#[test]
fn float_fixtures_stay_on_the_cpu() {
    let target = u55();
    let names = fixtures(|n| n.contains("_f32") || n.contains("_f16"));
    assert!(names.len() >= 10, "expected the float fixtures, found {names:?}");
    for name in &names {
        let g = load(name);
        let p = partition(&g, &target).expect("partition");
        check_invariants(name, &g, &p);
        assert_eq!(p.npu_ops(), 0, "{name}: {}", p.report(&g));
        let mut floats = 0;
        for (id, _, reason) in &p.assignments {
            let op = g.op(*id);
            let touches_float = op.outputs.iter().any(|&v| g.value(v).ty.dtype.is_float())
                || op.inputs.iter().flatten().any(|&v| !g.value(v).is_constant() && g.value(v).ty.dtype.is_float());
            let reason = reason.as_deref().unwrap_or_default();
            if touches_float && !matches!(op.op, Op::Opaque(_)) {
                assert!(reason.starts_with("float:"), "{name}: {}: {reason}", op.op.display_name());
                floats += 1;
            }
        }
        assert!(floats >= 1, "{name}: no op gave the float reason:\n{}", p.report(&g));
    }
}

/// The mobile NPU lists depth_to_space, so SESR runs there whole.
#[test]
fn mobile_npu_runs_sesr_pixel_shuffle() {
    let g = load("sesr_m5_x2_int8.tflite");
    let target = Target::builtin("mobile-npu").expect("builtin target");
    let p = partition(&g, &target).expect("partition");
    check_invariants("sesr", &g, &p);
    assert_eq!(p.cpu_ops(), 0, "{}", p.report(&g));
    assert_eq!(p.segments.len(), 1);
    let d2s = g.op_ids().find(|&id| matches!(g.op(id).op, Op::DepthToSpace { .. })).expect("SESR has depth_to_space");
    assert_eq!(p.device_of(d2s), Some(Device::Npu));
    let on_u55 = partition(&g, &u55()).expect("partition");
    assert_eq!(on_u55.device_of(d2s), Some(Device::Cpu));
}

/// A chain of int8 ops built by hand.
struct Chain {
    g: Graph,
    x: npuc_ir::ValueId,
    n: usize,
}

impl Chain {
    fn new(shape: Vec<usize>) -> Self {
        let mut g = Graph::new("main");
        let x = g.add_input("in", TensorType::new(DType::I8, shape));
        Chain { g, x, n: 0 }
    }

    fn shape(&self) -> Vec<usize> {
        self.g.value(self.x).ty.shape.clone()
    }

    fn push(&mut self, op: Op, extra: Vec<npuc_ir::ValueId>, out: TensorType) {
        self.n += 1;
        let y = self.g.add_value(Value::new(format!("v{}", self.n), out));
        let inputs = std::iter::once(self.x).chain(extra).map(Some).collect();
        self.g.add_op(Operation::new(op, inputs, vec![y])).expect("add op");
        self.x = y;
    }

    /// A conv with a `k`×`k` kernel of ones, `c` output channels, VALID padding.
    fn conv(&mut self, k: usize, stride: u32, dilation: u32, c: usize, activation: Activation) {
        let s = self.shape();
        let w = self.g.add_const(
            format!("w{}", self.n),
            TensorType::new(DType::I8, vec![c, k, k, s[3]]),
            Constant::from_slice(&vec![1u8; c * k * k * s[3]]),
        );
        let ek = (k - 1) * dilation as usize + 1;
        let o = |d: usize| (d - ek) / stride as usize + 1;
        let attrs = Conv2dAttrs {
            padding: Padding::Valid,
            stride: [stride, stride],
            dilation: [dilation, dilation],
            activation,
            bias_type: None,
        };
        self.push(Op::Conv2d(attrs), vec![w], TensorType::new(DType::I8, vec![s[0], o(s[1]), o(s[2]), c]));
    }

    fn relu(&mut self) {
        let s = self.shape();
        self.push(Op::Relu, vec![], TensorType::new(DType::I8, s));
    }

    fn opaque(&mut self, name: &str) {
        let s = self.shape();
        let op = OpaqueOp {
            name: name.into(),
            builtin_code: None,
            options: Default::default(),
            custom_options: Default::default(),
        };
        self.push(Op::Opaque(op), vec![], TensorType::new(DType::I8, s));
    }

    fn single_reason(self) -> Option<String> {
        let p = partition(&self.g, &u55()).expect("partition");
        check_invariants("hand-built", &self.g, &p);
        p.assignments.into_iter().last().and_then(|(_, _, r)| r)
    }
}

#[test]
fn conv_within_limits_runs_on_the_npu() {
    let mut c = Chain::new(vec![1, 32, 32, 4]);
    c.conv(3, 3, 1, 8, Activation::Relu6);
    assert_eq!(c.single_reason(), None);
}

#[test]
fn stride_4_conv_falls_back_on_stride_h_max() {
    let mut c = Chain::new(vec![1, 32, 32, 4]);
    c.conv(3, 4, 1, 8, Activation::None);
    let r = c.single_reason().expect("CPU");
    assert!(r.contains("stride_h_max") && r.contains("4 > 3"), "{r}");
}

#[test]
fn dilated_9x9_conv_falls_back_on_kernel_h_max() {
    // 9x9 dilated by 8 covers 65 rows: one beyond Ethos-U's 64.
    let mut c = Chain::new(vec![1, 80, 80, 1]);
    c.conv(9, 1, 8, 1, Activation::None);
    let r = c.single_reason().expect("CPU");
    assert!(r.contains("kernel_h_max") && r.contains("65 > 64"), "{r}");
    // Dilation 7 (57 rows) is within the limit.
    let mut c = Chain::new(vec![1, 80, 80, 1]);
    c.conv(9, 1, 7, 1, Activation::None);
    assert_eq!(c.single_reason(), None);
}

#[test]
fn sign_bit_activation_falls_back() {
    let mut c = Chain::new(vec![1, 8, 8, 4]);
    c.conv(1, 1, 1, 4, Activation::SignBit);
    let r = c.single_reason().expect("CPU");
    assert!(r.contains("fused activation sign_bit"), "{r}");
}

#[test]
fn batch_2_falls_back_on_batch_max() {
    let mut c = Chain::new(vec![2, 8, 8, 4]);
    c.relu();
    let r = c.single_reason().expect("CPU");
    assert!(r.contains("batch_max") && r.contains("batch 2 > 1"), "{r}");
}

#[test]
fn huge_dimension_falls_back_on_tensor_dim_max() {
    let mut c = Chain::new(vec![1, 1, 70000, 1]);
    c.relu();
    let r = c.single_reason().expect("CPU");
    assert!(r.contains("tensor_dim_max") && r.contains("70000 > 65535"), "{r}");
}

#[test]
fn weight_sum_over_the_limit_falls_back() {
    // 64x64 kernel of -128 over 8 channels: 8 * 4096 * 128 = 4194304 per output channel
    // is within 127 * 65536 = 8323072; 16 channels double it past the limit.
    for (channels, fits) in [(8usize, true), (16, false)] {
        let mut c = Chain::new(vec![1, 64, 64, channels]);
        let s = c.shape();
        let w = c.g.add_const(
            "w",
            TensorType::new(DType::I8, vec![1, 64, 64, s[3]]),
            Constant::from_slice(&vec![0x80u8; 64 * 64 * s[3]]),
        );
        let attrs = Conv2dAttrs {
            padding: Padding::Valid,
            stride: [1, 1],
            dilation: [1, 1],
            activation: Activation::None,
            bias_type: None,
        };
        c.push(Op::Conv2d(attrs), vec![w], TensorType::new(DType::I8, vec![1, 1, 1, 1]));
        let r = c.single_reason();
        assert_eq!(r.is_none(), fits, "{channels} channels: {r:?}");
        if let Some(r) = r {
            assert!(r.contains("weights_sum_max") && r.contains("8388608 in one channel > 8323072"), "{r}");
        }
    }
}

#[test]
fn segments_split_around_a_custom_op() {
    let mut c = Chain::new(vec![1, 8, 8, 4]);
    c.relu();
    c.relu();
    c.opaque("MyCustom");
    c.relu();
    let p = partition(&c.g, &u55()).expect("partition");
    check_invariants("chain", &c.g, &p);
    let shape: Vec<_> = p.segments.iter().map(|s| (s.device, s.ops.len())).collect();
    assert_eq!(shape, vec![(Device::Npu, 2), (Device::Cpu, 1), (Device::Npu, 1)]);
    let cpu = cpu_list(&c.g, &p);
    assert_eq!(cpu.len(), 1);
    assert!(cpu[0].1.contains("custom/opaque op 'MyCustom'"), "{cpu:?}");
}
