//! What can go wrong in a runtime itself (never the system's fault): each variant names
//! the operation and keeps the runtime's own words, and says what to do.

/// A runtime that cannot do what verification asks: the environment's failure (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{runtime} is not reachable at {endpoint} ({source_of}): {message}. {hint}")]
    Unreachable {
        runtime: &'static str,
        endpoint: String,
        source_of: String,
        message: String,
        hint: String,
    },
    #[error("network '{name}' is declared external, and no network named {runtime_name} exists: create it (docker network create {runtime_name}) or drop external:")]
    ExternalNetworkMissing { name: String, runtime_name: String },
    #[error("volume '{name}' is declared external, and no volume named {runtime_name} exists: create it (docker volume create {runtime_name}) or drop external:")]
    ExternalVolumeMissing { name: String, runtime_name: String },
    #[error("cannot list the networks named {network}: {message}")]
    ListNetworks { network: String, message: String },
    #[error("cannot create network {network}: {message}")]
    CreateNetwork { network: String, message: String },
    #[error("cannot create volume {volume}: {message}")]
    CreateVolume { volume: String, message: String },
    #[error("cannot create container {container}: {message}")]
    CreateContainer { container: String, message: String },
    #[error("service '{service}' asks for devices this engine cannot give ({message}): run it on a machine with the device and its driver (for GPUs, the NVIDIA Container Toolkit), or remove the device request")]
    DevicesUnavailable { service: String, message: String },
    #[error("cannot create container {container}: {key} needs Docker Engine API {needs}, and this engine speaks {api}: upgrade the engine, or remove {key}")]
    EngineTooOld {
        container: String,
        key: String,
        needs: String,
        api: String,
    },
    #[error("cannot create container {container}: the engine has no runtime '{runtime}' (it has {}): install and register it in the daemon's configuration, or remove runtime:", available.join(", "))]
    UnknownRuntime {
        container: String,
        runtime: String,
        available: Vec<String>,
    },
    #[error("cannot create container {container}: a container with this name exists and was not made by masgen: remove or rename it")]
    NameTaken { container: String },
    #[error("project {project} is already running, kept by an earlier masgen run ({}): remove it with `masgen down {dir}` first, or verify without --keep", running.join(", "))]
    AlreadyKept {
        project: String,
        running: Vec<String>,
        dir: String,
    },
    #[error("service {service} uses {what}, which needs BuildKit, and this engine builds with the classic builder (DOCKER_BUILDKIT=0): unset DOCKER_BUILDKIT (or set it to 1) and run masgen again")]
    NeedsBuildKit { service: String, what: &'static str },
    #[error("cannot give container {container} its restart policy: {message}")]
    SetRestart { container: String, message: String },
    #[error(
        "{service} could not start: a host port it publishes is already in use on this machine ({message}). Stop what holds it, or publish another host port in the compose file; verification without --execute publishes on free ports of 127.0.0.1 and never collides"
    )]
    HostPortInUse { service: String, message: String },
}
