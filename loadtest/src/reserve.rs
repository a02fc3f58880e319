//! `reserve`: N buyers tap reserve in closed loops (send, wait for the answer, repeat) on one
//! deal with ample stock, through the hub's WebSocket path. Reports reserves per second and the
//! latency each buyer saw. With `--checkout` each hold is checked out before the next reserve:
//! orders per second (each one an order event in the feed, and a webhook where any is set).
//! With `--bid` they bid instead, in closed loops on one hour-long auction, each a random amount
//! up to 100,000,000 cents as its own maximum (a share accepted, the rest `too_low`, as in a
//! bidding war: the same mix as `scripts/bench-bids.sh`'s ceiling for the script): bids per
//! second and their latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::{AuctionSpec, ClientMsg, DealSpec, Id, Role};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::percentile;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Args)]
pub struct ReserveArgs {
    /// Hub base URLs, ws://HOST:PORT (or http://), comma separated; buyers are spread over them.
    #[arg(long, default_value = "ws://127.0.0.1:8080", value_parser = crate::hub_url::parse, value_delimiter = ',')]
    url: Vec<String>,
    #[arg(long, default_value = "bench")]
    room: String,
    #[arg(long, default_value_t = 500)]
    buyers: usize,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The hub's token secret (auth.secret).
    #[arg(long, env = "LIVEHUB_AUTH__SECRET", default_value = livehub::config::DEV_SECRET)]
    secret: String,
    /// Check out each hold (and wait for the order) before the next reserve.
    #[arg(long)]
    checkout: bool,
    /// Bid on an auction instead of reserving (the hub under test needs a bid rate above
    /// what one closed loop sends: LIVEHUB_LIMITS__BID_RATE_PER_SEC and _BID_BURST).
    #[arg(long, conflicts_with = "checkout")]
    bid: bool,
}

/// Opens a deal big enough never to sell out, has `--buyers` viewers reserve one unit after
/// another for `--duration` seconds, and prints the reserves per second and their latency.
pub async fn run(a: ReserveArgs) -> anyhow::Result<()> {
    let auth = Authenticator::new(&a.secret, false);
    let exp = Some(livehub::clock::now_ms() / 1000 + 3600);
    let deal = Id::new(format!("bench{}", livehub::clock::now_ms())).map_err(anyhow::Error::msg)?;
    host_command(&a, &auth, exp, opening(&deal, a.bid)?).await?;

    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..a.buyers {
        let ws = connect_buyer(&a, &auth, exp, i).await?;
        let (go, deal, secs) = (go_rx.clone(), deal.clone(), a.duration);
        let how = if a.bid {
            Loop::Bid { seed: i as u64 + 1 }
        } else {
            Loop::Reserve {
                checkout: a.checkout,
            }
        };
        tasks.push(tokio::spawn(reserve_until(ws, go, deal, secs, how)));
    }
    println!(
        "{} buyers connected; reserving for {} s",
        tasks.len(),
        a.duration
    );
    let started = Instant::now();
    let _ = go_tx.send(true);
    let (mut all, mut ok, mut other, mut orders) = (Vec::new(), 0u64, 0u64, 0u64);
    for t in tasks {
        let r = t.await?;
        all.extend(r.latencies);
        ok += r.reserved;
        other += r.other;
        orders += r.orders;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let what = if a.bid { "bid" } else { "reserve" };
    if a.bid {
        println!("bids accepted: {ok}, rejected: {other}, in {secs:.2} s");
        println!("bids/s: {:.0}", (ok + other) as f64 / secs);
    } else {
        println!("reserved: {ok}, other answers: {other}, in {secs:.2} s");
        println!("reserves/s: {:.0}", ok as f64 / secs);
    }
    if a.checkout {
        println!("orders: {orders}, checkouts/s: {:.0}", orders as f64 / secs);
    }
    println!(
        "{what} latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&all, 50.0) as f64 / 1000.0,
        percentile(&all, 90.0) as f64 / 1000.0,
        percentile(&all, 99.0) as f64 / 1000.0,
        all.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    Ok(())
}

/// What the buyers work on, under `id`: a deal of 10,000,000 units (as many per buyer) for an
/// hour, or (`bid`) an hour-long auction from 1 cent in steps of 1.
fn opening(id: &Id, bid: bool) -> anyhow::Result<ClientMsg> {
    let product_id = Id::new("p").map_err(anyhow::Error::msg)?;
    if bid {
        return Ok(ClientMsg::AuctionStart {
            auction: AuctionSpec {
                id: id.clone(),
                product_id,
                title: Some("Test product".into()),
                image_url: None,
                currency: "USD".into(),
                start_cents: 1,
                increment_cents: 1,
                duration_ms: 3_600_000,
                extend_ms: 0,
                sudden_death: false,
                commission_bps: 0,
                affiliate_bps: 0,
                creator: None,
            },
            request_id: None,
        });
    }
    Ok(ClientMsg::DealStart {
        deal: DealSpec {
            id: id.clone(),
            product_id,
            title: Some("Test product".into()),
            image_url: None,
            price_cents: 100,
            currency: "USD".into(),
            stock: 10_000_000,
            per_user_limit: 10_000_000,
            duration_ms: 3_600_000,
            commission_bps: 0,
            affiliate_bps: 0,
        },
        request_id: None,
    })
}

/// Sends `start` as the room's host, over HTTP.
async fn host_command(
    a: &ReserveArgs,
    auth: &Authenticator,
    exp: Option<u64>,
    start: ClientMsg,
) -> anyhow::Result<()> {
    let host = auth.mint(&Claims {
        sub: "benchhost".into(),
        name: None,
        role: Role::Host,
        room: a.room.clone(),
        exp,
        src: None,
        aff: None,
    })?;
    let http = a.url[0].replacen("ws://", "http://", 1);
    let (status, text) = livehub::http_client::request(
        "POST",
        &format!("{http}/api/rooms/{}/commands", a.room),
        Some(&host),
        Some(serde_json::to_string(&start)?),
    )
    .await?;
    anyhow::ensure!(status == 200, "opening the bench: HTTP {status} {text}");
    Ok(())
}

/// Connects buyer `i` (round robin over the URLs) and reads its welcome.
async fn connect_buyer(
    a: &ReserveArgs,
    auth: &Authenticator,
    exp: Option<u64>,
    i: usize,
) -> anyhow::Result<Ws> {
    let token = auth.mint(&Claims {
        sub: format!("buyer{i}"),
        name: None,
        role: Role::Viewer,
        room: a.room.clone(),
        exp,
        src: None,
        aff: None,
    })?;
    let url = format!(
        "{}/ws/rooms/{}?token={token}",
        a.url[i % a.url.len()].trim_end_matches('/'),
        a.room
    );
    let mut ws = crate::stats::connect(url.as_str())
        .await
        .context("buyer connect")?;
    ws.next().await;
    Ok(ws)
}

/// What one buyer did.
struct Tally {
    /// Each reserve's latency (µs).
    latencies: Vec<u64>,
    reserved: u64,
    other: u64,
    orders: u64,
}

/// The next answer to a request (`reserved`, `rejected`, `order` or `error`), as text, skipping
/// the room's broadcasts; None when the connection ended.
async fn answer(ws: &mut Ws) -> Option<String> {
    const ANSWERS: [&str; 5] = [
        r#"{"type":"reserved""#,
        r#"{"type":"bid_accepted""#,
        r#"{"type":"rejected""#,
        r#"{"type":"order""#,
        r#"{"type":"error""#,
    ];
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let s = t.as_str();
                if ANSWERS.iter().any(|a| s.starts_with(a)) {
                    return Some(s.to_owned());
                }
            }
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

/// What each turn of a buyer's loop does.
#[derive(Clone, Copy)]
enum Loop {
    /// Reserve one unit (and, with `checkout`, check the hold out).
    Reserve { checkout: bool },
    /// Bid a random amount (from the buyer's own `seed`) as its own maximum.
    Bid { seed: u64 },
}

/// One turn's command: a reserve of one unit, or (with a generator) a bid of a random amount
/// up to 100,000,000 cents.
fn turn(rng: Option<&mut u64>, request_id: Id, deal: &Id) -> ClientMsg {
    match rng {
        Some(x) => {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            ClientMsg::Bid {
                request_id,
                auction: deal.clone(),
                amount_cents: 1 + *x % 100_000_000,
                max_cents: None,
            }
        }
        None => ClientMsg::Reserve {
            request_id,
            deal: deal.clone(),
            qty: 1,
        },
    }
}

/// Once `go`, reserves one unit of `deal` (or bids on it) at a time, each after the last one's
/// answer (and, with a checkout, after checking the hold out), for `secs` seconds.
async fn reserve_until(
    mut ws: Ws,
    mut go: tokio::sync::watch::Receiver<bool>,
    deal: Id,
    secs: u64,
    how: Loop,
) -> Tally {
    let _ = go.changed().await;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut t = Tally {
        latencies: Vec::new(),
        reserved: 0,
        other: 0,
        orders: 0,
    };
    let mut n = 0u64;
    let (checkout, mut rng) = match how {
        Loop::Reserve { checkout } => (checkout, None),
        Loop::Bid { seed } => (false, Some(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)),
    };
    while Instant::now() < end {
        n += 1;
        let Ok(request_id) = Id::new(format!("q{n}")) else {
            break;
        };
        let Ok(frame) = serde_json::to_string(&turn(rng.as_mut(), request_id, &deal)) else {
            break;
        };
        let sent = Instant::now();
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
        let Some(reply) = answer(&mut ws).await else {
            break;
        };
        t.latencies.push(sent.elapsed().as_micros() as u64);
        let taken = reply.starts_with(r#"{"type":"reserved""#)
            || reply.starts_with(r#"{"type":"bid_accepted""#);
        if !taken {
            t.other += 1;
            continue;
        }
        t.reserved += 1;
        if !checkout {
            continue;
        }
        let reservation = serde_json::from_str::<serde_json::Value>(&reply)
            .ok()
            .and_then(|v| v["reservation"].as_str().map(str::to_owned));
        let (Some(reservation), Ok(request_id)) = (reservation, Id::new(format!("k{n}"))) else {
            break;
        };
        let Ok(reservation) = Id::new(reservation) else {
            break;
        };
        let Ok(frame) = serde_json::to_string(&ClientMsg::Checkout {
            request_id,
            reservation,
        }) else {
            break;
        };
        if ws.send(Message::text(frame)).await.is_err() {
            break;
        }
        match answer(&mut ws).await {
            Some(r) if r.starts_with(r#"{"type":"order""#) => t.orders += 1,
            Some(_) => t.other += 1,
            None => break,
        }
    }
    t
}
