//! What the client of a POST is told, and when:
//! - the first delivered answer, at once, as the backend sends it: the backend connection
//!   becomes the client's exchange, and the pump streams the body on with backpressure,
//!   as for a GET (with a journal, once the job's record is durable: until then the answer
//!   waits unread in its connection);
//! - once no copy can be delivered any more: the first refused answer as the backend sent
//!   it (a 404 stays a 404 with its body), kept whole up to --fanout-max-response within
//!   --max-buffered-bytes, or its status in lb's words when it was too large to keep; 502
//!   when every copy was given up;
//! - 504 at --fanout-timeout while copies are still being retried, saying so;
//! - 503 when the journal cannot take the write (nothing was sent).
//!
//! Answers of lb's own carry the request id and honour the client's `Connection: close`.

use std::net::SocketAddr;

use slab::Slab;

use super::copy::{Capture, Response};
use super::outcome::Outcome;
use super::{Job, Reply, deliver, durable};
use crate::access_log::{Answered, RequestLog};
use crate::backend::{BackendId, Tried};
use crate::buffer::Buffer;
use crate::event_loop::{Conn, Core};
use crate::http::body::Framing;
use crate::http::client::{self, ClientState, Kept};
use crate::http::exchange::{Exchange, ResponsePhase};
use crate::http::upstream::{Owner, UpstreamState, arm_server_timer, close_upstream, upstream_mut};

/// A finished copy's answer: a delivered one streams to the waiting client; the first
/// refused one is kept in case nothing can be delivered.
pub(super) fn offer(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    backend: BackendId,
    mut r: Response,
) {
    let capture = std::mem::replace(&mut r.capture, Capture::Skip);
    if let Capture::Stream { head, upstream } = capture {
        return stream(conns, core, job, (backend, upstream), head, &r);
    }
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    if r.outcome != Outcome::Refused || j.refusal.is_some() {
        return;
    }
    let bytes = match capture {
        Capture::Keep(bytes) => Some(bytes),
        Capture::Dropped => None,
        Capture::Skip | Capture::Stream { .. } => return,
    };
    j.refusal = Some(Reply {
        bytes,
        close: r.close_client,
        from: (backend, r.status),
    });
}

/// Takes the waiting client of `job`, if it still waits for this job's answer.
fn take_client(conns: &mut Slab<Conn>, core: &mut Core, job: usize) -> Option<usize> {
    let j = core.fanout.jobs.get_mut(job).filter(|j| !j.answered)?;
    let (key, serial) = j.client.take()?;
    j.answered = true;
    if let Some(t) = j.deadline.take() {
        core.timers.cancel(t);
    }
    let c = client::client_mut(conns, key)?;
    let waits = matches!(c.state, ClientState::AwaitingFanout { job: w } if w == job);
    (c.serial == serial && waits).then_some(key)
}

/// The delivered answer goes to the waiting client as it arrives: backend connection
/// `ukey`, which carries it, becomes the client's exchange, and the pump moves the body on
/// as the client takes it (the connection is not read while the client's output is
/// full), as for a GET. Nothing of it is held whole. A refusal kept meanwhile is let go.
fn stream(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    (backend, ukey): (BackendId, usize),
    head: Buffer,
    r: &Response,
) {
    let logged = core.fanout.for_log(job, core.access.enabled());
    let of_job =
        (core.fanout.jobs.get(job)).map(|j| (j.client_side, j.pool, j.route, j.server_timeout));
    let key = take_client(conns, core, job);
    let (Some(key), Some((request, started, id)), Some((side, pool, route, server_timeout))) =
        (key, logged, of_job)
    else {
        core.buffers.put(head);
        return close_upstream(conns, core, ukey);
    };
    if let Some(j) = core.fanout.jobs.get_mut(job) {
        j.refusal = None;
    }
    let mut log = RequestLog::start(core.access.enabled(), &request, route);
    log.status = Some(r.status);
    log.bytes = head.len() as u64;
    let mut tried = Tried::default();
    tried.add(backend);
    let (reusable, close_client) = (r.reusable, r.close_client || core.draining);
    let response = match r.framing {
        Framing::Done => ResponsePhase::Done {
            reusable,
            close_client,
        },
        framing => ResponsePhase::Body {
            framing,
            dechunk: r.dechunk,
            reusable,
            close_client,
        },
    };
    let ex = core.exchanges.get(Exchange {
        pool,
        route,
        server_timeout,
        deadline: None,
        deadline_timer: None,
        grpc: false,
        rules: None,
        upstream: ukey,
        backend,
        client: side,
        request_id: id,
        request_body: Framing::Done,
        upgrade_offer: None,
        replayable_head: None,
        response,
        responded: true,
        started,
        client_armed_at: core.now,
        body_window: 0,
        tried,
        log,
    });
    // The exchange counts as in flight at its backend until the pump is done with it.
    core.backends[backend].request_started();
    if let Some(u) = upstream_mut(conns, ukey) {
        u.state = UpstreamState::Busy(Owner::Client(key));
    }
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    // After what is still unsent (a 100 Continue), or in the head's own buffer.
    let placed = match c.io.output.as_mut() {
        Some(out) if !out.is_empty() => {
            let pushed = out.push(head.data());
            core.buffers.put(head);
            pushed
        }
        _ => {
            core.buffers.release(&mut c.io.output);
            c.io.output = Some(head);
            true
        }
    };
    c.state = ClientState::Proxying(ex);
    if !placed {
        return client::close_client(conns, core, key);
    }
    client::drive(conns, core, key);
}

/// The job's record is durable, or will never be (after `not_durable` has answered the
/// client): a delivered answer parked for it goes on, to the client if it still waits.
pub(super) fn unpark(conns: &mut Slab<Conn>, core: &mut Core, job: usize) {
    let Some((_, ukey)) = core.fanout.jobs.get_mut(job).and_then(|j| j.parked.take()) else {
        return;
    };
    // The backend is timed again while the rest of its answer is read.
    if let Some(u) = upstream_mut(conns, ukey) {
        arm_server_timer(core, u, ukey, None);
    }
    deliver::copy_ready(conns, core, ukey);
}

/// The job's record could not be made durable, though its copies went out: a client still
/// waiting gets a 503 that says so (a delivered answer parked for it is not relayed).
pub(super) fn not_durable(conns: &mut Slab<Conn>, core: &mut Core, job: usize, why: &str) {
    let text = format!(
        "the write went out but could not be made durable ({why}); it may have been \
         applied, and lb goes on delivering it while it runs"
    );
    answer_waiting(conns, core, job, 503, &text);
    unpark(conns, core, job);
}

/// Answers the waiting client with an answer of lb's own.
fn answer_waiting(conns: &mut Slab<Conn>, core: &mut Core, job: usize, status: u16, text: &str) {
    let Some(j) = core.fanout.jobs.get(job) else {
        return;
    };
    let (id, close, route) = (j.request_id, !j.client_side.keep_alive, j.route);
    let logged = core.fanout.for_log(job, core.access.enabled());
    let Some(key) = take_client(conns, core, job) else {
        return;
    };
    if let Some(c) = client::client_mut(conns, key) {
        core.metrics.local_response(status);
        if let Some((request, started, _)) = logged {
            let took = core.now.saturating_duration_since(started);
            let answer = Answered::ours(&request, status, Some(&id)).by(route);
            core.answered(c.peer, took, None, answer);
        }
        client::answer(c, core, key, status, text, Some(&id), close);
        client::drive(conns, core, key);
    }
}

/// The job's last copy finished without a delivered answer reaching the client: it gets
/// the first refusal, or 502. `j` has left the slab; `job` was its key.
pub(super) fn nothing_deliverable(conns: &mut Slab<Conn>, core: &mut Core, job: usize, j: Job) {
    if let Some(t) = j.deadline {
        core.timers.cancel(t);
    }
    let Some((key, serial)) = j.client.filter(|_| !j.answered) else {
        return;
    };
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    if c.serial != serial || !matches!(c.state, ClientState::AwaitingFanout { job: w } if w == job)
    {
        return;
    }
    let took = core.now.saturating_duration_since(j.started);
    let mut answer = Answered::ours(&j.request, 502, Some(&j.request_id)).by(j.route);
    let close = !j.client_side.keep_alive;
    match j.refusal {
        Some(Reply {
            bytes: Some(bytes),
            close,
            from: (backend, status),
        }) => {
            answer.status = Some(status);
            answer.bytes = bytes.len() as u64;
            core.answered(c.peer, took, Some(backend), answer);
            core.disarm(&mut c.timer);
            c.state = ClientState::Replying(Box::new(Kept {
                reply: bytes,
                sent: 0,
                window: 0,
                close: close || core.draining,
            }));
        }
        Some(Reply {
            bytes: None,
            from: (backend, status),
            ..
        }) => {
            // Told in lb's words, with a body: a status that may carry none becomes 502.
            let status = if matches!(status, 200..=203 | 205..=303 | 305..=599) {
                status
            } else {
                502
            };
            core.metrics.local_response(status);
            answer.status = Some(status);
            core.answered(c.peer, took, Some(backend), answer);
            let text = format!(
                "{} refused the write with status {status}; its answer was too large to keep \
                 (--fanout-max-response, --max-buffered-bytes)",
                core.backends[backend].label
            );
            client::answer(c, core, key, status, &text, Some(&j.request_id), close);
        }
        None => {
            core.metrics.local_response(502);
            core.answered(c.peer, took, None, answer);
            let text = "no backend accepted the write: every copy was given up";
            client::answer(c, core, key, 502, text, Some(&j.request_id), close);
        }
    }
    client::drive(conns, core, key);
}

/// The journal could not write the job: its client gets 503 and nothing was sent.
pub(super) fn journal_failed(conns: &mut Slab<Conn>, core: &mut Core, job: usize, why: &str) {
    let text = format!("the write could not be made durable ({why}); nothing was sent");
    answer_waiting(conns, core, job, 503, &text);
    if core.fanout.jobs.contains(job) {
        let j = super::remove_job(core, job);
        durable::job_finished(core, &j);
    }
}

/// --fanout-timeout passed with no answer for the client: 504, and the copies go on.
pub fn deadline_passed(conns: &mut Slab<Conn>, core: &mut Core, job: usize, serial: u32) {
    let Some(j) = core.fanout.jobs.get_mut(job).filter(|j| j.serial == serial) else {
        return;
    };
    j.deadline = None;
    let owed = j.copies.iter().filter(|c| !c.phase.is_final()).count();
    let text = format!(
        "no backend has confirmed the write yet; it is still being delivered to {owed} \
         backend(s) (X-Request-Id {})",
        j.request_id.as_str()
    );
    answer_waiting(conns, core, job, 504, &text);
}

/// The waiting client (`peer`) went away: the copies go on without it; its line says so.
pub fn client_gone(core: &mut Core, job: usize, peer: SocketAddr) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    j.client = None;
    let route = j.route;
    if let Some((request, started, id)) = core.fanout.for_log(job, core.access.enabled()) {
        let took = core.now.saturating_duration_since(started);
        let answer = Answered {
            request: &request,
            status: None,
            bytes: 0,
            id: Some(&id),
            route,
        };
        core.answered(peer, took, None, answer);
    }
}
