//! Stock readings on their one way to viewers, the same on every backend. A reading (a deal's
//! `remaining` with its version) enters a room only through [`RoomSink::stock`]:
//!
//! ```text
//! this node's change (reserve, cancel: command/observe.rs; an expired hold: the sweeper)
//!   --> Hub::stock_changed --> Bus::stock
//!         memory: the room's sink, in process
//!         Redis:  this node's room at once, every other node through the room's channel
//!                 (its echo back here carries a version already applied: dropped)
//! a room opening here: Hub::read_stock, the deals as they stand (this node's room only)
//!   --> RoomSink::stock (Room) --> Projection::stock (the newest version wins)
//!   --> the room's counter ticker (Room::tick, every room.tick_ms)
//!   --> each connection's counter slot (Subscribers::set_counter) --> its writer
//! ```
//!
//! A sell-out (or stock coming back) is not a reading but a change of the deal's status: the
//! node that caused it publishes a durable `deal` event, which travels like a comment
//! (`Bus::publish` --> `RoomSink::deliver`); the projection keeps whichever of the two carries
//! the newer stock version.

use std::sync::Arc;

use super::{Deadline, Hub};
use crate::bus::{Event, RoomSink};
use crate::clock::now_ms;
use crate::inventory::StockLevel;
use crate::protocol::Id;
use crate::room::Room;

impl Hub {
    /// A deal's stock changed through this node (a reserve, a cancel, a sweep): every node's
    /// viewers see the reading, and when it sells the deal out (or brings it back) this node
    /// publishes the new status.
    pub fn stock_changed(self: &Arc<Self>, room: &Id, deal: &Id, level: StockLevel) {
        self.bus.stock(room, deal, level);
        let Some(changed) = self
            .existing_room(room)
            .and_then(|r| r.status_change(deal, level, now_ms()))
        else {
            return;
        };
        let hub = Arc::clone(self);
        let room = room.clone();
        self.tracker.spawn(async move {
            let event = Event::Deal {
                deal: changed,
                version: level.version,
            };
            if let Err(e) = hub
                .within(Deadline::Host, hub.bus.publish(&room, event))
                .await
            {
                crate::quiet::warn("deal status not published", &e);
            }
        });
    }

    /// The stock of `room`'s deals as it stands now, for a room just opened on the bus here;
    /// later readings arrive through the bus.
    pub(super) async fn read_stock(&self, room: &Room) {
        let deals = self.inventory.room_deals(room.id(), now_ms());
        match self.within(Deadline::Host, deals).await {
            Ok(deals) => {
                for (deal, level) in deals {
                    RoomSink::stock(room, &deal.id, level);
                }
            }
            Err(e) => tracing::debug!(room = %room.id(), error = %e, "deal stock not read at open"),
        }
    }
}
