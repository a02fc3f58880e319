//! One endpoint's delivery, run on every node: the node that holds the endpoint's lease reads the
//! order feed from the endpoint's cursor a page at a time, POSTs each event (different orders at
//! once, up to `webhooks.concurrency`; one order's events one after another, in feed order),
//! retries each failure with backoff until `webhooks.retry_for_ms` after the event happened
//! (then it becomes a dead letter), and moves the cursor past the page only when every event of it is delivered or
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

/// Events read from the feed at a time.
const PAGE: usize = 200;
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
    /// A page was sent: look for the next at once.
    Sent,
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
                Ok(Step::Idle) => POLL,
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
        Ok(Step::Sent)
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
        // Indices, not references, in the stream's items: a future that holds a closure over
        // borrowed items cannot be proven Send for every lifetime.
        let mut orders: Vec<Vec<usize>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (at, e) in events.iter().enumerate() {
            let i = *index.entry(e.order.id.as_str()).or_insert_with(|| {
                orders.push(Vec::new());
                orders.len() - 1
            });
            orders[i].push(at);
        }
        futures_util::stream::iter(orders)
            .map(|evs| async move {
                let mut n = 0;
                for at in evs {
                    n += u64::from(self.send(events[at], cursor).await);
                }
                n
            })
            .buffer_unordered(self.settings.concurrency)
            .fold(0, |a, n| async move { a + n })
            .await
    }

    /// POSTs `e` until a 2xx (true) or until `retry_for_ms` after the event happened (its `ts`,
    /// on the deployment's clock, so a node that takes the endpoint over keeps the same
    /// deadline, and a backlog behind a long outage does not wait in line for its own clock to
    /// start): then it is a dead letter (false). An event already that old gets one attempt.
    async fn send(&self, e: &OrderEvent, cursor: &str) -> bool {
        let name = self.name();
        let body = match serde_json::to_vec(e) {
            Ok(b) => Bytes::from(b),
            Err(err) => {
                tracing::error!(event = %e.id, error = %err, "an order event livehub cannot encode");
                return false;
            }
        };
        let give_up_at = e.ts.saturating_add(self.settings.retry_for_ms);
        let mut attempt: u32 = 0;
        let delivered = loop {
            let t = crate::clock::now_ms() / 1000;
            let signature = sign::sign(&self.endpoint.secret, t, &body);
            let why = match self.poster.post(&self.url, &e.id, &signature, body.clone()).await {
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
                self.bury(e, cursor, attempt + 1, why).await;
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
        if delivered {
            self.meters.delivered.increment(1);
        }
        delivered
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
