//! The umbrella `canonicalize` pass: the canonicalization sub-passes, run in a fixed order
//! round after round until a round changes nothing.

use npuc_ir::Graph;
use npuc_pass::{OptionInfo, OptionType, OptionValue, Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

use crate::{CANCEL_RESHAPE_TRANSPOSE, DCE, FOLD_CONSTANTS, FUSE_ACTIVATION, REMOVE_IDENTITY};
use npuc_collapse_linear::{FOLD_BATCHNORM, FOLD_PAD};

/// The sub-passes of `canonicalize`, in the order each round runs them.
///
/// Adding a pass is one line here (plus its name in [`CANONICALIZE`]'s summary, which a
/// test checks). Umbrella options are passed through to every sub-pass
/// declaring an option of the same name (so a new sub-pass option needs one more entry in
/// [`CANONICALIZE`]'s options, or none if the sub-pass default is right); sub-pass options
/// the umbrella does not declare take their defaults.
pub const CANONICALIZE_PASSES: &[PassInfo] =
    &[FOLD_CONSTANTS, REMOVE_IDENTITY, CANCEL_RESHAPE_TRANSPOSE, FOLD_BATCHNORM, FOLD_PAD, FUSE_ACTIVATION, DCE];

/// Default of the `max_rounds` option.
pub const DEFAULT_MAX_ROUNDS: usize = 8;

/// Registry entry of the `canonicalize` pass.
pub const CANONICALIZE: PassInfo = PassInfo {
    name: "canonicalize",
    summary: "run fold-constants, remove-identity, cancel-reshape-transpose, fold-batchnorm, fold-pad, fuse-activation and dce in rounds until nothing changes",
    options: &[
        OptionInfo {
            name: "max_rounds",
            ty: OptionType::Int,
            default: "8",
            doc: "stop after this many rounds even if the last one still changed the graph (at least 1)",
        },
        OptionInfo {
            name: "max_bytes",
            ty: OptionType::Int,
            default: "67108864",
            doc: "passed to fold-constants: do not fold an op whose results would take more than this many bytes",
        },
    ],
    build: build_canonicalize,
};

fn build_canonicalize(options: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
    Ok(Box::new(Canonicalize::from_options(CANONICALIZE_PASSES, options)?))
}

/// Writes an option value back in pipeline-text form (what [`PassOptions::validate`] parses).
fn option_text(v: &OptionValue) -> String {
    match v {
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(x) => x.to_string(),
        OptionValue::Str(s) => s.clone(),
    }
}

/// The `canonicalize` pass: see [`Canonicalize::run`].
pub struct Canonicalize {
    passes: Vec<Box<dyn Pass>>,
    max_rounds: usize,
}

impl std::fmt::Debug for Canonicalize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.passes.iter().map(|p| p.name()).collect();
        f.debug_struct("Canonicalize").field("passes", &names).field("max_rounds", &self.max_rounds).finish()
    }
}

impl Canonicalize {
    /// Builds the umbrella over `subpasses` from its validated options: `max_rounds`, and
    /// every other option passed through to the sub-passes declaring one of that name.
    pub fn from_options(subpasses: &[PassInfo], options: &PassOptions) -> Result<Self, PassError> {
        let rounds = options.int("max_rounds")?;
        let max_rounds = usize::try_from(rounds).ok().filter(|&r| r >= 1).ok_or_else(|| PassError::BadOptionValue {
            pass: options.pass().into(),
            option: "max_rounds".into(),
            value: rounds.to_string(),
            expected: "an integer of at least 1".into(),
        })?;
        let mut passes = Vec::with_capacity(subpasses.len());
        for info in subpasses {
            let given: Vec<(String, String)> = options
                .values()
                .iter()
                .filter(|(name, _)| info.options.iter().any(|o| o.name == *name))
                .map(|(name, v)| (name.to_string(), option_text(v)))
                .collect();
            let sub = PassOptions::validate(info.name, info.options, &given)?;
            passes.push((info.build)(&sub)?);
        }
        Ok(Canonicalize { passes, max_rounds })
    }

    /// The umbrella over `subpasses` with every option at its default but `max_rounds`.
    pub fn new(subpasses: &[PassInfo], max_rounds: usize) -> Result<Self, PassError> {
        let given = [("max_rounds".to_string(), max_rounds.to_string())];
        let options = PassOptions::validate(CANONICALIZE.name, CANONICALIZE.options, &given)?;
        Canonicalize::from_options(subpasses, &options)
    }

    /// Names of the sub-passes, in the order a round runs them.
    pub fn pass_names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }
}

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    /// Runs every sub-pass in order, round after round, until a round changes nothing or
    /// `max_rounds` rounds have run. The report adds up the sub-reports, carries their
    /// notes (prefixed with the sub-pass, each distinct note once) and says which
    /// sub-passes fired and whether a fixed point was reached.
    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
        let mut report = PassReport::default();
        // Per sub-pass: ops removed + ops added over all rounds.
        let mut fired = vec![0usize; self.passes.len()];
        let mut converged_after = None;
        let mut rounds = 0;
        while rounds < self.max_rounds {
            rounds += 1;
            let mut changed = false;
            for (i, pass) in self.passes.iter_mut().enumerate() {
                let r = pass.run(graph, cx)?;
                if !r.is_unchanged() {
                    changed = true;
                    fired[i] += r.ops_removed + r.ops_added;
                }
                report.ops_removed += r.ops_removed;
                report.ops_added += r.ops_added;
                for n in r.notes {
                    let n = format!("{}: {n}", pass.name());
                    if !report.notes.contains(&n) {
                        report.notes.push(n);
                    }
                }
            }
            if !changed {
                converged_after = Some(rounds);
                break;
            }
        }
        let what: Vec<String> = self
            .passes
            .iter()
            .zip(&fired)
            .filter(|(_, &n)| n > 0)
            .map(|(p, n)| format!("{} ({n} ops)", p.name()))
            .collect();
        let what = if what.is_empty() { "nothing".to_string() } else { what.join(", ") };
        report.notes.push(match converged_after {
            Some(r) => format!("fixed point after {r} rounds; fired: {what}"),
            None => format!("no fixed point within max_rounds = {rounds} rounds; fired: {what}"),
        });
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npuc_interp::{random_inputs, Interpreter, Options, Tensor};
    use npuc_ir::{parse_module, print_module, verify_graph, PrintOptions};

    fn run_graph(g: &Graph, inputs: Vec<Tensor>) -> Vec<Tensor> {
        Interpreter::new(g, &Options { threads: 1 }).unwrap().run(inputs).unwrap()
    }

    /// Parses `text`, canonicalizes, verifies, checks the outputs are bit-identical on
    /// seeded random inputs, and returns (report, printout).
    fn canon(text: &str) -> (PassReport, String) {
        let mut m = parse_module(text).unwrap();
        let before = m.graphs[0].clone();
        let mut pass = Canonicalize::new(CANONICALIZE_PASSES, DEFAULT_MAX_ROUNDS).unwrap();
        let report = pass.run(&mut m.graphs[0], &mut PassContext::new(0)).unwrap();
        verify_graph(&m.graphs[0]).unwrap();
        npuc_ir::verify_module(&m).unwrap();
        for seed in [3, 4] {
            let inputs = random_inputs(&before, seed);
            assert_eq!(run_graph(&before, inputs.clone()), run_graph(&m.graphs[0], inputs), "seed {seed}");
        }
        (report, print_module(&m, &PrintOptions::default()))
    }

    #[test]
    fn runs_subpasses_in_declared_order() {
        let pass = Canonicalize::new(CANONICALIZE_PASSES, 3).unwrap();
        assert_eq!(
            pass.pass_names(),
            [
                "fold-constants",
                "remove-identity",
                "cancel-reshape-transpose",
                "fold-batchnorm",
                "fold-pad",
                "fuse-activation",
                "dce"
            ]
        );
    }

    #[test]
    fn summary_names_every_subpass() {
        for p in CANONICALIZE_PASSES {
            assert!(CANONICALIZE.summary.contains(p.name), "summary does not mention {}", p.name);
        }
    }

    #[test]
    fn rewrites_interact_to_a_fixed_point() {
        // Transpose pair around an identity reshape: remove-identity exposes the pair,
        // cancel removes it, which makes the add feed the relu directly for fuse-activation;
        // the folded dequantize leaves its f16 source for dce.
        let (report, text) = canon(
            "graph @g(%x: tensor<1x2x3x4xf32>) {
  %w16 = const dense<\"003c00c1662eff7b\"> : tensor<4xf16>
  %w = dequantize(%w16) : tensor<4xf32>
  %p1 = const dense<[0, 3, 1, 2]> : tensor<4xi32>
  %p2 = const dense<[0, 2, 3, 1]> : tensor<4xi32>
  %s = const dense<[1, 4, 2, 3]> : tensor<4xi32>
  %a = add(%x, %w) : tensor<1x2x3x4xf32>
  %t1 = transpose(%a, %p1) : tensor<1x4x2x3xf32>
  %i = reshape(%t1, %s) : tensor<1x4x2x3xf32>
  %t2 = transpose(%i, %p2) : tensor<1x2x3x4xf32>
  %r = relu(%t2) : tensor<1x2x3x4xf32> {name = \"out\"}
  return %r
}",
        );
        assert!(text.contains("add(%arg0, %c0) {activation = relu} : tensor<1x2x3x4xf32> {name = \"out\"}"), "{text}");
        for gone in ["transpose", "reshape", "dequantize", "f16", "relu("] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        let last = report.notes.last().unwrap();
        assert!(last.starts_with("fixed point after 2 rounds"), "{report:?}");
        for p in ["fold-constants", "remove-identity", "cancel-reshape-transpose", "fuse-activation"] {
            assert!(last.contains(p), "{p} did not fire: {report:?}");
        }
        assert_eq!(report.ops_removed, 5, "{report:?}");
    }

    #[test]
    fn already_canonical_graph_takes_one_round() {
        let src = "graph @g(%x: tensor<4xf32>, %y: tensor<4xf32>) {
  %a = add(%x, %y) {activation = relu} : tensor<4xf32>
  %t = tanh(%a) : tensor<4xf32>
  return %t
}";
        let (report, text) = canon(src);
        assert_eq!(text, print_module(&parse_module(src).unwrap(), &PrintOptions::default()));
        assert!(report.is_unchanged(), "{report:?}");
        assert_eq!(report.notes, vec!["fixed point after 1 rounds; fired: nothing".to_string()]);
    }

    #[test]
    fn stops_at_max_rounds() {
        // The transpose pair can only cancel once dce (last in a round) has removed the
        // dead second reader of the middle value: one round is not enough.
        let mut m = parse_module(
            "graph @g(%x: tensor<2x3xf32>) {
  %p = const dense<[1, 0]> : tensor<2xi32>
  %a = transpose(%x, %p) : tensor<3x2xf32>
  %b = transpose(%a, %p) : tensor<2x3xf32>
  %dead = tanh(%a) : tensor<3x2xf32>
  %t = tanh(%b) : tensor<2x3xf32>
  return %t
}",
        )
        .unwrap();
        let mut pass = Canonicalize::new(CANONICALIZE_PASSES, 1).unwrap();
        let report = pass.run(&mut m.graphs[0], &mut PassContext::new(0)).unwrap();
        verify_graph(&m.graphs[0]).unwrap();
        assert!(report.notes.last().unwrap().starts_with("no fixed point within max_rounds = 1"), "{report:?}");
        assert_eq!(m.graphs[0].op_count(), 3);
        let report = pass.run(&mut m.graphs[0], &mut PassContext::new(0)).unwrap();
        assert_eq!(m.graphs[0].op_count(), 1, "{report:?}");
    }

    #[test]
    fn options_pass_through_and_are_checked() {
        let validate = |given: &[(&str, &str)]| {
            let given: Vec<(String, String)> = given.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            PassOptions::validate(CANONICALIZE.name, CANONICALIZE.options, &given).unwrap()
        };
        assert!(matches!(
            Canonicalize::from_options(CANONICALIZE_PASSES, &validate(&[("max_rounds", "0")])),
            Err(PassError::BadOptionValue { .. })
        ));
        // With max_bytes = 15 the 16-byte dequantize result is not folded.
        let src = "graph @g(%x: tensor<4xf32>) {
  %w = const dense<\"003c004000420044\"> : tensor<4xf16>
  %d = dequantize(%w) : tensor<4xf32>
  %y = add(%x, %d) : tensor<4xf32>
  return %y
}";
        for (limit, ops) in [("15", 2), ("16", 1)] {
            let mut m = parse_module(src).unwrap();
            let mut pass = Canonicalize::from_options(CANONICALIZE_PASSES, &validate(&[("max_bytes", limit)])).unwrap();
            pass.run(&mut m.graphs[0], &mut PassContext::new(0)).unwrap();
            assert_eq!(m.graphs[0].op_count(), ops, "max_bytes = {limit}");
        }
    }
}
