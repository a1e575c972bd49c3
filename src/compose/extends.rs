//! `extends`: a service built on another one, from the same file or from another, resolved
//! as docker compose resolves it. The service gets the other one's settings with its own
//! merged over them (the override rules of merge.rs); as in Docker Compose v2.40,
//! `depends_on` and `volumes_from` are inherited too. Relative paths in another file (build
//! context, env_file, bind mount sources) are relative to that file's folder.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ComposeError;
use super::merge::Tagged;
use super::policy::lexical;

/// Reads another compose file (interpolated) as a document.
pub type Loader<'a> = dyn Fn(&Path) -> Result<Value, ComposeError> + 'a;

/// Whether any service of `doc` extends another.
pub fn uses_extends(doc: &Value) -> bool {
    doc.get("services")
        .and_then(Value::as_object)
        .is_some_and(|s| s.values().any(|svc| svc.get("extends").is_some()))
}

/// Resolve every `extends` in `doc`, the document of `main` (a file in `root`). Returns, for
/// each service that inherits from another file, that file and any it reached through it.
pub fn resolve(
    doc: &mut Value,
    root: &Path,
    main: &Path,
    load: &Loader,
) -> Result<BTreeMap<String, Vec<PathBuf>>, ComposeError> {
    resolve_tagged(doc, root, main, load, &[])
}

/// [`resolve`], honouring the project's `!reset` and `!override` tags on the settings of
/// a service that extends another, as Compose v2.40 does: a reset key inherits nothing,
/// an overridden one replaces what it inherits instead of merging with it.
pub fn resolve_tagged(
    doc: &mut Value,
    root: &Path,
    main: &Path,
    load: &Loader,
    tags: &[Tagged],
) -> Result<BTreeMap<String, Vec<PathBuf>>, ComposeError> {
    let Some(services) = doc.get("services").and_then(Value::as_object).cloned() else {
        return Ok(BTreeMap::new());
    };
    let mut r = Resolver {
        root,
        main: main.to_path_buf(),
        main_services: services.clone(),
        others: HashMap::new(),
        load,
        stack: Vec::new(),
        tags,
    };
    let mut from_files = BTreeMap::new();
    let mut resolved = Map::new();
    for (name, svc) in &services {
        if svc.get("extends").is_none() {
            continue;
        }
        let mut files = Vec::new();
        let svc = r.service(&r.main.clone(), name, &mut files)?;
        if !files.is_empty() {
            files.dedup();
            from_files.insert(name.clone(), files);
        }
        resolved.insert(name.clone(), Value::Object(svc));
    }
    if let Some(out) = doc.get_mut("services").and_then(Value::as_object_mut) {
        for (name, svc) in resolved {
            out.insert(name, svc);
        }
    }
    Ok(from_files)
}

struct Resolver<'a> {
    root: &'a Path,
    main: PathBuf,
    /// The main file's services as written.
    main_services: Map<String, Value>,
    /// Other files' services, read once, their paths already made relative to `root`.
    others: HashMap<PathBuf, Map<String, Value>>,
    load: &'a Loader<'a>,
    /// (file, service) being resolved, to report a cycle.
    stack: Vec<(PathBuf, String)>,
    /// The main file's (and its override files') merge tags.
    tags: &'a [Tagged],
}

impl Resolver<'_> {
    fn invalid(&self, file: &Path, message: String) -> ComposeError {
        ComposeError::Invalid {
            file: self.shown(file),
            message,
        }
    }

    fn shown(&self, file: &Path) -> String {
        file.strip_prefix(self.root)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Service `name` of `file`, with its `extends` resolved; `files` collects the other files read.
    fn service(
        &mut self,
        file: &Path,
        name: &str,
        files: &mut Vec<PathBuf>,
    ) -> Result<Map<String, Value>, ComposeError> {
        let key = (file.to_path_buf(), name.to_string());
        self.refuse_cycle(&key)?;
        let svc = self.find(file, name)?;
        let Some(spec) = svc.get("extends").cloned() else {
            return Ok(svc);
        };
        let (base_name, base_path) = self.base_of(&spec, file, name, files)?;
        self.stack.push(key);
        let base = self.service(&base_path, &base_name, files);
        self.stack.pop();
        let mut base = base?;
        let mut own = svc;
        own.remove("extends");
        if *file == self.main {
            self.apply_tags(name, &mut base, &mut own);
        }
        super::merge::merge_service(&mut base, own);
        Ok(base)
    }

    /// A service that extends itself, through any chain, is refused with the chain named.
    fn refuse_cycle(&self, key: &(PathBuf, String)) -> Result<(), ComposeError> {
        let Some(at) = self.stack.iter().position(|k| k == key) else {
            return Ok(());
        };
        let chain: Vec<String> = self.stack[at..]
            .iter()
            .chain([key])
            .map(|(f, s)| format!("{}:{s}", self.shown(f)))
            .collect();
        Err(self.invalid(
            &self.main.clone(),
            format!("extends cycle: {}: break it", chain.join(" -> ")),
        ))
    }

    /// Service `name` as `file` writes it (a missing one is the extending service's error).
    fn find(&mut self, file: &Path, name: &str) -> Result<Map<String, Value>, ComposeError> {
        let found = if *file == self.main {
            self.main_services.get(name).cloned()
        } else {
            self.other(file)?.get(name).cloned()
        };
        match found {
            Some(Value::Object(svc)) => Ok(svc),
            Some(Value::Null) => Ok(Map::new()),
            Some(_) => Err(self.invalid(file, format!("service '{name}' is not a mapping"))),
            None => {
                let (caller_file, caller) = self
                    .stack
                    .last()
                    .cloned()
                    .unwrap_or_else(|| (self.main.clone(), name.to_string()));
                Err(self.invalid(
                    &caller_file,
                    format!("service '{caller}' extends '{name}', which is not a service in {}: fix the name or the file", self.shown(file)),
                ))
            }
        }
    }

    /// The service an `extends` names, and the file it is in (relative to `file`'s folder;
    /// another file than the main one joins `files`).
    fn base_of(
        &self,
        spec: &Value,
        file: &Path,
        name: &str,
        files: &mut Vec<PathBuf>,
    ) -> Result<(String, PathBuf), ComposeError> {
        let (base_name, base_file) = match spec {
            Value::String(s) => (s.clone(), None),
            Value::Object(o) => match o.get("service").and_then(Value::as_str) {
                Some(s) => (s.to_string(), o.get("file").and_then(Value::as_str).map(str::to_string)),
                None => return Err(self.invalid(file, format!("service '{name}': extends needs a 'service:' to extend"))),
            },
            _ => return Err(self.invalid(file, format!("service '{name}': extends is a service name or a mapping with 'service:' and 'file:'"))),
        };
        let base_path = match base_file {
            Some(f) => {
                let dir = file.parent().unwrap_or(self.root);
                let p = lexical(&dir.join(f));
                if p != self.main {
                    files.push(p.clone());
                }
                p
            }
            None => file.to_path_buf(),
        };
        Ok((base_name, base_path))
    }

    /// `!reset` and `!override` on a service of the main file, as Compose v2.40 applies
    /// them to what it extends: a reset key is gone from both, an overridden one from the
    /// base.
    fn apply_tags(&self, name: &str, base: &mut Map<String, Value>, own: &mut Map<String, Value>) {
        for tag in self.tags {
            match tag {
                Tagged::Reset(p) if p.len() == 3 && p[0] == "services" && p[1] == name => {
                    base.remove(&p[2]);
                    own.remove(&p[2]);
                }
                Tagged::Override(p) if p.len() == 3 && p[0] == "services" && p[1] == name => {
                    base.remove(&p[2]);
                }
                _ => {}
            }
        }
    }

    fn other(&mut self, file: &Path) -> Result<&Map<String, Value>, ComposeError> {
        if !self.others.contains_key(file) {
            let doc = (self.load)(file)?;
            let dir = file.parent().unwrap_or(self.root).to_path_buf();
            let mut services = doc
                .get("services")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for svc in services.values_mut().filter_map(Value::as_object_mut) {
                rebase_service(svc, &|p| rebase(p, &dir, self.root));
            }
            self.others.insert(file.to_path_buf(), services);
        }
        Ok(&self.others[file])
    }
}

/// A path written in a file in `dir`, made absolute; one that is absolute already, under
/// `~`, or remote (a URL, `git@`) stays as written.
pub(super) fn absolute(p: &str, dir: &Path) -> String {
    if p.starts_with('/') || p.starts_with('~') || super::model::is_remote(p) {
        return p.to_string();
    }
    lexical(&dir.join(p)).display().to_string()
}

/// A path written in a file in `dir`, as the main file in `root` would write it: `./sub`
/// inside `root`, else absolute (which the policy then judges).
pub(super) fn rebase(p: &str, dir: &Path, root: &Path) -> String {
    let abs = PathBuf::from(absolute(p, dir));
    if !abs.is_absolute() {
        return p.to_string();
    }
    match abs.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => abs.display().to_string(),
    }
}

/// The folders of a build's `additional_contexts` (images and services stay).
fn rebase_named_contexts(build: &mut Map<String, Value>, rebase: &dyn Fn(&str) -> String) {
    let folder = super::model::NamedContext::names_folder;
    match build.get_mut("additional_contexts") {
        Some(Value::Object(m)) => {
            for v in m.values_mut() {
                if let Value::String(s) = v {
                    if folder(s) {
                        *s = rebase(s);
                    }
                }
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                if let Value::String(s) = item {
                    if let Some((k, v)) = s.split_once('=').filter(|(_, v)| folder(v)) {
                        *s = format!("{k}={}", rebase(v));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Make the relative paths of a service read from a file in `dir` relative to `root`.
pub(super) fn rebase_service(svc: &mut Map<String, Value>, rebase: &dyn Fn(&str) -> String) {
    match svc.get_mut("build") {
        Some(Value::String(context)) => *context = rebase(context),
        Some(Value::Object(b)) => {
            let context = b
                .get("context")
                .and_then(Value::as_str)
                .unwrap_or(".")
                .to_string();
            b.insert("context".into(), Value::String(rebase(&context)));
            rebase_named_contexts(b, rebase);
        }
        _ => {}
    }
    match svc.get_mut("env_file") {
        Some(Value::String(f)) => *f = rebase(f),
        Some(Value::Array(files)) => {
            for f in files {
                match f {
                    Value::String(s) => *s = rebase(s),
                    Value::Object(o) => {
                        if let Some(Value::String(s)) = o.get_mut("path") {
                            *s = rebase(s);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    if let Some(Value::Array(volumes)) = svc.get_mut("volumes") {
        for v in volumes {
            match v {
                // Short syntax: a source starting with `.` is a path; anything else is a
                // named volume or an absolute path, and stays.
                Value::String(s) if s.starts_with('.') => {
                    if let Some((source, rest)) = s.split_once(':') {
                        *s = format!("{}:{rest}", rebase(source));
                    }
                }
                Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("bind") => {
                    if let Some(Value::String(s)) = o.get_mut("source") {
                        *s = rebase(s);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_files(p: &Path) -> Result<Value, ComposeError> {
        Err(ComposeError::Invalid {
            file: p.display().to_string(),
            message: "unexpected read".into(),
        })
    }

    #[test]
    fn a_service_extends_one_of_the_same_file_and_keeps_its_own_settings_on_top() {
        let mut doc = json!({"services": {
            "base": {"image": "python:3.11-slim", "environment": {"MODE": "prod", "LOG": "info"}, "depends_on": ["db"], "ports": ["80:80"]},
            "web": {"extends": {"service": "base"}, "environment": ["MODE=dev"], "command": ["serve"]},
            "cli": {"extends": "web", "command": ["shell"]},
            "db": {"image": "postgres"}
        }});
        let root = Path::new("/sys1");
        let files = resolve(&mut doc, root, &root.join("compose.yaml"), &no_files).unwrap();
        assert!(files.is_empty());
        let web = &doc["services"]["web"];
        assert_eq!(web["image"], "python:3.11-slim");
        assert_eq!(web["environment"], json!({"MODE": "dev", "LOG": "info"}));
        assert_eq!(web["command"], json!(["serve"]));
        assert!(web.get("extends").is_none());
        assert_eq!(
            web["depends_on"],
            json!(["db"]),
            "depends_on is inherited, as Docker Compose v2.40 inherits it: {web}"
        );
        assert_eq!(doc["services"]["cli"]["command"], json!(["shell"]));
        assert_eq!(
            doc["services"]["cli"]["environment"]["MODE"], "dev",
            "chains resolve"
        );
        assert_eq!(
            doc["services"]["base"]["depends_on"],
            json!(["db"]),
            "the extended service itself is untouched"
        );
    }

    #[test]
    fn another_files_paths_are_relative_to_that_file() {
        let root = Path::new("/sys1");
        let load = |p: &Path| -> Result<Value, ComposeError> {
            assert_eq!(p, Path::new("/sys1/common/base.yml"));
            Ok(json!({"services": {"py": {
                "build": {"dockerfile": "Dockerfile.py"},
                "env_file": ["app.env", {"path": "../shared.env"}],
                "volumes": ["./data:/data", "cache:/cache", {"type": "bind", "source": "../../etc", "target": "/host-etc"}]
            }}}))
        };
        let mut doc = json!({"services": {"api": {"extends": {"file": "./common/base.yml", "service": "py"}}}});
        let files = resolve(&mut doc, root, &root.join("compose.yaml"), &load).unwrap();
        assert_eq!(files["api"], vec![PathBuf::from("/sys1/common/base.yml")]);
        let api = &doc["services"]["api"];
        assert_eq!(
            api["build"],
            json!({"context": "./common", "dockerfile": "Dockerfile.py"})
        );
        assert_eq!(
            api["env_file"],
            json!(["./common/app.env", {"path": "./shared.env"}])
        );
        assert_eq!(
            api["volumes"],
            json!(["./common/data:/data", "cache:/cache", {"type": "bind", "source": "/etc", "target": "/host-etc"}])
        );
    }

    #[test]
    fn cycles_and_unknown_services_are_clear_errors() {
        let root = Path::new("/sys1");
        let mut doc =
            json!({"services": {"a": {"extends": "b"}, "b": {"extends": "a", "image": "x"}}});
        let err = resolve(&mut doc, root, &root.join("compose.yaml"), &no_files)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("extends cycle: compose.yaml:a -> compose.yaml:b -> compose.yaml:a"),
            "{err}"
        );
        let mut doc = json!({"services": {"a": {"extends": {"service": "nope"}, "image": "x"}}});
        let err = resolve(&mut doc, root, &root.join("compose.yaml"), &no_files)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("service 'a' extends 'nope', which is not a service in compose.yaml"),
            "{err}"
        );
        let mut doc = json!({"services": {"a": {"extends": {"file": "x.yml"}, "image": "x"}}});
        let err = resolve(&mut doc, root, &root.join("compose.yaml"), &no_files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("extends needs a 'service:'"), "{err}");
    }
}
