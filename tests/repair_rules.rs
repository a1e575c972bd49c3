//! The repair loop's stop rules with no Docker daemon at all: verification is a scripted
//! [`Verifier`], the model the fake server in tests/common. Each rule: healthy, rounds
//! spent, the cost cap reached before a request, stuck after two repairs that fail the
//! same way, an environment failure never sent to the model, and a round that changed
//! nothing (not verified again).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use masgen::diagnose::{Diagnostic, Phase};
use masgen::generate::Generator;
use masgen::repair::{repair_loop, LoopOutcome, RepairError, RepairOptions};
use masgen::runtime::RuntimeError;
use masgen::verify::{Verifier, VerifyError, VerifyOptions, VerifyReport};

type Script = Box<dyn Fn(usize) -> Result<VerifyReport, VerifyError> + Send + Sync>;

/// Answers the n-th verification with `script(n)` and counts them.
struct Scripted {
    script: Script,
    calls: AtomicUsize,
}

impl Verifier for Scripted {
    async fn verify(&self, _: &Path, _: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        (self.script)(n)
    }
}

fn scripted(
    f: impl Fn(usize) -> Result<VerifyReport, VerifyError> + Send + Sync + 'static,
) -> Scripted {
    Scripted {
        script: Box::new(f),
        calls: AtomicUsize::new(0),
    }
}

fn unhealthy(summary: &str) -> Result<VerifyReport, VerifyError> {
    Ok(VerifyReport {
        healthy: false,
        project: "rules".into(),
        diagnostics: vec![Diagnostic::new("app", Phase::Crash, summary)
            .evidence("app: it broke")
            .files(vec!["app.txt".into()])],
        ..Default::default()
    })
}

/// Docker failing under the loop (the environment's failure).
fn docker_failed(network: &str, message: &str) -> Result<VerifyReport, VerifyError> {
    Err(VerifyError::Runtime(RuntimeError::CreateNetwork {
        network: network.into(),
        message: message.into(),
    }))
}

fn healthy() -> Result<VerifyReport, VerifyError> {
    Ok(VerifyReport {
        healthy: true,
        project: "rules".into(),
        ..Default::default()
    })
}

/// A model reply that rewrites app.txt (a change every time: the text carries a counter).
fn fix(n: usize) -> Reply {
    Reply::text(&format!("<file path=\"app.txt\">\nfixed {n}\n</file>\n"))
}

struct Run {
    outcome: Result<LoopOutcome, String>,
    verifications: usize,
    requests: usize,
    rounds: usize,
}

fn run(verifier: Scripted, fake: &FakeAnthropic, ropts: RepairOptions, price: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.txt"), "broken\n").unwrap();
    let mut builder = Generator::builder()
        .api_key(TEST_KEY)
        .base_url(fake.url.clone());
    if price {
        builder = builder.price(masgen::llm::pricing::Price {
            input: 3.0,
            output: 15.0,
            cache_read: 0.3,
            cache_write: 3.75,
        });
    }
    let generator = builder.build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(repair_loop(
        &verifier,
        &generator,
        "an app",
        dir.path(),
        &VerifyOptions::default(),
        &ropts,
    ));
    Run {
        rounds: r.as_ref().map_or(0, |r| r.rounds.len()),
        outcome: r.map(|r| r.outcome).map_err(|e: RepairError| e.to_string()),
        verifications: verifier.calls.load(Ordering::SeqCst),
        requests: fake.requests().len(),
    }
}

fn rounds(n: u32) -> RepairOptions {
    RepairOptions {
        max_rounds: n,
        ..Default::default()
    }
}

#[test]
fn a_healthy_system_asks_nothing() {
    let fake = FakeAnthropic::scripted(vec![fix(0)]);
    let r = run(scripted(|_| healthy()), &fake, rounds(3), false);
    assert_eq!(r.outcome, Ok(LoopOutcome::Healthy));
    assert_eq!((r.verifications, r.requests, r.rounds), (1, 0, 0));
}

#[test]
fn a_repair_that_works_ends_healthy_after_one_round() {
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let r = run(
        scripted(|n| {
            if n == 0 {
                unhealthy("crashed: it broke")
            } else {
                healthy()
            }
        }),
        &fake,
        rounds(3),
        false,
    );
    assert_eq!(r.outcome, Ok(LoopOutcome::Healthy));
    assert_eq!((r.verifications, r.requests, r.rounds), (2, 1, 1));
    assert!(
        fake.requests()[0]
            .last_user_text()
            .contains("app: it broke"),
        "the evidence reaches the model"
    );
}

#[test]
fn rounds_are_spent_when_every_repair_fails_differently() {
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let words = ["alpha", "beta", "gamma", "delta"];
    let r = run(
        scripted(move |n| unhealthy(&format!("crashed: {}", words[n]))),
        &fake,
        rounds(2),
        false,
    );
    assert_eq!(r.outcome, Ok(LoopOutcome::RoundsSpent));
    assert_eq!((r.verifications, r.requests, r.rounds), (3, 2, 2));
}

#[test]
fn the_cost_cap_stops_before_a_request_that_could_cross_it() {
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let ropts = RepairOptions {
        max_cost_usd: Some(0.000_001),
        ..rounds(3)
    };
    let r = run(
        scripted(|_| unhealthy("crashed: it broke")),
        &fake,
        ropts,
        true,
    );
    assert_eq!(r.outcome, Ok(LoopOutcome::BudgetSpent));
    assert_eq!((r.verifications, r.requests), (1, 0));
}

#[test]
fn two_repairs_that_fail_the_same_way_are_stuck() {
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let r = run(
        // The numbers differ, the failure does not: the signature ignores them.
        scripted(|n| unhealthy(&format!("crashed: exited with code {n}"))),
        &fake,
        rounds(5),
        false,
    );
    assert_eq!(r.outcome, Ok(LoopOutcome::Stuck));
    assert_eq!((r.verifications, r.requests, r.rounds), (3, 2, 2));
}

#[test]
fn an_environment_failure_ends_the_loop_and_never_reaches_the_model() {
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let r = run(
        scripted(|_| docker_failed("network", "the daemon is gone")),
        &fake,
        rounds(3),
        false,
    );
    assert!(
        r.outcome
            .as_ref()
            .is_err_and(|e| e.contains("the daemon is gone")),
        "{:?}",
        r.outcome
    );
    assert_eq!((r.verifications, r.requests), (1, 0));
    // And one that comes after a repair ends it there, unsent too.
    let fake = FakeAnthropic::with_handler(|_, n| fix(n));
    let r = run(
        scripted(|n| {
            if n == 0 {
                unhealthy("crashed: it broke")
            } else {
                docker_failed("shop_default", "no such host")
            }
        }),
        &fake,
        rounds(3),
        false,
    );
    assert!(r.outcome.is_err(), "{:?}", r.outcome);
    assert_eq!((r.verifications, r.requests), (2, 1));
}

#[test]
fn a_round_that_changed_nothing_is_not_verified_again() {
    // No block at all, every time: asked again twice, then the round ends unchanged.
    let fake = FakeAnthropic::scripted(vec![Reply::text("I think it is fine as it is.")]);
    let r = run(
        scripted(|_| unhealthy("crashed: it broke")),
        &fake,
        rounds(1),
        false,
    );
    assert_eq!(r.outcome, Ok(LoopOutcome::RoundsSpent));
    assert_eq!(
        r.verifications, 1,
        "nothing changed, so nothing is verified again"
    );
    assert_eq!(r.requests, 1 + masgen::repair::MAX_REASKS as usize);
}
