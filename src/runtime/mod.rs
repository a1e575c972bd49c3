//! The seam between verification and a container runtime: everything a verification asks
//! of one, in terms of plans, names and outcomes, never of an engine's API. The Docker
//! engine (docker/, through bollard) implements it; an in-memory one runs verification's
//! tests (verify/tests.rs); a Kubernetes cluster would be a third.

pub mod build;
pub mod container;
pub mod error;
pub mod health;
#[cfg(test)]
pub(crate) mod memory;
pub mod pull;
pub mod scope;

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use crate::diagnose::Diagnostic;
use crate::plan::{ContainerSpec, Readiness, RestartPolicy};
use build::{BuildRequest, Built};
pub use container::Refused;
use container::{Attachments, NetworkWanted, Networks};
pub use error::RuntimeError;
use health::{Snapshot, Wait};
use pull::{Credentials, Progress, PullFailure, Pulled};
use scope::Scope;

/// A way to a runtime, connected when first needed: a project that is refused, or has
/// nothing to run, never connects (its verdict does not depend on the runtime being up).
pub trait Connect: Sync {
    type Runtime: Runtime;
    fn connect(&self) -> impl Future<Output = Result<&Self::Runtime, RuntimeError>>;
}

/// A runtime already connected.
impl<R: Runtime> Connect for R {
    type Runtime = R;
    async fn connect(&self) -> Result<&R, RuntimeError> {
        Ok(self)
    }
}

/// Lines of a container's output kept as evidence.
pub const KEEP_LINES: usize = 200;

/// What a teardown removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Superseded images of the project (see the engine's prune).
    pub images: usize,
    /// What could not be removed, each with why and what to do.
    pub left: Vec<String>,
    /// What was left on purpose because a live run holds it.
    pub held: Vec<String>,
    /// Named volumes kept on purpose: a kept system's data outlives its containers.
    pub kept_volumes: Vec<String>,
}

/// What a verification needs of a container runtime.
pub trait Runtime: Sync {
    /// `repo:tag` of every local image, sorted.
    fn local_images(&self) -> impl Future<Output = Vec<String>>;
    /// A local image's ID and when it was last tagged.
    fn image_tagged(
        &self,
        image: &str,
    ) -> impl Future<Output = Option<(String, Option<SystemTime>)>>;
    /// Pull `image`; it fails when nothing comes for `stall`.
    fn pull(
        &self,
        image: &str,
        creds: Option<&Credentials>,
        stall: Duration,
        on_progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> impl Future<Output = Result<Pulled, PullFailure>>;
    /// Build one image (a failure is the service's diagnostic).
    fn build(
        &self,
        project: &str,
        spec: &BuildRequest,
    ) -> impl Future<Output = Result<Built, Diagnostic>>;
    /// Whether builds may mount secrets, SSH agents and named contexts (BuildKit's); a
    /// project that needs them on a runtime that cannot is refused before anything runs.
    fn mounts_in_builds(&self) -> bool;
    /// What the user should know about how images were built (a builder refused).
    fn build_note(&self) -> Option<String>;
    /// The run's networks and volumes, made or found.
    fn ensure_networks(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> impl Future<Output = Result<Networks, RuntimeError>>;
    fn ensure_volumes(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> impl Future<Output = Result<HashMap<String, String>, RuntimeError>>;
    /// Create container `container` for service `name` as `spec` plans it, joined to its
    /// networks, with its secrets and configs in.
    fn create(
        &self,
        container: &str,
        run: &str,
        name: &str,
        spec: &ContainerSpec,
        image: &str,
        with: &Attachments,
    ) -> impl Future<Output = Result<Result<(), Refused>, RuntimeError>>;
    /// Start a created container.
    fn start(&self, container: &str) -> impl Future<Output = Result<(), Refused>>;
    /// Run `hook` in the running `container` until it ends or `deadline`.
    fn exec(
        &self,
        container: &str,
        hook: &crate::plan::HookSpec,
        deadline: std::time::Instant,
    ) -> impl Future<Output = Result<health::Ran, Refused>>;
    /// What the container looks like now (None: it is gone).
    fn snapshot(&self, container: &str) -> impl Future<Output = Option<Snapshot>>;
    /// Wait until the container is ready as `readiness` says, or fails, or `deadline`.
    fn wait_ready(
        &self,
        container: &str,
        readiness: Readiness,
        deadline: Instant,
    ) -> impl Future<Output = Wait>;
    /// The last `lines` lines of its output.
    fn logs_tail(&self, container: &str, lines: usize) -> impl Future<Output = String>;
    /// Its stdout and its stderr, apart.
    fn output(&self, container: &str) -> impl Future<Output = (String, String)>;
    /// Everything it wrote since `since` (stdout and stderr together).
    fn logs_since(&self, container: &str, since: SystemTime) -> impl Future<Output = String>;
    /// Stop and remove one container now (a smoke check past its time limit).
    fn remove(&self, container: &str) -> impl Future<Output = ()>;
    /// Where its ports answer on the host: (`80/tcp`, `127.0.0.1:49153`).
    fn published_ports(&self, container: &str) -> impl Future<Output = Vec<(String, String)>>;
    /// Give a running container a restart policy.
    fn set_restart(
        &self,
        container: &str,
        policy: RestartPolicy,
    ) -> impl Future<Output = Result<(), RuntimeError>>;
    /// Follow a running container's output until the task is aborted, each line an event
    /// (`--execute`).
    fn follow_logs(
        &self,
        container: &str,
        service: &str,
        events: &crate::events::Events,
    ) -> tokio::task::JoinHandle<()>;
    /// The containers of a system of `project` left running by an earlier run (`--keep`).
    fn kept_containers(&self, project: &str) -> impl Future<Output = Vec<String>>;
    /// Remove what runs of `project` that are over left behind (never a live run's objects,
    /// never a kept system: see [`scope`]).
    fn remove_dead_runs(&self, project: &str) -> impl Future<Output = Removed>;
    /// Remove a system of `project` left running (`--keep`) and what runs of it that are
    /// over left behind; a live run's objects stay (`masgen down`). Its named volumes go
    /// only with `volumes` (`-v`).
    fn remove_project(&self, project: &str, volumes: bool) -> impl Future<Output = Removed>;
    /// Remove everything run `run` made (by its label); its named volumes only with
    /// `volumes` (a kept or executed system's hold the user's data).
    fn remove_run(&self, run: &str, volumes: bool) -> impl Future<Output = Removed>;
    /// Remove `project`'s images that `current` superseded; returns how many.
    fn prune_images(&self, project: &str, current: &[String]) -> impl Future<Output = usize>;
}
