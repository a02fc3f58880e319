//! What the funnel API answers, built from the store's user counts and activity and the
//! inventory's sales ledger. Pure functions: the same inputs give the same document, so the
//! shapes are tested without a hub. User ids never appear in a room's funnel or timeline.
//!
//! The same types read the documents back (`livehub report`, the load tester's funnel check):
//! reading is lenient, as the funnel contract asks. A field that is absent reads as zero (or
//! empty), fields these types do not know are ignored, and so is a channel this build does not
//! know, so a hub that adds fields still gets read. Ids are plain strings here: the hub writes
//! only valid ones, and a reader takes the document as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{Moment, Stage};
use super::store::{Activity, UserCounts};
use crate::commerce::BUCKET_MS;
use crate::commerce::Channel;
use crate::inventory::sales::{DealSales, Earning, Sales};
use crate::protocol::Id;

/// The currency a room without deals reports.
pub const DEFAULT_CURRENCY: &str = "USD";

/// One row of the funnel: distinct users per stage, then the money. `viewers` and `engaged`
/// are counted for the room and its channels only, so a deal's rows leave them out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engaged: Option<u64>,
    pub exposed: u64,
    pub tapped: u64,
    pub held: u64,
    pub ordered: u64,
    pub orders: u64,
    pub units: u64,
    pub gmv_cents: u64,
    pub sold_out_taps: u64,
}

impl StageRow {
    fn room() -> Self {
        StageRow {
            viewers: Some(0),
            engaged: Some(0),
            ..StageRow::default()
        }
    }

    fn set(&mut self, stage: Stage, n: u64) {
        let slot = match stage {
            Stage::Viewers => self.viewers.get_or_insert(0),
            Stage::Engaged => self.engaged.get_or_insert(0),
            Stage::Exposed => &mut self.exposed,
            Stage::Tapped => &mut self.tapped,
            Stage::Held => &mut self.held,
            Stage::Ordered => &mut self.ordered,
        };
        *slot += n;
    }

    /// The number of users at `stage` (0 for a stage the row does not count).
    pub fn stage(&self, stage: Stage) -> u64 {
        match stage {
            Stage::Viewers => self.viewers.unwrap_or(0),
            Stage::Engaged => self.engaged.unwrap_or(0),
            Stage::Exposed => self.exposed,
            Stage::Tapped => self.tapped,
            Stage::Held => self.held,
            Stage::Ordered => self.ordered,
        }
    }

    fn add_sales(&mut self, s: &Sales) {
        self.orders += s.orders;
        self.units += s.units;
        self.gmv_cents += s.gmv_cents;
    }
}

/// One deal's row: its funnel, per channel, and what it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DealRow {
    pub title: String,
    pub product_id: String,
    pub price_cents: u64,
    pub currency: String,
    #[serde(flatten)]
    pub row: StageRow,
    #[serde(deserialize_with = "known_channels")]
    pub channels: BTreeMap<Channel, StageRow>,
    /// Units in orders waiting for payment now (`orders.payment = "external"`), beside the
    /// paid orders the row counts; absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub pending_units: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a creator made in a room (or a deal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatorRow {
    /// `host`, `affiliate`, or `both`.
    pub role: String,
    #[serde(flatten)]
    pub earning: Earning,
}

/// `GET /api/rooms/{room}/funnel`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomFunnel {
    pub room: String,
    pub currency: String,
    pub engaged_ms: u64,
    pub generated_at: u64,
    pub total: StageRow,
    /// By channel, in [`Channel::ALL`]'s order; a channel without activity is absent.
    #[serde(deserialize_with = "known_channels")]
    pub channels: BTreeMap<Channel, StageRow>,
    /// By deal id; a deal without activity is absent.
    pub deals: BTreeMap<String, DealRow>,
    /// By creator id.
    pub creators: BTreeMap<String, CreatorRow>,
    /// Deals the funnel counted users for whose figures (title, orders, money) are gone: a
    /// deal's sales live `redis.retention_ms` after its last hold could end, the funnel's
    /// counts as long after their last write. Their users still count in the room's rows.
    pub expired_deals: Vec<String>,
}

impl RoomFunnel {
    /// The room's currency: the hub's, else [`DEFAULT_CURRENCY`].
    pub fn currency(&self) -> &str {
        if self.currency.is_empty() {
            DEFAULT_CURRENCY
        } else {
            &self.currency
        }
    }

    /// The deals by GMV, largest first (ties: more units, then the deal id).
    pub fn deals_by_gmv(&self) -> Vec<(&str, &DealRow)> {
        let mut deals: Vec<(&str, &DealRow)> =
            self.deals.iter().map(|(k, v)| (k.as_str(), v)).collect();
        deals.sort_by(|a, b| {
            b.1.row
                .gmv_cents
                .cmp(&a.1.row.gmv_cents)
                .then(b.1.row.units.cmp(&a.1.row.units))
                .then(a.0.cmp(b.0))
        });
        deals
    }
}

/// Reads a map by channel wire name, leaving out the names this build does not know (a newer
/// hub's), as an unknown field is.
fn known_channels<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<Channel, StageRow>, D::Error> {
    let by_name = BTreeMap::<String, StageRow>::deserialize(d)?;
    Ok(by_name
        .into_iter()
        .filter_map(|(name, row)| {
            let channel = Channel::ALL.into_iter().find(|c| c.as_str() == name)?;
            Some((channel, row))
        })
        .collect())
}

fn role(host: bool, affiliate: bool) -> &'static str {
    match (host, affiliate) {
        (true, true) => "both",
        (true, false) => "host",
        _ => "affiliate",
    }
}

fn add_earning(into: &mut Earning, e: &Earning) {
    into.sales.merge(&e.sales);
    into.commission_cents += e.commission_cents;
}

/// The room's funnel: `counts` from the store, `sales` (every deal of the room) from the
/// inventory.
pub fn room_funnel(
    room: &Id,
    counts: &UserCounts,
    sales: &[DealSales],
    engaged_ms: u64,
    now: u64,
) -> RoomFunnel {
    let mut f = RoomFunnel {
        room: room.to_string(),
        currency: sales
            .first()
            .map_or_else(|| DEFAULT_CURRENCY.to_owned(), |s| s.deal.currency.clone()),
        engaged_ms,
        generated_at: now,
        total: StageRow::room(),
        ..RoomFunnel::default()
    };
    for ((stage, channel), n) in &counts.room {
        f.total.set(*stage, *n);
        f.channel(*channel).set(*stage, *n);
    }
    for s in sales {
        f.add_deal(s);
    }
    f.creators = creators(sales);
    for ((deal, stage, channel), n) in &counts.deals {
        if let Some(row) = f.deals.get_mut(deal.as_str()) {
            row.row.set(*stage, *n);
            row.channels.entry(*channel).or_default().set(*stage, *n);
        } else if !f.expired_deals.iter().any(|d| d == deal.as_str()) {
            f.expired_deals.push(deal.to_string());
        }
    }
    for ((deal, channel), n) in &counts.sold_out {
        f.total.sold_out_taps += n;
        f.channel(*channel).sold_out_taps += n;
        if let Some(row) = f.deals.get_mut(deal.as_str()) {
            row.row.sold_out_taps += n;
            row.channels.entry(*channel).or_default().sold_out_taps += n;
        }
    }
    f
}

impl RoomFunnel {
    /// The row of `channel`, a room row (with viewers and engaged) when it is new.
    fn channel(&mut self, channel: Channel) -> &mut StageRow {
        self.channels.entry(channel).or_insert_with(StageRow::room)
    }

    /// Adds one deal's row, and its sales to the room's and channels' money.
    fn add_deal(&mut self, s: &DealSales) {
        let mut row = DealRow {
            title: s.deal.title.clone(),
            product_id: s.deal.product_id.to_string(),
            price_cents: s.deal.price_cents,
            currency: s.deal.currency.clone(),
            row: StageRow::default(),
            channels: BTreeMap::new(),
            pending_units: 0,
        };
        row.row.add_sales(&s.total);
        self.total.add_sales(&s.total);
        for (channel, sales) in &s.channels {
            row.channels.entry(*channel).or_default().add_sales(sales);
            self.channel(*channel).add_sales(sales);
        }
        self.deals.insert(s.deal.id.to_string(), row);
    }
}

/// Every creator who earned in the room's deals, as host, affiliate or both, with the sums.
fn creators(sales: &[DealSales]) -> BTreeMap<String, CreatorRow> {
    let mut creators: BTreeMap<&Id, (bool, bool, Earning)> = BTreeMap::new();
    for s in sales {
        if s.host.sales.orders > 0 || s.host.commission_cents > 0 {
            let c = creators.entry(&s.creator).or_default();
            c.0 = true;
            add_earning(&mut c.2, &s.host);
        }
        for (aff, e) in &s.affiliates {
            let c = creators.entry(aff).or_default();
            c.1 = true;
            add_earning(&mut c.2, e);
        }
    }
    creators
        .into_iter()
        .map(|(id, (host, aff, earning))| {
            let role = role(host, aff).to_owned();
            (id.to_string(), CreatorRow { role, earning })
        })
        .collect()
}

/// One timeline bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// `GET /api/rooms/{room}/timeline`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeline {
    pub room: String,
    pub bucket_ms: u64,
    pub currency: String,
    pub buckets: Vec<Bucket>,
    pub moments: Vec<Moment>,
}

/// Most buckets a timeline lists (a week of 10 s buckets); older ones are left out.
pub const MAX_BUCKETS: usize = 7 * 24 * 360;

/// The room's timeline: every bucket from the first with activity to the last, gaps as zeros.
pub fn timeline(room: &Id, activity: &Activity, sales: &[DealSales]) -> Timeline {
    let mut by_t: BTreeMap<u64, Bucket> = BTreeMap::new();
    for (t, a) in &activity.buckets {
        let b = by_t.entry(*t).or_default();
        b.viewers += a.viewers;
        b.comments += a.comments;
        b.taps += a.taps;
    }
    for s in sales {
        for (t, sold) in &s.buckets {
            let b = by_t.entry(*t).or_default();
            b.orders += sold.orders;
            b.gmv_cents += sold.gmv_cents;
        }
    }
    let mut buckets = Vec::new();
    if let (Some(first), Some(last)) = (by_t.keys().next().copied(), by_t.keys().last().copied()) {
        let first = first.max(last.saturating_sub((MAX_BUCKETS as u64 - 1) * BUCKET_MS));
        let mut t = first;
        while t <= last {
            let mut b = by_t.get(&t).copied().unwrap_or_default();
            b.t = t;
            buckets.push(b);
            t += BUCKET_MS;
        }
    }
    Timeline {
        room: room.to_string(),
        bucket_ms: BUCKET_MS,
        currency: sales
            .first()
            .map_or_else(|| DEFAULT_CURRENCY.to_owned(), |s| s.deal.currency.clone()),
        buckets,
        moments: activity.moments.clone(),
    }
}

/// Whom a creator's earning from a deal pays: the deal's host, or the affiliate who brought the
/// buyer (one creator may be both, with a line for each). Declared in the CSV's role order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum EarningRole {
    Affiliate,
    Host,
}

impl EarningRole {
    /// The wire name (`affiliate`, `host`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One creator's earning from one deal in one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealEarning {
    pub role: EarningRole,
    pub currency: String,
    pub commission_bps: u32,
    pub affiliate_bps: u32,
    #[serde(flatten)]
    pub earning: Earning,
}

/// A creator's earnings in one room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEarnings {
    pub total: Earning,
    /// By deal, then role (`affiliate`, `host`).
    #[serde(serialize_with = "deal_roles", deserialize_with = "deal_roles_back")]
    pub deals: BTreeMap<Id, Vec<DealEarning>>,
}

/// One deal's earnings as [`deal_roles`] writes them: one role as an object, both by role.
#[derive(Deserialize)]
#[serde(untagged)]
enum DealRoles {
    One(DealEarning),
    Both(BTreeMap<EarningRole, DealEarning>),
}

/// Reads back what [`deal_roles`] wrote, in role order.
fn deal_roles_back<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<Id, Vec<DealEarning>>, D::Error> {
    let by_deal = BTreeMap::<Id, DealRoles>::deserialize(d)?;
    Ok(by_deal
        .into_iter()
        .map(|(deal, roles)| match roles {
            DealRoles::One(one) => (deal, vec![one]),
            DealRoles::Both(both) => (deal, both.into_values().collect()),
        })
        .collect())
}

/// One deal's earnings: a single role as an object, both roles under "host" and "affiliate".
fn deal_roles<S: serde::Serializer>(
    deals: &BTreeMap<Id, Vec<DealEarning>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(deals.len()))?;
    for (deal, roles) in deals {
        match roles.as_slice() {
            [one] => map.serialize_entry(deal, one)?,
            many => {
                let by_role: BTreeMap<EarningRole, &DealEarning> =
                    many.iter().map(|e| (e.role, e)).collect();
                map.serialize_entry(deal, &by_role)?;
            }
        }
    }
    map.end()
}

/// `GET /api/creators/{creator}/earnings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earnings {
    pub creator: Id,
    pub total: Earning,
    pub rooms: BTreeMap<Id, RoomEarnings>,
}

/// `creator`'s earnings from `sales` (the deals where they are host or affiliate).
pub fn earnings(creator: &Id, sales: &[DealSales]) -> Earnings {
    let mut out = Earnings {
        creator: creator.clone(),
        total: Earning::default(),
        rooms: BTreeMap::new(),
    };
    for s in sales {
        // In role order (affiliate, host), as the CSV lists them.
        let mut lines = Vec::new();
        if let Some(e) = s.affiliates.get(creator) {
            lines.push((EarningRole::Affiliate, *e));
        }
        if &s.creator == creator {
            lines.push((EarningRole::Host, s.host));
        }
        for (role, earning) in lines {
            add_earning(&mut out.total, &earning);
            let room = out.rooms.entry(s.room.clone()).or_default();
            add_earning(&mut room.total, &earning);
            room.deals
                .entry(s.deal.id.clone())
                .or_default()
                .push(DealEarning {
                    role,
                    currency: s.deal.currency.clone(),
                    commission_bps: s.deal.commission_bps,
                    affiliate_bps: s.deal.affiliate_bps,
                    earning,
                });
        }
    }
    out
}

/// The earnings as CSV: a header, then one line per (room, deal, role) in that order. Every text
/// cell goes through [`csv_field`], so no cell can start a spreadsheet formula; the numbers are
/// unsigned.
pub fn earnings_csv(e: &Earnings) -> String {
    let mut out = String::from("room,deal,role,currency,orders,units,gmv_cents,commission_cents\n");
    for (room, r) in &e.rooms {
        for (deal, roles) in &r.deals {
            for d in roles {
                let s = &d.earning.sales;
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{}\n",
                    csv_field(room.as_str()),
                    csv_field(deal.as_str()),
                    csv_field(d.role.as_str()),
                    csv_field(&d.currency),
                    s.orders,
                    s.units,
                    s.gmv_cents,
                    d.earning.commission_cents
                ));
            }
        }
    }
    out
}

/// A CSV text field. A field starting with `=`, `+`, `-`, `@`, a tab or a carriage return would
/// be run as a formula by a spreadsheet (CSV injection: ids may start with `-`, and a deal saved
/// before currencies were checked holds free text), so it gets a leading `'`, as OWASP
/// recommends: the spreadsheet shows it as text. Then it is quoted when it holds a comma, a
/// quote or a line break.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::store::BucketActivity;
    use crate::protocol::{Deal, DealStatus};

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    fn deal(d: &str) -> Deal {
        Deal {
            id: id(d),
            product_id: id("scarf"),
            title: "Merino scarf".into(),
            image_url: None,
            price_cents: 1999,
            currency: "EUR".into(),
            stock: 10,
            remaining: 7,
            per_user_limit: 1,
            ends_at: 0,
            status: DealStatus::Live,
            commission_bps: 1000,
            affiliate_bps: 500,
            started_at: None,
        }
    }

    fn sales(d: &str, host: &str, orders: u64, aff: Option<(&str, u64)>) -> DealSales {
        let s = Sales {
            orders,
            units: orders,
            gmv_cents: orders * 1999,
        };
        let mut affiliates = BTreeMap::new();
        if let Some((a, n)) = aff {
            affiliates.insert(
                id(a),
                Earning {
                    sales: Sales {
                        orders: n,
                        units: n,
                        gmv_cents: n * 1999,
                    },
                    commission_cents: n * 99,
                },
            );
        }
        DealSales {
            room: id("r"),
            deal: deal(d),
            creator: id(host),
            total: s,
            channels: BTreeMap::from([(Channel::Paid, s)]),
            host: Earning {
                sales: s,
                commission_cents: orders * 199,
            },
            affiliates,
            buckets: BTreeMap::from([(20_000, s)]),
        }
    }

    #[test]
    fn the_funnel_joins_user_counts_and_sales_per_channel_and_deal() {
        let mut counts = UserCounts::default();
        counts.room.insert((Stage::Viewers, Channel::Paid), 4);
        counts.room.insert((Stage::Viewers, Channel::Live), 2);
        counts.room.insert((Stage::Exposed, Channel::Paid), 3);
        counts
            .deals
            .insert((id("d1"), Stage::Tapped, Channel::Paid), 2);
        counts.sold_out.insert((id("d1"), Channel::Live), 5);
        let f = room_funnel(
            &id("r"),
            &counts,
            &[
                sales("d1", "ana", 2, Some(("bo", 1))),
                sales("d2", "bo", 1, None),
            ],
            30_000,
            7,
        );
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["currency"], "EUR");
        assert_eq!(v["total"]["viewers"], 6);
        assert_eq!(v["total"]["orders"], 3);
        assert_eq!(v["total"]["gmv_cents"], 3 * 1999);
        assert_eq!(v["total"]["sold_out_taps"], 5);
        assert_eq!(v["channels"]["paid"]["exposed"], 3);
        assert_eq!(v["channels"]["live"]["sold_out_taps"], 5);
        assert_eq!(v["channels"]["live"]["gmv_cents"], 0);
        assert_eq!(v["deals"]["d1"]["tapped"], 2);
        assert_eq!(v["deals"]["d1"]["channels"]["paid"]["tapped"], 2);
        assert!(
            v["deals"]["d1"].get("viewers").is_none(),
            "deals have no viewers stage"
        );
        assert_eq!(v["creators"]["ana"]["role"], "host");
        assert_eq!(v["creators"]["ana"]["commission_cents"], 398);
        assert_eq!(v["creators"]["bo"]["role"], "both");
        assert_eq!(v["creators"]["bo"]["orders"], 2);
        assert_eq!(v["creators"]["bo"]["commission_cents"], 99 + 199);
        let back: RoomFunnel = serde_json::from_value(v).unwrap();
        assert_eq!(back, f, "the document reads back as written");
    }

    #[test]
    fn a_room_without_anything_has_zero_totals_and_the_default_currency() {
        let f = room_funnel(&id("r"), &UserCounts::default(), &[], 30_000, 0);
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["currency"], DEFAULT_CURRENCY);
        assert_eq!(v["total"]["viewers"], 0);
        assert_eq!(v["total"]["engaged"], 0);
        assert_eq!(v["channels"], serde_json::json!({}));
    }

    #[test]
    fn the_timeline_fills_gaps_with_zeros_and_adds_sales_to_activity() {
        let mut activity = Activity::default();
        activity.buckets.insert(
            0,
            BucketActivity {
                viewers: 3,
                comments: 1,
                taps: 0,
            },
        );
        let tl = timeline(&id("r"), &activity, &[sales("d1", "ana", 2, None)]);
        let ts: Vec<u64> = tl.buckets.iter().map(|b| b.t).collect();
        assert_eq!(ts, [0, 10_000, 20_000]);
        assert_eq!(
            tl.buckets[1],
            Bucket {
                t: 10_000,
                ..Bucket::default()
            }
        );
        assert_eq!(tl.buckets[2].orders, 2);
        assert_eq!(tl.buckets[2].gmv_cents, 3998);
        assert!(
            timeline(&id("r"), &Activity::default(), &[])
                .buckets
                .is_empty()
        );
    }

    #[test]
    fn earnings_list_each_role_and_the_csv_parses_back_to_the_same_sums() {
        let all = [
            sales("d1", "ana", 2, Some(("bo", 1))),
            sales("d2", "bo", 3, None),
        ];
        let e = earnings(&id("bo"), &all);
        assert_eq!(e.total.sales.orders, 4);
        assert_eq!(e.total.commission_cents, 99 + 3 * 199);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["rooms"]["r"]["deals"]["d1"]["role"], "affiliate");
        assert_eq!(v["rooms"]["r"]["deals"]["d2"]["role"], "host");
        let csv = earnings_csv(&e);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("room,deal,role,currency,orders,units,gmv_cents,commission_cents")
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][..4], ["r", "d1", "affiliate", "EUR"]);
        let commission: u64 = rows.iter().map(|r| r[7].parse::<u64>().unwrap()).sum();
        assert_eq!(commission, e.total.commission_cents);
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn earnings_read_back_to_the_same_value_with_one_role_or_both_on_a_deal() {
        let all = [
            sales("d1", "ana", 2, Some(("bo", 1))),
            sales("d2", "bo", 3, Some(("bo", 2))),
        ];
        let e = earnings(&id("bo"), &all);
        let d2 = &e.rooms[&id("r")].deals[&id("d2")];
        assert_eq!(
            d2.iter().map(|d| d.role).collect::<Vec<_>>(),
            [EarningRole::Affiliate, EarningRole::Host]
        );
        let text = serde_json::to_string(&e).unwrap();
        let back: Earnings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() {
        for (cell, shown) in [
            ("=1+2", "'=1+2"),
            ("+1+2", "'+1+2"),
            ("-2-3", "'-2-3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("EUR", "EUR"),
            ("a-b", "a-b"),
        ] {
            assert_eq!(csv_field(cell), shown, "{cell:?}");
        }
        // Ids may start with `-`: a room or deal id never reaches the sheet as a formula.
        let mut s = sales("-2-3", "bo", 1, None);
        s.room = id("-1-1");
        s.deal.currency = "=1+1".into();
        let csv = earnings_csv(&earnings(&id("bo"), &[s]));
        let row = csv.lines().nth(1).unwrap();
        assert!(row.starts_with("'-1-1,'-2-3,host,'=1+1,1,1,"), "{row}");
        for cell in row.split(',') {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{row}");
        }
    }
}
