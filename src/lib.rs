//! masgen: turn a plain-English description of a multi-service system into a running,
//! health-checked docker compose system.
//!
//! The library never prints: it emits [`Event`]s. ARCHITECTURE.md (at the repository's
//! root) is the map: the layers, what each may import, and where things live.

pub mod atomic;
pub mod checks;
pub mod cli;
pub mod compose;
pub mod diagnose;
pub mod docker;
pub mod events;
pub mod generate;
pub mod html;
pub mod llm;
pub mod plan;
pub mod protocol;
pub mod repair;
pub mod report;
pub mod runtime;
pub mod spec;
pub mod usage;
pub mod verdict;
pub mod verify;
pub mod workspace;

pub use events::{Event, Events};
pub use generate::{GenerateError, Generator, GeneratorBuilder, Options, Outcome};
pub use repair::{repair_loop, RepairError, RepairOptions, RepairReport};
pub use spec::{load_spec_from_file, resolve_spec_arg, SpecError};
pub use verify::{VerifyError, VerifyOptions, VerifyReport};

/// Verify the system in `dir` on the Docker engine the docker CLI would use (see
/// [`verify::verify`] to verify on another runtime).
pub async fn verify(
    dir: impl AsRef<std::path::Path>,
    opts: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    verify::verify(&docker::DockerRuntime::new(), dir.as_ref(), opts).await
}
