//! Differential tests: each project under fixtures/compose/ means the same to masgen as to
//! Docker Compose v2, the reference. Both print their reading with `config --format json`;
//! the fields that decide what runs are compared (services, images, commands, entrypoints,
//! environment, ports, build context and Dockerfile, depends_on, volumes, networks, the
//! project name). A project Compose refuses, masgen refuses too (exit 2). A project with a
//! key masgen does not implement is refused by masgen before anything runs, naming the key.
//!
//! Each case folder holds the project and a `case` file of lines:
//!   expect: same | refused | masgen-refuses   (default: same)
//!   args: ARGS...        arguments before `config` for both (-f, -p, --env-file)
//!   env: KEY=VALUE       an environment variable for both (repeatable)
//!   says: TEXT           masgen's error must contain TEXT (refusals)
//!
//! The reference binary: MASGEN_COMPOSE_REF, else the one scripts/test.sh installs
//! (target/compose-ref). Without it the test skips loudly, and fails under
//! MASGEN_REQUIRE_DOCKER=1 (CI, where scripts/test.sh installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Map, Value};

fn reference_or_skip(test: &str) -> Option<PathBuf> {
    common::docker::compose_reference_or_skip(test)
}

#[derive(Default)]
struct Case {
    expect: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    says: Vec<String>,
}

fn read_case(dir: &Path) -> Case {
    let mut c = Case {
        expect: "same".into(),
        ..Default::default()
    };
    let text = std::fs::read_to_string(dir.join("case")).unwrap_or_default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "expect" => c.expect = v,
            "args" => c.args = v.split_whitespace().map(str::to_string).collect(),
            "env" => {
                let (k, v) = v.split_once('=').expect("env: KEY=VALUE");
                c.env.push((k.to_string(), v.to_string()));
            }
            "says" => c.says.push(v),
            other => panic!("{}: unknown case line {other:?}", dir.display()),
        }
    }
    c
}

/// `config --format json` with the case's arguments: Compose takes them before `config`,
/// masgen after it.
fn run(program: &Path, case: &Case, dir: &Path) -> Output {
    let reference = program != Path::new(env!("CARGO_BIN_EXE_masgen"));
    let mut cmd = Command::new(program);
    if reference {
        cmd.args(&case.args).arg("config");
    } else {
        cmd.arg("config").args(&case.args);
    }
    cmd.args(["--format", "json"]).current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(case.env.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("run config")
}

/// The fields of a `config --format json` output that decide what runs.
fn meaning(out: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(out).expect("config prints JSON");
    let mut services = Map::new();
    for (name, svc) in v["services"].as_object().into_iter().flatten() {
        let mut s = Map::new();
        for key in [
            "image",
            "command",
            "entrypoint",
            "environment",
            "ports",
            "depends_on",
            "volumes",
            "networks",
            "container_name",
            "healthcheck",
            "restart",
            "labels",
            "working_dir",
            "user",
            "hostname",
            "expose",
            "extra_hosts",
            "tmpfs",
            "cap_add",
            "cap_drop",
            "init",
            "read_only",
            "network_mode",
            "volumes_from",
            "shm_size",
            "sysctls",
            "logging",
            "devices",
            "ulimits",
            "links",
            "dns",
            "dns_search",
            "dns_opt",
            "group_add",
            "stop_signal",
            "stop_grace_period",
            "security_opt",
            "secrets",
            "configs",
            "deploy",
            "profiles",
            "tty",
            "stdin_open",
            "privileged",
            "pid",
            "ipc",
            "pull_policy",
            "platform",
            "domainname",
        ] {
            let value = svc.get(key).cloned().unwrap_or(Value::Null);
            s.insert(key.into(), value);
        }
        if let Some(b) = svc.get("build") {
            let keep = masgen::compose::model::BUILD_KEYS;
            let build: Map<String, Value> = keep
                .iter()
                .filter_map(|k| b.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            s.insert("build".into(), Value::Object(build));
        }
        services.insert(name.clone(), Value::Object(s));
    }
    serde_json::json!({"name": v["name"], "services": services, "secrets": v["secrets"], "configs": v["configs"], "networks": v["networks"], "volumes": v["volumes"]})
}

fn check(reference: &Path, dir: &Path) -> Result<(), String> {
    let case = read_case(dir);
    let masgen = run(Path::new(env!("CARGO_BIN_EXE_masgen")), &case, dir);
    let compose = run(reference, &case, dir);
    let m_err = String::from_utf8_lossy(&masgen.stderr).to_string();
    let c_err = String::from_utf8_lossy(&compose.stderr).to_string();
    let says = |err: &str| -> Result<(), String> {
        match case.says.iter().find(|s| !err.contains(s.as_str())) {
            Some(missing) => Err(format!("masgen's error does not say {missing:?}:\n{err}")),
            None => Ok(()),
        }
    };
    match case.expect.as_str() {
        "same" => {
            if !compose.status.success() {
                return Err(format!(
                    "the reference refused a case marked same:\n{c_err}"
                ));
            }
            if !masgen.status.success() {
                return Err(format!("masgen refused what Compose reads:\n{m_err}"));
            }
            let (m, c) = (meaning(&masgen.stdout), meaning(&compose.stdout));
            if m != c {
                return Err(format!(
                    "masgen:\n{}\nDocker Compose:\n{}",
                    serde_json::to_string_pretty(&m).unwrap(),
                    serde_json::to_string_pretty(&c).unwrap()
                ));
            }
            Ok(())
        }
        "refused" => {
            if compose.status.success() {
                return Err("the reference accepted a case marked refused".into());
            }
            if masgen.status.code() != Some(2) {
                return Err(format!(
                    "Compose refuses this ({}), masgen exited {:?}",
                    c_err.trim(),
                    masgen.status.code()
                ));
            }
            says(&m_err)
        }
        "masgen-refuses" => {
            if !compose.status.success() {
                return Err(format!(
                    "the reference refused a case marked masgen-refuses:\n{c_err}"
                ));
            }
            if masgen.status.code() != Some(2) {
                return Err(format!(
                    "masgen exited {:?}, not 2 (refused by the rule)",
                    masgen.status.code()
                ));
            }
            says(&m_err)
        }
        other => Err(format!("unknown expect: {other}")),
    }
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/compose");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("fixtures/compose")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_project_in_the_corpus_means_the_same_to_masgen_as_to_docker_compose() {
    let Some(reference) = reference_or_skip("compose corpus") else {
        return;
    };
    let cases = cases();
    assert!(
        cases.len() >= 60,
        "the corpus holds {} projects",
        cases.len()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|dir| {
            check(&reference, dir)
                .err()
                .map(|e| format!("== {}\n{e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} projects differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_refused_project_is_refused_before_anything_runs_and_leaves_no_masgen_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    oom_score_adj: 100\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_masgen"))
        .args(["verify", "--json"])
        .arg(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/masgen-test.sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("compose.yaml:4:5: services.web.oom_score_adj: refused before anything runs"),
        "{err}"
    );
    assert!(
        !dir.path().join(".masgen").exists(),
        "a refused project gets no .masgen/"
    );
    // Refused by the policy (exit 1: a repair could fix it), it is only read too.
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    privileged: true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_masgen"))
        .arg("verify")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join(".masgen").exists(),
        "a refused project gets no .masgen/"
    );
}

#[test]
fn a_project_with_nothing_to_run_passes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for (compose, says) in [
        ("volumes:\n  data: {}\n", "nothing to run: the project defines no services"),
        (
            "services:\n  tools:\n    image: busybox\n    profiles: [tools]\n",
            "nothing to run: every service waits for a profile that is not active (COMPOSE_PROFILES=tools",
        ),
    ] {
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_masgen"))
            .arg("verify")
            .arg(dir.path())
            .env("DOCKER_HOST", "unix:///nonexistent/masgen-test.sock")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(stdout.contains("nothing to run"), "{stdout}");
        assert!(!dir.path().join(".masgen").exists());
    }
}

/// `scripts/conformance.sh` over the corpus: every project is read the same, refused by
/// masgen before anything runs, or refused by both; and a project that differs is named.
#[test]
fn the_conformance_script_agrees_on_the_corpus_and_names_a_difference() {
    let test = "the_conformance_script_agrees_on_the_corpus_and_names_a_difference";
    let Some(reference) = reference_or_skip(test) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = |dir: &Path, masgen: &Path| {
        Command::new(root.join("scripts/conformance.sh"))
            .arg(dir)
            .env("MASGEN_COMPOSE_REF", &reference)
            .env("MASGEN", masgen)
            .output()
            .unwrap()
    };
    let out = script(
        &root.join("fixtures/compose"),
        Path::new(env!("CARGO_BIN_EXE_masgen")),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 read differently"), "{stdout}");
    // A difference is named with its path: a project whose meaning masgen would change.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    let fake = tmp.path().join("fake-masgen");
    std::fs::write(
        &fake,
        "#!/bin/sh\n\"$MASGEN_COMPOSE_REF\" config --format json | sed s/busybox/alpine/\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = script(tmp.path(), &fake);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DIFFERS")
            && stdout.contains("$.services.a.image: Compose \"busybox\", masgen \"alpine\""),
        "{stdout}"
    );
}
