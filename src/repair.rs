//! The generate-verify-repair loop: failures go back to the model as evidence, its edits
//! are applied, and the system is verified again, until it is healthy or the budget is
//! spent.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::diagnose::Diagnostic;
use crate::events::Event;
pub use crate::generate::exchange::MAX_REASKS;
use crate::generate::exchange::{save, Exchange};
use crate::generate::guard::Guard;
use crate::generate::prompts::{self, Shown};
use crate::generate::{GenerateError, Generator, Session};
use crate::llm::audit::ResponseLog;
use crate::llm::{pricing, Budget, LlmError, Message, Usage};
use crate::verify::smoke::{SmokeReport, Verdict};
use crate::verify::{Verifier, VerifyError, VerifyOptions, VerifyReport};
use crate::workspace::rounds::{next_round_number, round_dir};
use crate::workspace::{Applied, Workspace, WorkspaceError};

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Talking to the model or writing files.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl From<WorkspaceError> for RepairError {
    fn from(e: WorkspaceError) -> Self {
        RepairError::Generate(GenerateError::Workspace(e))
    }
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RepairOptions {
    /// Repair rounds at most (each: one repair request, its re-asks, one verification).
    pub max_rounds: u32,
    /// Stop before any request that could make the run cost more than this (USD).
    pub max_cost_usd: Option<f64>,
    /// USD already spent in this run (by generation).
    pub spent_usd: f64,
    /// Characters of diagnostics sent to the model per round.
    pub diagnostics_budget: usize,
    pub max_tokens: u32,
    pub download_responses: bool,
    /// Let repairs change smoke checks that ran and failed (`--allow-smoke-edits`).
    pub allow_smoke_edits: bool,
}

impl Default for RepairOptions {
    fn default() -> Self {
        RepairOptions {
            max_rounds: 3,
            max_cost_usd: None,
            spent_usd: 0.0,
            diagnostics_budget: 20_000,
            max_tokens: 32_000,
            download_responses: false,
            allow_smoke_edits: false,
        }
    }
}

/// How one round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundOutcome {
    /// The repair was applied and the system is healthy now.
    Healthy,
    /// The repair was applied; the system still fails, differently or not yet twice the same.
    Repaired,
    /// The same failure came back after two repairs in a row.
    Stuck,
    /// The next request could cross --max-cost; it was not sent.
    BudgetSpent,
}

/// How the whole loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopOutcome {
    Healthy,
    RoundsSpent,
    BudgetSpent,
    Stuck,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundRecord {
    pub round: u32,
    /// Its folder in the system (`.masgen/rounds/NNN`): evidence, prompt, reply, diff.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub folder: String,
    pub outcome: RoundOutcome,
    /// The diagnostics that triggered the round.
    pub diagnostics: Vec<Diagnostic>,
    pub signature: String,
    pub requests: u32,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    pub edits_failed: usize,
    /// Changes to smoke checks' files (allowed for a broken check, or with
    /// `--allow-smoke-edits`), each with its diff.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub check_edits: Vec<CheckEdit>,
    pub model_secs: f64,
    pub verify_secs: f64,
}

/// A file of a smoke check that a round changed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckEdit {
    pub check: String,
    pub path: String,
    pub diff: String,
}

/// The checks a round may not touch: every smoke check but a broken one (it crashed or
/// did not build: only then may it be fixed), none with `--allow-smoke-edits`.
fn guard_of(report: &VerifyReport, allow: bool) -> Guard {
    checks_where(report, |s| !allow && s.verdict != Verdict::Broken)
}

/// The smoke checks of `report` that `keep` takes, with their folders.
pub(crate) fn checks_where(report: &VerifyReport, keep: impl Fn(&SmokeReport) -> bool) -> Guard {
    Guard {
        checks: report
            .smoke
            .iter()
            .filter(|s| keep(s))
            .map(|s| (s.service.clone(), s.folder.clone()))
            .collect(),
        checks_only: None,
    }
}

/// The files of smoke checks among what an exchange changed, each with its diff.
pub(crate) fn check_edits(
    dir: &Path,
    report: &VerifyReport,
    before: &std::collections::BTreeMap<String, Option<String>>,
) -> Vec<CheckEdit> {
    let every = checks_where(report, |_| true);
    let mut edits = Vec::new();
    for (path, old) in before {
        let Some(check) = every.owner(path) else {
            continue;
        };
        let one = std::collections::BTreeMap::from([(path.clone(), old.clone())]);
        let diff = crate::workspace::rounds::unified_diff(&one, dir);
        if !diff.trim().is_empty() {
            edits.push(CheckEdit {
                check: check.to_string(),
                path: path.clone(),
                diff,
            });
        }
    }
    edits
}

#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub outcome: LoopOutcome,
    pub rounds: Vec<RoundRecord>,
    /// The last verification (the run report carries it at its top level).
    #[serde(skip)]
    pub verify: VerifyReport,
    /// The signature that repeated, when stuck.
    pub stuck_signature: Option<String>,
    /// Failures the loop met (the first verification's, and each later one's) that are gone
    /// at the end, in the order met.
    pub fixed: Vec<String>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// User files whose version was kept in a round record before a repair changed them.
    pub preserved: Vec<String>,
}

/// What identifies a failure across rounds: service, phase and summary of each root cause,
/// with numbers removed (ports, times and exit codes vary between runs).
pub fn signature(diags: &[Diagnostic]) -> String {
    let mut parts: Vec<String> = diags
        .iter()
        .filter(|d| !d.consequence)
        .map(|d| {
            let summary: String = d.summary.chars().filter(|c| !c.is_ascii_digit()).collect();
            format!("{}:{}:{}", d.service, d.phase.as_str(), summary)
        })
        .collect();
    parts.sort();
    parts.join(" | ")
}

/// Diagnostics as the model reads them: a fixed header per failure, then the evidence,
/// keeping the tail of long output within `budget` characters in all.
pub fn render_diagnostics(diags: &[Diagnostic], budget: usize, full_path: &str) -> String {
    // Services that never started because one they wait on failed: one line for all of them.
    let (roots, waiting): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
        diags.iter().partition(|d| !d.consequence);
    let share = budget / roots.len().max(1);
    let mut out = String::new();
    for d in roots {
        let mut block = format!(
            "=== service: {} | phase: {} ===\n{}\n",
            d.service,
            d.phase.as_str(),
            d.summary
        );
        if !d.evidence.is_empty() {
            let room = share.saturating_sub(block.len() + 80);
            let ev = &d.evidence;
            if ev.len() > room {
                let mut start = ev.len() - room;
                while !ev.is_char_boundary(start) {
                    start += 1;
                }
                block.push_str(&format!(
                    "[... earlier output cut; full text in {full_path}]\n{}\n",
                    &ev[start..]
                ));
            } else {
                block.push_str(ev);
                block.push('\n');
            }
        }
        out.push_str(&block);
    }
    if !waiting.is_empty() {
        let names: Vec<String> = waiting
            .iter()
            .map(|d| {
                format!(
                    "{} ({})",
                    d.service,
                    d.summary.trim_start_matches("not started: ")
                )
            })
            .collect();
        out.push_str(&format!(
            "=== not started, waiting on a failed service ===\n{}\n",
            names.join("; ")
        ));
    }
    out
}

/// The system's main compose file, relative to `root`, as verification chooses it.
fn main_compose_file(root: &Path, compose_files: &[PathBuf]) -> Option<String> {
    let first = crate::compose::load::compose_paths(root, compose_files)
        .ok()?
        .into_iter()
        .next()?;
    let canonical = root.canonicalize().ok()?;
    first
        .strip_prefix(&canonical)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The files a round shows the model: every implicated file that exists, plus the compose
/// file. Of the compose file only the entries of the failing services and of the services
/// they name are shown when that is at most half of it: they are what the evidence is
/// about, the tree names the rest, and edits to them apply to the file as it is.
fn implicated_files(root: &Path, compose_files: &[PathBuf], diags: &[Diagnostic]) -> Vec<Shown> {
    // The main compose file: the first of `-f`/COMPOSE_FILE, else the folder's own.
    let compose = main_compose_file(root, compose_files);
    let mut paths: Vec<String> = diags.iter().flat_map(|d| d.files.clone()).collect();
    paths.extend(compose.clone());
    let mut seen = std::collections::BTreeSet::new();
    let mut failing: Vec<String> = Vec::new();
    for d in diags
        .iter()
        .filter(|d| !d.consequence && compose.as_ref().is_some_and(|c| d.files.contains(c)))
    {
        if !failing.contains(&d.service) {
            failing.push(d.service.clone());
        }
    }
    paths
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .filter_map(|path| {
            // A binary or huge file is left to the tree, which names it.
            let text = crate::workspace::model_text(&std::fs::read(root.join(&path)).ok()?)?;
            if Some(&path) == compose.as_ref() {
                if let Some((part, shown)) = compose_excerpt(&text, &failing) {
                    return Some(Shown {
                        path,
                        text: part,
                        excerpt_of: Some(shown),
                    });
                }
            }
            Some(Shown {
                path,
                text,
                excerpt_of: None,
            })
        })
        .collect()
}

/// The `services:` line and, verbatim and in file order, the entries of `services` and of
/// the services those entries name (`WORKER_HOST: worker`, `depends_on: [db]`), so a wrong
/// host name or port can be checked against its target. None when that is more than half
/// of the compose file, or the file cannot be cut into entries.
pub(crate) fn compose_excerpt(text: &str, services: &[String]) -> Option<(String, Vec<String>)> {
    if services.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let top = |l: &str| !l.starts_with([' ', '\t', '#']) && !l.trim().is_empty();
    let start = lines.iter().position(|l| l.trim_end() == "services:")?;
    let end = lines
        .iter()
        .skip(start + 1)
        .position(|l| top(l))
        .map_or(lines.len(), |i| start + 1 + i);
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let entries = service_entries(&lines[start + 1..end])?;
    if !services.iter().all(|s| entries.iter().any(|(n, _)| n == s)) {
        return None;
    }
    let named_in = |body: &[&str], name: &str| {
        body[1..].iter().any(|l| {
            l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
                .any(|w| w == name)
        })
    };
    let failing: Vec<&[&str]> = entries
        .iter()
        .filter(|(n, _)| services.iter().any(|s| s == n))
        .map(|(_, b)| *b)
        .collect();
    let mut out = String::from(lines[start]);
    let mut shown = Vec::new();
    for (name, body) in &entries {
        if services.iter().any(|s| s == name) || failing.iter().any(|f| named_in(f, name)) {
            out.extend(body.iter().copied());
            shown.push(name.to_string());
        }
    }
    if out.len() * 2 > text.len() {
        return None;
    }
    // Services that depend on a failing one, within the same budget: the keys that carry
    // the names they share, so a host, port, variable or condition can be checked on both
    // sides.
    for (name, body) in &entries {
        if shown.iter().any(|s| s == name) || !services.iter().any(|s| named_in(body, s)) {
            continue;
        }
        let part: String = shared_keys(body, indent_of).concat();
        if (out.len() + part.len()) * 2 <= text.len() {
            out.push_str(&part);
            shown.push(format!(
                "{name} (environment, ports, depends_on, healthcheck)"
            ));
        }
    }
    Some((out, shown))
}

/// Every entry under `services:` (whose lines are `lines`): its name and its lines,
/// without the blank lines that end it. Entries start at the indentation of the first
/// key; None when there is none.
fn service_entries<'t>(lines: &'t [&'t str]) -> Option<Vec<(&'t str, &'t [&'t str])>> {
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let indent = lines
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| indent_of(l))?;
    let mut entries: Vec<(&str, &[&str])> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let is_key = indent_of(l) == indent
            && !l.trim_start().starts_with('#')
            && l.trim_end().ends_with(':');
        if !is_key {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() && (lines[j].trim().is_empty() || indent_of(lines[j]) > indent) {
            j += 1;
        }
        let mut last = j;
        while last > i + 1 && lines[last - 1].trim().is_empty() {
            last -= 1;
        }
        let name = l.trim().trim_end_matches(':').trim_matches(['"', '\'']);
        entries.push((name, &lines[i..last]));
        i = j;
    }
    Some(entries)
}

/// An entry's first line and its `environment`, `ports`, `depends_on` and `healthcheck`
/// keys, each with the lines under it, verbatim.
fn shared_keys<'a>(body: &[&'a str], indent_of: impl Fn(&str) -> usize) -> Vec<&'a str> {
    const KEYS: [&str; 4] = ["environment:", "ports:", "depends_on:", "healthcheck:"];
    let mut out = vec![body[0]];
    let Some(key_indent) = body[1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
    else {
        return out;
    };
    let mut keep = false;
    for l in &body[1..] {
        if indent_of(l) == key_indent && !l.trim().is_empty() {
            keep = KEYS.iter().any(|k| l.trim_start().starts_with(k));
        }
        if keep {
            out.push(l);
        }
    }
    out
}

/// Verify `dir` with `verifier` (a runtime the caller chose); while it fails, show the
/// model the evidence and apply its fix.
///
/// Contract: stops when healthy, when `max_rounds` repairs are spent, when the next
/// request could cross `max_cost_usd` (the cap is never exceeded), or when the same
/// failure signature comes back after two repairs in a row (stuck). Environment failures
/// (Docker, the API after retries) end the loop with an error and are never sent to the
/// model. Files and round history stay on disk whatever happens.
pub async fn repair_loop(
    verifier: &impl Verifier,
    generator: &Generator,
    spec: &str,
    dir: &Path,
    vopts: &VerifyOptions,
    ropts: &RepairOptions,
) -> Result<RepairReport, RepairError> {
    let events = generator.events().clone();
    let model = generator.model();
    let budget = Arc::new(Budget::new(
        ropts.max_cost_usd,
        model.price(),
        ropts.spent_usd,
    ));
    let log = if ropts.download_responses {
        ResponseLog::in_output(dir)
    } else {
        ResponseLog::disabled()
    };
    let mut session = Session::new(model, &events, log, ropts.max_tokens, 1, budget);
    session.machine = generator.machine().map(str::to_string);
    let mut rounds = Rounds {
        session: &session,
        ws: Workspace::open(dir)?,
        spec,
        dir,
        compose_files: &vopts.load.files,
        ropts,
        // Folders of this run's rounds continue after the history already on disk.
        base: next_round_number(dir) - 1,
    };
    let mut report = verifier.verify(dir, vopts).await?;
    let first_failures = diagnostic_lines(&report.diagnostics, false);
    let mut history = History::default();
    let outcome = loop {
        if report.healthy {
            break LoopOutcome::Healthy;
        }
        if history.rounds.len() as u32 >= ropts.max_rounds {
            break LoopOutcome::RoundsSpent;
        }
        let n = history.rounds.len() as u32 + 1;
        if let Some(end) = rounds
            .next(n, verifier, vopts, &mut report, &mut history)
            .await?
        {
            break end;
        }
    };
    let remaining = diagnostic_lines(&report.diagnostics, true);
    let mut met = first_failures;
    for r in &history.rounds {
        for line in diagnostic_lines(&r.diagnostics, false) {
            if !met.contains(&line) {
                met.push(line);
            }
        }
    }
    let fixed = met.into_iter().filter(|f| !remaining.contains(f)).collect();
    let usage: Usage = history.rounds.iter().map(|r| r.usage).sum();
    Ok(RepairReport {
        outcome,
        cost_usd: model.price().and_then(|p| pricing::cost_at(p, &usage)),
        usage,
        rounds: history.rounds,
        verify: report,
        stuck_signature: history.stuck_signature,
        fixed,
        preserved: history.preserved,
    })
}

/// `service [phase] summary` of each failure (only root causes, unless `all`).
fn diagnostic_lines(diags: &[Diagnostic], all: bool) -> Vec<String> {
    diags
        .iter()
        .filter(|d| all || !d.consequence)
        .map(|d| format!("{} [{}] {}", d.service, d.phase.as_str(), d.summary))
        .collect()
}

/// A round's evidence in its folder: `diagnostics.txt` in full, `diagnostics.json`.
fn save_evidence(rdir: &Path, diags: &[Diagnostic], events: &crate::events::Events) {
    let full = diags
        .iter()
        .map(|d| {
            format!(
                "=== {} [{}] {}\n{}\nfiles: {}\n",
                d.service,
                d.phase.as_str(),
                d.summary,
                d.evidence,
                d.files.join(", ")
            )
        })
        .collect::<String>();
    save(&rdir.join("diagnostics.txt"), &full, events);
    let json = serde_json::to_string_pretty(diags).unwrap_or_default();
    save(&rdir.join("diagnostics.json"), &json, events);
}

/// `prompt.md`: what round `n` sent, in short.
fn prompt_note(n: u32, prompt: &str, files: &[Shown], diags: &[Diagnostic]) -> String {
    let files = files
        .iter()
        .map(|f| match &f.excerpt_of {
            Some(s) => format!("{} (services {})", f.path, s.join(", ")),
            None => f.path.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let diags = diags
        .iter()
        .map(|d| format!("- {} [{}] {}", d.service, d.phase.as_str(), d.summary))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "# Repair round {n}\n\nprompt: {} characters\nfiles sent: {files}\ndiagnostics:\n{diags}\n",
        prompt.len()
    )
}

/// What the loop's rounds did so far.
#[derive(Default)]
struct History {
    rounds: Vec<RoundRecord>,
    preserved: Vec<String>,
    /// Rounds in a row after which the failure signature came back unchanged.
    repeats: u32,
    stuck_signature: Option<String>,
}

/// What every round of one loop shares.
struct Rounds<'s, 'a> {
    session: &'s Session<'a>,
    ws: Workspace,
    spec: &'s str,
    dir: &'s Path,
    compose_files: &'s [PathBuf],
    ropts: &'s RepairOptions,
    /// The round folder before this run's first.
    base: u32,
}

impl Rounds<'_, '_> {
    /// Round `n`: ask for a fix, apply it, verify again when anything changed. Returns how
    /// the loop ends, when it ends here.
    async fn next(
        &mut self,
        n: u32,
        verifier: &impl Verifier,
        vopts: &VerifyOptions,
        report: &mut VerifyReport,
        history: &mut History,
    ) -> Result<Option<LoopOutcome>, RepairError> {
        let events = self.session.events;
        events.emit(Event::Phase {
            name: format!("repair round {n} of {}", self.ropts.max_rounds),
        });
        let before_sig = signature(&report.diagnostics);
        let (mut record, applied) = match self.run_round(n, report).await {
            Ok(r) => r,
            Err(RepairError::Generate(GenerateError::Llm(LlmError::Budget { .. }))) => {
                events.warn("the next repair request could cross --max-cost; stopping before it");
                history
                    .rounds
                    .push(RoundRecord::budget(n, &report.diagnostics));
                return Ok(Some(LoopOutcome::BudgetSpent));
            }
            Err(e) => return Err(e),
        };
        history.preserved.extend(applied.preserved.clone());
        // An unchanged system would fail the same way: its failures stand, and the round
        // counts towards stuck like any repair that did not help.
        if applied.touched() > 0 {
            let tv = Instant::now();
            *report = verifier.verify(self.dir, vopts).await?;
            record.verify_secs = tv.elapsed().as_secs_f64();
        }
        let after_sig = signature(&report.diagnostics);
        history.repeats = if !report.healthy && after_sig == before_sig {
            history.repeats + 1
        } else {
            0
        };
        record.outcome = if report.healthy {
            RoundOutcome::Healthy
        } else if history.repeats >= 2 {
            RoundOutcome::Stuck
        } else {
            RoundOutcome::Repaired
        };
        let stuck = record.outcome == RoundOutcome::Stuck;
        save(
            &round_dir(self.dir, self.base + n).join("round.json"),
            &serde_json::to_string_pretty(&record).unwrap_or_default(),
            events,
        );
        history.rounds.push(record);
        if stuck {
            history.stuck_signature = Some(after_sig);
            return Ok(Some(LoopOutcome::Stuck));
        }
        Ok(None)
    }
}

impl RoundRecord {
    fn budget(round: u32, diags: &[Diagnostic]) -> Self {
        RoundRecord {
            round,
            folder: String::new(),
            outcome: RoundOutcome::BudgetSpent,
            diagnostics: diags.to_vec(),
            signature: signature(diags),
            requests: 0,
            usage: Usage::default(),
            cost_usd: Some(0.0),
            added: Vec::new(),
            changed: Vec::new(),
            deleted: Vec::new(),
            edits_failed: 0,
            check_edits: Vec::new(),
            model_secs: 0.0,
            verify_secs: 0.0,
        }
    }
}

impl Rounds<'_, '_> {
    /// Ask for a fix and apply it, re-asking for edits that did not apply.
    async fn run_round(
        &mut self,
        n: u32,
        report: &VerifyReport,
    ) -> Result<(RoundRecord, Applied), RepairError> {
        let diags = &report.diagnostics;
        let guard = guard_of(report, self.ropts.allow_smoke_edits);
        let (session, dir, events) = (self.session, self.dir, self.session.events);
        let folder = self.base + n;
        let t = Instant::now();
        let rdir = round_dir(dir, folder);
        // The evidence first, so the history holds it even if the round is interrupted.
        save_evidence(&rdir, diags, events);
        let full_rel = format!(".masgen/rounds/{folder:03}/diagnostics.txt");
        let files = implicated_files(dir, self.compose_files, diags);
        let tree = self.ws.files();
        let prompt = prompts::repair(
            self.spec,
            &tree,
            &files,
            &render_diagnostics(diags, self.ropts.diagnostics_budget, &full_rel),
        );
        let excerpted: Vec<String> = files
            .iter()
            .filter(|f| f.excerpt_of.is_some())
            .map(|f| f.path.clone())
            .collect();
        save(
            &rdir.join("prompt.md"),
            &prompt_note(n, &prompt, &files, diags),
            events,
        );
        let exchange = Exchange {
            guard: guard.clone(),
            session,
            label: format!("repair {n}"),
            file: format!("repair-{n}"),
            folder: rdir.clone(),
            record: format!("{folder:03}/previous"),
            excerpted,
            require_change: true,
        };
        let asked = exchange
            .run(&mut self.ws, vec![Message::user(prompt)], None)
            .await?;
        let check_edits = check_edits(dir, report, &asked.before);
        for e in &check_edits {
            events.warn(format!(
                "repair round {n} changed smoke check {}: {} (listed in the report with its diff)",
                e.check, e.path
            ));
        }
        let (total, usage, requests) = (asked.applied, asked.usage, asked.requests);
        if total.touched() == 0 {
            events.warn(format!("repair round {n}: the model's answers changed no file, so the system is not verified again"));
        }
        let record = RoundRecord {
            round: n,
            folder: format!(".masgen/rounds/{folder:03}"),
            outcome: RoundOutcome::Repaired,
            diagnostics: diags.to_vec(),
            signature: signature(diags),
            requests,
            cost_usd: session
                .model
                .price()
                .and_then(|p| pricing::cost_at(p, &usage)),
            usage,
            added: total.added.clone(),
            changed: total.changed.clone(),
            deleted: total.deleted.clone(),
            edits_failed: total.edit_failures.len(),
            check_edits,
            model_secs: t.elapsed().as_secs_f64(),
            verify_secs: 0.0,
        };
        Ok((record, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Phase;

    const COMPOSE: &str = "name: shop\nservices:\n  web:\n    build: ./web\n    ports:\n      - \"8080:8080\"\n\n  # the queue\n  \"queue\":\n    image: busybox:latest\n    command: [\"sleep\", \"1\"]\n\n  worker:\n    build: ./worker\n    environment:\n      QUEUE: queue\n      MODE: fast\n      RETRIES: \"3\"\n    depends_on: [queue]\n\nvolumes:\n  data:\n";

    #[test]
    fn services_that_never_started_share_one_line_after_the_root_cause() {
        let mut waiting = Diagnostic::new(
            "api",
            Phase::Start,
            "not started: depends on db, which failed",
        );
        waiting.consequence = true;
        let diags = vec![
            Diagnostic::new("db", Phase::Crash, "crashed: exited with code 1")
                .evidence("exit code: 1"),
            waiting,
        ];
        let text = render_diagnostics(&diags, 20_000, "x");
        assert_eq!(
            text,
            "=== service: db | phase: crash ===\ncrashed: exited with code 1\nexit code: 1\n=== not started, waiting on a failed service ===\napi (depends on db, which failed)\n"
        );
    }

    #[test]
    fn a_three_level_chain_reaches_the_model_in_words() {
        let mut diags = crate::diagnose::three_level_chain();
        crate::diagnose::order(&mut diags);
        let text = render_diagnostics(&diags, 20_000, "x");
        assert!(
            text.ends_with("seeder (waits on api, which was not started because mysql failed); api (depends on mysql, which failed)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_compose_excerpt_is_the_failing_entries_verbatim() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compose_excerpt(COMPOSE, &names(&["web"])).unwrap().0,
            "services:\n  web:\n    build: ./web\n    ports:\n      - \"8080:8080\"\n"
        );
        // The services a failing entry names come along: the worker's QUEUE and depends_on name the queue.
        let worker = compose_excerpt(
            &COMPOSE.replace(
                "    build: ./web\n",
                "    build: ./web\n    command: [serve, --static, /srv/www, --workers, \"4\"]\n",
            ),
            &names(&["worker"]),
        );
        assert_eq!(
            worker, None,
            "worker and queue are more than half of the file"
        );
        let long = COMPOSE.replace(
            "  web:\n",
            &format!(
                "  web:\n    labels:\n{}",
                "      x.padding: \"a label long enough to make the file large\"\n".repeat(8)
            ),
        );
        let (worker, shown) = compose_excerpt(&long, &names(&["worker"])).unwrap();
        assert_eq!(shown, names(&["queue", "worker"]));
        assert!(
            worker.contains("  \"queue\":\n    image: busybox:latest")
                && worker.contains("  worker:\n")
                && !worker.contains("  web:"),
            "{worker}"
        );
        assert_eq!(
            compose_excerpt(COMPOSE, &names(&["queue"])).unwrap().0,
            "services:\n  \"queue\":\n    image: busybox:latest\n    command: [\"sleep\", \"1\"]\n"
        );
        // Every line of an excerpt is a line of the file, so edits made against it apply.
        let (part, shown) = compose_excerpt(COMPOSE, &names(&["web", "queue"])).unwrap();
        assert_eq!(shown, names(&["web", "queue"]));
        assert!(
            part.lines().all(|l| COMPOSE.lines().any(|c| c == l)),
            "{part}"
        );
        // Not worth it (more than half of the file), unknown services, or no services key.
        assert_eq!(compose_excerpt(COMPOSE, &names(&["web", "worker"])), None);
        assert_eq!(compose_excerpt(COMPOSE, &names(&["nope"])), None);
        assert_eq!(compose_excerpt(COMPOSE, &[]), None);
        assert_eq!(compose_excerpt("version: \"3\"\n", &names(&["web"])), None);
    }

    #[test]
    fn the_services_that_depend_on_a_failing_one_show_the_keys_they_share() {
        let padding =
            "      x.padding: \"a label long enough to make the file large\"\n".repeat(12);
        let compose = format!("services:\n  db:\n    image: busybox:latest\n    ports: [\"5432\"]\n  api:\n    build: ./api\n    labels:\n{padding}    environment:\n      DB_HOST: db\n      DB_PORT: \"5432\"\n    depends_on:\n      db: {{condition: service_healthy}}\n  web:\n    build: ./web\n    labels:\n{padding}");
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (part, shown) = compose_excerpt(&compose, &names(&["db"])).unwrap();
        assert_eq!(
            shown,
            names(&["db", "api (environment, ports, depends_on, healthcheck)"])
        );
        assert_eq!(
            part,
            "services:\n  db:\n    image: busybox:latest\n    ports: [\"5432\"]\n  api:\n    environment:\n      DB_HOST: db\n      DB_PORT: \"5432\"\n    depends_on:\n      db: {condition: service_healthy}\n"
        );
    }

    fn d(service: &str, phase: Phase, summary: &str, evidence: &str) -> Diagnostic {
        Diagnostic::new(service, phase, summary).evidence(evidence)
    }

    #[test]
    fn signatures_ignore_numbers_and_consequences() {
        let a = vec![d("app", Phase::Crash, "crashed: exited with code 3", "")];
        let b = vec![d("app", Phase::Crash, "crashed: exited with code 4", "")];
        assert_eq!(signature(&a), signature(&b));
        let mut c = b.clone();
        let mut dep = d(
            "web",
            Phase::Start,
            "not started: depends on app, which failed",
            "",
        );
        dep.consequence = true;
        c.push(dep);
        assert_eq!(signature(&a), signature(&c));
        assert_ne!(
            signature(&a),
            signature(&[d("app", Phase::Health, "unhealthy", "")])
        );
    }

    #[test]
    fn rendering_keeps_the_tail_within_the_budget() {
        let long: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let text = render_diagnostics(
            &[d("app", Phase::Crash, "crashed", &long)],
            2000,
            ".masgen/rounds/001/diagnostics.txt",
        );
        assert!(text.len() <= 2100, "{}", text.len());
        assert!(text.starts_with("=== service: app | phase: crash ===\ncrashed\n"));
        assert!(text.contains("line 4999") && !text.contains("line 10\n"));
        assert!(text.contains("full text in .masgen/rounds/001/diagnostics.txt"));
    }
}
