//! Executes client commands against a room, the bus and the inventory. The WebSocket session
//! and the REST endpoint both come through [`execute`], so a command means the same on either
//! path. Each command has its own small handler, which decides what happened (the rate check
//! and the bus's or the inventory's answer) and returns it as a [`Happened`]; every backend call
//! is bounded by [`Hub::within`]. [`execute`] then hands it to the one observer
//! (`observe.rs`: metrics, funnel facts, stock readings) and answers the sender.

mod auction;
mod happened;
mod observe;

pub use auction::BidReply;
pub use happened::{Happened, ReserveAnswer};

use std::sync::Arc;
use std::time::Instant;

use crate::auth::Identity;
use crate::bus::{Event, Published};
use crate::clock::now_ms;
use crate::commerce::Channel;
use crate::error::HubError;
use crate::funnel::MomentKind;
use crate::hub::{Deadline, Hub};
use crate::inventory::{CancelOutcome, CheckoutOutcome, ReserveOutcome, ReserveRequest};
use crate::metrics as m;
use crate::protocol::{ClientMsg, ContentLimits, DealSpec, DealStatus, Id, Product, RejectReason};
use crate::room::Room;
use observe::observe;

/// What a command answers its sender.
#[derive(Debug)]
pub enum Outcome {
    /// The command was applied; `Some(seq)` when it published a durable event.
    Applied(Option<u64>),
    /// The command's own answer to the sender (reserved, rejected, order, released).
    Reply(Box<crate::protocol::ServerMsg>),
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

/// Checks, authorizes and runs one command from `who` in `room`, observes what it did and
/// answers.
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
    let happened = Ctx { hub, room, who }.run(cmd).await?;
    observe(hub, room, &who.user, &happened);
    Ok(happened.into_outcome())
}

impl Ctx<'_> {
    /// Runs the command's handler.
    async fn run(&self, cmd: ClientMsg) -> Result<Happened, HubError> {
        match cmd {
            ClientMsg::Comment { text, .. } => self.comment(text).await,
            ClientMsg::Like { count, .. } => Ok(self.like(count)),
            ClientMsg::Reserve {
                request_id,
                deal,
                qty,
            } => self.reserve(request_id, deal, qty).await,
            ClientMsg::Checkout {
                request_id,
                reservation,
            } => self.checkout(request_id, reservation).await,
            ClientMsg::Cancel {
                request_id,
                reservation,
            } => self.cancel(request_id, reservation).await,
            ClientMsg::Pin { product, .. } => self.pin(product).await,
            ClientMsg::Unpin { .. } => self.publish(Deadline::Host, Event::Unpinned).await,
            ClientMsg::DealStart { deal, .. } => self.deal_start(deal).await,
            ClientMsg::DealEnd { deal, .. } => self.deal_end(deal).await,
            ClientMsg::DeleteComment { id, .. } => {
                self.publish(Deadline::Host, Event::CommentDeleted { id })
                    .await
            }
            ClientMsg::Mute {
                user, duration_ms, ..
            } => self.mute(user, duration_ms).await,
            ClientMsg::Announce { text, .. } => self.announce(text).await,
            ClientMsg::Unmute { user, .. } => self.unmute(user).await,
            ClientMsg::SetStream { url, .. } => {
                self.publish(Deadline::Host, Event::Stream { url }).await
            }
            ClientMsg::Bid {
                request_id,
                auction,
                amount_cents,
                max_cents,
            } => {
                self.bid(request_id, auction, amount_cents, max_cents)
                    .await
            }
            ClientMsg::AuctionStart { auction, .. } => self.auction_start(auction).await,
            ClientMsg::AuctionEnd { auction, .. } => self.auction_end(auction).await,
        }
    }

    /// Publishes `event`: its `seq`, or None when the bus found nothing new.
    async fn publish_seq(&self, deadline: Deadline, event: Event) -> Result<Option<u64>, HubError> {
        let publish = self.hub.bus().publish(self.room.id(), event);
        match self.hub.within(deadline, publish).await? {
            Published::Seq(seq) => Ok(Some(seq)),
            Published::Unchanged => Ok(None),
        }
    }

    async fn publish(&self, deadline: Deadline, event: Event) -> Result<Happened, HubError> {
        Ok(Happened::Applied(self.publish_seq(deadline, event).await?))
    }

    async fn comment(&self, text: String) -> Result<Happened, HubError> {
        let ts = now_ms();
        let event = Event::Comment {
            user: self.who.user.clone(),
            name: self.who.name.clone(),
            text: text.trim().to_owned(),
            ts,
        };
        let seq = self.publish_seq(Deadline::Viewer, event).await?;
        Ok(Happened::Commented { seq, ts })
    }

    /// Likes go to the room's counter; every node sees the total on a later tick.
    fn like(&self, count: u32) -> Happened {
        self.room.like(count);
        Happened::Applied(None)
    }

    async fn announce(&self, text: String) -> Result<Happened, HubError> {
        let text = text.trim().to_owned();
        self.publish(Deadline::Host, Event::Announcement { text })
            .await
    }

    /// The buyer's channel in this room: the one of their first join here (a REST caller that
    /// never joined: its connection's own).
    fn channel(&self) -> Channel {
        self.room
            .tally()
            .channel_of(&self.who.user)
            .unwrap_or(self.who.channel)
    }

    async fn pin(&self, product: Product) -> Result<Happened, HubError> {
        let (product_id, title) = (product.id.clone(), product.title.clone());
        let seq = self
            .publish_seq(Deadline::Host, Event::Pinned { product })
            .await?;
        Ok(Happened::Moment {
            seq,
            kind: MomentKind::Pin,
            deal: None,
            product: product_id,
            title,
        })
    }

    async fn mute(&self, user: Id, duration_ms: u64) -> Result<Happened, HubError> {
        let until = now_ms().saturating_add(duration_ms);
        let mute = self.hub.bus().mute(self.room.id(), &user, until);
        self.hub.within(Deadline::Host, mute).await?;
        Ok(Happened::Applied(None))
    }

    /// Lifts a mute, wherever it was made: mutes are the room's on every node (the bus's).
    async fn unmute(&self, user: Id) -> Result<Happened, HubError> {
        let unmute = self.hub.bus().unmute(self.room.id(), &user);
        self.hub.within(Deadline::Host, unmute).await?;
        Ok(Happened::Applied(None))
    }

    /// Fills in the title and image of the product on sale: the host's own, else the pinned
    /// product's when it is the one on sale, else the catalog's. A product in none of them
    /// keeps no title, and viewers are shown its product id as the title: a v1 `deal_start`
    /// (which has no title) is served as v1 says.
    fn name_product(&self, mut spec: DealSpec) -> DealSpec {
        let known = self.known_product(&spec.product_id);
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

    /// The product `id` as the room knows it: the pinned one when it is that one, else the
    /// catalog's.
    fn known_product(&self, id: &Id) -> Option<Product> {
        self.room
            .pinned()
            .filter(|p| &p.id == id)
            .or_else(|| self.hub.catalog().get(id).cloned())
    }

    async fn deal_start(&self, spec: DealSpec) -> Result<Happened, HubError> {
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
        let seq = self
            .publish_seq(Deadline::Host, Event::Deal { deal, version: 0 })
            .await?;
        Ok(Happened::Moment {
            seq,
            kind: MomentKind::DealStart,
            deal: Some(id),
            product,
            title,
        })
    }

    /// A `deal_start` for an id the inventory already has: when an earlier `deal_start` started
    /// it but its event never went out (the bus failed in between), the retry publishes it, so
    /// the deal is not live and invisible. A deal that was announced stays a `conflict`.
    async fn announce_started(&self, id: &Id, used: String) -> Result<Happened, HubError> {
        let deals = self.hub.inventory().room_deals(self.room.id(), now_ms());
        let deals = self.hub.within(Deadline::Host, deals).await?;
        let Some((deal, _)) = deals.into_iter().find(|(d, _)| &d.id == id) else {
            return Err(HubError::Conflict(used));
        };
        if deal.status == DealStatus::Ended {
            return Err(HubError::Conflict(used));
        }
        match self
            .publish_seq(Deadline::Host, Event::Deal { deal, version: 0 })
            .await?
        {
            Some(seq) => Ok(Happened::Applied(Some(seq))),
            None => Err(HubError::Conflict(used)),
        }
    }

    async fn deal_end(&self, deal: Id) -> Result<Happened, HubError> {
        let end = self
            .hub
            .inventory()
            .end_deal(self.room.id(), &deal, now_ms());
        let ended = self.hub.within(Deadline::Host, end).await?;
        if !ended.was_live {
            return Err(HubError::Conflict(format!("deal {deal} has already ended")));
        }
        let (product, title) = (ended.deal.product_id.clone(), ended.deal.title.clone());
        let event = Event::Deal {
            deal: ended.deal,
            version: 0,
        };
        let seq = self.publish_seq(Deadline::Host, event).await?;
        Ok(Happened::Moment {
            seq,
            kind: MomentKind::DealEnd,
            deal: Some(deal),
            product,
            title,
        })
    }

    async fn reserve(&self, request_id: Id, deal: Id, qty: u32) -> Result<Happened, HubError> {
        // A rate-limited reserve records nothing (it never reaches the observer).
        self.room.check_reserve_rate(&self.who.user)?;
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
        let answer = match self.hub.within(Deadline::Viewer, reserve).await {
            Ok(ReserveOutcome::Reserved {
                reservation,
                qty,
                expires_at,
                level,
            }) => ReserveAnswer::Held {
                reservation,
                qty,
                expires_at,
                level,
            },
            Ok(ReserveOutcome::Rejected(reason)) => ReserveAnswer::Rejected(reason),
            // A bug (a script error, logged where it happened) is `internal`, not a retry.
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("reserve answered unavailable", &e);
                ReserveAnswer::Rejected(RejectReason::Unavailable)
            }
        };
        Ok(Happened::Reserve {
            request_id,
            deal,
            tapped_at,
            took: started.elapsed(),
            answer,
        })
    }

    async fn checkout(&self, request_id: Id, reservation: Id) -> Result<Happened, HubError> {
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
        let reason = match self.hub.within(Deadline::Viewer, checkout).await {
            Ok(CheckoutOutcome::Ordered(order)) => {
                return Ok(Happened::Ordered { request_id, order });
            }
            Ok(CheckoutOutcome::Rejected(reason)) => reason,
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("checkout answered unavailable", &e);
                RejectReason::Unavailable
            }
        };
        Ok(refused("checkout", request_id, reason))
    }

    async fn cancel(&self, request_id: Id, reservation: Id) -> Result<Happened, HubError> {
        let cancel =
            self.hub
                .inventory()
                .cancel(self.room.id(), &self.who.user, &reservation, now_ms());
        let reason = match self.hub.within(Deadline::Viewer, cancel).await {
            Ok(CancelOutcome::Released {
                reservation,
                deal,
                level,
            }) => {
                return Ok(Happened::Released {
                    request_id,
                    reservation,
                    deal,
                    level,
                });
            }
            Ok(CancelOutcome::Rejected(reason)) => reason,
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("cancel answered unavailable", &e);
                RejectReason::Unavailable
            }
        };
        Ok(refused("cancel", request_id, reason))
    }
}

fn refused(op: &'static str, request_id: Id, reason: RejectReason) -> Happened {
    Happened::Refused {
        op,
        request_id,
        reason,
    }
}
