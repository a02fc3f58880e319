//! Connection limits on real sockets: a request head must arrive in time, an idle keep-alive
//! connection is closed, every open connection (half-sent ones too) counts toward
//! `server.max_connections` and `limits.connections_per_ip` (by the forwarded client behind a
//! trusted proxy), a user's WebSocket sessions are capped, and the automatic connection cap
//! stays below the open-file limit the hub runs with.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::{TestHub, WAIT};
use futures_util::StreamExt;
use livehub::config::Config;
use livehub::protocol::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for the hub to close a connection it should close.
const CLOSE_GUARD: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A refused upgrade: its HTTP status and JSON body.
#[derive(Debug)]
struct Refused {
    status: u16,
    body: serde_json::Value,
}

/// Opens a WebSocket, as a proxy forwarding `xff` when given, and reads its `welcome`; a
/// refused upgrade is `Err` with its status and body.
async fn session(url: &str, xff: Option<&str>) -> Result<std::result::Result<Ws, Refused>> {
    let mut req = url.into_client_request()?;
    if let Some(xff) = xff {
        req.headers_mut().insert("x-forwarded-for", xff.parse()?);
    }
    let mut ws = match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .context("upgrade timed out")?
    {
        Ok((ws, _)) => ws,
        Err(WsError::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            return Ok(Err(Refused {
                status: resp.status().as_u16(),
                body: serde_json::from_slice(body).unwrap_or_default(),
            }));
        }
        Err(e) => bail!("upgrade failed: {e}"),
    };
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains(r#""type":"welcome""#) => {
                return Ok(Ok(ws));
            }
            Ok(Some(Ok(Message::Close(f)))) => bail!("closed before welcome: {f:?}"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("failed before welcome: {e}"),
            Ok(None) => bail!("ended before welcome"),
            Err(_) => bail!("no welcome"),
        }
    }
}

/// A session that must be admitted.
async fn admitted(url: &str, xff: Option<&str>) -> Result<Ws> {
    match session(url, xff).await? {
        Ok(ws) => Ok(ws),
        Err(r) => bail!("refused with {r:?} (forwarding {xff:?})"),
    }
}

/// A session that must be refused.
async fn refused(url: &str, xff: Option<&str>) -> Result<Refused> {
    match session(url, xff).await? {
        Ok(_) => bail!("admitted, expected a refusal (forwarding {xff:?})"),
        Err(r) => Ok(r),
    }
}

/// A session admitted once the hub has noticed the connections a test just closed: the hub
/// learns of a client's close asynchronously, so this retries (briefly) while it refuses.
async fn admitted_once_released(url: &str, xff: Option<&str>) -> Result<Ws> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match session(url, xff).await? {
            Ok(ws) => return Ok(ws),
            Err(r) if tokio::time::Instant::now() < deadline && [429, 503].contains(&r.status) => {
                // Polling for the hub to count the closed connections out.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(r) => bail!("still refused with {r:?}"),
        }
    }
}

/// Reads until the hub closes the connection (EOF or reset); returns how long that took from
/// `since`.
async fn closed_by_hub(stream: &mut TcpStream, since: Instant) -> Result<Duration> {
    let mut buf = [0u8; 1024];
    let ended = tokio::time::timeout(CLOSE_GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    ended.context("the hub did not close the connection")?;
    Ok(since.elapsed())
}

/// Silent connections: connected, never a byte sent.
async fn silent(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await?);
    }
    Ok(v)
}

/// One request on a keep-alive connection: its status and body.
async fn get_on(stream: &mut TcpStream, path: &str) -> Result<(u16, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .context("no content-length")?
                    .trim()
                    .parse()?;
                if buf.len() >= end + 4 + len {
                    let status = head.split(' ').nth(1).context("no status")?.parse()?;
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    return anyhow::Ok((status, body));
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection ended mid-response");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .context("no response")?
}

/// `livehub_connections_refused_total` for `reason`, from `/metrics` (the recorder is shared
/// by every hub in this process, so it only ever grows).
async fn refused_total(hub: &TestHub, reason: &str) -> Result<u64> {
    let (_, text) = hub.get("/metrics", None).await?;
    let prefix = format!("livehub_connections_refused_total{{reason=\"{reason}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(Ok(0), |n| n.trim().parse())?)
}

fn timeouts(header_ms: u64, idle_ms: u64) -> Config {
    let mut c = common::test_config();
    c.server.header_timeout_ms = header_ms;
    c.server.idle_connection_ms = idle_ms;
    c
}

fn viewer_url(hub: &TestHub, room: &str, user: &str) -> String {
    hub.ws_url(
        room,
        &format!("token={}", hub.token(Role::Viewer, room, user)),
    )
}

#[tokio::test]
async fn a_half_sent_request_is_closed_at_the_header_timeout() -> Result<()> {
    let hub = TestHub::with_config(timeouts(300, 10_000)).await?;
    let before = refused_total(&hub, "timeout").await?;
    let start = Instant::now();
    let mut s = TcpStream::connect(hub.addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?;
    let took = closed_by_hub(&mut s, start).await?;
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    assert!(refused_total(&hub, "timeout").await? > before);
    hub.shutdown().await
}

#[tokio::test]
async fn a_rest_command_whose_body_trickles_in_is_refused_and_closed_at_the_body_timeout()
-> Result<()> {
    let mut cfg = timeouts(5000, 10_000);
    cfg.server.body_timeout_ms = 300;
    let hub = TestHub::with_config(cfg).await?;
    hub.open_room("r").await?;
    let token = hub.token(Role::Host, "r", "host");
    let mut s = TcpStream::connect(hub.addr).await?;
    let head = format!(
        "POST /api/rooms/r/commands HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"type\":"
    );
    s.write_all(head.as_bytes()).await?;
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(CLOSE_GUARD, s.read_to_end(&mut answer))
        .await
        .context("the hub kept a trickling body open")??;
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive within 300 ms"), "{answer}");
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn a_200_kb_request_head_gets_431_and_the_connection_closes() -> Result<()> {
    // 200 KB in 50 headers: under hyper's default limits (about 400 KB, 100 headers), over the
    // hub's 64 KiB (a head a little over it may still pass: hyper checks between reads).
    let hub = TestHub::start().await?;
    let mut s = TcpStream::connect(hub.addr).await?;
    let padding = "x".repeat(4000);
    let mut head = String::from("GET /healthz HTTP/1.1\r\nHost: hub\r\n");
    for i in 0..50 {
        head.push_str(&format!("X-Pad-{i}: {padding}\r\n"));
    }
    head.push_str("\r\n");
    // The hub may stop reading (and close) before the whole head is written.
    let _ = s.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(CLOSE_GUARD, s.read_to_end(&mut answer))
        .await
        .context("the hub kept an oversized head open")?;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A head under the limit is served as usual.
    let mut s = TcpStream::connect(hub.addr).await?;
    assert_eq!(get_on(&mut s, "/healthz").await?.0, 200);
    hub.shutdown().await
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout() -> Result<()> {
    let hub = TestHub::with_config(timeouts(300, 10_000)).await?;
    let start = Instant::now();
    let mut s = TcpStream::connect(hub.addr).await?;
    let took = closed_by_hub(&mut s, start).await?;
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    hub.shutdown().await
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout_not_the_header_timeout()
-> Result<()> {
    let hub = TestHub::with_config(timeouts(300, 1500)).await?;
    let mut s = TcpStream::connect(hub.addr).await?;
    // Keep-alive works: two requests on one connection.
    for _ in 0..2 {
        assert_eq!(get_on(&mut s, "/healthz").await?.0, 200);
    }
    let idle_from = Instant::now();
    let took = closed_by_hub(&mut s, idle_from).await?;
    assert!(
        took >= Duration::from_millis(1200),
        "an idle connection waits for the idle timeout (1.5 s), not the header timeout (0.3 s); closed after {took:?}"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn a_keep_alive_request_head_sent_slowly_is_closed_at_the_header_timeout() -> Result<()> {
    let hub = TestHub::with_config(timeouts(300, 4000)).await?;
    let mut s = TcpStream::connect(hub.addr).await?;
    assert_eq!(get_on(&mut s, "/healthz").await?.0, 200);
    let started = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
    let took = closed_by_hub(&mut s, started).await?;
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(3000),
        "a started head gets the header timeout (0.3 s), not the idle timeout (4 s); closed after {took:?}"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn half_open_connections_count_toward_the_per_ip_cap() -> Result<()> {
    let mut config = timeouts(30_000, 30_000);
    config.limits.connections_per_ip = 4;
    let hub = TestHub::with_config(config).await?;
    let host = hub.host("r").await?;
    let held = silent(hub.addr, 3).await?;
    let r = refused(&viewer_url(&hub, "r", "v"), None).await?;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error"]["code"], "rate_limited", "{r:?}");
    drop(held);
    let _v = admitted_once_released(&viewer_url(&hub, "r", "v"), None).await?;
    // The host, the viewer: two of four.
    let _more = admitted(&viewer_url(&hub, "r", "w"), None).await?;
    host.close().await;
    hub.shutdown().await
}

#[tokio::test]
async fn half_open_connections_and_sessions_count_toward_max_connections() -> Result<()> {
    let mut config = timeouts(30_000, 30_000);
    config.server.max_connections = 4;
    config.limits.connections_per_ip = 0;
    let hub = TestHub::with_config(config).await?;
    let host = hub.host("r").await?;
    let v1 = admitted(&viewer_url(&hub, "r", "v1"), None).await?;
    let held = silent(hub.addr, 2).await?;
    let r = refused(&viewer_url(&hub, "r", "v2"), None).await?;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["error"]["code"], "unavailable", "{r:?}");
    drop(held);
    let v2 = admitted_once_released(&viewer_url(&hub, "r", "v2"), None).await?;
    let _v3 = admitted(&viewer_url(&hub, "r", "v3"), None).await?;
    // Host and three viewers: full, and a WebSocket session counts like any connection.
    assert_eq!(
        refused(&viewer_url(&hub, "r", "v4"), None).await?.status,
        503
    );
    drop((v1, v2));
    let _v4 = admitted_once_released(&viewer_url(&hub, "r", "v4"), None).await?;
    host.close().await;
    hub.shutdown().await
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_ip_cap_counts_the_forwarded_client() -> Result<()> {
    let mut config = common::test_config();
    config.limits.connections_per_ip = 2;
    config.server.trusted_proxies = vec!["127.0.0.1".parse()?];
    let hub = TestHub::with_config(config).await?;
    // The proxy's own connections are not capped per IP.
    let host = hub.host("r").await?;
    let mut open = Vec::new();
    for v in ["a1", "a2"] {
        open.push(admitted(&viewer_url(&hub, "r", v), Some("203.0.113.7")).await?);
    }
    for xff in [
        "203.0.113.7",
        "198.51.100.1, 203.0.113.7",
        "203.0.113.7, 127.0.0.1",
    ] {
        let r = refused(&viewer_url(&hub, "r", "a3"), Some(xff)).await?;
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (429, &"rate_limited".into())
        );
    }
    open.push(admitted(&viewer_url(&hub, "r", "b1"), Some("203.0.113.8")).await?);
    open.push(admitted(&viewer_url(&hub, "r", "p1"), None).await?);
    open.push(admitted(&viewer_url(&hub, "r", "p2"), None).await?);
    // A client that closes a session frees its place.
    drop(open.remove(0));
    let _a3 = admitted_once_released(&viewer_url(&hub, "r", "a3"), Some("203.0.113.7")).await?;
    host.close().await;
    hub.shutdown().await
}

#[tokio::test]
async fn from_an_untrusted_peer_x_forwarded_for_is_ignored() -> Result<()> {
    let mut config = common::test_config();
    config.limits.connections_per_ip = 3;
    let hub = TestHub::with_config(config).await?;
    let host = hub.host("r").await?;
    let _v1 = admitted(&viewer_url(&hub, "r", "v1"), Some("203.0.113.1")).await?;
    let _v2 = admitted(&viewer_url(&hub, "r", "v2"), Some("203.0.113.2")).await?;
    let r = refused(&viewer_url(&hub, "r", "v3"), Some("203.0.113.3")).await?;
    assert_eq!(r.status, 429, "counted by the peer, 127.0.0.1: {r:?}");
    host.close().await;
    hub.shutdown().await
}

#[tokio::test]
async fn a_users_fourth_session_over_a_cap_of_three_gets_429() -> Result<()> {
    let mut config = common::test_config();
    config.limits.connections_per_user = 3;
    let hub = TestHub::with_config(config).await?;
    let host = hub.host("r").await?;
    let url = viewer_url(&hub, "r", "u");
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(admitted(&url, None).await?);
    }
    let r = refused(&url, None).await?;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.body["error"]["code"], "rate_limited", "{r:?}");
    assert!(r.body["error"]["message"].is_string(), "{r:?}");
    // Another token with the same `sub` is the same user.
    let again = hub.token_with(Role::Viewer, "r", "u", None);
    let r = refused(&hub.ws_url("r", &format!("token={again}")), None).await?;
    assert_eq!(r.status, 429);
    // Other users, and anonymous viewers (capped per IP only), are not affected.
    let _w = admitted(&viewer_url(&hub, "r", "w"), None).await?;
    let mut anonymous = Vec::new();
    for _ in 0..4 {
        anonymous.push(admitted(&hub.ws_url("r", ""), None).await?);
    }
    let mut first = sessions.remove(0);
    first.close(None).await?;
    drop(first);
    let _fourth = admitted_once_released(&url, None).await?;
    host.close().await;
    hub.shutdown().await
}

/// The real binary under a file limit of 256 (set by the shell it runs in, so the hub cannot
/// raise it): with `max_connections = 0` it holds its automatic cap of connections, and the
/// next one is answered 503 (so it still had a descriptor to answer with) instead of the hub
/// running out of descriptors; closing them lets it serve again.
#[tokio::test]
async fn the_automatic_connection_cap_stays_below_the_open_file_limit() -> Result<()> {
    const NOFILE: u64 = 256;
    let defaults = Config::defaults();
    assert_eq!(defaults.server.max_connections, 0, "automatic by default");
    let cap = defaults.connection_cap(NOFILE);
    assert!(cap > 0 && (cap as u64) < NOFILE, "cap {cap}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let _child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\" serve"))
        .arg(env!("CARGO_BIN_EXE_livehub"))
        .env("LIVEHUB_SERVER__BIND", addr.to_string())
        .env("LIVEHUB_SERVER__HEADER_TIMEOUT_MS", "60000")
        .env("LIVEHUB_SERVER__IDLE_CONNECTION_MS", "60000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    // The first silent connection is also the wait for the hub to listen (no HTTP request
    // before the count, so nothing else is counted).
    let deadline = tokio::time::Instant::now() + WAIT;
    let first = loop {
        match TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await; // polling for the bind
            }
            Err(e) => bail!("hub did not start: {e}"),
        }
    };
    let mut held = vec![first];
    held.extend(silent(addr, cap - 2).await?);
    // The cap-th connection is served, and stays open (keep-alive).
    let mut last = TcpStream::connect(addr).await?;
    assert_eq!(get_on(&mut last, "/healthz").await?.0, 200);
    // Full: the next one is answered 503.
    let url = format!("http://{addr}/healthz");
    let (status, body) =
        tokio::time::timeout(WAIT, livehub::http_client::request("GET", &url, None, None))
            .await
            .context("no answer: the hub ran out of file descriptors?")??;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(body["error"]["code"], "unavailable");
    drop((held, last));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) =
            tokio::time::timeout(WAIT, livehub::http_client::request("GET", &url, None, None))
                .await
                .context("no answer")??;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await; // polling for the hub to count them out
    }
    Ok(())
}
