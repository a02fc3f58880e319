//! Webhooks (issue 23) against a real receiver (`common::receiver`): every order event POSTed,
//! signed, at least once and each order's in order, through a receiver that fails, hangs and
//! goes down; a node killed mid-delivery on Redis loses nothing (the other takes its lease);
//! events given up become dead letters that `livehub webhooks replay` sends once the receiver
//! is back.

use crate::common;
use crate::orders::{buy, deal_start, paying, read_all, settle, stories};

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::nodes::{SECRET, engine_env, join};
use common::receiver::{Misbehave, Received, Receiver};
use common::redis::Engine;
use common::{HubProcess, TestHub, mint, test_config};
use livehub::config::{Config, WebhookEndpoint};
use livehub::orders::{OrderEvent, OrderEventKind};
use livehub::protocol::Role;
use serde_json::{Value, json};

const HOOK_SECRET: &str = "whsec_test_0123456789";

/// `config` with one endpoint, `shop`, at `url`: fast retries, short timeouts, a short lease.
fn hooked(config: Config, url: &str) -> Config {
    hooked_in_batches(config, url, 1)
}

/// [`hooked`], with up to `batch` events per POST.
fn hooked_in_batches(config: Config, url: &str, batch: usize) -> Config {
    let mut c = config;
    c.webhooks.endpoints = vec![WebhookEndpoint {
        name: "shop".into(),
        url: url.into(),
        secret: HOOK_SECRET.into(),
        events: vec![],
        batch,
    }];
    c.webhooks.timeout_ms = 300;
    c.webhooks.backoff_min_ms = 20;
    c.webhooks.backoff_max_ms = 300;
    c.webhooks.lease_ms = 1_500;
    c
}

/// The kinds of each order's events in the order the receiver first accepted them; every body's
/// id is its `Livehub-Event-Id`.
fn delivered_stories(received: &[Received]) -> BTreeMap<String, Vec<OrderEventKind>> {
    let mut seen = HashSet::new();
    let mut out: BTreeMap<String, Vec<OrderEventKind>> = BTreeMap::new();
    for r in received {
        assert_eq!(
            r.body["id"],
            r.id.as_str(),
            "the header names the body's event"
        );
        if seen.insert(r.id.clone()) {
            let e: OrderEvent = serde_json::from_value(r.body.clone()).expect("an order event");
            out.entry(e.order.id.to_string()).or_default().push(e.kind);
        }
    }
    out
}

fn ids(received: &[Received]) -> HashSet<String> {
    received.iter().map(|r| r.id.clone()).collect()
}

/// `GET /api/webhooks` on `base` with `token`: the endpoints' status.
async fn status(base: &str, token: &str) -> anyhow::Result<Value> {
    let url = format!("http://{base}/api/webhooks");
    let (code, body) = livehub::http_client::request("GET", &url, Some(token), None).await?;
    anyhow::ensure!(code == 200, "webhooks status: HTTP {code}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Runs the `livehub` binary with `args`: exit code, stdout, stderr.
async fn cli(args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_livehub"))
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_event_reaches_a_flaky_receiver_signed_and_in_order_per_order()
-> anyhow::Result<()> {
    flaky_receiver_gets_every_event(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_events_reach_a_flaky_receiver_signed_and_in_order_per_order() -> anyhow::Result<()>
{
    flaky_receiver_gets_every_event(4).await
}

/// Nine orders paid, failed or left to expire, delivered `batch` events per POST to a receiver
/// that fails a third of the requests, never answers one in seven and is down for a spell:
/// every event arrives, signed, each order's in order.
async fn flaky_receiver_gets_every_event(batch: usize) -> anyhow::Result<()> {
    // A third of the requests answered 500, one in seven never answered, and a spell down.
    let misbehave = Misbehave {
        fail_every: 3,
        hang_every: 7,
    };
    let mut receiver = Receiver::start(HOOK_SECRET, misbehave).await?;
    let config = hooked_in_batches(paying(3_000), &receiver.url(), batch);
    let hub = TestHub::with_config(config).await?;
    let base = hub.addr.to_string();
    let room = "hooks";
    let host = hub.token(Role::Host, room, "host");
    let (code, body) = hub
        .post_command(room, Some(&host), &deal_start("mugs", 9))
        .await?;
    assert_eq!(code, 200, "{body}");
    let merchant = hub.token(Role::Merchant, "*", "shop-backend");
    for i in 0..9 {
        if i == 3 {
            receiver.down();
        }
        let (mut buyer, _) = hub.viewer(room, &format!("b{i}")).await?;
        let order = buy(&mut buyer, "mugs", &format!("{i}")).await?;
        let order = order["order"].as_str().unwrap_or_default().to_owned();
        // Settled at once, well within the payment window (a loaded machine took longer than
        // the window to make all nine before settling any).
        let what = match i % 3 {
            0 => Some("paid"),
            1 => Some("failed"),
            _ => None, // left to expire
        };
        if let Some(what) = what {
            let (code, body) = settle(&base, Some(&merchant), &order, what).await;
            assert_eq!(code, 200, "{body}");
        }
    }
    // Down while six orders were made: each attempt meanwhile is a refused connection.
    tokio::time::sleep(Duration::from_millis(500)).await; // a span of downtime: nothing to await
    receiver.up().await?;
    // 9 created, 3 paid, 3 failed, 3 expired.
    receiver
        .wait_until(Duration::from_secs(60), |acc| ids(acc).len() >= 18)
        .await?;
    let (feed, _) = read_all(&base, &merchant, None, 100).await?;
    assert_eq!(feed.len(), 18, "{feed:?}");
    let accepted = receiver.accepted();
    assert_eq!(
        ids(&accepted),
        feed.iter().map(|e| e.id.clone()).collect(),
        "every feed event delivered, nothing else"
    );
    assert_eq!(
        delivered_stories(&accepted),
        stories(&feed),
        "each order's events in order"
    );
    assert_eq!(receiver.bad_signatures(), 0);
    assert!(receiver.refused() > 0, "the receiver refused some");
    // The receiver has every event; the sender counts each once its answer is read back,
    // which on a loaded machine may come a moment later.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let s = loop {
        let s = status(&base, &merchant).await?;
        if s[0]["delivered"].as_u64() >= Some(18) || tokio::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polling the status API
    };
    let shop = &s[0];
    assert_eq!(shop["name"], "shop", "{s}");
    assert!(shop["delivered"].as_u64() >= Some(18), "{s}");
    assert!(shop["failures"].as_u64() >= Some(1), "{s}");
    assert_eq!(shop["dead"], 0, "{s}");
    let (code, metrics) =
        livehub::http_client::request("GET", &hub.http_url("/metrics"), None, None).await?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains(r#"livehub_webhooks_delivered_total{endpoint="shop"}"#),
        "{metrics}"
    );
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_delivery_loses_nothing_as_another_takes_its_lease() -> anyhow::Result<()>
{
    // One in four requests never answered (300 ms each): the takeover meets timeouts too.
    let misbehave = Misbehave {
        fail_every: 0,
        hang_every: 4,
    };
    let mut receiver = Receiver::start(HOOK_SECRET, misbehave).await?;
    let redis = Engine::shared("single");
    let file = std::env::temp_dir().join(format!("livehub-hooks-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "[webhooks]\ntimeout_ms = 300\nbackoff_min_ms = 20\nbackoff_max_ms = 200\n\
             lease_ms = 1500\nconcurrency = 2\n\n[[webhooks.endpoints]]\nname = \"shop\"\n\
             url = \"{}\"\nsecret = \"{HOOK_SECRET}\"\n",
            receiver.url()
        ),
    )?;
    let env = engine_env(&redis);
    let log = |i: usize| {
        std::env::temp_dir().join(format!("livehub-hooks-{}-{i}.log", std::process::id()))
    };
    let first = HubProcess::start_with_file(&env, Some(&file), Some(&log(0))).await?;
    let room = "hooked-duo";
    let (mut host, _) = join(&first, room, Role::Host, "host", None).await?;
    host.send(serde_json::from_str(&deal_start("d", 12))?)
        .await?;
    host.next_of("deal").await?;
    // Three orders delivered, then the receiver down until the first node is dead, and nine
    // more orders: the node dies mid-delivery however fast it was going (its attempts meanwhile
    // fail and wait for a retry).
    for i in 0..12 {
        if i == 3 {
            receiver
                .wait_until(Duration::from_secs(30), |acc| ids(acc).len() >= 3)
                .await?;
            receiver.down();
        }
        let (mut b, _) = join(&first, room, Role::Viewer, &format!("b{i}"), None).await?;
        buy(&mut b, "d", &format!("{i}")).await?;
    }
    let merchant = mint(SECRET, Role::Merchant, "*", "shop-backend");
    let holder = status(&first.addr.to_string(), &merchant).await?[0]["holder"].clone();
    assert!(holder.is_string(), "the first node delivers: {holder}");
    let second = HubProcess::start_with_file(&env, Some(&file), Some(&log(1))).await?;
    drop(host);
    first.kill().await;
    let before = ids(&receiver.accepted()).len();
    assert!(before < 12, "killed mid-delivery: {before} of 12 delivered");
    receiver.up().await?;
    let (feed, _) = read_all(&second.addr.to_string(), &merchant, None, 100).await?;
    let room_events: Vec<&OrderEvent> = feed
        .iter()
        .filter(|e| e.order.room.as_str() == room)
        .collect();
    assert_eq!(room_events.len(), 12);
    receiver
        .wait_until(Duration::from_secs(60), |acc| {
            let got = ids(acc);
            room_events.iter().all(|e| got.contains(&e.id))
        })
        .await?;
    let s = status(&second.addr.to_string(), &merchant).await?;
    assert!(
        s[0]["holder"].is_string() && s[0]["holder"] != holder,
        "the second node took the lease: {s}"
    );
    assert_eq!(s[0]["dead"], 0, "{s}");
    assert_eq!(receiver.bad_signatures(), 0);
    let _ = std::fs::remove_file(&file);
    second.kill().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_given_up_are_dead_letters_that_replay_sends_once_the_receiver_is_back()
-> anyhow::Result<()> {
    let mut receiver = Receiver::start(HOOK_SECRET, Misbehave::default()).await?;
    receiver.down();
    let mut config = hooked(test_config(), &receiver.url());
    config.webhooks.retry_for_ms = 1_000;
    let hub = TestHub::with_config(config).await?;
    let base = hub.addr.to_string();
    let url = format!("ws://{base}");
    let room = "dead";
    let host = hub.token(Role::Host, room, "host");
    let (code, body) = hub
        .post_command(room, Some(&host), &deal_start("d", 2))
        .await?;
    assert_eq!(code, 200, "{body}");
    for i in 0..2 {
        let (mut b, _) = hub.viewer(room, &format!("b{i}")).await?;
        buy(&mut b, "d", &format!("{i}")).await?;
    }
    let merchant = hub.token(Role::Merchant, "*", "shop-backend");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while status(&base, &merchant).await?[0]["dead"] != 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no dead letters");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling the status for the give-up
    }
    let (code, out, err) =
        cli(&["webhooks", "status", "--url", &url, "--token", &merchant]).await?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("shop http://") && out.contains(" dead 2"),
        "{out}"
    );
    assert!(out.contains("last-error"), "{out}");

    // Refusals: an unknown endpoint, a cursor the feed never wrote, a viewer's token.
    let (code, _, err) = cli(&[
        "webhooks", "replay", "nope", "--url", &url, "--token", &merchant,
    ])
    .await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nope"), "{err}");
    let args = [
        "webhooks", "replay", "shop", "--from", "bogus", "--url", &url, "--token", &merchant,
    ];
    let (code, _, err) = cli(&args).await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad_request"), "{err}");
    let viewer = hub.token(Role::Viewer, room, "ana");
    let (code, _, err) = cli(&[
        "webhooks", "replay", "shop", "--url", &url, "--token", &viewer,
    ])
    .await?;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");

    receiver.up().await?;
    let (code, out, err) = cli(&[
        "webhooks", "replay", "shop", "--url", &url, "--token", &merchant,
    ])
    .await?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""endpoint":"shop""#), "{out}");
    receiver
        .wait_until(Duration::from_secs(30), |acc| ids(acc).len() == 2)
        .await?;
    let s = status(&base, &merchant).await?;
    assert_eq!(s[0]["dead"], 0, "{s}");
    assert_eq!(
        json!(
            receiver
                .accepted()
                .iter()
                .map(|r| r.body["type"].clone())
                .collect::<Vec<_>>()
        ),
        json!(["created", "created"])
    );
    hub.shutdown().await
}
