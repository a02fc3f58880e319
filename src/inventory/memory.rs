//! The embedded inventory: every deal is a small book behind its own mutex, so operations on
//! different deals never contend and each operation on one deal is atomic.
//!
//! The sweeper finds work through one queue of due times, `(time, deal)` sorted by time: a deal
//! with live holds has an entry no later than its earliest hold's expiry (its book records that
//! entry's time), so `expire_due` looks only at deals with something due. The queue's lock is
//! taken when a deal gets its first hold (later holds of a deal expire later, so they find their
//! deal already queued) and by the sweeper, never per reserve of a busy deal. Lock order: a
//! deal's book, then the queue.
//!
//! Each book also holds its deal's sales ledger, written under the same lock as the order, so
//! a reading of the ledger always matches the orders made. Nothing is purged: deals and their
//! ledgers live as long as the process.
//!
//! Orders (issue 23): with [`Payment::External`] an order is pending until [`Inventory::settle`]
//! or its `pay_by`; a pending order sits in its deal's expiry queue beside the holds (under its
//! reservation id, at `pay_by`), so the same sweep expires it. Every change of an order appends
//! its event to the [`OrderLog`] under the deal's lock (lock order: a deal's book, then the
//! log), so each order's events are in the order they happened.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::feed::OrderLog;
use super::sales::{DealSales, Earning, Sales};
use super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, OrderRecord,
    Payment, ReserveOutcome, ReserveRequest, SettleOutcome, Settlement, StockChange, StockLevel,
    check_spec, order_total, status_of,
};
use crate::commerce::{Buyer, Channel, bucket_of, commission};
use crate::orders::{OrderDoc, OrderEventKind, OrderStatus, OrdersPage};
use crate::protocol::{Deal, DealSpec, Id, RejectReason};

type DealKey = (Id, Id);

/// Most deals one `expire_due` call sweeps; a larger backlog waits for the next call.
const SWEEP_BATCH: usize = 4096;

// Most holds of a busy deal end as orders: boxing the order would allocate for each of them
// and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum HoldState {
    Held,
    /// An order made from the hold, in whatever status it now has.
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

/// One deal's sales, summed order by order (see [`DealSales`] for what each figure means).
#[derive(Debug, Default)]
struct Ledger {
    total: Sales,
    channels: BTreeMap<Channel, Sales>,
    host: Earning,
    affiliates: BTreeMap<Id, Earning>,
    buckets: BTreeMap<u64, Sales>,
}

impl Ledger {
    /// Adds `order`, made at `now`.
    fn record(&mut self, order: &OrderRecord, now: u64) {
        let (qty, total) = (order.qty, order.total_cents);
        self.total.add(qty, total);
        self.channels
            .entry(order.channel)
            .or_default()
            .add(qty, total);
        self.host.sales.add(qty, total);
        self.host.commission_cents += order.commission_cents;
        if let Some(aff) = &order.aff {
            let e = self.affiliates.entry(aff.clone()).or_default();
            e.sales.add(qty, total);
            e.commission_cents += order.affiliate_cents;
        }
        self.buckets
            .entry(bucket_of(now))
            .or_default()
            .add(qty, total);
    }
}

#[derive(Debug)]
struct DealBook {
    room: Id,
    deal: Deal,
    /// The host creator who started the deal.
    creator: Id,
    sales: Ledger,
    ended: bool,
    held: u32,
    /// Units in pending orders.
    pending: u32,
    sold: u32,
    version: u64,
    /// Live holds plus pending and paid orders per user.
    per_user: HashMap<Id, u32>,
    /// Live holds by expiry, and pending orders by `pay_by` (under their reservation id).
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

    /// Expires due holds and pending orders past their `pay_by` (with their `expired`
    /// events in `feed`); true when any stock came back.
    fn expire(&mut self, now: u64, feed: &OrderLog) -> bool {
        let mut changed = false;
        while let Some((at, id)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            let Some(h) = self.holds.get_mut(&id) else {
                continue;
            };
            let (user, qty) = (h.user.clone(), h.qty);
            let expired = match &mut h.state {
                HoldState::Held => Some(None),
                HoldState::Ordered(order) if order.status == OrderStatus::Pending => {
                    order.status = OrderStatus::Expired;
                    Some(Some(order.clone()))
                }
                _ => None,
            };
            match expired {
                Some(None) => {
                    h.state = HoldState::Expired;
                    self.held -= qty;
                }
                Some(Some(order)) => {
                    self.pending -= qty;
                    feed.append(OrderEventKind::Expired, now, self.doc(&order, &user));
                }
                None => continue,
            }
            self.give_back(&user, qty);
            changed = true;
        }
        changed
    }

    /// Returns `qty` units of `user`'s (from a hold or a pending order, whose counter the
    /// caller took them from) to `remaining`.
    fn give_back(&mut self, user: &Id, qty: u32) {
        self.deal.remaining += qty;
        self.version += 1;
        if let Some(n) = self.per_user.get_mut(user) {
            *n = n.saturating_sub(qty);
        }
    }

    /// The order as the feed shows it.
    fn doc(&self, order: &OrderRecord, user: &Id) -> OrderDoc {
        order.doc(&self.room, &self.deal, user)
    }

    /// The deal's ledger, with the deal as it stands at `now`.
    fn sales(&self, room: &Id, now: u64) -> DealSales {
        let l = &self.sales;
        DealSales {
            room: room.clone(),
            deal: self.view(now),
            creator: self.creator.clone(),
            total: l.total,
            channels: l.channels.clone(),
            host: l.host,
            affiliates: l.affiliates.clone(),
            buckets: l.buckets.clone(),
        }
    }

    /// True when `creator` hosts this deal or is the affiliate of one of its orders.
    fn pays(&self, creator: &Id) -> bool {
        &self.creator == creator || self.sales.affiliates.contains_key(creator)
    }

    /// The order for the live hold `reservation` of `qty` units, attributed to `buyer`.
    fn order(
        &self,
        id: Id,
        reservation: &Id,
        qty: u32,
        buyer: &Buyer,
    ) -> Result<OrderRecord, InventoryError> {
        let d = &self.deal;
        let total_cents = order_total(d.price_cents, qty).ok_or_else(|| {
            InventoryError::Internal(format!(
                "order total of {qty} x {} overflows",
                d.price_cents
            ))
        })?;
        Ok(OrderRecord {
            order: id,
            reservation: reservation.clone(),
            deal: d.id.clone(),
            qty,
            price_cents: d.price_cents,
            total_cents,
            currency: d.currency.clone(),
            creator: self.creator.clone(),
            channel: buyer.channel,
            aff: buyer.aff.clone(),
            commission_bps: d.commission_bps,
            commission_cents: commission(total_cents, d.commission_bps),
            affiliate_bps: d.affiliate_bps,
            affiliate_cents: match buyer.aff {
                Some(_) => commission(total_cents, d.affiliate_bps),
                None => 0,
            },
            repeat: false,
            status: OrderStatus::Paid,
            pay_by: None,
        })
    }

    fn audit(&self, now: u64) -> Audit {
        Audit {
            id: self.deal.id.clone(),
            status: status_of(self.ended, self.deal.ends_at, self.deal.remaining, now),
            stock: self.deal.stock,
            remaining: self.deal.remaining,
            held: self.held,
            pending: self.pending,
            sold: self.sold,
        }
    }

    /// Settles the pending order held under `reservation` (`user`'s), at `now`.
    fn settle(
        &mut self,
        reservation: &Id,
        to: Settlement,
        now: u64,
        feed: &OrderLog,
    ) -> SettleOutcome {
        let Some(hold) = self.holds.get_mut(reservation) else {
            return SettleOutcome::NotFound;
        };
        let (user, qty, pay_by) = (hold.user.clone(), hold.qty, hold.expires_at);
        let HoldState::Ordered(order) = &mut hold.state else {
            return SettleOutcome::NotFound;
        };
        if order.status != OrderStatus::Pending {
            let order = order.clone();
            let doc = self.doc(&order, &user);
            return if order.status == to.status() {
                SettleOutcome::Settled {
                    order: doc,
                    changed: false,
                    level: None,
                }
            } else {
                SettleOutcome::Final(doc)
            };
        }
        order.status = to.status();
        let order = order.clone();
        self.expiry.remove(&(order.pay_by.unwrap_or(pay_by), reservation.clone()));
        self.pending -= qty;
        let level = match to {
            Settlement::Paid => {
                self.sold += qty;
                self.version += 1;
                self.sales.record(&order, now);
                None
            }
            Settlement::Failed => {
                self.give_back(&user, qty);
                Some(self.level())
            }
        };
        let doc = self.doc(&order, &user);
        feed.append(OrderEventKind::of(to.status()), now, doc.clone());
        SettleOutcome::Settled {
            order: doc,
            changed: true,
            level,
        }
    }
}

/// The in-memory backend: one process; only its order feed can outlive it (see [`OrderLog`]).
pub struct MemoryInventory {
    hold_ms: u64,
    payment: Payment,
    feed: OrderLog,
    /// order id -> (its deal, its reservation)
    orders: DashMap<Id, (DealKey, Id)>,
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
    /// Holds last `hold_ms`; orders are paid when made and the feed lives in memory.
    pub fn new(hold_ms: u64) -> Self {
        MemoryInventory {
            hold_ms,
            payment: Payment::None,
            feed: OrderLog::in_memory(),
            orders: DashMap::new(),
            deals: DashMap::new(),
            index: DashMap::new(),
            due: Mutex::new(BTreeSet::new()),
            visits: AtomicU64::new(0),
            next: AtomicU64::new(1),
            node: rand::random::<u32>(),
        }
    }

    /// The same inventory with orders paid as `payment` says, their events in `feed`.
    pub fn with_orders(mut self, payment: Payment, feed: OrderLog) -> Self {
        self.payment = payment;
        self.feed = feed;
        self
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

    /// The books of the deals `pick` keeps, taken out of the map before any is locked.
    fn books(&self, pick: impl Fn(&DealKey) -> bool) -> Vec<(DealKey, Arc<Mutex<DealBook>>)> {
        self.deals
            .iter()
            .filter(|e| pick(e.key()))
            .map(|e| (e.key().clone(), Arc::clone(e.value())))
            .collect()
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
        creator: &Id,
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
            commission_bps: spec.commission_bps,
            affiliate_bps: spec.affiliate_bps,
            ends_at: now.saturating_add(spec.duration_ms),
            status: crate::protocol::DealStatus::Live,
            started_at: Some(now),
        };
        match self.deals.entry((room.clone(), spec.id.clone())) {
            dashmap::Entry::Occupied(_) => Err(InventoryError::Conflict(format!(
                "deal {} was already used in room {room}",
                spec.id
            ))),
            dashmap::Entry::Vacant(v) => {
                v.insert(Arc::new(Mutex::new(DealBook {
                    room: room.clone(),
                    deal: deal.clone(),
                    creator: creator.clone(),
                    sales: Ledger::default(),
                    ended: false,
                    held: 0,
                    pending: 0,
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

    async fn end_if_due(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<EndedDeal>, InventoryError> {
        let due = self.book(room, deal).is_none_or(|b| {
            let b = b.lock();
            b.ended || now >= b.deal.ends_at
        });
        if !due {
            return Ok(None);
        }
        self.end_deal(room, deal, now).await.map(Some)
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
        b.expire(req.now, &self.feed);
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
        buyer: &Buyer,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError> {
        let Some(book) = self.hold_book(room, reservation) else {
            return Ok(CheckoutOutcome::Rejected(RejectReason::NotFound));
        };
        let mut b = book.lock();
        b.expire(now, &self.feed);
        let Some(hold) = b.holds.get(reservation).filter(|h| &h.user == user) else {
            return Ok(CheckoutOutcome::Rejected(RejectReason::NotFound));
        };
        let (qty, expires_at) = (hold.qty, hold.expires_at);
        match &hold.state {
            HoldState::Ordered(order) => Ok(CheckoutOutcome::Ordered(OrderRecord {
                repeat: true,
                ..order.clone()
            })),
            HoldState::Released | HoldState::Expired => {
                Ok(CheckoutOutcome::Rejected(RejectReason::NotFound))
            }
            HoldState::Held => {
                let mut order = b.order(self.new_id('o'), reservation, qty, buyer)?;
                (order.status, order.pay_by) = self.payment.start(now);
                if let Some(hold) = b.holds.get_mut(reservation) {
                    hold.state = HoldState::Ordered(order.clone());
                }
                b.expiry.remove(&(expires_at, reservation.clone()));
                b.held -= qty;
                b.version += 1;
                match order.pay_by {
                    Some(pay_by) => {
                        b.pending += qty;
                        b.expiry.insert((pay_by, reservation.clone()));
                        let key = (room.clone(), b.deal.id.clone());
                        self.schedule(&mut b, &key, pay_by);
                    }
                    None => {
                        b.sold += qty;
                        b.sales.record(&order, now);
                    }
                }
                self.orders.insert(
                    order.order.clone(),
                    ((room.clone(), b.deal.id.clone()), reservation.clone()),
                );
                self.feed
                    .append(OrderEventKind::Created, now, b.doc(&order, user));
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
        b.expire(now, &self.feed);
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
                b.held -= qty;
                b.give_back(user, qty);
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
            let changed = b.expire(now, &self.feed);
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
        Ok(self
            .books(|k| &k.0 == room)
            .iter()
            .map(|(_, b)| {
                let b = b.lock();
                (b.view(now), b.level())
            })
            .collect())
    }

    async fn room_sales(&self, room: &Id, now: u64) -> Result<Vec<DealSales>, InventoryError> {
        let mut books = self.books(|k| &k.0 == room);
        books.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(books
            .iter()
            .map(|(k, b)| b.lock().sales(&k.0, now))
            .collect())
    }

    /// Looks at every deal of the process (the memory backend keeps no per-creator index).
    async fn creator_sales(
        &self,
        creator: &Id,
        now: u64,
    ) -> Result<Vec<DealSales>, InventoryError> {
        let mut books = self.books(|_| true);
        books.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(books
            .iter()
            .filter_map(|(k, b)| {
                let b = b.lock();
                b.pays(creator).then(|| b.sales(&k.0, now))
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

    async fn settle(
        &self,
        order: &Id,
        to: Settlement,
        now: u64,
    ) -> Result<SettleOutcome, InventoryError> {
        let Some((key, reservation)) = self.orders.get(order).map(|e| e.value().clone()) else {
            return Ok(SettleOutcome::NotFound);
        };
        let Some(book) = self.book(&key.0, &key.1) else {
            return Ok(SettleOutcome::NotFound);
        };
        let mut b = book.lock();
        b.expire(now, &self.feed);
        Ok(b.settle(&reservation, to, now, &self.feed))
    }

    async fn order_events(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<OrdersPage, InventoryError> {
        self.feed.page(cursor, limit)
    }

    async fn user_orders(
        &self,
        room: &Id,
        user: &Id,
        now: u64,
    ) -> Result<Vec<OrderDoc>, InventoryError> {
        let mut out = Vec::new();
        for (_, book) in self.books(|k| &k.0 == room) {
            let mut b = book.lock();
            b.expire(now, &self.feed);
            for h in b.holds.values().filter(|h| &h.user == user) {
                if let HoldState::Ordered(order) = &h.state {
                    out.push(b.doc(order, user));
                }
            }
        }
        Ok(out)
    }

    async fn order_feed_end(&self) -> Result<String, InventoryError> {
        Ok(self.feed.end())
    }

    async fn health(&self) -> Result<(), InventoryError> {
        Ok(())
    }
}
