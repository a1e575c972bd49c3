//! The Anthropic Messages API, streamed over SSE.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{
    LlmError, Message, Model, Request, ResponseStream, RetryPolicy, StopReason, StreamEvent, Usage,
};

pub const ANTHROPIC_VERSION: &str = "2026-10-21";
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// A Claude model reached through the Messages API.
pub struct AnthropicModel {
    http: reqwest::Client,
    api_key: String,
    base_url: String,
    model: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AnthropicModel {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicModel")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish()
    }
}

impl AnthropicModel {
    pub fn new(
        api_key: String,
        base_url: &str,
        model: &str,
        retry: RetryPolicy,
    ) -> Result<Self, LlmError> {
        if api_key.trim().is_empty() {
            return Err(LlmError::NoApiKey);
        }
        // Between two chunks of a stream; a whole long generation may take minutes.
        let http = http_client(base_url, Duration::from_secs(300))?;
        Ok(AnthropicModel {
            http,
            api_key: api_key.trim().to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            retry,
        })
    }

    fn body<'a>(&'a self, req: &'a Request) -> WireRequest<'a> {
        WireRequest {
            model: &self.model,
            max_tokens: req.max_tokens,
            system: vec![SystemBlock {
                kind: "text",
                text: &req.system,
                cache_control: CacheControl { kind: "ephemeral" },
            }],
            messages: &req.messages,
            stream: true,
        }
    }

    async fn start(&self, req: &Request) -> Result<ResponseStream, LlmError> {
        let url = format!("{}/v1/messages", self.base_url);
        let resp = self
            .http
            .post(&url)
            .header("x-api-key", &self.api_key)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .json(&self.body(req))
            .send()
            .await
            .map_err(|e| LlmError::Connect {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = retry_after(resp.headers());
            let body = resp.text().await.unwrap_or_default();
            let (kind, message) = match serde_json::from_str::<WireErrorEnvelope>(&body) {
                Ok(env) => (env.error.kind, env.error.message),
                Err(_) => ("http_error".to_string(), body.chars().take(500).collect()),
            };
            return Err(LlmError::Api {
                status,
                kind,
                message,
                retry_after,
            });
        }
        let events = resp.bytes_stream().eventsource();
        let stream = events.flat_map(|item| {
            let decoded: Vec<Result<StreamEvent, LlmError>> = match item {
                Err(e) => vec![Err(LlmError::StreamCut(e.to_string()))],
                Ok(ev) => match decode(&ev.data) {
                    Ok(list) => list.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                },
            };
            futures_util::stream::iter(decoded)
        });
        Ok(Box::pin(stream))
    }
}

/// The HTTP client of a provider: `read` is the longest wait between two chunks.
pub(super) fn http_client(base_url: &str, read: Duration) -> Result<reqwest::Client, LlmError> {
    // reqwest is built without a default crypto provider (ring builds much faster than
    // aws-lc-rs); install ring once. A second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(read)
        .build()
        .map_err(|e| LlmError::Connect {
            url: base_url.to_string(),
            message: e.to_string(),
        })
}

/// A response's `retry-after`, in seconds.
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64)
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl Model for AnthropicModel {
    fn id(&self) -> &str {
        &self.model
    }
    fn provider(&self) -> &str {
        "anthropic"
    }
    fn stream<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>> {
        Box::pin(self.start(req))
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

/// Turn one SSE data payload into stream events. message_delta carries the stop reason
/// after every content block has ended, so the text is complete once it arrives.
fn decode(data: &str) -> Result<Vec<StreamEvent>, LlmError> {
    let ev: SseEvent = serde_json::from_str(data).map_err(|e| {
        LlmError::Protocol(format!(
            "bad SSE event ({e}): {}",
            data.chars().take(200).collect::<String>()
        ))
    })?;
    Ok(match ev {
        SseEvent::MessageStart { message } => vec![StreamEvent::Usage(message.usage.into())],
        SseEvent::ContentBlockStart {
            content_block: Block::Text { text },
        } if !text.is_empty() => {
            vec![StreamEvent::Text(text)]
        }
        SseEvent::ContentBlockDelta {
            delta: Delta::TextDelta { text },
        } => vec![StreamEvent::Text(text)],
        SseEvent::MessageDelta { delta, usage } => {
            let mut out = vec![StreamEvent::Usage(usage.into())];
            if let Some(reason) = delta.stop_reason {
                out.push(StreamEvent::Stop(StopReason::parse(&reason)));
            }
            out
        }
        // Mid-stream errors (overloaded, api_error) are transient: the whole request is retried.
        SseEvent::Error { error } => {
            return Err(LlmError::StreamCut(format!(
                "{}: {}",
                error.kind, error.message
            )));
        }
        SseEvent::ContentBlockStart { .. }
        | SseEvent::ContentBlockDelta {
            delta: Delta::Other,
        }
        | SseEvent::ContentBlockStop
        | SseEvent::MessageStop
        | SseEvent::Ping
        | SseEvent::Unknown => Vec::new(),
    })
}

// ---- wire types ----

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    system: Vec<SystemBlock<'a>>,
    messages: &'a [Message],
    stream: bool,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    cache_control: CacheControl,
}

#[derive(Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Deserialize)]
struct WireErrorEnvelope {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        Usage {
            input: w.input_tokens.unwrap_or(0),
            output: w.output_tokens.unwrap_or(0),
            cache_read: w.cache_read_input_tokens.unwrap_or(0),
            cache_write: w.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct MessageStartBody {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SseEvent {
    MessageStart {
        message: MessageStartBody,
    },
    ContentBlockStart {
        content_block: Block,
    },
    ContentBlockDelta {
        delta: Delta,
    },
    ContentBlockStop,
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    TextDelta {
        text: String,
    },
    /// thinking_delta, signature_delta, input_json_delta and whatever comes next.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    /// thinking, redacted_thinking, tool_use and whatever comes next.
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_usage_and_stop_are_decoded_and_thinking_ignored() {
        let start = r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":5,"cache_creation_input_tokens":3}}}"#;
        assert_eq!(
            decode(start).unwrap(),
            vec![StreamEvent::Usage(Usage {
                input: 12,
                output: 1,
                cache_read: 5,
                cache_write: 3
            })]
        );
        let think = r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#;
        assert!(decode(think).unwrap().is_empty());
        let think_start = r#"{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"x"}}"#;
        assert!(decode(think_start).unwrap().is_empty());
        let text =
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"hi"}}"#;
        assert_eq!(decode(text).unwrap(), vec![StreamEvent::Text("hi".into())]);
        let delta = r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":40}}"#;
        assert_eq!(
            decode(delta).unwrap(),
            vec![
                StreamEvent::Usage(Usage {
                    output: 40,
                    ..Usage::default()
                }),
                StreamEvent::Stop(StopReason::MaxTokens)
            ]
        );
        assert!(decode(r#"{"type":"some_future_event"}"#)
            .unwrap()
            .is_empty());
        assert!(matches!(
            decode(r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#),
            Err(LlmError::StreamCut(_))
        ));
    }

    #[test]
    fn body_has_cached_system_block_and_no_sampling_parameters() {
        let m = AnthropicModel::new(
            "sk-secret-key".into(),
            "http://x",
            "claude-sonnet-5-5",
            RetryPolicy::default(),
        )
        .unwrap();
        let req = Request {
            system: "sys".into(),
            messages: vec![Message::user("hi")],
            max_tokens: 100,
        };
        let v = serde_json::to_value(m.body(&req)).unwrap();
        assert_eq!(v["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(v["stream"], true);
        for k in ["temperature", "top_p", "top_k", "thinking"] {
            assert!(v.get(k).is_none(), "{k} must not be sent");
        }
        assert!(!format!("{m:?}").contains("sk-secret-key"));
    }
}
