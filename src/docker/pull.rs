//! Pulling images: with the user's registry credentials, with progress, with no fixed
//! deadline (a pull fails only when the registry goes quiet for the stall window), and
//! with every failure classified where it happens: the environment's (credentials, an
//! unreachable or failing registry: exit 3, never the model's business) or the system's
//! (a name or tag that does not exist: the model's to fix).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::auth;
use super::engine::split_image;
use super::Engine;
pub use crate::runtime::pull::{Credentials, Fault, Progress, PullFailure, Pulled};

/// Whose problem a pull error is, from what the daemon said. `sent_credentials`: whether
/// masgen had credentials for the registry. Docker Hub answers a repository that does not
/// exist as it answers a private one ("pull access denied ... does not exist or may
/// require 'docker login'"): with no credentials configured that is most likely a wrong
/// name, the system's; with credentials, they did not open it.
pub fn classify(message: &str, sent_credentials: bool) -> Fault {
    let m = message.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if any(&["does not exist or may require"]) {
        return if sent_credentials {
            Fault::Credentials
        } else {
            Fault::NotFound
        };
    }
    if any(&[
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
        "denied",
        "incorrect username or password",
        "error getting credentials",
    ]) {
        return Fault::Credentials;
    }
    if any(&[
        "manifest unknown",
        "name unknown",
        "not found",
        "invalid reference format",
        "repository name must",
        "no matching manifest",
    ]) {
        return Fault::NotFound;
    }
    if any(&[
        "toomanyrequests",
        "too many requests",
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "unexpected http status: 5",
        "status 5",
    ]) {
        return Fault::Registry;
    }
    // Dial errors, DNS, TLS, a cut connection, a stall: and anything else the daemon says,
    // which is its own or the network's, not something a change to the system fixes.
    Fault::Unreachable
}

/// Each layer's bytes, from the daemon's status lines.
#[derive(Default)]
struct Layers(BTreeMap<String, (u64, u64, bool)>);

impl Layers {
    /// Take one status line; true when it changed what a bar shows.
    fn take(&mut self, info: &bollard::models::CreateImageInfo) -> bool {
        let (Some(id), Some(status)) = (info.id.as_ref(), info.status.as_deref()) else {
            return false;
        };
        let entry = match status {
            "Pulling fs layer" | "Waiting" => {
                self.0.entry(id.clone()).or_default();
                return true;
            }
            _ => match self.0.get_mut(id) {
                Some(e) => e,
                None => return false,
            },
        };
        match status {
            "Downloading" => {
                if let Some(d) = &info.progress_detail {
                    entry.0 = d.current.unwrap_or(0).max(0) as u64;
                    entry.1 = d.total.unwrap_or(0).max(0) as u64;
                }
            }
            "Download complete" | "Verifying Checksum" => entry.0 = entry.1,
            "Pull complete" | "Already exists" => {
                entry.0 = entry.1;
                entry.2 = true;
            }
            _ => return false,
        }
        true
    }

    fn progress(&self) -> Progress {
        Progress {
            layers_done: self.0.values().filter(|l| l.2).count(),
            layers_total: self.0.len(),
            bytes_done: self.0.values().map(|l| l.0).sum(),
            bytes_total: self.0.values().map(|l| l.1).sum(),
        }
    }
}

/// Pull `image` with `creds`. It fails when the daemon sends nothing for `stall`; progress
/// goes to `on_progress` at most every 200 ms and when a layer completes.
pub async fn pull(
    engine: &Engine,
    image: &str,
    creds: Option<&Credentials>,
    stall: Duration,
    on_progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Pulled, PullFailure> {
    let started = Instant::now();
    let registry = auth::registry_of(image);
    let fail = |message: String, fault: Fault| PullFailure {
        image: image.to_string(),
        registry: registry.clone(),
        fault,
        message,
    };
    let (repo, tag) = split_image(image);
    let mut opts = bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(repo);
    // A digest reference is pulled by its digest, not as `latest`.
    opts = match image.split_once('@') {
        Some((_, digest)) => opts.tag(digest),
        None => opts.tag(tag),
    };
    let mut stream = engine.docker.create_image(
        Some(opts.build()),
        None,
        creds.map(auth::docker_credentials),
    );
    let mut layers = Layers::default();
    let mut shown = Instant::now();
    let mut done_shown = 0;
    loop {
        match tokio::time::timeout(stall, stream.next()).await {
            Ok(Some(Ok(info))) => {
                if let Some(e) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
                    let fault = classify(&e, creds.is_some());
                    return Err(fail(e, fault));
                }
                if layers.take(&info) {
                    let p = layers.progress();
                    if p.layers_done != done_shown || shown.elapsed() >= Duration::from_millis(200)
                    {
                        done_shown = p.layers_done;
                        shown = Instant::now();
                        on_progress(&p);
                    }
                }
            }
            Ok(Some(Err(e))) => {
                let message = docker_message(&e);
                let fault = classify(&message, creds.is_some());
                return Err(fail(message, fault));
            }
            Ok(None) => {
                let p = layers.progress();
                on_progress(&p);
                return Ok(Pulled {
                    secs: started.elapsed().as_secs_f64(),
                    bytes: p.bytes_total,
                });
            }
            Err(_) => {
                return Err(fail(
                    format!(
                        "the pull made no progress for {} s (--pull-stall): the registry does not answer",
                        stall.as_secs()
                    ),
                    Fault::Unreachable,
                ))
            }
        }
    }
}

/// The daemon's own words for a failed request.
fn docker_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_what_the_daemon_says() {
        // As the 20.10 daemon words them (FACTS.md, and the registry tests).
        let cases = [
            ("Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host", Fault::Unreachable),
            ("Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", Fault::Unreachable),
            ("Head \"http://127.0.0.1:5000/v2/app/manifests/1\": no basic auth credentials", Fault::Credentials),
            ("unauthorized: authentication required", Fault::Credentials),
            ("manifest for 127.0.0.1:5000/app:2 not found: manifest unknown: manifest unknown", Fault::NotFound),
            ("received unexpected HTTP status: 503 Service Unavailable", Fault::Registry),
            ("toomanyrequests: You have reached your pull rate limit", Fault::Registry),
            ("invalid reference format: repository name must be lowercase", Fault::NotFound),
        ];
        for (said, fault) in cases {
            assert_eq!(classify(said, false), fault, "{said}");
        }
        let hub = "pull access denied for nosuch/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied";
        assert_eq!(classify(hub, false), Fault::NotFound);
        assert_eq!(classify(hub, true), Fault::Credentials);
    }

    #[test]
    fn messages_say_what_to_do() {
        let f = |fault| PullFailure {
            image: "127.0.0.1:5000/app:1".into(),
            registry: "127.0.0.1:5000".into(),
            fault,
            message: "said".into(),
        };
        assert!(f(Fault::Credentials)
            .to_string()
            .contains("docker login 127.0.0.1:5000"));
        assert!(f(Fault::Unreachable).to_string().contains("--offline"));
        assert!(Fault::Unreachable.is_environment() && !Fault::NotFound.is_environment());
    }

    #[test]
    fn progress_counts_layers_and_bytes() {
        let line =
            |id: &str, status: &str, cur: i64, total: i64| bollard::models::CreateImageInfo {
                id: Some(id.into()),
                status: Some(status.into()),
                progress_detail: Some(bollard::models::ProgressDetail {
                    current: Some(cur),
                    total: Some(total),
                }),
                ..Default::default()
            };
        let mut l = Layers::default();
        assert!(l.take(&line("a", "Pulling fs layer", 0, 0)));
        assert!(l.take(&line("b", "Pulling fs layer", 0, 0)));
        assert!(l.take(&line("a", "Downloading", 50, 100)));
        assert!(l.take(&line("b", "Downloading", 10, 200)));
        assert_eq!(
            l.progress(),
            Progress {
                layers_done: 0,
                layers_total: 2,
                bytes_done: 60,
                bytes_total: 300
            }
        );
        assert!(l.take(&line("a", "Pull complete", 0, 0)));
        assert!(!l.take(&line("zzz", "Extracting", 1, 2)));
        let p = l.progress();
        assert_eq!((p.layers_done, p.bytes_done), (1, 110));
    }
}
