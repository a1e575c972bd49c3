//! A service's `env_file`s folded into its `environment`, as Docker Compose folds them:
//! each file in order (read like `.env`, or line by line with `format: raw`), then
//! `environment` over them; a name given without a value takes the project's variable
//! (the environment, then `.env`) or stays unset. Build args given by name are resolved
//! the same way, and left out when unset.

use std::path::Path;

use indexmap::IndexMap;

use super::dotenv::DotenvError;
use super::model::{Compose, KeyValues, Scalar};

/// A service's `env_file` that cannot be folded in.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("service '{service}': env_file {path} cannot be read ({source}): create it, fix the path, or write it as {{path: {path}, required: false}}")]
    Unreadable {
        service: String,
        path: String,
        source: std::io::Error,
    },
    #[error("service '{service}': env_file {path}: {why}")]
    Invalid {
        service: String,
        path: String,
        why: DotenvError,
    },
}

/// Fold every service's env_files into its environment. A required file that is missing
/// or unreadable is an error naming the service and the file. The `env_file` entries stay
/// (the policy judges where they are); nothing reads them after this.
pub fn fold(
    compose: &mut Compose,
    root: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), EnvFileError> {
    for (name, svc) in compose.services.iter_mut() {
        let mut env: IndexMap<String, Option<Scalar>> = IndexMap::new();
        for f in svc.env_file.iter().flat_map(|e| e.entries()) {
            let path = root.join(&f.path);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(_) if !f.required => continue,
                Err(source) => {
                    return Err(EnvFileError::Unreadable {
                        service: name.clone(),
                        path: f.path.clone(),
                        source,
                    })
                }
            };
            // Substituted from the project's variables, then from the files before.
            let earlier = env.clone();
            let lookup =
                |k: &str| lookup(k).or_else(|| earlier.get(k).cloned().flatten().map(|v| v.text()));
            let vars = if f.raw {
                raw_lines(&text)
            } else {
                super::dotenv::parse(&text, &lookup).map_err(|why| EnvFileError::Invalid {
                    service: name.clone(),
                    path: f.path.clone(),
                    why,
                })?
            };
            env.extend(vars.into_iter().map(|(k, v)| (k, Some(Scalar::Str(v)))));
        }
        for (k, v) in svc.environment.iter().flat_map(KeyValues::pairs) {
            let v = v.or_else(|| lookup(&k));
            env.insert(k, v.map(Scalar::Str));
        }
        if svc.environment.is_some() || svc.env_file.is_some() {
            svc.environment = Some(KeyValues::Map(env));
        }
        if let Some(super::model::Build::Full(b)) = &mut svc.build {
            // A build arg given by name takes the project's variable, or is left out.
            if let Some(args) = &b.args {
                let resolved = args
                    .pairs()
                    .into_iter()
                    .filter_map(|(k, v)| {
                        v.or_else(|| lookup(&k)).map(|v| (k, Some(Scalar::Str(v))))
                    })
                    .collect();
                b.args = Some(KeyValues::Map(resolved));
            }
        }
    }
    Ok(())
}

/// `format: raw`: each `KEY=VALUE` line as it is.
fn raw_lines(text: &str) -> IndexMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_fold_under_environment_in_every_form() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.env"), "A=1\nB=\"two words\" # c\nQ='$A'\n").unwrap();
        std::fs::write(d.path().join("raw.env"), "R=\"kept\" $A\n").unwrap();
        let yaml = "services:\n  s:\n    image: x\n    env_file: [a.env, {path: raw.env, format: raw}, {path: nope.env, required: false}]\n    environment:\n      B: own\n      FROM_ENV:\n      UNSET:\n";
        let (mut c, _, _) = crate::compose::parse_compose_str(yaml, "c.yml").unwrap();
        fold(&mut c, d.path(), &|k| {
            (k == "FROM_ENV").then(|| "e".to_string())
        })
        .unwrap();
        let pairs = c.services["s"].environment.as_ref().unwrap().pairs();
        let want: Vec<(String, Option<String>)> = [
            ("A", Some("1")),
            ("B", Some("own")),
            ("Q", Some("$A")),
            ("R", Some("\"kept\" $A")),
            ("FROM_ENV", Some("e")),
            ("UNSET", None),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        assert_eq!(pairs, want);
        let (mut c, _, _) = crate::compose::parse_compose_str(
            "services:\n  s:\n    image: x\n    env_file: gone.env\n",
            "c.yml",
        )
        .unwrap();
        let e = fold(&mut c, d.path(), &|_| None).unwrap_err().to_string();
        assert!(
            e.starts_with("service 's': env_file gone.env cannot be read"),
            "{e}"
        );
    }
}
