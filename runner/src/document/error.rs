//! Workflow errors: every one names the file, and the line and column of
//! the value it is about, then says what was expected.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::layers::Layers;

/// A place in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text`.
    pub fn at(file: &Path, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Why a workflow cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The file could not be read.
    #[error("cannot read workflow `{}`: {source}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something at a known place is wrong.
    #[error("{location}: {message}")]
    At {
        /// Where.
        location: Location,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A `--var` override is wrong.
    #[error("{message}")]
    Override {
        /// What is wrong.
        message: String,
    },
}

/// Builds [`WorkflowError::At`] from byte spans of the workflow and the
/// templates it extends (see `layers`: each file has its own range).
#[derive(Clone, Copy)]
pub struct Errors<'a> {
    /// The files, in the order of their ranges.
    pub layers: &'a Layers,
}

impl Errors<'_> {
    /// Where `offset` is: the file it falls in, line and column.
    pub fn location(&self, offset: usize) -> Location {
        let layer = self.layers.layer_at(offset);
        Location::at(&layer.file, layer.text(), offset - layer.base.min(offset))
    }

    /// An error about the value at `span`.
    pub fn at(&self, span: Range<usize>, message: impl Into<String>) -> WorkflowError {
        let mut message = message.into();
        if let Some(hint) = self.layers.hint(span.start) {
            message.push_str(&format!(" ({hint})"));
        }
        WorkflowError::At {
            location: self.location(span.start),
            message,
        }
    }

    /// A TOML or serde error, placed where the parser says.
    pub fn toml(&self, error: toml::de::Error, fallback: Range<usize>) -> WorkflowError {
        let span = error.span().unwrap_or(fallback);
        let message = error.message().trim().to_string();
        self.at(span, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        let loc = Location::at(Path::new("w.toml"), text, text.find('2').unwrap());
        assert_eq!(loc.to_string(), "w.toml:2:6");
        assert_eq!(
            Location::at(Path::new("w.toml"), text, 0).to_string(),
            "w.toml:1:1"
        );
    }
}
