//! Iterate on an existing system: a change request becomes edits, applied through the
//! workspace; the caller then verifies and repairs as for a fresh generation.

use std::path::Path;

use serde::Serialize;

use super::exchange::{save, Exchange};
use super::{prompts, GenerateError, Generator, Options};
use crate::events::Event;
use crate::llm::{pricing, Message, Usage};
use crate::workspace::rounds::{next_round_number, round_dir};
use crate::workspace::{hash_bytes, Workspace};

/// A system whose files add up to at most this many characters is sent whole; a larger
/// one gets the most relevant files within this budget, and the tree.
pub const ALL_FILES_BUDGET: usize = 60_000;

/// What an iteration changed.
#[derive(Debug, Clone, Serialize)]
pub struct IterateOutcome {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    /// Files the user had edited that the change replaced or deleted: their version is
    /// kept under `.masgen/rounds/<round>/previous/`.
    pub preserved: Vec<String>,
    /// Files of smoke checks the change added, changed or deleted (an iterate request may
    /// change checks for the behaviour it asks for: they are listed, never silent).
    pub check_changes: Vec<String>,
    /// Files the user edited since masgen last wrote them (shown to the model as they are).
    pub user_edited: Vec<String>,
    /// The round folder holding the request, reply and diff.
    pub round_dir: String,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub requests: u32,
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(|w| w.to_lowercase())
        .collect()
}

/// The system in `dir`, for a change: refused when the change is empty or there is no
/// compose file to change.
fn open_for_change(dir: &Path, change: &str) -> Result<Workspace, GenerateError> {
    if change.is_empty() {
        return Err(GenerateError::EmptyChange);
    }
    crate::compose::find_compose_file(dir).map_err(|_| GenerateError::NoCompose {
        dir: dir.to_path_buf(),
    })?;
    Ok(Workspace::open(dir)?)
}

/// Every file the project is read from, included ones too (they are shown first).
fn compose_files(dir: &Path) -> Vec<String> {
    crate::compose::load_project(dir)
        .map(|p| p.all_files().iter().filter_map(|f| p.inside(f)).collect())
        .unwrap_or_default()
}

/// The change joins the system's history (and its spec, when it had none).
fn record_iteration(ws: &mut Workspace, spec: &str, change: &str) -> Result<(), GenerateError> {
    ws.state_mut().iterations.push(change.to_string());
    if ws.state().spec.is_empty() {
        ws.state_mut().spec = spec.to_string();
    }
    ws.save_state()?;
    Ok(())
}

/// A reply that changed nothing: its commentary (or the reply itself) is what the user
/// is shown.
fn no_files(reply: String) -> GenerateError {
    let parsed = crate::protocol::parse_reply(&reply);
    GenerateError::NoFiles {
        commentary: if parsed.commentary.is_empty() {
            reply
        } else {
            parsed.commentary
        },
    }
}

/// The text of every file the model may be shown, and the files the user edited since
/// masgen wrote them.
fn read_files(ws: &Workspace, dir: &Path, tree: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut contents = Vec::new();
    let mut user_edited = Vec::new();
    for p in tree {
        let Ok(bytes) = std::fs::read(dir.join(p)) else {
            continue;
        };
        if ws
            .state()
            .files
            .get(p)
            .is_some_and(|h| *h != hash_bytes(&bytes))
        {
            user_edited.push(p.clone());
        }
        if let Some(text) = crate::workspace::model_text(&bytes) {
            contents.push((p.clone(), text));
        }
    }
    (contents, user_edited)
}

/// A first reply that only asks for files (`<need/>`) gets them, as the next message;
/// any other reply is the one to apply (returned).
fn more_files_or_reply(
    first: crate::llm::Completion,
    all: &[(String, String)],
    messages: &mut Vec<Message>,
) -> Option<crate::llm::Completion> {
    let wanted = needs(&first.text);
    if wanted.is_empty() || !crate::protocol::parse_reply(&first.text).changes.is_empty() {
        return Some(first);
    }
    let more: Vec<(String, String)> = all
        .iter()
        .filter(|(p, _)| wanted.contains(p))
        .cloned()
        .collect();
    messages.push(Message::assistant(first.text));
    messages.push(Message::user(prompts::more_files(&more)));
    None
}

/// Pick the files to show: all when they fit; else the compose files (those named
/// `compose`, the default names otherwise), then files whose path shares a word with the
/// change, then the smallest, within the budget.
fn select(
    files: Vec<(String, String)>,
    change: &str,
    compose: &[String],
) -> (Vec<(String, String)>, bool) {
    let total: usize = files.iter().map(|(p, c)| p.len() + c.len()).sum();
    if total <= ALL_FILES_BUDGET {
        return (files, false);
    }
    let want = words(change);
    let rank = |(p, c): &(String, String)| {
        let compose =
            compose.contains(p) || crate::compose::COMPOSE_FILE_NAMES.contains(&p.as_str());
        let relevant = words(p).iter().any(|w| want.contains(w));
        (!compose, !relevant, c.len())
    };
    let mut sorted = files;
    sorted.sort_by_key(rank);
    let mut used = 0;
    let mut out = Vec::new();
    for (p, c) in sorted {
        if used + p.len() + c.len() <= ALL_FILES_BUDGET {
            used += p.len() + c.len();
            out.push((p, c));
        }
    }
    (out, true)
}

/// `<need path="..."/>` lines of a reply.
fn needs(reply: &str) -> Vec<String> {
    reply
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<need path=\""))
        .filter_map(|r| r.split('"').next())
        .filter_map(|p| {
            crate::protocol::check_path(p)
                .ok()
                .map(|p| p.as_str().to_string())
        })
        .collect()
}

/// What the last verification of the system (`.masgen/report.json`) found.
struct LastRun {
    healthy: bool,
    /// Each smoke service's checks with their verdicts.
    checks: Vec<Vec<(String, String)>>,
}

impl LastRun {
    fn read(dir: &Path) -> Option<LastRun> {
        let path = dir.join(crate::workspace::MASGEN_DIR).join("report.json");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let verify = report.get("verify")?;
        let smoke = verify.get("smoke").and_then(|s| s.as_array()).cloned();
        let checks = smoke
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let points = s.get("points").and_then(|p| p.as_array()).cloned();
                points
                    .unwrap_or_default()
                    .iter()
                    .map(|p| {
                        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
                        (field("name").to_string(), field("verdict").to_string())
                    })
                    .collect()
            })
            .collect();
        Some(LastRun {
            healthy: verify.get("healthy").and_then(|h| h.as_bool())?,
            checks,
        })
    }

    /// In words, for the model.
    fn said(&self) -> String {
        let mut s = if self.healthy {
            "the last verification found the system healthy".to_string()
        } else {
            "the last verification found the system not healthy".to_string()
        };
        let points: Vec<&(String, String)> = self.checks.iter().flatten().collect();
        if points.is_empty() {
            s.push_str(", with no smoke checks run.");
        } else {
            let list = |v: &str| {
                let names: Vec<&str> = points
                    .iter()
                    .filter(|(_, verdict)| verdict == v)
                    .map(|(n, _)| n.as_str())
                    .collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join("; ")
                }
            };
            s.push_str(&format!(
                ". Smoke checks that passed: {}. Failed: {}.",
                list("passed"),
                list("failed")
            ));
        }
        s
    }
}

/// Which of `paths` are files of a smoke check: under the build folder of a service in
/// the compose profile `smoke`, as the system's compose file now reads.
fn check_files<'p>(dir: &Path, paths: impl Iterator<Item = &'p String>) -> Vec<String> {
    let load = crate::compose::load::LoadOptions {
        profiles: vec!["smoke".into()],
        smoke_file: true,
        ..Default::default()
    };
    let Ok(project) = crate::compose::load::load_with(dir, &load) else {
        return Vec::new();
    };
    let folders: Vec<String> = project
        .compose
        .services
        .values()
        .filter(|s| s.profiles.iter().any(|p| p == "smoke"))
        .filter_map(|s| s.build.as_ref())
        .map(|b| {
            b.context()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string()
        })
        .filter(|f| !f.is_empty() && f != ".")
        .collect();
    paths
        .filter(|p| folders.iter().any(|f| p.starts_with(&format!("{f}/"))))
        .cloned()
        .collect()
}

impl Generator {
    /// Apply the change request `modification` to the system in `dir`. Callable
    /// repeatedly: each call is recorded in `.masgen/state.json` and gets its own round
    /// folder. Verification and repair are the caller's next step.
    pub async fn iterate_on_system(
        &self,
        spec: &str,
        modification: &str,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<IterateOutcome, GenerateError> {
        let dir = dir.as_ref();
        let change = modification.trim();
        let mut ws = open_for_change(dir, change)?;
        let tree = ws.files();
        let (contents, user_edited) = read_files(&ws, dir, &tree);
        let all = contents.clone();
        let (shown, omitted) = select(contents, change, &compose_files(dir));
        let n = next_round_number(dir);
        let rdir = round_dir(dir, n).with_file_name(format!("{n:03}-iterate"));
        let record = format!("{n:03}-iterate/previous");
        self.events.emit(Event::Phase {
            name: format!("iterate: {change}"),
        });
        let last = LastRun::read(dir);
        let before = last.as_ref().map(LastRun::said);
        let prompt = prompts::iterate(
            spec,
            change,
            &tree,
            &shown,
            &user_edited,
            omitted,
            before.as_deref(),
        );
        let note = format!(
            "# Iteration\n\nchange: {change}\nprompt: {} characters\nfiles sent: {}\nuser-edited: {}\n",
            prompt.len(),
            shown.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", "),
            user_edited.join(", ")
        );
        save(&rdir.join("prompt.md"), &note, &self.events);
        let session = self.session(dir, &options, 1);
        let mut messages = vec![Message::user(prompt)];
        let (mut usage, mut requests, mut in_hand) = (Usage::default(), 0, None);
        if omitted {
            // The model may ask for more files once.
            let first = session
                .ask("iterate", "iterate-plan.json", messages.clone())
                .await?;
            requests += 1;
            usage += first.usage;
            in_hand = more_files_or_reply(first, &all, &mut messages);
        }
        let exchange = Exchange {
            guard: Default::default(),
            session: &session,
            label: "iterate".into(),
            file: "iterate".into(),
            folder: rdir.clone(),
            record,
            excerpted: Vec::new(),
            require_change: false,
        };
        let asked = exchange.run(&mut ws, messages, in_hand).await?;
        usage += asked.usage;
        requests += asked.requests;
        if asked.applied.touched() == 0 {
            return Err(no_files(asked.last_reply));
        }
        record_iteration(&mut ws, spec, change)?;
        let a = asked.applied;
        let check_changes = check_files(dir, a.added.iter().chain(&a.changed).chain(&a.deleted));
        Ok(IterateOutcome {
            added: a.added,
            changed: a.changed,
            deleted: a.deleted,
            preserved: a.preserved,
            check_changes,
            user_edited,
            round_dir: rdir
                .strip_prefix(dir)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            cost_usd: self.model.price().and_then(|p| pricing::cost_at(p, &usage)),
            usage,
            requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_systems_send_compose_and_relevant_files_first() {
        let big = "x".repeat(ALL_FILES_BUDGET / 2);
        let files = vec![
            ("a/big.py".to_string(), big.clone()),
            ("logger/app.py".to_string(), "log".into()),
            ("docker-compose.yml".to_string(), "services: {}".into()),
            ("b/big.py".to_string(), big),
        ];
        let (shown, omitted) = select(files, "add a logger agent", &[]);
        assert!(omitted);
        let names: Vec<&str> = shown.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(&names[..2], &["docker-compose.yml", "logger/app.py"]);
        assert_eq!(names.len(), 3, "one big file fits in what is left");
    }

    #[test]
    fn need_lines_are_read_and_checked() {
        assert_eq!(
            needs("<need path=\"a/b.py\"/>\n<need path=\"../x\"/>\ntext"),
            vec!["a/b.py"]
        );
    }

    #[test]
    fn the_last_verdict_and_the_checks_are_told_and_check_files_listed() {
        let d = tempfile::tempdir().unwrap();
        let report = r#"{"verify": {"healthy": true, "smoke": [{"service": "smoke", "folder": "smoke",
            "points": [{"name": "GET /items lists apple", "verdict": "passed"},
                       {"name": "a count grows", "verdict": "failed"}]}]}}"#;
        std::fs::create_dir_all(d.path().join(".masgen")).unwrap();
        std::fs::write(d.path().join(".masgen/report.json"), report).unwrap();
        let said = LastRun::read(d.path()).unwrap().said();
        assert_eq!(said, "the last verification found the system healthy. Smoke checks that passed: GET /items lists apple. Failed: a count grows.");
        let compose = "services:\n  api:\n    build: ./api\n  smoke:\n    build: ./smoke\n    profiles: [smoke]\n";
        std::fs::write(d.path().join("docker-compose.yml"), compose).unwrap();
        let touched = ["smoke/check.py".to_string(), "api/app.py".to_string()];
        assert_eq!(
            check_files(d.path(), touched.iter()),
            vec!["smoke/check.py"]
        );
    }
}
