//! Reading a POST body whole before it fans out: bounded by --max-body, and answered
//! `100 Continue` when the client asks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::access_log::{Answered, request_line};
use crate::buffer::Buffer;
use crate::conn::Filled;
use crate::event_loop::{Core, STEP_BUDGET};
use crate::http::Routed;
use crate::http::body::Framing;
use crate::http::client::{self, ClientState, Step};
use crate::http::head::{ClientSide, RequestHead, RequestId};
use crate::pool::PoolId;

/// A POST whose body is still arriving.
pub struct PendingPost {
    /// The pool its route sends it to.
    pub(super) pool: PoolId,
    /// The largest body its route takes.
    pub(super) max_body: u64,
    /// How long a backend may stay silent on a copy of it.
    pub(super) server_timeout: std::time::Duration,
    /// The forwarded head, then the body bytes as they came.
    pub(super) request: Vec<u8>,
    pub(super) framing: Framing,
    pub(super) body_len: u64,
    pub(super) client: ClientSide,
    pub(super) request_id: RequestId,
    /// When its head was complete, for the access log.
    pub(super) started: Instant,
}

impl PendingPost {
    pub fn request_id(&self) -> RequestId {
        self.request_id
    }

    /// Its body never all came: lb answers `status` itself, or (`None`) the client left.
    /// Counted and logged.
    pub fn ended(&self, client: SocketAddr, core: &mut Core, status: Option<u16>) {
        if let Some(status) = status {
            core.metrics.local_response(status);
        }
        let took = core.now.saturating_duration_since(self.started);
        let answer = Answered {
            request: request_line(&self.request),
            status,
            bytes: 0,
            id: Some(&self.request_id),
            route: None,
        };
        core.answered(client, took, None, answer);
    }
}

/// Starts reading the body of a POST (or refuses it at once); it goes out once complete.
pub fn begin(
    c: &mut client::ClientConn,
    core: &mut Core,
    key: usize,
    (head, routed): (RequestHead, Routed),
    forward: Buffer,
) {
    let (pool, max_body) = (routed.pool, routed.max_body);
    let id = head.request_id;
    if let Some(input) = c.io.input.as_mut() {
        input.consume(head.len);
    }
    let declared = match head.framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    let too_big = declared > max_body;
    let incoming = (forward.len() as u64).saturating_add(declared);
    let refusal = if super::cap::full(core, incoming) {
        Some((503, "too many writes are still being delivered"))
    } else if too_big {
        Some((413, "the body is larger than --max-body"))
    } else {
        None
    };
    if let Some((status, text)) = refusal {
        core.metrics.local_response(status);
        let answer = Answered::ours(forward.data(), status, Some(&id));
        core.answered(c.peer, Duration::ZERO, None, answer);
        core.buffers.put(forward);
        let close = !head.framing.is_done() || !head.keep_alive;
        client::answer(c, core, key, status, text, Some(&id), close);
        return;
    }
    if head.expect_continue && head.version == 1 && !head.framing.is_done() {
        let out = c.io.output.get_or_insert_with(|| core.buffers.get());
        out.push(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let pending = PendingPost {
        pool,
        max_body,
        server_timeout: routed.server_timeout,
        request: forward.data().to_vec(),
        framing: head.framing,
        body_len: 0,
        client: ClientSide {
            method: head.method,
            version: head.version,
            keep_alive: head.keep_alive,
            upgrade: false,
        },
        request_id: id,
        started: core.now,
    };
    core.buffers.put(forward);
    // The head timer becomes the body timer: a body that stops arriving gets 408.
    if !head.framing.is_done() {
        core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial);
    }
    c.state = ClientState::Buffering(Box::new(pending));
}

/// Reads more of a POST body; `Step::Launch` once it is all here.
pub fn buffer_body(
    c: &mut client::ClientConn,
    core: &mut Core,
    key: usize,
    mut p: Box<PendingPost>,
) -> Step {
    if c.io.flush(&mut core.buffers).is_err() {
        c.state = ClientState::Buffering(p);
        return Step::Close;
    }
    let mut taken = 0;
    loop {
        if let Some(input) = c.io.input.as_mut() {
            let mut payload = 0;
            let used = match p.framing.walk(input.data(), |d| payload += d.len() as u64) {
                Ok(used) => used,
                Err(e) => {
                    p.ended(c.peer, core, Some(400));
                    client::answer(c, core, key, 400, e.0, Some(&p.request_id), true);
                    return Step::Again;
                }
            };
            p.body_len += payload;
            taken += used as u64;
            if p.body_len > p.max_body {
                p.ended(c.peer, core, Some(413));
                let text = "the body is larger than --max-body";
                client::answer(c, core, key, 413, text, Some(&p.request_id), true);
                return Step::Again;
            }
            p.request.extend_from_slice(&input.data()[..used]);
            input.consume(used);
        }
        core.buffers.release_if_empty(&mut c.io.input);
        if p.framing.is_done() {
            return Step::Launch(p);
        }
        if taken >= STEP_BUDGET {
            core.revisit.push(key);
            c.state = ClientState::Buffering(p);
            return Step::Wait;
        }
        match c.io.fill(&mut core.buffers) {
            Filled::Got => core.arm(&mut c.timer, core.cfg.client_timeout, key, c.serial),
            Filled::Nothing => {
                c.state = ClientState::Buffering(p);
                return Step::Wait;
            }
            Filled::Eof | Filled::Failed => {
                // Left as it was, so that closing the client logs the request it left.
                c.state = ClientState::Buffering(p);
                return Step::Close;
            }
        }
    }
}
