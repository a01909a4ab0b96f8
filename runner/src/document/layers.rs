//! A workflow and the templates it extends (`[workflow] extends = "…"`),
//! as layers of one document.
//!
//! Each file keeps its own text, but the spans of all of them live in one
//! range of offsets: a file's offsets start where the previous file's end.
//! A template is parsed with that many spaces in front of it (TOML ignores
//! them), so its spans come out already shifted. After merging, every value
//! still says which file, line and column it came from, and [`Errors`]
//! finds the file by the offset alone.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{Errors, Location, WorkflowError};
use super::read::{absolute, resolve_path};
use super::vars;

/// How many templates deep a chain of `extends` may go.
pub const MAX_DEPTH: usize = 8;

/// The most a workflow file or template may hold: far more than any
/// workflow needs, and a bound on what a path to an endless file (a
/// device, a pipe) could make the runner read.
pub const MAX_FILE: u64 = 4 << 20;

/// Reads a workflow or template file: a regular file of at most
/// [`MAX_FILE`] bytes.
pub fn read_file(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(file)?
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "longer than {} (a workflow is text of a few KiB)",
            crate::plugin::limits::show_size(MAX_FILE)
        )));
    }
    Ok(text)
}

/// One file of the document.
#[derive(Debug)]
pub struct Layer {
    /// The file, as the user (or the `extends` naming it) wrote it.
    pub file: PathBuf,
    /// Where its offsets start.
    pub base: usize,
    /// Its text with `base` spaces in front.
    padded: String,
}

impl Layer {
    fn new(file: PathBuf, text: &str, base: usize) -> Self {
        let mut padded = " ".repeat(base);
        // A byte-order mark is only allowed at the very start; three spaces
        // in its place keep every offset after it.
        match text.strip_prefix('\u{feff}') {
            Some(rest) => {
                padded.push_str("   ");
                padded.push_str(rest);
            }
            None => padded.push_str(text),
        }
        Layer { file, base, padded }
    }

    /// The file's own text.
    pub fn text(&self) -> &str {
        &self.padded[self.base..]
    }

    fn end(&self) -> usize {
        self.padded.len()
    }

    /// A place in this file, by an offset of this file's own text.
    fn at(&self, offset: usize, message: impl Into<String>) -> WorkflowError {
        WorkflowError::At {
            location: Location::at(&self.file, self.text(), offset),
            message: message.into(),
        }
    }
}

/// The workflow being run first, then the template it extends, then the one
/// that extends, and so on; and what errors should add about values that
/// variables made.
#[derive(Debug)]
pub struct Layers {
    files: Vec<Layer>,
    /// By the offset of a value: which variables it used and where they
    /// were set.
    hints: RefCell<BTreeMap<usize, String>>,
}

impl Layers {
    /// `file` (whose text is `text`) and every template it extends, read
    /// from disk.
    pub fn read(file: &Path, text: &str) -> Result<Layers, WorkflowError> {
        let mut layers = vec![Layer::new(file.to_path_buf(), text, 0)];
        let mut seen = vec![absolute(file)];
        loop {
            let last = layers.last().expect("one layer at least");
            let Some((extends, span)) = extends_of(last)? else {
                break;
            };
            let offset = span.start - last.base;
            if layers.len() > MAX_DEPTH {
                return Err(last.at(
                    offset,
                    format!("templates extend each other more than {MAX_DEPTH} deep"),
                ));
            }
            if extends.contains('$') {
                return Err(last.at(
                    offset,
                    "`extends` is written out, not taken from a variable (templates are read before variables are)",
                ));
            }
            let dir = last.file.parent().unwrap_or(Path::new(""));
            let path = resolve_path(dir, &extends);
            let template = read_file(&path).map_err(|e| {
                last.at(
                    offset,
                    format!(
                        "cannot read template `{extends}` ({}): {e}; `extends` is relative to the folder of the file that writes it",
                        absolute(&path).display()
                    ),
                )
            })?;
            let whole = absolute(&path);
            if let Some(first) = seen.iter().position(|s| *s == whole) {
                let chain: Vec<String> = layers[first..]
                    .iter()
                    .map(|l| l.file.display().to_string())
                    .chain([path.display().to_string()])
                    .collect();
                return Err(last.at(
                    offset,
                    format!(
                        "templates extend each other in a cycle: {}",
                        chain.join(" → ")
                    ),
                ));
            }
            seen.push(whole);
            let base = last.end() + 1;
            layers.push(Layer::new(path, &template, base));
        }
        Ok(Layers {
            files: layers,
            hints: RefCell::default(),
        })
    }

    /// Errors placed in whichever file an offset falls in.
    pub fn errors(&self) -> Errors<'_> {
        Errors { layers: self }
    }

    /// Whether the workflow extends a template.
    pub fn extends(&self) -> bool {
        self.files.len() > 1
    }

    /// Every file, the workflow being run first.
    pub fn iter(&self) -> impl Iterator<Item = &Layer> {
        self.files.iter()
    }

    /// Adds `hint` to errors about the value at offset `at`.
    pub fn explain(&self, at: usize, hint: String) {
        self.hints.borrow_mut().insert(at, hint);
    }

    /// What to add to an error about the value at offset `at`.
    pub fn hint(&self, at: usize) -> Option<String> {
        self.hints.borrow().get(&at).cloned()
    }

    /// The file that offset `at` falls in.
    pub fn layer_at(&self, at: usize) -> &Layer {
        self.files
            .iter()
            .rev()
            .find(|l| l.base <= at)
            .unwrap_or(&self.files[0])
    }

    /// Each file parsed, `[workflow] extends` taken out, in the order of
    /// [`Layers::iter`].
    pub fn documents(&self) -> Result<Vec<DeTable<'_>>, WorkflowError> {
        let errors = self.errors();
        self.files
            .iter()
            .map(|layer| {
                let mut doc = DeTable::parse(&layer.padded)
                    .map_err(|e| errors.toml(e, layer.base..layer.end()))?
                    .into_inner();
                if let Some(workflow) = doc
                    .iter_mut()
                    .find(|(k, _)| k.get_ref() == "workflow")
                    .map(|(_, v)| v)
                    && let DeValue::Table(table) = workflow.get_mut()
                {
                    vars::take(table, "extends");
                }
                Ok(doc)
            })
            .collect()
    }
}

/// `[workflow] extends` of one file, read from its own text (offsets are
/// shifted into the layer's range).
fn extends_of(layer: &Layer) -> Result<Option<(String, Range<usize>)>, WorkflowError> {
    let doc = DeTable::parse(layer.text()).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        layer.at(offset, e.message().trim().to_string())
    })?;
    let Some(workflow) = get(doc.get_ref(), "workflow") else {
        return Ok(None);
    };
    let DeValue::Table(table) = workflow.get_ref() else {
        return Ok(None);
    };
    let Some(extends) = get(table, "extends") else {
        return Ok(None);
    };
    let shifted = |s: Range<usize>| s.start + layer.base..s.end + layer.base;
    match extends.get_ref() {
        DeValue::String(path) => Ok(Some((path.to_string(), shifted(extends.span())))),
        _ => Err(layer.at(
            extends.span().start,
            "`extends` must be a string: the path of a template, relative to this file's folder",
        )),
    }
}

/// A key of `table`, looked up by name.
pub fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v)
}
