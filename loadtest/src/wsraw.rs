//! A minimal receive-side WebSocket client for the measuring modes: one TCP socket, one read
//! buffer, frames parsed in place, no allocation per message. Simulating thousands of viewers on
//! the same two cores as the server under test, the client's own cost per delivery is part of
//! every latency it reports; tokio-tungstenite allocates a `Message` and validates UTF-8 for
//! every frame, which at 800,000 deliveries/s costs as much CPU as the server does.
//!
//! Scope: `ws://` only, server frames unmasked (RFC 6455 §5.1), pings answered with pongs.
//! Fragmented messages are passed on frame by frame.

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a frame was, as far as a receiver cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text, binary or continuation frame's payload.
    Data(&'a [u8]),
    /// The connection ended: the close frame's code, 1005 for a close frame without one, 1006
    /// for a connection that ended without a close frame.
    Close(u16),
}

/// A connected WebSocket client.
pub struct RawWs {
    stream: TcpStream,
    buf: BytesMut,
    /// Pongs owed for pings read, sent before the next read or write.
    pongs: Vec<Vec<u8>>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Splits `ws://host:port/path?query` into (`host:port`, `/path?query`).
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| invalid(format!("only ws:// URLs are supported: {url}")))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

impl RawWs {
    /// Connects with TCP_NODELAY and completes the opening handshake; fails unless the server
    /// answers `101`.
    pub async fn connect(url: &str) -> io::Result<RawWs> {
        let (authority, path) = split_url(url)?;
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let mut ws = RawWs {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            pongs: Vec::new(),
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        ws.stream.write_all(req.as_bytes()).await?;
        loop {
            if let Some(end) = memchr::memmem::find(&ws.buf, b"\r\n\r\n") {
                let head = &ws.buf[..end];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let head = String::from_utf8_lossy(head).into_owned();
                    let body = ws.refusal_body(&head, end + 4).await;
                    return Err(io::Error::other(refusal(&head, &body)));
                }
                ws.buf.advance(end + 4);
                return Ok(ws);
            }
            if ws.stream.read_buf(&mut ws.buf).await? == 0 {
                return Err(invalid("connection closed during the handshake"));
            }
        }
    }

    /// The body of a refused upgrade whose head ends at `body_start`: up to its
    /// `Content-Length` (at most 4 KiB), within a second; what arrived when it is not all there.
    async fn refusal_body(&mut self, head: &str, body_start: usize) -> Vec<u8> {
        let want = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0)
            .min(4096);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while self.buf.len() < body_start + want {
                if self.stream.read_buf(&mut self.buf).await? == 0 {
                    break;
                }
            }
            io::Result::Ok(())
        })
        .await;
        let end = self.buf.len().min(body_start + want);
        self.buf.get(body_start..end).unwrap_or_default().to_vec()
    }

    /// Reads more bytes from the socket (sending owed pongs first). `Ok(false)` at EOF.
    pub async fn fill(&mut self) -> io::Result<bool> {
        for p in std::mem::take(&mut self.pongs) {
            self.stream.write_all(&client_frame(0xA, &p)).await?;
        }
        // Keep reads large without letting a burst pin a big buffer forever.
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// Hands the next complete buffered data or close frame to `f` and returns its result;
    /// `None` when no complete frame is buffered. Pings are answered, pongs skipped.
    pub fn next_buffered<R>(&mut self, mut f: impl FnMut(Frame<'_>) -> R) -> io::Result<Option<R>> {
        while let Some((opcode, start, len)) = parse_head(&self.buf)? {
            let payload = &self.buf[start..start + len];
            let out = match opcode {
                0x0..=0x2 => Some(f(Frame::Data(payload))),
                0x8 => {
                    let code = match payload {
                        [a, b, ..] => u16::from_be_bytes([*a, *b]),
                        _ => 1005,
                    };
                    Some(f(Frame::Close(code)))
                }
                0x9 => {
                    self.pongs.push(payload.to_vec());
                    None
                }
                _ => None,
            };
            self.buf.advance(start + len);
            if out.is_some() {
                return Ok(out);
            }
        }
        Ok(None)
    }

    /// Waits for data, then hands every complete frame in the buffer to `on_frame`. Returns
    /// `Ok(false)` once the connection is closed (after `on_frame(Frame::Close(_))`).
    pub async fn next_frames(&mut self, mut on_frame: impl FnMut(Frame<'_>)) -> io::Result<bool> {
        if !self.fill().await? {
            on_frame(Frame::Close(1006));
            return Ok(false);
        }
        while let Some(open) = self.next_buffered(|f| {
            let open = !matches!(f, Frame::Close(_));
            on_frame(f);
            open
        })? {
            if !open {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.stream
            .write_all(&client_frame(0x1, text.as_bytes()))
            .await
    }

    /// Sends a close frame (1000) and shuts the socket down; errors are ignored (the peer may
    /// be gone already).
    pub async fn close(mut self) {
        let _ = self
            .stream
            .write_all(&client_frame(0x8, &1000u16.to_be_bytes()))
            .await;
        let _ = self.stream.shutdown().await;
    }
}

/// Why the hub refused an upgrade, from its answer's status line and body: `HTTP 429
/// rate_limited: too many open connections from this address` when the body is the protocol's
/// `{"error":{"code","message"}}`, else `HTTP 502 Bad Gateway`.
fn refusal(head: &str, body: &[u8]) -> String {
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .unwrap_or(status_line);
    let error = serde_json::from_slice::<serde_json::Value>(body).ok();
    let code = error.as_ref().and_then(|v| v["error"]["code"].as_str());
    let message = error.as_ref().and_then(|v| v["error"]["message"].as_str());
    match (code, message) {
        (Some(code), Some(message)) => {
            let number = status.split(' ').next().unwrap_or(status);
            format!("HTTP {number} {code}: {message}")
        }
        _ => format!("HTTP {status}"),
    }
}

/// The decimal number right after the first `key` in a frame's payload, e.g. `"seq":` or the
/// load tester's own `[t=` stamp.
pub fn number_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let i = memchr::memmem::find(frame, key)? + key.len();
    let digits = &frame[i..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// `(opcode, payload start, payload length)` of the first frame if the buffer holds all of it.
fn parse_head(b: &[u8]) -> io::Result<Option<(u8, usize, usize)>> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[1] & 0x80 != 0 {
        return Err(invalid("server frames must not be masked"));
    }
    let (len, start) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            let len = usize::try_from(u64::from_be_bytes(n))
                .map_err(|_| invalid("frame length overflows"))?;
            (len, 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if b.len() < start + len {
        return Ok(None);
    }
    Ok(Some((b[0] & 0x0f, start, len)))
}

/// A masked client frame (FIN set). The mask is fixed: it only has to exist (RFC 6455 §5.3
/// protects proxies, and this client only talks to servers under test on 127.0.0.1).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_extended_and_partial_frames() {
        assert_eq!(
            parse_head(&[0x81, 3, b'a', b'b', b'c']).unwrap(),
            Some((1, 2, 3))
        );
        assert_eq!(parse_head(&[0x81, 3, b'a']).unwrap(), None);
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(parse_head(&long).unwrap(), Some((1, 4, 256)));
        assert_eq!(parse_head(&long[..100]).unwrap(), None);
        assert!(parse_head(&[0x81, 0x83, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn client_frames_are_masked_and_unmask_to_the_payload() {
        let f = client_frame(0x1, b"hello");
        assert_eq!(f[0], 0x81);
        assert_eq!(f[1], 0x80 | 5);
        let mask = &f[2..6];
        let plain: Vec<u8> = f[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(plain, b"hello");
    }

    #[test]
    fn finds_the_number_after_a_key() {
        let f = br#"{"type":"comment","seq":42,"text":"[t=1234] hi"}"#;
        assert_eq!(number_after(f, br#""seq":"#), Some(42));
        assert_eq!(number_after(f, b"[t="), Some(1234));
        assert_eq!(number_after(f, b"[s="), None);
        assert_eq!(number_after(br#""seq":x"#, br#""seq":"#), None);
    }

    #[test]
    fn a_refusal_says_the_hubs_code_and_reason() {
        let head = "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 99";
        let body = br#"{"error":{"code":"rate_limited","message":"too many open connections"}}"#;
        assert_eq!(
            refusal(head, body),
            "HTTP 429 rate_limited: too many open connections"
        );
        assert_eq!(
            refusal("HTTP/1.1 502 Bad Gateway\r\n", b"<html>"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:9/ws?room=a").unwrap(),
            ("127.0.0.1:9", "/ws?room=a")
        );
        assert_eq!(split_url("ws://h:1").unwrap(), ("h:1", "/"));
        assert!(split_url("wss://h:1/").is_err());
    }
}
