//! The one place a command's [`Happened`] is observed, after its handler returned and before the
//! sender is answered: its metrics ([`count`]), its funnel facts ([`funnel_facts`]) and the stock
//! reading it produced ([`spread_stock`]). A handler that failed (`Err`) is observed by none of
//! them: a rate-limited reserve records nothing.

use std::sync::Arc;

use super::BidReply;
use super::happened::{Happened, ReserveAnswer};
use crate::clock::now_ms;
use crate::funnel::Moment;
use crate::hub::Hub;
use crate::metrics as m;
use crate::protocol::{Id, RejectReason};
use crate::room::Room;

/// Observes what `user`'s command did in `room`.
pub(super) fn observe(hub: &Arc<Hub>, room: &Room, user: &Id, happened: &Happened) {
    count(happened);
    funnel_facts(hub, room, user, happened);
    spread_stock(hub, room, happened);
}

/// The command's metrics: reserve latency and outcome, checkout and cancel outcomes.
fn count(happened: &Happened) {
    match happened {
        Happened::Reserve { took, answer, .. } => {
            metrics::histogram!(m::RESERVE_SECONDS).record(took.as_secs_f64());
            let outcome = match answer {
                ReserveAnswer::Held { .. } => "reserved",
                ReserveAnswer::Rejected(reason) => <&str>::from(*reason),
            };
            metrics::counter!(m::RESERVES, "outcome" => outcome).increment(1);
        }
        Happened::Ordered { .. } => {
            metrics::counter!(m::HOLD_OPS, "op" => "checkout", "outcome" => "ordered").increment(1);
        }
        Happened::Released { .. } => {
            metrics::counter!(m::HOLD_OPS, "op" => "cancel", "outcome" => "released").increment(1);
        }
        Happened::Refused { op, reason, .. } => {
            metrics::counter!(m::HOLD_OPS, "op" => *op, "outcome" => <&str>::from(*reason))
                .increment(1);
        }
        Happened::Bid { reply, .. } => {
            let outcome = match reply {
                BidReply::Accepted { .. } => "accepted",
                BidReply::Rejected { reason, .. } => <&str>::from(*reason),
            };
            metrics::counter!(m::BIDS, "outcome" => outcome).increment(1);
        }
        Happened::Applied(_) | Happened::Commented { .. } | Happened::Moment { .. } => {}
    }
}

/// The command's funnel facts: a comment, a host's moment, a tap with its hold or sell-out, an
/// order (and, for a new one, this node's order counters).
fn funnel_facts(hub: &Hub, room: &Room, user: &Id, happened: &Happened) {
    let tally = room.tally();
    match happened {
        Happened::Commented { seq: Some(_), ts } => tally.comment(*ts),
        Happened::Moment {
            kind,
            deal,
            product,
            title,
            ..
        } => tally.moment(Moment {
            t: now_ms(),
            kind: *kind,
            deal: deal.clone(),
            product: Some(product.clone()),
            title: Some(title.clone()),
        }),
        Happened::Reserve {
            deal,
            tapped_at,
            answer,
            ..
        } => {
            // A tap is a funnel fact only on a deal that exists: a reserve naming a made-up
            // deal creates nothing in the store.
            let exists = match answer {
                ReserveAnswer::Rejected(RejectReason::NotFound) => false,
                ReserveAnswer::Rejected(RejectReason::Unavailable) => room.deal(deal).is_some(),
                _ => true,
            };
            if exists {
                tally.tapped(user, deal, *tapped_at);
            }
            match answer {
                ReserveAnswer::Held { .. } => tally.held(user, deal),
                ReserveAnswer::Rejected(RejectReason::SoldOut) => tally.sold_out(user, deal),
                ReserveAnswer::Rejected(_) => {}
            }
        }
        // A bid is a tap in the auction's row (its lot), accepted or not, as a reserve is (a
        // rate-limited one is nothing, as a rate-limited reserve is).
        Happened::Bid { auction, reply, .. } => {
            let limited = matches!(
                reply,
                BidReply::Rejected {
                    reason: RejectReason::RateLimited,
                    ..
                }
            );
            if let Some(lot) = room.auction_lot(auction).filter(|_| !limited) {
                tally.tapped(user, &lot, now_ms());
            }
        }
        Happened::Ordered { order, .. } => {
            tally.ordered(user, &order.deal);
            if !order.repeat {
                hub.funnel()
                    .count_order(room.id(), order.channel, order.qty, order.total_cents);
            }
        }
        _ => {}
    }
}

/// The stock reading the command produced, to every node's viewers (see
/// [`Hub::stock_changed`]).
fn spread_stock(hub: &Arc<Hub>, room: &Room, happened: &Happened) {
    let (deal, level) = match happened {
        Happened::Reserve {
            deal,
            answer: ReserveAnswer::Held { level, .. },
            ..
        } => (deal, *level),
        Happened::Released {
            deal,
            level: Some(level),
            ..
        } => (deal, *level),
        _ => return,
    };
    hub.stock_changed(room.id(), deal, level);
}
