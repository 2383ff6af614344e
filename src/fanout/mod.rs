//! POST fan-out. The body is read whole, then the request goes to every chosen backend;
//! the first success answers the client, and every copy that failed is sent again
//! after an exponential backoff with jitter, on the timer wheel, until it succeeds or
//! its attempts are spent. A job holds the one copy of the request that all its
//! copies share; a waiting retry costs one timer entry.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use slab::Slab;

use crate::access_log::{Answered, request_line};
use crate::backend::{BackendId, Role};
use crate::event_loop::{Conn, Core, Timer};
use crate::held_sends::Destination;
use crate::http::client::{self, ClientState};
use crate::http::head::{self, ClientSide, RequestId};
use crate::http::upstream::{
    Owner, UpstreamState, close_upstream, connect, release_upstream, take_pooled, upstream_mut,
};
use crate::metrics::Failure;
use crate::probe::observe;
use crate::strategy::PickContext;

mod body;
mod copy;

use crate::timer::TimerId;
pub use body::{PendingPost, begin, buffer_body};
use copy::{CopyStep, Response, step_copy};

/// delay(n) = min(base × 2^n, max) + jitter × `unit`, with `unit` uniform in [0, 1).
pub fn backoff(base: Duration, max: Duration, jitter: Duration, n: u32, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX));
    exp.min(max) + jitter.mul_f64(unit.clamp(0.0, 1.0))
}

/// Every POST still being delivered, and the copies waiting for their backend to come up.
pub struct Jobs {
    jobs: Slab<Job>,
    parked: Vec<Vec<(usize, usize, u32)>>,
    serial: u32,
}

impl Jobs {
    pub fn new(backends: usize) -> Self {
        Jobs {
            jobs: Slab::new(),
            parked: vec![Vec::new(); backends],
            serial: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Makes room for slot `id`, which a backend has just joined.
    pub fn place(&mut self, id: BackendId) {
        if id >= self.parked.len() {
            self.parked.resize(id + 1, Vec::new());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// lb is stopping: the answers still to come tell their clients to close.
    pub fn end_keep_alive(&mut self) {
        for (_, j) in self.jobs.iter_mut() {
            j.client_side = j.client_side.unless_draining(true);
        }
    }

    /// What the access log says of job `job`: its request line (copied only when the log is
    /// on, so that it can be written while `Core` is borrowed), when it came, and its id.
    fn for_log(&self, job: usize, logging: bool) -> Option<(Vec<u8>, Instant, RequestId)> {
        let j = self.jobs.get(job)?;
        let request = if logging {
            request_line(&j.request).to_vec()
        } else {
            Vec::new()
        };
        Some((request, j.started, j.request_id))
    }

    /// Copies not yet delivered, per backend.
    pub fn undelivered(&self) -> Vec<usize> {
        let mut per_backend = vec![0; self.parked.len()];
        for (_, j) in &self.jobs {
            for c in &j.copies {
                if matches!(
                    c.phase,
                    Phase::InFlight { .. } | Phase::Backoff | Phase::Parked
                ) {
                    per_backend[c.backend] += 1;
                }
            }
        }
        per_backend
    }
}

struct Job {
    serial: u32,
    /// The forwarded head and the body.
    request: Box<[u8]>,
    /// When the client's head was complete, for the access log.
    started: Instant,
    request_id: RequestId,
    client_side: ClientSide,
    /// The client still waiting for the first success: slab key and serial.
    client: Option<(usize, u32)>,
    copies: Vec<Copy>,
    answered: bool,
    deadline: Option<TimerId>,
    /// Copies not yet succeeded, refused or spent.
    open: usize,
}

struct Copy {
    backend: BackendId,
    attempts: u32,
    /// When the latest attempt went out, for the latency histogram.
    sent_at: Instant,
    phase: Phase,
}

enum Phase {
    /// On a backend connection (which knows its job and copy): `sent` bytes are out.
    InFlight {
        sent: usize,
        response: Option<Response>,
    },
    /// Waiting for its retry timer.
    Backoff,
    /// Due, but its backend is down: sent when the backend comes up.
    Parked,
    Succeeded,
    /// Failed in a way --retry-on does not retry.
    Refused,
    /// Failed --retry-attempts times.
    Spent,
}

#[derive(Debug, Clone, Copy)]
pub enum CopyFailure {
    Connect(Failure),
    Timeout,
    /// Lost after the request went out, before a whole answer came.
    Reset,
    BadResponse,
    Status(u16),
}

/// Sends a complete POST to its backends, and leaves the client waiting for the first success.
pub fn launch(conns: &mut Slab<Conn>, core: &mut Core, key: usize, p: PendingPost) {
    let targets = choose_targets(conns, core, key);
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    if targets.is_empty() {
        core.metrics.local_response(503);
        let took = core.now.saturating_duration_since(p.started);
        let head = Answered::ours(&p.request, 503, Some(&p.request_id));
        core.answered(c.peer, took, None, head);
        let text = "no backend is available";
        client::answer(
            c,
            core,
            key,
            503,
            text,
            Some(&p.request_id),
            !p.client.keep_alive,
        );
        return;
    }
    core.fanout.serial = core.fanout.serial.wrapping_add(1);
    let serial = core.fanout.serial;
    let job = Job {
        serial,
        request: p.request.into_boxed_slice(),
        started: p.started,
        request_id: p.request_id,
        client_side: p.client.unless_draining(core.draining),
        client: Some((key, c.serial)),
        copies: targets
            .iter()
            .map(|&backend| Copy {
                backend,
                attempts: 0,
                sent_at: core.now,
                phase: Phase::Parked,
            })
            .collect(),
        answered: false,
        deadline: None,
        open: targets.len(),
    };
    let id = core.fanout.jobs.insert(job);
    c.state = ClientState::AwaitingFanout { job: id };
    let deadline = core.timers.insert(
        core.now + core.cfg.fanout_timeout,
        Timer::FanoutDeadline { job: id, serial },
    );
    core.fanout.jobs[id].deadline = Some(deadline);
    for copy in 0..targets.len() {
        dispatch_copy(conns, core, id, copy);
    }
}

/// The backends a new POST goes to: every listed one (--fanout 0), up or not, drained or
/// not (their copies wait), or N distinct ones that are up and in rotation.
fn choose_targets(conns: &mut Slab<Conn>, core: &mut Core, key: usize) -> Vec<BackendId> {
    let listed = (0..core.backends.len()).filter(|&id| core.backends[id].role.is_member());
    if core.cfg.fanout == 0 || core.cfg.fanout >= listed.clone().count() {
        return listed.collect();
    }
    let ctx = PickContext {
        client_ip: client::client_mut(conns, key).map(|c| c.peer.ip()),
        path: b"",
    };
    let mut chosen = Vec::with_capacity(core.cfg.fanout);
    while chosen.len() < core.cfg.fanout {
        let taken = &chosen;
        match core
            .strategy
            .pick(&core.backends, &ctx, &|id| !taken.contains(&id))
        {
            Some(id) => chosen.push(id),
            None => break,
        }
    }
    chosen
}

/// Sends copy `copy` now if its backend takes it, else parks it until the backend is up
/// and ready.
fn dispatch_copy(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let backend = j.copies[copy].backend;
    if !core.backends[backend].takes_copies() {
        j.copies[copy].phase = Phase::Parked;
        let serial = j.serial;
        core.fanout.parked[backend].push((job, copy, serial));
        core.metrics.pending_retries += 1;
        return;
    }
    j.copies[copy].attempts += 1;
    j.copies[copy].sent_at = core.now;
    core.metrics.backends[backend].fanout_sent += 1;
    core.backends[backend].request_started();
    let owner = Owner::Copy { job, copy };
    let pooled = take_pooled(conns, core, backend, owner);
    let conn = match pooled {
        Some(ukey) => ukey,
        None => match connect(conns, core, owner, backend) {
            Ok(ukey) => ukey,
            Err(e) => {
                let why = e.to_string();
                return copy_failed(
                    conns,
                    core,
                    job,
                    copy,
                    CopyFailure::Connect(Failure::Connect),
                    &why,
                );
            }
        },
    };
    if let Some(j) = core.fanout.jobs.get_mut(job) {
        j.copies[copy].phase = Phase::InFlight {
            sent: 0,
            response: None,
        };
    }
    if pooled.is_some() {
        copy_ready(conns, core, conn);
    }
}

/// Steps the copy carried by backend connection `ukey`.
pub fn copy_ready(conns: &mut Slab<Conn>, core: &mut Core, ukey: usize) {
    let Some(u) = upstream_mut(conns, ukey) else {
        return;
    };
    let UpstreamState::Busy(Owner::Copy { job, copy }) = u.state else {
        return;
    };
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        close_upstream(conns, core, ukey);
        return;
    };
    let holding = core.sends.holding();
    let step = step_copy(
        u,
        j,
        copy,
        &mut core.buffers,
        !holding,
        core.cfg.success_status,
        core.cfg.max_body,
    );
    match step {
        CopyStep::Wait => {
            if holding
                && let Phase::InFlight { sent, .. } = j.copies[copy].phase
                && sent < j.request.len()
            {
                core.sends.later(Destination::Backend(u.backend), ukey);
            }
        }
        CopyStep::Answered => {
            let Phase::InFlight {
                response: Some(r), ..
            } = std::mem::replace(&mut j.copies[copy].phase, Phase::Succeeded)
            else {
                return;
            };
            let reusable = r.reusable && u.io.input_len() == 0;
            release_upstream(conns, core, ukey, reusable);
            settle(conns, core, job, copy, r);
        }
        CopyStep::Failed(why, text) => {
            close_upstream(conns, core, ukey);
            copy_failed(conns, core, job, copy, why, text);
        }
    }
}

/// A copy succeeded: the first success answers a waiting client.
fn settle(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize, r: Response) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let backend = j.copies[copy].backend;
    core.backends[backend].request_done();
    let took = core.now.saturating_duration_since(j.copies[copy].sent_at);
    core.metrics
        .request(backend, head::Method::Post, r.status, took);
    core.metrics.backends[backend].fanout_succeeded += 1;
    core.health.observed(&mut core.backends, backend, true, "");
    if core.backends[backend].role == Role::Leaving {
        info!(
            "write {:?} delivered to removed backend {}",
            j.request_id, core.backends[backend].label
        );
    }
    if let (Some(reply), false, Some((key, serial))) = (r.capture, j.answered, j.client) {
        j.answered = true;
        j.client = None;
        if let Some(t) = j.deadline.take() {
            core.timers.cancel(t);
        }
        let from = (backend, r.status);
        reply_to(conns, core, (key, serial), job, from, reply, r.close_client);
    }
    copy_closed(conns, core, job);
}

/// Hands the first successful answer, `status` from `backend`, to the client that waits for it.
fn reply_to(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (key, serial): (usize, u32),
    job: usize,
    (backend, status): (BackendId, u16),
    reply: Vec<u8>,
    close: bool,
) {
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    if c.serial != serial || !matches!(c.state, ClientState::AwaitingFanout { job: j } if j == job)
    {
        return;
    }
    if let Some((request, started, id)) = core.fanout.for_log(job, core.access.enabled()) {
        let took = core.now.saturating_duration_since(started);
        let answer = Answered {
            request: &request,
            status: Some(status),
            bytes: reply.len() as u64,
            id: Some(&id),
        };
        core.answered(c.peer, took, Some(backend), answer);
    }
    c.state = ClientState::Replying {
        reply,
        sent: 0,
        close: close || core.draining,
    };
    client::drive(conns, core, key);
}

/// A copy failed: retried after a backoff if --retry-on allows and attempts remain.
pub fn copy_failed(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    copy: usize,
    why: CopyFailure,
    text: &str,
) {
    let Some(c) = core.fanout.jobs.get(job).map(|j| &j.copies[copy]) else {
        return;
    };
    let (backend, sent_at) = (c.backend, c.sent_at);
    core.backends[backend].request_done();
    let retry_on = core.cfg.retry_on;
    let (failure, retried) = match why {
        CopyFailure::Connect(f) => (Some(f), retry_on.connect_failure),
        CopyFailure::Reset => (Some(Failure::Reset), retry_on.connect_failure),
        CopyFailure::Timeout => (Some(Failure::Timeout), retry_on.timeout),
        CopyFailure::BadResponse => (Some(Failure::BadResponse), retry_on.server_error),
        CopyFailure::Status(status) => {
            let took = core.now.saturating_duration_since(sent_at);
            core.metrics
                .request(backend, head::Method::Post, status, took);
            // A 5xx counts against the backend's health, as for any request; a 4xx does not.
            if status >= 500 {
                core.health
                    .observed(&mut core.backends, backend, false, text);
            }
            let retried = match status {
                500.. => retry_on.server_error,
                400..500 => retry_on.client_error,
                _ => retry_on.other,
            };
            (None, retried)
        }
    };
    if failure.is_some() {
        observe(core, backend, failure, text);
    }
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let c = &mut j.copies[copy];
    let label = &core.backends[backend].label;
    if !retried {
        warn!(
            "write {:?} to {label} not retried ({why:?}): {text}",
            j.request_id
        );
        c.phase = Phase::Refused;
        return copy_closed(conns, core, job);
    }
    if c.attempts >= core.cfg.retry_attempts {
        error!(
            "write {:?} to {label} given up after {} attempts: {why:?} {text}",
            j.request_id, c.attempts
        );
        core.metrics.backends[backend].fanout_spent += 1;
        c.phase = Phase::Spent;
        return copy_closed(conns, core, job);
    }
    let cfg = &core.cfg;
    let delay = backoff(
        cfg.retry_base,
        cfg.retry_max,
        cfg.retry_jitter,
        c.attempts - 1,
        rand::random(),
    );
    c.phase = Phase::Backoff;
    core.metrics.backends[backend].fanout_retried += 1;
    core.metrics.pending_retries += 1;
    let serial = j.serial;
    core.timers
        .insert(core.now + delay, Timer::Retry { job, copy, serial });
}

/// A copy reached its end (success, refusal, spent): the job ends with its last copy.
fn copy_closed(conns: &mut Slab<Conn>, core: &mut Core, job: usize) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    j.open -= 1;
    if j.open > 0 {
        return;
    }
    let j = core.fanout.jobs.remove(job);
    if let Some(t) = j.deadline {
        core.timers.cancel(t);
    }
    if let Some((key, serial)) = j.client.filter(|_| !j.answered) {
        let text = "no backend accepted the write";
        let request = (&j.request[..], j.started, &j.request_id);
        answer_waiting(conns, core, (key, serial), job, request, 502, text);
    }
}

/// Answers the client that waits for job `job` with lb's own `status`. `request` is the
/// job's request, when it arrived, and its id, for the access log.
fn answer_waiting(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    (key, serial): (usize, u32),
    job: usize,
    (request, started, id): (&[u8], Instant, &RequestId),
    status: u16,
    text: &str,
) {
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    if c.serial != serial || !matches!(c.state, ClientState::AwaitingFanout { job: j } if j == job)
    {
        return;
    }
    core.metrics.local_response(status);
    let took = core.now.saturating_duration_since(started);
    core.answered(
        c.peer,
        took,
        None,
        Answered::ours(request, status, Some(id)),
    );
    client::answer(c, core, key, status, text, Some(id), false);
    client::drive(conns, core, key);
}

/// A retry is due: send it, or park it while its backend is down.
pub fn retry_due(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize, serial: u32) {
    if core.fanout.jobs.get(job).is_none_or(|j| j.serial != serial) {
        return;
    }
    core.metrics.pending_retries = core.metrics.pending_retries.saturating_sub(1);
    dispatch_copy(conns, core, job, copy);
}

/// Backend `id` came up, or back in rotation: its parked copies go out now, spending no
/// attempt while they waited.
pub fn backend_up(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId) {
    for (job, copy, serial) in std::mem::take(&mut core.fanout.parked[id]) {
        let parked =
            core.fanout.jobs.get(job).is_some_and(|j| {
                j.serial == serial && matches!(j.copies[copy].phase, Phase::Parked)
            });
        if parked {
            core.metrics.pending_retries = core.metrics.pending_retries.saturating_sub(1);
            dispatch_copy(conns, core, job, copy);
        }
    }
}

/// No copy succeeded in --fanout-timeout: the client gets 504, the copies go on.
pub fn deadline_passed(conns: &mut Slab<Conn>, core: &mut Core, job: usize, serial: u32) {
    let Some(j) = core.fanout.jobs.get_mut(job).filter(|j| j.serial == serial) else {
        return;
    };
    j.deadline = None;
    let Some(client) = j.client.take() else {
        return;
    };
    let text = format!(
        "no backend has confirmed the write yet; it is still being retried (X-Request-Id {})",
        j.request_id.as_str()
    );
    if let Some((request, started, id)) = core.fanout.for_log(job, core.access.enabled()) {
        answer_waiting(
            conns,
            core,
            client,
            job,
            (&request, started, &id),
            504,
            &text,
        );
    }
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
        };
        core.answered(peer, took, None, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_then_caps() {
        let (base, max, jitter) = (1000 * MS, 64_000 * MS, 100 * MS);
        let delays: Vec<u128> = (0..9)
            .map(|n| backoff(base, max, jitter, n, 0.0).as_millis())
            .collect();
        assert_eq!(
            delays,
            [1000, 2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000]
        );
        assert_eq!(
            backoff(base, max, jitter, 200, 0.0),
            max,
            "huge n saturates"
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let (base, max, jitter) = (10 * MS, 50 * MS, 100 * MS);
        assert_eq!(backoff(base, max, jitter, 0, 0.5), 60 * MS);
        assert_eq!(backoff(base, max, jitter, 9, 0.999_999).as_millis(), 149);
        for _ in 0..1000 {
            let d = backoff(base, max, jitter, 3, rand::random());
            assert!(d >= 50 * MS && d < 150 * MS, "{d:?}");
        }
        assert_eq!(backoff(base, max, Duration::ZERO, 1, 0.7), 20 * MS);
    }
}
