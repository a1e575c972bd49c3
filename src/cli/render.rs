//! Event renderers: human progress on stderr (indicatif), or JSON lines on stdout.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::events::{Event, Events};
use crate::verdict::{PointVerdict, Verdict};

/// Whether to colour, decided once.
pub fn use_color(choice: super::args::ColorChoice) -> bool {
    match choice {
        super::args::ColorChoice::Always => true,
        super::args::ColorChoice::Never => false,
        super::args::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    }
}

/// Paint `text` when colour is on.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Events as JSON lines on stdout.
pub fn json_events(clock: crate::events::Clock) -> Events {
    let first = std::sync::atomic::AtomicBool::new(true);
    let lock = Mutex::new(());
    Events::new(move |e| {
        let _g = lock.lock();
        let Ok(serde_json::Value::Object(mut v)) = serde_json::to_value(e) else {
            return;
        };
        // Every event carries its time since the run started; the first, the start itself.
        v.insert(
            "t".into(),
            serde_json::json!((clock.t() * 1000.0).round() / 1000.0),
        );
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            v.insert("started".into(), serde_json::json!(clock.started));
        }
        if let Ok(line) = serde_json::to_string(&v) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    })
}

/// Human progress on stderr: a spinner with the current phase, and one line per event
/// worth keeping.
pub fn human_events(color: bool) -> (Events, ProgressBar) {
    let multi = MultiProgress::new();
    let bar = if std::io::stderr().is_terminal() {
        multi.add(ProgressBar::new_spinner())
    } else {
        ProgressBar::hidden()
    };
    let pulls = PullBars {
        multi,
        bars: Mutex::new(std::collections::HashMap::new()),
        shown: !bar.is_hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let pb = bar.clone();
    let events = Events::new(move |e| {
        status(e, &pb, &pulls);
        let Some(s) = line_for(e, color) else { return };
        if pb.is_hidden() {
            // A closed stderr (`masgen ... 2>&1 | head`) must not end the run before its
            // teardown: the line is dropped instead.
            let _ = writeln!(std::io::stderr(), "{s}");
        } else {
            pb.println(s);
        }
    });
    (events, bar)
}

/// What an event changes on the spinner and the pull bars.
fn status(e: &Event, pb: &ProgressBar, pulls: &PullBars) {
    match e {
        Event::Phase { name } => pb.set_prefix(name.clone()),
        Event::RequestStarted { label } => pb.set_message(format!("asking the model: {label}")),
        Event::Streaming { label, chars } => {
            pb.set_message(format!("{label}: ~{} tokens streamed", chars / 4))
        }
        Event::BatchesPlanned { total } => pb.set_length(*total as u64),
        Event::PullStarted { image } => pulls.start(image),
        Event::PullProgress {
            image,
            layers_done,
            layers_total,
            bytes_done,
            bytes_total,
        } => pulls.progress(
            image,
            *layers_done,
            *layers_total,
            *bytes_done,
            *bytes_total,
        ),
        Event::PullFinished { image, .. } => pulls.finish(image),
        Event::BuildStarted { service } => pb.set_message(format!("building {service}")),
        Event::ContainerStarted { service, .. } => pb.set_message(format!("started {service}")),
        Event::SmokeStarted { service } => pb.set_message(format!("smoke check {service}")),
        _ => {}
    }
}

/// The line an event leaves on the screen, if any.
fn line_for(e: &Event, color: bool) -> Option<String> {
    talk_line(e, color).or_else(|| run_line(e, color))
}

/// Lines of the model's side of a run: phases, requests, warnings.
fn talk_line(e: &Event, color: bool) -> Option<String> {
    Some(match e {
        Event::Phase { name } => format!("{} {name}", paint(color, "1;34", "==>")),
        Event::RequestFinished {
            label,
            usage,
            stop_reason,
        } => format!(
            "    {label}: {} in / {} out tokens{}",
            usage.input + usage.cache_read + usage.cache_write,
            usage.output,
            if stop_reason == "end_turn" {
                String::new()
            } else {
                format!(" ({stop_reason})")
            }
        ),
        Event::Retry {
            label,
            attempt,
            max_attempts,
            delay_ms,
            reason,
        } => paint(
            color,
            "33",
            &format!(
                "    {label}: {reason}, retry {attempt}/{max_attempts} in {:.1}s",
                *delay_ms as f64 / 1000.0
            ),
        ),
        Event::Continuation { label, attempt } => {
            format!("    {label}: reply cut at max_tokens, continuing ({attempt})")
        }
        Event::BatchesPlanned { total } => format!("    {total} batches planned"),
        Event::BatchDone { group, done, total } => {
            format!("    batch {group} done ({done}/{total})")
        }
        Event::Info { message } => format!("    {message}"),
        Event::Warning { message } => paint(color, "33", &format!("warning: {message}")),
        Event::Rejected { path, reason } => paint(
            color,
            "33",
            &format!("warning: refused {path:?}: {reason}; not written"),
        ),
        _ => return None,
    })
}

/// Lines of the system's side: pulls, builds, services, teardown.
fn run_line(e: &Event, color: bool) -> Option<String> {
    Some(match e {
        Event::PullFinished {
            image,
            secs,
            bytes,
            ok: true,
        } => format!("    pull {image}: {} in {secs:.1}s", megabytes(*bytes)),
        Event::PullFinished { image, secs, .. } => paint(
            color,
            "31",
            &format!("    pull {image}: failed after {secs:.1}s"),
        ),
        Event::BuildFinished {
            service,
            secs,
            cached,
            patched,
            ok,
        } => format!(
            "    build {service}: {}",
            match (ok, cached, patched) {
                (false, _, _) => paint(color, "31", "failed"),
                (true, true, _) => "unchanged, cached image".to_string(),
                (true, false, true) => format!(
                    "patched in {secs:.1}s (new COPY layer on the previous image, no builder run)"
                ),
                (true, false, false) => format!("built in {secs:.1}s"),
            }
        ),
        Event::ServiceReady { service, secs } => format!(
            "    {service}: {} after {secs:.1}s",
            paint(color, "32", "ready")
        ),
        Event::ServiceFailed {
            service,
            phase,
            summary,
        } => paint(
            color,
            "31",
            &format!("    {service}: {phase} failed: {summary}"),
        ),
        Event::Published {
            service,
            container_port,
            host,
        } => format!("    {service}: port {container_port} answers at {host}"),
        Event::LogLine { service, line } => format!("{} | {line}", paint(color, "36", service)),
        Event::CheckResult {
            service,
            check,
            verdict,
        } => {
            let (mark, code) = match verdict {
                PointVerdict::Passed => ("ok", "32"),
                PointVerdict::Failed => ("not ok", "31"),
                PointVerdict::Skipped => ("skip", "33"),
                PointVerdict::Todo => ("todo", "33"),
            };
            format!("    {service}: {} {check}", paint(color, code, mark))
        }
        Event::SmokeFinished {
            service,
            verdict,
            passed,
            failed,
            secs,
            summary,
        } => {
            let counts = format!("{passed} passed, {failed} failed in {secs:.1}s");
            match verdict {
                Verdict::Passed => format!(
                    "    {service}: {} ({counts})",
                    paint(color, "32", "smoke checks passed")
                ),
                _ => paint(
                    color,
                    "31",
                    &format!("    {service}: smoke check {verdict}: {summary} ({counts})"),
                ),
            }
        }
        Event::TornDown {
            containers,
            networks,
            volumes,
            images,
        } => {
            let old = if *images > 0 {
                format!(", {images} superseded image(s)")
            } else {
                String::new()
            };
            format!("    removed {containers} container(s), {networks} network(s), {volumes} volume(s){old}")
        }
        _ => return None,
    })
}

/// One bar per image being pulled, under the phase spinner (on a terminal only).
struct PullBars {
    multi: MultiProgress,
    bars: Mutex<std::collections::HashMap<String, ProgressBar>>,
    shown: bool,
}

impl PullBars {
    fn start(&self, image: &str) {
        if !self.shown {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("    pull {prefix} [{bar:24}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(image.to_string());
        bar.set_message("waiting for the registry");
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(image.to_string(), bar);
    }

    fn progress(&self, image: &str, layers: usize, of: usize, bytes: u64, total: u64) {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bar) = bars.get(image) {
            bar.set_length(total.max(1));
            bar.set_position(bytes);
            bar.set_message(format!(
                "{layers}/{of} layers, {} of {}",
                megabytes(bytes),
                megabytes(total)
            ));
        }
    }

    fn finish(&self, image: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(image);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}

fn megabytes(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{} kB", bytes.div_ceil(1000))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_leave_the_lines_the_readme_shows() {
        let pulled = Event::PullFinished {
            image: "postgres:16".into(),
            secs: 9.84,
            bytes: 152_300_000,
            ok: true,
        };
        assert_eq!(
            line_for(&pulled, false).unwrap(),
            "    pull postgres:16: 152.3 MB in 9.8s"
        );
        let small = Event::PullFinished {
            image: "a:1".into(),
            secs: 0.1,
            bytes: 512,
            ok: true,
        };
        assert_eq!(
            line_for(&small, false).unwrap(),
            "    pull a:1: 1 kB in 0.1s"
        );
        let torn = Event::TornDown {
            containers: 1,
            networks: 1,
            volumes: 0,
            images: 0,
        };
        assert_eq!(
            line_for(&torn, false).unwrap(),
            "    removed 1 container(s), 1 network(s), 0 volume(s)"
        );
        assert!(line_for(
            &Event::PullStarted {
                image: "a:1".into()
            },
            false
        )
        .is_none());
    }
}
