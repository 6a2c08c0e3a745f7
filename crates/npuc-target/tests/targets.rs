//! Builtin targets load and validate; bad files fail with the expected message.

use npuc_target::{builtin_names, known_op_names, Family, MacKind, Target, TargetError, BUILTINS};

/// The repo's ethos-u55-128 text, the base every bad-file case edits.
fn base() -> String {
    BUILTINS.iter().find(|(n, _)| *n == "ethos-u55-128").expect("ethos-u55-128 is builtin").1.to_string()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur exactly once in the base target");
    text.replacen(from, to, 1)
}

#[test]
fn every_builtin_loads_and_validates() {
    let names: Vec<&str> = builtin_names().collect();
    assert_eq!(
        names,
        [
            "ethos-u55-32",
            "ethos-u55-64",
            "ethos-u55-128",
            "ethos-u55-256",
            "ethos-u65-256",
            "ethos-u65-512",
            "mobile-npu"
        ]
    );
    for name in names {
        let t = Target::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.name, name, "a builtin's name field must match its registered name");
        assert!(t.supports_op("conv_2d"), "{name} must run conv_2d");
    }
}

#[test]
fn builtin_files_on_disk_match_the_embedded_text() {
    // The file given by path must give the same target as the compiled-in copy.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../targets");
    for name in builtin_names() {
        let from_disk = Target::load(dir.join(format!("{name}.toml"))).expect("loads from disk");
        assert_eq!(from_disk, Target::builtin(name).expect("builtin"));
    }
}

#[test]
fn every_toml_in_targets_dir_is_a_builtin() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("targets/ exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(str::to_string))
        .collect();
    on_disk.sort();
    let mut builtin: Vec<String> = builtin_names().map(str::to_string).collect();
    builtin.sort();
    assert_eq!(on_disk, builtin, "add new targets/*.toml files to npuc_target::BUILTINS");
}

#[test]
fn macs_scale_as_the_name_says() {
    for name in builtin_names().filter(|n| n.starts_with("ethos-u")) {
        let t = Target::builtin(name).expect("builtin");
        let from_name: u32 = name.rsplit('-').next().and_then(|s| s.parse().ok()).expect("name ends in MACs");
        assert_eq!(t.macs_per_cycle(MacKind::I8xI8), from_name, "{name}");
        assert_eq!(t.macs_per_cycle(MacKind::I16xI8) * 2, from_name, "{name}: 16x8 runs at half rate");
        // Vela's rule: MACs per core = ublock h x w x 8 (dot-product width) x ublock depth.
        let [h, w, c] = t.blocks.ofm_ublock;
        assert_eq!(h * w * 8 * c * t.compute.cores, from_name, "{name}: micro-block times cores");
        let family = if name.starts_with("ethos-u55") { Family::EthosU55 } else { Family::EthosU65 };
        assert_eq!(t.family, family);
        assert_eq!(t.vela.as_ref().map(|v| v.accelerator_config.as_str()), Some(name));
    }
}

#[test]
fn peak_int8_tops_are_ordered() {
    let order = ["ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512"];
    let tops: Vec<f64> = order.iter().map(|n| Target::builtin(n).expect("builtin").peak_tops(MacKind::I8xI8)).collect();
    for (pair, names) in tops.windows(2).zip(order.windows(2)) {
        assert!(pair[0] < pair[1], "{} ({} TOPS) should be below {} ({} TOPS)", names[0], pair[0], names[1], pair[1]);
    }
    // Published peaks: Ethos-U65-512 is 1 TOP/s class at 1 GHz, the mobile NPU several TOPS.
    assert!((tops[5] - 1.024).abs() < 1e-9, "U65-512 peak {}", tops[5]);
    let mobile = Target::builtin("mobile-npu").expect("builtin").peak_tops(MacKind::I8xI8);
    assert!(mobile > 2.0 * tops[5], "mobile-npu {mobile} TOPS must be several TOPS");
}

#[test]
fn micro_block_depth_is_four_only_on_u55_32() {
    for name in builtin_names().filter(|n| n.starts_with("ethos-u")) {
        let t = Target::builtin(name).expect("builtin");
        let want = if name == "ethos-u55-32" { 4 } else { 8 };
        assert_eq!(t.weight_decoder.micro_block_depth, want, "{name}");
    }
}

#[test]
fn op_names_are_npuc_mnemonics() {
    let known: Vec<&str> = known_op_names().collect();
    assert!(known.contains(&"conv_2d") && !known.contains(&"opaque"));
    for name in builtin_names() {
        let t = Target::builtin(name).expect("builtin");
        for op in t.ops.keys() {
            assert!(known.contains(&op.as_str()), "{name}: {op}");
        }
    }
    // SESR's pixel shuffle: a CPU op on Ethos-U per Vela, assumed NPU-supported on mobile-npu.
    assert!(!Target::builtin("ethos-u55-128").expect("builtin").supports_op("depth_to_space"));
    assert!(Target::builtin("mobile-npu").expect("builtin").supports_op("depth_to_space"));
}

#[test]
fn bad_files_fail_with_a_clear_message() {
    let b = base();
    let cases: Vec<(&str, String, &str)> = vec![
        ("missing field", replace_once(&b, "clock_hz = 500000000", ""), "compute: missing field `clock_hz`"),
        (
            "unknown field",
            replace_once(&b, "[memory.sram]\n", "[memory.sram]\nspeed = 3\n"),
            "memory.sram.speed: unknown field `speed`",
        ),
        (
            "negative bandwidth",
            replace_once(&b, "bandwidth = 8.0 ", "bandwidth = -8.0 "),
            "memory.sram.bandwidth: must be a positive finite number (got -8)",
        ),
        (
            "zero external bandwidth",
            replace_once(&b, "bandwidth = 1.0 ", "bandwidth = 0.0 "),
            "memory.external.bandwidth: must be a positive finite number (got 0)",
        ),
        (
            "unknown op name",
            replace_once(&b, "squeeze = {", "conv_3d = {"),
            "ops.conv_3d: unknown op `conv_3d` (npuc IR mnemonics: conv_2d,",
        ),
        (
            "unknown dtype",
            replace_once(&b, "rsqrt = { dtypes = [\"i8\"] }", "rsqrt = { dtypes = [\"int8\"] }"),
            "ops.rsqrt.dtypes[0]: unknown dtype `int8`",
        ),
        ("bad TOML", replace_once(&b, "i8xi8 = 128", "i8xi8 = = 128"), "invalid TOML: extra `=`"),
        (
            "not a power of two",
            replace_once(&b, "micro_block_depth = 8", "micro_block_depth = 6"),
            "weight_decoder.micro_block_depth: must be a power of two (got 6)",
        ),
        (
            "empty block list",
            replace_once(&b, "candidates = [[7, 12, 16]", "candidates = [] #"),
            "blocks.candidates: must list at least one",
        ),
        (
            "block beyond the maximum",
            replace_once(&b, "candidates = [[7, 12, 16]", "candidates = [[7, 12, 256]"),
            "blocks.candidates[0]: [7, 12, 256] exceeds blocks.ofm_block_max",
        ),
        (
            "wrong type",
            replace_once(&b, "cores = 1", "cores = \"one\""),
            "compute.cores: invalid type: string \"one\", expected u32",
        ),
        (
            "unknown family",
            replace_once(&b, "family = \"ethos-u55\"", "family = \"ethos-u99\""),
            "family: unknown variant `ethos-u99`",
        ),
        (
            "16x8 above 8x8",
            replace_once(&b, "i16xi8 = 64", "i16xi8 = 256"),
            "compute.macs_per_cycle.i16xi8: cannot exceed i8xi8 (256 > 128)",
        ),
        (
            "timing reserves every bank",
            replace_once(&b, "shram_reserved_end_banks = 2", "shram_reserved_end_banks = 22"),
            "timing.shram_reserved_output_banks: reserved banks leave no shared-buffer space",
        ),
        (
            "negative cycles per element",
            replace_once(
                &b,
                "activation_cycles_per_elem = [1.0, 0.5, 0.0]",
                "activation_cycles_per_elem = [1.0, -0.5, 0.0]",
            ),
            "timing.output_cycles_per_elem: cycles per element must be finite and >= 0",
        ),
        (
            "zero granule",
            replace_once(
                &b,
                "shram_granules = [4, 4, 4, 4, 8, 4, 8, 12]",
                "shram_granules = [4, 0, 4, 4, 8, 4, 8, 12]",
            ),
            "timing.shram_granules[1]",
        ),
    ];
    for (what, text, want) in cases {
        let err = Target::parse(&text, "bad.toml").expect_err(what);
        let msg = err.to_string();
        assert!(msg.starts_with("bad.toml:"), "{what}: error must name the file: {msg}");
        assert!(msg.contains(want), "{what}: expected `{want}` in:\n{msg}");
    }
}

#[test]
fn validation_errors_point_at_the_line() {
    let text = replace_once(&base(), "bandwidth = 8.0 ", "bandwidth = -8.0 ");
    let line = text.lines().position(|l| l.starts_with("bandwidth = -8.0")).expect("edited line") + 1;
    match Target::parse(&text, "bad.toml") {
        Err(TargetError::Invalid { line: got, path, .. }) => {
            assert_eq!(path, "memory.sram.bandwidth");
            assert_eq!(got, line);
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_file_given_by_path_needs_no_recompile() {
    let dir = std::env::temp_dir().join(format!("npuc-target-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("my-u55.toml");
    let text = replace_once(&base(), "name = \"ethos-u55-128\"", "name = \"my-u55\"");
    std::fs::write(&path, text).expect("write");
    let t = Target::resolve(path.to_str().expect("utf-8 path")).expect("loads by path");
    assert_eq!(t.name, "my-u55");
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert!(matches!(Target::load(&path), Err(TargetError::Io { .. })));
}

#[test]
fn unknown_builtin_lists_the_known_ones() {
    let msg = Target::builtin("ethos-u99").expect_err("unknown").to_string();
    assert!(msg.contains("unknown target `ethos-u99`") && msg.contains("ethos-u55-128, "), "{msg}");
}
