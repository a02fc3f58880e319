//! What the viewer app SDK and the shop page read from the hub (the v1.1 additions of
//! docs/protocol.md): when a deal started, the room's video stream, the latest announcement as
//! room state, lifting a mute, and a viewer count of viewers only. Each behaviour on the memory
//! backend (a hub in this process) and, where a room spans nodes, on two `livehub serve` nodes
//! sharing the test process's Redis server, where a late joiner on the other node must see the
//! same.

use crate::common;

use std::time::{Duration, Instant};

use common::nodes::{get, join, post_command, start_nodes_on};
use common::redis::Engine;
use common::{Client, TestHub, WAIT};
use livehub::protocol::{Role, ServerMsg};
use serde_json::{Value, json};

fn deal(id: &str) -> Value {
    json!({"id": id, "product_id": "p1", "title": "Scarf", "price_cents": 2599, "stock": 5,
        "per_user_limit": 1, "duration_ms": 600_000})
}

/// The room snapshot (`GET /api/rooms/{room}`) of a memory hub.
async fn snapshot(hub: &TestHub, room: &str) -> anyhow::Result<Value> {
    let (status, body) = hub.get(&format!("/api/rooms/{room}"), None).await?;
    anyhow::ensure!(status == 200, "snapshot: HTTP {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// The room snapshot through `node`.
async fn node_snapshot(node: &common::HubProcess, room: &str) -> anyhow::Result<Value> {
    let (status, body) = get(node, &format!("/api/rooms/{room}"), None).await?;
    anyhow::ensure!(status == 200, "snapshot: HTTP {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// The welcome of a fresh connection of `user` with `role` to `room` through `node`, as JSON.
async fn node_welcome(
    node: &common::HubProcess,
    room: &str,
    role: Role,
    user: &str,
) -> anyhow::Result<(Client, Value)> {
    let url = node.ws_url(room, &common::mint(common::nodes::SECRET, role, room, user));
    let mut c = Client::connect(&url).await?;
    let w = c.json_of("welcome").await?;
    Ok((c, w))
}

/// The welcome of a fresh connection of `user` with `role` to `room` on a memory hub, as JSON.
async fn welcome(
    hub: &TestHub,
    room: &str,
    role: Role,
    user: &str,
) -> anyhow::Result<(Client, Value)> {
    let token = hub.token(role, room, user);
    let mut c = Client::connect(&hub.ws_url(room, &format!("token={token}"))).await?;
    let w = c.json_of("welcome").await?;
    Ok((c, w))
}

#[tokio::test]
async fn a_deal_shows_when_it_started_in_welcome_deal_events_and_the_snapshot() -> anyhow::Result<()>
{
    let hub = TestHub::start().await?;
    let room = "started";
    let mut host = hub.host(room).await?;
    let (mut viewer, _) = hub.viewer(room, "v1").await?;
    let before = livehub::hub::now_ms();
    host.send(json!({"type": "deal_start", "request_id": "s", "deal": deal("d1")}))
        .await?;
    host.json_of("ack").await?;
    let after = livehub::hub::now_ms();
    let event = viewer.json_of("deal").await?;
    let started = event["deal"]["started_at"].as_u64().expect("started_at");
    assert!(
        (before..=after).contains(&started),
        "{before} {started} {after}"
    );
    let (_late, w) = welcome(&hub, room, Role::Viewer, "late").await?;
    assert_eq!(w["deals"][0]["started_at"], started);
    assert_eq!(
        snapshot(&hub, room).await?["deals"][0]["started_at"],
        started
    );
    // The end keeps it.
    host.send(json!({"type": "deal_end", "deal": "d1"})).await?;
    let ended = viewer.json_of("deal").await?;
    assert_eq!(ended["deal"]["status"], "ended");
    assert_eq!(ended["deal"]["started_at"], started);
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_on_another_node_sees_when_a_deal_started() -> anyhow::Result<()> {
    let redis = Engine::shared("single");
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "started";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    host.send(json!({"type": "deal_start", "request_id": "s", "deal": deal("d1")}))
        .await?;
    let event = host.json_of("deal").await?;
    let started = event["deal"]["started_at"].as_u64().expect("started_at");
    assert!(started.abs_diff(livehub::hub::now_ms()) < 10_000);
    let (_late, w) = node_welcome(&nodes[1], room, Role::Viewer, "late").await?;
    assert_eq!(w["deals"][0]["started_at"], started);
    assert_eq!(
        node_snapshot(&nodes[1], room).await?["deals"][0]["started_at"],
        started
    );
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

#[tokio::test]
async fn viewers_count_viewers_only_never_hosts_or_admins() -> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.room.viewers_interval_ms = 100;
    let hub = TestHub::with_config(cfg).await?;
    let room = "count";
    let (mut host, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(w["viewers"], 0, "a host alone: no viewer");
    let (_admin, w) = welcome(&hub, room, Role::Admin, "boss").await?;
    assert_eq!(w["viewers"], 0, "an admin is not a viewer either");
    let (_v1, w) = welcome(&hub, room, Role::Viewer, "v1").await?;
    assert_eq!(w["viewers"], 1);
    let (_v2, w) = welcome(&hub, room, Role::Viewer, "v2").await?;
    assert_eq!(w["viewers"], 2);
    loop {
        let v = host.json_of("viewers").await?;
        let n = v["count"].as_u64().unwrap_or(u64::MAX);
        assert!(n <= 2, "{v}");
        if n == 2 {
            break;
        }
    }
    assert_eq!(snapshot(&hub, room).await?["viewers"], 2);
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_across_nodes_exclude_hosts_and_admins_on_every_node() -> anyhow::Result<()> {
    let redis = Engine::shared("single");
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "count";
    let (_host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (_admin, _) = join(&nodes[1], room, Role::Admin, "boss", None).await?;
    let (mut v1, _) = join(&nodes[1], room, Role::Viewer, "v1", None).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // one counters report from each node
    let (_late, w) = node_welcome(&nodes[0], room, Role::Viewer, "late").await?;
    assert_eq!(w["viewers"], 2, "v1 on B and the late joiner on A: {w}");
    v1.next_matching(|m| matches!(m, ServerMsg::Viewers { count: 2 }))
        .await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let snap = node_snapshot(&nodes[1], room).await?;
        if snap["viewers"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{snap}");
        tokio::time::sleep(Duration::from_millis(50)).await; // waiting for node A's report
    }
    // A while later, still only the two viewers (the reports are viewers only).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_snapshot(&nodes[0], room).await?["viewers"], 2);
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

const STREAM: &str = "https://cdn.example/live/show.m3u8";

/// The reply to `request_id` on `c` (an `ack` or an `error`), skipping everything else.
async fn answer(c: &mut Client, request_id: &str) -> anyhow::Result<Value> {
    common::nodes::reply_to(c, request_id).await
}

#[tokio::test]
async fn a_hosts_stream_is_published_shown_to_late_joiners_and_cleared_to_the_configured_one()
-> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.pages.stream_url = "/stage/default.m3u8".into();
    let hub = TestHub::with_config(cfg).await?;
    let room = "stage";
    let (mut host, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(
        w["stream_url"], "/stage/default.m3u8",
        "the configured stream"
    );
    let (mut viewer, _) = hub.viewer(room, "v1").await?;
    host.send(json!({"type": "set_stream", "request_id": "s1", "url": STREAM}))
        .await?;
    assert_eq!(
        answer(&mut host, "s1").await?,
        json!({"type": "ack", "request_id": "s1", "seq": 1})
    );
    assert_eq!(
        viewer.json_of("stream").await?,
        json!({"type": "stream", "seq": 1, "url": STREAM})
    );
    let (_late, w) = welcome(&hub, room, Role::Viewer, "late").await?;
    assert_eq!(w["stream_url"], STREAM);
    assert_eq!(snapshot(&hub, room).await?["stream_url"], STREAM);
    // Over REST too; null clears it, and the room shows the configured stream again.
    let token = hub.token(Role::Host, room, "host");
    let (status, body) = hub
        .post_command(room, Some(&token), r#"{"type":"set_stream","url":null}"#)
        .await?;
    assert_eq!((status, body), (200, json!({"ok": true, "seq": 2})));
    assert_eq!(
        viewer.json_of("stream").await?,
        json!({"type": "stream", "seq": 2, "url": null})
    );
    let (_later, w) = welcome(&hub, room, Role::Viewer, "later").await?;
    assert_eq!(w["stream_url"], "/stage/default.m3u8");
    assert_eq!(
        snapshot(&hub, room).await?["stream_url"],
        "/stage/default.m3u8"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn a_stream_url_is_checked_like_an_image_url_and_only_hosts_set_it() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "stage";
    let (mut host, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(
        w["stream_url"],
        Value::Null,
        "no stream set, none configured"
    );
    let long = format!("https://cdn.example/{}", "a".repeat(2048));
    for (i, bad) in [
        "javascript:alert(1)",
        "live.m3u8",
        "data:video/mp4,x",
        &long,
    ]
    .into_iter()
    .enumerate()
    {
        let rid = format!("b{i}");
        host.send(json!({"type": "set_stream", "request_id": rid, "url": bad}))
            .await?;
        let e = answer(&mut host, &rid).await?;
        assert_eq!(e["code"], "bad_request", "{bad}: {e}");
        assert!(
            e["message"].as_str().unwrap_or("").starts_with("url "),
            "{e}"
        );
    }
    host.send(json!({"type": "set_stream", "request_id": "m"}))
        .await?;
    assert_eq!(
        answer(&mut host, "m").await?["code"],
        "bad_request",
        "url is required"
    );
    let (mut viewer, _) = hub.viewer(room, "v1").await?;
    viewer
        .send(json!({"type": "set_stream", "request_id": "v", "url": STREAM}))
        .await?;
    assert_eq!(answer(&mut viewer, "v").await?["code"], "forbidden");
    assert_eq!(
        snapshot(&hub, room).await?["seq"],
        0,
        "nothing was published"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn the_latest_announcement_is_room_state_a_late_joiner_sees() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "news";
    let (mut host, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(w["announcement"], Value::Null);
    assert_eq!(snapshot(&hub, room).await?["announcement"], Value::Null);
    for (rid, text) in [("a1", "Doors open"), ("a2", "  Scarves at 8  ")] {
        host.send(json!({"type": "announce", "request_id": rid, "text": text}))
            .await?;
        answer(&mut host, rid).await?;
    }
    host.send(json!({"type": "pin", "request_id": "p", "product":
        {"id": "p1", "title": "Scarf", "price_cents": 100}}))
        .await?;
    answer(&mut host, "p").await?;
    let latest = json!({"seq": 2, "text": "Scarves at 8"});
    let (_late, w) = welcome(&hub, room, Role::Viewer, "late").await?;
    assert_eq!(w["announcement"], latest);
    assert_eq!(snapshot(&hub, room).await?["announcement"], latest);
    hub.shutdown().await
}

/// A state file path in a fresh directory per test.
fn state_path(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("livehub-shop-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.json")
}

#[tokio::test]
async fn a_graceful_restart_keeps_the_stream_and_the_latest_announcement() -> anyhow::Result<()> {
    let mut config = common::test_config();
    config.server.state_file = Some(state_path("stage"));
    let hub = TestHub::with_config(config.clone()).await?;
    let addr = hub.addr;
    let (mut host, _) = welcome(&hub, "show", Role::Host, "host").await?;
    host.send(json!({"type": "set_stream", "request_id": "s", "url": STREAM}))
        .await?;
    answer(&mut host, "s").await?;
    host.send(json!({"type": "announce", "request_id": "a", "text": "Back in 5"}))
        .await?;
    answer(&mut host, "a").await?;
    hub.shutdown().await?;

    let hub = TestHub::at(addr, config).await?;
    let snap = snapshot(&hub, "show").await?;
    assert_eq!(snap["stream_url"], STREAM, "{snap}");
    assert_eq!(snap["announcement"], json!({"seq": 2, "text": "Back in 5"}));
    let (_v, w) = welcome(&hub, "show", Role::Viewer, "v").await?;
    assert_eq!(w["stream_url"], STREAM);
    assert_eq!(w["announcement"], json!({"seq": 2, "text": "Back in 5"}));
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_on_another_node_sees_the_stream_and_the_latest_announcement()
-> anyhow::Result<()> {
    let redis = Engine::shared("single");
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "stage";
    let (mut host, w) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let ServerMsg::Welcome {
        stream_url,
        announcement,
        ..
    } = w
    else {
        anyhow::bail!("{w:?}")
    };
    assert_eq!((stream_url, announcement), (None, None));
    let (mut on_b, _) = join(&nodes[1], room, Role::Viewer, "on-b", None).await?;
    host.send(json!({"type": "set_stream", "request_id": "s", "url": STREAM}))
        .await?;
    let seq = answer(&mut host, "s").await?["seq"].clone();
    host.send(json!({"type": "announce", "request_id": "a", "text": "Live now"}))
        .await?;
    let announced = answer(&mut host, "a").await?["seq"].clone();
    // Live, on the other node.
    assert_eq!(
        on_b.json_of("stream").await?,
        json!({"type": "stream", "seq": seq, "url": STREAM})
    );
    let latest = json!({"seq": announced, "text": "Live now"});
    // A late joiner on node B (its room open there) and a snapshot read from Redis by a
    // node that never opened the room.
    let (_late, w) = node_welcome(&nodes[1], room, Role::Viewer, "late").await?;
    assert_eq!(
        (&w["stream_url"], &w["announcement"]),
        (&json!(STREAM), &latest)
    );
    let third = start_nodes_on(&redis, 1).await?.remove(0);
    let snap = node_snapshot(&third, room).await?;
    assert_eq!(
        (&snap["stream_url"], &snap["announcement"]),
        (&json!(STREAM), &latest)
    );
    // Cleared through node B's REST: a late joiner on node A sees none.
    let token = common::mint(common::nodes::SECRET, Role::Host, room, "host");
    let (status, body) = post_command(
        &nodes[1],
        room,
        &token,
        &json!({"type": "set_stream", "url": null}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    // Node A has applied the clear once its host sees it (the set's own event may come first:
    // the ack overtakes the event it acknowledges).
    while !host.json_of("stream").await?["url"].is_null() {}
    let (_later, w) = node_welcome(&nodes[0], room, Role::Viewer, "later").await?;
    assert_eq!(
        (&w["stream_url"], &w["announcement"]),
        (&Value::Null, &latest)
    );
    for n in nodes.into_iter().chain([third]) {
        n.kill().await;
    }
    Ok(())
}

/// Sends a comment and returns the reply to it (an `ack`, or an `error`).
async fn comment(c: &mut Client, rid: &str, text: &str) -> anyhow::Result<Value> {
    c.send(json!({"type": "comment", "request_id": rid, "text": text}))
        .await?;
    answer(c, rid).await
}

#[tokio::test]
async fn a_host_lifts_a_mute_and_sees_the_rooms_mutes_in_its_welcome() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "moderated";
    let (mut host, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(
        w["muted"],
        json!([]),
        "a host's welcome lists the mutes: none yet"
    );
    let (mut troll, w) = hub.viewer(room, "troll").await?;
    assert!(matches!(w, ServerMsg::Welcome { muted: None, .. }));
    let before = livehub::hub::now_ms();
    host.send(json!({"type": "mute", "request_id": "m", "user": "troll", "duration_ms": 600_000}))
        .await?;
    answer(&mut host, "m").await?;
    assert_eq!(
        comment(&mut troll, "c1", "spam").await?["code"],
        "forbidden"
    );
    // Hosts and admins see the mute; viewers never see anyone's.
    for role in [Role::Host, Role::Admin] {
        let (_c, w) = welcome(&hub, room, role, "mod").await?;
        let muted = w["muted"].as_array().cloned().unwrap_or_default();
        assert_eq!(muted.len(), 1, "{w}");
        assert_eq!(muted[0]["user"], "troll");
        let until = muted[0]["until"].as_u64().unwrap_or(0);
        assert!(
            until >= before + 600_000 && until < before + 610_000,
            "{until}"
        );
    }
    let (_v, w) = welcome(&hub, room, Role::Viewer, "someone").await?;
    assert!(w.get("muted").is_none(), "{w}");
    // A viewer cannot unmute (themselves or anyone).
    troll
        .send(json!({"type": "unmute", "request_id": "u", "user": "troll"}))
        .await?;
    assert_eq!(answer(&mut troll, "u").await?["code"], "forbidden");
    host.send(json!({"type": "unmute", "request_id": "u1", "user": "troll"}))
        .await?;
    assert_eq!(
        answer(&mut host, "u1").await?,
        json!({"type": "ack", "request_id": "u1"}),
        "acked, no event"
    );
    assert_eq!(comment(&mut troll, "c2", "sorry").await?["type"], "ack");
    let (_c, w) = welcome(&hub, room, Role::Host, "host").await?;
    assert_eq!(w["muted"], json!([]));
    // Not muted (any more), or never seen: not_found, over WebSocket and REST.
    for (rid, user) in [("u2", "troll"), ("u3", "nobody")] {
        host.send(json!({"type": "unmute", "request_id": rid, "user": user}))
            .await?;
        assert_eq!(answer(&mut host, rid).await?["code"], "not_found");
    }
    let token = hub.token(Role::Host, room, "host");
    let (status, _) = hub
        .post_command(room, Some(&token), r#"{"type":"unmute","user":"troll"}"#)
        .await?;
    assert_eq!(status, 404);
    host.send(json!({"type": "mute", "user": "troll", "duration_ms": 60_000}))
        .await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = hub
            .post_command(room, Some(&token), r#"{"type":"unmute","user":"troll"}"#)
            .await?;
        if status == 200 {
            assert_eq!(body, json!({"ok": true}));
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await; // the mute is sent just before
    }
    hub.shutdown().await
}

#[tokio::test]
async fn a_graceful_restart_keeps_a_mute_that_a_host_can_still_lift() -> anyhow::Result<()> {
    let mut config = common::test_config();
    config.server.state_file = Some(state_path("mutes"));
    let hub = TestHub::with_config(config.clone()).await?;
    let addr = hub.addr;
    let (mut host, _) = welcome(&hub, "show", Role::Host, "host").await?;
    host.send(json!({"type": "mute", "request_id": "m", "user": "troll", "duration_ms": 600_000}))
        .await?;
    answer(&mut host, "m").await?;
    hub.shutdown().await?;

    let hub = TestHub::at(addr, config).await?;
    let (mut host, w) = welcome(&hub, "show", Role::Host, "host").await?;
    assert_eq!(w["muted"][0]["user"], "troll", "{w}");
    let (mut troll, _) = hub.viewer("show", "troll").await?;
    assert_eq!(
        comment(&mut troll, "c1", "spam").await?["code"],
        "forbidden"
    );
    host.send(json!({"type": "unmute", "request_id": "u", "user": "troll"}))
        .await?;
    assert_eq!(answer(&mut host, "u").await?["type"], "ack");
    assert_eq!(comment(&mut troll, "c2", "hi").await?["type"], "ack");
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_made_on_one_node_is_listed_and_lifted_on_the_other() -> anyhow::Result<()> {
    let redis = Engine::shared("single");
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "moderated";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut troll, _) = join(&nodes[1], room, Role::Viewer, "troll", None).await?;
    host.send(json!({"type": "mute", "request_id": "m", "user": "troll", "duration_ms": 600_000}))
        .await?;
    answer(&mut host, "m").await?;
    assert_eq!(
        comment(&mut troll, "c1", "spam").await?["code"],
        "forbidden"
    );
    let (mut admin, w) = node_welcome(&nodes[1], room, Role::Admin, "boss").await?;
    assert_eq!(w["muted"][0]["user"], "troll", "{w}");
    admin
        .send(json!({"type": "unmute", "request_id": "u", "user": "troll"}))
        .await?;
    assert_eq!(
        answer(&mut admin, "u").await?,
        json!({"type": "ack", "request_id": "u"})
    );
    assert_eq!(comment(&mut troll, "c2", "sorry").await?["type"], "ack");
    let (_c, w) = node_welcome(&nodes[0], room, Role::Host, "host").await?;
    assert_eq!(w["muted"], json!([]));
    // Again, and over REST on the other node: the mute is gone everywhere.
    let token = common::mint(common::nodes::SECRET, Role::Host, room, "host");
    let unmute = json!({"type": "unmute", "user": "troll"});
    let (status, body) = post_command(&nodes[0], room, &token, &unmute).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}
