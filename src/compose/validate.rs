//! What Compose checks once a project is read: profiles, dependencies (and what links,
//! volumes_from and shared namespaces add to them), declared volumes, secrets and configs,
//! and the values that must parse (ports, durations, sizes, restart policies).

use indexmap::IndexMap;

use super::graph::start_order;
use super::load::ComposeError;
use super::model::{parse_duration, Compose};

/// Validate `compose` (read from `file`) with the given profiles active (`*`: all of them).
/// A service whose profiles are all inactive is left out, as `docker compose up` leaves it
/// out. Returns the start order and warnings.
pub fn validate(
    compose: &mut Compose,
    file: &str,
    active: &[String],
) -> Result<(Vec<String>, Vec<String>), ComposeError> {
    let mut warnings = Vec::new();
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
                // As Compose adds them: a link or a shared namespace restarts with its
                // target; a volumes_from source does not.
                let namespace = [&svc.network_mode, &svc.pid, &svc.ipc]
                    .into_iter()
                    .flatten()
                    .any(|m| m.strip_prefix("service:").map(str::trim) == Some(target.as_str()));
                let restarts = namespace || svc.link_pairs().iter().any(|(t, _)| *t == target);
                let spec = super::model::DependsSpec {
                    condition: None,
                    restart: restarts.then_some(true),
                    required: None,
                };
                deps.insert(target, Some(spec));
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
    // outside the system is not the system's to join, and ignoring the key would run
    // something else: refused.
    for (name, svc) in &compose.services {
        for (key, value) in [
            ("network_mode", &svc.network_mode),
            ("pid", &svc.pid),
            ("ipc", &svc.ipc),
        ] {
            if let Some(v) = value.as_deref().filter(|v| v.starts_with("container:")) {
                return Err(ComposeError::Invalid {
                    file: file.to_string(),
                    message: format!(
                        "service '{name}': {key}: {v} joins a container outside the project, which masgen does not run: refused before anything runs; use service:NAME for a service of this project, or remove it"
                    ),
                });
            }
        }
    }
    let invalid = |message: String| ComposeError::Invalid {
        file: file.to_string(),
        message,
    };
    for (name, svc) in &compose.services {
        for n in svc.networks.iter().flat_map(|n| n.names()) {
            if n != "default" && !compose.networks.contains_key(&n) {
                return Err(invalid(format!(
                    "service '{name}' joins network '{n}', which is not declared under the top-level 'networks:': declare it"
                )));
            }
        }
    }
    let mut names: IndexMap<&str, &str> = IndexMap::new();
    for (name, svc) in &compose.services {
        if let Some(c) = svc.container_name.as_deref() {
            if let Some(first) = names.insert(c, name) {
                return Err(invalid(format!(
                    "services '{first}' and '{name}' both have container_name '{c}': a container name is unique (docker compose refuses this too); rename one"
                )));
            }
        }
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
        if let Some(size) = svc
            .build
            .as_ref()
            .and_then(|b| b.full())
            .and_then(|f| f.shm_size.as_ref())
        {
            super::model::parse_bytes(&size.text())
                .map_err(|e| invalid(format!("service '{name}' build.shm_size: {e}")))?;
        }
        if let Some(size) = &svc.shm_size {
            super::model::parse_bytes(&size.text())
                .map_err(|e| invalid(format!("service '{name}' shm_size: {e}")))?;
        }
        if let Some(r) = &svc.restart {
            super::model::parse_restart(r)
                .map_err(|e| invalid(format!("service '{name}': {e}")))?;
        }
        let deploy_memory = svc
            .deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.memory.as_ref());
        if let (Some(a), Some(b)) = (&svc.mem_limit, deploy_memory) {
            if super::model::parse_bytes(&a.text()).ok()
                != super::model::parse_bytes(&b.text()).ok()
            {
                return Err(invalid(format!(
                    "service '{name}': mem_limit and deploy.resources.limits.memory differ ({} and {}): keep one (docker compose refuses this too)",
                    a.text(),
                    b.text()
                )));
            }
        }
        if let Some(m) = svc.memory_limit() {
            super::model::parse_bytes(&m)
                .map_err(|e| invalid(format!("service '{name}' memory limit: {e}")))?;
        }
    }
    let order = start_order(compose).map_err(|e| match e {
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
    Ok((order, warnings))
}
