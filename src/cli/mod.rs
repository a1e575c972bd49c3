//! The command line: arguments become options once, the library runs, events are
//! rendered, and every error maps to one exit code.

pub mod args;
pub mod render;

use std::path::Path;
use std::time::Duration;

pub use args::{with_default_subcommand, Cli, Command};

use crate::compose::model::parse_bytes;
use crate::docker::{teardown, Engine, RUN_LABEL};
use crate::events::Events;
use crate::generate::{GenerateError, Generator, Options};
use crate::llm::RetryPolicy;
use crate::protocol::UnmetKind;
use crate::repair::{repair_loop, LoopOutcome, RepairError, RepairOptions, RepairReport};
use crate::report::{junit, RunReport};
use crate::runtime::health::HealthState;
use crate::verdict::Verdict;
use crate::verify::{verify, RuntimeVerifier, VerifyError, VerifyOptions, VerifyReport};
use crate::workspace::WorkspaceError;

/// Exit codes (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const UNHEALTHY: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const ENVIRONMENT: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// An error that ends the run: what to print and the exit code.
#[derive(Debug)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    fn new(code: i32, message: impl std::fmt::Display) -> Self {
        Fatal {
            code,
            message: message.to_string(),
        }
    }
}

impl From<GenerateError> for Fatal {
    fn from(e: GenerateError) -> Self {
        let code = match &e {
            // The cap holds: not an environment failure, the budget is spent.
            GenerateError::Llm(crate::llm::LlmError::Budget { .. }) => exit::UNHEALTHY,
            GenerateError::Llm(crate::llm::LlmError::TooLarge { .. }) => exit::USAGE,
            GenerateError::Llm(_) | GenerateError::Manifest { .. } => exit::ENVIRONMENT,
            GenerateError::Workspace(w) => workspace_code(w),
            GenerateError::NoFiles { .. } => exit::UNHEALTHY,
            GenerateError::EmptyChange | GenerateError::NoCompose { .. } => exit::USAGE,
        };
        Fatal::new(code, e)
    }
}

fn workspace_code(e: &WorkspaceError) -> i32 {
    match e {
        WorkspaceError::ForeignFiles { .. }
        | WorkspaceError::NotADirectory { .. }
        | WorkspaceError::BadState { .. } => exit::USAGE,
        WorkspaceError::Io { .. } => exit::ENVIRONMENT,
    }
}

impl From<VerifyError> for Fatal {
    fn from(e: VerifyError) -> Self {
        let code = match &e {
            VerifyError::Plan(_) => exit::USAGE,
            VerifyError::Runtime(_) | VerifyError::Registry(_) => exit::ENVIRONMENT,
        };
        Fatal::new(code, e)
    }
}

/// Resolves when the user presses Ctrl-C or the process gets SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Run the parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let color = render::use_color(cli.color);
    let (events, bar) = if cli.json {
        (render::json_events(), None)
    } else {
        let (e, b) = render::human_events(color);
        (e, Some(b))
    };
    let result = match cli.command {
        Command::Generate(a) => generate(a, &events, cli.json, color).await,
        Command::Verify(a) => verify_cmd(a, &events, cli.json, color).await,
        Command::Repair(a) => repair_cmd(a, &events, cli.json, color).await,
        Command::Down(a) => down(&a.dir, &a.project, a.images, &events, cli.json).await,
        Command::Config(a) => config_cmd(&a),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match result {
        Ok(code) => code,
        Err(f) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "exit_code": f.code, "message": f.message})
                );
            }
            eprintln!("{} {}", render::paint(color, "1;31", "error:"), f.message);
            f.code
        }
    }
}

use crate::compose::model::PullPolicy;

fn verify_options(
    flags: &args::VerifyFlags,
    jobs: usize,
    events: &Events,
) -> Result<VerifyOptions, Fatal> {
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

/// After Ctrl-C / SIGTERM: remove what run `run_id` started, and say so (exit 130).
async fn torn_down_after_interrupt(run_id: &str, kept: &str) -> Fatal {
    let mut left = Vec::new();
    if let Ok(engine) = Engine::connect().await {
        left = teardown::remove_labelled(&engine, RUN_LABEL, run_id)
            .await
            .left;
    }
    let left: String = left.iter().map(|l| format!("\n  {l}")).collect();
    Fatal::new(
        exit::INTERRUPTED,
        format!(
            "interrupted: containers, networks and volumes of this run were removed; {kept}{left}"
        ),
    )
}

/// The runtime every command verifies on, chosen here and nowhere else: the Docker engine
/// the docker CLI would use, connected when first needed.
fn runtime() -> crate::docker::DockerRuntime {
    crate::docker::DockerRuntime::new()
}

/// Verify `dir`, tearing down on Ctrl-C / SIGTERM (exit 130).
async fn verify_interruptible(dir: &Path, opts: &VerifyOptions) -> Result<VerifyReport, Fatal> {
    let rt = runtime();
    tokio::select! {
        r = verify(&rt, dir, opts) => r.map_err(Fatal::from),
        _ = interrupted() => Err(torn_down_after_interrupt(&opts.run_id, "files are kept").await),
    }
}

fn build_generator(run: &args::RunFlags, events: &Events) -> Result<Generator, Fatal> {
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
async fn with_machine(generator: Generator, run: &args::RunFlags, about: &str) -> Generator {
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

fn repair_options(run: &args::RunFlags, spent: f64) -> RepairOptions {
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
fn generate_options(run: &args::RunFlags) -> Options {
    Options {
        max_tokens: run.model.max_tokens,
        download_responses: run.model.download_responses,
        max_cost_usd: run.repair.max_cost,
        ..Options::default()
    }
}

/// Run the repair loop, tearing down on Ctrl-C / SIGTERM (exit 130; files and history kept).
async fn repair_interruptible(
    generator: &Generator,
    spec: &str,
    dir: &Path,
    vopts: &VerifyOptions,
    ropts: &RepairOptions,
) -> Result<RepairReport, Fatal> {
    let verifier = RuntimeVerifier(runtime());
    tokio::select! {
        r = repair_loop(&verifier, generator, spec, dir, vopts, ropts) => r.map_err(Fatal::from),
        _ = interrupted() => Err(torn_down_after_interrupt(&vopts.run_id, "files and .masgen/rounds/ are kept").await),
    }
}

impl From<RepairError> for Fatal {
    fn from(e: RepairError) -> Self {
        match e {
            RepairError::Verify(v) => Fatal::from(v),
            RepairError::Generate(g) => Fatal::from(g),
        }
    }
}

async fn generate(
    a: args::GenerateArgs,
    events: &Events,
    json: bool,
    color: bool,
) -> Result<i32, Fatal> {
    if a.iterate.is_some() {
        return iterate(a, events, json, color).await;
    }
    let spec_arg = a.spec.as_deref().ok_or_else(|| {
        Fatal::new(exit::USAGE, "no spec: describe the system, e.g. masgen \"a RabbitMQ broker with a publisher and a consumer\", or pass @path/to/spec.txt")
    })?;
    let spec = crate::resolve_spec_arg(spec_arg).map_err(|e| Fatal::new(exit::USAGE, e))?;
    let vopts = if a.no_verify {
        None
    } else {
        Some(verify_options(&a.run.verify, a.jobs as usize, events)?)
    };
    let generator = with_machine(build_generator(&a.run, events)?, &a.run, &spec).await;
    let options = Options {
        staged: a.staged,
        jobs: a.jobs as usize,
        force: a.force,
        pack_batches: !a.batch_per_group,
        ..generate_options(&a.run)
    };
    let outcome = tokio::select! {
        r = generator.generate_system(&spec, &a.output, options) => r?,
        _ = interrupted() => return Err(Fatal::new(exit::INTERRUPTED, "interrupted before any file was written")),
    };
    let g = &outcome.report;
    if !json {
        print_generation(&a.output, g, color);
    }
    let report = RunReport {
        command: "generate".into(),
        usage: Some(g.usage),
        cost_usd: g.cost_usd,
        generate: Some(g.clone()),
        ..Default::default()
    };
    let ropts = repair_options(&a.run, g.cost_usd.unwrap_or(0.0));
    let out = Output::new(&a.run, &a.output, events, json, color);
    verify_repair_and_report(&generator, &spec, vopts, &ropts, report, out).await
}

/// Where a command's results go.
struct Output<'a> {
    dir: &'a Path,
    report_file: Option<&'a Path>,
    junit: Option<&'a Path>,
    events: &'a Events,
    json: bool,
    color: bool,
}

impl<'a> Output<'a> {
    fn new(
        run: &'a args::RunFlags,
        dir: &'a Path,
        events: &'a Events,
        json: bool,
        color: bool,
    ) -> Self {
        Output {
            dir,
            report_file: run.report.as_deref(),
            junit: run.verify.junit.as_deref(),
            events,
            json,
            color,
        }
    }
}

/// After files are written: verify and repair (unless `vopts` is None, for --no-verify),
/// write `.masgen/report.json` (also on failure) and the extra reports, print the result,
/// and choose the exit code.
async fn verify_repair_and_report(
    generator: &Generator,
    spec: &str,
    vopts: Option<VerifyOptions>,
    ropts: &RepairOptions,
    mut report: RunReport,
    out: Output<'_>,
) -> Result<i32, Fatal> {
    let code = match vopts {
        None => exit::OK,
        Some(vopts) => match repair_interruptible(generator, spec, out.dir, &vopts, ropts).await {
            Ok(r) => finish_repair(&mut report, r, out.json, out.color),
            Err(f) => {
                report.exit_code = f.code;
                write_reports(Some(out.dir), &report, out.report_file, None, out.events);
                return Err(f);
            }
        },
    };
    report.exit_code = code;
    write_reports(
        Some(out.dir),
        &report,
        out.report_file,
        out.junit,
        out.events,
    );
    if out.json {
        println!(
            "{}",
            serde_json::json!({"event": "report", "report": report})
        );
    }
    Ok(code)
}

async fn iterate(
    a: args::GenerateArgs,
    events: &Events,
    json: bool,
    color: bool,
) -> Result<i32, Fatal> {
    let change = a.iterate.clone().unwrap_or_default();
    crate::spec::check_size(&change, "change request").map_err(|e| Fatal::new(exit::USAGE, e))?;
    if change.trim().is_empty() {
        return Err(Fatal::from(GenerateError::EmptyChange));
    }
    if crate::compose::find_compose_file(&a.output).is_err() {
        return Err(Fatal::from(GenerateError::NoCompose {
            dir: a.output.clone(),
        }));
    }
    let recorded = crate::workspace::State::load(&a.output)
        .map_err(|e| Fatal::new(exit::USAGE, e))?
        .map(|s| s.spec)
        .unwrap_or_default();
    let spec = match a.spec.as_deref() {
        Some(arg) => crate::resolve_spec_arg(arg).map_err(|e| Fatal::new(exit::USAGE, e))?,
        None if !recorded.is_empty() => recorded,
        None => {
            return Err(Fatal::new(
                exit::USAGE,
                format!("{} has no spec recorded (masgen did not write it): pass the spec too, e.g. masgen @spec.txt --iterate \"...\" -o {}", a.output.display(), a.output.display()),
            ))
        }
    };
    let vopts = if a.no_verify {
        None
    } else {
        Some(verify_options(&a.run.verify, a.jobs as usize, events)?)
    };
    let about = format!("{spec}\n{change}");
    let generator = with_machine(build_generator(&a.run, events)?, &a.run, &about).await;
    let options = generate_options(&a.run);
    let it = tokio::select! {
        r = generator.iterate_on_system(&spec, &change, &a.output, options) => r?,
        _ = interrupted() => return Err(Fatal::new(exit::INTERRUPTED, "interrupted; nothing of the change was applied unless the summary said so")),
    };
    if !json {
        print_iteration(&it, color);
    }
    let report = RunReport {
        command: "iterate".into(),
        usage: Some(it.usage),
        cost_usd: it.cost_usd,
        iterate: Some(it.clone()),
        ..Default::default()
    };
    let ropts = repair_options(&a.run, it.cost_usd.unwrap_or(0.0));
    let out = Output::new(&a.run, &a.output, events, json, color);
    verify_repair_and_report(&generator, &spec, vopts, &ropts, report, out).await
}

fn print_iteration(it: &crate::generate::IterateOutcome, color: bool) {
    println!(
        "{} change applied: {} added, {} changed, {} deleted (request, reply and diff in {})",
        render::paint(color, "1;32", "✓"),
        it.added.len(),
        it.changed.len(),
        it.deleted.len(),
        it.round_dir
    );
    for p in &it.added {
        println!("    + {p}");
    }
    for p in &it.changed {
        println!("    ~ {p}");
    }
    for p in &it.deleted {
        println!("    - {p}");
    }
    if !it.check_changes.is_empty() {
        println!(
            "    smoke checks changed for this request: {} (see the diff)",
            it.check_changes.join(", ")
        );
    }
    for p in &it.preserved {
        println!(
            "    your edited {p} was replaced; your version is kept in {}/previous/{p}",
            it.round_dir
        );
    }
    let u = it.usage;
    println!(
        "Tokens: input {}, output {}, cache read {}, cache write {}{}",
        u.input,
        u.output,
        u.cache_read,
        u.cache_write,
        it.cost_usd
            .map(|c| format!("; estimated ${c:.4}"))
            .unwrap_or_default()
    );
}

/// Fold a repair report into the run report, print it, and choose the exit code.
fn finish_repair(report: &mut RunReport, r: RepairReport, json: bool, color: bool) -> i32 {
    if !json {
        print_verify(&r.verify, color);
        print_repair(&r, color);
    }
    let usage = report.usage.unwrap_or_default() + r.usage;
    report.usage = Some(usage);
    // Generation's cost plus the rounds'; unknown when either is.
    let before = report
        .generate
        .as_ref()
        .map(|g| g.cost_usd)
        .or(report.iterate.as_ref().map(|i| i.cost_usd));
    report.cost_usd = match (before, r.cost_usd) {
        (Some(Some(g)), Some(c)) => Some(g + c),
        (None, c) => c,
        _ => None,
    };
    let code = if r.verify.healthy {
        exit::OK
    } else {
        exit::UNHEALTHY
    };
    let verify = r.verify.clone();
    report.repair = Some(r);
    let taken = std::mem::take(report);
    *report = taken.with_verify(verify);
    code
}

async fn repair_cmd(
    a: args::RepairArgs,
    events: &Events,
    json: bool,
    color: bool,
) -> Result<i32, Fatal> {
    if !a.dir.is_dir() {
        return Err(Fatal::new(
            exit::USAGE,
            format!(
                "{} is not a folder: pass the folder that holds the compose file",
                a.dir.display()
            ),
        ));
    }
    if a.project.files.is_empty() {
        crate::compose::find_compose_file(&a.dir).map_err(|e| Fatal::new(exit::USAGE, e))?;
    }
    for f in &a.project.files {
        if !a.dir.join(f).is_file() {
            return Err(Fatal::new(
                exit::USAGE,
                format!(
                    "-f {}: no such file in {} (paths are relative to the system's folder)",
                    f.display(),
                    a.dir.display()
                ),
            ));
        }
    }
    let spec = match &a.spec {
        Some(s) => crate::resolve_spec_arg(s).map_err(|e| Fatal::new(exit::USAGE, e))?,
        None => crate::workspace::State::load(&a.dir)
            .map_err(|e| Fatal::new(exit::USAGE, e))?
            .map(|s| s.spec)
            .unwrap_or_default(),
    };
    let jobs = a.jobs.map_or_else(crate::verify::default_jobs, usize::from);
    let vopts = VerifyOptions {
        load: a.project.load_options(),
        ..verify_options(&a.run.verify, jobs, events)?
    };
    let generator = with_machine(build_generator(&a.run, events)?, &a.run, &spec).await;
    let ropts = repair_options(&a.run, 0.0);
    let report = RunReport {
        command: "repair".into(),
        ..Default::default()
    };
    let out = Output::new(&a.run, &a.dir, events, json, color);
    verify_repair_and_report(&generator, &spec, Some(vopts), &ropts, report, out).await
}

fn print_repair(r: &RepairReport, color: bool) {
    if r.rounds.is_empty() && r.verify.healthy {
        return;
    }
    let used = r.rounds.iter().filter(|x| x.requests > 0).count();
    let u = r.usage;
    println!(
        "Repair: {used} round(s) used; tokens input {}, output {}, cache read {}, cache write {}{}",
        u.input,
        u.output,
        u.cache_read,
        u.cache_write,
        r.cost_usd
            .map(|c| format!("; estimated ${c:.4}"))
            .unwrap_or_default()
    );
    for round in &r.rounds {
        let changed: Vec<String> = round
            .added
            .iter()
            .map(|p| format!("+{p}"))
            .chain(round.changed.iter().map(|p| format!("~{p}")))
            .chain(round.deleted.iter().map(|p| format!("-{p}")))
            .collect();
        println!(
            "    round {}: {:?}; changed {}",
            round.round,
            round.outcome,
            if changed.is_empty() {
                "nothing".into()
            } else {
                changed.join(" ")
            }
        );
        for e in &round.check_edits {
            println!(
                "    {}",
                render::paint(
                    color,
                    "33",
                    &format!(
                        "round {} changed smoke check {}: {} (diff in the report)",
                        round.round, e.check, e.path
                    )
                )
            );
        }
    }
    for f in &r.fixed {
        println!("    {} fixed: {f}", render::paint(color, "32", "✓"));
    }
    for p in &r.preserved {
        println!("    your earlier version of {p} is kept under .masgen/rounds/");
    }
    match r.outcome {
        LoopOutcome::Healthy => {}
        LoopOutcome::RoundsSpent => println!(
            "{}",
            render::paint(
                color,
                "31",
                "stopped: --max-rounds spent; the last attempt is on disk"
            )
        ),
        LoopOutcome::BudgetSpent => println!(
            "{}",
            render::paint(
                color,
                "31",
                "stopped: the next request could cross --max-cost; the last attempt is on disk"
            )
        ),
        LoopOutcome::Stuck => println!(
            "{}",
            render::paint(
                color,
                "31",
                &format!(
                    "stuck: the same failure came back after two repairs in a row ({})",
                    r.stuck_signature.as_deref().unwrap_or("")
                )
            )
        ),
    }
}

async fn verify_cmd(
    a: args::VerifyArgs,
    events: &Events,
    json: bool,
    color: bool,
) -> Result<i32, Fatal> {
    let jobs = a.jobs.map_or_else(crate::verify::default_jobs, usize::from);
    let opts = VerifyOptions {
        load: a.project.load_options(),
        ..verify_options(&a.verify, jobs, events)?
    };
    if !a.dir.is_dir() {
        return Err(Fatal::new(
            exit::USAGE,
            format!(
                "{} is not a folder: pass the folder that holds the compose file",
                a.dir.display()
            ),
        ));
    }
    let v = verify_interruptible(&a.dir, &opts).await?;
    if !json {
        print_verify(&v, color);
    }
    let code = if v.healthy { exit::OK } else { exit::UNHEALTHY };
    // With nothing to run, or refused by the policy, the project was only read: nothing is
    // written into it.
    let only_read = v.services.is_empty()
        || !v.diagnostics.is_empty()
            && v.diagnostics
                .iter()
                .all(|d| d.phase == crate::diagnose::Phase::Policy);
    let report = RunReport {
        command: "verify".into(),
        exit_code: code,
        ..Default::default()
    }
    .with_verify(v);
    write_reports(
        (!only_read).then_some(a.dir.as_path()),
        &report,
        a.report.as_deref(),
        a.verify.junit.as_deref(),
        events,
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "report", "report": report})
        );
    }
    Ok(code)
}

/// `masgen config`: the project as masgen reads it, or the error that stops it (exit 2).
fn config_cmd(a: &args::ConfigArgs) -> Result<i32, Fatal> {
    let p = crate::compose::load::load_with(&a.dir, &a.project.load_options())
        .map_err(|e| Fatal::new(exit::USAGE, e))?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    if a.services {
        p.order.iter().for_each(|s| println!("{s}"));
    } else if a.profiles {
        p.profiles.iter().for_each(|s| println!("{s}"));
    } else {
        let v = crate::compose::normal::project(&p);
        match a.format {
            args::ConfigFormat::Json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            args::ConfigFormat::Yaml => print!("{}", crate::compose::normal::to_yaml(&v)),
        }
    }
    Ok(exit::OK)
}

async fn down(
    dir: &Path,
    project: &args::ProjectFlags,
    images: bool,
    events: &Events,
    json: bool,
) -> Result<i32, Fatal> {
    let name = match crate::compose::load::load_with(dir, &project.load_options()) {
        Ok(p) => p.name,
        Err(_) => {
            let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
            crate::compose::load::sanitize_project_name(
                &abs.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        }
    };
    if !dir.is_dir() {
        // A deleted system's containers can still be removed by its project name.
        events.warn(format!(
            "{} is not a folder: removing what project '{name}' left running, found by its name",
            dir.display()
        ));
    }
    let engine = Engine::connect()
        .await
        .map_err(|e| Fatal::new(exit::ENVIRONMENT, e))?;
    // The kept system and what runs that are over left; a live verification keeps its own.
    let mut removed = teardown::remove_project(&engine, &name).await;
    if images {
        // No image is current once the containers are gone; one another container uses stays.
        removed.images = teardown::prune_images(&engine, &name, &[]).await;
    }
    for why in removed.left.iter().chain(&removed.held) {
        events.warn(why.clone());
    }
    events.emit(crate::Event::TornDown {
        containers: removed.containers,
        networks: removed.networks,
        volumes: removed.volumes,
        images: removed.images,
    });
    if !json {
        let images = if images {
            format!(", {} image(s)", removed.images)
        } else {
            String::new()
        };
        println!(
            "project {name}: removed {} container(s), {} network(s), {} volume(s){images}",
            removed.containers, removed.networks, removed.volumes
        );
    }
    if !removed.left.is_empty() {
        return Err(Fatal::new(
            exit::ENVIRONMENT,
            format!(
                "project {name}: {} object(s) could not be removed (see above)",
                removed.left.len()
            ),
        ));
    }
    Ok(exit::OK)
}

/// The report into `dir`'s .masgen/ (when given), and to the files the user named.
fn write_reports(
    dir: Option<&Path>,
    report: &RunReport,
    extra: Option<&Path>,
    junit_path: Option<&Path>,
    events: &Events,
) {
    let own = dir.map(|d| d.join(crate::workspace::MASGEN_DIR).join("report.json"));
    for p in own.as_deref().into_iter().chain(extra) {
        if let Err(e) = report.write(p) {
            events.warn(format!("could not write the report {}: {e}", p.display()));
        }
    }
    if let (Some(path), Some(v)) = (junit_path, &report.verify) {
        if let Err(e) = crate::workspace::write_atomic(path, junit(v).as_bytes()) {
            events.warn(format!(
                "could not write the JUnit report {}: {e}",
                path.display()
            ));
        }
    }
}

fn print_generation(out: &Path, g: &crate::generate::GenerateReport, color: bool) {
    println!(
        "{} {} files written to {}",
        render::paint(color, "1;32", "✓"),
        g.files.len(),
        out.display()
    );
    for f in &g.files {
        println!("    {f}");
    }
    for m in &g.missing {
        println!(
            "{}",
            render::paint(
                color,
                "33",
                &format!("    missing: {m} (the model never delivered it complete)")
            )
        );
    }
    for p in &g.preserved {
        println!("    kept your previous {p} under .masgen/rounds/000-previous/");
    }
    for u in &g.unmet {
        let line = format!(
            "    ! {}: {} ({})",
            u.kind.as_str(),
            u.requirement,
            u.detail
        );
        println!("{}", render::paint(color, "33", &line));
    }
    let u = g.usage;
    println!(
        "Tokens: input {}, output {}, cache read {}, cache write {} ({} requests)",
        u.input,
        u.output,
        u.cache_read,
        u.cache_write,
        g.requests.len()
    );
    match g.cost_usd {
        Some(c) => println!("Estimated cost: ${c:.4} ({})", g.model),
        None => println!("Estimated cost: unknown (no price for model '{}')", g.model),
    }
}

fn print_verify(v: &VerifyReport, color: bool) {
    if v.services.is_empty() && v.diagnostics.is_empty() {
        println!(
            "{} nothing to run: project {} has no service to start (see the warning above)",
            render::paint(color, "1;32", "✓"),
            v.project
        );
        return;
    }
    print_services(v, color);
    print_smoke(v, color);
    print_unmet(v, color);
    for d in &v.diagnostics {
        println!(
            "{} {} [{}] {}",
            render::paint(color, "31", "✗"),
            d.service,
            d.phase.as_str(),
            d.summary
        );
        for line in crate::diagnose::tail(&d.evidence, 15).lines() {
            println!("    {line}");
        }
        if !d.files.is_empty() {
            println!("    files: {}", d.files.join(", "));
        }
    }
    if v.healthy {
        let kept = if v.kept {
            format!(
                " (left running: `masgen down` removes project {})",
                v.project
            )
        } else {
            String::new()
        };
        println!(
            "{} healthy: {} service(s), {} in {:.1}s{kept}",
            render::paint(color, "1;32", "✓"),
            v.services.len(),
            smoke_count(v),
            v.timings.total_secs
        );
    } else {
        let root = v
            .diagnostics
            .first()
            .map(|d| format!(" (root cause: {} [{}])", d.service, d.phase.as_str()))
            .unwrap_or_default();
        let smoke_only = v
            .diagnostics
            .iter()
            .all(|d| d.phase == crate::diagnose::Phase::Smoke);
        let verdict = if smoke_only {
            format!(
                "healthy, but does not do what was asked ({})",
                smoke_count(v)
            )
        } else {
            format!("not healthy: {} problem(s)", v.diagnostics.len())
        };
        println!("{} {verdict}{root}", render::paint(color, "1;31", "✗"));
    }
}

/// "3 smoke check(s) passed", "1 of 3 smoke check(s) failed", or "no smoke checks".
fn smoke_count(v: &VerifyReport) -> String {
    let mut s = checks_count(v);
    for kind in [UnmetKind::Substituted, UnmetKind::NotMet] {
        let n = v.unmet.iter().filter(|u| u.kind == kind).count();
        if n > 0 {
            s.push_str(&format!(", {n} requirement(s) {}", kind.as_str()));
        }
    }
    s
}

fn checks_count(v: &VerifyReport) -> String {
    if v.smoke.is_empty() {
        return "no smoke checks".into();
    }
    let (passed, failed) = v
        .smoke
        .iter()
        .map(|s| s.counts())
        .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    if failed == 0 && v.smoke.iter().all(|s| s.verdict == Verdict::Passed) {
        format!("{passed} smoke check(s) passed")
    } else {
        format!("smoke checks: {passed} passed, {failed} failed")
    }
}

/// The smoke services: one line each, with the checks that did not pass under it.
fn print_smoke(v: &VerifyReport, color: bool) {
    if v.smoke.is_empty() {
        return;
    }
    println!("{:<18} {:<10} {:>7} CHECKS", "SMOKE", "VERDICT", "TIME");
    for s in &v.smoke {
        let (passed, failed) = s.counts();
        let code = if s.verdict == Verdict::Passed {
            "32"
        } else {
            "31"
        };
        let time = if s.verdict == Verdict::NotRun {
            "-".into()
        } else {
            format!("{:.1}s", s.secs)
        };
        println!(
            "{:<18} {} {:>7} {passed} passed, {failed} failed",
            s.service,
            render::paint(color, code, &format!("{:<10}", s.verdict)),
            time
        );
    }
    println!();
}

/// What the system does not do as the spec asked, as the model said: never silent.
fn print_unmet(v: &VerifyReport, color: bool) {
    for u in &v.unmet {
        let line = format!("! {}: {} ({})", u.kind.as_str(), u.requirement, u.detail);
        println!("{}", render::paint(color, "33", &line));
    }
    if !v.unmet.is_empty() {
        println!();
    }
}

/// The summary table: one line per service.
fn print_services(v: &VerifyReport, color: bool) {
    println!();
    println!(
        "{:<18} {:<42} {:>7} {:>8} {:<12} {:<10} PORTS",
        "SERVICE", "IMAGE", "PULL", "BUILD", "STATE", "HEALTH"
    );
    for s in &v.services {
        let build = match (s.build_secs, s.cached) {
            (Some(_), true) => "cached".to_string(),
            (Some(b), false) => format!("{b:.1}s"),
            (None, _) => "-".into(),
        };
        let state = match s.state.as_str() {
            "ready" | "completed" => render::paint(color, "32", &format!("{:<12}", s.state)),
            other => render::paint(color, "31", &format!("{other:<12}")),
        };
        let pull = s
            .pull_secs
            .map_or_else(|| "-".into(), |p| format!("{p:.1}s"));
        println!(
            "{:<18} {:<42} {:>7} {:>8} {} {:<10} {}",
            s.name,
            s.image,
            pull,
            build,
            state,
            if s.health == HealthState::Unknown {
                "-"
            } else {
                s.health.as_str()
            },
            s.ports.join(", ")
        );
    }
    println!();
}
