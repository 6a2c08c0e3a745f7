//! The [`Pass`] trait and what a pass receives and returns.

use std::sync::Arc;

use npuc_ir::{Graph, Module};
use serde::Serialize;

use crate::error::PassError;

/// A graph-to-graph transformation, built from its options by a [`crate::PassInfo`].
///
/// The manager calls [`Pass::run`] once per graph of a module; a pass must leave each graph
/// verified (the manager checks this with `verify_each`).
pub trait Pass {
    /// The name the pass is registered under (as written in pipeline text).
    fn name(&self) -> &'static str;
    /// Rewrites `graph` in place and reports what changed.
    fn run(&mut self, graph: &mut Graph, cx: &mut PassContext) -> Result<PassReport, PassError>;
}

/// What a pass sees besides the graph: where it is, and a place for diagnostics.
#[derive(Debug, Default)]
pub struct PassContext {
    /// Index of the graph being rewritten within its module.
    pub graph_index: usize,
    /// Messages for the user (warnings, explanations), collected by the manager.
    pub diagnostics: Vec<String>,
    /// The module as it was before this pass, when it has more than one graph: passes
    /// that execute the graph (calibration) need the graphs its IF/WHILE ops call, and
    /// passes can tell which graphs are called.
    pub module: Option<Arc<Module>>,
}

impl PassContext {
    /// A context for graph `graph_index`.
    pub fn new(graph_index: usize) -> Self {
        PassContext { graph_index, diagnostics: Vec::new(), module: None }
    }

    /// Records a diagnostic.
    pub fn note(&mut self, message: impl Into<String>) {
        self.diagnostics.push(message.into());
    }
}

/// What one pass did to one graph (or, merged, to a module).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    /// Operations removed.
    pub ops_removed: usize,
    /// Operations added.
    pub ops_added: usize,
    /// Free-form notes (what was rewritten and why).
    pub notes: Vec<String>,
}

impl PassReport {
    /// Adds another report's counts and notes to this one.
    pub fn merge(&mut self, other: PassReport) {
        self.ops_removed += other.ops_removed;
        self.ops_added += other.ops_added;
        self.notes.extend(other.notes);
    }

    /// Whether the pass changed nothing it counts.
    pub fn is_unchanged(&self) -> bool {
        self.ops_removed == 0 && self.ops_added == 0
    }
}
