//! `.env` files read as Docker Compose reads them: `KEY=VALUE` or `KEY: VALUE`, an optional
//! `export `, `#` comment lines; an unquoted value is trimmed and ends at ` #`; a single
//! quoted value is taken literally; a double quoted one may span lines and knows `\n`,
//! `\t`, `\r`, `\\`, `\"` and `\$`. Unquoted and double quoted values are substituted
//! (`${VAR:-default}` and the rest), from the environment first and then from the lines
//! above.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::error::ComposeError;
use super::interp::Vars;

/// A line of a `.env` file Compose would not read either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    pub line: usize,
    pub message: String,
}

/// Parse `.env` text. `env` is the process environment (it wins over the file's own lines).
pub fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let mut vars: IndexMap<String, String> = IndexMap::new();
    let mut rest = text;
    let mut line = 1;
    loop {
        // Blank lines, comments and leading space.
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        line += rest[..rest.len() - trimmed.len()].matches('\n').count();
        rest = trimmed;
        if rest.is_empty() {
            return Ok(vars);
        }
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |n| &rest[n..]);
            continue;
        }
        let statement_line = line;
        let err = |message: String| DotenvError {
            line: statement_line,
            message,
        };
        if let Some(r) = rest.strip_prefix("export") {
            if r.starts_with([' ', '\t']) {
                rest = r.trim_start_matches([' ', '\t']);
            }
        }
        let key_end = rest.find(['=', ':', '\n']).unwrap_or(rest.len());
        let key = rest[..key_end].trim_end_matches([' ', '\t', '\r']);
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_alphanumeric() || "_.-[]".contains(*c)))
        {
            return Err(err(format!(
                "unexpected character {bad:?} in variable name {key:?}: names are letters, digits, '_', '.' and '-'"
            )));
        }
        if !rest[key_end..].starts_with(['=', ':']) {
            // A name alone: compose takes it from the environment, if it is there.
            if let Some(v) = env(key) {
                vars.insert(key.to_string(), v);
            }
            rest = &rest[key_end..];
            continue;
        }
        let after = rest[key_end + 1..].trim_start_matches([' ', '\t']);
        let lookup = |k: &str| env(k).or_else(|| vars.get(k).cloned());
        let (value, next) = value(after, &lookup).map_err(err)?;
        line += after[..after.len() - next.len()].matches('\n').count();
        vars.insert(key.to_string(), value);
        rest = next;
    }
}

/// The value at the start of `s` and what follows it.
fn value<'s>(
    s: &'s str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, &'s str), String> {
    let substitute = |raw: &str| Vars::new(lookup).substitute(raw).map_err(|e| e.to_string());
    if let Some(body) = s.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or_else(|| format!("unterminated quoted value '{}", first_line(body)))?;
        return Ok((body[..end].to_string(), rest_of_line(&body[end + 1..])));
    }
    if let Some(body) = s.strip_prefix('"') {
        let mut raw = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    let v = substitute(&raw)?;
                    return Ok((v, rest_of_line(&body[i + 1..])));
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => raw.push('\n'),
                    Some('t') => raw.push('\t'),
                    Some('r') => raw.push('\r'),
                    // `\$` is a literal `$`: kept escaped for the substitution.
                    Some('$') => raw.push_str("$$"),
                    Some(other) => raw.push(other),
                    None => break,
                },
                c => raw.push(c),
            }
        }
        return Err(format!("unterminated quoted value \"{}", first_line(body)));
    }
    let end = s.find('\n').unwrap_or(s.len());
    let mut raw = &s[..end];
    // ` #` (or a tab before it) starts a comment; `a#b` is a value.
    if let Some(at) = raw.find([' ', '\t']).and_then(|_| comment_start(raw)) {
        raw = &raw[..at];
    }
    let v = substitute(raw.trim_matches([' ', '\t', '\r']))?;
    Ok((v, &s[end..]))
}

fn comment_start(raw: &str) -> Option<usize> {
    raw.char_indices()
        .find(|(i, c)| *c == '#' && *i > 0 && raw[..*i].ends_with([' ', '\t']))
        .map(|(i, _)| i)
}

/// Past a closing quote: anything up to the end of the line is a comment or space.
fn rest_of_line(s: &str) -> &str {
    s.find('\n').map_or("", |n| &s[n..])
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A project variable: the environment's, else the `.env` file's.
pub(super) fn variable(dotenv: &BTreeMap<String, String>, key: &str) -> Option<String> {
    std::env::var(key).ok().or_else(|| dotenv.get(key).cloned())
}

/// The project's variables: each `--env-file` in order, else the folder's `.env` if there
/// is one. Values are substituted from the environment and the lines above.
pub fn read_env_files(
    root: &Path,
    env_files: &[PathBuf],
) -> Result<BTreeMap<String, String>, ComposeError> {
    let default = root.join(".env");
    let files: Vec<PathBuf> = if env_files.is_empty() {
        default.is_file().then_some(default).into_iter().collect()
    } else {
        env_files.to_vec()
    };
    let mut vars = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| ComposeError::Read {
            path: path.clone(),
            source,
        })?;
        let earlier = vars.clone();
        let env = |k: &str| variable(&earlier, k);
        let read = parse(&text, &env).map_err(|e| ComposeError::Dotenv {
            path: path.clone(),
            line: e.line,
            message: e.message,
        })?;
        vars.extend(read);
    }
    Ok(vars)
}

/// Read `.env` in `dir` (an unreadable or invalid one reads as empty; loading the project
/// reports its errors).
pub fn read_dotenv(dir: &Path) -> BTreeMap<String, String> {
    read_env_files(dir, &[]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> IndexMap<String, String> {
        parse(text, &|k| (k == "OS").then(|| "os".to_string())).unwrap()
    }

    #[test]
    fn every_form_as_docker_compose_reads_it() {
        let got = read(concat!(
            "# a comment\n\n",
            "A=a\\tb\n",
            "B=\"a\\tb\\\\c\\$d\\n\"\n",
            "C='a\\nb $A'\n",
            "D: colon\n",
            "  export   E = spaced  \n",
            "F=x # comment\n",
            "G=x#not\n",
            "H=\"q\" # comment\n",
            "I=\"multi\nline\"\n",
            "J=${A}-${NOPE:-d}\n",
            "K=$${A}\n",
            "L=${OS}\n",
            "M=\n",
            "N.dot-dash=1\r\n",
            "OS=file\n",
        ));
        let want = [
            ("A", "a\\tb"),
            ("B", "a\tb\\c$d\n"),
            ("C", "a\\nb $A"),
            ("D", "colon"),
            ("E", "spaced"),
            ("F", "x"),
            ("G", "x#not"),
            ("H", "q"),
            ("I", "multi\nline"),
            ("J", "a\\tb-d"),
            ("K", "${A}"),
            ("L", "os"),
            ("M", ""),
            ("N.dot-dash", "1"),
            ("OS", "file"),
        ];
        let want: IndexMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_environment_wins_over_earlier_lines_when_substituting() {
        let got = parse("OS=1\nB=${OS}2\n", &|k| {
            (k == "OS").then(|| "9".to_string())
        })
        .unwrap();
        assert_eq!(got["B"], "92");
    }

    #[test]
    fn bad_lines_name_their_line() {
        let e = parse("A=1\nB=\"open\nC=2\n", &|_| None).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unterminated quoted value"), "{e}");
        let e = parse("A=1\n\nB C=2\n", &|_| None).unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("A=${B:?set B}\n", &|_| None).unwrap_err();
        assert!(
            e.message
                .contains("required variable B is missing a value: set B"),
            "{e}"
        );
    }
}
