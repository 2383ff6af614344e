//! What a request's route makes of it once its head is read: an exchange with one backend
//! of the route's pool, a POST fanned out to all of them, or lb's own answer (the route's
//! redirect or fixed response, or 404 when no route took the request).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use slab::Slab;

use super::client::{ClientState, answer, client_mut};
use super::exchange::dispatch;
use super::head::{Method, RequestHead};
use crate::access_log::Answered;
use crate::buffer::Buffer;
use crate::event_loop::{Conn, Core};
use crate::fanout;
use crate::front::{FrontId, Routes};
use crate::pool::PoolId;
use crate::route::{Action, CompiledRoute, Edits};

/// What a proxying route decided for one request, carried with it to its backends.
pub struct Routed {
    /// The route's place in the site's list.
    pub route: usize,
    pub pool: PoolId,
    /// The route's own, else the pool's.
    pub server_timeout: Duration,
    /// The route's own, else the process's.
    pub max_body: u64,
    /// The route, while its answer still needs its rules; `None` if it has none.
    pub rules: Option<RouteRef>,
}

/// A route of the table a request was routed by, kept across a reload that swaps the
/// tables: what a request started with, it finishes with.
#[derive(Clone)]
pub struct RouteRef {
    routes: Arc<Routes>,
    front: FrontId,
    index: usize,
}

impl RouteRef {
    fn route(&self) -> Option<&CompiledRoute> {
        self.routes
            .tables
            .get(self.front)?
            .as_ref()?
            .route(self.index)
    }

    /// The route's rules for the answer.
    pub fn response_headers(&self) -> Option<&Edits> {
        self.route().map(CompiledRoute::response_headers)
    }
}

/// A parsed request goes where its route says; `forward` holds the head to forward, or
/// the head of the route's own answer.
pub(super) fn take(
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
    let front = c.front as usize;
    let routes = Arc::clone(&core.routes);
    let route = head
        .route
        .and_then(|i| Some((i, routes.table(front)?.route(i)?)));
    let Some((index, route)) = route else {
        core.buffers.put(forward);
        core.metrics.unrouted += 1;
        core.metrics.local_response(404);
        debug!("{}: no route for the request", c.peer);
        let answered = Answered::ours(c.io.input_data(), 404, Some(&head.request_id));
        core.answered(c.peer, Duration::ZERO, None, answered);
        if let Some(input) = c.io.input.as_mut() {
            input.consume(head.len);
        }
        let close = !head.framing.is_done() || !head.keep_alive;
        let text = "no route takes this request";
        return answer(c, core, key, 404, text, Some(&head.request_id), close);
    };
    core.metrics.route_taken(index);
    let Action::Proxy(proxy) = route.action() else {
        return own_answer(c, core, key, (&head, index, route), forward);
    };
    let Some(pool) = routes.pools.get(index).copied().flatten() else {
        core.buffers.put(forward);
        return;
    };
    let settings = &core.pools[pool].settings;
    let routed = Routed {
        route: index,
        pool,
        server_timeout: proxy.server_timeout.unwrap_or(settings.server_timeout),
        max_body: proxy.max_body.unwrap_or(core.cfg.max_body),
        rules: (!route.response_headers().is_empty()).then(|| RouteRef {
            routes: Arc::clone(&routes),
            front,
            index,
        }),
    };
    if head.method == Method::Post && proxy.fanout != Some(false) {
        fanout::begin(c, core, key, (head, routed), forward);
    } else {
        dispatch(conns, core, key, (head, routed), forward);
    }
}

/// The route redirects or answers itself: `forward` holds the answer's head but for what
/// varies per request, which is added here. A request with a body is answered and its
/// connection closed, as for lb's other answers.
fn own_answer(
    c: &mut super::client::ClientConn,
    core: &mut Core,
    key: usize,
    (head, index, route): (&RequestHead, usize, &CompiledRoute),
    forward: Buffer,
) {
    let (status, body): (u16, &[u8]) = match route.action() {
        Action::Redirect(r) => (r.status(), b""),
        Action::Respond(r) => (r.status(), r.body()),
        Action::Proxy(_) => return core.buffers.put(forward),
    };
    let answered =
        Answered::ours(c.io.input_data(), status, Some(&head.request_id)).by(Some(index));
    core.metrics.local_response(status);
    core.answered(c.peer, Duration::ZERO, None, answered);
    if let Some(input) = c.io.input.as_mut() {
        input.consume(head.len);
    }
    let close = !head.framing.is_done() || !head.keep_alive || core.draining;
    let mut out = forward;
    let _ = write!(out, "X-Request-Id: {}\r\n", head.request_id.as_str());
    if close {
        let _ = out.write_str("Connection: close\r\n");
    }
    let _ = out.write_str("\r\n");
    if head.method != Method::Head && !out.push(body) {
        core.buffers.put(out);
        let text = "the route's answer is larger than a buffer";
        return answer(c, core, key, 500, text, Some(&head.request_id), true);
    }
    if let Some(old) = c.io.output.replace(out) {
        core.buffers.put(old);
    }
    c.state = ClientState::Answering { close };
    core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
}
