//! What users see for bad input: exact messages and exit codes.

mod common;

use common::*;

fn run(args: &[&str]) -> std::process::Output {
    masgen().args(args).output().expect("run masgen")
}

#[test]
fn no_spec_is_a_usage_error() {
    let o = run(&["generate"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("error: no spec: describe the system"),
        "{}",
        text(&o)
    );
}

#[test]
fn spec_file_problems_exit_2_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let binary = dir.path().join("bin.txt");
    std::fs::write(&binary, b"caf\xe9").unwrap();
    let cases = [
        (
            format!("@{}", dir.path().join("nope.txt").display()),
            "does not exist: check the path after '@'",
        ),
        (
            format!("@{}", dir.path().display()),
            "is a directory: pass a text file",
        ),
        (
            format!("@{}", empty.display()),
            "is empty: write the system's description into it",
        ),
        (
            format!("@{}", binary.display()),
            "is not UTF-8 text (invalid byte at offset 3): save it as UTF-8",
        ),
        ("   ".to_string(), "the spec is empty"),
    ];
    for (arg, want) in cases {
        let o = run(&[
            arg.as_str(),
            "-o",
            dir.path().join("out").to_str().unwrap(),
            "--replay",
            "fixtures/demo",
        ]);
        assert_eq!(o.status.code(), Some(2), "{arg}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{arg}: want {want:?}\n{}",
            text(&o)
        );
    }
}

#[test]
fn no_api_key_exits_3_naming_the_variable_and_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["a system", "-o", dir.path().join("o").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("set ANTHROPIC_API_KEY") && err.contains("--replay fixtures/demo"),
        "{err}"
    );
}

#[test]
fn a_folder_with_foreign_files_is_refused_without_force() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let o = run(&[
        "a system",
        "-o",
        dir.path().to_str().unwrap(),
        "--replay",
        "fixtures/demo",
        "--no-verify",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("masgen did not write (for example notes.txt)") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn force_keeps_the_users_previous_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "my own readme").unwrap();
    let o = run(&[
        "a system",
        "-o",
        dir.path().to_str().unwrap(),
        "--replay",
        "fixtures/demo",
        "--no-verify",
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".masgen/rounds/000-previous/README.md")).unwrap(),
        "my own readme"
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("kept your previous README.md"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_missing_replay_reply_is_a_clear_error() {
    let replay = tempfile::tempdir().unwrap();
    std::fs::write(replay.path().join("001.txt"), "no files here").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "x",
        "-o",
        dir.path().join("o").to_str().unwrap(),
        "--replay",
        replay.path().to_str().unwrap(),
        "--staged",
        "--no-verify",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("has 1 recorded replies, but masgen asked for reply 2"),
        "{}",
        text(&o)
    );
}

#[test]
fn verify_on_a_folder_without_compose_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no compose file in"),
        "{}",
        text(&o)
    );
}

#[test]
fn help_lists_every_generate_flag() {
    let o = run(&["generate", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--output",
        "--api-key",
        "--model",
        "--base-url",
        "--staged",
        "--jobs",
        "--no-verify",
        "--download-responses",
        "--replay",
        "--report",
        "--json",
        "--health-timeout",
        "--allow-unsafe",
        "--force",
        "--keep",
        "--execute",
        "--junit",
        "--iterate",
        "--max-rounds",
        "--max-cost",
        "--max-tokens",
        "--retries",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(
        !help.contains("retry-base-ms") && !help.contains("batch-per-group"),
        "test-only flags are hidden"
    );
    let o = run(&["repair", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--spec",
        "--max-rounds",
        "--max-cost",
        "--replay",
        "--api-key",
        "--health-timeout",
        "--report",
    ] {
        assert!(help.contains(flag), "repair --help lacks {flag}");
    }
}

#[test]
fn max_cost_needs_a_priced_model_and_a_real_amount() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "x",
        "-o",
        dir.path().join("o").to_str().unwrap(),
        "-k",
        "k",
        "--model",
        "claude-future-9",
        "--max-cost",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "--max-cost cannot be enforced: masgen has no price for model 'claude-future-9'"
        ),
        "{}",
        text(&o)
    );
    let o = run(&["x", "--max-cost", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not an amount in USD"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_spec_file_over_the_size_limit_is_refused_before_any_request() {
    let fake = FakeAnthropic::scripted(vec![Reply::text(&system_reply())]);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("spec.txt");
    std::fs::write(&big, "a system ".repeat(30_000)).unwrap();
    for spec in [format!("@{}", big.display()), "@/dev/zero".to_string()] {
        let o = masgen()
            .args(["generate", &spec, "-o"])
            .arg(dir.path().join("out"))
            .args(["-k", TEST_KEY, "--base-url", &fake.url, "--no-verify"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("more than masgen reads (200 KiB)"),
            "{}",
            text(&o)
        );
    }
    assert!(fake.requests().is_empty(), "nothing was sent");
}
