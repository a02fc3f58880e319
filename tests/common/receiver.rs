//! A real webhook receiver for the tests: an HTTP/1.1 server on 127.0.0.1 that checks each
//! request's `Livehub-Signature` as a shop would, records what it accepted, and misbehaves on
//! demand: answers 500 to every `fail_every`-th request, never answers every `hang_every`-th,
//! and goes down (closed port, every connection dropped) and comes back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use livehub::webhooks::sign;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// One event the receiver answered 200 (alone or in a batch).
#[derive(Clone, Debug)]
pub struct Received {
    /// The `Livehub-Event-Id` header (a batched event's own `id`).
    pub id: String,
    pub body: serde_json::Value,
}

/// How the receiver answers (every counter over all requests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Misbehave {
    /// Answer 500 to every n-th request (0: never).
    pub fail_every: u64,
    /// Never answer every n-th request (0: never).
    pub hang_every: u64,
}

struct Shared {
    secret: String,
    misbehave: Misbehave,
    requests: AtomicU64,
    /// Requests answered 200.
    delivered: AtomicU64,
    /// Requests whose signature did not verify (each answered 400).
    bad_signatures: AtomicU64,
    accepted: Mutex<Vec<Received>>,
    changed: tokio::sync::Notify,
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free port, checking signatures with `secret`.
    pub async fn start(secret: &str, misbehave: Misbehave) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            misbehave,
            requests: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            accepted: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
        });
        let server = Some(tokio::spawn(serve(listener, Arc::clone(&shared))));
        Ok(Receiver {
            addr,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Closes the port and drops every open connection (a receiver that is down).
    pub fn down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.server = Some(tokio::spawn(serve(listener, Arc::clone(&self.shared))));
        Ok(())
    }

    /// Every event answered 200, in the order they were answered.
    pub fn accepted(&self) -> Vec<Received> {
        self.shared.accepted.lock().clone()
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests not answered 200 (failed on purpose, hung, or with a bad signature).
    pub fn refused(&self) -> u64 {
        self.requests()
            .saturating_sub(self.shared.delivered.load(Ordering::Relaxed))
    }

    pub fn bad_signatures(&self) -> u64 {
        self.shared.bad_signatures.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds for the events accepted so far (woken by each one), at most
    /// `within`.
    pub async fn wait_until(
        &self,
        within: std::time::Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.shared.changed.notified();
            if done(&self.shared.accepted.lock()) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                anyhow::bail!(
                    "the receiver did not get what was awaited in {within:?}: {} accepted of {} requests",
                    self.accepted().len(),
                    self.requests()
                );
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.down();
    }
}

/// Accepts connections until aborted; aborting it aborts every connection's task too.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(answer(req, &shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    shared: &Shared,
) -> hyper::Response<Full<Bytes>> {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, signature) = (
        header(sign::EVENT_ID_HEADER),
        header(sign::SIGNATURE_HEADER),
    );
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return status(400),
    };
    let m = shared.misbehave;
    if m.hang_every > 0 && n.is_multiple_of(m.hang_every) {
        std::future::pending::<()>().await;
    }
    if m.fail_every > 0 && n.is_multiple_of(m.fail_every) {
        return status(500);
    }
    let now = livehub::clock::now_ms() / 1000;
    if sign::verify(&shared.secret, &signature, &body, now).is_err() {
        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return status(400);
    }
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return status(400);
    };
    // A batch (an endpoint with `batch` above 1) carries no id header: each event names itself.
    let received: Vec<Received> = match json.get_mut("events").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(events)) if id.is_empty() => events
            .into_iter()
            .map(|e| Received {
                id: e["id"].as_str().unwrap_or_default().to_owned(),
                body: e,
            })
            .collect(),
        _ => vec![Received { id, body: json }],
    };
    shared.accepted.lock().extend(received);
    shared.delivered.fetch_add(1, Ordering::Relaxed);
    shared.changed.notify_waiters();
    status(200)
}

fn status(code: u16) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r
}
