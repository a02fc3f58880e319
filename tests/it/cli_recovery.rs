//! The `livehub` binary riding out what goes away: `host watch` across a hub restart (real hub
//! processes, SIGTERM, a second hub on the same port continuing the room from the state file),
//! and `serve` started while its Redis is down (a real redis-server started later on that port).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::{TestHub, WAIT};
use livehub::protocol::Role;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_livehub");
const SECRET: &str = "recovery-secret-0123456789";

/// A port for a redis-server started later or restarted: outside the ephemeral range
/// ([`common::redis::stable_port`]), since the hub keeps connecting to it meanwhile.
fn free_port() -> Result<u16> {
    common::redis::stable_port(0)
}

/// A fresh, empty directory for one test's files.
fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("livehub-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A `livehub serve` process on a port the test chose (so a second one can take its place).
struct Hub {
    child: tokio::process::Child,
}

impl Hub {
    /// Starts `livehub serve` on 127.0.0.1:`port` with `env` and waits until `/healthz`
    /// answers.
    async fn serve(port: u16, env: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("serve")
            .env("LIVEHUB_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("LIVEHUB_LIMITS__CONNECTIONS_PER_IP", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut hub = Hub {
            child: cmd.spawn()?,
        };
        let url = format!("http://127.0.0.1:{port}/healthz");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok((200, _)) = livehub::http_client::request("GET", &url, None, None).await {
                return Ok(hub);
            }
            if let Some(status) = hub.child.try_wait()? {
                bail!("livehub serve exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // polling for the process to bind
        }
        bail!("livehub serve did not answer /healthz")
    }

    /// SIGTERM (a graceful stop: viewers get 1001, the state file is written); waits for it.
    async fn terminate(mut self) -> Result<()> {
        let pid = self.child.id().context("hub already gone")?;
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        let status = tokio::time::timeout(WAIT, self.child.wait()).await??;
        anyhow::ensure!(status.success(), "hub exited with {status}");
        Ok(())
    }
}

/// The lines a child writes on one stream, as they come.
struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Lines {
    fn of(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line that satisfies `pred` (the ones before it are kept in `seen`).
    async fn next_matching(&mut self, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .with_context(|| format!("timed out; lines so far: {:?}", self.seen))?
                .with_context(|| format!("stream ended; lines so far: {:?}", self.seen))?;
            self.seen.push(line.clone());
            if pred(&line) {
                return Ok(line);
            }
        }
    }
}

/// Runs `livehub host --url URL --room show --token TOKEN ARGS` and returns its stdout, failing
/// on a non-zero exit.
async fn host(url: &str, token: &str, args: &[&str]) -> Result<String> {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(BIN)
            .args(["host", "--url", url, "--room", "show", "--token", token])
            .args(args)
            .output(),
    )
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "livehub host {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// Lines `watch` prints for the room's state and durable events (not the viewer counts).
fn is_event(line: &str) -> bool {
    line.starts_with('#') || line.starts_with("welcome")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rides_out_a_hub_restart_and_resumes_after_its_last_seq() -> Result<()> {
    let dir = scratch_dir("watch")?;
    let state = dir.join("rooms.json");
    let state = state.to_str().context("path")?;
    let env = [
        ("LIVEHUB_AUTH__SECRET", SECRET),
        ("LIVEHUB_SERVER__STATE_FILE", state),
    ];
    let port = free_port()?;
    let url = format!("ws://127.0.0.1:{port}");
    let token = common::mint(SECRET, Role::Host, "show", "creator");
    let first = Hub::serve(port, &env).await?;

    let mut watch = tokio::process::Command::new(BIN)
        .args([
            "host", "--url", &url, "--room", "show", "--token", &token, "watch",
        ])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut out = Lines::of(watch.stdout.take().context("stdout")?);
    let mut err = Lines::of(watch.stderr.take().context("stderr")?);
    assert_eq!(
        out.next_matching(is_event).await?,
        "welcome room=show seq=0 viewers=0 likes=0 pinned=- deals=0"
    );
    assert_eq!(
        host(&url, &token, &["announce", "one"]).await?,
        "ok seq=1\n"
    );
    assert_eq!(
        host(&url, &token, &["announce", "two"]).await?,
        "ok seq=2\n"
    );
    assert_eq!(out.next_matching(is_event).await?, "#1 announcement: one");
    assert_eq!(out.next_matching(is_event).await?, "#2 announcement: two");

    first.terminate().await?;
    assert_eq!(
        err.next_matching(|_| true).await?,
        "hub closed the connection (1001 going away); reconnecting…"
    );
    // the same port, the rooms from the state file: the room's seq continues
    let second = Hub::serve(port, &env).await?;
    err.next_matching(|l| l == "resumed at seq 2").await?;
    assert_eq!(
        host(&url, &token, &["announce", "three"]).await?,
        "ok seq=3\n"
    );
    assert_eq!(
        out.next_matching(is_event).await?,
        "#3 announcement: three",
        "no second welcome, nothing repeated"
    );
    assert!(watch.try_wait()?.is_none(), "watch is still running");
    // Between the close and the resume, at most one line about the hub being unreachable.
    let between: Vec<&String> = err
        .seen
        .iter()
        .filter(|l| l.starts_with("cannot reach"))
        .collect();
    assert!(between.len() <= 1, "{:?}", err.seen);
    for line in between {
        assert_eq!(
            line,
            &format!("cannot reach the hub at {url}: connection refused; retrying…")
        );
    }
    for line in &err.seen {
        for dump in ["Some(", "CloseFrame", "Error", "backtrace"] {
            assert!(!line.contains(dump), "{dump:?} in {line:?}");
        }
    }
    second.terminate().await?;
    err.next_matching(|l| l.starts_with("hub closed the connection (1001"))
        .await?;
    assert!(watch.try_wait()?.is_none(), "still waiting for the hub");
    watch.start_kill()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_gives_up_on_a_token_the_hub_refuses_with_its_reason() -> Result<()> {
    let hub = TestHub::start().await?;
    let expired = hub.token_with(
        Role::Host,
        "show",
        "creator",
        Some(livehub::hub::now_ms() / 1000 - 120),
    );
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(BIN)
            .args(["host", "--url", &format!("ws://{}", hub.addr)])
            .args(["--room", "show", "--token", &expired, "watch"])
            .env("RUST_BACKTRACE", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("watch kept retrying a token retrying cannot fix")??;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr)?,
        "unauthorized: token expired\n"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn the_first_command_after_redis_returns_is_answered_not_refused_by_a_left_over_connection()
-> Result<()> {
    use livehub::redis_io::{RedisIo, RedisTarget};
    let dir = scratch_dir("left-over")?;
    let port = free_port()?;
    let url = format!("redis://127.0.0.1:{port}");
    let io = RedisIo::connect(RedisTarget::Single(url.clone()), Duration::from_secs(2)).await?;
    let ping = |io: RedisIo| async move {
        io.exec(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
    };
    assert!(ping(io.clone()).await.is_err(), "Redis is not there yet");
    // That failure started a reconnection attempt in the background (two retries, 50 ms to 1 s
    // apart); Redis stays away until it has given up too, as in an outage of any length. The
    // attempt's end is not observable from outside, so this is a span of time, not a wait.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _redis = Redis::start_on(port, &dir)?;
    // Another of the hub's connections (the stock's, a new one) sees Redis back first; the one
    // left from the outage is asked only then.
    let other = io.another().await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while ping(other.clone()).await.is_err() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling a starting redis-server
    }
    assert_eq!(ping(io.clone()).await?, "PONG");
    Ok(())
}

/// A redis-server the test starts itself on a port it chose, stopped when dropped.
struct Redis {
    child: std::process::Child,
    dir: PathBuf,
}

impl Redis {
    fn start_on(port: u16, dir: &Path) -> Result<Self> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (sudo apt-get install -y redis-server)")?;
        Ok(Redis {
            child,
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The log's warnings and errors.
fn warnings(log: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(log)?
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_owned)
        .collect())
}

/// Polls `log` until a line contains `text`.
async fn log_line(log: &Path, text: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = std::fs::read_to_string(log)?
            .lines()
            .find(|l| l.contains(text))
            .map(str::to_owned);
        if let Some(line) = found {
            return Ok(line);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no {text:?} in the log:\n{}", std::fs::read_to_string(log)?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the hub's log file
    }
}

async fn readyz(addr: std::net::SocketAddr) -> Result<u16> {
    let url = format!("http://{addr}/readyz");
    Ok(livehub::http_client::request("GET", &url, None, None)
        .await?
        .0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_with_redis_down_logs_one_line_naming_it_and_recovers_when_it_starts()
-> Result<()> {
    let dir = scratch_dir("redis")?;
    let redis_port = free_port()?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    // A production-like start: no development-settings warnings to tell apart from Redis's.
    let env = [
        ("LIVEHUB_INVENTORY__BACKEND", "redis".to_owned()),
        ("LIVEHUB_REDIS__URL", redis_url.clone()),
        ("LIVEHUB_AUTH__SECRET", SECRET.to_owned()),
        ("LIVEHUB_PAGES__DEV_TOKENS", "false".to_owned()),
        ("LIVEHUB_AUTH__ALLOW_ANONYMOUS", "false".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let log = dir.join("hub.log");
    let hub = common::HubProcess::start_with_log(&env, Some(&log)).await?;
    let url = format!("ws://{}", hub.addr);
    let token = common::mint(SECRET, Role::Host, "show", "creator");
    assert_eq!(readyz(hub.addr).await?, 503, "Redis is down");
    // A host trying to open the show meanwhile is told why it cannot.
    let out = tokio::process::Command::new(BIN)
        .args(["host", "--url", &url, "--room", "show", "--token", &token])
        .args(["announce", "hello?"])
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8(out.stderr)?;
    assert!(said.starts_with("unavailable: "), "{said}");

    // Longer than the window after which repeated warnings used to be logged again: the hold
    // sweeper alone fails four times a second.
    tokio::time::sleep(livehub::quiet::WINDOW + Duration::from_secs(2)).await; // a span with nothing to wait for: only silence to observe
    let warned = warnings(&log)?;
    assert_eq!(warned.len(), 1, "one line for the outage: {warned:#?}");
    assert!(
        warned[0].ends_with(&format!(
            "cannot reach Redis at {redis_url}: connection refused; retrying"
        )),
        "{warned:#?}"
    );

    // Redis comes up on that port: the hub finds it by itself and the show can start.
    std::fs::create_dir_all(dir.join("redis"))?;
    let redis = Redis::start_on(redis_port, &dir.join("redis"))?;
    let back = log_line(&log, &format!("Redis at {redis_url} reachable again after")).await?;
    assert!(back.contains(" INFO "), "{back}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while readyz(hub.addr).await? != 200 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "/readyz stayed 503");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling /readyz
    }
    assert_eq!(
        host(&url, &token, &["announce", "we are live"]).await?,
        "ok seq=1\n"
    );
    assert_eq!(warnings(&log)?.len(), 1, "{:#?}", warnings(&log)?);
    hub.terminate().await?;

    // A hub started while Redis answers says so.
    let log = dir.join("hub2.log");
    let hub = common::HubProcess::start_with_log(&env, Some(&log)).await?;
    let ready = log_line(&log, &format!("Redis at {redis_url} ready")).await?;
    assert!(ready.contains(" INFO "), "{ready}");
    assert_eq!(warnings(&log)?, Vec::<String>::new());
    hub.terminate().await?;
    drop(redis);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
