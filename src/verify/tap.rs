//! TAP (the Test Anything Protocol, versions 13 and 14) as a smoke check prints it on
//! stdout: an optional `TAP version N` line, a plan `1..N` first or last, test points
//! `ok N - description` / `not ok N - description` with `# SKIP` and `# TODO`
//! directives, `# comment` diagnostics, a YAML block between `---` and `...` indented
//! under its point, `Bail out!`, and TAP 14's subtests indented four spaces (their lines
//! belong to the parent point that closes them). Pure: no I/O.

use serde::Serialize;

/// One test point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub number: usize,
    pub ok: bool,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directive: Option<Directive>,
    /// Its `#` lines, YAML block and subtest lines, as printed (indent removed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diagnostics: String,
}

/// `# SKIP reason` or `# TODO reason` after a point's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "reason", rename_all = "snake_case")]
pub enum Directive {
    Skip(String),
    Todo(String),
}

impl Point {
    /// A `not ok` that is not a TODO: a failed check.
    pub fn failed(&self) -> bool {
        !self.ok && !matches!(self.directive, Some(Directive::Todo(_)))
    }

    pub fn skipped(&self) -> bool {
        matches!(self.directive, Some(Directive::Skip(_)))
    }
}

/// A whole TAP stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tap {
    pub points: Vec<Point>,
    /// The plan's count, when one was printed (`1..0`: nothing to run).
    pub planned: Option<usize>,
    /// `Bail out! reason`: the run stopped (the reason may be empty).
    pub bailed: Option<String>,
    /// Diagnostics printed before the first point.
    pub preamble: String,
    /// What makes the stream itself wrong: a plan that does not match the points, a
    /// second plan, a plan in the middle.
    pub problems: Vec<String>,
}

impl Tap {
    /// Whether anything in `text` was TAP (a plan, a point or a bail-out).
    pub fn is_tap(&self) -> bool {
        self.planned.is_some() || !self.points.is_empty() || self.bailed.is_some()
    }

    /// No point failed, it did not bail out, and the plan (if any) matches.
    pub fn passed(&self) -> bool {
        self.bailed.is_none() && self.problems.is_empty() && !self.points.iter().any(Point::failed)
    }

    pub fn failed_points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(|p| p.failed())
    }
}

/// Parse what a check printed on stdout.
pub fn parse(text: &str) -> Tap {
    let mut tap = Tap::default();
    let mut plan_at: Option<usize> = None;
    let mut pending_sub = String::new();
    let mut in_yaml = false;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if in_yaml {
            if line.trim() == "..." {
                in_yaml = false;
            } else {
                attach(&mut tap, line.strip_prefix("  ").unwrap_or(line));
            }
            continue;
        }
        if !tap.points.is_empty() && line.trim() == "---" && line.starts_with("  ") {
            in_yaml = true;
            continue;
        }
        if let Some(sub) = line.strip_prefix("    ") {
            pending_sub.push_str(sub);
            pending_sub.push('\n');
            continue;
        }
        let trimmed = line.trim();
        if let Some(reason) = trimmed.strip_prefix("Bail out!") {
            tap.bailed = Some(reason.trim().to_string());
            break;
        }
        if let Some(n) = plan(trimmed) {
            if tap.planned.is_some() {
                tap.problems.push(format!("a second plan (1..{n})"));
            } else {
                tap.planned = Some(n);
                plan_at = Some(tap.points.len());
            }
            continue;
        }
        if let Some(mut p) = point(trimmed, tap.points.last().map_or(0, |p| p.number)) {
            p.diagnostics = std::mem::take(&mut pending_sub);
            tap.points.push(p);
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            attach(&mut tap, comment.trim());
        }
    }
    if let Some(at) = plan_at {
        if at != 0 && at != tap.points.len() {
            tap.problems
                .push("the plan is neither before nor after the test points".into());
        }
    }
    if let (Some(n), None) = (tap.planned, &tap.bailed) {
        if n != tap.points.len() {
            tap.problems.push(format!(
                "planned {n} test point(s), {} reported",
                tap.points.len()
            ));
        }
    }
    tap
}

/// A diagnostic line: the latest point's, or the preamble's before any.
fn attach(tap: &mut Tap, line: &str) {
    let into = match tap.points.last_mut() {
        Some(p) => &mut p.diagnostics,
        None => &mut tap.preamble,
    };
    into.push_str(line);
    into.push('\n');
}

/// `1..N` (a `# skip reason` may follow).
fn plan(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("1..")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].trim_start();
    if digits.is_empty() || !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    digits.parse().ok()
}

/// `ok` / `not ok`, an optional number, an optional `-`, the description and directive.
fn point(line: &str, previous: usize) -> Option<Point> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok") {
        (true, r)
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let number = digits.parse().unwrap_or(previous + 1);
    let rest = rest[digits.len()..].trim_start();
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    let (description, directive) = split_directive(rest);
    Some(Point {
        number,
        ok,
        description,
        directive,
        diagnostics: String::new(),
    })
}

/// The description and its directive: the first unescaped `#`.
fn split_directive(rest: &str) -> (String, Option<Directive>) {
    let mut escaped = false;
    let at = rest.char_indices().find_map(|(i, c)| {
        let hit = c == '#' && !escaped;
        escaped = c == '\\' && !escaped;
        hit.then_some(i)
    });
    let Some(at) = at else {
        return (rest.replace("\\#", "#").trim().to_string(), None);
    };
    let description = rest[..at].replace("\\#", "#").trim().to_string();
    let comment = rest[at + 1..].trim();
    let word: String = comment
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let reason = comment[word.len()..].trim().to_string();
    let directive = match word.to_ascii_lowercase().as_str() {
        w if w.starts_with("skip") => Some(Directive::Skip(reason)),
        "todo" => Some(Directive::Todo(reason)),
        _ => None,
    };
    (description, directive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_stream_with_a_plan_first() {
        let t = parse("TAP version 14\n1..3\nok 1 - api answers\nnot ok 2 - item stored\n# expected 201, got 404\nok 3 - count grows # SKIP no counter yet\n");
        assert_eq!(t.planned, Some(3));
        assert_eq!(t.points.len(), 3);
        assert!(!t.passed());
        let failed: Vec<&str> = t.failed_points().map(|p| p.description.as_str()).collect();
        assert_eq!(failed, vec!["item stored"]);
        assert_eq!(t.points[1].diagnostics, "expected 201, got 404\n");
        assert!(t.points[2].skipped());
        assert_eq!(t.points[2].description, "count grows");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
    }

    #[test]
    fn a_plan_last_numbers_left_out_and_a_todo_that_fails_is_no_failure() {
        let t = parse("ok - first\nnot ok - later # TODO not built yet\nok\n1..3\n");
        assert_eq!(
            t.points.iter().map(|p| p.number).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(t.passed(), "{t:?}");
        assert_eq!(
            t.points[1].directive,
            Some(Directive::Todo("not built yet".into()))
        );
    }

    #[test]
    fn a_yaml_block_belongs_to_the_point_above_it() {
        let t =
            parse("1..1\nnot ok 1 - POST /items\n  ---\n  status: 404\n  body: not found\n  ...\n");
        assert_eq!(t.points[0].diagnostics, "status: 404\nbody: not found\n");
        assert!(!t.passed());
    }

    #[test]
    fn no_plan_is_fine_and_no_tap_at_all_is_not_tap() {
        let t = parse("ok 1 - a\nok 2 - b\n");
        assert!(t.passed() && t.planned.is_none() && t.is_tap());
        let plain = parse("checking the api...\nall good\n");
        assert!(!plain.is_tap());
        assert!(plain.passed());
    }

    #[test]
    fn truncated_tap_and_more_points_than_planned_fail() {
        let short = parse("1..4\nok 1 - a\nok 2 - b\n");
        assert!(!short.passed());
        assert_eq!(short.problems, vec!["planned 4 test point(s), 2 reported"]);
        let more = parse("1..1\nok 1 - a\nok 2 - b\n");
        assert!(!more.passed());
        assert!(
            more.problems[0].contains("planned 1"),
            "{:?}",
            more.problems
        );
    }

    #[test]
    fn bail_out_stops_the_run() {
        let t = parse("1..3\nok 1 - a\nBail out! database unreachable\nok 2 - never read\n");
        assert_eq!(t.bailed.as_deref(), Some("database unreachable"));
        assert_eq!(t.points.len(), 1);
        assert!(!t.passed());
        assert!(t.problems.is_empty(), "a bail-out is its own verdict");
    }

    #[test]
    fn malformed_lines_are_not_points() {
        let t = parse("okay then\nnotok 1\nok1\n1..x\n 1..2 trailing words\n# just a note\n");
        assert!(!t.is_tap(), "{t:?}");
        assert_eq!(t.preamble, "just a note\n");
    }

    #[test]
    fn subtests_belong_to_the_parent_point_that_closes_them() {
        let t = parse("1..1\n# Subtest: flow\n    1..2\n    ok 1 - publish\n    not ok 2 - consume\nnot ok 1 - flow\n");
        assert_eq!(t.points.len(), 1);
        assert!(t.points[0].diagnostics.contains("not ok 2 - consume"));
        assert!(!t.passed());
    }

    #[test]
    fn an_escaped_hash_stays_in_the_description() {
        let t = parse("ok 1 - issue \\#42 fixed # skip later\n");
        assert_eq!(t.points[0].description, "issue #42 fixed");
        assert!(t.points[0].skipped());
    }

    #[test]
    fn a_plan_in_the_middle_and_a_second_plan_are_problems() {
        let mid = parse("ok 1\n1..2\nok 2\n");
        assert!(!mid.passed(), "{mid:?}");
        let twice = parse("1..1\nok 1\n1..1\n");
        assert!(twice.problems.iter().any(|p| p.contains("second plan")));
    }
}
