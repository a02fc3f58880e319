//! HTTP routes: the WebSocket upgrade (authenticated before upgrading), the REST command and
//! audit endpoints, room snapshots, the funnel's endpoints ([`funnel`]), the shop's order
//! endpoints ([`orders`]), health, readiness and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use metrics_exporter_prometheus::PrometheusHandle;

mod extract;
mod funnel;
mod orders;
mod webhooks;

use extract::{DealId, Host, RoomId, Signed, Token, Viewer, identify, parse_id};

use crate::clock::now_ms;
use crate::command::{Outcome, execute};
use crate::error::HubError;
use crate::hub::{Deadline, Hub};
use crate::metrics as m;
use crate::protocol::parse_client;

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    metrics: PrometheusHandle,
    webhooks: Arc<crate::webhooks::Webhooks>,
}

/// Every route of the hub.
pub fn router(
    hub: Arc<Hub>,
    metrics: PrometheusHandle,
    webhooks: Arc<crate::webhooks::Webhooks>,
) -> Router {
    let body_limit = hub.config().limits.max_frame_bytes;
    // Before any upgrade: axum takes each connection's fragment limit from this default.
    crate::frame::set_fragment_limit(&hub.config().limits);
    let pages = crate::pages::router(Arc::clone(&hub));
    let csp = header::HeaderValue::from_str(&content_security_policy(hub.config()))
        .unwrap_or_else(|_| header::HeaderValue::from_static("default-src 'self'"));
    Router::new()
        .route("/ws/rooms/{room}", get(ws_upgrade))
        .route("/api/rooms/{room}/commands", post(command))
        .route("/api/rooms/{room}", get(snapshot))
        .route("/api/rooms/{room}/deals/{deal}", get(audit))
        .route("/api/rooms/{room}/funnel", get(funnel::funnel))
        .route("/api/rooms/{room}/timeline", get(funnel::timeline))
        .route("/api/creators/{creator}/earnings", get(funnel::earnings))
        .route("/api/orders/events", get(orders::events))
        .route("/api/rooms/{room}/orders", get(orders::mine))
        .route("/api/orders/{order}/paid", post(orders::paid))
        .route("/api/orders/{order}/failed", post(orders::failed))
        .route("/api/webhooks", get(webhooks::status))
        .route("/api/webhooks/{endpoint}/replay", post(webhooks::replay))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(AppState {
            hub,
            metrics,
            webhooks,
        })
        .merge(pages)
        .layer(axum::middleware::map_response(move |res: Response| {
            security_headers(csp.clone(), res)
        }))
}

/// What the pages may load: scripts and styles from this hub only (no inline script, no framing);
/// product images from anywhere over https; the show's video (a `<video>` source, or the HLS
/// playlist and segments hls.js fetches, hence `connect-src`) from anywhere over https. Plain
/// `http:` media is allowed from the origin of `pages.stream_url` when that is an http URL (the
/// operator chose it), and from loopback (`http://127.0.0.1:*`, `http://localhost:*`) while the
/// hub itself listens on loopback: a development or test stream on
/// this machine. Never `http:` in general: a host's `set_stream` URL from elsewhere must be https.
pub fn content_security_policy(config: &crate::config::Config) -> String {
    let mut extra: Vec<String> = Vec::new();
    if let Some(origin) = http_origin(&config.pages.stream_url) {
        extra.push(origin);
    }
    if config.is_loopback() {
        // (CSP host sources cannot name an IPv6 address, so [::1] is not among them.)
        for loopback in ["http://127.0.0.1:*", "http://localhost:*"] {
            extra.push(loopback.to_owned());
        }
    }
    let extra = extra.iter().map(|o| format!(" {o}")).collect::<String>();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: https:; media-src 'self' https: blob:{extra}; \
         connect-src 'self' https:{extra}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'"
    )
}

/// `http://host[:port]` of a plain-http URL, or None (https, empty, or not a URL whose host is
/// a plain name or address: nothing that could smuggle another directive into the policy).
fn http_origin(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_ok = !authority.is_empty()
        && !authority.contains('@')
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b)); // no IPv6: CSP cannot say it
    host_ok.then(|| format!("http://{authority}"))
}

/// Security headers on every answer, pages and API alike. Tokens travel in `?token=`, so no
/// URL is sent as a referrer.
async fn security_headers(csp: header::HeaderValue, mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    let set = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        h.insert(name, header::HeaderValue::from_static(value));
    }
    res
}

/// `server.allowed_origins`: an upgrade whose `Origin` is not listed is refused (403). An empty
/// list allows any origin; a request without `Origin` (not a browser) is allowed.
fn check_origin(hub: &Hub, headers: &HeaderMap) -> Result<(), HubError> {
    let allowed = &hub.config().server.allowed_origins;
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if allowed.is_empty() {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or_default();
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        Ok(())
    } else {
        Err(HubError::Forbidden("origin not allowed".into()))
    }
}

fn refused(reason: &'static str, e: HubError) -> Response {
    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => reason).increment(1);
    e.into_response()
}

/// The query of a WebSocket upgrade (the token is [`Token`]'s).
#[derive(serde::Deserialize)]
struct Join {
    /// Resume after this `seq`; checked here so a bad one is refused as `bad_since`.
    since: Option<String>,
    /// The channel for analytics when the token names none.
    src: Option<String>,
}

async fn ws_upgrade(
    State(app): State<AppState>,
    Path(room): Path<String>,
    Token(token): Token,
    join: Result<Query<Join>, QueryRejection>,
    headers: HeaderMap,
    axum::Extension(ticket): axum::Extension<crate::admission::Ticket>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let hub = app.hub;
    if let Err(e) = check_origin(&hub, &headers) {
        return refused("origin", e);
    }
    let room = match parse_id("room", &room) {
        Ok(r) => r,
        Err(e) => return refused("bad_room", e),
    };
    let Join { since, src } = match join {
        Ok(Query(join)) => join,
        Err(e) => return refused("bad_since", HubError::BadRequest(e.body_text())),
    };
    let since = match since.map(|s| s.parse::<u64>()) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return refused(
                "bad_since",
                HubError::BadRequest("since must be a non-negative integer".into()),
            );
        }
    };
    let who = match identify(&hub, token, hub.config().allow_anonymous())
        .and_then(|who| {
            who.check_room(&room)
                .and_then(|()| who.check_joins())
                .map(|()| who)
                .map_err(HubError::from)
        })
    {
        // `?src=` names the channel for analytics when the token has none; it never pays.
        Ok(who) => who.with_query_src(src.as_deref()),
        Err(e) => return refused("auth", e),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    // The pass keeps this connection, its forwarded client and its user counted until the
    // session ends.
    let pass = match ticket.admit_session(&headers, &who) {
        Ok(pass) => pass,
        Err(refusal) => return refused(refusal.reason(), refusal.into()),
    };
    let s = &hub.config().session;
    let max_frame = hub.config().limits.max_frame_bytes;
    upgrade
        .read_buffer_size(s.read_buffer_bytes)
        .write_buffer_size(s.write_buffer_bytes)
        .max_write_buffer_size(s.max_write_buffer_bytes)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "upgrade failed"))
        .on_upgrade(move |socket| {
            hub.tracker().track_future({
                let hub = Arc::clone(&hub);
                async move {
                    crate::session::run(socket, Arc::clone(&hub), room, who, since).await;
                    drop(pass);
                }
            })
        })
}

/// `POST /api/rooms/{room}/commands`: one host command, answered like its WebSocket reply.
async fn command(
    State(app): State<AppState>,
    Host { room: room_id, who }: Host,
    body: Body,
) -> Result<Response, HubError> {
    let hub = app.hub;
    hub.check_rest_rate(&who.user)?;
    let body = read_body(&hub, body).await?;
    let text =
        std::str::from_utf8(&body).map_err(|_| HubError::BadRequest("body is not UTF-8".into()))?;
    let cmd = parse_client(text).map_err(|e| HubError::BadRequest(e.message))?;
    if !cmd.is_host_command() {
        return Err(HubError::BadRequest(
            "only host commands are accepted here; viewer commands go over the WebSocket".into(),
        ));
    }
    let room = hub.room(&room_id, true).await?;
    match execute(&hub, &room, &who, cmd).await? {
        Outcome::Applied(seq) => {
            let mut body = serde_json::json!({"ok": true});
            if let Some(seq) = seq {
                body["seq"] = seq.into();
            }
            Ok(axum::Json(body).into_response())
        }
        Outcome::Reply(msg) => Ok(axum::Json(msg).into_response()),
    }
}

/// A command's body, at most `limits.max_frame_bytes`, received within
/// `server.body_timeout_ms`. A body that trickles in is refused (and hyper closes the
/// connection, since the rest of the body was never read) rather than held open.
async fn read_body(hub: &Hub, body: Body) -> Result<Bytes, HubError> {
    let config = hub.config();
    let limit = config.limits.max_frame_bytes;
    let wait = Duration::from_millis(config.server.body_timeout_ms);
    let collected = tokio::time::timeout(wait, Limited::new(body, limit).collect())
        .await
        .map_err(|_| {
            HubError::BadRequest(format!(
                "the request body did not arrive within {} ms",
                wait.as_millis()
            ))
        })?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(HubError::TooLarge(
            format!("body is larger than {limit} bytes"),
        )),
        Err(e) => Err(HubError::BadRequest(format!(
            "reading the body failed: {e}"
        ))),
    }
}

/// `GET /api/rooms/{room}`: with the same authorization as joining (a token for this room, or
/// none where anonymous viewers are allowed).
async fn snapshot(
    State(app): State<AppState>,
    RoomId(room): RoomId,
    Viewer(who): Viewer,
) -> Result<Response, HubError> {
    who.check_room(&room)?;
    let snap = app
        .hub
        .snapshot(&room)
        .await?
        .ok_or_else(|| HubError::NotFound(format!("room {room} does not exist")))?;
    Ok(axum::Json(snap).into_response())
}

/// `GET /api/rooms/{room}/deals/{deal}`: the deal's stock audit, for its host or an admin.
async fn audit(
    State(app): State<AppState>,
    RoomId(room): RoomId,
    DealId(deal): DealId,
    Signed(who): Signed,
) -> Result<Response, HubError> {
    let hub = app.hub;
    who.check_host(&room)?;
    let audit = hub
        .within(
            Deadline::Host,
            hub.inventory().audit(&room, &deal, now_ms()),
        )
        .await?;
    Ok(axum::Json(audit).into_response())
}

async fn readyz(State(app): State<AppState>) -> Response {
    let hub = &app.hub;
    let ready = async {
        hub.within(Deadline::Viewer, hub.inventory().health())
            .await?;
        hub.within(Deadline::Viewer, hub.bus().health()).await
    };
    match ready.await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn render_metrics(State(app): State<AppState>) -> Response {
    crate::metrics::sample_process();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod csp_tests {
    use super::*;

    #[test]
    fn http_stream_origins_are_plain_names_only() {
        assert_eq!(
            http_origin("http://cdn.example:8081/live/a.m3u8?x=1"),
            Some("http://cdn.example:8081".into())
        );
        for none in [
            "",
            "https://cdn.example/a.m3u8",
            "http://",
            "http://a; script-src *",
            "http://user@cdn.example/",
            "ftp://cdn.example/",
            "http://[::1]:9000/a.m3u8",
        ] {
            assert_eq!(http_origin(none), None, "{none}");
        }
    }

    #[test]
    fn http_media_only_from_the_configured_stream_or_loopback_while_on_loopback() {
        let mut cfg = crate::config::Config::defaults();
        cfg.server.bind = "0.0.0.0:8080".parse().unwrap();
        let public = content_security_policy(&cfg);
        assert!(
            public.contains("media-src 'self' https: blob:;"),
            "{public}"
        );
        assert!(public.contains("connect-src 'self' https:;"), "{public}");
        assert!(!public.contains("http:"), "{public}");
        cfg.pages.stream_url = "http://video.internal:8000/show.m3u8".into();
        let configured = content_security_policy(&cfg);
        assert!(
            configured.contains("media-src 'self' https: blob: http://video.internal:8000;"),
            "{configured}"
        );
        cfg.pages.stream_url.clear();
        cfg.server.bind = "127.0.0.1:8080".parse().unwrap();
        let local = content_security_policy(&cfg);
        assert!(local.contains("http://127.0.0.1:*"), "{local}");
        assert!(local.contains("script-src 'self';"), "{local}");
    }
}
