//! `masgen smoke` on a project masgen did not write (fixtures/projects/notes), with the
//! fake model and the real daemon: the checks go to smoke/ and compose.smoke.yaml and
//! nothing else changes; a failing check is the system's failure, never repaired; a
//! crashing check is revised and listed; checks that exist are run as they are (a user's
//! edit kept), `--regenerate` starts over; bad projects are refused before any request.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::docker::*;
use common::*;

fn notes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/projects/notes")
}

/// The recorded reply that writes the notes project's check.
fn checks_reply() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/projects/notes-replies/001-checks.txt");
    std::fs::read_to_string(p).unwrap()
}

/// A copy of the notes project under a unique project name.
fn project(tag: &str) -> (tempfile::TempDir, PathBuf, Cleanup) {
    let (tmp, dir, cleanup) = unique_output(tag);
    copy_dir(&notes(), &dir);
    (tmp, dir, cleanup)
}

/// Every file of the project that is the user's: all but masgen's folder and the checks.
fn users_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    all_files(dir)
        .into_iter()
        .map(|f| f.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .filter(|p| {
            !(p.starts_with(".masgen/") || p.starts_with("smoke/") || p == "compose.smoke.yaml")
        })
        .map(|p| (p.clone(), std::fs::read(dir.join(&p)).unwrap()))
        .collect()
}

fn smoke(fake: &FakeAnthropic, dir: &Path, extra: &[&str]) -> Output {
    masgen()
        .arg("smoke")
        .arg(dir)
        .args(fake_flags(fake))
        .args(QUICK_VERIFY)
        .args(extra)
        .output()
        .unwrap()
}

/// What the n-th request asked, as text (its messages and system prompt).
fn asked(fake: &FakeAnthropic, n: usize) -> String {
    fake.requests()[n].body.to_string()
}

#[test]
fn checks_for_a_project_masgen_did_not_write_change_none_of_its_files() {
    if !docker_available("checks_for_a_project_masgen_did_not_write_change_none_of_its_files") {
        return;
    }
    let (tmp, dir, cleanup) = project("smoke-any");
    let before = users_files(&dir);
    let junit = tmp.path().join("junit.xml");
    let fake = FakeAnthropic::scripted(vec![Reply::text(&checks_reply())]);
    let out = smoke(&fake, &dir, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(users_files(&dir), before, "a file of the project changed");
    assert!(dir.join("compose.smoke.yaml").is_file() && dir.join("smoke/notes/check.py").is_file());
    // One request, with the smoke writer's rules and what the project says of itself.
    assert_eq!(fake.requests().len(), 1);
    let request = asked(&fake, 0);
    for seen in [
        "You write smoke checks for a compose project",
        "compose (as masgen reads it)",
        "welcome to notes",
        "READ_ONLY",
        "api/Dockerfile",
    ] {
        assert!(request.contains(seen), "the request lacks {seen:?}");
    }
    let junit = std::fs::read_to_string(&junit).unwrap();
    let project = &cleanup.0.clone();
    assert!(
        junit.contains(&format!("classname=\"{project}.smoke.smoke-notes\" name=\"a note posted to /notes is listed by GET /notes\"")),
        "{junit}"
    );
    let report = run_report(&dir);
    assert_eq!(report["checks"]["origin"], "written");
    assert_eq!(report["verify"]["smoke"][0]["verdict"], "passed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("docker compose -f compose.yaml -f compose.smoke.yaml --profile smoke run --rm smoke-notes"),
        "{stdout}"
    );

    // Run again: the checks are kept as they are, with the user's edit, and no model is asked.
    let check = dir.join("smoke/notes/check.py");
    let edited = format!(
        "{}# the user's note\n",
        std::fs::read_to_string(&check).unwrap()
    );
    std::fs::write(&check, &edited).unwrap();
    let silent = FakeAnthropic::scripted(vec![Reply::error(500, "api_error", "not to be asked")]);
    let again = smoke(&silent, &dir, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(silent.requests().len(), 0);
    assert_eq!(std::fs::read_to_string(&check).unwrap(), edited);
    assert_eq!(run_report(&dir)["checks"]["origin"], "kept");

    // --regenerate starts over; the user's version is kept in the round's folder.
    let fresh = FakeAnthropic::scripted(vec![Reply::text(&checks_reply())]);
    let regen = smoke(&fresh, &dir, &["--regenerate"]);
    assert_eq!(regen.status.code(), Some(0), "{}", text(&regen));
    assert_eq!(fresh.requests().len(), 1);
    assert!(!std::fs::read_to_string(&check)
        .unwrap()
        .contains("the user's note"));
    let kept: Vec<PathBuf> = all_files(&dir.join(".masgen/rounds"))
        .into_iter()
        .filter(|p| p.ends_with("previous/smoke/notes/check.py"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), edited);
    assert_eq!(run_report(&dir)["checks"]["origin"], "regenerated");
    assert_eq!(users_files(&dir), before);
    drop(cleanup);
    assert_nothing_left(project);
}

#[test]
fn a_wrong_check_against_a_right_system_is_reported_not_repaired() {
    if !docker_available("a_wrong_check_against_a_right_system_is_reported_not_repaired") {
        return;
    }
    let (_tmp, dir, _cleanup) = project("smoke-wrong-check");
    let before = users_files(&dir);
    // The check expects a seed note the README never promised.
    let wrong =
        checks_reply().replace("== [\"welcome to notes\"]", "== [\"welcome to the notes\"]");
    assert_ne!(wrong, checks_reply());
    let fake = FakeAnthropic::scripted(vec![Reply::text(&wrong)]);
    let out = smoke(&fake, &dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        fake.requests().len(),
        1,
        "a failing check is never sent back"
    );
    assert_eq!(users_files(&dir), before, "the user's files changed");
    let report = run_report(&dir);
    assert_eq!(report["verify"]["smoke"][0]["verdict"], "failed");
    assert_eq!(report["checks"]["revisions"].as_array().unwrap().len(), 0);
    let all = text(&out);
    assert!(
        all.contains("not ok GET /notes lists the seed note first"),
        "{all}"
    );
}

#[test]
fn a_crashing_check_is_revised_once_and_listed() {
    if !docker_available("a_crashing_check_is_revised_once_and_listed") {
        return;
    }
    let crashing = checks_reply().replace("import json\n", "import json\nimport requests\n");
    let fix = "The check imports requests, which python:3.11-slim does not have; it uses urllib.\n<edit path=\"smoke/notes/check.py\">\n<<<<<<< SEARCH\nimport json\nimport requests\n=======\nimport json\n>>>>>>> REPLACE\n</edit>\n";

    // --max-rounds 0: written and run once, the broken check reported.
    let (_t0, once, _c0) = project("smoke-crash-once");
    let fake = FakeAnthropic::scripted(vec![Reply::text(&crashing)]);
    let out = smoke(&fake, &once, &["--max-rounds", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(run_report(&once)["verify"]["smoke"][0]["verdict"], "broken");

    let (_tmp, dir, _cleanup) = project("smoke-crash");
    let before = users_files(&dir);
    let fake = FakeAnthropic::scripted(vec![Reply::text(&crashing), Reply::text(fix)]);
    let out = smoke(&fake, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.requests().len(), 2);
    let revision = asked(&fake, 1);
    assert!(revision.contains("ModuleNotFoundError"), "{revision}");
    assert!(revision.contains("These checks are broken"), "{revision}");
    let report = run_report(&dir);
    let revisions = report["checks"]["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1);
    let edit = &revisions[0]["check_edits"][0];
    assert_eq!(edit["check"], "smoke-notes");
    assert_eq!(edit["path"], "smoke/notes/check.py");
    assert!(edit["diff"].as_str().unwrap().contains("-import requests"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("revision 1: broken check smoke-notes changed smoke/notes/check.py"),
        "{stdout}"
    );
    assert_eq!(users_files(&dir), before);
}

/// Run masgen so that it cannot write into `dir`: as another user when this is root
/// (root writes anywhere), else with the folder made read-only.
fn unwritable_run(dir: &Path, args: &[String]) -> Output {
    let root = Path::new("/proc/self")
        .metadata()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_masgen"))
            .env("NO_COLOR", "1")
            .env_remove("ANTHROPIC_API_KEY");
        c.args(args).output().unwrap()
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = masgen().args(args).output().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        out
    }
}

#[test]
fn bad_projects_are_refused_before_any_request() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&checks_reply())]);
    let flags = fake_flags(&fake);

    let tmp = tempfile::tempdir().unwrap();
    let ro = tmp.path().join("ro");
    copy_dir(&notes(), &ro);
    // Readable by anyone, writable by its owner only.
    for p in std::iter::once(ro.clone()).chain(all_files(&ro)) {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for d in [tmp.path().to_path_buf(), ro.join("api")] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut args = vec!["smoke".to_string(), ro.display().to_string()];
    args.extend(flags.clone());
    let out = unwritable_run(&ro, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot write into"), "{}", text(&out));
    assert!(!ro.join("smoke").exists() && !ro.join("compose.smoke.yaml").exists());

    let cases: [(&str, &str, &str); 3] = [
        (
            "privileged",
            "services:\n  api:\n    image: busybox:latest\n    privileged: true\n",
            "privileged",
        ),
        (
            "syntax",
            "services:\n  api:\n    image: busybox:latest\n    ports: [\n",
            "compose.yaml",
        ),
        (
            "redefines",
            "services:\n  api:\n    image: busybox:latest\n    command: [sleep, \"60\"]\n",
            "`api` is a service of the project",
        ),
    ];
    for (name, compose, says) in cases {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), compose).unwrap();
        if name == "redefines" {
            std::fs::write(
                dir.join("compose.smoke.yaml"),
                "services:\n  api:\n    profiles: [smoke]\n    image: busybox:latest\n",
            )
            .unwrap();
        }
        let out = masgen()
            .arg("smoke")
            .arg(&dir)
            .args(&flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        assert!(text(&out).contains(says), "{name}: {}", text(&out));
        assert!(!dir.join("smoke").exists(), "{name}");
    }
    assert_eq!(
        fake.requests().len(),
        0,
        "a request was sent for a refused project"
    );
}
