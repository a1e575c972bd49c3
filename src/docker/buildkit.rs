//! BuildKit builds through the Engine API's own `/build` endpoint (`version=2`), with the
//! build context as the request body: no client session and no gRPC, so none of bollard's
//! `buildkit` feature. The daemon reports progress as `moby.buildkit.trace` messages whose
//! `aux` is a base64 `moby.buildkit.v1.StatusResponse` protobuf; the few fields a build log
//! needs are read here straight off the wire format and rendered like
//! `docker build --progress=plain`.
//!
//! Why: the classic builder commits a container for every Dockerfile step, and on storage
//! drivers without a native diff (fuse-overlayfs) each commit walks the image; BuildKit
//! exports one layer per image (README's benchmark section has the numbers).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Where the daemon listens, for the requests bollard does not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Unix(PathBuf),
    /// `host:port`, plain HTTP.
    Tcp(String),
}

impl Transport {
    /// The daemon at `host` (DOCKER_HOST, or the local socket's address), when it is
    /// reachable without TLS or SSH; None otherwise, and the classic builder is used.
    pub fn from_docker_host(host: &str, tls: bool) -> Option<Transport> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Some(Transport::Unix(PathBuf::from(path)));
        }
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))?;
        if tls {
            return None;
        }
        Some(Transport::Tcp(addr.trim_end_matches('/').to_string()))
    }
}

/// What a BuildKit build printed and how it ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The whole build log, `--progress=plain` style.
    pub log: String,
    /// The daemon's error, when the build failed.
    pub error: Option<String>,
    /// The step that failed, as `Step 2/3 : RUN make`, when one did.
    pub failed_step: Option<String>,
    /// That step's own output.
    pub failed_output: String,
}

/// Why no build ran: the caller falls back to the classic builder.
#[derive(Debug)]
pub struct Refused(pub String);

/// Build with BuildKit. `query` is the `/build` query without `version`.
pub async fn build(
    transport: &Transport,
    api_version: &str,
    query: &[(&str, String)],
    registry_config: Option<String>,
    context: Bytes,
) -> Result<Outcome, Refused> {
    let mut uri = format!("/v{api_version}/build?version=2");
    for (k, v) in query {
        uri.push('&');
        uri.push_str(k);
        uri.push('=');
        uri.push_str(&percent_encode(v));
    }
    let mut request = hyper::Request::post(uri)
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/x-tar");
    if let Some(c) = registry_config {
        request = request.header("X-Registry-Config", c);
    }
    let request = request
        .body(Full::new(context))
        .map_err(|e| Refused(e.to_string()))?;
    match transport {
        Transport::Unix(path) => {
            let io = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| Refused(format!("{}: {e}", path.display())))?;
            exchange(io, request).await
        }
        Transport::Tcp(addr) => {
            let io = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| Refused(format!("{addr}: {e}")))?;
            exchange(io, request).await
        }
    }
}

/// One HTTP/1.1 request on its own connection. The connection is driven here, not in a
/// spawned task, so dropping the future (Ctrl-C) closes it and the daemon cancels the build.
async fn exchange<IO>(io: IO, request: hyper::Request<Full<Bytes>>) -> Result<Outcome, Refused>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| Refused(e.to_string()))?;
    let work = async move {
        // The context upload counts until the daemon answers: give it room, as for bollard.
        let response = tokio::time::timeout(Duration::from_secs(900), sender.send_request(request))
            .await
            .map_err(|_| Refused("no answer within 900 s".into()))?
            .map_err(|e| Refused(e.to_string()))?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return Err(Refused(format!("{status}: {message}")));
        }
        let mut progress = Progress::default();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            // A broken stream mid-build is the build's failure, not a refusal to build.
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    progress.fail(format!(
                        "the connection to Docker broke during the build: {e}"
                    ));
                    break;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                progress.message(&line);
            }
        }
        if !pending.is_empty() {
            progress.message(&pending);
        }
        Ok(progress.finish())
    };
    let mut work = std::pin::pin!(work);
    let mut conn = std::pin::pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            r = &mut work => return r,
            c = &mut conn, if !conn_done => {
                if let Err(e) = c {
                    return Err(Refused(e.to_string()));
                }
                conn_done = true;
            }
        }
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One build step as BuildKit reports it.
#[derive(Debug, Default)]
struct Vertex {
    number: usize,
    name: String,
    output: String,
    /// Output not yet ended by a newline.
    partial: String,
    reported_end: bool,
    /// When the daemon started the step, in seconds since the epoch.
    started: Option<f64>,
}

/// Progress folded into a log.
#[derive(Debug, Default)]
struct Progress {
    vertices: HashMap<String, Vertex>,
    log: String,
    error: Option<String>,
    failed: Option<String>,
}

impl Progress {
    /// One JSON message of the build stream.
    fn message(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            let text = String::from_utf8_lossy(line);
            if !text.trim().is_empty() {
                self.log.push_str(text.trim_end());
                self.log.push('\n');
            }
            return;
        };
        if let Some(s) = v["stream"].as_str() {
            // Classic-style text: a daemon that ignores `version=2`, or the final tag line.
            self.log.push_str(s);
        }
        if v["id"] == "moby.buildkit.trace" {
            if let Some(raw) = v["aux"]
                .as_str()
                .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
            {
                self.status(&raw);
            }
        }
        if let Some(e) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            self.fail(e.to_string());
        }
    }

    fn fail(&mut self, error: String) {
        self.log.push_str(&format!("ERROR: {error}\n"));
        self.error.get_or_insert(error);
    }

    /// A StatusResponse: vertexes (1) and logs (3); statuses (2) are download progress.
    fn status(&mut self, buf: &[u8]) {
        for (field, value) in Fields::new(buf) {
            match (field, value) {
                (1, Value::Bytes(v)) => self.vertex(v),
                (3, Value::Bytes(l)) => self.vertex_log(l),
                _ => {}
            }
        }
    }

    fn entry(&mut self, digest: &str) -> &mut Vertex {
        let next = self.vertices.len() + 1;
        self.vertices
            .entry(digest.to_string())
            .or_insert_with(|| Vertex {
                number: next,
                ..Vertex::default()
            })
    }

    /// Vertex: digest 1, name 3, cached 4, started 5, completed 6, error 7.
    fn vertex(&mut self, buf: &[u8]) {
        let (mut digest, mut name, mut cached, mut error) =
            (String::new(), String::new(), false, String::new());
        let (mut started, mut completed) = (None, None);
        for (field, value) in Fields::new(buf) {
            match (field, value) {
                (1, Value::Bytes(b)) => digest = String::from_utf8_lossy(b).into_owned(),
                (3, Value::Bytes(b)) => name = String::from_utf8_lossy(b).into_owned(),
                (4, Value::Varint(c)) => cached = c != 0,
                (5, Value::Bytes(t)) => started = Some(timestamp(t)),
                (6, Value::Bytes(t)) => completed = Some(timestamp(t)),
                (7, Value::Bytes(b)) => error = String::from_utf8_lossy(b).into_owned(),
                _ => {}
            }
        }
        let v = self.entry(&digest);
        v.started = v.started.or(started);
        let mut lines = String::new();
        if v.name.is_empty() && !name.is_empty() {
            v.name = name;
            lines.push_str(&format!("#{} {}\n", v.number, v.name));
        }
        if !v.reported_end && (completed.is_some() || cached || !error.is_empty()) {
            v.reported_end = true;
            if !v.partial.is_empty() {
                let rest = std::mem::take(&mut v.partial);
                lines.push_str(&format!("#{} {rest}\n", v.number));
                v.output.push_str(&rest);
                v.output.push('\n');
            }
            if !error.is_empty() {
                lines.push_str(&format!("#{} ERROR: {error}\n", v.number));
            } else if cached {
                lines.push_str(&format!("#{} CACHED\n", v.number));
            } else {
                // Like `--progress=plain`: how long the step took, where the daemon said.
                match (v.started, completed) {
                    (Some(s), Some(c)) if c >= s => {
                        lines.push_str(&format!("#{} DONE {:.1}s\n", v.number, c - s))
                    }
                    _ => lines.push_str(&format!("#{} DONE\n", v.number)),
                }
            }
        }
        let failed_here = !error.is_empty() && !v.name.is_empty();
        self.log.push_str(&lines);
        if failed_here && self.failed.is_none() {
            self.failed = Some(digest);
            self.error.get_or_insert(error);
        }
    }

    /// VertexLog: vertex 1, msg 4.
    fn vertex_log(&mut self, buf: &[u8]) {
        let (mut digest, mut msg) = (String::new(), Vec::new());
        for (field, value) in Fields::new(buf) {
            match (field, value) {
                (1, Value::Bytes(b)) => digest = String::from_utf8_lossy(b).into_owned(),
                (4, Value::Bytes(b)) => msg.extend_from_slice(b),
                _ => {}
            }
        }
        let v = self.entry(&digest);
        v.partial
            .push_str(&String::from_utf8_lossy(&msg).replace('\r', "\n"));
        let mut lines = String::new();
        while let Some(nl) = v.partial.find('\n') {
            let line: String = v.partial.drain(..=nl).collect();
            let line = line.trim_end_matches('\n');
            lines.push_str(&format!("#{} {line}\n", v.number));
            v.output.push_str(line);
            v.output.push('\n');
        }
        self.log.push_str(&lines);
    }

    fn finish(mut self) -> Outcome {
        let mut failed_step = None;
        let mut failed_output = String::new();
        if let Some(v) = self.failed.as_ref().and_then(|d| self.vertices.get_mut(d)) {
            failed_output = std::mem::take(&mut v.output);
            if !v.partial.is_empty() {
                failed_output.push_str(&v.partial);
            }
            failed_step = Some(step_name(&v.name));
        }
        Outcome {
            log: self.log,
            error: self.error,
            failed_step,
            failed_output,
        }
    }
}

/// A google.protobuf.Timestamp (seconds 1, nanos 2) as seconds since the epoch.
fn timestamp(buf: &[u8]) -> f64 {
    let (mut secs, mut nanos) = (0u64, 0u64);
    for (field, value) in Fields::new(buf) {
        match (field, value) {
            (1, Value::Varint(s)) => secs = s,
            (2, Value::Varint(n)) => nanos = n,
            _ => {}
        }
    }
    secs as f64 + nanos as f64 / 1e9
}

/// BuildKit's `[2/3] RUN make` (or `[builder 2/3] RUN make`) as the classic builder's
/// `Step 2/3 : RUN make`, so a failure reads the same whichever builder ran.
fn step_name(name: &str) -> String {
    match name.strip_prefix('[').and_then(|n| n.split_once("] ")) {
        Some((index, rest)) if index.contains('/') => format!("Step {index} : {rest}"),
        _ => name.to_string(),
    }
}

/// A field of the protobuf wire format.
#[derive(Debug, PartialEq)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one protobuf message, in order; stops at the first malformed byte.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.buf.split_first()?;
            self.buf = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.take(8).map(|_| Value::Fixed)?,
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.take(n)?)
            }
            5 => self.take(4).map(|_| Value::Fixed)?,
            _ => {
                self.buf = &[];
                return None;
            }
        };
        Some((key >> 3, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes(field: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn vertex(digest: &str, name: &str, cached: bool, completed: bool, error: &str) -> Vec<u8> {
        let mut v = Vec::new();
        bytes(1, digest.as_bytes(), &mut v);
        bytes(2, b"sha256:input", &mut v);
        bytes(3, name.as_bytes(), &mut v);
        if cached {
            varint(4 << 3, &mut v);
            varint(1, &mut v);
        }
        bytes(5, &[8, 1], &mut v);
        if completed {
            bytes(6, &[8, 2, 16, 3], &mut v);
        }
        if !error.is_empty() {
            bytes(7, error.as_bytes(), &mut v);
        }
        v
    }

    fn log(digest: &str, msg: &str) -> Vec<u8> {
        let mut v = Vec::new();
        bytes(1, digest.as_bytes(), &mut v);
        bytes(2, &[8, 1], &mut v);
        varint(3 << 3, &mut v);
        varint(1, &mut v);
        bytes(4, msg.as_bytes(), &mut v);
        v
    }

    fn trace(vertices: &[Vec<u8>], logs: &[Vec<u8>]) -> Vec<u8> {
        let mut s = Vec::new();
        for v in vertices {
            bytes(1, v, &mut s);
        }
        // A status (download progress) that must be skipped.
        bytes(2, b"\x0a\x02id", &mut s);
        for l in logs {
            bytes(3, l, &mut s);
        }
        let aux = base64::engine::general_purpose::STANDARD.encode(&s);
        format!("{{\"id\":\"moby.buildkit.trace\",\"aux\":\"{aux}\"}}\n").into_bytes()
    }

    #[test]
    fn a_failed_run_step_keeps_its_name_output_and_error() {
        let mut p = Progress::default();
        p.message(&trace(
            &[vertex(
                "d1",
                "[1/2] FROM docker.io/library/busybox:latest",
                true,
                true,
                "",
            )],
            &[],
        ));
        p.message(&trace(
            &[vertex("d2", "[2/2] RUN make", false, false, "")],
            &[
                log("d2", "compiling\nerror: undefined sym"),
                log("d2", "bol main\n"),
            ],
        ));
        p.message(&trace(
            &[vertex(
                "d2",
                "[2/2] RUN make",
                false,
                true,
                "process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
            )],
            &[],
        ));
        p.message(br#"{"errorDetail":{"message":"exit code: 2"},"error":"exit code: 2"}"#);
        let out = p.finish();
        assert_eq!(out.failed_step.as_deref(), Some("Step 2/2 : RUN make"));
        assert_eq!(
            out.failed_output,
            "compiling\nerror: undefined symbol main\n"
        );
        assert!(out
            .error
            .unwrap()
            .contains("did not complete successfully: exit code: 2"));
        assert!(
            out.log
                .contains("#1 [1/2] FROM docker.io/library/busybox:latest\n#1 CACHED\n"),
            "{}",
            out.log
        );
        assert!(
            out.log
                .contains("#2 compiling\n#2 error: undefined symbol main\n#2 ERROR: process"),
            "{}",
            out.log
        );
    }

    #[test]
    fn a_successful_build_has_no_error_and_keeps_the_tag_line() {
        let mut p = Progress::default();
        p.message(&trace(
            &[vertex("d1", "[1/1] COPY a.py .", false, false, "")],
            &[],
        ));
        // Started at 1 s, completed at 2 s and 3 ns: the log says how long, like --progress=plain.
        p.message(&trace(
            &[vertex("d1", "[1/1] COPY a.py .", false, true, "")],
            &[],
        ));
        p.message(b"{\"stream\":\"Successfully tagged x:y\\n\"}\n");
        let out = p.finish();
        assert!(out.error.is_none() && out.failed_step.is_none());
        assert_eq!(
            out.log,
            "#1 [1/1] COPY a.py .\n#1 DONE 1.0s\nSuccessfully tagged x:y\n"
        );
    }

    #[test]
    fn an_error_with_no_failing_step_is_still_the_build_error() {
        let mut p = Progress::default();
        p.message(br#"{"errorDetail":{"message":"dockerfile parse error line 2: unknown instruction: FORM"}}"#);
        let out = p.finish();
        assert_eq!(
            out.error.as_deref(),
            Some("dockerfile parse error line 2: unknown instruction: FORM")
        );
        assert!(out.failed_step.is_none());
    }

    #[test]
    fn malformed_protobuf_stops_without_panicking() {
        for junk in [
            &[0xff_u8, 0xff, 0xff][..],
            &[0x0a, 0x50, 1, 2],
            &[0x0b],
            &[0x09, 1, 2],
        ] {
            let mut p = Progress::default();
            p.status(junk);
            assert!(p.vertices.is_empty());
        }
    }

    #[test]
    fn steps_read_like_the_classic_builder() {
        assert_eq!(
            step_name("[2/3] RUN pip install -r requirements.txt"),
            "Step 2/3 : RUN pip install -r requirements.txt"
        );
        assert_eq!(
            step_name("[builder 1/4] FROM python:3.11-slim"),
            "Step builder 1/4 : FROM python:3.11-slim"
        );
        assert_eq!(
            step_name("[internal] load build definition from Dockerfile"),
            "[internal] load build definition from Dockerfile"
        );
    }

    /// A one-shot HTTP server on loopback: reads one request, answers `response`, and hands
    /// back the request line.
    fn one_shot(response: Vec<u8>) -> (Transport, std::thread::JoinHandle<String>) {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let (mut first, mut length) = (String::new(), 0usize);
            reader.read_line(&mut first).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream.write_all(&response).unwrap();
            first
        });
        (Transport::Tcp(addr), handle)
    }

    fn chunked(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for p in parts {
            out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[tokio::test]
    async fn a_build_stream_split_anywhere_is_read_whole() {
        let mut stream = trace(&[vertex("d1", "[1/2] FROM busybox", true, true, "")], &[]);
        stream.extend(trace(
            &[vertex("d2", "[2/2] RUN make", false, true, "exit code: 2")],
            &[log("d2", "cc: error\n")],
        ));
        stream.extend_from_slice(
            b"{\"errorDetail\":{\"message\":\"exit code: 2\"},\"error\":\"exit code: 2\"}\n",
        );
        // Chunks that cut JSON lines (and base64) in the middle.
        let cut: Vec<&[u8]> = stream.chunks(7).collect();
        let (transport, server) = one_shot(chunked(&cut));
        let query = [
            ("t", "masgen/x-app:abc".to_string()),
            ("labels", "{\"a\":\"b c\"}".to_string()),
        ];
        let out = build(&transport, "1.41", &query, None, Bytes::from_static(b"tar"))
            .await
            .unwrap();
        assert_eq!(out.failed_step.as_deref(), Some("Step 2/2 : RUN make"));
        assert_eq!(out.failed_output, "cc: error\n");
        assert_eq!(out.error.as_deref(), Some("exit code: 2"));
        assert_eq!(server.join().unwrap(), "POST /v1.41/build?version=2&t=masgen%2Fx-app%3Aabc&labels=%7B%22a%22%3A%22b%20c%22%7D HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_daemon_refusing_buildkit_is_a_refusal_with_its_message() {
        let body = br#"{"message":"buildkit not supported by daemon"}"#;
        let mut response = format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(body);
        let (transport, _server) = one_shot(response);
        let Err(Refused(why)) =
            build(&transport, "1.41", &[], None, Bytes::from_static(b"tar")).await
        else {
            panic!("a 400 must be a refusal")
        };
        assert!(
            why.contains("400") && why.contains("buildkit not supported by daemon"),
            "{why}"
        );
        let Err(Refused(why)) = build(
            &Transport::Unix("/nonexistent/docker.sock".into()),
            "1.41",
            &[],
            None,
            Bytes::new(),
        )
        .await
        else {
            panic!()
        };
        assert!(why.contains("/nonexistent/docker.sock"), "{why}");
    }

    #[test]
    fn transports_from_docker_host() {
        assert_eq!(
            Transport::from_docker_host("unix:///var/run/docker.sock", false),
            Some(Transport::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Transport::from_docker_host("unix:///tmp/d.sock", false),
            Some(Transport::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Transport::from_docker_host("tcp://127.0.0.1:2375", false),
            Some(Transport::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            Transport::from_docker_host("tcp://127.0.0.1:2376", true),
            None
        );
        assert_eq!(Transport::from_docker_host("ssh://me@host", false), None);
        assert_eq!(
            percent_encode("{\"a\":\"b c\"}"),
            "%7B%22a%22%3A%22b%20c%22%7D"
        );
    }
}
