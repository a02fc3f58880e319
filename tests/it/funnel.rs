//! The show funnel end to end (issue 14): viewers from several channels, some brought by an
//! affiliate, join, see deals, tap, hold, cancel, check out, hit sold-out and the per-user
//! limit. The room's funnel, timeline and the creators' earnings must equal what this test
//! computes from the replies it received, exactly: on the memory backend, on Redis, and with
//! the viewers spread over two hub processes on one Redis.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use common::redis::RedisServer;
use common::{Client, HubProcess, TestHub, redis_config, test_config};
use livehub::protocol::{Role, ServerMsg};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-0123456789";
const ROOM: &str = "show";
const HOST: &str = "ana";
const AFF: &str = "bo";
const PRICE: u64 = 1999;
/// 10%: 199.9 cents per order, paid 199.
const COMMISSION_BPS: u64 = 1000;
/// 5%: 99.95 cents per order, paid 99.
const AFFILIATE_BPS: u64 = 500;
const ENGAGED_MS: u64 = 2_000;

fn token(role: Role, room: &str, sub: &str, src: Option<&str>, aff: Option<&str>) -> String {
    common::mint_attributed(SECRET, role, room, sub, src, aff)
}

/// One viewer of the show and what the test expects of it.
struct Viewer {
    user: &'static str,
    /// The `src` claim.
    src: Option<&'static str>,
    /// The `aff` claim.
    aff: Option<&'static str>,
    /// Extra query parameters (`src=`, and an `aff=` that must earn nothing).
    query: &'static str,
    /// The channel the funnel must count this viewer in.
    channel: &'static str,
}

const VIEWERS: [Viewer; 7] = [
    Viewer {
        user: "v1",
        src: Some("paid"),
        aff: Some(AFF),
        query: "",
        channel: "paid",
    },
    Viewer {
        user: "v2",
        src: Some("paid"),
        aff: None,
        query: "&src=live",
        channel: "paid",
    },
    Viewer {
        user: "v3",
        src: None,
        aff: None,
        query: "&src=creator&aff=bo",
        channel: "creator",
    },
    Viewer {
        user: "v4",
        src: Some("live"),
        aff: Some(AFF),
        query: "",
        channel: "live",
    },
    Viewer {
        user: "v5",
        src: Some("short_video"),
        aff: None,
        query: "",
        channel: "short_video",
    },
    Viewer {
        user: "v6",
        src: Some("product_card"),
        aff: None,
        query: "",
        channel: "product_card",
    },
    Viewer {
        user: "v7",
        src: Some("made_up"),
        aff: None,
        query: "",
        channel: "direct",
    },
];

fn url(node: SocketAddr, room: &str, token: &str, query: &str) -> String {
    format!("ws://{node}/ws/rooms/{room}?token={token}{query}")
}

async fn get(node: SocketAddr, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    Ok(livehub::http_client::request("GET", &format!("http://{node}{path}"), token, None).await?)
}

/// The room's viewers as `node` counts them (`GET /api/rooms/{ROOM}`).
async fn viewers_on(node: SocketAddr, host: &str) -> Result<u64> {
    let (status, body) = get(node, &format!("/api/rooms/{ROOM}"), Some(host)).await?;
    ensure!(status == 200, "room snapshot: HTTP {status}: {body}");
    serde_json::from_str::<Value>(&body)?["viewers"]
        .as_u64()
        .context("viewers")
}

/// Closes `client` (connected to `node`) and waits until `node` no longer counts it: from then
/// on nothing that happens in the room reaches it (a deal it is not exposed to).
async fn leave(client: Client, node: SocketAddr, host: &str) -> Result<()> {
    let before = viewers_on(node, host).await?;
    client.close().await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while viewers_on(node, host).await? >= before {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{node} still counts the viewer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling the snapshot
    }
    Ok(())
}

async fn host_cmd(host: &mut Client, v: Value) -> Result<()> {
    host.send(v).await?;
    let reply = host
        .next_matching(|m| matches!(m, ServerMsg::Ack { .. } | ServerMsg::Error { .. }))
        .await?;
    ensure!(
        matches!(reply, ServerMsg::Ack { .. }),
        "host command refused: {reply:?}"
    );
    Ok(())
}

async fn request(c: &mut Client, v: Value) -> Result<ServerMsg> {
    let id = v["request_id"].as_str().context("request_id")?.to_owned();
    c.send(v).await?;
    c.next_matching(|m| {
        let answers = |r: &livehub::protocol::Id| r.as_str() == id;
        match m {
            ServerMsg::Reserved { request_id, .. }
            | ServerMsg::Rejected { request_id, .. }
            | ServerMsg::Released { request_id, .. } => answers(request_id),
            ServerMsg::Order { request_id, .. } => request_id.as_ref().is_some_and(answers),
            _ => false,
        }
    })
    .await
}

/// What the test saw, per channel and per creator.
#[derive(Default, Debug)]
struct Truth {
    tapped: BTreeMap<&'static str, u64>,
    held: BTreeMap<&'static str, u64>,
    ordered: BTreeMap<&'static str, u64>,
    gmv: BTreeMap<&'static str, u64>,
    sold_out: BTreeMap<&'static str, u64>,
    orders: u64,
    /// creator -> (orders, gmv, commission)
    creators: BTreeMap<&'static str, (u64, u64, u64)>,
}

impl Truth {
    fn order(&mut self, v: &Viewer, total: u64) {
        self.orders += 1;
        *self.gmv.entry(v.channel).or_default() += total;
        let host = self.creators.entry(HOST).or_default();
        host.0 += 1;
        host.1 += total;
        host.2 += total * COMMISSION_BPS / 10_000;
        if let Some(aff) = v.aff {
            let a = self
                .creators
                .entry(if aff == AFF { AFF } else { "?" })
                .or_default();
            a.0 += 1;
            a.1 += total;
            a.2 += total * AFFILIATE_BPS / 10_000;
        }
    }
}

/// Plays the show with the host on `nodes[0]` and viewer i on `nodes[i % len]`, then checks
/// the funnel, the timeline and the earnings (read through every node) against what it saw.
async fn play_show(nodes: &[SocketAddr]) -> Result<()> {
    let node = |i: usize| nodes[i % nodes.len()];
    let host_token = token(Role::Host, ROOM, HOST, None, None);
    let mut host = Client::connect(&url(nodes[0], ROOM, &host_token, "")).await?;
    host.next_of("welcome").await?;
    host_cmd(
        &mut host,
        json!({"type": "pin", "request_id": "h1", "product": {"id": "scarf", "title": "Merino scarf", "price_cents": PRICE}}),
    )
    .await?;

    let mut clients = Vec::new();
    for (i, v) in VIEWERS.iter().enumerate() {
        let t = token(Role::Viewer, ROOM, v.user, v.src, v.aff);
        let mut c = Client::connect(&url(node(i + 1), ROOM, &t, v.query)).await?;
        c.next_of("welcome").await?;
        clients.push(c);
    }
    // An anonymous viewer counts once, as direct.
    let mut anon = Client::connect(&format!("ws://{}/ws/rooms/{ROOM}", node(2))).await?;
    anon.next_of("welcome").await?;
    // v7 leaves at once: a viewer, never engaged, never exposed.
    let v7 = clients.len();
    leave(clients.pop().context("v7")?, node(v7), &host_token).await?;

    host_cmd(
        &mut host,
        json!({"type": "deal_start", "request_id": "h2", "deal": {"id": "d1", "product_id": "scarf",
            "price_cents": PRICE, "stock": 3, "per_user_limit": 1, "duration_ms": 600_000,
            "commission_bps": COMMISSION_BPS, "affiliate_bps": AFFILIATE_BPS}}),
    )
    .await?;
    for c in clients.iter_mut() {
        c.next_matching(|m| matches!(m, ServerMsg::Deal { deal, .. } if deal.id.as_str() == "d1"))
            .await?;
    }

    let mut truth = Truth::default();
    let reserve = |n: &str| json!({"type": "reserve", "request_id": n, "deal": "d1", "qty": 1});
    // v1, v2, v3, v4 hold the three units in turn (v2 gives its back); v5 finds it sold out;
    // v1 tries again and reaches its limit.
    let plan: [(usize, &str); 6] = [
        (0, "r1"),
        (1, "r2"),
        (2, "r3"),
        (3, "r4"),
        (4, "r5"),
        (0, "r6"),
    ];
    let mut holds: BTreeMap<usize, String> = BTreeMap::new();
    let mut tapped = std::collections::BTreeSet::new();
    for (i, rid) in plan {
        let v = &VIEWERS[i];
        if tapped.insert(i) {
            *truth.tapped.entry(v.channel).or_default() += 1;
        }
        match request(&mut clients[i], reserve(rid)).await? {
            ServerMsg::Reserved { reservation, .. } => {
                *truth.held.entry(v.channel).or_default() += 1;
                holds.insert(i, reservation.to_string());
            }
            ServerMsg::Rejected { reason, .. } => {
                let reason = serde_json::to_value(reason)?;
                if reason == "sold_out" {
                    *truth.sold_out.entry(v.channel).or_default() += 1;
                } else {
                    ensure!(reason == "limit_reached", "unexpected refusal {reason}");
                }
            }
            other => bail!("unexpected answer {other:?}"),
        }
        if rid == "r2" {
            let r = holds.remove(&1).context("v2's hold")?;
            let released = request(
                &mut clients[1],
                json!({"type": "cancel", "request_id": "c2", "reservation": r}),
            )
            .await?;
            ensure!(
                matches!(released, ServerMsg::Released { .. }),
                "{released:?}"
            );
        }
        if rid != "r2" && holds.contains_key(&i) && rid != "r6" {
            let r = holds[&i].clone();
            let checkout =
                json!({"type": "checkout", "request_id": format!("k{i}"), "reservation": r});
            match request(&mut clients[i], checkout.clone()).await? {
                ServerMsg::Order {
                    qty, price_cents, ..
                } => {
                    *truth.ordered.entry(v.channel).or_default() += 1;
                    truth.order(v, u64::from(qty) * price_cents);
                }
                other => bail!("checkout answered {other:?}"),
            }
            // The same checkout again is the same order, counted once.
            let again = request(&mut clients[i], checkout).await?;
            ensure!(matches!(again, ServerMsg::Order { .. }), "{again:?}");
        }
    }
    ensure!(truth.orders == 3, "the plan makes three orders: {truth:?}");

    // v6 stays past engaged_ms, then leaves before the second deal.
    tokio::time::sleep(Duration::from_millis(ENGAGED_MS + 500)).await;
    let v6 = clients.len();
    leave(clients.pop().context("v6")?, node(v6), &host_token).await?;
    host_cmd(
        &mut host,
        json!({"type": "deal_start", "request_id": "h3", "deal": {"id": "d2", "product_id": "scarf",
            "price_cents": PRICE, "stock": 10, "per_user_limit": 1, "duration_ms": 600_000}}),
    )
    .await?;
    host_cmd(
        &mut host,
        json!({"type": "deal_end", "request_id": "h4", "deal": "d1"}),
    )
    .await?;
    for c in clients.iter_mut() {
        c.next_matching(|m| matches!(m, ServerMsg::Deal { deal, .. } if deal.id.as_str() == "d2"))
            .await?;
    }
    // Viewers v1-v5 and the anonymous viewer were exposed to d2; v6 and v7 were not.

    // Viewer tokens and no token are refused.
    let viewer = token(Role::Viewer, ROOM, "v1", None, None);
    let path = format!("/api/rooms/{ROOM}/funnel");
    ensure!(
        get(nodes[0], &path, Some(&viewer)).await?.0 == 403,
        "a viewer token reads no funnel"
    );
    ensure!(
        get(nodes[0], &path, None).await?.0 == 401,
        "no token reads no funnel"
    );
    let other_host = token(Role::Host, "elsewhere", HOST, None, None);
    ensure!(
        get(nodes[0], &path, Some(&other_host)).await?.0 == 403,
        "another room's host is refused"
    );

    // User counts reach the store within a flush; read them through every node.
    let expected = expected_funnel(&truth);
    for n in nodes {
        let funnel = settled_funnel(*n, &host_token, &expected).await?;
        check_funnel(&funnel, &truth)?;
    }
    check_timeline(nodes[nodes.len() - 1], &host_token, &truth).await?;
    check_earnings(nodes[0], &truth).await?;
    drop(anon);
    Ok(())
}

/// The figures the funnel must show, as (JSON pointer, value).
fn expected_funnel(t: &Truth) -> Vec<(String, u64)> {
    let mut out = vec![
        ("/total/viewers".to_owned(), 8),
        ("/total/engaged".to_owned(), 7),
        ("/total/exposed".to_owned(), 7),
        ("/total/tapped".to_owned(), t.tapped.values().sum()),
        ("/total/held".to_owned(), t.held.values().sum()),
        ("/total/ordered".to_owned(), t.ordered.values().sum()),
        ("/total/units".to_owned(), t.orders),
        ("/total/orders".to_owned(), t.orders),
        ("/total/gmv_cents".to_owned(), t.gmv.values().sum()),
        ("/total/sold_out_taps".to_owned(), t.sold_out.values().sum()),
        ("/channels/paid/viewers".to_owned(), 2),
        ("/channels/creator/viewers".to_owned(), 1),
        ("/channels/live/viewers".to_owned(), 1),
        ("/channels/short_video/viewers".to_owned(), 1),
        ("/channels/product_card/viewers".to_owned(), 1),
        ("/channels/direct/viewers".to_owned(), 2),
        ("/channels/direct/engaged".to_owned(), 1),
        ("/channels/direct/exposed".to_owned(), 1),
        ("/channels/product_card/exposed".to_owned(), 1),
        ("/channels/product_card/engaged".to_owned(), 1),
        ("/deals/d1/exposed".to_owned(), 7),
        ("/deals/d2/exposed".to_owned(), 6),
        ("/deals/d2/channels/paid/exposed".to_owned(), 2),
        ("/deals/d1/orders".to_owned(), t.orders),
        ("/deals/d1/sold_out_taps".to_owned(), 1),
        ("/deals/d1/channels/short_video/sold_out_taps".to_owned(), 1),
    ];
    for (ch, n) in &t.tapped {
        out.push((format!("/channels/{ch}/tapped"), *n));
        out.push((format!("/deals/d1/channels/{ch}/tapped"), *n));
    }
    for (ch, n) in &t.held {
        out.push((format!("/channels/{ch}/held"), *n));
    }
    for (ch, n) in &t.ordered {
        out.push((format!("/channels/{ch}/ordered"), *n));
        out.push((format!("/deals/d1/channels/{ch}/ordered"), *n));
    }
    for (ch, n) in &t.gmv {
        out.push((format!("/channels/{ch}/gmv_cents"), *n));
        out.push((format!("/deals/d1/channels/{ch}/gmv_cents"), *n));
    }
    for (c, (orders, gmv, commission)) in &t.creators {
        out.push((format!("/creators/{c}/orders"), *orders));
        out.push((format!("/creators/{c}/gmv_cents"), *gmv));
        out.push((format!("/creators/{c}/commission_cents"), *commission));
    }
    out
}

fn mismatches(funnel: &Value, expected: &[(String, u64)]) -> Vec<String> {
    expected
        .iter()
        .filter(|(p, want)| funnel.pointer(p).and_then(Value::as_u64) != Some(*want))
        .map(|(p, want)| {
            format!(
                "{p}: {} (want {want})",
                funnel.pointer(p).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

async fn settled_funnel(node: SocketAddr, host: &str, expected: &[(String, u64)]) -> Result<Value> {
    let path = format!("/api/rooms/{ROOM}/funnel");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(node, &path, Some(host)).await?;
        ensure!(status == 200, "funnel: HTTP {status}: {body}");
        let funnel: Value = serde_json::from_str(&body)?;
        let wrong = mismatches(&funnel, expected);
        if wrong.is_empty() {
            return Ok(funnel);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "funnel through {node} differs from what the viewers did:\n{}\n{funnel:#}",
                wrong.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the expected figures do not cover: roles, the currency, no user ids.
fn check_funnel(funnel: &Value, t: &Truth) -> Result<()> {
    ensure!(funnel["room"] == ROOM && funnel["currency"] == "USD");
    ensure!(
        funnel["creators"][HOST]["role"] == "host",
        "{}",
        funnel["creators"]
    );
    ensure!(
        funnel["creators"][AFF]["role"] == "affiliate",
        "{}",
        funnel["creators"]
    );
    ensure!(funnel["deals"]["d1"]["title"] == "Merino scarf");
    let text = funnel.to_string();
    for v in &VIEWERS {
        ensure!(
            !text.contains(&format!("\"{}\"", v.user)),
            "the funnel shows no user id"
        );
    }
    ensure!(t.creators.len() == 2, "{:?}", t.creators);
    Ok(())
}

async fn check_timeline(node: SocketAddr, host: &str, t: &Truth) -> Result<()> {
    let (status, body) = get(node, &format!("/api/rooms/{ROOM}/timeline"), Some(host)).await?;
    ensure!(status == 200, "timeline: HTTP {status}: {body}");
    let tl: Value = serde_json::from_str(&body)?;
    ensure!(tl["bucket_ms"] == 10_000);
    let buckets = tl["buckets"].as_array().context("buckets")?;
    let sum = |k: &str| buckets.iter().filter_map(|b| b[k].as_u64()).sum::<u64>();
    ensure!(sum("taps") == 6, "six reserves were sent: {tl}");
    ensure!(sum("orders") == t.orders, "{tl}");
    ensure!(sum("gmv_cents") == t.gmv.values().sum::<u64>(), "{tl}");
    ensure!(
        buckets.iter().any(|b| b["viewers"].as_u64() >= Some(7)),
        "{tl}"
    );
    let ts: Vec<u64> = buckets.iter().filter_map(|b| b["t"].as_u64()).collect();
    ensure!(
        ts.windows(2).all(|w| w[1] == w[0] + 10_000),
        "no gaps: {ts:?}"
    );
    let kinds: Vec<&str> = tl["moments"]
        .as_array()
        .context("moments")?
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    ensure!(
        kinds == ["pin", "deal_start", "deal_start", "deal_end"],
        "{kinds:?}"
    );
    Ok(())
}

async fn check_earnings(node: SocketAddr, t: &Truth) -> Result<()> {
    let path = format!("/api/creators/{AFF}/earnings");
    let viewer = token(Role::Viewer, ROOM, AFF, None, None);
    ensure!(
        get(node, &path, Some(&viewer)).await?.0 == 403,
        "a viewer token reads no earnings"
    );
    let someone_else = token(Role::Host, ROOM, HOST, None, None);
    ensure!(
        get(node, &path, Some(&someone_else)).await?.0 == 403,
        "a host reads only their own"
    );
    let own = token(Role::Host, "any-room", AFF, None, None);
    let (status, body) = get(node, &path, Some(&own)).await?;
    ensure!(status == 200, "earnings: HTTP {status}: {body}");
    let e: Value = serde_json::from_str(&body)?;
    let (orders, gmv, commission) = t.creators[AFF];
    ensure!(
        e["total"]["orders"] == orders && e["total"]["gmv_cents"] == gmv,
        "{e}"
    );
    ensure!(e["total"]["commission_cents"] == commission, "{e}");
    ensure!(
        e["rooms"][ROOM]["deals"]["d1"]["role"] == "affiliate",
        "{e}"
    );

    let admin = token(Role::Admin, "*", "root", None, None);
    let (status, csv) = get(
        node,
        &format!("/api/creators/{HOST}/earnings?format=csv"),
        Some(&admin),
    )
    .await?;
    ensure!(status == 200, "csv: HTTP {status}: {csv}");
    let mut lines = csv.lines();
    ensure!(
        lines.next() == Some("room,deal,role,currency,orders,units,gmv_cents,commission_cents"),
        "{csv}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    ensure!(rows.iter().all(|r| r.len() == 8), "{csv}");
    let d1 = rows
        .iter()
        .find(|r| r[1] == "d1")
        .context("a line for d1")?;
    let (h_orders, h_gmv, h_commission) = t.creators[HOST];
    ensure!(
        d1[..4] == [ROOM, "d1", "host", "USD"]
            && d1[4].parse::<u64>()? == h_orders
            && d1[6].parse::<u64>()? == h_gmv
            && d1[7].parse::<u64>()? == h_commission,
        "{csv}"
    );
    Ok(())
}

fn funnel_config(mut c: livehub::config::Config) -> livehub::config::Config {
    c.auth.secret = SECRET.into();
    c.funnel.engaged_ms = ENGAGED_MS;
    c.funnel.flush_ms = 200;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_on_the_memory_backend_matches_what_the_viewers_did() -> Result<()> {
    let hub = TestHub::with_config(funnel_config(test_config())).await?;
    play_show(&[hub.addr]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_on_redis_matches_what_the_viewers_did() -> Result<()> {
    let redis = RedisServer::start()?;
    let hub = TestHub::with_config(funnel_config(redis_config(&redis.url()))).await?;
    play_show(&[hub.addr]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_of_a_room_on_two_nodes_is_the_sum_of_both() -> Result<()> {
    let redis = RedisServer::start()?;
    let env = vec![
        ("LIVEHUB_AUTH__SECRET", SECRET.to_owned()),
        ("LIVEHUB_INVENTORY__BACKEND", "redis".to_owned()),
        ("LIVEHUB_REDIS__URL", redis.url()),
        ("LIVEHUB_FUNNEL__ENGAGED_MS", ENGAGED_MS.to_string()),
        ("LIVEHUB_FUNNEL__FLUSH_MS", "200".to_owned()),
        ("LIVEHUB_LIMITS__CONNECTIONS_PER_IP", "0".to_owned()),
    ];
    let a = HubProcess::start(&env).await?;
    let b = HubProcess::start(&env).await?;
    play_show(&[a.addr, b.addr]).await
}

/// Issue 19, item 6: a node killed with `kill -9` loses at most its last `funnel.flush_ms` of
/// funnel facts (README, "What a crash loses"). Thirty viewers join, tap and hold on node B;
/// once B's own flush has sent them (node A's reading flushes only A's facts), B is killed and
/// every fact is still there, beside the thirty holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_after_its_flush_loses_no_funnel_fact() -> Result<()> {
    let redis = RedisServer::start()?;
    let env = vec![
        ("LIVEHUB_AUTH__SECRET", SECRET.to_owned()),
        ("LIVEHUB_INVENTORY__BACKEND", "redis".to_owned()),
        ("LIVEHUB_REDIS__URL", redis.url()),
        ("LIVEHUB_FUNNEL__FLUSH_MS", "200".to_owned()),
        ("LIVEHUB_LIMITS__CONNECTIONS_PER_IP", "0".to_owned()),
    ];
    let a = HubProcess::start(&env).await?;
    let b = HubProcess::start(&env).await?;
    let host_token = token(Role::Host, ROOM, HOST, None, None);
    let mut host = Client::connect(&url(a.addr, ROOM, &host_token, "")).await?;
    host.next_of("welcome").await?;
    host_cmd(
        &mut host,
        json!({"type": "deal_start", "request_id": "d", "deal": {
        "id": "d1", "product_id": "p", "title": "P", "price_cents": PRICE, "stock": 100,
        "per_user_limit": 1, "duration_ms": 600_000}}),
    )
    .await?;
    let mut viewers = Vec::new();
    for i in 0..30 {
        let t = token(Role::Viewer, ROOM, &format!("v{i}"), None, None);
        let mut v = Client::connect(&url(b.addr, ROOM, &t, "")).await?;
        v.next_of("welcome").await?;
        let r = request(
            &mut v,
            json!({"type": "reserve", "request_id": "r", "deal": "d1", "qty": 1}),
        )
        .await?;
        ensure!(matches!(r, ServerMsg::Reserved { .. }), "{r:?}");
        viewers.push(v);
    }
    let want: Vec<(String, u64)> = ["viewers", "tapped", "held"]
        .iter()
        .map(|s| (format!("/total/{s}"), 30))
        .collect();
    let host_key = host_token.as_str();
    settled_funnel(a.addr, host_key, &want).await?;
    b.kill().await;
    let (status, body) = get(a.addr, &format!("/api/rooms/{ROOM}/funnel"), Some(host_key)).await?;
    ensure!(status == 200, "{body}");
    let funnel: Value = serde_json::from_str(&body)?;
    ensure!(mismatches(&funnel, &want).is_empty(), "{funnel:#}");
    let (_, audit) = get(
        a.addr,
        &format!("/api/rooms/{ROOM}/deals/d1"),
        Some(host_key),
    )
    .await?;
    let audit: Value = serde_json::from_str(&audit)?;
    ensure!(audit["held"] == 30, "{audit}");
    drop(viewers);
    Ok(())
}
