//! The security policy: what a generated system may not do unless the user said
//! `--allow-unsafe`.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::model::{Compose, Mount, Service};

/// One refused setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub service: String,
    /// The compose key, e.g. `privileged` or `volumes`.
    pub key: String,
    pub detail: String,
}

/// Docker's default capability set: adding one of these changes nothing.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// `p` without `.` and `..` components (no filesystem access: the path may not exist).
pub(crate) fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Lexically normalise `p` against `root` (no filesystem access: the path may not exist).
fn normalise(root: &Path, p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => lexical(
            &PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(rest),
        ),
        None => lexical(&root.join(p)),
    }
}

/// Whether `p` (as written in the compose file) leads outside `root`: lexically, or, where
/// it exists, through a symlink.
fn outside(root: &Path, p: &str) -> bool {
    let lexical = normalise(root, p);
    !lexical.starts_with(root)
        || lexical
            .canonicalize()
            .is_ok_and(|real| !real.starts_with(root))
}

/// Check every service of `compose` (whose folder is `root`, canonical).
pub fn check_policy(compose: &Compose, root: &Path) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, svc) in &compose.services {
        let mut found = Vec::new();
        host_powers(svc, &mut found);
        host_paths(compose, svc, root, &mut found);
        out.extend(found.into_iter().map(|(key, detail)| Violation {
            service: name.clone(),
            key,
            detail,
        }));
    }
    out
}

/// What gives a container power over the host: privileged, host namespaces, added
/// capabilities, devices, confinement turned off.
fn host_powers(svc: &Service, found: &mut Vec<(String, String)>) {
    let mut refuse = |key: &str, detail: String| found.push((key.to_string(), detail));
    if svc.privileged == Some(true) {
        refuse(
            "privileged",
            "privileged: true gives the container full control of the host".into(),
        );
    }
    for (key, hooks) in [("post_start", &svc.post_start), ("pre_stop", &svc.pre_stop)] {
        if hooks.iter().any(|h| h.privileged == Some(true)) {
            refuse(
                key,
                format!("{key}: a privileged hook has full control of the host"),
            );
        }
    }
    for (key, value) in [
        ("network_mode", &svc.network_mode),
        ("pid", &svc.pid),
        ("ipc", &svc.ipc),
        ("userns_mode", &svc.userns_mode),
    ] {
        if value.as_deref() == Some("host") {
            refuse(
                key,
                format!("{key}: host shares the host's {key} namespace"),
            );
        }
    }
    for cap in &svc.cap_add {
        let c = cap.trim().to_ascii_uppercase();
        let c = c.strip_prefix("CAP_").unwrap_or(&c);
        if !DEFAULT_CAPS.contains(&c) {
            refuse(
                "cap_add",
                format!("cap_add: {cap} adds a capability beyond Docker's default set"),
            );
        }
    }
    for dev in &svc.devices {
        refuse(
            "devices",
            format!("devices: {} exposes a host device", dev.text()),
        );
    }
    for opt in &svc.security_opt {
        // `label=disable` turns SELinux separation off, as `unconfined` turns others off.
        if opt.contains("unconfined") || opt.replace(':', "=").replace(' ', "") == "label=disable" {
            refuse(
                "security_opt",
                format!("security_opt: {opt} disables a confinement"),
            );
        }
    }
}

/// Host paths outside the system's folder, and the Docker socket: bind mounts, the build
/// context (sent to Docker whole; its Dockerfile may copy any of it into an image),
/// secret and config files (mounted in), env_file (read into the environment).
fn host_paths(compose: &Compose, svc: &Service, root: &Path, found: &mut Vec<(String, String)>) {
    let mut refuse = |key: &str, detail: String| found.push((key.to_string(), detail));
    for v in &svc.volumes {
        if let Ok(Mount::Bind { source, .. }) = v.mount() {
            let resolved = normalise(root, &source);
            if source.contains("docker.sock") || resolved.ends_with("docker.sock") {
                refuse(
                    "volumes",
                    format!(
                        "volumes: {source} mounts the Docker socket (control of the host's Docker)"
                    ),
                );
            } else if outside(root, &source) {
                refuse(
                    "volumes",
                    format!("volumes: {source} mounts a host path outside the system's folder"),
                );
            }
        }
    }
    if let Some(b) = svc.build.as_ref().filter(|b| outside(root, b.context())) {
        refuse(
            "build",
            format!("build: context {} is outside the system's folder: every file there would be sent to Docker and could be copied into an image", b.context()),
        );
    }
    for (kind, refs, defined) in [
        ("secrets", &svc.secrets, &compose.secrets),
        ("configs", &svc.configs, &compose.configs),
    ] {
        for r in refs {
            let file = defined
                .get(r.source())
                .and_then(|t| t.as_ref())
                .and_then(|t| t.file.as_ref());
            if let Some(f) = file.filter(|f| outside(root, f)) {
                refuse(kind, format!("{kind}: {} is the file {f}, outside the system's folder: it would be mounted into the container", r.source()));
            }
        }
    }
    for f in svc
        .env_file
        .iter()
        .flat_map(|e| e.entries())
        .map(|e| e.path)
    {
        if outside(root, &f) {
            refuse("env_file", format!("env_file: {f} is outside the system's folder: its contents would be read into the container"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::parse_compose_str;

    fn violations(yaml: &str) -> Vec<String> {
        let (c, _, _) = parse_compose_str(yaml, "c.yml").unwrap();
        check_policy(&c, Path::new("/sys/root"))
            .into_iter()
            .map(|v| v.key)
            .collect()
    }

    #[test]
    fn each_unsafe_setting_is_refused() {
        let y = "services:\n  a:\n    image: x\n    privileged: true\n    network_mode: host\n    pid: host\n    ipc: host\n    cap_add: [SYS_ADMIN, CHOWN]\n    devices: [\"/dev/kvm:/dev/kvm\"]\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n      - ../outside:/x\n      - ./inside:/y\n      - /etc:/host-etc:ro\n";
        assert_eq!(
            violations(y),
            vec![
                "privileged",
                "network_mode",
                "pid",
                "ipc",
                "cap_add",
                "devices",
                "volumes",
                "volumes",
                "volumes"
            ]
        );
    }

    #[test]
    fn build_contexts_and_env_files_outside_the_folder_are_refused() {
        let y = "services:\n  a:\n    build: ../..\n    env_file: [./ok.env, ~/.aws/credentials]\n  b:\n    build:\n      context: /\n  c:\n    build: ./c\n    env_file: /etc/environment\n";
        assert_eq!(
            violations(y),
            vec!["build", "env_file", "build", "env_file"]
        );
    }

    #[test]
    fn secret_and_config_files_outside_the_folder_are_refused() {
        let y = "services:\n  a:\n    image: x\n    secrets: [key, ok]\n    configs: [{source: hosts, target: /etc/h}]\nsecrets:\n  key: {file: ~/.ssh/id_ed25519}\n  ok: {file: ./ok.txt}\n  unused: {file: /etc/shadow}\nconfigs:\n  hosts: {file: ../../../etc/hosts}\n";
        assert_eq!(violations(y), vec!["secrets", "configs"]);
    }

    #[test]
    fn a_symlink_out_of_the_folder_is_outside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("sys");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("up")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(outside(&root, "./up"));
        assert!(
            !outside(&root, "up/sys/real"),
            "a link that leads back inside is inside"
        );
        assert!(!outside(&root, "./real"));
        assert!(!outside(&root, "./not-yet-there"));
        let y = "services:\n  a:\n    build: ./up\n    volumes: [\"./up:/x\", \"./real:/y\"]\n";
        let (c, _, _) = parse_compose_str(y, "c.yml").unwrap();
        let keys: Vec<String> = check_policy(&c, &root).into_iter().map(|v| v.key).collect();
        assert_eq!(keys, vec!["volumes", "build"]);
    }

    #[test]
    fn security_opts_that_lift_a_confinement_are_refused() {
        let y = "services:\n  a:\n    image: x\n    security_opt: [\"seccomp=unconfined\", \"label:disable\", \"label=disable\", \"no-new-privileges:true\", \"label=level:s0:c100\"]\n";
        assert_eq!(
            violations(y),
            vec!["security_opt", "security_opt", "security_opt"]
        );
    }

    #[test]
    fn a_plain_service_passes() {
        assert!(violations("services:\n  a:\n    image: x\n    volumes: [\"./data:/data\"]\n    cap_add: [NET_BIND_SERVICE]\n").is_empty());
    }
}
