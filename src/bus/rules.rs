//! Who may post and what is news, decided where the `seq` is allocated: the local bus applies
//! these in process; the Redis bus applies the same rules in its publish script.

use std::collections::HashMap;
use std::time::Instant;

use super::BusError;
use crate::protocol::{DealStatus, Id};
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

    /// Users still muted at `now_ms`, with the milliseconds left.
    pub fn muted(&self, now_ms: u64) -> Vec<(Id, u64)> {
        self.users
            .iter()
            .filter(|(_, u)| u.muted_until_ms > now_ms)
            .map(|(id, u)| (id.clone(), u.muted_until_ms - now_ms))
            .collect()
    }
}

/// Whether a deal event with `status`, judged at stock `version`, is news given the last one
/// published (`known`): a new deal always is; an ended deal never changes again; otherwise the
/// status must differ and the judgement must be newer than the last.
pub fn deal_is_news(known: Option<(DealStatus, u64)>, status: DealStatus, version: u64) -> bool {
    match known {
        None => true,
        Some((DealStatus::Ended, _)) => false,
        Some((_, _)) if status == DealStatus::Ended => true,
        Some((was, at)) => status != was && version > at,
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
    fn deal_statuses_are_published_once_and_never_go_back_in_time() {
        use DealStatus::*;
        assert!(deal_is_news(None, Live, 0));
        assert!(deal_is_news(Some((Live, 0)), SoldOut, 7));
        assert!(!deal_is_news(Some((SoldOut, 7)), SoldOut, 8), "same status");
        assert!(
            !deal_is_news(Some((SoldOut, 7)), Live, 6),
            "stale judgement"
        );
        assert!(deal_is_news(Some((SoldOut, 7)), Live, 9));
        assert!(deal_is_news(Some((Live, 9)), Ended, 0));
        assert!(!deal_is_news(Some((Ended, 9)), Ended, 10));
        assert!(!deal_is_news(Some((Ended, 9)), Live, 10));
    }
}
