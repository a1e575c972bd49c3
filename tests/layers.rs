//! The layering rule (ARCHITECTURE.md), checked on the source: each layer imports only the
//! layers below it, docker/ sees nothing of compose/ (not even through plan/), and no two
//! layers import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each layer may import (the layers of src/, by their first path component).
const ALLOWED: &[(&str, &[&str])] = &[
    ("atomic", &[]),
    ("usage", &[]),
    ("verdict", &[]),
    ("html", &[]),
    ("diagnose", &[]),
    ("events", &["usage", "verdict", "diagnose"]),
    ("compose", &[]),
    ("protocol", &[]),
    ("llm", &["atomic", "events", "usage"]),
    ("spec", &[]),
    ("workspace", &["atomic", "protocol"]),
    ("plan", &["compose", "workspace"]),
    ("runtime", &["plan", "diagnose", "events"]),
    (
        "docker",
        &[
            "runtime",
            "plan",
            "workspace",
            "atomic",
            "diagnose",
            "events",
        ],
    ),
    (
        "verify",
        &[
            "plan",
            "runtime",
            "docker",
            "workspace",
            "protocol",
            "diagnose",
            "events",
            "verdict",
        ],
    ),
    (
        "generate",
        &["llm", "protocol", "workspace", "compose", "events", "usage"],
    ),
    (
        "repair",
        &[
            "generate",
            "verify",
            "llm",
            "workspace",
            "compose",
            "diagnose",
            "events",
        ],
    ),
    (
        "checks",
        &[
            "compose",
            "plan",
            "generate",
            "repair",
            "verify",
            "llm",
            "protocol",
            "workspace",
            "diagnose",
            "events",
            "verdict",
            "atomic",
        ],
    ),
    (
        "report",
        &[
            "events",
            "checks",
            "generate",
            "repair",
            "verify",
            "llm",
            "workspace",
            "diagnose",
            "verdict",
        ],
    ),
];

/// plan/'s names for Compose's own types: docker/ and runtime/ may not use them.
const COMPOSE_THROUGH_PLAN: &[&str] = &[
    "plan::LoadOptions",
    "plan::Condition",
    "plan::PullPolicy",
    "plan::load",
];

/// Every `.rs` file under `dir` but modules of tests, with its text up to its tests.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("tests.rs") {
            // A `tests.rs` is a module of tests, like the code after `#[cfg(test)]`.
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            out.push((p.display().to_string(), code));
        }
    }
}

/// The layer a file belongs to: the first component under src/.
fn layer_of(file: &str) -> String {
    let rel = file.split("/src/").nth(1).unwrap_or(file);
    rel.split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_string()
}

/// The layers `code` names as `crate::<layer>` (in paths and in `use crate::{a, b}`
/// groups), and, in a file at the top of src/, as `super::<layer>`.
fn imports(code: &str, top_level: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let words = |prefix: &str, out: &mut BTreeSet<String>| {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        }
    };
    words("crate::", &mut out);
    if top_level {
        words("super::", &mut out);
    }
    out
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let layers: BTreeSet<String> = files.iter().map(|(f, _)| layer_of(f)).collect();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    let mut wrong = Vec::new();
    for (file, code) in &files {
        let layer = layer_of(file);
        let top_level = !file.split("/src/").nth(1).unwrap_or("").contains('/');
        for to in imports(code, top_level) {
            if to == layer || !layers.contains(&to) {
                continue;
            }
            edges.insert((layer.clone(), to.clone()));
            if let Some(ok) = allowed.get(layer.as_str()) {
                if !ok.contains(&to.as_str()) {
                    wrong.push(format!("{file}: {layer} imports {to}"));
                }
            }
        }
        if matches!(layer.as_str(), "docker" | "runtime") {
            for name in COMPOSE_THROUGH_PLAN {
                if code.contains(name) {
                    wrong.push(format!("{file}: {layer} uses compose's {name}"));
                }
            }
        }
    }
    for (a, b) in &edges {
        if edges.contains(&(b.clone(), a.clone())) && a < b {
            wrong.push(format!("{a} and {b} import each other"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the layering rule is broken:\n{}",
        wrong.join("\n")
    );
    // The rule is about real layers: every one named above exists.
    for (layer, _) in ALLOWED {
        assert!(layers.contains(*layer), "no layer {layer} in src/");
    }
}
