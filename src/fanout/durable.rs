//! The fan-out's side of the journal: a job's record is written before any of its copies
//! goes out, and its client hears of a delivery only once the record is durable; every
//! finished copy is recorded, finished jobs free their segment, jobs that pin an old
//! segment are carried forward, and at start the jobs still owed are resumed. An lb started
//! by an upgrade takes the journal over once the lb it replaces has let go of it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info};
use slab::Slab;

use super::{Job, Phase, deliver, insert_job, reply};
use crate::backend::{Backend, BackendId, Role};
use crate::config::{FLAGS_POOL, JournalSync};
use crate::event_loop::{Conn, Core, Timer};
use crate::http::head::{ClientSide, Method, RequestId};
use crate::journal::{
    Done, Doorbell, INHERITED, JobRecord, Journal, Opened, Outcome, Replayed, Uncarried,
};
use crate::pool::Pool;
use crate::store::{Store, Writer};

/// How often an upgraded lb tries to take the journal over.
const TAKEOVER_RETRY: Duration = Duration::from_millis(100);

/// The journal of the lb this one replaces, to be taken over once that one lets go.
pub(super) struct Takeover {
    dir: PathBuf,
    mode: JournalSync,
    /// What the journal's thread rings once it is started.
    doorbell: Arc<Doorbell>,
    next_try: Instant,
}

/// Gives the fan-out this worker's journal writer, which main opened, or `None` after an
/// upgrade while the lb this one replaces still holds the journal: the jobs to resume, and
/// the doorbell the journal's thread rings, for the loop to watch.
pub fn use_journal(
    core: &mut Core,
    writer: Option<Writer>,
) -> Result<(Vec<Replayed>, Arc<Doorbell>), String> {
    let doorbell =
        Doorbell::new().map_err(|e| format!("cannot make the journal's eventfd: {e}"))?;
    let doorbell = Arc::new(doorbell);
    let dir = core.cfg.journal.as_ref().and_then(|j| j.dir());
    let resumed = match (writer, dir.map(PathBuf::from)) {
        (Some(mut w), _) => {
            start(&mut *w.store, &doorbell)?;
            core.fanout.attach_journal(w.store);
            w.owed
        }
        (None, Some(dir)) => {
            core.fanout.takeover = Some(Takeover {
                dir,
                mode: core.cfg.journal_sync,
                doorbell: Arc::clone(&doorbell),
                next_try: core.now,
            });
            Vec::new()
        }
        (None, None) => return Err("no --journal to take over".into()),
    };
    Ok((resumed, doorbell))
}

/// Starts `store`'s thread, which rings `doorbell` after each batch it finished.
fn start(store: &mut dyn Store, doorbell: &Arc<Doorbell>) -> Result<(), String> {
    let doorbell = Arc::clone(doorbell);
    store.start(Box::new(move || doorbell.ring()))
}

/// Why a new POST cannot be taken now: the journal failed a moment ago, or is still held
/// by the lb this one replaces.
pub(super) fn refusal(core: &Core) -> Option<String> {
    if core.fanout.takeover.is_some() {
        return Some(
            "the journal is still held by the lb this one replaces, which is finishing; \
             nothing was sent"
                .into(),
        );
    }
    let why = core.fanout.journal.as_ref()?.refusing(core.now)?;
    Some(format!(
        "the journal cannot be written ({why}); nothing was sent"
    ))
}

/// Puts job `job` in the journal. True when its copies must wait for the record to be
/// written (at the end of the turn); false without a journal.
pub(super) fn append(core: &mut Core, job: usize) -> bool {
    let (Some(journal), Some(j)) = (core.fanout.journal.as_mut(), core.fanout.jobs.get_mut(job))
    else {
        return false;
    };
    let keys: Vec<Cow<str>> = j
        .copies
        .iter()
        .map(|c| journal_key(&core.backends, &core.pools, c.backend))
        .collect();
    let labels: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
    let id = journal.next_id();
    let ticket = journal.append(&JobRecord {
        id,
        request_id: j.request_id.as_bytes(),
        request: &j.request,
        backends: &labels,
    });
    j.journal = Some((id, ticket.segment));
    j.durable = false;
    core.fanout
        .unwritten
        .push_back((ticket.batch, job, j.serial));
    true
}

/// One backend's copy of `job` is finished.
pub(super) fn record(core: &mut Core, job: usize, backend: usize, outcome: Outcome) {
    let (Some(journal), Some(j)) = (core.fanout.journal.as_mut(), core.fanout.jobs.get(job)) else {
        return;
    };
    if let Some((id, _)) = j.journal {
        let key = journal_key(&core.backends, &core.pools, backend);
        journal.record(id, &key, outcome);
    }
}

/// How the journal names a backend: its label in the flags' pool (as journals written
/// before pools did), else its pool and its label, apart by a space (which no label holds).
fn journal_key<'a>(backends: &'a [Backend], pools: &[Pool], id: BackendId) -> Cow<'a, str> {
    let b = &backends[id];
    match pools[b.pool].name() {
        FLAGS_POOL => Cow::Borrowed(&b.label),
        pool => Cow::Owned(format!("{pool} {}", b.label)),
    }
}

/// Every copy of `j` is finished (or it never went out).
pub(super) fn job_finished(core: &mut Core, j: &Job) {
    if let (Some(journal), Some((_, segment))) = (core.fanout.journal.as_mut(), j.journal) {
        journal.finished(segment);
    }
}

/// The end of a loop turn: the turn's records are written, and the copies they held back
/// go out.
pub fn end_turn(conns: &mut Slab<Conn>, core: &mut Core) {
    take_over(conns, core);
    let Some(journal) = core.fanout.journal.as_mut() else {
        return;
    };
    journal.end_turn();
    if let Some(at) = journal.due().filter(|_| !core.fanout.store_timer) {
        core.timers.insert(at, Timer::StoreDue);
        core.fanout.store_timer = true;
    }
    settle_batches(conns, core);
    carry_forward(core);
}

/// The store's `Timer::StoreDue` fired: the turn it ends lets go of what is due, and sets
/// the next.
pub fn store_due(core: &mut Core) {
    core.fanout.store_timer = false;
}

/// An upgraded lb: once the lb it replaces has let go of the journal, worker 0 locks it
/// and hands every other worker its writer; each resumes its share of what is still owed
/// and takes POSTs again.
fn take_over(conns: &mut Slab<Conn>, core: &mut Core) {
    let Some(t) = core
        .fanout
        .takeover
        .as_mut()
        .filter(|t| core.now >= t.next_try)
    else {
        return;
    };
    t.next_try = core.now + TAKEOVER_RETRY;
    let dir = t.dir.display().to_string();
    let mut w = if core.worker == 0 {
        match Journal::open(&t.dir, t.mode, core.shared.workers()) {
            Ok(Opened::Ready(writers)) => {
                let mut writers: Vec<Option<Writer>> =
                    writers.into_iter().map(|w| Some(w.into())).collect();
                let Some(Some(mine)) = writers.first_mut().map(Option::take) else {
                    return;
                };
                core.shared.hand_journals(writers);
                mine
            }
            Ok(Opened::Held(_)) => return,
            Err(why) => {
                t.next_try = core.now + Duration::from_secs(1);
                return error!("--journal {dir}: {why}; POSTs get 503 until it can be used");
            }
        }
    } else {
        match core.shared.take_journal(core.worker) {
            Some(w) => w,
            None => return,
        }
    };
    if let Err(why) = start(&mut *w.store, &t.doorbell) {
        return error!("--journal {dir}: {why}");
    }
    info!(
        "journal {dir} taken over from the lb this one replaced: {} writes still owed are \
         resumed, and POSTs are taken again",
        w.owed.len()
    );
    core.fanout.takeover = None;
    core.fanout.attach_journal(w.store);
    resume(conns, core, w.owed);
}

/// The store's thread finished a batch, or took over another lb's owed writes.
pub fn journal_woke(conns: &mut Slab<Conn>, core: &mut Core) {
    let Some(journal) = core.fanout.journal.as_mut() else {
        return;
    };
    journal.poll_thread();
    let claimed = journal.take_claimed();
    settle_batches(conns, core);
    resume(conns, core, claimed);
}

fn settle_batches(conns: &mut Slab<Conn>, core: &mut Core) {
    while let Some(done) = core.fanout.journal.as_mut().and_then(|j| j.take_done()) {
        written(conns, core, &done);
        if done.durable {
            durable(conns, core, &done);
        }
        uncarried(core, &done.uncarried);
    }
}

/// Jobs whose carried-forward record did not become durable: each still has its latest
/// record where it had it before, and is carried again once the disk is tried again.
fn uncarried(core: &mut Core, lost: &[Uncarried]) {
    let (Some(journal), false) = (core.fanout.journal.as_mut(), lost.is_empty()) else {
        return;
    };
    let mut lost: HashMap<u128, Uncarried> = lost.iter().map(|u| (u.id, *u)).collect();
    for (_, j) in core.fanout.jobs.iter_mut() {
        let Some((id, segment)) = j.journal else {
            continue;
        };
        if let Some(&u) = lost.get(&id)
            && u.to == segment
        {
            lost.remove(&id);
            j.journal = Some((id, u.from));
            journal.uncarried(u, true);
        }
    }
    for u in lost.into_values() {
        journal.uncarried(u, false);
    }
}

/// The jobs of the batches up to `done.batch` are written: their copies go out. Or the
/// write failed: their clients get 503, and nothing was sent.
fn written(conns: &mut Slab<Conn>, core: &mut Core, done: &Done) {
    while let Some(&(batch, job, serial)) = core.fanout.unwritten.front() {
        if batch > done.batch {
            break;
        }
        core.fanout.unwritten.pop_front();
        let Some(j) = core.fanout.jobs.get(job).filter(|j| j.serial == serial) else {
            continue;
        };
        let copies = j.copies.len();
        if let Err(why) = &done.result {
            reply::journal_failed(conns, core, job, why);
            continue;
        }
        core.fanout.unsynced.push_back((batch, job, serial));
        for copy in 0..copies {
            deliver::dispatch(conns, core, job, copy, true);
        }
    }
}

/// The jobs of the batches up to `done.batch` are durable: a delivered answer parked for
/// one of them goes to its client. A failed sync tells the client 503 instead.
fn durable(conns: &mut Slab<Conn>, core: &mut Core, done: &Done) {
    while let Some(&(batch, job, serial)) = core.fanout.unsynced.front() {
        if batch > done.batch {
            break;
        }
        core.fanout.unsynced.pop_front();
        let Some(j) = core.fanout.jobs.get_mut(job).filter(|j| j.serial == serial) else {
            continue;
        };
        j.durable = true;
        match &done.result {
            Ok(()) => reply::unpark(conns, core, job),
            Err(why) => reply::not_durable(conns, core, job, why),
        }
        deliver::end_if_done(conns, core, job);
    }
}

/// Jobs whose records keep the oldest segment alive are written again into the current
/// one, listing only the backends still owed.
fn carry_forward(core: &mut Core) {
    let fanout = &mut core.fanout;
    let Some(journal) = fanout.journal.as_mut() else {
        return;
    };
    let Some(segment) = journal.carry_due(core.now) else {
        return;
    };
    let mut carried = 0;
    for (_, j) in fanout.jobs.iter_mut() {
        let Some((id, s)) = j.journal.filter(|&(_, s)| s == segment) else {
            continue;
        };
        let keys: Vec<Cow<str>> = j
            .copies
            .iter()
            .filter(|c| !c.phase.is_final())
            .map(|c| journal_key(&core.backends, &core.pools, c.backend))
            .collect();
        let labels: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
        let record = JobRecord {
            id,
            request_id: j.request_id.as_bytes(),
            request: &j.request,
            backends: &labels,
        };
        j.journal = Some((id, journal.carry(&record, s).segment));
        carried += 1;
    }
    // Said once: a disk that stays full makes every later try fail the same way.
    if journal.failing() {
        debug!("journal: {carried} writes still owed carried forward again");
    } else if segment == INHERITED {
        info!("journal: {carried} writes resumed at start are written anew");
    } else {
        info!("journal: {carried} writes still owed carried forward out of segment {segment}");
    }
}

/// At start: the writes the journal still owes go out again, paced like retries. A
/// backend that is no longer configured cannot be delivered to: that copy is given up.
pub fn resume(conns: &mut Slab<Conn>, core: &mut Core, replayed: Vec<Replayed>) {
    if core.fanout.journal.is_none() {
        return;
    }
    let side = ClientSide {
        method: Method::Post,
        version: 1,
        keep_alive: false,
        upgrade: false,
    };
    for r in replayed {
        let mut targets = Vec::with_capacity(r.owed.len());
        for label in &r.owed {
            let listed = |&id: &BackendId| {
                core.backends[id].role != Role::Vacant
                    && journal_key(&core.backends, &core.pools, id) == label.as_str()
            };
            match (0..core.backends.len()).find(listed) {
                Some(id) => targets.push(id),
                None => {
                    error!(
                        "journal: write {} is owed to {label}, which is no longer a backend: \
                         given up",
                        String::from_utf8_lossy(&r.request_id)
                    );
                    if let Some(journal) = core.fanout.journal.as_mut() {
                        journal.record(r.id, label, Outcome::Spent);
                    }
                }
            }
        }
        if targets.is_empty() {
            if let Some(journal) = core.fanout.journal.as_mut() {
                journal.finished(INHERITED);
            }
            continue;
        }
        let rid = RequestId::from_bytes(&r.request_id);
        let pool = core.backends[targets[0]].pool;
        let job = insert_job(
            core,
            (pool, &targets),
            r.request.into_boxed_slice(),
            rid,
            None,
            side,
        );
        // Its records are in the segments read at start until it is carried forward.
        core.fanout.jobs[job].journal = Some((r.id, INHERITED));
        for copy in 0..targets.len() {
            if let Some(j) = core.fanout.jobs.get_mut(job) {
                j.copies[copy].phase = Phase::Queued;
            }
            deliver::dispatch(conns, core, job, copy, false);
        }
    }
}

/// lb is exiting: what is still in memory goes to disk.
pub fn finish_journal(core: &mut Core) {
    if let Some(journal) = core.fanout.journal.as_mut() {
        journal.flush();
    }
}
