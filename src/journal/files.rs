//! The journal's files: the directory lock, segment files, and the thread that writes
//! and syncs them beside the event loop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write as _};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use super::replay::segment_name;

/// The directory's lock, held for the life of the process: one lb per journal. It is a
/// `flock` on `DIR/lock`, which the kernel drops when the process ends however it ends,
/// so a crash never leaves a stale lock behind; the file names the holder's pid.
pub struct DirLock {
    _file: File,
}

pub fn lock(dir: &Path) -> Result<DirLock, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(format!("cannot lock {}: {err}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(format!(
            "{} is in use by another lb (pid {}); each lb needs a journal directory of its own",
            dir.display(),
            holder.trim()
        ));
    }
    let pid = std::process::id().to_string();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(pid.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(DirLock { _file: file })
}

/// One write to the journal: delete finished segments, then append `bytes` to segment
/// `segment` (creating it if it is new), then make them durable as `sync` says.
pub struct Write {
    pub batch: u64,
    pub segment: u64,
    pub bytes: Vec<u8>,
    /// Where each record in `bytes` ends, for syncing them one by one.
    pub ends: Vec<usize>,
    pub sync: Sync,
    pub delete: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Never,
    /// One fdatasync covering the whole write.
    Once,
    /// One fdatasync after each record.
    EachRecord,
}

/// How a write went.
pub struct Written {
    pub batch: u64,
    pub result: Result<(), String>,
    /// Time spent in fdatasync, and how many calls.
    pub sync_time: Duration,
    pub syncs: u64,
    /// The write's buffer, handed back for reuse.
    pub bytes: Vec<u8>,
}

/// The open segment and the directory it lives in.
pub struct Segments {
    dir: PathBuf,
    writer: String,
    /// Segment number, file, and the length known to be whole on disk.
    current: Option<(u64, File, u64)>,
}

impl Segments {
    pub fn new(dir: &Path, writer: &str) -> Self {
        Segments {
            dir: dir.to_path_buf(),
            writer: writer.to_string(),
            current: None,
        }
    }

    pub fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(segment_name(&self.writer, segment))
    }

    pub fn write(&mut self, w: Write) -> Written {
        let mut done = Written {
            batch: w.batch,
            result: Ok(()),
            sync_time: Duration::ZERO,
            syncs: 0,
            bytes: Vec::new(),
        };
        for segment in &w.delete {
            let path = self.path(*segment);
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("journal: cannot delete {}: {e}", path.display());
            }
        }
        done.result = self.append(&w, &mut done);
        if done.result.is_err() {
            self.cut_back();
        }
        done.bytes = w.bytes;
        done
    }

    fn append(&mut self, w: &Write, done: &mut Written) -> Result<(), String> {
        if w.bytes.is_empty() {
            return Ok(());
        }
        if self.current.as_ref().is_none_or(|c| c.0 != w.segment) {
            self.open(w.segment)?;
        }
        let path = self.path(w.segment);
        let Some((_, file, whole)) = self.current.as_mut() else {
            return Err("no open segment".into());
        };
        let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
        let mut timed_sync = |file: &File| -> Result<(), String> {
            let started = Instant::now();
            file.sync_data().map_err(|e| fail("sync", e))?;
            done.sync_time += started.elapsed();
            done.syncs += 1;
            Ok(())
        };
        if w.sync == Sync::EachRecord {
            let mut start = 0;
            for &end in &w.ends {
                file.write_all(&w.bytes[start..end])
                    .map_err(|e| fail("write", e))?;
                timed_sync(file)?;
                start = end;
            }
        } else {
            file.write_all(&w.bytes).map_err(|e| fail("write", e))?;
            if w.sync == Sync::Once {
                timed_sync(file)?;
            }
        }
        *whole += w.bytes.len() as u64;
        Ok(())
    }

    /// Creates segment `n` and makes its name durable in the directory.
    fn open(&mut self, n: u64) -> Result<(), String> {
        let path = self.path(n);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", self.dir.display()))?;
        self.current = Some((n, file, 0));
        Ok(())
    }

    /// After a failed write: cut the segment back to what was whole, so that no partial
    /// record is followed by later ones, and write the next batch to a new segment.
    fn cut_back(&mut self) {
        if let Some((n, file, whole)) = self.current.take()
            && let Err(e) = file.set_len(whole)
        {
            log::error!("journal: cannot cut {} back: {e}", self.path(n).display());
        }
    }
}

/// The syncing thread: takes writes in order, answers each, and wakes the loop.
pub struct Worker {
    to: Sender<Write>,
    from: Receiver<Written>,
}

impl Worker {
    pub fn spawn(mut segments: Segments, wake: Box<dyn Fn() + Send>) -> Result<Self, String> {
        let (to, inbox) = channel::<Write>();
        let (outbox, from) = channel();
        std::thread::Builder::new()
            .name("lb-journal".into())
            .spawn(move || {
                for w in inbox {
                    if outbox.send(segments.write(w)).is_err() {
                        return;
                    }
                    wake();
                }
            })
            .map_err(|e| format!("cannot start the journal thread: {e}"))?;
        Ok(Worker { to, from })
    }

    pub fn send(&self, w: Write) -> Result<(), String> {
        self.to
            .send(w)
            .map_err(|_| "the journal thread has stopped".to_string())
    }

    pub fn try_recv(&self) -> Option<Written> {
        self.from.try_recv().ok()
    }

    /// Waits for the write in progress.
    pub fn recv(&self) -> Option<Written> {
        self.from.recv().ok()
    }
}
