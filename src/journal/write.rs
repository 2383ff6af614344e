//! Writing the journal: a turn's records go to the current segment in one write; with
//! `batch` the syncing thread is handed what was written; a failed write or sync refuses
//! new jobs for a while, and what it carried forward is reported as still where it was.

use std::time::Instant;

use log::{debug, error, info};

use super::files::{Failed, Sync, SyncDone, SyncJob, Synced};
use super::{BACKOFF, Done, Journal, Segment, Uncarried};
use crate::config::JournalSync;

impl Journal {
    /// Writes `pending` into the current segment.
    pub(super) fn write_pending(&mut self, sync: Sync) -> Result<(), String> {
        let batch = self.batch;
        self.batch += 1;
        let len = self.pending.len() as u64;
        let segment = self.current().number;
        let written = self
            .save_key()
            .and_then(|()| self.files.append(segment, &self.pending, &self.ends, sync));
        self.pending.clear();
        self.ends.clear();
        let carried = std::mem::take(&mut self.carried);
        let synced = match written {
            Ok(synced) => synced,
            Err(Failed { why, empty }) => {
                let lost = carried.into_iter().map(|(id, from)| Uncarried {
                    id,
                    from,
                    to: segment,
                });
                self.uncarried.extend(lost);
                self.fail(&why, empty);
                return Err(why);
            }
        };
        self.current().bytes += len;
        self.stats.bytes += len;
        self.count_syncs(synced);
        if self.failing > 0 {
            info!(
                "journal: written again after {} failed tries; new POSTs are taken again",
                self.failing
            );
            self.failing = 0;
        }
        if sync == Sync::Never && self.mode == JournalSync::Batch {
            self.unsynced = Some(batch);
            if let Some((n, file)) = self.files.current_file()
                && !self.unsynced_files.iter().any(|(m, _)| *m == n)
            {
                self.unsynced_files.push((n, file));
            }
            self.carried_unsynced.extend(
                carried
                    .into_iter()
                    .map(|(id, from)| (batch, id, from, segment)),
            );
        } else {
            for (_, from) in carried {
                self.forget_one(from);
            }
        }
        Ok(())
    }

    /// A new directory's key goes to disk before the first record made with it.
    fn save_key(&mut self) -> Result<(), Failed> {
        if !self.key_saved {
            self.key_file
                .save()
                .map_err(|why| Failed { why, empty: true })?;
            self.key_saved = true;
        }
        Ok(())
    }

    /// With `batch`: gives the thread what was written since its last job, and the
    /// segments to delete, unless it is busy. Otherwise deletes finished segments here.
    pub(super) fn hand_to_thread(&mut self) {
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
    pub(super) fn synced(&mut self, done: SyncDone) {
        self.syncing = false;
        self.count_syncs(done.synced);
        let Some(upto) = done.upto else {
            return;
        };
        let (carried, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.carried_unsynced)
            .into_iter()
            .partition(|&(batch, ..)| batch <= upto);
        self.carried_unsynced = later;
        let mut uncarried = Vec::new();
        match &done.result {
            Ok(()) => {
                for (_, _, from, _) in carried {
                    self.forget_one(from);
                }
            }
            Err(e) => {
                uncarried = carried
                    .into_iter()
                    .map(|(_, id, from, to)| Uncarried { id, from, to })
                    .collect();
                self.fail(e, false);
            }
        }
        self.done.push_back(Done {
            batch: upto,
            result: done.result,
            durable: true,
            uncarried,
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

    /// A write or sync failed. `empty`: the segment was left with nothing on disk.
    fn fail(&mut self, why: &str, empty: bool) {
        self.stats.failures += 1;
        self.failing += 1;
        if self.failing == 1 {
            error!(
                "journal: {why}; new POSTs are refused with 503 for {BACKOFF:?}, then the disk \
                 is tried again (GETs go on; writes already acknowledged stay owed)"
            );
        } else {
            debug!("journal: {why} (failed {} times in a row)", self.failing);
        }
        self.refused = Some((Instant::now() + BACKOFF, why.to_string()));
        // Records may be partly on disk: the next go to a new segment. One left empty is
        // written again, so a disk that stays full leaves no empty files behind.
        if !empty {
            let number = self.current().number + 1;
            self.segments.push_back(Segment {
                number,
                bytes: 0,
                live: 0,
            });
        }
    }
}
