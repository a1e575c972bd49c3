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
    /// A smoke check failed on a healthy system (or the check itself is broken).
    Smoke,
    Edit,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
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
            Phase::Smoke => "smoke",
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
    /// The dependency it waited on, for a consequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_on: Option<String>,
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
            waits_on: None,
        }
    }

    /// A service not started because `dependency` failed (or was not started itself).
    pub fn not_started(service: impl Into<String>, dependency: &str, summary: String) -> Self {
        let mut d = Diagnostic::new(service, Phase::Start, summary);
        d.consequence = true;
        d.waits_on = Some(dependency.to_string());
        d
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

/// Say the whole chain where a service waited on one that was itself not started: "not
/// started: waits on api, which was not started because mysql failed", never that api
/// failed when it did not.
pub fn explain_chains(diags: &mut [Diagnostic]) {
    let waits: std::collections::HashMap<String, (bool, Option<String>)> = diags
        .iter()
        .map(|d| (d.service.clone(), (d.consequence, d.waits_on.clone())))
        .collect();
    // The service whose own failure `service`'s chain ends at.
    let root = |service: &str| {
        let mut at = service.to_string();
        for _ in 0..waits.len() {
            match waits.get(&at) {
                Some((true, Some(next))) => at = next.clone(),
                _ => break,
            }
        }
        at
    };
    for d in diags.iter_mut().filter(|d| d.consequence) {
        let Some(dep) = d.waits_on.clone() else {
            continue;
        };
        if matches!(waits.get(&dep), Some((true, _))) {
            d.summary = format!(
                "not started: waits on {dep}, which was not started because {} failed",
                root(&dep)
            );
        }
    }
}

/// Order diagnostics root cause first: real failures before consequences, then by phase.
pub fn order(diags: &mut [Diagnostic]) {
    explain_chains(diags);
    diags.sort_by_key(|d| (d.consequence, d.phase));
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// mysql crashed; api waited on it; seeder waits on api (for tests of the chain in words).
#[cfg(test)]
pub(crate) fn three_level_chain() -> Vec<Diagnostic> {
    vec![
        Diagnostic::not_started(
            "seeder",
            "api",
            "not started: depends on api, which failed".into(),
        ),
        Diagnostic::not_started(
            "api",
            "mysql",
            "not started: depends on mysql, which failed".into(),
        ),
        Diagnostic::new("mysql", Phase::Crash, "crashed: exited with code 1"),
    ]
}

#[cfg(test)]
mod chain_tests {
    use super::*;

    #[test]
    fn a_three_level_chain_names_the_service_that_really_failed() {
        let mut diags = three_level_chain();
        order(&mut diags);
        let summaries: Vec<(&str, &str)> = diags
            .iter()
            .map(|d| (d.service.as_str(), d.summary.as_str()))
            .collect();
        assert_eq!(
            summaries,
            vec![
                ("mysql", "crashed: exited with code 1"),
                (
                    "seeder",
                    "not started: waits on api, which was not started because mysql failed"
                ),
                ("api", "not started: depends on mysql, which failed"),
            ]
        );
    }
}
