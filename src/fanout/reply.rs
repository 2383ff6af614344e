//! What the client of a POST is told, and when:
//! - the first delivered answer, at once, as the backend sent it (with a journal, once the
//!   job's record is durable);
//! - once no copy can be delivered any more: the first refused answer as the backend sent
//!   it (a 404 stays a 404 with its body), or 502 when every copy was given up;
//! - 504 at --fanout-timeout while copies are still being retried, saying so;
//! - 503 when the journal cannot take the write (nothing was sent).
//!
//! Answers of lb's own carry the request id and honour the client's `Connection: close`.

use std::net::SocketAddr;

use slab::Slab;

use super::copy::{Capture, Response};
use super::outcome::Outcome;
use super::{Job, Reply, durable};
use crate::access_log::Answered;
use crate::backend::BackendId;
use crate::event_loop::{Conn, Core};
use crate::http::client::{self, ClientState};

/// A finished copy's answer: a delivered one goes to the waiting client; the first
/// refused one is kept in case nothing can be delivered.
pub(super) fn offer(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    backend: BackendId,
    r: Response,
) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let reply = |bytes| Reply {
        bytes,
        close: r.close_client,
        from: (backend, r.status),
    };
    match (r.outcome, r.capture) {
        // Not durable yet: the first delivered answer waits for the journal's sync.
        (Outcome::Delivered, Capture::Keep(bytes)) if !j.durable && !j.answered => {
            j.held = Some(reply(bytes));
            j.answered = true;
        }
        (Outcome::Delivered, Capture::Keep(_)) if !j.durable => {}
        (Outcome::Delivered, Capture::Keep(bytes)) => relay(conns, core, job, reply(bytes)),
        (Outcome::Delivered, Capture::TooLarge) => {
            let text = format!(
                "the write was delivered, but its answer is larger than --fanout-max-response \
                 ({} bytes) and cannot be relayed",
                core.pools[j.pool].settings.fanout.max_response
            );
            answer_waiting(conns, core, job, 502, &text);
        }
        (Outcome::Refused, Capture::Keep(bytes)) if j.refusal.is_none() => {
            j.refusal = Some(reply(bytes));
        }
        _ => {}
    }
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

/// Hands an answer a backend gave to the client that waits for it.
fn relay(conns: &mut Slab<Conn>, core: &mut Core, job: usize, reply: Reply) {
    let Some(key) = take_client(conns, core, job) else {
        return;
    };
    if let Some(c) = client::client_mut(conns, key) {
        let (backend, status) = reply.from;
        if let Some((request, started, id)) = core.fanout.for_log(job, core.access.enabled()) {
            let took = core.now.saturating_duration_since(started);
            let answer = Answered {
                request: &request,
                status: Some(status),
                bytes: reply.bytes.len() as u64,
                id: Some(&id),
                route: None,
            };
            core.answered(c.peer, took, Some(backend), answer);
        }
        c.state = ClientState::Replying {
            reply: reply.bytes,
            sent: 0,
            close: reply.close || core.draining,
        };
        client::drive(conns, core, key);
    }
}

/// The job's record is durable: the delivered answer held for it goes to its client.
pub(super) fn release_held(conns: &mut Slab<Conn>, core: &mut Core, job: usize) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    if let Some(reply) = j.held.take() {
        j.answered = false;
        relay(conns, core, job, reply);
    }
}

/// The job's record could not be made durable, though its copies went out: a delivered
/// answer held for it becomes a 503 that says so.
pub(super) fn not_durable(conns: &mut Slab<Conn>, core: &mut Core, job: usize, why: &str) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    j.held = None;
    j.answered = false;
    let text = format!(
        "the write went out but could not be made durable ({why}); it may have been \
         applied, and lb goes on delivering it while it runs"
    );
    answer_waiting(conns, core, job, 503, &text);
}

/// Answers the waiting client with an answer of lb's own.
fn answer_waiting(conns: &mut Slab<Conn>, core: &mut Core, job: usize, status: u16, text: &str) {
    let Some(j) = core.fanout.jobs.get(job) else {
        return;
    };
    let (id, close) = (j.request_id, !j.client_side.keep_alive);
    let logged = core.fanout.for_log(job, core.access.enabled());
    let Some(key) = take_client(conns, core, job) else {
        return;
    };
    if let Some(c) = client::client_mut(conns, key) {
        core.metrics.local_response(status);
        if let Some((request, started, _)) = logged {
            let took = core.now.saturating_duration_since(started);
            core.answered(
                c.peer,
                took,
                None,
                Answered::ours(&request, status, Some(&id)),
            );
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
    let mut answer = Answered::ours(&j.request, 502, Some(&j.request_id));
    match j.refusal {
        Some(reply) => {
            let (backend, status) = reply.from;
            answer.status = Some(status);
            answer.bytes = reply.bytes.len() as u64;
            core.answered(c.peer, took, Some(backend), answer);
            c.state = ClientState::Replying {
                reply: reply.bytes,
                sent: 0,
                close: reply.close || core.draining,
            };
        }
        None => {
            core.metrics.local_response(502);
            core.answered(c.peer, took, None, answer);
            let text = "no backend accepted the write: every copy was given up";
            let close = !j.client_side.keep_alive;
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
    if let Some((request, started, id)) = core.fanout.for_log(job, core.access.enabled()) {
        let took = core.now.saturating_duration_since(started);
        let answer = Answered {
            request: &request,
            status: None,
            bytes: 0,
            id: Some(&id),
            route: None,
        };
        core.answered(peer, took, None, answer);
    }
}
