//! The commerce terms every layer shares, with no other home: where a buyer came from
//! ([`Channel`]) and who they are to the funnel ([`Buyer`]), money and its bounds
//! ([`MAX_PRICE_CENTS`], [`MAX_TOTAL_CENTS`], [`order_total`]), commission rates in basis points
//! ([`MAX_BPS`], [`commission`]) and the timeline's buckets ([`BUCKET_MS`], [`bucket_of`]).
//!
//! The protocol validates with these bounds, the inventory sells and sums with them, the funnel
//! counts and reports with them, and auth attributes buyers with them. So that each of those may
//! import it without a circle, this module imports nothing from the crate but [`crate::id`] (a
//! leaf itself).

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// One of the five channels a live-commerce seller gets traffic from, or `direct`: the token's
/// `src` claim or, for analytics only, the `?src=` query parameter (the claim wins). Anything
/// missing or unknown is [`Channel::Direct`], so parsing never fails and a made-up value cannot
/// grow the set of counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    ShortVideo,
    Creator,
    Paid,
    Live,
    ProductCard,
    Direct,
}

impl Channel {
    /// Every channel, `direct` last: the order reports list them in.
    pub const ALL: [Channel; 6] = [
        Channel::ShortVideo,
        Channel::Creator,
        Channel::Paid,
        Channel::Live,
        Channel::ProductCard,
        Channel::Direct,
    ];

    /// The channel named `s` (its wire name), or `Direct` for anything else.
    pub fn parse(s: &str) -> Channel {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Channel::Direct)
    }

    /// The wire name (`short_video`, …, `direct`), also used in Redis fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::ShortVideo => "short_video",
            Channel::Creator => "creator",
            Channel::Paid => "paid",
            Channel::Live => "live",
            Channel::ProductCard => "product_card",
            Channel::Direct => "direct",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is buying, as the funnel attributes them: the channel of the buyer's first join to the
/// room and the affiliate from the signed `aff` claim (never from a query parameter).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buyer {
    /// The channel of the buyer's first join to the room.
    pub channel: Channel,
    /// The creator the signed `aff` claim names, paid the deal's affiliate rate.
    pub aff: Option<Id>,
}

/// Largest stock one deal may carry.
pub const MAX_DEAL_STOCK: u32 = 10_000_000;
/// Highest price of a product or a deal, in minor units: 100,000,000, i.e. 1,000,000.00 in a
/// currency with two decimals (a 0-decimal currency such as JPY: 100,000,000 yen).
pub const MAX_PRICE_CENTS: u64 = 100_000_000;
/// The largest order total there can be: the highest price times the largest stock (one order
/// cannot hold more than a deal's stock), 10^15.
pub const MAX_TOTAL_CENTS: u64 = MAX_PRICE_CENTS * MAX_DEAL_STOCK as u64;
// Every total (price x qty, and sums of quantities) stays below 2^53, so it is exact as a double:
// in the inventory's Lua scripts (Lua numbers are doubles) and in JavaScript clients.
const _: () = assert!(MAX_TOTAL_CENTS < 1 << 53);

/// `qty * price_cents`, or None if it would overflow. With a deal's bounds (price at most
/// [`MAX_PRICE_CENTS`], qty at most [`MAX_DEAL_STOCK`]) it is at most [`MAX_TOTAL_CENTS`].
pub fn order_total(price_cents: u64, qty: u32) -> Option<u64> {
    price_cents.checked_mul(u64::from(qty))
}

/// The largest commission rate, in basis points (100%).
pub const MAX_BPS: u32 = 10_000;

/// `floor(total_cents * bps / 10000)`, exact for every total up to
/// [`MAX_TOTAL_CENTS`] and every rate up to [`MAX_BPS`] (no floating point; the
/// Lua script computes it in the same two steps so both stay below 2^53).
pub fn commission(total_cents: u64, bps: u32) -> u64 {
    let bps = u64::from(bps.min(MAX_BPS));
    (total_cents / 10_000) * bps + (total_cents % 10_000) * bps / 10_000
}

/// Width of a timeline bucket: orders and GMV are summed per 10 s, bucket start = `ts - ts % 10_000`
/// (`checkout.lua` has the same width).
pub const BUCKET_MS: u64 = 10_000;

/// The start of the [`BUCKET_MS`] bucket `now` (Unix ms) falls in.
pub fn bucket_of(now: u64) -> u64 {
    now - now % BUCKET_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_parses_from_its_wire_name_and_anything_else_is_direct() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), c);
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        for s in ["", "PAID", "tv", "paid ", "direct"] {
            assert_eq!(Channel::parse(s), Channel::Direct);
        }
    }

    #[test]
    fn commission_rounds_down_and_is_exact_at_the_largest_total() {
        assert_eq!(commission(1999, 1000), 199);
        assert_eq!(commission(9, 1111), 0);
        assert_eq!(commission(10_000, 1), 1);
        assert_eq!(commission(9_999, 10_000), 9_999);
        let max = MAX_TOTAL_CENTS;
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
