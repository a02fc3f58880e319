//! The Redis backend: every operation is one Lua script (EVALSHA, reloaded on NOSCRIPT) that does
//! its whole check-and-write atomically. All keys of one deal share the hash tag
//! `{PREFIX:ROOM:DEAL}`, so the same scripts run on Redis Cluster.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;
use redis::{AsyncCommands, Script};

use super::sales::{DealSales, Earning, Sales};
use super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, OrderRecord,
    ReserveOutcome, ReserveRequest, StockChange, StockLevel, check_spec, order_total, status_of,
};
use crate::commerce::{Buyer, Channel, commission};
use crate::protocol::{Deal, DealSpec, Id, MAX_DEAL_DURATION_MS, RejectReason};
use crate::redis_io::{RedisIo, RedisIoError};

/// A deal script: the shared prelude (`split.lua`, `common.lua`), then `$file`s in order.
macro_rules! script {
    ($($file:literal),+) => {
        Arc::new(Script::new(concat!(
            include_str!("../lua/split.lua"),
            "\n",
            include_str!("lua/common.lua"),
            $("\n", include_str!(concat!("lua/", $file))),+
        )))
    };
}

struct Scripts {
    start: Arc<Script>,
    end: Arc<Script>,
    reserve: Arc<Script>,
    checkout: Arc<Script>,
    cancel: Arc<Script>,
    sweep: Arc<Script>,
    audit: Arc<Script>,
    sales: Arc<Script>,
    /// On `PREFIX:due` alone (no deal keys, so without the shared prelude).
    due_take: Arc<Script>,
    /// On one index alone (a creator's deals, a room's deals; no deal keys either).
    index: Arc<Script>,
}

/// Most deals one `expire_due` takes from the due index; a larger backlog waits for the next call.
const DUE_BATCH: usize = 500;
/// Deals one `expire_due` call sweeps of a reconciling pass (an `SSCAN` count hint).
const RECONCILE_CHUNK: usize = 100;
/// How often (by the callers' clock) one node of those sharing a key prefix sweeps every deal
/// once, to restore due entries that were lost.
pub const RECONCILE_EVERY_MS: u64 = 5 * 60 * 1000;

/// The pass over every registered deal that backs the due index up.
#[derive(Debug)]
struct Reconcile {
    /// `SSCAN` cursor of the pass under way.
    cursor: Option<u64>,
    /// When the next pass starts (the callers' Unix ms); 0: at the next call.
    next_at: u64,
    /// The next pass is this node's own (at start, after a lost take), not the periodic one
    /// that a single node runs for all.
    forced: bool,
}

impl Reconcile {
    /// A pass of this node's own, starting at the next call.
    fn forced() -> Self {
        Reconcile {
            cursor: None,
            next_at: 0,
            forced: true,
        }
    }
}

/// Forces a reconciling pass when dropped armed: a take whose reply never arrived (an error, or
/// a caller that stopped waiting while the script ran anyway) may have removed entries that
/// nobody will put back.
struct TakeGuard<'a>(Option<&'a Mutex<Reconcile>>);

impl Drop for TakeGuard<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            *r.lock() = Reconcile::forced();
        }
    }
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

/// Keeps the earliest `at` for `member`.
fn keep_earliest(map: &DashMap<String, u64>, member: &str, at: u64) {
    map.entry(member.to_owned())
        .and_modify(|t| *t = (*t).min(at))
        .or_insert(at);
}

/// What sweeping one deal found.
#[derive(Default)]
struct Swept {
    /// Set when expired holds returned stock.
    change: Option<StockChange>,
    /// The deal's next hold expiry.
    next: Option<u64>,
    /// The deal ended and holds nothing (or its keys are gone, or the member is malformed):
    /// nobody needs to sweep it again.
    done: bool,
}

impl From<RedisIoError> for InventoryError {
    fn from(e: RedisIoError) -> Self {
        match e {
            RedisIoError::Unavailable(m) => InventoryError::Unavailable(m),
            RedisIoError::Internal(m) => InventoryError::Internal(m),
        }
    }
}

fn bad_reply(what: &str, reply: &str) -> InventoryError {
    InventoryError::Internal(format!("unexpected {what} reply from Redis: {reply:?}"))
}

/// A stable 64-bit digest of (room, deal) as 16 hex digits (FNV-1a), the same on every node.
pub fn deal_digest(room: &Id, deal: &Id) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in room
        .as_str()
        .bytes()
        .chain([0u8])
        .chain(deal.as_str().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn num<T: std::str::FromStr>(what: &str, s: Option<&str>) -> Result<T, InventoryError> {
    s.and_then(|v| v.parse().ok())
        .ok_or_else(|| bad_reply(what, s.unwrap_or("<missing>")))
}

/// A script's reject reason, by its wire name; never `unavailable` (the hub's own answer).
fn reason(s: &str) -> Result<RejectReason, InventoryError> {
    match s.parse() {
        Ok(RejectReason::Unavailable) | Err(_) => Err(bad_reply("reject reason", s)),
        Ok(r) => Ok(r),
    }
}

/// A rate of the deal hash: "" (a deal stored before rates existed) reads as 0.
fn bps(what: &str, s: &str) -> Result<u32, InventoryError> {
    if s.is_empty() {
        Ok(0)
    } else {
        num(what, Some(s))
    }
}

/// Parses `view()`: product_id|price|currency|stock|remaining|held|sold|limit|ends_at|ended|
/// version|commission_bps|affiliate_bps|image_url|title, where the title is the rest (it may
/// hold `|`). A field a deal stored before it existed does not have reads as "": rates 0, no
/// image, an empty title.
fn parse_view(id: &Id, f: &[&str], now: u64) -> Result<(Deal, Audit, StockLevel), InventoryError> {
    if f.len() < 15 {
        return Err(bad_reply("deal", &f.join("|")));
    }
    let image_url = Some(f[13])
        .filter(|u| !u.is_empty())
        .map(|u| u.replace("%7C", "|"));
    let title = f[14..].join("|");
    let remaining: u32 = num("remaining", Some(f[4]))?;
    let ends_at: u64 = num("ends_at", Some(f[8]))?;
    let ended = f[9] == "1";
    let status = status_of(ended, ends_at, remaining, now);
    let deal = Deal {
        id: id.clone(),
        product_id: Id::new(f[0]).map_err(|_| bad_reply("product_id", f[0]))?,
        title,
        image_url,
        price_cents: num("price_cents", Some(f[1]))?,
        currency: f[2].to_owned(),
        stock: num("stock", Some(f[3]))?,
        remaining,
        per_user_limit: num("per_user_limit", Some(f[7]))?,
        commission_bps: bps("commission_bps", f[11])?,
        affiliate_bps: bps("affiliate_bps", f[12])?,
        ends_at,
        status,
    };
    let audit = Audit {
        id: id.clone(),
        status,
        stock: deal.stock,
        remaining,
        held: num("held", Some(f[5]))?,
        sold: num("sold", Some(f[6]))?,
    };
    let level = StockLevel {
        remaining,
        version: num("version", Some(f[10]))?,
    };
    Ok((deal, audit, level))
}

/// The (room, deal) of an index member "ROOM|DEAL", or None when it is malformed.
fn deal_member(member: &str) -> Option<(Id, Id)> {
    let (room, deal) = member.split_once('|')?;
    Some((Id::new(room).ok()?, Id::new(deal).ok()?))
}

/// An id in a reply, or a bad reply.
fn reply_id(what: &str, s: &str) -> Result<Id, InventoryError> {
    Id::new(s).map_err(|_| bad_reply(what, s))
}

/// Parses the fields of `checkout.lua`'s order reply (after its "O"), checking the total and
/// both amounts against Rust's own arithmetic, so the script and [`commission`] never disagree
/// silently.
fn parse_order(
    f: &[&str],
    reservation: &Id,
    deal: &Id,
    reply: &str,
) -> Result<OrderRecord, InventoryError> {
    let [
        order,
        qty,
        price,
        currency,
        total,
        again,
        channel,
        aff,
        host_bps,
        host_cents,
        aff_bps,
        aff_cents,
        creator,
    ] = f
    else {
        return Err(bad_reply("checkout", reply));
    };
    let (qty, price_cents) = (num("qty", Some(qty))?, num("price_cents", Some(price))?);
    // The script's total is exact (below 2^53); check it against ours anyway.
    let total_cents = order_total(price_cents, qty)
        .filter(|t| t.to_string() == *total)
        .ok_or_else(|| bad_reply("order total", reply))?;
    let aff = match *aff {
        "" => None,
        a => Some(reply_id("aff", a)?),
    };
    let (commission_bps, affiliate_bps) = (num("bps", Some(host_bps))?, num("bps", Some(aff_bps))?);
    let commission_cents = commission(total_cents, commission_bps);
    let affiliate_cents = match aff {
        Some(_) => commission(total_cents, affiliate_bps),
        None => 0,
    };
    if commission_cents.to_string() != *host_cents || affiliate_cents.to_string() != *aff_cents {
        return Err(bad_reply("order commission", reply));
    }
    Ok(OrderRecord {
        order: reply_id("order", order)?,
        reservation: reservation.clone(),
        deal: deal.clone(),
        qty,
        price_cents,
        total_cents,
        currency: (*currency).to_owned(),
        creator: reply_id("creator", creator)?,
        channel: Channel::parse(channel),
        aff,
        commission_bps,
        commission_cents,
        affiliate_bps,
        affiliate_cents,
        repeat: *again == "1",
    })
}

/// Parses `sales.lua`'s reply: the deal's view, its creator, then the ledger's fields and
/// values. None when the deal does not exist (never made, or purged).
fn parse_sales(
    room: &Id,
    id: &Id,
    reply: &[String],
    now: u64,
) -> Result<Option<DealSales>, InventoryError> {
    let [view, creator, ledger @ ..] = reply else {
        return match reply {
            [] => Ok(None),
            _ => Err(bad_reply("sales", &reply.join(" "))),
        };
    };
    let f: Vec<&str> = view.split('|').collect();
    let (deal, _, _) = parse_view(id, &f, now)?;
    let mut sales = DealSales {
        room: room.clone(),
        deal,
        creator: reply_id("creator", creator)?,
        total: Sales::default(),
        channels: Default::default(),
        host: Earning::default(),
        affiliates: Default::default(),
        buckets: Default::default(),
    };
    for pair in ledger.chunks(2) {
        let [field, value] = pair else {
            return Err(bad_reply("sales", &reply.join(" ")));
        };
        add_figure(&mut sales, field, num(field, Some(value))?)?;
    }
    // The host earns on every order: their sales are the deal's.
    sales.total = sales.host.sales;
    Ok(Some(sales))
}

/// Adds one ledger field (named as in `checkout.lua`) to `s`. A field of another shape is left
/// alone: a newer node may write more.
fn add_figure(s: &mut DealSales, field: &str, value: u64) -> Result<(), InventoryError> {
    let parts: Vec<&str> = field.split('|').collect();
    match parts.as_slice() {
        ["h", "commission_cents"] => add(&mut s.host.commission_cents, value),
        ["h", figure] => add_sale(&mut s.host.sales, figure, value),
        ["c", channel, figure] => {
            let channel = s.channels.entry(Channel::parse(channel)).or_default();
            add_sale(channel, figure, value);
        }
        ["a", aff, figure] => {
            let earning = s.affiliates.entry(reply_id("affiliate", aff)?).or_default();
            match *figure {
                "commission_cents" => add(&mut earning.commission_cents, value),
                figure => add_sale(&mut earning.sales, figure, value),
            }
        }
        ["t", at, figure] => {
            let bucket = s.buckets.entry(num("bucket", Some(at))?).or_default();
            add_sale(bucket, figure, value);
        }
        _ => {}
    }
    Ok(())
}

fn add_sale(s: &mut Sales, figure: &str, value: u64) {
    match figure {
        "orders" => add(&mut s.orders, value),
        "units" => add(&mut s.units, value),
        "gmv_cents" => add(&mut s.gmv_cents, value),
        _ => {}
    }
}

fn add(sum: &mut u64, value: u64) {
    *sum = sum.saturating_add(value);
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
                checkout: script!("commission.lua", "checkout.lua"),
                cancel: script!("cancel.lua"),
                sweep: script!("sweep.lua"),
                audit: script!("audit.lua"),
                sales: script!("sales.lua"),
                due_take: Arc::new(Script::new(include_str!("lua/due_take.lua"))),
                index: Arc::new(Script::new(include_str!("lua/index.lua"))),
            },
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

    /// The per-deal keys, in the order the scripts expect.
    fn keys(&self, room: &Id, deal: &Id) -> [String; 6] {
        let tag = format!("{{{}:{room}:{deal}}}", self.settings.key_prefix);
        [
            format!("{tag}:deal"),
            format!("{tag}:holds"),
            format!("{tag}:hold"),
            format!("{tag}:users"),
            format!("{tag}:orders"),
            format!("{tag}:sales"),
        ]
    }

    fn registry_key(&self) -> String {
        format!("{}:deals", self.settings.key_prefix)
    }

    fn due_key(&self) -> String {
        format!("{}:due", self.settings.key_prefix)
    }

    /// Makes sure the deal `member` ("ROOM|DEAL") is swept by `at`: `ZADD LT`, which only ever
    /// moves an entry earlier. When Redis does not take it, the next `expire_due` retries.
    async fn schedule(&self, member: &str, at: u64) {
        if let Err(e) = self.write_due(member.to_owned(), at).await {
            crate::quiet::warn(
                "due entry not written; retried by the next sweep",
                &format_args!("{member}: {e}"),
            );
            keep_earliest(&self.unsent, member, at);
        }
    }

    /// Like [`Self::schedule`] without waiting for Redis: the buyer's reply does not wait for
    /// the sweepers' index (issue 20). A write that fails is retried by the next `expire_due`;
    /// one lost with this process is restored by the reconciling pass.
    fn schedule_soon(&self, member: String, at: u64) {
        let (due, unsent) = (self.due_entry(&member, at), Arc::clone(&self.unsent));
        let mut conn = self.redis.conn();
        let write = async move {
            if due.query_async::<()>(&mut conn).await.is_err() {
                keep_earliest(&unsent, &member, at);
            }
        };
        // None: shutting down, nothing runs any more; the next start's reconciling pass finds
        // the deal.
        let _ = self.redis.spawn(write);
    }

    /// `ZADD PREFIX:due LT at member`: moves the deal's entry earlier, never later.
    fn due_entry(&self, member: &str, at: u64) -> redis::Cmd {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.due_key()).arg("LT").arg(at).arg(member);
        cmd
    }

    async fn write_due(&self, member: String, at: u64) -> Result<(), InventoryError> {
        let due = self.due_entry(&member, at);
        self.redis
            .exec(move |mut conn| async move { due.query_async::<()>(&mut conn).await })
            .await?;
        Ok(())
    }

    /// Writes back the due entries of failed writes and of unfinished sweeps.
    async fn flush_unsent(&self) -> Result<(), InventoryError> {
        for map in [&self.unsent, &self.taken] {
            let entries: Vec<(String, u64)> =
                map.iter().map(|e| (e.key().clone(), *e.value())).collect();
            for (member, at) in entries {
                self.write_due(member.clone(), at).await?;
                map.remove_if(&member, |_, t| *t == at);
            }
        }
        Ok(())
    }

    /// Sweeps the deals `batch` (member "ROOM|DEAL", and when it was due) and puts each back in
    /// the due index for its next hold expiry, or forgets it when nobody needs to sweep it again.
    /// The batch is in `taken` until each deal is done with, so a call that fails or is dropped
    /// half-way leaves the rest to the next call. Appends the stock changes to `changes`, also
    /// those made before a failure.
    async fn visit_all(
        &self,
        batch: &[(String, u64)],
        now: u64,
        changes: &mut Vec<StockChange>,
    ) -> Result<(), InventoryError> {
        for (member, at) in batch {
            keep_earliest(&self.taken, member, *at);
        }
        for (member, at) in batch {
            let swept = self.sweep_deal(member, now).await?;
            changes.extend(swept.change);
            if let Some(next) = swept.next {
                self.write_due(member.clone(), next).await?;
            }
            if swept.done {
                self.forget(&self.registry_key(), member).await?;
            }
            self.taken.remove_if(member, |_, t| t == at);
        }
        Ok(())
    }

    async fn sweep_deal(&self, member: &str, now: u64) -> Result<Swept, InventoryError> {
        let Some((room, deal)) = deal_member(member) else {
            return Ok(Swept {
                done: true,
                ..Swept::default()
            });
        };
        self.visits.fetch_add(1, Ordering::Relaxed);
        let keys = self.keys(&room, &deal);
        let reply = self
            .run(|s| &s.sweep, &keys[..4], &[self.now_arg(now)])
            .await?;
        let f: Vec<&str> = reply.split('|').collect();
        match f.as_slice() {
            ["GONE"] => Ok(Swept {
                done: true,
                ..Swept::default()
            }),
            [expired, remaining, version, done, next] => {
                let change = if *expired != "0" {
                    Some(StockChange {
                        room,
                        deal,
                        level: StockLevel {
                            remaining: num("remaining", Some(remaining))?,
                            version: num("version", Some(version))?,
                        },
                    })
                } else {
                    None
                };
                let next = match *next {
                    "" => None,
                    at => Some(num("next expiry", Some(at))?),
                };
                Ok(Swept {
                    change,
                    next,
                    done: *done == "1",
                })
            }
            _ => Err(bad_reply("sweep", &reply)),
        }
    }

    /// Takes the deals due by `now` (the scripts' clock) from the due index: (member, due time).
    async fn take_due(&self, now: u64) -> Result<Vec<(String, u64)>, InventoryError> {
        let keys = [self.due_key()];
        let args = [self.now_arg(now), DUE_BATCH.to_string()];
        let mut guard = TakeGuard(Some(&self.reconcile));
        let flat: Vec<String> = self.redis.run(&self.scripts.due_take, &keys, &args).await?;
        guard.0 = None;
        flat.chunks(2)
            .map(|pair| match pair {
                [member, at] => {
                    let at: f64 = num("due time", Some(at))?;
                    Ok((member.clone(), at as u64))
                }
                _ => Err(bad_reply("due take", &flat.join(" "))),
            })
            .collect()
    }

    /// The members of `PREFIX:deals` the reconciling pass sweeps in this call, if a pass is due
    /// or under way; advances the pass.
    async fn reconcile_chunk(&self, now: u64) -> Result<Vec<String>, InventoryError> {
        let (cursor, forced) = {
            let r = self.reconcile.lock();
            match r.cursor {
                Some(c) => (c, true),
                None if now >= r.next_at => (0, r.forced),
                None => return Ok(Vec::new()),
            }
        };
        if cursor == 0 && !forced && !self.lead_reconcile().await? {
            let mut r = self.reconcile.lock();
            r.next_at = now.saturating_add(RECONCILE_EVERY_MS);
            return Ok(Vec::new());
        }
        let key = self.registry_key();
        let (next, members): (u64, Vec<String>) = self
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("SSCAN")
                    .arg(key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(RECONCILE_CHUNK)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut r = self.reconcile.lock();
        if next == 0 {
            r.cursor = None;
            r.next_at = now.saturating_add(RECONCILE_EVERY_MS);
            r.forced = false;
        } else {
            r.cursor = Some(next);
        }
        Ok(members)
    }

    /// True when this node is the one to run this period's reconciling pass.
    async fn lead_reconcile(&self) -> Result<bool, InventoryError> {
        let key = format!("{}:reconcile", self.settings.key_prefix);
        let won: Option<String> = self
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(RECONCILE_EVERY_MS)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(won.is_some())
    }

    fn creator_key(&self, creator: &Id) -> String {
        format!("{}:creator:{creator}:deals", self.settings.key_prefix)
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
        let key = self.creator_key(creator);
        self.index(key, format!("{room}|{deal}"), until, now).await
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

    /// The latest a deal with a live hold at `now` can be purged: it started by `now`, runs at
    /// most a week, and its keys live `hold_ms + retention_ms` after its end (as `start_deal`
    /// sets them).
    fn purge_bound(&self, now: u64) -> u64 {
        now.saturating_add(MAX_DEAL_DURATION_MS)
            .saturating_add(self.settings.hold_ms)
            .saturating_add(self.settings.retention_ms)
    }

    /// One deal's ledger in one atomic reading, or None when the deal does not exist.
    async fn deal_sales(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<DealSales>, InventoryError> {
        let keys = self.keys(room, deal);
        let reply: Vec<String> = self.redis.run(&self.scripts.sales, &keys, &[]).await?;
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
        let (key, legacy) = (self.room_key(room), self.legacy_room_key(room));
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

    /// The room's deals by when their keys expire (`lua/index.lua`).
    fn room_key(&self, room: &Id) -> String {
        format!("{}:room:{room}:deal-index", self.settings.key_prefix)
    }

    /// The set of a room's deal ids that versions before issue 19 wrote (without a lifetime);
    /// read, never written.
    fn legacy_room_key(&self, room: &Id) -> String {
        format!("{}:room:{room}:deals", self.settings.key_prefix)
    }

    fn ref_key(&self, digest: &str) -> String {
        format!("{}:dealref:{digest}", self.settings.key_prefix)
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
        let Some(digest) = reservation
            .as_str()
            .strip_prefix('h')
            .and_then(|r| r.split_once('-'))
            .map(|(d, _)| d)
            .filter(|d| d.len() == 16)
        else {
            return Ok(None);
        };
        if let Some(found) = self.refs.get(digest) {
            return Ok(Some(found.value().clone()));
        }
        let key = self.ref_key(digest);
        let stored: Option<String> = self
            .redis
            .exec(move |mut conn| async move { conn.get(key).await })
            .await?;
        let Some((room, deal)) = stored.as_deref().and_then(|s| s.split_once('|')) else {
            return Ok(None);
        };
        let (Ok(room), Ok(deal)) = (Id::new(room), Id::new(deal)) else {
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
        let keys = self.keys(room, deal);
        let flag = if due { "1" } else { "0" }.to_owned();
        let reply = self
            .run(|s| &s.end, &keys[..4], &[flag, self.now_arg(now)])
            .await?;
        match reply.as_str() {
            "NOTFOUND" => {
                return Err(InventoryError::NotFound(format!(
                    "no deal {deal} in room {room}"
                )));
            }
            "NOTDUE" => return Ok(None),
            _ => {}
        }
        let f: Vec<&str> = reply.split('|').collect();
        let [was_live, view @ ..] = f.as_slice() else {
            return Err(bad_reply("end", &reply));
        };
        let (deal, _, _) = parse_view(deal, view, now)?;
        Ok(Some(EndedDeal {
            deal,
            was_live: *was_live == "1",
        }))
    }

    async fn view(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<(Deal, Audit, StockLevel)>, InventoryError> {
        let keys = self.keys(room, deal);
        let reply = self.run(|s| &s.audit, &keys[..4], &[]).await?;
        if reply == "NOTFOUND" {
            return Ok(None);
        }
        let f: Vec<&str> = reply.split('|').collect();
        parse_view(deal, &f, now).map(Some)
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
        let keep_ms = self
            .settings
            .hold_ms
            .saturating_add(self.settings.retention_ms);
        let until = now
            .saturating_add(spec.duration_ms)
            .saturating_add(keep_ms)
            .saturating_add(INDEX_SLACK_MS);
        // Drawn at every start: the ids of this deal's holds and orders never repeat those of
        // an earlier deal with the same id whose keys expired.
        let digest = format!("{:016x}", rand::random::<u64>());
        // Keys on several cluster slots: one command each (a pipeline would be refused by a
        // cluster as cross-slot).
        let (registry, ref_key) = (self.registry_key(), self.ref_key(&digest));
        let member = format!("{room}|{}", spec.id);
        let ttl = until.saturating_sub(now);
        self.redis
            .exec(move |mut conn| async move {
                conn.sadd::<_, _, ()>(registry, &member).await?;
                redis::cmd("SET")
                    .arg(ref_key)
                    .arg(member)
                    .arg("PX")
                    .arg(ttl.max(1))
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await?;
        self.index(self.room_key(room), spec.id.to_string(), until, now)
            .await?;
        self.index_creator(creator, room, &spec.id, until, now)
            .await?;
        let keys = self.keys(room, &spec.id);
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
            // `view()` ends with `image_url|title`: a title may hold `|` (it is the rest of the
            // reply), an image URL holds it percent-encoded (and reads back as `|`).
            spec.image_url
                .as_deref()
                .unwrap_or_default()
                .replace('|', "%7C"),
            spec.title_or_id(),
            digest,
            self.now_arg(now),
        ];
        let reply = self.run(|s| &s.start, &keys[..5], &args).await?;
        if reply == "CONFLICT" {
            return Err(InventoryError::Conflict(format!(
                "deal {} was already used in room {room}",
                spec.id
            )));
        }
        let f: Vec<&str> = reply
            .strip_prefix("OK|")
            .ok_or_else(|| bad_reply("start", &reply))?
            .split('|')
            .collect();
        let [_purge_at, view @ ..] = f.as_slice() else {
            return Err(bad_reply("start", &reply));
        };
        let deal = parse_view(&spec.id, view, now)?.0;
        // Swept at its end at the latest, so a deal nobody reserves leaves the registry then.
        self.schedule(&format!("{room}|{}", spec.id), deal.ends_at)
            .await;
        Ok(deal)
    }

    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError> {
        self.end(room, deal, false, now)
            .await?
            .ok_or_else(|| bad_reply("end", "NOTDUE"))
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
        let [deal, holds, hold, users, ..] = self.keys(&req.room, &req.deal);
        let idem = format!(
            "{{{}:{}:{}}}:req:{}:{}",
            self.settings.key_prefix, req.room, req.deal, req.user, req.request_id
        );
        let args = [
            req.user.to_string(),
            req.qty.to_string(),
            self.now_arg(req.now),
            self.settings.hold_ms.to_string(),
            self.settings.idempotency_ttl_ms.to_string(),
            deal_digest(&req.room, &req.deal),
            self.settings.rejected_idempotency_ttl_ms.to_string(),
        ];
        let reply = self
            .run(|s| &s.reserve, &[deal, holds, hold, users, idem], &args)
            .await?;
        let f: Vec<&str> = reply.split('|').collect();
        let (fields, due) = match f.as_slice() {
            ["R", why] => return Ok(ReserveOutcome::Rejected(reason(why)?)),
            // A fresh hold carries the deal's earliest expiry; a repeat does not.
            ["OK", rest @ ..] if rest.len() == 6 => (&rest[..5], Some(rest[5])),
            ["OK", rest @ ..] if rest.len() == 5 => (rest, None),
            _ => return Err(bad_reply("reserve", &reply)),
        };
        let [resv, qty, expires, remaining, version] = fields else {
            return Err(bad_reply("reserve", &reply));
        };
        let expires_at: u64 = num("expires_at", Some(expires))?;
        // Also for a repeat: the process that made the hold may have died before indexing it.
        let due_at = match due {
            Some(at) => num("due", Some(at))?,
            None => expires_at,
        };
        self.schedule_soon(format!("{}|{}", req.room, req.deal), due_at);
        Ok(ReserveOutcome::Reserved {
            reservation: Id::new(*resv).map_err(|_| bad_reply("reservation", resv))?,
            qty: num("qty", Some(qty))?,
            expires_at,
            level: StockLevel {
                remaining: num("remaining", Some(remaining))?,
                version: num("version", Some(version))?,
            },
        })
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
        let keys = self.keys(&r, &deal);
        let args = [
            user.to_string(),
            reservation.to_string(),
            self.now_arg(now),
            deal_digest(&r, &deal),
            buyer.channel.as_str().to_owned(),
            buyer.aff.as_ref().map(Id::to_string).unwrap_or_default(),
        ];
        let reply = self.run(|s| &s.checkout, &keys, &args).await?;
        let f: Vec<&str> = reply.split('|').collect();
        match f.as_slice() {
            ["O", order @ ..] => Ok(CheckoutOutcome::Ordered(parse_order(
                order,
                reservation,
                &deal,
                &reply,
            )?)),
            ["R", why] => Ok(CheckoutOutcome::Rejected(reason(why)?)),
            ["TOTAL", qty, price] => Err(InventoryError::Internal(format!(
                "order total of {qty} x {price} is out of range (deal {deal} in room {room})"
            ))),
            _ => Err(bad_reply("checkout", &reply)),
        }
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
        let keys = self.keys(&r, &deal);
        let args = [user.to_string(), reservation.to_string(), self.now_arg(now)];
        let reply = self.run(|s| &s.cancel, &keys[..4], &args).await?;
        let f: Vec<&str> = reply.split('|').collect();
        match f.as_slice() {
            ["C", "-"] => Ok(CancelOutcome::Released {
                reservation: reservation.clone(),
                deal,
                level: None,
            }),
            ["C", remaining, version] => Ok(CancelOutcome::Released {
                reservation: reservation.clone(),
                deal,
                level: Some(StockLevel {
                    remaining: num("remaining", Some(remaining))?,
                    version: num("version", Some(version))?,
                }),
            }),
            ["R", why] => Ok(CancelOutcome::Rejected(reason(why)?)),
            _ => Err(bad_reply("cancel", &reply)),
        }
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
        let key = self.creator_key(creator);
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
