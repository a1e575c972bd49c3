//! The Docker engine (bollard) as a [`Runtime`]: each operation of the seam, in Docker's
//! terms.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use super::auth::Credentials;
use super::build::{BuildRequest, Built};
use super::health::{Readiness, Snapshot, Wait};
use super::pull::{Progress, PullFailure, Pulled};
use super::teardown::Removed;
use super::{Engine, RuntimeError};
use crate::diagnose::Diagnostic;
use crate::plan::{ContainerSpec, RestartPolicy};
use crate::runtime::container::{Attachments, NetworkWanted, Networks};
use crate::runtime::scope::Scope;
use crate::runtime::{Refused, Runtime};

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

    async fn build(&self, project: &str, spec: &BuildRequest) -> Result<Built, Diagnostic> {
        super::build::build(self, project, spec).await
    }

    fn mounts_in_builds(&self) -> bool {
        self.buildkit.is_some()
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
    ) -> Result<Networks, RuntimeError> {
        super::run::ensure_networks(self, scope, run, wanted).await
    }

    async fn ensure_volumes(
        &self,
        scope: &Scope,
        run: &str,
        wanted: &[NetworkWanted],
    ) -> Result<HashMap<String, String>, RuntimeError> {
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
    ) -> Result<Result<(), Refused>, RuntimeError> {
        super::run::engine_supports(self, container, spec)?;
        let body = match super::run::container_body(run, name, spec, image, with) {
            Ok(body) => body,
            Err(why) => return Ok(Err(why)),
        };
        if let Err(why) = super::run::create(self, container, body).await? {
            return Ok(Err(why));
        }
        let extra = super::run::extra_endpoints(spec, with.networks);
        let attached = match super::run::connect_networks(self, container, extra).await {
            Ok(()) => super::run::copy_files(self, container, with.files).await,
            Err(why) => Err(why),
        };
        Ok(attached)
    }

    async fn exec(
        &self,
        container: &str,
        hook: &crate::plan::HookSpec,
        deadline: std::time::Instant,
    ) -> Result<crate::runtime::health::Ran, Refused> {
        super::run::exec_hook(self, container, hook, deadline).await
    }

    async fn start(&self, container: &str) -> Result<(), Refused> {
        super::run::start(self, container)
            .await
            .map_err(|e| Refused::Start(e.to_string()))
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
        policy: RestartPolicy,
    ) -> Result<(), RuntimeError> {
        super::run::set_restart(self, container, policy)
            .await
            .map_err(|e| RuntimeError::SetRestart {
                container: container.to_string(),
                message: e.to_string(),
            })
    }

    fn follow_logs(
        &self,
        container: &str,
        service: &str,
        events: &crate::events::Events,
    ) -> tokio::task::JoinHandle<()> {
        super::logs::follow(self, container, service, Some(events.clone())).1
    }

    async fn kept_containers(&self, project: &str) -> Vec<String> {
        super::teardown::kept_containers(self, project).await
    }

    async fn remove_dead_runs(&self, project: &str) -> Removed {
        super::teardown::remove_dead_runs(self, project).await
    }

    async fn remove_project(&self, project: &str, volumes: bool) -> Removed {
        super::teardown::remove_project(self, project, volumes).await
    }

    async fn remove_run(&self, run: &str, volumes: bool) -> Removed {
        super::teardown::remove_labelled(self, super::RUN_LABEL, run, volumes).await
    }

    async fn prune_images(&self, project: &str, current: &[String]) -> usize {
        super::teardown::prune_images(self, project, current).await
    }
}
