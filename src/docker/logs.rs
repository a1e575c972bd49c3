//! Container logs, followed from the start; the last lines of each container kept.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::Engine;
use crate::events::{Event, Events};

/// Lines kept per container.
pub use crate::runtime::KEEP_LINES;

/// The tail of one container's output, filled by a background task.
#[derive(Clone, Default)]
pub struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    pub fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == KEEP_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }
    pub fn text(&self) -> String {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Follow `container`'s stdout and stderr into a [`LogTail`]; with `echo`, also emit each
/// line as an event (`--execute`).
pub fn follow(
    engine: &Engine,
    container: &str,
    service: &str,
    echo: Option<Events>,
) -> (LogTail, tokio::task::JoinHandle<()>) {
    let tail = LogTail::default();
    let docker = engine.docker.clone();
    let (t, name, svc) = (tail.clone(), container.to_string(), service.to_string());
    let handle = tokio::spawn(async move {
        let opts = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = docker.logs(&name, Some(opts));
        let mut partial = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                let line = line.trim_end().to_string();
                if let Some(ev) = &echo {
                    ev.emit(Event::LogLine {
                        service: svc.clone(),
                        line: line.clone(),
                    });
                }
                t.push(line);
            }
        }
        if !partial.is_empty() {
            t.push(partial);
        }
    });
    (tail, handle)
}

/// The last `n` lines a container wrote (stdout and stderr), read once.
pub async fn fetch_tail(engine: &Engine, container: &str, n: usize) -> String {
    let opts = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string());
    read_all(engine, container, opts).await
}

/// What a container wrote: its stdout and its stderr apart (a smoke check speaks TAP on
/// stdout), or both together from `since` on (what services wrote while the checks ran).
pub async fn fetch(
    engine: &Engine,
    container: &str,
    streams: Streams,
    since: Option<std::time::SystemTime>,
) -> String {
    let mut opts = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(streams != Streams::Stderr)
        .stderr(streams != Streams::Stdout);
    if let Some(t) = since {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        opts = opts.since(i32::try_from(secs).unwrap_or(i32::MAX));
    }
    read_all(engine, container, opts).await
}

/// The whole of what `opts` asks of a container's output, read once.
async fn read_all(engine: &Engine, container: &str, opts: LogsOptionsBuilder) -> String {
    let mut stream = engine.docker.logs(container, Some(opts.build()));
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    out
}

/// Which of a container's output streams to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streams {
    Stdout,
    Stderr,
    Both,
}
