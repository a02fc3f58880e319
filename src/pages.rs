//! The web pages: a landing page, the viewer page and the host console, compiled into the binary
//! from `static/` so the hub serves them from anywhere with no build step. They speak only the
//! public protocol. Also the page helpers: `/api/pages` (what the pages may use), `/api/catalog`
//! (the host console's product catalog) and, when `pages.dev_tokens` is on, `/api/dev/token`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::Claims;
use crate::error::HubError;
use crate::hub::{Hub, now_ms};
use crate::protocol::{Id, Product, Role};

/// The built-in product catalog (`config/catalog.json`), used unless `pages.catalog_file` is set.
pub const DEFAULT_CATALOG: &str = include_str!("../config/catalog.json");

/// Every static file: (name under /static/, content type, body).
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../static/index.html"),
    ),
    (
        "viewer.html",
        "text/html; charset=utf-8",
        include_str!("../static/viewer.html"),
    ),
    (
        "host.html",
        "text/html; charset=utf-8",
        include_str!("../static/host.html"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../static/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/common.js"),
    ),
    (
        "viewer.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/viewer.js"),
    ),
    (
        "host.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/host.js"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Loads and checks the catalog: the configured file, or the built-in one.
pub fn load_catalog(path: &str) -> Result<Vec<Product>, String> {
    let text = if path.is_empty() {
        DEFAULT_CATALOG.to_owned()
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("pages.catalog_file {path}: {e}"))?
    };
    let products: Vec<Product> =
        serde_json::from_str(&text).map_err(|e| format!("pages.catalog_file {path:?}: {e}"))?;
    for p in &products {
        p.validate()
            .map_err(|e| format!("pages.catalog_file: product {}: {e}", p.id))?;
    }
    Ok(products)
}

#[derive(Clone)]
struct PagesState {
    hub: Arc<Hub>,
    catalog: Arc<Vec<Product>>,
}

/// The page routes.
pub fn router(hub: Arc<Hub>, catalog: Vec<Product>) -> Router {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/rooms/{room}", get(|| async { file("viewer.html") }))
        .route("/host/{room}", get(|| async { file("host.html") }))
        .route(
            "/static/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move { file(&name) },
            ),
        )
        .route("/api/pages", get(pages_info))
        .route("/api/catalog", get(catalog_json))
        .route("/api/dev/token", get(dev_token))
        .with_state(PagesState {
            hub,
            catalog: Arc::new(catalog),
        })
}

async fn pages_info(State(s): State<PagesState>) -> Response {
    let p = &s.hub.config().pages;
    axum::Json(serde_json::json!({
        "dev_tokens": s.hub.config().dev_tokens(),
        "stream_url": (!p.stream_url.is_empty()).then_some(&p.stream_url),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn catalog_json(State(s): State<PagesState>) -> Response {
    axum::Json(s.catalog.as_ref()).into_response()
}

/// Development only: mints a viewer or host token for one room. Off unless `pages.dev_tokens`.
async fn dev_token(
    State(s): State<PagesState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    if !s.hub.config().dev_tokens() {
        return Err(HubError::NotFound("development tokens are off".into()));
    }
    let role = match q.get("role").map(String::as_str) {
        Some("viewer") | None => Role::Viewer,
        Some("host") => Role::Host,
        Some(other) => {
            return Err(HubError::BadRequest(format!(
                "role {other:?}: only viewer or host tokens are issued here"
            )));
        }
    };
    let room = Id::new(q.get("room").cloned().unwrap_or_default())
        .map_err(|e| HubError::BadRequest(format!("room: {e}")))?;
    let name: String = q
        .get("name")
        .map(|n| {
            n.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect()
        })
        .filter(|n: &String| !n.is_empty())
        .unwrap_or_else(|| "guest".into());
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let user = format!("{slug}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let token = s
        .hub
        .auth()
        .mint(&Claims {
            sub: user.clone(),
            name: Some(name),
            role,
            room: room.to_string(),
            exp: Some(now_ms() / 1000 + 12 * 3600),
        })
        .map_err(|e| HubError::Internal(e.to_string()))?;
    Ok(axum::Json(serde_json::json!({"token": token, "user": user})).into_response())
}
