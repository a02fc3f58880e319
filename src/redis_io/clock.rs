//! Follows Redis's clock so [`crate::clock::now_ms`] is the deployment's one clock (issue 19):
//! [`follow`] reads Redis's `TIME` every [`FOLLOW_EVERY`] and sets the offset the clock adds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::RedisIo;
use crate::clock;

/// How often a node measures its offset to Redis's clock.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(5);

/// An offset larger than this is logged as a warning (the node still runs, on Redis's time).
pub const WARN_OFFSET_MS: i64 = 1_000;

/// Reads Redis's clock once and, when the reading is usable, makes its offset the one
/// [`clock::now_ms`] uses. Returns the offset set.
pub async fn sync(redis: &RedisIo) -> Option<i64> {
    let sent = clock::system_ms();
    let time: (String, String) = redis
        .exec(|mut conn| async move { redis::cmd("TIME").query_async(&mut conn).await })
        .await
        .ok()?;
    let received = clock::system_ms();
    let (secs, micros): (u64, u64) = (time.0.parse().ok()?, time.1.parse().ok()?);
    let offset = clock::estimate(sent, secs * 1000 + micros / 1000, received)?;
    clock::set_offset(offset);
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
