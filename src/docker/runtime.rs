//! The seam between verification and the engine: everything a verification asks of a
//! container runtime, in terms of plans, names and outcomes, never of Docker's API.
//! [`Engine`] (Docker through bollard) implements it; another runtime (a Kubernetes
//! cluster, a fake for tests) would implement the same trait.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::auth::Credentials;
use super::build::{BuildSpec, Built};
use super::health::{Readiness, Snapshot, Wait};
use super::pull::{Progress, PullFailure, Pulled};
use super::run::{Attachments, NetworkWanted, Networks};
use super::scope::Scope;
use super::teardown::Removed;
use super::{DockerError, Engine};
use crate::diagnose::Diagnostic;
use crate::plan::ContainerSpec;

/// Why a container could not be created or started: its own settings (the system's
/// fault, with the runtime's words), not the runtime failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The plan cannot be expressed (e.g. a network that is not the project's).
    Spec(String),
    /// The runtime refused it, in its own words.
    Runtime(String),
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
        spec: &BuildSpec,
    ) -> impl Future<Output = Result<Built, Diagnostic>>;
    /// What the user should know about how images were built (a builder refused).
    fn build_note(&self) -> Option<String>;
    /// The run's networks and volumes, made or found.
    fn ensure_networks(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> impl Future<Output = Result<Networks, DockerError>>;
    fn ensure_volumes(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> impl Future<Output = Result<HashMap<String, String>, DockerError>>;
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
    ) -> impl Future<Output = Result<Result<(), (Refused, &'static str)>, DockerError>>;
    /// Start a created container (the error: the runtime's words).
    fn start(&self, container: &str) -> impl Future<Output = Result<(), String>>;
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
        policy: &str,
        retries: Option<i64>,
    ) -> impl Future<Output = Result<(), String>>;
    /// Remove everything run `run` made (by its label).
    fn remove_run(&self, run: &str) -> impl Future<Output = Removed>;
    /// Remove `project`'s images that `current` superseded; returns how many.
    fn prune_images(&self, project: &str, current: &[String]) -> impl Future<Output = usize>;
}

impl Runtime for Engine {
    async fn local_images(&self) -> Vec<String> {
        Engine::local_images(self).await
    }

    async fn image_tagged(&self, image: &str) -> Option<(String, Option<SystemTime>)> {
        Engine::image_tagged(self, image).await
    }

    async fn pull(
        &self,
        image: &str,
        creds: Option<&Credentials>,
        stall: Duration,
        on_progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<Pulled, PullFailure> {
        super::pull::pull(self, image, creds, stall, on_progress).await
    }

    async fn build(&self, project: &str, spec: &BuildSpec) -> Result<Built, Diagnostic> {
        super::build::build(self, project, spec).await
    }

    fn build_note(&self) -> Option<String> {
        self.buildkit_refused.get().map(|why| format!(
            "the daemon refused a BuildKit build ({why}); the images were built with the classic builder instead, which commits every Dockerfile step and is slower (DOCKER_BUILDKIT=0 skips the attempt)"
        ))
    }

    async fn ensure_networks(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> Result<Networks, DockerError> {
        super::run::ensure_networks(self, scope, run, wanted).await
    }

    async fn ensure_volumes(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> Result<HashMap<String, String>, DockerError> {
        super::run::ensure_volumes(self, scope, run, wanted).await
    }

    async fn create(
        &self,
        container: &str,
        run: &str,
        name: &str,
        spec: &ContainerSpec,
        image: &str,
        with: &Attachments<'_>,
    ) -> Result<Result<(), (Refused, &'static str)>, DockerError> {
        let body = match super::run::container_body(run, name, spec, image, with) {
            Ok(body) => body,
            Err(e) => return Ok(Err((Refused::Spec(e), ""))),
        };
        if let Err(why) = super::run::create(self, container, body).await? {
            let what = "Docker refused to create the container";
            return Ok(Err((Refused::Runtime(why), what)));
        }
        let extra = super::run::extra_endpoints(spec, with.networks);
        if let Err(why) = super::run::connect_networks(self, container, extra).await {
            let what = "Docker refused to connect the container to its networks";
            return Ok(Err((Refused::Runtime(why), what)));
        }
        if let Err(why) = super::run::copy_files(self, container, with.files).await {
            let what = "its secrets and configs could not be put into the container";
            return Ok(Err((Refused::Runtime(why), what)));
        }
        Ok(Ok(()))
    }

    async fn start(&self, container: &str) -> Result<(), String> {
        super::run::start(self, container)
            .await
            .map_err(|e| e.to_string())
    }

    async fn snapshot(&self, container: &str) -> Option<Snapshot> {
        super::health::snapshot(self, container).await
    }

    async fn wait_ready(&self, container: &str, readiness: Readiness, deadline: Instant) -> Wait {
        super::health::wait_ready(self, container, readiness, deadline).await
    }

    async fn logs_tail(&self, container: &str, lines: usize) -> String {
        super::logs::fetch_tail(self, container, lines).await
    }

    async fn output(&self, container: &str) -> (String, String) {
        use super::logs::{fetch, Streams};
        (
            fetch(self, container, Streams::Stdout, None).await,
            fetch(self, container, Streams::Stderr, None).await,
        )
    }

    async fn logs_since(&self, container: &str, since: SystemTime) -> String {
        super::logs::fetch(self, container, super::logs::Streams::Both, Some(since)).await
    }

    async fn remove(&self, container: &str) {
        super::run::remove(self, container).await
    }

    async fn published_ports(&self, container: &str) -> Vec<(String, String)> {
        super::run::published_ports(self, container).await
    }

    async fn set_restart(
        &self,
        container: &str,
        policy: &str,
        retries: Option<i64>,
    ) -> Result<(), String> {
        super::run::set_restart(self, container, policy, retries)
            .await
            .map_err(|e| e.to_string())
    }

    async fn remove_run(&self, run: &str) -> Removed {
        super::teardown::remove_labelled(self, super::RUN_LABEL, run).await
    }

    async fn prune_images(&self, project: &str, current: &[String]) -> usize {
        super::teardown::prune_images(self, project, current).await
    }
}
