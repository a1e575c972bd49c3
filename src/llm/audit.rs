//! `--download-responses`: every raw reply saved as a file, for audit.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Completion, Usage};

/// Where raw replies go, when the user asked for them.
#[derive(Debug, Clone, Default)]
pub struct ResponseLog {
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Record<'a> {
    label: &'a str,
    provider: &'a str,
    model: &'a str,
    stop_reason: &'a str,
    usage: Usage,
    text: &'a str,
}

impl ResponseLog {
    pub fn disabled() -> Self {
        ResponseLog { dir: None }
    }

    /// Save into `<output>/claude-responses/`.
    pub fn in_output(output: &Path) -> Self {
        ResponseLog {
            dir: Some(output.join("claude-responses")),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Save one reply as `file_name` (e.g. `manifest.json`). The record holds provider, model,
    /// stop reason, usage and text; never a header or a key.
    pub fn save(&self, file_name: &str, label: &str, c: &Completion) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        std::fs::create_dir_all(dir)?;
        let record = Record {
            label,
            provider: &c.provider,
            model: &c.model,
            stop_reason: c.stop_reason.as_str(),
            usage: c.usage,
            text: &c.text,
        };
        let body = if file_name.ends_with(".txt") {
            format!(
                "label: {label}\nprovider: {}\nmodel: {}\nstop_reason: {}\nusage: input={} output={} cache_read={} cache_write={}\n\n{}",
                c.provider,
                c.model,
                c.stop_reason.as_str(),
                c.usage.input,
                c.usage.output,
                c.usage.cache_read,
                c.usage.cache_write,
                c.text
            )
        } else {
            serde_json::to_string_pretty(&record).unwrap_or_default()
        };
        crate::atomic::write_atomic(&dir.join(file_name), body.as_bytes())
    }
}

/// A path made safe as one file name: `agent1/app.py` -> `agent1_app.py`.
pub fn sanitize(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
