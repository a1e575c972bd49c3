//! The plan stage: a compose project resolved into what runs, with nothing of Docker's API
//! in it. Each service becomes a [`ServicePlan`]: its image source, a [`ContainerSpec`]
//! (command, environment, mounts, ports, networks and their aliases, limits, namespaces
//! ...), how it is known to be ready, and what it waits for. All of compose's meaning is
//! resolved here; docker/ turns a plan into the engine's requests and never reads compose.

mod container;
pub mod dockerfile;
mod files;
mod image;
mod project;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `depends_on` waits for, how an image is pulled, and how a project is read: the
/// plan's words for them are Compose's.
pub use crate::compose::load::LoadOptions;
pub use crate::compose::model::{Condition, PullPolicy, ValueError};
pub use container::{
    Attachment, ContainerSpec, DeviceRequestSpec, Health, HookSpec, MountSpec, Namespace,
    NetworkSpec, Port, VolumesFrom,
};
pub use dockerfile::from_images;
pub use files::{FileMount, FileSource};
pub use image::{image_source, BuildOptions, BuildPlan, ImageSource, NamedContext};
pub use project::{
    load, IpamPlan, ObjectOptions, ObjectPlan, PlanError, PoolPlan, Refusal, SMOKE_PROFILE,
};

use crate::compose::Project;

/// How a service is known to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Docker's healthcheck verdict.
    Healthcheck,
    /// Running, with no restart, for this long. A container that exits 0 in this window
    /// with no restart policy is a finished one-shot job, which is ready too.
    Settle(Duration),
    /// Exits 0 (one-shot job): a dependent waits for it to complete.
    Completes,
}

/// Why a service cannot run as its compose entry says: its own failure (the model's to
/// fix), reported when it would start. Each keeps Compose's words on the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Ports(ValueError),
    #[error("{0}")]
    Mounts(ValueError),
    /// A size or limit (`mem_limit`, `shm_size`, ...).
    #[error("{0}")]
    Limit(ValueError),
    /// A secret or config.
    #[error("{0}")]
    File(String),
}

/// How a container left running restarts (`restart:`; `no` is none at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    UnlessStopped,
    /// At most this many restarts, when given.
    OnFailure(Option<i64>),
}

impl RestartPolicy {
    /// From compose's reading of `restart:` (the policy's name and its retries).
    fn of((name, retries): (&str, Option<i64>)) -> RestartPolicy {
        match name {
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            _ => RestartPolicy::OnFailure(retries),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure(_) => "on-failure",
        }
    }
}

/// What a service waits for before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// `required: false`: its failure is warned about, and the service starts anyway.
    pub optional: bool,
}

/// One service, planned.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    /// Where its image comes from (None: neither `build` nor `image`, which the loader
    /// refuses).
    pub image: Option<ImageSource>,
    /// What it runs, as far as the project says; the error is the service's own (a bad
    /// port, mount or size), reported when it would start.
    pub container: Result<ContainerSpec, ServiceError>,
    /// Its secrets and configs, or why one cannot be read.
    pub files: Result<Vec<FileMount>, ServiceError>,
    pub readiness: Readiness,
    pub depends_on: Vec<Dependency>,
    /// Services whose container must exist before this one is created (volumes_from,
    /// shared namespaces).
    pub created_after: Vec<String>,
    /// Its `restart:` policy, for a system left running (while verifying, no container
    /// restarts: a crash is a failure). None: `no`.
    pub restart: Option<RestartPolicy>,
    /// How many containers run it (`scale`, `deploy.replicas`): each is health-gated, and
    /// the service is ready when all are.
    pub replicas: u32,
    /// Run in the container after it starts; one that fails fails the service.
    pub post_start: Vec<HookSpec>,
    /// Run in the container before it is stopped.
    pub pre_stop: Vec<HookSpec>,
    /// Its `container_name:`, honoured when the system is kept.
    pub container_name: Option<String>,
    /// The host ports it publishes as written (a clash with another program is the
    /// environment's, with a service of the system the system's).
    pub host_ports: Vec<u16>,
    /// The compose files a failure of it implicates, relative to the project's folder
    /// (with its build context's files: [`SystemPlan::implicated`]).
    pub compose_files: Vec<String>,
}

impl ServicePlan {
    /// Whether masgen builds its image.
    pub fn builds(&self) -> bool {
        matches!(self.image, Some(ImageSource::Build(_)))
    }
}

/// A whole project, planned: everything verification needs, and all a runtime gets.
#[derive(Debug, Clone, Default)]
pub struct SystemPlan {
    pub project: String,
    /// The project's folder.
    pub root: PathBuf,
    /// The main compose file, relative to `root`.
    pub compose_file: String,
    /// The services, in start order (dependencies first).
    pub services: Vec<ServicePlan>,
    /// The smoke checks (profile `smoke`): one-shots run once the services are ready.
    pub checks: Vec<ServicePlan>,
    /// The services that build, those heading the longest depends_on chains first: the
    /// order to build in when fewer build at once than there are images.
    pub build_order: Vec<String>,
    /// The networks the services join, and the project's named volumes.
    pub networks: Vec<ObjectPlan>,
    pub volumes: Vec<ObjectPlan>,
    /// What the security policy refuses.
    pub refused: Vec<Refusal>,
    /// What reading the project warned about.
    pub warnings: Vec<String>,
    /// Every profile a service names, active or not.
    pub profiles: Vec<String>,
}

impl SystemPlan {
    /// Every service of `project` (a service without a healthcheck settles for `settle`).
    pub fn of(project: &Project, settle: Duration) -> SystemPlan {
        let build_order = crate::compose::graph::critical_first(&project.compose, &project.order)
            .into_iter()
            .filter(|n| project.compose.services[n].build.is_some())
            .collect();
        SystemPlan {
            project: project.name.clone(),
            root: project.root.clone(),
            compose_file: project.rel(&project.file),
            services: project
                .order
                .iter()
                .map(|n| service(project, n, settle))
                .collect(),
            checks: Vec::new(),
            build_order,
            networks: project::networks(project),
            volumes: project::volumes(project),
            refused: project::refusals(project),
            warnings: project.warnings.clone(),
            profiles: project.profiles.clone(),
        }
    }

    /// With the smoke checks `checks` of `project` planned too (see [`SystemPlan::checks`]).
    pub fn with_checks(mut self, project: &Project, checks: &[String]) -> SystemPlan {
        let settle = Duration::ZERO;
        self.checks = checks.iter().map(|n| service(project, n, settle)).collect();
        // Their images build with the system's, last: a broken one fails early.
        let building = self.checks.iter().filter(|c| c.builds());
        self.build_order.extend(building.map(|c| c.name.clone()));
        self
    }

    /// Files a failure of `service` implicates, relative to the project's folder: its build
    /// context's files (at most 20, read now), then its compose files.
    pub fn implicated(&self, service: &str) -> Vec<String> {
        let Some(s) = self.get(service) else {
            return vec![self.compose_file.clone()];
        };
        let mut files = Vec::new();
        if let Some(ImageSource::Build(b)) = &s.image {
            let prefix = if b.context_rel.is_empty() {
                String::new()
            } else {
                format!("{}/", b.context_rel)
            };
            let listed = crate::workspace::list_files(&self.root.join(&prefix));
            for f in listed.into_iter().filter(|f| !f.starts_with('.')).take(20) {
                files.push(format!("{prefix}{f}"));
            }
        }
        for f in &s.compose_files {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        files
    }

    /// A service or a check.
    pub fn get(&self, name: &str) -> Option<&ServicePlan> {
        self.services
            .iter()
            .chain(&self.checks)
            .find(|s| s.name == name)
    }
}

/// Plan `name` of `project`: a service without a healthcheck settles for `settle`.
pub fn service(project: &Project, name: &str, settle: Duration) -> ServicePlan {
    let svc = &project.compose.services[name];
    let depends_on = svc
        .depends_on
        .as_ref()
        .map(|d| {
            d.entries()
                .into_iter()
                .map(|(service, condition)| Dependency {
                    optional: d.optional(&service),
                    service,
                    condition,
                })
                .collect()
        })
        .unwrap_or_default();
    ServicePlan {
        name: name.to_string(),
        image: image_source(project, svc),
        container: ContainerSpec::of(name, svc, &project.root),
        files: files::file_mounts(&project.compose, svc, &project.root, &|k| project.lookup(k)),
        readiness: readiness(project, name, settle),
        depends_on,
        created_after: unique(svc.created_after()),
        // Checked when the project loaded.
        restart: svc
            .restart_policy()
            .map(|(name, retries)| RestartPolicy::of((name.as_str(), retries))),
        replicas: svc.replicas().clamp(1, u32::MAX as i64) as u32,
        post_start: svc.post_start.iter().map(HookSpec::of).collect(),
        pre_stop: svc.pre_stop.iter().map(HookSpec::of).collect(),
        container_name: svc.container_name.clone(),
        host_ports: svc
            .ports
            .iter()
            .filter_map(|p| p.mappings().ok())
            .flatten()
            .filter_map(|m| m.host_port)
            .collect(),
        compose_files: project::compose_files_of(project, name),
    }
}

/// `items` without repeats, in their first order.
fn unique(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Completes when a dependent waits for it to complete; else its healthcheck (one the
/// compose file does not disable); else settling.
fn readiness(project: &Project, name: &str, settle: Duration) -> Readiness {
    let waited_to_complete = project.compose.services.values().any(|s| {
        s.depends_on.as_ref().is_some_and(|d| {
            d.entries()
                .iter()
                .any(|(dep, c)| dep == name && *c == Condition::ServiceCompletedSuccessfully)
        })
    });
    let svc = &project.compose.services[name];
    if waited_to_complete {
        Readiness::Completes
    } else if svc
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disabled() && h.docker_test().is_some())
    {
        Readiness::Healthcheck
    } else {
        Readiness::Settle(settle)
    }
}

/// A path as the container's host side sees it: absolute, or relative to `root`.
fn host_path(root: &Path, source: &str) -> std::path::PathBuf {
    crate::compose::normal::absolute(root, source).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(compose: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("compose.yaml"), compose).unwrap();
        let p = crate::compose::load::load_with(&root, &Default::default()).unwrap();
        (dir, p)
    }

    const SHOP: &str = r#"
services:
  db:
    image: busybox:latest
    command: ["sleep", "3600"]
    hostname: database
    environment: {A: "1", UNSET: null}
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      start_period: 1m
    volumes: ["data:/var/lib/db", "./conf:/etc/db:ro", "/scratch"]
    tmpfs: ["/run:size=64m"]
    networks:
      back: {aliases: [pg]}
    mem_limit: 256m
  api:
    image: busybox:latest
    ports: ["8080:80", "127.0.0.1::9000/udp"]
    expose: ["7000"]
    networks: [back, front]
    links: ["db:store"]
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started, required: false}
    restart: on-failure:3
  sidecar:
    image: busybox:latest
    network_mode: "service:api"
    pid: "service:db"
    volumes_from: ["db:ro"]
  migrate:
    image: busybox:latest
  cache:
    image: busybox:latest
  web:
    image: busybox:latest
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes: {data: {}}
networks: {back: {}, front: {}}
"#;

    #[test]
    fn a_container_is_planned_with_every_key_resolved() {
        let (_d, p) = project(SHOP);
        let db = service(&p, "db", Duration::from_secs(5));
        let c = db.container.unwrap();
        assert_eq!(c.command, Some(vec!["sleep".to_string(), "3600".into()]));
        assert_eq!(c.environment, vec!["A=1"]);
        assert_eq!(c.memory, Some(256 << 20));
        let h = c.health.unwrap();
        assert_eq!(h.test, vec!["CMD", "true"]);
        assert_eq!(
            (h.interval, h.start_period),
            (Some(Duration::from_secs(2)), Some(Duration::from_secs(60)))
        );
        assert_eq!(
            c.mounts,
            vec![
                MountSpec::Volume {
                    name: "data".into(),
                    target: "/var/lib/db".into(),
                    read_only: false,
                    nocopy: false
                },
                MountSpec::Bind {
                    source: p.root.join("conf"),
                    target: "/etc/db".into(),
                    read_only: true,
                    selinux: None,
                    propagation: None,
                    mount_api: false
                },
                MountSpec::Anonymous {
                    target: "/scratch".into()
                },
                MountSpec::Tmpfs {
                    target: "/run".into(),
                    options: "size=64m".into()
                },
            ]
        );
        assert_eq!(
            c.network,
            NetworkSpec::Project {
                networks: vec![Attachment {
                    network: "back".into(),
                    aliases: vec!["db".into(), "database".into(), "pg".into()],
                    ..Default::default()
                }],
                links: vec![],
            }
        );
        assert_eq!(db.readiness, Readiness::Healthcheck);
    }

    #[test]
    fn ports_networks_dependencies_and_namespaces_are_planned_as_compose_means_them() {
        let (_d, p) = project(SHOP);
        let api = service(&p, "api", Duration::from_secs(5));
        let c = api.container.unwrap();
        assert_eq!(
            c.ports[0],
            Port {
                container: "80/tcp".into(),
                host_ip: None,
                host_port: Some("8080".into())
            }
        );
        assert_eq!(
            c.ports[1],
            Port {
                container: "9000/udp".into(),
                host_ip: Some("127.0.0.1".into()),
                host_port: None
            }
        );
        assert_eq!(c.expose, vec!["7000/tcp"]);
        let NetworkSpec::Project { networks, links } = &c.network else {
            panic!()
        };
        assert_eq!(
            networks
                .iter()
                .map(|n| n.network.as_str())
                .collect::<Vec<_>>(),
            ["back", "front"]
        );
        assert_eq!(links, &[("db".to_string(), "store".to_string())]);
        assert_eq!(
            api.depends_on,
            vec![
                Dependency {
                    service: "db".into(),
                    condition: Condition::ServiceHealthy,
                    optional: false
                },
                Dependency {
                    service: "cache".into(),
                    condition: Condition::ServiceStarted,
                    optional: true
                },
            ]
        );
        assert_eq!(api.restart, Some(RestartPolicy::OnFailure(Some(3))));
        assert_eq!(api.readiness, Readiness::Settle(Duration::from_secs(5)));
        let sidecar = service(&p, "sidecar", Duration::from_secs(5));
        let s = sidecar.container.unwrap();
        assert!(s.joins_another());
        assert_eq!(s.pid, Some(Namespace::Service("db".into())));
        assert_eq!(
            s.volumes_from,
            vec![VolumesFrom::Service("db".into(), Some("ro".into()))]
        );
        let mut after = sidecar.created_after.clone();
        after.sort();
        assert_eq!(after, ["api", "db"]);
        assert_eq!(
            service(&p, "migrate", Duration::ZERO).readiness,
            Readiness::Completes
        );
    }

    #[test]
    fn image_sources_are_a_pull_with_its_policy_or_a_build_with_its_from_images() {
        let (_d, p) = project("services:\n  app:\n    build:\n      context: ./app\n      args: {TAG: \"3.12\"}\n      pull: true\n      no_cache: true\n  db:\n    image: postgres:16\n    pull_policy: daily\n");
        std::fs::create_dir_all(p.root.join("app")).unwrap();
        std::fs::write(
            p.root.join("app/Dockerfile"),
            "ARG TAG=3.11\nFROM python:${TAG}-slim AS base\nFROM base\n",
        )
        .unwrap();
        let plan = SystemPlan::of(&p, Duration::ZERO);
        let Some(ImageSource::Build(b)) = &plan.get("app").unwrap().image else {
            panic!("app builds")
        };
        assert_eq!(b.from, vec!["python:3.12-slim"]);
        assert_eq!(
            (b.pull, b.no_cache, b.context_rel.as_str()),
            (true, true, "app")
        );
        assert_eq!(b.context, p.root.join("./app"));
        assert_eq!(
            plan.get("db").unwrap().image,
            Some(ImageSource::Pull {
                reference: "postgres:16".into(),
                policy: crate::compose::model::PullPolicy::Refresh(Duration::from_secs(86400)),
            })
        );
    }
}
