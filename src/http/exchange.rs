//! One request and its response: dispatch to a backend, connect-failure retries, and
//! what follows each pump (`pump.rs`) until the response is written.

use std::time::{Duration, Instant};

use log::{debug, warn};
use slab::Slab;

use super::body::Framing;
use super::client::{ClientState, Step, answer, become_idle, client_mut};
use super::head::{self, ClientSide, ForwardInfo, Method, RequestHead, RequestId};
use super::pump::{Pump, pump};
use super::upstream::{
    Owner, close_upstream, connect, release_upstream, take_pooled, upstream_mut,
};
use crate::access_log::RequestLog;
use crate::backend::{BackendId, Tried};
use crate::buffer::Buffer;
use crate::event_loop::{Conn, Core};
use crate::metrics::Failure;
use crate::probe::observe;
use crate::strategy::PickContext;

/// Exchanges live in boxes, so that an idle client's slab slot stays small, and the boxes
/// are reused, so that a request allocates nothing.
#[derive(Default)]
pub struct ExchangePool {
    #[allow(clippy::vec_box)] // the boxes themselves are what is reused
    free: Vec<Box<Exchange>>,
}

impl ExchangePool {
    pub fn get(&mut self, ex: Exchange) -> Box<Exchange> {
        match self.free.pop() {
            Some(mut boxed) => {
                *boxed = ex;
                boxed
            }
            None => Box::new(ex),
        }
    }

    pub fn put(&mut self, ex: Box<Exchange>) {
        if self.free.len() < 1024 {
            self.free.push(ex);
        }
    }
}

/// One request and its response, from dispatch until the response is written.
pub struct Exchange {
    /// Slab key of the backend connection serving it.
    pub upstream: usize,
    pub backend: BackendId,
    pub client: ClientSide,
    pub request_id: RequestId,
    /// What is left of the request body to forward.
    pub request_body: Framing,
    /// Head length still at the front of the client's input: a bodiless request stays
    /// there until its response starts, so that it can be sent again on a new connection.
    pub replayable_head: Option<usize>,
    pub response: ResponsePhase,
    /// Any byte of a final response went to the client.
    pub responded: bool,
    pub started: Instant,
    pub tried: Tried,
    pub log: RequestLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsePhase {
    Head,
    Body {
        framing: Framing,
        dechunk: bool,
        reusable: bool,
        close_client: bool,
    },
    Done {
        reusable: bool,
        close_client: bool,
    },
    /// A 101 is on its way to the client; then the exchange becomes a tunnel.
    Switching,
}

pub(super) fn dispatch(
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
    // Bytes behind an upgrade request would be sent to the backend as the new protocol.
    if head.upgrade && (!head.framing.is_done() || c.io.input_len() > head.len) {
        if let Some(buf) = c.io.input.as_mut() {
            buf.consume(head.len);
        }
        core.buffers.put(forward);
        core.metrics.local_response(400);
        let text = "an upgrade request must come alone, without a body or requests behind it";
        answer(c, core, key, 400, text, Some(&head.request_id), true);
        return;
    }
    let replayable = head.framing.is_done();
    let mut ex = core.exchanges.get(Exchange {
        upstream: usize::MAX,
        backend: 0,
        client: ClientSide {
            method: head.method,
            version: head.version,
            keep_alive: head.keep_alive,
            upgrade: head.upgrade,
        },
        request_id: head.request_id,
        request_body: head.framing,
        replayable_head: replayable.then_some(head.len),
        response: ResponsePhase::Head,
        responded: false,
        started: core.now,
        tried: Tried::default(),
        log: RequestLog::start(core.access.enabled(), &c.io.input_data()[..head.path.1]),
    });
    let ip = c.peer.ip();
    let pick = {
        let input = c.io.input_data();
        let ctx = PickContext {
            client_ip: Some(ip),
            path: &input[head.path.0..head.path.1],
        };
        pick_backend(core, &ctx, &ex.tried)
    };
    // A bodiless request stays in the input until its answer starts, to be sent again
    // if needed; one that is refused, or whose body follows, leaves it now.
    if let Some(buf) =
        c.io.input
            .as_mut()
            .filter(|_| !replayable || pick.is_none())
    {
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
        let answer = ex.log.answered(Some(503), &head.request_id);
        core.answered(c.peer, Duration::ZERO, None, answer);
        core.exchanges.put(ex);
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
    let owner = Owner::Client(client);
    let pooled = take_pooled(conns, core, backend, owner);
    let ukey = match pooled.map_or_else(|| connect(conns, core, owner, backend), Ok) {
        Ok(ukey) => ukey,
        Err(e) => {
            // Per attempt: debug. The DOWN transition says it once, at warn.
            debug!(
                "connect to backend {} failed: {e}",
                core.backends[backend].label
            );
            observe(core, backend, Some(Failure::Connect), &e.to_string());
            return Err(forward);
        }
    };
    core.metrics.backends[backend].bytes_sent += forward.len() as u64;
    if let Some(u) = upstream_mut(conns, ukey) {
        u.io.output = Some(forward);
    }
    ex.upstream = ukey;
    core.backends[backend].request_started();
    Ok(())
}

/// The request never reached backend `ex.backend`: send it to another one, or answer 502/503.
pub(super) fn retry_elsewhere(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Box<Exchange>,
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
pub(super) fn fail_exchange(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    ex: Box<Exchange>,
    status: u16,
    text: &str,
) {
    let took = core.now.saturating_duration_since(ex.started);
    if ex.tried.count() > 0 {
        core.metrics
            .request(ex.backend, ex.client.method, status, took);
    } else {
        core.metrics.local_response(status);
    }
    let Some(c) = client_mut(conns, key) else {
        return core.exchanges.put(ex);
    };
    let backend = (ex.tried.count() > 0).then_some(ex.backend);
    core.answered(
        c.peer,
        took,
        backend,
        ex.log.answered(Some(status), &ex.request_id),
    );
    if ex.responded {
        // What came before the break still goes out (its sends may have been held this
        // turn); the close that follows tells the client the response was cut short.
        c.state = ClientState::Answering { close: true };
        return core.exchanges.put(ex);
    }
    let close = !ex.request_body.is_done() || !ex.client.keep_alive;
    if let (Some(len), Some(buf)) = (ex.replayable_head, c.io.input.as_mut()) {
        buf.consume(len);
    }
    if let Some(out) = c.io.output.as_mut() {
        out.clear();
    }
    answer(c, core, key, status, text, Some(&ex.request_id), close);
    core.exchanges.put(ex);
}

pub(super) fn proxy_step(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Box<Exchange>,
) -> Step {
    let ukey = ex.upstream;
    let Some((Conn::Client(c), Conn::Upstream(u))) = conns.get2_mut(key, ukey) else {
        return Step::Close;
    };
    let result = pump(c, &mut ex, u, core, key);
    match result {
        Pump::Wait => {
            c.state = ClientState::Proxying(ex);
            Step::Wait
        }
        Pump::Yield => {
            c.state = ClientState::Proxying(ex);
            core.revisit.push(key);
            Step::Wait
        }
        Pump::Done {
            reusable,
            close_client,
        } => {
            let backend = ex.backend;
            let took = core.now.saturating_duration_since(ex.started);
            let answer = ex.log.answered(None, &ex.request_id);
            core.answered(c.peer, took, Some(backend), answer);
            core.backends[backend].request_done();
            let body_done = ex.request_body.is_done();
            core.exchanges.put(ex);
            let reusable = reusable && body_done && u.io.input_len() == 0;
            release_upstream(conns, core, ukey, reusable);
            let Some(c) = client_mut(conns, key) else {
                return Step::Close;
            };
            if close_client || !body_done || c.io.read_closed {
                return Step::Close;
            }
            become_idle(c, core, key);
            Step::Again
        }
        Pump::UpstreamFailed(why) => {
            let backend = ex.backend;
            core.backends[backend].request_done();
            let replayable = ex.replayable_head.is_some();
            let stale = u.reused && replayable;
            close_upstream(conns, core, ukey);
            if stale {
                // A pooled connection the backend had closed: send the request again, fresh.
                return replay(conns, core, key, ex, Replay::SameBackend);
            }
            warn!(
                "backend {} failed request {:?}: {why}",
                core.backends[backend].label, ex.request_id
            );
            observe(core, backend, Some(Failure::Reset), why);
            if replayable && matches!(ex.client.method, Method::Get | Method::Head) {
                // Nothing came back, and a GET or HEAD may be sent twice (RFC 9110 9.2.2).
                return replay(conns, core, key, ex, Replay::Elsewhere);
            }
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
            core.backends[backend].request_done();
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
            core.backends[backend].request_done();
            close_upstream(conns, core, ukey);
            fail_exchange(conns, core, key, ex, 400, why);
            Step::Again
        }
        Pump::ClientGone => {
            c.state = ClientState::Proxying(ex);
            Step::Close
        }
        Pump::Upgraded => {
            let took = core.now.saturating_duration_since(ex.started);
            let answer = ex.log.answered(None, &ex.request_id);
            core.answered(c.peer, took, Some(ex.backend), answer);
            core.exchanges.put(ex);
            // The backend counts the tunnel as in flight until it closes.
            crate::tcp::tunnel(conns, core, key, ukey);
            Step::Wait
        }
    }
}

/// Sends a bodiless request again on a fresh connection to the same backend.
/// Where a request whose head is still in the client's input is sent again.
enum Replay {
    /// On a fresh connection to the same backend: its pooled connection had gone stale.
    SameBackend,
    /// On another backend, within --retries: this one failed.
    Elsewhere,
}

fn replay(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Box<Exchange>,
    how: Replay,
) -> Step {
    let Some(c) = client_mut(conns, key) else {
        return Step::Close;
    };
    let mut forward = core.buffers.get();
    let info = ForwardInfo {
        client_ip: c.peer.ip(),
        fresh_id: ex.request_id,
        default_host: &core.default_host,
        tls: c.io.is_tls(),
    };
    match head::parse_request(c.io.input_data(), &info, &mut forward) {
        Ok(Some(_)) if matches!(how, Replay::Elsewhere) => {
            retry_elsewhere(conns, core, key, ex, forward, "failed before answering");
        }
        Ok(Some(_)) => match connect(conns, core, Owner::Client(key), ex.backend) {
            Ok(ukey) => {
                if let Some(u) = upstream_mut(conns, ukey) {
                    u.io.output = Some(forward);
                }
                ex.upstream = ukey;
                core.backends[ex.backend].request_started();
                if let Some(c) = client_mut(conns, key) {
                    c.state = ClientState::Proxying(ex);
                }
            }
            Err(e) => {
                observe(core, ex.backend, Some(Failure::Connect), &e.to_string());
                retry_elsewhere(conns, core, key, ex, forward, "reconnect failed");
            }
        },
        _ => {
            core.buffers.put(forward);
            fail_exchange(conns, core, key, ex, 502, "the backend failed to answer");
        }
    }
    Step::Again
}
