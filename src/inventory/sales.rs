//! The sales ledger: what each deal sold, per channel, per creator and per 10-second bucket.
//! Every figure here is written by the same atomic step that records the order (a deal's book
//! lock in memory, `checkout.lua` in Redis), so it is exact whatever the concurrency and on
//! every hub node together; the funnel API reads it as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::commerce::Channel;
/// Re-exported from [`crate::commerce`], their home, for existing callers.
pub use crate::commerce::{BUCKET_MS, Buyer, MAX_BPS, commission};
use crate::protocol::{Deal, Id};

/// Orders, units and GMV summed over a set of orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sales {
    pub orders: u64,
    pub units: u64,
    pub gmv_cents: u64,
}

impl Sales {
    /// Adds one order of `qty` units worth `total_cents`.
    pub fn add(&mut self, qty: u32, total_cents: u64) {
        self.orders += 1;
        self.units += u64::from(qty);
        self.gmv_cents += total_cents;
    }

    /// Adds another sum to this one.
    pub fn merge(&mut self, other: &Sales) {
        self.orders += other.orders;
        self.units += other.units;
        self.gmv_cents += other.gmv_cents;
    }
}

/// What one creator earned from one deal in one role: the sales attributed to them and the
/// commission on them (each order's commission rounded down, then summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earning {
    #[serde(flatten)]
    pub sales: Sales,
    pub commission_cents: u64,
}

/// One deal's ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct DealSales {
    pub room: Id,
    /// The deal as it stands (title, price, currency, status …).
    pub deal: Deal,
    /// The host creator who started the deal, paid `deal.commission_bps`.
    pub creator: Id,
    /// All orders of the deal.
    pub total: Sales,
    /// Orders by the buyer's channel (channels without orders are absent).
    pub channels: BTreeMap<Channel, Sales>,
    /// The host creator's earning from this deal (all orders, at `commission_bps`).
    pub host: Earning,
    /// Each affiliate's earning: the orders of buyers whose `aff` was that creator, at
    /// `affiliate_bps`. Affiliates without orders are absent.
    pub affiliates: BTreeMap<Id, Earning>,
    /// Orders and GMV per [`BUCKET_MS`] bucket, by bucket start (Unix ms).
    pub buckets: BTreeMap<u64, Sales>,
}
