//! An HTTP exchange that a `101 Switching Protocols` ended becomes a pipe: the client's
//! socket and the backend connection move, with their buffers, readiness and TLS
//! sessions, into one `TcpPipe`, and the relay carries the new protocol (WebSocket, ...)
//! with its back-pressure, half-close and --idle-timeout.

use log::debug;
use slab::Slab;

use super::{Flow, PipeState, TcpPipe, drive};
use crate::event_loop::{Conn, Core, token};

/// Turns client `client` and its backend connection `upstream` into a tunnel. The 101
/// has been written to the client; bytes either side sent after it wait in the input
/// buffers, where the relay takes them from.
pub fn tunnel(conns: &mut Slab<Conn>, core: &mut Core, client: usize, upstream: usize) {
    let (Some(Conn::Client(_)), Some(Conn::Upstream(_))) = (conns.get(client), conns.get(upstream))
    else {
        return;
    };
    let (Some(Conn::Client(mut c)), Some(Conn::Upstream(mut u))) =
        (conns.try_remove(client), conns.try_remove(upstream))
    else {
        return;
    };
    core.disarm(&mut c.timer);
    core.disarm(&mut u.timer);
    let entry = conns.vacant_entry();
    let key = entry.key();
    let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
    let moved = core
        .registry
        .reregister(&mut c.io.sock, token(key, 0), interest)
        .and_then(|()| {
            core.registry
                .reregister(&mut u.io.sock, token(key, 1), interest)
        });
    let serial = core.next_serial();
    let mut pipe = TcpPipe {
        client: c.io,
        backend: u.io,
        backend_id: u.backend,
        peer: c.peer,
        serial,
        timer: None,
        state: PipeState::Open {
            up: Flow::Streaming,
            down: Flow::Streaming,
            last_moved: core.now,
        },
        tunnel: true,
        opened: core.now,
        sent: 0,
        received: 0,
    };
    core.metrics.upgrades_total += 1;
    core.metrics.tunnels_open += 1;
    core.arm(&mut pipe.timer, core.cfg.idle_timeout, key, serial);
    entry.insert(Conn::Pipe(Box::new(pipe)));
    if let Err(e) = moved {
        debug!("cannot move an upgraded connection into a tunnel: {e}");
        return super::close(conns, core, key, None);
    }
    drive(conns, core, key, None);
}
