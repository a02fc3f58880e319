//! The traffic channel a viewer came from: the token's `src` claim or, for analytics only, the
//! `?src=` query parameter (the claim wins). Anything missing or unknown is [`Channel::Direct`],
//! so parsing never fails and a made-up value cannot grow the set of counters.

use serde::{Deserialize, Serialize};

/// One of the five channels a live-commerce seller gets traffic from, or `direct`.
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
}
