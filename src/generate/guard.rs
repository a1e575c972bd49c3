//! What a repair may not change: the smoke checks. A check is never made to pass by
//! weakening it, so its files and its compose definition are out of the model's reach in
//! repair rounds, unless the check itself is broken (it crashed, or did not build) or the
//! user said `--allow-smoke-edits`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::compose::load::SMOKE_FILE;
use crate::protocol::{apply_hunks, Change};

/// The checks a repair round must leave alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Each protected smoke service and its folder (its build context, relative; None
    /// when it does not build from a folder of the project).
    pub checks: Vec<(String, Option<String>)>,
    /// `masgen smoke`: the project is the user's, and only the checks' own files may
    /// change; these are the project's services, which the checks' compose file may not
    /// define.
    pub checks_only: Option<Vec<String>>,
}

/// Where `masgen smoke` writes the checks' folders.
pub const CHECKS_FOLDER: &str = "smoke";

impl Guard {
    /// The check whose folder holds `path` (relative to the project), if one does.
    pub fn owner(&self, path: &str) -> Option<&str> {
        self.checks
            .iter()
            .find(|(_, folder)| {
                folder
                    .as_deref()
                    .is_some_and(|f| !f.is_empty() && path.starts_with(&format!("{f}/")))
            })
            .map(|(check, _)| check.as_str())
    }

    /// Why `change` is refused, if it is: it touches a protected check's folder, or
    /// changes a protected check's definition in a compose file.
    pub fn refusal(&self, root: &Path, change: &Change) -> Option<String> {
        let path = change.path().as_str();
        if let Some(system) = &self.checks_only {
            if let Some(why) = outside_checks(root, change, system) {
                return Some(why);
            }
        }
        if let Some(check) = self.owner(path) {
            return Some(refused(path, check));
        }
        if !(path.ends_with(".yml") || path.ends_with(".yaml")) {
            return None;
        }
        let before = std::fs::read_to_string(root.join(path)).ok()?;
        let after = match change {
            Change::File { content, .. } => Some(content.clone()),
            Change::Delete { .. } => None,
            Change::Edit { hunks, .. } => Some(apply_hunks(path, &before, hunks).ok()?),
        };
        let (old, new) = (
            definitions(&before),
            definitions(after.as_deref().unwrap_or("")),
        );
        self.checks
            .iter()
            .find(|(check, _)| old.contains_key(check) && old.get(check) != new.get(check))
            .map(|(check, _)| refused(path, check))
    }
}

/// Why a change `masgen smoke` asked for reaches outside the checks: a file of the
/// project's, a delete of the checks' compose file, or a compose file that changes the
/// project's services or defines a check outside the profile `smoke`.
fn outside_checks(root: &Path, change: &Change, system: &[String]) -> Option<String> {
    let path = change.path().as_str();
    if path.starts_with(&format!("{CHECKS_FOLDER}/")) {
        return None;
    }
    if path != SMOKE_FILE {
        return Some(format!("{path}: the project's own files are the user's and never change: write the checks under {CHECKS_FOLDER}/<check>/ and their services in {SMOKE_FILE}, nothing else"));
    }
    let before = std::fs::read_to_string(root.join(path)).unwrap_or_default();
    let after = match change {
        Change::File { content, .. } => content.clone(),
        Change::Delete { .. } => {
            return Some(format!("{path}: deleting it would drop every check"))
        }
        Change::Edit { hunks, .. } => apply_hunks(path, &before, hunks).ok()?,
    };
    checks_file_problem(&after, system).map(|why| format!("{path}: {why}"))
}

/// What is wrong with `text` as the checks' compose file, if anything: it may hold only
/// new services of the profile `smoke`.
pub fn checks_file_problem(text: &str, system: &[String]) -> Option<String> {
    let doc = match crate::compose::yaml::parse(text) {
        Ok(doc) => doc.value,
        Err(e) => {
            return Some(format!(
                "not valid YAML at line {}, column {}: {}",
                e.mark.line, e.mark.column, e.message
            ))
        }
    };
    let Some(top) = doc.as_object() else {
        return Some("not a compose file (a mapping with `services:`)".into());
    };
    if let Some(key) = top
        .keys()
        .find(|k| *k != "services" && !k.starts_with("x-"))
    {
        return Some(format!("top-level `{key}` changes the project; this file holds only `services:`, each a new smoke check"));
    }
    let services = top.get("services").and_then(Value::as_object)?;
    for (name, def) in services {
        if system.contains(name) {
            return Some(format!("`{name}` is a service of the project, and the project is not to be changed: give the check a name of its own"));
        }
        let in_profile = def
            .get("profiles")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|x| x.as_str() == Some("smoke")));
        if !in_profile {
            return Some(format!("`{name}` is not in the profile smoke: give it `profiles: [smoke]`, or `docker compose up` would start it with the system"));
        }
    }
    None
}

fn refused(path: &str, check: &str) -> String {
    format!("{path}: this changes smoke check '{check}', which is not broken. A check is never changed to make it pass: change the system so that the check passes (the user can lift this with --allow-smoke-edits)")
}

/// Each service's definition in a compose file's text (none when it does not parse).
fn definitions(text: &str) -> BTreeMap<String, Value> {
    let Ok(doc) = crate::compose::yaml::parse(text) else {
        return BTreeMap::new();
    };
    doc.value
        .get("services")
        .and_then(Value::as_object)
        .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_reply;

    const COMPOSE: &str = "services:\n  api:\n    build: ./api\n  smoke:\n    build: ./smoke\n    profiles: [smoke]\n    depends_on: [api]\n";

    fn guard() -> Guard {
        Guard {
            checks: vec![("smoke".into(), Some("smoke".into()))],
            checks_only: None,
        }
    }

    fn refusals(dir: &Path, reply: &str) -> Vec<Option<String>> {
        parse_reply(reply)
            .changes
            .iter()
            .map(|c| guard().refusal(dir, c))
            .collect()
    }

    #[test]
    fn a_check_s_files_and_definition_are_refused_the_system_s_are_not() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("docker-compose.yml"), COMPOSE).unwrap();
        let r = refusals(
            d.path(),
            "<file path=\"smoke/check.py\">\nprint('ok 1')\n</file>\n<file path=\"api/app.py\">\nx = 1\n</file>\n",
        );
        assert!(r[0].as_deref().unwrap().contains("smoke check 'smoke'"));
        assert_eq!(r[1], None);
        let weaken = "<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    depends_on: [api]\n=======\n    depends_on: [api]\n    entrypoint: [\"true\"]\n>>>>>>> REPLACE\n</edit>\n";
        assert!(refusals(d.path(), weaken)[0].is_some());
        let system = "<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    build: ./api\n=======\n    build: ./api\n    environment: {PORT: \"80\"}\n>>>>>>> REPLACE\n</edit>\n";
        assert_eq!(refusals(d.path(), system)[0], None);
        assert!(refusals(d.path(), "<delete path=\"docker-compose.yml\"/>\n")[0].is_some());
    }

    #[test]
    fn masgen_smoke_may_write_only_new_checks() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("compose.yaml"), COMPOSE).unwrap();
        let guard = Guard {
            checks: Vec::new(),
            checks_only: Some(vec!["api".into()]),
        };
        let refusal = |reply: &str| {
            parse_reply(reply)
                .changes
                .iter()
                .map(|c| guard.refusal(d.path(), c))
                .collect::<Vec<_>>()
        };
        let file = |path: &str, body: &str| format!("<file path=\"{path}\">\n{body}</file>\n");
        let check = "services:\n  smoke-api:\n    profiles: [smoke]\n    build: ./smoke/api\n";
        assert_eq!(refusal(&file("compose.smoke.yaml", check)), [None]);
        assert_eq!(refusal(&file("smoke/api/check.py", "print(1)\n")), [None]);
        let says = |reply: String, what: &str| {
            let r = refusal(&reply)[0].clone().unwrap_or_default();
            assert!(r.contains(what), "{r}");
        };
        says(file("api/app.py", "x = 1\n"), "never change");
        says(file("compose.yaml", COMPOSE), "never change");
        says(
            file(
                "compose.smoke.yaml",
                "services:\n  api:\n    profiles: [smoke]\n",
            ),
            "`api` is a service of the project",
        );
        says(
            file(
                "compose.smoke.yaml",
                "services:\n  smoke-api:\n    build: ./smoke/api\n",
            ),
            "not in the profile smoke",
        );
        says(
            file("compose.smoke.yaml", &format!("{check}volumes:\n  data:\n")),
            "top-level `volumes`",
        );
        says(
            "<delete path=\"compose.smoke.yaml\"/>\n".into(),
            "drop every check",
        );
    }
}
