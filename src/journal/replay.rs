//! Reading a journal directory back: every segment of every writer, in any order. A job
//! is owed to the backends that every record of it lists (a job carried forward lists
//! only those still owed then) and that no outcome record has finished.
//!
//! Only records that authenticate with the directory's key are taken. A damaged record
//! whose header is intact is stepped over whole (its length is known); a damaged header
//! makes the reader look for the next intact header, which only the key can make; a
//! record cut short at the end of a segment (a crash mid-write) ends the segment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use log::{error, warn};

use super::legacy;
use super::record::{HEADER, Read, Record, SipKey, next_header, read_at};

/// A job found still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub id: u128,
    pub request_id: Vec<u8>,
    pub request: Vec<u8>,
    /// Labels of the backends still owed the write.
    pub owed: Vec<String>,
}

/// What reading the directory found.
#[derive(Debug, Default)]
pub struct Found {
    pub jobs: Vec<Replayed>,
    /// Every segment read, to be deleted once what they owe is written anew.
    pub segments: Vec<PathBuf>,
    /// The highest segment number seen, so that new ones never repeat one.
    pub max_segment: u64,
    pub records: u64,
    /// Damaged stretches with intact records after them: skipped.
    pub corrupt: u64,
    /// Segments whose last record was cut short (a crash mid-write): dropped.
    pub torn: u64,
    /// Segments of the format before records were authenticated.
    pub legacy: u64,
    /// Segments of the current format, those of them long enough for a header, and how
    /// many of those hold one that authenticates (none: not the key they were written
    /// with).
    pub current: u64,
    pub headed: u64,
    pub authentic: u64,
    /// Segments of the current format without one authentic header, and their size.
    pub unreadable: Vec<(PathBuf, usize)>,
}

/// A segment's file name: `{writer}-{number}.journal`.
pub fn segment_name(writer: &str, number: u64) -> String {
    format!("{writer}-{number:012}.journal")
}

fn segment_number(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".journal")?;
    let (_, number) = stem.rsplit_once('-')?;
    number.parse().ok()
}

/// Everything still owed according to the segments in `dir`.
pub fn read_dir(dir: &Path, key: SipKey) -> Result<Found, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut found = Found::default();
    let mut jobs = Jobs::default();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(segment_number) else {
            continue;
        };
        let path = entry.path();
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        found.max_segment = found.max_segment.max(number);
        if bytes.starts_with(&legacy::MAGIC) {
            found.legacy += 1;
            read_legacy(&path, &bytes, &mut found, &mut jobs);
        } else {
            read_segment(&path, &bytes, key, &mut found, &mut jobs);
        }
        found.segments.push(path);
    }
    found.segments.sort();
    for (id, done) in jobs.finished {
        if let Some(job) = jobs.owed.get_mut(&id) {
            job.owed.retain(|b| !done.contains(b));
        }
    }
    found.jobs = jobs
        .owed
        .into_values()
        .filter(|j| !j.owed.is_empty())
        .collect();
    found.jobs.sort_by_key(|j| j.id);
    Ok(found)
}

/// The jobs seen so far, and the backends that outcome records finished, by job id.
#[derive(Default)]
struct Jobs {
    owed: HashMap<u128, Replayed>,
    finished: HashMap<u128, Vec<String>>,
}

fn read_segment(path: &Path, bytes: &[u8], key: SipKey, found: &mut Found, jobs: &mut Jobs) {
    if !bytes.is_empty() {
        found.current += 1;
    }
    if bytes.len() >= HEADER {
        found.headed += 1;
        let first = match read_at(bytes, 0, key) {
            Read::Lost => next_header(bytes, 0, key),
            _ => Some(0),
        };
        if first.is_none() {
            // Not a header made with this key in it: damage through and through, or
            // another key (which the caller refuses, so it is not reported here).
            found.unreadable.push((path.to_path_buf(), bytes.len()));
            return;
        }
        found.authentic += 1;
    }
    let mut pos = 0;
    while pos < bytes.len() {
        match read_at(bytes, pos, key) {
            Read::Record(record, next) => {
                found.records += 1;
                jobs.take(record);
                pos = next;
            }
            Read::Damaged(next) => {
                found.corrupt += 1;
                error!(
                    "journal {}: damaged record at byte {pos} ({} bytes) skipped whole: it \
                     does not authenticate",
                    path.display(),
                    next - pos
                );
                pos = next;
            }
            Read::Lost => match next_header(bytes, pos, key) {
                Some(next) => {
                    found.corrupt += 1;
                    error!(
                        "journal {}: damaged bytes {pos}..{next} skipped (no intact record \
                         header there); reading on from the next intact one",
                        path.display()
                    );
                    pos = next;
                }
                None => return torn(path, bytes.len() - pos, found),
            },
            Read::Short => return torn(path, bytes.len() - pos, found),
        }
    }
}

/// Segments with nothing authentic in them, once the key is known to be the right one:
/// counted with the torn tails, as nothing can be read past their damage.
pub fn report_unreadable(found: &mut Found) {
    for (path, bytes) in std::mem::take(&mut found.unreadable) {
        found.torn += 1;
        warn!(
            "journal {}: none of its {bytes} bytes is a record that authenticates \
             (damage): dropped",
            path.display()
        );
    }
}

fn torn(path: &Path, bytes: usize, found: &mut Found) {
    found.torn += 1;
    warn!(
        "journal {}: the last {bytes} bytes are an incomplete record (a crash while writing \
         it) and are dropped",
        path.display()
    );
}

/// A segment of the old format: read up to the first record that is not whole, and not
/// past it.
fn read_legacy(path: &Path, bytes: &[u8], found: &mut Found, jobs: &mut Jobs) {
    let mut pos = 0;
    while pos < bytes.len() {
        match legacy::read_at(bytes, pos) {
            Read::Record(record, next) => {
                found.records += 1;
                jobs.take(record);
                pos = next;
            }
            Read::Short => return torn(path, bytes.len() - pos, found),
            Read::Damaged(_) | Read::Lost => {
                found.corrupt += 1;
                return error!(
                    "journal {}: damaged record at byte {pos} of a segment in the old format \
                     (before records were authenticated): the rest of it ({} bytes) is dropped, \
                     as it cannot be told apart from request bytes",
                    path.display(),
                    bytes.len() - pos
                );
            }
        }
    }
}

impl Jobs {
    fn take(&mut self, record: Record) {
        match record {
            Record::Job {
                id,
                request_id,
                request,
                backends,
            } => match self.owed.get_mut(&id) {
                // Carried forward: owed only where every copy of the record says so.
                Some(job) => job.owed.retain(|b| backends.contains(&b.as_str())),
                None => {
                    self.owed.insert(
                        id,
                        Replayed {
                            id,
                            request_id: request_id.to_vec(),
                            request: request.to_vec(),
                            owed: backends.iter().map(|b| b.to_string()).collect(),
                        },
                    );
                }
            },
            Record::Outcome { id, backend, .. } => {
                self.finished
                    .entry(id)
                    .or_default()
                    .push(backend.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests;
