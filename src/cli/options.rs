//! Flags turned into what the library takes, once: verification, repair and generation
//! options, the model, what the model is told of the machine, and the runtime.

use super::*;

pub(super) fn verify_options(
    flags: &args::VerifyFlags,
    jobs: usize,
    events: &Events,
) -> Result<VerifyOptions, Fatal> {
    writable_later("--html", flags.html.as_deref())?;
    writable_later("--summary-md", flags.summary_md.as_deref())?;
    let memory = parse_bytes(&flags.memory).map_err(|e| {
        Fatal::new(
            exit::USAGE,
            format!("--memory: {e}; write it like 512m or 1g"),
        )
    })?;
    Ok(VerifyOptions {
        health_timeout: Duration::from_secs(flags.health_timeout),
        pull_stall: Duration::from_secs(flags.pull_stall),
        pull: flags.pull.map(|p| match p {
            args::PullWhen::Always => PullPolicy::Always,
            args::PullWhen::Missing => PullPolicy::Missing,
            args::PullWhen::Never => PullPolicy::Never,
        }),
        offline: flags.offline,
        settle: Duration::from_secs(flags.settle),
        stability: Duration::from_secs(flags.stability),
        smoke: !flags.no_smoke,
        smoke_timeout: Duration::from_secs(flags.smoke_timeout),
        memory,
        pids: flags.pids,
        allow_unsafe: flags.allow_unsafe,
        keep: flags.keep,
        no_cache: flags.no_cache,
        execute: flags.execute,
        jobs,
        events: events.clone(),
        ..VerifyOptions::default()
    })
}

/// The runtime every command verifies on, chosen here and nowhere else: the Docker engine
/// the docker CLI would use, connected when first needed.
pub(super) fn runtime() -> crate::docker::DockerRuntime {
    crate::docker::DockerRuntime::new()
}

pub(super) fn build_generator(run: &args::RunFlags, events: &Events) -> Result<Generator, Fatal> {
    let m = &run.model;
    let provider = match m.provider {
        args::ProviderChoice::Anthropic => crate::generate::Provider::Anthropic,
        args::ProviderChoice::Openai => crate::generate::Provider::OpenAi,
    };
    let mut builder = Generator::builder()
        .provider(provider)
        .base_url(m.url())
        .model(&m.model)
        .events(events.clone())
        .retry(RetryPolicy {
            max_attempts: m.retries,
            base: Duration::from_millis(m.retry_base_ms),
            max_delay: Duration::from_secs(60),
        });
    if let Some(dir) = &m.replay {
        builder = builder.replay(dir);
    } else if let Some(k) = m.key() {
        builder = builder.api_key(k);
    }
    if let (Some(input), Some(output)) = (m.price_in, m.price_out) {
        builder = builder.price(crate::llm::pricing::Price {
            input,
            output,
            cache_read: input,
            cache_write: input,
        });
    }
    let generator = builder
        .build()
        .map_err(|e| Fatal::new(exit::ENVIRONMENT, e))?;
    if run.repair.max_cost.is_some() && generator.model().price().is_none() {
        return Err(Fatal::new(
            exit::USAGE,
            format!("--max-cost cannot be enforced: masgen has no price for model '{}'; give its prices with --price-in USD --price-out USD (per million tokens), use a priced model, or leave --max-cost out", generator.model().id()),
        ));
    }
    Ok(generator)
}

/// Every request tells the model the engine's limits a compose file can exceed; with
/// `--offline`, also which images this machine has (those `about` names first) and
/// whether builds reach the package mirrors.
pub(super) async fn with_machine(
    generator: Generator,
    run: &args::RunFlags,
    about: &str,
) -> Generator {
    let limits = crate::docker::offline::limits_note();
    if !run.verify.offline {
        return generator.with_machine(limits);
    }
    let mut note = crate::docker::offline::machine_note(about).await;
    note.push_str(&limits.unwrap_or_default());
    generator.events().emit(crate::events::Event::Info {
        message: format!(
            "--offline: every request tells the model:\n      {}",
            note.trim_end().replace('\n', "\n      ")
        ),
    });
    generator.with_machine(Some(note))
}

pub(super) fn repair_options(run: &args::RunFlags, spent: f64) -> RepairOptions {
    RepairOptions {
        max_rounds: run.repair.max_rounds,
        max_cost_usd: run.repair.max_cost,
        spent_usd: spent,
        max_tokens: run.model.max_tokens,
        download_responses: run.model.download_responses,
        allow_smoke_edits: run.repair.allow_smoke_edits,
        ..RepairOptions::default()
    }
}

/// Generation options the run flags set; generate adds its own.
pub(super) fn generate_options(run: &args::RunFlags) -> Options {
    Options {
        max_tokens: run.model.max_tokens,
        download_responses: run.model.download_responses,
        max_cost_usd: run.repair.max_cost,
        ..Options::default()
    }
}

/// Where a command's results go.
pub(super) struct Output<'a> {
    pub(super) dir: &'a Path,
    pub(super) report_file: Option<&'a Path>,
    pub(super) junit: Option<&'a Path>,
    pub(super) html: Option<&'a Path>,
    pub(super) summary_md: Option<&'a Path>,
    pub(super) ui: &'a Ui,
}

impl<'a> Output<'a> {
    pub(super) fn new(run: &'a args::RunFlags, dir: &'a Path, ui: &'a Ui) -> Self {
        Output {
            dir,
            report_file: run.report.as_deref(),
            junit: run.verify.junit.as_deref(),
            html: run.verify.html.as_deref(),
            summary_md: run.verify.summary_md.as_deref(),
            ui,
        }
    }
}

/// A file the run will write at its end must be writable now: finding out after a
/// ten-minute run is too late (exit 2 before anything runs).
pub(super) fn writable_later(flag: &str, path: Option<&Path>) -> Result<(), Fatal> {
    let Some(path) = path else {
        return Ok(());
    };
    can_write(path).map_err(|e| {
        Fatal::new(
            exit::USAGE,
            format!(
                "{flag} {}: cannot write there ({e}): name a file in a folder you can write to",
                path.display()
            ),
        )
    })
}

/// Whether `path` can be written, found by opening it to append; a file that was not
/// there before is removed again.
pub(super) fn can_write(path: &Path) -> std::io::Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// `dir` as a system's folder: a path that is not a folder is bad input.
pub(super) fn system_folder(dir: &Path) -> Result<(), Fatal> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(Fatal::new(
        exit::USAGE,
        format!(
            "{} is not a folder: pass the folder that holds the compose file",
            dir.display()
        ),
    ))
}

/// `dir` as a project's folder: a folder with a compose file, or with the files `-f` names.
pub(super) fn project_folder(dir: &Path, project: &args::ProjectFlags) -> Result<(), Fatal> {
    system_folder(dir)?;
    if project.files.is_empty() {
        crate::compose::find_compose_file(dir).map_err(|e| Fatal::new(exit::USAGE, e))?;
    }
    for f in &project.files {
        if !dir.join(f).is_file() {
            return Err(Fatal::new(
                exit::USAGE,
                format!(
                    "-f {}: no such file in {} (paths are relative to the system's folder)",
                    f.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The commands that write into the project (repair, smoke) write relative to DIR: a
/// project whose directory is elsewhere (`-f sub/compose.yaml`, `--project-directory`)
/// is run from its own directory instead.
pub(super) fn writes_in_project_directory(
    dir: &Path,
    project: &args::ProjectFlags,
    command: &str,
) -> Result<(), Fatal> {
    let Ok(p) = crate::compose::load::load_with(dir, &project.load_options()) else {
        return Ok(()); // reading it fails with its own message later
    };
    let here = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if p.root == here {
        return Ok(());
    }
    Err(Fatal::new(
        exit::USAGE,
        format!(
            "the project directory is {} (the first compose file's folder, or --project-directory), not {}: masgen {command} writes files relative to the project directory, so run it there (masgen {command} {} with -f paths relative to it)",
            p.root.display(),
            dir.display(),
            p.root.display()
        ),
    ))
}
