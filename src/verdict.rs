//! The verdicts of smoke checks: a leaf, so that events, reports and verification can
//! all name them.

use serde::Serialize;

/// How one smoke service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The system was not healthy, or `--no-smoke`.
    #[default]
    NotRun,
    Passed,
    /// The system does not do what the check asks: the system's failure.
    Failed,
    /// The check itself crashed or did not build: the check's failure.
    Broken,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotRun => "not_run",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Broken => "broken",
        }
    }
}

/// One test point (or the whole service, when it does not speak TAP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckPoint {
    pub name: String,
    pub verdict: PointVerdict,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diagnostics: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointVerdict {
    Passed,
    Failed,
    Skipped,
    /// A `# TODO` point: reported, never a failure.
    Todo,
}
