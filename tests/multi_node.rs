//! One show over several `livehub serve` processes on one throwaway Redis: every viewer on
//! every node receives the same durable events in the same `seq` order, welcomes and viewer
//! totals are the room's, a node killed with `kill -9` or a Redis that stops loses nothing, and
//! a dropped subscription is repaired from the room's history. Every test runs twice: on one
//! Redis server (`single::`) and on a 3-master Redis Cluster (`cluster::`).

mod common;

use std::time::{Duration, Instant};

use common::nodes::{
    ack_seq, assert_same_everywhere, durable_until, join, start_nodes_on, welcome_seq,
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
    let redis = Engine::start(kind, false)?;
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
        let holders = sharded
            .iter()
            .filter(|o| o.contains(":room:show}:ch"))
            .count();
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
    let redis = Engine::start(kind, false)?;
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
    let redis = Engine::start(kind, false)?;
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
            .send(json!({"type": "comment", "text": format!("a{i}")}))
            .await?;
        chatty_b
            .send(json!({"type": "comment", "text": format!("b{i}")}))
            .await?;
    }
    let mut limited = 0;
    for c in [&mut chatty_a, &mut chatty_b] {
        while let Ok(m) = c.next_within(Duration::from_millis(800)).await {
            if matches!(m, ServerMsg::Error { ref code, .. } if code.as_str() == "rate_limited") {
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
    let redis = Engine::start(kind, false)?;
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
    let redis = Engine::start(kind, false)?;
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
        assert!(
            took < Duration::from_millis(1000),
            "unavailable took {took:?}"
        );
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
    let redis = Engine::start(kind, false)?;
    let nodes = start_nodes_on(&redis, 2).await?;
    let room = "history";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    for i in 0..10 {
        host.send(
            json!({"type": "announce", "text": format!("n{i}"), "request_id": format!("r{i}")}),
        )
        .await?;
    }
    let last = ack_seq(&mut host, "r9").await?;
    // Node B has never seen the room: its snapshot is the room's, read from Redis (the viewer
    // count once node A has reported its host, within a tick).
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
    assert_eq!(snap["viewers"], 1, "the host on node A");
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
    assert_eq!(seqs(&got), vec![next]);
    for n in nodes {
        n.kill().await;
    }
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
);
