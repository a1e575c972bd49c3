//! `masgen report [DIR|REPORT.json] --html FILE`: a run's report rendered after the fact.

use super::*;
use crate::report::REPORT_FORMAT;

pub(super) fn report_cmd(a: &args::ReportArgs, ui: &Ui) -> Result<i32, Fatal> {
    let usage = |m: String| Fatal::new(exit::USAGE, m);
    if a.html.is_none() && a.summary_md.is_none() {
        return Err(usage(
            "say what to write: --html FILE (the page) and/or --summary-md FILE".into(),
        ));
    }
    writable_later("--html", a.html.as_deref())?;
    writable_later("--summary-md", a.summary_md.as_deref())?;
    // A system's folder, or a report file (its system is the folder holding .masgen/).
    let (file, dir) = if a.from.is_dir() {
        let f = a
            .from
            .join(crate::workspace::MASGEN_DIR)
            .join("report.json");
        (f, Some(a.from.clone()))
    } else {
        let dir = a
            .from
            .parent()
            .filter(|p| p.ends_with(crate::workspace::MASGEN_DIR))
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        (a.from.clone(), dir)
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| usage(format!("cannot read {}: {e}: name a system's folder (it holds .masgen/report.json after a run) or a report file", file.display())))?;
    let not_ours = || {
        usage(format!(
            "{} is not a masgen report (JSON with command and exit_code)",
            file.display()
        ))
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| not_ours())?;
    let ours = value.get("command").is_some_and(|c| c.is_string())
        && value.get("exit_code").is_some_and(|c| c.is_i64());
    if !ours {
        return Err(not_ours());
    }
    let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
    if format > u64::from(REPORT_FORMAT) {
        return Err(usage(format!("{} is a report of a newer masgen (format {format}; this one reads up to {REPORT_FORMAT}): render it with that masgen, or upgrade", file.display())));
    }
    let pages = [
        (&a.html, crate::html::page(&value, dir.as_deref())),
        (&a.summary_md, crate::html::markdown(&value)),
    ];
    for (path, body) in pages {
        let Some(path) = path else { continue };
        crate::workspace::write_atomic(path, body.as_bytes()).map_err(|e| {
            Fatal::new(
                exit::ENVIRONMENT,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        if !ui.json {
            println!("wrote {}", path.display());
        }
    }
    Ok(exit::OK)
}
