//! What every socket in the slab shares: readiness flags kept between edge-triggered
//! events, and reading and writing through pooled buffers. A socket is plain TCP or
//! TLS (`tls::TlsSession`) underneath; the connection code above it reads and writes
//! plaintext the same way for both. A client's socket may also be one HTTP/2 stream
//! (`wire`), which the HTTP/1 code reads and writes like any other.

mod replay;
mod wire;

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use crate::buffer::{Buffer, BufferPool, Io};
use crate::tls::TlsSession;
pub use wire::{ANSWER_ROOM, StreamEnd, StreamIo, Wire, Woken};

/// What one attempt to read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Filled {
    Got,
    Nothing,
    Eof,
    Failed,
}

/// A write failed: the peer reset or closed the connection.
#[derive(Debug)]
pub struct PeerGone;

/// A non-blocking socket with its readiness and its input and output buffers.
pub struct Socket {
    pub sock: Wire,
    /// Set by a readable event, cleared once a read finds the socket drained.
    pub readable: bool,
    /// Set by a writable event, cleared once a write finds the socket full.
    pub writable: bool,
    pub read_closed: bool,
    /// The peer hung up or the socket failed: its end of file or error must still be read,
    /// even after a short read, since no further edge will announce it.
    hung_up: bool,
    pub input: Option<Buffer>,
    pub output: Option<Buffer>,
    /// A message filled a small input buffer: reads take full-size ones until the
    /// connection goes idle (`release_buffers`, `release_input`; a pooled backend
    /// connection keeps it, `release_buffers_keeping_size`).
    input_grown: bool,
    /// `None` for plain TCP. Boxed: a plain socket pays one pointer for it.
    tls: Option<Box<TlsSession>>,
    /// Bytes sent raw before anything else, even a TLS handshake: a PROXY header.
    preamble: Option<Box<[u8]>>,
}

impl Socket {
    pub fn new(sock: TcpStream) -> Self {
        Socket::on(Wire::Tcp(sock))
    }

    /// The client side of an HTTP/2 stream.
    pub fn stream(end: StreamEnd) -> Self {
        Socket::on(Wire::Stream(end))
    }

    fn on(sock: Wire) -> Self {
        Socket {
            sock,
            readable: false,
            writable: false,
            read_closed: false,
            hung_up: false,
            input: None,
            output: None,
            input_grown: false,
            tls: None,
            preamble: None,
        }
    }

    pub fn with_tls(sock: TcpStream, session: TlsSession) -> Self {
        Socket {
            tls: Some(Box::new(session)),
            ..Socket::new(sock)
        }
    }

    /// The client reached lb over TLS (for a stream: its connection did).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some() || self.sock.stream_over_tls()
    }

    /// A stream has no readiness events: what its connection gives it is read when the
    /// HTTP/1 code looks, and its answer written while there is room.
    fn poll_stream(&mut self) {
        if self.sock.is_stream() {
            self.readable = true;
            self.writable = true;
        }
    }

    /// A TLS client that chose HTTP/2 by ALPN.
    pub fn chose_h2(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.chose_h2())
    }

    /// A TLS client that has not finished its handshake yet.
    pub fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshaking())
    }

    /// `bytes` go out before anything else written to this socket.
    pub fn send_first(&mut self, bytes: Vec<u8>) {
        self.preamble = Some(bytes.into_boxed_slice());
    }

    /// Writes the preamble; true once none is left.
    fn send_preamble(&mut self) -> Result<bool, PeerGone> {
        let Some(pre) = self.preamble.as_mut() else {
            return Ok(true);
        };
        while self.writable {
            match self.sock.write(pre) {
                Ok(n) if n == pre.len() => {
                    self.preamble = None;
                    return Ok(true);
                }
                Ok(n) => {
                    *pre = pre[n..].into();
                    self.writable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(PeerGone),
            }
        }
        Ok(false)
    }

    pub fn on_event(&mut self, event: &mio::event::Event) {
        // An error or hang-up surfaces through the next read or write, so both are retried.
        let broken = event.is_error() || event.is_read_closed() || event.is_write_closed();
        self.hung_up |= broken;
        self.readable |= event.is_readable() || broken;
        self.writable |= event.is_writable() || broken;
    }

    pub fn input_len(&self) -> usize {
        self.input.as_ref().map_or(0, Buffer::len)
    }

    /// Bytes still to send: the output buffer's, plus one for ciphertext that rustls
    /// holds, so that "nothing left to send" means the peer's socket has it all.
    pub fn output_len(&self) -> usize {
        let tls = self.tls.as_ref().is_some_and(|t| t.pending_out());
        let preamble = self.preamble.as_ref().map_or(0, |p| p.len());
        self.output.as_ref().map_or(0, Buffer::len) + usize::from(tls) + preamble
    }

    pub fn input_data(&self) -> &[u8] {
        self.input.as_ref().map_or(&[], Buffer::data)
    }

    /// Reads once into the input buffer, if the socket may have data and the buffer has room.
    pub fn fill(&mut self, pool: &mut BufferPool) -> Filled {
        self.poll_stream();
        if self.tls.is_some() {
            // Our handshake answers must not overtake the preamble.
            match self.send_preamble() {
                Ok(true) => {}
                Ok(false) => return Filled::Nothing,
                Err(PeerGone) => return Filled::Failed,
            }
        }
        if let (Some(tls), Wire::Tcp(sock)) = (self.tls.as_mut(), &mut self.sock) {
            if !tls.may_read(self.readable) || self.read_closed {
                return Filled::Nothing;
            }
            let buf = input_buffer(&mut self.input, self.input_grown, pool);
            let readable = (&mut self.readable, self.hung_up);
            let got = tls.fill(sock, readable, &mut self.writable, buf);
            if got == Filled::Eof {
                self.read_closed = true;
            }
            self.note_full_input(pool);
            pool.release_if_empty(&mut self.input);
            return got;
        }
        if !self.readable || self.read_closed {
            return Filled::Nothing;
        }
        let buf = input_buffer(&mut self.input, self.input_grown, pool);
        let room = buf.room();
        if room == 0 {
            return Filled::Nothing;
        }
        let got = match buf.read_from(&mut self.sock) {
            // A short read drained the socket: epoll reports the next arrival as a new edge.
            Io::Moved(n) => {
                if n < room && !self.hung_up {
                    self.readable = false;
                }
                Filled::Got
            }
            Io::WouldBlock => {
                self.readable = false;
                Filled::Nothing
            }
            Io::Eof => {
                self.read_closed = true;
                Filled::Eof
            }
            Io::Failed(_) => Filled::Failed,
        };
        self.note_full_input(pool);
        pool.release_if_empty(&mut self.input);
        got
    }

    /// A message that fills a small buffer is a large one: the rest of it is read
    /// full-size, though the buffer may empty and go back to the pool in between (a
    /// 16 KiB answer was read 1 KiB at a time before).
    fn note_full_input(&mut self, pool: &BufferPool) {
        if let Some(buf) = self.input.as_mut()
            && buf.room() == 0
            && !pool.is_full_size(buf)
        {
            self.input_grown = true;
        }
    }

    /// Writes pending output until it is gone or the socket is full; says whether it wrote.
    pub fn flush(&mut self, pool: &mut BufferPool) -> Result<bool, PeerGone> {
        let mut output = self.output.take();
        let result = match output.as_mut() {
            Some(buf) => self.send_from(buf),
            None => self.send(&[]).map(|n| n > 0),
        };
        self.output = output;
        pool.release_if_empty(&mut self.output);
        result
    }

    /// Sends what `buf` holds until it is empty or the socket is full, consuming what
    /// went; says whether anything did.
    pub fn send_from(&mut self, buf: &mut Buffer) -> Result<bool, PeerGone> {
        let mut wrote = false;
        loop {
            let sent = self.send(buf.data())?;
            buf.consume(sent);
            wrote |= sent > 0;
            if sent == 0 || buf.is_empty() {
                // Ciphertext rustls still holds goes out too, even with no plaintext left.
                if let (Some(tls), Wire::Tcp(sock)) = (self.tls.as_mut(), &mut self.sock) {
                    tls.flush_tls(sock, &mut self.writable)?;
                }
                return Ok(wrote);
            }
        }
    }

    /// Writes once from `data` if the socket is writable; says how much went. A short
    /// write clears `writable`: the socket is full.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, PeerGone> {
        self.poll_stream();
        if !self.send_preamble()? {
            return Ok(0);
        }
        if let (Some(tls), Wire::Tcp(sock)) = (self.tls.as_mut(), &mut self.sock) {
            return tls.send(sock, &mut self.writable, data);
        }
        while self.writable && !data.is_empty() {
            match self.sock.write(data) {
                Ok(n) => {
                    if n < data.len() {
                        self.writable = false;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(PeerGone),
            }
        }
        Ok(0)
    }

    /// Ends our sending side: a TLS close_notify first, then the TCP FIN.
    pub fn shutdown_write(&mut self) {
        match (self.tls.as_mut(), &mut self.sock) {
            (Some(tls), Wire::Tcp(sock)) => tls.shutdown_write(sock, &mut self.writable),
            (_, wire) => wire.shutdown_write(),
        }
    }

    /// Reads and drops what the peer sends, at most `budget` bytes; `Eof` or `Failed`
    /// once it is gone, `Got` if the budget ran out first.
    pub fn discard_input(&mut self, pool: &mut BufferPool, budget: u64) -> Filled {
        self.poll_stream();
        if self.tls.is_some() {
            let mut dropped = 0;
            loop {
                match self.fill(pool) {
                    Filled::Got => {
                        if let Some(buf) = self.input.as_mut() {
                            dropped += buf.len() as u64;
                            buf.clear();
                        }
                        pool.release_if_empty(&mut self.input);
                        if dropped >= budget {
                            return Filled::Got;
                        }
                    }
                    other => return other,
                }
            }
        }
        let mut sink = [0u8; 4096];
        let mut dropped = 0;
        while self.readable {
            if dropped >= budget {
                return Filled::Got;
            }
            match self.sock.read(&mut sink) {
                Ok(0) => return Filled::Eof,
                Ok(n) => dropped += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Filled::Failed,
            }
        }
        Filled::Nothing
    }

    /// Between messages: the input buffer goes back, and the next message starts small.
    pub fn release_input(&mut self, pool: &mut BufferPool) {
        pool.release(&mut self.input);
        self.input_grown = false;
    }

    pub fn release_buffers(&mut self, pool: &mut BufferPool) {
        self.release_input(pool);
        pool.release(&mut self.output);
    }

    /// Between exchanges on a pooled backend connection: the buffers go back, but one
    /// whose answers outgrew a small buffer reads full-size from the next answer's first
    /// byte. A backend's answers tend to be alike, and starting small would cost a
    /// second read and a copy per large answer; an idle connection holds no buffer either way.
    pub fn release_buffers_keeping_size(&mut self, pool: &mut BufferPool) {
        pool.release(&mut self.input);
        pool.release(&mut self.output);
    }
}

/// The buffer to read into: a small one for a new message, full-size once the message
/// has filled a small one (`grown`, set by `note_full_input`) until the connection goes idle.
fn input_buffer<'a>(
    input: &'a mut Option<Buffer>,
    grown: bool,
    pool: &mut BufferPool,
) -> &'a mut Buffer {
    let buf = input.get_or_insert_with(|| if grown { pool.get() } else { pool.get_small() });
    if grown {
        pool.grow(buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A socket whose peer has sent `len` bytes, all of them waiting to be read.
    fn socket_with_waiting(len: usize) -> (Socket, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut socket = Socket::new(TcpStream::from_std(ours));
        send(&mut socket, &mut peer, len);
        (socket, peer)
    }

    /// The peer sends `len` bytes; returns once they are all waiting at `socket`.
    fn send(socket: &mut Socket, peer: &mut std::net::TcpStream, len: usize) {
        peer.write_all(&vec![b'x'; len]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut peek = vec![0; len];
        let Wire::Tcp(sock) = &socket.sock else {
            panic!("a TCP socket")
        };
        while sock.peek(&mut peek).unwrap_or(0) < len {
            assert!(Instant::now() < deadline, "{len} bytes never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
        socket.readable = true;
    }

    /// Reads until `len` bytes came, emptying the buffer after each read as the pump
    /// does when it moves bytes on; returns how many reads it took.
    fn reads_for(socket: &mut Socket, pool: &mut BufferPool, len: usize) -> usize {
        let (mut reads, mut got) = (0, 0);
        while got < len {
            assert_eq!(socket.fill(pool), Filled::Got);
            reads += 1;
            let input = socket.input.as_mut().unwrap();
            got += input.len();
            input.clear();
            pool.release_if_empty(&mut socket.input);
        }
        reads
    }

    #[test]
    fn a_message_that_fills_a_small_buffer_is_read_on_full_size() {
        let mut pool = BufferPool::new(32 * 1024, 4);
        let (mut socket, _peer) = socket_with_waiting(16 * 1024);
        // One small read, then one full-size read for the rest (16 small ones before).
        assert_eq!(reads_for(&mut socket, &mut pool, 16 * 1024), 2);
    }

    #[test]
    fn a_pooled_connection_keeps_its_size_and_a_client_starts_small_again() {
        let mut pool = BufferPool::new(32 * 1024, 4);
        let (mut socket, mut peer) = socket_with_waiting(16 * 1024);
        reads_for(&mut socket, &mut pool, 16 * 1024);

        socket.release_buffers_keeping_size(&mut pool);
        send(&mut socket, &mut peer, 4096);
        assert_eq!(reads_for(&mut socket, &mut pool, 4096), 1);

        socket.release_buffers(&mut pool);
        send(&mut socket, &mut peer, 4096);
        assert_eq!(reads_for(&mut socket, &mut pool, 4096), 2);
    }
}
