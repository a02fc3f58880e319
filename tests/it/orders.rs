//! Orders out (issue 23), through a real hub: pending orders settled by the shop's backend with
//! a merchant token, the buyer told on its own connection, orders that expire, the order feed
//! paged with a cursor (across a restart with a state file), and the same over two nodes on
//! Redis and Redis Cluster.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use common::nodes::{SECRET, ask, join, start_nodes_with};
use common::redis::Engine;
use common::{Client, HubProcess, TestHub, mint, test_config, upgrade_status};
use livehub::config::{Config, PaymentMode};
use livehub::orders::{OrderEvent, OrderEventKind, OrdersPage};
use livehub::protocol::Role;
use serde_json::{Value, json};

/// The test defaults with `orders.payment = "external"`, a pending order waiting `pay_ms`.
pub(crate) fn paying(pay_ms: u64) -> Config {
    let mut c = test_config();
    c.orders.payment = PaymentMode::External;
    c.orders.payment_timeout_ms = pay_ms;
    c.inventory.sweep_interval_ms = 50;
    c
}

pub(crate) fn deal_start(deal: &str, stock: u32) -> String {
    json!({"type": "deal_start", "deal": {"id": deal, "product_id": "mug", "title": "Mug",
        "price_cents": 1500, "stock": stock, "per_user_limit": 2, "duration_ms": 600_000}})
    .to_string()
}

/// Reserves one unit of `deal` and checks it out on `c`: the `order` reply. Each is asked
/// again with its `request_id` while the answer is `unavailable`, as an app does.
pub(crate) async fn buy(c: &mut Client, deal: &str, tag: &str) -> anyhow::Result<Value> {
    let (r, k) = (format!("r-{tag}"), format!("c-{tag}"));
    let cmd = json!({"type": "reserve", "request_id": r, "deal": deal, "qty": 1});
    let held = ask(c, cmd, &r).await?;
    anyhow::ensure!(held["type"] == "reserved", "reserve: {held}");
    let cmd = json!({"type": "checkout", "request_id": k, "reservation": held["reservation"]});
    let order = ask(c, cmd, &k).await?;
    anyhow::ensure!(order["type"] == "order", "checkout: {order}");
    Ok(order)
}

/// POSTs `/api/orders/{order}/{what}` to `base` with `token`: status and JSON body.
pub(crate) async fn settle(
    base: &str,
    token: Option<&str>,
    order: &str,
    what: &str,
) -> (u16, Value) {
    let url = format!("http://{base}/api/orders/{order}/{what}");
    let (status, body) = livehub::http_client::request("POST", &url, token, None)
        .await
        .expect("request");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// GETs `/api/orders/events` with `query` from `base`.
async fn feed(base: &str, token: Option<&str>, query: &str) -> (u16, String) {
    let url = format!("http://{base}/api/orders/events{query}");
    livehub::http_client::request("GET", &url, token, None)
        .await
        .expect("request")
}

/// Every event after `cursor`, page by page (`limit` per page): the events and the last cursor.
pub(crate) async fn read_all(
    base: &str,
    token: &str,
    cursor: Option<String>,
    limit: usize,
) -> anyhow::Result<(Vec<OrderEvent>, String)> {
    let mut cursor = cursor;
    let mut out = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => format!("?after={c}&limit={limit}"),
            None => format!("?limit={limit}"),
        };
        let (status, body) = feed(base, Some(token), &query).await;
        anyhow::ensure!(status == 200, "feed: HTTP {status}: {body}");
        let page: OrdersPage = serde_json::from_str(&body)?;
        anyhow::ensure!(page.events.len() <= limit);
        out.extend(page.events);
        cursor = Some(page.cursor.clone());
        if !page.more {
            return Ok((out, page.cursor));
        }
    }
}

/// The kinds of each order's events, in feed order; every event id once.
pub(crate) fn stories(events: &[OrderEvent]) -> BTreeMap<String, Vec<OrderEventKind>> {
    let mut ids = HashSet::new();
    let mut out: BTreeMap<String, Vec<OrderEventKind>> = BTreeMap::new();
    for e in events {
        assert!(ids.insert(e.id.clone()), "event {} twice", e.id);
        out.entry(e.order.id.to_string()).or_default().push(e.kind);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_order_is_paid_failed_or_expires_and_its_buyer_is_told() -> anyhow::Result<()> {
    let hub = TestHub::with_config(paying(1_500)).await?;
    let base = hub.addr.to_string();
    let room = "shop";
    let host = hub.token(Role::Host, room, "host");
    let (status, body) = hub
        .post_command(room, Some(&host), &deal_start("mugs", 3))
        .await?;
    assert_eq!(status, 200, "{body}");
    let merchant = hub.token(Role::Merchant, "*", "shop-backend");
    let (mut ana, _) = hub.viewer(room, "ana").await?;
    let (mut ben, _) = hub.viewer(room, "ben").await?;
    let (mut cat, _) = hub.viewer(room, "cat").await?;

    let order = buy(&mut ana, "mugs", "a").await?;
    assert_eq!(order["status"], "pending", "{order}");
    assert!(order["pay_by"].as_u64().is_some(), "{order}");
    let a = hub.audit(room, "mugs").await?;
    assert_eq!((a.remaining, a.pending, a.sold), (2, 1, 0));
    // The funnel counts paid orders, and shows the pending units beside them.
    let funnel = |base: String, host: String| async move {
        let url = format!("http://{base}/api/rooms/{room}/funnel");
        let (code, body) = livehub::http_client::request("GET", &url, Some(&host), None).await?;
        anyhow::ensure!(code == 200, "funnel: HTTP {code}: {body}");
        Ok::<Value, anyhow::Error>(serde_json::from_str::<Value>(&body)?["deals"]["mugs"].clone())
    };
    let deal = funnel(base.clone(), host.clone()).await?;
    assert_eq!(
        (&deal["orders"], &deal["pending_units"]),
        (&json!(0), &json!(1)),
        "{deal}"
    );
    let id = order["order"].as_str().unwrap_or_default().to_owned();
    let (status, body) = settle(&base, Some(&merchant), &id, "paid").await;
    assert_eq!(
        (status, &body["changed"], &body["order"]["status"]),
        (200, &json!(true), &json!("paid")),
        "{body}"
    );
    let deal = funnel(base.clone(), host.clone()).await?;
    assert_eq!(deal["orders"], 1, "{deal}");
    assert!(deal.get("pending_units").is_none(), "none pending: {deal}");
    let told = ana.json_of("order_status").await?;
    assert_eq!(
        (&told["order"], &told["status"]),
        (&json!(id), &json!("paid")),
        "{told}"
    );
    let (status, body) = settle(&base, Some(&merchant), &id, "paid").await;
    assert_eq!(
        (status, &body["changed"]),
        (200, &json!(false)),
        "paid again: {body}"
    );
    let (status, body) = settle(&base, Some(&merchant), &id, "failed").await;
    assert_eq!(
        (status, &body["order"]["status"]),
        (409, &json!("paid")),
        "{body}"
    );

    let order = buy(&mut ben, "mugs", "b").await?;
    let failed = order["order"].as_str().unwrap_or_default().to_owned();
    let (status, body) = settle(&base, Some(&merchant), &failed, "failed").await;
    assert_eq!(
        (status, &body["order"]["status"]),
        (200, &json!("failed")),
        "{body}"
    );
    assert_eq!(ben.json_of("order_status").await?["status"], "failed");
    let a = hub.audit(room, "mugs").await?;
    assert_eq!(
        (a.remaining, a.pending, a.sold),
        (2, 0, 1),
        "the failed unit is back"
    );

    // Not paid in time: the sweep expires it, the buyer is told, the unit is back.
    let order = buy(&mut cat, "mugs", "c").await?;
    let late = order["order"].as_str().unwrap_or_default().to_owned();
    let told = cat.json_of("order_status").await?;
    assert_eq!(
        (&told["order"], &told["status"]),
        (&json!(late), &json!("expired")),
        "{told}"
    );
    let (status, body) = settle(&base, Some(&merchant), &late, "paid").await;
    assert_eq!(
        (status, &body["order"]["status"]),
        (409, &json!("expired")),
        "{body}"
    );
    let a = hub.audit(room, "mugs").await?;
    assert_eq!((a.remaining, a.held, a.pending, a.sold), (2, 0, 0, 1));

    // Operators see settlements on /metrics.
    let (_, metrics) = hub.get("/metrics", None).await?;
    for outcome in ["changed", "repeat", "final"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("livehub_orders_settled_total")
                    && l.contains(&format!("outcome=\"{outcome}\""))),
            "no {outcome} settlement counted"
        );
    }
    assert!(metrics.contains("livehub_order_status_told_total"));

    // A buyer reads its own orders' fate (e.g. after reconnecting).
    let ana_token = hub.token(Role::Viewer, room, "ana");
    let (status, body) = hub
        .get(&format!("/api/rooms/{room}/orders"), Some(&ana_token))
        .await?;
    assert_eq!(status, 200, "{body}");
    let mine: Value = serde_json::from_str(&body)?;
    assert_eq!(mine["orders"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(
        (&mine["orders"][0]["id"], &mine["orders"][0]["status"]),
        (&json!(id), &json!("paid"))
    );
    let (status, _) = hub.get(&format!("/api/rooms/{room}/orders"), None).await?;
    assert_eq!(status, 401);

    // The feed, two events a page: each order's story, once, in order.
    let (events, _) = read_all(&base, &merchant, None, 2).await?;
    let s = stories(&events);
    use OrderEventKind::{Created, Expired, Failed, Paid};
    assert_eq!(s[&id], [Created, Paid]);
    assert_eq!(s[&failed], [Created, Failed]);
    assert_eq!(s[&late], [Created, Expired]);
    let created = events
        .iter()
        .find(|e| e.order.id.as_str() == id)
        .expect("created");
    assert_eq!(
        (created.order.user.as_str(), created.order.total_cents),
        ("ana", 1500)
    );
    hub.shutdown().await
}

#[tokio::test]
async fn the_order_endpoints_are_for_merchants_and_say_what_is_wrong() -> anyhow::Result<()> {
    let hub = TestHub::with_config(paying(60_000)).await?;
    let base = hub.addr.to_string();
    let merchant = hub.token(Role::Merchant, "*", "shop-backend");
    let admin = hub.token(Role::Admin, "*", "ops");
    for (token, want) in [
        (None, 401),
        (Some(hub.token(Role::Viewer, "shop", "ana")), 403),
        (Some(hub.token(Role::Host, "shop", "host")), 403),
    ] {
        let (status, body) = settle(&base, token.as_deref(), "o1", "paid").await;
        assert_eq!(status, want, "{body}");
        let (status, body) = feed(&base, token.as_deref(), "").await;
        assert_eq!(status, want, "{body}");
    }
    let (status, body) = settle(&base, Some(&merchant), "o-none", "paid").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = settle(&base, Some(&admin), "bad.id", "failed").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = feed(&base, Some(&merchant), "?after=nonsense").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("cursor"), "{body}");
    for limit in ["0", "1001", "x"] {
        let (status, body) = feed(&base, Some(&merchant), &format!("?limit={limit}")).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("limit"), "{body}");
    }
    let (status, body) = feed(&base, Some(&admin), "?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    // A merchant token is for the order API, not a room.
    let url = hub.ws_url("shop", &format!("token={merchant}"));
    assert_eq!(upgrade_status(&url).await, 403);
    hub.shutdown().await
}

fn state_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("livehub-orders-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_reader_resumes_from_its_cursor_after_a_hub_restart() -> anyhow::Result<()> {
    let mut config = test_config();
    config.server.state_file = Some(state_path("feed"));
    let hub = TestHub::with_config(config.clone()).await?;
    let (addr, room) = (hub.addr, "show");
    let host = hub.token(Role::Host, room, "host");
    hub.post_command(room, Some(&host), &deal_start("d1", 10))
        .await?;
    let merchant = hub.token(Role::Merchant, "*", "shop-backend");
    let (mut ana, _) = hub.viewer(room, "ana").await?;
    for i in 0..2 {
        let order = buy(&mut ana, "d1", &format!("a{i}")).await?;
        assert!(
            order.get("status").is_none() && order.get("pay_by").is_none(),
            "payment none: paid at once, v1's reply: {order}"
        );
    }
    // The reader takes one page, stores its cursor, and goes away.
    let (status, body) = feed(&addr.to_string(), Some(&merchant), "?limit=1").await;
    assert_eq!(status, 200, "{body}");
    let first: OrdersPage = serde_json::from_str(&body)?;
    assert!(first.more);
    hub.shutdown().await?;

    let hub = TestHub::at(addr, config).await?;
    hub.post_command(room, Some(&host), &deal_start("d2", 10))
        .await?;
    let (mut ben, _) = hub.viewer(room, "ben").await?;
    buy(&mut ben, "d2", "b").await?;
    let (rest, _) = read_all(&addr.to_string(), &merchant, Some(first.cursor), 1).await?;
    let mut all = first.events;
    all.extend(rest);
    let users: Vec<&str> = all.iter().map(|e| e.order.user.as_str()).collect();
    assert_eq!(
        users,
        ["ana", "ana", "ben"],
        "every event once, across the restart"
    );
    stories(&all);
    hub.shutdown().await
}

/// Two nodes on `kind` with external payment: a merchant settles on either node, the buyer is
/// told on its own, a failed unit's stock reaches viewers on the other node, and the feed read
/// through either node has every event once.
async fn orders_settle_on_any_node_and_reach_the_buyer_on_its_own(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let nodes = start_nodes_with(
        &redis,
        2,
        &[
            ("LIVEHUB_ORDERS__PAYMENT", "external"),
            ("LIVEHUB_ORDERS__PAYMENT_TIMEOUT_MS", "2000"),
            ("LIVEHUB_INVENTORY__SWEEP_INTERVAL_MS", "100"),
        ],
    )
    .await?;
    let room = "duo";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut ana, _) = join(&nodes[0], room, Role::Viewer, "ana", None).await?;
    let (mut ben, _) = join(&nodes[1], room, Role::Viewer, "ben", None).await?;
    let (mut cat, _) = join(&nodes[1], room, Role::Viewer, "cat", None).await?;
    host.send(serde_json::from_str(&deal_start("d", 3))?)
        .await?;
    ana.next_of("deal").await?;
    ben.next_of("deal").await?;
    cat.next_of("deal").await?;
    let merchant = mint(SECRET, Role::Merchant, "*", "shop-backend");
    let base = |n: &HubProcess| n.addr.to_string();

    let paid = buy(&mut ana, "d", "a").await?;
    let paid = paid["order"].as_str().unwrap_or_default().to_owned();
    let (status, body) = settle(&base(&nodes[1]), Some(&merchant), &paid, "paid").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ana.json_of("order_status").await?["status"], "paid");

    let failed = buy(&mut ben, "d", "b").await?;
    let failed = failed["order"].as_str().unwrap_or_default().to_owned();
    let (status, body) = settle(&base(&nodes[0]), Some(&merchant), &failed, "failed").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ben.json_of("order_status").await?["status"], "failed");
    // The unit is on sale again for every node's viewers.
    ana.next_matching(|m| matches!(m, livehub::protocol::ServerMsg::Stock { remaining: 2, .. }))
        .await?;

    let late = buy(&mut cat, "d", "c").await?;
    let late = late["order"].as_str().unwrap_or_default().to_owned();
    let told = cat.json_of("order_status").await?;
    assert_eq!(
        (&told["order"], &told["status"]),
        (&json!(late), &json!("expired"))
    );
    let cat_token = mint(SECRET, Role::Viewer, room, "cat");
    let (status, body) = livehub::http_client::request(
        "GET",
        &format!("http://{}/api/rooms/{room}/orders", nodes[0].addr),
        Some(&cat_token),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let mine: Value = serde_json::from_str(&body)?;
    assert_eq!(
        (&mine["orders"][0]["id"], &mine["orders"][0]["status"]),
        (&json!(late), &json!("expired")),
        "{mine}"
    );

    let (through0, _) = read_all(&base(&nodes[0]), &merchant, None, 2).await?;
    let (through1, _) = read_all(&base(&nodes[1]), &merchant, None, 100).await?;
    let ours = |events: Vec<OrderEvent>| -> Vec<OrderEvent> {
        events
            .into_iter()
            .filter(|e| e.order.room.as_str() == room)
            .collect()
    };
    let (through0, through1) = (ours(through0), ours(through1));
    assert_eq!(through0, through1, "either node reads the same feed");
    let s = stories(&through0);
    use OrderEventKind::{Created, Expired, Failed, Paid};
    assert_eq!(s[&paid], [Created, Paid]);
    assert_eq!(s[&failed], [Created, Failed]);
    assert_eq!(s[&late], [Created, Expired]);
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_two_redis_nodes_settle_anywhere_and_reach_their_buyer() -> anyhow::Result<()> {
    orders_settle_on_any_node_and_reach_the_buyer_on_its_own("single").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_on_two_cluster_nodes_settle_anywhere_and_reach_their_buyer() -> anyhow::Result<()> {
    orders_settle_on_any_node_and_reach_the_buyer_on_its_own("cluster").await
}

/// `livehub orders tail` prints every event once, as a line or as JSON, says where it stopped,
/// and resumes from there; a bad cursor or a viewer's token is one line on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_tail_follows_the_feed_from_the_terminal_and_resumes_from_its_cursor()
-> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "tail";
    let host = hub.token(Role::Host, room, "host");
    hub.post_command(room, Some(&host), &deal_start("d1", 10))
        .await?;
    let (mut ana, _) = hub.viewer(room, "ana").await?;
    buy(&mut ana, "d1", "a").await?;
    let shop = hub.token(Role::Merchant, "*", "shop");
    let url = format!("ws://{}", hub.addr);
    let tail = |extra: &[&str]| {
        let mut args = vec!["orders", "tail", "--url", &url, "--once"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_livehub"))
            .args(&args)
            .output()
    };
    let out = tail(&["--token", &shop])?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("m0 created o"), "{stdout}");
    assert!(
        stdout.contains(" paid tail/d1 ana 1 x $15.00 = $15.00"),
        "{stdout}"
    );
    let cursor = stderr
        .lines()
        .find_map(|l| l.strip_prefix("cursor: "))
        .ok_or_else(|| anyhow::anyhow!("no cursor: {stderr}"))?
        .to_owned();
    assert_eq!(cursor, "m1");

    buy(&mut ana, "d1", "b").await?;
    let out = tail(&["--token", &shop, "--json", "--after", &cursor])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<OrderEvent> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(events.len(), 1, "only what came after the cursor: {stdout}");
    assert_eq!(events[0].id, "m1");

    let out = tail(&["--token", &shop, "--after", "bogus"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad_request") && stderr.contains("cursor"),
        "{stderr}"
    );
    let viewer = hub.token(Role::Viewer, room, "ana");
    let out = tail(&["--token", &viewer])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("forbidden"), "{stderr}");
    hub.shutdown().await
}

/// The feed on Redis with AOF: a reader keeps its cursor across a Redis restart (SIGTERM, then
/// the same data directory) and across the nodes, and reads every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_reader_resumes_from_its_cursor_after_redis_restarts() -> anyhow::Result<()> {
    let mut redis = common::redis::RedisServer::start_persistent()?;
    let env = common::nodes::node_env(&redis.url(), false);
    let node = HubProcess::start(&env).await?;
    let room = "aof";
    let (mut host, _) = join(&node, room, Role::Host, "host", None).await?;
    host.send(serde_json::from_str(&deal_start("d", 10))?)
        .await?;
    host.json_of("deal").await?;
    let (mut ana, _) = join(&node, room, Role::Viewer, "ana", None).await?;
    let (mut cat, _) = join(&node, room, Role::Viewer, "cat", None).await?;
    for i in 0..2 {
        buy(&mut ana, "d", &format!("a{i}")).await?;
    }
    buy(&mut cat, "d", "c").await?;
    let merchant = mint(SECRET, Role::Merchant, "*", "shop-backend");
    let (status, body) = feed(&node.addr.to_string(), Some(&merchant), "?limit=2").await;
    assert_eq!(status, 200, "{body}");
    let first: OrdersPage = serde_json::from_str(&body)?;
    assert_eq!(first.events.len(), 2);
    node.kill().await;
    redis.stop()?;
    redis.restart()?;

    let node = HubProcess::start(&env).await?;
    let (mut ben, _) = join(&node, room, Role::Viewer, "ben", None).await?;
    buy(&mut ben, "d", "b").await?;
    let (rest, _) = read_all(&node.addr.to_string(), &merchant, Some(first.cursor), 1).await?;
    let mut all = first.events;
    all.extend(rest);
    let users: Vec<&str> = all.iter().map(|e| e.order.user.as_str()).collect();
    assert_eq!(
        users,
        ["ana", "ana", "cat", "ben"],
        "every event once, across the restart"
    );
    stories(&all);
    node.kill().await;
    Ok(())
}
