//! The staged-generation manifest: a JSON array of `{path, purpose, group}` (plain path
//! strings tolerated), optionally inside `<manifest>...</manifest>` or a code fence.

use serde::{Deserialize, Serialize};

use super::paths::{check_path, SafePath};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    pub path: SafePath,
    pub purpose: String,
    pub group: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Path(String),
    Full {
        path: String,
        #[serde(default)]
        purpose: String,
        #[serde(default)]
        group: Option<String>,
    },
}

/// The group a file belongs to when the manifest does not say.
fn default_group(path: &SafePath) -> String {
    let p = path.as_str();
    match p.split_once('/') {
        Some((dir, _)) => dir.to_string(),
        None if p.starts_with("docker-compose") || p.starts_with("compose.") || p == ".env" => {
            "infrastructure".into()
        }
        None => "docs".into(),
    }
}

/// The contract of a manifest reply (`<contract>{...}</contract>`), rendered one key a line
/// as compact JSON; None when there is none or it is not a JSON object.
pub fn parse_contract(reply: &str) -> Option<String> {
    let (a, b) = (reply.find("<contract>")?, reply.rfind("</contract>")?);
    let body = reply.get(a + "<contract>".len()..b)?;
    let (start, end) = (body.find('{')?, body.rfind('}')?);
    let value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(body.get(start..=end)?).ok()?;
    let lines: Vec<String> = value
        .iter()
        .filter(|(_, v)| !matches!(v, serde_json::Value::Array(a) if a.is_empty()))
        .filter(|(_, v)| !matches!(v, serde_json::Value::Object(o) if o.is_empty()))
        .map(|(k, v)| {
            format!("  {}: {}", serde_json::Value::String(k.clone()), v).replace(",\"", ", \"")
        })
        .collect();
    (!lines.is_empty()).then(|| format!("{{\n{}\n}}", lines.join(",\n")))
}

/// Parse a manifest. Returns the entries and the paths refused by the path rules.
pub fn parse_manifest(reply: &str) -> Result<(Vec<ManifestEntry>, Vec<String>), String> {
    let body = match (reply.find("<manifest>"), reply.rfind("</manifest>")) {
        (Some(a), Some(b)) if b > a => &reply[a + "<manifest>".len()..b],
        // Without manifest tags, the contract is not part of the array.
        _ if reply.contains("<contract>") => &reply[..reply.find("<contract>").unwrap_or(0)],
        _ => reply,
    };
    let (Some(start), Some(end)) = (body.find('['), body.rfind(']')) else {
        return Err("no JSON array found".into());
    };
    if end < start {
        return Err("no JSON array found".into());
    }
    let raw: Vec<RawEntry> = serde_json::from_str(&body[start..=end])
        .map_err(|e| format!("not a JSON array of files: {e}"))?;
    let mut entries: Vec<ManifestEntry> = Vec::new();
    let mut refused = Vec::new();
    for r in raw {
        let (path, purpose, group) = match r {
            RawEntry::Path(p) => (p, String::new(), None),
            RawEntry::Full {
                path,
                purpose,
                group,
            } => (path, purpose, group),
        };
        match check_path(&path) {
            Ok(safe) => {
                let group = group
                    .filter(|g| !g.trim().is_empty())
                    .unwrap_or_else(|| default_group(&safe));
                entries.retain(|e| e.path != safe);
                entries.push(ManifestEntry {
                    path: safe,
                    purpose,
                    group,
                });
            }
            Err(why) => refused.push(format!("{path}: {why}")),
        }
    }
    if entries.is_empty() {
        return Err("the manifest lists no usable file".into());
    }
    Ok((entries, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_strings_and_wrappers() {
        let reply = "Plan:\n<manifest>\n```json\n[{\"path\":\"docker-compose.yml\",\"purpose\":\"compose\",\"group\":\"infrastructure\"},\n \"agent1/app.py\", {\"path\":\"../x\"}, \"README.md\"]\n```\n</manifest>";
        let (entries, refused) = parse_manifest(reply).unwrap();
        let groups: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.group.as_str()))
            .collect();
        assert_eq!(
            groups,
            vec![
                ("docker-compose.yml", "infrastructure"),
                ("agent1/app.py", "agent1"),
                ("README.md", "docs")
            ]
        );
        assert_eq!(refused.len(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_manifest("I cannot do that").is_err());
        assert!(parse_manifest("[1, 2").is_err());
        assert!(parse_manifest("[]").is_err());
    }
}
