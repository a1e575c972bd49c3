//! The stability window: once every service is ready, nothing may exit or turn unhealthy
//! for `--stability` seconds.

use std::time::{Duration, Instant};

use super::start::evidence;
use super::{ServiceState, Steps, Tally};
use crate::diagnose::{Diagnostic, Phase};
use crate::events::Event;
use crate::runtime::health::HealthState;
use crate::runtime::{Runtime, KEEP_LINES};

/// Watch the ready services every 500 ms until the window ends or one fails; returns the
/// seconds watched.
pub(super) async fn watch(steps: &Steps<'_, impl Runtime>, tally: &mut Tally) -> f64 {
    let window = steps.opts.stability;
    steps.opts.events.emit(Event::Phase {
        name: format!("verify: stability window ({}s)", window.as_secs()),
    });
    let started = Instant::now();
    let end = started + window;
    while Instant::now() < end && tally.failed.is_empty() {
        let nap = Duration::from_millis(500).min(end.saturating_duration_since(Instant::now()));
        tokio::time::sleep(nap).await;
        for (name, container) in tally.running.clone() {
            let Some(d) = check(steps, &name, &container).await else {
                continue;
            };
            steps.opts.events.emit(Event::ServiceFailed {
                service: name.clone(),
                phase: Phase::Stability,
                summary: d.summary.clone(),
            });
            tally.services.get_mut(&name).expect("service").state = ServiceState::Failed;
            tally.failed.insert(name, d);
        }
    }
    started.elapsed().as_secs_f64()
}

/// Whether a ready service still is: None when it is, else why not.
async fn check(steps: &Steps<'_, impl Runtime>, name: &str, container: &str) -> Option<Diagnostic> {
    let Some(s) = steps.rt.snapshot(container).await else {
        let gone = "the container disappeared after becoming ready (removed from outside masgen?)";
        return Some(Diagnostic::new(name, Phase::Stability, gone));
    };
    let summary = if !s.running {
        let oom = if s.oom_killed {
            " (killed: out of memory)"
        } else {
            ""
        };
        format!(
            "exited with code {} after becoming ready{oom}",
            s.exit_code.unwrap_or(-1)
        )
    } else if s.health == HealthState::Unhealthy {
        "turned unhealthy after becoming ready".to_string()
    } else {
        return None;
    };
    let logs = steps.rt.logs_tail(container, KEEP_LINES).await;
    // One of several replicas is named.
    let summary = match steps.plan.get(name).map_or(1, |p| p.replicas) {
        1 => summary,
        _ => format!("{container}: {summary}"),
    };
    Some(
        Diagnostic::new(name, Phase::Stability, summary)
            .evidence(evidence(Some(&s), &logs))
            .files(steps.plan.implicated(name)),
    )
}
