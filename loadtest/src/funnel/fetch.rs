//! Reading `GET /api/rooms/{room}/funnel` once the hub's counters settled.
//!
//! User-stage counts reach the API within about one flush interval (`funnel.flush_ms`, default
//! 1 s) of happening, so after the last client closed this waits [`SETTLE`] (two flushes and a
//! half), then reads every room, again every [`POLL`] until the reply agrees with the truth or two
//! readings in a row are the same (the counters stopped moving), for at most [`LIMIT`] after the
//! first reading. A hub without the endpoint (404) or that refuses the token is an answer, not a
//! crash: the room's result is the reason.

use std::time::Duration;

use serde_json::Value;

use super::compare::{compare, read};
use super::truth::RoomTruth;
use livehub::funnel::view::RoomFunnel;

/// Wait before the first reading: 2.5 flush intervals of the default 1 s.
pub const SETTLE: Duration = Duration::from_millis(2500);
/// Between readings.
pub const POLL: Duration = Duration::from_millis(1000);
/// Longest the readings go on after the first.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Longest one GET may take.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// `engaged_ms` when the reply does not say (the hub's default).
pub const DEFAULT_ENGAGED_MS: u64 = 30_000;

/// Why a reading has no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub reason: String,
    /// Asking again will not change it (no endpoint, token refused).
    pub permanent: bool,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What reading a room's funnel gave: the reply, or why there is none.
pub type Reading = Result<Value, Failed>;

fn failed(reason: String, permanent: bool) -> Failed {
    Failed { reason, permanent }
}

/// One GET. `http` is the hub's base URL (`http://host:port`), `token` a host token of `room`.
pub async fn get(http: &str, room: &str, token: &str) -> Reading {
    let path = format!("/api/rooms/{room}/funnel");
    let url = format!("{http}{path}");
    let request = livehub::http_client::request("GET", &url, Some(token), None);
    let (status, body) = tokio::time::timeout(ANSWER_WITHIN, request)
        .await
        .map_err(|_| {
            failed(
                format!("GET {path}: no answer within {} s", ANSWER_WITHIN.as_secs()),
                false,
            )
        })?
        .map_err(|e| failed(format!("GET {path}: {e}"), false))?;
    let error = || {
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                Some(format!(
                    "{}: {}",
                    v["error"]["code"].as_str()?,
                    v["error"]["message"].as_str()?
                ))
            })
            .unwrap_or_else(|| body.chars().take(200).collect())
    };
    match status {
        200 => serde_json::from_str(&body)
            .map_err(|e| failed(format!("GET {path}: the reply is not JSON ({e})"), false)),
        404 => Err(failed(
            format!(
                "the hub has no funnel endpoint: GET {path} answered 404 ({})",
                error()
            ),
            true,
        )),
        401 | 403 => Err(failed(
            format!(
                "the hub refused GET {path} with the room's host token: HTTP {status} ({})",
                error()
            ),
            true,
        )),
        _ => Err(failed(
            format!("GET {path} answered HTTP {status} ({})", error()),
            false,
        )),
    }
}

/// The `engaged_ms` a reading says (the hub's default when it is absent or unreadable).
fn engaged_ms(funnel: Option<&Result<RoomFunnel, String>>) -> u64 {
    match funnel {
        Some(Ok(f)) if f.engaged_ms > 0 => f.engaged_ms,
        _ => DEFAULT_ENGAGED_MS,
    }
}

/// The reply without its `generated_at`, to tell whether the counters still move.
fn settled_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("generated_at");
    }
    v
}

/// Reads `room`'s funnel until it agrees with `truth_for(engaged_ms)` or stops moving (see the
/// module). Returns the truth tallied with the hub's `engaged_ms` and the last reading.
pub async fn settle(
    http: &str,
    room: &str,
    token: &str,
    deadline: tokio::time::Instant,
    truth_for: impl Fn(u64) -> RoomTruth,
) -> (RoomTruth, Reading) {
    let mut previous: Option<Value> = None;
    loop {
        let reading = get(http, room, token).await;
        let funnel = reading.as_ref().ok().map(read);
        let truth = truth_for(engaged_ms(funnel.as_ref()));
        let done = match (&reading, &funnel) {
            (Ok(v), Some(Ok(f))) => {
                compare(room, &truth, f).is_empty() || previous.as_ref() == Some(&settled_part(v))
            }
            (Ok(v), _) => previous.as_ref() == Some(&settled_part(v)),
            // No endpoint, or not allowed: asking again will not change that.
            (Err(e), _) => e.permanent,
        };
        if done || tokio::time::Instant::now() + POLL > deadline {
            return (truth, reading);
        }
        previous = reading.as_ref().ok().map(settled_part);
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server that answers every request with `status` and `body`.
    async fn answering(status: &'static str, body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_hub_without_the_endpoint_is_a_permanent_failure_with_the_reason() {
        let http = answering("404 Not Found", "").await;
        let e = get(&http, "smoke0", "t").await.unwrap_err();
        assert!(e.permanent);
        assert!(e.reason.contains("no funnel endpoint"), "{e}");
        assert!(e.reason.contains("/api/rooms/smoke0/funnel"), "{e}");
    }

    #[tokio::test]
    async fn a_refusal_quotes_the_hubs_error_code() {
        let http = answering(
            "403 Forbidden",
            r#"{"error":{"code":"forbidden","message":"only the room's host or an admin may do this"}}"#,
        )
        .await;
        let e = get(&http, "smoke0", "t").await.unwrap_err();
        assert!(e.permanent);
        assert!(
            e.reason
                .contains("HTTP 403 (forbidden: only the room's host"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_hub_that_is_gone_is_a_failure_worth_retrying_not_a_crash() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let http = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let e = get(&http, "smoke0", "t").await.unwrap_err();
        assert!(!e.permanent, "{e}");
        let junk = answering("200 OK", "not json").await;
        assert!(
            get(&junk, "r", "t")
                .await
                .unwrap_err()
                .reason
                .contains("not JSON")
        );
    }
}
