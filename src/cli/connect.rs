//! How `livehub host` reaches a hub: the `--url` forms it takes, and opening a room's WebSocket
//! with every way that can fail told as a [`CliError`]: the hub's refusal with its code and
//! reason, or a hub that cannot be reached.

use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

use super::error::{CliError, io_reason};
use crate::protocol::Id;

/// A room's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How long opening a connection may take before the hub counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The hub's base URLs, from `--url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubUrl {
    /// `ws://host:port`, for the rooms' WebSockets.
    pub ws: String,
    /// `http://host:port`, for the REST endpoints.
    pub http: String,
}

impl HubUrl {
    /// Takes `ws://host:port`, `http://host:port` or a bare `host:port` (a trailing `/` is
    /// fine). Refuses TLS URLs (this client speaks plain WebSocket and HTTP; reach a TLS hub
    /// through a local tunnel) and URLs with a path (it is the hub's base URL, not a room's).
    pub fn parse(url: &str) -> Result<Self, CliError> {
        use crate::base_url::BaseUrlError;
        let authority = crate::base_url::authority(url).map_err(|e| {
            CliError::Usage(match e {
                BaseUrlError::Tls => format!(
                    "--url {url}: this client speaks ws:// and http:// only, not TLS; reach the \
                     hub through a local tunnel or proxy and give its ws:// address"
                ),
                BaseUrlError::Scheme(_) => {
                    format!("--url {url}: expected the hub's base URL, e.g. ws://127.0.0.1:8080")
                }
                BaseUrlError::NoHost | BaseUrlError::Path => format!(
                    "--url {url}: expected the hub's base URL without a path, e.g. \
                     ws://127.0.0.1:8080"
                ),
            })
        })?;
        Ok(HubUrl {
            ws: format!("ws://{authority}"),
            http: format!("http://{authority}"),
        })
    }
}

/// Opens `room`'s WebSocket with `token` (sent as `Authorization: Bearer`, so it stays out of
/// URLs and logs), resuming after `since` when given.
pub async fn open(
    hub: &HubUrl,
    room: &Id,
    token: &str,
    since: Option<u64>,
) -> Result<Ws, CliError> {
    let mut url = format!("{}/ws/rooms/{room}", hub.ws);
    if let Some(s) = since {
        url.push_str(&format!("?since={s}"));
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| CliError::Usage(format!("--url {}: {e}", hub.ws)))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
        CliError::Usage("the token holds characters a token cannot have (spaces, controls)".into())
    })?;
    request.headers_mut().insert("authorization", bearer);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(unreachable(
            hub,
            format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        )),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(upgrade_failed(hub, e)),
    }
}

/// The hub at `hub` could not be reached, for `reason`.
pub fn unreachable(hub: &HubUrl, reason: impl Into<String>) -> CliError {
    CliError::Unreachable {
        url: hub.ws.clone(),
        reason: reason.into(),
    }
}

/// Why an opening handshake failed.
fn upgrade_failed(hub: &HubUrl, e: tungstenite::Error) -> CliError {
    match e {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            CliError::from_http(
                status.as_u16(),
                status.canonical_reason(),
                response.body().as_deref().unwrap_or_default(),
            )
        }
        tungstenite::Error::Url(e) => CliError::Usage(format!("--url {}: {e}", hub.ws)),
        other => unreachable(hub, lost_reason(&other)),
    }
}

/// A broken connection's reason in a few words.
pub fn lost_reason(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Io(io) => io_reason(io),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            "the connection closed".into()
        }
        tungstenite::Error::Protocol(p) => format!("protocol error: {p}"),
        other => other.to_string(),
    }
}

/// A close frame in words: `1001 going away`, with the hub's reason after a colon when it
/// gave one beyond the code's meaning; `no close frame` when there was none.
pub fn close_words(frame: Option<&CloseFrame>) -> String {
    let Some(frame) = frame else {
        return "no close frame".into();
    };
    let code = u16::from(frame.code);
    let meaning = match code {
        1000 => "normal",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        _ => "",
    };
    let mut words = if meaning.is_empty() {
        code.to_string()
    } else {
        format!("{code} {meaning}")
    };
    let reason = super::lines::escape_controls(frame.reason.as_str()).into_owned();
    if !reason.is_empty() && code != 1001 {
        words.push_str(": ");
        words.push_str(&reason);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_url_may_be_ws_http_or_bare_but_not_tls_or_a_path() {
        let want = HubUrl {
            ws: "ws://127.0.0.1:8080".into(),
            http: "http://127.0.0.1:8080".into(),
        };
        for url in [
            "ws://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "127.0.0.1:8080",
        ] {
            assert_eq!(HubUrl::parse(url).unwrap(), want, "{url}");
        }
        for url in [
            "wss://hub.example",
            "https://hub.example",
            "ftp://x",
            "ws://h:1/ws/rooms/a",
            "",
        ] {
            let e = HubUrl::parse(url).unwrap_err();
            assert!(matches!(e, CliError::Usage(_)), "{url}: {e}");
            assert!(e.to_string().contains("--url"), "{e}");
        }
    }

    #[test]
    fn close_frames_are_told_in_words() {
        let frame = |code: u16, reason: &str| CloseFrame {
            code: code.into(),
            reason: reason.to_owned().into(),
        };
        assert_eq!(
            close_words(Some(&frame(
                1001,
                "hub shutting down; reconnect with ?since="
            ))),
            "1001 going away"
        );
        assert_eq!(
            close_words(Some(&frame(1013, "slow consumer"))),
            "1013 try again later: slow consumer"
        );
        assert_eq!(close_words(Some(&frame(4000, ""))), "4000");
        assert_eq!(close_words(None), "no close frame");
    }
}
