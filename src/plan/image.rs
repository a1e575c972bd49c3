//! Where a service's image comes from: a reference pulled as its `pull_policy` says, or a
//! build, with every build key resolved (the Dockerfile's FROM images included).

use std::path::PathBuf;

use crate::compose::model::{parse_pull_policy, Build, PullPolicy, Service};
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
    pub secrets: Result<Vec<(String, crate::compose::model::FileSource)>, String>,
    /// `build.ssh`: (id, the agent's socket; None: `SSH_AUTH_SOCK`'s).
    pub ssh: Vec<(String, Option<String>)>,
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
        from,
        args,
        options: build_options(b),
        secrets: project
            .compose
            .build_secrets(b, &project.root, &|k| project.lookup(k)),
        ssh: full
            .and_then(|f| f.ssh.as_ref())
            .map(|s| s.entries())
            .unwrap_or_default(),
    }
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

/// Images a Dockerfile's FROM lines name, stage names and `scratch` left out. A name made
/// of variables is resolved as the builder resolves it: from the `ARG`s before the first
/// `FROM` (their defaults, or the build's `args`); one that stays unresolved is left to
/// the builder.
pub fn from_images(dockerfile: &str, args: &[(String, String)]) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut global: Vec<(String, String)> = Vec::new();
    let mut seen_from = false;
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        if first.eq_ignore_ascii_case("ARG") && !seen_from {
            for decl in &words[1..] {
                let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
                let value = args
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| default.trim_matches('"').to_string());
                global.push((name.to_string(), value));
            }
            continue;
        }
        if !first.eq_ignore_ascii_case("FROM") {
            continue;
        }
        seen_from = true;
        let rest: Vec<&str> = words[1..]
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let Some(written) = rest.first() else {
            continue;
        };
        let image = expand_args(written, &global);
        if !stages.iter().any(|s| s.eq_ignore_ascii_case(&image))
            && !image.contains('$')
            && !image.is_empty()
            && image != "scratch"
        {
            images.push(image);
        }
        if rest.len() >= 3 && rest[1].eq_ignore_ascii_case("AS") {
            stages.push(rest[2].to_string());
        }
    }
    images
}

/// `$NAME` and `${NAME}` (and `${NAME:-default}`) from `args`; an unknown name stays.
fn expand_args(text: &str, args: &[(String, String)]) -> String {
    let lookup = |name: &str| args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (expr, len) = match after
            .strip_prefix('{')
            .and_then(|a| a.find('}').map(|e| (&a[..e], e + 2)))
        {
            Some(braced) => braced,
            None => {
                let n = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..n], n)
            }
        };
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match lookup(name).filter(|v| !v.is_empty() || default.is_none()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => out.push_str(&rest[at..at + 1 + len]),
            },
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines() {
        let df = "ARG V=1\nFROM python:3.11-slim AS base\nFROM base AS app\nFROM --platform=linux/amd64 busybox:latest\nFROM img:${V}\nFROM scratch\n";
        assert_eq!(
            from_images(df, &[]),
            vec!["python:3.11-slim", "busybox:latest", "img:1"]
        );
        let df = "ARG REG=127.0.0.1:5000\nARG BASE\nARG TAG=1.4\nFROM ${REG}/team/base:$TAG\nFROM ${BASE:-debian:bookworm-slim}\nFROM $NOPE/x\nARG LATE=9\nFROM img:${LATE}\n";
        assert_eq!(
            from_images(df, &[]),
            vec!["127.0.0.1:5000/team/base:1.4", "debian:bookworm-slim"]
        );
        let args = [
            ("TAG".to_string(), "2.0".to_string()),
            ("BASE".to_string(), "alpine:3".to_string()),
        ];
        assert_eq!(
            from_images(df, &args),
            vec!["127.0.0.1:5000/team/base:2.0", "alpine:3"]
        );
    }
}
