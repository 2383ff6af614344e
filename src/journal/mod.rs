//! The journal: POST copies still owed, kept on disk so that a crash of lb loses no write
//! a client was told had succeeded. It takes and returns plain values and knows nothing
//! of sockets or the event loop.
//!
//! An append-only log of records authenticated with the directory's secret key
//! (`record.rs`, `key.rs`) in numbered segment files, `{writer}-{number}.journal`, so that
//! several writers can share one directory; one `flock` per directory keeps a second
//! process out (`files.rs`). A job record carries the request and the backends still owed
//! it; an outcome record finishes one backend's copy.
//! The records made during one loop turn are written together at its end, before any copy
//! of those jobs goes out, so a crash of lb never forgets a copy that went out. With
//! `--journal-sync batch` a thread beside the loop then makes one `fdatasync` for them and
//! wakes the loop, which only then lets the answers to those POSTs go (group commit): the
//! disk works while the copies travel. A segment is deleted once every job in it has finished;
//! jobs that pin an old segment are written again into the current one (carried forward),
//! so the directory stays small however long a backend stays down. At start every segment
//! is read back (`replay.rs`) and what is still owed is resumed at once; the segments read
//! are kept until those jobs are carried forward into a fresh segment (or finished), so a
//! disk that is full at start delays only that, and new POSTs, never the deliveries.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::JournalSync;
use crate::metrics::{Histogram, latency_bounds};

mod doorbell;
mod files;
mod key;
mod legacy;
mod open;
pub mod record;
mod replay;
mod siphash;
mod write;

pub use doorbell::Doorbell;
pub use key::KEY_FILE;
use open::Inherited;
pub use open::{Opened, Writer};

use files::{DirLock, Segments, Sync, Worker};
use key::KeyFile;
pub use record::{JobRecord, Outcome, SipKey};
pub use replay::Replayed;

/// A segment this large gets no more records; the next go to a new one.
const SEGMENT_BYTES: u64 = 8 << 20;
/// More segments than this, and the jobs that keep the oldest alive are carried forward.
const MAX_SEGMENTS: usize = 4;
/// After a failed write, new jobs are refused this long before the disk is tried again.
const BACKOFF: Duration = Duration::from_secs(1);
/// The segment number that stands for the segments read at start, whose jobs each writer
/// resumes: they are carried forward into a fresh segment, and the old ones deleted.
pub const INHERITED: u64 = 0;

/// Where a job's record went: the batch it is written (then synced) with, and its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub batch: u64,
    pub segment: u64,
}

/// What became of the batches up to `batch`.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub batch: u64,
    pub result: Result<(), String>,
    /// Written and made as durable as --journal-sync asks (else only written: the thread
    /// reports the sync later).
    pub durable: bool,
    /// Jobs carried forward in the failed batches: their latest record is still in `from`.
    pub uncarried: Vec<Uncarried>,
}

/// A job carried from segment `from` to `to` whose record in `to` did not become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uncarried {
    pub id: u128,
    pub from: u64,
    pub to: u64,
}

/// Counters for /metrics and /stats.
#[derive(Debug, Clone)]
pub struct Stats {
    pub bytes: u64,
    pub records: u64,
    pub syncs: u64,
    /// Each fdatasync's time.
    pub sync_latency: Histogram,
    /// Failed writes and syncs (disk full, I/O error).
    pub failures: u64,
    /// Found at start: damaged records skipped, torn tails dropped, jobs resumed.
    pub corrupt: u64,
    pub torn: u64,
    pub replayed: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            bytes: 0,
            records: 0,
            syncs: 0,
            sync_latency: Histogram::new(latency_bounds(Duration::from_secs(10))),
            failures: 0,
            corrupt: 0,
            torn: 0,
            replayed: 0,
        }
    }
}

struct Segment {
    number: u64,
    bytes: u64,
    /// Jobs whose latest record is here and that have not finished.
    live: usize,
}

pub struct Journal {
    mode: JournalSync,
    /// The directory's key, which authenticates every record, and whether this writer has
    /// seen it saved (a new directory's key is written before its first record).
    key: SipKey,
    key_file: Arc<KeyFile>,
    key_saved: bool,
    files: Segments,
    /// The syncing thread (`batch`), once started.
    syncer: Option<Worker>,
    /// The directory's lock, shared by the writers of every worker.
    _lock: Arc<DirLock>,
    /// Segments not yet deleted, oldest first; the last is the one being written.
    segments: VecDeque<Segment>,
    /// The records made since the last write, and where each ends.
    pending: Vec<u8>,
    ends: Vec<usize>,
    /// The number the next write will have.
    batch: u64,
    /// `batch`: the last batch written and not yet handed to the thread, the files it
    /// went to, and whether the thread is busy.
    unsynced: Option<u64>,
    unsynced_files: Vec<(u64, Arc<File>)>,
    syncing: bool,
    /// Jobs carried forward in `pending` (id, from), then in written batches not yet
    /// durable (batch, id, from, to): each `from` may lose one live job once that is
    /// durable; if it fails, the job is still in `from`.
    carried: Vec<(u128, u64)>,
    carried_unsynced: Vec<(u64, u128, u64, u64)>,
    uncarried: Vec<Uncarried>,
    delete: Vec<u64>,
    /// The segments read at start (`INHERITED`), shared with the other writers.
    inherited: Arc<Inherited>,
    let_go: bool,
    /// Until when new jobs are refused after a failed write, and why.
    refused: Option<(Instant, String)>,
    /// Writes failed in a row: the first is logged as an error, the others quietly.
    failing: u64,
    done: VecDeque<Done>,
    pub stats: Stats,
}

impl Journal {
    /// Starts the syncing thread (`batch`), which calls `wake` after each sync.
    pub fn start(&mut self, wake: Box<dyn Fn() + Send>) -> Result<(), String> {
        if self.mode == JournalSync::Batch && self.syncer.is_none() {
            self.syncer = Some(Worker::spawn(wake)?);
        }
        Ok(())
    }

    /// A new job's id: 128 bits from a CSPRNG (ChaCha12 seeded by the OS), so that no one
    /// can name a job they did not make, and no two jobs share one.
    pub fn next_id(&mut self) -> u128 {
        rand::random()
    }

    /// Why new jobs should be refused now: the disk failed a moment ago.
    pub fn refusing(&self, now: Instant) -> Option<String> {
        let (until, why) = self.refused.as_ref()?;
        (now < *until).then(|| why.clone())
    }

    /// The last write or sync failed, and none has succeeded since.
    pub fn failing(&self) -> bool {
        self.failing > 0
    }

    /// Adds a new job; its copies may go out once batch `ticket.batch` is written.
    pub fn append(&mut self, job: &JobRecord) -> Ticket {
        self.add_job(job)
    }

    /// Writes a live job from segment `from` again into the current one, so that `from`
    /// can go once that is durable.
    pub fn carry(&mut self, job: &JobRecord, from: u64) -> Ticket {
        self.carried.push((job.id, from));
        self.add_job(job)
    }

    fn add_job(&mut self, job: &JobRecord) -> Ticket {
        self.rotate_if_full();
        record::encode_job(&mut self.pending, self.key, job);
        self.ends.push(self.pending.len());
        self.stats.records += 1;
        let batch = self.batch;
        let current = self.current();
        current.live += 1;
        Ticket {
            batch,
            segment: current.number,
        }
    }

    /// One backend's copy of job `id` is finished.
    pub fn record(&mut self, id: u128, backend: &str, outcome: Outcome) {
        self.rotate_if_full();
        record::encode_outcome(&mut self.pending, self.key, id, backend, outcome);
        self.ends.push(self.pending.len());
        self.stats.records += 1;
    }

    /// Every copy of a job whose latest record is in `segment` is finished.
    pub fn finished(&mut self, segment: u64) {
        self.forget_one(segment);
    }

    /// After a failed carry (`Done::uncarried`): job `u.id` is back in `u.from` if it is
    /// still `live`; else it finished meanwhile, as a job of `u.to`.
    pub fn uncarried(&mut self, u: Uncarried, live: bool) {
        self.forget_one(if live { u.to } else { u.from });
    }

    /// A segment whose live jobs should be carried forward now, if one is due: the
    /// segments read at start at once, an old one when there are too many; none while the
    /// disk is refused or a carry is on its way.
    pub fn carry_due(&self, now: Instant) -> Option<u64> {
        let oldest = self.segments.front()?;
        let busy = !self.carried.is_empty() || !self.carried_unsynced.is_empty();
        let due = oldest.number == INHERITED || self.segments.len() > MAX_SEGMENTS;
        (due && oldest.live > 0 && !busy && self.refusing(now).is_none()).then_some(oldest.number)
    }

    /// The end of a loop turn: the turn's records are written (with `always`, each synced);
    /// with `batch` the thread is asked to sync them. Results come through `take_done`.
    pub fn end_turn(&mut self) {
        if !self.pending.is_empty() {
            // The segments read at start go once what they owe is written anew: synced
            // first, as it was before this lb, whatever --journal-sync says.
            let inherited = self.carried.iter().any(|&(_, from)| from == INHERITED);
            let sync = match self.mode {
                JournalSync::Off if inherited => Sync::Once,
                JournalSync::Off | JournalSync::Batch => Sync::Never,
                JournalSync::Always => Sync::EachRecord,
            };
            let batch = self.batch;
            let result = self.write_pending(sync);
            let durable = result.is_err() || self.mode != JournalSync::Batch;
            self.done.push_back(Done {
                batch,
                result,
                durable,
                uncarried: std::mem::take(&mut self.uncarried),
            });
        }
        self.hand_to_thread();
    }

    /// Takes the thread's answer, if it has one (after it woke the loop).
    pub fn poll_thread(&mut self) {
        if let Some(done) = self.syncer.as_ref().and_then(Worker::try_recv) {
            self.synced(done);
        }
        self.hand_to_thread();
    }

    /// What was written or made durable since the last call, oldest first.
    pub fn take_done(&mut self) -> Option<Done> {
        self.done.pop_front()
    }

    /// Writes out everything made so far and waits for it, as lb exits.
    pub fn flush(&mut self) {
        self.end_turn();
        while self.syncing {
            match self.syncer.as_ref().and_then(Worker::recv) {
                Some(done) => self.synced(done),
                None => break,
            }
            self.hand_to_thread();
        }
        self.done.clear();
    }

    /// Bytes in the segments not yet deleted.
    pub fn bytes_on_disk(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// One job whose latest record is in `segment` is no longer live there.
    fn forget_one(&mut self, segment: u64) {
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == segment) {
            s.live = s.live.saturating_sub(1);
        }
        self.collect_finished();
    }

    /// Deletes finished segments from the oldest on (never the current one), so that an
    /// outcome record never outlives the job record it finishes. The segments read at
    /// start go when no writer needs them any more; this writer's newer ones wait for that.
    fn collect_finished(&mut self) {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            if self.segments.front().is_some_and(|s| s.number == INHERITED) {
                if !std::mem::replace(&mut self.let_go, true) {
                    self.inherited.let_go();
                }
                if !self.inherited.gone() {
                    return;
                }
                self.segments.pop_front();
            } else if let Some(s) = self.segments.pop_front() {
                self.delete.push(s.number);
            }
        }
    }

    fn rotate_if_full(&mut self) {
        if self.pending.is_empty() && self.current().bytes >= SEGMENT_BYTES {
            let number = self.current().number + 1;
            self.segments.push_back(Segment {
                number,
                bytes: 0,
                live: 0,
            });
            self.collect_finished();
        }
    }

    fn current(&mut self) -> &mut Segment {
        if self.segments.is_empty() {
            self.segments.push_back(Segment {
                number: 1,
                bytes: 0,
                live: 0,
            });
        }
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }
}

#[cfg(test)]
mod tests;
