//! The rewrite rules, kept apart from the engine that runs them.
//!
//! Every rule turns a chain of tensor ops into one `conv` of a kernel term, and fires only
//! when that kernel exists — the analysis evaluates it, so the condition is simply "the
//! new kernel is valid" (see `kernel.rs` for when each algebraic step is exact). Which
//! form survives is the extractor's choice, by cost; the rules only offer alternatives.

use egg::{rewrite, Id, Rewrite, Subst, Var};

use crate::kernel::{self, Kernel};
use crate::lang::{Lin, LinAnalysis, LinGraph};

/// Which families of rules a pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSet {
    /// Chains and branches of kernels: composition, sums, identity residuals.
    pub collapse: bool,
    /// Per-channel multiply/add constants folded into the adjacent kernel (batch norm).
    pub affine: bool,
    /// Zero PAD folded into the kernel's padding.
    pub pad: bool,
}

impl RuleSet {
    /// Every rule.
    pub const ALL: RuleSet = RuleSet { collapse: true, affine: true, pad: true };
    /// Batch-norm style folding only.
    pub const AFFINE: RuleSet = RuleSet { collapse: false, affine: true, pad: false };
    /// PAD folding only.
    pub const PAD: RuleSet = RuleSet { collapse: false, affine: false, pad: true };
}

fn var(name: &str) -> Var {
    name.parse().expect("rule variables are well formed")
}

fn kernel_at(g: &LinGraph, subst: &Subst, name: &str) -> Option<std::sync::Arc<Kernel>> {
    g[subst[var(name)]].data.kernel().cloned()
}

fn const_at(g: &LinGraph, subst: &Subst, name: &str) -> Option<std::sync::Arc<Vec<f64>>> {
    g[subst[var(name)]].data.constant().cloned()
}

/// `?k2 ∘ ?k1` (applied to `?x`) is one exact kernel and no more work than the two.
///
/// A composite that does more work than its chain could only pay off by merging further
/// with a branch — which saves at most that branch's elementwise add, while the composite
/// would be computed in full first (MobileNet's project → expand pairs would each cost
/// millions of multiplies to build, only to lose). So such composites are not explored.
fn composable(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    let (Some(b), Some(a)) = (kernel_at(g, s, "?k2"), kernel_at(g, s, "?k1")) else { return false };
    if !kernel::can_compose(&b, &a) {
        return false;
    }
    let Some(x) = g[s[var("?x")]].data.shape().map(<[usize]>::to_vec) else { return false };
    let Some(mid) = a.output_shape(&x) else { return false };
    let Some(out) = b.output_shape(&mid) else { return false };
    let chain = a.macs(&mid) + b.macs(&out);
    kernel::composite_macs(&b, &a, &out) <= chain
}

/// `?a + ?b` on one input is one exact kernel.
fn summable(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    matches!((kernel_at(g, s, "?a"), kernel_at(g, s, "?b")), (Some(a), Some(b)) if kernel::can_sum(&a, &b))
}

/// `?a(x) + x` is one exact kernel: square channel map whose window lines up with the
/// identity's single tap.
fn residual(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    let Some(a) = kernel_at(g, s, "?a") else { return false };
    a.cin == a.cout && kernel::can_sum(&a, &Kernel::identity(a.cout, a.kind == kernel::KernelKind::Dense))
}

/// The constant `?c` broadcasts over `?k`'s output channels.
fn out_channels(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    matches!((kernel_at(g, s, "?k"), const_at(g, s, "?c")), (Some(k), Some(c)) if kernel::broadcasts(c.len(), k.cout))
}

/// The constant `?c` broadcasts over `?k`'s input channels.
fn in_channels(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    matches!((kernel_at(g, s, "?k"), const_at(g, s, "?c")), (Some(k), Some(c)) if kernel::broadcasts(c.len(), k.cin))
}

/// `?k(x + ?c)` is one kernel (no padding).
fn shiftable_in(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    matches!((kernel_at(g, s, "?k"), const_at(g, s, "?c")), (Some(k), Some(c)) if kernel::can_shift_in(&k, c.len()))
}

/// `?k` is spatial, so a PAD in front of it can become its padding.
fn paddable(g: &mut LinGraph, _: Id, s: &Subst) -> bool {
    kernel_at(g, s, "?k").is_some_and(|k| k.kind != kernel::KernelKind::Dense)
}

/// The rules of `set`, in a fixed order (rule order is part of what makes runs
/// reproducible).
pub fn rules(set: RuleSet) -> Vec<Rewrite<Lin, LinAnalysis>> {
    let mut rules = Vec::new();
    if set.collapse {
        rules.extend([
            rewrite!("compose"; "(conv ?k2 (conv ?k1 ?x))" => "(conv (compose ?k2 ?k1) ?x)" if composable),
            rewrite!("sum-branches"; "(add (conv ?a ?x) (conv ?b ?x))" => "(conv (sum ?a ?b) ?x)" if summable),
            rewrite!("identity-residual"; "(add (conv ?a ?x) ?x)" => "(conv (sum ?a (ident ?a)) ?x)" if residual),
            rewrite!("add-commute"; "(add ?p ?q)" => "(add ?q ?p)"),
            rewrite!("add-associate"; "(add (add ?p ?q) ?r)" => "(add ?p (add ?q ?r))"),
        ]);
    }
    if set.affine {
        rules.extend([
            rewrite!("scale-output"; "(mulc (conv ?k ?x) ?c)" => "(conv (scale ?k ?c) ?x)" if out_channels),
            rewrite!("shift-output"; "(addc (conv ?k ?x) ?c)" => "(conv (shift ?k ?c) ?x)" if out_channels),
            rewrite!("scale-input"; "(conv ?k (mulc ?x ?c))" => "(conv (scalein ?k ?c) ?x)" if in_channels),
            rewrite!("shift-input"; "(conv ?k (addc ?x ?c))" => "(conv (shiftin ?k ?c) ?x)" if shiftable_in),
        ]);
    }
    if set.pad {
        rules.push(rewrite!("pad-into-kernel"; "(conv ?k (pad ?p ?x))" => "(conv (padk ?k ?p) ?x)" if paddable));
    }
    rules
}
