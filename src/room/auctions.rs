//! A room's auctions on this node: each as its last durable event left it, moved on by the
//! latest bid heard from any node (the one with the most bids wins), and the bids not yet sent
//! as `auction_bid` frames. Pure: no lock, no I/O.

use crate::bus::AuctionTick;
use crate::protocol::{AuctionStatus, AuctionView, ServerMsg};

struct Kept {
    view: AuctionView,
    /// A bid moved it since the last [`AuctionBoard::take_changes`].
    dirty: bool,
}

/// The room's auctions, oldest first.
#[derive(Default)]
pub struct AuctionBoard {
    kept: Vec<Kept>,
}

impl AuctionBoard {
    /// Replaces everything with the auctions as the bus kept them.
    pub fn load(&mut self, auctions: Vec<AuctionView>) {
        self.kept = auctions
            .into_iter()
            .map(|view| Kept { view, dirty: false })
            .collect();
    }

    /// An auction's durable event (a start, a close), or its state read from the store when
    /// the room opens here: it replaces what was kept of the same run, and a start under a kept
    /// id begins a new run. Nothing undoes a close, and a live state never undoes bids already
    /// heard (they may overtake the event on the way).
    pub fn apply(&mut self, view: &AuctionView) {
        match self.kept.iter_mut().find(|k| k.view.id == view.id) {
            Some(k) if k.view.started_at > view.started_at => {}
            // A close is final; a live state never replaces one with more bids.
            Some(k)
                if k.view.started_at == view.started_at
                    && (k.view.status != AuctionStatus::Live
                        || (view.status == AuctionStatus::Live && k.view.bids > view.bids)) => {}
            Some(k) => {
                k.view = view.clone();
                k.dirty = false;
            }
            None => self.kept.push(Kept {
                view: view.clone(),
                dirty: false,
            }),
        }
    }

    /// A bid heard from any node: kept when it is of a live run here and newer (more bids)
    /// than what is kept. True when it changed the auction.
    pub fn bid(&mut self, tick: AuctionTick) -> bool {
        let Some(k) = self.kept.iter_mut().find(|k| {
            k.view.id == tick.auction
                && k.view.started_at == tick.started_at
                && k.view.status == AuctionStatus::Live
        }) else {
            return false;
        };
        if tick.bids <= k.view.bids {
            return false;
        }
        k.view.current_cents = Some(tick.current_cents);
        k.view.leader = tick.leader;
        k.view.bids = tick.bids;
        k.view.ends_at = tick.ends_at;
        k.dirty = true;
        true
    }

    /// `auction_bid` frames for the live auctions a bid moved since the last call.
    pub fn take_changes(&mut self) -> Vec<ServerMsg> {
        self.kept
            .iter_mut()
            .filter_map(|k| {
                let moved = std::mem::take(&mut k.dirty);
                if !moved || k.view.status != AuctionStatus::Live {
                    return None;
                }
                Some(ServerMsg::AuctionBid {
                    auction: k.view.id.clone(),
                    current_cents: k.view.current_cents?,
                    leader: k.view.leader.clone(),
                    bids: k.view.bids,
                    ends_at: k.view.ends_at,
                })
            })
            .collect()
    }

    /// Live auction `id` as it stands, without copying it.
    pub fn live_one(&self, id: &crate::protocol::Id) -> Option<&AuctionView> {
        self.kept
            .iter()
            .map(|k| &k.view)
            .find(|v| &v.id == id && v.status == AuctionStatus::Live)
    }

    /// The live auctions as they stand, oldest first (`welcome`'s `auctions`).
    pub fn live(&self) -> Vec<AuctionView> {
        self.kept
            .iter()
            .filter(|k| k.view.status == AuctionStatus::Live)
            .map(|k| k.view.clone())
            .collect()
    }

    /// Every auction kept, as it stands.
    pub fn all(&self) -> Vec<AuctionView> {
        self.kept.iter().map(|k| k.view.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Bidder, Id};

    fn view(status: AuctionStatus, bids: u32, started_at: u64) -> AuctionView {
        AuctionView {
            id: Id::new("a1").unwrap(),
            product_id: Id::new("p").unwrap(),
            title: "Lamp".into(),
            image_url: None,
            currency: "USD".into(),
            start_cents: 100,
            increment_cents: 10,
            current_cents: (bids > 0).then_some(100),
            leader: None,
            bids,
            ends_at: 10_000,
            extend_ms: 1_000,
            sudden_death: false,
            status,
            winner: None,
            started_at,
        }
    }

    fn tick(bids: u32, cents: u64, started_at: u64) -> AuctionTick {
        AuctionTick {
            auction: Id::new("a1").unwrap(),
            started_at,
            current_cents: cents,
            leader: Some(Bidder { name: "Ann".into() }),
            bids,
            ends_at: 12_000,
        }
    }

    #[test]
    fn the_latest_bid_wins_whatever_order_they_arrive_in_and_goes_out_once() {
        let mut b = AuctionBoard::default();
        b.apply(&view(AuctionStatus::Live, 0, 5));
        assert!(b.bid(tick(3, 130, 5)));
        assert!(!b.bid(tick(2, 120, 5)), "an older bid arriving late");
        assert!(!b.bid(tick(9, 900, 4)), "another run's");
        let sent = b.take_changes();
        assert_eq!(sent.len(), 1);
        assert!(
            matches!(&sent[0], ServerMsg::AuctionBid { current_cents: 130, bids: 3, ends_at: 12_000, .. }),
            "{sent:?}"
        );
        assert!(b.take_changes().is_empty(), "sent once");
        assert_eq!(b.live()[0].current_cents, Some(130));
    }

    #[test]
    fn a_close_ends_the_bids_and_a_late_start_event_does_not_undo_them() {
        let mut b = AuctionBoard::default();
        b.apply(&view(AuctionStatus::Live, 0, 5));
        b.bid(tick(2, 120, 5));
        b.apply(&view(AuctionStatus::Live, 0, 5));
        assert_eq!(b.live()[0].bids, 2, "bids heard before the start event stay");
        let mut sold = view(AuctionStatus::Sold, 2, 5);
        sold.winner = Some(Bidder { name: "Ann".into() });
        b.apply(&sold);
        assert!(b.live().is_empty());
        b.apply(&view(AuctionStatus::Live, 2, 5));
        assert!(b.live().is_empty(), "a close is final");
        assert!(!b.bid(tick(3, 130, 5)), "no bid after the close");
        assert!(b.take_changes().is_empty());
        b.apply(&view(AuctionStatus::Live, 0, 50));
        assert_eq!(b.live().len(), 1, "the id used again starts a new run");
        assert_eq!(b.all().len(), 1);
    }
}
