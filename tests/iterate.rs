//! Iterating on existing systems: change requests become verified edits.

mod common;

use common::docker::*;
use common::*;

const BASE: &str = "<file path=\"docker-compose.yml\">\nservices:\n  app:\n    build: ./app\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/up\"]\n      interval: 1s\n      retries: 20\n</file>\n\
<file path=\"app/Dockerfile\">\nFROM busybox:latest\nCOPY run.sh /run.sh\nCMD [\"sh\", \"/run.sh\"]\n</file>\n\
<file path=\"app/run.sh\">\necho \"hello from app\"\ntouch /tmp/up\nexec sleep 3600\n</file>\n\
<file path=\"README.md\">\n# greeting system\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up --build\n</file>\n";

const ADD_LOGGER: &str = "Adding the logger agent.\n<file path=\"logger/Dockerfile\">\nFROM busybox:latest\nCOPY run.sh /run.sh\nCMD [\"sh\", \"/run.sh\"]\n</file>\n\
<file path=\"logger/run.sh\">\necho \"logger writing to /tmp/messages.log\"\nwhile true; do echo message >> /tmp/messages.log; sleep 1; done\n</file>\n\
<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\nservices:\n=======\nservices:\n  logger:\n    build: ./logger\n    depends_on:\n      app:\n        condition: service_healthy\n>>>>>>> REPLACE\n</edit>\n";

const CHANGE_APP: &str = "<edit path=\"app/run.sh\">\n<<<<<<< SEARCH\necho \"hello from app\"\n=======\necho \"good morning from app\"\n>>>>>>> REPLACE\n</edit>\n\
<file path=\"README.md\">\n# greeting system (mornings)\n</file>\n";

fn output(tag: &str) -> (tempfile::TempDir, std::path::PathBuf, Cleanup) {
    unique_output(&format!("it-{tag}"))
}

/// Generate the base system (files only) with its own fake.
fn base(out: &std::path::Path) {
    let fake = FakeAnthropic::scripted(vec![Reply::text(BASE)]);
    let o = masgen()
        .args([
            "a greeting service",
            "-o",
            out.to_str().unwrap(),
            "-k",
            TEST_KEY,
            "--base-url",
            &fake.url,
            "--no-verify",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

fn iterate(fake: &FakeAnthropic, out: &std::path::Path, args: &[&str]) -> std::process::Output {
    masgen()
        .args(args)
        .arg("-o")
        .arg(out)
        .args(["-k", TEST_KEY, "--base-url", &fake.url])
        .args(["--retry-base-ms", "20"])
        .args(QUICK_VERIFY)
        .output()
        .unwrap()
}

#[test]
fn adding_an_agent_creates_its_folder_and_service_and_it_comes_up_healthy() {
    if !docker_available("iterate_add") {
        return;
    }
    let (_d, out, _g) = output("add");
    base(&out);
    let fake = FakeAnthropic::scripted(vec![Reply::text(ADD_LOGGER)]);
    let o = iterate(
        &fake,
        &out,
        &[
            "--iterate",
            "Add a second agent that logs every message to a file",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let req = fake.requests()[0].last_user_text();
    assert!(
        req.contains("<spec>\na greeting service\n</spec>"),
        "the recorded spec is used: {req}"
    );
    assert!(
        req.contains("<change>\nAdd a second agent that logs every message to a file\n</change>")
    );
    assert!(
        req.contains("Every file, as it is now") && req.contains("<file path=\"app/run.sh\">"),
        "a small system is sent whole"
    );
    let r = run_report(&out);
    assert_eq!(r["healthy"], true);
    let names: Vec<&str> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app", "logger"]);
    assert_eq!(
        r["iterate"]["added"],
        serde_json::json!(["logger/Dockerfile", "logger/run.sh"])
    );
    assert_eq!(
        r["iterate"]["changed"],
        serde_json::json!(["docker-compose.yml"])
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("+ logger/Dockerfile") && stdout.contains("~ docker-compose.yml"),
        "{stdout}"
    );
    assert!(out
        .join(".masgen/rounds/001-iterate/changes.diff")
        .is_file());
}

#[test]
fn chained_iterations_reuse_the_spec_and_keep_the_users_edits() {
    if !docker_available("iterate_chain") {
        return;
    }
    let (_d, out, _g) = output("chain");
    base(&out);
    let first = FakeAnthropic::scripted(vec![Reply::text(ADD_LOGGER)]);
    let o = iterate(&first, &out, &["--iterate", "add a logger", "--no-verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The user edits README.md by hand; the next change rewrites it.
    std::fs::write(out.join("README.md"), "# my own notes\n").unwrap();
    let second = FakeAnthropic::scripted(vec![Reply::text(CHANGE_APP)]);
    let o = iterate(
        &second,
        &out,
        &["--iterate", "make the app say good morning"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let req = second.requests()[0].last_user_text();
    assert!(
        req.contains("a greeting service"),
        "the spec comes from state.json"
    );
    assert!(
        req.contains("edited these files by hand") && req.contains("README.md"),
        "{req}"
    );
    assert!(
        req.contains("# my own notes"),
        "the user's version is what the model sees"
    );
    let kept =
        std::fs::read_to_string(out.join(".masgen/rounds/002-iterate/previous/README.md")).unwrap();
    assert_eq!(kept, "# my own notes\n");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("your edited README.md was replaced"),
        "{}",
        text(&o)
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(".masgen/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["iterations"],
        serde_json::json!(["add a logger", "make the app say good morning"])
    );
    assert_eq!(run_report(&out)["healthy"], true);
    let logs = std::process::Command::new("docker")
        .arg("ps")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout)
            .lines()
            .all(|l| !l.contains(out.file_name().unwrap().to_str().unwrap())),
        "torn down"
    );
}

#[test]
fn iterating_on_a_project_masgen_did_not_write_needs_the_spec() {
    if !docker_available("iterate_foreign") {
        return;
    }
    let (_dir, path) = copy_fixture("crash_on_start");
    let _g = Cleanup(path.file_name().unwrap().to_string_lossy().to_string());
    let fake = FakeAnthropic::scripted(vec![Reply::text(
        "<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    command: [\"sh\", \"-c\", \"echo starting; echo 'FATAL: DATABASE_URL is not set' >&2; exit 4\"]\n=======\n    command: [\"sh\", \"-c\", \"echo starting with $$DATABASE_URL; exec sleep 3600\"]\n    environment:\n      DATABASE_URL: sqlite:///tmp/app.db\n>>>>>>> REPLACE\n</edit>\n",
    )]);
    let o = iterate(&fake, &path, &["--iterate", "configure the database"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("has no spec recorded (masgen did not write it): pass the spec too"),
        "{}",
        text(&o)
    );
    assert!(fake.requests().is_empty());
    let o = iterate(
        &fake,
        &path,
        &[
            "an app that needs a database",
            "--iterate",
            "configure the database",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(run_report(&path)["healthy"], true);
}

#[test]
fn bad_iterate_input_is_refused_clearly() {
    let fake = FakeAnthropic::scripted(vec![Reply::text("I would rather not change anything.")]);
    let empty = tempfile::tempdir().unwrap();
    let o = iterate(&fake, empty.path(), &["x", "--iterate", "add a logger"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds no compose file"),
        "{}",
        text(&o)
    );
    let (_d, out, _g) = output("bad");
    base(&out);
    let o = iterate(&fake, &out, &["--iterate", "   "]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the change request is empty"),
        "{}",
        text(&o)
    );
    let o = iterate(&fake, &out, &["--iterate", "add a logger", "--no-verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("I would rather not change anything."),
        "{}",
        text(&o)
    );
}

#[test]
fn a_large_system_sends_a_selection_and_the_model_may_ask_for_more_once() {
    let (_d, out, _g) = output("large");
    base(&out);
    let big = "filler line\n".repeat(6000); // 72,000 characters: over the budget alone
    std::fs::create_dir_all(out.join("data")).unwrap();
    std::fs::write(out.join("data/big.txt"), &big).unwrap();
    std::fs::write(out.join("data/notes.txt"), "ship it\n").unwrap();
    let filler = "y\n".repeat(30_000);
    std::fs::write(out.join("data/other.txt"), &filler).unwrap();
    std::fs::write(out.join("data/more.txt"), &filler).unwrap();
    let fake = FakeAnthropic::with_handler(|r, n| match n {
        0 => Reply::text("<need path=\"data/more.txt\"/>"),
        _ if r
            .last_user_text()
            .contains("Here are the files you asked for") =>
        {
            Reply::text(CHANGE_APP)
        }
        _ => Reply::text("nothing"),
    });
    let o = iterate(&fake, &out, &["--iterate", "tweak the app", "--no-verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].last_user_text();
    assert!(
        first.contains("the others are listed above") && first.contains("- data/: big.txt"),
        "a selection plus the tree"
    );
    assert!(
        !first.contains("filler line"),
        "a file too big for the budget is not sent"
    );
    assert!(reqs[1]
        .last_user_text()
        .contains("<file path=\"data/more.txt\">"));
    assert!(std::fs::read_to_string(out.join("app/run.sh"))
        .unwrap()
        .contains("good morning"));
}

#[test]
fn the_bundled_iterate_replay_applies_to_the_demo_system() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let root = env!("CARGO_MANIFEST_DIR");
    let o = masgen()
        .current_dir(root)
        .args([
            "@examples/demo_spec.txt",
            "--replay",
            "fixtures/demo",
            "--no-verify",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = masgen()
        .current_dir(root)
        .args([
            "--iterate",
            "Add an agent that logs every status check to a file",
            "--replay",
            "fixtures/iterate-demo",
            "--no-verify",
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("auditor/audit.sh").is_file());
    let compose = std::fs::read_to_string(out.join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("  auditor:\n    build: ./auditor")
            && compose.contains("volumes:\n  ledger-data:\n  audit-logs:"),
        "{compose}"
    );
    masgen::compose::load_project(&out).expect("the edited compose file is valid");
}
