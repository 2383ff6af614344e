//! The journal: POST copies still owed, kept on disk so that a crash of lb loses no write
//! a client was told had succeeded. It takes and returns plain values and knows nothing
//! of sockets or the event loop.
//!
//! An append-only log of checksummed records (`record.rs`) in numbered segment files,
//! `{writer}-{number}.journal`, so that several writers can share one directory; one
//! `flock` per directory keeps a second process out (`files.rs`). A job record carries the
//! request and the backends still owed it; an outcome record finishes one backend's copy.
//! Records made during one loop turn go to disk together: with `--journal-sync batch` a
//! thread beside the loop writes them and makes one `fdatasync`, then wakes the loop, which
//! only then sends the copies of the jobs in that batch (write-ahead: nothing goes out
//! that a crash could forget). A segment is deleted once every job in it has finished;
//! jobs that pin an old segment are written again into the current one (carried forward),
//! so the directory stays small however long a backend stays down. At start every segment
//! is read back (`replay.rs`), what is still owed is written into a fresh segment, and the
//! old ones are deleted.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use log::{error, info};

use crate::config::JournalSync;
use crate::metrics::Histogram;

mod files;
mod record;
mod replay;

use files::{DirLock, Segments, Sync, Worker, Write, Written};
pub use record::{JobRecord, Outcome};
pub use replay::Replayed;

/// A segment this large gets no more batches; the next goes to a new one.
const SEGMENT_BYTES: u64 = 8 << 20;
/// More segments than this, and the jobs that keep the oldest alive are carried forward.
const MAX_SEGMENTS: usize = 4;
/// After a failed write, new jobs are refused this long before the disk is tried again.
const BACKOFF: Duration = Duration::from_secs(1);
/// This process's writer name; each worker of a multi-threaded lb would have its own.
const WRITER: &str = "w0";

/// Where a job's record went: the batch that makes it durable, and its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub batch: u64,
    pub segment: u64,
}

/// A batch reached the disk, or failed to.
#[derive(Debug)]
pub struct Done {
    pub batch: u64,
    pub result: Result<(), String>,
}

/// Counters for /metrics and /stats.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub bytes: u64,
    pub records: u64,
    pub syncs: u64,
    /// Each write's time in fdatasync.
    pub sync_latency: Histogram,
    /// Failed writes (disk full, I/O error).
    pub failures: u64,
    /// Found at start: damaged records skipped, torn tails dropped, jobs resumed.
    pub corrupt: u64,
    pub torn: u64,
    pub replayed: u64,
}

struct Segment {
    number: u64,
    bytes: u64,
    /// Jobs whose latest record is here and that have not finished.
    live: usize,
}

enum Io {
    /// `off` and `always`: written on the loop thread at the end of each turn.
    Inline(Segments),
    /// `batch`: written and synced by the journal thread.
    Thread(Worker),
    /// Between `open` and `start`.
    Starting(Option<Segments>),
}

pub struct Journal {
    mode: JournalSync,
    io: Io,
    _lock: DirLock,
    /// Segments not yet deleted, oldest first; the last is the one being written.
    segments: VecDeque<Segment>,
    pending: Vec<u8>,
    ends: Vec<usize>,
    /// The batch `pending` will be, and the one the thread is writing.
    batch: u64,
    in_flight: Option<u64>,
    /// Segments whose jobs were carried forward in `pending` / in the batch in flight.
    carried: Vec<u64>,
    carried_in_flight: Vec<u64>,
    delete: Vec<u64>,
    /// Until when new jobs are refused after a failed write, and why.
    refused: Option<(Instant, String)>,
    next_id: u64,
    pub stats: Stats,
}

impl Journal {
    /// Locks `dir`, reads back what is still owed, writes it into a fresh segment, deletes
    /// the old ones, and returns the jobs to resume.
    pub fn open(dir: &Path, mode: JournalSync) -> Result<(Journal, Vec<Replayed>), String> {
        // A file-size limit (`ulimit -f`) must fail a write with EFBIG, handled like a full
        // disk, instead of killing lb with SIGXFSZ.
        // SAFETY: setting a signal's disposition to ignore runs no code of ours.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        let lock = files::lock(dir)?;
        let found = replay::read_dir(dir)?;
        let mut segments = Segments::new(dir, WRITER);
        let number = found.max_segment + 1;
        let mut journal = Journal {
            mode,
            io: Io::Starting(None),
            _lock: lock,
            segments: VecDeque::from([Segment {
                number,
                bytes: 0,
                live: 0,
            }]),
            pending: Vec::new(),
            ends: Vec::new(),
            batch: 0,
            in_flight: None,
            carried: Vec::new(),
            carried_in_flight: Vec::new(),
            delete: Vec::new(),
            refused: None,
            next_id: found.max_id + 1,
            stats: Stats {
                corrupt: found.corrupt,
                torn: found.torn,
                replayed: found.jobs.len() as u64,
                ..Stats::default()
            },
        };
        for job in &found.jobs {
            let backends: Vec<&str> = job.owed.iter().map(String::as_str).collect();
            journal.add_job(&JobRecord {
                id: job.id,
                request_id: &job.request_id,
                request: &job.request,
                backends: &backends,
            });
        }
        // Written and synced before the old segments go, whatever --journal-sync says.
        let write = journal.take_write(Sync::Once);
        let done = segments.write(write);
        journal.settle(done)?;
        for path in &found.segments {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
        }
        if found.records > 0 {
            info!(
                "journal {}: {} records read, {} writes still owed are resumed",
                dir.display(),
                found.records,
                found.jobs.len()
            );
        }
        journal.io = Io::Starting(Some(segments));
        Ok((journal, found.jobs))
    }

    /// Starts writing: with `batch`, on a thread that calls `wake` after each write.
    pub fn start(&mut self, wake: Box<dyn Fn() + Send>) -> Result<(), String> {
        let Io::Starting(segments) = &mut self.io else {
            return Ok(());
        };
        let segments = segments.take().ok_or("journal started twice")?;
        self.io = match self.mode {
            JournalSync::Batch => Io::Thread(Worker::spawn(segments, wake)?),
            JournalSync::Off | JournalSync::Always => Io::Inline(segments),
        };
        Ok(())
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Why new jobs should be refused now: the disk failed a moment ago.
    pub fn refusing(&self, now: Instant) -> Option<String> {
        let (until, why) = self.refused.as_ref()?;
        (now < *until).then(|| why.clone())
    }

    /// Adds a new job; its copies may go out once batch `ticket.batch` is done.
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
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == segment) {
            s.live = s.live.saturating_sub(1);
        }
        self.collect_finished();
    }

    /// A segment whose live jobs should be carried forward now, if one is due.
    pub fn carry_due(&self) -> Option<u64> {
        let oldest = self.segments.front()?;
        let busy = !self.carried.is_empty() || !self.carried_in_flight.is_empty();
        (self.segments.len() > MAX_SEGMENTS && oldest.live > 0 && !busy).then_some(oldest.number)
    }

    /// The end of a loop turn: the turn's records go to disk. Returns what finished at once
    /// (`off`, `always`); with `batch` the result comes later through `completed`.
    pub fn end_turn(&mut self) -> Option<Done> {
        if self.pending.is_empty() && self.delete.is_empty() {
            return None;
        }
        let sync = match self.mode {
            JournalSync::Off => Sync::Never,
            JournalSync::Batch => Sync::Once,
            JournalSync::Always => Sync::EachRecord,
        };
        match self.io {
            Io::Thread(_) if self.in_flight.is_some() => None,
            Io::Thread(_) => {
                let write = self.take_write_for_io(sync);
                let batch = write.batch;
                let sent = match &self.io {
                    Io::Thread(worker) => worker.send(write),
                    _ => Err("the journal thread is gone".into()),
                };
                match sent {
                    Ok(()) => {
                        self.in_flight = Some(batch);
                        None
                    }
                    Err(e) => {
                        self.fail(&e);
                        Some(Done {
                            batch,
                            result: Err(e),
                        })
                    }
                }
            }
            Io::Inline(_) => {
                let write = self.take_write_for_io(sync);
                let Io::Inline(segments) = &mut self.io else {
                    return None;
                };
                let done = segments.write(write);
                Some(self.finish_write(done))
            }
            Io::Starting(_) => None,
        }
    }

    /// The thread's answer, once it has woken the loop.
    pub fn completed(&mut self) -> Option<Done> {
        let Io::Thread(worker) = &self.io else {
            return None;
        };
        let written = worker.try_recv()?;
        self.in_flight = None;
        Some(self.finish_write(written))
    }

    /// Writes out everything made so far and waits for it, as lb exits.
    pub fn flush(&mut self) {
        loop {
            if let Io::Thread(worker) = &self.io
                && self.in_flight.is_some()
            {
                let Some(written) = worker.recv() else {
                    return;
                };
                self.in_flight = None;
                let _ = self.finish_write(written);
            }
            if self.pending.is_empty() || matches!(self.io, Io::Starting(_)) {
                return;
            }
            self.end_turn();
        }
    }

    /// Bytes in the segments not yet deleted.
    pub fn bytes_on_disk(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    fn take_write_for_io(&mut self, sync: Sync) -> Write {
        self.carried_in_flight = std::mem::take(&mut self.carried);
        self.take_write(sync)
    }

    fn take_write(&mut self, sync: Sync) -> Write {
        let batch = self.batch;
        self.batch += 1;
        let len = self.pending.len() as u64;
        let current = self.current();
        current.bytes += len;
        let segment = current.number;
        Write {
            batch,
            segment,
            bytes: std::mem::take(&mut self.pending),
            ends: std::mem::take(&mut self.ends),
            sync,
            delete: std::mem::take(&mut self.delete),
        }
    }

    fn finish_write(&mut self, done: Written) -> Done {
        let batch = done.batch;
        Done {
            batch,
            result: self.settle(done),
        }
    }

    /// Counts a finished write; on success the segments it carried jobs out of may go.
    fn settle(&mut self, mut done: Written) -> Result<(), String> {
        let written = done.bytes.len() as u64;
        self.stats.syncs += done.syncs;
        if done.syncs > 0 {
            self.stats
                .sync_latency
                .observe(done.sync_time / done.syncs as u32);
        }
        let carried = std::mem::take(&mut self.carried_in_flight);
        done.bytes.clear();
        if self.pending.capacity() == 0 {
            self.pending = std::mem::take(&mut done.bytes);
        }
        if let Err(e) = done.result {
            self.fail(&e);
            return Err(e);
        }
        self.stats.bytes += written;
        for from in carried {
            if let Some(s) = self.segments.iter_mut().find(|s| s.number == from) {
                s.live = s.live.saturating_sub(1);
            }
        }
        self.collect_finished();
        Ok(())
    }

    fn fail(&mut self, why: &str) {
        self.stats.failures += 1;
        error!(
            "journal: {why}; new POSTs are refused with 503 for {BACKOFF:?}, then the disk \
             is tried again (GETs go on; writes already acknowledged stay owed)"
        );
        self.refused = Some((Instant::now() + BACKOFF, why.to_string()));
        // The segment was cut back to its last whole record; the next batch starts a new one.
        let number = self.current().number + 1;
        self.segments.push_back(Segment {
            number,
            bytes: 0,
            live: 0,
        });
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
