//! One TLS session over a non-blocking socket, driven by the caller's readiness flags:
//! ciphertext goes between the socket and rustls, plaintext between rustls and the
//! caller's pooled buffers. rustls is sans-IO, so this is the only place that moves
//! its bytes; `conn::Socket` calls it where a plain socket would read or write.
//!
//! What an idle session keeps is rustls' own state and its 4 KiB receive buffer: the
//! plaintext waits in the pooled buffers, which go back to the pool when empty, and
//! ciphertext waits in rustls only while the socket is full.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use log::{debug, warn};
use mio::net::TcpStream;
use rustls::{Connection, HandshakeKind};

use super::stats::{self, HandshakeFailure};
use crate::buffer::{Buffer, Io};
use crate::conn::{Filled, PeerGone};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing received yet (a server session first checks that it is TLS at all).
    Fresh,
    Handshaking,
    Open,
    /// The client spoke plain HTTP: it was answered with a plaintext 400, and what it
    /// still sends is read and dropped until it closes.
    RefusedPlaintext,
    Failed,
}

pub struct TlsSession {
    conn: Connection,
    phase: Phase,
    /// rustls holds decrypted bytes that a full buffer could not take yet.
    plaintext_waiting: bool,
}

/// The answer to plain HTTP on a TLS port, as nginx gives one: short, plain, then close.
const PLAINTEXT_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 62\r\nConnection: close\r\n\r\n\
This port speaks HTTPS: the request was plain HTTP. Use https\n";

impl TlsSession {
    pub fn new(conn: Connection) -> Self {
        TlsSession {
            conn,
            phase: Phase::Fresh,
            plaintext_waiting: false,
        }
    }

    fn is_server(&self) -> bool {
        matches!(self.conn, Connection::Server(_))
    }

    /// Ciphertext waiting in rustls for the socket to take it.
    pub fn pending_out(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether a read may find something: the socket is readable, or rustls holds
    /// plaintext that an earlier, full buffer could not take.
    pub fn may_read(&self, readable: bool) -> bool {
        readable || self.plaintext_waiting
    }

    /// Reads plaintext into `buf`, reading and decrypting from `sock` as needed, until
    /// `buf` is full or the socket is drained. Handshake answers are written at once.
    /// `hung_up`: the peer's end of file or an error was reported, so a read that
    /// drains the socket must be followed by one more, which will say so.
    pub fn fill(
        &mut self,
        sock: &mut TcpStream,
        (readable, hung_up): (&mut bool, bool),
        writable: &mut bool,
        buf: &mut Buffer,
    ) -> Filled {
        if self.phase == Phase::Fresh && self.is_server() {
            match refuse_plaintext(sock, readable) {
                Ok(false) => {}
                Ok(true) => {
                    stats::failed(HandshakeFailure::PlaintextHttp);
                    self.phase = Phase::RefusedPlaintext;
                }
                Err(()) => return Filled::Nothing,
            }
        }
        if self.phase == Phase::RefusedPlaintext {
            return discard(sock, readable);
        }
        if self.flush_tls(sock, writable).is_err() {
            return self.lost();
        }
        let mut got = false;
        loop {
            if buf.room() == 0 {
                self.plaintext_waiting = true;
                break;
            }
            self.plaintext_waiting = false;
            match buf.read_from(&mut self.conn.reader()) {
                Io::Moved(_) => {
                    got = true;
                    continue;
                }
                // Ok(0) is a close_notify; UnexpectedEof a TCP close without one, which
                // many clients do and which HTTP framing already guards against.
                Io::Eof => return if got { Filled::Got } else { Filled::Eof },
                Io::Failed(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return if got { Filled::Got } else { Filled::Eof };
                }
                Io::Failed(_) => return Filled::Failed,
                Io::WouldBlock => {}
            }
            if !*readable {
                break;
            }
            let mut reader = Drained {
                sock,
                drained: false,
            };
            match self.conn.read_tls(&mut reader) {
                Ok(0) => {
                    if self.phase != Phase::Open {
                        self.fail_handshake(HandshakeFailure::Closed, "closed mid-handshake");
                        return Filled::Eof;
                    }
                }
                Ok(_) => {
                    // A short read drained the socket: epoll reports the next arrival as a
                    // new edge, so the read that would only say "nothing yet" is saved.
                    if reader.drained && !hung_up {
                        *readable = false;
                    }
                    if self.phase == Phase::Fresh {
                        self.phase = Phase::Handshaking;
                    }
                    if let Err(e) = self.conn.process_new_packets() {
                        // The alert rustls queued for the peer goes out if it can.
                        let _ = self.flush_tls(sock, writable);
                        self.fail_handshake(HandshakeFailure::of(&e), &e.to_string());
                        return Filled::Failed;
                    }
                    self.note_handshake_done();
                    if self.flush_tls(sock, writable).is_err() {
                        return self.lost();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.lost(),
            }
        }
        if got { Filled::Got } else { Filled::Nothing }
    }

    fn note_handshake_done(&mut self) {
        if self.phase == Phase::Handshaking && !self.conn.is_handshaking() {
            self.phase = Phase::Open;
            if self.is_server() {
                stats::completed(self.conn.handshake_kind() == Some(HandshakeKind::Resumed));
            }
        }
    }

    /// The connection broke (a reset, most often): mid-handshake that is a failure.
    fn lost(&mut self) -> Filled {
        if self.phase != Phase::Open {
            self.fail_handshake(HandshakeFailure::Closed, "connection lost mid-handshake");
        }
        Filled::Failed
    }

    fn fail_handshake(&mut self, why: HandshakeFailure, text: &str) {
        let was = self.phase;
        self.phase = Phase::Failed;
        match (self.is_server(), was) {
            (true, Phase::Handshaking) => {
                stats::failed(why);
                debug!("TLS handshake failed: {text}");
            }
            // A connect and close with no byte sent is a port check, not a failure.
            (true, _) => {}
            (false, Phase::Open) => debug!("TLS with a backend ended: {text}"),
            (false, _) => warn!("TLS handshake with a backend failed: {text}"),
        }
    }

    /// Encrypts as much of `data` as rustls takes while nothing older waits, and sends
    /// what can go now. Says how many plaintext bytes were taken.
    pub fn send(
        &mut self,
        sock: &mut TcpStream,
        writable: &mut bool,
        data: &[u8],
    ) -> Result<usize, PeerGone> {
        self.flush_tls(sock, writable)?;
        if !*writable || self.conn.wants_write() || data.is_empty() {
            return Ok(0);
        }
        let taken = self.conn.writer().write(data).map_err(|_| PeerGone)?;
        self.flush_tls(sock, writable)?;
        Ok(taken)
    }

    /// Writes queued ciphertext until rustls has none or the socket is full.
    pub fn flush_tls(&mut self, sock: &mut TcpStream, writable: &mut bool) -> Result<(), PeerGone> {
        while *writable && self.conn.wants_write() {
            match self.conn.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(PeerGone),
            }
        }
        Ok(())
    }

    /// Says goodbye with a close_notify, then ends the TCP write side.
    pub fn shutdown_write(&mut self, sock: &mut TcpStream, writable: &mut bool) {
        if matches!(self.phase, Phase::Open | Phase::Handshaking) {
            self.conn.send_close_notify();
            let _ = self.flush_tls(sock, writable);
        }
        let _ = sock.shutdown(Shutdown::Write);
    }

    /// The handshake never finished: neither completed nor failed when lb let go.
    fn unfinished(&self) -> bool {
        self.phase == Phase::Handshaking
    }

    /// The client chose HTTP/2 by ALPN.
    pub fn chose_h2(&self) -> bool {
        self.conn.alpn_protocol() == Some(b"h2")
    }

    /// Not open yet, and not refused or failed either.
    pub fn handshaking(&self) -> bool {
        matches!(self.phase, Phase::Fresh | Phase::Handshaking)
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        // Cut before it finished: --client-timeout, or lb stopping.
        if self.is_server() && self.unfinished() {
            stats::failed(HandshakeFailure::Unfinished);
        }
    }
}

/// Looks at the first byte a client sent: a TLS handshake record starts with 22; a letter
/// is the method of a plain HTTP request, which gets a plaintext 400 and a half-close.
/// `Err` while nothing has arrived yet.
/// The socket as rustls reads it, noting whether a read took less than it had room for.
struct Drained<'a> {
    sock: &'a mut TcpStream,
    drained: bool,
}

impl Read for Drained<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        self.drained = n < buf.len();
        Ok(n)
    }
}

fn refuse_plaintext(sock: &mut TcpStream, readable: &mut bool) -> Result<bool, ()> {
    let mut first = [0u8; 1];
    match sock.peek(&mut first) {
        Ok(1) if first[0].is_ascii_uppercase() => {
            // A fresh socket's send buffer takes these few bytes whole.
            let _ = sock.write(PLAINTEXT_REFUSAL);
            let _ = sock.shutdown(Shutdown::Write);
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *readable = false;
            Err(())
        }
        Err(_) => Ok(false),
    }
}

/// Reads and drops what a refused client still sends, so that closing does not reset
/// the connection before it read the answer; its end of file ends the connection.
fn discard(sock: &mut TcpStream, readable: &mut bool) -> Filled {
    let mut sink = [0u8; 4096];
    while *readable {
        match sock.read(&mut sink) {
            Ok(0) => return Filled::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Filled::Failed,
        }
    }
    Filled::Nothing
}
