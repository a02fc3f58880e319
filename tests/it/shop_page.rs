//! What the viewer app SDK and the shop page read from the hub (the v1.1 additions of
//! docs/protocol.md): when a deal started, the room's video stream, the latest announcement as
//! room state, lifting a mute, and a viewer count of viewers only. Each behaviour on the memory
//! backend (a hub in this process) and, where a room spans nodes, on two `livehub serve` nodes
//! sharing the test process's Redis server, where a late joiner on the other node must see the
//! same.

use crate::common;

use std::time::{Duration, Instant};

use common::nodes::{get, join, start_nodes_on};
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
