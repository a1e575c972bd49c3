//! `masgen config`: the project as masgen understood it, in the normal form `docker compose
//! config` prints: long-form ports (ranges expanded, `published` a string), `environment`
//! a map with `env_file` folded in, absolute paths, `depends_on` a map with `condition`
//! and `required`, long-form volumes, every service on its networks. A literal `$` is
//! printed as `$$`, as Compose prints it, so the output reads back as the same project.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::load::Project;
use super::model::{Build, Condition, Mount, Service};
use super::policy::lexical;

/// The whole project.
pub fn project(p: &Project) -> Value {
    let mut services = Map::new();
    let mut names: Vec<&String> = p.compose.services.keys().collect();
    names.sort();
    for name in names {
        services.insert(name.clone(), service(&p.compose.services[name], &p.root));
    }
    let mut top = Map::new();
    top.insert("name".into(), json!(p.name));
    // Compose prints the networks and volumes the services use, and no other.
    let (used_networks, used_volumes) = (p.compose.used_networks(), p.compose.used_volumes());
    let mut networks = Map::new();
    for (n, def) in &p.compose.networks {
        if used_networks.contains(n) {
            networks.insert(
                n.clone(),
                network(n, &def.clone().unwrap_or_default(), &p.name),
            );
        }
    }
    let uses_default = p
        .compose
        .services
        .values()
        .any(|s| s.networks.is_none() && s.network_mode.is_none());
    if uses_default && !networks.contains_key("default") {
        networks.insert(
            "default".into(),
            json!({"name": format!("{}_default", p.name), "ipam": {}}),
        );
    }
    if !networks.is_empty() {
        top.insert("networks".into(), Value::Object(networks));
    }
    top.insert("services".into(), Value::Object(services));
    let mut volumes = Map::new();
    for (n, def) in &p.compose.volumes {
        if !used_volumes.contains(n) {
            continue;
        }
        let def = def.clone().unwrap_or_default();
        let external = def.external == Some(true);
        let mut v = Map::new();
        v.insert(
            "name".into(),
            json!(object_name(n, &def.name, external, &p.name)),
        );
        put(&mut v, "driver", def.driver.map(|d| json!(d)));
        put(&mut v, "driver_opts", map_of(&def.driver_opts));
        if external {
            v.insert("external".into(), json!(true));
        }
        put(&mut v, "labels", map_of(&def.labels));
        volumes.insert(n.clone(), Value::Object(v));
    }
    if !volumes.is_empty() {
        top.insert("volumes".into(), Value::Object(volumes));
    }
    for (key, defined) in [
        ("secrets", &p.compose.secrets),
        ("configs", &p.compose.configs),
    ] {
        let items: Map<String, Value> = defined
            .iter()
            .map(|(n, def)| {
                let def = def.clone().unwrap_or_default();
                let mut v = Map::new();
                v.insert("name".into(), json!(format!("{}_{n}", p.name)));
                put(
                    &mut v,
                    "file",
                    def.file.map(|f| json!(absolute(&p.root, &f))),
                );
                put(&mut v, "environment", def.environment.map(|e| json!(e)));
                put(&mut v, "content", def.content.map(|c| json!(c)));
                (n.clone(), Value::Object(v))
            })
            .collect();
        if !items.is_empty() {
            top.insert(key.into(), Value::Object(items));
        }
    }
    escape_dollars(Value::Object(top))
}

/// A network or volume's name: its `name:`, else an external one's key, else the key
/// with the project's prefix.
fn object_name(key: &str, name: &Option<String>, external: bool, project: &str) -> String {
    match name {
        Some(n) => n.clone(),
        None if external => key.to_string(),
        None => format!("{project}_{key}"),
    }
}

/// Key-value pairs as a JSON object; None when there are none.
fn map_of(kv: &Option<super::model::KeyValues>) -> Option<Value> {
    kv.as_ref().map(|_| json!(super::model::key_map(kv)))
}

/// A top-level network, as Compose prints it.
fn network(key: &str, def: &super::model::TopNetwork, project: &str) -> Value {
    let external = def.external == Some(true);
    let mut v = Map::new();
    v.insert(
        "name".into(),
        json!(object_name(key, &def.name, external, project)),
    );
    put(&mut v, "driver", def.driver.as_ref().map(|d| json!(d)));
    put(&mut v, "driver_opts", map_of(&def.driver_opts));
    let mut ipam = Map::new();
    if let Some(i) = &def.ipam {
        put(&mut ipam, "driver", i.driver.as_ref().map(|d| json!(d)));
        if !i.config.is_empty() {
            let pools: Vec<Value> = i
                .config
                .iter()
                .map(|c| {
                    let mut pool = Map::new();
                    put(&mut pool, "subnet", c.subnet.as_ref().map(|x| json!(x)));
                    put(&mut pool, "gateway", c.gateway.as_ref().map(|x| json!(x)));
                    put(&mut pool, "ip_range", c.ip_range.as_ref().map(|x| json!(x)));
                    put(&mut pool, "aux_addresses", map_of(&c.aux_addresses));
                    Value::Object(pool)
                })
                .collect();
            ipam.insert("config".into(), json!(pools));
        }
        put(&mut ipam, "options", map_of(&i.options));
    }
    v.insert("ipam".into(), Value::Object(ipam));
    if external {
        v.insert("external".into(), json!(true));
    }
    for (key, on) in [("internal", def.internal), ("attachable", def.attachable)] {
        if on == Some(true) {
            v.insert(key.into(), json!(true));
        }
    }
    put(&mut v, "labels", map_of(&def.labels));
    put(&mut v, "enable_ipv6", def.enable_ipv6.map(|b| json!(b)));
    Value::Object(v)
}

/// A path written in the project, absolute as Compose prints it.
/// A host path as Compose resolves it: `~/` from HOME, else against `root`, cleaned
/// lexically (`./a/../b` is `b`).
pub fn absolute(root: &Path, p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return lexical(&Path::new(&home).join(rest)).display().to_string();
        }
    }
    lexical(&root.join(p)).display().to_string()
}

fn service(svc: &Service, root: &Path) -> Value {
    let mut out = Map::new();
    if let Some(b) = &svc.build {
        out.insert("build".into(), build(b, root));
    }
    let argv = |v: &Option<super::model::StringOrList>| {
        v.as_ref().map_or(Value::Null, |c| json!(c.argv()))
    };
    out.insert("command".into(), argv(&svc.command));
    out.insert("entrypoint".into(), argv(&svc.entrypoint));
    if let Some(c) = &svc.container_name {
        out.insert("container_name".into(), json!(c));
    }
    if let Some(d) = &svc.depends_on {
        let mut deps = Map::new();
        for (dep, condition) in d.entries() {
            let condition = match condition {
                Condition::ServiceStarted => "service_started",
                Condition::ServiceHealthy => "service_healthy",
                Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            let mut e = Map::new();
            e.insert("condition".into(), json!(condition));
            if restarts(d, &dep) {
                e.insert("restart".into(), json!(true));
            }
            e.insert("required".into(), json!(!d.optional(&dep)));
            deps.insert(dep, Value::Object(e));
        }
        out.insert("depends_on".into(), Value::Object(deps));
    }
    if let Some(env) = &svc.environment {
        out.insert("environment".into(), environment(env));
    }
    for (key, hooks) in [("post_start", &svc.post_start), ("pre_stop", &svc.pre_stop)] {
        if !hooks.is_empty() {
            out.insert(
                key.into(),
                json!(hooks.iter().map(hook).collect::<Vec<_>>()),
            );
        }
    }
    if let Some(i) = &svc.image {
        out.insert("image".into(), json!(i));
    }
    out.insert("networks".into(), networks(svc));
    if !svc.ports.is_empty() {
        let ports: Vec<Value> = svc
            .ports
            .iter()
            .flat_map(|p| p.mappings().unwrap_or_default())
            .map(|m| {
                let mut port = Map::new();
                port.insert("mode".into(), json!("ingress"));
                if let Some(ip) = &m.host_ip {
                    port.insert("host_ip".into(), json!(ip));
                }
                port.insert("target".into(), json!(m.container_port));
                if let Some(h) = m.published() {
                    port.insert("published".into(), json!(h));
                }
                port.insert("protocol".into(), json!(m.protocol));
                Value::Object(port)
            })
            .collect();
        out.insert("ports".into(), Value::Array(ports));
    }
    if !svc.volumes.is_empty() {
        let volumes: Vec<Value> = svc
            .volumes
            .iter()
            .filter_map(|v| Some((v.mount().ok()?, matches!(v, super::model::Volume::Short(_)))))
            .map(|(m, short)| volume(m, short, root))
            .collect();
        out.insert("volumes".into(), Value::Array(volumes));
    }
    if let Some(p) = svc.profiles.first().map(|_| &svc.profiles) {
        out.insert("profiles".into(), json!(p));
    }
    runtime_keys(svc, &mut out);
    host_keys(svc, &mut out);
    Value::Object(out)
}

fn restarts(d: &super::model::DependsOn, dep: &str) -> bool {
    match d {
        super::model::DependsOn::Map(m) => m
            .get(dep)
            .and_then(|s| s.as_ref())
            .is_some_and(|s| s.restart == Some(true)),
        super::model::DependsOn::List(_) => false,
    }
}

/// Puts `value` under `key` when it is there.
fn put(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        out.insert(key.into(), v);
    }
}

fn texts(items: &[super::model::Scalar]) -> Option<Value> {
    (!items.is_empty()).then(|| json!(items.iter().map(|i| i.text()).collect::<Vec<_>>()))
}

fn list(items: &[String]) -> Option<Value> {
    (!items.is_empty()).then(|| json!(items))
}

fn pairs(kv: &Option<super::model::KeyValues>) -> Option<Value> {
    kv.as_ref().map(|kv| {
        Value::Object(
            kv.pairs()
                .into_iter()
                .map(|(k, v)| (k, json!(v.unwrap_or_default())))
                .collect(),
        )
    })
}

/// How the container runs: healthcheck, restart, user, limits and the like. A boolean is
/// printed when true, as Compose prints it.
fn runtime_keys(svc: &Service, out: &mut Map<String, Value>) {
    put(
        out,
        "healthcheck",
        svc.healthcheck.as_ref().map(healthcheck),
    );
    put(out, "restart", svc.restart.as_ref().map(|r| json!(r)));
    put(out, "labels", pairs(&svc.labels));
    put(
        out,
        "working_dir",
        svc.working_dir.as_ref().map(|w| json!(w)),
    );
    put(out, "user", svc.user.as_ref().map(|u| json!(u.text())));
    put(out, "init", svc.init.filter(|b| *b).map(|b| json!(b)));
    put(
        out,
        "read_only",
        svc.read_only.filter(|b| *b).map(|b| json!(b)),
    );
    put(out, "tty", svc.tty.filter(|b| *b).map(|b| json!(b)));
    put(
        out,
        "stdin_open",
        svc.stdin_open.filter(|b| *b).map(|b| json!(b)),
    );
    put(
        out,
        "stop_signal",
        svc.stop_signal.as_ref().map(|v| json!(v)),
    );
    put(
        out,
        "stop_grace_period",
        svc.stop_grace_period.as_ref().map(|v| json!(v)),
    );
    let bytes = |v: &super::model::Scalar| {
        super::model::parse_bytes(&v.text())
            .ok()
            .map(|b| json!(b.to_string()))
    };
    put(out, "shm_size", svc.shm_size.as_ref().and_then(bytes));
    put(out, "mem_limit", svc.mem_limit.as_ref().and_then(bytes));
    put(out, "sysctls", pairs(&svc.sysctls));
    put(
        out,
        "pull_policy",
        svc.pull_policy.as_ref().map(|v| match v.as_str() {
            // Compose prints the alias as what it means.
            "if_not_present" => json!("missing"),
            _ => json!(v),
        }),
    );
    put(out, "platform", svc.platform.as_ref().map(|v| json!(v)));
    put(
        out,
        "privileged",
        svc.privileged.filter(|b| *b).map(|b| json!(b)),
    );
    put(out, "cap_add", list(&svc.cap_add));
    put(out, "cap_drop", list(&svc.cap_drop));
    put(out, "security_opt", list(&svc.security_opt));
    put(out, "group_add", texts(&svc.group_add));
    put(
        out,
        "network_mode",
        svc.network_mode.as_ref().map(|v| json!(v)),
    );
    put(out, "pid", svc.pid.as_ref().map(|v| json!(v)));
    put(out, "ipc", svc.ipc.as_ref().map(|v| json!(v)));
    put(out, "volumes_from", list(&svc.volumes_from));
    deploy_keys(svc, out);
    container_keys(svc, out);
}

/// `deploy.resources.limits`, as Compose prints it.
fn deploy_keys(svc: &Service, out: &mut Map<String, Value>) {
    let bytes = |v: &super::model::Scalar| {
        super::model::parse_bytes(&v.text())
            .ok()
            .map(|b| json!(b.to_string()))
    };
    let Some(deploy) = &svc.deploy else {
        return;
    };
    let limits = deploy.resources.as_ref().and_then(|r| r.limits.as_ref());
    let reservations = deploy
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref());
    if limits.is_none()
        && reservations.is_none()
        && deploy.restart_policy.is_none()
        && deploy.replicas.is_none()
    {
        return;
    }
    let mut resources = Map::new();
    if let Some(r) = reservations {
        let mut m = Map::new();
        put(
            &mut m,
            "cpus",
            r.cpus
                .as_ref()
                .and_then(|c| c.text().parse::<f64>().ok())
                .map(|c| json!(c)),
        );
        put(&mut m, "memory", r.memory.as_ref().and_then(bytes));
        if !r.devices.is_empty() {
            m.insert(
                "devices".into(),
                json!(r.devices.iter().map(device).collect::<Vec<_>>()),
            );
        }
        resources.insert("reservations".into(), Value::Object(m));
    }
    if let Some(limits) = limits {
        let mut l = Map::new();
        put(
            &mut l,
            "cpus",
            limits
                .cpus
                .as_ref()
                .and_then(|c| c.text().parse::<f64>().ok())
                .map(|c| json!(c)),
        );
        put(&mut l, "memory", limits.memory.as_ref().and_then(bytes));
        put(&mut l, "pids", limits.pids.map(|p| json!(p)));
        resources.insert("limits".into(), Value::Object(l));
    }
    let mut d = Map::new();
    put(&mut d, "replicas", deploy.replicas.map(|r| json!(r)));
    d.insert("resources".into(), Value::Object(resources));
    if let Some(p) = &deploy.restart_policy {
        let mut r = Map::new();
        put(&mut r, "condition", p.condition.as_ref().map(|c| json!(c)));
        put(&mut r, "max_attempts", p.max_attempts.map(|m| json!(m)));
        d.insert("restart_policy".into(), Value::Object(r));
    }
    d.insert("placement".into(), json!({}));
    out.insert("deploy".into(), Value::Object(d));
}

/// Environment pairs as Compose prints them (a name without a value is null).
fn environment(env: &super::model::KeyValues) -> Value {
    Value::Object(
        env.pairs()
            .into_iter()
            .map(|(k, v)| (k, v.map_or(Value::Null, Value::String)))
            .collect(),
    )
}

/// A lifecycle hook, as Compose prints it.
fn hook(h: &super::model::Hook) -> Value {
    let mut m = Map::new();
    put(
        &mut m,
        "command",
        h.command.as_ref().map(|c| json!(c.argv())),
    );
    put(&mut m, "user", h.user.as_ref().map(|x| json!(x)));
    if h.privileged == Some(true) {
        m.insert("privileged".into(), json!(true));
    }
    put(
        &mut m,
        "working_dir",
        h.working_dir.as_ref().map(|x| json!(x)),
    );
    put(
        &mut m,
        "environment",
        h.environment.as_ref().map(environment),
    );
    Value::Object(m)
}

/// A device request, as Compose prints it (`count: all` is -1).
fn device(d: &super::model::DeviceRequest) -> Value {
    let mut m = Map::new();
    if !d.capabilities.is_empty() {
        m.insert("capabilities".into(), json!(d.capabilities));
    }
    put(&mut m, "driver", d.driver.as_ref().map(|x| json!(x)));
    if d.count.is_some() {
        put(&mut m, "count", d.count().ok().flatten().map(|c| json!(c)));
    }
    if !d.device_ids.is_empty() {
        m.insert("device_ids".into(), json!(d.device_ids));
    }
    put(&mut m, "options", map_of(&d.options));
    Value::Object(m)
}

/// Devices, log driver, ulimits, links, secrets and configs, as Compose prints them.
fn container_keys(svc: &Service, out: &mut Map<String, Value>) {
    let devices: Vec<Value> = svc
        .device_mappings()
        .into_iter()
        .map(|(source, target, permissions)| json!({"source": source, "target": target, "permissions": permissions}))
        .collect();
    put(
        out,
        "devices",
        (!devices.is_empty()).then(|| json!(devices)),
    );
    if let Some(l) = &svc.logging {
        let mut log = Map::new();
        put(&mut log, "driver", l.driver.as_ref().map(|d| json!(d)));
        put(&mut log, "options", pairs(&l.options));
        out.insert("logging".into(), Value::Object(log));
    }
    if !svc.ulimits.is_empty() {
        let limits: Map<String, Value> = svc
            .ulimits
            .iter()
            .map(|(name, u)| {
                let v = match u {
                    super::model::Ulimit::Single(n) => json!(n),
                    super::model::Ulimit::Pair { soft, hard } => {
                        json!({"soft": soft, "hard": hard})
                    }
                };
                (name.clone(), v)
            })
            .collect();
        out.insert("ulimits".into(), Value::Object(limits));
    }
    put(out, "links", list(&svc.links));
    for (key, refs, default_dir) in [
        ("secrets", &svc.secrets, "/run/secrets/"),
        ("configs", &svc.configs, "/"),
    ] {
        let items: Vec<Value> = refs.iter().map(|r| file_ref(r, default_dir)).collect();
        put(out, key, (!items.is_empty()).then(|| json!(items)));
    }
}

/// A service's use of a secret or config in long form.
fn file_ref(r: &super::model::FileRef, default_dir: &str) -> Value {
    let mut v = Map::new();
    v.insert("source".into(), json!(r.source()));
    let (target, uid, gid, mode) = r.parts();
    // As Compose prints them: a target as written; a secret without one gets its default
    // path, a config none.
    let target = match (target, default_dir) {
        (Some(t), _) => Some(t),
        (None, "/run/secrets/") => Some(format!("{default_dir}{}", r.source())),
        (None, _) => None,
    };
    put(&mut v, "target", target.map(|t| json!(t)));
    put(&mut v, "uid", uid.map(|u| json!(u.text())));
    put(&mut v, "gid", gid.map(|g| json!(g.text())));
    put(
        &mut v,
        "mode",
        mode.and_then(|m| super::model::file_mode(&m).ok())
            .map(|m| json!(format!("{m:04o}"))),
    );
    Value::Object(v)
}

/// What the container sees of names and hosts.
fn host_keys(svc: &Service, out: &mut Map<String, Value>) {
    put(out, "hostname", svc.hostname.as_ref().map(|v| json!(v)));
    put(out, "domainname", svc.domainname.as_ref().map(|v| json!(v)));
    put(out, "pids_limit", svc.pids_limit.map(|v| json!(v)));
    put(out, "scale", svc.scale.map(|v| json!(v)));
    put(
        out,
        "gpus",
        svc.gpus.as_ref().map(|g| match g {
            super::model::Gpus::All(_) => json!([{"count": -1}]),
            super::model::Gpus::List(l) => json!(l.iter().map(device).collect::<Vec<_>>()),
        }),
    );
    put(
        out,
        "userns_mode",
        svc.userns_mode.as_ref().map(|v| json!(v)),
    );
    put(
        out,
        "mac_address",
        svc.mac_address.as_ref().map(|v| json!(v)),
    );
    put(out, "runtime", svc.runtime.as_ref().map(|v| json!(v)));
    put(out, "expose", texts(&svc.expose));
    let hosts: Vec<String> = svc
        .extra_hosts()
        .iter()
        .map(|h| h.replacen(':', "=", 1))
        .collect();
    put(out, "extra_hosts", list(&hosts));
    put(out, "tmpfs", svc.tmpfs.as_ref().map(|t| json!(t.list())));
    put(out, "dns", svc.dns.as_ref().map(|t| json!(t.list())));
    put(
        out,
        "dns_search",
        svc.dns_search.as_ref().map(|t| json!(t.list())),
    );
    put(out, "dns_opt", list(&svc.dns_opt));
}

fn healthcheck(h: &super::model::Healthcheck) -> Value {
    let mut out = Map::new();
    if h.disable == Some(true) {
        out.insert("disable".into(), json!(true));
    }
    put(
        &mut out,
        "test",
        h.test
            .as_ref()
            .map(|_| json!(h.docker_test().unwrap_or_default())),
    );
    put(&mut out, "timeout", h.timeout.as_ref().map(|v| json!(v)));
    put(&mut out, "interval", h.interval.as_ref().map(|v| json!(v)));
    put(&mut out, "retries", h.retries.map(|v| json!(v)));
    put(
        &mut out,
        "start_period",
        h.start_period.as_ref().map(|v| json!(v)),
    );
    Value::Object(out)
}

fn build(b: &Build, root: &Path) -> Value {
    let mut out = Map::new();
    let context = b.context();
    let remote = super::model::is_remote(context);
    out.insert(
        "context".into(),
        json!(if remote {
            context.to_string()
        } else {
            absolute(root, context)
        }),
    );
    match b.dockerfile_inline() {
        Some(inline) => out.insert("dockerfile_inline".into(), json!(inline)),
        None => out.insert("dockerfile".into(), json!(b.dockerfile())),
    };
    let args = b.args();
    if !args.is_empty() {
        let map: Map<String, Value> = args
            .into_iter()
            .map(|(k, v)| (k, v.map_or(Value::Null, Value::String)))
            .collect();
        out.insert("args".into(), Value::Object(map));
    }
    if let Some(t) = b.target() {
        out.insert("target".into(), json!(t));
    }
    if let Some(f) = b.full() {
        build_options(f, root, &mut out);
    }
    Value::Object(out)
}

/// The long form's other keys, as Compose prints them.
fn build_options(f: &super::model::BuildFull, root: &Path, out: &mut Map<String, Value>) {
    if let Some(l) = &f.labels {
        let map: Map<String, Value> = l
            .pairs()
            .into_iter()
            .map(|(k, v)| (k, json!(v.unwrap_or_default())))
            .collect();
        out.insert("labels".into(), Value::Object(map));
    }
    if !f.cache_from.is_empty() {
        out.insert("cache_from".into(), json!(f.cache_from));
    }
    if f.no_cache.is_some_and(|n| n.0) {
        out.insert("no_cache".into(), json!(true));
    }
    if f.pull.is_some_and(|p| p.0) {
        out.insert("pull".into(), json!(true));
    }
    let mut hosts: Vec<String> = super::model::host_entries(&f.extra_hosts)
        .iter()
        .map(|h| h.replacen(':', "=", 1))
        .collect();
    if !hosts.is_empty() {
        hosts.sort();
        out.insert("extra_hosts".into(), json!(hosts));
    }
    if let Some(n) = &f.network {
        out.insert("network".into(), json!(n));
    }
    if let Some(size) = f
        .shm_size
        .as_ref()
        .and_then(|s| super::model::parse_bytes(&s.text()).ok())
    {
        out.insert("shm_size".into(), json!(size.to_string()));
    }
    if !f.tags.is_empty() {
        out.insert("tags".into(), json!(f.tags));
    }
    if !f.secrets.is_empty() {
        let refs: Vec<Value> = f.secrets.iter().map(|r| file_ref(r, "")).collect();
        out.insert("secrets".into(), json!(refs));
    }
    let mut pairs: Vec<(String, Option<String>)> = f
        .additional_contexts
        .iter()
        .flat_map(|c| c.pairs())
        .collect();
    // Sorted, as Compose prints a map.
    pairs.sort();
    let contexts: Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = v.unwrap_or_default();
            let folder = super::model::NamedContext::names_folder(&v);
            (k, json!(if folder { absolute(root, &v) } else { v }))
        })
        .collect();
    if !contexts.is_empty() {
        out.insert("additional_contexts".into(), Value::Object(contexts));
    }
    if let Some(ssh) = &f.ssh {
        let keys: Vec<String> = ssh
            .entries()
            .into_iter()
            .map(|(id, path)| path.map_or(id.clone(), |p| format!("{id}={p}")))
            .collect();
        out.insert("ssh".into(), json!(keys));
    }
}

fn networks(svc: &Service) -> Value {
    use super::model::ServiceNetworks;
    if svc.network_mode.is_some() {
        return Value::Null;
    }
    match &svc.networks {
        None => json!({"default": null}),
        Some(ServiceNetworks::List(l)) => {
            Value::Object(l.iter().map(|n| (n.clone(), Value::Null)).collect())
        }
        Some(ServiceNetworks::Map(m)) => Value::Object(
            m.iter()
                .map(|(n, a)| {
                    let v = match a {
                        Some(a) => {
                            let mut o = Map::new();
                            if !a.aliases.is_empty() {
                                o.insert("aliases".into(), json!(a.aliases));
                            }
                            for (key, value) in [
                                ("ipv4_address", &a.ipv4_address),
                                ("ipv6_address", &a.ipv6_address),
                                ("interface_name", &a.interface_name),
                            ] {
                                put(&mut o, key, value.as_ref().map(|x| json!(x)));
                            }
                            Value::Object(o)
                        }
                        None => Value::Null,
                    };
                    (n.clone(), v)
                })
                .collect(),
        ),
    }
}

/// A mount in long form; one written short also gets the options Compose fills in for it.
fn volume(m: Mount, short: bool, root: &Path) -> Value {
    let ro = |v: &mut Map<String, Value>, read_only: bool| {
        if read_only {
            v.insert("read_only".into(), json!(true));
        }
    };
    let mut v = Map::new();
    match m {
        Mount::Bind {
            source,
            target,
            read_only,
            bind,
        } => {
            v.insert("type".into(), json!("bind"));
            v.insert("source".into(), json!(absolute(root, &source)));
            v.insert("target".into(), json!(target));
            ro(&mut v, read_only);
            if let Some(b) = bind {
                let mut o = Map::new();
                if let Some(s) = b.selinux {
                    o.insert("selinux".into(), json!(s));
                }
                if let Some(p) = b.propagation {
                    o.insert("propagation".into(), json!(p));
                }
                if b.create_host_path {
                    o.insert("create_host_path".into(), json!(true));
                }
                v.insert("bind".into(), Value::Object(o));
            }
        }
        Mount::Named {
            name,
            target,
            read_only,
            volume,
        } => {
            v.insert("type".into(), json!("volume"));
            v.insert("source".into(), json!(name));
            v.insert("target".into(), json!(target));
            ro(&mut v, read_only);
            match volume {
                Some(true) => v.insert("volume".into(), json!({"nocopy": true})),
                Some(false) => v.insert("volume".into(), json!({})),
                None => None,
            };
        }
        Mount::Anonymous { target } => {
            v.insert("type".into(), json!("volume"));
            v.insert("target".into(), json!(target));
            if short {
                v.insert("volume".into(), json!({}));
            }
        }
        Mount::Tmpfs { target } => {
            v.insert("type".into(), json!("tmpfs"));
            v.insert("target".into(), json!(target));
        }
    }
    Value::Object(v)
}

/// Every `$` in a string value as `$$`, as Compose prints a literal `$`.
fn escape_dollars(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_dollars).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('$', "$$"), escape_dollars(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `v` as block-style YAML (strings quoted where a plain scalar would read differently).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) if plain_ok(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `s` reads back as the same string when written plain.
fn plain_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./@+".contains(c))
        && !s.starts_with(['-', '.', '@'])
        && !matches!(
            super::yaml::parse(&format!("k: {s}")).map(|d| d.value["k"].is_string()),
            Ok(false) | Err(_)
        )
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, item) in map {
                let key = if plain_ok(k) {
                    k.clone()
                } else {
                    Value::String(k.clone()).to_string()
                };
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(item, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(item, indent + 2, out);
                    }
                    other => out.push_str(&format!("{pad}{key}: {}\n", inline(other))),
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        emit(item, indent + 2, &mut inner);
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                    other => out.push_str(&format!("{pad}- {}\n", inline(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", inline(other))),
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => scalar(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_reads_back_as_the_same_value() {
        let v = json!({"name": "p", "services": {"web": {"command": ["sh", "-c", "echo 'a: b' #x"], "environment": {"on": "yes", "N": "3", "E": "", "U": null}, "ports": [{"target": 80, "published": "8080"}], "networks": {"default": null}}}});
        let text = to_yaml(&v);
        assert_eq!(super::super::yaml::parse(&text).unwrap().value, v, "{text}");
    }
}
