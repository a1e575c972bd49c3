//! Model text <-> file changes: `<file>`, `<edit>`, `<delete>` blocks, SEARCH/REPLACE
//! edits, staged-generation manifests, and the path rules every change must pass.

pub mod blocks;
pub mod edits;
pub mod manifest;
pub mod paths;
pub mod unmet;

pub use blocks::{parse_reply, Change, Hunk, ParsedReply, Rejected};
pub use edits::{apply_hunks, EditFailure};
pub use manifest::{parse_contract, parse_manifest, ManifestEntry};
pub use paths::{check_path, PathRejection, SafePath};
pub use unmet::{parse_unmet, Unmet, UnmetKind};
