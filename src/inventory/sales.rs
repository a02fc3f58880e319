//! The sales ledger: what each deal sold, per channel, per creator and per 10-second bucket.
//! Every figure here is written by the same atomic step that records the order (a deal's book
//! lock in memory, `checkout.lua` in Redis), so it is exact whatever the concurrency and on
//! every hub node together; the funnel API reads it as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::funnel::Channel;
use crate::protocol::{Deal, Id};

/// Width of a timeline bucket: orders and GMV are summed per 10 s, bucket start = `ts - ts % 10_000`.
pub const BUCKET_MS: u64 = 10_000;

/// The largest commission rate, in basis points (100%).
pub const MAX_BPS: u32 = 10_000;

/// `floor(total_cents * bps / 10000)`, exact for every total up to
/// [`crate::protocol::MAX_TOTAL_CENTS`] and every rate up to [`MAX_BPS`] (no floating point; the
/// Lua script computes it in the same two steps so both stay below 2^53).
pub fn commission(total_cents: u64, bps: u32) -> u64 {
    let bps = u64::from(bps.min(MAX_BPS));
    (total_cents / 10_000) * bps + (total_cents % 10_000) * bps / 10_000
}

/// Who is buying, as the funnel attributes them: the channel of the buyer's first join to the
/// room and the affiliate from the signed `aff` claim (never from a query parameter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buyer {
    pub channel: Channel,
    pub aff: Option<Id>,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commission_rounds_down_and_is_exact_at_the_largest_total() {
        assert_eq!(commission(1999, 1000), 199);
        assert_eq!(commission(9, 1111), 0);
        assert_eq!(commission(10_000, 1), 1);
        assert_eq!(commission(9_999, 10_000), 9_999);
        let max = crate::protocol::MAX_TOTAL_CENTS;
        assert_eq!(commission(max, 10_000), max);
        assert_eq!(
            u128::from(commission(max - 1, 3_333)),
            u128::from(max - 1) * 3_333 / 10_000
        );
        assert_eq!(
            commission(1999, 20_000),
            1999,
            "rates above 100% are capped"
        );
    }
}
