//! Read a compose project as Docker Compose reads it: the `.env` file (or `--env-file`),
//! the files named by `-f` or `COMPOSE_FILE` (or the default file and its override), each
//! parsed and then substituted value by value, their `include`s, merged in order, `extends`
//! resolved, `env_file`s folded into `environment`, profiles applied, and validated. Every
//! error names the file, line and column it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dotenv::variable;
pub use super::dotenv::{read_dotenv, read_env_files};
pub use super::error::ComposeError;
use super::model::Compose;
use super::reader::{check_keys, parse_doc, Reader};
use super::yaml::{Doc, Mark};

/// The names Compose looks for, in its order.
pub const COMPOSE_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// How to read a project, as `docker compose` takes it: `-f`, `-p` and `--env-file`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Compose files, relative to the project's folder; none: `COMPOSE_FILE`, else the default.
    pub files: Vec<PathBuf>,
    /// The project name (`-p`); else `COMPOSE_PROJECT_NAME`, the file's `name:`, the folder.
    pub project_name: Option<String>,
    /// Files of variables read instead of the folder's `.env`, in order.
    pub env_files: Vec<PathBuf>,
    /// Profiles active besides COMPOSE_PROFILES's (`--profile`).
    pub profiles: Vec<String>,
    /// The project directory (`--project-directory`, relative to the folder): relative
    /// paths, `.env` and the default project name are taken from it. None: the first
    /// compose file's folder, as Compose decides it.
    pub project_directory: Option<PathBuf>,
    /// Also merge the project's [`SMOKE_FILE`] (the checks `masgen smoke` wrote) last,
    /// when it is there and not named already. Compose reads it only when named (`-f`):
    /// `masgen config` leaves it out, verification takes it in.
    pub smoke_file: bool,
}

/// The compose file `masgen smoke` writes its checks' services into, beside the project's
/// own files: Compose's multi-file merge adds it (`-f ... -f compose.smoke.yaml`).
pub const SMOKE_FILE: &str = "compose.smoke.yaml";

/// A loaded compose project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding the compose file; relative paths resolve against it.
    pub root: PathBuf,
    pub file: PathBuf,
    /// Files merged over `file`, in order: its override file, or the later `-f` /
    /// `COMPOSE_FILE` files.
    pub merged_files: Vec<PathBuf>,
    /// Files brought in by `include:`, in the order read.
    pub included_files: Vec<PathBuf>,
    /// The included file each service brought in by `include:` is written in.
    pub defined_in: BTreeMap<String, PathBuf>,
    /// Services that extend a service of another file: those files (`extends: {file: ...}`).
    pub extended_from: BTreeMap<String, Vec<PathBuf>>,
    /// Project name: `-p`, `COMPOSE_PROJECT_NAME`, the file's `name:`, else the folder's.
    pub name: String,
    /// What the project means: every value substituted, `env_file` folded into
    /// `environment`, inactive profiles' services left out.
    pub compose: Compose,
    /// Services in start order (dependencies first).
    pub order: Vec<String>,
    /// Keys ignored by the rule, unset variables and other things that do not stop the run.
    pub warnings: Vec<String>,
    /// The project's variables from `.env` (or `--env-file`), read once.
    pub dotenv: BTreeMap<String, String>,
    /// Every profile a service names, active or not, sorted.
    pub profiles: Vec<String>,
}

impl Project {
    /// `p` as a path relative to the system's folder, if it is inside it.
    pub fn inside(&self, p: &Path) -> Option<String> {
        p.strip_prefix(&self.root)
            .ok()
            .map(|r| r.to_string_lossy().into_owned())
    }

    /// A variable as compose sees it: the environment, then `.env`.
    pub fn lookup(&self, key: &str) -> Option<String> {
        variable(&self.dotenv, key)
    }

    /// `p` relative to the system's folder, or whole when it is outside.
    pub fn rel(&self, p: &Path) -> String {
        self.inside(p).unwrap_or_else(|| p.display().to_string())
    }

    /// Every compose file the project was read from: the main one, those merged over it,
    /// and those it includes.
    pub fn all_files(&self) -> Vec<PathBuf> {
        std::iter::once(self.file.clone())
            .chain(self.merged_files.iter().cloned())
            .chain(self.included_files.iter().cloned())
            .collect()
    }
}

/// `p` with links resolved when it exists, else cleaned lexically.
fn canonical(p: &Path) -> PathBuf {
    p.canonicalize()
        .unwrap_or_else(|_| super::policy::lexical(p))
}

/// Find the compose file in `dir`.
pub fn find_compose_file(dir: &Path) -> Result<PathBuf, ComposeError> {
    // Compose prefers compose.yaml; the original tool writes docker-compose.yml. Accept all.
    COMPOSE_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| ComposeError::NotFound {
            dir: dir.to_path_buf(),
        })
}

/// A folder's name as a project name, normalised as Compose normalises it: lowercased,
/// anything but letters, digits, '-' and '_' dropped, and what precedes the first letter
/// or digit dropped too.
pub fn sanitize_project_name(s: &str) -> String {
    let out: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    let out = out.trim_start_matches(['-', '_']).to_string();
    if out.is_empty() {
        "masgen".into()
    } else {
        out
    }
}

/// A project name given by `-p` or `COMPOSE_PROJECT_NAME`: Compose takes it as it is, or
/// refuses it.
fn checked_project_name(name: &str, from: &str) -> Result<String, ComposeError> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(ComposeError::Invalid {
            file: from.to_string(),
            message: format!("invalid project name {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter or digit"),
        })
    }
}

/// Parse and validate one compose document's text (variables are not substituted), with
/// no profile active. Returns the model, the start order and warnings.
pub fn parse_compose_str(
    text: &str,
    file: &str,
) -> Result<(Compose, Vec<String>, Vec<String>), ComposeError> {
    parse_with_profiles(text, file, &[])
}

/// [`parse_compose_str`] with the given profiles active (`*`: all of them).
pub fn parse_with_profiles(
    text: &str,
    file: &str,
    active: &[String],
) -> Result<(Compose, Vec<String>, Vec<String>), ComposeError> {
    let doc = parse_doc(text, file)?;
    let mut warnings = Vec::new();
    check_keys(&doc, file, &mut warnings)?;
    let docs = [(file.to_string(), doc)];
    let mut compose = typed(docs[0].1.value.clone(), &docs, file)?;
    let place = placer(&docs, file);
    let (order, more) = super::validate::validate(&mut compose, file, active, &place)?;
    warnings.extend(more);
    Ok((compose, order, warnings))
}

/// Where `path` of the merged document is written: the last file that writes it (its
/// value won), else the one that writes most of it.
fn locate<'a>(docs: &'a [(String, Doc)], path: &[String]) -> (&'a str, Mark) {
    let best = docs.iter().rev().max_by_key(|(_, d)| {
        (0..=path.len())
            .rev()
            .find(|n| d.marks.contains_key(&path[..*n]))
            .unwrap_or(0)
    });
    match best {
        Some((name, d)) => (name, d.mark(path)),
        None => ("", Mark::default()),
    }
}

/// `file:line:column` of a path of the merged document (the label of all the files when
/// no file writes it).
fn placer<'a>(docs: &'a [(String, Doc)], label: &'a str) -> impl Fn(&[&str]) -> String + 'a {
    move |path: &[&str]| {
        let path: Vec<String> = path.iter().map(|p| p.to_string()).collect();
        match locate(docs, &path) {
            ("", _) => label.to_string(),
            (file, m) => format!("{file}:{}:{}", m.line, m.column),
        }
    }
}

/// The merged document as the typed model; a value of the wrong shape is named by its place.
fn typed(value: Value, docs: &[(String, Doc)], label: &str) -> Result<Compose, ComposeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        let (file, mark) = locate(docs, &path);
        let inner = e.into_inner().to_string();
        let inner = inner
            .split(" at line ")
            .next()
            .unwrap_or(&inner)
            .to_string();
        ComposeError::Syntax {
            file: if file.is_empty() {
                label.to_string()
            } else {
                file.to_string()
            },
            line: mark.line as u64,
            column: mark.column as u64,
            message: format!("{}: {inner}", super::keys::display_path(&path)),
        }
    })
}

/// The override file docker compose would merge over `main`: the `.override` name of the
/// same family (`compose.override.yaml` for `compose.yaml`), any spelling.
fn override_file(dir: &Path, main: &str) -> Option<PathBuf> {
    let family = if main.starts_with("docker-compose") {
        "docker-compose"
    } else {
        "compose"
    };
    ["yaml", "yml"]
        .iter()
        .map(|ext| dir.join(format!("{family}.override.{ext}")))
        .find(|p| p.is_file())
}

/// The compose files of the project in `dir`, in merge order (under its canonical path):
/// `files` (`-f`, relative to `dir`) when there are any, else `COMPOSE_FILE` from the
/// environment or `.env`, else the file found in `dir` and its override file.
pub fn compose_paths(dir: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>, ComposeError> {
    let dotenv = read_dotenv(dir);
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    paths_named(dir, &root, files, &|k| variable(&dotenv, k))
}

/// [`compose_paths`] with the folder's canonical path and its variables already read.
fn paths_named(
    dir: &Path,
    root: &Path,
    files: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<PathBuf>, ComposeError> {
    // Like docker compose: COMPOSE_FILE, separated by COMPOSE_PATH_SEPARATOR (`:`).
    let from_env: Vec<PathBuf> = match lookup("COMPOSE_FILE").filter(|f| !f.trim().is_empty()) {
        Some(list) => {
            let sep = lookup("COMPOSE_PATH_SEPARATOR")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| ":".into());
            list.split(sep.as_str())
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(PathBuf::from)
                .collect()
        }
        None => Vec::new(),
    };
    let (named, from) = if !files.is_empty() {
        (files.to_vec(), "-f")
    } else {
        (from_env, "COMPOSE_FILE")
    };
    if named.is_empty() {
        let main = find_compose_file(dir)?;
        let main_name = main
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(std::iter::once(root.join(&main_name))
            .chain(override_file(root, &main_name))
            .collect());
    }
    let mut paths = Vec::new();
    for f in named {
        let p = super::policy::lexical(&root.join(&f));
        if !p.is_file() {
            return Err(ComposeError::Listed {
                path: p,
                from: from.into(),
            });
        }
        paths.push(p);
    }
    Ok(paths)
}

/// Load the compose project in `dir`: find the file (and its override file), substitute
/// from the environment and `.env` (the environment wins), merge, validate.
pub fn load_project(dir: &Path) -> Result<Project, ComposeError> {
    load_with(dir, &LoadOptions::default())
}

/// [`load_project`] with the compose files named: `files` (`-f`, relative to `dir`) when
/// there are any, else `COMPOSE_FILE` from the environment or `.env`, else the file found
/// in `dir` and its override file. Later files are merged over earlier ones.
pub fn load_project_files(dir: &Path, files: &[PathBuf]) -> Result<Project, ComposeError> {
    load_with(
        dir,
        &LoadOptions {
            files: files.to_vec(),
            ..Default::default()
        },
    )
}

/// Load the project in `dir` as `docker compose` would with these options.
/// Resolve `extends` in the merged document, with the tags of the project's own files
/// (the first read, in order); returns, per service, the files it inherits from.
fn resolve_extends(
    reader: &mut Reader,
    doc: &mut Value,
    root: &Path,
    paths: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, Vec<PathBuf>>, ComposeError> {
    if !super::extends::uses_extends(doc) {
        return Ok(BTreeMap::new());
    }
    let own: Vec<String> = paths.iter().map(|p| reader.shown(p)).collect();
    let tags: Vec<super::merge::Tagged> = reader
        .docs
        .iter()
        .filter(|(name, _)| own.contains(name))
        .flat_map(|(_, d)| d.tags.clone())
        .collect();
    let cell = std::cell::RefCell::new(reader);
    let load = |p: &Path| cell.borrow_mut().read(p, lookup).map(|(v, _)| v);
    super::extends::resolve_tagged(doc, root, &paths[0], &load, &tags)
}

/// The active profiles (COMPOSE_PROFILES, from the environment or `.env`, comma-separated,
/// as docker compose reads it) and every profile the services name, sorted.
fn profiles_of(
    compose: &Compose,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let active: Vec<String> = lookup("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let mut profiles: Vec<String> = compose
        .services
        .values()
        .flat_map(|s| s.profiles.clone())
        .collect();
    profiles.sort();
    profiles.dedup();
    (active, profiles)
}

/// Which included file defines each service brought in by `include:`.
fn defined_in(reader: &Reader) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for file in &reader.included {
        let shown = reader.shown(file);
        let services = reader
            .docs
            .iter()
            .filter(|(n, _)| *n == shown)
            .flat_map(|(_, d)| d.value.get("services").and_then(Value::as_object).cloned())
            .flat_map(|s| s.keys().cloned().collect::<Vec<_>>());
        for service in services {
            out.insert(service, file.clone());
        }
    }
    out
}

pub fn load_with(dir: &Path, opts: &LoadOptions) -> Result<Project, ComposeError> {
    let work = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let given = opts
        .project_directory
        .as_ref()
        .map(|p| canonical(&work.join(p)));
    // COMPOSE_FILE may come from the .env of the project directory given, else the folder.
    let first = given.clone().unwrap_or_else(|| work.clone());
    let first_env = read_env_files(&first, &opts.env_files)?;
    let mut paths = paths_named(dir, &work, &opts.files, &|k| variable(&first_env, k))?;
    // The project directory: given, else the first compose file's folder; its .env holds
    // the project's variables, and every relative path is resolved against it.
    let root = given.unwrap_or_else(|| canonical(paths[0].parent().unwrap_or(&work)));
    let dotenv = if root == first {
        first_env
    } else {
        read_env_files(&root, &opts.env_files)?
    };
    let lookup = |k: &str| variable(&dotenv, k);
    let smoke = root.join(SMOKE_FILE);
    if opts.smoke_file && smoke.is_file() && !paths.contains(&smoke) {
        paths.push(smoke);
    }
    let mut reader = Reader::new(root.clone());
    let label = paths
        .iter()
        .map(|p| reader.shown(p))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut doc = super::include::merged(&mut reader, &paths, &lookup, &[])?;
    let extended_from = resolve_extends(&mut reader, &mut doc, &root, &paths, &lookup)?;
    let mut compose = typed(doc, &reader.docs, &label)?;
    super::envfile::fold(&mut compose, &root, &lookup).map_err(|e| ComposeError::Invalid {
        file: label.clone(),
        message: e.to_string(),
    })?;
    let (mut active, profiles) = profiles_of(&compose, &lookup);
    active.extend(opts.profiles.iter().cloned());
    let place = placer(&reader.docs, &label);
    let (order, more) = super::validate::validate(&mut compose, &label, &active, &place)?;
    let mut warnings = std::mem::take(&mut reader.warnings);
    warnings.extend(reader.unset.iter().map(|v| {
        format!("the \"{v}\" variable is not set: it reads as a blank string (set it in the environment or .env, or give a default with ${{{v}:-...}})")
    }));
    warnings.extend(more);
    let name = project_name(opts, &lookup, &compose, &root)?;
    let defined_in = defined_in(&reader);
    let mut paths = paths.into_iter();
    let file = paths.next().expect("one file at least");
    Ok(Project {
        root,
        file,
        merged_files: paths.collect(),
        included_files: reader.included,
        defined_in,
        extended_from,
        name,
        compose,
        order,
        warnings,
        dotenv,
        profiles,
    })
}

/// The project's name: `-p`, else `COMPOSE_PROJECT_NAME`, else the file's `name:`, else
/// the folder's name, normalised.
fn project_name(
    opts: &LoadOptions,
    lookup: &dyn Fn(&str) -> Option<String>,
    compose: &Compose,
    root: &Path,
) -> Result<String, ComposeError> {
    if let Some(p) = &opts.project_name {
        return checked_project_name(p, "-p/--project-name");
    }
    if let Some(p) = lookup("COMPOSE_PROJECT_NAME").filter(|p| !p.is_empty()) {
        return checked_project_name(&p, "COMPOSE_PROJECT_NAME");
    }
    let folder = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "masgen".into());
    Ok(sanitize_project_name(
        compose
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&folder),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_substituted_in_parsed_values_never_in_the_text() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(".env"),
            "CMD=\"a: b #c\"\nLIST=[x]\nMULTI=\"one\\ntwo\"\nTAG=1.2\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("compose.yaml"),
            "services:\n  web:\n    image: \"busybox:${TAG}\"\n    command: [\"$CMD\", \"${LIST}\", \"$${KEPT}\"]\n    environment:\n      M: ${MULTI}\n      U: ${MASGEN_TEST_UNSET_X}\n      U2: $MASGEN_TEST_UNSET_X\n",
        )
        .unwrap();
        let p = load_project(d.path()).unwrap();
        let web = &p.compose.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox:1.2"));
        assert_eq!(
            web.command.as_ref().unwrap().argv(),
            vec!["a: b #c", "[x]", "${KEPT}"]
        );
        let env = web.environment.as_ref().unwrap().pairs();
        assert_eq!(env[0], ("M".to_string(), Some("one\ntwo".to_string())));
        assert_eq!(env[1], ("U".to_string(), Some(String::new())));
        let unset: Vec<&String> = p
            .warnings
            .iter()
            .filter(|w| w.contains("MASGEN_TEST_UNSET_X"))
            .collect();
        assert_eq!(unset.len(), 1, "one warning per variable: {:?}", p.warnings);
        // A required variable names itself, its message, and where it is written.
        std::fs::write(
            d.path().join("compose.yaml"),
            "services:\n  web:\n    image: x\n    environment:\n      K: ${MASGEN_TEST_UNSET_X:?set the key first}\n",
        )
        .unwrap();
        let e = load_project(d.path()).unwrap_err().to_string();
        assert_eq!(e, "compose.yaml:5:7: services.web.environment.K: required variable MASGEN_TEST_UNSET_X is missing a value: set the key first");
    }

    #[test]
    fn merge_keys_extensions_and_unknown_keys() {
        let text = "x-common: &common\n  restart: \"no\"\n  environment:\n    A: \"1\"\nservices:\n  web:\n    <<: *common\n    image: busybox:latest\n    x-note: kept out\n    build:\n      context: .\n";
        let (compose, order, warnings) = parse_compose_str(text, "compose.yml").unwrap();
        assert_eq!(compose.services["web"].restart.as_deref(), Some("no"));
        assert_eq!(order, vec!["web"]);
        assert!(warnings.is_empty(), "{warnings:?}");
        // A key Compose does not know changes what runs in a way nobody can tell: refused,
        // with its place, before anything runs (it was a warning once).
        let unknown = text.replace("    x-note: kept out\n", "    frobnicate: true\n");
        let err = parse_compose_str(&unknown, "compose.yml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("compose.yml:9:5: services.web.frobnicate: 'frobnicate' is not a service key Compose knows"),
            "{err}"
        );
    }

    #[test]
    fn services_of_inactive_profiles_are_left_out_like_docker_compose() {
        let text = "services:\n  app:\n    image: x\n  debug:\n    image: y\n    profiles: [debug, tools]\n  seed:\n    image: z\n    profiles: [seed]\n";
        let (c, order, warnings) = parse_compose_str(text, "c.yml").unwrap();
        assert_eq!(order, vec!["app"]);
        assert!(!c.services.contains_key("debug"));
        assert!(
            warnings.iter().any(|w| w
                .contains("service 'debug' runs only with profile(s) debug, tools")
                && w.contains("COMPOSE_PROFILES=debug")),
            "{warnings:?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("key 'profiles'")),
            "profiles is understood: {warnings:?}"
        );
        let (_, order, _) = parse_with_profiles(text, "c.yml", &["tools".into()]).unwrap();
        assert_eq!(order, vec!["app", "debug"]);
        let (_, order, warnings) = parse_with_profiles(text, "c.yml", &["*".into()]).unwrap();
        assert_eq!((order.len(), warnings.len()), (3, 0));
        let needs = "services:\n  app:\n    image: x\n    depends_on: [db]\n  db:\n    image: y\n    profiles: [local]\n";
        let err = parse_compose_str(needs, "c.yml").unwrap_err().to_string();
        assert!(err.contains("service 'app' depends on 'db', which runs only with profile(s) local: activate one (COMPOSE_PROFILES=local)"), "{err}");
        assert!(parse_with_profiles(needs, "c.yml", &["local".into()]).is_ok());
        let optional = "services:\n  app:\n    image: x\n    depends_on:\n      db: {condition: service_healthy, required: false}\n      ghost: {required: false}\n  db:\n    image: y\n    profiles: [local]\n";
        let (c, order, warnings) = parse_compose_str(optional, "c.yml").unwrap();
        assert_eq!(order, vec!["app"]);
        assert!(c.services["app"]
            .depends_on
            .as_ref()
            .unwrap()
            .entries()
            .is_empty());
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("optional dependency 'db' is not there")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("optional dependency 'ghost' is not there")),
            "{warnings:?}"
        );
        let (c, _, _) = parse_with_profiles(optional, "c.yml", &["local".into()]).unwrap();
        assert_eq!(
            c.services["app"]
                .depends_on
                .as_ref()
                .unwrap()
                .entries()
                .len(),
            1,
            "present, it is waited for"
        );
    }

    #[test]
    fn restart_policies_are_checked() {
        use crate::compose::model::parse_restart;
        assert_eq!(parse_restart("no"), Ok(None));
        assert_eq!(parse_restart("always"), Ok(Some(("always", None))));
        assert_eq!(
            parse_restart("on-failure:5"),
            Ok(Some(("on-failure", Some(5))))
        );
        let err = parse_compose_str(
            "services:\n  a:\n    image: x\n    restart: sometimes\n",
            "c.yml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "service 'a': restart: 'sometimes' is not a restart policy: use no, always"
            ),
            "{err}"
        );
        assert!(parse_compose_str(
            "services:\n  a:\n    image: x\n    restart: on-failure:x\n",
            "c.yml"
        )
        .is_err());
    }

    #[test]
    fn files_named_by_f_or_compose_file_are_merged_in_order_instead_of_the_default() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("docker-compose.yml"),
            "services:\n  default:\n    image: x\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("docker-compose.override.yml"),
            "services:\n  default:\n    image: y\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("ci")).unwrap();
        std::fs::write(
            d.path().join("base.yml"),
            "services:\n  app:\n    image: x\n    command: [\"prod\"]\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("ci/test.yml"),
            "services:\n  app:\n    command: [\"test\"]\n  db:\n    image: y\n",
        )
        .unwrap();
        let p = load_project_files(d.path(), &["base.yml".into(), "ci/test.yml".into()]).unwrap();
        assert_eq!(
            p.order,
            vec!["app", "db"],
            "the default file and its override are not read"
        );
        assert_eq!(
            p.compose.services["app"].command.as_ref().unwrap().argv(),
            vec!["test"]
        );
        assert_eq!(
            (
                p.rel(&p.file),
                p.merged_files.iter().map(|f| p.rel(f)).collect::<Vec<_>>()
            ),
            ("base.yml".into(), vec!["ci/test.yml".to_string()])
        );
        // COMPOSE_FILE from .env, with its separator; -f wins over it.
        std::fs::write(
            d.path().join(".env"),
            "COMPOSE_PATH_SEPARATOR=,\nCOMPOSE_FILE=base.yml,ci/test.yml\n",
        )
        .unwrap();
        assert_eq!(load_project(d.path()).unwrap().order, vec!["app", "db"]);
        assert_eq!(
            load_project_files(d.path(), &["base.yml".into()])
                .unwrap()
                .order,
            vec!["app"]
        );
        std::fs::write(d.path().join(".env"), "COMPOSE_FILE=base.yml:ci/nope.yml\n").unwrap();
        let err = load_project(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("ci/nope.yml (named by COMPOSE_FILE) does not exist"),
            "{err}"
        );
        let err = load_project_files(d.path(), &["nope.yml".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope.yml (named by -f) does not exist"),
            "{err}"
        );
        // A syntax error names the file it is in, relative to the folder.
        std::fs::write(
            d.path().join("ci/test.yml"),
            "services:\n  app:\n    command: [unclosed\n",
        )
        .unwrap();
        match load_project_files(d.path(), &["base.yml".into(), "ci/test.yml".into()]).unwrap_err()
        {
            ComposeError::Syntax { file, .. } => assert_eq!(file, "ci/test.yml"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn reset_and_override_tags_in_an_override_file_apply_when_the_project_loads() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("compose.yaml"), "services:\n  app:\n    image: x\n    ports: [\"80:80\"]\n    environment: {A: \"1\"}\n").unwrap();
        std::fs::write(
            d.path().join("compose.override.yaml"),
            "services:\n  app:\n    ports: !reset []\n    environment: !override {B: \"2\"}\n",
        )
        .unwrap();
        let p = load_project(d.path()).unwrap();
        let app = &p.compose.services["app"];
        assert!(app.ports.is_empty());
        assert_eq!(
            app.environment.as_ref().unwrap().pairs(),
            vec![("B".to_string(), Some("2".to_string()))]
        );
    }

    #[test]
    fn an_override_file_is_merged_over_the_main_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("docker-compose.yml"), "services:\n  app:\n    image: x\n    command: [\"prod\"]\n    environment: [\"A=1\"]\n").unwrap();
        let p = load_project(d.path()).unwrap();
        assert_eq!(
            p.compose.services["app"].command.as_ref().unwrap().argv(),
            vec!["prod"]
        );
        std::fs::write(d.path().join("docker-compose.override.yml"), "services:\n  app:\n    command: [\"dev\"]\n    environment:\n      B: \"${MASGEN_TEST_UNSET:-2}\"\n    ports: [\"80:80\"]\n  extra:\n    image: y\n    depends_on: [app]\n").unwrap();
        let p = load_project(d.path()).unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        assert_eq!(p.order, vec!["app", "extra"]);
        let app = &p.compose.services["app"];
        assert_eq!(app.command.as_ref().unwrap().argv(), vec!["dev"]);
        assert_eq!(
            app.environment.as_ref().unwrap().pairs(),
            vec![
                ("A".to_string(), Some("1".to_string())),
                ("B".to_string(), Some("2".to_string()))
            ]
        );
        assert_eq!(app.ports.len(), 1);
        // A compose.yaml project takes compose.override.yaml, not the docker-compose one.
        assert!(override_file(d.path(), "compose.yaml").is_none());
        // Each file's syntax errors keep their own name and line.
        std::fs::write(
            d.path().join("docker-compose.override.yml"),
            "services:\n  app:\n    command: [unclosed\n",
        )
        .unwrap();
        match load_project(d.path()).unwrap_err() {
            ComposeError::Syntax { file, line, .. } => assert_eq!(
                (file.as_str(), line >= 3),
                ("docker-compose.override.yml", true)
            ),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn compose_profiles_come_from_the_dotenv_file_too() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("compose.yaml"), "services:\n  app:\n    image: x\n  extra:\n    image: y\n    profiles: [masgen-test-extra]\n").unwrap();
        assert_eq!(load_project(d.path()).unwrap().order, vec!["app"]);
        std::fs::write(
            d.path().join(".env"),
            "COMPOSE_PROFILES=other, masgen-test-extra\n",
        )
        .unwrap();
        assert_eq!(load_project(d.path()).unwrap().order, vec!["app", "extra"]);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse_compose_str(
            "services:\n  web:\n    image: [unclosed\n",
            "docker-compose.yml",
        )
        .unwrap_err();
        match err {
            ComposeError::Syntax { line, .. } => assert!(line >= 3, "{line}"),
            other => panic!("{other}"),
        }
        let dup = parse_compose_str(
            "services:\n  a:\n    image: x\n  a:\n    image: y\n",
            "c.yml",
        )
        .unwrap_err();
        assert!(matches!(dup, ComposeError::Syntax { line: 4, .. }), "{dup}");
    }

    #[test]
    fn builds_go_critical_chain_first() {
        // The demo's shape: router waits on worker and ledger, monitor on router.
        let text = "services:\n  status: {image: x}\n  worker: {image: x}\n  producer: {image: x, depends_on: [worker]}\n  ledger: {image: x}\n  router: {image: x, depends_on: [worker, ledger]}\n  monitor: {image: x, depends_on: [router]}\n";
        let (compose, order, _) = parse_compose_str(text, "c.yml").unwrap();
        assert_eq!(
            order,
            ["status", "worker", "producer", "ledger", "router", "monitor"]
        );
        let builds = super::super::graph::critical_first(&compose, &order);
        assert_eq!(
            builds,
            ["worker", "ledger", "router", "status", "producer", "monitor"]
        );
    }

    #[test]
    fn unknown_dependencies_and_cycles_name_the_services() {
        let unknown = parse_compose_str(
            "services:\n  a:\n    image: x\n    depends_on: [ghost]\n",
            "c.yml",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("'ghost'"), "{unknown}");
        let cycle = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n";
        let err = parse_compose_str(cycle, "c.yml").unwrap_err();
        assert!(
            matches!(&err, ComposeError::Cycle { services, .. } if services.contains(&"a".to_string()) && services.contains(&"b".to_string())),
            "{err}"
        );
    }
}
