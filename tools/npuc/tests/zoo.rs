//! `npuc zoo` end to end: the written .tflite runs in LiteRT and agrees with npuc's
//! interpreter, equal seeds write identical files, and bad options are one-line errors
//! with exit code 2.

mod support;

use std::path::Path;
use std::process::Command;
use support::{npuc, python, repo, stderr};

fn read_f32(path: &Path) -> npuc_interp::Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npuc_interp::npy::read_any(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn zoo_model_runs_in_litert_and_agrees_with_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m3.tflite");
    let o = npuc(&["zoo", "sesr-m3", "--scale", "2", "--input", "8x12", "-o", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let lr = dir.path().join("litert");
    let res = Command::new(python())
        .arg(repo().join("tools/litert_oracle.py"))
        .arg("run")
        .arg(&model)
        .args(["--seed", "0", "--out"])
        .arg(&lr)
        .output()
        .unwrap();
    assert!(res.status.success(), "LiteRT failed: {}", String::from_utf8_lossy(&res.stderr));

    let ours = dir.path().join("npuc");
    let spec = format!("input={}", lr.join("in_0.npy").display());
    let o = npuc(&["run", model.to_str().unwrap(), "--input", &spec, "-o", ours.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let want = read_f32(&lr.join("out_0.npy"));
    let got = read_f32(&ours.join("0-output.npy"));
    assert_eq!(want.shape, vec![1, 16, 24, 1]);
    assert_eq!(got.shape, want.shape);
    let (w, g) = (want.data.to_f64_vec(), got.data.to_f64_vec());
    let worst = w.iter().zip(&g).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-4, "LiteRT and npuc differ by up to {worst}");
    // Agreement must not be only on clipped pixels.
    let inside = w.iter().filter(|&&v| v > 0.0 && v < 1.0).count();
    assert!(inside >= w.len() / 4, "only {inside} of {} LiteRT outputs are inside (0, 1)", w.len());
}

#[test]
fn equal_seeds_write_identical_files_and_formats_follow_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    for (name, seed) in [("a.tflite", "7"), ("b.tflite", "7"), ("c.tflite", "8")] {
        let o = npuc(&["zoo", "sesr-m5", "--scale", "4", "--input", "3x5", "--seed", seed, "-o", &path(name)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let read = |name: &str| std::fs::read(path(name)).unwrap();
    assert!(read("a.tflite") == read("b.tflite"), "same seed, different files");
    assert!(read("a.tflite") != read("c.tflite"), "different seeds, same file");
    assert_eq!(&read("a.tflite")[4..8], b"TFL3");

    let o = npuc(&["zoo", "sesr-xl", "--input", "2x2", "--activation", "relu", "--batch", "2", "-o", &path("x.nir")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(read("x.nir")).unwrap();
    assert!(text.contains("graph @main(%arg0: tensor<2x2x2x1xf32> {name = \"input\"})"), "{text}");
    assert!(text.contains("{name = \"body10/relu\"}") && !text.contains("prelu"), "{text}");
    let o = npuc(&["zoo", "sesr-m3", "--input", "2x2", "-o", &path("x.dot")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8(read("x.dot")).unwrap().starts_with("digraph"));
}

#[test]
fn bad_options_are_one_line_errors_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tflite").display().to_string();
    let cases: [(&[&str], &str); 10] = [
        (&["sesr-m3", "--scale", "3", "--input", "4x4"], "--scale: scale 3 is not supported"),
        (&["sesr-m3", "--input", "0x5"], "--input: height 0 is out of range"),
        (&["sesr-m3", "--input", "5x0"], "--input: width 0 is out of range"),
        (&["sesr-m3", "--input", "12x"], "--input: '12x' is not HEIGHTxWIDTH"),
        (&["sesr-m3", "--input", "-4x4"], "--input: '-4x4' is not HEIGHTxWIDTH"),
        (
            &["sesr-m6", "--input", "4x4"],
            "unknown model 'sesr-m6' (known: sesr-m3, sesr-m5, sesr-m7, sesr-m11, sesr-xl)",
        ),
        (&["sesr-m3", "--input", "4x4", "--batch", "-1"], "--batch: '-1' is not a non-negative integer"),
        (&["sesr-m3", "--input", "4x4", "--expansion", "0"], "--expansion: expansion 0 is out of range"),
        (&["sesr-m3", "--input", "4x4", "--activation", "gelu"], "unknown activation 'gelu'"),
        (&["sesr-m3"], "--input: the input size HxW is required"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["zoo"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", &out]);
        let o = npuc(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{args:?}: {err}");
    }
    assert!(!Path::new(&out).exists(), "a failed zoo run left an output file");
}

#[test]
fn list_names_every_model() {
    let o = npuc(&["zoo", "--list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["sesr-m3", "sesr-m5", "sesr-m7", "sesr-m11", "sesr-xl", "search"], "{text}");
    assert!(
        text.lines().last().unwrap().ends_with("classification, super-resolution, keyword-spotting, detection"),
        "{text}"
    );
}

/// The first seed of `space` whose model is small enough to run quickly in a test.
fn small_sample(space: npuc_zoo::space::Space) -> u64 {
    (0..50)
        .find(|&seed| {
            let s = npuc_zoo::space::sample(space, seed).unwrap();
            npuc_ir::stats::graph_stats(s.module.main().unwrap()).macs < 60_000_000
        })
        .unwrap_or_else(|| panic!("no {space} sample under 60 M MACs in seeds 0..50"))
}

/// A sample of every search space is a real model: LiteRT runs it and agrees with npuc's
/// interpreter; compiled with its drawn compression plan (4-bit layers, pruning) and
/// quantized, it still loads in LiteRT and the interpreter matches LiteRT's reference
/// kernels bit for bit.
#[test]
fn search_space_samples_run_in_litert_before_and_after_compression() {
    let dir = tempfile::tempdir().unwrap();
    for space in npuc_zoo::space::Space::ALL {
        let seed = small_sample(space).to_string();
        let float = dir.path().join(format!("{space}.tflite"));
        let plan = dir.path().join(format!("{space}.toml"));
        let o = npuc(&["zoo", "--space", space.name(), "--seed", &seed, "-o", float.to_str().unwrap()]);
        assert!(o.status.success(), "{space}: {}", stderr(&o));
        let o = npuc(&[
            "zoo",
            "--space",
            space.name(),
            "--seed",
            &seed,
            "-o",
            "-",
            "--compression-out",
            plan.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{space}: {}", stderr(&o));

        let (inputs, want) = support::litert_run(&float, 3, &dir.path().join(format!("{space}-lr")));
        let m = npuc_tflite::import_file(&float).unwrap();
        let interp = npuc_interp::Interpreter::new(m.main().unwrap(), &npuc_interp::Options { threads: 1 }).unwrap();
        let got = interp.run(inputs).unwrap();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let (a, b) = (a.data.to_f64_vec(), b.data.to_f64_vec());
            let range = b.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-6);
            let err = a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                err <= 1e-4 * range,
                "{space} seed {seed} output {i}: npuc and LiteRT differ by {err} (range {range})"
            );
        }

        let int8 = dir.path().join(format!("{space}-int8.tflite"));
        let o = npuc(&[
            "compile",
            float.to_str().unwrap(),
            "--compression",
            plan.to_str().unwrap(),
            "-o",
            int8.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{space} seed {seed}: {}", stderr(&o));
        let diffs = support::litert_differences(&int8, "ref", 2);
        assert!(diffs.is_empty(), "{space} seed {seed} compressed: {diffs:?}");
    }
}
