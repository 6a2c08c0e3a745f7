//! `npuc run` end to end: outputs written as .npy in output order, deterministic for a
//! seed, and bad inputs rejected with one line and exit code 2.

mod support;

use std::path::{Path, PathBuf};

use support::{npuc, stderr};

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models").join(name);
    p.canonicalize().unwrap().display().to_string()
}

fn npy_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn writes_one_npy_per_output_in_order_and_is_deterministic() {
    let model = fixture("zoo_a_int8.tflite");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        let o = npuc(&["run", &model, "--seed", "7", "-o", dir.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(text.lines().count(), 5, "one summary line per output:\n{text}");
        assert!(
            text.lines().all(|l| l.starts_with("output ") && l.contains(" min ") && l.contains(" mean ")),
            "{text}"
        );
    }
    let files = npy_files(a.path());
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(files.iter().enumerate().all(|(i, f)| f.starts_with(&format!("{i}-")) && f.ends_with(".npy")), "{files:?}");
    for f in &files {
        let (x, y) = (std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap());
        assert_eq!(x, y, "{f} differs between two runs with the same seed");
        assert_eq!(&x[..6], b"\x93NUMPY");
    }
}

#[test]
fn given_inputs_are_used() {
    let model = fixture("sesr_m5_x2_f32.tflite");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.npy");
    let t = npuc_interp::Tensor { shape: vec![1, 64, 64, 1], data: npuc_interp::Data::F32(vec![0.25; 64 * 64]) };
    std::fs::write(&input, npuc_interp::npy::write(&t).unwrap()).unwrap();
    let spec = format!("input={}", input.display());
    let o = npuc(&["run", &model, "--input", &spec]);
    assert!(o.status.success(), "{}", stderr(&o));
    // SESR adds the input back and clips to [0, 1]: a flat 0.25 image stays in range.
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("f32[1x128x128x1]"), "{text}");
}

#[test]
fn bad_inputs_are_one_line_errors_with_exit_code_2() {
    let model = fixture("sesr_m5_x2_f32.tflite");
    let dir = tempfile::tempdir().unwrap();
    let wrong_dtype = dir.path().join("i8.npy");
    let t = npuc_interp::Tensor { shape: vec![1, 64, 64, 1], data: npuc_interp::Data::I8(vec![0; 64 * 64]) };
    std::fs::write(&wrong_dtype, npuc_interp::npy::write(&t).unwrap()).unwrap();
    let wrong_shape = dir.path().join("shape.npy");
    let t = npuc_interp::Tensor { shape: vec![1, 8, 8, 1], data: npuc_interp::Data::F32(vec![0.0; 64]) };
    std::fs::write(&wrong_shape, npuc_interp::npy::write(&t).unwrap()).unwrap();
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").unwrap();
    let cases = [
        (format!("input={}", wrong_dtype.display()), "but the input is f32"),
        (format!("input={}", wrong_shape.display()), "has shape [1, 8, 8, 1]"),
        (format!("input={}", garbage.display()), "not a .npy file"),
        (format!("nosuch={}", garbage.display()), "no input named 'nosuch'"),
        ("input".to_string(), "NAME=FILE.npy"),
    ];
    for (spec, needle) in cases {
        let o = npuc(&["run", &model, "--input", &spec]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{spec}: {err}");
        assert_eq!(err.lines().count(), 1, "{spec}: {err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{spec}: {err}");
    }
    // A genuinely opaque (custom) op cannot run: refused by name.
    let custom = dir.path().join("custom.nir");
    std::fs::write(
        &custom,
        "graph @main(%arg0: tensor<2xf32>) {\n  %0 = opaque \"MY_CUSTOM\"(%arg0) : tensor<2xf32>\n  return %0\n}\n",
    )
    .unwrap();
    let o = npuc(&["run", custom.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("op #0 (MY_CUSTOM): npuc has no kernel for this operator (it is kept opaque)"),
        "{}",
        stderr(&o)
    );
}

/// Control flow runs: zoo_c's IF and WHILE execute their subgraphs.
#[test]
fn run_executes_control_flow() {
    for name in ["zoo_c_f32.tflite", "zoo_c_int8.tflite"] {
        let o = npuc(&["run", &fixture(name), "--seed", "3"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("[1x1x8]"), "{name}: {out}");
    }
}
