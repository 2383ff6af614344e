//! Taking new clients off a listening socket: each goes first to `--accept-proxy`'s wait
//! for its PROXY header, or straight to HTTP or TCP mode, over TLS if it came to a TLS
//! listener.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use log::error;
use mio::net::{TcpListener, TcpStream};
use slab::Slab;

use crate::accept_proxy;
use crate::config::model::Protocol;
use crate::front::FrontId;
use crate::http;
use crate::limits::is_local_exhaustion;
use crate::state::{Conn, Core};
use crate::tcp;

/// After accept() fails for want of descriptors (or for any reason but the client's), it
/// is tried again this often.
pub const RETRY: Duration = Duration::from_millis(100);

/// A worker that left clients of a burst to the others accepts again after this, if they
/// have not taken them.
pub const YIELD_PAUSE: Duration = Duration::from_millis(2);

/// Whether new clients are taken from the listen backlog; while not, they wait there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepting {
    Open,
    /// At --max-connections: resumed when a client leaves.
    Full,
    /// accept() failed, most likely out of descriptors: resumed on a timer, since the
    /// clients left in the backlog bring no new readiness edge.
    Failing,
    /// With several workers: this one took its share of a burst and left the rest to the
    /// others, whom it wakes; it tries again after `YIELD_PAUSE`, since no new edge may
    /// come.
    Yielded,
}

/// Accepts from `listener` until its queue is empty (`Open`), or until it stops at
/// --max-connections (`Full`) or on an error (`Failing`), with clients left waiting.
/// A client's place under --max-connections, which counts every worker's clients, is
/// taken before accept() and given back unless a client holds it. With several workers,
/// one that holds more than its share of the clients stops after one (`Yielded`), so that
/// a burst is shared.
pub fn accept_all(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    listener: &TcpListener,
    front: FrontId,
) -> Accepting {
    let workers = core.shared.workers();
    let mut first = true;
    loop {
        if !first && workers > 1 && core.clients_open * workers > core.shared.clients() {
            return Accepting::Yielded;
        }
        first = false;
        if !core.shared.open_client() {
            return Accepting::Full;
        }
        let e = match listener.accept() {
            Ok((sock, peer)) if core.fronts[front].accept_proxy.is_some() => {
                accept_proxy::accept(conns, core, sock, peer, front);
                continue;
            }
            Ok((sock, peer)) => {
                open_client(conns, core, sock, peer, front);
                continue;
            }
            Err(e) => e,
        };
        core.shared.close_client();
        match e {
            e if e.kind() == io::ErrorKind::WouldBlock => return Accepting::Open,
            // This client is gone already; the next one may be fine.
            e if matches!(
                e.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
            ) => {}
            e => {
                if is_local_exhaustion(&e) {
                    core.exhausted("accepting clients", &e);
                } else {
                    error!("accept failed: {e}");
                }
                return Accepting::Failing;
            }
        }
    }
}

/// Hands a new client connection, whose place under --max-connections is taken, to HTTP
/// or TCP mode; `peer` is where it comes from (what a PROXY header said, with
/// `--accept-proxy`). The place is given back if the mode does not keep the client.
pub fn open_client(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    sock: TcpStream,
    peer: SocketAddr,
    front: FrontId,
) {
    let before = core.clients_open;
    match (core.fronts[front].protocol, core.fronts[front].pool) {
        (Protocol::Tcp, Some(pool)) => tcp::accept(conns, core, sock, peer, (front, pool)),
        _ => http::client::accept(conns, core, sock, peer, front),
    }
    if core.clients_open == before {
        core.shared.close_client();
    }
}
