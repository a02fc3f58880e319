//! The funnel check of a run: after the last client closed, each room's truth is tallied and the
//! hub's funnel read ([`run`]); [`FunnelReport::verdict`] turns the two into the lines of the SLO
//! `funnel_mismatch`. The report keeps both sides, so `merge` can add up the truths of shards
//! and judge again against the latest reading.

use std::collections::{BTreeMap, HashMap};

use livehub::auth::{Authenticator, Claims};
use livehub::protocol::{ClientMsg, Role};
use serde::{Deserialize, Serialize};

use super::compare::{compare, read};
use super::fetch;
use super::truth::{self, RoomTruth, Terms, ViewerFacts, Window};
use crate::trace::{Action, Event};

/// One room's two sides.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoomCheck {
    pub truth: RoomTruth,
    /// The hub's last funnel reply.
    pub hub: Option<serde_json::Value>,
    /// Why there is no reply to compare with.
    pub error: Option<String>,
}

/// The funnel check as the JSON report keeps it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FunnelReport {
    /// One shard of several: the truth covers only its viewers, so it is judged after `merge`.
    pub partial: bool,
    pub rooms: BTreeMap<String, RoomCheck>,
    /// The verdict's lines (mismatches and reasons), filled in by the report.
    #[serde(default)]
    pub mismatches: Vec<String>,
}

impl FunnelReport {
    /// Every mismatch and every room without a reply, one line each ("room soak-0 channel paid
    /// gmv_cents hub 3998 expected 5997"). Empty: the funnel matched.
    pub fn verdict(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (room, c) in &self.rooms {
            match (&c.error, &c.hub) {
                (Some(e), _) => lines.push(format!("room {room}: {e}")),
                (None, Some(hub)) => match read(hub) {
                    Ok(f) => {
                        lines.extend(compare(room, &c.truth, &f).iter().map(ToString::to_string))
                    }
                    Err(e) => lines.push(format!("room {room}: {e}")),
                },
                (None, None) => lines.push(format!("room {room}: no funnel reading")),
            }
        }
        lines
    }

    /// Adds another shard's report of the same show: truths add up, and of two readings of a
    /// room the later (`generated_at`) is kept.
    pub fn absorb(&mut self, o: &FunnelReport) {
        for (room, c) in &o.rooms {
            let mine = self.rooms.entry(room.clone()).or_default();
            mine.truth.absorb(&c.truth);
            let at = |h: &Option<serde_json::Value>| Some(read(h.as_ref()?).ok()?.generated_at);
            if c.hub.is_some() && (mine.hub.is_none() || at(&c.hub) > at(&mine.hub)) {
                mine.hub = c.hub.clone();
                mine.error = None;
            } else if mine.hub.is_none() && mine.error.is_none() {
                mine.error = c.error.clone();
            }
        }
    }
}

/// Every room of a plan or trace (a room without deals too) with its deals as its host sent
/// them (`deal_start`). The host creator is the host client's id, which is its token's `sub`.
pub fn terms_of(events: &[Event]) -> BTreeMap<String, BTreeMap<String, Terms>> {
    let mut out: BTreeMap<String, BTreeMap<String, Terms>> = BTreeMap::new();
    for e in events {
        out.entry(e.room.clone()).or_default();
        let Action::Host {
            command: ClientMsg::DealStart { deal, .. },
        } = &e.action
        else {
            continue;
        };
        out.entry(e.room.clone())
            .or_default()
            .entry(deal.id.to_string())
            .or_insert_with(|| Terms {
                host: e.client.clone(),
                commission_bps: u64::from(deal.commission_bps),
                affiliate_bps: u64::from(deal.affiliate_bps),
            });
    }
    out
}

/// Whether a reading shows the room was used before this run.
fn activity(v: &serde_json::Value) -> Option<String> {
    let t = read(v).ok()?.total;
    let (viewers, orders) = (t.viewers?, t.orders);
    (viewers > 0 || orders > 0).then(|| {
        format!(
            "the room was not fresh: before this run the hub had already counted {viewers} viewers and {orders} orders in it, so its funnel cannot be compared with this run's (use a fresh hub or another room_prefix)"
        )
    })
}

/// What the run needs to check the funnel.
pub struct Input {
    /// The hub's base URL for REST (`http://host:port`, the first `--url`).
    pub http: String,
    pub auth: Authenticator,
    /// Rooms to check, with their deals' terms.
    pub terms: BTreeMap<String, BTreeMap<String, Terms>>,
    pub partial: bool,
}

/// A host token of `room` (the room's host client's `sub`).
fn host_token(auth: &Authenticator, room: &str) -> String {
    auth.mint(&Claims {
        sub: crate::scenario::host_id(room),
        name: None,
        role: Role::Host,
        room: room.to_owned(),
        exp: Some(livehub::clock::now_ms() / 1000 + 3600),
        src: None,
        aff: None,
    })
    .unwrap_or_default()
}

/// Readings taken before the run, by room: a reason for each room that was not fresh.
pub async fn before(input: &Input) -> HashMap<String, String> {
    let mut stale = HashMap::new();
    if input.partial {
        // Other shards may have started already.
        return stale;
    }
    for room in input.terms.keys() {
        let token = host_token(&input.auth, room);
        if let Ok(v) = fetch::get(&input.http, room, &token).await
            && let Some(why) = activity(&v)
        {
            stale.insert(room.clone(), why);
        }
    }
    stale
}

/// Tallies each room's truth from the viewers' facts and reads the hub's funnel once it
/// settled (module `fetch`).
pub async fn run(
    input: &Input,
    stale: HashMap<String, String>,
    viewers: &[ViewerFacts],
    windows: &HashMap<(String, String), Window>,
) -> FunnelReport {
    let mut by_room: BTreeMap<&str, Vec<ViewerFacts>> = BTreeMap::new();
    for v in viewers {
        by_room.entry(&v.room).or_default().push(v.clone());
    }
    tokio::time::sleep(fetch::SETTLE).await;
    let deadline = tokio::time::Instant::now() + fetch::LIMIT;
    let mut report = FunnelReport {
        partial: input.partial,
        ..FunnelReport::default()
    };
    for (room, terms) in &input.terms {
        let facts = by_room.get(room.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        let room_windows: BTreeMap<String, Window> = windows
            .iter()
            .filter(|((r, _), _)| r == room)
            .map(|((_, d), w)| (d.clone(), *w))
            .collect();
        let truth_for = |ms| truth::tally(facts, terms, &room_windows, ms);
        let check = if let Some(why) = stale.get(room) {
            RoomCheck {
                truth: truth_for(fetch::DEFAULT_ENGAGED_MS),
                hub: None,
                error: Some(why.clone()),
            }
        } else {
            let token = host_token(&input.auth, room);
            let (truth, reading) =
                fetch::settle(&input.http, room, &token, deadline, truth_for).await;
            match reading {
                Ok(v) => RoomCheck {
                    truth,
                    hub: Some(v),
                    error: None,
                },
                Err(e) => RoomCheck {
                    truth,
                    hub: None,
                    error: Some(e.reason),
                },
            }
        };
        report.rooms.insert(room.clone(), check);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_without_a_reply_is_a_verdict_line_with_the_reason() {
        let mut r = FunnelReport::default();
        r.rooms.insert(
            "smoke-0".into(),
            RoomCheck {
                error: Some("the hub has no funnel endpoint: GET … answered 404".into()),
                ..RoomCheck::default()
            },
        );
        assert_eq!(
            r.verdict(),
            ["room smoke-0: the hub has no funnel endpoint: GET … answered 404"]
        );
    }

    #[test]
    fn merging_shards_adds_truths_and_keeps_the_latest_reading() {
        let reading =
            |at: u64| serde_json::json!({"generated_at": at, "engaged_ms": 30000, "total": {}});
        let shard = |viewers: u64, at: u64| {
            let mut r = FunnelReport {
                partial: true,
                ..FunnelReport::default()
            };
            let mut c = RoomCheck {
                hub: Some(reading(at)),
                ..RoomCheck::default()
            };
            c.truth.total.viewers = viewers;
            r.rooms.insert("r0".into(), c);
            r
        };
        let mut a = shard(10, 5);
        a.absorb(&shard(7, 9));
        a.absorb(&shard(1, 2));
        assert_eq!(a.rooms["r0"].truth.total.viewers, 18);
        assert_eq!(a.rooms["r0"].hub.as_ref().unwrap()["generated_at"], 9);
    }

    #[test]
    fn terms_come_from_the_hosts_deal_starts() {
        let e = Event::new(
            4000,
            "smoke-0",
            "h-smoke-0",
            Action::Host {
                command: serde_json::from_value(serde_json::json!({"type": "deal_start",
                    "deal": {"id": "d1", "product_id": "p1", "price_cents": 999, "stock": 5,
                    "per_user_limit": 1, "duration_ms": 60000, "commission_bps": 1000}}))
                .expect("a deal_start"),
            },
        );
        let t = terms_of(&[e]);
        assert_eq!(
            t["smoke-0"]["d1"],
            Terms {
                host: "h-smoke-0".into(),
                commission_bps: 1000,
                affiliate_bps: 0
            }
        );
    }
}
