//! Find, interpolate, parse and validate a compose file.

use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::graph::start_order;
use super::model::{parse_duration, Compose, BUILD_KEYS, SERVICE_KEYS, TOP_KEYS};

/// The names Compose looks for, in its order.
pub const COMPOSE_FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no compose file in {dir}: expected one of docker-compose.yml, docker-compose.yaml, compose.yml, compose.yaml")]
    NotFound { dir: PathBuf },
    #[error("{} (named by {from}) does not exist or is not a file: fix the name; paths are relative to the system's folder", path.display())]
    Listed { path: PathBuf, from: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Interpolation {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: service '{service}' depends on '{dependency}', which is not a service in this file: add it or fix the name")]
    UnknownDependency {
        file: String,
        service: String,
        dependency: String,
    },
    #[error("{file}: dependency cycle between services {}: break the cycle in depends_on", services.join(" -> "))]
    Cycle { file: String, services: Vec<String> },
    #[error(
        "{file}: service '{service}' depends on '{dependency}', which runs only with profile(s) {}: activate one (COMPOSE_PROFILES={}) or give '{dependency}' no profiles",
        profiles.join(", "), profiles[0]
    )]
    InactiveDependency {
        file: String,
        service: String,
        dependency: String,
        profiles: Vec<String>,
    },
}

/// A loaded compose project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding the compose file; relative paths resolve against it.
    pub root: PathBuf,
    pub file: PathBuf,
    /// Files merged over `file`, in order: its override file, or the later `-f` /
    /// `COMPOSE_FILE` files.
    pub merged_files: Vec<PathBuf>,
    /// Services that extend a service of another file: those files (`extends: {file: ...}`).
    pub extended_from: BTreeMap<String, Vec<PathBuf>>,
    /// Project name: the file's `name:`, else the folder's name, lowercased.
    pub name: String,
    pub compose: Compose,
    /// Services in start order (dependencies first).
    pub order: Vec<String>,
    /// Unknown keys and other things that do not stop the run.
    pub warnings: Vec<String>,
    /// The folder's `.env`, read once.
    pub dotenv: BTreeMap<String, String>,
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
        std::env::var(key)
            .ok()
            .or_else(|| self.dotenv.get(key).cloned())
    }

    /// `p` relative to the system's folder, or whole when it is outside.
    pub fn rel(&self, p: &Path) -> String {
        self.inside(p).unwrap_or_else(|| p.display().to_string())
    }
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

/// A project name Docker accepts: lowercase letters, digits, '-' and '_'.
pub fn sanitize_project_name(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches(|c| c == '-' || c == '_').to_string();
    if out.is_empty() {
        "masgen".into()
    } else {
        out
    }
}

/// Read `.env`: `KEY=VALUE` lines, `#` comments, optional `export `, quoted values.
pub fn read_dotenv(dir: &Path) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join(".env")) else {
        return vars;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            vars.insert(k.trim().to_string(), v.to_string());
        }
    }
    vars
}

/// Apply `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?msg}`, `${VAR?msg}`,
/// `$VAR` and `$$` to the text of a compose file, line by line so positions stay right.
/// Comment lines are left alone.
pub fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, (usize, usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (ln, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c != '$' {
                out.push(c);
                i += 1;
                continue;
            }
            let col = i + 1;
            match chars.get(i + 1) {
                Some('$') => {
                    out.push('$');
                    i += 2;
                }
                Some('{') => {
                    let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                        return Err((
                            ln + 1,
                            col,
                            "unterminated ${...}: add the closing '}' (write $$ for a literal $)"
                                .into(),
                        ));
                    };
                    let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                    out.push_str(&expand(&inner, lookup).map_err(|m| (ln + 1, col, m))?);
                    i += close + 3;
                }
                Some(n) if n.is_ascii_alphabetic() || *n == '_' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    out.push_str(&lookup(&name).unwrap_or_default());
                    i += 1 + name.chars().count();
                }
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        }
    }
    Ok(out)
}

fn expand(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(name_end);
    if name.is_empty() {
        return Err(format!(
            "invalid interpolation ${{{inner}}}: expected a variable name"
        ));
    }
    let value = lookup(name);
    let unset_or_empty = value.as_deref().is_none_or(str::is_empty);
    Ok(match op {
        "" => value.unwrap_or_default(),
        _ if op.starts_with(":-") => {
            if unset_or_empty {
                op[2..].to_string()
            } else {
                value.unwrap_or_default()
            }
        }
        _ if op.starts_with('-') => value.unwrap_or_else(|| op[1..].to_string()),
        _ if op.starts_with(":?") => {
            if unset_or_empty {
                return Err(format!("required variable {name} is missing: {}", &op[2..]));
            }
            value.unwrap_or_default()
        }
        _ if op.starts_with('?') => {
            value.ok_or_else(|| format!("required variable {name} is missing: {}", &op[1..]))?
        }
        _ if op.starts_with(":+") => {
            if unset_or_empty {
                String::new()
            } else {
                op[2..].to_string()
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                op[1..].to_string()
            } else {
                String::new()
            }
        }
        _ => return Err(format!("invalid interpolation ${{{inner}}}")),
    })
}

fn syntax(file: &str, e: serde_saphyr::Error) -> ComposeError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = e
        .to_string()
        .lines()
        .next()
        .unwrap_or("invalid YAML")
        .to_string();
    ComposeError::Syntax {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// Parse and validate compose text (already interpolated), with no profile active.
/// Returns the model, the start order and warnings.
pub fn parse_compose_str(
    text: &str,
    file: &str,
) -> Result<(Compose, Vec<String>, Vec<String>), ComposeError> {
    parse_with_profiles(text, file, &[])
}

/// [`parse_compose_str`] with the given profiles active (`*`: all of them). A service
/// whose profiles are all inactive is left out, as `docker compose up` leaves it out.
pub fn parse_with_profiles(
    text: &str,
    file: &str,
    active: &[String],
) -> Result<(Compose, Vec<String>, Vec<String>), ComposeError> {
    let raw: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| syntax(file, e))?;
    let mut compose: Compose = serde_saphyr::from_str(text).map_err(|e| syntax(file, e))?;
    let mut warnings = Vec::new();
    if let Some(top) = raw.as_object() {
        for key in top
            .keys()
            .filter(|k| !k.starts_with("x-") && !TOP_KEYS.contains(&k.as_str()))
        {
            warnings.push(format!(
                "{file}: top-level key '{key}' is not supported by masgen and is ignored"
            ));
        }
        if let Some(services) = top.get("services").and_then(|s| s.as_object()) {
            for (name, svc) in services {
                for key in svc.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !key.starts_with("x-") && !SERVICE_KEYS.contains(&key.as_str()) {
                        warnings.push(format!("{file}: service '{name}': key '{key}' is not supported by masgen and is ignored"));
                    }
                }
                for key in svc
                    .get("build")
                    .and_then(|b| b.as_object())
                    .into_iter()
                    .flat_map(|o| o.keys())
                {
                    if !key.starts_with("x-") && !BUILD_KEYS.contains(&key.as_str()) {
                        warnings.push(format!("{file}: service '{name}': build key '{key}' is not supported by masgen and is ignored"));
                    }
                }
            }
        }
    }
    let all_profiles = active.iter().any(|p| p == "*");
    let left_out: IndexMap<String, Vec<String>> = compose
        .services
        .iter()
        .filter(|(_, s)| {
            !s.profiles.is_empty()
                && !all_profiles
                && !s.profiles.iter().any(|p| active.contains(p))
        })
        .map(|(n, s)| (n.clone(), s.profiles.clone()))
        .collect();
    for (name, profiles) in &left_out {
        compose.services.shift_remove(name);
        warnings.push(format!(
            "{file}: service '{name}' runs only with profile(s) {}, and none is active: not started (COMPOSE_PROFILES={} starts it)",
            profiles.join(", "),
            profiles[0]
        ));
    }
    // An optional dependency (`required: false`) on a service that is not there is dropped.
    let present: Vec<String> = compose.services.keys().cloned().collect();
    for (name, svc) in compose.services.iter_mut() {
        if let Some(super::model::DependsOn::Map(deps)) = &mut svc.depends_on {
            deps.retain(|dependency, spec| {
                let optional = spec.as_ref().and_then(|s| s.required) == Some(false);
                if optional && !present.contains(dependency) {
                    warnings.push(format!("{file}: service '{name}': optional dependency '{dependency}' is not there (required: false), so it is not waited for"));
                    return false;
                }
                true
            });
        }
    }
    for (name, svc) in &compose.services {
        for (dependency, _) in svc.depends_on.iter().flat_map(|d| d.entries()) {
            if let Some(profiles) = left_out.get(&dependency) {
                return Err(ComposeError::InactiveDependency {
                    file: file.to_string(),
                    service: name.clone(),
                    dependency,
                    profiles: profiles.clone(),
                });
            }
        }
    }
    // A link or a volumes_from service is a dependency too (compose starts it first).
    let names: Vec<String> = compose.services.keys().cloned().collect();
    for (name, svc) in compose.services.iter_mut() {
        for target in svc
            .link_pairs()
            .into_iter()
            .map(|(t, _)| t)
            .chain(svc.created_after())
            .collect::<Vec<_>>()
        {
            if !names.contains(&target) {
                return Err(ComposeError::Invalid {
                    file: file.to_string(),
                    message: format!(
                        "service '{name}' links to, takes volumes from or joins a namespace of '{target}', which is not a service in this file: add it or fix the name"
                    ),
                });
            }
            if target == *name {
                return Err(ComposeError::Invalid { file: file.to_string(), message: format!("service '{name}' names itself in links, volumes_from or a service: namespace") });
            }
            let listed = svc
                .depends_on
                .as_ref()
                .is_some_and(|d| d.entries().iter().any(|(d, _)| *d == target));
            if !listed {
                let mut deps: IndexMap<String, Option<super::model::DependsSpec>> =
                    match svc.depends_on.take() {
                        Some(super::model::DependsOn::Map(m)) => m,
                        Some(super::model::DependsOn::List(l)) => {
                            l.into_iter().map(|d| (d, None)).collect()
                        }
                        None => IndexMap::new(),
                    };
                deps.insert(target, None);
                svc.depends_on = Some(super::model::DependsOn::Map(deps));
            }
        }
        if svc.logging.as_ref().and_then(|l| l.driver.as_deref()) == Some("none") {
            warnings.push(format!("{file}: service '{name}': logging driver none: masgen cannot show this service's logs when it fails"));
        }
        if let Some(p) = svc.platform.as_deref() {
            let arch = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            };
            if p.split('/').nth(1).is_none_or(|a| a != arch) {
                warnings.push(format!("{file}: service '{name}': platform {p} is not this machine's (linux/{arch}): its image must run under emulation or will not start"));
            }
        }
    }
    // Another service's namespaces are joined once its container exists; a container
    // outside the system is not the system's to join.
    for (name, svc) in compose.services.iter_mut() {
        for (key, value) in [
            ("network_mode", &mut svc.network_mode),
            ("pid", &mut svc.pid),
            ("ipc", &mut svc.ipc),
        ] {
            if value
                .as_deref()
                .is_some_and(|v| v.starts_with("container:"))
            {
                warnings.push(format!(
                    "{file}: service '{name}': {key}: {} names a container outside the system, which masgen does not join: ignored (the service gets its own {key} namespace)",
                    value.take().unwrap_or_default()
                ));
            }
        }
    }
    let invalid = |message: String| ComposeError::Invalid {
        file: file.to_string(),
        message,
    };
    if compose.services.is_empty() {
        return Err(invalid(
            "no services: add a 'services:' section with at least one service".into(),
        ));
    }
    for (kind, defined) in [("secret", &compose.secrets), ("config", &compose.configs)] {
        for (name, top) in defined {
            let top = top.clone().unwrap_or_default();
            if top
                .external
                .as_ref()
                .is_some_and(|e| e != &serde_json::Value::Bool(false))
            {
                return Err(invalid(format!(
                    "{kind} '{name}' is external, which needs Docker swarm (docker compose up cannot use it either): give it a file:, environment: or content:"
                )));
            }
            let sources = [
                top.file.is_some(),
                top.environment.is_some(),
                top.content.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if sources != 1 {
                return Err(invalid(format!(
                    "{kind} '{name}' needs exactly one of file:, environment: or content:"
                )));
            }
        }
    }
    for (name, svc) in &compose.services {
        for (kind, refs, defined) in [
            ("secret", &svc.secrets, &compose.secrets),
            ("config", &svc.configs, &compose.configs),
        ] {
            for r in refs {
                if !defined.contains_key(r.source()) {
                    return Err(invalid(format!(
                        "service '{name}' uses {kind} '{}', which is not declared under the top-level '{kind}s:': declare it",
                        r.source()
                    )));
                }
            }
        }
        if svc.image.is_none() && svc.build.is_none() {
            return Err(invalid(format!(
                "service '{name}' has neither 'image' nor 'build': give it one"
            )));
        }
        for p in &svc.ports {
            p.mappings()
                .map_err(|e| invalid(format!("service '{name}': {e}")))?;
        }
        for v in &svc.volumes {
            match v
                .mount()
                .map_err(|e| invalid(format!("service '{name}': {e}")))?
            {
                super::model::Mount::Named { name: vol, .. }
                    if !compose.volumes.contains_key(&vol) =>
                {
                    return Err(invalid(format!(
                        "service '{name}' mounts volume '{vol}', which is not declared under the top-level 'volumes:': declare it"
                    )));
                }
                _ => {}
            }
        }
        if let Some(hc) = &svc.healthcheck {
            for d in [&hc.interval, &hc.timeout, &hc.start_period]
                .into_iter()
                .flatten()
            {
                parse_duration(d)
                    .map_err(|e| invalid(format!("service '{name}' healthcheck: {e}")))?;
            }
        }
        if let Some(size) = &svc.shm_size {
            super::model::parse_bytes(&size.text())
                .map_err(|e| invalid(format!("service '{name}' shm_size: {e}")))?;
        }
        if let Some(r) = &svc.restart {
            super::model::parse_restart(r)
                .map_err(|e| invalid(format!("service '{name}': {e}")))?;
        }
        if let Some(m) = svc.memory_limit() {
            super::model::parse_bytes(&m)
                .map_err(|e| invalid(format!("service '{name}' memory limit: {e}")))?;
        }
    }
    let order = start_order(&compose).map_err(|e| match e {
        super::graph::GraphError::Unknown {
            service,
            dependency,
        } => ComposeError::UnknownDependency {
            file: file.to_string(),
            service,
            dependency,
        },
        super::graph::GraphError::Cycle(services) => ComposeError::Cycle {
            file: file.to_string(),
            services,
        },
    })?;
    Ok((compose, order, warnings))
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
    paths_named(dir, &root, files, &|k| {
        std::env::var(k).ok().or_else(|| dotenv.get(k).cloned())
    })
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
        let p = root.join(&f);
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

/// Load the compose project in `dir`: find the file (and its override file), interpolate
/// from the environment and `.env` (the environment wins), merge, parse, validate.
pub fn load_project(dir: &Path) -> Result<Project, ComposeError> {
    load_project_files(dir, &[])
}

/// [`load_project`] with the compose files named: `files` (`-f`, relative to `dir`) when
/// there are any, else `COMPOSE_FILE` from the environment or `.env`, else the file found
/// in `dir` and its override file. Later files are merged over earlier ones.
pub fn load_project_files(dir: &Path, files: &[PathBuf]) -> Result<Project, ComposeError> {
    let dotenv = read_dotenv(dir);
    let lookup = |k: &str| std::env::var(k).ok().or_else(|| dotenv.get(k).cloned());
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let paths = paths_named(dir, &root, files, &lookup)?;
    let shown = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let read = |p: &Path| -> Result<(String, serde_json::Value), ComposeError> {
        let name = shown(p);
        let text = std::fs::read_to_string(p).map_err(|source| ComposeError::Read {
            path: p.to_path_buf(),
            source,
        })?;
        let text = interpolate(&text, &lookup).map_err(|(line, column, message)| {
            ComposeError::Interpolation {
                file: name.clone(),
                line,
                column,
                message,
            }
        })?;
        let doc = serde_saphyr::from_str(&text).map_err(|e| syntax(&name, e))?;
        Ok((text, doc))
    };
    // Like docker compose: COMPOSE_PROFILES, from the environment or `.env`, comma-separated.
    let active: Vec<String> = lookup("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    // Each file's syntax errors keep their own lines; the merged document's type errors
    // name every file. `extends` is resolved in the merged document.
    let (text, mut doc) = read(&paths[0])?;
    let mut label = shown(&paths[0]);
    let mut rewritten = false;
    for over in &paths[1..] {
        let (over_text, mut over_doc) = read(over)?;
        super::merge::apply_tags(
            &mut doc,
            &mut over_doc,
            &super::merge::merge_tags(&over_text),
        );
        super::merge::merge_documents(&mut doc, over_doc);
        label = format!("{label} + {}", shown(over));
        rewritten = true;
    }
    let mut extended_from = BTreeMap::new();
    if super::extends::uses_extends(&doc) {
        let load = |p: &Path| read(p).map(|(_, doc)| doc);
        extended_from = super::extends::resolve(&mut doc, &root, &paths[0], &load)?;
        rewritten = true;
    }
    let (compose, order, warnings) = if rewritten {
        parse_with_profiles(
            &serde_json::to_string_pretty(&doc).unwrap_or_default(),
            &label,
            &active,
        )?
    } else {
        parse_with_profiles(&text, &label, &active)?
    };
    let folder = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "masgen".into());
    let name = sanitize_project_name(compose.name.as_deref().unwrap_or(&folder));
    let mut paths = paths.into_iter();
    let file = paths.next().expect("one file at least");
    Ok(Project {
        root,
        file,
        merged_files: paths.collect(),
        extended_from,
        name,
        compose,
        order,
        warnings,
        dotenv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_forms() {
        let i = |s: &str| interpolate(s, &env).map_err(|e| e.2);
        assert_eq!(i("a: ${SET}").unwrap(), "a: v");
        assert_eq!(i("a: $SET-x").unwrap(), "a: v-x");
        assert_eq!(i("a: ${NOPE:-d}").unwrap(), "a: d");
        assert_eq!(i("a: ${EMPTY:-d}").unwrap(), "a: d");
        assert_eq!(i("a: ${EMPTY-d}").unwrap(), "a: ");
        assert_eq!(i("a: ${NOPE-d}").unwrap(), "a: d");
        assert_eq!(i("a: $$HOME").unwrap(), "a: $HOME");
        assert!(i("a: ${NOPE?set NOPE first}")
            .unwrap_err()
            .contains("set NOPE first"));
        assert_eq!(
            i("# ${NOPE?ignored in comments}").unwrap(),
            "# ${NOPE?ignored in comments}"
        );
        assert_eq!(interpolate("x: 1\ny: ${A", &env).unwrap_err().0, 2);
    }

    #[test]
    fn merge_keys_extensions_and_unknown_keys() {
        let text = "x-common: &common\n  restart: \"no\"\n  environment:\n    A: \"1\"\nservices:\n  web:\n    <<: *common\n    image: busybox:latest\n    frobnicate: true\n    build:\n      context: .\n      dockerfile_inline: FROM x\n";
        let (compose, order, warnings) = parse_compose_str(text, "compose.yml").unwrap();
        assert_eq!(compose.services["web"].restart.as_deref(), Some("no"));
        assert_eq!(order, vec!["web"]);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("frobnicate"), "{warnings:?}");
        assert!(
            warnings[1].contains("build key 'dockerfile_inline' is not supported"),
            "{warnings:?}"
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
