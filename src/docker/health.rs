//! Readiness: a strategy per service, and a poll that handles every Docker state.

use std::time::{Duration, Instant};

use bollard::models::HealthStatusEnum;
use bollard::query_parameters::InspectContainerOptions;

use super::Engine;

/// How a service proves it is ready (planned in plan/).
pub use crate::plan::Readiness;
pub use crate::runtime::health::{
    HealthState, Probe, Snapshot, Wait, CANNOT_RUN_FOR, CANNOT_RUN_PROBES,
};

pub async fn snapshot(engine: &Engine, container: &str) -> Option<Snapshot> {
    let info = engine
        .docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .ok()?;
    let test = info
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| {
            let timeout = h
                .timeout
                .filter(|t| *t > 0)
                .map(|t| Duration::from_nanos(t as u64))
                .unwrap_or(Duration::from_secs(30));
            h.test
                .clone()
                .filter(|t| matches!(t.first().map(String::as_str), Some("CMD" | "CMD-SHELL")))
                .map(|t| (t, timeout))
        });
    let start_period = info
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.start_period)
        .filter(|p| *p > 0)
        .map(|p| Duration::from_nanos(p as u64))
        .unwrap_or_default();
    let state = info.state.unwrap_or_default();
    let health = state.health.clone();
    let status = health
        .as_ref()
        .and_then(|h| h.status)
        .map_or(HealthState::None, |s| match s {
            HealthStatusEnum::EMPTY | HealthStatusEnum::NONE => HealthState::None,
            HealthStatusEnum::STARTING => HealthState::Starting,
            HealthStatusEnum::HEALTHY => HealthState::Healthy,
            HealthStatusEnum::UNHEALTHY => HealthState::Unhealthy,
        });
    let probes = health
        .and_then(|h| h.log)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            format!(
                "exit {}: {}",
                r.exit_code.unwrap_or(-1),
                r.output.unwrap_or_default().trim()
            )
        })
        .collect();
    Some(Snapshot {
        running: state.running.unwrap_or(false),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        health: status,
        restarts: info.restart_count.unwrap_or(0),
        probes,
        error: state.error.filter(|e| !e.is_empty()),
        test,
        start_period,
    })
}

/// Poll `container` until it is ready by `readiness` or fails, or `deadline` passes.
pub async fn wait_ready(
    engine: &Engine,
    container: &str,
    readiness: Readiness,
    deadline: Instant,
) -> Wait {
    let started = Instant::now();
    // Probes in a row that could not run their program, and since when.
    let mut cannot_run: Option<(Instant, u32)> = None;
    loop {
        let tick = Instant::now();
        let Some(s) = snapshot(engine, container).await else {
            return Wait::Gone;
        };
        if !s.running {
            return match (s.exit_code, readiness) {
                (Some(0), Readiness::Completes | Readiness::Settle(_)) => Wait::Completed,
                _ => Wait::Exited(s),
            };
        }
        match readiness {
            Readiness::Healthcheck => match s.health {
                HealthState::Healthy => return Wait::Ready,
                HealthState::Unhealthy => return Wait::Unhealthy(s),
                // Docker runs its first probe one interval after start. Running the same
                // test now gives the same verdict seconds earlier, so dependents waiting
                // on service_healthy start sooner.
                _ => {
                    if let Some((test, timeout)) = &s.test {
                        match probe(
                            engine,
                            container,
                            test,
                            (*timeout).min(Duration::from_secs(5)),
                        )
                        .await
                        {
                            Some(p) if p.exit_code == 0 => return Wait::Ready,
                            Some(p) if p.cannot_run() => {
                                let (since, n) = cannot_run.get_or_insert((Instant::now(), 0));
                                *n += 1;
                                if *n >= CANNOT_RUN_PROBES
                                    && since.elapsed() >= CANNOT_RUN_FOR
                                    && started.elapsed() >= s.start_period
                                {
                                    return Wait::ProbeCannotRun(s, p);
                                }
                            }
                            _ => cannot_run = None,
                        }
                    }
                }
            },
            Readiness::Settle(d) => {
                if s.restarts > 0 {
                    return Wait::Exited(s);
                }
                if started.elapsed() >= d {
                    return Wait::Ready;
                }
            }
            Readiness::Completes => {}
        }
        if Instant::now() >= deadline {
            return Wait::TimedOut(Some(s));
        }
        // Every level of a depends_on chain waits for this poll: keep it short. A probe that
        // took longer than the period (a Python interpreter starting, say) is followed by
        // the next one at once.
        tokio::time::sleep_until((tick + Duration::from_millis(100)).into()).await;
    }
}

/// Run a healthcheck test (`["CMD", ...]` or `["CMD-SHELL", "..."]`) once inside the
/// container, as Docker would. None when it could not be run or timed out.
pub async fn probe(
    engine: &Engine,
    container: &str,
    test: &[String],
    timeout: Duration,
) -> Option<Probe> {
    let argv: Vec<String> = match test.split_first()? {
        (kind, rest) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        (kind, [cmd]) if kind == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), cmd.clone()],
        _ => return None,
    };
    let config = bollard::models::ExecConfig {
        cmd: Some(argv),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    // A healthcheck's output is short; keep its head.
    let deadline = std::time::Instant::now() + timeout;
    let (code, output) = super::run::exec_config(engine, container, config, deadline, 4096)
        .await
        .ok()?;
    Some(Probe {
        exit_code: code?,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_that_cannot_run_its_program_is_told_from_one_that_fails() {
        let p = |exit_code: i64, output: &str| Probe {
            exit_code,
            output: output.into(),
        };
        assert!(p(127, "").cannot_run());
        assert!(p(
            126,
            "OCI runtime exec failed: exec: \"curl\": executable file not found in $PATH"
        )
        .cannot_run());
        assert!(
            p(1, "sh: curl: not found\n").cannot_run(),
            "busybox sh, with `|| exit 1`"
        );
        assert!(p(1, "/bin/sh: 1: curl: not found\n").cannot_run(), "dash");
        assert!(
            p(1, "bash: line 1: curl: command not found\n").cannot_run(),
            "bash"
        );
        assert!(!p(1, "wget: server returned error: HTTP/1.1 404 Not Found\n").cannot_run());
        assert!(
            !p(1, "error: page not found\n").cannot_run(),
            "a sentence, not a program name"
        );
        assert!(
            !p(0, "sh: curl: not found\n").cannot_run(),
            "it passed anyway"
        );
        assert!(!p(1, "").cannot_run());
    }
}
