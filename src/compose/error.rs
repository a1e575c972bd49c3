//! Why a compose project cannot be read: a leaf every reading step shares.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no compose file in {dir}: expected one of docker-compose.yml, docker-compose.yaml, compose.yml, compose.yaml")]
    NotFound { dir: PathBuf },
    #[error("{} (named by {from}) does not exist or is not a file: fix the name; paths are relative to the system's folder", path.display())]
    Listed { path: PathBuf, from: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Interpolation {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key the fidelity rule refuses; the message names the file, line and column.
    #[error("{message}")]
    Refused { message: String },
    #[error("{}:{line}: {message}", path.display())]
    Dotenv {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: service '{service}' depends on '{dependency}', which is not a service in this file: add it or fix the name")]
    UnknownDependency {
        file: String,
        service: String,
        dependency: String,
    },
    #[error("{file}: dependency cycle between services {}: break the cycle in depends_on", services.join(" -> "))]
    Cycle { file: String, services: Vec<String> },
    #[error(
        "{file}: service '{service}' depends on '{dependency}', which runs only with profile(s) {}: activate one (COMPOSE_PROFILES={}) or give '{dependency}' no profiles",
        profiles.join(", "), profiles[0]
    )]
    InactiveDependency {
        file: String,
        service: String,
        dependency: String,
        profiles: Vec<String>,
    },
}

/// A value Compose would not take (the file's error says where it is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid size {0:?}")]
    Size(String),
    #[error("invalid duration {value:?}: {why}")]
    Duration { value: String, why: String },
    #[error("invalid port {0:?}")]
    Port(String),
    #[error("invalid volume {0:?}")]
    Volume(String),
    #[error("bind mount to {0} has no source")]
    BindWithoutSource(String),
    #[error("bind mount option {0}")]
    BindOption(String),
    #[error("device count {0:?} is not a number or `all`")]
    DeviceCount(String),
    #[error("volume type {0:?}: masgen mounts bind, volume and tmpfs only (API 1.41 has no image mounts): refused before anything runs; remove the mount")]
    MountType(String),
    #[error("mode {0} is not a file mode")]
    Mode(String),
    #[error("restart: '{0}' is not a restart policy: use no, always, unless-stopped, on-failure or on-failure:N")]
    Restart(String),
    #[error("pull_policy '{0}' is none of always, never, build, if_not_present, missing, refresh, daily, weekly, every_<duration> (e.g. every_12h, every_2d)")]
    PullPolicy(String),
    #[error("{0} is a remote context, which masgen does not fetch: download it into a folder and name the folder, or name an image with docker-image://")]
    RemoteContext(String),
}
