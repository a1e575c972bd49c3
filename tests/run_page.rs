//! The run page (`--html`, `masgen report`) as a person sees it: the replayed demo (a
//! crash, a repair round, a failing smoke check, another round, healthy) rendered and
//! opened in headless Chromium; bad input refused before the run; every JSON event timed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker::*;
use common::*;

/// Debian's chromium, as scripts/test.sh installs it; skipped loudly without it, a failure
/// under MASGEN_REQUIRE_DOCKER=1.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|c| {
        Command::new("which")
            .arg(c)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    });
    if found.is_none() {
        if std::env::var("MASGEN_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("{test}: MASGEN_REQUIRE_DOCKER=1 but chromium is not installed (scripts/test.sh installs it)");
        }
        eprintln!("SKIPPED {test}: chromium is not installed (scripts/test.sh installs it)");
    }
    found
}

fn headless(chromium: &Path, args: &[&str], page: &Path) -> std::process::Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

/// The replayed demo, verified, with its page and summary written.
fn demo(dir: &Path, page: &Path, summary: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    masgen()
        .arg(format!(
            "@{}",
            root.join("examples/demo_spec.txt").display()
        ))
        .arg("--replay")
        .arg(root.join("fixtures/demo"))
        .arg("-o")
        .arg(dir)
        .arg("--html")
        .arg(page)
        .arg("--summary-md")
        .arg(summary)
        .output()
        .unwrap()
}

#[test]
fn the_demo_s_page_shows_its_services_rounds_and_verdict_in_chromium() {
    let test = "the_demo_s_page_shows_its_services_rounds_and_verdict_in_chromium";
    if !docker_available(test) {
        return;
    }
    let Some(chromium) = chromium(test) else {
        return;
    };
    let (tmp, dir, cleanup) = unique_output("page");
    let (page, summary) = (tmp.path().join("run.html"), tmp.path().join("summary.md"));
    let out = demo(&dir, &page, &summary);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Run page: {}", page.display())),
        "{}",
        text(&out)
    );
    let dom = headless(&chromium, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    for service in [
        "status", "worker", "producer", "ledger", "router", "monitor",
    ] {
        assert!(
            dom.contains(&format!(
                "<tr class=\"service\" data-service=\"{service}\">"
            )),
            "no row for {service}"
        );
        assert!(
            dom.contains(&format!("data-row=\"{service}\"")),
            "no timeline row for {service}"
        );
    }
    assert!(
        dom.contains("<h1 id=\"verdict\" class=\"ok\">✓ healthy</h1>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"del\">-import yaml</span>"),
        "round 1's diff"
    );
    assert!(dom.contains("ModuleNotFoundError"), "round 1's commentary");
    assert!(dom.contains("data-round=\"2\""), "round 2");
    let shot = tmp.path().join("run.png");
    let o = headless(
        &chromium,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        &page,
    );
    assert!(o.status.success(), "{}", text(&o));
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(size > 50_000, "a screenshot of {size} bytes is blank");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## ✅ masgen generate: healthy\n"), "{md}");
    assert!(md.contains("| worker | ready | healthy |"), "{md}");
    // The same page, after the fact, from the system's folder.
    let again = tmp.path().join("again.html");
    let o = masgen()
        .arg("report")
        .arg(&dir)
        .arg("--html")
        .arg(&again)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&page).unwrap()
    );
    if let Ok(to) = std::env::var("MASGEN_SCREENSHOT_TO") {
        std::fs::copy(&shot, to).unwrap();
    }
    drop(cleanup);
}

#[test]
fn bad_report_input_is_exit_2_and_an_interrupted_run_still_renders() {
    let tmp = tempfile::tempdir().unwrap();
    // An unwritable --html is refused before the run starts (nothing is written).
    let out = masgen()
        .args([
            "verify",
            "/nonexistent-system",
            "--html",
            "/proc/no/such/page.html",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--html /proc/no/such/page.html: cannot write there"),
        "{}",
        text(&out)
    );
    let html = tmp.path().join("p.html");
    let report = |body: &str| {
        let f = tmp.path().join("r.json");
        std::fs::write(&f, body).unwrap();
        masgen()
            .arg("report")
            .arg(&f)
            .arg("--html")
            .arg(&html)
            .output()
            .unwrap()
    };
    let o = report("{\"name\": \"not a report\"}");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not a masgen report"), "{}", text(&o));
    let o = report("not json");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = report("{\"format\": 99, \"command\": \"verify\", \"exit_code\": 0}");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("newer masgen (format 99"), "{}", text(&o));
    let o = report("{\"format\": 1, \"command\": \"repair\", \"exit_code\": 130, \"interrupted\": true, \"secs\": 3.5, \"timeline\": [{\"row\": \"api\", \"kind\": \"build\", \"label\": \"build\", \"round\": 1, \"start\": 0.5, \"end\": 3.5}], \"diagnostics\": [{\"service\": \"api\", \"phase\": \"crash\", \"summary\": \"crashed\", \"evidence\": \"<script>alert(1)</script>\", \"files\": []}]}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("interrupted before its verdict"), "{page}");
    assert!(page.contains("data-row=\"api\""), "{page}");
    assert!(
        !page.contains("<script>") && page.contains("&lt;script&gt;"),
        "{page}"
    );
}

#[test]
fn every_json_event_carries_its_time_and_the_first_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("compose.yaml"), "services: {}\n").unwrap();
    let out = masgen()
        .args(["--json", "verify"])
        .arg(tmp.path())
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let events: Vec<&serde_json::Value> = lines.iter().filter(|e| e["event"] != "report").collect();
    assert!(!events.is_empty(), "{}", text(&out));
    assert!(
        events[0]["started"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{:?}",
        events[0]
    );
    let mut last = 0.0;
    for e in &events {
        let t = e["t"].as_f64().unwrap_or_else(|| panic!("no t in {e}"));
        assert!(t >= last, "time goes back: {e}");
        last = t;
    }
    let report = lines.iter().find(|e| e["event"] == "report").unwrap();
    assert_eq!(report["report"]["format"], 1);
    assert!(report["report"]["started"].as_str().is_some());
}
