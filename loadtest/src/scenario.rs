//! Scenario files (TOML, `config/scenarios/`): a show's timeline (viewers arriving, churn, chat,
//! the host's actions, buyers after each deal opens) and its service levels. `plan` turns a
//! scenario into the exact list of timed client actions a run plays, from a seed, so the same
//! scenario and seed always make the same plan.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

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

/// One host action, done in every room at `at_s`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostAction {
    pub at_s: f64,
    /// `pin`, `unpin`, `deal_start`, `deal_end`, `announce`.
    pub action: String,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub deal: Option<String>,
    #[serde(default)]
    pub price_cents: Option<u64>,
    #[serde(default)]
    pub stock: Option<u32>,
    #[serde(default)]
    pub per_user_limit: Option<u32>,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub text: Option<String>,
    /// `deal_start`: basis points (0..=10000) of each order's total paid to the host creator
    /// (the host token's `sub`); sent only when set, the hub's default is 0.
    #[serde(default)]
    pub commission_bps: Option<u32>,
    /// `deal_start`: basis points paid to the buyer's signed affiliate, if any.
    #[serde(default)]
    pub affiliate_bps: Option<u32>,
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
            anyhow::ensure!(
                ["pin", "unpin", "deal_start", "deal_end", "announce"].contains(&h.action.as_str()),
                "scenario: unknown host action {:?}",
                h.action
            );
            for (key, bps) in [
                ("commission_bps", h.commission_bps),
                ("affiliate_bps", h.affiliate_bps),
            ] {
                anyhow::ensure!(
                    bps.is_none_or(|b| b <= 10_000),
                    "scenario: host action at {} s: {key} must be 0 to 10000",
                    h.at_s
                );
            }
            // The hub refuses a deal that would pay out more than its orders' totals.
            let paid = h.commission_bps.unwrap_or(0) + h.affiliate_bps.unwrap_or(0);
            anyhow::ensure!(
                paid <= 10_000,
                "scenario: host action at {} s: commission_bps + affiliate_bps must be at most \
                 10000, not {paid}",
                h.at_s
            );
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
/// only this shard's viewers; hosts play in shard 0.
pub fn plan(s: &Scenario, shard: (usize, usize)) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let n = s.viewer_count();
    let who: Vec<Attribution> = match &s.mix {
        Some(mix) => mix.assign(s.seed, n),
        None => vec![Attribution::default(); n],
    };
    let ms = |t: f64| (t * 1000.0).round() as u64;
    let end = ms(s.duration_s);
    let mut events = Vec::new();
    // Arrivals.
    let mut arrive = vec![0u64; n];
    let mut i = 0;
    for a in &s.viewers {
        for k in 0..a.count {
            let f = k as f64 / a.count.max(1) as f64;
            let t = match a.shape {
                Shape::Step => a.at_s,
                Shape::Linear => a.at_s + a.over_s * f,
                Shape::Surge => {
                    if f < 0.8 {
                        a.at_s + a.over_s * 0.2 * (f / 0.8)
                    } else {
                        a.at_s + a.over_s * (0.2 + 0.8 * (f - 0.8) / 0.2)
                    }
                }
            };
            arrive[i] = ms(t);
            events.push(Event::new(
                ms(t),
                &s.room_of(i),
                &viewer_id(i),
                Action::Connect(who[i].clone()),
            ));
            i += 1;
        }
    }
    let rooms: Vec<String> = (0..s.rooms)
        .map(|r| format!("{}{r}", s.room_prefix))
        .collect();
    let in_room = |r: usize| (0..n).filter(move |v| v % s.rooms == r);
    // Churn: a random connected viewer leaves and rejoins.
    if let Some(c) = &s.churn
        && c.leaves_per_s > 0.0
        && n > 0
    {
        let mut t = exp(&mut rng, c.leaves_per_s);
        let mut away_until = vec![0u64; n];
        while ms(t) < end {
            let v = rng.random_range(0..n);
            let at = ms(t);
            if at > arrive[v] + 500 && at > away_until[v] {
                let back = at + ms(c.away_s);
                away_until[v] = back + 500;
                events.push(Event::new(at, &s.room_of(v), &viewer_id(v), Action::Leave));
                events.push(Event::new(
                    back,
                    &s.room_of(v),
                    &viewer_id(v),
                    Action::Rejoin,
                ));
            }
            t += exp(&mut rng, c.leaves_per_s);
        }
    }
    // Chat and likes.
    if let Some(chat) = &s.chat {
        for (r, room) in rooms.iter().enumerate() {
            let members: Vec<usize> = in_room(r).collect();
            if members.is_empty() {
                continue;
            }
            if chat.comments_per_s > 0.0 {
                let mut t = chat.start_s + exp(&mut rng, chat.comments_per_s);
                while ms(t) < end {
                    let v = members[rng.random_range(0..members.len())];
                    if ms(t) > arrive[v] + 200 {
                        let body = text(&mut rng, chat.min_chars, chat.max_chars);
                        events.push(Event::new(
                            ms(t),
                            room,
                            &viewer_id(v),
                            Action::Comment { text: body },
                        ));
                    }
                    t += exp(&mut rng, chat.comments_per_s);
                }
            }
            if chat.likes_per_s > 0.0 {
                let per_burst = chat.like_burst.max(1) as f64;
                let mut t = chat.start_s + exp(&mut rng, chat.likes_per_s / per_burst);
                while ms(t) < end {
                    let v = members[rng.random_range(0..members.len())];
                    if ms(t) > arrive[v] + 200 {
                        for k in 0..chat.like_burst.max(1) {
                            events.push(Event::new(
                                ms(t) + u64::from(k) * 50,
                                room,
                                &viewer_id(v),
                                Action::Like { count: 1 },
                            ));
                        }
                    }
                    t += exp(&mut rng, chat.likes_per_s / per_burst);
                }
            }
        }
    }
    // Host actions and buyers.
    for (r, room) in rooms.iter().enumerate() {
        events.push(Event::new(
            0,
            room,
            &host_id(room),
            Action::Connect(Attribution::default()),
        ));
        for h in &s.host {
            let at = ms(h.at_s);
            let product = h.product.clone().unwrap_or_else(|| "p1".into());
            let cmd = match h.action.as_str() {
                "pin" => serde_json::json!({"type": "pin", "product": {"id": product,
                    "title": h.title.clone().unwrap_or_else(|| "Holiday special".into()),
                    "price_cents": h.price_cents.unwrap_or(1999), "currency": "USD"}}),
                "unpin" => serde_json::json!({"type": "unpin"}),
                "deal_start" => {
                    let mut cmd = serde_json::json!({"type": "deal_start", "deal": {
                    "id": h.deal.clone().unwrap_or_else(|| "d1".into()), "product_id": product,
                    "title": h.title.clone().unwrap_or_else(|| "Holiday special".into()),
                    "price_cents": h.price_cents.unwrap_or(999), "currency": "USD",
                    "stock": h.stock.unwrap_or(100), "per_user_limit": h.per_user_limit.unwrap_or(1),
                    "duration_ms": ms(h.duration_s.unwrap_or(60.0))}});
                    if let Some(bps) = h.commission_bps {
                        cmd["deal"]["commission_bps"] = bps.into();
                    }
                    if let Some(bps) = h.affiliate_bps {
                        cmd["deal"]["affiliate_bps"] = bps.into();
                    }
                    cmd
                }
                "deal_end" => {
                    serde_json::json!({"type": "deal_end", "deal": h.deal.clone().unwrap_or_else(|| "d1".into())})
                }
                _ => {
                    serde_json::json!({"type": "announce", "text": h.text.clone().unwrap_or_else(|| "Thanks for watching!".into())})
                }
            };
            events.push(Event::new(
                at,
                room,
                &host_id(room),
                Action::Host { command: cmd },
            ));
            if h.action == "deal_start"
                && let Some(b) = &s.buyers
            {
                let deal = h.deal.clone().unwrap_or_else(|| "d1".into());
                for v in in_room(r) {
                    // The viewer's channel's buy propensity, else the global share: one draw
                    // either way, so a [funnel] section moves no other random choice.
                    let share = s
                        .mix
                        .as_ref()
                        .and_then(|m| m.buy(&who[v]))
                        .unwrap_or(b.share);
                    if !rng.random_bool(share.clamp(0.0, 1.0)) {
                        continue;
                    }
                    let u: f64 = rng.random();
                    let off = if b.shape == "uniform" { u } else { u * u * u };
                    let t = at + 20 + ms(b.window_s * off);
                    if t <= arrive[v] {
                        continue;
                    }
                    let rid = format!("r-{deal}-{v}");
                    events.push(Event::new(
                        t,
                        room,
                        &viewer_id(v),
                        Action::Reserve {
                            request_id: rid.clone(),
                            deal: deal.clone(),
                            qty: 1,
                        },
                    ));
                    let then = t + ms(b.think_s * (0.5 + rng.random::<f64>()));
                    let x: f64 = rng.random();
                    if x < b.checkout {
                        events.push(Event::new(
                            then,
                            room,
                            &viewer_id(v),
                            Action::Checkout {
                                request_id: format!("c-{deal}-{v}"),
                                of: rid,
                            },
                        ));
                    } else if x < b.checkout + b.cancel {
                        events.push(Event::new(
                            then,
                            room,
                            &viewer_id(v),
                            Action::Cancel {
                                request_id: format!("x-{deal}-{v}"),
                                of: rid,
                            },
                        ));
                    }
                }
            }
        }
    }
    events.retain(|e| e.t_ms <= end);
    let (idx, count) = shard;
    events.retain(|e| {
        if let Some(v) = e
            .client
            .strip_prefix('v')
            .and_then(|v| v.parse::<usize>().ok())
        {
            v % count == idx
        } else {
            idx == 0
        }
    });
    events.sort_by_key(|e| e.t_ms);
    events
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
    fn deal_start_sends_its_commission_rates_only_when_set() {
        let s = parse(&SHOW.replace(
            "stock = 50",
            "stock = 50\ncommission_bps = 1000\naffiliate_bps = 250",
        ));
        let events = plan(&s, (0, 1));
        let starts: Vec<&serde_json::Value> = events
            .iter()
            .filter_map(|e| match &e.action {
                Action::Host { command } => Some(command),
                _ => None,
            })
            .collect();
        assert_eq!(starts[0]["deal"]["commission_bps"], 1000);
        assert_eq!(starts[0]["deal"]["affiliate_bps"], 250);
        let plain = plan(&parse(SHOW), (0, 1));
        assert!(plain.iter().any(|e| matches!(&e.action,
            Action::Host { command } if command["deal"].get("commission_bps").is_none() && command["type"] == "deal_start")));
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
}
