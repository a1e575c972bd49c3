//! `masgen verify [DIR]`: build, start, health-gate and smoke-check an existing system.

use super::*;

/// Verify `dir`, tearing down on Ctrl-C / SIGTERM (exit 130).
pub(super) async fn verify_interruptible(
    dir: &Path,
    opts: &VerifyOptions,
) -> Result<VerifyReport, Fatal> {
    let rt = runtime();
    tokio::select! {
        r = verify(&rt, dir, opts) => r.map_err(Fatal::from),
        _ = interrupted() => Err(torn_down_after_interrupt(opts, "files are kept").await),
    }
}

pub(super) async fn verify_cmd(a: args::VerifyArgs, ui: &Ui) -> Result<i32, Fatal> {
    let (events, json) = (&ui.events, ui.json);
    let jobs = a.jobs.map_or_else(crate::verify::default_jobs, usize::from);
    let opts = VerifyOptions {
        load: a.project.load_options(),
        ..verify_options(&a.verify, jobs, events)?
    };
    system_folder(&a.dir)?;
    let v = verify_interruptible(&a.dir, &opts).await?;
    if !json {
        print_verify(&v, ui);
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

/// The report into `dir`'s .masgen/ (when given), and to the files the user named.
pub(super) fn write_reports(
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
