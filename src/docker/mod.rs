//! Docker through the Engine API (bollard): build contexts, builds, containers,
//! readiness, logs, teardown. Knows nothing of models or prompts.

pub mod auth;
pub mod build;
pub mod buildkit;
pub mod context;
pub mod contexts;
pub mod engine;
mod engine_runtime;
pub mod health;
pub mod logs;
pub mod offline;
pub mod patch;
pub mod pull;
pub mod run;
pub mod session;
pub mod teardown;

pub use crate::runtime::scope::{MANAGED_LABEL, PROJECT_LABEL, RUN_LABEL, SERVICE_LABEL};
pub use crate::runtime::Runtime;
pub use crate::runtime::RuntimeError;
pub use engine::{DockerRuntime, Engine};
