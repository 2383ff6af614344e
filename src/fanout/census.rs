//! Once a second: where the POST copies still owed are, per backend (in flight, in backoff,
//! waiting in the lane, parked while lb cannot reach the backend), how old the oldest owed
//! write is, and the journal's counters, for /metrics and /stats. A walk over every job: at
//! most --max-pending of them, once a second, never per request.

use std::time::Instant;

use super::{Jobs, Phase, cap};
use crate::event_loop::Core;
use crate::metrics::JournalMetrics;

/// One backend's copies still owed, by place, and the arrival of its oldest owed POST.
#[derive(Default, Clone, Copy)]
pub(super) struct Owed {
    in_flight: u64,
    backoff: u64,
    queued: u64,
    oldest: Option<Instant>,
}

impl Owed {
    pub(super) fn owed(&self) -> u64 {
        self.in_flight + self.backoff + self.queued
    }

    pub(super) fn age(&self, now: Instant) -> f64 {
        age(now, self.oldest)
    }
}

impl Jobs {
    /// POSTs still owed to some backend, and the age of the oldest.
    pub fn owed(&self, now: Instant) -> (usize, f64) {
        let oldest = self.jobs.iter().map(|(_, j)| j.started).min();
        (self.jobs.len(), age(now, oldest))
    }

    pub(super) fn census(&self) -> Vec<Owed> {
        let mut per_backend = vec![Owed::default(); self.lanes.len()];
        for (_, j) in &self.jobs {
            for c in &j.copies {
                let o = &mut per_backend[c.backend];
                match c.phase {
                    // Waiting for the journal's write lasts a turn: counted as on its way.
                    Phase::InFlight { .. } | Phase::Journaling => o.in_flight += 1,
                    Phase::Backoff { .. } => o.backoff += 1,
                    Phase::Queued => o.queued += 1,
                    Phase::Delivered | Phase::Refused | Phase::Spent => continue,
                }
                o.oldest = Some(o.oldest.map_or(j.started, |t| t.min(j.started)));
            }
        }
        per_backend
    }
}

fn age(now: Instant, since: Option<Instant>) -> f64 {
    since.map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64())
}

/// Once a second: the gauges above and the journal's counters; and whether refusing new
/// POSTs at the bound is over.
pub fn refresh_metrics(core: &mut Core) {
    let (owed, oldest) = core.fanout.owed(core.now);
    let census = core.fanout.census();
    let m = &mut core.metrics;
    (m.writes_owed, m.oldest_owed_seconds) = (owed as u64, oldest);
    m.owed_bytes = core.fanout.owed_bytes;
    m.buffered_bytes = core.shared.buffered();
    for (id, o) in census.into_iter().enumerate() {
        let (Some(b), Some(bm)) = (core.backends.get(id), m.backends.get_mut(id)) else {
            continue;
        };
        // A queued copy waits for room in its lane while its backend takes copies, and
        // for the backend itself otherwise.
        let (waiting, parked) = if b.takes_copies() {
            (o.queued, 0)
        } else {
            (0, o.queued)
        };
        bm.copies_owed = [o.in_flight, o.backoff, waiting, parked];
        bm.oldest_owed_seconds = age(core.now, o.oldest);
    }
    m.journal = core.fanout.journal.as_ref().map(|j| JournalMetrics {
        stats: j.stats().clone(),
        bytes_on_disk: j.bytes_on_disk(),
    });
    cap::review(core);
}
