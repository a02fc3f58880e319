//! Executes client commands against a room, the bus and the inventory. The WebSocket session
//! and the REST endpoint both come through [`execute`], so a command means the same on either
//! path. Each command has its own small handler; every backend call is bounded by
//! [`Hub::within`].

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Identity;
use crate::bus::{Event, Published};
use crate::clock::now_ms;
use crate::commerce::Channel;
use crate::error::HubError;
use crate::funnel::{Moment, MomentKind};
use crate::hub::{Deadline, Hub};
use crate::inventory::{CancelOutcome, CheckoutOutcome, ReserveOutcome, ReserveRequest};
use crate::metrics as m;
use crate::protocol::{
    ClientMsg, ContentLimits, DealSpec, DealStatus, Id, Product, RejectReason, ServerMsg,
};
use crate::room::Room;

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

/// One command in its context.
struct Ctx<'a> {
    hub: &'a Arc<Hub>,
    room: &'a Arc<Room>,
    who: &'a Identity,
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
    let cx = Ctx { hub, room, who };
    match cmd {
        ClientMsg::Comment { text, .. } => cx.comment(text).await,
        ClientMsg::Like { count, .. } => {
            room.like(count);
            Ok(Outcome::Applied(None))
        }
        ClientMsg::Reserve {
            request_id,
            deal,
            qty,
        } => cx.reserve(request_id, deal, qty).await,
        ClientMsg::Checkout {
            request_id,
            reservation,
        } => cx.checkout(request_id, reservation).await,
        ClientMsg::Cancel {
            request_id,
            reservation,
        } => cx.cancel(request_id, reservation).await,
        ClientMsg::Pin { product, .. } => cx.pin(product).await,
        ClientMsg::Unpin { .. } => cx.publish(Deadline::Host, Event::Unpinned).await,
        ClientMsg::DealStart { deal, .. } => cx.deal_start(deal).await,
        ClientMsg::DealEnd { deal, .. } => cx.deal_end(deal).await,
        ClientMsg::DeleteComment { id, .. } => {
            cx.publish(Deadline::Host, Event::CommentDeleted { id })
                .await
        }
        ClientMsg::Mute {
            user, duration_ms, ..
        } => cx.mute(user, duration_ms).await,
        ClientMsg::Announce { text, .. } => {
            let text = text.trim().to_owned();
            cx.publish(Deadline::Host, Event::Announcement { text })
                .await
        }
    }
}

impl Ctx<'_> {
    async fn publish(&self, deadline: Deadline, event: Event) -> Result<Outcome, HubError> {
        let publish = self.hub.bus().publish(self.room.id(), event);
        match self.hub.within(deadline, publish).await? {
            Published::Seq(seq) => Ok(Outcome::Applied(Some(seq))),
            Published::Unchanged => Ok(Outcome::Applied(None)),
        }
    }

    async fn comment(&self, text: String) -> Result<Outcome, HubError> {
        let ts = now_ms();
        let event = Event::Comment {
            user: self.who.user.clone(),
            name: self.who.name.clone(),
            text: text.trim().to_owned(),
            ts,
        };
        let outcome = self.publish(Deadline::Viewer, event).await?;
        if let Outcome::Applied(Some(_)) = outcome {
            self.room.tally().comment(ts);
        }
        Ok(outcome)
    }

    /// The buyer's channel in this room: the one of their first join here (a REST caller that
    /// never joined: its connection's own).
    fn channel(&self) -> Channel {
        self.room
            .tally()
            .channel_of(&self.who.user)
            .unwrap_or(self.who.channel)
    }

    /// Marks a host's moment on the room's timeline, once it was published.
    fn moment(&self, kind: MomentKind, deal: Option<Id>, product: Id, title: String) {
        self.room.tally().moment(Moment {
            t: now_ms(),
            kind,
            deal,
            product: Some(product),
            title: Some(title),
        });
    }

    async fn pin(&self, product: Product) -> Result<Outcome, HubError> {
        let (id, title) = (product.id.clone(), product.title.clone());
        let outcome = self
            .publish(Deadline::Host, Event::Pinned { product })
            .await?;
        self.moment(MomentKind::Pin, None, id, title);
        Ok(outcome)
    }

    async fn mute(&self, user: Id, duration_ms: u64) -> Result<Outcome, HubError> {
        let until = now_ms().saturating_add(duration_ms);
        let mute = self.hub.bus().mute(self.room.id(), &user, until);
        self.hub.within(Deadline::Host, mute).await?;
        Ok(Outcome::Applied(None))
    }

    /// Fills in the title and image of the product on sale: the host's own, else the pinned
    /// product's when it is the one on sale, else the catalog's. A product in none of them
    /// keeps no title, and viewers are shown its product id as the title: a v1 `deal_start`
    /// (which has no title) is served as v1 says.
    fn name_product(&self, mut spec: DealSpec) -> DealSpec {
        let known = self
            .room
            .pinned()
            .filter(|p| p.id == spec.product_id)
            .or_else(|| self.hub.catalog().get(&spec.product_id).cloned());
        match (&spec.title, known) {
            (Some(_), known) => {
                if spec.image_url.is_none() {
                    spec.image_url = known.and_then(|p| p.image_url);
                }
            }
            (None, Some(p)) => {
                spec.title = Some(p.title);
                spec.image_url = spec.image_url.or(p.image_url);
            }
            (None, None) => {}
        }
        spec
    }

    async fn deal_start(&self, spec: DealSpec) -> Result<Outcome, HubError> {
        // The pinned product is read from this node's room: it must include the host's own
        // `pin` sent just before, wherever it went.
        self.hub.caught_up(self.room).await?;
        let spec = self.name_product(spec);
        let start =
            self.hub
                .inventory()
                .start_deal(self.room.id(), &spec, &self.who.user, now_ms());
        let deal = match self.hub.within(Deadline::Host, start).await {
            Ok(deal) => deal,
            Err(HubError::Conflict(used)) => return self.announce_started(&spec.id, used).await,
            Err(e) => return Err(e),
        };
        tracing::debug!(room = %self.room.id(), deal = %deal.id, user = %self.who.user, "deal started");
        let (id, product, title) = (deal.id.clone(), deal.product_id.clone(), deal.title.clone());
        let outcome = self
            .publish(Deadline::Host, Event::Deal { deal, version: 0 })
            .await?;
        self.moment(MomentKind::DealStart, Some(id), product, title);
        Ok(outcome)
    }

    /// A `deal_start` for an id the inventory already has: when an earlier `deal_start` started
    /// it but its event never went out (the bus failed in between), the retry publishes it, so
    /// the deal is not live and invisible. A deal that was announced stays a `conflict`.
    async fn announce_started(&self, id: &Id, used: String) -> Result<Outcome, HubError> {
        let deals = self.hub.inventory().room_deals(self.room.id(), now_ms());
        let deals = self.hub.within(Deadline::Host, deals).await?;
        let Some((deal, _)) = deals.into_iter().find(|(d, _)| &d.id == id) else {
            return Err(HubError::Conflict(used));
        };
        if deal.status == DealStatus::Ended {
            return Err(HubError::Conflict(used));
        }
        let publish = self
            .hub
            .bus()
            .publish(self.room.id(), Event::Deal { deal, version: 0 });
        match self.hub.within(Deadline::Host, publish).await? {
            Published::Seq(seq) => Ok(Outcome::Applied(Some(seq))),
            Published::Unchanged => Err(HubError::Conflict(used)),
        }
    }

    async fn deal_end(&self, deal: Id) -> Result<Outcome, HubError> {
        let end = self
            .hub
            .inventory()
            .end_deal(self.room.id(), &deal, now_ms());
        let ended = self.hub.within(Deadline::Host, end).await?;
        if !ended.was_live {
            return Err(HubError::Conflict(format!("deal {deal} has already ended")));
        }
        let (product, title) = (ended.deal.product_id.clone(), ended.deal.title.clone());
        let outcome = self
            .publish(
                Deadline::Host,
                Event::Deal {
                    deal: ended.deal,
                    version: 0,
                },
            )
            .await?;
        self.moment(MomentKind::DealEnd, Some(deal), product, title);
        Ok(outcome)
    }

    async fn reserve(&self, request_id: Id, deal: Id, qty: u32) -> Result<Outcome, HubError> {
        // A rate-limited reserve records nothing.
        self.room.check_reserve_rate(&self.who.user)?;
        let tally = self.room.tally();
        let tapped_at = now_ms();
        let started = Instant::now();
        let req = ReserveRequest {
            room: self.room.id().clone(),
            deal: deal.clone(),
            user: self.who.user.clone(),
            request_id: request_id.clone(),
            qty,
            now: now_ms(),
        };
        let reserve = self.hub.inventory().reserve(&req);
        let outcome = match self.hub.within(Deadline::Viewer, reserve).await {
            Ok(o) => o,
            // A bug (a script error, logged where it happened) is `internal`, not a retry.
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("reserve answered unavailable", &e);
                ReserveOutcome::Rejected(RejectReason::Unavailable)
            }
        };
        metrics::histogram!(m::RESERVE_SECONDS).record(started.elapsed().as_secs_f64());
        // A tap is a funnel fact only on a deal that exists: a reserve naming a made-up deal
        // creates nothing in the store.
        let exists = match outcome {
            ReserveOutcome::Rejected(RejectReason::NotFound) => false,
            ReserveOutcome::Rejected(RejectReason::Unavailable) => self.room.deal(&deal).is_some(),
            _ => true,
        };
        if exists {
            tally.tapped(&self.who.user, &deal, tapped_at);
        }
        let reply = match outcome {
            ReserveOutcome::Reserved {
                reservation,
                qty,
                expires_at,
                level,
            } => {
                metrics::counter!(m::RESERVES, "outcome" => "reserved").increment(1);
                tally.held(&self.who.user, &deal);
                self.hub.stock_changed(self.room.id(), &deal, level);
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
                metrics::counter!(m::RESERVES, "outcome" => <&str>::from(reason)).increment(1);
                if reason == RejectReason::SoldOut {
                    tally.sold_out(&self.who.user, &deal);
                }
                ServerMsg::Rejected { request_id, reason }
            }
        };
        Ok(Outcome::Reply(Box::new(reply)))
    }

    async fn checkout(&self, request_id: Id, reservation: Id) -> Result<Outcome, HubError> {
        // The sales ledger attributes the order to the buyer's first channel in this room
        // and to their signed affiliate.
        let buyer = self.who.buyer(self.channel());
        let checkout = self.hub.inventory().checkout(
            self.room.id(),
            &self.who.user,
            &reservation,
            &buyer,
            now_ms(),
        );
        let reply = match self.hub.within(Deadline::Viewer, checkout).await {
            Ok(CheckoutOutcome::Ordered(o)) => {
                metrics::counter!(m::HOLD_OPS, "op" => "checkout", "outcome" => "ordered")
                    .increment(1);
                self.room.tally().ordered(&self.who.user, &o.deal);
                if !o.repeat {
                    self.hub
                        .funnel()
                        .count_order(self.room.id(), o.channel, o.qty, o.total_cents);
                }
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
            Ok(CheckoutOutcome::Rejected(reason)) => rejected("checkout", request_id, reason),
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("checkout answered unavailable", &e);
                rejected("checkout", request_id, RejectReason::Unavailable)
            }
        };
        Ok(Outcome::Reply(Box::new(reply)))
    }

    async fn cancel(&self, request_id: Id, reservation: Id) -> Result<Outcome, HubError> {
        let cancel =
            self.hub
                .inventory()
                .cancel(self.room.id(), &self.who.user, &reservation, now_ms());
        let reply = match self.hub.within(Deadline::Viewer, cancel).await {
            Ok(CancelOutcome::Released {
                reservation,
                deal,
                level,
            }) => {
                metrics::counter!(m::HOLD_OPS, "op" => "cancel", "outcome" => "released")
                    .increment(1);
                if let Some(level) = level {
                    self.hub.stock_changed(self.room.id(), &deal, level);
                }
                ServerMsg::Released {
                    request_id,
                    reservation,
                }
            }
            Ok(CancelOutcome::Rejected(reason)) => rejected("cancel", request_id, reason),
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("cancel answered unavailable", &e);
                rejected("cancel", request_id, RejectReason::Unavailable)
            }
        };
        Ok(Outcome::Reply(Box::new(reply)))
    }
}

fn rejected(op: &'static str, request_id: Id, reason: RejectReason) -> ServerMsg {
    metrics::counter!(m::HOLD_OPS, "op" => op, "outcome" => <&str>::from(reason)).increment(1);
    ServerMsg::Rejected { request_id, reason }
}
