//! What a node tells the funnel store: [`Op`]s, each one fact about one user or one bucket.
//! Every op is O(1) to record; a node batches them and sends them every `funnel.flush_ms`.
//! Ops that name a stage are idempotent (a user reached it or not), so a batch sent twice
//! changes no user count.

use serde::{Deserialize, Serialize};

use crate::commerce::Channel;
use crate::protocol::Id;

/// A funnel stage a user reaches, in funnel order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Viewers,
    Engaged,
    Exposed,
    Tapped,
    Held,
    Ordered,
}

impl Stage {
    /// The stages counted for the room, in funnel order.
    pub const ROOM: [Stage; 6] = [
        Stage::Viewers,
        Stage::Engaged,
        Stage::Exposed,
        Stage::Tapped,
        Stage::Held,
        Stage::Ordered,
    ];
    /// The stages counted per deal.
    pub const DEAL: [Stage; 4] = [Stage::Exposed, Stage::Tapped, Stage::Held, Stage::Ordered];

    /// The JSON field name, also used in store keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Viewers => "viewers",
            Stage::Engaged => "engaged",
            Stage::Exposed => "exposed",
            Stage::Tapped => "tapped",
            Stage::Held => "held",
            Stage::Ordered => "ordered",
        }
    }

    /// The stage named `s`, if any.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ROOM.into_iter().find(|st| st.as_str() == s)
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A moment of the show the host made: the exposure ledger's marks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// Unix ms.
    pub t: u64,
    pub kind: MomentKind,
    /// The deal's id, or the auction's for an auction's moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What the host did at a [`Moment`]. Its wire name (`pin`, `deal_start`, `deal_end`,
/// `auction_start`, `auction_close`) comes
/// from one rule for serde and for `&'static str` (`.into()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MomentKind {
    Pin,
    DealStart,
    DealEnd,
    /// An auction started (`deal` holds the auction's id).
    AuctionStart,
    /// An auction closed, sold or unsold (`deal` holds the auction's id).
    AuctionClose,
}

impl MomentKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One fact for the store. `channel` is the user's channel as this node knows it; the store
/// keeps, per room, the first channel it hears for a user and counts the user there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The user reached `stage`, in the room (`deal: None`) or in one deal.
    Reached {
        user: Id,
        channel: Channel,
        stage: Stage,
        deal: Option<Id>,
    },
    /// The user was connected `ms` (connections that have closed, on this node): the store
    /// sums every node's and marks the user engaged once the sum reaches `funnel.engaged_ms`.
    Connected { user: Id, channel: Channel, ms: u64 },
    /// One reserve of `deal` answered `sold_out`.
    SoldOutTap {
        user: Id,
        channel: Channel,
        deal: Id,
    },
    /// Comments published in the bucket starting at `bucket` (Unix ms).
    Comments { bucket: u64, n: u64 },
    /// Reserves sent in the bucket.
    Taps { bucket: u64, n: u64 },
    /// The most viewers connected at once to this node during the bucket.
    PeakViewers { bucket: u64, n: u64 },
    /// A host's pin, deal start or deal end.
    Moment(Moment),
}
