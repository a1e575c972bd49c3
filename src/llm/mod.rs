//! Models: one trait, streaming as the primitive, one file per wire format.

mod anthropic;
pub mod audit;
mod error;
mod openai;
pub mod pricing;
mod replay;
mod retry;

use std::pin::Pin;

use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use serde::Serialize;

/// Token usage lives in a leaf of its own, so events can name it without a loop.
pub use crate::usage::Usage;
pub use anthropic::{AnthropicModel, ANTHROPIC_VERSION, DEFAULT_BASE_URL};
pub use error::LlmError;
pub use openai::{is_local, OpenAiModel, DEFAULT_OPENAI_BASE_URL};
pub use replay::ReplayModel;
pub use retry::RetryPolicy;

use crate::events::{Event, Events};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: text.into(),
        }
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: text.into(),
        }
    }
}

/// One request to a model. The system prompt is kept stable so it can be cached.
#[derive(Debug, Clone)]
pub struct Request {
    pub system: String,
    pub messages: Vec<Message>,
    pub max_tokens: u32,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    Other(String),
}

impl StopReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "stop_sequence" => StopReason::StopSequence,
            other => StopReason::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::Other(s) => s,
        }
    }
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Text of the reply (thinking and other block types never appear here).
    Text(String),
    /// A usage report; later reports are merged into earlier ones.
    Usage(Usage),
    /// The reply ended, for this reason.
    Stop(StopReason),
}

pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// A full reply.
#[derive(Debug, Clone)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    pub stop_reason: StopReason,
    pub model: String,
    pub provider: String,
}

/// A language model.
pub trait Model: Send + Sync {
    /// The model id, as sent to the provider and priced.
    fn id(&self) -> &str;

    /// The wire format it speaks (`anthropic`, `openai`), recorded in audit files.
    fn provider(&self) -> &str {
        "replay"
    }

    /// Start a reply. Errors before the first event (HTTP status, connection) come back
    /// here; errors during the stream come as stream items.
    fn stream<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>>;

    /// What this model's tokens cost; None when unknown.
    fn price(&self) -> Option<pricing::Price> {
        pricing::price_of(self.id())
    }

    /// The retry policy the caller should use for this model.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
}

/// No model: there is no API key, and nothing was to be asked. Asking is the error that
/// says how to give a key.
pub struct Keyless {
    pub id: String,
}

impl Model for Keyless {
    fn id(&self) -> &str {
        &self.id
    }

    fn stream<'a>(&'a self, _: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>> {
        Box::pin(async { Err(LlmError::NoApiKey) })
    }
}

/// A model with prices the user gave (`--price-in`, `--price-out`), for any provider.
pub struct Priced {
    pub inner: std::sync::Arc<dyn Model>,
    pub price: pricing::Price,
}

impl Model for Priced {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn provider(&self) -> &str {
        self.inner.provider()
    }
    fn stream<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>> {
        self.inner.stream(req)
    }
    fn price(&self) -> Option<pricing::Price> {
        Some(self.price)
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry_policy()
    }
}

/// A spending cap checked before every request against the most that request can cost
/// (its input, estimated generously from its length, plus max_tokens of output).
#[derive(Debug)]
pub struct Budget {
    cap: Option<f64>,
    price: Option<pricing::Price>,
    spent: std::sync::Mutex<f64>,
}

impl Budget {
    pub fn new(cap: Option<f64>, price: Option<pricing::Price>, already_spent: f64) -> Self {
        Budget {
            cap,
            price,
            spent: std::sync::Mutex::new(already_spent),
        }
    }

    pub fn spent(&self) -> f64 {
        *self.spent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most `req` can cost: about 3 characters a token (generous) plus all of max_tokens.
    pub fn worst_case(&self, req: &Request) -> Option<f64> {
        let p = self.price?;
        let chars = req.system.len() + req.messages.iter().map(|m| m.content.len()).sum::<usize>();
        Some((chars as f64 / 3.0) * p.input / 1e6 + req.max_tokens as f64 * p.output / 1e6)
    }

    /// Refuse `req` when it could cross the cap.
    pub fn check(&self, req: &Request) -> Result<(), LlmError> {
        let Some(cap) = self.cap else { return Ok(()) };
        let estimate = self.worst_case(req).unwrap_or(f64::INFINITY);
        let spent = self.spent();
        if spent + estimate > cap {
            return Err(LlmError::Budget {
                cap,
                spent,
                estimate,
            });
        }
        Ok(())
    }

    pub fn add(&self, usage: &Usage) {
        if let Some(cost) = self.price.and_then(|p| pricing::cost_at(p, usage)) {
            *self.spent.lock().unwrap_or_else(|p| p.into_inner()) += cost;
        }
    }
}

/// Send `req` and collect the whole reply, retrying transient failures (a stream that
/// breaks mid-way is sent again as a whole request).
pub async fn complete(
    model: &dyn Model,
    req: &Request,
    label: &str,
    events: &Events,
) -> Result<Completion, LlmError> {
    fits(model.id(), req)?;
    let policy = model.retry_policy();
    events.emit(Event::RequestStarted {
        label: label.to_string(),
    });
    let done = policy
        .run(label, events, || collect(model, req, label, events))
        .await?;
    events.emit(Event::RequestFinished {
        label: label.to_string(),
        usage: done.usage,
        stop_reason: done.stop_reason.as_str().to_string(),
    });
    Ok(done)
}

/// Refuse a request whose input cannot fit the model's context window (estimated at four
/// characters a token, so a request that fits is never refused), naming its largest parts.
fn fits(model: &str, req: &Request) -> Result<(), LlmError> {
    let Some(window) = pricing::context_window(model) else {
        return Ok(());
    };
    let tokens = |chars: usize| (chars / 4) as u64;
    let mut parts: Vec<(String, u64)> =
        vec![("the system prompt".into(), tokens(req.system.len()))];
    for (i, m) in req.messages.iter().enumerate() {
        let who = match m.role {
            Role::User => "request",
            Role::Assistant => "reply",
        };
        parts.push((
            format!("{who} {} (message {})", first_line(&m.content), i + 1),
            tokens(m.content.len()),
        ));
    }
    let estimate: u64 = parts.iter().map(|(_, t)| t).sum();
    if estimate <= window {
        return Ok(());
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let parts = parts
        .iter()
        .take(3)
        .map(|(what, t)| format!("{what}: about {t} tokens"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(LlmError::TooLarge {
        model: model.to_string(),
        estimate,
        window,
        parts,
    })
}

/// The start of a message, to name it.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let short: String = line.chars().take(60).collect();
    if short.len() < line.len() {
        format!("\"{short}...\"")
    } else {
        format!("\"{short}\"")
    }
}

async fn collect(
    model: &dyn Model,
    req: &Request,
    label: &str,
    events: &Events,
) -> Result<Completion, LlmError> {
    let mut stream = model.stream(req).await?;
    let mut text = String::new();
    let mut usage = Usage::default();
    let mut stop = None;
    let mut last_report = 0;
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::Text(t) => {
                text.push_str(&t);
                if text.len() - last_report >= 2048 {
                    last_report = text.len();
                    events.emit(Event::Streaming {
                        label: label.to_string(),
                        chars: text.len(),
                    });
                }
            }
            StreamEvent::Usage(u) => usage.merge_from(u),
            StreamEvent::Stop(r) => stop = Some(r),
        }
    }
    let stop_reason =
        stop.ok_or_else(|| LlmError::StreamCut("the stream ended without a stop reason".into()))?;
    Ok(Completion {
        text,
        usage,
        stop_reason,
        model: model.id().to_string(),
        provider: model.provider().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_larger_than_the_context_window_is_refused_naming_its_largest_parts() {
        let req = Request {
            system: "rules".repeat(100),
            messages: vec![
                Message::user(format!("Build this system:\n{}", "x".repeat(600_000))),
                Message::assistant("ok"),
            ],
            max_tokens: 1000,
        };
        let e = fits("gpt-4o", &req).unwrap_err().to_string();
        assert!(e.contains("about 150"), "{e}");
        assert!(e.contains("more than its context window of 128000"), "{e}");
        assert!(
            e.contains("the largest parts: request \"Build this system:\" (message 1): about 150"),
            "{e}"
        );
        assert!(fits("claude-sonnet-5-5", &req).is_ok(), "fits a 1M window");
        assert!(
            fits("some-local-model", &req).is_ok(),
            "unknown window: not checked"
        );
    }
}
