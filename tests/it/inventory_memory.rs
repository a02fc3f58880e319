//! The inventory conformance suite against the embedded memory backend.

use crate::common;
use crate::{conformance_suite, payment_suite};

use std::sync::Arc;

use livehub::inventory::feed::OrderLog;
use livehub::inventory::{Inventory, MemoryInventory, Payment};

async fn memory(hold_ms: u64) -> (Arc<dyn Inventory>, ()) {
    (Arc::new(MemoryInventory::new(hold_ms)), ())
}

conformance_suite!(memory);

async fn paying(hold_ms: u64, timeout_ms: u64) -> (Arc<dyn Inventory>, ()) {
    let inv = MemoryInventory::new(hold_ms)
        .with_orders(Payment::External { timeout_ms }, OrderLog::in_memory());
    (Arc::new(inv), ())
}

mod payments {
    use super::*;
    payment_suite!(paying);
}

/// Reserves that changed no stock leave no answer behind: memory grows with holds only, not with
/// made-up or rejected requests.
#[tokio::test]
async fn rejected_and_unknown_reserves_are_not_remembered() {
    use common::conformance::{audit, fresh_room, id, req, reservation, spec};
    use livehub::hub::now_ms;
    use livehub::inventory::ReserveOutcome;
    use livehub::protocol::RejectReason;

    let inv = MemoryInventory::new(60_000);
    let room = fresh_room("flood");
    inv.start_deal(&room, &spec("d", 2, 1, 60_000), &id("creator"), now_ms())
        .await
        .unwrap();
    reservation(&inv, &req(&room, "d", "u1", "a", 1)).await;
    reservation(&inv, &req(&room, "d", "u2", "a", 1)).await;
    assert_eq!(inv.remembered_answers(), 2);
    for i in 0..5_000 {
        let (deal, why) = if i % 2 == 0 {
            (format!("madeup{i}"), RejectReason::NotFound)
        } else {
            ("d".to_owned(), RejectReason::SoldOut)
        };
        let r = req(&room, &deal, &format!("f{}", i % 50), &format!("r{i}"), 1);
        assert_eq!(
            inv.reserve(&r).await.unwrap(),
            ReserveOutcome::Rejected(why)
        );
    }
    assert_eq!(inv.remembered_answers(), 2);
    let a = audit(&inv, &room, "d").await;
    assert_eq!((a.remaining, a.held), (0, 2));
}
