//! The system on disk: atomic writes, `.masgen/state.json`, and the rule that nothing the
//! user wrote is ever lost (a file masgen did not write, or one the user changed since,
//! keeps its previous content in the round record before it is replaced or deleted).

pub mod rounds;
mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use state::{hash_bytes, State, STATE_FILE};

use crate::protocol::edits::{apply_hunks, EditFailure};
use crate::protocol::paths::check_no_symlink_escape;
use crate::protocol::{Change, Rejected};

/// masgen's own folder inside a system.
pub const MASGEN_DIR: &str = ".masgen";
/// Where `--download-responses` puts raw replies.
pub const RESPONSES_DIR: &str = "claude-responses";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{path} exists and is not a folder: pass another -o/--output")]
    NotADirectory { path: PathBuf },
    #[error("{dir} already holds {count} file(s) masgen did not write (for example {examples}): pass another -o/--output, or --force to write anyway (replaced files are kept under {dir}/.masgen/rounds/000-previous/)")]
    ForeignFiles {
        dir: PathBuf,
        count: usize,
        examples: String,
    },
    #[error("{path} is not valid masgen state ({why}): fix or delete it")]
    BadState { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub use crate::atomic::write_atomic;

/// Files larger than this are named in the tree but not shown to the model in full.
pub const MAX_MODEL_FILE: usize = 60_000;

/// A file's content as the model may be shown it: text of at most [`MAX_MODEL_FILE`]
/// bytes; None for a binary (NUL bytes) or huge file.
pub fn model_text(bytes: &[u8]) -> Option<String> {
    (bytes.len() <= MAX_MODEL_FILE && !bytes.contains(&0))
        .then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// What applying a set of changes did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Applied {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    /// Files whose earlier content (not masgen's) was kept in the round record.
    pub preserved: Vec<String>,
    pub rejected: Vec<Rejected>,
    pub edit_failures: Vec<EditFailure>,
}

impl Applied {
    pub fn touched(&self) -> usize {
        self.added.len() + self.changed.len() + self.deleted.len()
    }
}

/// A system folder masgen writes into.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    state: State,
}

impl Workspace {
    /// Open `root` for writing, creating it when missing. A folder holding files masgen
    /// did not write is refused unless `force`.
    pub fn prepare(root: &Path, force: bool) -> Result<Workspace, WorkspaceError> {
        if root.exists() && !root.is_dir() {
            return Err(WorkspaceError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        std::fs::create_dir_all(root).map_err(io(root))?;
        let state = State::load(root)?.unwrap_or_default();
        let foreign: Vec<String> = list_files(root)
            .into_iter()
            .filter(|f| !state.files.contains_key(f))
            .collect();
        if !foreign.is_empty() && !force {
            let examples = foreign
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return Err(WorkspaceError::ForeignFiles {
                dir: root.to_path_buf(),
                count: foreign.len(),
                examples,
            });
        }
        Ok(Workspace {
            root: root.to_path_buf(),
            state,
        })
    }

    /// Open an existing system without the foreign-files check (repair, iterate, verify).
    pub fn open(root: &Path) -> Result<Workspace, WorkspaceError> {
        let state = State::load(root)?.unwrap_or_default();
        Ok(Workspace {
            root: root.to_path_buf(),
            state,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }

    pub fn masgen_dir(&self) -> PathBuf {
        self.root.join(MASGEN_DIR)
    }

    /// Whether the file at `rel` holds content masgen did not write (a user's file, or
    /// one the user changed since).
    fn is_users(&self, rel: &str, current: &[u8]) -> bool {
        self.state
            .files
            .get(rel)
            .is_none_or(|h| *h != hash_bytes(current))
    }

    /// Apply `changes`; previous content that is the user's goes under
    /// `.masgen/rounds/<record>/`. Edits that do not apply are reported, not half-applied.
    pub fn apply(&mut self, changes: &[Change], record: &str) -> Result<Applied, WorkspaceError> {
        let mut applied = Applied::default();
        for change in changes {
            let rel = change.path().as_str().to_string();
            if let Err(why) = check_no_symlink_escape(&self.root, change.path()) {
                applied.rejected.push(Rejected {
                    path: rel,
                    reason: why.to_string(),
                });
                continue;
            }
            let target = change.path().under(&self.root);
            if target.is_dir() {
                applied.rejected.push(Rejected {
                    path: rel,
                    reason: "is a folder in the system".into(),
                });
                continue;
            }
            let current = std::fs::read(&target).ok();
            let new_content = match change {
                Change::File { content, .. } => Some(content.clone()),
                Change::Delete { .. } => None,
                Change::Edit { hunks, .. } => {
                    let base = current
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    match apply_hunks(&rel, &base, hunks) {
                        Ok(text) => Some(text),
                        Err(failure) => {
                            applied.edit_failures.push(failure);
                            continue;
                        }
                    }
                }
            };
            if let Some(old) = &current {
                if new_content.as_deref().map(str::as_bytes) == Some(old.as_slice()) {
                    self.state.files.insert(rel.clone(), hash_bytes(old));
                    continue; // unchanged
                }
                if self.is_users(&rel, old) {
                    let keep = self.masgen_dir().join("rounds").join(record).join(&rel);
                    write_atomic(&keep, old).map_err(io(&keep))?;
                    applied.preserved.push(rel.clone());
                }
            }
            match new_content {
                Some(text) => {
                    write_atomic(&target, text.as_bytes()).map_err(io(&target))?;
                    self.state
                        .files
                        .insert(rel.clone(), hash_bytes(text.as_bytes()));
                    if current.is_some() {
                        applied.changed.push(rel);
                    } else {
                        applied.added.push(rel);
                    }
                }
                None => {
                    if current.is_some() {
                        std::fs::remove_file(&target).map_err(io(&target))?;
                        applied.deleted.push(rel.clone());
                    }
                    self.state.files.remove(&rel);
                }
            }
        }
        self.save_state()?;
        Ok(applied)
    }

    pub fn save_state(&mut self) -> Result<(), WorkspaceError> {
        self.state.updated = state::now();
        self.state.save(&self.root)
    }

    /// Files of the system (relative, `/`-separated, sorted), without masgen's own folders.
    pub fn files(&self) -> Vec<String> {
        list_files(&self.root)
    }
}

/// Every file under `root` except `.masgen/`, `.git/` and `claude-responses/`.
pub fn list_files(root: &Path) -> Vec<String> {
    let skip: BTreeSet<&str> = [MASGEN_DIR, ".git", RESPONSES_DIR].into_iter().collect();
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    for entry in walker.filter_entry(|e| {
        e.depth() != 1 || !skip.contains(e.file_name().to_string_lossy().as_ref())
    }) {
        let Ok(entry) = entry else { continue };
        if entry.file_type().is_dir() {
            continue;
        }
        if let Ok(rel) = entry.path().strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push(rel);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::check_path;

    fn file(p: &str, c: &str) -> Change {
        Change::File {
            path: check_path(p).unwrap(),
            content: c.into(),
        }
    }

    #[test]
    fn a_folder_with_foreign_files_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.txt"), "user's").unwrap();
        let err = Workspace::prepare(dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let mut ws = Workspace::prepare(dir.path(), true).unwrap();
        let applied = ws
            .apply(&[file("mine.txt", "masgen's\n")], "000-previous")
            .unwrap();
        assert_eq!(applied.preserved, vec!["mine.txt"]);
        let kept = dir.path().join(".masgen/rounds/000-previous/mine.txt");
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "user's");
        // Now every file is masgen's: a second run needs no --force.
        Workspace::prepare(dir.path(), false).unwrap();
    }

    #[test]
    fn user_edits_are_kept_before_replacement_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::prepare(dir.path(), false).unwrap();
        ws.apply(&[file("a.py", "v1\n"), file("b.py", "b\n")], "001")
            .unwrap();
        std::fs::write(dir.path().join("a.py"), "user v2\n").unwrap();
        let applied = ws
            .apply(
                &[
                    file("a.py", "v3\n"),
                    Change::Delete {
                        path: check_path("b.py").unwrap(),
                    },
                ],
                "002",
            )
            .unwrap();
        assert_eq!(applied.preserved, vec!["a.py"]);
        assert_eq!(applied.deleted, vec!["b.py"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".masgen/rounds/002/a.py")).unwrap(),
            "user v2\n"
        );
        assert!(
            !dir.path().join(".masgen/rounds/002/b.py").exists(),
            "b.py was masgen's own: no backup needed"
        );
    }

    #[test]
    fn a_failed_edit_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::prepare(dir.path(), false).unwrap();
        ws.apply(&[file("a.py", "x = 1\n")], "001").unwrap();
        let edit = Change::Edit {
            path: check_path("a.py").unwrap(),
            hunks: vec![crate::protocol::Hunk {
                search: "y = 2\n".into(),
                replace: "y = 3\n".into(),
            }],
        };
        let applied = ws.apply(&[edit], "002").unwrap();
        assert_eq!(applied.edit_failures.len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.py")).unwrap(),
            "x = 1\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool.py");
        std::fs::write(&tool, "v1").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o750)).unwrap();
        write_atomic(&tool, b"v2").unwrap();
        assert_eq!(
            std::fs::metadata(&tool).unwrap().permissions().mode() & 0o777,
            0o750
        );
        assert_eq!(std::fs::read_to_string(&tool).unwrap(), "v2");
    }

    #[test]
    fn shell_scripts_are_executable() {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::prepare(dir.path(), false).unwrap();
        ws.apply(&[file("start.sh", "#!/bin/sh\n")], "001").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("start.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
    }
}
