//! Verifications side by side on one engine (real daemon): same-named projects started
//! together, a failing and a healthy one, the cleanup of dead runs' leftovers next to a
//! live run, `--keep` twice, and one image built for concurrent runs of one context.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::docker::*;
use common::*;

/// Two copies of fixture `name` in folders of the same (unique) name, so both runs have
/// one project name; and the guard that removes the project's objects.
fn twins(name: &str, tag: &str) -> (Vec<tempfile::TempDir>, Vec<PathBuf>, String, Cleanup) {
    let project = format!("mt-conc-{tag}-{}", std::process::id());
    let mut dirs = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..2 {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(&project);
        copy_dir(&fixture(name), &p);
        dirs.push(d);
        paths.push(p);
    }
    (dirs, paths, project.clone(), Cleanup(project))
}

fn spawn_verify(path: &Path, extra: &[&str]) -> Child {
    let report = path.join("r.json");
    masgen()
        .arg("verify")
        .arg(path)
        .args(["--settle", "2", "--stability", "2", "--report"])
        .arg(&report)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> (Option<i32>, String) {
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o))
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path.join("r.json")).unwrap()).unwrap()
}

#[test]
fn two_runs_of_one_project_started_together_both_pass_and_share_one_build() {
    if !docker_available("concurrent_twins") {
        return;
    }
    let (_dirs, paths, project, _guard) = twins("healthy", "twins");
    let a = spawn_verify(&paths[0], &[]);
    let b = spawn_verify(&paths[1], &[]);
    let (ra, rb) = (finish(a), finish(b));
    assert_eq!(ra.0, Some(0), "{}", ra.1);
    assert_eq!(rb.0, Some(0), "{}", rb.1);
    // One context, one image: built by one run, found cached by the other.
    let built: Vec<bool> = paths
        .iter()
        .map(|p| {
            report(p)["services"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == "web")
                .unwrap()["cached"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(
        built.iter().filter(|c| !**c).count(),
        1,
        "web built once: {built:?}"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_failing_and_a_healthy_run_of_one_name_each_get_their_own_verdict() {
    if !docker_available("concurrent_verdicts") {
        return;
    }
    let (_dirs, paths, project, _guard) = twins("healthy", "verdicts");
    // The second copy's web server never answers its healthcheck.
    let compose = paths[1].join("docker-compose.yml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace("http://127.0.0.1:8080/", "http://127.0.0.1:8081/")
            .replace("retries: 10", "retries: 2"),
    )
    .unwrap();
    let a = spawn_verify(&paths[0], &[]);
    let b = spawn_verify(&paths[1], &["--health-timeout", "15"]);
    let (ra, rb) = (finish(a), finish(b));
    assert_eq!(ra.0, Some(0), "{}", ra.1);
    assert_eq!(rb.0, Some(1), "{}", rb.1);
    assert_eq!(report(&paths[0])["healthy"], true);
    assert_eq!(report(&paths[1])["diagnostics"][0]["service"], "web");
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

/// The names of the project's containers of runs other than `except`.
fn run_containers(project: &str, except: &str) -> Vec<String> {
    let o = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--format",
            "{{.Names}} {{.Label \"io.masgen.run\"}}",
            "--filter",
        ])
        .arg(format!("label=com.docker.compose.project={project}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, run)| *run != except)
        .map(|(n, _)| n.to_string())
        .collect()
}

#[test]
fn a_dead_runs_leftover_is_removed_and_a_live_runs_containers_are_not() {
    if !docker_available("concurrent_cleanup") {
        return;
    }
    let (_dirs, paths, project, _guard) = twins("healthy", "cleanup");
    // What a run whose process is gone left behind.
    let dead = format!("{project}-dead-leftover");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let o = Command::new("docker")
        .args(["run", "-d", "--name", &dead])
        .args(["--label", "io.masgen.managed=1", "--label"])
        .arg(format!("com.docker.compose.project={project}"))
        .args(["--label", "io.masgen.run=dead-run", "--label"])
        .arg(format!("io.masgen.host={}", host.trim()))
        .args([
            "--label",
            "io.masgen.pid=4000000000",
            "--label",
            "io.masgen.started=1000",
        ])
        .args(["busybox:latest", "sleep", "3600"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // A live run, held in its stability window while the second one starts.
    let first = {
        let report = paths[0].join("r.json");
        masgen()
            .arg("verify")
            .arg(&paths[0])
            .args(["--settle", "1", "--stability", "15", "--report"])
            .arg(&report)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while run_containers(&project, "dead-run").len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let live = run_containers(&project, "dead-run");
    assert!(
        live.len() >= 4,
        "the first run's containers are up: {live:?}"
    );
    let second = spawn_verify(&paths[1], &[]);
    let (r2, r1) = (finish(second), finish(first));
    assert_eq!(r2.0, Some(0), "{}", r2.1);
    assert_eq!(r1.0, Some(0), "the live run was left alone: {}", r1.1);
    let still = Command::new("docker")
        .args(["inspect", &dead])
        .output()
        .unwrap();
    assert!(
        !still.status.success(),
        "the dead run's container was removed"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_second_keep_of_a_running_project_is_refused_and_down_removes_it() {
    if !docker_available("concurrent_keep") {
        return;
    }
    let (_dir, path, guard) = unique_output("keep2");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("docker-compose.yml"),
        "services:\n  app:\n    image: busybox:latest\n    container_name: masgen-test-kept-app\n    command: [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let keep = || {
        masgen()
            .arg("verify")
            .arg(&path)
            .args(["--settle", "1", "--stability", "0", "--keep"])
            .output()
            .unwrap()
    };
    let o = keep();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        inspect("masgen-test-kept-app", "{{.State.Running}}"),
        "true",
        "container_name is honoured when kept"
    );
    let o = keep();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("is already running") && text(&o).contains("masgen down"),
        "{}",
        text(&o)
    );
    assert_eq!(
        inspect("masgen-test-kept-app", "{{.State.Running}}"),
        "true",
        "the kept system was not torn down"
    );
    // A verification (not kept) runs beside it under its own names.
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&guard.0).is_empty(),
        "{:?}",
        leftovers(&guard.0)
    );
}

/// `docker volume ls` names of `project`'s volumes.
fn project_volumes(project: &str) -> Vec<String> {
    let o = std::process::Command::new("docker")
        .args(["volume", "ls", "-q", "--filter"])
        .arg(format!("label=com.docker.compose.project={project}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_kept_system_s_data_outlives_down_and_goes_with_down_v() {
    if !docker_available("keep_volumes") {
        return;
    }
    let (_dir, path, guard) = unique_output("keepvol");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("docker-compose.yml"),
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo run >> /data/runs; exec sleep 3600\"]\n    volumes: [data:/data]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/data/runs\"]\n      interval: 1s\n      retries: 10\nvolumes:\n  data: {}\n",
    )
    .unwrap();
    let project = guard.0.clone();
    let keep = || {
        let o = masgen()
            .arg("verify")
            .arg(&path)
            .args(["--stability", "0", "--keep"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    };
    let volume = format!("{project}_data");
    keep();
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!(
            "kept volume(s) {volume} with their data for the next --keep or --execute"
        )),
        "{}",
        text(&o)
    );
    assert_eq!(project_volumes(&project), vec![volume.clone()]);
    keep();
    let runs = std::process::Command::new("docker")
        .args(["exec", &format!("{project}-app-1"), "cat", "/data/runs"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&runs.stdout),
        "run\nrun\n",
        "the second kept system found the first one's data"
    );
    let o = masgen().args(["down", "-v"]).arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(project_volumes(&project).is_empty(), "down -v removed it");
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}
