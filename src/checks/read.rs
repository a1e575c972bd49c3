//! What the model reads of a project it is to write checks for: the compose project as
//! masgen reads it (`masgen config`'s text), the README, each service's Dockerfile, and
//! the code files its entrypoint names, within [`PROJECT_BUDGET`] characters; when they
//! are more, the largest parts are cut to their beginning and end, with a line saying so.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compose::load::{load_with, LoadOptions};
use crate::compose::{ComposeError, Project};
use crate::plan::dockerfile::instructions;

/// Characters of the project the model reads at most (the compose text, README,
/// Dockerfiles and entrypoint code; the file tree comes on top, at most
/// [`TREE_LINES`] lines).
pub const PROJECT_BUDGET: usize = 100_000;
/// Files of the project named in the tree at most.
pub const TREE_LINES: usize = 400;
/// A part cut to fit keeps at least this many characters.
const MIN_PART: usize = 2_000;

/// One part of what the model read.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// What it is: `compose (as masgen reads it)`, `README.md`, `api/Dockerfile`...
    pub name: String,
    /// Its characters, and how many the model was shown (fewer when it was cut).
    pub chars: usize,
    pub shown: usize,
    #[serde(skip)]
    text: String,
}

/// The project as the model reads it.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub parts: Vec<Part>,
    pub tree: Vec<String>,
    /// The project's services (the checks may not redefine them).
    pub services: Vec<String>,
}

impl ProjectView {
    /// The text sent to the model.
    pub fn text(&self) -> String {
        let mut s = String::from("The project's files:\n");
        for p in self.tree.iter().take(TREE_LINES) {
            s.push_str(&format!("- {p}\n"));
        }
        if self.tree.len() > TREE_LINES {
            s.push_str(&format!(
                "- ... and {} more\n",
                self.tree.len() - TREE_LINES
            ));
        }
        for p in &self.parts {
            let newline = if p.text.ends_with('\n') { "" } else { "\n" };
            s.push_str(&format!(
                "\n<project-file name=\"{}\">\n{}{newline}</project-file>\n",
                p.name, p.text
            ));
        }
        s
    }
}

/// Read the project in `dir` (without any checks file) for the model.
pub fn read_project(dir: &Path, load: &LoadOptions) -> Result<ProjectView, ComposeError> {
    let load = LoadOptions {
        smoke_file: false,
        ..load.clone()
    };
    let project = load_with(dir, &load)?;
    let config = crate::compose::normal::to_yaml(&crate::compose::normal::project(&project));
    let mut parts = vec![part("compose (as masgen reads it)", config)];
    let root = &project.root;
    for name in readmes(root) {
        if let Some(text) = text_of(&root.join(&name)) {
            parts.push(part(&name, text));
        }
    }
    for (service, svc) in &project.compose.services {
        let Some(build) = &svc.build else { continue };
        let context = root.join(build.context());
        let Some(dockerfile) = build.dockerfile_text(root) else {
            continue;
        };
        let label = match build.dockerfile_inline() {
            Some(_) => format!("{service}: dockerfile_inline"),
            None => project.rel(&context.join(build.dockerfile())),
        };
        let mut words: Vec<String> = entry_words(&dockerfile);
        for list in [&svc.entrypoint, &svc.command].into_iter().flatten() {
            words.extend(list.argv());
        }
        parts.push(part(&label, dockerfile));
        for file in code_files(&context, &words) {
            let name = project.rel(&file);
            if parts.iter().all(|p| p.name != name) {
                if let Some(text) = text_of(&file) {
                    parts.push(part(&name, text));
                }
            }
        }
    }
    fit(&mut parts, PROJECT_BUDGET);
    Ok(ProjectView {
        parts,
        tree: crate::workspace::list_files(root),
        services: services_of(&project),
    })
}

/// Every service of the project, whatever its profile.
fn services_of(project: &Project) -> Vec<String> {
    project.compose.services.keys().cloned().collect()
}

fn part(name: &str, text: String) -> Part {
    Part {
        name: name.to_string(),
        chars: text.chars().count(),
        shown: text.chars().count(),
        text,
    }
}

/// A text file's content (None for a binary or unreadable one).
fn text_of(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    (!bytes.contains(&0)).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// The README files at the project's root.
fn readmes(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().starts_with("readme"))
        .collect();
    names.sort();
    names
}

/// The words of a Dockerfile's last ENTRYPOINT and CMD (exec or shell form).
fn entry_words(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["ENTRYPOINT", "CMD"] {
        let Some(last) = instructions(dockerfile)
            .into_iter()
            .rfind(|i| i.keyword == keyword)
        else {
            continue;
        };
        match serde_json::from_str::<Vec<String>>(last.body.trim()) {
            Ok(argv) => out.extend(argv),
            Err(_) => out.extend(last.body.split_whitespace().map(str::to_string)),
        }
    }
    out
}

/// Source files an argv names, found in the build context: a word that is a path in it
/// (an absolute one taken relative to any folder of the context), `-m package.module`,
/// or a file name with a source extension anywhere in it.
fn code_files(context: &Path, words: &[String]) -> Vec<PathBuf> {
    const SOURCE: &[&str] = &[
        "py", "js", "mjs", "cjs", "ts", "go", "rb", "php", "sh", "pl", "lua", "java", "rs",
    ];
    let mut out: Vec<PathBuf> = Vec::new();
    let mut module = false;
    for w in words {
        let word = if module {
            format!("{}.py", w.replace('.', "/"))
        } else {
            w.clone()
        };
        module = w == "-m";
        let ext = Path::new(&word)
            .extension()
            .map(|e| e.to_string_lossy().to_string());
        if !ext.is_some_and(|e| SOURCE.contains(&e.as_str())) {
            continue;
        }
        if let Some(found) = find_in(context, &word) {
            if !out.contains(&found) {
                out.push(found);
            }
        }
    }
    out
}

/// `word` as a file of `context`: as a path relative to it, else the shortest path in it
/// that ends with the word's trailing components (`/app/src/main.py` finds `src/main.py`).
fn find_in(context: &Path, word: &str) -> Option<PathBuf> {
    let rel = word.trim_start_matches('/');
    let direct = context.join(rel);
    if direct.is_file() && direct.starts_with(context) {
        return Some(direct);
    }
    let wanted: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut best: Option<PathBuf> = None;
    for entry in walkdir::WalkDir::new(context)
        .max_depth(6)
        .into_iter()
        .filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            e.depth() == 0 || !(n.starts_with('.') || n == "node_modules" || n == "target")
        })
        .flatten()
    {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(context) else {
            continue;
        };
        let comps: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let matched = wanted
            .iter()
            .rev()
            .zip(comps.iter().rev())
            .take_while(|(a, b)| **a == b.as_str())
            .count();
        // The file name at least, and as many trailing folders as the path has.
        if matched >= 1 && matched == comps.len().min(wanted.len()) {
            let shorter = best
                .as_ref()
                .is_none_or(|b| entry.path().components().count() < b.components().count());
            if shorter {
                best = Some(entry.path().to_path_buf());
            }
        }
    }
    best
}

/// Cut the largest parts until all of them fit in `budget` characters: each cut keeps its
/// beginning (two thirds) and end (one third) and says how many lines it left out.
fn fit(parts: &mut [Part], budget: usize) {
    // A part a cut cannot shorten (a few long lines) is left as it is.
    let mut done = vec![false; parts.len()];
    loop {
        let total: usize = parts.iter().map(|p| p.shown).sum();
        if total <= budget {
            return;
        }
        let Some(i) = (0..parts.len())
            .filter(|&i| !done[i] && parts[i].shown > MIN_PART)
            .max_by_key(|&i| parts[i].shown)
        else {
            return;
        };
        let before = parts[i].shown;
        // Room for the line that says what was cut.
        let keep = before.saturating_sub(total - budget + 200).max(MIN_PART);
        cut(&mut parts[i], keep);
        done[i] = parts[i].shown >= before || parts[i].shown <= MIN_PART + 200;
    }
}

/// Keep about `keep` characters of a part: whole lines from its beginning and its end.
fn cut(part: &mut Part, keep: usize) {
    let lines: Vec<&str> = part.text.split_inclusive('\n').collect();
    let (mut head, mut tail) = (String::new(), Vec::new());
    let mut used = 0;
    let (mut i, mut j) = (0, lines.len());
    while i < j && used + lines[i].chars().count() <= keep * 2 / 3 {
        used += lines[i].chars().count();
        head.push_str(lines[i]);
        i += 1;
    }
    while j > i && used + lines[j - 1].chars().count() <= keep {
        used += lines[j - 1].chars().count();
        tail.push(lines[j - 1]);
        j -= 1;
    }
    if j == i {
        return;
    }
    tail.reverse();
    let note = format!(
        "[... {} lines of {} left out by masgen to keep within its reading budget ...]\n",
        j - i,
        part.name
    );
    part.text = format!("{head}{note}{}", tail.concat());
    part.shown = part.text.chars().count();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_parts_are_cut_first_and_say_so() {
        let big: String = (0..4000).map(|i| format!("line {i}\n")).collect();
        let mut parts = vec![
            part("compose", "services:\n  api: {}\n".into()),
            part("big.py", big.clone()),
            part("small.py", "print(1)\n".into()),
        ];
        fit(&mut parts, 10_000);
        let total: usize = parts.iter().map(|p| p.shown).sum();
        assert!(total <= 10_000, "{total}");
        assert_eq!(parts[0].shown, parts[0].chars, "small parts stay whole");
        assert_eq!(parts[2].text, "print(1)\n");
        let cut = &parts[1];
        assert!(cut.text.starts_with("line 0\n") && cut.text.ends_with("line 3999\n"));
        assert!(
            cut.text.contains("lines of big.py left out by masgen"),
            "{}",
            &cut.text[..200]
        );
        assert_eq!(cut.chars, big.len());
        // Long lines, and parts that cannot shrink, end the loop too.
        let mut parts = vec![
            part("one-line.min.js", "x".repeat(50_000)),
            part("lines", "y\n".repeat(30_000)),
        ];
        fit(&mut parts, 5_000);
        let total: usize = parts.iter().map(|p| p.shown).sum();
        assert!(total <= 5_000, "{total}");
    }

    #[test]
    fn entrypoint_words_find_the_code_they_run() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/app")).unwrap();
        std::fs::write(d.path().join("src/app/main.py"), "x").unwrap();
        std::fs::write(d.path().join("worker.js"), "y").unwrap();
        std::fs::write(d.path().join("src/app/jobs.py"), "z").unwrap();
        let words = entry_words(
            "FROM python:3.11-slim\nENTRYPOINT [\"python3\", \"/app/src/app/main.py\"]\nCMD node worker.js\n",
        );
        assert_eq!(
            words,
            ["python3", "/app/src/app/main.py", "node", "worker.js"]
        );
        let mut argv = words.clone();
        argv.extend(["-m".to_string(), "app.jobs".to_string()]);
        let found = code_files(d.path(), &argv);
        let rel: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(rel, ["src/app/main.py", "worker.js", "src/app/jobs.py"]);
    }
}
