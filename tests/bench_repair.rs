//! Benchmark (run by scripts/bench-repair.sh, not a correctness test) on the bundled demo:
//! (a) input tokens of a repair round against resending the whole system, as the original
//! tool did; (b) time from a one-service fix to healthy again against rebuilding and
//! restarting everything. Prints a table.

mod common;

use std::time::Instant;

use common::docker::*;
use common::*;

fn demo_reply(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo").join(name)).unwrap()
}

/// Tokens estimated the same way for both sides: about 4 characters a token.
fn tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

fn verify_secs(dir: &std::path::Path, extra: &[&str]) -> f64 {
    let t = Instant::now();
    let o = masgen().arg("verify").arg(dir).args(["--stability", "0", "--settle", "1"]).args(extra).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    t.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark: run scripts/bench-repair.sh"]
fn bench_repair() {
    assert!(docker_available("bench_repair"));
    let (first, fix) = (demo_reply("001-generate.txt"), demo_reply("002-repair.txt"));
    let fake = FakeAnthropic::with_handler(move |_, n| Reply::text(if n == 0 { &first } else { &fix }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("mt-bench-repair-{}", std::process::id()));
    let project = out.file_name().unwrap().to_string_lossy().to_string();
    let _g = Cleanup(project.clone());
    let spec = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo_spec.txt")).unwrap();
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
    let files: usize = first_files(&reqs[0]).iter().map(|(p, c)| p.len() + c.len() + 30).sum();
    let evidence = std::fs::read_to_string(out.join(".masgen/rounds/001/diagnostics.txt")).unwrap().len();
    let whole = system + spec.len() + files + evidence;
    // With prompt caching the stable system prompt is read from the cache, not billed as input.
    let masgen_uncached = tokens(system + repair_user);
    let masgen_input = tokens(repair_user);
    let original = tokens(whole);

    // (b) A one-service fix: only that service's context changes, to content no builder
    // cache has seen.
    std::fs::write(out.join("worker/worker.py"), std::fs::read_to_string(out.join("worker/worker.py")).unwrap() + &format!("# tuned {:?}\n", std::time::SystemTime::now())).unwrap();
    let one = verify_secs(&out, &[]);
    // Everything: every image rebuilt from its Dockerfile with no cache, every service restarted.
    let all = verify_secs(&out, &["--no-cache"]);

    println!("\n| measure | masgen | original approach | ratio | target |");
    println!("|---|---:|---:|---:|---:|");
    println!("| repair round input tokens (system prompt cached) | {masgen_input} | {original} | {:.2}x | <= 0.30x |", masgen_input as f64 / original as f64);
    println!("| repair round input tokens (no cache) | {masgen_uncached} | {original} | {:.2}x | |", masgen_uncached as f64 / original as f64);
    println!("| one-service fix to healthy (s) | {one:.2} | {all:.2} | {:.2}x | <= 0.50x |", one / all);
    println!("\ntokens estimated as characters / 4 on both sides; the original approach resends the system prompt, spec, every file and the same evidence");
}

/// The files of the generation reply.
fn first_files(_req: &Recorded) -> Vec<(String, String)> {
    let reply = demo_reply("001-generate.txt");
    masgen::protocol::parse_reply(&reply).files().map(|(p, c)| (p.as_str().to_string(), c.to_string())).collect()
}
