//! Image builds: BuildKit where the daemon has it, else the classic builder; every output
//! line kept, failures as diagnostics.

use std::collections::HashMap;
use std::time::Instant;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::context::build_context_with;
use super::{buildkit, patch};
use super::{Engine, PROJECT_LABEL};
use crate::diagnose::{tail, Diagnostic, Phase};

pub use crate::plan::BuildOptions;

/// The `/build` query parameters for `o`.
fn options_query(o: &BuildOptions) -> Vec<(&'static str, String)> {
    {
        let mut q = Vec::new();
        if !o.labels.is_empty() {
            let labels: HashMap<&String, &String> = o.labels.iter().map(|(k, v)| (k, v)).collect();
            q.push(("labels", serde_json::to_string(&labels).unwrap_or_default()));
        }
        if let Some(n) = &o.network {
            q.push(("networkmode", n.clone()));
        }
        if let Some(size) = o.shm_size {
            q.push(("shmsize", size.to_string()));
        }
        if !o.extra_hosts.is_empty() {
            q.push(("extrahosts", o.extra_hosts.join(",")));
        }
        if !o.cache_from.is_empty() {
            q.push((
                "cachefrom",
                serde_json::to_string(&o.cache_from).unwrap_or_default(),
            ));
        }
        q
    }
}

pub use crate::runtime::build::{BuildRequest, Built, INLINE_DOCKERFILE};

fn rel(ctx: &str, f: &str) -> String {
    if ctx.is_empty() {
        f.to_string()
    } else {
        format!("{ctx}/{f}")
    }
}

/// Build one image, unless an image for the same context hash exists (and `no_cache` is
/// off), and give it the names `build.tags` asks for.
pub async fn build(
    engine: &Engine,
    project: &str,
    spec: &BuildRequest,
) -> Result<Built, Diagnostic> {
    let built = build_image(engine, project, spec).await?;
    for tag in &spec.options.tags {
        let (repo, version) = super::engine::split_image(tag);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(repo)
            .tag(version)
            .build();
        if let Err(e) = engine.docker.tag_image(&built.image, Some(opts)).await {
            return Err(Diagnostic::new(
                &spec.service,
                Phase::Build,
                format!("build.tags: cannot name the image {tag}"),
            )
            .evidence(e.to_string()));
        }
    }
    Ok(built)
}

/// An exclusive lock on building `image` on this host, held until dropped (None when the
/// lock file cannot be made: the build goes ahead unlocked).
async fn build_lock(image: &str) -> Option<std::fs::File> {
    let dir = std::env::temp_dir().join("masgen-build-locks");
    let name: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.lock"));
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok()?;
        file.lock().ok()?;
        Some(file)
    })
    .await
    .ok()
    .flatten()
}

async fn build_image(
    engine: &Engine,
    project: &str,
    spec: &BuildRequest,
) -> Result<Built, Diagnostic> {
    let started = Instant::now();
    let built = |image: String, hash: String, cached: bool, patched: bool| Built {
        image,
        secs: started.elapsed().as_secs_f64(),
        cached,
        patched,
        hash,
    };
    let named = super::contexts::Contexts::read(&spec.contexts)
        .map_err(|why| Diagnostic::new(&spec.service, Phase::Build, why.to_string()))?;
    let settings = format!("{}{}", hashed_settings(spec), named.settings());
    let ctx = read_context(spec, &settings).map_err(|d| *d)?;
    let image = format!("masgen/{project}-{}:{}", spec.service, &ctx.hash[..12]);
    if !spec.no_cache && engine.image_exists(&image).await {
        return Ok(built(image, ctx.hash, true, false));
    }
    // Concurrent runs of the same context on this host build it once: the others wait,
    // then find the image there.
    let _lock = build_lock(&image).await;
    if !spec.no_cache && engine.image_exists(&image).await {
        return Ok(built(image, ctx.hash, true, false));
    }
    let log_path = spec
        .log_dir
        .as_ref()
        .map(|d| d.join(format!("build-{}.log", spec.service)));
    // An inline Dockerfile is not in the folder the earlier image was built from: the
    // builder builds it.
    // Nor is a build that mounts secrets or an agent, or uses named contexts: the builder
    // runs it with them.
    let plan = patch::plan(&spec.dockerfile, &settings, &ctx.tar, &ctx.hash).filter(|_| {
        spec.dockerfile_inline.is_none() && spec.session.is_empty() && named.is_empty()
    });
    // Why an image that could have been patched was built instead, for the build log.
    let mut not_patched = String::new();
    if let Some(plan) = plan
        .as_ref()
        .filter(|_| !spec.no_cache && patching_enabled())
    {
        match patch::patch(engine, project, spec, &image, plan, &ctx.tar).await {
            Ok(Some(p)) => {
                if let Some(path) = &log_path {
                    let _ = crate::atomic::write_atomic(path, p.log.as_bytes());
                }
                return Ok(built(image, ctx.hash, false, true));
            }
            Ok(None) => {}
            Err(why) => {
                not_patched = format!("#0 masgen: not patched ({why}); the builder builds it\n")
            }
        }
    }
    let steps_label = plan.as_ref().map(|p| p.label.clone());
    let ran = match named.is_empty() {
        true => run_builder(engine, project, spec, &image, steps_label, ctx.tar).await,
        false => with_contexts(engine, project, spec, &image, named).await,
    };
    if let Some(p) = &log_path {
        let error = ran
            .error
            .as_deref()
            .filter(|e| !ran.log.contains(*e))
            .map(|e| format!("\nerror: {e}\n"))
            .unwrap_or_default();
        // The log is evidence, not a result: failing to write it must not fail the build.
        let _ =
            crate::atomic::write_atomic(p, format!("{not_patched}{}{error}", ran.log).as_bytes());
    }
    match ran.error.clone() {
        None => Ok(built(image, ctx.hash, false, false)),
        Some(error) => Err(build_failure(spec, ran, &error, log_path.as_deref())),
    }
}

/// What goes into the image's hash besides the context: the Dockerfile's name, target,
/// args and base images, and the build options when given (so images without them keep
/// their hash).
fn hashed_settings(spec: &BuildRequest) -> String {
    let settings = format!(
        "dockerfile={}\ntarget={:?}\nargs={:?}\nbases={:?}",
        spec.dockerfile, spec.target, spec.args, spec.bases
    );
    if spec.options == BuildOptions::default() {
        settings
    } else {
        format!("{settings}\noptions={:?}", spec.options)
    }
}

/// The build context (a missing Dockerfile, or one that cannot be read, is the service's
/// build failure).
fn read_context(
    spec: &BuildRequest,
    settings: &str,
) -> Result<super::context::Context, Box<Diagnostic>> {
    let df_rel = rel(&spec.context_rel, &spec.dockerfile);
    if spec.dockerfile_inline.is_none() && !spec.context.join(&spec.dockerfile).is_file() {
        return Err(Box::new(
            Diagnostic::new(
                &spec.service,
                Phase::Build,
                format!("{df_rel} does not exist"),
            )
            .evidence(format!(
                "the service builds from {} with dockerfile {}, which is missing",
                spec.context.display(),
                spec.dockerfile
            ))
            .files(vec![df_rel, "docker-compose.yml".into()]),
        ));
    }
    let inline = spec.dockerfile_inline.as_deref();
    build_context_with(&spec.context, &spec.dockerfile, inline, settings).map_err(|e| {
        let what = format!(
            "cannot read the build context {}: {e}",
            spec.context.display()
        );
        Box::new(Diagnostic::new(&spec.service, Phase::Build, what))
    })
}

/// Run the builder: BuildKit where the daemon has it (a daemon that refuses it gets this
/// build, and the ones after it, from the classic builder), else the classic one. The
/// classic builder gets one label only: it turns every build-time label into a step of
/// its own (a container and a commit each), which cost seconds per image. The `masgen/`
/// repository names the rest. BuildKit also gets the steps label (what each step read,
/// so that a later change can patch this image).
async fn run_builder(
    engine: &Engine,
    project: &str,
    spec: &BuildRequest,
    image: &str,
    steps_label: Option<String>,
    tar: Vec<u8>,
) -> buildkit::Outcome {
    let mut labels: HashMap<String, String> =
        [(PROJECT_LABEL.to_string(), project.to_string())].into();
    labels.extend(spec.options.labels.iter().cloned());
    let args: HashMap<String, String> = spec.args.iter().cloned().collect();
    // Shared, not copied, between a BuildKit attempt and the classic fallback.
    let tar = hyper::body::Bytes::from(tar);
    let transport = engine
        .buildkit
        .as_ref()
        .filter(|_| engine.buildkit_refused.get().is_none());
    if let Some(transport) = transport {
        let mut with_steps = labels.clone();
        if let Some(label) = steps_label {
            with_steps.insert(patch::STEPS_LABEL.to_string(), label);
        }
        let mut query = buildkit_query(spec, image, &with_steps, &args);
        // Secrets and agents come through a session, open for the build's length.
        let session = match open_session(engine, transport, spec).await {
            Ok(s) => s,
            Err(why) => return refused_outcome(why),
        };
        if let Some(s) = &session {
            query.push(("session", s.id.clone()));
        }
        let auth = (!spec.auths.is_empty()).then(|| super::auth::config_header(&spec.auths));
        match buildkit::build(transport, &engine.api_version(), &query, auth, tar.clone()).await {
            Ok(out) => return out,
            Err(buildkit::Refused(why)) => {
                let _ = engine.buildkit_refused.set(why);
            }
        }
    }
    if !spec.contexts.is_empty() {
        return refused_outcome(NO_CONTEXTS_ON_CLASSIC);
    }
    if !spec.session.is_empty() {
        return refused_outcome("build.secrets and build.ssh need BuildKit, which this daemon does not offer here (DOCKER_BUILDKIT=0, or it refused a BuildKit build): the classic builder cannot mount them");
    }
    classic(engine, image, spec, &labels, &args, tar).await
}

const NO_CONTEXTS_ON_CLASSIC: &str = "build.additional_contexts need BuildKit, which this daemon does not offer here (DOCKER_BUILDKIT=0, or it refused a BuildKit build): the classic builder cannot mount a named context (RUN --mount=from=), as with Docker Compose";

/// A build with named contexts: an image for each, and the Dockerfile rewritten to name
/// them (see docker/contexts.rs); the images made for folders are removed after.
async fn with_contexts(
    engine: &Engine,
    project: &str,
    spec: &BuildRequest,
    image: &str,
    named: super::contexts::Contexts,
) -> buildkit::Outcome {
    let transport = engine
        .buildkit
        .as_ref()
        .filter(|_| engine.buildkit_refused.get().is_none());
    let Some(transport) = transport else {
        return refused_outcome(NO_CONTEXTS_ON_CLASSIC);
    };
    let mut made = Vec::new();
    let loaded = named
        .load(engine, transport, project, &spec.service, &mut made)
        .await;
    let ran = match loaded
        .map_err(BuildError::from)
        .and_then(|images| rewritten(spec, &images))
    {
        Ok((spec, tar)) => run_builder(engine, project, &spec, image, None, tar).await,
        Err(why) => refused_outcome(why),
    };
    super::contexts::unload(engine, &made).await;
    ran
}

/// Why a build could not be sent to the builder (its failure, said as the builder's).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read {dockerfile}: {source}")]
    ReadDockerfile {
        dockerfile: String,
        source: std::io::Error,
    },
    #[error("build.additional_contexts: {0}")]
    RewriteContexts(#[from] crate::plan::dockerfile::ReplacesTarget),
    #[error("cannot read the build context {}: {source}", context.display())]
    ReadContext {
        context: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Contexts(#[from] super::contexts::ContextError),
    #[error(transparent)]
    Session(#[from] super::session::SessionError),
}

/// `spec` with its Dockerfile's references to named contexts naming `images` instead (sent
/// as an inline Dockerfile), and its build context.
fn rewritten(
    spec: &BuildRequest,
    images: &[(String, String)],
) -> Result<(BuildRequest, Vec<u8>), BuildError> {
    let text = match &spec.dockerfile_inline {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(spec.context.join(&spec.dockerfile)).map_err(|source| {
            BuildError::ReadDockerfile {
                dockerfile: spec.dockerfile.clone(),
                source,
            }
        })?,
    };
    let text = crate::plan::dockerfile::rewrite(&text, &spec.args, spec.target.as_deref(), images)
        .map_err(BuildError::RewriteContexts)?;
    let ctx = build_context_with(&spec.context, INLINE_DOCKERFILE, Some(&text), "").map_err(
        |source| BuildError::ReadContext {
            context: spec.context.clone(),
            source,
        },
    )?;
    let spec = BuildRequest {
        dockerfile: INLINE_DOCKERFILE.to_string(),
        dockerfile_inline: Some(text),
        ..spec.clone()
    };
    Ok((spec, ctx.tar))
}

/// A session serving the build's secrets and agents, when it mounts any.
async fn open_session(
    engine: &Engine,
    transport: &buildkit::Transport,
    spec: &BuildRequest,
) -> Result<Option<super::session::Session>, BuildError> {
    if spec.session.is_empty() {
        return Ok(None);
    }
    let api = engine.api_version();
    let session = super::session::open(transport, &api, spec.session.clone()).await?;
    Ok(Some(session))
}

/// A build that could not run, as the builder's failure.
fn refused_outcome(why: impl std::fmt::Display) -> buildkit::Outcome {
    buildkit::Outcome {
        error: Some(why.to_string()),
        ..Default::default()
    }
}

/// The `/build` query of a BuildKit build.
fn buildkit_query(
    spec: &BuildRequest,
    image: &str,
    labels: &HashMap<String, String>,
    args: &HashMap<String, String>,
) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("t", image.to_string()),
        ("dockerfile", spec.dockerfile.clone()),
        ("rm", "1".to_string()),
        ("forcerm", "1".to_string()),
        ("labels", serde_json::to_string(labels).unwrap_or_default()),
        ("buildargs", serde_json::to_string(args).unwrap_or_default()),
    ];
    if let Some(t) = &spec.target {
        query.push(("target", t.clone()));
    }
    if spec.no_cache {
        query.push(("nocache", "1".to_string()));
    }
    query.extend(
        options_query(&spec.options)
            .into_iter()
            .filter(|(k, _)| *k != "labels"),
    );
    query
}

/// A failed build as the service's diagnostic: the failing step, its own output (else the
/// log's tail), the files it names.
fn build_failure(
    spec: &BuildRequest,
    ran: buildkit::Outcome,
    error: &str,
    log_path: Option<&std::path::Path>,
) -> Diagnostic {
    let step = ran.failed_step.unwrap_or_default();
    let mut files = vec![rel(&spec.context_rel, &spec.dockerfile)];
    // A COPY/ADD that failed names files of the context.
    if let Some(src) = step
        .split_whitespace()
        .skip_while(|w| !matches!(w.to_ascii_uppercase().as_str(), "COPY" | "ADD"))
        .nth(1)
    {
        if !src.starts_with("--") {
            files.push(rel(&spec.context_rel, src.trim_start_matches("./")));
        }
    }
    let error = error.trim();
    let summary = if step.is_empty() {
        format!("build failed: {error}")
    } else {
        format!("build failed at {step}: {error}")
    };
    let shown = if step.is_empty() {
        &ran.log
    } else {
        &ran.failed_output
    };
    let mut evidence = tail(shown, 40);
    if !evidence.contains(error) {
        evidence = format!("{evidence}\nerror: {error}")
            .trim_start()
            .to_string();
    }
    if let Some(p) = log_path {
        evidence.push_str(&format!("\n(full build output: {})", p.display()));
    }
    Diagnostic::new(&spec.service, Phase::Build, summary)
        .evidence(evidence)
        .files(files)
}

/// Patching is on unless MASGEN_PATCH is `0` or `false`.
fn patching_enabled() -> bool {
    !std::env::var("MASGEN_PATCH").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false"))
}

/// The classic builder, through bollard; its output read into the same shape as BuildKit's.
async fn classic(
    engine: &Engine,
    image: &str,
    spec: &BuildRequest,
    labels: &HashMap<String, String>,
    args: &HashMap<String, String>,
    tar: hyper::body::Bytes,
) -> buildkit::Outcome {
    let mut opts = BuildImageOptionsBuilder::new()
        .dockerfile(&spec.dockerfile)
        .t(image)
        .rm(true)
        .forcerm(true)
        .labels(labels)
        .buildargs(args)
        .nocache(spec.no_cache);
    if let Some(t) = &spec.target {
        opts = opts.target(t);
    }
    let o = &spec.options;
    if let Some(n) = &o.network {
        opts = opts.networkmode(n);
    }
    if let Some(size) = o.shm_size {
        opts = opts.shmsize(size.clamp(0, i32::MAX as i64) as i32);
    }
    if !o.extra_hosts.is_empty() {
        opts = opts.extrahosts(&o.extra_hosts.join(","));
    }
    if !o.cache_from.is_empty() {
        opts = opts.cachefrom(&o.cache_from);
    }
    let auths = (!spec.auths.is_empty()).then(|| {
        spec.auths
            .iter()
            .map(|(k, c)| (k.clone(), super::auth::docker_credentials(c)))
            .collect()
    });
    let mut stream = engine
        .docker
        .build_image(opts.build(), auths, Some(bollard::body_full(tar)));
    let mut output = String::new();
    let mut failure: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    output.push_str(&s);
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    failure = Some(e);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => failure = Some(error),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    // The failing step is the last `Step N/M : ...` line; its output is what follows.
    let (mut failed_step, mut failed_output) = (None, String::new());
    if failure.is_some() {
        if let Some(at) = output
            .rfind("Step ")
            .filter(|&at| at == 0 || output[..at].ends_with('\n'))
        {
            let (line, rest) = output[at..].split_once('\n').unwrap_or((&output[at..], ""));
            failed_step = Some(line.trim().to_string());
            failed_output = rest.to_string();
        }
    }
    buildkit::Outcome {
        log: output,
        error: failure,
        failed_step,
        failed_output,
    }
}
