//! The `lut` kernels (LOGISTIC, TANH, HARD_SWISH, SOFTMAX, EXP, SQRT, RSQRT,
//! L2_NORMALIZATION, RESIZE_BILINEAR) against LiteRT's reference kernels
//! (`OpResolverType.BUILTIN_REF`), bit for bit.
//!
//! Each case is a one-op graph built with npuc's IR, exported to .tflite and run by
//! `tools/litert_oracle.py` on 10 random seeds (uniform over the whole integer range, so an
//! 8-bit table is exercised everywhere); elementwise ops are also run on their whole input
//! domain (every int8 value, every int16 value). Prepare-time refusals (fixed output
//! scales, zero points) and run-time failures (negative SQRT/RSQRT inputs) must match too.
//! The same ops cut out of the int8 fixtures (zoo_a, zoo_b) are checked with their own
//! quantization. A last test prints where LiteRT's other resolvers (`default` = builtin
//! optimized kernels plus XNNPACK, `nodelegate` = without XNNPACK) differ from the
//! reference kernels; run with `--nocapture` to see it.
//!
//! The oracle needs the repository's `.venv`; a missing one is a failure, never a skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python, read_npy, repo, scratch};

use bytes::Bytes;
use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{
    Activation, Constant, DType, Graph, Module, Op, Operation, Quantization, ResizeAttrs, TensorType, Value,
};

const SEEDS: usize = 10;

// ---------------------------------------------------------------------------------------
// oracle plumbing
// ---------------------------------------------------------------------------------------

/// Runs the oracle's model wrapper on one input holding every value of `[lo, hi]` in
/// turn (the input's element count must cover the range), writing in_0/out_0.npy.
fn oracle_domain(model: &Path, resolver: &str, out: &Path, lo: i64, hi: i64) -> Result<PathBuf, String> {
    const SCRIPT: &str = r#"
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[1], "tools"))
import litert_oracle as o
model, resolver, out, lo, hi = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
try:
    m = o.Model(model, resolver, 1)
    d = m.inputs[0]
    shape = o.concrete_shape(d)
    n = int(np.prod(shape))
    a = (lo + np.arange(n) % (hi - lo + 1)).astype(np.dtype(d["dtype"])).reshape(shape)
    outs = m.run([a])
except o.OracleError as e:
    print(f"error: {e.path}: {e.what}", file=sys.stderr)
    sys.exit(2)
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "in_0.npy"), a)
np.save(os.path.join(out, "out_0.npy"), outs[0])
"#;
    let res = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(repo())
        .arg(model)
        .arg(resolver)
        .arg(out)
        .arg(lo.to_string())
        .arg(hi.to_string())
        .output()
        .expect("cannot start the oracle");
    if res.status.success() {
        Ok(out.to_path_buf())
    } else {
        Err(String::from_utf8_lossy(&res.stderr).into_owned())
    }
}

fn ints(t: &Tensor) -> Vec<i64> {
    t.data.to_f64_vec().into_iter().map(|x| x as i64).collect()
}

// ---------------------------------------------------------------------------------------
// graphs
// ---------------------------------------------------------------------------------------

fn qtype(dtype: DType, shape: &[usize], (scale, zp): (f32, i64)) -> TensorType {
    TensorType::new(dtype, shape.to_vec()).with_quant(Quantization::per_tensor(scale, zp))
}

/// A graph with one elementwise op (or softmax / l2 normalization) of one operand.
fn unary(op: Op, shape: &[usize], (din, qin): (DType, (f32, i64)), (dout, qout): (DType, (f32, i64))) -> Graph {
    let mut g = Graph::new("main");
    let x = g.add_input("x", qtype(din, shape, qin));
    let y = g.add_value(Value::new("y", qtype(dout, shape, qout)));
    g.add_op(Operation::new(op, vec![Some(x)], vec![y])).unwrap();
    g.outputs.push(y);
    g
}

fn resize(dtype: DType, input: [usize; 4], out_hw: [usize; 2], q: (f32, i64), attrs: ResizeAttrs) -> Graph {
    let mut g = Graph::new("main");
    let x = g.add_input("x", qtype(dtype, &input, q));
    let bytes: Vec<u8> = out_hw.iter().flat_map(|&d| (d as i32).to_le_bytes()).collect();
    let size = g.add_const("size", TensorType::new(DType::I32, vec![2]), Constant::from(bytes));
    let y = g.add_value(Value::new("y", qtype(dtype, &[input[0], out_hw[0], out_hw[1], input[3]], q)));
    g.add_op(Operation::new(Op::ResizeBilinear(attrs), vec![Some(x), Some(size)], vec![y])).unwrap();
    g.outputs.push(y);
    g
}

struct Case {
    name: String,
    graph: Graph,
    /// For one-operand elementwise ops: the input range to run exhaustively.
    domain: Option<(i64, i64)>,
    /// Whether to run the random seeds (not for ops that fail on part of the range).
    random: bool,
}

fn case(name: impl Into<String>, graph: Graph, domain: Option<(i64, i64)>) -> Case {
    Case { name: name.into(), graph, domain, random: true }
}

const I8: (i64, i64) = (-128, 127);
const U8: (i64, i64) = (0, 255);
const I16: (i64, i64) = (-32768, 32767);

/// Every op/dtype/quantization combination the reference kernels must agree on.
fn cases() -> Vec<Case> {
    use DType::{I16 as S16, I8 as S8, U8 as B8};
    let v8 = [1, 4096];
    let v16 = [4, 16384];
    let mut c = Vec::new();
    let sig8 = (1.0 / 256.0, -128);
    for (i, q) in [(0.01568573, 0), (0.1, -20), (0.003, 50), (1.0, 0), (0.25, 127)].into_iter().enumerate() {
        c.push(case(format!("logistic i8 #{i}"), unary(Op::Logistic, &v8, (S8, q), (S8, sig8)), Some(I8)));
    }
    c.push(case("logistic i8 out zp 0", unary(Op::Logistic, &v8, (S8, (0.05, 3)), (S8, (1.0 / 256.0, 0))), Some(I8)));
    c.push(case("logistic u8", unary(Op::Logistic, &v8, (B8, (0.05, 128)), (B8, (1.0 / 256.0, 0))), Some(U8)));
    for (i, s) in [1.0 / 4096.0, 1.0 / 2048.0, 0.0003, 0.002, 1.0 / 32768.0].into_iter().enumerate() {
        c.push(case(
            format!("logistic i16 #{i}"),
            unary(Op::Logistic, &v16, (S16, (s, 0)), (S16, (1.0 / 32768.0, 0))),
            Some(I16),
        ));
    }
    for (i, (qi, qo)) in [((0.0156847, 0), (1.0 / 128.0, 0)), ((0.05, -10), (0.01, 5)), ((0.5, 100), (1.0 / 128.0, -3))]
        .into_iter()
        .enumerate()
    {
        c.push(case(format!("tanh i8 #{i}"), unary(Op::Tanh, &v8, (S8, qi), (S8, qo)), Some(I8)));
    }
    c.push(case("tanh u8", unary(Op::Tanh, &v8, (B8, (0.03, 120)), (B8, (1.0 / 128.0, 128))), Some(U8)));
    for (i, s) in [1.0 / 4096.0, 1.0 / 2048.0, 1.0 / 1024.0, 0.0003, 0.002].into_iter().enumerate() {
        c.push(case(
            format!("tanh i16 #{i}"),
            unary(Op::Tanh, &v16, (S16, (s, 0)), (S16, (1.0 / 32768.0, 0))),
            Some(I16),
        ));
    }
    for (i, (qi, qo)) in [
        ((0.02352705, 0), (0.01323248, -100)),
        ((0.05, 10), (0.03, -128)),
        ((0.1, -128), (0.08, -50)),
        ((0.002, 3), (0.001, -7)),
        ((0.2, 50), (0.9, 0)),
        ((0.01, 0), (0.5, 100)),
    ]
    .into_iter()
    .enumerate()
    {
        c.push(case(format!("hard_swish i8 #{i}"), unary(Op::HardSwish, &v8, (S8, qi), (S8, qo)), Some(I8)));
    }
    c.push(case("hard_swish u8", unary(Op::HardSwish, &v8, (B8, (0.04, 100)), (B8, (0.03, 20))), Some(U8)));

    for (i, (shape, q, beta)) in [
        (vec![1, 10], (0.00452406, 35), 1.0),
        (vec![4, 37], (0.1, -5), 1.0),
        (vec![3, 64], (0.05, 0), 0.5),
        (vec![2, 3, 17], (0.02, 7), 2.0),
        (vec![5, 9], (64.0, 0), 1.0),
        (vec![2, 300], (0.001, -100), 1.0),
        (vec![8, 1], (0.1, 0), 1.0),
    ]
    .into_iter()
    .enumerate()
    {
        let g = unary(Op::Softmax { beta }, &shape, (S8, q), (S8, sig8));
        c.push(case(format!("softmax i8 #{i}"), g, None));
    }
    c.push(case(
        "softmax i8->i16",
        unary(Op::Softmax { beta: 1.0 }, &[6, 21], (S8, (0.07, -3)), (S16, (1.0 / 65536.0, -32768))),
        None,
    ));
    c.push(case(
        "softmax u8",
        unary(Op::Softmax { beta: 1.0 }, &[6, 21], (B8, (0.07, 130)), (B8, (1.0 / 256.0, 0))),
        None,
    ));
    c.push(case(
        "softmax u8->i16",
        unary(Op::Softmax { beta: 0.7 }, &[3, 40], (B8, (0.05, 0)), (S16, (1.0 / 65536.0, -32768))),
        None,
    ));
    for (i, (shape, s, beta)) in
        [(vec![3, 20], 0.001, 1.0), (vec![2, 4, 33], 0.0002, 1.0), (vec![5, 7], 0.0005, 0.3)].into_iter().enumerate()
    {
        let g = unary(Op::Softmax { beta }, &shape, (S16, (s, 0)), (S16, (1.0 / 32768.0, 0)));
        c.push(case(format!("softmax i16 #{i}"), g, None));
    }

    for (i, (qi, qo)) in [
        ((0.00776619, -2), (0.01065253, -128)),
        ((0.05, 0), (0.5, -128)),
        ((0.1, 0), (0.02, 0)),
        ((1.0, -128), (1.0, 0)),
        ((0.03, 60), (0.001, -120)),
    ]
    .into_iter()
    .enumerate()
    {
        c.push(case(format!("exp i8 #{i}"), unary(Op::Exp, &v8, (S8, qi), (S8, qo)), Some(I8)));
    }
    for (i, (qi, qo)) in
        [((0.0003, 0), (0.001, 0)), ((0.0002, 0), (0.0005, 0)), ((0.00005, 0), (0.0001, 0))].into_iter().enumerate()
    {
        c.push(case(format!("exp i16 #{i}"), unary(Op::Exp, &v16, (S16, qi), (S16, qo)), Some(I16)));
    }
    for (i, (qi, qo)) in [
        ((0.00489652, -128), (0.00848036, -128)),
        ((0.1, -128), (0.05, 0)),
        ((2.0, -128), (0.3, -100)),
        ((2.0, -128), (1e-9, 0)),
    ]
    .into_iter()
    .enumerate()
    {
        c.push(case(format!("sqrt i8 #{i}"), unary(Op::Sqrt, &v8, (S8, qi), (S8, qo)), Some(I8)));
    }
    for (i, (qi, qo)) in
        [((0.00489602, -128), (0.00784266, -128)), ((0.02, -128), (0.05, -100)), ((1.5, -128), (0.004, -128))]
            .into_iter()
            .enumerate()
    {
        c.push(case(format!("rsqrt i8 #{i}"), unary(Op::Rsqrt, &v8, (S8, qi), (S8, qo)), Some(I8)));
    }
    // int16 SQRT/RSQRT are symmetric and fail on negative inputs: only their non-negative
    // half is run (random inputs are checked to fail alike in another test).
    for (name, op, qi, qo) in
        [("sqrt i16", Op::Sqrt, (0.001, 0), (0.0005, 0)), ("rsqrt i16", Op::Rsqrt, (0.0001, 0), (0.001, 0))]
    {
        let g = unary(op, &[2, 16384], (S16, qi), (S16, qo));
        c.push(Case { random: false, ..case(name, g, Some((0, 32767))) });
    }

    let l2 = (1.0 / 128.0, 0);
    for (i, (shape, q)) in [
        (vec![2, 16], (0.00776619, -2)),
        (vec![3, 5, 7], (0.05, 10)),
        (vec![1, 1], (0.1, 0)),
        (vec![16, 300], (0.02, -128)),
    ]
    .into_iter()
    .enumerate()
    {
        let g = unary(Op::L2Normalization { activation: Activation::None }, &shape, (S8, q), (S8, l2));
        c.push(case(format!("l2_normalization i8 #{i}"), g, None));
    }

    let modes = [
        ("", ResizeAttrs { align_corners: false, half_pixel_centers: false }),
        (" align", ResizeAttrs { align_corners: true, half_pixel_centers: false }),
        (" half", ResizeAttrs { align_corners: false, half_pixel_centers: true }),
    ];
    for (dtype, q) in [(S8, (0.03180683, -42)), (S16, (0.001, 0)), (B8, (0.02, 128))] {
        for (m, attrs) in &modes {
            for (i, (input, out_hw)) in
                [([1, 8, 8, 40], [16, 16]), ([2, 9, 7, 3], [4, 5]), ([1, 3, 5, 2], [7, 11]), ([1, 1, 4, 3], [3, 1])]
                    .into_iter()
                    .enumerate()
            {
                let g = resize(dtype, input, out_hw, q, attrs.clone());
                c.push(case(format!("resize_bilinear {dtype}{m} #{i}"), g, None));
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------------------
// comparison
// ---------------------------------------------------------------------------------------

fn export(g: &Graph, path: &Path) {
    let bytes = npuc_tflite::export(&Module::from_graph(g.clone())).expect("export");
    std::fs::write(path, bytes).unwrap();
}

/// Runs npuc on the inputs of an oracle output directory and lists the elements that
/// differ (at most a few, described), or the error npuc gave.
fn compare_dir(g: &Graph, dir: &Path) -> Result<Vec<String>, String> {
    let interp = Interpreter::new(g, &Options { threads: 1 }).map_err(|e| e.to_string())?;
    let inputs: Vec<Tensor> = (0..g.inputs.len()).map(|i| read_npy(&dir.join(format!("in_{i}.npy")))).collect();
    let first = ints(&inputs[0]);
    let outs = interp.run(inputs).map_err(|e| e.to_string())?;
    let mut diffs = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        let want = read_npy(&dir.join(format!("out_{i}.npy")));
        if o.shape != want.shape || o.dtype() != want.dtype() {
            diffs.push(format!(
                "output {i}: npuc {} {:?}, LiteRT {} {:?}",
                o.dtype(),
                o.shape,
                want.dtype(),
                want.shape
            ));
            continue;
        }
        let (a, b) = (ints(o), ints(&want));
        let bad: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
        if !bad.is_empty() {
            let show: Vec<String> = bad
                .iter()
                .take(4)
                .map(|&k| {
                    let x = if first.len() == a.len() { format!(" (input {})", first[k]) } else { String::new() };
                    format!("[{k}]{x} npuc {} LiteRT {}", a[k], b[k])
                })
                .collect();
            diffs.push(format!("output {i}: {} of {} differ: {}", bad.len(), a.len(), show.join(", ")));
        }
    }
    Ok(diffs)
}

/// Checks one case against one resolver on random seeds and (if set) the whole domain.
/// `Ok(None)` = bit-exact; `Ok(Some(why))` = differs; `Err` = a run failed.
fn check(case: &Case, resolver: &str, dir: &Path) -> Result<Option<String>, String> {
    std::fs::create_dir_all(dir).unwrap();
    let model = dir.join("model.tflite");
    export(&case.graph, &model);
    let mut runs = if case.random { common::oracle(&model, resolver, &dir.join("seeds"), SEEDS)? } else { Vec::new() };
    if let Some((lo, hi)) = case.domain {
        runs.push(oracle_domain(&model, resolver, &dir.join("domain"), lo, hi)?);
    }
    for run in &runs {
        let diffs = compare_dir(&case.graph, run).map_err(|e| format!("npuc failed: {e}"))?;
        if !diffs.is_empty() {
            return Ok(Some(format!("{}: {}", run.file_name().unwrap().to_string_lossy(), diffs.join("; "))));
        }
    }
    Ok(None)
}

/// Runs `f` over the cases on two worker threads, keeping the order.
fn par_map<T: Send>(cases: &[Case], f: impl Fn(usize, &Case) -> T + Sync) -> Vec<T> {
    let mut out: Vec<Option<T>> = (0..cases.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers = 2;
        let chunks: Vec<_> = out.chunks_mut(cases.len().div_ceil(workers).max(1)).collect();
        let mut start = 0;
        for chunk in chunks {
            let n = chunk.len();
            let f = &f;
            let base = start;
            s.spawn(move || {
                for (k, slot) in chunk.iter_mut().enumerate() {
                    *slot = Some(f(base + k, &cases[base + k]));
                }
            });
            start += n;
        }
    });
    out.into_iter().map(Option::unwrap).collect()
}

#[test]
fn lut_kernels_are_bit_exact_against_litert_reference_kernels() {
    let tmp = scratch("ref");
    let cases = cases();
    let results = par_map(&cases, |i, c| check(c, "ref", &tmp.join(format!("case{i}"))));
    let mut failures = Vec::new();
    for (c, r) in cases.iter().zip(&results) {
        let status = match r {
            Ok(None) => "bit-exact".to_string(),
            Ok(Some(why)) => {
                failures.push(format!("{}: {why}", c.name));
                "DIFFERS".into()
            }
            Err(e) => {
                failures.push(format!("{}: {e}", c.name));
                "ERROR".into()
            }
        };
        eprintln!("{:<34} {status}", c.name);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with LiteRT's reference kernels:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Graphs LiteRT refuses (in Prepare, or for an unsupported type) must be refused by npuc
/// too, not given numbers.
#[test]
fn prepare_refusals_match_litert() {
    use DType::I8 as S8;
    let v = [1, 64];
    let refused = [
        case(
            "logistic i8 output scale 1/255",
            unary(Op::Logistic, &v, (S8, (0.1, 0)), (S8, (1.0 / 255.0, -128))),
            None,
        ),
        case(
            "softmax i8 output zero point 0",
            unary(Op::Softmax { beta: 1.0 }, &v, (S8, (0.1, 0)), (S8, (1.0 / 256.0, 0))),
            None,
        ),
        case(
            "softmax i8 output scale 1/200",
            unary(Op::Softmax { beta: 1.0 }, &v, (S8, (0.1, 0)), (S8, (1.0 / 200.0, -128))),
            None,
        ),
        case("hard_swish output multiplier >= 1", unary(Op::HardSwish, &v, (S8, (1.0, 0)), (S8, (0.001, 0))), None),
        case(
            "l2_normalization output scale 1/100",
            unary(Op::L2Normalization { activation: Activation::None }, &v, (S8, (0.1, 0)), (S8, (0.01, 0))),
            None,
        ),
        case(
            "l2_normalization relu",
            unary(Op::L2Normalization { activation: Activation::Relu }, &v, (S8, (0.1, 0)), (S8, (1.0 / 128.0, 0))),
            None,
        ),
        case(
            "logistic i16 output scale 2^-14",
            unary(Op::Logistic, &v, (DType::I16, (1.0 / 4096.0, 0)), (DType::I16, (1.0 / 16384.0, 0))),
            None,
        ),
        case("exp i16 input zero point", unary(Op::Exp, &v, (DType::I16, (0.001, 5)), (DType::I16, (0.001, 0))), None),
        case(
            "exp i16 output zero point",
            unary(Op::Exp, &v, (DType::I16, (0.001, 0)), (DType::I16, (0.001, -5))),
            None,
        ),
        case("sqrt i16 zero point", unary(Op::Sqrt, &v, (DType::I16, (0.001, 0)), (DType::I16, (0.001, 3))), None),
        case(
            "tanh i16 input zero point",
            unary(Op::Tanh, &v, (DType::I16, (1.0 / 4096.0, 1)), (DType::I16, (1.0 / 32768.0, 0))),
            None,
        ),
        case(
            "resize_bilinear uint16 (LiteRT 2.3)",
            resize(DType::U16, [1, 2, 2, 1], [4, 4], (0.1, 0), ResizeAttrs::default()),
            None,
        ),
        case(
            "resize_bilinear align+half",
            resize(S8, [1, 2, 2, 1], [4, 4], (0.1, 0), ResizeAttrs { align_corners: true, half_pixel_centers: true }),
            None,
        ),
    ];
    let tmp = scratch("refused");
    let mut failures = Vec::new();
    for (i, c) in refused.iter().enumerate() {
        let model = tmp.join(format!("case{i}.tflite"));
        export(&c.graph, &model);
        let litert = common::oracle(&model, "ref", &tmp.join(format!("case{i}")), SEEDS);
        let npuc = Interpreter::new(&c.graph, &Options { threads: 1 }).and_then(|it| {
            let x = &c.graph.value(c.graph.inputs[0]).ty;
            it.run(vec![Tensor::zeros(x)])
        });
        match (litert, npuc) {
            (Err(_), Err(e)) => eprintln!("{:<36} refused by both: {e}", c.name),
            (l, n) => {
                failures.push(format!("{}: LiteRT {:?}, npuc {:?}", c.name, l.map(|_| "runs"), n.map(|_| "runs")))
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "refusals differ:\n{}", failures.join("\n"));
}

/// SQRT and RSQRT are undefined below the zero point: LiteRT fails the whole invocation
/// and so must npuc.
#[test]
fn negative_sqrt_and_rsqrt_inputs_fail_like_litert() {
    let failing = [
        case("sqrt i8 zp 0", unary(Op::Sqrt, &[1, 256], (DType::I8, (0.1, 0)), (DType::I8, (0.05, -128))), None),
        case("rsqrt i8 zp 0", unary(Op::Rsqrt, &[1, 256], (DType::I8, (0.1, 0)), (DType::I8, (0.05, -128))), None),
        case("sqrt i16", unary(Op::Sqrt, &[1, 256], (DType::I16, (0.001, 0)), (DType::I16, (0.001, 0))), None),
        case("rsqrt i16", unary(Op::Rsqrt, &[1, 256], (DType::I16, (0.001, 0)), (DType::I16, (0.001, 0))), None),
    ];
    let tmp = scratch("negative");
    let mut failures = Vec::new();
    for (i, c) in failing.iter().enumerate() {
        let model = tmp.join(format!("case{i}.tflite"));
        export(&c.graph, &model);
        let litert = oracle_domain(&model, "ref", &tmp.join(format!("case{i}")), -128, 127);
        let x = domain_input(&c.graph, -128, 127);
        let npuc = Interpreter::new(&c.graph, &Options { threads: 1 }).and_then(|it| it.run(vec![x]));
        match (&litert, &npuc) {
            (Err(l), Err(e)) if l.contains("only defined for") => eprintln!("{:<16} fails in both: {e}", c.name),
            _ => failures.push(format!(
                "{}: LiteRT {:?}, npuc {:?}",
                c.name,
                litert.map(|_| "runs"),
                npuc.map(|_| "runs")
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "failures differ:\n{}", failures.join("\n"));
}

/// The input `oracle_domain` feeds: `lo, lo+1, …, hi, lo, …` in the graph input's shape.
fn domain_input(g: &Graph, lo: i64, hi: i64) -> Tensor {
    let ty = &g.value(g.inputs[0]).ty;
    let n: usize = ty.shape.iter().product();
    let vals = (0..n as i64).map(|k| lo + k % (hi - lo + 1));
    let data = match ty.dtype {
        DType::I8 => Data::I8(vals.map(|x| x as i8).collect()),
        DType::I16 => Data::I16(vals.map(|x| x as i16).collect()),
        DType::U8 => Data::U8(vals.map(|x| x as u8).collect()),
        d => panic!("no domain input for {d}"),
    };
    Tensor { shape: ty.shape.clone(), data }
}

/// Every LOGISTIC/TANH/HARD_SWISH/SOFTMAX/EXP/SQRT/RSQRT/L2_NORMALIZATION/RESIZE_BILINEAR
/// of the int8 fixtures, cut out as a one-op model with the fixture's own quantization
/// and attributes.
fn fixture_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for name in ["zoo_a_int8", "zoo_b_int8"] {
        let path = repo().join(format!("tools/fixtures/models/{name}.tflite"));
        let m = npuc_tflite::import(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
        let g = &m.graphs[0];
        for id in g.topo_order().unwrap() {
            let op = g.op(id);
            let ours = matches!(
                op.op,
                Op::Logistic
                    | Op::Tanh
                    | Op::HardSwish
                    | Op::Softmax { .. }
                    | Op::Exp
                    | Op::Sqrt
                    | Op::Rsqrt
                    | Op::L2Normalization { .. }
                    | Op::ResizeBilinear(_)
            );
            if !ours {
                continue;
            }
            let mut one = Graph::new("main");
            let x = one.add_input("x", g.value(op.inputs[0].unwrap()).ty.clone());
            let mut inputs = vec![Some(x)];
            for v in op.inputs.iter().skip(1).flatten() {
                let val = g.value(*v);
                let data = val.data.clone().expect("extra operands of these ops are constants");
                inputs.push(Some(one.add_const(val.name.clone(), val.ty.clone(), data)));
            }
            let y = one.add_value(Value::new("y", g.value(op.outputs[0]).ty.clone()));
            one.add_op(Operation::new(op.op.clone(), inputs, vec![y])).unwrap();
            one.outputs.push(y);
            let domain = match (&op.op, g.value(op.inputs[0].unwrap()).ty.dtype) {
                (Op::Logistic | Op::Tanh | Op::HardSwish | Op::Exp | Op::Sqrt | Op::Rsqrt, DType::I8) => Some(I8),
                _ => None,
            };
            cases.push(case(format!("{name} op {} {}", id.index(), op.op.mnemonic()), one, domain));
        }
    }
    assert!(cases.len() >= 9, "expected the fixtures' LUT-family ops, found {}", cases.len());
    cases
}

/// The fixtures' ops of this family are bit-exact against the reference kernels.
#[test]
fn fixture_ops_are_bit_exact_against_litert_reference_kernels() {
    let cases = fixture_cases();
    let tmp = scratch("fixtures");
    let results = par_map(&cases, |i, c| check(c, "ref", &tmp.join(format!("case{i}"))));
    let mut failures = Vec::new();
    for (c, r) in cases.iter().zip(results) {
        match r {
            Ok(None) => eprintln!("{:<34} bit-exact", c.name),
            Ok(Some(why)) => failures.push(format!("{}: {why}", c.name)),
            Err(e) => failures.push(format!("{}: {e}", c.name)),
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "fixture ops disagree with LiteRT's reference kernels:\n{}", failures.join("\n"));
}
