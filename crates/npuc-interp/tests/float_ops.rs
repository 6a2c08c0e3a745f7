//! The float kernels, one op at a time, against straightforward implementations written
//! here (a 7-loop convolution and friends, computed in f64) on random shapes, plus
//! hand-computed cases for the details TFLite fixes: SAME padding offsets, transpose
//! convolution padding, average pooling's counts at the edges, bilinear source coordinates.
//!
//! Every graph runs with one thread and with four, so both the sequential and the
//! parallel code paths are covered.

use half::f16;
use npuc_interp::{Data, Interpreter, Options, Tensor};
use npuc_ir::{
    Activation, Constant, Conv2dAttrs, DType, DepthwiseConv2dAttrs, FullyConnectedAttrs, Graph, Op, Operation, Padding,
    Pool2dAttrs, ResizeAttrs, TensorType, TransposeConvAttrs, Value,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Running one op
// ---------------------------------------------------------------------------------------

/// An operand of the op under test.
enum Arg {
    /// A graph input fed at run time.
    In(Tensor),
    /// A constant in the graph.
    Const(Tensor),
    /// An omitted optional operand.
    Absent,
}

fn f32t(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::new(shape.to_vec(), Data::F32(v)).unwrap()
}

fn i32t(shape: &[usize], v: Vec<i32>) -> Tensor {
    Tensor::new(shape.to_vec(), Data::I32(v)).unwrap()
}

/// Builds a graph of the single op `op`, runs it with `threads` worker threads and returns
/// its result (or the interpreter's error text).
fn run_with(op: Op, args: Vec<Arg>, threads: usize) -> Result<Tensor, String> {
    let mut g = Graph::new("t");
    let mut operands = Vec::new();
    let mut feeds = Vec::new();
    for (i, a) in args.into_iter().enumerate() {
        match a {
            Arg::In(t) => {
                operands.push(Some(g.add_input(format!("in{i}"), TensorType::new(t.dtype(), t.shape.clone()))));
                feeds.push(t);
            }
            Arg::Const(t) => {
                let ty = TensorType::new(t.dtype(), t.shape.clone());
                operands.push(Some(g.add_const(format!("c{i}"), ty, Constant::from(t.data.to_le_bytes()))));
            }
            Arg::Absent => operands.push(None),
        }
    }
    let vals: Vec<Option<&Value>> = operands.iter().map(|o| o.map(|v| g.value(v))).collect();
    let inferred = npuc_ir::infer(&op, &vals, 1).map_err(|e| format!("shape inference: {e}"))?;
    let ty = TensorType::new(inferred[0].dtype.unwrap(), inferred[0].shape.clone().unwrap());
    let out = g.add_value(Value::new("out", ty));
    g.add_op(Operation::new(op, operands, vec![out])).unwrap();
    g.outputs.push(out);
    let it = Interpreter::new(&g, &Options { threads }).map_err(|e| e.to_string())?;
    let mut r = it.run(feeds).map_err(|e| e.to_string())?;
    Ok(r.remove(0))
}

/// Runs with 1 and with 4 threads; the two results must be identical.
fn run(op: Op, args: Vec<Arg>) -> Result<Tensor, String> {
    let copy = |a: &Arg| match a {
        Arg::In(t) => Arg::In(t.clone()),
        Arg::Const(t) => Arg::Const(t.clone()),
        Arg::Absent => Arg::Absent,
    };
    let again: Vec<Arg> = args.iter().map(copy).collect();
    let one = run_with(op.clone(), args, 1)?;
    let four = run_with(op, again, 4)?;
    assert_eq!(one, four, "1 thread and 4 threads disagree");
    Ok(one)
}

fn f32s(t: &Tensor) -> &[f32] {
    t.as_f32().expect("f32 result")
}

/// Deterministic values in [-1, 1) (xorshift), so random shapes need no big strategies.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Asserts `got` matches an f64 reference: each element within `1e-5 · scale[i] + 1e-6`,
/// where `scale[i]` is the sum of the magnitudes that went into it (the bound on f32
/// accumulation error for the sizes used here).
fn assert_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = 1e-5 * s.max(1.0) + 1e-6;
        assert!((f64::from(g) - w).abs() <= tol, "{what}: element {i}: got {g}, want {w} (tol {tol})");
    }
}

fn act_f64(a: Activation, v: f64) -> f64 {
    match a {
        Activation::Relu => v.max(0.0),
        Activation::Relu6 => v.clamp(0.0, 6.0),
        Activation::ReluN1To1 => v.clamp(-1.0, 1.0),
        _ => v,
    }
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::None), Just(Activation::Relu), Just(Activation::Relu6), Just(Activation::ReluN1To1)]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![Just(Padding::Same), Just(Padding::Valid)]
}

/// TFLite's output size and leading padding, written out independently of the kernels.
fn out_and_pad(p: Padding, input: usize, filter: usize, stride: usize, dilation: usize) -> (usize, i64) {
    let eff = (filter - 1) * dilation + 1;
    let out = match p {
        Padding::Same => input.div_ceil(stride),
        Padding::Valid => (input - eff) / stride + 1,
    };
    let total = (out as i64 - 1) * stride as i64 + eff as i64 - input as i64;
    (out, total.max(0) / 2)
}

// ---------------------------------------------------------------------------------------
// Naive references
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ConvCase {
    n: usize,
    ih: usize,
    iw: usize,
    groups: usize,
    icg: usize,
    ocg: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    act: Activation,
    bias: bool,
    seed: u64,
}

/// The 7-loop grouped convolution; returns (values, magnitude sums).
#[allow(clippy::too_many_arguments)]
fn naive_conv(c: &ConvCase, x: &[f32], w: &[f32], b: Option<&[f32]>) -> (Vec<f64>, Vec<f64>, [usize; 4]) {
    let ic = c.groups * c.icg;
    let oc = c.groups * c.ocg;
    let (oh, pt) = out_and_pad(c.padding, c.ih, c.kh, c.stride[0], c.dilation[0]);
    let (ow, pl) = out_and_pad(c.padding, c.iw, c.kw, c.stride[1], c.dilation[1]);
    let mut out = vec![0.0; c.n * oh * ow * oc];
    let mut mag = vec![0.0; out.len()];
    for b_ in 0..c.n {
        for y in 0..oh {
            for xo in 0..ow {
                for o in 0..oc {
                    let g = o / c.ocg;
                    let (mut s, mut m) = (0.0f64, 0.0f64);
                    for ky in 0..c.kh {
                        for kx in 0..c.kw {
                            for ci in 0..c.icg {
                                let iy = (y * c.stride[0] + ky * c.dilation[0]) as i64 - pt;
                                let ix = (xo * c.stride[1] + kx * c.dilation[1]) as i64 - pl;
                                if iy < 0 || ix < 0 || iy >= c.ih as i64 || ix >= c.iw as i64 {
                                    continue;
                                }
                                let xv = x[((b_ * c.ih + iy as usize) * c.iw + ix as usize) * ic + g * c.icg + ci];
                                let wv = w[((o * c.kh + ky) * c.kw + kx) * c.icg + ci];
                                s += f64::from(xv) * f64::from(wv);
                                m += (f64::from(xv) * f64::from(wv)).abs();
                            }
                        }
                    }
                    if let Some(b) = b {
                        s += f64::from(b[o]);
                        m += f64::from(b[o]).abs();
                    }
                    let i = ((b_ * oh + y) * ow + xo) * oc + o;
                    out[i] = act_f64(c.act, s);
                    mag[i] = m;
                }
            }
        }
    }
    (out, mag, [c.n, oh, ow, oc])
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..3, 1usize..10, 1usize..10, 1usize..4, 1usize..6, 1usize..6),
        (1usize..5, 1usize..5, [1usize..4, 1usize..4], [1usize..3, 1usize..3]),
        (padding(), activation(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, ih, iw, groups, icg, ocg), (kh, kw, stride, dilation), (padding, act, bias, seed))| ConvCase {
            n,
            ih,
            iw,
            groups,
            icg,
            ocg,
            kh,
            kw,
            stride,
            dilation,
            padding,
            act,
            bias,
            seed,
        })
        .prop_filter("VALID window must fit", |c| {
            c.padding == Padding::Same || ((c.kh - 1) * c.dilation[0] < c.ih && (c.kw - 1) * c.dilation[1] < c.iw)
        })
}

fn check_conv(c: &ConvCase) {
    let ic = c.groups * c.icg;
    let oc = c.groups * c.ocg;
    let x = values(c.seed, c.n * c.ih * c.iw * ic);
    let w = values(c.seed ^ 1, oc * c.kh * c.kw * c.icg);
    let b = values(c.seed ^ 2, oc);
    let (want, mag, shape) = naive_conv(c, &x, &w, c.bias.then_some(&b[..]));
    let op = Op::Conv2d(Conv2dAttrs {
        padding: c.padding,
        stride: [c.stride[0] as u32, c.stride[1] as u32],
        dilation: [c.dilation[0] as u32, c.dilation[1] as u32],
        activation: c.act,
        bias_type: None,
    });
    let args = vec![
        Arg::In(f32t(&[c.n, c.ih, c.iw, ic], x)),
        Arg::Const(f32t(&[oc, c.kh, c.kw, c.icg], w)),
        if c.bias { Arg::Const(f32t(&[oc], b)) } else { Arg::Absent },
    ];
    let got = run(op, args).unwrap();
    assert_eq!(got.shape, shape);
    assert_close(f32s(&got), &want, &mag, "conv_2d");
}

#[derive(Debug, Clone)]
struct DwCase {
    n: usize,
    ih: usize,
    iw: usize,
    ic: usize,
    mult: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
    act: Activation,
    bias: bool,
    seed: u64,
}

fn dw_case() -> impl Strategy<Value = DwCase> {
    (
        (1usize..3, 1usize..10, 1usize..10, prop_oneof![1usize..5, 14usize..40], 1usize..4),
        (1usize..5, 1usize..5, [1usize..4, 1usize..4], [1usize..3, 1usize..3]),
        (padding(), activation(), any::<bool>(), any::<u64>()),
    )
        .prop_map(|((n, ih, iw, ic, mult), (kh, kw, stride, dilation), (padding, act, bias, seed))| DwCase {
            n,
            ih,
            iw,
            ic,
            mult,
            kh,
            kw,
            stride,
            dilation,
            padding,
            act,
            bias,
            seed,
        })
        .prop_filter("VALID window must fit", |c| {
            c.padding == Padding::Same || ((c.kh - 1) * c.dilation[0] < c.ih && (c.kw - 1) * c.dilation[1] < c.iw)
        })
}

fn check_depthwise(c: &DwCase) {
    let oc = c.ic * c.mult;
    let x = values(c.seed, c.n * c.ih * c.iw * c.ic);
    let w = values(c.seed ^ 1, c.kh * c.kw * oc);
    let b = values(c.seed ^ 2, oc);
    let (oh, pt) = out_and_pad(c.padding, c.ih, c.kh, c.stride[0], c.dilation[0]);
    let (ow, pl) = out_and_pad(c.padding, c.iw, c.kw, c.stride[1], c.dilation[1]);
    let mut want = vec![0.0; c.n * oh * ow * oc];
    let mut mag = vec![0.0; want.len()];
    for b_ in 0..c.n {
        for y in 0..oh {
            for xo in 0..ow {
                for o in 0..oc {
                    let ci = o / c.mult;
                    let (mut s, mut m) = (0.0f64, 0.0f64);
                    for ky in 0..c.kh {
                        for kx in 0..c.kw {
                            let iy = (y * c.stride[0] + ky * c.dilation[0]) as i64 - pt;
                            let ix = (xo * c.stride[1] + kx * c.dilation[1]) as i64 - pl;
                            if iy < 0 || ix < 0 || iy >= c.ih as i64 || ix >= c.iw as i64 {
                                continue;
                            }
                            let p = f64::from(x[((b_ * c.ih + iy as usize) * c.iw + ix as usize) * c.ic + ci])
                                * f64::from(w[(ky * c.kw + kx) * oc + o]);
                            s += p;
                            m += p.abs();
                        }
                    }
                    if c.bias {
                        s += f64::from(b[o]);
                        m += f64::from(b[o]).abs();
                    }
                    let i = ((b_ * oh + y) * ow + xo) * oc + o;
                    want[i] = act_f64(c.act, s);
                    mag[i] = m;
                }
            }
        }
    }
    let op = Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
        padding: c.padding,
        stride: [c.stride[0] as u32, c.stride[1] as u32],
        dilation: [c.dilation[0] as u32, c.dilation[1] as u32],
        depth_multiplier: c.mult as u32,
        activation: c.act,
    });
    let args = vec![
        Arg::In(f32t(&[c.n, c.ih, c.iw, c.ic], x)),
        Arg::Const(f32t(&[1, c.kh, c.kw, oc], w)),
        if c.bias { Arg::Const(f32t(&[oc], b)) } else { Arg::Absent },
    ];
    let got = run(op, args).unwrap();
    assert_eq!(got.shape, [c.n, oh, ow, oc]);
    assert_close(f32s(&got), &want, &mag, "depthwise_conv_2d");
}

/// The reference kernel's scatter loop, in f64.
#[allow(clippy::too_many_arguments)]
fn naive_transpose_conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    out: [usize; 4],
    stride: [usize; 2],
    padding: Padding,
    bias: Option<&[f32]>,
) -> (Vec<f64>, Vec<f64>) {
    let [n, ih, iw, ic] = xs;
    let [oc, kh, kw, _] = ws;
    let [_, oh, ow, _] = out;
    let (_, pt) = {
        let o = match padding {
            Padding::Same => oh.div_ceil(stride[0]),
            Padding::Valid => (oh + stride[0] - kh) / stride[0],
        };
        (o, (((o as i64 - 1) * stride[0] as i64 + kh as i64 - oh as i64).max(0)) / 2)
    };
    let (_, pl) = {
        let o = match padding {
            Padding::Same => ow.div_ceil(stride[1]),
            Padding::Valid => (ow + stride[1] - kw) / stride[1],
        };
        (o, (((o as i64 - 1) * stride[1] as i64 + kw as i64 - ow as i64).max(0)) / 2)
    };
    let mut r = vec![0.0f64; n * oh * ow * oc];
    let mut m = vec![0.0f64; r.len()];
    for b in 0..n {
        for iy in 0..ih {
            for ix in 0..iw {
                for ci in 0..ic {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            for co in 0..oc {
                                let oy = (iy * stride[0] + ky) as i64 - pt;
                                let ox = (ix * stride[1] + kx) as i64 - pl;
                                if oy < 0 || ox < 0 || oy >= oh as i64 || ox >= ow as i64 {
                                    continue;
                                }
                                let p = f64::from(x[((b * ih + iy) * iw + ix) * ic + ci])
                                    * f64::from(w[((co * kh + ky) * kw + kx) * ic + ci]);
                                let i = ((b * oh + oy as usize) * ow + ox as usize) * oc + co;
                                r[i] += p;
                                m[i] += p.abs();
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(bias) = bias {
        for (i, v) in r.iter_mut().enumerate() {
            *v += f64::from(bias[i % oc]);
            m[i] += f64::from(bias[i % oc]).abs();
        }
    }
    (r, m)
}

fn transpose_conv_op(padding: Padding, stride: [u32; 2], activation: Activation) -> Op {
    Op::TransposeConv(TransposeConvAttrs { padding, stride, activation, bias_type: None })
}

fn naive_pool(
    x: &[f32],
    xs: [usize; 4],
    f: [usize; 2],
    s: [usize; 2],
    p: Padding,
    avg: bool,
) -> (Vec<f64>, [usize; 4]) {
    let [n, ih, iw, c] = xs;
    let (oh, pt) = out_and_pad(p, ih, f[0], s[0], 1);
    let (ow, pl) = out_and_pad(p, iw, f[1], s[1], 1);
    let mut out = vec![0.0; n * oh * ow * c];
    for b in 0..n {
        for y in 0..oh {
            for xo in 0..ow {
                for ch in 0..c {
                    let (mut sum, mut max, mut count) = (0.0f64, f64::NEG_INFINITY, 0usize);
                    for fy in 0..f[0] {
                        for fx in 0..f[1] {
                            let iy = (y * s[0] + fy) as i64 - pt;
                            let ix = (xo * s[1] + fx) as i64 - pl;
                            if iy < 0 || ix < 0 || iy >= ih as i64 || ix >= iw as i64 {
                                continue;
                            }
                            let v = f64::from(x[((b * ih + iy as usize) * iw + ix as usize) * c + ch]);
                            sum += v;
                            max = max.max(v);
                            count += 1;
                        }
                    }
                    out[((b * oh + y) * ow + xo) * c + ch] = if avg { sum / count as f64 } else { max };
                }
            }
        }
    }
    (out, [n, oh, ow, c])
}

fn pool_op(avg: bool, padding: Padding, stride: [u32; 2], filter: [u32; 2], activation: Activation) -> Op {
    let a = Pool2dAttrs { padding, stride, filter, activation };
    if avg {
        Op::AveragePool2d(a)
    } else {
        Op::MaxPool2d(a)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn conv2d_matches_naive(c in conv_case()) {
        check_conv(&c);
    }

    #[test]
    fn depthwise_matches_naive(c in dw_case()) {
        check_depthwise(&c);
    }

    #[test]
    fn transpose_conv_matches_naive(
        (n, ih, iw, ic, oc) in (1usize..3, 1usize..6, 1usize..6, 1usize..5, 1usize..5),
        (kh, kw, sh, sw) in (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        (extra_h, extra_w) in (0usize..3, 0usize..3),
        padding in padding(),
        bias in any::<bool>(),
        act in activation(),
        seed in any::<u64>(),
    ) {
        // Output extents TFLite's converter would produce, plus a little slack.
        let (oh, ow) = match padding {
            Padding::Same => (ih * sh + extra_h % sh.max(1), iw * sw + extra_w % sw.max(1)),
            Padding::Valid => ((ih - 1) * sh + kh + extra_h % sh, (iw - 1) * sw + kw + extra_w % sw),
        };
        let x = values(seed, n * ih * iw * ic);
        let w = values(seed ^ 1, oc * kh * kw * ic);
        let b = values(seed ^ 2, oc);
        let (want, mag) = naive_transpose_conv(&x, [n, ih, iw, ic], &w, [oc, kh, kw, ic], [n, oh, ow, oc],
            [sh, sw], padding, bias.then_some(&b[..]));
        let want: Vec<f64> = want.into_iter().map(|v| act_f64(act, v)).collect();
        let args = vec![
            Arg::Const(i32t(&[4], vec![n as i32, oh as i32, ow as i32, oc as i32])),
            Arg::Const(f32t(&[oc, kh, kw, ic], w)),
            Arg::In(f32t(&[n, ih, iw, ic], x)),
            if bias { Arg::Const(f32t(&[oc], b)) } else { Arg::Absent },
        ];
        let got = run(transpose_conv_op(padding, [sh as u32, sw as u32], act), args).unwrap();
        prop_assert_eq!(&got.shape, &vec![n, oh, ow, oc]);
        assert_close(f32s(&got), &want, &mag, "transpose_conv");
    }

    #[test]
    fn pooling_matches_naive(
        (n, ih, iw, c) in (1usize..3, 1usize..9, 1usize..9, 1usize..20),
        (fh, fw, sh, sw) in (1usize..4, 1usize..4, 1usize..4, 1usize..4),
        padding in padding(),
        avg in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(padding == Padding::Same || (fh <= ih && fw <= iw));
        let x = values(seed, n * ih * iw * c);
        let (want, shape) = naive_pool(&x, [n, ih, iw, c], [fh, fw], [sh, sw], padding, avg);
        let got = run(pool_op(avg, padding, [sh as u32, sw as u32], [fh as u32, fw as u32], Activation::None),
            vec![Arg::In(f32t(&[n, ih, iw, c], x))]).unwrap();
        prop_assert_eq!(&got.shape[..], &shape[..]);
        let mag = vec![(fh * fw) as f64; want.len()];
        assert_close(f32s(&got), &want, &mag, "pool");
    }

    #[test]
    fn fully_connected_matches_naive(
        (rows, depth, units) in (1usize..12, 1usize..70, 1usize..40),
        bias in any::<bool>(),
        act in activation(),
        seed in any::<u64>(),
    ) {
        let x = values(seed, rows * depth);
        let w = values(seed ^ 1, units * depth);
        let b = values(seed ^ 2, units);
        let mut want = vec![0.0; rows * units];
        let mut mag = vec![0.0; rows * units];
        for r in 0..rows {
            for u in 0..units {
                let mut s: f64 = (0..depth).map(|k| f64::from(x[r * depth + k]) * f64::from(w[u * depth + k])).sum();
                mag[r * units + u] = (0..depth).map(|k| f64::from(x[r * depth + k] * w[u * depth + k]).abs()).sum();
                if bias { s += f64::from(b[u]); }
                want[r * units + u] = act_f64(act, s);
            }
        }
        let op = Op::FullyConnected(FullyConnectedAttrs {
            activation: act, keep_num_dims: false, shuffled_weights: false,
            asymmetric_quantize_inputs: false, bias_type: None,
        });
        let args = vec![
            Arg::In(f32t(&[rows, depth], x)),
            Arg::Const(f32t(&[units, depth], w)),
            if bias { Arg::Const(f32t(&[units], b)) } else { Arg::Absent },
        ];
        let got = run(op, args).unwrap();
        assert_close(f32s(&got), &want, &mag, "fully_connected");
    }

    #[test]
    fn reductions_match_naive(
        shape in proptest::collection::vec(1usize..5, 1..5),
        axes_bits in 0u32..32,
        negative in any::<bool>(),
        keep_dims in any::<bool>(),
        mean in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let rank = shape.len();
        let axes: Vec<i32> = (0..rank).filter(|d| axes_bits & (1 << d) != 0)
            .map(|d| if negative { d as i32 - rank as i32 } else { d as i32 }).collect();
        // An empty axes constant would be a zero-size tensor, which graphs do not allow.
        prop_assume!(!axes.is_empty());
        let reduced = |d: usize| axes_bits & (1 << d) != 0;
        let x = values(seed, shape.iter().product());
        let out_shape: Vec<usize> = (0..rank).filter_map(|d| if reduced(d) { keep_dims.then_some(1) } else { Some(shape[d]) }).collect();
        let kept: Vec<usize> = (0..rank).map(|d| if reduced(d) { 1 } else { shape[d] }).collect();
        let count: usize = (0..rank).filter(|&d| reduced(d)).map(|d| shape[d]).product();
        let mut want = vec![0.0f64; kept.iter().product()];
        for (i, &v) in x.iter().enumerate() {
            let (mut rem, mut o, mut stride) = (i, 0, 1);
            for d in (0..rank).rev() {
                let idx = rem % shape[d];
                rem /= shape[d];
                if !reduced(d) { o += idx * stride; stride *= shape[d]; }
            }
            want[o] += f64::from(v);
        }
        if mean { want.iter_mut().for_each(|v| *v /= count as f64); }
        let op = if mean { Op::Mean { keep_dims } } else { Op::Sum { keep_dims } };
        let got = run(op, vec![Arg::In(f32t(&shape, x)), Arg::Const(i32t(&[axes.len()], axes))]).unwrap();
        prop_assert_eq!(&got.shape, &out_shape);
        let mag = vec![count as f64; want.len()];
        assert_close(f32s(&got), &want, &mag, "reduce");
    }

    #[test]
    fn binary_ops_broadcast_like_numpy(
        a_shape in proptest::collection::vec(1usize..4, 0..4),
        mask in proptest::collection::vec(any::<bool>(), 4),
        drop in 0usize..3,
        which in 0usize..7,
        act in activation(),
        seed in any::<u64>(),
    ) {
        // b: a's shape with some dims set to 1 and some leading dims dropped.
        let mut b_shape: Vec<usize> = a_shape.iter().zip(&mask).map(|(&d, &m)| if m { 1 } else { d }).collect();
        let k = drop.min(b_shape.len());
        b_shape.drain(..k);
        let x = values(seed, a_shape.iter().product());
        let y: Vec<f32> = values(seed ^ 1, b_shape.iter().product()).into_iter().map(|v| if which == 3 { v.signum() * (v.abs() + 0.5) } else { v }).collect();
        let (op, f): (Op, fn(f64, f64) -> f64) = match which {
            0 => (Op::Add { activation: act, pot_scale_int16: false }, |p, q| p + q),
            1 => (Op::Sub { activation: act, pot_scale_int16: false }, |p, q| p - q),
            2 => (Op::Mul { activation: act }, |p, q| p * q),
            3 => (Op::Div { activation: act }, |p, q| p / q),
            4 => (Op::Maximum, f64::max),
            5 => (Op::Minimum, f64::min),
            _ => (Op::SquaredDifference, |p, q| (p - q) * (p - q)),
        };
        let fused = op.fused_activation().unwrap_or_default();
        let got = run(op, vec![Arg::In(f32t(&a_shape, x.clone())), Arg::In(f32t(&b_shape, y.clone()))]).unwrap();
        prop_assert_eq!(&got.shape, &a_shape);
        // Reference by explicit index arithmetic.
        let rank = a_shape.len();
        let want: Vec<f64> = (0..x.len()).map(|i| {
            let (mut rem, mut bi, mut stride) = (i, 0, 1);
            for d in (0..rank).rev() {
                let idx = rem % a_shape[d];
                rem /= a_shape[d];
                if d >= k {
                    let bd = b_shape[d - k];
                    bi += if bd == 1 { 0 } else { idx } * stride;
                    stride *= bd;
                }
            }
            act_f64(fused, f(f64::from(x[i]), f64::from(y[bi])))
        }).collect();
        let mag: Vec<f64> = want.iter().map(|v| v.abs() * 10.0).collect();
        assert_close(f32s(&got), &want, &mag, "binary");
    }
}

// ---------------------------------------------------------------------------------------
// Hand-computed cases
// ---------------------------------------------------------------------------------------

fn conv_op(padding: Padding, stride: u32, act: Activation) -> Op {
    Op::Conv2d(Conv2dAttrs { padding, stride: [stride, stride], dilation: [1, 1], activation: act, bias_type: None })
}

/// A 1-channel k×k filter that is 1 at tap (ty, tx) and 0 elsewhere: the convolution then
/// reads exactly one input pixel, which shows where the window starts.
fn one_hot_filter(k: usize, ty: usize, tx: usize) -> Tensor {
    let mut w = vec![0.0; k * k];
    w[ty * k + tx] = 1.0;
    f32t(&[1, k, k, 1], w)
}

fn ramp(n: usize) -> Vec<f32> {
    (1..=n).map(|v| v as f32).collect()
}

#[test]
fn same_padding_offsets_even_and_odd_inputs() {
    // 4×4 input, 3×3 filter, stride 2: output 2×2, total padding (2-1)·2+3-4 = 1, so 0 before
    // and 1 after; tap (0,0) reads input (2y, 2x).
    let got = run(
        conv_op(Padding::Same, 2, Activation::None),
        vec![Arg::In(f32t(&[1, 4, 4, 1], ramp(16))), Arg::Const(one_hot_filter(3, 0, 0)), Arg::Absent],
    )
    .unwrap();
    assert_eq!(got.shape, [1, 2, 2, 1]);
    assert_eq!(f32s(&got), [1.0, 3.0, 9.0, 11.0]);
    // 5×5 input: output 3×3, total padding 2·2+3-5 = 2, one on each side; tap (0,0) reads
    // (2y-1, 2x-1), zero outside.
    let got = run(
        conv_op(Padding::Same, 2, Activation::None),
        vec![Arg::In(f32t(&[1, 5, 5, 1], ramp(25))), Arg::Const(one_hot_filter(3, 0, 0)), Arg::Absent],
    )
    .unwrap();
    assert_eq!(f32s(&got), [0.0, 0.0, 0.0, 0.0, 7.0, 9.0, 0.0, 17.0, 19.0]);
    // Stride 1, 2×2 filter on 4×4: total padding 1, all of it after: tap (1,1) reads
    // (y+1, x+1) and the last row and column see padding.
    let got = run(
        conv_op(Padding::Same, 1, Activation::None),
        vec![Arg::In(f32t(&[1, 4, 4, 1], ramp(16))), Arg::Const(one_hot_filter(2, 1, 1)), Arg::Absent],
    )
    .unwrap();
    assert_eq!(f32s(&got), [6.0, 7.0, 8.0, 0.0, 10.0, 11.0, 12.0, 0.0, 14.0, 15.0, 16.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // Depthwise uses the same offsets.
    let dw = Op::DepthwiseConv2d(DepthwiseConv2dAttrs {
        padding: Padding::Same,
        stride: [2, 2],
        dilation: [1, 1],
        depth_multiplier: 1,
        activation: Activation::None,
    });
    let got = run(dw, vec![Arg::In(f32t(&[1, 5, 5, 1], ramp(25))), Arg::Const(one_hot_filter(3, 0, 0)), Arg::Absent])
        .unwrap();
    assert_eq!(f32s(&got), [0.0, 0.0, 0.0, 0.0, 7.0, 9.0, 0.0, 17.0, 19.0]);
}

#[test]
fn conv_bias_and_activations() {
    // 1×1 conv, 2 in → 2 out, values chosen so each activation clips differently.
    let x = f32t(&[1, 1, 2, 2], vec![1.0, 2.0, -3.0, 4.0]);
    let w = f32t(&[2, 1, 1, 2], vec![1.0, 1.0, 2.0, -1.0]);
    let b = f32t(&[2], vec![0.5, 4.0]);
    // Sums: pixel 0: [3, 0] + bias = [3.5, 4]; pixel 1: [1, -10] + bias = [1.5, -6].
    for (act, want) in [
        (Activation::None, [3.5, 4.0, 1.5, -6.0]),
        (Activation::Relu, [3.5, 4.0, 1.5, 0.0]),
        (Activation::Relu6, [3.5, 4.0, 1.5, 0.0]),
        (Activation::ReluN1To1, [1.0, 1.0, 1.0, -1.0]),
        // TFLite's float kernels apply no TANH given as a fused activation.
        (Activation::Tanh, [3.5, 4.0, 1.5, -6.0]),
    ] {
        let got = run(
            conv_op(Padding::Valid, 1, act),
            vec![Arg::In(x.clone()), Arg::Const(w.clone()), Arg::Const(b.clone())],
        )
        .unwrap();
        assert_eq!(f32s(&got), want, "{act:?}");
    }
}

#[test]
fn transpose_conv_hand_computed() {
    // 2×2 input [[1,2],[3,4]], 3×3 filter of ones, stride 2, SAME, output 4×4: the forward
    // conv of the output has total padding (2-1)·2+3-4 = 1, so 0 before; input (iy, ix)
    // lands on output rows 2iy..2iy+2 and columns 2ix..2ix+2, clipped to 4.
    let args = vec![
        Arg::Const(i32t(&[4], vec![1, 4, 4, 1])),
        Arg::Const(f32t(&[1, 3, 3, 1], vec![1.0; 9])),
        Arg::In(f32t(&[1, 2, 2, 1], vec![1.0, 2.0, 3.0, 4.0])),
    ];
    let got = run(transpose_conv_op(Padding::Same, [2, 2], Activation::None), args).unwrap();
    assert_eq!(f32s(&got), [1.0, 1.0, 3.0, 2.0, 1.0, 1.0, 3.0, 2.0, 4.0, 4.0, 10.0, 6.0, 3.0, 3.0, 7.0, 4.0]);
    // Orientation of an OHWI filter: stride 1, VALID, a 2×2 filter [[1,10],[100,1000]] on a
    // single pixel of value 1 with 2 output channels (second one doubled) gives the filter.
    let args = vec![
        Arg::Const(i32t(&[4], vec![1, 2, 2, 2])),
        Arg::Const(f32t(&[2, 2, 2, 1], vec![1.0, 10.0, 100.0, 1000.0, 2.0, 20.0, 200.0, 2000.0])),
        Arg::In(f32t(&[1, 1, 1, 1], vec![1.0])),
        Arg::Const(f32t(&[2], vec![0.5, -0.5])),
    ];
    let got = run(transpose_conv_op(Padding::Valid, [1, 1], Activation::None), args).unwrap();
    assert_eq!(f32s(&got), [1.5, 1.5, 10.5, 19.5, 100.5, 199.5, 1000.5, 1999.5]);
}

#[test]
fn average_pool_counts_only_valid_elements() {
    let x = f32t(&[1, 3, 3, 1], ramp(9));
    // 2×2 window, stride 2, SAME on 3×3: total padding 1, after the input.
    let got = run(pool_op(true, Padding::Same, [2, 2], [2, 2], Activation::None), vec![Arg::In(x.clone())]).unwrap();
    assert_eq!(f32s(&got), [3.0, 4.5, 7.5, 9.0]);
    // 3×3 window, stride 1, SAME: one element of padding on each side.
    let got = run(pool_op(true, Padding::Same, [1, 1], [3, 3], Activation::None), vec![Arg::In(x.clone())]).unwrap();
    assert_eq!(f32s(&got), [3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]);
    // Max pooling over negatives ignores the padding too.
    let neg = f32t(&[1, 3, 3, 1], ramp(9).into_iter().map(|v| -v).collect());
    let got = run(pool_op(false, Padding::Same, [2, 2], [2, 2], Activation::None), vec![Arg::In(neg)]).unwrap();
    assert_eq!(f32s(&got), [-1.0, -3.0, -7.0, -9.0]);
    // Fused activation.
    let got = run(pool_op(true, Padding::Same, [2, 2], [2, 2], Activation::Relu6), vec![Arg::In(x)]).unwrap();
    assert_eq!(f32s(&got), [3.0, 4.5, 6.0, 6.0]);
    // A window smaller than the stride: 1×1 windows every 3 pixels of 4 (no padding).
    let got = run(
        pool_op(true, Padding::Same, [3, 3], [1, 1], Activation::None),
        vec![Arg::In(f32t(&[1, 4, 4, 1], ramp(16)))],
    )
    .unwrap();
    assert_eq!(f32s(&got), [1.0, 4.0, 13.0, 16.0]);
}

fn resize(align_corners: bool, half_pixel_centers: bool, x: Tensor, size: [i32; 2]) -> Result<Tensor, String> {
    run(
        Op::ResizeBilinear(ResizeAttrs { align_corners, half_pixel_centers }),
        vec![Arg::In(x), Arg::Const(i32t(&[2], size.to_vec()))],
    )
}

#[test]
fn resize_bilinear_modes() {
    // Input [[0, 1], [2, 3]] → 4×4: out = 2·Y(y) + X(x) with per-mode source coordinates.
    let x = f32t(&[1, 2, 2, 1], vec![0.0, 1.0, 2.0, 3.0]);
    let expect = |ys: [f32; 4], xs: [f32; 4]| -> Vec<f32> {
        ys.iter().flat_map(|&y| xs.iter().map(move |&x| 2.0 * y + x)).collect()
    };
    let close = |got: &Tensor, want: Vec<f32>, what: &str| {
        for (g, w) in f32s(got).iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{what}: got {:?}, want {want:?}", f32s(got));
        }
    };
    // Legacy: x·0.5 = 0, 0.5, 1, 1.5 (1.5 clamps its upper neighbour to 1).
    let legacy = [0.0, 0.5, 1.0, 1.0];
    close(&resize(false, false, x.clone(), [4, 4]).unwrap(), expect(legacy, legacy), "legacy");
    // align_corners: x·(1/3).
    let ac = [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0];
    close(&resize(true, false, x.clone(), [4, 4]).unwrap(), expect(ac, ac), "align_corners");
    // half_pixel_centers: (x+0.5)·0.5-0.5 = -0.25, 0.25, 0.75, 1.25, clamped at the edges.
    let hp = [0.0, 0.25, 0.75, 1.0];
    close(&resize(false, true, x.clone(), [4, 4]).unwrap(), expect(hp, hp), "half_pixel_centers");
    // Non-square, multi-channel, downscale: channel 1 is channel 0 plus 10.
    let x2 = f32t(&[1, 2, 4, 2], (0..8).flat_map(|i| [i as f32, i as f32 + 10.0]).collect());
    let got = resize(false, true, x2, [3, 2]).unwrap();
    assert_eq!(got.shape, [1, 3, 2, 2]);
    let g = f32s(&got);
    for p in 0..6 {
        assert!((g[2 * p + 1] - g[2 * p] - 10.0).abs() < 1e-5);
    }
    // half_pixel: x scale 2: (x+0.5)·2-0.5 = 0.5, 2.5; y scale 2/3: (y+0.5)·(2/3)-0.5 = -1/6, 0.5, 7/6.
    let want_c0 = [0.5, 2.5, 2.5, 4.5, 4.5, 6.5];
    for (p, w) in want_c0.iter().enumerate() {
        assert!((g[2 * p] - w).abs() < 1e-5, "{g:?}");
    }
    assert!(resize(true, true, x, [4, 4]).is_err());
}

#[test]
fn fully_connected_keep_num_dims_and_errors() {
    let x = f32t(&[2, 3, 4], values(7, 24));
    let w = f32t(&[5, 4], values(8, 20));
    let fc = |keep_num_dims: bool, shuffled_weights: bool| {
        Op::FullyConnected(FullyConnectedAttrs {
            activation: Activation::None,
            keep_num_dims,
            shuffled_weights,
            asymmetric_quantize_inputs: false,
            bias_type: None,
        })
    };
    let kept = run(fc(true, false), vec![Arg::In(x.clone()), Arg::Const(w.clone()), Arg::Absent]).unwrap();
    assert_eq!(kept.shape, [2, 3, 5]);
    let flat = run(fc(false, false), vec![Arg::In(x.clone()), Arg::Const(w.clone()), Arg::Absent]).unwrap();
    assert_eq!(flat.shape, [6, 5]);
    assert_eq!(kept.data, flat.data);
    // Hybrid weights are refused with a reason rather than computed differently from TFLite.
    let wq = Tensor::new(vec![5, 4], Data::I8(vec![1; 20])).unwrap();
    let err = run(fc(false, false), vec![Arg::In(x), Arg::Const(wq), Arg::Absent]).unwrap_err();
    assert!(err.contains("hybrid"), "{err}");
}

#[test]
fn grouped_conv_hand_computed() {
    // Two groups of one channel each: output channel g reads input channel g only.
    let x = f32t(&[1, 1, 1, 2], vec![3.0, 5.0]);
    let w = f32t(&[4, 1, 1, 1], vec![1.0, 2.0, 10.0, 20.0]);
    let got = run(conv_op(Padding::Valid, 1, Activation::None), vec![Arg::In(x), Arg::Const(w), Arg::Absent]).unwrap();
    assert_eq!(f32s(&got), [3.0, 6.0, 50.0, 100.0]);
}

#[test]
fn activations_follow_tflite_formulas() {
    let xs = vec![-20.0f32, -9.5, -3.0, -0.5, 0.0, 0.5, 3.0, 6.5, 17.0];
    let unary = |op: Op| f32s(&run(op, vec![Arg::In(f32t(&[xs.len()], xs.clone()))]).unwrap()).to_vec();
    let each = |f: &dyn Fn(f32) -> f32| xs.iter().map(|&v| f(v)).collect::<Vec<f32>>();
    assert_eq!(unary(Op::Relu), each(&|v| v.max(0.0)));
    assert_eq!(unary(Op::Relu6), each(&|v| v.clamp(0.0, 6.0)));
    assert_eq!(unary(Op::ReluN1To1), each(&|v| v.clamp(-1.0, 1.0)));
    assert_eq!(unary(Op::LeakyRelu { alpha: 0.2 }), each(&|v| if v > 0.0 { v } else { v * 0.2 }));
    // Logistic: exp(x) below -9, 1 above 16.619..., 1/(1+exp(-x)) between.
    assert_eq!(
        unary(Op::Logistic),
        each(&|v| if v > 16.619_047 {
            1.0
        } else if v < -9.0 {
            v.exp()
        } else {
            1.0 / (1.0 + (-v).exp())
        })
    );
    assert_eq!(unary(Op::Tanh), each(&f32::tanh));
    assert_eq!(unary(Op::HardSwish), each(&|v| v * (v + 3.0).clamp(0.0, 6.0) / 6.0));
    assert_eq!(unary(Op::Exp), each(&f32::exp));
    let pos: Vec<f32> = vec![0.25, 1.0, 2.0, 9.0];
    let sq = |op: Op| f32s(&run(op, vec![Arg::In(f32t(&[4], pos.clone()))]).unwrap()).to_vec();
    assert_eq!(sq(Op::Sqrt), [0.5, 1.0, 2.0f32.sqrt(), 3.0]);
    assert_eq!(sq(Op::Rsqrt), [2.0, 1.0, 1.0 / 2.0f32.sqrt(), 1.0 / 3.0]);
}

#[test]
fn prelu_broadcasts_alpha() {
    let x = f32t(&[1, 2, 2, 3], (0..12).map(|i| i as f32 - 6.0).collect());
    let alpha = f32t(&[1, 1, 3], vec![0.1, 0.2, 0.3]);
    let got = run(Op::Prelu, vec![Arg::In(x.clone()), Arg::Const(alpha)]).unwrap();
    let want: Vec<f32> =
        f32s(&x).iter().enumerate().map(|(i, &v)| if v >= 0.0 { v } else { v * [0.1, 0.2, 0.3][i % 3] }).collect();
    assert_eq!(f32s(&got), want);
}

#[test]
fn softmax_and_l2_normalization() {
    let x = f32t(&[2, 3], vec![1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0]);
    let got = run(Op::Softmax { beta: 1.0 }, vec![Arg::In(x.clone())]).unwrap();
    let e: Vec<f32> = [-2.0f32, -1.0, 0.0].iter().map(|v| v.exp()).collect();
    let s: f32 = e.iter().sum();
    let g = f32s(&got);
    for c in 0..3 {
        assert!((g[c] - e[c] / s).abs() < 1e-7);
        assert!((g[3 + c] - 1.0 / 3.0).abs() < 1e-7, "max subtraction keeps large inputs finite");
    }
    let got = run(Op::Softmax { beta: 0.5 }, vec![Arg::In(f32t(&[2], vec![0.0, 2.0]))]).unwrap();
    let want = 1.0 / (1.0 + 1.0f32.exp());
    assert!((f32s(&got)[0] - want).abs() < 1e-7);

    let l2 = Op::L2Normalization { activation: Activation::None };
    let got = run(l2.clone(), vec![Arg::In(f32t(&[2, 2], vec![3.0, 4.0, 0.0, 0.0]))]).unwrap();
    assert_eq!(f32s(&got), [0.6, 0.8, 0.0, 0.0]);
    // Below the epsilon the norm is taken as 1e-6.
    let got = run(l2, vec![Arg::In(f32t(&[1, 2], vec![3e-7, 4e-7]))]).unwrap();
    assert!((f32s(&got)[0] - 0.3).abs() < 1e-6 && (f32s(&got)[1] - 0.4).abs() < 1e-6, "{:?}", f32s(&got));
    let err = run(Op::L2Normalization { activation: Activation::Relu }, vec![Arg::In(f32t(&[1, 2], vec![1.0, 2.0]))])
        .unwrap_err();
    assert!(err.contains("activation"), "{err}");
}

#[test]
fn mean_over_spatial_axes_keep_dims() {
    let x = f32t(&[1, 2, 2, 2], vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]);
    let got = run(Op::Mean { keep_dims: true }, vec![Arg::In(x.clone()), Arg::Const(i32t(&[2], vec![1, 2]))]).unwrap();
    assert_eq!(got.shape, [1, 1, 1, 2]);
    assert_eq!(f32s(&got), [2.5, 25.0]);
    let got = run(Op::Sum { keep_dims: false }, vec![Arg::In(x), Arg::Const(i32t(&[1], vec![-1]))]).unwrap();
    assert_eq!(got.shape, [1, 2, 2]);
    assert_eq!(f32s(&got), [11.0, 22.0, 33.0, 44.0]);
}

#[test]
fn dequantize_f16_widens_exactly() {
    let h: Vec<f16> = [0.5f32, -1.25, 65504.0, 1e-7].iter().map(|&v| f16::from_f32(v)).collect();
    let want: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
    let x = Tensor::new(vec![4], Data::F16(h)).unwrap();
    let got = run(Op::Dequantize, vec![Arg::Const(x)]).unwrap();
    assert_eq!(got.dtype(), DType::F32);
    assert_eq!(f32s(&got), want);
}

#[test]
fn integer_binary_ops() {
    let a = i32t(&[2, 2], vec![1, -2, 7, 9]);
    let b = i32t(&[2], vec![3, -4]);
    let get = |op: Op| run(op, vec![Arg::In(a.clone()), Arg::In(b.clone())]).unwrap().as_i32().unwrap().to_vec();
    assert_eq!(get(Op::Add { activation: Activation::None, pot_scale_int16: false }), [4, -6, 10, 5]);
    assert_eq!(get(Op::Add { activation: Activation::Relu6, pot_scale_int16: false }), [4, 0, 6, 5]);
    assert_eq!(get(Op::Mul { activation: Activation::None }), [3, 8, 21, -36]);
    assert_eq!(get(Op::Div { activation: Activation::None }), [0, 0, 2, -2]);
    assert_eq!(get(Op::Maximum), [3, -2, 7, 9]);
    assert_eq!(get(Op::SquaredDifference), [4, 4, 16, 169]);
    let zero = i32t(&[1], vec![0]);
    assert!(run(Op::Div { activation: Activation::None }, vec![Arg::In(a), Arg::In(zero)]).is_err());
}

#[test]
fn hybrid_conv_is_refused() {
    let x = f32t(&[1, 2, 2, 1], vec![1.0; 4]);
    let w = Tensor::new(vec![1, 1, 1, 1], Data::I8(vec![1])).unwrap();
    let err =
        run(conv_op(Padding::Valid, 1, Activation::None), vec![Arg::In(x), Arg::Const(w), Arg::Absent]).unwrap_err();
    assert!(err.contains("hybrid"), "{err}");
}

#[test]
fn large_convolutions_use_every_path() {
    // Big enough to split over threads and into several GEMM chunks, 1×1 (direct) and 3×3.
    for (k, stride, groups) in [(1usize, 1usize, 1usize), (3, 1, 1), (3, 2, 1), (1, 1, 2), (3, 1, 4)] {
        let c = ConvCase {
            n: 2,
            ih: 23,
            iw: 19,
            groups,
            icg: 24 / groups,
            ocg: 40 / groups,
            kh: k,
            kw: k,
            stride: [stride, stride],
            dilation: [1, 1],
            padding: Padding::Same,
            act: Activation::Relu6,
            bias: true,
            seed: k as u64 * 31 + stride as u64,
        };
        check_conv(&c);
    }
    check_depthwise(&DwCase {
        n: 1,
        ih: 40,
        iw: 37,
        ic: 52,
        mult: 1,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        dilation: [1, 1],
        padding: Padding::Same,
        act: Activation::Relu6,
        bias: true,
        seed: 5,
    });
}
