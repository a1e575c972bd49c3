//! Requirements the model could not honour as asked, stated in a fixed form outside the
//! file blocks, one per line:
//!
//! ```text
//! <unmet requirement="Grafana dashboard" kind="substituted">a static page served by busybox httpd: no Grafana image here</unmet>
//! <unmet requirement="e-mail alerts" kind="not_met">no mail server can run here</unmet>
//! ```
//!
//! masgen shows them next to the checks that passed: nothing is swapped silently.

use serde::{Deserialize, Serialize};

/// How a requirement was not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmetKind {
    /// A stand-in does the job in part.
    Substituted,
    /// Left out.
    NotMet,
}

impl UnmetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmetKind::Substituted => "substituted",
            UnmetKind::NotMet => "not met",
        }
    }
}

/// One requirement the system does not meet as the spec asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmet {
    pub requirement: String,
    pub kind: UnmetKind,
    /// What stands in for it, or why it was left out.
    pub detail: String,
}

/// Every `<unmet>` line of `text` (a reply's commentary).
pub fn parse_unmet(text: &str) -> Vec<Unmet> {
    text.lines().filter_map(one).collect()
}

fn one(line: &str) -> Option<Unmet> {
    let rest = line.trim().strip_prefix("<unmet")?;
    let end = rest.find('>')?;
    let (attrs, body) = (&rest[..end], &rest[end + 1..]);
    let detail = body.strip_suffix("</unmet>").unwrap_or(body).trim();
    let requirement = attr(attrs, "requirement")?;
    let kind = match attr(attrs, "kind").as_deref() {
        Some("substituted") => UnmetKind::Substituted,
        // A requirement named without a kind it could be was still not met as asked.
        _ => UnmetKind::NotMet,
    };
    Some(Unmet {
        requirement,
        kind,
        detail: detail.to_string(),
    })
}

/// `name="value"` (or single quotes) in a tag's attributes.
fn attr(attrs: &str, name: &str) -> Option<String> {
    let at = attrs.find(&format!("{name}="))?;
    let rest = &attrs[at + name.len() + 1..];
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    Some(body[..body.find(quote)?].trim().to_string()).filter(|v| !v.is_empty())
}

/// Merge `more` into `into`: one entry per requirement, the latest word on it kept.
pub fn merge(into: &mut Vec<Unmet>, more: Vec<Unmet>) {
    for u in more {
        into.retain(|o| !o.requirement.eq_ignore_ascii_case(&u.requirement));
        into.push(u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_are_read_and_other_lines_ignored() {
        let text = "Here is the system.\n<unmet requirement=\"Grafana dashboard\" kind=\"substituted\">a static page: no Grafana image here</unmet>\n  <unmet requirement='alerts' kind='not_met'>no mail server</unmet>\n<unmet kind=\"substituted\">no requirement named</unmet>\n";
        let u = parse_unmet(text);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].requirement, "Grafana dashboard");
        assert_eq!(u[0].kind, UnmetKind::Substituted);
        assert_eq!(u[0].detail, "a static page: no Grafana image here");
        assert_eq!(u[1].kind, UnmetKind::NotMet);
    }

    #[test]
    fn a_later_word_on_a_requirement_replaces_the_earlier() {
        let mut all = parse_unmet("<unmet requirement=\"Grafana\" kind=\"not_met\">later</unmet>");
        merge(
            &mut all,
            parse_unmet("<unmet requirement=\"grafana\" kind=\"substituted\">a page</unmet>"),
        );
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, UnmetKind::Substituted);
    }
}
