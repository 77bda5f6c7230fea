//! The API's HTTP/1.1 listener, bounded: a connection cap, a header-read timeout and an idle
//! timeout, so that idle or slow clients cannot exhaust the server's file descriptors (before,
//! `axum::serve` held 1,000 idle sockets forever, and at the open-file limit the API and
//! `/healthz` stopped answering).
//!
//! ```text
//!   accept ◄── permit (Semaphore of max_connections; at the cap new connections wait in the
//!     │        kernel's backlog, existing ones keep being served)
//!     ▼
//!   hyper http1 connection (header_read_timeout: from the first byte wanted of a request head,
//!     │                     also between keep-alive requests)
//!     │ ActivityIo: every read/write moves `last`
//!     ▼
//!   watchdog: no byte either way for idle_timeout → the connection is dropped
//! ```
//!
//! Shutdown: stop accepting, ask every connection to finish its request in flight
//! (`graceful_shutdown`), and wait until all are gone (all permits back).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The listener's limits (`[server]`: `header_read_timeout_s`, `idle_timeout_s`,
/// `max_connections`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must arrive within this (counted from when the server waits for it).
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 512,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` is cancelled, then drains.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let cap = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(cap as usize));
    let connections_stop = CancellationToken::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // EMFILE and friends: the connection stays in the backlog; retry shortly.
                    tracing::warn!(%error, "API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!("l2pop_api_connections").increment(1.0);
        let service = TowerToHyperService::new(router.clone());
        let stop = connections_stop.clone();
        tokio::spawn(async move {
            let activity = Activity::new();
            let io = TokioIo::new(ActivityIo {
                inner: stream,
                activity: activity.clone(),
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = activity.idle_for(limits.idle_timeout) => {
                    tracing::debug!("API: idle connection closed");
                }
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = activity.idle_for(limits.idle_timeout) => {}
                    }
                }
            }
            metrics::gauge!("l2pop_api_connections").decrement(1.0);
            drop(permit);
        });
    }
    connections_stop.cancel();
    // Every connection gives its permit back when it is gone.
    let _ = permits.acquire_many(cap).await;
    Ok(())
}

/// When the connection last moved a byte, in milliseconds since `start`.
#[derive(Clone, Debug)]
struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A stream that records its activity.
#[derive(Debug)]
struct ActivityIo<T> {
    inner: T,
    activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for ActivityIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ActivityIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
