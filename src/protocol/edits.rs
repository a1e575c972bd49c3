//! Apply SEARCH/REPLACE hunks: exact match first, then a match that ignores differences
//! in leading and trailing whitespace. All hunks of an edit apply, or none does.

use super::blocks::Hunk;

/// A hunk that did not apply, with the lines of the file closest to what it searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("hunk {index} of the edit to {path} did not apply: its SEARCH text is not in the file")]
pub struct EditFailure {
    pub path: String,
    /// 1-based hunk number.
    pub index: usize,
    pub search: String,
    /// The lines of the current file most like the SEARCH text (empty if none look alike).
    pub nearest: String,
}

/// Apply `hunks` to `original`. An empty SEARCH appends its REPLACE to the file (which is
/// how an edit creates a new file).
pub fn apply_hunks(path: &str, original: &str, hunks: &[Hunk]) -> Result<String, EditFailure> {
    let mut text = original.to_string();
    for (n, hunk) in hunks.iter().enumerate() {
        text = apply_one(&text, hunk).ok_or_else(|| EditFailure {
            path: path.to_string(),
            index: n + 1,
            search: hunk.search.clone(),
            nearest: nearest_lines(&text, &hunk.search),
        })?;
    }
    Ok(text)
}

fn apply_one(text: &str, hunk: &Hunk) -> Option<String> {
    if hunk.search.trim().is_empty() {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&hunk.replace);
        return Some(out);
    }
    // Exact: the SEARCH text, starting at a line start and ending at a line end.
    let search = &hunk.search;
    let exact = text
        .match_indices(search.as_str())
        .map(|(at, _)| at)
        .find(|&at| {
            let end = at + search.len();
            (at == 0 || text.as_bytes()[at - 1] == b'\n')
                && (search.ends_with('\n') || end == text.len() || text.as_bytes()[end] == b'\n')
        });
    if let Some(at) = exact {
        let replace = if search.ends_with('\n') {
            hunk.replace.as_str()
        } else {
            hunk.replace.strip_suffix('\n').unwrap_or(&hunk.replace)
        };
        return Some(format!(
            "{}{}{}",
            &text[..at],
            replace,
            &text[at + search.len()..]
        ));
    }
    // The model often drops a final newline from SEARCH, or gets indentation wrong.
    let search_lines: Vec<&str> = hunk.search.lines().collect();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if search_lines.is_empty() || search_lines.len() > lines.len() {
        return None;
    }
    let start = (0..=lines.len() - search_lines.len()).find(|&i| {
        search_lines
            .iter()
            .zip(&lines[i..])
            .all(|(s, l)| s.trim() == l.trim())
    })?;
    let mut out: String = lines[..start].concat();
    out.push_str(&hunk.replace);
    if !hunk.replace.is_empty() && !hunk.replace.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&lines[start + search_lines.len()..].concat());
    Some(out)
}

/// The window of `text` most like `search`, by the share of words the lines have in common.
fn nearest_lines(text: &str, search: &str) -> String {
    let want: Vec<&str> = search.lines().filter(|l| !l.trim().is_empty()).collect();
    let lines: Vec<&str> = text.lines().collect();
    if want.is_empty() || lines.is_empty() {
        return String::new();
    }
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let first = words(want[0]);
    let score = |line: &str| -> usize {
        let w = words(line);
        first.iter().filter(|x| w.contains(x)).count()
    };
    let (best, best_score) = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, score(l)))
        .max_by_key(|(i, s)| (*s, usize::MAX - i))
        .unwrap_or((0, 0));
    if best_score == 0 {
        return String::new();
    }
    let end = (best + want.len() + 2).min(lines.len());
    let start = best.saturating_sub(1);
    lines[start..end].iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str, r: &str) -> Hunk {
        Hunk {
            search: s.into(),
            replace: r.into(),
        }
    }

    #[test]
    fn exact_then_whitespace_tolerant() {
        let f = "import os\n    host = 'rabbit'\nprint(host)\n";
        assert_eq!(
            apply_hunks("a", f, &[h("import os\n", "import sys\n")]).unwrap(),
            "import sys\n    host = 'rabbit'\nprint(host)\n"
        );
        let fixed =
            apply_hunks("a", f, &[h("host = 'rabbit'", "    host = 'rabbitmq'\n")]).unwrap();
        assert_eq!(fixed, "import os\n    host = 'rabbitmq'\nprint(host)\n");
    }

    #[test]
    fn a_failed_hunk_changes_nothing_and_names_the_nearest_lines() {
        let f = "a = 1\nhost = 'rabbit'\nb = 2\n";
        let err = apply_hunks(
            "x.py",
            f,
            &[
                h("a = 1\n", "a = 9\n"),
                h("host = 'broker'\nport = 5\n", ""),
            ],
        )
        .unwrap_err();
        assert_eq!(err.index, 2);
        assert!(err.nearest.contains("host = 'rabbit'"), "{}", err.nearest);
    }

    #[test]
    fn empty_search_appends() {
        assert_eq!(apply_hunks("n", "", &[h("", "new\n")]).unwrap(), "new\n");
        assert_eq!(apply_hunks("n", "a", &[h("", "b\n")]).unwrap(), "a\nb\n");
    }
}
