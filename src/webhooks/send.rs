//! One webhook POST over HTTP/1.1, https through rustls (the Mozilla roots compiled in) or plain
//! http, with a deadline on the whole exchange.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::sign::{EVENT_ID_HEADER, SIGNATURE_HEADER};

/// Most of a receiver's answer read (and dropped): enough to keep its connection for the next.
const MAX_ANSWER: usize = 64 * 1024;

/// Posts events to receivers, keeping connections to them open between posts.
pub struct Poster {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// What one POST came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// A 2xx: delivered.
    Delivered(u16),
    /// Anything else (another status, a refused connection, a timeout, a TLS failure), in
    /// words for the status and the logs: tried again later.
    Failed(String),
}

impl Poster {
    /// A client whose every POST, answer included, must be done within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, rustls::Error> {
        // ring, which the tokens' crate already builds: aws-lc-rs (rustls's default, with the
        // post-quantum key exchange ring lacks) is a C build of its own.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        // No Nagle: a request goes out at once, not after the receiver's delayed ACK.
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Poster { client, timeout })
    }

    /// POSTs `body` (an event's JSON, or a batch's) to `url`, signed with `signature`, with
    /// the `Livehub-Event-Id` header when `id` names its one event.
    pub async fn post(
        &self,
        url: &http::Uri,
        id: Option<&str>,
        signature: &str,
        body: Bytes,
    ) -> Posted {
        let mut request = http::Request::post(url.clone());
        if let Some(id) = id {
            request = request.header(EVENT_ID_HEADER, id);
        }
        let request = request
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("livehub/", env!("CARGO_PKG_VERSION")),
            )
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Posted::Failed(format!("request not built: {e}")),
        };
        let exchange = async {
            let answer = self.client.request(request).await.map_err(|e| {
                // The cause says what happened (refused, reset, TLS): the error's own text
                // is only "client error (Connect)".
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = format!("{why}: {s}");
                    source = s.source();
                }
                why
            })?;
            let status = answer.status();
            let _ = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
                .collect()
                .await;
            Ok::<_, String>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Posted::Failed(format!("no answer within {} ms", self.timeout.as_millis())),
            Ok(Err(why)) => Posted::Failed(why),
            Ok(Ok(s)) if s.is_success() => Posted::Delivered(s.as_u16()),
            Ok(Ok(s)) => Posted::Failed(format!("answered {s}")),
        }
    }
}
