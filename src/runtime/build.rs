//! Builds: what to build for one service, the secrets and agents its steps are given, and
//! what a finished build is.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::plan::BuildOptions;

/// What to build for one service: everything a build needs, planned.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    /// Context folder, absolute.
    pub context: std::path::PathBuf,
    /// Context folder relative to the system root ("" for the root).
    pub context_rel: String,
    pub dockerfile: String,
    /// The Dockerfile's text, from compose's `dockerfile_inline` (`dockerfile` is then
    /// [`INLINE_DOCKERFILE`], the name it has in the context sent).
    pub dockerfile_inline: Option<String>,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    /// Where the full build output goes (`build-<service>.log`), when set.
    pub log_dir: Option<std::path::PathBuf>,
    /// Build even when an image for the context exists, and without the builder's cache.
    pub no_cache: bool,
    /// The local IDs of the images its Dockerfile's FROM lines name, in order. They are part
    /// of the image's hash: a base image pulled or rebuilt since makes a new image.
    pub bases: Vec<String>,
    /// The verification's run label value, for the short-lived objects a patch makes.
    pub run_id: String,
    /// Compose's other build keys.
    pub options: BuildOptions,
    /// Credentials of the FROM images' registries (`X-Registry-Config`).
    pub auths: super::pull::AuthMap,
    /// Secrets and SSH agents its steps mount (`build.secrets`, `build.ssh`), served
    /// through a BuildKit session.
    pub session: Provided,
    /// Its named contexts (`build.additional_contexts`), `service:` ones resolved to the
    /// images those services built.
    pub contexts: Vec<(String, crate::plan::NamedContext)>,
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: String,
    pub secs: f64,
    pub cached: bool,
    /// Made by patching an earlier image's COPY layers (see `patch.rs`), not by a builder.
    pub patched: bool,
    pub hash: String,
}

/// The name an inline Dockerfile has in the build context masgen sends.
pub const INLINE_DOCKERFILE: &str = "Dockerfile.masgen-inline";

/// What a build's steps are given (`RUN --mount=type=secret|ssh`): secrets by id and SSH
/// agents.
#[derive(Default, Clone)]
pub struct Provided {
    /// Secrets by id.
    pub secrets: HashMap<String, Vec<u8>>,
    /// SSH agent sockets by id.
    pub agents: HashMap<String, PathBuf>,
}

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&String> = self.secrets.keys().collect();
        write!(f, "Provided(secrets {ids:?}, agents {:?})", self.agents)
    }
}

impl Provided {
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.agents.is_empty()
    }
}
