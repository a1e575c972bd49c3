//! Reading one compose file: parsed (every node's place kept), checked against the key
//! rule, then substituted value by value. A leaf of the reading steps: include.rs merges
//! what it reads, load.rs puts a project together.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::ComposeError;
use super::interp::Vars;
use super::yaml::Doc;

pub(super) fn parse_doc(text: &str, file: &str) -> Result<Doc, ComposeError> {
    super::yaml::parse(text).map_err(|e| ComposeError::Syntax {
        file: file.to_string(),
        line: e.mark.line as u64,
        column: e.mark.column as u64,
        message: e.message,
    })
}

pub(super) fn check_keys(
    doc: &Doc,
    file: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    super::keys::check(doc, file, warnings)
        .map_err(|r| ComposeError::Refused { message: r.message })
}

/// Reads the files of a project, and of the projects it includes.
pub(super) struct Reader {
    pub root: PathBuf,
    /// Every file read, by the name shown in messages, with its document (for positions).
    pub docs: Vec<(String, Doc)>,
    pub warnings: Vec<String>,
    /// Variables used unset, in the order first met.
    pub unset: Vec<String>,
    pub included: Vec<PathBuf>,
}

impl Reader {
    pub fn new(root: PathBuf) -> Self {
        Reader {
            root,
            docs: Vec::new(),
            warnings: Vec::new(),
            unset: Vec::new(),
            included: Vec::new(),
        }
    }

    pub fn shown(&self, p: &Path) -> String {
        p.strip_prefix(&self.root)
            .unwrap_or(p)
            .display()
            .to_string()
    }

    /// One file: parsed, checked against the key rule, then substituted value by value.
    /// Returns its value and its merge tags.
    pub fn read(
        &mut self,
        path: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Value, Vec<super::merge::Tagged>), ComposeError> {
        let name = self.shown(path);
        let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut doc = parse_doc(&text, &name)?;
        check_keys(&doc, &name, &mut self.warnings)?;
        let mut vars = Vars::new(lookup);
        vars.document(&mut doc).map_err(|(p, e)| {
            let m = doc.mark(&p);
            ComposeError::Interpolation {
                file: name.clone(),
                line: m.line,
                column: m.column,
                message: format!("{}: {e}", super::keys::display_path(&p)),
            }
        })?;
        for v in vars.unset {
            if !self.unset.contains(&v) {
                self.unset.push(v);
            }
        }
        let out = (doc.value.clone(), doc.tags.clone());
        self.docs.push((name, doc));
        Ok(out)
    }
}
