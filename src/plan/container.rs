//! A service's container as the compose file means it: every key resolved (mounts made
//! absolute, sizes in bytes, durations, the network it is created on and the ones it
//! joins with their aliases), in terms of the service and the project, not of Docker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ServiceError;
use crate::compose::model::{parse_bytes, parse_duration, Mount, Service, ValueError};

/// A published port: `container` as `80/tcp`, and the host side compose asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub container: String,
    pub host_ip: Option<String>,
    /// A port, a range (`6005-6015`), or None for any.
    pub host_port: Option<String>,
}

/// A mount of the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A named volume of the project (its compose name); `nocopy`: the image's content
    /// at the target is not copied into an empty volume.
    Volume {
        name: String,
        target: String,
        read_only: bool,
        nocopy: bool,
    },
    /// A host path, absolute, with its SELinux label (`z`, `Z`) and propagation; through
    /// the engine's Mount API when Compose uses it (see
    /// [`BindOptions::needs_mount_api`](crate::compose::model::BindOptions::needs_mount_api)),
    /// else as a `src:dst:mode` bind that creates a missing host path.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        selinux: Option<String>,
        propagation: Option<String>,
        mount_api: bool,
    },
    Anonymous {
        target: String,
    },
    /// A tmpfs, with its mount options ("" for none).
    Tmpfs {
        target: String,
        options: String,
    },
}

/// The container's healthcheck (`test` is `["NONE"]` when the compose file disables the
/// image's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<i64>,
    pub start_period: Option<Duration>,
}

/// A namespace (network, pid, ipc) shared with something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// Another service's container (`service:X`).
    Service(String),
    /// As Docker names it: `host`, `none`, `bridge`, `private`, `shareable`, ...
    Mode(String),
}

/// The networks a container is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkSpec {
    /// The project's networks, the first one it is created on, each with the names the
    /// service answers to there; `links` are aliases of other services only it sees.
    Project {
        networks: Vec<Attachment>,
        links: Vec<(String, String)>,
    },
    /// Not the project's: a Docker mode or another service's namespace.
    Shared(Namespace),
}

/// A lifecycle hook: a command run in the service's running container, after it starts
/// (`post_start`) or before it stops (`pre_stop`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HookSpec {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `NAME=value` pairs.
    pub environment: Vec<String>,
    pub privileged: bool,
}

impl HookSpec {
    pub fn of(h: &crate::compose::model::Hook) -> HookSpec {
        HookSpec {
            command: h.command.as_ref().map(|c| c.argv()).unwrap_or_default(),
            user: h.user.clone(),
            working_dir: h.working_dir.clone(),
            environment: h
                .environment
                .as_ref()
                .map(|e| {
                    e.pairs()
                        .into_iter()
                        .filter_map(|(k, v)| Some(format!("{k}={}", v?)))
                        .collect()
                })
                .unwrap_or_default(),
            privileged: h.privileged == Some(true),
        }
    }
}

/// A request for devices: a driver, how many (-1: all) or which, with what capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRequestSpec {
    pub driver: Option<String>,
    pub count: Option<i64>,
    pub device_ids: Vec<String>,
    /// Sets of capabilities, any of which will do; each set is all required.
    pub capabilities: Vec<Vec<String>>,
    pub options: BTreeMap<String, String>,
}

/// How a container joins one of the project's networks: the names it answers to there,
/// and the addresses it asks for (`ipv4_address`, `ipv6_address`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    /// The interface's name inside the container (`interface_name`).
    pub interface_name: Option<String>,
}

/// Where `volumes_from` takes volumes from, and the mode (`ro`, `rw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumesFrom {
    Service(String, Option<String>),
    Container(String, Option<String>),
}

/// The logging driver and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
}

/// Everything the container runs with, as the compose file says it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE`; a name without a value is left out (unset).
    pub environment: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<Port>,
    /// Exposed, not published: `80/tcp`.
    pub expose: Vec<String>,
    pub mounts: Vec<MountSpec>,
    pub health: Option<Health>,
    /// The service's own memory limit, bytes (the run's default applies without one).
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    /// `pids_limit`, or `deploy.resources.limits.pids`.
    pub pids: Option<i64>,
    pub userns_mode: Option<String>,
    pub mac_address: Option<String>,
    /// The OCI runtime (`runc`, `runsc`...), when the compose file names one.
    pub runtime: Option<String>,
    /// `deploy.resources.reservations.memory`: a soft limit.
    pub memory_reservation: Option<i64>,
    /// Devices from the engine's device drivers (GPUs): reservations and `gpus`.
    pub device_requests: Vec<DeviceRequestSpec>,
    pub network: NetworkSpec,
    pub pid: Option<Namespace>,
    pub ipc: Option<Namespace>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub extra_hosts: Vec<String>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Vec<String>,
    pub volumes_from: Vec<VolumesFrom>,
    pub init: Option<bool>,
    pub privileged: Option<bool>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// (host path, container path, permissions)
    pub devices: Vec<(String, String, String)>,
    pub read_only: Option<bool>,
    pub shm_size: Option<i64>,
    /// (name, soft, hard)
    pub ulimits: Vec<(String, i64, i64)>,
    pub group_add: Vec<String>,
    pub logging: Option<Logging>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub tty: Option<bool>,
    pub stdin_open: Option<bool>,
}

fn pairs<I: IntoIterator<Item = (String, Option<String>)>>(items: I) -> BTreeMap<String, String> {
    items
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

fn duration(d: &Option<String>) -> Option<Duration> {
    d.as_deref().and_then(|s| parse_duration(s).ok())
}

/// `service:X` is X's container; anything else is Docker's own mode.
fn namespace(mode: &Option<String>) -> Option<Namespace> {
    let m = mode.as_deref().filter(|m| !m.is_empty())?;
    Some(match m.strip_prefix("service:") {
        Some(x) => Namespace::Service(x.trim().to_string()),
        None => Namespace::Mode(m.to_string()),
    })
}

impl ContainerSpec {
    /// The container of service `name`, whose relative paths are relative to `root`. An
    /// error is the service's: a bad port, mount or size.
    pub fn of(name: &str, svc: &Service, root: &Path) -> Result<ContainerSpec, ServiceError> {
        Ok(ContainerSpec {
            command: svc.command.as_ref().map(|c| c.argv()),
            entrypoint: svc.entrypoint.as_ref().map(|c| c.argv()),
            environment: svc
                .environment
                .iter()
                .flat_map(|e| e.pairs())
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect(),
            working_dir: svc.working_dir.clone(),
            user: svc.user.as_ref().map(|u| u.text()),
            labels: pairs(svc.labels.iter().flat_map(|l| l.pairs())),
            ports: ports(svc).map_err(ServiceError::Ports)?,
            expose: expose(svc),
            mounts: mounts(svc, root).map_err(ServiceError::Mounts)?,
            health: health(svc),
            memory: svc
                .memory_limit()
                .map(|m| parse_bytes(&m))
                .transpose()
                .map_err(ServiceError::Limit)?,
            cpus: svc.cpu_limit(),
            pids: svc.pids(),
            userns_mode: svc.userns_mode.clone(),
            mac_address: svc.mac_address.clone(),
            runtime: svc.runtime.clone(),
            memory_reservation: svc
                .deploy
                .as_ref()
                .and_then(|d| d.resources.as_ref())
                .and_then(|r| r.reservations.as_ref())
                .and_then(|r| r.memory.as_ref())
                .and_then(|m| crate::compose::model::parse_bytes(&m.text()).ok()),
            device_requests: svc
                .device_requests()
                .iter()
                .map(|d| DeviceRequestSpec {
                    driver: d.driver.clone(),
                    count: d.count().ok().flatten(),
                    device_ids: d.device_ids.clone(),
                    capabilities: vec![d.capabilities.clone()],
                    options: crate::compose::model::key_map(&d.options),
                })
                .collect(),
            network: network(name, svc),
            pid: namespace(&svc.pid),
            ipc: namespace(&svc.ipc),
            hostname: svc.hostname.clone(),
            domainname: svc.domainname.clone(),
            extra_hosts: svc.extra_hosts(),
            dns: svc.dns.as_ref().map(|d| d.list()),
            dns_search: svc.dns_search.as_ref().map(|d| d.list()),
            dns_options: svc.dns_opt.clone(),
            volumes_from: volumes_from(svc),
            init: svc.init,
            privileged: svc.privileged,
            cap_add: svc.cap_add.clone(),
            cap_drop: svc.cap_drop.clone(),
            security_opt: svc.security_opt.clone(),
            devices: svc.device_mappings(),
            read_only: svc.read_only,
            shm_size: svc
                .shm_size
                .as_ref()
                .map(|s| parse_bytes(&s.text()))
                .transpose()
                .map_err(ServiceError::Limit)?,
            ulimits: svc
                .ulimits
                .iter()
                .map(|(n, u)| (n.clone(), u.limits().0, u.limits().1))
                .collect(),
            group_add: svc.group_add.iter().map(|g| g.text()).collect(),
            logging: svc.logging.as_ref().map(|l| Logging {
                driver: l.driver.clone(),
                options: l.options.as_ref().map(|o| pairs(o.pairs())),
            }),
            sysctls: svc.sysctls.as_ref().map(|s| pairs(s.pairs())),
            stop_signal: svc.stop_signal.clone(),
            tty: svc.tty,
            stdin_open: svc.stdin_open,
        })
    }

    /// The namespace it shares instead of the project's networks, if it does.
    pub fn network_namespace(&self) -> Option<Namespace> {
        match &self.network {
            NetworkSpec::Shared(ns) => Some(ns.clone()),
            NetworkSpec::Project { .. } => None,
        }
    }

    /// Whether it joins another service's network namespace: names, ports, DNS and
    /// /etc/hosts are then that container's (Docker refuses them on this one).
    pub fn joins_another(&self) -> bool {
        matches!(self.network, NetworkSpec::Shared(Namespace::Service(_)))
    }
}

fn ports(svc: &Service) -> Result<Vec<Port>, ValueError> {
    let mut out = Vec::new();
    for p in &svc.ports {
        for m in p.mappings()? {
            out.push(Port {
                container: format!("{}/{}", m.container_port, m.protocol),
                host_port: m.published(),
                host_ip: m.host_ip,
            });
        }
    }
    Ok(out)
}

fn expose(svc: &Service) -> Vec<String> {
    svc.expose
        .iter()
        .map(|e| {
            let t = e.text();
            if t.contains('/') {
                t
            } else {
                format!("{t}/tcp")
            }
        })
        .collect()
}

fn mounts(svc: &Service, root: &Path) -> Result<Vec<MountSpec>, ValueError> {
    let mut out = Vec::new();
    for v in &svc.volumes {
        out.push(match v.mount()? {
            Mount::Named {
                name,
                target,
                read_only,
                volume,
            } => MountSpec::Volume {
                name,
                target,
                read_only,
                nocopy: volume == Some(true),
            },
            Mount::Bind {
                source,
                target,
                read_only,
                bind,
            } => {
                let bind = bind.unwrap_or(crate::compose::model::BindOptions {
                    create_host_path: true,
                    ..Default::default()
                });
                MountSpec::Bind {
                    source: super::host_path(root, &source),
                    target,
                    read_only,
                    mount_api: bind.needs_mount_api(),
                    selinux: bind.selinux,
                    propagation: bind.propagation,
                }
            }
            Mount::Anonymous { target } => MountSpec::Anonymous { target },
            Mount::Tmpfs { target } => MountSpec::Tmpfs {
                target,
                options: String::new(),
            },
        });
    }
    for (target, options) in svc.tmpfs_mounts() {
        out.push(MountSpec::Tmpfs { target, options });
    }
    Ok(out)
}

fn health(svc: &Service) -> Option<Health> {
    let h = svc.healthcheck.as_ref()?;
    if h.disabled() {
        return Some(Health {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        });
    }
    Some(Health {
        test: h.docker_test()?,
        interval: duration(&h.interval),
        timeout: duration(&h.timeout),
        retries: h.retries.map(i64::from),
        start_period: duration(&h.start_period),
    })
}

/// The project's networks with the names the service answers to on each (its own name,
/// its container_name and hostname, the network's aliases), or the namespace it shares.
fn network(name: &str, svc: &Service) -> NetworkSpec {
    if let Some(ns) = namespace(&svc.network_mode) {
        return NetworkSpec::Shared(ns);
    }
    let networks = svc
        .network_names()
        .into_iter()
        .map(|net| {
            let attach = svc
                .networks
                .as_ref()
                .map(|n| n.attach(&net))
                .unwrap_or_default();
            let mut aliases = vec![name.to_string()];
            aliases.extend(svc.container_name.clone());
            aliases.extend(svc.hostname.clone());
            aliases.extend(attach.aliases);
            Attachment {
                network: net,
                aliases,
                ipv4_address: attach.ipv4_address,
                ipv6_address: attach.ipv6_address,
                interface_name: attach.interface_name,
            }
        })
        .collect();
    NetworkSpec::Project {
        networks,
        links: svc.link_pairs(),
    }
}

fn volumes_from(svc: &Service) -> Vec<VolumesFrom> {
    svc.volumes_from_entries()
        .into_iter()
        .map(|(service, source, mode)| match service {
            Some(_) => VolumesFrom::Service(source, mode),
            None => VolumesFrom::Container(source, mode),
        })
        .collect()
}
