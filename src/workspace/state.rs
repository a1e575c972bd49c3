//! `.masgen/state.json`: the spec, the model, and a hash of every file masgen wrote.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{write_atomic, WorkspaceError, MASGEN_DIR};

pub const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub spec: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub updated: String,
    /// Change requests applied with --iterate, oldest first.
    #[serde(default)]
    pub iterations: Vec<String>,
    /// Path -> blake3 hex of the content masgen last wrote.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Requirements of the spec the model said it could not meet as asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<crate::protocol::Unmet>,
}

pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

impl State {
    pub fn load(root: &Path) -> Result<Option<State>, WorkspaceError> {
        let path = root.join(MASGEN_DIR).join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| WorkspaceError::BadState {
                        path,
                        why: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WorkspaceError::Io { path, source }),
        }
    }

    pub fn save(&mut self, root: &Path) -> Result<(), WorkspaceError> {
        if self.created.is_empty() {
            self.created = now();
        }
        let path = root.join(MASGEN_DIR).join(STATE_FILE);
        let body = serde_json::to_string_pretty(self).unwrap_or_default();
        write_atomic(&path, body.as_bytes()).map_err(|source| WorkspaceError::Io { path, source })
    }
}
