//! What a runtime says of a container: a snapshot of its state, its health, how a wait for
//! readiness ended, and one run of its healthcheck.

use std::time::Duration;

use serde::Serialize;

/// A container's health, as verification reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Never started, or not known yet.
    #[default]
    #[serde(rename = "")]
    Unknown,
    /// It has no healthcheck: ready by running (or by completing).
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "",
            HealthState::None => "none",
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }

    /// Whether the container has a healthcheck at all.
    pub fn checked(self) -> bool {
        matches!(
            self,
            HealthState::Starting | HealthState::Healthy | HealthState::Unhealthy
        )
    }
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the container looks like now.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub health: HealthState,
    pub restarts: i64,
    /// The output of the latest health probes, oldest first.
    pub probes: Vec<String>,
    pub error: Option<String>,
    /// The healthcheck test Docker runs (the compose file's or the image's), and its timeout.
    pub test: Option<(Vec<String>, Duration)>,
    /// The healthcheck's start period: failures in it do not count, for Docker or masgen.
    pub start_period: Duration,
}

/// How waiting ended.
#[derive(Debug, Clone)]
pub enum Wait {
    Ready,
    /// Exited 0 (a one-shot that completed).
    Completed,
    /// Exited with this snapshot (non-zero, or zero where it should keep running).
    Exited(Snapshot),
    /// Docker reported unhealthy.
    Unhealthy(Snapshot),
    /// The deadline passed.
    TimedOut(Option<Snapshot>),
    /// The healthcheck's program is not in the image (exit 126 or 127 on every probe for a
    /// while): waiting longer cannot help. Holds the probe's own output.
    ProbeCannotRun(Snapshot, Probe),
    /// The container vanished.
    Gone,
}

/// A healthcheck whose program is missing fails after this many probes in a row, over at
/// least this long and not before its start period is over (an entrypoint that installs
/// the tool at start gets that long, as Docker would give it).
pub const CANNOT_RUN_PROBES: u32 = 10;
pub const CANNOT_RUN_FOR: Duration = Duration::from_secs(3);

/// What a command run in a container did (a hook): its exit code (None: still running at
/// its deadline) and what it printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ran {
    pub exit_code: Option<i64>,
    pub output: String,
}

/// One run of a healthcheck test by masgen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub exit_code: i64,
    /// What it printed, or why the runtime could not start it.
    pub output: String,
}

impl Probe {
    /// Exit 126 (found but not executable, or the runtime could not exec it) or 127 (not
    /// found), the shell's and runc's codes for a program that cannot run; or a failure
    /// whose output has the shell's `curl: not found` line, since `curl ... || exit 1`
    /// turns the 127 into a 1.
    pub fn cannot_run(&self) -> bool {
        self.exit_code == 126
            || self.exit_code == 127
            || (self.exit_code != 0
                && self.output.lines().map(str::trim_end).any(|l| {
                    let Some(head) = l
                        .strip_suffix(": not found")
                        .or_else(|| l.strip_suffix(": command not found"))
                    else {
                        return false;
                    };
                    head.rsplit(": ")
                        .next()
                        .is_some_and(|program| !program.is_empty() && !program.contains(' '))
                }))
    }
}
