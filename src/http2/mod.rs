//! HTTP/2 clients in the loop. A client becomes an `H2Conn` when it chose `h2` by ALPN,
//! or starts with the preface on an `h2c` listener. The codec (`crate::h2`) turns its
//! bytes into requests; each stream gets a client side, a `ClientConn` whose socket is
//! the stream (`conn::Wire::Stream`), which the HTTP/1 code routes, balances, logs and
//! counts like any request (fan-out and the journal included). What that side writes is
//! framed back here (`streams`, `answer`).
//!
//! News reaches a connection two ways: its socket's readiness, and the loop's `Woken`
//! list, which a stream's client side joins when it writes, reads body or closes.

mod answer;
mod deadlines;
mod streams;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use log::debug;
use slab::Slab;

use crate::conn::{Filled, PeerGone, Socket, StreamEnd, StreamIo};
use crate::event_loop::{Conn, Core, STEP_BUDGET};
use crate::h2::connection::{Connection, Event, State};
use crate::h2::error::ErrorCode;
use crate::h2::hpack::HeaderList;
use crate::h2::limits::Limits;
use crate::http::client;
use crate::timer::TimerId;
use deadlines::arm_timer;
pub use deadlines::timer_fired;
use streams::{Outcome, Stream};

/// Frame bytes queued and not yet written: past this, answers wait in their streams (and
/// their exchanges stop reading from backends) until the client reads, however wide the
/// windows it opened.
const OUT_LIMIT: usize = 64 * 1024;
/// The frame buffer an idle connection keeps: its PINGs and SETTINGS fit.
const IDLE_OUT_CAPACITY: usize = 1024;
/// Stream buffers kept for the next streams while others are open; an idle connection
/// keeps none.
const SPARE_STREAMS: usize = 8;

pub struct H2Conn {
    pub io: Socket,
    pub peer: SocketAddr,
    pub serial: u32,
    pub front: u32,
    pub timer: Option<TimerId>,
    /// What each stream's client side says about where it came from.
    origin: Origin,
    /// When `timer` fires.
    timer_at: Option<Instant>,
    codec: Connection,
    streams: Vec<Stream>,
    /// Frames taken from the codec, not yet written.
    out: Vec<u8>,
    /// An answer's header list, reused.
    list: HeaderList,
    /// Stream buffers of finished streams, for the next ones.
    spare: Vec<Rc<RefCell<StreamIo>>>,
    /// Since when it has had no stream: frames that open none (PINGs) do not reset it.
    idle_since: Option<Instant>,
    /// Since when frames have waited for the client to read (the current --client-timeout
    /// window of it), and the bytes it took in that window.
    blocked_since: Option<Instant>,
    written: u64,
    /// Since when a header block has waited for its END_HEADERS.
    block_since: Option<Instant>,
    /// The client sent GOAWAY, or shut its side: it opens no more streams.
    client_leaving: bool,
}

/// The connection as its streams' client sides see it.
#[derive(Clone, Copy)]
struct Origin {
    key: usize,
    serial: u32,
    local: SocketAddr,
    peer: SocketAddr,
    tls: bool,
}

/// What a frame's event leaves to do once the connection is no longer borrowed.
enum Next {
    Nothing,
    Open(Box<Stream>),
    /// Reset the stream with this code (no client side was made for it).
    Refuse(u32, ErrorCode),
    /// Answer 431 on a stream whose header list is too large.
    TooLarge(u32),
    /// Close a client side whose stream is gone.
    CloseClient((usize, u32)),
    /// The client sent GOAWAY.
    ClientLeaving,
    /// A connection error: the GOAWAY is queued, then the connection closes.
    Failed,
}

pub(crate) fn h2_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut H2Conn> {
    match conns.get_mut(key) {
        Some(Conn::H2(h)) => Some(h),
        _ => None,
    }
}

/// Client `key` speaks HTTP/2 from now on: its socket and what it read so far (the
/// preface) move to an `H2Conn` under the same key.
pub fn take_over(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::Client(mut c)) = conns.try_remove(key) else {
        return;
    };
    core.disarm(&mut c.timer);
    let origin = Origin {
        key,
        serial: c.serial,
        local: c.io.sock.local_addr().unwrap_or(c.peer),
        peer: c.peer,
        tls: c.io.is_tls(),
    };
    let h = H2Conn {
        io: c.io,
        peer: c.peer,
        serial: c.serial,
        front: c.front,
        timer: None,
        origin,
        timer_at: None,
        codec: Connection::new(Limits::default(), core.now),
        streams: Vec::new(),
        out: Vec::new(),
        list: HeaderList::new(),
        spare: Vec::new(),
        idle_since: Some(core.now),
        blocked_since: None,
        written: 0,
        block_since: None,
        client_leaving: false,
    };
    core.metrics.h2_connections_total += 1;
    let entry = conns.vacant_entry();
    let new_key = entry.key();
    entry.insert(Conn::H2(Box::new(h)));
    if new_key != key
        && let Some(h) = h2_mut(conns, new_key)
    {
        h.origin.key = new_key;
        if core.reregister(&mut h.io.sock, new_key).is_err() {
            return close(conns, core, new_key);
        }
    }
    drive(conns, core, new_key);
}

/// Steps connection `key`: reads frames, starts and feeds streams, frames their answers,
/// writes, and closes when it is over.
pub fn drive(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    // Stopping, or its listener left the config: the streams in flight finish.
    let front_closed = core.fronts.get(h.front as usize).is_none_or(|f| f.closed);
    if core.draining || front_closed {
        h.codec.go_away(true);
    }
    let mut read = 0u64;
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        let filled = h.io.fill(&mut core.buffers);
        if filled == Filled::Failed {
            return close(conns, core, key);
        }
        // An end of file is a client that sends nothing more: the frames it sent before
        // are still read, and the streams in flight answered while it still reads.
        h.client_leaving |= h.io.read_closed;
        let before = h.io.input_len();
        if !take_frames(conns, core, key) {
            break;
        }
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        let taken = before.saturating_sub(h.io.input_len());
        read = read.saturating_add(taken as u64);
        if filled != Filled::Got {
            break;
        }
        if read >= STEP_BUDGET {
            core.revisit.push(key);
            break;
        }
    }
    // Written first, so that answers may fill the room it leaves.
    if let Some(h) = h2_mut(conns, key)
        && flush(h, core).is_err()
    {
        return close(conns, core, key);
    }
    service(conns, core, key);
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    if h.io.fill(&mut core.buffers) == Filled::Got {
        // Room made in the input buffer let more frames in: come back next turn.
        core.revisit.push(key);
    }
    if flush(h, core).is_err() {
        return close(conns, core, key);
    }
    h.block_since = match h.codec.in_header_block() {
        true => h.block_since.or(Some(core.now)),
        false => None,
    };
    let over = h.codec.state() == State::Closed || (h.client_leaving && h.streams.is_empty());
    if over && h.out.is_empty() && !h.codec.has_output() {
        return close(conns, core, key);
    }
    arm_timer(h, core, key);
}

/// Reads frames until no whole one is left; false once the connection failed.
fn take_frames(conns: &mut Slab<Conn>, core: &mut Core, key: usize) -> bool {
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return false;
        };
        let (used, next) = match h.codec.next_event(h.io.input_data(), core.now) {
            Ok((used, None)) => (used, None),
            Ok((used, Some(event))) => {
                let next = on_event(event, &mut h.streams, &mut h.spare, core, h.origin);
                (used, Some(next))
            }
            Err(goaway) => {
                debug!(
                    "{}: HTTP/2 connection error {:?}, GOAWAY",
                    h.peer, goaway.code
                );
                (h.io.input_len(), Some(Next::Failed))
            }
        };
        if let Some(input) = h.io.input.as_mut() {
            input.consume(used);
        }
        match next {
            None => return true,
            Some(next) => {
                if !act(conns, core, key, next) {
                    return false;
                }
            }
        }
    }
}

/// Takes in one event while the connection is borrowed by it.
fn on_event(
    event: Event,
    streams: &mut Vec<Stream>,
    spare: &mut Vec<Rc<RefCell<StreamIo>>>,
    core: &Core,
    origin: Origin,
) -> Next {
    match event {
        Event::Request {
            stream,
            headers,
            end_stream,
        } => {
            let io = spare.pop().unwrap_or_else(|| {
                let mut io = StreamIo::new(
                    (origin.key, origin.serial),
                    Rc::clone(&core.h2_woken),
                    (origin.local, origin.peer),
                );
                io.tls = origin.tls;
                Rc::new(RefCell::new(io))
            });
            match Stream::open(stream, headers, end_stream, io) {
                Ok(s) => Next::Open(Box::new(s)),
                Err(why) => {
                    debug!("stream {stream}: malformed request: {why}");
                    Next::Refuse(stream, ErrorCode::PROTOCOL_ERROR)
                }
            }
        }
        Event::RequestTooLarge { stream, .. } => Next::TooLarge(stream),
        Event::Data {
            stream,
            data,
            end_stream,
        } => {
            if let Some(s) = streams.iter_mut().find(|s| s.id == stream) {
                s.data(data, end_stream);
            }
            Next::Nothing
        }
        Event::Trailers { stream, headers } => {
            let Some(s) = streams.iter_mut().find(|s| s.id == stream) else {
                return Next::Nothing;
            };
            match s.trailers(headers) {
                Ok(()) => Next::Nothing,
                Err(why) => {
                    debug!("stream {stream}: malformed trailers: {why}");
                    Next::Refuse(stream, ErrorCode::PROTOCOL_ERROR)
                }
            }
        }
        Event::Reset { stream, .. } => match streams.iter().position(|s| s.id == stream) {
            Some(at) => {
                let s = streams.swap_remove(at);
                s.abandon();
                Next::CloseClient(s.client)
            }
            None => Next::Nothing,
        },
        Event::WindowOpened { .. } => Next::Nothing,
        Event::GoAway { .. } => Next::ClientLeaving,
    }
}

/// Does what an event left to do; false once the connection failed.
fn act(conns: &mut Slab<Conn>, core: &mut Core, key: usize, next: Next) -> bool {
    match next {
        Next::Nothing => {}
        Next::Open(mut stream) => {
            let Some(h) = h2_mut(conns, key) else {
                return false;
            };
            let end = StreamEnd(Rc::clone(&stream.io));
            let (peer, front) = (h.peer, h.front);
            h.idle_since = None;
            let child = client::accept_stream(conns, core, Socket::stream(end), peer, front);
            stream.client = child;
            let Some(h) = h2_mut(conns, key) else {
                return false;
            };
            h.streams.push(*stream);
            core.metrics.h2_streams_total += 1;
            // Started once this turn's frames are read: a stream reset in the same read
            // (rapid reset sends them in pairs) never reaches a backend.
            core.revisit.push(child.0);
        }
        Next::Refuse(id, code) => {
            if let Some(h) = h2_mut(conns, key) {
                h.codec.send_reset(id, code);
            }
        }
        Next::TooLarge(id) => {
            if let Some(h) = h2_mut(conns, key) {
                core.metrics.local_response(431);
                let status: [(&[u8], &[u8]); 1] = [(b":status", b"431")];
                let _ = h.codec.send_headers(id, status, true);
            }
        }
        Next::CloseClient(child) => close_client_side(conns, core, child),
        Next::ClientLeaving => {
            if let Some(h) = h2_mut(conns, key) {
                h.client_leaving = true;
            }
        }
        Next::Failed => {
            core.metrics.h2_connection_errors_total += 1;
            return false;
        }
    }
    true
}

/// Closes a stream's client side if it is still there.
fn close_client_side(conns: &mut Slab<Conn>, core: &mut Core, (key, serial): (usize, u32)) {
    if matches!(conns.get(key), Some(Conn::Client(c)) if c.serial == serial) {
        client::close_client(conns, core, key);
    }
}

/// Takes in what every stream's client side did since the last look.
fn service(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let mut at = 0;
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        let H2Conn {
            streams,
            codec,
            list,
            spare,
            out,
            ..
        } = h;
        let Some(stream) = streams.get_mut(at) else {
            break;
        };
        let may_send = out.len().saturating_add(codec.output_len()) < OUT_LIMIT;
        match stream.service(codec, list, core.now, may_send) {
            Outcome::Continues { wake_client } => {
                if wake_client {
                    core.revisit.push(stream.client.0);
                }
                at += 1;
            }
            Outcome::Finished => {
                let stream = streams.swap_remove(at);
                if Rc::strong_count(&stream.io) == 1 && spare.len() < SPARE_STREAMS {
                    stream.io.borrow_mut().recycle();
                    spare.push(stream.io);
                }
            }
            Outcome::Failed => {
                let stream = streams.swap_remove(at);
                close_client_side(conns, core, stream.client);
            }
        }
    }
    if let Some(h) = h2_mut(conns, key)
        && h.streams.is_empty()
        && h.idle_since.is_none()
    {
        // Idle, it keeps no stream buffers (they are made again for the next stream).
        h.idle_since = Some(core.now);
        h.spare = Vec::new();
        h.list = HeaderList::new();
    }
}

/// Writes frames until they are all out or the socket is full.
fn flush(h: &mut H2Conn, core: &mut Core) -> Result<(), PeerGone> {
    loop {
        if h.out.len() < OUT_LIMIT {
            h.codec.take_output(&mut h.out);
        }
        if h.out.is_empty() {
            break;
        }
        let n = h.io.send(&h.out)?;
        if n == 0 {
            break;
        }
        h.out.drain(..n);
        h.written = h.written.saturating_add(n as u64);
    }
    h.io.flush(&mut core.buffers)?;
    match (h.out.is_empty() && h.io.output_len() == 0, h.blocked_since) {
        (true, _) => h.blocked_since = None,
        (false, Some(_)) => {}
        (false, None) => {
            h.blocked_since = Some(core.now);
            h.written = 0;
        }
    }
    if h.out.is_empty() && h.streams.is_empty() {
        // What large answers grew it to goes back; small ones never reallocate.
        h.out.shrink_to(IDLE_OUT_CAPACITY);
    }
    Ok(())
}

/// Closes the connection and every stream's client side.
pub fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::H2(mut h)) = conns.try_remove(key) else {
        return;
    };
    core.disarm(&mut h.timer);
    h.io.release_buffers(&mut core.buffers);
    let _ = core.registry.deregister(&mut h.io.sock);
    core.client_closed();
    for stream in h.streams.drain(..) {
        stream.abandon();
        close_client_side(conns, core, stream.client);
    }
}

/// The loop's `Woken` list: each connection named there looks at its streams.
pub fn wake(conns: &mut Slab<Conn>, core: &mut Core) {
    loop {
        let woken = std::mem::take(&mut *core.h2_woken.borrow_mut());
        if woken.is_empty() {
            return;
        }
        for (key, serial) in woken {
            if matches!(conns.get(key), Some(Conn::H2(h)) if h.serial == serial) {
                drive(conns, core, key);
            } else {
                crate::h2_upstream::woken(conns, core, (key, serial));
            }
        }
    }
}
