//! Registry errors, manager instrumentation and the stage table's JSON shape.

use npuc_ir::{parse_module, Graph, Module};
use npuc_pass::{
    parse_pipeline, Instrumentation, Numerics, OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo,
    PassManager, PassOptions, PassReport, Registry,
};

/// Removes ops with no readers that are not graph outputs (a tiny DCE for these tests).
struct DropUnused;
impl Pass for DropUnused {
    fn name(&self) -> &'static str {
        "drop-unused"
    }
    fn run(&mut self, g: &mut Graph, _: &mut PassContext) -> Result<PassReport, PassError> {
        let dead: Vec<_> = g
            .op_ids()
            .filter(|&id| g.op(id).outputs.iter().all(|&v| g.uses(v).next().is_none() && !g.outputs.contains(&v)))
            .collect();
        for &id in &dead {
            g.remove_op(id);
        }
        Ok(PassReport { ops_removed: dead.len(), ..Default::default() })
    }
}

/// Deliberately broken: removes every op, leaving graph outputs undefined.
struct Breaker;
impl Pass for Breaker {
    fn name(&self) -> &'static str {
        "breaker"
    }
    fn run(&mut self, g: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
        let ids: Vec<_> = g.op_ids().collect();
        for id in ids {
            g.remove_op(id);
        }
        cx.note("removed everything");
        Ok(PassReport::default())
    }
}

const SCALE_OPTS: &[OptionInfo] = &[
    OptionInfo { name: "factor", ty: OptionType::Float, default: "1.0", doc: "scale" },
    OptionInfo { name: "fast", ty: OptionType::Bool, default: "false", doc: "go fast" },
];

fn registry() -> Registry {
    Registry::new(vec![
        PassInfo { name: "drop-unused", summary: "drop", options: &[], build: |_| Ok(Box::new(DropUnused)) },
        PassInfo {
            name: "scale",
            summary: "test options",
            options: SCALE_OPTS,
            build: |o: &PassOptions| {
                let f = o.float("factor")?;
                if f <= 0.0 {
                    return Err(PassError::BadOptionValue {
                        pass: "scale".into(),
                        option: "factor".into(),
                        value: f.to_string(),
                        expected: "a positive float".into(),
                    });
                }
                let _ = o.bool("fast")?;
                Ok(Box::new(DropUnused))
            },
        },
    ])
}

fn build_err(text: &str) -> String {
    let entries = parse_pipeline(text).unwrap();
    match registry().build_pipeline(&entries) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error for {text}"),
    }
}

const FIXTURE: &str = "graph @main(%x: tensor<2x3xf32> {name = \"x\"}) {
  %w = const dense<[1.0, 2.0, 3.0]> : tensor<3xf32> {name = \"w\"}
  %a = mul(%x, %w) : tensor<2x3xf32> {name = \"live\"}
  %b = tanh(%x) : tensor<2x3xf32> {name = \"dead\"}
  return %a
}";

fn fixture() -> Module {
    parse_module(FIXTURE).unwrap()
}

#[test]
fn registry_errors_list_what_is_valid() {
    assert_eq!(build_err("nope"), "unknown pass 'nope' (valid passes: drop-unused, scale)");
    assert_eq!(
        build_err("scale{speed=2}"),
        "pass 'scale' has no option 'speed' (valid options: factor: float, fast: bool)"
    );
    assert_eq!(build_err("scale{factor=abc}"), "pass 'scale': option 'factor' has bad value 'abc' (expected float)");
    assert_eq!(build_err("scale{fast=1}"), "pass 'scale': option 'fast' has bad value '1' (expected bool)");
    assert_eq!(
        build_err("scale{factor=-2}"),
        "pass 'scale': option 'factor' has bad value '-2' (expected a positive float)"
    );
    assert_eq!(build_err("scale{fast=true,fast=false}"), "pass 'scale': option 'fast' is given twice");
    assert_eq!(build_err("drop-unused{x=1}"), "pass 'drop-unused' has no option 'x' (valid options: none)");
    assert!(registry().build_pipeline(&parse_pipeline("scale{factor=2.5},drop-unused").unwrap()).is_ok());
}

#[test]
fn options_take_defaults() {
    let o = PassOptions::validate("scale", SCALE_OPTS, &[("fast".into(), "true".into())]).unwrap();
    assert_eq!(o.float("factor").unwrap(), 1.0);
    assert!(o.bool("fast").unwrap());
    assert!(matches!(o.int("factor"), Err(PassError::UndeclaredOption { .. })));
}

#[test]
fn verify_each_names_the_broken_pass() {
    let mut m = fixture();
    let inst = Instrumentation { verify_each: true, ..Default::default() };
    let mut pm = PassManager::new(vec![Box::new(DropUnused), Box::new(Breaker)]).with_instrumentation(inst);
    let err = pm.run(&mut m, &mut Vec::new()).unwrap_err();
    match &err {
        PassError::Verify { pass, .. } => assert_eq!(pass, "breaker"),
        other => panic!("expected a verify error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("IR verification failed after pass 'breaker': "), "{err}");
}

#[test]
fn print_after_prints_only_named_passes() {
    let mut m = fixture();
    let inst = Instrumentation { print_after: vec!["drop-unused".into()], ..Default::default() };
    let mut pm = PassManager::new(vec![Box::new(DropUnused)]).with_instrumentation(inst);
    let mut out = Vec::new();
    let report = pm.run(&mut m, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("// -----// IR after pass 'drop-unused' //----- //\n"), "{text}");
    assert!(text.contains("mul(") && !text.contains("tanh("), "{text}");
    assert_eq!(report.passes[0].1.ops_removed, 1);

    let mut silent = Vec::new();
    PassManager::new(vec![Box::new(DropUnused)]).run(&mut fixture(), &mut silent).unwrap();
    assert!(silent.is_empty());
}

#[test]
fn check_numerics_reports_exact_for_dce() {
    let mut m = fixture();
    let inst = Instrumentation { check_numerics: true, timing: true, ..Default::default() };
    let mut pm = PassManager::new(vec![Box::new(DropUnused)]).with_instrumentation(inst);
    let report = pm.run(&mut m, &mut Vec::new()).unwrap();
    assert_eq!(report.stages.stages.len(), 2);
    for s in &report.stages.stages {
        match s.numerics.as_ref().unwrap() {
            Numerics::Compared { outputs } => {
                assert_eq!(outputs.len(), 1);
                assert_eq!(outputs[0].max_abs_error, 0.0);
                assert!(outputs[0].sqnr_db.is_infinite());
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(report.stages.stages[1].time_ms.is_some());
    let text = report.stages.to_text();
    let last: Vec<&str> = text.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(last[last.len() - 2..], ["0.000000e0", "inf"], "{text}");
}

#[test]
fn check_numerics_marks_opaque_graphs_not_executable() {
    let mut m = parse_module(
        "graph @main(%x: tensor<2xf32>) {
  %a = opaque \"MY_OP\"(%x) : tensor<2xf32>
  return %a
}",
    )
    .unwrap();
    let inst = Instrumentation { check_numerics: true, ..Default::default() };
    let report = PassManager::new(vec![Box::new(DropUnused)]).with_instrumentation(inst).run(&mut m, &mut Vec::new());
    let report = report.unwrap();
    assert!(matches!(report.stages.stages[1].numerics, Some(Numerics::NotExecutable { .. })));
    assert!(report.stages.to_text().contains("not executable"));
}

#[test]
fn stage_table_json_shape() {
    let mut m = fixture();
    let inst = Instrumentation { check_numerics: true, ..Default::default() };
    let report = PassManager::new(vec![Box::new(DropUnused)]).with_instrumentation(inst).run(&mut m, &mut Vec::new());
    let json: serde_json::Value = serde_json::from_str(&report.unwrap().stages.to_json()).unwrap();
    let stages = json["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    let input = &stages[0];
    assert_eq!(input["stage"], "input");
    assert_eq!(input["ops"], 2);
    assert_eq!(input["parameters"], 3);
    assert_eq!(input["constant_bytes"], 12);
    assert_eq!(input["macs"], 6);
    // x, mul result and tanh result (24 bytes each) are alive together at the peak.
    assert_eq!(input["peak_activation_bytes"], 72);
    assert_eq!(input["costs"]["analytic.macs"], 6.0);
    // mul: 24 + 12 + 24; tanh: 24 + 24.
    assert_eq!(input["costs"]["analytic.bytes_moved"], 108.0);
    assert!(input.get("time_ms").is_none());
    assert_eq!(input["numerics"]["status"], "compared");
    assert_eq!(input["numerics"]["outputs"][0]["max_abs_error"], 0.0);
    assert_eq!(input["numerics"]["outputs"][0]["sqnr_db"], "inf");
    assert_eq!(stages[1]["stage"], "drop-unused");
    assert_eq!(stages[1]["ops"], 1);
    assert_eq!(stages[1]["peak_activation_bytes"], 48);
}
