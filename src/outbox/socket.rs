//! The socket under hyper and tungstenite, shared with the connection's outbox.
//!
//! hyper needs to own an IO object, and after the upgrade tungstenite owns it; yet the hub
//! wants to write broadcast frames straight to the socket, without waking the connection's
//! task. So the socket lives in the connection's outbox, made at the accept and shared through
//! an `Arc`, and [`CableIo`] uses tokio's `&self` socket calls on it, so the same socket can be
//! written by [`ConnHandle::push`].
//! Once a connection is attached (at the upgrade), everything hyper and tungstenite write
//! (the 101, pongs, close frames) goes through the connection's outbox too, so all writes
//! of a connection are ordered in one place. Reads are untouched.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ConnHandle, Pushed};
use crate::stats::Stats;

/// The IO object handed to hyper for one TCP connection.
#[derive(Debug)]
pub struct CableIo {
    conn: Arc<ConnHandle>,
}

/// The rest of an accepted socket, kept beside hyper for the upgrade: the connection's
/// outbox, which owns the socket and which [`CableIo`] routes writes through once attached.
#[derive(Debug, Clone)]
pub struct SharedSocket {
    conn: Arc<ConnHandle>,
}

impl CableIo {
    /// Wraps an accepted socket in the outbox of connection `id` (queue bound `limit` bytes,
    /// direct writes counted in `stats`); the [`SharedSocket`] is what the upgrade attaches
    /// to. Made at the accept, so the outbox lies next to tokio's registration of the socket
    /// (see [`ConnHandle`]); until attached it only passes hyper's writes through.
    pub fn new(
        tcp: TcpStream,
        id: u64,
        limit: usize,
        stats: Arc<Stats>,
    ) -> (CableIo, SharedSocket) {
        let conn = Arc::new(ConnHandle::new(id, limit, Some(tcp)).counted(stats));
        let io = CableIo { conn: conn.clone() };
        (io, SharedSocket { conn })
    }
}

impl SharedSocket {
    /// Hands the upgraded connection its outbox and routes every later write of hyper and
    /// tungstenite through it, so all of the connection's bytes are ordered in one place.
    /// Returns the outbox and the write side for the connection's task; `None` if a
    /// connection is already attached (a second upgrade on one socket).
    pub fn attach(&self) -> Option<(Arc<ConnHandle>, SocketWriter)> {
        if self.conn.attached.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some((self.conn.clone(), SocketWriter(self.conn.clone())))
    }

    /// The connection's number.
    pub fn id(&self) -> u64 {
        self.conn.id
    }
}

/// The socket of an outbox made by [`CableIo::new`] (which always has one).
fn tcp(conn: &ConnHandle) -> io::Result<&TcpStream> {
    conn.socket
        .as_ref()
        .ok_or_else(|| io::ErrorKind::NotConnected.into())
}

impl AsyncRead for CableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let tcp = tcp(&self.conn)?;
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            match tcp.try_read(buf.initialize_unfilled()) {
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
        if self.conn.attached.load(Ordering::Acquire) {
            // Ordered with every other write of this connection; bounded by its outbox.
            return match self.conn.push_control(&Bytes::copy_from_slice(buf)) {
                Pushed::Refused => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        SocketWriter::poll_write_on(tcp(&self.conn)?, cx, buf)
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
pub struct SocketWriter(Arc<ConnHandle>);

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
        SocketWriter::poll_write_on(tcp(&self.0)?, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        SocketWriter::poll_when_writable(tcp(&self.0)?, cx, |tcp| tcp.try_write_vectored(bufs))
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
