//! The journal's files: the directory lock, segment files, and the thread that syncs
//! them beside the event loop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use super::replay::segment_name;

/// The directory's lock, held for the life of the process: one lb per journal. It is a
/// `flock` on `DIR/lock`, which the kernel drops when the process ends however it ends,
/// so a crash never leaves a stale lock behind; the file names the holder's pid.
pub struct DirLock {
    _file: File,
}

/// The lock, or (`Err(Ok(why))`) word that another lb holds it; `Err(Err(why))` when the
/// directory cannot be used at all.
pub fn lock(dir: &Path) -> Result<DirLock, Result<String, String>> {
    try_lock(dir).map_err(|(held, why)| if held { Ok(why) } else { Err(why) })
}

fn try_lock(dir: &Path) -> Result<DirLock, (bool, String)> {
    let failed = |why: String| (false, why);
    std::fs::create_dir_all(dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(failed(format!("cannot lock {}: {err}", path.display())));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err((
            true,
            format!(
                "{} is in use by another lb (pid {}); each lb needs a journal directory of its own",
                dir.display(),
                holder.trim()
            ),
        ));
    }
    // Only for the message above: a full disk must not keep lb from starting.
    let pid = std::process::id().to_string();
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()));
    Ok(DirLock { _file: file })
}

/// A write that failed, and whether its segment is left with nothing on disk (then it
/// can be written again under the same name).
pub struct Failed {
    pub why: String,
    pub empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Never,
    /// One fdatasync after the whole write.
    Once,
    /// One fdatasync after each record.
    EachRecord,
}

/// Time spent in fdatasync, and how many calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct Synced {
    pub time: Duration,
    pub calls: u64,
}

impl Synced {
    fn sync(&mut self, file: &File) -> std::io::Result<()> {
        let started = Instant::now();
        file.sync_data()?;
        self.time += started.elapsed();
        self.calls += 1;
        Ok(())
    }
}

/// The segment being written and the directory it lives in.
pub struct Segments {
    dir: PathBuf,
    writer: String,
    /// Segment number, file, and the length known to be whole on disk.
    current: Option<(u64, Arc<File>, u64)>,
    /// A segment was created since the directory was last synced.
    dir_unsynced: bool,
}

impl Segments {
    pub fn new(dir: &Path, writer: &str) -> Self {
        Segments {
            dir: dir.to_path_buf(),
            writer: writer.to_string(),
            current: None,
            dir_unsynced: false,
        }
    }

    pub fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(segment_name(&self.writer, segment))
    }

    /// Appends `bytes` (records ending at `ends`) to segment `segment`, creating it if it
    /// is new, and syncs as `sync` says. A failed write is cut back to the last whole
    /// record; a segment left with none is removed.
    pub fn append(
        &mut self,
        segment: u64,
        bytes: &[u8],
        ends: &[usize],
        sync: Sync,
    ) -> Result<Synced, Failed> {
        self.try_append(segment, bytes, ends, sync).map_err(|why| {
            self.cut_back();
            Failed {
                why,
                empty: !self.path(segment).exists(),
            }
        })
    }

    fn try_append(
        &mut self,
        segment: u64,
        bytes: &[u8],
        ends: &[usize],
        sync: Sync,
    ) -> Result<Synced, String> {
        let mut synced = Synced::default();
        if bytes.is_empty() {
            return Ok(synced);
        }
        if self.current.as_ref().is_none_or(|c| c.0 != segment) {
            self.open(segment)?;
        }
        if sync != Sync::Never && self.dir_unsynced {
            self.sync_dir()?;
        }
        let path = self.path(segment);
        let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
        let Some((_, file, whole)) = self.current.as_mut() else {
            return Err("no open segment".into());
        };
        let mut out: &File = file;
        if sync == Sync::EachRecord {
            let mut start = 0;
            for &end in ends {
                out.write_all(&bytes[start..end])
                    .map_err(|e| fail("write", e))?;
                synced.sync(file).map_err(|e| fail("sync", e))?;
                start = end;
            }
        } else {
            out.write_all(bytes).map_err(|e| fail("write", e))?;
            if sync == Sync::Once {
                synced.sync(file).map_err(|e| fail("sync", e))?;
            }
        }
        *whole += bytes.len() as u64;
        Ok(synced)
    }

    fn open(&mut self, n: u64) -> Result<(), String> {
        let path = self.path(n);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        self.current = Some((n, Arc::new(file), 0));
        self.dir_unsynced = true;
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), String> {
        sync_dir(&self.dir)?;
        self.dir_unsynced = false;
        Ok(())
    }

    /// The open segment, for the syncing thread.
    pub fn current_file(&self) -> Option<(u64, Arc<File>)> {
        self.current.as_ref().map(|(n, f, _)| (*n, Arc::clone(f)))
    }

    /// The directory, when a segment was created since it was last synced.
    pub fn take_unsynced_dir(&mut self) -> Option<PathBuf> {
        std::mem::take(&mut self.dir_unsynced).then(|| self.dir.clone())
    }

    pub fn delete(&self, segments: &[u64]) {
        for &n in segments {
            remove(&self.path(n));
        }
    }

    fn cut_back(&mut self) {
        let Some((n, file, whole)) = self.current.take() else {
            return;
        };
        let path = self.path(n);
        let cut = match whole {
            0 => std::fs::remove_file(&path),
            _ => file.set_len(whole),
        };
        if let Err(e) = cut {
            log::error!("journal: cannot cut {} back: {e}", path.display());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

pub fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            log::warn!("journal: cannot delete {}: {e}", path.display());
        }
        _ => {}
    }
}

/// What the syncing thread is asked to do: delete finished segments, make the files
/// written since the last job durable, and the directory when a segment was created.
pub struct SyncJob {
    /// The last batch written into `files`, if any.
    pub upto: Option<u64>,
    pub files: Vec<Arc<File>>,
    pub dir: Option<PathBuf>,
    pub delete: Vec<PathBuf>,
}

pub struct SyncDone {
    pub upto: Option<u64>,
    pub result: Result<(), String>,
    pub synced: Synced,
}

/// The syncing thread: takes jobs in order, answers each, and wakes the loop.
pub struct Worker {
    to: Sender<SyncJob>,
    from: Receiver<SyncDone>,
}

impl Worker {
    pub fn spawn(wake: Box<dyn Fn() + Send>) -> Result<Self, String> {
        let (to, inbox) = channel::<SyncJob>();
        let (outbox, from) = channel();
        std::thread::Builder::new()
            .name("lb-journal".into())
            .spawn(move || {
                for job in inbox {
                    if outbox.send(run(job)).is_err() {
                        return;
                    }
                    wake();
                }
            })
            .map_err(|e| format!("cannot start the journal thread: {e}"))?;
        Ok(Worker { to, from })
    }

    pub fn send(&self, job: SyncJob) -> Result<(), String> {
        self.to
            .send(job)
            .map_err(|_| "the journal thread has stopped".to_string())
    }

    pub fn try_recv(&self) -> Option<SyncDone> {
        self.from.try_recv().ok()
    }

    /// Waits for the job in progress.
    pub fn recv(&self) -> Option<SyncDone> {
        self.from.recv().ok()
    }
}

fn run(job: SyncJob) -> SyncDone {
    for path in &job.delete {
        remove(path);
    }
    let mut synced = Synced::default();
    let mut result = Ok(());
    for file in &job.files {
        if let Err(e) = synced.sync(file) {
            result = Err(format!("cannot sync the journal: {e}"));
            break;
        }
    }
    if result.is_ok()
        && let Some(dir) = &job.dir
    {
        result = sync_dir(dir);
    }
    SyncDone {
        upto: job.upto,
        result,
        synced,
    }
}
