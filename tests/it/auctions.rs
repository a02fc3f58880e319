//! The auction stores (issue 24) against the pure rules of `livehub::auction`: the memory store,
//! the Redis scripts on the shared redis-server and on the shared Redis Cluster answer every bid
//! as the rules do, close once, and keep their answers for retried request ids; 200 bidders
//! racing end in the state the rules give from the accepted bids in the order they were accepted.

use crate::common;

use std::sync::Arc;

use common::redis::CALL_TIMEOUT;
use livehub::auction::{AuctionSpec, Book, Closed, Refused, Rules, Status};
use livehub::auctions::{
    AuctionRecord, AuctionState, AuctionStore, BidAnswer, Bidding, CloseAnswer, EndAnswer,
    MemoryAuctions, RedisAuctions,
};
use livehub::commerce::{Buyer, Channel};
use livehub::inventory::InventoryError;
use livehub::inventory::redis::ScriptClock;
use livehub::protocol::Id;
use livehub::redis_io::{RedisIo, RedisTarget};

const RULES: Rules = Rules {
    start_cents: 1_000,
    increment_cents: 100,
    extend_ms: 10_000,
    sudden_death: false,
};
const T0: u64 = 1_700_000_000_000;
const RETENTION_MS: u64 = 3_600_000;

fn id(s: &str) -> Id {
    Id::new(s).expect("an id")
}

/// Auction `auction` of a mug under `rules` for `duration_ms`.
fn spec(auction: &Id, rules: Rules, duration_ms: u64) -> AuctionSpec {
    AuctionSpec {
        id: auction.clone(),
        product_id: id("mug"),
        title: Some("Mug".into()),
        image_url: None,
        currency: "USD".into(),
        start_cents: rules.start_cents,
        increment_cents: rules.increment_cents,
        duration_ms,
        extend_ms: rules.extend_ms,
        sudden_death: rules.sudden_death,
        commission_bps: 500,
        affiliate_bps: 0,
        creator: Some(id("host")),
    }
}

/// A bidder named `name`, from the creator channel with the affiliate `aff-NAME` (the store
/// keeps the leader's: the winner's order is attributed to them).
fn named(name: &str) -> Bidding<'_> {
    Bidding {
        name,
        buyer: Box::leak(Box::new(buyer_of(name))),
    }
}

fn buyer_of(name: &str) -> Buyer {
    Buyer {
        channel: Channel::Creator,
        aff: Id::new(format!("aff-{name}")).ok(),
    }
}

/// A close's answer as its kind and the state it carries.
fn closing(answer: CloseAnswer) -> (&'static str, AuctionState) {
    match answer {
        CloseAnswer::Closed(r) => ("closed", r.state),
        CloseAnswer::Open(r) => ("open", r.state),
        CloseAnswer::AlreadyClosed(r) => ("already", r.state),
    }
}

/// A host's end's answer as its kind and the state it carries.
fn ending(answer: EndAnswer) -> (&'static str, AuctionState) {
    match answer {
        EndAnswer::Ended(r) => ("ended", r.state),
        EndAnswer::HasBids(r) => ("has_bids", r.state),
        EndAnswer::Closed(r) => ("closed", r.state),
    }
}

fn record_state(r: AuctionRecord) -> AuctionState {
    r.state
}

fn memory() -> Arc<dyn AuctionStore> {
    Arc::new(MemoryAuctions::new(RETENTION_MS))
}

async fn redis_on(url: String, cluster: bool) -> Arc<dyn AuctionStore> {
    let io = RedisIo::connect(RedisTarget::from_config(&url, cluster), CALL_TIMEOUT)
        .await
        .expect("connect");
    let prefix = common::redis::unique_prefix();
    Arc::new(RedisAuctions::new(
        io,
        &prefix,
        ScriptClock::Caller,
        RETENTION_MS,
    ))
}

async fn redis() -> Arc<dyn AuctionStore> {
    redis_on(common::redis::shared_server().url(), false).await
}

async fn cluster() -> Arc<dyn AuctionStore> {
    redis_on(common::redis::shared_cluster().url(), true).await
}

/// A small deterministic generator (xorshift64*), so a failing sequence is the same each run.
struct Gen(u64);

impl Gen {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

/// The rules' answer in a store's shape.
fn by_rules(book: &mut Book, user: &str, amount: u64, max: Option<u64>, now: u64) -> BidAnswer {
    match book.bid(user, amount, max, now) {
        Ok(a) => BidAnswer::Accepted(a),
        Err(r) => BidAnswer::Refused(r),
    }
}

/// Random bids (near the price, some with maxima, some late, some retried) on `store` and on
/// the rules side by side: every answer and every state the same, then the same close.
async fn follows_the_rules(store: Arc<dyn AuctionStore>, seed: u64) {
    let (room, auction) = (id("room-rules"), id(&format!("a{seed}")));
    let rules = Rules {
        sudden_death: seed.is_multiple_of(2),
        ..RULES
    };
    let mut book = Book::start(rules, T0, 60_000);
    let record = store
        .start(&room, &spec(&auction, rules, 60_000), T0)
        .await
        .expect("start");
    assert_eq!(record.state, book.state.clone());
    assert_eq!(record.spec, spec(&auction, rules, 60_000));
    assert_eq!((record.started_at, record.leader_name), (T0, None));
    let mut g = Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut now = T0;
    let mut asked: Vec<(String, String, u64, Option<u64>)> = Vec::new();
    // `user`'s bid `rid` on the store: its answer.
    let ask = |user: &str, rid: &str, amount: u64, max: Option<u64>, now: u64| {
        let (store, room, auction) = (Arc::clone(&store), room.clone(), auction.clone());
        let (user, rid) = (user.to_owned(), rid.to_owned());
        async move {
            let bidding = named(&user);
            store
                .bid(&room, &auction, &user, &bidding, &rid, amount, max, now)
                .await
                .map(|b| b.answer)
        }
    };
    for i in 0..150 {
        now += g.next(600);
        if g.next(10) == 0 && !asked.is_empty() {
            // A retry of an earlier request: the first answer, whatever changed since.
            let (user, rid, amount, max) = asked[g.next(asked.len() as u64) as usize].clone();
            let first = ask(&user, &rid, amount, max, now).await.expect("retry");
            let again = ask(&user, &rid, amount, max, now)
                .await
                .expect("retry again");
            assert_eq!(first, again, "a retried request id answers as before");
            continue;
        }
        let user = format!("u{}", g.next(6));
        let floor = book.min_cents(&user);
        let amount = (floor + g.next(400)).saturating_sub(150).max(1);
        let max = match g.next(3) {
            0 => None,
            _ => Some(amount + g.next(2_000)),
        };
        let rid = format!("r{i}");
        let want = by_rules(&mut book, &user, amount, max, now);
        let got = ask(&user, &rid, amount, max, now).await.expect("bid");
        assert_eq!(
            got,
            want,
            "bid {i} by {user}: {amount} max {max:?} at +{}",
            now - T0
        );
        asked.push((user, rid, amount, max));
    }
    let end = book.state.ends_at;
    let early = store.close(&room, &auction, end - 1).await.expect("close");
    assert_eq!(closing(early), ("open", book.state.clone()));
    let closed = book.close(end);
    let got = store.close(&room, &auction, end).await.expect("close");
    assert_eq!(closing(got), ("closed", book.state.clone()));
    assert!(closed.is_some());
    let again = store.close(&room, &auction, end + 5).await.expect("close");
    assert_eq!(closing(again), ("already", book.state.clone()));
    let late = store
        .bid(
            &room,
            &auction,
            "late",
            &named("late"),
            "late-1",
            1_000_000,
            None,
            end + 5,
        )
        .await
        .map(|b| b.answer)
        .expect("late bid");
    assert_eq!(late, BidAnswer::Refused(Refused::Ended));
}

/// The rules' own cases through a store: proxies, ties, too_low's minimum, the extension, the
/// host's end, unknown auctions, a used id.
async fn the_rules_cases(store: Arc<dyn AuctionStore>) {
    let room = id("room-cases");
    let a = id("cases");
    store
        .start(&room, &spec(&a, RULES, 60_000), T0)
        .await
        .expect("start");
    let conflict = store.start(&room, &spec(&a, RULES, 60_000), T0).await;
    assert!(
        matches!(conflict, Err(InventoryError::Conflict(_))),
        "{conflict:?}"
    );
    let bid = |user: &'static str, rid: &'static str, amount: u64, max: Option<u64>, at: u64| {
        let (store, room, a) = (Arc::clone(&store), room.clone(), a.clone());
        async move {
            store
                .bid(&room, &a, user, &named(user), rid, amount, max, T0 + at)
                .await
                .map(|b| b.answer)
                .expect("bid")
        }
    };
    let too_low = |min_cents| BidAnswer::Refused(Refused::TooLow { min_cents });
    assert_eq!(bid("a", "1", 999, None, 1).await, too_low(1_000));
    let BidAnswer::Accepted(first) = bid("a", "2", 1_000, Some(3_000), 2).await else {
        panic!("the first bid at the start price");
    };
    assert_eq!(
        (first.current_cents, first.leading, first.bids),
        (1_000, true, 1)
    );
    let BidAnswer::Accepted(proxy) = bid("b", "1", 1_100, Some(2_000), 3).await else {
        panic!("b's bid");
    };
    assert_eq!(
        (proxy.current_cents, proxy.leading),
        (2_100, false),
        "a's proxy answers"
    );
    let BidAnswer::Accepted(tie) = bid("b", "2", 3_000, None, 4).await else {
        panic!("b ties");
    };
    assert_eq!(
        (tie.current_cents, tie.leading),
        (3_000, false),
        "the earlier max leads"
    );
    assert_eq!(
        bid("a", "3", 3_100, None, 5).await,
        BidAnswer::Accepted(livehub::auction::Accepted {
            current_cents: 3_100,
            leading: true,
            ends_at: T0 + 60_000,
            extended: false,
            bids: 4,
        })
    );
    assert_eq!(
        bid("a", "4", 3_200, None, 6).await,
        BidAnswer::Accepted(livehub::auction::Accepted {
            current_cents: 3_100,
            leading: true,
            ends_at: T0 + 60_000,
            extended: false,
            bids: 5,
        }),
        "a leader raising its own maximum does not raise the price"
    );
    assert_eq!(
        bid("a", "5", 3_200, Some(3_150), 7).await,
        BidAnswer::Refused(Refused::BadRequest(
            "max_cents must be at least amount_cents".into()
        ))
    );
    let BidAnswer::Accepted(snipe) = bid("c", "1", 5_000, None, 55_000).await else {
        panic!("a late bid");
    };
    assert!(snipe.extended && snipe.leading);
    assert_eq!(
        snipe.ends_at,
        T0 + 65_000,
        "extended to acceptance + extend_ms"
    );
    assert_eq!(
        bid("d", "1", 9_000, None, 65_000).await,
        BidAnswer::Refused(Refused::Ended)
    );
    let ended = store.end(&room, &a, T0 + 1).await.expect("end");
    assert!(matches!(ended, EndAnswer::HasBids(_)), "{ended:?}");
    let CloseAnswer::Closed(record) = store.close(&room, &a, T0 + 65_000).await.expect("close")
    else {
        panic!("closes at its end");
    };
    assert_eq!(
        record.leader_name.as_deref(),
        Some("c"),
        "the leader's name is kept"
    );
    assert_eq!(
        record.leader_buyer,
        Some(buyer_of("c")),
        "and their channel"
    );
    assert_eq!(record.spec.creator, Some(id("host")), "and who started it");
    let state = record_state(record);
    assert_eq!(state.status, Status::Sold);
    assert_eq!(state.leader.map(|l| l.user), Some("c".to_owned()));
    assert_eq!(
        state.current_cents,
        Some(3_300),
        "a's max 3,200 plus one increment"
    );

    let quiet = id("quiet");
    // No title of its own (the hub gives the product's), and an image: kept as given.
    let quiet_spec = AuctionSpec {
        title: None,
        image_url: Some("https://img.example/q.png".into()),
        sudden_death: true,
        ..spec(&quiet, RULES, 5_000)
    };
    let record = store.start(&room, &quiet_spec, T0).await.expect("start");
    assert_eq!(record.spec, quiet_spec);
    let (kind, state) = ending(store.end(&room, &quiet, T0 + 10).await.expect("end"));
    assert_eq!(kind, "ended", "a host ends an auction with no bid");
    assert_eq!((state.status, state.ends_at), (Status::Unsold, T0 + 10));
    assert!(matches!(
        store.end(&room, &quiet, T0 + 11).await,
        Ok(EndAnswer::Closed(_))
    ));
    let nobody = id("nobody");
    store
        .start(&room, &spec(&nobody, RULES, 5_000), T0)
        .await
        .expect("start");
    let closed = store
        .close(&room, &nobody, T0 + 5_000)
        .await
        .expect("close");
    assert_eq!(closing(closed).1.status, Status::Unsold);
    let missing = store
        .bid(&room, &id("none"), "a", &named("a"), "1", 1_000, None, T0)
        .await
        .map(|b| b.answer);
    assert!(
        matches!(missing, Err(InventoryError::NotFound(_))),
        "{missing:?}"
    );
    let bad = store
        .start(
            &room,
            &spec(
                &id("bad"),
                Rules {
                    increment_cents: 0,
                    ..RULES
                },
                60_000,
            ),
            T0,
        )
        .await;
    assert!(matches!(bad, Err(InventoryError::Invalid(ref m)) if m.contains("increment_cents")));
    // The room lists what it keeps, oldest first, closed ones included; a failed start is not
    // there.
    let listed = store.room_auctions(&room).await.expect("list");
    let listed: Vec<(String, Status)> = listed
        .into_iter()
        .map(|r| (r.spec.id.to_string(), r.state.status))
        .collect();
    // All three started at T0: the same start lists by id.
    let want = [
        ("cases", Status::Sold),
        ("nobody", Status::Unsold),
        ("quiet", Status::Unsold),
    ];
    let want: Vec<(String, Status)> = want.iter().map(|(i, s)| (i.to_string(), *s)).collect();
    assert_eq!(
        listed, want,
        "every auction of the room, once, oldest first"
    );
}

/// 200 bidders at once, each bidding the least accepted amount (some with a maximum) until it
/// leads or has bid five times: the store's final state is what the rules give when the accepted
/// bids are replayed in the order the store accepted them, and the close sells to that leader.
async fn racing_bidders_end_as_the_rules_say(store: Arc<dyn AuctionStore>) {
    let (room, a) = (id("room-race"), id("race"));
    store
        .start(&room, &spec(&a, RULES, 600_000), T0)
        .await
        .expect("start");
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..200u64 {
        let (store, room, a) = (Arc::clone(&store), room.clone(), a.clone());
        tasks.spawn(async move {
            let user = format!("b{b}");
            let mut accepted = Vec::new();
            let mut amount = 1_000 + b % 7 * 100;
            for n in 0..5 {
                let max = b.is_multiple_of(3).then_some(amount + b * 10);
                let rid = format!("{user}-{n}");
                match store
                    .bid(&room, &a, &user, &named(&user), &rid, amount, max, T0 + 1)
                    .await
                    .map(|b| b.answer)
                {
                    Ok(BidAnswer::Accepted(ok)) => {
                        accepted.push((ok.bids, user.clone(), amount, max, ok));
                        if ok.leading {
                            break;
                        }
                        amount = ok.current_cents + 100;
                    }
                    Ok(BidAnswer::Refused(Refused::TooLow { min_cents })) => amount = min_cents,
                    other => panic!("{user}: {other:?}"),
                }
            }
            accepted
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("bidder"));
    }
    all.sort_by_key(|(n, ..)| *n);
    let places: Vec<u32> = all.iter().map(|(n, ..)| *n).collect();
    assert_eq!(
        places,
        (1..=all.len() as u32).collect::<Vec<_>>(),
        "one place per bid"
    );
    let mut book = Book::start(RULES, T0, 600_000);
    for (n, user, amount, max, answer) in &all {
        let replayed = book.bid(user, *amount, *max, T0 + 1);
        assert_eq!(replayed.as_ref(), Ok(answer), "bid {n} by {user}");
    }
    let state = match store.close(&room, &a, T0 + 600_000).await.expect("close") {
        CloseAnswer::Closed(r) => {
            assert_eq!(
                r.leader_name,
                r.state.leader.as_ref().map(|l| l.user.clone())
            );
            r.state
        }
        other => panic!("{other:?}"),
    };
    let Some(Closed::Sold {
        winner,
        price_cents,
    }) = book.close(T0 + 600_000)
    else {
        panic!("bids were made");
    };
    assert_eq!(state, book.state.clone());
    assert_eq!(state.leader.map(|l| l.user), Some(winner));
    assert_eq!(state.current_cents, Some(price_cents));
}

/// Closes come due by each auction's end, later after an extension; a caller that takes one
/// and dies leaves it to come back after the lease; each closes exactly once.
async fn closes_come_due_once_and_survive_a_dead_closer(store: Arc<dyn AuctionStore>) {
    let room = id("room-due");
    let (short, long, quiet) = (id("short"), id("long"), id("quiet"));
    store
        .start(&room, &spec(&short, RULES, 5_000), T0)
        .await
        .expect("start");
    store
        .start(&room, &spec(&long, RULES, 20_000), T0)
        .await
        .expect("start");
    store
        .start(&room, &spec(&quiet, RULES, 5_000), T0)
        .await
        .expect("start");
    store
        .end(&room, &quiet, T0 + 1)
        .await
        .expect("host ends the quiet one");
    // The host's end is told at once (the hub publishes it), so it is settled.
    store.settled(&room, &quiet).await.expect("settled");
    // A snipe a second before the short one's end moves it 10 s on.
    let snipe = store
        .bid(
            &room,
            &short,
            "s",
            &named("s"),
            "s1",
            1_000,
            None,
            T0 + 4_000,
        )
        .await
        .map(|b| b.answer)
        .expect("snipe");
    assert!(matches!(snipe, BidAnswer::Accepted(a) if a.ends_at == T0 + 14_000));
    let mine = |v: Vec<(Id, Id)>| -> Vec<String> {
        let mut v: Vec<String> = v
            .into_iter()
            .filter(|(r, _)| *r == room)
            .map(|(_, a)| a.to_string())
            .collect();
        v.sort();
        v
    };
    let lease = 1_000;
    assert!(mine(store.due(T0 + 4_999, lease, 100).await.expect("due")).is_empty());
    // At the short one's first end it comes due (the store learns of the extension only by
    // closing): the closer finds it open and the store puts it at its new end.
    let due = mine(store.due(T0 + 5_000, lease, 100).await.expect("due"));
    assert!(due.iter().all(|a| a == "short"), "{due:?}");
    if !due.is_empty() {
        let open = store.close(&room, &short, T0 + 5_000).await.expect("close");
        assert!(
            matches!(open, CloseAnswer::Open(ref r) if r.state.ends_at == T0 + 14_000),
            "{open:?}"
        );
    }
    assert!(mine(store.due(T0 + 13_999, lease, 100).await.expect("due")).is_empty());
    // Taken at its end by a closer that dies: nobody else gets it within the lease, then it is
    // back, and its close is the only one.
    assert_eq!(
        mine(store.due(T0 + 14_000, lease, 100).await.expect("due")),
        ["short"]
    );
    assert!(mine(store.due(T0 + 14_500, lease, 100).await.expect("due")).is_empty());
    assert_eq!(
        mine(store.due(T0 + 15_000, lease, 100).await.expect("due")),
        ["short"]
    );
    let closed = store
        .close(&room, &short, T0 + 15_000)
        .await
        .expect("close");
    assert_eq!(closing(closed).1.status, Status::Sold);
    store.settled(&room, &short).await.expect("settled");
    assert_eq!(
        mine(store.due(T0 + 20_000, lease, 100).await.expect("due")),
        ["long"]
    );
    let closed = store.close(&room, &long, T0 + 20_000).await.expect("close");
    assert_eq!(closing(closed).1.status, Status::Unsold);
    // Closed but not told (its closer died before publishing): it comes back after the lease,
    // and a close finds it closed; once settled it is gone.
    assert_eq!(
        mine(store.due(T0 + 21_000, lease, 100).await.expect("due")),
        ["long"]
    );
    let again = store.close(&room, &long, T0 + 21_000).await.expect("close");
    assert_eq!(closing(again).0, "already");
    store.settled(&room, &long).await.expect("settled");
    assert!(
        mine(store.due(T0 + 60_000, lease, 100).await.expect("due")).is_empty(),
        "all closed and told"
    );
}

macro_rules! store_suite {
    ($store:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_bid_is_answered_as_the_rules_answer_it() {
            for seed in 1..=6 {
                follows_the_rules($store().await, seed).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn proxies_ties_extensions_and_ends_follow_the_rules() {
            the_rules_cases($store().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn closes_come_due_once_and_survive_a_dead_closer() {
            super::closes_come_due_once_and_survive_a_dead_closer($store().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_hundred_racing_bidders_end_as_the_rules_say() {
            racing_bidders_end_as_the_rules_say($store().await).await;
        }
    };
}

mod on_memory {
    use super::*;
    async fn store() -> Arc<dyn AuctionStore> {
        memory()
    }
    store_suite!(store);
}

mod on_redis {
    use super::*;
    store_suite!(redis);
}

mod on_cluster {
    use super::*;
    store_suite!(cluster);
}

/// Every key the auction scripts write expires: the auction, its bid answers, the room's index
/// and the due set (lesson of issue 19: a key without a lifetime grows Redis for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_auction_key_in_redis_expires() {
    let server = common::redis::shared_server();
    let io = RedisIo::connect(RedisTarget::from_config(&server.url(), false), CALL_TIMEOUT)
        .await
        .expect("connect");
    let prefix = common::redis::unique_prefix();
    let store = RedisAuctions::new(io, &prefix, ScriptClock::Redis, RETENTION_MS);
    let (room, a) = (id("room-ttl"), id("ttl"));
    let now = livehub::clock::now_ms();
    store
        .start(&room, &spec(&a, RULES, 60_000), now)
        .await
        .expect("start");
    let bid = store
        .bid(&room, &a, "u", &named("U"), "r1", 1_000, Some(2_000), now)
        .await
        .map(|b| b.answer)
        .expect("bid");
    assert!(matches!(bid, BidAnswer::Accepted(_)), "{bid:?}");
    let keys = server
        .cli(&["--scan", "--pattern", &format!("*{prefix}*")])
        .expect("scan");
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    assert_eq!(keys.len(), 4, "auction, answers, index, due: {keys:?}");
    for key in keys {
        let ttl: i64 = server
            .cli(&["PTTL", key])
            .expect("PTTL")
            .trim()
            .parse()
            .expect("a number");
        assert!(
            ttl > 0 && ttl as u64 <= 60_000 + RETENTION_MS,
            "{key} expires (PTTL {ttl})"
        );
    }
}
