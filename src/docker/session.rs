//! A BuildKit session, for builds whose `RUN --mount=type=secret` and `--mount=type=ssh`
//! steps need something from this side (compose's `build.secrets` and `build.ssh`), as the
//! docker CLI opens one: `POST /session` upgraded to h2c, on which the daemon is the gRPC
//! client and masgen the server. It serves secrets (`Secrets/GetSecret`), forwards SSH
//! agents (`SSH/CheckAgent`, `SSH/ForwardAgent`) to their sockets, and answers the
//! daemon's health checks. Messages are small protobufs, read and written here by hand.
//!
//! Secrets travel only to the daemon, inside this connection; they are never logged.

use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::buildkit::Transport;

const SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
const CHECK_AGENT: &str = "/moby.sshforward.v1.SSH/CheckAgent";
const FORWARD_AGENT: &str = "/moby.sshforward.v1.SSH/ForwardAgent";
const HEALTH: &str = "/grpc.health.v1.Health/Check";
/// The gRPC metadata key naming the agent a ForwardAgent call is for.
const SSH_ID: &str = "buildkit.ssh.id";

pub use crate::runtime::build::Provided;

/// An open session: its id goes in the build's `session` parameter; dropping it ends it.
pub struct Session {
    pub id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a build session could not be opened or served.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot reach the daemon at {at} for a build session: {source}")]
    Connect { at: String, source: std::io::Error },
    #[error("the build session request failed: {0}")]
    Request(std::io::Error),
    #[error("the daemon closed the session request")]
    Closed,
    #[error("the daemon refused a build session ({0})")]
    Refused(String),
    #[error("the SSH agent cannot be reached: {0}")]
    Agent(std::io::Error),
    #[error("the agent's stream broke: {0}")]
    Stream(String),
}

/// Open a session on the daemon at `transport` serving `provided`.
pub async fn open(
    transport: &Transport,
    api_version: &str,
    provided: Provided,
) -> Result<Session, SessionError> {
    let id = format!("masgen-{:016x}", fastrand::u64(..));
    let key = format!("{:016x}", fastrand::u64(..));
    let mut request = format!(
        "POST /v{api_version}/session HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\nX-Docker-Expose-Session-Uuid: {id}\r\nX-Docker-Expose-Session-Name: masgen\r\nX-Docker-Expose-Session-Sharedkey: {key}\r\n"
    );
    for method in [HEALTH, SECRET, CHECK_AGENT, FORWARD_AGENT] {
        request.push_str(&format!(
            "X-Docker-Expose-Session-Grpc-Method: {method}\r\n"
        ));
    }
    request.push_str("\r\n");
    let provided = Arc::new(provided);
    let task = match transport {
        Transport::Unix(path) => {
            let io = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|source| SessionError::Connect {
                    at: path.display().to_string(),
                    source,
                })?;
            tokio::spawn(serve(upgrade(io, &request).await?, provided))
        }
        Transport::Tcp(addr) => {
            let io = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|source| SessionError::Connect {
                    at: addr.clone(),
                    source,
                })?;
            tokio::spawn(serve(upgrade(io, &request).await?, provided))
        }
    };
    Ok(Session { id, task })
}

/// Send the upgrade request and read the daemon's `101 Switching Protocols`.
async fn upgrade<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    request: &str,
) -> Result<IO, SessionError> {
    io.write_all(request.as_bytes())
        .await
        .map_err(SessionError::Request)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if io.read(&mut byte).await.map_err(SessionError::Request)? == 0 || head.len() > 16 * 1024 {
            return Err(SessionError::Closed);
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head);
    if !status.starts_with("HTTP/1.1 101") {
        let line = status.lines().next().unwrap_or("").to_string();
        return Err(SessionError::Refused(line));
    }
    Ok(io)
}

/// Serve the daemon's gRPC calls until the connection ends.
async fn serve<IO>(io: IO, provided: Arc<Provided>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = conn.accept().await {
        tokio::spawn(call(request, respond, provided.clone()));
    }
}

type Respond = h2::server::SendResponse<Bytes>;

/// One gRPC call.
async fn call(request: http::Request<h2::RecvStream>, respond: Respond, provided: Arc<Provided>) {
    let path = request.uri().path().to_string();
    let agent = request
        .headers()
        .get(SSH_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("default")
        .to_string();
    let mut body = request.into_body();
    if path == FORWARD_AGENT {
        let _ = forward(body, respond, provided.agents.get(&agent).cloned()).await;
        return;
    }
    let input = read_all(&mut body).await.unwrap_or_default();
    let message = unframe(&input).unwrap_or_default();
    let (status, reply) = match path.as_str() {
        HEALTH => (0, vec![0x08, 0x01]),
        SECRET => match provided.secrets.get(&string_field(message, 1)) {
            Some(data) => (0, bytes_field(1, data)),
            None => (5, Vec::new()),
        },
        // An empty id is the default agent, as BuildKit's own provider reads it.
        CHECK_AGENT => match provided.agents.contains_key(&agent_id(message)) {
            true => (0, Vec::new()),
            false => (5, Vec::new()),
        },
        _ => (12, Vec::new()),
    };
    let _ = reply_unary(respond, status, &reply);
}

async fn read_all(body: &mut h2::RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn grpc_response() -> http::Response<()> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("a valid response")
}

fn trailers(status: u32) -> http::HeaderMap {
    let mut t = http::HeaderMap::new();
    t.insert(
        "grpc-status",
        http::HeaderValue::from_str(&status.to_string()).expect("digits"),
    );
    t
}

fn agent_id(message: &[u8]) -> String {
    let id = string_field(message, 1);
    if id.is_empty() {
        "default".into()
    } else {
        id
    }
}

/// Answer a unary call: the message when `status` is 0, and the status.
fn reply_unary(mut respond: Respond, status: u32, message: &[u8]) -> Result<(), h2::Error> {
    let mut send = respond.send_response(grpc_response(), false)?;
    if status == 0 {
        send.send_data(Bytes::from(frame(message)), false)?;
    }
    send.send_trailers(trailers(status))
}

/// A ForwardAgent stream: the daemon's bytes to the agent's socket, the agent's back.
async fn forward(
    mut body: h2::RecvStream,
    mut respond: Respond,
    socket: Option<PathBuf>,
) -> Result<(), SessionError> {
    let Some(socket) = socket else {
        let send = respond.send_response(grpc_response(), false);
        return send
            .and_then(|mut s| s.send_trailers(trailers(5)))
            .map_err(|e| SessionError::Stream(e.to_string()));
    };
    let agent = tokio::net::UnixStream::connect(&socket)
        .await
        .map_err(SessionError::Agent)?;
    let (mut from_agent, mut to_agent) = agent.into_split();
    let mut send = respond
        .send_response(grpc_response(), false)
        .map_err(|e| SessionError::Stream(e.to_string()))?;
    let inbound = async {
        let mut buf = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| SessionError::Stream(e.to_string()))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            buf.extend_from_slice(&chunk);
            while let Some((message, rest)) = next_frame(&buf) {
                let data = bytes_of_field(message, 1);
                to_agent
                    .write_all(&data)
                    .await
                    .map_err(|e| SessionError::Stream(e.to_string()))?;
                buf = rest.to_vec();
            }
        }
        to_agent
            .shutdown()
            .await
            .map_err(|e| SessionError::Stream(e.to_string()))
    };
    let outbound = async {
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = from_agent
                .read(&mut chunk)
                .await
                .map_err(|e| SessionError::Stream(e.to_string()))?;
            if n == 0 {
                return Ok::<(), SessionError>(());
            }
            let message = bytes_field(1, &chunk[..n]);
            send.send_data(Bytes::from(frame(&message)), false)
                .map_err(|e| SessionError::Stream(e.to_string()))?;
        }
    };
    let (a, b) = tokio::join!(inbound, outbound);
    let status = if a.is_ok() && b.is_ok() { 0 } else { 13 };
    send.send_trailers(trailers(status))
        .map_err(|e| SessionError::Stream(e.to_string()))?;
    a.and(b)
}

/// A gRPC message frame: uncompressed, its length, the message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The first complete frame of `buf` and what follows it.
fn next_frame(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(buf.get(1..5)?.try_into().ok()?) as usize;
    let end = 5 + len;
    (buf.len() >= end).then(|| (&buf[5..end], &buf[end..]))
}

fn unframe(buf: &[u8]) -> Option<&[u8]> {
    next_frame(buf).map(|(m, _)| m)
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes of length-delimited field `field` of a protobuf message (the last one).
fn bytes_of_field(message: &[u8], field: u64) -> Vec<u8> {
    let mut at = 0;
    let mut found = Vec::new();
    while at < message.len() {
        let Some(key) = varint(message, &mut at) else {
            break;
        };
        match key & 7 {
            0 => {
                let _ = varint(message, &mut at);
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let Some(len) = varint(message, &mut at) else {
                    break;
                };
                let end = (at + len as usize).min(message.len());
                if key >> 3 == field {
                    found = message[at..end].to_vec();
                }
                at = end;
            }
            _ => break,
        }
    }
    found
}

fn string_field(message: &[u8], field: u64) -> String {
    String::from_utf8_lossy(&bytes_of_field(message, field)).into_owned()
}

/// Length-delimited field `field` holding `data`.
fn bytes_field(field: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 6);
    put_varint(&mut out, (field << 3) | 2);
    put_varint(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn protobuf_fields_and_grpc_frames_round_trip() {
        // GetSecretRequest{ID: "tok", Annotations: {"a": "b"}}
        let mut req = bytes_field(1, b"tok");
        req.extend(bytes_field(
            2,
            &[bytes_field(1, b"a"), bytes_field(2, b"b")].concat(),
        ));
        assert_eq!(string_field(&req, 1), "tok");
        let big = vec![7u8; 300];
        let reply = bytes_field(1, &big);
        assert_eq!(bytes_of_field(&reply, 1), big);
        let framed = [frame(&reply), frame(b"x")].concat();
        let (first, rest) = next_frame(&framed).unwrap();
        assert_eq!(first, reply.as_slice());
        assert_eq!(unframe(rest), Some(&b"x"[..]));
        assert!(next_frame(&framed[..10]).is_none());
    }

    #[test]
    fn provided_secrets_never_print() {
        let p = Provided {
            secrets: [("tok".to_string(), b"s3cret".to_vec())].into(),
            agents: HashMap::new(),
        };
        assert!(!format!("{p:?}").contains("s3cret"));
    }
}
