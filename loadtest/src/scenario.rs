//! Scenario files (TOML, `config/scenarios/`): a show's timeline (viewers arriving, churn, chat,
//! the host's actions, buyers after each deal opens) and its service levels. `plan` turns a
//! scenario into the exact list of timed client actions a run plays, from a seed, so the same
//! scenario and seed always make the same plan.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use livehub::protocol::{ClientMsg, DealSpec, Id, Product};

use crate::mix::{FunnelSection, Mix};
use crate::trace::{Action, Attribution, Event};

/// A whole scenario.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seconds the show runs (actions after it are dropped).
    pub duration_s: f64,
    /// Seed for every random choice.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How many rooms; viewers are spread over them round robin.
    #[serde(default = "one")]
    pub rooms: usize,
    /// Room ids are `{room_prefix}{index}`.
    #[serde(default = "default_prefix")]
    pub room_prefix: String,
    /// Arrival phases.
    #[serde(default)]
    pub viewers: Vec<Arrival>,
    #[serde(default)]
    pub churn: Option<Churn>,
    #[serde(default)]
    pub chat: Option<Chat>,
    /// The host's actions, in every room.
    #[serde(default)]
    pub host: Vec<HostAction>,
    #[serde(default)]
    pub buyers: Option<Buyers>,
    /// Where viewers come from and how each channel buys (module `mix`); also turns on the
    /// check of the hub's funnel against the run's own ground truth.
    #[serde(default)]
    pub funnel: Option<FunnelSection>,
    #[serde(default)]
    pub slo: Slo,
    /// The shop's backend settling orders (hubs with `orders.payment = "external"`).
    #[serde(default)]
    pub shop: Option<crate::shop::Shop>,
    /// An auction in every room, its bidders, snipers and late bidders (module `auction`), and
    /// the check of each close against the run's own log of accepted bids.
    #[serde(default)]
    pub auction: Option<crate::auction::Section>,
    /// `funnel`, checked by [`Scenario::load`].
    #[serde(skip)]
    pub mix: Option<Mix>,
}

fn default_seed() -> u64 {
    42
}
fn one() -> usize {
    1
}
fn default_prefix() -> String {
    "room".into()
}

/// A group of viewers arriving.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// When the phase starts, seconds.
    #[serde(default)]
    pub at_s: f64,
    pub count: usize,
    /// `linear` (evenly over `over_s`), `step` (all at `at_s`), `surge` (80% in the first
    /// fifth of `over_s`, the rest evenly after).
    #[serde(default = "linear")]
    pub shape: Shape,
    #[serde(default)]
    pub over_s: f64,
}

fn linear() -> Shape {
    Shape::Linear
}

/// How arrivals spread over their window.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Linear,
    Step,
    Surge,
}

/// Viewers leaving and coming back with `?since=`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Departures per second across the show.
    pub leaves_per_s: f64,
    /// Seconds away before rejoining.
    pub away_s: f64,
}

/// Chat traffic per room.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// Comments per second per room (Poisson arrivals).
    pub comments_per_s: f64,
    #[serde(default = "min_len")]
    pub min_chars: usize,
    #[serde(default = "max_len")]
    pub max_chars: usize,
    /// Like messages per second per room, in bursts.
    #[serde(default)]
    pub likes_per_s: f64,
    #[serde(default = "burst")]
    pub like_burst: u32,
    /// Chat starts this many seconds into the show.
    #[serde(default)]
    pub start_s: f64,
}

fn min_len() -> usize {
    4
}
fn max_len() -> usize {
    140
}
fn burst() -> u32 {
    5
}

/// One host action, done in every room at `at_s`: the scenario's `action = "pin" | "unpin" |
/// "deal_start" | "deal_end" | "announce"` picks the variant, and each variant takes only its
/// own keys, so an unknown action or a key the action does not use is a parse error naming it.
/// Ids are checked as protocol ids when the file is read. Every field left out has the default
/// noted on it; [`HostAction::command`] builds the wire command from the protocol's own types.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum HostAction {
    /// Pins a product (default `p1`, "Holiday special", 1999 cents, USD).
    Pin {
        at_s: f64,
        #[serde(default)]
        product: Option<Id>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        price_cents: Option<u64>,
    },
    /// Unpins the pinned product.
    Unpin { at_s: f64 },
    /// Opens a flash deal (default `d1` on `p1`, "Holiday special", 999 cents USD, stock 100,
    /// one per buyer, 60 s); buyers (`[buyers]`) tap after it.
    DealStart {
        at_s: f64,
        #[serde(default)]
        deal: Option<Id>,
        #[serde(default)]
        product: Option<Id>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        price_cents: Option<u64>,
        #[serde(default)]
        stock: Option<u32>,
        #[serde(default)]
        per_user_limit: Option<u32>,
        #[serde(default)]
        duration_s: Option<f64>,
        /// Basis points (0..=10000) of each order's total paid to the host creator (the host
        /// token's `sub`); 0 when left out, as the hub's default.
        #[serde(default)]
        commission_bps: Option<u32>,
        /// Basis points paid to the buyer's signed affiliate, if any; 0 when left out.
        #[serde(default)]
        affiliate_bps: Option<u32>,
    },
    /// Ends a deal (default `d1`).
    DealEnd {
        at_s: f64,
        #[serde(default)]
        deal: Option<Id>,
    },
    /// Announces a text (default "Thanks for watching!").
    Announce {
        at_s: f64,
        #[serde(default)]
        text: Option<String>,
    },
}

fn id_or(id: &Option<Id>, default: &str) -> Id {
    id.clone()
        .unwrap_or_else(|| Id::new(default).unwrap_or_else(|e| unreachable!("{default}: {e}")))
}

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

const DEFAULT_TITLE: &str = "Holiday special";

impl HostAction {
    /// When the host acts, seconds into the show.
    pub fn at_s(&self) -> f64 {
        match self {
            HostAction::Pin { at_s, .. }
            | HostAction::Unpin { at_s }
            | HostAction::DealStart { at_s, .. }
            | HostAction::DealEnd { at_s, .. }
            | HostAction::Announce { at_s, .. } => *at_s,
        }
    }

    /// The deal a `deal_start` opens (none for any other action).
    pub fn opens_deal(&self) -> Option<Id> {
        match self {
            HostAction::DealStart { deal, .. } => Some(id_or(deal, "d1")),
            _ => None,
        }
    }

    /// The `(commission_bps, affiliate_bps)` a `deal_start` pays, as written (others: none).
    fn rates(&self) -> (Option<u32>, Option<u32>) {
        match self {
            HostAction::DealStart {
                commission_bps,
                affiliate_bps,
                ..
            } => (*commission_bps, *affiliate_bps),
            _ => (None, None),
        }
    }

    /// The command the host sends, defaults filled in (without a `request_id`: the player
    /// numbers each one it sends).
    pub fn command(&self) -> ClientMsg {
        let title = |t: &Option<String>| t.clone().unwrap_or_else(|| DEFAULT_TITLE.into());
        match self {
            HostAction::Pin {
                product,
                title: t,
                price_cents,
                ..
            } => ClientMsg::Pin {
                product: Product {
                    id: id_or(product, "p1"),
                    title: title(t),
                    price_cents: price_cents.unwrap_or(1999),
                    currency: "USD".into(),
                    image_url: None,
                },
                request_id: None,
            },
            HostAction::Unpin { .. } => ClientMsg::Unpin { request_id: None },
            HostAction::DealStart {
                deal,
                product,
                title: t,
                price_cents,
                stock,
                per_user_limit,
                duration_s,
                commission_bps,
                affiliate_bps,
                ..
            } => ClientMsg::DealStart {
                deal: DealSpec {
                    id: id_or(deal, "d1"),
                    product_id: id_or(product, "p1"),
                    title: Some(title(t)),
                    image_url: None,
                    price_cents: price_cents.unwrap_or(999),
                    currency: "USD".into(),
                    stock: stock.unwrap_or(100),
                    per_user_limit: per_user_limit.unwrap_or(1),
                    duration_ms: ms(duration_s.unwrap_or(60.0)),
                    commission_bps: commission_bps.unwrap_or(0),
                    affiliate_bps: affiliate_bps.unwrap_or(0),
                },
                request_id: None,
            },
            HostAction::DealEnd { deal, .. } => ClientMsg::DealEnd {
                deal: id_or(deal, "d1"),
                request_id: None,
            },
            HostAction::Announce { text, .. } => ClientMsg::Announce {
                text: text
                    .clone()
                    .unwrap_or_else(|| "Thanks for watching!".into()),
                request_id: None,
            },
        }
    }
}

/// Who buys after a deal opens.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Buyers {
    /// Share of the room's viewers who tap reserve.
    pub share: f64,
    /// Seconds after the deal opens within which they tap.
    pub window_s: f64,
    /// `spike` (most taps in the first moments) or `uniform`.
    #[serde(default = "spike")]
    pub shape: String,
    /// Of those who get a hold: share who check out, share who cancel; the rest abandon it.
    pub checkout: f64,
    pub cancel: f64,
    /// Seconds between the hold and checkout/cancel.
    #[serde(default = "think")]
    pub think_s: f64,
}

fn spike() -> String {
    "spike".into()
}
fn think() -> f64 {
    1.0
}

/// Service levels: a run that misses any exits non-zero naming it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub p99_comment_ms: Option<f64>,
    pub p99_reserve_ms: Option<f64>,
    pub p99_stock_ms: Option<f64>,
    /// An auction's bid, send to answer.
    pub p99_bid_ms: Option<f64>,
    /// An auction's end (`ends_at`) to each viewer's receiving the close.
    pub p99_close_ms: Option<f64>,
    pub max_lost: Option<u64>,
    pub max_oversold: Option<u64>,
    pub max_leaked: Option<u64>,
    pub min_connect_success: Option<f64>,
    pub min_deliveries: Option<u64>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
        let s: Scenario = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
        anyhow::ensure!(s.rooms >= 1, "scenario: rooms must be at least 1");
        anyhow::ensure!(s.duration_s > 0.0, "scenario: duration_s must be positive");
        for h in &s.host {
            check_rates(h)?;
        }
        if let Some(shop) = &s.shop {
            shop.check()?;
        }
        if let Some(a) = &s.auction {
            a.check(s.viewer_count() / s.rooms, s.duration_s)?;
        }
        let mut s = s;
        s.mix = s
            .funnel
            .as_ref()
            .map(|f| Mix::new(f, s.buyers.is_some()))
            .transpose()?;
        Ok(s)
    }

    /// Total viewers.
    pub fn viewer_count(&self) -> usize {
        self.viewers.iter().map(|a| a.count).sum()
    }

    /// The room of viewer `i`.
    pub fn room_of(&self, i: usize) -> String {
        format!("{}{}", self.room_prefix, i % self.rooms)
    }
}

/// Refuses commission rates the hub would refuse: each 0 to 10000, together at most 10000.
fn check_rates(h: &HostAction) -> anyhow::Result<()> {
    let (commission_bps, affiliate_bps) = h.rates();
    for (key, bps) in [
        ("commission_bps", commission_bps),
        ("affiliate_bps", affiliate_bps),
    ] {
        anyhow::ensure!(
            bps.is_none_or(|b| b <= 10_000),
            "scenario: host action at {} s: {key} must be 0 to 10000",
            h.at_s()
        );
    }
    // The hub refuses a deal that would pay out more than its orders' totals.
    let paid = commission_bps.unwrap_or(0) + affiliate_bps.unwrap_or(0);
    anyhow::ensure!(
        paid <= 10_000,
        "scenario: host action at {} s: commission_bps + affiliate_bps must be at most \
         10000, not {paid}",
        h.at_s()
    );
    Ok(())
}

const WORDS: &[&str] = &[
    "love", "this", "so", "cute", "how", "much", "is", "the", "scarf", "shipping", "to", "canada",
    "wow", "need", "it", "my", "mom", "would", "adore", "that", "color", "does", "come", "in",
    "blue", "omg", "deal", "yes", "please", "hi", "from", "berlin", "size", "medium", "ordered",
];

fn text(rng: &mut StdRng, min: usize, max: usize) -> String {
    // Chat lengths skew short: most comments are a few words.
    let u: f64 = rng.random();
    let len = min + ((max.saturating_sub(min)) as f64 * u * u) as usize;
    let mut s = String::new();
    while s.len() < len {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    s.truncate(len.max(1));
    s
}

fn exp(rng: &mut StdRng, rate: f64) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    -u.ln() / rate
}

/// The client id of viewer `i` and of the host of room `r`.
pub fn viewer_id(i: usize) -> String {
    format!("v{i}")
}
pub fn host_id(room: &str) -> String {
    format!("h-{room}")
}

/// Turns the scenario into its timed actions (sorted by time). `shard` = (index, count) keeps
/// only this shard's viewers; hosts play in shard 0. The same scenario, seed and shard always
/// give the same plan: the random choices are drawn in one fixed order (churn, then each room's
/// chat and likes, then each room's host actions with their buyers), and the auction's from a
/// stream of their own.
pub fn plan(s: &Scenario, shard: (usize, usize)) -> Vec<Event> {
    let mut p = Planner::new(s);
    p.arrivals();
    p.churn();
    p.chat();
    p.host_actions();
    p.auction();
    let mut events = p.events;
    events.retain(|e| e.t_ms <= p.end);
    events.retain(|e| in_shard(e, shard));
    events.sort_by_key(|e| e.t_ms);
    events
}

/// Whether `e` is played by shard `(idx, count)`: viewer `vN` by shard `N % count`, anything
/// else (hosts) by shard 0.
fn in_shard(e: &Event, (idx, count): (usize, usize)) -> bool {
    match e
        .client
        .strip_prefix('v')
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(v) => v % count == idx,
        None => idx == 0,
    }
}

/// A plan being made: the scenario, its one random stream, and the events so far.
struct Planner<'a> {
    s: &'a Scenario,
    rng: StdRng,
    /// Where each viewer comes from.
    who: Vec<Attribution>,
    /// When each viewer first connects (ms).
    arrive: Vec<u64>,
    /// The show's end (ms).
    end: u64,
    events: Vec<Event>,
}

impl<'a> Planner<'a> {
    fn new(s: &'a Scenario) -> Self {
        let n = s.viewer_count();
        Planner {
            s,
            rng: StdRng::seed_from_u64(s.seed),
            who: match &s.mix {
                Some(mix) => mix.assign(s.seed, n),
                None => vec![Attribution::default(); n],
            },
            arrive: vec![0; n],
            end: ms(s.duration_s),
            events: Vec::new(),
        }
    }

    fn rooms(&self) -> Vec<String> {
        (0..self.s.rooms)
            .map(|r| format!("{}{r}", self.s.room_prefix))
            .collect()
    }

    /// The viewers of room index `r`.
    fn in_room(&self, r: usize) -> Vec<usize> {
        (0..self.arrive.len())
            .filter(|v| v % self.s.rooms == r)
            .collect()
    }

    fn push(&mut self, t_ms: u64, room: &str, client: &str, action: Action) {
        self.events.push(Event::new(t_ms, room, client, action));
    }

    /// Every viewer's first connect, by its arrival phase.
    fn arrivals(&mut self) {
        let s = self.s;
        let mut i = 0;
        for a in &s.viewers {
            for k in 0..a.count {
                let t = ms(arrival_time(a, k as f64 / a.count.max(1) as f64));
                self.arrive[i] = t;
                let connect = Action::Connect(self.who[i].clone());
                self.push(t, &s.room_of(i), &viewer_id(i), connect);
                i += 1;
            }
        }
    }

    /// Churn: a random connected viewer leaves and rejoins.
    fn churn(&mut self) {
        let (s, n) = (self.s, self.arrive.len());
        let Some(c) = &s.churn else { return };
        if c.leaves_per_s <= 0.0 || n == 0 {
            return;
        }
        let mut t = exp(&mut self.rng, c.leaves_per_s);
        let mut away_until = vec![0u64; n];
        while ms(t) < self.end {
            let v = self.rng.random_range(0..n);
            let at = ms(t);
            if at > self.arrive[v] + 500 && at > away_until[v] {
                let back = at + ms(c.away_s);
                away_until[v] = back + 500;
                let (room, id) = (s.room_of(v), viewer_id(v));
                self.push(at, &room, &id, Action::Leave);
                self.push(back, &room, &id, Action::Rejoin);
            }
            t += exp(&mut self.rng, c.leaves_per_s);
        }
    }

    /// Comments and likes in every room that has viewers.
    fn chat(&mut self) {
        let s = self.s;
        let Some(chat) = &s.chat else { return };
        for (r, room) in self.rooms().iter().enumerate() {
            let members = self.in_room(r);
            if members.is_empty() {
                continue;
            }
            if chat.comments_per_s > 0.0 {
                self.comments(chat, room, &members);
            }
            if chat.likes_per_s > 0.0 {
                self.likes(chat, room, &members);
            }
        }
    }

    fn comments(&mut self, chat: &Chat, room: &str, members: &[usize]) {
        let mut t = chat.start_s + exp(&mut self.rng, chat.comments_per_s);
        while ms(t) < self.end {
            let v = members[self.rng.random_range(0..members.len())];
            if ms(t) > self.arrive[v] + 200 {
                let body = text(&mut self.rng, chat.min_chars, chat.max_chars);
                self.push(ms(t), room, &viewer_id(v), Action::Comment { text: body });
            }
            t += exp(&mut self.rng, chat.comments_per_s);
        }
    }

    fn likes(&mut self, chat: &Chat, room: &str, members: &[usize]) {
        let per_burst = chat.like_burst.max(1) as f64;
        let mut t = chat.start_s + exp(&mut self.rng, chat.likes_per_s / per_burst);
        while ms(t) < self.end {
            let v = members[self.rng.random_range(0..members.len())];
            if ms(t) > self.arrive[v] + 200 {
                for k in 0..chat.like_burst.max(1) {
                    let at = ms(t) + u64::from(k) * 50;
                    self.push(at, room, &viewer_id(v), Action::Like { count: 1 });
                }
            }
            t += exp(&mut self.rng, chat.likes_per_s / per_burst);
        }
    }

    /// Each room's host connects at 0 and acts; buyers tap after each deal it opens.
    fn host_actions(&mut self) {
        for (r, room) in self.rooms().iter().enumerate() {
            let (s, host) = (self.s, host_id(room));
            self.push(0, room, &host, Action::Connect(Attribution::default()));
            for h in &s.host {
                let at = ms(h.at_s());
                let command = h.command();
                self.push(at, room, &host, Action::Host { command });
                if let (Some(deal), Some(b)) = (h.opens_deal(), &s.buyers) {
                    self.buyers(b, r, room, &deal, at);
                }
            }
        }
    }

    /// Each room's auction and the viewers who bid on it (module `auction`).
    fn auction(&mut self) {
        let Some(a) = &self.s.auction else { return };
        let mut rng = crate::auction::plan::rng(self.s.seed);
        for (r, room) in self.rooms().iter().enumerate() {
            let members: Vec<(String, u64)> = self
                .in_room(r)
                .into_iter()
                .map(|v| (viewer_id(v), self.arrive[v]))
                .collect();
            let planned = a.plan(&mut rng, room, &host_id(room), &members);
            self.events.extend(planned);
        }
    }

    /// The viewers of room `r` who tap reserve on `deal` (opened at `at` ms), and what each
    /// does with its hold.
    fn buyers(&mut self, b: &Buyers, r: usize, room: &str, deal: &Id, at: u64) {
        for v in self.in_room(r) {
            // The viewer's channel's buy propensity, else the global share: one draw
            // either way, so a [funnel] section moves no other random choice.
            let share = self
                .s
                .mix
                .as_ref()
                .and_then(|m| m.buy(&self.who[v]))
                .unwrap_or(b.share);
            if !self.rng.random_bool(share.clamp(0.0, 1.0)) {
                continue;
            }
            let u: f64 = self.rng.random();
            let off = if b.shape == "uniform" { u } else { u * u * u };
            let t = at + 20 + ms(b.window_s * off);
            if t <= self.arrive[v] {
                continue;
            }
            let rid = format!("r-{deal}-{v}");
            let reserve = Action::Reserve {
                request_id: rid.clone(),
                deal: deal.to_string(),
                qty: 1,
            };
            self.push(t, room, &viewer_id(v), reserve);
            let then = t + ms(b.think_s * (0.5 + self.rng.random::<f64>()));
            let x: f64 = self.rng.random();
            let after = if x < b.checkout {
                Action::Checkout {
                    request_id: format!("c-{deal}-{v}"),
                    of: rid,
                }
            } else if x < b.checkout + b.cancel {
                Action::Cancel {
                    request_id: format!("x-{deal}-{v}"),
                    of: rid,
                }
            } else {
                continue;
            };
            self.push(then, room, &viewer_id(v), after);
        }
    }
}

/// When the arrival at fraction `f` (0..1) of phase `a` connects, seconds.
fn arrival_time(a: &Arrival, f: f64) -> f64 {
    match a.shape {
        Shape::Step => a.at_s,
        Shape::Linear => a.at_s + a.over_s * f,
        Shape::Surge => {
            if f < 0.8 {
                a.at_s + a.over_s * 0.2 * (f / 0.8)
            } else {
                a.at_s + a.over_s * (0.2 + 0.8 * (f - 0.8) / 0.2)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_in_config_loads_and_plans() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("config/scenarios") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!plan(&s, (0, 1)).is_empty(), "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 4, "{seen} scenarios");
    }

    fn parse(text: &str) -> Scenario {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("livehub-scenario-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_file(&path);
        s
    }

    const SHOW: &str = r#"
name = "t"
duration_s = 10
rooms = 2
[[viewers]]
count = 300
over_s = 2
[churn]
leaves_per_s = 3
away_s = 1
[chat]
comments_per_s = 5
[[host]]
at_s = 3
action = "deal_start"
deal = "d1"
stock = 50
[buyers]
share = 0.3
window_s = 2
checkout = 0.5
cancel = 0.2
"#;

    /// The plan's actions with every connect made plain.
    fn without_attribution(events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .map(|mut e| {
                if matches!(e.action, Action::Connect(_)) {
                    e.action = Action::Connect(Attribution::default());
                }
                e
            })
            .collect()
    }

    #[test]
    fn a_channel_mix_without_buy_propensities_moves_no_other_choice_of_the_plan() {
        let plain = parse(SHOW);
        let mixed = parse(&format!(
            "{SHOW}\n[funnel.channels.paid]\nshare = 1\naff_share = 0.5\naffiliates = [\"bo\"]\n\
             [funnel.channels.short_video]\nshare = 1\nvia_query = true\n"
        ));
        let (a, b) = (plan(&plain, (0, 1)), plan(&mixed, (0, 1)));
        assert!(
            b.iter()
                .any(|e| matches!(&e.action, Action::Connect(w) if w.aff.is_some()))
        );
        assert_eq!(without_attribution(b), a);
    }

    #[test]
    fn a_channels_buy_propensity_replaces_the_global_share_for_its_viewers() {
        let s = parse(&format!(
            "{SHOW}\n[funnel.channels.paid]\nshare = 1\nbuy = 1.0\n[funnel.channels.live]\nshare = 1\nbuy = 0.0\n"
        ));
        let events = plan(&s, (0, 1));
        let channel: std::collections::HashMap<&str, Option<&str>> = events
            .iter()
            .filter_map(|e| match &e.action {
                Action::Connect(w) => Some((e.client.as_str(), w.channel.as_deref())),
                _ => None,
            })
            .collect();
        let buyers: std::collections::HashSet<&str> = events
            .iter()
            .filter(|e| matches!(e.action, Action::Reserve { .. }))
            .map(|e| e.client.as_str())
            .collect();
        assert!(!buyers.is_empty());
        assert!(buyers.iter().all(|c| channel[c] == Some("paid")));
        let paid = channel.values().filter(|c| **c == Some("paid")).count();
        // Every paid viewer taps unless it arrived after its tap time.
        assert!(buyers.len() * 10 >= paid * 8, "{} of {paid}", buyers.len());
    }

    #[test]
    fn deal_start_sends_its_commission_rates_and_zero_when_unset() {
        let s = parse(&SHOW.replace(
            "stock = 50",
            "stock = 50\ncommission_bps = 1000\naffiliate_bps = 250",
        ));
        let rates = |events: Vec<Event>| -> Vec<(u32, u32)> {
            events
                .iter()
                .filter_map(|e| match &e.action {
                    Action::Host {
                        command: ClientMsg::DealStart { deal, .. },
                    } => Some((deal.commission_bps, deal.affiliate_bps)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(rates(plan(&s, (0, 1)))[0], (1000, 250));
        // Left out, the rates are the hub's default.
        assert_eq!(rates(plan(&parse(SHOW), (0, 1)))[0], (0, 0));
        let bad = SHOW.replace("stock = 50", "stock = 50\ncommission_bps = 10001");
        let path =
            std::env::temp_dir().join(format!("livehub-bad-bps-{}.toml", std::process::id()));
        std::fs::write(&path, bad).expect("write");
        let e = Scenario::load(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(
            e.to_string().contains("commission_bps must be 0 to 10000"),
            "{e}"
        );
        let over = SHOW.replace(
            "stock = 50",
            "stock = 50\ncommission_bps = 6000\naffiliate_bps = 5000",
        );
        let path =
            std::env::temp_dir().join(format!("livehub-over-bps-{}.toml", std::process::id()));
        std::fs::write(&path, over).expect("write");
        let e = Scenario::load(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(e.to_string().contains("not 11000"), "{e}");
    }

    fn load_err(text: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("livehub-bad-host-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write");
        let e = Scenario::load(&path).unwrap_err();
        let _ = std::fs::remove_file(&path);
        e.to_string()
    }

    #[test]
    fn an_unknown_host_action_or_a_key_it_does_not_take_is_a_parse_error() {
        let e = load_err(&SHOW.replace("\"deal_start\"", "\"deal_sart\""));
        assert!(e.contains("unknown variant `deal_sart`"), "{e}");
        let e = load_err(&SHOW.replace("stock = 50", "stock = 50\ntext = \"hi\""));
        assert!(e.contains("unknown field `text`"), "{e}");
        let e = load_err(&SHOW.replace("deal = \"d1\"", "deal = \"not an id\""));
        assert!(e.contains("scenario"), "{e}");
    }

    #[test]
    fn every_host_action_builds_its_protocol_command_with_the_defaults() {
        let cmds: Vec<ClientMsg> = [
            "action = \"pin\"",
            "action = \"unpin\"",
            "action = \"deal_end\"",
            "action = \"announce\"",
        ]
        .iter()
        .map(|a| {
            let h: HostAction = toml::from_str(&format!("at_s = 1\n{a}")).expect("host action");
            h.command()
        })
        .collect();
        let json: Vec<String> = cmds
            .iter()
            .map(|c| serde_json::to_string(c).expect("json"))
            .collect();
        assert_eq!(
            json,
            [
                r#"{"type":"pin","product":{"id":"p1","title":"Holiday special","price_cents":1999,"currency":"USD"}}"#,
                r#"{"type":"unpin"}"#,
                r#"{"type":"deal_end","deal":"d1"}"#,
                r#"{"type":"announce","text":"Thanks for watching!"}"#,
            ]
        );
    }
}
