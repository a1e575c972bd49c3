//! Provider errors, and the one place that decides retry versus terminal.

use std::time::Duration;

/// What went wrong talking to a model.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("no API key: set ANTHROPIC_API_KEY or pass -k/--api-key (or run the bundled demo with --replay fixtures/demo)")]
    NoApiKey,
    /// An OpenAI-compatible endpoint that is not on this machine or a private network.
    #[error("no API key for {url}: set OPENAI_API_KEY or pass -k/--api-key (a server on this machine or a private network needs none)")]
    NoOpenAiKey { url: String },
    /// The API answered with an error status.
    #[error("{} ({status} {kind}): {message}{}", provider_hint(*status, kind), retry_note(*retry_after))]
    Api {
        status: u16,
        kind: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The connection failed before or during the response.
    #[error("cannot reach the API at {url}: {message}; check --base-url / ANTHROPIC_BASE_URL and the network")]
    Connect { url: String, message: String },
    /// The stream ended before message_stop, or the server sent an error event mid-stream.
    #[error("the response stream broke off: {0}")]
    StreamCut(String),
    /// The reply could not be understood.
    #[error("unexpected reply from the API: {0}")]
    Protocol(String),
    /// Every attempt failed with a transient error.
    #[error("the API still failed after {attempts} attempts; last error: {last}. Try again later, or raise --retries")]
    RetriesExhausted { attempts: u32, last: Box<LlmError> },
    /// A replay directory ran out of replies, or could not be read.
    #[error("{0}")]
    Replay(String),
    /// The request cannot fit the model's context window; it was not sent.
    #[error("the request to {model} is about {estimate} tokens, more than its context window of {window}; the largest parts: {parts}. Shorten the spec, or use --staged so each request carries less")]
    TooLarge {
        model: String,
        estimate: u64,
        window: u64,
        parts: String,
    },
    /// The next request could cross --max-cost; it was not sent.
    #[error("budget spent: the next request could cost up to ${estimate:.4}, which would cross --max-cost ${cap:.4} (${spent:.4} spent so far); raise --max-cost to go on")]
    Budget { cap: f64, spent: f64, estimate: f64 },
}

fn retry_note(after: Option<Duration>) -> String {
    after
        .map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

fn provider_hint(status: u16, kind: &str) -> &'static str {
    match (status, kind) {
        (401, _) | (_, "authentication_error") => {
            "the API refused the key: check ANTHROPIC_API_KEY (or OPENAI_API_KEY with --provider openai) / -k"
        }
        (403, _) | (_, "permission_error") => "the key may not use this model or feature",
        (404, _) | (_, "not_found_error") => {
            "unknown model or endpoint: check --model / MASGEN_MODEL and --base-url"
        }
        (413, _) | (_, "request_too_large") => {
            "the request is too large: use --staged or a shorter spec"
        }
        (429, _) | (_, "rate_limit_error") => "rate limited",
        (529, _) | (_, "overloaded_error") => "the API is overloaded",
        (400, _) => "the API refused the request",
        _ => "the API failed",
    }
}

impl LlmError {
    /// Whether sending the same request again may succeed. Decided here only.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Api { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            LlmError::Connect { .. } | LlmError::StreamCut(_) => true,
            LlmError::NoApiKey
            | LlmError::NoOpenAiKey { .. }
            | LlmError::Protocol(_)
            | LlmError::RetriesExhausted { .. }
            | LlmError::Replay(_)
            | LlmError::TooLarge { .. }
            | LlmError::Budget { .. } => false,
        }
    }

    /// The server's retry-after, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A one-line reason shown with a retry.
    pub fn short(&self) -> String {
        match self {
            LlmError::Api { status, kind, .. } => format!("{status} {kind}"),
            LlmError::Connect { message, .. } => format!("connection failed: {message}"),
            LlmError::StreamCut(m) => format!("stream cut: {m}"),
            other => other.to_string(),
        }
    }
}
