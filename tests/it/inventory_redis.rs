//! The inventory conformance suite against the Redis backend, each of its tests under a key prefix
//! of its own on the test process's shared redis-server (and shared Redis Cluster); the tests
//! below it that read or change keys behind the inventory's back each have a throwaway server.

use crate::common;
use crate::{conformance_suite, payment_suite};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::conformance::{audit, fresh_room, id, req, reservation, spec};
use common::redis::RedisServer;
use livehub::error::{ErrorCode, HubError};
use livehub::hub::now_ms;
use livehub::inventory::Payment;
use livehub::inventory::redis::{
    INDEX_SLACK_MS, RECONCILE_EVERY_MS, RedisSettings, ScriptClock, deal_tag,
};
use livehub::inventory::{
    Inventory, InventoryError, RedisInventory, ReserveOutcome, ReserveRequest, StockLevel,
};
use livehub::protocol::{Id, RejectReason};

/// The inventory and its throwaway server, which the test holds until it ends (a `static` would
/// never be dropped, and the servers would outlive the test process).
async fn redis(hold_ms: u64) -> (Arc<dyn Inventory>, RedisServer) {
    let server = RedisServer::start().expect("redis-server");
    (Arc::new(on(&server, hold_ms).await), server)
}

/// An inventory on `server` (another hub node, or a restarted one, when called again).
async fn on(server: &RedisServer, hold_ms: u64) -> RedisInventory {
    connect(server.url(), "lh", hold_ms).await
}

async fn connect(url: String, key_prefix: &str, hold_ms: u64) -> RedisInventory {
    connect_paying(url, key_prefix, hold_ms, Payment::None).await
}

use common::redis::CALL_TIMEOUT;

async fn connect_paying(
    url: String,
    key_prefix: &str,
    hold_ms: u64,
    payment: Payment,
) -> RedisInventory {
    RedisInventory::connect(RedisSettings {
        url,
        key_prefix: key_prefix.into(),
        hold_ms,
        idempotency_ttl_ms: 3_600_000,
        rejected_idempotency_ttl_ms: 60_000,
        retention_ms: 3_600_000,
        timeout: CALL_TIMEOUT,
        // The conformance suite drives time itself; tests/it/multi_node.rs runs hubs on Redis's.
        clock: ScriptClock::Caller,
        payment,
    })
    .await
    .expect("connect")
}

/// An inventory under a key prefix of its own on the shared server: the conformance suite only
/// goes through the inventory, and every test plays in rooms of its own.
async fn shared(hold_ms: u64) -> (Arc<dyn Inventory>, ()) {
    let url = common::redis::shared_server().url();
    let prefix = common::redis::unique_prefix();
    (Arc::new(connect(url, &prefix, hold_ms).await), ())
}

conformance_suite!(shared);

async fn shared_paying(hold_ms: u64, timeout_ms: u64) -> (Arc<dyn Inventory>, ()) {
    let url = common::redis::shared_server().url();
    let prefix = common::redis::unique_prefix();
    let payment = Payment::External { timeout_ms };
    (
        Arc::new(connect_paying(url, &prefix, hold_ms, payment).await),
        (),
    )
}

mod payments {
    use super::*;
    payment_suite!(shared_paying);
}

/// The remaining TTL of `key` in ms: -2 when it does not exist, -1 when it never expires.
fn pttl(server: &RedisServer, key: &str) -> i64 {
    let out = server.cli(&["PTTL", key]).expect("redis-cli");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("PTTL {key}: {out:?}"))
}

fn request_key(room: &Id, deal: &str, user: &str, request_id: &str) -> String {
    format!(
        "{}:req:{user}:{request_id}",
        deal_tag("lh", room, &id(deal))
    )
}

/// Only reserves that held stock keep their idempotency record for the full TTL: a rejection's
/// lasts `rejected_idempotency_ttl_ms`, and a reserve of an unknown deal leaves no key at all.
#[tokio::test]
async fn rejected_reserves_leave_no_long_lived_record() {
    let (inv, server) = redis(60_000).await;
    let room = fresh_room("ttl");
    let creator = id("creator");
    inv.start_deal(&room, &spec("d", 1, 1, 60_000), &creator, now_ms())
        .await
        .unwrap();
    inv.start_deal(&room, &spec("over", 5, 1, 1), &creator, now_ms() - 10)
        .await
        .unwrap();
    reservation(inv.as_ref(), &req(&room, "d", "u1", "held", 1)).await;
    let held = pttl(&server, &request_key(&room, "d", "u1", "held"));
    assert!(
        held > 3_000_000,
        "a hold's record keeps the full TTL: {held} ms"
    );

    let rejected = [
        (req(&room, "d", "u2", "sold", 1), RejectReason::SoldOut),
        (
            req(&room, "d", "u1", "limit", 1),
            RejectReason::LimitReached,
        ),
        (
            req(&room, "over", "u1", "late", 1),
            RejectReason::DealNotLive,
        ),
    ];
    for (r, why) in &rejected {
        assert_eq!(
            inv.reserve(r).await.unwrap(),
            ReserveOutcome::Rejected(*why)
        );
        let key = request_key(
            &room,
            r.deal.as_str(),
            r.user.as_str(),
            r.request_id.as_str(),
        );
        let ttl = pttl(&server, &key);
        assert!((1..=60_000).contains(&ttl), "{why:?}: {key} lives {ttl} ms");
    }
    // A flood of made-up deals stores nothing.
    for i in 0..200 {
        let r = req(&room, &format!("madeup{i}"), "u1", &format!("x{i}"), 1);
        assert_eq!(
            inv.reserve(&r).await.unwrap(),
            ReserveOutcome::Rejected(RejectReason::NotFound)
        );
        assert_eq!(
            pttl(
                &server,
                &request_key(&room, &format!("madeup{i}"), "u1", &format!("x{i}"))
            ),
            -2
        );
    }
    let keys = server.cli(&["KEYS", "*madeup*"]).unwrap();
    assert!(keys.trim().is_empty(), "{keys}");
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (0, 1));
}

/// Waits until the due index holds `member` at `at`: a reserve writes its entry without
/// making the buyer wait for it (issue 20).
async fn due_at(server: &RedisServer, member: &str, at: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let score = server.cli(&["ZSCORE", "lh:due", member]).unwrap();
        if score.trim() == at.to_string() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "due entry {member} at {at}: {score}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // polling Redis, not the hub
    }
}

/// The due index: a start puts its deal in `lh:due` at its end, a reserve at the hold's expiry
/// (if earlier), a sweep moves it to the next expiry or, when nothing is held, the deal's end;
/// an entry that was lost (a node died between the reserve and
/// the index write) costs a late sweep, never a hold that never comes back.
#[tokio::test]
async fn the_due_index_follows_the_holds_and_a_lost_entry_is_recovered() {
    let (inv, server) = redis(60_000).await;
    inv.expire_due(now_ms()).await.unwrap(); // this node's start-up pass: nothing yet
    let room = fresh_room("due");
    let started = inv
        .start_deal(
            &room,
            &spec("d", 10, 5, 3_600_000),
            &id("creator"),
            now_ms(),
        )
        .await
        .unwrap();
    let member = format!("{room}|d");
    let r = req(&room, "d", "u", "a", 2);
    let ReserveOutcome::Reserved { expires_at, .. } = inv.reserve(&r).await.unwrap() else {
        panic!("held")
    };
    let score = |s: &RedisServer| {
        s.cli(&["ZSCORE", "lh:due", &member])
            .unwrap()
            .trim()
            .to_owned()
    };
    due_at(&server, &member, expires_at).await;
    // A later hold does not move the entry later.
    let later = ReserveRequest {
        now: r.now + 1000,
        ..req(&room, "d", "v", "b", 1)
    };
    let ReserveOutcome::Reserved {
        expires_at: later_at,
        ..
    } = inv.reserve(&later).await.unwrap()
    else {
        panic!("held")
    };
    due_at(&server, &member, expires_at).await;
    assert_eq!(score(&server), expires_at.to_string());
    // At the first expiry the deal is swept and queued again for the second.
    let changes = inv.expire_due(expires_at).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.room == room && c.level.remaining == 9),
        "{changes:?}"
    );
    assert_eq!(score(&server), later_at.to_string());
    let changes = inv.expire_due(later_at).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.room == room && c.level.remaining == 10),
        "{changes:?}"
    );
    assert_eq!(
        score(&server),
        started.ends_at.to_string(),
        "nothing held: due at the deal's end (then it leaves the registry)"
    );

    // The index loses the entry of a live hold.
    let h = req(&room, "d", "w", "c", 3);
    let ReserveOutcome::Reserved { expires_at, .. } = inv.reserve(&h).await.unwrap() else {
        panic!("held")
    };
    due_at(&server, &member, expires_at).await;
    server.cli(&["ZREM", "lh:due", &member]).unwrap();
    let visits = inv.sweep_visits();
    assert!(inv.expire_due(expires_at).await.unwrap().is_empty());
    assert_eq!(
        inv.sweep_visits(),
        visits,
        "the entry is gone: this sweep does not see it"
    );
    // A node that starts sweeps every deal once and finds it ...
    let restarted = on(&server, 60_000).await;
    let changes = restarted.expire_due(expires_at).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.room == room && c.level.remaining == 10),
        "{changes:?}"
    );
    assert_eq!(audit(&restarted, &room, "d").await.held, 0);
    // ... and so does the periodic pass one node runs for all.
    let h = req(&room, "d", "w", "d", 3);
    let ReserveOutcome::Reserved { expires_at, .. } = inv.reserve(&h).await.unwrap() else {
        panic!("held")
    };
    due_at(&server, &member, expires_at).await;
    server.cli(&["ZREM", "lh:due", &member]).unwrap();
    let at = expires_at + RECONCILE_EVERY_MS;
    let (mut back, mut sweeps) = (false, 0);
    while !back && sweeps < 10 {
        back = inv
            .expire_due(at)
            .await
            .unwrap()
            .iter()
            .any(|c| c.room == room);
        sweeps += 1;
    }
    assert!(back, "the periodic pass returns the hold");
    assert_eq!(audit(inv.as_ref(), &room, "d").await.held, 0);
}

/// The same suite with the inventory on the shared 3-master Redis Cluster, each test under a key
/// prefix of its own.
mod cluster {
    use super::*;
    use livehub::redis_io::{RedisIo, RedisTarget};

    async fn redis_cluster(hold_ms: u64) -> (Arc<dyn Inventory>, ()) {
        redis_cluster_paying(hold_ms, Payment::None).await
    }

    async fn redis_cluster_external(hold_ms: u64, timeout_ms: u64) -> (Arc<dyn Inventory>, ()) {
        redis_cluster_paying(hold_ms, Payment::External { timeout_ms }).await
    }

    async fn redis_cluster_paying(hold_ms: u64, payment: Payment) -> (Arc<dyn Inventory>, ()) {
        let cluster = common::redis::shared_cluster();
        let target = RedisTarget::from_config(&cluster.url(), true);
        let io = RedisIo::connect(target, CALL_TIMEOUT)
            .await
            .expect("connect");
        let inventory = RedisInventory::with_io(
            io,
            RedisSettings {
                url: cluster.url(),
                key_prefix: common::redis::unique_prefix(),
                hold_ms,
                idempotency_ttl_ms: 3_600_000,
                rejected_idempotency_ttl_ms: 60_000,
                retention_ms: 3_600_000,
                timeout: CALL_TIMEOUT,
                clock: ScriptClock::Caller,
                payment,
            },
        );
        (Arc::new(inventory), ())
    }

    conformance_suite!(redis_cluster);

    mod payments {
        use super::*;
        payment_suite!(redis_cluster_external);
    }
}

/// A sweep whose caller stops waiting while the take of due deals runs (the hub bounds each
/// sweep with a deadline) loses that take's reply: the next sweep still returns the holds.
#[tokio::test]
async fn a_sweep_abandoned_mid_take_loses_no_hold() {
    let (inv, server) = redis(60_000).await;
    inv.expire_due(now_ms()).await.unwrap(); // this node's start-up pass: nothing yet
    let room = fresh_room("abandoned");
    inv.start_deal(
        &room,
        &spec("d", 10, 5, 3_600_000),
        &id("creator"),
        now_ms(),
    )
    .await
    .unwrap();
    let ReserveOutcome::Reserved { expires_at, .. } =
        inv.reserve(&req(&room, "d", "u", "a", 4)).await.unwrap()
    else {
        panic!("held")
    };
    let member = format!("{room}|d");
    due_at(&server, &member, expires_at).await;
    // Polled once (it sends the take) and dropped.
    let gave_up = futures_util::FutureExt::now_or_never(inv.expire_due(expires_at));
    if let Some(done) = gave_up {
        // Redis answered before the first poll returned (a loaded machine can take that long
        // to get back to this thread): the sweep finished, so it must have returned the hold.
        let changes = done.unwrap();
        assert!(changes.iter().any(|c| c.room == room), "{changes:?}");
        return;
    }
    // However far the dropped poll got (its take sent and run with the reply going nowhere, or
    // not yet sent; a visit of the deal sent too, when Redis answered the take within that
    // poll), the next sweep leaves no hold behind. (Asserting that the take had run, and that
    // the next sweep reports the hold, assumed the poll got exactly as far as the take.)
    let changes = inv.expire_due(expires_at).await.unwrap();
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (10, 0), "{changes:?}");
}

/// The Lua commission (doubles, two steps) is `sales::commission` exactly, at the edges of each
/// step and at the largest totals, whatever rate: run alone on the server, case by case.
#[tokio::test]
async fn the_script_commission_agrees_with_rust_at_the_boundaries() {
    use livehub::inventory::sales::commission;
    use livehub::protocol::MAX_TOTAL_CENTS;
    let server = RedisServer::start().expect("redis-server");
    let script = format!(
        "{}\nlocal out = {{}}\nfor i = 1, #ARGV, 2 do\n  \
         out[#out + 1] = string.format('%.0f', commission(tonumber(ARGV[i]), tonumber(ARGV[i + 1])))\n\
         end\nreturn out",
        include_str!("../../src/inventory/lua/commission.lua")
    );
    let totals = [
        0,
        1,
        9_999,
        10_000,
        10_001,
        19_999,
        123_456_789,
        999_993_670_009_999,
        MAX_TOTAL_CENTS - 10_001,
        MAX_TOTAL_CENTS - 1,
        MAX_TOTAL_CENTS,
    ];
    let rates = [0, 1, 1_234, 3_333, 9_999, 10_000, 20_000];
    let cases: Vec<(u64, u32)> = totals
        .iter()
        .flat_map(|t| rates.iter().map(move |r| (*t, *r)))
        .collect();
    let mut args = vec!["EVAL".to_owned(), script, "0".to_owned()];
    for (t, r) in &cases {
        args.extend([t.to_string(), r.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.cli(&args).expect("EVAL");
    let got: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(got.len(), cases.len(), "{out}");
    for ((t, r), lua) in cases.iter().zip(got) {
        assert_eq!(lua, commission(*t, *r).to_string(), "{t} at {r} bps");
        let exact = u128::from(*t) * u128::from((*r).min(10_000)) / 10_000;
        assert_eq!(lua, exact.to_string(), "{t} at {r} bps");
    }
}

/// Where the ledger lives: the deal's `{tag}:sales` hash with the order's own figures, the
/// order stream entry with its attribution, and each creator's index with until when the deal
/// may exist. A purged deal (its keys expired) leaves both readings, and its index entry is
/// dropped once its time has passed.
#[tokio::test]
async fn the_ledger_keys_and_a_purged_deal() {
    use common::conformance::{buyer, order};
    use livehub::funnel::Channel;
    let (inv, server) = redis(60_000).await;
    let room = fresh_room("keys");
    let (ana, bo) = (id("ana"), id("bo"));
    let deal = livehub::protocol::DealSpec {
        price_cents: 1000,
        commission_bps: 1000,
        affiliate_bps: 250,
        ..spec("d", 10, 5, 60_000)
    };
    let t0 = now_ms();
    inv.start_deal(&room, &deal, &ana, t0).await.unwrap();
    let h = reservation(inv.as_ref(), &req(&room, "d", "u", "r", 2)).await;
    let at = now_ms();
    let o = order(
        inv.as_ref(),
        &room,
        &id("u"),
        &h,
        &buyer(Channel::Paid, Some(&bo)),
        at,
    )
    .await;
    assert_eq!((o.commission_cents, o.affiliate_cents), (200, 50));

    let tag = deal_tag("lh", &room, &id("d"));
    let ledger = server.cli(&["HGETALL", &format!("{tag}:sales")]).unwrap();
    let ledger: BTreeMap<&str, &str> = ledger
        .lines()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|p| (p[0], p[1]))
        .collect();
    let bucket = at - at % 10_000;
    let expected: BTreeMap<String, &str> = [
        ("h|orders", "1"),
        ("h|units", "2"),
        ("h|gmv_cents", "2000"),
        ("h|commission_cents", "200"),
        ("c|paid|orders", "1"),
        ("c|paid|units", "2"),
        ("c|paid|gmv_cents", "2000"),
        ("a|bo|orders", "1"),
        ("a|bo|units", "2"),
        ("a|bo|gmv_cents", "2000"),
        ("a|bo|commission_cents", "50"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        [("orders", "1"), ("units", "2"), ("gmv_cents", "2000")]
            .map(|(k, v)| (format!("t|{bucket}|{k}"), v)),
    )
    .collect();
    let ledger: BTreeMap<String, &str> =
        ledger.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(ledger, expected);

    let entry = server
        .cli(&["XRANGE", &format!("{tag}:orders"), "-", "+"])
        .unwrap();
    for field in [
        "channel\npaid",
        "aff\nbo",
        "commission_bps\n1000",
        "commission_cents\n200",
        "affiliate_bps\n250",
        "affiliate_cents\n50",
    ] {
        assert!(entry.contains(field), "{field:?} not in {entry}");
    }
    let score = |creator: &str| {
        server
            .cli(&[
                "ZSCORE",
                &format!("lh:creator:{creator}:deals"),
                &format!("{room}|d"),
            ])
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let purge_at = t0 + 60_000 + 60_000 + 3_600_000;
    assert_eq!(
        score("ana"),
        purge_at + INDEX_SLACK_MS,
        "the host's entry lives as long as the deal, and a little longer"
    );
    assert!(score("bo") >= purge_at, "an affiliate's no shorter");

    // The deal's keys expire (purge_at): it leaves both readings.
    for key in ["deal", "sales", "holds", "hold", "users"] {
        server.cli(&["DEL", &format!("{tag}:{key}")]).unwrap();
    }
    assert!(inv.room_sales(&room, now_ms()).await.unwrap().is_empty());
    assert!(inv.creator_sales(&ana, now_ms()).await.unwrap().is_empty());
    assert!(inv.creator_sales(&bo, now_ms()).await.unwrap().is_empty());
    // Past its time, the next write to the creator's index drops its entry.
    let later = purge_at + INDEX_SLACK_MS + 1;
    let other = fresh_room("keys2");
    inv.start_deal(&other, &spec("d", 1, 1, 60_000), &ana, later)
        .await
        .unwrap();
    let members = server
        .cli(&["ZRANGE", "lh:creator:ana:deals", "0", "-1"])
        .unwrap();
    assert_eq!(members.trim(), format!("{other}|d"));
}

/// A deal stored before rates existed (its hash has no `commission_bps`/`affiliate_bps`) reads
/// as 0% and 0%, and its orders pay nothing, with or without an affiliate.
#[tokio::test]
async fn a_deal_stored_before_rates_reads_as_zero_and_pays_nothing() {
    use common::conformance::{buyer, order};
    use livehub::funnel::Channel;
    let (inv, server) = redis(60_000).await;
    let room = fresh_room("old");
    let deal = livehub::protocol::DealSpec {
        commission_bps: 1000,
        affiliate_bps: 1000,
        ..spec("d", 10, 5, 60_000)
    };
    inv.start_deal(&room, &deal, &id("ana"), now_ms())
        .await
        .unwrap();
    let key = format!("{}:deal", deal_tag("lh", &room, &id("d")));
    server
        .cli(&["HDEL", &key, "commission_bps", "affiliate_bps"])
        .unwrap();
    let (read, _) = inv.room_deals(&room, now_ms()).await.unwrap().remove(0);
    assert_eq!((read.commission_bps, read.affiliate_bps), (0, 0));
    let h = reservation(inv.as_ref(), &req(&room, "d", "u", "r", 1)).await;
    let b = buyer(Channel::Live, Some(&id("bo")));
    let o = order(inv.as_ref(), &room, &id("u"), &h, &b, now_ms()).await;
    assert_eq!(
        (
            o.commission_bps,
            o.commission_cents,
            o.affiliate_bps,
            o.affiliate_cents
        ),
        (0, 0, 0, 0)
    );
    let s = inv.room_sales(&room, now_ms()).await.unwrap();
    assert_eq!(s[0].host.sales.orders, 1);
    assert_eq!(s[0].host.commission_cents, 0);
    assert_eq!(s[0].affiliates[&id("bo")].commission_cents, 0);
}

/// A Lua script that fails is a bug, not an outage (issue 21): with the deal's hash replaced by
/// a string, `reserve.lua`'s HMGET raises WRONGTYPE inside the script, and the inventory answers
/// `Internal`, which a client is told as `internal`. Stopping Redis is still `unavailable`.
#[tokio::test]
async fn a_script_error_is_internal_and_only_an_outage_is_unavailable() {
    let (inv, mut server) = redis(60_000).await;
    let room = fresh_room("scripterr");
    inv.start_deal(
        &room,
        &spec("d", 10, 5, 3_600_000),
        &id("creator"),
        now_ms(),
    )
    .await
    .unwrap();
    let deal_key = format!("{}:deal", deal_tag("lh", &room, &id("d")));
    server.cli(&["DEL", &deal_key]).unwrap();
    server.cli(&["SET", &deal_key, "not a hash"]).unwrap();
    let err = inv
        .reserve(&req(&room, "d", "u", "a", 1))
        .await
        .expect_err("the script fails");
    assert!(matches!(err, InventoryError::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(HubError::from(err).code(), ErrorCode::Internal);

    server.stop().unwrap();
    let err = inv
        .reserve(&req(&room, "d", "u", "b", 1))
        .await
        .expect_err("Redis is down");
    assert!(matches!(err, InventoryError::Unavailable(_)), "{err:?}");
    assert_eq!(HubError::from(err).code(), ErrorCode::Unavailable);
}

/// What an earlier version stored reads on after an upgrade in place (the scripts' replies are
/// JSON, their stored records are not): a reserve's first answer stored as `OK|…` or `R|reason`
/// answers its repeat, this version stores its answers in that same format, and the deal hash
/// keeps an image URL's `|` as `%7C` while every reading shows the URL as given.
#[tokio::test]
async fn records_stored_by_an_earlier_version_read_on() {
    let (inv, server) = redis(60_000).await;
    let room = fresh_room("compat");
    inv.start_deal(&room, &spec("d", 10, 5, 3_600_000), &id("c"), now_ms())
        .await
        .unwrap();
    let held = request_key(&room, "d", "u", "old-hold");
    let expires = now_ms() + 60_000;
    let stored = format!("OK|hab-7|2|{expires}|8|3");
    server.cli(&["SET", &held, &stored, "PX", "60000"]).unwrap();
    let rejected = request_key(&room, "d", "u", "old-reject");
    server.cli(&["SET", &rejected, "R|sold_out"]).unwrap();
    assert_eq!(
        inv.reserve(&req(&room, "d", "u", "old-hold", 2))
            .await
            .unwrap(),
        ReserveOutcome::Reserved {
            reservation: id("hab-7"),
            qty: 2,
            expires_at: expires,
            level: StockLevel {
                remaining: 8,
                version: 3
            },
        }
    );
    assert_eq!(
        inv.reserve(&req(&room, "d", "u", "old-reject", 1))
            .await
            .unwrap(),
        ReserveOutcome::Rejected(RejectReason::SoldOut)
    );
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (10, 0), "a repeat changes nothing");

    let h = reservation(inv.as_ref(), &req(&room, "d", "u", "new", 1)).await;
    let record = server
        .cli(&["GET", &request_key(&room, "d", "u", "new")])
        .unwrap();
    let f: Vec<&str> = record.trim().split('|').collect();
    assert_eq!((f.len(), f[0], f[1], f[2]), (6, "OK", h.as_str(), "1"));

    let deal_key = format!("{}:deal", deal_tag("lh", &room, &id("d")));
    let image = server.cli(&["HGET", &deal_key, "image_url"]).unwrap();
    assert_eq!(image.trim(), "https://img.example/tee%7Cfront.png");
    let (deal, _) = inv.room_deals(&room, now_ms()).await.unwrap().remove(0);
    assert_eq!(
        deal.image_url.as_deref(),
        Some("https://img.example/tee|front.png")
    );
    assert_eq!(deal.title, "Tee | organic cotton");
}
