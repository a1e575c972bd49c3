//! The fidelity rule, by key: a key that changes what runs is one masgen implements with
//! Compose's meaning, or it is refused before anything runs, with the file, line and
//! column, and what to do. Only keys that change nothing masgen verifies are warned about
//! and ignored. Keys Compose does not know are refused, as Compose refuses them.

use serde_json::Value;

use super::yaml::Doc;

/// What masgen does with a key.
enum Class {
    /// Implemented with Compose's meaning.
    Known,
    /// Changes nothing masgen verifies: warned about, then ignored.
    Ignored(&'static str),
    /// Changes what runs and is not implemented: refused, saying what to do.
    Refused(&'static str),
}

/// The keys of one kind of mapping.
struct Schema {
    name: &'static str,
    known: &'static [&'static str],
    ignored: &'static [(&'static str, &'static str)],
    refused: &'static [(&'static str, &'static str)],
}

const SWARM: &str = "it applies to Docker swarm only; docker compose up ignores it too";

const TOP: Schema = Schema {
    name: "top-level",
    known: &[
        "name", "services", "volumes", "networks", "secrets", "configs", "include",
    ],
    ignored: &[("version", "it is obsolete; Compose ignores it too")],
    refused: &[(
        "models",
        "masgen does not run AI models: remove 'models:' and the services' 'models:'",
    )],
};

const SERVICE: Schema = Schema {
    name: "service",
    known: super::model::SERVICE_KEYS,
    ignored: &[
        ("develop", "it drives 'docker compose watch', which verification does not use"),
        ("attach", "it only chooses whose logs docker compose up shows"),
        ("annotations", "OCI annotations are metadata"),
        ("pull_refresh_after", "masgen pulls an image only when it is missing"),
    ],
    refused: &[
        ("provider", "a provider service runs an external program masgen does not run: remove it, or give the service an image"),
        ("models", "masgen does not run AI models: remove it"),
        ("use_api_socket", "masgen never gives a container the Docker API: remove it"),
        ("blkio_config", NOT_APPLIED),
        ("cgroup", NOT_APPLIED),
        ("cgroup_parent", NOT_APPLIED),
        ("cpu_count", NOT_APPLIED),
        ("cpu_percent", NOT_APPLIED),
        ("cpu_shares", NOT_APPLIED),
        ("cpu_quota", NOT_APPLIED),
        ("cpu_period", NOT_APPLIED),
        ("cpu_rt_period", NOT_APPLIED),
        ("cpu_rt_runtime", NOT_APPLIED),
        ("cpus", "write it as deploy.resources.limits.cpus, which masgen applies"),
        ("cpuset", NOT_APPLIED),
        ("credential_spec", "it applies to Windows containers only: remove it"),
        ("device_cgroup_rules", NOT_APPLIED),
        ("external_links", "it links to containers outside the project: remove it"),
        ("isolation", "it applies to Windows containers only: remove it"),
        ("label_file", NOT_APPLIED),
        ("mem_reservation", NOT_APPLIED),
        ("mem_swappiness", NOT_APPLIED),
        ("memswap_limit", NOT_APPLIED),
        ("oom_kill_disable", NOT_APPLIED),
        ("oom_score_adj", NOT_APPLIED),
        ("storage_opt", NOT_APPLIED),
        ("uts", NOT_APPLIED),
    ],
};

/// A Compose key masgen does not apply to the container yet.
const NOT_APPLIED: &str = "masgen does not apply it to the container yet: remove it to verify without it, or run this project with docker compose";

const BUILD: Schema = Schema {
    name: "build",
    known: super::model::BUILD_KEYS,
    ignored: &[
        ("platforms", "the engine builds for its own platform"),
        ("cache_to", "it only exports the build cache"),
        (
            "provenance",
            "attestations do not change the image's content",
        ),
        ("sbom", "attestations do not change the image's content"),
    ],
    refused: &[
        (
            "isolation",
            "it applies to Windows containers only: remove it",
        ),
        ("privileged", "masgen never builds privileged: remove it"),
        (
            "entitlements",
            "masgen grants builds no entitlements: remove it",
        ),
        ("ulimits", "masgen does not pass build ulimits to the builder: remove it, or build the image with docker compose build and name it with image:"),
    ],
};

const HEALTHCHECK: Schema = Schema {
    name: "healthcheck",
    known: &[
        "test",
        "interval",
        "timeout",
        "retries",
        "start_period",
        "disable",
    ],
    ignored: &[(
        "start_interval",
        "this engine (API 1.41) has no start interval; probes run at 'interval'",
    )],
    refused: &[],
};

const DEPLOY: Schema = Schema {
    name: "deploy",
    known: &["replicas", "resources", "restart_policy"],
    ignored: &[
        ("mode", SWARM),
        ("placement", SWARM),
        ("update_config", SWARM),
        ("rollback_config", SWARM),
        ("endpoint_mode", SWARM),
        ("labels", SWARM),
    ],
    refused: &[],
};

const RESTART_POLICY: Schema = Schema {
    name: "deploy.restart_policy",
    known: &["condition", "max_attempts"],
    ignored: &[("delay", SWARM), ("window", SWARM)],
    refused: &[],
};

const RESOURCES: Schema = Schema {
    name: "deploy.resources",
    known: &["limits", "reservations"],
    ignored: &[],
    refused: &[],
};

const RESERVATIONS: Schema = Schema {
    name: "deploy.resources.reservations",
    known: &["memory", "devices"],
    ignored: &[
        (
            "cpus",
            "a CPU reservation only matters to a scheduler; Compose does not apply it either",
        ),
        ("generic_resources", SWARM),
    ],
    refused: &[],
};

const HOOK: Schema = Schema {
    name: "hook",
    known: &[
        "command",
        "user",
        "working_dir",
        "environment",
        "privileged",
    ],
    ignored: &[],
    refused: &[],
};

const DEVICE_REQUEST: Schema = Schema {
    name: "devices",
    known: &["capabilities", "driver", "count", "device_ids", "options"],
    ignored: &[],
    refused: &[],
};

const LIMITS: Schema = Schema {
    name: "deploy.resources.limits",
    known: &["memory", "cpus", "pids"],
    ignored: &[],
    refused: &[],
};

const DEPENDS: Schema = Schema {
    name: "depends_on",
    known: &["condition", "required", "restart"],
    ignored: &[],
    refused: &[],
};

const PORT: Schema = Schema {
    name: "ports",
    known: &["target", "published", "host_ip", "protocol"],
    ignored: &[
        ("mode", "ports are published on the host either way"),
        ("name", "a port's name is metadata"),
        ("app_protocol", "a port's protocol hint is metadata"),
    ],
    refused: &[],
};

const VOLUME: Schema = Schema {
    name: "volumes",
    known: &["type", "source", "target", "read_only", "bind", "volume"],
    ignored: &[("consistency", "it only matters on Docker Desktop for Mac")],
    refused: &[
        (
            "tmpfs",
            "masgen does not apply tmpfs options (size, mode): remove them",
        ),
        ("image", "masgen does not mount images: remove the mount"),
    ],
};

const BIND_OPTIONS: Schema = Schema {
    name: "volumes.bind",
    known: &["propagation", "create_host_path", "selinux"],
    ignored: &[],
    refused: &[(
        "recursive",
        "recursive bind mounts need Docker Engine API 1.44 and masgen speaks 1.41: remove it",
    )],
};

const VOLUME_OPTIONS: Schema = Schema {
    name: "volumes.volume",
    known: &["nocopy"],
    ignored: &[],
    refused: &[(
        "subpath",
        "volume subpaths need Docker Engine API 1.45 and masgen speaks 1.41: mount the volume and use the path inside it",
    )],
};

const NETWORK_ATTACH: Schema = Schema {
    name: "networks",
    known: &["aliases", "ipv4_address", "ipv6_address", "interface_name"],
    ignored: &[(
        "priority",
        "the order networks are connected in changes nothing masgen verifies",
    )],
    refused: &[
        ("link_local_ips", NOT_APPLIED),
        ("mac_address", NOT_APPLIED),
        ("driver_opts", NOT_APPLIED),
        ("gw_priority", NOT_APPLIED),
    ],
};

const LOGGING: Schema = Schema {
    name: "logging",
    known: &["driver", "options"],
    ignored: &[],
    refused: &[],
};

const TOP_VOLUME: Schema = Schema {
    name: "top-level volume",
    known: &["external", "name", "driver", "driver_opts", "labels"],
    ignored: &[],
    refused: &[],
};

const TOP_NETWORK: Schema = Schema {
    name: "top-level network",
    known: &[
        "external",
        "name",
        "driver",
        "driver_opts",
        "internal",
        "attachable",
        "enable_ipv6",
        "ipam",
        "labels",
    ],
    ignored: &[],
    refused: &[(
        "enable_ipv4",
        "turning IPv4 off needs Docker Engine API 1.47 and masgen speaks 1.41: remove it",
    )],
};

const IPAM: Schema = Schema {
    name: "ipam",
    known: &["driver", "config", "options"],
    ignored: &[],
    refused: &[],
};

const IPAM_POOL: Schema = Schema {
    name: "ipam.config",
    known: &["subnet", "ip_range", "gateway", "aux_addresses"],
    ignored: &[],
    refused: &[],
};

const TOP_FILE: Schema = Schema {
    name: "top-level secret or config",
    known: &["file", "environment", "content", "external", "name"],
    ignored: &[("labels", "labels are metadata")],
    refused: &[("driver", SWARM), ("template_driver", SWARM)],
};

const FILE_REF: Schema = Schema {
    name: "secret or config",
    known: &["source", "target", "uid", "gid", "mode"],
    ignored: &[],
    refused: &[],
};

const EXTENDS: Schema = Schema {
    name: "extends",
    known: &["service", "file"],
    ignored: &[],
    refused: &[],
};

const ENV_FILE: Schema = Schema {
    name: "env_file",
    known: &["path", "required", "format"],
    ignored: &[],
    refused: &[],
};

const INCLUDE: Schema = Schema {
    name: "include",
    known: &["path", "project_directory", "env_file"],
    ignored: &[],
    refused: &[],
};

impl Schema {
    fn class(&self, key: &str) -> Class {
        if key.starts_with("x-") || self.known.contains(&key) {
            Class::Known
        } else if let Some((_, why)) = self.ignored.iter().find(|(k, _)| *k == key) {
            Class::Ignored(why)
        } else if let Some((_, what)) = self.refused.iter().find(|(k, _)| *k == key) {
            Class::Refused(what)
        } else {
            Class::Refused("")
        }
    }
}

/// A key refused by the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub path: Vec<String>,
    pub message: String,
}

/// Check every key of `doc` (one file's document). Warnings are pushed for ignored keys;
/// the first refused key is returned.
pub fn check(doc: &Doc, file: &str, warnings: &mut Vec<String>) -> Result<(), Refusal> {
    let mut c = Checker {
        doc,
        file,
        warnings,
    };
    c.mapping(&doc.value, &mut Vec::new(), &TOP)?;
    let top = doc.value.as_object();
    for (section, schema) in [
        ("volumes", &TOP_VOLUME),
        ("networks", &TOP_NETWORK),
        ("secrets", &TOP_FILE),
        ("configs", &TOP_FILE),
    ] {
        for (name, v) in top
            .and_then(|t| t.get(section))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            c.mapping(v, &mut vec![section.into(), name.clone()], schema)?;
        }
    }
    for (name, v) in top
        .and_then(|t| t.get("networks"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(ipam) = v.get("ipam") {
            let mut p = vec!["networks".into(), name.clone(), "ipam".into()];
            c.mapping(ipam, &mut p, &IPAM)?;
            if let Some(Value::Array(pools)) = ipam.get("config") {
                p.push("config".into());
                c.items(pools, &mut p, &IPAM_POOL)?;
            }
        }
    }
    if let Some(Value::Array(items)) = top.and_then(|t| t.get("include")) {
        c.items(items, &mut vec!["include".into()], &INCLUDE)?;
    }
    for (name, svc) in top
        .and_then(|t| t.get("services"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        c.service(svc, &mut vec!["services".into(), name.clone()])?;
    }
    Ok(())
}

struct Checker<'a> {
    doc: &'a Doc,
    file: &'a str,
    warnings: &'a mut Vec<String>,
}

impl Checker<'_> {
    fn service(&mut self, svc: &Value, path: &mut Vec<String>) -> Result<(), Refusal> {
        self.mapping(svc, path, &SERVICE)?;
        let Some(svc) = svc.as_object() else {
            return Ok(());
        };
        for (key, schema) in [
            ("build", &BUILD),
            ("healthcheck", &HEALTHCHECK),
            ("deploy", &DEPLOY),
            ("logging", &LOGGING),
            ("extends", &EXTENDS),
        ] {
            if let Some(v) = svc.get(key) {
                self.at(path, key, |c, p| c.mapping(v, p, schema))?;
            }
        }
        if let Some(policy) = svc.get("deploy").and_then(|d| d.get("restart_policy")) {
            let mut p = path.clone();
            p.extend(["deploy".into(), "restart_policy".into()]);
            self.mapping(policy, &mut p, &RESTART_POLICY)?;
        }
        if let Some(resources) = svc.get("deploy").and_then(|d| d.get("resources")) {
            let mut p = path.clone();
            p.extend(["deploy".into(), "resources".into()]);
            self.mapping(resources, &mut p, &RESOURCES)?;
            if let Some(limits) = resources.get("limits") {
                let mut p = p.clone();
                p.push("limits".into());
                self.mapping(limits, &mut p, &LIMITS)?;
            }
            if let Some(reservations) = resources.get("reservations") {
                p.push("reservations".into());
                self.mapping(reservations, &mut p, &RESERVATIONS)?;
                if let Some(Value::Array(devices)) = reservations.get("devices") {
                    p.push("devices".into());
                    self.items(devices, &mut p, &DEVICE_REQUEST)?;
                }
            }
        }
        for (key, schema) in [
            ("post_start", &HOOK),
            ("pre_stop", &HOOK),
            ("ports", &PORT),
            ("volumes", &VOLUME),
            ("secrets", &FILE_REF),
            ("configs", &FILE_REF),
            ("env_file", &ENV_FILE),
        ] {
            if let Some(Value::Array(items)) = svc.get(key) {
                self.at(path, key, |c, p| c.items(items, p, schema))?;
            }
        }
        if let Some(Value::Array(items)) = svc.get("volumes") {
            for (i, item) in items.iter().enumerate() {
                for (key, schema) in [("bind", &BIND_OPTIONS), ("volume", &VOLUME_OPTIONS)] {
                    if let Some(v) = item.get(key) {
                        let mut p = path.clone();
                        p.extend(["volumes".into(), i.to_string(), key.into()]);
                        self.mapping(v, &mut p, schema)?;
                    }
                }
            }
        }
        for (key, schema) in [("depends_on", &DEPENDS), ("networks", &NETWORK_ATTACH)] {
            if let Some(Value::Object(entries)) = svc.get(key) {
                for (name, v) in entries {
                    let mut p = path.clone();
                    p.extend([key.to_string(), name.clone()]);
                    self.mapping(v, &mut p, schema)?;
                }
            }
        }
        Ok(())
    }

    fn at(
        &mut self,
        path: &mut Vec<String>,
        key: &str,
        f: impl FnOnce(&mut Self, &mut Vec<String>) -> Result<(), Refusal>,
    ) -> Result<(), Refusal> {
        path.push(key.to_string());
        let r = f(self, path);
        path.pop();
        r
    }

    fn items(
        &mut self,
        items: &[Value],
        path: &mut Vec<String>,
        schema: &Schema,
    ) -> Result<(), Refusal> {
        for (i, item) in items.iter().enumerate() {
            path.push(i.to_string());
            let r = self.mapping(item, path, schema);
            path.pop();
            r?;
        }
        Ok(())
    }

    /// The keys of `v`, when it is a mapping.
    fn mapping(
        &mut self,
        v: &Value,
        path: &mut Vec<String>,
        schema: &Schema,
    ) -> Result<(), Refusal> {
        let Some(map) = v.as_object() else {
            return Ok(());
        };
        for key in map.keys() {
            path.push(key.clone());
            let mark = self.doc.mark(path);
            let at = format!("{}:{}:{}", self.file, mark.line, mark.column);
            let named = display_path(path);
            match schema.class(key) {
                Class::Known => {}
                Class::Ignored(why) => self
                    .warnings
                    .push(format!("{at}: {named}: ignored, because {why}")),
                Class::Refused(what) => {
                    let message = if what.is_empty() {
                        format!(
                            "{at}: {named}: '{key}' is not a {} key Compose knows (docker compose refuses it too): remove it or fix its spelling",
                            schema.name
                        )
                    } else {
                        format!("{at}: {named}: refused before anything runs: {what}")
                    };
                    return Err(Refusal {
                        path: path.clone(),
                        message,
                    });
                }
            }
            path.pop();
        }
        Ok(())
    }
}

/// `services.web.build.ssh` for a path.
pub fn display_path(path: &[String]) -> String {
    path.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(yaml: &str) -> (Vec<String>, Result<(), Refusal>) {
        let doc = super::super::yaml::parse(yaml).unwrap();
        let mut warnings = Vec::new();
        let r = check(&doc, "compose.yaml", &mut warnings);
        (warnings, r)
    }

    #[test]
    fn a_key_that_changes_what_runs_is_refused_with_its_place() {
        let (_, r) = run("services:\n  web:\n    image: x\n    oom_score_adj: 100\n");
        let e = r.unwrap_err();
        assert!(e.message.starts_with("compose.yaml:4:5: services.web.oom_score_adj: refused before anything runs: masgen does not apply it"), "{}", e.message);
        let (_, r) = run("services:\n  web:\n    image: x\n    frobnicate: 1\n");
        assert!(r
            .unwrap_err()
            .message
            .contains("'frobnicate' is not a service key Compose knows"));
        let (_, r) = run(
            "services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        bogus: 1\n",
        );
        assert!(r
            .unwrap_err()
            .message
            .starts_with("compose.yaml:6:9: services.web.ports.0.bogus"));
        let (_, r) = run("networks:\n  back:\n    enable_ipv4: false\nservices: {}\n");
        assert!(r
            .unwrap_err()
            .message
            .contains("networks.back.enable_ipv4: refused"));
        let (_, r) = run("networks:\n  back:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n          bogus: 1\nservices: {}\n");
        assert!(r
            .unwrap_err()
            .message
            .starts_with("compose.yaml:6:11: networks.back.ipam.config.0.bogus"));
    }

    #[test]
    fn keys_that_change_nothing_verified_are_warned_about() {
        let (w, r) = run("version: '3'\nx-any: 1\nservices:\n  web:\n    image: x\n    x-note: 1\n    develop: {watch: []}\n    deploy: {placement: {}}\n");
        r.unwrap();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(
            w[1].starts_with("compose.yaml:7:5: services.web.develop: ignored, because"),
            "{w:?}"
        );
    }
}
