//! `npuc targets`: lists every built-in target, shows one in full (by name or file), and
//! rejects an unknown one with a one-line error.

mod support;

use support::{npuc, stderr};

#[test]
fn lists_every_builtin_target() {
    let o = npuc(&["targets", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    let on_disk = std::fs::read_dir(support::repo().join("targets"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(names.len(), on_disk, "{names:?}");
    for want in ["ethos-u55-32", "ethos-u55-128", "ethos-u65-512", "mobile-npu"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let text = npuc(&["targets"]);
    assert!(String::from_utf8_lossy(&text.stdout).lines().count() > names.len());
}

#[test]
fn shows_one_target_by_name_or_file() {
    let by_name = npuc(&["targets", "ethos-u65-256"]);
    assert!(by_name.status.success(), "{}", stderr(&by_name));
    let text = String::from_utf8(by_name.stdout).unwrap();
    assert!(text.starts_with("name = \"ethos-u65-256\""), "{text}");
    let by_file = npuc(&["targets", "targets/ethos-u65-256.toml", "--json"]);
    assert!(by_file.status.success(), "{}", stderr(&by_file));
    let t: serde_json::Value = serde_json::from_slice(&by_file.stdout).unwrap();
    assert_eq!(t["compute"]["macs_per_cycle"]["i8xi8"], 256);
}

#[test]
fn unknown_target_is_one_line_with_exit_code_2() {
    let o = npuc(&["targets", "ethos-u99"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown target `ethos-u99`") && err.contains("ethos-u55-128"), "{err}");
}
