//! `include:`: other compose projects read into this one, as Docker Compose reads them.
//! Each entry is a path (or, long form, `path:` one or a list merged in order,
//! `project_directory:` and `env_file:`), relative to the including file's folder. An
//! included project reads its own variables (its `env_file`s, else the `.env` of its
//! project directory), under this project's, which win; its relative paths are relative
//! to its project directory (by default the folder of its first file). Its services,
//! volumes, networks, secrets and configs join this project's; a name both define
//! differently is refused, and so is a file that includes itself, with the chain named.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dotenv::read_env_files;
use super::error::ComposeError;
use super::extends::absolute;
use super::policy::lexical;
use super::reader::Reader;

const SECTIONS: [&str; 5] = ["services", "volumes", "networks", "secrets", "configs"];

/// One `include:` entry, with its paths made absolute.
struct Entry {
    paths: Vec<PathBuf>,
    project_dir: PathBuf,
    env_files: Vec<PathBuf>,
}

/// Read what `doc` (the document of `file`) includes into it, and remove its `include:`.
pub(super) fn apply(
    reader: &mut Reader,
    doc: &mut Value,
    file: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    chain: &[PathBuf],
) -> Result<(), ComposeError> {
    let Some(include) = doc.as_object_mut().and_then(|d| d.shift_remove("include")) else {
        return Ok(());
    };
    let shown = reader.shown(file);
    let invalid = |message: String| ComposeError::Invalid {
        file: shown.clone(),
        message,
    };
    let dir = file.parent().unwrap_or(&reader.root).to_path_buf();
    let entries = match include {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => {
            return Err(invalid(
                "include: must be a list of files or of {path: ...} entries".into(),
            ))
        }
    };
    let mut chain = chain.to_vec();
    chain.push(file.to_path_buf());
    for item in entries {
        let entry = entry(&item, &dir).map_err(|e| invalid(e.to_string()))?;
        for p in &entry.paths {
            if let Some(at) = chain.iter().position(|c| c == p) {
                let names: Vec<String> = chain[at..]
                    .iter()
                    .chain([p])
                    .map(|c| reader.shown(c))
                    .collect();
                return Err(invalid(format!(
                    "include cycle: {}: remove one of these includes",
                    names.join(" includes ")
                )));
            }
            if !p.is_file() {
                return Err(invalid(format!(
                    "include: {} does not exist: fix the path (it is relative to {})",
                    p.display(),
                    reader.shown(&dir)
                )));
            }
        }
        let vars = read_env_files(&entry.project_dir, &entry.env_files)?;
        let inner = |k: &str| lookup(k).or_else(|| vars.get(k).cloned());
        let mut included = merged(reader, &entry.paths, &inner, &chain)?;
        reader.included.extend(entry.paths.iter().cloned());
        rebase(&mut included, &entry.project_dir);
        join(doc, included).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}

/// An `include:` entry Compose would not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum IncludeError {
    #[error("include: a path must be a string or a list of strings")]
    NotAPath,
    #[error("include: each entry is a path or a mapping with path:")]
    NotAnEntry,
    #[error("include: an entry needs a path")]
    NoPath,
    #[error("{section}.{name} conflicts with imported resource: an included file defines it too (docker compose refuses this as well); rename one, or extend the included one instead")]
    Conflict { section: String, name: String },
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, IncludeError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or(IncludeError::NotAPath))
            .collect(),
        Some(_) => Err(IncludeError::NotAPath),
    }
}

fn entry(item: &Value, dir: &Path) -> Result<Entry, IncludeError> {
    let (paths, project_dir, env_files) = match item {
        Value::String(s) => (vec![s.clone()], None, Vec::new()),
        Value::Object(o) => (
            strings(o.get("path"))?,
            o.get("project_directory")
                .and_then(Value::as_str)
                .map(str::to_string),
            strings(o.get("env_file"))?,
        ),
        _ => return Err(IncludeError::NotAnEntry),
    };
    if paths.is_empty() {
        return Err(IncludeError::NoPath);
    }
    let abs = |p: &str| lexical(&dir.join(p));
    let paths: Vec<PathBuf> = paths.iter().map(|p| abs(p)).collect();
    let project_dir = match project_dir {
        Some(d) => abs(&d),
        None => paths[0].parent().unwrap_or(dir).to_path_buf(),
    };
    Ok(Entry {
        paths,
        project_dir,
        env_files: env_files.iter().map(|p| abs(p)).collect(),
    })
}

/// Make the included project's relative paths (written against `project_dir`) absolute.
fn rebase(doc: &mut Value, project_dir: &Path) {
    let Some(top) = doc.as_object_mut() else {
        return;
    };
    if let Some(services) = top.get_mut("services").and_then(Value::as_object_mut) {
        for svc in services.values_mut().filter_map(Value::as_object_mut) {
            super::extends::rebase_service(svc, &|p| absolute(p, project_dir));
            if let Some(Value::String(f)) = svc.get_mut("extends").and_then(|e| e.get_mut("file")) {
                *f = lexical(&project_dir.join(&*f)).display().to_string();
            }
        }
    }
    for section in ["secrets", "configs"] {
        for def in top
            .get_mut(section)
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|s| s.values_mut())
        {
            if let Some(Value::String(f)) = def.get_mut("file") {
                *f = absolute(f, project_dir);
            }
        }
    }
}

/// Put the included resources beside the including file's own; a name both define
/// differently is refused.
fn join(doc: &mut Value, included: Value) -> Result<(), IncludeError> {
    let (Some(top), Value::Object(mut inc)) = (doc.as_object_mut(), included) else {
        return Ok(());
    };
    for section in SECTIONS {
        let Some(Value::Object(items)) = inc.shift_remove(section) else {
            continue;
        };
        let own = top
            .entry(section)
            .or_insert_with(|| Value::Object(Default::default()));
        if own.is_null() {
            *own = Value::Object(Default::default());
        }
        let Some(own) = own.as_object_mut() else {
            continue;
        };
        for (name, v) in items {
            if own.get(&name).is_some_and(|mine| *mine != v) {
                return Err(IncludeError::Conflict {
                    section: section.to_string(),
                    name,
                });
            }
            own.insert(name, v);
        }
    }
    Ok(())
}

/// The files of one project merged in order, each with what it includes. `chain`: the
/// files whose includes led here, to name a cycle.
pub(super) fn merged(
    reader: &mut Reader,
    paths: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
    chain: &[PathBuf],
) -> Result<Value, ComposeError> {
    let mut merged: Option<Value> = None;
    for path in paths {
        let (mut value, tags) = reader.read(path, lookup)?;
        apply(reader, &mut value, path, lookup, chain)?;
        match &mut merged {
            None => merged = Some(value),
            Some(base) => {
                super::merge::apply_tags(base, &mut value, &tags);
                super::merge::merge_documents(base, value);
            }
        }
    }
    Ok(merged.unwrap_or_else(|| Value::Object(Default::default())))
}
