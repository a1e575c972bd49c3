//! Smoke checks: the compose services in the profile `smoke`. Each is run once the system
//! is ready and the stability window has passed, one at a time, as a one-shot container
//! of the run with the system still running. Exit 0 is a pass; a check that speaks TAP on
//! stdout reports each test point as a check of its own. A failing check is the system's
//! failure (phase `smoke`), with the check's own words and what the services it exercises
//! wrote meanwhile; a check that crashed without reporting a failed point is broken, and
//! only then may a repair change it (see repair.rs).

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::start::{create, image_of, start};
use super::tap::{self, Tap};
use super::{Steps, Tally};
use crate::diagnose::{tail, Diagnostic, Phase};
use crate::events::Event;
use crate::plan::{ImageSource, Readiness, ServicePlan};
use crate::runtime::health::Wait;
use crate::runtime::{Runtime, RuntimeError};

/// Lines of a check's own output kept as evidence, and of each service's log meanwhile.
const OUTPUT_LINES: usize = 40;
const SERVICE_LINES: usize = 100;

pub use crate::verdict::{CheckPoint, PointVerdict, Verdict};

/// One smoke service's run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SmokeReport {
    pub service: String,
    /// The image it ran (built with the system's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub secs: f64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Its build context relative to the project ("" for the root): the check's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    pub points: Vec<CheckPoint>,
    /// Why it failed or is broken, in one line (empty when it passed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The last lines it printed (stdout, then stderr).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub output: String,
}

impl SmokeReport {
    fn of(plan: Option<&ServicePlan>, service: &str) -> SmokeReport {
        let folder = match plan.and_then(|p| p.image.as_ref()) {
            Some(ImageSource::Build(b)) => Some(b.context_rel.clone()),
            _ => None,
        };
        SmokeReport {
            service: service.to_string(),
            folder,
            ..Default::default()
        }
    }

    /// Checks that passed, and that failed (a broken or failed run without points counts
    /// as one failed check).
    pub fn counts(&self) -> (usize, usize) {
        let passed = self
            .points
            .iter()
            .filter(|p| p.verdict == PointVerdict::Passed)
            .count();
        let failed = self
            .points
            .iter()
            .filter(|p| p.verdict == PointVerdict::Failed)
            .count();
        (passed, failed)
    }
}

/// Run every check (or report each as not run, or broken when it did not build);
/// failures go into the tally. Returns the seconds spent.
pub(super) async fn run(
    steps: &Steps<'_, impl Runtime>,
    tally: &mut Tally,
) -> Result<f64, RuntimeError> {
    let t = Instant::now();
    let ev = &steps.opts.events;
    let names: Vec<String> = steps.plan.checks.iter().map(|c| c.name.clone()).collect();
    if !names.is_empty() && tally.failed.is_empty() {
        ev.emit(Event::Phase {
            name: format!("verify: smoke checks ({})", names.len()),
        });
    }
    for name in &names {
        let plan = steps.plan.get(name);
        let mut report = SmokeReport::of(plan, name);
        if let Some(super::ImageState::Ready(image)) = steps.settled_image(name).await {
            report.image = image;
        }
        if let Some(d) = tally.check_failures.remove(name) {
            // Its image did not build.
            let d = broken(&mut report, d);
            tally.check_failures.insert(name.clone(), d);
        } else if tally.failed.is_empty() {
            ev.emit(Event::SmokeStarted {
                service: name.clone(),
            });
            if let Some(d) = run_one(steps, tally, name, &mut report).await? {
                tally.check_failures.insert(name.clone(), d);
            }
            emit_finished(steps, &report);
        }
        tally.smoke.push(report);
    }
    Ok(t.elapsed().as_secs_f64())
}

fn emit_finished(steps: &Steps<'_, impl Runtime>, report: &SmokeReport) {
    let ev = &steps.opts.events;
    for p in &report.points {
        ev.emit(Event::CheckResult {
            service: report.service.clone(),
            check: p.name.clone(),
            verdict: p.verdict,
        });
    }
    let (passed, failed) = report.counts();
    ev.emit(Event::SmokeFinished {
        service: report.service.clone(),
        verdict: report.verdict,
        passed,
        failed,
        secs: report.secs,
        summary: report.summary.clone(),
    });
}

/// Run check `name`: create, start, wait for it to exit within `--smoke-timeout`, judge
/// it. Returns its diagnostic when it did not pass.
async fn run_one(
    steps: &Steps<'_, impl Runtime>,
    tally: &Tally,
    name: &str,
    report: &mut SmokeReport,
) -> Result<Option<Diagnostic>, RuntimeError> {
    let plan = steps.plan.get(name).expect("every check is planned");
    let image = match image_of(steps, name).await {
        Some(Ok(image)) => image,
        Some(Err(d)) => return Ok(Some(broken(report, d))),
        None => {
            return Ok(Some(broken(
                report,
                Diagnostic::new(name, Phase::Build, "its image did not build"),
            )))
        }
    };
    let container = steps.settings.scope.container(name);
    if let Err(d) = create(steps, plan, &image, &container).await? {
        return Ok(Some(broken(report, d)));
    }
    let since = SystemTime::now() - Duration::from_secs(1);
    let started = Instant::now();
    if let Err(d) = start(steps, name, &container).await? {
        return Ok(Some(broken(report, d)));
    }
    let deadline = Instant::now() + steps.opts.smoke_timeout;
    let wait = steps
        .rt
        .wait_ready(&container, Readiness::Completes, deadline)
        .await;
    report.secs = started.elapsed().as_secs_f64();
    let (stdout, stderr) = steps.rt.output(&container).await;
    match wait {
        Wait::Completed => report.exit_code = Some(0),
        Wait::Exited(s) => report.exit_code = s.exit_code,
        Wait::TimedOut(_) => {
            report.timed_out = true;
            steps.rt.remove(&container).await;
        }
        _ => {}
    }
    judge(
        report,
        &tap::parse(&stdout),
        &stdout,
        &stderr,
        steps.opts.smoke_timeout,
    );
    if report.verdict == Verdict::Passed {
        return Ok(None);
    }
    let meanwhile = meanwhile(steps, tally, plan, since).await;
    Ok(Some(diagnostic(steps, plan, report, &meanwhile)))
}

/// A check that could not be built, created or started is broken.
fn broken(report: &mut SmokeReport, d: Diagnostic) -> Diagnostic {
    report.verdict = Verdict::Broken;
    report.summary = d.summary.clone();
    mark_unfinished(report);
    let mut d = d;
    d.phase = Phase::Smoke;
    d.summary = format!("smoke check is broken: {}", d.summary);
    d
}

/// The verdict, the points and the summary of a finished (or timed-out) run.
pub(super) fn judge(
    report: &mut SmokeReport,
    tap: &Tap,
    stdout: &str,
    stderr: &str,
    limit: Duration,
) {
    report.points = points(tap, &report.service, report.exit_code == Some(0));
    report.output = output_tail(stdout, stderr);
    let failed: Vec<&tap::Point> = tap.failed_points().collect();
    let crashed = crash_line(stdout, stderr);
    report.verdict = if report.timed_out {
        Verdict::Failed
    } else if failed.is_empty()
        && (tap.bailed.is_some()
            || crashed.is_some()
            || !matches!(report.exit_code, Some(0) | Some(1)))
    {
        Verdict::Broken
    } else if report.exit_code == Some(0) && tap.passed() {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    report.summary = match report.verdict {
        Verdict::Passed | Verdict::NotRun => String::new(),
        _ if report.timed_out => format!(
            "did not finish within {}s (--smoke-timeout)",
            limit.as_secs()
        ),
        Verdict::Broken => match (&tap.bailed, crashed) {
            (Some(why), _) => format!("bailed out: {why}"),
            (None, Some(line)) => format!("crashed: {line}"),
            (None, None) => format!(
                "exited with code {} without reporting a failed check",
                report.exit_code.unwrap_or(-1)
            ),
        },
        Verdict::Failed => match failed.first() {
            Some(p) => format!(
                "{} of {} check(s) failed: not ok {} - {}",
                failed.len(),
                tap.points.len(),
                p.number,
                p.description
            ),
            None if !tap.problems.is_empty() => tap.problems.join("; "),
            None => format!("exited with code {}", report.exit_code.unwrap_or(-1)),
        },
    };
    if report.timed_out || report.verdict == Verdict::Broken {
        mark_unfinished(report);
    }
}

/// Each TAP point as a check; without TAP, the service is one check.
fn points(tap: &Tap, service: &str, exited_0: bool) -> Vec<CheckPoint> {
    if tap.points.is_empty() {
        return vec![CheckPoint {
            name: service.to_string(),
            verdict: if exited_0 && tap.passed() {
                PointVerdict::Passed
            } else {
                PointVerdict::Failed
            },
            diagnostics: String::new(),
        }];
    }
    tap.points
        .iter()
        .map(|p| CheckPoint {
            name: p.description.clone(),
            verdict: match (&p.directive, p.ok) {
                (Some(tap::Directive::Todo(_)), _) => PointVerdict::Todo,
                (Some(tap::Directive::Skip(_)), _) => PointVerdict::Skipped,
                (None, true) => PointVerdict::Passed,
                (None, false) => PointVerdict::Failed,
            },
            diagnostics: p.diagnostics.trim_end().to_string(),
        })
        .collect()
}

/// A run that ended before it judged anything has no passed point to show for it.
fn mark_unfinished(report: &mut SmokeReport) {
    if report
        .points
        .iter()
        .all(|p| p.verdict != PointVerdict::Failed)
    {
        report.points.push(CheckPoint {
            name: format!("{} finished", report.service),
            verdict: PointVerdict::Failed,
            diagnostics: report.summary.clone(),
        });
    }
}

/// The line saying the check's own program crashed: a traceback's last line (an
/// `AssertionError` is a failed check, not a crash), a Rust panic, a shell's missing
/// program.
fn crash_line(stdout: &str, stderr: &str) -> Option<String> {
    let text = format!("{stdout}\n{stderr}");
    if text.contains("Traceback (most recent call last)") {
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty() && !l.starts_with(' '))
            .unwrap_or("Traceback")
            .trim();
        return (!last.starts_with("AssertionError")).then(|| last.to_string());
    }
    text.lines()
        .find(|l| {
            l.contains("panicked at")
                || l.ends_with(": not found")
                || l.ends_with(": command not found")
                || l.contains("Syntax error")
                || l.contains("syntax error")
        })
        .map(|l| l.trim().to_string())
}

fn output_tail(stdout: &str, stderr: &str) -> String {
    let mut out = tail(stdout.trim_end(), OUTPUT_LINES);
    if !stderr.trim().is_empty() {
        out.push_str("\n--- stderr ---\n");
        out.push_str(&tail(stderr.trim_end(), OUTPUT_LINES / 2));
    }
    out
}

/// What the services the check depends on (all running ones, when it names none) wrote
/// since it started.
async fn meanwhile(
    steps: &Steps<'_, impl Runtime>,
    tally: &Tally,
    plan: &ServicePlan,
    since: SystemTime,
) -> Vec<(String, String)> {
    let deps: Vec<&str> = plan.depends_on.iter().map(|d| d.service.as_str()).collect();
    let mut out = Vec::new();
    for (name, container) in &tally.running {
        if deps.is_empty() || deps.contains(&name.as_str()) {
            let text = steps.rt.logs_since(container, since).await;
            out.push((name.clone(), tail(text.trim_end(), SERVICE_LINES)));
        }
    }
    out
}

/// The check's failure as the model and the user see it.
fn diagnostic(
    steps: &Steps<'_, impl Runtime>,
    plan: &ServicePlan,
    report: &SmokeReport,
    meanwhile: &[(String, String)],
) -> Diagnostic {
    let name = plan.name.as_str();
    let mut e = format!(
        "smoke check {name}: {} after {:.1}s{}\n",
        match report.exit_code {
            Some(c) => format!("exited with code {c}"),
            None => "stopped".into(),
        },
        report.secs,
        if report.timed_out {
            " (time limit)"
        } else {
            ""
        }
    );
    for p in report
        .points
        .iter()
        .filter(|p| p.verdict == PointVerdict::Failed)
    {
        e.push_str(&format!("not ok - {}\n", p.name));
        for l in p.diagnostics.lines() {
            e.push_str(&format!("  {l}\n"));
        }
    }
    e.push_str(&format!("its output (last lines):\n{}\n", report.output));
    for (service, text) in meanwhile {
        let text = if text.is_empty() { "(nothing)" } else { text };
        e.push_str(&format!("{service} wrote while the check ran:\n{text}\n"));
    }
    // The check's own files come first: the model needs them to know what the system
    // must do, also when it may not change them.
    let mut files = steps.plan.implicated(name);
    let summary = if report.verdict == Verdict::Broken {
        format!("smoke check is broken: {}", report.summary)
    } else {
        e.push_str("The check is right: change the system so that it passes (a check is never changed to pass).\n");
        format!("smoke check failed: {}", report.summary)
    };
    for dep in &plan.depends_on {
        for f in steps.plan.implicated(&dep.service) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    Diagnostic::new(name, Phase::Smoke, summary)
        .evidence(e)
        .files(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(exit: Option<i64>, stdout: &str, stderr: &str, timed_out: bool) -> SmokeReport {
        let mut r = SmokeReport {
            service: "smoke".into(),
            exit_code: exit,
            timed_out,
            ..Default::default()
        };
        judge(
            &mut r,
            &tap::parse(stdout),
            stdout,
            stderr,
            Duration::from_secs(60),
        );
        r
    }

    #[test]
    fn a_failed_point_is_the_system_s_failure() {
        let r = judged(
            Some(1),
            "1..2\nok 1 - up\nnot ok 2 - stored\n# got 404\n",
            "",
            false,
        );
        assert_eq!(r.verdict, Verdict::Failed);
        assert_eq!(r.summary, "1 of 2 check(s) failed: not ok 2 - stored");
        assert_eq!(r.counts(), (1, 1));
        assert_eq!(r.points[1].diagnostics, "got 404");
        let passed = judged(Some(0), "1..2\nok 1 - up\nok 2 - stored\n", "", false);
        assert_eq!(passed.verdict, Verdict::Passed);
        assert!(passed.summary.is_empty());
    }

    #[test]
    fn a_crash_without_a_failed_point_is_a_broken_check() {
        let tb = "Traceback (most recent call last):\n  File \"check.py\", line 3\nNameError: name 'reqests' is not defined\n";
        let r = judged(Some(1), "1..3\nok 1 - up\n", tb, false);
        assert_eq!(r.verdict, Verdict::Broken);
        assert_eq!(
            r.summary,
            "crashed: NameError: name 'reqests' is not defined"
        );
        assert!(r.points.iter().any(|p| p.verdict == PointVerdict::Failed));
        let bail = judged(Some(1), "1..2\nBail out! no config\n", "", false);
        assert_eq!(
            (bail.verdict, bail.summary.as_str()),
            (Verdict::Broken, "bailed out: no config")
        );
        let odd = judged(Some(2), "starting\n", "", false);
        assert_eq!(odd.verdict, Verdict::Broken);
        let missing = judged(Some(127), "", "sh: nosuchtool: not found\n", false);
        assert_eq!(missing.verdict, Verdict::Broken);
    }

    #[test]
    fn an_assertion_or_a_reported_failure_is_never_called_broken() {
        let tb = "Traceback (most recent call last):\n  File \"check.py\", line 9\nAssertionError: expected 201, got 404\n";
        assert_eq!(judged(Some(1), "", tb, false).verdict, Verdict::Failed);
        // A crash after a failed point: the point stands, the check may not be edited.
        let r = judged(
            Some(1),
            "not ok 1 - stored\n",
            "Traceback (most recent call last):\nKeyError: 'id'\n",
            false,
        );
        assert_eq!(r.verdict, Verdict::Failed);
    }

    #[test]
    fn plain_output_is_one_check_and_a_short_plan_fails() {
        let r = judged(Some(0), "all good\n", "", false);
        assert_eq!(r.verdict, Verdict::Passed);
        assert_eq!(r.points.len(), 1);
        assert_eq!(r.points[0].name, "smoke");
        let short = judged(Some(0), "1..3\nok 1 - a\n", "", false);
        assert_eq!(short.verdict, Verdict::Failed);
        assert_eq!(short.summary, "planned 3 test point(s), 1 reported");
    }

    #[test]
    fn a_timeout_fails_with_its_limit() {
        let r = judged(None, "1..1\n", "", true);
        assert_eq!(r.verdict, Verdict::Failed);
        assert_eq!(r.summary, "did not finish within 60s (--smoke-timeout)");
        assert_eq!(r.points.last().unwrap().verdict, PointVerdict::Failed);
    }
}
