//! Container settings as Docker Compose v2 applies them, compared on the real daemon with
//! the containers Compose itself creates: pids limits, runtime, user namespace, and
//! `deploy.restart_policy` winning over `restart`; settings this engine cannot apply are
//! exit 3 naming what is missing.

mod common;

use std::process::Command;

use common::docker::*;
use common::*;
use serde_json::{json, Value};

/// The settings of a container the fixture decides; a policy that never restarts is
/// `no` whatever its retry count (the engine ignores it then).
fn settings(container: &str) -> Value {
    let field = |f: &str| -> Value {
        serde_json::from_str(&inspect(
            container,
            &format!("{{{{json .HostConfig.{f}}}}}"),
        ))
        .unwrap()
    };
    let policy = field("RestartPolicy");
    let name = match policy["Name"].as_str().unwrap_or("") {
        "" => "no",
        other => other,
    };
    let retries = if name == "on-failure" {
        policy["MaximumRetryCount"].clone()
    } else {
        json!(0)
    };
    json!({
        "pids": field("PidsLimit"),
        "runtime": field("Runtime"),
        "userns": field("UsernsMode"),
        "memory_reservation": field("MemoryReservation"),
        "restart": [name, retries],
    })
}

#[test]
fn container_settings_are_the_ones_compose_applies() {
    let Some(twin) = Twin::of(
        "container_settings_are_the_ones_compose_applies",
        "service_keys",
    ) else {
        return;
    };
    let of = |project: &str| -> Vec<Value> {
        ["a", "b"]
            .iter()
            .map(|s| settings(&format!("{project}-{s}-1")))
            .collect()
    };
    twin.compose(&["up", "-d"]);
    let expected = of(&twin.theirs);
    twin.compose(&["down"]);
    // userns_mode: host shares a host namespace: the policy wants --allow-unsafe.
    let refused = masgen().arg("verify").arg(&twin.dir).output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("userns_mode"), "{}", text(&refused));
    twin.keep(&["--allow-unsafe"]);
    let ours = of(&twin.ours);
    twin.masgen("down", &[]);
    assert_eq!(ours, expected);
    assert_eq!(ours[0]["pids"], 100);
    assert_eq!(ours[0]["restart"], json!(["on-failure", 3]));
    assert_eq!(ours[1]["pids"], 50);
    assert_eq!(ours[1]["restart"], json!(["no", 0]));
    assert_eq!(ours[1]["memory_reservation"], 32 << 20);
}

#[test]
fn settings_this_engine_cannot_apply_are_exit_3_naming_what_is_missing() {
    let test = "settings_this_engine_cannot_apply_are_exit_3_naming_what_is_missing";
    if !docker_available(test) {
        return;
    }
    for (key, says) in [
        (
            "runtime: no-such-runtime",
            "has no runtime 'no-such-runtime' (it has ",
        ),
        (
            "mac_address: \"02:42:ac:11:00:42\"",
            "mac_address needs Docker Engine API 1.44",
        ),
    ] {
        let (_tmp, dir, cleanup) = compose_project("engine-cannot", &format!("services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"60\"]\n    {key}\n"));
        let out = masgen()
            .arg("verify")
            .arg(&dir)
            .args(["--settle", "1"])
            .output()
            .unwrap();
        let api: String = inspect_engine_api();
        let needs = [("mac_address", "1.44"), ("networks", "1.49")];
        if let Some((k, v)) = needs
            .iter()
            .find(|(k, v)| key.starts_with(k) && api.as_str() >= *v)
        {
            eprintln!("this engine speaks {api} (>= {v}): {k} is applied, not refused");
            continue;
        }
        if key.starts_with("gpus") && out.status.code() == Some(0) {
            eprintln!("this engine has a GPU and its driver: gpus: all was given");
            continue;
        }
        assert_eq!(out.status.code(), Some(3), "{key}: {}", text(&out));
        assert!(text(&out).contains(says), "{key}: {}", text(&out));
        let project = cleanup.0.clone();
        drop(cleanup);
        assert_nothing_left(&project);
    }
}

/// The engine's API version, as `1.41`.
fn inspect_engine_api() -> String {
    let o = Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}
