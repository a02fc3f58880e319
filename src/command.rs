//! Executes client commands against a room and the inventory. The WebSocket session and the
//! REST endpoint both come through [`execute`], so a command means the same on either path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Identity;
use crate::error::HubError;
use crate::hub::{Hub, now_ms};
use crate::inventory::{CancelOutcome, CheckoutOutcome, ReserveOutcome, ReserveRequest};
use crate::metrics as m;
use crate::protocol::{ClientMsg, ContentLimits, Id, RejectReason, ServerMsg};
use crate::room::{Event, Room};

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    /// The command was applied; `Some(seq)` when it published a durable event.
    Applied(Option<u64>),
    /// The command's own answer to the sender (reserved, rejected, order, released).
    Reply(Box<ServerMsg>),
}

/// The content limits from configuration.
pub fn content_limits(hub: &Hub) -> ContentLimits {
    let l = &hub.config().limits;
    ContentLimits {
        comment_max_chars: l.comment_max_chars,
        announce_max_chars: l.announce_max_chars,
    }
}

/// Checks, authorizes and runs one command from `who` in `room`.
pub async fn execute(
    hub: &Arc<Hub>,
    room: &Arc<Room>,
    who: &Identity,
    cmd: ClientMsg,
) -> Result<Outcome, HubError> {
    metrics::counter!(m::COMMANDS, "type" => cmd.kind()).increment(1);
    if cmd.is_host_command() {
        who.check_host(room.id())?;
    } else {
        who.check_viewer_command()?;
    }
    cmd.validate(&content_limits(hub))?;
    let op_timeout = Duration::from_millis(hub.config().inventory.op_timeout_ms);
    let host_timeout = Duration::from_millis(hub.config().inventory.host_op_timeout_ms);
    let inv = hub.inventory();
    let applied = |seq: u64| Ok(Outcome::Applied(Some(seq)));
    match cmd {
        ClientMsg::Comment { text, .. } => {
            applied(room.comment(&who.user, &who.name, &text, now_ms())?)
        }
        ClientMsg::Like { count, .. } => {
            room.like(count);
            Ok(Outcome::Applied(None))
        }
        ClientMsg::Reserve {
            request_id,
            deal,
            qty,
        } => {
            room.check_reserve_rate(&who.user)?;
            let started = Instant::now();
            let req = ReserveRequest {
                room: room.id().clone(),
                deal: deal.clone(),
                user: who.user.clone(),
                request_id: request_id.clone(),
                qty,
                now: now_ms(),
            };
            let outcome = match tokio::time::timeout(op_timeout, inv.reserve(&req)).await {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    tracing::warn!(room = %room.id(), deal = %deal, error = %e, "reserve failed");
                    ReserveOutcome::Rejected(RejectReason::Unavailable)
                }
                Err(_) => ReserveOutcome::Rejected(RejectReason::Unavailable),
            };
            metrics::histogram!(m::RESERVE_SECONDS).record(started.elapsed().as_secs_f64());
            let reply = match outcome {
                ReserveOutcome::Reserved {
                    reservation,
                    qty,
                    expires_at,
                    level,
                } => {
                    metrics::counter!(m::RESERVES, "outcome" => "reserved").increment(1);
                    room.update_stock(&deal, level, now_ms());
                    ServerMsg::Reserved {
                        request_id,
                        reservation,
                        deal,
                        qty,
                        expires_at,
                        remaining: level.remaining,
                    }
                }
                ReserveOutcome::Rejected(reason) => {
                    metrics::counter!(m::RESERVES, "outcome" => reason_label(reason)).increment(1);
                    ServerMsg::Rejected { request_id, reason }
                }
            };
            Ok(Outcome::Reply(Box::new(reply)))
        }
        ClientMsg::Checkout {
            request_id,
            reservation,
        } => {
            let call = inv.checkout(room.id(), &who.user, &reservation, now_ms());
            let reply = match tokio::time::timeout(op_timeout, call).await {
                Ok(Ok(CheckoutOutcome::Ordered(o))) => {
                    metrics::counter!(m::HOLD_OPS, "op" => "checkout", "outcome" => "ordered")
                        .increment(1);
                    ServerMsg::Order {
                        request_id,
                        order: o.order,
                        reservation: o.reservation,
                        deal: o.deal,
                        qty: o.qty,
                        price_cents: o.price_cents,
                        currency: o.currency,
                    }
                }
                Ok(Ok(CheckoutOutcome::Rejected(reason))) => {
                    rejected("checkout", request_id, reason)
                }
                Ok(Err(_)) | Err(_) => rejected("checkout", request_id, RejectReason::Unavailable),
            };
            Ok(Outcome::Reply(Box::new(reply)))
        }
        ClientMsg::Cancel {
            request_id,
            reservation,
        } => {
            let call = inv.cancel(room.id(), &who.user, &reservation, now_ms());
            let reply = match tokio::time::timeout(op_timeout, call).await {
                Ok(Ok(CancelOutcome::Released {
                    reservation,
                    deal,
                    level,
                })) => {
                    metrics::counter!(m::HOLD_OPS, "op" => "cancel", "outcome" => "released")
                        .increment(1);
                    if let Some(level) = level {
                        room.update_stock(&deal, level, now_ms());
                    }
                    ServerMsg::Released {
                        request_id,
                        reservation,
                    }
                }
                Ok(Ok(CancelOutcome::Rejected(reason))) => rejected("cancel", request_id, reason),
                Ok(Err(_)) | Err(_) => rejected("cancel", request_id, RejectReason::Unavailable),
            };
            Ok(Outcome::Reply(Box::new(reply)))
        }
        ClientMsg::Pin { product, .. } => applied(room.publish(Event::Pinned { product })?),
        ClientMsg::Unpin { .. } => applied(room.unpin()?),
        ClientMsg::DealStart { deal, .. } => {
            let started = tokio::time::timeout(
                host_timeout,
                inv.start_deal(room.id(), &deal, &who.user, now_ms()),
            )
            .await
            .map_err(|_| HubError::Unavailable("inventory timed out".into()))??;
            tracing::debug!(room = %room.id(), deal = %started.id, user = %who.user, "deal started");
            applied(room.deal_changed(started)?)
        }
        ClientMsg::DealEnd { deal, .. } => {
            let ended =
                tokio::time::timeout(host_timeout, inv.end_deal(room.id(), &deal, now_ms()))
                    .await
                    .map_err(|_| HubError::Unavailable("inventory timed out".into()))??;
            if !ended.was_live {
                return Err(HubError::Conflict(format!("deal {deal} has already ended")));
            }
            applied(room.deal_changed(ended.deal)?)
        }
        ClientMsg::DeleteComment { id, .. } => applied(room.delete_comment(&id)?),
        ClientMsg::Mute {
            user, duration_ms, ..
        } => {
            room.mute(&user, Duration::from_millis(duration_ms));
            Ok(Outcome::Applied(None))
        }
        ClientMsg::Announce { text, .. } => applied(room.publish(Event::Announcement {
            text: text.trim().to_owned(),
        })?),
    }
}

fn rejected(op: &'static str, request_id: Id, reason: RejectReason) -> ServerMsg {
    metrics::counter!(m::HOLD_OPS, "op" => op, "outcome" => reason_label(reason)).increment(1);
    ServerMsg::Rejected { request_id, reason }
}

fn reason_label(r: RejectReason) -> &'static str {
    match r {
        RejectReason::SoldOut => "sold_out",
        RejectReason::LimitReached => "limit_reached",
        RejectReason::DealNotLive => "deal_not_live",
        RejectReason::NotFound => "not_found",
        RejectReason::Unavailable => "unavailable",
    }
}
