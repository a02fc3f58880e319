//! What a room looks like on this node, applied from its events in `seq` order: the pinned
//! product, the deals with their latest stock, the recent comments, and the history ring of
//! frames for `?since=`. Pure: no lock, no I/O, no clock but the `now_ms` it is given.

use std::collections::VecDeque;

use axum::extract::ws::Utf8Bytes;

use super::auctions::AuctionBoard;
use crate::bus::Event;
use crate::error::HubError;
use crate::inventory::{StockLevel, status_of};
use crate::persist::SavedRoom;
use crate::protocol::{Announced, AuctionView, Comment, Deal, DealStatus, Id, Product, ServerMsg};

struct DealView {
    deal: Deal,
    version: u64,
    stock_dirty: bool,
}

/// A room's state as its events built it.
pub struct Projection {
    seq: u64,
    history_max: usize,
    recent_max: usize,
    history: VecDeque<(u64, Utf8Bytes)>,
    pinned: Option<Product>,
    deals: Vec<DealView>,
    recent: VecDeque<Comment>,
    /// The live video stream the host set (`set_stream`).
    stream: Option<String>,
    announcement: Option<Announced>,
    auctions: AuctionBoard,
}

/// An event applied: its message and the frame every viewer receives (serialized once).
pub struct Applied {
    pub msg: ServerMsg,
    pub frame: Utf8Bytes,
}

impl Projection {
    /// An empty room; keeps `history_max` frames and `recent_max` comments.
    pub fn new(history_max: usize, recent_max: usize) -> Self {
        Projection {
            seq: 0,
            history_max,
            recent_max,
            history: VecDeque::new(),
            pinned: None,
            deals: Vec::new(),
            recent: VecDeque::new(),
            stream: None,
            announcement: None,
            auctions: AuctionBoard::default(),
        }
    }

    /// Replaces everything with `state` (the room as the bus or the state file has it).
    pub fn load(&mut self, state: SavedRoom) {
        let skip = state.history.len().saturating_sub(self.history_max);
        self.history = state
            .history
            .into_iter()
            .skip(skip)
            .map(|(seq, frame)| (seq, Utf8Bytes::from(frame)))
            .collect();
        let skip = state.recent.len().saturating_sub(self.recent_max);
        self.recent = state.recent.into_iter().skip(skip).collect();
        self.seq = state.seq;
        self.pinned = state.pinned;
        self.stream = state.stream_url;
        self.announcement = state.announcement;
        self.auctions.load(state.auctions);
        self.deals = state
            .deals
            .into_iter()
            .map(|deal| DealView {
                deal,
                version: 0,
                stock_dirty: false,
            })
            .collect();
    }

    /// The last `seq` applied.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Applies the event with `seq`; None for a `seq` already applied.
    pub fn apply(&mut self, seq: u64, event: Event) -> Result<Option<Applied>, HubError> {
        if seq <= self.seq {
            return Ok(None);
        }
        match &event {
            Event::Deal { deal, version } => self.apply_deal(deal.clone(), *version),
            Event::Auction { auction, .. } => self.auctions.apply(auction),
            _ => {}
        }
        let msg = event.into_msg(seq);
        match &msg {
            ServerMsg::Comment(c) => {
                self.recent.push_back(c.clone());
                while self.recent.len() > self.recent_max {
                    self.recent.pop_front();
                }
            }
            ServerMsg::CommentDeleted { id, .. } => self.recent.retain(|c| &c.id != id),
            ServerMsg::Pinned { product, .. } => self.pinned = Some(product.clone()),
            ServerMsg::Unpinned { .. } => self.pinned = None,
            ServerMsg::Announcement { seq, text } => {
                self.announcement = Some(Announced {
                    seq: *seq,
                    text: text.clone(),
                });
            }
            ServerMsg::Stream { url, .. } => self.stream = url.clone(),
            _ => {}
        }
        let frame = Utf8Bytes::from(msg.to_json()?);
        self.seq = seq;
        self.history.push_back((seq, frame.clone()));
        while self.history.len() > self.history_max {
            self.history.pop_front();
        }
        Ok(Some(Applied { msg, frame }))
    }

    fn apply_deal(&mut self, deal: Deal, version: u64) {
        match self.deals.iter_mut().find(|d| d.deal.id == deal.id) {
            // The same id started again after the earlier deal's records expired: a new deal,
            // with stock versions of its own.
            Some(view) if view.deal.ends_at != deal.ends_at => {
                *view = DealView {
                    deal,
                    version,
                    stock_dirty: false,
                };
            }
            Some(view) => {
                // A reading newer than the one the status was judged at keeps its stock.
                let remaining = if view.version > version {
                    view.deal.remaining
                } else {
                    view.version = version;
                    deal.remaining
                };
                view.deal = deal;
                view.deal.remaining = remaining;
            }
            None => self.deals.push(DealView {
                deal,
                version,
                stock_dirty: false,
            }),
        }
    }

    /// Records a stock reading; older readings (lower version) are ignored. True when the
    /// remaining count changed (viewers see it on the next tick).
    pub fn stock(&mut self, deal: &Id, level: StockLevel) -> bool {
        let Some(view) = self.deals.iter_mut().find(|d| &d.deal.id == deal) else {
            return false;
        };
        if level.version <= view.version {
            return false;
        }
        view.version = level.version;
        if view.deal.remaining == level.remaining {
            return false;
        }
        view.deal.remaining = level.remaining;
        view.stock_dirty = true;
        true
    }

    /// The deal with the status `level` implies at `now_ms`, when that differs from the one
    /// last published (sold out, or live again). Ending is not judged here.
    pub fn status_change(&self, deal: &Id, level: StockLevel, now_ms: u64) -> Option<Deal> {
        let view = self.deals.iter().find(|d| &d.deal.id == deal)?;
        if view.deal.status == DealStatus::Ended {
            return None;
        }
        let status = status_of(false, view.deal.ends_at, level.remaining, now_ms);
        if status == view.deal.status || status == DealStatus::Ended {
            return None;
        }
        let mut changed = view.deal.clone();
        changed.status = status;
        changed.remaining = level.remaining;
        Some(changed)
    }

    /// Stock frames for deals whose count changed since the last call.
    pub fn take_stock_changes(&mut self) -> Vec<ServerMsg> {
        self.deals
            .iter_mut()
            .filter_map(|v| std::mem::take(&mut v.stock_dirty).then_some(&*v))
            .map(|v| ServerMsg::Stock {
                deal: v.deal.id.clone(),
                remaining: v.deal.remaining,
            })
            .collect()
    }

    /// Deals still shown as not ended whose time ran out by `now_ms`.
    pub fn expired_deals(&self, now_ms: u64) -> Vec<Id> {
        self.deals
            .iter()
            .filter(|v| v.deal.status != DealStatus::Ended && now_ms >= v.deal.ends_at)
            .map(|v| v.deal.id.clone())
            .collect()
    }

    /// True while a deal is live (or sold out) and its time has not run out.
    pub fn has_open_deal(&self, now_ms: u64) -> bool {
        self.deals
            .iter()
            .any(|v| v.deal.status != DealStatus::Ended && now_ms < v.deal.ends_at)
    }

    /// The deal with `id`, if the room knows it.
    pub fn deal(&self, id: &Id) -> Option<&Deal> {
        self.deals
            .iter()
            .find(|d| &d.deal.id == id)
            .map(|d| &d.deal)
    }

    /// All deals, in the order they started.
    pub fn deals(&self) -> Vec<Deal> {
        self.deals.iter().map(|d| d.deal.clone()).collect()
    }

    /// The room's auctions: what its events and the bids heard since made of them.
    pub fn auctions(&mut self) -> &mut AuctionBoard {
        &mut self.auctions
    }

    /// Live auction `id` as it stands.
    pub fn live_auction(&self, id: &Id) -> Option<&AuctionView> {
        self.auctions.live_one(id)
    }

    /// The live auctions as they stand, oldest first.
    pub fn live_auctions(&self) -> Vec<AuctionView> {
        self.auctions.live()
    }

    /// The pinned product.
    pub fn pinned(&self) -> Option<Product> {
        self.pinned.clone()
    }

    /// The live video stream the host set, if any.
    pub fn stream(&self) -> Option<String> {
        self.stream.clone()
    }

    /// The latest announcement, if any.
    pub fn announcement(&self) -> Option<Announced> {
        self.announcement.clone()
    }

    /// The recent comments, oldest first.
    pub fn recent(&self) -> Vec<Comment> {
        self.recent.iter().cloned().collect()
    }

    /// The frames after `since`, when the ring still holds all of them; None otherwise.
    pub fn since(&self, since: u64) -> Option<Vec<Utf8Bytes>> {
        let oldest = self.history.front().map_or(self.seq + 1, |(s, _)| *s);
        if since > self.seq || since.saturating_add(1) < oldest {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|(s, _)| *s > since)
                .map(|(_, f)| f.clone())
                .collect(),
        )
    }

    /// The room as the state file keeps it (mutes are the bus's; deals the inventory's).
    pub fn export(&self, room: &Id, likes: u64) -> SavedRoom {
        let mut saved = SavedRoom::empty(room.clone(), self.seq);
        saved.history = self
            .history
            .iter()
            .map(|(seq, f)| (*seq, f.as_str().to_owned()))
            .collect();
        saved.pinned = self.pinned.clone();
        saved.recent = self.recent();
        saved.likes = likes;
        saved.stream_url = self.stream();
        saved.announcement = self.announcement();
        saved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    fn deal(remaining: u32, status: DealStatus) -> Deal {
        Deal {
            id: id("d"),
            product_id: id("p"),
            title: "P".into(),
            image_url: None,
            price_cents: 100,
            currency: "USD".into(),
            stock: 10,
            remaining,
            per_user_limit: 1,
            commission_bps: 0,
            affiliate_bps: 0,
            ends_at: 10_000,
            status,
            started_at: None,
        }
    }

    fn comment(text: &str) -> Event {
        Event::Comment {
            user: id("u"),
            name: "U".into(),
            text: text.into(),
            ts: 1,
        }
    }

    #[test]
    fn events_build_the_state_and_a_repeated_seq_changes_nothing() {
        let mut p = Projection::new(10, 2);
        for (seq, text) in [(1, "a"), (2, "b"), (3, "c")] {
            assert!(p.apply(seq, comment(text)).unwrap().is_some());
        }
        assert!(p.apply(3, comment("again")).unwrap().is_none());
        let texts: Vec<String> = p.recent().into_iter().map(|c| c.text).collect();
        assert_eq!(texts, ["b", "c"], "recent is capped, oldest first");
        p.apply(4, Event::CommentDeleted { id: id("c3") }).unwrap();
        assert_eq!(p.recent().len(), 1);
        assert_eq!(p.seq(), 4);
    }

    #[test]
    fn the_latest_announcement_and_the_stream_are_room_state_that_export_keeps() {
        let mut p = Projection::new(10, 10);
        let stream = |url: Option<&str>| Event::Stream {
            url: url.map(Into::into),
        };
        p.apply(1, Event::Announcement { text: "one".into() })
            .unwrap();
        p.apply(2, stream(Some("/live/a.m3u8"))).unwrap();
        p.apply(3, Event::Announcement { text: "two".into() })
            .unwrap();
        p.apply(4, comment("x")).unwrap();
        let two = Announced {
            seq: 3,
            text: "two".into(),
        };
        assert_eq!(p.announcement(), Some(two.clone()));
        assert_eq!(p.stream().as_deref(), Some("/live/a.m3u8"));
        let saved = p.export(&id("r"), 0);
        let mut back = Projection::new(10, 10);
        back.load(saved);
        assert_eq!(back.announcement(), Some(two));
        assert_eq!(back.stream().as_deref(), Some("/live/a.m3u8"));
        back.apply(5, stream(None)).unwrap();
        assert_eq!(back.stream(), None, "cleared");
    }

    #[test]
    fn since_serves_exactly_the_frames_after_it_while_the_ring_covers_them() {
        let mut p = Projection::new(3, 50);
        for seq in 1..=5 {
            p.apply(seq, comment("x")).unwrap();
        }
        assert_eq!(p.since(3).map(|f| f.len()), Some(2));
        assert_eq!(p.since(2).map(|f| f.len()), Some(3));
        assert_eq!(p.since(1), None, "seq 2 left the ring");
        assert_eq!(p.since(5).map(|f| f.len()), Some(0));
        assert_eq!(p.since(6), None, "a seq from the future");
    }

    #[test]
    fn a_deal_id_started_again_is_a_new_deal_with_its_own_stock_versions() {
        let mut p = Projection::new(10, 10);
        let first = Event::Deal {
            deal: deal(10, DealStatus::Live),
            version: 0,
        };
        p.apply(1, first).unwrap();
        let level = |remaining, version| StockLevel { remaining, version };
        assert!(p.stock(&id("d"), level(2, 40)));
        let ended = Deal {
            remaining: 2,
            ..deal(2, DealStatus::Ended)
        };
        p.apply(
            2,
            Event::Deal {
                deal: ended,
                version: 0,
            },
        )
        .unwrap();
        let again = Deal {
            ends_at: 99_000,
            ..deal(10, DealStatus::Live)
        };
        p.apply(
            3,
            Event::Deal {
                deal: again,
                version: 0,
            },
        )
        .unwrap();
        let d = p.deal(&id("d")).unwrap();
        assert_eq!(
            (d.status, d.remaining, d.ends_at),
            (DealStatus::Live, 10, 99_000)
        );
        assert!(p.stock(&id("d"), level(9, 2)), "versions start again");
        assert_eq!(p.deals().len(), 1);
    }

    #[test]
    fn stock_readings_apply_newest_first_and_a_stale_status_keeps_newer_stock() {
        let mut p = Projection::new(10, 10);
        p.apply(
            1,
            Event::Deal {
                deal: deal(10, DealStatus::Live),
                version: 0,
            },
        )
        .unwrap();
        assert!(p.stock(
            &id("d"),
            StockLevel {
                remaining: 4,
                version: 6
            }
        ));
        assert!(
            !p.stock(
                &id("d"),
                StockLevel {
                    remaining: 7,
                    version: 3
                }
            ),
            "older reading"
        );
        assert_eq!(p.take_stock_changes().len(), 1);
        assert!(p.take_stock_changes().is_empty());
        // A status judged at version 5 arrives after the reading of version 6.
        p.apply(
            2,
            Event::Deal {
                deal: deal(5, DealStatus::Live),
                version: 5,
            },
        )
        .unwrap();
        assert_eq!(p.deal(&id("d")).map(|d| d.remaining), Some(4));
    }

    #[test]
    fn a_sell_out_and_a_return_are_status_changes_and_an_ended_deal_has_none() {
        let mut p = Projection::new(10, 10);
        p.apply(
            1,
            Event::Deal {
                deal: deal(10, DealStatus::Live),
                version: 0,
            },
        )
        .unwrap();
        let gone = StockLevel {
            remaining: 0,
            version: 2,
        };
        let sold_out = p.status_change(&id("d"), gone, 5).map(|d| d.status);
        assert_eq!(sold_out, Some(DealStatus::SoldOut));
        let some = StockLevel {
            remaining: 3,
            version: 2,
        };
        assert_eq!(p.status_change(&id("d"), some, 5), None, "still live");
        assert_eq!(p.expired_deals(10_000), vec![id("d")]);
        p.apply(
            2,
            Event::Deal {
                deal: deal(3, DealStatus::Ended),
                version: 0,
            },
        )
        .unwrap();
        assert_eq!(p.status_change(&id("d"), gone, 5), None);
        assert!(p.expired_deals(10_000).is_empty());
        assert!(!p.has_open_deal(5));
    }
}
