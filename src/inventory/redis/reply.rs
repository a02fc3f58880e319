//! The inventory scripts' replies, parsed by pure functions into the trait's types: every reader
//! of a script's reply is here, next to a unit test that pins the reply's shape (a field added
//! to a script without its reader fails a test here, not a buyer). The replies are `|`-joined
//! fields, as each script's header comment describes; a field that may hold `|` comes last (a
//! title) or percent-encoded (an image URL).

use super::super::sales::{DealSales, Earning, Sales};
use super::super::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, InventoryError, OrderRecord, ReserveOutcome,
    StockLevel, order_total, status_of,
};
use crate::commerce::{Channel, commission};
use crate::protocol::{Deal, Id, RejectReason};

pub(super) fn bad_reply(what: &str, reply: &str) -> InventoryError {
    InventoryError::Internal(format!("unexpected {what} reply from Redis: {reply:?}"))
}

pub(super) fn num<T: std::str::FromStr>(what: &str, s: Option<&str>) -> Result<T, InventoryError> {
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

/// Parses `view()` (the reply of `audit.lua`, and the tail of `start_deal.lua`'s and
/// `end_deal.lua`'s): product_id|price|currency|stock|remaining|held|sold|limit|ends_at|ended|
/// version|commission_bps|affiliate_bps|image_url|title, where the title is the rest (it may
/// hold `|`). A field a deal stored before it existed does not have reads as "": rates 0, no
/// image, an empty title.
pub fn parse_view(
    id: &Id,
    f: &[&str],
    now: u64,
) -> Result<(Deal, Audit, StockLevel), InventoryError> {
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

/// An id in a reply, or a bad reply.
fn reply_id(what: &str, s: &str) -> Result<Id, InventoryError> {
    Id::new(s).map_err(|_| bad_reply(what, s))
}

/// Parses the fields of `checkout.lua`'s order reply (after its "O"), checking the total and
/// both amounts against Rust's own arithmetic, so the script and [`commission`] never disagree
/// silently.
pub fn parse_order(
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
pub fn parse_sales(
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

/// `start_deal.lua`'s answer.
#[derive(Debug, PartialEq)]
pub enum StartReply {
    /// The deal as stored.
    Deal(Deal),
    /// The deal id is taken in the room (`CONFLICT`).
    Conflict,
}

/// Parses `start_deal.lua`'s reply: `CONFLICT`, or `OK|purge_at|` and the deal's view.
pub fn parse_start(reply: &str, id: &Id, now: u64) -> Result<StartReply, InventoryError> {
    if reply == "CONFLICT" {
        return Ok(StartReply::Conflict);
    }
    let f: Vec<&str> = reply
        .strip_prefix("OK|")
        .ok_or_else(|| bad_reply("start", reply))?
        .split('|')
        .collect();
    let [_purge_at, view @ ..] = f.as_slice() else {
        return Err(bad_reply("start", reply));
    };
    Ok(StartReply::Deal(parse_view(id, view, now)?.0))
}

/// `end_deal.lua`'s answer.
#[derive(Debug, PartialEq)]
pub enum EndReply {
    /// No such deal (`NOTFOUND`).
    NotFound,
    /// Asked to end it only when due, and it has time left (`NOTDUE`).
    NotDue,
    /// The deal as it ended, and whether it was live until then.
    Ended(EndedDeal),
}

/// Parses `end_deal.lua`'s reply: `NOTFOUND`, `NOTDUE`, or `was_live|` and the deal's view.
pub fn parse_end(reply: &str, id: &Id, now: u64) -> Result<EndReply, InventoryError> {
    match reply {
        "NOTFOUND" => return Ok(EndReply::NotFound),
        "NOTDUE" => return Ok(EndReply::NotDue),
        _ => {}
    }
    let f: Vec<&str> = reply.split('|').collect();
    let [was_live, view @ ..] = f.as_slice() else {
        return Err(bad_reply("end", reply));
    };
    let (deal, _, _) = parse_view(id, view, now)?;
    Ok(EndReply::Ended(EndedDeal {
        deal,
        was_live: *was_live == "1",
    }))
}

/// Parses `audit.lua`'s reply: `NOTFOUND` (None), or the deal's view.
pub fn parse_audit(
    reply: &str,
    id: &Id,
    now: u64,
) -> Result<Option<(Deal, Audit, StockLevel)>, InventoryError> {
    if reply == "NOTFOUND" {
        return Ok(None);
    }
    let f: Vec<&str> = reply.split('|').collect();
    parse_view(id, &f, now).map(Some)
}

/// `reserve.lua`'s answer: the outcome, and for a fresh hold the deal's earliest live hold
/// expiry (for the sweepers' due index; a repeated request does not carry it).
#[derive(Debug, PartialEq)]
pub struct Reserved {
    pub outcome: ReserveOutcome,
    pub due: Option<u64>,
}

/// Parses `reserve.lua`'s reply: `R|reason`, or
/// `OK|reservation|qty|expires_at|remaining|version` followed by `|due` for a fresh hold.
pub fn parse_reserve(reply: &str) -> Result<Reserved, InventoryError> {
    let f: Vec<&str> = reply.split('|').collect();
    let (fields, due) = match f.as_slice() {
        ["R", why] => {
            return Ok(Reserved {
                outcome: ReserveOutcome::Rejected(reason(why)?),
                due: None,
            });
        }
        // A fresh hold carries the deal's earliest expiry; a repeat does not.
        ["OK", rest @ ..] if rest.len() == 6 => (&rest[..5], Some(rest[5])),
        ["OK", rest @ ..] if rest.len() == 5 => (rest, None),
        _ => return Err(bad_reply("reserve", reply)),
    };
    let [resv, qty, expires, remaining, version] = fields else {
        return Err(bad_reply("reserve", reply));
    };
    Ok(Reserved {
        outcome: ReserveOutcome::Reserved {
            reservation: reply_id("reservation", resv)?,
            qty: num("qty", Some(qty))?,
            expires_at: num("expires_at", Some(expires))?,
            level: StockLevel {
                remaining: num("remaining", Some(remaining))?,
                version: num("version", Some(version))?,
            },
        },
        due: due.map(|at| num("due", Some(at))).transpose()?,
    })
}

/// Parses `checkout.lua`'s reply for `reservation` of `deal` in `room`: `O|` and the order
/// ([`parse_order`]), `R|reason`, or `TOTAL|qty|price` (an order total out of range: a bug).
pub fn parse_checkout(
    reply: &str,
    room: &Id,
    reservation: &Id,
    deal: &Id,
) -> Result<CheckoutOutcome, InventoryError> {
    let f: Vec<&str> = reply.split('|').collect();
    match f.as_slice() {
        ["O", order @ ..] => Ok(CheckoutOutcome::Ordered(parse_order(
            order,
            reservation,
            deal,
            reply,
        )?)),
        ["R", why] => Ok(CheckoutOutcome::Rejected(reason(why)?)),
        ["TOTAL", qty, price] => Err(InventoryError::Internal(format!(
            "order total of {qty} x {price} is out of range (deal {deal} in room {room})"
        ))),
        _ => Err(bad_reply("checkout", reply)),
    }
}

/// Parses `cancel.lua`'s reply for `reservation` of `deal`: `C|-` (released, the stock did not
/// change: the hold had expired), `C|remaining|version`, or `R|reason`.
pub fn parse_cancel(
    reply: &str,
    reservation: &Id,
    deal: &Id,
) -> Result<CancelOutcome, InventoryError> {
    let f: Vec<&str> = reply.split('|').collect();
    match f.as_slice() {
        ["C", "-"] => Ok(CancelOutcome::Released {
            reservation: reservation.clone(),
            deal: deal.clone(),
            level: None,
        }),
        ["C", remaining, version] => Ok(CancelOutcome::Released {
            reservation: reservation.clone(),
            deal: deal.clone(),
            level: Some(StockLevel {
                remaining: num("remaining", Some(remaining))?,
                version: num("version", Some(version))?,
            }),
        }),
        ["R", why] => Ok(CancelOutcome::Rejected(reason(why)?)),
        _ => Err(bad_reply("cancel", reply)),
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

/// Parses `sweep.lua`'s reply: `GONE`, or `expired|remaining|version|done|next` (`next` empty
/// when no hold is left).
pub fn parse_sweep(reply: &str) -> Result<Sweep, InventoryError> {
    let f: Vec<&str> = reply.split('|').collect();
    match f.as_slice() {
        ["GONE"] => Ok(Sweep {
            done: true,
            ..Sweep::default()
        }),
        [expired, remaining, version, done, next] => Ok(Sweep {
            returned: if *expired != "0" {
                Some(StockLevel {
                    remaining: num("remaining", Some(remaining))?,
                    version: num("version", Some(version))?,
                })
            } else {
                None
            },
            next: match *next {
                "" => None,
                at => Some(num("next expiry", Some(at))?),
            },
            done: *done == "1",
        }),
        _ => Err(bad_reply("sweep", reply)),
    }
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

    fn id(s: &str) -> Id {
        Id::new(s).expect("id")
    }

    /// A deal's view as the scripts write it: 15 fields, the title last.
    const VIEW: &str = "p1|999|USD|10|7|2|1|3|60000|0|4|1000|500|https://x/a%7Cb.png|Big | sale";

    #[test]
    fn a_view_reads_every_field_and_a_title_may_hold_the_separator() {
        let f: Vec<&str> = VIEW.split('|').collect();
        let (deal, audit, level) = parse_view(&id("d"), &f, 1_000).expect("view");
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
        assert_eq!((audit.held, audit.sold, audit.remaining), (2, 1, 7));
        assert_eq!(
            level,
            StockLevel {
                remaining: 7,
                version: 4
            }
        );
        // A deal stored before rates, images and titles existed.
        let old: Vec<&str> = "p1|999|USD|10|7|2|1|3|60000|1|4||||".split('|').collect();
        let (deal, _, _) = parse_view(&id("d"), &old, 1_000).expect("old view");
        assert_eq!((deal.commission_bps, deal.affiliate_bps), (0, 0));
        assert_eq!((deal.image_url, deal.title.as_str()), (None, ""));
        assert_eq!(deal.status, DealStatus::Ended);
        let short: Vec<&str> = VIEW.split('|').take(14).collect();
        assert!(parse_view(&id("d"), &short, 1_000).is_err());
    }

    #[test]
    fn start_end_and_audit_replies() {
        let started = parse_start(&format!("OK|123|{VIEW}"), &id("d"), 1_000).expect("start");
        assert!(
            matches!(started, StartReply::Deal(ref d) if d.remaining == 7),
            "{started:?}"
        );
        assert_eq!(
            parse_start("CONFLICT", &id("d"), 0).expect("conflict"),
            StartReply::Conflict
        );
        assert!(parse_start(VIEW, &id("d"), 0).is_err(), "no OK");
        assert_eq!(
            parse_end("NOTFOUND", &id("d"), 0).expect("end"),
            EndReply::NotFound
        );
        assert_eq!(
            parse_end("NOTDUE", &id("d"), 0).expect("end"),
            EndReply::NotDue
        );
        let EndReply::Ended(e) = parse_end(&format!("1|{VIEW}"), &id("d"), 0).expect("end") else {
            panic!("ended")
        };
        assert!(e.was_live);
        assert_eq!(parse_audit("NOTFOUND", &id("d"), 0).expect("audit"), None);
        assert!(parse_audit(VIEW, &id("d"), 0).expect("audit").is_some());
    }

    #[test]
    fn reserve_replies_and_a_shifted_field_is_refused() {
        let fresh = parse_reserve("OK|hab-1|2|5000|8|3|4000").expect("fresh");
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
        let repeat = parse_reserve("OK|hab-1|2|5000|8|3").expect("repeat");
        assert_eq!(repeat.due, None);
        assert_eq!(
            parse_reserve("R|sold_out").expect("rejected").outcome,
            ReserveOutcome::Rejected(RejectReason::SoldOut)
        );
        for bad in [
            "OK|hab-1|2|5000|8|3|4000|extra",
            "OK|hab-1|2|5000|8",
            "R|why_not",
            "R",
            "OK|hab 1|2|5000|8|3",
            "OK|hab-1|two|5000|8|3",
            "",
        ] {
            assert!(parse_reserve(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checkout_replies_are_checked_against_rusts_own_arithmetic() {
        let (room, resv, deal) = (id("r"), id("hab-1"), id("d"));
        // 3 x 999 = 2997; 10% host = 299, 5% affiliate = 149.
        let ok = "O|oab-1|3|999|USD|2997|0|paid|aff1|1000|299|500|149|host1";
        let CheckoutOutcome::Ordered(o) = parse_checkout(ok, &room, &resv, &deal).expect("order")
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
        assert_eq!(
            parse_checkout("R|not_found", &room, &resv, &deal).expect("rejected"),
            CheckoutOutcome::Rejected(RejectReason::NotFound)
        );
        for bad in [
            "O|oab-1|3|999|USD|2998|0|paid|aff1|1000|299|500|149|host1",
            "O|oab-1|3|999|USD|2997|0|paid|aff1|1000|300|500|149|host1",
            "O|oab-1|3|999|USD|2997|0|paid|aff1|1000|299|500|149|host1|extra",
            "TOTAL|3|999",
            "X",
        ] {
            let got = parse_checkout(bad, &room, &resv, &deal);
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
            parse_cancel("C|-", &resv, &deal),
            Ok(CancelOutcome::Released { level: None, .. })
        ));
        assert!(matches!(
            parse_cancel("C|9|5", &resv, &deal),
            Ok(CancelOutcome::Released {
                level: Some(StockLevel {
                    remaining: 9,
                    version: 5
                }),
                ..
            })
        ));
        assert!(parse_cancel("C|9|5|1", &resv, &deal).is_err());
        assert_eq!(
            parse_sweep("GONE").expect("gone"),
            Sweep {
                done: true,
                ..Sweep::default()
            }
        );
        assert_eq!(
            parse_sweep("2|9|6|0|7000").expect("swept"),
            Sweep {
                returned: Some(StockLevel {
                    remaining: 9,
                    version: 6
                }),
                next: Some(7000),
                done: false,
            }
        );
        assert_eq!(
            parse_sweep("0|9|6|1|").expect("idle"),
            Sweep {
                done: true,
                ..Sweep::default()
            }
        );
        assert!(parse_sweep("0|9|6|1||x").is_err());
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
        let reply: Vec<String> = [
            VIEW,
            "host1",
            "h|orders",
            "2",
            "h|units",
            "5",
            "h|gmv_cents",
            "4995",
            "h|commission_cents",
            "499",
            "c|paid|orders",
            "2",
            "a|aff1|commission_cents",
            "10",
            "t|10000|orders",
            "1",
            "x|future|field",
            "3",
        ]
        .map(str::to_owned)
        .to_vec();
        let s = parse_sales(&id("r"), &id("d"), &reply, 0)
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
        assert_eq!(parse_sales(&id("r"), &id("d"), &[], 0).expect("none"), None);
        assert!(
            parse_sales(&id("r"), &id("d"), &reply[..3], 0).is_err(),
            "a field without value"
        );
    }
}
