//! Whether Redis answers, as the hub's log tells it: one line when Redis is first found
//! reachable ("Redis at redis://… ready"), one line when it stops answering ("cannot reach
//! Redis at redis://…: connection refused; retrying"), one when it answers again, and nothing
//! in between, however many calls fail meanwhile. While Redis is down, the repeated warnings of
//! the operations it fails are held back too (see [`crate::quiet::outage_began`]), so an outage
//! costs two log lines.
//!
//! Redis that answers but refuses the hub ([`Refusal`]: `NOAUTH`, `WRONGPASS`, `NOPERM`) is not
//! ready either: that is one error line naming the fix ("Redis at … refused the hub: it requires
//! a password and redis.url has none; put the password in redis.url:
//! redis://:PASSWORD@host:port"), at most once a minute, and warnings are held back as in an
//! outage until a command succeeds.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;
const REFUSED: u8 = 3;

/// The refusal line is logged at most this often, however often the state flips (an ACL user
/// refused one command while others succeed).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Why Redis refuses the hub's commands: authentication or permission, which no retry fixes;
/// only the operator can (in `redis.url`, or in Redis's ACL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `NOAUTH`: Redis has a password (`requirepass`) and the hub sent none.
    NoPassword,
    /// `WRONGPASS`, or the `AUTH` made on connecting failed: the user or password is wrong.
    WrongPassword,
    /// `NOPERM`: the ACL user of `redis.url` may not run a command (or touch a key) the hub needs.
    NoPermission,
}

impl Refusal {
    /// The refusal `e` is, if it is one.
    pub fn of(e: &redis::RedisError) -> Option<Self> {
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            return Some(Refusal::WrongPassword);
        }
        match e.code() {
            Some("NOAUTH") => Some(Refusal::NoPassword),
            Some("WRONGPASS") => Some(Refusal::WrongPassword),
            Some("NOPERM") => Some(Refusal::NoPermission),
            _ => None,
        }
    }

    /// What is wrong, without the URL or any password.
    pub fn why(self) -> &'static str {
        match self {
            Refusal::NoPassword => "it requires a password and redis.url has none",
            Refusal::WrongPassword => "the user or password in redis.url is wrong",
            Refusal::NoPermission => {
                "the Redis user of redis.url lacks a permission the hub needs (NOPERM)"
            }
        }
    }

    /// How the operator fixes it, for the log.
    pub fn fix(self) -> &'static str {
        match self {
            Refusal::NoPassword => "put the password in redis.url: redis://:PASSWORD@host:port",
            Refusal::WrongPassword => {
                "fix the password in redis.url: redis://:PASSWORD@host:port (an ACL user: \
                 redis://USER:PASSWORD@host:port)"
            }
            Refusal::NoPermission => {
                "grant that user the commands and keys the hub uses (ACL SETUSER), or name \
                 another user in redis.url"
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    /// What a client and `/readyz` are told: "Redis refused the hub: …", never Redis's text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redis refused the hub: {}", self.why())
    }
}

/// How long after Redis came back a connection failure is taken for a connection left over from
/// the outage rather than a new outage (it is not logged, and readiness stays up).
pub const STALE_GRACE: Duration = Duration::from_secs(5);

/// Redis's reachability, shared by every call through one [`super::RedisIo`].
pub struct Health {
    /// `redis.url` with any password hidden.
    shown: String,
    state: AtomicU8,
    down_since: Mutex<Option<Instant>>,
    /// When Redis last became reachable again after an outage (see [`STALE_GRACE`]).
    up_since: Mutex<Option<Instant>>,
    /// When the refusal line was last logged.
    refusal_logged_at: Mutex<Option<Instant>>,
    /// The current refusal was logged, so its end is logged too.
    refusal_reported: AtomicBool,
}

impl Health {
    /// Nothing known yet about `url` (`redis.url`, a comma-separated list for a cluster).
    pub fn new(url: &str) -> Self {
        Health {
            shown: redact(url),
            state: AtomicU8::new(UNKNOWN),
            down_since: Mutex::new(None),
            up_since: Mutex::new(None),
            refusal_logged_at: Mutex::new(None),
            refusal_reported: AtomicBool::new(false),
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

    /// True within [`STALE_GRACE`] of Redis answering again after an outage: a connection
    /// that cannot connect now is likely one left over from the outage.
    pub fn just_recovered(&self) -> bool {
        self.state.load(Ordering::Acquire) == UP
            && self
                .up_since
                .lock()
                .is_some_and(|t| t.elapsed() < STALE_GRACE)
    }

    /// True while the last word on Redis is that it refuses the hub's commands.
    pub fn is_refused(&self) -> bool {
        self.state.load(Ordering::Acquire) == REFUSED
    }

    /// Notes how a call ended: an error that says Redis is unreachable marks it down, a
    /// [`Refusal`] marks it refused, anything else (a reply, even an error reply) marks it up.
    pub fn record<T>(&self, result: &Result<T, redis::RedisError>) {
        match result {
            Err(e) if is_outage(e) => self.unreachable(&reason(e)),
            Err(e) => match Refusal::of(e) {
                Some(r) => self.refused(r),
                None => self.accepted(),
            },
            Ok(_) => self.accepted(),
        }
    }

    /// Redis answered (a connection was made, e.g. the bus's subscription). Logs "ready" the
    /// first time and "reachable again" after an outage. It does not end a refusal: Redis
    /// accepts connections it then refuses every command on; only a command that succeeds shows
    /// the refusal is over ([`Health::record`]).
    pub fn answered(&self) {
        let was = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s != REFUSED).then_some(UP)
            });
        if let Ok(was) = was {
            self.leave(was);
        }
    }

    /// A command succeeded (or was answered with an error that is not a refusal).
    fn accepted(&self) {
        let was = self.state.swap(UP, Ordering::AcqRel);
        self.leave(was);
    }

    /// Logs the end of state `was`, now that Redis answers and accepts the hub.
    fn leave(&self, was: u8) {
        match was {
            UP => {}
            UNKNOWN => tracing::info!("Redis at {} ready", self.shown),
            REFUSED => {
                let held = crate::quiet::outage_over();
                if self.refusal_reported.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        held_back_warnings = held,
                        "Redis at {} ready: it accepts the hub's commands now",
                        self.shown
                    );
                }
            }
            _ => {
                *self.up_since.lock() = Some(Instant::now());
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
        if self.just_recovered() {
            // A connection left over from the outage failing its first call after Redis came
            // back: not a new outage (the call itself still fails). A real one shows on the
            // calls after the grace (the sweeper alone makes four a second).
            tracing::debug!("a call failed just after Redis came back: {reason}");
            return;
        }
        let was = self.state.swap(DOWN, Ordering::AcqRel);
        if was == DOWN {
            return;
        }
        *self.down_since.lock() = Some(Instant::now());
        if was != REFUSED {
            // A refusal already holds warnings back; the outage takes its place.
            crate::quiet::outage_began();
        }
        tracing::warn!("cannot reach Redis at {}: {reason}; retrying", self.shown);
    }

    /// Redis answered with a refusal: the hub is not ready until the operator fixes it. Logs
    /// one error line with the fix (at most once a [`REFUSAL_LOG_EVERY`]) and holds back other
    /// warnings, which the refusal explains.
    pub fn refused(&self, r: Refusal) {
        match self.state.swap(REFUSED, Ordering::AcqRel) {
            REFUSED => return,
            // Redis is back, refusing: the outage's held-back warnings carry on.
            DOWN => drop(self.down_since.lock().take()),
            _ => crate::quiet::outage_began(),
        }
        let mut logged_at = self.refusal_logged_at.lock();
        if logged_at.is_some_and(|t| t.elapsed() < REFUSAL_LOG_EVERY) {
            return;
        }
        *logged_at = Some(Instant::now());
        self.refusal_reported.store(true, Ordering::Release);
        tracing::error!(
            "Redis at {} refused the hub: {}; {}",
            self.shown,
            r.why(),
            r.fix()
        );
    }
}

impl Drop for Health {
    /// A connection dropped mid-outage or refused (a hub that stopped) ends its outage, so the
    /// warnings of others in the process are not held back for ever.
    fn drop(&mut self) {
        if matches!(*self.state.get_mut(), DOWN | REFUSED) {
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

/// An outage's reason in a few lowercase words (a [`Refusal`]: what is wrong and its fix).
pub fn reason(e: &redis::RedisError) -> String {
    if let Some(r) = Refusal::of(e) {
        format!("{r}; {}", r.fix())
    } else if e.is_connection_refusal() {
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
        // Just back: a connection left from the outage failing once is not a new outage.
        h.record(&refused);
        assert!(
            !h.is_down(),
            "a stale connection's failure right after recovery"
        );
        *h.up_since.lock() = Some(Instant::now() - STALE_GRACE);
        h.record(&refused);
        assert!(h.is_down(), "after the grace it is an outage again");
    }

    /// The error Redis's reply `line` (`-CODE detail`) becomes.
    fn reply_error(line: &str) -> redis::RedisError {
        redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .and_then(redis::Value::extract_error)
            .expect_err("an error reply")
    }

    #[test]
    fn auth_and_permission_errors_are_refusals_not_answers() {
        let noauth = reply_error("NOAUTH Authentication required.");
        assert_eq!(Refusal::of(&noauth), Some(Refusal::NoPassword), "{noauth}");
        let wrongpass =
            reply_error("WRONGPASS invalid username-password pair or user is disabled.");
        assert_eq!(Refusal::of(&wrongpass), Some(Refusal::WrongPassword));
        let noperm = reply_error("NOPERM User app has no permissions to run the 'evalsha' command");
        assert_eq!(Refusal::of(&noperm), Some(Refusal::NoPermission));
        let auth_failed: redis::RedisError = (
            redis::ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )
            .into();
        assert_eq!(Refusal::of(&auth_failed), Some(Refusal::WrongPassword));
        assert_eq!(
            Refusal::of(&reply_error("ERR wrong number of arguments")),
            None
        );
        assert_eq!(Refusal::of(&reply_error("WRONGTYPE not a hash")), None);

        let h = Health::new("redis://:s3cret@127.0.0.1:1");
        h.record::<()>(&Err(noauth.clone()));
        assert!(h.is_refused() && !h.is_down());
        // A connection (the subscription) does not end it; a command that succeeds does.
        h.answered();
        assert!(h.is_refused(), "a connection is not an accepted command");
        h.record::<()>(&Ok(()));
        assert!(!h.is_refused());
        // Refused, then down, then refused again: the held-back count stays balanced.
        h.record::<()>(&Err(noauth.clone()));
        h.unreachable("connection refused");
        assert!(h.is_down());
        h.record::<()>(&Err(noauth));
        assert!(h.is_refused());
        let shown = Refusal::NoPassword.to_string();
        assert_eq!(
            shown,
            "Redis refused the hub: it requires a password and redis.url has none"
        );
        assert!(
            Refusal::NoPassword
                .fix()
                .contains("redis://:PASSWORD@host:port")
        );
    }
}
