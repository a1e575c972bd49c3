//! Smoke checks on the real daemon: a healthy-but-wrong system is caught by its check and
//! repaired through the fake model; a check that judged the system is never changed to
//! pass; a broken check may be fixed and is listed; a hanging check times out and leaves
//! nothing; `verify` and `--no-smoke` on a project of checks.

mod common;

use std::path::Path;

use common::docker::*;
use common::*;

/// Every file of fixture `name` as `<file>` blocks (a model's first draft).
fn as_reply(name: &str, extra: &str) -> String {
    let root = fixture(name);
    let mut out = String::from("Here is the system.\n");
    for f in all_files(&root) {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let body = std::fs::read_to_string(&f).unwrap();
        out.push_str(&format!("<file path=\"{rel}\">\n{body}</file>\n"));
    }
    out.push_str("<file path=\"README.md\">\n# items\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up --build\n</file>\n");
    out.push_str(extra);
    out
}

const SUBSTITUTED: &str = "<unmet requirement=\"Grafana dashboard\" kind=\"substituted\">a static page served by busybox httpd: no Grafana image on this machine</unmet>\n";

/// The repair that makes /items answer: the list moves to the path the spec names.
const FIX_PATH: &str = "The list is served at /item; the spec says /items.\n<delete path=\"api/www/item\"/>\n<file path=\"api/www/items\">\napple\npear\n</file>\n";

/// A repair that weakens the check instead of fixing the system.
const WEAKEN: &str = "<edit path=\"smoke/check.sh\">\n<<<<<<< SEARCH\nbody=$(wget -q -O- http://api:8080/items 2>&1)\n=======\nbody=apple\n>>>>>>> REPLACE\n</edit>\n";

fn generate(fake: &FakeAnthropic, out: &Path, extra: &[&str]) -> std::process::Output {
    let spec = "an items api: GET /items lists the items; and a Grafana dashboard";
    generate_verified(fake, spec, out, extra)
}

#[test]
fn a_healthy_but_wrong_system_fails_its_check_and_one_repair_fixes_it() {
    if !docker_available("smoke repair") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|r, n| {
        let prompt = r.last_user_text();
        match n {
            0 => Reply::text(&as_reply("smoke_wrong", SUBSTITUTED)),
            // The fix comes only when the check's words and the api's log line were sent.
            _ if prompt.contains("not ok - GET /items lists apple")
                && prompt.contains("HTTP/1.1 404 Not Found")
                && prompt.contains("api wrote while the check ran")
                && prompt.contains("response:404") =>
            {
                Reply::text(FIX_PATH)
            }
            _ => Reply::text("I cannot tell what is wrong."),
        }
    });
    let (_d, out, _g) = unique_output("smoke-fix");
    let junit = out.with_extension("junit.xml");
    let o = generate(&fake, &out, &["--junit", junit.to_str().unwrap()]);
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    assert_eq!(fake.requests().len(), 2, "one repair round");
    let first = fake.requests()[1].last_user_text();
    assert!(
        first.contains("=== service: smoke | phase: smoke ==="),
        "{first}"
    );
    assert!(
        shown.contains("smoke: not ok GET /items lists apple"),
        "{shown}"
    );
    assert!(shown.contains("2 smoke check(s) passed"), "{shown}");
    assert!(
        shown.contains("! substituted: Grafana dashboard (a static page served by busybox httpd"),
        "{shown}"
    );
    let r = run_report(&out);
    assert_eq!(r["repair"]["rounds"][0]["diagnostics"][0]["phase"], "smoke");
    let smoke = &r["verify"]["smoke"][0];
    assert_eq!(smoke["verdict"], "passed");
    assert_eq!(smoke["points"].as_array().unwrap().len(), 2);
    assert_eq!(r["verify"]["unmet"][0]["kind"], "substituted");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("classname=\"mt-smoke-fix"), "{xml}");
    assert!(xml.contains("name=\"GET /items lists apple\""), "{xml}");
    assert!(
        xml.contains("name=\"Grafana dashboard\"") && xml.contains("substituted: a static page"),
        "{xml}"
    );
    assert_nothing_left(&project_of(&out));
}

#[test]
fn a_repair_that_weakens_a_check_is_refused_and_the_check_is_unchanged() {
    if !docker_available("smoke integrity") {
        return;
    }
    let fake = FakeAnthropic::with_handler(|_, n| match n {
        0 => Reply::text(&as_reply("smoke_wrong", "")),
        _ => Reply::text(WEAKEN),
    });
    let (_d, out, _g) = unique_output("smoke-weak");
    let o = generate(&fake, &out, &["--max-rounds", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let check = std::fs::read_to_string(out.join("smoke/check.sh")).unwrap();
    let original = std::fs::read_to_string(fixture("smoke_wrong").join("smoke/check.sh")).unwrap();
    assert_eq!(check, original, "the check is byte-identical");
    let reqs = fake.requests();
    assert!(reqs.len() >= 3, "the refusal was sent back: {}", reqs.len());
    let told = reqs[2].last_user_text();
    assert!(
        told.contains("smoke/check.sh") && told.contains("never changed to make it pass"),
        "{told}"
    );
    assert!(text(&o).contains("smoke check 'smoke'"), "{}", text(&o));
    assert_nothing_left(&project_of(&out));
}

#[test]
fn a_crashing_check_may_be_fixed_and_the_change_is_listed() {
    if !docker_available("smoke broken check") {
        return;
    }
    let right = as_reply("smoke_wrong", "")
        .replace(
            "<file path=\"api/www/item\">",
            "<file path=\"api/www/items\">",
        )
        .replace("fail=0\n", "set -e\nnosuchtool --version\nfail=0\n");
    let fix = "The check calls a program its image lacks.\n<edit path=\"smoke/check.sh\">\n<<<<<<< SEARCH\nset -e\nnosuchtool --version\n=======\n>>>>>>> REPLACE\n</edit>\n";
    let fake = FakeAnthropic::with_handler(move |r, n| match n {
        0 => Reply::text(&right),
        _ if r.last_user_text().contains("smoke check is broken") => Reply::text(fix),
        _ => Reply::text("no idea"),
    });
    let (_d, out, _g) = unique_output("smoke-crash");
    let o = generate(&fake, &out, &[]);
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("round 1 changed smoke check smoke: smoke/check.sh"),
        "{shown}"
    );
    let r = run_report(&out);
    let edit = &r["repair"]["rounds"][0]["check_edits"][0];
    assert_eq!(edit["path"], "smoke/check.sh");
    assert!(
        edit["diff"]
            .as_str()
            .unwrap()
            .contains("-nosuchtool --version"),
        "{edit}"
    );
    assert_nothing_left(&project_of(&out));
}

const HANGS: &str = "services:\n  api:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n  smoke:\n    image: busybox:latest\n    profiles: [smoke]\n    command: [\"sh\", \"-c\", \"echo 1..1; sleep 600\"]\n    depends_on: [api]\n";

#[test]
fn a_hanging_check_times_out_and_leaves_nothing() {
    if !docker_available("smoke timeout") {
        return;
    }
    let (_d, out, guard) = unique_output("smoke-hang");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("docker-compose.yml"), HANGS).unwrap();
    let started = std::time::Instant::now();
    let o = masgen()
        .args([
            "verify",
            "--settle",
            "1",
            "--stability",
            "0",
            "--smoke-timeout",
            "3",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("smoke check failed: did not finish within 3s (--smoke-timeout)"),
        "{shown}"
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "it did not wait for the sleep"
    );
    assert_nothing_left(&guard.0);
}

#[test]
fn verify_runs_the_checks_of_a_broken_and_a_fixed_project_and_no_smoke_skips_them() {
    if !docker_available("smoke verify") {
        return;
    }
    let (d, path) = copy_fixture("smoke_wrong");
    let project = path.file_name().unwrap().to_string_lossy().to_string();
    let _guard = Cleanup(project.clone());
    let junit = d.path().join("j.xml");
    let o = masgen()
        .args([
            "verify",
            "--stability",
            "1",
            "--junit",
            junit.to_str().unwrap(),
        ])
        .arg(&path)
        .output()
        .unwrap();
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "✗ healthy, but does not do what was asked (smoke checks: 1 passed, 1 failed)"
        ),
        "{shown}"
    );
    assert!(shown.contains("smoke [smoke] smoke check failed: 1 of 2 check(s) failed: not ok 2 - GET /items lists apple"), "{shown}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains("<system-out>"),
        "a passed check keeps its output: {xml}"
    );
    let no_smoke = masgen()
        .args(["verify", "--stability", "1", "--no-smoke"])
        .arg(&path)
        .output()
        .unwrap();
    let quiet = text(&no_smoke);
    assert_eq!(no_smoke.status.code(), Some(0), "{quiet}");
    assert!(
        quiet.contains("the smoke checks (profile smoke) are not run: --no-smoke"),
        "{quiet}"
    );
    std::fs::rename(path.join("api/www/item"), path.join("api/www/items")).unwrap();
    let fixed = masgen()
        .args(["verify", "--stability", "1"])
        .arg(&path)
        .output()
        .unwrap();
    let shown = text(&fixed);
    assert_eq!(fixed.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("✓ healthy: 1 service(s), 2 smoke check(s) passed"),
        "{shown}"
    );
    assert_nothing_left(&project);
}

fn project_of(out: &Path) -> String {
    out.file_name().unwrap().to_string_lossy().to_string()
}
