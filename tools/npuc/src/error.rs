//! The driver's error: one line for the user and an exit code.

use std::fmt;
use std::path::Path;

/// A failure the driver reports and exits on.
#[derive(Debug)]
pub struct DriverError {
    /// The file concerned, if any.
    pub file: Option<String>,
    /// What went wrong and where.
    pub message: String,
    /// Whether the input (not npuc) is at fault.
    pub bad_input: bool,
}

impl DriverError {
    /// Bad input in `file`.
    pub fn input(file: impl Into<String>, message: impl Into<String>) -> Self {
        DriverError { file: Some(file.into()), message: message.into(), bad_input: true }
    }

    /// A usage error about `what` (a path or option).
    pub fn usage(what: impl Into<String>, message: impl Into<String>) -> Self {
        DriverError::input(what, message)
    }

    /// A failure inside npuc.
    pub fn internal(message: impl Into<String>) -> Self {
        DriverError { file: None, message: message.into(), bad_input: false }
    }

    /// Attaches the file if none is set yet.
    pub fn in_file(mut self, path: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some(path.display().to_string());
        }
        self
    }

    /// Process exit code: 2 for bad input, 1 for internal failures.
    pub fn exit_code(&self) -> u8 {
        if self.bad_input {
            2
        } else {
            1
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}
