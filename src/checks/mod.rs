//! Smoke checks for any compose project (`masgen smoke`): the model reads the project and
//! writes checks in their own folder (`smoke/<check>/`) and compose file
//! ([`SMOKE_FILE`]), never touching the project's files; masgen verifies the system with
//! them and runs them. The system is the user's: a check that fails on a healthy system
//! is the system's failure, reported and never repaired; only a broken check (it did not
//! build or start, or crashed before reporting a failed point) is revised, within the
//! rounds and the cost cap, and every revision is listed with its diff.
//!
//! `masgen ci` (ci.rs) writes a workflow that runs the system and its checks with Docker
//! Compose alone.

pub mod ci;
pub mod read;

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::compose::load::{LoadOptions, SMOKE_FILE};
use crate::compose::ComposeError;
use crate::diagnose::Diagnostic;
use crate::generate::exchange::Exchange;
use crate::generate::guard::{Guard, CHECKS_FOLDER};
use crate::generate::{prompts, GenerateError, Generator, Session};
use crate::llm::audit::ResponseLog;
use crate::llm::{pricing, Budget, LlmError, Message, Usage};
use crate::protocol::Change;
use crate::repair::{check_edits, checks_where, render_diagnostics, CheckEdit};
use crate::verdict::Verdict;
use crate::verify::{Verifier, VerifyError, VerifyOptions, VerifyReport};
use crate::workspace::rounds::{next_round_number, round_dir};
use crate::workspace::{Workspace, WorkspaceError};

pub use read::{Part, ProjectView, PROJECT_BUDGET};

#[derive(Debug, thiserror::Error)]
pub enum ChecksError {
    /// The project cannot be read as Compose reads it (bad input).
    #[error(transparent)]
    Project(#[from] ComposeError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// The model's answer wrote no checks' compose file.
    #[error("the model wrote no {SMOKE_FILE} (its reply is in {reply}); run masgen smoke again, or write the checks by hand")]
    NoChecks { reply: String },
}

impl From<WorkspaceError> for ChecksError {
    fn from(e: WorkspaceError) -> Self {
        ChecksError::Generate(GenerateError::Workspace(e))
    }
}

/// How hard to try, and what to read.
#[derive(Debug, Clone)]
pub struct ChecksOptions {
    /// How to read the project (`-f`, `-p`, `--env-file`).
    pub load: LoadOptions,
    /// Write new checks even when the project has some (the old ones are removed, a
    /// user's edits kept under `.masgen/rounds/`).
    pub regenerate: bool,
    /// Revisions of broken checks at most (0: write and run once).
    pub max_rounds: u32,
    pub max_cost_usd: Option<f64>,
    pub max_tokens: u32,
    pub download_responses: bool,
}

/// Where the checks came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The model wrote them in this run.
    Written,
    /// The project had them (a kept earlier run's, or the user's): run as they are.
    Kept,
    /// `--regenerate`: the earlier ones were removed and the model wrote new ones.
    Regenerated,
}

/// One revision of broken checks.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub round: u32,
    /// The checks that were broken.
    pub checks: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
    /// Every file it changed, with its diff.
    pub check_edits: Vec<CheckEdit>,
    pub requests: u32,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
}

/// What `masgen smoke` did.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksReport {
    pub origin: Origin,
    /// What the model read of the project (empty when the checks were kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<Part>,
    /// The files the model wrote.
    pub files: Vec<String>,
    /// Files of earlier checks removed by `--regenerate`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    pub revisions: Vec<Revision>,
    /// Revisions were left when broken checks remained, but the next request could
    /// have crossed --max-cost.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub budget_spent: bool,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// The last verification (the run report carries it at its top level).
    #[serde(skip)]
    pub verify: VerifyReport,
}

/// Write (or keep) the checks of the project in `dir`, verify the system with them, and
/// revise broken checks. Environment failures end it with an error; a failing check is
/// in the returned report, never repaired.
pub async fn smoke(
    verifier: &impl Verifier,
    generator: &Generator,
    dir: &Path,
    vopts: &VerifyOptions,
    opts: &ChecksOptions,
) -> Result<ChecksReport, ChecksError> {
    let model = generator.model();
    let budget = Arc::new(Budget::new(opts.max_cost_usd, model.price(), 0.0));
    let log = if opts.download_responses {
        ResponseLog::in_output(dir)
    } else {
        ResponseLog::disabled()
    };
    let mut session = Session::new(model, generator.events(), log, opts.max_tokens, 1, budget);
    session.machine = generator.machine().map(str::to_string);
    session.rules = prompts::CHECKS_SYSTEM;
    let view = read::read_project(dir, &opts.load)?;
    let mut run = Run {
        session: &session,
        dir,
        services: view.services.clone(),
        base: next_round_number(dir) - 1,
        n: 0,
    };
    let existing = dir.join(SMOKE_FILE).is_file();
    let mut report = ChecksReport {
        origin: Origin::Kept,
        read: Vec::new(),
        files: Vec::new(),
        removed: Vec::new(),
        revisions: Vec::new(),
        budget_spent: false,
        usage: Usage::default(),
        cost_usd: None,
        verify: VerifyReport::default(),
    };
    if existing && opts.regenerate {
        report.removed = run.remove_checks()?;
    }
    if !existing || opts.regenerate {
        report.origin = if existing {
            Origin::Regenerated
        } else {
            Origin::Written
        };
        let (files, usage) = run.write(&view).await?;
        report.files = files;
        report.usage += usage;
        report.read = view.parts;
    }
    report.verify = verifier.verify(dir, vopts).await?;
    while broken(&report.verify).next().is_some()
        && report.revisions.len() < opts.max_rounds as usize
    {
        match run
            .revise(&report.verify, report.revisions.len() as u32 + 1)
            .await
        {
            Ok(Some(revision)) => {
                report.usage += revision.usage;
                report.revisions.push(revision);
            }
            Ok(None) => break,
            Err(ChecksError::Generate(GenerateError::Llm(LlmError::Budget { .. }))) => {
                generator
                    .events()
                    .warn("the next revision could cross --max-cost; stopping before it");
                report.budget_spent = true;
                break;
            }
            Err(e) => return Err(e),
        }
        report.verify = verifier.verify(dir, vopts).await?;
    }
    report.cost_usd = model
        .price()
        .and_then(|p| pricing::cost_at(p, &report.usage));
    Ok(report)
}

/// The broken checks of a verification.
fn broken(v: &VerifyReport) -> impl Iterator<Item = &crate::verify::smoke::SmokeReport> {
    v.smoke.iter().filter(|s| s.verdict == Verdict::Broken)
}

/// What the requests of one `masgen smoke` share.
struct Run<'s, 'a> {
    session: &'s Session<'a>,
    dir: &'s Path,
    /// The project's services: the checks' compose file may not define them.
    services: Vec<String>,
    /// The round folder before this run's first, and this run's rounds so far.
    base: u32,
    n: u32,
}

impl<'s, 'a> Run<'s, 'a> {
    /// The next round's folder, relative to `.masgen/rounds/`, and its path.
    fn next_round(&mut self) -> (String, std::path::PathBuf) {
        self.n += 1;
        let folder = self.base + self.n;
        (format!("{folder:03}"), round_dir(self.dir, folder))
    }

    fn exchange(&mut self, label: &str, guard: Guard) -> Exchange<'s, 'a> {
        let (record, folder) = self.next_round();
        Exchange {
            session: self.session,
            label: label.to_string(),
            file: label.replace(' ', "-"),
            folder,
            record: format!("{record}/previous"),
            excerpted: Vec::new(),
            require_change: true,
            guard,
        }
    }

    /// The first request: the model writes the checks.
    async fn write(&mut self, view: &ProjectView) -> Result<(Vec<String>, Usage), ChecksError> {
        self.session.events.emit(crate::events::Event::Phase {
            name: "write smoke checks".into(),
        });
        let guard = Guard {
            checks: Vec::new(),
            checks_only: Some(self.services.clone()),
        };
        let exchange = self.exchange("smoke checks", guard);
        let folder = exchange.folder.clone();
        let prompt = prompts::checks(&view.text());
        let mut ws = Workspace::open(self.dir)?;
        let asked = exchange
            .run(&mut ws, vec![Message::user(prompt)], None)
            .await?;
        if !self.dir.join(SMOKE_FILE).is_file() {
            return Err(ChecksError::NoChecks {
                reply: folder.join("reply.txt").display().to_string(),
            });
        }
        let mut files = asked.applied.added.clone();
        files.extend(asked.applied.changed.iter().cloned());
        files.sort();
        Ok((files, asked.usage))
    }

    /// One revision of the broken checks of `v`; None when the model changed nothing.
    async fn revise(
        &mut self,
        v: &VerifyReport,
        round: u32,
    ) -> Result<Option<Revision>, ChecksError> {
        let names: Vec<String> = broken(v).map(|s| s.service.clone()).collect();
        self.session.events.emit(crate::events::Event::Phase {
            name: format!("revise broken smoke checks ({})", names.join(", ")),
        });
        let diagnostics: Vec<Diagnostic> = v
            .diagnostics
            .iter()
            .filter(|d| names.contains(&d.service))
            .cloned()
            .collect();
        let mut files: Vec<(String, String)> = Vec::new();
        let folders: Vec<String> = broken(v).filter_map(|s| s.folder.clone()).collect();
        for path in crate::workspace::list_files(self.dir) {
            let ours = path == SMOKE_FILE
                || folders
                    .iter()
                    .any(|f| !f.is_empty() && path.starts_with(&format!("{f}/")));
            if let (true, Some(text)) = (ours, read_text(&self.dir.join(&path))) {
                files.push((path, text));
            }
        }
        let prompt = prompts::checks_revision(
            &files,
            &render_diagnostics(&diagnostics, 20_000, "the report"),
        );
        let guard = Guard {
            checks_only: Some(self.services.clone()),
            ..checks_where(v, |s| s.verdict != Verdict::Broken)
        };
        let label = format!("revise checks {round}");
        let mut ws = Workspace::open(self.dir)?;
        let asked = self
            .exchange(&label, guard)
            .run(&mut ws, vec![Message::user(prompt)], None)
            .await?;
        if asked.applied.touched() == 0 {
            self.session
                .events
                .warn("the model changed no check: the broken checks stay as they are");
            return Ok(None);
        }
        let edits = check_edits(self.dir, v, &asked.before);
        for e in &edits {
            self.session.events.warn(format!(
                "revision {round} changed smoke check {}: {} (listed in the report with its diff)",
                e.check, e.path
            ));
        }
        let model = self.session.model;
        Ok(Some(Revision {
            round,
            checks: names,
            diagnostics,
            check_edits: edits,
            requests: asked.requests,
            cost_usd: model
                .price()
                .and_then(|p| pricing::cost_at(p, &asked.usage)),
            usage: asked.usage,
        }))
    }

    /// `--regenerate`: remove the checks' compose file and the checks' folders under
    /// smoke/ (a user's version of a file is kept in the round's folder first). Returns
    /// the files removed.
    fn remove_checks(&mut self) -> Result<Vec<String>, ChecksError> {
        let text = std::fs::read_to_string(self.dir.join(SMOKE_FILE)).unwrap_or_default();
        let folders = check_folders(&text);
        let mut ws = Workspace::open(self.dir)?;
        let doomed: Vec<String> = ws
            .files()
            .into_iter()
            .filter(|p| p == SMOKE_FILE || folders.iter().any(|f| p.starts_with(&format!("{f}/"))))
            .collect();
        let changes: Vec<Change> = doomed
            .iter()
            .filter_map(|p| crate::protocol::check_path(p).ok())
            .map(|path| Change::Delete { path })
            .collect();
        let (record, _) = self.next_round();
        let applied = ws.apply(&changes, &format!("{record}/previous"))?;
        for f in &folders {
            remove_empty_folders(&self.dir.join(f));
        }
        for p in &applied.preserved {
            self.session.events.warn(format!(
                "--regenerate: your version of {p} is kept under .masgen/rounds/{record}/previous/"
            ));
        }
        Ok(applied.deleted)
    }
}

/// The build folders under smoke/ of the services a checks' compose file defines.
fn check_folders(text: &str) -> Vec<String> {
    let Ok(doc) = crate::compose::yaml::parse(text) else {
        return Vec::new();
    };
    let Some(services) = doc.value.get("services").and_then(|s| s.as_object()) else {
        return Vec::new();
    };
    services
        .values()
        .filter_map(|s| {
            let build = s.get("build")?;
            build
                .as_str()
                .or_else(|| build.get("context").and_then(|c| c.as_str()))
                .map(|c| c.trim_start_matches("./").trim_end_matches('/').to_string())
        })
        .filter(|f| f.starts_with(&format!("{CHECKS_FOLDER}/")) || f == CHECKS_FOLDER)
        .collect()
}

fn remove_empty_folders(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.path().is_dir() {
            remove_empty_folders(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
    if let Some(parent) = dir.parent().filter(|p| p.ends_with(CHECKS_FOLDER)) {
        let _ = std::fs::remove_dir(parent);
    }
}

fn read_text(path: &Path) -> Option<String> {
    crate::workspace::model_text(&std::fs::read(path).ok()?)
}
