//! The webhooks' operator endpoints (issue 23), for a merchant or an admin token:
//! `GET /api/webhooks` (each endpoint's lag, holder, counters and dead letters) and
//! `POST /api/webhooks/{endpoint}/replay` with `{"from": CURSOR}` or `{}` (from the oldest dead
//! letter), which sends every event after the cursor again and clears the dead letters.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::AppState;
use super::extract::Merchant;
use crate::error::HubError;
use crate::webhooks::{EndpointStatus, WebhookError};

impl From<WebhookError> for HubError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::UnknownEndpoint(_) => HubError::NotFound(e.to_string()),
            WebhookError::BadCursor(_) | WebhookError::NothingToReplay(_) => {
                HubError::BadRequest(e.to_string())
            }
            WebhookError::Unavailable(_) => HubError::Unavailable(e.to_string()),
        }
    }
}

/// `GET /api/webhooks`.
pub(super) async fn status(
    State(app): State<AppState>,
    _: Merchant,
) -> Result<Json<Vec<EndpointStatus>>, HubError> {
    Ok(Json(app.webhooks.status().await?))
}

/// The body of a replay: where to start (absent: the oldest dead letter; `""`: the feed's
/// oldest event kept).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Replay {
    from: Option<String>,
}

/// `POST /api/webhooks/{endpoint}/replay`: `{"endpoint", "from"}`, the cursor delivery restarts
/// after.
pub(super) async fn replay(
    State(app): State<AppState>,
    _: Merchant,
    Path(endpoint): Path<String>,
    body: Option<Json<Replay>>,
) -> Result<Json<serde_json::Value>, HubError> {
    let Json(r) = body.unwrap_or_default();
    let from = app.webhooks.replay(&endpoint, r.from.as_deref()).await?;
    Ok(Json(serde_json::json!({"endpoint": endpoint, "from": from})))
}
