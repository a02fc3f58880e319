//! `surge`: the show-start surge and a hub restart. N viewers connect to one room at once (time
//! to all connected, failures); a host posts an announcement every so often; then the hub is
//! restarted from outside (see scripts/bench-surge.sh) and every viewer reconnects with
//! `?since=` its last seq, as a real client does after a 1001. Measured: time from the first
//! disconnect to each viewer's resumed `welcome`, resumes the hub refused, and every seq each
//! viewer saw (gaps, duplicates, and whether it reached the host's last acknowledged seq).
//!
//! `--ready-file` is created once every viewer is connected and events flow: the moment to
//! restart the hub. Without a restart within `--restart-wait-secs` the run fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::{ClientMsg, Id, Role};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::hist::Hist;
use crate::wsraw::{Frame, RawWs, number_after};

#[derive(Debug, Args)]
pub struct SurgeArgs {
    /// Hub base URL: ws://HOST:PORT (http://HOST:PORT is taken as ws://).
    #[arg(long, default_value = "ws://127.0.0.1:8080", value_parser = crate::hub_url::parse)]
    url: String,
    #[arg(long, default_value = "surge")]
    room: String,
    #[arg(long, default_value_t = 10_000)]
    viewers: usize,
    /// Connection attempts in flight at once (first connects and reconnects).
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// SLO: every viewer connected within this many seconds of the start.
    #[arg(long, default_value_t = 5.0)]
    connect_within_secs: f64,
    /// SLO: every viewer resumed within this many seconds of the first disconnect.
    #[arg(long, default_value_t = 10.0)]
    resume_within_secs: f64,
    /// Announcements per second from the host.
    #[arg(long, default_value_t = 5.0)]
    events_per_sec: f64,
    /// Created once all viewers are connected: restart the hub then.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// How long to wait for the restart (the first disconnect) after the ready file.
    #[arg(long, default_value_t = 60.0)]
    restart_wait_secs: f64,
    /// Seconds of events after every viewer resumed (or the resume deadline passed).
    #[arg(long, default_value_t = 3.0)]
    after_secs: f64,
    /// The hub's token secret (auth.secret), for the host's token.
    #[arg(long, env = "LIVEHUB_AUTH__SECRET", default_value = livehub::config::DEV_SECRET)]
    secret: String,
    /// Write the result as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The outcome of a surge run.
#[derive(Debug, Serialize)]
pub struct SurgeResult {
    pub viewers: usize,
    pub connected: u64,
    pub connect_failed: u64,
    /// The failed first connects by reason.
    pub connect_failures: std::collections::BTreeMap<String, u64>,
    pub all_connected_secs: Option<f64>,
    pub restarted: bool,
    pub disconnected: u64,
    pub resumed: u64,
    pub resume_refused: u64,
    pub all_resumed_secs: Option<f64>,
    pub resume_p50_ms: f64,
    pub resume_p99_ms: f64,
    pub resume_max_ms: f64,
    pub events_acked: u64,
    pub last_acked_seq: u64,
    pub gaps: u64,
    pub duplicates: u64,
    /// Viewers whose last seen seq is below the host's last acknowledged seq at the end.
    pub behind_at_end: u64,
    pub slo_missed: Vec<String>,
}

struct Shared {
    start: Instant,
    gate: Semaphore,
    connected: AtomicU64,
    connect_failed: AtomicU64,
    connect_failures: crate::failures::Failures,
    last_connect_us: AtomicU64,
    /// When the first viewer lost its connection (µs since start, 0 = not yet).
    first_disconnect_us: AtomicU64,
    disconnected: AtomicU64,
    resumed: AtomicU64,
    resume_refused: AtomicU64,
    last_resume_us: AtomicU64,
    resume_hist: Mutex<Hist>,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    /// Each viewer's highest seq seen.
    last_seq: Vec<AtomicU64>,
    /// Each viewer's disconnected-and-not-yet-resumed state.
    away: Vec<AtomicBool>,
    host_last_seq: AtomicU64,
    host_acked: AtomicU64,
}

impl Shared {
    fn new(viewers: usize, concurrency: usize) -> Self {
        Shared {
            start: Instant::now(),
            gate: Semaphore::new(concurrency.max(1)),
            connected: AtomicU64::new(0),
            connect_failed: AtomicU64::new(0),
            connect_failures: crate::failures::Failures::default(),
            last_connect_us: AtomicU64::new(0),
            first_disconnect_us: AtomicU64::new(0),
            disconnected: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            resume_refused: AtomicU64::new(0),
            last_resume_us: AtomicU64::new(0),
            resume_hist: Mutex::new(Hist::default()),
            gaps: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            last_seq: (0..viewers).map(|_| AtomicU64::new(0)).collect(),
            away: (0..viewers).map(|_| AtomicBool::new(false)).collect(),
            host_last_seq: AtomicU64::new(0),
            host_acked: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// Durable events carry `"seq"` right after their type; `ack` carries one too but viewers here
/// send nothing, so they never get one.
fn event_seq(frame: &[u8]) -> Option<u64> {
    if frame.starts_with(br#"{"type":"welcome""#) {
        return None;
    }
    number_after(frame, br#""seq":"#)
}

/// Viewer `i`'s welcome: a first join sets its position; a rejoin (`rejoining`, away since
/// `away_since_us`) counts as resumed or refused and records how long it was away.
fn on_welcome(shared: &Shared, i: usize, rejoining: bool, away_since_us: u64, p: &[u8]) {
    let welcome_seq = number_after(p, br#""seq":"#).unwrap_or(0);
    if !rejoining {
        shared.last_seq[i].store(welcome_seq, Relaxed);
        shared.connected.fetch_add(1, Relaxed);
        shared.last_connect_us.fetch_max(shared.now_us(), Relaxed);
        return;
    }
    let now = shared.now_us();
    if memchr::memmem::find(p, br#""resumed":true"#).is_some() {
        shared.resumed.fetch_add(1, Relaxed);
    } else {
        shared.resume_refused.fetch_add(1, Relaxed);
        shared.last_seq[i].fetch_max(welcome_seq, Relaxed);
    }
    shared.away[i].store(false, Relaxed);
    shared
        .resume_hist
        .lock()
        .record(now.saturating_sub(away_since_us));
    shared.last_resume_us.fetch_max(now, Relaxed);
}

/// Any later frame of viewer `i`: a durable event's seq counts a gap or a duplicate.
fn on_event(shared: &Shared, i: usize, p: &[u8]) {
    if let Some(seq) = event_seq(p) {
        let last = shared.last_seq[i].load(Relaxed);
        if seq > last + 1 {
            shared.gaps.fetch_add(seq - last - 1, Relaxed);
        } else if seq <= last {
            shared.duplicates.fetch_add(1, Relaxed);
        }
        shared.last_seq[i].fetch_max(seq, Relaxed);
    }
}

/// Viewer `i`: joins, reads until the connection is lost, and rejoins with `?since=` its last
/// seq, for ever (the run aborts it).
async fn viewer(shared: Arc<Shared>, i: usize, url: String) {
    let mut since: Option<u64> = None;
    let mut away_since_us = 0u64;
    loop {
        let target = match since {
            None => url.clone(),
            Some(s) => format!("{url}?since={s}"),
        };
        let ws = {
            let _permit = shared.gate.acquire().await;
            RawWs::connect(&target).await
        };
        let mut ws = match ws {
            Ok(ws) => ws,
            Err(e) => {
                if since.is_none() {
                    shared.connect_failed.fetch_add(1, Relaxed);
                    shared.connect_failures.note(crate::failures::reason(&e));
                }
                // A real client backs off with jitter; 100–300 ms keeps 10,000 retries from
                // arriving in lockstep.
                let jitter = (i as u64 * 7919) % 200;
                tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
                continue;
            }
        };
        let mut first_frame = true;
        loop {
            let mut closed = false;
            let r = ws
                .next_frames(|f| match f {
                    Frame::Close(_) => closed = true,
                    Frame::Data(p) if first_frame => {
                        first_frame = false;
                        on_welcome(&shared, i, since.is_some(), away_since_us, p);
                    }
                    Frame::Data(p) => on_event(&shared, i, p),
                })
                .await;
            if closed || !matches!(r, Ok(true)) {
                break;
            }
        }
        // Lost the connection: resume after the last seq seen.
        let now = shared.now_us();
        let _ = shared
            .first_disconnect_us
            .compare_exchange(0, now.max(1), Relaxed, Relaxed);
        if !first_frame {
            shared.disconnected.fetch_add(1, Relaxed);
            shared.away[i].store(true, Relaxed);
            away_since_us = now;
        }
        since = Some(shared.last_seq[i].load(Relaxed));
    }
}

async fn host(shared: Arc<Shared>, url: String, every: Duration) {
    let mut n = 0u64;
    loop {
        let Ok(ws) = crate::stats::connect(&url).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (mut tx, mut rx) = ws.split();
        let acks = Arc::clone(&shared);
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                if let Message::Text(t) = msg
                    && t.as_bytes().starts_with(br#"{"type":"ack""#)
                    && let Some(seq) = number_after(t.as_bytes(), br#""seq":"#)
                {
                    acks.host_last_seq.fetch_max(seq, Relaxed);
                    acks.host_acked.fetch_add(1, Relaxed);
                }
            }
        });
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            n += 1;
            let announce = ClientMsg::Announce {
                text: format!("surge event {n}"),
                request_id: Id::new(format!("a{n}")).ok(),
            };
            let Ok(frame) = serde_json::to_string(&announce) else {
                break;
            };
            if tx.send(Message::text(frame)).await.is_err() || reader.is_finished() {
                break;
            }
        }
        reader.abort();
    }
}

/// Connects `--viewers`, has the host announce events, waits for the hub to go away and every
/// viewer to resume, and says whether the SLOs held (also printed, and written to `--json`).
pub async fn run(a: SurgeArgs) -> anyhow::Result<bool> {
    let base = a.url.trim_end_matches('/').to_owned();
    let room = format!("{}-{}", a.room, livehub::clock::now_ms() % 1_000_000);
    let viewer_url = format!("{base}/ws/rooms/{room}");
    let token = Authenticator::new(&a.secret, false).mint(&Claims {
        sub: "surge-host".into(),
        name: None,
        role: Role::Host,
        room: room.clone(),
        exp: Some(livehub::clock::now_ms() / 1000 + 3600),
        src: None,
        aff: None,
    })?;
    let host_url = format!("{viewer_url}?token={token}");
    crate::stats::open_room(&base, &room, &Authenticator::new(&a.secret, false)).await?;
    let shared = Arc::new(Shared::new(a.viewers, a.concurrency));
    let mut tasks: Vec<_> = (0..a.viewers)
        .map(|i| tokio::spawn(viewer(Arc::clone(&shared), i, viewer_url.clone())))
        .collect();
    let (connected, all_connected_secs) = await_connections(&shared, &a).await;
    let every = Duration::from_secs_f64(1.0 / a.events_per_sec.max(0.1));
    tasks.push(tokio::spawn(host(Arc::clone(&shared), host_url, every)));
    // Let events flow before the restart.
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(path) = &a.ready_file {
        std::fs::write(path, b"ready\n")?;
        eprintln!("ready: restart the hub now");
    }
    let (restarted, all_resumed_secs) = await_restart(&shared, &a).await;
    tokio::time::sleep(Duration::from_secs_f64(a.after_secs)).await;
    // Stop the host, then give its last events time to arrive everywhere.
    if let Some(h) = tasks.pop() {
        h.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut r = result(&shared, &a, connected, all_connected_secs, restarted);
    r.all_resumed_secs = all_resumed_secs;
    for t in tasks {
        t.abort();
    }
    r.slo_missed = missed_slos(&r, &a);
    println!("{}", serde_json::to_string_pretty(&r)?);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)?;
    }
    for m in &r.slo_missed {
        eprintln!("SLO missed: {m}");
    }
    Ok(r.slo_missed.is_empty())
}

/// Waits (at least 30 s, or `--connect-within-secs`) for every viewer's first welcome: how
/// many connected, and when the last did if all did.
async fn await_connections(shared: &Shared, a: &SurgeArgs) -> (u64, Option<f64>) {
    let n = a.viewers as u64;
    let connect_deadline = Duration::from_secs_f64(a.connect_within_secs.max(30.0));
    while shared.connected.load(Relaxed) < n && shared.start.elapsed() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = shared.connected.load(Relaxed);
    let all_connected_secs =
        (connected == n).then(|| shared.last_connect_us.load(Relaxed) as f64 / 1e6);
    eprintln!(
        "{connected} of {n} viewers connected{}",
        all_connected_secs.map_or(String::new(), |s| format!(" in {s:.2} s"))
    );
    (connected, all_connected_secs)
}

/// Waits up to `--restart-wait-secs` for the hub to go away, then up to 60 s for every
/// dropped viewer to be back: whether it went away, and how long after the first disconnect
/// the last viewer was back (if all were).
async fn await_restart(shared: &Shared, a: &SurgeArgs) -> (bool, Option<f64>) {
    let wait_until = Instant::now() + Duration::from_secs_f64(a.restart_wait_secs);
    while shared.first_disconnect_us.load(Relaxed) == 0 && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_down = shared.first_disconnect_us.load(Relaxed);
    if first_down == 0 {
        return (false, None);
    }
    eprintln!(
        "hub went away at {:.2} s; waiting for every viewer to resume",
        first_down as f64 / 1e6
    );
    let n = a.viewers as u64;
    let mut all_resumed_secs = None;
    let resume_deadline = Instant::now() + Duration::from_secs(60);
    // Everyone who was dropped is back once nobody is away and the count matches.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while Instant::now() < resume_deadline {
        let away = shared.away.iter().filter(|a| a.load(Relaxed)).count();
        let back = shared.resumed.load(Relaxed) + shared.resume_refused.load(Relaxed);
        if away == 0 && back >= shared.disconnected.load(Relaxed).min(n) && back > 0 {
            let last = shared.last_resume_us.load(Relaxed);
            all_resumed_secs = Some(last.saturating_sub(first_down) as f64 / 1e6);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{} resumed, {} refused{}",
        shared.resumed.load(Relaxed),
        shared.resume_refused.load(Relaxed),
        all_resumed_secs.map_or(" (not all back within 60 s)".into(), |s| format!(
            "; all back {s:.2} s after the first disconnect"
        ))
    );
    (true, all_resumed_secs)
}

/// The run's figures once the host stopped and its last events landed (SLOs not judged yet).
fn result(
    shared: &Shared,
    a: &SurgeArgs,
    connected: u64,
    all_connected_secs: Option<f64>,
    restarted: bool,
) -> SurgeResult {
    let last_acked_seq = shared.host_last_seq.load(Relaxed);
    let behind_at_end = shared
        .last_seq
        .iter()
        .filter(|s| s.load(Relaxed) < last_acked_seq)
        .count() as u64;
    let h = shared.resume_hist.lock().clone();
    SurgeResult {
        viewers: a.viewers,
        connected,
        connect_failed: shared.connect_failed.load(Relaxed),
        connect_failures: shared.connect_failures.snapshot(),
        all_connected_secs,
        restarted,
        disconnected: shared.disconnected.load(Relaxed),
        resumed: shared.resumed.load(Relaxed),
        resume_refused: shared.resume_refused.load(Relaxed),
        all_resumed_secs: None,
        resume_p50_ms: h.ms(0.5),
        resume_p99_ms: h.ms(0.99),
        resume_max_ms: h.max_ms(),
        events_acked: shared.host_acked.load(Relaxed),
        last_acked_seq,
        gaps: shared.gaps.load(Relaxed),
        duplicates: shared.duplicates.load(Relaxed),
        behind_at_end,
        slo_missed: Vec::new(),
    }
}

/// The SLOs `r` missed, each named.
fn missed_slos(r: &SurgeResult, a: &SurgeArgs) -> Vec<String> {
    let n = a.viewers;
    let mut out = Vec::new();
    let mut miss = |ok: bool, what: String| {
        if !ok {
            out.push(what);
        }
    };
    miss(
        r.all_connected_secs
            .is_some_and(|s| s <= a.connect_within_secs),
        format!("all {n} connected within {} s", a.connect_within_secs),
    );
    miss(r.restarted, "a hub restart was observed".into());
    miss(
        r.all_resumed_secs
            .is_some_and(|s| s <= a.resume_within_secs)
            && r.resume_refused == 0,
        format!(
            "all resumed within {} s, none refused",
            a.resume_within_secs
        ),
    );
    miss(
        r.gaps == 0 && r.behind_at_end == 0 && r.last_acked_seq > 0,
        "no event missed".into(),
    );
    out
}
