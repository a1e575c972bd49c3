//! What the model is told about a machine with no registry (`--offline`): which images
//! it has (the relevant ones first, never hundreds), and whether builds can reach the
//! package mirrors.

use std::time::Duration;

use super::Engine;

/// Images named in the note, at most.
pub const IMAGES_NAMED: usize = 30;

/// The note for the model's system prompt when no registry is to be reached. `about`: the
/// spec (and change), whose words put the images it names first.
pub async fn machine_note(about: &str) -> String {
    let local = match Engine::connect().await {
        Ok(engine) => engine.local_images().await,
        Err(_) => Vec::new(),
    };
    let shown = relevant_images(&local, &[about], IMAGES_NAMED);
    let mut note = String::from(
        "This machine has no container registry: no image can be pulled. Every service's image: and every Dockerfile's FROM must name one of the images below, or an image the system itself builds from them.
",
    );
    if shown.is_empty() {
        note.push_str(
            "It has no images at all that could be listed.
",
        );
    } else {
        let more = local.len().saturating_sub(shown.len());
        note.push_str(&format!("Images on this machine: {}", shown.join(", ")));
        if more > 0 {
            note.push_str(&format!(" (and {more} others, unrelated)"));
        }
        note.push_str(
            ".
",
        );
    }
    note.push_str(&mirrors_note().await);
    note
}

/// The engine's limits a compose file can exceed: the hard open-files limit its
/// containers inherit (containerd's, else dockerd's), read from /proc when the daemon runs
/// on this host. None when it cannot be read (a remote daemon).
pub fn limits_note() -> Option<String> {
    let remote =
        std::env::var("DOCKER_HOST").is_ok_and(|h| !h.is_empty() && !h.starts_with("unix://"));
    if remote {
        return None;
    }
    let limit = ["containerd", "dockerd"]
        .iter()
        .find_map(|name| open_files_limit(&process(name)?))?;
    Some(format!("The container engine's hard limit of open files is {limit}: a service's ulimits: nofile above {limit} makes its container fail to start (\"operation not permitted\"); leave ulimits out or stay at or below it.\n"))
}

/// The pid of the first process named `name`.
fn process(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

/// The hard "Max open files" of process `pid`.
fn open_files_limit(pid: &u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}

/// Package mirrors a build's RUN steps would use, and the port each answers on.
const MIRRORS: &[(&str, &str)] = &[
    ("Debian's package mirror", "deb.debian.org:80"),
    ("PyPI", "pypi.org:443"),
];

/// Whether the mirrors answer from this host: one TCP connection each, at once, 3 s at most.
async fn mirrors_note() -> String {
    let probes = MIRRORS.iter().map(|(name, addr)| async move {
        let ok = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
            .await
            .is_ok_and(|c| c.is_ok());
        (*name, ok)
    });
    let found = futures_util::future::join_all(probes).await;
    let (up, down): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, ok)| *ok);
    let names = |v: &[(&str, bool)]| v.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" and ");
    match (up.is_empty(), down.is_empty()) {
        (false, true) => format!("Builds can reach {}: a Dockerfile may install packages (apt-get install, pip install) on top of a local image.
", names(&up)),
        (true, _) => "Builds cannot reach any package mirror: use only what the local images hold, and the standard library of their languages.
".into(),
        (false, false) => format!("Builds can reach {} but not {}: install packages only from the first.
", names(&up), names(&down)),
    }
}

/// Base images every listing names, when the machine has them.
const BASE_IMAGES: &[&str] = &[
    "debian",
    "ubuntu",
    "alpine",
    "busybox",
    "python",
    "node",
    "golang",
    "rust",
    "openjdk",
    "eclipse-temurin",
    "nginx",
    "redis",
    "postgres",
    "rabbitmq",
    "mysql",
    "mariadb",
    "mongo",
];

/// At most `cap` of `local`: those that share a name with one of `about` first, then base
/// images, then the rest, each group sorted.
pub fn relevant_images(local: &[String], about: &[&str], cap: usize) -> Vec<String> {
    let repo_name = |i: &str| -> String {
        let (repo, _) = crate::docker::engine::split_image(i);
        repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase()
    };
    let words: Vec<String> = about
        .iter()
        .flat_map(|a| {
            a.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.len() > 2)
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut scored: Vec<(u8, &String)> = local
        .iter()
        .map(|i| {
            let name = repo_name(i);
            let score = if words.iter().any(|w| name.contains(w.as_str())) {
                0
            } else if BASE_IMAGES.contains(&name.as_str()) {
                1
            } else {
                2
            };
            (score, i)
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(cap)
        .map(|(_, i)| i.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_like_the_spec_come_first_then_base_images() {
        let mut local: Vec<String> = (0..200).map(|i| format!("team/tool{i:03}:1")).collect();
        local.extend(["python:3.11-slim", "postgres:15", "busybox:latest"].map(String::from));
        let shown = relevant_images(&local, &["an API on postgres with a worker"], IMAGES_NAMED);
        assert_eq!(shown.len(), IMAGES_NAMED);
        assert_eq!(
            &shown[..3],
            &["postgres:15", "busybox:latest", "python:3.11-slim"]
        );
    }
}
