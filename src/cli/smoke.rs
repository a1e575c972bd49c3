//! `masgen smoke [DIR]`: write smoke checks for a project masgen did not write, verify the
//! system with them and run them; revise only checks that are broken.

use super::*;
use crate::checks::{ChecksError, ChecksOptions, ChecksReport, Origin};
use crate::compose::load::SMOKE_FILE;

impl From<ChecksError> for Fatal {
    fn from(e: ChecksError) -> Self {
        match e {
            ChecksError::Project(_) => Fatal::new(exit::USAGE, e),
            ChecksError::Verify(v) => Fatal::from(v),
            ChecksError::Generate(g) => Fatal::from(g),
            ChecksError::NoChecks { .. } => Fatal::new(exit::UNHEALTHY, e),
        }
    }
}

pub(super) async fn smoke_cmd(a: args::SmokeArgs, ui: &Ui) -> Result<i32, Fatal> {
    let events = &ui.events;
    project_folder(&a.dir, &a.project)?;
    writes_in_project_directory(&a.dir, &a.project, "smoke")?;
    if a.run.verify.no_smoke {
        return Err(Fatal::new(exit::USAGE, "--no-smoke: masgen smoke writes and runs smoke checks; to verify without them, run masgen verify --no-smoke"));
    }
    if a.run.repair.allow_smoke_edits {
        return Err(Fatal::new(exit::USAGE, "--allow-smoke-edits: masgen smoke never changes the project to make a check pass, and revises only broken checks"));
    }
    writable(&a.dir)?;
    let jobs = a.jobs.map_or_else(crate::verify::default_jobs, usize::from);
    let vopts = VerifyOptions {
        load: a.project.load_options(),
        ..verify_options(&a.run.verify, jobs, events)?
    };
    preflight(&a, &vopts)?;
    let about = std::fs::read_to_string(a.dir.join("README.md")).unwrap_or_default();
    let kept = a.dir.join(SMOKE_FILE).is_file() && !a.regenerate;
    let mut max_rounds = a.run.repair.max_rounds;
    let generator = match build_generator(&a.run, events) {
        Ok(g) => with_machine(g, &a.run, &about).await,
        // Checks the project has run without a model: only a revision would need one.
        Err(f) if kept && f.code == exit::ENVIRONMENT && a.run.model.key().is_none() => {
            events.warn(format!(
                "{}: the checks are run as they are, and a broken one is reported, not revised",
                f.message
            ));
            max_rounds = 0;
            let model = crate::llm::Keyless {
                id: a.run.model.model.clone(),
            };
            Generator::with_model(std::sync::Arc::new(model), events.clone())
        }
        Err(f) => return Err(f),
    };
    let opts = ChecksOptions {
        load: a.project.load_options(),
        regenerate: a.regenerate,
        max_rounds,
        max_cost_usd: a.run.repair.max_cost,
        max_tokens: a.run.model.max_tokens,
        download_responses: a.run.model.download_responses,
    };
    let verifier = RuntimeVerifier(runtime());
    let mut report = RunReport {
        command: "smoke".into(),
        model: generator.model().id().to_string(),
        provider: generator.model().provider().to_string(),
        ..Default::default()
    };
    let out = Output::new(&a.run, &a.dir, ui);
    let result = tokio::select! {
        r = crate::checks::smoke(&verifier, &generator, &a.dir, &vopts, &opts) => r.map_err(Fatal::from),
        _ = interrupted() => Err(torn_down_after_interrupt(&vopts, "the checks written so far are kept").await),
    };
    let checks = match result {
        Ok(c) => c,
        Err(f) => {
            report.exit_code = f.code;
            write_reports(&out, true, &report, false);
            return Err(f);
        }
    };
    if !ui.json {
        print_verify(&checks.verify, ui);
        print_checks(&checks, &a, ui);
    }
    let code = if checks.verify.healthy {
        exit::OK
    } else {
        exit::UNHEALTHY
    };
    report.exit_code = code;
    report.usage = Some(checks.usage);
    report.cost_usd = checks.cost_usd;
    let verify = checks.verify.clone();
    report.checks = Some(checks);
    let report = report.with_verify(verify);
    let report = write_reports(&out, true, &report, true);
    if ui.json {
        println!(
            "{}",
            serde_json::json!({"event": "report", "report": report})
        );
    }
    Ok(code)
}

/// masgen smoke writes into the project's folder: one it cannot write is bad input, found
/// before any request.
fn writable(dir: &Path) -> Result<(), Fatal> {
    let probe = dir.join(format!(".masgen-write-probe-{}", std::process::id()));
    can_write(&probe).map_err(|e| {
        Fatal::new(
            exit::USAGE,
            format!(
                "cannot write into {}: {e}. masgen smoke writes the checks there (smoke/ and {SMOKE_FILE}); run it on a copy of the project you can write to",
                dir.display()
            ),
        )
    })
}

/// The project as verification will read it, before any request: one masgen cannot read,
/// or would refuse to run, is bad input (exit 2), as is a checks' file that changes the
/// project.
fn preflight(a: &args::SmokeArgs, vopts: &VerifyOptions) -> Result<(), Fatal> {
    let usage = |e: &dyn std::fmt::Display| Fatal::new(exit::USAGE, e);
    let own = crate::compose::load::LoadOptions {
        smoke_file: false,
        ..vopts.load.clone()
    };
    let plan = crate::plan::load(&a.dir, &own, true, vopts.settle).map_err(|e| usage(&e))?;
    if plan.services.is_empty() {
        return Err(usage(
            &"the project has no service to run: smoke checks need a system to check",
        ));
    }
    if let Some(r) = plan.refused.iter().find(|_| !vopts.allow_unsafe) {
        return Err(usage(&format!(
            "masgen refuses to run this project: service '{}' sets {} ({}); pass --allow-unsafe if you trust it",
            r.service, r.key, r.detail
        )));
    }
    let path = a.dir.join(SMOKE_FILE);
    if a.regenerate || !path.is_file() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let system: Vec<String> = plan.services.iter().map(|s| s.name.clone()).collect();
    if let Some(why) = crate::generate::guard::checks_file_problem(&text, &system) {
        return Err(usage(&format!(
            "{SMOKE_FILE}: {why}. Fix it, or pass --regenerate to write new checks"
        )));
    }
    crate::plan::load(&a.dir, &vopts.load, true, vopts.settle).map_err(|e| usage(&e))?;
    Ok(())
}

fn print_checks(c: &ChecksReport, a: &args::SmokeArgs, ui: &Ui) {
    match c.origin {
        Origin::Kept => println!(
            "Smoke checks: the project's own ({SMOKE_FILE}), run as they are (--regenerate writes new ones)"
        ),
        Origin::Written | Origin::Regenerated => {
            let read: usize = c.read.iter().map(|p| p.shown).sum();
            let cut: Vec<&str> = c
                .read
                .iter()
                .filter(|p| p.shown < p.chars)
                .map(|p| p.name.as_str())
                .collect();
            println!(
                "Smoke checks written by the model after reading {} parts of the project ({read} characters{}):",
                c.read.len(),
                if cut.is_empty() {
                    String::new()
                } else {
                    format!("; cut to fit: {}", cut.join(", "))
                }
            );
            for f in &c.files {
                println!("    + {f}");
            }
            for f in &c.removed {
                println!("    - {f} (--regenerate)");
            }
        }
    }
    for r in &c.revisions {
        for e in &r.check_edits {
            let line = format!(
                "revision {}: broken check {} changed {} (diff in the report)",
                r.round, e.check, e.path
            );
            println!("    {}", ui.paint("33", &line));
        }
    }
    if c.budget_spent {
        println!(
            "{}",
            ui.paint("31", "stopped: the next revision could cross --max-cost")
        );
    }
    print_tokens(&c.usage, c.cost_usd);
    let files = compose_args(a);
    for s in &c.verify.smoke {
        println!(
            "Run it without masgen: docker compose{files} --profile smoke run --rm {}",
            s.service
        );
    }
    println!("masgen ci writes a workflow that runs them on every push.");
}

/// The `-f` arguments plain Compose needs to read the project with its checks.
fn compose_args(a: &args::SmokeArgs) -> String {
    let load = a.project.load_options();
    let Ok(p) = crate::compose::load::load_with(&a.dir, &load) else {
        return String::new();
    };
    std::iter::once(&p.file)
        .chain(&p.merged_files)
        .map(|f| format!(" -f {}", p.rel(f)))
        .collect()
}
