//! A run's report as one self-contained HTML page (`--html`, `masgen report`): the verdict,
//! a timeline of what happened when, the services, the failures with their evidence, each
//! repair round with its diff, the smoke checks, the warnings. Inline CSS and SVG, no
//! network, no script: readable printed. Every text from the model or from logs is
//! escaped. Also the same verdict, table and failures as Markdown (`--summary-md`), for a
//! CI job's summary.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Escape text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The array at JSON pointer `at` (`/diagnostics`, `/verify/smoke`), empty when absent.
fn list<'a>(v: &'a Value, at: &str) -> &'a [Value] {
    v.pointer(at)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The verdict in words, and whether it is good.
fn verdict(r: &Value) -> (String, bool) {
    if r.get("interrupted").and_then(Value::as_bool) == Some(true) {
        return ("interrupted before its verdict".into(), false);
    }
    let healthy = r.get("healthy").and_then(Value::as_bool) == Some(true);
    let diags = list(r, "/diagnostics");
    if healthy {
        return ("healthy".into(), true);
    }
    if !diags.is_empty() && diags.iter().all(|d| text(d, "phase") == "smoke") {
        return ("healthy, but does not do what was asked".into(), false);
    }
    match diags.first() {
        Some(d) => (
            format!(
                "not healthy: {} problem(s), root cause {} [{}]",
                diags.len(),
                text(d, "service"),
                text(d, "phase")
            ),
            false,
        ),
        None => (
            format!("ended with exit code {}", num(r, "exit_code")),
            false,
        ),
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d1d1f;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.ok{color:#11752a}.bad{color:#b3261e}.meta{color:#555}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f6f6f6}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;white-space:pre-wrap;font-size:12px}
.add{background:#e6ffec;color:#116329;display:block}.del{background:#ffebe9;color:#82071e;display:block}
.hunk{color:#6639ba;display:block}details{margin:.3em 0}summary{cursor:pointer}
.k-pull{fill:#8fb8de}.k-build{fill:#f0b35b}.k-wait{fill:#e4e4e4}.k-start{fill:#6cc27f}.k-failed{fill:#e05d52}
.k-smoke{fill:#a78bda}.k-request{fill:#5aa9a0}.k-verify{fill:#f3f3f3}.band{fill:#fafafa}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
@media print{details{display:block}details>*{display:block}}";

/// The whole page: `r` is a run report (JSON); `dir`, when known, the system's folder,
/// whose round folders hold each repair's diff and reply.
pub fn page(r: &Value, dir: Option<&Path>) -> String {
    let (words, good) = verdict(r);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>masgen {}: {}</title><style>{STYLE}</style></head><body>\n",
        esc(text(r, "command")),
        esc(&words)
    );
    header(&mut h, r, &words, good);
    timeline(&mut h, r);
    services(&mut h, r);
    diagnostics(&mut h, r);
    rounds(&mut h, r, dir);
    smoke(&mut h, r);
    warnings(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn header(h: &mut String, r: &Value, words: &str, good: bool) {
    let project = r
        .pointer("/verify/project")
        .and_then(Value::as_str)
        .unwrap_or("");
    let _ = writeln!(
        h,
        "<h1 id=\"verdict\" class=\"{}\">{} {}</h1>",
        if good { "ok" } else { "bad" },
        if good { "✓" } else { "✗" },
        esc(words)
    );
    let model = match (text(r, "model"), text(r, "provider")) {
        ("", _) => r
            .pointer("/generate/model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        (m, "") => m.to_string(),
        (m, p) => format!("{m} ({p})"),
    };
    let mut facts = vec![
        format!("<b>masgen {}</b>", esc(text(r, "command"))),
        format!("project {}", esc(project)),
        format!("started {}", esc(text(r, "started"))),
        format!("{:.1} s", num(r, "secs")),
        format!("exit code {}", num(r, "exit_code")),
    ];
    if !model.is_empty() {
        facts.push(format!("model {}", esc(&model)));
    }
    if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
        facts.push(format!(
            "tokens in {} / out {} / cache read {} / cache write {}",
            num(u, "input"),
            num(u, "output"),
            num(u, "cache_read"),
            num(u, "cache_write")
        ));
    }
    if let Some(c) = r.get("cost_usd").and_then(Value::as_f64) {
        facts.push(format!("estimated ${c:.4}"));
    }
    let _ = writeln!(h, "<p class=\"meta\">{}</p>", facts.join(" · "));
}

/// A Gantt chart: one row per service (and the model, the image pulls, the
/// verifications), each span coloured by what it was, each verification a band.
fn timeline(h: &mut String, r: &Value) {
    let spans = list(r, "/timeline");
    if spans.is_empty() {
        return;
    }
    let end = spans
        .iter()
        .map(|s| num(s, "end"))
        .fold(num(r, "secs"), f64::max)
        .max(0.001);
    let mut rows: Vec<&str> = Vec::new();
    for s in spans.iter().filter(|s| text(s, "kind") != "verify") {
        let row = text(s, "row");
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    let (left, width, row_h) = (170.0, 880.0, 22.0);
    let height = row_h * rows.len() as f64 + 30.0;
    let x = |t: f64| left + t / end * width;
    let _ = write!(
        h,
        "<h2>Timeline</h2>\n<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"timeline\">\n",
        left + width + 10.0
    );
    for s in spans.iter().filter(|s| text(s, "kind") == "verify") {
        let (a, b) = (x(num(s, "start")), x(num(s, "end")));
        let _ = writeln!(
            h,
            "<rect class=\"band\" x=\"{a:.1}\" y=\"0\" width=\"{:.1}\" height=\"{height}\"><title>{}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#888\">{}</text>",
            (b - a).max(1.0),
            esc(text(s, "label")),
            a + 2.0,
            height - 4.0,
            esc(text(s, "label"))
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let _ = writeln!(
            h,
            "<g class=\"row\" data-row=\"{0}\"><text x=\"4\" y=\"{1:.1}\" font-size=\"12\">{0}</text>",
            esc(row),
            y + 13.0
        );
        for s in spans
            .iter()
            .filter(|s| text(s, "row") == *row && text(s, "kind") != "verify")
        {
            let (a, b) = (x(num(s, "start")), x(num(s, "end")));
            let _ = writeln!(
                h,
                "<rect class=\"k-{}\" x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {} ({:.1}–{:.1} s)</title></rect>",
                esc(text(s, "kind")),
                (b - a).max(2.0),
                row_h - 6.0,
                esc(row),
                esc(text(s, "label")),
                num(s, "start"),
                num(s, "end")
            );
        }
        h.push_str("</g>\n");
    }
    let _ = writeln!(
        h,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"10\" fill=\"#888\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#888\" text-anchor=\"end\">{end:.1} s</text></svg>",
        height - 16.0,
        left + width,
        height - 16.0
    );
    h.push_str("<p class=\"legend\">");
    for (k, w) in [
        ("pull", "pull"),
        ("build", "build"),
        ("wait", "waiting for image and dependencies"),
        ("start", "starting until ready"),
        ("failed", "failed"),
        ("smoke", "smoke check"),
        ("request", "model request"),
    ] {
        let _ = write!(
            h,
            "<span><svg width=\"12\" height=\"12\"><rect class=\"k-{k}\" width=\"12\" height=\"12\"/></svg> {w}</span>"
        );
    }
    h.push_str("</p>\n");
}

fn services(h: &mut String, r: &Value) {
    let services = list(r, "/services");
    if services.is_empty() {
        return;
    }
    h.push_str("<h2>Services</h2>\n<table id=\"services\"><tr><th>service</th><th>image</th><th>state</th><th>health</th><th>build</th><th>ready after</th><th>ports</th></tr>\n");
    for s in services {
        let build = match (s.get("build_secs").and_then(Value::as_f64), s.get("cached")) {
            (Some(_), Some(Value::Bool(true))) => "cached".to_string(),
            (Some(b), _) => format!("{b:.1} s"),
            _ => "-".into(),
        };
        let ready = s
            .get("ready_secs")
            .and_then(Value::as_f64)
            .map_or("-".into(), |x| format!("{x:.1} s"));
        let replicas = list(s, "/replicas");
        let name = if replicas.is_empty() {
            esc(text(s, "name"))
        } else {
            format!("{} ×{}", esc(text(s, "name")), replicas.len())
        };
        let ports: Vec<String> = list(s, "/ports")
            .iter()
            .filter_map(Value::as_str)
            .map(esc)
            .collect();
        let _ = writeln!(
            h,
            "<tr class=\"service\" data-service=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{build}</td><td>{ready}</td><td>{}</td></tr>",
            esc(text(s, "name")),
            esc(text(s, "image")),
            esc(text(s, "state")),
            esc(text(s, "health")),
            ports.join("<br>")
        );
    }
    h.push_str("</table>\n");
}

fn diagnostics(h: &mut String, r: &Value) {
    let diags = list(r, "/diagnostics");
    if diags.is_empty() {
        return;
    }
    h.push_str("<h2>What failed, root cause first</h2>\n");
    for d in diags {
        let _ = writeln!(
            h,
            "<div class=\"diagnostic\"><p><b class=\"bad\">✗ {}</b> [{}] {}</p>",
            esc(text(d, "service")),
            esc(text(d, "phase")),
            esc(text(d, "summary"))
        );
        let evidence = text(d, "evidence");
        if !evidence.is_empty() {
            let _ = writeln!(
                h,
                "<details><summary>evidence</summary><pre>{}</pre></details>",
                esc(evidence)
            );
        }
        let files: Vec<&str> = list(d, "/files").iter().filter_map(Value::as_str).collect();
        if !files.is_empty() {
            let _ = writeln!(h, "<p class=\"meta\">files: {}</p>", esc(&files.join(", ")));
        }
        h.push_str("</div>\n");
    }
}

/// A unified diff, its added and deleted lines coloured.
pub fn diff_html(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            ""
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            ""
        };
        if class.is_empty() {
            let _ = writeln!(out, "{}", esc(line));
        } else {
            let _ = write!(out, "<span class=\"{class}\">{}</span>", esc(line));
        }
    }
    out.push_str("</pre>");
    out
}

/// What the model wrote besides its file blocks: its commentary.
fn commentary(reply: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in reply.lines() {
        let t = line.trim_start();
        if t.starts_with("--- ") && t.ends_with(" ---") {
            continue;
        }
        if t.starts_with("<file ") || t.starts_with("<edit ") {
            inside = true;
        }
        if !inside && !t.starts_with("<delete ") {
            out.push_str(line);
            out.push('\n');
        }
        if t.starts_with("</file>") || t.starts_with("</edit>") {
            inside = false;
        }
    }
    out.trim().to_string()
}

fn rounds(h: &mut String, r: &Value, dir: Option<&Path>) {
    let rounds = list(r, "/repair/rounds");
    if rounds.is_empty() {
        return;
    }
    h.push_str("<h2>Repair rounds</h2>\n");
    for round in rounds {
        let usage = round.get("usage").cloned().unwrap_or_default();
        let cost = round
            .get("cost_usd")
            .and_then(Value::as_f64)
            .map(|c| format!(", ${c:.4}"))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<div class=\"round\" data-round=\"{0}\"><h3>Round {0}: {1}</h3><p class=\"meta\">tokens in {2} / out {3}{cost}; model {4:.1} s, verification {5:.1} s</p>",
            num(round, "round"),
            esc(text(round, "outcome")),
            num(&usage, "input"),
            num(&usage, "output"),
            num(round, "model_secs"),
            num(round, "verify_secs")
        );
        let sig = text(round, "signature");
        if !sig.is_empty() {
            let _ = writeln!(h, "<p>triggered by: {}</p>", esc(sig));
        }
        let folder = dir.map(|d| d.join(text(round, "folder")));
        let read = |f: &str| {
            folder
                .as_ref()
                .filter(|_| !text(round, "folder").is_empty())
                .and_then(|p| std::fs::read_to_string(p.join(f)).ok())
        };
        if let Some(reply) = read("reply.txt") {
            let c = commentary(&reply);
            if !c.is_empty() {
                let _ = writeln!(
                    h,
                    "<blockquote class=\"commentary\">{}</blockquote>",
                    esc(&c).replace('\n', "<br>")
                );
            }
        }
        match read("changes.diff") {
            Some(diff) if !diff.trim().is_empty() => h.push_str(&diff_html(&diff)),
            _ => {
                let changed: Vec<String> = ["added", "changed", "deleted"]
                    .iter()
                    .flat_map(|k| {
                        list(round, &format!("/{k}"))
                            .iter()
                            .filter_map(Value::as_str)
                            .map(move |p| format!("{k} {p}"))
                    })
                    .collect();
                let _ = writeln!(h, "<p>{}</p>", esc(&changed.join(", ")));
            }
        }
        h.push_str("</div>\n");
    }
}

fn smoke(h: &mut String, r: &Value) {
    let checks = list(r, "/verify/smoke");
    if checks.is_empty() {
        return;
    }
    h.push_str("<h2>Smoke checks</h2>\n");
    for c in checks {
        let verdict = text(c, "verdict");
        let _ = writeln!(
            h,
            "<div class=\"check\"><p><b class=\"{}\">{}</b> {} <span class=\"meta\">{}</span></p><ul>",
            if verdict == "passed" { "ok" } else { "bad" },
            esc(verdict),
            esc(text(c, "service")),
            esc(text(c, "summary"))
        );
        for p in list(c, "/points") {
            let _ = writeln!(
                h,
                "<li>{} {}{}</li>",
                esc(text(p, "verdict")),
                esc(text(p, "name")),
                match text(p, "diagnostics") {
                    "" => String::new(),
                    d => format!("<pre>{}</pre>", esc(d)),
                }
            );
        }
        h.push_str("</ul>");
        let output = text(c, "output");
        if !output.is_empty() {
            let _ = write!(
                h,
                "<details><summary>output</summary><pre>{}</pre></details>",
                esc(output)
            );
        }
        h.push_str("</div>\n");
    }
}

fn warnings(h: &mut String, r: &Value) {
    let warnings = list(r, "/verify/warnings");
    if warnings.is_empty() {
        return;
    }
    h.push_str("<h2>Warnings</h2>\n<ul id=\"warnings\">\n");
    for w in warnings.iter().filter_map(Value::as_str) {
        let _ = writeln!(h, "<li>{}</li>", esc(w));
    }
    h.push_str("</ul>\n");
}

/// The verdict, the services and the failures as Markdown (a CI job's summary).
pub fn markdown(r: &Value) -> String {
    let (words, good) = verdict(r);
    let mut m = format!(
        "## {} masgen {}: {words}\n\n",
        if good { "✅" } else { "❌" },
        text(r, "command")
    );
    let services = list(r, "/services");
    if !services.is_empty() {
        m.push_str("| service | state | health | ready after |\n|---|---|---|---|\n");
        for s in services {
            let ready = s
                .get("ready_secs")
                .and_then(Value::as_f64)
                .map_or("-".into(), |x| format!("{x:.1} s"));
            let _ = writeln!(
                m,
                "| {} | {} | {} | {ready} |",
                md(text(s, "name")),
                md(text(s, "state")),
                md(text(s, "health"))
            );
        }
        m.push('\n');
    }
    for d in list(r, "/diagnostics") {
        let _ = writeln!(
            m,
            "- **{}** [{}] {}",
            md(text(d, "service")),
            md(text(d, "phase")),
            md(text(d, "summary"))
        );
    }
    for c in list(r, "/verify/smoke") {
        let _ = writeln!(
            m,
            "- smoke check {}: {}",
            md(text(c, "service")),
            md(text(c, "verdict"))
        );
    }
    m
}

/// Text safe in a Markdown table cell or list item.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_from_logs_and_the_model_is_escaped() {
        let r = json!({"command": "verify", "healthy": false, "exit_code": 1,
            "diagnostics": [{"service": "api", "phase": "crash", "summary": "crashed <b>", "evidence": "<script>alert(1)</script>", "files": []}]});
        let page = page(&r, None);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("crashed &lt;b&gt;"));
        assert!(markdown(&r).contains("crashed &lt;b>"));
    }

    #[test]
    fn a_diff_s_lines_are_coloured_and_commentary_is_what_is_not_a_block() {
        let d = diff_html("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n");
        assert!(
            d.contains("<span class=\"del\">-old</span>")
                && d.contains("<span class=\"add\">+new</span>")
        );
        assert!(!d.contains("class=\"add\">+++"));
        let c = commentary(
            "--- repair 1 ---\nThe worker lacks yaml.\n<edit path=\"w.py\">\nx\n</edit>\nDone.\n",
        );
        assert_eq!(c, "The worker lacks yaml.\nDone.");
    }
}
