//! `masgen verify` against the real daemon: one healthy system and one broken system per
//! failure class. Each asserts the exit code, the failing service and phase, evidence
//! holding the root-cause line, and that nothing with the project's label remains.

mod common;

use common::docker::*;
use common::*;

struct Run {
    code: Option<i32>,
    dir: std::path::PathBuf,
    report: serde_json::Value,
    out: String,
    project: String,
    _dir: tempfile::TempDir,
}

/// A copy of fixture `name` in a temporary folder, its project name, and the guard that
/// removes the project's Docker objects even if the test fails.
fn guarded_copy(name: &str) -> (tempfile::TempDir, std::path::PathBuf, String, Cleanup) {
    let (dir, path) = copy_fixture(name);
    let project = path.file_name().unwrap().to_string_lossy().to_string();
    let guard = Cleanup(project.clone());
    (dir, path, project, guard)
}

/// A guarded system folder holding nothing but `compose` as its docker-compose.yml.
fn compose_system(compose: &str) -> (tempfile::TempDir, std::path::PathBuf, String, Cleanup) {
    let (dir, path, guard) = unique_output("compose");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("docker-compose.yml"), compose).unwrap();
    let project = guard.0.clone();
    (dir, path, project, guard)
}

/// `masgen verify DIR ARGS` with `env` added, which must come out healthy; its output.
fn verify_healthy(path: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = masgen()
        .envs(env.iter().copied())
        .arg("verify")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    text(&o)
}

/// `masgen verify DIR ARGS --report DIR/r.json`: its output and the report it wrote.
fn verify_reported(
    path: &std::path::Path,
    args: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(path)
        .args(args)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let r = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, r)
}

fn verify_fixture(name: &str, extra: &[&str]) -> Option<Run> {
    verify_fixture_env(name, extra, &[])
}

fn verify_fixture_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Option<Run> {
    if !docker_available(name) {
        return None;
    }
    let (dir, path, project, _guard) = guarded_copy(name);
    let report_path = dir.path().join("report.json");
    let mut args: Vec<&str> = vec!["--report", report_path.to_str().unwrap()];
    for (flag, default) in [
        ("--settle", "2"),
        ("--stability", "3"),
        ("--health-timeout", "60"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    let o = masgen()
        .envs(env.iter().copied())
        .arg("verify")
        .arg(&path)
        .args(&args)
        .args(extra)
        .output()
        .expect("run masgen");
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let left = nothing_left(&project);
    assert!(
        left.is_empty(),
        "{name}: left behind {left:?}\n{}",
        text(&o)
    );
    Some(Run {
        code: o.status.code(),
        report,
        out: text(&o),
        project,
        dir: path,
        _dir: dir,
    })
}

/// Assert the first diagnostic names `service` and `phase` with `evidence` in it.
fn assert_root(run: &Run, service: &str, phase: &str, evidence: &str) {
    assert_eq!(run.code, Some(1), "{}", run.out);
    let d = &run.report["diagnostics"][0];
    assert_eq!(d["service"], service, "{}", run.out);
    assert_eq!(d["phase"], phase, "{}", run.out);
    let ev = d["evidence"].as_str().unwrap_or_default();
    assert!(
        ev.contains(evidence),
        "evidence lacks {evidence:?}: {ev}\n{}",
        run.out
    );
    assert_eq!(run.report["healthy"], false);
}

#[test]
fn a_healthy_system_passes_and_leaves_nothing_behind() {
    let Some(run) = verify_fixture("healthy", &["--junit", "/dev/null"]) else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert_eq!(run.report["healthy"], true);
    let services = run.report["services"].as_array().unwrap();
    let state = |n: &str| {
        services
            .iter()
            .find(|s| s["name"] == n)
            .map(|s| s["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state("init"), "completed");
    for s in ["web", "consumer", "producer"] {
        assert_eq!(state(s), "ready", "{}", run.out);
    }
    // The last lines of every container are kept after teardown.
    let logs = std::fs::read_to_string(run.dir.join(".masgen/logs/consumer.log")).unwrap();
    assert!(logs.contains("consumer listening on 9000"), "{logs}");
    let web = services.iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web["health"], "healthy");
    assert!(
        web["ports"][0]
            .as_str()
            .unwrap()
            .starts_with("8080/tcp -> 127.0.0.1:"),
        "ephemeral loopback port: {}",
        web["ports"]
    );
    assert!(run.out.contains(&format!("masgen/{}-web:", run.project)));
}

#[test]
fn a_failing_build_step_is_reported_with_its_output() {
    let Some(run) = verify_fixture("build_fails", &[]) else {
        return;
    };
    assert_root(&run, "app", "build", "error: undefined symbol main_loop");
    let d = &run.report["diagnostics"][0];
    assert!(
        d["summary"].as_str().unwrap().contains("at Step 2/"),
        "{}",
        d["summary"]
    );
    assert!(
        d["summary"]
            .as_str()
            .unwrap()
            .contains("RUN echo \"compiling app\""),
        "{}",
        d["summary"]
    );
    assert_eq!(d["files"][0], "app/Dockerfile");
    assert!(
        d["evidence"]
            .as_str()
            .unwrap()
            .contains("full build output:"),
        "{}",
        d["evidence"]
    );
    // BuildKit's log, read off its progress stream: the step, its output, its error.
    let log = std::fs::read_to_string(run.dir.join(".masgen/logs/build-app.log")).unwrap();
    assert!(
        log.contains("[2/2] RUN echo \"compiling app\"")
            && log.contains(" error: undefined symbol main_loop\n")
            && log.contains("ERROR: "),
        "{log}"
    );
}

#[test]
fn the_classic_builder_reports_a_failing_step_the_same_way() {
    // DOCKER_BUILDKIT=0 asks for the classic builder, as for the docker CLI.
    let Some(run) = verify_fixture_env("build_fails", &[], &[("DOCKER_BUILDKIT", "0")]) else {
        return;
    };
    assert_root(&run, "app", "build", "error: undefined symbol main_loop");
    let d = &run.report["diagnostics"][0];
    assert!(
        d["summary"].as_str().unwrap().contains("at Step 2/"),
        "{}",
        d["summary"]
    );
    assert!(
        d["evidence"]
            .as_str()
            .unwrap()
            .contains("returned a non-zero code: 3"),
        "the classic builder's own error: {}",
        d["evidence"]
    );
    let log = std::fs::read_to_string(run.dir.join(".masgen/logs/build-app.log")).unwrap();
    assert!(
        log.contains("Step 1/") && log.contains("error: undefined symbol main_loop"),
        "{log}"
    );
}

#[test]
fn a_file_missing_from_the_context_is_a_build_failure_naming_it() {
    let Some(run) = verify_fixture("missing_file", &[]) else {
        return;
    };
    assert_root(&run, "app", "build", "run.sh");
    let files: Vec<&str> = run.report["diagnostics"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files.contains(&"app/run.sh"), "{files:?}");
}

#[test]
fn a_crash_on_start_shows_the_exit_code_and_the_log_line() {
    let junit = tempfile::NamedTempFile::new().unwrap();
    let Some(run) = verify_fixture(
        "crash_on_start",
        &["--junit", junit.path().to_str().unwrap()],
    ) else {
        return;
    };
    assert_root(&run, "app", "crash", "FATAL: DATABASE_URL is not set");
    assert!(run.report["diagnostics"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("exit code: 4"));
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase classname=") && xml.contains("name=\"app\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"crash\" message=\"crashed: exited with code 4\">")
            && xml.contains("FATAL: DATABASE_URL is not set"),
        "{xml}"
    );
}

#[test]
fn a_crash_after_becoming_healthy_is_caught_by_the_stability_window() {
    let Some(run) = verify_fixture("crash_later", &["--stability", "8"]) else {
        return;
    };
    assert_root(&run, "app", "stability", "panic: connection pool exhausted");
}

#[test]
fn a_healthcheck_that_never_passes_shows_the_probe_output() {
    let Some(run) = verify_fixture("never_healthy", &[]) else {
        return;
    };
    assert_root(&run, "app", "health", "probe: /health returned 503");
}

#[test]
fn a_healthcheck_whose_program_is_missing_fails_in_seconds_not_after_its_retries() {
    let Some(run) = verify_fixture("healthcheck_tool_missing", &[]) else {
        return;
    };
    assert_eq!(run.code, Some(1), "{}", run.out);
    let diags = run.report["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 2, "{}", run.report);
    // Not "not ready after 60s (--health-timeout)", nor Docker's "unhealthy" after its
    // start_period and ten 5 s intervals: told as soon as it is certain.
    for (d, code, says) in [
        (&diags[0], 126, "executable file not found"),
        (&diags[1], 1, "curl: not found"),
    ] {
        assert_eq!(d["phase"], "health");
        assert_eq!(d["summary"], format!("unhealthy: its healthcheck cannot run in the container (exit {code}: the program is not in the image)"));
        assert!(
            d["evidence"].as_str().unwrap().contains(says),
            "{}",
            d["evidence"]
        );
    }
}

#[test]
fn settings_the_daemon_refuses_are_the_systems_failure_not_dockers() {
    // mem_limit: 1k is below the daemon's minimum: a diagnostic for the model (exit 1), not exit 3.
    let Some(run) = verify_fixture("refused_create", &[]) else {
        return;
    };
    assert_root(&run, "app", "start", "Minimum memory limit allowed is 6MB");
    assert_eq!(
        run.report["diagnostics"][1]["summary"],
        "not started: depends on app, which failed"
    );
}

#[test]
fn dependents_of_a_failed_service_name_it_instead_of_timing_out() {
    let Some(run) = verify_fixture("failed_dependency", &[]) else {
        return;
    };
    assert_root(&run, "db", "crash", "cannot open data directory");
    let diags = run.report["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 3, "{}", run.out);
    let api = diags.iter().find(|d| d["service"] == "api").unwrap();
    assert_eq!(api["summary"], "not started: depends on db, which failed");
    // api did not fail: it was never started. The chain says so (issue #17).
    let web = diags.iter().find(|d| d["service"] == "web").unwrap();
    assert_eq!(
        web["summary"],
        "not started: waits on api, which was not started because db failed"
    );
}

#[test]
fn a_failing_one_shot_job_blocks_its_dependents() {
    let Some(run) = verify_fixture("oneshot_fails", &[]) else {
        return;
    };
    assert_root(&run, "migrate", "crash", "migration 003 failed");
    assert!(run.report["diagnostics"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("one-shot job exited with code 2"));
    assert_eq!(
        run.report["diagnostics"][1]["summary"],
        "not started: depends on migrate, which failed"
    );
}

#[test]
fn an_image_that_is_not_local_offline_lists_the_local_ones() {
    let Some(run) = verify_fixture("missing_image", &["--offline"]) else {
        return;
    };
    assert_eq!(run.code, Some(1), "{}", run.out);
    assert_root(&run, "app", "image", "images available locally:");
    assert!(run.report["diagnostics"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("busybox:latest"));
}

#[test]
fn a_compose_syntax_error_exits_2_with_line_and_column() {
    let Some(run) = verify_fixture("syntax_error", &[]) else {
        return;
    };
    assert_eq!(run.code, Some(2), "{}", run.out);
    assert!(run.out.contains("docker-compose.yml:5:"), "{}", run.out);
}

#[test]
fn a_dependency_cycle_exits_2_naming_the_services() {
    let Some(run) = verify_fixture("cycle", &[]) else {
        return;
    };
    assert_eq!(run.code, Some(2), "{}", run.out);
    assert!(
        run.out
            .contains("dependency cycle between services a -> b -> c -> a"),
        "{}",
        run.out
    );
}

#[test]
fn every_policy_violation_is_refused_before_anything_runs() {
    for (fixture, key) in [
        ("policy_privileged", "privileged"),
        ("policy_docker_socket", "volumes"),
        ("policy_host_path", "volumes"),
        ("policy_network_host", "network_mode"),
        ("policy_pid_host", "pid"),
        ("policy_ipc_host", "ipc"),
        ("policy_cap_add", "cap_add"),
        ("policy_devices", "devices"),
        ("policy_build_outside", "build"),
        ("policy_env_file_outside", "env_file"),
    ] {
        let Some(run) = verify_fixture(fixture, &[]) else {
            return;
        };
        assert_eq!(run.code, Some(1), "{fixture}: {}", run.out);
        let d = &run.report["diagnostics"][0];
        assert_eq!(d["phase"], "policy", "{fixture}");
        assert!(
            d["summary"]
                .as_str()
                .unwrap()
                .contains(&format!("refused: {key}")),
            "{fixture}: {}",
            d["summary"]
        );
        assert!(d["summary"].as_str().unwrap().contains("--allow-unsafe"));
    }
}

#[test]
fn down_removes_a_kept_system() {
    if !docker_available("down") {
        return;
    }
    // A system that stays up.
    let (_dir, path, project, _guard) = compose_system(
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n",
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "1", "--keep"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !leftovers(&project).is_empty(),
        "--keep leaves the system running"
    );
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "down removed everything: {:?}",
        leftovers(&project)
    );
}

#[test]
fn a_kept_system_gets_its_restart_policies_and_a_verified_one_never_restarts() {
    if !docker_available("restart_policies") {
        return;
    }
    let compose = "services:\n  web:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    restart: unless-stopped\n  \
                   retry:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    restart: \"on-failure:3\"\n  \
                   plain:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--keep"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let policy = |service: &str| {
        inspect(
            &format!("{project}-{service}-1"),
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        )
    };
    assert_eq!(policy("web"), "unless-stopped 0");
    assert_eq!(policy("retry"), "on-failure 3");
    assert_eq!(policy("plain"), "no 0");
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Without --keep the same system is torn down, and a crash during verification is a
    // failure even under a restart policy: Docker never restarts it behind masgen's back.
    std::fs::write(path.join("docker-compose.yml"), "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"exit 3\"]\n    restart: always\n").unwrap();
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "2", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("exited with code 3"), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn tmpfs_extra_hosts_read_only_shm_ulimits_sysctls_and_stop_signal_reach_the_container() {
    if !docker_available("runtime_keys") {
        return;
    }
    let compose = r#"services:
  app:
    image: busybox:latest
    command: ["sh", "-c", "echo x > /scratch/f && ! touch /nope 2>/dev/null && grep -q 'db.local' /etc/hosts && echo all-good; exec sleep 3600"]
    read_only: true
    tmpfs: ["/scratch:size=1m"]
    extra_hosts: ["db.local=10.1.2.3", "cache.local:10.1.2.4"]
    shm_size: 128m
    stop_signal: SIGINT
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    sysctls:
      net.core.somaxconn: 1024
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--keep"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        !text(&o).contains("not supported by masgen"),
        "every key is understood: {}",
        text(&o)
    );
    let container = format!("{project}-app-1");
    let inspect = |format: &str| inspect(&container, format);
    assert_eq!(
        inspect("{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.ShmSize}} {{.Config.StopSignal}}"),
        "true 134217728 SIGINT"
    );
    assert_eq!(
        inspect("{{json .HostConfig.ExtraHosts}}"),
        r#"["db.local:10.1.2.3","cache.local:10.1.2.4"]"#
    );
    assert_eq!(
        inspect("{{json .HostConfig.Tmpfs}}"),
        r#"{"/scratch":"size=1m"}"#
    );
    assert_eq!(
        inspect("{{json .HostConfig.Sysctls}}"),
        r#"{"net.core.somaxconn":"1024"}"#
    );
    let ulimits = inspect("{{json .HostConfig.Ulimits}}");
    assert!(
        ulimits.contains(r#"{"Name":"nofile","Hard":2048,"Soft":1024}"#)
            && ulimits.contains(r#"{"Name":"nproc","Hard":512,"Soft":512}"#),
        "{ulimits}"
    );
    let logs = std::process::Command::new("docker")
        .args(["logs", &container])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("all-good"),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Regression: with --allow-unsafe the policy's keys passed the check but never reached
/// the container, so a service that needs NET_ADMIN still failed.
#[test]
fn allowed_unsafe_settings_run_as_written() {
    if !docker_available("allow_unsafe_applied") {
        return;
    }
    let compose = r#"services:
  admin:
    image: busybox:latest
    command: ["sh", "-c", "ip link set lo mtu 1280 && echo netadmin-ok; exec sleep 3600"]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    security_opt: ["no-new-privileges:true"]
  isolated:
    image: busybox:latest
    command: ["sleep", "3600"]
    network_mode: none
    ipc: private
  sidecar:
    image: busybox:latest
    command: ["sleep", "3600"]
    network_mode: "service:admin"
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "NET_ADMIN is refused without --allow-unsafe: {}",
        text(&o)
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args([
            "--settle",
            "1",
            "--stability",
            "0",
            "--keep",
            "--allow-unsafe",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let inspect = |service: &str, format: &str| inspect(&format!("{project}-{service}-1"), format);
    assert_eq!(
        inspect("sidecar", "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", inspect("admin", "{{.Id}}"))
    );
    assert_eq!(inspect("admin", "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .HostConfig.SecurityOpt}}"), r#"["NET_ADMIN"] ["MKNOD"] ["no-new-privileges:true"]"#);
    assert_eq!(
        inspect(
            "isolated",
            "{{.HostConfig.NetworkMode}} {{.HostConfig.IpcMode}}"
        ),
        "none private"
    );
    let logs = std::process::Command::new("docker")
        .args(["logs", &format!("{project}-admin-1")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("netadmin-ok"),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn down_names_a_network_it_cannot_remove_and_what_still_uses_it() {
    if !docker_available("down_left") {
        return;
    }
    let (_dir, path, project, _guard) = compose_system(
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n",
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--keep"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Someone else's container on the project's network (the project label lets the guard clean it up).
    let stranger = format!("{project}-stranger");
    let run = std::process::Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &stranger,
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--network",
            &format!("{project}_default"),
            "busybox:latest",
            "sleep",
            "3600",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains(&format!("network {project}_default was not removed: {stranger} still use(s) it, and masgen did not start them")), "{out}");
    assert!(
        out.contains("removed 1 container(s), 0 network(s)")
            && out.contains("1 object(s) could not be removed"),
        "{out}"
    );
    assert_eq!(
        inspect(&stranger, "{{.State.Running}}"),
        "true",
        "down never touches a container masgen did not start"
    );
}

#[test]
fn under_execute_two_services_publishing_one_host_port_is_the_systems_fault() {
    if !docker_available("own_port_clash") {
        return;
    }
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let service = |name: &str| {
        format!("  {name}:\n    image: busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n    ports: [\"{port}:80\"]\n")
    };
    let (_dir, path, project, _guard) =
        compose_system(&format!("services:\n{}{}", service("a"), service("b")));
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--execute"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a diagnostic for the model, not an environment failure: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("port is already allocated"),
        "{}",
        text(&o)
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn down_on_a_missing_folder_says_it_goes_by_the_project_name() {
    if !docker_available("down_missing") {
        return;
    }
    let o = masgen()
        .arg("down")
        .arg(format!("/nonexistent/mt-gone-{}", std::process::id()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "is not a folder: removing what project 'mt-gone-{}' left running, found by its name",
            std::process::id()
        )),
        "{}",
        text(&o)
    );
}

#[test]
fn an_override_file_is_verified_as_docker_compose_would_run_it() {
    if !docker_available("override_file") {
        return;
    }
    let (_dir, path, project, _guard) = compose_system(
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A failure names the override among the files to look at: it may be the cause.
    std::fs::write(
        path.join("docker-compose.override.yml"),
        "services:\n  app:\n    command: [\"sh\", \"-c\", \"exit 4\"]\n",
    )
    .unwrap();
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        r["diagnostics"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("exited with code 4"),
        "{r}"
    );
    assert_eq!(
        r["diagnostics"][0]["files"],
        serde_json::json!(["docker-compose.yml", "docker-compose.override.yml"])
    );
    // The override replaces the command and adds a service, as `docker compose up` applies it.
    std::fs::write(
        path.join("docker-compose.override.yml"),
        "services:\n  app:\n    command: [\"sleep\", \"3600\"]\n  sidecar:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    depends_on: [app]\n",
    )
    .unwrap();
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let names: Vec<&str> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app", "sidecar"]);
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_service_extending_one_from_another_file_runs_as_docker_compose_resolves_it() {
    if !docker_available("extends_file") {
        return;
    }
    let main = "services:\n  app:\n    extends:\n      file: common/base.yml\n      service: py\n    environment:\n      MODE: dev\n";
    let (_dir, path, project, _guard) = compose_system(main);
    std::fs::create_dir(path.join("common")).unwrap();
    // The other file's `build: .` is its own folder, not the system's.
    std::fs::write(
        path.join("common/Dockerfile"),
        "FROM busybox:latest\nCOPY marker /marker\n",
    )
    .unwrap();
    std::fs::write(path.join("common/marker"), "m\n").unwrap();
    std::fs::write(
        path.join("common/base.yml"),
        "services:\n  py:\n    build: .\n    environment:\n      GREETING: hello\n    command: [\"sh\", \"-c\", \"exit 5\"]\n",
    )
    .unwrap();
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        r["diagnostics"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("exited with code 5"),
        "{r}"
    );
    let files: Vec<&str> = r["diagnostics"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"common/base.yml") && files.contains(&"docker-compose.yml"),
        "{files:?}"
    );
    assert_eq!(
        files.iter().filter(|f| **f == "common/base.yml").count(),
        1,
        "{files:?}"
    );
    // Its own settings go over the inherited ones; the inherited environment stays.
    let main = format!("{main}    command: [\"sh\", \"-c\", \"test \\\"$$GREETING $$MODE\\\" = 'hello dev' && test -f /marker && sleep 3600\"]\n");
    std::fs::write(path.join("docker-compose.yml"), main).unwrap();
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "2", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn secrets_and_configs_reach_the_container_as_docker_compose_puts_them() {
    if !docker_available("secrets_configs") {
        return;
    }
    // Each check exits with its own code, so a failure says which file was wrong.
    let compose = r#"services:
  app:
    image: busybox:latest
    command:
      - sh
      - -c
      - |
        test "$$(cat /run/secrets/db_password)" = s3cret || exit 11
        test "$$(cat /run/secrets/api)" = t0k-from-dotenv || exit 12
        test "$$(stat -c %a /run/secrets/api)" = 400 || exit 13
        test "$$(cat /etc/app.conf)" = level=debug || exit 14
        echo x 2>/dev/null > /run/secrets/db_password && exit 15
        sleep 3600
    secrets:
      - db_password
      - source: token
        target: api
        mode: 0400
    configs:
      - source: app
        target: /etc/app.conf
secrets:
  db_password:
    file: ./db_password.txt
  token:
    environment: MT_SECRET_TOKEN
configs:
  app:
    content: level=debug
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    std::fs::write(path.join(".env"), "MT_SECRET_TOKEN=t0k-from-dotenv\n").unwrap();
    // The file is missing: said plainly, before anything runs.
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "2", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        r["diagnostics"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("secret 'db_password': file ./db_password.txt does not exist"),
        "{r}"
    );
    std::fs::write(path.join("db_password.txt"), "s3cret").unwrap();
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "2", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn links_dns_options_and_extra_groups_reach_the_container() {
    if !docker_available("links_dns") {
        return;
    }
    let compose = r#"services:
  app:
    image: busybox:latest
    links: ["db:database"]
    group_add: ["4242"]
    dns_opt: ["ndots:3"]
    command:
      - sh
      - -c
      - |
        ping -c1 -W2 database >/dev/null || exit 11
        id -G | grep -qw 4242 || exit 12
        grep -q 'ndots:3' /etc/resolv.conf || exit 13
        sleep 3600
  db:
    image: busybox:latest
    command: ["sleep", "3600"]
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "2", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The link made db a dependency: it started first.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let names: Vec<&str> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["db", "app"]);
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn verify_and_down_take_compose_files_with_f_as_docker_compose_does() {
    if !docker_available("compose_f") {
        return;
    }
    // The folder's own compose file would fail; the named files make a healthy system.
    let (_dir, path, project, _guard) = compose_system(
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    std::fs::create_dir(path.join("ci")).unwrap();
    std::fs::write(
        path.join("base.yml"),
        "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"exit 4\"]\n",
    )
    .unwrap();
    std::fs::write(
        path.join("ci/fix.yml"),
        "services:\n  app:\n    command: [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args([
            "-f",
            "base.yml",
            "--settle",
            "1",
            "--stability",
            "0",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        r["diagnostics"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("exited with code 4"),
        "{r}"
    );
    assert_eq!(
        r["diagnostics"][0]["files"],
        serde_json::json!(["base.yml"])
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args([
            "-f",
            "base.yml",
            "--file",
            "ci/fix.yml",
            "--settle",
            "1",
            "--stability",
            "0",
            "--keep",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!leftovers(&project).is_empty(), "--keep left it running");
    let o = masgen()
        .arg("down")
        .arg(&path)
        .args(["-f", "base.yml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["-f", "missing.yml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("missing.yml (named by -f) does not exist"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_service_whose_optional_dependency_fails_still_starts_and_is_verified() {
    if !docker_available("optional_dep") {
        return;
    }
    let compose = "services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      cache: {condition: service_healthy, required: false}\n  cache:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"exit 3\"]\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "the failed dependency is still a failure: {}",
        text(&o)
    );
    assert!(
        text(&o).contains(
            "app: its optional dependency cache failed (required: false): starting it anyway"
        ),
        "{}",
        text(&o)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let state = |n: &str| {
        r["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        (state("app"), state("cache")),
        ("ready".to_string(), "failed".to_string()),
        "{r}"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn volumes_from_mounts_another_services_volumes_after_it_exists() {
    if !docker_available("volumes_from") {
        return;
    }
    let compose = r#"services:
  app:
    image: busybox:latest
    volumes_from: ["data:ro"]
    command:
      - sh
      - -c
      - |
        for i in 1 2 3 4 5 6 7 8 9 10; do [ -f /shared/x ] && break; sleep 0.2; done
        test "$$(cat /shared/x)" = hi || exit 11
        touch /shared/y 2>/dev/null && exit 12
        sleep 3600
  data:
    image: busybox:latest
    volumes: ["/shared"]
    command: ["sh", "-c", "echo hi > /shared/x; exec sleep 3600"]
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    verify_healthy(&path, &["--settle", "3", "--stability", "0"], &[]);
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_service_joins_another_services_network_and_pid_namespaces() {
    if !docker_available("service_namespaces") {
        return;
    }
    let compose = r#"services:
  sidecar:
    image: busybox:latest
    network_mode: "service:web"
    pid: "service:web"
    hostname: ignored-here
    command:
      - sh
      - -c
      - |
        for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null http://127.0.0.1:8080/ && break; sleep 0.3; done
        wget -q -O /dev/null http://127.0.0.1:8080/ || exit 11
        ps | grep -q '[h]ttpd' || exit 12
        sleep 3600
  web:
    image: busybox:latest
    ports: ["8080"]
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    verify_healthy(&path, &["--settle", "4", "--stability", "0"], &[]);
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn down_keeps_the_built_images_unless_asked_to_remove_them() {
    if !docker_available("down_images") {
        return;
    }
    let (_dir, path, project, _guard) = guarded_copy("long_names");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args(["--settle", "1", "--stability", "0", "--keep"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let built = project_images(&project);
    assert_eq!(built.len(), 1, "{built:?}");
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
    assert_eq!(
        project_images(&project),
        built,
        "plain `down` keeps the images, as docker compose down does"
    );
    let o = masgen()
        .arg("down")
        .arg(&path)
        .arg("--images")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("removed 0 container(s), 0 network(s), 0 volume(s), 1 image(s)"),
        "{}",
        text(&o)
    );
    assert!(
        project_images(&project).is_empty(),
        "{:?}",
        project_images(&project)
    );
}

#[test]
fn the_bundled_demo_generates_and_comes_up_healthy_with_no_key() {
    if !docker_available("demo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("mt-demo-{}", std::process::id()));
    let _guard = Cleanup(out.file_name().unwrap().to_string_lossy().to_string());
    let root = env!("CARGO_MANIFEST_DIR");
    let o = masgen()
        .current_dir(root)
        .args([
            "@examples/demo_spec.txt",
            "--replay",
            "fixtures/demo",
            "-o",
            out.to_str().unwrap(),
            "--stability",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("healthy: 6 service(s)"),
        "{}",
        text(&o)
    );
    let report = run_report(&out);
    assert_eq!(report["healthy"], true);
    assert_eq!(report["exit_code"], 0);
    // The first draft's worker crashes on a missing module; round 1 fixes it. The system
    // is then healthy but sends no job to the ledger: the smoke check sees it, with the
    // worker's log of each job twice, and round 2 fixes the router.
    let rounds = report["repair"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{}", text(&o));
    assert_eq!(rounds[0]["outcome"], "repaired");
    assert_eq!(rounds[0]["diagnostics"][0]["service"], "worker");
    assert!(rounds[0]["diagnostics"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("No module named 'yaml'"));
    assert_eq!(rounds[1]["outcome"], "healthy");
    let smoke = &rounds[1]["diagnostics"][0];
    assert_eq!(
        (&smoke["service"], &smoke["phase"]),
        (&"smoke".into(), &"smoke".into())
    );
    let evidence = smoke["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("not ok - the accepted job is recorded in the ledger")
            && evidence.contains("worker wrote while the check ran")
            && evidence.contains("digits of 1234 sum to 10"),
        "{evidence}"
    );
    let fix = std::fs::read_to_string(out.join(".masgen/rounds/002/changes.diff")).unwrap();
    assert!(fix.contains("+            send_line(LEDGER"), "{fix}");
    assert_eq!(report["verify"]["smoke"][0]["verdict"], "passed");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("5 smoke check(s) passed"),
        "{}",
        text(&o)
    );
    assert!(nothing_left(&out.file_name().unwrap().to_string_lossy()).is_empty());
}

/// A TCP listener that relays every connection to the local Docker socket: a daemon at
/// `tcp://127.0.0.1:<port>`, as DOCKER_HOST may name one.
/// A TCP address that relays to the Docker socket; with `refuse_buildkit`, a connection
/// that opens with a BuildKit build (`/build?version=2`) gets a 400 instead, as from a
/// daemon without BuildKit.
fn relay_to_docker_socket(socket: std::path::PathBuf, refuse_buildkit: bool) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let mut first = vec![0u8; 256];
            let n = tcp.read(&mut first).unwrap_or(0);
            first.truncate(n);
            if refuse_buildkit
                && String::from_utf8_lossy(&first)
                    .lines()
                    .next()
                    .is_some_and(|l| l.contains("/build?version=2"))
            {
                let body = r#"{"message":"BuildKit is not enabled on this daemon"}"#;
                let _ = write!(tcp, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                continue;
            }
            let Ok(mut unix) = std::os::unix::net::UnixStream::connect(&socket) else {
                continue;
            };
            if unix.write_all(&first).is_err() {
                continue;
            }
            let (mut tcp_r, mut unix_w) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            let (mut unix_r, mut tcp_w) = (unix, tcp);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut tcp_r, &mut unix_w);
                let _ = unix_w.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut unix_r, &mut tcp_w);
                let _ = tcp_w.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_tcp_docker_host_builds_and_runs_the_system() {
    let Some(socket) = daemon_socket_for("tcp_docker_host") else {
        return;
    };
    let host = format!("tcp://127.0.0.1:{}", relay_to_docker_socket(socket, false));
    // Builds go over the same TCP daemon address, with BuildKit, and so does everything else.
    let Some(run) = verify_fixture_env("build_fails", &[], &[("DOCKER_HOST", host.as_str())])
    else {
        return;
    };
    assert_root(&run, "app", "build", "error: undefined symbol main_loop");
    let log = std::fs::read_to_string(run.dir.join(".masgen/logs/build-app.log")).unwrap();
    assert!(log.contains("[2/2] RUN echo"), "a BuildKit log: {log}");
    let Some(run) = verify_fixture_env(
        "healthy",
        &["--no-cache"],
        &[("DOCKER_HOST", host.as_str())],
    ) else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.out);
}

#[test]
fn a_daemon_refusing_buildkit_builds_with_the_classic_builder_and_says_so() {
    let Some(socket) = daemon_socket_for("buildkit_refused") else {
        return;
    };
    let host = format!("tcp://127.0.0.1:{}", relay_to_docker_socket(socket, true));
    let Some(run) = verify_fixture_env(
        "long_names",
        &["--no-cache"],
        &[("DOCKER_HOST", host.as_str())],
    ) else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.out);
    assert!(
        run.out.contains(
            "refused a BuildKit build (400 Bad Request: BuildKit is not enabled on this daemon)"
        ),
        "{}",
        run.out
    );
    assert_eq!(
        run.out.matches("refused a BuildKit build").count(),
        1,
        "one warning: {}",
        run.out
    );
    let log = std::fs::read_to_string(run.dir.join(".masgen/logs/build-web.log")).unwrap();
    assert!(
        log.contains("Step 2/4 : COPY . /app") && log.contains("Successfully built"),
        "a classic builder log: {log}"
    );
    assert!(
        run.report["verify"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("classic builder")),
        "{}",
        run.report
    );
}

#[test]
fn the_docker_clis_current_context_is_the_daemon_used() {
    let Some(socket) = daemon_socket_for("docker_context") else {
        return;
    };
    // A context named as Docker Desktop, colima or rootless setups name theirs, pointing at
    // a TCP relay to this machine's daemon.
    let config = tempfile::tempdir().unwrap();
    let meta = config.path().join("contexts/meta/5c0ffee");
    std::fs::create_dir_all(&meta).unwrap();
    let host = format!("tcp://127.0.0.1:{}", relay_to_docker_socket(socket, false));
    std::fs::write(meta.join("meta.json"), format!(r#"{{"Name":"masgen-test","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}"}}}}}}"#)).unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"currentContext":"masgen-test"}"#,
    )
    .unwrap();
    let config_dir = config.path().to_string_lossy().to_string();
    let Some(run) = verify_fixture_env(
        "healthy",
        &[],
        &[("DOCKER_CONFIG", config_dir.as_str()), ("DOCKER_HOST", "")],
    ) else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.out);
    // The context is really what was used: one pointing nowhere is unreachable, and says which.
    std::fs::write(
        meta.join("meta.json"),
        r#"{"Name":"masgen-test","Endpoints":{"docker":{"Host":"unix:///nonexistent/ctx.sock"}}}"#,
    )
    .unwrap();
    let o = masgen()
        .env("DOCKER_CONFIG", &config_dir)
        .env_remove("DOCKER_HOST")
        .arg("verify")
        .arg(fixture("healthy"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("Docker is not reachable at unix:///nonexistent/ctx.sock (docker context 'masgen-test')"), "{}", text(&o));
}

#[test]
fn an_unreachable_docker_host_exits_3_naming_it() {
    let o = masgen()
        .env("DOCKER_HOST", "unix:///nonexistent/masgen-test.sock")
        .arg("verify")
        .arg(fixture("crash_on_start"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Docker is not reachable at unix:///nonexistent/masgen-test.sock")
            && err.contains("Start the daemon"),
        "{err}"
    );
}

#[test]
fn services_sharing_a_host_port_and_a_named_volume_come_up_and_down_v_removes_the_volume() {
    if !docker_available("volumes_ports") {
        return;
    }
    let (_dir, path, project, _guard) = guarded_copy("volumes_ports");
    let report = path.join("r.json");
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .args([
            "--settle",
            "2",
            "--stability",
            "2",
            "--keep",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let ports: Vec<String> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ports"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ports.len(), 2);
    assert_ne!(ports[0], ports[1], "each gets its own ephemeral host port");
    let left = leftovers(&project);
    assert!(
        left.iter().any(|l| l.starts_with("volume")),
        "the named volume exists while kept: {left:?}"
    );
    let logs = std::process::Command::new("docker")
        .args(["logs", &format!("{project}-reader-1")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("hello from writer"),
        "the volume is shared"
    );
    // As `docker compose down`: the kept system's named volume keeps its data...
    let o = masgen().arg("down").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let left = leftovers(&project);
    assert!(
        left.len() == 1 && left[0].starts_with("volume"),
        "only the named volume is left: {left:?}"
    );
    // ...until `down -v`.
    let o = masgen().args(["down", "-v"]).arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_context_opening_with_a_long_file_name_builds_with_buildkit() {
    let Some(run) = verify_fixture("long_names", &[]) else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.out);
    let logs = std::fs::read_to_string(run.dir.join(".masgen/logs/web.log")).unwrap();
    assert!(logs.contains("context complete"), "{logs}");
}

/// The project's images, as `docker images` lists them (`repo:tag`, `<none>:<none>` untagged).
fn project_images(project: &str) -> Vec<String> {
    let o = std::process::Command::new("docker")
        .args([
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ])
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn superseded_images_are_removed_unless_a_container_uses_them() {
    if !docker_available("prune_images") {
        return;
    }
    let (_dir, path, project, _guard) = guarded_copy("long_names");
    let verify = |extra: &[&str]| {
        verify_healthy(
            &path,
            &[&["--settle", "1", "--stability", "0"], extra].concat(),
            &[],
        )
    };
    verify(&[]);
    let first = project_images(&project);
    assert_eq!(first.len(), 1, "{first:?}");
    // A container of anyone's still uses the first image: it must survive the next run.
    let user = std::process::Command::new("docker")
        .args([
            "create",
            "--label",
            &format!("com.docker.compose.project={project}"),
            &first[0],
        ])
        .output()
        .unwrap();
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    let user_id = String::from_utf8_lossy(&user.stdout).trim().to_string();
    std::fs::write(path.join("web/extra.txt"), "changed\n").unwrap();
    verify(&[]);
    let second = project_images(&project);
    assert_eq!(second.len(), 2, "the image in use stays: {second:?}");
    assert!(second.contains(&first[0]));
    std::process::Command::new("docker")
        .args(["rm", &user_id])
        .output()
        .unwrap();
    std::fs::write(path.join("web/extra.txt"), "changed again\n").unwrap();
    let out = verify(&[]);
    assert!(out.contains("2 superseded image(s)"), "{out}");
    let third = project_images(&project);
    assert_eq!(third.len(), 1, "{third:?}");
    // --no-cache moves the same tag to a new image; the old one loses its tag and goes too.
    let out = verify(&["--no-cache"]);
    assert!(out.contains("1 superseded image(s)"), "{out}");
    assert_eq!(project_images(&project), third);
}

/// Regression: images were tagged by a hash of their build context alone, so after a base
/// image was pulled or rebuilt, verify kept running the image built on the old one.
#[test]
fn a_rebuilt_base_image_makes_a_new_image() {
    if !docker_available("rebuilt_base") {
        return;
    }
    let (_dir, path, _guard) = unique_output("rebuilt-base");
    let project = path.file_name().unwrap().to_string_lossy().to_string();
    let base = format!("{project}-base:latest");
    // The base carries the project's label, so the guard removes it and its old versions too.
    let build_base = |content: &str| {
        let ctx = path.join("base-src");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM busybox:latest\nCOPY base.txt /base.txt\n",
        )
        .unwrap();
        std::fs::write(ctx.join("base.txt"), content).unwrap();
        let label = format!("com.docker.compose.project={project}");
        let o = std::process::Command::new("docker")
            .args(["build", "-q", "--label", &label, "-t", &base])
            .arg(&ctx)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    build_base("one\n");
    std::fs::create_dir_all(path.join("app")).unwrap();
    std::fs::write(path.join(".dockerignore"), "base-src\n").unwrap();
    std::fs::write(
        path.join("app/Dockerfile"),
        format!("FROM {base}\nCMD [\"sh\", \"-c\", \"cat /base.txt; sleep 300\"]\n"),
    )
    .unwrap();
    std::fs::write(
        path.join("docker-compose.yml"),
        "services:\n  app:\n    build: ./app\n",
    )
    .unwrap();
    let verify = || {
        let report = path.join("report.json");
        let o = masgen()
            .arg("verify")
            .arg(&path)
            .args(["--settle", "1", "--stability", "0", "--report"])
            .arg(&report)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let app = &r["services"][0];
        let log = std::fs::read_to_string(path.join(".masgen/logs/app.log")).unwrap();
        (
            app["image"].as_str().unwrap().to_string(),
            app["cached"].as_bool().unwrap(),
            log,
        )
    };
    let (first, _, log) = verify();
    assert!(log.contains("one"), "{log}");
    let (again, cached, _) = verify();
    assert_eq!(
        (again.as_str(), cached),
        (first.as_str(), true),
        "an unchanged base and context reuse the image"
    );
    build_base("two\n");
    let (second, cached, log) = verify();
    assert!(!cached, "the base changed: the image must be rebuilt");
    assert_ne!(second, first);
    assert!(
        log.contains("two") && !log.contains("one"),
        "the container runs on the new base: {log}"
    );
}

/// What an image holds under `paths` (every entry's type, mode, owner, size, content and, for
/// files, time) and its configuration, read from a container that never starts.
fn image_snapshot(image: &str, paths: &[&str]) -> (Vec<String>, String) {
    let docker = |args: &[&str]| {
        let o = std::process::Command::new("docker")
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let id = String::from_utf8(docker(&["create", image, "true"]))
        .unwrap()
        .trim()
        .to_string();
    let mut entries = Vec::new();
    for path in paths {
        let tar = docker(&["cp", &format!("{id}:{path}"), "-"]);
        let mut archive = tar::Archive::new(&tar[..]);
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            let time = if h.entry_type().is_dir() {
                0
            } else {
                h.mtime().unwrap()
            };
            entries.push(format!(
                "{path}: {} {:?} {:o} {}:{} {} {} {time}",
                e.path().unwrap().display(),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                content.len(),
                blake3::hash(&content).to_hex()
            ));
        }
    }
    docker(&["rm", &id]);
    entries.sort();
    let config = String::from_utf8(docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config}}",
        image,
    ]))
    .unwrap();
    (entries, config)
}

/// A change to files that only trailing COPYs read patches the previous image instead of
/// running the builder; the patched image holds exactly what the builder makes of the same
/// files (checked against a `--no-cache` build), with the same configuration.
#[test]
fn a_patched_image_holds_what_the_builder_builds() {
    if !docker_available("patched_image") {
        return;
    }
    let dockerfile = "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN mkdir -p /opt/data && echo ok > /opt/data/x\nCOPY . .\nCOPY lib/ /opt/lib/\n\
        USER 1000\nCOPY tool.py /usr/local/bin\nCOPY cli.py /usr/local/bin/cli\nCOPY [\"conf/a.ini\", \"conf/b.ini\", \"/etc/demo/\"]\nENV MODE=test\n\
        CMD [\"python3\", \"-c\", \"import time; time.sleep(600)\"]\n";
    let (_dir, path, project, _guard) =
        compose_system("services:\n  app:\n    build: ./app\n  web:\n    build: ./web\n");
    let app = path.join("app");
    for (file, content) in [
        ("Dockerfile", dockerfile),
        ("requirements.txt", "# none\n"),
        ("app.py", "print('one')\n"),
        ("lib/old.py", "OLD = 1\n"),
        ("lib/x.py", "X = 1\n"),
        ("tool.py", "print('tool')\n"),
        ("cli.py", "print('cli')\n"),
        ("conf/a.ini", "[a]\n"),
        ("conf/b.ini", "[b]\n"),
        (
            "../web/Dockerfile",
            "FROM busybox:latest\nCOPY index.html /www/\nCMD [\"sleep\", \"600\"]\n",
        ),
        ("../web/index.html", "<p>hi</p>\n"),
        ("../web/notes.md", "no COPY reads this\n"),
    ] {
        std::fs::create_dir_all(app.join(file).parent().unwrap()).unwrap();
        std::fs::write(app.join(file), content).unwrap();
    }
    let verify = |extra: &[&str], env: &[(&str, &str)]| {
        verify_healthy(
            &path,
            &[&["--settle", "1", "--stability", "0"], extra].concat(),
            env,
        )
    };
    let image = || {
        project_images(&project)
            .into_iter()
            .find(|i| i.contains("-app:"))
            .unwrap()
    };
    let web_id = || {
        inspect(
            &project_images(&project)
                .into_iter()
                .find(|i| i.contains("-web:"))
                .unwrap(),
            "{{.Id}}",
        )
    };
    let paths = [
        "/app",
        "/opt/lib",
        "/usr/local/bin/tool.py",
        "/usr/local/bin/cli",
        "/etc/demo",
    ];
    assert!(verify(&[], &[]).contains("build app: built in"));
    // A file no instruction reads: the same image under the new context's tag.
    let web = web_id();
    std::fs::write(path.join("web/notes.md"), "still not read\n").unwrap();
    assert!(verify(&[], &[]).contains("build web: patched in"));
    assert_eq!(web_id(), web);
    assert!(
        std::fs::read_to_string(path.join(".masgen/logs/build-web.log"))
            .unwrap()
            .contains("nothing the Dockerfile copies changed")
    );
    assert_eq!(
        project_images(&project).len(),
        2,
        "the old tag is gone: {:?}",
        project_images(&project)
    );
    // Code the first COPY . . reads, a new folder, a deleted file, and files later COPYs read.
    std::fs::write(app.join("app.py"), "print('two')\n").unwrap();
    std::fs::remove_file(app.join("lib/old.py")).unwrap();
    std::fs::create_dir_all(app.join("lib/new")).unwrap();
    std::fs::write(app.join("lib/new/y.py"), "Y = 2\n").unwrap();
    std::fs::write(app.join("conf/a.ini"), "[a]\nchanged = 1\n").unwrap();
    let out = verify(&[], &[]);
    assert!(out.contains("build app: patched in"), "{out}");
    let patched = image_snapshot(&image(), &paths);
    // What the RUN below the patched COPYs wrote is still there (its time is the build's).
    assert!(image_snapshot(&image(), &["/opt/data"])
        .0
        .iter()
        .any(|e| e.starts_with("/opt/data: data/x Regular 100644 0:0 3 ")));
    assert!(
        patched
            .0
            .iter()
            .any(|e| e.contains("/opt/lib: lib/new/y.py")),
        "{:#?}",
        patched.0
    );
    assert!(
        !patched.0.iter().any(|e| e.contains("old.py")),
        "a deleted file is gone: {:#?}",
        patched.0
    );
    assert!(
        patched
            .0
            .iter()
            .any(|e| e.starts_with("/usr/local/bin/tool.py: tool.py Regular")),
        "into the existing folder: {:#?}",
        patched.0
    );
    let log = std::fs::read_to_string(path.join(".masgen/logs/build-app.log")).unwrap();
    assert!(
        log.contains("masgen: patched") && log.contains("COPY . ."),
        "{log}"
    );
    let built = {
        assert!(verify(&["--no-cache"], &[]).contains("build app: built in"));
        image_snapshot(&image(), &paths)
    };
    assert_eq!(patched.0, built.0, "the files differ from the builder's");
    assert_eq!(
        patched.1, built.1,
        "the configuration differs from the builder's"
    );
    // A file an earlier COPY reads goes to the builder; so does everything with MASGEN_PATCH=0.
    std::fs::write(app.join("requirements.txt"), "# still none\n").unwrap();
    assert!(verify(&[], &[]).contains("build app: built in"));
    std::fs::write(app.join("app.py"), "print('three')\n").unwrap();
    assert!(verify(&[], &[("MASGEN_PATCH", "0")]).contains("build app: built in"));
    std::fs::write(app.join("app.py"), "print('four')\n").unwrap();
    assert!(verify(&[], &[]).contains("build app: patched in"));
    assert_eq!(nothing_left(&project), Vec::<String>::new());
}

#[test]
fn services_on_different_networks_are_kept_apart_as_compose_keeps_them() {
    if !docker_available("networks_apart") {
        return;
    }
    // proxy is on both networks; web only on front, db only on back. Each checks what it
    // can and cannot reach by name, and aliases are per network.
    let compose = r#"services:
  db:
    image: busybox:latest
    networks: [back]
    command: ["sleep", "3600"]
  web:
    image: busybox:latest
    networks:
      front:
        aliases: [site]
    command:
      - sh
      - -c
      - |
        ping -c1 -W2 db >/dev/null 2>&1 && exit 12
        for i in 1 2 3 4 5 6 7 8 9 10; do ping -c1 -W1 proxy >/dev/null 2>&1 && break; sleep 1; done
        ping -c1 -W2 proxy >/dev/null || exit 11
        sleep 3600
  proxy:
    image: busybox:latest
    depends_on: [db, web]
    networks: [front, back]
    command:
      - sh
      - -c
      - |
        ping -c1 -W2 db >/dev/null || exit 21
        ping -c1 -W2 site >/dev/null || exit 22
        sleep 3600
networks:
  front: {}
  back: {}
"#;
    let (_dir, path, project, _guard) = compose_system(compose);
    verify_healthy(&path, &["--settle", "3", "--stability", "0"], &[]);
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn build_options_reach_both_builders_and_dockerfile_inline_is_built() {
    if !docker_available("build_options") {
        return;
    }
    for buildkit in ["1", "0"] {
        let tag = format!("masgen-test-tag-{}-{buildkit}:v1", std::process::id());
        let compose = format!(
            r#"services:
  app:
    build:
      context: .
      labels: {{com.example.team: shop}}
      tags: ["{tag}"]
      extra_hosts: ["buildhost=10.1.2.3"]
      network: none
    command: ["sleep", "3600"]
  inline:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox:latest
        RUN echo inline-built > /built
    command: ["sh", "-c", "grep -q inline-built /built && exec sleep 3600"]
"#
        );
        let (_dir, path, project, _guard) = compose_system(&compose);
        // The folder's own Dockerfile checks the options in its RUN steps; the inline
        // service's text is built instead of it.
        std::fs::write(
            path.join("Dockerfile"),
            "FROM busybox:latest\nRUN grep -q '10.1.2.3.*buildhost' /etc/hosts\nRUN ! grep -q eth0 /proc/net/dev\n",
        )
        .unwrap();
        verify_healthy(
            &path,
            &["--settle", "2", "--stability", "0"],
            &[("DOCKER_BUILDKIT", buildkit)],
        );
        let label = std::process::Command::new("docker")
            .args([
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"com.example.team\"}}",
                &tag,
            ])
            .output()
            .unwrap();
        let _ = std::process::Command::new("docker")
            .args(["rmi", &tag])
            .output();
        assert_eq!(
            String::from_utf8_lossy(&label.stdout).trim(),
            "shop",
            "DOCKER_BUILDKIT={buildkit}: {}",
            String::from_utf8_lossy(&label.stderr)
        );
        assert!(
            nothing_left(&project).is_empty(),
            "{:?}",
            leftovers(&project)
        );
    }
}

#[test]
fn a_chain_of_services_not_started_names_the_one_that_failed() {
    if !docker_available("chain_words") {
        return;
    }
    let compose = "services:\n  mysql:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo 'FATAL: no data dir' >&2; exit 1\"]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  api:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      mysql: {condition: service_healthy}\n  seeder:\n    image: busybox:latest\n    command: [\"true\"]\n    depends_on: [api]\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    let (o, r) = verify_reported(&path, &["--settle", "1", "--stability", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let says =
        "seeder [start] not started: waits on api, which was not started because mysql failed";
    assert!(text(&o).contains(says), "{}", text(&o));
    let seeder = r["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["service"] == "seeder")
        .unwrap();
    assert_eq!(
        seeder["summary"],
        "not started: waits on api, which was not started because mysql failed"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn a_pull_from_a_registry_that_never_answers_fails_after_the_stall_window() {
    if !docker_available("pull_stall") {
        return;
    }
    // A "registry" that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let compose = format!("services:\n  app:\n    image: 127.0.0.1:{port}/masgen-test/stalled:1\n");
    let (_dir, path, project, _guard) = compose_system(&compose);
    let o = masgen()
        .args(["verify", path.to_str().unwrap(), "--pull-stall", "3"])
        .output()
        .unwrap();
    // The environment's failure: exit 3, the registry named, what to do said.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("the pull made no progress for 3 s (--pull-stall)")
            && said.contains(&format!("registry 127.0.0.1:{port} cannot be reached"))
            && said.contains("--offline"),
        "{said}"
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn an_unreachable_registry_is_the_environments_failure_and_suggests_offline() {
    let Some(run) = verify_fixture("missing_image", &[]) else {
        return;
    };
    assert_eq!(run.code, Some(3), "{}", run.out);
    assert!(
        run.out
            .contains("registry nosuchregistry.invalid cannot be reached")
            && run.out.contains("--offline"),
        "{}",
        run.out
    );
}

#[test]
fn build_secrets_and_an_ssh_agent_reach_the_run_steps_that_mount_them() {
    if !docker_available("build_session") {
        return;
    }
    // A real agent on a socket of the test's own.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn();
    let Ok(mut agent) = agent else {
        panic!("ssh-agent (openssh-client) is needed for this test");
    };
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let compose = format!(
        "services:\n  app:\n    build:\n      context: .\n      secrets: [token, {{source: env_token, target: api}}]\n      ssh: [\"default={}\"]\n    command: [\"sh\", \"-c\", \"grep -qx t0ken /token && grep -qx fromenv /api && grep -q agent-answered /agent && exec sleep 3600\"]\nsecrets:\n  token:\n    file: ./token.txt\n  env_token:\n    environment: MASGEN_TEST_BUILD_SECRET\n",
        sock.display()
    );
    let (_dir, path, project, _guard) = compose_system(&compose);
    std::fs::write(path.join("token.txt"), "t0ken\n").unwrap();
    // The agent is asked for its identities (SSH2_AGENTC_REQUEST_IDENTITIES) and must answer
    // SSH2_AGENT_IDENTITIES_ANSWER (12) through the forwarded socket.
    std::fs::write(
        path.join("Dockerfile"),
        "FROM python:3.11-slim\nRUN --mount=type=secret,id=token cp /run/secrets/token /token\nRUN --mount=type=secret,id=api cp /run/secrets/api /api\nRUN --mount=type=ssh python3 -c \"import os, socket; s = socket.socket(socket.AF_UNIX); s.connect(os.environ['SSH_AUTH_SOCK']); s.sendall(bytes([0, 0, 0, 1, 11])); r = s.recv(64); assert r[4] == 12, r; open('/agent', 'w').write('agent-answered')\"\n",
    )
    .unwrap();
    let out = verify_healthy(
        &path,
        &["--settle", "2", "--stability", "0"],
        &[("MASGEN_TEST_BUILD_SECRET", "fromenv")],
    );
    let _ = agent.kill();
    assert!(!out.contains("t0ken") && !out.contains("fromenv"), "{out}");
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn build_secrets_on_the_classic_builder_are_refused_clearly() {
    if !docker_available("build_session_classic") {
        return;
    }
    let compose = "services:\n  app:\n    build:\n      context: .\n      secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    std::fs::write(path.join("token.txt"), "t0ken\n").unwrap();
    std::fs::write(
        path.join("Dockerfile"),
        "FROM busybox:latest\nRUN --mount=type=secret,id=token true\n",
    )
    .unwrap();
    let o = masgen()
        .env("DOCKER_BUILDKIT", "0")
        .args(["verify", path.to_str().unwrap(), "--stability", "0"])
        .output()
        .unwrap();
    // The engine's setting, known before anything runs: exit 3, never a repair round.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("service app uses build.secrets, which needs BuildKit, and this engine builds with the classic builder (DOCKER_BUILDKIT=0): unset DOCKER_BUILDKIT"),
        "{}",
        text(&o)
    );
    assert!(
        !text(&o).contains("build app"),
        "nothing was built: {}",
        text(&o)
    );
    assert!(!text(&o).contains("t0ken"));
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

/// The images of `project` made for a named context (labelled with the project, and
/// named `masgen/<project>-<service>--context<N>`).
fn context_images(project: &str) -> Vec<String> {
    project_images(project)
        .into_iter()
        .filter(|i| i.contains("--context"))
        .collect()
}

#[test]
fn named_build_contexts_stand_for_what_the_dockerfile_names() {
    if !docker_available("named_contexts") {
        return;
    }
    // Every form: a folder (relative to the project, its .dockerignore applied) used by
    // COPY --from and RUN --mount=from=; a folder named like a stage, which it replaces (the
    // stage would fail); an image; another service's image, used as the base.
    let compose = "services:\n  base:\n    build: base\n    command: [\"true\"]\n  app:\n    build:\n      context: app\n      additional_contexts:\n        files: ./shared\n        deps: depsdir\n        img: docker-image://busybox:latest\n        basesvc: service:base\n    command: [\"sh\", \"-c\", \"grep -qx from-base /base.txt && grep -qx hello /hello.txt && grep -qx hello /mounted.txt && grep -qx m /marker && test -x /img-busybox && exec sleep 3600\"]\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    for (file, text) in [
        (
            "base/Dockerfile",
            "FROM busybox:latest\nRUN echo from-base > /base.txt\n",
        ),
        ("shared/hello.txt", "hello\n"),
        ("shared/secret.txt", "s\n"),
        ("shared/.dockerignore", "secret.txt\n"),
        ("depsdir/marker", "m\n"),
        (
            "app/Dockerfile",
            "FROM busybox AS deps\nRUN false\nFROM basesvc\nCOPY --from=files /hello.txt /hello.txt\nCOPY --from=deps /marker /marker\nCOPY --from=img /bin/busybox /img-busybox\nRUN --mount=from=files,target=/f \\\n    test ! -e /f/secret.txt && cat /f/hello.txt > /mounted.txt\n",
        ),
    ] {
        std::fs::create_dir_all(path.join(file).parent().unwrap()).unwrap();
        std::fs::write(path.join(file), text).unwrap();
    }
    let args = ["--settle", "1", "--stability", "0"];
    verify_healthy(&path, &args, &[]);
    assert!(
        context_images(&project).is_empty(),
        "{:?}",
        context_images(&project)
    );
    // Unchanged: cached. A change in a context folder is a change of the image.
    let out = verify_healthy(&path, &args, &[]);
    assert!(out.contains("build app: unchanged, cached image"), "{out}");
    std::fs::write(path.join("shared/hello.txt"), "changed\n").unwrap();
    let o = masgen()
        .args([
            "verify",
            path.to_str().unwrap(),
            "--settle",
            "1",
            "--stability",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("build app: unchanged"), "{}", text(&o));
    assert!(
        context_images(&project).is_empty(),
        "{:?}",
        context_images(&project)
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}

#[test]
fn named_build_contexts_that_cannot_be_had_fail_the_build_clearly() {
    if !docker_available("named_contexts_failures") {
        return;
    }
    let compose = "services:\n  app:\n    build:\n      context: .\n      additional_contexts:\n        files: ./missing\n";
    let (_dir, path, project, _guard) = compose_system(compose);
    std::fs::write(
        path.join("Dockerfile"),
        "FROM busybox:latest\nCOPY --from=files /a /a\n",
    )
    .unwrap();
    let run = |buildkit: &str| {
        masgen()
            .env("DOCKER_BUILDKIT", buildkit)
            .args(["verify", path.to_str().unwrap(), "--stability", "0"])
            .output()
            .unwrap()
    };
    let o = run("1");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("build.additional_contexts 'files': cannot read")
            && text(&o).contains("missing is not a folder"),
        "{}",
        text(&o)
    );
    std::fs::create_dir_all(path.join("missing")).unwrap();
    std::fs::write(path.join("missing/a"), "a\n").unwrap();
    let o = run("0");
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("service app uses build.additional_contexts, which needs BuildKit"),
        "{}",
        text(&o)
    );
    assert!(
        context_images(&project).is_empty(),
        "{:?}",
        context_images(&project)
    );
    assert!(
        nothing_left(&project).is_empty(),
        "{:?}",
        leftovers(&project)
    );
}
