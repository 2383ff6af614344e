//! POST fan-out. The body is read whole (`body.rs`), then the request goes to every chosen
//! backend. Each attempt of a copy comes to one outcome (`outcome.rs`): delivered,
//! retryable or refused. The client gets the first delivered answer at once, streamed from
//! its backend connection, or the first refused one (kept whole) once nothing can be
//! delivered any more (`reply.rs`); a retryable copy is sent
//! again after an exponential backoff with jitter (`deliver.rs`), and copies wait in their
//! backend's lane while lb cannot reach it (`gate.rs`). Past --max-pending(-bytes) new
//! POSTs get 503 (`cap.rs`). With `--journal` the job is written to disk before any copy
//! goes out and is durable before its client hears of a delivery, and every final outcome
//! is recorded (`durable.rs`). A job holds the one copy of the request that all its copies
//! share; a waiting retry costs one timer entry.

use std::collections::VecDeque;
use std::time::Instant;

use slab::Slab;

use crate::access_log::{Answered, request_line};
use crate::backend::BackendId;
use crate::budget::HeldBytes;
use crate::event_loop::{Conn, Core, Timer};
use crate::http::RouteRef;
use crate::http::client::{self, ClientState};
use crate::http::head::{ClientSide, RequestId};
use crate::pool::PoolId;
use crate::store::Store;
use crate::strategy::{Members, PickContext};
use crate::timer::TimerId;

mod abandon;
mod body;
mod cap;
mod census;
mod copy;
mod deliver;
mod durable;
mod gate;
mod lane;
mod outcome;
mod reply;

pub use abandon::give_up_owed;
pub use body::{PendingPost, begin, buffer_body};
pub use census::refresh_metrics;
use copy::Response;
pub use deliver::{backoff, copy_failed, copy_ready, retry_due};
use durable::Takeover;
pub use durable::{end_turn, finish_journal, journal_woke, resume, store_due, use_journal};
pub use gate::{backend_up, checked, follow_published, moved, unreachable};
use lane::Lane;
pub use outcome::Answer;
pub use reply::{client_gone, deadline_passed};

/// Every POST still being delivered, the copies waiting for their backend, and the journal.
pub struct Jobs {
    jobs: Slab<Job>,
    lanes: Vec<Lane>,
    serial: u32,
    journal: Option<Box<dyn Store>>,
    /// An upgraded lb waiting for the one it replaces to let go of the journal.
    takeover: Option<Takeover>,
    /// Jobs whose journal record is not written yet, then not yet durable: (batch, job,
    /// serial) in batch order.
    unwritten: VecDeque<(u64, usize, u32)>,
    unsynced: VecDeque<(u64, usize, u32)>,
    /// A lane is being released: a copy that ends meanwhile leaves the releasing to it.
    releasing: bool,
    /// Request bytes held by this worker's jobs, for /metrics (the bound is the process's).
    owed_bytes: u64,
    /// A `Timer::StoreDue` is set, for what the store lets go of by itself (`Store::due`).
    store_timer: bool,
}

impl Jobs {
    pub fn new(backends: usize) -> Self {
        Jobs {
            jobs: Slab::new(),
            lanes: vec![Lane::default(); backends],
            serial: 0,
            journal: None,
            takeover: None,
            unwritten: VecDeque::new(),
            unsynced: VecDeque::new(),
            releasing: false,
            owed_bytes: 0,
            store_timer: false,
        }
    }

    /// From now on every new job goes to `store` first.
    pub fn attach_journal(&mut self, store: Box<dyn Store>) {
        self.journal = Some(store);
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Makes room for slot `id`, which a backend has just joined.
    pub fn place(&mut self, id: BackendId) {
        if id >= self.lanes.len() {
            self.lanes.resize(id + 1, Lane::default());
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

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn journal(&self) -> Option<&dyn Store> {
        self.journal.as_deref()
    }

    /// The store, for the runtime API changes instances sharing it tell each other of.
    pub fn journal_mut(&mut self) -> Option<&mut (dyn Store + 'static)> {
        self.journal.as_deref_mut()
    }

    /// lb is stopping: the answers still to come tell their clients to close.
    pub fn end_keep_alive(&mut self) {
        for (_, j) in self.jobs.iter_mut() {
            j.client_side = j.client_side.unless_draining(true);
        }
    }

    /// Copies not yet finished, per backend.
    pub fn undelivered(&self) -> Vec<usize> {
        let mut per_backend = vec![0; self.lanes.len()];
        for (_, j) in &self.jobs {
            for c in j.copies.iter().filter(|c| !c.phase.is_final()) {
                per_backend[c.backend] += 1;
            }
        }
        per_backend
    }

    /// With a journal, what is left may wait for the next start: no client waits, no copy
    /// is in flight or on its way to the disk, and every job is durable.
    pub fn only_journaled_left(&self) -> bool {
        self.journal.is_some()
            && self.unwritten.is_empty()
            && self.unsynced.is_empty()
            && self.jobs.iter().all(|(_, j)| {
                j.client.is_none()
                    && j.copies.iter().all(|c| {
                        matches!(c.phase, Phase::Backoff { .. } | Phase::Queued)
                            || c.phase.is_final()
                    })
            })
    }
}

struct Job {
    /// The route that took it (`None`: resumed from the journal), and its answer's rules.
    route: Option<usize>,
    rules: Option<RouteRef>,
    /// The pool its copies go to.
    pool: PoolId,
    /// How long a backend may stay silent on a copy: its route's, or its pool's.
    server_timeout: std::time::Duration,
    serial: u32,
    /// The journal's id for the job and the segment holding its latest record.
    journal: Option<(u128, u64)>,
    /// When the client's head was complete (or the job was resumed from the journal).
    started: Instant,
    /// The forwarded head and the body.
    request: Box<[u8]>,
    request_id: RequestId,
    client_side: ClientSide,
    /// The client still waiting for an answer: slab key and serial.
    client: Option<(usize, u32)>,
    copies: Vec<Copy>,
    answered: bool,
    deadline: Option<TimerId>,
    /// Copies not yet finished (delivered, refused or given up).
    open: usize,
    /// The first refused answer, for the client if no copy can be delivered.
    refusal: Option<Reply>,
    /// The job's journal record is durable (or there is no journal).
    durable: bool,
    /// A delivered answer waiting, unread in its backend connection, for the record to be
    /// durable: the copy, and the connection's slab key.
    parked: Option<(usize, usize)>,
}

/// A refused answer kept for the client, and the backend and status it came with.
struct Reply {
    /// As it will be written; `None` when it was too large to keep (the client is told
    /// its status in lb's words).
    bytes: Option<HeldBytes>,
    close: bool,
    from: (BackendId, u16),
}

struct Copy {
    backend: BackendId,
    attempts: u32,
    /// When the latest attempt went out, for the latency histogram.
    sent_at: Instant,
    phase: Phase,
}

enum Phase {
    /// The job's journal record is not written yet: nothing goes out before it is.
    Journaling,
    /// On a backend connection (which knows its job and copy): `sent` bytes are out.
    InFlight {
        sent: usize,
        response: Option<Response>,
    },
    /// Waiting for its retry timer, with its slot in the lane's `backoff`.
    Backoff {
        timer: TimerId,
        slot: usize,
    },
    /// In its backend's lane: lb cannot reach the backend, or it has its share of copies in
    /// flight.
    Queued,
    Delivered,
    Refused,
    /// Attempts spent, or a failure --retry-on does not retry.
    Spent,
}

impl Phase {
    fn is_final(&self) -> bool {
        matches!(self, Phase::Delivered | Phase::Refused | Phase::Spent)
    }
}

/// Starts a complete POST: refused at once when no backend is up (nothing is queued) or
/// the journal cannot take it; otherwise its copies go out (after the journal has it), and
/// the client waits for the first answer it may get.
pub fn launch(conns: &mut Slab<Conn>, core: &mut Core, key: usize, p: PendingPost) {
    let targets = choose_targets(conns, core, key, p.pool);
    let Some(c) = client::client_mut(conns, key) else {
        return;
    };
    let refusal = if !targets.iter().any(|&b| core.backends[b].takes_copies()) {
        Some("no backend is up; nothing was sent".to_string())
    } else {
        durable::refusal(core)
    };
    if let Some(text) = refusal {
        core.metrics.local_response(503);
        let took = core.now.saturating_duration_since(p.started);
        let head = Answered::ours(p.request.data(), 503, Some(&p.request_id)).by(Some(p.route));
        core.answered(c.peer, took, None, head);
        client::answer(
            c,
            core,
            key,
            503,
            &text,
            Some(&p.request_id),
            !p.client.keep_alive,
        );
        return;
    }
    let client = Some((key, c.serial));
    let side = p.client.unless_draining(core.draining);
    let request = p.request.into_vec().into_boxed_slice();
    let id = insert_job(
        core,
        (p.pool, &targets),
        request,
        p.request_id,
        client,
        side,
    );
    core.fanout.jobs[id].started = p.started;
    core.fanout.jobs[id].server_timeout = p.server_timeout;
    core.fanout.jobs[id].route = Some(p.route);
    core.fanout.jobs[id].rules = p.rules;
    let serial = core.fanout.jobs[id].serial;
    if let Some(c) = client::client_mut(conns, key) {
        c.state = ClientState::AwaitingFanout { job: id };
    }
    let deadline = core.timers.insert(
        core.now + core.pools[p.pool].settings.fanout.timeout,
        Timer::FanoutDeadline { job: id, serial },
    );
    core.fanout.jobs[id].deadline = Some(deadline);
    if !durable::append(core, id) {
        for copy in 0..targets.len() {
            deliver::dispatch(conns, core, id, copy, true);
        }
    }
}

/// Adds a job with one copy per target, none sent yet.
fn insert_job(
    core: &mut Core,
    (pool, targets): (PoolId, &[BackendId]),
    request: Box<[u8]>,
    request_id: RequestId,
    client: Option<(usize, u32)>,
    client_side: ClientSide,
) -> usize {
    core.fanout.serial = core.fanout.serial.wrapping_add(1);
    let job = Job {
        route: None,
        rules: None,
        pool,
        server_timeout: core.pools[pool].settings.server_timeout,
        serial: core.fanout.serial,
        journal: None,
        started: core.now,
        request,
        request_id,
        client_side,
        client,
        copies: targets
            .iter()
            .map(|&backend| Copy {
                backend,
                attempts: 0,
                sent_at: core.now,
                phase: Phase::Journaling,
            })
            .collect(),
        answered: false,
        deadline: None,
        open: targets.len(),
        refusal: None,
        durable: true,
        parked: None,
    };
    insert(core, job)
}

/// Counts job `job` against the bound on what is owed, in this worker and the process.
fn insert(core: &mut Core, job: Job) -> usize {
    let bytes = job.request.len() as u64;
    core.fanout.owed_bytes += bytes;
    core.shared.post_started(bytes);
    core.fanout.jobs.insert(job)
}

/// Takes job `job` out: what it held no longer counts against the bound.
fn remove_job(core: &mut Core, job: usize) -> Job {
    let j = core.fanout.jobs.remove(job);
    let bytes = j.request.len() as u64;
    core.fanout.owed_bytes = core.fanout.owed_bytes.saturating_sub(bytes);
    core.shared.post_ended(bytes);
    j
}

/// The backends of `pool` a new POST goes to: every listed one (fan-out count 0), up or
/// not, drained or not (their copies wait), or N distinct ones that are up and in rotation.
fn choose_targets(
    conns: &mut Slab<Conn>,
    core: &mut Core,
    key: usize,
    pool: PoolId,
) -> Vec<BackendId> {
    let p = &mut core.pools[pool];
    let count = p.settings.fanout.count;
    if count == 0 || count >= p.members.len() {
        return p.members.clone();
    }
    let ctx = PickContext {
        client_ip: client::client_mut(conns, key).map(|c| c.peer.ip()),
        path: b"",
    };
    let mut chosen = Vec::with_capacity(count);
    while chosen.len() < count {
        let taken = &chosen;
        let members = Members::of(&core.backends, &p.members);
        match p.strategy.pick(members, &ctx, &|id| !taken.contains(&id)) {
            Some(id) => chosen.push(id),
            None => break,
        }
    }
    chosen
}
