//! Starting the services: each container is created the moment its image is there, started
//! the moment its `depends_on` conditions hold, and watched until it is ready, done, or
//! failed. Every failure becomes a [`Diagnostic`] here.

use std::time::Instant;

use super::builds::service_image;
use super::{ImageState, ServiceState, Steps};
use crate::diagnose::{tail, Diagnostic, Phase};
use crate::events::Event;
use crate::plan::{Condition, Readiness};
use crate::plan::{Dependency, ServicePlan};
use crate::runtime::health::HealthState;
use crate::runtime::health::{self, Ran, Snapshot, Wait};
use crate::runtime::Refused;
use crate::runtime::{Runtime, RuntimeError, KEEP_LINES};

/// How one service's start ended.
pub(super) enum ServiceOutcome {
    Ready {
        secs: f64,
        health: HealthState,
        /// One per replica.
        containers: Vec<String>,
        ports: Vec<String>,
    },
    Completed {
        secs: f64,
    },
    Failed(Box<Diagnostic>),
}

/// Start every service (those whose build failed have their build's diagnostic, and no
/// outcome here). Returns each service's outcome, or Docker's own failure.
pub(super) async fn start_all(
    steps: &Steps<'_, impl Runtime>,
) -> Vec<(String, Result<ServiceOutcome, RuntimeError>)> {
    let announced = std::sync::atomic::AtomicBool::new(false);
    let tasks = steps.plan.services.iter().map(|s| &s.name).map(|name| {
        let announced = &announced;
        async move {
            let image = image_of(steps, name).await?;
            let image = match image {
                Ok(image) => image,
                Err(d) => return Some((name.clone(), Ok(steps.failed(name, d)))),
            };
            if !announced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                steps.opts.events.emit(Event::Phase {
                    name: "verify: start".into(),
                });
            }
            let outcome = start_service(steps, name, &image).await;
            if outcome.is_err() {
                // Docker itself failed: the run ends with that error, and dependents must
                // not wait for this one.
                steps.set(name, ServiceState::Failed);
            }
            Some((name.clone(), outcome))
        }
    });
    futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The image `name` runs once it is there: built, pulled, or local. None when its build
/// failed (that failure is its diagnostic).
pub(super) async fn image_of(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
) -> Option<Result<String, Diagnostic>> {
    let builds = steps.plan.get(name).is_some_and(|s| s.builds());
    match steps.settled_image(name).await {
        Some(ImageState::Ready(image)) if !builds => Some(
            // Its own image: local, or when its pull ends.
            service_image(&steps.plan, steps.imgs, name, &image)
                .await
                .map(|()| image),
        ),
        Some(ImageState::Ready(image)) => Some(Ok(image)),
        _ if !builds => Some(Err(Diagnostic::new(name, Phase::Image, "no image to run"))),
        _ => None,
    }
}

/// Create its containers (one per replica), wait for the dependencies' conditions, start
/// them and wait until every one is ready: a service is ready when all its replicas are.
async fn start_service(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    image: &str,
) -> Result<ServiceOutcome, RuntimeError> {
    let plan = steps.plan.get(name).expect("every service is planned");
    if let Err(d) = wait_for_sources(steps, name, &plan.created_after).await {
        return Ok(steps.failed(name, d));
    }
    let containers: Vec<String> = (1..=plan.replicas)
        .map(|n| steps.settings.scope.replica(name, n))
        .collect();
    // Created now, started when its dependencies allow (as compose does): creation is off
    // the path from one dependency level to the next.
    for (i, container) in containers.iter().enumerate() {
        if let Err(d) = create(steps, plan, image, container).await? {
            return Ok(steps.failed(name, of_replica(d, plan, i, container)));
        }
    }
    if let Err(d) = wait_for_dependencies(steps, name, &plan.depends_on).await {
        return Ok(steps.failed(name, d));
    }
    let started = Instant::now();
    let runs = containers.iter().map(|c| run_replica(steps, plan, c));
    let waits = futures_util::future::join_all(runs).await;
    let secs = started.elapsed().as_secs_f64();
    let mut readiness = plan.readiness;
    let mut completed = 0;
    for (i, (container, wait)) in containers.iter().zip(waits).enumerate() {
        let (wait, seen) = match wait? {
            Ok(w) => w,
            Err(d) => return Ok(steps.failed(name, of_replica(d, plan, i, container))),
        };
        readiness = seen;
        match wait {
            Wait::Ready => {}
            Wait::Completed => completed += 1,
            failed => {
                let d = failed_wait(steps, name, container, seen, failed).await;
                return Ok(steps.failed(name, of_replica(d, plan, i, container)));
            }
        }
    }
    if completed == containers.len() {
        steps.set(name, ServiceState::Completed);
        steps.opts.events.emit(Event::ServiceReady {
            service: name.to_string(),
            secs,
        });
        return Ok(ServiceOutcome::Completed { secs });
    }
    Ok(ready(steps, name, containers, readiness, secs).await)
}

/// Start one container of a service, run its `post_start` hooks, and wait until it is
/// ready, done, or failed; with the readiness it was judged by (an image's HEALTHCHECK
/// counts like the compose file's).
async fn run_replica(
    steps: &Steps<'_, impl Runtime>,
    plan: &ServicePlan,
    container: &str,
) -> Result<Result<(Wait, Readiness), Diagnostic>, RuntimeError> {
    let name = plan.name.as_str();
    if let Err(d) = start(steps, name, container).await? {
        return Ok(Err(d));
    }
    steps.set(name, ServiceState::Started);
    steps.opts.events.emit(Event::ContainerStarted {
        service: name.to_string(),
        container: container.to_string(),
    });
    if let Err(d) = post_start(steps, name, container, &plan.post_start).await {
        return Ok(Err(d));
    }
    let mut readiness = plan.readiness;
    if let (Readiness::Settle(_), Some(s)) = (readiness, steps.rt.snapshot(container).await) {
        if s.health.checked() {
            readiness = Readiness::Healthcheck;
        }
    }
    let deadline = Instant::now() + steps.opts.health_timeout;
    let wait = steps.rt.wait_ready(container, readiness, deadline).await;
    Ok(Ok((wait, readiness)))
}

/// A diagnostic of one replica names it, when the service has several.
fn of_replica(mut d: Diagnostic, plan: &ServicePlan, i: usize, container: &str) -> Diagnostic {
    if plan.replicas > 1 {
        d.summary = format!(
            "replica {} of {} ({container}): {}",
            i + 1,
            plan.replicas,
            d.summary
        );
    }
    d
}

/// A service taking another's volumes or joining its namespaces can only be created once
/// that container exists.
async fn wait_for_sources(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    sources: &[String],
) -> Result<(), Diagnostic> {
    for source in sources {
        let mut rx = steps.states[source].subscribe();
        let failed = rx
            .wait_for(|s| *s != ServiceState::Pending)
            .await
            .map(|s| *s == ServiceState::Failed)
            .unwrap_or(true);
        if failed {
            return Err(Diagnostic::not_started(
                name,
                source,
                format!("not started: needs the container of {source}, which failed"),
            ));
        }
    }
    Ok(())
}

/// Create the container, join its other networks, put its secrets and configs in. The
/// container's own settings are judged first, then its secrets and configs.
pub(super) async fn create(
    steps: &Steps<'_, impl Runtime>,
    plan: &ServicePlan,
    image: &str,
    container: &str,
) -> Result<Result<(), Diagnostic>, RuntimeError> {
    let name = plan.name.as_str();
    let planned = plan.container.as_ref().and_then(|spec| {
        let files = plan.files.as_ref()?;
        Ok((spec, files))
    });
    let (spec, files) = match planned {
        Ok(planned) => planned,
        Err(e) => return Ok(Err(refused(steps, name, Refused::Spec(e.to_string())))),
    };
    let with = crate::runtime::container::Attachments {
        networks: &steps.networks,
        volumes: &steps.volumes,
        settings: &steps.settings,
        files,
    };
    let made = steps
        .rt
        .create(container, &steps.opts.run_id, name, spec, image, &with)
        .await?;
    Ok(made.map_err(|why| refused(steps, name, why)))
}

/// A container its runtime would not create or start: a plan it cannot express is the
/// service's error as it is; a refusal says what was refused, with the runtime's words.
fn refused(steps: &Steps<'_, impl Runtime>, name: &str, why: Refused) -> Diagnostic {
    let d = match why.what() {
        None => Diagnostic::new(name, Phase::Start, why.words()),
        Some(what) => Diagnostic::new(name, Phase::Start, what).evidence(why.words()),
    };
    d.files(steps.plan.implicated(name))
}

/// Wait until every `depends_on` condition holds. An optional dependency (`required:
/// false`) that failed is warned about, as compose does, and the service starts anyway.
async fn wait_for_dependencies(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    deps: &[Dependency],
) -> Result<(), Diagnostic> {
    for Dependency {
        service: dep,
        condition,
        optional,
    } in deps
    {
        let mut rx = steps.states[dep].subscribe();
        let ok = rx
            .wait_for(|s| match condition {
                Condition::ServiceStarted => *s != ServiceState::Pending,
                Condition::ServiceHealthy => matches!(
                    s,
                    ServiceState::Ready | ServiceState::Completed | ServiceState::Failed
                ),
                Condition::ServiceCompletedSuccessfully => {
                    matches!(s, ServiceState::Completed | ServiceState::Failed)
                }
            })
            .await
            .map(|s| *s != ServiceState::Failed)
            .unwrap_or(false);
        if !ok && *optional {
            steps.opts.events.warn(format!(
                "{name}: its optional dependency {dep} failed (required: false): starting it anyway"
            ));
            continue;
        }
        if !ok {
            return Err(Diagnostic::not_started(
                name,
                dep,
                format!("not started: depends on {dep}, which failed"),
            ));
        }
    }
    Ok(())
}

/// Start the created container.
pub(super) async fn start(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    container: &str,
) -> Result<Result<(), Diagnostic>, RuntimeError> {
    let Err(why) = steps.rt.start(container).await else {
        return Ok(Ok(()));
    };
    let msg = why.words();
    // Another program on this machine holds a port --execute publishes: nothing in the
    // system is wrong, so no model is asked to change it. Two of the system's own services
    // publishing one port is the system's fault, and goes on as a diagnostic.
    if let Some(port) = held_port(msg).filter(|p| !published_by_another(steps, name, *p)) {
        return Err(RuntimeError::HostPortInUse {
            service: name.to_string(),
            message: format!("port {port}: {}", held_reason(msg)),
        });
    }
    // Devices (GPUs) the engine has no driver for are this machine's lack.
    if msg.contains("could not select device driver") {
        return Err(RuntimeError::DevicesUnavailable {
            service: name.to_string(),
            message: msg.to_string(),
        });
    }
    Ok(Err(refused(steps, name, why)))
}

/// Run the service's `post_start` hooks in order, as Compose runs them once its container
/// started: one that exits non-zero, or has not ended by the health timeout, fails the
/// service in phase start with the hook's own output as the evidence.
async fn post_start(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    container: &str,
    hooks: &[crate::plan::HookSpec],
) -> Result<(), Diagnostic> {
    for (i, hook) in hooks.iter().enumerate() {
        let deadline = Instant::now() + steps.opts.health_timeout;
        let which = format!("post_start hook {} ({})", i + 1, hook.command.join(" "));
        let (summary, evidence) = match steps.rt.exec(container, hook, deadline).await {
            Ok(Ran {
                exit_code: Some(0), ..
            }) => continue,
            Ok(Ran {
                exit_code: Some(code),
                output,
            }) => (format!("{which} exited with code {code}"), output),
            Ok(Ran {
                exit_code: None,
                output,
            }) => (
                format!(
                    "{which} did not end within the health timeout ({} s)",
                    steps.opts.health_timeout.as_secs()
                ),
                output,
            ),
            Err(why) => (format!("{which} could not run"), why.words().to_string()),
        };
        let d = Diagnostic::new(name, Phase::Start, summary).evidence(evidence);
        return Err(d.files(steps.plan.implicated(name)));
    }
    Ok(())
}

/// A ready service: its health and where its ports answer.
async fn ready(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    containers: Vec<String>,
    readiness: Readiness,
    secs: f64,
) -> ServiceOutcome {
    steps.set(name, ServiceState::Ready);
    steps.opts.events.emit(Event::ServiceReady {
        service: name.to_string(),
        secs,
    });
    let mut ports = Vec::new();
    for container in &containers {
        let published = steps.rt.published_ports(container).await.into_iter();
        ports.extend(published.map(|(p, h)| format!("{p} -> {h}")));
    }
    let health = if readiness == Readiness::Healthcheck {
        HealthState::Healthy
    } else {
        HealthState::None
    };
    ServiceOutcome::Ready {
        secs,
        health,
        containers,
        ports,
    }
}

/// The one place a failed wait becomes a diagnostic: what happened, and its evidence (the
/// exit code, Docker's error, the probes' output, the last log lines).
async fn failed_wait(
    steps: &Steps<'_, impl Runtime>,
    name: &str,
    container: &str,
    readiness: Readiness,
    wait: Wait,
) -> Diagnostic {
    let logs = match wait {
        Wait::Gone => String::new(),
        _ => steps.rt.logs_tail(container, KEEP_LINES).await,
    };
    let (phase, summary, head, snapshot) = match wait {
        Wait::Exited(s) => {
            let code = s.exit_code.unwrap_or(-1);
            let summary = match (readiness, code) {
                (Readiness::Completes, _) => format!("one-shot job exited with code {code}"),
                (_, 0) => "exited with code 0, but it should keep running".to_string(),
                _ => format!(
                    "crashed: exited with code {code}{}",
                    if s.oom_killed { " (out of memory)" } else { "" }
                ),
            };
            (Phase::Crash, summary, String::new(), Some(s))
        }
        Wait::ProbeCannotRun(s, p) => {
            let test = s
                .test
                .as_ref()
                .map(|(t, _)| t.join(" "))
                .unwrap_or_default();
            let head = format!("healthcheck: {test}\nmasgen's runs of it exited {} every time, through the start period and for at least {}s: {}\n", p.exit_code, health::CANNOT_RUN_FOR.as_secs(), p.output.trim());
            let summary = format!("unhealthy: its healthcheck cannot run in the container (exit {}: the program is not in the image)", p.exit_code);
            (Phase::Health, summary, head, Some(s))
        }
        Wait::Unhealthy(s) => (
            Phase::Health,
            "unhealthy: its healthcheck keeps failing".to_string(),
            String::new(),
            Some(s),
        ),
        Wait::TimedOut(s) => {
            let what = match readiness {
                Readiness::Completes => "did not finish",
                _ => "not ready",
            };
            let secs = steps.opts.health_timeout.as_secs();
            let summary = format!("{what} after {secs}s (--health-timeout)");
            (Phase::Health, summary, String::new(), s)
        }
        Wait::Gone | Wait::Ready | Wait::Completed => {
            return Diagnostic::new(
                name,
                Phase::Start,
                "the container disappeared while starting",
            )
        }
    };
    Diagnostic::new(name, phase, summary)
        .evidence(format!("{head}{}", evidence(snapshot.as_ref(), &logs)))
        .files(steps.plan.implicated(name))
}

/// Whether a service of the system other than `name` publishes host port `port`.
fn published_by_another(steps: &Steps<'_, impl Runtime>, name: &str, port: u16) -> bool {
    steps
        .plan
        .services
        .iter()
        .chain(&steps.plan.checks)
        .filter(|s| s.name != name)
        .any(|s| s.host_ports.contains(&port))
}

/// The root-cause lines of a failed container: its exit code (and OOM), Docker's own
/// error, the health probes' output, and the last log lines.
pub(super) fn evidence(s: Option<&Snapshot>, logs: &str) -> String {
    let mut e = String::new();
    if let Some(s) = s {
        if let Some(code) = s.exit_code.filter(|_| !s.running) {
            let oom = if s.oom_killed {
                " (killed: out of memory)"
            } else {
                ""
            };
            e.push_str(&format!("exit code: {code}{oom}\n"));
        }
        if let Some(err) = &s.error {
            e.push_str(&format!("docker: {err}\n"));
        }
        if !s.probes.is_empty() {
            e.push_str(&format!(
                "health probe output (latest last):\n{}\n",
                s.probes.join("\n")
            ));
        }
    }
    e.push_str(&format!("last log lines:\n{}", tail(logs, 30)));
    e
}

/// The host port of Docker's "port is already allocated" (another container holds it) or
/// "address already in use" (another program does).
fn held_port(msg: &str) -> Option<u16> {
    let before = if let Some(i) = msg.find(" failed: port is already allocated") {
        &msg[..i]
    } else if let Some(i) = msg.find(": bind: address already in use") {
        &msg[..i]
    } else {
        return None;
    };
    before.rsplit(':').next()?.trim().parse().ok()
}

fn held_reason(msg: &str) -> &'static str {
    if msg.contains("port is already allocated") {
        "another container publishes it"
    } else {
        "another program listens on it"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_host_ports_are_read_from_dockers_two_messages() {
        let proxy = "Docker responded with status code 500: driver failed programming external connectivity on endpoint x-web-1 (21dd): Error starting userland proxy: listen tcp4 0.0.0.0:18555: bind: address already in use";
        assert_eq!(
            (held_port(proxy), held_reason(proxy)),
            (Some(18555), "another program listens on it")
        );
        let allocated = "Docker responded with status code 500: driver failed programming external connectivity on endpoint x-b-1 (9f): Bind for 0.0.0.0:8080 failed: port is already allocated";
        assert_eq!(
            (held_port(allocated), held_reason(allocated)),
            (Some(8080), "another container publishes it")
        );
        assert_eq!(
            held_port("OCI runtime create failed: exec: \"nope\": not found"),
            None
        );
    }
}
