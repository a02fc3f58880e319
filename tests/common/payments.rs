//! The payment conformance suite (issue 23), written against the `Inventory` trait so every
//! backend runs the same checks: `payment_suite!(make)` instantiates it, where
//! `make(hold_ms, payment_timeout_ms)` builds a fresh backend with `orders.payment =
//! "external"`. Time is the caller's (`now` passed to every call), so expiry needs no sleep.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use livehub::hub::now_ms;
use livehub::inventory::{
    Audit, CheckoutOutcome, Inventory, InventoryError, ReserveOutcome, ReserveRequest,
    SettleOutcome, Settlement,
};
use livehub::orders::{OrderEvent, OrderEventKind, OrderStatus};
use livehub::protocol::{Id, RejectReason};

use super::conformance::{direct, fresh_room, id, spec};

/// How long a pending order waits in these tests: shorter than the hold (60 s), so the sweep
/// must find a deal by its pending orders' pay_by, not only by its holds.
pub const PAY_MS: u64 = 30_000;

fn at(room: &Id, user: &str, request_id: &str, qty: u32, now: u64) -> ReserveRequest {
    ReserveRequest {
        room: room.clone(),
        deal: id("d"),
        user: id(user),
        request_id: id(request_id),
        qty,
        now,
    }
}

/// `call`'s answer, asked again as a client would while it answers `Unavailable` (a call that
/// outlived the inventory's timeout on a busy machine; every call here is idempotent or a read).
async fn retrying<T, F>(what: &str, mut call: impl FnMut() -> F) -> Result<T, InventoryError>
where
    F: std::future::Future<Output = Result<T, InventoryError>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(InventoryError::Unavailable(e)) if tries < 20 => {
                tries += 1;
                eprintln!("{what}: unavailable ({e}); asking again");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The audit at `now`, which must balance with pending units counted.
pub async fn audit_at(inv: &dyn Inventory, room: &Id, now: u64) -> Audit {
    let deal = id("d");
    let a = retrying("audit", || inv.audit(room, &deal, now))
        .await
        .expect("audit");
    assert!(
        a.balances(),
        "stock == remaining + held + pending + sold violated: {a:?}"
    );
    a
}

/// Reserves `qty` for `user` and checks it out at `now`: the pending order.
async fn pending_order(
    inv: &dyn Inventory,
    room: &Id,
    user: &str,
    qty: u32,
    now: u64,
) -> livehub::inventory::OrderRecord {
    let held = inv
        .reserve(&at(room, user, &format!("r-{user}-{now}"), qty, now))
        .await
        .expect("reserve");
    let ReserveOutcome::Reserved { reservation, .. } = held else {
        panic!("expected a hold for {user}, got {held:?}");
    };
    match inv
        .checkout(room, &id(user), &reservation, &direct(), now)
        .await
        .expect("checkout")
    {
        CheckoutOutcome::Ordered(o) => o,
        other => panic!("expected an order for {user}, got {other:?}"),
    }
}

/// Every event of `room` in the feed, read page by page from the start.
pub async fn room_events(inv: &dyn Inventory, room: &Id) -> Vec<OrderEvent> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = inv
            .order_events(cursor.as_deref(), 7)
            .await
            .expect("order events");
        out.extend(page.events.into_iter().filter(|e| &e.order.room == room));
        cursor = Some(page.cursor);
        if !page.more {
            return out;
        }
    }
}

fn kinds(events: &[OrderEvent], order: &Id) -> Vec<OrderEventKind> {
    events
        .iter()
        .filter(|e| &e.order.id == order)
        .map(|e| e.kind)
        .collect()
}

/// An order is pending until paid, failed or expired; each happens once, with its event, and a
/// failed or expired order's unit sells again.
pub async fn pending_orders_are_settled_once_and_failed_ones_sell_again(inv: Arc<dyn Inventory>) {
    let inv = inv.as_ref();
    let room = fresh_room("pay");
    let t0 = now_ms();
    inv.start_deal(&room, &spec("d", 3, 2, 600_000), &id("host"), t0)
        .await
        .unwrap();

    let paid = pending_order(inv, &room, "ana", 1, t0).await;
    assert_eq!(paid.status, OrderStatus::Pending);
    assert_eq!(paid.pay_by, Some(t0 + PAY_MS));
    let a = audit_at(inv, &room, t0).await;
    assert_eq!((a.remaining, a.held, a.pending, a.sold), (2, 0, 1, 0));
    let settled = inv
        .settle(&paid.order, Settlement::Paid, t0 + 1)
        .await
        .unwrap();
    let SettleOutcome::Settled {
        order,
        changed: true,
        level: None,
    } = settled
    else {
        panic!("paid: {settled:?}");
    };
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!((order.user.as_str(), order.total_cents), ("ana", 1999));
    assert!(
        matches!(
            inv.settle(&paid.order, Settlement::Paid, t0 + 2)
                .await
                .unwrap(),
            SettleOutcome::Settled { changed: false, .. }
        ),
        "paid again is a repeat"
    );
    assert!(
        matches!(
            inv.settle(&paid.order, Settlement::Failed, t0 + 2).await.unwrap(),
            SettleOutcome::Final(o) if o.status == OrderStatus::Paid
        ),
        "failed after paid is final"
    );
    let a = audit_at(inv, &room, t0 + 2).await;
    assert_eq!((a.remaining, a.pending, a.sold), (2, 0, 1));

    let failed = pending_order(inv, &room, "ben", 1, t0 + 3).await;
    let settled = inv
        .settle(&failed.order, Settlement::Failed, t0 + 4)
        .await
        .unwrap();
    let SettleOutcome::Settled {
        order,
        changed: true,
        level: Some(level),
    } = settled
    else {
        panic!("failed: {settled:?}");
    };
    assert_eq!((order.status, level.remaining), (OrderStatus::Failed, 2));
    assert!(
        matches!(
            inv.settle(&failed.order, Settlement::Paid, t0 + 5).await.unwrap(),
            SettleOutcome::Final(o) if o.status == OrderStatus::Failed
        ),
        "a late paid after failed is final"
    );
    // The failed unit is bought again by someone else.
    let again = pending_order(inv, &room, "cat", 2, t0 + 6).await;
    let a = audit_at(inv, &room, t0 + 6).await;
    assert_eq!((a.remaining, a.pending, a.sold), (0, 2, 1));

    // Not paid by pay_by: the sweep expires it and its units come back, once.
    let late = t0 + 6 + PAY_MS;
    assert!(
        !inv.expire_due(late - 1)
            .await
            .unwrap()
            .iter()
            .any(|c| c.room == room),
        "nothing is due a millisecond before pay_by"
    );
    let changes = inv.expire_due(late).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.room == room && c.level.remaining == 2),
        "{changes:?}"
    );
    assert!(
        !inv.expire_due(late + 1)
            .await
            .unwrap()
            .iter()
            .any(|c| c.room == room)
    );
    assert!(
        matches!(
            inv.settle(&again.order, Settlement::Paid, late + 1).await.unwrap(),
            SettleOutcome::Final(o) if o.status == OrderStatus::Expired
        ),
        "a late paid after expiry is final"
    );
    let a = audit_at(inv, &room, late + 1).await;
    assert_eq!((a.remaining, a.pending, a.sold), (2, 0, 1));
    assert_eq!(
        inv.settle(&id("o-none"), Settlement::Paid, late)
            .await
            .unwrap(),
        SettleOutcome::NotFound
    );

    // The feed has every change of every order, once, each order's in order.
    let events = room_events(inv, &room).await;
    use OrderEventKind::{Created, Expired, Failed, Paid};
    assert_eq!(kinds(&events, &paid.order), [Created, Paid]);
    assert_eq!(kinds(&events, &failed.order), [Created, Failed]);
    assert_eq!(kinds(&events, &again.order), [Created, Expired]);
    let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let created = &events[0];
    assert_eq!(
        (created.order.status, created.order.pay_by, created.ts),
        (OrderStatus::Pending, Some(t0 + PAY_MS), t0)
    );
    // Each buyer's own orders, with their status now.
    let room = &room;
    let mine = |user: &'static str| async move {
        let mut got: Vec<(String, OrderStatus)> = inv
            .user_orders(room, &id(user), late + 1)
            .await
            .expect("user orders")
            .into_iter()
            .map(|o| (o.id.to_string(), o.status))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        got
    };
    assert_eq!(
        mine("ana").await,
        [(paid.order.to_string(), OrderStatus::Paid)]
    );
    assert_eq!(
        mine("ben").await,
        [(failed.order.to_string(), OrderStatus::Failed)]
    );
    assert_eq!(
        mine("cat").await,
        [(again.order.to_string(), OrderStatus::Expired)]
    );
    assert!(mine("nobody").await.is_empty());

    // From the end there is nothing more, until something happens.
    let end = inv.order_feed_end().await.unwrap();
    assert!(
        inv.order_events(Some(&end), 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

/// The per-user limit counts pending and paid units; a failed order frees its units.
pub async fn the_limit_counts_pending_orders(inv: Arc<dyn Inventory>) {
    let inv = inv.as_ref();
    let room = fresh_room("limit");
    let t0 = now_ms();
    inv.start_deal(&room, &spec("d", 10, 2, 600_000), &id("host"), t0)
        .await
        .unwrap();
    let order = pending_order(inv, &room, "ana", 2, t0).await;
    assert_eq!(
        inv.reserve(&at(&room, "ana", "more", 1, t0 + 1))
            .await
            .unwrap(),
        ReserveOutcome::Rejected(RejectReason::LimitReached)
    );
    // A repeated checkout returns the same order with its status now.
    let repeat = inv
        .checkout(&room, &id("ana"), &order.reservation, &direct(), t0 + 2)
        .await
        .unwrap();
    assert!(
        matches!(&repeat, CheckoutOutcome::Ordered(o)
        if o.repeat && o.order == order.order && o.status == OrderStatus::Pending),
        "{repeat:?}"
    );
    inv.settle(&order.order, Settlement::Failed, t0 + 3)
        .await
        .unwrap();
    assert!(matches!(
        inv.reserve(&at(&room, "ana", "again", 2, t0 + 4))
            .await
            .unwrap(),
        ReserveOutcome::Reserved { .. }
    ));
}

/// 200 buyers race for 40 units; a third of the orders are paid, a third fail and a third are
/// left to expire, and buyers who lost try again while units come back. Every audit balances
/// (read all along), no unit is sold twice, and the feed tells each order's story once.
pub async fn two_hundred_buyers_with_failing_and_expiring_orders_never_oversell(
    inv: Arc<dyn Inventory>,
    pay_ms: u64,
) {
    let room = fresh_room("churn");
    let stock = 40;
    inv.start_deal(&room, &spec("d", stock, 1, 600_000), &id("host"), now_ms())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (inv, room, stop) = (Arc::clone(&inv), room.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut readings = 0u64;
            while !stop.load(Ordering::Relaxed) {
                retrying("sweep", || inv.expire_due(now_ms()))
                    .await
                    .expect("sweep");
                let a = audit_at(inv.as_ref(), &room, now_ms()).await;
                assert!(a.sold <= a.stock);
                readings += 1;
                tokio::task::yield_now().await;
            }
            readings
        })
    };
    let mut buyers = Vec::new();
    let sold = Arc::new(AtomicU32::new(0));
    for i in 0..200u32 {
        let (inv, room, sold) = (Arc::clone(&inv), room.clone(), Arc::clone(&sold));
        buyers.push(tokio::spawn(async move {
            let user = id(&format!("b{i}"));
            let deadline = now_ms() + 100 * pay_ms;
            let mut n = 0;
            while now_ms() < deadline && sold.load(Ordering::Relaxed) < stock {
                n += 1;
                let r = ReserveRequest {
                    room: room.clone(),
                    deal: id("d"),
                    user: user.clone(),
                    request_id: id(&format!("t{n}")),
                    qty: 1,
                    now: now_ms(),
                };
                let ReserveOutcome::Reserved { reservation, .. } =
                    retrying("reserve", || inv.reserve(&r))
                        .await
                        .expect("reserve")
                else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                let via = direct();
                let checkout = || inv.checkout(&room, &user, &reservation, &via, now_ms());
                let CheckoutOutcome::Ordered(o) =
                    retrying("checkout", checkout).await.expect("checkout")
                else {
                    continue;
                };
                match i % 3 {
                    0 => {
                        match retrying("paid", || inv.settle(&o.order, Settlement::Paid, now_ms()))
                            .await
                        {
                            // Unchanged only when a retry follows a `paid` that landed.
                            Ok(SettleOutcome::Settled { .. }) => {
                                sold.fetch_add(1, Ordering::Relaxed);
                                return Some(o.order);
                            }
                            // Paid too late (a slow machine): it expired; buy again.
                            Ok(SettleOutcome::Final(late))
                                if late.status == OrderStatus::Expired => {}
                            other => panic!("paid: {other:?}"),
                        }
                    }
                    1 => {
                        retrying("failed", || {
                            inv.settle(&o.order, Settlement::Failed, now_ms())
                        })
                        .await
                        .expect("failed");
                        return None;
                    }
                    _ => return None, // left to expire
                }
            }
            None
        }));
    }
    let mut paid = HashSet::new();
    for b in buyers {
        if let Some(o) = b.await.expect("buyer") {
            assert!(paid.insert(o), "an order id given twice");
        }
    }
    // Every pending order is past its pay_by once this passes.
    let end = now_ms() + pay_ms + 1;
    while now_ms() < end {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    inv.expire_due(now_ms()).await.expect("sweep");
    stop.store(true, Ordering::Relaxed);
    let readings = watcher.await.expect("watcher");
    assert!(readings > 0);
    let a = audit_at(inv.as_ref(), &room, now_ms()).await;
    assert_eq!(a.pending, 0, "every order ended: {a:?}");
    assert_eq!(
        a.sold as usize,
        paid.len(),
        "sold is the paid orders: {a:?}"
    );
    assert_eq!(
        a.sold, stock,
        "every unit found a paying buyer (67 of them): {a:?}"
    );

    let events = room_events(inv.as_ref(), &room).await;
    let mut story: BTreeMap<Id, Vec<OrderEventKind>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for e in &events {
        assert!(ids.insert(e.id.clone()), "event {} twice", e.id);
        story.entry(e.order.id.clone()).or_default().push(e.kind);
    }
    let mut ends: HashMap<OrderEventKind, usize> = HashMap::new();
    for (order, kinds) in &story {
        assert_eq!(kinds.len(), 2, "{order}: {kinds:?}");
        assert_eq!(kinds[0], OrderEventKind::Created, "{order}: {kinds:?}");
        *ends.entry(kinds[1]).or_default() += 1;
        assert_eq!(
            kinds[1] == OrderEventKind::Paid,
            paid.contains(order),
            "{order}"
        );
    }
    assert_eq!(
        ends.get(&OrderEventKind::Paid).copied().unwrap_or(0),
        paid.len()
    );
    assert!(ends.get(&OrderEventKind::Failed).copied().unwrap_or(0) > 0);
    assert!(ends.get(&OrderEventKind::Expired).copied().unwrap_or(0) > 0);
}

/// Instantiates the payment suite for `$make(hold_ms, payment_timeout_ms)`.
#[macro_export]
macro_rules! payment_suite {
    ($make:path) => {
        #[tokio::test]
        async fn pending_orders_are_settled_once_and_failed_ones_sell_again() {
            let (inv, _guard) = $make(60_000, common::payments::PAY_MS).await;
            common::payments::pending_orders_are_settled_once_and_failed_ones_sell_again(inv).await;
        }
        #[tokio::test]
        async fn the_limit_counts_pending_orders() {
            let (inv, _guard) = $make(60_000, common::payments::PAY_MS).await;
            common::payments::the_limit_counts_pending_orders(inv).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_hundred_buyers_with_failing_and_expiring_orders_never_oversell() {
            let (inv, _guard) = $make(60_000, 1_000).await;
            common::payments::two_hundred_buyers_with_failing_and_expiring_orders_never_oversell(
                inv, 1_000,
            )
            .await;
        }
    };
}
