//! The connection to the Docker daemon, and Docker errors.

use std::time::Duration;

use bollard::Docker;

/// What went wrong with Docker itself (not with the system being verified).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("Docker is not reachable at {endpoint}: {message}. Start the daemon (e.g. `sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running engine (unix:///path/to/docker.sock or tcp://host:2375)")]
    Unreachable { endpoint: String, message: String },
    #[error("Docker failed to {op} {target}: {message}")]
    Operation { op: &'static str, target: String, message: String },
}

impl DockerError {
    pub fn op(op: &'static str, target: impl Into<String>, e: impl std::fmt::Display) -> Self {
        DockerError::Operation { op, target: target.into(), message: e.to_string() }
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
    /// Connect (honouring DOCKER_HOST for unix:// and tcp://), agree on an API version no
    /// newer than the daemon's, and ping.
    pub async fn connect() -> Result<Engine, DockerError> {
        let endpoint = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let unreachable = |e: &dyn std::fmt::Display| DockerError::Unreachable { endpoint: endpoint.clone(), message: e.to_string() };
        // Builds upload their context before the daemon answers: give requests room.
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(&e))?.with_timeout(Duration::from_secs(900));
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
        let buildkit = if std::env::var("DOCKER_BUILDKIT").is_ok_and(|b| b == "0" || b.eq_ignore_ascii_case("false")) || (v.major_version, v.minor_version) < (1, 39) {
            None
        } else {
            let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|t| !t.is_empty());
            super::buildkit::Transport::from_docker_host(&endpoint, tls)
        };
        Ok(Engine { docker, endpoint, buildkit, buildkit_refused: std::sync::OnceLock::new() })
    }

    /// The API version agreed with the daemon, as `1.41`.
    pub fn api_version(&self) -> String {
        let v = self.docker.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    pub async fn image_exists(&self, name: &str) -> bool {
        self.docker.inspect_image(name).await.is_ok()
    }

    /// The local image's ID (`sha256:...`), when the image exists.
    pub async fn image_id(&self, name: &str) -> Option<String> {
        self.docker.inspect_image(name).await.ok().and_then(|i| i.id)
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

    /// Try to pull `image`. No registry may be reachable: the error says why.
    pub async fn pull(&self, image: &str) -> Result<(), String> {
        use futures_util::StreamExt;
        let (repo, tag) = split_image(image);
        let opts = bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(repo).tag(tag).build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        let pulling = async {
            while let Some(item) = stream.next().await {
                item.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        match tokio::time::timeout(Duration::from_secs(120), pulling).await {
            Ok(r) => r,
            Err(_) => Err("the pull did not finish within 120 s".into()),
        }
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
    fn image_names() {
        assert_eq!(split_image("busybox"), ("busybox", "latest"));
        assert_eq!(split_image("python:3.11-slim"), ("python", "3.11-slim"));
        assert_eq!(split_image("reg:5000/x/y"), ("reg:5000/x/y", "latest"));
        assert_eq!(split_image("reg:5000/x/y:1"), ("reg:5000/x/y", "1"));
    }
}
