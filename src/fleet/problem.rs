//! What is wrong with a fleet file: each [`Problem`] with its file, `line:column`, field path and help, and
//! [`FleetError`], all of them reported together.
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ron_pos::{LineCol, Locator, Step};

/// One thing wrong with a fleet file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The fleet file.
    pub file: PathBuf,
    /// Position of the offending value, when it could be found.
    pub at: Option<LineCol>,
    /// Path of the field, e.g. `miners[2].repo`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(at) = self.at {
            write!(f, ":{}:{}", at.line, at.col)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Why a fleet file could not be loaded: one or more problems, all reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FleetError {
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        if n > 1 {
            writeln!(f, "{n} problems in the fleet file:")?;
        }
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems with their positions in one source text.
pub(super) struct Problems<'a> {
    pub(super) file: &'a Path,
    /// The fleet text, indexed once (positions of 10 000 miners cost one pass, not one pass each).
    pub(super) locator: &'a Locator<'a>,
    pub(super) list: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub(super) fn add(
        &mut self,
        path: &[Step<'_>],
        message: impl Into<String>,
        help: Option<&str>,
    ) {
        self.list.push(Problem {
            file: self.file.to_path_buf(),
            at: self.locator.locate(path),
            field: field_path(path),
            message: message.into(),
            help: help.map(str::to_string),
        });
    }
}

/// `miners[2].repo` from a path.
fn field_path(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}
