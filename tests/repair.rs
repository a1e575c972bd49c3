//! The repair loop with the fake Anthropic server and the real daemon.

mod common;

use std::time::Duration;

use common::docker::*;
use common::*;

const BROKEN: &str = "<file path=\"docker-compose.yml\">\nservices:\n  app:\n    build: ./app\n</file>\n\
<file path=\"app/Dockerfile\">\nFROM busybox:latest\nCOPY run.sh /run.sh\nCMD [\"sh\", \"/run.sh\"]\n</file>\n\
<file path=\"app/run.sh\">\necho \"ERROR: GREETING_MODE is not set\" >&2\nexit 3\n</file>\n\
<file path=\"README.md\">\n# app\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up --build\n</file>\n";

const FIX: &str = "The script exits on purpose; make it run.\n<edit path=\"app/run.sh\">\n<<<<<<< SEARCH\necho \"ERROR: GREETING_MODE is not set\" >&2\nexit 3\n=======\necho \"greeting mode: friendly\"\nexec sleep 3600\n>>>>>>> REPLACE\n</edit>\n";

fn output(tag: &str) -> (tempfile::TempDir, std::path::PathBuf, Cleanup) {
    unique_output(&format!("rep-{tag}"))
}

fn run(fake: &FakeAnthropic, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    generate_verified(fake, "a greeting service", out, extra)
}

fn project(out: &std::path::Path) -> String {
    out.file_name().unwrap().to_string_lossy().to_string()
}

#[test]
fn a_broken_draft_is_repaired_when_the_real_error_line_reaches_the_model() {
    if !docker_available("repair") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|r, n| match n {
        0 => Reply::text(BROKEN),
        // The fix comes only if the log line from the container was sent.
        _ if r
            .last_user_text()
            .contains("ERROR: GREETING_MODE is not set") =>
        {
            Reply::text(FIX).usage([400, 80, 2400, 0])
        }
        _ => Reply::text("I cannot tell what is wrong without the logs."),
    });
    let (_d, out, _g) = output("fix");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let prompt = reqs[1].last_user_text();
    assert!(
        prompt.contains("=== service: app | phase: crash ==="),
        "{prompt}"
    );
    assert!(
        prompt.contains("<file path=\"app/run.sh\">"),
        "implicated files are sent in full"
    );
    assert!(
        prompt.contains("README.md is editable too: when a fix changes what it describes (an image swapped for a build, a port, a credential), keep it true."),
        "{prompt}"
    );
    assert!(
        prompt.contains("- app/: Dockerfile, run.sh"),
        "the tree is sent"
    );
    assert_eq!(
        reqs[0].body["system"], reqs[1].body["system"],
        "the system prompt is stable, so it is cached"
    );
    assert_eq!(
        reqs[1].body["system"][0]["cache_control"]["type"],
        "ephemeral"
    );
    let r = run_report(&out);
    assert_eq!(r["healthy"], true);
    let round = &r["repair"]["rounds"][0];
    assert_eq!(round["outcome"], "healthy");
    assert_eq!(
        round["usage"]["cache_read"], 2400,
        "cache reads are reported per round"
    );
    assert_eq!(round["changed"][0], "app/run.sh");
    assert!(round["cost_usd"].as_f64().unwrap() > 0.0);
    let diff = std::fs::read_to_string(out.join(".masgen/rounds/001/changes.diff")).unwrap();
    assert!(
        diff.contains("-exit 3") && diff.contains("+exec sleep 3600"),
        "{diff}"
    );
    assert!(
        std::fs::read_to_string(out.join(".masgen/rounds/001/reply.txt"))
            .unwrap()
            .contains("make it run")
    );
    assert!(
        std::fs::read_to_string(out.join(".masgen/rounds/001/diagnostics.txt"))
            .unwrap()
            .contains("GREETING_MODE")
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("fixed: app [crash]"),
        "{}",
        text(&o)
    );
    assert!(nothing_left(&project(&out)).is_empty());
}

#[test]
fn an_edit_that_does_not_apply_is_sent_back_with_the_lines_that_exist() {
    if !docker_available("reask") {
        return;
    }
    let bad = "<edit path=\"app/run.sh\">\n<<<<<<< SEARCH\necho \"ERROR: GREETING_MODE missing\"\n=======\necho hi\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::with_handler(move |r, n| match n {
        0 => Reply::text(BROKEN),
        1 => Reply::text(bad),
        _ if r.last_user_text().contains("did not apply")
            && r.last_user_text()
                .contains("echo \"ERROR: GREETING_MODE is not set\" >&2") =>
        {
            Reply::text(FIX)
        }
        _ => Reply::text("no idea"),
    });
    let (_d, out, _g) = output("reask");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "one re-ask within the round");
    let roles: Vec<String> = reqs[2].messages().into_iter().map(|m| m.0).collect();
    assert_eq!(roles, vec!["user", "assistant", "user"]);
    assert_eq!(
        run_report(&out)["repair"]["rounds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// BROKEN with two healthy neighbours, so the compose file is long enough to be excerpted.
fn broken_with_neighbours() -> String {
    let helper = |n: &str| {
        format!(
            "  {n}:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    environment:\n      ROLE: {n}\n      NOTE: a neighbour that stays healthy\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 1s\n\n"
        )
    };
    BROKEN.replace(
        "services:\n  app:\n    build: ./app\n",
        &format!(
            "services:\n{}  app:\n    build: ./app\n\n{}",
            helper("helper1"),
            helper("helper2")
        ),
    )
}

#[test]
fn the_compose_file_is_shown_in_part_and_a_whole_file_block_for_it_is_refused() {
    if !docker_available("excerpt") {
        return;
    }
    // A careless fix: the script edit plus a <file> block holding only the entry it saw.
    let careless = format!(
        "{FIX}<file path=\"docker-compose.yml\">\nservices:\n  app:\n    build: ./app\n</file>\n"
    );
    let broken = broken_with_neighbours();
    let fake = FakeAnthropic::with_handler(move |r, n| match n {
        0 => Reply::text(&broken),
        1 => Reply::text(&careless),
        _ if r.last_user_text().contains("were not applied") => {
            Reply::text("Understood: the compose file needs no change.")
        }
        _ => Reply::text("no idea"),
    });
    let (_d, out, _g) = output("excerpt");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "one re-ask for the refused block");
    let prompt = reqs[1].last_user_text();
    assert!(prompt.contains("<excerpt path=\"docker-compose.yml\" services=\"app\">\nservices:\n  app:\n    build: ./app\n</excerpt>"), "{prompt}");
    assert!(
        !prompt.contains("ROLE: helper1") && prompt.contains("- README.md, docker-compose.yml"),
        "only the failing entry is shown; the tree names the file"
    );
    let compose = std::fs::read_to_string(out.join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("ROLE: helper1") && compose.contains("ROLE: helper2"),
        "the refused block did not drop the neighbours: {compose}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shown only in part"),
        "{}",
        text(&o)
    );
    let r = run_report(&out);
    assert_eq!(r["healthy"], true);
    assert_eq!(r["services"].as_array().map(|s| s.len()), Some(3), "{r}");
}

#[test]
fn the_same_failure_after_two_repairs_is_stuck_and_stops_asking() {
    if !docker_available("stuck") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|_, n| {
        match n {
        0 => Reply::text(BROKEN),
        // Each "fix" changes the file but not the failure.
        _ => Reply::text(&format!("<file path=\"app/run.sh\">\n# attempt {n}\necho \"ERROR: GREETING_MODE is not set\" >&2\nexit {}\n</file>\n", n + 3)),
    }
    });
    let (_d, out, _g) = output("stuck");
    let o = run(&fake, &out, &["--max-rounds", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        fake.requests().len(),
        3,
        "generation and two repairs, no more"
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("stuck: the same failure came back after two repairs in a row (app:crash:"),
        "{stdout}"
    );
    let r = run_report(&out);
    assert_eq!(r["repair"]["outcome"], "stuck");
    assert_eq!(r["repair"]["rounds"][1]["outcome"], "stuck");
    assert!(
        out.join("app/run.sh").is_file(),
        "the last attempt stays on disk"
    );
}

#[test]
fn a_reply_without_blocks_and_a_refused_block_are_sent_back_within_the_round() {
    if !docker_available("reask_blocks") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|r, n| match n {
        0 => Reply::text(BROKEN),
        // A fix in a Markdown fence instead of a block: nothing to apply.
        1 => Reply::text("Replace run.sh with:\n```sh\necho friendly\nexec sleep 3600\n```\n"),
        // A block outside the system's folder: refused, never written.
        2 if r
            .last_user_text()
            .contains("held no <edit>, <file> or <delete> block") =>
        {
            Reply::text("<file path=\"../escaped.txt\">\nx\n</file>\n")
        }
        3 if r
            .last_user_text()
            .contains("These blocks were refused and not written:\n- ../escaped.txt:") =>
        {
            Reply::text(FIX)
        }
        _ => Reply::text("no idea"),
    });
    let (_d, out, _g) = output("reask-blocks");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        fake.requests().len(),
        4,
        "generation, the repair and its two re-asks"
    );
    assert!(!out.parent().unwrap().join("escaped.txt").exists());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("the model's answer changed no file; asking the model again (1/2)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 change(s) did not apply; asking the model again (2/2)"),
        "{stderr}"
    );
    let r = run_report(&out);
    assert_eq!(r["repair"]["rounds"][0]["requests"], 3);
    assert_eq!(r["repair"]["rounds"][0]["outcome"], "healthy");
}

#[test]
fn a_repair_reply_cut_at_max_tokens_is_continued_before_it_is_applied() {
    if !docker_available("repair_continued") {
        return;
    }
    let (head, tail) = FIX.split_at(FIX.find("=======").unwrap());
    let (head, tail) = (head.to_string(), tail.to_string());
    let fake = FakeAnthropic::with_handler(move |r, n| match n {
        0 => Reply::text(BROKEN),
        1 => Reply::max_tokens(&head),
        2 if r.last_user_text().contains("cut off by the output limit")
            && r.messages().len() == 3 =>
        {
            Reply::text(&tail)
        }
        _ => Reply::text("lost"),
    });
    let (_d, out, _g) = output("continued");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fake.requests().len(), 3);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("repair 1: reply cut at max_tokens, continuing (1)"),
        "{}",
        text(&o)
    );
    let r = run_report(&out);
    assert_eq!(r["repair"]["rounds"][0]["requests"], 2);
    assert_eq!(r["repair"]["rounds"][0]["outcome"], "healthy");
}

#[test]
fn a_round_that_changes_nothing_is_not_verified_again_and_counts_towards_stuck() {
    if !docker_available("nothing_changed") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|_, n| {
        if n == 0 {
            Reply::text(BROKEN)
        } else {
            Reply::text("The system looks right to me.")
        }
    });
    let (_d, out, _g) = output("nothing");
    let o = run(&fake, &out, &["--max-rounds", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        fake.requests().len(),
        7,
        "generation, then two rounds of a request and its two re-asks"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("repair round 1: the model's answers changed no file, so the system is not verified again"), "{}", text(&o));
    let r = run_report(&out);
    assert_eq!(r["repair"]["outcome"], "stuck");
    for round in r["repair"]["rounds"].as_array().unwrap() {
        assert_eq!(round["verify_secs"], 0.0, "{round}");
    }
    // The one verification that ran saw the real crash, which stays the reported failure.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("app [crash]"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_host_port_held_by_another_program_is_never_sent_to_the_model() {
    if !docker_available("port_in_use") {
        return;
    }
    // Another program holds the port the system publishes; --execute publishes it for real.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let system = format!(
        "<file path=\"docker-compose.yml\">\nservices:\n  web:\n    image: busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"80\"]\n    ports:\n      - \"{port}:80\"\n</file>\n<file path=\"README.md\">\n# web\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up\n</file>\n"
    );
    let fake = FakeAnthropic::with_handler(move |_, n| {
        if n == 0 {
            Reply::text(&system)
        } else {
            Reply::text(FIX)
        }
    });
    let (_d, out, _g) = output("port");
    let o = run(&fake, &out, &["--execute"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        fake.requests().len(),
        1,
        "the model is not asked to fix the machine: {}",
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "web could not start: a host port it publishes is already in use on this machine"
        ) && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(out.join("docker-compose.yml").is_file(), "the files stay");
    assert!(
        nothing_left(&project(&out)).is_empty(),
        "{:?}",
        leftovers(&project(&out))
    );
    drop(holder);
}

#[test]
fn max_cost_stops_before_the_request_that_would_cross_it() {
    if !docker_available("max_cost") {
        return;
    }
    // Generation costs $2.0005 (1M input tokens); any repair request could cost more than
    // the $0.0095 left under --max-cost 2.01 at --max-tokens 1000.
    let fake = FakeAnthropic::with_handler(|_, n| {
        if n == 0 {
            Reply::text(BROKEN).usage([1_000_000, 50, 0, 0])
        } else {
            Reply::text(FIX)
        }
    });
    let (_d, out, _g) = output("cost");
    let o = run(&fake, &out, &["--max-cost", "2.01", "--max-tokens", "1000"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        fake.requests().len(),
        1,
        "the repair request was never sent"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("the next request could cross --max-cost"),
        "{}",
        text(&o)
    );
    let r = run_report(&out);
    assert_eq!(r["repair"]["outcome"], "budget_spent");
    assert!(r["cost_usd"].as_f64().unwrap() <= 2.01);
}

#[test]
fn max_cost_below_the_first_request_sends_nothing() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(BROKEN)]);
    let (_d, out, _g) = output("cost0");
    let o = run(&fake, &out, &["--max-cost", "0.001", "--no-verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(fake.requests().is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("budget spent: the next request could cost up to"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_api_failing_for_good_mid_loop_exits_3_with_files_and_history_intact() {
    if !docker_available("api_down") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|_, n| {
        if n == 0 {
            Reply::text(BROKEN)
        } else {
            Reply::error(500, "api_error", "Internal server error")
        }
    });
    let (_d, out, _g) = output("apidown");
    let o = run(&fake, &out, &["--retries", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("still failed after 2 attempts"),
        "{}",
        text(&o)
    );
    assert!(out.join("app/run.sh").is_file());
    assert!(out.join(".masgen/rounds/001/diagnostics.json").is_file());
    assert!(nothing_left(&project(&out)).is_empty());
}

#[test]
fn ctrl_c_during_a_round_tears_down_and_keeps_files_and_history() {
    if !docker_available("ctrl_c_round") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|_, n| {
        if n == 0 {
            Reply::text(BROKEN)
        } else {
            Reply::text(FIX).delayed(Duration::from_secs(60))
        }
    });
    let (_d, out, _g) = output("intr");
    let mut child = masgen()
        .arg("a greeting service")
        .arg("-o")
        .arg(&out)
        .args([
            "-k",
            TEST_KEY,
            "--base-url",
            &fake.url,
            "--settle",
            "1",
            "--stability",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(120);
    // The repair request is in flight once the round's evidence is on disk.
    while !out.join(".masgen/rounds/001/prompt.md").exists() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out.join(".masgen/rounds/001/prompt.md").exists(),
        "the round never started"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        out.join("app/run.sh").is_file()
            && out.join(".masgen/rounds/001/diagnostics.txt").is_file()
    );
    assert!(
        nothing_left(&project(&out)).is_empty(),
        "{:?}",
        leftovers(&project(&out))
    );
}

#[test]
fn repair_works_on_a_compose_project_masgen_did_not_write() {
    if !docker_available("repair_cmd") {
        return;
    }
    let (_dir, path) = copy_fixture("crash_on_start");
    let _g = Cleanup(project(&path));
    let fix = "<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    command: [\"sh\", \"-c\", \"echo starting; echo 'FATAL: DATABASE_URL is not set' >&2; exit 4\"]\n=======\n    command: [\"sh\", \"-c\", \"echo starting; exec sleep 3600\"]\n    environment:\n      DATABASE_URL: sqlite:///tmp/db\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::scripted(vec![Reply::text(fix)]);
    let o = masgen()
        .arg("repair")
        .arg(&path)
        .args([
            "-k",
            TEST_KEY,
            "--base-url",
            &fake.url,
            "--settle",
            "1",
            "--stability",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let prompt = fake.requests()[0].last_user_text();
    assert!(
        prompt.contains("No spec was recorded")
            && prompt.contains("FATAL: DATABASE_URL is not set"),
        "{prompt}"
    );
    assert!(std::fs::read_to_string(path.join("docker-compose.yml"))
        .unwrap()
        .contains("DATABASE_URL: sqlite"));
    assert!(nothing_left(&project(&path)).is_empty());
}

#[test]
fn repair_with_f_shows_and_fixes_the_named_compose_file_not_the_folders_own() {
    if !docker_available("repair_f") {
        return;
    }
    let (_dir, path, guard) = unique_output("rep-f");
    std::fs::create_dir_all(&path).unwrap();
    // The folder's own file is healthy and unrelated; the named one fails.
    std::fs::write(
        path.join("docker-compose.yml"),
        "services:\n  other:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    std::fs::write(path.join("stack.yml"), "services:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo 'FATAL: no queue configured' >&2; exit 4\"]\n").unwrap();
    let fix = "<edit path=\"stack.yml\">\n<<<<<<< SEARCH\n    command: [\"sh\", \"-c\", \"echo 'FATAL: no queue configured' >&2; exit 4\"]\n=======\n    command: [\"sleep\", \"3600\"]\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::scripted(vec![Reply::text(fix)]);
    let o = masgen()
        .arg("repair")
        .arg(&path)
        .args([
            "-f",
            "stack.yml",
            "-k",
            TEST_KEY,
            "--base-url",
            &fake.url,
            "--settle",
            "1",
            "--stability",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let prompt = fake.requests()[0].last_user_text();
    assert!(
        prompt.contains("FATAL: no queue configured") && prompt.contains("stack.yml"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("other:"),
        "the folder's own compose file is not what runs: {prompt}"
    );
    assert!(std::fs::read_to_string(path.join("stack.yml"))
        .unwrap()
        .contains("[\"sleep\", \"3600\"]"));
    assert!(nothing_left(&guard.0).is_empty());
}

#[test]
fn a_failing_service_of_an_included_file_shows_that_file_to_the_model() {
    if !docker_available("repair_include") {
        return;
    }
    let (_dir, path, guard) = unique_output("rep-inc");
    std::fs::create_dir_all(path.join("worker")).unwrap();
    std::fs::write(
        path.join("docker-compose.yml"),
        "include: [worker/compose.yaml]\nservices:\n  web:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n",
    )
    .unwrap();
    std::fs::write(path.join("worker/compose.yaml"), "services:\n  worker:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo 'FATAL: worker queue missing' >&2; exit 4\"]\n").unwrap();
    let fix = "<edit path=\"worker/compose.yaml\">\n<<<<<<< SEARCH\n    command: [\"sh\", \"-c\", \"echo 'FATAL: worker queue missing' >&2; exit 4\"]\n=======\n    command: [\"sleep\", \"3600\"]\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::scripted(vec![Reply::text(fix)]);
    let o = masgen()
        .arg("repair")
        .arg(&path)
        .args(["-k", TEST_KEY, "--base-url", &fake.url])
        .args(["--settle", "1", "--stability", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let prompt = fake.requests()[0].last_user_text();
    assert!(
        prompt.contains("FATAL: worker queue missing")
            && prompt.contains("<file path=\"worker/compose.yaml\">"),
        "the included file that defines the failing service is shown: {prompt}"
    );
    assert!(nothing_left(&guard.0).is_empty());
}

#[test]
fn the_repair_request_shows_what_the_dependents_of_the_failing_service_share_with_it() {
    if !docker_available("excerpt_dependents") {
        return;
    }
    let padding: String = (0..10)
        .map(|i| {
            format!("      x.note{i}: \"a label that makes the entry long enough to leave out\"\n")
        })
        .collect();
    let compose = format!(
        "services:\n  app:\n    build: ./app\n  web:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    labels:\n{padding}    environment:\n      APP_HOST: app\n      APP_PORT: \"9000\"\n    depends_on: [app]\n"
    );
    let broken = BROKEN.replace(
        "<file path=\"docker-compose.yml\">\nservices:\n  app:\n    build: ./app\n</file>\n",
        &format!("<file path=\"docker-compose.yml\">\n{compose}</file>\n"),
    );
    let fake = FakeAnthropic::with_handler(move |_, n| match n {
        0 => Reply::text(&broken),
        _ => Reply::text(FIX),
    });
    let (_d, out, _g) = output("dependents");
    let o = run(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let prompt = fake.requests()[1].last_user_text();
    assert!(
        prompt.contains("<excerpt path=\"docker-compose.yml\" services=\"app, web (environment, ports, depends_on, healthcheck)\">\nservices:\n  app:\n    build: ./app\n  web:\n    environment:\n      APP_HOST: app\n      APP_PORT: \"9000\"\n    depends_on: [app]\n</excerpt>"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("x.note"),
        "the dependent's other keys are left out"
    );
}
