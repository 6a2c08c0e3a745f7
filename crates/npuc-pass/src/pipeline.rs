//! Pipeline text: `name,name{key=value,key=value},…`.
//!
//! Grammar (spaces allowed around every token):
//! ```text
//! pipeline := (entry (',' entry)*)?
//! entry    := NAME ('{' (option (',' option)*)? '}')?
//! option   := NAME '=' VALUE
//! NAME     := [A-Za-z0-9_-]+
//! VALUE    := any characters but ',', '{', '}', '=' and spaces (at least one)
//! ```
//! Errors name the 1-based column of the offending character.

use crate::error::PassError;

/// One pass of a pipeline as written: its name and raw `(key, value)` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineEntry {
    /// Pass name.
    pub name: String,
    /// Options as written, in order.
    pub options: Vec<(String, String)>,
    /// 1-based column where the entry starts.
    pub col: usize,
}

struct Cursor<'a> {
    text: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn err(&self, message: impl Into<String>) -> PassError {
        PassError::Syntax { text: self.text.into(), col: self.pos + 1, message: message.into() }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("'{c}'"),
            None => "end of text".into(),
        }
    }

    fn word(&mut self, what: &str, ok: impl Fn(char) -> bool) -> Result<String, PassError> {
        self.skip_spaces();
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err(format!("expected {what}, found {}", self.found())));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn expect(&mut self, c: char) -> Result<(), PassError> {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected '{c}', found {}", self.found())))
        }
    }
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_value(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ',' | '{' | '}' | '=')
}

/// Parses pipeline text into entries; empty (or all-space) text is the empty pipeline.
pub fn parse_pipeline(text: &str) -> Result<Vec<PipelineEntry>, PassError> {
    let mut c = Cursor { text, chars: text.chars().collect(), pos: 0 };
    let mut entries = Vec::new();
    c.skip_spaces();
    if c.peek().is_none() {
        return Ok(entries);
    }
    loop {
        c.skip_spaces();
        let col = c.pos + 1;
        let name = c.word("a pass name", is_name)?;
        let mut options = Vec::new();
        c.skip_spaces();
        if c.peek() == Some('{') {
            c.pos += 1;
            c.skip_spaces();
            if c.peek() == Some('}') {
                c.pos += 1;
            } else {
                loop {
                    let key = c.word("an option name", is_name)?;
                    c.expect('=')?;
                    let value = c.word("an option value", is_value)?;
                    options.push((key, value));
                    c.skip_spaces();
                    match c.peek() {
                        Some(',') => c.pos += 1,
                        Some('}') => {
                            c.pos += 1;
                            break;
                        }
                        _ => return Err(c.err(format!("expected ',' or '}}', found {}", c.found()))),
                    }
                }
            }
        }
        entries.push(PipelineEntry { name, options, col });
        c.skip_spaces();
        match c.peek() {
            None => return Ok(entries),
            Some(',') => c.pos += 1,
            Some(_) => return Err(c.err(format!("expected ',' or end of text, found {}", c.found()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col_of(text: &str) -> (usize, String) {
        match parse_pipeline(text) {
            Err(PassError::Syntax { col, message, .. }) => (col, message),
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_names_and_options() {
        let p = parse_pipeline("canonicalize, dce ,prune{sparsity=0.5, mode = l1},x{}").unwrap();
        let names: Vec<&str> = p.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["canonicalize", "dce", "prune", "x"]);
        assert_eq!(p[2].options, vec![("sparsity".into(), "0.5".into()), ("mode".into(), "l1".into())]);
        assert!(p[3].options.is_empty());
        assert_eq!((p[0].col, p[1].col, p[2].col), (1, 15, 20));
    }

    #[test]
    fn empty_text_is_empty_pipeline() {
        assert!(parse_pipeline("").unwrap().is_empty());
        assert!(parse_pipeline("   ").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_have_columns() {
        assert_eq!(col_of("dce,"), (5, "expected a pass name, found end of text".into()));
        assert_eq!(col_of(",dce"), (1, "expected a pass name, found ','".into()));
        assert_eq!(col_of("dce{a=1"), (8, "expected ',' or '}', found end of text".into()));
        assert_eq!(col_of("dce{a}"), (6, "expected '=', found '}'".into()));
        assert_eq!(col_of("dce{a=}"), (7, "expected an option value, found '}'".into()));
        assert_eq!(col_of("dce dce"), (5, "expected ',' or end of text, found 'd'".into()));
        assert_eq!(col_of("d.ce"), (2, "expected ',' or end of text, found '.'".into()));
        assert_eq!(col_of("dce{,}"), (5, "expected an option name, found ','".into()));
    }

    #[test]
    fn error_message_is_one_line_with_context() {
        let e = parse_pipeline("dce,,x").unwrap_err().to_string();
        assert_eq!(e, "bad pipeline 'dce,,x' at column 5: expected a pass name, found ','");
    }
}
