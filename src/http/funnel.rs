//! The funnel's REST endpoints: a room's funnel and timeline (its host or an admin) and a
//! creator's earnings (that creator's host token or an admin). They show counts and sums,
//! never user ids.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{CreatorId, Host, Signed};
use crate::clock::now_ms;
use crate::error::HubError;
use crate::funnel::view;
use crate::hub::{Deadline, Hub};
use crate::protocol::{Id, Role};

/// `?format=` of the earnings: `json` (the default) or `csv`.
#[derive(serde::Deserialize)]
pub(super) struct Format {
    format: Option<String>,
}

/// A room reading for its host or an admin, after this node's own funnel facts were sent, so a
/// host reading right after an action sees it.
async fn host_reading(app: AppState, room: Id) -> (Arc<Hub>, Id) {
    let hub = app.hub;
    hub.flush_funnel_of(&room).await;
    (hub, room)
}

/// `GET /api/rooms/{room}/funnel`.
pub(super) async fn funnel(
    State(app): State<AppState>,
    Host { room, .. }: Host,
) -> Result<Response, HubError> {
    let (hub, room) = host_reading(app, room).await;
    let now = now_ms();
    let counts = hub
        .within(Deadline::Host, hub.funnel().store().counts(&room))
        .await?;
    let sales = hub
        .within(Deadline::Host, hub.inventory().room_sales(&room, now))
        .await?;
    let engaged_ms = hub.funnel().config().engaged_ms;
    let mut body = view::room_funnel(&room, &counts, &sales, engaged_ms, now);
    // Orders count when paid; units still waiting for payment are shown beside (issue 23).
    for s in &sales {
        let audit = hub.inventory().audit(&room, &s.deal.id, now);
        if let (Ok(a), Some(row)) = (
            hub.within(Deadline::Host, audit).await,
            body.deals.get_mut(s.deal.id.as_str()),
        ) {
            row.pending_units = u64::from(a.pending);
        }
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /api/rooms/{room}/timeline`.
pub(super) async fn timeline(
    State(app): State<AppState>,
    Host { room, .. }: Host,
) -> Result<Response, HubError> {
    let (hub, room) = host_reading(app, room).await;
    let activity = hub
        .within(Deadline::Host, hub.funnel().store().activity(&room))
        .await?;
    let sales = hub
        .within(Deadline::Host, hub.inventory().room_sales(&room, now_ms()))
        .await?;
    Ok(axum::Json(view::timeline(&room, &activity, &sales)).into_response())
}

/// `GET /api/creators/{creator}/earnings` (`?format=csv` for CSV).
pub(super) async fn earnings(
    State(app): State<AppState>,
    CreatorId(creator): CreatorId,
    Signed(who): Signed,
    Query(Format { format }): Query<Format>,
) -> Result<Response, HubError> {
    let hub = app.hub;
    let allowed = who.role == Role::Admin || (who.role == Role::Host && who.user == creator);
    if !allowed {
        return Err(HubError::Forbidden(
            "earnings are shown only to their creator (a host token) or an admin".into(),
        ));
    }
    let sales = hub
        .within(
            Deadline::Host,
            hub.inventory().creator_sales(&creator, now_ms()),
        )
        .await?;
    let earnings = view::earnings(&creator, &sales);
    match format.as_deref() {
        None | Some("json") => Ok(axum::Json(earnings).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"earnings.csv\"",
                ),
            ],
            view::earnings_csv(&earnings),
        )
            .into_response()),
        Some(other) => Err(HubError::BadRequest(format!(
            "format must be json or csv, not {other:?}"
        ))),
    }
}
