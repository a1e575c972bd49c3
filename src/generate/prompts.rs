//! Every prompt masgen sends, in one place. The system prompt never changes between
//! requests of a run, so the provider's prompt cache serves every call after the first.

use crate::protocol::ManifestEntry;

/// The output protocol both system prompts end with; `$root` names the folder paths are
/// relative to.
macro_rules! output_protocol {
    ($root:literal) => {
        concat!(
            r#"Output protocol: answer only with blocks, one per file, each file complete:
<file path="relative/path">
content
</file>
To change an existing file, you may instead send an edit block whose SEARCH text is copied exactly from the file:
<edit path="relative/path">
<<<<<<< SEARCH
exact existing lines
=======
replacement lines
>>>>>>> REPLACE
</edit>
To delete a file: <delete path="relative/path"/>
Paths are relative to the "#,
            $root,
            "'s root folder and use '/'. Do not wrap blocks in code fences."
        )
    };
}

/// The rules of a generated system and the output protocol.
pub const SYSTEM: &str = concat!(
    r#"You are masgen, an expert in building multi-service systems that run under Docker Compose.
You write complete, working systems: every file in full, no placeholders, no "TODO", no elided code.

Rules for every system:
- docker-compose.yml at the root describes every service. Each service that masgen builds has its own folder named after the service, holding its Dockerfile and its code.
- Pin every base image to a tag (python:3.11-slim, busybox:latest, rabbitmq:3.13-management, ...); never use an untagged image.
- Every long-running service has a healthcheck that really proves it works (an HTTP probe, a broker ping, a check that the worker's loop is alive), with interval, timeout, retries and a start_period.
- Use depends_on with condition: service_healthy for a dependency with a healthcheck, service_completed_successfully for a one-shot job.
- Configuration comes from environment variables with sensible defaults in the code; service names are the host names services use to reach each other.
- Programs log to stdout/stderr, unbuffered (PYTHONUNBUFFERED=1 for Python), and retry their connections at start-up: a dependency may not be ready yet.
- Never privileged containers, host networking, added capabilities, devices, the Docker socket, or host paths outside the system folder (bind mounts, build contexts, env_file).
- A README.md that says what the system is and how to run it, and a start.sh that runs `docker compose up --build`.

Rules that decide whether the system comes up healthy on the first try:
- A server listens on 0.0.0.0 inside its container, never on 127.0.0.1 or localhost: other containers reach it through the project network.
- A healthcheck may only run programs the image has. python:*-slim has neither curl nor wget: probe with `python3 -c` (urllib.request or socket). busybox and alpine have wget, not curl. A check that needs another tool installs it in the Dockerfile.
- A healthcheck proves the service does its job: an HTTP endpoint that answers 200 once the service is ready, a file the main loop touches on every iteration checked for freshness, a broker's own ping. Use interval 2s to 5s and a start_period that covers start-up, so readiness is seen within seconds.
- CMD and ENTRYPOINT in exec form (["python3", "app.py"]), so the program is PID 1 and receives SIGTERM; programs exit promptly on SIGTERM.
- Dockerfile layers in the order that keeps rebuilds short: the base image, system packages, the dependency list (requirements.txt, package.json and its lock file, go.mod), the dependency install (pip install --no-cache-dir -r requirements.txt, npm ci), and the code last. A fix to the code then rebuilds only the last layer.
- Every third-party module the code imports is in that service's dependency list with a pinned version, and the Dockerfile installs the list. Prefer the standard library where it does the job well.
- Create at build time every folder a program writes to. Data that must outlive a container goes to a named volume declared under the top-level volumes key.
- A one-shot job (a migration, a seed, a setup step) exits 0 when done and has no restart policy; services that need its result wait with condition: service_completed_successfully.
- A port the spec gives a service ("a FastAPI service with CRUD endpoints on port 8000") is that service's port and is published on the same host port ("8000:8000"). Ports the spec does not name are not published: services talk to each other over the project network, by service name, unpublished.
- Every name that two files share (service names, host names, ports, queue and topic names, paths on shared volumes, environment variables) is spelled the same in every file, and docker-compose.yml sets the environment variables the code reads.
- In docker-compose.yml, quote environment values that look like numbers or booleans ("9000", "true"), write a literal $ as $$ (CMD-SHELL checks that read variables: pg_isready -U $$POSTGRES_USER), and give depends_on condition: service_healthy only for a dependency that has a healthcheck (service_started otherwise).
- A client of another service retries its connection with a short backoff for up to a minute before giving up, and logs each failed attempt with the host and port it tried.

Healthchecks that work, to adapt:
- HTTP service in a Python image: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
- TCP server in a Python image: ["CMD", "python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 9000), 2)"]
- Worker loop that touches /tmp/heartbeat on every iteration: ["CMD", "python3", "-c", "import os, sys, time; sys.exit(0 if time.time() - os.path.getmtime('/tmp/heartbeat') < 15 else 1)"]
- busybox or alpine web server: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
- Redis: ["CMD", "redis-cli", "ping"]; PostgreSQL: ["CMD-SHELL", "pg_isready -U $$POSTGRES_USER -d $$POSTGRES_DB"]; RabbitMQ: ["CMD", "rabbitmq-diagnostics", "-q", "ping"]

Smoke checks: every system proves it does what the spec asks, not only that it starts.
- Write them as one compose service named smoke in the profile smoke (profiles: [smoke]), built from the folder smoke/ (its Dockerfile and one check program), that reaches the services by name on the project network and waits for them with depends_on (condition: service_healthy). `docker compose up` leaves it out; masgen runs it once every other service is healthy, and `docker compose --profile smoke run --rm smoke` runs it by hand.
- One test point for each requirement of the spec that can be observed from outside: an endpoint answers with the right data, a message flows end to end, a count grows, a record is stored, a file is written, a published port answers.
- It prints TAP on stdout: `TAP version 13`, the plan `1..N`, then per requirement `ok N - what it proves` or `not ok N - what it proves` followed by `# ` lines with what was expected and what came. It exits 0 when every point passed and 1 when any failed.
- Effects that take time are polled with a deadline (every 0.5 s for up to 30 s), never a fixed sleep; the whole check ends within 60 seconds.
- It uses only what its image has: on python:3.11-slim, urllib.request, json and socket; on busybox, wget and nc. Each test point catches its own errors and reports them as not ok: an uncaught exception means the check itself is broken.
- A check that ran and failed is right: in a repair, change the system so that it passes, never the check. Only a check that crashed or did not build may be changed.

Nothing is swapped silently: when a requirement cannot be met as asked on this machine (a component with no image or package here replaced by a stand-in, a feature left out), say so outside the file blocks, one line per requirement, in exactly this form:
<unmet requirement="Grafana dashboard" kind="substituted">a static HTML dashboard served by busybox httpd: no Grafana image on this machine</unmet>
kind is substituted (a stand-in does part of the job) or not_met (left out).

When you repair a system, masgen has built and started it and shows you the evidence: build output, exit codes, the last log lines, health probe output. Find the root cause in that evidence. A service that did not start because a service it depends on failed needs no change of its own. Change as little as possible: fix the failing files with edit blocks, keep every working service as it is, and keep names other files rely on, or change them in every file that uses them. Never weaken a healthcheck to make it pass.

"#,
    output_protocol!("system")
);

/// The system prompt, with what masgen found out about the machine (`--offline`): the
/// same for every request of a run, so the prompt cache still serves it.
pub fn system(machine: Option<&str>) -> String {
    system_with(SYSTEM, machine)
}

/// `rules` as the system prompt, with what masgen found out about the machine.
pub fn system_with(rules: &str, machine: Option<&str>) -> String {
    match machine {
        None => rules.to_string(),
        Some(m) => format!(
            "{rules}\n\nThe machine this system runs on:\n{}",
            m.trim_end()
        ),
    }
}

/// A file as the model reads and writes it: a `<file>` block, closed on its own line.
/// The file tree, a line per folder: `- worker/: Dockerfile, worker.py`.
fn tree_lines(tree: &[String]) -> String {
    let mut folders: Vec<(&str, Vec<&str>)> = Vec::new();
    for path in tree {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path.as_str()),
        };
        match folders.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, names)) => names.push(name),
            None => folders.push((dir, vec![name])),
        }
    }
    folders.sort_by(|a, b| a.0.cmp(b.0));
    folders
        .iter()
        .map(|(dir, names)| {
            if dir.is_empty() {
                format!("- {}\n", names.join(", "))
            } else {
                format!("- {dir}/: {}\n", names.join(", "))
            }
        })
        .collect()
}

fn file_block(path: &str, content: &str) -> String {
    let newline = if content.ends_with('\n') || content.is_empty() {
        ""
    } else {
        "\n"
    };
    format!("<file path=\"{path}\">\n{content}{newline}</file>\n")
}

/// Single-call generation: the whole system in one reply.
pub fn single(spec: &str) -> String {
    format!(
        "Generate the complete system described below. Write every file: docker-compose.yml, each service's folder with its Dockerfile and code, configuration files, README.md and start.sh.\n\n<spec>\n{spec}\n</spec>"
    )
}

/// Sent after a reply cut at max_tokens, following the partial reply as an assistant turn.
pub const CONTINUE: &str = "Your reply was cut off by the output limit. Continue exactly where it stopped, with the very next character: do not repeat anything already written, do not add any preamble, and close every block you open.";

/// One file alone, when it was missing or cut.
pub fn single_file(
    spec: &str,
    path: &str,
    purpose: &str,
    tree: &[String],
    compose: Option<&str>,
    contract: Option<&str>,
) -> String {
    let mut s = format!("We are generating the system described below, file by file.\n\n<spec>\n{spec}\n</spec>\n\n");
    if let Some(c) = contract {
        s.push_str(&contract_section(c));
    }
    s.push_str("Files of the system:\n");
    s.push_str(&tree_lines(tree));
    if let Some(c) = compose {
        s.push_str(&format!(
            "\nThe system's docker-compose.yml:\n<file path=\"docker-compose.yml\">\n{c}</file>\n"
        ));
    }
    s.push_str(&format!(
        "\nWrite the file {path} in full, as one <file path=\"{path}\"> block and nothing else."
    ));
    if !purpose.is_empty() {
        s.push_str(&format!(" Its purpose: {purpose}."));
    }
    s
}

/// Staged generation, phase 1: the manifest, and the contract of names every file must
/// agree on.
pub fn manifest(spec: &str) -> String {
    format!(
        "Plan the system described below. Reply with its manifest only, then its contract. The manifest: a JSON array inside <manifest></manifest>, one object per file, \
each {{\"path\": \"relative/path\", \"purpose\": \"one line\", \"group\": \"...\"}}. Groups: \"infrastructure\" for docker-compose.yml and shared files at the root, \
one group per service named after the service folder (its Dockerfile, code, requirements), \"smoke\" for the smoke check's folder (smoke/Dockerfile and its check program), and \"docs\" for README.md and start.sh. \
List every file the system needs, and nothing else. \
The contract: the names every file must agree on, as one JSON object inside <contract></contract>: \
{{\"services\": [service names, which are also their host names], \"ports\": {{\"service\": [ports it listens on]}}, \"environment\": {{\"VARIABLE\": \"its value or meaning\"}}, \
\"queues\": [], \"topics\": [], \"exchanges\": [], \"routing_keys\": [], \"credentials\": [the environment variables that hold them], \"volumes\": [], \"paths\": [shared paths], \
\"health\": {{\"service\": \"what its healthcheck probes, e.g. GET /health on port 8000\"}}, \"smoke\": [each requirement the smoke check verifies, with the endpoint, queue or file it observes]}}. \
Leave a list empty when the system has none; purposes need not repeat these names.\n\n<spec>\n{spec}\n</spec>"
    )
}

/// The contract, once, as every later request carries it.
fn contract_section(contract: &str) -> String {
    format!("The contract: names every file must use exactly as written here.\n<contract>\n{contract}\n</contract>\n\n")
}

/// Staged generation, phase 1, second try.
pub const MANIFEST_RETRY: &str = "That reply was not a valid manifest. Reply with the JSON array only, inside <manifest></manifest>: [{\"path\": ..., \"purpose\": ..., \"group\": ...}, ...]. No other text.";

/// Names every batch must agree on.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SharedNames {
    pub services: Vec<String>,
    pub ports: Vec<u16>,
    pub names: Vec<String>,
}

/// Staged generation, phase 2: one batch of files. Every batch gets the same contract (or,
/// when the model gave none, the shared names masgen found) and the paths of every file;
/// the purposes only of its own files.
pub fn batch(
    spec: &str,
    manifest: &[ManifestEntry],
    shared: &SharedNames,
    contract: Option<&str>,
    files: &[&ManifestEntry],
) -> String {
    let paths: Vec<&str> = manifest.iter().map(|e| e.path.as_str()).collect();
    let paths = serde_json::to_string(&paths).unwrap_or_default();
    let mut s = format!("We are generating the system described below in batches. Every batch sees the same contract and file list, so all files agree.\n\n<spec>\n{spec}\n</spec>\n\nEvery file of the system: {paths}\n\n");
    if let Some(c) = contract {
        s.push_str(&contract_section(c));
    }
    s.push_str("Shared names every file must use exactly:\n");
    s.push_str(&format!(
        "- services (also their host names): {}\n",
        shared.services.join(", ")
    ));
    if !shared.ports.is_empty() {
        s.push_str(&format!(
            "- ports: {}\n",
            shared
                .ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !shared.names.is_empty() && contract.is_none() {
        s.push_str(&format!(
            "- queues, exchanges and other names from the spec: {}\n",
            shared.names.join(", ")
        ));
    }
    s.push_str("\nWrite exactly these files, each complete, as <file> blocks:\n");
    for f in files {
        s.push_str(&format!("- {} ({})\n", f.path, f.purpose));
    }
    s
}

/// A file a round shows the model: whole, or (the compose file) only the failing services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub path: String,
    pub text: String,
    /// The services whose entries are shown, when `text` is an excerpt of the compose file.
    pub excerpt_of: Option<Vec<String>>,
}

/// A repair round: the evidence of what failed and the files it implicates.
pub fn repair(spec: &str, tree: &[String], files: &[Shown], diagnostics: &str) -> String {
    let mut s =
        String::from("The system below was built and started, and it is not healthy. Fix it.\n\n");
    if spec.trim().is_empty() {
        s.push_str("(No spec was recorded for this system: infer its purpose from its files.)\n\n");
    } else {
        s.push_str(&format!("<spec>\n{spec}\n</spec>\n\n"));
    }
    s.push_str("Files of the system:\n");
    s.push_str(&tree_lines(tree));
    s.push_str("\nThe files the failures implicate, as they are now:\n");
    for f in files {
        match &f.excerpt_of {
            None => s.push_str(&file_block(&f.path, &f.text)),
            Some(services) => {
                let newline = if f.text.ends_with('\n') { "" } else { "\n" };
                s.push_str(&format!(
                    "<excerpt path=\"{}\" services=\"{}\">\n{}{newline}</excerpt>\n(Only these entries; the file has the other services too. Edit it with <edit> blocks only.)\n",
                    f.path,
                    services.join(", "),
                    f.text,
                ));
            }
        }
    }
    s.push_str(&format!(
        "\nWhat failed, root cause first:\n{diagnostics}\n"
    ));
    s.push_str(
        "\nAnswer with <edit> blocks (SEARCH text copied exactly from the files above), <file> blocks for new or fully rewritten files, and <delete/> blocks, \
for the files that must change, and nothing else. Fix the root cause; keep every healthcheck meaningful. \
README.md is editable too: when a fix changes what it describes (an image swapped for a build, a port, a credential), keep it true.",
    );
    s
}

/// Sent back within a round: edits that did not apply, blocks refused for their path, whole
/// files for a file shown in part, or a reply with no block at all.
pub fn edits_failed(
    failures: &[crate::protocol::EditFailure],
    partial: &[String],
    rejected: &[crate::protocol::Rejected],
    applied: usize,
) -> String {
    if failures.is_empty() && partial.is_empty() && rejected.is_empty() {
        return "Your reply held no <edit>, <file> or <delete> block, so nothing changed and the failure stands. Answer again with only the blocks that fix it, in the format given above (not Markdown code fences).".into();
    }
    let mut s = format!("{applied} of your changes applied.");
    if !rejected.is_empty() {
        s.push_str(" These blocks were refused and not written:");
        for r in rejected {
            s.push_str(&format!("\n- {}: {}", r.path, r.reason));
        }
        s.push_str("\nPaths are relative to the system's folder, use /, never contain .., and never touch .masgen/ or .git/.");
    }
    if !partial.is_empty() {
        s.push_str(&format!(
            " Your whole <file> blocks for {} were not applied: you saw only part of that file, and they would drop the rest. Change it with <edit> blocks.",
            partial.join(", ")
        ));
    }
    if failures.is_empty() {
        return s;
    }
    s.push_str("\nThese edits did not apply, because their SEARCH text is not in the file; nothing of them was changed:\n");
    for f in failures {
        s.push_str(&format!(
            "\n- hunk {} of the edit to {}, which searched for:\n<<<\n{}>>>\n",
            f.index, f.path, f.search
        ));
        if f.nearest.is_empty() {
            s.push_str("  No lines of the file look like it.\n");
        } else {
            s.push_str(&format!(
                "  The closest lines that do exist in {}:\n<<<\n{}>>>\n",
                f.path, f.nearest
            ));
        }
    }
    s.push_str("\nSend corrected <edit> blocks (SEARCH copied exactly from the current file) or whole <file> blocks for these files only (never for a file you saw only in part).");
    s
}

/// A change request on an existing system.
pub fn iterate(
    spec: &str,
    change: &str,
    tree: &[String],
    files: &[(String, String)],
    user_edited: &[String],
    omitted: bool,
    before: Option<&str>,
) -> String {
    let mut s = String::from("Change the existing system below as requested.\n\n");
    if !spec.trim().is_empty() {
        s.push_str(&format!("<spec>\n{spec}\n</spec>\n\n"));
    }
    if let Some(b) = before {
        s.push_str(&format!("Before this change: {b}\n\n"));
    }
    s.push_str(&format!(
        "<change>\n{change}\n</change>\n\nFiles of the system:\n"
    ));
    s.push_str(&tree_lines(tree));
    if !user_edited.is_empty() {
        s.push_str(&format!(
            "\nThe user edited these files by hand since they were generated: keep their changes unless the request needs otherwise: {}\n",
            user_edited.join(", ")
        ));
    }
    s.push_str(if omitted {
        "\nThe files most relevant to the change, as they are now (the others are listed above):\n"
    } else {
        "\nEvery file, as it is now:\n"
    });
    for (path, content) in files {
        s.push_str(&file_block(path, content));
    }
    if omitted {
        s.push_str("\nIf you need a file that is not shown, reply with only <need path=\"...\"/> lines naming them (once); otherwise make the change.\n");
    }
    s.push_str(
        "\nMake the change with <edit> blocks (SEARCH copied exactly from the files above), <file> blocks for new or rewritten files, and <delete/> blocks. \
Keep docker-compose.yml, healthchecks, depends_on and README.md consistent with the change. \
Add or change smoke test points (the smoke service) for the behaviour the change asks for, and keep the others. Answer with blocks only.",
    );
    s
}

/// The files the model asked for with <need/>.
pub fn more_files(files: &[(String, String)]) -> String {
    let mut s = String::from("Here are the files you asked for:\n");
    for (path, content) in files {
        s.push_str(&file_block(path, content));
    }
    s.push_str("\nNow make the change, with blocks only.");
    s
}

/// The rules of `masgen smoke`: smoke checks for a compose project masgen did not write,
/// in their own folder and compose file, never touching the project's files.
pub const CHECKS_SYSTEM: &str = concat!(
    r#"You are masgen, an expert in Docker Compose systems. You write smoke checks for a compose project that someone else wrote: programs that run once the system is up and healthy and prove, from outside, that it does what its README and code say it does.

What you write, and nothing else:
- compose.smoke.yaml at the project's root: a compose file that Docker Compose merges over the project's own (docker compose -f <the project's files> -f compose.smoke.yaml --profile smoke run --rm <check>). It has only a top-level `services:` key, and each service in it is a new smoke check: `profiles: [smoke]`, `build: ./smoke/<check>` (a folder of its own under smoke/), and depends_on on each project service it talks to, with condition: service_healthy when that service has a healthcheck, service_completed_successfully for a one-shot job, service_started otherwise. It never redefines, extends or changes a service of the project, nor its networks or volumes: the project is the user's.
- The files of each check under smoke/<check>/: its Dockerfile and one check program. One check per area of the system is enough; a small project needs one check.
- Never any other file. The project's files are not yours to change, even if you see a bug in them: a check that finds the bug fails, and that is its job.

How a check works:
- It reaches the project's services by their service names on the project network, on their container ports (not the published ones).
- One TAP test point per behaviour the README or the code promises that can be observed from outside: an endpoint answers with the right data, a message put in comes out the other end, a count grows, a record is stored and read back, a file appears. Prefer what the README promises; read the code for the exact paths, ports, queue names and payloads.
- It prints TAP on stdout: `TAP version 13`, the plan `1..N`, then per behaviour `ok N - what it proves` or `not ok N - what it proves` followed by `# ` lines with what was expected and what came. It exits 0 when every point passed and 1 when any failed.
- Effects that take time are polled with a deadline (every 0.5 s for up to 30 s), never a fixed sleep; the whole check ends within 60 seconds.
- Each test point catches its own errors and reports them as not ok: an uncaught exception means the check itself is broken.
- It uses only images this machine has (named below when masgen knows them) and only what its image has: on python:3.11-slim, urllib.request, json and socket; on busybox, wget and nc. The Dockerfile pins its base image to a tag and copies the check program; CMD in exec form.
- A check never writes to the project's volumes or changes its data beyond what a user of the system would do through its interfaces.

When masgen shows you a check that is broken (it did not build, did not start, or crashed without reporting a failed test point), fix that check's own files or its entry in compose.smoke.yaml. A check that ran and reported `not ok` is not yours to change: it found the system does not do what was promised.

"#,
    output_protocol!("project")
);

/// `masgen smoke`'s first request: the project as masgen read it.
pub fn checks(project: &str) -> String {
    format!(
        "Write smoke checks for this compose project: compose.smoke.yaml and the checks' folders under smoke/. \
Nothing else may change.\n\n{project}\n\
Answer with <file> blocks only: compose.smoke.yaml and each check's Dockerfile and program."
    )
}

/// A revision of broken checks: what went wrong with each, and its files as they are.
pub fn checks_revision(files: &[(String, String)], diagnostics: &str) -> String {
    let mut s = String::from(
        "masgen built the project with your smoke checks, started it, and ran them. These checks are broken: they did not build, did not start, or crashed before reporting their test points. Fix each check's own files (or its entry in compose.smoke.yaml); nothing else may change.\n\nThe broken checks' files, as they are now:\n",
    );
    for (path, text) in files {
        s.push_str(&file_block(path, text));
    }
    s.push_str(&format!("\nWhat went wrong:\n{diagnostics}\n"));
    s.push_str("\nAnswer with <edit> blocks (SEARCH text copied exactly from the files above) or <file> blocks for the check files that must change, and nothing else.");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_system_prompts_end_with_the_output_protocol() {
        for (prompt, root) in [(SYSTEM, "system"), (CHECKS_SYSTEM, "project")] {
            assert!(prompt.contains(".\n\nOutput protocol: answer only with blocks"));
            assert!(prompt.ends_with(&format!(
                "Paths are relative to the {root}'s root folder and use '/'. Do not wrap blocks in code fences."
            )));
        }
    }

    use super::*;

    #[test]
    fn the_system_prompt_is_long_enough_to_be_cached() {
        // The API caches a prefix only from a minimum length on (1,024 tokens for Sonnet),
        // and ignores cache_control below it without an error. Words plus punctuation marks
        // undercount tokens, so staying above 1,200 of them keeps the prefix above 1,024.
        let pieces = SYSTEM
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .count()
            + SYSTEM
                .chars()
                .filter(|c| c.is_ascii_punctuation() && *c != '_')
                .count();
        assert!(
            pieces >= 1200,
            "the system prompt has only about {pieces} tokens"
        );
    }

    #[test]
    fn the_tree_is_a_line_per_folder() {
        let tree: Vec<String> = [
            "README.md",
            "a/x.py",
            "start.sh",
            "a/Dockerfile",
            "a/b/c.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            tree_lines(&tree),
            "- README.md, start.sh\n- a/: x.py, Dockerfile\n- a/b/: c.txt\n"
        );
    }
}
