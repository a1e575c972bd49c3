//! A runtime in memory: no daemon. What each container does is scripted by its service's
//! name; every call is recorded. Verification's steps run on it in their tests exactly as
//! they run on the Docker engine, so a new runtime is known to need nothing but the trait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::build::{BuildRequest, Built};
use super::container::{Attachments, NetworkWanted, Networks, Refused};
use super::health::{Snapshot, Wait};
use super::pull::{Credentials, Progress, PullFailure, Pulled};
use super::scope::Scope;
use super::{Runtime, RuntimeError};
use crate::diagnose::Diagnostic;
use crate::plan::{ContainerSpec, Readiness};

/// A runtime whose containers end as `script` says for their service (the part of the
/// container name after the run's prefix), and that records what it was asked.
pub(crate) struct Fake {
    /// How each service's container ends waiting.
    pub script: fn(&str) -> Wait,
    /// What each service's container printed: (stdout, stderr).
    pub output: fn(&str) -> (String, String),
    /// Every call, in order, in a few words (`start api`, `create api IMAGE COMMAND`).
    pub calls: Mutex<Vec<String>>,
    /// The service whose container the runtime refuses to start, if any.
    pub refuse_start: Option<&'static str>,
}

impl Fake {
    /// Containers end as `script` says and print nothing of their own.
    pub fn new(script: fn(&str) -> Wait) -> Fake {
        Fake {
            script,
            output: |service| (format!("{service} stdout"), String::new()),
            calls: Mutex::new(Vec::new()),
            refuse_start: None,
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn service(container: &str) -> String {
        // `<project>-<run>-<service>-1`
        let base = container.trim_end_matches("-1");
        base.rsplit('-').next().unwrap_or(base).to_string()
    }
}

impl Runtime for Fake {
    async fn local_images(&self) -> Vec<String> {
        vec!["busybox:latest".into()]
    }
    async fn image_tagged(&self, image: &str) -> Option<(String, Option<SystemTime>)> {
        (image == "busybox:latest").then(|| ("sha256:busybox".to_string(), None))
    }
    async fn pull(
        &self,
        image: &str,
        _: Option<&Credentials>,
        _: Duration,
        _: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<Pulled, PullFailure> {
        self.log(format!("pull {image}"));
        Err(PullFailure {
            image: image.into(),
            registry: super::pull::registry_of(image),
            fault: super::pull::Fault::NotFound,
            message: "manifest unknown".into(),
        })
    }
    async fn build(&self, _: &str, spec: &BuildRequest) -> Result<Built, Diagnostic> {
        self.log(format!("build {}", spec.service));
        Ok(Built {
            image: format!("masgen/{}:fake", spec.service),
            secs: 0.1,
            cached: false,
            patched: false,
            hash: "fake".into(),
        })
    }
    fn mounts_in_builds(&self) -> bool {
        true
    }
    fn build_note(&self) -> Option<String> {
        None
    }
    async fn ensure_networks(
        &self,
        _: &Scope,
        _: &str,
        wanted: &[NetworkWanted],
    ) -> Result<Networks, RuntimeError> {
        let mut n = Networks::default();
        for w in wanted {
            n.by_name.insert(
                w.name.clone(),
                (w.docker_name.clone(), format!("id-{}", w.name)),
            );
        }
        Ok(n)
    }
    async fn ensure_volumes(
        &self,
        _: &Scope,
        _: &str,
        wanted: &[NetworkWanted],
    ) -> Result<HashMap<String, String>, RuntimeError> {
        Ok(wanted
            .iter()
            .map(|w| (w.name.clone(), w.docker_name.clone()))
            .collect())
    }
    async fn create(
        &self,
        container: &str,
        _: &str,
        name: &str,
        spec: &ContainerSpec,
        image: &str,
        _: &Attachments<'_>,
    ) -> Result<Result<(), Refused>, RuntimeError> {
        self.log(format!("create {name} {image} {:?}", spec.command));
        let _ = container;
        Ok(Ok(()))
    }
    async fn exec(
        &self,
        container: &str,
        hook: &crate::plan::HookSpec,
        _: Instant,
    ) -> Result<super::health::Ran, Refused> {
        self.log(format!(
            "exec {} {:?}",
            Fake::service(container),
            hook.command
        ));
        Ok(super::health::Ran {
            exit_code: Some(0),
            output: String::new(),
        })
    }
    async fn start(&self, container: &str) -> Result<(), Refused> {
        let service = Fake::service(container);
        self.log(format!("start {service}"));
        match self.refuse_start {
            Some(s) if s == service => Err(Refused::Start(format!("{service}: exec format error"))),
            _ => Ok(()),
        }
    }
    async fn snapshot(&self, _: &str) -> Option<Snapshot> {
        Some(Snapshot {
            running: true,
            ..Default::default()
        })
    }
    async fn wait_ready(&self, container: &str, _: Readiness, _: Instant) -> Wait {
        (self.script)(&Fake::service(container))
    }
    async fn logs_tail(&self, container: &str, _: usize) -> String {
        format!("{} says goodbye", Fake::service(container))
    }
    async fn output(&self, container: &str) -> (String, String) {
        (self.output)(&Fake::service(container))
    }
    async fn logs_since(&self, container: &str, _: SystemTime) -> String {
        format!("{} wrote this meanwhile", Fake::service(container))
    }
    async fn remove(&self, container: &str) {
        self.log(format!("remove {}", Fake::service(container)));
    }
    async fn published_ports(&self, _: &str) -> Vec<(String, String)> {
        Vec::new()
    }
    async fn set_restart(
        &self,
        _: &str,
        _: crate::plan::RestartPolicy,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn follow_logs(
        &self,
        _: &str,
        _: &str,
        _: &crate::events::Events,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async {})
    }
    async fn kept_containers(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    async fn remove_dead_runs(&self, _: &str) -> crate::runtime::Removed {
        Default::default()
    }
    async fn remove_project(&self, _: &str, _: bool) -> super::Removed {
        Default::default()
    }
    async fn remove_run(&self, _: &str, _: bool) -> super::Removed {
        Default::default()
    }
    async fn prune_images(&self, _: &str, _: &[String]) -> usize {
        0
    }
}
