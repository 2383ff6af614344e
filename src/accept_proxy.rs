//! `--accept-proxy`: a new connection must start with a PROXY protocol header, read here
//! before anything else (before TLS, before HTTP). The header's source address then
//! stands for the client everywhere: X-Forwarded-For, hash-source, the access log.
//!
//! The header is peeked at and only its own bytes are read, so what follows it stays in
//! the socket for the HTTP or TLS code that takes the connection over.

use std::io::{self, Read};
use std::net::SocketAddr;

use log::debug;
use mio::net::TcpStream;
use slab::Slab;

use crate::accept::open_client;
use crate::event_loop::{Conn, Core};
use crate::front::FrontId;
use crate::proxy_protocol::{self, Parsed};
use crate::timer::TimerId;

/// A connection whose PROXY header has not arrived in full yet.
pub struct AwaitingProxy {
    sock: TcpStream,
    /// The address the connection really comes from: the sender of the header.
    peer: SocketAddr,
    /// The listener it came through.
    front: FrontId,
    pub serial: u32,
    timer: Option<TimerId>,
}

/// A new connection, whose place under --max-connections is taken: it waits for its
/// PROXY header, or gives the place back at once.
pub fn accept(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    sock: TcpStream,
    peer: SocketAddr,
    front: FrontId,
) {
    if !wait_for_header(conns, core, sock, peer, front) {
        core.shared.close_client();
    }
}

fn wait_for_header(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    mut sock: TcpStream,
    peer: SocketAddr,
    front: FrontId,
) -> bool {
    let allowed = core.fronts[front]
        .accept_proxy
        .as_ref()
        .is_some_and(|from| from.is_empty() || from.iter().any(|range| range.contains(peer.ip())));
    if !allowed {
        debug!("{peer} is not in --accept-proxy-from: closing");
        core.metrics.proxy_headers_refused += 1;
        return false;
    }
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.register(&mut sock, key, 0) {
        debug!("cannot register client {peer}: {e}");
        return false;
    }
    let serial = core.next_serial();
    let mut conn = AwaitingProxy {
        sock,
        peer,
        front,
        serial,
        timer: None,
    };
    // Counted as a client from now on: it holds a descriptor like one.
    core.client_opened();
    core.arm(&mut conn.timer, core.cfg.client_timeout, key, serial);
    entry.insert(Conn::AwaitingProxy(conn));
    ready(conns, core, key);
    true
}

/// Takes the connection out of the slab; unless it goes on as a client (`handed`), its
/// place under --max-connections is given back.
fn remove(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    handed: bool,
) -> Option<AwaitingProxy> {
    let Some(Conn::AwaitingProxy(mut conn)) = conns.try_remove(key) else {
        return None;
    };
    core.disarm(&mut conn.timer);
    let _ = core.registry.deregister(&mut conn.sock);
    match handed {
        true => core.clients_open -= 1,
        false => core.client_closed(),
    }
    Some(conn)
}

/// The header did not come in time: the connection closes.
pub fn timed_out(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(conn) = remove(conns, core, key, false) {
        debug!("{}: no PROXY header in --client-timeout", conn.peer);
        core.metrics.proxy_headers_refused += 1;
    }
}

pub fn ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::AwaitingProxy(conn)) = conns.get_mut(key) else {
        return;
    };
    let mut head = [0u8; proxy_protocol::MAX_HEADER];
    let seen = match conn.sock.peek(&mut head) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return ready(conns, core, key),
        Err(_) => None,
    };
    let parsed = match seen {
        None => Err("closed before its PROXY header"),
        Some(n) => proxy_protocol::parse(&head[..n]),
    };
    match parsed {
        // The rest comes as a new edge; --client-timeout bounds the wait.
        Ok(Parsed::Partial) => {}
        Err(why) => {
            if let Some(conn) = remove(conns, core, key, false) {
                debug!("{}: {why}: closing", conn.peer);
                core.metrics.proxy_headers_refused += 1;
            }
        }
        Ok(Parsed::Header { len, addresses }) => {
            let Some(mut conn) = remove(conns, core, key, true) else {
                return;
            };
            // Exactly the header's bytes, which the peek saw are there.
            if conn.sock.read_exact(&mut head[..len]).is_err() {
                debug!("{}: lost while reading its PROXY header", conn.peer);
                core.shared.close_client();
                return;
            }
            let peer = addresses.map_or(conn.peer, |a| a.source);
            open_client(conns, core, conn.sock, peer, conn.front);
        }
    }
}
