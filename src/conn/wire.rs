//! What a `Socket` reads and writes: a TCP connection, or one HTTP/2 stream. A stream's
//! HTTP/1.1 side is a client like any other (its request is read, routed and proxied by
//! the HTTP/1 code); its bytes go through a `StreamIo` that it shares with its HTTP/2
//! connection, which turns frames into that request and the answer into frames.
//!
//! Both ends live in the one loop thread, so the sharing is an `Rc<RefCell<..>>`; a write
//! or a close on the stream's side puts its connection on the loop's `Woken` list, since
//! the code that writes (the exchange's pump, an error answer) knows nothing of HTTP/2.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::replay::Replay;
use crate::buffer::Buffer;

/// The most answer bytes a stream's client side may write before its connection has
/// framed them: the exchange stops reading from its backend until they are sent.
pub const ANSWER_ROOM: usize = 32 * 1024;

/// HTTP/2 connections (slab key and serial) with something to do for a stream.
pub type Woken = Rc<RefCell<Vec<(usize, u32)>>>;

pub enum Wire {
    Tcp(TcpStream),
    Stream(StreamEnd),
}

/// One stream's bytes between its HTTP/2 connection and its HTTP/1.1 client side.
pub struct StreamIo {
    /// The request as HTTP/1.1 (head, then body in the framing the head names), for the
    /// client side to read; `request_read` of it has been.
    pub request: Vec<u8>,
    pub request_read: usize,
    /// The request ends with what `request` holds.
    pub request_ended: bool,
    /// Body bytes the client side has read and the connection has not yet given back to
    /// the peer as window.
    pub credit: usize,
    /// Body bytes in `request` not yet read (framing excluded): what `credit` may grow by.
    pub body_unread: usize,
    /// The answer as the HTTP/1 code writes it, until the connection frames it.
    pub answer: Vec<u8>,
    /// The client side shut its write side: the answer ends with what `answer` holds.
    pub answer_ended: bool,
    /// The client side is gone (closed by the HTTP/1 code).
    pub closed: bool,
    /// The connection reset the stream: reads and writes fail from now on.
    pub reset: bool,
    /// The client side gave up on its answer (a gRPC call's deadline passed): the
    /// connection resets the stream with CANCEL, dropping what is left unsent.
    pub cancelled: bool,
    /// A backend stream's request as it went out, should the server refuse the stream.
    pub replay: Replay,
    /// The connection's slab key and serial, and the list it is woken through.
    parent: (usize, u32),
    woken: Woken,
    /// Whether the connection is already on `woken` for this stream's news.
    pub parent_woken: bool,
    /// Where the client connected, for PROXY headers and X-Forwarded-*.
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub tls: bool,
}

impl StreamIo {
    pub fn new(parent: (usize, u32), woken: Woken, addrs: (SocketAddr, SocketAddr)) -> Self {
        StreamIo {
            request: Vec::new(),
            request_read: 0,
            request_ended: false,
            credit: 0,
            body_unread: 0,
            answer: Vec::new(),
            answer_ended: false,
            closed: false,
            reset: false,
            cancelled: false,
            replay: Replay::default(),
            parent,
            woken,
            parent_woken: false,
            local: addrs.0,
            peer: addrs.1,
            tls: false,
        }
    }

    /// Makes it ready for another stream of the same connection, keeping its capacity.
    pub fn recycle(&mut self) {
        self.request.clear();
        self.request_read = 0;
        self.request_ended = false;
        self.credit = 0;
        self.body_unread = 0;
        self.answer.clear();
        self.answer_ended = false;
        self.closed = false;
        self.reset = false;
        self.cancelled = false;
        self.replay.clear();
        self.parent_woken = false;
    }

    /// The first `n` bytes of `answer` were framed: a backend stream's request bytes, kept
    /// for a refusal.
    pub fn answer_sent(&mut self, n: usize) {
        let n = n.min(self.answer.len());
        self.replay.sent(&self.answer[..n]);
        self.answer.drain(..n);
    }

    /// Request bytes still to be read.
    pub fn request_pending(&self) -> usize {
        self.request.len().saturating_sub(self.request_read)
    }

    fn wake_parent(&mut self) {
        if !self.parent_woken {
            self.parent_woken = true;
            self.woken.borrow_mut().push(self.parent);
        }
    }
}

/// The client side's handle on its stream.
pub struct StreamEnd(pub Rc<RefCell<StreamIo>>);

impl Drop for StreamEnd {
    fn drop(&mut self) {
        let mut io = self.0.borrow_mut();
        // A close ends the answer: one framed by the close is whole, one cut short the
        // connection sees as such.
        io.closed = true;
        io.answer_ended = true;
        io.wake_parent();
    }
}

impl Read for StreamEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut io = self.0.borrow_mut();
        if io.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let start = io.request_read;
        let pending = io.request.get(start..).unwrap_or_default();
        if pending.is_empty() {
            return match io.request_ended {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        io.request_read += n;
        if io.request_read == io.request.len() {
            io.request.clear();
            io.request_read = 0;
        }
        // Framing bytes are few: counting them as body gives back a little early.
        let body = n.min(io.body_unread);
        if body > 0 {
            io.body_unread -= body;
            io.credit += body;
            io.wake_parent();
        }
        Ok(n)
    }
}

impl Write for StreamEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut io = self.0.borrow_mut();
        if io.reset || io.answer_ended {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let n = ANSWER_ROOM.saturating_sub(io.answer.len()).min(buf.len());
        if n == 0 {
            return match buf.is_empty() {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        io.answer.extend_from_slice(&buf[..n]);
        io.wake_parent();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Wire {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Wire::Tcp(s) => s.local_addr(),
            Wire::Stream(s) => Ok(s.0.borrow().local),
        }
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Wire::Tcp(s) => s.peer_addr(),
            Wire::Stream(s) => Ok(s.0.borrow().peer),
        }
    }

    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Wire::Tcp(s) => s.take_error(),
            Wire::Stream(_) => Ok(None),
        }
    }

    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.set_nodelay(on),
            Wire::Stream(_) => Ok(()),
        }
    }

    /// The TCP connection, if this is one (TLS and the TCP relay need the socket itself).
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Wire::Tcp(s) => Some(s),
            Wire::Stream(_) => None,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Wire::Stream(_))
    }

    /// An HTTP/2 stream of a TLS connection.
    pub fn stream_over_tls(&self) -> bool {
        match self {
            Wire::Tcp(_) => false,
            Wire::Stream(s) => s.0.borrow().tls,
        }
    }

    /// Ends the write side: a TCP FIN, or the end of a stream's answer.
    pub fn shutdown_write(&mut self) {
        match self {
            Wire::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Wire::Stream(s) => {
                let mut io = s.0.borrow_mut();
                io.answer_ended = true;
                io.wake_parent();
            }
        }
    }

    /// A backend stream its server refused before answering, while lb held its whole
    /// request: that request, what went out and then what waited, pushed onto `out`.
    /// False, with `out` as it was, otherwise.
    pub fn refused_request(&self, out: &mut Buffer) -> bool {
        match self {
            Wire::Tcp(_) => false,
            Wire::Stream(s) => {
                let io = s.0.borrow();
                io.replay.copy_into(&io.answer, out)
            }
        }
    }

    /// A backend stream its server refused before answering (whether or not lb held its
    /// whole request): it processed none of it.
    pub fn refused(&self) -> bool {
        match self {
            Wire::Tcp(_) => false,
            Wire::Stream(s) => s.0.borrow().replay.refused(),
        }
    }

    /// Gives up on the answer under way, as a proxy ends a gRPC call past its deadline:
    /// a stream is reset with CANCEL. A TCP connection has no such signal: the caller
    /// closes it.
    pub fn cancel(&mut self) {
        if let Wire::Stream(s) = self {
            let mut io = s.0.borrow_mut();
            io.cancelled = true;
            io.wake_parent();
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.read(buf),
            Wire::Stream(s) => s.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Tcp(s) => s.write(buf),
            Wire::Stream(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.flush(),
            Wire::Stream(_) => Ok(()),
        }
    }
}

/// A stream is never registered: its connection's socket is, and its news comes through
/// `Woken`.
impl Source for Wire {
    fn register(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.register(r, token, interest),
            Wire::Stream(_) => Ok(()),
        }
    }

    fn reregister(&mut self, r: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.reregister(r, token, interest),
            Wire::Stream(_) => Ok(()),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Wire::Tcp(s) => s.deregister(r),
            Wire::Stream(_) => Ok(()),
        }
    }
}
