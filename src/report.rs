//! Run reports: `.masgen/report.json`, `--report FILE`, and JUnit XML.

use std::path::Path;

use serde::Serialize;

use crate::generate::GenerateReport;
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

/// JUnit XML: one testcase per service, a failure element holding its diagnostics.
pub fn junit(report: &VerifyReport) -> String {
    let failures = report
        .services
        .iter()
        .filter(|s| report.diagnostics.iter().any(|d| d.service == s.name))
        .count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuite name=\"masgen verify {}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        xml_escape(&report.project),
        report.services.len(),
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
    x.push_str("</testsuite>\n");
    x
}
