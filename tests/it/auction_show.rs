//! Live auctions as viewers and hosts use them (issue 24), over WebSockets against real hubs:
//! one hub on memory, and three `livehub serve` nodes on one Redis. Bids race from every node,
//! the close is decided once by Redis's clock whichever nodes are alive, the price is what the
//! rules give from the accepted bids, and the winner, only the winner, gets the order.

use crate::common;

use anyhow::{Context, Result, bail, ensure};
use common::nodes::{join, reply_to, start_nodes_on};
use common::redis::Engine;
use common::{Client, TestHub, test_config};
use livehub::auction::{Book, Rules};
use livehub::protocol::{AuctionStatus, AuctionView, Role, ServerMsg};
use serde_json::{Value, json};

/// An auction of `duration_ms` from $10.00 in steps of $1.00, extended by `extend_ms`.
fn token_for_host(hub: &TestHub, room: &str) -> String {
    hub.token(Role::Host, room, "host")
}

/// The host's creator commission is 10 %.
fn start(id: &str, duration_ms: u64, extend_ms: u64) -> Value {
    json!({"type": "auction_start", "request_id": format!("start-{id}"), "auction": {
        "id": id, "product_id": "lamp", "title": "Brass lamp", "start_cents": 1000,
        "increment_cents": 100, "duration_ms": duration_ms, "extend_ms": extend_ms,
        "commission_bps": 1000}})
}

fn bid(rid: &str, auction: &str, amount: u64, max: Option<u64>) -> Value {
    let mut v =
        json!({"type": "bid", "request_id": rid, "auction": auction, "amount_cents": amount});
    if let Some(m) = max {
        v["max_cents"] = json!(m);
    }
    v
}

/// The next `auction` event of `id` with `status`.
async fn auction_event(c: &mut Client, id: &str, status: AuctionStatus) -> Result<AuctionView> {
    let m = c
        .saw_or_next(|m| {
            matches!(m, ServerMsg::Auction { auction, .. } if auction.id.as_str() == id && auction.status == status)
        })
        .await
        .with_context(|| format!("waiting for auction {id} {status:?}"))?;
    match m {
        ServerMsg::Auction { auction, .. } => Ok(auction),
        other => bail!("not an auction event: {other:?}"),
    }
}

/// The close of `id`: it comes after the auction's end (at least 5 s after its start).
async fn close_of(c: &mut Client, id: &str) -> Result<AuctionView> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let m = c
            .next_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .with_context(|| format!("waiting for auction {id} to close"))?;
        if let ServerMsg::Auction { auction, .. } = m
            && auction.id.as_str() == id
            && auction.status != AuctionStatus::Live
        {
            return Ok(auction);
        }
    }
}

#[tokio::test]
async fn bids_follow_the_rules_and_the_winner_alone_gets_the_order() -> Result<()> {
    let mut config = test_config();
    config.limits.bid_rate_per_sec = 100.0;
    config.limits.bid_burst = 100.0;
    let hub = TestHub::with_config(config).await?;
    let room = "auction-one";
    let mut host = hub.host(room).await?;
    let (mut ann, _) = hub.viewer(room, "ann").await?;
    let (mut bob, _) = hub.viewer(room, "bob").await?;
    host.send(start("a1", 5_000, 1_000)).await?;
    let ack = reply_to(&mut host, "start-a1").await?;
    ensure!(ack["type"] == "ack" && ack["seq"].is_u64(), "{ack}");
    let live = auction_event(&mut ann, "a1", AuctionStatus::Live).await?;
    assert_eq!(
        (live.title.as_str(), live.current_cents, live.bids),
        ("Brass lamp", None, 0)
    );
    assert_eq!(live.leader, None);
    // The same id again is a conflict.
    host.send(start("a1", 5_000, 1_000)).await?;
    assert_eq!(reply_to(&mut host, "start-a1").await?["code"], "conflict");

    ann.send(bid("a-1", "a1", 999, None)).await?;
    let low = reply_to(&mut ann, "a-1").await?;
    assert_eq!(
        (&low["reason"], &low["min_cents"]),
        (&json!("too_low"), &json!(1000))
    );
    ann.send(bid("a-2", "a1", 1000, None)).await?;
    let first = reply_to(&mut ann, "a-2").await?;
    assert_eq!(
        (
            &first["type"],
            &first["current_cents"],
            &first["leading"],
            &first["bids"]
        ),
        (
            &json!("bid_accepted"),
            &json!(1000),
            &json!(true),
            &json!(1)
        )
    );
    // A proxy bid: Bob allows up to $20.00 and pays one increment over Ann's max.
    bob.send(bid("b-1", "a1", 1100, Some(2000))).await?;
    let proxy = reply_to(&mut bob, "b-1").await?;
    assert_eq!(
        (&proxy["current_cents"], &proxy["leading"]),
        (&json!(1100), &json!(true))
    );
    // Ann bids $15.00 and is outbid at once by Bob's max: $16.00, Bob leads.
    ann.send(bid("a-3", "a1", 1500, None)).await?;
    let outbid = reply_to(&mut ann, "a-3").await?;
    assert_eq!(
        (&outbid["current_cents"], &outbid["leading"]),
        (&json!(1600), &json!(false))
    );
    // Retrying a request id answers the first outcome, whatever changed since.
    ann.send(bid("a-2", "a1", 1000, None)).await?;
    assert_eq!(reply_to(&mut ann, "a-2").await?, first);
    // Everyone sees the latest bid, with the leader's name and never a user id.
    let latest = ann
        .next_matching(|m| matches!(m, ServerMsg::AuctionBid { bids: 3, .. }))
        .await?;
    let ServerMsg::AuctionBid {
        current_cents,
        leader,
        ..
    } = latest
    else {
        bail!("{latest:?}")
    };
    assert_eq!(current_cents, 1600);
    assert_eq!(leader.context("a leader")?.name, "Name bob");
    // A late joiner is welcomed with the auction as it stands.
    let (_late, welcome) = hub.viewer(room, "cat").await?;
    let ServerMsg::Welcome { auctions, .. } = welcome else {
        bail!("{welcome:?}")
    };
    assert_eq!(
        (auctions.len(), auctions[0].current_cents, auctions[0].bids),
        (1, Some(1600), 3)
    );
    // With a bid it runs to its end.
    host.send(json!({"type": "auction_end", "request_id": "end-a1", "auction": "a1"}))
        .await?;
    assert_eq!(reply_to(&mut host, "end-a1").await?["code"], "conflict");

    let closed = close_of(&mut ann, "a1").await?;
    assert_eq!(closed.status, AuctionStatus::Sold);
    assert_eq!((closed.current_cents, closed.bids), (Some(1600), 3));
    assert_eq!(closed.winner.context("a winner")?.name, "Name bob");
    let order = bob
        .next_matching(|m| matches!(m, ServerMsg::Order { .. }))
        .await?;
    let ServerMsg::Order {
        auction,
        price_cents,
        qty,
        deal,
        request_id,
        order: order_id,
        ..
    } = order
    else {
        bail!("{order:?}")
    };
    assert_eq!(
        (auction.map(|a| a.to_string()), price_cents, qty),
        (Some("a1".into()), 1600, 1)
    );
    assert_eq!((deal, request_id), (None, None));
    // Ann lost: no order reaches her, and a bid now is `ended`.
    ann.send(bid("a-4", "a1", 5000, None)).await?;
    let late = reply_to(&mut ann, "a-4").await?;
    assert_eq!(late["reason"], "ended");
    ensure!(
        !ann.seen.iter().any(|m| m.kind() == "order"),
        "the loser got an order: {:?}",
        ann.seen
    );
    // The order is the shop's like a checkout's: in the feed, at the closing price, attributed
    // to the winner and paying the host's commission.
    let merchant = hub.token(Role::Merchant, "*", "shop");
    let (events, _) = crate::orders::read_all(&hub.addr.to_string(), &merchant, None, 100).await?;
    let ours: Vec<_> = events.iter().filter(|e| e.order.id == order_id).collect();
    ensure!(ours.len() == 1, "the order once in the feed: {events:?}");
    let doc = &ours[0].order;
    assert_eq!(
        (
            doc.user.as_str(),
            doc.total_cents,
            doc.qty,
            doc.title.as_str()
        ),
        ("bob", 1600, 1, "Brass lamp")
    );
    assert_eq!((doc.creator.as_str(), doc.commission_cents), ("host", 160));
    let earnings = hub.token(Role::Host, room, "host");
    let (status, body) = hub
        .get("/api/creators/host/earnings", Some(&earnings))
        .await?;
    ensure!(status == 200, "earnings: HTTP {status}: {body}");
    let e: Value = serde_json::from_str(&body)?;
    ensure!(
        e["total"]["gmv_cents"] == 1600 && e["total"]["commission_cents"] == 160,
        "{e}"
    );
    // The lot is the winner's alone: nobody holds it after the close.
    let lot = doc.deal.to_string();
    ann.send(json!({"type": "reserve", "request_id": "steal", "deal": lot, "qty": 1}))
        .await?;
    let steal = reply_to(&mut ann, "steal").await?;
    ensure!(steal["type"] == "rejected", "{steal}");
    // The funnel counts the auction in its lot's row: who saw it live (ann, bob; cat joined
    // later, while it was live), who bid (ann, bob), who won (bob); its GMV and commission.
    let funnel_path = format!("/api/rooms/{room}/funnel");
    let want = [
        ("exposed", 3),
        ("tapped", 2),
        ("ordered", 1),
        ("orders", 1),
        ("gmv_cents", 1600),
    ];
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (status, body) = hub
            .get(&funnel_path, Some(&token_for_host(&hub, room)))
            .await?;
        ensure!(status == 200, "funnel: HTTP {status}: {body}");
        let f: Value = serde_json::from_str(&body)?;
        let row = &f["deals"][&lot];
        let off: Vec<_> = want
            .iter()
            .filter(|(k, n)| row[*k].as_u64() != Some(*n))
            .collect();
        if off.is_empty() {
            assert_eq!(row["title"], "Brass lamp");
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the auction's row {row} is off in {off:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // the funnel flushes by itself
    }
    // The show's timeline marks the auction's start and its close, once each.
    let token = hub.token(Role::Host, room, "host");
    let path = format!("/api/rooms/{room}/timeline");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (status, body) = hub.get(&path, Some(&token)).await?;
        ensure!(status == 200, "timeline: HTTP {status}: {body}");
        let tl: Value = serde_json::from_str(&body)?;
        let kinds: Vec<String> = tl["moments"]
            .as_array()
            .context("moments")?
            .iter()
            .filter(|m| m["deal"] == "a1")
            .filter_map(|m| m["kind"].as_str().map(str::to_owned))
            .collect();
        if kinds == ["auction_start", "auction_close"] {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "timeline: {kinds:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await; // the funnel flushes by itself
    }
    hub.shutdown().await
}

#[tokio::test]
async fn a_host_ends_an_auction_without_bids_unsold_and_bad_bids_are_told_why() -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "auction-end";
    let mut host = hub.host(room).await?;
    let (mut ann, _) = hub.viewer(room, "ann").await?;
    host.send(start("a2", 60_000, 10_000)).await?;
    reply_to(&mut host, "start-a2").await?;
    ann.send(bid("x-1", "nope", 1000, None)).await?;
    assert_eq!(reply_to(&mut ann, "x-1").await?["reason"], "not_found");
    ann.send(bid("x-2", "a2", 1000, Some(999))).await?;
    assert_eq!(reply_to(&mut ann, "x-2").await?["reason"], "bad_request");
    // Bids beyond the burst (5 by default) are rate limited, not errors.
    let mut reasons = Vec::new();
    for i in 0..7 {
        ann.send(bid(&format!("r-{i}"), "a2", 1, None)).await?;
        reasons.push(reply_to(&mut ann, &format!("r-{i}")).await?["reason"].clone());
    }
    assert!(reasons.contains(&json!("rate_limited")), "{reasons:?}");
    host.send(json!({"type": "auction_end", "request_id": "end-a2", "auction": "a2"}))
        .await?;
    assert_eq!(reply_to(&mut host, "end-a2").await?["type"], "ack");
    let unsold = auction_event(&mut ann, "a2", AuctionStatus::Unsold).await?;
    assert_eq!((unsold.winner, unsold.current_cents), (None, None));
    // A bad spec is refused before anything starts.
    host.send(start("a3", 4_999, 1_000)).await?;
    let bad = reply_to(&mut host, "start-a3").await?;
    assert_eq!(bad["code"], "bad_request");
    ensure!(
        bad["message"]
            .as_str()
            .is_some_and(|m| m.contains("duration_ms")),
        "{bad}"
    );
    hub.shutdown().await
}

/// Accepted bids replayed through the rules in the hub's order (their `bids` place): the
/// leader's user and the price the close must show.
fn by_the_rules(accepted: &[(u32, String, u64, Option<u64>)]) -> Result<(String, u64)> {
    let rules = Rules {
        start_cents: 1000,
        increment_cents: 100,
        extend_ms: 0,
        sudden_death: true,
    };
    let mut book = Book::start(rules, 0, 3_600_000);
    let mut sorted = accepted.to_vec();
    sorted.sort_by_key(|a| a.0);
    for (place, (bids, user, amount, max)) in sorted.iter().enumerate() {
        ensure!(
            *bids as usize == place + 1,
            "places {:?}",
            sorted.iter().map(|a| a.0).collect::<Vec<_>>()
        );
        book.bid(user, *amount, *max, 1)
            .map_err(|r| anyhow::anyhow!("the rules refuse accepted bid {bids}: {r:?}"))?;
    }
    let leader = book.state.leader.context("no leader")?.user;
    Ok((leader, book.state.current_cents.context("no price")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_bidders_over_three_nodes_make_one_winner_at_the_rules_price() -> Result<()> {
    let redis = Engine::shared("single");
    let nodes = start_nodes_on(&redis, 3).await?;
    let room = "auction-race";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let mut watchers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        watchers.push(
            join(node, room, Role::Viewer, &format!("w{i}"), None)
                .await?
                .0,
        );
    }
    host.send(start("race", 5_000, 500)).await?;
    reply_to(&mut host, "start-race").await?;
    let started = auction_event(&mut watchers[0], "race", AuctionStatus::Live).await?;

    // 200 bidders, spread over the nodes, each bidding a few times on the same amounts; the
    // last round is sent in the auction's last 500 ms.
    let mut tasks = Vec::new();
    for b in 0..200usize {
        let node_url = nodes[b % 3].ws_url(
            room,
            &common::mint(common::nodes::SECRET, Role::Viewer, room, &format!("b{b}")),
        );
        let ends_at = started.ends_at;
        tasks.push(tokio::spawn(
            async move { bidder(node_url, b, ends_at).await },
        ));
    }
    let (mut accepted, mut latest_end) = (Vec::new(), 0);
    for t in tasks {
        let (mine, end) = t.await??;
        accepted.extend(mine);
        latest_end = latest_end.max(end);
    }
    let closes = {
        let mut v = Vec::new();
        for w in watchers.iter_mut() {
            v.push(close_of(w, "race").await?);
        }
        v
    };
    let close = &closes[0];
    ensure!(
        closes.iter().all(|c| c == close),
        "nodes saw different closes: {closes:?}"
    );
    assert_eq!(close.status, AuctionStatus::Sold);
    assert_eq!(
        close.bids as usize,
        accepted.len(),
        "every accepted bid counted, none else"
    );
    // Racing on the same amounts, most bids are too low by the time they arrive.
    ensure!(accepted.len() >= 3, "only {} bids accepted", accepted.len());
    // The close's end is the latest any accepted bid was told: a bid in the last 500 ms moved
    // it, and none was accepted at or after it.
    assert_eq!(close.ends_at, latest_end.max(started.ends_at));
    let (leader, price) = by_the_rules(&accepted)?;
    assert_eq!(close.current_cents, Some(price));
    assert_eq!(close.winner.as_ref().context("winner")?.name, leader);
    // Every accepted bid was accepted before the end the close shows.
    for (place, user, _, _) in &accepted {
        ensure!(*place <= close.bids, "{user}'s bid {place} after the close");
    }
    Ok(())
}

/// One bidder: three bids on amounts every bidder races for, the last in the auction's final
/// 500 ms (once more at the least amount if that one was too low); returns its accepted bids as
/// (place, user, amount, max) and the latest end an accepted one was told.
async fn bidder(
    url: String,
    b: usize,
    ends_at: u64,
) -> Result<(Vec<(u32, String, u64, Option<u64>)>, u64)> {
    let mut c = Client::connect(&url).await?;
    c.next_of("welcome").await?;
    let user = format!("b{b}");
    let (mut out, mut latest_end) = (Vec::new(), 0);
    let mut amount = 1000 + 100 * (b as u64 % 7);
    for round in 0..4 {
        if round == 2 {
            let snipe_at = ends_at.saturating_sub(400 - (b as u64 % 300));
            let wait = snipe_at.saturating_sub(livehub::clock::now_ms());
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await; // to the snipe's moment
        }
        let max = b
            .is_multiple_of(4)
            .then_some(amount + 100 * (b as u64 % 11));
        let rid = format!("{user}-{round}");
        c.send(bid(&rid, "race", amount, max)).await?;
        let answer = reply_to(&mut c, &rid).await?;
        match answer["type"].as_str() {
            Some("bid_accepted") => {
                let place = answer["bids"].as_u64().context("bids")? as u32;
                out.push((place, user.clone(), amount, max));
                latest_end = latest_end.max(answer["ends_at"].as_u64().context("ends_at")?);
                amount = answer["current_cents"].as_u64().context("price")? + 100;
                if round >= 2 {
                    break;
                }
            }
            _ => match answer["reason"].as_str() {
                Some("too_low") => amount = answer["min_cents"].as_u64().context("min")?,
                Some("ended" | "rate_limited") => {}
                other => bail!("{user}: {other:?} {answer}"),
            },
        }
    }
    c.close().await;
    Ok((out, latest_end))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_nodes_before_the_end_leaves_the_close_to_the_one_alive() -> Result<()> {
    let redis = Engine::shared("single");
    let mut nodes = start_nodes_on(&redis, 3).await?;
    let room = "auction-kill";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut ann, _) = join(&nodes[1], room, Role::Viewer, "ann", None).await?;
    let (mut watcher, _) = join(&nodes[2], room, Role::Viewer, "watcher", None).await?;
    host.send(start("k1", 5_000, 1_000)).await?;
    reply_to(&mut host, "start-k1").await?;
    let live = auction_event(&mut watcher, "k1", AuctionStatus::Live).await?;
    ann.send(bid("k-1", "k1", 1200, Some(3000))).await?;
    assert_eq!(reply_to(&mut ann, "k-1").await?["type"], "bid_accepted");
    // Just before the end, the host's node and the winner's node die.
    let wait = live.ends_at.saturating_sub(livehub::clock::now_ms() + 300);
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await; // to just before the end
    let ann_node = nodes.remove(1);
    let host_node = nodes.remove(0);
    ann_node.kill().await;
    host_node.kill().await;
    let closed = close_of(&mut watcher, "k1").await?;
    assert_eq!(
        (closed.status, closed.current_cents),
        (AuctionStatus::Sold, Some(1000))
    );
    // Once: no second close reaches the viewer.
    let again = watcher
        .next_within(std::time::Duration::from_millis(CLOSE_QUIET_MS))
        .await;
    ensure!(
        !matches!(&again, Ok(ServerMsg::Auction { .. })),
        "a second close: {again:?}"
    );
    // And one order for the winner, whoever made it.
    let merchant = common::mint(common::nodes::SECRET, Role::Merchant, "*", "shop");
    let (events, _) =
        crate::orders::read_all(&nodes[0].addr.to_string(), &merchant, None, 500).await?;
    let won: Vec<_> = events
        .iter()
        .filter(|e| e.order.user.as_str() == "ann" && e.order.room.as_str() == room)
        .collect();
    ensure!(won.len() == 1, "one order for the winner: {won:?}");
    assert_eq!(won[0].order.total_cents, 1000);
    Ok(())
}

/// How long a closed auction's viewer is watched for a second close: longer than two leases.
const CLOSE_QUIET_MS: u64 = 2 * livehub::hub::CLOSE_LEASE_MS + 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_answers_bids_unavailable_and_half_accepts_none() -> Result<()> {
    let mut redis = Engine::start("single", true)?;
    let nodes = start_nodes_on(&redis, 1).await?;
    let room = "auction-outage";
    let (mut host, _) = join(&nodes[0], room, Role::Host, "host", None).await?;
    let (mut ann, _) = join(&nodes[0], room, Role::Viewer, "ann", None).await?;
    host.send(start("o1", 600_000, 10_000)).await?;
    reply_to(&mut host, "start-o1").await?;
    ann.send(bid("o-1", "o1", 1000, None)).await?;
    assert_eq!(reply_to(&mut ann, "o-1").await?["type"], "bid_accepted");

    redis.stop()?;
    ann.send(bid("o-2", "o1", 1100, None)).await?;
    let down = reply_to(&mut ann, "o-2").await?;
    assert_eq!(down["reason"], "unavailable", "{down}");
    redis.restart()?;
    // The app retries with the same request id until Redis answers: accepted once.
    let again = common::nodes::ask(&mut ann, bid("o-2", "o1", 1100, None), "o-2").await?;
    assert_eq!(
        (&again["type"], &again["bids"]),
        (&json!("bid_accepted"), &json!(2))
    );
    // The store counts exactly the bids answered accepted: none was half-taken.
    let (_late, welcome) = join(&nodes[0], room, Role::Viewer, "late", None).await?;
    let ServerMsg::Welcome { auctions, .. } = welcome else {
        bail!("{welcome:?}")
    };
    // One bidder raising their own bid: the price stays at the start, as the rules say.
    assert_eq!(
        (auctions[0].bids, auctions[0].current_cents),
        (2, Some(1000))
    );
    Ok(())
}
