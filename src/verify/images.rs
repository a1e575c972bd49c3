//! The images a verification needs: services' `image:`s and the images their Dockerfiles'
//! `FROM` lines name. Each is used as it is, pulled (all at once, at most
//! [`PULLS_AT_ONCE`], with the user's credentials), or missing, as `pull_policy`, `--pull`
//! and `--offline` say. Pulls start before any build, and whoever waits for an image
//! (a build, a container) goes on the moment that one image is there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::docker::auth::{self, AuthMap, Credentials, DockerConfig};
use crate::docker::offline::relevant_images;
use crate::docker::pull::{self, Fault, PullFailure};
use crate::events::{Event, Events};
use crate::plan::PullPolicy;
use crate::plan::{ImageSource, SystemPlan};
use crate::runtime::Runtime;

/// Images pulled at once, at most. Docker Compose pulls every missing image at once; a
/// bound keeps a large project from opening dozens of registry connections (the engine
/// itself fetches three layers of one image at a time).
pub const PULLS_AT_ONCE: usize = 8;

/// Local images named in evidence and prompts, at most.
pub const LOCAL_IMAGES_SHOWN: usize = 30;

/// One image's pull, for the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PullReport {
    pub image: String,
    pub secs: f64,
    pub bytes: u64,
    pub ok: bool,
}

/// Where an image stands.
#[derive(Debug, Clone)]
pub enum Avail {
    Pending,
    /// Its local ID.
    Ready(String),
    /// Not there and not to be had: the system's failure (a wrong name, `never`, offline).
    Missing(String),
    /// The environment's failure: the run ends (exit 3).
    Broken(PullFailure),
}

/// What to do with one image.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Local(String),
    Pull,
    Missing(String),
}

/// The images of one verification.
pub struct Images<'a, R: Runtime> {
    rt: &'a R,
    events: &'a Events,
    stall: Duration,
    decisions: Vec<(String, Decision)>,
    states: HashMap<String, watch::Sender<Avail>>,
    /// Credentials by registry, looked up once each.
    creds: Mutex<HashMap<String, Result<Option<Credentials>, PullFailure>>>,
    config: Result<DockerConfig, auth::AuthError>,
    reports: Mutex<Vec<PullReport>>,
    /// The first environment failure, which ends the run.
    broken: watch::Sender<Option<PullFailure>>,
    local: Vec<String>,
}

/// How the command line overrides pulling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullSettings {
    /// `--pull always|missing|never`: every service's policy, and `always` pulls FROM
    /// images too.
    pub pull: Option<PullPolicy>,
    /// `--offline`: no registry is reached; an image that is not local is missing.
    pub offline: bool,
}

/// The images `project` needs and the policy each is fetched by (the strongest, when
/// several services want one image), in a stable order.
pub fn wanted(plan: &SystemPlan, settings: PullSettings) -> Vec<(String, PullPolicy)> {
    let mut out: Vec<(String, PullPolicy)> = Vec::new();
    let mut add = |image: &String, policy: PullPolicy| {
        match out.iter_mut().find(|(i, _)| i == image) {
            Some((_, p)) => *p = stronger(*p, policy),
            None => out.push((image.clone(), policy)),
        };
    };
    for service in plan.services.iter().chain(&plan.checks) {
        match &service.image {
            Some(ImageSource::Build(b)) => {
                let policy = match settings.pull {
                    Some(PullPolicy::Never) => PullPolicy::Never,
                    Some(PullPolicy::Always) => PullPolicy::Always,
                    _ if b.pull => PullPolicy::Always,
                    _ => PullPolicy::Missing,
                };
                for image in &b.from {
                    add(image, policy);
                }
            }
            Some(ImageSource::Pull { reference, policy }) => {
                let policy = match settings.pull.unwrap_or(*policy) {
                    PullPolicy::Build => PullPolicy::Never,
                    p => p,
                };
                add(reference, policy);
            }
            None => {}
        }
    }
    if settings.offline {
        for (_, p) in out.iter_mut() {
            *p = PullPolicy::Never;
        }
    }
    out
}

/// Of two policies for one image, the one that pulls more.
fn stronger(a: PullPolicy, b: PullPolicy) -> PullPolicy {
    let rank = |p: PullPolicy| match p {
        PullPolicy::Always => (3, Duration::ZERO),
        PullPolicy::Refresh(d) => (2, Duration::MAX - d),
        PullPolicy::Missing => (1, Duration::ZERO),
        PullPolicy::Never | PullPolicy::Build => (0, Duration::ZERO),
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

impl<'a, R: Runtime> Images<'a, R> {
    /// Look at what is local and decide, for each image, what to do.
    pub async fn plan(
        rt: &'a R,
        events: &'a Events,
        wanted: Vec<(String, PullPolicy)>,
        settings: PullSettings,
        stall: Duration,
    ) -> Images<'a, R> {
        let local = rt.local_images().await;
        let mut decisions = Vec::new();
        let mut states = HashMap::new();
        for (image, policy) in wanted {
            let here = rt.image_tagged(&image).await;
            let decision = decide(&image, policy, here, settings.offline, &local);
            let state = match &decision {
                Decision::Local(id) => Avail::Ready(id.clone()),
                Decision::Missing(why) => Avail::Missing(why.clone()),
                Decision::Pull => Avail::Pending,
            };
            states.insert(image.clone(), watch::channel(state).0);
            decisions.push((image, decision));
        }
        Images {
            rt,
            events,
            stall,
            decisions,
            states,
            creds: Mutex::new(HashMap::new()),
            config: DockerConfig::load(),
            reports: Mutex::new(Vec::new()),
            broken: watch::channel(None).0,
            local,
        }
    }

    /// Pull every image that needs it, [`PULLS_AT_ONCE`] at a time.
    pub async fn pull_all(&self) {
        let to_pull: Vec<&String> = self
            .decisions
            .iter()
            .filter(|(_, d)| *d == Decision::Pull)
            .map(|(i, _)| i)
            .collect();
        futures_util::stream::iter(to_pull)
            .map(|image| self.pull_one(image))
            .buffer_unordered(PULLS_AT_ONCE)
            .collect::<Vec<()>>()
            .await;
    }

    async fn pull_one(&self, image: &str) {
        let registry = auth::registry_of(image);
        let outcome = match self.credentials(&registry).await {
            Err(f) => Err(PullFailure {
                image: image.to_string(),
                ..f
            }),
            Ok(creds) => {
                self.events.emit(Event::PullStarted {
                    image: image.to_string(),
                });
                let events = self.events;
                let show = |p: &pull::Progress| {
                    events.emit(Event::PullProgress {
                        image: image.to_string(),
                        layers_done: p.layers_done,
                        layers_total: p.layers_total,
                        bytes_done: p.bytes_done,
                        bytes_total: p.bytes_total,
                    })
                };
                let started = std::time::Instant::now();
                let r = self.rt.pull(image, creds.as_ref(), self.stall, &show).await;
                let (secs, bytes) = match &r {
                    Ok(p) => (p.secs, p.bytes),
                    Err(_) => (started.elapsed().as_secs_f64(), 0),
                };
                self.events.emit(Event::PullFinished {
                    image: image.to_string(),
                    secs,
                    bytes,
                    ok: r.is_ok(),
                });
                self.reports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(PullReport {
                        image: image.to_string(),
                        secs,
                        bytes,
                        ok: r.is_ok(),
                    });
                r.map(|_| ())
            }
        };
        let state = match outcome {
            Ok(()) => match self.rt.image_tagged(image).await {
                Some((id, _)) => Avail::Ready(id),
                None => Avail::Missing("the pull ended but the image is not there".into()),
            },
            Err(f) if f.fault.is_environment() => {
                self.broken.send_if_modified(|b| {
                    let first = b.is_none();
                    if first {
                        *b = Some(f.clone());
                    }
                    first
                });
                Avail::Broken(f)
            }
            Err(f) => Avail::Missing(format!(
                "pull {image}: {}\n{}",
                f.message,
                local_evidence(image, &self.local)
            )),
        };
        if let Some(tx) = self.states.get(image) {
            tx.send_replace(state);
        }
    }

    /// The credentials for `registry`, looked up once (a helper is a process).
    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, PullFailure> {
        if let Some(c) = self.cached_creds(registry) {
            return c;
        }
        let found = match &self.config {
            Ok(config) => config.credentials(registry),
            Err(e) => Err(e.clone()),
        }
        .map_err(|e| PullFailure {
            image: String::new(),
            registry: registry.to_string(),
            fault: Fault::Config,
            message: e.0,
        });
        self.creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(registry.to_string(), found.clone());
        found
    }

    fn cached_creds(&self, registry: &str) -> Option<Result<Option<Credentials>, PullFailure>> {
        self.creds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
            .cloned()
    }

    /// Wait until `image` is there, missing or broken.
    pub async fn wait(&self, image: &str) -> Avail {
        let Some(tx) = self.states.get(image) else {
            return Avail::Missing(format!("{image} was not planned"));
        };
        let mut rx = tx.subscribe();
        rx.wait_for(|a| !matches!(a, Avail::Pending))
            .await
            .map(|a| a.clone())
            .unwrap_or_else(|_| Avail::Missing(format!("{image}: the pull was cancelled")))
    }

    /// Resolves with the first environment failure; never otherwise.
    pub async fn broken(&self) -> PullFailure {
        let mut rx = self.broken.subscribe();
        let got = rx
            .wait_for(|b| b.is_some())
            .await
            .ok()
            .and_then(|b| b.clone());
        match got {
            Some(f) => f,
            None => std::future::pending().await,
        }
    }

    /// The first environment failure, if one happened.
    pub fn broken_now(&self) -> Option<PullFailure> {
        self.broken.borrow().clone()
    }

    /// Credentials for the registries of `images`, for a build's `X-Registry-Config`.
    pub async fn auths_for(&self, images: &[String]) -> AuthMap {
        let mut map = AuthMap::new();
        for image in images {
            let registry = auth::registry_of(image);
            if let Ok(Some(c)) = self.credentials(&registry).await {
                map.insert(auth::config_key(&registry), c);
            }
        }
        map
    }

    /// What was pulled, in the order pulls ended.
    pub fn reports(&self) -> Vec<PullReport> {
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What to do with `image` under `policy`, given what is local.
fn decide(
    image: &str,
    policy: PullPolicy,
    here: Option<(String, Option<SystemTime>)>,
    offline: bool,
    local: &[String],
) -> Decision {
    match (policy, here) {
        (PullPolicy::Always, _) => Decision::Pull,
        (PullPolicy::Refresh(every), Some((id, Some(tagged))))
            if tagged + every > SystemTime::now() =>
        {
            Decision::Local(id)
        }
        (PullPolicy::Refresh(_), _) => Decision::Pull,
        (_, Some((id, _))) => Decision::Local(id),
        (PullPolicy::Missing, None) => Decision::Pull,
        (PullPolicy::Never | PullPolicy::Build, None) => {
            let why = if offline {
                format!("{image} is not on this machine, and masgen runs --offline: no registry is reached")
            } else {
                format!("{image} is not on this machine, and its pull_policy (or --pull never) says never to pull it")
            };
            Decision::Missing(format!("{why}\n{}", local_evidence(image, local)))
        }
    }
}

/// "images available locally": the ones like `image` first, then base images, at most
/// [`LOCAL_IMAGES_SHOWN`], never every image of a developer's machine.
pub fn local_evidence(image: &str, local: &[String]) -> String {
    let shown = relevant_images(local, &[image], LOCAL_IMAGES_SHOWN);
    if shown.is_empty() {
        return "images available locally: none".into();
    }
    let more = local.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    format!("images available locally: {}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_of_local_images_are_capped_and_relevant_first() {
        let mut local: Vec<String> = (0..200).map(|i| format!("team/tool{i:03}:1")).collect();
        local.extend(
            [
                "python:3.11-slim",
                "postgres:15",
                "busybox:latest",
                "zeta:1",
            ]
            .map(String::from),
        );
        let shown = relevant_images(&local, &["postgres:16"], 30);
        assert_eq!(shown.len(), 30);
        assert_eq!(shown[0], "postgres:15");
        assert_eq!(&shown[1..3], &["busybox:latest", "python:3.11-slim"]);
        let said = local_evidence("postgres:16", &local);
        assert!(said.ends_with("(and 174 more)"), "{said}");
    }

    #[test]
    fn policies_decide_as_compose_decides() {
        let here = |secs_ago: u64| {
            Some((
                "sha256:1".to_string(),
                Some(SystemTime::now() - Duration::from_secs(secs_ago)),
            ))
        };
        let day = PullPolicy::Refresh(Duration::from_secs(86400));
        assert_eq!(
            decide("a", PullPolicy::Always, here(0), false, &[]),
            Decision::Pull
        );
        assert_eq!(
            decide("a", PullPolicy::Missing, None, false, &[]),
            Decision::Pull
        );
        assert_eq!(
            decide("a", PullPolicy::Missing, here(0), false, &[]),
            Decision::Local("sha256:1".into())
        );
        assert_eq!(decide("a", day, here(90000), false, &[]), Decision::Pull);
        assert_eq!(
            decide("a", day, here(60), false, &[]),
            Decision::Local("sha256:1".into())
        );
        // A tag time the daemon does not know is due.
        assert_eq!(
            decide("a", day, Some(("sha256:1".into(), None)), false, &[]),
            Decision::Pull
        );
        let Decision::Missing(why) = decide("a", PullPolicy::Never, None, true, &[]) else {
            panic!("never pulls")
        };
        assert!(why.contains("--offline"), "{why}");
        assert_eq!(
            stronger(PullPolicy::Never, PullPolicy::Missing),
            PullPolicy::Missing
        );
        assert_eq!(
            stronger(day, PullPolicy::Refresh(Duration::from_secs(60))),
            PullPolicy::Refresh(Duration::from_secs(60))
        );
    }
}
