//! A system's history: `.masgen/rounds/NNN/` folders (one per repair round or
//! iteration, numbered on from what is on disk) and the diff of what a round changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Unified diff of what a round changed.
pub fn unified_diff(before: &BTreeMap<String, Option<String>>, root: &Path) -> String {
    let mut out = String::new();
    for (path, old) in before {
        let new = std::fs::read_to_string(root.join(path)).ok();
        if *old == new {
            continue;
        }
        let (a, b) = (old.clone().unwrap_or_default(), new.unwrap_or_default());
        let diff = similar::TextDiff::from_lines(&a, &b);
        let (ha, hb) = (
            if old.is_some() {
                format!("a/{path}")
            } else {
                "/dev/null".into()
            },
            format!("b/{path}"),
        );
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&ha, &hb)
                .to_string(),
        );
    }
    out
}

/// One round's folder: `.masgen/rounds/NNN/`.
pub fn round_dir(root: &Path, round: u32) -> PathBuf {
    root.join(super::MASGEN_DIR)
        .join("rounds")
        .join(format!("{round:03}"))
}

/// The number after the highest `.masgen/rounds/NNN*` already on disk, so a later run
/// (a repair, an iteration) never overwrites an earlier run's history.
pub fn next_round_number(root: &Path) -> u32 {
    let dir = root.join(super::MASGEN_DIR).join("rounds");
    let highest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .get(..3)
                .and_then(|n| n.parse::<u32>().ok())
        })
        .max()
        .unwrap_or(0);
    highest + 1
}
