//! The API listener with limits an exposed server needs (OWASP API4):
//!
//! - a connection that has not sent a whole request head within
//!   `server.headerReadTimeoutSeconds` of starting one (or of being
//!   accepted) is closed, so clients that stop half-way through their
//!   headers cannot hold file descriptors;
//! - a keep-alive connection idle for `server.idleTimeoutSeconds` is closed;
//! - at most `server.maxConnections` connections are served at once: past
//!   that, the next one is accepted only when one closes (it waits in the
//!   kernel's backlog meanwhile), so a flood never exhausts the process.
//!
//! hyper's own `header_read_timeout` starts when a connection waits for a
//! head, idle or not, so it cannot tell an idle keep-alive connection from
//! a stalled head; each connection here has a small clock instead: the
//! socket notes the first byte of a head, the service the start and end of
//! each request.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::http::HttpService;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use futures_util::future::Either;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use dbapi_crds::config::ServerSettings;

use crate::http::request_line::RequestLine;

/// Serves `router` on `listener` until `stop` turns true, then lets the
/// connections finish their requests (idle ones close at once) and
/// returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    router: HttpService,
    settings: &ServerSettings,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let limits = Limits {
        header_read: Duration::from_secs(settings.header_read_timeout_seconds.max(1)),
        idle: Duration::from_secs(settings.idle_timeout_seconds.max(1)),
    };
    let max = settings.max_connections.max(1) as usize;
    let permits = Arc::new(Semaphore::new(max));
    let mut warned_full = false;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !warned_full {
                    tracing::warn!(max, "server.maxConnections reached; new connections wait until one closes");
                    warned_full = true;
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little and go on.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        if permits.available_permits() > 0 {
            warned_full = false;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, peer, router.clone(), limits, stop.clone(), permit));
    }
    drop(listener);
    // Every connection holds a permit until it has closed.
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

#[derive(Clone, Copy)]
struct Limits {
    header_read: Duration,
    idle: Duration,
}

/// Where a connection is between requests.
#[derive(Clone, Copy)]
enum Phase {
    /// Waiting for the first byte of a request head, since then.
    Idle(Instant),
    /// Reading a request head that started (or a connection accepted) then.
    Head(Instant),
    /// Serving this many requests (the head was read).
    Busy(usize),
}

struct Clock {
    phase: Mutex<Phase>,
}

impl Clock {
    fn set(&self, update: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *phase = update(*phase);
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: HttpService,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // A connection that sends nothing is one that has not sent its head.
    let clock = Arc::new(Clock { phase: Mutex::new(Phase::Head(Instant::now())) });
    let io = TokioIo::new(Watched { stream, clock: clock.clone(), line: RequestLine::new(), pending: Vec::new() });
    // The connection's own handle on the API, called in place while it is
    // ready (its layers always are): a clone per request would copy the
    // whole stack of boxed layers, layer by layer (bench/README.md).
    let router = RefCell::new(router);
    let service = {
        let clock = clock.clone();
        hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
            clock.set(|p| Phase::Busy(if let Phase::Busy(n) = p { n + 1 } else { 1 }));
            let busy = Busy(clock.clone());
            // The peer address, as axum's `ConnectInfo` (the rate limit's
            // client IP).
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = {
                let mut router = router.borrow_mut();
                match router.poll_ready(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(Ok(())) => Either::Left(router.call(request)),
                    _ => Either::Right(router.clone().oneshot(request)),
                }
            };
            async move {
                let response = answer.await?;
                // The request counts as running until its body is sent.
                Ok::<_, std::convert::Infallible>(response.map(|body| Body::new(Guarded { body, _busy: busy })))
            }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(conn);
    // One timer per connection, moved when the phase's deadline does.
    let timer = tokio::time::sleep(limits.header_read);
    tokio::pin!(timer);
    let mut armed = None;
    let stop = stop.wait_for(|s| *s);
    tokio::pin!(stop);
    let mut stopping = false;
    let ended = std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Ok(result));
            }
            if !stopping && stop.as_mut().poll(cx).is_ready() {
                stopping = true;
                conn.as_mut().graceful_shutdown();
                continue;
            }
            // The phase moves only while `conn` runs (the socket, the
            // requests and their bodies are all polled in it), so the
            // deadline is looked at after each of its turns: no wake-up of
            // this task per change, which cost two extra turns of the whole
            // connection per request.
            let Some((at, why)) = due(clock.phase(), limits) else { return Poll::Pending };
            if armed != Some(at) {
                timer.as_mut().reset(at);
                armed = Some(at);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= at {
                return Poll::Ready(Err(why));
            }
            armed = None;
        }
    });
    match ended.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        Err(why) => tracing::debug!(reason = why, "closing a connection"),
    }
}

/// When a connection in `phase` is to be closed, and why; never while it
/// serves a request.
fn due(phase: Phase, limits: Limits) -> Option<(Instant, &'static str)> {
    match phase {
        Phase::Idle(since) => Some((since + limits.idle, "idle")),
        Phase::Head(since) => Some((since + limits.header_read, "request head not received in time")),
        Phase::Busy(_) => None,
    }
}

/// Ends a request's busy phase when dropped (with its response body).
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body that holds its request's [`Busy`] until it is dropped.
struct Guarded {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting when an idle connection starts sending a head, and
/// passing each head's request line through [`RequestLine`] (`"`, `<`, `>`
/// in a URL, as curl sends them). A head is known to start at accept and
/// when bytes arrive on an idle connection; a request pipelined behind
/// another is passed as it is.
struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
    line: RequestLine,
    /// Encoded bytes that did not fit the reader's buffer yet.
    pending: Vec<u8>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let n = this.pending.len().min(buf.remaining());
            buf.put_slice(&this.pending[..n]);
            this.pending.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let idle = matches!(this.clock.phase(), Phase::Idle(_));
            if idle {
                this.clock.set(|p| if let Phase::Idle(_) = p { Phase::Head(Instant::now()) } else { p });
                this.line = RequestLine::new();
            }
            if !this.line.is_done()
                && let Some(encoded) = this.line.encode(&buf.filled()[before..])
            {
                buf.set_filled(before);
                let n = encoded.len().min(buf.remaining());
                buf.put_slice(&encoded[..n]);
                this.pending.extend_from_slice(&encoded[n..]);
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
