//! Command-line definitions. Doc comments are the --help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn a plain-English description of a multi-service system into a running,
/// health-checked docker compose system.
///
/// `masgen "SPEC"` is `masgen generate "SPEC"`.
#[derive(Debug, Parser)]
#[command(
    name = "masgen",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print events as JSON lines on stdout instead of human progress.
    #[arg(long, global = true)]
    pub json: bool,
    /// When to colour human output (NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    Anthropic,
    Openai,
}

impl ModelFlags {
    fn env(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }

    /// The key: -k, else the provider's environment variable.
    pub fn key(&self) -> Option<String> {
        self.api_key.clone().or_else(|| match self.provider {
            ProviderChoice::Anthropic => Self::env("ANTHROPIC_API_KEY"),
            ProviderChoice::Openai => Self::env("OPENAI_API_KEY"),
        })
    }

    /// The base URL: --base-url, else the provider's environment variable, else its default.
    pub fn url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| match self.provider {
                ProviderChoice::Anthropic => Self::env("ANTHROPIC_BASE_URL")
                    .unwrap_or_else(|| crate::llm::DEFAULT_BASE_URL.into()),
                ProviderChoice::Openai => Self::env("OPENAI_BASE_URL")
                    .unwrap_or_else(|| crate::llm::DEFAULT_OPENAI_BASE_URL.into()),
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a system from a spec, then build, start and health-check it.
    Generate(GenerateArgs),
    /// Build, start and health-gate an existing compose system; no model needed.
    Verify(VerifyArgs),
    /// Verify a system, then repair it with the model until healthy or the budget is spent.
    Repair(RepairArgs),
    /// Remove every container, network and volume masgen started for a system.
    Down(DownArgs),
    /// Print the compose project as masgen reads it, in `docker compose config`'s normal form.
    Config(ConfigArgs),
    /// Write smoke checks for any compose project (in smoke/ and compose.smoke.yaml, never
    /// touching its files), then verify the system and run them.
    Smoke(SmokeArgs),
    /// Write a CI workflow that builds the system, waits until it is ready, runs its smoke
    /// checks and tears down, with Docker Compose alone.
    Ci(CiArgs),
    /// Render a run's report (a system's .masgen/report.json, or a --report file) as one
    /// HTML page, or as a Markdown summary.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The system's folder (its .masgen/report.json), or a report file.
    #[arg(default_value = ".")]
    pub from: PathBuf,
    /// Write the page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the Markdown summary to FILE.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// Names of the subcommands, for `masgen SPEC` (no subcommand) handling.
pub const SUBCOMMANDS: &[&str] = &[
    "generate", "verify", "repair", "down", "config", "smoke", "ci", "report", "help",
];

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The system to build, in words; or @path/to/spec.txt to read it from a file.
    pub spec: Option<String>,
    /// Folder to write the system into (created when missing).
    #[arg(short, long, default_value = "generated-system")]
    pub output: PathBuf,
    /// Generate in stages (manifest, then batches, then file by file) for large systems.
    #[arg(long)]
    pub staged: bool,
    /// Model requests in flight at once (staged batches, single files); also parallel image builds.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Staged: one batch per group, as the original tool planned (benchmark baseline).
    #[arg(long, hide = true)]
    pub batch_per_group: bool,
    /// Write into an output folder that holds files masgen did not write (replaced files are kept under .masgen/rounds/000-previous/).
    #[arg(long)]
    pub force: bool,
    /// Write the files only: no build, no start, no health check, no repair.
    #[arg(long)]
    pub no_verify: bool,
    /// Change the existing system in --output as TEXT asks, then verify and repair it. SPEC may be left out when the folder's .masgen/state.json records one.
    #[arg(long, value_name = "TEXT")]
    pub iterate: Option<String>,
    #[command(flatten)]
    pub run: RunFlags,
}

/// What `generate` and `repair` share: the model, the repair budgets, the report file and
/// the verification.
#[derive(Debug, Args)]
pub struct RunFlags {
    #[command(flatten)]
    pub model: ModelFlags,
    #[command(flatten)]
    pub repair: RepairFlags,
    /// Also write the run report (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub verify: VerifyFlags,
}

/// How to reach the model.
#[derive(Debug, Args, Clone)]
pub struct ModelFlags {
    /// Which API the model speaks: anthropic (the Messages API) or openai (Chat
    /// Completions: OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter, LiteLLM).
    #[arg(long, env = "MASGEN_PROVIDER", value_enum, default_value_t = ProviderChoice::Anthropic)]
    pub provider: ProviderChoice,
    /// API key [default: env ANTHROPIC_API_KEY, or OPENAI_API_KEY with --provider openai;
    /// a local openai server needs none].
    #[arg(short = 'k', long)]
    pub api_key: Option<String>,
    /// Model id.
    #[arg(long, env = "MASGEN_MODEL", default_value = crate::generate::DEFAULT_MODEL)]
    pub model: String,
    /// API base URL [default: env ANTHROPIC_BASE_URL, else https://api.anthropic.com; with
    /// --provider openai: env OPENAI_BASE_URL, else https://api.openai.com/v1].
    #[arg(long)]
    pub base_url: Option<String>,
    /// USD per million input tokens: sets or overrides the model's price (with --price-out).
    #[arg(long, value_name = "USD", value_parser = parse_usd, requires = "price_out")]
    pub price_in: Option<f64>,
    /// USD per million output tokens: sets or overrides the model's price (with --price-in).
    #[arg(long, value_name = "USD", value_parser = parse_usd, requires = "price_in")]
    pub price_out: Option<f64>,
    /// max_tokens of each model request.
    #[arg(long, default_value_t = 32_000, value_parser = clap::value_parser!(u32).range(256..=128_000))]
    pub max_tokens: u32,
    /// Attempts per request for transient API errors (429, 5xx, 529, broken streams).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub retries: u32,
    /// First retry delay in milliseconds (doubled each retry, with jitter).
    #[arg(long, default_value_t = 1000, hide = true)]
    pub retry_base_ms: u64,
    /// Save every raw model reply under <output>/claude-responses/.
    #[arg(long)]
    pub download_responses: bool,
    /// Play recorded replies from DIR instead of calling the API (see README: replay format).
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
}

/// Budgets of the repair loop.
#[derive(Debug, Args, Clone)]
pub struct RepairFlags {
    /// Repair rounds at most after the first verification (0: verify only).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_rounds: u32,
    /// Stop before any model request that could make the run cost more than USD in all.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost: Option<f64>,
    /// Let repairs change any smoke check (by default only a broken check, one that crashed or did not build, may be changed: a check is never weakened to pass).
    #[arg(long)]
    pub allow_smoke_edits: bool,
}

fn parse_usd(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("{s:?} is not an amount in USD (e.g. 0.50)"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s:?} is not an amount in USD (e.g. 0.50)"))
    }
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The system's folder (masgen-made or not).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// What the system should do; default: the spec in .masgen/state.json. Text or @file.
    #[arg(long)]
    pub spec: Option<String>,
    #[command(flatten)]
    pub project: ProjectFlags,
    /// Images built at once (default: the number of cores, at least 4).
    #[arg(long)]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub run: RunFlags,
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullWhen {
    Always,
    Missing,
    Never,
}

/// Flags shared by `generate` and `verify`.
#[derive(Debug, Args, Clone)]
pub struct VerifyFlags {
    /// Seconds each service may take to become ready.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub health_timeout: u64,
    /// Seconds a pull may go without progress before it fails (no fixed deadline: a large
    /// image on a slow link pulls as long as it moves).
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub pull_stall: u64,
    /// When to pull images, whatever each service's pull_policy says: always (FROM images of
    /// builds too), missing (only images not on this machine) or never.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub pull: Option<PullWhen>,
    /// No registry is reachable: pull nothing, use this machine's images only, and tell the
    /// model up front which images it has (also MASGEN_OFFLINE=1).
    #[arg(long, env = "MASGEN_OFFLINE", value_parser = clap::builder::BoolishValueParser::new())]
    pub offline: bool,
    /// Seconds a service without a healthcheck must keep running to count as ready.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub settle: u64,
    /// Seconds, after every service is ready, in which nothing may exit or turn unhealthy.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub stability: u64,
    /// Skip the smoke checks (the services of the compose profile `smoke`, run once the system is healthy).
    #[arg(long)]
    pub no_smoke: bool,
    /// Seconds one smoke service may run; past that it fails and is removed.
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub smoke_timeout: u64,
    /// Memory limit of each container while verifying, unless the service sets its own (e.g. 512m).
    #[arg(long, default_value = "1g", value_name = "SIZE")]
    pub memory: String,
    /// Process limit of each container while verifying.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub pids: i64,
    /// Allow privileged containers, the Docker socket, host paths outside the system, host namespaces, added capabilities and devices.
    #[arg(long)]
    pub allow_unsafe: bool,
    /// Rebuild every image from its Dockerfile, using neither masgen's earlier images nor the builder's cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Leave a healthy system running (remove it later with `masgen down`).
    #[arg(long)]
    pub keep: bool,
    /// Publish the declared host ports, show where each service answers, follow the logs until Ctrl-C, then tear down.
    #[arg(long)]
    pub execute: bool,
    /// Also write a JUnit XML report (one testcase per service) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the run as one self-contained HTML page (timeline, failures, rounds and
    /// their diffs, smoke checks) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the verdict, services and failures as Markdown to FILE (for a CI job's
    /// summary, e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The system's folder (holding docker-compose.yml or compose.yaml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Images built at once (default: the number of cores, at least 4).
    #[arg(long)]
    pub jobs: Option<u16>,
    /// Also write the report (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub project: ProjectFlags,
    #[command(flatten)]
    pub verify: VerifyFlags,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The project's folder (holding its compose file); masgen writes smoke/ and
    /// compose.smoke.yaml there and changes nothing else.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub project: ProjectFlags,
    /// Write new checks even when the project has some (the old ones are removed; a version
    /// you edited is kept under .masgen/rounds/ first). Without it, existing checks are run
    /// as they are.
    #[arg(long)]
    pub regenerate: bool,
    /// Images built at once (default: the number of cores, at least 4).
    #[arg(long)]
    pub jobs: Option<u16>,
    #[command(flatten)]
    pub run: RunFlags,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// The project's folder (the repository's root, where the workflow runs).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub project: ProjectFlags,
    /// Also write the GitLab CI job (.gitlab-ci.yml).
    #[arg(long)]
    pub gitlab: bool,
    /// Make the job install and call `masgen verify` (its JUnit and report as artifacts)
    /// instead of Docker Compose's commands.
    #[arg(long)]
    pub with_masgen: bool,
    /// Replace workflow files that exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The system's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Also remove the images masgen built for it (`masgen/<project>-<service>`), like `docker compose down --rmi local`.
    #[arg(long)]
    pub images: bool,
    /// Also remove the kept system's named volumes, and the data in them (as `docker compose down -v`); without it they stay for the next --keep or --execute.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[command(flatten)]
    pub project: ProjectFlags,
}

/// Which compose project to read, as `docker compose` takes it.
#[derive(Debug, Args, Clone, Default)]
pub struct ProjectFlags {
    /// A compose file to use instead of the one found in the folder (relative to it);
    /// repeat to merge later files over earlier ones, as `docker compose -f`. Default:
    /// COMPOSE_FILE, else the folder's compose file and its override file.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The project name, as `docker compose -p` (default: COMPOSE_PROJECT_NAME, else the
    /// file's `name:`, else the folder's name, normalised).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Read the project's variables from FILE instead of the folder's .env; repeat for
    /// more (later files win), as `docker compose --env-file`.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// The project directory, as `docker compose --project-directory` (relative to the
    /// folder): relative paths, `.env` and the default project name come from it. Default:
    /// the first compose file's folder.
    #[arg(long = "project-directory", value_name = "PATH")]
    pub project_directory: Option<PathBuf>,
}

impl ProjectFlags {
    pub fn load_options(&self) -> crate::compose::load::LoadOptions {
        crate::compose::load::LoadOptions {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_files.clone(),
            profiles: Vec::new(),
            project_directory: self.project_directory.clone(),
            smoke_file: true,
        }
    }
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The project's folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub project: ProjectFlags,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
    /// Print the names of the services that would run, one a line, and nothing else.
    #[arg(long)]
    pub services: bool,
    /// Print the names of the profiles the project defines, one a line, and nothing else.
    #[arg(long)]
    pub profiles: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

/// `masgen SPEC ...` means `masgen generate SPEC ...`: insert the subcommand when the
/// first argument is not one (or a top-level flag such as --help / --version).
pub fn with_default_subcommand(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    // Global options may come first (`masgen --json verify .`): the subcommand, if any, is
    // the first word after them.
    let mut at = 1;
    while let Some(a) = args.get(at).and_then(|a| a.to_str()) {
        match a {
            "--json" => at += 1,
            "--color" => at += 2,
            _ if a.starts_with("--color=") => at += 1,
            _ => break,
        }
    }
    let first = args.get(at).and_then(|a| a.to_str()).unwrap_or("");
    let top_level = ["-h", "--help", "-V", "--version"];
    if args.len() > at && !SUBCOMMANDS.contains(&first) && !top_level.contains(&first) {
        let mut out = args;
        out.insert(at, "generate".into());
        out
    } else {
        args
    }
}

#[cfg(test)]
mod default_subcommand_tests {
    use super::with_default_subcommand;

    fn words(args: &[&str]) -> Vec<String> {
        let os = args.iter().map(|a| a.into()).collect();
        with_default_subcommand(os)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn global_options_before_a_subcommand_keep_it() {
        assert_eq!(
            words(&["masgen", "--json", "verify", "."]),
            ["masgen", "--json", "verify", "."]
        );
        assert_eq!(
            words(&["masgen", "--color", "never", "down", "x"]),
            ["masgen", "--color", "never", "down", "x"]
        );
        assert_eq!(
            words(&["masgen", "--json", "a spec"]),
            ["masgen", "--json", "generate", "a spec"]
        );
        assert_eq!(
            words(&["masgen", "a spec"]),
            ["masgen", "generate", "a spec"]
        );
        assert_eq!(words(&["masgen", "--help"]), ["masgen", "--help"]);
    }
}
