//! `webhook-sink`: a webhook receiver for benchmarks. It checks each request's
//! `Livehub-Signature`, takes one event or a batch (`{"events": [...]}`), answers 200, and when no request came for `--idle-exit` seconds (after
//! the first) reports how many events it got, how many were repeats, and the webhook lag: from
//! each event's `ts` (when the order changed) to its arrival here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use livehub::webhooks::sign;
use parking_lot::Mutex;

use crate::stats::percentile;

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: std::net::SocketAddr,
    /// The endpoint's secret (`[[webhooks.endpoints]] secret`).
    #[arg(long)]
    secret: String,
    /// Stop when no request came for this many seconds (after the first).
    #[arg(long, default_value_t = 3)]
    idle_exit: u64,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    repeats: u64,
    bad: u64,
    /// Lag of each first arrival, µs.
    lag: Vec<u64>,
    last: Option<Instant>,
}

/// Serves until idle, then prints the report; false when a signature did not verify.
pub async fn run(a: SinkArgs) -> anyhow::Result<bool> {
    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    println!("webhook sink on http://{}/", listener.local_addr()?);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let secret = Arc::new(a.secret.clone());
    let idle = Duration::from_secs(a.idle_exit);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        // Requests come over kept-alive connections: idleness is read from the last request,
        // not from the accepts.
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tick.tick() => {
                if seen.lock().last.is_some_and(|l| l.elapsed() >= idle) {
                    break;
                }
                continue;
            }
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let (seen, secret) = (Arc::clone(&seen), Arc::clone(&secret));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (seen, secret) = (Arc::clone(&seen), Arc::clone(&secret));
                async move { Ok::<_, std::convert::Infallible>(take(req, &seen, &secret).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    let mut s = seen.lock();
    s.lag.sort_unstable();
    let ms = |p: f64| percentile(&s.lag, p) as f64 / 1000.0;
    println!(
        "events: {} (repeats {}, bad signatures {})",
        s.ids.len(),
        s.repeats,
        s.bad
    );
    println!(
        "webhook lag ms: p50 {:.1}  p99 {:.1}  max {:.1}",
        ms(50.0),
        ms(99.0),
        s.lag.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    Ok(s.bad == 0)
}

async fn take(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Seen>,
    secret: &str,
) -> hyper::Response<Full<Bytes>> {
    let signature = req
        .headers()
        .get(sign::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let now_ms = livehub::clock::now_ms();
    let mut s = seen.lock();
    s.last = Some(Instant::now());
    if sign::verify(secret, &signature, &body, now_ms / 1000).is_err() {
        s.bad += 1;
        return hyper::Response::builder()
            .status(400)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    // One event, or a batch of them (`{"events": [...]}`, an endpoint with `batch` above 1).
    let events = match json.get_mut("events").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(events)) => events,
        _ => vec![json],
    };
    for event in events {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        if s.ids.insert(id) {
            let ts = event["ts"].as_u64().unwrap_or(now_ms);
            s.lag.push(now_ms.saturating_sub(ts) * 1000);
        } else {
            s.repeats += 1;
        }
    }
    hyper::Response::new(Full::new(Bytes::new()))
}
