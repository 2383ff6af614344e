//! The client side of an HTTP connection: its states, and the driver that steps them.
//! A step returns what the driver must do next; the exchange with a backend is in
//! `exchange.rs`, the backend connections in `upstream.rs`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, warn};
use mio::net::TcpStream;
use slab::Slab;

use super::exchange::{Exchange, client_stalled, proxy_step};
use super::head::{self, ForwardInfo, RequestHead, RequestId, Routing};
use super::routed;
use super::upstream::close_upstream;
use crate::access_log::Answered;
use crate::budget::HeldBytes;
use crate::buffer::Buffer;
use crate::conn::{Filled, Socket};
use crate::event_loop::{Conn, Core, STEP_BUDGET};
use crate::fanout::{self, PendingPost};
use crate::front::FrontId;
use crate::proxy_protocol::Addresses;
use crate::timer::TimerId;

pub struct ClientConn {
    pub io: Socket,
    pub peer: SocketAddr,
    pub serial: u32,
    /// The listener it came through, whose routes its requests go by.
    pub front: u32,
    pub state: ClientState,
    pub timer: Option<TimerId>,
}

#[allow(clippy::large_enum_variant)] // inline, so that a request allocates nothing
pub enum ClientState {
    /// Keep-alive, between requests: no buffers held.
    Idle,
    /// Part of a request head has arrived.
    ReadingHead,
    /// A request is being served by a backend connection.
    Proxying(Box<Exchange>),
    /// Sending a response of our own (an error); then close, or read the next request.
    Answering { close: bool },
    /// A POST body is arriving; it is buffered whole so that it can be sent to several backends.
    Buffering(Box<PendingPost>),
    /// A POST went out to its backends; waiting for the first success.
    AwaitingFanout { job: usize },
    /// Writing a refused answer a fan-out copy brought back, kept whole for the client.
    Replying(Box<Kept>),
    /// Answered and half-closed: reading what the client still sends until it closes,
    /// so that its unread bytes do not turn our close into a reset.
    Lingering,
}

/// A refused fan-out answer kept whole for its client, and how far it is written.
pub struct Kept {
    pub reply: HeldBytes,
    pub sent: usize,
    /// `sent` when the client's current --client-timeout window began.
    pub window: usize,
    pub close: bool,
}

/// How long a closing client may keep sending before we stop reading and close.
const LINGER: Duration = Duration::from_secs(2);

/// What the driver does after one step of a client. A step's result is moved once, and
/// boxing the head of `Dispatch`, the common case, would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// Nothing more until the next event.
    Wait,
    /// The state changed: step again.
    Again,
    Close,
    Dispatch(RequestHead, Buffer),
    /// A whole POST is buffered: fan it out.
    Launch(Box<PendingPost>),
    /// The client speaks HTTP/2 (ALPN, or the preface on an h2c listener).
    Http2,
}

pub fn accept(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    mut sock: TcpStream,
    peer: SocketAddr,
    front: FrontId,
) {
    let entry = conns.vacant_entry();
    let key = entry.key();
    if let Err(e) = core.register(&mut sock, key, 0) {
        warn!("cannot register client {peer}: {e}");
        return;
    }
    let _ = sock.set_nodelay(true);
    let Some(io) = core.client_socket(sock, front) else {
        return;
    };
    let serial = core.next_serial();
    // The first deadline covers a TLS handshake too: one never finished is cut by it.
    let mut client = ClientConn {
        io,
        peer,
        serial,
        front: front as u32,
        state: ClientState::Idle,
        timer: None,
    };
    core.arm(&mut client.timer, core.cfg.client_timeout, key, serial);
    entry.insert(Conn::Client(client));
    core.client_opened();
    core.metrics.client_connections_total += 1;
}

/// The client side of a new HTTP/2 stream (`http2`): a client whose socket is the
/// stream. It is not counted as a connection; its requests are counted as any are.
pub fn accept_stream(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    io: Socket,
    peer: SocketAddr,
    front: u32,
) -> (usize, u32) {
    let entry = conns.vacant_entry();
    let key = entry.key();
    let serial = core.next_serial();
    let mut client = ClientConn {
        io,
        peer,
        serial,
        front,
        state: ClientState::Idle,
        timer: None,
    };
    core.arm(&mut client.timer, core.cfg.client_timeout, key, serial);
    entry.insert(Conn::Client(client));
    (key, serial)
}

impl ClientConn {
    /// Where the client came from and what it connected to, for a PROXY header.
    pub fn addresses(&self) -> Option<Addresses> {
        let destination = self.io.sock.local_addr().ok()?;
        Some(Addresses {
            source: self.peer,
            destination,
        })
    }
}

pub(crate) fn client_mut(conns: &mut Slab<Conn>, key: usize) -> Option<&mut ClientConn> {
    match conns.get_mut(key) {
        Some(Conn::Client(c)) => Some(c),
        _ => None,
    }
}

pub fn client_ready(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    drive(conns, core, key);
}

/// Steps client `key` until it waits for an event or is closed.
pub(crate) fn drive(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    loop {
        let Some(c) = client_mut(conns, key) else {
            return;
        };
        let state = std::mem::replace(&mut c.state, ClientState::Idle);
        let step = match state {
            ClientState::Idle => read_request(c, core, key, true),
            ClientState::ReadingHead => read_request(c, core, key, false),
            ClientState::Answering { close } => answering(c, core, key, close),
            ClientState::Lingering => linger(c, core, key),
            ClientState::Proxying(ex) => proxy_step(conns, core, key, ex),
            ClientState::Buffering(p) => fanout::buffer_body(c, core, key, p),
            ClientState::AwaitingFanout { job } => {
                c.state = ClientState::AwaitingFanout { job };
                Step::Wait
            }
            ClientState::Replying(kept) => replying(c, core, key, kept),
        };
        match step {
            Step::Wait => return,
            Step::Again => continue,
            Step::Close => {
                close_client(conns, core, key);
                return;
            }
            Step::Dispatch(head, forward) => routed::take(conns, core, key, head, forward),
            Step::Http2 => return crate::http2::take_over(conns, core, key),
            Step::Launch(post) => {
                // From here the wait is for the backends: --fanout-timeout.
                if let Some(c) = client_mut(conns, key) {
                    core.disarm(&mut c.timer);
                }
                fanout::launch(conns, core, key, *post);
            }
        }
    }
}

fn read_request(c: &mut ClientConn, core: &mut Core, key: usize, idle: bool) -> Step {
    if c.io.fill(&mut core.buffers) == Filled::Failed {
        return Step::Close;
    }
    if speaks_http2(c, core) {
        return Step::Http2;
    }
    // Closed between requests: no one is left to answer. A half-close after a whole
    // request is not a disconnect: that request is still answered.
    if c.io.read_closed && c.io.input_len() == 0 {
        return Step::Close;
    }
    if c.io.input_len() == 0 {
        if core.draining && !core.handing_over {
            // Nothing in progress: lb is stopping, so the keep-alive ends here.
            return Step::Close;
        }
        c.state = ClientState::Idle;
        return Step::Wait;
    }
    if idle {
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    }
    let mut forward = core.buffers.get();
    let info = ForwardInfo {
        client_ip: c.peer.ip(),
        fresh_id: RequestId::random(),
        default_host: &core.default_host,
        tls: c.io.is_tls(),
    };
    let Some(table) = core.routes.table(c.front as usize) else {
        core.buffers.put(forward);
        return Step::Close;
    };
    let routing = Routing {
        table,
        scratch: &mut core.route_scratch,
    };
    match head::parse_request(c.io.input_data(), &info, &mut forward, routing) {
        Ok(Some(head)) => Step::Dispatch(head, forward),
        // Closed halfway through a head, which can never be completed now.
        Ok(None) if c.io.read_closed => {
            core.buffers.put(forward);
            Step::Close
        }
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
            let head = Answered::ours(c.io.input_data(), reject.status, None);
            core.answered(c.peer, Duration::ZERO, None, head);
            answer(c, core, key, reject.status, reject.reason, None, true);
            Step::Again
        }
    }
}

/// What HTTP/2 clients send first, up to where an HTTP/1.1 request line would differ.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0\r\n";

/// The client chose HTTP/2 by ALPN, or starts with its preface on an h2c listener.
fn speaks_http2(c: &ClientConn, core: &Core) -> bool {
    c.io.chose_h2()
        || (core.fronts.get(c.front as usize).is_some_and(|f| f.h2c)
            && c.io.input_data().starts_with(H2_PREFACE_START))
}

/// Writes a response of our own and moves to `Answering`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn answer(
    c: &mut ClientConn,
    core: &mut Core,
    key: usize,
    status: u16,
    text: &str,
    id: Option<&RequestId>,
    close: bool,
) {
    let close = close || core.draining;
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
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
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
        c.io.shutdown_write();
        c.io.release_input(&mut core.buffers);
        core.arm(&mut c.timer, LINGER, key, c.serial);
        c.state = ClientState::Lingering;
        return Step::Again;
    }
    become_idle(c, core, key);
    Step::Again
}

/// Between requests: either the next pipelined head is already here, or wait idle.
pub(crate) fn become_idle(c: &mut ClientConn, core: &mut Core, key: usize) {
    if c.io.input_len() > 0 {
        c.state = ClientState::ReadingHead;
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    } else {
        c.state = ClientState::Idle;
        c.io.release_input(&mut core.buffers);
        core.arm(&mut c.timer, core.cfg.idle_timeout, key, c.serial);
    }
}

/// Writes a kept fan-out answer straight from its own buffer.
fn replying(c: &mut ClientConn, core: &mut Core, key: usize, mut kept: Box<Kept>) -> Step {
    while kept.sent < kept.reply.len() {
        match c.io.send(&kept.reply.data()[kept.sent..]) {
            Ok(0) => break,
            Ok(n) => kept.sent += n,
            Err(_) => return Step::Close,
        }
    }
    if kept.sent < kept.reply.len() {
        // What it holds counts against --max-buffered-bytes: the client must take it at
        // --client-min-rate, judged once per window (`client_timer`), not just keep
        // taking a byte now and then.
        if c.timer.is_none() {
            core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
        }
        c.state = ClientState::Replying(kept);
        return Step::Wait;
    }
    c.state = ClientState::Answering { close: kept.close };
    core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    Step::Again
}

fn linger(c: &mut ClientConn, core: &mut Core, key: usize) -> Step {
    c.state = ClientState::Lingering;
    match c.io.discard_input(&mut core.buffers, STEP_BUDGET) {
        Filled::Eof | Filled::Failed => Step::Close,
        Filled::Got => {
            core.revisit.push(key);
            Step::Wait
        }
        Filled::Nothing => Step::Wait,
    }
}

pub(crate) fn close_client(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    if let Some(Conn::Client(mut c)) = conns.try_remove(key) {
        core.disarm(&mut c.timer);
        c.io.release_buffers(&mut core.buffers);
        // A stream's client side is not a connection: its connection counts itself. A
        // socket leaves the poll as it closes (nothing else holds it): no epoll_ctl call.
        if !c.io.sock.is_stream() {
            core.client_closed();
        }
        if let ClientState::AwaitingFanout { job } = c.state {
            fanout::client_gone(core, job, c.peer);
        }
        if let ClientState::Buffering(p) = &c.state {
            p.ended(c.peer, core, None);
        }
        if let ClientState::Proxying(ex) = c.state {
            let took = core.now.saturating_duration_since(ex.started);
            let answer = ex.log.answered(None, &ex.request_id);
            core.answered(c.peer, took, Some(ex.backend), answer);
            let (backend, upstream) = (ex.backend, ex.upstream);
            core.exchanges.put(ex);
            core.backends[backend].request_done();
            close_upstream(conns, core, upstream);
        }
    }
}

/// The client's own timer: a slow head gets 408, and so does a body that brought less
/// than its quota in a --client-timeout window (one that did starts the next window); a
/// stalled exchange ends without blaming its backend; an idle or lingering connection, or
/// one too slow to take an answer lb holds for it, closes.
pub fn client_timer(conns: &mut Slab<Conn>, core: &mut Core, key: usize) {
    let quota = core.window_quota();
    let Some(c) = client_mut(conns, key) else {
        return;
    };
    c.timer = None;
    let next_window = match &mut c.state {
        ClientState::Buffering(p) => p.window_ended(quota),
        ClientState::Proxying(ex) => ex.body_window_ended(quota),
        ClientState::Replying(kept) => {
            let taken = kept
                .sent
                .saturating_sub(std::mem::replace(&mut kept.window, kept.sent));
            taken as u64 >= quota
        }
        _ => false,
    };
    if next_window {
        return core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    }
    let (text, id) = match &c.state {
        ClientState::ReadingHead => {
            core.metrics.local_response(408);
            let head = Answered::ours(c.io.input_data(), 408, None);
            core.answered(c.peer, core.cfg.client_timeout, None, head);
            ("timed out reading the request head", None)
        }
        ClientState::Buffering(p) => {
            core.too_slow(c.peer, "sending its request body");
            p.ended(c.peer, core, Some(408));
            let text = "the request body came too slowly (see --client-min-rate)";
            (text, Some(p.request_id()))
        }
        ClientState::Proxying(ex) => {
            if ex.body_in_progress() {
                core.too_slow(c.peer, "sending its request body");
            }
            client_stalled(conns, core, key);
            return drive(conns, core, key);
        }
        ClientState::Replying(_) => {
            core.too_slow(c.peer, "taking its answer");
            return close_client(conns, core, key);
        }
        _ => return close_client(conns, core, key),
    };
    c.io.release_input(&mut core.buffers);
    answer(c, core, key, 408, text, id.as_ref(), true);
    drive(conns, core, key);
}
