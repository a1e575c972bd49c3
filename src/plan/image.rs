//! Where a service's image comes from: a reference pulled as its `pull_policy` says, or a
//! build, with every build key resolved (the Dockerfile's FROM images included).

use std::path::PathBuf;

use super::dockerfile::{from_images, names_context};
use crate::compose::model::{self, parse_pull_policy, Build, PullPolicy, Service};
use crate::compose::Project;

/// Compose's build keys that are parameters of the engine's `/build`, for both builders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Labels of the image (`build.labels`).
    pub labels: Vec<(String, String)>,
    /// More names for the built image (`build.tags`).
    pub tags: Vec<String>,
    /// The network RUN steps use (`build.network`).
    pub network: Option<String>,
    /// /dev/shm of RUN steps, bytes (`build.shm_size`).
    pub shm_size: Option<i64>,
    /// `host:ip` entries of RUN steps' /etc/hosts (`build.extra_hosts`).
    pub extra_hosts: Vec<String>,
    /// Images whose layers the build may reuse (`build.cache_from`).
    pub cache_from: Vec<String>,
}

/// Where a service's image comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An image used as it is, fetched as `policy` says.
    Pull {
        reference: String,
        policy: PullPolicy,
    },
    /// An image masgen builds.
    Build(Box<BuildPlan>),
}

/// A named build context (`build.additional_contexts`), resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local folder (absolute), its `.dockerignore` applied.
    Dir(std::path::PathBuf),
    /// An image.
    Image(String),
    /// The image another service of the project builds.
    Service(String),
}

/// A build, as the compose file asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    /// The context folder, absolute, and relative to the project ("" for the root).
    pub context: PathBuf,
    pub context_rel: String,
    /// The Dockerfile's path in the context (for `dockerfile_inline`, see `inline`).
    pub dockerfile: String,
    /// The Dockerfile's text, from `dockerfile_inline`.
    pub inline: Option<String>,
    pub args: Vec<(String, String)>,
    pub target: Option<String>,
    /// `build.no_cache`.
    pub no_cache: bool,
    /// `build.pull`: the FROM images are pulled even when local.
    pub pull: bool,
    /// The images the Dockerfile's FROM lines name, ARGs resolved (stages and `scratch`
    /// left out; a name that stays unresolved is left to the builder).
    pub from: Vec<String>,
    pub options: BuildOptions,
    /// `build.secrets`: (id, source), or why one cannot be had.
    pub secrets: Result<Vec<(String, super::FileSource)>, super::ServiceError>,
    /// `build.ssh`: (id, the agent's socket; None: `SSH_AUTH_SOCK`'s).
    pub ssh: Vec<(String, Option<String>)>,
    /// `build.additional_contexts`: (name, what it is).
    pub contexts: Vec<(String, NamedContext)>,
}

/// Where `svc`'s image comes from (None when it neither builds nor names one; the loader
/// refuses that).
pub fn image_source(project: &Project, svc: &Service) -> Option<ImageSource> {
    match (&svc.build, &svc.image) {
        (Some(b), _) => Some(ImageSource::Build(Box::new(build_plan(project, b)))),
        (None, Some(reference)) => Some(ImageSource::Pull {
            reference: reference.clone(),
            // Checked when the project loaded.
            policy: svc
                .pull_policy
                .as_deref()
                .and_then(|p| parse_pull_policy(p).ok())
                .unwrap_or(PullPolicy::Missing),
        }),
        (None, None) => None,
    }
}

fn build_plan(project: &Project, b: &Build) -> BuildPlan {
    let context_rel = b
        .context()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string();
    let args = build_args(b);
    let contexts = named_contexts(project, b);
    let from = b
        .dockerfile_text(&project.root)
        .map(|t| from_images(&t, &args))
        .unwrap_or_default();
    let full = b.full();
    BuildPlan {
        context: project.root.join(b.context()),
        context_rel: if context_rel == "." {
            String::new()
        } else {
            context_rel
        },
        dockerfile: b.dockerfile().to_string(),
        inline: b.dockerfile_inline().map(str::to_string),
        target: b.target().map(str::to_string),
        no_cache: full.and_then(|f| f.no_cache).is_some_and(|f| f.0),
        pull: full.and_then(|f| f.pull).is_some_and(|p| p.0),
        from: with_contexts(from, &contexts),
        contexts,
        args,
        options: build_options(b),
        secrets: super::files::build_secrets(&project.compose, b, &project.root, &|k| {
            project.lookup(k)
        }),
        ssh: full
            .and_then(|f| f.ssh.as_ref())
            .map(|s| s.entries())
            .unwrap_or_default(),
    }
}

/// A build's named contexts (checked when the project loaded).
fn named_contexts(project: &Project, b: &Build) -> Vec<(String, NamedContext)> {
    b.named_contexts()
        .into_iter()
        .filter_map(|(k, v)| {
            let planned = match model::NamedContext::parse(&v?, &project.root).ok()? {
                model::NamedContext::Dir(d) => NamedContext::Dir(d),
                model::NamedContext::Image(i) => NamedContext::Image(i),
                model::NamedContext::Service(s) => NamedContext::Service(s),
            };
            Some((k, planned))
        })
        .collect()
}

/// The images a build needs: its FROM images, less those a context stands for, and the
/// images of its `docker-image://` contexts.
fn with_contexts(from: Vec<String>, contexts: &[(String, NamedContext)]) -> Vec<String> {
    let mut images: Vec<String> = from
        .into_iter()
        .filter(|f| !contexts.iter().any(|(name, _)| names_context(f, name)))
        .collect();
    for (_, c) in contexts {
        if let NamedContext::Image(i) = c {
            if !images.contains(i) {
                images.push(i.clone());
            }
        }
    }
    images
}

/// A build's args, a bare name taking its value from the environment.
fn build_args(b: &Build) -> Vec<(String, String)> {
    b.args()
        .into_iter()
        .map(|(k, v)| {
            let v = v.or_else(|| std::env::var(&k).ok()).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// Compose's build keys that are `/build` parameters.
fn build_options(b: &Build) -> BuildOptions {
    let Some(f) = b.full() else {
        return BuildOptions::default();
    };
    BuildOptions {
        labels: f
            .labels
            .iter()
            .flat_map(|l| l.pairs())
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        tags: f.tags.clone(),
        network: f.network.clone(),
        // Checked when the project loaded.
        shm_size: f
            .shm_size
            .as_ref()
            .and_then(|s| crate::compose::model::parse_bytes(&s.text()).ok()),
        extra_hosts: crate::compose::model::host_entries(&f.extra_hosts),
        // `build.pull` is not the builder's: masgen pulls the FROM images itself, before the
        // build, with the user's credentials (see verify/images.rs).
        cache_from: f.cache_from.clone(),
    }
}
