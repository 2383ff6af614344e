//! When a backend's POST copies go out, and when they wait for it. Copies wait ("parked")
//! only while lb cannot reach the backend: a copy or a health check could not connect, or
//! got no answer in time, and nothing has had an answer from it since. Parked copies spend
//! no attempt. Health is not asked: a backend held DOWN because it answers 5xx to GETs or to
//! its checks still answers, and may well take writes; each copy's own answer decides
//! whether that copy is retried. Parking on DOWN instead kept a backend failing 30% of its
//! requests parked most of the time, and its backlog filled --max-pending.
//!
//! Recovery cuts backoffs short. When a backend that could not be reached answers again, or
//! delivers a copy after FAILING_STREAK retryable attempts in a row, the copies waiting out
//! a backoff to it join its lane at once (paced there like any retry), instead of waiting
//! out backoffs that may have grown to --retry-max while it was out. One copy that the
//! backend keeps refusing among deliveries of others makes no streak, so its backoff (and
//! its --retry-attempts budget) runs as before.

use log::{debug, info};
use slab::Slab;

use super::outcome::{Answer, Outcome};
use super::{Phase, deliver};
use crate::backend::{BackendId, Role};
use crate::config::model::Protocol;
use crate::event_loop::{Conn, Core};

/// Retryable attempts in a row that say the backend was failing, not one copy.
const FAILING_STREAK: u32 = 3;

/// An attempt of a copy to `backend` ended, and its outcome was acted on: what that says
/// of the backend.
pub(super) fn attempt_ended(core: &mut Core, backend: BackendId, answer: Answer, outcome: Outcome) {
    let lane = &mut core.fanout.lanes[backend];
    let recovered = match outcome {
        Outcome::Retryable if answer != Answer::Exhausted => {
            lane.failures_in_a_row = lane.failures_in_a_row.saturating_add(1);
            false
        }
        Outcome::Delivered => std::mem::take(&mut lane.failures_in_a_row) >= FAILING_STREAK,
        Outcome::Refused => {
            lane.failures_in_a_row = 0;
            false
        }
        Outcome::Retryable | Outcome::GivenUp => false,
    };
    // A failure to connect or to answer in time was passed on by `probe::observe`.
    let answers_again =
        matches!(answer, Answer::Status(_)) && set_reachable(core, backend, true, "");
    if recovered || answers_again {
        hasten(core, backend);
    }
}

/// A health check of `id` ended: `answered` when it got a status line, whatever the status.
pub fn checked(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId, answered: bool, why: &str) {
    if set_reachable(core, id, answered, why) {
        hasten(core, id);
        deliver::release_lane(conns, core, id);
    } else if core.shared.workers() > 1 && tracked(core, id) {
        // Another worker may have published the opposite since this one last looked: the
        // check has the last word (once an interval, so the lock costs nothing).
        announce(core, id, answered, why);
    }
}

/// A request or a copy to `id` could not connect, or got no answer in time.
pub fn unreachable(core: &mut Core, id: BackendId, why: &str) {
    set_reachable(core, id, false, why);
}

/// Backend `id` moved to a new address: whatever the old one did says nothing of it.
pub fn moved(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId) {
    if set_reachable(core, id, true, "") {
        hasten(core, id);
    }
    deliver::release_lane(conns, core, id);
}

/// Backend `id` is back in rotation: its queued copies go out, a few at a time, spending no
/// attempt for the time they waited.
pub fn backend_up(conns: &mut Slab<Conn>, core: &mut Core, id: BackendId) {
    deliver::release_lane(conns, core, id);
}

/// Follows whether lb can reach each backend as the other workers published it (worker 0
/// runs the health checks): a backend that answers again gets this worker's copies that
/// waited for it.
pub fn follow_published(conns: &mut Slab<Conn>, core: &mut Core) {
    let Some(flags) = core.shared.reachable() else {
        return;
    };
    for id in 0..core.backends.len() {
        let to = flags.get(id).copied().unwrap_or(true);
        let b = &mut core.backends[id];
        if b.reachable == to || b.role == Role::Vacant {
            continue;
        }
        b.reachable = to;
        if to {
            hasten(core, id);
            deliver::release_lane(conns, core, id);
        }
    }
}

/// Records whether lb can reach `id`; true when it has just become reachable again.
fn set_reachable(core: &mut Core, id: BackendId, answered: bool, why: &str) -> bool {
    if !tracked(core, id) || core.backends[id].reachable == answered {
        return false;
    }
    core.backends[id].reachable = answered;
    announce(core, id, answered, why);
    answered
}

/// Reachability is tracked only with health checks on: without them nothing would notice a
/// backend answering again while its copies wait, so they are retried on their backoff
/// instead. TCP mode has no copies.
fn tracked(core: &Core, id: BackendId) -> bool {
    core.health.enabled(id) && core.pools[core.backends[id].pool].protocol == Protocol::Http
}

/// Tells the other workers (if any) and the log, once: by the worker that publishes it.
fn announce(core: &Core, id: BackendId, answered: bool, why: &str) {
    if core.shared.workers() > 1 && !core.shared.set_reachable(core.worker, id, answered) {
        return;
    }
    let label = &core.backends[id].label;
    if answered {
        info!("backend {label} answers again: its POST copies go out");
    } else {
        info!("backend {label} cannot be reached ({why}): its POST copies wait until it answers");
    }
}

/// The copies to `backend` waiting out a backoff join its lane now, behind those already
/// there: the backend has shown it is back, so the backoff has nothing left to wait for.
fn hasten(core: &mut Core, backend: BackendId) {
    let fanout = &mut core.fanout;
    let mut backoff = std::mem::take(&mut fanout.lanes[backend].backoff);
    let mut hastened = 0;
    for (job, copy) in backoff.drain() {
        let Some(j) = fanout.jobs.get_mut(job) else {
            continue;
        };
        if let Phase::Backoff { timer, .. } = j.copies[copy].phase {
            core.timers.cancel(timer);
            j.copies[copy].phase = Phase::Queued;
            fanout.lanes[backend].queue(false, (job, copy, j.serial));
            hastened += 1;
        }
    }
    fanout.lanes[backend].backoff = backoff;
    if hastened > 0 {
        debug!(
            "backend {} is back: {hastened} POST copies no longer wait out their backoff",
            core.backends[backend].label
        );
    }
}
