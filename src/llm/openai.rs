//! OpenAI-compatible Chat Completions, streamed over SSE: what OpenAI, Ollama, vLLM,
//! llama.cpp's server, LM Studio, OpenRouter and LiteLLM speak.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{
    LlmError, Model, Request, ResponseStream, RetryPolicy, StopReason, StreamEvent, Usage,
};
use crate::events::Events;

pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// A model behind an OpenAI-compatible endpoint.
pub struct OpenAiModel {
    http: reqwest::Client,
    api_key: Option<String>,
    base_url: String,
    model: String,
    retry: RetryPolicy,
    events: Events,
    /// The server refused `stream_options`: requests go without it (usage may then be
    /// missing from the stream).
    no_stream_options: AtomicBool,
}

impl std::fmt::Debug for OpenAiModel {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish()
    }
}

/// Whether `url` names this machine or a private network, where local model servers run
/// without keys.
pub fn is_local(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => host == "localhost" || host.ends_with(".localhost") || host.ends_with(".local"),
    }
}

impl OpenAiModel {
    /// A key is needed unless the server is local (loopback or a private network).
    pub fn new(
        api_key: Option<String>,
        base_url: &str,
        model: &str,
        retry: RetryPolicy,
        events: Events,
    ) -> Result<Self, LlmError> {
        let api_key = api_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if api_key.is_none() && !is_local(base_url) {
            return Err(LlmError::NoOpenAiKey {
                url: base_url.to_string(),
            });
        }
        // Between two chunks; a local model may think a long time before its first token.
        let http = super::anthropic::http_client(base_url, Duration::from_secs(600))?;
        Ok(OpenAiModel {
            http,
            api_key,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            retry,
            events,
            no_stream_options: AtomicBool::new(false),
        })
    }

    fn body<'a>(&'a self, req: &'a Request) -> WireRequest<'a> {
        let mut messages = vec![WireMessage {
            role: "system",
            content: &req.system,
        }];
        messages.extend(req.messages.iter().map(|m| WireMessage {
            role: match m.role {
                super::Role::User => "user",
                super::Role::Assistant => "assistant",
            },
            content: &m.content,
        }));
        let usage = !self.no_stream_options.load(Ordering::Relaxed);
        WireRequest {
            model: &self.model,
            messages,
            stream: true,
            stream_options: usage.then_some(StreamOptions {
                include_usage: true,
            }),
            max_tokens: req.max_tokens,
        }
    }

    async fn start(&self, req: &Request) -> Result<ResponseStream, LlmError> {
        match self.send(req).await {
            Err(LlmError::Api {
                status, message, ..
            }) if (400..500).contains(&status)
                && message.contains("stream_options")
                && !self.no_stream_options.swap(true, Ordering::Relaxed) =>
            {
                self.events.warn(format!(
                    "{} refused stream_options ({message}): asking again without it; token counts may be missing",
                    self.base_url
                ));
                self.send(req).await
            }
            other => other,
        }
    }

    async fn send(&self, req: &Request) -> Result<ResponseStream, LlmError> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut call = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .json(&self.body(req));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let resp = call.send().await.map_err(|e| LlmError::Connect {
            url: url.clone(),
            message: super::anthropic::error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(api_error(resp).await);
        }
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            // A server that ignores `stream: true` answers with the whole completion.
            let body = resp
                .text()
                .await
                .map_err(|e| LlmError::StreamCut(e.to_string()))?;
            let events = whole(&body)?;
            return Ok(Box::pin(futures_util::stream::iter(
                events.into_iter().map(Ok),
            )));
        }
        let mut decoder = Decoder::default();
        let stream = resp.bytes_stream().eventsource().flat_map(move |item| {
            let decoded: Vec<Result<StreamEvent, LlmError>> = match item {
                Err(e) => vec![Err(LlmError::StreamCut(e.to_string()))],
                Ok(ev) => match decoder.decode(&ev.data) {
                    Ok(list) => list.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                },
            };
            futures_util::stream::iter(decoded)
        });
        Ok(Box::pin(stream))
    }
}

async fn api_error(resp: reqwest::Response) -> LlmError {
    let status = resp.status().as_u16();
    let retry_after = super::anthropic::retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    let (kind, message) = match serde_json::from_str::<ErrorEnvelope>(&body) {
        Ok(env) => (
            env.error
                .kind
                .or(env
                    .error
                    .code
                    .map(|c| c.to_string().trim_matches('"').to_string()))
                .unwrap_or_else(|| "error".into()),
            env.error.message,
        ),
        Err(_) => ("http_error".to_string(), body.chars().take(500).collect()),
    };
    LlmError::Api {
        status,
        kind,
        message,
        retry_after,
    }
}

impl Model for OpenAiModel {
    fn id(&self) -> &str {
        &self.model
    }
    fn provider(&self) -> &str {
        "openai"
    }
    fn stream<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, Result<ResponseStream, LlmError>> {
        Box::pin(self.start(req))
    }
    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}

/// `finish_reason` as the stop reasons masgen knows: `length` is a cut reply.
fn stop_reason(finish: &str) -> StopReason {
    match finish {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_string()),
    }
}

/// Reads the chunks of one stream. The stop reason comes with the last choice chunk, the
/// usage (when asked for) in a chunk after it; `[DONE]` ends the stream.
#[derive(Default)]
struct Decoder {
    stopped: bool,
}

impl Decoder {
    fn decode(&mut self, data: &str) -> Result<Vec<StreamEvent>, LlmError> {
        if data.trim() == "[DONE]" {
            // A server that never sends a finish_reason ended its reply all the same.
            let done = (!self.stopped).then_some(StreamEvent::Stop(StopReason::EndTurn));
            self.stopped = true;
            return Ok(done.into_iter().collect());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
            LlmError::Protocol(format!(
                "bad chunk ({e}): {}",
                data.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(error) = chunk.error {
            return Err(LlmError::StreamCut(error.message));
        }
        let mut out = Vec::new();
        for choice in chunk.choices {
            // Reasoning and tool-call deltas are not the reply's text.
            if let Some(text) = choice
                .delta
                .and_then(|d| d.content)
                .filter(|t| !t.is_empty())
            {
                out.push(StreamEvent::Text(text));
            }
            if let Some(finish) = choice.finish_reason {
                self.stopped = true;
                out.push(StreamEvent::Stop(stop_reason(&finish)));
            }
        }
        if let Some(u) = chunk.usage {
            out.push(StreamEvent::Usage(u.into()));
        }
        Ok(out)
    }
}

/// A non-streamed completion as stream events.
fn whole(body: &str) -> Result<Vec<StreamEvent>, LlmError> {
    let c: Completion = serde_json::from_str(body).map_err(|e| {
        LlmError::Protocol(format!(
            "bad completion ({e}): {}",
            body.chars().take(200).collect::<String>()
        ))
    })?;
    let mut out = Vec::new();
    let choice = c.choices.into_iter().next();
    if let Some(text) = choice.as_ref().and_then(|c| c.message.content.clone()) {
        out.push(StreamEvent::Text(text));
    }
    if let Some(u) = c.usage {
        out.push(StreamEvent::Usage(u.into()));
    }
    let finish = choice
        .and_then(|c| c.finish_reason)
        .unwrap_or_else(|| "stop".into());
    out.push(StreamEvent::Stop(stop_reason(&finish)));
    Ok(out)
}

// ---- wire types ----

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    max_tokens: u32,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: WireError,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// `content` is the reply; `reasoning_content`, `reasoning` and `tool_calls` are left out.
#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    message: CompletionMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(w: WireUsage) -> Usage {
        let cached = w.prompt_tokens_details.map_or(0, |d| d.cached_tokens);
        Usage {
            // Cached prompt tokens are part of prompt_tokens; counted once, as cache reads.
            input: w.prompt_tokens.saturating_sub(cached),
            output: w.completion_tokens,
            cache_read: cached,
            cache_write: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_give_text_stop_and_usage_and_ignore_reasoning() {
        let mut d = Decoder::default();
        let mut all = Vec::new();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"more"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"hel"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":20}}}"#,
            "[DONE]",
        ] {
            all.extend(d.decode(data).unwrap());
        }
        assert_eq!(
            all,
            vec![
                StreamEvent::Text("hel".into()),
                StreamEvent::Text("lo".into()),
                StreamEvent::Stop(StopReason::MaxTokens),
                StreamEvent::Usage(Usage {
                    input: 100,
                    output: 7,
                    cache_read: 20,
                    cache_write: 0
                }),
            ]
        );
    }

    #[test]
    fn a_non_streamed_body_and_a_missing_finish_reason_still_end_the_reply() {
        let e = whole(r#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#).unwrap();
        assert_eq!(e.last(), Some(&StreamEvent::Stop(StopReason::EndTurn)));
        let mut d = Decoder::default();
        assert_eq!(
            d.decode("[DONE]").unwrap(),
            vec![StreamEvent::Stop(StopReason::EndTurn)]
        );
        assert!(Decoder::default()
            .decode(r#"{"error":{"message":"overloaded"}}"#)
            .is_err());
    }

    #[test]
    fn local_servers_need_no_key() {
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:8000/v1",
            "http://192.168.1.5:1234/v1",
            "http://10.0.0.2/v1",
            "http://[::1]:8080/v1",
        ] {
            assert!(is_local(url), "{url}");
        }
        for url in [
            "https://api.openai.com/v1",
            "https://openrouter.ai/api/v1",
            "http://8.8.8.8/v1",
        ] {
            assert!(!is_local(url), "{url}");
        }
    }
}
