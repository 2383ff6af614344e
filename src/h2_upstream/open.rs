//! Giving an exchange a stream: an `UpstreamConn` whose socket is a stream of one of its
//! backend's HTTP/2 connections, picked for room, or a new one while there are fewer than
//! `MAX_PER_BACKEND`.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use mio::net::TcpStream;
use slab::Slab;

use super::stream::Stream;
use super::{H2Upstream, MAX_PER_BACKEND, deadlines, h2_mut};
use crate::backend::BackendId;
use crate::conn::{Socket, StreamEnd, StreamIo};
use crate::event_loop::{Conn, Core};
use crate::h2::client::{ClientConnection, State};
use crate::h2::hpack::HeaderList;
use crate::h2::limits::Limits;
use crate::http::upstream::{Owner, insert_connecting};

/// A new stream to `backend` for `owner`: an `UpstreamConn` in `Connecting`, which its
/// connection moves on once there is room (`stream_connected`). `Err`: no connection
/// could be started.
pub(crate) fn open_stream(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (owner, server_timeout): (Owner, Duration),
    backend: BackendId,
) -> io::Result<usize> {
    let hkey = pick_connection(conns, core, backend)?;
    let Some(h) = h2_mut(conns, hkey) else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    let io = h.spare.pop().unwrap_or_else(|| {
        let io = StreamIo::new(
            (hkey, h.serial),
            Rc::clone(&core.h2_woken),
            (h.addr, h.addr),
        );
        Rc::new(RefCell::new(io))
    });
    let entry = conns.vacant_entry();
    let ukey = entry.key();
    let end = Socket::stream(StreamEnd(Rc::clone(&io)));
    let serial = insert_connecting(entry, core, end, backend, (owner, server_timeout));
    if let Some(h) = h2_mut(conns, hkey) {
        h.streams.push(Stream::new((ukey, serial), io));
        h.idle_since = None;
    }
    // Looked at once the exchange has handed its request over.
    core.revisit.push(hkey);
    Ok(ukey)
}

/// The connection with the most room among `backend`'s, a new one while there are fewer
/// than `MAX_PER_BACKEND`, or else the least loaded (its new stream waits).
fn pick_connection(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    backend: BackendId,
) -> io::Result<usize> {
    let mut open = 0;
    let mut roomy = None;
    let mut least = None;
    for &k in &core.backends[backend].h2 {
        let Some(Conn::H2Upstream(h)) = conns.get(k) else {
            continue;
        };
        if !matches!(h.codec.state(), State::AwaitingSettings | State::Open) {
            continue;
        }
        open += 1;
        let load = h.streams.len();
        if h.has_room() && roomy.is_none_or(|(_, l)| load < l) {
            roomy = Some((k, load));
        }
        if least.is_none_or(|(_, l)| load < l) {
            least = Some((k, load));
        }
    }
    match (roomy, least) {
        (Some((k, _)), _) => Ok(k),
        (None, Some((k, _))) if open >= MAX_PER_BACKEND => Ok(k),
        _ => connect(conns, core, backend),
    }
}

/// Starts a connection to `backend`.
fn connect(conns: &mut Slab<Conn>, core: &mut Core, backend: BackendId) -> io::Result<usize> {
    let addr = core.backends[backend].addr;
    let sock = TcpStream::connect(addr)?;
    // Over TLS only h2 is offered (ALPN); without TLS it is h2c with prior knowledge.
    let mut io = match &core.backends[backend].tls {
        Some(name) => {
            let session = core.tls.client_session_h2(name).map_err(io::Error::other)?;
            Socket::with_tls(sock, session)
        }
        None => Socket::new(sock),
    };
    let entry = conns.vacant_entry();
    let key = entry.key();
    core.register(&mut io.sock, key, 0)?;
    let _ = io.sock.set_nodelay(true);
    let (connect_timeout, server_timeout) = {
        let settings = core.settings(backend);
        (settings.connect_timeout, settings.server_timeout)
    };
    let h = H2Upstream {
        io,
        backend,
        serial: core.next_serial(),
        timer: None,
        timer_at: None,
        connecting_since: Some(core.now),
        codec: ClientConnection::new(Limits::default(), core.now),
        streams: Vec::new(),
        out: Vec::new(),
        list: HeaderList::new(),
        idle_since: None,
        blocked_since: None,
        connect_timeout,
        server_timeout,
        addr,
        spare: Vec::new(),
    };
    entry.insert(Conn::H2Upstream(Box::new(h)));
    core.backends[backend].h2.push(key);
    core.metrics.backends[backend].h2_connections += 1;
    if let Some(h) = h2_mut(conns, key) {
        deadlines::arm_timer(h, core, key);
    }
    Ok(key)
}
