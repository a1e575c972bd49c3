//! The connection to the Docker daemon, and why it cannot be had.

use std::time::Duration;

use bollard::Docker;

use crate::runtime::RuntimeError;

/// What to do when the daemon cannot be reached, by why.
pub fn unreachable_hint(message: &str) -> &'static str {
    if message.to_ascii_lowercase().contains("permission denied") {
        "The daemon runs, but this user may not use its socket: add the user to the docker group (`sudo usermod -aG docker $USER`, then log in again), or run masgen as root"
    } else {
        "Start the daemon (e.g. `sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running engine (unix:///path/to/docker.sock or tcp://host:2375)"
    }
}

/// Where the daemon is, found the way the docker CLI finds it: DOCKER_HOST; else the CLI's
/// current context (DOCKER_CONTEXT, or `currentContext` in the CLI's config.json under
/// DOCKER_CONFIG or ~/.docker), which is how Docker Desktop, colima and rootless setups
/// name their socket; else /var/run/docker.sock, or the rootless daemon's
/// $XDG_RUNTIME_DIR/docker.sock when only that one exists. Returns the endpoint and where
/// it came from.
pub fn resolve_endpoint(env: &dyn Fn(&str) -> Option<String>) -> (String, String) {
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return (host, "DOCKER_HOST".into());
    }
    let config_dir = env("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".docker")));
    let context = env("DOCKER_CONTEXT").filter(|c| !c.is_empty()).or_else(|| {
        let text = std::fs::read_to_string(config_dir.as_ref()?.join("config.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["currentContext"]
            .as_str()
            .map(str::to_string)
    });
    if let (Some(name), Some(dir)) = (context.filter(|c| c != "default"), config_dir.as_ref()) {
        if let Some(host) = context_host(&dir.join("contexts").join("meta"), &name) {
            return (host, format!("docker context '{name}'"));
        }
    }
    let system = "/var/run/docker.sock";
    if !std::path::Path::new(system).exists() {
        if let Some(rootless) = env("XDG_RUNTIME_DIR")
            .map(|d| std::path::Path::new(&d).join("docker.sock"))
            .filter(|p| p.exists())
        {
            return (
                format!("unix://{}", rootless.display()),
                "the rootless daemon's socket".into(),
            );
        }
    }
    (format!("unix://{system}"), "the default socket".into())
}

/// The docker endpoint of context `name`: each context's `meta.json` names it (the folder
/// is a hash of the name, which reading every folder avoids computing).
fn context_host(meta: &std::path::Path, name: &str) -> Option<String> {
    for entry in std::fs::read_dir(meta).ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("meta.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if v["Name"] == name {
            return v["Endpoints"]["docker"]["Host"]
                .as_str()
                .map(str::to_string);
        }
    }
    None
}

/// The daemon at `endpoint` (found through `source_of`) could not be reached.
pub fn unreachable(endpoint: &str, source_of: &str, e: &dyn std::fmt::Display) -> RuntimeError {
    let message = e.to_string();
    RuntimeError::Unreachable {
        runtime: "Docker",
        endpoint: endpoint.to_string(),
        source_of: source_of.to_string(),
        hint: unreachable_hint(&message).to_string(),
        message,
    }
}

/// The Docker engine the docker CLI would use, connected when first needed (see
/// [`crate::runtime::Connect`]): the runtime masgen verifies on.
#[derive(Default)]
pub struct DockerRuntime {
    engine: tokio::sync::OnceCell<Engine>,
}

impl DockerRuntime {
    pub fn new() -> DockerRuntime {
        DockerRuntime::default()
    }
}

impl crate::runtime::Connect for DockerRuntime {
    type Runtime = Engine;
    async fn connect(&self) -> Result<&Engine, RuntimeError> {
        self.engine.get_or_try_init(Engine::connect).await
    }
}

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub endpoint: String,
    /// How builds reach BuildKit, when they can (see `buildkit.rs`); None: classic builder.
    pub buildkit: Option<super::buildkit::Transport>,
    /// Why the daemon refused a BuildKit build, the first time it did (that build and the
    /// ones after it fall back to the classic builder).
    pub buildkit_refused: std::sync::OnceLock<String>,
}

impl Engine {
    /// Connect to the daemon [`resolve_endpoint`] finds (unix:// or tcp://), agree on an API version no
    /// newer than the daemon's, and ping.
    pub async fn connect() -> Result<Engine, RuntimeError> {
        let (endpoint, source_of) = resolve_endpoint(&|k| std::env::var(k).ok());
        let unreachable = |e: &dyn std::fmt::Display| unreachable(&endpoint, &source_of, e);
        // Builds upload their context before the daemon answers: give requests room.
        let docker = Docker::connect_with_host(&endpoint)
            .map_err(|e| unreachable(&e))?
            .with_timeout(Duration::from_secs(900));
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|e| unreachable(&e))?;
        tokio::time::timeout(Duration::from_secs(10), docker.ping())
            .await
            .map_err(|_| unreachable(&"no answer within 10 s"))?
            .map_err(|e| unreachable(&e))?;
        // BuildKit came with API 1.39 (Docker 18.09). DOCKER_BUILDKIT=0 asks for the classic
        // builder, as it does for the docker CLI.
        let v = docker.client_version();
        let buildkit = if std::env::var("DOCKER_BUILDKIT")
            .is_ok_and(|b| b == "0" || b.eq_ignore_ascii_case("false"))
            || (v.major_version, v.minor_version) < (1, 39)
        {
            None
        } else {
            let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|t| !t.is_empty());
            super::buildkit::Transport::from_docker_host(&endpoint, tls)
        };
        Ok(Engine {
            docker,
            endpoint,
            buildkit,
            buildkit_refused: std::sync::OnceLock::new(),
        })
    }

    /// Whether the API version agreed with the daemon is `major.minor` or newer.
    pub fn api_at_least(&self, major: usize, minor: usize) -> bool {
        let v = self.docker.client_version();
        (v.major_version, v.minor_version) >= (major, minor)
    }

    /// The API version agreed with the daemon, as `1.41`.
    pub fn api_version(&self) -> String {
        let v = self.docker.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    pub async fn image_exists(&self, name: &str) -> bool {
        self.docker.inspect_image(name).await.is_ok()
    }

    /// The local image's ID and when it was last tagged (pulled, built or tagged), when the
    /// image exists; the time is None when the daemon does not know it.
    pub async fn image_tagged(
        &self,
        name: &str,
    ) -> Option<(String, Option<std::time::SystemTime>)> {
        let i = self.docker.inspect_image(name).await.ok()?;
        let tagged = i
            .metadata
            .and_then(|m| m.last_tag_time)
            .and_then(|t| humantime::parse_rfc3339_weak(&t).ok());
        Some((i.id?, tagged))
    }

    /// `repo:tag` of every local image, sorted.
    pub async fn local_images(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .unwrap_or_default()
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter(|t| t != "<none>:<none>" && !t.starts_with("masgen/"))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// `repo[:tag]` -> (repo, tag), defaulting the tag to `latest`; a registry port is not a tag.
pub fn split_image(image: &str) -> (&str, &str) {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// Normalise an image reference for comparison: add `:latest` when no tag is given.
pub fn with_tag(image: &str) -> String {
    let (repo, tag) = split_image(image);
    format!("{repo}:{tag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_found_the_way_the_docker_cli_finds_it() {
        let home = tempfile::tempdir().unwrap();
        let docker = home.path().join(".docker");
        let meta = docker.join("contexts/meta/0123abcd");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(meta.join("meta.json"), r#"{"Name":"colima","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///home/u/.colima/default/docker.sock","SkipTLSVerify":false}}}"#).unwrap();
        let h = home.path().to_string_lossy().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        // No context chosen: the default socket (this machine has one).
        assert_eq!(
            resolve_endpoint(&env(vec![("HOME", h.clone())])).1,
            "the default socket"
        );
        std::fs::write(
            docker.join("config.json"),
            r#"{"auths":{},"currentContext":"colima"}"#,
        )
        .unwrap();
        assert_eq!(
            resolve_endpoint(&env(vec![("HOME", h.clone())])),
            (
                "unix:///home/u/.colima/default/docker.sock".to_string(),
                "docker context 'colima'".to_string()
            )
        );
        // DOCKER_CONTEXT wins over the config file, DOCKER_HOST over both; `default` and an
        // unknown context fall through to the socket.
        assert_eq!(
            resolve_endpoint(&env(vec![
                ("HOME", h.clone()),
                ("DOCKER_CONTEXT", "default".into())
            ]))
            .1,
            "the default socket"
        );
        assert_eq!(
            resolve_endpoint(&env(vec![
                ("HOME", h.clone()),
                ("DOCKER_CONTEXT", "nope".into())
            ]))
            .1,
            "the default socket"
        );
        assert_eq!(
            resolve_endpoint(&env(vec![
                ("HOME", h.clone()),
                ("DOCKER_HOST", "tcp://10.0.0.1:2375".into())
            ]))
            .0,
            "tcp://10.0.0.1:2375"
        );
        // DOCKER_CONFIG moves the whole folder.
        assert_eq!(
            resolve_endpoint(&env(vec![(
                "DOCKER_CONFIG",
                docker.to_string_lossy().to_string()
            )]))
            .1,
            "docker context 'colima'"
        );
    }

    #[test]
    fn a_refused_socket_says_how_to_get_access() {
        let e = unreachable(
            "unix:///var/run/docker.sock",
            "the default socket",
            &"Permission denied (os error 13)",
        );
        let text = e.to_string();
        assert!(
            text.contains("(the default socket)") && text.contains("sudo usermod -aG docker $USER"),
            "{text}"
        );
    }

    #[test]
    fn image_names() {
        assert_eq!(split_image("busybox"), ("busybox", "latest"));
        assert_eq!(split_image("python:3.11-slim"), ("python", "3.11-slim"));
        assert_eq!(split_image("reg:5000/x/y"), ("reg:5000/x/y", "latest"));
        assert_eq!(split_image("reg:5000/x/y:1"), ("reg:5000/x/y", "1"));
    }
}
