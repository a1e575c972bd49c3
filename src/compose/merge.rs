//! An override file merged over the main compose file, as `docker compose up` merges
//! `docker-compose.override.yml` by itself: mappings merge, `command` and `entrypoint`
//! are replaced, `environment`-like lists merge by key, `volumes` by container path,
//! `depends_on` by service, and other lists are appended without repeats.

use serde_json::{Map, Value};

/// What a compose YAML tag asks of the merge, at a path of the override document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tagged {
    /// `!reset`: the key is removed from what the earlier files said (and not set anew).
    Reset(Vec<String>),
    /// `!override`: the value replaces what the earlier files said, without merging.
    Override(Vec<String>),
}

/// Apply the tags of an override to `base` before merging it: a `!reset` key is removed
/// from both, an `!override` value is put in place in `base` and taken out of `over`.
pub fn apply_tags(base: &mut Value, over: &mut Value, tags: &[Tagged]) {
    for tag in tags {
        let (Tagged::Reset(path) | Tagged::Override(path)) = tag;
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let taken = parent_of(over, parents)
            .and_then(|o| o.as_object_mut())
            .and_then(|o| o.remove(last));
        let Some(slot) = parent_of(base, parents).and_then(|b| b.as_object_mut()) else {
            continue;
        };
        match (tag, taken) {
            (Tagged::Override(_), Some(value)) => {
                slot.insert(last.clone(), value);
            }
            (Tagged::Override(_), None) => {}
            (Tagged::Reset(_), _) => {
                slot.remove(last);
            }
        }
    }
}

fn parent_of<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, k| match v {
        Value::Object(o) => o.get_mut(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// Merge `over` into `base` (both whole compose documents).
pub fn merge_documents(base: &mut Value, over: Value) {
    let (Some(base), Value::Object(over)) = (base.as_object_mut(), over) else {
        return;
    };
    for (key, value) in over {
        if key == "services" {
            let services = base
                .entry("services")
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(services), Value::Object(incoming)) = (services.as_object_mut(), value) {
                for (name, svc) in incoming {
                    match (services.get_mut(&name), svc) {
                        // `web:` with nothing under it changes nothing.
                        (Some(_), Value::Null) => {}
                        (Some(Value::Object(old)), Value::Object(new)) => merge_service(old, new),
                        (_, new) => {
                            services.insert(name, new);
                        }
                    }
                }
            }
        } else {
            deep_merge(base.entry(key).or_insert(Value::Null), value);
        }
    }
}

/// One service of the override over the same service of the main file.
pub(super) fn merge_service(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        let Some(old) = base.get_mut(&key) else {
            base.insert(key, value);
            continue;
        };
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "command" | "entrypoint" => *old = value,
            "environment" | "labels" | "sysctls" => merge_keyed(old, value, '='),
            "extra_hosts" => merge_keyed(old, value, ':'),
            "depends_on" | "networks" => {
                let (mut a, b) = (names_as_map(old.take()), names_as_map(value));
                deep_merge(&mut a, b);
                *old = a;
            }
            "volumes" => merge_by(old, value, volume_target),
            "build" => {
                let mut merged = build_as_map(old.take());
                deep_merge(&mut merged, build_as_map(value));
                *old = merged;
            }
            _ => match (old.is_array(), value.is_array()) {
                (true, true) => merge_by(old, value, |v| v.to_string()),
                _ => deep_merge(old, value),
            },
        }
    }
}

/// Mappings merge key by key; anything else is replaced, except by an empty (null) value,
/// which changes nothing (`volumes:` with nothing under it).
fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                deep_merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// `KEY=VALUE` lists and `KEY: VALUE` maps, merged by key (the override wins).
fn merge_keyed(base: &mut Value, over: Value, separator: char) {
    let mut a = keyed_as_map(base.take(), separator);
    if let (Value::Object(a), Value::Object(b)) = (&mut a, keyed_as_map(over, separator)) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
    *base = a;
}

fn keyed_as_map(v: Value, separator: char) -> Value {
    match v {
        Value::Array(items) => Value::Object(
            items
                .into_iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .map(|i| {
                    let split = i.split_once('=').or_else(|| {
                        (separator != '=')
                            .then(|| i.split_once(separator))
                            .flatten()
                    });
                    match split {
                        Some((k, v)) => (k.trim().to_string(), Value::String(v.to_string())),
                        None => (i.trim().to_string(), Value::Null),
                    }
                })
                .collect(),
        ),
        other => other,
    }
}

/// `[a, b]` as `{a: {}, b: {}}` (depends_on, networks), so entries merge by name.
fn names_as_map(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Object(
            items
                .into_iter()
                .filter_map(|i| {
                    i.as_str()
                        .map(|n| (n.to_string(), Value::Object(Map::new())))
                })
                .collect(),
        ),
        other => other,
    }
}

/// `build: ./dir` as `{context: ./dir}`, and its `args` as a map, so both merge by key.
fn build_as_map(v: Value) -> Value {
    match v {
        Value::String(context) => Value::Object(
            [("context".to_string(), Value::String(context))]
                .into_iter()
                .collect(),
        ),
        Value::Object(mut o) => {
            if let Some(args) = o.remove("args") {
                o.insert("args".into(), keyed_as_map(args, '='));
            }
            Value::Object(o)
        }
        other => other,
    }
}

/// Lists merged by a key: an override entry replaces the base entry with the same key,
/// the others are appended.
fn merge_by(base: &mut Value, over: Value, key: impl Fn(&Value) -> String) {
    let Value::Array(b) = over else {
        *base = over;
        return;
    };
    let Value::Array(a) = base else {
        *base = Value::Array(b);
        return;
    };
    for item in b {
        let k = key(&item);
        match a.iter().position(|x| key(x) == k) {
            Some(i) => a[i] = item,
            None => a.push(item),
        }
    }
}

/// The container path of a `volumes` entry: `src:dst[:mode]`, `dst`, or `{target: dst}`.
fn volume_target(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [only] => only.to_string(),
                [_, dst, ..] => dst.to_string(),
                [] => s.clone(),
            }
        }
        Value::Object(o) => o
            .get("target")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reset_and_override_tags_replace_instead_of_merging() {
        let over_text = "services:\n  web:\n    ports: !reset []\n    environment: !override\n      ONLY: \"1\"\n    volumes: [\"./x:/x\"]\n    labels:\n      - !reset ignored\n";
        let tags = super::super::yaml::parse(over_text).unwrap().tags;
        let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            tags,
            vec![
                Tagged::Reset(path("services.web.ports")),
                Tagged::Override(path("services.web.environment")),
                Tagged::Reset(path("services.web.labels.0"))
            ]
        );
        let mut base = json!({"services": {"web": {"image": "x", "ports": ["80:80"], "environment": {"A": "1", "B": "2"}, "volumes": ["./y:/y"]}}});
        let mut over: Value = super::super::yaml::parse(over_text).unwrap().value;
        apply_tags(&mut base, &mut over, &tags);
        merge_documents(&mut base, over);
        let web = &base["services"]["web"];
        assert!(web.get("ports").is_none(), "{web}");
        assert_eq!(web["environment"], json!({"ONLY": "1"}));
        assert_eq!(
            web["volumes"],
            json!(["./y:/y", "./x:/x"]),
            "untagged lists still merge"
        );
        // Unparseable text has no tags: its syntax error is what the reader reports.
        assert!(super::super::yaml::parse("services: [unclosed").is_err());
    }

    #[test]
    fn an_override_merges_as_docker_compose_merges_it() {
        let mut base = json!({
            "name": "shop",
            "services": {
                "web": {
                    "build": "./web",
                    "command": ["serve", "--prod"],
                    "environment": ["MODE=prod", "PORT=80"],
                    "ports": ["80:80"],
                    "volumes": ["data:/var/lib/data", "./conf:/etc/web:ro"],
                    "depends_on": ["db"],
                    "healthcheck": {"test": ["CMD", "true"], "interval": "5s"}
                },
                "db": {"image": "postgres:16"}
            },
            "volumes": {"data": {}}
        });
        let over = json!({
            "services": {
                "web": {
                    "build": {"args": {"DEBUG": "1"}},
                    "command": ["serve", "--dev"],
                    "environment": {"MODE": "dev", "EXTRA": "x"},
                    "ports": ["80:80", "9229:9229"],
                    "volumes": ["./src:/var/lib/data"],
                    "depends_on": {"cache": {"condition": "service_healthy"}},
                    "healthcheck": {"interval": "1s"}
                },
                "cache": {"image": "redis:7"}
            }
        });
        merge_documents(&mut base, over);
        let web = &base["services"]["web"];
        assert_eq!(
            web["command"],
            json!(["serve", "--dev"]),
            "replaced, not appended"
        );
        assert_eq!(
            web["environment"],
            json!({"MODE": "dev", "PORT": "80", "EXTRA": "x"})
        );
        assert_eq!(
            web["ports"],
            json!(["80:80", "9229:9229"]),
            "appended without repeats"
        );
        assert_eq!(
            web["volumes"],
            json!(["./src:/var/lib/data", "./conf:/etc/web:ro"]),
            "by container path"
        );
        assert_eq!(
            web["depends_on"],
            json!({"db": {}, "cache": {"condition": "service_healthy"}})
        );
        assert_eq!(
            web["healthcheck"],
            json!({"test": ["CMD", "true"], "interval": "1s"})
        );
        assert_eq!(
            web["build"],
            json!({"context": "./web", "args": {"DEBUG": "1"}})
        );
        assert_eq!(
            base["services"]["cache"],
            json!({"image": "redis:7"}),
            "a new service is added"
        );
        assert_eq!(base["name"], "shop");
        // Empty entries change nothing.
        merge_documents(
            &mut base,
            json!({"services": {"db": null, "web": {"environment": null}}, "volumes": null}),
        );
        assert_eq!(base["services"]["db"], json!({"image": "postgres:16"}));
        assert_eq!(base["services"]["web"]["environment"]["MODE"], "dev");
        assert_eq!(base["volumes"], json!({"data": {}}));
    }
}
