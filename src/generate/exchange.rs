//! One model exchange, as generation's repairs and iterations need it: ask, continue a
//! reply cut at max_tokens, parse it, apply its changes through the workspace, and send
//! back what did not apply (at most [`MAX_REASKS`] times). Raw replies and the diff go
//! to the round's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{prompts, GenerateError, Session};
use crate::events::{Event, Events};
use crate::llm::{Completion, Message, Usage};
use crate::protocol::{parse_reply, Change};
use crate::workspace::rounds::unified_diff;
use crate::workspace::{write_atomic, Applied, Workspace};

/// Edits that do not apply are sent back this many times per round at most.
pub const MAX_REASKS: u32 = 2;

/// What one exchange did.
pub(crate) struct Asked {
    pub applied: Applied,
    pub usage: Usage,
    pub requests: u32,
    /// The text of the last reply (shown when nothing applied).
    pub last_reply: String,
    /// Each changed file's text before the exchange (None: it did not exist).
    pub before: BTreeMap<String, Option<String>>,
}

/// One exchange: what it is called, where its record goes, and what it accepts.
pub(crate) struct Exchange<'s, 'a> {
    pub session: &'s Session<'a>,
    /// "repair 2", "iterate": the label of its requests; `file` names their raw replies.
    pub label: String,
    pub file: String,
    /// The round's folder: `reply.txt` and `changes.diff` go there.
    pub folder: PathBuf,
    /// Where the user's replaced files are kept (see [`Workspace::apply`]).
    pub record: String,
    /// Files the model saw only in part: a whole-file block for one is refused.
    pub excerpted: Vec<String>,
    /// A reply that changes no file is sent back too.
    pub require_change: bool,
    /// The smoke checks this exchange may not change (see guard.rs).
    pub guard: super::guard::Guard,
}

/// One reply applied: what it changed and what it refused.
struct Turn {
    applied: Applied,
    failures: Vec<crate::protocol::EditFailure>,
    partial: Vec<String>,
    rejected: Vec<crate::protocol::Rejected>,
}

impl Exchange<'_, '_> {
    fn events(&self) -> &Events {
        self.session.events
    }

    /// Send `messages` (or apply `in_hand`, a reply to the last of them the caller already
    /// has and has counted), apply the reply's changes, and send back what did not apply
    /// (at most [`MAX_REASKS`] times).
    pub async fn run(
        &self,
        ws: &mut Workspace,
        mut messages: Vec<Message>,
        mut in_hand: Option<Completion>,
    ) -> Result<Asked, GenerateError> {
        let dir = ws.root().to_path_buf();
        let (mut usage, mut requests) = (Usage::default(), 0);
        let mut before: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut total = Applied::default();
        let mut replies = String::new();
        let mut reask = 0;
        let last_reply = loop {
            let (label, file) = self.names(reask);
            let reply = match in_hand.take() {
                Some(r) => r,
                None => {
                    let r = self.session.ask(&label, &file, messages.clone()).await?;
                    requests += 1;
                    usage += r.usage;
                    r
                }
            };
            let (reply, more) = self.complete(reply, &messages, &label, &file).await?;
            requests += more.0;
            usage += more.1;
            replies.push_str(&format!("--- {label} ---\n{}\n", reply.text));
            save(&self.folder.join("reply.txt"), &replies, self.events());
            let turn = self.apply(ws, &dir, &reply.text, &mut before)?;
            let ok = turn.applied.touched();
            merge(&mut total, turn.applied);
            let refused = turn.failures.len() + turn.partial.len() + turn.rejected.len();
            let nothing = self.require_change && refused == 0 && total.touched() == 0;
            if (refused == 0 && !nothing) || reask >= MAX_REASKS {
                total.edit_failures = turn.failures;
                break reply.text;
            }
            reask += 1;
            let why = if nothing {
                "the model's answer changed no file".to_string()
            } else {
                format!("{refused} change(s) did not apply")
            };
            self.events().warn(format!(
                "{why}; asking the model again ({reask}/{MAX_REASKS})"
            ));
            messages.push(Message::assistant(reply.text));
            messages.push(Message::user(prompts::edits_failed(
                &turn.failures,
                &turn.partial,
                &turn.rejected,
                ok,
            )));
        };
        save(
            &self.folder.join("changes.diff"),
            &unified_diff(&before, &dir),
            self.events(),
        );
        Ok(Asked {
            applied: total,
            usage,
            requests,
            last_reply,
            before,
        })
    }

    /// The label and raw-reply file of the `reask`-th request.
    fn names(&self, reask: u32) -> (String, String) {
        if reask == 0 {
            (self.label.clone(), format!("{}.json", self.file))
        } else {
            (
                format!("{} re-ask {reask}", self.label),
                format!("{}-reask-{reask}.json", self.file),
            )
        }
    }

    /// A reply cut at max_tokens would lose its last block: continue it first, as a
    /// generation is continued. Returns the whole reply and the requests and usage added.
    async fn complete(
        &self,
        mut reply: Completion,
        messages: &[Message],
        label: &str,
        file: &str,
    ) -> Result<(Completion, (u32, Usage)), GenerateError> {
        let (mut requests, mut usage) = (0, Usage::default());
        let mut n = 0;
        while reply.stop_reason == crate::llm::StopReason::MaxTokens
            && n < super::single::MAX_CONTINUATIONS
        {
            n += 1;
            self.events().emit(Event::Continuation {
                label: label.to_string(),
                attempt: n,
            });
            let mut cont = messages.to_vec();
            cont.push(Message::assistant(reply.text.clone()));
            cont.push(Message::user(prompts::CONTINUE));
            let next = self
                .session
                .ask(
                    &format!("{label} continue {n}"),
                    &format!("{}-continue-{n}.json", file.trim_end_matches(".json")),
                    cont,
                )
                .await?;
            requests += 1;
            usage += next.usage;
            reply.text = super::single::join_continuation(&reply.text, &next.text);
            reply.stop_reason = next.stop_reason;
        }
        Ok((reply, (requests, usage)))
    }

    /// Parse `text` and apply its changes; `before` keeps each touched file's first text
    /// for the diff.
    fn apply(
        &self,
        ws: &mut Workspace,
        dir: &Path,
        text: &str,
        before: &mut BTreeMap<String, Option<String>>,
    ) -> Result<Turn, GenerateError> {
        let events = self.events();
        let mut parsed = parse_reply(text);
        // A check that judged the system is not the model's to change.
        let (changes, guarded): (Vec<Change>, Vec<Change>) = std::mem::take(&mut parsed.changes)
            .into_iter()
            .partition(|c| self.guard.refusal(dir, c).is_none());
        for c in guarded {
            let reason = self.guard.refusal(dir, &c).unwrap_or_default();
            parsed.rejected.push(crate::protocol::Rejected {
                path: c.path().as_str().to_string(),
                reason,
            });
        }
        parsed.changes = changes;
        for r in &parsed.rejected {
            events.emit(Event::Rejected {
                path: r.path.clone(),
                reason: r.reason.clone(),
            });
        }
        // A whole-file block for a file the model saw only part of would drop the rest.
        let (changes, partial): (Vec<Change>, Vec<Change>) =
            parsed.changes.into_iter().partition(|c| {
                !(matches!(c, Change::File { .. })
                    && self.excerpted.iter().any(|e| e == c.path().as_str()))
            });
        parsed.changes = changes;
        let partial: Vec<String> = partial
            .iter()
            .map(|c| c.path().as_str().to_string())
            .collect();
        for p in &partial {
            events.emit(Event::Rejected {
                path: p.clone(),
                reason: "a whole-file block for a file shown only in part".into(),
            });
        }
        for c in &parsed.changes {
            let p = c.path().as_str().to_string();
            before
                .entry(p.clone())
                .or_insert_with(|| std::fs::read_to_string(dir.join(&p)).ok());
        }
        let unmet = crate::protocol::parse_unmet(&parsed.commentary);
        crate::protocol::unmet::merge(&mut ws.state_mut().unmet, unmet);
        let applied = ws.apply(&parsed.changes, &self.record)?;
        for c in &parsed.changes {
            if let Change::Delete { path } = c {
                events.emit(Event::FileDeleted {
                    path: path.as_str().to_string(),
                });
            }
        }
        Ok(Turn {
            failures: applied.edit_failures.clone(),
            applied,
            partial,
            rejected: parsed.rejected,
        })
    }
}

pub(crate) fn merge(total: &mut Applied, a: Applied) {
    for (into, from) in [
        (&mut total.added, a.added),
        (&mut total.changed, a.changed),
        (&mut total.deleted, a.deleted),
        (&mut total.preserved, a.preserved),
    ] {
        for p in from {
            if !into.contains(&p) {
                into.push(p);
            }
        }
    }
    total.rejected.extend(a.rejected);
}

pub(crate) fn save(path: &Path, text: &str, events: &Events) {
    if let Err(e) = write_atomic(path, text.as_bytes()) {
        events.warn(format!("could not write {}: {e}", path.display()));
    }
}
