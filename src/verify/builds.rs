//! The builds of one verification: what each service builds (its [`BuildSpec`]), and
//! the builds themselves, `--jobs` at a time, each as soon as its own FROM images are
//! there; a finished image goes straight to the service waiting for it.

use futures_util::StreamExt;

use super::images::{self, Avail, Images};
use super::{implicated, ImageState, ServiceState, Steps};
use crate::compose::Project;
use crate::diagnose::{Diagnostic, Phase};
use crate::docker::build::{self, BuildSpec, Built};
use crate::events::Event;

/// The images `service`'s Dockerfile's FROM lines name (none when it does not build).
pub(super) fn froms_of(project: &Project, service: &str) -> Vec<String> {
    project.compose.services[service]
        .build
        .as_ref()
        .and_then(|b| {
            let text = b.dockerfile_text(&project.root)?;
            Some(build::from_images(&text, &build_args(b)))
        })
        .unwrap_or_default()
}

/// What each service with `build:` builds, the images heading the longest depends_on
/// chains first: with fewer build slots than images, that chain starts while the images
/// at its end still build.
pub(super) fn specs(project: &Project, opts: &super::VerifyOptions) -> Vec<BuildSpec> {
    crate::compose::graph::critical_first(&project.compose, &project.order)
        .iter()
        .filter_map(|n| {
            let b = project.compose.services[n].build.as_ref()?;
            let ctx_rel = b
                .context()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            Some(BuildSpec {
                service: n.clone(),
                context: project.root.join(b.context()),
                context_rel: if ctx_rel == "." {
                    String::new()
                } else {
                    ctx_rel
                },
                dockerfile: match b.dockerfile_inline() {
                    Some(_) => build::INLINE_DOCKERFILE.to_string(),
                    None => b.dockerfile().to_string(),
                },
                dockerfile_inline: b.dockerfile_inline().map(str::to_string),
                args: build_args(b),
                target: b.target().map(str::to_string),
                log_dir: Some(project.root.join(crate::workspace::MASGEN_DIR).join("logs")),
                no_cache: opts.no_cache || b.full().and_then(|f| f.no_cache).is_some_and(|f| f.0),
                bases: Vec::new(),
                auths: Default::default(),
                run_id: opts.run_id.clone(),
                options: build_options(b),
            })
        })
        .collect()
}

/// Build every spec, `--jobs` at a time; each image is handed to its service the moment
/// it is there, and a failed build marks the service failed for its dependents.
pub(super) async fn build_all(
    steps: &Steps<'_>,
    specs: Vec<BuildSpec>,
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
async fn build_one(steps: &Steps<'_>, mut spec: BuildSpec) -> Result<Built, Diagnostic> {
    let (ids, auths) = base_images(steps.project, steps.imgs, &spec.service).await?;
    spec.bases = ids;
    spec.auths = auths;
    steps.opts.events.emit(Event::BuildStarted {
        service: spec.service.clone(),
    });
    build::build(steps.engine, &steps.project.name, &spec).await
}

/// A build's args, a bare name taking its value from the environment.
pub(super) fn build_args(b: &crate::compose::model::Build) -> Vec<(String, String)> {
    b.args()
        .into_iter()
        .map(|(k, v)| {
            let v = v.or_else(|| std::env::var(&k).ok()).unwrap_or_default();
            (k, v)
        })
        .collect()
}

/// The FROM images of `service`'s Dockerfile: their local IDs and the credentials of their
/// registries once they are there, or the service's image failure.
pub(super) async fn base_images(
    project: &Project,
    imgs: &Images<'_>,
    service: &str,
) -> Result<(Vec<String>, crate::docker::auth::AuthMap), Diagnostic> {
    let froms = froms_of(project, service);
    let mut ids = Vec::new();
    for image in &froms {
        match imgs.wait(image).await {
            Avail::Ready(id) => ids.push(id),
            Avail::Missing(why) => return Err(image_failure(project, service, image, why)),
            // The run ends with it; this is only what the service shows meanwhile.
            Avail::Broken(f) => return Err(image_failure(project, service, image, f.to_string())),
            Avail::Pending => unreachable!("waited for"),
        }
    }
    Ok((ids, imgs.auths_for(&froms).await))
}

/// A service's own image (no build): there, or its failure.
pub(super) async fn service_image(
    project: &Project,
    imgs: &Images<'_>,
    service: &str,
    image: &str,
) -> Result<(), Diagnostic> {
    match imgs.wait(image).await {
        Avail::Ready(_) => Ok(()),
        Avail::Missing(why) => Err(image_failure(project, service, image, why)),
        Avail::Broken(f) => Err(image_failure(project, service, image, f.to_string())),
        Avail::Pending => unreachable!("waited for"),
    }
}

fn image_failure(project: &Project, service: &str, image: &str, why: String) -> Diagnostic {
    Diagnostic::new(
        service,
        Phase::Image,
        format!("image {image} is not available locally and cannot be pulled"),
    )
    .evidence(why)
    .files(implicated(project, service))
}

/// The longest pull among the images `service` needed.
pub(super) fn pull_secs(
    project: &Project,
    pulls: &[images::PullReport],
    service: &str,
) -> Option<f64> {
    let svc = &project.compose.services[service];
    let needed: Vec<String> = match &svc.build {
        Some(_) => froms_of(project, service),
        None => svc.image.iter().cloned().collect(),
    };
    pulls
        .iter()
        .filter(|p| p.ok && needed.contains(&p.image))
        .map(|p| p.secs)
        .reduce(f64::max)
}

/// Compose's build keys that are `/build` parameters.
fn build_options(b: &crate::compose::model::Build) -> build::BuildOptions {
    let Some(f) = b.full() else {
        return build::BuildOptions::default();
    };
    build::BuildOptions {
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
        // build, with the user's credentials (see images.rs).
        cache_from: f.cache_from.clone(),
    }
}
