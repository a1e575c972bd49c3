//! What a verification found, as people read it: the services table, the smoke checks,
//! the requirements not met, each failure with its evidence, the verdict.

use super::*;

pub(super) fn print_verify(v: &VerifyReport, ui: &Ui) {
    if v.services.is_empty() && v.diagnostics.is_empty() {
        println!(
            "{} nothing to run: project {} has no service to start (see the warning above)",
            ui.paint("1;32", "✓"),
            v.project
        );
        return;
    }
    print_services(v, ui);
    print_smoke(v, ui);
    print_unmet(v, ui);
    for d in &v.diagnostics {
        println!(
            "{} {} [{}] {}",
            ui.paint("31", "✗"),
            d.service,
            d.phase.as_str(),
            d.summary
        );
        for line in crate::diagnose::tail(&d.evidence, 15).lines() {
            println!("    {line}");
        }
        if !d.files.is_empty() {
            println!("    files: {}", d.files.join(", "));
        }
    }
    if v.healthy {
        let kept = if v.kept {
            format!(
                " (left running: `masgen down` removes project {})",
                v.project
            )
        } else {
            String::new()
        };
        println!(
            "{} healthy: {} service(s), {} in {:.1}s{kept}",
            ui.paint("1;32", "✓"),
            v.services.len(),
            smoke_count(v),
            v.timings.total_secs
        );
    } else {
        let root = v
            .diagnostics
            .first()
            .map(|d| format!(" (root cause: {} [{}])", d.service, d.phase.as_str()))
            .unwrap_or_default();
        let smoke_only = v
            .diagnostics
            .iter()
            .all(|d| d.phase == crate::diagnose::Phase::Smoke);
        let verdict = if smoke_only {
            format!(
                "healthy, but does not do what was asked ({})",
                smoke_count(v)
            )
        } else {
            format!("not healthy: {} problem(s)", v.diagnostics.len())
        };
        println!("{} {verdict}{root}", ui.paint("1;31", "✗"));
    }
}

/// "3 smoke check(s) passed", "1 of 3 smoke check(s) failed", or "no smoke checks".
pub(super) fn smoke_count(v: &VerifyReport) -> String {
    let mut s = checks_count(v);
    for kind in [UnmetKind::Substituted, UnmetKind::NotMet] {
        let n = v.unmet.iter().filter(|u| u.kind == kind).count();
        if n > 0 {
            s.push_str(&format!(", {n} requirement(s) {}", kind.as_str()));
        }
    }
    s
}

pub(super) fn checks_count(v: &VerifyReport) -> String {
    if v.smoke.is_empty() {
        return "no smoke checks".into();
    }
    let (passed, failed) = v
        .smoke
        .iter()
        .map(|s| s.counts())
        .fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    if failed == 0 && v.smoke.iter().all(|s| s.verdict == Verdict::Passed) {
        format!("{passed} smoke check(s) passed")
    } else {
        format!("smoke checks: {passed} passed, {failed} failed")
    }
}

/// The smoke services: one line each, with the checks that did not pass under it.
pub(super) fn print_smoke(v: &VerifyReport, ui: &Ui) {
    if v.smoke.is_empty() {
        return;
    }
    println!("{:<18} {:<10} {:>7} CHECKS", "SMOKE", "VERDICT", "TIME");
    for s in &v.smoke {
        let (passed, failed) = s.counts();
        let code = if s.verdict == Verdict::Passed {
            "32"
        } else {
            "31"
        };
        let time = if s.verdict == Verdict::NotRun {
            "-".into()
        } else {
            format!("{:.1}s", s.secs)
        };
        println!(
            "{:<18} {} {:>7} {passed} passed, {failed} failed",
            s.service,
            ui.paint(code, &format!("{:<10}", s.verdict)),
            time
        );
    }
    println!();
}

/// What the system does not do as the spec asked, as the model said: never silent.
pub(super) fn print_unmet(v: &VerifyReport, ui: &Ui) {
    for u in &v.unmet {
        let line = format!("! {}: {} ({})", u.kind.as_str(), u.requirement, u.detail);
        println!("{}", ui.paint("33", &line));
    }
    if !v.unmet.is_empty() {
        println!();
    }
}

/// The summary table: one line per service.
pub(super) fn print_services(v: &VerifyReport, ui: &Ui) {
    println!();
    println!(
        "{:<18} {:<42} {:>7} {:>8} {:<12} {:<10} PORTS",
        "SERVICE", "IMAGE", "PULL", "BUILD", "STATE", "HEALTH"
    );
    for s in &v.services {
        let build = match (s.build_secs, s.cached) {
            (Some(_), true) => "cached".to_string(),
            (Some(b), false) => format!("{b:.1}s"),
            (None, _) => "-".into(),
        };
        let state = match s.state.as_str() {
            "ready" | "completed" => ui.paint("32", &format!("{:<12}", s.state)),
            other => ui.paint("31", &format!("{other:<12}")),
        };
        let pull = s
            .pull_secs
            .map_or_else(|| "-".into(), |p| format!("{p:.1}s"));
        println!(
            "{:<18} {:<42} {:>7} {:>8} {} {:<10} {}",
            s.name,
            s.image,
            pull,
            build,
            state,
            if s.health == HealthState::Unknown {
                "-"
            } else {
                s.health.as_str()
            },
            s.ports.join(", ")
        );
        if !s.replicas.is_empty() {
            println!(
                "{:<18} {} replicas, each ready: {}",
                "",
                s.replicas.len(),
                s.replicas.join(", ")
            );
        }
    }
    println!();
}

/// `Tokens: input N, output N, cache read N, cache write N; estimated $X`.
pub(super) fn print_tokens(u: &crate::llm::Usage, cost_usd: Option<f64>) {
    println!(
        "Tokens: input {}, output {}, cache read {}, cache write {}{}",
        u.input,
        u.output,
        u.cache_read,
        u.cache_write,
        cost_usd
            .map(|c| format!("; estimated ${c:.4}"))
            .unwrap_or_default()
    );
}
