//! The hold sweep's schedule: `PREFIX:due`, a sorted set of deals by when they next need a
//! sweep (see `lua/due_take.lua`), written after each deal's script (it is another slot), and
//! the slow reconciling pass over `PREFIX:deals` that restores entries that were lost (see the
//! module doc of [`super`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dashmap::DashMap;
use parking_lot::Mutex;

use super::RedisInventory;
use super::keys::deal_member;
use super::reply::{Sweep, parse_due_take, parse_sweep};
use crate::inventory::{InventoryError, StockChange};

/// Most deals one `expire_due` takes from the due index; a larger backlog waits for the next call.
const DUE_BATCH: usize = 500;
/// Deals one `expire_due` call sweeps of a reconciling pass (an `SSCAN` count hint).
const RECONCILE_CHUNK: usize = 100;
/// How often (by the callers' clock) one node of those sharing a key prefix sweeps every deal
/// once, to restore due entries that were lost.
pub const RECONCILE_EVERY_MS: u64 = 5 * 60 * 1000;

/// The pass over every registered deal that backs the due index up.
#[derive(Debug)]
pub(super) struct Reconcile {
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
    pub(super) fn forced() -> Self {
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

/// Keeps the earliest `at` for `member`.
fn keep_earliest(map: &DashMap<String, u64>, member: &str, at: u64) {
    map.entry(member.to_owned())
        .and_modify(|t| *t = (*t).min(at))
        .or_insert(at);
}

impl RedisInventory {
    /// Makes sure the deal `member` ("ROOM|DEAL") is swept by `at`: `ZADD LT`, which only ever
    /// moves an entry earlier. When Redis does not take it, the next `expire_due` retries.
    pub(super) async fn schedule(&self, member: &str, at: u64) {
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
    pub(super) fn schedule_soon(&self, member: String, at: u64) {
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
        cmd.arg(self.keys.due()).arg("LT").arg(at).arg(member);
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
    pub(super) async fn flush_unsent(&self) -> Result<(), InventoryError> {
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
    pub(super) async fn visit_all(
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
            if let (Some(level), Some((room, deal))) = (swept.returned, deal_member(member)) {
                changes.push(StockChange { room, deal, level });
            }
            if let Some(next) = swept.next {
                self.write_due(member.clone(), next).await?;
            }
            if swept.done {
                self.forget(&self.keys.registry(), member).await?;
            }
            self.taken.remove_if(member, |_, t| t == at);
        }
        Ok(())
    }

    /// Sweeps one deal ("ROOM|DEAL"): its expired holds return to stock.
    async fn sweep_deal(&self, member: &str, now: u64) -> Result<Sweep, InventoryError> {
        let Some((room, deal)) = deal_member(member) else {
            return Ok(Sweep {
                done: true,
                ..Sweep::default()
            });
        };
        self.visits.fetch_add(1, Ordering::Relaxed);
        let keys = self.keys.deal(&room, &deal);
        let reply = self
            .run(|s| &s.sweep, &keys, &[self.now_arg(now)])
            .await?;
        parse_sweep(&reply)
    }

    /// Takes the deals due by `now` (the scripts' clock) from the due index: (member, due time).
    pub(super) async fn take_due(&self, now: u64) -> Result<Vec<(String, u64)>, InventoryError> {
        let keys = [self.keys.due()];
        let args = [self.now_arg(now), DUE_BATCH.to_string()];
        let mut guard = TakeGuard(Some(&self.reconcile));
        let flat: Vec<String> = self.redis.run(&self.scripts.due_take, &keys, &args).await?;
        guard.0 = None;
        parse_due_take(&flat)
    }

    /// The members of `PREFIX:deals` the reconciling pass sweeps in this call, if a pass is due
    /// or under way; advances the pass.
    pub(super) async fn reconcile_chunk(&self, now: u64) -> Result<Vec<String>, InventoryError> {
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
        let key = self.keys.registry();
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
        let key = self.keys.reconcile();
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
}
