//! What the REST handlers take from a request, checked once, as axum extractors (the shape of
//! axum's `examples/jwt`): who calls (from `?token=` or `Authorization: Bearer`), ids from the
//! path, and a room's host. A value that does not pass is the request's answer: a [`HubError`]
//! with its code and status, like every other error.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use crate::auth::Identity;
use crate::error::HubError;
use crate::hub::Hub;
use crate::protocol::Id;

/// The request's token, if it carries one: `?token=` (what a browser's WebSocket can send) or
/// else `Authorization: Bearer`. Never rejects.
pub struct Token(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Token {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
            .map(|Query(q)| q)
            .unwrap_or_default();
        Ok(Token(token_from(&query, &parts.headers)))
    }
}

/// `?token=` when present and not empty, else the `Authorization: Bearer` token.
fn token_from(query: &HashMap<String, String>, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = query.get("token").filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
}

/// Who the token says the caller is; without a token, an anonymous viewer when `allow_anonymous`
/// (else `unauthorized`).
pub fn identify(
    hub: &Hub,
    token: Option<String>,
    allow_anonymous: bool,
) -> Result<Identity, HubError> {
    match token {
        Some(t) => Ok(hub.auth().verify(&t)?),
        None if allow_anonymous => Ok(Identity::anonymous(hub.anonymous_id())),
        None => Err(HubError::Unauthorized("missing token".into())),
    }
}

/// A caller with a valid token (`unauthorized` without one, whatever the hub allows viewers).
pub struct Signed(pub Identity);

impl FromRequestParts<AppState> for Signed {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HubError> {
        let Token(token) = Token::from_request_parts(parts, app)
            .await
            .unwrap_or(Token(None));
        identify(&app.hub, token, false).map(Signed)
    }
}

/// A caller who may view a room: a valid token, or none where anonymous viewers are allowed
/// (`server.allow_anonymous`). Which room it may view is the handler's to check.
pub struct Viewer(pub Identity);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HubError> {
        let Token(token) = Token::from_request_parts(parts, app)
            .await
            .unwrap_or(Token(None));
        identify(&app.hub, token, app.hub.config().allow_anonymous()).map(Viewer)
    }
}

/// `raw` as an id, or `bad_request` naming `what`.
pub fn parse_id(what: &str, raw: &str) -> Result<Id, HubError> {
    Id::new(raw).map_err(|e| HubError::BadRequest(format!("{what}: {e}")))
}

/// The path parameter `name` as an id.
async fn path_id(parts: &mut Parts, name: &str) -> Result<Id, HubError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .map_err(|e| HubError::BadRequest(e.body_text()))?;
    let raw = params
        .get(name)
        .ok_or_else(|| HubError::Internal(format!("route has no {{{name}}}")))?;
    parse_id(name, raw)
}

/// The `{room}` of the path, a valid id.
pub struct RoomId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for RoomId {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HubError> {
        path_id(parts, "room").await.map(RoomId)
    }
}

/// The `{deal}` of the path, a valid id.
pub struct DealId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for DealId {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HubError> {
        path_id(parts, "deal").await.map(DealId)
    }
}

/// The `{creator}` of the path, a valid id.
pub struct CreatorId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for CreatorId {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HubError> {
        path_id(parts, "creator").await.map(CreatorId)
    }
}

/// The `{order}` of the path, a valid id.
pub struct OrderId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for OrderId {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, HubError> {
        path_id(parts, "order").await.map(OrderId)
    }
}

/// The shop's backend: a merchant or an admin token (`unauthorized` without a token,
/// `forbidden` with any other).
pub struct Merchant(pub Identity);

impl FromRequestParts<AppState> for Merchant {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HubError> {
        let Signed(who) = Signed::from_request_parts(parts, app).await?;
        who.check_merchant()?;
        Ok(Merchant(who))
    }
}

/// The host of the path's `{room}` (or an admin): the room id, checked, then a token that may
/// host it; `bad_request`, `unauthorized` or `forbidden` otherwise, in that order.
pub struct Host {
    pub room: Id,
    pub who: Identity,
}

impl FromRequestParts<AppState> for Host {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, HubError> {
        let RoomId(room) = RoomId::from_request_parts(parts, app).await?;
        let Signed(who) = Signed::from_request_parts(parts, app).await?;
        who.check_host(&room)?;
        Ok(Host { room, who })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_query_token_wins_over_the_header_and_an_empty_one_does_not_count() {
        let q = |t: &str| HashMap::from([("token".to_owned(), t.to_owned())]);
        assert_eq!(
            token_from(&q("a"), &headers(Some("Bearer b"))).as_deref(),
            Some("a")
        );
        assert_eq!(
            token_from(&q(""), &headers(Some("Bearer  b "))).as_deref(),
            Some("b")
        );
        assert_eq!(token_from(&HashMap::new(), &headers(Some("Basic b"))), None);
        assert_eq!(token_from(&HashMap::new(), &headers(None)), None);
    }

    #[test]
    fn a_bad_id_names_what_it_was() {
        let e = parse_id("deal", "no spaces").unwrap_err();
        assert!(
            matches!(&e, HubError::BadRequest(m) if m.starts_with("deal: ")),
            "{e}"
        );
    }
}
