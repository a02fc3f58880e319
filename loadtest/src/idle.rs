//! `idle`: hold N viewers connected to one room and report the hub's RSS per viewer.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;

use crate::stats::rss_kib;

#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Hub base URL: ws://HOST:PORT (http://HOST:PORT is taken as ws://).
    #[arg(long, default_value = "ws://127.0.0.1:8080", value_parser = crate::hub_url::parse)]
    url: String,
    #[arg(long, default_value = "idle")]
    room: String,
    #[arg(long, default_value_t = 5000)]
    viewers: usize,
    /// The hub's PID, to read its resident memory.
    #[arg(long)]
    hub_pid: u32,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds to hold the viewers after all connected, before measuring.
    #[arg(long, default_value_t = 3)]
    settle: u64,
}

pub async fn run(a: IdleArgs) -> anyhow::Result<()> {
    let before = rss_kib(a.hub_pid).context("cannot read the hub's RSS")?;
    let url = format!("{}/ws/rooms/{}", a.url.trim_end_matches('/'), a.room);
    let started = std::time::Instant::now();
    let conns = futures_util::stream::iter(0..a.viewers)
        .map(|_| {
            let url = url.clone();
            async move {
                let mut ws = crate::stats::connect(url.as_str())
                    .await
                    .map_err(|e| crate::failures::ws_reason(&e))?;
                ws.next().await; // welcome
                Ok::<_, String>(ws)
            }
        })
        .buffer_unordered(a.concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut held = Vec::with_capacity(conns.len());
    let failures = crate::failures::Failures::default();
    let mut failed = 0;
    for c in conns {
        match c {
            Ok(ws) => held.push(ws),
            Err(reason) => {
                failed += 1;
                failures.note(reason);
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    // Keep every socket drained so queued viewer counts do not count as "idle" memory.
    let mut readers = Vec::new();
    for mut ws in held {
        readers.push(tokio::spawn(
            async move { while ws.next().await.is_some() {} },
        ));
    }
    tokio::time::sleep(Duration::from_secs(a.settle)).await;
    let after = rss_kib(a.hub_pid).context("cannot read the hub's RSS")?;
    let n = readers.len();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n.max(1) as f64;
    println!("viewers connected: {n} (failed {failed}) in {connect_secs:.2} s");
    let (reasons, more) = crate::failures::top(&failures.snapshot(), crate::failures::SHOWN);
    for reason in reasons {
        println!("  failed: {reason}");
    }
    if more > 0 {
        println!("  failed: … and {more} other reasons");
    }
    println!("hub RSS before: {before} KiB, after: {after} KiB");
    println!(
        "RSS per idle viewer: {per:.0} bytes ({:.2} KiB)",
        per / 1024.0
    );
    for r in readers {
        r.abort();
    }
    Ok(())
}
