//! Giving up what a removed backend still owes. Copies parked while lb cannot reach their
//! backend spend no attempt, so a removed backend that never answers again would keep its
//! slot and its copies for ever. The operator gives them up (`DELETE
//! /backends/ADDR?owed=give-up`), or `--leave-timeout` does once the backend has been gone
//! that long; either way through the roster (`Change::GaveUp`), so that every worker gives
//! up its own share. Each copy ends as one whose attempts ran out: logged, counted, and
//! recorded in the journal as given up, so that a restart does not send it again.

use log::warn;
use slab::Slab;

use super::{Phase, deliver};
use crate::backend::BackendId;
use crate::event_loop::{Conn, Core};

/// Why the copies end, in each one's log line.
const WHY: &str = "owed to a removed backend whose copies were given up \
                   (DELETE ?owed=give-up or --leave-timeout)";

/// Backend `backend` was removed and its owed copies given up: those waiting (in its lane
/// or out a backoff) end now; those in flight end with their attempt, and any that would
/// be sent later is given up instead (`deliver`).
pub fn give_up_owed(conns: &mut Slab<Conn>, core: &mut Core, backend: BackendId) {
    let mut waiting = Vec::new();
    let mut in_flight = 0;
    for (job, j) in &core.fanout.jobs {
        for (copy, c) in j.copies.iter().enumerate() {
            match c.phase {
                _ if c.backend != backend => {}
                Phase::Queued | Phase::Backoff { .. } => waiting.push((job, copy)),
                Phase::InFlight { .. } | Phase::Journaling => in_flight += 1,
                Phase::Delivered | Phase::Refused | Phase::Spent => {}
            }
        }
    }
    let lane = &mut core.fanout.lanes[backend];
    lane.forget_waiting();
    for &(job, copy) in &waiting {
        let phase = core.fanout.jobs.get(job).map(|j| &j.copies[copy].phase);
        if let Some(&Phase::Backoff { timer, slot }) = phase {
            core.timers.cancel(timer);
            core.fanout.lanes[backend].backoff.try_remove(slot);
        }
        core.metrics.pending_retries = core.metrics.pending_retries.saturating_sub(1);
        give_up(conns, core, job, copy);
    }
    let later = match in_flight {
        0 => String::new(),
        n => format!(", and {n} more as their attempts end"),
    };
    if !waiting.is_empty() || in_flight > 0 {
        warn!(
            "removed backend {}: {} POST copies it owed are given up{later}",
            core.backends[backend].label,
            waiting.len()
        );
    }
}

/// Copy `copy` of `job` ends given up, because its backend's owed copies are.
pub(super) fn give_up(conns: &mut Slab<Conn>, core: &mut Core, job: usize, copy: usize) {
    core.metrics.removed_given_up += 1;
    deliver::finish(conns, core, job, copy, Phase::Spent, None, WHY);
}
