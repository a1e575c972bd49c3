//! What masgen reads of a Dockerfile, as the builder reads it: its instructions (line
//! continuations joined, with the `escape` directive's character), the images its FROM
//! lines name, and the references it makes to named build contexts.
//!
//! A named context (`build.additional_contexts`) stands for any name in `FROM`,
//! `COPY --from=` or `RUN --mount=...,from=` that matches it, before a stage of that name
//! and before an image (BuildKit's order). masgen gives each context an image and
//! rewrites those references to name it: the Dockerfile then means what Compose makes it
//! mean, on any BuildKit, including one whose Dockerfile frontend has no named contexts.

/// One instruction: the lines it spans (0-based, inclusive), its keyword in upper case,
/// and what follows the keyword, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub first: usize,
    pub last: usize,
    pub keyword: String,
    pub body: String,
}

/// The `escape` parser directive's character (`\` unless the file sets it).
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") {
            return value.trim().chars().next().unwrap_or('\\');
        }
    }
    '\\'
}

/// The instructions of a Dockerfile, comments and blank lines left out.
pub fn instructions(text: &str) -> Vec<Instruction> {
    let escape = escape_char(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let first = i;
        let mut joined = String::new();
        let mut current = line.trim_end();
        loop {
            let Some(head) = current.strip_suffix(escape) else {
                joined.push_str(current);
                break;
            };
            joined.push_str(head);
            // Comment and blank lines inside an instruction are skipped, as the builder
            // skips them.
            i += 1;
            while i < lines.len() && {
                let t = lines[i].trim_start();
                t.is_empty() || t.starts_with('#')
            } {
                i += 1;
            }
            match lines.get(i) {
                Some(next) => current = next.trim_end(),
                None => break,
            }
        }
        let (keyword, body) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((&joined, ""));
        out.push(Instruction {
            first,
            last: i.min(lines.len() - 1),
            keyword: keyword.to_ascii_uppercase(),
            body: body.trim().to_string(),
        });
        i += 1;
    }
    out
}

/// The ARGs declared before the first FROM, a build arg overriding the default.
struct Globals(Vec<(String, String)>);

impl Globals {
    fn declare(&mut self, body: &str, args: &[(String, String)]) {
        for decl in body.split_whitespace() {
            let (name, default) = decl.split_once('=').unwrap_or((decl, ""));
            let value = args
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| default.trim_matches('"').to_string());
            self.0.push((name.to_string(), value));
        }
    }

    fn expand(&self, word: &str) -> String {
        expand_args(word, &self.0)
    }
}

/// A FROM line's parts: its flags, the image as written, and the stage name.
fn from_parts(body: &str) -> (Vec<&str>, Option<&str>, Option<&str>) {
    let words: Vec<&str> = body.split_whitespace().collect();
    let flags: Vec<&str> = words
        .iter()
        .copied()
        .take_while(|w| w.starts_with("--"))
        .collect();
    let rest = &words[flags.len()..];
    let stage = (rest.len() >= 3 && rest[1].eq_ignore_ascii_case("AS")).then(|| rest[2]);
    (flags, rest.first().copied(), stage)
}

/// Images a Dockerfile's FROM lines name, stage names and `scratch` left out. A name made
/// of variables is resolved as the builder resolves it: from the `ARG`s before the first
/// `FROM` (their defaults, or the build's `args`); one that stays unresolved is left to
/// the builder.
pub fn from_images(dockerfile: &str, args: &[(String, String)]) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut globals = Globals(Vec::new());
    let mut seen_from = false;
    for ins in instructions(dockerfile) {
        match ins.keyword.as_str() {
            "ARG" if !seen_from => globals.declare(&ins.body, args),
            "FROM" => {
                seen_from = true;
                let (_, written, stage) = from_parts(&ins.body);
                let Some(written) = written else { continue };
                let image = globals.expand(written);
                if !stages.iter().any(|s| s.eq_ignore_ascii_case(&image))
                    && !image.contains('$')
                    && !image.is_empty()
                    && image != "scratch"
                {
                    images.push(image);
                }
                stages.extend(stage.map(str::to_string));
            }
            _ => {}
        }
    }
    images
}

/// An image reference as Docker shortens it: without `docker.io/`, `library/` and a
/// `:latest` tag.
fn familiar(reference: &str) -> &str {
    let r = reference
        .strip_prefix("docker.io/")
        .or_else(|| reference.strip_prefix("index.docker.io/"))
        .unwrap_or(reference);
    let r = r.strip_prefix("library/").unwrap_or(r);
    match r.contains('@') {
        true => r,
        false => r.strip_suffix(":latest").unwrap_or(r),
    }
}

/// Whether a reference (a stage name or an image, ARGs expanded) names context `name`.
pub fn names_context(reference: &str, name: &str) -> bool {
    reference == name || reference.to_ascii_lowercase() == name || familiar(reference) == name
}

/// The image standing for the context `reference` names, if it names one.
fn stand_in<'c>(reference: &str, contexts: &'c [(String, String)]) -> Option<&'c str> {
    contexts
        .iter()
        .find(|(name, _)| names_context(reference, name))
        .map(|(_, image)| image.as_str())
}

/// A named context that replaces the stage the build produces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the context '{name}' replaces the stage the build produces, so the build would produce the context itself: rename the stage or the context")]
pub struct ReplacesTarget {
    pub name: String,
}

/// `dockerfile` with every reference to a named context replaced by the image standing
/// for it (`contexts`: name, image). A context that replaces the stage the build
/// produces (the target, else the last) is refused: the build would produce the context.
pub fn rewrite(
    dockerfile: &str,
    args: &[(String, String)],
    target: Option<&str>,
    contexts: &[(String, String)],
) -> Result<String, ReplacesTarget> {
    let mut lines: Vec<Option<String>> = dockerfile.lines().map(|l| Some(l.to_string())).collect();
    let mut globals = Globals(Vec::new());
    let mut seen_from = false;
    let mut produced = None;
    for ins in instructions(dockerfile) {
        let new_body = match ins.keyword.as_str() {
            "ARG" if !seen_from => {
                globals.declare(&ins.body, args);
                None
            }
            "FROM" => {
                seen_from = true;
                let (flags, written, stage) = from_parts(&ins.body);
                produced = stage.map(str::to_ascii_lowercase);
                written
                    .and_then(|w| stand_in(&globals.expand(w), contexts))
                    .map(|image| {
                        let mut words = flags.clone();
                        words.push(image);
                        if let Some(s) = stage {
                            words.extend(["AS", s]);
                        }
                        words.join(" ")
                    })
            }
            "COPY" => rewrite_flags(&ins.body, |flag| {
                let from = flag.strip_prefix("--from=")?;
                Some(format!(
                    "--from={}",
                    stand_in(&globals.expand(from), contexts)?
                ))
            }),
            "RUN" => rewrite_flags(&ins.body, |flag| rewrite_mount(flag, &globals, contexts)),
            _ => None,
        };
        if let Some(body) = new_body {
            lines[ins.first] = Some(format!("{} {body}", ins.keyword));
            for line in &mut lines[ins.first + 1..=ins.last] {
                *line = None;
            }
        }
    }
    let produced = target.map(str::to_ascii_lowercase).or(produced);
    if let Some(name) = produced.filter(|p| contexts.iter().any(|(n, _)| n == p)) {
        return Err(ReplacesTarget {
            name: name.to_string(),
        });
    }
    let mut out: String = lines.into_iter().flatten().collect::<Vec<_>>().join("\n");
    out.push('\n');
    Ok(out)
}

/// An instruction's body with its leading `--flags` passed through `change` (None: the
/// flag stays); None when no flag changed.
fn rewrite_flags(body: &str, change: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut rest = body.trim_start();
    let mut flags = Vec::new();
    let mut changed = false;
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let flag = &rest[..end];
        match change(flag) {
            Some(new) => {
                changed = true;
                flags.push(new);
            }
            None => flags.push(flag.to_string()),
        }
        rest = rest[end..].trim_start();
    }
    changed.then(|| {
        flags.push(rest.to_string());
        flags.join(" ")
    })
}

/// A `--mount=` flag whose `from=` names a context, naming its image instead.
fn rewrite_mount(flag: &str, globals: &Globals, contexts: &[(String, String)]) -> Option<String> {
    let spec = flag.strip_prefix("--mount=")?;
    let mut changed = false;
    let fields: Vec<String> = spec
        .split(',')
        .map(|field| match field.strip_prefix("from=") {
            Some(from) => match stand_in(&globals.expand(from), contexts) {
                Some(image) => {
                    changed = true;
                    format!("from={image}")
                }
                None => field.to_string(),
            },
            None => field.to_string(),
        })
        .collect();
    changed.then(|| format!("--mount={}", fields.join(",")))
}

/// `$NAME` and `${NAME}` (and `${NAME:-default}`) from `args`; an unknown name stays.
fn expand_args(text: &str, args: &[(String, String)]) -> String {
    let lookup = |name: &str| args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (expr, len) = match after
            .strip_prefix('{')
            .and_then(|a| a.find('}').map(|e| (&a[..e], e + 2)))
        {
            Some(braced) => braced,
            None => {
                let n = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..n], n)
            }
        };
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match lookup(name).filter(|v| !v.is_empty() || default.is_none()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => out.push_str(&rest[at..at + 1 + len]),
            },
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines() {
        let df = "ARG V=1\nFROM python:3.11-slim AS base\nFROM base AS app\nFROM --platform=linux/amd64 busybox:latest\nFROM img:${V}\nFROM scratch\n";
        assert_eq!(
            from_images(df, &[]),
            vec!["python:3.11-slim", "busybox:latest", "img:1"]
        );
        let df = "ARG REG=127.0.0.1:5000\nARG BASE\nARG TAG=1.4\nFROM ${REG}/team/base:$TAG\nFROM ${BASE:-debian:bookworm-slim}\nFROM $NOPE/x\nARG LATE=9\nFROM img:${LATE}\n";
        assert_eq!(
            from_images(df, &[]),
            vec!["127.0.0.1:5000/team/base:1.4", "debian:bookworm-slim"]
        );
        let args = [
            ("TAG".to_string(), "2.0".to_string()),
            ("BASE".to_string(), "alpine:3".to_string()),
        ];
        assert_eq!(
            from_images(df, &args),
            vec!["127.0.0.1:5000/team/base:2.0", "alpine:3"]
        );
    }

    #[test]
    fn continuations_comments_and_the_escape_directive() {
        let df = "# syntax=docker/dockerfile:1\nFROM \\\n  busybox \\\n# a comment inside\n\n  AS b\nRUN echo a \\\n && echo b\n";
        let ins = instructions(df);
        assert_eq!(ins.len(), 2);
        assert_eq!((ins[0].first, ins[0].last), (1, 5));
        assert_eq!(ins[0].body, "busybox   AS b");
        assert_eq!(ins[1].body, "echo a  && echo b");
        let df = "# escape=`\nFROM busybox `\n  AS b\nRUN dir c:\\\n";
        let ins = instructions(df);
        assert_eq!(ins[0].body, "busybox   AS b");
        assert_eq!(ins[1].body, "dir c:\\");
        assert_eq!(from_images("FROM \\\n busybox\n", &[]), vec!["busybox"]);
    }

    fn ctx(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn references_to_contexts_name_their_images() {
        let df = "ARG BASE=base\nFROM ${BASE} AS first\nFROM docker.io/library/busybox:latest AS tools\nFROM first\nCOPY --chown=1:1 --from=files /a /b\nCOPY --from=tools /bin/sh /sh\nRUN --mount=type=bind,from=Files,target=/f \\\n    cat /f/a\nCOPY from=files x y\n";
        let contexts = ctx(&[("base", "img:1"), ("files", "ctx:2"), ("busybox", "bb:3")]);
        let out = rewrite(df, &[], None, &contexts).unwrap();
        assert_eq!(
            out,
            "ARG BASE=base\nFROM img:1 AS first\nFROM bb:3 AS tools\nFROM first\nCOPY --chown=1:1 --from=ctx:2 /a /b\nCOPY --from=tools /bin/sh /sh\nRUN --mount=type=bind,from=ctx:2,target=/f cat /f/a\nCOPY from=files x y\n"
        );
        // A context named like a stage stands for it: references to the stage name the
        // context's image (the stage itself is then never built).
        let df = "FROM busybox AS deps\nRUN false\nFROM busybox\nCOPY --from=deps /x /x\n";
        let out = rewrite(df, &[], None, &ctx(&[("deps", "ctx:1")])).unwrap();
        assert!(out.ends_with("COPY --from=ctx:1 /x /x\n"), "{out}");
        // ...unless it is the stage the build produces.
        let err = rewrite(df, &[], Some("deps"), &ctx(&[("deps", "ctx:1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'deps' replaces the stage the build produces"),
            "{err}"
        );
        let df = "FROM busybox AS final\n";
        assert!(rewrite(df, &[], None, &ctx(&[("final", "x")])).is_err());
        // An ARG given to the build decides what FROM names.
        let args = [("BASE".to_string(), "other".to_string())];
        let out = rewrite(
            "ARG BASE=base\nFROM $BASE\n",
            &args,
            None,
            &ctx(&[("base", "i")]),
        );
        assert_eq!(out.unwrap(), "ARG BASE=base\nFROM $BASE\n");
    }

    #[test]
    fn familiar_names() {
        assert!(names_context("docker.io/library/busybox:latest", "busybox"));
        assert!(names_context("busybox", "busybox"));
        assert!(!names_context("busybox:1.36", "busybox"));
        assert!(names_context("Deps", "deps"));
        assert!(!names_context("other/busybox", "busybox"));
    }
}
