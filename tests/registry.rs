//! Images from real registries (Debian's docker-registry on 127.0.0.1 ports of the tests'
//! own, open or behind htpasswd): private images and private FROMs with the docker CLI's
//! credentials, environment failures kept from the model, a missing tag sent to it,
//! parallel pulls, and `--offline` prompts.

mod common;

use std::path::Path;
use std::process::Output;

use common::docker::*;
use common::registry::{path_with, Registry, PASSWORD};
use common::*;

const APP: &str = "FROM busybox:latest\nRUN echo private > /private\n";

fn compose_dir(compose: &str) -> (tempfile::TempDir, std::path::PathBuf, Cleanup) {
    let (dir, path, guard) = unique_output("reg");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("docker-compose.yml"), compose).unwrap();
    (dir, path, guard)
}

/// A service running `image` that is healthy once /private is there.
fn service(name: &str, image: &str) -> String {
    format!("  {name}:\n    image: {image}\n    command: [\"sh\", \"-c\", \"cat /private && exec sleep 3600\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/private\"]\n      interval: 1s\n")
}

fn verify(path: &Path, config: &Path, extra: &[&str], env: &[(&str, String)]) -> Output {
    masgen()
        .arg("verify")
        .arg(path)
        .args(["--settle", "1", "--stability", "0"])
        .args(extra)
        .env("DOCKER_CONFIG", config)
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .output()
        .unwrap()
}

/// No credential in anything masgen printed or wrote.
fn no_secret_in(o: &Output, dir: &Path) {
    assert!(!text(o).contains(PASSWORD), "{}", text(o));
    for f in all_files(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            f.display()
        );
    }
}

#[test]
fn a_private_image_is_pulled_with_the_auths_of_the_docker_config() {
    let Some(reg) = Registry::start("private_image", true) else {
        return;
    };
    let image = reg.push("app:1", APP);
    let (_d, path, guard) = compose_dir(&format!("services:\n{}", service("app", &image)));
    let o = verify(
        &path,
        &reg.auths_config(PASSWORD),
        &["--report", path.join("r.json").to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["verify"]["pulls"][0]["image"], image.as_str(), "{r}");
    assert_eq!(r["verify"]["pulls"][0]["ok"], true);
    assert!(r["services"][0]["pull_secs"].as_f64().is_some(), "{r}");
    assert!(
        text(&o).contains(&format!("pull {image}: ")),
        "{}",
        text(&o)
    );
    no_secret_in(&o, &path);
    assert_nothing_left(&guard.0);
}

#[test]
fn a_private_from_is_built_with_a_credential_helper_by_both_builders() {
    let Some(reg) = Registry::start("private_from", true) else {
        return;
    };
    let base = reg.push("base:1", APP);
    let (bin, config) = reg.helper_config("masgentest");
    for buildkit in ["1", "0"] {
        // The FROM names its registry through a build arg, as real Dockerfiles do.
        let (_d, path, guard) = compose_dir(&format!("services:\n  app:\n    build:\n      context: ./app\n      args:\n        REG: {}\n    command: [\"sh\", \"-c\", \"cat /private && exec sleep 3600\"]\n    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/private\"]\n      interval: 1s\n", reg.host));
        std::fs::create_dir_all(path.join("app")).unwrap();
        std::fs::write(
            path.join("app/Dockerfile"),
            format!("ARG REG=nowhere.invalid\nFROM ${{REG}}/masgen-test/base:1\nRUN echo built-{buildkit} > /built\n"),
        )
        .unwrap();
        let o = verify(
            &path,
            &config,
            &[],
            &[
                ("PATH", path_with(&bin)),
                ("DOCKER_BUILDKIT", buildkit.to_string()),
            ],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "DOCKER_BUILDKIT={buildkit}: {}",
            text(&o)
        );
        no_secret_in(&o, &path);
        assert_nothing_left(&guard.0);
        // The next build must pull the base again, through the helper.
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &base])
            .output();
    }
    let calls = std::fs::read_to_string(bin.join("calls.log")).unwrap();
    assert!(calls.contains(&format!("get {}", reg.host)), "{calls}");
}

#[test]
fn wrong_credentials_end_the_run_with_exit_3_and_nothing_goes_to_the_model() {
    let Some(reg) = Registry::start("wrong_credentials", true) else {
        return;
    };
    let image = reg.push("app:1", APP);
    let (_d, path, guard) = compose_dir(&format!("services:\n{}", service("app", &image)));
    let fake = FakeAnthropic::scripted(vec![Reply::text("<file path=\"x\">x</file>")]);
    let o = masgen()
        .arg("repair")
        .arg(&path)
        .args(["--spec", "an app", "-k", TEST_KEY, "--base-url", &fake.url])
        .env("DOCKER_CONFIG", reg.auths_config("not-the-password"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains(&format!("registry {} refused the credentials", reg.host))
            && said.contains(&format!("docker login {}", reg.host)),
        "{said}"
    );
    assert!(fake.requests().is_empty(), "the model was asked");
    assert_nothing_left(&guard.0);
}

#[test]
fn a_tag_the_registry_does_not_have_goes_to_the_model_and_is_repaired() {
    let Some(reg) = Registry::start("missing_tag", false) else {
        return;
    };
    let image = reg.push("app:1", APP);
    let wrong = reg.image("app:2");
    let (_d, path, guard) = compose_dir(&format!("services:\n{}", service("app", &wrong)));
    let fix = format!("<edit path=\"docker-compose.yml\">\n<<<<<<< SEARCH\n    image: {wrong}\n=======\n    image: {image}\n>>>>>>> REPLACE\n</edit>\n");
    let fake = FakeAnthropic::scripted(vec![Reply::text(&fix)]);
    let o = masgen()
        .arg("repair")
        .arg(&path)
        .args(["--spec", "an app", "-k", TEST_KEY, "--base-url", &fake.url])
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let prompt = fake.requests()[0].last_user_text();
    assert!(
        prompt.contains(&format!("image {wrong} is not available"))
            && prompt.contains("manifest unknown"),
        "{prompt}"
    );
    assert_nothing_left(&guard.0);
}

#[test]
fn missing_images_are_pulled_at_once() {
    let Some(reg) = Registry::start("parallel_pulls", false) else {
        return;
    };
    let mut compose = String::from("services:\n");
    let images: Vec<String> = (1..=4)
        .map(|i| {
            reg.push(
                &format!("p{i}:1"),
                &format!("{APP}RUN head -c 2000000 /dev/urandom > /blob{i}\n"),
            )
        })
        .collect();
    for (i, image) in images.iter().enumerate() {
        compose.push_str(&service(&format!("s{i}"), image));
    }
    let (_d, path, guard) = compose_dir(&compose);
    let o = masgen()
        .arg("verify")
        .arg(&path)
        .arg("--json")
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| Some((e["event"].as_str()?, e["image"].as_str()?)))
        .collect();
    let first_end = kinds
        .iter()
        .position(|(k, _)| *k == "pull_finished")
        .expect("a pull finished");
    let started_before: Vec<&str> = kinds[..first_end]
        .iter()
        .filter(|(k, _)| *k == "pull_started")
        .map(|(_, i)| *i)
        .collect();
    assert_eq!(
        started_before.len(),
        4,
        "all four pulls start before one ends: {kinds:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "pull_progress" && e["layers_total"].as_u64().unwrap_or(0) > 0),
        "progress is reported"
    );
    assert_nothing_left(&guard.0);
}

#[test]
fn offline_generation_tells_the_model_which_images_this_machine_has() {
    if !docker_available("offline_prompt") {
        return;
    }
    let fake = FakeAnthropic::scripted(vec![Reply::text(&system_reply())]);
    let (_d, out, _g) = unique_output("offline");
    let o = masgen()
        .args(["generate", "a web page served by busybox", "-o"])
        .arg(&out)
        .args(["-k", TEST_KEY, "--base-url", &fake.url, "--no-verify"])
        .env("MASGEN_OFFLINE", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let body = fake.requests()[0].body.to_string();
    assert!(
        body.contains("no container registry") && body.contains("busybox:latest"),
        "{body}"
    );
    assert!(
        body.contains("Builds can") || body.contains("Builds cannot"),
        "{body}"
    );
}

#[test]
fn pull_policies_decide_when_to_pull_as_compose_decides() {
    let Some(reg) = Registry::start("pull_policies", false) else {
        return;
    };
    let image = reg.push("app:1", APP);
    let (_d, path, guard) = compose_dir("");
    // Each run: whether the image is tagged again first (the engine records a tag time for
    // a tag, not for a pull), the policy, extra flags, the exit code, and whether it was
    // pulled.
    let runs: [(bool, &str, &[&str], i32, bool); 8] = [
        (false, "never", &[], 1, false),
        (false, "missing", &[], 0, true),
        // Pulled with no tag time: due, as Compose sees it (img.LastTagTime is zero).
        (false, "daily", &[], 0, true),
        (true, "daily", &[], 0, false),
        (true, "every_1h", &[], 0, false),
        (true, "every_1s", &[], 0, true),
        (false, "always", &[], 0, true),
        (false, "always", &["--pull", "never"], 0, false),
    ];
    for (retag, policy, extra, code, pulled) in runs {
        std::fs::write(
            path.join("docker-compose.yml"),
            format!(
                "services:\n{}    pull_policy: {policy}\n",
                service("app", &image)
            ),
        )
        .unwrap();
        if retag {
            let o = std::process::Command::new("docker")
                .args(["tag", &image, &image])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        if policy == "every_1s" {
            std::thread::sleep(std::time::Duration::from_millis(1500));
        }
        let report = path.join("r.json");
        let o = masgen()
            .arg("verify")
            .arg(&path)
            .args(["--settle", "1", "--stability", "0", "--report"])
            .arg(&report)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "{policy} {extra:?}: {}",
            text(&o)
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let pulls = r["verify"]["pulls"].as_array().map_or(0, |p| p.len());
        assert_eq!(pulls, usize::from(pulled), "{policy} {extra:?}: {r}");
        if policy == "never" {
            let evidence = r["verify"]["diagnostics"][0]["evidence"]
                .as_str()
                .unwrap_or("");
            assert!(evidence.contains("pull_policy"), "{r}");
        }
    }
    assert_nothing_left(&guard.0);
}
