//! Opening a journal directory: its lock, reading back what is still owed, and writing
//! that into a fresh segment before the old ones go.

use std::collections::VecDeque;
use std::path::Path;

use log::info;

use super::files::{self, Segments, Sync};
use super::{JobRecord, Journal, Replayed, Segment, Stats, WRITER, replay};
use crate::config::JournalSync;

/// What opening a journal directory came to.
pub enum Opened {
    /// Locked and read back: the journal, and the jobs it still owes.
    Ready(Box<Journal>, Vec<Replayed>),
    /// Another lb holds the directory (why, naming its pid).
    Held(String),
}

impl Journal {
    /// Locks `dir`, reads back what is still owed, writes it into a fresh segment, deletes
    /// the old ones, and returns the jobs to resume; or says that another lb holds it.
    pub fn open(dir: &Path, mode: JournalSync) -> Result<Opened, String> {
        // A file-size limit (`ulimit -f`) must fail a write with EFBIG, handled like a full
        // disk, instead of killing lb with SIGXFSZ.
        // SAFETY: setting a signal's disposition to ignore runs no code of ours.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        let lock = match files::lock(dir) {
            Ok(lock) => lock,
            Err(Ok(held)) => return Ok(Opened::Held(held)),
            Err(Err(why)) => return Err(why),
        };
        let found = replay::read_dir(dir)?;
        let mut journal = Journal {
            mode,
            files: Segments::new(dir, WRITER),
            syncer: None,
            _lock: lock,
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
            next_id: found.max_id + 1,
            done: VecDeque::new(),
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
        journal.write_pending(Sync::Once)?;
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
        Ok(Opened::Ready(Box::new(journal), found.jobs))
    }
}
