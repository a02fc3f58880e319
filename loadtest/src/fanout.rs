//! `fanout`: the fan-out ceiling. V viewers in one room; one sender publishes at a fixed rate,
//! raised in steps. Every frame carries its step, its message number and its send time, so each
//! step's deliveries, latency and loss are measured by the receivers. The highest step whose p99
//! stays within `--max-p99-ms` with nothing lost, duplicated or out of order is the ceiling.
//!
//! `--url A,B,C` spreads the room's viewers over hub nodes (viewer i on URL i % N, the sender
//! on the first): each step is then also reported per node, and at the end every viewer's
//! (seq -> message number) is compared with every other's: under one seq, all must have got the
//! same message (module `sequence`). A disagreement, duplicate or out-of-order arrival exits 1.
//!
//! `--target livehub`: the sender is a host posting comments (run the hub with raised per-user
//! comment limits, see docs/benchmarks.md). `--target raw`: the reference server's raw protocol
//! (`ws://…/ws?room=R`, every frame published verbatim to the room), with frames shaped like
//! livehub's comment events, so the same receive code measures both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::{ClientMsg, Role};
use parking_lot::Mutex;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::hist::Hist;
use crate::sequence::{Agreement, Arrival, Track};
use crate::stats::{cpu_secs, rss_kib};
use crate::wsraw::{Frame, RawWs, number_after};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Livehub,
    Raw,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[arg(long, value_enum, default_value = "livehub")]
    target: Target,
    /// Base URLs (ws://host:port, or http://), comma separated, one per hub node: viewer i connects to URL
    /// i % N, the sender to the first.
    #[arg(long, default_value = "ws://127.0.0.1:8080", value_parser = crate::hub_url::parse, value_delimiter = ',')]
    url: Vec<String>,
    #[arg(long, default_value = "fanout")]
    room: String,
    #[arg(long, default_value_t = 2000)]
    viewers: usize,
    /// Messages per second at each step, comma separated (one rate: one step).
    #[arg(
        long,
        default_value = "50,100,200,300,400,500,600,800",
        value_delimiter = ','
    )]
    rates: Vec<u64>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5)]
    step_secs: u64,
    /// Keep raising the rate after a step fails (default: stop at the first failure).
    #[arg(long)]
    keep_going: bool,
    /// A step holds when its p99 is at most this.
    #[arg(long, default_value_t = 100.0)]
    max_p99_ms: f64,
    /// Approximate size of each delivered frame, bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// The hub's token secret (auth.secret).
    #[arg(long, env = "LIVEHUB_AUTH__SECRET", default_value = livehub::config::DEV_SECRET)]
    secret: String,
    /// The servers' PIDs, comma separated: one (all URLs are one process) or one per URL in the
    /// same order, for RSS and CPU per delivery, per step and per node.
    #[arg(long, visible_alias = "hub-pid", value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Write the per-step results as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// What one node's viewers got (in one step, or over the run).
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    pub url: String,
    /// Viewers connected to this node.
    pub viewers: usize,
    pub expected: u64,
    /// Messages that reached a viewer (each once; duplicates are not counted here).
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// This node's server CPU (needs one --server-pid per URL).
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: u64,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub delivered_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub held: bool,
    /// The servers' CPU time per delivery over the step and its drain (needs --server-pid):
    /// the measure that does not depend on how busy the shared machine was.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The load client's own CPU time per delivery.
    pub client_cpu_us_per_delivery: f64,
    /// The same, per node (in --url order).
    pub nodes: Vec<NodeResult>,
}

/// Whether every viewer got the same message under each seq, in order.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceCheck {
    pub viewers: u64,
    /// Viewers that got, under some seq, another message than the first viewer to report it.
    pub disagreeing_viewers: u64,
    /// (viewer, seq) deliveries in such disagreements.
    pub mismatched: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// The first few disagreements, naming the nodes.
    pub samples: Vec<String>,
    pub same: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    pub target: Target,
    pub urls: Vec<String>,
    pub viewers: usize,
    pub connected: usize,
    pub steps: Vec<Step>,
    pub ceiling_rate: u64,
    pub ceiling_delivered_per_s: f64,
    /// Summed over the distinct server processes.
    pub server_rss_kib: Option<u64>,
    pub closes: u64,
    /// Per node over all steps, counted once deliveries stopped arriving (late ones count as
    /// delivered here, while a step's own figures are taken 2 s after it ends).
    pub nodes: Vec<NodeResult>,
    pub sequence: SequenceCheck,
}

const MAX_STEPS: usize = 64;

/// Histograms per step and node are striped by reader so that readers on different threads
/// rarely contend for one lock.
const STRIPES: usize = 16;

/// Where a delivery landed, counted by the readers as frames arrive.
#[derive(Default)]
struct Cell {
    duplicates: AtomicU64,
    out_of_order: AtomicU64,
}

struct Shared {
    start: Instant,
    steps: usize,
    nodes: usize,
    /// `hists[(step * nodes + node) * STRIPES + stripe]`: one sample per first delivery.
    hists: Vec<Mutex<Hist>>,
    /// `cells[step * nodes + node]`.
    cells: Vec<Cell>,
    closes: AtomicU64,
}

impl Shared {
    fn new(steps: usize, nodes: usize) -> Self {
        Shared {
            start: Instant::now(),
            steps,
            nodes,
            hists: (0..steps * nodes * STRIPES)
                .map(|_| Mutex::new(Hist::default()))
                .collect(),
            cells: (0..steps * nodes).map(|_| Cell::default()).collect(),
            closes: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// The index of (step, node) for a step number read off a frame (clamped: a hub can send
    /// anything).
    fn at(&self, step: u64, node: usize) -> usize {
        let step = usize::try_from(step).map_or(self.steps - 1, |s| s.min(self.steps - 1));
        step * self.nodes + node
    }

    /// First deliveries recorded so far, all steps and nodes.
    fn delivered(&self) -> u64 {
        self.hists.iter().map(|h| h.lock().count()).sum()
    }

    /// All of one (step, node)'s samples so far.
    fn hist(&self, step: usize, node: usize) -> Hist {
        let i = (step * self.nodes + node) * STRIPES;
        let mut h = Hist::default();
        for s in &self.hists[i..i + STRIPES] {
            h.merge(&s.lock());
        }
        h
    }
}

/// The sender's stamp in each message's text: `[s=STEP][n=NUMBER][t=SENT_US]`.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    step: u64,
    number: u64,
    sent_us: u64,
}

impl Stamp {
    fn text(&self) -> String {
        format!("[s={}][n={}][t={}] ", self.step, self.number, self.sent_us)
    }

    /// The stamp in a frame, if it has one.
    fn find(frame: &[u8]) -> Option<Stamp> {
        let mut rest = &frame[memchr::memmem::find(frame, b"[s=")?..];
        let mut next = |tag: &[u8]| -> Option<u64> {
            rest = rest.strip_prefix(tag)?;
            let end = rest.iter().position(|c| !c.is_ascii_digit())?;
            let v = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
            rest = &rest[end..];
            Some(v)
        };
        Some(Stamp {
            step: next(b"[s=")?,
            number: next(b"][n=")?,
            sent_us: next(b"][t=")?,
        })
    }
}

/// One viewer: its node, its histogram stripe, and the seqs it got.
struct Viewer {
    node: usize,
    stripe: usize,
    /// Locked only by this viewer's reader, and once at the end.
    track: Mutex<Track>,
}

const SEQ: &[u8] = br#""seq":"#;

/// Takes one frame a viewer received: a welcome sets its position; a stamped message is placed
/// in its sequence and, unless it is a duplicate, its latency recorded.
fn on_frame(shared: &Shared, v: &Viewer, p: &[u8]) {
    if p.starts_with(br#"{"type":"welcome""#) {
        if let Some(seq) = number_after(p, SEQ) {
            v.track.lock().position_at(seq);
        }
        return;
    }
    let Some(stamp) = Stamp::find(p) else { return };
    let at = shared.at(stamp.step, v.node);
    let arrival = match number_after(p, SEQ) {
        Some(seq) => v.track.lock().arrive(seq, stamp.number),
        None => Arrival::InOrder,
    };
    match arrival {
        Arrival::Duplicate => {
            shared.cells[at].duplicates.fetch_add(1, Relaxed);
            return;
        }
        Arrival::Late => {
            shared.cells[at].out_of_order.fetch_add(1, Relaxed);
        }
        Arrival::InOrder | Arrival::Gap { .. } => {}
    }
    shared.hists[at * STRIPES + v.stripe]
        .lock()
        .record(shared.now_us().saturating_sub(stamp.sent_us));
}

/// Reads one viewer's socket until it closes. No timers and no stop signal polled per frame:
/// the readers are aborted at the end.
async fn read(shared: Arc<Shared>, v: Arc<Viewer>, mut ws: RawWs) {
    let mut record = |frame: Frame<'_>| match frame {
        Frame::Data(p) => on_frame(&shared, &v, p),
        Frame::Close(_) => {
            shared.closes.fetch_add(1, Relaxed);
        }
    };
    loop {
        match ws.next_frames(&mut record).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(_) => {
                shared.closes.fetch_add(1, Relaxed);
                break;
            }
        }
    }
}

/// The server PIDs, as the nodes' and as the distinct processes'.
struct Pids {
    /// One per node, when one was given per URL.
    per_node: Vec<Option<u32>>,
    distinct: Vec<u32>,
}

impl Pids {
    fn new(pids: &[u32], nodes: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            pids.len() <= 1 || pids.len() == nodes,
            "--server-pid: give one PID, or one per --url ({nodes} URLs, {} PIDs)",
            pids.len()
        );
        let per_node = if pids.len() == nodes {
            pids.iter().map(|&p| Some(p)).collect()
        } else {
            vec![None; nodes]
        };
        let mut distinct = pids.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Ok(Pids { per_node, distinct })
    }

    /// CPU seconds so far: each node's, and all the distinct processes' together.
    fn cpu(&self) -> (Vec<Option<f64>>, Option<f64>) {
        let nodes = self.per_node.iter().map(|p| p.and_then(cpu_secs)).collect();
        let total = (!self.distinct.is_empty())
            .then(|| {
                self.distinct
                    .iter()
                    .map(|&p| cpu_secs(p))
                    .sum::<Option<f64>>()
            })
            .flatten();
        (nodes, total)
    }

    fn rss_kib(&self) -> Option<u64> {
        (!self.distinct.is_empty())
            .then(|| {
                self.distinct
                    .iter()
                    .map(|&p| rss_kib(p))
                    .sum::<Option<u64>>()
            })
            .flatten()
    }
}

/// µs of CPU per delivery (none without deliveries).
fn per_delivery(cpu_s: f64, delivered: u64) -> Option<f64> {
    (delivered > 0).then(|| cpu_s * 1e6 / delivered as f64)
}

/// The room id, the WebSocket URL of a client on `base`, and its token.
struct Room<'a> {
    a: &'a FanoutArgs,
    id: String,
    auth: Authenticator,
}

impl Room<'_> {
    fn url(&self, base: &str, sub: &str, role: Role) -> anyhow::Result<String> {
        Ok(match self.a.target {
            Target::Raw => format!("{base}/ws?room={}", self.id),
            Target::Livehub => {
                let t = self.auth.mint(&Claims {
                    sub: sub.into(),
                    name: None,
                    role,
                    room: self.id.clone(),
                    exp: Some(livehub::clock::now_ms() / 1000 + 3600),
                    src: None,
                    aff: None,
                })?;
                format!("{base}/ws/rooms/{}?token={t}", self.id)
            }
        })
    }

    /// One message on the wire: a comment command (livehub) or the event itself (raw).
    fn frame(&self, stamp: &Stamp) -> String {
        let stamp_text = stamp.text();
        let n = stamp.number;
        match self.a.target {
            Target::Livehub => {
                let pad = "x".repeat(self.a.size.saturating_sub(stamp_text.len() + 110));
                let comment = ClientMsg::Comment {
                    text: format!("{stamp_text}{pad}"),
                    request_id: None,
                };
                serde_json::to_string(&comment).unwrap_or_default()
            }
            Target::Raw => {
                let head = format!(
                    r#"{{"type":"comment","seq":{n},"id":"c{n}","user":"fanout-sender","name":"fanout-sender","text":"{stamp_text}"#
                );
                let pad = "x".repeat(self.a.size.saturating_sub(head.len() + 24));
                format!(r#"{head}{pad}","ts":{}}}"#, livehub::clock::now_ms())
            }
        }
    }
}

/// Connects every viewer (viewer i to URL i % N) and starts its reader.
async fn connect_viewers(
    shared: &Arc<Shared>,
    room: &Room<'_>,
    urls: &[String],
) -> anyhow::Result<(Vec<Arc<Viewer>>, Vec<tokio::task::JoinHandle<()>>)> {
    let targets: Vec<(usize, String)> = (0..room.a.viewers)
        .map(|i| {
            let node = i % urls.len();
            Ok((node, room.url(&urls[node], &format!("v{i}"), Role::Viewer)?))
        })
        .collect::<anyhow::Result<_>>()?;
    let conns = futures_util::stream::iter(targets)
        .map(|(node, url)| async move { (node, RawWs::connect(url.as_str()).await) })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await;
    let mut viewers = Vec::new();
    let mut readers = Vec::new();
    for (i, (node, c)) in conns.into_iter().enumerate() {
        let ws = c.with_context(|| format!("viewer connect to {}", urls[node]))?;
        let v = Arc::new(Viewer {
            node,
            stripe: i % STRIPES,
            track: Mutex::new(Track::default()),
        });
        readers.push(tokio::spawn(read(Arc::clone(shared), Arc::clone(&v), ws)));
        viewers.push(v);
    }
    Ok((viewers, readers))
}

/// What one step's sending did.
struct Sent {
    sent: u64,
    total: u64,
    sender_lost: bool,
}

/// Sends `rate` messages a second for the step, numbered on from `*number`.
async fn send_step<S>(
    tx: &mut S,
    room: &Room<'_>,
    shared: &Shared,
    step: usize,
    rate: u64,
    number: &mut u64,
) -> Sent
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let step_start = Instant::now();
    let total = rate * room.a.step_secs;
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while sent < total {
        tick.tick().await;
        let due = ((step_start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while sent < due {
            *number += 1;
            let stamp = Stamp {
                step: step as u64,
                number: *number,
                sent_us: shared.now_us(),
            };
            if let Err(e) = tx.send(Message::text(room.frame(&stamp))).await {
                // The server dropped the sender (e.g. 1013 when it cannot keep up): this step
                // fails with what was delivered, and the run ends.
                eprintln!("sender connection lost at {rate} msg/s: {e}");
                return Sent {
                    sent,
                    total,
                    sender_lost: true,
                };
            }
            sent += 1;
        }
    }
    Sent {
        sent,
        total,
        sender_lost: false,
    }
}

/// One node's figures for one step.
fn node_step(
    shared: &Shared,
    step: usize,
    node: usize,
    url: &str,
    viewers: usize,
    sent_per_viewer: u64,
    cpu_s: Option<f64>,
) -> NodeResult {
    let h = shared.hist(step, node);
    let cell = &shared.cells[step * shared.nodes + node];
    let expected = sent_per_viewer * viewers as u64;
    NodeResult {
        url: url.to_owned(),
        viewers,
        expected,
        delivered: h.count(),
        lost: expected.saturating_sub(h.count()),
        duplicates: cell.duplicates.load(Relaxed),
        out_of_order: cell.out_of_order.load(Relaxed),
        p50_ms: h.ms(0.5),
        p99_ms: h.ms(0.99),
        max_ms: h.max_ms(),
        server_cpu_s: cpu_s,
        server_cpu_us_per_delivery: cpu_s.and_then(|c| per_delivery(c, h.count())),
    }
}

/// Waits until deliveries stop arriving (nothing new for a second, at most `SETTLE_MAX`), so
/// the run's totals count what was late but not what was lost.
async fn settle(shared: &Shared) {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut last = shared.delivered();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = shared.delivered();
        if now == last {
            return;
        }
        last = now;
    }
}

/// The longest [`settle`] waits.
const SETTLE_MAX: Duration = Duration::from_secs(15);

/// Each node over every step run, counted after the last step settled: a message that
/// arrived after its step's figures were taken counts here as delivered, not lost.
fn node_totals(shared: &Shared, steps: &[Step]) -> Vec<NodeResult> {
    let Some(first) = steps.first() else {
        return Vec::new();
    };
    (0..shared.nodes)
        .map(|node| {
            let mut h = Hist::default();
            for k in 0..steps.len() {
                h.merge(&shared.hist(k, node));
            }
            let of = |f: fn(&NodeResult) -> u64| steps.iter().map(|s| f(&s.nodes[node])).sum();
            let cpu: Option<f64> = steps.iter().map(|s| s.nodes[node].server_cpu_s).sum();
            let expected = of(|n| n.expected);
            NodeResult {
                url: first.nodes[node].url.clone(),
                viewers: first.nodes[node].viewers,
                expected,
                delivered: h.count(),
                lost: expected.saturating_sub(h.count()),
                duplicates: of(|n| n.duplicates),
                out_of_order: of(|n| n.out_of_order),
                p50_ms: h.ms(0.5),
                p99_ms: h.ms(0.99),
                max_ms: h.max_ms(),
                server_cpu_s: cpu,
                server_cpu_us_per_delivery: cpu.and_then(|c| per_delivery(c, h.count())),
            }
        })
        .collect()
}

/// Compares every viewer's seqs with the others' (after the readers stopped).
fn check_sequence(viewers: &[Arc<Viewer>], urls: &[String], steps: &[Step]) -> SequenceCheck {
    let mut agreement = Agreement::default();
    for v in viewers {
        agreement.absorb(v.track.lock().runs(), v.node);
    }
    let duplicates = steps.iter().map(|s| s.duplicates).sum();
    let out_of_order = steps.iter().map(|s| s.out_of_order).sum();
    let samples = agreement
        .samples
        .iter()
        .map(|d| {
            format!(
                "seq {}: a viewer on {} got {}, a viewer on {} got {}",
                d.seq, urls[d.first_node], d.first, urls[d.then_node], d.then
            )
        })
        .collect();
    SequenceCheck {
        viewers: agreement.viewers,
        disagreeing_viewers: agreement.disagreeing_viewers,
        mismatched: agreement.mismatched,
        duplicates,
        out_of_order,
        samples,
        same: agreement.disagreeing_viewers == 0 && duplicates == 0 && out_of_order == 0,
    }
}

fn print_step(s: &Step) {
    eprintln!(
        "step {:>5} msg/s: delivered {:>9} of {:>9} ({:>9.0}/s)  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  lost {:>7}  dup {}  out of order {}  cpu/delivery server {} client {:.2} µs  {}",
        s.rate,
        s.delivered,
        s.expected,
        s.delivered_per_s,
        s.p50_ms,
        s.p99_ms,
        s.max_ms,
        s.lost,
        s.duplicates,
        s.out_of_order,
        s.server_cpu_us_per_delivery
            .map_or("-".into(), |c| format!("{c:.2} µs")),
        s.client_cpu_us_per_delivery,
        if s.held { "held" } else { "FAILED" }
    );
    if s.nodes.len() > 1 {
        for (i, n) in s.nodes.iter().enumerate() {
            eprintln!("  {}", node_line(i, n));
        }
    }
}

fn node_line(i: usize, n: &NodeResult) -> String {
    let cpu = match (n.server_cpu_s, n.server_cpu_us_per_delivery) {
        (Some(c), Some(d)) => format!("  cpu {c:.2} s = {d:.2} µs/delivery"),
        (Some(c), None) => format!("  cpu {c:.2} s"),
        _ => String::new(),
    };
    format!(
        "node {i} {}: viewers {:>6}  delivered {:>9} of {:>9}  lost {}  dup {}  out of order {}  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms{cpu}",
        n.url,
        n.viewers,
        n.delivered,
        n.expected,
        n.lost,
        n.duplicates,
        n.out_of_order,
        n.p50_ms,
        n.p99_ms,
        n.max_ms
    )
}

/// Runs the steps. True when every viewer got the same seq sequence (no duplicates, nothing
/// out of order, the same message under each seq) and at least the first step held (its p99
/// within `--max-p99-ms`, nothing lost): where later steps fail is the ceiling, not a failure.
pub async fn run(a: FanoutArgs) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !a.rates.is_empty() && a.rates.len() <= MAX_STEPS,
        "--rates: 1 to {MAX_STEPS} steps"
    );
    anyhow::ensure!(!a.url.is_empty(), "at least one --url");
    let urls: Vec<String> = a
        .url
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let pids = Pids::new(&a.server_pid, urls.len())?;
    // A fresh room per run, so nothing from an earlier run is in its history.
    let room = Room {
        a: &a,
        id: format!("{}-{}", a.room, livehub::clock::now_ms() % 1_000_000),
        auth: Authenticator::new(&a.secret, false),
    };
    let shared = Arc::new(Shared::new(a.rates.len(), urls.len()));
    if a.target == Target::Livehub {
        // The room is opened as its host would, through every URL (separate hubs each need it).
        for url in &urls {
            crate::stats::open_room(url, &room.id, &room.auth).await?;
        }
    }
    let (viewers, readers) = connect_viewers(&shared, &room, &urls).await?;
    let connected = viewers.len();
    let per_node: Vec<usize> = (0..urls.len())
        .map(|n| viewers.iter().filter(|v| v.node == n).count())
        .collect();
    eprintln!(
        "{connected} viewers connected to {:?} at {} ({per_node:?} per node)",
        a.target,
        urls.join(", ")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sender =
        crate::stats::connect(room.url(&urls[0], "fanout-sender", Role::Host)?.as_str()).await?;
    let (mut tx, mut rx) = sender.split();
    // The sender's own copies are read and dropped so its socket never backs up.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let steps = play_steps(&mut tx, &room, &shared, &pids, &urls, &per_node).await;
    settle(&shared).await;
    drain.abort();
    let server_rss_kib = pids.rss_kib();
    for r in readers {
        r.abort();
        let _ = r.await; // the reader no longer touches its viewer's track
    }
    // The ceiling is the last step that held before the first that did not (later steps
    // are shown with --keep-going but do not count).
    let best = steps.iter().take_while(|s| s.held).last();
    let (ceiling_rate, ceiling_delivered_per_s) =
        best.map_or((0, 0.0), |s| (s.rate, s.delivered_per_s));
    let any_held = best.is_some();
    let result = FanoutResult {
        target: a.target,
        urls: urls.clone(),
        viewers: a.viewers,
        connected,
        ceiling_rate,
        ceiling_delivered_per_s,
        server_rss_kib,
        closes: shared.closes.load(Relaxed),
        nodes: node_totals(&shared, &steps),
        sequence: check_sequence(&viewers, &urls, &steps),
        steps,
    };
    report(&result, a.max_p99_ms);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(result.sequence.same && any_held)
}

/// Plays `--rates` step by step until the sender is lost or (without `--keep-going`) a step
/// fails, printing each step's line.
async fn play_steps<S>(
    tx: &mut S,
    room: &Room<'_>,
    shared: &Shared,
    pids: &Pids,
    urls: &[String],
    per_node: &[usize],
) -> Vec<Step>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let a = room.a;
    let mut steps = Vec::new();
    let mut number = 0u64;
    for (k, &rate) in a.rates.iter().enumerate() {
        let before = CpuMark::now(pids);
        let s = send_step(tx, room, shared, k, rate, &mut number).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // let this step's deliveries land
        let after = CpuMark::now(pids);
        let step = measure_step(a, shared, urls, per_node, (k, rate), &s, (&before, &after));
        print_step(&step);
        let failed = !step.held;
        steps.push(step);
        if s.sender_lost || (failed && !a.keep_going) {
            break;
        }
    }
    steps
}

/// CPU seconds read at one moment: each node's hub, all hubs, and this process.
struct CpuMark {
    nodes: Vec<Option<f64>>,
    server: Option<f64>,
    client: f64,
}

impl CpuMark {
    fn now(pids: &Pids) -> Self {
        let (nodes, server) = pids.cpu();
        CpuMark {
            nodes,
            server,
            client: cpu_secs(std::process::id()).unwrap_or(0.0),
        }
    }
}

/// Step `k`'s figures (at `rate` msg/s), overall and per node, from what was sent and the
/// CPU read `before` and `after` it.
fn measure_step(
    a: &FanoutArgs,
    shared: &Shared,
    urls: &[String],
    per_node: &[usize],
    (k, rate): (usize, u64),
    s: &Sent,
    (before, after): (&CpuMark, &CpuMark),
) -> Step {
    // A lost sender fails the step even if what it sent was all delivered.
    let sent_per_viewer = if s.sender_lost { s.total } else { s.sent };
    let nodes: Vec<NodeResult> = (0..urls.len())
        .map(|n| {
            let cpu = before.nodes[n].zip(after.nodes[n]).map(|(c0, c1)| c1 - c0);
            node_step(shared, k, n, &urls[n], per_node[n], sent_per_viewer, cpu)
        })
        .collect();
    let mut h = Hist::default();
    for n in 0..urls.len() {
        h.merge(&shared.hist(k, n));
    }
    let connected: usize = per_node.iter().sum();
    let delivered = h.count();
    let expected = sent_per_viewer * connected as u64;
    let lost = expected.saturating_sub(delivered);
    let duplicates = nodes.iter().map(|n| n.duplicates).sum();
    let out_of_order = nodes.iter().map(|n| n.out_of_order).sum();
    Step {
        rate,
        sent: s.sent,
        expected,
        delivered,
        lost,
        duplicates,
        out_of_order,
        delivered_per_s: delivered as f64 / a.step_secs as f64,
        p50_ms: h.ms(0.5),
        p99_ms: h.ms(0.99),
        max_ms: h.max_ms(),
        held: lost == 0 && duplicates == 0 && out_of_order == 0 && h.ms(0.99) <= a.max_p99_ms,
        server_cpu_us_per_delivery: before
            .server
            .zip(after.server)
            .and_then(|(c0, c1)| per_delivery(c1 - c0, delivered)),
        client_cpu_us_per_delivery: per_delivery(after.client - before.client, delivered)
            .unwrap_or(0.0),
        nodes,
    }
}

/// The run's summary: the ceiling, each node over the run, the sequence verdict; what failed
/// also on stderr.
fn report(r: &FanoutResult, max_p99_ms: f64) {
    println!(
        "{:?}: ceiling {} msg/s x {} viewers = {:.0} deliveries/s (p99 <= {} ms, nothing lost)",
        r.target, r.ceiling_rate, r.connected, r.ceiling_delivered_per_s, max_p99_ms
    );
    if let Some(first) = r.steps.first().filter(|s| !s.held) {
        eprintln!(
            "SLO missed: first_step_held (at {} msg/s: p99 {:.1} ms, target {max_p99_ms} ms; lost {}, duplicates {}, out of order {})",
            first.rate, first.p99_ms, first.lost, first.duplicates, first.out_of_order
        );
    }
    println!("per node over the run, once deliveries stopped arriving:");
    for (i, n) in r.nodes.iter().enumerate() {
        println!("  {}", node_line(i, n));
    }
    let s = &r.sequence;
    if s.same {
        println!(
            "sequence: all {} viewers got the same message under every seq they shared, in order ({} duplicates, {} out of order)",
            s.viewers, s.duplicates, s.out_of_order
        );
        return;
    }
    eprintln!(
        "SLO missed: same_sequence (target 0, actual {})",
        s.mismatched + s.duplicates + s.out_of_order
    );
    eprintln!(
        "sequence: viewers did not all see the same seqs in the same order: {} of {} viewers disagree ({} deliveries), {} duplicates, {} out of order",
        s.disagreeing_viewers, s.viewers, s.mismatched, s.duplicates, s.out_of_order
    );
    for sample in &s.samples {
        eprintln!("sequence mismatch: {sample}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_from_a_comment_frame() {
        let stamp = Stamp {
            step: 2,
            number: 417,
            sent_us: 123_456,
        };
        let frame = format!(
            r#"{{"type":"comment","seq":9,"id":"c9","user":"u","name":"u","text":"{}xxxx","ts":1}}"#,
            stamp.text()
        );
        assert_eq!(Stamp::find(frame.as_bytes()), Some(stamp));
        assert_eq!(Stamp::find(br#"{"text":"[s=1][t=5] old"}"#), None);
        assert_eq!(Stamp::find(br#"{"text":"[s=1][n=2][t="}"#), None);
    }

    #[test]
    fn pids_are_one_or_one_per_url() {
        assert!(Pids::new(&[], 3).is_ok());
        let one = Pids::new(&[7], 3).unwrap();
        assert_eq!(one.per_node, vec![None, None, None]);
        assert_eq!(one.distinct, vec![7]);
        let each = Pids::new(&[7, 8, 7], 3).unwrap();
        assert_eq!(each.per_node, vec![Some(7), Some(8), Some(7)]);
        assert_eq!(each.distinct, vec![7, 8]);
        assert!(Pids::new(&[7, 8], 3).is_err());
    }
}
