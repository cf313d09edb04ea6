//! A raw WebSocket client: handshake by hand, frames parsed byte by byte, so tests can assert
//! the exact bytes the server writes and send anything, malformed frames included.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long an HTTP read waits before a test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long one call that awaits a frame (`recv`, `expect_close_code`, ...) waits in all
/// before the test fails: one deadline for the call, which frames skipped on the way (pings,
/// frames before a close) do not extend. Generous, for a loaded 2-core box: a passing test
/// never waits it out.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

/// Why a wait for a frame ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFrame {
    /// The deadline passed.
    TimedOut,
    /// The server closed the TCP connection (or reading it failed).
    Closed,
}

impl std::fmt::Display for NoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoFrame::TimedOut => "nothing came before the deadline",
            NoFrame::Closed => "the TCP connection closed",
        })
    }
}

/// An HTTP response as received.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// The status line and headers, verbatim.
    pub head: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// First header with this name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Text frame payload.
    Text(String),
    /// Binary frame payload.
    Binary(Vec<u8>),
    /// Close frame: the whole raw frame, the code if any, and the reason.
    Close {
        raw: Vec<u8>,
        code: Option<u16>,
        reason: String,
    },
    /// Ping frame payload.
    Ping(Vec<u8>),
    /// Pong frame payload.
    Pong(Vec<u8>),
}

/// A connected WebSocket.
#[derive(Debug)]
pub struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
    /// First byte of every text frame received, to check FIN/opcode/RSV bits.
    pub first_bytes: Vec<u8>,
}

pub async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("timed out reading the HTTP response head")
            .expect("read failed");
        assert!(
            n > 0,
            "connection closed before the HTTP head ended: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// Sends a plain HTTP request (Connection: close) and reads the whole response.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let (head, mut rest) = read_head(&mut stream).await;
    let (status, headers) = parse_head(&head);
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    HttpReply {
        status,
        head,
        headers,
        body: rest,
    }
}

/// The upgrade request headers every test sends, plus `extra`.
pub async fn connect(
    addr: SocketAddr,
    path: &str,
    extra: &[(&str, &str)],
) -> (HttpReply, Option<Ws>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let (head, rest) = read_head(&mut stream).await;
    let (status, headers) = parse_head(&head);
    let mut reply = HttpReply {
        status,
        head,
        headers,
        body: Vec::new(),
    };
    if status == 101 {
        let ws = Ws {
            stream,
            buf: rest,
            first_bytes: Vec::new(),
        };
        return (reply, Some(ws));
    }
    let mut body = rest;
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut body)).await;
    reply.body = body;
    (reply, None)
}

/// Masks and frames a payload as a client must.
pub fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = vec![first_byte];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

impl Ws {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(&client_frame(0x81, text.as_bytes())).await;
    }

    /// Sends a close frame with this code.
    pub async fn send_close(&mut self, code: u16) {
        self.send_raw(&client_frame(0x88, &code.to_be_bytes()))
            .await;
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The server may already have closed; a failed write shows up on the next read.
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame, or `None` if none arrives within `wait` or the socket closed.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Frame> {
        self.frame_before(Instant::now() + wait).await.ok()
    }

    /// The next frame, pings included, or why none came before `deadline`.
    pub async fn frame_before(&mut self, deadline: Instant) -> Result<Frame, NoFrame> {
        loop {
            if let Some(frame) = self.parse_one() {
                return Ok(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(NoFrame::TimedOut),
                Ok(Err(_) | Ok(0)) => return Err(NoFrame::Closed),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next frame that is not an Action Cable ping, or why none came before `deadline`
    /// (with how many pings came meanwhile). Pings never move the deadline.
    pub async fn recv_before(&mut self, deadline: Instant) -> Result<Frame, (NoFrame, usize)> {
        let mut pings = 0;
        loop {
            match self.frame_before(deadline).await {
                Ok(Frame::Text(t)) if is_ping(&t) => pings += 1,
                Ok(frame) => return Ok(frame),
                Err(why) => return Err((why, pings)),
            }
        }
    }

    fn parse_one(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames must not be masked");
        let (len, offset) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < offset + len {
            return None;
        }
        let first = b[0];
        let raw: Vec<u8> = self.buf.drain(..offset + len).collect();
        let payload = raw[offset..].to_vec();
        assert_eq!(first & 0x70, 0, "RSV bits must be 0 (no compression)");
        Some(match first & 0x0f {
            0x1 => {
                self.first_bytes.push(first);
                Frame::Text(String::from_utf8(payload).expect("text frame is UTF-8"))
            }
            0x2 => Frame::Binary(payload),
            0x8 => Frame::Close {
                code: (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                reason: String::from_utf8_lossy(payload.get(2..).unwrap_or(&[])).into_owned(),
                raw,
            },
            0x9 => Frame::Ping(payload),
            0xA => Frame::Pong(payload),
            op => panic!("unexpected opcode {op:#x}"),
        })
    }

    /// The next frame that is not an Action Cable ping; panics if none came within
    /// [`FRAME_WAIT`] of the call (pings on the way do not extend it).
    pub async fn recv(&mut self) -> Frame {
        match self.recv_before(Instant::now() + FRAME_WAIT).await {
            Ok(frame) => frame,
            Err((why, pings)) => panic!(
                "waited {FRAME_WAIT:?} for a frame other than a ping: {why} ({pings} ping(s) came meanwhile)"
            ),
        }
    }

    /// The next non-ping text frame.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Frame::Text(t) => t,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Asserts the next non-ping text frame is exactly `expected`.
    pub async fn expect(&mut self, expected: &str) {
        let got = self.recv_text().await;
        assert_eq!(got, expected);
    }

    /// Asserts no non-ping frame arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        if let Ok(frame) = self.recv_before(deadline).await {
            panic!("expected {ms} ms of silence (pings aside), got {frame:?}");
        }
    }

    /// Asserts the next non-ping frame is Rails' close: `88 02 03 e8`.
    pub async fn expect_close_1000(&mut self) {
        match self.recv().await {
            Frame::Close { raw, .. } => assert_eq!(raw, vec![0x88, 0x02, 0x03, 0xe8]),
            other => panic!("expected close 1000, got {other:?}"),
        }
    }

    /// Asserts the server's goodbye on shutdown (`server_restart`, then close 1000) and
    /// answers the close, as a client would.
    pub async fn expect_server_restart(&mut self) {
        self.expect(r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#)
            .await;
        self.expect_close_1000().await;
        self.send_close(1000).await;
    }

    /// Asserts a close frame with `code` arrives within [`FRAME_WAIT`] of the call; other
    /// frames are skipped (and named if the close does not come), and do not extend the wait.
    pub async fn expect_close_code(&mut self, code: u16) {
        let deadline = Instant::now() + FRAME_WAIT;
        let mut skipped = Vec::new();
        loop {
            match self.recv_before(deadline).await {
                Ok(Frame::Close {
                    code: got, reason, ..
                }) => {
                    assert_eq!(
                        got,
                        Some(code),
                        "expected a close with code {code}, got one with {got:?} ({reason:?}) after {skipped:?}"
                    );
                    return;
                }
                Ok(other) => skipped.push(other),
                Err((why, pings)) => panic!(
                    "waited {FRAME_WAIT:?} for a close with code {code}: {why}; came instead: {skipped:?} and {pings} ping(s)"
                ),
            }
        }
    }

    /// Whether the server closed the TCP connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// `{"type":"ping","message":<digits>}` exactly.
pub fn is_ping(text: &str) -> bool {
    text.strip_prefix(r#"{"type":"ping","message":"#)
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

impl Ws {
    /// A WebSocket over a stream whose 101 was already read; `leftover` are bytes read past it.
    pub fn from_parts(stream: TcpStream, leftover: Vec<u8>) -> Ws {
        Ws {
            stream,
            buf: leftover,
            first_bytes: Vec::new(),
        }
    }
}

/// Reads the 101 on a socket whose upgrade request the test wrote itself.
pub async fn adopt(mut stream: TcpStream) -> Ws {
    let (head, rest) = read_head(&mut stream).await;
    let (status, _) = parse_head(&head);
    assert_eq!(status, 101, "{head}");
    Ws {
        stream,
        buf: rest,
        first_bytes: Vec::new(),
    }
}
