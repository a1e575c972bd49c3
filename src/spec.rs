//! The spec: the plain-English description of the system, given inline or as `@path`.

use std::path::{Path, PathBuf};

/// The largest spec (or change request) masgen reads: 200 KiB, far more than any system's
/// description, and a file that size is most likely the wrong file.
pub const MAX_SPEC_BYTES: u64 = 200 * 1024;

/// Why a spec could not be loaded. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the spec is empty: describe the system in words, or pass @path/to/spec.txt")]
    Empty,
    #[error("spec file {path} is empty: write the system's description into it")]
    EmptyFile { path: PathBuf },
    #[error("spec file {path} does not exist: check the path after '@'")]
    Missing { path: PathBuf },
    #[error("spec file {path} is a directory: pass a text file, e.g. @{path}/spec.txt")]
    Directory { path: PathBuf },
    #[error(
        "spec file {path} is not UTF-8 text (invalid byte at offset {offset}): save it as UTF-8"
    )]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("the {what} is {size}, more than masgen reads ({} KiB): describe the system in fewer words, or check that you named the right file", MAX_SPEC_BYTES / 1024)]
    TooLarge { what: String, size: String },
    #[error("cannot read spec file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Read a spec from a file. The text is trimmed; an empty file is an error.
pub fn load_spec_from_file(path: impl AsRef<Path>) -> Result<String, SpecError> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing {
            path: path.to_path_buf(),
        },
        _ => SpecError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if meta.is_dir() {
        return Err(SpecError::Directory {
            path: path.to_path_buf(),
        });
    }
    let too_large = |size: String| SpecError::TooLarge {
        what: format!("spec file {}", path.display()),
        size,
    };
    if meta.len() > MAX_SPEC_BYTES {
        return Err(too_large(format!("{} KiB", meta.len().div_ceil(1024))));
    }
    // A device or a pipe has no length to check (`@/dev/zero`): read no more than the limit.
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_SPEC_BYTES + 1),
        &mut bytes,
    )
    .map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(too_large(format!(
            "more than {} KiB",
            MAX_SPEC_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| SpecError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(SpecError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(text.to_string())
}

/// Resolve a SPEC argument: `@path` reads the file, anything else is the spec itself.
pub fn resolve_spec_arg(arg: &str) -> Result<String, SpecError> {
    match arg.strip_prefix('@') {
        Some(path) if !path.trim().is_empty() => load_spec_from_file(path.trim()),
        Some(_) => Err(SpecError::Empty),
        None if arg.trim().is_empty() => Err(SpecError::Empty),
        None => check_size(arg.trim(), "spec").map(str::to_string),
    }
}

/// `text` (a spec or change request given inline), refused when larger than the limit.
pub fn check_size<'a>(text: &'a str, what: &str) -> Result<&'a str, SpecError> {
    if text.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::TooLarge {
            what: what.to_string(),
            size: format!("{} KiB", text.len().div_ceil(1024)),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_larger_than_the_limit_is_refused_before_it_is_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.txt");
        std::fs::write(&big, "x".repeat(MAX_SPEC_BYTES as usize + 1)).unwrap();
        let e = load_spec_from_file(&big).unwrap_err().to_string();
        assert!(
            e.contains("is 201 KiB, more than masgen reads (200 KiB)"),
            "{e}"
        );
        // A device has no length: it is read up to the limit, not until memory runs out.
        let e = load_spec_from_file("/dev/zero").unwrap_err().to_string();
        assert!(e.contains("more than 200 KiB"), "{e}");
        assert!(check_size(&"y".repeat(300 * 1024), "change request").is_err());
    }

    #[test]
    fn inline_spec_is_trimmed() {
        assert_eq!(resolve_spec_arg("  two agents \n").unwrap(), "two agents");
    }

    #[test]
    fn empty_and_blank_specs_are_refused() {
        assert!(matches!(resolve_spec_arg("   "), Err(SpecError::Empty)));
        assert!(matches!(resolve_spec_arg("@"), Err(SpecError::Empty)));
    }

    #[test]
    fn file_errors_are_distinguished() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        assert!(matches!(
            load_spec_from_file(&missing),
            Err(SpecError::Missing { .. })
        ));
        assert!(matches!(
            load_spec_from_file(dir.path()),
            Err(SpecError::Directory { .. })
        ));
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"ok\xff\xfe").unwrap();
        assert!(matches!(
            load_spec_from_file(&bad),
            Err(SpecError::NotUtf8 { offset: 2, .. })
        ));
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "\n  \n").unwrap();
        assert!(matches!(
            load_spec_from_file(&empty),
            Err(SpecError::EmptyFile { .. })
        ));
    }
}
