//! Who may post and what is news, decided where the `seq` is allocated: the local bus applies
//! these in process; the Redis bus applies the same rules in its publish script.

use std::collections::HashMap;
use std::time::Instant;

use super::BusError;
use crate::protocol::{AuctionStatus, DealStatus, Id};
use crate::rate::TokenBucket;

/// Per-user comment rules of one room: mutes and the comment rate.
#[derive(Debug)]
pub struct CommentRules {
    rate: (f64, f64),
    users: HashMap<Id, UserRule>,
}

#[derive(Debug)]
struct UserRule {
    comments: TokenBucket,
    muted_until_ms: u64,
}

impl CommentRules {
    /// No user muted; each user may post `rate.0` comments a second with bursts of `rate.1`.
    pub fn new(rate: (f64, f64)) -> Self {
        CommentRules {
            rate,
            users: HashMap::new(),
        }
    }

    fn user(&mut self, user: &Id, now: Instant) -> &mut UserRule {
        let (rate, burst) = self.rate;
        self.users.entry(user.clone()).or_insert_with(|| UserRule {
            comments: TokenBucket::new(rate, burst, now),
            muted_until_ms: 0,
        })
    }

    /// Lets `user` post now (taking a token), or says why not.
    pub fn check(&mut self, user: &Id, now_ms: u64, now: Instant) -> Result<(), BusError> {
        let u = self.user(user, now);
        if u.muted_until_ms > now_ms {
            let secs = (u.muted_until_ms - now_ms) / 1000 + 1;
            return Err(BusError::Muted(secs));
        }
        if u.comments.try_take(now) {
            Ok(())
        } else {
            Err(BusError::RateLimited)
        }
    }

    /// Mutes `user` until `until_ms`.
    pub fn mute(&mut self, user: &Id, until_ms: u64, now: Instant) {
        self.user(user, now).muted_until_ms = until_ms;
    }

    /// Lifts `user`'s mute; false when they were not muted at `now_ms`.
    pub fn unmute(&mut self, user: &Id, now_ms: u64) -> bool {
        match self.users.get_mut(user) {
            Some(u) if u.muted_until_ms > now_ms => {
                u.muted_until_ms = 0;
                true
            }
            _ => false,
        }
    }

    /// Users still muted at `now_ms`, with when their mute ends (Unix ms).
    pub fn muted_until(&self, now_ms: u64) -> Vec<(Id, u64)> {
        self.users
            .iter()
            .filter(|(_, u)| u.muted_until_ms > now_ms)
            .map(|(id, u)| (id.clone(), u.muted_until_ms))
            .collect()
    }

    /// Users still muted at `now_ms`, with the milliseconds left.
    pub fn muted(&self, now_ms: u64) -> Vec<(Id, u64)> {
        self.users
            .iter()
            .filter(|(_, u)| u.muted_until_ms > now_ms)
            .map(|(id, u)| (id.clone(), u.muted_until_ms - now_ms))
            .collect()
    }
}

/// What the bus last published of a deal: its status, the stock version it was judged at, and
/// its end time (which tells one deal from a later one with the same id).
pub type KnownDeal = (DealStatus, u64, u64);

/// Whether a deal event with `status`, judged at stock `version`, ending at `ends_at`, is news
/// given the last one published (`known`): a new deal always is, and so is the start (version
/// 0) of a deal that ends later than the known one (its id used again after the earlier deal's
/// records expired); an ended deal never changes again; otherwise the status must differ and
/// the judgement must be newer than the last.
pub fn deal_is_news(
    known: Option<KnownDeal>,
    status: DealStatus,
    version: u64,
    ends_at: u64,
) -> bool {
    let known = known.map(|(was, at, _)| (was, at)).filter(|_| {
        let anew = version == 0
            && status != DealStatus::Ended
            && known.is_some_and(|(_, _, end)| ends_at > end);
        !anew
    });
    match known {
        None => true,
        Some((DealStatus::Ended, _)) => false,
        Some((_, _)) if status == DealStatus::Ended => true,
        Some((was, at)) => status != was && version > at,
    }
}

/// What the bus last published of an auction: its status and when it started (which tells it
/// from a later auction under the same id).
pub type KnownAuction = (AuctionStatus, u64);

/// Whether an auction event with `status` for the run started at `started_at` is news given
/// the last one published (`known`): a start is, once; a close is, once, while the run is
/// known live; an event of an earlier run never is. The same rule as `publish.lua`'s.
pub fn auction_is_news(known: Option<KnownAuction>, status: AuctionStatus, started_at: u64) -> bool {
    match known {
        None => true,
        Some((_, started)) if started_at < started => false,
        Some((_, started)) if started_at > started => true,
        Some((was, _)) => was == AuctionStatus::Live && status != AuctionStatus::Live,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_one_a_second() {
        let t0 = Instant::now();
        let mut r = CommentRules::new((1.0, 3.0));
        for _ in 0..3 {
            r.check(&id("u"), 0, t0).unwrap();
        }
        assert_eq!(r.check(&id("u"), 0, t0), Err(BusError::RateLimited));
        // Another user has their own bucket.
        r.check(&id("v"), 0, t0).unwrap();
        r.check(&id("u"), 1000, t0 + Duration::from_millis(1000))
            .unwrap();
    }

    #[test]
    fn a_muted_user_is_told_how_long_and_speaks_again_after() {
        let t0 = Instant::now();
        let mut r = CommentRules::new((10.0, 10.0));
        r.mute(&id("troll"), 5_000, t0);
        assert_eq!(r.check(&id("troll"), 1_000, t0), Err(BusError::Muted(5)));
        assert_eq!(r.muted(1_000), vec![(id("troll"), 4_000)]);
        r.check(&id("troll"), 5_000, t0).unwrap();
        assert!(r.muted(5_000).is_empty());
    }

    #[test]
    fn an_unmute_lifts_a_live_mute_only() {
        let t0 = Instant::now();
        let mut r = CommentRules::new((10.0, 10.0));
        r.mute(&id("troll"), 5_000, t0);
        assert_eq!(r.muted_until(1_000), vec![(id("troll"), 5_000)]);
        assert!(r.unmute(&id("troll"), 1_000));
        r.check(&id("troll"), 1_000, t0).unwrap();
        assert!(!r.unmute(&id("troll"), 1_000), "not muted any more");
        assert!(!r.unmute(&id("nobody"), 1_000), "never muted");
        r.mute(&id("troll"), 2_000, t0);
        assert!(!r.unmute(&id("troll"), 2_000), "a mute that ran out");
    }

    #[test]
    fn deal_statuses_are_published_once_and_never_go_back_in_time() {
        use DealStatus::*;
        let news = |known: Option<(DealStatus, u64)>, status, version| {
            deal_is_news(known.map(|(s, v)| (s, v, 100)), status, version, 100)
        };
        assert!(news(None, Live, 0));
        assert!(news(Some((Live, 0)), SoldOut, 7));
        assert!(!news(Some((SoldOut, 7)), SoldOut, 8), "same status");
        assert!(!news(Some((SoldOut, 7)), Live, 6), "stale judgement");
        assert!(news(Some((SoldOut, 7)), Live, 9));
        assert!(news(Some((Live, 9)), Ended, 0));
        assert!(!news(Some((Ended, 9)), Ended, 10));
        assert!(!news(Some((Ended, 9)), Live, 10));
        assert!(!news(Some((Ended, 9)), Live, 0), "a late re-announcement");
    }

    #[test]
    fn a_deal_id_started_again_later_is_news_once() {
        use DealStatus::*;
        let ended = Some((Ended, 9, 100));
        assert!(deal_is_news(ended, Live, 0, 5_000), "a later deal, same id");
        assert!(!deal_is_news(ended, Live, 0, 100), "the same deal again");
        assert!(!deal_is_news(ended, SoldOut, 3, 5_000), "not a start");
        assert!(!deal_is_news(ended, Ended, 0, 5_000));
    }

    #[test]
    fn an_auction_start_and_its_close_are_each_published_once() {
        use AuctionStatus::*;
        assert!(auction_is_news(None, Live, 100));
        assert!(!auction_is_news(Some((Live, 100)), Live, 100), "started twice");
        assert!(auction_is_news(Some((Live, 100)), Sold, 100));
        assert!(!auction_is_news(Some((Sold, 100)), Sold, 100), "two closers");
        assert!(!auction_is_news(Some((Unsold, 100)), Live, 100));
        assert!(auction_is_news(Some((Sold, 100)), Live, 900), "the id again, later");
        assert!(!auction_is_news(Some((Live, 900)), Sold, 100), "an earlier run's close");
    }
}
