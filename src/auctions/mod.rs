//! A room's live auctions (issue 24), kept by a backend with the guarantees of the stock: every
//! bid decided atomically by one clock, whichever node takes it, exactly by the rules of
//! [`crate::auction`] (the pure state machine both backends are checked against). The memory
//! backend runs the rules themselves under a lock; the Redis backend runs them as Lua scripts
//! (`lua/`) on the auction's hash, one cluster slot per room.
//!
//! What is here so far: the store (start, bid, close, end by host) on both backends and its
//! conformance suite (`tests/it/auctions.rs`). The commands, events, pages and orders that put it
//! before viewers build on it.

mod memory;
mod redis;

pub use memory::MemoryAuctions;
pub use redis::RedisAuctions;

use async_trait::async_trait;

pub use crate::auction::AuctionState;
use crate::auction::{Accepted, AuctionSpec, Refused};
use crate::commerce::Buyer;
use crate::id::Id;
use crate::inventory::InventoryError;
use crate::protocol::{AuctionStatus, AuctionView, Bidder};

/// An auction as a store keeps it: what it sells and by which rules (its spec, the title
/// resolved), when it started, where it stands, and the leader's display name (viewers see
/// names, never user ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuctionRecord {
    pub spec: AuctionSpec,
    pub started_at: u64,
    pub state: AuctionState,
    pub leader_name: Option<String>,
    /// The leader's channel and affiliate, as their leading bid carried them: the winner's
    /// order is attributed to them.
    pub leader_buyer: Option<Buyer>,
}

/// Who bids, as a store keeps the leader: the name viewers see, and the channel and affiliate
/// the winner's order is attributed to.
#[derive(Clone, Copy, Debug)]
pub struct Bidding<'a> {
    pub name: &'a str,
    pub buyer: &'a Buyer,
}

impl AuctionRecord {
    /// The auction as viewers see it: names, never user ids; the product id as the title
    /// when none was resolved.
    pub fn view(&self) -> AuctionView {
        let (spec, st) = (&self.spec, &self.state);
        let leader = self.leader_name.clone().map(|name| Bidder { name });
        let sold = st.status == AuctionStatus::Sold;
        AuctionView {
            id: spec.id.clone(),
            product_id: spec.product_id.clone(),
            title: spec
                .title
                .clone()
                .unwrap_or_else(|| spec.product_id.to_string()),
            image_url: spec.image_url.clone(),
            currency: spec.currency.clone(),
            start_cents: spec.start_cents,
            increment_cents: spec.increment_cents,
            current_cents: st.current_cents,
            winner: if sold { leader.clone() } else { None },
            leader,
            bids: st.bids,
            ends_at: st.ends_at,
            extend_ms: spec.extend_ms,
            sudden_death: spec.sudden_death,
            status: st.status,
            started_at: self.started_at,
        }
    }

    /// The winner's user id and the price, once it closed sold.
    pub fn sale(&self) -> Option<(&str, u64)> {
        let st = &self.state;
        match (st.status, &st.leader, st.current_cents) {
            (AuctionStatus::Sold, Some(l), Some(price)) => Some((l.user.as_str(), price)),
            _ => None,
        }
    }
}

/// A bid's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BidAnswer {
    Accepted(Accepted),
    Refused(Refused),
}

/// The id of the deal a sold auction's lot is sold as (see `hub/auctions.rs`), one per auction
/// run: `lot-{started_at}-{digest of the auction id}`, a valid id whatever the auction id's
/// length. The funnel counts the auction in that deal's row: exposed (saw it live), tapped
/// (bid), ordered (won).
pub fn lot_id(view: &AuctionView) -> Id {
    let h = crate::id::fnv1a(view.id.as_str().bytes());
    Id::generated(format!("lot-{}-{h:016x}", view.started_at))
}

/// A bid's answer, and where the auction stood after an accepted one (for the viewers'
/// `auction_bid`: the leader's name, which a bid that does not lead leaves to another, and the
/// run it belongs to). A retried request answers all of it as the first time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bid {
    pub answer: BidAnswer,
    pub leader_name: Option<String>,
    /// The auction's start (0 when the answer is a refusal).
    pub started_at: u64,
}

/// What closing an auction found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseAnswer {
    /// This call closed it (sold or unsold, in the state): exactly one call does.
    Closed(AuctionRecord),
    /// Its end has not come.
    Open(AuctionRecord),
    /// Another call closed it before.
    AlreadyClosed(AuctionRecord),
}

/// What a host's end found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndAnswer {
    /// Ended unsold.
    Ended(AuctionRecord),
    /// It has a bid: it runs to its end.
    HasBids(AuctionRecord),
    /// It was already closed.
    Closed(AuctionRecord),
}

/// Keeps auctions. `now` is the caller's clock in Unix ms; the Redis store reads Redis's own
/// instead unless it was made to follow the caller's (tests).
#[async_trait]
pub trait AuctionStore: Send + Sync {
    /// Starts auction `spec.id` in `room` (its title resolved); [`InventoryError::Conflict`]
    /// when the id is taken, [`InventoryError::Invalid`] for a spec out of bounds.
    async fn start(
        &self,
        room: &Id,
        spec: &AuctionSpec,
        now: u64,
    ) -> Result<AuctionRecord, InventoryError>;

    /// `user`'s bid (`bidder` kept while they lead: their name shown as the leader's, their
    /// channel and affiliate for the winner's order); a second call with the same `request_id`
    /// answers what the first did (not-found answers are not kept).
    /// [`InventoryError::NotFound`] for no such auction.
    #[allow(clippy::too_many_arguments)]
    async fn bid(
        &self,
        room: &Id,
        id: &Id,
        user: &str,
        bidder: &Bidding<'_>,
        request_id: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<Bid, InventoryError>;

    /// Closes the auction if its end has come (an answer of [`CloseAnswer::Open`] schedules it
    /// at its new end). A closed auction stays scheduled (it comes back from
    /// [`AuctionStore::due`] after each lease) until [`AuctionStore::settled`]: the caller
    /// settles it once the close is told, so a caller that dies in between loses nothing.
    async fn close(&self, room: &Id, id: &Id, now: u64) -> Result<CloseAnswer, InventoryError>;

    /// The close of a closed auction was told: it is no longer scheduled.
    async fn settled(&self, room: &Id, id: &Id) -> Result<(), InventoryError>;

    /// Up to `limit` auctions whose end has come by `now` and that may still be live, for any
    /// node to [`AuctionStore::close`]: each is taken for `lease_ms` (no other caller gets it
    /// meanwhile) and comes back after that unless closed, so a closer that dies loses nothing.
    async fn due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Id, Id)>, InventoryError>;

    /// A host's end (only without bids).
    async fn end(&self, room: &Id, id: &Id, now: u64) -> Result<EndAnswer, InventoryError>;

    /// Every auction `room` keeps (live, and closed ones until their keys' retention), oldest
    /// first (by id among those started in the same millisecond): what a node loading the room shows its viewers.
    async fn room_auctions(&self, room: &Id) -> Result<Vec<AuctionRecord>, InventoryError>;
}

fn not_found(room: &Id, id: &Id) -> InventoryError {
    InventoryError::NotFound(format!("no auction {id} in room {room}"))
}
