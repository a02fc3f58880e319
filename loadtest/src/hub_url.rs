//! `--url` as every mode takes it: a hub's base URL. The clients here speak plain WebSocket
//! (`ws://`), so `http://host:port` (the hub's own address as the README and a browser show it)
//! is taken as `ws://host:port`, a bare `host:port` too, and anything they cannot connect to is
//! refused before the first connection, with a message saying what to give instead: a run where
//! every connection fails the same avoidable way measures nothing.

/// The `ws://host:port` form of `url`, or why it cannot be one (for clap: the error is shown
/// next to the argument).
pub fn parse(url: &str) -> Result<String, String> {
    use livehub::base_url::BaseUrlError;
    let authority = livehub::base_url::authority(url).map_err(|e| match e {
        BaseUrlError::Tls => "the load tester speaks plain ws:// (TLS would cost the client more \
             CPU than the hub); point it at the hub itself, e.g. ws://127.0.0.1:8080"
            .to_owned(),
        BaseUrlError::Scheme(scheme) => {
            format!("a {scheme}:// URL; give the hub's base URL, e.g. ws://127.0.0.1:8080")
        }
        BaseUrlError::NoHost => {
            "no host; give the hub's base URL, e.g. ws://127.0.0.1:8080".to_owned()
        }
        BaseUrlError::Path => "give the hub's base URL without a path (the rooms' paths are \
             added), e.g. ws://127.0.0.1:8080"
            .to_owned(),
    })?;
    if !authority.contains(':') {
        return Err(format!("no port; e.g. ws://{authority}:8080"));
    }
    Ok(format!("ws://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_bare_addresses_become_ws_and_the_rest_is_refused_with_a_reason() {
        for ok in [
            "ws://127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "127.0.0.1:8080",
        ] {
            assert_eq!(parse(ok).as_deref(), Ok("ws://127.0.0.1:8080"), "{ok}");
        }
        for (bad, says) in [
            ("https://hub.example:443", "plain ws://"),
            ("wss://hub.example:443", "plain ws://"),
            ("ftp://hub:21", "ftp://"),
            ("ws://127.0.0.1:8080/ws/rooms/a", "without a path"),
            ("ws://hub.example", "no port"),
            ("", "no host"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
