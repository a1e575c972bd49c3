//! The command line: arguments become options once, the library runs, events are
//! rendered, and every error maps to one exit code.

pub mod args;
mod ci;
mod config;
mod down;
mod fatal;
mod generate;
mod options;
pub mod render;
mod repair;
mod report;
mod smoke;
mod summary;
mod verify;

use std::path::Path;
use std::time::Duration;

pub use args::{with_default_subcommand, Cli, Command};

use crate::compose::model::{parse_bytes, PullPolicy};
use crate::events::Events;
use crate::generate::{GenerateError, Generator, Options};
use crate::llm::RetryPolicy;
use crate::protocol::UnmetKind;
use crate::repair::{repair_loop, LoopOutcome, RepairError, RepairOptions, RepairReport};
use crate::report::{junit, RunReport};
use crate::runtime::health::HealthState;
use crate::runtime::{Connect, Runtime};
use crate::verdict::Verdict;
use crate::verify::{verify, RuntimeVerifier, VerifyError, VerifyOptions, VerifyReport};
use crate::workspace::WorkspaceError;

use ci::*;
use config::*;
use down::*;
use fatal::*;
pub use fatal::{exit, Fatal};
use generate::*;
use options::*;
use repair::*;
use report::*;
use smoke::*;
use summary::*;
use verify::*;

/// How a run shows itself, decided once: where events go, JSON lines or people's text,
/// and colour.
struct Ui {
    pub events: Events,
    pub json: bool,
    pub color: bool,
    /// When the run started, and every event since with its time (the report's timeline).
    pub clock: crate::events::Clock,
    pub record: crate::events::Record,
}

impl Ui {
    /// `text` in colour `code`, when colour is on.
    pub fn paint(&self, code: &str, text: &str) -> String {
        render::paint(self.color, code, text)
    }
}

/// Run the parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let color = render::use_color(cli.color);
    let clock = crate::events::Clock::new();
    let (events, bar) = if cli.json {
        (render::json_events(clock.clone()), None)
    } else {
        let (e, b) = render::human_events(color);
        (e, Some(b))
    };
    let record = crate::events::Record::default();
    let ui = Ui {
        events: events.recorded(clock.clone(), record.clone()),
        json: cli.json,
        color,
        clock,
        record,
    };
    let result = match cli.command {
        Command::Generate(a) => generate(a, &ui).await,
        Command::Verify(a) => verify_cmd(a, &ui).await,
        Command::Repair(a) => repair_cmd(a, &ui).await,
        Command::Down(a) => down(&a, &ui).await,
        Command::Config(a) => config_cmd(&a),
        Command::Smoke(a) => smoke_cmd(a, &ui).await,
        Command::Ci(a) => ci_cmd(&a, &ui),
        Command::Report(a) => report_cmd(&a, &ui),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match result {
        Ok(code) => code,
        Err(f) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "exit_code": f.code, "message": f.message})
                );
            }
            eprintln!("{} {}", render::paint(color, "1;31", "error:"), f.message);
            f.code
        }
    }
}
