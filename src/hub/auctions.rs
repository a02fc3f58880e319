//! The auction closer. Every node asks the store, on one clock (Redis's on Redis), which
//! auctions' ends have come; each is leased to one node at a time, closed by exactly one call
//! (the store decides), published as the room's `auction` event (the bus publishes a close
//! once, however many nodes try), and only then settled. A node that dies anywhere in between
//! leaves the auction to come back to another node when the lease runs out, which closes (or
//! finds it closed), publishes and settles it: the close reaches the viewers, once.

use std::sync::Arc;
use std::time::Duration;

use super::{Deadline, Hub};
use crate::auctions::{AuctionRecord, CloseAnswer};
use crate::bus::Event;
use crate::clock::now_ms;
use crate::error::HubError;
use crate::funnel::{Moment, MomentKind, Op};
use crate::protocol::Id;
use crate::room::Room;

/// How often a node asks for auctions whose end has come: the most a close waits after its end.
pub const CLOSE_POLL_MS: u64 = 50;
/// How long a node has to close, publish and settle an auction it took.
pub const CLOSE_LEASE_MS: u64 = 2_000;
/// Most auctions one ask takes.
const CLOSE_BATCH: usize = 100;

impl Hub {
    /// Closes auctions as their ends come, until shutdown (see the module doc).
    pub(super) async fn close_auctions(self: Arc<Self>) {
        let mut interval = tokio::time::interval(Duration::from_millis(CLOSE_POLL_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let due = self
                .auctions
                .due(now_ms(), CLOSE_LEASE_MS, CLOSE_BATCH);
            match self.within(Deadline::Host, due).await {
                Ok(due) => {
                    for (room, id) in due {
                        if let Err(e) = self.close_auction(&room, &id).await {
                            crate::quiet::warn("auction not closed; it comes back", &e);
                        }
                    }
                }
                Err(e) => crate::quiet::warn("auction closer failed", &e),
            }
        }
    }

    /// Closes `room`'s auction `id` if its end has come, publishes the close and settles it.
    async fn close_auction(&self, room: &Id, id: &Id) -> Result<(), HubError> {
        let close = self.auctions.close(room, id, now_ms());
        let record = match self.within(Deadline::Host, close).await {
            Ok(CloseAnswer::Closed(r) | CloseAnswer::AlreadyClosed(r)) => r,
            // A bid moved its end: the store scheduled it again.
            Ok(CloseAnswer::Open(_)) => return Ok(()),
            Err(HubError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.publish_auction(room, &record).await {
            // This node's publish was the one that told it: the close goes on the timeline.
            Ok(Some(_)) => self.mark_close(room, &record).await,
            // Told before, or a room whose lifetime ran out has nobody to tell.
            Ok(None) | Err(HubError::NotLive) => {}
            Err(e) => return Err(e),
        }
        let settle = self.auctions.settled(room, id);
        self.within(Deadline::Host, settle).await
    }

    /// Puts an auction's close on the room's timeline, straight to the funnel's store: the
    /// room need not be open on the node that closed it. A timeline that misses it is logged.
    async fn mark_close(&self, room: &Id, record: &AuctionRecord) {
        let view = record.view();
        let moment = Op::Moment(Moment {
            t: now_ms(),
            kind: MomentKind::AuctionClose,
            deal: Some(view.id),
            product: Some(view.product_id),
            title: Some(view.title),
        });
        let store = self.funnel.store();
        let apply = store.apply(room, std::slice::from_ref(&moment));
        if let Err(e) = self.within(Deadline::Host, apply).await {
            crate::quiet::warn("auction close not put on the timeline", &e);
        }
    }

    /// The room's auctions as the store has them, for a room just opened on the bus here:
    /// the bus keeps each as its last event left it, the store has the bids since. Later bids
    /// arrive through the bus.
    pub(super) async fn read_auctions(&self, room: &Room) {
        let all = self.auctions.room_auctions(room.id());
        match self.within(Deadline::Host, all).await {
            Ok(all) => {
                let views: Vec<_> = all.iter().map(AuctionRecord::view).collect();
                room.seed_auctions(&views);
            }
            Err(e) => {
                tracing::debug!(room = %room.id(), error = %e, "auctions not read at open");
            }
        }
    }

    /// Publishes `record` as the room's `auction` event; a close names the winner's user (for
    /// their order frame, on every node). Returns its `seq`, None when the bus had it already.
    pub async fn publish_auction(
        &self,
        room: &Id,
        record: &AuctionRecord,
    ) -> Result<Option<u64>, HubError> {
        let event = Event::Auction {
            auction: record.view(),
            winner_user: record.sale().and_then(|(user, _)| Id::new(user).ok()),
        };
        let publish = self.bus.publish(room, event);
        Ok(match self.within(Deadline::Host, publish).await? {
            crate::bus::Published::Seq(seq) => Some(seq),
            crate::bus::Published::Unchanged => None,
        })
    }
}
