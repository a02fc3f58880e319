//! The hub's funnel reply against the run's ground truth: a pure function, so every rule is
//! tested with crafted inputs.
//!
//! Rules (funnel-spec.md's exactness rules, plus the clients' timing allowance):
//! - `orders`, `units`, `gmv_cents`, `sold_out_taps` and every creator's `role`, `orders`,
//!   `units`, `gmv_cents`, `commission_cents`: exact.
//! - `viewers`, `tapped`, `held`, `ordered`: exact while the true count is below 1,000, within
//!   2% of it from 1,000 on ([`user_tolerance`]).
//! - `engaged`, `exposed`: the same, plus the count of borderline users (module `truth`).
//! - Rows compared: the total, every channel, every deal and every deal's channel, every
//!   creator, taken from both sides: a row one side lacks is all zeros there. A field missing
//!   from a row the hub sent is a mismatch.

use std::collections::BTreeSet;

use serde_json::Value;

use super::truth::{RoomTruth, Stage};

/// One field where the hub and the truth disagree beyond what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub room: String,
    /// `total`, `channel paid`, `deal d1`, `deal d1 channel paid`, `creator ana`.
    pub scope: String,
    pub field: String,
    /// The hub's value as sent (`missing` when absent).
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

    /// One number: `row` is the hub's row (`None`: absent, so zeros).
    fn number(&mut self, scope: &str, field: &str, row: Option<&Value>, expected: u64, rule: Rule) {
        let allowed = match rule {
            Rule::Exact => 0,
            Rule::Users => user_tolerance(expected),
            Rule::Timed(border) => user_tolerance(expected) + border,
        };
        let hub = match row {
            None => Some(0),
            Some(r) => r.get(field).and_then(Value::as_u64),
        };
        match hub {
            Some(h) if h.abs_diff(expected) <= allowed => {}
            Some(h) => self.push(scope, field, h.to_string(), expected.to_string(), allowed),
            None => {
                let shown = row
                    .and_then(|r| r.get(field))
                    .map_or("missing".to_owned(), Value::to_string);
                self.push(scope, field, shown, expected.to_string(), allowed);
            }
        }
    }

    fn stage(&mut self, scope: &str, fields: &[&str], row: Option<&Value>, truth: &Stage) {
        for field in fields {
            let (expected, rule) = value_of(truth, field);
            self.number(scope, field, row, expected, rule);
        }
    }
}

/// The keys of the object at `v[key]` (none when absent or not an object).
fn keys(v: &Value, key: &str) -> BTreeSet<String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every field of the hub's funnel reply `hub` for `room` that differs from `truth` beyond the
/// rules above, in a stable order (total, channels, deals, creators). Empty: they agree.
pub fn compare(room: &str, truth: &RoomTruth, hub: &Value) -> Vec<Mismatch> {
    let mut out = Out {
        room,
        list: Vec::new(),
    };
    match hub.get("engaged_ms").and_then(Value::as_u64) {
        Some(ms) if ms == truth.engaged_ms => {}
        other => {
            let shown = other.map_or("missing".to_owned(), |ms| ms.to_string());
            out.push(
                "reply",
                "engaged_ms",
                shown,
                truth.engaged_ms.to_string(),
                0,
            );
        }
    }
    match hub.get("total") {
        Some(total) => out.stage("total", ROOM_FIELDS, Some(total), &truth.total),
        None => out.push("total", "(row)", "missing".into(), "a row".into(), 0),
    }
    let zero = Stage::default();
    let channels = keys(hub, "channels")
        .into_iter()
        .chain(truth.channels.keys().cloned())
        .collect::<BTreeSet<_>>();
    for c in channels {
        let row = hub.get("channels").and_then(|m| m.get(&c));
        let t = truth.channels.get(&c).unwrap_or(&zero);
        out.stage(&format!("channel {c}"), ROOM_FIELDS, row, t);
    }
    let deals = keys(hub, "deals")
        .into_iter()
        .chain(truth.deals.keys().cloned())
        .collect::<BTreeSet<_>>();
    let no_deal = Default::default();
    for d in deals {
        let row = hub.get("deals").and_then(|m| m.get(&d));
        let t = truth.deals.get(&d).unwrap_or(&no_deal);
        out.stage(&format!("deal {d}"), DEAL_FIELDS, row, &t.stage);
        let chans = row
            .map(|r| keys(r, "channels"))
            .unwrap_or_default()
            .into_iter()
            .chain(t.channels.keys().cloned())
            .collect::<BTreeSet<_>>();
        for c in chans {
            let crow = row.and_then(|r| r.get("channels")).and_then(|m| m.get(&c));
            let ct = t.channels.get(&c).unwrap_or(&zero);
            out.stage(&format!("deal {d} channel {c}"), DEAL_FIELDS, crow, ct);
        }
    }
    let creators = keys(hub, "creators")
        .into_iter()
        .chain(truth.creators.keys().cloned())
        .collect::<BTreeSet<_>>();
    let nobody = Default::default();
    for name in creators {
        let row = hub.get("creators").and_then(|m| m.get(&name));
        let t = truth.creators.get(&name).unwrap_or(&nobody);
        let scope = format!("creator {name}");
        if let Some(r) = row
            && !t.role.is_empty()
        {
            let role = r.get("role").and_then(Value::as_str).unwrap_or("missing");
            if role != t.role {
                out.push(&scope, "role", role.into(), t.role.clone(), 0);
            }
        }
        for (field, expected) in [
            ("orders", t.orders),
            ("units", t.units),
            ("gmv_cents", t.gmv_cents),
            ("commission_cents", t.commission_cents),
        ] {
            out.number(&scope, field, row, expected, Rule::Exact);
        }
    }
    out.list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::truth::{CreatorTruth, DealTruth};

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
        assert_eq!(compare("soak-0", &t, &reply(&t)), vec![]);
    }

    #[test]
    fn one_unit_of_gmv_off_fails_and_names_room_scope_and_both_values() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["channels"]["paid"]["gmv_cents"] = 5996.into();
        let m = compare("soak-0", &t, &hub);
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
        assert_eq!(compare("soak-0", &t, &hub), vec![]);
        hub["total"]["viewers"] = 5101.into();
        let m = compare("soak-0", &t, &hub);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].allowed, 100);
    }

    #[test]
    fn one_off_at_500_users_fails() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["total"]["viewers"] = 499.into();
        let m = compare("soak-0", &t, &hub);
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
        assert_eq!(compare("soak-0", &t, &hub), vec![]);
        hub["total"]["exposed"] = 503.into();
        hub["total"]["tapped"] = 251.into();
        let fields: Vec<String> = compare("soak-0", &t, &hub)
            .into_iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, ["exposed", "tapped"]);
    }

    #[test]
    fn an_absent_row_is_zeros_and_an_extra_one_must_be_zeros() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["channels"]["live"] = row(&Stage::default());
        assert_eq!(compare("soak-0", &t, &hub), vec![]);
        hub["channels"]["live"]["orders"] = 1.into();
        assert_eq!(compare("soak-0", &t, &hub).len(), 1);
        let mut hub = reply(&t);
        hub["deals"].as_object_mut().unwrap().remove("d1");
        let m = compare("soak-0", &t, &hub);
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
        let m: Vec<String> = compare("soak-0", &t, &hub)
            .iter()
            .map(ToString::to_string)
            .collect();
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
    fn a_missing_field_is_a_mismatch() {
        let t = truth(500);
        let mut hub = reply(&t);
        hub["total"].as_object_mut().unwrap().remove("orders");
        let m = compare("soak-0", &t, &hub);
        assert_eq!(
            m[0].to_string(),
            "room soak-0 total orders hub missing expected 3"
        );
    }
}
