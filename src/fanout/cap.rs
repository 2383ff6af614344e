//! The bounds on what POSTs hold. What lb owes: at most --max-pending POSTs still being
//! delivered, holding at most --max-pending-bytes of requests (head and body). What is on
//! its way in or out: at most --max-buffered-bytes of bodies still arriving and answers
//! kept for their clients (`budget::HeldBytes`). Past any of them a new POST gets 503 at
//! once and nothing is queued, so memory stays bounded whatever the bodies: an owed write
//! costs its request and about 560 bytes besides (scripts/owed_memory.sh). Reaching a
//! bound is logged once, saying what fills it; the all-clear once it is back under 90%;
//! /metrics counts the refusals.

use log::{info, warn};

use crate::event_loop::Core;

/// The backlog must fall below this share of the bound before refusing is said to be over,
/// so that a backlog hovering at the bound does not log a line per POST.
const ALL_CLEAR: f64 = 0.9;

/// Whether a new POST whose request holds `incoming` bytes (as far as its head says) must
/// be refused. The bound is the whole process's (every worker's POSTs). An empty backlog
/// takes any POST, so that a bound below --max-body never locks large ones out.
pub(super) fn full(core: &mut Core, incoming: u64) -> bool {
    let (jobs, bytes) = core.shared.posts();
    let which = if jobs >= core.cfg.max_pending {
        "--max-pending"
    } else if bytes > 0 && bytes.saturating_add(incoming) > core.cfg.max_pending_bytes {
        "--max-pending-bytes"
    } else {
        return false;
    };
    core.metrics.posts_refused_full += 1;
    if !core.shared.refused_at_bound(core.now) {
        return true;
    }
    let census = core.fanout.census();
    let most = census.iter().enumerate().max_by_key(|(_, o)| o.owed());
    let whom = most.map_or(String::new(), |(id, o)| {
        let here = if core.shared.workers() > 1 {
            " in this worker"
        } else {
            ""
        };
        format!(
            "; {} copies are owed to {}{here}, the oldest for {:.0} s",
            o.owed(),
            core.backends[id].label,
            o.age(core.now)
        )
    });
    warn!(
        "new POSTs get 503: {jobs} writes ({} KiB of requests) are still owed, up to {which}{whom}; \
         raise the limit if memory allows, or see why that backend does not take its copies",
        bytes / 1024
    );
    true
}

/// Whether a new POST whose request holds `incoming` bytes (as far as its head says)
/// would take what POSTs hold past --max-buffered-bytes: then it is refused, and counted.
pub(super) fn buffers_full(core: &mut Core, incoming: u64) -> bool {
    let held = core.shared.buffered();
    if held.saturating_add(incoming) <= core.cfg.max_buffered_bytes {
        return false;
    }
    buffers_ran_out(core);
    true
}

/// A POST is refused at --max-buffered-bytes, before its body or partway through it:
/// counted, and the first of a run is logged.
pub(super) fn buffers_ran_out(core: &mut Core) {
    core.metrics.posts_refused_buffers += 1;
    if !core.shared.refused_at_buffer_bound(core.now) {
        return;
    }
    warn!(
        "new POSTs get 503: {} KiB are held for POSTs (bodies still arriving, answers kept \
         for their clients), up to --max-buffered-bytes ({} KiB); raise it if memory allows, \
         or see whether clients send their bodies slowly (--client-min-rate cuts them off)",
        core.shared.buffered() / 1024,
        core.cfg.max_buffered_bytes / 1024
    );
}

/// Once a second: refusing is over once the backlog is well under the bound.
pub(super) fn review(core: &mut Core) {
    let held = core.shared.buffered() as f64;
    if held < core.cfg.max_buffered_bytes as f64 * ALL_CLEAR
        && let Some((since, refused)) = core.shared.buffers_free_again()
    {
        info!(
            "POSTs are taken again: {refused} got 503 in {:.1} s while the bytes held for \
             POSTs were at --max-buffered-bytes",
            core.now.saturating_duration_since(since).as_secs_f64()
        );
    }
    let (jobs, bytes) = core.shared.posts();
    let below = |owed: f64, bound: f64| owed < bound * ALL_CLEAR;
    if !below(jobs as f64, core.cfg.max_pending as f64)
        || !below(bytes as f64, core.cfg.max_pending_bytes as f64)
    {
        return;
    }
    if let Some((since, refused)) = core.shared.taking_posts_again() {
        info!(
            "POSTs are taken again: {refused} got 503 in {:.1} s while the writes still owed \
             were at their bound",
            core.now.saturating_duration_since(since).as_secs_f64()
        );
    }
}
