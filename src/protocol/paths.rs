//! Path safety: what a model may name as a file.

use std::path::{Component, Path, PathBuf};

/// A relative, `/`-separated path that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct SafePath(String);

impl SafePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The path under `root`.
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }
}

impl std::fmt::Display for SafePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRejection {
    #[error("empty path")]
    Empty,
    #[error("contains a NUL byte")]
    Nul,
    #[error("uses a backslash; paths use '/'")]
    Backslash,
    #[error("is absolute; paths are relative to the system folder")]
    Absolute,
    #[error("contains '..'")]
    ParentDir,
    #[error("is inside masgen's own .masgen/ folder")]
    MasgenDir,
    #[error("is inside .git/")]
    GitDir,
    #[error("names a folder, not a file")]
    NotAFile,
    #[error("resolves through a symlink to outside the system folder")]
    SymlinkEscape,
}

/// Check a path's text (no filesystem access).
pub fn check_path(raw: &str) -> Result<SafePath, PathRejection> {
    let p = raw.trim();
    if p.is_empty() {
        return Err(PathRejection::Empty);
    }
    if p.contains('\0') {
        return Err(PathRejection::Nul);
    }
    if p.contains('\\') {
        return Err(PathRejection::Backslash);
    }
    let bytes = p.as_bytes();
    if p.starts_with('/')
        || p.starts_with('~')
        || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
    {
        return Err(PathRejection::Absolute);
    }
    if p.ends_with('/') {
        return Err(PathRejection::NotAFile);
    }
    let mut parts = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(PathRejection::ParentDir),
            ".git" => return Err(PathRejection::GitDir),
            _ => parts.push(part),
        }
    }
    match parts.first() {
        None => return Err(PathRejection::Empty),
        Some(&".masgen") => return Err(PathRejection::MasgenDir),
        // A Windows drive ("C:", "c:x"), also after a leading "./".
        Some(first)
            if first.len() >= 2
                && first.as_bytes()[0].is_ascii_alphabetic()
                && first.as_bytes()[1] == b':' =>
        {
            return Err(PathRejection::Absolute)
        }
        Some(_) => {}
    }
    Ok(SafePath(parts.join("/")))
}

/// Check that writing `path` under `root` cannot land outside `root` through a symlink:
/// every component that exists must resolve inside root.
pub fn check_no_symlink_escape(root: &Path, path: &SafePath) -> Result<(), PathRejection> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut cur = root.clone();
    for comp in Path::new(path.as_str()).components() {
        let Component::Normal(name) = comp else {
            return Err(PathRejection::ParentDir);
        };
        cur.push(name);
        match std::fs::symlink_metadata(&cur) {
            Ok(meta) if meta.file_type().is_symlink() => {
                match cur.canonicalize() {
                    Ok(target) if target.starts_with(&root) => cur = target,
                    // A dangling link or one pointing outside: writing through it escapes.
                    _ => return Err(PathRejection::SymlinkEscape),
                }
            }
            Ok(_) => {}
            Err(_) => break, // does not exist yet: nothing below can be a link
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        let cases = [
            ("", PathRejection::Empty),
            ("/etc/passwd", PathRejection::Absolute),
            ("C:/x", PathRejection::Absolute),
            ("./r:", PathRejection::Absolute),
            ("~/x", PathRejection::Absolute),
            ("../x", PathRejection::ParentDir),
            ("a/../../x", PathRejection::ParentDir),
            ("a\\b", PathRejection::Backslash),
            ("a\0b", PathRejection::Nul),
            (".masgen/state.json", PathRejection::MasgenDir),
            ("./.masgen/x", PathRejection::MasgenDir),
            (".git/config", PathRejection::GitDir),
            ("svc/.git/hooks/pre-commit", PathRejection::GitDir),
            ("svc/", PathRejection::NotAFile),
        ];
        for (p, want) in cases {
            assert_eq!(check_path(p), Err(want), "{p:?}");
        }
    }

    #[test]
    fn normal_paths_are_normalised() {
        assert_eq!(
            check_path("./agent1//app.py").unwrap().as_str(),
            "agent1/app.py"
        );
        assert_eq!(
            check_path("docker-compose.yml").unwrap().as_str(),
            "docker-compose.yml"
        );
        assert_eq!(
            check_path("svc/.masgen-notes").unwrap().as_str(),
            "svc/.masgen-notes"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escapes_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        std::fs::create_dir(root.path().join("inner")).unwrap();
        std::os::unix::fs::symlink(root.path().join("inner"), root.path().join("ok")).unwrap();
        let escape = check_path("link/x.txt").unwrap();
        assert_eq!(
            check_no_symlink_escape(root.path(), &escape),
            Err(PathRejection::SymlinkEscape)
        );
        let fine = check_path("ok/x.txt").unwrap();
        assert_eq!(check_no_symlink_escape(root.path(), &fine), Ok(()));
    }
}
