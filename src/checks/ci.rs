//! `masgen ci`: a CI workflow that runs the system and its smoke checks with Docker
//! Compose alone. It builds the system and its checks, starts the system, waits for it as
//! masgen's gate does (a service with a healthcheck is healthy, one without has kept
//! running, a one-shot job has exited 0: by exit code, not `up --wait`), runs each check
//! with `docker compose run`, prints the logs on failure, writes JUnit from what the
//! checks printed (TAP), uploads it, and always tears down with `down --volumes`. With
//! `--with-masgen` the job calls `masgen verify` instead.

use std::path::Path;
use std::time::Duration;

use crate::compose::load::LoadOptions;
use crate::plan::{Readiness, SystemPlan};

/// Where the workflows go, relative to the project.
pub const GITHUB_FILE: &str = ".github/workflows/smoke.yml";
pub const GITLAB_FILE: &str = ".gitlab-ci.yml";
/// Where the plain workflow keeps what the checks printed, and its JUnit.
pub const RESULTS: &str = "smoke-results";

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(
        "{path} exists: pass --force to replace it (masgen ci never overwrites a file otherwise)"
    )]
    Exists { path: String },
    #[error("a compose file of the project is outside its folder ({path}): a workflow runs in the repository's checkout, so name files inside it")]
    Outside { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct CiOptions {
    pub load: LoadOptions,
    pub gitlab: bool,
    pub with_masgen: bool,
    pub force: bool,
}

/// A workflow file: its path relative to the project and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub path: String,
    pub text: String,
}

/// The project as a workflow runs it.
#[derive(Debug, Clone)]
pub struct Target {
    /// COMPOSE_FILE: the compose files, relative, `:`-separated, checks' file last.
    pub compose_file: String,
    pub project_name: Option<String>,
    pub env_files: Vec<String>,
    /// `--project-directory`, as given (relative to the repository's root).
    pub project_directory: Option<String>,
    /// READY_WHEN: `service=healthy|running|exit0`, space-separated, in start order.
    pub ready_when: String,
    pub checks: Vec<String>,
}

/// Read the project in `dir` as verification reads it (its checks' file included).
pub fn target(dir: &Path, load: &LoadOptions) -> Result<Target, CiError> {
    let load = LoadOptions {
        smoke_file: true,
        ..load.clone()
    };
    let plan = crate::plan::load(dir, &load, true, Duration::from_secs(5))?;
    let project =
        crate::compose::load::load_with(dir, &load).map_err(crate::plan::PlanError::from)?;
    // Named from the repository's root (where the job runs), which may hold the project
    // in a folder of its own.
    let base = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut files = Vec::new();
    for f in std::iter::once(&project.file).chain(&project.merged_files) {
        let rel = f.strip_prefix(&base).map_err(|_| CiError::Outside {
            path: f.display().to_string(),
        })?;
        files.push(rel.to_string_lossy().into_owned());
    }
    Ok(Target {
        compose_file: files.join(":"),
        project_name: load.project_name.clone(),
        env_files: load
            .env_files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect(),
        project_directory: load
            .project_directory
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        ready_when: ready_when(&plan),
        checks: plan.checks.iter().map(|c| c.name.clone()).collect(),
    })
}

/// What "ready" is for each service, as masgen's gate decides it.
fn ready_when(plan: &SystemPlan) -> String {
    plan.services
        .iter()
        .map(|s| {
            let when = match s.readiness {
                Readiness::Healthcheck => "healthy",
                Readiness::Settle(_) => "running",
                Readiness::Completes => "exit0",
            };
            format!("{}={when}", s.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The workflows `opts` asks for.
pub fn workflows(t: &Target, opts: &CiOptions) -> Vec<Workflow> {
    let mut out = written(t, opts);
    // Every Compose command is told the project directory, when it is not the first file's.
    if let Some(pd) = &t.project_directory {
        let flag = format!("docker compose --project-directory {} ", sh_word(pd));
        for w in &mut out {
            w.text = w.text.replace("docker compose ", &flag);
            w.text = w.text.replace(
                "masgen verify . ",
                &format!("masgen verify . --project-directory {} ", sh_word(pd)),
            );
        }
    }
    out
}

fn written(t: &Target, opts: &CiOptions) -> Vec<Workflow> {
    let mut out = vec![Workflow {
        path: GITHUB_FILE.into(),
        text: if opts.with_masgen {
            github_with_masgen(t)
        } else {
            github(t)
        },
    }];
    if opts.gitlab {
        out.push(Workflow {
            path: GITLAB_FILE.into(),
            text: if opts.with_masgen {
                gitlab_with_masgen(t)
            } else {
                gitlab(t)
            },
        });
    }
    out
}

/// Write `workflows` into `dir`: none is written when one exists and `force` is not set.
pub fn write(dir: &Path, workflows: &[Workflow], force: bool) -> Result<(), CiError> {
    if !force {
        if let Some(w) = workflows.iter().find(|w| dir.join(&w.path).exists()) {
            return Err(CiError::Exists {
                path: w.path.clone(),
            });
        }
    }
    for w in workflows {
        crate::atomic::write_atomic(&dir.join(&w.path), w.text.as_bytes()).map_err(|source| {
            CiError::Write {
                path: w.path.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// The variables every step reads: which files, which project, what ready means.
fn variables(t: &Target, indent: &str) -> String {
    let mut s = format!("{indent}COMPOSE_FILE: {}\n", yaml_str(&t.compose_file));
    if let Some(p) = &t.project_name {
        s.push_str(&format!("{indent}COMPOSE_PROJECT_NAME: {}\n", yaml_str(p)));
    }
    if !t.env_files.is_empty() {
        let files = t.env_files.join(",");
        s.push_str(&format!(
            "{indent}COMPOSE_ENV_FILES: {}\n",
            yaml_str(&files)
        ));
    }
    if let Some(pd) = &t.project_directory {
        s.push_str(&format!("{indent}PROJECT_DIRECTORY: {}\n", yaml_str(pd)));
    }
    s.push_str(&format!(
        "{indent}READY_WHEN: {}\n",
        yaml_str(&t.ready_when)
    ));
    s.push_str(&format!("{indent}HEALTH_TIMEOUT: \"300\"\n"));
    s
}

/// A double-quoted YAML string.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `text` indented by `indent`, each line (for a block scalar).
fn indented(text: &str, indent: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{indent}{l}\n")
            }
        })
        .collect()
}

/// A shell-safe single-quoted word.
fn sh_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Run one check, keep what it printed and its exit code (POSIX sh: bash and busybox).
fn check_script(check: &str) -> String {
    let c = sh_word(check);
    format!(
        "mkdir -p {RESULTS}\ncode=0\ndocker compose --profile smoke run --rm --no-deps -T {c} > {RESULTS}/{check}.tap || code=$?\ncat {RESULTS}/{check}.tap\necho \"$code\" > {RESULTS}/{check}.exit\n"
    )
}

const BUILD: &str = "docker compose --profile smoke build";
const UP: &str = "docker compose up --detach";
const LOGS: &str = "docker compose --profile smoke logs --no-color --timestamps";
const DOWN: &str = "docker compose --profile smoke down --volumes --remove-orphans";

/// The plain GitHub Actions workflow.
pub fn github(t: &Target) -> String {
    let mut s = format!(
        "# Written by `masgen ci`: builds and starts the system with Docker Compose, waits until\n# every service is ready as masgen's gate decides it, runs each smoke check, and tears down.\nname: smoke\n\non:\n  push:\n  pull_request:\n\njobs:\n  smoke:\n    runs-on: ubuntu-latest\n    timeout-minutes: 30\n    defaults:\n      run:\n        shell: bash\n    env:\n{}    steps:\n      - uses: actions/checkout@v4\n      - name: Build the system and its checks\n        run: {BUILD}\n      - name: Start the system\n        run: {UP}\n      - name: Wait until every service is ready\n        id: ready\n        run: |\n{}",
        variables(t, "      "),
        indented(&format!("python3 - <<'PY'\n{WAIT_PY}PY\n"), "          ")
    );
    for c in &t.checks {
        s.push_str(&format!(
            "      - name: \"Smoke check: {c}\"\n        if: ${{{{ !cancelled() && steps.ready.outcome == 'success' }}}}\n        run: |\n{}",
            indented(&format!("{}exit \"$code\"\n", check_script(c)), "          ")
        ));
    }
    s.push_str(&format!(
        "      - name: JUnit report\n        if: always()\n        run: |\n{}      - name: Logs of the system\n        if: failure()\n        run: {LOGS}\n      - name: Upload the results\n        if: always()\n        uses: actions/upload-artifact@v4\n        with:\n          name: smoke-results\n          path: {RESULTS}/\n          if-no-files-found: ignore\n      - name: Tear down\n        if: always()\n        run: {DOWN}\n",
        indented(&format!("mkdir -p {RESULTS}\npython3 - <<'PY'\n{JUNIT_PY}PY\n"), "          ")
    ));
    s
}

/// The GitHub workflow that calls `masgen verify`.
pub fn github_with_masgen(t: &Target) -> String {
    let mut vars = format!("      COMPOSE_FILE: {}\n", yaml_str(&t.compose_file));
    vars.push_str("      MASGEN_GIT: ${{ vars.MASGEN_GIT }}\n");
    format!(
        "# Written by `masgen ci --with-masgen`: masgen builds, starts, health-gates and smoke-checks\n# the system, and tears it down. Set the repository variable MASGEN_GIT to masgen's git URL.\nname: smoke\n\non:\n  push:\n  pull_request:\n\njobs:\n  smoke:\n    runs-on: ubuntu-latest\n    timeout-minutes: 45\n    defaults:\n      run:\n        shell: bash\n    env:\n{vars}    steps:\n      - uses: actions/checkout@v4\n      - name: Install masgen\n        run: |\n          test -n \"$MASGEN_GIT\" || {{ echo \"set the repository variable MASGEN_GIT to masgen's git URL\"; exit 1; }}\n          cargo install --locked --git \"$MASGEN_GIT\" masgen\n      - name: Verify the system and run its smoke checks\n        run: {}\n      - name: Upload the results\n        if: always()\n        uses: actions/upload-artifact@v4\n        with:\n          name: masgen-results\n          path: masgen-results/\n          if-no-files-found: ignore\n",
        masgen_verify(t)
    )
}

fn masgen_verify(t: &Target) -> String {
    let mut s = String::from("masgen verify .");
    if let Some(p) = &t.project_name {
        s.push_str(&format!(" -p {}", sh_word(p)));
    }
    for f in &t.env_files {
        s.push_str(&format!(" --env-file {}", sh_word(f)));
    }
    s.push_str(" --junit masgen-results/junit.xml --report masgen-results/report.json --html masgen-results/run.html --summary-md \"${GITHUB_STEP_SUMMARY:-masgen-results/summary.md}\"");
    s
}

const GITLAB_HEAD: &str = "# Written by `masgen ci --gitlab`: the smoke job, with Docker in Docker.\nsmoke:\n  image: docker:27\n  services:\n    - docker:27-dind\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n    - if: $CI_COMMIT_BRANCH\n  timeout: 30 minutes\n  variables:\n    DOCKER_HOST: tcp://docker:2375\n    DOCKER_TLS_CERTDIR: \"\"\n";

/// The plain GitLab job.
pub fn gitlab(t: &Target) -> String {
    let mut run_checks = String::from("failed=0\n");
    for c in &t.checks {
        run_checks.push_str(&check_script(c));
        run_checks.push_str("[ \"$code\" = 0 ] || failed=1\n");
    }
    run_checks.push_str("exit \"$failed\"\n");
    format!(
        "{GITLAB_HEAD}{}  before_script:\n    - apk add --no-cache python3\n  script:\n    - {BUILD}\n    - {UP}\n    - |\n{}    - |\n{}  after_script:\n    - |\n{}    - {DOWN}\n  artifacts:\n    when: always\n    paths:\n      - {RESULTS}/\n    reports:\n      junit: {RESULTS}/junit.xml\n",
        variables(t, "    "),
        indented(&format!("python3 - <<'PY'\n{WAIT_PY}PY\n"), "      "),
        indented(&run_checks, "      "),
        indented(
            &format!("if [ \"$CI_JOB_STATUS\" = failed ]; then {LOGS}; fi\nmkdir -p {RESULTS}\npython3 - <<'PY'\n{JUNIT_PY}PY\n"),
            "      "
        ),
    )
}

/// The GitLab job that calls `masgen verify`.
pub fn gitlab_with_masgen(t: &Target) -> String {
    format!(
        "{GITLAB_HEAD}    COMPOSE_FILE: {}\n  before_script:\n    - apk add --no-cache cargo git\n    - test -n \"$MASGEN_GIT\" || {{ echo \"set the CI/CD variable MASGEN_GIT to masgen's git URL\"; exit 1; }}\n    - cargo install --locked --git \"$MASGEN_GIT\" masgen\n    - export PATH=\"$HOME/.cargo/bin:$PATH\"\n  script:\n    - {}\n  artifacts:\n    when: always\n    paths:\n      - masgen-results/\n    reports:\n      junit: masgen-results/junit.xml\n",
        yaml_str(&t.compose_file),
        masgen_verify(t)
    )
}

/// Wait until every service in READY_WHEN is ready: `healthy` (its healthcheck says so),
/// `running` (running for SETTLE seconds; exited 0 is a finished one-shot), `exit0` (a
/// one-shot job exited 0). A service that exits otherwise, or turns unhealthy, fails at
/// once; after ready, nothing may exit or turn unhealthy for STABILITY seconds.
const WAIT_PY: &str = r##"import json, os, subprocess, sys, time

want = dict(w.split("=", 1) for w in os.environ["READY_WHEN"].split())
deadline = time.time() + int(os.environ.get("HEALTH_TIMEOUT", "300"))
settle = int(os.environ.get("SETTLE", "5"))
stability = int(os.environ.get("STABILITY", "5"))
since = {}


def containers():
    compose = ["docker", "compose"]
    if os.environ.get("PROJECT_DIRECTORY"):
        compose += ["--project-directory", os.environ["PROJECT_DIRECTORY"]]
    out = subprocess.run(compose + ["ps", "--all", "--format", "json"],
                         check=True, capture_output=True, text=True).stdout.strip()
    if not out:
        return {}
    rows = json.loads(out) if out.startswith("[") else [json.loads(l) for l in out.splitlines() if l.strip()]
    return {r["Service"]: r for r in rows}


def look():
    """(services not ready yet with why, the first failure or None)"""
    now, waiting, ps = time.time(), [], containers()
    for svc, when in want.items():
        r = ps.get(svc)
        if r is None:
            waiting.append(svc + ": not created")
            continue
        state, health, code = r.get("State", ""), r.get("Health", "") or "", int(r.get("ExitCode", 0) or 0)
        if state in ("exited", "dead"):
            if code == 0 and when in ("exit0", "running"):
                continue
            return waiting, "%s exited with code %d" % (svc, code)
        if when == "exit0":
            waiting.append(svc + ": a one-shot job, not finished")
        elif when == "healthy":
            if health == "unhealthy":
                return waiting, svc + " is unhealthy"
            if health != "healthy":
                waiting.append("%s: %s" % (svc, health or state))
        elif state != "running":
            since.pop(svc, None)
            waiting.append("%s: %s" % (svc, state))
        elif now - since.setdefault(svc, now) < settle:
            waiting.append(svc + ": running for less than %ds" % settle)
    return waiting, None


while True:
    waiting, failed = look()
    if failed:
        sys.exit("not ready: " + failed)
    if not waiting:
        break
    if time.time() > deadline:
        sys.exit("not ready in time: " + "; ".join(waiting))
    time.sleep(1)
time.sleep(stability)
waiting, failed = look()
if failed or waiting:
    sys.exit("ready, then not: " + (failed or "; ".join(waiting)))
print("ready: " + ", ".join("%s (%s)" % kv for kv in want.items()))
"##;

/// JUnit from what each check printed: a testcase per TAP point (`ok`, `not ok`, with
/// `# SKIP` / `# TODO`), or one per check when it printed none; a check that exited
/// non-zero with every point passing gets a failed testcase of its own.
const JUNIT_PY: &str = r###"import glob, os, re
from xml.sax.saxutils import escape, quoteattr

cases = []
for exit_file in sorted(glob.glob("smoke-results/*.exit")):
    check = os.path.basename(exit_file)[:-len(".exit")]
    code = int(open(exit_file).read().strip() or "1")
    tap_file = "smoke-results/%s.tap" % check
    tap = open(tap_file, errors="replace").read() if os.path.exists(tap_file) else ""
    points = []
    for line in tap.splitlines():
        m = re.match(r"(not ok|ok)\b\s*(\d*)\s*(?:- )?([^#]*)(#\s*(SKIP|TODO)\S*\s*(.*))?", line, re.I)
        if m:
            name = m.group(3).strip() or "point " + (m.group(2) or str(len(points) + 1))
            kind = (m.group(5) or "").upper() or ("passed" if m.group(1) == "ok" else "failed")
            points.append([name, kind, m.group(6) or ""])
        elif line.startswith("#") and points:
            points[-1][2] += line[1:].strip() + "\n"
    if not points:
        points = [[check, "passed" if code == 0 else "failed", tap[-4000:]]]
    elif code != 0 and all(p[1] != "failed" for p in points):
        points.append([check + " exited with code %d" % code, "failed", tap[-4000:]])
    cases += [(check, p) for p in points]

failures = sum(1 for _, p in cases if p[1] == "failed")
skipped = sum(1 for _, p in cases if p[1] in ("SKIP", "TODO"))
out = ['<?xml version="1.0" encoding="UTF-8"?>',
       '<testsuite name="smoke" tests="%d" failures="%d" skipped="%d">' % (len(cases), failures, skipped)]
for check, (name, kind, text) in cases:
    out.append('  <testcase classname=%s name=%s>' % (quoteattr("smoke." + check), quoteattr(name)))
    if kind == "failed":
        out.append('    <failure message=%s>%s</failure>' % (quoteattr(name), escape(text)))
    elif kind in ("SKIP", "TODO"):
        out.append('    <skipped message=%s/>' % quoteattr(text.strip()))
    out.append('  </testcase>')
out.append('</testsuite>')
open("smoke-results/junit.xml", "w").write("\n".join(out) + "\n")
print("smoke-results/junit.xml: %d test(s), %d failed" % (len(cases), failures))
summary = os.environ.get("GITHUB_STEP_SUMMARY")
if summary:
    with open(summary, "a") as f:
        f.write("## %s smoke checks: %d of %d passed\n\n" % ("✅" if failures == 0 else "❌", len(cases) - failures, len(cases)))
        for check, (name, kind, _) in cases:
            f.write("- %s `%s`: %s\n" % ("✅" if kind != "failed" else "❌", check, name.replace("<", "&lt;")))
"###;

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            compose_file: "compose.yaml:compose.smoke.yaml".into(),
            project_name: None,
            env_files: Vec::new(),
            project_directory: None,
            ready_when: "db=healthy migrate=exit0 api=running".into(),
            checks: vec!["smoke-api".into()],
        }
    }

    #[test]
    fn every_workflow_is_yaml_whose_steps_name_the_checks() {
        for with_masgen in [false, true] {
            let opts = CiOptions {
                gitlab: true,
                with_masgen,
                ..Default::default()
            };
            for w in workflows(&target(), &opts) {
                let doc = crate::compose::yaml::parse(&w.text)
                    .unwrap_or_else(|e| panic!("{}: {e:?}\n{}", w.path, w.text));
                assert!(doc.value.is_object(), "{}", w.text);
                if !with_masgen {
                    assert!(
                        w.text.contains("run --rm --no-deps -T smoke-api"),
                        "{}",
                        w.text
                    );
                    assert!(w.text.contains("down --volumes"), "{}", w.text);
                }
            }
        }
        let gh = github(&target());
        let doc = crate::compose::yaml::parse(&gh).unwrap().value;
        let steps = doc["jobs"]["smoke"]["steps"].as_array().unwrap();
        let wait = steps[3]["run"].as_str().unwrap();
        assert!(wait.starts_with("python3 - <<'PY'\nimport json"), "{wait}");
        assert_eq!(
            doc["jobs"]["smoke"]["env"]["READY_WHEN"],
            "db=healthy migrate=exit0 api=running"
        );
    }

    #[test]
    fn a_project_directory_reaches_every_compose_command() {
        let t = Target {
            project_directory: Some("deploy dir".into()),
            ..target()
        };
        let opts = CiOptions {
            gitlab: true,
            ..Default::default()
        };
        for w in workflows(&t, &opts) {
            let plain = w.text.matches("docker compose ").count();
            let told = w
                .text
                .matches("docker compose --project-directory 'deploy dir' ")
                .count();
            assert!(plain > 3 && plain == told, "{}", w.text);
            assert!(
                w.text.contains("PROJECT_DIRECTORY: \"deploy dir\""),
                "{}",
                w.text
            );
        }
    }
}
