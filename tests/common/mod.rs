//! Test helpers: a fake model API that speaks the real wire protocols (Anthropic's
//! Messages API, or OpenAI-compatible Chat Completions: SSE, error envelopes,
//! retry-after, cut streams) and records every request; and helpers to run the masgen
//! binary.
#![allow(dead_code)]

pub mod docker;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// When the request arrived and when its response was fully sent, since the server started.
    pub arrived: Duration,
    pub finished: Duration,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The text of the last user message.
    pub fn last_user_text(&self) -> String {
        self.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or("").to_string(),
                            m["content"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A streamed message.
    Sse {
        text: String,
        stop_reason: String,
        usage: [u64; 4],
        delay: Duration,
        cut_after_deltas: Option<usize>,
    },
    /// An error envelope with this status.
    Error {
        status: u16,
        kind: String,
        message: String,
        retry_after: Option<u64>,
    },
}

impl Reply {
    pub fn text(t: &str) -> Reply {
        Reply::Sse {
            text: t.to_string(),
            stop_reason: "end_turn".into(),
            usage: [100, 50, 0, 0],
            delay: Duration::ZERO,
            cut_after_deltas: None,
        }
    }
    pub fn max_tokens(t: &str) -> Reply {
        Reply::Sse {
            text: t.to_string(),
            stop_reason: "max_tokens".into(),
            usage: [100, 50, 0, 0],
            delay: Duration::ZERO,
            cut_after_deltas: None,
        }
    }
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::Error {
            status,
            kind: kind.into(),
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn delayed(mut self, d: Duration) -> Reply {
        if let Reply::Sse { delay, .. } = &mut self {
            *delay = d;
        }
        self
    }
    pub fn usage(mut self, u: [u64; 4]) -> Reply {
        if let Reply::Sse { usage, .. } = &mut self {
            *usage = u;
        }
        self
    }
    /// Close the connection after this many text deltas, with no message_stop.
    pub fn cut(mut self, n: usize) -> Reply {
        if let Reply::Sse {
            cut_after_deltas, ..
        } = &mut self
        {
            *cut_after_deltas = Some(n);
        }
        self
    }
    pub fn retry_after(mut self, secs: u64) -> Reply {
        if let Reply::Error { retry_after, .. } = &mut self {
            *retry_after = Some(secs);
        }
        self
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// Which protocol the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    /// Chat Completions. `key`: refuse a request without a bearer key (a hosted API; local
    /// servers take none). `refuse_stream_options`: answer `stream_options` with a 400, as
    /// some servers do.
    OpenAi {
        key: bool,
        refuse_stream_options: bool,
    },
}

/// The fake server.
pub struct FakeAnthropic {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _rt: Option<tokio::runtime::Runtime>,
}

impl FakeAnthropic {
    /// Answer the n-th request (0-based) with `replies[n]`; past the end, the last reply.
    pub fn scripted(replies: Vec<Reply>) -> Self {
        Self::with_handler(move |_, n| {
            replies
                .get(n)
                .or(replies.last())
                .cloned()
                .expect("at least one reply")
        })
    }

    /// Answer with a function of the request and its index.
    pub fn with_handler(f: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::speaking(Wire::Anthropic, f)
    }

    /// An OpenAI-compatible server answering the n-th request with `replies[n]`.
    pub fn openai(wire: Wire, replies: Vec<Reply>) -> Self {
        Self::speaking(wire, move |_, n| {
            replies
                .get(n)
                .or(replies.last())
                .cloned()
                .expect("at least one reply")
        })
    }

    /// A server speaking `wire`, answering with a function of the request and its index.
    pub fn speaking(
        wire: Wire,
        f: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let handler: Arc<Handler> = Arc::new(f);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let reqs = requests.clone();
        let start = Instant::now();
        let counter = Arc::new(Mutex::new(0usize));
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (handler, reqs, counter) = (handler.clone(), reqs.clone(), counter.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, wire, handler, reqs, counter, start).await;
                });
            }
        });
        FakeAnthropic {
            url,
            requests,
            _rt: Some(rt),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        let mut r = self.requests.lock().unwrap().clone();
        r.sort_by_key(|x| x.arrived);
        r
    }
}

async fn serve(
    mut sock: tokio::net::TcpStream,
    wire: Wire,
    handler: Arc<Handler>,
    reqs: Arc<Mutex<Vec<Recorded>>>,
    counter: Arc<Mutex<usize>>,
    start: Instant,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut headers = Vec::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body: Value =
        serde_json::from_slice(&buf[head_end..head_end + len.min(buf.len() - head_end)])
            .unwrap_or(Value::Null);
    let arrived = start.elapsed();
    let rec = Recorded {
        headers,
        body,
        arrived,
        finished: arrived,
    };
    // Recorded before the reply is sent: masgen may exit, and the test look, as soon as the
    // reply arrives. `finished` is filled in once it is sent.
    let slot = {
        let mut all = reqs.lock().unwrap();
        all.push(rec.clone());
        all.len() - 1
    };
    let finish =
        |reqs: &Mutex<Vec<Recorded>>| reqs.lock().unwrap()[slot].finished = start.elapsed();
    let index = {
        let mut c = counter.lock().unwrap();
        *c += 1;
        *c - 1
    };
    // The real API's refusals come first.
    let refused = match wire {
        Wire::Anthropic => refusal(&rec),
        Wire::OpenAi {
            key,
            refuse_stream_options,
        } => openai_refusal(&rec, key, refuse_stream_options),
    };
    let reply = match refused {
        Some(r) => r,
        None => handler(&rec, index),
    };
    if wire != Wire::Anthropic {
        write_openai(&mut sock, &rec, reply).await?;
        sock.flush().await?;
        finish(&reqs);
        return Ok(());
    }
    match reply {
        Reply::Error {
            status,
            kind,
            message,
            retry_after,
        } => {
            let body =
                serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
                    .to_string();
            sock.write_all(error_response(status, &body, retry_after).as_bytes())
                .await?;
        }
        Reply::Sse {
            text,
            stop_reason,
            usage,
            delay,
            cut_after_deltas,
        } => {
            tokio::time::sleep(delay).await;
            sock.write_all(SSE_HEAD).await?;
            let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
            let mut out = String::new();
            out.push_str(&ev("message_start", serde_json::json!({"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant","model":rec.body["model"],"content":[],"stop_reason":null,"usage":{"input_tokens":usage[0],"output_tokens":1,"cache_read_input_tokens":usage[2],"cache_creation_input_tokens":usage[3]}}})));
            // Adaptive thinking comes first, and must be ignored.
            out.push_str(&ev("content_block_start", serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})));
            out.push_str(&ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me plan the files."}})));
            out.push_str(&ev(
                "content_block_stop",
                serde_json::json!({"type":"content_block_stop","index":0}),
            ));
            out.push_str(&ev("ping", serde_json::json!({"type":"ping"})));
            out.push_str(&ev("content_block_start", serde_json::json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})));
            sock.write_all(out.as_bytes()).await?;
            let chars: Vec<char> = text.chars().collect();
            for (i, chunk) in chars.chunks(64).enumerate() {
                if cut_after_deltas == Some(i) {
                    sock.shutdown().await?;
                    finish(&reqs);
                    return Ok(());
                }
                let s: String = chunk.iter().collect();
                sock.write_all(ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":s}})).as_bytes()).await?;
            }
            let mut tail = String::new();
            tail.push_str(&ev(
                "content_block_stop",
                serde_json::json!({"type":"content_block_stop","index":1}),
            ));
            tail.push_str(&ev("message_delta", serde_json::json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":usage[1]}})));
            tail.push_str(&ev(
                "message_stop",
                serde_json::json!({"type":"message_stop"}),
            ));
            sock.write_all(tail.as_bytes()).await?;
        }
    }
    sock.flush().await?;
    finish(&reqs);
    Ok(())
}

/// The head of a streamed response.
const SSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";

/// A JSON error response, with its retry-after.
fn error_response(status: u16, body: &str, retry_after: Option<u64>) -> String {
    let ra = retry_after
        .map(|s| format!("retry-after: {s}\r\n"))
        .unwrap_or_default();
    format!("HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\n{ra}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

/// What OpenAI-compatible servers refuse.
fn openai_refusal(r: &Recorded, key: bool, refuse_stream_options: bool) -> Option<Reply> {
    let bearer = r
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|k| !k.is_empty());
    if key && !bearer {
        return Some(Reply::error(
            401,
            "invalid_request_error",
            "Incorrect API key provided",
        ));
    }
    if refuse_stream_options && r.body.get("stream_options").is_some() {
        return Some(Reply::error(
            400,
            "invalid_request_error",
            "Unrecognized request argument supplied: stream_options",
        ));
    }
    let msgs = r.body["messages"].as_array().cloned().unwrap_or_default();
    if msgs.first().is_none_or(|m| m["role"] != "system") || r.body.get("system").is_some() {
        return Some(Reply::error(
            400,
            "invalid_request_error",
            "the system prompt goes first, as a system message",
        ));
    }
    None
}

/// A reply in Chat Completions' form: SSE chunks (a reasoning delta first, which must be
/// ignored), `finish_reason` (`stop`, `length`), usage in a last chunk when asked for, then
/// `[DONE]`; or an `{"error": ...}` envelope.
async fn write_openai(
    sock: &mut tokio::net::TcpStream,
    rec: &Recorded,
    reply: Reply,
) -> std::io::Result<()> {
    match reply {
        Reply::Error {
            status,
            kind,
            message,
            retry_after,
        } => {
            let body =
                serde_json::json!({"error": {"message": message, "type": kind, "code": null}})
                    .to_string();
            sock.write_all(error_response(status, &body, retry_after).as_bytes())
                .await
        }
        Reply::Sse {
            text,
            stop_reason,
            usage,
            delay,
            cut_after_deltas,
        } => {
            tokio::time::sleep(delay).await;
            sock.write_all(SSE_HEAD).await?;
            let model = rec.body["model"].clone();
            let chunk = |delta: Value, finish: Value| {
                let c = serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                format!("data: {c}\n\n")
            };
            let mut head = chunk(
                serde_json::json!({"role": "assistant", "content": ""}),
                Value::Null,
            );
            head.push_str(&chunk(
                serde_json::json!({"reasoning_content": "Let me plan the files."}),
                Value::Null,
            ));
            sock.write_all(head.as_bytes()).await?;
            let chars: Vec<char> = text.chars().collect();
            for (i, piece) in chars.chunks(64).enumerate() {
                if cut_after_deltas == Some(i) {
                    return sock.shutdown().await;
                }
                let s: String = piece.iter().collect();
                sock.write_all(chunk(serde_json::json!({"content": s}), Value::Null).as_bytes())
                    .await?;
            }
            let finish = match stop_reason.as_str() {
                "end_turn" => "stop",
                "max_tokens" => "length",
                other => other,
            };
            let mut tail = chunk(serde_json::json!({}), Value::String(finish.into()));
            if rec.body["stream_options"]["include_usage"] == true {
                let u = serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[0] + usage[1]}});
                tail.push_str(&format!("data: {u}\n\n"));
            }
            tail.push_str("data: [DONE]\n\n");
            sock.write_all(tail.as_bytes()).await
        }
    }
}

/// What the real API refuses under anthropic-version 2026-10-21.
fn refusal(r: &Recorded) -> Option<Reply> {
    if r.header("x-api-key").is_none_or(|k| k.is_empty()) {
        return Some(Reply::error(
            401,
            "authentication_error",
            "invalid x-api-key",
        ));
    }
    for k in ["temperature", "top_p", "top_k"] {
        if r.body.get(k).is_some() {
            return Some(Reply::error(
                400,
                "invalid_request_error",
                &format!("{k}: Extra inputs are not permitted"),
            ));
        }
    }
    let msgs = r.body["messages"].as_array().cloned().unwrap_or_default();
    if msgs.last().is_some_and(|m| m["role"] == "assistant") {
        return Some(Reply::error(400, "invalid_request_error", "This model does not support assistant message prefill. The conversation must end with a user message."));
    }
    if msgs.first().is_none_or(|m| m["role"] != "user") {
        return Some(Reply::error(
            400,
            "invalid_request_error",
            "messages: first message must use the \"user\" role",
        ));
    }
    if r.body["max_tokens"].as_u64().is_none() {
        return Some(Reply::error(
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ));
    }
    None
}

/// The masgen binary.
pub fn masgen() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_masgen"));
    c.env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("MASGEN_PROVIDER")
        .env_remove("MASGEN_MODEL")
        .env_remove("MASGEN_PATCH")
        .env("NO_COLOR", "1");
    c
}

/// The flags that point masgen at the fake, with quick retries.
pub fn fake_flags(fake: &FakeAnthropic) -> Vec<String> {
    [
        "-k",
        TEST_KEY,
        "--base-url",
        &fake.url,
        "--retry-base-ms",
        "20",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Verification kept quick: settle and stability 1 s, health timeout 30 s.
pub const QUICK_VERIFY: &[&str] = &[
    "--settle",
    "1",
    "--stability",
    "1",
    "--health-timeout",
    "30",
];

/// `masgen SPEC -o OUT` against the fake, verified quickly, with `extra` flags.
pub fn generate_verified(fake: &FakeAnthropic, spec: &str, out: &Path, extra: &[&str]) -> Output {
    masgen()
        .arg(spec)
        .arg("-o")
        .arg(out)
        .args(fake_flags(fake))
        .args(QUICK_VERIFY)
        .args(extra)
        .output()
        .unwrap()
}

/// masgen generate against the fake, writing without verification.
pub fn generate_against(fake: &FakeAnthropic, out: &Path, extra: &[&str]) -> Output {
    masgen()
        .arg("generate")
        .arg("a test system")
        .arg("-o")
        .arg(out)
        .args(fake_flags(fake))
        .arg("--no-verify")
        .args(extra)
        .output()
        .expect("run masgen")
}

pub const TEST_KEY: &str = "sk-ant-test-KEY-must-never-be-written-0123456789";

/// The run report masgen wrote in `out` (`.masgen/report.json`).
pub fn run_report(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join(".masgen/report.json")).unwrap())
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A small valid system as a model reply.
pub fn system_reply() -> String {
    "I will build it.\n<file path=\"docker-compose.yml\">\nservices:\n  app:\n    build: ./app\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n</file>\n\
<file path=\"app/Dockerfile\">\nFROM busybox:latest\nCMD [\"sleep\", \"3600\"]\n</file>\n\
<file path=\"README.md\">\n# Test system\n</file>\n<file path=\"start.sh\">\n#!/bin/sh\ndocker compose up --build\n</file>\n"
        .to_string()
}

pub const MANIFEST: &str = r#"<manifest>
[{"path":"docker-compose.yml","purpose":"compose","group":"infrastructure"},
 {"path":"a/Dockerfile","purpose":"a image","group":"a"},{"path":"a/app.py","purpose":"a code","group":"a"},
 {"path":"b/Dockerfile","purpose":"b image","group":"b"},{"path":"b/app.py","purpose":"b code","group":"b"},
 {"path":"c/Dockerfile","purpose":"c image","group":"c"},
 {"path":"README.md","purpose":"docs","group":"docs"},{"path":"start.sh","purpose":"run","group":"docs"}]
</manifest>"#;

/// Answers a batch request with every file it asks for.
pub fn batch_reply(prompt: &str) -> String {
    let files = prompt
        .split("Write exactly these files")
        .nth(1)
        .unwrap_or("");
    let mut out = String::new();
    for line in files.lines().filter_map(|l| l.strip_prefix("- ")) {
        let path = line.split(' ').next().unwrap();
        let body = if path == "docker-compose.yml" {
            "services:\n  a:\n    build: ./a\n  b:\n    build: ./b\n  c:\n    build: ./c\n"
                .to_string()
        } else {
            format!("# {path}\n")
        };
        out.push_str(&format!("<file path=\"{path}\">\n{body}</file>\n"));
    }
    out
}
