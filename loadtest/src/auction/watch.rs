//! One client's auctions: each as the client sees it (welcome's `auctions`, the `auction`
//! events, the latest `auction_bid`), and, when the plan made the client a bidder, a sniper or a
//! late bidder, the bids it decides from what it sees. What the hub answers goes into the run's
//! [`Log`].

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use livehub::protocol::{AuctionStatus, AuctionView, Bidder};
use serde::Deserialize;

use super::truth::{Accept, Log, Order, Tick};
use super::unix_us;

/// How a viewer bids (from its plan action).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Way {
    /// Bids whenever outbid, `think_ms` after it sees so: the least amount accepted, allowing
    /// `raise` of what its budget leaves above it, until the least amount passes the budget.
    Bidder {
        budget_cents: u64,
        raise: f64,
        think_ms: u64,
    },
    /// Bids once, `lead_ms` before the end it sees when the last `window_ms` before the end
    /// opens, up to its budget.
    Snipe {
        budget_cents: u64,
        lead_ms: u64,
        window_ms: u64,
    },
    /// Bids once, as soon as it sees the close.
    Late,
}

/// The client's way of bidding on one auction, and where it stands.
#[derive(Debug)]
struct Role {
    auction: String,
    way: Way,
    /// When its next step is due: a bid, or a sniper's window opening.
    due: Option<Instant>,
    /// One of its bids awaits its answer.
    in_flight: bool,
    /// It bids no more.
    done: bool,
    /// The price its latest accepted bid left, and whether it led then.
    accepted: Option<(u64, bool)>,
    /// The least amount the hub last said it would accept (`too_low`).
    told_min: u64,
    /// A sniper's window opened: the time of its bid is fixed.
    locked: bool,
    /// When a sniper's window opens (Unix ms), from the end it saw last.
    opens_ms: u64,
}

/// A bid awaiting its answer.
#[derive(Debug)]
struct Pending {
    auction: String,
    amount_cents: u64,
    max_cents: Option<u64>,
    sent: Instant,
    sent_unix_us: u64,
    /// The client had seen the auction's close when it sent the bid.
    after_close: bool,
}

/// A bid to send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidNow {
    pub request_id: String,
    pub auction: String,
    pub amount_cents: u64,
    pub max_cents: Option<u64>,
}

/// An `auction_bid` frame.
#[derive(Deserialize)]
struct TickFrame {
    auction: String,
    current_cents: u64,
    leader: Option<Bidder>,
    bids: u32,
    ends_at: u64,
}

/// An `auction` event.
#[derive(Deserialize)]
struct EventFrame {
    auction: AuctionView,
}

/// One client's auctions and bids.
#[derive(Debug)]
pub struct Watch {
    /// Who the client is (its user id is its display name) and where: its room and hub node.
    room: String,
    user: String,
    node: usize,
    views: HashMap<String, AuctionView>,
    /// The auctions whose close the client got.
    closed: HashSet<String>,
    role: Option<Role>,
    pending: HashMap<String, Pending>,
    numbered: u64,
}

/// The tokio instant of Unix ms `at` (now if it passed).
fn instant_at(at_ms: u64) -> Instant {
    let now_ms = unix_us() / 1000;
    Instant::now() + Duration::from_millis(at_ms.saturating_sub(now_ms))
}

impl Watch {
    /// The auctions of `user`, a client of `room` on hub node `node`.
    pub fn new(room: &str, user: &str, node: usize) -> Self {
        Watch {
            room: room.to_owned(),
            user: user.to_owned(),
            node,
            views: HashMap::new(),
            closed: HashSet::new(),
            role: None,
            pending: HashMap::new(),
            numbered: 0,
        }
    }

    /// When the client's next auction step is due.
    pub fn due(&self) -> Option<Instant> {
        self.role.as_ref().and_then(|r| r.due)
    }

    /// The plan makes the client bid on `auction` its `way`.
    pub fn arm(&mut self, auction: &str, way: Way) {
        self.role = Some(Role {
            auction: auction.to_owned(),
            way,
            due: None,
            in_flight: false,
            done: false,
            accepted: None,
            told_min: 0,
            locked: false,
            opens_ms: 0,
        });
        self.consider();
    }

    /// A welcome's live auctions.
    pub fn on_welcome(&mut self, auctions: Vec<AuctionView>) {
        for view in auctions {
            self.keep(view);
        }
        self.consider();
    }

    /// An `auction` event (`frame` as received): a start, or a close.
    pub fn on_event(&mut self, frame: &str, log: &Log) {
        let Ok(EventFrame { auction: view }) = serde_json::from_str(frame) else {
            return;
        };
        let at_us = unix_us();
        if view.status == AuctionStatus::Live {
            log.started(&self.room, &view);
        } else if self.closed.insert(view.id.to_string()) {
            log.closed(&self.room, self.node, &view, at_us);
        }
        self.keep(view);
        self.consider();
    }

    /// An `auction_bid` frame: the latest bid, kept when newer than what the client has.
    pub fn on_tick(&mut self, frame: &str, log: &Log) {
        let Ok(t) = serde_json::from_str::<TickFrame>(frame) else {
            return;
        };
        let tick = Tick {
            current_cents: t.current_cents,
            leader: t.leader.map(|b| b.name),
            ends_at: t.ends_at,
        };
        log.tick(&self.room, &t.auction, t.bids, &tick);
        if let Some(v) = self.views.get_mut(&t.auction)
            && v.status == AuctionStatus::Live
            && t.bids > v.bids
        {
            v.current_cents = Some(tick.current_cents);
            v.leader = tick.leader.map(|name| Bidder { name });
            v.bids = t.bids;
            v.ends_at = tick.ends_at;
        }
        self.consider();
    }

    /// Keeps `view`, unless it is a live state older than the one kept (bids may overtake the
    /// start on the way).
    fn keep(&mut self, view: AuctionView) {
        let id = view.id.to_string();
        if let Some(k) = self.views.get(&id)
            && k.started_at == view.started_at
            && view.status == AuctionStatus::Live
            && (k.status != AuctionStatus::Live || k.bids > view.bids)
        {
            return;
        }
        self.views.insert(id, view);
    }

    /// Schedules the role's next step from what the client sees now.
    fn consider(&mut self) {
        let me = self.user.as_str();
        let Some(role) = self.role.as_mut() else {
            return;
        };
        let Some(view) = self.views.get(&role.auction) else {
            return;
        };
        if role.done || role.in_flight {
            return;
        }
        let now = Instant::now();
        if view.status != AuctionStatus::Live {
            if role.way == Way::Late {
                role.due.get_or_insert(now);
            } else {
                role.done = true;
                role.due = None;
            }
            return;
        }
        match role.way {
            Way::Late => {}
            Way::Bidder { think_ms, .. } => {
                let leads = view.leader.as_ref().is_some_and(|l| l.name == me);
                let outbid = match role.accepted {
                    None => true,
                    Some((price, leading)) => !leading || view.current_cents > Some(price),
                };
                if role.due.is_none() && !leads && outbid {
                    role.due = Some(now + Duration::from_millis(think_ms));
                }
            }
            Way::Snipe { window_ms, .. } if !role.locked => {
                let opens_ms = view.ends_at.saturating_sub(window_ms);
                if role.due.is_none() || opens_ms != role.opens_ms {
                    role.opens_ms = opens_ms;
                    role.due = Some(instant_at(opens_ms));
                }
            }
            Way::Snipe { .. } => {}
        }
    }

    /// The bid due now, if the role still wants it (a sniper's window opening fixes the time
    /// of its bid instead).
    pub fn take_due(&mut self, log: &Log) -> Option<BidNow> {
        let me = self.user.as_str();
        let role = self.role.as_mut()?;
        if role.due.is_none_or(|d| d > Instant::now()) {
            return None;
        }
        role.due = None;
        let view = self.views.get(&role.auction)?;
        let closed = view.status != AuctionStatus::Live;
        if let Way::Snipe { lead_ms, .. } = role.way
            && !role.locked
        {
            role.locked = true;
            role.due = Some(instant_at(view.ends_at.saturating_sub(lead_ms)));
            return None;
        }
        let leads = view.leader.as_ref().is_some_and(|l| l.name == me);
        if role.done || (closed && role.way != Way::Late) || leads {
            return None;
        }
        let next = view
            .current_cents
            .map_or(view.start_cents, |c| c.saturating_add(view.increment_cents));
        let min = next.max(role.told_min);
        let (amount_cents, max_cents) = match role.way {
            Way::Late => {
                role.done = true;
                (next, None)
            }
            Way::Bidder {
                budget_cents,
                raise,
                ..
            } => {
                if min > budget_cents {
                    role.done = true;
                    log.outcome("priced_out (not sent)");
                    return None;
                }
                let left = budget_cents - min;
                let mut max = min + (left as f64 * raise).round() as u64;
                if budget_cents - max < view.increment_cents {
                    max = budget_cents;
                }
                (min, Some(max))
            }
            Way::Snipe { budget_cents, .. } => {
                role.done = true;
                if min > budget_cents {
                    log.outcome("priced_out (not sent)");
                    return None;
                }
                (min, Some(budget_cents))
            }
        };
        role.in_flight = true;
        self.numbered += 1;
        Some(BidNow {
            request_id: format!("b{}", self.numbered),
            auction: role.auction.clone(),
            amount_cents,
            max_cents,
        })
    }

    /// `bid` was sent at `at_us` (µs since the run's start).
    pub fn sent(&mut self, bid: &BidNow, log: &Log, at_us: u64) {
        self.pending.insert(
            bid.request_id.clone(),
            Pending {
                auction: bid.auction.clone(),
                amount_cents: bid.amount_cents,
                max_cents: bid.max_cents,
                sent: Instant::now(),
                sent_unix_us: unix_us(),
                after_close: self.closed.contains(&bid.auction),
            },
        );
        log.sent(at_us);
    }

    /// `bid` could not be sent (no connection): the role stops.
    pub fn unsent(&mut self, bid: &BidNow) {
        if let Some(r) = self.role.as_mut().filter(|r| r.auction == bid.auction) {
            r.in_flight = false;
            r.done = true;
        }
    }

    /// An answer (`bid_accepted`, `rejected`, `error`) to request `rid`: false when it is not
    /// one of this client's bids.
    pub fn on_answer(&mut self, kind: &str, rid: &str, v: &serde_json::Value, log: &Log) -> bool {
        let Some(p) = self.pending.remove(rid) else {
            return false;
        };
        log.latency(p.sent.elapsed().as_micros() as u64);
        let number = |k: &str| v[k].as_u64();
        let reason = match kind {
            "bid_accepted" => None,
            "rejected" => Some(v["reason"].as_str().unwrap_or("?").to_owned()),
            _ => Some(format!("error {}", v["code"].as_str().unwrap_or("?"))),
        };
        let (Some(current_cents), Some(ends_at)) = (number("current_cents"), number("ends_at"))
        else {
            log.outcome(
                reason
                    .as_deref()
                    .unwrap_or("bid_accepted without its figures"),
            );
            self.refused(&p.auction, reason.as_deref(), number("min_cents"));
            return true;
        };
        let leading = v["leading"].as_bool().unwrap_or(false);
        log.outcome(if leading {
            "accepted, leading"
        } else {
            "accepted, outbid by a proxy"
        });
        log.accepted(Accept {
            room: self.room.clone(),
            auction: p.auction.clone(),
            user: self.user.clone(),
            request_id: rid.to_owned(),
            amount_cents: number("amount_cents").unwrap_or(p.amount_cents),
            max_cents: p.max_cents.unwrap_or(p.amount_cents),
            current_cents,
            leading,
            ends_at,
            sent_unix_us: p.sent_unix_us,
            answered_unix_us: unix_us(),
            after_close: p.after_close,
            place: number("bids").and_then(|b| u32::try_from(b).ok()),
        });
        if let Some(r) = self.role.as_mut().filter(|r| r.auction == p.auction) {
            r.in_flight = false;
            r.accepted = Some((current_cents, leading));
            if !matches!(r.way, Way::Bidder { .. }) {
                r.done = true;
            }
        }
        self.consider();
        true
    }

    /// A bid of the role's auction refused for `reason` (None: an accept the client could not
    /// read): a bidder tries again where it can, anyone else stops.
    fn refused(&mut self, auction: &str, reason: Option<&str>, min_cents: Option<u64>) {
        let Some(r) = self.role.as_mut().filter(|r| r.auction == auction) else {
            return;
        };
        r.in_flight = false;
        let Way::Bidder { think_ms, .. } = r.way else {
            r.done = true;
            return;
        };
        let again = match reason {
            Some("too_low") => {
                r.told_min = r.told_min.max(min_cents.unwrap_or(0));
                Some(think_ms)
            }
            Some("rate_limited") => Some(1_000),
            Some("unavailable") => Some(think_ms),
            _ => None,
        };
        match again {
            Some(ms) => r.due = Some(Instant::now() + Duration::from_millis(ms)),
            None => r.done = true,
        }
        self.consider();
    }

    /// An `order` frame made by an auction's close.
    pub fn on_order(&self, v: &serde_json::Value, log: &Log) {
        log.order(Order {
            room: self.room.clone(),
            auction: v["auction"].as_str().unwrap_or_default().to_owned(),
            user: self.user.clone(),
            price_cents: v["price_cents"].as_u64().unwrap_or(0),
            qty: v["qty"].as_u64().unwrap_or(0),
            currency: v["currency"].as_str().unwrap_or_default().to_owned(),
        });
    }

    /// The run is over: the client's final view of its room's auctions (`connected`: it still
    /// had its connection), and its bids never answered.
    pub fn finish(&mut self, log: &Log, connected: bool) {
        for _ in self.pending.drain() {
            log.outcome("unanswered");
        }
        let views = std::mem::take(&mut self.views);
        log.final_views(&self.room, &self.user, connected, views);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livehub::protocol::Id;

    fn view(current: Option<u64>, leader: Option<&str>, bids: u32) -> AuctionView {
        AuctionView {
            id: Id::new("a1").expect("id"),
            product_id: Id::new("p1").expect("id"),
            title: "t".into(),
            image_url: None,
            currency: "USD".into(),
            start_cents: 1_000,
            increment_cents: 100,
            current_cents: current,
            leader: leader.map(|n| Bidder { name: n.into() }),
            bids,
            ends_at: unix_us() / 1000 + 60_000,
            extend_ms: 10_000,
            sudden_death: false,
            status: AuctionStatus::Live,
            winner: None,
            started_at: 1,
        }
    }

    fn watch() -> Watch {
        Watch::new("r0", "v1", 0)
    }

    fn event(v: &AuctionView) -> String {
        serde_json::json!({"type": "auction", "seq": 1, "auction": v}).to_string()
    }

    #[test]
    fn a_bidder_bids_the_least_amount_with_its_share_of_the_budget_and_again_when_outbid() {
        let log = Log::default();
        let mut w = watch();
        let bidder = Way::Bidder {
            budget_cents: 5_000,
            raise: 0.5,
            think_ms: 0,
        };
        w.arm("a1", bidder);
        assert!(w.due().is_none(), "nothing to bid on yet");
        w.on_event(&event(&view(None, None, 0)), &log);
        let bid = w.take_due(&log).expect("a first bid");
        assert_eq!((bid.amount_cents, bid.max_cents), (1_000, Some(3_000)));
        w.sent(&bid, &log, 0);
        assert!(w.take_due(&log).is_none(), "one bid in flight");
        let ok = serde_json::json!({"request_id": bid.request_id, "auction": "a1",
            "amount_cents": 1_000, "current_cents": 1_000, "leading": true, "ends_at": 9});
        assert!(w.on_answer("bid_accepted", &bid.request_id, &ok, &log));
        assert!(w.due().is_none(), "it leads");
        // Someone else leads at 3,100: outbid, it bids 3,200 allowing half of the 1,800 left.
        w.on_tick(
            r#"{"type":"auction_bid","auction":"a1","current_cents":3100,"leader":{"name":"v2"},"bids":2,"ends_at":9}"#, &log);
        let bid = w.take_due(&log).expect("a second bid");
        assert_eq!((bid.amount_cents, bid.max_cents), (3_200, Some(4_100)));
        w.sent(&bid, &log, 0);
        let low = serde_json::json!({"request_id": bid.request_id, "reason": "too_low", "min_cents": 4_900});
        assert!(w.on_answer("rejected", &bid.request_id, &low, &log));
        let bid = w.take_due(&log).expect("a bid at the minimum told");
        assert_eq!(
            (bid.amount_cents, bid.max_cents),
            (4_900, Some(5_000)),
            "less than an increment left: the whole budget"
        );
    }

    #[test]
    fn a_late_bidder_bids_once_it_sees_the_close_and_the_bid_is_marked_so() {
        let log = Log::default();
        let mut w = watch();
        w.arm("a1", Way::Late);
        w.on_event(&event(&view(Some(2_000), Some("v2"), 3)), &log);
        assert!(w.due().is_none());
        let mut closed = view(Some(2_000), Some("v2"), 3);
        closed.status = AuctionStatus::Sold;
        w.on_event(&event(&closed), &log);
        let bid = w.take_due(&log).expect("a late bid");
        assert_eq!((bid.amount_cents, bid.max_cents), (2_100, None));
        w.sent(&bid, &log, 0);
        assert!(w.pending[&bid.request_id].after_close);
        assert!(w.take_due(&log).is_none(), "once");
    }
}
