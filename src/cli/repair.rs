//! `masgen repair [DIR]`: verify, then repair with the model until healthy.

use super::*;

/// Run the repair loop, tearing down on Ctrl-C / SIGTERM (exit 130; files and history kept).
pub(super) async fn repair_interruptible(
    generator: &Generator,
    spec: &str,
    dir: &Path,
    vopts: &VerifyOptions,
    ropts: &RepairOptions,
) -> Result<RepairReport, Fatal> {
    let verifier = RuntimeVerifier(runtime());
    tokio::select! {
        r = repair_loop(&verifier, generator, spec, dir, vopts, ropts) => r.map_err(Fatal::from),
        _ = interrupted() => Err(torn_down_after_interrupt(vopts, "files and .masgen/rounds/ are kept").await),
    }
}

/// Fold a repair report into the run report, print it, and choose the exit code.
pub(super) fn finish_repair(report: &mut RunReport, r: RepairReport, ui: &Ui) -> i32 {
    if !ui.json {
        print_verify(&r.verify, ui);
        print_repair(&r, ui);
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

pub(super) async fn repair_cmd(a: args::RepairArgs, ui: &Ui) -> Result<i32, Fatal> {
    let events = &ui.events;
    project_folder(&a.dir, &a.project)?;
    writes_in_project_directory(&a.dir, &a.project, "repair")?;
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
    let out = Output::new(&a.run, &a.dir, ui);
    verify_repair_and_report(&generator, &spec, Some(vopts), &ropts, report, out).await
}

pub(super) fn print_repair(r: &RepairReport, ui: &Ui) {
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
                ui.paint(
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
        println!("    {} fixed: {f}", ui.paint("32", "✓"));
    }
    for p in &r.preserved {
        println!("    your earlier version of {p} is kept under .masgen/rounds/");
    }
    match r.outcome {
        LoopOutcome::Healthy => {}
        LoopOutcome::RoundsSpent => println!(
            "{}",
            ui.paint(
                "31",
                "stopped: --max-rounds spent; the last attempt is on disk"
            )
        ),
        LoopOutcome::BudgetSpent => println!(
            "{}",
            ui.paint(
                "31",
                "stopped: the next request could cross --max-cost; the last attempt is on disk"
            )
        ),
        LoopOutcome::Stuck => println!(
            "{}",
            ui.paint(
                "31",
                &format!(
                    "stuck: the same failure came back after two repairs in a row ({})",
                    r.stuck_signature.as_deref().unwrap_or("")
                )
            )
        ),
    }
}
