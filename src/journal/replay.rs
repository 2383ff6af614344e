//! Reading a journal directory back: every segment of every writer, in any order. A job
//! is owed to the backends that every record of it lists (a job carried forward lists
//! only those still owed then) and that no outcome record has finished.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use log::{error, warn};

use super::record::{Read, Record, read_at, resync};

/// A job found still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub id: u64,
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
    /// The highest segment number and job id seen, so that new ones never repeat them.
    pub max_segment: u64,
    pub max_id: u64,
    pub records: u64,
    /// Damaged records with intact records after them: skipped.
    pub corrupt: u64,
    /// Segments whose last record was cut short (a crash mid-write): dropped.
    pub torn: u64,
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
pub fn read_dir(dir: &Path) -> Result<Found, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut found = Found::default();
    let mut jobs: HashMap<u64, Replayed> = HashMap::new();
    let mut finished: HashMap<u64, Vec<String>> = HashMap::new();
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
        read_segment(&path, &bytes, &mut found, &mut jobs, &mut finished);
        found.segments.push(path);
    }
    found.segments.sort();
    for (id, done) in finished {
        if let Some(job) = jobs.get_mut(&id) {
            job.owed.retain(|b| !done.contains(b));
        }
    }
    found.jobs = jobs.into_values().filter(|j| !j.owed.is_empty()).collect();
    found.jobs.sort_by_key(|j| j.id);
    Ok(found)
}

fn read_segment(
    path: &Path,
    bytes: &[u8],
    found: &mut Found,
    jobs: &mut HashMap<u64, Replayed>,
    finished: &mut HashMap<u64, Vec<String>>,
) {
    let mut pos = 0;
    while pos < bytes.len() {
        match read_at(bytes, pos) {
            Read::Record(record, next) => {
                found.records += 1;
                take(record, found, jobs, finished);
                pos = next;
            }
            Read::Short | Read::Damaged => match resync(bytes, pos) {
                Some(next) => {
                    found.corrupt += 1;
                    error!(
                        "journal {}: damaged record at byte {pos} skipped ({} bytes); \
                         reading on from byte {next}",
                        path.display(),
                        next - pos
                    );
                    pos = next;
                }
                None => {
                    found.torn += 1;
                    warn!(
                        "journal {}: the last {} bytes are an incomplete record (a crash \
                         while writing it) and are dropped",
                        path.display(),
                        bytes.len() - pos
                    );
                    return;
                }
            },
        }
    }
}

fn take(
    record: Record,
    found: &mut Found,
    jobs: &mut HashMap<u64, Replayed>,
    finished: &mut HashMap<u64, Vec<String>>,
) {
    match record {
        Record::Job {
            id,
            request_id,
            request,
            backends,
        } => {
            found.max_id = found.max_id.max(id);
            match jobs.get_mut(&id) {
                // Carried forward: owed only where every copy of the record says so.
                Some(job) => job.owed.retain(|b| backends.contains(&b.as_str())),
                None => {
                    jobs.insert(
                        id,
                        Replayed {
                            id,
                            request_id: request_id.to_vec(),
                            request: request.to_vec(),
                            owed: backends.iter().map(|b| b.to_string()).collect(),
                        },
                    );
                }
            }
        }
        Record::Outcome { id, backend, .. } => {
            finished.entry(id).or_default().push(backend.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{JobRecord, Outcome, encode_job, encode_outcome};
    use super::*;

    fn job(id: u64, backends: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let record = JobRecord {
            id,
            request_id: b"rid",
            request: b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            backends,
        };
        encode_job(&mut out, &record);
        out
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lb-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn owed(found: &Found) -> Vec<(u64, Vec<String>)> {
        found.jobs.iter().map(|j| (j.id, j.owed.clone())).collect()
    }

    #[test]
    fn outcomes_and_carried_copies_settle_what_is_owed_in_any_order() {
        let dir = temp_dir("order");
        let mut first = job(1, &["a", "b", "c"]);
        first.extend(job(2, &["a", "b"]));
        encode_outcome(&mut first, 1, "a", Outcome::Delivered);
        let mut second = job(1, &["b", "c"]);
        encode_outcome(&mut second, 1, "c", Outcome::Refused);
        encode_outcome(&mut second, 2, "a", Outcome::Delivered);
        encode_outcome(&mut second, 2, "b", Outcome::Spent);
        std::fs::write(dir.join(segment_name("w1", 3)), &second).unwrap();
        std::fs::write(dir.join(segment_name("w0", 7)), &first).unwrap();
        std::fs::write(dir.join("lock"), b"123").unwrap();
        let found = read_dir(&dir).unwrap();
        assert_eq!(owed(&found), [(1, vec!["b".to_string()])]);
        assert_eq!((found.max_id, found.max_segment), (2, 7));
        assert_eq!((found.records, found.corrupt, found.torn), (7, 0, 0));
        assert_eq!(found.segments.len(), 2, "the lock file is no segment");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_dropped_and_a_damaged_middle_skipped() {
        let dir = temp_dir("damage");
        let mut bytes = job(1, &["a"]);
        let second = bytes.len();
        bytes.extend(job(2, &["a"]));
        let third = bytes.len();
        bytes.extend(job(3, &["a"]));
        bytes[second + 20] ^= 0xff;
        let torn = job(4, &["a"]);
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        assert!(third > second + 20);
        std::fs::write(dir.join(segment_name("w0", 1)), &bytes).unwrap();
        let found = read_dir(&dir).unwrap();
        let ids: Vec<u64> = found.jobs.iter().map(|j| j.id).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!((found.records, found.corrupt, found.torn), (2, 1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
