//! A pipe's backend side: connecting to the next backend the strategy picks (TLS and a
//! PROXY header included), counting what failed, and passing a reset on.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use log::{debug, warn};
use mio::net::TcpStream;

use crate::backend::{BackendId, Tried};
use crate::conn::Socket;
use crate::event_loop::Core;
use crate::http::upstream::backend_socket;
use crate::limits::is_local_exhaustion;
use crate::metrics::Failure;
use crate::pool::PoolId;
use crate::probe::observe;
use crate::proxy_protocol::Addresses;
use crate::strategy::{Members, PickContext};

/// Starts a connect to the next backend the strategy picks that `tried` does not hold yet,
/// as long as `--retries` allows; the new socket is registered on side 1 of `key`.
pub(super) fn connect_next(
    core: &mut Core,
    (key, pool): (usize, PoolId),
    client: &Socket,
    peer: SocketAddr,
    tried: &mut Tried,
) -> Option<(BackendId, Socket)> {
    let ctx = PickContext {
        client_ip: Some(peer.ip()),
        path: b"",
    };
    let settings = &core.pools[pool].settings;
    let addresses = match settings.send_proxy {
        Some(_) => client.sock.local_addr().ok().map(|destination| Addresses {
            source: peer,
            destination,
        }),
        None => None,
    };
    let retries = settings.retries as usize;
    while tried.count() <= retries {
        let p = &mut core.pools[pool];
        let members = Members::of(&core.backends, &p.members);
        let id = p.strategy.pick(members, &ctx, &|id| !tried.contains(id))?;
        tried.add(id);
        let connected = TcpStream::connect(core.backends[id].addr)
            .and_then(|sock| backend_socket(core, sock, id, addresses));
        let mut sock = match connected {
            Ok(s) => s,
            // lb's own shortage: every backend would fail alike, and none is to blame.
            Err(e) if is_local_exhaustion(&e) => {
                core.exhausted("connecting to a backend", &e);
                return None;
            }
            Err(e) => {
                connect_failed(core, id, Failure::Connect, &e.to_string());
                continue;
            }
        };
        if let Err(e) = core.register(&mut sock.sock, key, 1) {
            warn!("cannot register backend connection: {e}");
            return None;
        }
        let _ = sock.sock.set_nodelay(true);
        core.backends[id].request_started();
        core.metrics.backends[id].connections += 1;
        return Some((id, sock));
    }
    None
}

/// Counts a failed connect and feeds it to the passive health check.
pub(super) fn connect_failed(core: &mut Core, id: BackendId, failure: Failure, why: &str) {
    // Per attempt: debug. The DOWN transition says it once, at warn.
    debug!(
        "connect to backend {} failed: {why}",
        core.backends[id].label
    );
    observe(core, id, Some(failure), why);
}

/// The backend connection `id` is gone: it no longer counts as open.
pub(super) fn release_backend(core: &mut Core, id: BackendId) {
    core.backends[id].request_done();
    core.metrics.backends[id].connections -= 1;
}

/// Makes the coming close of `sock` send a reset rather than a FIN: how a reset from one
/// peer reaches the other.
pub(super) fn reset_on_close(sock: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open while `sock` lives, and the option value is a
    // `linger` of exactly the length passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        debug!("cannot set SO_LINGER: {}", io::Error::last_os_error());
    }
}
