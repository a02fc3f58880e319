//! Shared helpers for integration tests: a real hub on an ephemeral port, real WebSocket
//! clients, token minting and REST calls. Waits use generous timeouts that only catch hangs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use livehub::auth::{Authenticator, Claims};
use livehub::config::Config;
use livehub::protocol::{Role, ServerMsg};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// A hub running in this test process.
pub struct TestHub {
    pub addr: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The defaults, tuned for tests: generous viewer frame rates so a test can drive traffic.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.auth.secret = "test-secret-0123456789".into();
    c.limits.viewer_frames_per_sec = 1000.0;
    c.limits.viewer_frames_burst = 1000.0;
    c.limits.rest_commands_per_sec = 100_000.0;
    c.limits.rest_commands_burst = 100_000.0;
    // Every test client connects from 127.0.0.1; tests/it/limits.rs checks the per-IP cap itself.
    c.limits.connections_per_ip = 0;
    c
}

impl TestHub {
    /// Starts a hub with the test defaults.
    pub async fn start() -> Result<Self> {
        Self::with_config(test_config()).await
    }

    /// Starts a hub with `config` on 127.0.0.1 and an ephemeral port.
    pub async fn with_config(config: Config) -> Result<Self> {
        Self::at("127.0.0.1:0".parse()?, config).await
    }

    /// Asks the hub to shut down (viewers get 1001) and waits for it.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await??;
        }
        Ok(())
    }

    /// A token signed with this hub's secret.
    pub fn token(&self, role: Role, room: &str, sub: &str) -> String {
        self.token_with(role, room, sub, Some(livehub::hub::now_ms() / 1000 + 3600))
    }

    /// A token with an explicit `exp` (Unix seconds) or none.
    pub fn token_with(&self, role: Role, room: &str, sub: &str, exp: Option<u64>) -> String {
        Authenticator::new(&self.config.auth.secret, false)
            .mint(&Claims {
                sub: sub.into(),
                name: Some(format!("Name {sub}")),
                role,
                room: room.into(),
                exp,
                src: None,
                aff: None,
            })
            .expect("mint")
    }

    /// `ws://…/ws/rooms/{room}` plus a query string (without `?`).
    pub fn ws_url(&self, room: &str, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/ws/rooms/{room}", self.addr)
        } else {
            format!("ws://{}/ws/rooms/{room}?{query}", self.addr)
        }
    }

    /// `http://…{path}`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Opens `room` as its host would (a host connection that joins and leaves), so viewers
    /// can join it: a room nobody opened answers viewers `not_live`.
    pub async fn open_room(&self, room: &str) -> Result<()> {
        self.host(room).await?.close().await;
        Ok(())
    }

    /// Connects a viewer with a fresh token and reads its `welcome` (opening the room first,
    /// as its host would, when it is `not_live`).
    pub async fn viewer(&self, room: &str, user: &str) -> Result<(Client, ServerMsg)> {
        let token = self.token(Role::Viewer, room, user);
        let url = self.ws_url(room, &format!("token={token}"));
        let mut c = Client::connect(&url).await?;
        let mut first = c.next().await?;
        if first.kind() == "not_live" {
            self.open_room(room).await?;
            c = Client::connect(&url).await?;
            first = c.next().await?;
        }
        anyhow::ensure!(first.kind() == "welcome", "expected welcome, got {first:?}");
        Ok((c, first))
    }

    /// Connects the room's host and reads its `welcome`.
    pub async fn host(&self, room: &str) -> Result<Client> {
        let token = self.token(Role::Host, room, "host");
        let mut c = Client::connect(&self.ws_url(room, &format!("token={token}"))).await?;
        c.next_of("welcome").await?;
        Ok(c)
    }

    /// POSTs a host command; returns the status and JSON body.
    pub async fn post_command(
        &self,
        room: &str,
        token: Option<&str>,
        body: &str,
    ) -> Result<(u16, serde_json::Value)> {
        let url = self.http_url(&format!("/api/rooms/{room}/commands"));
        let (status, text) =
            livehub::http_client::request("POST", &url, token, Some(body.to_owned())).await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// GETs a path; returns the status and body text.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, String)> {
        Ok(livehub::http_client::request("GET", &self.http_url(path), token, None).await?)
    }

    /// The stock audit of a deal, read with a host token.
    pub async fn audit(&self, room: &str, deal: &str) -> Result<livehub::inventory::Audit> {
        let token = self.token(Role::Host, room, "auditor");
        let (status, body) = self
            .get(&format!("/api/rooms/{room}/deals/{deal}"), Some(&token))
            .await?;
        if status != 200 {
            bail!("audit: HTTP {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The HTTP status of a refused WebSocket upgrade, or 101 when it was accepted.
pub async fn upgrade_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected connect error: {e}"),
    }
}

/// A real WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages read while waiting for something else, in order.
    pub seen: Vec<ServerMsg>,
}

/// How a connection ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Client {
    /// Connects (the upgrade must succeed).
    pub async fn connect(url: &str) -> Result<Self> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("connect timed out")??;
        Ok(Client {
            ws,
            seen: Vec::new(),
        })
    }

    /// Connects through a socket with `rcvbuf` bytes of receive buffer: a viewer on a slow link,
    /// whose frames back up in the hub while the test does not read.
    pub async fn connect_slow(url: &str, rcvbuf: u32) -> Result<Self> {
        let addr: SocketAddr = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .context("ws:// URL")?
            .parse()?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(rcvbuf)?;
        let stream = socket.connect(addr).await?;
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .context("connect timed out")??;
        Ok(Client {
            ws,
            seen: Vec::new(),
        })
    }

    /// Sends a JSON value as a text frame.
    pub async fn send(&mut self, v: serde_json::Value) -> Result<()> {
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, s: &str) -> Result<()> {
        self.ws.send(Message::text(s.to_owned())).await?;
        Ok(())
    }

    /// Sends a raw frame.
    pub async fn send_frame(&mut self, m: Message) -> Result<()> {
        self.ws.send(m).await?;
        Ok(())
    }

    /// The next server message, parsed.
    pub async fn next(&mut self) -> Result<ServerMsg> {
        self.next_within(WAIT).await
    }

    /// The next server message within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Result<ServerMsg> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .context("timed out waiting for a message")?
                .ok_or_else(|| anyhow!("connection ended"))??;
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str(t.as_str())
                        .with_context(|| format!("unparseable server message {}", t.as_str()));
                }
                Message::Close(f) => bail!("closed: {f:?}"),
                _ => {}
            }
        }
    }

    /// The next raw JSON text frame.
    pub async fn next_json(&mut self) -> Result<serde_json::Value> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("timed out waiting for a message")?
                .ok_or_else(|| anyhow!("connection ended"))??;
            match msg {
                Message::Text(t) => return Ok(serde_json::from_str(t.as_str())?),
                Message::Close(f) => bail!("closed: {f:?}"),
                _ => {}
            }
        }
    }

    /// Reads until a message of `kind` arrives; the ones skipped are kept in `seen`.
    pub async fn next_of(&mut self, kind: &str) -> Result<ServerMsg> {
        self.next_matching(|m| m.kind() == kind)
            .await
            .with_context(|| format!("waiting for {kind}"))
    }

    /// A message already read (and skipped) that satisfies `pred`, else the next one that does.
    pub async fn saw_or_next(&mut self, pred: impl Fn(&ServerMsg) -> bool) -> Result<ServerMsg> {
        if let Some(i) = self.seen.iter().position(&pred) {
            return Ok(self.seen.remove(i));
        }
        self.next_matching(pred).await
    }

    /// Reads until `pred` holds; the ones skipped are kept in `seen`.
    pub async fn next_matching(&mut self, pred: impl Fn(&ServerMsg) -> bool) -> Result<ServerMsg> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next_within(left).await?;
            if pred(&m) {
                return Ok(m);
            }
            self.seen.push(m);
        }
    }

    /// Reads frames until the server closes; returns the close code.
    pub async fn closed(&mut self) -> Result<Ended> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => bail!("timed out waiting for close"),
                Ok(None) => return Ok(Ended::Dropped),
                Ok(Some(Err(_))) => return Ok(Ended::Dropped),
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Ok(Ended::Closed(f.map(|f: CloseFrame| u16::from(f.code))));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The durable `seq` of every message in `msgs` that has one.
pub fn seqs(msgs: &[ServerMsg]) -> Vec<u64> {
    msgs.iter().filter_map(ServerMsg::seq).collect()
}

/// Asserts `seqs` run from `first` upward by exactly one.
pub fn assert_contiguous(seqs: &[u64], first: u64) {
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, first + i as u64, "gap or repeat at index {i}: {seqs:?}");
    }
}

impl Client {
    /// Reads raw JSON frames until one has `"type": kind`.
    pub async fn json_of(&mut self, kind: &str) -> Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = tokio::time::timeout_at(deadline, self.next_json())
                .await
                .with_context(|| format!("timed out waiting for {kind}"))??;
            if v["type"] == kind {
                return Ok(v);
            }
        }
    }
}

/// The sorted keys of a JSON object.
pub fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Asserts a JSON object has exactly these keys.
pub fn assert_keys(v: &serde_json::Value, expected: &[&str]) {
    let mut e: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    e.sort();
    assert_eq!(keys(v), e, "fields of {v}");
}

/// A WebSocket client on a raw socket with a small receive buffer that does the handshake and
/// then reads nothing until asked: a viewer that stopped reading.
pub struct RawClient {
    stream: tokio::net::TcpStream,
}

/// Opens a raw WebSocket connection with `rcvbuf` bytes of receive buffer.
pub async fn raw_ws_client(addr: SocketAddr, path: &str, rcvbuf: u32) -> Result<RawClient> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(rcvbuf)?;
    let mut stream = socket.connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    // Read the response head only.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    if !head.starts_with("HTTP/1.1 101") {
        bail!("upgrade refused: {head}");
    }
    Ok(RawClient { stream })
}

impl RawClient {
    /// Reads every frame until the server's close frame; returns its code (None if the socket
    /// ended without one).
    pub async fn read_close_code(mut self) -> Result<Option<u16>> {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Parse complete frames from the front of buf.
            loop {
                if buf.len() < 2 {
                    break;
                }
                let opcode = buf[0] & 0x0f;
                let len7 = (buf[1] & 0x7f) as usize;
                let (len, hdr) = match len7 {
                    126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                    127 if buf.len() >= 10 => {
                        (u64::from_be_bytes(buf[2..10].try_into()?) as usize, 10)
                    }
                    126 | 127 => break,
                    n => (n, 2),
                };
                if buf.len() < hdr + len {
                    break;
                }
                if opcode == 0x8 {
                    let payload = &buf[hdr..hdr + len];
                    return Ok(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
                    );
                }
                buf.drain(..hdr + len);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .context("timed out reading the slow socket")??;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

pub mod bus_conformance;

pub mod conformance;

pub mod nodes;

pub mod payments;

pub mod receiver;

pub mod redis;

/// A test configuration with the Redis backend at `url`.
pub fn redis_config(url: &str) -> Config {
    let mut c = test_config();
    c.inventory.backend = livehub::config::InventoryBackend::Redis;
    c.redis.url = url.to_owned();
    c
}

/// A `livehub serve` child process on a free port, killed when dropped.
pub struct HubProcess {
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

impl HubProcess {
    /// Starts the real binary with `env` overrides and waits until `/healthz` answers.
    pub async fn start(env: &[(&str, String)]) -> Result<Self> {
        Self::start_with_log(env, None).await
    }

    /// Like [`HubProcess::start`], with the hub's stderr (its log) written to `log`.
    pub async fn start_with_log(
        env: &[(&str, String)],
        log: Option<&std::path::Path>,
    ) -> Result<Self> {
        Self::start_with_file(env, None, log).await
    }

    /// Like [`HubProcess::start_with_log`], reading `config` (`livehub serve --config`) too:
    /// for what the environment cannot say (a list of tables such as `[[webhooks.endpoints]]`).
    pub async fn start_with_file(
        env: &[(&str, String)],
        config: Option<&std::path::Path>,
        log: Option<&std::path::Path>,
    ) -> Result<Self> {
        let stderr = match log {
            Some(path) => std::process::Stdio::from(std::fs::File::create(path)?),
            None => std::process::Stdio::null(),
        };
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_livehub"));
        cmd.arg("serve");
        if let Some(file) = config {
            cmd.arg("--config").arg(file);
        }
        // Port 0 unless the test names an address (a restart on the same one): the process binds
        // a free port itself and says which on its first line. A port picked here and bound by
        // the child later could be taken in between by another test's hub, whose /healthz would
        // then answer for this one.
        cmd.env("LIVEHUB_SERVER__BIND", "127.0.0.1:0")
            // Every test client connects from 127.0.0.1.
            .env("LIVEHUB_LIMITS__CONNECTIONS_PER_IP", "0")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().context("the hub's stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let listening = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(at) = line.strip_prefix("livehub is listening on http://") {
                    return Ok::<_, anyhow::Error>(Some(at.trim().parse::<SocketAddr>()?));
                }
            }
            Ok(None)
        })
        .await;
        let addr = match listening {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => bail!(
                "hub process exited before listening: {:?}",
                child.wait().await
            ),
            Ok(Err(e)) => bail!("hub process: {e}"),
            Err(_) => bail!("hub process did not say where it listens within {WAIT:?}"),
        };
        // The rest of its stdout is read and dropped, so the process never blocks on the pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let hub = HubProcess { addr, child };
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok((200, _)) =
                livehub::http_client::request("GET", &format!("http://{addr}/healthz"), None, None)
                    .await
            {
                return Ok(hub);
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // polling for the process to serve
        }
        bail!("hub process did not start")
    }

    /// `ws://…/ws/rooms/{room}?token=…`.
    pub fn ws_url(&self, room: &str, token: &str) -> String {
        format!("ws://{}/ws/rooms/{room}?token={token}", self.addr)
    }

    /// Stops the process with SIGKILL (`kill -9`): nothing is saved, nothing drained.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops the process with SIGTERM (a graceful stop) and waits for it to exit.
    pub async fn terminate(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        tokio::time::timeout(WAIT, self.child.wait()).await??;
        Ok(())
    }
}

/// Mints a token with `secret`.
pub fn mint(secret: &str, role: Role, room: &str, sub: &str) -> String {
    mint_attributed(secret, role, room, sub, None, None)
}

/// Mints a token with `secret` and the funnel's attribution claims `src` and `aff`.
pub fn mint_attributed(
    secret: &str,
    role: Role,
    room: &str,
    sub: &str,
    src: Option<&str>,
    aff: Option<&str>,
) -> String {
    Authenticator::new(secret, false)
        .mint(&Claims {
            sub: sub.into(),
            name: None,
            role,
            room: room.into(),
            exp: Some(livehub::hub::now_ms() / 1000 + 3600),
            src: src.map(str::to_owned),
            aff: aff.map(str::to_owned),
        })
        .expect("mint")
}

pub mod webdriver;

impl TestHub {
    /// Starts a hub with `config` on `addr` (port 0 for any free port; a fixed one to restart a
    /// hub where it was).
    pub async fn at(addr: SocketAddr, config: Config) -> Result<Self> {
        Self::serve(addr, config, None).await
    }

    /// Starts a hub with `config` whose inventory is `inventory` (which the test keeps too).
    pub async fn with_inventory(
        config: Config,
        inventory: std::sync::Arc<dyn livehub::inventory::Inventory>,
    ) -> Result<Self> {
        let backends = livehub::server::Backends::local(inventory, &config);
        Self::serve("127.0.0.1:0".parse()?, config, Some(backends)).await
    }

    async fn serve(
        addr: SocketAddr,
        config: Config,
        backends: Option<livehub::server::Backends>,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let cfg = config.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let served = match backends {
                Some(b) => livehub::server::run_with(listener, cfg, b, shutdown).await,
                None => livehub::server::run(listener, cfg, shutdown).await,
            };
            if let Err(e) = served {
                eprintln!("hub stopped with error: {e}");
            }
        });
        Ok(TestHub {
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
        })
    }
}
