//! `masgen ci`: every workflow it writes is valid against the GitHub Actions (and GitLab
//! CI) schema (PyPI's check-jsonschema, offline), and the plain workflow's steps, run in
//! order with Docker Compose v2 as a runner would run them, pass on a working project with
//! a one-shot job and fail at the smoke step on one whose check fails, with the system's
//! logs printed and everything torn down.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker::*;
use common::*;

fn require(test: &str, what: &str) -> bool {
    if std::env::var("MASGEN_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("{test}: MASGEN_REQUIRE_DOCKER=1 but {what} (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED {test}: {what} (scripts/test.sh installs it)");
    false
}

/// PyPI's check-jsonschema, as scripts/test.sh installs it.
fn check_jsonschema(test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-tools/bin/check-jsonschema");
    if p.is_file() {
        Some(p)
    } else {
        require(test, "check-jsonschema is not installed in target/ci-tools");
        None
    }
}

/// A DOCKER_CONFIG whose cli-plugins hold the reference Compose v2, so that `docker
/// compose` is Compose v2 as on a runner.
fn compose_plugin(test: &str) -> Option<tempfile::TempDir> {
    let binary = compose_reference_or_skip(test)?;
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("cli-plugins")).unwrap();
    std::os::unix::fs::symlink(binary, config.path().join("cli-plugins/docker-compose")).unwrap();
    Some(config)
}

/// The notes project with the checks its recorded reply writes, under a unique name.
fn project(tag: &str) -> (tempfile::TempDir, PathBuf, Cleanup) {
    let (tmp, dir, cleanup) = unique_output(tag);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("fixtures/projects/notes"), &dir);
    let reply =
        std::fs::read_to_string(root.join("fixtures/projects/notes-replies/001-checks.txt"))
            .unwrap();
    let parsed = masgen::protocol::parse_reply(&reply);
    for (path, content) in parsed.files() {
        let target = path.under(&dir);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
    }
    (tmp, dir, cleanup)
}

fn ci(dir: &Path, extra: &[&str]) -> std::process::Output {
    masgen().arg("ci").arg(dir).args(extra).output().unwrap()
}

fn validate(tool: &Path, schema: &str, file: &Path) {
    let out = Command::new(tool)
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not a valid {schema} file:\n{}{}\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

#[test]
fn every_workflow_masgen_ci_writes_is_valid_and_none_is_overwritten() {
    let test = "every_workflow_masgen_ci_writes_is_valid_and_none_is_overwritten";
    let Some(tool) = check_jsonschema(test) else {
        return;
    };
    let (_tmp, dir, _cleanup) = project("ci-schema");
    let github = dir.join(".github/workflows/smoke.yml");
    let gitlab = dir.join(".gitlab-ci.yml");
    for flags in [
        &["--gitlab"][..],
        &["--gitlab", "--with-masgen", "--force"][..],
    ] {
        let out = ci(&dir, flags);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            text(&out).contains(".github/workflows/smoke.yml"),
            "{}",
            text(&out)
        );
        validate(&tool, "vendor.github-workflows", &github);
        validate(&tool, "vendor.gitlab-ci", &gitlab);
    }
    assert!(std::fs::read_to_string(&github)
        .unwrap()
        .contains("masgen verify . --junit masgen-results/junit.xml"));
    // An existing file is never replaced without --force, and nothing is written then.
    std::fs::remove_file(&gitlab).unwrap();
    std::fs::write(&github, "# the user's own workflow\n").unwrap();
    let out = ci(&dir, &["--gitlab"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&github).unwrap(),
        "# the user's own workflow\n"
    );
    assert!(!gitlab.exists());
}

/// One step as a runner ran it.
struct Ran {
    name: String,
    ran: bool,
    ok: bool,
    output: String,
}

/// Run the workflow's `run:` steps in order in `dir`, as GitHub's runner would: bash with
/// `-eo pipefail`, the job's env, `if:` conditions honoured (`uses:` steps are the
/// runner's own: checkout is the folder itself, the artifact is checked by the caller).
fn run_workflow(dir: &Path, workflow: &str, env: &[(&str, &str)]) -> Vec<Ran> {
    let doc = masgen::compose::yaml::parse(workflow).unwrap().value;
    let job = &doc["jobs"]["smoke"];
    assert_eq!(job["defaults"]["run"]["shell"], "bash");
    let job_env: Vec<(String, String)> = job["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let (mut failed, mut outcomes) = (false, std::collections::BTreeMap::new());
    let mut out = Vec::new();
    for step in job["steps"].as_array().unwrap() {
        let name = step["name"].as_str().unwrap_or("").to_string();
        let condition = step["if"].as_str().unwrap_or("success()");
        let run = match condition {
            "success()" => !failed,
            "always()" => true,
            "failure()" => failed,
            "${{ !cancelled() && steps.ready.outcome == 'success' }}" => {
                outcomes.get("ready") == Some(&true)
            }
            other => panic!("an if: this runner does not know: {other}"),
        };
        let Some(script) = step["run"].as_str().filter(|_| run) else {
            out.push(Ran {
                name,
                ran: false,
                ok: true,
                output: String::new(),
            });
            continue;
        };
        let o = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(dir)
            .envs(job_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let ok = o.status.success();
        failed |= !ok;
        if let Some(id) = step["id"].as_str() {
            outcomes.insert(id.to_string(), ok);
        }
        out.push(Ran {
            name,
            ran: true,
            ok,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        });
    }
    out
}

fn step<'a>(ran: &'a [Ran], name: &str) -> &'a Ran {
    ran.iter()
        .find(|r| r.name.starts_with(name))
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Removes the images Compose built for `project` (the runner's are thrown away).
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        for service in ["api", "smoke-notes"] {
            let _ = Command::new("docker")
                .args(["rmi", "-f", &format!("{}-{service}", self.0)])
                .output();
        }
    }
}

/// The workflow `masgen ci` writes for `dir`, run with Compose v2.
fn run_plain(dir: &Path, project: &str, docker_config: &Path) -> Vec<Ran> {
    let out = ci(dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let workflow = std::fs::read_to_string(dir.join(".github/workflows/smoke.yml")).unwrap();
    let config = docker_config.to_str().unwrap();
    let summary = dir.join("step-summary.md");
    let ran = run_workflow(
        dir,
        &workflow,
        &[
            ("DOCKER_CONFIG", config),
            ("COMPOSE_PROJECT_NAME", project),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    let down = step(&ran, "Tear down");
    assert!(down.ran && down.ok, "{}", down.output);
    assert_nothing_left(project);
    ran
}

#[test]
fn the_plain_workflow_passes_on_a_working_project_and_fails_at_the_check_on_a_broken_one() {
    let test =
        "the_plain_workflow_passes_on_a_working_project_and_fails_at_the_check_on_a_broken_one";
    if !docker_available(test) {
        return;
    }
    let Some(config) = compose_plugin(test) else {
        return;
    };

    let (_tmp, dir, cleanup) = project("ci-works");
    let _images = Images(cleanup.0.clone());
    let ran = run_plain(&dir, &cleanup.0, config.path());
    for r in ran.iter().filter(|r| r.ran) {
        assert!(r.ok, "step {} failed:\n{}", r.name, r.output);
    }
    let wait = step(&ran, "Wait until every service is ready");
    assert!(
        wait.output.contains("ready: seed (exit0), api (healthy)"),
        "{}",
        wait.output
    );
    assert!(!step(&ran, "Logs of the system").ran);
    let check = step(&ran, "Smoke check: smoke-notes");
    assert!(
        check.output.contains("ok 3 - a note posted"),
        "{}",
        check.output
    );
    let junit = std::fs::read_to_string(dir.join("smoke-results/junit.xml")).unwrap();
    assert!(junit.contains("tests=\"3\" failures=\"0\""), "{junit}");
    drop(cleanup);

    // The api drops posted notes: healthy, but not what its README says.
    let (_tmp, dir, cleanup) = project("ci-fails");
    let _images = Images(cleanup.0.clone());
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        compose.replace("READ_ONLY: \"0\"", "READ_ONLY: \"1\""),
    )
    .unwrap();
    let ran = run_plain(&dir, &cleanup.0, config.path());
    let failed: Vec<&str> = ran
        .iter()
        .filter(|r| r.ran && !r.ok)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(failed, ["Smoke check: smoke-notes"]);
    let check = step(&ran, "Smoke check: smoke-notes");
    assert!(
        check.output.contains("not ok 3 - a note posted to /notes"),
        "{}",
        check.output
    );
    let logs = step(&ran, "Logs of the system");
    assert!(logs.ran && logs.ok, "{}", logs.output);
    assert!(
        logs.output
            .contains("read-only mode: note 'smoke note' dropped"),
        "{}",
        logs.output
    );
    let junit = std::fs::read_to_string(dir.join("smoke-results/junit.xml")).unwrap();
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(
        junit.contains("<failure message=\"a note posted to /notes is listed by GET /notes\">"),
        "{junit}"
    );
    let summary = std::fs::read_to_string(dir.join("step-summary.md")).unwrap();
    assert!(
        summary.starts_with("## ❌ smoke checks: 2 of 3 passed"),
        "{summary}"
    );
}

#[test]
fn the_wait_step_fails_on_a_one_shot_that_fails() {
    let test = "the_wait_step_fails_on_a_one_shot_that_fails";
    if !docker_available(test) {
        return;
    }
    let Some(config) = compose_plugin(test) else {
        return;
    };
    let (_tmp, dir, cleanup) = project("ci-oneshot");
    let _images = Images(cleanup.0.clone());
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    // A one-shot job that nothing waits on fails a second in: `up --detach` succeeds.
    let broken = compose.replace(
        "\n  api:\n",
        "\n  audit:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"sleep 1; exit 3\"]\n\n  api:\n",
    );
    assert_ne!(broken, compose);
    std::fs::write(dir.join("compose.yaml"), broken).unwrap();
    let ran = run_plain(&dir, &cleanup.0, config.path());
    let wait = step(&ran, "Wait until every service is ready");
    assert!(wait.ran && !wait.ok, "{}", wait.output);
    assert!(
        wait.output.contains("audit exited with code 3"),
        "{}",
        wait.output
    );
    assert!(!step(&ran, "Smoke check: smoke-notes").ran);
}
