//! The auction commands: a host's `auction_start` and `auction_end`, a viewer's `bid`. The
//! store decides every bid and the close (one clock, atomically); these handlers resolve what
//! the host left to the catalog, publish what viewers must see (the `auction` event, the
//! latest bid beside the events) and answer the sender.

use super::{Ctx, Happened};
use crate::auction::Refused;
use crate::auctions::{AuctionRecord, Bid, BidAnswer, Bidding, EndAnswer};
use crate::bus::AuctionTick;
use crate::clock::now_ms;
use crate::error::HubError;
use crate::funnel::MomentKind;
use crate::hub::Deadline;
use crate::protocol::{AuctionSpec, AuctionStatus, Bidder, Id, RejectReason, ServerMsg};

/// A bid's answer to its bidder.
#[derive(Debug)]
pub enum BidReply {
    /// Accepted: the price now, whether the bidder leads, the end now, its place.
    Accepted {
        current_cents: u64,
        leading: bool,
        ends_at: u64,
        bids: u32,
    },
    /// Refused for `reason`; `min_cents` with `too_low`.
    Rejected {
        reason: RejectReason,
        min_cents: Option<u64>,
    },
}

impl BidReply {
    fn rejected(reason: RejectReason) -> Self {
        BidReply::Rejected {
            reason,
            min_cents: None,
        }
    }

    /// The bidder's frame: `bid_accepted`, or `rejected`.
    pub fn into_msg(self, request_id: Id, auction: Id, amount_cents: u64) -> ServerMsg {
        match self {
            BidReply::Accepted {
                current_cents,
                leading,
                ends_at,
                bids,
            } => ServerMsg::BidAccepted {
                request_id,
                auction,
                amount_cents,
                current_cents,
                leading,
                ends_at,
                bids,
            },
            BidReply::Rejected { reason, min_cents } => ServerMsg::Rejected {
                request_id,
                reason,
                min_cents,
            },
        }
    }
}

/// An auction's start or close on the show's timeline, once published (`seq`).
fn moment(seq: Option<u64>, kind: MomentKind, record: &AuctionRecord) -> Happened {
    let view = record.view();
    Happened::Moment {
        seq,
        kind,
        deal: Some(view.id),
        product: view.product_id,
        title: view.title,
    }
}

impl Ctx<'_> {
    pub(super) async fn auction_start(&self, mut spec: AuctionSpec) -> Result<Happened, HubError> {
        spec.creator = Some(self.who.user.clone());
        // The pinned product is read from this node's room, as for a deal.
        self.hub.caught_up(self.room).await?;
        if let Some(p) = self.known_product(&spec.product_id) {
            if spec.title.is_none() {
                spec.title = Some(p.title);
            }
            spec.image_url = spec.image_url.or(p.image_url);
        }
        let start = self.hub.auctions().start(self.room.id(), &spec, now_ms());
        let record = match self.hub.within(Deadline::Host, start).await {
            Ok(record) => record,
            Err(HubError::Conflict(used)) => return self.auction_unannounced(&spec.id, used).await,
            Err(e) => return Err(e),
        };
        tracing::debug!(room = %self.room.id(), auction = %spec.id, "auction started");
        let seq = self.hub.publish_auction(self.room.id(), &record).await?;
        Ok(moment(seq, MomentKind::AuctionStart, &record))
    }

    /// An `auction_start` for an id the store has: when an earlier start of it never reached
    /// the viewers (the bus failed in between), the retry publishes it; otherwise `conflict`.
    async fn auction_unannounced(&self, id: &Id, used: String) -> Result<Happened, HubError> {
        let all = self.hub.auctions().room_auctions(self.room.id());
        let all: Vec<AuctionRecord> = self.hub.within(Deadline::Host, all).await?;
        let live = all
            .into_iter()
            .find(|a| &a.spec.id == id && a.state.status == AuctionStatus::Live);
        let Some(record) = live else {
            return Err(HubError::Conflict(used));
        };
        match self.hub.publish_auction(self.room.id(), &record).await? {
            Some(seq) => Ok(Happened::Applied(Some(seq))),
            None => Err(HubError::Conflict(used)),
        }
    }

    pub(super) async fn auction_end(&self, id: Id) -> Result<Happened, HubError> {
        let end = self.hub.auctions().end(self.room.id(), &id, now_ms());
        let record = match self.hub.within(Deadline::Host, end).await? {
            EndAnswer::Ended(record) => record,
            EndAnswer::HasBids(_) => {
                return Err(HubError::Conflict(format!(
                    "auction {id} has a bid: it runs to its end"
                )));
            }
            EndAnswer::Closed(_) => {
                return Err(HubError::Conflict(format!("auction {id} has already closed")));
            }
        };
        let seq = self.hub.publish_auction(self.room.id(), &record).await?;
        let settle = self.hub.auctions().settled(self.room.id(), &id);
        self.hub.within(Deadline::Host, settle).await?;
        Ok(moment(seq, MomentKind::AuctionClose, &record))
    }

    pub(super) async fn bid(
        &self,
        request_id: Id,
        auction: Id,
        amount_cents: u64,
        max_cents: Option<u64>,
    ) -> Result<Happened, HubError> {
        let reply = if self.room.take_bid(&self.who.user, &auction) {
            self.place_bid(&request_id, &auction, amount_cents, max_cents)
                .await?
        } else {
            BidReply::rejected(RejectReason::RateLimited)
        };
        Ok(Happened::Bid {
            request_id,
            auction,
            amount_cents,
            reply,
        })
    }

    /// Asks the store; an accepted bid goes to every node's viewers as the auction's latest.
    async fn place_bid(
        &self,
        request_id: &Id,
        auction: &Id,
        amount_cents: u64,
        max_cents: Option<u64>,
    ) -> Result<BidReply, HubError> {
        let (room, who) = (self.room.id(), self.who);
        let buyer = who.buyer(self.channel());
        let bidding = Bidding {
            name: &who.name,
            buyer: &buyer,
        };
        let bid = self.hub.auctions().bid(
            room,
            auction,
            who.user.as_str(),
            &bidding,
            request_id.as_str(),
            amount_cents,
            max_cents,
            now_ms(),
        );
        let Bid {
            answer,
            leader_name,
            started_at,
        } = match self.hub.within(Deadline::Viewer, bid).await {
            Ok(bid) => bid,
            Err(HubError::NotFound(_)) => return Ok(BidReply::rejected(RejectReason::NotFound)),
            // A bug (a script error, logged where it happened) is `internal`, not a retry.
            Err(e @ HubError::Internal(_)) => return Err(e),
            Err(e) => {
                crate::quiet::warn("bid answered unavailable", &e);
                return Ok(BidReply::rejected(RejectReason::Unavailable));
            }
        };
        Ok(match answer {
            BidAnswer::Accepted(a) => {
                let tick = AuctionTick {
                    auction: auction.clone(),
                    started_at,
                    current_cents: a.current_cents,
                    leader: leader_name.map(|name| Bidder { name }),
                    bids: a.bids,
                    ends_at: a.ends_at,
                };
                self.hub.bus().auction_bid(room, tick);
                BidReply::Accepted {
                    current_cents: a.current_cents,
                    leading: a.leading,
                    ends_at: a.ends_at,
                    bids: a.bids,
                }
            }
            BidAnswer::Refused(Refused::TooLow { min_cents }) => BidReply::Rejected {
                reason: RejectReason::TooLow,
                min_cents: Some(min_cents),
            },
            BidAnswer::Refused(Refused::Ended) => BidReply::rejected(RejectReason::Ended),
            BidAnswer::Refused(Refused::BadRequest(_)) => {
                BidReply::rejected(RejectReason::BadRequest)
            }
        })
    }
}
