//! The project-level part of a plan: what verification needs besides each service's own
//! plan. The project's networks and volumes, the order to build in, what the security
//! policy refuses, the files a failure of each service implicates, and the split between
//! the system's services and its smoke checks. Also where a plan comes from: a project
//! folder, read as Docker Compose reads it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::SystemPlan;
use crate::compose::load::{load_with, LoadOptions};
use crate::compose::{ComposeError, Project};

/// The compose profile that makes a service a smoke check.
pub const SMOKE_PROFILE: &str = "smoke";

/// Why a project folder cannot be planned: it cannot be read as Compose reads it (bad
/// input: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// A network or volume of the project: its compose name, the `name:` it gives, and
/// whether it is external (made outside the project: found, never created or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPlan {
    pub name: String,
    pub explicit_name: Option<String>,
    pub external: bool,
    /// How to create it (a network's or a volume's keys; unused for an external one).
    pub options: ObjectOptions,
}

/// A network's or volume's creation options, as the compose file gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectOptions {
    /// The driver (None: the engine's default, `bridge` or `local`).
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// A network's: no route outside, attachable by standalone containers, IPv6.
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: Option<bool>,
    pub ipam: Option<IpamPlan>,
}

/// A network's address management: its driver, pools and options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpamPlan {
    pub driver: Option<String>,
    pub pools: Vec<PoolPlan>,
    pub options: BTreeMap<String, String>,
}

/// One address pool of a network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolPlan {
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    pub aux_addresses: BTreeMap<String, String>,
}

impl ObjectOptions {
    fn of_network(def: &crate::compose::model::TopNetwork) -> Self {
        use crate::compose::model::key_map;
        ObjectOptions {
            driver: def.driver.clone(),
            driver_opts: key_map(&def.driver_opts),
            labels: key_map(&def.labels),
            internal: def.internal == Some(true),
            attachable: def.attachable == Some(true),
            enable_ipv6: def.enable_ipv6,
            ipam: def.ipam.as_ref().map(|i| IpamPlan {
                driver: i.driver.clone(),
                options: key_map(&i.options),
                pools: i
                    .config
                    .iter()
                    .map(|c| PoolPlan {
                        subnet: c.subnet.clone(),
                        ip_range: c.ip_range.clone(),
                        gateway: c.gateway.clone(),
                        aux_addresses: key_map(&c.aux_addresses),
                    })
                    .collect(),
            }),
        }
    }

    fn of_volume(def: &crate::compose::model::TopVolume) -> Self {
        use crate::compose::model::key_map;
        ObjectOptions {
            driver: def.driver.clone(),
            driver_opts: key_map(&def.driver_opts),
            labels: key_map(&def.labels),
            ..Default::default()
        }
    }
}

/// A setting the security policy refuses (unless `--allow-unsafe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub service: String,
    /// The compose key, e.g. `privileged`.
    pub key: String,
    pub detail: String,
}

/// Plan the project in `dir` as `load` says to read it: with `smoke`, the services of the
/// profile `smoke` are its checks; without, they are left out (and a warning says so).
/// A service without a healthcheck settles for `settle`.
pub fn load(
    dir: &Path,
    load: &LoadOptions,
    smoke: bool,
    settle: Duration,
) -> Result<SystemPlan, PlanError> {
    let mut load = load.clone();
    if smoke {
        load.profiles.push(SMOKE_PROFILE.to_string());
    }
    let mut project = load_with(dir, &load)?;
    let checks = checks_of(&project);
    project.order.retain(|n| !checks.contains(n));
    if smoke {
        return Ok(SystemPlan::of(&project, settle).with_checks(&project, &checks));
    }
    for c in &checks {
        project.compose.services.shift_remove(c);
    }
    if project.profiles.iter().any(|p| p == SMOKE_PROFILE) {
        let why = "the smoke checks (profile smoke) are not run: --no-smoke";
        project.warnings.push(why.to_string());
    }
    Ok(SystemPlan::of(&project, settle))
}

/// Services of the profile `smoke` among those loaded, in start order.
fn checks_of(project: &Project) -> Vec<String> {
    project
        .order
        .iter()
        .filter(|n| {
            project.compose.services[n.as_str()]
                .profiles
                .iter()
                .any(|p| p == SMOKE_PROFILE)
        })
        .cloned()
        .collect()
}

/// The compose files a failure of `service` implicates: the main one, the files merged
/// over it, the included file that defines it and those it extends (its build context's
/// files are listed when it fails: see [`SystemPlan::implicated`]).
pub(super) fn compose_files_of(project: &Project, service: &str) -> Vec<String> {
    let mut files = vec![project.rel(&project.file)];
    // Whatever the override says about the service is as much its cause.
    files.extend(
        project
            .merged_files
            .iter()
            .filter_map(|f| project.inside(f)),
    );
    // A service brought in by `include:` is written in its own file.
    if let Some(rel) = project
        .defined_in
        .get(service)
        .and_then(|f| project.inside(f))
    {
        if !files.contains(&rel) {
            files.push(rel);
        }
    }
    // And so is what it inherits through `extends` from files in the folder.
    for f in project.extended_from.get(service).into_iter().flatten() {
        if let Some(rel) = project.inside(f).filter(|r| !files.contains(r)) {
            files.push(rel);
        }
    }
    files
}

/// The networks the project's services (and checks) join, in first use.
pub(super) fn networks(project: &Project) -> Vec<ObjectPlan> {
    project
        .compose
        .used_networks()
        .into_iter()
        .map(|n| {
            let def = project
                .compose
                .networks
                .get(&n)
                .cloned()
                .flatten()
                .unwrap_or_default();
            ObjectPlan {
                options: ObjectOptions::of_network(&def),
                explicit_name: def.name,
                external: def.external == Some(true),
                name: n,
            }
        })
        .collect()
}

/// The project's named volumes that its services (and checks) mount: Compose creates no
/// other.
pub(super) fn volumes(project: &Project) -> Vec<ObjectPlan> {
    let used = project.compose.used_volumes();
    project
        .compose
        .volumes
        .iter()
        .filter(|(v, _)| used.contains(v))
        .map(|(v, def)| {
            let def = def.clone().unwrap_or_default();
            ObjectPlan {
                name: v.clone(),
                options: ObjectOptions::of_volume(&def),
                explicit_name: def.name,
                external: def.external == Some(true),
            }
        })
        .collect()
}

/// What the security policy refuses in the project.
pub(super) fn refusals(project: &Project) -> Vec<Refusal> {
    crate::compose::check_policy(&project.compose, &project.root)
        .into_iter()
        .map(|v| Refusal {
            service: v.service,
            key: v.key,
            detail: v.detail,
        })
        .collect()
}
