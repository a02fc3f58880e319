//! The Redis backend: every operation is one Lua script (EVALSHA, reloaded on NOSCRIPT) that does
//! its whole check-and-write atomically. All keys of one deal share the hash tag of its room's
//! order-feed partition, `{PREFIX:pNN}` (see `keys`), so the same scripts run on Redis Cluster
//! and append the order events they make to the feed in the same step (`feed` reads it).
//!
//! Besides the per-deal keys the backend keeps three small indexes, written before a deal's
//! script runs (so a crash in between leaves an index entry for a deal that does not exist, which
//! every reader tolerates): `PREFIX:deals` (every deal that may still hold stock; the sweeper
//! removes a deal once it has ended and holds nothing), `PREFIX:room:ROOM:deal-index` (deals of
//! a room by when their keys expire, for hubs to sync; the key expires with its last deal) and
//! `PREFIX:dealref:DIGEST` (which deal a reservation id belongs to; it expires after the deal's
//! keys). Reservation and order ids carry the digest, drawn at random at each start, so a deal
//! id started again after its keys expired never repeats an id.
//!
//! Time: with [`ScriptClock::Redis`] (what a hub runs) the scripts read Redis's clock (`TIME`)
//! for holds, deal ends and sweeps, so every node times them alike whatever its own clock says;
//! the `now` the trait passes is then used only for this node's own views and index bookkeeping
//! (see [`crate::clock`]). Every key has a lifetime:
//! the key table in the README ("Key layout").
//!
//! Sales: `checkout.lua` sums every order into the deal's ledger `{tag}:sales` in the step that
//! records it (see that script for the fields), so a deal's figures are exact on every node.
//! Which deals pay a creator is `PREFIX:creator:CREATOR:deals` (`lua/creator_index.lua`), another
//! slot, so it is written from here and *before* the deal's script: at `start_deal` for the host,
//! at each checkout for the buyer's affiliate. Once an order exists, so does its index entry;
//! an entry without an order (the checkout failed after it) is filtered out by the reader.
//! Entries carry until when the deal's keys may live, so purged deals leave the index.
//!
//! The hold sweep is driven by `PREFIX:due`, a sorted set of deals by when they next need a
//! sweep (see `lua/due_take.lua`). It is another slot than the deals' on a cluster, so it is
//! written from here, after the deal's script: a reserve adds its deal with `ZADD LT` (needs
//! Redis 6.2); `expire_due` takes the deals due by `now` and adds each back with its next hold
//! expiry. An early entry costs one extra sweep. A missing one (this process crashed between a
//! script and the index write, or a failover lost the write) is found by a slow pass over
//! `PREFIX:deals` that sweeps every deal and re-indexes it: when a process starts, after a take
//! whose reply was lost, and every [`RECONCILE_EVERY_MS`] by one node of all those sharing the
//! prefix. A failed index write after a reserve is retried by the next `expire_due`, and so are
//! the deals a sweep took and did not finish (it failed, or its caller gave up on it).
//!
//! The code is split by what it knows: `keys` names every key and index member, `reply`
//! parses each script's reply into the trait's types (pure functions, each reply's shape pinned
//! by a unit test), `due` keeps the sweep's schedule, and this module runs the scripts and
//! implements [`Inventory`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;
use redis::{AsyncCommands, Script};

mod due;
mod feed;
mod keys;
mod reply;

pub use due::RECONCILE_EVERY_MS;
pub use keys::{FEED_PARTITIONS, deal_digest, deal_tag, room_tag};

use due::Reconcile;
use keys::{Keys, deal_member, member, order_digest, reservation_digest};
use reply::{
    EndReply, StartReply, bad_reply, parse_audit, parse_cancel, parse_checkout, parse_end,
    parse_orders, parse_reserve, parse_sales, parse_settle, parse_start,
};

use super::sales::DealSales;
use super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, OrderRecord,
    Payment, ReserveOutcome, ReserveRequest, SettleOutcome, Settlement, StockChange, StockLevel, check_spec,
};
use crate::orders::{OrderDoc, OrdersPage};
use crate::commerce::Buyer;
use crate::protocol::{Deal, DealSpec, Id, MAX_DEAL_DURATION_MS, RejectReason};
use crate::redis_io::{RedisIo, RedisIoError};

/// A deal script: the shared prelude (`split.lua`, `clock.lua`, `commission.lua`,
/// `common.lua`), then `$file`s in order.
macro_rules! script {
    ($($file:literal),+) => {
        Arc::new(Script::new(concat!(
            include_str!("../../lua/split.lua"),
            "\n",
            include_str!("../../lua/clock.lua"),
            "\n",
            include_str!("../lua/commission.lua"),
            "\n",
            include_str!("../lua/common.lua"),
            $("\n", include_str!(concat!("../lua/", $file))),+
        )))
    };
}

struct Scripts {
    start: Arc<Script>,
    end: Arc<Script>,
    reserve: Arc<Script>,
    checkout: Arc<Script>,
    settle: Arc<Script>,
    buyer_orders: Arc<Script>,
    cancel: Arc<Script>,
    sweep: Arc<Script>,
    audit: Arc<Script>,
    sales: Arc<Script>,
    /// On `PREFIX:due` alone (no deal keys, so without the shared prelude).
    due_take: Arc<Script>,
    /// On one index alone (a creator's deals, a room's deals; no deal keys either).
    index: Arc<Script>,
}

/// Settings of the Redis backend.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key.
    pub key_prefix: String,
    /// How long a hold lasts.
    pub hold_ms: u64,
    /// How long a reserve answer that held stock is remembered for its `request_id`.
    pub idempotency_ttl_ms: u64,
    /// How long a rejected reserve's answer is remembered (a reserve of an unknown deal: not at
    /// all). Short: these changed nothing, and a flood of them must not fill Redis.
    pub rejected_idempotency_ttl_ms: u64,
    /// How long a deal's keys (except its order stream) live after the deal's holds can last.
    pub retention_ms: u64,
    /// Longest wait for a connection or a reply.
    pub timeout: Duration,
    /// Whose clock times holds, deal ends and sweeps.
    pub clock: ScriptClock,
    /// How orders get paid (`orders.payment`).
    pub payment: Payment,
}

/// Whose clock the inventory scripts go by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScriptClock {
    /// Redis's own (`TIME` in the script): every node times holds alike, whatever its clock
    /// says. What a hub runs with.
    #[default]
    Redis,
    /// The `now` each call passes: for tests that drive time themselves.
    Caller,
}

/// The production inventory: stock lives in Redis and every hub node sells from it.
///
/// Redis I/O runs on the [`RedisIo`] runtime, so the connection's pipeline is never starved by
/// fan-out work on the hub's runtime: under a chat storm a reserve still reaches Redis on time,
/// and stock is sold rather than answered `unavailable`.
pub struct RedisInventory {
    redis: RedisIo,
    scripts: Scripts,
    keys: Keys,
    settings: RedisSettings,
    /// digest -> (room, deal), filled from `PREFIX:dealref:*` as needed.
    refs: DashMap<String, (Id, Id)>,
    /// Due entries ("ROOM|DEAL" -> time) that must be written back: writes that failed, and
    /// deals taken by a sweep that has not finished them.
    unsent: Arc<DashMap<String, u64>>,
    taken: DashMap<String, u64>,
    reconcile: Mutex<Reconcile>,
    /// Deals swept by `expire_due`.
    visits: AtomicU64,
}

impl From<RedisIoError> for InventoryError {
    fn from(e: RedisIoError) -> Self {
        match e {
            RedisIoError::Unavailable(m) => InventoryError::Unavailable(m),
            RedisIoError::Internal(m) => InventoryError::Internal(m),
        }
    }
}

/// How much longer than a deal's keys its index entries (and its reservation ids' lookup) live:
/// this node's clock follows Redis's to within a round trip ([`crate::clock`]).
pub const INDEX_SLACK_MS: u64 = 2_000;

/// Deals whose sales one call reads at once.
const SALES_READS: usize = 16;

impl RedisInventory {
    /// Connects lazily: the hub starts even while Redis is down (readiness reports it), and the
    /// connection manager reconnects by itself.
    pub async fn connect(settings: RedisSettings) -> Result<Self, InventoryError> {
        let target = crate::redis_io::RedisTarget::Single(settings.url.clone());
        let redis = RedisIo::connect(target, settings.timeout).await?;
        Ok(Self::with_io(redis, settings))
    }

    /// The inventory on an existing Redis connection (shared with the bus).
    pub fn with_io(redis: RedisIo, settings: RedisSettings) -> Self {
        RedisInventory {
            redis,
            scripts: Scripts {
                start: script!("start_deal.lua"),
                end: script!("end_deal.lua"),
                reserve: script!("reserve.lua"),
                checkout: script!("sale.lua", "checkout.lua"),
                settle: script!("sale.lua", "settle.lua"),
                buyer_orders: script!("buyer_orders.lua"),
                cancel: script!("cancel.lua"),
                sweep: script!("sweep.lua"),
                audit: script!("audit.lua"),
                sales: script!("sales.lua"),
                due_take: Arc::new(Script::new(concat!(
                    include_str!("../../lua/clock.lua"),
                    "\n",
                    include_str!("../lua/due_take.lua")
                ))),
                index: Arc::new(Script::new(include_str!("../lua/index.lua"))),
            },
            keys: Keys::new(&settings.key_prefix),
            settings,
            refs: DashMap::new(),
            unsent: Arc::new(DashMap::new()),
            taken: DashMap::new(),
            reconcile: Mutex::new(Reconcile::forced()),
            visits: AtomicU64::new(0),
        }
    }

    /// The `now` argument of a script: "" (the script reads Redis's clock) or the caller's.
    fn now_arg(&self, now: u64) -> String {
        match self.settings.clock {
            ScriptClock::Redis => String::new(),
            ScriptClock::Caller => now.to_string(),
        }
    }

    /// Lists `room|deal` among the deals that may pay `creator`, until `until` (no earlier than
    /// when the deal's keys are purged). Called before the deal's own script.
    async fn index_creator(
        &self,
        creator: &Id,
        room: &Id,
        deal: &Id,
        until: u64,
        now: u64,
    ) -> Result<(), InventoryError> {
        let key = self.keys.creator(creator);
        self.index(key, member(room, deal), until, now).await
    }

    /// Adds `member` to the index `key` until `until` (see `lua/index.lua`).
    async fn index(
        &self,
        key: String,
        member: String,
        until: u64,
        now: u64,
    ) -> Result<(), InventoryError> {
        let args = [member, until.to_string(), now.to_string()];
        let _: i64 = self.redis.run(&self.scripts.index, &[key], &args).await?;
        Ok(())
    }

    /// How long a deal's keys live after its end: its last hold, then its last order's payment
    /// window, then the retention.
    fn keep_ms(&self) -> u64 {
        self.settings
            .hold_ms
            .saturating_add(self.settings.payment.window_ms())
            .saturating_add(self.settings.retention_ms)
    }

    /// The latest a deal with a live hold at `now` can be purged: it started by `now`, runs at
    /// most a week, and its keys live [`Self::keep_ms`] after its end (as `start_deal` sets
    /// them).
    fn purge_bound(&self, now: u64) -> u64 {
        now.saturating_add(MAX_DEAL_DURATION_MS)
            .saturating_add(self.keep_ms())
    }

    /// One deal's ledger in one atomic reading, or None when the deal does not exist.
    async fn deal_sales(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<DealSales>, InventoryError> {
        let keys = self.keys.deal(room, deal);
        let reply: String = self.redis.run(&self.scripts.sales, &keys, &[]).await?;
        parse_sales(room, deal, &reply, now)
    }

    /// The ledgers of `deals` that exist, a few read at once, in no particular order.
    async fn sales_of(
        &self,
        deals: Vec<(Id, Id)>,
        now: u64,
    ) -> Result<Vec<DealSales>, InventoryError> {
        use futures_util::{StreamExt, TryStreamExt};
        let found: Vec<Option<DealSales>> = futures_util::stream::iter(deals)
            .map(|(room, deal)| async move { self.deal_sales(&room, &deal, now).await })
            .buffer_unordered(SALES_READS)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The deal ids listed for `room` whose keys may still exist at `now` (some may no longer
    /// exist), with those of the set a version before deal lifetimes listed them in.
    async fn room_deal_ids(&self, room: &Id, now: u64) -> Result<Vec<Id>, InventoryError> {
        let (key, legacy) = (self.keys.room(room), self.keys.legacy_room(room));
        let (mut ids, old): (Vec<String>, Vec<String>) = self
            .redis
            .exec(move |mut conn| async move {
                let ids = redis::cmd("ZRANGEBYSCORE")
                    .arg(key)
                    .arg(now)
                    .arg("+inf")
                    .query_async(&mut conn)
                    .await?;
                Ok((ids, conn.smembers(legacy).await?))
            })
            .await?;
        for id in old {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids.into_iter().filter_map(|id| Id::new(id).ok()).collect())
    }

    /// Drops a deal from the sweepers' registry.
    async fn forget(&self, registry: &str, member: &str) -> Result<(), InventoryError> {
        let (key, member) = (registry.to_owned(), member.to_owned());
        self.redis
            .exec(move |mut conn| async move { conn.srem::<_, _, ()>(key, member).await })
            .await?;
        Ok(())
    }

    /// The (room, deal) a reservation id belongs to, or None when it is not one of ours.
    async fn locate(&self, reservation: &Id) -> Result<Option<(Id, Id)>, InventoryError> {
        match reservation_digest(reservation) {
            Some(digest) => self.locate_digest(digest).await,
            None => Ok(None),
        }
    }

    /// The (room, deal) whose reservation and order ids carry `digest`, or None.
    async fn locate_digest(&self, digest: &str) -> Result<Option<(Id, Id)>, InventoryError> {
        if let Some(found) = self.refs.get(digest) {
            return Ok(Some(found.value().clone()));
        }
        let key = self.keys.dealref(digest);
        let stored: Option<String> = self
            .redis
            .exec(move |mut conn| async move { conn.get(key).await })
            .await?;
        let Some((room, deal)) = stored.as_deref().and_then(deal_member) else {
            return Ok(None);
        };
        self.refs
            .insert(digest.to_owned(), (room.clone(), deal.clone()));
        Ok(Some((room, deal)))
    }

    /// Runs one of the scripts (EVALSHA, loading it on NOSCRIPT) on the I/O runtime.
    async fn run(
        &self,
        which: fn(&Scripts) -> &Arc<Script>,
        keys: &[String],
        args: &[String],
    ) -> Result<String, InventoryError> {
        Ok(self.redis.run(which(&self.scripts), keys, args).await?)
    }

    /// Ends the deal (only once its time ran out by Redis's clock when `due`); None when `due`
    /// and it has time left.
    async fn end(
        &self,
        room: &Id,
        deal: &Id,
        due: bool,
        now: u64,
    ) -> Result<Option<EndedDeal>, InventoryError> {
        let keys = self.keys.deal(room, deal);
        let flag = if due { "1" } else { "0" }.to_owned();
        let reply = self
            .run(|s| &s.end, &keys[..4], &[flag, self.now_arg(now)])
            .await?;
        match parse_end(&reply, deal, now)? {
            EndReply::NotFound => Err(InventoryError::NotFound(format!(
                "no deal {deal} in room {room}"
            ))),
            EndReply::NotDue => Ok(None),
            EndReply::Ended(ended) => Ok(Some(ended)),
        }
    }

    async fn view(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<(Deal, Audit, StockLevel)>, InventoryError> {
        let keys = self.keys.deal(room, deal);
        let reply = self.run(|s| &s.audit, &keys[..4], &[]).await?;
        parse_audit(&reply, deal, now)
    }
}

#[async_trait]
impl Inventory for RedisInventory {
    async fn start_deal(
        &self,
        room: &Id,
        spec: &DealSpec,
        creator: &Id,
        now: u64,
    ) -> Result<Deal, InventoryError> {
        check_spec(spec)?;
        // The script times the deal by Redis's clock; `until` bounds its purge_at from above
        // (this node's clock follows Redis's to within a round trip; a minute of slack).
        let keep_ms = self.keep_ms();
        let until = now
            .saturating_add(spec.duration_ms)
            .saturating_add(keep_ms)
            .saturating_add(INDEX_SLACK_MS);
        // Drawn at every start: the ids of this deal's holds and orders never repeat those of
        // an earlier deal with the same id whose keys expired.
        let digest = format!("{:016x}", rand::random::<u64>());
        // Keys on several cluster slots: one command each (a pipeline would be refused by a
        // cluster as cross-slot).
        let (registry, ref_key) = (self.keys.registry(), self.keys.dealref(&digest));
        let entry = member(room, &spec.id);
        let ttl = until.saturating_sub(now);
        self.redis
            .exec(move |mut conn| async move {
                conn.sadd::<_, _, ()>(registry, &entry).await?;
                redis::cmd("SET")
                    .arg(ref_key)
                    .arg(entry)
                    .arg("PX")
                    .arg(ttl.max(1))
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await?;
        self.index(self.keys.room(room), spec.id.to_string(), until, now)
            .await?;
        self.index_creator(creator, room, &spec.id, until, now)
            .await?;
        let keys = self.keys.deal(room, &spec.id);
        let args = [
            spec.product_id.to_string(),
            spec.price_cents.to_string(),
            spec.currency.clone(),
            spec.stock.to_string(),
            spec.per_user_limit.to_string(),
            spec.duration_ms.to_string(),
            creator.to_string(),
            room.to_string(),
            spec.id.to_string(),
            keep_ms.to_string(),
            spec.commission_bps.to_string(),
            spec.affiliate_bps.to_string(),
            // As given: the script stores it in the deal hash's format (see `reply`).
            spec.image_url.as_deref().unwrap_or_default().to_owned(),
            spec.title_or_id(),
            digest,
            self.now_arg(now),
            self.settings.retention_ms.to_string(),
        ];
        let reply = self.run(|s| &s.start, &keys, &args).await?;
        let deal = match parse_start(&reply, &spec.id, now)? {
            StartReply::Deal(deal) => deal,
            StartReply::Conflict => {
                return Err(InventoryError::Conflict(format!(
                    "deal {} was already used in room {room}",
                    spec.id
                )));
            }
        };
        // Swept at its end at the latest, so a deal nobody reserves leaves the registry then.
        self.schedule(&member(room, &spec.id), deal.ends_at).await;
        Ok(deal)
    }

    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError> {
        self.end(room, deal, false, now)
            .await?
            .ok_or_else(|| bad_reply("end", "not_due"))
    }

    async fn end_if_due(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<EndedDeal>, InventoryError> {
        self.end(room, deal, true, now).await
    }

    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, InventoryError> {
        let [deal, holds, hold, users, _, sales, ords, feed] = self.keys.deal(&req.room, &req.deal);
        let idem = self
            .keys
            .request(&req.room, &req.deal, &req.user, &req.request_id);
        let args = [
            req.user.to_string(),
            req.qty.to_string(),
            self.now_arg(req.now),
            self.settings.hold_ms.to_string(),
            self.settings.idempotency_ttl_ms.to_string(),
            deal_digest(&req.room, &req.deal),
            self.settings.rejected_idempotency_ttl_ms.to_string(),
        ];
        let reply: Vec<String> = self
            .redis
            .run(
                &self.scripts.reserve,
                &[deal, holds, hold, users, idem, sales, ords, feed],
                &args,
            )
            .await?;
        let reply = parse_reserve(&reply)?;
        if let ReserveOutcome::Reserved { expires_at, .. } = reply.outcome {
            // Also for a repeat (swept by its hold's expiry then): the process that made the
            // hold may have died before indexing it.
            let due_at = reply.due.unwrap_or(expires_at);
            self.schedule_soon(member(&req.room, &req.deal), due_at);
        }
        Ok(reply.outcome)
    }

    async fn checkout(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        buyer: &Buyer,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError> {
        let Some((r, deal)) = self.locate(reservation).await?.filter(|(r, _)| r == room) else {
            return Ok(CheckoutOutcome::Rejected(RejectReason::NotFound));
        };
        // Before the order can exist, so `creator_sales` of the affiliate always finds it.
        if let Some(aff) = &buyer.aff {
            self.index_creator(aff, &r, &deal, self.purge_bound(now), now)
                .await?;
        }
        let mut keys = self.keys.deal(&r, &deal).to_vec();
        keys.push(self.keys.buyer(&r, user));
        let args = [
            user.to_string(),
            reservation.to_string(),
            self.now_arg(now),
            deal_digest(&r, &deal),
            buyer.channel.as_str().to_owned(),
            buyer.aff.as_ref().map(Id::to_string).unwrap_or_default(),
            match self.settings.payment {
                Payment::None => String::new(),
                Payment::External { timeout_ms } => timeout_ms.to_string(),
            },
        ];
        let reply = self.run(|s| &s.checkout, &keys, &args).await?;
        let outcome = parse_checkout(&reply, room, reservation, &deal)?;
        if let CheckoutOutcome::Ordered(OrderRecord {
            pay_by: Some(pay_by),
            ..
        }) = &outcome
        {
            // A pending order is swept at its pay_by (also on a repeat: the process that made
            // it may have died before indexing it).
            self.schedule_soon(member(&r, &deal), *pay_by);
        }
        Ok(outcome)
    }

    async fn cancel(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CancelOutcome, InventoryError> {
        let Some((r, deal)) = self.locate(reservation).await?.filter(|(r, _)| r == room) else {
            return Ok(CancelOutcome::Rejected(RejectReason::NotFound));
        };
        let keys = self.keys.deal(&r, &deal);
        let args = [user.to_string(), reservation.to_string(), self.now_arg(now)];
        let reply = self.run(|s| &s.cancel, &keys, &args).await?;
        parse_cancel(&reply, reservation, &deal)
    }

    async fn expire_due(&self, now: u64) -> Result<Vec<StockChange>, InventoryError> {
        self.flush_unsent().await?;
        let due = self.take_due(now).await?;
        let mut changes = Vec::new();
        let mut swept = self.visit_all(&due, now, &mut changes).await;
        if swept.is_ok() {
            swept = match self.reconcile_chunk(now).await {
                Ok(pass) => {
                    let pass: Vec<(String, u64)> = pass.into_iter().map(|m| (m, now)).collect();
                    self.visit_all(&pass, now, &mut changes).await
                }
                Err(e) => Err(e),
            };
        }
        match swept {
            Ok(()) => Ok(changes),
            // Stock that came back is reported; the deals not swept are left to the next call.
            Err(e) if !changes.is_empty() => {
                crate::quiet::warn(
                    "hold sweep stopped part-way; the rest is left to the next",
                    &e,
                );
                Ok(changes)
            }
            Err(e) => Err(e),
        }
    }

    fn sweep_visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }

    async fn settle(
        &self,
        order: &Id,
        to: Settlement,
        now: u64,
    ) -> Result<SettleOutcome, InventoryError> {
        let Some(digest) = order_digest(order) else {
            return Ok(SettleOutcome::NotFound);
        };
        let Some((room, deal)) = self.locate_digest(digest).await? else {
            return Ok(SettleOutcome::NotFound);
        };
        let keys = self.keys.deal(&room, &deal);
        let to = match to {
            Settlement::Paid => "paid",
            Settlement::Failed => "failed",
        };
        let args = [order.to_string(), to.to_owned(), self.now_arg(now)];
        let reply = self.run(|s| &s.settle, &keys, &args).await?;
        parse_settle(&reply)
    }

    async fn user_orders(
        &self,
        room: &Id,
        user: &Id,
        now: u64,
    ) -> Result<Vec<OrderDoc>, InventoryError> {
        let key = self.keys.buyer(room, user);
        let index: Vec<(String, String)> = self
            .redis
            .exec(move |mut conn| async move { conn.hgetall(key).await })
            .await?;
        let mut by_deal: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (order, deal) in index {
            by_deal.entry(deal).or_default().push(order);
        }
        let mut out = Vec::new();
        for (deal, orders) in by_deal {
            let Ok(deal) = Id::new(deal) else { continue };
            let keys = self.keys.deal(room, &deal);
            let mut args = vec![self.now_arg(now)];
            args.extend(orders);
            let reply = self.run(|s| &s.buyer_orders, &keys, &args).await?;
            out.extend(parse_orders(&reply)?);
        }
        Ok(out)
    }

    async fn order_feed_end(&self) -> Result<String, InventoryError> {
        feed::end(&self.redis, &self.keys).await
    }

    async fn order_events(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<OrdersPage, InventoryError> {
        feed::page(&self.redis, &self.keys, cursor, limit).await
    }

    async fn room_deals(
        &self,
        room: &Id,
        now: u64,
    ) -> Result<Vec<(Deal, StockLevel)>, InventoryError> {
        let ids = self.room_deal_ids(room, now).await?;
        let mut out = Vec::with_capacity(ids.len());
        for deal in ids {
            if let Some((d, _, level)) = self.view(room, &deal, now).await? {
                out.push((d, level));
            }
        }
        Ok(out)
    }

    async fn room_sales(&self, room: &Id, now: u64) -> Result<Vec<DealSales>, InventoryError> {
        let ids = self.room_deal_ids(room, now).await?;
        let deals = ids.into_iter().map(|d| (room.clone(), d)).collect();
        let mut sales = self.sales_of(deals, now).await?;
        sales.sort_by(|a, b| a.deal.id.cmp(&b.deal.id));
        Ok(sales)
    }

    /// Reads the deals of `PREFIX:creator:CREATOR:deals` not yet purged by `now`, and keeps
    /// those that pay `creator` (an entry written for a checkout that then failed does not).
    async fn creator_sales(
        &self,
        creator: &Id,
        now: u64,
    ) -> Result<Vec<DealSales>, InventoryError> {
        let key = self.keys.creator(creator);
        let members: Vec<String> = self
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(key)
                    .arg(now)
                    .arg("+inf")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let deals = members.iter().filter_map(|m| deal_member(m)).collect();
        let mut sales: Vec<DealSales> = self
            .sales_of(deals, now)
            .await?
            .into_iter()
            .filter(|s| &s.creator == creator || s.affiliates.contains_key(creator))
            .collect();
        sales.sort_by(|a, b| (&a.room, &a.deal.id).cmp(&(&b.room, &b.deal.id)));
        Ok(sales)
    }

    async fn audit(&self, room: &Id, deal: &Id, now: u64) -> Result<Audit, InventoryError> {
        self.view(room, deal, now)
            .await?
            .map(|(_, a, _)| a)
            .ok_or_else(|| InventoryError::NotFound(format!("no deal {deal} in room {room}")))
    }

    async fn health(&self) -> Result<(), InventoryError> {
        let pong: String = self
            .redis
            .exec(|mut conn| async move { redis::cmd("PING").query_async(&mut conn).await })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(bad_reply("PING", &pong))
        }
    }
}
