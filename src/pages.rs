//! The web pages: a landing page, the viewer page and the host console, compiled into the binary
//! from `static/` so the hub serves them from anywhere with no build step. They speak only the
//! public protocol. Also the page helpers: `/api/pages` (what the pages may use), `/api/catalog`
//! (the host console's product catalog) and, when `pages.dev_tokens` is on, `/api/dev/token`
//! for loopback clients only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::Claims;
use crate::clock::now_ms;
use crate::error::HubError;
use crate::hub::Hub;
use crate::protocol::{Id, Role};

/// Every static file: (name under /static/, content type, body). `livehub-client.js` is the SDK
/// from clients/js, so the pages and shops' apps run the same connection code;
/// `vendor/hls.min.js` is hls.js (Apache-2.0, static/vendor/hls.js.LICENSE) for HLS streams in
/// browsers without native HLS.
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
    (
        "livehub-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../clients/js/livehub-client.js"),
    ),
    (
        "vendor/hls.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/vendor/hls.min.js"),
    ),
    (
        "funnel.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/funnel.js"),
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

#[derive(Clone)]
struct PagesState {
    hub: Arc<Hub>,
}

/// The page routes.
pub fn router(hub: Arc<Hub>) -> Router {
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
        .route(
            "/static/vendor/{name}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    file(&format!("vendor/{name}"))
                },
            ),
        )
        .route("/api/pages", get(pages_info))
        .route("/api/catalog", get(catalog_json))
        .route("/api/dev/token", get(dev_token))
        .with_state(PagesState { hub })
}

async fn pages_info(State(s): State<PagesState>) -> Response {
    let p = &s.hub.config().pages;
    axum::Json(serde_json::json!({
        "dev_tokens": s.hub.config().dev_tokens(),
        "stream_url": (!p.stream_url.is_empty()).then_some(&p.stream_url),
        "version": env!("CARGO_PKG_VERSION"),
        // The console counts pending orders apart from paid ones with external payment.
        "payment": match s.hub.config().orders.payment {
            crate::config::PaymentMode::None => "none",
            crate::config::PaymentMode::External => "external",
        },
    }))
    .into_response()
}

async fn catalog_json(State(s): State<PagesState>) -> Response {
    axum::Json(s.hub.catalog().products()).into_response()
}

/// Development only: mints a viewer or host token for one room. Off unless `pages.dev_tokens`;
/// answers only a client on this machine that named it by a loopback name (see
/// [`check_loopback_request`]), and never mints admin tokens.
async fn dev_token(
    State(s): State<PagesState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    if !s.hub.config().dev_tokens() {
        return Err(HubError::NotFound("development tokens are off".into()));
    }
    let peer = peer.ok().map(|ConnectInfo(addr)| addr);
    if let Err(why) = check_loopback_request(peer, &headers) {
        tracing::warn!(peer = ?peer, why, "refused /api/dev/token");
        return Err(HubError::Forbidden(format!(
            "development tokens are issued only to this machine ({why})"
        )));
    }
    let role = match q.get("role").map(String::as_str) {
        Some("viewer") | None => Role::Viewer,
        Some("host") => Role::Host,
        Some("admin") => {
            return Err(HubError::Forbidden(
                "admin tokens are never issued here: mint one with `livehub token --role admin`"
                    .into(),
            ));
        }
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
            src: None,
            aff: None,
        })
        .map_err(|e| HubError::Internal(e.to_string()))?;
    Ok(axum::Json(serde_json::json!({"token": token, "user": user})).into_response())
}

/// A request from this machine that names it: the TCP peer is a loopback address, the `Host`
/// header is `localhost`, `127.0.0.1` or `[::1]` with any port (a DNS-rebinding page reaches
/// the hub under its own host name), no proxy's forwarding header (`X-Forwarded-For`,
/// `Forwarded`, `X-Real-IP`) is present (a proxy on this machine connects from loopback), and
/// an `Origin`, when the browser sends one, is one of those names too. The error says which
/// check failed.
pub fn check_loopback_request(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    match peer {
        Some(p) if p.ip().to_canonical().is_loopback() => {}
        Some(_) => return Err("the client is not a loopback address"),
        None => return Err("the client address is unknown"),
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("no Host header")?;
    if !is_loopback_authority(host) {
        return Err("the Host header is not a loopback name");
    }
    // A proxy on this machine (nginx in front of a loopback hub) connects from loopback and may
    // pass a loopback Host; the header it adds says the client is elsewhere.
    if ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h))
    {
        return Err("the request came through a proxy");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let authority = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
        });
        if !authority.is_some_and(is_loopback_authority) {
            return Err("the Origin is not a loopback page");
        }
    }
    Ok(())
}

/// `localhost`, `127.0.0.1` or `[::1]`, optionally with `:port` (the name case-insensitive).
fn is_loopback_authority(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, after)) => (ip == "::1", after),
            None => return false,
        },
        None => {
            let (name, after) = authority
                .find(':')
                .map_or((authority, ""), |i| authority.split_at(i));
            (
                name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1",
                after,
            )
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_names_with_any_port_and_nothing_else() {
        for ok in [
            "localhost",
            "LocalHost:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.2",
            "[::1",
            "[::2]:80",
            "::1",
            "localhost:",
            "localhost:80:80",
            "localhost:8o",
            "0.0.0.0:8080",
            "192.0.2.2:8080",
        ] {
            assert!(!is_loopback_authority(bad), "{bad}");
        }
    }

    #[test]
    fn only_a_loopback_client_naming_a_loopback_host_passes() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let good = headers(&[(header::HOST, "localhost:8080")]);
        assert_eq!(check_loopback_request(Some(local), &good), Ok(()));
        assert_eq!(check_loopback_request(Some(mapped), &good), Ok(()));
        assert!(check_loopback_request(Some(remote), &good).is_err());
        assert!(check_loopback_request(None, &good).is_err());
        assert!(check_loopback_request(Some(local), &HeaderMap::new()).is_err());
        let rebound = headers(&[(header::HOST, "rebind.evil.example:8080")]);
        assert!(check_loopback_request(Some(local), &rebound).is_err());
        let same_origin = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "http://127.0.0.1:8080"),
        ]);
        assert_eq!(check_loopback_request(Some(local), &same_origin), Ok(()));
        let cross = headers(&[
            (header::HOST, "127.0.0.1:8080"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert!(check_loopback_request(Some(local), &cross).is_err());
        let null = headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, "null")]);
        assert!(check_loopback_request(Some(local), &null).is_err());
        for forwarding in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let mut proxied = good.clone();
            proxied.insert(
                axum::http::HeaderName::from_static(forwarding),
                "203.0.113.9".parse().unwrap(),
            );
            assert!(check_loopback_request(Some(local), &proxied).is_err());
        }
    }
}
