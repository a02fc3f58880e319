//! The inventory scripts' replies, parsed by pure functions into the trait's types: every reader
//! of a script's reply is here, next to a unit test that pins the reply's shape.
//!
//! **Format.** Every deal script (`src/inventory/lua/*.lua` but `due_take.lua` and `index.lua`)
//! returns one `cjson`-encoded object whose `r` names the variant (`"reserved"`, `"rejected"`,
//! …), read here into a serde enum tagged by `r` whose variants refuse unknown fields: a field
//! added to a script without its reader, or missing from it, fails a unit test here (and, if it
//! ever reached a hub, an `Internal` error), never a silently shifted reading. Numbers travel as
//! decimal strings (Lua numbers are doubles and `cjson` prints 14 significant digits; a total of
//! 10^15 cents would not survive), flags as JSON booleans. Two scripts return a flat list of
//! strings instead, read by tag and exact length: `due_take.lua` (member, due time, …, read by
//! [`parse_due_take`]) and `reserve.lua`, the flash spike's hot path, where `cjson.encode` cost
//! Redis about 9% of its reserves per second ([`parse_reserve`]).
//!
//! **Stored data.** Only what the scripts *return* is JSON. What they *store* keeps the format
//! it had before (the deal, hold and users hashes, the idempotency records, the order stream
//! and the sales ledger; issue 23 added fields and hold states, never changed one), so a record
//! an earlier version wrote reads alike. (Issue 23 moved a deal's keys to its room's feed
//! partition slot, so deals started before it are not found: docs/redis.md, "Upgrading".) So
//! `reserve.lua` still stores its first answer as `OK|reservation|qty|expires_at|remaining|
//! version` or `R|reason` and turns a stored answer into the JSON reply on a repeat; and the
//! deal hash still stores `image_url` with `|` as `%7C`, which the scripts alone write and
//! decode (a reply carries the URL as given).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use super::super::sales::{DealSales, Earning, Sales};
use super::super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, InventoryError, OrderRecord, ReserveOutcome,
    SettleOutcome, StockLevel, order_total, status_of,
};
use crate::commerce::{Channel, commission};
use crate::orders::{OrderDoc, OrderEvent, OrderEventKind, OrderStatus};
use crate::protocol::{Deal, Id, RejectReason};

pub(super) fn bad_reply(what: &str, reply: &str) -> InventoryError {
    InventoryError::Internal(format!("unexpected {what} reply from Redis: {reply:?}"))
}

pub(super) fn num<T: FromStr>(what: &str, s: Option<&str>) -> Result<T, InventoryError> {
    s.and_then(|v| v.parse().ok())
        .ok_or_else(|| bad_reply(what, s.unwrap_or("<missing>")))
}

/// Reads `reply` (one script's JSON) as `T`; a reply of any other shape is a bad reply that
/// names the script and says what did not fit.
fn decode<T: DeserializeOwned>(what: &str, reply: &str) -> Result<T, InventoryError> {
    serde_json::from_str(reply).map_err(|e| {
        InventoryError::Internal(format!(
            "unexpected {what} reply from Redis ({e}): {reply:?}"
        ))
    })
}

/// A number sent as a decimal string.
fn dec<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|_| D::Error::custom(format!("not a number: {s:?}")))
}

/// A number sent as a decimal string, "" (a field the deal hash does not have) as 0.
fn dec_or_zero<'de, D: Deserializer<'de>, T: FromStr + Default>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(T::default());
    }
    s.parse()
        .map_err(|_| D::Error::custom(format!("not a number: {s:?}")))
}

/// An optional number sent as a decimal string (absent: None).
fn dec_opt<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error> {
    dec(d).map(Some)
}

/// An optional number sent as a decimal string, "" (a field the deal hash does not have) as
/// None.
fn dec_or_none<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| D::Error::custom(format!("not a number: {s:?}")))
}

/// An id sent as a string.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    let s = String::deserialize(d)?;
    Id::new(&s).map_err(|_| D::Error::custom(format!("not an id: {s:?}")))
}

/// An id sent as a string, "" for none.
fn id_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    Id::new(&s)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("not an id: {s:?}")))
}

/// A script's reject reason, by its wire name; never `unavailable` (the hub's own answer).
fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<RejectReason, D::Error> {
    let s = String::deserialize(d)?;
    match s.parse() {
        Ok(RejectReason::Unavailable) | Err(_) => {
            Err(D::Error::custom(format!("not a reject reason: {s:?}")))
        }
        Ok(r) => Ok(r),
    }
}

/// `view()` of `common.lua`: the deal hash's fields, each as stored ("" for a field a deal
/// stored before it existed does not have: rates read as 0, no image, an empty title).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealView {
    #[serde(deserialize_with = "id")]
    product_id: Id,
    #[serde(deserialize_with = "dec")]
    price_cents: u64,
    currency: String,
    #[serde(deserialize_with = "dec")]
    stock: u32,
    #[serde(deserialize_with = "dec")]
    remaining: u32,
    #[serde(deserialize_with = "dec")]
    held: u32,
    /// Units in pending orders; "" for a deal stored before payments existed.
    #[serde(deserialize_with = "dec_or_zero")]
    pending: u32,
    #[serde(deserialize_with = "dec")]
    sold: u32,
    #[serde(deserialize_with = "dec")]
    per_user_limit: u32,
    #[serde(deserialize_with = "dec")]
    ends_at: u64,
    ended: bool,
    #[serde(deserialize_with = "dec")]
    version: u64,
    #[serde(deserialize_with = "dec_or_zero")]
    commission_bps: u32,
    #[serde(deserialize_with = "dec_or_zero")]
    affiliate_bps: u32,
    image_url: String,
    title: String,
    /// When the deal started (Unix ms); "" for a deal stored before starts were recorded.
    #[serde(deserialize_with = "dec_or_none")]
    started_at: Option<u64>,
}

impl DealView {
    /// The deal `id` as the view shows it at `now`, with its audit and stock level.
    pub fn into_parts(self, id: &Id, now: u64) -> (Deal, Audit, StockLevel) {
        let status = status_of(self.ended, self.ends_at, self.remaining, now);
        let deal = Deal {
            id: id.clone(),
            product_id: self.product_id,
            title: self.title,
            image_url: Some(self.image_url).filter(|u| !u.is_empty()),
            price_cents: self.price_cents,
            currency: self.currency,
            stock: self.stock,
            remaining: self.remaining,
            per_user_limit: self.per_user_limit,
            commission_bps: self.commission_bps,
            affiliate_bps: self.affiliate_bps,
            ends_at: self.ends_at,
            status,
            started_at: self.started_at,
        };
        let audit = Audit {
            id: id.clone(),
            status,
            stock: self.stock,
            remaining: self.remaining,
            held: self.held,
            pending: self.pending,
            sold: self.sold,
        };
        let level = StockLevel {
            remaining: self.remaining,
            version: self.version,
        };
        (deal, audit, level)
    }
}

/// `start_deal.lua`'s answer.
#[derive(Debug, PartialEq)]
pub enum StartReply {
    /// The deal as stored.
    Deal(Deal),
    /// The deal id is taken in the room (`conflict`).
    Conflict,
}

#[derive(Deserialize)]
// Variants without fields are `{}`, not unit variants: serde lets a unit variant of an
// internally tagged enum ignore unknown fields.
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum StartWire {
    Started {
        #[serde(rename = "purge_at", deserialize_with = "dec")]
        _purge_at: u64,
        deal: DealView,
    },
    Conflict {},
}

/// Parses `start_deal.lua`'s reply: `{r: "conflict"}`, or `{r: "started", purge_at, deal}`.
pub fn parse_start(reply: &str, id: &Id, now: u64) -> Result<StartReply, InventoryError> {
    Ok(match decode("start", reply)? {
        StartWire::Started { deal, .. } => StartReply::Deal(deal.into_parts(id, now).0),
        StartWire::Conflict {} => StartReply::Conflict,
    })
}

/// `end_deal.lua`'s answer.
#[derive(Debug, PartialEq)]
pub enum EndReply {
    /// No such deal (`not_found`).
    NotFound,
    /// Asked to end it only when due, and it has time left (`not_due`).
    NotDue,
    /// The deal as it ended, and whether it was live until then.
    Ended(EndedDeal),
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum EndWire {
    NotFound {},
    NotDue {},
    Ended { was_live: bool, deal: DealView },
}

/// Parses `end_deal.lua`'s reply: `{r: "not_found"}`, `{r: "not_due"}`, or
/// `{r: "ended", was_live, deal}`.
pub fn parse_end(reply: &str, id: &Id, now: u64) -> Result<EndReply, InventoryError> {
    Ok(match decode("end", reply)? {
        EndWire::NotFound {} => EndReply::NotFound,
        EndWire::NotDue {} => EndReply::NotDue,
        EndWire::Ended { was_live, deal } => EndReply::Ended(EndedDeal {
            deal: deal.into_parts(id, now).0,
            was_live,
        }),
    })
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum AuditWire {
    NotFound {},
    Deal { deal: DealView },
}

/// Parses `audit.lua`'s reply: `{r: "not_found"}` (None), or `{r: "deal", deal}`.
pub fn parse_audit(
    reply: &str,
    id: &Id,
    now: u64,
) -> Result<Option<(Deal, Audit, StockLevel)>, InventoryError> {
    Ok(match decode("audit", reply)? {
        AuditWire::NotFound {} => None,
        AuditWire::Deal { deal } => Some(deal.into_parts(id, now)),
    })
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum SalesWire {
    NotFound {},
    Deal {
        deal: Box<DealView>,
        creator: String,
        /// The ledger hash; `cjson` writes an empty one as `{}`.
        ledger: BTreeMap<String, String>,
    },
}

/// Parses `sales.lua`'s reply: `{r: "deal", deal, creator, ledger}` (the ledger's fields and
/// values), or `{r: "not_found"}` (None: the deal does not exist, never made or purged).
pub fn parse_sales(
    room: &Id,
    id: &Id,
    reply: &str,
    now: u64,
) -> Result<Option<DealSales>, InventoryError> {
    let SalesWire::Deal {
        deal,
        creator,
        ledger,
    } = decode("sales", reply)?
    else {
        return Ok(None);
    };
    let mut sales = DealSales {
        room: room.clone(),
        deal: (*deal).into_parts(id, now).0,
        creator: reply_id("creator", &creator)?,
        total: Sales::default(),
        channels: Default::default(),
        host: Earning::default(),
        affiliates: Default::default(),
        buckets: Default::default(),
    };
    for (field, value) in &ledger {
        add_figure(&mut sales, field, num(field, Some(value))?)?;
    }
    // The host earns on every order: their sales are the deal's.
    sales.total = sales.host.sales;
    Ok(Some(sales))
}

/// An id in a reply, or a bad reply.
fn reply_id(what: &str, s: &str) -> Result<Id, InventoryError> {
    Id::new(s).map_err(|_| bad_reply(what, s))
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

/// `reserve.lua`'s answer: the outcome, and for a fresh hold the deal's earliest live hold
/// expiry (for the sweepers' due index; a repeated request does not carry it).
#[derive(Debug, PartialEq)]
pub struct Reserved {
    pub outcome: ReserveOutcome,
    pub due: Option<u64>,
}

/// Parses `reserve.lua`'s reply, a flat list of strings (the hot path skips cjson):
/// `["rejected", reason]`, or `["reserved", reservation, qty, expires_at, remaining, version]`
/// with `due` after them for a fresh hold (a repeat has none). Any other tag or length, or a
/// field that does not read, is a bad reply.
pub fn parse_reserve(reply: &[String]) -> Result<Reserved, InventoryError> {
    let bad = || bad_reply("reserve", &format!("{reply:?}"));
    let fields: Vec<&str> = reply.iter().map(String::as_str).collect();
    Ok(match fields[..] {
        ["rejected", reason] => Reserved {
            outcome: match RejectReason::from_str(reason) {
                Ok(RejectReason::Unavailable) | Err(_) => return Err(bad()),
                Ok(reason) => ReserveOutcome::Rejected(reason),
            },
            due: None,
        },
        [
            "reserved",
            reservation,
            qty,
            expires_at,
            remaining,
            version,
            ref due @ ..,
        ] if due.len() <= 1 => {
            let n = |v: &str| v.parse::<u64>().map_err(|_| bad());
            Reserved {
                outcome: ReserveOutcome::Reserved {
                    reservation: Id::new(reservation).map_err(|_| bad())?,
                    qty: u32::try_from(n(qty)?).map_err(|_| bad())?,
                    expires_at: n(expires_at)?,
                    level: StockLevel {
                        remaining: u32::try_from(n(remaining)?).map_err(|_| bad())?,
                        version: n(version)?,
                    },
                },
                due: due.first().map(|d| n(d)).transpose()?,
            }
        }
        _ => return Err(bad()),
    })
}

/// `checkout.lua`'s order, as the script computed it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderWire {
    #[serde(deserialize_with = "id")]
    order: Id,
    #[serde(deserialize_with = "dec")]
    qty: u32,
    #[serde(deserialize_with = "dec")]
    price_cents: u64,
    currency: String,
    #[serde(deserialize_with = "dec")]
    total_cents: u64,
    repeat: bool,
    channel: String,
    #[serde(deserialize_with = "id_or_none")]
    aff: Option<Id>,
    #[serde(deserialize_with = "dec")]
    commission_bps: u32,
    #[serde(deserialize_with = "dec")]
    commission_cents: u64,
    #[serde(deserialize_with = "dec")]
    affiliate_bps: u32,
    #[serde(deserialize_with = "dec")]
    affiliate_cents: u64,
    #[serde(deserialize_with = "id")]
    creator: Id,
    #[serde(deserialize_with = "status")]
    status: OrderStatus,
    #[serde(deserialize_with = "dec_or_none")]
    pay_by: Option<u64>,
}

fn status<'de, D: Deserializer<'de>>(d: D) -> Result<OrderStatus, D::Error> {
    let s = String::deserialize(d)?;
    OrderStatus::parse(&s).ok_or_else(|| D::Error::custom(format!("not an order status: {s:?}")))
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum CheckoutWire {
    Ordered(OrderWire),
    Rejected {
        #[serde(deserialize_with = "reason")]
        reason: RejectReason,
    },
    Total {
        qty: String,
        price_cents: String,
    },
}

/// The order of `o` for `reservation` of `deal`, its total and both amounts checked against
/// Rust's own arithmetic, so the script and [`commission`] never disagree silently.
fn order_of(
    o: OrderWire,
    reservation: &Id,
    deal: &Id,
    reply: &str,
) -> Result<OrderRecord, InventoryError> {
    // The script's total is exact (below 2^53); check it against ours anyway.
    let total_cents = order_total(o.price_cents, o.qty)
        .filter(|t| *t == o.total_cents)
        .ok_or_else(|| bad_reply("order total", reply))?;
    let commission_cents = commission(total_cents, o.commission_bps);
    let affiliate_cents = match o.aff {
        Some(_) => commission(total_cents, o.affiliate_bps),
        None => 0,
    };
    if commission_cents != o.commission_cents || affiliate_cents != o.affiliate_cents {
        return Err(bad_reply("order commission", reply));
    }
    Ok(OrderRecord {
        order: o.order,
        reservation: reservation.clone(),
        deal: deal.clone(),
        qty: o.qty,
        price_cents: o.price_cents,
        total_cents,
        currency: o.currency,
        creator: o.creator,
        channel: Channel::parse(&o.channel),
        aff: o.aff,
        commission_bps: o.commission_bps,
        commission_cents,
        affiliate_bps: o.affiliate_bps,
        affiliate_cents,
        repeat: o.repeat,
        status: o.status,
        pay_by: o.pay_by,
    })
}

/// An order as `common.lua`'s `order_fields` writes it, in a settle reply and in each feed
/// entry: every value a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderFields {
    #[serde(deserialize_with = "id")]
    id: Id,
    #[serde(deserialize_with = "id")]
    room: Id,
    #[serde(deserialize_with = "id")]
    deal: Id,
    #[serde(deserialize_with = "id")]
    product_id: Id,
    title: String,
    #[serde(deserialize_with = "id")]
    user: Id,
    #[serde(deserialize_with = "dec")]
    qty: u32,
    #[serde(deserialize_with = "dec")]
    price_cents: u64,
    #[serde(deserialize_with = "dec")]
    total_cents: u64,
    currency: String,
    #[serde(deserialize_with = "status")]
    status: OrderStatus,
    #[serde(deserialize_with = "dec_or_none")]
    pay_by: Option<u64>,
    #[serde(deserialize_with = "id")]
    creator: Id,
    channel: String,
    #[serde(deserialize_with = "id_or_none")]
    aff: Option<Id>,
    #[serde(deserialize_with = "dec")]
    commission_cents: u64,
    #[serde(deserialize_with = "dec")]
    affiliate_cents: u64,
}

impl From<OrderFields> for OrderDoc {
    fn from(o: OrderFields) -> OrderDoc {
        OrderDoc {
            id: o.id,
            room: o.room,
            deal: o.deal,
            product_id: o.product_id,
            title: o.title,
            user: o.user,
            qty: o.qty,
            price_cents: o.price_cents,
            total_cents: o.total_cents,
            currency: o.currency,
            status: o.status,
            pay_by: o.pay_by,
            creator: o.creator,
            channel: Channel::parse(&o.channel),
            aff: o.aff,
            commission_cents: o.commission_cents,
            affiliate_cents: o.affiliate_cents,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum SettleWire {
    Settled {
        changed: bool,
        order: OrderFields,
        #[serde(default, deserialize_with = "dec_opt")]
        remaining: Option<u32>,
        #[serde(default, deserialize_with = "dec_opt")]
        version: Option<u64>,
    },
    Final {
        order: OrderFields,
    },
    NotFound {},
}

/// Parses `settle.lua`'s reply: `{r: "settled", changed, order, remaining?, version?}` (the
/// stock level when the order was failed now), `{r: "final", order}` or `{r: "not_found"}`.
pub fn parse_settle(reply: &str) -> Result<SettleOutcome, InventoryError> {
    Ok(match decode("settle", reply)? {
        SettleWire::Settled {
            changed,
            order,
            remaining,
            version,
        } => {
            let order = OrderDoc::from(order);
            let level = match (remaining, version) {
                (Some(remaining), Some(version)) if order.status == OrderStatus::Failed => {
                    Some(StockLevel { remaining, version })
                }
                (Some(_), Some(_)) | (None, None) => None,
                _ => return Err(bad_reply("settle", reply)),
            };
            SettleOutcome::Settled {
                order,
                changed,
                level,
            }
        }
        SettleWire::Final { order, .. } => SettleOutcome::Final(order.into()),
        SettleWire::NotFound {} => SettleOutcome::NotFound,
    })
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum OrdersWire {
    /// `cjson` writes an empty list as `{}`.
    Orders { orders: OrdersList },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OrdersList {
    List(Vec<OrderFields>),
    Empty(BTreeMap<String, String>),
}

/// Parses `buyer_orders.lua`'s reply `{r: "orders", orders: [order_fields()]}` (an empty list
/// written as `{}`).
pub fn parse_orders(reply: &str) -> Result<Vec<OrderDoc>, InventoryError> {
    let OrdersWire::Orders { orders } = decode("buyer orders", reply)?;
    match orders {
        OrdersList::List(list) => Ok(list.into_iter().map(OrderDoc::from).collect()),
        OrdersList::Empty(m) if m.is_empty() => Ok(Vec::new()),
        OrdersList::Empty(_) => Err(bad_reply("buyer orders", reply)),
    }
}

/// The event stored as entry `entry` (a stream id) of feed partition `p`, from its flat
/// field-value list (`type`, `ts` and the order's fields, `order_fields`, every value a string);
/// its id is `pP-ENTRY`, unique and stable. Read straight from the list, not through JSON: every
/// node's order follower and every webhook delivery reads each event.
pub fn parse_feed_entry(p: u32, entry: &str, fields: &[String]) -> Result<OrderEvent, InventoryError> {
    let bad = |why: String| InventoryError::Internal(format!("unexpected feed entry {entry} in Redis: {why}"));
    let (mut kind, mut ts) = (None, None);
    let mut order = Vec::with_capacity(fields.len() / 2);
    for kv in fields.chunks_exact(2) {
        match kv[0].as_str() {
            "type" => kind = Some(kv[1].as_str()),
            "ts" => ts = Some(kv[1].as_str()),
            k => order.push((k, kv[1].as_str())),
        }
    }
    let kind = kind.ok_or_else(|| bad("no type".into()))?;
    let kind = OrderEventKind::deserialize(
        serde::de::value::StrDeserializer::<serde::de::value::Error>::new(kind),
    )
    .map_err(|e| bad(format!("type: {e}")))?;
    let ts = ts
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| bad(format!("ts {ts:?}")))?;
    let order = OrderFields::deserialize(serde::de::value::MapDeserializer::<
        _,
        serde::de::value::Error,
    >::new(order.into_iter()))
    .map_err(|e| bad(e.to_string()))?;
    Ok(OrderEvent {
        id: format!("p{p}-{entry}"),
        kind,
        ts,
        order: order.into(),
    })
}

/// Parses `checkout.lua`'s reply for `reservation` of `deal` in `room`: `{r: "ordered", …}`
/// (the order, its amounts checked against Rust's arithmetic), `{r: "rejected", reason}`, or
/// `{r: "total", qty, price_cents}` (an order total out of range: a bug, an `Internal` error).
pub fn parse_checkout(
    reply: &str,
    room: &Id,
    reservation: &Id,
    deal: &Id,
) -> Result<CheckoutOutcome, InventoryError> {
    match decode("checkout", reply)? {
        CheckoutWire::Ordered(o) => Ok(CheckoutOutcome::Ordered(order_of(
            o,
            reservation,
            deal,
            reply,
        )?)),
        CheckoutWire::Rejected { reason } => Ok(CheckoutOutcome::Rejected(reason)),
        CheckoutWire::Total { qty, price_cents } => Err(InventoryError::Internal(format!(
            "order total of {qty} x {price_cents} is out of range (deal {deal} in room {room})"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum CancelWire {
    Released {
        #[serde(default, deserialize_with = "dec_opt")]
        remaining: Option<u32>,
        #[serde(default, deserialize_with = "dec_opt")]
        version: Option<u64>,
    },
    Rejected {
        #[serde(deserialize_with = "reason")]
        reason: RejectReason,
    },
}

/// Parses `cancel.lua`'s reply for `reservation` of `deal`: `{r: "released"}` (the stock did
/// not change: the hold had been released already), `{r: "released", remaining, version}`, or
/// `{r: "rejected", reason}`. A level with only one of its two fields is a bad reply.
pub fn parse_cancel(
    reply: &str,
    reservation: &Id,
    deal: &Id,
) -> Result<CancelOutcome, InventoryError> {
    match decode("cancel", reply)? {
        CancelWire::Released { remaining, version } => Ok(CancelOutcome::Released {
            reservation: reservation.clone(),
            deal: deal.clone(),
            level: match (remaining, version) {
                (Some(remaining), Some(version)) => Some(StockLevel { remaining, version }),
                (None, None) => None,
                _ => return Err(bad_reply("cancel", reply)),
            },
        }),
        CancelWire::Rejected { reason } => Ok(CancelOutcome::Rejected(reason)),
    }
}

/// `sweep.lua`'s answer for one deal.
#[derive(Debug, Default, PartialEq)]
pub struct Sweep {
    /// The deal's stock when expired holds returned some.
    pub returned: Option<StockLevel>,
    /// The deal's next hold expiry.
    pub next: Option<u64>,
    /// The deal ended and holds nothing, or its keys are gone: nobody needs to sweep it again.
    pub done: bool,
}

#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum SweepWire {
    Gone {},
    Swept {
        #[serde(deserialize_with = "dec")]
        expired: u64,
        #[serde(deserialize_with = "dec")]
        remaining: u32,
        #[serde(deserialize_with = "dec")]
        version: u64,
        done: bool,
        #[serde(default, deserialize_with = "dec_opt")]
        next: Option<u64>,
    },
}

/// Parses `sweep.lua`'s reply: `{r: "gone"}`, or `{r: "swept", expired, remaining, version,
/// done, next}` (`next` absent when the deal needs no further sweep).
pub fn parse_sweep(reply: &str) -> Result<Sweep, InventoryError> {
    Ok(match decode("sweep", reply)? {
        SweepWire::Gone {} => Sweep {
            done: true,
            ..Sweep::default()
        },
        SweepWire::Swept {
            expired,
            remaining,
            version,
            done,
            next,
        } => Sweep {
            returned: (expired != 0).then_some(StockLevel { remaining, version }),
            next,
            done,
        },
    })
}

/// Parses `due_take.lua`'s reply: member, due time (a sorted-set score), member, due time, …
pub fn parse_due_take(flat: &[String]) -> Result<Vec<(String, u64)>, InventoryError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DealStatus;
    use serde_json::{Value, json};

    fn id(s: &str) -> Id {
        Id::new(s).expect("id")
    }

    /// A deal's view as `view()` writes it: 17 fields, numbers as strings.
    fn view() -> Value {
        json!({
            "product_id": "p1", "price_cents": "999", "currency": "USD", "stock": "10",
            "remaining": "7", "held": "2", "pending": "0", "sold": "1", "per_user_limit": "3",
            "ends_at": "60000", "ended": false, "version": "4", "commission_bps": "1000",
            "affiliate_bps": "500", "image_url": "https://x/a|b.png", "title": "Big | sale",
            "started_at": "1500"
        })
    }

    /// `reply` with `field` set to `value` (Null: removed).
    fn with(mut reply: Value, field: &str, value: Value) -> String {
        let map = reply.as_object_mut().expect("object");
        match value {
            Value::Null => map.remove(field),
            v => map.insert(field.to_owned(), v),
        };
        reply.to_string()
    }

    fn audit_of(view: Value) -> Result<Option<(Deal, Audit, StockLevel)>, InventoryError> {
        parse_audit(
            &json!({"r": "deal", "deal": view}).to_string(),
            &id("d"),
            1_000,
        )
    }

    #[test]
    fn a_view_counts_pending_units_and_reads_an_older_deal_as_none_pending() {
        let mut v = view();
        v["remaining"] = json!("6");
        v["pending"] = json!("1");
        let (_, audit, _) = audit_of(v).expect("view").expect("deal");
        assert_eq!((audit.remaining, audit.pending), (6, 1));
        assert!(audit.balances());
        let mut old = view();
        old["pending"] = json!("");
        let (_, audit, _) = audit_of(old).expect("view").expect("deal");
        assert_eq!(audit.pending, 0);
    }

    #[test]
    fn a_view_reads_every_field_and_text_fields_keep_the_separator() {
        let (deal, audit, level) = audit_of(view()).expect("view").expect("deal");
        assert_eq!(deal.product_id, id("p1"));
        assert_eq!((deal.price_cents, deal.currency.as_str()), (999, "USD"));
        assert_eq!(
            (deal.stock, deal.remaining, deal.per_user_limit),
            (10, 7, 3)
        );
        assert_eq!((deal.ends_at, deal.status), (60_000, DealStatus::Live));
        assert_eq!((deal.commission_bps, deal.affiliate_bps), (1000, 500));
        assert_eq!(deal.image_url.as_deref(), Some("https://x/a|b.png"));
        assert_eq!(deal.title, "Big | sale");
        assert_eq!(deal.started_at, Some(1_500));
        assert_eq!((audit.held, audit.sold, audit.remaining), (2, 1, 7));
        assert_eq!(
            level,
            StockLevel {
                remaining: 7,
                version: 4
            }
        );
        // A deal stored before rates, images, titles and start times existed.
        let mut old = view();
        for f in [
            "commission_bps",
            "affiliate_bps",
            "image_url",
            "title",
            "started_at",
        ] {
            old[f] = json!("");
        }
        old["ended"] = json!(true);
        let (deal, _, _) = audit_of(old).expect("old view").expect("deal");
        assert_eq!((deal.commission_bps, deal.affiliate_bps), (0, 0));
        assert_eq!((deal.image_url, deal.title.as_str()), (None, ""));
        assert_eq!(deal.status, DealStatus::Ended);
        assert_eq!(deal.started_at, None, "not shown, never a failure");
    }

    #[test]
    fn a_view_with_a_field_missing_added_or_mistyped_is_refused() {
        for bad in [
            with(view(), "title", Value::Null),
            with(view(), "colour", json!("red")),
            with(view(), "stock", json!(10)),
            with(view(), "stock", json!("")),
            with(view(), "ended", json!("1")),
            with(view(), "product_id", json!("p 1")),
        ] {
            let bad: Value = serde_json::from_str(&bad).expect("json");
            let got = audit_of(bad.clone());
            assert!(
                matches!(got, Err(InventoryError::Internal(_))),
                "{bad}: {got:?}"
            );
        }
    }

    /// The fields `view()` reads from the deal hash (`VIEW` in `common.lua`) are the fields of
    /// [`DealView`]: a field added to the script's list, or dropped from it, fails here.
    #[test]
    fn the_scripts_view_fields_are_the_readers() {
        let lua = include_str!("../lua/common.lua");
        let list = lua
            .split_once("local VIEW = {")
            .and_then(|(_, rest)| rest.split_once('}'))
            .expect("VIEW in common.lua")
            .0;
        let names: Vec<&str> = list
            .split(',')
            .map(|n| n.trim().trim_matches('"'))
            .filter(|n| !n.is_empty())
            .collect();
        let view = view();
        let mut fields: Vec<&str> = view
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut script = names.clone();
        fields.sort_unstable();
        script.sort_unstable();
        assert_eq!(script, fields);
        assert!(audit_of(view).is_ok());
    }

    #[test]
    fn start_end_and_audit_replies() {
        let started = json!({"r": "started", "purge_at": "123", "deal": view()}).to_string();
        let started = parse_start(&started, &id("d"), 1_000).expect("start");
        assert!(
            matches!(started, StartReply::Deal(ref d) if d.remaining == 7),
            "{started:?}"
        );
        assert_eq!(
            parse_start(r#"{"r":"conflict"}"#, &id("d"), 0).expect("conflict"),
            StartReply::Conflict
        );
        assert!(
            parse_start(&view().to_string(), &id("d"), 0).is_err(),
            "no r"
        );
        let no_purge = json!({"r": "started", "deal": view()}).to_string();
        assert!(parse_start(&no_purge, &id("d"), 0).is_err(), "no purge_at");
        assert!(
            parse_start("CONFLICT", &id("d"), 0).is_err(),
            "the old format"
        );
        assert_eq!(
            parse_end(r#"{"r":"not_found"}"#, &id("d"), 0).expect("end"),
            EndReply::NotFound
        );
        assert_eq!(
            parse_end(r#"{"r":"not_due"}"#, &id("d"), 0).expect("end"),
            EndReply::NotDue
        );
        let ended = json!({"r": "ended", "was_live": true, "deal": view()}).to_string();
        let EndReply::Ended(e) = parse_end(&ended, &id("d"), 0).expect("end") else {
            panic!("ended")
        };
        assert!(e.was_live);
        let extra = json!({"r": "not_due", "deal": view()}).to_string();
        assert!(parse_end(&extra, &id("d"), 0).is_err(), "a field too many");
        assert_eq!(
            parse_audit(r#"{"r":"not_found"}"#, &id("d"), 0).expect("audit"),
            None
        );
    }

    fn list(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|f| (*f).to_owned()).collect()
    }

    const RESERVED: [&str; 7] = ["reserved", "hab-1", "2", "5000", "8", "3", "4000"];

    #[test]
    fn reserve_replies_and_a_changed_field_is_refused() {
        let fresh = parse_reserve(&list(&RESERVED)).expect("fresh");
        assert_eq!(
            fresh,
            Reserved {
                outcome: ReserveOutcome::Reserved {
                    reservation: id("hab-1"),
                    qty: 2,
                    expires_at: 5000,
                    level: StockLevel {
                        remaining: 8,
                        version: 3
                    },
                },
                due: Some(4000),
            }
        );
        let repeat = parse_reserve(&list(&RESERVED[..6])).expect("repeat");
        assert_eq!(repeat.due, None);
        assert_eq!(repeat.outcome, fresh.outcome);
        assert_eq!(
            parse_reserve(&list(&["rejected", "sold_out"]))
                .expect("rejected")
                .outcome,
            ReserveOutcome::Rejected(RejectReason::SoldOut)
        );
        let changed = |i: usize, v: &str| {
            let mut f = list(&RESERVED);
            f[i] = v.to_owned();
            f
        };
        for bad in [
            changed(2, "two"),
            changed(1, "hab 1"),
            changed(4, "-1"),
            changed(6, ""),
            changed(0, "Reserved"),
            [list(&RESERVED), list(&["1"])].concat(), // a field added
            list(&RESERVED[..5]),                     // a field missing
            list(&["rejected", "why_not"]),
            list(&["rejected", "unavailable"]),
            list(&["rejected"]),
            list(&["rejected", "sold_out", "extra"]),
            list(&["stored", "X|1"]),
            list(&["OK|hab-1|2|5000|8|3"]),
            Vec::new(),
        ] {
            assert!(parse_reserve(&bad).is_err(), "{bad:?}");
        }
    }

    fn ordered() -> Value {
        // 3 x 999 = 2997; 10% host = 299, 5% affiliate = 149.
        json!({"r": "ordered", "order": "oab-1", "qty": "3", "price_cents": "999",
            "currency": "USD", "total_cents": "2997", "repeat": false, "channel": "paid",
            "aff": "aff1", "commission_bps": "1000", "commission_cents": "299",
            "affiliate_bps": "500", "affiliate_cents": "149", "creator": "host1",
            "status": "pending", "pay_by": "61000"})
    }

    /// An order as `order_fields()` writes it.
    fn fields() -> Value {
        json!({"id": "oab-1", "room": "r", "deal": "d", "product_id": "p", "title": "Mug | big",
            "user": "ana", "qty": "2", "price_cents": "500", "total_cents": "1000",
            "currency": "USD", "status": "failed", "pay_by": "9000", "creator": "h",
            "channel": "live", "aff": "", "commission_cents": "0", "affiliate_cents": "0"})
    }

    #[test]
    fn settle_replies_carry_the_order_and_a_failed_ones_stock() {
        let r = json!({"r": "settled", "changed": true, "order": fields(), "remaining": "4",
            "version": "9"});
        let SettleOutcome::Settled { order, changed, level } =
            parse_settle(&r.to_string()).expect("settled")
        else {
            panic!("settled")
        };
        assert!(changed);
        assert_eq!(level, Some(StockLevel { remaining: 4, version: 9 }));
        assert_eq!((order.qty, order.total_cents, order.aff), (2, 1000, None));
        assert_eq!((order.status, order.pay_by, order.channel), (OrderStatus::Failed, Some(9000), Channel::Live));
        let repeat = json!({"r": "settled", "changed": false, "order": fields()});
        assert!(matches!(parse_settle(&repeat.to_string()), Ok(SettleOutcome::Settled { changed: false, level: None, .. })));
        let fin = json!({"r": "final", "order": fields()});
        assert!(matches!(parse_settle(&fin.to_string()), Ok(SettleOutcome::Final(o)) if o.status == OrderStatus::Failed));
        assert_eq!(parse_settle(r#"{"r":"not_found"}"#).expect("nf"), SettleOutcome::NotFound);
        let half = json!({"r": "settled", "changed": true, "order": fields(), "remaining": "4"});
        assert!(parse_settle(&half.to_string()).is_err(), "a level without its version");
        let mut extra = fields();
        extra["refund"] = json!("1");
        assert!(parse_settle(&json!({"r": "final", "order": extra}).to_string()).is_err());
    }

    #[test]
    fn buyer_orders_replies_read_a_list_or_cjsons_empty_object() {
        let one = json!({"r": "orders", "orders": [fields()]}).to_string();
        assert_eq!(parse_orders(&one).expect("orders").len(), 1);
        assert!(parse_orders(r#"{"r":"orders","orders":{}}"#).expect("none").is_empty());
        assert!(parse_orders(r#"{"r":"orders","orders":{"x":"1"}}"#).is_err());
    }

    #[test]
    fn checkout_replies_are_checked_against_rusts_own_arithmetic() {
        let (room, resv, deal) = (id("r"), id("hab-1"), id("d"));
        let ok = ordered().to_string();
        let CheckoutOutcome::Ordered(o) = parse_checkout(&ok, &room, &resv, &deal).expect("order")
        else {
            panic!("ordered")
        };
        assert_eq!(
            (o.qty, o.total_cents, o.currency.as_str()),
            (3, 2997, "USD")
        );
        assert_eq!(
            (o.channel, o.aff.clone(), o.creator.clone()),
            (Channel::Paid, Some(id("aff1")), id("host1"))
        );
        assert_eq!(
            (o.commission_cents, o.affiliate_cents, o.repeat),
            (299, 149, false)
        );
        assert_eq!((o.status, o.pay_by), (OrderStatus::Pending, Some(61_000)));
        let mut paid = ordered();
        paid["status"] = json!("paid");
        paid["pay_by"] = json!("");
        let CheckoutOutcome::Ordered(o) =
            parse_checkout(&paid.to_string(), &room, &resv, &deal).expect("order")
        else {
            panic!("ordered")
        };
        assert_eq!((o.status, o.pay_by), (OrderStatus::Paid, None));
        let mut odd = ordered();
        odd["status"] = json!("refunded");
        assert!(parse_checkout(&odd.to_string(), &room, &resv, &deal).is_err());
        let mut direct = ordered();
        direct["aff"] = json!("");
        direct["affiliate_cents"] = json!("0");
        let direct = direct.to_string();
        let CheckoutOutcome::Ordered(o) =
            parse_checkout(&direct, &room, &resv, &deal).expect("order")
        else {
            panic!("ordered")
        };
        assert_eq!((o.aff, o.affiliate_cents), (None, 0));
        assert_eq!(
            parse_checkout(
                r#"{"r":"rejected","reason":"not_found"}"#,
                &room,
                &resv,
                &deal
            )
            .expect("rejected"),
            CheckoutOutcome::Rejected(RejectReason::NotFound)
        );
        for bad in [
            with(ordered(), "total_cents", json!("2998")),
            with(ordered(), "commission_cents", json!("300")),
            with(ordered(), "extra", json!("1")),
            with(ordered(), "creator", Value::Null),
            r#"{"r":"total","qty":"3","price_cents":"999"}"#.to_owned(),
            "X".to_owned(),
        ] {
            let got = parse_checkout(&bad, &room, &resv, &deal);
            assert!(
                matches!(got, Err(InventoryError::Internal(_))),
                "{bad:?}: {got:?}"
            );
        }
    }

    #[test]
    fn cancel_sweep_and_due_replies() {
        let (resv, deal) = (id("hab-1"), id("d"));
        assert!(matches!(
            parse_cancel(r#"{"r":"released"}"#, &resv, &deal),
            Ok(CancelOutcome::Released { level: None, .. })
        ));
        assert!(matches!(
            parse_cancel(
                r#"{"r":"released","remaining":"9","version":"5"}"#,
                &resv,
                &deal
            ),
            Ok(CancelOutcome::Released {
                level: Some(StockLevel {
                    remaining: 9,
                    version: 5
                }),
                ..
            })
        ));
        for bad in [
            r#"{"r":"released","remaining":"9"}"#,
            r#"{"r":"released","remaining":"9","version":"5","x":"1"}"#,
            "C|9|5",
        ] {
            assert!(parse_cancel(bad, &resv, &deal).is_err(), "{bad}");
        }
        assert_eq!(
            parse_sweep(r#"{"r":"gone"}"#).expect("gone"),
            Sweep {
                done: true,
                ..Sweep::default()
            }
        );
        let swept = r#"{"r":"swept","expired":"2","remaining":"9","version":"6","done":false,"next":"7000"}"#;
        assert_eq!(
            parse_sweep(swept).expect("swept"),
            Sweep {
                returned: Some(StockLevel {
                    remaining: 9,
                    version: 6
                }),
                next: Some(7000),
                done: false,
            }
        );
        let idle = r#"{"r":"swept","expired":"0","remaining":"9","version":"6","done":true}"#;
        assert_eq!(
            parse_sweep(idle).expect("idle"),
            Sweep {
                done: true,
                ..Sweep::default()
            }
        );
        assert!(parse_sweep(&idle.replace("true", "true,\"x\":\"1\"")).is_err());
        assert!(parse_sweep(&idle.replace(",\"done\":true", "")).is_err());
        let flat = [
            "r|d".to_owned(),
            "7000".to_owned(),
            "r|e".to_owned(),
            "8000".to_owned(),
        ];
        assert_eq!(
            parse_due_take(&flat).expect("due"),
            vec![("r|d".to_owned(), 7000), ("r|e".to_owned(), 8000)]
        );
        assert!(parse_due_take(&flat[..3]).is_err());
    }

    #[test]
    fn a_sales_reply_sums_the_ledger_fields() {
        let ledger = json!({
            "h|orders": "2", "h|units": "5", "h|gmv_cents": "4995", "h|commission_cents": "499",
            "c|paid|orders": "2", "a|aff1|commission_cents": "10", "t|10000|orders": "1",
            "x|future|field": "3"
        });
        let reply = json!({"r": "deal", "deal": view(), "creator": "host1", "ledger": ledger});
        let s = parse_sales(&id("r"), &id("d"), &reply.to_string(), 0)
            .expect("sales")
            .expect("deal");
        assert_eq!(
            (s.total.orders, s.total.units, s.total.gmv_cents),
            (2, 5, 4995)
        );
        assert_eq!(s.host.commission_cents, 499);
        assert_eq!(s.channels[&Channel::Paid].orders, 2);
        assert_eq!(s.affiliates[&id("aff1")].commission_cents, 10);
        assert_eq!(s.buckets[&10_000].orders, 1);
        // cjson writes an empty table (no order yet) as an object.
        let empty = with(reply.clone(), "ledger", json!({}));
        let s = parse_sales(&id("r"), &id("d"), &empty, 0).expect("sales");
        assert_eq!(s.expect("deal").total.orders, 0);
        assert_eq!(
            parse_sales(&id("r"), &id("d"), r#"{"r":"not_found"}"#, 0).expect("none"),
            None
        );
        let bad_value = with(reply.clone(), "ledger", json!({"h|orders": "two"}));
        assert!(parse_sales(&id("r"), &id("d"), &bad_value, 0).is_err());
        let no_creator = with(reply, "creator", Value::Null);
        assert!(parse_sales(&id("r"), &id("d"), &no_creator, 0).is_err());
    }
}
