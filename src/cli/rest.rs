//! One REST request against the hub for the CLI, every failure told as a [`CliError`]: the hub's
//! refusal with its `code: reason` (exit 1), or a hub that cannot be reached or did not answer
//! in time (exit 3).

use std::time::Duration;

use super::CliError;
use super::connect::{self, HubUrl};

/// How long one request may take before the hub counts as unreachable.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET {hub}{path}` with `token` as `Authorization: Bearer`: the body when the hub answers
/// 200, else the refusal the answer carries, or the hub is unreachable.
pub async fn get(hub: &HubUrl, path: &str, token: &str) -> Result<String, CliError> {
    send(hub, "GET", path, token, None).await
}

/// `POST {hub}{path}` with `body` (JSON), as [`get`].
pub async fn post(hub: &HubUrl, path: &str, token: &str, body: String) -> Result<String, CliError> {
    send(hub, "POST", path, token, Some(body)).await
}

async fn send(
    hub: &HubUrl,
    method: &str,
    path: &str,
    token: &str,
    body: Option<String>,
) -> Result<String, CliError> {
    let url = format!("{}{path}", hub.http);
    let answer = tokio::time::timeout(
        ANSWER_TIMEOUT,
        crate::http_client::request(method, &url, Some(token.trim()), body),
    )
    .await
    .map_err(|_| {
        connect::unreachable(
            hub,
            format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()),
        )
    })?;
    let (status, body) = answer.map_err(|e| match e {
        crate::http_client::ClientError::Connect(io) => {
            connect::unreachable(hub, super::error::io_reason(&io))
        }
        other => connect::unreachable(hub, other.to_string()),
    })?;
    if status != 200 {
        let reason = hyper::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason());
        return Err(CliError::from_http(status, reason, body.as_bytes()));
    }
    Ok(body)
}
