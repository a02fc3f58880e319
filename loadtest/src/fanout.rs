//! `fanout`: the fan-out ceiling. V viewers in one room; one sender publishes at a fixed rate,
//! raised in steps. Every frame carries its send time and step, so each step's deliveries,
//! latency and loss are measured by the receivers. The highest step whose p99 stays within
//! `--max-p99-ms` with nothing lost is the ceiling.
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
use livehub::protocol::Role;
use parking_lot::Mutex;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::hist::Hist;
use crate::stats::{cpu_secs, rss_kib};
use crate::wsraw::{Frame, RawWs, number_after};

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Livehub,
    Raw,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[arg(long, value_enum, default_value = "livehub")]
    target: Target,
    /// Base URL: ws://host:port.
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "fanout")]
    room: String,
    #[arg(long, default_value_t = 2000)]
    viewers: usize,
    /// Messages per second at each step, comma separated.
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
    /// The server's PID, to report its RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Write the per-step results as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub rate: u64,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub delivered_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub held: bool,
    /// The server's CPU time per delivery over the step and its drain (needs --server-pid):
    /// the measure that does not depend on how busy the shared machine was.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// The load client's own CPU time per delivery.
    pub client_cpu_us_per_delivery: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    pub target: Target,
    pub viewers: usize,
    pub connected: usize,
    pub steps: Vec<Step>,
    pub ceiling_rate: u64,
    pub ceiling_delivered_per_s: f64,
    pub server_rss_kib: Option<u64>,
    pub closes: u64,
}

const MAX_STEPS: usize = 64;

/// Histograms per step are striped by reader so that readers on different threads rarely
/// contend for one lock.
const STRIPES: usize = 16;

struct Shared {
    start: Instant,
    /// `hists[step * STRIPES + stripe]`.
    hists: Vec<Mutex<Hist>>,
    closes: AtomicU64,
}

impl Shared {
    /// All of one step's samples so far.
    fn step_hist(&self, step: usize) -> Hist {
        let mut h = Hist::default();
        for s in &self.hists[step * STRIPES..(step + 1) * STRIPES] {
            h.merge(&s.lock());
        }
        h
    }
}

pub async fn run(a: FanoutArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.rates.len() <= MAX_STEPS, "at most {MAX_STEPS} steps");
    let base = a.url.trim_end_matches('/').to_owned();
    // A fresh room per run, so nothing from an earlier run is in its history.
    let a = FanoutArgs {
        room: format!("{}-{}", a.room, livehub::hub::now_ms() % 1_000_000),
        ..a
    };
    let auth = Authenticator::new(&a.secret, false);
    let exp = Some(livehub::hub::now_ms() / 1000 + 3600);
    let url_for = |sub: &str, role: Role| -> anyhow::Result<String> {
        Ok(match a.target {
            Target::Raw => format!("{base}/ws?room={}", a.room),
            Target::Livehub => {
                let t = auth.mint(&Claims {
                    sub: sub.into(),
                    name: None,
                    role,
                    room: a.room.clone(),
                    exp,
                })?;
                format!("{base}/ws/rooms/{}?token={t}", a.room)
            }
        })
    };
    let shared = Arc::new(Shared {
        start: Instant::now(),
        hists: (0..MAX_STEPS * STRIPES)
            .map(|_| Mutex::new(Hist::default()))
            .collect(),
        closes: AtomicU64::new(0),
    });
    let urls: Vec<String> = (0..a.viewers)
        .map(|i| url_for(&format!("v{i}"), Role::Viewer))
        .collect::<Result<_, _>>()?;
    let conns = futures_util::stream::iter(urls)
        .map(|url| async move { RawWs::connect(url.as_str()).await })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await;
    let mut readers = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let mut ws = c.context("viewer connect")?;
        let shared = Arc::clone(&shared);
        // No timers and no stop signal polled per frame: a sample is recorded as it arrives
        // (into one of STRIPES histograms, so readers rarely share a lock) and the readers are
        // aborted at the end.
        readers.push(tokio::spawn(async move {
            let stripe = i % STRIPES;
            let mut record = |frame: Frame<'_>| match frame {
                Frame::Data(p) => {
                    if let (Some(step), Some(sent)) =
                        (number_after(p, b"[s="), number_after(p, b"[t="))
                    {
                        let now = shared.start.elapsed().as_micros() as u64;
                        let step = (step as usize).min(MAX_STEPS - 1);
                        shared.hists[step * STRIPES + stripe]
                            .lock()
                            .record(now.saturating_sub(sent));
                    }
                }
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
        }));
    }
    let connected = readers.len();
    eprintln!("{connected} viewers connected to {:?} at {base}", a.target);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sender = crate::stats::connect(url_for("fanout-sender", Role::Host)?.as_str()).await?;
    let (mut tx, mut rx) = sender.split();
    // The sender's own copies are read and dropped so its socket never backs up.
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let mut steps = Vec::new();
    let mut seq = 0u64;
    let mut sender_lost = false;
    for (k, &rate) in a.rates.iter().enumerate() {
        let step_start = Instant::now();
        let server_cpu0 = a.server_pid.and_then(cpu_secs);
        let client_cpu0 = cpu_secs(std::process::id()).unwrap_or(0.0);
        let total = rate * a.step_secs;
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while sent < total {
            tick.tick().await;
            let due = ((step_start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            while sent < due {
                seq += 1;
                let stamp = format!("[s={k}][t={}] ", shared.start.elapsed().as_micros());
                let frame = match a.target {
                    Target::Livehub => {
                        let pad = "x".repeat(a.size.saturating_sub(stamp.len() + 110));
                        serde_json::json!({"type": "comment", "text": format!("{stamp}{pad}")})
                            .to_string()
                    }
                    Target::Raw => {
                        let head = format!(
                            r#"{{"type":"comment","seq":{seq},"id":"c{seq}","user":"fanout-sender","name":"fanout-sender","text":"{stamp}"#
                        );
                        let pad = "x".repeat(a.size.saturating_sub(head.len() + 24));
                        format!(r#"{head}{pad}","ts":{}}}"#, livehub::hub::now_ms())
                    }
                };
                if let Err(e) = tx.send(Message::text(frame)).await {
                    // The server dropped the sender (e.g. 1013 when it cannot keep up): this
                    // step fails with what was delivered, and the run ends.
                    eprintln!("sender connection lost at {rate} msg/s: {e}");
                    sender_lost = true;
                    break;
                }
                sent += 1;
            }
            if sender_lost {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // let this step's deliveries land
        let h = shared.step_hist(k);
        let delivered = h.count();
        let per_delivery = |cpu: f64| cpu * 1e6 / delivered.max(1) as f64;
        let server_cpu_us_per_delivery = server_cpu0
            .zip(a.server_pid.and_then(cpu_secs))
            .map(|(c0, c1)| per_delivery(c1 - c0));
        let client_cpu_us_per_delivery =
            per_delivery(cpu_secs(std::process::id()).unwrap_or(0.0) - client_cpu0);
        // A lost sender fails the step even if what it sent was all delivered.
        let expected = if sender_lost { total } else { sent } * connected as u64;
        let lost = expected.saturating_sub(delivered);
        let step = Step {
            rate,
            sent,
            expected,
            delivered,
            lost,
            delivered_per_s: delivered as f64 / a.step_secs as f64,
            p50_ms: h.ms(0.5),
            p99_ms: h.ms(0.99),
            max_ms: h.max_ms(),
            held: lost == 0 && h.ms(0.99) <= a.max_p99_ms,
            server_cpu_us_per_delivery,
            client_cpu_us_per_delivery,
        };
        eprintln!(
            "step {rate:>5} msg/s: delivered {:>9} of {:>9} ({:>9.0}/s)  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  lost {:>7}  cpu/delivery server {} client {:.2} µs  {}",
            step.delivered,
            step.expected,
            step.delivered_per_s,
            step.p50_ms,
            step.p99_ms,
            step.max_ms,
            step.lost,
            step.server_cpu_us_per_delivery
                .map_or("-".into(), |c| format!("{c:.2} µs")),
            step.client_cpu_us_per_delivery,
            if step.held { "held" } else { "FAILED" }
        );
        let failed = !step.held;
        steps.push(step);
        if sender_lost || (failed && !a.keep_going) {
            break;
        }
    }
    drain.abort();
    let server_rss_kib = a.server_pid.and_then(rss_kib);
    for r in readers {
        r.abort();
    }
    // The ceiling is the last step that held before the first that did not (later steps
    // are shown with --keep-going but do not count).
    let best = steps.iter().take_while(|s| s.held).last();
    let result = FanoutResult {
        target: a.target,
        viewers: a.viewers,
        connected,
        ceiling_rate: best.map_or(0, |s| s.rate),
        ceiling_delivered_per_s: best.map_or(0.0, |s| s.delivered_per_s),
        steps,
        server_rss_kib,
        closes: shared.closes.load(Relaxed),
    };
    println!(
        "{:?}: ceiling {} msg/s x {} viewers = {:.0} deliveries/s (p99 <= {} ms, nothing lost)",
        result.target, result.ceiling_rate, connected, result.ceiling_delivered_per_s, a.max_p99_ms
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}
