//! Verification's steps on a fake runtime: no Docker daemon. What each container does is
//! scripted by its service's name; the report must read as it does on the engine.

use std::time::{Duration, Instant};

use super::*;
use crate::runtime::health::{Snapshot, Wait};
use crate::runtime::memory::Fake;

const SYSTEM: &str = "services:\n  db:\n    image: busybox:latest\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  api:\n    build: ./api\n    command: [\"serve\"]\n    depends_on:\n      db: {condition: service_healthy}\n  web:\n    image: busybox:latest\n    depends_on: [api]\n  ghost:\n    image: nosuch/ghost:1\n";

fn verify_on(fake: &Fake) -> VerifyReport {
    verify_system(fake, SYSTEM)
}

/// Verify `compose` (its `api` builds from api/, its `smoke` from smoke/) on `fake`.
fn verify_system(fake: &Fake, compose: &str) -> VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fake");
    for folder in ["api", "smoke"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
        std::fs::write(
            root.join(folder).join("Dockerfile"),
            "FROM busybox:latest\n",
        )
        .unwrap();
    }
    std::fs::write(root.join("compose.yaml"), compose).unwrap();
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
    let fake = Fake::new(|service| match service {
        "api" => Wait::Exited(Snapshot {
            exit_code: Some(3),
            ..Default::default()
        }),
        _ => Wait::Ready,
    });
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
    let calls = fake.calls();
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
    let fake = Fake::new(|_| Wait::Ready);
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

const CHECKED: &str = "services:\n  api:\n    build: ./api\n  smoke:\n    build: ./smoke\n    profiles: [smoke]\n    depends_on: [api]\n";

#[test]
fn smoke_checks_run_after_the_system_is_ready_and_a_failed_point_is_the_system_s() {
    let mut fake = Fake::new(|service| match service {
        "smoke" => Wait::Exited(Snapshot {
            exit_code: Some(1),
            ..Default::default()
        }),
        _ => Wait::Ready,
    });
    fake.output = |service| match service {
        "smoke" => (
            "1..2\nok 1 - up\nnot ok 2 - stored\n# got 404\n".into(),
            String::new(),
        ),
        s => (format!("{s} stdout"), String::new()),
    };
    let r = verify_system(&fake, CHECKED);
    assert!(!r.healthy);
    assert_eq!(
        states(&r),
        vec![("api".to_string(), ServiceState::Ready)],
        "a check is no service"
    );
    let d = &r.diagnostics[0];
    assert_eq!((d.service.as_str(), d.phase), ("smoke", Phase::Smoke));
    assert_eq!(
        d.summary,
        "smoke check failed: 1 of 2 check(s) failed: not ok 2 - stored"
    );
    assert!(
        d.evidence
            .contains("api wrote while the check ran:\napi wrote this meanwhile"),
        "{}",
        d.evidence
    );
    assert!(
        d.files.contains(&"smoke/Dockerfile".to_string()),
        "{:?}",
        d.files
    );
    assert_eq!(r.smoke[0].verdict, crate::verdict::Verdict::Failed);
    let calls = fake.calls();
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap_or(usize::MAX);
    assert!(
        at("build smoke") < at("start api"),
        "the check builds with the system: {calls:?}"
    );
    assert!(
        at("start api") < at("start smoke") && at("start smoke") < usize::MAX,
        "{calls:?}"
    );
}

#[test]
fn no_check_runs_on_a_system_that_is_not_ready() {
    let fake = Fake::new(|service| match service {
        "api" => Wait::Exited(Snapshot {
            exit_code: Some(2),
            ..Default::default()
        }),
        _ => Wait::Ready,
    });
    let r = verify_system(&fake, CHECKED);
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].service, "api");
    assert_eq!(r.smoke[0].verdict, crate::verdict::Verdict::NotRun);
    assert!(!fake.calls().contains(&"start smoke".to_string()));
}

#[test]
fn a_check_that_cannot_start_is_broken_and_one_failed_check_not_one_not_run() {
    let mut fake = Fake::new(|_| Wait::Ready);
    fake.refuse_start = Some("smoke");
    let r = verify_system(&fake, CHECKED);
    let s = &r.smoke[0];
    assert_eq!(s.verdict, crate::verdict::Verdict::Broken);
    assert_eq!(s.counts(), (0, 1), "{:?}", s.points);
    let xml = crate::report::junit(&r);
    assert!(!xml.contains("not run"), "{xml}");
}
