//! The registered passes: the one explicit list pipeline text may name (add a pass here
//! after declaring its `PassInfo` in its crate).

use npuc_pass::Registry;

/// Every pass `npuc opt --passes` knows, in help order.
pub fn registry() -> Registry {
    Registry::new(vec![
        npuc_canonicalize::DCE,
        npuc_canonicalize::FOLD_CONSTANTS,
        npuc_canonicalize::FUSE_ACTIVATION,
        npuc_canonicalize::REMOVE_IDENTITY,
        npuc_static_batch::STATIC_BATCH,
        npuc_canonicalize::CANCEL_RESHAPE_TRANSPOSE,
        npuc_canonicalize::CANONICALIZE,
        npuc_collapse_linear::COLLAPSE_LINEAR,
        npuc_collapse_linear::FOLD_BATCHNORM,
        npuc_collapse_linear::FOLD_PAD,
        npuc_prune::PRUNE,
        npuc_quantize::QUANTIZE,
    ])
}

/// The long-help section of `npuc opt` listing the registered passes and their options.
pub fn help_text() -> String {
    format!("Registered passes (NAME, or NAME{{option=value,...}} in --passes):\n{}", registry().help())
}
