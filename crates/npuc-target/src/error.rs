//! Errors, and turning TOML/serde errors into `file: field.path: reason` messages.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::Target;

/// Everything that can go wrong loading a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The file could not be read.
    #[error("{file}: cannot read target file: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}:{line}: invalid TOML: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the error.
        line: usize,
        /// What the TOML parser said.
        message: String,
    },
    /// Valid TOML that does not have the shape of a target (missing, unknown or mistyped field).
    #[error("{file}:{line}: {path}: {message}")]
    Schema {
        /// The file.
        file: String,
        /// 1-based line of the offending table or key.
        line: usize,
        /// Dotted path of the offending table or field (`<root>` for the top level).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Well-formed target with a value that is out of range or unknown.
    #[error("{file}:{line}: {path}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line of the field, when it can be found.
        line: usize,
        /// Dotted path of the field (`memory.sram.bandwidth`).
        path: String,
        /// Why the value is rejected.
        reason: String,
    },
    /// `Target::builtin` was asked for a name that is not built in.
    #[error("unknown target `{name}` (builtin targets: {known}; or give a path to a .toml file)")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The builtin names.
        known: String,
    },
}

/// Parses `text` as TOML, then as a [`Target`], with errors that name the field path.
pub(crate) fn deserialize(text: &str, file: &str) -> Result<Target, TargetError> {
    // Parse to a spanned document first: syntax errors are told apart from schema errors,
    // and schema errors (which carry only a byte span) can be mapped back to a key path.
    let doc = DeTable::parse(text).map_err(|e| TargetError::Syntax {
        file: file.to_string(),
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: e.message().trim().to_string(),
    })?;
    toml::from_str::<Target>(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let path = path_at(doc.get_ref(), &span).unwrap_or_default();
        TargetError::Schema {
            file: file.to_string(),
            line: line_of(text, span.start),
            path: if path.is_empty() { "<root>".to_string() } else { path.join(".").replace(".[", "[") },
            message: e.message().trim().to_string(),
        }
    })
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The keys leading to the innermost key or value whose span covers `span`.
///
/// A table's own span is only its header (`[memory.sram]`), so every table is searched
/// depth first rather than pruned by its span.
fn path_at(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if contains(&key.span(), span) {
            return Some(vec![name]);
        }
        if let Some(mut rest) = descend(value, span) {
            rest.insert(0, name);
            return Some(rest);
        }
        if contains(&value.span(), span) {
            return Some(vec![name]);
        }
    }
    None
}

/// The path below `value` that covers `span`; array items add `[i]` to the enclosing key.
fn descend(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Vec<String>> {
    match value.get_ref() {
        DeValue::Table(t) => path_at(t, span),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, item)| {
            if !contains(&item.span(), span) && !item.get_ref().is_table() {
                return None;
            }
            let below = descend(item, span);
            if below.is_none() && !contains(&item.span(), span) {
                return None;
            }
            let mut path = vec![format!("[{i}]")];
            path.extend(below.unwrap_or_default());
            Some(path)
        }),
        _ => None,
    }
}

/// Line of the key at a dotted `path` (`ops.conv_2d.dtypes[1]`), or 1 if not found.
pub(crate) fn line_of_path(text: &str, path: &str) -> usize {
    let Ok(doc) = DeTable::parse(text) else { return 1 };
    let mut table = doc.get_ref();
    let mut line = 1;
    for part in path.split('.') {
        let name = part.split('[').next().unwrap_or(part);
        let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == name) else { break };
        line = line_of(text, key.span().start);
        match value.get_ref().as_table() {
            Some(t) => table = t,
            None => break,
        }
    }
    line
}
