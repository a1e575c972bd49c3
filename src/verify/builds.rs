//! The builds of one verification: what each service builds (its [`BuildRequest`]), and
//! the builds themselves, `--jobs` at a time, each as soon as its own FROM images are
//! there; a finished image goes straight to the service waiting for it.

use futures_util::StreamExt;

use super::images::{self, Avail, Images};
use super::{ImageState, ServiceState, Steps};
use crate::diagnose::{Diagnostic, Phase};
use crate::events::Event;
use crate::plan::{ImageSource, NamedContext, SystemPlan};
use crate::runtime::build::{BuildRequest, Built, INLINE_DOCKERFILE};
use crate::runtime::Runtime;

/// The images `service`'s Dockerfile's FROM lines name (none when it does not build).
pub(super) fn froms_of<'p>(plan: &'p SystemPlan, service: &str) -> &'p [String] {
    match plan.get(service).and_then(|s| s.image.as_ref()) {
        Some(ImageSource::Build(b)) => &b.from,
        _ => &[],
    }
}

/// What each service with `build:` builds, the images heading the longest depends_on
/// chains first: with fewer build slots than images, that chain starts while the images
/// at its end still build.
pub(super) fn specs(plan: &SystemPlan, opts: &super::VerifyOptions) -> Vec<BuildRequest> {
    let specs = plan
        .build_order
        .iter()
        .filter_map(|n| {
            let Some(ImageSource::Build(b)) = plan.get(n)?.image.as_ref() else {
                return None;
            };
            Some(BuildRequest {
                service: n.clone(),
                context: b.context.clone(),
                context_rel: b.context_rel.clone(),
                dockerfile: match b.inline {
                    Some(_) => INLINE_DOCKERFILE.to_string(),
                    None => b.dockerfile.clone(),
                },
                dockerfile_inline: b.inline.clone(),
                args: b.args.clone(),
                target: b.target.clone(),
                log_dir: Some(plan.root.join(crate::workspace::MASGEN_DIR).join("logs")),
                no_cache: opts.no_cache || b.no_cache,
                bases: Vec::new(),
                auths: Default::default(),
                session: Default::default(),
                run_id: opts.run_id.clone(),
                options: b.options.clone(),
                contexts: b.contexts.clone(),
            })
        })
        .collect();
    contexts_first(specs)
}

/// The services a build's `service:` contexts name.
fn context_services(spec: &BuildRequest) -> impl Iterator<Item = &String> {
    spec.contexts.iter().filter_map(|(_, c)| match c {
        NamedContext::Service(s) => Some(s),
        _ => None,
    })
}

/// `specs` with each build after those whose images its `service:` contexts use (the
/// loader refused cycles), so that a build slot never waits on a build not yet started.
fn contexts_first(mut pending: Vec<BuildRequest>) -> Vec<BuildRequest> {
    let mut ordered: Vec<BuildRequest> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let waits = |spec: &BuildRequest| {
            context_services(spec).any(|s| pending.iter().any(|p| &p.service == s))
        };
        let at = pending.iter().position(|s| !waits(s)).unwrap_or(0);
        ordered.push(pending.remove(at));
    }
    ordered
}

/// `spec`'s `service:` contexts, as the images those services built (waited for).
async fn resolve_contexts(
    steps: &Steps<'_, impl Runtime>,
    spec: &mut BuildRequest,
) -> Result<(), Diagnostic> {
    for (name, c) in &mut spec.contexts {
        let NamedContext::Service(other) = c else {
            continue;
        };
        let why = match steps.settled_image(other).await {
            Some(ImageState::Ready(image)) => {
                *c = NamedContext::Image(image);
                continue;
            }
            Some(_) => format!("build.additional_contexts '{name}' is the image of service '{other}', whose build failed"),
            None => format!("build.additional_contexts '{name}': service '{other}' is not part of this run"),
        };
        return Err(Diagnostic::new(&spec.service, Phase::Build, why));
    }
    Ok(())
}

/// Why a build's secret or SSH agent cannot be had: the service's build failure.
#[derive(Debug, thiserror::Error)]
enum MountError {
    #[error(transparent)]
    Planned(#[from] crate::plan::ServiceError),
    #[error("build secret '{id}': cannot read {}: {source}", path.display())]
    Secret {
        id: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("build.ssh '{0}' uses the SSH agent, and SSH_AUTH_SOCK is not set: start an agent (ssh-agent) or name its socket as {0}=/path/to/socket")]
    NoAgent(String),
    #[error("build.ssh '{id}': {} is not an SSH agent's socket: masgen forwards an agent; load the key into one (ssh-add) and give its socket", socket.display())]
    NotASocket {
        id: String,
        socket: std::path::PathBuf,
    },
}

/// The secrets and SSH agents a build mounts, read now; why one cannot be had is the
/// service's build failure.
fn session_for(
    plan: Option<&crate::plan::ServicePlan>,
) -> Result<crate::runtime::build::Provided, MountError> {
    let mut provided = crate::runtime::build::Provided::default();
    let Some(ImageSource::Build(b)) = plan.and_then(|p| p.image.as_ref()) else {
        return Ok(provided);
    };
    for (id, source) in b.secrets.clone()? {
        let data = match source {
            crate::plan::FileSource::Path(p) => {
                std::fs::read(&p).map_err(|source| MountError::Secret {
                    id: id.clone(),
                    path: p.clone(),
                    source,
                })?
            }
            crate::plan::FileSource::Content(text) => text.into_bytes(),
        };
        provided.secrets.insert(id, data);
    }
    for (id, path) in &b.ssh {
        let socket = match path {
            Some(p) => std::path::PathBuf::from(p),
            None => std::env::var_os("SSH_AUTH_SOCK")
                .map(std::path::PathBuf::from)
                .ok_or_else(|| MountError::NoAgent(id.clone()))?,
        };
        use std::os::unix::fs::FileTypeExt;
        let is_socket = std::fs::metadata(&socket).is_ok_and(|m| m.file_type().is_socket());
        if !is_socket {
            return Err(MountError::NotASocket {
                id: id.clone(),
                socket,
            });
        }
        provided.agents.insert(id.clone(), socket);
    }
    Ok(provided)
}

/// Build every spec, `--jobs` at a time; each image is handed to its service the moment
/// it is there, and a failed build marks the service failed for its dependents.
pub(super) async fn build_all(
    steps: &Steps<'_, impl Runtime>,
    specs: Vec<BuildRequest>,
) -> Vec<(String, Result<Built, Diagnostic>)> {
    futures_util::stream::iter(specs)
        .map(|spec| async move {
            let service = spec.service.clone();
            let r = build_one(steps, spec).await;
            let ev = &steps.opts.events;
            match &r {
                Ok(b) => {
                    ev.emit(Event::BuildFinished {
                        service: service.clone(),
                        secs: b.secs,
                        cached: b.cached,
                        patched: b.patched,
                        ok: true,
                    });
                    steps.images[&service].send_replace(ImageState::Ready(b.image.clone()));
                }
                Err(_) => {
                    ev.emit(Event::BuildFinished {
                        service: service.clone(),
                        secs: 0.0,
                        cached: false,
                        patched: false,
                        ok: false,
                    });
                    // Dependents learn it from the service's own state, as for any failure.
                    steps.set(&service, ServiceState::Failed);
                    steps.images[&service].send_replace(ImageState::Failed);
                }
            }
            (service, r)
        })
        .buffer_unordered(steps.opts.jobs.max(1))
        .collect()
        .await
}

/// One build, once its FROM images are pulled (or known missing).
async fn build_one(
    steps: &Steps<'_, impl Runtime>,
    mut spec: BuildRequest,
) -> Result<Built, Diagnostic> {
    spec.session = session_for(steps.plan.get(&spec.service))
        .map_err(|why| Diagnostic::new(&spec.service, Phase::Build, why.to_string()))?;
    resolve_contexts(steps, &mut spec).await?;
    let (ids, auths) = base_images(&steps.plan, steps.imgs, &spec.service).await?;
    spec.bases = ids;
    spec.auths = auths;
    steps.opts.events.emit(Event::BuildStarted {
        service: spec.service.clone(),
    });
    steps.rt.build(&steps.plan.project, &spec).await
}

/// The FROM images of `service`'s Dockerfile: their local IDs and the credentials of their
/// registries once they are there, or the service's image failure.
pub(super) async fn base_images(
    plan: &SystemPlan,
    imgs: &Images<'_, impl Runtime>,
    service: &str,
) -> Result<(Vec<String>, crate::runtime::pull::AuthMap), Diagnostic> {
    let froms = froms_of(plan, service).to_vec();
    let mut ids = Vec::new();
    for image in &froms {
        match imgs.wait(image).await {
            Avail::Ready(id) => ids.push(id),
            Avail::Missing(why) => return Err(image_failure(plan, service, image, why)),
            // The run ends with it; this is only what the service shows meanwhile.
            Avail::Broken(f) => return Err(image_failure(plan, service, image, f.to_string())),
            Avail::Pending => unreachable!("waited for"),
        }
    }
    Ok((ids, imgs.auths_for(&froms).await))
}

/// A service's own image (no build): there, or its failure.
pub(super) async fn service_image(
    plan: &SystemPlan,
    imgs: &Images<'_, impl Runtime>,
    service: &str,
    image: &str,
) -> Result<(), Diagnostic> {
    match imgs.wait(image).await {
        Avail::Ready(_) => Ok(()),
        Avail::Missing(why) => Err(image_failure(plan, service, image, why)),
        Avail::Broken(f) => Err(image_failure(plan, service, image, f.to_string())),
        Avail::Pending => unreachable!("waited for"),
    }
}

fn image_failure(plan: &SystemPlan, service: &str, image: &str, why: String) -> Diagnostic {
    Diagnostic::new(
        service,
        Phase::Image,
        format!("image {image} is not available locally and cannot be pulled"),
    )
    .evidence(why)
    .files(plan.implicated(service))
}

/// The longest pull among the images `service` needed.
pub(super) fn pull_secs(
    plan: &SystemPlan,
    pulls: &[images::PullReport],
    service: &str,
) -> Option<f64> {
    let needed: Vec<String> = match plan.get(service).and_then(|s| s.image.as_ref()) {
        Some(ImageSource::Pull { reference, .. }) => vec![reference.clone()],
        _ => froms_of(plan, service).to_vec(),
    };
    pulls
        .iter()
        .filter(|p| p.ok && needed.contains(&p.image))
        .map(|p| p.secs)
        .reduce(f64::max)
}
