//! Warnings that repeat under a fault, summarised: the first of a kind is logged at once, the
//! ones after it within [`WINDOW`] are only counted, and the next one after the window logs a
//! single summary line ("1,240 more in the last 10 s"). Every occurrence is counted in
//! `livehub_faults_total{kind}`, so nothing is lost by not logging it. A Redis outage then costs
//! a few log lines, not one per failed reserve.

use std::fmt::Display;
use std::sync::LazyLock;
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

/// Logs a warning of `kind` (a short fixed text, also the metric label) with `detail`, unless
/// one of the same kind was logged within the window.
pub fn warn(kind: &'static str, detail: &dyn Display) {
    metrics::counter!(crate::metrics::FAULTS, "kind" => kind).increment(1);
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
