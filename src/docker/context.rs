//! Build contexts: a deterministic tar of a folder filtered by .dockerignore with
//! Docker's rules (not gitignore's), and its hash.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

/// `.dockerignore` with Docker's semantics: patterns are anchored at the context root,
/// `*` does not cross `/`, `**` does, a pattern that matches a parent folder excludes
/// what is inside, the last matching pattern wins, and `!` re-includes.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<(bool, usize, GlobMatcher)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> DockerIgnore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            let depth = pat.split('/').count();
            if let Ok(g) = GlobBuilder::new(&pat)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                rules.push((negate, depth, g.compile_matcher()));
            }
        }
        DockerIgnore { rules }
    }

    pub fn load(context: &Path) -> DockerIgnore {
        std::fs::read_to_string(context.join(".dockerignore"))
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }

    /// Whether `rel` (relative, `/`-separated) is left out of the context.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        let parts: Vec<&str> = rel.split('/').collect();
        for (negate, depth, glob) in &self.rules {
            let mut matched = glob.is_match(rel);
            if !matched && parts.len() > 1 {
                // Docker also tries the pattern against the path's parent folders, cut to
                // as many components as the pattern has.
                let n = (*depth).min(parts.len() - 1);
                matched = (1..=n).any(|k| glob.is_match(parts[..k].join("/")));
            }
            if matched {
                excluded = !negate;
            }
        }
        excluded
    }
}

/// Clean a pattern like Go's filepath.Clean, without a leading `/`.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    out.join("/")
}

/// A build context ready to send.
pub struct Context {
    pub tar: Vec<u8>,
    /// blake3 hex of the tar and the build settings.
    pub hash: String,
    pub files: Vec<String>,
}

/// Tar the context folder. `dockerfile` is the Dockerfile path relative to the context; it
/// and `.dockerignore` are always sent. `settings` (args, target) go into the hash.
///
/// The Dockerfile (after the folders above it) is the archive's first entry. BuildKit tells
/// a tar from a bare Dockerfile by reading the first header alone, so an archive opening
/// with a name over 100 bytes (a GNU long-name header, which needs the next block) would be
/// read as a Dockerfile and fail with "unknown instruction: ././@LongLink".
pub fn build_context(dir: &Path, dockerfile: &str, settings: &str) -> std::io::Result<Context> {
    build_context_with(dir, dockerfile, None, settings)
}

/// [`build_context`], with the Dockerfile given as text (compose's `dockerfile_inline`): it
/// goes into the archive first under the name `dockerfile`, in place of any file of that name.
pub fn build_context_with(
    dir: &Path,
    dockerfile: &str,
    inline: Option<&str>,
    settings: &str,
) -> std::io::Result<Context> {
    let ignore = DockerIgnore::load(dir);
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let mut files = Vec::new();
    let mut first = Vec::new();
    if let Some(text) = inline {
        append_text(&mut builder, dockerfile, text)?;
        first.push(dockerfile.to_string());
        files.push(dockerfile.to_string());
    } else if !dockerfile.split('/').any(|c| c == ".." || c.is_empty())
        && dir.join(dockerfile).is_file()
    {
        let parts: Vec<&str> = dockerfile.split('/').collect();
        for k in 1..parts.len() {
            let folder = parts[..k].join("/");
            builder.append_dir(&folder, dir.join(&folder))?;
            first.push(folder);
        }
        builder.append_path_with_name(dir.join(dockerfile), dockerfile)?;
        first.push(dockerfile.to_string());
        files.push(dockerfile.to_string());
    }
    let always = |rel: &str| rel == dockerfile || rel == ".dockerignore";
    append_tree(&mut builder, dir, "", &ignore, &always, &first, &mut files)?;
    finish(builder, files, settings)
}

/// A file of `text`, mode 0644, into the archive.
fn append_text(builder: &mut tar::Builder<Vec<u8>>, name: &str, text: &str) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, text.as_bytes())
}

fn finish(
    builder: tar::Builder<Vec<u8>>,
    mut files: Vec<String>,
    settings: &str,
) -> std::io::Result<Context> {
    let tar = builder.into_inner()?;
    files.sort();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&tar);
    hasher.update(settings.as_bytes());
    Ok(Context {
        hash: hasher.finalize().to_hex().to_string(),
        tar,
        files,
    })
}

/// Append the files of `dir` that `ignore` keeps (and those `always` names) under
/// `prefix`, in name order, leaving out the names in `skip`.
fn append_tree(
    builder: &mut tar::Builder<Vec<u8>>,
    dir: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
    always: &dyn Fn(&str) -> bool,
    skip: &[String],
    files: &mut Vec<String>,
) -> std::io::Result<()> {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walker.into_iter().filter_entry(|e| {
        let rel = rel_path(dir, e.path());
        // masgen's own folder (state, reports, logs of every run) is never the image's:
        // sending it would put masgen's logs into the image and change its hash each run.
        if rel == crate::workspace::MASGEN_DIR {
            return false;
        }
        // A folder can be pruned only when no `!` rule could re-include something in it.
        !(e.file_type().is_dir() && ignore.excluded(&rel) && !ignore.rules.iter().any(|r| r.0))
            || always(&rel)
    }) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = rel_path(dir, entry.path());
        if (ignore.excluded(&rel) && !always(&rel)) || skip.contains(&rel) {
            continue;
        }
        let name = format!("{prefix}{rel}");
        if entry.file_type().is_dir() {
            builder.append_dir(&name, entry.path())?;
        } else {
            builder.append_path_with_name(entry.path(), &name)?;
            files.push(rel);
        }
    }
    Ok(())
}

/// The context of a named build context's image: a Dockerfile that copies the folder's
/// files (its `.dockerignore` applied, as BuildKit applies it to a named context) to the
/// root of an empty image. They go under `ctx/`, so the Dockerfile is not among them.
pub fn folder_image_context(dir: &Path) -> std::io::Result<Context> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a folder", dir.display()),
        ));
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    append_text(&mut builder, "Dockerfile", FOLDER_IMAGE_DOCKERFILE)?;
    builder.append_dir("ctx", dir)?;
    let mut files = Vec::new();
    let ignore = DockerIgnore::load(dir);
    append_tree(
        &mut builder,
        dir,
        "ctx/",
        &ignore,
        &|_| false,
        &[],
        &mut files,
    )?;
    finish(builder, files, "")
}

/// The Dockerfile of a named context's image.
const FOLDER_IMAGE_DOCKERFILE: &str = "FROM scratch\nCOPY ctx/ /\n";

fn rel_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| {
            r.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masgen_s_own_folder_never_enters_a_context_nor_its_hash() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM busybox\nCOPY . /app\n").unwrap();
        std::fs::create_dir_all(d.path().join(".masgen/logs")).unwrap();
        std::fs::write(d.path().join(".masgen/report.json"), "{}").unwrap();
        let before = build_context(d.path(), "Dockerfile", "").unwrap();
        assert_eq!(before.files, vec!["Dockerfile"]);
        std::fs::write(d.path().join(".masgen/logs/api.log"), "a new run\n").unwrap();
        let after = build_context(d.path(), "Dockerfile", "").unwrap();
        assert_eq!(
            before.hash, after.hash,
            "a verify run does not change the image"
        );
        // A folder that only looks like it, deeper down, is the user's.
        std::fs::create_dir_all(d.path().join("src/.masgen")).unwrap();
        std::fs::write(d.path().join("src/.masgen/x"), "mine").unwrap();
        let deeper = build_context(d.path(), "Dockerfile", "").unwrap();
        assert!(deeper.files.contains(&"src/.masgen/x".to_string()));
    }

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let root_only = DockerIgnore::parse("*.log");
        assert!(root_only.excluded("a.log"));
        assert!(!root_only.excluded("sub/a.log"), "* does not cross /");
        let all = DockerIgnore::parse("**/*.log");
        assert!(all.excluded("a.log") && all.excluded("sub/deep/a.log"));
        let keep = DockerIgnore::parse("*.log\n!keep.log");
        assert!(keep.excluded("a.log") && !keep.excluded("keep.log"));
        let dir = DockerIgnore::parse("build/\n/node_modules");
        assert!(
            dir.excluded("build/x/y.o")
                && dir.excluded("build")
                && dir.excluded("node_modules/a/b.js")
        );
        assert!(!dir.excluded("src/build.rs"));
        let last_wins = DockerIgnore::parse("!a.txt\n*.txt");
        assert!(last_wins.excluded("a.txt"));
    }

    #[test]
    fn context_is_deterministic_filtered_and_keeps_the_dockerfile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM busybox:latest\n").unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "Dockerfile\n*.log\n!keep.log\nsecret/\n",
        )
        .unwrap();
        std::fs::write(d.path().join("a.log"), "x").unwrap();
        std::fs::write(d.path().join("keep.log"), "x").unwrap();
        std::fs::create_dir(d.path().join("secret")).unwrap();
        std::fs::write(d.path().join("secret/key"), "x").unwrap();
        std::fs::write(d.path().join("app.py"), "print(1)").unwrap();
        let a = build_context(d.path(), "Dockerfile", "").unwrap();
        assert_eq!(
            a.files,
            vec![".dockerignore", "Dockerfile", "app.py", "keep.log"]
        );
        let b = build_context(d.path(), "Dockerfile", "").unwrap();
        assert_eq!(a.hash, b.hash);
        let c = build_context(d.path(), "Dockerfile", "target=x").unwrap();
        assert_ne!(a.hash, c.hash, "settings change the hash");
        std::fs::write(d.path().join("app.py"), "print(2)").unwrap();
        assert_ne!(
            a.hash,
            build_context(d.path(), "Dockerfile", "").unwrap().hash
        );
    }

    #[test]
    fn the_dockerfile_opens_the_archive_before_any_long_name() {
        let d = tempfile::tempdir().unwrap();
        let long = "0".repeat(120);
        std::fs::create_dir_all(d.path().join("docker/app")).unwrap();
        std::fs::write(
            d.path().join("docker/app/Dockerfile"),
            "FROM busybox:latest\n",
        )
        .unwrap();
        std::fs::write(d.path().join(&long), "x").unwrap();
        let c = build_context(d.path(), "docker/app/Dockerfile", "").unwrap();
        let mut archive = tar::Archive::new(&c.tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "docker",
                "docker/app",
                "docker/app/Dockerfile",
                long.as_str()
            ]
        );
        // The first 512-byte header is a plain one, readable on its own.
        assert_eq!(
            c.tar[156], b'5',
            "a folder entry, not a GNU long-name header"
        );
    }
}
