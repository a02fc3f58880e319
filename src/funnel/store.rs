//! Where every node's funnel facts meet: the [`FunnelStore`] trait and what it answers.
//! A store keeps, per room, the first channel it hears for each user, the distinct users per
//! (stage, channel) for the room and per deal, the sold-out taps, the activity per 10 s
//! bucket and the host's moments. Money is not here: it comes from the inventory's sales
//! ledger, written by the step that records each order.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::record::{Moment, Op, Stage};
use crate::commerce::Channel;
use crate::error::HubError;
use crate::protocol::Id;

/// Distinct users (and sold-out taps) of one room, as the store counts them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserCounts {
    /// Users per (stage, channel) in the room.
    pub room: BTreeMap<(Stage, Channel), u64>,
    /// Users per (deal, stage, channel).
    pub deals: BTreeMap<(Id, Stage, Channel), u64>,
    /// Reserves answered `sold_out`, per (deal, channel).
    pub sold_out: BTreeMap<(Id, Channel), u64>,
}

/// One timeline bucket's activity (orders and GMV come from the sales ledger).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketActivity {
    /// The most viewers connected at once, summed over nodes.
    pub viewers: u64,
    pub comments: u64,
    pub taps: u64,
}

/// A room's activity over time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// By bucket start (Unix ms).
    pub buckets: BTreeMap<u64, BucketActivity>,
    /// In time order.
    pub moments: Vec<Moment>,
}

/// Why the store could not answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FunnelError {
    #[error("funnel store unavailable: {0}")]
    Unavailable(String),
    #[error("funnel store error: {0}")]
    Internal(String),
}

impl From<FunnelError> for HubError {
    fn from(e: FunnelError) -> Self {
        match e {
            FunnelError::Unavailable(_) => HubError::Unavailable(e.to_string()),
            FunnelError::Internal(_) => HubError::Internal(e.to_string()),
        }
    }
}

/// Most users a counter counts exactly; past it a store may estimate (HyperLogLog, standard
/// error 0.81%).
pub const EXACT_USERS: u64 = 1_000;

/// The funnel of every room, shared by all nodes of a deployment.
#[async_trait]
pub trait FunnelStore: Send + Sync + 'static {
    /// Applies one node's ops for `room`, in order. Stage ops are idempotent; counts add up.
    /// A user counts in the channel of the first op the store sees for them in the room.
    async fn apply(&self, room: &Id, ops: &[Op]) -> Result<(), FunnelError>;

    /// The room's distinct users per stage and channel: exact up to [`EXACT_USERS`] per
    /// counter, within 2% above.
    async fn counts(&self, room: &Id) -> Result<UserCounts, FunnelError>;

    /// The room's activity per bucket and its moments.
    async fn activity(&self, room: &Id) -> Result<Activity, FunnelError>;
}
