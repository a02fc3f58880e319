//! The hub's funnel reply against the run's ground truth: a pure function, so every rule is
//! tested with crafted inputs. The reply is read with the hub's own view types
//! ([`RoomFunnel`], [`read`]), leniently as the funnel contract asks: a field the hub left out
//! reads as zero (a room or channel row without `viewers` or `engaged` shows as `missing`).
//!
//! Rules (funnel-spec.md's exactness rules, plus the clients' timing allowance):
//! - `orders`, `units`, `gmv_cents`, `sold_out_taps` and every creator's `role`, `orders`,
//!   `units`, `gmv_cents`, `commission_cents`: exact.
//! - `viewers`, `tapped`, `held`, `ordered`: exact while the true count is below 1,000, within
//!   2% of it from 1,000 on ([`user_tolerance`]).
//! - `engaged`, `exposed`: the same, plus the count of borderline users (module `truth`).
//! - Rows compared: the total, every channel, every deal and every deal's channel, every
//!   creator, taken from both sides: a row one side lacks is all zeros there.

use std::collections::{BTreeMap, BTreeSet};

use livehub::commerce::Channel;
use livehub::funnel::view::{CreatorRow, RoomFunnel, StageRow};
use serde::Deserialize;
use serde_json::Value;

use super::truth::{CreatorTruth, DealTruth, RoomTruth, Stage};

/// The hub's funnel document `v` read with the hub's own types; the error says why it is not
/// one.
pub fn read(v: &Value) -> Result<RoomFunnel, String> {
    RoomFunnel::deserialize(v)
        .map_err(|e| format!("the hub's funnel reply does not read as a funnel document: {e}"))
}

/// One field where the hub and the truth disagree beyond what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub room: String,
    /// `total`, `channel paid`, `deal d1`, `deal d1 channel paid`, `creator ana`.
    pub scope: String,
    pub field: String,
    /// The hub's value as read (`missing` when a row lacks `viewers` or `engaged`).
    pub hub: String,
    pub expected: String,
    /// The difference that would have been allowed.
    pub allowed: u64,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "room {} {} {} hub {} expected {}",
            self.room, self.scope, self.field, self.hub, self.expected
        )?;
        if self.allowed > 0 {
            write!(f, " (±{} allowed)", self.allowed)?;
        }
        Ok(())
    }
}

/// The error allowed on a distinct-user count whose true value is `expected`: none below 1,000,
/// 2% (rounded down) from there.
pub fn user_tolerance(expected: u64) -> u64 {
    if expected < 1000 {
        0
    } else {
        expected * 2 / 100
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Exact,
    Users,
    /// Users, plus this many borderline users.
    Timed(u64),
}

/// The room-level and channel rows' fields, and the deal rows'.
const ROOM_FIELDS: &[&str] = &[
    "viewers",
    "engaged",
    "exposed",
    "tapped",
    "held",
    "ordered",
    "units",
    "gmv_cents",
    "sold_out_taps",
    "orders",
];
const DEAL_FIELDS: &[&str] = &[
    "exposed",
    "tapped",
    "held",
    "ordered",
    "units",
    "gmv_cents",
    "sold_out_taps",
    "orders",
];

fn value_of(s: &Stage, field: &str) -> (u64, Rule) {
    match field {
        "viewers" => (s.viewers, Rule::Users),
        "engaged" => (s.engaged, Rule::Timed(s.engaged_borderline)),
        "exposed" => (s.exposed, Rule::Timed(s.exposed_borderline)),
        "tapped" => (s.tapped, Rule::Users),
        "held" => (s.held, Rule::Users),
        "ordered" => (s.ordered, Rule::Users),
        "units" => (s.units, Rule::Exact),
        "gmv_cents" => (s.gmv_cents, Rule::Exact),
        "sold_out_taps" => (s.sold_out_taps, Rule::Exact),
        _ => (s.orders, Rule::Exact),
    }
}

/// The hub's `field` of `row` (none: a row that does not count `viewers` or `engaged`).
fn hub_of(row: &StageRow, field: &str) -> Option<u64> {
    match field {
        "viewers" => row.viewers,
        "engaged" => row.engaged,
        "exposed" => Some(row.exposed),
        "tapped" => Some(row.tapped),
        "held" => Some(row.held),
        "ordered" => Some(row.ordered),
        "units" => Some(row.units),
        "gmv_cents" => Some(row.gmv_cents),
        "sold_out_taps" => Some(row.sold_out_taps),
        _ => Some(row.orders),
    }
}

/// A creator's `field` (`orders`, `units`, `gmv_cents`, `commission_cents`) on the hub's side
/// and in the truth.
fn creator_field(row: Option<&CreatorRow>, t: &CreatorTruth, field: &str) -> (Option<u64>, u64) {
    let e = row.map(|r| r.earning);
    match field {
        "orders" => (e.map(|e| e.sales.orders), t.orders),
        "units" => (e.map(|e| e.sales.units), t.units),
        "gmv_cents" => (e.map(|e| e.sales.gmv_cents), t.gmv_cents),
        _ => (e.map(|e| e.commission_cents), t.commission_cents),
    }
}

struct Out<'a> {
    room: &'a str,
    list: Vec<Mismatch>,
}

impl Out<'_> {
    fn push(&mut self, scope: &str, field: &str, hub: String, expected: String, allowed: u64) {
        self.list.push(Mismatch {
            room: self.room.to_owned(),
            scope: scope.to_owned(),
            field: field.to_owned(),
            hub,
            expected,
            allowed,
        });
    }

    /// One number: `hub` is the hub's value, `Some(None)` when its row lacks the field, and
    /// `None` when the row is absent (so zero).
    fn number(
        &mut self,
        scope: &str,
        field: &str,
        hub: Option<Option<u64>>,
        expected: u64,
        rule: Rule,
    ) {
        let allowed = match rule {
            Rule::Exact => 0,
            Rule::Users => user_tolerance(expected),
            Rule::Timed(border) => user_tolerance(expected) + border,
        };
        match hub.unwrap_or(Some(0)) {
            Some(h) if h.abs_diff(expected) <= allowed => {}
            Some(h) => self.push(scope, field, h.to_string(), expected.to_string(), allowed),
            None => self.push(
                scope,
                field,
                "missing".into(),
                expected.to_string(),
                allowed,
            ),
        }
    }

    fn stage(&mut self, scope: &str, fields: &[&str], row: Option<&StageRow>, truth: &Stage) {
        for field in fields {
            let (expected, rule) = value_of(truth, field);
            self.number(scope, field, row.map(|r| hub_of(r, field)), expected, rule);
        }
    }

    /// The channel rows of one scope (`prefix` is `""` or `"deal d1 "`): every channel either
    /// side has.
    fn channels(
        &mut self,
        prefix: &str,
        fields: &[&str],
        hub: Option<&BTreeMap<Channel, StageRow>>,
        truth: &BTreeMap<String, Stage>,
    ) {
        let by_name: BTreeMap<&str, &StageRow> = hub
            .into_iter()
            .flatten()
            .map(|(c, r)| (c.as_str(), r))
            .collect();
        let names: BTreeSet<&str> = by_name
            .keys()
            .copied()
            .chain(truth.keys().map(String::as_str))
            .collect();
        let zero = Stage::default();
        for c in names {
            let t = truth.get(c).unwrap_or(&zero);
            self.stage(
                &format!("{prefix}channel {c}"),
                fields,
                by_name.get(c).copied(),
                t,
            );
        }
    }

    /// Every deal either side has, and each deal's channels.
    fn deals(&mut self, hub: &RoomFunnel, truth: &RoomTruth) {
        let deals: BTreeSet<&String> = hub.deals.keys().chain(truth.deals.keys()).collect();
        let no_deal = DealTruth::default();
        for d in deals {
            let row = hub.deals.get(d);
            let t = truth.deals.get(d).unwrap_or(&no_deal);
            self.stage(
                &format!("deal {d}"),
                DEAL_FIELDS,
                row.map(|r| &r.row),
                &t.stage,
            );
            let prefix = format!("deal {d} ");
            self.channels(&prefix, DEAL_FIELDS, row.map(|r| &r.channels), &t.channels);
        }
    }

    /// Every creator either side has: role (when the truth knows it) and earnings, exactly.
    fn creators(&mut self, hub: &RoomFunnel, truth: &RoomTruth) {
        let creators: BTreeSet<&String> =
            hub.creators.keys().chain(truth.creators.keys()).collect();
        let nobody = CreatorTruth::default();
        for name in creators {
            let row = hub.creators.get(name);
            let t = truth.creators.get(name).unwrap_or(&nobody);
            let scope = format!("creator {name}");
            if let Some(r) = row
                && !t.role.is_empty()
                && r.role != t.role
            {
                let role = if r.role.is_empty() {
                    "missing"
                } else {
                    &r.role
                };
                self.push(&scope, "role", role.into(), t.role.clone(), 0);
            }
            for field in ["orders", "units", "gmv_cents", "commission_cents"] {
                let (h, expected) = creator_field(row, t, field);
                self.number(&scope, field, h.map(Some), expected, Rule::Exact);
            }
        }
    }
}

/// Every field of the hub's funnel reply `hub` for `room` that differs from `truth` beyond the
/// rules above, in a stable order (engaged_ms, total, channels, deals, creators). Empty: they
/// agree.
pub fn compare(room: &str, truth: &RoomTruth, hub: &RoomFunnel) -> Vec<Mismatch> {
    let mut out = Out {
        room,
        list: Vec::new(),
    };
    if hub.engaged_ms != truth.engaged_ms {
        let shown = hub.engaged_ms.to_string();
        out.push(
            "reply",
            "engaged_ms",
            shown,
            truth.engaged_ms.to_string(),
            0,
        );
    }
    out.stage("total", ROOM_FIELDS, Some(&hub.total), &truth.total);
    out.channels("", ROOM_FIELDS, Some(&hub.channels), &truth.channels);
    out.deals(hub, truth);
    out.creators(hub, truth);
    out.list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(s: &Stage) -> Value {
        serde_json::json!({"viewers": s.viewers, "engaged": s.engaged, "exposed": s.exposed,
            "tapped": s.tapped, "held": s.held, "ordered": s.ordered, "units": s.units,
            "gmv_cents": s.gmv_cents, "sold_out_taps": s.sold_out_taps, "orders": s.orders})
    }

    /// The hub's reply that matches `t` exactly.
    fn reply(t: &RoomTruth) -> Value {
        let mut v = serde_json::json!({"room": "soak-0", "currency": "USD", "engaged_ms": t.engaged_ms,
            "generated_at": 1, "total": row(&t.total), "channels": {}, "deals": {}, "creators": {}});
        for (c, s) in &t.channels {
            v["channels"][c] = row(s);
        }
        for (d, dt) in &t.deals {
            let mut r = row(&dt.stage);
            for k in ["viewers", "engaged"] {
                r.as_object_mut().unwrap().remove(k);
            }
            r["title"] = "Merino scarf".into();
            r["channels"] = serde_json::json!({});
            for (c, s) in &dt.channels {
                r["channels"][c] = row(s);
            }
            v["deals"][d] = r;
        }
        for (n, c) in &t.creators {
            v["creators"][n] = serde_json::json!({"role": c.role, "orders": c.orders,
                "units": c.units, "gmv_cents": c.gmv_cents, "commission_cents": c.commission_cents});
        }
        v
    }

    fn cmp(t: &RoomTruth, hub: &Value) -> Vec<Mismatch> {
        compare("soak-0", t, &read(hub).expect("a funnel document"))
    }

    fn stage(users: u64, orders: u64, price: u64) -> Stage {
        Stage {
            viewers: users,
            exposed: users,
            tapped: users / 2,
            held: users / 4,
            ordered: orders,
            orders,
            units: orders,
            gmv_cents: orders * price,
            sold_out_taps: 3,
            ..Stage::default()
        }
    }

    fn truth(users: u64) -> RoomTruth {
        let mut t = RoomTruth {
            engaged_ms: 30_000,
            total: stage(users, 3, 1999),
            ..RoomTruth::default()
        };
        t.channels.insert("paid".into(), stage(users, 3, 1999));
        t.deals.insert(
            "d1".into(),
            DealTruth {
                stage: Stage {
                    viewers: 0,
                    ..stage(users, 3, 1999)
                },
                channels: [("paid".to_owned(), stage(users, 3, 1999))].into(),
            },
        );
        t.creators.insert(
            "h-soak-0".into(),
            CreatorTruth {
                role: "host".into(),
                orders: 3,
                units: 3,
                gmv_cents: 5997,
                commission_cents: 597,
            },
        );
        t
    }

    #[test]
    fn an_exact_match_passes() {
        let t = truth(500);
        assert_eq!(cmp(&t, &reply(&t)), vec![]);
    }

    #[test]
    fn one_unit_of_gmv_off_fails_and_names_room_scope_and_both_values() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["channels"]["paid"]["gmv_cents"] = 5996.into();
        let m = cmp(&t, &hub);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0].to_string(),
            "room soak-0 channel paid gmv_cents hub 5996 expected 5997"
        );
    }

    #[test]
    fn one_and_a_half_percent_off_at_5000_users_passes() {
        let t = truth(5000);
        let mut hub = reply(&t);
        hub["total"]["viewers"] = 5075.into();
        hub["channels"]["paid"]["viewers"] = 4925.into();
        hub["deals"]["d1"]["exposed"] = 5070.into();
        assert_eq!(cmp(&t, &hub), vec![]);
        hub["total"]["viewers"] = 5101.into();
        let m = cmp(&t, &hub);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].allowed, 100);
    }

    #[test]
    fn one_off_at_500_users_fails() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["total"]["viewers"] = 499.into();
        let m = cmp(&t, &hub);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].to_string(),
            "room soak-0 total viewers hub 499 expected 500"
        );
    }

    #[test]
    fn borderline_users_widen_only_engaged_and_exposed() {
        let mut t = truth(500);
        t.total.exposed_borderline = 2;
        let mut hub = reply(&t);
        hub["total"]["exposed"] = 502.into();
        assert_eq!(cmp(&t, &hub), vec![]);
        hub["total"]["exposed"] = 503.into();
        hub["total"]["tapped"] = 251.into();
        let fields: Vec<String> = cmp(&t, &hub).into_iter().map(|m| m.field).collect();
        assert_eq!(fields, ["exposed", "tapped"]);
    }

    #[test]
    fn an_absent_row_is_zeros_and_an_extra_one_must_be_zeros() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["channels"]["live"] = row(&Stage::default());
        assert_eq!(cmp(&t, &hub), vec![]);
        hub["channels"]["live"]["orders"] = 1.into();
        assert_eq!(cmp(&t, &hub).len(), 1);
        let mut hub = reply(&t);
        hub["deals"].as_object_mut().unwrap().remove("d1");
        let m = cmp(&t, &hub);
        assert!(
            m.iter()
                .any(|m| m.to_string() == "room soak-0 deal d1 gmv_cents hub 0 expected 5997"),
            "{m:?}"
        );
    }

    #[test]
    fn creators_must_match_exactly_including_their_role() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["creators"]["h-soak-0"]["commission_cents"] = 598.into();
        hub["creators"]["h-soak-0"]["role"] = "both".into();
        hub["creators"]["bo"] = serde_json::json!({"role": "affiliate", "orders": 1, "units": 1, "gmv_cents": 1999, "commission_cents": 0});
        let m: Vec<String> = cmp(&t, &hub).iter().map(ToString::to_string).collect();
        assert_eq!(
            m,
            [
                "room soak-0 creator bo orders hub 1 expected 0",
                "room soak-0 creator bo units hub 1 expected 0",
                "room soak-0 creator bo gmv_cents hub 1999 expected 0",
                "room soak-0 creator h-soak-0 role hub both expected host",
                "room soak-0 creator h-soak-0 commission_cents hub 598 expected 597",
            ]
        );
    }

    #[test]
    fn a_field_left_out_reads_as_zero_as_the_contract_says() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["total"].as_object_mut().unwrap().remove("orders");
        hub["total"].as_object_mut().unwrap().remove("viewers");
        let m: Vec<String> = cmp(&t, &hub).iter().map(ToString::to_string).collect();
        assert_eq!(
            m,
            [
                "room soak-0 total viewers hub missing expected 500",
                "room soak-0 total orders hub 0 expected 3",
            ]
        );
    }

    #[test]
    fn a_reply_that_is_not_a_funnel_document_says_so() {
        let e = read(&serde_json::json!({"total": {"orders": "three"}})).unwrap_err();
        assert!(e.contains("does not read as a funnel document"), "{e}");
    }
}
