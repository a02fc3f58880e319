//! Every server message type, produced by a real scenario against a real hub and checked field
//! by field on the wire.

use crate::common;

use common::{TestHub, assert_keys};
use livehub::protocol::Role;
use serde_json::json;

#[tokio::test]
async fn every_server_message_type_is_produced_with_its_exact_fields() -> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.room.viewers_interval_ms = 100;
    let hub = TestHub::with_config(cfg).await?;
    let room = "show1";

    let host_token = hub.token(Role::Host, room, "host1");
    let mut host =
        common::Client::connect(&hub.ws_url(room, &format!("token={host_token}"))).await?;
    let welcome = host.json_of("welcome").await?;
    assert_keys(
        &welcome,
        &[
            "type",
            "room",
            "seq",
            "you",
            "viewers",
            "likes",
            "pinned",
            "deals",
            "recent",
            "resumed",
            "stream_url",
            "announcement",
            "auctions",
            "muted",
        ],
    );
    assert_eq!(
        welcome["muted"],
        json!([]),
        "a host's welcome lists the room's mutes"
    );
    assert_eq!(
        welcome["you"],
        json!({"user": "host1", "name": "Name host1", "role": "host"})
    );
    assert_eq!(welcome["room"], room);
    assert_eq!(welcome["seq"], 0);
    assert_eq!(welcome["pinned"], serde_json::Value::Null);
    assert_eq!(welcome["resumed"], false);

    let token = hub.token(Role::Viewer, room, "alice");
    let mut alice = common::Client::connect(&hub.ws_url(room, &format!("token={token}"))).await?;
    let w = alice.json_of("welcome").await?;
    assert!(w.get("muted").is_none(), "a viewer's welcome has no mutes");
    assert_eq!(
        w["you"],
        json!({"user": "alice", "name": "Name alice", "role": "viewer"})
    );
    assert_eq!(w["viewers"], 1, "viewers only: the host is not counted");

    // viewers: the host sees the count change.
    let v = host.json_of("viewers").await?;
    assert_keys(&v, &["type", "count"]);
    assert_eq!(v["count"], 1);

    // pinned + ack
    let product = json!({"id": "p1", "title": "Cozy scarf", "price_cents": 2599, "currency": "EUR", "image_url": "/img/scarf.png"});
    host.send(json!({"type": "pin", "request_id": "q1", "product": product}))
        .await?;
    let ack = host.json_of("ack").await?;
    assert_eq!(ack, json!({"type": "ack", "request_id": "q1", "seq": 1}));
    let pinned = alice.json_of("pinned").await?;
    assert_eq!(
        pinned,
        json!({"type": "pinned", "seq": 1, "product": product})
    );

    // comment
    alice
        .send(json!({"type": "comment", "text": "  love it  "}))
        .await?;
    let c = alice.json_of("comment").await?;
    assert_keys(&c, &["type", "seq", "id", "user", "name", "text", "ts"]);
    assert_eq!(c["seq"], 2);
    assert_eq!(c["user"], "alice");
    assert_eq!(c["name"], "Name alice");
    assert_eq!(c["text"], "love it");
    let ts = c["ts"].as_u64().unwrap();
    assert!(ts.abs_diff(livehub::hub::now_ms()) < 10_000);
    let comment_id = c["id"].as_str().unwrap().to_owned();

    // comment_deleted
    host.send(json!({"type": "delete_comment", "id": comment_id}))
        .await?;
    let d = alice.json_of("comment_deleted").await?;
    assert_eq!(
        d,
        json!({"type": "comment_deleted", "seq": 3, "id": comment_id})
    );

    // unpinned
    host.send(json!({"type": "unpin"})).await?;
    assert_eq!(
        alice.json_of("unpinned").await?,
        json!({"type": "unpinned", "seq": 4})
    );

    // announcement
    host.send(json!({"type": "announce", "text": "Deal in 10 seconds!"}))
        .await?;
    assert_eq!(
        alice.json_of("announcement").await?,
        json!({"type": "announcement", "seq": 5, "text": "Deal in 10 seconds!"})
    );

    // deal (start)
    host.send(json!({"type": "deal_start", "request_id": "q2", "deal": {
        "id": "d1", "product_id": "p1", "title": "Test product", "price_cents": 1999, "stock": 3, "per_user_limit": 2, "duration_ms": 60000,
        "commission_bps": 1500}}))
        .await?;
    let deal = alice.json_of("deal").await?;
    assert_keys(&deal, &["type", "seq", "deal"]);
    assert_eq!(deal["seq"], 6);
    assert_keys(
        &deal["deal"],
        &[
            "id",
            "product_id",
            "title",
            "price_cents",
            "currency",
            "stock",
            "remaining",
            "per_user_limit",
            "commission_bps",
            "affiliate_bps",
            "ends_at",
            "status",
            "started_at",
        ],
    );
    assert_eq!(
        (
            &deal["deal"]["commission_bps"],
            &deal["deal"]["affiliate_bps"]
        ),
        (&json!(1500), &json!(0)),
        "the host's rate as given, the affiliate's by default"
    );
    assert_eq!(deal["deal"]["currency"], "USD");
    assert_eq!(deal["deal"]["title"], "Test product");
    assert_eq!(deal["deal"]["status"], "live");
    assert_eq!(deal["deal"]["remaining"], 3);
    let ends_at = deal["deal"]["ends_at"].as_u64().unwrap();
    assert!(ends_at.abs_diff(livehub::hub::now_ms() + 60_000) < 10_000);
    let started_at = deal["deal"]["started_at"].as_u64().unwrap();
    assert_eq!(
        ends_at - started_at,
        60_000,
        "started_at is the start of duration_ms"
    );

    // likes
    alice.send(json!({"type": "like", "count": 5})).await?;
    assert_eq!(
        alice.json_of("likes").await?,
        json!({"type": "likes", "total": 5})
    );

    // reserved + stock
    alice
        .send(json!({"type": "reserve", "request_id": "r1", "deal": "d1", "qty": 1}))
        .await?;
    let r = alice.json_of("reserved").await?;
    assert_keys(
        &r,
        &[
            "type",
            "request_id",
            "reservation",
            "deal",
            "qty",
            "expires_at",
            "remaining",
        ],
    );
    assert_eq!(
        (
            r["request_id"].clone(),
            r["deal"].clone(),
            r["qty"].clone(),
            r["remaining"].clone()
        ),
        (json!("r1"), json!("d1"), json!(1), json!(2))
    );
    let expires = r["expires_at"].as_u64().unwrap();
    assert!(expires.abs_diff(livehub::hub::now_ms() + hub.config.inventory.hold_ms) < 10_000);
    let reservation = r["reservation"].as_str().unwrap().to_owned();
    assert_eq!(
        host.json_of("stock").await?,
        json!({"type": "stock", "deal": "d1", "remaining": 2})
    );

    // order
    alice
        .send(json!({"type": "checkout", "request_id": "r2", "reservation": reservation}))
        .await?;
    let o = alice.json_of("order").await?;
    assert_keys(
        &o,
        &[
            "type",
            "request_id",
            "order",
            "reservation",
            "deal",
            "qty",
            "price_cents",
            "currency",
        ],
    );
    assert_eq!(o["request_id"], "r2");
    assert_eq!(o["reservation"], reservation.as_str());
    assert_eq!(
        (
            o["deal"].clone(),
            o["qty"].clone(),
            o["price_cents"].clone(),
            o["currency"].clone()
        ),
        (json!("d1"), json!(1), json!(1999), json!("USD"))
    );

    // released
    alice
        .send(json!({"type": "reserve", "request_id": "r3", "deal": "d1", "qty": 1}))
        .await?;
    let r = alice.json_of("reserved").await?;
    let reservation2 = r["reservation"].as_str().unwrap().to_owned();
    alice
        .send(json!({"type": "cancel", "request_id": "r4", "reservation": reservation2}))
        .await?;
    assert_eq!(
        alice.json_of("released").await?,
        json!({"type": "released", "request_id": "r4", "reservation": reservation2})
    );

    // rejected: one ordered + 2 more would exceed the limit of 2
    alice
        .send(json!({"type": "reserve", "request_id": "r5", "deal": "d1", "qty": 2}))
        .await?;
    assert_eq!(
        alice.json_of("rejected").await?,
        json!({"type": "rejected", "request_id": "r5", "reason": "limit_reached"})
    );

    // error, with and without request_id
    alice
        .send(json!({"type": "pin", "request_id": "r6", "product": product}))
        .await?;
    let e = alice.json_of("error").await?;
    assert_keys(&e, &["type", "code", "message", "request_id"]);
    assert_eq!(
        (e["code"].clone(), e["request_id"].clone()),
        (json!("forbidden"), json!("r6"))
    );
    alice.send_text("{oops").await?;
    let e = alice.json_of("error").await?;
    assert_keys(&e, &["type", "code", "message"]);
    assert_eq!(e["code"], "bad_request");

    // deal (sold out): the last two units go to bob.
    let (mut bob, _) = hub.viewer(room, "bob").await?;
    bob.send(json!({"type": "reserve", "request_id": "b1", "deal": "d1", "qty": 2}))
        .await?;
    bob.json_of("reserved").await?;
    let sold_out = alice.json_of("deal").await?;
    assert_eq!(sold_out["deal"]["status"], "sold_out");
    assert_eq!(sold_out["deal"]["remaining"], 0);

    // deal (end)
    host.send(json!({"type": "deal_end", "deal": "d1"})).await?;
    let ended = alice.json_of("deal").await?;
    assert_eq!(ended["deal"]["status"], "ended");
    assert_eq!(ended["seq"], sold_out["seq"].as_u64().unwrap() + 1);

    // REST snapshot matches welcome minus you.
    let (status, body) = hub.get(&format!("/api/rooms/{room}"), None).await?;
    assert_eq!(status, 200);
    let snap: serde_json::Value = serde_json::from_str(&body)?;
    assert_keys(
        &snap,
        &[
            "room",
            "seq",
            "viewers",
            "likes",
            "pinned",
            "deals",
            "recent",
            "stream_url",
            "announcement",
            "auctions",
        ],
    );
    assert_eq!(snap["deals"][0]["status"], "ended");
    assert_eq!(snap["likes"], 5);
    hub.shutdown().await
}

#[tokio::test]
async fn a_hold_that_expires_returns_its_stock_and_viewers_see_it() -> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.inventory.hold_ms = 300;
    cfg.inventory.sweep_interval_ms = 50;
    let hub = TestHub::with_config(cfg).await?;
    let mut host = hub.host("r").await?;
    host.send(json!({"type": "deal_start", "request_id": "s", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 5, "per_user_limit": 5, "duration_ms": 60000}}))
        .await?;
    host.json_of("ack").await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    v.send(json!({"type": "reserve", "request_id": "a", "deal": "d", "qty": 3}))
        .await?;
    let r = v.json_of("reserved").await?;
    assert_eq!(r["remaining"], 2);
    // The viewer sees stock go to 2, then back to 5 when the hold expires.
    let stock = v
        .next_matching(|m| matches!(m, livehub::protocol::ServerMsg::Stock { remaining: 5, .. }))
        .await?;
    assert!(matches!(
        stock,
        livehub::protocol::ServerMsg::Stock { remaining: 5, .. }
    ));
    let audit = hub.audit("r", "d").await?;
    assert_eq!((audit.remaining, audit.held, audit.sold), (5, 0, 0));
    // Checking out the expired hold is not_found.
    v.send(json!({"type": "checkout", "request_id": "c", "reservation": r["reservation"]}))
        .await?;
    assert_eq!(v.json_of("rejected").await?["reason"], "not_found");
    hub.shutdown().await
}

#[tokio::test]
async fn a_deal_past_its_end_time_is_announced_ended_and_refuses_reserves() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let mut host = hub.host("r").await?;
    host.send(json!({"type": "deal_start", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 5, "per_user_limit": 1, "duration_ms": 300}}))
        .await?;
    let ended = host
        .next_matching(|m| matches!(m, livehub::protocol::ServerMsg::Deal { deal, .. } if deal.status == livehub::protocol::DealStatus::Ended))
        .await?;
    assert_eq!(ended.seq(), Some(2));
    let (mut v, _) = hub.viewer("r", "v").await?;
    v.send(json!({"type": "reserve", "request_id": "a", "deal": "d", "qty": 1}))
        .await?;
    assert_eq!(v.json_of("rejected").await?["reason"], "deal_not_live");
    v.send(json!({"type": "reserve", "request_id": "b", "deal": "nope", "qty": 1}))
        .await?;
    assert_eq!(v.json_of("rejected").await?["reason"], "not_found");
    hub.shutdown().await
}

#[tokio::test]
async fn a_deal_started_but_never_announced_is_announced_by_the_retried_deal_start()
-> anyhow::Result<()> {
    use livehub::inventory::{Inventory, MemoryInventory};
    use livehub::protocol::{DealSpec, Id};
    let inventory = std::sync::Arc::new(MemoryInventory::new(60_000));
    let hub = TestHub::with_inventory(common::test_config(), inventory.clone()).await?;
    let mut host = hub.host("r").await?;
    let (mut viewer, _) = hub.viewer("r", "v").await?;
    // The first deal_start reached the inventory, and then the bus failed: no event went out.
    let spec = DealSpec {
        id: Id::new("d").map_err(anyhow::Error::msg)?,
        product_id: Id::new("p").map_err(anyhow::Error::msg)?,
        title: Some("P".into()),
        image_url: None,
        price_cents: 100,
        currency: "USD".into(),
        stock: 5,
        per_user_limit: 1,
        duration_ms: 60_000,
        commission_bps: 0,
        affiliate_bps: 0,
    };
    let room = Id::new("r").map_err(anyhow::Error::msg)?;
    let creator = Id::new("host").map_err(anyhow::Error::msg)?;
    inventory
        .start_deal(&room, &spec, &creator, livehub::hub::now_ms())
        .await?;
    // The host retries: the deal is announced instead of refused as already used.
    let deal = json!({"id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 5,
        "per_user_limit": 1, "duration_ms": 60000});
    host.send(json!({"type": "deal_start", "request_id": "retry", "deal": deal}))
        .await?;
    let ack = host.json_of("ack").await?;
    assert!(ack["seq"].as_u64().is_some(), "{ack}");
    assert_eq!(viewer.json_of("deal").await?["deal"]["id"], "d");
    // Once announced, the id is used: a third start is a conflict.
    host.send(json!({"type": "deal_start", "request_id": "again", "deal": deal}))
        .await?;
    assert_eq!(host.json_of("error").await?["code"], "conflict");
    hub.shutdown().await
}

/// Issue 19, item 7: a v1 client keeps working. Every request of PROTOCOL.md v1, with v1's
/// fields only (a `deal_start` without a title, for a product neither pinned nor in the
/// catalog), over the socket and over REST, answered as v1 says: on memory and on Redis.
async fn every_v1_request_is_served_as_v1_says(hub: TestHub) -> anyhow::Result<()> {
    let room = "v1show";
    let mut host = hub.host(room).await?;
    let (mut viewer, _) = hub.viewer(room, "alice").await?;
    let ack =
        async |c: &mut common::Client, v: serde_json::Value| -> anyhow::Result<serde_json::Value> {
            let rid = v["request_id"].as_str().unwrap_or_default().to_owned();
            c.send(v).await?;
            loop {
                let m = c.next_json().await?;
                if m["request_id"] == rid.as_str() {
                    return Ok(m);
                }
            }
        };
    let v1_product =
        json!({"id": "scarf", "title": "Cozy scarf", "price_cents": 2599, "currency": "USD"});
    let a = ack(
        &mut host,
        json!({"type": "pin", "request_id": "h1", "product": v1_product}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");
    let a = ack(&mut host, json!({"type": "unpin", "request_id": "h2"})).await?;
    assert_eq!(a["type"], "ack", "{a}");
    // v1's deal: no title, no image, no rates; the product is neither pinned nor catalogued.
    let a = ack(
        &mut host,
        json!({"type": "deal_start", "request_id": "h3", "deal": {
        "id": "d1", "product_id": "v1-only", "price_cents": 1999, "currency": "USD",
        "stock": 3, "per_user_limit": 2, "duration_ms": 600000}}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");
    let deal = viewer.json_of("deal").await?;
    for key in [
        "id",
        "product_id",
        "price_cents",
        "currency",
        "stock",
        "remaining",
        "per_user_limit",
        "ends_at",
        "status",
    ] {
        assert!(
            deal["deal"].get(key).is_some(),
            "v1 field {key} missing: {deal}"
        );
    }
    assert_eq!(deal["deal"]["status"], "live");
    let a = ack(
        &mut host,
        json!({"type": "announce", "request_id": "h4", "text": "3 left!"}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");

    viewer
        .send(json!({"type": "comment", "text": "hi"}))
        .await?;
    let c = viewer.json_of("comment").await?;
    viewer.send(json!({"type": "like", "count": 2})).await?;
    let held = ack(
        &mut viewer,
        json!({"type": "reserve", "request_id": "r1", "deal": "d1", "qty": 1}),
    )
    .await?;
    assert_eq!(held["type"], "reserved", "{held}");
    let order = ack(
        &mut viewer,
        json!({"type": "checkout", "request_id": "c1", "reservation": held["reservation"]}),
    )
    .await?;
    assert_eq!(order["type"], "order", "{order}");
    assert_eq!(
        (order["price_cents"].as_u64(), order["currency"].as_str()),
        (Some(1999), Some("USD"))
    );
    let held = ack(
        &mut viewer,
        json!({"type": "reserve", "request_id": "r2", "deal": "d1", "qty": 1}),
    )
    .await?;
    let released = ack(
        &mut viewer,
        json!({"type": "cancel", "request_id": "x1", "reservation": held["reservation"]}),
    )
    .await?;
    assert_eq!(released["type"], "released", "{released}");
    let over = ack(
        &mut viewer,
        json!({"type": "reserve", "request_id": "r3", "deal": "d1", "qty": 2}),
    )
    .await?;
    assert_eq!(
        (over["type"].as_str(), over["reason"].as_str()),
        (Some("rejected"), Some("limit_reached"))
    );

    let a = ack(
        &mut host,
        json!({"type": "delete_comment", "request_id": "h5", "id": c["id"]}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");
    let a = ack(
        &mut host,
        json!({"type": "mute", "request_id": "h6", "user": "alice", "duration_ms": 60000}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");
    let a = ack(
        &mut host,
        json!({"type": "deal_end", "request_id": "h7", "deal": "d1"}),
    )
    .await?;
    assert_eq!(a["type"], "ack", "{a}");
    let a = ack(
        &mut host,
        json!({"type": "deal_start", "request_id": "h8", "deal": {
        "id": "d1", "product_id": "v1-only", "price_cents": 1999, "stock": 3, "per_user_limit": 1,
        "duration_ms": 600000}}),
    )
    .await?;
    assert_eq!(a["code"], "conflict", "{a}");

    // Over REST: v1's `{"ok":true,"seq":N}`.
    let token = hub.token(Role::Host, room, "host");
    let body = json!({"type": "deal_start", "deal": {"id": "d2", "product_id": "rest-only",
        "price_cents": 500, "stock": 1, "per_user_limit": 1, "duration_ms": 60000}});
    let (status, answer) = hub
        .post_command(room, Some(&token), &body.to_string())
        .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(answer["seq"].as_u64().is_some(), "{answer}");
    let audit = hub.audit(room, "d1").await?;
    assert!(audit.balances(), "{audit:?}");
    assert_eq!((audit.sold, audit.held, audit.remaining), (1, 0, 2));
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_request_is_served_as_v1_says_on_memory() -> anyhow::Result<()> {
    every_v1_request_is_served_as_v1_says(TestHub::start().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_request_is_served_as_v1_says_on_redis() -> anyhow::Result<()> {
    let redis = common::redis::RedisServer::start()?;
    let hub = TestHub::with_config(common::redis_config(&redis.url())).await?;
    every_v1_request_is_served_as_v1_says(hub).await
}

#[tokio::test]
async fn the_auction_messages_are_produced_with_their_exact_fields() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "auction-fields";
    let mut host = hub.host(room).await?;
    let (mut ann, _) = hub.viewer(room, "ann").await?;
    host.send(
        json!({"type": "auction_start", "request_id": "s", "auction": {
        "id": "a1", "product_id": "p", "title": "Lamp", "start_cents": 500,
        "increment_cents": 50, "duration_ms": 5000, "extend_ms": 0}}),
    )
    .await?;
    let a = ann.json_of("auction").await?;
    assert_keys(&a, &["type", "seq", "auction"]);
    let view = [
        "id",
        "product_id",
        "title",
        "currency",
        "start_cents",
        "increment_cents",
        "current_cents",
        "leader",
        "bids",
        "ends_at",
        "extend_ms",
        "sudden_death",
        "status",
        "started_at",
    ];
    assert_keys(&a["auction"], &view);
    assert_eq!(
        (&a["auction"]["current_cents"], &a["auction"]["leader"]),
        (&json!(null), &json!(null))
    );
    ann.send(json!({"type": "bid", "request_id": "b0", "auction": "a1", "amount_cents": 1}))
        .await?;
    let low = ann.json_of("rejected").await?;
    assert_keys(&low, &["type", "request_id", "reason", "min_cents"]);
    assert_eq!(
        (&low["reason"], &low["min_cents"]),
        (&json!("too_low"), &json!(500))
    );
    ann.send(json!({"type": "bid", "request_id": "b1", "auction": "a1", "amount_cents": 500}))
        .await?;
    let ok = ann.json_of("bid_accepted").await?;
    assert_keys(
        &ok,
        &[
            "type",
            "request_id",
            "auction",
            "amount_cents",
            "current_cents",
            "leading",
            "ends_at",
            "bids",
        ],
    );
    let tick = ann.json_of("auction_bid").await?;
    assert_keys(
        &tick,
        &[
            "type",
            "auction",
            "current_cents",
            "leader",
            "bids",
            "ends_at",
        ],
    );
    assert_eq!(tick["leader"], json!({"name": "Name ann"}));
    let order = ann.json_of("order").await?;
    assert_keys(
        &order,
        &["type", "order", "auction", "qty", "price_cents", "currency"],
    );
    let closed = host.json_of("auction").await?;
    let closed = if closed["auction"]["status"] == "live" {
        host.json_of("auction").await?
    } else {
        closed
    };
    let mut sold: Vec<&str> = view.to_vec();
    sold.push("winner");
    assert_keys(&closed["auction"], &sold);
    assert_eq!(closed["auction"]["winner"], json!({"name": "Name ann"}));
    hub.shutdown().await
}
