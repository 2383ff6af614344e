//! What every socket in the slab shares: readiness flags kept between edge-triggered
//! events, and reading and writing through pooled buffers.

use mio::net::TcpStream;

use crate::buffer::{Buffer, BufferPool, Io};

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
    pub sock: TcpStream,
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
    /// A message outgrew a small input buffer: reads take full-size ones until the
    /// connection goes idle (`release_buffers`, `release_input`).
    input_grown: bool,
}

impl Socket {
    pub fn new(sock: TcpStream) -> Self {
        Socket {
            sock,
            readable: false,
            writable: false,
            read_closed: false,
            hung_up: false,
            input: None,
            output: None,
            input_grown: false,
        }
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

    pub fn output_len(&self) -> usize {
        self.output.as_ref().map_or(0, Buffer::len)
    }

    pub fn input_data(&self) -> &[u8] {
        self.input.as_ref().map_or(&[], Buffer::data)
    }

    /// Reads once into the input buffer, if the socket may have data and the buffer has room.
    pub fn fill(&mut self, pool: &mut BufferPool) -> Filled {
        if !self.readable || self.read_closed {
            return Filled::Nothing;
        }
        let grown = self.input_grown;
        let buf = self
            .input
            .get_or_insert_with(|| if grown { pool.get() } else { pool.get_small() });
        let mut room = buf.room();
        if room == 0 && !pool.is_full_size(buf) {
            pool.grow(buf);
            self.input_grown = true;
            room = buf.room();
        }
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
        pool.release_if_empty(&mut self.input);
        got
    }

    /// Writes pending output until it is gone or the socket is full; says whether it wrote.
    pub fn flush(&mut self, pool: &mut BufferPool) -> Result<bool, PeerGone> {
        let mut wrote = false;
        while self.writable {
            let Some(buf) = self.output.as_mut() else {
                break;
            };
            let pending = buf.len();
            if pending == 0 {
                break;
            }
            match buf.write_to(&mut self.sock) {
                Io::Moved(n) => {
                    wrote = true;
                    if n < pending {
                        self.writable = false;
                    }
                }
                Io::WouldBlock => self.writable = false,
                Io::Eof | Io::Failed(_) => return Err(PeerGone),
            }
        }
        pool.release_if_empty(&mut self.output);
        Ok(wrote)
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
}
