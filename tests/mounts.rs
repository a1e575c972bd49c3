//! What a project's paths, mounts, networks and volumes mean on the real daemon, compared
//! with what Docker Compose v2 makes of the same project: bind and volume options
//! (SELinux labels, propagation, read-only, nocopy), the project directory, network and
//! volume options (drivers, IPAM, internal, addresses), explicit names and externals.

mod common;

use std::process::Command;

use common::docker::*;
use common::*;
use serde_json::Value;

/// A container's `HostConfig.Binds` (sorted) and its Mount-API mounts without their
/// sources (a volume's carries its project's name).
fn mounts_of(container: &str) -> (Vec<String>, Vec<Value>) {
    let binds: Vec<String> =
        serde_json::from_str(&inspect(container, "{{json .HostConfig.Binds}}")).unwrap();
    let mut binds = binds;
    binds.sort();
    let mounts: Value = serde_json::from_str(&inspect(container, "{{json .HostConfig.Mounts}}"))
        .unwrap_or(Value::Null);
    let mut mounts: Vec<Value> = mounts
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().unwrap().remove("Source");
            m
        })
        .collect();
    mounts.sort_by_key(|m| m["Target"].as_str().unwrap_or("").to_string());
    (binds, mounts)
}

#[test]
fn bind_options_reach_the_container_as_compose_puts_them() {
    let Some(twin) = Twin::of(
        "bind_options_reach_the_container_as_compose_puts_them",
        "bind_options",
    ) else {
        return;
    };
    twin.compose(&["up", "-d"]);
    let expected = mounts_of(&format!("{}-app-1", twin.theirs));
    twin.compose(&["down", "-v"]);
    twin.keep(&[]);
    let ours = mounts_of(&format!("{}-app-1", twin.ours));
    twin.masgen("down", &["-v"]);
    let dir = twin.dir.clone();
    assert_eq!(ours, expected);
    // And what that is, in words.
    let root = dir.canonicalize().unwrap();
    let (binds, mounts) = ours;
    for b in [
        format!("{}/conf:/conf:ro,z", root.display()),
        format!("{}/work:/work:rw,Z", root.display()),
        format!("{}/conf:/conf-labelled:rw,z", root.display()),
    ] {
        assert!(binds.contains(&b), "{b} not in {binds:?}");
    }
    let by_target = |t: &str| mounts.iter().find(|m| m["Target"] == t).cloned().unwrap();
    assert_eq!(
        by_target("/conf-private")["BindOptions"]["Propagation"],
        "rprivate"
    );
    assert_eq!(by_target("/conf-private")["ReadOnly"], true);
    assert_eq!(by_target("/data")["VolumeOptions"]["NoCopy"], true);
}

/// `masgen verify . -f sub/dir/compose.yml` builds and mounts what Compose would: the
/// first file's folder is the project directory, so its own context, bind source and
/// `.env` count, not the folder masgen was pointed at.
#[test]
fn a_project_read_from_another_folder_builds_and_mounts_its_own_directory() {
    let test = "a_project_read_from_another_folder_builds_and_mounts_its_own_directory";
    if !docker_available(test) {
        return;
    }
    let (_tmp, dir, cleanup) = unique_output("projdir");
    for (path, text) in [
        // The folder masgen is pointed at: a context that does not build, other data.
        ("ctx/Dockerfile", "FROM busybox:latest\nRUN exit 1\n"),
        ("data/mark", "outer\n"),
        (".env", "MARK=outer\n"),
        // The project directory's own.
        ("sub/dir/ctx/Dockerfile", "FROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n"),
        ("sub/dir/data/mark", "inner\n"),
        ("sub/dir/.env", "MARK=inner\n"),
        (
            "sub/dir/compose.yml",
            "services:\n  app:\n    build: ./ctx\n    environment:\n      MARK: ${MARK}\n    volumes:\n      - ./data:/data:ro\n    healthcheck:\n      test: [\"CMD-SHELL\", \"grep -qx \\\"$$MARK\\\" /data/mark\"]\n      interval: 1s\n      retries: 5\n",
        ),
    ] {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = masgen()
        .arg("verify")
        .arg(&dir)
        .args(["-f", "sub/dir/compose.yml", "-p", &cleanup.0])
        .args(["--settle", "1", "--stability", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let name = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&name);
    // Without -p, the project is named after its directory, as Compose names it.
    let config = masgen()
        .arg("config")
        .arg(&dir)
        .args(["-f", "sub/dir/compose.yml"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&config.stdout).starts_with("name: dir\n"),
        "{}",
        text(&config)
    );
}

/// The keys of `docker inspect` output that the compose file decides, labels without the
/// ones Compose and masgen add.
fn decided(json: &str, keys: &[&str]) -> Value {
    let v: Value = serde_json::from_str(json).unwrap();
    let v = &v[0];
    let mut out = serde_json::Map::new();
    for k in keys {
        let mut x = v.pointer(k).cloned().unwrap_or(Value::Null);
        if k.ends_with("Labels") {
            if let Some(m) = x.as_object_mut() {
                m.retain(|k, _| !k.starts_with("com.docker.compose") && !k.contains("masgen"));
            }
        }
        out.insert(k.to_string(), x);
    }
    Value::Object(out)
}

fn docker_json(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().unwrap();
    assert!(o.status.success(), "docker {args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What Compose made of the fixture's network, volume and the container's address.
fn objects(project: &str) -> (Value, Value, Value) {
    let network = decided(
        &docker_json(&["network", "inspect", &format!("{project}_front")]),
        &[
            "/Driver",
            "/Internal",
            "/Attachable",
            "/EnableIPv6",
            "/IPAM/Config",
            "/Options",
            "/Labels",
        ],
    );
    let volume = decided(
        &docker_json(&["volume", "inspect", &format!("{project}_scratch")]),
        &["/Driver", "/Options", "/Labels"],
    );
    let endpoint = format!("/NetworkSettings/Networks/{project}_front");
    let container = decided(
        &docker_json(&["inspect", &format!("{project}-app-1")]),
        &[
            &format!("{endpoint}/IPAMConfig/IPv4Address"),
            &format!("{endpoint}/IPAddress"),
        ],
    );
    let container = Value::Array(container.as_object().unwrap().values().cloned().collect());
    (network, volume, container)
}

#[test]
fn networks_and_volumes_are_created_with_the_options_compose_gives_them() {
    let test = "networks_and_volumes_are_created_with_the_options_compose_gives_them";
    let Some(twin) = Twin::of(test, "net_options") else {
        return;
    };
    twin.compose(&["up", "-d"]);
    let expected = objects(&twin.theirs);
    twin.compose(&["down", "-v"]);
    twin.keep(&[]);
    let ours = objects(&twin.ours);
    twin.masgen("down", &["-v"]);
    assert_eq!(ours, expected);
    let (network, volume, container) = ours;
    assert_eq!(network["/Internal"], true);
    assert_eq!(network["/IPAM/Config"][0]["Gateway"], "10.213.37.254");
    assert_eq!(volume["/Options"]["o"], "size=10m");
    assert_eq!(container[0], "10.213.37.10");
}

/// Explicit names are the names a kept system uses (a verification uses its own run's,
/// and never writes into them); external networks and volumes are used as they are, and
/// a missing one is exit 3 naming it.
#[test]
fn explicit_names_are_kept_systems_names_and_missing_externals_are_exit_3() {
    let test = "explicit_names_are_kept_systems_names_and_missing_externals_are_exit_3";
    if !docker_available(test) {
        return;
    }
    let (_tmp, dir, cleanup) = unique_output("names");
    let (volume, network) = (format!("{}-data", cleanup.0), format!("{}-net", cleanup.0));
    let remove = |kind: &str, name: &str| {
        let _ = Command::new("docker").args([kind, "rm", name]).output();
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!("services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    volumes: [data:/data]\nvolumes:\n  data:\n    name: \"${{DATA:-{volume}}}\"\nnetworks:\n  default:\n    name: {network}\n"),
    )
    .unwrap();
    let exists = |kind: &str, name: &str| {
        Command::new("docker")
            .args([kind, "inspect", name])
            .output()
            .unwrap()
            .status
            .success()
    };
    let verify = |extra: &[&str]| {
        masgen()
            .arg("verify")
            .arg(&dir)
            .args(["--settle", "1", "--stability", "0"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !exists("volume", &volume) && !exists("network", &network),
        "a verification made the project's own objects"
    );
    let out = verify(&["--keep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let joined = inspect(
        &format!("{}-app-1", cleanup.0),
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
    );
    assert_eq!(joined, network);
    assert!(exists("volume", &volume));
    let down = masgen().arg("down").arg(&dir).arg("-v").output().unwrap();
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(!exists("volume", &volume) && !exists("network", &network));
    remove("volume", &volume);
    remove("network", &network);

    // External ones must exist: each missing one is exit 3, named, and nothing is left.
    for (top, says) in [
        (
            format!("networks:\n  default:\n    external: true\n    name: {network}\n"),
            format!(
                "network 'default' is declared external, and no network named {network} exists"
            ),
        ),
        (
            format!("volumes:\n  data:\n    external: true\n    name: {volume}\n"),
            format!("volume 'data' is declared external, and no volume named {volume} exists"),
        ),
    ] {
        let mounts = if top.starts_with("volumes") {
            "    volumes: [data:/data]\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join("compose.yaml"),
            format!("services:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n{mounts}{top}"),
        )
        .unwrap();
        let out = verify(&[]);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(text(&out).contains(&says), "{}", text(&out));
    }
    let project = cleanup.0.clone();
    drop(cleanup);
    assert_nothing_left(&project);
}
