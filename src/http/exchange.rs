//! One request and its response: dispatch to a backend, connect-failure retries, and
//! what follows each pump (`pump.rs`) until the response is written.

use std::time::{Duration, Instant};

use log::debug;
use slab::Slab;

use super::body::Framing;
use super::client::{ClientState, Step, answer, client_mut};
use super::head::{self, ClientSide, ForwardInfo, RequestHead, RequestId};
use super::routed::{RouteRef, Routed};
use super::upstream::{Owner, connect, take_pooled, upstream_mut};
use crate::access_log::RequestLog;
use crate::backend::{BackendId, Tried};
use crate::buffer::Buffer;
use crate::event_loop::{Conn, Core};
use crate::free_list::FreeList;
use crate::limits::is_local_exhaustion;
use crate::metrics::Failure;
use crate::pool::PoolId;
use crate::probe::observe;
use crate::strategy::{Members, PickContext};
use crate::timer::TimerId;

mod outcome;
mod refused;
pub(super) use outcome::{client_stalled, fail_exchange, proxy_step, server_timed_out};

/// Exchanges live in boxes, so that an idle client's slab slot stays small, and the boxes
/// are reused, so that a request allocates nothing.
pub struct ExchangePool {
    free: FreeList<Box<Exchange>>,
}

impl Default for ExchangePool {
    fn default() -> Self {
        ExchangePool {
            free: FreeList::new(1024),
        }
    }
}

impl ExchangePool {
    pub fn get(&mut self, ex: Exchange) -> Box<Exchange> {
        match self.free.take() {
            Some(mut boxed) => {
                *boxed = ex;
                boxed
            }
            None => Box::new(ex),
        }
    }

    pub fn put(&mut self, ex: Box<Exchange>) {
        let _ = self.free.give(ex);
    }

    /// Once a housekeeping period: drops the boxes no one needed in it.
    pub fn trim_unused(&mut self) -> bool {
        self.free.trim_unused()
    }
}

/// One request and its response, from dispatch until the response is written.
pub struct Exchange {
    /// The pool its route sends it to.
    pub pool: PoolId,
    /// The route that took it (its place in the site's list); `None` for a POST resumed
    /// from the journal whose answer streams.
    pub route: Option<usize>,
    /// How long its backend may stay silent: its route's timeout.
    pub server_timeout: Duration,
    /// A gRPC call's absolute deadline (its `grpc-timeout` from when lb read its head):
    /// the server timer never runs past it, however the bytes flow.
    pub deadline: Option<Instant>,
    /// The backend connection's timer while it runs to `deadline` alone (lb waits on the
    /// client, not the backend); any other timer there is its server timeout.
    pub deadline_timer: Option<TimerId>,
    /// A gRPC call: a timeout of lb's is answered with grpc-status DEADLINE_EXCEEDED.
    pub grpc: bool,
    /// Its route, for the rules on its answer (`None`: it has none).
    pub rules: Option<RouteRef>,
    /// Slab key of the backend connection serving it.
    pub upstream: usize,
    pub backend: BackendId,
    pub client: ClientSide,
    /// An upgrade request's Upgrade value, in the client's input (where its head stays
    /// until the answer starts): the protocols a 101 may switch to.
    pub upgrade_offer: Option<(usize, usize)>,
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
    /// When the client's timer was last pushed back while the exchange waited for it.
    pub client_armed_at: Instant,
    /// Request body bytes the client sent since its current --client-timeout window began.
    pub body_window: u64,
    pub tried: Tried,
    pub log: RequestLog,
}

impl Exchange {
    /// The client still owes part of its request body.
    pub fn body_in_progress(&self) -> bool {
        !self.request_body.is_done()
    }

    /// The client's --client-timeout window is over: true if its body is still arriving
    /// and brought `quota` bytes in the window (a new window begins). Measured per window,
    /// so that a fast start earns no time for a trickle after it.
    pub fn body_window_ended(&mut self, quota: u64) -> bool {
        self.body_in_progress() && std::mem::take(&mut self.body_window) >= quota
    }
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
    (head, routed): (RequestHead, Routed),
    forward: Buffer,
) {
    let pool = routed.pool;
    let Some(c) = client_mut(conns, key) else {
        core.buffers.put(forward);
        return;
    };
    core.disarm(&mut c.timer);
    // Bytes behind an upgrade request would be sent to the backend as the new protocol.
    if head.upgrade.is_some() && (!head.framing.is_done() || c.io.input_len() > head.len) {
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
        pool,
        route: Some(routed.route),
        server_timeout: routed.server_timeout,
        deadline: head.grpc.deadline_from(core.now),
        deadline_timer: None,
        grpc: head.grpc.grpc,
        rules: routed.rules,
        upstream: usize::MAX,
        backend: 0,
        client: ClientSide {
            method: head.method,
            version: head.version,
            keep_alive: head.keep_alive,
            upgrade: head.upgrade.is_some(),
        },
        upgrade_offer: head.upgrade,
        request_id: head.request_id,
        request_body: head.framing,
        replayable_head: replayable.then_some(head.len),
        response: ResponsePhase::Head,
        responded: false,
        started: core.now,
        client_armed_at: core.now,
        body_window: 0,
        tried: Tried::default(),
        log: RequestLog::start(
            core.access.enabled(),
            &c.io.input_data()[..head.path.1],
            Some(routed.route),
        ),
    });
    let ip = c.peer.ip();
    let pick = {
        let input = c.io.input_data();
        let ctx = PickContext {
            client_ip: Some(ip),
            path: &input[head.path.0..head.path.1],
        };
        pick_backend(core, pool, &ctx, &ex.tried)
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
        Err(NotAttached::Backend(forward)) => {
            retry_elsewhere(conns, core, key, ex, forward, "connect failed");
        }
        Err(NotAttached::Exhausted(forward)) => {
            core.buffers.put(forward);
            fail_exhausted(conns, core, key, ex);
        }
    }
}

/// Why a request got no backend connection; the unsent request comes back.
enum NotAttached {
    /// The backend refused or failed: another one may do.
    Backend(Buffer),
    /// lb itself is out of descriptors or ports: every backend would fail alike, and
    /// none of them is to blame.
    Exhausted(Buffer),
}

fn fail_exhausted(conns: &mut Slab<Conn>, core: &mut Core, key: usize, ex: Box<Exchange>) {
    let text = "the load balancer is out of connections; try again";
    fail_exchange(conns, core, key, ex, 503, text);
}

fn pick_backend(
    core: &mut Core,
    pool: PoolId,
    ctx: &PickContext,
    tried: &Tried,
) -> Option<BackendId> {
    let p = &mut core.pools[pool];
    let members = Members::of(&core.backends, &p.members);
    p.strategy.pick(members, ctx, &|id| !tried.contains(id))
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
) -> Result<(), NotAttached> {
    ex.backend = backend;
    let owner = Owner::Client(client);
    let owner = (owner, ex.server_timeout);
    let pooled = take_pooled(conns, core, backend, owner, ex.deadline);
    let ukey = match pooled.map_or_else(|| connect(conns, core, owner, backend), Ok) {
        Ok(ukey) => ukey,
        Err(e) if is_local_exhaustion(&e) => {
            core.exhausted("connecting to a backend", &e);
            return Err(NotAttached::Exhausted(forward));
        }
        Err(e) => {
            ex.tried.add(backend);
            // Per attempt: debug. The DOWN transition says it once, at warn.
            debug!(
                "connect to backend {} failed: {e}",
                core.backends[backend].label
            );
            observe(core, backend, Some(Failure::Connect), &e.to_string());
            return Err(NotAttached::Backend(forward));
        }
    };
    ex.tried.add(backend);
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
    ex: Box<Exchange>,
    forward: Buffer,
    why: &str,
) {
    retry(conns, core, key, ex, forward, why, None);
}

/// As `retry_elsewhere`; once no other backend is left, `again` (one already tried) may
/// take the request once more, within --retries (exchange/refused.rs).
fn retry(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    mut ex: Box<Exchange>,
    forward: Buffer,
    why: &str,
    mut again: Option<BackendId>,
) {
    debug!(
        "request {:?} to {}: {why}",
        ex.request_id, core.backends[ex.backend].label
    );
    let mut forward = Some(forward);
    while ex.tried.count() <= core.pools[ex.pool].settings.retries as usize {
        let ctx = PickContext {
            client_ip: client_mut(conns, key).map(|c| c.peer.ip()),
            path: b"",
        };
        let next = pick_backend(core, ex.pool, &ctx, &ex.tried).or_else(|| {
            again
                .take()
                .and_then(|b| refused::pick_again(core, ex.pool, &ctx, b))
        });
        let Some(next) = next else {
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
            Err(NotAttached::Backend(buf)) => forward = Some(buf),
            Err(NotAttached::Exhausted(buf)) => {
                core.buffers.put(buf);
                return fail_exhausted(conns, core, key, ex);
            }
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

/// Where a request whose head is still in the client's input is sent again.
enum Replay {
    /// On a fresh connection to the same backend: its pooled connection had gone stale.
    SameBackend,
    /// On another backend, within --retries: this one failed.
    Elsewhere,
}

/// Sends a bodiless request again, where `how` says.
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
    // Routed again by the same table, so the same head goes out (after a reload, by the
    // new one: a request is only replayed before any of it reached a backend).
    let Some(table) = core.routes.table(c.front as usize) else {
        core.buffers.put(forward);
        return Step::Close;
    };
    let routing = head::Routing {
        table,
        scratch: &mut core.route_scratch,
    };
    match head::parse_request(c.io.input_data(), &info, &mut forward, routing) {
        // Routed elsewhere than the first time (a reload changed the routes): what is in
        // `forward` is not this exchange's request any more.
        Ok(Some(h)) if h.route != ex.route => {
            core.buffers.put(forward);
            let text = "the routes changed before the request could be sent again";
            fail_exchange(conns, core, key, ex, 503, text);
        }
        Ok(Some(_)) if matches!(how, Replay::Elsewhere) => {
            retry_elsewhere(conns, core, key, ex, forward, "failed before answering");
        }
        Ok(Some(_)) => match connect(
            conns,
            core,
            (Owner::Client(key), ex.server_timeout),
            ex.backend,
        ) {
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
            Err(e) if is_local_exhaustion(&e) => {
                core.exhausted("connecting to a backend", &e);
                core.buffers.put(forward);
                fail_exhausted(conns, core, key, ex);
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
