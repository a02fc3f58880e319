//! Auctions in this process: the rules of [`crate::auction`] themselves, under one lock per
//! store (a bid is microseconds of arithmetic; nothing awaits under it).

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{
    AuctionRecord, AuctionStore, Bid, BidAnswer, Bidding, CloseAnswer, EndAnswer, not_found,
};
use crate::auction::{AuctionSpec, Book, EndRefused, Status};
use crate::commerce::Buyer;
use crate::id::Id;
use crate::inventory::InventoryError;

/// One auction, its leader's name and the answers given to its bids' request ids.
struct Kept {
    spec: AuctionSpec,
    started_at: u64,
    book: Book,
    leader_name: Option<String>,
    leader_buyer: Option<Buyer>,
    answers: HashMap<(String, String), Bid>,
    /// Not handed out by `due` before this (a caller is closing it).
    taken_until: u64,
    /// Its close was told ([`AuctionStore::settled`]).
    settled: bool,
}

impl Kept {
    fn record(&self) -> AuctionRecord {
        AuctionRecord {
            spec: self.spec.clone(),
            started_at: self.started_at,
            state: self.book.state.clone(),
            leader_name: self.leader_name.clone(),
            leader_buyer: self.leader_buyer.clone(),
        }
    }
}

/// Auctions kept in memory, each dropped `retention_ms` after its end.
pub struct MemoryAuctions {
    retention_ms: u64,
    auctions: Mutex<HashMap<(Id, Id), Kept>>,
}

impl MemoryAuctions {
    /// A store that forgets an auction (its id free again) `retention_ms` after its end.
    pub fn new(retention_ms: u64) -> Self {
        MemoryAuctions {
            retention_ms,
            auctions: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on `room`'s auction `id`.
    fn with<T>(&self, room: &Id, id: &Id, f: impl FnOnce(&mut Kept) -> T) -> Result<T, InventoryError> {
        let mut all = self.auctions.lock();
        let kept = all
            .get_mut(&(room.clone(), id.clone()))
            .ok_or_else(|| not_found(room, id))?;
        Ok(f(kept))
    }
}

#[async_trait]
impl AuctionStore for MemoryAuctions {
    async fn start(
        &self,
        room: &Id,
        spec: &AuctionSpec,
        now: u64,
    ) -> Result<AuctionRecord, InventoryError> {
        spec.check().map_err(|e| InventoryError::Invalid(e.0))?;
        let mut all = self.auctions.lock();
        let retention = self.retention_ms;
        all.retain(|_, k| k.book.state.ends_at.saturating_add(retention) > now);
        let key = (room.clone(), spec.id.clone());
        if all.contains_key(&key) {
            return Err(InventoryError::Conflict(format!(
                "auction {} is already used in room {room}",
                spec.id
            )));
        }
        let kept = Kept {
            spec: spec.clone(),
            started_at: now,
            book: Book::start(spec.rules(), now, spec.duration_ms),
            leader_name: None,
            leader_buyer: None,
            answers: HashMap::new(),
            taken_until: 0,
            settled: false,
        };
        let record = kept.record();
        all.insert(key, kept);
        Ok(record)
    }

    async fn bid(
        &self,
        room: &Id,
        id: &Id,
        user: &str,
        bidder: &Bidding<'_>,
        request_id: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<Bid, InventoryError> {
        self.with(room, id, |kept| {
            let key = (user.to_owned(), request_id.to_owned());
            if let Some(first) = kept.answers.get(&key) {
                return first.clone();
            }
            let answer = match kept.book.bid(user, amount_cents, max_cents, now) {
                Ok(a) => {
                    if a.leading {
                        kept.leader_name = Some(bidder.name.to_owned());
                        kept.leader_buyer = Some(bidder.buyer.clone());
                    }
                    Bid {
                        answer: BidAnswer::Accepted(a),
                        leader_name: kept.leader_name.clone(),
                        started_at: kept.started_at,
                    }
                }
                Err(r) => Bid {
                    answer: BidAnswer::Refused(r),
                    leader_name: None,
                    started_at: 0,
                },
            };
            kept.answers.insert(key, answer.clone());
            answer
        })
    }

    async fn close(&self, room: &Id, id: &Id, now: u64) -> Result<CloseAnswer, InventoryError> {
        self.with(room, id, |kept| {
            if kept.book.state.status != Status::Live {
                return CloseAnswer::AlreadyClosed(kept.record());
            }
            match kept.book.close(now) {
                Some(_) => CloseAnswer::Closed(kept.record()),
                None => CloseAnswer::Open(kept.record()),
            }
        })
    }

    async fn due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Id, Id)>, InventoryError> {
        let mut all = self.auctions.lock();
        let mut out = Vec::new();
        for (key, kept) in all.iter_mut() {
            if out.len() >= limit {
                break;
            }
            let unsettled = kept.book.state.status == Status::Live || !kept.settled;
            if unsettled && kept.book.state.ends_at <= now && kept.taken_until <= now {
                kept.taken_until = now.saturating_add(lease_ms);
                out.push(key.clone());
            }
        }
        Ok(out)
    }

    async fn settled(&self, room: &Id, id: &Id) -> Result<(), InventoryError> {
        if let Some(kept) = self.auctions.lock().get_mut(&(room.clone(), id.clone())) {
            kept.settled = true;
        }
        Ok(())
    }

    async fn end(&self, room: &Id, id: &Id, now: u64) -> Result<EndAnswer, InventoryError> {
        self.with(room, id, |kept| {
            let answer = kept.book.end_by_host(now);
            let record = kept.record();
            match answer {
                Ok(()) => EndAnswer::Ended(record),
                Err(EndRefused::HasBids) => EndAnswer::HasBids(record),
                Err(EndRefused::Closed) => EndAnswer::Closed(record),
            }
        })
    }

    async fn room_auctions(&self, room: &Id) -> Result<Vec<AuctionRecord>, InventoryError> {
        let all = self.auctions.lock();
        let mut out: Vec<AuctionRecord> = all
            .iter()
            .filter(|((r, _), _)| r == room)
            .map(|(_, k)| k.record())
            .collect();
        out.sort_by(|a, b| (a.started_at, &a.spec.id).cmp(&(b.started_at, &b.spec.id)));
        Ok(out)
    }
}
