//! What a command did, in the domain's words. A handler decides it (the role, the rate, the
//! bus's or the inventory's answer) and returns it; it records nothing itself. `observe.rs`
//! then takes it for the metrics, the funnel and the stock readings, and
//! [`Happened::into_outcome`] turns it into the sender's answer.

use std::time::Duration;

use super::{BidReply, Outcome};
use crate::funnel::MomentKind;
use crate::inventory::{OrderRecord, StockLevel};
use crate::protocol::{Id, RejectReason, ServerMsg};

/// What one command did.
#[derive(Debug)]
pub enum Happened {
    /// Applied with nothing to observe (a like, a mute, an unpin, a deletion, an announcement,
    /// an unannounced deal published again): `Some(seq)` when it published an event.
    Applied(Option<u64>),
    /// A comment stamped `ts`; `Some(seq)` once the bus published it.
    Commented { seq: Option<u64>, ts: u64 },
    /// A host's moment on the show's timeline (a pin, a deal start or end), once published.
    Moment {
        seq: Option<u64>,
        kind: MomentKind,
        deal: Option<Id>,
        product: Id,
        title: String,
    },
    /// The inventory answered a reserve tapped at `tapped_at` (Unix ms), after `took`.
    Reserve {
        request_id: Id,
        deal: Id,
        tapped_at: u64,
        took: Duration,
        answer: ReserveAnswer,
    },
    /// A checkout made (or repeated) an order.
    Ordered { request_id: Id, order: OrderRecord },
    /// A cancel released a hold; `level` is the new stock when this call changed it.
    Released {
        request_id: Id,
        reservation: Id,
        deal: Id,
        level: Option<StockLevel>,
    },
    /// A bid was answered (accepted or rejected).
    Bid {
        request_id: Id,
        auction: Id,
        amount_cents: u64,
        reply: BidReply,
    },
    /// A checkout or a cancel (`op`) was refused for `reason`.
    Refused {
        op: &'static str,
        request_id: Id,
        reason: RejectReason,
    },
}

/// The inventory's answer to a reserve.
#[derive(Debug)]
pub enum ReserveAnswer {
    /// Held until `expires_at`; `level` is the deal's stock after it.
    Held {
        reservation: Id,
        qty: u32,
        expires_at: u64,
        level: StockLevel,
    },
    /// Refused (or `unavailable` when the inventory did not answer in time).
    Rejected(RejectReason),
}

impl Happened {
    /// The sender's answer: an ack (`Applied`) or its own reply.
    pub fn into_outcome(self) -> Outcome {
        let reply = match self {
            Happened::Applied(seq)
            | Happened::Commented { seq, .. }
            | Happened::Moment { seq, .. } => return Outcome::Applied(seq),
            Happened::Reserve {
                request_id,
                deal,
                answer,
                ..
            } => match answer {
                ReserveAnswer::Held {
                    reservation,
                    qty,
                    expires_at,
                    level,
                } => ServerMsg::Reserved {
                    request_id,
                    reservation,
                    deal,
                    qty,
                    expires_at,
                    remaining: level.remaining,
                },
                ReserveAnswer::Rejected(reason) => ServerMsg::Rejected {
                    request_id,
                    reason,
                    min_cents: None,
                },
            },
            Happened::Ordered { request_id, order } => ServerMsg::Order {
                request_id: Some(request_id),
                order: order.order,
                reservation: Some(order.reservation),
                deal: Some(order.deal),
                auction: None,
                qty: order.qty,
                price_cents: order.price_cents,
                currency: order.currency,
                // Only with external payment (an order that has a pay_by): with none, the
                // reply keeps v1's exact fields.
                status: order.pay_by.map(|_| order.status),
                pay_by: order.pay_by,
            },
            Happened::Released {
                request_id,
                reservation,
                ..
            } => ServerMsg::Released {
                request_id,
                reservation,
            },
            Happened::Bid {
                request_id,
                auction,
                amount_cents,
                reply,
            } => reply.into_msg(request_id, auction, amount_cents),
            Happened::Refused {
                request_id, reason, ..
            } => ServerMsg::Rejected {
                request_id,
                reason,
                min_cents: None,
            },
        };
        Outcome::Reply(Box::new(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).expect("id")
    }

    fn reserve(answer: ReserveAnswer) -> Happened {
        Happened::Reserve {
            request_id: id("r1"),
            deal: id("d1"),
            tapped_at: 1,
            took: Duration::ZERO,
            answer,
        }
    }

    fn reply(h: Happened) -> ServerMsg {
        match h.into_outcome() {
            Outcome::Reply(msg) => *msg,
            Outcome::Applied(seq) => panic!("applied {seq:?}, not a reply"),
        }
    }

    #[test]
    fn a_held_reserve_answers_reserved_with_the_remaining_stock() {
        let held = ReserveAnswer::Held {
            reservation: id("h1"),
            qty: 2,
            expires_at: 9,
            level: StockLevel {
                remaining: 7,
                version: 3,
            },
        };
        let want = ServerMsg::Reserved {
            request_id: id("r1"),
            reservation: id("h1"),
            deal: id("d1"),
            qty: 2,
            expires_at: 9,
            remaining: 7,
        };
        assert_eq!(reply(reserve(held)), want);
    }

    #[test]
    fn refusals_answer_rejected_and_applied_commands_their_seq() {
        let sold_out = ReserveAnswer::Rejected(RejectReason::SoldOut);
        let want = ServerMsg::Rejected {
            request_id: id("r1"),
            reason: RejectReason::SoldOut,
            min_cents: None,
        };
        assert_eq!(reply(reserve(sold_out)), want);
        let refused = Happened::Refused {
            op: "cancel",
            request_id: id("r1"),
            reason: RejectReason::SoldOut,
        };
        assert_eq!(reply(refused), want);
        let moment = Happened::Moment {
            seq: Some(4),
            kind: MomentKind::Pin,
            deal: None,
            product: id("p"),
            title: "T".into(),
        };
        assert!(matches!(moment.into_outcome(), Outcome::Applied(Some(4))));
        let comment = Happened::Commented { seq: None, ts: 1 };
        assert!(matches!(comment.into_outcome(), Outcome::Applied(None)));
    }
}
