//! Ground truth: what the run's own viewers saw and did ([`ViewerFacts`], one per user, kept by
//! its client across reconnects), tallied into the funnel's counters ([`RoomTruth`], the shape of
//! the hub's funnel reply) by [`tally`].
//!
//! Definitions, from the clients' side (the hub's are in funnel-spec.md):
//! - `viewers`: distinct users that got a welcome; `engaged`: users whose connections add up to
//!   at least `engaged_ms`; `exposed`: users that got a welcome listing a deal not ended, or a
//!   `deal` event of a deal not ended (live or sold out: still on screen), per deal that deal.
//! - `tapped`: users that sent a reserve; `held`: users that got `reserved`; `ordered`: users
//!   with an `order`; `orders`, `units`, `gmv_cents` (qty x price_cents) from the `order` replies;
//!   `sold_out_taps`: reserves answered `rejected` `sold_out`. Only replies to a client's own
//!   requests count, each request_id once.
//! - Creators: per order, the deal's host (the host token's sub) earns
//!   floor(total x commission_bps / 10000) and the buyer's signed affiliate
//!   floor(total x affiliate_bps / 10000), computed per order in integers, then summed.
//!
//! `engaged` and `exposed` depend on timing the hub sees a little differently (its clock, its
//! side of each connection): a user within [`BORDER_MS`] of a boundary may be counted either
//! way. Such users are counted in `engaged_borderline` / `exposed_borderline`, the allowance the
//! comparison grants.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::trace::Attribution;

/// How close to a boundary (engaged_ms, a deal's start or end) a user's timing may be and still
/// be counted either way by the hub.
pub const BORDER_MS: u64 = 1000;

/// One order as its buyer's client got it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub deal: String,
    pub qty: u64,
    pub price_cents: u64,
}

/// What one viewer's client saw and did in its room, across all of its connections.
#[derive(Clone, Debug, Default)]
pub struct ViewerFacts {
    pub room: String,
    pub who: Attribution,
    pub welcomed: bool,
    /// Its connections, (from, to) in µs since the run's start.
    pub stays: Vec<(u64, u64)>,
    /// Deals it saw live while connected.
    pub exposed: BTreeSet<String>,
    /// Deals it sent a reserve for.
    pub tapped: BTreeSet<String>,
    /// Deals it got a hold on.
    pub held: BTreeSet<String>,
    pub orders: Vec<Order>,
    /// Reserves answered `sold_out`, per deal.
    pub sold_out_taps: BTreeMap<String, u64>,
}

/// When the run's clients first saw a deal live (or sold out) and first saw it ended, in µs
/// since the run's start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub live_from_us: Option<u64>,
    pub over_from_us: Option<u64>,
}

/// A deal's terms as the run's host sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// The host creator: the `sub` of the host token that started the deal.
    pub host: String,
    pub commission_bps: u64,
    pub affiliate_bps: u64,
}

/// One stage row: the funnel's counters for a room, a channel, a deal or a deal's channel
/// (`viewers`/`engaged` are not kept per deal), with the borderline allowances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
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
    /// Users whose connected time is within [`BORDER_MS`] of `engaged_ms`.
    pub engaged_borderline: u64,
    /// Users that may have been exposed by the hub's timing but not by the clients' or the
    /// other way round (a connection that ended or began within [`BORDER_MS`] of the deal
    /// starting or ending).
    pub exposed_borderline: u64,
}

impl Stage {
    fn absorb(&mut self, o: &Stage) {
        self.viewers += o.viewers;
        self.engaged += o.engaged;
        self.exposed += o.exposed;
        self.tapped += o.tapped;
        self.held += o.held;
        self.ordered += o.ordered;
        self.units += o.units;
        self.gmv_cents += o.gmv_cents;
        self.sold_out_taps += o.sold_out_taps;
        self.orders += o.orders;
        self.engaged_borderline += o.engaged_borderline;
        self.exposed_borderline += o.exposed_borderline;
    }

    fn order(&mut self, total: u64, qty: u64) {
        self.orders += 1;
        self.units += qty;
        self.gmv_cents += total;
    }
}

/// One deal's counters and its channels'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealTruth {
    #[serde(flatten)]
    pub stage: Stage,
    pub channels: BTreeMap<String, Stage>,
}

/// What one creator earned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatorTruth {
    /// `host`, `affiliate` or `both`.
    pub role: String,
    pub orders: u64,
    pub units: u64,
    pub gmv_cents: u64,
    pub commission_cents: u64,
}

impl CreatorTruth {
    fn earn(&mut self, role: &str, total: u64, qty: u64, bps: u64) {
        self.role = match self.role.as_str() {
            "" => role.to_owned(),
            r if r == role => role.to_owned(),
            _ => "both".to_owned(),
        };
        self.orders += 1;
        self.units += qty;
        self.gmv_cents += total;
        self.commission_cents += commission(total, bps);
    }
}

/// floor(total x bps / 10000), exactly.
pub fn commission(total_cents: u64, bps: u64) -> u64 {
    (u128::from(total_cents) * u128::from(bps) / 10_000) as u64
}

/// A room's ground truth, in the shape of the hub's funnel reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomTruth {
    /// The hub's `engaged_ms` the tally used.
    pub engaged_ms: u64,
    pub total: Stage,
    pub channels: BTreeMap<String, Stage>,
    pub deals: BTreeMap<String, DealTruth>,
    pub creators: BTreeMap<String, CreatorTruth>,
}

impl RoomTruth {
    /// Adds another shard's truth of the same room (shards play disjoint viewers, so every
    /// distinct-user count adds up).
    pub fn absorb(&mut self, o: &RoomTruth) {
        self.engaged_ms = self.engaged_ms.max(o.engaged_ms);
        self.total.absorb(&o.total);
        for (c, s) in &o.channels {
            self.channels.entry(c.clone()).or_default().absorb(s);
        }
        for (d, t) in &o.deals {
            let mine = self.deals.entry(d.clone()).or_default();
            mine.stage.absorb(&t.stage);
            for (c, s) in &t.channels {
                mine.channels.entry(c.clone()).or_default().absorb(s);
            }
        }
        for (name, c) in &o.creators {
            let mine = self.creators.entry(name.clone()).or_default();
            mine.role = match (mine.role.as_str(), c.role.as_str()) {
                ("", r) => r.to_owned(),
                (a, b) if a == b => a.to_owned(),
                _ => "both".to_owned(),
            };
            mine.orders += c.orders;
            mine.units += c.units;
            mine.gmv_cents += c.gmv_cents;
            mine.commission_cents += c.commission_cents;
        }
    }
}

/// Whether the hub's view of one stay may differ from the clients' about exposure to a deal
/// live in `w`: the stay ended within [`BORDER_MS`] of the deal starting, or began within it of
/// the deal ending.
fn borderline_exposure((from, to): (u64, u64), w: &Window) -> bool {
    let near = |a: u64, b: u64| a.abs_diff(b) <= BORDER_MS * 1000;
    w.live_from_us.is_some_and(|t| near(to, t)) || w.over_from_us.is_some_and(|t| near(from, t))
}

/// Tallies one room's viewers into its truth. `terms` are the room's deals as its host sent
/// them, `windows` when the clients saw each deal live, `engaged_ms` the hub's threshold.
pub fn tally(
    viewers: &[ViewerFacts],
    terms: &BTreeMap<String, Terms>,
    windows: &BTreeMap<String, Window>,
    engaged_ms: u64,
) -> RoomTruth {
    let mut t = RoomTruth {
        engaged_ms,
        ..RoomTruth::default()
    };
    for v in viewers.iter().filter(|v| v.welcomed) {
        t.viewer(v, terms, windows);
    }
    t
}

impl RoomTruth {
    /// Adds one welcomed viewer: its deal rows deal by deal, then its room and channel row
    /// ("any deal").
    fn viewer(
        &mut self,
        v: &ViewerFacts,
        terms: &BTreeMap<String, Terms>,
        windows: &BTreeMap<String, Window>,
    ) {
        let channel = v.who.counted_channel().as_str().to_owned();
        let mut row = Stage {
            viewers: 1,
            ..Stage::default()
        };
        let connected_ms: u64 = v
            .stays
            .iter()
            .map(|(a, b)| b.saturating_sub(*a))
            .sum::<u64>()
            / 1000;
        row.engaged = u64::from(connected_ms >= self.engaged_ms);
        row.engaged_borderline = u64::from(connected_ms.abs_diff(self.engaged_ms) <= BORDER_MS);
        let deals: BTreeSet<&String> = v
            .exposed
            .iter()
            .chain(&v.tapped)
            .chain(&v.held)
            .chain(v.orders.iter().map(|o| &o.deal))
            .chain(v.sold_out_taps.keys())
            .chain(windows.keys())
            .collect();
        let (mut surely_exposed, mut maybe_exposed) = (false, false);
        for deal in deals {
            let window = windows.get(deal).copied().unwrap_or_default();
            let exposed = v.exposed.contains(deal);
            let borderline = v.stays.iter().any(|s| borderline_exposure(*s, &window));
            surely_exposed |= exposed && !borderline;
            maybe_exposed |= borderline;
            let mut d = Stage {
                exposed: u64::from(exposed),
                exposed_borderline: u64::from(borderline),
                tapped: u64::from(v.tapped.contains(deal)),
                held: u64::from(v.held.contains(deal)),
                sold_out_taps: v.sold_out_taps.get(deal).copied().unwrap_or(0),
                ..Stage::default()
            };
            self.orders(v, deal, terms.get(deal), &mut d);
            if d == Stage::default() {
                continue;
            }
            row.any_deal(&d);
            let dt = self.deals.entry(deal.clone()).or_default();
            dt.stage.absorb(&d);
            dt.channels.entry(channel.clone()).or_default().absorb(&d);
        }
        row.exposed_borderline = u64::from(maybe_exposed && !surely_exposed);
        self.total.absorb(&row);
        self.channels.entry(channel).or_default().absorb(&row);
    }

    /// Adds `v`'s orders of `deal` to its deal row `d`, and what each paid its host creator and
    /// its signed affiliate (on `terms`, when the host sent them).
    fn orders(&mut self, v: &ViewerFacts, deal: &str, terms: Option<&Terms>, d: &mut Stage) {
        for o in v.orders.iter().filter(|o| o.deal == deal) {
            let total = o.qty * o.price_cents;
            d.order(total, o.qty);
            if let Some(terms) = terms {
                self.creators.entry(terms.host.clone()).or_default().earn(
                    "host",
                    total,
                    o.qty,
                    terms.commission_bps,
                );
            }
            if let Some(aff) = v.who.earning_aff() {
                let bps = terms.map_or(0, |t| t.affiliate_bps);
                self.creators.entry(aff.to_owned()).or_default().earn(
                    "affiliate",
                    total,
                    o.qty,
                    bps,
                );
            }
        }
        d.ordered = u64::from(d.orders > 0);
    }
}

impl Stage {
    /// Folds one deal's row of a user into the user's room row: a stage reached on any deal
    /// counts once, money and taps add up.
    fn any_deal(&mut self, d: &Stage) {
        self.exposed |= d.exposed;
        self.tapped |= d.tapped;
        self.held |= d.held;
        self.ordered |= d.ordered;
        self.sold_out_taps += d.sold_out_taps;
        self.orders += d.orders;
        self.units += d.units;
        self.gmv_cents += d.gmv_cents;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(channel: Option<&str>, aff: Option<&str>, via_query: bool) -> ViewerFacts {
        ViewerFacts {
            room: "r".into(),
            who: Attribution {
                channel: channel.map(str::to_owned),
                aff: aff.map(str::to_owned),
                via_query,
            },
            welcomed: true,
            stays: vec![(0, 10_000_000)],
            ..ViewerFacts::default()
        }
    }

    fn terms() -> BTreeMap<String, Terms> {
        [(
            "d1".to_owned(),
            Terms {
                host: "h-r".into(),
                commission_bps: 1000,
                affiliate_bps: 250,
            },
        )]
        .into()
    }

    #[test]
    fn commission_is_floored_per_order_then_summed() {
        let mut a = viewer(Some("creator"), Some("bo"), false);
        for _ in 0..3 {
            a.orders.push(Order {
                deal: "d1".into(),
                qty: 1,
                price_cents: 1999,
            });
        }
        a.tapped.insert("d1".into());
        a.held.insert("d1".into());
        let t = tally(&[a], &terms(), &BTreeMap::new(), 30_000);
        // 1999 x 10% = 199.9 -> 199 per order; x 2.5% = 49.975 -> 49.
        assert_eq!(t.creators["h-r"].commission_cents, 3 * 199);
        assert_eq!(t.creators["h-r"].role, "host");
        assert_eq!(t.creators["bo"].commission_cents, 3 * 49);
        assert_eq!(t.creators["bo"].role, "affiliate");
        assert_eq!(
            (t.total.orders, t.total.units, t.total.gmv_cents),
            (3, 3, 5997)
        );
        assert_eq!((t.total.tapped, t.total.held, t.total.ordered), (1, 1, 1));
        assert_eq!(t.channels["creator"].gmv_cents, 5997);
        assert_eq!(t.deals["d1"].channels["creator"].orders, 3);
    }

    #[test]
    fn a_query_attributed_viewer_counts_in_its_channel_but_its_affiliate_earns_nothing() {
        let mut a = viewer(Some("paid"), Some("bo"), true);
        a.orders.push(Order {
            deal: "d1".into(),
            qty: 2,
            price_cents: 500,
        });
        let t = tally(&[a], &terms(), &BTreeMap::new(), 30_000);
        assert_eq!(t.channels["paid"].gmv_cents, 1000);
        assert!(!t.creators.contains_key("bo"));
        assert_eq!(t.creators["h-r"].commission_cents, 100);
    }

    #[test]
    fn a_user_near_engaged_ms_or_a_deal_boundary_is_borderline() {
        let mut near = viewer(None, None, false);
        near.stays = vec![(0, 4_000_000), (5_000_000, 10_600_000)]; // 9.6 s in all
        let mut far = viewer(None, None, false);
        far.stays = vec![(0, 20_000_000)];
        let windows: BTreeMap<String, Window> = [(
            "d1".to_owned(),
            Window {
                live_from_us: Some(4_300_000),
                over_from_us: None,
            },
        )]
        .into();
        far.exposed.insert("d1".into());
        let t = tally(&[near, far], &terms(), &windows, 10_000);
        assert_eq!(t.total.viewers, 2);
        assert_eq!(t.total.engaged, 1);
        assert_eq!(t.total.engaged_borderline, 1);
        assert_eq!(t.total.exposed, 1);
        // u1 left 0.3 s after the deal went live: the hub may have counted it.
        assert_eq!(t.total.exposed_borderline, 1);
        assert_eq!(t.deals["d1"].stage.exposed_borderline, 1);
        assert_eq!(t.channels["direct"].viewers, 2);
    }

    #[test]
    fn shard_truths_add_up_and_a_creator_in_both_roles_is_both() {
        let mut a = RoomTruth::default();
        a.total.viewers = 3;
        a.creators.insert(
            "ana".into(),
            CreatorTruth {
                role: "host".into(),
                orders: 1,
                commission_cents: 10,
                ..CreatorTruth::default()
            },
        );
        let mut b = a.clone();
        b.creators.get_mut("ana").unwrap().role = "affiliate".into();
        a.absorb(&b);
        assert_eq!(a.total.viewers, 6);
        assert_eq!(a.creators["ana"].role, "both");
        assert_eq!(a.creators["ana"].commission_cents, 20);
    }
}
