//! Opening a journal directory: its lock and key, reading back what is still owed, and
//! sharing that out among the writers. The segments read are kept until every writer has
//! carried its share forward into a fresh segment (or finished it): then they are deleted.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use log::info;

use super::files::{self, Segments};
use super::key::{KEY_FILE, KeyFile};
use super::replay::{self, Found};
use super::{INHERITED, Journal, Replayed, Segment, Stats};
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

/// The segments read at start, shared by the writers that resume jobs from them: deleted
/// by the last one to let go.
pub struct Inherited {
    paths: Vec<PathBuf>,
    holders: AtomicUsize,
    gone: AtomicBool,
}

impl Inherited {
    fn new(paths: Vec<PathBuf>, holders: usize) -> Inherited {
        let inherited = Inherited {
            paths,
            holders: AtomicUsize::new(holders),
            gone: AtomicBool::new(false),
        };
        if holders == 0 {
            inherited.delete();
        }
        inherited
    }

    /// One writer has carried forward (or finished) every job it resumed.
    pub fn let_go(&self) {
        if self.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.delete();
        }
    }

    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    fn delete(&self) {
        for path in &self.paths {
            files::remove(path);
        }
        self.gone.store(true, Ordering::Release);
    }
}

impl Journal {
    /// Locks `dir`, reads back what is still owed, and shares it out among `writers`
    /// writers (`w0`, `w1`, ...: one per worker), which each resume their share; or says
    /// that another lb holds it.
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
        let (key_file, had_key) = KeyFile::open(dir)?;
        let mut found = replay::read_dir(dir, key_file.key())?;
        check_key(dir, &found, had_key)?;
        replay::report_unreadable(&mut found);
        let key_file = Arc::new(key_file);
        let writers = writers.max(1);
        let mut shares: Vec<Vec<Replayed>> = (0..writers).map(|_| Vec::new()).collect();
        // Round robin: the retries of a long outage are spread over every worker.
        for (i, job) in found.jobs.iter().enumerate() {
            shares[i % writers].push(job.clone());
        }
        let holders = shares.iter().filter(|s| !s.is_empty()).count();
        let inherited = Arc::new(Inherited::new(found.segments.clone(), holders));
        let mut opened = Vec::with_capacity(writers);
        for (k, owed) in shares.into_iter().enumerate() {
            let mut segments = VecDeque::from([Segment {
                number: found.max_segment + 1,
                bytes: 0,
                live: 0,
            }]);
            if !owed.is_empty() {
                segments.push_front(Segment {
                    number: INHERITED,
                    bytes: 0,
                    live: owed.len(),
                });
            }
            let journal = Journal {
                mode,
                key: key_file.key(),
                key_file: Arc::clone(&key_file),
                key_saved: had_key,
                files: Segments::new(dir, &format!("w{k}")),
                syncer: None,
                _lock: Arc::clone(&lock),
                segments,
                pending: Vec::new(),
                ends: Vec::new(),
                batch: 0,
                unsynced: None,
                unsynced_files: Vec::new(),
                syncing: false,
                carried: Vec::new(),
                carried_unsynced: Vec::new(),
                uncarried: Vec::new(),
                delete: Vec::new(),
                inherited: Arc::clone(&inherited),
                let_go: owed.is_empty(),
                refused: None,
                failing: 0,
                done: VecDeque::new(),
                stats: Stats {
                    corrupt: if k == 0 { found.corrupt } else { 0 },
                    torn: if k == 0 { found.torn } else { 0 },
                    replayed: owed.len() as u64,
                    ..Stats::default()
                },
            };
            opened.push(Writer {
                journal: Box::new(journal),
                owed,
            });
        }
        if found.legacy > 0 {
            info!(
                "journal {}: {} segments in the format before records were authenticated \
                 read once; what they owe is written anew with the key {} made for the \
                 directory, and they are deleted",
                dir.display(),
                found.legacy,
                dir.join(KEY_FILE).display()
            );
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

/// Segments that no key could have made, or that the key at hand did not make, are not
/// read as nothing: lb refuses to start and says what to restore.
fn check_key(dir: &Path, found: &Found, had_key: bool) -> Result<(), String> {
    let key = dir.join(KEY_FILE);
    if !had_key && found.current > 0 {
        return Err(format!(
            "{} holds journal segments but not their key {}: restore the key file that was \
             kept with them, or move the segments away to start afresh (nothing was read or \
             deleted)",
            dir.display(),
            key.display()
        ));
    }
    if found.headed > 0 && found.authentic == 0 {
        return Err(format!(
            "no segment in {} authenticates with {}: it is not the key they were written \
             with; restore the directory's own key file (nothing was deleted)",
            dir.display(),
            key.display()
        ));
    }
    Ok(())
}
