//! Diagnostics: what failed, where, with the evidence a person or a model needs to fix it.

use serde::Serialize;

/// Where in the life of a system something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Compose,
    Policy,
    Image,
    Build,
    Start,
    Crash,
    Health,
    Stability,
    Edit,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Compose => "compose",
            Phase::Policy => "policy",
            Phase::Image => "image",
            Phase::Build => "build",
            Phase::Start => "start",
            Phase::Crash => "crash",
            Phase::Health => "health",
            Phase::Stability => "stability",
            Phase::Edit => "edit",
        }
    }
}

/// One failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub service: String,
    pub phase: Phase,
    /// One line.
    pub summary: String,
    /// The root-cause lines: the failing build step and its output, the exit code and
    /// the last log lines, the health probe's own output.
    pub evidence: String,
    /// Files it implicates, relative to the system folder.
    pub files: Vec<String>,
    /// True when this service failed only because a dependency did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub consequence: bool,
}

impl Diagnostic {
    pub fn new(service: impl Into<String>, phase: Phase, summary: impl Into<String>) -> Self {
        Diagnostic {
            service: service.into(),
            phase,
            summary: summary.into(),
            evidence: String::new(),
            files: Vec::new(),
            consequence: false,
        }
    }
    pub fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence = e.into();
        self
    }
    pub fn files(mut self, f: Vec<String>) -> Self {
        self.files = f;
        self
    }
}

/// Order diagnostics root cause first: real failures before consequences, then by phase.
pub fn order(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.consequence, d.phase));
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
