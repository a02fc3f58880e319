//! `fanout`: N viewers in one room; a host posts comments as fast as the hub acknowledges them
//! (a window of outstanding commands). Each comment carries its send time; every viewer records
//! the end-to-end latency and the `seq` it saw, so deliveries per second, latency and loss come
//! from the clients' side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{now_us, percentile, rss_kib};

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    #[arg(long, default_value = "fanout")]
    room: String,
    #[arg(long, default_value_t = 2000)]
    viewers: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Commands in flight before waiting for acks.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Comment text padding, bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// The hub's token secret (auth.secret).
    #[arg(long, env = "LIVEHUB_AUTH__SECRET", default_value = livehub::config::DEV_SECRET)]
    secret: String,
    /// The hub's PID, to report its RSS.
    #[arg(long)]
    hub_pid: Option<u32>,
}

struct ViewerResult {
    received: u64,
    latencies_us: Vec<u64>,
    gaps: u64,
    dups: u64,
}

pub async fn run(a: FanoutArgs) -> anyhow::Result<()> {
    let auth = Authenticator::new(&a.secret, false);
    let exp = Some(livehub::hub::now_ms() / 1000 + 3600);
    let base = format!("{}/ws/rooms/{}", a.url.trim_end_matches('/'), a.room);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut viewers = Vec::new();
    let conns = futures_util::stream::iter(0..a.viewers)
        .map(|i| {
            let token = auth.mint(&Claims {
                sub: format!("v{i}"),
                name: None,
                role: Role::Viewer,
                room: a.room.clone(),
                exp,
            });
            let base = base.clone();
            async move {
                let token = token?;
                let (mut ws, _) =
                    tokio_tungstenite::connect_async(format!("{base}?token={token}").as_str())
                        .await?;
                ws.next().await;
                anyhow::Ok(ws)
            }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>()
        .await;
    for c in conns {
        let mut ws = c.context("viewer connect")?;
        let mut stopped = stopped.clone();
        viewers.push(tokio::spawn(async move {
            let mut r = ViewerResult {
                received: 0,
                latencies_us: Vec::new(),
                gaps: 0,
                dups: 0,
            };
            let mut last_seq = 0u64;
            loop {
                let msg = tokio::select! {
                    _ = stopped.changed() => break,
                    m = ws.next() => m,
                };
                let Some(Ok(Message::Text(t))) = msg else {
                    if msg.is_none() { break } else { continue }
                };
                let s = t.as_str();
                if !s.starts_with("{\"type\":\"comment\"") {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else {
                    continue;
                };
                let seq = v["seq"].as_u64().unwrap_or(0);
                if last_seq != 0 {
                    if seq <= last_seq {
                        r.dups += 1;
                    } else if seq > last_seq + 1 {
                        r.gaps += seq - last_seq - 1;
                    }
                }
                last_seq = seq;
                if let Some(sent) = v["text"]
                    .as_str()
                    .and_then(|t| t.split(' ').next())
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    r.latencies_us.push(now_us().saturating_sub(sent));
                }
                r.received += 1;
            }
            r
        }));
    }
    println!("{} viewers connected", viewers.len());

    let host_token = auth.mint(&Claims {
        sub: "loadhost".into(),
        name: None,
        role: Role::Host,
        room: a.room.clone(),
        exp,
    })?;
    let (host, _) =
        tokio_tungstenite::connect_async(format!("{base}?token={host_token}").as_str()).await?;
    let (mut tx, mut rx) = host.split();
    let pad = "x".repeat(a.size);
    let sem = Arc::new(tokio::sync::Semaphore::new(a.window));
    let acker = {
        let sem = sem.clone();
        tokio::spawn(async move {
            let mut acks = 0u64;
            while let Some(Ok(m)) = rx.next().await {
                if let Message::Text(t) = m
                    && t.as_str().starts_with("{\"type\":\"ack\"")
                {
                    acks += 1;
                    sem.add_permits(1);
                }
            }
            acks
        })
    };
    // The host posts as "comments" via announce? No: comments carry user names and are the chat
    // path. The host's own comments are rate limited per user like anyone's, so run the hub with
    // a raised limits.comment_rate_per_sec for this benchmark (see docs).
    let started = Instant::now();
    let rss_start = a.hub_pid.and_then(rss_kib);
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(a.duration) {
        let permit = sem.acquire().await?;
        permit.forget();
        let text = format!("{} {pad}", now_us());
        tx.send(Message::text(
            serde_json::json!({"type": "comment", "request_id": format!("c{sent}"), "text": text})
                .to_string(),
        ))
        .await?;
        sent += 1;
    }
    let send_secs = started.elapsed().as_secs_f64();
    // Let in-flight deliveries land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_end = a.hub_pid.and_then(rss_kib);
    let _ = stop.send(true);
    let _ = tx.close().await;
    let acks = acker.await.unwrap_or(0);
    let mut all = Vec::new();
    let (mut received, mut gaps, mut dups, mut short) = (0u64, 0u64, 0u64, 0u64);
    let n = viewers.len();
    for v in viewers {
        let r = v.await?;
        received += r.received;
        gaps += r.gaps;
        dups += r.dups;
        if r.received < acks {
            short += acks - r.received;
        }
        all.extend(r.latencies_us);
    }
    all.sort_unstable();
    println!(
        "comments sent: {sent} in {send_secs:.2} s ({:.0}/s), acknowledged: {acks}",
        sent as f64 / send_secs
    );
    println!(
        "deliveries: {received} ({:.0}/s over the send window)",
        received as f64 / send_secs
    );
    println!(
        "latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&all, 50.0) as f64 / 1000.0,
        percentile(&all, 90.0) as f64 / 1000.0,
        percentile(&all, 99.0) as f64 / 1000.0,
        all.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "lost (seq gaps): {gaps}, duplicates: {dups}, missing vs acks: {short} across {n} viewers"
    );
    if let (Some(s), Some(e)) = (rss_start, rss_end) {
        println!("hub RSS: {s} KiB -> {e} KiB");
    }
    Ok(())
}
