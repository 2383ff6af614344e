//! Taking new clients off a listening socket: each goes first to `--accept-proxy`'s wait
//! for its PROXY header, or straight to HTTP or TCP mode, over TLS if it came to
//! `--tls-listen`.

use std::io;
use std::net::SocketAddr;

use log::error;
use mio::net::{TcpListener, TcpStream};
use slab::Slab;

use crate::accept_proxy;
use crate::config::Mode;
use crate::http;
use crate::state::{Conn, Core};
use crate::tcp;

/// Accepts from `listener` until its queue is empty; true if it stopped at
/// --max-connections instead, with clients left waiting in the backlog.
pub fn accept_all(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    listener: &TcpListener,
    tls: bool,
) -> bool {
    loop {
        if core.clients_open >= core.cfg.max_connections {
            return true;
        }
        match listener.accept() {
            Ok((sock, peer)) if core.cfg.accept_proxy.is_some() => {
                accept_proxy::accept(conns, core, sock, peer, tls);
            }
            Ok((sock, peer)) => open_client(conns, core, sock, peer, tls),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors or a client that reset before accept: log, go on.
                error!("accept failed: {e}");
                return false;
            }
        }
    }
}

/// Hands a new client connection to HTTP or TCP mode; `peer` is where it comes from
/// (what a PROXY header said, with `--accept-proxy`).
pub fn open_client(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    sock: TcpStream,
    peer: SocketAddr,
    tls: bool,
) {
    match core.cfg.mode {
        Mode::Http => http::client::accept(conns, core, sock, peer, tls),
        Mode::Tcp => tcp::accept(conns, core, sock, peer, tls),
    }
}
