//! The rules of a live auction (issue 24), as a pure state machine: no I/O, the clock passed in,
//! so every backend's implementation (memory, the Redis script) is checked against this one.
//!
//! - The first bid must be at least `start_cents`, every later one at least
//!   `current_cents + increment_cents`; a bid carries the most its bidder allows (`max_cents`,
//!   at least the amount): a proxy bid.
//! - The price follows the maxima: with one bidder, `start_cents`; with several, the second
//!   highest maximum plus one increment, capped at the highest. On equal maxima the bidder who
//!   reached it first leads. A leader may raise its own maximum, never lower it.
//! - A bid accepted when less than `extend_ms` remains moves the end to acceptance +
//!   `extend_ms` (anti-sniping), unless the auction is sudden death. A bid at or after the end
//!   does not exist.
//! - At the end the auction closes once: sold to the leader at the price, or unsold. A host may
//!   end an auction that has no bid yet; one with a bid runs to its end.

use serde::{Deserialize, Serialize};

use crate::commerce::{MAX_BPS, MAX_PRICE_CENTS};
use crate::id::Id;

/// Shortest and longest `duration_ms`.
pub const MIN_DURATION_MS: u64 = 5_000;
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Longest `extend_ms`, and its default.
pub const MAX_EXTEND_MS: u64 = 60_000;
pub const DEFAULT_EXTEND_MS: u64 = 10_000;

/// What an auction's bids are held to, fixed when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub start_cents: u64,
    pub increment_cents: u64,
    pub extend_ms: u64,
    pub sudden_death: bool,
}

/// Why rules or timings cannot start an auction (the field named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadAuction(pub String);

impl Rules {
    /// Checks the rules and a `duration_ms` against their bounds.
    pub fn check(&self, duration_ms: u64) -> Result<(), BadAuction> {
        let bad = |m: String| Err(BadAuction(m));
        if !(1..=MAX_PRICE_CENTS).contains(&self.start_cents) {
            return bad(format!("start_cents must be 1 to {MAX_PRICE_CENTS}"));
        }
        if !(1..=MAX_PRICE_CENTS).contains(&self.increment_cents) {
            return bad(format!("increment_cents must be 1 to {MAX_PRICE_CENTS}"));
        }
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&duration_ms) {
            return bad(format!(
                "duration_ms must be {MIN_DURATION_MS} to {MAX_DURATION_MS}"
            ));
        }
        if self.extend_ms > MAX_EXTEND_MS {
            return bad(format!("extend_ms must be 0 to {MAX_EXTEND_MS}"));
        }
        Ok(())
    }
}

/// A host's `auction_start` body: what is sold, by which rules, for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuctionSpec {
    pub id: Id,
    pub product_id: Id,
    /// The product's title when absent (the catalog's, as for deals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default = "usd")]
    pub currency: String,
    pub start_cents: u64,
    pub increment_cents: u64,
    pub duration_ms: u64,
    #[serde(default = "default_extend")]
    pub extend_ms: u64,
    #[serde(default)]
    pub sudden_death: bool,
    /// Basis points of the price paid to the host creator (0 to 10,000).
    #[serde(default)]
    pub commission_bps: u32,
    /// Basis points paid to the winner's affiliate (0 to 10,000).
    #[serde(default)]
    pub affiliate_bps: u32,
    /// The host who started it, paid `commission_bps` of the winner's order: the hub sets it
    /// from the host's token, never from the wire.
    #[serde(skip)]
    pub creator: Option<Id>,
}

fn usd() -> String {
    "USD".to_owned()
}

fn default_extend() -> u64 {
    DEFAULT_EXTEND_MS
}

impl AuctionSpec {
    /// The rules its bids are held to.
    pub fn rules(&self) -> Rules {
        Rules {
            start_cents: self.start_cents,
            increment_cents: self.increment_cents,
            extend_ms: self.extend_ms,
            sudden_death: self.sudden_death,
        }
    }

    /// Rules, timings and rates within their bounds (the field named).
    pub fn check(&self) -> Result<(), BadAuction> {
        self.rules().check(self.duration_ms)?;
        for (field, bps) in [
            ("commission_bps", self.commission_bps),
            ("affiliate_bps", self.affiliate_bps),
        ] {
            if bps > MAX_BPS {
                return Err(BadAuction(format!("{field} must be 0 to {MAX_BPS}")));
            }
        }
        if self.commission_bps + self.affiliate_bps > MAX_BPS {
            return Err(BadAuction(format!(
                "commission_bps + affiliate_bps must be at most {MAX_BPS} (the whole price)"
            )));
        }
        Ok(())
    }
}

/// Where an auction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Live,
    Sold,
    Unsold,
}

/// The highest maximum and who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    pub user: String,
    pub max_cents: u64,
}

/// One auction: its rules and where it stands, enough to decide every bid and the close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    pub rules: Rules,
    pub state: AuctionState,
}

/// Where an auction stands (everything of a [`Book`] but its rules): what a store reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionState {
    pub ends_at: u64,
    pub status: Status,
    /// Bids accepted.
    pub bids: u32,
    /// The price now: None before the first bid.
    pub current_cents: Option<u64>,
    pub leader: Option<Leader>,
    /// The second highest maximum over the other bidders (None with one bidder or none).
    pub second_max_cents: Option<u64>,
}

/// A bid the rules accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub current_cents: u64,
    /// The bidder holds the highest maximum.
    pub leading: bool,
    pub ends_at: u64,
    /// The bid moved the end (anti-sniping).
    pub extended: bool,
    /// Bids accepted with this one: its place in the auction's order of bids.
    pub bids: u32,
}

/// A bid the rules refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Below the least amount accepted now (`min_cents`).
    TooLow { min_cents: u64 },
    /// At or after the end, or the auction was closed.
    Ended,
    /// Amounts out of range, or a maximum below the amount.
    BadRequest(String),
}

/// How an auction closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    Sold { winner: String, price_cents: u64 },
    Unsold,
}

/// Why a host could not end an auction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndRefused {
    /// It has a bid: it runs to its end.
    HasBids,
    /// It is already closed.
    Closed,
}

/// A bid's amounts within bounds (1 to the price cap, the maximum at least the amount): the
/// maximum it allows (`max_cents`, else the amount).
pub fn check_amounts(amount_cents: u64, max_cents: Option<u64>) -> Result<u64, Refused> {
    let max = max_cents.unwrap_or(amount_cents);
    if !(1..=MAX_PRICE_CENTS).contains(&amount_cents) || max > MAX_PRICE_CENTS {
        return Err(Refused::BadRequest(format!(
            "amount_cents and max_cents must be 1 to {MAX_PRICE_CENTS}"
        )));
    }
    if max < amount_cents {
        return Err(Refused::BadRequest(
            "max_cents must be at least amount_cents".into(),
        ));
    }
    Ok(max)
}

impl Book {
    /// A live auction started at `now` for `duration_ms` (checked with [`Rules::check`]).
    pub fn start(rules: Rules, now: u64, duration_ms: u64) -> Book {
        Book {
            rules,
            state: AuctionState {
                ends_at: now.saturating_add(duration_ms),
                status: Status::Live,
                bids: 0,
                current_cents: None,
                leader: None,
                second_max_cents: None,
            },
        }
    }

    /// Whether a bid at `now` would be too late (or the auction is closed).
    pub fn over(&self, now: u64) -> bool {
        self.state.status != Status::Live || now >= self.state.ends_at
    }

    /// The least amount `user` may bid now.
    pub fn min_cents(&self, user: &str) -> u64 {
        let next = match self.state.current_cents {
            None => self.rules.start_cents,
            Some(c) => c.saturating_add(self.rules.increment_cents),
        };
        match &self.state.leader {
            Some(l) if l.user == user => next.max(l.max_cents),
            _ => next,
        }
    }

    /// The price the maxima give: `start_cents` with one bidder, else the second maximum plus
    /// one increment, capped at the highest.
    fn price(&self) -> Option<u64> {
        let top = self.state.leader.as_ref()?.max_cents;
        Some(match self.state.second_max_cents {
            None => self.rules.start_cents,
            Some(s) => s.saturating_add(self.rules.increment_cents).min(top),
        })
    }

    /// Decides `user`'s bid of `amount_cents` allowing up to `max_cents` (None: the amount)
    /// at `now`, and applies it when accepted.
    pub fn bid(
        &mut self,
        user: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<Accepted, Refused> {
        let max = check_amounts(amount_cents, max_cents)?;
        if self.over(now) {
            return Err(Refused::Ended);
        }
        let min_cents = self.min_cents(user);
        if amount_cents < min_cents || max < min_cents {
            return Err(Refused::TooLow { min_cents });
        }
        match self.state.leader.take() {
            None => {
                self.state.leader = Some(Leader {
                    user: user.to_owned(),
                    max_cents: max,
                });
            }
            Some(l) if l.user == user => {
                self.state.leader = Some(Leader {
                    user: l.user,
                    max_cents: max,
                });
            }
            Some(l) if max > l.max_cents => {
                // Outbids the leader, whose maximum is now the second.
                self.state.second_max_cents = Some(l.max_cents);
                self.state.leader = Some(Leader {
                    user: user.to_owned(),
                    max_cents: max,
                });
            }
            Some(l) => {
                // The leader's proxy answers: its maximum is as high or higher (and earlier).
                // This bid's maximum is above every other one's (it beat the price, which is
                // above them), so it is the second.
                self.state.second_max_cents = Some(max);
                self.state.leader = Some(l);
            }
        }
        self.state.bids = self.state.bids.saturating_add(1);
        self.state.current_cents = self.price();
        let extended = !self.rules.sudden_death
            && self.state.ends_at.saturating_sub(now) < self.rules.extend_ms;
        if extended {
            self.state.ends_at = now.saturating_add(self.rules.extend_ms);
        }
        Ok(Accepted {
            current_cents: self.state.current_cents.unwrap_or(self.rules.start_cents),
            leading: self.state.leader.as_ref().is_some_and(|l| l.user == user),
            ends_at: self.state.ends_at,
            extended,
            bids: self.state.bids,
        })
    }

    /// Closes the auction when `now` has reached its end: once (None before the end and
    /// after the close).
    pub fn close(&mut self, now: u64) -> Option<Closed> {
        if self.state.status != Status::Live || now < self.state.ends_at {
            return None;
        }
        Some(match (&self.state.leader, self.state.current_cents) {
            (Some(l), Some(price)) => {
                self.state.status = Status::Sold;
                Closed::Sold {
                    winner: l.user.clone(),
                    price_cents: price,
                }
            }
            _ => {
                self.state.status = Status::Unsold;
                Closed::Unsold
            }
        })
    }

    /// A host ends the auction at `now`: only while it has no bid (it closes `unsold`, its end
    /// moved to `now`).
    pub fn end_by_host(&mut self, now: u64) -> Result<(), EndRefused> {
        if self.state.status != Status::Live {
            return Err(EndRefused::Closed);
        }
        if self.state.bids > 0 {
            return Err(EndRefused::HasBids);
        }
        self.state.status = Status::Unsold;
        self.state.ends_at = self.state.ends_at.min(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RULES: Rules = Rules {
        start_cents: 1_000,
        increment_cents: 100,
        extend_ms: 10_000,
        sudden_death: false,
    };

    fn book() -> Book {
        Book::start(RULES, 0, 60_000)
    }

    #[test]
    fn the_first_bid_sets_the_start_price_whatever_its_maximum() {
        let mut b = book();
        assert_eq!(
            b.bid("a", 999, None, 1),
            Err(Refused::TooLow { min_cents: 1_000 })
        );
        let ok = b.bid("a", 1_000, Some(5_000), 1).expect("accepted");
        assert_eq!(
            (ok.current_cents, ok.leading, ok.extended),
            (1_000, true, false)
        );
        assert_eq!(b.min_cents("b"), 1_100);
        assert_eq!(
            b.min_cents("a"),
            5_000,
            "the leader may only raise its maximum"
        );
    }

    #[test]
    fn a_lower_maximum_is_answered_by_the_leaders_proxy() {
        let mut b = book();
        b.bid("a", 1_000, Some(5_000), 1).expect("a");
        let ok = b.bid("b", 1_100, Some(2_000), 2).expect("b");
        assert_eq!((ok.current_cents, ok.leading), (2_100, false));
        assert_eq!(
            b.bid("b", 2_100, None, 3),
            Err(Refused::TooLow { min_cents: 2_200 })
        );
        let ok = b.bid("b", 4_000, Some(6_000), 4).expect("b again");
        assert_eq!((ok.current_cents, ok.leading), (5_100, true));
        assert_eq!(b.state.leader.as_ref().map(|l| l.user.as_str()), Some("b"));
    }

    #[test]
    fn equal_maxima_are_led_by_the_first_and_the_price_is_capped_at_the_top() {
        let mut b = book();
        b.bid("a", 1_000, Some(3_000), 1).expect("a");
        let ok = b.bid("b", 3_000, None, 2).expect("b ties");
        assert_eq!((ok.current_cents, ok.leading), (3_000, false));
        assert_eq!(b.state.leader.as_ref().map(|l| l.user.as_str()), Some("a"));
        // The leader raises its own maximum: the price follows the rule again.
        let ok = b.bid("a", 3_100, Some(10_000), 3).expect("a raises");
        assert_eq!((ok.current_cents, ok.leading), (3_100, true));
        assert_eq!(
            b.bid("a", 3_200, Some(9_000), 4),
            Err(Refused::TooLow { min_cents: 10_000 }),
            "a leader's new maximum below its own"
        );
    }

    #[test]
    fn a_late_bid_extends_the_end_unless_sudden_death() {
        let mut b = book();
        let ok = b.bid("a", 1_000, None, 49_999).expect("a");
        assert!(!ok.extended, "10,001 ms left");
        let ok = b.bid("b", 1_100, None, 55_000).expect("b");
        assert!(ok.extended);
        assert_eq!(ok.ends_at, 65_000);
        assert_eq!(b.bid("a", 1_200, None, 65_000), Err(Refused::Ended));
        let mut sd = Book::start(
            Rules {
                sudden_death: true,
                ..RULES
            },
            0,
            60_000,
        );
        let ok = sd.bid("a", 1_000, None, 59_999).expect("a");
        assert_eq!((ok.extended, ok.ends_at), (false, 60_000));
        assert_eq!(sd.bid("b", 1_100, None, 60_000), Err(Refused::Ended));
    }

    #[test]
    fn it_closes_once_sold_to_the_leader_or_unsold() {
        let mut b = book();
        b.bid("a", 1_000, Some(2_000), 1).expect("a");
        b.bid("b", 1_500, None, 2).expect("b");
        assert_eq!(b.close(59_999), None, "not yet");
        assert_eq!(
            b.close(60_000),
            Some(Closed::Sold {
                winner: "a".into(),
                price_cents: 1_600
            })
        );
        assert_eq!(b.close(60_001), None, "once");
        assert_eq!(b.bid("c", 5_000, None, 60_001), Err(Refused::Ended));
        let mut empty = book();
        assert_eq!(empty.close(60_000), Some(Closed::Unsold));
    }

    #[test]
    fn a_host_ends_only_an_auction_without_bids() {
        let mut b = book();
        assert_eq!(b.end_by_host(5), Ok(()));
        assert_eq!((b.state.status, b.state.ends_at), (Status::Unsold, 5));
        assert_eq!(b.end_by_host(6), Err(EndRefused::Closed));
        let mut b = book();
        b.bid("a", 1_000, None, 1).expect("a");
        assert_eq!(b.end_by_host(2), Err(EndRefused::HasBids));
    }

    #[test]
    fn bad_amounts_and_rules_are_refused_with_the_field() {
        let mut b = book();
        assert!(matches!(
            b.bid("a", 0, None, 1),
            Err(Refused::BadRequest(_))
        ));
        assert!(matches!(
            b.bid("a", 2_000, Some(1_000), 1),
            Err(Refused::BadRequest(_))
        ));
        assert!(matches!(
            b.bid("a", MAX_PRICE_CENTS + 1, None, 1),
            Err(Refused::BadRequest(_))
        ));
        let bad = |r: Rules, d: u64| r.check(d).unwrap_err().0;
        assert!(
            bad(
                Rules {
                    start_cents: 0,
                    ..RULES
                },
                60_000
            )
            .contains("start_cents")
        );
        assert!(
            bad(
                Rules {
                    increment_cents: 0,
                    ..RULES
                },
                60_000
            )
            .contains("increment_cents")
        );
        assert!(bad(RULES, 4_999).contains("duration_ms"));
        assert!(bad(RULES, 3_600_001).contains("duration_ms"));
        assert!(
            bad(
                Rules {
                    extend_ms: 60_001,
                    ..RULES
                },
                60_000
            )
            .contains("extend_ms")
        );
        assert_eq!(RULES.check(5_000), Ok(()));
    }

    #[test]
    fn a_host_spec_reads_with_its_defaults_and_checks_its_rates() {
        let spec: AuctionSpec = serde_json::from_str(
            r#"{"id":"a1","product_id":"mug","start_cents":1000,"increment_cents":100,"duration_ms":60000}"#,
        )
        .expect("a spec");
        assert_eq!(
            (spec.extend_ms, spec.sudden_death, spec.currency.as_str()),
            (DEFAULT_EXTEND_MS, false, "USD")
        );
        assert_eq!(spec.rules().start_cents, 1_000);
        assert_eq!(spec.check(), Ok(()));
        let greedy = AuctionSpec {
            commission_bps: MAX_BPS + 1,
            ..spec.clone()
        };
        assert!(greedy.check().unwrap_err().0.contains("commission_bps"));
        let unknown = serde_json::from_str::<AuctionSpec>(
            r#"{"id":"a1","product_id":"mug","start_cents":1,"increment_cents":1,"duration_ms":5000,"reserve_cents":9}"#,
        );
        assert!(unknown.is_err(), "an unknown field is refused, not ignored");
    }

    /// The price and the leader straight from the accepted bids: each bidder's highest
    /// maximum and when it first reached it; the leader is the highest (earliest on a tie).
    fn from_accepted(accepted: &[(String, u64)], rules: Rules) -> Option<(String, u64)> {
        let mut best: Vec<(String, u64, usize)> = Vec::new();
        for (at, (user, max)) in accepted.iter().enumerate() {
            match best.iter_mut().find(|(u, _, _)| u == user) {
                Some(b) if *max > b.1 => {
                    b.1 = *max;
                    b.2 = at;
                }
                Some(_) => {}
                None => best.push((user.clone(), *max, at)),
            }
        }
        best.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        let (leader, top, _) = best.first()?.clone();
        let price = match best.get(1) {
            None => rules.start_cents,
            Some((_, second, _)) => (second + rules.increment_cents).min(top),
        };
        Some((leader, price))
    }

    proptest! {
        /// Any sequence of bids: every accepted bid met its minimum, the price and the leader
        /// are what the maxima of the accepted bids give, and the price never falls.
        #[test]
        fn the_price_is_what_the_accepted_maxima_give(
            bids in proptest::collection::vec((0usize..5, 0u64..4_000, 0u64..3_000), 1..60)
        ) {
            let mut b = book();
            let mut accepted = Vec::new();
            let mut last = 0;
            for (i, (who, amount, extra)) in bids.into_iter().enumerate() {
                let user = format!("u{who}");
                let min = b.min_cents(&user);
                let amount = amount + 900;
                match b.bid(&user, amount, Some(amount + extra), i as u64) {
                    Ok(ok) => {
                        prop_assert!(amount >= min);
                        accepted.push((user.clone(), amount + extra));
                        let (leader, price) = from_accepted(&accepted, RULES).expect("a bid");
                        prop_assert_eq!(ok.current_cents, price);
                        prop_assert_eq!(ok.leading, leader == user);
                        prop_assert!(ok.current_cents >= last);
                        last = ok.current_cents;
                    }
                    Err(Refused::TooLow { min_cents }) => {
                        prop_assert_eq!(min_cents, min);
                        prop_assert!(amount < min || amount + extra < min);
                    }
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }
}
