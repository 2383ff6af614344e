//! Sending copies and acting on how each attempt ends: the outcome decides whether the
//! copy is finished or waits for a retry. A copy goes out only when its backend is up and
//! its lane (`lane.rs`) has room; otherwise it waits there.

use std::time::Duration;

use log::{debug, error, info};
use slab::Slab;

use super::copy::{Capture, CopyStep, Response, step_copy};
use super::lane::Limits;
use super::outcome::{Answer, Outcome, Rules};
use super::{Phase, abandon, durable, gate, reply};
use crate::backend::{BackendId, Role};
use crate::event_loop::{Conn, Core, Timer};
use crate::held_sends::Destination;
use crate::http::head::Method;
use crate::http::upstream::{
    Owner, UpstreamState, close_upstream, connect, release_upstream, take_pooled, upstream_mut,
};
use crate::journal::Outcome as Recorded;
use crate::limits::is_local_exhaustion;
use crate::probe::observe;

/// delay(n) = min(base × 2^n, max) + jitter × `unit`, with `unit` uniform in [0, 1).
pub fn backoff(base: Duration, max: Duration, jitter: Duration, n: u32, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX));
    exp.min(max) + jitter.mul_f64(unit.clamp(0.0, 1.0))
}

/// Sends a copy now if its backend takes copies and its lane has room for it (`fresh`: a
/// new POST's copy); otherwise the copy waits in the lane. A copy that waits for lb to
/// reach its backend joins the backlog, whatever it is.
pub(super) fn dispatch(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    copy: usize,
    fresh: bool,
) {
    let Some(j) = core.fanout.jobs.get(job) else {
        return;
    };
    let backend = j.copies[copy].backend;
    let limits = Limits::of(core.settings(backend).pool_size);
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    if core.backends[backend].owed_given_up {
        return abandon::give_up(conns, core, job, copy);
    }
    let lane = &mut core.fanout.lanes[backend];
    let takes = core.backends[backend].takes_copies();
    if !takes || !lane.admits(fresh, limits) {
        j.copies[copy].phase = Phase::Queued;
        lane.queue(fresh && takes, (job, copy, j.serial));
        core.metrics.pending_retries += 1;
        return;
    }
    send(conns, core, job, copy);
}

fn send(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let c = &mut j.copies[copy];
    c.attempts += 1;
    c.sent_at = core.now;
    c.phase = Phase::InFlight {
        sent: 0,
        response: None,
    };
    let backend = c.backend;
    core.fanout.lanes[backend].in_flight += 1;
    core.metrics.backends[backend].fanout_sent += 1;
    core.backends[backend].request_started();
    let owner = (Owner::Copy { job, copy }, j.server_timeout);
    if let Some(ukey) = take_pooled(conns, core, backend, owner, None) {
        return copy_ready(conns, core, ukey);
    }
    if let Err(e) = connect(conns, core, owner, backend) {
        let answer = if is_local_exhaustion(&e) {
            core.exhausted("sending a POST copy", &e);
            Answer::Exhausted
        } else {
            Answer::ConnectFailure
        };
        copy_failed(conns, core, job, copy, answer, &e.to_string());
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
    let rules = Rules::of(
        &core.settings(u.backend).fanout,
        core.cfg.max_buffered_bytes,
    );
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        close_upstream(conns, core, ukey);
        return;
    };
    let holding = core.sends.holding();
    let pool = (&mut core.buffers, &core.shared);
    match step_copy((u, ukey), j, copy, pool, !holding, &rules) {
        CopyStep::Wait => {
            if holding
                && let Phase::InFlight { sent, .. } = j.copies[copy].phase
                && sent < j.request.len()
            {
                core.sends.later(Destination::Backend(u.backend), ukey);
            }
        }
        CopyStep::Parked => {
            // The backend has answered: what is awaited now is the journal, not it.
            j.parked = Some((copy, ukey));
            core.disarm(&mut u.timer);
        }
        CopyStep::Answered(r) if matches!(r.capture, Capture::Stream { .. }) => {
            // The connection stays busy: it carries the answer on to the client.
            let status = Answer::Status(r.status);
            attempt_ended(conns, core, job, copy, status, "", Some(r));
        }
        CopyStep::Answered(r) => {
            // Back in the pool first: the next queued copy for this backend may take it.
            let reusable = r.reusable && u.io.input_len() == 0;
            release_upstream(conns, core, ukey, reusable);
            attempt_ended(
                conns,
                core,
                job,
                copy,
                Answer::Status(r.status),
                "",
                Some(r),
            );
        }
        CopyStep::Failed(answer, text) => {
            close_upstream(conns, core, ukey);
            attempt_ended(conns, core, job, copy, answer, text, None);
        }
    }
}

/// An attempt failed before a whole answer came (connect, timeout, reset).
pub fn copy_failed(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    copy: usize,
    answer: Answer,
    why: &str,
) {
    attempt_ended(conns, core, job, copy, answer, why, None);
}

/// An attempt ended: count it, decide its outcome, act on it, and let the backend's
/// queue move.
fn attempt_ended(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    copy: usize,
    answer: Answer,
    why: &str,
    response: Option<Response>,
) {
    let Some(c) = core.fanout.jobs.get(job).map(|j| &j.copies[copy]) else {
        return;
    };
    if !matches!(c.phase, Phase::InFlight { .. }) {
        return;
    }
    let (backend, sent_at, attempts) = (c.backend, c.sent_at, c.attempts);
    let lane = &mut core.fanout.lanes[backend];
    lane.in_flight = lane.in_flight.saturating_sub(1);
    core.backends[backend].request_done();
    match (answer, answer.failure()) {
        // Only a failure to answer counts against health. Any HTTP answer, a 5xx too, is
        // the application speaking on a live backend: its copy is retried on that backend
        // all the same, and taking the backend out would only park its copies and take it
        // from the GETs it may serve well (the GET path and active checks still see a
        // backend that fails everything).
        (_, Some(failure)) => observe(core, backend, Some(failure), why),
        (Answer::Status(status), None) => {
            let took = core.now.saturating_duration_since(sent_at);
            core.metrics.request(backend, Method::Post, status, took);
            if status < 500 {
                core.health.observed(&mut core.backends, backend, true);
            }
        }
        _ => {}
    }
    let outcome = match &response {
        Some(r) => r.outcome,
        None => {
            Rules::of(&core.settings(backend).fanout, core.cfg.max_buffered_bytes).classify(answer)
        }
    };
    let text = match answer {
        Answer::Status(status) => format!("status {status}"),
        _ => format!("{answer:?}: {why}"),
    };
    match outcome {
        Outcome::Delivered => finish(conns, core, job, copy, Phase::Delivered, response, &text),
        Outcome::Refused => finish(conns, core, job, copy, Phase::Refused, response, &text),
        Outcome::GivenUp => {
            let text = format!("{text}; --retry-on does not retry it");
            finish(conns, core, job, copy, Phase::Spent, None, &text);
        }
        // lb's own shortage spends no attempt, as a copy waiting for its backend spends none.
        Outcome::Retryable if core.backends[backend].owed_given_up => {
            abandon::give_up(conns, core, job, copy);
        }
        Outcome::Retryable
            if attempts >= core.settings(backend).fanout.retry_attempts
                && answer != Answer::Exhausted =>
        {
            let text = format!("{text}; {attempts} attempts spent (--retry-attempts)");
            finish(conns, core, job, copy, Phase::Spent, None, &text);
        }
        Outcome::Retryable => retry_later(core, job, copy, &text),
    }
    gate::attempt_ended(core, backend, answer, outcome);
    release_lane(conns, core, backend);
}

/// The copy's attempt failed for a reason worth another (`why`): it waits its backoff.
fn retry_later(core: &mut Core, job: usize, copy: usize, why: &str) {
    let fanout = &mut core.fanout;
    let Some(j) = fanout.jobs.get_mut(job) else {
        return;
    };
    let c = &mut j.copies[copy];
    let f = &core.pools[core.backends[c.backend].pool].settings.fanout;
    let n = c.attempts.saturating_sub(1);
    let delay = backoff(f.retry_base, f.retry_max, f.retry_jitter, n, rand::random());
    debug!(
        "write {:?} to {}: attempt {} failed ({why}); again in {delay:?}",
        j.request_id, core.backends[c.backend].label, c.attempts
    );
    let serial = j.serial;
    let timer = core
        .timers
        .insert(core.now + delay, Timer::Retry { job, copy, serial });
    let slot = fanout.lanes[c.backend].backoff.insert((job, copy));
    c.phase = Phase::Backoff { timer, slot };
    core.metrics.backends[c.backend].fanout_retried += 1;
    core.metrics.pending_retries += 1;
}

/// A copy is finished: counted, logged, recorded in the journal; its answer is offered to
/// the waiting client; the job ends with its last copy.
pub(super) fn finish(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    job: usize,
    copy: usize,
    phase: Phase,
    response: Option<Response>,
    text: &str,
) {
    let Some(j) = core.fanout.jobs.get_mut(job) else {
        return;
    };
    let backend = j.copies[copy].backend;
    let label = &core.backends[backend].label;
    let counts = &mut core.metrics.backends[backend];
    let recorded = match phase {
        Phase::Delivered => {
            counts.fanout_delivered += 1;
            counts
                .delivery
                .observe(core.now.saturating_duration_since(j.started));
            if core.backends[backend].role == Role::Leaving {
                info!(
                    "write {:?} delivered to removed backend {label}",
                    j.request_id
                );
            } else if j.copies[copy].attempts > 1 {
                debug!(
                    "write {:?} delivered to {label} at attempt {}, {:?} after it came",
                    j.request_id,
                    j.copies[copy].attempts,
                    core.now.saturating_duration_since(j.started)
                );
            }
            Recorded::Delivered
        }
        Phase::Refused => {
            counts.fanout_refused += 1;
            info!(
                "write {:?} refused by {label} ({text}): not retried",
                j.request_id
            );
            Recorded::Refused
        }
        _ => {
            counts.fanout_spent += 1;
            error!("write {:?} to {label} given up: {text}", j.request_id);
            Recorded::Spent
        }
    };
    j.copies[copy].phase = phase;
    j.open -= 1;
    durable::record(core, job, backend, recorded);
    if let Some(r) = response {
        reply::offer(conns, core, job, backend, r);
    }
    end_if_done(conns, core, job);
}

/// A job ends once every copy is finished and its record is durable (an answer may be
/// held for that).
pub(super) fn end_if_done(conns: &mut Slab<Conn>, core: &mut Core, job: usize) {
    if core
        .fanout
        .jobs
        .get(job)
        .is_some_and(|j| j.open == 0 && j.durable)
    {
        let j = super::remove_job(core, job);
        durable::job_finished(core, &j);
        reply::nothing_deliverable(conns, core, job, j);
    }
}

/// Sends what waits in `backend`'s queue while it takes copies and has room.
pub(super) fn release_lane(conns: &mut Slab<Conn>, core: &mut Core, backend: BackendId) {
    if core.fanout.releasing {
        return;
    }
    core.fanout.releasing = true;
    let limits = Limits::of(core.settings(backend).pool_size);
    while core.backends[backend].takes_copies() {
        let Some((job, copy, serial)) = core.fanout.lanes[backend].next(limits) else {
            break;
        };
        let queued =
            core.fanout.jobs.get(job).is_some_and(|j| {
                j.serial == serial && matches!(j.copies[copy].phase, Phase::Queued)
            });
        if queued {
            core.metrics.pending_retries = core.metrics.pending_retries.saturating_sub(1);
            send(conns, core, job, copy);
        }
    }
    core.fanout.releasing = false;
}

/// A retry is due: send it, or queue it while its backend cannot take it or is busy.
pub fn retry_due(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize, serial: u32) {
    let Some(c) = core
        .fanout
        .jobs
        .get(job)
        .filter(|j| j.serial == serial)
        .map(|j| &j.copies[copy])
    else {
        return;
    };
    if let Phase::Backoff { slot, .. } = c.phase {
        core.fanout.lanes[c.backend].backoff.try_remove(slot);
        core.metrics.pending_retries = core.metrics.pending_retries.saturating_sub(1);
        dispatch(conns, core, job, copy, false);
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
