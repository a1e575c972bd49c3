//! Generation against the fake Anthropic server: what masgen sends, what it writes, how it
//! retries, and what users see for bad input.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn single_call_writes_the_system_and_sends_a_cacheable_well_formed_request() {
    let fake = FakeAnthropic::scripted(vec![
        Reply::text(&system_reply()).usage([1200, 800, 0, 1100])
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "docker-compose.yml",
        "app/Dockerfile",
        "README.md",
        "start.sh",
        ".masgen/state.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing\n{}", text(&o));
    }
    assert_eq!(
        std::fs::read_to_string(out.join("app/Dockerfile")).unwrap(),
        "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.header("anthropic-version"), Some("2026-10-21"));
    assert_eq!(r.header("x-api-key"), Some(TEST_KEY));
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["model"], "claude-sonnet-5-5");
    assert_eq!(r.body["system"][0]["cache_control"]["type"], "ephemeral");
    assert!(r.body["system"][0]["text"]
        .as_str()
        .unwrap()
        .contains("healthcheck"));
    assert!(r.last_user_text().contains("a test system"));
    // Tokens and cost reach the user and the report.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("input 1200, output 800, cache read 0, cache write 1100"),
        "{stdout}"
    );
    let cost = 1200.0 * 2.0 / 1e6 + 800.0 * 10.0 / 1e6 + 1100.0 * 2.5 / 1e6;
    assert!(stdout.contains(&format!("${cost:.4}")), "{stdout}");
    let report = run_report(&out);
    assert_eq!(report["usage"]["input"], 1200);
    assert_eq!(report["usage"]["cache_write"], 1100);
    assert!((report["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(".masgen/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["spec"], "a test system");
    assert_eq!(state["files"].as_object().unwrap().len(), 4);
}

#[test]
fn an_unknown_model_shows_tokens_and_says_the_price_is_unknown() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(
        &fake,
        &dir.path().join("s"),
        &["--model", "claude-future-9"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("input 100, output 50"), "{stdout}");
    assert!(
        stdout.contains("Estimated cost: unknown (no price for model 'claude-future-9')"),
        "{stdout}"
    );
}

#[test]
fn a_truncated_reply_is_continued_without_prefill_and_joined() {
    let full = system_reply();
    let cut = full.find("CMD [\"sleep\"").unwrap();
    let (a, b) = full.split_at(cut);
    let fake = FakeAnthropic::scripted(vec![Reply::max_tokens(a), Reply::text(b)]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{}", text(&o));
    let m = reqs[1].messages();
    assert_eq!(m.len(), 3);
    assert_eq!(
        (m[0].0.as_str(), m[1].0.as_str(), m[2].0.as_str()),
        ("user", "assistant", "user")
    );
    assert_eq!(
        m[1].1, a,
        "the partial reply goes back verbatim as an assistant turn"
    );
    assert!(m[2].1.contains("Continue exactly where it stopped"));
    assert_eq!(
        std::fs::read_to_string(out.join("app/Dockerfile")).unwrap(),
        "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n"
    );
}

#[test]
fn a_file_still_cut_after_continuations_is_asked_for_alone() {
    // Every reply to the whole-system request is cut; the single-file requests complete.
    let fake = FakeAnthropic::with_handler(|r, _| {
        let last = r.last_user_text();
        if let Some(p) = last
            .split("Write the file ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
        {
            Reply::text(&format!("<file path=\"{p}\">\ncontent of {p}\n</file>\n"))
        } else if last.contains("Continue exactly") {
            Reply::max_tokens("more text of the cut file\n")
        } else {
            Reply::max_tokens("<file path=\"docker-compose.yml\">\nservices:\n  app:\n    image: busybox:latest\n</file>\n<file path=\"app/main.py\">\nprint(")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    let continues = reqs
        .iter()
        .filter(|r| r.last_user_text().contains("Continue exactly"))
        .count();
    assert_eq!(continues, 3, "at most 3 continuations");
    assert_eq!(
        std::fs::read_to_string(out.join("app/main.py")).unwrap(),
        "content of app/main.py\n"
    );
    assert!(
        out.join("README.md").is_file() && out.join("start.sh").is_file(),
        "required files asked for alone"
    );
}

#[test]
fn overloaded_twice_then_success_is_retried_and_shown() {
    let overloaded = Reply::error(529, "overloaded_error", "Overloaded");
    let fake = FakeAnthropic::scripted(vec![
        overloaded.clone(),
        overloaded,
        Reply::text(&system_reply()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(&fake, &dir.path().join("s"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fake.requests().len(), 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("529 overloaded_error, retry 2/6") && err.contains("retry 3/6"),
        "{err}"
    );
}

#[test]
fn rate_limit_retry_after_is_honoured() {
    let fake = FakeAnthropic::scripted(vec![
        Reply::error(429, "rate_limit_error", "slow down").retry_after(1),
        Reply::text(&system_reply()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(&fake, &dir.path().join("s"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = fake.requests();
    assert_eq!(r.len(), 2);
    let gap = r[1].arrived - r[0].finished;
    assert!(
        gap >= Duration::from_millis(950),
        "retry-after: 1 must be waited out, waited {gap:?} (base backoff is 20 ms)"
    );
}

#[test]
fn authentication_failure_exits_3_with_the_apis_message() {
    let fake = FakeAnthropic::scripted(vec![Reply::error(
        401,
        "authentication_error",
        "invalid x-api-key",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invalid x-api-key") && err.contains("check ANTHROPIC_API_KEY"),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 1, "401 is never retried");
    assert!(!out.join("docker-compose.yml").exists());
}

#[test]
fn an_unknown_model_404_is_terminal() {
    let fake = FakeAnthropic::scripted(vec![Reply::error(
        404,
        "not_found_error",
        "model: claude-nope",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(&fake, &dir.path().join("s"), &["--model", "claude-nope"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("check --model"),
        "{}",
        text(&o)
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn a_stream_cut_mid_way_is_retried_as_a_whole_request() {
    let fake = FakeAnthropic::scripted(vec![
        Reply::text(&system_reply()).cut(2),
        Reply::text(&system_reply()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fake.requests().len(), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stream cut"),
        "{}",
        text(&o)
    );
    assert!(out.join("app/Dockerfile").is_file());
}

#[test]
fn the_api_failing_for_good_exits_3_after_the_configured_attempts() {
    let fake = FakeAnthropic::scripted(vec![Reply::error(
        500,
        "api_error",
        "Internal server error",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(&fake, &dir.path().join("s"), &["--retries", "3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(fake.requests().len(), 3);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("still failed after 3 attempts"),
        "{}",
        text(&o)
    );
}

#[test]
fn unsafe_paths_write_nothing_outside_the_folder_or_inside_masgen() {
    let reply = format!(
        "{}<file path=\"../x\">\nescape\n</file>\n<file path=\"/tmp/masgen-abs-x\">\nabs\n</file>\n<file path=\".masgen/x\">\nstate\n</file>\n<file path=\"a\\b\">\nbs\n</file>\n",
        system_reply()
    );
    let fake = FakeAnthropic::scripted(vec![Reply::text(&reply)]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!dir.path().join("x").exists());
    assert!(!std::path::Path::new("/tmp/masgen-abs-x").exists());
    assert!(!out.join(".masgen/x").exists());
    let err = String::from_utf8_lossy(&o.stderr);
    for p in ["../x", "/tmp/masgen-abs-x", ".masgen/x", "a\\\\b"] {
        assert!(
            err.contains(&format!("refused \"{p}\"")),
            "warning for {p} missing:\n{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_in_the_output_folder_cannot_be_used_to_escape() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&format!(
        "{}<file path=\"link/evil.txt\">\nx\n</file>\n",
        system_reply()
    ))]);
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    std::fs::create_dir_all(out.join(".masgen")).unwrap();
    std::os::unix::fs::symlink(outside.path(), out.join("link")).unwrap();
    let o = generate_against(&fake, &out, &["--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!outside.path().join("evil.txt").exists());
}

/// A fake that answers the manifest request with MANIFEST and each batch, after `delay`,
/// with the files it asks for.
fn staged_fake(delay: Duration) -> FakeAnthropic {
    FakeAnthropic::with_handler(move |r, _| {
        let p = r.last_user_text();
        if p.contains("Reply with its manifest only") {
            Reply::text(MANIFEST)
        } else {
            Reply::text(&batch_reply(&p)).delayed(delay)
        }
    })
}

#[test]
fn staged_batches_run_concurrently_and_carry_the_whole_manifest() {
    let fake = staged_fake(Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(
        &fake,
        &out,
        &[
            "--staged",
            "--jobs",
            "4",
            "--download-responses",
            "--batch-per-group",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    let batches: Vec<_> = reqs
        .iter()
        .filter(|r| r.last_user_text().contains("Write exactly these files"))
        .collect();
    assert_eq!(batches.len(), 5, "infrastructure, a, b, c, docs");
    // Overlap, from the recorded times: some batch arrived before another had finished.
    let overlapping = batches.iter().any(|x| {
        batches
            .iter()
            .any(|y| !std::ptr::eq(*x, *y) && y.arrived < x.finished && x.arrived < y.finished)
    });
    assert!(
        overlapping,
        "batches did not overlap: {:?}",
        batches
            .iter()
            .map(|b| (b.arrived, b.finished))
            .collect::<Vec<_>>()
    );
    let max_in_flight = batches
        .iter()
        .map(|x| {
            batches
                .iter()
                .filter(|y| y.arrived <= x.arrived && x.arrived < y.finished)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        max_in_flight <= 4,
        "--jobs 4 bounds concurrency, saw {max_in_flight}"
    );
    for b in &batches {
        let p = b.last_user_text();
        assert!(
            p.contains("\"c/Dockerfile\"")
                && p.contains("services (also their host names): a, b, c"),
            "every batch carries the manifest and shared names"
        );
    }
    for f in [
        "docker-compose.yml",
        "a/app.py",
        "b/app.py",
        "c/Dockerfile",
        "README.md",
        "start.sh",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let responses = out.join("claude-responses");
    for f in [
        "manifest.json",
        "batch-infrastructure-1.json",
        "batch-a-1.json",
        "batch-docs-1.json",
    ] {
        let body =
            std::fs::read_to_string(responses.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["text"].is_string()
                && v["usage"]["input"].is_number()
                && v["stop_reason"] == "end_turn"
                && v["model"] == "claude-sonnet-5-5"
        );
    }
}

#[test]
fn staged_missing_manifest_files_are_generated_alone() {
    let fake = FakeAnthropic::with_handler(|r, _| {
        let p = r.last_user_text();
        if p.contains("Reply with its manifest only") {
            Reply::text(MANIFEST)
        } else if let Some(path) = p
            .split("Write the file ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
        {
            Reply::text(&format!("<file path=\"{path}\">\nalone {path}\n</file>"))
        } else {
            // Batches leave out b/app.py.
            Reply::text(
                &batch_reply(&p).replace("<file path=\"b/app.py\">\n# b/app.py\n</file>\n", ""),
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &["--staged", "--download-responses"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("b/app.py")).unwrap(),
        "alone b/app.py\n"
    );
    assert!(out
        .join("claude-responses/single-file-b_app.py.txt")
        .is_file());
}

#[test]
fn manifest_garbage_is_retried_once_then_exits_3_with_the_raw_reply_kept() {
    let fake = FakeAnthropic::scripted(vec![
        Reply::text("Sure! Here's my plan: lots of files."),
        Reply::text("still not json"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &["--staged"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].last_user_text().contains("JSON array only"));
    let saved = std::fs::read_to_string(out.join(".masgen/manifest-reply.txt")).unwrap();
    assert!(saved.contains("lots of files") && saved.contains("still not json"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest-reply.txt"));
}

#[test]
fn download_responses_writes_every_reply_and_never_the_key() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &["--download-responses", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("claude-responses/generate.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["model"], "claude-sonnet-5-5");
    assert!(saved["text"]
        .as_str()
        .unwrap()
        .contains("<file path=\"app/Dockerfile\">"));
    for f in all_files(dir.path()) {
        let body = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(
            !body.contains(TEST_KEY),
            "the API key leaked into {}",
            f.display()
        );
    }
    let all_output = text(&o);
    assert!(
        !all_output.contains(TEST_KEY),
        "the API key leaked into the output"
    );
    // --json: one JSON object per stdout line.
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn a_reply_without_files_exits_1_and_shows_what_the_model_said() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(
        "I'm sorry, I can't help with that system.",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate_against(&fake, &dir.path().join("s"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("I'm sorry, I can't help"),
        "{}",
        text(&o)
    );
}

#[test]
fn staged_groups_beyond_the_job_count_are_packed_into_one_wave() {
    let fake = staged_fake(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &["--staged", "--jobs", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let batches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.last_user_text().contains("Write exactly these files"))
        .collect();
    assert_eq!(batches.len(), 4, "5 groups packed into 4 batches");
    // One wave: every batch was sent before any of them finished.
    let first_done = batches.iter().map(|b| b.finished).min().unwrap();
    assert!(
        batches.iter().all(|b| b.arrived < first_done),
        "{:?}",
        batches
            .iter()
            .map(|b| (b.arrived, b.finished))
            .collect::<Vec<_>>()
    );
    for f in [
        "docker-compose.yml",
        "a/app.py",
        "b/app.py",
        "c/Dockerfile",
        "README.md",
        "start.sh",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn the_prompt_says_a_port_the_spec_names_is_published_on_that_host_port() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let o = masgen()
        .args([
            "generate",
            "MySQL with a FastAPI service with CRUD endpoints on port 8000",
            "-o",
        ])
        .arg(dir.path().join("s"))
        .args(["-k", TEST_KEY, "--base-url", &fake.url, "--no-verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = &fake.requests()[0];
    let system = r.body["system"][0]["text"].as_str().unwrap();
    assert!(
        system.contains("A port the spec gives a service")
            && system.contains("is published on the same host port (\"8000:8000\")")
            && system.contains("Ports the spec does not name are not published"),
        "{system}"
    );
    assert!(!system.contains("only when the spec says it must be reachable from outside"));
}

/// A manifest reply that also carries the contract of shared names.
const MANIFEST_WITH_CONTRACT: &str = r#"<manifest>
[{"path":"docker-compose.yml","purpose":"compose: rabbitmq broker, publisher a, consumers b and c, all on the project network","group":"infrastructure"},
 {"path":"a/Dockerfile","purpose":"a image: python 3.11 slim with pika installed from requirements.txt","group":"a"},{"path":"a/app.py","purpose":"a code: publishes 10 messages a second to the orders exchange with routing key order.created","group":"a"},
 {"path":"b/Dockerfile","purpose":"b image: python 3.11 slim with pika installed from requirements.txt","group":"b"},{"path":"b/app.py","purpose":"b code: consumes order.created from the orders queue and logs each message","group":"b"},
 {"path":"c/Dockerfile","purpose":"c image: python 3.11 slim, consumer of the audit queue","group":"c"},
 {"path":"README.md","purpose":"docs: what the system is and how to run it","group":"docs"},{"path":"start.sh","purpose":"run: docker compose up --build","group":"docs"}]
</manifest>
<contract>
{"services": ["rabbitmq", "a", "b", "c"], "ports": {"rabbitmq": [5672, 15672]},
 "environment": {"AMQP_URL": "amqp://guest:guest@rabbitmq:5672/", "PUBLISH_RATE": "messages a second, default 10"},
 "queues": ["orders", "audit"], "exchanges": ["orders"], "routing_keys": ["order.created"],
 "credentials": ["RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"], "volumes": [], "paths": [],
 "health": {"b": "GET /health on 8080"}, "smoke": ["an order published by a reaches b's log"]}
</contract>"#;

#[test]
fn staged_batches_and_single_files_receive_the_contract_once() {
    let fake = FakeAnthropic::with_handler(|r, _| {
        let p = r.last_user_text();
        if p.contains("Reply with its manifest only") {
            Reply::text(MANIFEST_WITH_CONTRACT)
        } else if p.contains("Write exactly these files") {
            // b's batch leaves b/app.py out: it is asked for alone.
            Reply::text(
                &batch_reply(&p).replace("<file path=\"b/app.py\">\n# b/app.py\n</file>\n", ""),
            )
        } else {
            Reply::text("<file path=\"b/app.py\">\nprint('b')\n</file>\n")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate_against(&fake, &out, &["--staged", "--batch-per-group"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    let later: Vec<String> = reqs.iter().skip(1).map(|r| r.last_user_text()).collect();
    let batches: Vec<&String> = later
        .iter()
        .filter(|p| p.contains("Write exactly these files"))
        .collect();
    let sizes: Vec<usize> = batches.iter().map(|p| p.len()).collect();
    eprintln!(
        "batch request sizes (bytes): {sizes:?}, total {}",
        sizes.iter().sum::<usize>()
    );
    assert_eq!(batches.len(), 5);
    assert!(
        later.iter().any(|p| p.contains("Write the file b/app.py")),
        "{later:?}"
    );
    for p in &later {
        assert!(
            p.contains("\"routing_keys\": [\"order.created\"]") && p.contains("\"AMQP_URL\""),
            "every batch and single-file request carries the contract: {p}"
        );
        assert!(
            p.contains("\"health\": {\"b\":\"GET /health on 8080\"}")
                && p.contains("an order published by a reaches b's log"),
            "later batches need not guess an earlier batch's health and smoke endpoints: {p}"
        );
        // Purposes go only to the batch that writes the file, not again to every batch.
        let writes_a = p.contains("- a/app.py (");
        assert_eq!(
            p.contains("publishes 10 messages a second"),
            writes_a,
            "{p}"
        );
    }
    let before = 7755; // the same five batches with the whole manifest in each (the code before)
    assert!(
        sizes.iter().sum::<usize>() < before,
        "smaller than before: {sizes:?}"
    );
}
