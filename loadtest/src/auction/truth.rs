//! The run's log of its auctions, and the check of each close against it. The log holds every
//! accepted bid as the bidder sent it and the hub answered it, every answer by outcome, the
//! latest-bid frames the viewers got (by the count of bids they carry), the start and close
//! events, the winners' order frames and every viewer's final view. [`Log::report`] replays the
//! accepted bids in the hub's order through the rules (`livehub::auction::Book`) and compares
//! what they give with the close the hub announced.
//!
//! The hub's order: each `bid_accepted` carries its place (`bids`), and the accepts are
//! replayed in that order. From a hub whose answers carry no place, the order is rebuilt: the
//! price only rises (every accepted bid of someone not leading raises it), so the accepts are
//! taken by price and, among equal prices, the one whose answer the rules give from the state so
//! far. Either way each place is then checked against the `auction_bid` frames the viewers got
//! for it (they carry `bids`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use livehub::auction::{Book, Closed, Rules};
use livehub::protocol::{AuctionStatus, AuctionView};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::hist::{Hist, HistJson};

/// `(room, auction id)`.
pub type Key = (String, String);

/// An accepted bid: what was sent, what the hub answered, and when (the load tester's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    pub room: String,
    pub auction: String,
    pub user: String,
    pub request_id: String,
    pub amount_cents: u64,
    /// The most the bid allowed (the amount when it gave no maximum).
    pub max_cents: u64,
    pub current_cents: u64,
    pub leading: bool,
    pub ends_at: u64,
    pub sent_unix_us: u64,
    pub answered_unix_us: u64,
    /// The bidder had seen the close when it sent the bid.
    pub after_close: bool,
    /// Its place in the hub's order of accepted bids (`bid_accepted`'s `bids`; None from a hub
    /// that does not say).
    pub place: Option<u32>,
}

/// The state an `auction_bid` frame gives for the bid count it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    pub current_cents: u64,
    pub leader: Option<String>,
    pub ends_at: u64,
}

/// An `order` frame an auction's close made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub room: String,
    pub auction: String,
    /// The client that got it.
    pub user: String,
    pub price_cents: u64,
    pub qty: u64,
    pub currency: String,
}

/// One viewer's auctions at the end of the run.
struct Final {
    room: String,
    user: String,
    connected: bool,
    views: HashMap<String, AuctionView>,
}

#[derive(Default)]
struct State {
    starts: HashMap<Key, AuctionView>,
    /// The first close each auction's clients got, and how many got another.
    closes: HashMap<Key, AuctionView>,
    other_closes: HashMap<Key, u64>,
    accepts: Vec<Accept>,
    outcomes: BTreeMap<String, u64>,
    orders: Vec<Order>,
    finals: Vec<Final>,
    /// Bids sent per second of the run.
    sent_per_s: BTreeMap<u64, u64>,
    first_sent_us: Option<u64>,
    last_sent_us: u64,
}

/// What the run's clients saw of its auctions and what the hub answered their bids.
#[derive(Default)]
pub struct Log {
    state: Mutex<State>,
    /// Per auction, the state each bid count's `auction_bid` frame gave (the first seen).
    ticks: RwLock<HashMap<Key, HashMap<u32, Tick>>>,
    /// Frames that gave another state for a bid count than the first did.
    tick_conflicts: AtomicU64,
    bid_latency: Mutex<Hist>,
    /// From `ends_at` to each client's receiving the close, in all and per node.
    close_latency: Mutex<Hist>,
    close_by_node: Mutex<BTreeMap<usize, Hist>>,
}

fn key(room: &str, auction: &str) -> Key {
    (room.to_owned(), auction.to_owned())
}

impl Log {
    /// A start event (or any live state: the first one kept).
    pub fn started(&self, room: &str, view: &AuctionView) {
        if view.bids == 0 {
            let mut st = self.state.lock();
            st.starts
                .entry(key(room, view.id.as_str()))
                .or_insert_with(|| view.clone());
        }
    }

    /// A client on `node` got the close `view` at Unix µs `at_us`.
    pub fn closed(&self, room: &str, node: usize, view: &AuctionView, at_us: u64) {
        let late_us = at_us.saturating_sub(view.ends_at.saturating_mul(1000));
        self.close_latency.lock().record(late_us);
        self.close_by_node
            .lock()
            .entry(node)
            .or_default()
            .record(late_us);
        let mut st = self.state.lock();
        let k = key(room, view.id.as_str());
        match st.closes.get(&k) {
            Some(first) if first != view => *st.other_closes.entry(k).or_insert(0) += 1,
            Some(_) => {}
            None => {
                st.closes.insert(k, view.clone());
            }
        }
    }

    /// Whether every one of `auctions` was seen closed by some client.
    pub fn all_closed(&self, auctions: &[Key]) -> bool {
        let st = self.state.lock();
        auctions.iter().all(|k| st.closes.contains_key(k))
    }

    /// An `auction_bid` frame of `bids` bids.
    pub fn tick(&self, room: &str, auction: &str, bids: u32, tick: &Tick) {
        let k = key(room, auction);
        let known = self
            .ticks
            .read()
            .get(&k)
            .and_then(|t| t.get(&bids).map(|first| first == tick));
        match known {
            Some(true) => {}
            Some(false) => {
                self.tick_conflicts.fetch_add(1, Relaxed);
            }
            None => {
                let mut all = self.ticks.write();
                let first = all
                    .entry(k)
                    .or_default()
                    .entry(bids)
                    .or_insert(tick.clone());
                if first != tick {
                    self.tick_conflicts.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// A bid was sent at `at_us` µs into the run.
    pub fn sent(&self, at_us: u64) {
        let mut st = self.state.lock();
        *st.sent_per_s.entry(at_us / 1_000_000).or_insert(0) += 1;
        st.first_sent_us.get_or_insert(at_us);
        st.last_sent_us = st.last_sent_us.max(at_us);
    }

    /// Bids sent so far.
    pub fn sent_total(&self) -> u64 {
        self.state.lock().sent_per_s.values().sum()
    }

    /// A bid's answer took `us`.
    pub fn latency(&self, us: u64) {
        self.bid_latency.lock().record(us);
    }

    /// Counts one bid's outcome.
    pub fn outcome(&self, what: &str) {
        *self
            .state
            .lock()
            .outcomes
            .entry(what.to_owned())
            .or_insert(0) += 1;
    }

    pub fn accepted(&self, a: Accept) {
        self.state.lock().accepts.push(a);
    }

    pub fn order(&self, o: Order) {
        self.state.lock().orders.push(o);
    }

    /// A viewer's auctions at the end of the run.
    pub fn final_views(
        &self,
        room: &str,
        user: &str,
        connected: bool,
        views: HashMap<String, AuctionView>,
    ) {
        self.state.lock().finals.push(Final {
            room: room.to_owned(),
            user: user.to_owned(),
            connected,
            views,
        });
    }

    /// The auctions' report: each one checked, the outcomes, the rates and latencies.
    /// `auctions` are the ones the run started; `tolerance_ms` how far the load tester's clock
    /// may be ahead of the hub's.
    pub fn report(&self, auctions: &[Key], tolerance_ms: u64) -> AuctionReport {
        let st = self.state.lock();
        let ticks = self.ticks.read();
        let checks: Vec<AuctionCheck> = auctions
            .iter()
            .map(|k| {
                let no_ticks = HashMap::new();
                check(&st, k, ticks.get(k).unwrap_or(&no_ticks), tolerance_ms)
            })
            .collect();
        let mut problems: Vec<String> = checks
            .iter()
            .flat_map(|c| {
                c.problems
                    .iter()
                    .map(move |p| format!("{}/{}: {p}", c.room, c.auction))
            })
            .collect();
        let conflicts = self.tick_conflicts.load(Relaxed);
        if conflicts > 0 {
            problems.push(format!(
                "{conflicts} auction_bid frames gave another state for their bid count than \
                 other viewers got"
            ));
        }
        let sent: u64 = st.sent_per_s.values().sum();
        let window_s = st
            .first_sent_us
            .map_or(0.0, |f| (st.last_sent_us - f) as f64 / 1e6);
        AuctionReport {
            auctions: checks,
            bids_sent: sent,
            bids_per_s: sent as f64 / window_s.max(1.0),
            peak_bids_per_s: st.sent_per_s.values().copied().max().unwrap_or(0),
            outcomes: st.outcomes.clone(),
            bid_latency: (&*self.bid_latency.lock()).into(),
            close_latency: (&*self.close_latency.lock()).into(),
            close_latency_by_node: self
                .close_by_node
                .lock()
                .iter()
                .map(|(n, h)| (*n, h.into()))
                .collect(),
            tick_conflicts: conflicts,
            problems,
        }
    }
}

/// How one auction ended, what the run's own log gives, and every check that failed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuctionCheck {
    pub room: String,
    pub auction: String,
    /// As the hub announced it: `sold`, `unsold`, or `live` when no client saw it close.
    pub status: String,
    pub winner: Option<String>,
    pub price_cents: Option<u64>,
    pub bids: u32,
    /// The end at the start and at the close (Unix ms), and how many accepted bids moved it.
    pub started_ends_at: u64,
    pub ends_at: u64,
    pub extensions: u32,
    /// Accepted bids in the run's log.
    pub accepted_logged: u64,
    /// The close the rules give from the logged accepts, in the same terms.
    pub expected_status: String,
    pub expected_winner: Option<String>,
    pub expected_price_cents: Option<u64>,
    pub expected_ends_at: u64,
    /// Accepted bids sent after the bidder had seen the close, or after the end by the load
    /// tester's clock (beyond the tolerance).
    pub accepted_after_close: u64,
    /// Order frames: (client, price) of each.
    pub orders: Vec<(String, u64)>,
    /// Viewers connected at the end: whose final view is the close, who never got the close,
    /// and whose view differs from it.
    pub viewers_checked: u64,
    pub viewers_equal: u64,
    pub viewers_without_close: u64,
    pub viewers_differ: u64,
    /// Every failed check, in words.
    pub problems: Vec<String>,
}

/// Every auction of the run checked, its bids by outcome, the rates and the latencies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuctionReport {
    pub auctions: Vec<AuctionCheck>,
    pub bids_sent: u64,
    /// Bids sent per second, from the first to the last (at least over one second).
    pub bids_per_s: f64,
    pub peak_bids_per_s: u64,
    /// Every bid by its answer (`accepted, leading`, `too_low`, `ended`, …), and the bids a
    /// viewer chose not to send (priced out of its budget).
    pub outcomes: BTreeMap<String, u64>,
    /// From sending a bid to its answer.
    pub bid_latency: HistJson,
    /// From the auction's `ends_at` to each client's receiving the close (the load tester's
    /// clock against the hub's).
    pub close_latency: HistJson,
    pub close_latency_by_node: Vec<(usize, HistJson)>,
    pub tick_conflicts: u64,
    /// Every failed check of every auction, in words: the SLO `auction_truth` wants none.
    pub problems: Vec<String>,
}

/// The first few of a kind of problem are named; the rest counted.
const NAMED: usize = 5;

/// Checks the auction `k` against the log.
fn check(st: &State, k: &Key, ticks: &HashMap<u32, Tick>, tolerance_ms: u64) -> AuctionCheck {
    let mut c = AuctionCheck {
        room: k.0.clone(),
        auction: k.1.clone(),
        status: "live".into(),
        ..AuctionCheck::default()
    };
    let mut accepts: Vec<&Accept> = st
        .accepts
        .iter()
        .filter(|a| a.room == k.0 && a.auction == k.1)
        .collect();
    c.accepted_logged = accepts.len() as u64;
    let Some(start) = st.starts.get(k) else {
        c.problems
            .push("no client saw the auction start (an auction event with no bid)".into());
        return c;
    };
    c.started_ends_at = start.ends_at;
    let close = st.closes.get(k);
    match close {
        Some(close) => {
            c.status = status(close.status).into();
            c.winner = close.winner.as_ref().map(|w| w.name.clone());
            c.price_cents = close.current_cents;
            c.bids = close.bids;
            c.ends_at = close.ends_at;
        }
        None => c
            .problems
            .push("no client saw the close (within close_wait_s of the last action)".into()),
    }
    if let Some(n) = st.other_closes.get(k) {
        c.problems.push(format!(
            "{n} clients got a close that differs from the first one's"
        ));
    }
    // In the hub's own order when every answer gave its place, else by price (see the module
    // doc).
    if accepts.iter().all(|a| a.place.is_some()) {
        accepts.sort_by_key(|a| a.place);
    } else {
        accepts.sort_by_key(|a| (a.current_cents, a.answered_unix_us));
    }
    let replay = replay(start, &accepts, ticks);
    c.extensions = replay.extensions;
    c.problems.extend(replay.problems);
    let mut book = replay.book;
    let end = book.state.ends_at;
    c.expected_ends_at = end;
    match book.close(end) {
        Some(Closed::Sold {
            winner,
            price_cents,
        }) => {
            c.expected_status = "sold".into();
            c.expected_winner = Some(winner);
            c.expected_price_cents = Some(price_cents);
        }
        _ => c.expected_status = "unsold".into(),
    }
    if let Some(close) = close {
        compare_close(&mut c, close, accepts.len());
        after_close(&mut c, &accepts, close, tolerance_ms);
        orders(&mut c, st, k, close);
        viewers(&mut c, st, k, close);
    }
    if let Some(&top) = ticks.keys().max()
        && close.is_some_and(|cl| top > cl.bids)
    {
        c.problems.push(format!(
            "a viewer got an auction_bid of {top} bids, more than the close's {}",
            c.bids
        ));
    }
    c
}

/// How an auction stands, in words: `sold to v12 at 9000 cents`, `unsold`, `live`.
pub fn said(status: &str, winner: &Option<String>, price: Option<u64>) -> String {
    match (winner, price) {
        (Some(w), Some(p)) => format!("{status} to {w} at {p} cents"),
        _ => status.to_owned(),
    }
}

fn status(s: AuctionStatus) -> &'static str {
    match s {
        AuctionStatus::Live => "live",
        AuctionStatus::Sold => "sold",
        AuctionStatus::Unsold => "unsold",
    }
}

/// The accepted bids replayed through the rules: the book they leave, how many moved the end,
/// and every answer of the hub's the rules do not give.
struct Replay {
    book: Book,
    extensions: u32,
    problems: Vec<String>,
}

/// Replays `accepts` in the hub's order: sorted by their places when they all carry one (each
/// must then be the rules' answer at its place), else sorted by price, then by when answered,
/// taking at each place the first accept of the lowest price left whose answer the rules give. A bid's time is what
/// its answer says: `ends_at - extend_ms` when it moved the end, else the latest time that does
/// not (the rules need no other).
fn replay(start: &AuctionView, accepts: &[&Accept], ticks: &HashMap<u32, Tick>) -> Replay {
    let rules = Rules {
        start_cents: start.start_cents,
        increment_cents: start.increment_cents,
        extend_ms: start.extend_ms,
        sudden_death: start.sudden_death,
    };
    let mut book = Book::start(
        rules,
        start.started_at,
        start.ends_at.saturating_sub(start.started_at),
    );
    let (mut extensions, mut problems) = (0, Vec::new());
    let mut left: Vec<&Accept> = accepts.to_vec();
    let mut tick_problems = 0usize;
    let placed = accepts.iter().all(|a| a.place.is_some());
    while let Some(first) = left.first() {
        let low = first.current_cents;
        // With places, the next one is the next place, nothing else.
        let same = if placed {
            1
        } else {
            left.iter().take_while(|a| a.current_cents == low).count()
        };
        let Some(i) = (0..same).find(|&i| answer(&book, left[i]).0.is_ok()) else {
            let (got, _) = answer(&book, first);
            problems.push(format!(
                "accepted bid {} of {} (amount {}, max {}): the hub answered price {} {} end {}, \
                 the rules after {} bids give {}",
                first.request_id,
                first.user,
                first.amount_cents,
                first.max_cents,
                first.current_cents,
                if first.leading {
                    "leading"
                } else {
                    "not leading"
                },
                first.ends_at,
                book.state.bids,
                got.err().unwrap_or_default()
            ));
            break;
        };
        let a = left.remove(i);
        let (_, now) = answer(&book, a);
        if let Ok(ok) = book.bid(&a.user, a.amount_cents, Some(a.max_cents), now) {
            extensions += u32::from(ok.extended);
        }
        if let Some(t) = ticks.get(&book.state.bids) {
            let mine = Tick {
                current_cents: book.state.current_cents.unwrap_or(0),
                leader: book.state.leader.as_ref().map(|l| l.user.clone()),
                ends_at: book.state.ends_at,
            };
            if *t != mine {
                tick_problems += 1;
                if tick_problems <= NAMED {
                    problems.push(format!(
                        "the auction_bid of {} bids said {t:?}, the rules give {mine:?}",
                        book.state.bids
                    ));
                }
            }
        }
    }
    if tick_problems > NAMED {
        problems.push(format!(
            "… {} more auction_bid frames unlike the rules",
            tick_problems - NAMED
        ));
    }
    Replay {
        book,
        extensions,
        problems,
    }
}

/// Whether the rules, from `book`, answer `a` as the hub did (else what they answer), and the
/// time the bid was taken at.
fn answer(book: &Book, a: &Accept) -> (Result<(), String>, u64) {
    let rules = book.rules;
    let now = if a.ends_at > book.state.ends_at {
        a.ends_at.saturating_sub(rules.extend_ms)
    } else {
        book.state.ends_at.saturating_sub(rules.extend_ms.max(1))
    };
    let mut trial = book.clone();
    let got = match trial.bid(&a.user, a.amount_cents, Some(a.max_cents), now) {
        Ok(ok)
            if (ok.current_cents, ok.leading, ok.ends_at)
                == (a.current_cents, a.leading, a.ends_at) =>
        {
            Ok(())
        }
        Ok(ok) => Err(format!(
            "price {} {} end {}",
            ok.current_cents,
            if ok.leading { "leading" } else { "not leading" },
            ok.ends_at
        )),
        Err(refused) => Err(format!("{refused:?}")),
    };
    (got, now)
}

/// The close against what the rules give and the count of logged accepts.
fn compare_close(c: &mut AuctionCheck, close: &AuctionView, logged: usize) {
    if close.bids as usize != logged {
        c.problems.push(format!(
            "the close counts {} bids, the run logged {logged} accepted",
            close.bids
        ));
    }
    let winner = close.winner.as_ref().map(|w| w.name.clone());
    let leader = close.leader.as_ref().map(|w| w.name.clone());
    if c.status != c.expected_status
        || winner != c.expected_winner
        || close.current_cents != c.expected_price_cents
        || close.ends_at != c.expected_ends_at
    {
        c.problems.push(format!(
            "the close says {} ending {}, the rules give {} ending {}",
            said(&c.status, &winner, close.current_cents),
            close.ends_at,
            said(
                &c.expected_status,
                &c.expected_winner,
                c.expected_price_cents
            ),
            c.expected_ends_at
        ));
    }
    if close.status == AuctionStatus::Sold && leader != winner {
        c.problems.push(format!(
            "the close's leader {leader:?} is not its winner {winner:?}"
        ));
    }
}

/// Accepted bids the bidder sent after it saw the close, or after the close's end by the
/// load tester's clock.
fn after_close(c: &mut AuctionCheck, accepts: &[&Accept], close: &AuctionView, tolerance_ms: u64) {
    let end_us = close
        .ends_at
        .saturating_add(tolerance_ms)
        .saturating_mul(1000);
    let late: Vec<&&Accept> = accepts
        .iter()
        .filter(|a| a.after_close || a.sent_unix_us >= end_us || a.ends_at > close.ends_at)
        .collect();
    c.accepted_after_close = late.len() as u64;
    for a in late.iter().take(NAMED) {
        c.problems.push(format!(
            "bid {} of {} accepted after the close (sent {} ms after the end{})",
            a.request_id,
            a.user,
            (a.sent_unix_us / 1000) as i64 - close.ends_at as i64,
            if a.after_close {
                ", after its bidder saw the close"
            } else {
                ""
            }
        ));
    }
}

/// The order frames: one, to the winner, at the price; none when unsold.
fn orders(c: &mut AuctionCheck, st: &State, k: &Key, close: &AuctionView) {
    let mine: Vec<&Order> = st
        .orders
        .iter()
        .filter(|o| o.room == k.0 && o.auction == k.1)
        .collect();
    c.orders = mine
        .iter()
        .map(|o| (o.user.clone(), o.price_cents))
        .collect();
    let winner = close.winner.as_ref().map(|w| w.name.as_str());
    let right = |o: &&Order| {
        Some(o.user.as_str()) == winner
            && Some(o.price_cents) == close.current_cents
            && o.qty == 1
            && o.currency == close.currency
    };
    let fine = match winner {
        Some(_) => mine.len() == 1 && mine.iter().all(right),
        None => mine.is_empty(),
    };
    if !fine {
        c.problems.push(format!(
            "order frames {:?}; expected {}",
            c.orders,
            match winner {
                Some(w) => format!("one to {w} at {:?}", close.current_cents),
                None => "none (unsold)".into(),
            }
        ));
    }
}

/// Every viewer connected at the end must hold the close as its view of the auction.
fn viewers(c: &mut AuctionCheck, st: &State, k: &Key, close: &AuctionView) {
    let mut named = 0;
    for f in st.finals.iter().filter(|f| f.room == k.0 && f.connected) {
        c.viewers_checked += 1;
        match f.views.get(&k.1) {
            Some(v) if v == close => c.viewers_equal += 1,
            Some(v) if v.status == AuctionStatus::Live => c.viewers_without_close += 1,
            None => c.viewers_without_close += 1,
            Some(v) => {
                c.viewers_differ += 1;
                if named < NAMED {
                    named += 1;
                    c.problems.push(format!(
                        "viewer {} ends on {} {:?} at {:?}, bids {}, ending {}",
                        f.user,
                        status(v.status),
                        v.winner.as_ref().map(|w| &w.name),
                        v.current_cents,
                        v.bids,
                        v.ends_at
                    ));
                }
            }
        }
    }
    if c.viewers_without_close > 0 {
        c.problems.push(format!(
            "{} connected viewers never got the close",
            c.viewers_without_close
        ));
    }
    if c.viewers_differ > named as u64 {
        c.problems.push(format!(
            "… {} more viewers end on another view than the close",
            c.viewers_differ - named as u64
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livehub::protocol::{Bidder, Id};

    const RULES: Rules = Rules {
        start_cents: 1_000,
        increment_cents: 100,
        extend_ms: 2_000,
        sudden_death: false,
    };

    fn start() -> AuctionView {
        AuctionView {
            id: Id::new("a1").expect("id"),
            product_id: Id::new("p1").expect("id"),
            title: "t".into(),
            image_url: None,
            currency: "USD".into(),
            start_cents: RULES.start_cents,
            increment_cents: RULES.increment_cents,
            current_cents: None,
            leader: None,
            bids: 0,
            ends_at: 10_000,
            extend_ms: RULES.extend_ms,
            sudden_death: false,
            status: AuctionStatus::Live,
            winner: None,
            started_at: 5_000,
        }
    }

    /// A log of `bids` (user, amount, max, time) as the rules answer them, logged in reverse;
    /// the close as the rules give it.
    /// `bids` taken by the rules and logged as the hub answers them: with their places when
    /// `placed` (as this hub's answers carry them), else without (the order is rebuilt).
    fn run(bids: &[(&str, u64, u64, u64)], placed: bool) -> (Log, AuctionView) {
        let log = Log::default();
        let s = start();
        log.started("r0", &s);
        let mut book = Book::start(RULES, s.started_at, 5_000);
        let mut accepts = Vec::new();
        for (i, &(user, amount, max, at)) in bids.iter().enumerate() {
            let Ok(ok) = book.bid(user, amount, Some(max), at) else {
                continue;
            };
            accepts.push(Accept {
                room: "r0".into(),
                auction: "a1".into(),
                user: user.into(),
                request_id: format!("b{i}"),
                amount_cents: amount,
                max_cents: max,
                current_cents: ok.current_cents,
                leading: ok.leading,
                ends_at: ok.ends_at,
                sent_unix_us: at * 1000,
                answered_unix_us: 1_000_000_000 - i as u64,
                after_close: false,
                place: placed.then_some(ok.bids),
            });
            log.tick(
                "r0",
                "a1",
                ok.bids,
                &Tick {
                    current_cents: ok.current_cents,
                    leader: book.state.leader.as_ref().map(|l| l.user.clone()),
                    ends_at: ok.ends_at,
                },
            );
        }
        for a in accepts.into_iter().rev() {
            log.accepted(a);
        }
        let closed = book.close(book.state.ends_at);
        let mut close = s.clone();
        close.current_cents = book.state.current_cents;
        close.leader = book.state.leader.as_ref().map(|l| Bidder {
            name: l.user.clone(),
        });
        close.bids = book.state.bids;
        close.ends_at = book.state.ends_at;
        close.status = book.state.status;
        if let Some(Closed::Sold { winner, .. }) = closed {
            close.winner = Some(Bidder { name: winner });
        }
        log.closed("r0", 0, &close, close.ends_at * 1000 + 40_000);
        (log, close)
    }

    fn keys() -> Vec<Key> {
        vec![key("r0", "a1")]
    }

    const WAR: &[(&str, u64, u64, u64)] = &[
        ("v1", 1_000, 3_000, 6_000),
        ("v2", 1_100, 2_000, 6_100),
        ("v2", 3_100, 5_000, 6_200),
        ("v3", 3_200, 3_500, 6_300),
        ("v1", 4_000, 9_000, 9_500),  // moves the end to 11,500
        ("v3", 9_000, 9_000, 11_000), // a tie: v1 keeps it, the end moves to 13,000
    ];

    #[test]
    fn a_close_that_follows_the_rules_passes_every_check() {
        for placed in [true, false] {
            a_close_that_follows_the_rules_passes(placed);
        }
    }

    fn a_close_that_follows_the_rules_passes(placed: bool) {
        let (log, close) = run(WAR, placed);
        log.order(Order {
            room: "r0".into(),
            auction: "a1".into(),
            user: "v1".into(),
            price_cents: 9_000,
            qty: 1,
            currency: "USD".into(),
        });
        log.final_views(
            "r0",
            "v9",
            true,
            HashMap::from([("a1".to_owned(), close.clone())]),
        );
        let r = log.report(&keys(), 0);
        let c = &r.auctions[0];
        assert_eq!(r.problems, Vec::<String>::new(), "{c:?}");
        assert_eq!(
            (
                c.status.as_str(),
                c.winner.as_deref(),
                c.price_cents,
                c.bids
            ),
            ("sold", Some("v1"), Some(9_000), 6)
        );
        assert_eq!((c.extensions, c.ends_at), (2, 13_000));
        assert_eq!((c.viewers_checked, c.viewers_equal), (1, 1));
        assert_eq!(r.close_latency.count, 1);
        assert!(
            (r.close_latency.p50_ms - 40.0).abs() < 1.0,
            "{:?}",
            r.close_latency
        );
    }

    #[test]
    fn a_wrong_price_a_missing_order_a_late_accept_and_a_stale_viewer_are_each_named() {
        let (log, mut close) = run(WAR, true);
        close.current_cents = Some(8_900);
        let log2 = Log::default();
        let st = log.state.lock();
        log2.started("r0", &st.starts[&key("r0", "a1")]);
        for a in &st.accepts {
            log2.accepted(Accept {
                after_close: a.request_id == "b5",
                ..a.clone()
            });
        }
        drop(st);
        log2.closed("r0", 0, &close, 0);
        let mut stale = close.clone();
        stale.status = AuctionStatus::Live;
        log2.final_views("r0", "v9", true, HashMap::from([("a1".to_owned(), stale)]));
        let r = log2.report(&keys(), 0);
        let all = r.problems.join("\n");
        assert!(
            all.contains("the close says sold to v1 at 8900 cents ending 13000, the rules give sold to v1 at 9000 cents"),
            "{all}"
        );
        assert!(all.contains("order frames []; expected one to v1"), "{all}");
        assert!(
            all.contains("bid b5 of v3 accepted after the close"),
            "{all}"
        );
        assert!(
            all.contains("1 connected viewers never got the close"),
            "{all}"
        );
    }

    #[test]
    fn an_accept_the_rules_would_not_give_is_named_with_what_they_give() {
        let (log, _) = run(&WAR[..2], true);
        {
            let mut st = log.state.lock();
            let a = st.accepts.iter_mut().find(|a| a.user == "v2").expect("v2");
            a.current_cents = 2_050;
        }
        let r = log.report(&keys(), 0);
        let all = r.problems.join("\n");
        assert!(
            all.contains(
                "accepted bid b1 of v2 (amount 1100, max 2000): the hub answered price 2050"
            ),
            "{all}"
        );
        assert!(
            all.contains("the rules after 1 bids give price 2100"),
            "{all}"
        );
    }

    #[test]
    fn an_auction_nobody_bid_on_closes_unsold_without_an_order() {
        let (log, _) = run(&[], true);
        let r = log.report(&keys(), 0);
        assert_eq!(r.problems, Vec::<String>::new());
        assert_eq!(r.auctions[0].status, "unsold");
    }
}
