//! How a run ends: exit codes, the error that ends it (from each layer's error), and
//! Ctrl-C / SIGTERM with what teardown removed.

use super::*;

/// Exit codes (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const UNHEALTHY: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const ENVIRONMENT: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// An error that ends the run: what to print and the exit code.
#[derive(Debug)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    pub(super) fn new(code: i32, message: impl std::fmt::Display) -> Self {
        Fatal {
            code,
            message: message.to_string(),
        }
    }
}

impl From<GenerateError> for Fatal {
    fn from(e: GenerateError) -> Self {
        let code = match &e {
            // The cap holds: not an environment failure, the budget is spent.
            GenerateError::Llm(crate::llm::LlmError::Budget { .. }) => exit::UNHEALTHY,
            GenerateError::Llm(crate::llm::LlmError::TooLarge { .. }) => exit::USAGE,
            GenerateError::Llm(_) | GenerateError::Manifest { .. } => exit::ENVIRONMENT,
            GenerateError::Workspace(w) => workspace_code(w),
            GenerateError::NoFiles { .. } => exit::UNHEALTHY,
            GenerateError::EmptyChange | GenerateError::NoCompose { .. } => exit::USAGE,
        };
        Fatal::new(code, e)
    }
}

pub(super) fn workspace_code(e: &WorkspaceError) -> i32 {
    match e {
        WorkspaceError::ForeignFiles { .. }
        | WorkspaceError::NotADirectory { .. }
        | WorkspaceError::BadState { .. } => exit::USAGE,
        WorkspaceError::Io { .. } => exit::ENVIRONMENT,
    }
}

impl From<VerifyError> for Fatal {
    fn from(e: VerifyError) -> Self {
        let code = match &e {
            VerifyError::Plan(_) => exit::USAGE,
            VerifyError::Runtime(_) | VerifyError::Registry(_) => exit::ENVIRONMENT,
        };
        Fatal::new(code, e)
    }
}

impl From<RepairError> for Fatal {
    fn from(e: RepairError) -> Self {
        match e {
            RepairError::Verify(v) => Fatal::from(v),
            RepairError::Generate(g) => Fatal::from(g),
        }
    }
}

/// Resolves when the user presses Ctrl-C or the process gets SIGTERM.
pub(super) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// After Ctrl-C / SIGTERM: remove what the run of `opts` started, and say so (exit 130).
/// A kept or executed system's named volumes stay, with their data.
pub(super) async fn torn_down_after_interrupt(opts: &VerifyOptions, kept: &str) -> Fatal {
    let rt = runtime();
    let mut left = Vec::new();
    if let Ok(rt) = rt.connect().await {
        let volumes = !(opts.keep || opts.execute);
        left = rt.remove_run(&opts.run_id, volumes).await.left;
    }
    let left: String = left.iter().map(|l| format!("\n  {l}")).collect();
    Fatal::new(
        exit::INTERRUPTED,
        format!(
            "interrupted: containers, networks and volumes of this run were removed; {kept}{left}"
        ),
    )
}
