//! What Compose checks once a project is read: profiles, dependencies (and what links,
//! volumes_from and shared namespaces add to them), declared networks, volumes, secrets
//! and configs, and the values that must parse (ports, durations, sizes, restart
//! policies). Every error names the file, line and column it is about.

use indexmap::IndexMap;

use super::error::ComposeError;
use super::graph::start_order;
use super::model::{parse_bytes, parse_duration, Compose, DependsOn, DependsSpec, Service};

/// Where a path of the project is written, as `file:line:column`.
pub type Place<'a> = dyn Fn(&[&str]) -> String + 'a;

/// Validate `compose` (read from `file`) with the given profiles active (`*`: all of them).
/// A service whose profiles are all inactive is left out, as `docker compose up` leaves it
/// out. Returns the start order and warnings.
pub fn validate(
    compose: &mut Compose,
    file: &str,
    active: &[String],
    place: &Place,
) -> Result<(Vec<String>, Vec<String>), ComposeError> {
    let mut warnings = Vec::new();
    apply_profiles(compose, file, active, &mut warnings)?;
    add_implicit_dependencies(compose, place)?;
    warn_about_logs_and_platforms(compose, file, &mut warnings);
    check_project(compose, place)?;
    for (name, svc) in &compose.services {
        check_service(compose, name, svc, place)?;
        check_named_contexts(compose, name, svc, place)?;
    }
    check_context_cycles(compose, place)?;
    let order = start_order(compose).map_err(|e| match e {
        super::graph::GraphError::Unknown {
            service,
            dependency,
        } => ComposeError::UnknownDependency {
            file: place(&["services", &service, "depends_on"]),
            service,
            dependency,
        },
        super::graph::GraphError::Cycle(services) => ComposeError::Cycle {
            file: file.to_string(),
            services,
        },
    })?;
    Ok((order, warnings))
}

fn invalid(at: String, message: String) -> ComposeError {
    ComposeError::Invalid { file: at, message }
}

/// Leave out the services of inactive profiles, and the optional dependencies on them.
fn apply_profiles(
    compose: &mut Compose,
    file: &str,
    active: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
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
        if let Some(DependsOn::Map(deps)) = &mut svc.depends_on {
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
    Ok(())
}

/// A link, a volumes_from service or a `service:` namespace is a dependency too (compose
/// starts it first); a `container:` namespace, outside the project, is refused.
fn add_implicit_dependencies(compose: &mut Compose, place: &Place) -> Result<(), ComposeError> {
    let names: Vec<String> = compose.services.keys().cloned().collect();
    for (name, svc) in compose.services.iter_mut() {
        for key in ["network_mode", "pid", "ipc"] {
            let value = match key {
                "network_mode" => &svc.network_mode,
                "pid" => &svc.pid,
                _ => &svc.ipc,
            };
            if let Some(v) = value.as_deref().filter(|v| v.starts_with("container:")) {
                return Err(invalid(
                    place(&["services", name, key]),
                    format!("service '{name}': {key}: {v} joins a container outside the project, which masgen does not run: refused before anything runs; use service:NAME for a service of this project, or remove it"),
                ));
            }
        }
        let targets: Vec<String> = svc
            .link_pairs()
            .into_iter()
            .map(|(t, _)| t)
            .chain(svc.created_after())
            .collect();
        for target in targets {
            if !names.contains(&target) || target == *name {
                return Err(invalid(
                    place(&["services", name]),
                    format!("service '{name}' links to, takes volumes from or joins a namespace of '{target}', which is not another service of this project: fix the name"),
                ));
            }
            add_dependency(svc, target);
        }
    }
    Ok(())
}

fn add_dependency(svc: &mut Service, target: String) {
    let listed = svc
        .depends_on
        .as_ref()
        .is_some_and(|d| d.entries().iter().any(|(d, _)| *d == target));
    if listed {
        return;
    }
    let mut deps: IndexMap<String, Option<DependsSpec>> = match svc.depends_on.take() {
        Some(DependsOn::Map(m)) => m,
        Some(DependsOn::List(l)) => l.into_iter().map(|d| (d, None)).collect(),
        None => IndexMap::new(),
    };
    // As Compose adds them: a link or a shared namespace restarts with its target; a
    // volumes_from source does not.
    let namespace = [&svc.network_mode, &svc.pid, &svc.ipc]
        .into_iter()
        .flatten()
        .any(|m| m.strip_prefix("service:").map(str::trim) == Some(target.as_str()));
    let restarts = namespace || svc.link_pairs().iter().any(|(t, _)| *t == target);
    let spec = DependsSpec {
        condition: None,
        restart: restarts.then_some(true),
        required: None,
    };
    deps.insert(target, Some(spec));
    svc.depends_on = Some(DependsOn::Map(deps));
}

/// Settings masgen applies that hide evidence or may not run here.
fn warn_about_logs_and_platforms(compose: &Compose, file: &str, warnings: &mut Vec<String>) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    for (name, svc) in &compose.services {
        if svc.logging.as_ref().and_then(|l| l.driver.as_deref()) == Some("none") {
            warnings.push(format!("{file}: service '{name}': logging driver none: masgen cannot show this service's logs when it fails"));
        }
        if let Some(p) = svc.platform.as_deref() {
            if p.split('/').nth(1).is_none_or(|a| a != arch) {
                warnings.push(format!("{file}: service '{name}': platform {p} is not this machine's (linux/{arch}): its image must run under emulation or will not start"));
            }
        }
    }
}

/// What concerns more than one service: container names, top-level secrets and configs.
fn check_project(compose: &Compose, place: &Place) -> Result<(), ComposeError> {
    let mut names: IndexMap<&str, &str> = IndexMap::new();
    for (name, svc) in &compose.services {
        if let Some(c) = svc.container_name.as_deref() {
            if let Some(first) = names.insert(c, name) {
                return Err(invalid(
                    place(&["services", name, "container_name"]),
                    format!("services '{first}' and '{name}' both have container_name '{c}': a container name is unique (docker compose refuses this too); rename one"),
                ));
            }
        }
    }
    for (kind, section, defined) in [
        ("secret", "secrets", &compose.secrets),
        ("config", "configs", &compose.configs),
    ] {
        for (name, top) in defined {
            let top = top.clone().unwrap_or_default();
            let at = || place(&[section, name]);
            if top
                .external
                .as_ref()
                .is_some_and(|e| e != &serde_json::Value::Bool(false))
            {
                return Err(invalid(at(), format!("{kind} '{name}' is external, which needs Docker swarm (docker compose up cannot use it either): give it a file:, environment: or content:")));
            }
            let sources = [&top.file, &top.environment, &top.content]
                .iter()
                .filter(|s| s.is_some())
                .count();
            if sources != 1 {
                return Err(invalid(
                    at(),
                    format!("{kind} '{name}' needs exactly one of file:, environment: or content:"),
                ));
            }
        }
    }
    Ok(())
}

/// One service's references and values.
fn check_service(
    compose: &Compose,
    name: &str,
    svc: &Service,
    place: &Place,
) -> Result<(), ComposeError> {
    let at = |key: &str| place(&["services", name, key]);
    if svc.image.is_none() && svc.build.is_none() {
        return Err(invalid(
            place(&["services", name]),
            format!("service '{name}' has neither 'image' nor 'build': give it one"),
        ));
    }
    let platforms = svc
        .build
        .as_ref()
        .and_then(|b| b.full())
        .map(|b| &b.platforms);
    if let (Some(p), Some(all)) = (&svc.platform, platforms) {
        if !all.is_empty() && !all.contains(p) {
            return Err(invalid(
                place(&["services", name, "build", "platforms"]),
                format!("service '{name}': build.platforms must include the service's platform \"{p}\", as Docker Compose requires: add it to build.platforms, or change platform"),
            ));
        }
    }
    for n in svc.networks.iter().flat_map(|n| n.names()) {
        if n != "default" && !compose.networks.contains_key(&n) {
            return Err(invalid(at("networks"), format!("service '{name}' joins network '{n}', which is not declared under the top-level 'networks:': declare it")));
        }
    }
    for (kind, key, refs, defined) in [
        ("secret", "secrets", &svc.secrets, &compose.secrets),
        ("config", "configs", &svc.configs, &compose.configs),
    ] {
        if let Some(r) = refs.iter().find(|r| !defined.contains_key(r.source())) {
            return Err(invalid(at(key), format!("service '{name}' uses {kind} '{}', which is not declared under the top-level '{kind}s:': declare it", r.source())));
        }
    }
    let build_secrets = svc
        .build
        .as_ref()
        .and_then(|b| b.full())
        .map(|f| &f.secrets);
    if let Some(r) = build_secrets
        .into_iter()
        .flatten()
        .find(|r| !compose.secrets.contains_key(r.source()))
    {
        return Err(invalid(at("build"), format!("service '{name}' builds with secret '{}', which is not declared under the top-level 'secrets:': declare it", r.source())));
    }
    for p in &svc.ports {
        p.mappings()
            .map_err(|e| invalid(at("ports"), format!("service '{name}': {e}")))?;
    }
    for v in &svc.volumes {
        let mount = v
            .mount()
            .map_err(|e| invalid(at("volumes"), format!("service '{name}': {e}")))?;
        if let super::model::Mount::Named { name: vol, .. } = mount {
            if !compose.volumes.contains_key(&vol) {
                return Err(invalid(at("volumes"), format!("service '{name}' mounts volume '{vol}', which is not declared under the top-level 'volumes:': declare it")));
            }
        }
    }
    check_values(name, svc, &at)
}

/// A build's `additional_contexts`: each has a value, and a `service:` one names a service
/// that builds (as Compose checks); a remote one is refused (masgen does not fetch it).
fn check_named_contexts(
    compose: &Compose,
    name: &str,
    svc: &Service,
    place: &Place,
) -> Result<(), ComposeError> {
    let Some(build) = &svc.build else {
        return Ok(());
    };
    for (key, value) in build.named_contexts() {
        let at = || place(&["services", name, "build", "additional_contexts", &key]);
        let what = format!("service '{name}': build.additional_contexts '{key}'");
        if key.is_empty() {
            return Err(invalid(at(), format!("service '{name}': build.additional_contexts has an empty name: name the context")));
        }
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Err(invalid(
                at(),
                format!(
                    "{what} has no value: give it a folder, docker-image://IMAGE or service:NAME"
                ),
            ));
        };
        let parsed = super::model::NamedContext::parse(&value, std::path::Path::new(""));
        match parsed.map_err(|why| invalid(at(), format!("{what}: {why}")))? {
            super::model::NamedContext::Service(other) => match compose.services.get(&other) {
                None => return Err(invalid(at(), format!("{what} names service '{other}', which the project does not have (or whose profiles are inactive): name one of its services, or activate its profile"))),
                Some(s) if s.build.is_none() => return Err(invalid(at(), format!("{what} names service '{other}', which does not build: use docker-image://IMAGE for an image"))),
                Some(_) => {}
            },
            super::model::NamedContext::Image(image) if image.is_empty() => {
                return Err(invalid(at(), format!("{what}: docker-image:// names no image")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The `service:` contexts must not go round: a build cannot wait for its own image.
fn check_context_cycles(compose: &Compose, place: &Place) -> Result<(), ComposeError> {
    let needs = |svc: &Service| -> Vec<String> {
        svc.build
            .iter()
            .flat_map(|b| b.named_contexts())
            .filter_map(|(_, v)| v?.strip_prefix("service:").map(str::to_string))
            .collect()
    };
    for start in compose.services.keys() {
        // A depth-first walk from `start`; reaching `start` again is a cycle.
        let mut stack = vec![vec![start.clone()]];
        let mut seen = std::collections::HashSet::new();
        while let Some(chain) = stack.pop() {
            let last = chain.last().expect("never empty");
            for next in compose.services.get(last).map(needs).unwrap_or_default() {
                let mut longer = chain.clone();
                longer.push(next.clone());
                if &next == start {
                    return Err(invalid(place(&["services", start, "build", "additional_contexts"]), format!("build.additional_contexts go round: {} (each build needs the image of the next): break the chain", longer.join(" -> "))));
                }
                if seen.insert(next) {
                    stack.push(longer);
                }
            }
        }
    }
    Ok(())
}

/// The values of a service that must parse: durations, sizes, the restart policy.
fn check_values(
    name: &str,
    svc: &Service,
    at: &dyn Fn(&str) -> String,
) -> Result<(), ComposeError> {
    if let Some(hc) = &svc.healthcheck {
        for d in [&hc.interval, &hc.timeout, &hc.start_period]
            .into_iter()
            .flatten()
        {
            parse_duration(d).map_err(|e| {
                invalid(
                    at("healthcheck"),
                    format!("service '{name}' healthcheck: {e}"),
                )
            })?;
        }
    }
    let build_shm = svc
        .build
        .as_ref()
        .and_then(|b| b.full())
        .and_then(|f| f.shm_size.as_ref());
    for (key, size) in [("build", build_shm), ("shm_size", svc.shm_size.as_ref())] {
        if let Some(size) = size {
            parse_bytes(&size.text())
                .map_err(|e| invalid(at(key), format!("service '{name}' shm_size: {e}")))?;
        }
    }
    if let Some(p) = &svc.pull_policy {
        super::model::parse_pull_policy(p)
            .map_err(|e| invalid(at("pull_policy"), format!("service '{name}': {e}")))?;
    }
    if let Some(r) = &svc.restart {
        super::model::parse_restart(r)
            .map_err(|e| invalid(at("restart"), format!("service '{name}': {e}")))?;
    }
    let deploy_memory = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.memory.as_ref());
    if let (Some(a), Some(b)) = (&svc.mem_limit, deploy_memory) {
        if parse_bytes(&a.text()).ok() != parse_bytes(&b.text()).ok() {
            return Err(invalid(at("mem_limit"), format!("service '{name}': mem_limit and deploy.resources.limits.memory differ ({} and {}): keep one (docker compose refuses this too)", a.text(), b.text())));
        }
    }
    let replicas = svc.deploy.as_ref().and_then(|d| d.replicas);
    if let (Some(a), Some(b)) = (svc.scale, replicas) {
        if a != b {
            return Err(invalid(at("scale"), format!("service '{name}': can't set distinct values on 'scale' and 'deploy.replicas' ({a} and {b}): keep one (docker compose refuses this too)")));
        }
    }
    match svc.replicas() {
        n if n < 0 => {
            return Err(invalid(
                at("scale"),
                format!("service '{name}': {n} replicas: give 1 or more"),
            ));
        }
        0 => {
            return Err(invalid(at("scale"), format!("service '{name}': 0 replicas runs no container of it, and masgen verifies what runs: refused before anything runs; remove the service, or put it in a profile")));
        }
        n if n > 1 && svc.container_name.is_some() => {
            return Err(invalid(at("container_name"), format!("service '{name}': can't set container_name with {n} replicas, as a container name must be unique (docker compose refuses this too): remove container_name")));
        }
        _ => {}
    }
    let deploy_pids = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.pids);
    if let (Some(a), Some(b)) = (svc.pids_limit, deploy_pids) {
        if a != b {
            return Err(invalid(at("pids_limit"), format!("service '{name}': can't set distinct values on 'pids_limit' and 'deploy.resources.limits.pids' ({a} and {b}): keep one (docker compose refuses this too)")));
        }
    }
    if let Some(super::model::Gpus::All(v)) = &svc.gpus {
        if v != "all" {
            return Err(invalid(
                at("gpus"),
                format!("service '{name}': gpus: {v:?} is not `all` nor a list of device requests"),
            ));
        }
    }
    for d in svc.device_requests() {
        d.count()
            .map_err(|e| invalid(at("deploy"), format!("service '{name}': {e}")))?;
    }
    let condition = svc
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
        .and_then(|p| p.condition.as_deref());
    if let Some(c) = condition.filter(|c| {
        ![
            "",
            "none",
            "no",
            "on-failure",
            "any",
            "always",
            "unless-stopped",
        ]
        .contains(c)
    }) {
        return Err(invalid(at("deploy"), format!("service '{name}': deploy.restart_policy.condition {c:?} is not a restart policy (none, on-failure, any, unless-stopped)")));
    }
    if let Some(m) = svc.memory_limit() {
        parse_bytes(&m)
            .map_err(|e| invalid(at("deploy"), format!("service '{name}' memory limit: {e}")))?;
    }
    Ok(())
}
