//! Whether Redis answers, as the hub's log tells it: one line when Redis is first found
//! reachable ("Redis at redis://… ready"), one line when it stops answering ("cannot reach
//! Redis at redis://…: connection refused; retrying"), one when it answers again, and nothing
//! in between, however many calls fail meanwhile. While Redis is down, the repeated warnings of
//! the operations it fails are held back too (see [`crate::quiet::outage_began`]), so an outage
//! costs two log lines.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Redis's reachability, shared by every call through one [`super::RedisIo`].
pub struct Health {
    /// `redis.url` with any password hidden.
    shown: String,
    state: AtomicU8,
    down_since: Mutex<Option<Instant>>,
}

impl Health {
    /// Nothing known yet about `url` (`redis.url`, a comma-separated list for a cluster).
    pub fn new(url: &str) -> Self {
        Health {
            shown: redact(url),
            state: AtomicU8::new(UNKNOWN),
            down_since: Mutex::new(None),
        }
    }

    /// The URL as the log shows it: a password in it is replaced by `***`.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// True while the last word on Redis is that it does not answer.
    pub fn is_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == DOWN
    }

    /// Notes how a call ended: an error that says Redis is unreachable marks it down, anything
    /// else (a reply, even an error reply) marks it up.
    pub fn record<T>(&self, result: &Result<T, redis::RedisError>) {
        match result {
            Err(e) if is_outage(e) => self.unreachable(&reason(e)),
            _ => self.answered(),
        }
    }

    /// Redis answered. Logs "ready" the first time and "reachable again" after an outage.
    pub fn answered(&self) {
        match self.state.swap(UP, Ordering::AcqRel) {
            UP => {}
            UNKNOWN => tracing::info!("Redis at {} ready", self.shown),
            _ => {
                let down_for = self.down_since.lock().take().map(|t| t.elapsed());
                let held = crate::quiet::outage_over();
                tracing::info!(
                    held_back_warnings = held,
                    "Redis at {} reachable again after {:.0} s",
                    self.shown,
                    down_for.unwrap_or_default().as_secs_f64()
                );
            }
        }
    }

    /// Redis did not answer, for `reason` ("connection refused"). Logs the one outage line when
    /// this starts an outage.
    pub fn unreachable(&self, reason: &str) {
        if self.state.swap(DOWN, Ordering::AcqRel) == DOWN {
            return;
        }
        *self.down_since.lock() = Some(Instant::now());
        crate::quiet::outage_began();
        tracing::warn!("cannot reach Redis at {}: {reason}; retrying", self.shown);
    }
}

impl Drop for Health {
    /// A connection dropped mid-outage (a hub that stopped) ends its outage, so the warnings of
    /// others in the process are not held back for ever.
    fn drop(&mut self) {
        if *self.state.get_mut() == DOWN {
            crate::quiet::outage_over();
        }
    }
}

/// True for the errors that mean Redis could not be asked at all (rather than refusing what it
/// was asked): I/O errors, refused or dropped connections, timeouts, a cluster that is down.
pub fn is_outage(e: &redis::RedisError) -> bool {
    use redis::ErrorKind as K;
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            K::ClusterConnectionNotFound | K::Server(redis::ServerErrorKind::ClusterDown)
        )
}

/// An outage's reason in a few lowercase words.
pub fn reason(e: &redis::RedisError) -> String {
    if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connection_dropped() {
        "the connection dropped".into()
    } else {
        let text = e.to_string();
        match text.find(" (os error") {
            Some(i) => text[..i].to_owned(),
            None => text,
        }
    }
}

/// `url` with the password of each `redis://user:password@host` replaced by `***`.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let Some((scheme, rest)) = one.split_once("://") else {
                return one.to_owned();
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    if userinfo.contains(':') {
                        format!("{scheme}://{user}:***@{host}{path}")
                    } else {
                        format!("{scheme}://***@{host}{path}")
                    }
                }
                None => one.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://app:s3cret@db.internal:6379/2"),
            "redis://app:***@db.internal:6379/2"
        );
        assert_eq!(redact("rediss://:s3cret@db:6380"), "rediss://:***@db:6380");
        assert_eq!(redact("redis://token@db:6379"), "redis://***@db:6379");
        assert_eq!(
            redact("redis://a:x@n1:7000, redis://n2:7001"),
            "redis://a:***@n1:7000,redis://n2:7001"
        );
    }

    #[test]
    fn an_outage_is_a_state_change_not_a_count() {
        let h = Health::new("redis://127.0.0.1:1");
        assert!(!h.is_down());
        let refused: Result<(), redis::RedisError> =
            Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(is_outage(refused.as_ref().unwrap_err()));
        assert_eq!(reason(refused.as_ref().unwrap_err()), "connection refused");
        h.record(&refused);
        h.record(&refused);
        assert!(h.is_down());
        let script_error: Result<(), redis::RedisError> =
            Err((redis::ErrorKind::Client, "wrong type").into());
        h.record(&script_error);
        assert!(!h.is_down(), "an error reply means Redis answered");
    }
}
