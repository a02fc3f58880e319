//! How a room's durable events get their `seq` and reach every hub node that has viewers in the
//! room, in the spirit of centrifuge's `Broker`.
//!
//! A [`Bus`] decides each durable event atomically with its `seq`: the event's precondition
//! (a comment from a user who is not muted and within the comment rate, a deletion of a comment
//! that exists, an unpin while something is pinned, a deal status that is news), the `seq`
//! allocation, the room's durable state and its history, all in one step. It then delivers the
//! event to every node's [`RoomSink`] exactly once, in `seq` order. Volatile values (stock
//! levels, likes, per-node viewer counts) travel beside the events without a `seq`.
//!
//! Two implementations: [`local::LocalBus`] (one process, the memory backend's; it also keeps
//! the state file's rooms) and [`redis::RedisBus`] (any number of nodes on one Redis: a Lua step
//! per event that bumps the room's `seq`, appends to a capped stream and publishes; subscribers
//! repair gaps from the stream before delivering anything later). Both pass the conformance
//! suite in `tests/common/bus_conformance.rs`.

pub mod local;
pub mod redis;
pub mod rules;
pub mod track;

use std::sync::Weak;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::HubError;
use crate::inventory::StockLevel;
use crate::persist::{SavedRoom, SavedState};
use crate::protocol::{AuctionView, Bidder, Comment, Deal, Id, Product, ServerMsg};

pub use local::LocalBus;
pub use redis::RedisBus;

/// A durable event before it has a `seq`, as it travels between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Event {
    Comment {
        user: Id,
        name: String,
        text: String,
        ts: u64,
    },
    CommentDeleted {
        id: Id,
    },
    Pinned {
        product: Product,
    },
    Unpinned,
    Deal {
        deal: Deal,
        /// The stock version the deal's status was judged at. A status judged at an older
        /// version than one already published is stale and is not published. 0 for a start.
        #[serde(default)]
        version: u64,
    },
    Announcement {
        text: String,
    },
    /// The room's live video stream (None: cleared).
    Stream {
        url: Option<String>,
    },
    /// An auction started or closed. A close `sold` carries the winner's order (their user id
    /// and the order, never sent to viewers): each node tells the winner's connections.
    Auction {
        auction: AuctionView,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winner_order: Option<WinnerOrder>,
    },
}

/// A sold auction's order as its winner is told it (see `hub/auctions.rs`: the lot's order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinnerOrder {
    pub user: Id,
    pub order: Id,
    pub price_cents: u64,
    /// With external payment: `pending` and when it must be paid by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<crate::orders::OrderStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_by: Option<u64>,
}

/// A live auction's latest bid, as it travels beside the events (no `seq`): each node keeps
/// the one with the most bids and sends it as an `auction_bid` frame on its next tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionTick {
    pub auction: Id,
    /// Tells this auction from an earlier one under the same id.
    pub started_at: u64,
    pub current_cents: u64,
    pub leader: Option<Bidder>,
    pub bids: u32,
    pub ends_at: u64,
}

impl AuctionTick {
    /// The frame viewers receive.
    pub fn msg(&self) -> ServerMsg {
        ServerMsg::AuctionBid {
            auction: self.auction.clone(),
            current_cents: self.current_cents,
            leader: self.leader.clone(),
            bids: self.bids,
            ends_at: self.ends_at,
        }
    }
}



/// The id a comment published at `seq` gets (`c{seq}`).
pub fn comment_id(seq: u64) -> Id {
    Id::generated(format!("c{seq}"))
}

/// The `seq` a comment id was given, when it is one of ours.
pub fn comment_seq(id: &Id) -> Option<u64> {
    id.as_str().strip_prefix('c')?.parse().ok()
}

impl Event {
    /// The message every viewer receives for this event at `seq`.
    pub fn into_msg(self, seq: u64) -> ServerMsg {
        match self {
            Event::Comment {
                user,
                name,
                text,
                ts,
            } => ServerMsg::Comment(Comment {
                seq,
                id: comment_id(seq),
                user,
                name,
                text,
                ts,
            }),
            Event::CommentDeleted { id } => ServerMsg::CommentDeleted { seq, id },
            Event::Pinned { product } => ServerMsg::Pinned { seq, product },
            Event::Unpinned => ServerMsg::Unpinned { seq },
            Event::Deal { deal, .. } => ServerMsg::Deal { seq, deal },
            Event::Announcement { text } => ServerMsg::Announcement { seq, text },
            Event::Stream { url } => ServerMsg::Stream { seq, url },
            Event::Auction { auction, .. } => ServerMsg::Auction { seq, auction },
        }
    }

    /// The event's wire name (`type`).
    pub fn kind(&self) -> &'static str {
        self.into()
    }
}

/// What publishing an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The event was appended with this `seq` and is being delivered.
    Seq(u64),
    /// A deal status that is already known (or stale): nothing was published.
    Unchanged,
}

/// The room-wide counters after a node reported its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    /// Viewers of the room on every node whose report has not expired.
    pub viewers: u64,
    /// Likes of the room, every node's together.
    pub likes: u64,
}

/// The settings a bus needs, copied from configuration.
#[derive(Clone, Debug)]
pub struct BusSettings {
    /// History kept per room for `?since=` (events).
    pub history: usize,
    /// Recent comments kept per room for `welcome`.
    pub recent_comments: usize,
    /// Comments a user may post per second, sustained, and in a burst.
    pub comment_rate: (f64, f64),
    /// How long a node's viewer count counts after its last report.
    pub viewers_ttl_ms: u64,
    /// How long a room stays open after its host was last seen (Redis: then every key of the
    /// room is gone and viewers are told the show has not started).
    pub open_ttl_ms: u64,
}

/// Why a bus operation failed. Refusals are the command's answer; `Unavailable` means the bus
/// could not decide (the event was not published).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BusError {
    #[error("you are muted in this room for {0} more seconds")]
    Muted(u64),
    #[error("too many comments; slow down")]
    RateLimited,
    #[error("no comment {0} among the room's recent comments")]
    NoSuchComment(Id),
    #[error("nothing is pinned")]
    NothingPinned,
    #[error("{0} is not muted in this room")]
    NotMuted(Id),
    #[error("the show has not started")]
    NotOpened,
    #[error("room events unavailable: {0}")]
    Unavailable(String),
    #[error("room events: {0}")]
    Internal(String),
}

impl From<BusError> for HubError {
    fn from(e: BusError) -> Self {
        let m = e.to_string();
        match e {
            BusError::Muted(_) => HubError::Forbidden(m),
            BusError::RateLimited => HubError::RateLimited(m),
            BusError::NoSuchComment(_) => HubError::NotFound(m),
            BusError::NothingPinned => HubError::Conflict(m),
            BusError::NotMuted(_) => HubError::NotFound(m),
            BusError::NotOpened => HubError::NotLive,
            BusError::Unavailable(_) => HubError::Unavailable(m),
            BusError::Internal(_) => HubError::Internal(m),
        }
    }
}

impl From<crate::redis_io::RedisIoError> for BusError {
    fn from(e: crate::redis_io::RedisIoError) -> Self {
        match e {
            crate::redis_io::RedisIoError::Unavailable(m) => BusError::Unavailable(m),
            crate::redis_io::RedisIoError::Internal(m) => BusError::Internal(m),
        }
    }
}

/// A room on this node, as the bus feeds it.
pub trait RoomSink: Send + Sync {
    /// The room's state at the `seq` delivery continues from. Called once, before any
    /// [`RoomSink::deliver`].
    fn load(&self, state: SavedRoom);
    /// The room-wide counters as the bus last learned them.
    fn counters(&self, counters: Counters);
    /// The event with `seq`; called exactly once per `seq`, in order, with no gap.
    fn deliver(&self, seq: u64, event: Event);
    /// A stock reading (from any node); older versions may arrive after newer ones.
    fn stock(&self, deal: &Id, level: StockLevel);
    /// An auction's latest bid (from any node); older ones (fewer bids) may arrive after.
    fn auction_bid(&self, tick: AuctionTick);
    /// The room's history was lost (e.g. Redis lost its data) or cannot be repaired: the room
    /// must close its viewers (1001, so they resume elsewhere) and be opened again.
    fn lost(&self);
}

/// Where rooms' events get their order and how they reach every node.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Starts feeding `room` to `sink`: [`RoomSink::load`] with the room's state at some `seq`
    /// S, then every event after S exactly once, in order. A room that never existed is
    /// created when `create` (its host opens it) and otherwise `NotOpened`, with nothing kept.
    async fn open(&self, room: &Id, sink: Weak<dyn RoomSink>, create: bool)
    -> Result<(), BusError>;

    /// Stops feeding `room` to `sink` (it was dropped from this node); a newer open of the
    /// room with another sink is left alone. `last` is the room's final projection.
    async fn close(&self, room: &Id, sink: &Weak<dyn RoomSink>, last: SavedRoom);

    /// The room's state and counters without opening it; None for a room that never existed.
    async fn peek(&self, room: &Id) -> Result<Option<(SavedRoom, Counters)>, BusError>;

    /// Decides `event`'s precondition, gives it the next `seq` and delivers it.
    async fn publish(&self, room: &Id, event: Event) -> Result<Published, BusError>;

    /// Mutes `user`'s comments in `room` until `until_ms` (Unix ms), on every node.
    async fn mute(&self, room: &Id, user: &Id, until_ms: u64) -> Result<(), BusError>;

    /// Lifts `user`'s mute in `room`, on every node (the same room-wide scope as
    /// [`Bus::mute`]); `NotMuted` when they were not muted.
    async fn unmute(&self, room: &Id, user: &Id) -> Result<(), BusError>;

    /// The users muted in `room` now, with when each mute ends (Unix ms).
    async fn muted(&self, room: &Id) -> Result<Vec<(Id, u64)>, BusError>;

    /// Reports this node's viewers of `room` and the likes it received since its last report;
    /// answers the room-wide totals. `host_seen` says the room's host is seen on this node (a
    /// host or admin connected, or a deal open): the room's lifetime starts again. A room
    /// whose lifetime ran out is `NotOpened`, and its sink was told it is [`RoomSink::lost`].
    async fn counters(
        &self,
        room: &Id,
        viewers: u64,
        likes: u64,
        host_seen: bool,
    ) -> Result<Counters, BusError>;

    /// The room's latest `seq` as the bus has decided it (on Redis: read from Redis, so it
    /// includes events published through any node). A node whose room has applied it has seen
    /// every event published before this call.
    async fn position(&self, room: &Id) -> Result<u64, BusError>;

    /// Sends a stock reading to every node's sink of `room` (this node's at once). Fire and
    /// forget: a reading lost on the way is superseded by the next one. The only way a reading
    /// made on one node reaches the others (the whole way: `hub/stock.rs`).
    fn stock(&self, room: &Id, deal: &Id, level: StockLevel);

    /// Sends an auction's latest bid to every node's sink of `room` (this node's at once).
    /// Fire and forget, like [`Bus::stock`]: the next bid supersedes a lost one, and the close
    /// is a durable event.
    fn auction_bid(&self, room: &Id, tick: AuctionTick);

    /// The state to write to the state file on a graceful stop, given the projections of the
    /// rooms open now; None when the bus keeps rooms elsewhere (Redis).
    fn export(&self, open: Vec<SavedRoom>) -> Option<SavedState>;

    /// Ok when the bus can publish.
    async fn health(&self) -> Result<(), BusError>;
}
