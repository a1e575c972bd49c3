//! Lifecycle hooks on the real daemon: post_start runs with its user, folder and
//! environment once the container started; a failing one fails the service in phase
//! start with its own output; pre_stop runs before the containers go; a privileged hook
//! is the policy's to refuse.

mod common;

use std::process::Command;

use common::docker::*;
use common::*;

#[test]
fn post_start_runs_as_written_and_pre_stop_runs_before_down() {
    if !docker_available("post_start_runs_as_written_and_pre_stop_runs_before_down") {
        return;
    }
    let (_tmp, dir, cleanup) = unique_output("hooks");
    copy_dir(&fixture("hooks"), &dir);
    let kept = masgen()
        .arg("verify")
        .arg(&dir)
        .args(["--settle", "1", "--stability", "0", "--keep"])
        .output()
        .unwrap();
    // Healthy only once post_start wrote its line, as user 1000 in /var with GREETING.
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept));
    let down = masgen().arg("down").arg(&dir).output().unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    let volume = format!("{}_marks", cleanup.0);
    let mark = Command::new("docker")
        .args([
            "run",
            "--rm",
            "-v",
            &format!("{volume}:/m"),
            "busybox:latest",
            "cat",
            "/m/pre_stop",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&mark.stdout),
        "stopped\n",
        "{}",
        text(&mark)
    );
    let gone = masgen().arg("down").arg(&dir).arg("-v").output().unwrap();
    assert_eq!(gone.status.code(), Some(0), "{}", text(&gone));
    let project = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&project);
}

#[test]
fn a_failing_post_start_fails_its_service_with_the_hook_s_output() {
    if !docker_available("a_failing_post_start_fails_its_service_with_the_hook_s_output") {
        return;
    }
    let (_tmp, dir, cleanup) = compose_project("hook-fails", "services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    post_start:\n      - command: [\"sh\", \"-c\", \"echo the seed is missing >&2; exit 4\"]\n");
    let out = masgen()
        .arg("verify")
        .arg(&dir)
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = run_report(&dir);
    let d = &report["diagnostics"][0];
    assert_eq!(d["service"], "app");
    assert_eq!(d["phase"], "start");
    assert_eq!(
        d["summary"],
        "post_start hook 1 (sh -c echo the seed is missing >&2; exit 4) exited with code 4"
    );
    assert!(
        d["evidence"]
            .as_str()
            .unwrap()
            .contains("the seed is missing"),
        "{d}"
    );
    let project = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&project);

    // A hook that hangs is stopped at the health timeout, and named.
    let (_tmp, dir, cleanup) = compose_project("hook-hangs", "services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    post_start:\n      - command: [\"sleep\", \"600\"]\n");
    let out = masgen()
        .arg("verify")
        .arg(&dir)
        .args(["--settle", "1", "--stability", "0", "--health-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        run_report(&dir)["diagnostics"][0]["summary"],
        "post_start hook 1 (sleep 600) did not end within the health timeout (2 s)"
    );
    let project = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&project);

    // A privileged hook is refused before anything runs, unless --allow-unsafe.
    let (_tmp, dir, _cleanup) = compose_project("hook-privileged", "services:\n  app:\n    image: busybox:latest\n    post_start:\n      - command: [\"true\"]\n        privileged: true\n");
    let out = masgen().arg("verify").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("post_start: a privileged hook"),
        "{}",
        text(&out)
    );
}
