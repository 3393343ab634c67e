//! Connections: a cap on how many are open at once. With the header-read
//! timeout (hyper) and the body timeout (tower-http), set up in
//! [`crate::serve_listener`], a client that opens connections and trickles
//! bytes cannot hold the server's sockets or tasks for long.
//!
//! The cap is a semaphore taken when a connection is accepted, before a TLS
//! handshake, and given back when the connection closes; a connection over
//! the cap is closed at once (nothing is queued).
//!
//! hyper's header-read timeout starts only once hyper-util has seen enough
//! bytes to tell HTTP/1 from an HTTP/2 preface (up to 24); until then it
//! waits for a silent client without limit. So the same timeout also runs
//! from the accept until the client has sent [`PREFACE_LEN`] bytes: a
//! client is closed at the latest twice the timeout after connecting.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Length of the HTTP/2 connection preface hyper-util looks for.
pub const PREFACE_LEN: usize = 24;

/// An [`Accept`] that lets at most `limit` connections be open (0 = no cap)
/// and otherwise hands the stream to `inner` (plain or TLS).
#[derive(Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    slots: Option<Arc<Semaphore>>,
    first_bytes: Duration,
}

impl<A> LimitAcceptor<A> {
    /// At most `limit` open connections (0 = no cap); each must send its
    /// first [`PREFACE_LEN`] bytes within `first_bytes` of the accept.
    #[must_use]
    pub fn new(inner: A, limit: usize, first_bytes: Duration) -> Self {
        Self {
            inner,
            slots: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            first_bytes,
        }
    }
}

impl<A, I, S> Accept<I, S> for LimitAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = match &self.slots {
            None => None,
            Some(slots) => match Arc::clone(slots).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::warn!("connection limit reached: closing a new connection");
                    // Dropping `stream` closes the socket.
                    return Box::pin(std::future::ready(Err(io::Error::other(
                        "too many open connections",
                    ))));
                }
            },
        };
        let early = Box::pin(tokio::time::sleep_until(Instant::now() + self.first_bytes));
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = inner.await?;
            Ok((
                Limited {
                    stream,
                    early: Some(early),
                    seen: 0,
                    _permit: permit,
                },
                service,
            ))
        })
    }
}

/// A stream that holds one connection slot until it is dropped, and fails
/// its reads once the first bytes are overdue.
pub struct Limited<T> {
    stream: T,
    /// Until [`PREFACE_LEN`] bytes came in: when they are overdue.
    early: Option<Pin<Box<Sleep>>>,
    seen: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.seen += buf.filled().len() - before;
                if this.seen >= PREFACE_LEN {
                    this.early = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let overdue = this
                    .early
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if overdue {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent no request in time",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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
}
