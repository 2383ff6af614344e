//! Opening a journal directory: its lock, reading back what is still owed, and writing
//! that into a fresh segment before the old ones go.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use log::info;

use super::files::{self, Segments, Sync};
use super::{JobRecord, Journal, Replayed, Segment, Stats, replay};
use crate::config::JournalSync;

/// What opening a journal directory came to.
pub enum Opened {
    /// Locked and read back: one writer per worker, each with its share of the jobs
    /// still owed.
    Ready(Vec<Writer>),
    /// Another lb holds the directory (why, naming its pid).
    Held(String),
}

/// One worker's journal: its own segments under the directory's one lock, and the jobs
/// it resumes.
pub struct Writer {
    pub journal: Box<Journal>,
    pub owed: Vec<Replayed>,
}

impl Journal {
    /// Locks `dir`, reads back what is still owed, shares it out among `writers` writers
    /// (`w0`, `w1`, ...: one per worker), which each write their share into a fresh segment,
    /// deletes the old segments, and returns the writers; or says that another lb holds it.
    pub fn open(dir: &Path, mode: JournalSync, writers: usize) -> Result<Opened, String> {
        // A file-size limit (`ulimit -f`) must fail a write with EFBIG, handled like a full
        // disk, instead of killing lb with SIGXFSZ.
        // SAFETY: setting a signal's disposition to ignore runs no code of ours.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        let lock = match files::lock(dir) {
            Ok(lock) => Arc::new(lock),
            Err(Ok(held)) => return Ok(Opened::Held(held)),
            Err(Err(why)) => return Err(why),
        };
        let found = replay::read_dir(dir)?;
        let writers = writers.max(1);
        let mut shares: Vec<Vec<Replayed>> = (0..writers).map(|_| Vec::new()).collect();
        // Round robin: the retries of a long outage are spread over every worker.
        for (i, job) in found.jobs.iter().enumerate() {
            shares[i % writers].push(job.clone());
        }
        let mut opened = Vec::with_capacity(writers);
        for (k, owed) in shares.into_iter().enumerate() {
            let step = writers as u64;
            let mut journal = Journal {
                mode,
                files: Segments::new(dir, &format!("w{k}")),
                syncer: None,
                _lock: Arc::clone(&lock),
                segments: VecDeque::from([Segment {
                    number: found.max_segment + 1,
                    bytes: 0,
                    live: 0,
                }]),
                pending: Vec::new(),
                ends: Vec::new(),
                batch: 0,
                unsynced: None,
                unsynced_files: Vec::new(),
                syncing: false,
                carried: Vec::new(),
                carried_unsynced: Vec::new(),
                delete: Vec::new(),
                refused: None,
                // Writers take turns through the ids, so that no two ever use the same.
                next_id: found.max_id + 1 + k as u64,
                id_step: step,
                done: VecDeque::new(),
                stats: Stats {
                    corrupt: if k == 0 { found.corrupt } else { 0 },
                    torn: if k == 0 { found.torn } else { 0 },
                    replayed: owed.len() as u64,
                    ..Stats::default()
                },
            };
            for job in &owed {
                let backends: Vec<&str> = job.owed.iter().map(String::as_str).collect();
                journal.add_job(&JobRecord {
                    id: job.id,
                    request_id: &job.request_id,
                    request: &job.request,
                    backends: &backends,
                });
            }
            // Written and synced before the old segments go, whatever --journal-sync says.
            journal.write_pending(Sync::Once)?;
            opened.push(Writer {
                journal: Box::new(journal),
                owed,
            });
        }
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
        Ok(Opened::Ready(opened))
    }
}
