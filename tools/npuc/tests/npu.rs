//! `npuc sim` and `npuc inspect` on `.npu` artifacts: the simulator prints what `npuc run`
//! prints for the quantized model and the same seed, `inspect --json` has the report keys,
//! and broken artifacts are one `error:` line with exit code 2.

mod support;

use std::path::{Path, PathBuf};

use npuc_npu::artifact;
use npuc_npu::lower::{lower, LowerOptions};
use npuc_target::Target;
use support::{npuc, stderr};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models").join(name).canonicalize().unwrap()
}

/// Runs `npuc run` on `model` and `npuc sim` on `npu` with the same seed, writing outputs,
/// and checks the output arrays are the same bytes.
fn same_outputs(model: &Path, npu: &Path, seed: &str, dir: &Path) {
    let (a, b) = (dir.join("run"), dir.join("sim"));
    let r = npuc(&["run", model.to_str().unwrap(), "--seed", seed, "--threads", "1", "-o", a.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let s = npuc(&["sim", npu.to_str().unwrap(), "--seed", seed, "-o", b.to_str().unwrap()]);
    assert!(s.status.success(), "{}", stderr(&s));
    let mut run_files: Vec<PathBuf> = std::fs::read_dir(&a).unwrap().map(|e| e.unwrap().path()).collect();
    run_files.sort();
    assert!(!run_files.is_empty());
    for (i, f) in run_files.iter().enumerate() {
        let sim = std::fs::read(b.join(format!("{i}.npy"))).unwrap();
        assert!(std::fs::read(f).unwrap() == sim, "{}: output {i} differs between run and sim", npu.display());
    }
    std::fs::remove_dir_all(a).unwrap();
    std::fs::remove_dir_all(b).unwrap();
}

/// Lowers a fixture for a target and writes its artifact into `dir`.
fn artifact_of(name: &str, target: &str, dir: &Path) -> PathBuf {
    let g = npuc_tflite::import_file(&fixture(name)).unwrap().main().unwrap().clone();
    let p = lower(&g, &Target::builtin(target).unwrap(), &LowerOptions::default()).unwrap();
    let path = dir.join(name.replace(".tflite", ".npu"));
    artifact::write_file(&path, &p).unwrap();
    path
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn sim_prints_what_run_prints_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, target) in [("ds_cnn_int8.tflite", "ethos-u55-128"), ("sesr_m5_x2_int8.tflite", "ethos-u65-256")] {
        let npu = artifact_of(name, target, dir.path());
        let s = npuc(&["sim", npu.to_str().unwrap(), "--seed", "5"]);
        assert!(s.status.success(), "{}", stderr(&s));
        let r = npuc(&["run", fixture(name).to_str().unwrap(), "--seed", "5", "--threads", "1"]);
        assert!(r.status.success(), "{}", stderr(&r));
        // `run` names outputs by signature, the artifact by tensor; the numbers must agree.
        let values = |t: String| t.lines().map(|l| l.split_once("': ").map(|x| x.1.to_string())).collect::<Vec<_>>();
        assert_eq!(values(stdout(&s)), values(stdout(&r)), "{name}: sim and run disagree");
        assert!(!stdout(&s).is_empty());
        same_outputs(&fixture(name), &npu, "5", dir.path());
    }
}

#[test]
fn sim_reads_inputs_from_npy_and_writes_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let npu = artifact_of("resnet8_int8.tflite", "ethos-u55-128", dir.path());
    let out = dir.path().join("out");
    let s = npuc(&["sim", npu.to_str().unwrap(), "--seed", "3", "-o", out.to_str().unwrap()]);
    assert!(s.status.success(), "{}", stderr(&s));
    let first = out.join("0.npy");
    assert!(first.exists());
    // Feeding an output back as an input of the wrong shape is refused with one line.
    let bad = npuc(&["sim", npu.to_str().unwrap(), "--input", &format!("0={}", first.display())]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).starts_with("error: ") && stderr(&bad).lines().count() == 1, "{}", stderr(&bad));
}

#[test]
fn inspect_json_has_the_report_keys() {
    let dir = tempfile::tempdir().unwrap();
    let npu = artifact_of("mobilenet_v2_035_96_int8.tflite", "ethos-u55-128", dir.path());
    let o = npuc(&["inspect", npu.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in
        ["cycles", "latency_us", "energy_uj", "sram_bytes", "flash_bytes", "encoded_weight_bytes", "npu_ops", "cpu_ops"]
    {
        assert!(v.get(key).is_some(), "inspect --json lacks '{key}': {v}");
    }
    assert_eq!(v["npu_ops"], 65);
    assert!(v["encoded_weight_bytes"].as_u64().unwrap() > 10_000);
    let t = npuc(&["inspect", npu.to_str().unwrap()]);
    assert!(t.status.success(), "{}", stderr(&t));
    let text = stdout(&t);
    assert!(text.contains("npuc artifact v1 for ethos-u55-128") && text.contains("npu conv_2d"), "{text}");
}

#[test]
fn corrupted_or_truncated_artifacts_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let npu = artifact_of("ds_cnn_int8.tflite", "ethos-u55-128", dir.path());
    let bytes = std::fs::read(&npu).unwrap();
    let mut flipped = bytes.clone();
    let at = bytes.len() / 2;
    flipped[at] ^= 0x40;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("flipped.npu", flipped, "corrupted"),
        ("short.npu", bytes[..bytes.len() - 100].to_vec(), "truncated"),
        ("version.npu", [&bytes[..8], &[7, 0], &bytes[10..]].concat(), "version 7"),
        ("junk.npu", b"hello".to_vec(), "not an npuc artifact"),
    ];
    for (file, data, want) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, data).unwrap();
        for cmd in ["sim", "inspect"] {
            let o = npuc(&[cmd, path.to_str().unwrap()]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} {file}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd} {file}: {err}");
            assert!(err.starts_with(&format!("error: {}: ", path.display())), "{cmd} {file}: {err}");
            assert!(err.contains(want), "{cmd} {file}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// 16x8 models (int16 activations, int8 weights, int64 bias) lower too (weights reordered for
/// 16-bit IFMs), and the simulator's outputs are `npuc run`'s, byte for byte.
#[test]
fn sixteen_by_eight_models_simulate_like_run() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ds_cnn", "resnet8"] {
        let q = dir.path().join(format!("{name}_16x8.tflite"));
        let f32 = fixture(&format!("{name}_f32.tflite"));
        let o = npuc(&[
            "opt",
            f32.to_str().unwrap(),
            "--passes=canonicalize,quantize{activations=int16}",
            "-o",
            q.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let g = npuc_tflite::import_file(&q).unwrap().main().unwrap().clone();
        let p = lower(&g, &Target::builtin("ethos-u55-128").unwrap(), &LowerOptions::default()).unwrap();
        assert!(p.npu_ops() > 0 && !p.weights.is_empty(), "{name}: nothing lowered to the NPU");
        let npu = dir.path().join(format!("{name}_16x8.npu"));
        artifact::write_file(&npu, &p).unwrap();
        same_outputs(&q, &npu, "9", dir.path());
    }
}

/// `npuc compile --target` is the whole NPU compiler: a float model is quantized, lowered
/// and written as an artifact whose report has the cycle model's figures, and simulating the
/// artifact gives exactly what running the same quantized model in the interpreter gives.
#[test]
fn compile_with_a_target_quantizes_lowers_and_simulates_like_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let float = fixture("mobilenet_v2_035_96_f32.tflite");
    let npu = dir.path().join("m.npu");
    let o =
        npuc(&["compile", float.to_str().unwrap(), "--target", "ethos-u55-128", "-o", npu.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["pipeline"], "canonicalize,collapse-linear,quantize");
    let stage = report["stages"].as_array().unwrap().last().unwrap();
    assert!(stage["costs"].to_string().contains("npu.cycles"), "{stage}");
    let inspect = npuc(&["inspect", npu.to_str().unwrap(), "--json"]);
    let keys: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    for k in ["cycles", "latency_us", "energy_uj", "sram_bytes", "flash_bytes", "encoded_weight_bytes"] {
        assert!(keys[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {}", keys[k]);
        assert_eq!(keys[k], report["npu"][k], "{k}: compile --json and inspect --json disagree");
    }
    assert_eq!((keys["npu_ops"].as_u64(), keys["cpu_ops"].as_u64()), (Some(65), Some(0)));

    // The same pipeline without a target writes the quantized model the artifact was made from.
    let quantized = dir.path().join("q.tflite");
    let o = npuc(&[
        "compile",
        float.to_str().unwrap(),
        "--passes",
        "canonicalize,collapse-linear,quantize",
        "-o",
        quantized.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    same_outputs(&quantized, &npu, "3", dir.path());

    // Equal inputs, equal bytes.
    let again = dir.path().join("again.npu");
    let o = npuc(&["compile", float.to_str().unwrap(), "--target", "ethos-u55-128", "-o", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&npu).unwrap() == std::fs::read(&again).unwrap(), "artifacts differ from run to run");
}

#[test]
fn compile_target_errors_are_one_line_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npu");
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/examples/sesr-m5-x2-360x640-expanded.tflite");
    let int8 = fixture("ds_cnn_int8.tflite");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![int8.to_str().unwrap(), "--target", "ethos-u99", "-o", out.to_str().unwrap()], "ethos-u99"),
        (vec![int8.to_str().unwrap(), "-o", out.to_str().unwrap()], "add --target"),
        (vec![int8.to_str().unwrap(), "--target", "ethos-u55-128", "-o", "x.tflite"], "writes a .npu artifact"),
        // A 360x640 SESR's feature maps exceed the U55's SRAM and flash cannot hold them.
        (vec![example.to_str().unwrap(), "--target", "ethos-u55-128", "-o", out.to_str().unwrap()], "SRAM arena needs"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["compile"];
        all.extend(args);
        let o = npuc(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error: ")).count(), 1, "{all:?}: {err}");
        assert!(err.contains(needle), "{all:?}: {err}");
        assert!(!out.exists(), "{all:?} left {}", out.display());
    }
}
