//! The funnel's REST endpoints: a room's funnel and timeline (its host or an admin) and a
//! creator's earnings (that creator's host token or an admin). They show counts and sums,
//! never user ids.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, identify, parse_id, require_host, token_from};
use crate::clock::now_ms;
use crate::error::HubError;
use crate::funnel::view;
use crate::hub::Deadline;
use crate::protocol::Role;

/// A room reading for its host or an admin: the room id, checked, after this node's own
/// funnel facts were sent, so a host reading right after an action sees it.
async fn host_reading(
    app: AppState,
    room: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(std::sync::Arc<crate::hub::Hub>, crate::protocol::Id), HubError> {
    let hub = app.hub;
    let room = parse_id("room", room)?;
    require_host(&hub, &room, query, headers)?;
    hub.flush_funnel_of(&room).await;
    Ok((hub, room))
}

/// `GET /api/rooms/{room}/funnel`.
pub(super) async fn funnel(
    State(app): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let (hub, room) = host_reading(app, &room, &query, &headers).await?;
    let now = now_ms();
    let counts = hub
        .within(Deadline::Host, hub.funnel().store().counts(&room))
        .await?;
    let sales = hub
        .within(Deadline::Host, hub.inventory().room_sales(&room, now))
        .await?;
    let engaged_ms = hub.funnel().config().engaged_ms;
    let body = view::room_funnel(&room, &counts, &sales, engaged_ms, now);
    Ok(axum::Json(body).into_response())
}

/// `GET /api/rooms/{room}/timeline`.
pub(super) async fn timeline(
    State(app): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let (hub, room) = host_reading(app, &room, &query, &headers).await?;
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
    Path(creator): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, HubError> {
    let hub = app.hub;
    let creator = parse_id("creator", &creator)?;
    let who = identify(&hub, token_from(&query, &headers), false)?;
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
    match query.get("format").map(String::as_str) {
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
