//! The explicit pass registry: a list of [`PassInfo`] entries, assembled in one place by
//! the driver from the pass crates' declarations.

use crate::error::PassError;
use crate::options::{OptionInfo, PassOptions};
use crate::pass::Pass;
use crate::pipeline::PipelineEntry;

/// Builds a pass from validated options; may reject values out of range.
pub type BuildFn = fn(&PassOptions) -> Result<Box<dyn Pass>, PassError>;

/// Declaration of a pass: its name, what it does, its options and how to build it.
#[derive(Clone, Copy)]
pub struct PassInfo {
    /// Name in pipeline text.
    pub name: &'static str,
    /// One line saying what the pass does.
    pub summary: &'static str,
    /// Declared options.
    pub options: &'static [OptionInfo],
    /// Constructor.
    pub build: BuildFn,
}

impl std::fmt::Debug for PassInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassInfo").field("name", &self.name).field("options", &self.options).finish()
    }
}

/// The passes a pipeline may name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    passes: Vec<PassInfo>,
}

impl Registry {
    /// A registry of `passes`, in the order given (help lists them in this order).
    ///
    /// Panics on two passes with one name: the list is written by hand, once.
    pub fn new(passes: Vec<PassInfo>) -> Self {
        for (i, p) in passes.iter().enumerate() {
            assert!(!passes[..i].iter().any(|q| q.name == p.name), "pass '{}' registered twice", p.name);
        }
        Registry { passes }
    }

    /// Every registered pass.
    pub fn passes(&self) -> &[PassInfo] {
        &self.passes
    }

    /// The pass named `name`, or an error listing the valid names.
    pub fn lookup(&self, name: &str) -> Result<&PassInfo, PassError> {
        self.passes.iter().find(|p| p.name == name).ok_or_else(|| PassError::UnknownPass {
            name: name.into(),
            valid: self.passes.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
        })
    }

    /// Builds one pipeline entry: looks the pass up, validates its options, constructs it.
    pub fn build(&self, entry: &PipelineEntry) -> Result<Box<dyn Pass>, PassError> {
        let info = self.lookup(&entry.name)?;
        let options = PassOptions::validate(info.name, info.options, &entry.options)?;
        (info.build)(&options)
    }

    /// Builds every entry of a pipeline, failing on the first bad one.
    pub fn build_pipeline(&self, entries: &[PipelineEntry]) -> Result<Vec<Box<dyn Pass>>, PassError> {
        entries.iter().map(|e| self.build(e)).collect()
    }

    /// Help text: one paragraph per pass with its options, types, defaults and docs.
    pub fn help(&self) -> String {
        let mut s = String::new();
        for p in &self.passes {
            s.push_str(&format!("  {:<16} {}\n", p.name, p.summary));
            for o in p.options {
                s.push_str(&format!("      {}: {} = {}  {}\n", o.name, o.ty, o.default, o.doc));
            }
        }
        s
    }
}
