//! The inventory conformance suite: every rule of PROTOCOL.md's inventory section, written
//! against the `Inventory` trait so each backend runs exactly the same checks.
//! `conformance_suite!(make)` instantiates it, where `make(hold_ms)` builds a fresh backend.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use livehub::hub::now_ms;
use livehub::inventory::{
    Audit, CancelOutcome, CheckoutOutcome, Inventory, InventoryError, ReserveOutcome,
    ReserveRequest,
};
use livehub::protocol::{
    DealSpec, Id, MAX_DEAL_DURATION_MS, MAX_DEAL_STOCK, MAX_PRICE_CENTS, MAX_TOTAL_CENTS,
    RejectReason,
};

/// A week, the longest hold the tests make.
pub const WEEK_MS: u64 = MAX_DEAL_DURATION_MS;

pub fn id(s: &str) -> Id {
    Id::new(s).expect("id")
}

pub fn spec(deal: &str, stock: u32, limit: u32, duration_ms: u64) -> DealSpec {
    DealSpec {
        id: id(deal),
        product_id: id("p"),
        // A `|` in both: the Redis backend's replies are `|`-separated.
        title: Some("Tee | organic cotton".into()),
        image_url: Some("https://img.example/tee|front.png".into()),
        price_cents: 1999,
        currency: "USD".into(),
        stock,
        per_user_limit: limit,
        duration_ms,
    }
}

pub fn req(room: &Id, deal: &str, user: &str, request_id: &str, qty: u32) -> ReserveRequest {
    ReserveRequest {
        room: room.clone(),
        deal: id(deal),
        user: id(user),
        request_id: id(request_id),
        qty,
        now: now_ms(),
    }
}

/// A room id unique to one test, so backends that share state between tests stay apart.
pub fn fresh_room(name: &str) -> Id {
    id(&format!("{name}-{}", rand_suffix()))
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn audit(inv: &dyn Inventory, room: &Id, deal: &str) -> Audit {
    let a = inv.audit(room, &id(deal), now_ms()).await.expect("audit");
    assert!(
        a.balances(),
        "stock == remaining + held + sold violated: {a:?}"
    );
    a
}

pub async fn reservation(inv: &dyn Inventory, r: &ReserveRequest) -> Id {
    match inv.reserve(r).await.expect("reserve") {
        ReserveOutcome::Reserved { reservation, .. } => reservation,
        other => panic!("expected a hold, got {other:?}"),
    }
}

pub async fn never_oversells_under_concurrency(inv: Arc<dyn Inventory>) {
    let room = fresh_room("spike");
    inv.start_deal(&room, &spec("d", 100, 1, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (inv, room, stop) = (Arc::clone(&inv), room.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut readings = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                audit(inv.as_ref(), &room, "d").await;
                readings += 1;
                tokio::task::yield_now().await;
            }
            readings
        })
    };
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (inv, room) = (Arc::clone(&inv), room.clone());
        tasks.push(tokio::spawn(async move {
            inv.reserve(&req(&room, "d", &format!("u{i}"), "r", 1))
                .await
                .unwrap()
        }));
    }
    let (mut held, mut sold_out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            ReserveOutcome::Reserved { .. } => held += 1,
            ReserveOutcome::Rejected(RejectReason::SoldOut) => sold_out += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(poller.await.unwrap() > 0);
    assert_eq!((held, sold_out), (100, 900));
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held, a.sold), (0, 100, 0));
}

pub async fn per_user_limit_holds_under_concurrency(inv: Arc<dyn Inventory>) {
    let room = fresh_room("limit");
    inv.start_deal(&room, &spec("d", 1000, 3, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (inv, room) = (Arc::clone(&inv), room.clone());
        tasks.push(tokio::spawn(async move {
            inv.reserve(&req(&room, "d", "greedy", &format!("r{i}"), 1))
                .await
                .unwrap()
        }));
    }
    let mut reserved = 0;
    for t in tasks {
        match t.await.unwrap() {
            ReserveOutcome::Reserved { .. } => reserved += 1,
            ReserveOutcome::Rejected(RejectReason::LimitReached) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reserved, 3);
    // Orders count too: check one out, the limit still stands.
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!(a.held, 3);
    // qty over the limit in one go
    let over = inv
        .reserve(&req(&room, "d", "other", "x", 4))
        .await
        .unwrap();
    assert_eq!(over, ReserveOutcome::Rejected(RejectReason::LimitReached));
}

pub async fn a_repeated_request_id_reserves_once(inv: Arc<dyn Inventory>) {
    let room = fresh_room("idem");
    inv.start_deal(&room, &spec("d", 10, 5, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (inv, room) = (Arc::clone(&inv), room.clone());
        tasks.push(tokio::spawn(async move {
            inv.reserve(&req(&room, "d", "u", "same", 2)).await.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(matches!(
        answers[0],
        ReserveOutcome::Reserved { qty: 2, .. }
    ));
    assert!(
        answers.iter().all(|a| a == &answers[0]),
        "every repeat returns the first answer"
    );
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (8, 2));
    // Another user with the same request_id is a different request.
    assert!(matches!(
        inv.reserve(&req(&room, "d", "u2", "same", 1))
            .await
            .unwrap(),
        ReserveOutcome::Reserved { .. }
    ));
    // A rejection changes nothing (it may be kept briefly, or not at all).
    let first = inv.reserve(&req(&room, "d", "u3", "big", 9)).await.unwrap();
    assert_eq!(first, ReserveOutcome::Rejected(RejectReason::LimitReached));
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (7, 3));
}

/// A rejected reserve changed no stock, so it need not be remembered for long: repeated after the
/// stock changed it may be decided afresh, but a request_id still holds stock at most once.
pub async fn rejected_reserves_change_nothing_and_hold_at_most_once(inv: Arc<dyn Inventory>) {
    let room = fresh_room("rejected");
    inv.start_deal(&room, &spec("d", 1, 1, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let first = reservation(inv.as_ref(), &req(&room, "d", "u1", "a", 1)).await;
    let late = req(&room, "d", "u2", "b", 1);
    for _ in 0..3 {
        assert_eq!(
            inv.reserve(&late).await.unwrap(),
            ReserveOutcome::Rejected(RejectReason::SoldOut)
        );
    }
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held, a.sold), (0, 1, 0));
    // Stock comes back: the repeat is either the remembered rejection or a fresh decision.
    inv.cancel(&room, &id("u1"), &first, now_ms())
        .await
        .unwrap();
    let again = inv.reserve(&late).await.unwrap();
    match &again {
        ReserveOutcome::Rejected(RejectReason::SoldOut) => {
            assert_eq!(audit(inv.as_ref(), &room, "d").await.held, 0);
        }
        ReserveOutcome::Reserved { .. } => {
            for _ in 0..3 {
                assert_eq!(inv.reserve(&late).await.unwrap(), again, "holds once");
            }
            let a = audit(inv.as_ref(), &room, "d").await;
            assert_eq!((a.remaining, a.held), (0, 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A reserve of a deal that does not exist leaves nothing: once the deal exists, the same
    // request is decided on its merits, and then remembered.
    let early = req(&room, "later", "u3", "c", 2);
    assert_eq!(
        inv.reserve(&early).await.unwrap(),
        ReserveOutcome::Rejected(RejectReason::NotFound)
    );
    inv.start_deal(
        &room,
        &spec("later", 5, 2, 60_000),
        &id("creator"),
        now_ms(),
    )
    .await
    .unwrap();
    let held = inv.reserve(&early).await.unwrap();
    assert!(
        matches!(held, ReserveOutcome::Reserved { qty: 2, .. }),
        "{held:?}"
    );
    assert_eq!(inv.reserve(&early).await.unwrap(), held);
    let a = audit(inv.as_ref(), &room, "later").await;
    assert_eq!((a.remaining, a.held), (3, 2));
}

/// Price and stock have maxima, refused by the backend itself, and the largest order there can
/// be has an exact total.
pub async fn prices_and_stock_are_bounded_and_totals_exact(inv: Arc<dyn Inventory>) {
    let room = fresh_room("bounds");
    let creator = id("creator");
    let refused = [
        (
            DealSpec {
                price_cents: MAX_PRICE_CENTS + 1,
                ..spec("p1", 10, 1, 60_000)
            },
            "price_cents",
        ),
        (
            DealSpec {
                price_cents: u64::MAX,
                ..spec("p2", 10, 1, 60_000)
            },
            "price_cents",
        ),
        (spec("s1", MAX_DEAL_STOCK + 1, 1, 60_000), "stock"),
        (spec("s2", u32::MAX, 1, 60_000), "stock"),
    ];
    for (bad, field) in &refused {
        match inv.start_deal(&room, bad, &creator, now_ms()).await {
            Err(InventoryError::Invalid(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{bad:?} was not refused: {other:?}"),
        }
        assert!(
            matches!(
                inv.audit(&room, &bad.id, now_ms()).await,
                Err(InventoryError::NotFound(_))
            ),
            "a refused deal leaves nothing"
        );
    }
    // The largest deal: the highest price, the largest stock, sold to one user in one order.
    let top = DealSpec {
        price_cents: MAX_PRICE_CENTS,
        ..spec("top", MAX_DEAL_STOCK, MAX_DEAL_STOCK, 60_000)
    };
    inv.start_deal(&room, &top, &creator, now_ms())
        .await
        .unwrap();
    let h = reservation(
        inv.as_ref(),
        &req(&room, "top", "whale", "all", MAX_DEAL_STOCK),
    )
    .await;
    let CheckoutOutcome::Ordered(order) = inv
        .checkout(&room, &id("whale"), &h, now_ms())
        .await
        .unwrap()
    else {
        panic!("the whole stock checks out")
    };
    assert_eq!(
        (order.qty, order.price_cents, order.total_cents),
        (MAX_DEAL_STOCK, MAX_PRICE_CENTS, MAX_TOTAL_CENTS)
    );
    assert_eq!(
        u128::from(order.total_cents),
        u128::from(MAX_PRICE_CENTS) * u128::from(MAX_DEAL_STOCK)
    );
    // A repeat answers the same order, total included.
    assert_eq!(
        inv.checkout(&room, &id("whale"), &h, now_ms())
            .await
            .unwrap(),
        CheckoutOutcome::Ordered(order)
    );
    let a = audit(inv.as_ref(), &room, "top").await;
    assert_eq!((a.remaining, a.held, a.sold), (0, 0, MAX_DEAL_STOCK));
}

/// Needs a backend built with hold_ms = WEEK_MS. Among 2,000 deals with week-long holds, a hold
/// about to expire (made a week minus 200 ms ago) comes back at the first sweep after its expiry,
/// and a sweep with nothing due visits no deal at all. Times are passed, not waited for.
pub async fn a_short_hold_returns_among_thousands_of_long_ones(inv: Arc<dyn Inventory>) {
    const LONG: usize = 2000;
    // A fresh backend's first sweep may look at every deal it has (Redis re-indexes them when a
    // process starts): there are none yet.
    inv.expire_due(now_ms()).await.unwrap();
    let room = fresh_room("many");
    let creator = id("creator");
    let made: Vec<()> = stream::iter(0..LONG)
        .map(|i| {
            let (inv, room, creator) = (Arc::clone(&inv), room.clone(), creator.clone());
            async move {
                let deal = format!("long{i}");
                inv.start_deal(&room, &spec(&deal, 10, 5, WEEK_MS), &creator, now_ms())
                    .await
                    .unwrap();
                reservation(inv.as_ref(), &req(&room, &deal, "u", "r", 1)).await;
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(made.len(), LONG);
    inv.start_deal(&room, &spec("short", 10, 5, WEEK_MS), &creator, now_ms())
        .await
        .unwrap();
    let t0 = now_ms();
    let short = ReserveRequest {
        now: t0 - WEEK_MS + 200,
        ..req(&room, "short", "u", "r", 3)
    };
    let ReserveOutcome::Reserved { expires_at, .. } = inv.reserve(&short).await.unwrap() else {
        panic!("the short hold is made")
    };
    assert_eq!(expires_at, t0 + 200);

    let before = inv.sweep_visits();
    for now in [t0, t0 + 100, expires_at - 1] {
        let changes = inv.expire_due(now).await.unwrap();
        assert!(!changes.iter().any(|c| c.room == room), "{changes:?}");
    }
    assert_eq!(
        inv.sweep_visits() - before,
        0,
        "a sweep with nothing due visits no deal, among {} live ones",
        LONG + 1
    );

    let before = inv.sweep_visits();
    let changes = inv.expire_due(expires_at).await.unwrap();
    assert_eq!(
        inv.sweep_visits() - before,
        1,
        "the sweep at its expiry visits only the deal with the due hold"
    );
    let back: Vec<_> = changes.iter().filter(|c| c.room == room).collect();
    assert_eq!(back.len(), 1, "{changes:?}");
    assert_eq!(
        (back[0].deal.as_str(), back[0].level.remaining),
        ("short", 10)
    );
    let a = audit(inv.as_ref(), &room, "short").await;
    assert_eq!((a.remaining, a.held), (10, 0));
    for i in (0..LONG).step_by(250) {
        let a = audit(inv.as_ref(), &room, &format!("long{i}")).await;
        assert_eq!((a.remaining, a.held), (9, 1));
    }
    // Nothing is due again until the long holds' expiry.
    let before = inv.sweep_visits();
    inv.expire_due(expires_at + 1).await.unwrap();
    assert_eq!(inv.sweep_visits() - before, 0);

    // A week on, every long hold is due: they all come back, over as many sweeps as the
    // backend's batches need.
    let later = t0 + WEEK_MS + 1000;
    let (mut returned, mut sweeps) = (0, 0);
    while returned < LONG && sweeps < 100 {
        let changes = inv.expire_due(later).await.unwrap();
        returned += changes.iter().filter(|c| c.room == room).count();
        sweeps += 1;
    }
    assert_eq!(returned, LONG, "after {sweeps} sweeps");
    assert!(
        !inv.expire_due(later)
            .await
            .unwrap()
            .iter()
            .any(|c| c.room == room),
        "each hold comes back once"
    );
    for i in (0..LONG).step_by(250) {
        let a = inv
            .audit(&room, &id(&format!("long{i}")), later)
            .await
            .unwrap();
        assert!(a.balances(), "{a:?}");
        assert_eq!((a.remaining, a.held), (10, 0));
    }
}

pub async fn checkout_and_cancel_are_idempotent(inv: Arc<dyn Inventory>) {
    let room = fresh_room("hold");
    inv.start_deal(&room, &spec("d", 10, 5, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let u = id("u");
    let h1 = reservation(inv.as_ref(), &req(&room, "d", "u", "a", 2)).await;
    let first = inv.checkout(&room, &u, &h1, now_ms()).await.unwrap();
    let CheckoutOutcome::Ordered(order) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(
        (order.qty, order.price_cents, order.currency.as_str()),
        (2, 1999, "USD")
    );
    assert_eq!(
        inv.checkout(&room, &u, &h1, now_ms()).await.unwrap(),
        first,
        "double checkout returns the same order"
    );
    // another user cannot check out or cancel someone else's hold
    let h2 = reservation(inv.as_ref(), &req(&room, "d", "u", "b", 1)).await;
    assert_eq!(
        inv.checkout(&room, &id("thief"), &h2, now_ms())
            .await
            .unwrap(),
        CheckoutOutcome::Rejected(RejectReason::NotFound)
    );
    assert!(matches!(
        inv.cancel(&room, &id("thief"), &h2, now_ms())
            .await
            .unwrap(),
        CancelOutcome::Rejected(RejectReason::NotFound)
    ));
    // cancel returns stock at once, and again is still released
    let c1 = inv.cancel(&room, &u, &h2, now_ms()).await.unwrap();
    assert!(matches!(c1, CancelOutcome::Released { level: Some(l), .. } if l.remaining == 8));
    assert!(matches!(
        inv.cancel(&room, &u, &h2, now_ms()).await.unwrap(),
        CancelOutcome::Released { .. }
    ));
    // a cancelled hold cannot be checked out; an order cannot be cancelled
    assert_eq!(
        inv.checkout(&room, &u, &h2, now_ms()).await.unwrap(),
        CheckoutOutcome::Rejected(RejectReason::NotFound)
    );
    assert!(matches!(
        inv.cancel(&room, &u, &h1, now_ms()).await.unwrap(),
        CancelOutcome::Rejected(RejectReason::NotFound)
    ));
    // unknown reservation
    assert_eq!(
        inv.checkout(&room, &u, &id("nope"), now_ms())
            .await
            .unwrap(),
        CheckoutOutcome::Rejected(RejectReason::NotFound)
    );
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held, a.sold), (8, 0, 2));
    // per-user limit counts orders: 2 sold to u, limit 5 → 3 more at most
    assert_eq!(
        inv.reserve(&req(&room, "d", "u", "c", 4)).await.unwrap(),
        ReserveOutcome::Rejected(RejectReason::LimitReached)
    );
    assert!(matches!(
        inv.reserve(&req(&room, "d", "u", "d", 3)).await.unwrap(),
        ReserveOutcome::Reserved { .. }
    ));
}

pub async fn ended_deals_refuse_reserves_but_holds_still_check_out(inv: Arc<dyn Inventory>) {
    let room = fresh_room("end");
    let started = inv
        .start_deal(&room, &spec("d", 10, 5, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    // The product's title and image travel with the deal, `|` and all.
    let named = |d: &livehub::protocol::Deal| {
        assert_eq!(d.title, "Tee | organic cotton");
        assert_eq!(
            d.image_url.as_deref(),
            Some("https://img.example/tee|front.png")
        );
    };
    named(&started);
    let h = reservation(inv.as_ref(), &req(&room, "d", "u", "a", 1)).await;
    let ended = inv.end_deal(&room, &id("d"), now_ms()).await.unwrap();
    named(&ended.deal);
    assert!(ended.was_live);
    assert_eq!(ended.deal.status, livehub::protocol::DealStatus::Ended);
    assert!(
        !inv.end_deal(&room, &id("d"), now_ms())
            .await
            .unwrap()
            .was_live
    );
    assert_eq!(
        inv.reserve(&req(&room, "d", "u", "b", 1)).await.unwrap(),
        ReserveOutcome::Rejected(RejectReason::DealNotLive)
    );
    assert!(matches!(
        inv.checkout(&room, &id("u"), &h, now_ms()).await.unwrap(),
        CheckoutOutcome::Ordered(_)
    ));
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!(
        (a.remaining, a.held, a.sold, a.status),
        (9, 0, 1, livehub::protocol::DealStatus::Ended)
    );
    // a deal id is used once per room
    assert!(matches!(
        inv.start_deal(&room, &spec("d", 1, 1, 1000), &id("creator"), now_ms())
            .await,
        Err(livehub::inventory::InventoryError::Conflict(_))
    ));
    // unknown deals
    assert_eq!(
        inv.reserve(&req(&room, "zz", "u", "c", 1)).await.unwrap(),
        ReserveOutcome::Rejected(RejectReason::NotFound)
    );
    assert!(matches!(
        inv.audit(&room, &id("zz"), now_ms()).await,
        Err(livehub::inventory::InventoryError::NotFound(_))
    ));
}

/// Needs a backend built with hold_ms = 200.
pub async fn expired_holds_return_to_stock(inv: Arc<dyn Inventory>) {
    let room = fresh_room("expiry");
    inv.start_deal(&room, &spec("d", 5, 5, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let h = reservation(inv.as_ref(), &req(&room, "d", "u", "a", 3)).await;
    let _keep = reservation(inv.as_ref(), &req(&room, "d", "v", "a", 1)).await;
    assert_eq!(audit(inv.as_ref(), &room, "d").await.remaining, 1);
    tokio::time::sleep(Duration::from_millis(350)).await; // the hold time itself is under test
    let changes = inv.expire_due(now_ms()).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.room == room && c.level.remaining == 5),
        "{changes:?}"
    );
    let a = audit(inv.as_ref(), &room, "d").await;
    assert_eq!((a.remaining, a.held), (5, 0));
    // sweeping again changes nothing
    assert!(
        !inv.expire_due(now_ms())
            .await
            .unwrap()
            .iter()
            .any(|c| c.room == room)
    );
    assert_eq!(
        inv.checkout(&room, &id("u"), &h, now_ms()).await.unwrap(),
        CheckoutOutcome::Rejected(RejectReason::NotFound)
    );
    // the user's limit is free again
    assert!(matches!(
        inv.reserve(&req(&room, "d", "u", "b", 5)).await.unwrap(),
        ReserveOutcome::Reserved { .. }
    ));
}

/// Random interleavings of every operation from many users keep the invariant at every audit.
pub async fn random_operations_keep_the_invariant(inv: Arc<dyn Inventory>, seed: u64) {
    let room = fresh_room("random");
    inv.start_deal(&room, &spec("d", 50, 4, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (inv, room) = (Arc::clone(&inv), room.clone());
        tasks.push(tokio::spawn(async move {
            let mut x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(w * 1442695040888963407 + 1);
            let mut holds: Vec<(Id, Id)> = Vec::new();
            for step in 0..150 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let user = format!("u{}", x % 12);
                match x % 5 {
                    0 | 1 => {
                        let r = req(
                            &room,
                            "d",
                            &user,
                            &format!("w{w}s{step}"),
                            (x % 3 + 1) as u32,
                        );
                        if let ReserveOutcome::Reserved { reservation, .. } =
                            inv.reserve(&r).await.unwrap()
                        {
                            holds.push((id(&user), reservation));
                        }
                    }
                    2 if !holds.is_empty() => {
                        let (u, h) = holds.swap_remove((x as usize / 7) % holds.len());
                        inv.checkout(&room, &u, &h, now_ms()).await.unwrap();
                    }
                    3 if !holds.is_empty() => {
                        let (u, h) = holds.swap_remove((x as usize / 7) % holds.len());
                        inv.cancel(&room, &u, &h, now_ms()).await.unwrap();
                    }
                    _ => {
                        let a = audit(inv.as_ref(), &room, "d").await;
                        assert!(a.remaining <= a.stock);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    audit(inv.as_ref(), &room, "d").await;
}

/// Instantiates the suite for one backend. `$make` is
/// `async fn(hold_ms: u64) -> (Arc<dyn Inventory>, Guard)`; the guard (e.g. a throwaway server)
/// lives until the test ends.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn never_oversells_under_concurrency() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::never_oversells_under_concurrency(inv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn per_user_limit_holds_under_concurrency() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::per_user_limit_holds_under_concurrency(inv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_repeated_request_id_reserves_once() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::a_repeated_request_id_reserves_once(inv).await;
        }
        #[tokio::test]
        async fn checkout_and_cancel_are_idempotent() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::checkout_and_cancel_are_idempotent(inv).await;
        }
        #[tokio::test]
        async fn ended_deals_refuse_reserves_but_holds_still_check_out() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::ended_deals_refuse_reserves_but_holds_still_check_out(inv).await;
        }
        #[tokio::test]
        async fn expired_holds_return_to_stock() {
            let (inv, _guard) = $make(200).await;
            common::conformance::expired_holds_return_to_stock(inv).await;
        }
        #[tokio::test]
        async fn rejected_reserves_change_nothing_and_hold_at_most_once() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::rejected_reserves_change_nothing_and_hold_at_most_once(inv).await;
        }
        #[tokio::test]
        async fn prices_and_stock_are_bounded_and_totals_exact() {
            let (inv, _guard) = $make(60_000).await;
            common::conformance::prices_and_stock_are_bounded_and_totals_exact(inv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_short_hold_returns_among_thousands_of_long_ones() {
            let (inv, _guard) = $make(common::conformance::WEEK_MS).await;
            common::conformance::a_short_hold_returns_among_thousands_of_long_ones(inv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn random_operations_keep_the_invariant() {
            // One backend for every seed (each seed plays in a room of its own), so a backend
            // that is slow to start (a Redis Cluster) is started once.
            let (inv, _guard) = $make(60_000).await;
            for seed in 1..=20 {
                common::conformance::random_operations_keep_the_invariant(Arc::clone(&inv), seed)
                    .await;
            }
        }
    };
}
