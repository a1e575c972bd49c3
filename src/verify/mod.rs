//! One verification pass: build, start in dependency order, wait for every service to be
//! ready, watch a stability window, report, tear down.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::compose::model::Condition;
use crate::compose::{check_policy, load::load_with, ComposeError, Project};
use crate::diagnose::{self, tail, Diagnostic, Phase};
use crate::docker::build::{self, BuildSpec, Built};
use crate::docker::health::{self, Readiness, Wait};
use crate::docker::run::{self, RunSettings};
use crate::docker::scope::Scope;
use crate::docker::{logs, teardown, DockerError, Engine, RUN_LABEL};
use crate::events::{Event, Events};

pub mod images;
use images::{Avail, Images};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// Credentials, or a registry that cannot be reached: the environment's failure.
    #[error("{0}")]
    Registry(crate::docker::pull::PullFailure),
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub health_timeout: Duration,
    pub settle: Duration,
    pub stability: Duration,
    /// Default memory limit per container, bytes.
    pub memory: i64,
    pub pids: i64,
    pub allow_unsafe: bool,
    /// Leave a healthy system running.
    pub keep: bool,
    /// Publish declared ports, follow logs until Ctrl-C, then tear down.
    pub execute: bool,
    /// Parallel builds.
    pub jobs: usize,
    /// Rebuild every image without any cache.
    pub no_cache: bool,
    /// Which compose files, project name and variables to read (`-f`, `-p`, `--env-file`).
    pub load: crate::compose::load::LoadOptions,
    /// A pull fails once the registry sends nothing for this long.
    pub pull_stall: Duration,
    /// `--pull always|missing|never`: overrides every service's `pull_policy`.
    pub pull: Option<crate::compose::model::PullPolicy>,
    /// `--offline`: reach no registry; use local images only.
    pub offline: bool,
    /// Labels this run's objects; Ctrl-C handlers tear down by it.
    pub run_id: String,
    pub events: Events,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            health_timeout: Duration::from_secs(120),
            settle: Duration::from_secs(5),
            stability: Duration::from_secs(5),
            memory: 1 << 30,
            pids: 512,
            allow_unsafe: false,
            keep: false,
            execute: false,
            jobs: default_jobs(),
            no_cache: false,
            load: Default::default(),
            pull_stall: Duration::from_secs(60),
            pull: None,
            offline: false,
            run_id: new_run_id(),
            events: Events::none(),
        }
    }
}

/// Parallel builds by default: one per core, and at least 4. Image builds wait on the
/// daemon as much as on a CPU (an export walks the image's files, a RUN step may download):
/// on 2 cores, the 8-image bench system builds with no cache in 4.3 s with 4 at once and in
/// 7.2 s with 2.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(4)
}

/// A fresh run id.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ServiceReport {
    pub name: String,
    pub image: String,
    /// ready, completed, failed, not_started.
    pub state: String,
    /// healthy, unhealthy, none (no healthcheck), or empty when never started.
    pub health: String,
    pub build_secs: Option<f64>,
    /// Seconds its image (or its Dockerfile's FROM images) took to pull, when pulled.
    pub pull_secs: Option<f64>,
    pub cached: bool,
    pub ready_secs: Option<f64>,
    /// "80/tcp -> 127.0.0.1:49153"
    pub ports: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    pub preflight_secs: f64,
    pub build_secs: f64,
    pub start_secs: f64,
    pub stability_secs: f64,
    pub total_secs: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    pub healthy: bool,
    pub project: String,
    pub run_id: String,
    pub services: Vec<ServiceReport>,
    /// Root cause first.
    pub diagnostics: Vec<Diagnostic>,
    pub warnings: Vec<String>,
    /// Every image pulled, with its time.
    pub pulls: Vec<images::PullReport>,
    pub timings: Timings,
    /// Whether the system was left running (--keep).
    pub kept: bool,
}

/// A service's image while builds run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ImageState {
    Pending,
    Ready(String),
    /// Its build failed, or it has no image at all.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Started,
    Ready,
    Completed,
    Failed,
}

/// Files a failure of `service` implicates: its Dockerfile and code, and the compose file.
fn implicated(project: &Project, service: &str) -> Vec<String> {
    let compose_file = project.rel(&project.file);
    let mut files = Vec::new();
    if let Some(b) = project
        .compose
        .services
        .get(service)
        .and_then(|s| s.build.as_ref())
    {
        let ctx = b.context().trim_start_matches("./").trim_end_matches('/');
        let prefix = if ctx.is_empty() || ctx == "." {
            String::new()
        } else {
            format!("{ctx}/")
        };
        let listed = crate::workspace::list_files(&project.root.join(&prefix));
        for f in listed.into_iter().filter(|f| !f.starts_with('.')).take(20) {
            files.push(format!("{prefix}{f}"));
        }
    }
    files.push(compose_file);
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

/// How this verification names its objects: the run in every name, or, when the system
/// is kept (`--keep`, `--execute`), the project's own names and its `container_name:`s.
fn scope_of(project: &Project, opts: &VerifyOptions) -> Scope {
    if opts.keep || opts.execute {
        let names = project
            .compose
            .services
            .iter()
            .filter_map(|(n, s)| Some((n.clone(), s.container_name.clone()?)))
            .collect();
        Scope::kept(&project.name, names)
    } else {
        Scope::run(&project.name, &opts.run_id)
    }
}

/// A network or volume's Docker name: an external one's own name (its `name:`, else its
/// key), else the run's or the project's (see [`Scope::object`]).
fn wanted(scope: &Scope, key: &str, name: Option<&str>, external: bool) -> run::NetworkWanted {
    run::NetworkWanted {
        docker_name: match (external, name) {
            (true, Some(n)) => n.to_string(),
            (true, None) => key.to_string(),
            (false, n) => scope.object(key, n),
        },
        external,
        name: key.to_string(),
    }
}

/// The networks the project's services join.
fn networks_wanted(project: &Project, scope: &Scope) -> Vec<run::NetworkWanted> {
    let mut used: Vec<String> = Vec::new();
    for svc in project.compose.services.values() {
        if svc.network_mode.as_deref().is_some_and(|m| !m.is_empty()) {
            continue;
        }
        for n in svc.network_names() {
            if !used.contains(&n) {
                used.push(n);
            }
        }
    }
    used.into_iter()
        .map(|n| {
            let def = project
                .compose
                .networks
                .get(&n)
                .cloned()
                .flatten()
                .unwrap_or_default();
            wanted(scope, &n, def.name.as_deref(), def.external == Some(true))
        })
        .collect()
}

/// The project's named volumes.
fn volumes_wanted(project: &Project, scope: &Scope) -> Vec<run::NetworkWanted> {
    project
        .compose
        .volumes
        .iter()
        .map(|(v, def)| {
            let def = def.clone().unwrap_or_default();
            wanted(scope, v, def.name.as_deref(), def.external == Some(true))
        })
        .collect()
}

/// A build's args, a bare name taking its value from the environment.
pub(crate) fn build_args(b: &crate::compose::model::Build) -> Vec<(String, String)> {
    b.args()
        .into_iter()
        .map(|(k, v)| {
            let v = v.or_else(|| std::env::var(&k).ok()).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// The FROM images of `service`'s Dockerfile: their local IDs and the credentials of their
/// registries once they are there, or the service's image failure.
async fn base_images(
    project: &Project,
    imgs: &Images<'_>,
    service: &str,
) -> Result<(Vec<String>, crate::docker::auth::AuthMap), Diagnostic> {
    let froms = project.compose.services[service]
        .build
        .as_ref()
        .and_then(|b| {
            Some(build::from_images(
                &b.dockerfile_text(&project.root)?,
                &build_args(b),
            ))
        })
        .unwrap_or_default();
    let mut ids = Vec::new();
    for image in &froms {
        match imgs.wait(image).await {
            Avail::Ready(id) => ids.push(id),
            Avail::Missing(why) => return Err(image_failure(project, service, image, why)),
            // The run ends with it; this is only what the service shows meanwhile.
            Avail::Broken(f) => return Err(image_failure(project, service, image, f.to_string())),
            Avail::Pending => unreachable!("waited for"),
        }
    }
    Ok((ids, imgs.auths_for(&froms).await))
}

/// A service's own image (no build): there, or its failure.
async fn service_image(
    project: &Project,
    imgs: &Images<'_>,
    service: &str,
    image: &str,
) -> Result<(), Diagnostic> {
    match imgs.wait(image).await {
        Avail::Ready(_) => Ok(()),
        Avail::Missing(why) => Err(image_failure(project, service, image, why)),
        Avail::Broken(f) => Err(image_failure(project, service, image, f.to_string())),
        Avail::Pending => unreachable!("waited for"),
    }
}

fn image_failure(project: &Project, service: &str, image: &str, why: String) -> Diagnostic {
    Diagnostic::new(
        service,
        Phase::Image,
        format!("image {image} is not available locally and cannot be pulled"),
    )
    .evidence(why)
    .files(implicated(project, service))
}

/// The longest pull among the images `service` needed.
fn pull_secs(project: &Project, pulls: &[images::PullReport], service: &str) -> Option<f64> {
    let svc = &project.compose.services[service];
    let needed: Vec<String> = match &svc.build {
        Some(b) => b
            .dockerfile_text(&project.root)
            .map(|t| build::from_images(&t, &build_args(b)))
            .unwrap_or_default(),
        None => svc.image.iter().cloned().collect(),
    };
    pulls
        .iter()
        .filter(|p| p.ok && needed.contains(&p.image))
        .map(|p| p.secs)
        .reduce(f64::max)
}

/// Compose's build keys that are `/build` parameters.
fn build_options(b: &crate::compose::model::Build) -> build::BuildOptions {
    let Some(f) = b.full() else {
        return build::BuildOptions::default();
    };
    build::BuildOptions {
        labels: f
            .labels
            .iter()
            .flat_map(|l| l.pairs())
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        tags: f.tags.clone(),
        network: f.network.clone(),
        // Checked when the project loaded.
        shm_size: f
            .shm_size
            .as_ref()
            .and_then(|s| crate::compose::model::parse_bytes(&s.text()).ok()),
        extra_hosts: crate::compose::model::host_entries(&f.extra_hosts),
        // `build.pull` is not the builder's: masgen pulls the FROM images itself, before the
        // build, with the user's credentials (see images.rs).
        cache_from: f.cache_from.clone(),
    }
}

/// What the repair loop needs of verification: one pass over the system in `dir`. The
/// engine's is [`DockerVerifier`]; tests of the loop's rules give it another.
pub trait Verifier {
    fn verify(
        &self,
        dir: &Path,
        opts: &VerifyOptions,
    ) -> impl std::future::Future<Output = Result<VerifyReport, VerifyError>>;
}

/// Verification on the Docker engine: [`verify`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerVerifier;

impl Verifier for DockerVerifier {
    async fn verify(&self, dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
        verify(dir, opts).await
    }
}

/// Verify the system in `dir`.
pub async fn verify(dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    let t0 = Instant::now();
    let ev = &opts.events;
    ev.emit(Event::Phase {
        name: "verify: preflight".into(),
    });
    let project = load_with(dir, &opts.load)?;
    let mut report = VerifyReport {
        project: project.name.clone(),
        run_id: opts.run_id.clone(),
        warnings: project.warnings.clone(),
        ..Default::default()
    };
    for w in &project.warnings {
        ev.warn(w.clone());
    }
    if project.order.is_empty() {
        // As docker compose up: a project of volumes and networks only, or whose services
        // all wait for an inactive profile, runs nothing, and that is no failure.
        let why = if project.profiles.is_empty() {
            "nothing to run: the project defines no services".to_string()
        } else {
            format!(
                "nothing to run: every service waits for a profile that is not active (COMPOSE_PROFILES={} starts some)",
                project.profiles.join(",")
            )
        };
        ev.warn(why.clone());
        report.warnings.push(why);
        report.healthy = true;
        report.timings.total_secs = t0.elapsed().as_secs_f64();
        return Ok(report);
    }
    if !opts.allow_unsafe {
        let violations = check_policy(&project.compose, &project.root);
        if !violations.is_empty() {
            for v in violations {
                let d = Diagnostic::new(
                    &v.service,
                    Phase::Policy,
                    format!("refused: {} (pass --allow-unsafe to allow)", v.key),
                )
                .evidence(v.detail)
                .files(vec![project.rel(&project.file)]);
                ev.emit(Event::ServiceFailed {
                    service: d.service.clone(),
                    phase: "policy".into(),
                    summary: d.summary.clone(),
                });
                report.diagnostics.push(d);
            }
            report.services = project
                .order
                .iter()
                .map(|n| ServiceReport {
                    name: n.clone(),
                    state: "not_started".into(),
                    ..Default::default()
                })
                .collect();
            report.timings.total_secs = t0.elapsed().as_secs_f64();
            return Ok(report);
        }
    }
    let engine = Engine::connect().await?;
    let run_id = opts.run_id.clone();
    if opts.keep || opts.execute {
        // A kept system claims the project's names: a second one is refused, not torn down.
        let running = teardown::kept_containers(&engine, &project.name).await;
        if !running.is_empty() {
            return Err(VerifyError::Docker(DockerError::op(
                "keep",
                &project.name,
                format!(
                    "project {} is already running, kept by an earlier masgen run ({}): remove it with `masgen down {}` first, or verify without --keep",
                    project.name,
                    running.join(", "),
                    dir.display()
                ),
            )));
        }
    }
    // What runs that are over left behind; never another live run's objects, never a kept
    // system (see docker/scope.rs).
    teardown::remove_dead_runs(&engine, &project.name).await;
    let result = run_all(&engine, &project, opts, &mut report, t0).await;
    let leave_running = report.healthy && opts.keep && result.is_ok();
    let mut removed = if leave_running {
        teardown::Removed::default()
    } else {
        teardown::remove_labelled(&engine, RUN_LABEL, &run_id).await
    };
    if result.is_ok() {
        let current: Vec<String> = report
            .services
            .iter()
            .map(|s| s.image.clone())
            .filter(|i| !i.is_empty())
            .collect();
        removed.images = teardown::prune_images(&engine, &project.name, &current).await;
    }
    for why in &removed.left {
        ev.warn(why.clone());
        report.warnings.push(why.clone());
    }
    if !leave_running || removed.images > 0 {
        ev.emit(Event::TornDown {
            containers: removed.containers,
            networks: removed.networks,
            volumes: removed.volumes,
            images: removed.images,
        });
    }
    report.kept = leave_running;
    diagnose::order(&mut report.diagnostics);
    report.timings.total_secs = t0.elapsed().as_secs_f64();
    result.map(|_| report)
}

async fn run_all(
    engine: &Engine,
    project: &Project,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    t0: Instant,
) -> Result<(), VerifyError> {
    let ev = &opts.events;
    let mut images: HashMap<String, String> = HashMap::new();
    let mut svc_reports: HashMap<String, ServiceReport> = project
        .order
        .iter()
        .map(|n| {
            (
                n.clone(),
                ServiceReport {
                    name: n.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut failed: HashMap<String, Diagnostic> = HashMap::new();

    // Images named by services and by Dockerfiles: local, or pulled while builds start.
    let pull_settings = images::PullSettings {
        pull: opts.pull,
        offline: opts.offline,
    };
    let imgs = Images::plan(
        engine,
        ev,
        images::wanted(project, pull_settings),
        pull_settings,
        opts.pull_stall,
    )
    .await;
    let imgs = &imgs;
    for name in &project.order {
        let svc = &project.compose.services[name];
        if let (None, Some(i)) = (&svc.build, &svc.image) {
            images.insert(name.clone(), i.clone());
            if let Some(r) = svc_reports.get_mut(name) {
                r.image = i.clone();
            }
        }
    }
    report.timings.preflight_secs = t0.elapsed().as_secs_f64();

    // Builds run in parallel (`jobs` at a time), and each service starts as soon as its own
    // image is there and its depends_on conditions hold: a service whose image was cached
    // is up while the others still build.
    ev.emit(Event::Phase {
        name: "verify: build".into(),
    });
    let tb = Instant::now();
    let scope = scope_of(project, opts);
    let networks = run::ensure_networks(
        engine,
        &scope,
        &opts.run_id,
        &networks_wanted(project, &scope),
    )
    .await?;
    let volumes = run::ensure_volumes(
        engine,
        &scope,
        &opts.run_id,
        &volumes_wanted(project, &scope),
    )
    .await?;
    let settings = RunSettings {
        scope,
        publish_declared: opts.execute,
        memory: opts.memory,
        pids: opts.pids,
    };
    // With fewer build slots than images, the images heading the longest depends_on chains
    // go first, so that chain starts while the images at its end still build.
    let specs: Vec<BuildSpec> =
        crate::compose::graph::critical_first(&project.compose, &project.order)
            .iter()
            .filter(|n| !failed.contains_key(*n))
            .filter_map(|n| {
                let b = project.compose.services[n].build.as_ref()?;
                let ctx_rel = b
                    .context()
                    .trim_start_matches("./")
                    .trim_end_matches('/')
                    .to_string();
                let ctx_rel = if ctx_rel == "." {
                    String::new()
                } else {
                    ctx_rel
                };
                Some(BuildSpec {
                    service: n.clone(),
                    context: project.root.join(b.context()),
                    context_rel: ctx_rel,
                    dockerfile: match b.dockerfile_inline() {
                        Some(_) => build::INLINE_DOCKERFILE.to_string(),
                        None => b.dockerfile().to_string(),
                    },
                    dockerfile_inline: b.dockerfile_inline().map(str::to_string),
                    args: build_args(b),
                    target: b.target().map(str::to_string),
                    log_dir: Some(project.root.join(crate::workspace::MASGEN_DIR).join("logs")),
                    no_cache: opts.no_cache
                        || b.full().and_then(|f| f.no_cache).is_some_and(|f| f.0),
                    bases: Vec::new(),
                    auths: Default::default(),
                    run_id: opts.run_id.clone(),
                    options: build_options(b),
                })
            })
            .collect();
    let mut channels: HashMap<String, (watch::Sender<St>, watch::Receiver<St>)> = HashMap::new();
    for n in &project.order {
        let init = if failed.contains_key(n) {
            St::Failed
        } else {
            St::Pending
        };
        channels.insert(n.clone(), watch::channel(init));
    }
    let mut image_channels: HashMap<
        String,
        (watch::Sender<ImageState>, watch::Receiver<ImageState>),
    > = HashMap::new();
    for n in &project.order {
        let known = match images.get(n) {
            Some(i) => ImageState::Ready(i.clone()),
            // A service that neither builds nor names an image has none to wait for.
            None if project.compose.services[n].build.is_none() => ImageState::Failed,
            None => ImageState::Pending,
        };
        image_channels.insert(n.clone(), watch::channel(known));
    }
    let (channels, image_channels) = (&channels, &image_channels);
    let builds = futures_util::stream::iter(specs)
        .map(|mut spec| async move {
            // Its FROM images first: pulled, or being pulled, or not to be had.
            let r = match base_images(project, imgs, &spec.service).await {
                Ok((ids, auths)) => {
                    spec.bases = ids;
                    spec.auths = auths;
                    ev.emit(Event::BuildStarted {
                        service: spec.service.clone(),
                    });
                    build::build(engine, &project.name, &spec).await
                }
                Err(d) => Err(d),
            };
            match &r {
                Ok(b) => {
                    ev.emit(Event::BuildFinished {
                        service: spec.service.clone(),
                        secs: b.secs,
                        cached: b.cached,
                        patched: b.patched,
                        ok: true,
                    });
                    image_channels[&spec.service]
                        .0
                        .send_replace(ImageState::Ready(b.image.clone()));
                }
                Err(_) => {
                    ev.emit(Event::BuildFinished {
                        service: spec.service.clone(),
                        secs: 0.0,
                        cached: false,
                        patched: false,
                        ok: false,
                    });
                    // Dependents learn it from the service's own state, as for any failure.
                    channels[&spec.service].0.send_replace(St::Failed);
                    image_channels[&spec.service]
                        .0
                        .send_replace(ImageState::Failed);
                }
            }
            (spec.service, r)
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect::<Vec<(String, Result<Built, Diagnostic>)>>();
    let builds = async { (builds.await, Instant::now()) };
    let start_announced = std::sync::atomic::AtomicBool::new(false);
    let tasks = project
        .order
        .iter()
        .filter(|n| !failed.contains_key(*n))
        .map(|name| {
            let (volumes, settings, networks, start_announced) =
                (&volumes, &settings, &networks, &start_announced);
            async move {
                let mut rx = image_channels[name].1.clone();
                let image = match rx
                    .wait_for(|i| *i != ImageState::Pending)
                    .await
                    .map(|i| i.clone())
                {
                    Ok(ImageState::Ready(image))
                        if project.compose.services[name].build.is_none() =>
                    {
                        // Its own image: local, or when its pull ends.
                        if let Err(d) = service_image(project, imgs, name, &image).await {
                            channels[name].0.send_replace(St::Failed);
                            return Some((name.clone(), Ok(ServiceOutcome::Failed(Box::new(d)))));
                        }
                        image
                    }
                    Ok(ImageState::Ready(image)) => image,
                    _ if project.compose.services[name].build.is_none() => {
                        channels[name].0.send_replace(St::Failed);
                        return Some((
                            name.clone(),
                            Ok(ServiceOutcome::Failed(Box::new(Diagnostic::new(
                                name,
                                Phase::Image,
                                "no image to run",
                            )))),
                        ));
                    }
                    // Its build failed: that failure is the service's diagnostic.
                    _ => return None,
                };
                if !start_announced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    ev.emit(Event::Phase {
                        name: "verify: start".into(),
                    });
                }
                let outcome = start_service(
                    engine, project, opts, name, &image, volumes, settings, networks, channels,
                )
                .await;
                if outcome.is_err() {
                    // Docker itself failed: the run ends with that error, and dependents must not wait for this one.
                    channels[name].0.send_replace(St::Failed);
                }
                Some((name.clone(), outcome))
            }
        });
    // Pulls, builds and starts overlap; a registry failure of the environment ends them all.
    let work = futures_util::future::join3(
        imgs.pull_all(),
        builds,
        futures_util::future::join_all(tasks),
    );
    let (_, (builds, built_at), outcomes) = tokio::select! {
        done = work => done,
        broken = imgs.broken() => return Err(VerifyError::Registry(broken)),
    };
    if let Some(broken) = imgs.broken_now() {
        return Err(VerifyError::Registry(broken));
    }
    report.pulls = imgs.reports();
    for (name, r) in svc_reports.iter_mut() {
        r.pull_secs = pull_secs(project, &report.pulls, name);
    }
    report.timings.build_secs = built_at.duration_since(tb).as_secs_f64();
    if let Some(why) = engine.buildkit_refused.get() {
        let w = format!(
            "the daemon refused a BuildKit build ({why}); the images were built with the classic builder instead, which commits every Dockerfile step and is slower (DOCKER_BUILDKIT=0 skips the attempt)"
        );
        ev.warn(w.clone());
        report.warnings.push(w);
    }
    for (name, r) in builds {
        let rep = svc_reports.get_mut(&name).expect("service in order");
        match r {
            Ok(b) => {
                rep.image = b.image.clone();
                rep.build_secs = Some(b.secs);
                rep.cached = b.cached;
            }
            Err(d) => {
                failed.insert(name, d);
            }
        }
    }
    let mut running: Vec<(String, String)> = Vec::new();
    for (name, outcome) in outcomes.into_iter().flatten() {
        let rep = svc_reports.get_mut(&name).expect("service in order");
        match outcome? {
            ServiceOutcome::Ready {
                secs,
                health,
                container,
                ports,
            } => {
                rep.state = "ready".into();
                rep.health = health;
                rep.ready_secs = Some(secs);
                rep.ports = ports;
                running.push((name, container));
            }
            ServiceOutcome::Completed { secs } => {
                rep.state = "completed".into();
                rep.health = "none".into();
                rep.ready_secs = Some(secs);
            }
            ServiceOutcome::Failed(d) => {
                rep.state = if d.consequence {
                    "not_started".into()
                } else {
                    "failed".into()
                };
                failed.insert(name, *d);
            }
        }
    }
    for (name, d) in &failed {
        let rep = svc_reports.get_mut(name).expect("service in order");
        if rep.state.is_empty() {
            rep.state = "not_started".into();
        }
        if !d.consequence {
            ev.emit(Event::ServiceFailed {
                service: name.clone(),
                phase: d.phase.as_str().into(),
                summary: d.summary.clone(),
            });
        }
    }
    // Starting overlaps building: this is what came after the last build.
    report.timings.start_secs = tb.elapsed().as_secs_f64() - report.timings.build_secs;

    // Stability: nothing may exit or turn unhealthy a few seconds in.
    if failed.is_empty() && !opts.stability.is_zero() {
        ev.emit(Event::Phase {
            name: format!("verify: stability window ({}s)", opts.stability.as_secs()),
        });
        let tw = Instant::now();
        let end = Instant::now() + opts.stability;
        while Instant::now() < end && failed.is_empty() {
            tokio::time::sleep(
                Duration::from_millis(500).min(end.saturating_duration_since(Instant::now())),
            )
            .await;
            for (name, container) in &running {
                let diagnostic = match health::snapshot(engine, container).await {
                    None => Some(Diagnostic::new(name, Phase::Stability, "the container disappeared after becoming ready (removed from outside masgen?)")),
                    Some(s) => {
                        let summary = if !s.running {
                            Some(format!("exited with code {} after becoming ready{}", s.exit_code.unwrap_or(-1), if s.oom_killed { " (killed: out of memory)" } else { "" }))
                        } else if s.health.as_deref() == Some("unhealthy") {
                            Some("turned unhealthy after becoming ready".to_string())
                        } else {
                            None
                        };
                        match summary {
                            Some(summary) => {
                                let logs = logs::fetch_tail(engine, container, logs::KEEP_LINES).await;
                                Some(Diagnostic::new(name, Phase::Stability, summary).evidence(evidence(Some(&s), &logs)))
                            }
                            None => None,
                        }
                    }
                };
                if let Some(d) = diagnostic {
                    let d = d.files(implicated(project, name));
                    ev.emit(Event::ServiceFailed {
                        service: name.clone(),
                        phase: "stability".into(),
                        summary: d.summary.clone(),
                    });
                    svc_reports.get_mut(name).expect("service").state = "failed".into();
                    failed.insert(name.clone(), d);
                }
            }
        }
        report.timings.stability_secs = tw.elapsed().as_secs_f64();
    }
    report.healthy = failed.is_empty();
    keep_logs(
        engine,
        project,
        &settings.scope,
        &report_started(&svc_reports),
    )
    .await;
    report.diagnostics = project
        .order
        .iter()
        .filter_map(|n| failed.remove(n))
        .collect();
    report.services = project
        .order
        .iter()
        .filter_map(|n| svc_reports.remove(n))
        .collect();

    if report.healthy && (opts.keep || opts.execute) {
        apply_restart_policies(engine, ev, project, &running).await;
    }
    if report.healthy && opts.execute {
        follow_until_interrupted(engine, ev, &running, &report.services).await;
    }
    Ok(())
}

/// A system left running gets the compose file's restart policies. While verifying, no
/// container restarts: a crash is a failure, with its exit code and logs, not a restart.
async fn apply_restart_policies(
    engine: &Engine,
    ev: &Events,
    project: &Project,
    running: &[(String, String)],
) {
    use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
    for (name, container) in running {
        let Some(Ok(Some((policy, retries)))) = project.compose.services[name]
            .restart
            .as_deref()
            .map(crate::compose::model::parse_restart)
        else {
            continue;
        };
        let name_enum = match policy {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            _ => RestartPolicyNameEnum::ON_FAILURE,
        };
        let body = ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(name_enum),
                maximum_retry_count: retries,
            }),
            ..Default::default()
        };
        if let Err(e) = engine.docker.update_container(container, body).await {
            ev.warn(format!(
                "{name}: could not set its restart policy ({policy}) on the running container: {e}"
            ));
        }
    }
}

/// The host port of Docker's "port is already allocated" (another container holds it) or
/// "address already in use" (another program does).
fn held_port(msg: &str) -> Option<u16> {
    let before = if let Some(i) = msg.find(" failed: port is already allocated") {
        &msg[..i]
    } else if let Some(i) = msg.find(": bind: address already in use") {
        &msg[..i]
    } else {
        return None;
    };
    before.rsplit(':').next()?.trim().parse().ok()
}

fn held_reason(msg: &str) -> &'static str {
    if msg.contains("port is already allocated") {
        "another container publishes it"
    } else {
        "another program listens on it"
    }
}

/// Whether a service of the system other than `name` publishes host port `port`.
fn published_by_another(project: &Project, name: &str, port: u16) -> bool {
    project
        .compose
        .services
        .iter()
        .filter(|(n, _)| n.as_str() != name)
        .any(|(_, s)| {
            s.ports
                .iter()
                .filter_map(|p| p.mappings().ok())
                .flatten()
                .any(|m| m.host_port == Some(port))
        })
}

/// Services whose container was created (any state but not started).
fn report_started(reports: &HashMap<String, ServiceReport>) -> Vec<String> {
    let mut names: Vec<String> = reports
        .iter()
        .filter(|(_, r)| r.state != "not_started" && !r.state.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    names
}

/// Keep the last lines of every container of the run in `.masgen/logs/<service>.log`:
/// the containers are about to be removed, and their output is the evidence.
async fn keep_logs(engine: &Engine, project: &Project, scope: &Scope, services: &[String]) {
    let dir = project.root.join(crate::workspace::MASGEN_DIR).join("logs");
    for name in services {
        let text = logs::fetch_tail(engine, &scope.container(name), logs::KEEP_LINES).await;
        // Best effort: a log that cannot be written must not change the verdict.
        let _ = crate::workspace::write_atomic(&dir.join(format!("{name}.log")), text.as_bytes());
    }
}

/// The root-cause lines of a failed container: its exit code (and OOM), Docker's own
/// error, the health probes' output, and the last log lines.
fn evidence(s: Option<&health::Snapshot>, logs: &str) -> String {
    let mut e = String::new();
    if let Some(s) = s {
        if let Some(code) = s.exit_code.filter(|_| !s.running) {
            e.push_str(&format!(
                "exit code: {code}{}\n",
                if s.oom_killed {
                    " (killed: out of memory)"
                } else {
                    ""
                }
            ));
        }
        if let Some(err) = &s.error {
            e.push_str(&format!("docker: {err}\n"));
        }
        if !s.probes.is_empty() {
            e.push_str(&format!(
                "health probe output (latest last):\n{}\n",
                s.probes.join("\n")
            ));
        }
    }
    e.push_str(&format!("last log lines:\n{}", tail(logs, 30)));
    e
}

enum ServiceOutcome {
    Ready {
        secs: f64,
        health: String,
        container: String,
        ports: Vec<String>,
    },
    Completed {
        secs: f64,
    },
    Failed(Box<Diagnostic>),
}

/// Create the container, wait for the dependencies' conditions, start it and wait for readiness.
#[allow(clippy::too_many_arguments)]
async fn start_service(
    engine: &Engine,
    project: &Project,
    opts: &VerifyOptions,
    name: &str,
    image: &str,
    volumes: &HashMap<String, String>,
    settings: &RunSettings,
    networks: &run::Networks,
    channels: &HashMap<String, (watch::Sender<St>, watch::Receiver<St>)>,
) -> Result<ServiceOutcome, DockerError> {
    let me = &channels[name].0;
    let fail = |d: Diagnostic| {
        me.send_replace(St::Failed);
        Ok(ServiceOutcome::Failed(Box::new(d)))
    };
    let svc = &project.compose.services[name];
    // Created now, started when its dependencies allow (as compose does): creation is
    // off the path from one dependency level to the next.
    let container = settings.scope.container(name);
    // A service taking another's volumes or joining its namespaces can only be created
    // once that container exists.
    for source in svc.created_after() {
        let mut rx = channels[&source].1.clone();
        if rx
            .wait_for(|s| *s != St::Pending)
            .await
            .map(|s| *s == St::Failed)
            .unwrap_or(true)
        {
            return fail(Diagnostic::not_started(
                name,
                &source,
                format!("not started: needs the container of {source}, which failed"),
            ));
        }
    }
    // The container's own settings are judged first, then its secrets and configs.
    let files = project
        .compose
        .file_mounts(svc, &project.root, &|k| project.lookup(k));
    let made = run::container_body(
        &opts.run_id,
        name,
        svc,
        image,
        &project.root,
        networks,
        volumes,
        settings,
        files.as_deref().unwrap_or_default(),
    )
    .and_then(|body| files.map(|files| (body, files)));
    let (body, files) = match made {
        Ok(made) => made,
        Err(e) => {
            return fail(Diagnostic::new(name, Phase::Start, e).files(implicated(project, name)))
        }
    };
    if let Err(why) = run::create(engine, &container, body).await? {
        return fail(
            Diagnostic::new(name, Phase::Start, "Docker refused to create the container")
                .evidence(why)
                .files(implicated(project, name)),
        );
    }
    let extra = run::extra_endpoints(name, svc, networks);
    if let Err(why) = run::connect_networks(engine, &container, extra).await {
        return fail(
            Diagnostic::new(
                name,
                Phase::Start,
                "Docker refused to connect the container to its networks",
            )
            .evidence(why)
            .files(implicated(project, name)),
        );
    }
    if let Err(why) = run::copy_files(engine, &container, &files).await {
        return fail(
            Diagnostic::new(
                name,
                Phase::Start,
                "its secrets and configs could not be put into the container",
            )
            .evidence(why)
            .files(implicated(project, name)),
        );
    }
    for (dep, cond) in svc
        .depends_on
        .as_ref()
        .map(|d| d.entries())
        .unwrap_or_default()
    {
        let mut rx = channels[&dep].1.clone();
        let ok = rx
            .wait_for(|s| match cond {
                Condition::ServiceStarted => *s != St::Pending,
                Condition::ServiceHealthy => matches!(s, St::Ready | St::Completed | St::Failed),
                Condition::ServiceCompletedSuccessfully => matches!(s, St::Completed | St::Failed),
            })
            .await
            .map(|s| *s != St::Failed)
            .unwrap_or(false);
        // An optional dependency (`required: false`) that failed is warned about, as
        // compose does, and the service starts anyway.
        if !ok && svc.depends_on.as_ref().is_some_and(|d| d.optional(&dep)) {
            opts.events.warn(format!("{name}: its optional dependency {dep} failed (required: false): starting it anyway"));
            continue;
        }
        if !ok {
            return fail(Diagnostic::not_started(
                name,
                &dep,
                format!("not started: depends on {dep}, which failed"),
            ));
        }
    }
    let started = Instant::now();
    if let Err(e) = engine
        .docker
        .start_container(
            &container,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        let msg = e.to_string();
        // Another program on this machine holds a port --execute publishes: nothing in the
        // system is wrong, so no model is asked to change it. Two of the system's own
        // services publishing one port is the system's fault, and goes on as a diagnostic.
        if let Some(port) = held_port(&msg).filter(|p| !published_by_another(project, name, *p)) {
            return Err(crate::docker::DockerError::HostPortInUse {
                service: name.to_string(),
                message: format!("port {port}: {}", held_reason(&msg)),
            });
        }
        return fail(
            Diagnostic::new(name, Phase::Start, "the container could not start")
                .evidence(msg)
                .files(implicated(project, name)),
        );
    }
    me.send_replace(St::Started);
    opts.events.emit(Event::ContainerStarted {
        service: name.to_string(),
        container: container.clone(),
    });
    let mut readiness = readiness(project, name, opts.settle);
    // A HEALTHCHECK in the image counts like one in the compose file.
    if let (Readiness::Settle(_), Some(s)) = (readiness, health::snapshot(engine, &container).await)
    {
        if s.health.is_some() {
            readiness = Readiness::Healthcheck;
        }
    }
    let wait = health::wait_ready(
        engine,
        &container,
        readiness,
        Instant::now() + opts.health_timeout,
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let outcome = match wait {
        Wait::Ready => {
            me.send_replace(St::Ready);
            opts.events.emit(Event::ServiceReady {
                service: name.to_string(),
                secs,
            });
            let ports = run::published_ports(engine, &container)
                .await
                .into_iter()
                .map(|(p, h)| format!("{p} -> {h}"))
                .collect();
            let health = if readiness == Readiness::Healthcheck {
                "healthy"
            } else {
                "none"
            };
            ServiceOutcome::Ready {
                secs,
                health: health.into(),
                container,
                ports,
            }
        }
        Wait::Completed => {
            me.send_replace(St::Completed);
            opts.events.emit(Event::ServiceReady {
                service: name.to_string(),
                secs,
            });
            ServiceOutcome::Completed { secs }
        }
        Wait::Exited(s) => {
            let logs = logs::fetch_tail(engine, &container, logs::KEEP_LINES).await;
            let code = s.exit_code.unwrap_or(-1);
            let summary = match (readiness, code) {
                (Readiness::Completes, _) => format!("one-shot job exited with code {code}"),
                (_, 0) => "exited with code 0, but it should keep running".to_string(),
                _ => format!(
                    "crashed: exited with code {code}{}",
                    if s.oom_killed { " (out of memory)" } else { "" }
                ),
            };
            return fail(
                Diagnostic::new(name, Phase::Crash, summary)
                    .evidence(evidence(Some(&s), &logs))
                    .files(implicated(project, name)),
            );
        }
        Wait::ProbeCannotRun(s, p) => {
            let logs = logs::fetch_tail(engine, &container, logs::KEEP_LINES).await;
            let test = s
                .test
                .as_ref()
                .map(|(t, _)| t.join(" "))
                .unwrap_or_default();
            let head = format!("healthcheck: {test}\nmasgen's runs of it exited {} every time, through the start period and for at least {}s: {}\n", p.exit_code, health::CANNOT_RUN_FOR.as_secs(), p.output.trim());
            return fail(
                Diagnostic::new(name, Phase::Health, format!("unhealthy: its healthcheck cannot run in the container (exit {}: the program is not in the image)", p.exit_code))
                    .evidence(format!("{head}{}", evidence(Some(&s), &logs)))
                    .files(implicated(project, name)),
            );
        }
        Wait::Unhealthy(s) => {
            let logs = logs::fetch_tail(engine, &container, logs::KEEP_LINES).await;
            return fail(
                Diagnostic::new(
                    name,
                    Phase::Health,
                    "unhealthy: its healthcheck keeps failing",
                )
                .evidence(evidence(Some(&s), &logs))
                .files(implicated(project, name)),
            );
        }
        Wait::TimedOut(s) => {
            let logs = logs::fetch_tail(engine, &container, logs::KEEP_LINES).await;
            let what = match readiness {
                Readiness::Completes => "did not finish",
                _ => "not ready",
            };
            return fail(
                Diagnostic::new(
                    name,
                    Phase::Health,
                    format!(
                        "{what} after {}s (--health-timeout)",
                        opts.health_timeout.as_secs()
                    ),
                )
                .evidence(evidence(s.as_ref(), &logs))
                .files(implicated(project, name)),
            );
        }
        Wait::Gone => {
            return fail(Diagnostic::new(
                name,
                Phase::Start,
                "the container disappeared while starting",
            ))
        }
    };
    Ok(outcome)
}

/// `--execute`: show where services answer, follow logs until Ctrl-C.
async fn follow_until_interrupted(
    engine: &Engine,
    ev: &Events,
    running: &[(String, String)],
    services: &[ServiceReport],
) {
    for s in services {
        for p in &s.ports {
            if let Some((port, host)) = p.split_once(" -> ") {
                ev.emit(Event::Published {
                    service: s.name.clone(),
                    container_port: port.into(),
                    host: host.into(),
                });
            }
        }
    }
    let mut handles = Vec::new();
    for (name, container) in running {
        let (_, h) = logs::follow(engine, container, name, Some(ev.clone()));
        handles.push(h);
    }
    let _ = tokio::signal::ctrl_c().await;
    for h in handles {
        h.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_host_ports_are_read_from_dockers_two_messages() {
        let proxy = "Docker responded with status code 500: driver failed programming external connectivity on endpoint x-web-1 (21dd): Error starting userland proxy: listen tcp4 0.0.0.0:18555: bind: address already in use";
        assert_eq!(
            (held_port(proxy), held_reason(proxy)),
            (Some(18555), "another program listens on it")
        );
        let allocated = "Docker responded with status code 500: driver failed programming external connectivity on endpoint x-b-1 (9f): Bind for 0.0.0.0:8080 failed: port is already allocated";
        assert_eq!(
            (held_port(allocated), held_reason(allocated)),
            (Some(8080), "another container publishes it")
        );
        assert_eq!(
            held_port("OCI runtime create failed: exec: \"nope\": not found"),
            None
        );
    }
}
