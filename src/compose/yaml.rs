//! A compose file's YAML read the way Docker Compose reads it (go-yaml v3, YAML 1.2's core
//! schema): into a `serde_json::Value` with every key a string (`on:`, `Y:` and `NO:` stay
//! strings; so do the values `yes` and `off`), merge keys (`<<`) and anchors resolved,
//! duplicate keys refused, and, beside the value, the line and column of every node by its
//! path and the `!reset` / `!override` tags an override file carries.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

use super::merge::Tagged;

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// A path into a document: mapping keys and sequence indexes.
pub type Path = Vec<String>;

/// One file's document.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub value: Value,
    /// Where each node starts (for a mapping entry: its key).
    pub marks: HashMap<Path, Mark>,
    pub tags: Vec<Tagged>,
}

impl Doc {
    /// Where `path` is written, or the nearest enclosing node that is (a key that came in
    /// through an alias or a merge key has no place of its own).
    pub fn mark(&self, path: &[String]) -> Mark {
        (0..=path.len())
            .rev()
            .find_map(|n| self.marks.get(&path[..n]))
            .copied()
            .unwrap_or(Mark { line: 1, column: 1 })
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

fn mark_of(span: &Span) -> Mark {
    Mark {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// A collection being read.
enum Open {
    Map {
        map: Map<String, Value>,
        /// The key read, waiting for its value.
        key: Option<String>,
        /// Where each key was written, to name the first one of a duplicate.
        lines: HashMap<String, usize>,
        /// Values of `<<` keys: mappings whose keys this one takes where it has none.
        merges: Vec<Value>,
        anchor: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
}

struct Reader {
    stack: Vec<Open>,
    anchors: HashMap<usize, Value>,
    doc: Doc,
    done: Option<Value>,
}

/// Read `text` (the first document of it; an empty file is an empty mapping).
pub fn parse(text: &str) -> Result<Doc, YamlError> {
    let mut r = Reader {
        stack: Vec::new(),
        anchors: HashMap::new(),
        doc: Doc::default(),
        done: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            mark: Mark {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let at = mark_of(&span);
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                if r.awaiting_key() {
                    r.key(value.into_owned(), at)?;
                } else {
                    let path = r.path();
                    r.note(path, at, tag.as_deref());
                    let v = resolve(&value, style, tag.as_deref());
                    r.value(v, anchor)?;
                }
            }
            Event::Alias(id) => {
                let v = r.anchors.get(&id).cloned().unwrap_or(Value::Null);
                if r.awaiting_key() {
                    let key = v.as_str().map(str::to_string).unwrap_or_default();
                    r.key(key, at)?;
                } else {
                    let path = r.path();
                    r.doc.marks.entry(path).or_insert(at);
                    r.value(v, 0)?;
                }
            }
            Event::MappingStart(_, anchor, ref tag) | Event::SequenceStart(_, anchor, ref tag) => {
                let map = matches!(event, Event::MappingStart(..));
                r.open(map, anchor, tag.as_deref(), at)?;
            }
            Event::MappingEnd | Event::SequenceEnd => r.close()?,
            Event::DocumentEnd if r.done.is_some() => break,
            _ => {}
        }
    }
    let mut doc = r.doc;
    doc.value = match r.done {
        Some(Value::Null) | None => Value::Object(Map::new()),
        Some(v) => v,
    };
    Ok(doc)
}

/// Keys of `<<` mappings go in where the mapping has none of its own; the first merged
/// mapping wins over later ones.
fn apply_merges(map: &mut Map<String, Value>, merges: Vec<Value>) {
    for merged in merges {
        let sources = match merged {
            Value::Array(items) => items,
            other => vec![other],
        };
        for source in sources {
            if let Value::Object(source) = source {
                for (k, v) in source {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
}

impl Reader {
    /// A mapping (`map`) or a sequence starts.
    fn open(
        &mut self,
        map: bool,
        anchor: usize,
        tag: Option<&Tag>,
        at: Mark,
    ) -> Result<(), YamlError> {
        if self.awaiting_key() {
            return Err(YamlError {
                mark: at,
                message: "a mapping key must be a plain value, not a mapping or a list".into(),
            });
        }
        let path = self.path();
        self.note(path, at, tag);
        self.stack.push(if map {
            Open::Map {
                map: Map::new(),
                key: None,
                lines: HashMap::new(),
                merges: Vec::new(),
                anchor,
            }
        } else {
            Open::Seq {
                items: Vec::new(),
                anchor,
            }
        });
        Ok(())
    }

    /// The innermost collection ends: it is a value of its parent.
    fn close(&mut self) -> Result<(), YamlError> {
        let (v, anchor) = match self.stack.pop() {
            Some(Open::Map {
                mut map,
                merges,
                anchor,
                ..
            }) => {
                apply_merges(&mut map, merges);
                (Value::Object(map), anchor)
            }
            Some(Open::Seq { items, anchor }) => (Value::Array(items), anchor),
            None => return Ok(()),
        };
        self.value(v, anchor)
    }

    fn awaiting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Open::Map { key: None, .. }))
    }

    /// The path of the node about to be read.
    fn path(&self) -> Path {
        self.stack
            .iter()
            .map(|o| match o {
                Open::Map { key, .. } => key.clone().unwrap_or_default(),
                Open::Seq { items, .. } => items.len().to_string(),
            })
            .collect()
    }

    fn note(&mut self, path: Path, at: Mark, tag: Option<&Tag>) {
        self.doc.marks.entry(path.clone()).or_insert(at);
        if let Some(tag) = tag.filter(|t| t.handle() == "!") {
            match tag.suffix() {
                "reset" => self.doc.tags.push(Tagged::Reset(path)),
                "override" => self.doc.tags.push(Tagged::Override(path)),
                _ => {}
            }
        }
    }

    fn key(&mut self, key: String, at: Mark) -> Result<(), YamlError> {
        let mut path = self.path();
        let Some(Open::Map {
            key: slot, lines, ..
        }) = self.stack.last_mut()
        else {
            return Ok(());
        };
        if key != "<<" {
            if let Some(first) = lines.get(&key) {
                return Err(YamlError {
                    mark: at,
                    message: format!("mapping key \"{key}\" already defined at line {first}"),
                });
            }
            lines.insert(key.clone(), at.line);
        }
        *slot = Some(key.clone());
        // The path ends in this mapping's empty key slot: the key takes its place.
        path.pop();
        path.push(key);
        self.doc.marks.insert(path, at);
        Ok(())
    }

    /// A whole node was read: put it in its parent.
    fn value(&mut self, v: Value, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            Some(Open::Map {
                map, key, merges, ..
            }) => match key.take() {
                Some(k) if k == "<<" => merges.push(v),
                Some(k) => {
                    map.insert(k, v);
                }
                None => {}
            },
            Some(Open::Seq { items, .. }) => items.push(v),
            None => {
                if self.done.is_none() {
                    self.done = Some(v);
                }
            }
        }
        Ok(())
    }
}

/// A scalar's value by YAML 1.2's core schema, as go-yaml v3 resolves it: only plain
/// scalars are typed; `yes`, `on` and `Y` are strings.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    let s = || Value::String(text.to_string());
    if let Some(tag) = tag {
        if tag.handle() == "tag:yaml.org,2002:" && tag.suffix() == "str" {
            return s();
        }
    }
    if style != ScalarStyle::Plain {
        return s();
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(text) {
        return Value::Number(n.into());
    }
    if looks_float(text) {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    s()
}

fn integer(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = body.strip_prefix("0o") {
        (8, o)
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -n } else { n })
}

fn looks_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    let mut chars = body.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_digit() || c == '.')
        && body.chars().any(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_stay_strings_and_only_core_schema_scalars_are_typed() {
        let d = parse("on: yes\nY: NO\nn: 3\nf: 1.5\nb: true\nq: \"3\"\nz: ~\nh: 0x1F\ns: 1.2.3\n")
            .unwrap();
        assert_eq!(
            d.value,
            json!({"on": "yes", "Y": "NO", "n": 3, "f": 1.5, "b": true, "q": "3", "z": null, "h": 31, "s": "1.2.3"})
        );
    }

    #[test]
    fn merge_keys_anchors_and_positions() {
        let text = "x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\n  list: [p, q]\n";
        let d = parse(text).unwrap();
        assert_eq!(d.value["y"], json!({"a": 1, "b": 3, "list": ["p", "q"]}));
        assert_eq!(
            d.mark(&["y".into(), "b".into()]),
            Mark { line: 6, column: 3 }
        );
        assert_eq!(d.mark(&["y".into(), "list".into(), "1".into()]).line, 7);
        // A key that came in through the merge has the merge's place.
        assert_eq!(d.mark(&["y".into(), "a".into()]).line, 4);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_name_the_line() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.mark.line, 3);
        assert!(e.message.contains("already defined at line 1"), "{e:?}");
        assert!(parse("a: [unclosed\n").is_err());
        assert_eq!(parse("").unwrap().value, json!({}));
    }

    #[test]
    fn reset_and_override_tags_are_collected_by_path() {
        let d = parse("services:\n  a:\n    ports: !reset []\n    environment: !override {B: 2}\n")
            .unwrap();
        assert_eq!(
            d.tags,
            vec![
                Tagged::Reset(vec!["services".into(), "a".into(), "ports".into()]),
                Tagged::Override(vec!["services".into(), "a".into(), "environment".into()]),
            ]
        );
    }
}
