//! A request head's deadline on each HTTP/1 connection, through hyper's timer: the head of a
//! new connection must arrive within `server.header_timeout_ms` (slow-loris guard), and a
//! keep-alive connection waits at most `server.idle_connection_ms` for its next request. The
//! hyper behaviour this relies on is pinned by this module's tests.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the timer of one connection knows of its socket.
#[derive(Default)]
pub(super) struct Watch {
    /// Bytes read from the socket so far.
    pub(super) read: AtomicU64,
    /// The connection was closed because it sat idle between requests (not a refusal).
    pub(super) idle_expired: AtomicBool,
}

/// A connection's socket, counting the bytes read from it.
pub(super) struct Watched {
    pub(super) io: TcpStream,
    pub(super) watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.watch.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The most a connection's request head may take (hyper's read buffer), in bytes: room for a
/// long `?token=` and cookies, far below hyper's default.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper's timer for one connection. hyper uses it only for its header read timeout, which
/// runs whenever the connection waits for a request head: from accept, and on keep-alive from
/// the end of one response to the next request's head. The first wait gets the header timeout
/// (a new connection must send its request promptly); a keep-alive wait gets the idle timeout
/// until the next request's first byte arrives, and from then the header timeout.
pub(super) struct HeadTimer {
    watch: Arc<Watch>,
    header: Duration,
    idle: Duration,
    waited: AtomicBool,
}

impl HeadTimer {
    pub(super) fn new(watch: Arc<Watch>, header: Duration, idle: Duration) -> Self {
        HeadTimer {
            watch,
            header,
            idle,
            waited: AtomicBool::new(false),
        }
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep::until(Instant::now() + duration, None))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        if !self.waited.swap(true, Ordering::Relaxed) {
            return Box::pin(HeadSleep::until(deadline, None));
        }
        let idle = IdleWait {
            watch: Arc::clone(&self.watch),
            read_before: self.watch.read.load(Ordering::Relaxed),
            header: self.header,
        };
        Box::pin(HeadSleep::until(Instant::now() + self.idle, Some(idle)))
    }
}

/// A keep-alive wait for the next request, until its first byte.
struct IdleWait {
    watch: Arc<Watch>,
    read_before: u64,
    header: Duration,
}

/// One wait of [`HeadTimer`].
struct HeadSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    idle: Option<IdleWait>,
}

impl HeadSleep {
    fn until(deadline: Instant, idle: Option<IdleWait>) -> Self {
        HeadSleep {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            idle,
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // hyper polls this after every read that left the head incomplete, so the first byte
        // of the next request is seen here as it arrives.
        if let Some(idle) = &this.idle
            && idle.watch.read.load(Ordering::Relaxed) != idle.read_before
        {
            let deadline = Instant::now() + idle.header;
            this.sleep.as_mut().reset(deadline.into());
            this.idle = None;
        }
        let polled = this.sleep.as_mut().poll(cx);
        if polled.is_ready()
            && let Some(idle) = &this.idle
        {
            idle.watch.idle_expired.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
    //! hyper 1's HTTP/1 server, configured as the listener does (a timer and a header read
    //! timeout, keep-alive), asks its timer for one `sleep_until` per wait for a request head
    //! (at accept, then after each response) and never for `sleep`, and polls that sleep after
    //! each read that left the head incomplete. [`HeadTimer`] counts on all three; an upgrade of
    //! hyper that changes them fails here, not in production.

    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::Notify;

    use super::*;

    #[derive(Default)]
    struct Seen {
        sleeps: AtomicUsize,
        sleep_untils: AtomicUsize,
        polls: AtomicUsize,
        changed: Notify,
    }

    impl Seen {
        fn bump(&self, n: &AtomicUsize) {
            n.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_waiters();
        }

        /// Waits (at most 10 s) until `what` holds.
        async fn until(&self, what: impl Fn(&Seen) -> bool) {
            let wait = async {
                loop {
                    let changed = self.changed.notified();
                    if what(self) {
                        return;
                    }
                    changed.await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), wait)
                .await
                .expect("hyper did not do what the head timer counts on");
        }
    }

    #[derive(Clone)]
    struct Recording(Arc<Seen>);

    struct RecordedSleep {
        seen: Arc<Seen>,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl Future for RecordedSleep {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let seen = Arc::clone(&self.seen);
            seen.bump(&seen.polls);
            self.sleep.as_mut().poll(cx)
        }
    }

    impl hyper::rt::Sleep for RecordedSleep {}

    impl hyper::rt::Timer for Recording {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
            self.0.bump(&self.0.sleeps);
            self.sleep_until(Instant::now() + duration)
        }

        fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
            self.0.bump(&self.0.sleep_untils);
            Box::pin(RecordedSleep {
                seen: Arc::clone(&self.0),
                sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            })
        }
    }

    #[tokio::test]
    async fn hyper_times_each_wait_for_a_head_with_one_sleep_until_polled_after_each_read() {
        let seen = Arc::new(Seen::default());
        let (mut client, server) = tokio::io::duplex(4096);
        let mut http = http1::Builder::new();
        http.timer(Recording(Arc::clone(&seen)))
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true);
        let service = hyper::service::service_fn(|_req| async {
            Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let conn = tokio::spawn(http.serve_connection(TokioIo::new(server), service));

        seen.until(|s| s.sleep_untils.load(Ordering::SeqCst) == 1)
            .await;
        let polls = seen.polls.load(Ordering::SeqCst);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        seen.until(|s| s.polls.load(Ordering::SeqCst) > polls).await;
        assert_eq!(
            seen.sleep_untils.load(Ordering::SeqCst),
            1,
            "one wait, one sleep"
        );

        client.write_all(b"Host: x\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        while !answer.ends_with(b"ok") {
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before answering");
            answer.extend_from_slice(&chunk[..n]);
        }
        seen.until(|s| s.sleep_untils.load(Ordering::SeqCst) == 2)
            .await;
        assert_eq!(seen.sleeps.load(Ordering::SeqCst), 0, "never `sleep`");
        drop(client);
        let _ = conn.await;
    }
}
