//! One clock for every node (issue 19). On Redis the time that decides holds, deal ends and
//! sweeps is Redis's own: the inventory scripts read `TIME` themselves. Everything the hub
//! times on its own side (deal end ticks, mutes, statuses in readings, funnel buckets) uses
//! [`now_ms`], the local clock corrected by the offset to Redis's clock that
//! [`crate::redis_io::clock::follow`] measures every
//! [`crate::redis_io::clock::FOLLOW_EVERY`]. A node whose clock is off by minutes therefore
//! still agrees with every other node to within a round trip; the offset is shown on `/metrics`
//! as `livehub_clock_offset_ms` and a large one is logged once per change of magnitude.
//!
//! With the memory backend (one process) the offset stays 0: the local clock is the only one.
//!
//! A leaf: this module imports nothing from the crate, so every other module may read the time
//! from it (the Redis side that sets the offset lives in [`crate::redis_io::clock`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Makes `offset` (ms, from [`estimate`]) the one [`now_ms`] adds to this machine's clock.
#[cfg_attr(not(feature = "server"), allow(dead_code))] // set by the Redis clock follower
pub(crate) fn set_offset(offset: i64) {
    OFFSET_MS.store(offset, Ordering::Relaxed);
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
