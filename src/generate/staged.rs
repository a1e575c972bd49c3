//! Staged generation for large systems: a manifest, then batches of files sent
//! concurrently, then any missing file alone.

use std::path::Path;

use futures_util::StreamExt;

use crate::events::Event;
use crate::llm::{LlmError, Message};
use crate::protocol::{parse_contract, parse_manifest, parse_reply, ManifestEntry};
use crate::workspace::write_atomic;

use super::{prompts, Collected, GenerateError, Session, SharedNames};

/// Files per batch: enough to keep a service's files together, small enough to stay far
/// from the output limit.
pub const BATCH_FILES: usize = 6;

/// Phase 1 and 2. Returns what was collected and the manifest (path, purpose) so the
/// caller can ask for any listed file that is still missing.
pub(crate) async fn generate(
    s: &Session<'_>,
    spec: &str,
    out: &Path,
) -> Result<(Collected, Vec<(String, String)>), GenerateError> {
    s.events.emit(Event::Phase {
        name: "manifest".into(),
    });
    let (manifest, contract) = ask_manifest(s, spec, out).await?;
    let shared = shared_names(spec, &manifest);
    let batches = plan_batches(&manifest, s.jobs, s.pack_batches);
    s.events.emit(Event::BatchesPlanned {
        total: batches.len(),
    });
    s.events.emit(Event::Phase {
        name: format!("batches ({} at once)", s.jobs),
    });
    let total = batches.len();
    let mut done = 0;
    let mut collected = Collected {
        contract: contract.clone(),
        ..Default::default()
    };
    let mut stream = futures_util::stream::iter(batches)
        .map(|(group, n, files)| {
            let prompt = prompts::batch(spec, &manifest, &shared, contract.as_deref(), &files);
            let paths: Vec<String> = files.iter().map(|f| f.path.as_str().to_string()).collect();
            async move {
                let label = format!("batch {group} {n}");
                let file = format!("batch-{}-{n}.json", crate::llm::audit::sanitize(&group));
                let r = s.ask(&label, &file, vec![Message::user(prompt)]).await;
                (group, paths, r)
            }
        })
        .buffer_unordered(s.jobs);
    while let Some((group, paths, reply)) = stream.next().await {
        let reply = reply?;
        let mut parsed = parse_reply(&reply.text);
        // A batch owns its own files; a file it wrote for another batch is kept only
        // when that batch did not deliver it.
        parsed
            .changes
            .sort_by_key(|c| !paths.iter().any(|p| p == c.path().as_str()));
        let (own, foreign): (Vec<_>, Vec<_>) = parsed
            .changes
            .into_iter()
            .partition(|c| paths.iter().any(|p| p == c.path().as_str()));
        parsed.changes = own;
        collected.absorb(parsed, false);
        let extra = crate::protocol::ParsedReply {
            changes: foreign,
            ..Default::default()
        };
        collected.absorb(extra, true);
        done += 1;
        s.events.emit(Event::BatchDone { group, done, total });
    }
    let wanted = manifest
        .iter()
        .map(|e| (e.path.as_str().to_string(), e.purpose.clone()))
        .collect();
    Ok((collected, wanted))
}

/// The manifest, and the contract when the reply holds one.
async fn ask_manifest(
    s: &Session<'_>,
    spec: &str,
    out: &Path,
) -> Result<(Vec<ManifestEntry>, Option<String>), GenerateError> {
    let prompt = prompts::manifest(spec);
    let first = s
        .ask(
            "manifest",
            "manifest.json",
            vec![Message::user(prompt.clone())],
        )
        .await?;
    let why = match parse_manifest(&first.text) {
        Ok((entries, refused)) => {
            return Ok((accept(s, entries, refused), parse_contract(&first.text)))
        }
        Err(why) => why,
    };
    s.events.warn(format!(
        "the manifest could not be parsed ({why}); asking once more for JSON only"
    ));
    let messages = vec![
        Message::user(prompt),
        Message::assistant(first.text.clone()),
        Message::user(prompts::MANIFEST_RETRY),
    ];
    let second = s
        .ask("manifest retry", "manifest-retry.json", messages)
        .await?;
    match parse_manifest(&second.text) {
        Ok((entries, refused)) => Ok((
            accept(s, entries, refused),
            parse_contract(&second.text).or_else(|| parse_contract(&first.text)),
        )),
        Err(why) => {
            let saved = out
                .join(crate::workspace::MASGEN_DIR)
                .join("manifest-reply.txt");
            let body = format!(
                "--- first reply ---\n{}\n--- second reply ---\n{}\n",
                first.text, second.text
            );
            write_atomic(&saved, body.as_bytes())
                .map_err(|e| LlmError::Protocol(format!("cannot save the manifest reply: {e}")))?;
            Err(GenerateError::Manifest { why, saved })
        }
    }
}

fn accept(
    s: &Session<'_>,
    entries: Vec<ManifestEntry>,
    refused: Vec<String>,
) -> Vec<ManifestEntry> {
    for r in refused {
        s.events.emit(Event::Rejected {
            path: r.clone(),
            reason: "refused manifest path".into(),
        });
    }
    entries
}

/// The batches of phase 2. Each group is cut into units of at most [`BATCH_FILES`]
/// files. With `pack` and more units than `jobs`, whole units are packed into at most
/// `jobs` batches balanced by file count (largest first, each into the lightest batch
/// it fits), so every request slot is used once instead of in waves; a group is never
/// split across batches by packing. Without `pack`: one batch per unit, the original
/// tool's plan. Batches keep manifest order; a packed batch is named after its groups.
pub(crate) fn plan_batches(
    manifest: &[ManifestEntry],
    jobs: usize,
    pack: bool,
) -> Vec<(String, usize, Vec<&ManifestEntry>)> {
    let mut groups: indexmap::IndexMap<&str, Vec<&ManifestEntry>> = indexmap::IndexMap::new();
    for e in manifest {
        groups.entry(e.group.as_str()).or_default().push(e);
    }
    let mut units: Vec<(String, usize, Vec<&ManifestEntry>)> = Vec::new();
    for (group, files) in groups {
        for (i, chunk) in files.chunks(BATCH_FILES).enumerate() {
            units.push((group.to_string(), i + 1, chunk.to_vec()));
        }
    }
    if !pack || units.len() <= jobs.max(1) {
        return units;
    }
    // Longest-processing-time-first into `jobs` bins; a unit that fits no bin opens one.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(units[i].2.len()));
    let mut bins: Vec<Vec<usize>> = vec![Vec::new(); jobs.max(1)];
    let size = |bin: &Vec<usize>| bin.iter().map(|&i| units[i].2.len()).sum::<usize>();
    for i in order {
        let fits = bins
            .iter()
            .enumerate()
            .filter(|(_, b)| size(b) + units[i].2.len() <= BATCH_FILES)
            .min_by_key(|(_, b)| size(b))
            .map(|(k, _)| k);
        match fits {
            Some(k) => bins[k].push(i),
            None => bins.push(vec![i]),
        }
    }
    let mut batches: Vec<(usize, String, Vec<&ManifestEntry>)> = bins
        .into_iter()
        .filter(|b| !b.is_empty())
        .map(|mut b| {
            b.sort();
            let name = b
                .iter()
                .map(|&i| units[i].0.clone())
                .collect::<Vec<_>>()
                .join("+");
            let files = b.iter().flat_map(|&i| units[i].2.clone()).collect();
            (b[0], name, files)
        })
        .collect();
    batches.sort_by_key(|b| b.0);
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    batches
        .into_iter()
        .map(|(_, name, files)| {
            let n = seen.entry(name.clone()).or_insert(0);
            *n += 1;
            (name, *n, files)
        })
        .collect()
}

/// Names every batch must use the same way: services (the manifest's service groups),
/// ports and quoted names from the spec.
pub(crate) fn shared_names(spec: &str, manifest: &[ManifestEntry]) -> SharedNames {
    let mut services: Vec<String> = Vec::new();
    for e in manifest {
        if let Some((dir, _)) = e.path.as_str().split_once('/') {
            if !services.iter().any(|s| s == dir) {
                services.push(dir.to_string());
            }
        }
    }
    let mut ports: Vec<u16> = spec
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| (2..=5).contains(&t.len()))
        .filter_map(|t| t.parse::<u16>().ok())
        .filter(|p| *p >= 80 && ![100, 1000].contains(p))
        .collect();
    ports.sort();
    ports.dedup();
    let mut names: Vec<String> = Vec::new();
    for quote in ['\'', '"', '`'] {
        let parts: Vec<&str> = spec.split(quote).collect();
        for (i, p) in parts.iter().enumerate() {
            if i % 2 == 1
                && i + 1 < parts.len()
                && !p.is_empty()
                && p.len() <= 40
                && !p.contains(char::is_whitespace)
                && !names.iter().any(|n| n == p)
            {
                names.push(p.to_string());
            }
        }
    }
    SharedNames {
        services,
        ports,
        names,
    }
}

/// The last check of a staged run: every manifest path exists and the compose file parses.
pub(crate) fn final_check(c: &Collected, wanted: &[(String, String)]) -> Vec<String> {
    let mut problems: Vec<String> = wanted
        .iter()
        .filter(|(p, _)| !c.has(p))
        .map(|(p, _)| format!("{p} is in the manifest but was not generated"))
        .collect();
    match c.compose_text() {
        None => problems.push("the system has no docker-compose.yml".into()),
        Some(text) => {
            if let Err(e) = crate::compose::parse_compose_str(text, "docker-compose.yml") {
                problems.push(format!("docker-compose.yml does not parse: {e}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::check_path;

    fn entry(p: &str, g: &str) -> ManifestEntry {
        ManifestEntry {
            path: check_path(p).unwrap(),
            purpose: String::new(),
            group: g.into(),
        }
    }

    #[test]
    fn batches_keep_groups_together_and_split_large_ones() {
        let mut m = vec![entry("docker-compose.yml", "infrastructure")];
        for i in 0..8 {
            m.push(entry(&format!("a/f{i}.py"), "a"));
        }
        m.push(entry("README.md", "docs"));
        let b = plan_batches(&m, 4, true);
        let shape: Vec<(String, usize, usize)> =
            b.iter().map(|(g, n, f)| (g.clone(), *n, f.len())).collect();
        assert_eq!(
            shape,
            vec![
                ("infrastructure".into(), 1, 1),
                ("a".into(), 1, 6),
                ("a".into(), 2, 2),
                ("docs".into(), 1, 1)
            ]
        );
    }

    #[test]
    fn more_groups_than_jobs_are_packed_whole_into_balanced_batches() {
        let mut m = vec![
            entry("docker-compose.yml", "infrastructure"),
            entry(".env", "infrastructure"),
        ];
        for g in ["a", "b", "c", "d"] {
            m.push(entry(&format!("{g}/Dockerfile"), g));
            m.push(entry(&format!("{g}/app.py"), g));
        }
        m.push(entry("README.md", "docs"));
        m.push(entry("start.sh", "docs"));
        let packed = plan_batches(&m, 4, true);
        assert_eq!(packed.len(), 4, "one wave at --jobs 4");
        let mut sizes: Vec<usize> = packed.iter().map(|b| b.2.len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![2, 2, 4, 4]);
        for (_, _, files) in &packed {
            for g in ["a", "b", "c", "d", "infrastructure", "docs"] {
                let n = files.iter().filter(|f| f.group == g).count();
                assert!(n == 0 || n == 2, "group {g} split across batches");
            }
        }
        let all: usize = packed.iter().map(|b| b.2.len()).sum();
        assert_eq!(all, 12);
        assert_eq!(
            plan_batches(&m, 4, false).len(),
            6,
            "the original plan: one batch per group"
        );
        assert_eq!(
            plan_batches(&m, 8, true).len(),
            6,
            "enough slots: nothing to pack"
        );
    }

    #[test]
    fn shared_names_from_spec_and_manifest() {
        let m = vec![
            entry("publisher/app.py", "publisher"),
            entry("consumer/app.py", "consumer"),
        ];
        let s = shared_names(
            "RabbitMQ on 5672 with exchange 'tasks' and queue 'work_queue', 10 msgs/s",
            &m,
        );
        assert_eq!(s.services, vec!["publisher", "consumer"]);
        assert_eq!(s.ports, vec![5672]);
        assert_eq!(s.names, vec!["tasks", "work_queue"]);
    }
}
