//! One clock for every node (issue 19). On Redis the time that decides holds, deal ends and
//! sweeps is Redis's own: the inventory scripts read `TIME` themselves. Everything the hub
//! times on its own side (deal end ticks, mutes, statuses in readings, funnel buckets) uses
//! [`now_ms`], the local clock corrected by the offset to Redis's clock that [`follow`]
//! measures every [`FOLLOW_EVERY`]. A node whose clock is off by minutes therefore still agrees
//! with every other node to within a round trip; the offset is shown on `/metrics` as
//! `livehub_clock_offset_ms` and a large one is logged once per change of magnitude.
//!
//! With the memory backend (one process) the offset stays 0: the local clock is the only one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::redis_io::RedisIo;

/// How often a node measures its offset to Redis's clock.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(5);

/// An offset larger than this is logged as a warning (the node still runs, on Redis's time).
pub const WARN_OFFSET_MS: i64 = 1_000;

/// A reading whose round trip took longer than this is not used (its error could be large).
pub const MAX_RTT_MS: u64 = 200;

static OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// This machine's Unix time in milliseconds, uncorrected.
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix time in milliseconds on the deployment's one clock: this machine's, corrected by the
/// last measured offset to Redis's (0 with the memory backend).
pub fn now_ms() -> u64 {
    corrected(system_ms(), OFFSET_MS.load(Ordering::Relaxed))
}

/// The offset [`now_ms`] adds to this machine's clock, in ms.
pub fn offset_ms() -> i64 {
    OFFSET_MS.load(Ordering::Relaxed)
}

fn corrected(system: u64, offset: i64) -> u64 {
    u64::try_from(i128::from(system) + i128::from(offset)).unwrap_or(0)
}

/// The offset of a reference clock that read `reference` while this machine's clock went from
/// `sent` to `received`: the reference is taken at the middle of the round trip. None when the
/// round trip is too long (over [`MAX_RTT_MS`]) or the readings are out of order.
pub fn estimate(sent: u64, reference: u64, received: u64) -> Option<i64> {
    let rtt = received.checked_sub(sent)?;
    if rtt > MAX_RTT_MS {
        return None;
    }
    let middle = sent + rtt / 2;
    i64::try_from(i128::from(reference) - i128::from(middle)).ok()
}

/// Reads Redis's clock once and, when the reading is usable, makes its offset the one
/// [`now_ms`] uses. Returns the offset set.
pub async fn sync(redis: &RedisIo) -> Option<i64> {
    let sent = system_ms();
    let time: (String, String) = redis
        .exec(|mut conn| async move { redis::cmd("TIME").query_async(&mut conn).await })
        .await
        .ok()?;
    let received = system_ms();
    let (secs, micros): (u64, u64) = (time.0.parse().ok()?, time.1.parse().ok()?);
    let offset = estimate(sent, secs * 1000 + micros / 1000, received)?;
    OFFSET_MS.store(offset, Ordering::Relaxed);
    metrics::gauge!(crate::metrics::CLOCK_OFFSET_MS).set(offset as f64);
    Some(offset)
}

/// Follows Redis's clock until `stop`: one reading every [`FOLLOW_EVERY`]. Says once when this
/// node's clock is more than [`WARN_OFFSET_MS`] off, and once when it is back within it.
pub async fn follow(redis: RedisIo, stop: CancellationToken) {
    let mut warned = false;
    loop {
        if let Some(offset) = sync(&redis).await {
            let off = offset.abs() > WARN_OFFSET_MS;
            if off && !warned {
                tracing::warn!(
                    offset_ms = offset,
                    "this node's clock differs from Redis's; livehub keeps Redis's time \
                     (fix the node's NTP)"
                );
            } else if !off && warned {
                tracing::info!(
                    offset_ms = offset,
                    "this node's clock agrees with Redis's again"
                );
            }
            warned = off;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_read_at_the_middle_of_the_round_trip() {
        assert_eq!(estimate(1_000, 31_010, 1_020), Some(30_000));
        assert_eq!(estimate(1_000, 990, 1_020), Some(-20));
    }

    #[test]
    fn a_slow_or_backwards_reading_is_not_used() {
        assert_eq!(estimate(1_000, 5_000, 1_000 + MAX_RTT_MS + 1), None);
        assert_eq!(estimate(1_000, 5_000, 999), None);
    }

    #[test]
    fn a_negative_correction_never_goes_below_the_epoch() {
        assert_eq!(corrected(1_000, -30_000), 0);
        assert_eq!(corrected(100_000, -30_000), 70_000);
    }
}
