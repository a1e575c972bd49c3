//! Generation: a spec becomes files, in one call or in stages, then written to disk.

pub(crate) mod exchange;
pub mod guard;
mod iterate;
pub mod prompts;
pub(crate) mod single;
mod staged;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indexmap::IndexMap;
use serde::Serialize;

use crate::events::{Event, Events};
use crate::llm::audit::ResponseLog;
use crate::llm::{
    self, pricing, AnthropicModel, Budget, Completion, LlmError, Message, Model, ReplayModel,
    Request, RetryPolicy, Usage,
};
use crate::protocol::{Change, ParsedReply, Rejected, SafePath};
use crate::workspace::{write_atomic, Workspace, WorkspaceError};

pub use iterate::{IterateOutcome, ALL_FILES_BUDGET};
pub use prompts::SharedNames;

/// The default model id.
pub const DEFAULT_MODEL: &str = "claude-sonnet-5-5";

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error("the model's manifest is not usable ({why}), also after asking again for JSON only; its raw reply is in {}. Try again, or generate without --staged", saved.display())]
    Manifest { why: String, saved: PathBuf },
    #[error(
        "the model's reply held no file that could be written.{}",
        show_reply(commentary)
    )]
    NoFiles { commentary: String },
    #[error("the change request is empty: say what to change, e.g. --iterate \"add a fourth agent that logs every message to a file\"")]
    EmptyChange,
    #[error("{} holds no compose file (docker-compose.yml, compose.yaml, ...): --iterate changes an existing system; generate one first, or pass its folder with -o", dir.display())]
    NoCompose { dir: PathBuf },
}

fn show_reply(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        let shown: String = text.chars().take(2000).collect();
        format!(" It said:\n{shown}")
    }
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Manifest, then batches, then file by file.
    pub staged: bool,
    /// Requests in flight at once (staged batches and single files).
    pub jobs: usize,
    /// max_tokens of each request.
    pub max_tokens: u32,
    /// Write into a folder that holds files masgen did not write.
    pub force: bool,
    /// Save every raw reply under `<output>/claude-responses/`.
    pub download_responses: bool,
    /// Stop before any request that could make the run cost more than this (USD).
    pub max_cost_usd: Option<f64>,
    /// Staged: pack whole groups into at most `jobs` balanced batches when there are
    /// more groups than that (false: one batch per group, the original tool's plan).
    pub pack_batches: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            staged: false,
            jobs: 4,
            max_tokens: 32_000,
            force: false,
            download_responses: false,
            max_cost_usd: None,
            pack_batches: true,
        }
    }
}

/// One request, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub label: String,
    pub usage: Usage,
    pub stop_reason: String,
    pub secs: f64,
    /// Seconds since the run began, when the request was sent.
    pub started_secs: f64,
}

/// What generation did.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    pub model: String,
    pub mode: &'static str,
    pub requests: Vec<RequestRecord>,
    pub usage: Usage,
    /// Estimated USD; None when the model's price is unknown.
    pub cost_usd: Option<f64>,
    pub files: Vec<String>,
    pub rejected: Vec<Rejected>,
    /// Files the model was asked for but never delivered complete.
    pub missing: Vec<String>,
    /// User files whose previous content was kept in .masgen/rounds/000-previous/.
    pub preserved: Vec<String>,
    pub warnings: Vec<String>,
    /// Requirements the model said it could not meet as asked (substituted or left out).
    pub unmet: Vec<crate::protocol::Unmet>,
    pub secs: f64,
}

/// The result of a generation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Files written, relative to the output folder.
    pub files: Vec<String>,
    pub report: GenerateReport,
}

/// Files collected from replies, before they are written.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub files: IndexMap<SafePath, String>,
    pub rejected: Vec<Rejected>,
    pub warnings: Vec<String>,
    /// Paths of blocks that were cut off.
    pub cut: Vec<String>,
    /// Text outside blocks.
    pub commentary: String,
    /// Staged generation's contract of shared names, rendered, for every later request.
    pub contract: Option<String>,
}

impl Collected {
    /// Take a reply's file blocks. `keep_existing`: a file already collected is not replaced.
    pub fn absorb(&mut self, parsed: ParsedReply, keep_existing: bool) {
        for change in parsed.changes {
            match change {
                Change::File { path, content } => {
                    self.cut.retain(|c| c != path.as_str());
                    if !(keep_existing && self.files.contains_key(&path)) {
                        self.files.insert(path, content);
                    }
                }
                other => self.warnings.push(format!(
                    "ignored a <{}> block for {} while generating",
                    kind(&other),
                    other.path()
                )),
            }
        }
        if !parsed.commentary.is_empty() {
            if !self.commentary.is_empty() {
                self.commentary.push('\n');
            }
            self.commentary.push_str(&parsed.commentary);
        }
        self.rejected.extend(parsed.rejected);
        self.warnings.extend(parsed.warnings);
        for p in parsed.incomplete {
            if !self.files.keys().any(|k| k.as_str() == p) && !self.cut.contains(&p) {
                self.cut.push(p);
            }
        }
    }

    pub fn has(&self, path: &str) -> bool {
        self.files.keys().any(|k| k.as_str() == path)
    }

    pub fn tree(&self) -> Vec<String> {
        self.files.keys().map(|k| k.as_str().to_string()).collect()
    }

    pub fn compose_text(&self) -> Option<&str> {
        crate::compose::COMPOSE_FILE_NAMES.iter().find_map(|n| {
            self.files
                .iter()
                .find(|(k, _)| k.as_str() == *n)
                .map(|(_, v)| v.as_str())
        })
    }
}

fn kind(c: &Change) -> &'static str {
    match c {
        Change::File { .. } => "file",
        Change::Edit { .. } => "edit",
        Change::Delete { .. } => "delete",
    }
}

/// The requests of one run: the model, where events and raw replies go, and the ledger.
pub(crate) struct Session<'a> {
    pub model: &'a dyn Model,
    pub events: &'a Events,
    pub log: ResponseLog,
    pub max_tokens: u32,
    pub jobs: usize,
    pub budget: Arc<Budget>,
    pub pack_batches: bool,
    /// Said of the machine in the system prompt (see [`Generator::with_machine`]).
    pub machine: Option<String>,
    /// The system prompt's rules: a system's ([`prompts::SYSTEM`]), or the smoke-check
    /// writer's for a project masgen did not write ([`prompts::CHECKS_SYSTEM`]).
    pub rules: &'static str,
    started: Instant,
    ledger: Mutex<Vec<RequestRecord>>,
}

impl<'a> Session<'a> {
    pub fn new(
        model: &'a dyn Model,
        events: &'a Events,
        log: ResponseLog,
        max_tokens: u32,
        jobs: usize,
        budget: Arc<Budget>,
    ) -> Self {
        Session {
            model,
            events,
            log,
            max_tokens,
            jobs: jobs.max(1),
            budget,
            pack_batches: true,
            machine: None,
            rules: prompts::SYSTEM,
            started: Instant::now(),
            ledger: Mutex::new(Vec::new()),
        }
    }

    /// Send one request with the stable system prompt; record its usage; save the raw
    /// reply as `file_name` when responses are downloaded.
    pub async fn ask(
        &self,
        label: &str,
        file_name: &str,
        messages: Vec<Message>,
    ) -> Result<Completion, LlmError> {
        let req = Request {
            system: prompts::system_with(self.rules, self.machine.as_deref()),
            messages,
            max_tokens: self.max_tokens,
        };
        self.budget.check(&req)?;
        let started_secs = self.started.elapsed().as_secs_f64();
        let t = Instant::now();
        let c = llm::complete(self.model, &req, label, self.events).await?;
        self.budget.add(&c.usage);
        self.ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RequestRecord {
                label: label.to_string(),
                usage: c.usage,
                stop_reason: c.stop_reason.as_str().to_string(),
                secs: t.elapsed().as_secs_f64(),
                started_secs,
            });
        if let Err(e) = self.log.save(file_name, label, &c) {
            self.events
                .warn(format!("could not save the raw reply {file_name}: {e}"));
        }
        Ok(c)
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The wire format of the model's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// Anthropic's Messages API.
    #[default]
    Anthropic,
    /// OpenAI-compatible Chat Completions (OpenAI, Ollama, vLLM, llama.cpp, LM Studio,
    /// OpenRouter, LiteLLM).
    OpenAi,
}

/// Builds a [`Generator`].
#[derive(Debug, Clone)]
pub struct GeneratorBuilder {
    api_key: Option<String>,
    provider: Provider,
    /// None: the provider's default.
    base_url: Option<String>,
    model: String,
    price: Option<llm::pricing::Price>,
    replay: Option<PathBuf>,
    retry: RetryPolicy,
    events: Events,
}

impl Default for GeneratorBuilder {
    fn default() -> Self {
        GeneratorBuilder {
            api_key: None,
            provider: Provider::Anthropic,
            base_url: None,
            model: DEFAULT_MODEL.to_string(),
            price: None,
            replay: None,
            retry: RetryPolicy::default(),
            events: Events::none(),
        }
    }
}

impl GeneratorBuilder {
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }
    /// Which wire format the model speaks.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = provider;
        self
    }
    /// Prices to use instead of the table's (USD per million tokens).
    pub fn price(mut self, price: llm::pricing::Price) -> Self {
        self.price = Some(price);
        self
    }
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
    /// Play recorded replies from `dir` instead of calling the API.
    pub fn replay(mut self, dir: impl Into<PathBuf>) -> Self {
        self.replay = Some(dir.into());
        self
    }
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    pub fn events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }
    pub fn build(self) -> Result<Generator, LlmError> {
        let model: Arc<dyn Model> = match (self.replay, self.provider) {
            (Some(dir), _) => Arc::new(ReplayModel::open(&dir)?),
            (None, Provider::Anthropic) => {
                let key = self
                    .api_key
                    .filter(|k| !k.trim().is_empty())
                    .ok_or(LlmError::NoApiKey)?;
                let url = self.base_url.as_deref().unwrap_or(llm::DEFAULT_BASE_URL);
                Arc::new(AnthropicModel::new(key, url, &self.model, self.retry)?)
            }
            (None, Provider::OpenAi) => {
                let url = self
                    .base_url
                    .as_deref()
                    .unwrap_or(llm::DEFAULT_OPENAI_BASE_URL);
                Arc::new(llm::OpenAiModel::new(
                    self.api_key,
                    url,
                    &self.model,
                    self.retry,
                    self.events.clone(),
                )?)
            }
        };
        let model: Arc<dyn Model> = match self.price {
            Some(price) => Arc::new(llm::Priced {
                inner: model,
                price,
            }),
            None => model,
        };
        Ok(Generator {
            model,
            events: self.events,
            machine: None,
        })
    }
}

/// Generates systems with one model.
#[derive(Clone)]
pub struct Generator {
    model: Arc<dyn Model>,
    events: Events,
    /// What every prompt says of the machine (`--offline`: its images, its mirrors).
    machine: Option<String>,
}

impl Generator {
    pub fn builder() -> GeneratorBuilder {
        GeneratorBuilder::default()
    }

    /// A generator over any model (tests, other providers).
    pub fn with_model(model: Arc<dyn Model>, events: Events) -> Self {
        Generator {
            model,
            events,
            machine: None,
        }
    }

    /// Tell the model, in every request's system prompt, what this machine has.
    pub fn with_machine(mut self, note: Option<String>) -> Self {
        self.machine = note;
        self
    }

    /// The note on this machine every request carries, if any.
    pub fn machine(&self) -> Option<&str> {
        self.machine.as_deref()
    }

    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// A session for one run's requests, `jobs` at once.
    pub(crate) fn session(&self, dir: &Path, options: &Options, jobs: usize) -> Session<'_> {
        let log = if options.download_responses {
            ResponseLog::in_output(dir)
        } else {
            ResponseLog::disabled()
        };
        let budget = Arc::new(Budget::new(options.max_cost_usd, self.model.price(), 0.0));
        let mut session = Session::new(
            self.model.as_ref(),
            &self.events,
            log,
            options.max_tokens,
            jobs,
            budget,
        );
        session.machine = self.machine.clone();
        session
    }

    /// What the user should know of the collected reply: warnings and refused blocks.
    fn announce(&self, collected: &Collected) {
        for w in &collected.warnings {
            self.events.warn(w.clone());
        }
        for r in &collected.rejected {
            self.events.emit(Event::Rejected {
                path: r.path.clone(),
                reason: r.reason.clone(),
            });
        }
    }

    /// Write the generated files (a user's earlier version is kept under
    /// `.masgen/rounds/000-previous/`); returns their paths, sorted, and what was applied.
    fn write(
        &self,
        ws: &mut Workspace,
        files: IndexMap<SafePath, String>,
    ) -> Result<(Vec<String>, crate::workspace::Applied), GenerateError> {
        self.events.emit(Event::Phase {
            name: "write".into(),
        });
        let changes: Vec<Change> = files
            .into_iter()
            .map(|(path, content)| Change::File { path, content })
            .collect();
        let applied = ws.apply(&changes, "000-previous")?;
        let mut paths: Vec<String> = changes
            .iter()
            .map(|c| c.path().as_str().to_string())
            .collect();
        paths.sort();
        for c in &changes {
            if let Change::File { path, content } = c {
                self.events.emit(Event::FileWritten {
                    path: path.as_str().to_string(),
                    bytes: content.len(),
                });
            }
        }
        Ok((paths, applied))
    }

    /// `.masgen/generate.json` (a report that cannot be written is a warning).
    fn save_report(&self, ws: &Workspace, report: &GenerateReport) {
        let path = ws.masgen_dir().join("generate.json");
        let json = serde_json::to_string_pretty(report).unwrap_or_default();
        if let Err(e) = write_atomic(&path, json.as_bytes()) {
            self.events
                .warn(format!("could not write {}: {e}", path.display()));
        }
    }

    /// Generate the system `spec` describes and write it into `dir`.
    pub async fn generate_system(
        &self,
        spec: &str,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<Outcome, GenerateError> {
        let dir = dir.as_ref();
        let started = Instant::now();
        // Refuse a bad output folder before any money is spent.
        let mut ws = Workspace::prepare(dir, options.force)?;
        let mut session = self.session(dir, &options, options.jobs);
        session.pack_batches = options.pack_batches;
        let mode = if options.staged { "staged" } else { "single" };
        self.events.emit(Event::Phase {
            name: format!("generate ({mode})"),
        });
        let (mut collected, wanted) = if options.staged {
            staged::generate(&session, spec, dir).await?
        } else {
            (single::generate(&session, spec).await?, Vec::new())
        };
        if collected.files.is_empty() && collected.cut.is_empty() {
            return Err(GenerateError::NoFiles {
                commentary: collected.commentary,
            });
        }
        let missing = fill_missing(&session, spec, &mut collected, &wanted).await?;
        if options.staged {
            for problem in staged::final_check(&collected, &wanted) {
                collected.warnings.push(problem);
            }
        }
        self.announce(&collected);
        let (files, applied) = self.write(&mut ws, std::mem::take(&mut collected.files))?;
        let unmet = crate::protocol::parse_unmet(&collected.commentary);
        let state = ws.state_mut();
        state.spec = spec.to_string();
        state.model = self.model.id().to_string();
        state.unmet = unmet.clone();
        ws.save_state()?;
        let requests = session.records();
        let usage: Usage = requests.iter().map(|r| r.usage).sum();
        let mut rejected = collected.rejected;
        rejected.extend(applied.rejected);
        let report = GenerateReport {
            model: self.model.id().to_string(),
            mode,
            cost_usd: self.model.price().and_then(|p| pricing::cost_at(p, &usage)),
            usage,
            requests,
            files: files.clone(),
            rejected,
            missing,
            preserved: applied.preserved,
            warnings: collected.warnings,
            unmet,
            secs: started.elapsed().as_secs_f64(),
        };
        self.save_report(&ws, &report);
        Ok(Outcome { files, report })
    }
}

/// Files a system cannot do without, judged from what was collected: the compose file,
/// each built service's Dockerfile, README.md and start.sh.
pub(crate) fn required_files(c: &Collected) -> Vec<String> {
    let mut need = Vec::new();
    match c.compose_text() {
        None => need.push("docker-compose.yml".to_string()),
        Some(text) => {
            if let Ok((compose, _, _)) =
                crate::compose::parse_compose_str(text, "docker-compose.yml")
            {
                for svc in compose.services.values() {
                    if let Some(build) = &svc.build {
                        let ctx = build
                            .context()
                            .trim_start_matches("./")
                            .trim_end_matches('/');
                        let df = if ctx.is_empty() || ctx == "." {
                            build.dockerfile().to_string()
                        } else {
                            format!("{ctx}/{}", build.dockerfile())
                        };
                        if let Ok(p) = crate::protocol::check_path(&df) {
                            need.push(p.as_str().to_string());
                        }
                    }
                }
            }
        }
    }
    need.push("README.md".into());
    need.push("start.sh".into());
    need.retain(|p| !c.has(p));
    need.dedup();
    need
}

/// Ask, one file per request, for every file that was cut, is required and absent, or
/// is listed in `wanted` and absent. Returns the files still missing afterwards.
pub(crate) async fn fill_missing(
    s: &Session<'_>,
    spec: &str,
    c: &mut Collected,
    wanted: &[(String, String)],
) -> Result<Vec<String>, LlmError> {
    use futures_util::StreamExt;
    let mut todo: Vec<(String, String)> =
        c.cut.iter().map(|p| (p.clone(), String::new())).collect();
    for (p, purpose) in wanted {
        if !c.has(p) && !todo.iter().any(|(t, _)| t == p) {
            todo.push((p.clone(), purpose.clone()));
        }
    }
    for p in required_files(c) {
        if !todo.iter().any(|(t, _)| *t == p) {
            todo.push((p, String::new()));
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    s.events.emit(Event::Phase {
        name: format!("single files ({})", todo.len()),
    });
    let mut tree = c.tree();
    tree.extend(todo.iter().map(|(p, _)| p.clone()));
    tree.sort();
    tree.dedup();
    let compose = c.compose_text().map(str::to_string);
    let replies: Vec<(String, Result<Completion, LlmError>)> = futures_util::stream::iter(todo)
        .map(|(path, purpose)| {
            let prompt = prompts::single_file(
                spec,
                &path,
                &purpose,
                &tree,
                compose.as_deref(),
                c.contract.as_deref(),
            );
            async move {
                let label = format!("file {path}");
                let name = format!("single-file-{}.txt", llm::audit::sanitize(&path));
                let r = s.ask(&label, &name, vec![Message::user(prompt)]).await;
                (path, r)
            }
        })
        .buffer_unordered(s.jobs)
        .collect()
        .await;
    let mut still = Vec::new();
    for (path, reply) in replies {
        let reply = reply?;
        let mut parsed = crate::protocol::parse_reply(&reply.text);
        if parsed.changes.is_empty()
            && parsed.incomplete.is_empty()
            && !reply.text.trim().is_empty()
        {
            // The model sent the bare content: accept it as the file.
            if let Ok(p) = crate::protocol::check_path(&path) {
                let mut content = strip_outer_fence(&reply.text);
                if !content.ends_with('\n') {
                    content.push('\n');
                }
                parsed.changes.push(Change::File { path: p, content });
            }
        }
        c.absorb(parsed, false);
        if !c.has(&path) {
            still.push(path);
        }
    }
    still.sort();
    Ok(still)
}

fn strip_outer_fence(text: &str) -> String {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let body = rest.split_once('\n').map(|x| x.1).unwrap_or("");
        return body.strip_suffix("```").unwrap_or(body).to_string();
    }
    t.to_string()
}
