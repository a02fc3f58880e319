//! The embedded inventory: every deal is a small book behind its own mutex, so operations on
//! different deals never contend and each operation on one deal is atomic.
//!
//! The sweeper finds work through one queue of due times, `(time, deal)` sorted by time: a deal
//! with live holds has an entry no later than its earliest hold's expiry (its book records that
//! entry's time), so `expire_due` looks only at deals with something due. The queue's lock is
//! taken when a deal gets its first hold (later holds of a deal expire later, so they find their
//! deal already queued) and by the sweeper, never per reserve of a busy deal. Lock order: a
//! deal's book, then the queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, OrderRecord,
    ReserveOutcome, ReserveRequest, StockChange, StockLevel, check_spec, order_total, status_of,
};
use crate::protocol::{Deal, DealSpec, Id, RejectReason};

type DealKey = (Id, Id);

/// Most deals one `expire_due` call sweeps; a larger backlog waits for the next call.
const SWEEP_BATCH: usize = 4096;

#[derive(Clone, Debug)]
enum HoldState {
    Held,
    Ordered(OrderRecord),
    Released,
    Expired,
}

#[derive(Clone, Debug)]
struct Hold {
    user: Id,
    qty: u32,
    expires_at: u64,
    state: HoldState,
}

#[derive(Debug)]
struct DealBook {
    deal: Deal,
    ended: bool,
    held: u32,
    sold: u32,
    version: u64,
    /// Live holds plus orders per user.
    per_user: HashMap<Id, u32>,
    /// Live holds by expiry.
    expiry: BTreeSet<(u64, Id)>,
    holds: HashMap<Id, Hold>,
    /// Answers of the reserves that held stock, by (user, request_id). Rejections are not kept
    /// (they changed nothing), so made-up requests cost no memory.
    answers: HashMap<(Id, Id), ReserveOutcome>,
    /// The time of this deal's earliest entry in the due queue, if it has one. Whenever the deal
    /// has a live hold, this is Some and no later than the earliest hold's expiry.
    due: Option<u64>,
}

impl DealBook {
    fn level(&self) -> StockLevel {
        StockLevel {
            remaining: self.deal.remaining,
            version: self.version,
        }
    }

    fn view(&self, now: u64) -> Deal {
        let mut d = self.deal.clone();
        d.status = status_of(self.ended, d.ends_at, d.remaining, now);
        d
    }

    /// Expires due holds; true when any stock came back.
    fn expire(&mut self, now: u64) -> bool {
        let mut changed = false;
        while let Some((at, id)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            if let Some(h) = self.holds.get_mut(&id)
                && matches!(h.state, HoldState::Held)
            {
                h.state = HoldState::Expired;
                let (user, qty) = (h.user.clone(), h.qty);
                self.release(&user, qty);
                changed = true;
            }
        }
        changed
    }

    fn release(&mut self, user: &Id, qty: u32) {
        self.held -= qty;
        self.deal.remaining += qty;
        self.version += 1;
        if let Some(n) = self.per_user.get_mut(user) {
            *n = n.saturating_sub(qty);
        }
    }

    fn audit(&self, now: u64) -> Audit {
        Audit {
            id: self.deal.id.clone(),
            status: status_of(self.ended, self.deal.ends_at, self.deal.remaining, now),
            stock: self.deal.stock,
            remaining: self.deal.remaining,
            held: self.held,
            sold: self.sold,
        }
    }
}

/// The in-memory backend: one process, no persistence.
pub struct MemoryInventory {
    hold_ms: u64,
    deals: DashMap<DealKey, Arc<Mutex<DealBook>>>,
    /// reservation id -> (room, deal)
    index: DashMap<Id, DealKey>,
    /// When deals next need a sweep (see the module doc).
    due: Mutex<BTreeSet<(u64, DealKey)>>,
    visits: AtomicU64,
    next: AtomicU64,
    node: u32,
}

impl MemoryInventory {
    /// Holds last `hold_ms`.
    pub fn new(hold_ms: u64) -> Self {
        MemoryInventory {
            hold_ms,
            deals: DashMap::new(),
            index: DashMap::new(),
            due: Mutex::new(BTreeSet::new()),
            visits: AtomicU64::new(0),
            next: AtomicU64::new(1),
            node: rand::random::<u32>(),
        }
    }

    /// How many reserve answers are remembered for their `request_id`: one per reserve that
    /// held stock, none for rejections.
    pub fn remembered_answers(&self) -> usize {
        self.deals
            .iter()
            .map(|e| e.value().lock().answers.len())
            .sum()
    }

    /// Makes sure the deal `key` (whose book is `b`, locked) is swept by `at`.
    fn schedule(&self, b: &mut DealBook, key: &DealKey, at: u64) {
        if b.due.is_none_or(|queued| at < queued) {
            self.due.lock().insert((at, key.clone()));
            b.due = Some(at);
        }
    }

    fn book(&self, room: &Id, deal: &Id) -> Option<Arc<Mutex<DealBook>>> {
        self.deals
            .get(&(room.clone(), deal.clone()))
            .map(|b| Arc::clone(b.value()))
    }

    fn new_id(&self, prefix: char) -> Id {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Id::generated(format!("{prefix}{:08x}{n:x}", self.node))
    }

    fn hold_book(&self, room: &Id, reservation: &Id) -> Option<Arc<Mutex<DealBook>>> {
        let key = self.index.get(reservation)?.value().clone();
        if &key.0 != room {
            return None;
        }
        self.book(&key.0, &key.1)
    }
}

#[async_trait]
impl Inventory for MemoryInventory {
    async fn start_deal(
        &self,
        room: &Id,
        spec: &DealSpec,
        _creator: &Id,
        now: u64,
    ) -> Result<Deal, InventoryError> {
        check_spec(spec)?;
        let deal = Deal {
            id: spec.id.clone(),
            product_id: spec.product_id.clone(),
            title: spec.title_or_id(),
            image_url: spec.image_url.clone(),
            price_cents: spec.price_cents,
            currency: spec.currency.clone(),
            stock: spec.stock,
            remaining: spec.stock,
            per_user_limit: spec.per_user_limit,
            ends_at: now.saturating_add(spec.duration_ms),
            status: crate::protocol::DealStatus::Live,
        };
        match self.deals.entry((room.clone(), spec.id.clone())) {
            dashmap::Entry::Occupied(_) => Err(InventoryError::Conflict(format!(
                "deal {} was already used in room {room}",
                spec.id
            ))),
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::new(Mutex::new(DealBook {
                    deal: deal.clone(),
                    ended: false,
                    held: 0,
                    sold: 0,
                    version: 1,
                    per_user: HashMap::new(),
                    expiry: BTreeSet::new(),
                    holds: HashMap::new(),
                    answers: HashMap::new(),
                    due: None,
                })));
                Ok(deal)
            }
        }
    }

    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError> {
        let book = self
            .book(room, deal)
            .ok_or_else(|| InventoryError::NotFound(format!("no deal {deal} in room {room}")))?;
        let mut b = book.lock();
        let was_live = !b.ended && now < b.deal.ends_at;
        b.ended = true;
        b.version += 1;
        Ok(EndedDeal {
            deal: b.view(now),
            was_live,
        })
    }

    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, InventoryError> {
        let Some(book) = self.book(&req.room, &req.deal) else {
            return Ok(ReserveOutcome::Rejected(RejectReason::NotFound));
        };
        let mut b = book.lock();
        let key = (req.user.clone(), req.request_id.clone());
        if let Some(previous) = b.answers.get(&key) {
            return Ok(previous.clone());
        }
        b.expire(req.now);
        let used = b.per_user.get(&req.user).copied().unwrap_or(0);
        // A rejection changed nothing: it is answered, not remembered (a repeat is decided
        // afresh, and can hold stock at most once).
        if b.ended || req.now >= b.deal.ends_at {
            return Ok(ReserveOutcome::Rejected(RejectReason::DealNotLive));
        }
        if u64::from(used) + u64::from(req.qty) > u64::from(b.deal.per_user_limit) {
            return Ok(ReserveOutcome::Rejected(RejectReason::LimitReached));
        }
        if b.deal.remaining < req.qty {
            return Ok(ReserveOutcome::Rejected(RejectReason::SoldOut));
        }
        let reservation = self.new_id('h');
        let expires_at = req.now.saturating_add(self.hold_ms);
        b.deal.remaining -= req.qty;
        b.held += req.qty;
        b.version += 1;
        *b.per_user.entry(req.user.clone()).or_insert(0) += req.qty;
        b.expiry.insert((expires_at, reservation.clone()));
        b.holds.insert(
            reservation.clone(),
            Hold {
                user: req.user.clone(),
                qty: req.qty,
                expires_at,
                state: HoldState::Held,
            },
        );
        let deal_key = (req.room.clone(), req.deal.clone());
        self.index.insert(reservation.clone(), deal_key.clone());
        self.schedule(&mut b, &deal_key, expires_at);
        let outcome = ReserveOutcome::Reserved {
            reservation,
            qty: req.qty,
            expires_at,
            level: b.level(),
        };
        b.answers.insert(key, outcome.clone());
        Ok(outcome)
    }

    async fn checkout(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError> {
        let Some(book) = self.hold_book(room, reservation) else {
            return Ok(CheckoutOutcome::Rejected(RejectReason::NotFound));
        };
        let mut b = book.lock();
        b.expire(now);
        let deal = b.deal.clone();
        let Some(hold) = b.holds.get_mut(reservation).filter(|h| &h.user == user) else {
            return Ok(CheckoutOutcome::Rejected(RejectReason::NotFound));
        };
        match &hold.state {
            HoldState::Ordered(order) => Ok(CheckoutOutcome::Ordered(order.clone())),
            HoldState::Released | HoldState::Expired => {
                Ok(CheckoutOutcome::Rejected(RejectReason::NotFound))
            }
            HoldState::Held => {
                let qty = hold.qty;
                let expires_at = hold.expires_at;
                let total_cents = order_total(deal.price_cents, qty).ok_or_else(|| {
                    InventoryError::Internal(format!(
                        "order total of {qty} x {} overflows",
                        deal.price_cents
                    ))
                })?;
                let order = OrderRecord {
                    order: self.new_id('o'),
                    reservation: reservation.clone(),
                    deal: deal.id.clone(),
                    qty,
                    price_cents: deal.price_cents,
                    total_cents,
                    currency: deal.currency.clone(),
                };
                hold.state = HoldState::Ordered(order.clone());
                b.expiry.remove(&(expires_at, reservation.clone()));
                b.held -= qty;
                b.sold += qty;
                b.version += 1;
                Ok(CheckoutOutcome::Ordered(order))
            }
        }
    }

    async fn cancel(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CancelOutcome, InventoryError> {
        let Some(book) = self.hold_book(room, reservation) else {
            return Ok(CancelOutcome::Rejected(RejectReason::NotFound));
        };
        let mut b = book.lock();
        b.expire(now);
        let deal = b.deal.id.clone();
        let Some(hold) = b.holds.get_mut(reservation).filter(|h| &h.user == user) else {
            return Ok(CancelOutcome::Rejected(RejectReason::NotFound));
        };
        match hold.state {
            HoldState::Released => Ok(CancelOutcome::Released {
                reservation: reservation.clone(),
                deal,
                level: None,
            }),
            HoldState::Ordered(_) | HoldState::Expired => {
                Ok(CancelOutcome::Rejected(RejectReason::NotFound))
            }
            HoldState::Held => {
                hold.state = HoldState::Released;
                let (qty, expires_at) = (hold.qty, hold.expires_at);
                b.expiry.remove(&(expires_at, reservation.clone()));
                b.release(user, qty);
                Ok(CancelOutcome::Released {
                    reservation: reservation.clone(),
                    deal,
                    level: Some(b.level()),
                })
            }
        }
    }

    async fn expire_due(&self, now: u64) -> Result<Vec<StockChange>, InventoryError> {
        let taken: Vec<(u64, DealKey)> = {
            let mut due = self.due.lock();
            let mut taken = Vec::new();
            while taken.len() < SWEEP_BATCH && due.first().is_some_and(|(at, _)| *at <= now) {
                taken.extend(due.pop_first());
            }
            taken
        };
        let mut changes = Vec::new();
        for (at, key) in taken {
            let Some(book) = self.book(&key.0, &key.1) else {
                continue;
            };
            self.visits.fetch_add(1, Ordering::Relaxed);
            let mut b = book.lock();
            if b.due == Some(at) {
                b.due = None;
            }
            let changed = b.expire(now);
            if let Some(&(next, _)) = b.expiry.first() {
                self.schedule(&mut b, &key, next);
            }
            if changed {
                changes.push(StockChange {
                    room: key.0,
                    deal: key.1,
                    level: b.level(),
                });
            }
        }
        Ok(changes)
    }

    fn sweep_visits(&self) -> u64 {
        self.visits.load(Ordering::Relaxed)
    }

    async fn room_deals(
        &self,
        room: &Id,
        now: u64,
    ) -> Result<Vec<(Deal, StockLevel)>, InventoryError> {
        let books: Vec<Arc<Mutex<DealBook>>> = self
            .deals
            .iter()
            .filter(|e| &e.key().0 == room)
            .map(|e| Arc::clone(e.value()))
            .collect();
        Ok(books
            .iter()
            .map(|b| {
                let b = b.lock();
                (b.view(now), b.level())
            })
            .collect())
    }

    async fn audit(&self, room: &Id, deal: &Id, now: u64) -> Result<Audit, InventoryError> {
        let book = self
            .book(room, deal)
            .ok_or_else(|| InventoryError::NotFound(format!("no deal {deal} in room {room}")))?;
        let b = book.lock();
        Ok(b.audit(now))
    }

    async fn health(&self) -> Result<(), InventoryError> {
        Ok(())
    }
}
