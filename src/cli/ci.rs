//! `masgen ci [DIR]`: write the workflow that runs the system and its smoke checks.

use super::*;
use crate::checks::ci::{target, workflows, write, CiError, CiOptions};

impl From<CiError> for Fatal {
    fn from(e: CiError) -> Self {
        Fatal::new(exit::USAGE, e)
    }
}

pub(super) fn ci_cmd(a: &args::CiArgs, ui: &Ui) -> Result<i32, Fatal> {
    project_folder(&a.dir, &a.project)?;
    let opts = CiOptions {
        load: a.project.load_options(),
        gitlab: a.gitlab,
        with_masgen: a.with_masgen,
        force: a.force,
    };
    let t = target(&a.dir, &opts.load)?;
    if t.checks.is_empty() {
        ui.events.warn("the project has no smoke checks: the workflow builds, starts and waits for the system only (masgen smoke writes checks)");
    }
    let files = workflows(&t, &opts);
    write(&a.dir, &files, a.force)?;
    if ui.json {
        let paths: Vec<&str> = files.iter().map(|w| w.path.as_str()).collect();
        println!(
            "{}",
            serde_json::json!({"event": "ci_written", "files": paths, "checks": t.checks, "ready_when": t.ready_when})
        );
        return Ok(exit::OK);
    }
    for w in &files {
        println!(
            "{} wrote {}",
            ui.paint("1;32", "✓"),
            a.dir.join(&w.path).display()
        );
    }
    if a.with_masgen {
        println!("    the job installs masgen from the repository variable MASGEN_GIT (set it to masgen's git URL) and runs masgen verify");
        return Ok(exit::OK);
    }
    println!("    COMPOSE_FILE={}", t.compose_file);
    println!("    build, start, wait until ready: {}", t.ready_when);
    for c in &t.checks {
        println!("    smoke check: docker compose --profile smoke run --rm --no-deps -T {c}");
    }
    println!("    JUnit in smoke-results/junit.xml, logs on failure, always down --volumes");
    Ok(exit::OK)
}
