//! Own serde structs for the Compose subset masgen runs. Shapes that Compose allows in
//! two forms (string or list, list or map, short or long syntax) are untagged enums with
//! accessors that give one form.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

pub use super::error::ValueError;

/// A YAML scalar: Compose accepts numbers and booleans where it means strings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    /// As an argv: a string is split the way a shell would split plain words and quotes.
    pub fn argv(&self) -> Vec<String> {
        match self {
            StringOrList::Many(v) => v.clone(),
            StringOrList::One(s) => shell_words(s),
        }
    }
    pub fn list(&self) -> Vec<String> {
        match self {
            StringOrList::Many(v) => v.clone(),
            StringOrList::One(s) => vec![s.clone()],
        }
    }
}

/// Split like a POSIX shell's words: whitespace, '...' and "..." quoting, backslash escapes.
pub fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n)
                            }
                        }
                        _ => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n)
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c)
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `KEY=VALUE` list or `KEY: VALUE` map (environment, labels, build args).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyValues {
    List(Vec<String>),
    Map(IndexMap<String, Option<Scalar>>),
}

impl KeyValues {
    /// Pairs; a key with no value is None (taken from the environment for `environment`).
    pub fn pairs(&self) -> Vec<(String, Option<String>)> {
        match self {
            KeyValues::List(items) => items
                .iter()
                .map(|i| match i.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (i.clone(), None),
                })
                .collect(),
            KeyValues::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(Scalar::text)))
                .collect(),
        }
    }
}

/// `env_file`: one path, or a list of paths and `{path, required, format}` entries.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EnvFiles {
    One(String),
    Many(Vec<EnvFileEntry>),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EnvFileEntry {
    Path(String),
    Long {
        path: String,
        #[serde(default)]
        required: Option<Flag>,
        #[serde(default)]
        format: Option<String>,
    },
}

/// One env_file, in one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    pub path: String,
    /// A missing file is an error (the default), or skipped.
    pub required: bool,
    /// `format: raw`: `KEY=VALUE` lines taken as they are, no quotes and no substitution.
    pub raw: bool,
}

impl EnvFiles {
    pub fn entries(&self) -> Vec<EnvFile> {
        let one = |path: &str| EnvFile {
            path: path.to_string(),
            required: true,
            raw: false,
        };
        match self {
            EnvFiles::One(p) => vec![one(p)],
            EnvFiles::Many(items) => items
                .iter()
                .map(|e| match e {
                    EnvFileEntry::Path(p) => one(p),
                    EnvFileEntry::Long {
                        path,
                        required,
                        format,
                    } => EnvFile {
                        path: path.clone(),
                        required: required.as_ref().is_none_or(|r| r.0),
                        raw: format.as_deref() == Some("raw"),
                    },
                })
                .collect(),
        }
    }
}

/// A boolean as Compose takes it: `true`, or a string such as `"true"` (what a
/// substituted `${VAR}` gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Bool(b) => Ok(Flag(b)),
            Scalar::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "y" | "1" => Ok(Flag(true)),
                "false" | "no" | "off" | "n" | "0" | "" => Ok(Flag(false)),
                _ => Err(serde::de::Error::custom(format!(
                    "{s:?} is not a boolean: use true or false"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "{} is not a boolean: use true or false",
                other.text()
            ))),
        }
    }
}

/// `Option<bool>` from a boolean or from a string that names one (what `${VAR}` gives).
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Option::<Flag>::deserialize(d).map(|f| f.map(|f| f.0))
}

/// A whole number from a number or from a string holding one (what `${VAR}` gives).
fn lenient_number<'de, D: serde::Deserializer<'de>, T: std::str::FromStr>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<Scalar>::deserialize(d)? {
        None => Ok(None),
        Some(v) => {
            v.text().trim().parse().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("{} is not a whole number", v.text()))
            })
        }
    }
}

fn lenient_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    lenient_number(d)
}

fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient_number(d)
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Build {
    Context(String),
    Full(Box<BuildFull>),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct BuildFull {
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub dockerfile: Option<String>,
    /// The Dockerfile's text, in place of a file.
    #[serde(default)]
    pub dockerfile_inline: Option<String>,
    #[serde(default)]
    pub args: Option<KeyValues>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub labels: Option<KeyValues>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub shm_size: Option<Scalar>,
    #[serde(default)]
    pub extra_hosts: Option<KeyValues>,
    #[serde(default)]
    pub no_cache: Option<Flag>,
    #[serde(default)]
    pub pull: Option<Flag>,
    #[serde(default)]
    pub cache_from: Vec<String>,
    /// `platforms`: what the build targets (warned about and ignored: the engine builds for
    /// its own), checked against the service's `platform` as Compose checks it.
    #[serde(default)]
    pub platforms: Vec<String>,
    /// Secrets its `RUN --mount=type=secret` steps read (through a BuildKit session).
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    /// SSH agents its `RUN --mount=type=ssh` steps use (through a BuildKit session).
    #[serde(default)]
    pub ssh: Option<SshKeys>,
    /// Named contexts the Dockerfile refers to as it would to a stage or an image.
    #[serde(default)]
    pub additional_contexts: Option<KeyValues>,
}

/// Whether a build context or named context is remote (a URL, `git@`), which Compose
/// leaves as written instead of resolving it as a path.
pub fn is_remote(path: &str) -> bool {
    path.contains("://") || path.starts_with("git@")
}

/// What a named build context (`build.additional_contexts`) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local folder (absolute), its `.dockerignore` applied.
    Dir(std::path::PathBuf),
    /// An image (`docker-image://REF`).
    Image(String),
    /// The image another service of the project builds (`service:NAME`).
    Service(String),
}

impl NamedContext {
    /// Whether `value` names a local folder (a relative one is relative to the project).
    pub fn names_folder(value: &str) -> bool {
        !(value.starts_with("service:") || is_remote(value))
    }

    /// What `value` names, a relative folder taken from `root`; a remote context (a URL,
    /// git, an OCI layout) is refused, saying why.
    pub fn parse(value: &str, root: &std::path::Path) -> Result<NamedContext, ValueError> {
        if let Some(image) = value.strip_prefix("docker-image://") {
            return Ok(NamedContext::Image(image.to_string()));
        }
        if let Some(service) = value.strip_prefix("service:") {
            return Ok(NamedContext::Service(service.to_string()));
        }
        if is_remote(value) {
            return Err(ValueError::RemoteContext(value.to_string()));
        }
        Ok(NamedContext::Dir(root.join(value)))
    }
}

impl Build {
    pub fn context(&self) -> &str {
        match self {
            Build::Context(c) => c,
            Build::Full(f) => f.context.as_deref().unwrap_or("."),
        }
    }
    pub fn dockerfile(&self) -> &str {
        self.full()
            .and_then(|f| f.dockerfile.as_deref())
            .unwrap_or("Dockerfile")
    }
    /// The long form, when the build is written as one.
    pub fn full(&self) -> Option<&BuildFull> {
        match self {
            Build::Full(f) => Some(f),
            Build::Context(_) => None,
        }
    }
    /// `dockerfile_inline`: the Dockerfile's text, when it is given in the compose file.
    pub fn dockerfile_inline(&self) -> Option<&str> {
        match self {
            Build::Full(f) => f.dockerfile_inline.as_deref(),
            Build::Context(_) => None,
        }
    }
    /// The Dockerfile's text: inline, or read from the context (None when unreadable).
    pub fn dockerfile_text(&self, root: &std::path::Path) -> Option<String> {
        match self.dockerfile_inline() {
            Some(t) => Some(t.to_string()),
            None => std::fs::read_to_string(root.join(self.context()).join(self.dockerfile())).ok(),
        }
    }
    /// `additional_contexts`: (name, value) pairs, a name without a value None.
    pub fn named_contexts(&self) -> Vec<(String, Option<String>)> {
        self.full()
            .and_then(|f| f.additional_contexts.as_ref())
            .map(KeyValues::pairs)
            .unwrap_or_default()
    }
    pub fn args(&self) -> Vec<(String, Option<String>)> {
        self.full()
            .and_then(|f| f.args.as_ref())
            .map(KeyValues::pairs)
            .unwrap_or_default()
    }
    pub fn target(&self) -> Option<&str> {
        match self {
            Build::Full(f) => f.target.as_deref(),
            Build::Context(_) => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Port {
    Short(Scalar),
    Long(PortLong),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PortLong {
    pub target: Scalar,
    #[serde(default)]
    pub published: Option<Scalar>,
    #[serde(default)]
    pub host_ip: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
}

/// One published port, ranges expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    /// The last port of a host range (`6005-6015:80`): Docker takes a free one of them.
    pub host_port_end: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

fn parse_range(s: &str) -> Result<Vec<u16>, ValueError> {
    let bad = || ValueError::Port(s.to_string());
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if b < a || b - a > 1000 {
                return Err(bad());
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![s.trim().parse().map_err(|_| bad())?]),
    }
}

impl PortMapping {
    /// The host port as Docker and Compose write it: `8080`, or a range `6005-6015`.
    pub fn published(&self) -> Option<String> {
        let start = self.host_port?;
        Some(match self.host_port_end.filter(|e| *e != start) {
            Some(end) => format!("{start}-{end}"),
            None => start.to_string(),
        })
    }
}

impl Port {
    /// Expand into mappings. Short syntax: `[IP:][HOST:]CONTAINER[/PROTO]`, ranges allowed.
    pub fn mappings(&self) -> Result<Vec<PortMapping>, ValueError> {
        match self {
            Port::Long(l) => {
                let container = parse_range(&l.target.text())?;
                let host = l
                    .published
                    .as_ref()
                    .map(|p| parse_range(&p.text()))
                    .transpose()?;
                zip_ports(
                    l.host_ip.clone(),
                    host,
                    container,
                    l.protocol.clone().unwrap_or_else(|| "tcp".into()),
                )
            }
            Port::Short(s) => {
                let text = s.text();
                let (spec, proto) = match text.rsplit_once('/') {
                    Some((a, p)) => (a.to_string(), p.to_string()),
                    None => (text.clone(), "tcp".to_string()),
                };
                // IPv6 host IPs come in brackets: [::1]:8080:80
                let (ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
                    let (ip, rest) = stripped
                        .split_once("]:")
                        .ok_or_else(|| ValueError::Port(text.to_string()))?;
                    (Some(ip.to_string()), rest.to_string())
                } else {
                    (None, spec)
                };
                let parts: Vec<&str> = rest.split(':').collect();
                let (ip, host, container) = match parts.as_slice() {
                    [c] => (ip, None, *c),
                    [h, c] => (ip, Some(*h), *c),
                    [i, h, c] => (Some(i.to_string()), Some(*h), *c),
                    _ => return Err(ValueError::Port(text.to_string())),
                };
                let host = host
                    .filter(|h| !h.is_empty())
                    .map(parse_range)
                    .transpose()?;
                zip_ports(ip, host, parse_range(container)?, proto)
            }
        }
    }
}

fn zip_ports(
    ip: Option<String>,
    host: Option<Vec<u16>>,
    container: Vec<u16>,
    protocol: String,
) -> Result<Vec<PortMapping>, ValueError> {
    match host {
        Some(h) if h.len() == container.len() => Ok(h
            .into_iter()
            .zip(container)
            .map(|(hp, cp)| PortMapping {
                host_ip: ip.clone(),
                host_port: Some(hp),
                host_port_end: None,
                container_port: cp,
                protocol: protocol.clone(),
            })
            .collect()),
        // `6005-6015:80`: Docker publishes the port on a free one of the range.
        Some(h) if h.len() > 1 && container.len() == 1 => Ok(vec![PortMapping {
            host_ip: ip,
            host_port: h.first().copied(),
            host_port_end: h.last().copied(),
            container_port: container[0],
            protocol,
        }]),
        Some(h) => Ok(container
            .into_iter()
            .map(|cp| PortMapping {
                host_ip: ip.clone(),
                host_port: h.first().copied(),
                host_port_end: None,
                container_port: cp,
                protocol: protocol.clone(),
            })
            .collect()),
        None => Ok(container
            .into_iter()
            .map(|cp| PortMapping {
                host_ip: ip.clone(),
                host_port: None,
                host_port_end: None,
                container_port: cp,
                protocol: protocol.clone(),
            })
            .collect()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DependsSpec {
    #[serde(default)]
    pub condition: Option<Condition>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub restart: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DependsOn {
    List(Vec<String>),
    Map(IndexMap<String, Option<DependsSpec>>),
}

impl DependsOn {
    /// Whether the dependency on `service` says `required: false`.
    pub fn optional(&self, service: &str) -> bool {
        match self {
            DependsOn::List(_) => false,
            DependsOn::Map(m) => {
                m.get(service)
                    .and_then(|s| s.as_ref())
                    .and_then(|s| s.required)
                    == Some(false)
            }
        }
    }

    pub fn entries(&self) -> Vec<(String, Condition)> {
        match self {
            DependsOn::List(l) => l
                .iter()
                .map(|s| (s.clone(), Condition::ServiceStarted))
                .collect(),
            DependsOn::Map(m) => m
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_ref()
                            .and_then(|d| d.condition)
                            .unwrap_or(Condition::ServiceStarted),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Option<StringOrList>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub retries: Option<u32>,
    #[serde(default)]
    pub start_period: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disable: Option<bool>,
}

/// A Compose duration: `1m30s`, `10s`, `500ms`, `1h`.
/// When to pull a service's image (`pull_policy`), as Compose reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    /// `missing`, `if_not_present`, or no policy: pull when not local.
    Missing,
    Never,
    /// Build it; never pull.
    Build,
    /// `daily`, `weekly`, `refresh` (daily), `every_<duration>`: pull when missing, or when
    /// the local tag is older than this.
    Refresh(Duration),
}

/// A `pull_policy` value, checked against Compose's pattern
/// `always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+`.
pub fn parse_pull_policy(s: &str) -> Result<PullPolicy, ValueError> {
    const DAY: u64 = 24 * 3600;
    Ok(match s {
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "build" => PullPolicy::Build,
        "missing" | "if_not_present" => PullPolicy::Missing,
        "refresh" | "daily" => PullPolicy::Refresh(Duration::from_secs(DAY)),
        "weekly" => PullPolicy::Refresh(Duration::from_secs(7 * DAY)),
        _ => {
            let bad = || ValueError::PullPolicy(s.to_string());
            let spec = s
                .strip_prefix("every_")
                .filter(|r| !r.is_empty())
                .ok_or_else(bad)?;
            let mut secs = 0u64;
            let mut digits = String::new();
            for c in spec.chars() {
                let unit = match c {
                    '0'..='9' => {
                        digits.push(c);
                        continue;
                    }
                    'w' => 7 * DAY,
                    'd' => DAY,
                    'h' => 3600,
                    'm' => 60,
                    's' => 1,
                    _ => return Err(bad()),
                };
                let n: u64 = std::mem::take(&mut digits).parse().map_err(|_| bad())?;
                secs = secs.saturating_add(n.saturating_mul(unit));
            }
            if !digits.is_empty() {
                return Err(bad());
            }
            PullPolicy::Refresh(Duration::from_secs(secs))
        }
    })
}

pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    humantime::parse_duration(s.trim()).map_err(|e| ValueError::Duration {
        value: s.to_string(),
        why: e.to_string(),
    })
}

impl Healthcheck {
    pub fn disabled(&self) -> bool {
        self.disable == Some(true)
            || matches!(&self.test, Some(StringOrList::Many(v)) if v.first().map(String::as_str) == Some("NONE"))
    }

    /// The test in Docker's form: `["CMD-SHELL", "..."]` for a string, the list as given
    /// (a list that does not start with CMD/CMD-SHELL/NONE gets CMD prepended).
    pub fn docker_test(&self) -> Option<Vec<String>> {
        match self.test.as_ref()? {
            StringOrList::One(s) => Some(vec!["CMD-SHELL".into(), s.clone()]),
            StringOrList::Many(v) if v.is_empty() => None,
            StringOrList::Many(v) if matches!(v[0].as_str(), "CMD" | "CMD-SHELL" | "NONE") => {
                Some(v.clone())
            }
            StringOrList::Many(v) => Some(
                std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Volume {
    Short(String),
    Long(VolumeLong),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct VolumeLong {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    /// `bind:` options (a bind mount's).
    #[serde(default)]
    pub bind: Option<BindLong>,
    /// `volume:` options (a named volume's).
    #[serde(default)]
    pub volume: Option<VolumeOptionsLong>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct BindLong {
    #[serde(default)]
    pub propagation: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub create_host_path: Option<bool>,
    #[serde(default)]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct VolumeOptionsLong {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub nocopy: Option<bool>,
}

/// A bind mount's options, as Compose keeps them: written short (`./d:/d:z`), a bind
/// always has them, with `create_host_path`; written long, only with a `bind:` key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindOptions {
    /// `z` (shared relabel) or `Z` (private relabel).
    pub selinux: Option<String>,
    /// `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    pub propagation: Option<String>,
    pub create_host_path: bool,
}

impl BindOptions {
    /// Whether Compose mounts it through the engine's Mount API (which creates no missing
    /// host path and has no SELinux label) rather than a `src:dst:mode` bind: with
    /// options that do not create the host path, or that set a propagation.
    pub fn needs_mount_api(&self) -> bool {
        !self.create_host_path || self.propagation.is_some()
    }
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// A mount in one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A named volume (declared at the top level); `volume` holds its options, when it
    /// has them (written short, or with a `volume:` key): `nocopy`.
    Named {
        name: String,
        target: String,
        read_only: bool,
        volume: Option<bool>,
    },
    /// A host path (relative paths are relative to the compose file's folder).
    Bind {
        source: String,
        target: String,
        read_only: bool,
        bind: Option<BindOptions>,
    },
    /// An anonymous volume.
    Anonymous { target: String },
    /// A tmpfs.
    Tmpfs { target: String },
}

fn is_host_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

impl Volume {
    pub fn mount(&self) -> Result<Mount, ValueError> {
        match self {
            Volume::Short(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [t] => Ok(Mount::Anonymous {
                        target: t.to_string(),
                    }),
                    [src, t, rest @ ..] if rest.len() <= 1 => {
                        let opts: Vec<&str> =
                            rest.first().map_or(Vec::new(), |m| m.split(',').collect());
                        let read_only = opts.contains(&"ro");
                        if is_host_path(src) {
                            let pick = |allowed: &[&str]| {
                                opts.iter()
                                    .find(|o| allowed.contains(o))
                                    .map(|o| o.to_string())
                            };
                            Ok(Mount::Bind {
                                source: src.to_string(),
                                target: t.to_string(),
                                read_only,
                                bind: Some(BindOptions {
                                    selinux: pick(&["z", "Z"]),
                                    propagation: pick(PROPAGATIONS),
                                    create_host_path: true,
                                }),
                            })
                        } else {
                            Ok(Mount::Named {
                                name: src.to_string(),
                                target: t.to_string(),
                                read_only,
                                volume: Some(opts.contains(&"nocopy")),
                            })
                        }
                    }
                    _ => Err(ValueError::Volume(s.to_string())),
                }
            }
            Volume::Long(l) => {
                let read_only = l.read_only.unwrap_or(false);
                match (l.kind.as_deref().unwrap_or("volume"), &l.source) {
                    ("bind", Some(src)) => Ok(Mount::Bind {
                        source: src.clone(),
                        target: l.target.clone(),
                        read_only,
                        bind: l.bind.as_ref().map(BindLong::options).transpose()?,
                    }),
                    ("bind", None) => Err(ValueError::BindWithoutSource(l.target.clone())),
                    ("volume", Some(src)) => Ok(Mount::Named {
                        name: src.clone(),
                        target: l.target.clone(),
                        read_only,
                        volume: l.volume.as_ref().map(|v| v.nocopy.unwrap_or(false)),
                    }),
                    ("volume", None) => Ok(Mount::Anonymous {
                        target: l.target.clone(),
                    }),
                    ("tmpfs", _) => Ok(Mount::Tmpfs {
                        target: l.target.clone(),
                    }),
                    (other, _) => Err(ValueError::MountType(other.to_string())),
                }
            }
        }
    }
}

impl BindLong {
    /// The options, their values checked as Compose's schema checks them.
    fn options(&self) -> Result<BindOptions, ValueError> {
        if let Some(s) = self.selinux.as_deref().filter(|s| !matches!(*s, "z" | "Z")) {
            return Err(ValueError::BindOption(format!(
                "selinux: {s:?} (it is z or Z)"
            )));
        }
        if let Some(p) = self
            .propagation
            .as_deref()
            .filter(|p| !PROPAGATIONS.contains(p))
        {
            return Err(ValueError::BindOption(format!(
                "propagation: {p:?} (it is one of {})",
                PROPAGATIONS.join(", ")
            )));
        }
        Ok(BindOptions {
            selinux: self.selinux.clone(),
            propagation: self.propagation.clone(),
            create_host_path: self.create_host_path.unwrap_or(false),
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct NetworkAttach {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
    #[serde(default)]
    pub interface_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ServiceNetworks {
    List(Vec<String>),
    Map(IndexMap<String, Option<NetworkAttach>>),
}

impl ServiceNetworks {
    /// The aliases the service has on network `net`.
    pub fn aliases_on(&self, net: &str) -> Vec<String> {
        match self {
            ServiceNetworks::List(_) => Vec::new(),
            ServiceNetworks::Map(m) => m
                .get(net)
                .cloned()
                .flatten()
                .map(|a| a.aliases)
                .unwrap_or_default(),
        }
    }

    /// How the service attaches to network `net`: aliases and static addresses.
    pub fn attach(&self, net: &str) -> NetworkAttach {
        match self {
            ServiceNetworks::List(_) => NetworkAttach::default(),
            ServiceNetworks::Map(m) => m.get(net).cloned().flatten().unwrap_or_default(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        match self {
            ServiceNetworks::List(l) => l.clone(),
            ServiceNetworks::Map(m) => m.keys().cloned().collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Limits {
    #[serde(default)]
    pub memory: Option<Scalar>,
    #[serde(default)]
    pub cpus: Option<Scalar>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Resources {
    #[serde(default)]
    pub limits: Option<Limits>,
    #[serde(default)]
    pub reservations: Option<Reservations>,
}

/// `deploy.resources.reservations`: the memory reservation and device requests reach the
/// engine; a CPU reservation only matters to a scheduler (Compose does not apply it).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Reservations {
    #[serde(default)]
    pub memory: Option<Scalar>,
    #[serde(default)]
    pub cpus: Option<Scalar>,
    #[serde(default)]
    pub devices: Vec<DeviceRequest>,
}

/// A request for devices (GPUs) the engine's device drivers provide.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct DeviceRequest {
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub driver: Option<String>,
    /// A number, or `all` (-1).
    #[serde(default)]
    pub count: Option<Scalar>,
    #[serde(default)]
    pub device_ids: Vec<String>,
    #[serde(default)]
    pub options: Option<KeyValues>,
}

impl DeviceRequest {
    /// The count as the engine takes it: `all` is -1; none given is all, unless devices
    /// are named.
    pub fn count(&self) -> Result<Option<i64>, ValueError> {
        match &self.count {
            None if self.device_ids.is_empty() => Ok(Some(-1)),
            None => Ok(None),
            Some(c) if c.text() == "all" => Ok(Some(-1)),
            Some(c) => c
                .text()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ValueError::DeviceCount(c.text())),
        }
    }
}

/// A lifecycle hook: a command run in the service's container after it starts
/// (`post_start`) or before it stops (`pre_stop`).
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Hook {
    #[serde(default)]
    pub command: Option<StringOrList>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub environment: Option<KeyValues>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub privileged: Option<bool>,
}

/// `gpus:`: `all`, or a list of device requests (capability `gpu` implied).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Gpus {
    All(String),
    List(Vec<DeviceRequest>),
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Deploy {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub restart_policy: Option<DeployRestart>,
}

/// `deploy.restart_policy`: it wins over `restart:`, as Compose applies it.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct DeployRestart {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub max_attempts: Option<i64>,
    #[serde(default)]
    pub delay: Option<Scalar>,
    #[serde(default)]
    pub window: Option<Scalar>,
}

/// One service. Keys outside this struct are reported as warnings by the loader.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Service {
    #[serde(default)]
    pub build: Option<Build>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub command: Option<StringOrList>,
    #[serde(default)]
    pub entrypoint: Option<StringOrList>,
    #[serde(default)]
    pub environment: Option<KeyValues>,
    #[serde(default)]
    pub env_file: Option<EnvFiles>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<Scalar>,
    #[serde(default)]
    pub depends_on: Option<DependsOn>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<Scalar>,
    #[serde(default)]
    pub labels: Option<KeyValues>,
    #[serde(default)]
    pub networks: Option<ServiceNetworks>,
    #[serde(default)]
    pub container_name: Option<String>,
    #[serde(default)]
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub mem_limit: Option<Scalar>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub scale: Option<i64>,
    #[serde(default)]
    pub gpus: Option<Gpus>,
    #[serde(default)]
    pub post_start: Vec<Hook>,
    #[serde(default)]
    pub pre_stop: Vec<Hook>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub userns_mode: Option<String>,
    #[serde(default)]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub runtime: Option<String>,
    // Keys the policy refuses (some values of them) unless --allow-unsafe.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    #[serde(default)]
    pub devices: Vec<Scalar>,
    #[serde(default)]
    pub network_mode: Option<String>,
    #[serde(default)]
    pub pid: Option<String>,
    #[serde(default)]
    pub ipc: Option<String>,
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub tty: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub stdin_open: Option<bool>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub init: Option<bool>,
    #[serde(default)]
    pub stop_grace_period: Option<String>,
    /// The service runs only when one of these profiles is active (none: always).
    #[serde(default)]
    pub profiles: Vec<String>,
    /// `/path` or `/path:options`.
    #[serde(default)]
    pub tmpfs: Option<StringOrList>,
    #[serde(default)]
    pub extra_hosts: Option<KeyValues>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub shm_size: Option<Scalar>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(default)]
    pub sysctls: Option<KeyValues>,
    /// `service` or `service:alias`: the service, reachable from this one under the alias too.
    #[serde(default)]
    pub links: Vec<String>,
    /// `service[:ro|:rw]` or `container:name[:ro|:rw]`: that container's volumes, mounted here too.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub dns: Option<StringOrList>,
    #[serde(default)]
    pub dns_search: Option<StringOrList>,
    #[serde(default)]
    pub dns_opt: Vec<String>,
    #[serde(default)]
    pub group_add: Vec<Scalar>,
    #[serde(default)]
    pub domainname: Option<String>,
    #[serde(default)]
    pub logging: Option<Logging>,
    /// Accepted: masgen builds what has a `build:` and uses a local image or pulls it.
    #[serde(default)]
    pub pull_policy: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    /// Files from the top-level `secrets:`, mounted at /run/secrets/<name>.
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    /// Files from the top-level `configs:`, mounted at /<name>.
    #[serde(default)]
    pub configs: Vec<FileRef>,
}

/// `logging:`: Docker's log driver and its options.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Logging {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub options: Option<KeyValues>,
}

/// A service's use of a top-level secret or config: its name, or where it goes and how.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum FileRef {
    Name(String),
    Long {
        source: String,
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        uid: Option<Scalar>,
        #[serde(default)]
        gid: Option<Scalar>,
        #[serde(default)]
        mode: Option<Scalar>,
    },
}

/// A top-level secret or config: a file, an environment variable or (configs) inline content.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct TopFile {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub external: Option<serde_json::Value>,
}

/// A build's `ssh`: `default` or `id=path` entries, or a mapping of id to path.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SshKeys {
    List(Vec<String>),
    Map(IndexMap<String, Option<String>>),
}

impl SshKeys {
    /// (id, the agent socket or key file; None: `SSH_AUTH_SOCK`'s agent)
    pub fn entries(&self) -> Vec<(String, Option<String>)> {
        let path = |p: Option<&str>| {
            p.map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        };
        match self {
            SshKeys::List(items) => items
                .iter()
                .map(|i| match i.split_once('=') {
                    Some((id, p)) => (id.trim().to_string(), path(Some(p))),
                    None => (i.trim().to_string(), None),
                })
                .collect(),
            SshKeys::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), path(v.as_deref())))
                .collect(),
        }
    }
}

/// A `mode` as written.
pub type Mode = Scalar;

impl FileRef {
    /// Its `target`, `uid`, `gid` and `mode`, as written (None in the short form).
    #[allow(clippy::type_complexity)]
    pub fn parts(
        &self,
    ) -> (
        Option<String>,
        Option<Scalar>,
        Option<Scalar>,
        Option<Scalar>,
    ) {
        match self {
            FileRef::Name(_) => (None, None, None, None),
            FileRef::Long {
                target,
                uid,
                gid,
                mode,
                ..
            } => (target.clone(), uid.clone(), gid.clone(), mode.clone()),
        }
    }

    pub fn source(&self) -> &str {
        match self {
            FileRef::Name(n) => n,
            FileRef::Long { source, .. } => source,
        }
    }
}

/// A file `mode:` as written: `0440` and `"0440"` are octal (YAML reads the former as 440
/// or as 288, both handled), decimal otherwise.
pub(crate) fn file_mode(m: &Scalar) -> Result<u32, ValueError> {
    let t = m.text();
    let digits = t.strip_prefix("0o").unwrap_or(&t);
    let octal = digits.len() > 1 && digits.starts_with('0')
        || digits.chars().all(|c| ('0'..='7').contains(&c));
    let mode = if octal {
        u32::from_str_radix(digits, 8)
    } else {
        digits.parse()
    }
    .map_err(|_| ValueError::Mode(t.clone()))?;
    if mode > 0o7777 {
        return Err(ValueError::Mode(t));
    }
    Ok(mode)
}

/// `nofile: 65535`, or `nofile: {soft: 1024, hard: 65535}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Ulimit {
    Single(i64),
    Pair { soft: i64, hard: i64 },
}

impl Ulimit {
    /// (soft, hard).
    pub fn limits(&self) -> (i64, i64) {
        match self {
            Ulimit::Single(n) => (*n, *n),
            Ulimit::Pair { soft, hard } => (*soft, *hard),
        }
    }
}

/// Keys of a service masgen understands.
pub const SERVICE_KEYS: &[&str] = &[
    "scale",
    "post_start",
    "pre_stop",
    "gpus",
    "pids_limit",
    "userns_mode",
    "mac_address",
    "runtime",
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "depends_on",
    "healthcheck",
    "restart",
    "volumes",
    "working_dir",
    "user",
    "labels",
    "networks",
    "container_name",
    "deploy",
    "mem_limit",
    "privileged",
    "cap_add",
    "cap_drop",
    "devices",
    "network_mode",
    "pid",
    "ipc",
    "security_opt",
    "tty",
    "stdin_open",
    "hostname",
    "init",
    "stop_grace_period",
    "profiles",
    "tmpfs",
    "extra_hosts",
    "read_only",
    "shm_size",
    "stop_signal",
    "ulimits",
    "sysctls",
    "secrets",
    "configs",
    "links",
    "dns",
    "dns_search",
    "dns_opt",
    "group_add",
    "domainname",
    "logging",
    "pull_policy",
    "platform",
    "volumes_from",
    "extends",
];

/// Keys of a long-form `build:` masgen understands.
pub const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "tags",
    "network",
    "shm_size",
    "extra_hosts",
    "no_cache",
    "pull",
    "cache_from",
    "secrets",
    "ssh",
    "additional_contexts",
];

/// Top-level keys masgen understands (`x-*` extensions are always allowed).
pub const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "volumes", "networks", "secrets", "configs",
];

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct TopVolume {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub external: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Option<KeyValues>,
    #[serde(default)]
    pub labels: Option<KeyValues>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct TopNetwork {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub external: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: Option<KeyValues>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub internal: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub attachable: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enable_ipv6: Option<bool>,
    #[serde(default)]
    pub ipam: Option<Ipam>,
    #[serde(default)]
    pub labels: Option<KeyValues>,
}

/// A network's IP address management: its driver and its pools.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Ipam {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamPool>,
    #[serde(default)]
    pub options: Option<KeyValues>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct IpamPool {
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub ip_range: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub aux_addresses: Option<KeyValues>,
}

/// `KeyValues` as a map (a key with no value maps to "").
pub fn key_map(kv: &Option<KeyValues>) -> std::collections::BTreeMap<String, String> {
    kv.as_ref()
        .map(|kv| {
            kv.pairs()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// A compose file.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
pub struct Compose {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub services: IndexMap<String, Service>,
    #[serde(default)]
    pub volumes: IndexMap<String, Option<TopVolume>>,
    #[serde(default)]
    pub networks: IndexMap<String, Option<TopNetwork>>,
    #[serde(default)]
    pub secrets: IndexMap<String, Option<TopFile>>,
    #[serde(default)]
    pub configs: IndexMap<String, Option<TopFile>>,
}

impl Compose {
    /// The networks its services join, in first use (a service with a `network_mode`
    /// joins none): Compose creates and prints only these.
    pub fn used_networks(&self) -> Vec<String> {
        let mut used: Vec<String> = Vec::new();
        for svc in self.services.values() {
            if svc.network_mode.as_deref().is_some_and(|m| !m.is_empty()) {
                continue;
            }
            for n in svc.network_names() {
                if !used.contains(&n) {
                    used.push(n);
                }
            }
        }
        used
    }

    /// The named volumes its services mount: Compose creates and prints only these.
    pub fn used_volumes(&self) -> Vec<String> {
        self.services
            .values()
            .flat_map(|s| s.volumes.iter())
            .filter_map(|v| match v.mount() {
                Ok(Mount::Named { name, .. }) => Some(name),
                _ => None,
            })
            .collect()
    }
}

impl Service {
    /// The networks the service joins, as compose names (`default` when it names none).
    pub fn network_names(&self) -> Vec<String> {
        match &self.networks {
            Some(n) if !n.names().is_empty() => n.names(),
            _ => vec!["default".into()],
        }
    }

    /// Every device request: `deploy.resources.reservations.devices`, then `gpus`
    /// (`all`, or each entry with the capability `gpu`).
    pub fn device_requests(&self) -> Vec<DeviceRequest> {
        let mut out: Vec<DeviceRequest> = self
            .deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.reservations.as_ref())
            .map(|r| r.devices.clone())
            .unwrap_or_default();
        match &self.gpus {
            Some(Gpus::All(_)) => out.push(DeviceRequest {
                capabilities: vec!["gpu".into()],
                count: Some(Scalar::Str("all".into())),
                ..Default::default()
            }),
            Some(Gpus::List(list)) => out.extend(list.iter().cloned().map(|mut d| {
                if d.capabilities.is_empty() {
                    d.capabilities = vec!["gpu".into()];
                }
                d
            })),
            None => {}
        }
        out
    }

    /// How many containers run it: `scale`, else `deploy.replicas`, else 1 (validation
    /// refuses two different values, as Compose does).
    pub fn replicas(&self) -> i64 {
        self.scale
            .or_else(|| self.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1)
    }

    /// The process limit: `pids_limit`, else `deploy.resources.limits.pids` (validation
    /// refuses two different values, as Compose does).
    pub fn pids(&self) -> Option<i64> {
        self.pids_limit.or_else(|| {
            self.deploy
                .as_ref()
                .and_then(|d| d.resources.as_ref())
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.pids)
        })
    }

    /// The restart policy the engine gets, as Compose decides it: `deploy.restart_policy`
    /// when there is one (its `condition`: `none`/`no` or none given restarts never, `any`
    /// is `always`; `max_attempts` the retries), else `restart:`. None: never restarted.
    pub fn restart_policy(&self) -> Option<(String, Option<i64>)> {
        match self.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
            Some(p) => match p.condition.as_deref() {
                None | Some("" | "none" | "no") => None,
                Some("any" | "always") => Some(("always".into(), None)),
                Some(c) => Some((c.to_string(), p.max_attempts)),
            },
            None => self
                .restart
                .as_deref()
                .and_then(|r| parse_restart(r).ok().flatten())
                .map(|(name, retries)| (name.to_string(), retries)),
        }
    }

    /// The memory limit from deploy.resources.limits or mem_limit, as written.
    pub fn memory_limit(&self) -> Option<String> {
        self.deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.memory.as_ref())
            .or(self.mem_limit.as_ref())
            .map(Scalar::text)
    }

    /// `extra_hosts` as Docker takes them: `host:ip` (compose also writes `host=ip`, and a map).
    pub fn extra_hosts(&self) -> Vec<String> {
        host_entries(&self.extra_hosts)
    }

    /// `devices` entries as (host path, container path, cgroup permissions).
    pub fn device_mappings(&self) -> Vec<(String, String, String)> {
        self.devices
            .iter()
            .map(|d| {
                let t = d.text();
                let parts: Vec<&str> = t.splitn(3, ':').collect();
                let host = parts[0].to_string();
                let inside = parts
                    .get(1)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| host.clone());
                (host, inside, parts.get(2).unwrap_or(&"rwm").to_string())
            })
            .collect()
    }

    /// `tmpfs` entries as (target, mount options).
    pub fn tmpfs_mounts(&self) -> Vec<(String, String)> {
        self.tmpfs
            .iter()
            .flat_map(|t| t.list())
            .map(|t| match t.split_once(':') {
                Some((path, opts)) => (path.to_string(), opts.to_string()),
                None => (t, String::new()),
            })
            .collect()
    }

    /// `links` as (service, alias): `db` is (db, db), `db:database` is (db, database).
    pub fn link_pairs(&self) -> Vec<(String, String)> {
        self.links
            .iter()
            .map(|l| match l.split_once(':') {
                Some((s, a)) => (s.trim().to_string(), a.trim().to_string()),
                None => (l.trim().to_string(), l.trim().to_string()),
            })
            .collect()
    }

    /// `volumes_from` as (service, or None for a `container:` entry, the source, mode).
    pub fn volumes_from_entries(&self) -> Vec<(Option<String>, String, Option<String>)> {
        self.volumes_from
            .iter()
            .map(|v| {
                let (container, rest) = match v.strip_prefix("container:") {
                    Some(rest) => (true, rest),
                    None => (false, v.as_str()),
                };
                let (name, mode) = match rest.rsplit_once(':') {
                    Some((n, m)) if m == "ro" || m == "rw" => (n.to_string(), Some(m.to_string())),
                    _ => (rest.to_string(), None),
                };
                ((!container).then(|| name.clone()), name, mode)
            })
            .collect()
    }

    /// The services whose containers must exist before this one is created: those it takes
    /// volumes from, and those whose namespaces it joins (`network_mode`/`pid`/`ipc: service:X`).
    pub fn created_after(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .volumes_from_entries()
            .into_iter()
            .filter_map(|(service, _, _)| service)
            .collect();
        for mode in [&self.network_mode, &self.pid, &self.ipc]
            .into_iter()
            .flatten()
        {
            if let Some(x) = mode.strip_prefix("service:") {
                out.push(x.trim().to_string());
            }
        }
        out.dedup();
        out
    }

    pub fn cpu_limit(&self) -> Option<f64> {
        let l = self.deploy.as_ref()?.resources.as_ref()?.limits.as_ref()?;
        l.cpus.as_ref()?.text().parse().ok()
    }
}

/// `extra_hosts` entries as Docker takes them: `host:ip` (compose also writes `host=ip`,
/// and a map).
pub fn host_entries(hosts: &Option<KeyValues>) -> Vec<String> {
    match hosts {
        None => Vec::new(),
        Some(KeyValues::List(items)) => items
            .iter()
            .map(|i| {
                i.split_once('=')
                    .map(|(h, ip)| format!("{h}:{ip}"))
                    .unwrap_or_else(|| i.clone())
            })
            .collect(),
        Some(KeyValues::Map(m)) => m
            .iter()
            .map(|(h, ip)| format!("{h}:{}", ip.as_ref().map(Scalar::text).unwrap_or_default()))
            .collect(),
    }
}

/// A compose `restart:` value as Docker's restart policy name and retry limit; None for `no`.
pub fn parse_restart(s: &str) -> Result<Option<(&'static str, Option<i64>)>, ValueError> {
    match s.trim() {
        "no" | "" => Ok(None),
        "always" => Ok(Some(("always", None))),
        "unless-stopped" => Ok(Some(("unless-stopped", None))),
        "on-failure" => Ok(Some(("on-failure", None))),
        other => match other
            .strip_prefix("on-failure:")
            .map(|n| n.trim().parse::<i64>())
        {
            Some(Ok(n)) if n >= 0 => Ok(Some(("on-failure", Some(n)))),
            _ => Err(ValueError::Restart(other.to_string())),
        },
    }
}

/// Parse a byte size: `512m`, `1g`, `256M`, `1024k`, `1000000` (bytes).
pub fn parse_bytes(s: &str) -> Result<i64, ValueError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| ValueError::Size(s.to_string()))?;
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_read_as_compose_reads_them() {
        use std::time::Duration;
        let day = 86400;
        assert_eq!(parse_pull_policy("if_not_present"), Ok(PullPolicy::Missing));
        assert_eq!(
            parse_pull_policy("refresh"),
            Ok(PullPolicy::Refresh(Duration::from_secs(day)))
        );
        assert_eq!(
            parse_pull_policy("weekly"),
            Ok(PullPolicy::Refresh(Duration::from_secs(7 * day)))
        );
        assert_eq!(
            parse_pull_policy("every_1w2d3h4m5s"),
            Ok(PullPolicy::Refresh(Duration::from_secs(
                9 * day + 3 * 3600 + 4 * 60 + 5
            )))
        );
        for bad in ["every_", "every_12", "every_x", "every_1y", "sometimes"] {
            assert!(parse_pull_policy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extra_hosts_tmpfs_and_ulimits_in_every_form() {
        let svc = |yaml: &str| -> Service {
            serde_json::from_value(crate::compose::yaml::parse(yaml).unwrap().value).unwrap()
        };
        let s = svc("extra_hosts: [\"a=10.0.0.1\", \"b:10.0.0.2\", \"c=::1\"]\ntmpfs: /run\nulimits: {nofile: {soft: 1, hard: 2}, nproc: 3}\n");
        assert_eq!(s.extra_hosts(), vec!["a:10.0.0.1", "b:10.0.0.2", "c:::1"]);
        assert_eq!(s.tmpfs_mounts(), vec![("/run".to_string(), String::new())]);
        assert_eq!(
            s.ulimits.values().map(Ulimit::limits).collect::<Vec<_>>(),
            vec![(1, 2), (3, 3)]
        );
        let s = svc("extra_hosts: {a: 10.0.0.1}\ntmpfs: [\"/x:size=1m,mode=1777\"]\n");
        assert_eq!(s.extra_hosts(), vec!["a:10.0.0.1"]);
        assert_eq!(
            s.tmpfs_mounts(),
            vec![("/x".to_string(), "size=1m,mode=1777".to_string())]
        );
    }

    #[test]
    fn short_and_long_ports() {
        let p = |s: &str| Port::Short(Scalar::Str(s.into())).mappings().unwrap();
        assert_eq!(
            p("80")[0],
            PortMapping {
                host_ip: None,
                host_port: None,
                host_port_end: None,
                container_port: 80,
                protocol: "tcp".into()
            }
        );
        assert_eq!(p("8080:80")[0].host_port, Some(8080));
        assert_eq!(
            p("127.0.0.1:8080:80/udp")[0],
            PortMapping {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(8080),
                host_port_end: None,
                container_port: 80,
                protocol: "udp".into()
            }
        );
        assert_eq!(p("9000-9002:9000-9002").len(), 3);
        assert_eq!(p("[::1]:81:80")[0].host_ip.as_deref(), Some("::1"));
        let long = Port::Long(PortLong {
            target: Scalar::Int(80),
            published: Some(Scalar::Str("8081".into())),
            host_ip: None,
            protocol: None,
        });
        assert_eq!(long.mappings().unwrap()[0].host_port, Some(8081));
        assert!(Port::Short(Scalar::Str("x:y".into())).mappings().is_err());
    }

    #[test]
    fn shell_words_split_like_a_shell() {
        assert_eq!(
            shell_words(r#"sh -c "echo 'hi there'" x\ y"#),
            vec!["sh", "-c", "echo 'hi there'", "x y"]
        );
    }

    #[test]
    fn volumes_short_and_long() {
        assert_eq!(
            Volume::Short("data:/var/lib".into()).mount().unwrap(),
            Mount::Named {
                name: "data".into(),
                target: "/var/lib".into(),
                read_only: false,
                volume: Some(false)
            }
        );
        assert_eq!(
            Volume::Short("./conf:/etc/x:ro".into()).mount().unwrap(),
            Mount::Bind {
                source: "./conf".into(),
                target: "/etc/x".into(),
                read_only: true,
                bind: Some(BindOptions {
                    create_host_path: true,
                    ..Default::default()
                })
            }
        );
        assert_eq!(
            Volume::Short("./d:/d:ro,Z,rslave,unknown".into())
                .mount()
                .unwrap(),
            Mount::Bind {
                source: "./d".into(),
                target: "/d".into(),
                read_only: true,
                bind: Some(BindOptions {
                    selinux: Some("Z".into()),
                    propagation: Some("rslave".into()),
                    create_host_path: true,
                })
            }
        );
        let long = |bind: &str| {
            let text = format!("{{type: bind, source: ./d, target: /d, bind: {bind}}}");
            let v: VolumeLong =
                serde_json::from_value(crate::compose::yaml::parse(&text).unwrap().value).unwrap();
            Volume::Long(v).mount()
        };
        assert!(matches!(
            long("{selinux: q}"),
            Err(ValueError::BindOption(_))
        ));
        assert!(matches!(
            long("{propagation: sideways}"),
            Err(ValueError::BindOption(_))
        ));
        let Ok(Mount::Bind { bind: Some(b), .. }) = long("{selinux: z}") else {
            panic!("a long bind with options");
        };
        assert!(
            b.needs_mount_api(),
            "no create_host_path: through the Mount API, as Compose"
        );
        assert_eq!(
            Volume::Short("/data".into()).mount().unwrap(),
            Mount::Anonymous {
                target: "/data".into()
            }
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
    }
}
