//! Shared helpers of the codec tests: the Vela oracle (tools/mlw_oracle.py in the repo's
//! .venv) and the weight sets the interop and size tests run on.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use npyz::WriterBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

/// Writes a 1-D int16 .npy file.
fn write_npy(path: &Path, values: &[i16]) {
    write_npy_shaped(path, values, &[values.len() as u64]);
}

/// Writes an int16 .npy file of the given shape.
pub fn write_npy_shaped<T: npyz::AutoSerialize + Copy>(path: &Path, values: &[T], shape: &[u64]) {
    let mut out = Vec::new();
    {
        let mut w =
            npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut out).begin_nd().expect("npy header");
        w.extend(values.iter().copied()).expect("npy data");
        w.finish().expect("npy finish");
    }
    std::fs::write(path, out).expect("write npy");
}

/// Reads a 1-D int16 .npy file.
fn read_npy(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("read npy");
    let npy = npyz::NpyFile::new(&bytes[..]).expect("parse npy");
    npy.into_vec::<i16>().expect("npy is int16")
}

/// Runs tools/mlw_oracle.py; a missing .venv or Vela is a loud failure, never a skip.
pub fn oracle(mode: &str, pairs: &[(PathBuf, PathBuf)]) {
    oracle_with(mode, pairs, &[]);
}

/// Runs tools/mlw_oracle.py with extra options.
pub fn oracle_with(mode: &str, pairs: &[(PathBuf, PathBuf)], opts: &[String]) {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} missing: run tools/setup-venv.sh (the Vela oracle is required)", python.display());
    let mut cmd = Command::new(&python);
    cmd.arg(root.join("tools/mlw_oracle.py")).arg(mode);
    for (a, b) in pairs {
        cmd.arg(a).arg(b);
    }
    cmd.args(opts);
    let out = cmd.output().expect("run mlw_oracle.py");
    assert!(
        out.status.success(),
        "mlw_oracle.py {mode} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Encodes each set with Vela's `ethosu.mlw_codec.encode`.
pub fn vela_encode(sets: &[&[i16]]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs: Vec<_> =
        (0..sets.len()).map(|i| (dir.path().join(format!("{i}.npy")), dir.path().join(format!("{i}.bin")))).collect();
    for (set, (npy, _)) in sets.iter().zip(&pairs) {
        write_npy(npy, set);
    }
    oracle("encode", &pairs);
    pairs.iter().map(|(_, bin)| std::fs::read(bin).expect("read stream")).collect()
}

/// Decodes each stream with Vela's `ethosu.mlw_codec.decode`.
pub fn vela_decode(streams: &[&[u8]]) -> Vec<Vec<i16>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs: Vec<_> = (0..streams.len())
        .map(|i| (dir.path().join(format!("{i}.bin")), dir.path().join(format!("{i}.npy"))))
        .collect();
    for (s, (bin, _)) in streams.iter().zip(&pairs) {
        std::fs::write(bin, s).expect("write stream");
    }
    oracle("decode", &pairs);
    pairs.iter().map(|(_, npy)| read_npy(npy)).collect()
}

/// A named weight set.
pub struct Set {
    /// Name for messages and the size table.
    pub name: String,
    /// Values, −255..=255.
    pub values: Vec<i16>,
    /// For fixture weights: the OHWI shape (depthwise: [C, H, W, 1]) and whether depthwise.
    pub ohwi: Option<([usize; 4], bool)>,
}

/// Roughly bell-shaped int8-range values, like trained weights.
fn bell(rng: &mut ChaCha8Rng, n: usize, spread: i32) -> Vec<i16> {
    (0..n)
        .map(|_| {
            let s: i32 = (0..4).map(|_| rng.random_range(-spread..=spread)).sum();
            (s / 2).clamp(-127, 127) as i16
        })
        .collect()
}

/// Sets `frac` of the values to zero.
fn prune(rng: &mut ChaCha8Rng, v: &mut [i16], frac: f64) {
    for x in v.iter_mut() {
        if rng.random_bool(frac) {
            *x = 0;
        }
    }
}

/// Conv and depthwise weights of the int8 fixture models, minus their zero points.
pub fn fixture_sets() -> Vec<Set> {
    use npuc_ir::{DType, Op};
    let dir = repo_root().join("tools/fixtures/models");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with("_int8.tflite"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no int8 fixtures in {}", dir.display());
    let mut sets = Vec::new();
    for path in paths {
        let module = npuc_tflite::import_file(&path).expect("fixture imports");
        let graph = module.main().expect("main graph");
        let stem = path.file_stem().expect("stem").to_string_lossy().to_string();
        for op_id in graph.op_ids() {
            let op = graph.op(op_id);
            if !matches!(op.op, Op::Conv2d(_) | Op::DepthwiseConv2d(_)) {
                continue;
            }
            let Some(wid) = op.input(1) else { continue };
            let v = graph.value(wid);
            let (Some(data), DType::I8) = (v.data.as_ref(), v.ty.dtype) else { continue };
            let bytes = data.bytes().expect("fixture constants are not elided");
            let (zps, axis) = v.ty.quant.as_ref().map_or((vec![0], 0), |q| (q.zero_point.clone(), q.axis as usize));
            let inner: usize = v.ty.shape.iter().skip(axis + 1).product();
            let values: Vec<i16> = bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    let zp = if zps.len() > 1 { zps[(i / inner.max(1)) % zps.len()] } else { zps[0] };
                    (i64::from(b as i8) - zp) as i16
                })
                .collect();
            let sh = &v.ty.shape;
            let depthwise = matches!(op.op, Op::DepthwiseConv2d(_));
            let (ohwi, values) = if sh.len() != 4 {
                (None, values)
            } else if depthwise {
                // TFLite keeps depthwise weights as [1, H, W, C]; the reorder wants [C, H, W, 1].
                let (h, w, c) = (sh[1], sh[2], sh[3]);
                let t = (0..c * h * w).map(|i| values[(i % (h * w)) * c + i / (h * w)]).collect();
                (Some(([c, h, w, 1], true)), t)
            } else {
                (Some(([sh[0], sh[1], sh[2], sh[3]], false)), values)
            };
            sets.push(Set { name: format!("{stem}/{}", v.name), values, ohwi });
        }
    }
    sets
}

/// Synthetic sets: random, pruned, low-bit and edge lengths.
pub fn synthetic_sets() -> Vec<Set> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut sets = Vec::new();
    let mut add = |name: &str, values: Vec<i16>| sets.push(Set { name: name.into(), values, ohwi: None });
    add("uniform-9bit-4096", (0..4096).map(|_| rng.random_range(-255..=255)).collect());
    add("uniform-int8-4096", (0..4096).map(|_| rng.random_range(-128..=127)).collect());
    add("bell-int8-20000", bell(&mut rng, 20000, 64));
    for frac in [0.5, 0.75, 0.9] {
        let mut v = bell(&mut rng, 20000, 64);
        prune(&mut rng, &mut v, frac);
        add(&format!("pruned-{}pct-20000", (frac * 100.0) as u32), v);
    }
    add("lowbit-pm7-10000", (0..10000).map(|_| rng.random_range(-7..=7)).collect());
    add("lowbit-pm1-10000", (0..10000).map(|_| rng.random_range(-1..=1)).collect());
    for n in [1usize, 2, 12, 13, 100, 32767, 32768, 32769, 70000] {
        add(&format!("bell-len-{n}"), bell(&mut rng, n, 64));
    }
    for n in [1usize, 10, 32768, 32769, 100000] {
        add(&format!("zeros-len-{n}"), vec![0; n]);
    }
    add("single-255", vec![255]);
    add("single-minus255", vec![-255]);
    add("extremes", (0..1000).map(|i| if i % 2 == 0 { 255 } else { -255 }).collect());
    let mut v = bell(&mut rng, 40000, 64);
    prune(&mut rng, &mut v, 0.97);
    add("pruned-97pct-40000", v);
    sets
}
