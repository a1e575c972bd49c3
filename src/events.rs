//! Progress events. The library never prints: it emits these, and the CLI renders them
//! (human progress bars, or JSON lines with `--json`).

use std::sync::Arc;

use serde::Serialize;

use crate::usage::Usage;

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new phase began ("generate", "manifest", "batches", "single-files", "write", "verify", ...).
    Phase { name: String },
    /// A model request was sent.
    RequestStarted { label: String },
    /// Output tokens streamed so far for one request (approximate: counted from text deltas).
    Streaming { label: String, chars: usize },
    /// A model request finished.
    RequestFinished {
        label: String,
        usage: Usage,
        stop_reason: String,
    },
    /// A transient provider error; the request will be sent again after `delay_ms`.
    Retry {
        label: String,
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
    /// A reply was cut at max_tokens and is being continued.
    Continuation { label: String, attempt: u32 },
    /// Staged generation planned this many batches.
    BatchesPlanned { total: usize },
    /// One staged batch finished.
    BatchDone {
        group: String,
        done: usize,
        total: usize,
    },
    /// Something the user should know that does not stop the run.
    Warning { message: String },
    /// What masgen found out and acts on (e.g. what `--offline` tells the model).
    Info { message: String },
    /// A block from the model was refused and not written.
    Rejected { path: String, reason: String },
    /// A file was written to the output folder.
    FileWritten { path: String, bytes: usize },
    /// A file was deleted from the output folder.
    FileDeleted { path: String },
    /// An image pull began.
    PullStarted { image: String },
    /// How far a pull is: layers done of those known so far, bytes fetched of their size.
    PullProgress {
        image: String,
        layers_done: usize,
        layers_total: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// An image pull ended.
    PullFinished {
        image: String,
        secs: f64,
        bytes: u64,
        ok: bool,
    },
    /// An image build began.
    BuildStarted { service: String },
    /// An image build ended (or was skipped because the context is unchanged).
    /// `patched`: made from an earlier image with new COPY layers, no builder run.
    BuildFinished {
        service: String,
        secs: f64,
        cached: bool,
        patched: bool,
        ok: bool,
    },
    /// A container was created and started.
    ContainerStarted { service: String, container: String },
    /// A service reached its ready condition.
    ServiceReady { service: String, secs: f64 },
    /// A service failed.
    ServiceFailed {
        service: String,
        phase: crate::diagnose::Phase,
        summary: String,
    },
    /// A smoke check began (the system is healthy and still running).
    SmokeStarted { service: String },
    /// One check (a TAP test point, or a whole smoke service without TAP) of a smoke service.
    CheckResult {
        service: String,
        check: String,
        verdict: crate::verdict::PointVerdict,
    },
    /// A smoke service ended: its verdict and how many of its checks passed and failed.
    SmokeFinished {
        service: String,
        verdict: crate::verdict::Verdict,
        passed: usize,
        failed: usize,
        secs: f64,
        summary: String,
    },
    /// Where a published service answers (`--execute`).
    Published {
        service: String,
        container_port: String,
        host: String,
    },
    /// A line of container output (`--execute` follows logs).
    LogLine { service: String, line: String },
    /// Teardown removed what the run created, and the project's images this run superseded.
    TornDown {
        containers: usize,
        networks: usize,
        volumes: usize,
        images: usize,
    },
}

type Callback = dyn Fn(&Event) + Send + Sync;

/// A run's clock: its start on the wall (RFC 3339, for people and reports) and a monotonic
/// clock every event is timed on (seconds since the start).
#[derive(Debug, Clone)]
pub struct Clock {
    start: std::time::Instant,
    pub started: String,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            start: std::time::Instant::now(),
            started: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        }
    }

    /// Seconds since the run started.
    pub fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Every event of a run with its time, for the report's timeline.
#[derive(Clone, Default)]
pub struct Record(Arc<std::sync::Mutex<Vec<(f64, Event)>>>);

impl Record {
    /// The events so far, oldest first, each with its time.
    pub fn events(&self) -> Vec<(f64, Event)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Where events go. Cheap to clone; the default drops every event.
#[derive(Clone, Default)]
pub struct Events(Option<Arc<Callback>>);

impl Events {
    /// Send events to `f`.
    pub fn new(f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Events(Some(Arc::new(f)))
    }

    /// Drop every event.
    pub fn none() -> Self {
        Events(None)
    }

    /// These events, each also kept in `record` with its time on `clock`.
    pub fn recorded(self, clock: Clock, record: Record) -> Events {
        Events::new(move |e| {
            record
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((clock.t(), e.clone()));
            if let Some(f) = &self.0 {
                f(e);
            }
        })
    }

    pub fn emit(&self, event: Event) {
        if let Some(f) = &self.0 {
            f(&event);
        }
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.emit(Event::Warning {
            message: message.into(),
        });
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Events(subscribed)"
        } else {
            "Events(none)"
        })
    }
}
