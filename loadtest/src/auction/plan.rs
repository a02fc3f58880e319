//! A scenario's `[auction]`: one auction the host of every room starts, and who bids on it how.
//! [`Section::plan`] turns it into timed actions from a random stream of its own (so adding the
//! section moves no other choice of the plan): the host's `auction_start`, then for each chosen
//! viewer when it becomes a `bidder`, a `snipe`r or a `late_bid`der.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use livehub::auction::{AuctionSpec, DEFAULT_EXTEND_MS};
use livehub::commerce::MAX_PRICE_CENTS;
use livehub::protocol::{ClientMsg, Id};

use crate::trace::{Action, Event};

/// The section as written; every field left out has the default noted on it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// When the host starts the auction, seconds into the show.
    pub at_s: f64,
    /// The auction's id (default `a1`).
    #[serde(default = "default_id")]
    pub id: Id,
    /// The product sold (default `p1`).
    #[serde(default = "default_product")]
    pub product: Id,
    #[serde(default)]
    pub title: Option<String>,
    pub start_cents: u64,
    pub increment_cents: u64,
    /// How long it runs before any extension, seconds (5 to 3600).
    pub duration_s: f64,
    /// A bid accepted with less than this left moves the end to the bid's time plus this,
    /// seconds (0 to 60; default the hub's 10).
    #[serde(default = "default_extend")]
    pub extend_s: f64,
    #[serde(default)]
    pub sudden_death: bool,
    /// Viewers of each room who bid whenever they are outbid, up to a budget.
    #[serde(default)]
    pub bidders: usize,
    /// A bidder's budget, drawn uniformly from `[low, high]` cents.
    pub budget_cents: [u64; 2],
    /// Each of a bidder's bids allows as its maximum the least amount accepted plus this share
    /// of what its budget leaves above it; drawn per bidder from `[low, high]` (default
    /// `[0.2, 0.8]`; 1 bids the whole budget at once).
    #[serde(default = "default_raise")]
    pub raise: [f64; 2],
    /// Bidders bid first within this many seconds of the start (default half the duration).
    #[serde(default)]
    pub first_bid_s: Option<f64>,
    /// How long a bidder takes to bid again once outbid, drawn per bidder from `[low, high]`
    /// ms (default `[250, 800]`; at least 200, the hub's default 5 bids/s per user).
    #[serde(default = "default_think")]
    pub think_ms: [u64; 2],
    /// Other viewers of each room who bid once, within the last `snipe_window_ms` before the
    /// end as they see it when that window opens, up to their budget.
    #[serde(default)]
    pub snipers: usize,
    /// A sniper's budget, drawn uniformly from `[low, high]` cents (default `budget_cents`).
    #[serde(default)]
    pub snipe_budget_cents: Option<[u64; 2]>,
    /// Default 1000.
    #[serde(default = "default_window")]
    pub snipe_window_ms: u64,
    /// Other viewers of each room who bid once they saw the close: each must be told `ended`.
    #[serde(default)]
    pub late: usize,
    /// How long the run waits past its last planned action for every close (extensions move
    /// the end), seconds (default 60).
    #[serde(default = "default_wait")]
    pub close_wait_s: f64,
    /// How far the load tester's clock may be ahead of the hub's (Redis's with the Redis
    /// backend) before a bid sent after the end by its clock counts as accepted late, ms
    /// (default 0: one machine, one clock).
    #[serde(default)]
    pub clock_tolerance_ms: u64,
}

fn default_id() -> Id {
    Id::new("a1").unwrap_or_else(|e| unreachable!("{e}"))
}
fn default_product() -> Id {
    Id::new("p1").unwrap_or_else(|e| unreachable!("{e}"))
}
fn default_extend() -> f64 {
    DEFAULT_EXTEND_MS as f64 / 1000.0
}
fn default_raise() -> [f64; 2] {
    [0.2, 0.8]
}
fn default_think() -> [u64; 2] {
    [250, 800]
}
fn default_window() -> u64 {
    1000
}
fn default_wait() -> f64 {
    60.0
}

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

impl Section {
    /// The host's `auction_start` body.
    pub fn spec(&self) -> AuctionSpec {
        AuctionSpec {
            id: self.id.clone(),
            product_id: self.product.clone(),
            title: self.title.clone(),
            image_url: None,
            currency: "USD".into(),
            start_cents: self.start_cents,
            increment_cents: self.increment_cents,
            duration_ms: ms(self.duration_s),
            extend_ms: ms(self.extend_s),
            sudden_death: self.sudden_death,
            commission_bps: 0,
            affiliate_bps: 0,
            creator: None,
        }
    }

    /// The host's command (without a `request_id`: the player numbers it).
    pub fn command(&self) -> ClientMsg {
        ClientMsg::AuctionStart {
            auction: self.spec(),
            request_id: None,
        }
    }

    /// Refuses what the hub would refuse, more bidders than the smallest room has viewers, and
    /// first bids the show's `duration_s` would drop.
    pub fn check(&self, smallest_room: usize, duration_s: f64) -> anyhow::Result<()> {
        let bad = |m: String| anyhow::anyhow!("scenario: [auction] {m}");
        let last = self.at_s + 0.2 + self.first_bid_s.unwrap_or(self.duration_s / 2.0);
        anyhow::ensure!(
            last <= duration_s,
            bad(format!(
                "bidders bid first until at_s + 0.2 + first_bid_s = {last:.1} s: the show's \
                 duration_s ({duration_s} s) must reach it (the run waits for the close anyway)"
            ))
        );
        self.spec().check().map_err(|e| bad(e.0))?;
        for (key, [low, high]) in [
            ("budget_cents", Some(self.budget_cents)),
            ("snipe_budget_cents", self.snipe_budget_cents),
        ]
        .into_iter()
        .filter_map(|(k, r)| r.map(|r| (k, r)))
        {
            anyhow::ensure!(
                1 <= low && low <= high && high <= MAX_PRICE_CENTS,
                bad(format!(
                    "{key} must be [low, high] with 1 <= low <= high <= {MAX_PRICE_CENTS}"
                ))
            );
        }
        let [r0, r1] = self.raise;
        anyhow::ensure!(
            0.0 < r0 && r0 <= r1 && r1 <= 1.0,
            bad("raise must be [low, high] with 0 < low <= high <= 1".into())
        );
        let [t0, t1] = self.think_ms;
        anyhow::ensure!(
            t0 <= t1,
            bad("think_ms must be [low, high] with low <= high".into())
        );
        let wanted = self.bidders + self.snipers + self.late;
        anyhow::ensure!(
            wanted <= smallest_room,
            bad(format!(
                "bidders + snipers + late ({wanted}) must be at most the viewers of the smallest \
                 room ({smallest_room})"
            ))
        );
        anyhow::ensure!(
            self.at_s >= 0.0 && self.close_wait_s >= 0.0,
            bad("at_s and close_wait_s must not be negative".into())
        );
        Ok(())
    }

    /// The actions of `room` (the viewers `members`, by index, with their first connect in ms
    /// in `arrive`), drawn from `rng`: the host's start, then each chosen viewer's way of
    /// bidding, no earlier than 300 ms after it connects.
    pub fn plan(
        &self,
        rng: &mut StdRng,
        room: &str,
        host: &str,
        members: &[(String, u64)],
    ) -> Vec<Event> {
        let at = ms(self.at_s);
        let command = self.command();
        let mut out = vec![Event::new(at, room, host, Action::Host { command })];
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.shuffle(rng);
        let auction = self.id.to_string();
        let first_ms = ms(self.first_bid_s.unwrap_or(self.duration_s / 2.0)).max(1);
        let snipe_budget = self.snipe_budget_cents.unwrap_or(self.budget_cents);
        let draw = |rng: &mut StdRng, [low, high]: [u64; 2]| rng.random_range(low..=high);
        for (k, &m) in order.iter().enumerate() {
            let (viewer, arrive) = (&members[m].0, members[m].1);
            let (t, action) = if k < self.bidders {
                let t = at + 200 + rng.random_range(0..first_ms);
                let budget_cents = draw(rng, self.budget_cents);
                let raise = rng.random_range(self.raise[0]..=self.raise[1]);
                let think_ms = draw(rng, self.think_ms);
                let bidder = Action::Bidder {
                    auction: auction.clone(),
                    budget_cents,
                    raise,
                    think_ms,
                };
                (t, bidder)
            } else if k < self.bidders + self.snipers {
                let snipe = Action::Snipe {
                    auction: auction.clone(),
                    budget_cents: draw(rng, snipe_budget),
                    lead_ms: rng.random_range(0..self.snipe_window_ms.max(1)),
                    window_ms: self.snipe_window_ms,
                };
                (at + 100, snipe)
            } else if k < self.bidders + self.snipers + self.late {
                let late = Action::LateBid {
                    auction: auction.clone(),
                };
                (at + 100, late)
            } else {
                break;
            };
            out.push(Event::new(t.max(arrive + 300), room, viewer, action));
        }
        out
    }
}

/// The random stream of the auction's choices: the scenario's seed, apart from the others.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x0a0c_7105_bead_5eed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(extra: &str) -> Section {
        toml::from_str(&format!(
            "at_s = 1\nstart_cents = 1000\nincrement_cents = 100\nduration_s = 10\n\
             budget_cents = [2000, 9000]\n{extra}"
        ))
        .expect("section")
    }

    #[test]
    fn the_plan_starts_the_auction_and_gives_each_chosen_viewer_one_way_of_bidding() {
        let s = section("bidders = 5\nsnipers = 3\nlate = 2\nextend_s = 2");
        s.check(20, 10.0).expect("fits");
        let members: Vec<(String, u64)> = (0..20).map(|i| (format!("v{i}"), 0)).collect();
        let events = s.plan(&mut rng(1), "r0", "h-r0", &members);
        assert!(matches!(
            &events[0].action,
            Action::Host { command: ClientMsg::AuctionStart { auction, .. } }
                if auction.extend_ms == 2_000 && auction.duration_ms == 10_000
        ));
        let count = |f: fn(&Action) -> bool| events.iter().filter(|e| f(&e.action)).count();
        assert_eq!(count(|a| matches!(a, Action::Bidder { .. })), 5);
        assert_eq!(count(|a| matches!(a, Action::Snipe { .. })), 3);
        assert_eq!(count(|a| matches!(a, Action::LateBid { .. })), 2);
        let clients: std::collections::HashSet<&str> =
            events[1..].iter().map(|e| e.client.as_str()).collect();
        assert_eq!(clients.len(), 10, "ten different viewers");
        for e in &events[1..] {
            if let Action::Bidder {
                budget_cents,
                raise,
                think_ms,
                ..
            } = e.action
            {
                assert!((2000..=9000).contains(&budget_cents));
                assert!((0.2..=0.8).contains(&raise));
                assert!((250..=800).contains(&think_ms));
                assert!((1_200..6_200).contains(&e.t_ms), "{}", e.t_ms);
            }
        }
        assert_eq!(
            s.plan(&mut rng(1), "r0", "h-r0", &members),
            events,
            "the same seed, the same plan"
        );
    }

    #[test]
    fn a_section_the_hub_would_refuse_or_too_many_bidders_is_an_error_naming_it() {
        let e = section("extend_s = 61").check(10, 10.0).unwrap_err();
        assert!(
            e.to_string().contains("extend_ms must be 0 to 60000"),
            "{e}"
        );
        let e = section("bidders = 8\nsnipers = 3")
            .check(10, 10.0)
            .unwrap_err();
        assert!(e.to_string().contains("(11) must be at most"), "{e}");
        let e = section("raise = [0.5, 0.2]").check(10, 10.0).unwrap_err();
        assert!(e.to_string().contains("raise"), "{e}");
        let short = Section {
            duration_s: 4.0,
            ..section("")
        };
        let e = short.check(10, 10.0).unwrap_err();
        assert!(e.to_string().contains("duration_ms"), "{e}");
        let e = section("first_bid_s = 9").check(10, 10.0).unwrap_err();
        assert!(
            e.to_string()
                .contains("= 10.2 s: the show's duration_s (10 s)"),
            "{e}"
        );
    }
}
