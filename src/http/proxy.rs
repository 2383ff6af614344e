//! The HTTP engine: reads requests, dispatches them to backend connections, and moves
//! bytes both ways until the response is written. Every function here takes the slab
//! and the shared `Core`; a step returns what the driver must do next.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use log::{debug, warn};
use mio::Interest;
use mio::net::TcpStream;
use slab::Slab;

use super::body::Segment;
use super::client::{ClientConn, ClientState, Exchange, ResponsePhase, Tried};
use super::head::{self, ClientSide, ForwardInfo, RequestHead, RequestId};
use super::upstream::{UpstreamConn, UpstreamState};
use crate::backend::BackendId;
use crate::buffer::Buffer;
use crate::conn::{Filled, PeerGone, Socket};
use crate::event_loop::{Conn, Core, token};
use crate::metrics::Failure;
use crate::strategy::PickContext;

/// How long a closing client may keep sending before we stop reading and close.
const LINGER: Duration = Duration::from_secs(2);

/// What the driver does after one step of a client.
enum Step {
    /// Nothing more until the next event.
    Wait,
    /// The state changed: step again.
    Again,
    Close,
    Dispatch(RequestHead, Buffer),
}

/// What one pump of an exchange ended with.
enum Pump {
    Wait,
    Done {
        reusable: bool,
        close_client: bool,
    },
    /// The backend failed before it answered anything.
    UpstreamFailed(&'static str),
    /// The backend failed or misbehaved after the response began, or sent garbage.
    BadResponse(&'static str),
    ClientGone,
    BadRequest(&'static str),
}

pub fn accept(conns: &mut Slab<Conn>, core: &mut Core, mut sock: TcpStream, peer: SocketAddr) {
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.registry.register(
        &mut sock,
        token(key, 0),
        Interest::READABLE | Interest::WRITABLE,
    ) {
        warn!("cannot register client {peer}: {e}");
        return;
    }
    let _ = sock.set_nodelay(true);
    let serial = core.next_serial();
    let mut client = ClientConn {
        io: Socket::new(sock),
        peer,
        serial,
        state: ClientState::Idle,
        timer: None,
    };
    core.arm(&mut client.timer, core.cfg.client_timeout, key, serial);
    entry.insert(Conn::Client(client));
    core.clients_open += 1;
    core.metrics.client_connections_total += 1;
}

fn client_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut ClientConn> {
    match conns.get_mut(key) {
        Some(Conn::Client(c)) => Some(c),
        _ => None,
    }
}

fn upstream_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut UpstreamConn> {
    match conns.get_mut(key) {
        Some(Conn::Upstream(u)) => Some(u),
        _ => None,
    }
}

pub fn client_ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    drive(conns, core, key);
}

/// Steps client `key` until it waits for an event or is closed.
fn drive(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    loop {
        let Some(c) = client_mut(conns, key) else {
            return;
        };
        let state = std::mem::replace(&mut c.state, ClientState::Idle);
        let step = match state {
            ClientState::Idle => read_request(c, core, key, true),
            ClientState::ReadingHead => read_request(c, core, key, false),
            ClientState::Answering { close } => answering(c, core, key, close),
            ClientState::Lingering => linger(c),
            ClientState::Proxying(ex) => proxy_step(conns, core, key, ex),
        };
        match step {
            Step::Wait => return,
            Step::Again => continue,
            Step::Close => {
                close_client(conns, core, key);
                return;
            }
            Step::Dispatch(head, forward) => dispatch(conns, core, key, head, forward),
        }
    }
}

fn read_request(c: &mut ClientConn, core: &mut Core, key: usize, idle: bool) -> Step {
    match c.io.fill(&mut core.buffers) {
        Filled::Failed => return Step::Close,
        Filled::Eof if c.io.input_len() == 0 => return Step::Close,
        // A client that closes halfway through a head gets no answer: there is no one to read it.
        Filled::Eof => return Step::Close,
        Filled::Got | Filled::Nothing => {}
    }
    if c.io.input_len() == 0 {
        c.state = ClientState::Idle;
        return Step::Wait;
    }
    if idle {
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    }
    let mut forward = core.buffers.get();
    let info = ForwardInfo {
        client_ip: c.peer.ip(),
        fresh_id: core.fresh_request_id(),
        default_host: &core.default_host,
    };
    match head::parse_request(c.io.input_data(), &info, &mut forward) {
        Ok(Some(head)) => Step::Dispatch(head, forward),
        Ok(None) => {
            core.buffers.put(forward);
            c.state = ClientState::ReadingHead;
            if c.io.readable {
                Step::Again
            } else {
                Step::Wait
            }
        }
        Err(reject) => {
            core.buffers.put(forward);
            debug!("{}: {} {}", c.peer, reject.status, reject.reason);
            core.metrics.local_response(reject.status);
            answer(c, core, key, reject.status, reject.reason, None, true);
            Step::Again
        }
    }
}

/// Writes a response of our own and moves to `Answering`.
#[allow(clippy::too_many_arguments)]
fn answer(
    c: &mut ClientConn,
    core: &mut Core,
    key: usize,
    status: u16,
    text: &str,
    id: Option<&RequestId>,
    close: bool,
) {
    let out = c.io.output.get_or_insert_with(|| core.buffers.get());
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        text.len() + 1
    );
    if status == 503 {
        let _ = out.write_str("Retry-After: 1\r\n");
    }
    if let Some(id) = id {
        let _ = write!(out, "X-Request-Id: {}\r\n", id.as_str());
    }
    if close {
        let _ = out.write_str("Connection: close\r\n");
    }
    let _ = write!(out, "\r\n{text}\n");
    c.state = ClientState::Answering { close };
    core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn answering(c: &mut ClientConn, core: &mut Core, key: usize, close: bool) -> Step {
    c.state = ClientState::Answering { close };
    if c.io.flush(&mut core.buffers).is_err() {
        return Step::Close;
    }
    if c.io.output_len() > 0 {
        return Step::Wait;
    }
    if close {
        // Close gently: a client still sending would otherwise get a reset that can
        // destroy the answer before it reads it.
        let _ = c.io.sock.shutdown(Shutdown::Write);
        core.buffers.release(&mut c.io.input);
        core.arm(&mut c.timer, LINGER, key, c.serial);
        c.state = ClientState::Lingering;
        return Step::Again;
    }
    become_idle(c, core, key);
    Step::Again
}

/// Between requests: either the next pipelined head is already here, or wait idle.
fn become_idle(c: &mut ClientConn, core: &mut Core, key: usize) {
    if c.io.input_len() > 0 {
        c.state = ClientState::ReadingHead;
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    } else {
        c.state = ClientState::Idle;
        core.buffers.release(&mut c.io.input);
        core.arm(&mut c.timer, core.cfg.idle_timeout, key, c.serial);
    }
}

fn linger(c: &mut ClientConn) -> Step {
    c.state = ClientState::Lingering;
    let mut sink = [0u8; 4096];
    while c.io.readable {
        match c.io.sock.read(&mut sink) {
            Ok(0) => return Step::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.io.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Step::Close,
        }
    }
    Step::Wait
}

fn close_client(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Client(mut c)) = conns.try_remove(key) {
        core.disarm(&mut c.timer);
        c.io.release_buffers(&mut core.buffers);
        let _ = core.registry.deregister(&mut c.io.sock);
        core.clients_open -= 1;
        if let ClientState::Proxying(ex) = c.state {
            core.backends[ex.backend].active = core.backends[ex.backend].active.saturating_sub(1);
            close_upstream(conns, core, ex.upstream);
        }
    }
}

fn close_upstream(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Upstream(mut u)) = conns.try_remove(key) {
        core.disarm(&mut u.timer);
        u.io.release_buffers(&mut core.buffers);
        let _ = core.registry.deregister(&mut u.io.sock);
        if u.state == UpstreamState::Idle {
            core.backends[u.backend].idle.retain(|&k| k != key);
        }
        core.metrics.backends[u.backend].connections -= 1;
    }
}

fn dispatch(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    head: RequestHead,
    forward: Buffer,
) {
    let Some(c) = client_mut(conns, key) else {
        core.buffers.put(forward);
        return;
    };
    core.disarm(&mut c.timer);
    let replayable = head.framing.is_done();
    let mut ex = Exchange {
        upstream: usize::MAX,
        backend: 0,
        client: ClientSide {
            method: head.method,
            version: head.version,
            keep_alive: head.keep_alive,
        },
        request_id: head.request_id,
        request_body: head.framing,
        replayable_head: replayable.then_some(head.len),
        response: ResponsePhase::Head,
        responded: false,
        started: core.now,
        tried: Tried::default(),
    };
    let ip = c.peer.ip();
    let pick = {
        let input = c.io.input_data();
        let ctx = PickContext {
            client_ip: Some(ip),
            path: &input[head.path.0..head.path.1],
        };
        pick_backend(core, &ctx, &ex.tried)
    };
    if let Some(buf) = c.io.input.as_mut().filter(|_| !replayable) {
        buf.consume(head.len);
    }
    let Some(backend) = pick else {
        core.buffers.put(forward);
        let close = !replayable || !head.keep_alive;
        core.metrics.local_response(503);
        answer(
            c,
            core,
            key,
            503,
            "no backend is available",
            Some(&head.request_id),
            close,
        );
        if let Some(buf) = c.io.input.as_mut().filter(|_| replayable) {
            buf.consume(head.len);
        }
        return;
    };
    match attach(conns, core, key, &mut ex, backend, forward) {
        Ok(()) => {
            if let Some(c) = client_mut(conns, key) {
                c.state = ClientState::Proxying(ex);
            }
        }
        Err(forward) => retry_elsewhere(conns, core, key, ex, forward, "connect failed"),
    }
}

fn pick_backend(core: &mut Core, ctx: &PickContext, tried: &Tried) -> Option<BackendId> {
    core.strategy
        .pick(&core.backends, ctx, &|id| !tried.contains(id))
}

/// Gives the exchange a connection to `backend`: one from the pool, or a new connect.
/// On failure the unsent request comes back.
fn attach(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    client: usize,
    ex: &mut Exchange,
    backend: BackendId,
    forward: Buffer,
) -> Result<(), Buffer> {
    ex.tried.add(backend);
    ex.backend = backend;
    while let Some(ukey) = core.backends[backend].idle.pop() {
        if let Some(u) = upstream_mut(conns, ukey) {
            u.state = UpstreamState::Busy { client };
            u.io.output = Some(forward);
            arm_server_timer(core, u, ukey);
            ex.upstream = ukey;
            core.backends[backend].active += 1;
            return Ok(());
        }
    }
    let ukey = connect(conns, core, client, backend, forward)?;
    ex.upstream = ukey;
    core.backends[backend].active += 1;
    Ok(())
}

fn connect(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    client: usize,
    backend: BackendId,
    forward: Buffer,
) -> Result<usize, Buffer> {
    let addr = core.backends[backend].addr;
    let mut sock = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            warn!(
                "connect to backend {} failed: {e}",
                core.backends[backend].label
            );
            observe(core, backend, Some(Failure::Connect), &e.to_string());
            return Err(forward);
        }
    };
    let entry = conns.vacant_entry();
    let ukey = entry.key();
    if let Err(e) = core.registry.register(
        &mut sock,
        token(ukey, 0),
        Interest::READABLE | Interest::WRITABLE,
    ) {
        warn!("cannot register backend connection: {e}");
        return Err(forward);
    }
    let _ = sock.set_nodelay(true);
    let serial = core.next_serial();
    let mut io = Socket::new(sock);
    io.output = Some(forward);
    let mut u = UpstreamConn {
        io,
        backend,
        serial,
        state: UpstreamState::Connecting { client },
        timer: None,
        armed_at: core.now,
        reused: false,
    };
    core.arm(&mut u.timer, core.cfg.connect_timeout, ukey, serial);
    entry.insert(Conn::Upstream(u));
    core.metrics.backends[backend].connections += 1;
    Ok(ukey)
}

/// The request never reached backend `ex.backend`: send it to another one, or answer 502/503.
fn retry_elsewhere(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Exchange,
    forward: Buffer,
    why: &str,
) {
    debug!(
        "request {:?} to {}: {why}",
        ex.request_id, core.backends[ex.backend].label
    );
    let mut forward = Some(forward);
    while ex.tried.count() <= core.cfg.retries as usize {
        let ctx = PickContext {
            client_ip: client_mut(conns, key).map(|c| c.peer.ip()),
            path: b"",
        };
        let Some(next) = pick_backend(core, &ctx, &ex.tried) else {
            break;
        };
        let Some(buf) = forward.take() else {
            break;
        };
        match attach(conns, core, key, &mut ex, next, buf) {
            Ok(()) => {
                if let Some(c) = client_mut(conns, key) {
                    c.state = ClientState::Proxying(ex);
                }
                return;
            }
            Err(buf) => forward = Some(buf),
        }
    }
    if let Some(buf) = forward {
        core.buffers.put(buf);
    }
    fail_exchange(
        conns,
        core,
        key,
        ex,
        502,
        "the backend could not be reached",
    );
}

/// Ends an exchange that produced no response with an error of our own.
fn fail_exchange(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    ex: Exchange,
    status: u16,
    text: &str,
) {
    if ex.tried.count() > 0 {
        let took = core.now.saturating_duration_since(ex.started);
        core.metrics
            .request(ex.backend, ex.client.method, status, took);
    } else {
        core.metrics.local_response(status);
    }
    let Some(c) = client_mut(conns, key) else {
        return;
    };
    if ex.responded {
        c.state = ClientState::Answering { close: true };
        let _ = c.io.sock.shutdown(Shutdown::Both);
        return;
    }
    let close = !ex.request_body.is_done() || !ex.client.keep_alive;
    if let (Some(len), Some(buf)) = (ex.replayable_head, c.io.input.as_mut()) {
        buf.consume(len);
    }
    if let Some(out) = c.io.output.as_mut() {
        out.clear();
    }
    answer(c, core, key, status, text, Some(&ex.request_id), close);
}

fn proxy_step(conns: &mut Slab<Conn>, core: &mut Core, key: usize, mut ex: Exchange) -> Step {
    let ukey = ex.upstream;
    let Some((Conn::Client(c), Conn::Upstream(u))) = conns.get2_mut(key, ukey) else {
        return Step::Close;
    };
    let result = pump(c, &mut ex, u, core);
    match result {
        Pump::Wait => {
            c.state = ClientState::Proxying(ex);
            Step::Wait
        }
        Pump::Done {
            reusable,
            close_client,
        } => {
            let backend = ex.backend;
            core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
            let reusable = reusable && ex.request_body.is_done() && u.io.input_len() == 0;
            release_upstream(conns, core, ukey, reusable);
            let Some(c) = client_mut(conns, key) else {
                return Step::Close;
            };
            if close_client || !ex.request_body.is_done() || c.io.read_closed {
                return Step::Close;
            }
            become_idle(c, core, key);
            Step::Again
        }
        Pump::UpstreamFailed(why) => {
            let backend = ex.backend;
            core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
            let stale = u.reused && ex.replayable_head.is_some();
            close_upstream(conns, core, ukey);
            if stale {
                // A pooled connection the backend had closed: send the request again, fresh.
                return replay(conns, core, key, ex);
            }
            warn!(
                "backend {} failed request {:?}: {why}",
                core.backends[backend].label, ex.request_id
            );
            observe(core, backend, Some(Failure::Reset), why);
            fail_exchange(conns, core, key, ex, 502, "the backend failed to answer");
            Step::Again
        }
        Pump::BadResponse(why) => {
            warn!(
                "backend {} broke its response to {:?}: {why}",
                core.backends[ex.backend].label, ex.request_id
            );
            let backend = ex.backend;
            observe(core, backend, Some(Failure::BadResponse), why);
            core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
            close_upstream(conns, core, ukey);
            fail_exchange(
                conns,
                core,
                key,
                ex,
                502,
                "the backend sent a broken response",
            );
            Step::Again
        }
        Pump::BadRequest(why) => {
            debug!("request {:?}: {why}", ex.request_id);
            let backend = ex.backend;
            core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
            close_upstream(conns, core, ukey);
            fail_exchange(conns, core, key, ex, 400, why);
            Step::Again
        }
        Pump::ClientGone => {
            c.state = ClientState::Proxying(ex);
            Step::Close
        }
    }
}

/// Sends a bodiless request again on a fresh connection to the same backend.
fn replay(conns: &mut Slab<Conn>, core: &mut Core, key: usize, mut ex: Exchange) -> Step {
    let Some(c) = client_mut(conns, key) else {
        return Step::Close;
    };
    let mut forward = core.buffers.get();
    let info = ForwardInfo {
        client_ip: c.peer.ip(),
        fresh_id: ex.request_id,
        default_host: &core.default_host,
    };
    match head::parse_request(c.io.input_data(), &info, &mut forward) {
        Ok(Some(_)) => match connect(conns, core, key, ex.backend, forward) {
            Ok(ukey) => {
                ex.upstream = ukey;
                core.backends[ex.backend].active += 1;
                if let Some(c) = client_mut(conns, key) {
                    c.state = ClientState::Proxying(ex);
                }
            }
            Err(forward) => retry_elsewhere(conns, core, key, ex, forward, "reconnect failed"),
        },
        _ => {
            core.buffers.put(forward);
            fail_exchange(conns, core, key, ex, 502, "the backend failed to answer");
        }
    }
    Step::Again
}

/// Puts a backend connection back in its pool, or closes it.
fn release_upstream(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize, reusable: bool) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let backend = u.backend;
    if !reusable || core.backends[backend].idle.len() >= core.cfg.pool_size {
        close_upstream(conns, core, ukey);
        return;
    }
    u.state = UpstreamState::Idle;
    u.reused = true;
    core.disarm(&mut u.timer);
    u.io.release_buffers(&mut core.buffers);
    core.backends[backend].idle.push(ukey);
}

/// Moves bytes both ways until nothing more can move now.
fn pump(c: &mut ClientConn, ex: &mut Exchange, u: &mut UpstreamConn, core: &mut Core) -> Pump {
    let connected = matches!(u.state, UpstreamState::Busy { .. });
    loop {
        let mut progress = false;

        if !ex.request_body.is_done() {
            match c.io.fill(&mut core.buffers) {
                Filled::Got => progress = true,
                Filled::Eof | Filled::Failed => return Pump::ClientGone,
                Filled::Nothing => {}
            }
            if c.io.input_len() > 0 {
                let out = u.io.output.get_or_insert_with(|| core.buffers.get());
                let Some(input) = c.io.input.as_mut() else {
                    return Pump::ClientGone;
                };
                let room = out.room().min(input.len());
                let mut used = 0;
                loop {
                    match ex.request_body.next(&input.data()[used..room]) {
                        Ok(Some(Segment::Data(n) | Segment::Framing(n))) => used += n,
                        Ok(None) => break,
                        Err(e) => return Pump::BadRequest(e.0),
                    }
                }
                if used > 0 {
                    out.push(&input.data()[..used]);
                    input.consume(used);
                    core.metrics.backends[ex.backend].bytes_sent += used as u64;
                    progress = true;
                }
                core.buffers.release_if_empty(&mut c.io.input);
            }
        }

        if connected && u.io.output_len() > 0 {
            match u.io.flush(&mut core.buffers) {
                Ok(wrote) => progress |= wrote,
                Err(PeerGone) => {
                    return if ex.responded {
                        Pump::BadResponse("connection lost")
                    } else {
                        Pump::UpstreamFailed("connection lost while sending")
                    };
                }
            }
        }

        let response_open = !matches!(ex.response, ResponsePhase::Done { .. });
        if connected && response_open {
            match u.io.fill(&mut core.buffers) {
                Filled::Got => progress = true,
                Filled::Nothing => {}
                Filled::Failed | Filled::Eof => {
                    if let ResponsePhase::Body {
                        framing: super::body::Framing::UntilClose,
                        close_client,
                        ..
                    } = ex.response
                    {
                        ex.response = ResponsePhase::Done {
                            reusable: false,
                            close_client,
                        };
                        progress = true;
                    } else if u.io.input_len() == 0 || ex.responded {
                        return if ex.responded || ex.response != ResponsePhase::Head {
                            Pump::BadResponse("connection closed mid-response")
                        } else {
                            Pump::UpstreamFailed("connection closed before answering")
                        };
                    }
                }
            }
        }

        if ex.response == ResponsePhase::Head && u.io.input_len() > 0 && c.io.output_len() == 0 {
            let out = c.io.output.get_or_insert_with(|| core.buffers.get());
            match head::parse_response(u.io.input_data(), ex.client, &ex.request_id, out) {
                Ok(None) => {
                    if u.io.read_closed {
                        return Pump::BadResponse("connection closed mid-head");
                    }
                }
                Err(why) => return Pump::BadResponse(why),
                Ok(Some(resp)) => {
                    progress = true;
                    if let Some(buf) = u.io.input.as_mut() {
                        buf.consume(resp.len);
                    }
                    core.metrics.backends[ex.backend].bytes_received += resp.len as u64;
                    if resp.is_interim() {
                        if ex.client.version == 0 {
                            out.clear();
                        }
                    } else {
                        ex.responded = true;
                        if let (Some(len), Some(buf)) =
                            (ex.replayable_head.take(), c.io.input.as_mut())
                        {
                            buf.consume(len);
                        }
                        let elapsed = core.now.saturating_duration_since(ex.started);
                        core.metrics
                            .request(ex.backend, ex.client.method, resp.status, elapsed);
                        if resp.status >= 500 {
                            core.health.observed(
                                &mut core.backends,
                                ex.backend,
                                false,
                                "5xx answer",
                            );
                        } else {
                            core.health
                                .observed(&mut core.backends, ex.backend, true, "");
                        }
                        core.backends[ex.backend].record_response_time(elapsed.as_micros() as u64);
                        ex.response = if resp.framing.is_done() {
                            ResponsePhase::Done {
                                reusable: resp.reusable,
                                close_client: resp.close_client,
                            }
                        } else {
                            ResponsePhase::Body {
                                framing: resp.framing,
                                dechunk: resp.dechunk,
                                reusable: resp.reusable,
                                close_client: resp.close_client,
                            }
                        };
                    }
                }
            }
        }

        if let ResponsePhase::Body {
            mut framing,
            dechunk,
            reusable,
            close_client,
        } = ex.response
            && u.io.input_len() > 0
        {
            let out = c.io.output.get_or_insert_with(|| core.buffers.get());
            let Some(input) = u.io.input.as_mut() else {
                return Pump::BadResponse("lost input");
            };
            let room = out.room().min(input.len());
            let data = &input.data()[..room];
            let mut used = 0;
            loop {
                match framing.next(&data[used..]) {
                    Ok(Some(Segment::Data(n))) => {
                        out.push(&data[used..used + n]);
                        used += n;
                    }
                    Ok(Some(Segment::Framing(n))) => {
                        if !dechunk {
                            out.push(&data[used..used + n]);
                        }
                        used += n;
                    }
                    Ok(None) => break,
                    Err(e) => return Pump::BadResponse(e.0),
                }
            }
            input.consume(used);
            core.metrics.backends[ex.backend].bytes_received += used as u64;
            progress |= used > 0;
            core.buffers.release_if_empty(&mut u.io.input);
            ex.response = if framing.is_done() {
                ResponsePhase::Done {
                    reusable,
                    close_client,
                }
            } else {
                ResponsePhase::Body {
                    framing,
                    dechunk,
                    reusable,
                    close_client,
                }
            };
        }

        match c.io.flush(&mut core.buffers) {
            Ok(wrote) => progress |= wrote,
            Err(PeerGone) => return Pump::ClientGone,
        }

        if let ResponsePhase::Done {
            reusable,
            close_client,
        } = ex.response
            && c.io.output_len() == 0
        {
            return Pump::Done {
                reusable,
                close_client,
            };
        }
        if !progress {
            return Pump::Wait;
        }
        // The server timeout measures inactivity: bytes that flow push it back, but only
        // once per half-period, so that a busy exchange does not churn the wheel.
        if connected && core.now.saturating_duration_since(u.armed_at) > core.cfg.server_timeout / 2
        {
            arm_server_timer(core, u, ex.upstream);
        }
    }
}

fn arm_server_timer(core: &mut Core, u: &mut UpstreamConn, ukey: usize) {
    u.armed_at = core.now;
    core.arm(&mut u.timer, core.cfg.server_timeout, ukey, u.serial);
}

/// Counts a failure of real traffic and feeds it to the passive health check.
fn observe(core: &mut Core, backend: BackendId, failure: Option<Failure>, why: &str) {
    if let Some(f) = failure {
        core.metrics.failure(backend, f);
    }
    core.health
        .observed(&mut core.backends, backend, failure.is_none(), why);
}

pub fn upstream_ready(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    match u.state {
        UpstreamState::Idle => {
            if u.io.readable && !pooled_conn_alive(u) {
                close_upstream(conns, core, ukey);
            }
        }
        UpstreamState::Connecting { client } => {
            if !(u.io.writable || u.io.readable) {
                return;
            }
            match u.io.sock.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    connect_failed(conns, core, client, ukey, &e.to_string());
                    return;
                }
            }
            match u.io.sock.peer_addr() {
                Ok(_) => {
                    u.state = UpstreamState::Busy { client };
                    arm_server_timer(core, u, ukey);
                    drive(conns, core, client);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => connect_failed(conns, core, client, ukey, &e.to_string()),
            }
        }
        UpstreamState::Busy { client } => drive(conns, core, client),
    }
}

/// An idle pooled connection became readable: the backend closed it or sent junk.
fn pooled_conn_alive(u: &mut UpstreamConn) -> bool {
    let mut probe = [0u8; 64];
    loop {
        match u.io.sock.read(&mut probe) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                u.io.readable = false;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

fn connect_failed(conns: &mut Slab<Conn>, core: &mut Core, client: usize, ukey: usize, why: &str) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let backend = u.backend;
    let forward = u.io.output.take();
    close_upstream(conns, core, ukey);
    warn!(
        "connect to backend {} failed: {why}",
        core.backends[backend].label
    );
    let reason = if why.contains("timed out") {
        Failure::Timeout
    } else {
        Failure::Connect
    };
    observe(core, backend, Some(reason), why);
    core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
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

pub fn timer_fired(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    match conns.get_mut(key) {
        Some(Conn::Client(c)) => {
            c.timer = None;
            match c.state {
                ClientState::ReadingHead => {
                    core.buffers.release(&mut c.io.input);
                    answer(
                        c,
                        core,
                        key,
                        408,
                        "timed out reading the request head",
                        None,
                        true,
                    );
                    drive(conns, core, key);
                }
                _ => close_client(conns, core, key),
            }
        }
        Some(Conn::Upstream(u)) => {
            u.timer = None;
            match u.state {
                UpstreamState::Connecting { client } => {
                    connect_failed(conns, core, client, key, "connect timed out");
                }
                UpstreamState::Busy { client } => {
                    let backend = u.backend;
                    warn!("backend {} timed out", core.backends[backend].label);
                    observe(core, backend, Some(Failure::Timeout), "response timed out");
                    let Some(c) = client_mut(conns, client) else {
                        close_upstream(conns, core, key);
                        return;
                    };
                    let ClientState::Proxying(ex) =
                        std::mem::replace(&mut c.state, ClientState::Idle)
                    else {
                        return;
                    };
                    core.backends[backend].active = core.backends[backend].active.saturating_sub(1);
                    close_upstream(conns, core, key);
                    fail_exchange(
                        conns,
                        core,
                        client,
                        ex,
                        504,
                        "the backend did not answer in time",
                    );
                    drive(conns, core, client);
                }
                UpstreamState::Idle => close_upstream(conns, core, key),
            }
        }
        Some(Conn::Probe(_) | Conn::Pipe(_)) | None => {}
    }
}
