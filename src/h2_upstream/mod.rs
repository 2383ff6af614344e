//! HTTP/2 to backends (`protocol = "h2"`, gRPC). An `H2Upstream` is one connection to a
//! backend, owning its socket and a client codec (`h2::client`); each exchange sent to
//! the backend gets an ordinary `UpstreamConn` whose socket is one stream of it
//! (`conn::Wire::Stream`), so that the HTTP/1 code writes its request and reads the
//! response as from any backend connection, and `stream` maps both across.
//!
//! At most `MAX_PER_BACKEND` connections per backend, opened when a stream finds no room
//! on the others. A stream's `UpstreamConn` stays `Connecting` until its connection is
//! connected and has room for it, so that a failed connect or a wait past the connect
//! timeout is retried elsewhere like any refused connect. Streams are never pooled: an
//! exchange's end closes its stream, and the connection serves the next ones.

mod deadlines;
mod frames;
mod open;
mod stream;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use slab::Slab;

use crate::backend::BackendId;
use crate::conn::{Filled, PeerGone, Socket, StreamIo};
use crate::event_loop::{Conn, Core, STEP_BUDGET};
use crate::h2::client::{ClientConnection, State};
use crate::h2::hpack::HeaderList;
use crate::http::upstream::{Owner, UpstreamState, connect_failed, stream_connected};
use crate::metrics::Failure;
use crate::timer::TimerId;
pub use deadlines::timer_fired;
use frames::take_frames;
pub(crate) use open::open_stream;
use stream::Stream;

/// HTTP/2 connections per backend at most; streams beyond what they allow wait.
pub const MAX_PER_BACKEND: usize = 4;
/// Stream buffers kept for the next streams while others are open.
const SPARE_STREAMS: usize = 8;
/// Frame bytes queued and not yet written: past this, request bodies wait.
const OUT_LIMIT: usize = 64 * 1024;

pub struct H2Upstream {
    pub io: Socket,
    pub backend: BackendId,
    pub serial: u32,
    pub timer: Option<TimerId>,
    timer_at: Option<Instant>,
    /// Since when the TCP connect has been under way; `None` once connected.
    connecting_since: Option<Instant>,
    codec: ClientConnection,
    streams: Vec<Stream>,
    /// Frames taken from the codec, not yet written.
    out: Vec<u8>,
    /// A request's header list, reused.
    list: HeaderList,
    /// Since when it has had no stream.
    idle_since: Option<Instant>,
    /// Since when frames have waited for the server to read them.
    blocked_since: Option<Instant>,
    /// The connect and SETTINGS deadline, and how long the server may leave written frames
    /// unread: its pool's.
    connect_timeout: Duration,
    server_timeout: Duration,
    addr: SocketAddr,
    /// Buffers of finished streams, for the next ones.
    spare: Vec<Rc<RefCell<StreamIo>>>,
}

fn h2_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut H2Upstream> {
    match conns.get_mut(key) {
        Some(Conn::H2Upstream(h)) => Some(h),
        _ => None,
    }
}

impl H2Upstream {
    /// Streams it carries that are not yet opened on the codec.
    fn unopened(&self) -> usize {
        self.streams.iter().filter(|s| s.id.is_none()).count()
    }

    /// It may be given another stream: its waiting ones fit in what the server allows.
    /// Until the server's SETTINGS say how many it takes, one.
    fn has_room(&self) -> bool {
        let allowed = match self.codec.state() {
            State::AwaitingSettings => 1,
            _ => self.codec.can_open(),
        };
        allowed > self.unopened()
    }

    /// It may let another waiting stream's exchange hand its request over.
    fn admits(&self) -> bool {
        let admitted = self
            .streams
            .iter()
            .filter(|s| s.admitted && s.id.is_none())
            .count();
        self.connecting_since.is_none()
            && self.codec.state() == State::Open
            && self.codec.can_open() > admitted
    }

    /// It takes no new stream any more (GOAWAY, or closing).
    fn leaving(&self) -> bool {
        matches!(self.codec.state(), State::Draining { .. } | State::Closed)
    }

    fn scheme(&self) -> &'static str {
        match self.io.is_tls() {
            true => "https",
            false => "http",
        }
    }
}

/// Steps connection `key`: finishes its connect, reads frames into its streams, opens and
/// feeds streams, writes, and closes when it is over.
pub fn drive(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    if h.connecting_since.is_some() {
        if !(h.io.writable || h.io.readable) {
            return;
        }
        let connected = match h.io.sock.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => h.io.sock.peer_addr().map(|_| ()),
        };
        match connected {
            Ok(()) => h.connecting_since = None,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return fail(conns, core, key, Failure::Connect, &e.to_string()),
        }
    }
    let mut read = 0u64;
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        let filled = h.io.fill(&mut core.buffers);
        if filled == Filled::Failed {
            return fail(conns, core, key, Failure::Reset, "connection lost");
        }
        if h.io.is_tls() && !h.io.handshaking() && !h.io.chose_h2() {
            let why = "the backend did not choose h2 by ALPN (is it an HTTP/2 server?)";
            warn!("backend {}: {why}", core.backends[h.backend].label);
            return fail(conns, core, key, Failure::BadResponse, why);
        }
        let before = h.io.input_len();
        if !take_frames(conns, core, key) {
            return fail(conns, core, key, Failure::BadResponse, "HTTP/2 error");
        }
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        if h.io.read_closed {
            // Its whole frames are taken in; what is left is cut short. Responses that
            // came whole are still read by their exchanges.
            return fail(conns, core, key, Failure::Reset, "connection closed");
        }
        read = read.saturating_add(before.saturating_sub(h.io.input_len()) as u64);
        if filled != Filled::Got {
            break;
        }
        if read >= STEP_BUDGET {
            core.revisit.push(key);
            break;
        }
    }
    service(conns, core, key);
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    if flush(h, core).is_err() {
        return fail(
            conns,
            core,
            key,
            Failure::Reset,
            "connection lost while sending",
        );
    }
    let over = h.codec.state() == State::Closed
        || (matches!(h.codec.state(), State::Draining { .. }) && h.streams.is_empty());
    if over && h.out.is_empty() && !h.codec.has_output() {
        return close(conns, core, key);
    }
    deadlines::arm_timer(h, core, key);
}

/// Takes in what every stream's exchange did since the last look: closes, request heads
/// and bodies, response bytes read; and lets waiting streams in while there is room.
fn service(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let mut at = 0;
    loop {
        let Some(h) = h2_mut(conns, key) else {
            return;
        };
        let admits = h.admits();
        let leaving = h.leaving();
        let may_send = h.out.len() < OUT_LIMIT;
        let scheme = h.scheme();
        let H2Upstream {
            streams,
            codec,
            list,
            spare,
            ..
        } = h;
        let Some(s) = streams.get_mut(at) else {
            break;
        };
        s.io.borrow_mut().parent_woken = false;
        if s.io.borrow().closed {
            s.closed(codec);
            let s = streams.swap_remove(at);
            if Rc::strong_count(&s.io) == 1 && spare.len() < SPARE_STREAMS {
                s.io.borrow_mut().recycle();
                spare.push(s.io);
            }
            continue;
        }
        let upstream = s.upstream;
        let result = match s.id {
            None if s.admitted => s.open(codec, list, scheme),
            _ => Ok(false),
        };
        let result = result.and_then(|_| match may_send {
            true => s.send(codec, core.now),
            false => Ok(()),
        });
        if let Err(why) = result {
            debug!("HTTP/2 backend: stream: {}", why.0);
            s.break_off();
            let s = streams.swap_remove(at);
            wake_upstream(conns, core, &s);
            continue;
        }
        let news = std::mem::take(&mut s.news);
        let waiting = waits_for_room(conns, upstream);
        if waiting.is_some()
            && admits
            && let Some(s) = h2_mut(conns, key).and_then(|h| h.streams.get_mut(at))
        {
            s.admitted = true;
        }
        at += 1;
        match waiting {
            // Nothing of its request reached the backend: it goes elsewhere, as after a
            // refused connect. A GOAWAY (a restart, or lb's own for a backend leaving
            // rotation) is no fault of the backend's, as a refused stream is not.
            Some(owner) if leaving => {
                let why = "HTTP/2 connection going away";
                connect_failed(conns, core, owner, upstream.0, None, why);
            }
            Some(_) if admits => {
                // Its exchange hands the request over now; its head opens the stream next.
                stream_connected(conns, core, upstream.0);
                core.revisit.push(key);
            }
            Some(_) => {}
            None if news => core.revisit.push(upstream.0),
            None => {}
        }
    }
    if let Some(h) = h2_mut(conns, key)
        && h.streams.is_empty()
        && h.idle_since.is_none()
    {
        // Idle, it keeps no stream buffers.
        h.idle_since = Some(core.now);
        h.spare = Vec::new();
    }
}

/// The owner of a stream whose `UpstreamConn` is still `Connecting`: it has not handed
/// its request over.
fn waits_for_room(conns: &Slab<Conn>, (ukey, serial): (usize, u32)) -> Option<Owner> {
    match conns.get(ukey) {
        Some(Conn::Upstream(u)) if u.serial == serial => match u.state {
            UpstreamState::Connecting(owner) => Some(owner),
            _ => None,
        },
        _ => None,
    }
}

/// Steps the exchange of a stream that changed, unless it is gone.
fn wake_upstream(conns: &Slab<Conn>, core: &mut Core, s: &Stream) {
    let (ukey, serial) = s.upstream;
    if matches!(conns.get(ukey), Some(Conn::Upstream(u)) if u.serial == serial) {
        core.revisit.push(ukey);
    }
}

/// Writes frames until they are all out or the socket is full.
fn flush(h: &mut H2Upstream, core: &mut Core) -> Result<(), PeerGone> {
    if h.connecting_since.is_some() {
        return Ok(());
    }
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
    }
    h.io.flush(&mut core.buffers)?;
    let pending = !h.out.is_empty() || h.io.output_len() > 0;
    h.blocked_since = match pending {
        true => h.blocked_since.or(Some(core.now)),
        false => None,
    };
    if h.out.is_empty() && h.streams.is_empty() {
        h.out = Vec::new();
    }
    Ok(())
}

/// The connection failed: streams whose exchanges had not handed their requests over are
/// retried as after a failed connect, the others fail their exchange's next read.
fn fail(conns: &mut Slab<Conn>, core: &mut Core, key: usize, reason: Failure, why: &str) {
    let Some(h) = h2_mut(conns, key) else {
        return;
    };
    debug!("HTTP/2 backend {}: {why}", h.addr);
    let streams = std::mem::take(&mut h.streams);
    close(conns, core, key);
    for s in streams {
        s.lost();
        let (ukey, serial) = s.upstream;
        match conns.get(ukey) {
            Some(Conn::Upstream(u)) if u.serial == serial => {
                if let UpstreamState::Connecting(owner) = u.state {
                    connect_failed(conns, core, owner, ukey, Some(reason), why);
                } else {
                    core.revisit.push(ukey);
                }
            }
            _ => {}
        }
    }
}

/// Closes the connection; its streams' exchanges find them reset.
pub fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::H2Upstream(mut h)) = conns.try_remove(key) else {
        return;
    };
    core.disarm(&mut h.timer);
    h.io.release_buffers(&mut core.buffers);
    let _ = core.registry.deregister(&mut h.io.sock);
    core.backends[h.backend].h2.retain(|&k| k != key);
    let m = &mut core.metrics.backends[h.backend];
    m.h2_connections = m.h2_connections.saturating_sub(1);
    for s in h.streams.drain(..) {
        s.lost();
        wake_upstream(conns, core, &s);
    }
}

/// `backend` left rotation or moved: its connections take no new stream, and close once
/// their streams are done.
pub fn close_backend(conns: &mut Slab<Conn>, core: &mut Core, backend: BackendId) {
    for key in core.backends[backend].h2.clone() {
        if let Some(h) = h2_mut(conns, key) {
            h.codec.go_away();
            core.revisit.push(key);
        }
    }
}

/// Whether the `Woken` entry `(key, serial)` is one of these connections; then it is
/// stepped.
pub fn woken(conns: &mut Slab<Conn>, core: &mut Core, (key, serial): (usize, u32)) -> bool {
    if !matches!(conns.get(key), Some(Conn::H2Upstream(h)) if h.serial == serial) {
        return false;
    }
    drive(conns, core, key);
    true
}
