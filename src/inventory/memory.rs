//! The embedded inventory: every deal is a small book behind its own mutex, so operations on
//! different deals never contend and each operation on one deal is atomic.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, OrderRecord,
    ReserveOutcome, ReserveRequest, StockChange, StockLevel, status_of,
};
use crate::protocol::{Deal, DealSpec, Id, RejectReason};

type DealKey = (Id, Id);

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
    answers: HashMap<(Id, Id), ReserveOutcome>,
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
            next: AtomicU64::new(1),
            node: rand::random::<u32>(),
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
        let deal = Deal {
            id: spec.id.clone(),
            product_id: spec.product_id.clone(),
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
        let outcome = {
            let mut b = book.lock();
            let key = (req.user.clone(), req.request_id.clone());
            if let Some(previous) = b.answers.get(&key) {
                return Ok(previous.clone());
            }
            b.expire(req.now);
            let used = b.per_user.get(&req.user).copied().unwrap_or(0);
            let outcome = if b.ended || req.now >= b.deal.ends_at {
                ReserveOutcome::Rejected(RejectReason::DealNotLive)
            } else if u64::from(used) + u64::from(req.qty) > u64::from(b.deal.per_user_limit) {
                ReserveOutcome::Rejected(RejectReason::LimitReached)
            } else if b.deal.remaining < req.qty {
                ReserveOutcome::Rejected(RejectReason::SoldOut)
            } else {
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
                self.index
                    .insert(reservation.clone(), (req.room.clone(), req.deal.clone()));
                ReserveOutcome::Reserved {
                    reservation,
                    qty: req.qty,
                    expires_at,
                    level: b.level(),
                }
            };
            b.answers.insert(key, outcome.clone());
            outcome
        };
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
                let order = OrderRecord {
                    order: self.new_id('o'),
                    reservation: reservation.clone(),
                    deal: deal.id.clone(),
                    qty,
                    price_cents: deal.price_cents,
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
        let books: Vec<(DealKey, Arc<Mutex<DealBook>>)> = self
            .deals
            .iter()
            .map(|e| (e.key().clone(), Arc::clone(e.value())))
            .collect();
        let mut changes = Vec::new();
        for ((room, deal), book) in books {
            let mut b = book.lock();
            if b.expire(now) {
                changes.push(StockChange {
                    room,
                    deal,
                    level: b.level(),
                });
            }
        }
        Ok(changes)
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
