//! One show over several `livehub serve` processes on one Redis: every viewer on
//! every node receives the same durable events in the same `seq` order, welcomes and viewer
//! totals are the room's, a node killed with `kill -9` or a Redis that stops loses nothing, and
//! a dropped subscription is repaired from the room's history. Every test runs twice: on one
//! Redis server (`single::`) and on a 3-master Redis Cluster (`cluster::`): the test process's
//! shared ones, under a key prefix of the test's own, or a throwaway one for a test that stops,
//! flushes or scans its Redis or kills its clients.

use crate::common;

use std::time::{Duration, Instant};

use anyhow::Context;
use common::nodes::{
    ack_seq, ask, assert_same_everywhere, durable_until, get, join, keys_with_ttl, post_command,
    reply_to, start_nodes_on, start_nodes_with, welcome_seq,
};
use common::redis::Engine;
use common::{Client, WAIT, seqs};
use livehub::protocol::{Role, ServerMsg};
use serde_json::json;

fn product(id: &str) -> serde_json::Value {
    json!({"id": id, "title": format!("Product {id}"), "price_cents": 1500})
}

async fn three_nodes_deliver_every_event_once_in_the_same_seq_order(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let nodes = start_nodes_on(&redis, 3).await?;
    let room = "show";
    let mut viewers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for j in 0..3 {
            viewers.push(
                join(node, room, Role::Viewer, &format!("v{i}-{j}"), None)
                    .await?
                    .0,
            );
        }
    }
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut talk_b, _) = join(&nodes[1], room, Role::Viewer, "talker-b", None).await?;
    let (mut talk_c, _) = join(&nodes[2], room, Role::Viewer, "talker-c", None).await?;

    // Interleave host commands on node A with comments on B and C, without waiting in between.
    for round in 0..4 {
        host.send(json!({"type": "pin", "product": product(&format!("p{round}")), "request_id": format!("pin{round}")}))
            .await?;
        talk_b
            .send(json!({"type": "comment", "text": format!("b says {round}"), "request_id": format!("b{round}")}))
            .await?;
        talk_c
            .send(json!({"type": "comment", "text": format!("c says {round}"), "request_id": format!("c{round}")}))
            .await?;
        host.send(json!({"type": "announce", "text": format!("round {round}"), "request_id": format!("ann{round}")}))
            .await?;
    }
    host.send(json!({"type": "deal_start", "request_id": "deal", "deal": {
        "id": "d1", "product_id": "p3", "title": "Test product", "price_cents": 999, "stock": 5, "per_user_limit": 1,
        "duration_ms": 600000}}))
        .await?;
    // Commands from three connections race to Redis: the last event is whichever came last.
    let mut last = ack_seq(&mut host, "deal").await?;
    for (talker, who) in [(&mut talk_b, "b"), (&mut talk_c, "c")] {
        last = last.max(ack_seq(talker, &format!("{who}3")).await?);
    }
    assert_eq!(last, 17, "16 events of four rounds and the deal");

    let mut lists = Vec::new();
    for v in viewers.iter_mut() {
        lists.push(durable_until(v, last).await?);
    }
    assert_same_everywhere(&lists, 1)?;
    let kinds: Vec<&str> = lists[0].iter().map(ServerMsg::kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "comment").count(), 8);
    assert_eq!(kinds.iter().filter(|k| **k == "pinned").count(), 4);

    // A late joiner on any node is welcomed with the room's true state.
    let (_late, welcome) = join(&nodes[2], room, Role::Viewer, "late", None).await?;
    let ServerMsg::Welcome {
        seq,
        pinned,
        deals,
        recent,
        ..
    } = welcome
    else {
        anyhow::bail!("not a welcome")
    };
    assert_eq!(seq, last);
    assert_eq!(pinned.map(|p| p.id.to_string()), Some("p3".to_owned()));
    assert_eq!(deals.len(), 1);
    assert_eq!(recent.len(), 8);
    if redis.is_cluster() {
        // Sharded pub/sub: the room's channel lives on the one shard that owns its slot, and
        // nothing is broadcast through classic (cluster-wide) pub/sub.
        let sharded = redis.cli_each(&["PUBSUB", "SHARDCHANNELS"])?;
        let channel = format!("{{{}:room:show}}:ch", redis.key_prefix());
        let holders = sharded.iter().filter(|o| o.contains(&channel)).count();
        assert_eq!(holders, 1, "{sharded:?}");
        let classic = redis.cli_each(&["PUBSUB", "CHANNELS"])?;
        assert!(classic.iter().all(|o| o.trim().is_empty()), "{classic:?}");
    }
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn viewer_totals_span_nodes_and_a_dead_nodes_viewers_fall_out(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let mut nodes = start_nodes_on(&redis, 3).await?;
    let room = "count";
    let (mut on_a, _) = join(&nodes[0], room, Role::Viewer, "a", None).await?;
    let _on_b = join(&nodes[1], room, Role::Viewer, "b", None).await?;
    let _on_b2 = join(&nodes[1], room, Role::Viewer, "b2", None).await?;
    let want =
        |n: u64| move |m: &ServerMsg| matches!(m, ServerMsg::Viewers { count } if *count == n);
    on_a.next_matching(want(3)).await?;
    // A late joiner's welcome on a third node counts everyone.
    tokio::time::sleep(Duration::from_millis(300)).await; // one counters report from each node
    let (_late, welcome) = join(&nodes[2], room, Role::Viewer, "late", None).await?;
    assert!(
        matches!(welcome, ServerMsg::Welcome { viewers: 4, .. }),
        "{welcome:?}"
    );
    on_a.next_matching(want(4)).await?;
    // Node B dies: its two viewers leave the total once its report expires.
    nodes.remove(1).kill().await;
    on_a.next_matching(want(2)).await?;
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn likes_stock_mutes_and_deletions_hold_across_nodes(kind: &str) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "rules";
    let (mut host_a, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut watcher_a, _) = join(&nodes[0], room, Role::Viewer, "watcher", None).await?;
    let (mut troll_b, _) = join(&nodes[1], room, Role::Viewer, "troll", None).await?;
    let (mut fan_b, _) = join(&nodes[1], room, Role::Viewer, "fan", None).await?;

    // Likes from both nodes add up.
    fan_b.send(json!({"type": "like", "count": 7})).await?;
    watcher_a.send(json!({"type": "like", "count": 3})).await?;
    watcher_a
        .next_matching(|m| matches!(m, ServerMsg::Likes { total: 10 }))
        .await?;

    // A reserve on B moves the stock seen on A within a tick or two.
    host_a
        .send(json!({"type": "deal_start", "request_id": "s", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 2, "per_user_limit": 2,
        "duration_ms": 600000}}))
        .await?;
    ack_seq(&mut host_a, "s").await?;
    fan_b.next_of("deal").await?;
    let sent = Instant::now();
    fan_b
        .send(json!({"type": "reserve", "request_id": "r", "deal": "d", "qty": 2}))
        .await?;
    assert_eq!(fan_b.json_of("reserved").await?["remaining"], 0);
    let stock = watcher_a
        .saw_or_next(|m| matches!(m, ServerMsg::Stock { remaining: 0, .. }))
        .await?;
    println!(
        "stock on the other node after {:?}: {stock:?}",
        sent.elapsed()
    );
    // The sell-out is published once, for every node.
    let sold_out = watcher_a
        .saw_or_next(|m| matches!(m, ServerMsg::Deal { deal, .. } if deal.status == livehub::protocol::DealStatus::SoldOut))
        .await?;
    let sold_out_seq = sold_out.seq();

    // A comment deleted through node A disappears on node B; a second deletion is refused.
    troll_b
        .send(json!({"type": "comment", "text": "spam spam"}))
        .await?;
    let c = watcher_a.next_of("comment").await?;
    let ServerMsg::Comment(c) = c else {
        unreachable!()
    };
    host_a
        .send(json!({"type": "delete_comment", "id": c.id, "request_id": "del"}))
        .await?;
    let del_seq = ack_seq(&mut host_a, "del").await?;
    let deleted = fan_b.next_of("comment_deleted").await?;
    assert_eq!(deleted.seq(), Some(del_seq));
    host_a
        .send(json!({"type": "delete_comment", "id": c.id, "request_id": "del2"}))
        .await?;
    assert_eq!(host_a.json_of("error").await?["code"], "not_found");

    // A mute set through node A holds on node B.
    host_a
        .send(json!({"type": "mute", "user": "troll", "duration_ms": 60000, "request_id": "m"}))
        .await?;
    host_a.json_of("ack").await?;
    troll_b
        .send(json!({"type": "comment", "text": "still here"}))
        .await?;
    assert_eq!(troll_b.json_of("error").await?["code"], "forbidden");

    // The per-user comment rate (burst 5) counts comments made through both nodes.
    let (mut chatty_a, _) = join(&nodes[0], room, Role::Viewer, "chatty", None).await?;
    let (mut chatty_b, _) = join(&nodes[1], room, Role::Viewer, "chatty", None).await?;
    for i in 0..3 {
        chatty_a
            .send(
                json!({"type": "comment", "text": format!("a{i}"), "request_id": format!("a{i}")}),
            )
            .await?;
        chatty_b
            .send(
                json!({"type": "comment", "text": format!("b{i}"), "request_id": format!("b{i}")}),
            )
            .await?;
    }
    // Every comment is answered, with an ack or an error: count the refusals (reading until each
    // connection went quiet for a while was a guess at when the answers were all in). Answers
    // may come in any order (a refusal at once, an ack after Redis), so each connection is
    // read until all three of its request ids were answered.
    let mut limited = 0;
    for (c, who) in [(&mut chatty_a, "a"), (&mut chatty_b, "b")] {
        let mut waiting: Vec<String> = (0..3).map(|i| format!("{who}{i}")).collect();
        while !waiting.is_empty() {
            let v = c.next_json().await?;
            let Some(at) = waiting.iter().position(|r| v["request_id"] == r.as_str()) else {
                continue;
            };
            waiting.remove(at);
            if v["code"] == "rate_limited" {
                limited += 1;
            }
        }
    }
    assert_eq!(limited, 1, "six comments against a burst of five");
    assert!(sold_out_seq.is_some());
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn viewers_of_a_node_killed_mid_show_resume_on_another_and_miss_nothing(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let mut nodes = start_nodes_on(&redis, 3).await?;
    let room = "crash";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    host.send(json!({"type": "deal_start", "request_id": "s", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 50, "per_user_limit": 5,
        "duration_ms": 600000}}))
        .await?;
    ack_seq(&mut host, "s").await?;
    let mut doomed = Vec::new();
    for i in 0..5 {
        let (mut c, _) = join(&nodes[1], room, Role::Viewer, &format!("doomed{i}"), None).await?;
        c.send(json!({"type": "reserve", "request_id": "r", "deal": "d", "qty": 2}))
            .await?;
        c.json_of("reserved").await?;
        doomed.push(c);
    }
    let (mut witness, _) = join(&nodes[2], room, Role::Viewer, "witness", None).await?;
    for i in 0..5 {
        host.send(json!({"type": "announce", "text": format!("before {i}"), "request_id": format!("b{i}")})).await?;
    }
    let before = ack_seq(&mut host, "b4").await?;
    let mut last_seen = Vec::new();
    for c in doomed.iter_mut() {
        let got = durable_until(c, before).await?;
        last_seen.push(got.last().and_then(ServerMsg::seq).unwrap_or(0));
    }
    nodes.remove(1).kill().await; // kill -9: nothing drained, nothing saved
    for i in 0..5 {
        host.send(json!({"type": "announce", "text": format!("after {i}"), "request_id": format!("a{i}")})).await?;
    }
    let after = ack_seq(&mut host, "a4").await?;
    // The doomed viewers notice, and resume on another node with ?since=.
    let mut lists = Vec::new();
    for (i, mut c) in doomed.into_iter().enumerate() {
        let _ = c.closed().await;
        let (mut again, welcome) = join(
            &nodes[i % 2],
            room,
            Role::Viewer,
            &format!("doomed{i}"),
            Some(last_seen[i]),
        )
        .await?;
        assert!(
            matches!(welcome, ServerMsg::Welcome { resumed: true, .. }),
            "{welcome:?}"
        );
        lists.push(durable_until(&mut again, after).await?);
    }
    let mut witnessed = durable_until(&mut witness, after).await?;
    witnessed.retain(|m| m.seq().is_some_and(|s| s > before));
    assert_same_everywhere(&lists, before + 1)?;
    assert_eq!(lists[0], witnessed);
    // The holds made through the dead node are all accounted for.
    let token = common::mint(common::nodes::SECRET, Role::Host, room, "auditor");
    let (status, body) = livehub::http_client::request(
        "GET",
        &format!("http://{}/api/rooms/{room}/deals/d", nodes[0].addr),
        Some(&token),
        None,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let audit: livehub::inventory::Audit = serde_json::from_str(&body)?;
    assert!(audit.balances(), "{audit:?}");
    assert_eq!((audit.remaining, audit.held, audit.sold), (40, 10, 0));
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn a_graceful_stop_drains_its_viewers_with_1001_to_the_other_nodes(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let mut nodes = start_nodes_on(&redis, 2).await?;
    let room = "drain";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut moving, _) = join(&nodes[1], room, Role::Viewer, "mover", None).await?;
    host.send(json!({"type": "announce", "text": "one", "request_id": "x"}))
        .await?;
    let seq = ack_seq(&mut host, "x").await?;
    durable_until(&mut moving, seq).await?;
    let stopping = nodes.remove(1);
    let closed = tokio::spawn(async move { moving.closed().await });
    stopping.terminate().await?;
    assert_eq!(closed.await??, common::Ended::Closed(Some(1001)));
    let (_, welcome) = join(&nodes[0], room, Role::Viewer, "mover", Some(seq)).await?;
    assert!(matches!(welcome, ServerMsg::Welcome { resumed: true, .. }));
    nodes.remove(0).kill().await;
    Ok(())
}

/// Sends comments from `c` until one is acknowledged (a Redis outage answers `unavailable`).
async fn comment_until_accepted(c: &mut Client, text: &str) -> anyhow::Result<()> {
    // A restarted Redis Cluster answers once the client has found its slots again; on a busy
    // 2-core CI machine that once took over 20 s.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut n = 0;
    loop {
        n += 1;
        let rid = format!("{text}-{n}");
        c.send(json!({"type": "comment", "text": text, "request_id": rid}))
            .await?;
        let m = c
            .next_matching(|m| matches!(m, ServerMsg::Ack { .. } | ServerMsg::Error { .. }))
            .await?;
        if matches!(m, ServerMsg::Ack { .. }) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "comments did not recover: {m:?}");
        tokio::time::sleep(Duration::from_millis(200)).await; // waiting for the reconnect backoff
    }
}

async fn when_redis_stops_commenters_hear_unavailable_fast_and_the_show_recovers_in_order(
    kind: &str,
) -> anyhow::Result<()> {
    let mut redis = Engine::start(kind, true)?;
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "outage";
    let (mut talker, _) = join(&nodes[0], room, Role::Viewer, "talker", None).await?;
    let (mut watcher, _) = join(&nodes[1], room, Role::Viewer, "watcher", None).await?;
    comment_until_accepted(&mut talker, "before").await?;
    redis.stop()?;
    for i in 0..3 {
        let sent = Instant::now();
        talker
            .send(json!({"type": "comment", "text": format!("lost? {i}"), "request_id": format!("d{i}")}))
            .await?;
        let err = talker.json_of("error").await?;
        assert_eq!(err["code"], "unavailable", "{err}");
        let took = sent.elapsed();
        // Not Redis's connection timeout (3 s): see redis_hubs' outage test.
        assert!(took < Duration::from_secs(2), "unavailable took {took:?}");
    }
    redis.restart()?;
    comment_until_accepted(&mut talker, "after").await?;
    // Both viewers stayed connected and saw exactly the accepted comments, in order.
    let last = {
        let got = durable_until(&mut talker, 2).await?;
        got.last().and_then(ServerMsg::seq).unwrap_or(0)
    };
    let mut seen = durable_until(&mut watcher, last).await?;
    seen.retain(|m| m.seq().is_some());
    common::assert_contiguous(&seqs(&seen), 1);
    let texts: Vec<String> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Comment(c) => Some(c.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["before", "after"]);
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn a_killed_subscription_is_noticed_and_its_gap_repaired_from_history(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::start(kind, false)?;
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "gaps";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut far, _) = join(&nodes[1], room, Role::Viewer, "far", None).await?;
    let total = 300;
    let sender = tokio::spawn(async move {
        for i in 0..total {
            host.send(
                json!({"type": "announce", "text": format!("n{i}"), "request_id": format!("r{i}")}),
            )
            .await?;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let last = ack_seq(&mut host, &format!("r{}", total - 1)).await?;
        anyhow::Ok((host, last))
    });
    // Drop every subscription (both nodes) several times while events flow.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        redis.cli_all(&["CLIENT", "KILL", "TYPE", "pubsub"])?;
    }
    let (_host, last) = tokio::time::timeout(WAIT * 3, sender).await???;
    assert_eq!(last, total as u64);
    let got = durable_until(&mut far, last).await?;
    common::assert_contiguous(&seqs(&got), 1);
    let (status, metrics) = livehub::http_client::request(
        "GET",
        &format!("http://{}/metrics", nodes[1].addr),
        None,
        None,
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("livehub_bus_resubscribes_total"),
        "the drop was noticed"
    );
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn a_late_node_resumes_a_viewer_from_the_rooms_history_in_redis(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "history";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let _watching = join(&nodes[0], room, Role::Viewer, "watching", None).await?;
    for i in 0..10 {
        host.send(
            json!({"type": "announce", "text": format!("n{i}"), "request_id": format!("r{i}")}),
        )
        .await?;
    }
    let last = ack_seq(&mut host, "r9").await?;
    // Node B has never seen the room: its snapshot is the room's, read from Redis (the viewer
    // count once node A has reported its viewer, within a tick; its host is not counted).
    let url = format!("http://{}/api/rooms/{room}", nodes[1].addr);
    let deadline = Instant::now() + WAIT;
    let snap = loop {
        let (status, body) = livehub::http_client::request("GET", &url, None, None).await?;
        assert_eq!(status, 200, "{body}");
        let snap: serde_json::Value = serde_json::from_str(&body)?;
        if snap["viewers"] == 1 || Instant::now() > deadline {
            break snap;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // waiting for node A's report
    };
    assert_eq!(snap["seq"], last);
    assert_eq!(snap["viewers"], 1, "the viewer on node A, not its host");
    let (status, _) = livehub::http_client::request(
        "GET",
        &format!("http://{}/api/rooms/never-opened", nodes[1].addr),
        None,
        None,
    )
    .await?;
    assert_eq!(status, 404);
    // It opens the room from Redis and serves ?since= from there.
    let (mut c, welcome) = join(&nodes[1], room, Role::Viewer, "v", Some(4)).await?;
    assert!(matches!(welcome, ServerMsg::Welcome { resumed: true, .. }));
    assert_eq!(welcome_seq(&welcome), last);
    let got = durable_until(&mut c, last).await?;
    common::assert_contiguous(&seqs(&got), 5);
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

async fn a_room_whose_log_redis_lost_moves_its_viewers_to_a_fresh_start(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::start(kind, false)?;
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "flushed";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut far, _) = join(&nodes[1], room, Role::Viewer, "far", None).await?;
    for i in 0..3 {
        host.send(
            json!({"type": "announce", "text": format!("n{i}"), "request_id": format!("r{i}")}),
        )
        .await?;
    }
    let last = ack_seq(&mut host, "r2").await?;
    durable_until(&mut far, last).await?;
    redis.cli_all(&["FLUSHALL"])?;
    // The next event starts a new log; no node pretends it continues the old one.
    host.send(json!({"type": "announce", "text": "after the loss", "request_id": "x"}))
        .await?;
    assert_eq!(far.closed().await?, common::Ended::Closed(Some(1001)));
    let (mut again, welcome) = join(&nodes[1], room, Role::Viewer, "far", Some(last)).await?;
    let ServerMsg::Welcome { resumed, seq, .. } = welcome else {
        anyhow::bail!("not a welcome")
    };
    assert!(
        !resumed,
        "the old seqs are gone: a fresh snapshot, not a resume"
    );
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    host.send(json!({"type": "announce", "text": "fresh", "request_id": "y"}))
        .await?;
    let next = ack_seq(&mut host, "y").await?;
    assert_eq!(next, seq + 1);
    let got = durable_until(&mut again, next).await?;
    // Once seen with two events here under a second suite's load (docs/benchmarks.md): the
    // events and the welcome's seq say which.
    assert_eq!(
        seqs(&got),
        vec![next],
        "welcome seq {seq}; after it: {got:?}"
    );
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}

// Issue 19: nothing doubled, nothing that grows forever, one clock, read your own writes.

/// The `deal_start` of `d1` selling `product` for 5.00, lasting `duration_ms`.
fn deal_start(request_id: &str, deal: &str, duration_ms: u64) -> serde_json::Value {
    json!({"type": "deal_start", "request_id": request_id, "deal": {
        "id": deal, "product_id": "mug", "title": "Mug", "price_cents": 500, "stock": 5,
        "per_user_limit": 2, "duration_ms": duration_ms}})
}

/// Reserves one unit of `deal` and checks it out: (reservation, order).
async fn buy(c: &mut Client, deal: &str, rid: &str) -> anyhow::Result<(String, String)> {
    let reserve = format!("r-{rid}");
    let cmd = json!({"type": "reserve", "request_id": reserve, "deal": deal, "qty": 1});
    let held = ask(c, cmd, &reserve).await?;
    anyhow::ensure!(held["type"] == "reserved", "reserve: {held}");
    let resv = held["reservation"].as_str().unwrap_or_default().to_owned();
    let checkout = format!("c-{rid}");
    let cmd = json!({"type": "checkout", "request_id": checkout, "reservation": resv});
    let order = ask(c, cmd, &checkout).await?;
    anyhow::ensure!(order["type"] == "order", "checkout: {order}");
    Ok((resv, order["order"].as_str().unwrap_or_default().to_owned()))
}

/// Item 1: a deal id is `conflict` while any record of the deal exists; once its keys expired
/// (a weekly show reusing its ids), starting it again announces a new deal to every node, and
/// its reservation and order ids never repeat the old deal's.
async fn a_deal_id_used_again_after_its_keys_expired_is_a_new_deal_with_new_ids(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let short = [
        ("LIVEHUB_REDIS__RETENTION_MS", "1000"),
        ("LIVEHUB_INVENTORY__HOLD_MS", "1000"),
    ];
    let nodes = start_nodes_with(&redis, 3, &short).await?;
    let room = "weekly";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut ana, _) = join(&nodes[1], room, Role::Viewer, "ana", None).await?;
    let (mut watcher, _) = join(&nodes[2], room, Role::Viewer, "watcher", None).await?;
    host.send(deal_start("s1", "d1", 1500)).await?;
    ack_seq(&mut host, "s1").await?;
    ana.next_matching(|m| matches!(m, ServerMsg::Deal { .. }))
        .await?;
    let (resv1, order1) = buy(&mut ana, "d1", "1").await?;
    host.send(deal_start("s2", "d1", 1500)).await?;
    let refused = reply_to(&mut host, "s2").await?;
    assert_eq!(refused["code"], "conflict", "{refused}");

    // Its keys expire 1.5 s + 1 s + 1 s after the start: until then every try is a conflict.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 3;
    let seq = loop {
        let rid = format!("s{n}");
        host.send(deal_start(&rid, "d1", 60_000)).await?;
        let answer = reply_to(&mut host, &rid).await?;
        if answer["type"] == "ack" {
            break answer["seq"].as_u64().unwrap_or(0);
        }
        assert_eq!(answer["code"], "conflict", "{answer}");
        assert!(Instant::now() < deadline, "the deal's keys never expired");
        n += 1;
        tokio::time::sleep(Duration::from_millis(250)).await; // polling Redis's expiry
    };
    assert!(seq > 0, "the new deal was announced with a seq");
    let again = watcher
        .next_matching(|m| matches!(m, ServerMsg::Deal { seq: s, .. } if *s == seq))
        .await?;
    let ServerMsg::Deal { deal, .. } = again else {
        unreachable!()
    };
    assert_eq!(
        (deal.status, deal.remaining),
        (livehub::protocol::DealStatus::Live, 5)
    );
    let (mut bo, _) = join(&nodes[2], room, Role::Viewer, "bo", None).await?;
    let (resv2, order2) = buy(&mut bo, "d1", "2").await?;
    let (resv3, order3) = buy(&mut ana, "d1", "3").await?;
    let ids = [&resv1, &resv2, &resv3, &order1, &order2, &order3];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b, "ids repeat: {ids:?}");
        }
    }
    // The old deal's reservation is no hold of the new one.
    ana.send(json!({"type": "checkout", "request_id": "old", "reservation": resv1}))
        .await?;
    let old = reply_to(&mut ana, "old").await?;
    assert!(
        old["type"] == "order" && old["order"] == order1.as_str()
            || old["type"] == "rejected" && old["reason"] == "not_found",
        "{old}"
    );
    Ok(())
}

/// Item 2: every key a show writes has a lifetime. After a show on two nodes (comments, likes,
/// a pin, a deal with an order and a hold left to expire, a mute, a deleted comment, reserves
/// for made-up deals) and its retention, with short settings, Redis holds none of its keys, the
/// room is closed again, and the made-up deals never created a funnel key.
async fn after_a_show_and_its_retention_redis_holds_none_of_its_keys(
    kind: &str,
) -> anyhow::Result<()> {
    let redis = Engine::start(kind, false)?;
    let short = [
        ("LIVEHUB_REDIS__RETENTION_MS", "1000"),
        ("LIVEHUB_INVENTORY__HOLD_MS", "1000"),
        ("LIVEHUB_ROOM__OPEN_TTL_MS", "1000"),
        ("LIVEHUB_REDIS__IDEMPOTENCY_TTL_MS", "1000"),
        ("LIVEHUB_REDIS__REJECTED_IDEMPOTENCY_TTL_MS", "1000"),
        ("LIVEHUB_FUNNEL__FLUSH_MS", "100"),
    ];
    let nodes = start_nodes_with(&redis, 2, &short).await?;
    let room = "oneoff";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut ana, _) = join(&nodes[1], room, Role::Viewer, "ana", None).await?;
    let (mut bo, _) = join(&nodes[1], room, Role::Viewer, "bo", None).await?;
    host.send(json!({"type": "pin", "request_id": "p", "product": product("mug")}))
        .await?;
    ack_seq(&mut host, "p").await?;
    host.send(deal_start("d", "d1", 1500)).await?;
    ack_seq(&mut host, "d").await?;
    ana.send(json!({"type": "comment", "request_id": "c", "text": "hello"}))
        .await?;
    let comment = ack_seq(&mut ana, "c").await?;
    ana.send(json!({"type": "like", "count": 3})).await?;
    buy(&mut ana, "d1", "1").await?;
    bo.send(json!({"type": "reserve", "request_id": "kept", "deal": "d1", "qty": 1}))
        .await?;
    assert_eq!(reply_to(&mut bo, "kept").await?["type"], "reserved");
    for i in 0..10 {
        let rid = format!("fake{i}");
        bo.send(
            json!({"type": "reserve", "request_id": rid, "deal": format!("fake{i}"), "qty": 1}),
        )
        .await?;
        let answer = reply_to(&mut bo, &rid).await?;
        assert!(
            answer["reason"] == "not_found" || answer["code"] == "rate_limited",
            "{answer}"
        );
    }
    host.send(json!({"type": "mute", "request_id": "m", "user": "bo", "duration_ms": 600000}))
        .await?;
    assert_eq!(reply_to(&mut host, "m").await?["type"], "ack");
    host.send(json!({"type": "delete_comment", "request_id": "x", "id": format!("c{comment}")}))
        .await?;
    ack_seq(&mut host, "x").await?;
    // Node B's funnel facts reach Redis (a host reading flushes them first).
    let token = common::mint(common::nodes::SECRET, Role::Host, room, "host");
    let (status, _) = get(
        &nodes[1],
        &format!("/api/rooms/{room}/funnel"),
        Some(&token),
    )
    .await?;
    assert_eq!(status, 200);
    let keys = keys_with_ttl(&redis)?;
    let fake: Vec<_> = keys.iter().filter(|(k, _)| k.contains("fake")).collect();
    assert!(fake.is_empty(), "made-up deals left keys: {fake:?}");
    let forever: Vec<_> = keys.iter().filter(|(_, ttl)| *ttl == -1).collect();
    let owned = ["lh:deals", "lh:due"];
    assert!(
        forever.iter().all(|(k, _)| owned.contains(&k.as_str())),
        "keys without a lifetime or an owner that deletes them: {forever:?}"
    );
    for c in [host, ana, bo] {
        c.close().await;
    }

    // Host gone, deal over, hold expired, retention passed: nothing of the show is left.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let left: Vec<(String, i64)> = keys_with_ttl(&redis)?
            .into_iter()
            .filter(|(k, _)| k != "lh:reconcile") // the sweepers', not the show's
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "keys left: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await; // polling Redis's expiry
    }
    // The room closed again: a viewer is told the show has not started.
    let url = nodes[1].ws_url(
        room,
        &common::mint(common::nodes::SECRET, Role::Viewer, room, "late"),
    );
    let mut late = Client::connect(&url).await?;
    assert_eq!(late.next().await?.kind(), "not_live");
    Ok(())
}

/// Item 5: a host's commands see their own writes on every node. Pipelined over one socket
/// (`pin`, `deal_start` without a title, `deal_end`, `unpin`, `deal_start`), a hundred times,
/// and the same five spread over three nodes' REST endpoints: all succeed, and the first deal of
/// each round carries the title of the product pinned just before.
async fn a_hosts_commands_see_their_own_writes_on_every_node(kind: &str) -> anyhow::Result<()> {
    let redis = Engine::shared(kind);
    let extra = [
        ("LIVEHUB_LIMITS__REST_COMMANDS_PER_SEC", "10000"),
        ("LIVEHUB_LIMITS__REST_COMMANDS_BURST", "10000"),
    ];
    let nodes = start_nodes_with(&redis, 3, &extra).await?;
    let room = "pipelined";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let round = |via: &str, i: usize| {
        let (pinned, plain) = (format!("{via}p{i}"), format!("{via}q{i}"));
        let start = |id: String, product: &str| {
            json!({"type": "deal_start", "deal": {"id": id, "product_id": product,
                "price_cents": 100, "stock": 1, "per_user_limit": 1, "duration_ms": 600000}})
        };
        [
            json!({"type": "pin", "product": {"id": pinned, "title": format!("Pinned {i}"), "price_cents": 100}}),
            start(format!("{via}a{i}"), &pinned),
            json!({"type": "deal_end", "deal": format!("{via}a{i}")}),
            json!({"type": "unpin"}),
            start(format!("{via}b{i}"), &plain),
        ]
    };
    const ROUNDS: usize = 100;
    for i in 0..ROUNDS {
        for (j, mut cmd) in round("w", i).into_iter().enumerate() {
            cmd["request_id"] = json!(format!("w{i}-{j}"));
            host.send(cmd).await?;
        }
    }
    for i in 0..ROUNDS {
        for j in 0..5 {
            let answer = reply_to(&mut host, &format!("w{i}-{j}")).await?;
            assert_eq!(answer["type"], "ack", "round {i} command {j}: {answer}");
        }
    }
    let token = common::mint(common::nodes::SECRET, Role::Host, room, "host");
    let mut last = 0;
    for i in 0..ROUNDS {
        for (j, cmd) in round("h", i).into_iter().enumerate() {
            let node = &nodes[(i + j) % nodes.len()];
            let (status, answer) = post_command(node, room, &token, &cmd).await?;
            assert_eq!(status, 200, "REST round {i} command {j}: {answer}");
            last = last.max(answer["seq"].as_u64().unwrap_or(0));
        }
    }
    // The snapshot is node B's view of the room: read it once B has the last event (a command
    // answered by another node reaches B through Redis a moment later).
    let (mut watcher, welcome) = join(&nodes[1], room, Role::Viewer, "watcher", None).await?;
    if welcome_seq(&welcome) < last {
        durable_until(&mut watcher, last).await?;
    }
    let (_, snapshot) = get(&nodes[1], &format!("/api/rooms/{room}"), None).await?;
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot)?;
    let deals = snapshot["deals"].as_array().cloned().unwrap_or_default();
    assert_eq!(deals.len(), 4 * ROUNDS);
    for d in deals {
        let id = d["id"].as_str().unwrap_or_default();
        let i = &id[2..];
        let expected = if id.as_bytes()[1] == b'a' {
            format!("Pinned {i}")
        } else {
            format!("{}q{i}", &id[..1])
        };
        assert_eq!(d["title"], expected.as_str(), "{d}");
    }
    Ok(())
}

/// Item 4: one clock. A node whose clock runs 30 s ahead (libfaketime) sweeps holds, ends deals
/// and times them by Redis's clock: a 20 s hold made on a correct node survives its sweeps and
/// checks out; a deal it starts ends when Redis says; it reports its offset.
async fn a_node_30_s_ahead_times_holds_and_deals_by_redis(kind: &str) -> anyhow::Result<()> {
    let lib = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .context("libfaketime is missing: install Debian's faketime (scripts/test.sh does)")?;
    let redis = Engine::shared(kind);
    let hold = [
        ("LIVEHUB_INVENTORY__HOLD_MS", "20000"),
        ("LIVEHUB_INVENTORY__SWEEP_INTERVAL_MS", "50"),
    ];
    let correct = start_nodes_with(&redis, 1, &hold).await?.remove(0);
    let mut skewed_env = hold.to_vec();
    skewed_env.extend([
        ("LD_PRELOAD", lib),
        ("FAKETIME", "+30s"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
    let ahead = start_nodes_with(&redis, 1, &skewed_env).await?.remove(0);

    let room = "clocks";
    let (mut host, _) = join(&ahead, room, Role::Host, "host", None).await?;
    host.send(deal_start("s", "d1", 600_000)).await?;
    ack_seq(&mut host, "s").await?;
    let (mut ana, welcome) = join(&correct, room, Role::Viewer, "ana", None).await?;
    let ServerMsg::Welcome { deals, .. } = welcome else {
        unreachable!()
    };
    let now = livehub::clock::system_ms();
    let ends_at = deals.first().context("the deal")?.ends_at;
    assert!(
        ends_at.abs_diff(now + 600_000) < 5_000,
        "the deal ends by Redis's clock: {ends_at} vs now {now}"
    );
    ana.send(json!({"type": "reserve", "request_id": "r", "deal": "d1", "qty": 1}))
        .await?;
    let held = reply_to(&mut ana, "r").await?;
    let expires_at = held["expires_at"].as_u64().context("reserved")?;
    assert!(expires_at.abs_diff(now + 20_000) < 5_000, "{held}");
    // The node ahead sweeps every 50 ms; with its own clock it would expire the hold at once.
    tokio::time::sleep(Duration::from_millis(1500)).await; // letting its sweeper run ~30 times
    let resv = held["reservation"].as_str().unwrap_or_default();
    // A checkout that misses the viewer deadline on a loaded machine answers `unavailable`; an
    // app retries it with the same request_id (idempotent), as here. Any other answer is final.
    let mut order = json!(null);
    for _ in 0..20 {
        ana.send(json!({"type": "checkout", "request_id": "c", "reservation": resv}))
            .await?;
        order = reply_to(&mut ana, "c").await?;
        if order["reason"] != "unavailable" {
            break;
        }
    }
    assert_eq!(order["type"], "order", "{order}");
    // It says how far off it is.
    let (_, metrics) = get(&ahead, "/metrics", None).await?;
    let offset: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("livehub_clock_offset_ms "))
        .context("no livehub_clock_offset_ms")?
        .trim()
        .parse()?;
    assert!((-31_000.0..=-29_000.0).contains(&offset), "offset {offset}");
    Ok(())
}

/// Runs each behaviour on one Redis server and on a 3-master Redis Cluster.
macro_rules! on_each_engine {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name("single").await
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::$name("cluster").await
                }
            )*
        }
    };
}

on_each_engine!(
    three_nodes_deliver_every_event_once_in_the_same_seq_order,
    viewer_totals_span_nodes_and_a_dead_nodes_viewers_fall_out,
    likes_stock_mutes_and_deletions_hold_across_nodes,
    viewers_of_a_node_killed_mid_show_resume_on_another_and_miss_nothing,
    a_graceful_stop_drains_its_viewers_with_1001_to_the_other_nodes,
    when_redis_stops_commenters_hear_unavailable_fast_and_the_show_recovers_in_order,
    a_killed_subscription_is_noticed_and_its_gap_repaired_from_history,
    a_late_node_resumes_a_viewer_from_the_rooms_history_in_redis,
    a_room_whose_log_redis_lost_moves_its_viewers_to_a_fresh_start,
    a_deal_id_used_again_after_its_keys_expired_is_a_new_deal_with_new_ids,
    after_a_show_and_its_retention_redis_holds_none_of_its_keys,
    a_hosts_commands_see_their_own_writes_on_every_node,
    a_node_30_s_ahead_times_holds_and_deals_by_redis,
);
