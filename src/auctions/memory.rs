//! Auctions in this process: the rules of [`crate::auction`] themselves, under one lock per
//! store (a bid is microseconds of arithmetic; nothing awaits under it).

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{AuctionState, AuctionStore, BidAnswer, CloseAnswer, EndAnswer, not_found};
use crate::auction::{Book, EndRefused, Rules};
use crate::id::Id;
use crate::inventory::InventoryError;

/// One auction and the answers given to its bids' request ids.
struct Kept {
    book: Book,
    answers: HashMap<(String, String), BidAnswer>,
    /// Not handed out by `due` before this (a caller is closing it).
    taken_until: u64,
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
}

#[async_trait]
impl AuctionStore for MemoryAuctions {
    async fn start(
        &self,
        room: &Id,
        id: &Id,
        rules: Rules,
        duration_ms: u64,
        now: u64,
    ) -> Result<AuctionState, InventoryError> {
        rules
            .check(duration_ms)
            .map_err(|e| InventoryError::Invalid(e.0))?;
        let mut all = self.auctions.lock();
        let retention = self.retention_ms;
        all.retain(|_, k| k.book.ends_at.saturating_add(retention) > now);
        let key = (room.clone(), id.clone());
        if all.contains_key(&key) {
            return Err(InventoryError::Conflict(format!(
                "auction {id} is already used in room {room}"
            )));
        }
        let book = Book::start(rules, now, duration_ms);
        let state = AuctionState::from(&book);
        all.insert(
            key,
            Kept {
                book,
                answers: HashMap::new(),
                taken_until: 0,
            },
        );
        Ok(state)
    }

    async fn bid(
        &self,
        room: &Id,
        id: &Id,
        user: &str,
        request_id: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<BidAnswer, InventoryError> {
        let mut all = self.auctions.lock();
        let kept = all
            .get_mut(&(room.clone(), id.clone()))
            .ok_or_else(|| not_found(room, id))?;
        let key = (user.to_owned(), request_id.to_owned());
        if let Some(first) = kept.answers.get(&key) {
            return Ok(first.clone());
        }
        let answer = match kept.book.bid(user, amount_cents, max_cents, now) {
            Ok(a) => BidAnswer::Accepted(a),
            Err(r) => BidAnswer::Refused(r),
        };
        kept.answers.insert(key, answer.clone());
        Ok(answer)
    }

    async fn close(&self, room: &Id, id: &Id, now: u64) -> Result<CloseAnswer, InventoryError> {
        let mut all = self.auctions.lock();
        let kept = all
            .get_mut(&(room.clone(), id.clone()))
            .ok_or_else(|| not_found(room, id))?;
        if kept.book.status != crate::auction::Status::Live {
            return Ok(CloseAnswer::AlreadyClosed(AuctionState::from(&kept.book)));
        }
        Ok(match kept.book.close(now) {
            Some(_) => CloseAnswer::Closed(AuctionState::from(&kept.book)),
            None => CloseAnswer::Open(AuctionState::from(&kept.book)),
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
            let live = kept.book.status == crate::auction::Status::Live;
            if live && kept.book.ends_at <= now && kept.taken_until <= now {
                kept.taken_until = now.saturating_add(lease_ms);
                out.push(key.clone());
            }
        }
        Ok(out)
    }

    async fn end(&self, room: &Id, id: &Id, now: u64) -> Result<EndAnswer, InventoryError> {
        let mut all = self.auctions.lock();
        let kept = all
            .get_mut(&(room.clone(), id.clone()))
            .ok_or_else(|| not_found(room, id))?;
        let answer = kept.book.end_by_host(now);
        let state = AuctionState::from(&kept.book);
        Ok(match answer {
            Ok(()) => EndAnswer::Ended(state),
            Err(EndRefused::HasBids) => EndAnswer::HasBids(state),
            Err(EndRefused::Closed) => EndAnswer::Closed(state),
        })
    }
}
