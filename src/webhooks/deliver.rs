//! One endpoint's delivery, run on every node: the node that holds the endpoint's lease reads the
//! order feed from the endpoint's cursor a page at a time (at once while pages come full, else a
//! poll later), POSTs each event, or batches of them for an endpoint with `batch` above 1
//! (different orders at once, up to `webhooks.concurrency`; one order's events one after
//! another, in feed order), retries each failed request with backoff until
//! `webhooks.retry_for_ms` after its oldest event happened (then its events become dead
//! letters), and moves the cursor past the page only when every event of it is delivered or
//! dead. A node that dies mid-page leaves the cursor before the page: the next holder sends the
//! page again (at least once; receivers skip ids they saw). Nothing here is on a buyer's path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::send::{Posted, Poster};
use super::store::{DeadLetter, DeliveryStore, FROM_OLDEST, Note, StoreError};
use super::{backoff, sign};
use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::inventory::{Inventory, InventoryError};
use crate::metrics::{
    WEBHOOKS_DEAD, WEBHOOKS_DELIVERED, WEBHOOKS_FAILED, WEBHOOKS_LAG, WEBHOOKS_RETRYING,
};
use crate::orders::OrderEvent;

/// Events read from the feed at a time (a poll's worth at a few thousand orders a second).
const PAGE: usize = 1000;
/// How often a holder with nothing to send looks at the feed again.
const POLL: Duration = Duration::from_millis(200);

/// Why one step of a delivery did not happen (it is tried again).
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("delivery state: {0}")]
    Store(#[from] StoreError),
    #[error("order feed: {0}")]
    Feed(#[from] InventoryError),
}

/// What a step came to.
enum Step {
    /// A full page was sent and more are waiting: read the next at once.
    Sent,
    /// The last page of what was there was sent: wait a poll before reading again, so that
    /// steady traffic goes out a poll's worth at a time (each read and cursor move costs a few
    /// Redis calls, which a read per event or two would multiply).
    CaughtUp,
    /// Nothing new in the feed.
    Idle,
    /// Another node delivers this endpoint.
    NotHolder,
}

/// One endpoint's delivery on this node.
pub struct Delivery {
    endpoint: WebhookEndpoint,
    url: http::Uri,
    settings: WebhooksConfig,
    inventory: Arc<dyn Inventory>,
    store: Arc<dyn DeliveryStore>,
    poster: Arc<Poster>,
    node: String,
    /// Events of this node's current page waiting for a retry.
    retrying: AtomicU64,
    /// This endpoint's metric handles, registered once (not looked up per event).
    meters: Meters,
}

/// The `livehub_webhooks_*` series of one endpoint.
struct Meters {
    delivered: metrics::Counter,
    failed: metrics::Counter,
    dead: metrics::Counter,
    retrying: metrics::Gauge,
    lag: metrics::Gauge,
}

impl Meters {
    fn of(endpoint: &str) -> Self {
        let label = || ("endpoint", endpoint.to_owned());
        Meters {
            delivered: metrics::counter!(WEBHOOKS_DELIVERED, &[label()]),
            failed: metrics::counter!(WEBHOOKS_FAILED, &[label()]),
            dead: metrics::counter!(WEBHOOKS_DEAD, &[label()]),
            retrying: metrics::gauge!(WEBHOOKS_RETRYING, &[label()]),
            lag: metrics::gauge!(WEBHOOKS_LAG, &[label()]),
        }
    }
}

impl Delivery {
    /// A delivery of `endpoint` (its URL checked when the configuration was).
    pub fn new(
        endpoint: WebhookEndpoint,
        settings: WebhooksConfig,
        inventory: Arc<dyn Inventory>,
        store: Arc<dyn DeliveryStore>,
        poster: Arc<Poster>,
        node: String,
    ) -> Option<Self> {
        let url = endpoint.url.parse().ok()?;
        let meters = Meters::of(&endpoint.name);
        Some(Delivery {
            meters,
            endpoint,
            url,
            settings,
            inventory,
            store,
            poster,
            node,
            retrying: AtomicU64::new(0),
        })
    }

    /// Delivers until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let step = tokio::select! {
                _ = stop.cancelled() => return,
                step = self.step() => step,
            };
            wait = match step {
                Ok(Step::Sent) => Duration::ZERO,
                Ok(Step::Idle | Step::CaughtUp) => POLL,
                Ok(Step::NotHolder) => self.lease() / 3,
                Err(e) => {
                    crate::quiet::warn("webhook delivery", &e);
                    POLL * 5
                }
            };
        }
    }

    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.settings.lease_ms)
    }

    /// Takes (or keeps) the lease, then sends the next page and moves the cursor past it.
    async fn step(&self) -> Result<Step, StepError> {
        let name = self.name();
        if !self
            .store
            .lease(name, &self.node, self.settings.lease_ms)
            .await?
        {
            return Ok(Step::NotHolder);
        }
        let Some(cursor) = self.store.cursor(name).await? else {
            // A new endpoint gets the events from now on (`webhooks replay --from` for older).
            let end = self.inventory.order_feed_end().await?;
            self.store.advance(name, None, &end).await?;
            return Ok(Step::Sent);
        };
        let from = (cursor != FROM_OLDEST).then_some(cursor.as_str());
        let page = self.inventory.order_events(from, PAGE).await?;
        let now = crate::clock::now_ms();
        let lag = page.events.first().map_or(0, |e| now.saturating_sub(e.ts));
        self.meters.lag.set(lag as f64 / 1000.0);
        if page.events.is_empty() {
            return Ok(Step::Idle);
        }
        let wanted: Vec<&OrderEvent> = page
            .events
            .iter()
            .filter(|e| self.endpoint.events.is_empty() || self.endpoint.events.contains(&e.kind))
            .collect();
        let delivered = tokio::select! {
            n = self.send_page(&wanted, &cursor) => n,
            () = self.keep_lease() => return Ok(Step::NotHolder),
        };
        let note = Note {
            delivered,
            retrying: Some(0),
            ..Note::default()
        };
        self.store.note(name, &note).await?;
        self.store.advance(name, Some(&cursor), &page.cursor).await?;
        Ok(if page.more { Step::Sent } else { Step::CaughtUp })
    }

    /// Renews the lease every third of its life; returns when another node has it.
    async fn keep_lease(&self) {
        loop {
            tokio::time::sleep(self.lease() / 3).await;
            if let Ok(false) = self
                .store
                .lease(self.name(), &self.node, self.settings.lease_ms)
                .await
            {
                return;
            }
        }
    }

    /// Sends `events` (read after `cursor`): each order's in order, orders side by side. The
    /// number delivered (the rest are dead letters).
    async fn send_page(&self, events: &[&OrderEvent], cursor: &str) -> u64 {
        let lanes = lanes(events, self.endpoint.batch, self.settings.concurrency);
        futures_util::stream::iter(lanes)
            .map(|lane| async move {
                let mut n = 0;
                for request in lane {
                    let batch: Vec<&OrderEvent> = request.iter().map(|&at| events[at]).collect();
                    n += self.send(&batch, cursor).await;
                }
                n
            })
            .buffer_unordered(self.settings.concurrency)
            .fold(0, |a, n| async move { a + n })
            .await
    }

    /// The body of one POST: the event itself, or with `batch` above 1 `{"events": [...]}`.
    fn body(&self, batch: &[&OrderEvent]) -> serde_json::Result<Bytes> {
        #[derive(serde::Serialize)]
        struct Batch<'a> {
            events: &'a [&'a OrderEvent],
        }
        let bytes = match batch {
            [one] if self.endpoint.batch == 1 => serde_json::to_vec(one)?,
            events => serde_json::to_vec(&Batch { events })?,
        };
        Ok(Bytes::from(bytes))
    }

    /// POSTs `batch` (one request) until a 2xx (the number of events in it) or until
    /// `retry_for_ms` after its oldest event happened (its `ts`, on the deployment's clock, so a
    /// node that takes the endpoint over keeps the same deadline, and a backlog behind a long
    /// outage does not wait in line for its own clock to start): then each of its events is a
    /// dead letter (0). Events already that old get one attempt.
    async fn send(&self, batch: &[&OrderEvent], cursor: &str) -> u64 {
        let name = self.name();
        let Some(first) = batch.first() else {
            return 0;
        };
        let body = match self.body(batch) {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(event = %first.id, error = %err, "an order event livehub cannot encode");
                return 0;
            }
        };
        // The id header names the one event of an unbatched request.
        let id = (self.endpoint.batch == 1).then_some(first.id.as_str());
        let oldest = batch.iter().map(|e| e.ts).min().unwrap_or(first.ts);
        let give_up_at = oldest.saturating_add(self.settings.retry_for_ms);
        let mut attempt: u32 = 0;
        let delivered = loop {
            let t = crate::clock::now_ms() / 1000;
            let signature = sign::sign(&self.endpoint.secret, t, &body);
            let posted = self
                .poster
                .post(&self.url, id, &signature, body.clone())
                .await;
            let why = match posted {
                Posted::Delivered(_) => break true,
                Posted::Failed(why) => why,
            };
            self.meters.failed.increment(1);
            let note = Note {
                failures: 1,
                error: Some((why.clone(), crate::clock::now_ms())),
                ..Note::default()
            };
            let _ = self.store.note(name, &note).await;
            let now = crate::clock::now_ms();
            if now >= give_up_at {
                for e in batch {
                    self.bury(e, cursor, attempt + 1, why.clone()).await;
                }
                break false;
            }
            if attempt == 0 {
                self.retrying_by(1);
            }
            let pause = backoff::delay(
                attempt,
                self.settings.backoff_min_ms,
                self.settings.backoff_max_ms,
                rand::random::<f64>(),
            );
            tokio::time::sleep(pause.min(Duration::from_millis(give_up_at - now))).await;
            attempt += 1;
        };
        if attempt > 0 {
            self.retrying_by(-1);
        }
        if !delivered {
            return 0;
        }
        let n = batch.len() as u64;
        self.meters.delivered.increment(n);
        n
    }

    fn retrying_by(&self, d: i64) {
        let now = if d > 0 {
            self.retrying.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.retrying.fetch_sub(1, Ordering::Relaxed).saturating_sub(1)
        };
        self.meters.retrying.set(now as f64);
    }

    async fn bury(&self, e: &OrderEvent, cursor: &str, attempts: u32, error: String) {
        let name = self.name();
        tracing::warn!(
            endpoint = name,
            event = %e.id,
            attempts,
            error = %error,
            "webhook event given up after webhooks.retry_for_ms: a dead letter (livehub webhooks \
             status; livehub webhooks replay sends it again)"
        );
        self.meters.dead.increment(1);
        let letter = DeadLetter {
            event: e.id.clone(),
            order: e.order.id.to_string(),
            kind: e.kind,
            from: cursor.to_owned(),
            attempts,
            error,
            at: crate::clock::now_ms(),
        };
        // Retried: a dead letter that cannot be written would be an event lost to the operator.
        while let Err(err) = self.store.bury(name, &letter).await {
            crate::quiet::warn("webhook dead letter not written", &err);
            tokio::time::sleep(POLL * 5).await;
        }
    }
}

/// How a page of `events` is sent: lanes that run side by side (up to `webhooks.concurrency`),
/// each a list of requests sent one after another, each request a list of indices into
/// `events`. Every order's events are in one lane, in feed order, so they arrive in order. With
/// `batch` 1 each order is a lane of one-event requests (one slow order holds up no other); above
/// 1 the orders are dealt into `concurrency` lanes by their id, each lane's events in feed order
/// cut into requests of up to `batch`.
fn lanes(events: &[&OrderEvent], batch: usize, concurrency: usize) -> Vec<Vec<Vec<usize>>> {
    if batch <= 1 {
        let mut orders: Vec<Vec<Vec<usize>>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (at, e) in events.iter().enumerate() {
            let i = *index.entry(e.order.id.as_str()).or_insert_with(|| {
                orders.push(Vec::new());
                orders.len() - 1
            });
            orders[i].push(vec![at]);
        }
        return orders;
    }
    let count = concurrency.max(1);
    let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (at, e) in events.iter().enumerate() {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(e.order.id.as_str(), &mut h);
        let lane = (std::hash::Hasher::finish(&h) % count as u64) as usize;
        lanes[lane].push(at);
    }
    lanes
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.chunks(batch).map(<[usize]>::to_vec).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::OrderEventKind;

    fn event(i: usize, order: &str) -> OrderEvent {
        let doc = serde_json::json!({
            "id": order, "room": "r", "deal": "d", "product_id": "p", "title": "t", "user": "u",
            "qty": 1, "price_cents": 100, "total_cents": 100, "currency": "USD",
            "status": "paid", "creator": "c", "channel": "live", "aff": null,
            "commission_cents": 0, "affiliate_cents": 0
        });
        OrderEvent {
            id: format!("e{i}"),
            kind: OrderEventKind::Created,
            ts: i as u64,
            order: serde_json::from_value(doc).expect("an order"),
        }
    }

    /// Every event once; each order's events in one lane, in feed order; no request over `batch`.
    fn check(events: &[&OrderEvent], lanes: &[Vec<Vec<usize>>], batch: usize) {
        let mut seen: Vec<usize> = lanes.iter().flatten().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..events.len()).collect::<Vec<_>>(), "every event once");
        for lane in lanes {
            assert!(lane.iter().all(|r| !r.is_empty() && r.len() <= batch));
            let order: Vec<usize> = lane.iter().flatten().copied().collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "feed order in a lane");
        }
        for e in events {
            let holding = lanes
                .iter()
                .filter(|l| l.iter().flatten().any(|&at| events[at].order.id == e.order.id))
                .count();
            assert_eq!(holding, 1, "order {} in one lane", e.order.id);
        }
    }

    #[test]
    fn unbatched_lanes_are_one_per_order_and_batched_ones_cut_requests_in_feed_order() {
        let owned: Vec<OrderEvent> = (0..40).map(|i| event(i, &format!("o{}", i % 7))).collect();
        let events: Vec<&OrderEvent> = owned.iter().collect();
        let one = lanes(&events, 1, 4);
        assert_eq!(one.len(), 7, "a lane per order");
        check(&events, &one, 1);
        for (batch, concurrency) in [(3, 4), (100, 4), (5, 1), (2, 64)] {
            let batched = lanes(&events, batch, concurrency);
            assert!(batched.len() <= concurrency.min(7));
            check(&events, &batched, batch);
        }
        assert!(lanes(&[], 10, 4).is_empty());
    }
}
