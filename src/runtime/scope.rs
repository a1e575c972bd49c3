//! What a run's objects are named and labelled, so that any number of verifications run
//! side by side on one engine and each one's cleanup only takes what is its own, or what
//! belongs to runs that are over.
//!
//! While verifying, names carry the run: `<project>-<run>-<service>-1`,
//! `<project>-<run>_<network>`, `<project>-<run>_<volume>`. A kept system (`--keep`,
//! `--execute`) takes the project's own names, as `docker compose up` would, and honours
//! `container_name:`. Inside the network, services keep their compose names as aliases.
//!
//! Every object carries the compose labels, masgen's run label, and who made it: the host,
//! the process id and when the process started. A run is over when its process is gone
//! from this host, or, made on another host (a remote engine), when it started more than
//! [`MAX_RUN_AGE`] ago. A kept system is never a leftover: only `masgen down` removes it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Label on everything masgen creates.
pub const MANAGED_LABEL: &str = "io.masgen.managed";
/// Label naming the run that created an object.
pub const RUN_LABEL: &str = "io.masgen.run";
/// Compose's own labels, so `docker compose ls/ps` and other tools see the project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const HOST_LABEL: &str = "io.masgen.host";
pub const PID_LABEL: &str = "io.masgen.pid";
pub const STARTED_LABEL: &str = "io.masgen.started";
pub const KEPT_LABEL: &str = "io.masgen.kept";

/// A run made on another host is over once it started this long ago: verifications are
/// bounded by their health timeouts, and none has been seen to take an hour.
pub const MAX_RUN_AGE: Duration = Duration::from_secs(6 * 3600);

/// How one run names its objects.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The compose project name (the label).
    pub project: String,
    /// What names start with: the project's name, or it and the run while verifying.
    pub prefix: String,
    /// The system is left running under the project's own names.
    pub kept: bool,
    /// `container_name:`s, honoured only when kept.
    pub container_names: HashMap<String, String>,
}

impl Scope {
    /// A verification's own names: the run in every name.
    pub fn run(project: &str, run_id: &str) -> Scope {
        let tag = blake3::hash(run_id.as_bytes()).to_hex();
        Scope {
            project: project.to_string(),
            prefix: format!("{project}-{}", &tag[..6]),
            kept: false,
            container_names: HashMap::new(),
        }
    }

    /// A kept system's names: the project's own, and its `container_name:`s.
    pub fn kept(project: &str, container_names: HashMap<String, String>) -> Scope {
        Scope {
            project: project.to_string(),
            prefix: project.to_string(),
            kept: true,
            container_names,
        }
    }

    pub fn container(&self, service: &str) -> String {
        self.container_names
            .get(service)
            .cloned()
            .unwrap_or_else(|| format!("{}-{service}-1", self.prefix))
    }

    /// The `n`-th container of a service (from 1), named as Compose names replicas.
    pub fn replica(&self, service: &str, n: u32) -> String {
        if n == 1 {
            self.container(service)
        } else {
            format!("{}-{service}-{n}", self.prefix)
        }
    }

    /// A network or volume of the project (`explicit`: its top-level `name:`, used when
    /// kept; while verifying the run's own name is used instead).
    pub fn object(&self, name: &str, explicit: Option<&str>) -> String {
        match explicit.filter(|_| self.kept) {
            Some(e) => e.to_string(),
            None => format!("{}_{name}", self.prefix),
        }
    }

    /// The labels of an object of this run (of `service`, for a container).
    pub fn labels(&self, run: &str, service: Option<&str>) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = [
            (MANAGED_LABEL.to_string(), "1".to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
            (RUN_LABEL.to_string(), run.to_string()),
            (HOST_LABEL.to_string(), host().to_string()),
            (PID_LABEL.to_string(), std::process::id().to_string()),
            (STARTED_LABEL.to_string(), started().to_string()),
        ]
        .into();
        if self.kept {
            l.insert(KEPT_LABEL.to_string(), "1".to_string());
        }
        if let Some(s) = service {
            l.insert(SERVICE_LABEL.to_string(), s.to_string());
        }
        l
    }
}

/// This host's name.
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    })
}

/// When this process started, in seconds since the epoch.
fn started() -> u64 {
    static STARTED: OnceLock<u64> = OnceLock::new();
    *STARTED.get_or_init(now)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether the run that made an object with these labels is over (see the module's doc).
pub fn run_is_over(labels: &HashMap<String, String>) -> bool {
    if labels.contains_key(KEPT_LABEL) {
        return false;
    }
    let started: Option<u64> = labels.get(STARTED_LABEL).and_then(|s| s.parse().ok());
    let pid: Option<u32> = labels.get(PID_LABEL).and_then(|s| s.parse().ok());
    match (labels.get(HOST_LABEL), pid, started) {
        (Some(h), Some(pid), _) if h == host() => !process_alive(pid),
        (Some(_), _, Some(started)) => now().saturating_sub(started) > MAX_RUN_AGE.as_secs(),
        // Made by a masgen that did not say who it was: over, as it always counted.
        _ => true,
    }
}

/// Whether `pid` is a masgen process on this host.
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim().starts_with("masgen"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_names_carry_the_run_and_kept_ones_are_the_projects() {
        let a = Scope::run("shop", "1-2");
        let b = Scope::run("shop", "1-3");
        assert_ne!(a.container("web"), b.container("web"));
        assert!(a.container("web").starts_with("shop-") && a.container("web").ends_with("-web-1"));
        assert_eq!(
            a.object("default", Some("custom")),
            format!("{}_default", a.prefix)
        );
        let k = Scope::kept("shop", [("db".to_string(), "my-db".to_string())].into());
        assert_eq!(
            (k.container("web"), k.container("db")),
            ("shop-web-1".into(), "my-db".into())
        );
        assert_eq!(k.object("data", None), "shop_data");
        assert_eq!(k.object("data", Some("custom")), "custom");
    }

    #[test]
    fn a_run_is_over_when_its_process_is_gone_or_it_is_old_elsewhere() {
        let mine = Scope::run("p", "r").labels("r", None);
        assert!(!run_is_over(&mine), "this process is alive");
        let mut gone = mine.clone();
        gone.insert(PID_LABEL.into(), "4000000000".into());
        assert!(run_is_over(&gone));
        let mut remote = mine.clone();
        remote.insert(HOST_LABEL.into(), "another-host".into());
        assert!(!run_is_over(&remote), "started just now elsewhere");
        remote.insert(STARTED_LABEL.into(), "1000".into());
        assert!(run_is_over(&remote));
        let mut kept = gone.clone();
        kept.insert(KEPT_LABEL.into(), "1".into());
        assert!(!run_is_over(&kept), "a kept system is never a leftover");
        assert!(run_is_over(&HashMap::new()));
    }
}
