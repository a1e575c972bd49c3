//! Against the real Anthropic API. Ignored by `cargo test` (they cost money and need the
//! network); scripts/test.sh runs them when ANTHROPIC_API_KEY is set, or run
//! `cargo test --test live -- --ignored`. Asked for without a key, each says SKIPPED and why.
//! ANTHROPIC_BASE_URL and MASGEN_MODEL are honoured.

mod common;

use common::docker::*;
use common::*;
use masgen::llm::{complete, AnthropicModel, Message, Request, RetryPolicy};

fn key(test: &str) -> Option<String> {
    match std::env::var("ANTHROPIC_API_KEY") {
        Ok(k) if !k.trim().is_empty() => Some(k),
        _ => {
            eprintln!("SKIPPED {test}: ANTHROPIC_API_KEY is not set");
            None
        }
    }
}

fn model_id() -> String {
    std::env::var("MASGEN_MODEL").unwrap_or_else(|_| masgen::generate::DEFAULT_MODEL.to_string())
}

#[tokio::test]
#[ignore = "live API: needs ANTHROPIC_API_KEY"]
async fn live_the_system_prompt_is_read_from_the_prompt_cache_on_the_next_request() {
    let Some(key) = key("live_prompt_cache") else {
        return;
    };
    let base = std::env::var("ANTHROPIC_BASE_URL")
        .unwrap_or_else(|_| masgen::llm::DEFAULT_BASE_URL.to_string());
    let model = AnthropicModel::new(key, &base, &model_id(), RetryPolicy::default()).unwrap();
    let events = masgen::Events::none();
    let ask = |n: u32| Request {
        system: masgen::generate::prompts::SYSTEM.to_string(),
        messages: vec![Message::user(format!(
            "Reply with the word ok and the number {n}, nothing else."
        ))],
        max_tokens: 256,
    };
    let first = complete(&model, &ask(1), "live-1", &events)
        .await
        .expect("first request");
    let second = complete(&model, &ask(2), "live-2", &events)
        .await
        .expect("second request");
    eprintln!("first: {:?}\nsecond: {:?}", first.usage, second.usage);
    // The first request may itself read an entry an earlier run wrote; either way the
    // second must find the system prompt in the cache.
    assert!(
        first.usage.cache_write + first.usage.cache_read > 0,
        "the system prompt was not cached at all (too short for {}?): {:?}",
        model_id(),
        first.usage
    );
    assert!(
        second.usage.cache_read > 0,
        "the second request did not read the cache: {:?}",
        second.usage
    );
}

#[test]
#[ignore = "live API and Docker: needs ANTHROPIC_API_KEY"]
fn live_a_small_system_is_generated_verified_and_healthy() {
    let Some(key) = key("live_generate_verify") else {
        return;
    };
    if !docker_available("live_generate_verify") {
        return;
    }
    let (_dir, out, _cleanup) = unique_output("live");
    // Only images the offline base images provide, so no registry is needed.
    let spec = "Two Python services on python:3.11-slim using only the standard library: \
        an echo server listening on TCP port 9000, and a client that connects to it every 2 seconds, \
        sends a line with a counter and prints the echoed reply. Each has a healthcheck.";
    let mut cmd = masgen();
    for var in ["ANTHROPIC_BASE_URL", "MASGEN_MODEL"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    let o = cmd
        .env("ANTHROPIC_API_KEY", key)
        .arg(spec)
        .arg("-o")
        .arg(&out)
        .args(["--max-cost", "1"])
        .output()
        .unwrap();
    let report = run_report(&out);
    eprintln!("{}\nusage: {}", text(&o), report["usage"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report["healthy"], true);
    // Every repair round reads the system prompt the generation request cached.
    for round in report["repair"]["rounds"].as_array().into_iter().flatten() {
        assert!(
            round["usage"]["cache_read"].as_u64().unwrap_or(0) > 0,
            "round without cache reads: {round}"
        );
    }
}
