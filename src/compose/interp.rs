//! Compose's variable substitution, on one value at a time (never on a file's text):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
//! `${VAR:+alt}`, `${VAR+alt}`, defaults and alternatives that hold substitutions of their
//! own, and `$$` for a literal `$`. A `$` that starts none of these stays as it is.

use serde_json::Value;

use super::yaml::Doc;

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpError {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing.
    Required { name: String, message: String },
    /// A `${` that is not closed, names no variable, or has an unknown operator.
    Invalid,
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value: set it in the environment or .env")
            }
            InterpError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
            InterpError::Invalid => f.write_str(
                "invalid interpolation format: write ${NAME}, ${NAME:-default} and the like, and $$ for a literal $",
            ),
        }
    }
}

/// Where variables come from, and which ones were used unset.
pub struct Vars<'a> {
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Variables read while unset and with no default, in the order first met.
    pub unset: Vec<String>,
}

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars {
            lookup,
            unset: Vec::new(),
        }
    }

    fn get(&mut self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    fn get_or_warn(&mut self, name: &str) -> String {
        self.get(name).unwrap_or_else(|| {
            if !self.unset.iter().any(|u| u == name) {
                self.unset.push(name.to_string());
            }
            String::new()
        })
    }

    /// Substitute every variable in `s`.
    pub fn substitute(&mut self, s: &str) -> Result<String, InterpError> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(body) = after.strip_prefix('{') {
                let close = closing_brace(body).ok_or(InterpError::Invalid)?;
                out.push_str(&self.braced(&body[..close])?);
                rest = &body[close + 1..];
            } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                out.push_str(&self.get_or_warn(&after[..end]));
                rest = &after[end..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The inside of `${...}`.
    fn braced(&mut self, inner: &str) -> Result<String, InterpError> {
        let end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(end);
        if name.is_empty() {
            return Err(InterpError::Invalid);
        }
        if op.is_empty() {
            return Ok(self.get_or_warn(name));
        }
        let value = self.get(name);
        let empty = value.as_deref().is_none_or(str::is_empty);
        let (colon, op) = match op.strip_prefix(':') {
            Some(op) => (true, op),
            None => (false, op),
        };
        let missing = if colon { empty } else { value.is_none() };
        let Some(kind) = op.chars().next().filter(|c| matches!(c, '-' | '?' | '+')) else {
            return Err(InterpError::Invalid);
        };
        let arg = &op[1..];
        match kind {
            '-' if missing => self.substitute(arg),
            '?' if missing => Err(InterpError::Required {
                name: name.to_string(),
                message: self.substitute(arg)?,
            }),
            '+' if missing => Ok(String::new()),
            '+' => self.substitute(arg),
            _ => Ok(value.unwrap_or_default()),
        }
    }

    /// Substitute in every string of a document, keys aside. An error names where the
    /// value is written.
    pub fn document(&mut self, doc: &mut Doc) -> Result<(), (Vec<String>, InterpError)> {
        let mut path = Vec::new();
        let mut value = std::mem::take(&mut doc.value);
        let r = self.walk(&mut value, &mut path);
        doc.value = value;
        r.map_err(|e| (path, e))
    }

    fn walk(&mut self, v: &mut Value, path: &mut Vec<String>) -> Result<(), InterpError> {
        match v {
            Value::String(s) if s.contains('$') => *s = self.substitute(s)?,
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    self.walk(item, path)?;
                    path.pop();
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    path.push(k.clone());
                    self.walk(item, path)?;
                    path.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The index of the `}` that closes a `${` whose body starts `s`, past nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, InterpError> {
        Vars::new(&env).substitute(s)
    }

    #[test]
    fn every_form_as_docker_compose_substitutes_it() {
        for (input, want) in [
            ("${SET}", "v"),
            ("$SET.x", "v.x"),
            ("$SET-x", "v-x"),
            ("${NOPE:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${NOPE-d}", "d"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${NOPE+alt}", ""),
            ("${SET:-${NOPE:-n}}", "v"),
            ("${NOPE:-${SET}x}", "vx"),
            ("${NOPE:-${NOPE2:-deep}}", "deep"),
            ("${NOPE:-a}b}", "ab}"),
            ("${NOPE:-$$}", "$"),
            ("${a-b-c}", "b-c"),
            ("$$HOME", "$HOME"),
            ("a$$$SET", "a$v"),
            ("a $1 b", "a $1 b"),
            ("x$", "x$"),
            ("a: b #c", "a: b #c"),
        ] {
            assert_eq!(sub(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_forms_and_required_variables_are_errors() {
        for bad in ["${}", "${SET:x}", "${SET", "${A.B}"] {
            assert_eq!(sub(bad), Err(InterpError::Invalid), "{bad}");
        }
        let e = sub("${NOPE:?must set ${SET}}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable NOPE is missing a value: must set v"
        );
        assert!(sub("${EMPTY?e}").is_ok());
        assert!(sub("${EMPTY:?e}").is_err());
    }

    #[test]
    fn unset_variables_are_named_once_and_defaults_are_not_warned_about() {
        let mut vars = Vars::new(&env);
        vars.substitute("$NOPE ${NOPE} ${OTHER} ${D:-x} ${E-y}")
            .unwrap();
        assert_eq!(vars.unset, vec!["NOPE", "OTHER"]);
    }
}
