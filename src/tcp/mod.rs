//! L4 mode: each client connection is paired with one backend connection, and bytes pass
//! both ways unread. One slab entry owns both sockets (the client on side 0 of its token,
//! the backend on side 1), so a pipe never has to look for its other half.
//!
//! Each direction has at most one pooled buffer: bytes read from one side wait there until
//! the other side takes them, and while it is full that side is not read. Its readiness
//! flag stays set, so reading resumes as soon as the other side drains it.
//!
//! Moving bytes kernel-side with splice(2) was measured against this and left out: on a
//! 2-CPU loopback, 4 GiB one way, a splice relay was no faster (1.0-1.4 GB/s against
//! 0.8-1.3) and saved about a third of the relay's CPU, for four more descriptors per
//! pair and a second relay path to keep right under back-pressure and half-close. On small
//! requests it costs more: HAProxy mode tcp with `option splice-request` and
//! `splice-response` used 19.1-20.6 µs of CPU per request against 16.4-16.5 µs without
//! (wrk -c50 keep-alive, same run, 2026-11-21).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpStream;
use slab::Slab;

use crate::access_log::Entry;
use crate::backend::BackendId;
use crate::backend::Tried;
use crate::conn::{Filled, Socket};
use crate::event_loop::{Conn, Core, STEP_BUDGET};
use crate::front::FrontId;
use crate::held_sends::Destination;
use crate::metrics::Failure;
use crate::pool::PoolId;
use crate::timer::TimerId;

mod backend_side;
mod relay;
mod tunnel;

use backend_side::{connect_failed, connect_next, release_backend, reset_on_close};

pub use tunnel::tunnel;

use relay::{Broken, Flow, relay};

/// A client connection and the backend connection it is paired with.
pub struct TcpPipe {
    client: Socket,
    /// The backend being connected to, or connected.
    backend: Socket,
    backend_id: BackendId,
    peer: SocketAddr,
    pub serial: u32,
    timer: Option<TimerId>,
    state: PipeState,
    /// An HTTP exchange turned into a tunnel by a 101, not a TCP-mode connection.
    tunnel: bool,
    /// When the client was accepted, and the bytes moved each way since: its log line.
    opened: Instant,
    sent: u64,
    received: u64,
}

enum PipeState {
    /// A connect to the backend is under way since `since`. What the client sends meanwhile
    /// is read and kept: no backend has seen it, so it can go to whichever one answers.
    Connecting { tried: Tried, since: Instant },
    /// Both connected; `last_moved` is when bytes last moved either way (idle timeout).
    Open {
        up: Flow,
        down: Flow,
        last_moved: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Backend,
}

/// What the driver does after one step of a pipe.
enum Step {
    Wait,
    Again,
    /// Both directions finished (or idle too long): close both sides.
    Close,
    /// This side failed: the other side gets a reset, then both close.
    Reset(Side),
    ConnectFailed(Failure, String),
}

pub fn accept(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    mut sock: TcpStream,
    peer: SocketAddr,
    (front, pool): (FrontId, PoolId),
) {
    core.metrics.client_connections_total += 1;
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.register(&mut sock, key, 0) {
        warn!("cannot register client {peer}: {e}");
        return;
    }
    // Bytes go on as they arrive: Nagle would add a delay the endpoints did not ask for.
    let _ = sock.set_nodelay(true);
    let Some(mut client) = core.client_socket(sock, front) else {
        return;
    };
    let mut tried = Tried::default();
    let Some((backend_id, backend)) = connect_next(core, (key, pool), &client, peer, &mut tried)
    else {
        warn!("no backend could take client {peer}: closing it");
        let _ = core.registry.deregister(&mut client.sock);
        let entry = Entry::Tcp {
            backend: None,
            sent: 0,
            received: 0,
            end: "no backend",
        };
        core.access.write(peer, Duration::ZERO, &entry);
        return;
    };
    let serial = core.next_serial();
    let mut pipe = TcpPipe {
        client,
        backend,
        backend_id,
        peer,
        serial,
        timer: None,
        state: PipeState::Connecting {
            tried,
            since: core.now,
        },
        tunnel: false,
        opened: core.now,
        sent: 0,
        received: 0,
    };
    let timeout = core.pools[pool].settings.connect_timeout;
    core.arm(&mut pipe.timer, timeout, key, serial);
    entry.insert(Conn::Pipe(Box::new(pipe)));
    core.client_opened();
}

/// One of the pipe's sockets had an event; `side` is the low bit of its token.
pub fn ready(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    side: usize,
    event: &mio::event::Event,
) {
    let Some(Conn::Pipe(p)) = conns.get_mut(key) else {
        return;
    };
    let side = if side == 0 {
        Side::Client
    } else {
        Side::Backend
    };
    p.socket(side).on_event(event);
    // A reset on a side whose reading is over is met by no read: pass it on after the
    // step. Not for a connecting backend: the step reads its error, and may replace it.
    let watch =
        event.is_error() && (side == Side::Client || matches!(p.state, PipeState::Open { .. }));
    drive(conns, core, key, None);
    if watch
        && let Some(Conn::Pipe(p)) = conns.get_mut(key)
        && !matches!(p.socket(side).sock.take_error(), Ok(None))
    {
        close(conns, core, key, Some(side));
    }
}

pub fn timer_fired(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(Conn::Pipe(p)) = conns.get_mut(key) else {
        return;
    };
    p.timer = None;
    match p.state {
        PipeState::Connecting { .. } => {
            let step = Step::ConnectFailed(Failure::Timeout, "connect timed out".into());
            drive(conns, core, key, Some(step));
        }
        PipeState::Open { last_moved, .. } => {
            // The timer is not pushed back on every byte; it checks when it fires instead.
            let idle = core.now.saturating_duration_since(last_moved);
            let limit = p.idle_limit(core);
            if idle >= limit {
                debug!("pipe from {} idle for {idle:?}: closing", p.peer);
                close(conns, core, key, None);
            } else {
                core.arm(&mut p.timer, limit - idle, key, p.serial);
            }
        }
    }
}

/// Steps pipe `key`, starting with `first` if given, until it waits for an event or is closed.
fn drive(conns: &mut Slab<Conn>, core: &mut Core, key: usize, mut first: Option<Step>) {
    loop {
        let Some(Conn::Pipe(p)) = conns.get_mut(key) else {
            return;
        };
        let step = match first.take() {
            Some(step) => step,
            None => p.step(core, key),
        };
        match step {
            Step::Wait => return,
            Step::Again => {}
            Step::Close => return close(conns, core, key, None),
            Step::Reset(side) => return close(conns, core, key, Some(side)),
            Step::ConnectFailed(failure, why) => {
                connect_failed(core, p.backend_id, failure, &why);
                if !p.reconnect(core, key) {
                    warn!("no backend could take client {}: closing it", p.peer);
                    return close(conns, core, key, None);
                }
            }
        }
    }
}

/// Steps pipe `key` again: it used up its budget on its last turn.
pub fn resume(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    drive(conns, core, key, None);
}

/// Removes pipe `key`. If `broken` names a side that failed, the other side is reset.
fn close(conns: &mut Slab<Conn>, core: &mut Core, key: usize, broken: Option<Side>) {
    let Some(Conn::Pipe(mut p)) = conns.try_remove(key) else {
        return;
    };
    core.disarm(&mut p.timer);
    let open = matches!(p.state, PipeState::Open { .. });
    let end = match broken {
        Some(Side::Client) => {
            debug!("client {} reset: resetting its backend", p.peer);
            p.backend.sock.tcp().iter().for_each(|s| reset_on_close(s));
            "client reset"
        }
        Some(Side::Backend) => {
            debug!(
                "backend {} reset: resetting client {}",
                core.backends[p.backend_id].label, p.peer
            );
            core.metrics.failure(p.backend_id, Failure::Reset);
            p.client.sock.tcp().iter().for_each(|s| reset_on_close(s));
            "backend reset"
        }
        None if open => "closed",
        None => "no backend",
    };
    let took = core.now.saturating_duration_since(p.opened);
    if open {
        core.metrics.backends[p.backend_id]
            .session_duration
            .observe(took);
    }
    let entry = Entry::Tcp {
        backend: open.then_some(core.backends[p.backend_id].label.as_str()),
        sent: p.sent,
        received: p.received,
        end,
    };
    core.access.write(p.peer, took, &entry);
    // Both sockets leave the poll as they close (nothing else holds them).
    p.client.release_buffers(&mut core.buffers);
    p.backend.release_buffers(&mut core.buffers);
    release_backend(core, p.backend_id);
    core.client_closed();
    if p.tunnel {
        core.metrics.tunnels_open -= 1;
    }
}

impl TcpPipe {
    fn socket(&mut self, side: Side) -> &mut Socket {
        match side {
            Side::Client => &mut self.client,
            Side::Backend => &mut self.backend,
        }
    }

    /// No bytes either way for this long closes the pipe: --idle-timeout, but a TLS
    /// client has only --client-timeout to finish its handshake.
    fn idle_limit(&self, core: &Core) -> std::time::Duration {
        if self.client.handshaking() {
            core.cfg.client_timeout
        } else {
            core.cfg.idle_timeout
        }
    }

    fn step(&mut self, core: &mut Core, key: usize) -> Step {
        match self.state {
            PipeState::Connecting { since, .. } => self.connecting(core, key, since),
            PipeState::Open { .. } => self.pump(core, key),
        }
    }

    fn connecting(&mut self, core: &mut Core, key: usize, since: Instant) -> Step {
        if self.client.fill(&mut core.buffers) == Filled::Failed {
            return Step::Reset(Side::Client);
        }
        if !(self.backend.writable || self.backend.readable) {
            return Step::Wait;
        }
        match self.backend.sock.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Step::ConnectFailed(Failure::Connect, e.to_string()),
        }
        match self.backend.sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Wait,
            Err(e) => return Step::ConnectFailed(Failure::Connect, e.to_string()),
        }
        let took = core.now.saturating_duration_since(since);
        let id = self.backend_id;
        core.metrics.backends[id].sessions += 1;
        core.backends[id].record_response_time(took.as_micros() as u64);
        core.health.observed(&mut core.backends, id, true);
        debug!(
            "pipe from {} to {} open",
            self.peer, core.backends[id].label
        );
        self.state = PipeState::Open {
            up: Flow::Streaming,
            down: Flow::Streaming,
            last_moved: core.now,
        };
        // A PROXY header goes now, for protocols where the server speaks first.
        if self.backend.flush(&mut core.buffers).is_err() {
            return Step::Reset(Side::Backend);
        }
        let limit = self.idle_limit(core);
        core.arm(&mut self.timer, limit, key, self.serial);
        Step::Again
    }

    /// Replaces a backend connection that failed to connect by one to another backend.
    /// False when there is none left to try.
    fn reconnect(&mut self, core: &mut Core, key: usize) -> bool {
        let PipeState::Connecting { tried, since } = &mut self.state else {
            return false;
        };
        // Out of the poll first, so that its last events cannot reach its successor.
        let _ = core.registry.deregister(&mut self.backend.sock);
        let pool = core.backends[self.backend_id].pool;
        let Some((id, sock)) = connect_next(core, (key, pool), &self.client, self.peer, tried)
        else {
            return false;
        };
        *since = core.now;
        release_backend(core, self.backend_id);
        self.backend = sock;
        self.backend_id = id;
        let timeout = core.pools[pool].settings.connect_timeout;
        core.arm(&mut self.timer, timeout, key, self.serial);
        true
    }

    /// Moves bytes both ways until neither can move now.
    fn pump(&mut self, core: &mut Core, key: usize) -> Step {
        let PipeState::Open {
            up,
            down,
            last_moved,
        } = &mut self.state
        else {
            return Step::Wait;
        };
        let pool = &mut core.buffers;
        let send = !core.sends.holding();
        let sent = match relay(
            &mut self.client,
            &mut self.backend,
            up,
            pool,
            STEP_BUDGET,
            send,
        ) {
            Ok(n) => n,
            Err(Broken::Source) => return Step::Reset(Side::Client),
            Err(Broken::Destination) => return Step::Reset(Side::Backend),
        };
        let received = match relay(
            &mut self.backend,
            &mut self.client,
            down,
            pool,
            STEP_BUDGET,
            send,
        ) {
            Ok(n) => n,
            Err(Broken::Source) => return Step::Reset(Side::Backend),
            Err(Broken::Destination) => return Step::Reset(Side::Client),
        };
        let counters = &mut core.metrics.backends[self.backend_id];
        counters.bytes_sent += sent;
        counters.bytes_received += received;
        self.sent += sent;
        self.received += received;
        if sent + received > 0 {
            *last_moved = core.now;
        }
        if *up == Flow::Finished && *down == Flow::Finished {
            Step::Close
        } else {
            if !send {
                if self.client.input_len() > 0 {
                    core.sends.later(Destination::Backend(self.backend_id), key);
                } else if self.backend.input_len() > 0 {
                    core.sends.later(Destination::Client, key);
                }
            }
            if sent >= STEP_BUDGET || received >= STEP_BUDGET {
                // More may be waiting; let the other connections have a turn first.
                core.revisit.push(key);
            }
            Step::Wait
        }
    }
}
