//! Images from a registry: the credentials a pull sends, how far it is, what it took, and
//! whose problem a failed one is.

use std::collections::HashMap;

/// One registry's credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: String,
    /// The registry's key, as the config file names it.
    pub server: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.server)
    }
}

/// The registry an image reference names, as the docker CLI reads it: the first path part
/// when it has a `.` or a `:` or is `localhost`, else Docker Hub (`docker.io`).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "index.docker.io" || first == "registry-1.docker.io" {
                "docker.io".to_string()
            } else {
                first.to_string()
            }
        }
        _ => "docker.io".to_string(),
    }
}

/// Credentials by registry key, for a build's FROM images.
pub type AuthMap = HashMap<String, Credentials>;

/// Whose problem a failed pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Credentials missing or refused.
    Credentials,
    /// The docker config or its credential helper could not give credentials.
    Config,
    /// The registry cannot be reached, or stopped answering.
    Unreachable,
    /// The registry answered with its own error (5xx, rate limit).
    Registry,
    /// The name or tag does not exist: the system names a wrong image.
    NotFound,
}

impl Fault {
    /// Whether the run ends (exit 3) instead of the model being asked to fix it.
    pub fn is_environment(self) -> bool {
        self != Fault::NotFound
    }
}

/// A pull that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullFailure {
    pub image: String,
    pub registry: String,
    pub fault: Fault,
    /// What the daemon said (never holds a credential).
    pub message: String,
}

impl std::fmt::Display for PullFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (image, reg, msg) = (&self.image, &self.registry, self.message.trim());
        let login = if self.registry == "docker.io" {
            "docker login".to_string()
        } else {
            format!("docker login {reg}")
        };
        match self.fault {
            Fault::Credentials => write!(
                f,
                "cannot pull {image}: registry {reg} refused the credentials, or needs some ({msg}). Run `{login}` (masgen reads the docker CLI's config.json and credential helpers), then run masgen again"
            ),
            Fault::Config => write!(
                f,
                "cannot pull {image}: the credentials for registry {reg} cannot be read: {msg}"
            ),
            Fault::Unreachable => write!(
                f,
                "cannot pull {image}: registry {reg} cannot be reached ({msg}). Check the network, the proxy or the registry mirror; on a machine with no registry, pass --offline (or MASGEN_OFFLINE=1) so that only local images are used"
            ),
            Fault::Registry => write!(
                f,
                "cannot pull {image}: registry {reg} failed ({msg}). Try again later, or use a mirror"
            ),
            Fault::NotFound => write!(f, "{image} does not exist on {reg}: {msg}"),
        }
    }
}

/// How far one pull is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub layers_done: usize,
    pub layers_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What a finished pull took.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    pub secs: f64,
    pub bytes: u64,
}
