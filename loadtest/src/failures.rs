//! Failed connections counted by reason ("connection refused", "HTTP 429 rate_limited: …"), so
//! a report says why connections failed, not only how many did.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;

/// How many reasons a report prints (the JSON report keeps them all).
pub const SHOWN: usize = 5;

/// Failures by reason; shared by every client of a run.
#[derive(Default)]
pub struct Failures {
    by_reason: Mutex<HashMap<String, u64>>,
}

impl Failures {
    /// Counts one failure for `reason`.
    pub fn note(&self, reason: String) {
        *self.by_reason.lock().entry(reason).or_insert(0) += 1;
    }

    /// Every reason with its count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.by_reason
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// A failed connect's reason in a few words: the hub's refusal as the client read it, or the
/// network error without its OS error number.
pub fn reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::TimedOut => "timed out".into(),
        K::AddrNotAvailable => "no local port left (address not available)".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}

/// A failed WebSocket handshake's reason (tokio-tungstenite's client): the hub's refusal
/// (`HTTP 401 unauthorized: invalid token`) or the network error.
pub fn ws_reason(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(response) => {
            let status = response.status();
            let body = response.body().as_deref().unwrap_or_default();
            let error = serde_json::from_slice::<serde_json::Value>(body).ok();
            match error
                .as_ref()
                .map(|v| (&v["error"]["code"], &v["error"]["message"]))
            {
                Some((serde_json::Value::String(code), serde_json::Value::String(message))) => {
                    format!("HTTP {} {code}: {message}", status.as_u16())
                }
                _ => format!("HTTP {status}"),
            }
        }
        E::Io(io) => reason(io),
        other => other.to_string(),
    }
}

/// The reason for a connect that did not finish within `limit`.
pub fn timed_out(limit: Duration) -> String {
    format!("no answer within {} s", limit.as_secs())
}

/// The most frequent reasons first (ties by name), at most `n`, as `"180 × reason"`, and how
/// many reasons were left out.
pub fn top(by_reason: &BTreeMap<String, u64>, n: usize) -> (Vec<String>, usize) {
    let mut all: Vec<(&String, &u64)> = by_reason.iter().collect();
    all.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown = all
        .iter()
        .take(n)
        .map(|(reason, count)| format!("{count} × {reason}"))
        .collect();
    (shown, all.len().saturating_sub(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_counted_and_the_commonest_shown_first() {
        let f = Failures::default();
        for _ in 0..3 {
            f.note("connection refused".into());
        }
        f.note("HTTP 429 rate_limited: too many".into());
        let (shown, left) = top(&f.snapshot(), 1);
        assert_eq!(shown, vec!["3 × connection refused"]);
        assert_eq!(left, 1);
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(reason(&e), "connection refused");
        assert_eq!(
            reason(&std::io::Error::other(
                "HTTP 401 unauthorized: invalid token"
            )),
            "HTTP 401 unauthorized: invalid token"
        );
    }
}
