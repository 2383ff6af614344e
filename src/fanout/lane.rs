//! One backend's lane: how many copies are in flight there, the copies waiting for room,
//! and those waiting out a backoff. A new POST's copies may fill the backend's pool
//! (`--pool-size` in flight); retries and copies released after an outage go only while
//! fewer than a handful are in flight, and never ahead of new ones. So a backend that falls
//! behind gets its copies at the pace it answers, over connections it keeps, not on a new
//! connection each; and one coming back up gets its backlog a few at a time.

use std::collections::VecDeque;

use slab::Slab;

/// A queued copy: job, copy, and the job's serial.
pub(super) type Entry = (usize, usize, u32);

/// Copies in flight at most, for new POSTs and for the rest.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub fresh: usize,
    pub later: usize,
}

/// Retries and released copies in flight at most per backend: enough to keep a few pooled
/// connections busy, few enough that a backlog never crowds out the backend's other traffic.
const LATER_IN_FLIGHT: usize = 16;

impl Limits {
    pub fn of(pool_size: usize) -> Self {
        let fresh = pool_size.max(1);
        Limits {
            fresh,
            later: LATER_IN_FLIGHT.min(fresh),
        }
    }
}

#[derive(Default, Clone)]
pub(super) struct Lane {
    fresh: VecDeque<Entry>,
    later: VecDeque<Entry>,
    pub in_flight: usize,
    /// Copies waiting for a retry timer: job and copy (the copy knows its slot here), so
    /// that a recovery can send them without a walk over every job.
    pub backoff: Slab<(usize, usize)>,
    /// Attempts in a row that ended retryable (`gate.rs`).
    pub failures_in_a_row: u32,
}

impl Lane {
    /// Whether a copy may go now without overtaking one that waits.
    pub fn admits(&self, fresh: bool, limits: Limits) -> bool {
        if fresh {
            self.fresh.is_empty() && self.in_flight < limits.fresh
        } else {
            self.fresh.is_empty() && self.later.is_empty() && self.in_flight < limits.later
        }
    }

    pub fn queue(&mut self, fresh: bool, entry: Entry) {
        if fresh {
            self.fresh.push_back(entry);
        } else {
            self.later.push_back(entry);
        }
    }

    /// The copies waiting for room are no longer owed (`abandon`).
    pub fn forget_waiting(&mut self) {
        self.fresh.clear();
        self.later.clear();
    }

    /// The next waiting copy there is room for: new POSTs' first.
    pub fn next(&mut self, limits: Limits) -> Option<Entry> {
        if self.in_flight < limits.fresh
            && let Some(e) = self.fresh.pop_front()
        {
            return Some(e);
        }
        if self.in_flight < limits.later {
            return self.later.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_copies_fill_the_pool_and_go_before_retries() {
        let limits = Limits::of(3);
        assert_eq!((limits.fresh, limits.later), (3, 3));
        let limits = Limits { fresh: 3, later: 1 };
        let mut lane = Lane::default();
        assert!(lane.admits(true, limits) && lane.admits(false, limits));
        lane.in_flight = 1;
        assert!(lane.admits(true, limits), "new copies go up to the pool");
        assert!(!lane.admits(false, limits), "retries only up to `later`");
        lane.queue(false, (1, 0, 1));
        lane.in_flight = 3;
        assert!(!lane.admits(true, limits));
        lane.queue(true, (2, 0, 2));
        lane.queue(true, (3, 0, 3));
        assert_eq!(lane.next(limits), None, "no room");
        lane.in_flight = 2;
        assert_eq!(lane.next(limits), Some((2, 0, 2)));
        lane.in_flight = 0;
        assert!(!lane.admits(true, limits), "never ahead of a waiting one");
        assert_eq!(lane.next(limits), Some((3, 0, 3)), "new ones first");
        assert_eq!(lane.next(limits), Some((1, 0, 1)));
        assert_eq!(lane.next(limits), None);
        assert!(
            Limits::of(0).fresh == 1,
            "a pool size of 0 still lets one through"
        );
    }
}
