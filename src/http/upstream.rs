//! Backend connections: connecting, the keep-alive pool, and their timers. A connection
//! serves whoever owns it now: a client's exchange or a fan-out copy.

use std::io;
use std::time::{Duration, Instant};

use log::debug;
use mio::net::TcpStream;
use slab::Slab;

use super::client::{ClientConn, ClientState, client_mut, drive};
use super::exchange::{fail_exchange, retry_elsewhere, server_timed_out};
use crate::backend::BackendId;
use crate::config::model::BackendProtocol;
use crate::conn::{Filled, Socket};
use crate::event_loop::{Conn, Core};
use crate::fanout;
use crate::h2_upstream;
use crate::metrics::Failure;
use crate::probe::observe;
use crate::proxy_protocol;
use crate::timer::TimerId;

pub struct UpstreamConn {
    pub io: Socket,
    pub backend: BackendId,
    /// Its backend's `moves` when it connected: another count means it connected to an
    /// address the backend's name no longer has.
    pub moves: u32,
    pub serial: u32,
    pub state: UpstreamState,
    pub timer: Option<TimerId>,
    /// When the server timeout was last pushed back.
    pub armed_at: Instant,
    /// How long its backend may stay silent on what it carries now (its owner's route's
    /// timeout, or its pool's).
    pub server_timeout: Duration,
    /// It has served a request before: a failure before any answer may just mean the
    /// backend closed it while it sat in the pool.
    pub reused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Non-blocking connect under way.
    Connecting(Owner),
    /// Carrying a request.
    Busy(Owner),
    /// In its backend's keep-alive pool.
    Idle,
}

/// Whose request a backend connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The exchange of client `key`.
    Client(usize),
    /// Copy `copy` of POST fan-out job `job`.
    Copy { job: usize, copy: usize },
}

pub(crate) fn upstream_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut UpstreamConn> {
    match conns.get_mut(key) {
        Some(Conn::Upstream(u)) => Some(u),
        _ => None,
    }
}

pub(crate) fn close_upstream(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Upstream(mut u)) = conns.try_remove(key) {
        core.disarm(&mut u.timer);
        // Its socket leaves the poll as it closes: no epoll_ctl call.
        u.io.release_buffers(&mut core.buffers);
        if u.state == UpstreamState::Idle {
            core.backends[u.backend].idle.retain(|&k| k != key);
        }
        core.metrics.backends[u.backend].connections -= 1;
    }
}

/// Closes the idle keep-alive connections to `backend`: it left rotation or moved. Its
/// HTTP/2 connections finish their streams and close.
pub(crate) fn close_pool(conns: &mut Slab<Conn>, core: &mut Core, backend: BackendId) {
    for ukey in std::mem::take(&mut core.backends[backend].idle) {
        close_upstream(conns, core, ukey);
    }
    h2_upstream::close_backend(conns, core, backend);
}

/// Takes an idle keep-alive connection to `backend` from its pool for `owner`, if any;
/// `deadline` is that of the gRPC call it is for.
pub(crate) fn take_pooled(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    backend: BackendId,
    (owner, server_timeout): (Owner, Duration),
    deadline: Option<Instant>,
) -> Option<usize> {
    // Its pool turned to h2 at a reload: what it kept speaks HTTP/1.1.
    if core.settings(backend).backend_protocol == BackendProtocol::H2 {
        for ukey in std::mem::take(&mut core.backends[backend].idle) {
            close_upstream(conns, core, ukey);
        }
        return None;
    }
    let b = &mut core.backends[backend];
    while let Some(ukey) = b.idle.pop() {
        b.idle_low = b.idle_low.min(b.idle.len());
        if let Some(u) = upstream_mut(conns, ukey) {
            u.state = UpstreamState::Busy(owner);
            u.server_timeout = server_timeout;
            arm_server_timer(core, u, ukey, deadline);
            note_busy(core, backend);
            return Some(ukey);
        }
    }
    None
}

/// Connections to `backend` that carry something now: open, less idle.
fn busy(core: &Core, backend: BackendId) -> usize {
    let open = usize::try_from(core.metrics.backends[backend].connections).unwrap_or(usize::MAX);
    open.saturating_sub(core.backends[backend].idle.len())
}

/// One more connection to `backend` went to work: the peak may have risen.
fn note_busy(core: &mut Core, backend: BackendId) {
    let now = busy(core, backend);
    let b = &mut core.backends[backend];
    b.busy_peak = b.busy_peak.max(now);
}

/// Starts a non-blocking connect to `backend` for `owner`; the connection reports to
/// its owner once connected, or through `connect_failed`.
pub(crate) fn connect(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (owner, server_timeout): (Owner, Duration),
    backend: BackendId,
) -> io::Result<usize> {
    if core.settings(backend).backend_protocol == BackendProtocol::H2 {
        return h2_upstream::open_stream(conns, core, (owner, server_timeout), backend);
    }
    let source = match owner {
        Owner::Client(key) if core.settings(backend).send_proxy.is_some() => {
            client_mut(conns, key).and_then(|c| c.addresses())
        }
        // A POST copy is lb's own delivery, often retried after its client left; the
        // client's address is in its X-Forwarded-For.
        _ => None,
    };
    let sock = TcpStream::connect(core.backends[backend].addr)?;
    let mut io = backend_socket(core, sock, backend, source)?;
    let entry = conns.vacant_entry();
    let ukey = entry.key();
    core.register(&mut io.sock, ukey, 0)?;
    let _ = io.sock.set_nodelay(true);
    insert_connecting(entry, core, io, backend, (owner, server_timeout));
    Ok(ukey)
}

/// Puts a backend connection for `owner`, whose connect (or HTTP/2 stream) is under way,
/// into its slab entry, timed by the connect timeout; returns its serial.
pub(crate) fn insert_connecting(
    entry: slab::VacantEntry<'_, Conn>,
    core: &mut Core,
    io: Socket,
    backend: BackendId,
    (owner, server_timeout): (Owner, Duration),
) -> u32 {
    let ukey = entry.key();
    let serial = core.next_serial();
    let mut u = UpstreamConn {
        io,
        backend,
        moves: core.backends[backend].moves,
        serial,
        state: UpstreamState::Connecting(owner),
        timer: None,
        armed_at: core.now,
        server_timeout,
        reused: false,
    };
    let timeout = core.settings(backend).connect_timeout;
    core.arm(&mut u.timer, timeout, ukey, serial);
    entry.insert(Conn::Upstream(u));
    core.metrics.backends[backend].connections += 1;
    note_busy(core, backend);
    serial
}

/// How a new connection to `backend` is wrapped: TLS for an `https://` backend, and a
/// PROXY header first with `--send-proxy`. `source` is the client it is opened for.
pub fn backend_socket(
    core: &Core,
    sock: TcpStream,
    backend: BackendId,
    source: Option<proxy_protocol::Addresses>,
) -> io::Result<Socket> {
    let mut io = match &core.backends[backend].tls {
        Some(name) => {
            let session = core.tls.client_session(name).map_err(io::Error::other)?;
            Socket::with_tls(sock, session)
        }
        None => Socket::new(sock),
    };
    if let Some(version) = core.settings(backend).send_proxy {
        // Without a client's addresses the header says the connection is lb's own.
        let mut header = Vec::new();
        proxy_protocol::write(version, source, &mut header);
        io.send_first(header);
    }
    Ok(io)
}

/// Puts a backend connection back in its pool, or closes it (also when its backend is
/// out of rotation: drained, in maintenance or removed, or moved to another address while
/// this connection was busy, when its idle ones were closed). Beyond `pool_size` idle
/// ones it is kept while fewer are idle than were busy at once lately: under a load of
/// more requests in flight than that, closing it only meant connecting again for the
/// next request (HTTP/2 clients' thousand streams: the answers of a turn all come back
/// before the next requests arrive). `trim_idle` closes those that then go unused.
pub(crate) fn release_upstream(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    ukey: usize,
    reusable: bool,
) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let backend = u.backend;
    let b = &core.backends[backend];
    // A connection that began with a PROXY header speaks for one client only.
    let settings = core.settings(backend);
    let private = settings.send_proxy.is_some();
    // An HTTP/2 stream serves one exchange; its connection is what is reused.
    let stream = u.io.sock.is_stream();
    let moved = u.moves != b.moves;
    let room =
        b.idle.len() < settings.pool_size || (settings.pool_size > 0 && b.idle.len() < b.busy_peak);
    if !reusable || private || stream || moved || !b.pools() || !room {
        close_upstream(conns, core, ukey);
        return;
    }
    u.state = UpstreamState::Idle;
    u.reused = true;
    core.disarm(&mut u.timer);
    u.io.release_buffers_keeping_size(&mut core.buffers);
    core.backends[backend].idle.push(ukey);
}

/// Housekeeping: closes, for each backend, half of the idle connections beyond its
/// `pool_size` that no request took since the last call, the longest idle first (all at
/// once would close some that a steady load takes only now and then); the peak of busy
/// ones starts again from those busy now.
pub(crate) fn trim_idle(conns: &mut Slab<Conn>, core: &mut Core) {
    for backend in 0..core.backends.len() {
        let keep = core.settings(backend).pool_size;
        let b = &mut core.backends[backend];
        let unused = b
            .idle_low
            .min(b.idle.len())
            .saturating_sub(keep)
            .div_ceil(2);
        let closing: Vec<usize> = b.idle.drain(..unused).collect();
        for ukey in closing {
            close_upstream(conns, core, ukey);
        }
        let now = busy(core, backend);
        let b = &mut core.backends[backend];
        b.idle_low = b.idle.len();
        b.busy_peak = now;
    }
}

/// Arms `u`'s server timeout, cut short to fire by `deadline`, the absolute deadline of
/// the gRPC call it carries, when that is sooner.
pub(crate) fn arm_server_timer(
    core: &mut Core,
    u: &mut UpstreamConn,
    ukey: usize,
    deadline: Option<Instant>,
) {
    u.armed_at = core.now;
    let left = deadline.map_or(u.server_timeout, |d| d.saturating_duration_since(core.now));
    core.arm(&mut u.timer, u.server_timeout.min(left), ukey, u.serial);
}

/// Connection `ukey` starts carrying `owner`'s request: its server timer runs, cut short
/// by the deadline of the gRPC call its owner's exchange is.
fn start_server_timer(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize, owner: Owner) {
    let client = match owner {
        Owner::Client(key) => conns.get(key),
        Owner::Copy { .. } => None,
    };
    let deadline = match client {
        Some(Conn::Client(ClientConn {
            state: ClientState::Proxying(ex),
            ..
        })) => ex.deadline,
        _ => None,
    };
    if let Some(u) = upstream_mut(conns, ukey) {
        arm_server_timer(core, u, ukey, deadline);
    }
}

pub fn upstream_ready(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    match u.state {
        UpstreamState::Idle => {
            // Readable while idle: the backend closed it or sent junk. (A TLS session
            // ticket arriving late is read and kept, and leaves it alive.)
            if u.io.fill(&mut core.buffers) != Filled::Nothing {
                close_upstream(conns, core, ukey);
            }
        }
        UpstreamState::Connecting(owner) => {
            // A stream is let in by its HTTP/2 connection (`stream_connected`).
            if !(u.io.writable || u.io.readable) || u.io.sock.is_stream() {
                return;
            }
            let connected = match u.io.sock.take_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => u.io.sock.peer_addr().map(|_| ()),
            };
            match connected {
                Ok(()) => {
                    u.state = UpstreamState::Busy(owner);
                    start_server_timer(conns, core, ukey, owner);
                    step_owner(conns, core, owner, ukey);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => {
                    let why = e.to_string();
                    connect_failed(conns, core, owner, ukey, Some(Failure::Connect), &why);
                }
            }
        }
        UpstreamState::Busy(owner) => step_owner(conns, core, owner, ukey),
    }
}

/// An HTTP/2 stream's connection has room for it: its owner hands the request over.
pub(crate) fn stream_connected(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let UpstreamState::Connecting(owner) = u.state else {
        return;
    };
    u.state = UpstreamState::Busy(owner);
    start_server_timer(conns, core, ukey, owner);
    step_owner(conns, core, owner, ukey);
}

fn step_owner(conns: &mut Slab<Conn>, core: &mut Core, owner: Owner, ukey: usize) {
    match owner {
        Owner::Client(client) => drive(conns, core, client),
        Owner::Copy { .. } => fanout::copy_ready(conns, core, ukey),
    }
}

/// A connect failed (`Failure::Connect`) or timed out (`Failure::Timeout`), or an HTTP/2
/// stream's connection went away before it had room (`None`: the backend is not to blame
/// a client's exchange, though a POST copy counts it as fan-out counts a failed connect):
/// the owner retries elsewhere or later.
pub(crate) fn connect_failed(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    owner: Owner,
    ukey: usize,
    reason: Option<Failure>,
    why: &str,
) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let backend = u.backend;
    let forward = u.io.output.take();
    close_upstream(conns, core, ukey);
    // Per attempt: debug. The DOWN transition says it once, at warn.
    debug!(
        "connect to backend {} failed: {why}",
        core.backends[backend].label
    );
    let client = match owner {
        Owner::Client(client) => client,
        Owner::Copy { job, copy } => {
            let answer = match reason {
                Some(Failure::Timeout) => fanout::Answer::Timeout,
                _ => fanout::Answer::ConnectFailure,
            };
            return fanout::copy_failed(conns, core, job, copy, answer, why);
        }
    };
    if reason.is_some() {
        observe(core, backend, reason, why);
    }
    core.backends[backend].request_done();
    let Some(c) = client_mut(conns, client) else {
        if let Some(f) = forward {
            core.buffers.put(f);
        }
        return;
    };
    let ClientState::Proxying(ex) = std::mem::replace(&mut c.state, ClientState::Idle) else {
        return;
    };
    match forward {
        Some(f) => retry_elsewhere(conns, core, client, ex, f, "connect failed"),
        None => fail_exchange(
            conns,
            core,
            client,
            ex,
            502,
            "the backend could not be reached",
        ),
    }
    drive(conns, core, client);
}

/// A backend connection's timer: connect timeout, or response (inactivity) timeout, cut
/// short by a gRPC call's deadline.
pub fn upstream_timer(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let Some(u) = upstream_mut(conns, key) else {
        return;
    };
    u.timer = None;
    match u.state {
        UpstreamState::Connecting(owner) => {
            connect_failed(
                conns,
                core,
                owner,
                key,
                Some(Failure::Timeout),
                "connect timed out",
            );
        }
        UpstreamState::Busy(Owner::Copy { job, copy }) => {
            close_upstream(conns, core, key);
            fanout::copy_failed(
                conns,
                core,
                job,
                copy,
                fanout::Answer::Timeout,
                "no answer in time",
            );
        }
        UpstreamState::Busy(Owner::Client(client)) => {
            let backend = u.backend;
            server_timed_out(conns, core, client, (key, backend));
        }
        UpstreamState::Idle => close_upstream(conns, core, key),
    }
}
