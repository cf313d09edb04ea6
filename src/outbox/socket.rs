//! The socket under hyper and tungstenite, shared with the connection's outbox.
//!
//! hyper needs to own an IO object, and after the upgrade tungstenite owns it; yet the hub
//! wants to write broadcast frames straight to the socket, without waking the connection's
//! task. [`CableIo`] keeps the `TcpStream` in an `Arc` and uses tokio's `&self` socket calls,
//! so the same socket can be written by [`ConnHandle::push`].
//! Once a connection is attached (at the upgrade), everything hyper and tungstenite write
//! (the 101, pongs, close frames) goes through the connection's outbox too, so all writes
//! of a connection are ordered in one place. Reads are untouched.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ConnHandle, Pushed};
use crate::stats::Stats;

/// Where a connection attaches its outbox once upgraded.
type Attachment = Arc<OnceLock<Arc<ConnHandle>>>;

/// The IO object handed to hyper for one TCP connection.
#[derive(Debug)]
pub struct CableIo {
    tcp: Arc<TcpStream>,
    attached: Attachment,
}

/// The rest of an accepted socket, kept beside hyper for the upgrade: the socket itself and
/// the place where [`CableIo`] looks for the connection's outbox.
#[derive(Debug, Clone)]
pub struct SharedSocket {
    tcp: Arc<TcpStream>,
    attached: Attachment,
}

impl CableIo {
    /// Wraps an accepted socket; the [`SharedSocket`] is what the upgrade attaches to.
    pub fn new(tcp: TcpStream) -> (CableIo, SharedSocket) {
        let tcp = Arc::new(tcp);
        let attached: Attachment = Arc::new(OnceLock::new());
        let io = CableIo {
            tcp: tcp.clone(),
            attached: attached.clone(),
        };
        (io, SharedSocket { tcp, attached })
    }
}

impl SharedSocket {
    /// Gives the upgraded connection its outbox on this socket (queue bound `limit` bytes,
    /// direct writes counted in `stats`) and routes every later write of hyper and tungstenite
    /// through it, so all of the connection's bytes are ordered in one place. Returns the
    /// outbox and the write side for the connection's task; `None` if a connection is already
    /// attached (a second upgrade on one socket).
    pub fn attach(
        &self,
        id: u64,
        limit: usize,
        stats: Arc<Stats>,
    ) -> Option<(Arc<ConnHandle>, SocketWriter)> {
        let conn = Arc::new(ConnHandle::new(id, limit, Some(self.tcp.clone())).counted(stats));
        self.attached.set(conn.clone()).ok()?;
        Some((conn, SocketWriter(self.tcp.clone())))
    }
}

impl AsyncRead for CableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale; try_read cleared it, so the next poll registers.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for CableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(conn) = self.attached.get() {
            // Ordered with every other write of this connection; bounded by its outbox.
            return match conn.push_control(&Bytes::copy_from_slice(buf)) {
                Pushed::Refused => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        SocketWriter::poll_write_on(&self.tcp, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // No user-space buffer here; attached connections are flushed by their task.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The socket closes when the last owner drops it.
        Poll::Ready(Ok(()))
    }
}

/// The write side of a shared socket, for the connection's task.
#[derive(Debug, Clone)]
pub struct SocketWriter(Arc<TcpStream>);

impl SocketWriter {
    fn poll_write_on(tcp: &TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Self::poll_when_writable(tcp, cx, |tcp| tcp.try_write(buf))
    }

    /// Waits for writability and tries `write`; stale readiness is cleared by the failed
    /// attempt, so the loop registers for the next real one.
    fn poll_when_writable(
        tcp: &TcpStream,
        cx: &mut Context<'_>,
        write: impl Fn(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(tcp.poll_write_ready(cx))?;
            match write(tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

impl AsyncWrite for SocketWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        SocketWriter::poll_write_on(&self.0, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        SocketWriter::poll_when_writable(&self.0, cx, |tcp| tcp.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
