//! Interrupts and `--execute` against the real daemon: Ctrl-C and SIGTERM tear down what
//! the run started; `--execute` publishes declared ports and follows logs until Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::docker::*;
use common::*;

/// Start masgen with stderr read line by line into a channel.
fn spawn(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = masgen()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn masgen");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    needle: &str,
    timeout: Duration,
) -> Result<String, Vec<String>> {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < end {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains(needle) {
                return Ok(line);
            }
            seen.push(line);
        }
    }
    Err(seen)
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("masgen did not exit within {timeout:?}");
}

/// A system that never becomes ready: its healthcheck stays "starting".
fn never_ready_system() -> (tempfile::TempDir, std::path::PathBuf, Cleanup, String) {
    let (dir, path) = copy_fixture("never_healthy");
    std::fs::write(
        path.join("docker-compose.yml"),
        "services:\n  slow:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 60s\n      start_period: 120s\n",
    )
    .unwrap();
    let project = path.file_name().unwrap().to_string_lossy().to_string();
    (dir, path, Cleanup(project.clone()), project)
}

fn interrupt_tears_down(sig: &str) {
    if !docker_available(sig) {
        return;
    }
    let (_dir, path, _guard, project) = never_ready_system();
    let (mut child, rx) = spawn(&["verify", path.to_str().unwrap(), "--health-timeout", "100"]);
    wait_for_line(&rx, "verify: start", Duration::from_secs(60))
        .unwrap_or_else(|seen| panic!("never started: {seen:?}"));
    // Wait until the container exists, so there is something to tear down.
    let end = Instant::now() + Duration::from_secs(30);
    while leftovers(&project)
        .iter()
        .all(|l| !l.starts_with("container"))
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        leftovers(&project)
            .iter()
            .any(|l| l.starts_with("container")),
        "the container never appeared"
    );
    signal(&child, sig);
    let code = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{sig}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l
            .contains("interrupted: containers, networks and volumes of this run were removed")),
        "{rest:?}"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{sig} left {:?}",
        leftovers(&project)
    );
}

#[test]
fn ctrl_c_during_verification_tears_down_and_exits_130() {
    interrupt_tears_down("-INT");
}

#[test]
fn sigterm_during_verification_tears_down_and_exits_130() {
    interrupt_tears_down("-TERM");
}

#[test]
fn execute_publishes_declared_ports_follows_logs_and_tears_down_on_ctrl_c() {
    if !docker_available("execute") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, path) = copy_fixture("healthy");
    std::fs::write(
        path.join("docker-compose.yml"),
        format!("services:\n  site:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"mkdir -p /w && echo executed > /w/index.html && echo site up && exec httpd -f -v -p 80 -h /w\"]\n    ports: [\"127.0.0.1:{port}:80\"]\n"),
    )
    .unwrap();
    let project = path.file_name().unwrap().to_string_lossy().to_string();
    let _guard = Cleanup(project.clone());
    let (mut child, rx) = spawn(&[
        "verify",
        path.to_str().unwrap(),
        "--execute",
        "--settle",
        "1",
        "--stability",
        "1",
    ]);
    let line = wait_for_line(&rx, "answers at", Duration::from_secs(60))
        .unwrap_or_else(|seen| panic!("no address shown: {seen:?}"));
    assert!(
        line.contains(&format!("port 80/tcp answers at 127.0.0.1:{port}")),
        "{line}"
    );
    let mut conn =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("the declared port answers");
    conn.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).unwrap();
    assert!(page.contains("executed"), "{page}");
    // Logs are followed: the httpd access line shows up prefixed with the service.
    wait_for_line(&rx, "site | ", Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("no log lines followed: {seen:?}"));
    signal(&child, "-INT");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), Some(130));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}
