//! `--provider openai` against a fake OpenAI-compatible server (Chat Completions over SSE,
//! reasoning deltas, usage in the last chunk, `[DONE]`, error envelopes): generation,
//! staged generation, continuation, retries, local servers without keys, prices and the
//! cost cap, audit files, a repair round on the real daemon, and bad input.

mod common;

use common::docker::*;
use common::*;

const HOSTED: Wire = Wire::OpenAi {
    key: true,
    refuse_stream_options: false,
};
const LOCAL: Wire = Wire::OpenAi {
    key: false,
    refuse_stream_options: false,
};
const OPENAI_KEY: &str = "sk-openai-test-KEY-must-never-be-written-9876543210";

/// `masgen generate` against `fake` with --provider openai, writing only.
fn generate(fake: &FakeAnthropic, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    masgen()
        .args(["generate", "a test system", "-o"])
        .arg(out)
        .args(["--provider", "openai", "--base-url"])
        .arg(format!("{}/v1", fake.url))
        .args([
            "--model",
            "qwen2.5-coder:32b",
            "--retry-base-ms",
            "20",
            "--no-verify",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_single_call_writes_the_system_from_a_chat_completions_stream() {
    let fake = FakeAnthropic::openai(
        HOSTED,
        vec![Reply::text(&system_reply()).usage([1200, 800, 0, 0])],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate(&fake, &out, &["-k", OPENAI_KEY, "--download-responses"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("app/Dockerfile")).unwrap(),
        "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n",
        "the reasoning delta is not part of the reply"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(r.body["model"], "qwen2.5-coder:32b");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert!(r.body["max_tokens"].as_u64().is_some());
    let m = r.messages();
    assert_eq!((m[0].0.as_str(), m[1].0.as_str()), ("system", "user"));
    assert!(m[0].1.contains("healthcheck") && m[1].1.contains("a test system"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("input 1200, output 800"),
        "tokens are always reported: {stdout}"
    );
    assert!(
        stdout.contains("Estimated cost: unknown (no price for model 'qwen2.5-coder:32b')"),
        "{stdout}"
    );
    // The audit file names the provider; the key is in no file.
    let record = std::fs::read_to_string(out.join("claude-responses/single-call.json"))
        .or_else(|_| {
            let f = std::fs::read_dir(out.join("claude-responses"))
                .unwrap()
                .flatten()
                .next()
                .unwrap();
            std::fs::read_to_string(f.path())
        })
        .unwrap();
    assert!(record.contains("\"provider\": \"openai\""), "{record}");
    for f in all_files(&out) {
        let body = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains(OPENAI_KEY),
            "{} holds the key",
            f.display()
        );
    }
}

#[test]
fn given_prices_give_a_cost_and_enforce_the_cap() {
    let fake = FakeAnthropic::openai(
        LOCAL,
        vec![Reply::text(&system_reply()).usage([1_000_000, 100_000, 0, 0])],
    );
    let dir = tempfile::tempdir().unwrap();
    let o = generate(
        &fake,
        &dir.path().join("a"),
        &["--price-in", "0.5", "--price-out", "2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("$0.7000"),
        "{}",
        text(&o)
    );
    // Without prices, a cap cannot be enforced: exit 2 before any request, saying how.
    let o = generate(&fake, &dir.path().join("b"), &["--max-cost", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--price-in USD --price-out USD"),
        "{}",
        text(&o)
    );
    assert_eq!(fake.requests().len(), 1);
    // With them, the cap stops a request that could cross it.
    let o = generate(
        &fake,
        &dir.path().join("c"),
        &[
            "--max-cost",
            "0.0001",
            "--price-in",
            "5",
            "--price-out",
            "20",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("budget spent"), "{}", text(&o));
    assert_eq!(fake.requests().len(), 1, "nothing sent past the cap");
}

#[test]
fn a_local_server_needs_no_key_and_a_remote_one_does() {
    let fake = FakeAnthropic::openai(LOCAL, vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate(&fake, &dir.path().join("sys"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fake.requests()[0].header("authorization"), None);
    // A hosted endpoint without a key: exit 3 naming OPENAI_API_KEY, nothing sent; an
    // Anthropic key is never sent to another provider.
    let remote = |out: &str, env: &[(&str, &str)]| {
        masgen()
            .args(["generate", "x", "-o"])
            .arg(dir.path().join(out))
            .args([
                "--provider",
                "openai",
                "--base-url",
                "https://api.example.com/v1",
                "--no-verify",
            ])
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let o = remote("remote", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("set OPENAI_API_KEY"), "{}", text(&o));
    let o = remote("remote2", &[("ANTHROPIC_API_KEY", TEST_KEY)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // The provider's own variables work.
    let o = masgen()
        .args(["generate", "a test system", "-o"])
        .arg(dir.path().join("env"))
        .args(["--no-verify", "--model", "m"])
        .env("MASGEN_PROVIDER", "openai")
        .env("OPENAI_BASE_URL", format!("{}/v1", fake.url))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn bad_input_gets_a_clear_message() {
    let o = masgen()
        .args(["generate", "x", "--provider", "bedrock", "--no-verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("possible values: anthropic, openai"),
        "{}",
        text(&o)
    );
    let fake = FakeAnthropic::openai(
        HOSTED,
        vec![Reply::error(
            401,
            "invalid_request_error",
            "Incorrect API key provided: sk-wr***",
        )],
    );
    let dir = tempfile::tempdir().unwrap();
    let o = generate(&fake, &dir.path().join("s"), &["-k", "sk-wrong"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("Incorrect API key provided"),
        "the server's own message: {}",
        text(&o)
    );
    assert_eq!(fake.requests().len(), 1, "401 is terminal");
}

#[test]
fn a_cut_reply_is_continued_and_transient_failures_are_retried() {
    let full = system_reply();
    let cut = full.find("CMD [\"sleep\"").unwrap();
    let (a, b) = full.split_at(cut);
    let fake = FakeAnthropic::openai(
        LOCAL,
        vec![
            Reply::error(429, "rate_limit_exceeded", "slow down").retry_after(1),
            Reply::text(a).cut(1),
            Reply::max_tokens(a),
            Reply::text(b),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate(&fake, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4, "{}", text(&o));
    assert!(
        reqs[1].arrived - reqs[0].arrived >= std::time::Duration::from_millis(900),
        "retry-after is honoured"
    );
    let m = reqs[3].messages();
    let roles: Vec<&str> = m.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user"],
        "a `length` reply is continued"
    );
    assert_eq!(m[2].1, a);
    assert_eq!(
        std::fs::read_to_string(out.join("app/Dockerfile")).unwrap(),
        "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n"
    );
}

#[test]
fn a_server_that_refuses_stream_options_is_asked_again_without_them() {
    let wire = Wire::OpenAi {
        key: false,
        refuse_stream_options: true,
    };
    let fake = FakeAnthropic::openai(wire, vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let o = generate(&fake, &dir.path().join("sys"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.get("stream_options").is_none());
    assert!(
        text(&o).contains("refused stream_options"),
        "one warning: {}",
        text(&o)
    );
}

#[test]
fn staged_generation_works_through_chat_completions() {
    let fake = FakeAnthropic::speaking(LOCAL, |r, _| {
        let p = r.last_user_text();
        if p.contains("Reply with its manifest only") {
            Reply::text(MANIFEST)
        } else {
            Reply::text(&batch_reply(&p))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sys");
    let o = generate(&fake, &out, &["--staged"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for f in [
        "docker-compose.yml",
        "a/Dockerfile",
        "b/app.py",
        "README.md",
    ] {
        assert!(out.join(f).is_file(), "{f}: {}", text(&o));
    }
    assert_eq!(
        std::fs::read_to_string(out.join("a/app.py")).unwrap(),
        "# a/app.py\n"
    );
    assert!(fake.requests().len() >= 2);
}

#[test]
fn a_repair_round_through_chat_completions_makes_the_system_healthy() {
    if !docker_available("openai_repair") {
        return;
    }
    let broken = "<file path=\"docker-compose.yml\">\nservices:\n  app:\n    image: busybox:latest\n    command: [\"sh\", \"-c\", \"echo 'FATAL: MODE is not set' >&2; exit 3\"]\n</file>\n<file path=\"README.md\">\n# app\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up\n</file>\n";
    let fix = "<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    command: [\"sh\", \"-c\", \"echo 'FATAL: MODE is not set' >&2; exit 3\"]\n=======\n    command: [\"sleep\", \"3600\"]\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::speaking(LOCAL, move |r, n| match n {
        0 => Reply::text(broken),
        _ if r.last_user_text().contains("FATAL: MODE is not set") => Reply::text(fix),
        _ => Reply::text("no logs, no fix"),
    });
    let (_d, out, guard) = unique_output("oai-rep");
    let o = masgen()
        .args(["generate", "an app", "-o"])
        .arg(&out)
        .args(["--provider", "openai", "--base-url"])
        .arg(format!("{}/v1", fake.url))
        .args(["--model", "m", "--settle", "1", "--stability", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(fake.requests().len(), 2);
    assert!(nothing_left(&guard.0).is_empty());
}
