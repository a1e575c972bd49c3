//! Registry credentials, found as the docker CLI finds them: `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), its `credHelpers` for one registry, else its
//! `credsStore` for all, else its `auths` entries. A helper is the program
//! `docker-credential-<name>`, run with `get` and the server's address on stdin.
//!
//! Credentials go to the engine in headers and nowhere else: [`Credentials`] prints as
//! `Credentials(<registry>)`, never with its secret.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// The key Docker Hub's credentials are stored under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The username a helper returns for an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// Credentials as bollard sends them (`X-Registry-Auth`).
pub fn docker_credentials(c: &Credentials) -> bollard::auth::DockerCredentials {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    bollard::auth::DockerCredentials {
        username: some(&c.username),
        password: some(&c.password),
        identitytoken: some(&c.identity_token),
        serveraddress: some(&c.server),
        ..Default::default()
    }
}

pub use crate::runtime::pull::{registry_of, AuthMap, Credentials};

/// The `X-Registry-Config` header value: base64url of the JSON map registry → credentials.
pub fn config_header(auths: &AuthMap) -> String {
    let map: HashMap<&String, bollard::auth::DockerCredentials> = auths
        .iter()
        .map(|(k, c)| (k, docker_credentials(c)))
        .collect();
    let json = serde_json::to_string(&map).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The key a registry's credentials are stored under in config.json.
pub fn config_key(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry")
    }
}

/// The user's docker config: where credentials come from.
#[derive(Debug, Default)]
pub struct DockerConfig {
    file: ConfigFile,
    /// Where it was read from, for messages.
    pub path: Option<PathBuf>,
}

/// Why credentials could not be found. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// The folder of the docker CLI's config: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")),
    }
}

impl DockerConfig {
    /// Read `config.json`; none there is no credentials, not an error.
    pub fn load() -> Result<DockerConfig, AuthError> {
        let Some(path) = config_dir().map(|d| d.join("config.json")) else {
            return Ok(DockerConfig::default());
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::default())
            }
            Err(e) => return Err(AuthError(format!("cannot read {}: {e}", path.display()))),
        };
        let file = serde_json::from_str(&text).map_err(|e| {
            AuthError(format!(
                "{} is not a docker config file ({e}): fix it or point DOCKER_CONFIG elsewhere",
                path.display()
            ))
        })?;
        Ok(DockerConfig {
            file,
            path: Some(path),
        })
    }

    /// The credentials for `registry` (as [`registry_of`] names it), as the docker CLI
    /// finds them, or None when it has none. A helper that fails is an error, named.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, AuthError> {
        let key = config_key(registry);
        let helper = self
            .file
            .cred_helpers
            .get(&key)
            .or_else(|| self.file.cred_helpers.get(registry))
            .or(self.file.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        let stored = self.stored(&key);
        let Some(helper) = helper else {
            return stored;
        };
        match run_helper(helper, &key)? {
            Some(c) => Ok(Some(c)),
            // As the CLI: a helper that has none leaves what the file itself holds.
            None => stored,
        }
    }

    /// An `auths` entry: under the key itself, else under any key whose host is it
    /// (`https://host/v2/` → `host`).
    fn stored(&self, key: &str) -> Result<Option<Credentials>, AuthError> {
        let found = self.file.auths.get(key).or_else(|| {
            self.file
                .auths
                .iter()
                .find(|(k, _)| hostname(k) == hostname(key))
                .map(|(_, e)| e)
        });
        let Some(entry) = found else { return Ok(None) };
        let mut c = Credentials {
            server: key.to_string(),
            username: entry.username.clone().unwrap_or_default(),
            password: entry.password.clone().unwrap_or_default(),
            identity_token: entry.identitytoken.clone().unwrap_or_default(),
        };
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || {
                AuthError(format!(
                    "the auths entry for {key} in {} is not base64 of user:password: run `docker login {key}` again",
                    self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                ))
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = text.split_once(':').ok_or_else(bad)?;
            c.username = user.to_string();
            c.password = pass.trim_end_matches('\0').to_string();
        }
        if c.username.is_empty() && c.identity_token.is_empty() {
            return Ok(None);
        }
        Ok(Some(c))
    }
}

/// `https://host:port/v1/` → `host:port`, as the CLI compares keys.
fn hostname(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Run `docker-credential-<helper> get` for `server`. "credentials not found" is None.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            AuthError(format!(
                "the docker config names the credential helper {helper:?}, but {program} cannot be run ({e}): install it, or remove it from the config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| AuthError(format!("{program} get: {e}")))?;
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        // What a helper says on failure is its own message, not the secret it guards.
        return Err(AuthError(format!(
            "{program} get failed for {server} ({}): {}",
            out.status,
            said.trim().lines().next().unwrap_or("")
        )));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout).map_err(|_| {
        AuthError(format!(
            "{program} get printed something that is not credentials JSON for {server}"
        ))
    })?;
    let mut c = Credentials {
        server: server.to_string(),
        ..Default::default()
    };
    if reply.username == TOKEN_USERNAME {
        c.identity_token = reply.secret;
    } else {
        c.username = reply.username;
        c.password = reply.secret;
    }
    Ok(Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_read_from_the_reference_as_the_cli_reads_it() {
        assert_eq!(registry_of("postgres:16"), "docker.io");
        assert_eq!(registry_of("library/postgres"), "docker.io");
        assert_eq!(registry_of("team/app:1"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(registry_of("ghcr.io/o/app@sha256:ab"), "ghcr.io");
        assert_eq!(registry_of("index.docker.io/library/x"), "docker.io");
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("ghcr.io"), "ghcr.io");
    }

    fn config(json: &str) -> DockerConfig {
        DockerConfig {
            file: serde_json::from_str(json).unwrap(),
            path: None,
        }
    }

    #[test]
    fn auths_entries_are_decoded_and_matched_by_host() {
        // "u:p:w" — a password may hold a colon.
        let c = config(r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"dTpwOnc="}}}"#);
        let got = c.credentials("reg.example:5000").unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.password.as_str()), ("u", "p:w"));
        assert!(c.credentials("other.example").unwrap().is_none());
        let hub =
            config(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="}}}"#);
        assert_eq!(
            hub.credentials("docker.io").unwrap().unwrap().username,
            "hub"
        );
        let bad = config(r#"{"auths":{"r.example":{"auth":"%%%"}}}"#);
        assert!(bad
            .credentials("r.example")
            .unwrap_err()
            .0
            .contains("docker login r.example"));
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let c = Credentials {
            username: "alice".into(),
            password: "s3cret-pw".into(),
            identity_token: "tok3n".into(),
            server: "r.example".into(),
        };
        let shown = format!("{c:?} {:?}", Some(&c));
        assert!(!shown.contains("s3cret") && !shown.contains("tok3n") && !shown.contains("alice"));
        let header = config_header(&[("r.example".to_string(), c)].into());
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(header)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["r.example"]["password"], "s3cret-pw");
    }

    #[test]
    fn a_missing_helper_is_named_with_what_to_do() {
        let c = config(r#"{"credsStore":"masgen-test-none"}"#);
        let e = c.credentials("docker.io").unwrap_err();
        assert!(e.0.contains("docker-credential-masgen-test-none"), "{e}");
    }
}
