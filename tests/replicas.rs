//! Replicas on the real daemon: `deploy.replicas` and `scale` run N containers named as
//! Compose names them, each health-gated; a dependent starts once all are ready; the
//! report lists them; a failing replica is named in its diagnostic.

mod common;

use std::process::Command;

use common::docker::*;
use common::*;
use serde_json::Value;

/// The project's container names, sorted, without the project's prefix.
fn containers(project: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={project}");
    let o = Command::new("docker")
        .args(["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim_start_matches(&format!("{project}-")).to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn replicas_run_as_compose_runs_them_and_a_dependent_waits_for_all() {
    let test = "replicas_run_as_compose_runs_them_and_a_dependent_waits_for_all";
    let Some(twin) = Twin::of(test, "replicas") else {
        return;
    };
    twin.compose(&["up", "-d"]);
    let expected = containers(&twin.theirs);
    twin.compose(&["down"]);
    assert_eq!(
        expected,
        ["client-1", "client-2", "web-1", "web-2", "web-3"]
    );
    let out = masgen()
        .args(["--json", "verify"])
        .arg(&twin.dir)
        .args(["--settle", "1", "--stability", "1", "--keep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(containers(&twin.ours), expected);
    // The clients start once every web replica is ready.
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred).unwrap();
    let web_ready = at(&|e| e["event"] == "service_ready" && e["service"] == "web");
    let web_started = events
        .iter()
        .filter(|e| e["event"] == "container_started" && e["service"] == "web")
        .count();
    assert_eq!(web_started, 3);
    let first_client = at(&|e| e["event"] == "container_started" && e["service"] == "client");
    assert!(web_ready < first_client, "{events:?}");
    let report = events.iter().find(|e| e["event"] == "report").unwrap();
    let web = &report["report"]["services"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["replicas"].as_array().unwrap().len(), 3);
    twin.masgen("down", &[]);
    let project = twin.ours.clone();
    drop(twin);
    assert_nothing_left(&project);
}

#[test]
fn a_failing_replica_is_named() {
    if !docker_available("a_failing_replica_is_named") {
        return;
    }
    // Only one replica gets the lock; the others exit 3.
    let (_tmp, dir, cleanup) = compose_project("replica-fails", "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"mkdir /shared/lock && exec sleep 3600; echo no lock for me; exit 3\"]\n    scale: 3\n    volumes: [shared:/shared]\nvolumes:\n  shared:\n");
    let out = masgen()
        .arg("verify")
        .arg(&dir)
        .args(["--settle", "2", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = run_report(&dir);
    let d = &report["diagnostics"][0];
    let summary = d["summary"].as_str().unwrap();
    let project = cleanup.0.clone();
    let named = (1..=3).any(|n| {
        summary.starts_with(&format!("replica {n} of 3 ({project}-"))
            && summary.contains(&format!("-app-{n}): crashed: exited with code 3"))
    });
    assert!(named, "{summary}");
    assert!(
        d["evidence"].as_str().unwrap().contains("no lock for me"),
        "{d}"
    );
    drop(cleanup);
    assert_nothing_left(&project);
}

/// A published port range is shared out among the replicas as Compose shares it: each
/// gets its own port of the range (`--execute`, which publishes the declared ports).
#[test]
fn a_port_range_is_shared_out_among_the_replicas() {
    if !docker_available("a_port_range_is_shared_out_among_the_replicas") {
        return;
    }
    use std::io::BufRead;
    let (_tmp, dir, cleanup) = compose_project("replica-ports", "services:\n  web:\n    image: busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/\"]\n    scale: 3\n    ports:\n      - \"18471-18473:80\"\n");
    let mut child = masgen()
        .args(["--json", "verify"])
        .arg(&dir)
        .args(["--execute", "--settle", "1", "--stability", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut hosts = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(e) = serde_json::from_str::<Value>(&line.unwrap()) else {
            continue;
        };
        if e["event"] == "published" {
            hosts.push(e["host"].as_str().unwrap().to_string());
        }
        if hosts.len() == 3 || e["event"] == "report" {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut ports: Vec<String> = hosts
        .iter()
        .map(|h| h.rsplit(':').next().unwrap().to_string())
        .collect();
    ports.sort();
    assert_eq!(ports, ["18471", "18472", "18473"], "{hosts:?}");
    let project = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&project);
}
