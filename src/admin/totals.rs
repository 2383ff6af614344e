//! The numbers the admin pages show, summed over the workers: worker 0's own, read now,
//! and every other worker's latest publication (see `shared`).

use crate::event_loop::Core;
use crate::metrics::Metrics;
use crate::reconfigure;
use crate::shared::{Load, WorkerStats};

/// One worker's line in `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerLine {
    pub clients_open: usize,
    pub clients_total: u64,
    /// Client requests it answered (a POST once).
    pub requests: u64,
}

/// Every worker's counters added up.
pub struct Totals {
    pub metrics: Metrics,
    /// By backend slot.
    pub load: Vec<Load>,
    pub workers: Vec<WorkerLine>,
    pub clients_open: usize,
    pub posts: usize,
}

/// What a worker publishes about itself; `answers` is the request for counters it answers.
pub fn worker_stats(core: &Core, answers: u64) -> WorkerStats {
    let owed = core.fanout.undelivered();
    let load = core
        .backends
        .iter()
        .enumerate()
        .map(|(id, b)| Load {
            active: b.active,
            idle: b.idle.len(),
            owed: owed.get(id).copied().unwrap_or(0),
        })
        .collect();
    WorkerStats {
        answers,
        applied: core.applied.version,
        metrics: core.metrics.clone(),
        load,
        clients_open: core.clients_open,
        clients_total: core.clients_total,
        posts: core.fanout.len(),
        left_idle: reconfigure::left_idle(core),
    }
}

impl Totals {
    /// Worker 0's numbers now, plus the latest of every other worker.
    pub fn gather(core: &Core) -> Self {
        let own = worker_stats(core, 0);
        let mut t = Totals {
            workers: vec![line(&own)],
            metrics: own.metrics,
            load: own.load,
            clients_open: own.clients_open,
            posts: own.posts,
        };
        for k in 1..core.shared.workers() {
            let published = core.shared.stats(k);
            match published.as_deref().and_then(Option::as_ref) {
                Some(s) => t.add(s),
                None => t.workers.push(WorkerLine::default()),
            }
        }
        t
    }

    fn add(&mut self, s: &WorkerStats) {
        self.workers.push(line(s));
        self.metrics.add(&s.metrics);
        for (l, o) in self.load.iter_mut().zip(&s.load) {
            l.active += o.active;
            l.idle += o.idle;
            l.owed += o.owed;
        }
        self.clients_open += s.clients_open;
        self.posts += s.posts;
    }
}

fn line(s: &WorkerStats) -> WorkerLine {
    WorkerLine {
        clients_open: s.clients_open,
        clients_total: s.clients_total,
        requests: s.metrics.client_answers.iter().sum(),
    }
}
