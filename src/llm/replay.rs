//! The replay provider: recorded replies played back in order, for demos and tests with
//! no API key.
//!
//! A replay directory holds one `.txt` file per reply; files are played in name order
//! (`001-generate.txt`, `002-repair.txt`, ...). Each file is the model's reply text,
//! exactly as the model would write it. Replies are marked `end_turn` and bill no tokens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::{LlmError, Model, Request, ResponseStream, StopReason, StreamEvent, Usage};

pub struct ReplayModel {
    dir: PathBuf,
    replies: Vec<(String, String)>,
    next: Mutex<usize>,
    id: String,
}

impl ReplayModel {
    /// Load every `*.txt` in `dir`, in name order.
    pub fn open(dir: &Path) -> Result<Self, LlmError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            LlmError::Replay(format!("cannot read replay directory {}: {e}; pass a folder of recorded replies (e.g. fixtures/demo)", dir.display()))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "txt") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(LlmError::Replay(format!(
                "replay directory {} holds no .txt replies; each reply is one NNN-name.txt file",
                dir.display()
            )));
        }
        let mut replies = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| {
                LlmError::Replay(format!("cannot read replay file {}: {e}", f.display()))
            })?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            replies.push((name, text));
        }
        Ok(ReplayModel {
            dir: dir.to_path_buf(),
            replies,
            next: Mutex::new(0),
            id: "replay".to_string(),
        })
    }

    /// How many replies the directory holds.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }
}

impl Model for ReplayModel {
    fn id(&self) -> &str {
        &self.id
    }

    /// Replies bill nothing.
    fn price(&self) -> Option<super::pricing::Price> {
        Some(super::pricing::Price {
            input: 0.0,
            output: 0.0,
            cache_read: 0.0,
            cache_write: 0.0,
        })
    }

    fn stream<'a>(&'a self, _req: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>> {
        Box::pin(async move {
            let index = {
                let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
                let i = *next;
                *next += 1;
                i
            };
            let (_, text) = self.replies.get(index).ok_or_else(|| {
                LlmError::Replay(format!(
                    "replay {} has {} recorded replies, but masgen asked for reply {}: the recording does not match this run (record it again, or check the flags used)",
                    self.dir.display(),
                    self.replies.len(),
                    index + 1
                ))
            })?;
            let events = vec![
                Ok(StreamEvent::Usage(Usage::default())),
                Ok(StreamEvent::Text(text.clone())),
                Ok(StreamEvent::Stop(StopReason::EndTurn)),
            ];
            Ok(Box::pin(futures_util::stream::iter(events)) as ResponseStream)
        })
    }
}
