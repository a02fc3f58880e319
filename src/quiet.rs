//! Warnings that repeat under a fault, summarised: the first of a kind is logged at once, the
//! ones after it within [`WINDOW`] are only counted, and the next one after the window logs a
//! single summary line ("1,240 more in the last 10 s"). Every occurrence is counted in
//! `livehub_faults_total{kind}`, so nothing is lost by not logging it.
//!
//! While a backend outage is on (announced in one line by whoever found it, see
//! [`crate::redis_io::Health`]), warnings are only counted: the outage line explains them, and
//! the line that ends the outage says how many were held back. A Redis outage then costs two
//! log lines, not one per failed reserve or sweep.

use std::fmt::Display;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// How long repeats of one kind are summarised before the next line.
pub const WINDOW: Duration = Duration::from_secs(10);

/// What to log for one occurrence.
#[derive(Debug, PartialEq, Eq)]
pub enum Say {
    /// Log this occurrence.
    Now,
    /// Log this occurrence with the count of those left unlogged in the window before it.
    After(u64),
    /// Count it only.
    Quiet,
}

/// The repeats of one kind of warning. Pure: the caller gives the time.
#[derive(Debug, Default)]
pub struct Repeats {
    window_start: Option<Instant>,
    unlogged: u64,
}

impl Repeats {
    /// Notes one occurrence at `now`.
    pub fn note(&mut self, now: Instant) -> Say {
        match self.window_start {
            Some(start) if now.duration_since(start) < WINDOW => {
                self.unlogged += 1;
                Say::Quiet
            }
            _ => {
                self.window_start = Some(now);
                match std::mem::take(&mut self.unlogged) {
                    0 => Say::Now,
                    n => Say::After(n),
                }
            }
        }
    }
}

static REPEATS: LazyLock<DashMap<&'static str, Repeats>> = LazyLock::new(DashMap::new);

/// Backends in an announced outage.
static OUTAGES: AtomicUsize = AtomicUsize::new(0);
/// Warnings held back during the current outages.
static HELD: AtomicU64 = AtomicU64::new(0);

/// Notes that a backend outage began and was announced: until the matching [`outage_over`],
/// warnings are counted, not logged.
pub fn outage_began() {
    OUTAGES.fetch_add(1, Ordering::AcqRel);
}

/// Ends an outage [`outage_began`] noted; returns how many warnings were held back (while no
/// other outage is on: they are reported once, by the last outage to end).
pub fn outage_over() -> u64 {
    let before = OUTAGES
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .unwrap_or(0);
    if before <= 1 {
        HELD.swap(0, Ordering::AcqRel)
    } else {
        0
    }
}

/// Logs a warning of `kind` (a short fixed text, also the metric label) with `detail`, unless
/// one of the same kind was logged within the window or a backend outage is on.
pub fn warn(kind: &'static str, detail: &dyn Display) {
    metrics::counter!(crate::metrics::FAULTS, "kind" => kind).increment(1);
    if OUTAGES.load(Ordering::Acquire) > 0 {
        HELD.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let say = REPEATS.entry(kind).or_default().note(Instant::now());
    match say {
        Say::Now => tracing::warn!(error = %detail, "{kind}"),
        Say::After(n) => tracing::warn!(
            error = %detail,
            "{kind} ({n} more in the last {} s)",
            WINDOW.as_secs()
        ),
        Say::Quiet => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_logs_once_and_the_next_window_says_how_many_were_left_out() {
        let t0 = Instant::now();
        let mut r = Repeats::default();
        assert_eq!(r.note(t0), Say::Now);
        // 500 failures in 1.5 s: one line.
        let quiet = (1..500)
            .filter(|i| r.note(t0 + Duration::from_millis(3 * i)) == Say::Quiet)
            .count();
        assert_eq!(quiet, 499);
        assert_eq!(
            r.note(t0 + WINDOW + Duration::from_millis(1)),
            Say::After(499)
        );
        assert_eq!(
            r.note(t0 + WINDOW * 3),
            Say::Now,
            "nothing left out in between"
        );
    }
}
