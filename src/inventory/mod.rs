//! Flash-deal stock: the [`Inventory`] trait every backend implements, and its result types.
//!
//! Rules every backend guarantees (docs/protocol.md, "Inventory rules"): `remaining` never goes below
//! zero and `stock == remaining + held + pending + sold` at every instant; a hold returns its
//! stock when it expires or is cancelled, and a pending order when it fails or expires
//! ([`Payment`]); `per_user_limit` counts a user's live holds plus pending and paid orders; a repeated
//! `request_id` from the same user returns the first answer and never reserves twice; checkout and
//! cancel are idempotent.
//!
//! Bounds every backend keeps (issue 12, "Safe by default"):
//! - A deal's price and stock are within [`MAX_PRICE_CENTS`] and [`MAX_DEAL_STOCK`]: `start_deal`
//!   refuses a spec that [`DealSpec::validate`] refuses, so an order total ([`order_total`],
//!   at most [`MAX_TOTAL_CENTS`] < 2^53) never overflows, in Rust or in Lua.
//! - Only reserves that changed stock are remembered for their full idempotency time. An answer
//!   that changed nothing (a rejection) is kept briefly or not at all, and a reserve for a deal
//!   that does not exist leaves nothing behind, so a flood of made-up requests costs no memory.
//!   The consequence, by design: a rejected `request_id` repeated later (after its short record
//!   is gone) is decided afresh and may now succeed, e.g. a `sold_out` after a cancel freed
//!   stock. It still reserves at most once: the first time it changed nothing.
//! - The sales ledger ([`sales`]) is written by the atomic step that records each order, so
//!   orders, units, GMV and commission are exact whatever the concurrency, on every node; a
//!   repeated checkout sums nothing again. A deal's commission and affiliate rates are within
//!   0..=[`crate::commerce::MAX_BPS`] and each order pays [`crate::commerce::commission`] of its total (rounded
//!   down per order) to the deal's host creator and, when the buyer has one, to their `aff`.
//! - `expire_due` is driven by due times: it visits only deals with a hold due by `now`, so it
//!   costs nothing when nothing is due, however many deals are live.

pub mod feed;
pub mod memory;
pub mod redis;
pub mod sales;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use sales::DealSales;

#[cfg(doc)]
use crate::commerce::{BUCKET_MS, MAX_DEAL_STOCK, MAX_PRICE_CENTS, MAX_TOTAL_CENTS};
use crate::commerce::{Buyer, Channel};
use crate::error::HubError;
use crate::orders::{OrderDoc, OrderStatus, OrdersPage};
use crate::protocol::{Deal, DealSpec, DealStatus, Id, RejectReason};

/// Re-exported from [`crate::commerce`], its home, for existing callers.
pub use crate::commerce::order_total;

pub use memory::MemoryInventory;
pub use redis::RedisInventory;

/// A deal's `remaining` with a version that grows with every change, so a reader can tell an
/// older reading from a newer one whatever order they arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StockLevel {
    pub remaining: u32,
    pub version: u64,
}

/// One reserve attempt.
#[derive(Clone, Debug)]
pub struct ReserveRequest {
    pub room: Id,
    pub deal: Id,
    pub user: Id,
    pub request_id: Id,
    pub qty: u32,
    /// Unix ms.
    pub now: u64,
}

/// The answer to a reserve. Stored under `request_id` and returned again on a repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved {
        reservation: Id,
        qty: u32,
        expires_at: u64,
        level: StockLevel,
    },
    Rejected(RejectReason),
}

/// An order made from a hold, with what it pays to whom. The amounts are
/// [`crate::commerce::commission`] of `total_cents` (rounded down, per order) and are the ones the sales
/// ledger summed when the order was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub order: Id,
    pub reservation: Id,
    pub deal: Id,
    pub qty: u32,
    /// The deal's unit price.
    pub price_cents: u64,
    /// `qty * price_cents`, computed checked (at most [`MAX_TOTAL_CENTS`]).
    pub total_cents: u64,
    pub currency: String,
    /// The deal's host creator (who started it), paid `commission_cents`.
    pub creator: Id,
    /// The buyer's channel, as given to the checkout that made the order.
    pub channel: Channel,
    /// The buyer's affiliate, as given to the checkout that made the order, paid
    /// `affiliate_cents`. It may be the host creator too, who is then paid both.
    pub aff: Option<Id>,
    /// The deal's host rate.
    pub commission_bps: u32,
    /// `commission(total_cents, commission_bps)`.
    pub commission_cents: u64,
    /// The deal's affiliate rate (recorded whether or not the buyer had an affiliate).
    pub affiliate_bps: u32,
    /// `commission(total_cents, affiliate_bps)` when `aff` is Some, else 0.
    pub affiliate_cents: u64,
    /// True when this call returned an order an earlier checkout made (nothing was sold or
    /// summed again); false for the call that made it. Count orders only when false.
    pub repeat: bool,
    /// `paid` at once with [`Payment::None`]; `pending` (then settled or expired) with
    /// [`Payment::External`]. A repeat shows the order's status now.
    pub status: OrderStatus,
    /// Unix ms by which a pending order must be paid (None with [`Payment::None`]).
    pub pay_by: Option<u64>,
}

impl OrderRecord {
    /// The order as the feed shows it: of `deal` in `room`, bought by `user`.
    pub fn doc(&self, room: &Id, deal: &Deal, user: &Id) -> OrderDoc {
        OrderDoc {
            id: self.order.clone(),
            room: room.clone(),
            deal: self.deal.clone(),
            product_id: deal.product_id.clone(),
            title: deal.title.clone(),
            user: user.clone(),
            qty: self.qty,
            price_cents: self.price_cents,
            total_cents: self.total_cents,
            currency: self.currency.clone(),
            status: self.status,
            pay_by: self.pay_by,
            creator: self.creator.clone(),
            channel: self.channel,
            aff: self.aff.clone(),
            commission_cents: self.commission_cents,
            affiliate_cents: self.affiliate_cents,
        }
    }
}

/// How an order gets paid (`orders.payment`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Payment {
    /// An order is paid when it is made (the embedded default, and every version before).
    #[default]
    None,
    /// An order is `pending` until the shop's backend settles it, and expires (its units back
    /// on sale) when it is not paid within `timeout_ms`.
    External { timeout_ms: u64 },
}

impl Payment {
    /// The status a new order starts in, and its `pay_by` when it is made at `now`.
    pub fn start(self, now: u64) -> (OrderStatus, Option<u64>) {
        match self {
            Payment::None => (OrderStatus::Paid, None),
            Payment::External { timeout_ms } => {
                (OrderStatus::Pending, Some(now.saturating_add(timeout_ms)))
            }
        }
    }

    /// How long after its last hold could end a deal may still have a pending order.
    pub fn window_ms(self) -> u64 {
        match self {
            Payment::None => 0,
            Payment::External { timeout_ms } => timeout_ms,
        }
    }
}

/// What the shop's backend says of a pending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    Paid,
    Failed,
}

impl Settlement {
    /// The status the order ends in.
    pub fn status(self) -> OrderStatus {
        match self {
            Settlement::Paid => OrderStatus::Paid,
            Settlement::Failed => OrderStatus::Failed,
        }
    }
}

/// The answer to [`Inventory::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// The order now has the asked status: `changed` is false for a repeat. A failed order
    /// that gave its units back carries the deal's new stock (`level`).
    Settled {
        order: OrderDoc,
        changed: bool,
        level: Option<StockLevel>,
    },
    /// The order had already ended in another status (paid, failed or expired).
    Final(OrderDoc),
    /// No such order (never made, or purged with its deal).
    NotFound,
}

/// The answer to a checkout.
// An order is the answer a checkout is for: boxing it would allocate on every one.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutOutcome {
    Ordered(OrderRecord),
    Rejected(RejectReason),
}

/// The answer to a cancel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The hold is released; `level` is the new stock when this call returned it (None when an
    /// earlier cancel already had).
    Released {
        reservation: Id,
        deal: Id,
        level: Option<StockLevel>,
    },
    Rejected(RejectReason),
}

/// A deal whose stock changed outside a viewer's own request (an expired hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockChange {
    pub room: Id,
    pub deal: Id,
    pub level: StockLevel,
}

/// A deal after `end_deal`.
#[derive(Clone, Debug, PartialEq)]
pub struct EndedDeal {
    pub deal: Deal,
    /// False when the deal had already ended (by the host or by time) before this call.
    pub was_live: bool,
}

/// The stock audit: always `stock == remaining + held + pending + sold`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub id: Id,
    pub status: DealStatus,
    pub stock: u32,
    pub remaining: u32,
    pub held: u32,
    /// Units in orders waiting for payment (always 0 with `orders.payment = "none"`).
    #[serde(default)]
    pub pending: u32,
    pub sold: u32,
}

impl Audit {
    /// True when no unit was created or lost.
    pub fn balances(&self) -> bool {
        u64::from(self.stock)
            == u64::from(self.remaining)
                + u64::from(self.held)
                + u64::from(self.pending)
                + u64::from(self.sold)
    }
}

/// Why an inventory operation failed (as opposed to being answered with a rejection).
#[derive(Clone, Debug, thiserror::Error)]
pub enum InventoryError {
    /// The request is outside what the inventory accepts (a deal spec over its bounds).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("inventory unavailable: {0}")]
    Unavailable(String),
    #[error("inventory error: {0}")]
    Internal(String),
}

impl From<InventoryError> for HubError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Invalid(m) => HubError::BadRequest(m),
            InventoryError::Conflict(m) => HubError::Conflict(m),
            InventoryError::NotFound(m) => HubError::NotFound(m),
            InventoryError::Unavailable(_) => HubError::Unavailable(e.to_string()),
            InventoryError::Internal(_) => HubError::Internal(e.to_string()),
        }
    }
}

/// Where flash-deal stock lives. Implementations are shared by every connection of the process
/// and must be correct under any concurrency.
#[async_trait]
pub trait Inventory: Send + Sync + 'static {
    /// Creates a live deal in `room` ending `spec.duration_ms` after now (the backend's clock:
    /// Redis's on Redis); `creator` (the host who started it) is recorded so sales can be
    /// attributed. A deal id already used in the room is `Conflict` for as long as any record
    /// of that deal exists (on Redis: until its keys expire, `retention_ms` after its last hold
    /// could end); a deal started with that id afterwards is a new deal whose reservation and
    /// order ids never repeat the old one's.
    async fn start_deal(
        &self,
        room: &Id,
        spec: &DealSpec,
        creator: &Id,
        now: u64,
    ) -> Result<Deal, InventoryError>;

    /// Ends a deal: new reserves get `deal_not_live`; existing holds may still check out until
    /// they expire. Ending an ended deal is not an error (`was_live` is false).
    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError>;

    /// Ends a deal whose time has run out, as a node's ticker asks: None (nothing changed) while
    /// it still has time by the backend's clock (Redis's on Redis, whatever `now` says), else as
    /// [`Inventory::end_deal`].
    async fn end_if_due(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<EndedDeal>, InventoryError>;

    /// Atomically checks the deal is live, the user's limit, and remaining stock, then holds
    /// `qty` units until `now + hold_ms`.
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, InventoryError>;

    /// Turns `user`'s live hold into an order attributed to `buyer` (channel and affiliate),
    /// and adds it to the deal's sales ledger in the same atomic step, in the [`BUCKET_MS`]
    /// bucket of `now`. Repeating it returns the same order (the first call's channel,
    /// affiliate and amounts, with `repeat: true`) and sums nothing again; an expired,
    /// cancelled or unknown hold is `Rejected(NotFound)`.
    async fn checkout(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        buyer: &Buyer,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError>;

    /// Returns `user`'s held stock at once. Repeating it answers `Released` again.
    async fn cancel(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CancelOutcome, InventoryError>;

    /// Settles the pending order `order` as the shop's backend says: paid (its units are sold
    /// and its sales summed) or failed (its units go back to `remaining` and sell again),
    /// atomically, once, with its event in the order feed. Idempotent: the same settlement
    /// again is `Settled { changed: false }`; another one, or any after the order expired, is
    /// `Final`.
    async fn settle(
        &self,
        order: &Id,
        to: Settlement,
        now: u64,
    ) -> Result<SettleOutcome, InventoryError>;

    /// The order feed after `cursor` (None: from its oldest event kept), at most `limit`
    /// events: every event once, each order's in the order they happened. A cursor this
    /// backend did not write is `Invalid`.
    async fn order_events(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<OrdersPage, InventoryError>;

    /// `user`'s orders in `room`, every status, each as it stands at `now` (a pending order
    /// past its `pay_by` shows expired), in no particular order. An order whose deal was purged
    /// is absent.
    async fn user_orders(
        &self,
        room: &Id,
        user: &Id,
        now: u64,
    ) -> Result<Vec<OrderDoc>, InventoryError>;

    /// A cursor at the end of the order feed now: a reader starting there sees only the
    /// events appended after this call.
    async fn order_feed_end(&self) -> Result<String, InventoryError>;

    /// Returns every hold that expired by `now` to its deal's stock, and every pending order
    /// not paid by its `pay_by` (its units too, with an `expired` event); reports the deals
    /// changed.
    /// Safe to run from several places at once. Visits only deals with a hold due (see
    /// [`Inventory::sweep_visits`]), in bounded batches: a backlog larger than one batch is
    /// finished by the next calls.
    async fn expire_due(&self, now: u64) -> Result<Vec<StockChange>, InventoryError>;

    /// How many deals `expire_due` has looked at since this backend was made (a lock in memory,
    /// a script in Redis): the sweep's cost, for metrics and tests. 0 from a backend that does
    /// not count.
    fn sweep_visits(&self) -> u64 {
        0
    }

    /// Every deal of `room` as it stands now, with its stock version. A node reads it once when
    /// it opens a room, for the current stock; later changes reach it through the bus.
    async fn room_deals(
        &self,
        room: &Id,
        now: u64,
    ) -> Result<Vec<(Deal, StockLevel)>, InventoryError>;

    /// Every deal of `room` (with or without orders) with its sales ledger, sorted by deal id;
    /// each `deal` as it stands at `now`. Each deal's reading is consistent (taken in one
    /// atomic step) and includes every order whose checkout has been answered. A deal whose
    /// keys were purged (Redis: `retention_ms` after its last hold could end) is absent.
    async fn room_sales(&self, room: &Id, now: u64) -> Result<Vec<DealSales>, InventoryError>;

    /// Every deal, in any room, where `creator` is the host creator or the affiliate of at
    /// least one order, with its whole ledger; sorted by (room, deal). Exact as soon as a
    /// checkout has been answered, on every node (the per-creator index is written before the
    /// order can exist). A purged deal is absent, as in [`Inventory::room_sales`].
    async fn creator_sales(&self, creator: &Id, now: u64)
    -> Result<Vec<DealSales>, InventoryError>;

    /// A consistent reading of one deal's stock.
    async fn audit(&self, room: &Id, deal: &Id, now: u64) -> Result<Audit, InventoryError>;

    /// Ok when the backend answers.
    async fn health(&self) -> Result<(), InventoryError>;
}

/// Refuses a deal spec outside the protocol's bounds, whoever calls the backend.
fn check_spec(spec: &DealSpec) -> Result<(), InventoryError> {
    spec.validate()
        .map_err(|e| InventoryError::Invalid(e.to_string()))
}

/// The status a deal shows at `now`.
pub fn status_of(ended: bool, ends_at: u64, remaining: u32, now: u64) -> DealStatus {
    if ended || now >= ends_at {
        DealStatus::Ended
    } else if remaining == 0 {
        DealStatus::SoldOut
    } else {
        DealStatus::Live
    }
}
