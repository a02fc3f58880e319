//! The JSON the report reads: `GET /api/rooms/{room}/funnel` and `/timeline` as the funnel
//! contract (issue 14) shapes them. Reading is lenient the way the contract asks: a channel,
//! deal or field that is absent reads as zeros (or empty), and fields this report does not use
//! are ignored, so a hub that adds fields still gets a report.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::commerce::Channel;

pub use crate::funnel::Stage;

/// The user stages of the funnel, in order: each is a subset of the viewers that reached it.
pub const STAGES: [Stage; 6] = Stage::ROOM;

/// A funnel row: the user stages and the money of a channel or of the whole room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub viewers: u64,
    pub engaged: u64,
    pub exposed: u64,
    pub tapped: u64,
    pub held: u64,
    pub ordered: u64,
    pub units: u64,
    pub gmv_cents: u64,
    pub sold_out_taps: u64,
    pub orders: u64,
}

impl Counts {
    /// The number of users at `stage`.
    pub fn stage(&self, stage: Stage) -> u64 {
        match stage {
            Stage::Viewers => self.viewers,
            Stage::Engaged => self.engaged,
            Stage::Exposed => self.exposed,
            Stage::Tapped => self.tapped,
            Stage::Held => self.held,
            Stage::Ordered => self.ordered,
        }
    }
}

/// One deal's row of the funnel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DealRow {
    pub title: String,
    pub product_id: String,
    pub price_cents: u64,
    pub currency: String,
    pub exposed: u64,
    pub tapped: u64,
    pub held: u64,
    pub ordered: u64,
    pub units: u64,
    pub gmv_cents: u64,
    pub sold_out_taps: u64,
    pub orders: u64,
}

/// One creator's row of the commission table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CreatorRow {
    /// `host`, `affiliate` or `both`.
    pub role: String,
    pub orders: u64,
    pub units: u64,
    pub gmv_cents: u64,
    pub commission_cents: u64,
}

/// `GET /api/rooms/{room}/funnel`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Funnel {
    pub room: String,
    pub currency: String,
    pub engaged_ms: u64,
    pub generated_at: u64,
    pub total: Counts,
    /// By channel wire name; absent channels had no activity.
    pub channels: BTreeMap<String, Counts>,
    /// By deal id; absent deals had no activity.
    pub deals: BTreeMap<String, DealRow>,
    /// By creator id.
    pub creators: BTreeMap<String, CreatorRow>,
}

impl Funnel {
    /// The channels present, in [`Channel::ALL`]'s order (`direct` last), then any name this
    /// hub does not know yet, alphabetically.
    pub fn channels_in_order(&self) -> Vec<(&str, &Counts)> {
        let known = Channel::ALL.map(Channel::as_str);
        let mut out: Vec<(&str, &Counts)> = known
            .iter()
            .filter_map(|name| self.channels.get_key_value(*name))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        out.extend(
            self.channels
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v)),
        );
        out
    }

    /// The deals by GMV, largest first (ties: more units, then the deal id).
    pub fn deals_by_gmv(&self) -> Vec<(&str, &DealRow)> {
        let mut deals: Vec<(&str, &DealRow)> =
            self.deals.iter().map(|(k, v)| (k.as_str(), v)).collect();
        deals.sort_by(|a, b| {
            b.1.gmv_cents
                .cmp(&a.1.gmv_cents)
                .then(b.1.units.cmp(&a.1.units))
                .then(a.0.cmp(b.0))
        });
        deals
    }

    /// The room's currency: the hub's, else `USD` (the contract's default).
    pub fn currency(&self) -> &str {
        if self.currency.is_empty() {
            "USD"
        } else {
            &self.currency
        }
    }
}

/// One bucket of the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Bucket {
    /// The bucket's start, Unix ms.
    pub t: u64,
    /// The most viewers connected at once during the bucket.
    pub viewers: u64,
    pub comments: u64,
    pub taps: u64,
    pub orders: u64,
    pub gmv_cents: u64,
}

/// A moment of the show marked on the timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Moment {
    pub t: u64,
    /// `pin`, `deal_start` or `deal_end`.
    pub kind: String,
    pub deal: Option<String>,
    pub product: Option<String>,
    pub title: Option<String>,
}

/// `GET /api/rooms/{room}/timeline`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Timeline {
    pub room: String,
    pub bucket_ms: u64,
    pub currency: String,
    pub buckets: Vec<Bucket>,
    pub moments: Vec<Moment>,
}
