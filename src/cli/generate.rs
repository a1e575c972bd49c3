//! `masgen [generate] SPEC`, and `--iterate`: write the files, then verify and repair.

use super::*;

pub(super) async fn generate(a: args::GenerateArgs, ui: &Ui) -> Result<i32, Fatal> {
    let (events, json) = (&ui.events, ui.json);
    if a.iterate.is_some() {
        return iterate(a, ui).await;
    }
    let spec_arg = a.spec.as_deref().ok_or_else(|| {
        Fatal::new(exit::USAGE, "no spec: describe the system, e.g. masgen \"a RabbitMQ broker with a publisher and a consumer\", or pass @path/to/spec.txt")
    })?;
    let spec = crate::resolve_spec_arg(spec_arg).map_err(|e| Fatal::new(exit::USAGE, e))?;
    writable_later("--html", a.run.verify.html.as_deref())?;
    writable_later("--summary-md", a.run.verify.summary_md.as_deref())?;
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
        print_generation(&a.output, g, ui);
    }
    let report = RunReport {
        command: "generate".into(),
        usage: Some(g.usage),
        cost_usd: g.cost_usd,
        generate: Some(g.clone()),
        ..Default::default()
    };
    let ropts = repair_options(&a.run, g.cost_usd.unwrap_or(0.0));
    let out = Output::new(&a.run, &a.output, ui);
    verify_repair_and_report(&generator, &spec, vopts, &ropts, report, out).await
}

/// After files are written: verify and repair (unless `vopts` is None, for --no-verify),
/// write `.masgen/report.json` (also on failure) and the extra reports, print the result,
/// and choose the exit code.
pub(super) async fn verify_repair_and_report(
    generator: &Generator,
    spec: &str,
    vopts: Option<VerifyOptions>,
    ropts: &RepairOptions,
    mut report: RunReport,
    out: Output<'_>,
) -> Result<i32, Fatal> {
    report.model = generator.model().id().to_string();
    report.provider = generator.model().provider().to_string();
    let code = match vopts {
        None => exit::OK,
        Some(vopts) => match repair_interruptible(generator, spec, out.dir, &vopts, ropts).await {
            Ok(r) => finish_repair(&mut report, r, out.ui),
            Err(f) => {
                report.exit_code = f.code;
                write_reports(&out, true, &report, false);
                return Err(f);
            }
        },
    };
    report.exit_code = code;
    let report = write_reports(&out, true, &report, true);
    if out.ui.json {
        println!(
            "{}",
            serde_json::json!({"event": "report", "report": report})
        );
    }
    Ok(code)
}

pub(super) async fn iterate(a: args::GenerateArgs, ui: &Ui) -> Result<i32, Fatal> {
    let (events, json) = (&ui.events, ui.json);
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
        print_iteration(&it, ui);
    }
    let report = RunReport {
        command: "iterate".into(),
        usage: Some(it.usage),
        cost_usd: it.cost_usd,
        iterate: Some(it.clone()),
        ..Default::default()
    };
    let ropts = repair_options(&a.run, it.cost_usd.unwrap_or(0.0));
    let out = Output::new(&a.run, &a.output, ui);
    verify_repair_and_report(&generator, &spec, vopts, &ropts, report, out).await
}

pub(super) fn print_iteration(it: &crate::generate::IterateOutcome, ui: &Ui) {
    println!(
        "{} change applied: {} added, {} changed, {} deleted (request, reply and diff in {})",
        ui.paint("1;32", "✓"),
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
    print_tokens(&it.usage, it.cost_usd);
}

pub(super) fn print_generation(out: &Path, g: &crate::generate::GenerateReport, ui: &Ui) {
    println!(
        "{} {} files written to {}",
        ui.paint("1;32", "✓"),
        g.files.len(),
        out.display()
    );
    for f in &g.files {
        println!("    {f}");
    }
    for m in &g.missing {
        println!(
            "{}",
            ui.paint(
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
        println!("{}", ui.paint("33", &line));
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
