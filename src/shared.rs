//! What the worker loops share, and nothing else (see docs/operations.md, Workers).
//!
//! Each worker is a whole event loop with its own slab, timers, pools and counters. What
//! must be the same for all of them goes through here:
//! - process-wide counts checked at accept and at a new POST (`--max-connections`,
//!   `--max-pending`, `--max-pending-bytes`): one atomic add per connection or POST, never
//!   per request; and the bytes POSTs hold while their bodies arrive or their answers wait
//!   (`--max-buffered-bytes`): one atomic add per read of a POST body;
//! - values that change rarely and are published whole (the roster's newest snapshot, the
//!   backends' health and whether lb can reach them, the TLS configuration after a
//!   certificate reload, how lb stops):
//!   the publisher swaps them under a lock and bumps `news`; each worker compares `news`
//!   with what it saw once per turn (one relaxed load) and reads them only when it moved;
//! - each worker's counters, published by the worker itself once a second and whenever
//!   the admin listener asks (`want_stats`), so that `/metrics` sums them exactly without
//!   a lock or an atomic on the request path.
//!
//! Worker 0 is also the control loop: signals, the admin listener, the resolver, health
//! checks and upgrades live there, and it is the only writer of the roster.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::backend::BackendId;
use crate::event_loop::SiteUpdate;
use crate::metrics::Metrics;
use crate::roster::Snapshot;

/// The TLS configuration of each listener (`None` for a plain one), by its place.
pub type TlsServers = Vec<Option<Arc<rustls::ServerConfig>>>;

/// How lb is to stop, as every worker must hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// A stop signal (by name): drain.
    Signal(&'static str),
    /// A new lb (by pid) serves: drain without refusing anyone.
    HandedOver(u32),
    /// A second signal or the drain timeout: stop at once.
    Cut,
}

/// One backend slot's load in one worker, for the admin pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Requests in flight (HTTP) or sessions open (TCP).
    pub active: u32,
    /// Idle keep-alive connections pooled.
    pub idle: usize,
    /// POST copies not yet finished.
    pub owed: usize,
}

/// What one worker publishes about itself.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    /// The `want_stats` request this answers (0: the once-a-second publication).
    pub answers: u64,
    /// The roster version this worker had applied.
    pub applied: u64,
    pub metrics: Metrics,
    /// By backend slot.
    pub load: Vec<Load>,
    pub clients_open: usize,
    /// Client connections this worker has accepted.
    pub clients_total: u64,
    /// POSTs this worker is still delivering.
    pub posts: usize,
    /// Removed backends that this worker has nothing left for.
    pub left_idle: Vec<BackendId>,
}

/// Counts one refusal in a run of them; true for the first, which starts the run at `now`.
fn first_of_run(run: &Mutex<Option<(Instant, u64)>>, now: Instant) -> bool {
    let Ok(mut r) = run.lock() else {
        return false;
    };
    match r.as_mut() {
        Some((_, n)) => {
            *n += 1;
            false
        }
        None => {
            *r = Some((now, 1));
            true
        }
    }
}

/// A value published whole by one thread and read by the others when they choose.
struct Published<T> {
    value: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    fn new(value: T) -> Self {
        Published {
            value: Mutex::new(Arc::new(value)),
        }
    }

    fn set(&self, value: Arc<T>) {
        if let Ok(mut v) = self.value.lock() {
            *v = value;
        }
    }

    fn get(&self) -> Option<Arc<T>> {
        self.value.lock().ok().map(|v| Arc::clone(&v))
    }
}

pub struct Shared {
    workers: usize,
    max_connections: usize,
    clients: AtomicUsize,
    posts: AtomicUsize,
    /// Request bytes of those POSTs.
    posts_bytes: AtomicU64,
    /// New POSTs are refused at the bound on what is owed: since when, and how many so far.
    refusing: Mutex<Option<(Instant, u64)>>,
    /// Bytes held for POSTs: bodies still arriving, answers waiting for their client
    /// (`budget::HeldBytes`).
    buffered: AtomicU64,
    /// The same as `refusing`, for `--max-buffered-bytes`.
    refusing_buffers: Mutex<Option<(Instant, u64)>>,
    /// Bumped after anything below (but the counts) changes.
    news: AtomicU64,
    roster: Published<Snapshot>,
    /// Up or down, by backend slot.
    health: Published<Vec<bool>>,
    /// Whether lb can reach each backend slot (`fanout::gate`).
    reachable: Published<Vec<bool>>,
    tls: Mutex<Option<TlsServers>>,
    /// The config file as worker 0 last applied it.
    site: Mutex<Option<Arc<SiteUpdate>>>,
    stop: Mutex<Stop>,
    wakers: Vec<OnceLock<Arc<mio::Waker>>>,
    /// By worker: another worker left clients in a listen backlog for it (`hand_off`).
    handed: Vec<AtomicBool>,
    stats: Vec<Published<Option<WorkerStats>>>,
    stats_wanted: AtomicU64,
    /// Workers whose loop has ended.
    finished: AtomicUsize,
    /// After an upgrade's take-over of the journal, each worker's writer, by worker, until
    /// the worker takes it (see `fanout::durable`).
    journals: Mutex<Vec<Option<crate::store::Writer>>>,
    journal_ready: AtomicBool,
}

impl Shared {
    pub fn new(workers: usize, max_connections: usize, roster: Arc<Snapshot>) -> Self {
        let up = vec![true; roster.slots.len()];
        Shared {
            workers,
            max_connections,
            clients: AtomicUsize::new(0),
            posts: AtomicUsize::new(0),
            posts_bytes: AtomicU64::new(0),
            refusing: Mutex::new(None),
            buffered: AtomicU64::new(0),
            refusing_buffers: Mutex::new(None),
            news: AtomicU64::new(0),
            roster: Published {
                value: Mutex::new(roster),
            },
            health: Published::new(up.clone()),
            reachable: Published::new(up),
            tls: Mutex::new(None),
            site: Mutex::new(None),
            stop: Mutex::new(Stop::Running),
            wakers: (0..workers).map(|_| OnceLock::new()).collect(),
            handed: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            stats: (0..workers).map(|_| Published::new(None)).collect(),
            stats_wanted: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            journals: Mutex::new(Vec::new()),
            journal_ready: AtomicBool::new(false),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// A client connection opens, if the process is below `--max-connections`.
    pub fn open_client(&self) -> bool {
        let before = self.clients.fetch_add(1, Relaxed);
        if before >= self.max_connections {
            self.clients.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    pub fn close_client(&self) {
        self.clients.fetch_sub(1, Relaxed);
    }

    /// Client connections open in the whole process.
    pub fn clients(&self) -> usize {
        self.clients.load(Relaxed)
    }

    /// POSTs being delivered in the whole process, and their request bytes
    /// (`--max-pending` and `--max-pending-bytes` bound them).
    pub fn posts(&self) -> (usize, u64) {
        (self.posts.load(Relaxed), self.posts_bytes.load(Relaxed))
    }

    pub fn post_started(&self, bytes: u64) {
        self.posts.fetch_add(1, Relaxed);
        self.posts_bytes.fetch_add(bytes, Relaxed);
    }

    pub fn post_ended(&self, bytes: u64) {
        self.posts.fetch_sub(1, Relaxed);
        self.posts_bytes.fetch_sub(bytes, Relaxed);
    }

    /// A new POST was refused at the bound; true for the first of a run of refusals (its
    /// worker says so in the log).
    pub fn refused_at_bound(&self, now: Instant) -> bool {
        first_of_run(&self.refusing, now)
    }

    /// The backlog is well under the bound again: when refusing began and how many were
    /// refused, once (its worker says so in the log).
    pub fn taking_posts_again(&self) -> Option<(Instant, u64)> {
        self.refusing.lock().ok()?.take()
    }

    /// Bytes held for POSTs in the whole process (`--max-buffered-bytes` bounds them).
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Relaxed)
    }

    /// Counts `n` more bytes held, if they keep the process within `bound`.
    pub fn take_buffered(&self, n: u64, bound: u64) -> bool {
        let before = self.buffered.fetch_add(n, Relaxed);
        if before.saturating_add(n) > bound {
            self.buffered.fetch_sub(n, Relaxed);
            return false;
        }
        true
    }

    pub fn give_buffered(&self, n: u64) {
        self.buffered.fetch_sub(n, Relaxed);
    }

    /// A POST was refused at `--max-buffered-bytes`; true for the first of a run.
    pub fn refused_at_buffer_bound(&self, now: Instant) -> bool {
        first_of_run(&self.refusing_buffers, now)
    }

    /// What POSTs hold is well under `--max-buffered-bytes` again: when refusing began and
    /// how many were refused, once.
    pub fn buffers_free_again(&self) -> Option<(Instant, u64)> {
        self.refusing_buffers.lock().ok()?.take()
    }

    /// Bumped whenever a published value changes; a worker reads them when it moved.
    pub fn news(&self) -> u64 {
        self.news.load(Relaxed)
    }

    /// Marks a change and wakes every worker but `from`, so that an idle one applies it too.
    fn announce(&self, from: usize) {
        self.news.fetch_add(1, Relaxed);
        self.wake_all(from);
    }

    fn wake_all(&self, from: usize) {
        for (k, w) in self.wakers.iter().enumerate() {
            if k != from
                && let Some(w) = w.get()
            {
                // A failed wake-up leaves the news for the worker's next turn.
                let _ = w.wake();
            }
        }
    }

    /// Worker `from` took its share of a burst and left the rest in the backlog: every
    /// other worker is woken to accept from the listeners (a new client's readiness edge
    /// reaches one worker only, and no edge comes for clients already waiting).
    pub fn hand_off(&self, from: usize) {
        for (k, handed) in self.handed.iter().enumerate() {
            if k != from {
                handed.store(true, Relaxed);
            }
        }
        self.wake_all(from);
    }

    /// Whether another worker handed clients to worker `k` since it last looked.
    pub fn take_handed(&self, k: usize) -> bool {
        self.handed
            .get(k)
            .is_some_and(|handed| handed.swap(false, Relaxed))
    }

    /// How worker `k` is woken from another thread (its poll's one `Waker`).
    pub fn set_waker(&self, k: usize, waker: Arc<mio::Waker>) {
        let _ = self.wakers[k].set(waker);
    }

    fn wake(&self, k: usize) {
        if let Some(w) = self.wakers.get(k).and_then(OnceLock::get) {
            let _ = w.wake();
        }
    }

    /// The control loop changed the roster.
    pub fn publish_roster(&self, snapshot: Arc<Snapshot>) {
        self.roster.set(snapshot);
        self.announce(0);
    }

    pub fn roster(&self) -> Option<Arc<Snapshot>> {
        self.roster.get()
    }

    /// Backend `id` is up or down now; true if that is news (its flipper logs it).
    pub fn set_health(&self, from: usize, id: BackendId, up: bool) -> bool {
        self.flip(&self.health, from, id, up)
    }

    /// Up or down, by backend slot (a slot past the end was never flipped: up).
    pub fn health(&self) -> Option<Arc<Vec<bool>>> {
        self.health.get()
    }

    /// lb can reach backend `id` now, or cannot; true if that is news (its flipper logs it).
    pub fn set_reachable(&self, from: usize, id: BackendId, reachable: bool) -> bool {
        self.flip(&self.reachable, from, id, reachable)
    }

    /// Whether lb can reach each backend slot (a slot past the end was never flipped: yes).
    pub fn reachable(&self) -> Option<Arc<Vec<bool>>> {
        self.reachable.get()
    }

    /// Sets slot `id` of `flags` (true past the end); true if that changed it.
    fn flip(&self, flags: &Published<Vec<bool>>, from: usize, id: BackendId, to: bool) -> bool {
        // Read, changed and put back under one lock: two workers may flip two backends at once.
        let Ok(mut current) = flags.value.lock() else {
            return false;
        };
        if current.get(id).copied().unwrap_or(true) == to {
            return false;
        }
        let mut all = Vec::clone(&current);
        if id >= all.len() {
            all.resize(id + 1, true);
        }
        all[id] = to;
        *current = Arc::new(all);
        drop(current);
        self.announce(from);
        true
    }

    /// Certificates were reloaded: new handshakes in every worker use `config`.
    pub fn publish_tls(&self, configs: TlsServers) {
        if let Ok(mut t) = self.tls.lock() {
            *t = Some(configs);
        }
        self.announce(0);
    }

    pub fn publish_site(&self, update: Arc<SiteUpdate>) {
        if let Ok(mut s) = self.site.lock() {
            *s = Some(update);
        }
        self.announce(0);
    }

    pub fn site(&self) -> Option<Arc<SiteUpdate>> {
        self.site.lock().ok().and_then(|s| s.clone())
    }

    pub fn tls(&self) -> Option<TlsServers> {
        self.tls.lock().ok().and_then(|t| t.clone())
    }

    /// Tells every worker how to stop; a cut overrides a drain.
    pub fn stop(&self, how: Stop) {
        if let Ok(mut s) = self.stop.lock() {
            *s = how;
        }
        self.announce(0);
    }

    pub fn stopping(&self) -> Stop {
        self.stop.lock().map_or(Stop::Cut, |s| *s)
    }

    /// A worker's loop ended; worker 0 is woken to see whether all have.
    pub fn finished(&self) {
        self.finished.fetch_add(1, Relaxed);
        self.wake(0);
    }

    /// Loops that have ended, of `workers()`.
    pub fn finished_count(&self) -> usize {
        self.finished.load(Relaxed)
    }

    /// The admin listener wants fresh counters from every worker: a request number.
    pub fn want_stats(&self) -> u64 {
        let n = self.stats_wanted.fetch_add(1, Relaxed) + 1;
        self.announce(0);
        n
    }

    /// The newest request for counters.
    pub fn stats_wanted(&self) -> u64 {
        self.stats_wanted.load(Relaxed)
    }

    /// Worker `k` publishes its counters; worker 0 is woken if they answer a request.
    pub fn publish_stats(&self, k: usize, stats: WorkerStats) {
        let answers = stats.answers;
        self.stats[k].set(Arc::new(Some(stats)));
        if answers > 0 && k != 0 {
            self.wake(0);
        }
    }

    /// Worker `k`'s latest counters, if it has published any.
    pub fn stats(&self, k: usize) -> Option<Arc<Option<WorkerStats>>> {
        self.stats.get(k).and_then(Published::get)
    }

    /// Whether every worker but 0 has answered request `n` (a worker that has ended
    /// published its last counters as answering every request).
    pub fn stats_answered(&self, n: u64) -> bool {
        (1..self.workers).all(|k| {
            self.stats(k)
                .is_some_and(|s| s.as_ref().as_ref().is_some_and(|s| s.answers >= n))
        })
    }

    /// After a take-over, the control loop hands each worker its journal writer.
    pub fn hand_journals(&self, writers: Vec<Option<crate::store::Writer>>) {
        if let Ok(mut j) = self.journals.lock() {
            *j = writers;
        }
        self.journal_ready.store(true, Relaxed);
        self.announce(0);
    }

    /// Worker `k`'s journal writer, once the control loop has handed it over.
    pub fn take_journal(&self, k: usize) -> Option<crate::store::Writer> {
        if !self.journal_ready.load(Relaxed) {
            return None;
        }
        self.journals.lock().ok()?.get_mut(k)?.take()
    }
}
