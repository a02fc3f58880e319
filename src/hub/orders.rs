//! Order status to buyers: every node follows the order feed from where it stood when the node
//! started and tells each change of an order (paid, failed, expired) to the buyer's
//! connections in the order's room on this node. One path for every backend and every cause
//! (a merchant's call on any node, a sweep's expiry on any node), as stock readings have one.

use std::sync::Arc;
use std::time::Duration;

use super::{Deadline, Hub};
use crate::orders::{OrderEvent, OrderEventKind};
use crate::protocol::ServerMsg;

/// How often a node reads the feed for order changes.
pub const ORDERS_POLL_MS: u64 = 200;
/// Most events one read takes.
const READ: usize = 500;

impl Hub {
    /// Follows the order feed until shutdown (see the module doc). A failed read is retried on
    /// the next tick from the same cursor, so nothing is skipped.
    pub(super) async fn follow_orders(self: Arc<Self>) {
        let mut interval = tokio::time::interval(Duration::from_millis(ORDERS_POLL_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut cursor: Option<String> = None;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let Some(at) = cursor.clone() else {
                match self
                    .within(Deadline::Host, self.inventory.order_feed_end())
                    .await
                {
                    Ok(end) => cursor = Some(end),
                    Err(e) => crate::quiet::warn("order feed not read", &e),
                }
                continue;
            };
            match self
                .within(
                    Deadline::Host,
                    self.inventory.order_events(Some(&at), READ),
                )
                .await
            {
                Ok(page) => {
                    for ev in &page.events {
                        self.tell_buyer(ev);
                    }
                    cursor = Some(page.cursor);
                    if page.more {
                        interval.reset_immediately();
                    }
                }
                Err(e) => crate::quiet::warn("order feed not read", &e),
            }
        }
    }

    /// Tells `ev` to its buyer's connections here (a `created` event was the checkout's own
    /// reply).
    fn tell_buyer(&self, ev: &OrderEvent) {
        if ev.kind == OrderEventKind::Created {
            return;
        }
        let Some(room) = self.existing_room(&ev.order.room) else {
            return;
        };
        let o = &ev.order;
        let told = room.tell(
            &o.user,
            &ServerMsg::OrderStatus {
                order: o.id.clone(),
                deal: o.deal.clone(),
                status: o.status,
                qty: o.qty,
                total_cents: o.total_cents,
                currency: o.currency.clone(),
            },
        );
        metrics::counter!(crate::metrics::ORDER_STATUS_TOLD).increment(told);
    }
}
