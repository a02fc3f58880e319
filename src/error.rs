//! The hub's one error type and its mapping to protocol error codes and HTTP statuses.
//!
//! Every module's error converts into [`HubError`] exactly once; the WebSocket path turns it
//! into an `error` message and the REST path into `{"error":{"code","message"}}` with the status
//! from [`ErrorCode::http_status`].

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// The protocol's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    TooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire (and in metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the REST endpoints answer with for this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error a client can be told about. The message is safe to show to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// The room has not been opened by its host (yet): `not_found` on the wire.
    #[error("the show has not started")]
    NotLive,
}

impl HubError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::BadRequest(_) => ErrorCode::BadRequest,
            HubError::Unauthorized(_) => ErrorCode::Unauthorized,
            HubError::Forbidden(_) => ErrorCode::Forbidden,
            HubError::NotFound(_) => ErrorCode::NotFound,
            HubError::Conflict(_) => ErrorCode::Conflict,
            HubError::RateLimited(_) => ErrorCode::RateLimited,
            HubError::TooLarge(_) => ErrorCode::TooLarge,
            HubError::Unavailable(_) => ErrorCode::Unavailable,
            HubError::Internal(_) => ErrorCode::Internal,
            HubError::NotLive => ErrorCode::NotFound,
        }
    }
}

#[cfg(feature = "server")]
impl axum::response::IntoResponse for HubError {
    fn into_response(self) -> axum::response::Response {
        let code = self.code();
        metrics::counter!(crate::metrics::ERRORS, "code" => code.as_str()).increment(1);
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        (code.http_status(), axum::Json(body)).into_response()
    }
}
