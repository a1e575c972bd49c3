//! Benchmark (run by scripts/bench-repair.sh, not a correctness test) on the bundled demo:
//! (a) input tokens of a repair round against resending the whole system, as the original
//! tool did; (b) time from a one-service fix to healthy again against rebuilding and
//! restarting everything. Prints a table.

mod common;

use std::time::Instant;

use common::docker::*;
use common::*;

fn demo_reply(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/demo")
            .join(name),
    )
    .unwrap()
}

/// Tokens estimated the same way for both sides: about 4 characters a token.
fn tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// One `masgen verify`: seconds until every service was healthy (from the report: preflight,
/// builds, starts), and until the process ended (teardown included).
fn verify_secs(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (f64, f64) {
    let report = dir.join(".masgen/bench-verify.json");
    let t = Instant::now();
    let o = masgen()
        .envs(env.iter().copied())
        .arg("verify")
        .arg(dir)
        .args(["--stability", "0", "--settle", "1", "--report"])
        .arg(&report)
        .args(extra)
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let timings = if r["timings"].is_object() {
        &r["timings"]
    } else {
        &r["verify"]["timings"]
    };
    let healthy = ["preflight_secs", "build_secs", "start_secs"]
        .iter()
        .map(|k| timings[*k].as_f64().unwrap())
        .sum();
    (healthy, wall)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: run scripts/bench-repair.sh"]
fn bench_repair() {
    assert!(docker_available("bench_repair"));
    // The demo's recorded replies in turn: the draft, the crash's fix, the smoke check's fix.
    let replies = ["001-generate.txt", "002-repair.txt", "003-repair.txt"].map(demo_reply);
    let fake = FakeAnthropic::with_handler(move |_, n| Reply::text(&replies[n.min(2)]));
    let dir = tempfile::tempdir().unwrap();
    let out = dir
        .path()
        .join(format!("mt-bench-repair-{}", std::process::id()));
    let project = out.file_name().unwrap().to_string_lossy().to_string();
    let _g = Cleanup(project.clone());
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo_spec.txt"),
    )
    .unwrap();
    let o = masgen()
        .arg(spec.trim())
        .arg("-o")
        .arg(&out)
        .args(["-k", TEST_KEY, "--base-url", &fake.url, "--stability", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // (a) What the repair round sent, against the whole system resent with the same evidence.
    let reqs = fake.requests();
    let system = reqs[1].body["system"][0]["text"].as_str().unwrap().len();
    let repair_user = reqs[1].last_user_text().len();
    let files: usize = first_files(&reqs[0])
        .iter()
        .map(|(p, c)| p.len() + c.len() + 30)
        .sum();
    let evidence = std::fs::read_to_string(out.join(".masgen/rounds/001/diagnostics.txt"))
        .unwrap()
        .len();
    let whole = system + spec.len() + files + evidence;
    // With prompt caching the stable system prompt is read from the cache, not billed as input.
    let masgen_uncached = tokens(system + repair_user);
    let masgen_input = tokens(repair_user);
    let original = tokens(whole);

    // (b) A one-service fix: only that service's context changes, to content no builder
    // cache has seen. Against it: every image rebuilt from its Dockerfile with no cache and
    // every service restarted. Five runs each, medians.
    let demo = fix_vs_everything(&out);

    // (b') The same system as services with third-party dependencies are usually built: each
    // Python service installs a pinned requirements.txt before its code is copied. Needs PyPI.
    let deps_dir = dir.path().join(format!("{project}-deps"));
    let _g2 = Cleanup(format!("{project}-deps"));
    copy_dir(&out, &deps_dir);
    for service in ["worker", "producer", "ledger", "router", "monitor"] {
        let df = deps_dir.join(service).join("Dockerfile");
        let text = std::fs::read_to_string(&df).unwrap();
        let with_deps = text.replacen("WORKDIR /app\n", "WORKDIR /app\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n", 1);
        assert_ne!(
            text, with_deps,
            "{service}'s Dockerfile has no WORKDIR /app line"
        );
        std::fs::write(df, with_deps).unwrap();
        std::fs::write(
            deps_dir.join(service).join("requirements.txt"),
            "PyYAML==6.0.2\n",
        )
        .unwrap();
    }
    let warm = masgen()
        .arg("verify")
        .arg(&deps_dir)
        .args(["--stability", "0", "--settle", "1"])
        .output()
        .unwrap();
    let deps = if warm.status.code() == Some(0) {
        Some(fix_vs_everything(&deps_dir))
    } else {
        eprintln!(
            "SKIPPED the row with dependencies: its first build failed (PyPI unreachable?):\n{}",
            text(&warm)
        );
        None
    };

    println!("\n| measure | masgen | original approach | ratio | target |");
    println!("|---|---:|---:|---:|---:|");
    println!("| repair round input tokens (system prompt cached) | {masgen_input} | {original} | {:.2}x | <= 0.30x |", masgen_input as f64 / original as f64);
    println!(
        "| repair round input tokens (no cache) | {masgen_uncached} | {original} | {:.2}x | |",
        masgen_uncached as f64 / original as f64
    );
    let (one, built, all) = demo;
    println!(
        "| one-service fix to healthy (s) | {:.2} | {:.2} | {:.2}x | <= 0.50x |",
        one.0,
        all.0,
        one.0 / all.0
    );
    println!(
        "| one-service fix, whole `masgen verify` incl. teardown (s) | {:.2} | {:.2} | {:.2}x | |",
        one.1,
        all.1,
        one.1 / all.1
    );
    println!("| one-service fix to healthy, built by the builder (`MASGEN_PATCH=0`) (s) | {:.2} | {:.2} | {:.2}x | |", built.0, all.0, built.0 / all.0);
    match deps {
        Some((one, _, all)) => {
            println!("| one-service fix to healthy, services installing requirements (s) | {:.2} | {:.2} | {:.2}x | |", one.0, all.0, one.0 / all.0);
        }
        None => println!(
            "| one-service fix to healthy, services installing requirements (s) | skipped | | | |"
        ),
    }
    println!("\ntokens estimated as characters / 4 on both sides; the original approach resends the system prompt, spec, every file and the same evidence");
    println!("times are medians of 5; the fix changes worker/worker.py, which 3 of the other 5 services wait on and which `COPY worker.py .` copies last, so masgen patches it; the original approach rebuilds every image with no cache");
    println!("the requirements row is the demo with `COPY requirements.txt` and `RUN pip install` (PyYAML from PyPI) before each Python service's code");
}

/// Medians of five one-service fixes (worker/worker.py changed), of five such fixes built by
/// the builder instead of patched, and of five full rebuilds: (fix, fix by the builder,
/// everything), each as (to healthy, wall).
fn fix_vs_everything(dir: &std::path::Path) -> ((f64, f64), (f64, f64), (f64, f64)) {
    let (mut one, mut built, mut all) = (Vec::new(), Vec::new(), Vec::new());
    let worker = dir.join("worker/worker.py");
    let tune = || {
        std::fs::write(
            &worker,
            std::fs::read_to_string(&worker).unwrap()
                + &format!("# tuned {:?}\n", std::time::SystemTime::now()),
        )
        .unwrap()
    };
    for _ in 0..5 {
        tune();
        one.push(verify_secs(dir, &[], &[]));
        tune();
        built.push(verify_secs(dir, &[], &[("MASGEN_PATCH", "0")]));
        all.push(verify_secs(dir, &["--no-cache"], &[]));
    }
    let m = |v: &[(f64, f64)]| {
        (
            median(v.iter().map(|t| t.0).collect()),
            median(v.iter().map(|t| t.1).collect()),
        )
    };
    (m(&one), m(&built), m(&all))
}

/// The files of the generation reply.
fn first_files(_req: &Recorded) -> Vec<(String, String)> {
    let reply = demo_reply("001-generate.txt");
    masgen::protocol::parse_reply(&reply)
        .files()
        .map(|(p, c)| (p.as_str().to_string(), c.to_string()))
        .collect()
}
