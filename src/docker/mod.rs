//! Docker through the Engine API (bollard): build contexts, builds, containers,
//! readiness, logs, teardown. Knows nothing of models or prompts.

pub mod auth;
pub mod build;
pub mod buildkit;
pub mod context;
pub mod contexts;
pub mod engine;
pub mod health;
pub mod logs;
pub mod offline;
pub mod patch;
pub mod pull;
pub mod run;
pub mod runtime;
pub mod scope;
pub mod session;
pub mod teardown;

pub use engine::{DockerError, Engine};
pub use runtime::Runtime;

/// Label on everything masgen creates.
pub const MANAGED_LABEL: &str = "io.masgen.managed";
/// Label naming the run that created an object.
pub const RUN_LABEL: &str = "io.masgen.run";
/// Compose's own labels, so `docker compose ls/ps` and other tools see the project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
