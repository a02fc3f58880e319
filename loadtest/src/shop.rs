//! The shop (issue 23): a scenario's `[shop]` plays the shop's backend while the show runs. It
//! follows the hub's order feed with a merchant token from where it stood at the start, pays a
//! share of the new pending orders, fails another, and leaves the rest to expire; then, once
//! every order it left must have expired, it checks the feed against its own ground truth: each
//! order's events exactly `created` then the status the hub answered its call with (or
//! `expired`), every event id once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use livehub::auth::{Authenticator, Claims};
use livehub::orders::{OrderEvent, OrderEventKind, OrderStatus, OrdersPage};
use livehub::protocol::Role;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// A scenario's `[shop]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Shop {
    /// Share of the orders the shop pays (0 to 1).
    pub pay: f64,
    /// Share it fails (0 to 1; with `pay` at most 1). The rest it leaves to expire.
    pub fail: f64,
    /// How long after seeing an order the shop settles it.
    #[serde(default = "settle_after_ms")]
    pub settle_after_ms: u64,
    /// The hub's `orders.payment_timeout_ms`: how long the shop waits at the end for the
    /// orders it left to expire.
    pub payment_timeout_ms: u64,
}

fn settle_after_ms() -> u64 {
    300
}

impl Shop {
    /// Shares within 0 to 1, adding up to at most 1.
    pub fn check(&self) -> anyhow::Result<()> {
        let ok = |x: f64| (0.0..=1.0).contains(&x);
        anyhow::ensure!(
            ok(self.pay) && ok(self.fail) && self.pay + self.fail <= 1.0,
            "scenario: [shop] pay and fail are shares from 0 to 1 adding up to at most 1"
        );
        Ok(())
    }

    /// What the shop does with `order` (the same every run: by a hash of its id).
    fn decide(&self, order: &str) -> Option<&'static str> {
        let h = order.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        let u = (h % 10_000) as f64 / 10_000.0;
        if u < self.pay {
            Some("paid")
        } else if u < self.pay + self.fail {
            Some("failed")
        } else {
            None
        }
    }
}

/// What the shop saw and checked, in the run's report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShopReport {
    /// Orders made during the run (their `created` seen in the feed).
    pub orders: u64,
    pub paid: u64,
    pub failed: u64,
    pub expired: u64,
    /// Settle calls answered 409 (the order had already ended otherwise, e.g. expired).
    pub late: u64,
    /// Settle calls that failed (network, 5xx), each retried until the end.
    pub call_errors: u64,
    /// Event ids the feed gave twice.
    pub duplicates: u64,
    /// Orders whose events in the feed differ from the shop's ground truth (the first 20).
    pub mismatches: Vec<String>,
    pub mismatch_count: u64,
}

#[derive(Default)]
struct State {
    ids: HashSet<String>,
    duplicates: u64,
    /// Each order's event kinds in feed order (only orders created after the start).
    events: BTreeMap<String, Vec<OrderEventKind>>,
    /// The status the hub answered each settle call with.
    answered: HashMap<String, OrderStatus>,
    late: u64,
    call_errors: u64,
    last_created_ms: u64,
}

/// A running shop.
pub struct ShopRun {
    shop: Shop,
    state: Arc<Mutex<State>>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn merchant(auth: &Authenticator) -> anyhow::Result<String> {
    Ok(auth.mint(&Claims {
        sub: "loadtest-shop".into(),
        name: None,
        role: Role::Merchant,
        room: "*".into(),
        exp: Some(livehub::clock::now_ms() / 1000 + 24 * 3600),
        src: None,
        aff: None,
    })?)
}

/// One page of the feed after `cursor` from `http`.
async fn page(http: &str, token: &str, cursor: Option<&str>) -> anyhow::Result<OrdersPage> {
    let url = match cursor {
        Some(c) => format!("{http}/api/orders/events?limit=1000&after={c}"),
        None => format!("{http}/api/orders/events?limit=1000"),
    };
    let (status, body) = livehub::http_client::request("GET", &url, Some(token), None).await?;
    anyhow::ensure!(status == 200, "order feed: HTTP {status}: {body}");
    Ok(serde_json::from_str(&body)?)
}

/// Starts the shop on the hub at `http` (`http://HOST:PORT`), after every event already in the
/// feed.
pub async fn start(http: String, auth: &Authenticator, shop: Shop) -> anyhow::Result<ShopRun> {
    let token = merchant(auth)?;
    let mut cursor: Option<String> = None;
    loop {
        let p = page(&http, &token, cursor.as_deref()).await?;
        cursor = Some(p.cursor);
        if !p.more {
            break;
        }
    }
    let state = Arc::new(Mutex::new(State::default()));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = {
        let (state, shop) = (Arc::clone(&state), shop.clone());
        tokio::spawn(async move {
            let mut cursor = cursor.unwrap_or_default();
            loop {
                match page(&http, &token, Some(&cursor)).await {
                    Ok(p) => {
                        for e in &p.events {
                            take(&shop, &state, e, &http, &token);
                        }
                        cursor = p.cursor;
                        if p.more {
                            continue;
                        }
                    }
                    Err(e) => eprintln!("shop: {e}"),
                }
                if *stopped.borrow() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stopped.changed() => {}
                }
            }
        })
    };
    Ok(ShopRun {
        shop,
        state,
        stop,
        task,
    })
}

/// Notes `e`; a new pending order is settled (or not) `settle_after_ms` later.
fn take(shop: &Shop, state: &Arc<Mutex<State>>, e: &OrderEvent, http: &str, token: &str) {
    let order = e.order.id.to_string();
    let mut s = state.lock();
    if !s.ids.insert(e.id.clone()) {
        s.duplicates += 1;
        return;
    }
    if e.kind == OrderEventKind::Created {
        s.last_created_ms = s.last_created_ms.max(e.ts);
        s.events.entry(order.clone()).or_default().push(e.kind);
    } else if let Some(kinds) = s.events.get_mut(&order) {
        kinds.push(e.kind);
        return;
    } else {
        return; // an order made before the shop started
    }
    let Some(what) = shop.decide(&order) else {
        return;
    };
    let (state, http, token, after) = (
        Arc::clone(state),
        http.to_owned(),
        token.to_owned(),
        shop.settle_after_ms,
    );
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(after)).await;
        let url = format!("{http}/api/orders/{order}/{what}");
        for _ in 0..20 {
            match livehub::http_client::request("POST", &url, Some(&token), None).await {
                Ok((200 | 409, body)) => {
                    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    let status = doc["order"]["status"].as_str().and_then(OrderStatus::parse);
                    let mut s = state.lock();
                    if body.contains(r#""code":"conflict""#) {
                        s.late += 1;
                    }
                    if let Some(st) = status {
                        s.answered.insert(order, st);
                    }
                    return;
                }
                _ => state.lock().call_errors += 1,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

impl ShopRun {
    /// Waits until every order left unpaid must have expired (and been told in the feed), stops
    /// following, and checks the feed against what the shop did.
    pub async fn finish(self) -> ShopReport {
        let last = self.state.lock().last_created_ms;
        let until = last + self.shop.settle_after_ms + self.shop.payment_timeout_ms + 3_000;
        let now = livehub::clock::now_ms();
        if last > 0 && until > now {
            tokio::time::sleep(Duration::from_millis(until - now)).await;
        }
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let s = self.state.lock();
        let mut r = ShopReport {
            orders: s.events.len() as u64,
            late: s.late,
            call_errors: s.call_errors,
            duplicates: s.duplicates,
            ..ShopReport::default()
        };
        for (order, kinds) in &s.events {
            let expected = match s.answered.get(order) {
                Some(OrderStatus::Paid) => OrderEventKind::Paid,
                Some(OrderStatus::Failed) => OrderEventKind::Failed,
                _ => OrderEventKind::Expired,
            };
            match kinds.last() {
                Some(OrderEventKind::Paid) => r.paid += 1,
                Some(OrderEventKind::Failed) => r.failed += 1,
                Some(OrderEventKind::Expired) => r.expired += 1,
                _ => {}
            }
            if kinds.as_slice() != [OrderEventKind::Created, expected] {
                r.mismatch_count += 1;
                if r.mismatches.len() < 20 {
                    r.mismatches.push(format!(
                        "order {order}: feed {kinds:?}, expected [Created, {expected:?}]"
                    ));
                }
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shop_pays_fails_and_leaves_orders_in_its_shares() {
        let shop = Shop {
            pay: 0.7,
            fail: 0.1,
            settle_after_ms: 0,
            payment_timeout_ms: 1000,
        };
        let mut n: BTreeMap<Option<&str>, u32> = BTreeMap::new();
        for i in 0..10_000 {
            *n.entry(shop.decide(&format!("o{i:08x}"))).or_default() += 1;
        }
        let share = |k| f64::from(n.get(&k).copied().unwrap_or(0)) / 10_000.0;
        assert!((share(Some("paid")) - 0.7).abs() < 0.03, "{n:?}");
        assert!((share(Some("failed")) - 0.1).abs() < 0.03, "{n:?}");
        assert!((share(None) - 0.2).abs() < 0.03, "{n:?}");
        assert_eq!(shop.decide("o1"), shop.decide("o1"), "the same every run");
        let bad = Shop {
            pay: 0.8,
            fail: 0.3,
            ..shop
        };
        assert!(bad.check().is_err());
    }
}
