//! A hub's base URL as its clients take it (`livehub host --url`, `livehub-loadtest --url`):
//! `ws://host:port`, `http://host:port` (the hub's address as the README and a browser show it)
//! or a bare `host:port`, a trailing `/` allowed. Each client words the refusal its own way.

/// Why a URL is not a hub's plain base URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    /// `wss://` or `https://`: the clients speak plain WebSocket and HTTP.
    #[error("a TLS URL")]
    Tls,
    /// Another scheme, named.
    #[error("a {0}:// URL")]
    Scheme(String),
    /// Nothing after the scheme.
    #[error("no host")]
    NoHost,
    /// A path after the authority (the rooms' paths are the client's to add).
    #[error("a path")]
    Path,
}

/// The `host:port` part of `url` (the port may be missing: callers that need one check).
pub fn authority(url: &str) -> Result<&str, BaseUrlError> {
    let trimmed = url.trim().trim_end_matches('/');
    let authority = if let Some(rest) = trimmed.strip_prefix("ws://") {
        rest
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        rest
    } else if trimmed.starts_with("wss://") || trimmed.starts_with("https://") {
        return Err(BaseUrlError::Tls);
    } else if let Some((scheme, _)) = trimmed.split_once("://") {
        return Err(BaseUrlError::Scheme(scheme.to_owned()));
    } else {
        trimmed
    };
    if authority.is_empty() {
        Err(BaseUrlError::NoHost)
    } else if authority.contains('/') {
        Err(BaseUrlError::Path)
    } else {
        Ok(authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_http_and_bare_forms_give_the_authority_and_the_rest_says_why_not() {
        for ok in ["ws://h:1", "http://h:1", "http://h:1/", " h:1 "] {
            assert_eq!(authority(ok), Ok("h:1"), "{ok}");
        }
        assert_eq!(authority("https://h:1"), Err(BaseUrlError::Tls));
        assert_eq!(authority("wss://h:1"), Err(BaseUrlError::Tls));
        assert_eq!(
            authority("ftp://h:1"),
            Err(BaseUrlError::Scheme("ftp".into()))
        );
        assert_eq!(authority("  "), Err(BaseUrlError::NoHost));
        assert_eq!(authority("ws://h:1/rooms/x"), Err(BaseUrlError::Path));
    }
}
