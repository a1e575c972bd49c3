//! Parse a model reply into file changes.
//!
//! Tolerant where models slip (CRLF, a code fence around a block's content, `</file>` on
//! the last content line, a missing final newline) and strict where it matters: every path
//! passes [`check_path`], and a block that never closes is reported as cut, not written.

use serde::Serialize;

use super::paths::{check_path, SafePath};

/// One SEARCH/REPLACE pair of an `<edit>` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    pub search: String,
    pub replace: String,
}

/// A change the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    File { path: SafePath, content: String },
    Edit { path: SafePath, hunks: Vec<Hunk> },
    Delete { path: SafePath },
}

impl Change {
    pub fn path(&self) -> &SafePath {
        match self {
            Change::File { path, .. } | Change::Edit { path, .. } | Change::Delete { path } => path,
        }
    }
}

/// A block whose path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

/// Everything found in one reply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParsedReply {
    /// Changes in reply order; for the same path, a later whole-file or delete block
    /// replaces an earlier one.
    pub changes: Vec<Change>,
    /// Blocks refused for their path; never written.
    pub rejected: Vec<Rejected>,
    /// Paths of `<file>` blocks that were opened but never closed (the reply was cut).
    pub incomplete: Vec<String>,
    /// Duplicates and malformed blocks.
    pub warnings: Vec<String>,
    /// Text outside blocks.
    pub commentary: String,
}

impl ParsedReply {
    pub fn files(&self) -> impl Iterator<Item = (&SafePath, &str)> {
        self.changes.iter().filter_map(|c| match c {
            Change::File { path, content } => Some((path, content.as_str())),
            _ => None,
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tag {
    File,
    Edit,
    Delete,
}

/// Parse an opening tag on its own line: `<file path="x">`, `<edit path='x'>`,
/// `<delete path="x"/>`. Returns the tag, the raw path, whether it closed itself, and
/// any text after the `>` on the same line.
fn opening_tag(line: &str) -> Option<(Tag, String, bool, &str)> {
    let t = line.trim_start();
    let (tag, rest) = if let Some(r) = t.strip_prefix("<file") {
        (Tag::File, r)
    } else if let Some(r) = t.strip_prefix("<edit") {
        (Tag::Edit, r)
    } else if let Some(r) = t.strip_prefix("<delete") {
        (Tag::Delete, r)
    } else {
        return None;
    };
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let end = rest.find('>')?;
    let attrs = &rest[..end];
    let after = &rest[end + 1..];
    let self_closing = attrs.trim_end().ends_with('/');
    let path = attr(attrs, "path")?;
    Some((tag, path, self_closing, after))
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    let mut s = attrs;
    while let Some(i) = s.find(name) {
        let before_ok = i == 0 || s[..i].ends_with(char::is_whitespace);
        let rest = s[i + name.len()..].trim_start();
        if before_ok {
            if let Some(rest) = rest.strip_prefix('=') {
                let rest = rest.trim_start();
                let quote = rest.chars().next()?;
                if quote == '"' || quote == '\'' {
                    let body = &rest[1..];
                    let close = body.find(quote)?;
                    return Some(body[..close].to_string());
                }
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '/')
                    .unwrap_or(rest.len());
                return Some(rest[..end].to_string());
            }
        }
        s = &s[i + name.len()..];
    }
    None
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```")
}

/// Remove a code fence a model wrapped around a block's content.
fn strip_fences(lines: &mut Vec<&str>) {
    if lines.first().is_some_and(|l| is_fence(l)) {
        lines.remove(0);
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        if lines.last().is_some_and(|l| l.trim() == "```") {
            lines.pop();
        }
    }
}

/// Parse a reply.
pub fn parse_reply(reply: &str) -> ParsedReply {
    let text = reply.replace("\r\n", "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = ParsedReply::default();
    let mut commentary: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let Some((tag, raw_path, self_closing, after)) = opening_tag(line) else {
            commentary.push(line);
            i += 1;
            continue;
        };
        i += 1;
        let (body, closed) = block_body(&lines, &mut i, tag, self_closing, after);
        let path = match check_path(&raw_path) {
            Ok(p) => p,
            Err(reason) => {
                out.rejected.push(Rejected {
                    path: raw_path,
                    reason: reason.to_string(),
                });
                continue;
            }
        };
        if !closed {
            match tag {
                Tag::File => out.incomplete.push(path.as_str().to_string()),
                _ => out.warnings.push(format!(
                    "the <edit> block for {path} never closes; it was ignored"
                )),
            }
            continue;
        }
        if let Some(change) = to_change(tag, path, body, &mut out.warnings) {
            push_change(&mut out, change);
        }
    }
    out.commentary = commentary.join("\n").trim().to_string();
    out
}

/// The body of a block opened on the line before `lines[*i]` (moving `i` past it), and
/// whether it closed. A `<delete>` with no closing tag is self-closing.
fn block_body<'t>(
    lines: &[&'t str],
    i: &mut usize,
    tag: Tag,
    self_closing: bool,
    after: &'t str,
) -> (Vec<&'t str>, bool) {
    let closing = match tag {
        Tag::File => "</file>",
        Tag::Edit => "</edit>",
        Tag::Delete => "</delete>",
    };
    let mut body: Vec<&str> = Vec::new();
    if self_closing {
        return (body, true);
    }
    let after_trim = after.trim_end();
    if let Some(inline) = after_trim.strip_suffix(closing) {
        // <file path="x">content</file> on one line
        if !inline.is_empty() {
            body.push(inline);
        }
        return (body, true);
    } else if !after_trim.is_empty() {
        body.push(after);
    }
    while *i < lines.len() {
        let l = lines[*i];
        *i += 1;
        if l.trim() == closing {
            return (body, true);
        } else if let Some(prefix) = l.trim_end().strip_suffix(closing) {
            body.push(prefix);
            return (body, true);
        } else if tag == Tag::Delete {
            *i -= 1;
            return (body, true);
        }
        body.push(l);
    }
    (body, false)
}

/// A closed block as a change; a malformed edit is a warning instead.
fn to_change(
    tag: Tag,
    path: SafePath,
    mut body: Vec<&str>,
    warnings: &mut Vec<String>,
) -> Option<Change> {
    Some(match tag {
        Tag::Delete => Change::Delete { path },
        Tag::File => {
            strip_fences(&mut body);
            let mut content = body.join("\n");
            if !content.is_empty() {
                content.push('\n');
            }
            Change::File { path, content }
        }
        Tag::Edit => match parse_hunks(&body) {
            Ok(hunks) => Change::Edit { path, hunks },
            Err(why) => {
                warnings.push(format!(
                    "the <edit> block for {path} is malformed ({why}); it was ignored"
                ));
                return None;
            }
        },
    })
}

fn push_change(out: &mut ParsedReply, change: Change) {
    if matches!(change, Change::File { .. } | Change::Delete { .. }) {
        let before = out.changes.len();
        out.changes.retain(|c| c.path() != change.path());
        if out.changes.len() != before {
            out.warnings.push(format!(
                "{} appears more than once in the reply; the last block wins",
                change.path()
            ));
        }
    }
    out.changes.push(change);
}

fn marker(line: &str, ch: char, word: &str) -> bool {
    let t = line.trim();
    let n = t.chars().take_while(|c| *c == ch).count();
    (5..=9).contains(&n) && t[n..].trim() == word
}

fn parse_hunks(body: &[&str]) -> Result<Vec<Hunk>, String> {
    enum State {
        Outside,
        Search,
        Replace,
    }
    let mut hunks = Vec::new();
    let mut state = State::Outside;
    let (mut search, mut replace): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for line in body {
        match state {
            State::Outside => {
                if marker(line, '<', "SEARCH") {
                    state = State::Search;
                } else if !(line.trim().is_empty() || is_fence(line)) {
                    return Err(format!(
                        "text outside a SEARCH/REPLACE pair: {:?}",
                        line.trim()
                    ));
                }
            }
            State::Search => {
                if marker(line, '=', "") {
                    state = State::Replace;
                } else {
                    search.push(line);
                }
            }
            State::Replace => {
                if marker(line, '>', "REPLACE") {
                    let join = |v: &[&str]| {
                        if v.is_empty() {
                            String::new()
                        } else {
                            format!("{}\n", v.join("\n"))
                        }
                    };
                    hunks.push(Hunk {
                        search: join(&search),
                        replace: join(&replace),
                    });
                    search.clear();
                    replace.clear();
                    state = State::Outside;
                } else {
                    replace.push(line);
                }
            }
        }
    }
    match state {
        State::Outside if hunks.is_empty() => Err("no SEARCH/REPLACE pair".into()),
        State::Outside => Ok(hunks),
        _ => Err("a SEARCH/REPLACE pair is not closed with >>>>>>> REPLACE".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(reply: &ParsedReply, path: &str) -> Option<String> {
        reply
            .files()
            .find(|(p, _)| p.as_str() == path)
            .map(|(_, c)| c.to_string())
    }

    #[test]
    fn files_edits_deletes_and_commentary() {
        let reply = "Here is the system.\n<file path=\"a/Dockerfile\">\nFROM busybox:latest\nCMD [\"sh\"]\n</file>\n\
            <edit path=\"b.py\">\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n</edit>\n<delete path=\"c.txt\"/>\nDone.";
        let r = parse_reply(reply);
        assert_eq!(
            file(&r, "a/Dockerfile").unwrap(),
            "FROM busybox:latest\nCMD [\"sh\"]\n"
        );
        assert_eq!(
            r.changes[1],
            Change::Edit {
                path: check_path("b.py").unwrap(),
                hunks: vec![Hunk {
                    search: "old\n".into(),
                    replace: "new\n".into()
                }]
            }
        );
        assert_eq!(
            r.changes[2],
            Change::Delete {
                path: check_path("c.txt").unwrap()
            }
        );
        assert_eq!(r.commentary, "Here is the system.\nDone.");
        assert!(r.rejected.is_empty() && r.incomplete.is_empty() && r.warnings.is_empty());
    }

    #[test]
    fn crlf_fences_and_missing_final_newline_are_tolerated() {
        let reply = "<file path='x.py'>\r\n```python\r\nprint(1)\r\n```\r\n</file>";
        assert_eq!(file(&parse_reply(reply), "x.py").unwrap(), "print(1)\n");
        let inline_close = "<file path=\"y.txt\">\nhello</file>";
        assert_eq!(
            file(&parse_reply(inline_close), "y.txt").unwrap(),
            "hello\n"
        );
    }

    #[test]
    fn unsafe_paths_are_rejected_not_written() {
        let reply = "<file path=\"../x\">\na\n</file>\n<file path=\"/etc/x\">\nb\n</file>\n<file path=\".masgen/x\">\nc\n</file>\n<file path=\"ok.txt\">\nd\n</file>";
        let r = parse_reply(reply);
        assert_eq!(r.rejected.len(), 3);
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.changes[0].path().as_str(), "ok.txt");
    }

    #[test]
    fn a_cut_block_is_incomplete_and_the_last_duplicate_wins() {
        let r = parse_reply("<file path=\"a\">\n1\n</file>\n<file path=\"a\">\n2\n</file>\n<file path=\"b\">\npartial");
        assert_eq!(file(&r, "a").unwrap(), "2\n");
        assert_eq!(r.changes.len(), 1);
        assert_eq!(r.incomplete, vec!["b".to_string()]);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn file_content_may_contain_markers_and_tags_of_other_kinds() {
        let reply =
            "<file path=\"README.md\">\n# Run\n<edit path=\"x\"> is how masgen edits\n</file>";
        let r = parse_reply(reply);
        assert_eq!(
            file(&r, "README.md").unwrap(),
            "# Run\n<edit path=\"x\"> is how masgen edits\n"
        );
    }

    #[test]
    fn malformed_edit_is_a_warning() {
        let r = parse_reply("<edit path=\"a\">\n<<<<<<< SEARCH\nx\n</edit>");
        assert!(r.changes.is_empty());
        assert_eq!(r.warnings.len(), 1);
    }
}
