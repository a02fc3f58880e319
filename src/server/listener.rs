//! The listener's side of serving: binding, and each accepted connection admitted (counted
//! toward the caps) and served by hyper's HTTP/1 with the head timer ([`super::head_timer`]),
//! or refused at accept with a canned answer when over a cap.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::head_timer::{HeadTimer, MAX_HEAD_BYTES, Watch, Watched};
use crate::admission::{Admission, Refusal};
use crate::hub::Hub;
use crate::metrics as m;

/// Accept-queue length asked of the OS (capped by `net.core.somaxconn`). tokio's default of
/// 1,024 overflowed when 10,000 viewers arrived at once; an overflow costs a viewer a 1 s SYN
/// retransmit.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// How long the accept loop waits after an accept error other than a failed handshake (the
/// process is out of file descriptors, typically).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections being refused at once (each is answered after its request head, and lingers
/// briefly so the answer is read); past this a refused connection is closed unanswered.
const MAX_REFUSING: usize = 256;

/// How long a refused connection may take to send its request and receive the answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Binds the hub's listener with address reuse (a restart binds at once) and a long accept
/// queue for show-start surges.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What every accepted connection is served with.
pub(super) struct Serving {
    app: Router,
    admission: Arc<Admission>,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Every connection task (and refusal) still running.
    connections: TaskTracker,
    /// Shutdown, phase two: finish the request in flight, then close.
    closing: CancellationToken,
    /// The grace is over: drop what is still open.
    dropping: CancellationToken,
    refusing: Arc<AtomicUsize>,
    /// `server.socket_send_buffer`: 0 leaves the kernel's.
    send_buffer: u32,
}

impl Serving {
    pub(super) fn new(app: Router, hub: &Arc<Hub>) -> Self {
        let s = &hub.config().server;
        let admission = Admission::new(hub.config());
        tracing::info!(
            max_connections = admission.cap(),
            "connection cap (server.max_connections)"
        );
        Serving {
            app,
            admission,
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_connection_ms),
            connections: TaskTracker::new(),
            closing: CancellationToken::new(),
            dropping: CancellationToken::new(),
            refusing: Arc::new(AtomicUsize::new(0)),
            send_buffer: s.socket_send_buffer,
        }
    }

    /// Accepts connections on `listener` until `shutdown` resolves, then drops the listener.
    pub(super) async fn accept_until(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => self.accept(tcp, peer),
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close rather than
                    // spin.
                    tracing::error!(error = %e, "accept failed");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            }
        }
    }

    /// Shutdown's phase two: viewers get 1001, HTTP connections finish the request in flight
    /// and close; whatever is still open when `grace` ends is dropped.
    pub(super) async fn close(&self, hub: &Hub, grace: Duration) {
        tracing::info!("shutting down: closing viewers with 1001");
        hub.shutdown_token().cancel();
        self.closing.cancel();
        self.connections.close();
        hub.tracker().close();
        let drained = async {
            self.connections.wait().await;
            hub.tracker().wait().await;
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!("shutdown grace elapsed with connections still open");
        }
        self.dropping.cancel();
        self.connections.wait().await;
    }

    /// Admits and serves a connection just accepted, or refuses it.
    pub(super) fn accept(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        if self.send_buffer > 0 {
            // Best effort, like nodelay: a refused size leaves the kernel's.
            let _ = socket2::SockRef::from(&tcp).set_send_buffer_size(self.send_buffer as usize);
        }
        let ticket = match self.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => return self.refuse(tcp, peer, refusal),
        };
        let watch = Arc::new(Watch::default());
        let io = TokioIo::new(Watched {
            io: tcp,
            watch: Arc::clone(&watch),
        });
        let app = TowerToHyperService::new(self.app.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // The WebSocket handler keeps its ticket for the session: an upgraded connection
            // stays counted after hyper lets go of it.
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(ticket.clone());
            app.call(req)
        });
        let mut http = http1::Builder::new();
        http.timer(HeadTimer::new(
            Arc::clone(&watch),
            self.header_timeout,
            self.idle_timeout,
        ))
        .header_read_timeout(self.header_timeout)
        // A request head (and what is read ahead of it) may hold about this much (hyper checks
        // between reads): a half-open connection costs at most that, not hyper's default of
        // about 400 KB; a bigger head gets 431.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
        let conn = http.serve_connection(io, service).with_upgrades();
        let (closing, dropping) = (self.closing.clone(), self.dropping.clone());
        self.connections.spawn(async move {
            let mut conn = pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                _ = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        served = conn.as_mut() => served,
                        _ = dropping.cancelled() => return,
                    }
                }
            };
            match served {
                Ok(()) => {}
                Err(e) if e.is_timeout() && watch.idle_expired.load(Ordering::Relaxed) => {
                    tracing::trace!(%peer, "idle keep-alive connection closed");
                }
                Err(e) if e.is_timeout() => {
                    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => "timeout").increment(1);
                    tracing::debug!(%peer, "request head not received in time; closed");
                }
                Err(e) => tracing::debug!(%peer, error = %e, "connection failed"),
            }
        });
    }

    /// Answers an over-cap connection and closes it, without hyper or the router: a 503 when
    /// the hub is full, a 429 when the client is over its share. The request head is read
    /// first (clients may take an answer that comes before their request for a broken
    /// connection), then what follows is drained briefly so the answer is not lost to a reset.
    /// All of it within [`REFUSAL_LINGER`], and at most [`MAX_REFUSING`] at once: past that a
    /// refused connection is closed unanswered.
    fn refuse(&self, mut tcp: TcpStream, peer: SocketAddr, refusal: Refusal) {
        metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => refusal.reason()).increment(1);
        tracing::debug!(%peer, reason = refusal.reason(), "connection refused");
        if self.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let refusing = Arc::clone(&self.refusing);
        self.connections.spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_LINGER, answer_refused(&mut tcp, refusal)).await;
            refusing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Most bytes a refused connection's request may take before it is answered anyway.
const REFUSED_HEAD_BYTES: usize = 16 * 1024;

async fn answer_refused(tcp: &mut TcpStream, refusal: Refusal) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REFUSED_HEAD_BYTES {
        match tcp.read(&mut chunk).await? {
            0 => return Ok(()),
            n => head.extend_from_slice(&chunk[..n]),
        }
    }
    tcp.write_all(&refusal_answer(refusal)).await?;
    tcp.shutdown().await?;
    let mut drained = 0;
    while drained < 64 * 1024 {
        match tcp.read(&mut chunk).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

/// The whole HTTP response refusing a connection: the protocol's error JSON.
fn refusal_answer(refusal: Refusal) -> Vec<u8> {
    let e = refusal.error();
    let code = e.code();
    metrics::counter!(m::ERRORS, "code" => code.as_str()).increment(1);
    let body = serde_json::json!({"error": {"code": code, "message": e.to_string()}}).to_string();
    let status = code.http_status();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}
