//! Verification's steps on a fake runtime: no Docker daemon. What each container does is
//! scripted by its service's name; the report must read as it does on the engine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::docker::auth::Credentials;
use crate::docker::build::{BuildRequest, Built};
use crate::docker::health::{Snapshot, Wait};
use crate::docker::pull::{Progress, PullFailure, Pulled};
use crate::plan::{ContainerSpec, Readiness};
use crate::runtime::container::{Attachments, NetworkWanted, Networks};
use crate::runtime::Refused;

/// A runtime whose containers end as `script` says for their service (the part of the
/// container name after the run's prefix), and that records what it was asked.
struct Fake {
    script: fn(&str) -> Wait,
    calls: Mutex<Vec<String>>,
}

impl Fake {
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
            registry: crate::docker::auth::registry_of(image),
            fault: crate::docker::pull::Fault::NotFound,
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
    async fn start(&self, container: &str) -> Result<(), Refused> {
        self.log(format!("start {}", Fake::service(container)));
        Ok(())
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
        let service = Fake::service(container);
        (format!("{service} stdout"), String::new())
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
    async fn remove_run(&self, _: &str) -> crate::docker::teardown::Removed {
        Default::default()
    }
    async fn prune_images(&self, _: &str, _: &[String]) -> usize {
        0
    }
}

const SYSTEM: &str = "services:\n  db:\n    image: busybox:latest\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  api:\n    build: ./api\n    command: [\"serve\"]\n    depends_on:\n      db: {condition: service_healthy}\n  web:\n    image: busybox:latest\n    depends_on: [api]\n  ghost:\n    image: nosuch/ghost:1\n";

fn verify_on(fake: &Fake) -> VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fake");
    std::fs::create_dir_all(root.join("api")).unwrap();
    std::fs::write(root.join("compose.yaml"), SYSTEM).unwrap();
    std::fs::write(root.join("api/Dockerfile"), "FROM busybox:latest\n").unwrap();
    let plan = crate::plan::load(&root, &Default::default(), true, Duration::from_secs(5)).unwrap();
    let opts = VerifyOptions {
        stability: Duration::ZERO,
        ..Default::default()
    };
    let mut report = VerifyReport::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_all(fake, plan, &opts, &mut report, Instant::now()))
        .unwrap();
    report
}

fn states(r: &VerifyReport) -> Vec<(String, ServiceState)> {
    r.services
        .iter()
        .map(|s| (s.name.clone(), s.state))
        .collect()
}

#[test]
fn steps_run_in_dependency_order_and_a_crash_holds_back_its_dependents() {
    let fake = Fake {
        script: |service| match service {
            "api" => Wait::Exited(Snapshot {
                exit_code: Some(3),
                ..Default::default()
            }),
            _ => Wait::Ready,
        },
        calls: Mutex::new(Vec::new()),
    };
    let r = verify_on(&fake);
    assert!(!r.healthy);
    let st = |n: &str| states(&r).into_iter().find(|(s, _)| s == n).unwrap().1;
    assert_eq!(st("db"), ServiceState::Ready);
    assert_eq!(st("api"), ServiceState::Failed);
    assert_eq!(st("web"), ServiceState::NotStarted);
    assert_eq!(st("ghost"), ServiceState::Failed);
    let api = r.diagnostics.iter().find(|d| d.service == "api").unwrap();
    assert_eq!(api.summary, "crashed: exited with code 3");
    assert!(
        api.evidence.contains("api says goodbye"),
        "{}",
        api.evidence
    );
    let ghost = r.diagnostics.iter().find(|d| d.service == "ghost").unwrap();
    assert_eq!(ghost.phase, Phase::Image);
    assert!(
        ghost.evidence.contains("manifest unknown"),
        "{}",
        ghost.evidence
    );
    let web = r.diagnostics.iter().find(|d| d.service == "web").unwrap();
    assert!(
        web.consequence && web.summary.contains("depends on api"),
        "{web:?}"
    );
    let calls = fake.calls.lock().unwrap().clone();
    let at = |c: &str| calls.iter().position(|x| x.starts_with(c)).unwrap();
    // The api was built and started only after db was ready; web never started.
    assert!(at("start db") < at("start api"), "{calls:?}");
    assert!(
        calls
            .iter()
            .any(|c| c == "create api masgen/api:fake Some([\"serve\"])"),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c == "start web"), "{calls:?}");
    assert_eq!(calls.iter().filter(|c| c.starts_with("pull")).count(), 1);
}

#[test]
fn containers_that_come_up_are_ready_and_the_report_keeps_its_shape() {
    let fake = Fake {
        script: |_| Wait::Ready,
        calls: Mutex::new(Vec::new()),
    };
    let mut r = verify_on(&fake);
    // ghost's image cannot be had: the only failure.
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    r.diagnostics.clear();
    let st: Vec<ServiceState> = states(&r).into_iter().map(|s| s.1).collect();
    assert_eq!(
        st,
        [
            ServiceState::Ready,
            ServiceState::Ready,
            ServiceState::Ready,
            ServiceState::Failed
        ]
    );
    let json = serde_json::to_value(&r.services[0]).unwrap();
    assert_eq!(json["state"], "ready", "the report keeps its JSON shape");
}
