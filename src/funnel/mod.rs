//! The show funnel (issue 14): where viewers came from ([`Channel`]), what they saw and did
//! (distinct users per [`Stage`]), and what they bought (the inventory's sales ledger).
//!
//! - Each room on each node keeps a [`RoomTally`]: recording a join, a tap or an order is O(1)
//!   in memory. Every `funnel.flush_ms` the room's ticker sends the tally's ops to the
//!   [`FunnelStore`] in one batch (one `EVALSHA` on Redis), so no Redis round trip is added per
//!   comment, per viewer or per event.
//! - The store ([`MemoryFunnel`] in one process, [`RedisFunnel`] shared by every node) counts
//!   distinct users per stage and channel, the room's and each deal's, exactly up to
//!   [`store::EXACT_USERS`] per counter and by HyperLogLog above.
//! - Orders, units, GMV and commission are not counted here: the inventory's checkout writes
//!   them in the same atomic step as the order ([`crate::inventory::sales`]), and [`view`]
//!   joins both into what the API answers.

pub mod memory;
pub mod record;
pub mod redis;
pub mod store;
pub mod tally;
pub mod view;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

/// Re-exported from [`crate::commerce`], its home, for existing callers.
pub use crate::commerce::Channel;
pub use memory::MemoryFunnel;
pub use record::{Moment, MomentKind, Op, Stage};
pub use redis::RedisFunnel;
pub use store::FunnelStore;
pub use tally::RoomTally;

use crate::config::FunnelConfig;
use crate::metrics as m;
use crate::protocol::Id;

/// The `room` label of rooms past `funnel.metrics_rooms`.
pub const OTHER_ROOMS: &str = "other";

/// The funnel of this node: its store, its settings, and the bounded room labels of its
/// Prometheus counters.
pub struct Funnel {
    store: Arc<dyn FunnelStore>,
    config: FunnelConfig,
    labelled: Mutex<HashSet<Id>>,
}

impl Funnel {
    /// The funnel recording into `store`.
    pub fn new(store: Arc<dyn FunnelStore>, config: FunnelConfig) -> Self {
        Funnel {
            store,
            config,
            labelled: Mutex::new(HashSet::new()),
        }
    }

    /// Where every node's funnel facts meet.
    pub fn store(&self) -> &Arc<dyn FunnelStore> {
        &self.store
    }

    /// The funnel's settings.
    pub fn config(&self) -> &FunnelConfig {
        &self.config
    }

    /// A new room's tally on this node.
    pub fn tally(&self) -> RoomTally {
        RoomTally::new(self.config.engaged_ms)
    }

    /// The `room` label for `room`: its id for the first `funnel.metrics_rooms` rooms this
    /// node labelled, [`OTHER_ROOMS`] after that.
    pub fn room_label(&self, room: &Id) -> String {
        let mut labelled = self.labelled.lock();
        if labelled.contains(room) {
            return room.to_string();
        }
        if labelled.len() < self.config.metrics_rooms {
            labelled.insert(room.clone());
            return room.to_string();
        }
        OTHER_ROOMS.to_owned()
    }

    /// Counts a new order (never a repeated checkout) on this node's Prometheus counters.
    pub fn count_order(&self, room: &Id, channel: Channel, qty: u32, total_cents: u64) {
        let labels = [
            ("room", self.room_label(room)),
            ("channel", channel.as_str().to_owned()),
        ];
        metrics::counter!(m::FUNNEL_ORDERS, &labels).increment(1);
        metrics::counter!(m::FUNNEL_UNITS, &labels).increment(u64::from(qty));
        metrics::counter!(m::FUNNEL_GMV_CENTS, &labels).increment(total_cents);
    }

    /// Sends `tally`'s ops for `room` to the store; ops that did not arrive are kept for the
    /// next flush (bounded, see [`tally::MAX_PENDING_OPS`]).
    pub async fn flush(
        &self,
        room: &Id,
        tally: &RoomTally,
        viewers_here: u64,
        now: u64,
        within: std::time::Duration,
    ) {
        let ops = tally.take(viewers_here, now);
        if ops.is_empty() {
            return;
        }
        let sent = tokio::time::timeout(within, self.store.apply(room, &ops)).await;
        let failed = match sent {
            Ok(Ok(())) => {
                metrics::counter!(m::FUNNEL_OPS).increment(ops.len() as u64);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", within.as_millis()),
        };
        let dropped = tally.give_back(ops);
        if dropped > 0 {
            metrics::counter!(m::FUNNEL_OPS_DROPPED).increment(dropped as u64);
        }
        crate::quiet::warn(
            "funnel facts not sent; kept for the next flush",
            &crate::error::HubError::Unavailable(failed),
        );
    }
}
