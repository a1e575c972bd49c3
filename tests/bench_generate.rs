//! Benchmark (run by scripts/bench-generate.sh, not a correctness test): staged
//! generation of a 12-file system against the fake server with 1 s latency per call, at
//! concurrency 1 (the original tool's sequential behaviour) and 4. Prints a table.

mod common;

use std::time::{Duration, Instant};

use common::*;

const MANIFEST: &str = r#"[
 {"path":"docker-compose.yml","purpose":"compose","group":"infrastructure"},{"path":".env","purpose":"settings","group":"infrastructure"},
 {"path":"a/Dockerfile","purpose":"","group":"a"},{"path":"a/app.py","purpose":"","group":"a"},
 {"path":"b/Dockerfile","purpose":"","group":"b"},{"path":"b/app.py","purpose":"","group":"b"},
 {"path":"c/Dockerfile","purpose":"","group":"c"},{"path":"c/app.py","purpose":"","group":"c"},
 {"path":"d/Dockerfile","purpose":"","group":"d"},{"path":"d/app.py","purpose":"","group":"d"},
 {"path":"README.md","purpose":"","group":"docs"},{"path":"start.sh","purpose":"","group":"docs"}]"#;

fn run(args: &[&str]) -> (Duration, usize) {
    let fake = FakeAnthropic::with_handler(|r, _| {
        let p = r.last_user_text();
        let reply = if p.contains("Reply with its manifest only") {
            MANIFEST.to_string()
        } else {
            let files = p.split("Write exactly these files").nth(1).unwrap_or("");
            files
                .lines()
                .filter_map(|l| l.strip_prefix("- "))
                .map(|l| {
                    let path = l.split(' ').next().unwrap();
                    let body = if path == "docker-compose.yml" { "services:\n  a:\n    build: ./a\n  b:\n    build: ./b\n  c:\n    build: ./c\n  d:\n    build: ./d\n" } else { "x\n" };
                    format!("<file path=\"{path}\">\n{body}</file>\n")
                })
                .collect()
        };
        Reply::text(&reply).delayed(Duration::from_secs(1))
    });
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut all = vec!["--staged"];
    all.extend_from_slice(args);
    let o = generate_against(&fake, &dir.path().join("s"), &all);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        all_files(&dir.path().join("s"))
            .iter()
            .filter(|p| !p.to_string_lossy().contains(".masgen"))
            .count(),
        12
    );
    (took, fake.requests().len())
}

#[test]
#[ignore = "benchmark: run scripts/bench-generate.sh"]
fn bench_staged_concurrency() {
    // The original tool: one batch per group, one request at a time.
    let (seq, n1) = run(&["--jobs", "1", "--batch-per-group"]);
    let (grp, n2) = run(&["--jobs", "4", "--batch-per-group"]);
    let (par, n4) = run(&["--jobs", "4"]);
    println!("\n| plan | concurrency | requests | wall time (s) | speed-up |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| one batch per group (original tool) | 1 | {n1} | {:.2} | 1.00x |",
        seq.as_secs_f64()
    );
    println!(
        "| one batch per group | 4 | {n2} | {:.2} | {:.2}x |",
        grp.as_secs_f64(),
        seq.as_secs_f64() / grp.as_secs_f64()
    );
    println!(
        "| groups packed into <= jobs batches (default) | 4 | {n4} | {:.2} | {:.2}x |",
        par.as_secs_f64(),
        seq.as_secs_f64() / par.as_secs_f64()
    );
    println!(
        "\nspeed-up of the default at 4 over the original: {:.2}x (target: at least 3x)",
        seq.as_secs_f64() / par.as_secs_f64()
    );
}
