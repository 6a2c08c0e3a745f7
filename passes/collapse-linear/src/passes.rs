//! The passes built on the engine: each is a rule set plus saturation limits.

use npuc_ir::Graph;
use npuc_pass::{OptionInfo, OptionType, Pass, PassContext, PassError, PassInfo, PassOptions, PassReport};

use crate::engine::{run, Limits, MacCost, Outcome};
use crate::rules::RuleSet;

const LIMIT_OPTIONS: &[OptionInfo] = &[
    OptionInfo {
        name: "max_iterations",
        ty: OptionType::Int,
        default: "24",
        doc: "rule-application rounds per region (1..=1000)",
    },
    OptionInfo { name: "max_nodes", ty: OptionType::Int, default: "20000", doc: "e-nodes per region (16..=1000000)" },
];

fn limits(options: &PassOptions) -> Result<Limits, PassError> {
    let bounded = |name: &str, lo: i64, hi: i64| -> Result<usize, PassError> {
        let v = options.int(name)?;
        if (lo..=hi).contains(&v) {
            Ok(v as usize)
        } else {
            Err(PassError::BadOptionValue {
                pass: options.pass().to_string(),
                option: name.to_string(),
                value: v.to_string(),
                expected: format!("an integer in {lo}..={hi}"),
            })
        }
    };
    Ok(Limits { iterations: bounded("max_iterations", 1, 1000)?, nodes: bounded("max_nodes", 16, 1_000_000)? })
}

/// Runs a rule set over one graph and turns the outcome into a report.
fn run_rules(name: &str, set: RuleSet, limits: Limits, graph: &mut Graph) -> Result<PassReport, PassError> {
    let outcome: Outcome = run(graph, set, limits, &MacCost).map_err(|e| PassError::Failed {
        pass: name.to_string(),
        graph: 0,
        graph_name: graph.name.clone(),
        message: e.to_string(),
    })?;
    let mut report = PassReport::default();
    for r in &outcome.rewritten {
        report.ops_removed += r.ops_before;
        report.ops_added += r.ops_after;
        report.notes.push(format!(
            "{}: {} ops -> {}, cost {} -> {} MACs",
            r.root, r.ops_before, r.ops_after, r.cost_before, r.cost_after
        ));
    }
    Ok(report)
}

macro_rules! engine_pass {
    ($ty:ident, $info:ident, $name:literal, $set:expr, $summary:literal, $build:ident) => {
        #[doc = concat!("Registry entry of the `", $name, "` pass.")]
        pub const $info: PassInfo = PassInfo { name: $name, summary: $summary, options: LIMIT_OPTIONS, build: $build };

        fn $build(options: &PassOptions) -> Result<Box<dyn Pass>, PassError> {
            Ok(Box::new($ty { limits: limits(options)? }))
        }

        #[doc = concat!("The `", $name, "` pass.")]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $ty {
            /// Saturation limits per region.
            pub limits: Limits,
        }

        impl Pass for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError> {
                run_rules($name, $set, self.limits, graph).map_err(|e| match e {
                    PassError::Failed { pass, graph_name, message, .. } => {
                        PassError::Failed { pass, graph: cx.graph_index, graph_name, message }
                    }
                    other => other,
                })
            }
        }
    };
}

engine_pass!(
    CollapseLinear,
    COLLAPSE_LINEAR,
    "collapse-linear",
    RuleSet::ALL,
    "collapse chains and parallel branches of float linear ops (conv, depthwise, fully connected, per-channel affine, zero pad, identity residuals) into one conv when that costs fewer MACs (SESR linear blocks, RepVGG branches)",
    build_collapse_linear
);

engine_pass!(
    FoldBatchnorm,
    FOLD_BATCHNORM,
    "fold-batchnorm",
    RuleSet::AFFINE,
    "fold per-channel MUL/ADD/SUB by constants into the adjacent float conv's weights and bias (batch norm)",
    build_fold_batchnorm
);

engine_pass!(
    FoldPad,
    FOLD_PAD,
    "fold-pad",
    RuleSet::PAD,
    "fold a zero PAD in front of a float conv into its padding where SAME padding reproduces it exactly",
    build_fold_pad
);
