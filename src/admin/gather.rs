//! With several workers, an admin request waits until every worker has published fresh
//! counters (or `WAIT` has passed), so that `/metrics` right after a burst counts all of
//! it. The workers publish off their request path, when asked; see `shared`.

use std::time::Duration;

use slab::Slab;

use super::Totals;
use super::conn::{AdminConn, Gather, ready};
use crate::event_loop::{Conn, Core, Timer};

/// The longest an admin request waits for the other workers; then it is answered with
/// their latest counters, at most a second old.
const WAIT: Duration = Duration::from_millis(250);

/// A complete request on `key` waits for fresh counters from every worker.
pub(super) fn ask(core: &mut Core, a: &mut AdminConn, key: usize) {
    a.gather = Gather::Waiting(core.shared.want_stats());
    if core.gathering.is_empty() {
        core.timers.insert(core.now + WAIT, Timer::Gathered);
    }
    core.gathering.push(key);
}

/// Answers the requests whose counters have all come in; with `force` (their wait is
/// over), every one waiting.
pub fn gathered(conns: &mut Slab<Conn>, core: &mut Core, force: bool) {
    for key in std::mem::take(&mut core.gathering) {
        let Some(Conn::Admin(a)) = conns.get_mut(key) else {
            continue;
        };
        let Gather::Waiting(n) = a.gather else {
            continue;
        };
        if force || core.shared.stats_answered(n) {
            a.gather = Gather::Done;
            ready(conns, core, key);
        } else {
            core.gathering.push(key);
        }
    }
}

/// Once a second: the status page's history takes a point of every worker's counters.
pub fn sample_history(core: &mut Core) {
    if core.shared.workers() == 1 {
        core.history.sample(core.now, &core.metrics);
        return;
    }
    let totals = Totals::gather(core);
    core.history.sample(core.now, &totals.metrics);
}
