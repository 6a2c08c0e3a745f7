//! Pass options: declarations ([`OptionInfo`]), typed values, and the validated set a pass
//! is built from ([`PassOptions`]).

use std::fmt;

use crate::error::PassError;

/// The type of an option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionType {
    /// `true` or `false`.
    Bool,
    /// A signed integer.
    Int,
    /// A finite floating-point number.
    Float,
    /// Any text without `,`, `{`, `}`.
    Str,
}

impl fmt::Display for OptionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OptionType::Bool => "bool",
            OptionType::Int => "int",
            OptionType::Float => "float",
            OptionType::Str => "string",
        })
    }
}

/// A typed option value.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
}

impl OptionType {
    /// Parses `text` as a value of this type; `None` if it does not parse.
    pub fn parse(self, text: &str) -> Option<OptionValue> {
        match self {
            OptionType::Bool => match text {
                "true" => Some(OptionValue::Bool(true)),
                "false" => Some(OptionValue::Bool(false)),
                _ => None,
            },
            OptionType::Int => text.parse().ok().map(OptionValue::Int),
            OptionType::Float => text.parse::<f64>().ok().filter(|x| x.is_finite()).map(OptionValue::Float),
            OptionType::Str => Some(OptionValue::Str(text.to_string())),
        }
    }
}

/// Declaration of one option of a pass: shown in help, used to validate pipeline text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionInfo {
    /// Name as written in pipeline text.
    pub name: &'static str,
    /// Value type.
    pub ty: OptionType,
    /// Default value, in pipeline-text form (must parse as `ty`).
    pub default: &'static str,
    /// One line saying what the option does.
    pub doc: &'static str,
}

/// The validated options of one pass instance: every declared option has a value (given
/// or default), each of the declared type.
#[derive(Clone, Debug, PartialEq)]
pub struct PassOptions {
    pass: String,
    values: Vec<(&'static str, OptionValue)>,
}

impl PassOptions {
    /// Validates `given` `(name, text)` pairs against the declarations of pass `pass`:
    /// unknown or repeated names and values that do not parse are errors; options not given
    /// take their default.
    pub fn validate(pass: &str, decls: &[OptionInfo], given: &[(String, String)]) -> Result<Self, PassError> {
        let mut values: Vec<(&'static str, Option<OptionValue>)> = decls.iter().map(|d| (d.name, None)).collect();
        for (name, text) in given {
            let Some(i) = decls.iter().position(|d| d.name == name) else {
                let valid = if decls.is_empty() {
                    "none".to_string()
                } else {
                    decls.iter().map(|d| format!("{}: {}", d.name, d.ty)).collect::<Vec<_>>().join(", ")
                };
                return Err(PassError::UnknownOption { pass: pass.into(), option: name.clone(), valid });
            };
            if values[i].1.is_some() {
                return Err(PassError::DuplicateOption { pass: pass.into(), option: name.clone() });
            }
            let v = decls[i].ty.parse(text).ok_or_else(|| PassError::BadOptionValue {
                pass: pass.into(),
                option: name.clone(),
                value: text.clone(),
                expected: decls[i].ty.to_string(),
            })?;
            values[i].1 = Some(v);
        }
        let mut out = Vec::with_capacity(decls.len());
        for (d, (name, v)) in decls.iter().zip(values) {
            let v = match v {
                Some(v) => v,
                None => d.ty.parse(d.default).ok_or_else(|| PassError::BadOptionValue {
                    pass: pass.into(),
                    option: d.name.into(),
                    value: d.default.into(),
                    expected: format!("{} (the declared default is wrong)", d.ty),
                })?,
            };
            out.push((name, v));
        }
        Ok(PassOptions { pass: pass.into(), values: out })
    }

    /// The pass these options belong to.
    pub fn pass(&self) -> &str {
        &self.pass
    }

    /// Every option with its value, in declaration order.
    pub fn values(&self) -> &[(&'static str, OptionValue)] {
        &self.values
    }

    fn get(&self, name: &str, ty: OptionType) -> Result<&OptionValue, PassError> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v).ok_or_else(|| PassError::UndeclaredOption {
            pass: self.pass.clone(),
            option: name.into(),
            expected: ty.to_string(),
        })
    }

    fn mismatch(&self, name: &str, ty: OptionType) -> PassError {
        PassError::UndeclaredOption { pass: self.pass.clone(), option: name.into(), expected: ty.to_string() }
    }

    /// A bool option.
    pub fn bool(&self, name: &str) -> Result<bool, PassError> {
        match self.get(name, OptionType::Bool)? {
            OptionValue::Bool(b) => Ok(*b),
            _ => Err(self.mismatch(name, OptionType::Bool)),
        }
    }

    /// An int option.
    pub fn int(&self, name: &str) -> Result<i64, PassError> {
        match self.get(name, OptionType::Int)? {
            OptionValue::Int(i) => Ok(*i),
            _ => Err(self.mismatch(name, OptionType::Int)),
        }
    }

    /// A float option.
    pub fn float(&self, name: &str) -> Result<f64, PassError> {
        match self.get(name, OptionType::Float)? {
            OptionValue::Float(x) => Ok(*x),
            _ => Err(self.mismatch(name, OptionType::Float)),
        }
    }

    /// A string option.
    pub fn string(&self, name: &str) -> Result<&str, PassError> {
        match self.get(name, OptionType::Str)? {
            OptionValue::Str(s) => Ok(s),
            _ => Err(self.mismatch(name, OptionType::Str)),
        }
    }
}
