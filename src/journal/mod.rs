//! The journal: POST copies still owed, kept on disk so that a crash of lb loses no write
//! a client was told had succeeded. It takes and returns plain values and knows nothing
//! of sockets or the event loop.
//!
//! An append-only log of checksummed records (`record.rs`) in numbered segment files,
//! `{writer}-{number}.journal`, so that several writers can share one directory; one
//! `flock` per directory keeps a second process out (`files.rs`). A job record carries the
//! request and the backends still owed it; an outcome record finishes one backend's copy.
//! The records made during one loop turn are written together at its end, before any copy
//! of those jobs goes out, so a crash of lb never forgets a copy that went out. With
//! `--journal-sync batch` a thread beside the loop then makes one `fdatasync` for them and
//! wakes the loop, which only then lets the answers to those POSTs go (group commit): the
//! disk works while the copies travel. A segment is deleted once every job in it has finished;
//! jobs that pin an old segment are written again into the current one (carried forward),
//! so the directory stays small however long a backend stays down. At start every segment
//! is read back (`replay.rs`), what is still owed is written into a fresh segment, and the
//! old ones are deleted.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::error;

use crate::config::JournalSync;
use crate::metrics::{Histogram, latency_bounds};

mod doorbell;
mod files;
mod open;
mod record;
mod replay;

pub use doorbell::Doorbell;
pub use open::{Opened, Writer};

use files::{DirLock, Segments, Sync, SyncDone, SyncJob, Synced, Worker};
pub use record::{JobRecord, Outcome};
pub use replay::Replayed;

/// A segment this large gets no more records; the next go to a new one.
const SEGMENT_BYTES: u64 = 8 << 20;
/// More segments than this, and the jobs that keep the oldest alive are carried forward.
const MAX_SEGMENTS: usize = 4;
/// After a failed write, new jobs are refused this long before the disk is tried again.
const BACKOFF: Duration = Duration::from_secs(1);

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
    /// Segments whose jobs were carried forward in `pending`, then in written batches
    /// not yet durable: each may lose one live job once that is durable.
    carried: Vec<u64>,
    carried_unsynced: Vec<(u64, u64)>,
    delete: Vec<u64>,
    /// Until when new jobs are refused after a failed write, and why.
    refused: Option<(Instant, String)>,
    next_id: u64,
    /// How far apart this writer's ids are: one per writer, so that none repeats another's.
    id_step: u64,
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

    pub fn next_id(&mut self) -> u64 {
        self.next_id += self.id_step;
        self.next_id - self.id_step
    }

    /// Why new jobs should be refused now: the disk failed a moment ago.
    pub fn refusing(&self, now: Instant) -> Option<String> {
        let (until, why) = self.refused.as_ref()?;
        (now < *until).then(|| why.clone())
    }

    /// Adds a new job; its copies may go out once batch `ticket.batch` is written.
    pub fn append(&mut self, job: &JobRecord) -> Ticket {
        self.add_job(job)
    }

    /// The segment being written now.
    pub fn current_segment(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.number)
    }

    /// Writes a live job from segment `from` again into the current one, so that `from`
    /// can go once that is durable.
    pub fn carry(&mut self, job: &JobRecord, from: u64) -> Ticket {
        self.carried.push(from);
        self.add_job(job)
    }

    fn add_job(&mut self, job: &JobRecord) -> Ticket {
        self.rotate_if_full();
        record::encode_job(&mut self.pending, job);
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
    pub fn record(&mut self, id: u64, backend: &str, outcome: Outcome) {
        self.rotate_if_full();
        record::encode_outcome(&mut self.pending, id, backend, outcome);
        self.ends.push(self.pending.len());
        self.stats.records += 1;
    }

    /// Every copy of a job whose latest record is in `segment` is finished.
    pub fn finished(&mut self, segment: u64) {
        self.forget_one(segment);
    }

    /// A segment whose live jobs should be carried forward now, if one is due.
    pub fn carry_due(&self) -> Option<u64> {
        let oldest = self.segments.front()?;
        let busy = !self.carried.is_empty() || !self.carried_unsynced.is_empty();
        (self.segments.len() > MAX_SEGMENTS && oldest.live > 0 && !busy).then_some(oldest.number)
    }

    /// The end of a loop turn: the turn's records are written (with `always`, each synced);
    /// with `batch` the thread is asked to sync them. Results come through `take_done`.
    pub fn end_turn(&mut self) {
        if !self.pending.is_empty() {
            let sync = match self.mode {
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

    /// Writes `pending` into the current segment.
    fn write_pending(&mut self, sync: Sync) -> Result<(), String> {
        let batch = self.batch;
        self.batch += 1;
        let len = self.pending.len() as u64;
        let current = self.current();
        current.bytes += len;
        let segment = current.number;
        let written = self.files.append(segment, &self.pending, &self.ends, sync);
        self.pending.clear();
        self.ends.clear();
        let carried = std::mem::take(&mut self.carried);
        let synced = match written {
            Ok(synced) => synced,
            Err(e) => {
                self.fail(&e);
                return Err(e);
            }
        };
        self.stats.bytes += len;
        self.count_syncs(synced);
        if sync == Sync::Never && self.mode == JournalSync::Batch {
            self.unsynced = Some(batch);
            if let Some((n, file)) = self.files.current_file()
                && !self.unsynced_files.iter().any(|(m, _)| *m == n)
            {
                self.unsynced_files.push((n, file));
            }
            self.carried_unsynced
                .extend(carried.into_iter().map(|from| (batch, from)));
        } else {
            for from in carried {
                self.forget_one(from);
            }
        }
        Ok(())
    }

    /// With `batch`: gives the thread what was written since its last job, and the
    /// segments to delete, unless it is busy. Otherwise deletes finished segments here.
    fn hand_to_thread(&mut self) {
        let Some(worker) = &self.syncer else {
            let delete = std::mem::take(&mut self.delete);
            self.files.delete(&delete);
            return;
        };
        if self.syncing || (self.unsynced.is_none() && self.delete.is_empty()) {
            return;
        }
        let job = SyncJob {
            upto: self.unsynced.take(),
            files: self.unsynced_files.drain(..).map(|(_, f)| f).collect(),
            dir: self.files.take_unsynced_dir(),
            delete: self.delete.drain(..).map(|n| self.files.path(n)).collect(),
        };
        let upto = job.upto;
        match worker.send(job) {
            Ok(()) => self.syncing = true,
            Err(e) => self.synced(SyncDone {
                upto,
                result: Err(e),
                synced: Synced::default(),
            }),
        }
    }

    /// The thread finished a job: the batches up to its `upto` are durable, or failed to be.
    fn synced(&mut self, done: SyncDone) {
        self.syncing = false;
        self.count_syncs(done.synced);
        let Some(upto) = done.upto else {
            return;
        };
        let carried: Vec<u64> = self
            .carried_unsynced
            .iter()
            .filter(|(batch, _)| *batch <= upto)
            .map(|&(_, from)| from)
            .collect();
        self.carried_unsynced.retain(|(batch, _)| *batch > upto);
        match &done.result {
            Ok(()) => {
                for from in carried {
                    self.forget_one(from);
                }
            }
            Err(e) => self.fail(e),
        }
        self.done.push_back(Done {
            batch: upto,
            result: done.result,
            durable: true,
        });
    }

    fn count_syncs(&mut self, synced: Synced) {
        if synced.calls > 0 {
            self.stats.syncs += synced.calls;
            let each = synced.time / u32::try_from(synced.calls).unwrap_or(u32::MAX);
            for _ in 0..synced.calls {
                self.stats.sync_latency.observe(each);
            }
        }
    }

    fn fail(&mut self, why: &str) {
        self.stats.failures += 1;
        error!(
            "journal: {why}; new POSTs are refused with 503 for {BACKOFF:?}, then the disk \
             is tried again (GETs go on; writes already acknowledged stay owed)"
        );
        self.refused = Some((Instant::now() + BACKOFF, why.to_string()));
        // The next records go to a new segment.
        let number = self.current().number + 1;
        self.segments.push_back(Segment {
            number,
            bytes: 0,
            live: 0,
        });
    }

    /// One job whose latest record is in `segment` is no longer live there.
    fn forget_one(&mut self, segment: u64) {
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == segment) {
            s.live = s.live.saturating_sub(1);
        }
        self.collect_finished();
    }

    /// Deletes finished segments from the oldest on (never the current one), so that an
    /// outcome record never outlives the job record it finishes.
    fn collect_finished(&mut self) {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            if let Some(s) = self.segments.pop_front() {
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
