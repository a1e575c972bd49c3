//! A service's secrets and configs, resolved against the top-level definitions: where each
//! comes from (a file of the project, an environment variable, inline content) and where
//! it goes in the container, as Docker Compose resolves them. Also the secrets a build's
//! steps mount.

use super::ServiceError;
use crate::compose::model::{file_mode, Build, Compose, FileRef, Scalar, Service, TopFile};

/// What a secret or config puts in a container.
#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    /// A host file (absolute), bind-mounted read-only.
    Path(std::path::PathBuf),
    /// Text copied into the container before it starts.
    Content(String),
}

/// One secret or config of a service, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMount {
    /// "secret" or "config".
    pub kind: &'static str,
    pub name: String,
    /// Absolute path in the container.
    pub target: String,
    pub source: FileSource,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

/// Where a secret or config comes from: a file (relative to `root`, which must exist), an
/// environment variable (which must be set), or its content.
fn file_source(
    kind: &str,
    name: &str,
    top: &TopFile,
    root: &std::path::Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<FileSource, ServiceError> {
    let why = |s: String| Err(ServiceError::File(s));
    match (&top.file, &top.environment, &top.content) {
        (Some(f), _, _) => {
            let path = root.join(f);
            if !path.is_file() {
                return why(format!("{kind} '{name}': file {f} does not exist: create it, or change the {kind}"));
            }
            Ok(FileSource::Path(path))
        }
        (_, Some(var), _) => match lookup(var) {
            Some(v) => Ok(FileSource::Content(v)),
            None => why(format!("{kind} '{name}' comes from the environment variable {var}, which is not set: set it (in the environment or .env)")),
        },
        (_, _, Some(text)) => Ok(FileSource::Content(text.clone())),
        _ => why(format!("{kind} '{name}' has no file:, environment: or content:")),
    }
}

/// The secrets a build of `b` uses, as (the id its Dockerfile's `RUN --mount=type=secret`
/// names: `target`, else the secret's name; where it comes from).
pub fn build_secrets(
    compose: &Compose,
    b: &Build,
    root: &std::path::Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, FileSource)>, ServiceError> {
    let refs = b.full().map(|f| f.secrets.as_slice()).unwrap_or_default();
    refs.iter()
        .map(|r| {
            let name = r.source().to_string();
            let top = compose
                .secrets
                .get(&name)
                .cloned()
                .flatten()
                .unwrap_or_default();
            let id = match r {
                FileRef::Long {
                    target: Some(t), ..
                } => t.clone(),
                _ => name.clone(),
            };
            Ok((id, file_source("secret", &name, &top, root, lookup)?))
        })
        .collect()
}

/// The secrets and configs `svc` uses, resolved against the top-level definitions.
/// `lookup` reads the environment (and `.env`); file paths are relative to `root`. An
/// error says what is missing and what to do.
pub fn file_mounts(
    compose: &Compose,
    svc: &Service,
    root: &std::path::Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<FileMount>, ServiceError> {
    let mut out = Vec::new();
    for (kind, refs, defined) in [
        ("secret", &svc.secrets, &compose.secrets),
        ("config", &svc.configs, &compose.configs),
    ] {
        for r in refs {
            let name = r.source().to_string();
            let top = defined.get(&name).cloned().flatten().unwrap_or_default();
            let (target, uid, gid, mode) = r.parts();
            let target = match (kind, target) {
                (_, Some(t)) if t.starts_with('/') => t,
                ("secret", t) => format!("/run/secrets/{}", t.unwrap_or_else(|| name.clone())),
                (_, t) => format!("/{}", t.unwrap_or_else(|| name.clone())),
            };
            let source = file_source(kind, &name, &top, root, lookup)?;
            let id = |v: Option<Scalar>| {
                v.map(|v| {
                    v.text().parse::<u64>().map_err(|_| {
                        ServiceError::File(format!(
                            "{kind} '{name}': uid/gid {} is not a number",
                            v.text()
                        ))
                    })
                })
                .transpose()
            };
            // Docker copies content into the container's root filesystem, which a
            // read-only one refuses; docker compose refuses the pair too.
            if matches!(source, FileSource::Content(_)) && svc.read_only == Some(true) {
                return Err(ServiceError::File(format!(
                    "{kind} '{name}' comes from environment: or content:, which Docker can only copy into a writable container, and the service is read_only: give the {kind} a file: instead, as docker compose also requires"
                )));
            }
            let (uid, gid) = (id(uid)?.unwrap_or(0), id(gid)?.unwrap_or(0));
            let mode = mode
                .as_ref()
                .map(file_mode)
                .transpose()
                .map_err(|e| ServiceError::File(format!("{kind} '{name}': {e}")))?
                .unwrap_or(0o444);
            out.push(FileMount {
                kind,
                name,
                target,
                source,
                uid,
                gid,
                mode,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_configs_resolve_like_compose() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw.txt"), "s3cret").unwrap();
        let y = "services:\n  a:\n    image: x\n    secrets: [pw, {source: token, target: api, mode: 0400, uid: '1000'}]\n    configs: [app, {source: app, target: /etc/app.conf, mode: '0640'}]\nsecrets:\n  pw: {file: ./pw.txt}\n  token: {environment: TOKEN}\nconfigs:\n  app: {content: \"x=1\"}\n";
        let (c, _, _) = crate::compose::parse_compose_str(y, "c.yml").unwrap();
        let env = |k: &str| (k == "TOKEN").then(|| "t0k".to_string());
        let m = file_mounts(&c, &c.services["a"], dir.path(), &env).unwrap();
        let got: Vec<(&str, &str, u32, u64)> = m
            .iter()
            .map(|f| (f.kind, f.target.as_str(), f.mode, f.uid))
            .collect();
        assert_eq!(
            got,
            vec![
                ("secret", "/run/secrets/pw", 0o444, 0),
                ("secret", "/run/secrets/api", 0o400, 1000),
                ("config", "/app", 0o444, 0),
                ("config", "/etc/app.conf", 0o640, 0)
            ]
        );
        assert_eq!(m[0].source, FileSource::Path(dir.path().join("./pw.txt")));
        assert_eq!(m[1].source, FileSource::Content("t0k".into()));
        assert_eq!(m[2].source, FileSource::Content("x=1".into()));
        let err = file_mounts(&c, &c.services["a"], dir.path(), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "secret 'token' comes from the environment variable TOKEN, which is not set"
            ),
            "{err}"
        );
        let mut read_only = c.services["a"].clone();
        read_only.read_only = Some(true);
        let err = file_mounts(&c, &read_only, dir.path(), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret 'token' comes from environment: or content:, which Docker can only copy into a writable container"), "{err}");
        std::fs::remove_file(dir.path().join("pw.txt")).unwrap();
        let err = file_mounts(&c, &c.services["a"], dir.path(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("secret 'pw': file ./pw.txt does not exist: create it"),
            "{err}"
        );
        for (yaml, says) in [
            ("services:\n  a:\n    image: x\n    secrets: [nope]\n", "service 'a' uses secret 'nope', which is not declared under the top-level 'secrets:'"),
            ("services:\n  a:\n    image: x\nsecrets:\n  s: {external: true}\n", "secret 's' is external, which needs Docker swarm"),
            ("services:\n  a:\n    image: x\nconfigs:\n  c: {file: a, content: b}\n", "config 'c' needs exactly one of file:, environment: or content:"),
        ] {
            let err = crate::compose::parse_compose_str(yaml, "c.yml").unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
