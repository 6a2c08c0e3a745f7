//! The movement kernels against the official LiteRT interpreter, op by op.
//!
//! Every case is a one-op graph built with the `npuc_ir::Graph` API, exported with
//! `npuc_tflite::export` and run by LiteRT (`.venv`, both the default resolver and the
//! reference kernels) on the same inputs as npuc's interpreter. Results must be
//! byte-identical; cases TFLite rejects at run time (negative gather indices, …) must fail
//! in both. Strided slice, transpose, gather and nearest-neighbour resize also get many
//! pseudo-random cases from a fixed seed.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{python, scratch};

use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{
    Activation, Constant, DType, Graph, Module, Op, Operation, Quantization, ResizeAttrs, StridedSliceAttrs,
    TensorType, Value,
};

/// Runs every case of a manifest in LiteRT; one result line per case.
const RUNNER: &str = r#"
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

manifest, results = sys.argv[1], sys.argv[2]
out = []
for line in open(manifest):
    model, resolver, prefix, feeds = line.rstrip("\n").split("\t")
    feeds = dict(kv.split("=", 1) for kv in feeds.split(",") if kv)
    try:
        it = Interpreter(model_path=model, num_threads=1,
                         experimental_op_resolver_type=getattr(OpResolverType, resolver))
        it.allocate_tensors()
        for d in it.get_input_details():
            a = np.fromfile(feeds[d["name"]], dtype=d["dtype"]).reshape(d["shape"])
            it.set_tensor(d["index"], a)
        it.invoke()
        parts = []
        for d in it.get_output_details():
            a = it.get_tensor(d["index"])
            f = f"{prefix}_{d['name']}.bin"
            a.tofile(f)
            parts.append(f"{d['name']}:{'x'.join(str(int(s)) for s in a.shape)}:{f}")
        out.append("OK\t" + "\t".join(parts))
    except Exception as e:
        out.append("ERR\t" + " ".join(str(e).split()))
open(results, "w").write("\n".join(out) + "\n")
"#;

/// An operand of a case: a graph input (fed at run time) or a constant.
enum Arg {
    In(Tensor, Option<Quantization>),
    K(Tensor, Option<Quantization>),
}

fn inp(t: Tensor) -> Arg {
    Arg::In(t, None)
}
fn inq(t: Tensor, q: &Quantization) -> Arg {
    Arg::In(t, Some(q.clone()))
}
fn k(t: Tensor) -> Arg {
    Arg::K(t, None)
}
fn kq(t: Tensor, q: &Quantization) -> Arg {
    Arg::K(t, Some(q.clone()))
}

struct Case {
    name: String,
    graph: Graph,
    feeds: Vec<Tensor>,
    /// TFLite rejects it at run time; npuc must too.
    expect_err: bool,
}

fn tensor(shape: &[usize], data: Data) -> Tensor {
    Tensor::new(shape.to_vec(), data).unwrap()
}
fn i32s(shape: &[usize], v: &[i32]) -> Tensor {
    tensor(shape, Data::I32(v.to_vec()))
}

/// Builds a one-op case; result types are inferred unless given, quantization of results
/// copied from the first operand unless `out_q` is given.
fn case(name: &str, op: Op, args: Vec<Arg>, outs: Option<Vec<TensorType>>) -> Option<Case> {
    let mut g = Graph::new("main");
    let mut feeds = Vec::new();
    let mut operands = Vec::new();
    let mut first_q = None;
    for (i, a) in args.into_iter().enumerate() {
        let (t, q, is_input) = match a {
            Arg::In(t, q) => (t, q, true),
            Arg::K(t, q) => (t, q, false),
        };
        if i == 0 {
            first_q = q.clone();
        }
        let ty = TensorType { dtype: t.dtype(), shape: t.shape.clone(), quant: q };
        let v = if is_input {
            feeds.push(t);
            g.add_input(format!("in{i}"), ty)
        } else {
            g.add_const(format!("c{i}"), ty, Constant::from(t.data.to_le_bytes()))
        };
        operands.push(Some(v));
    }
    let n_out = match &op {
        Op::Split { num_splits } | Op::SplitV { num_splits } => *num_splits as usize,
        Op::Unpack { num, .. } => *num as usize,
        _ => 1,
    };
    let outs = match outs {
        Some(o) => o,
        None => {
            let vals: Vec<Option<&Value>> = operands.iter().map(|v| v.map(|v| g.value(v))).collect();
            let inferred = npuc_ir::infer(&op, &vals, n_out).ok()?;
            inferred
                .into_iter()
                .map(|t| TensorType { dtype: t.dtype.unwrap(), shape: t.shape.unwrap(), quant: first_q.clone() })
                .collect()
        }
    };
    if outs.iter().any(|t| t.shape.contains(&0)) {
        return None;
    }
    let outputs: Vec<_> =
        outs.into_iter().enumerate().map(|(k, ty)| g.add_value(Value::new(format!("out{k}"), ty))).collect();
    g.add_op(Operation::new(op, operands, outputs.clone())).unwrap();
    g.outputs = outputs;
    Some(Case { name: name.to_string(), graph: g, feeds, expect_err: false })
}

fn must(c: Option<Case>) -> Case {
    c.expect("case builds (shape inference accepted it)")
}

fn failing(mut c: Case) -> Case {
    c.expect_err = true;
    c
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn data(&mut self, dtype: DType, n: usize) -> Data {
        let mut bytes = vec![0u8; dtype.storage_bytes(n as u64).unwrap() as usize];
        for b in bytes.iter_mut() {
            *b = self.next() as u8;
        }
        match dtype {
            // Finite floats in [-8, 8) so NaN payloads do not muddy the comparison.
            DType::F32 => Data::F32((0..n).map(|_| (self.below(1 << 16) as f32 / 4096.0) - 8.0).collect()),
            DType::F16 => Data::F16((0..n).map(|_| half::f16::from_f32(self.below(256) as f32 / 16.0 - 8.0)).collect()),
            DType::Bool => Data::Bool((0..n).map(|_| self.below(2) == 1).collect()),
            _ => Data::from_le_bytes(dtype, &bytes, n).unwrap(),
        }
    }
    fn tensor(&mut self, dtype: DType, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        tensor(shape, self.data(dtype, n))
    }
}

fn q8(scale: f32, zp: i64) -> Quantization {
    Quantization::per_tensor(scale, zp)
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

fn fixed_cases(r: &mut Rng) -> Vec<Case> {
    use DType::*;
    let qi8 = q8(0.05, -7);
    let qu8 = q8(0.1, 131);
    let mut v = Vec::new();
    // Shape ops.
    for dt in [F32, I8, U8, I16, I32, I64, Bool] {
        let x = r.tensor(dt, &[2, 3, 4]);
        v.push(must(case(
            &format!("reshape_{dt}"),
            Op::Reshape { new_shape: None },
            vec![inp(x.clone()), k(i32s(&[3], &[4, -1, 2]))],
            None,
        )));
        v.push(must(case(
            &format!("squeeze_{dt}"),
            Op::Squeeze { axes: vec![] },
            vec![inp(r.tensor(dt, &[1, 3, 1, 2]))],
            None,
        )));
        v.push(must(case(&format!("expand_dims_{dt}"), Op::ExpandDims, vec![inp(x), k(i32s(&[], &[-2]))], None)));
    }
    for (dt, out) in [(F32, I32), (I8, I64), (Bool, I32)] {
        v.push(must(case(
            &format!("shape_{dt}_{out}"),
            Op::Shape { output_type: out },
            vec![inp(r.tensor(dt, &[2, 1, 3]))],
            None,
        )));
    }
    v.push(must(case("squeeze_axes", Op::Squeeze { axes: vec![-2] }, vec![inp(r.tensor(F32, &[1, 3, 1, 2]))], None)));
    // Concatenation.
    for (dt, q) in
        [(F32, None), (I8, Some(&qi8)), (U8, Some(&qu8)), (I16, Some(&q8(0.01, 0))), (I32, None), (I64, None)]
    {
        for axis in [0, 1, 2, -1] {
            let mut shapes = [[2usize, 3, 2], [2, 3, 2], [2, 3, 2]];
            let ax = if axis < 0 { 2 } else { axis as usize };
            shapes[1][ax] = 1;
            shapes[2][ax] = 3;
            let args = shapes
                .iter()
                .map(|s| match q {
                    Some(q) => inq(r.tensor(dt, s), q),
                    None => inp(r.tensor(dt, s)),
                })
                .collect();
            v.push(must(case(
                &format!("concat_{dt}_axis{axis}"),
                Op::Concatenation { axis, activation: Activation::None },
                args,
                None,
            )));
        }
    }
    // Split / split_v / pack / unpack.
    for dt in [F32, I8, U8, I16, I32, I64] {
        let x = r.tensor(dt, &[4, 6, 2]);
        v.push(must(case(
            &format!("split_{dt}"),
            Op::Split { num_splits: 3 },
            vec![k(i32s(&[], &[-2])), inp(x.clone())],
            None,
        )));
        v.push(must(case(
            &format!("split_v_{dt}"),
            Op::SplitV { num_splits: 3 },
            vec![inp(x.clone()), k(i32s(&[3], &[1, -1, 2])), k(i32s(&[], &[1]))],
            None,
        )));
        let y = r.tensor(dt, &[4, 6, 2]);
        for axis in [0, 2, -1, -4] {
            v.push(must(case(
                &format!("pack_{dt}_axis{axis}"),
                Op::Pack { values_count: 2, axis },
                vec![inp(x.clone()), inp(y.clone())],
                None,
            )));
        }
    }
    for dt in [F32, I8, U8, I16, I32, Bool] {
        for axis in [0, 1, -1] {
            let x = r.tensor(dt, &[3, 2, 4]);
            let num = x.shape[if axis < 0 { 2 } else { axis as usize }] as u32;
            v.push(must(case(&format!("unpack_{dt}_axis{axis}"), Op::Unpack { num, axis }, vec![inp(x)], None)));
        }
    }
    // Pad / PadV2.
    let pads = i32s(&[4, 2], &[0, 1, 2, 0, 1, 1, 0, 2]);
    let pads_img = i32s(&[4, 2], &[0, 0, 2, 1, 1, 3, 0, 0]);
    for (dt, q) in [
        (F32, None),
        (I8, Some(&qi8)),
        (U8, Some(&qu8)),
        (I16, Some(&q8(0.01, 0))),
        (I32, None),
        (I64, None),
        (I8, None),
    ] {
        for (pn, p) in [("generic", &pads), ("image", &pads_img)] {
            let x = r.tensor(dt, &[1, 3, 2, 2]);
            let a = match q {
                Some(q) => inq(x, q),
                None => inp(x),
            };
            v.push(must(case(&format!("pad_{dt}_{pn}_q{}", q.is_some()), Op::Pad, vec![a, k(p.clone())], None)));
        }
    }
    v.push(must(case(
        "padv2_f32",
        Op::PadV2,
        vec![inp(r.tensor(F32, &[2, 3])), k(i32s(&[2, 2], &[1, 1, 0, 2])), k(tensor(&[], Data::F32(vec![-2.5])))],
        None,
    )));
    v.push(must(case(
        "padv2_i8",
        Op::PadV2,
        vec![
            inq(r.tensor(I8, &[2, 3]), &qi8),
            k(i32s(&[2, 2], &[1, 1, 0, 2])),
            kq(tensor(&[1], Data::I8(vec![33])), &qi8),
        ],
        None,
    )));
    v.push(must(case(
        "padv2_u8",
        Op::PadV2,
        vec![
            inq(r.tensor(U8, &[1, 2, 2, 1]), &qu8),
            k(i32s(&[4, 2], &[0, 0, 1, 1, 1, 1, 0, 0])),
            kq(tensor(&[], Data::U8(vec![200])), &qu8),
        ],
        None,
    )));
    v.push(must(case(
        "padv2_i32",
        Op::PadV2,
        vec![inp(r.tensor(I32, &[3])), k(i32s(&[1, 2], &[2, 1])), k(tensor(&[], Data::I32(vec![-99])))],
        None,
    )));
    v.push(must(case(
        "pad_i64_paddings",
        Op::Pad,
        vec![inp(r.tensor(F32, &[2, 2])), k(tensor(&[2, 2], Data::I64(vec![1, 0, 0, 1])))],
        None,
    )));
    // Slice.
    for dt in [F32, I8, U8, I16, I32, I64, Bool] {
        let x = r.tensor(dt, &[3, 4, 5]);
        v.push(must(case(
            &format!("slice_{dt}"),
            Op::Slice,
            vec![inp(x.clone()), k(i32s(&[3], &[1, 0, 2])), k(i32s(&[3], &[2, -1, 2]))],
            None,
        )));
    }
    // Depth/space.
    for (dt, q) in [(F32, None), (I8, Some(&qi8)), (U8, Some(&qu8)), (I32, None), (I64, None)] {
        for bs in [2u32, 3] {
            let bsz = bs as usize;
            let x = r.tensor(dt, &[2, 2, 3, 2 * bsz * bsz]);
            let a = match q {
                Some(q) => inq(x, q),
                None => inp(x),
            };
            v.push(must(case(&format!("d2s_{dt}_{bs}"), Op::DepthToSpace { block_size: bs }, vec![a], None)));
            let y = r.tensor(dt, &[2, 2 * bsz, 3 * bsz, 3]);
            let a = match q {
                Some(q) => inq(y, q),
                None => inp(y),
            };
            v.push(must(case(&format!("s2d_{dt}_{bs}"), Op::SpaceToDepth { block_size: bs }, vec![a], None)));
        }
    }
    // Batch/space.
    for (dt, q) in [(F32, None), (I8, Some(&qi8)), (U8, Some(&qu8)), (I32, None), (I64, None), (I8, Some(&q8(0.5, 0)))]
    {
        let wrap = |t: Tensor| match q {
            Some(q) => inq(t, q),
            None => inp(t),
        };
        v.push(must(case(
            &format!("s2b_4d_{dt}"),
            Op::SpaceToBatchNd,
            vec![wrap(r.tensor(dt, &[2, 3, 5, 2])), k(i32s(&[2], &[2, 3])), k(i32s(&[2, 2], &[1, 0, 2, 2]))],
            None,
        )));
        v.push(must(case(
            &format!("s2b_3d_{dt}"),
            Op::SpaceToBatchNd,
            vec![wrap(r.tensor(dt, &[2, 5, 3])), k(i32s(&[1], &[2])), k(i32s(&[1, 2], &[0, 1]))],
            None,
        )));
        v.push(must(case(
            &format!("b2s_4d_{dt}"),
            Op::BatchToSpaceNd,
            vec![wrap(r.tensor(dt, &[12, 2, 3, 2])), k(i32s(&[2], &[2, 3])), k(i32s(&[2, 2], &[1, 0, 2, 1]))],
            None,
        )));
        v.push(must(case(
            &format!("b2s_3d_{dt}"),
            Op::BatchToSpaceNd,
            vec![wrap(r.tensor(dt, &[4, 3, 2])), k(i32s(&[1], &[2])), k(i32s(&[1, 2], &[0, 1]))],
            None,
        )));
    }
    // Gather, including batch_dims and a rejected negative index.
    for (dt, q) in [(F32, None), (I8, Some(&qi8)), (U8, None), (I16, None), (I32, None), (I64, None), (Bool, None)] {
        let p = r.tensor(dt, &[3, 4, 5]);
        let wrap = |t: Tensor| match q {
            Some(q) => inq(t, q),
            None => inp(t),
        };
        v.push(must(case(
            &format!("gather_{dt}_axis0"),
            Op::Gather { axis: 0, batch_dims: 0 },
            vec![wrap(p.clone()), k(i32s(&[2, 2], &[2, 0, 1, 2]))],
            None,
        )));
        v.push(must(case(
            &format!("gather_{dt}_axis-1_i64"),
            Op::Gather { axis: -1, batch_dims: 0 },
            vec![wrap(p.clone()), inp(tensor(&[3], Data::I64(vec![4, 0, 4])))],
            None,
        )));
        v.push(must(case(
            &format!("gather_{dt}_batch1"),
            Op::Gather { axis: 2, batch_dims: 1 },
            vec![wrap(p.clone()), inp(i32s(&[3, 2], &[0, 4, 3, 3, 1, 2]))],
            None,
        )));
        v.push(must(case(
            &format!("gather_{dt}_batch-1"),
            Op::Gather { axis: 1, batch_dims: -1 },
            vec![wrap(p.clone()), inp(i32s(&[3, 2], &[0, 3, 3, 3, 1, 2]))],
            None,
        )));
    }
    v.push(failing(must(case(
        "gather_negative_index",
        Op::Gather { axis: 0, batch_dims: 0 },
        vec![inp(r.tensor(F32, &[3, 2])), inp(i32s(&[2], &[1, -1]))],
        None,
    ))));
    // Arg max: ties, axes, output types.
    for dt in [F32, I8, U8, I32, Bool] {
        for axis in [0i32, 1, -1] {
            for out in [I32, I64] {
                // Few distinct values so ties are common.
                let x = match dt {
                    F32 => tensor(&[3, 4, 5], Data::F32((0..60).map(|_| r.below(3) as f32 - 1.0).collect())),
                    I8 => tensor(&[3, 4, 5], Data::I8((0..60).map(|_| r.below(3) as i8 - 1).collect())),
                    U8 => tensor(&[3, 4, 5], Data::U8((0..60).map(|_| r.below(3) as u8).collect())),
                    I32 => tensor(&[3, 4, 5], Data::I32((0..60).map(|_| r.below(3) as i32 - 1).collect())),
                    _ => r.tensor(Bool, &[3, 4, 5]),
                };
                v.push(must(case(
                    &format!("arg_max_{dt}_axis{axis}_{out}"),
                    Op::ArgMax { output_type: out },
                    vec![inp(x), k(i32s(&[1], &[axis]))],
                    None,
                )));
            }
        }
    }
    // Edge behaviours LiteRT 2.3 is known to accept.
    let n = f32::NAN;
    let m = f32::NEG_INFINITY;
    let cols: [[f32; 3]; 14] = [
        [n, 2., 3.],
        [2., 1., n],
        [n, n, 1.],
        [1., n, 0.5],
        [1., n, 2.],
        [n, 1., n],
        [2., 2., 2.],
        [3., n, n],
        [n, n, n],
        [n, m, n],
        [n, m, m],
        [m, n, 5.],
        [m, m, m],
        [n, f32::MIN, m],
    ];
    let nan_cols: Vec<f32> = (0..3).flat_map(|i| cols.iter().map(move |c| c[i])).collect();
    v.push(must(case(
        "arg_max_nan_axis0",
        Op::ArgMax { output_type: I32 },
        vec![inp(tensor(&[3, 14], Data::F32(nan_cols))), k(i32s(&[], &[0]))],
        None,
    )));
    v.push(must(case(
        "s2b_i16",
        Op::SpaceToBatchNd,
        vec![inq(r.tensor(I16, &[1, 2, 2, 1]), &q8(0.5, 0)), k(i32s(&[2], &[2, 2])), k(i32s(&[2, 2], &[1, 1, 0, 2]))],
        None,
    )));
    v.push(must(case(
        "s2b_f16",
        Op::SpaceToBatchNd,
        vec![inp(r.tensor(F16, &[1, 2, 2, 1])), k(i32s(&[2], &[2, 2])), k(i32s(&[2, 2], &[1, 1, 0, 2]))],
        None,
    )));
    v.push(must(case(
        "b2s_i16",
        Op::BatchToSpaceNd,
        vec![inq(r.tensor(I16, &[4, 2, 2, 1]), &q8(0.5, 0)), k(i32s(&[2], &[2, 2])), k(i32s(&[2, 2], &[1, 1, 0, 2]))],
        None,
    )));
    v.push(failing(must(case(
        "gather_too_large_index",
        Op::Gather { axis: 0, batch_dims: 0 },
        vec![inp(r.tensor(F32, &[3, 2])), inp(i32s(&[2], &[1, 3]))],
        None,
    ))));
    v.push(must(case(
        "resize_nn_i16",
        Op::ResizeNearestNeighbor(ResizeAttrs::default()),
        vec![inq(r.tensor(I16, &[1, 3, 3, 2]), &q8(0.5, 0)), k(i32s(&[2], &[5, 4]))],
        None,
    )));
    v.push(must(case("pad_f16", Op::Pad, vec![inp(r.tensor(F16, &[2, 3])), k(i32s(&[2, 2], &[1, 0, 0, 2]))], None)));
    v.push(must(case(
        "padv2_f16",
        Op::PadV2,
        vec![inp(r.tensor(F16, &[2, 3])), k(i32s(&[2, 2], &[1, 0, 0, 2])), k(r.tensor(F16, &[]))],
        None,
    )));
    v.push(must(case("pad_bool", Op::Pad, vec![inp(r.tensor(Bool, &[2, 3])), k(i32s(&[2, 2], &[1, 0, 0, 2]))], None)));
    v.push(must(case(
        "transpose_6d",
        Op::Transpose,
        vec![inp(r.tensor(I8, &[2, 1, 3, 2, 2, 3])), k(i32s(&[6], &[5, 3, 0, 4, 1, 2]))],
        None,
    )));
    v.push(must(case(
        "gather_f16",
        Op::Gather { axis: 1, batch_dims: 0 },
        vec![inp(r.tensor(F16, &[2, 3])), k(i32s(&[2], &[2, 1]))],
        None,
    )));
    v.push(must(case(
        "gather_i16_indices",
        Op::Gather { axis: 1, batch_dims: 0 },
        vec![inp(r.tensor(F32, &[2, 3])), k(tensor(&[2], Data::I16(vec![2, 1])))],
        None,
    )));
    v.push(must(case(
        "reshape_f16",
        Op::Reshape { new_shape: Some(vec![3, 2]) },
        vec![inp(r.tensor(F16, &[2, 3]))],
        None,
    )));
    v.push(must(case(
        "concat_f16",
        Op::Concatenation { axis: 0, activation: Activation::None },
        vec![inp(r.tensor(F16, &[2, 3])), inp(r.tensor(F16, &[1, 3]))],
        None,
    )));
    v.push(must(case(
        "strided_slice_f16",
        Op::StridedSlice(Default::default()),
        vec![inp(r.tensor(F16, &[4, 2])), k(i32s(&[1], &[3])), k(i32s(&[1], &[0])), k(i32s(&[1], &[-2]))],
        None,
    )));
    v.push(must(case(
        "slice_f16",
        Op::Slice,
        vec![inp(r.tensor(F16, &[4, 2])), k(i32s(&[2], &[1, 0])), k(i32s(&[2], &[2, 2]))],
        None,
    )));
    v.push(must(case("unpack_f16", Op::Unpack { num: 2, axis: 0 }, vec![inp(r.tensor(F16, &[2, 3]))], None)));
    v
}

fn random_strided_slices(r: &mut Rng, n: usize) -> Vec<Case> {
    let mut v = Vec::new();
    let dtypes = [DType::F32, DType::I8, DType::U8, DType::I16, DType::I32, DType::I64, DType::Bool];
    let mut tries = 0;
    while v.len() < n && tries < n * 20 {
        tries += 1;
        let rank = r.range(1, 4) as usize;
        let shape: Vec<usize> = (0..rank).map(|_| r.range(1, 5) as usize).collect();
        let mut count = r.range(1, rank as i64) as usize;
        let kind = r.below(6);
        if kind == 4 {
            // TFLite sizes an offset slice's result by indexing `end` with the extended
            // dimension, reading past the spec unless it covers every dimension.
            count = rank;
        }
        let maxd = *shape.iter().max().unwrap() as i64;
        let mut begin = Vec::new();
        let mut end = Vec::new();
        let mut strides = Vec::new();
        for _ in 0..count {
            begin.push(r.range(-maxd - 1, maxd + 1) as i32);
            end.push(r.range(-maxd - 1, maxd + 1) as i32);
            let mut s = r.range(-3, 3) as i32;
            if s == 0 {
                s = 1;
            }
            strides.push(s);
        }
        let bits = (1i32 << count) - 1;
        let mut at = StridedSliceAttrs {
            begin_mask: r.next() as i32 & bits,
            end_mask: r.next() as i32 & bits,
            ..Default::default()
        };
        match kind {
            0 => at.shrink_axis_mask = r.next() as i32 & bits,
            1 => at.new_axis_mask = 1 << r.below(count as u64),
            2 => at.ellipsis_mask = 1 << r.below(count as u64),
            3 => {
                at.ellipsis_mask = 1 << r.below(count as u64);
                at.new_axis_mask = r.next() as i32 & bits;
            }
            4 => at.offset = true,
            _ => {}
        }
        // TF never emits a shrunk axis with a non-unit stride (it rejects them), and
        // TFLite's loop leaves such results unwritten.
        for (i, s) in strides.iter_mut().enumerate() {
            if at.shrink_axis_mask & (1 << i) != 0 {
                *s = 1;
            }
        }
        if at.offset {
            // With offset, `end` is a size; begin may be negative but the slice must fit
            // (TFLite sizes the result by `end` alone and would leave the rest unwritten).
            for i in 0..count {
                let d = shape[i] as i64;
                let b = r.range(0, d - 1);
                end[i] = r.range(1, d - b) as i32;
                begin[i] = if r.below(2) == 0 { b as i32 } else { (b - d) as i32 };
                strides[i] = 1;
            }
            at.begin_mask = 0;
            at.end_mask = 0;
        }
        let dt = dtypes[r.below(dtypes.len() as u64) as usize];
        let x = r.tensor(dt, &shape);
        let name = format!("strided_slice_{dt}_{shape:?}_b{begin:?}_e{end:?}_s{strides:?}_{at:?}");
        let args = vec![inp(x), k(i32s(&[count], &begin)), k(i32s(&[count], &end)), k(i32s(&[count], &strides))];
        if let Some(c) = case(&name, Op::StridedSlice(at), args, None) {
            v.push(c);
        }
    }
    v
}

fn random_transposes(r: &mut Rng, n: usize) -> Vec<Case> {
    let mut v = Vec::new();
    let dtypes = [DType::F32, DType::I8, DType::U8, DType::I16, DType::I32, DType::I64, DType::Bool];
    for i in 0..n {
        let rank = 2 + i % 5;
        let shape: Vec<usize> = (0..rank).map(|_| r.range(1, 4) as usize).collect();
        let mut perm: Vec<i32> = (0..rank as i32).collect();
        for j in (1..rank).rev() {
            perm.swap(j, r.below(j as u64 + 1) as usize);
        }
        let dt = dtypes[r.below(dtypes.len() as u64) as usize];
        let x = r.tensor(dt, &shape);
        v.push(must(case(
            &format!("transpose_{dt}_{shape:?}_{perm:?}"),
            Op::Transpose,
            vec![inp(x), k(i32s(&[rank], &perm))],
            None,
        )));
    }
    // A larger one.
    let x = r.tensor(DType::F32, &[2, 17, 23, 9]);
    v.push(must(case("transpose_large", Op::Transpose, vec![inp(x), k(i32s(&[4], &[3, 1, 0, 2]))], None)));
    v
}

fn random_resizes(r: &mut Rng) -> Vec<Case> {
    let mut v = Vec::new();
    let qi8 = q8(0.05, 3);
    for (ih, iw, oh, ow) in [
        (2usize, 2usize, 3i32, 3i32),
        (3, 5, 7, 2),
        (7, 3, 3, 11),
        (5, 5, 5, 5),
        (1, 4, 9, 1),
        (6, 10, 15, 4),
        (13, 7, 29, 17),
        (4, 6, 2, 3),
        (9, 9, 31, 13),
    ] {
        for (ac, hp) in [(false, false), (true, false), (false, true), (true, true)] {
            for dt in [DType::F32, DType::I8, DType::U8] {
                let x = r.tensor(dt, &[2, ih, iw, 3]);
                let a = if dt == DType::I8 { inq(x, &qi8) } else { inp(x) };
                v.push(must(case(
                    &format!("resize_nn_{dt}_{ih}x{iw}_to_{oh}x{ow}_ac{ac}_hp{hp}"),
                    Op::ResizeNearestNeighbor(ResizeAttrs { align_corners: ac, half_pixel_centers: hp }),
                    vec![a, k(i32s(&[2], &[oh, ow]))],
                    None,
                )));
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

enum Oracle {
    Ok(BTreeMap<String, (Vec<usize>, Vec<u8>)>),
    Err(String),
}

fn run_litert(dir: &Path, cases: &[Case], resolver: &str) -> Vec<Oracle> {
    let mut manifest = String::new();
    for (i, c) in cases.iter().enumerate() {
        let model = dir.join(format!("case{i}.tflite"));
        if !model.exists() {
            let bytes = npuc_tflite::export(&Module::from_graph(c.graph.clone()))
                .unwrap_or_else(|e| panic!("{}: export failed: {e}", c.name));
            std::fs::write(&model, bytes).unwrap();
        }
        let mut feeds = Vec::new();
        for (j, (&v, t)) in c.graph.inputs.iter().zip(&c.feeds).enumerate() {
            let f = dir.join(format!("case{i}_in{j}.bin"));
            std::fs::write(&f, t.data.to_le_bytes()).unwrap();
            feeds.push(format!("{}={}", c.graph.value(v).name, f.display()));
        }
        let prefix = dir.join(format!("case{i}_{resolver}"));
        writeln!(manifest, "{}\t{resolver}\t{}\t{}", model.display(), prefix.display(), feeds.join(",")).unwrap();
    }
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    std::fs::write(dir.join("names.txt"), names.join("\n")).unwrap();
    let man = dir.join(format!("manifest_{resolver}.txt"));
    let res = dir.join(format!("results_{resolver}.txt"));
    let script = dir.join("runner.py");
    std::fs::write(&man, manifest).unwrap();
    std::fs::write(&script, RUNNER).unwrap();
    let out = Command::new(python()).arg(&script).arg(&man).arg(&res).output().unwrap();
    assert!(out.status.success(), "LiteRT runner failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&res).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len(), "one result per case");
    lines
        .iter()
        .map(|l| {
            let mut parts = l.split('\t');
            match parts.next() {
                Some("OK") => Oracle::Ok(
                    parts
                        .map(|p| {
                            let mut f = p.splitn(3, ':');
                            let name = f.next().unwrap().to_string();
                            let dims = f.next().unwrap();
                            let shape = if dims.is_empty() {
                                vec![]
                            } else {
                                dims.split('x').map(|d| d.parse().unwrap()).collect()
                            };
                            let bytes = std::fs::read(f.next().unwrap()).unwrap();
                            (name, (shape, bytes))
                        })
                        .collect(),
                ),
                _ => Oracle::Err(l.split_once('\t').map_or("", |x| x.1).to_string()),
            }
        })
        .collect()
}

/// Runs all cases in npuc and LiteRT (default and reference resolvers) and compares.
fn check(tag: &str, cases: Vec<Case>) {
    let dir = scratch(tag);
    let mut failures = Vec::new();
    for resolver in ["AUTO", "BUILTIN_REF"] {
        let oracle = run_litert(&dir, &cases, resolver);
        for (c, o) in cases.iter().zip(oracle) {
            let ours = Interpreter::new(&c.graph, &Options { threads: 1 }).and_then(|it| it.run(c.feeds.clone()));
            match (ours, o) {
                (Ok(outs), Oracle::Ok(theirs)) => {
                    if c.expect_err {
                        failures.push(format!("[{resolver}] {}: both accepted a case TFLite should reject", c.name));
                    }
                    for (t, &v) in outs.iter().zip(&c.graph.outputs) {
                        let name = &c.graph.value(v).name;
                        let Some((shape, bytes)) = theirs.get(name) else {
                            failures.push(format!("[{resolver}] {}: LiteRT has no output {name}", c.name));
                            continue;
                        };
                        if *shape != t.shape || *bytes != t.data.to_le_bytes() {
                            failures.push(format!(
                                "[{resolver}] {}: output {name} differs: npuc {:?} {:?}, LiteRT {:?} {:?}",
                                c.name,
                                t.shape,
                                t.data,
                                shape,
                                Data::from_le_bytes(t.dtype(), bytes, shape.iter().product())
                            ));
                        }
                    }
                }
                (Err(e), Oracle::Err(_)) if c.expect_err => {
                    let _ = e;
                }
                (Err(e), Oracle::Err(m)) => {
                    failures.push(format!("[{resolver}] {}: both failed: npuc: {e}; LiteRT: {m}", c.name))
                }
                (Err(e), Oracle::Ok(_)) => failures.push(format!("[{resolver}] {}: npuc failed: {e}", c.name)),
                (Ok(_), Oracle::Err(m)) => failures.push(format!("[{resolver}] {}: LiteRT failed: {m}", c.name)),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {} cases disagree:\n{}", failures.len(), cases.len() * 2, failures.join("\n"));
    eprintln!("{tag}: {} cases agree with LiteRT under both resolvers", cases.len());
}

#[test]
fn fixed_cases_match_litert() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    check("fixed", fixed_cases(&mut r));
}

#[test]
fn random_strided_slices_match_litert() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    check("strided", random_strided_slices(&mut r, 300));
}

#[test]
fn random_transposes_match_litert() {
    let mut r = Rng(0x0bad_cafe_f00d_0001);
    check("transpose", random_transposes(&mut r, 60));
}

#[test]
fn nearest_neighbor_resizes_match_litert() {
    let mut r = Rng(0x5eed_0000_0000_0042);
    check("resize", random_resizes(&mut r));
}
