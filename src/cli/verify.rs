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
    let out = Output {
        dir: &a.dir,
        report_file: a.report.as_deref(),
        junit: a.verify.junit.as_deref(),
        html: a.verify.html.as_deref(),
        summary_md: a.verify.summary_md.as_deref(),
        ui,
    };
    let report = write_reports(&out, !only_read, &report, true);
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "report", "report": report})
        );
    }
    Ok(code)
}

/// The report, timed (its start, length and timeline), into the system's .masgen/ (when
/// `own`), and to the files the user named: JSON, JUnit (when the run `ended` with a
/// verdict), the HTML page, the Markdown summary. A run that did not end is marked
/// interrupted. Returns the report as written.
pub(super) fn write_reports(out: &Output, own: bool, report: &RunReport, ended: bool) -> RunReport {
    let ui = out.ui;
    let events = &ui.events;
    let mut report = report.clone().timed(&ui.clock, &ui.record.events());
    report.interrupted = !ended;
    let own = own.then(|| {
        out.dir
            .join(crate::workspace::MASGEN_DIR)
            .join("report.json")
    });
    for p in own.as_deref().into_iter().chain(out.report_file) {
        if let Err(e) = report.write(p) {
            events.warn(format!("could not write the report {}: {e}", p.display()));
        }
    }
    if let (Some(path), Some(v), true) = (out.junit, &report.verify, ended) {
        if let Err(e) = crate::workspace::write_atomic(path, junit(v).as_bytes()) {
            events.warn(format!(
                "could not write the JUnit report {}: {e}",
                path.display()
            ));
        }
    }
    let value = serde_json::to_value(&report).unwrap_or_default();
    let pages = [
        (
            out.html,
            crate::html::page(&value, Some(out.dir)),
            "run page",
        ),
        (out.summary_md, crate::html::markdown(&value), "summary"),
    ];
    for (path, text, what) in pages {
        let Some(path) = path else { continue };
        match crate::workspace::write_atomic(path, text.as_bytes()) {
            Ok(()) if !ui.json && what == "run page" => {
                println!("Run page: {}", path.display())
            }
            Ok(()) => {}
            Err(e) => events.warn(format!(
                "could not write the {what} {}: {e}",
                path.display()
            )),
        }
    }
    report
}
