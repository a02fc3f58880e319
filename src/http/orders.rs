//! The shop's order endpoints (issue 23), for a merchant or an admin token:
//! `POST /api/orders/{order}/paid` and `/failed` settle a pending order, and
//! `GET /api/orders/events?after=CURSOR&limit=N` pages through the order feed; and for a buyer,
//! `GET /api/rooms/{room}/orders`, their own orders in the room.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::{Merchant, OrderId, RoomId, Signed};
use crate::clock::now_ms;
use crate::error::{ErrorCode, HubError};
use crate::hub::Deadline;
use crate::inventory::{SettleOutcome, Settlement};
use crate::orders::{OrderDoc, Settled};

/// Most events one page of the feed returns, and how many it returns when not asked.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// `POST /api/orders/{order}/paid`.
pub(super) async fn paid(
    state: State<AppState>,
    merchant: Merchant,
    order: OrderId,
) -> Result<Response, HubError> {
    settle(state, merchant, order, Settlement::Paid).await
}

/// `POST /api/orders/{order}/failed`.
pub(super) async fn failed(
    state: State<AppState>,
    merchant: Merchant,
    order: OrderId,
) -> Result<Response, HubError> {
    settle(state, merchant, order, Settlement::Failed).await
}

/// Settles `order`: 200 with the order and whether this call changed it; 404 for an unknown
/// order; 409 with the order as it ended when it already ended in another status.
async fn settle(
    State(app): State<AppState>,
    Merchant(who): Merchant,
    OrderId(order): OrderId,
    to: Settlement,
) -> Result<Response, HubError> {
    let hub = app.hub;
    let settled = hub
        .within(Deadline::Host, hub.inventory().settle(&order, to, now_ms()))
        .await?;
    let outcome = match &settled {
        SettleOutcome::Settled { changed: true, .. } => "changed",
        SettleOutcome::Settled { .. } => "repeat",
        SettleOutcome::Final(_) => "final",
        SettleOutcome::NotFound => "not_found",
    };
    metrics::counter!(crate::metrics::ORDERS_SETTLED, "to" => to.status().as_str(), "outcome" => outcome)
        .increment(1);
    match settled {
        SettleOutcome::Settled {
            order,
            changed,
            level,
        } => {
            if let Some(level) = level {
                hub.stock_changed(&order.room, &order.deal, level);
            }
            if changed {
                tracing::debug!(order = %order.id, status = order.status.as_str(), by = %who.user, "order settled");
            }
            Ok(axum::Json(Settled { order, changed }).into_response())
        }
        SettleOutcome::Final(order) => {
            let body = serde_json::json!({"error": {
                "code": ErrorCode::Conflict,
                "message": format!("order {} is already {}", order.id, order.status.as_str()),
            }, "order": order});
            Ok((StatusCode::CONFLICT, axum::Json(body)).into_response())
        }
        SettleOutcome::NotFound => Err(HubError::NotFound(format!("no order {order}"))),
    }
}

/// The query of `GET /api/orders/events`, read as text so a bad value is answered with its
/// reason.
#[derive(serde::Deserialize)]
pub(super) struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /api/orders/events?after=CURSOR&limit=N`: up to `limit` (1 to [`MAX_PAGE`], default
/// 100) events after `after` (absent: from the oldest kept), and the cursor to ask with next.
pub(super) async fn events(
    State(app): State<AppState>,
    Merchant(_): Merchant,
    Query(q): Query<FeedQuery>,
) -> Result<Response, HubError> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                HubError::BadRequest(format!("limit must be 1 to {MAX_PAGE}, not {raw:?}"))
            })?,
    };
    let after = q.after.filter(|a| !a.is_empty());
    let hub = app.hub;
    let page = hub
        .within(
            Deadline::Host,
            hub.inventory().order_events(after.as_deref(), limit),
        )
        .await?;
    Ok(axum::Json(page).into_response())
}

/// The answer of `GET /api/rooms/{room}/orders`.
#[derive(serde::Serialize)]
struct Mine {
    orders: Vec<OrderDoc>,
}

/// `GET /api/rooms/{room}/orders`: the caller's own orders in the room, each with its status
/// now (a buyer who reconnects learns what became of its pending orders). A token for the room
/// is needed (`unauthorized` without one).
pub(super) async fn mine(
    State(app): State<AppState>,
    RoomId(room): RoomId,
    Signed(who): Signed,
) -> Result<Response, HubError> {
    who.check_room(&room)?;
    let hub = app.hub;
    let orders = hub
        .within(
            Deadline::Host,
            hub.inventory().user_orders(&room, &who.user, now_ms()),
        )
        .await?;
    Ok(axum::Json(Mine { orders }).into_response())
}
