//! Run reports: `.masgen/report.json`, `--report FILE`, and JUnit XML.

use std::path::Path;

use serde::Serialize;

use crate::generate::GenerateReport;
use crate::verdict::{CheckPoint, PointVerdict};
use crate::verify::smoke::SmokeReport;
use crate::verify::VerifyReport;

/// The report's format: `masgen report` renders this one and older ones.
pub const REPORT_FORMAT: u32 = 1;

/// Everything one command did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    pub command: String,
    /// The model and the API it was reached through (`anthropic`, `openai`, `replay`),
    /// for the commands that use one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// When the run started (RFC 3339); every time in the report counts from it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started: String,
    /// Seconds from the start to the report.
    pub secs: f64,
    /// The run was interrupted (Ctrl-C, SIGTERM) or ended by an error before its verdict.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What happened when: pulls, builds, waits, starts, smoke checks, model requests and
    /// verifications, each a span of seconds from the start.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Span>,
    /// Healthy at the end (false when verification was skipped or failed).
    pub healthy: bool,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterate: Option<crate::generate::IterateOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// Rounds, their outcomes, diagnostics, tokens, cost and timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<crate::repair::RepairReport>,
    /// `masgen smoke`: where the checks came from, what the model read, the revisions of
    /// broken checks with their diffs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<crate::checks::ChecksReport>,
    /// Verify fields at the top level too, in the documented shape.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<crate::verify::ServiceReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<crate::diagnose::Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<crate::verify::Timings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::llm::Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// One span of the timeline: a row (a service, `model`, `images`, `verification`), what
/// it was, during which verification, from and to (seconds since the start).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Span {
    pub row: String,
    /// pull, build, wait, start (ending ready), failed, smoke, request, verify.
    pub kind: String,
    pub label: String,
    pub round: u32,
    pub start: f64,
    pub end: f64,
}

/// The spans still open, by (row or key, kind).
type Open = std::collections::HashMap<(String, String), usize>;

/// A span that begins at `t` (it ends there too until closed).
fn begin(spans: &mut Vec<Span>, row: &str, kind: &str, label: String, round: u32, t: f64) -> usize {
    spans.push(Span {
        row: row.to_string(),
        kind: kind.to_string(),
        label,
        round,
        start: t,
        end: t,
    });
    spans.len() - 1
}

/// Close the open span `key` at `t` (as `kind`, when given).
fn close(spans: &mut [Span], open: &mut Open, key: (&str, &str), t: f64, kind: Option<&str>) {
    if let Some(i) = open.remove(&(key.0.to_string(), key.1.to_string())) {
        spans[i].end = t;
        if let Some(k) = kind {
            spans[i].kind = k.to_string();
        }
    }
}

/// The rows of `service` and its replicas with a start still open.
fn replica_rows(open: &Open, service: &str) -> Vec<String> {
    let replica = format!("{service} #");
    open.keys()
        .filter(|(row, kind)| kind == "start" && (row == service || row.starts_with(&replica)))
        .map(|(row, _)| row.clone())
        .collect()
}

/// The timeline of a run's events (each with its time), the run ending at `end`.
pub fn timeline(events: &[(f64, crate::events::Event)], end: f64) -> Vec<Span> {
    use crate::events::Event as E;
    let mut spans: Vec<Span> = Vec::new();
    let mut open = Open::new();
    let (mut round, mut verify_start) = (0, 0.0);
    for (t, e) in events {
        let t = *t;
        let key = |row: &String, kind: &str| (row.clone(), kind.to_string());
        match e {
            E::Phase { name } if name == "verify: preflight" => {
                close(&mut spans, &mut open, ("verification", "verify"), t, None);
                round += 1;
                verify_start = t;
                let label = format!("verification {round}");
                let i = begin(&mut spans, "verification", "verify", label, round, t);
                open.insert(key(&"verification".to_string(), "verify"), i);
            }
            E::PullStarted { image } => {
                let i = begin(
                    &mut spans,
                    "images",
                    "pull",
                    format!("pull {image}"),
                    round,
                    t,
                );
                open.insert(key(image, "pull"), i);
            }
            E::PullFinished { image, .. } => close(&mut spans, &mut open, (image, "pull"), t, None),
            E::BuildStarted { service } => {
                let i = begin(&mut spans, service, "build", "build".into(), round, t);
                open.insert(key(service, "build"), i);
            }
            E::BuildFinished { service, .. } => {
                close(&mut spans, &mut open, (service, "build"), t, None)
            }
            E::ContainerStarted { service, container } => {
                // One row per replica: the first is the service's, the others `service #n`.
                let row = if open.contains_key(&key(service, "start")) {
                    let n = container.rsplit('-').next().unwrap_or("?");
                    format!("{service} #{n}")
                } else {
                    service.clone()
                };
                // From the verification's start (or its build's end) it waited: for its
                // image, and for the services it depends on.
                let from = spans
                    .iter()
                    .rev()
                    .find(|s| s.row == *service && s.kind == "build" && s.round == round)
                    .map_or(verify_start, |s| s.end);
                let label = "waiting for its image and dependencies".to_string();
                let w = begin(&mut spans, &row, "wait", label, round, from);
                spans[w].end = t;
                let i = begin(
                    &mut spans,
                    &row,
                    "start",
                    format!("starting {container}"),
                    round,
                    t,
                );
                open.insert(key(&row, "start"), i);
            }
            E::ServiceReady { service, .. } => {
                for row in replica_rows(&open, service) {
                    close(&mut spans, &mut open, (&row, "start"), t, None);
                }
            }
            E::ServiceFailed {
                service, summary, ..
            } => {
                let rows = replica_rows(&open, service);
                if rows.is_empty() {
                    begin(&mut spans, service, "failed", summary.clone(), round, t);
                }
                for row in rows {
                    close(&mut spans, &mut open, (&row, "start"), t, Some("failed"));
                }
            }
            E::SmokeStarted { service } => {
                let i = begin(&mut spans, service, "smoke", "smoke check".into(), round, t);
                open.insert(key(service, "smoke"), i);
            }
            E::SmokeFinished { service, .. } => {
                close(&mut spans, &mut open, (service, "smoke"), t, None)
            }
            E::RequestStarted { label } => {
                let i = begin(&mut spans, "model", "request", label.clone(), round, t);
                open.insert(key(label, "request"), i);
            }
            E::RequestFinished { label, .. } => {
                close(&mut spans, &mut open, (label, "request"), t, None)
            }
            _ => {}
        }
    }
    // What was still going when the run ended (or was interrupted) ends there.
    for i in open.into_values() {
        spans[i].end = end;
    }
    spans
}

impl RunReport {
    /// The report with its time: when the run started, how long it took, its timeline.
    pub fn timed(
        mut self,
        clock: &crate::events::Clock,
        events: &[(f64, crate::events::Event)],
    ) -> Self {
        self.format = REPORT_FORMAT;
        self.started = clock.started.clone();
        self.secs = clock.t();
        self.timeline = timeline(events, self.secs);
        self
    }

    pub fn with_verify(mut self, v: VerifyReport) -> Self {
        self.healthy = v.healthy;
        self.services = v.services.clone();
        self.diagnostics = v.diagnostics.clone();
        self.timings = Some(v.timings.clone());
        self.verify = Some(v);
        self
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let body = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::workspace::write_atomic(path, body.as_bytes())
    }
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one testcase per service, a failure element holding its diagnostics; then
/// one per smoke check (a TAP test point, or a smoke service without TAP), its output in
/// `<failure>` or `<system-out>`.
pub fn junit(report: &VerifyReport) -> String {
    let service_failures = report
        .services
        .iter()
        .filter(|s| report.diagnostics.iter().any(|d| d.service == s.name))
        .count();
    let checks: Vec<(&SmokeReport, &CheckPoint)> = report
        .smoke
        .iter()
        .flat_map(|s| s.points.iter().map(move |p| (s, p)))
        .collect();
    let check_failures = checks
        .iter()
        .filter(|(_, p)| p.verdict == PointVerdict::Failed)
        .count();
    let unrun = report.smoke.iter().filter(|s| s.points.is_empty()).count() + report.unmet.len();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuite name=\"masgen verify {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        xml_escape(&report.project),
        report.services.len() + checks.len() + unrun,
        service_failures + check_failures,
        unrun + checks.iter().filter(|(_, p)| matches!(p.verdict, PointVerdict::Skipped | PointVerdict::Todo)).count(),
        report.timings.total_secs
    ));
    for s in &report.services {
        x.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
            xml_escape(&report.project),
            xml_escape(&s.name),
            s.build_secs.unwrap_or(0.0) + s.ready_secs.unwrap_or(0.0)
        ));
        for d in report.diagnostics.iter().filter(|d| d.service == s.name) {
            x.push_str(&format!(
                "    <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                d.phase.as_str(),
                xml_escape(&d.summary),
                xml_escape(&d.evidence)
            ));
        }
        x.push_str("  </testcase>\n");
    }
    for s in &report.smoke {
        junit_checks(&mut x, report, s);
    }
    // What the spec asked and the system does not do as asked: reported, never silent.
    for u in &report.unmet {
        x.push_str(&format!(
            "  <testcase classname=\"{}.requirements\" name=\"{}\" time=\"0.000\">\n    <skipped message=\"{}: {}\"/>\n  </testcase>\n",
            xml_escape(&report.project),
            xml_escape(&u.requirement),
            u.kind.as_str(),
            xml_escape(&u.detail)
        ));
    }
    x.push_str("</testsuite>\n");
    x
}

/// A smoke service's checks as testcases (class `<project>.smoke.<service>`).
fn junit_checks(x: &mut String, report: &VerifyReport, s: &SmokeReport) {
    let class = xml_escape(&format!("{}.smoke.{}", report.project, s.service));
    if s.points.is_empty() {
        x.push_str(&format!(
            "  <testcase classname=\"{class}\" name=\"{}\" time=\"0.000\">\n    <skipped message=\"not run: the system was not healthy\"/>\n  </testcase>\n",
            xml_escape(&s.service)
        ));
        return;
    }
    let share = s.secs / s.points.len() as f64;
    for p in &s.points {
        x.push_str(&format!(
            "  <testcase classname=\"{class}\" name=\"{}\" time=\"{share:.3}\">\n",
            xml_escape(&p.name)
        ));
        let body = if p.diagnostics.is_empty() {
            &s.output
        } else {
            &p.diagnostics
        };
        match p.verdict {
            PointVerdict::Failed => x.push_str(&format!(
                "    <failure type=\"smoke\" message=\"{}\">{}</failure>\n",
                xml_escape(&s.summary),
                xml_escape(body)
            )),
            PointVerdict::Skipped | PointVerdict::Todo => x.push_str(&format!(
                "    <skipped message=\"{}\"/>\n",
                xml_escape(&p.diagnostics)
            )),
            PointVerdict::Passed => x.push_str(&format!(
                "    <system-out>{}</system-out>\n",
                xml_escape(body)
            )),
        }
        x.push_str("  </testcase>\n");
    }
}

#[cfg(test)]
mod timeline_tests {
    use super::*;
    use crate::events::Event as E;

    #[test]
    fn the_timeline_has_a_row_per_replica_and_the_waits_before_each_start() {
        let e = |t: f64, e: E| (t, e);
        let started = |c: &str| E::ContainerStarted {
            service: "web".into(),
            container: c.into(),
        };
        let events = vec![
            e(
                0.0,
                E::Phase {
                    name: "verify: preflight".into(),
                },
            ),
            e(
                1.0,
                E::BuildStarted {
                    service: "web".into(),
                },
            ),
            e(
                3.0,
                E::BuildFinished {
                    service: "web".into(),
                    secs: 2.0,
                    cached: false,
                    patched: false,
                    ok: true,
                },
            ),
            e(4.0, started("p-web-1")),
            e(4.5, started("p-web-2")),
            e(
                6.0,
                E::ServiceReady {
                    service: "web".into(),
                    secs: 2.0,
                },
            ),
            e(
                7.0,
                E::RequestStarted {
                    label: "repair 1".into(),
                },
            ),
        ];
        let spans = timeline(&events, 9.0);
        let find = |row: &str, kind: &str| {
            spans
                .iter()
                .find(|s| s.row == row && s.kind == kind)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            (find("web", "build").start, find("web", "build").end),
            (1.0, 3.0)
        );
        assert_eq!(
            (find("web", "wait").start, find("web", "wait").end),
            (3.0, 4.0)
        );
        assert_eq!(
            (find("web", "start").start, find("web", "start").end),
            (4.0, 6.0)
        );
        assert_eq!(
            (find("web #2", "start").start, find("web #2", "start").end),
            (4.5, 6.0)
        );
        assert_eq!(
            find("model", "request").end,
            9.0,
            "still running at the end"
        );
        assert_eq!(find("verification", "verify").end, 9.0);
    }
}
