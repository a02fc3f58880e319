//! The auction closer. Every node asks the store, on one clock (Redis's on Redis), which
//! auctions' ends have come; each is leased to one node at a time, closed by exactly one call
//! (the store decides), its lot sold to the winner, published as the room's `auction` event
//! (the bus publishes a close once, however many nodes try), and only then settled. A node that
//! dies anywhere in between leaves the auction to come back to another node when the lease runs
//! out, which closes (or finds it closed), sells the lot (or finds it sold), publishes and
//! settles it: the close reaches the viewers once, and the winner has one order.
//!
//! The lot: a sold auction's item becomes a one-unit deal of the inventory, held and checked out
//! for the winner at the closing price like any order (each step idempotent), then ended. So
//! the winner's order is in the orders stream, the order feed and its webhooks, the payment
//! flow, the sales ledger (the creator's commission, the affiliate's share, the funnel's GMV)
//! like a checkout's, and the stock invariant holds for it as for every deal.

use std::sync::Arc;
use std::time::Duration;

use super::{Deadline, Hub};
use crate::auctions::{AuctionRecord, CloseAnswer};
use crate::bus::WinnerOrder;
use crate::commerce::{Buyer, Channel};
use crate::inventory::{CheckoutOutcome, ReserveOutcome, ReserveRequest};
use crate::bus::Event;
use crate::clock::now_ms;
use crate::error::HubError;
use crate::funnel::{Moment, MomentKind, Op, Stage};
use crate::protocol::{AuctionView, DealSpec, Id};
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
        let order = self.sell_lot(room, &record).await?;
        match self.publish_close(room, &record, order).await {
            // This node's publish was the one that told it: the close goes on the timeline
            // (and the winner's order in the funnel).
            Ok(Some(_)) => self.mark_close(room, &record).await,
            // Told before, or a room whose lifetime ran out has nobody to tell.
            Ok(None) | Err(HubError::NotLive) => {}
            Err(e) => return Err(e),
        }
        let settle = self.auctions.settled(room, id);
        self.within(Deadline::Host, settle).await
    }

    /// Sells a sold auction's lot to its winner (see the module doc): None for an unsold one.
    /// Every step answers as it did the first time when repeated, so a closer that dies
    /// midway leaves the next one to finish the same order.
    async fn sell_lot(
        &self,
        room: &Id,
        record: &AuctionRecord,
    ) -> Result<Option<WinnerOrder>, HubError> {
        let Some((winner, price_cents)) = record.sale() else {
            return Ok(None);
        };
        let user = Id::new(winner).map_err(|e| HubError::Internal(format!("winner: {e}")))?;
        let view = record.view();
        let lot = lot_spec(&view, record, price_cents);
        let creator = record
            .spec
            .creator
            .clone()
            .unwrap_or_else(|| Id::generated("host".to_owned()));
        let start = self.inventory.start_deal(room, &lot, &creator, now_ms());
        match self.within(Deadline::Host, start).await {
            // Started by an earlier closer of this auction.
            Ok(_) | Err(HubError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        let reserve = ReserveRequest {
            room: room.clone(),
            deal: lot.id.clone(),
            user: user.clone(),
            request_id: Id::generated(format!("won-{}", lot.id)),
            qty: 1,
            now: now_ms(),
        };
        let held = self.within(Deadline::Host, self.inventory.reserve(&reserve));
        let reservation = match held.await? {
            ReserveOutcome::Reserved { reservation, .. } => reservation,
            ReserveOutcome::Rejected(r) => {
                return Err(HubError::Internal(format!("lot {} not held: {r:?}", lot.id)));
            }
        };
        let buyer = record.leader_buyer.clone().unwrap_or(Buyer {
            channel: Channel::Direct,
            aff: None,
        });
        let checkout = self
            .inventory
            .checkout(room, &user, &reservation, &buyer, now_ms());
        let order = match self.within(Deadline::Host, checkout).await? {
            CheckoutOutcome::Ordered(order) => order,
            CheckoutOutcome::Rejected(r) => {
                return Err(HubError::Internal(format!("lot {} not ordered: {r:?}", lot.id)));
            }
        };
        if !order.repeat {
            self.funnel
                .count_order(room, order.channel, order.qty, order.total_cents);
        }
        // Nobody else may hold it, even if the winner's payment fails and the unit returns.
        let end = self.inventory.end_deal(room, &lot.id, now_ms());
        self.within(Deadline::Host, end).await?;
        Ok(Some(WinnerOrder {
            user,
            order: order.order,
            price_cents: order.price_cents,
            status: order.pay_by.map(|_| order.status),
            pay_by: order.pay_by,
        }))
    }

    /// Puts an auction's close on the room's timeline, and its winner's order in the funnel
    /// (`ordered` in the lot's row), straight to the funnel's store: the room need not be open
    /// on the node that closed it. A funnel that misses them is logged.
    async fn mark_close(&self, room: &Id, record: &AuctionRecord) {
        let view = record.view();
        let mut ops = Vec::new();
        // Won: the winner reached `ordered` in the lot (the auction's row of the funnel).
        if let Some(user) = record.sale().and_then(|(u, _)| Id::new(u).ok()) {
            ops.push(Op::Reached {
                user,
                channel: record
                    .leader_buyer
                    .as_ref()
                    .map_or(Channel::Direct, |b| b.channel),
                stage: Stage::Ordered,
                deal: Some(crate::auctions::lot_id(&view)),
            });
        }
        ops.push(Op::Moment(Moment {
            t: now_ms(),
            kind: MomentKind::AuctionClose,
            deal: Some(view.id),
            product: Some(view.product_id),
            title: Some(view.title),
        }));
        let store = self.funnel.store();
        let apply = store.apply(room, &ops);
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

    /// Publishes `record` (a start, or a close without a winner) as the room's `auction`
    /// event. Returns its `seq`, None when the bus had it already.
    pub async fn publish_auction(
        &self,
        room: &Id,
        record: &AuctionRecord,
    ) -> Result<Option<u64>, HubError> {
        self.publish_close(room, record, None).await
    }

    /// Publishes `record` as the room's `auction` event; a sold one names the winner's user and
    /// order (for their order frame, on every node, never shown to viewers).
    async fn publish_close(
        &self,
        room: &Id,
        record: &AuctionRecord,
        order: Option<WinnerOrder>,
    ) -> Result<Option<u64>, HubError> {
        let event = Event::Auction {
            auction: record.view(),
            winner_order: order,
        };
        let publish = self.bus.publish(room, event);
        Ok(match self.within(Deadline::Host, publish).await? {
            crate::bus::Published::Seq(seq) => Some(seq),
            crate::bus::Published::Unchanged => None,
        })
    }
}

/// The deal a sold auction's lot is sold as: one unit at the closing price, under an id of its
/// own per auction run (`lot-{started_at}-{digest of the auction id}`), with the auction's
/// title, image and rates.
fn lot_spec(view: &AuctionView, record: &AuctionRecord, price_cents: u64) -> DealSpec {
    DealSpec {
        id: crate::auctions::lot_id(view),
        product_id: view.product_id.clone(),
        title: Some(view.title.clone()),
        image_url: view.image_url.clone(),
        price_cents,
        currency: view.currency.clone(),
        stock: 1,
        per_user_limit: 1,
        duration_ms: LOT_MS,
        commission_bps: record.spec.commission_bps,
        affiliate_bps: record.spec.affiliate_bps,
    }
}

/// How long a lot's deal lives before the closer ends it (it ends it at once; this only bounds
/// a lot whose closer died between its checkout and its end).
const LOT_MS: u64 = 60_000;
