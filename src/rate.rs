//! Token buckets for the per-user and per-connection rate limits.

use std::hash::Hash;
use std::time::Instant;

use dashmap::DashMap;

/// A token bucket: `rate` tokens a second, at most `burst` saved up. Starts full.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    /// Takes one token if there is one; false means the caller is over the limit.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One [`TokenBucket`] per key (a token's subject, say), each made full on the key's first use,
/// all with one rate and burst.
pub struct KeyedBuckets<K: Hash + Eq> {
    buckets: DashMap<K, TokenBucket>,
    rate: f64,
    burst: f64,
}

impl<K: Hash + Eq> KeyedBuckets<K> {
    /// No buckets yet; each will allow `rate` a second and `burst` at once.
    pub fn new(rate: f64, burst: f64) -> Self {
        KeyedBuckets {
            buckets: DashMap::new(),
            rate,
            burst,
        }
    }

    /// Takes one of `key`'s tokens if it has one; false means `key` is over the limit.
    pub fn try_take(&self, key: K, now: Instant) -> bool {
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1.0, 5.0, t0);
        for _ in 0..5 {
            assert!(b.try_take(t0));
        }
        assert!(!b.try_take(t0));
        assert!(b.try_take(t0 + Duration::from_millis(1000)));
        assert!(!b.try_take(t0 + Duration::from_millis(1100)));
    }

    #[test]
    fn each_key_has_a_bucket_of_its_own() {
        let t0 = Instant::now();
        let keyed = KeyedBuckets::new(1.0, 2.0);
        assert!(keyed.try_take("a", t0));
        assert!(keyed.try_take("a", t0));
        assert!(!keyed.try_take("a", t0), "a is out");
        assert!(keyed.try_take("b", t0), "b is not");
        assert!(keyed.try_take("a", t0 + Duration::from_secs(1)));
    }
}
