//! Run reports: `.masgen/report.json`, `--report FILE`, and JUnit XML.

use std::path::Path;

use serde::Serialize;

use crate::generate::GenerateReport;
use crate::verdict::{CheckPoint, PointVerdict};
use crate::verify::smoke::SmokeReport;
use crate::verify::VerifyReport;

/// Everything one command did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunReport {
    pub command: String,
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

impl RunReport {
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
