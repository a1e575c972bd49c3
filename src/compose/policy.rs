//! The security policy: what a generated system may not do unless the user said
//! `--allow-unsafe`.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::model::{Compose, Mount};

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
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
    "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
];

/// Lexically normalise `p` against `root` (no filesystem access: the path may not exist).
fn normalise(root: &Path, p: &str) -> PathBuf {
    let joined = if let Some(rest) = p.strip_prefix("~/") {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(rest)
    } else {
        root.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
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

/// Check every service of `compose` (whose folder is `root`).
pub fn check_policy(compose: &Compose, root: &Path) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, svc) in &compose.services {
        let mut refuse = |key: &str, detail: String| out.push(Violation { service: name.clone(), key: key.into(), detail });
        if svc.privileged == Some(true) {
            refuse("privileged", "privileged: true gives the container full control of the host".into());
        }
        for (key, value) in [("network_mode", &svc.network_mode), ("pid", &svc.pid), ("ipc", &svc.ipc)] {
            if value.as_deref() == Some("host") {
                refuse(key, format!("{key}: host shares the host's {key} namespace"));
            }
        }
        for cap in &svc.cap_add {
            let c = cap.trim().to_ascii_uppercase();
            let c = c.strip_prefix("CAP_").unwrap_or(&c);
            if !DEFAULT_CAPS.contains(&c) {
                refuse("cap_add", format!("cap_add: {cap} adds a capability beyond Docker's default set"));
            }
        }
        for dev in &svc.devices {
            refuse("devices", format!("devices: {} exposes a host device", dev.text()));
        }
        for opt in &svc.security_opt {
            if opt.contains("unconfined") {
                refuse("security_opt", format!("security_opt: {opt} disables a confinement"));
            }
        }
        for v in &svc.volumes {
            if let Ok(Mount::Bind { source, .. }) = v.mount() {
                let resolved = normalise(root, &source);
                if source.contains("docker.sock") || resolved.ends_with("docker.sock") {
                    refuse("volumes", format!("volumes: {source} mounts the Docker socket (control of the host's Docker)"));
                } else if !resolved.starts_with(root) {
                    refuse("volumes", format!("volumes: {source} mounts a host path outside the system's folder"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::parse_compose_str;

    fn violations(yaml: &str) -> Vec<String> {
        let (c, _, _) = parse_compose_str(yaml, "c.yml").unwrap();
        check_policy(&c, Path::new("/sys/root")).into_iter().map(|v| v.key).collect()
    }

    #[test]
    fn each_unsafe_setting_is_refused() {
        let y = "services:\n  a:\n    image: x\n    privileged: true\n    network_mode: host\n    pid: host\n    ipc: host\n    cap_add: [SYS_ADMIN, CHOWN]\n    devices: [\"/dev/kvm:/dev/kvm\"]\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n      - ../outside:/x\n      - ./inside:/y\n      - /etc:/host-etc:ro\n";
        assert_eq!(
            violations(y),
            vec!["privileged", "network_mode", "pid", "ipc", "cap_add", "devices", "volumes", "volumes", "volumes"]
        );
    }

    #[test]
    fn a_plain_service_passes() {
        assert!(violations("services:\n  a:\n    image: x\n    volumes: [\"./data:/data\"]\n    cap_add: [NET_BIND_SERVICE]\n").is_empty());
    }
}
