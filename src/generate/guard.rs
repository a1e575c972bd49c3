//! What a repair may not change: the smoke checks. A check is never made to pass by
//! weakening it, so its files and its compose definition are out of the model's reach in
//! repair rounds, unless the check itself is broken (it crashed, or did not build) or the
//! user said `--allow-smoke-edits`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::protocol::{apply_hunks, Change};

/// The checks a repair round must leave alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Each protected smoke service and its folder (its build context, relative; None
    /// when it does not build from a folder of the project).
    pub checks: Vec<(String, Option<String>)>,
}

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
}
