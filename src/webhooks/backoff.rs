//! When a failed delivery is tried again: exponential backoff with jitter, pure so it is tested
//! without a clock.

use std::time::Duration;

/// The wait before retry number `attempt` (0 for the first retry): `min_ms` doubled `attempt`
/// times, at most `max_ms`, then "equal jitter": half of it fixed and the other half scaled by
/// `unit` (a random number in `[0, 1)`), so receivers coming back are not hit by every node's
/// retries at the same instant.
pub fn delay(attempt: u32, min_ms: u64, max_ms: u64, unit: f64) -> Duration {
    let cap = min_ms.saturating_mul(1u64 << attempt.min(40)).min(max_ms);
    let half = cap / 2;
    let jitter = ((cap - half) as f64 * unit.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(half + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_half_of_each_random() {
        let ms = |a, u| delay(a, 1_000, 600_000, u).as_millis() as u64;
        assert_eq!((ms(0, 0.0), ms(0, 1.0)), (500, 1_000));
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (1_000, 2_000));
        assert_eq!((ms(3, 0.5), ms(4, 0.5)), (6_000, 12_000));
        assert_eq!((ms(20, 0.0), ms(20, 1.0)), (300_000, 600_000));
        assert_eq!(ms(1_000, 1.0), 600_000, "no overflow however many attempts");
    }
}
