//! One verification pass: build, start in dependency order, wait for every service to be
//! ready, watch a stability window, report, tear down.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::diagnose::{self, Diagnostic, Phase};
use crate::events::{Event, Events};
use crate::plan::{ImageSource, ObjectPlan, PlanError, SystemPlan};
use crate::runtime::build::Built;
use crate::runtime::container::{NetworkWanted, Networks, RunSettings};
use crate::runtime::health::HealthState;
use crate::runtime::pull::PullFailure;
use crate::runtime::scope::Scope;
use crate::runtime::{Connect, Runtime, RuntimeError, KEEP_LINES};

mod builds;
pub mod images;
pub mod smoke;
mod stability;
mod start;
pub mod tap;

use images::Images;
use start::ServiceOutcome;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The project cannot be read (bad input).
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Credentials, or a registry that cannot be reached: the environment's failure.
    #[error("{0}")]
    Registry(PullFailure),
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
    pub load: crate::plan::LoadOptions,
    /// A pull fails once the registry sends nothing for this long.
    pub pull_stall: Duration,
    /// `--pull always|missing|never`: overrides every service's `pull_policy`.
    pub pull: Option<crate::plan::PullPolicy>,
    /// `--offline`: reach no registry; use local images only.
    pub offline: bool,
    /// Run the smoke checks (the services of the profile `smoke`) once the system is
    /// healthy (`--no-smoke`: false).
    pub smoke: bool,
    /// How long one smoke service may run before it fails and is removed.
    pub smoke_timeout: Duration,
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
            smoke: true,
            smoke_timeout: Duration::from_secs(60),
            run_id: new_run_id(),
            events: Events::none(),
        }
    }
}

/// Parallel builds by default: one per core, and at least 4. Image builds wait on the
/// daemon as much as on a CPU (an export walks the image's files, a RUN step may download),
/// so even 2 cores build 4 at once faster than 2 (README's bench-verify section).
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
    pub state: ServiceState,
    /// `healthy`, `none` (no healthcheck), or empty when never started.
    pub health: HealthState,
    pub build_secs: Option<f64>,
    /// Seconds its image (or its Dockerfile's FROM images) took to pull, when pulled.
    pub pull_secs: Option<f64>,
    pub cached: bool,
    pub ready_secs: Option<f64>,
    /// "80/tcp -> 127.0.0.1:49153"
    pub ports: Vec<String>,
    /// Its containers, when it runs more than one (`scale`, `deploy.replicas`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    pub preflight_secs: f64,
    pub build_secs: f64,
    pub start_secs: f64,
    pub stability_secs: f64,
    /// The smoke checks, all of them.
    pub smoke_secs: f64,
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
    /// The smoke services (profile `smoke`), each with its checks; empty: the project
    /// has none.
    pub smoke: Vec<smoke::SmokeReport>,
    /// Requirements of the spec the system does not meet as asked, as the model said when
    /// it wrote it (from `.masgen/state.json`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<crate::protocol::Unmet>,
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

/// Where a service stands: while verifying (its dependents wait on it), and in the report
/// (`ready`, `completed`, `failed` or `not_started`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Never started: a dependency failed, or its image never came.
    #[default]
    NotStarted,
    /// Waiting for its image or its dependencies.
    Pending,
    /// Its container runs; not ready yet.
    Started,
    Ready,
    /// A one-shot job that exited 0.
    Completed,
    Failed,
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::NotStarted => "not_started",
            ServiceState::Pending => "pending",
            ServiceState::Started => "started",
            ServiceState::Ready => "ready",
            ServiceState::Completed => "completed",
            ServiceState::Failed => "failed",
        }
    }

    /// Whether it got as far as a container (whose logs are worth keeping).
    fn had_container(self) -> bool {
        matches!(
            self,
            ServiceState::Ready | ServiceState::Completed | ServiceState::Failed
        )
    }
}

/// Each container with `pre_stop` hooks, and its hooks.
fn pre_stop_hooks(plan: &SystemPlan, scope: &Scope) -> Vec<(String, Vec<crate::plan::HookSpec>)> {
    plan.services
        .iter()
        .filter(|s| !s.pre_stop.is_empty())
        .flat_map(|s| (1..=s.replicas).map(|n| (scope.replica(&s.name, n), s.pre_stop.clone())))
        .collect()
}

/// Before the containers are stopped, their `pre_stop` hooks run, as Compose runs them
/// on `down`: each for up to 10 s (Compose's stop timeout); one that fails is a warning
/// (the system was judged already). A container that is not running has none to run.
async fn run_pre_stop(
    rt: &impl Runtime,
    stops: &[(String, Vec<crate::plan::HookSpec>)],
    events: &Events,
) -> Vec<String> {
    let mut failed = Vec::new();
    for (container, hooks) in stops {
        let running = rt.snapshot(container).await.is_some_and(|s| s.running);
        if !running {
            continue;
        }
        for hook in hooks {
            let deadline = Instant::now() + Duration::from_secs(10);
            let why = match rt.exec(container, hook, deadline).await {
                Ok(r) if r.exit_code == Some(0) => continue,
                Ok(r) => match r.exit_code {
                    Some(code) => format!("exited with code {code}"),
                    None => "did not end within 10 s".to_string(),
                },
                Err(e) => e.words().to_string(),
            };
            let line = format!(
                "{container}: pre_stop hook ({}) {why}",
                hook.command.join(" ")
            );
            events.warn(line.clone());
            failed.push(line);
        }
    }
    failed
}

/// `masgen down` of a kept system: its containers' `pre_stop` hooks, before they are
/// removed. Returns the hooks that failed.
pub async fn pre_stop_kept(rt: &impl Runtime, plan: &SystemPlan, events: &Events) -> Vec<String> {
    run_pre_stop(rt, &pre_stop_hooks(plan, &kept_scope(plan)), events).await
}

/// How this verification names its objects: the run in every name, or, when the system
/// is kept (`--keep`, `--execute`), the project's own names and its `container_name:`s.
fn scope_of(plan: &SystemPlan, opts: &VerifyOptions) -> Scope {
    if opts.keep || opts.execute {
        kept_scope(plan)
    } else {
        Scope::run(&plan.project, &opts.run_id)
    }
}

/// A kept system's names: the project's own, and its `container_name:`s.
fn kept_scope(plan: &SystemPlan) -> Scope {
    let names = plan
        .services
        .iter()
        .chain(&plan.checks)
        .filter_map(|s| Some((s.name.clone(), s.container_name.clone()?)))
        .collect();
    Scope::kept(&plan.project, names)
}

/// A network or volume's runtime name: an external one's own name (its `name:`, else its
/// key), else the run's or the project's (see [`Scope::object`]).
fn wanted(scope: &Scope, objects: &[ObjectPlan]) -> Vec<NetworkWanted> {
    objects
        .iter()
        .map(|o| NetworkWanted {
            docker_name: match (o.external, o.explicit_name.as_deref()) {
                (true, Some(n)) => n.to_string(),
                (true, None) => o.name.clone(),
                (false, n) => scope.object(&o.name, n),
            },
            external: o.external,
            name: o.name.clone(),
            options: o.options.clone(),
        })
        .collect()
}

/// What the repair loop needs of verification: one pass over the system in `dir`. A
/// runtime's is [`RuntimeVerifier`]; tests of the loop's rules give it another.
pub trait Verifier {
    fn verify(
        &self,
        dir: &Path,
        opts: &VerifyOptions,
    ) -> impl std::future::Future<Output = Result<VerifyReport, VerifyError>>;
}

/// Verification on a runtime: [`verify`].
pub struct RuntimeVerifier<C: Connect>(pub C);

impl<C: Connect> Verifier for RuntimeVerifier<C> {
    async fn verify(&self, dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
        verify(&self.0, dir, opts).await
    }
}

/// Verify the system in `dir` on the runtime `rt` gives: plan it (as Docker Compose reads
/// it), then run the plan.
pub async fn verify(
    rt: &impl Connect,
    dir: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let t0 = Instant::now();
    opts.events.emit(Event::Phase {
        name: "verify: preflight".into(),
    });
    let plan = crate::plan::load(dir, &opts.load, opts.smoke, opts.settle)?;
    let mut report = verify_plan(rt, plan, opts, t0).await?;
    report.unmet = crate::workspace::State::load(dir)
        .ok()
        .flatten()
        .map(|s| s.unmet)
        .unwrap_or_default();
    Ok(report)
}

/// Verify a planned system on the runtime `rt` gives (connected only when something is to
/// run), from `t0` on.
pub async fn verify_plan(
    rt: &impl Connect,
    plan: SystemPlan,
    opts: &VerifyOptions,
    t0: Instant,
) -> Result<VerifyReport, VerifyError> {
    let ev = &opts.events;
    let mut report = VerifyReport {
        project: plan.project.clone(),
        run_id: opts.run_id.clone(),
        warnings: plan.warnings.clone(),
        ..Default::default()
    };
    for w in &plan.warnings {
        ev.warn(w.clone());
    }
    if plan.services.is_empty() {
        nothing_to_run(&plan, ev, &mut report);
    } else if !opts.allow_unsafe && refused_by_policy(&plan, ev, &mut report) {
        // The policy's refusals are the report.
    } else {
        let rt = rt.connect().await?;
        refuse_second_keep(rt, &plan, opts).await?;
        let project = plan.project.clone();
        let stops = pre_stop_hooks(&plan, &scope_of(&plan, opts));
        let result = verify_on(rt, plan, opts, &mut report, t0).await;
        let leave_running = report.healthy && opts.keep && result.is_ok();
        if !leave_running {
            let failed = run_pre_stop(rt, &stops, &opts.events).await;
            report.warnings.extend(failed);
        }
        tear_down(rt, &project, opts, &mut report, result.is_ok()).await;
        result?;
    }
    diagnose::order(&mut report.diagnostics);
    report.timings.total_secs = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// As docker compose up: a project of volumes and networks only, or whose services all
/// wait for an inactive profile, runs nothing, and that is no failure.
fn nothing_to_run(plan: &SystemPlan, ev: &Events, report: &mut VerifyReport) {
    let why = if plan.profiles.is_empty() {
        "nothing to run: the project defines no services".to_string()
    } else {
        format!(
            "nothing to run: every service waits for a profile that is not active (COMPOSE_PROFILES={} starts some)",
            plan.profiles.join(",")
        )
    };
    ev.warn(why.clone());
    report.warnings.push(why);
    report.healthy = true;
}

/// Whether the policy refuses something of the project (each refusal in the report; no
/// service starts).
fn refused_by_policy(plan: &SystemPlan, ev: &Events, report: &mut VerifyReport) -> bool {
    if plan.refused.is_empty() {
        return false;
    }
    for v in plan.refused.iter().cloned() {
        let d = Diagnostic::new(
            &v.service,
            Phase::Policy,
            format!("refused: {} (pass --allow-unsafe to allow)", v.key),
        )
        .evidence(v.detail)
        .files(vec![plan.compose_file.clone()]);
        ev.emit(Event::ServiceFailed {
            service: d.service.clone(),
            phase: Phase::Policy,
            summary: d.summary.clone(),
        });
        report.diagnostics.push(d);
    }
    report.services = plan
        .services
        .iter()
        .map(|s| ServiceReport {
            name: s.name.clone(),
            state: ServiceState::NotStarted,
            ..Default::default()
        })
        .collect();
    true
}

/// A kept system claims the project's names: a second one is refused, not torn down.
async fn refuse_second_keep(
    rt: &impl Runtime,
    plan: &SystemPlan,
    opts: &VerifyOptions,
) -> Result<(), VerifyError> {
    if !(opts.keep || opts.execute) {
        return Ok(());
    }
    let running = rt.kept_containers(&plan.project).await;
    if running.is_empty() {
        return Ok(());
    }
    Err(VerifyError::Runtime(RuntimeError::AlreadyKept {
        project: plan.project.clone(),
        running,
        dir: plan.root.display().to_string(),
    }))
}

/// On the runtime: clear what runs that are over left behind (never another live run's
/// objects, never a kept system: see runtime/scope.rs), run the steps, and with
/// `--execute` follow a healthy system until Ctrl-C.
async fn verify_on(
    rt: &impl Runtime,
    plan: SystemPlan,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    t0: Instant,
) -> Result<(), VerifyError> {
    builds_can_run(rt, &plan)?;
    rt.remove_dead_runs(&plan.project).await;
    let running = run_all(rt, plan, opts, report, t0).await?;
    if report.healthy && opts.execute {
        follow_until_interrupted(rt, &opts.events, &running, &report.services).await;
    }
    Ok(())
}

/// A build that mounts secrets, SSH agents or named contexts on a runtime that cannot is
/// the environment's setting, known before anything runs: never a repair round.
fn builds_can_run(rt: &impl Runtime, plan: &SystemPlan) -> Result<(), RuntimeError> {
    if rt.mounts_in_builds() {
        return Ok(());
    }
    for s in plan.services.iter().chain(&plan.checks) {
        let Some(ImageSource::Build(b)) = &s.image else {
            continue;
        };
        let secrets = b.secrets.as_ref().map_or(true, |s| !s.is_empty());
        let what = if secrets {
            "build.secrets"
        } else if !b.ssh.is_empty() {
            "build.ssh"
        } else if !b.contexts.is_empty() {
            "build.additional_contexts"
        } else {
            continue;
        };
        return Err(RuntimeError::NeedsBuildKit {
            service: s.name.clone(),
            what,
        });
    }
    Ok(())
}

/// Remove what this run made (unless a healthy system is kept), and the project's images
/// this run superseded (after a run that ended normally).
async fn tear_down(
    rt: &impl Runtime,
    project: &str,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    ended_normally: bool,
) {
    let ev = &opts.events;
    let leave_running = report.healthy && opts.keep && ended_normally;
    let mut removed = if leave_running {
        crate::runtime::Removed::default()
    } else {
        // A kept or executed system's volumes are the project's own: its data stays.
        rt.remove_run(&opts.run_id, !(opts.keep || opts.execute))
            .await
    };
    if ended_normally {
        let current: Vec<String> = report
            .services
            .iter()
            .map(|s| s.image.clone())
            .chain(report.smoke.iter().map(|s| s.image.clone()))
            .filter(|i| !i.is_empty())
            .collect();
        removed.images = rt.prune_images(project, &current).await;
    }
    for why in &removed.left {
        ev.warn(why.clone());
        report.warnings.push(why.clone());
    }
    if !removed.kept_volumes.is_empty() {
        ev.emit(Event::Info {
            message: format!(
                "kept volume(s) {} with their data for the next --keep or --execute (`masgen down -v` removes them)",
                removed.kept_volumes.join(", ")
            ),
        });
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
}

/// What the steps of one verification share: the project and the engine, the run's
/// networks and volumes, and each service's state and image as the others wait on them.
pub(super) struct Steps<'a, R: Runtime> {
    rt: &'a R,
    opts: &'a VerifyOptions,
    imgs: &'a Images<'a, R>,
    settings: RunSettings,
    networks: Networks,
    volumes: HashMap<String, String>,
    states: HashMap<String, watch::Sender<ServiceState>>,
    images: HashMap<String, watch::Sender<ImageState>>,
    /// What each service runs (see plan/).
    plan: SystemPlan,
}

impl<'a, R: Runtime> Steps<'a, R> {
    /// The run's networks and volumes, and every service pending; a service that does not
    /// build has its image named already.
    async fn prepare(
        rt: &'a R,
        opts: &'a VerifyOptions,
        imgs: &'a Images<'a, R>,
        plan: SystemPlan,
    ) -> Result<Steps<'a, R>, VerifyError> {
        let scope = scope_of(&plan, opts);
        let networks = wanted(&scope, &plan.networks);
        let networks = rt.ensure_networks(&scope, &opts.run_id, &networks).await?;
        let volumes = wanted(&scope, &plan.volumes);
        let volumes = rt.ensure_volumes(&scope, &opts.run_id, &volumes).await?;
        let mut states = HashMap::new();
        let mut images = HashMap::new();
        for s in plan.services.iter().chain(&plan.checks) {
            let image = match &s.image {
                Some(ImageSource::Pull { reference, .. }) => ImageState::Ready(reference.clone()),
                // A service that neither builds nor names an image has none to wait for.
                None => ImageState::Failed,
                Some(ImageSource::Build(_)) => ImageState::Pending,
            };
            states.insert(s.name.clone(), watch::channel(ServiceState::Pending).0);
            images.insert(s.name.clone(), watch::channel(image).0);
        }
        Ok(Steps {
            rt,
            opts,
            imgs,
            settings: RunSettings {
                scope,
                publish_declared: opts.execute,
                memory: opts.memory,
                pids: opts.pids,
            },
            networks,
            volumes,
            states,
            images,
            plan,
        })
    }

    fn set(&self, name: &str, state: ServiceState) {
        self.states[name].send_replace(state);
    }

    /// `name`'s image once it is settled (ready, or failed); None for a service not in
    /// this run.
    async fn settled_image(&self, name: &str) -> Option<ImageState> {
        let mut rx = self.images.get(name)?.subscribe();
        let state = rx.wait_for(|i| *i != ImageState::Pending).await;
        Some(state.map_or(ImageState::Failed, |i| i.clone()))
    }

    /// `name` failed with `d`: its dependents learn it now.
    fn failed(&self, name: &str, d: Diagnostic) -> ServiceOutcome {
        self.set(name, ServiceState::Failed);
        ServiceOutcome::Failed(Box::new(d))
    }
}

/// The services and what became of them, as the steps fill them in.
struct Tally {
    services: HashMap<String, ServiceReport>,
    failed: HashMap<String, Diagnostic>,
    /// Ready services and their containers.
    running: Vec<(String, String)>,
    /// Smoke checks that did not pass (or build), apart from the system's failures.
    check_failures: HashMap<String, Diagnostic>,
    smoke: Vec<smoke::SmokeReport>,
}

/// A check made once every service is ready, on the running system. Each runs only while
/// nothing has failed; adding one is adding an item to [`POST_READY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostReady {
    /// Nothing may exit or turn unhealthy for `--stability` seconds.
    Stability,
    /// The smoke services (see smoke.rs).
    Smoke,
}

const POST_READY: [PostReady; 2] = [PostReady::Stability, PostReady::Smoke];

impl PostReady {
    /// Run it, noting failures in `tally` and its time in `timings`.
    async fn run(
        self,
        steps: &Steps<'_, impl Runtime>,
        tally: &mut Tally,
        timings: &mut Timings,
    ) -> Result<(), VerifyError> {
        match self {
            // Only a system that is ready so far is watched (or checked: smoke.rs reports
            // its checks as not run otherwise).
            PostReady::Stability if tally.failed.is_empty() && !steps.opts.stability.is_zero() => {
                timings.stability_secs = stability::watch(steps, tally).await;
            }
            PostReady::Stability => {}
            PostReady::Smoke => timings.smoke_secs = smoke::run(steps, tally).await?,
        }
        Ok(())
    }
}

/// Verify `project` on `rt`, filling in `report`; returns the ready services' containers.
async fn run_all(
    rt: &impl Runtime,
    plan: SystemPlan,
    opts: &VerifyOptions,
    report: &mut VerifyReport,
    t0: Instant,
) -> Result<Vec<(String, String)>, VerifyError> {
    let ev = &opts.events;
    let imgs = images_step(rt, &plan, opts).await;
    report.timings.preflight_secs = t0.elapsed().as_secs_f64();
    // Pulls, builds and starts overlap: each build starts as soon as its FROM images are
    // there, each service as soon as its own image is there and its depends_on conditions
    // hold; a registry failure of the environment ends them all.
    ev.emit(Event::Phase {
        name: "verify: build".into(),
    });
    let tb = Instant::now();
    let steps = Steps::prepare(rt, opts, &imgs, plan).await?;
    let work = futures_util::future::join3(
        imgs.pull_all(),
        async {
            (
                builds::build_all(&steps, builds::specs(&steps.plan, opts)).await,
                Instant::now(),
            )
        },
        start::start_all(&steps),
    );
    let (_, (built, built_at), started) = tokio::select! {
        done = work => done,
        broken = imgs.broken() => return Err(VerifyError::Registry(broken)),
    };
    if let Some(broken) = imgs.broken_now() {
        return Err(VerifyError::Registry(broken));
    }
    report.timings.build_secs = built_at.duration_since(tb).as_secs_f64();
    report.pulls = imgs.reports();
    if let Some(note) = rt.build_note() {
        ev.warn(note.clone());
        report.warnings.push(note);
    }
    let mut tally = Tally::new(&steps.plan, &report.pulls);
    tally.builds(built);
    tally.starts(started)?;
    tally.announce(ev);
    // Starting overlaps building: this is what came after the last build.
    report.timings.start_secs = tb.elapsed().as_secs_f64() - report.timings.build_secs;
    for check in POST_READY {
        check.run(&steps, &mut tally, &mut report.timings).await?;
    }
    report.healthy = tally.failed.is_empty() && tally.check_failures.is_empty();
    let had_container = report_started(&tally.services);
    keep_logs(rt, &steps.plan, &steps.settings.scope, &had_container).await;
    let running = tally.finish(&steps.plan, report);
    if report.healthy && (opts.keep || opts.execute) {
        apply_restart_policies(rt, ev, &steps.plan, &running).await;
    }
    Ok(running)
}

/// Which images are local, which to pull, which are missing (see images.rs).
async fn images_step<'a, R: Runtime>(
    rt: &'a R,
    plan: &SystemPlan,
    opts: &'a VerifyOptions,
) -> Images<'a, R> {
    let settings = images::PullSettings {
        pull: opts.pull,
        offline: opts.offline,
    };
    let wanted = images::wanted(plan, settings);
    Images::plan(rt, &opts.events, wanted, settings, opts.pull_stall).await
}

impl Tally {
    fn new(plan: &SystemPlan, pulls: &[images::PullReport]) -> Tally {
        let services = plan
            .services
            .iter()
            .map(|s| {
                let image = match &s.image {
                    Some(ImageSource::Pull { reference, .. }) => reference.clone(),
                    _ => String::new(),
                };
                let report = ServiceReport {
                    name: s.name.clone(),
                    image,
                    pull_secs: builds::pull_secs(plan, pulls, &s.name),
                    ..Default::default()
                };
                (s.name.clone(), report)
            })
            .collect();
        Tally {
            services,
            failed: HashMap::new(),
            running: Vec::new(),
            check_failures: HashMap::new(),
            smoke: Vec::new(),
        }
    }

    fn builds(&mut self, built: Vec<(String, Result<Built, Diagnostic>)>) {
        for (name, r) in built {
            let Some(rep) = self.services.get_mut(&name) else {
                // A smoke check's image: one that did not build makes a broken check
                // (smoke.rs says so when the checks run).
                if let Err(mut d) = r {
                    d.summary = format!("its image did not build: {}", d.summary);
                    self.check_failures.insert(name, d);
                }
                continue;
            };
            match r {
                Ok(b) => {
                    rep.image = b.image.clone();
                    rep.build_secs = Some(b.secs);
                    rep.cached = b.cached;
                }
                Err(d) => {
                    self.failed.insert(name, d);
                }
            }
        }
    }

    fn starts(
        &mut self,
        started: Vec<(String, Result<ServiceOutcome, RuntimeError>)>,
    ) -> Result<(), RuntimeError> {
        for (name, outcome) in started {
            let rep = self.services.get_mut(&name).expect("service in order");
            match outcome? {
                ServiceOutcome::Ready {
                    secs,
                    health,
                    containers,
                    ports,
                } => {
                    rep.state = ServiceState::Ready;
                    rep.health = health;
                    rep.ready_secs = Some(secs);
                    rep.ports = ports;
                    if containers.len() > 1 {
                        rep.replicas = containers.clone();
                    }
                    let running = containers.into_iter().map(|c| (name.clone(), c));
                    self.running.extend(running);
                }
                ServiceOutcome::Completed { secs } => {
                    rep.state = ServiceState::Completed;
                    rep.health = HealthState::None;
                    rep.ready_secs = Some(secs);
                }
                ServiceOutcome::Failed(d) => {
                    rep.state = if d.consequence {
                        ServiceState::NotStarted
                    } else {
                        ServiceState::Failed
                    };
                    self.failed.insert(name, *d);
                }
            }
        }
        Ok(())
    }

    /// Each failure that is a root cause, as an event.
    fn announce(&self, ev: &Events) {
        for (name, d) in self.failed.iter().filter(|(_, d)| !d.consequence) {
            ev.emit(Event::ServiceFailed {
                service: name.clone(),
                phase: d.phase,
                summary: d.summary.clone(),
            });
        }
    }

    /// Into the report, in start order; returns the ready services' containers.
    fn finish(mut self, plan: &SystemPlan, report: &mut VerifyReport) -> Vec<(String, String)> {
        report.diagnostics = plan
            .services
            .iter()
            .filter_map(|s| self.failed.remove(&s.name))
            .collect();
        report.diagnostics.extend(
            self.smoke
                .iter()
                .filter_map(|s| self.check_failures.remove(&s.service)),
        );
        report.smoke = std::mem::take(&mut self.smoke);
        report.services = plan
            .services
            .iter()
            .filter_map(|s| self.services.remove(&s.name))
            .collect();
        self.running
    }
}

/// A system left running gets the compose file's restart policies. While verifying, no
/// container restarts: a crash is a failure, with its exit code and logs, not a restart.
async fn apply_restart_policies(
    rt: &impl Runtime,
    ev: &Events,
    plan: &SystemPlan,
    running: &[(String, String)],
) {
    for (name, container) in running {
        let Some(policy) = plan.get(name).and_then(|s| s.restart) else {
            continue;
        };
        if let Err(e) = rt.set_restart(container, policy).await {
            ev.warn(format!(
                "{name}: could not set its restart policy ({}) on the running container: {e}",
                policy.name()
            ));
        }
    }
}

/// Services whose container was created (any state but not started).
fn report_started(reports: &HashMap<String, ServiceReport>) -> Vec<String> {
    let mut names: Vec<String> = reports
        .iter()
        .filter(|(_, r)| r.state.had_container())
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    names
}

/// Keep the last lines of every container of the run in `.masgen/logs/<service>.log`
/// (`<service>-<n>.log` for its further replicas):
/// the containers are about to be removed, and their output is the evidence.
async fn keep_logs(rt: &impl Runtime, plan: &SystemPlan, scope: &Scope, services: &[String]) {
    let dir = plan.root.join(crate::workspace::MASGEN_DIR).join("logs");
    for name in services {
        let replicas = plan.get(name).map_or(1, |s| s.replicas);
        for n in 1..=replicas {
            let text = rt.logs_tail(&scope.replica(name, n), KEEP_LINES).await;
            let file = match n {
                1 => format!("{name}.log"),
                n => format!("{name}-{n}.log"),
            };
            // Best effort: a log that cannot be written must not change the verdict.
            let _ = crate::workspace::write_atomic(&dir.join(file), text.as_bytes());
        }
    }
}

/// `--execute`: show where services answer, follow logs until Ctrl-C.
async fn follow_until_interrupted(
    rt: &impl Runtime,
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
        let h = rt.follow_logs(container, name, ev);
        handles.push(h);
    }
    let _ = tokio::signal::ctrl_c().await;
    for h in handles {
        h.abort();
    }
}

#[cfg(test)]
mod tests;
