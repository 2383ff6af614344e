//! The journal's record format. Each record is
//!
//! ```text
//! magic "LBJ2" | payload length u32 | header tag u64 | payload | record tag 16 bytes
//! ```
//!
//! all little-endian. The header tag is SipHash-2-4 (64-bit) of the first 8 bytes, the
//! record tag SipHash-2-4 (128-bit) of everything before it, both under the directory's
//! secret key (`key.rs`). The payload's first byte says what it is: a job (the request and
//! the backends it is still owed to) or an outcome (one backend's copy of one job is
//! finished).
//!
//! A request's bytes end up inside a job's payload, so a payload can hold anything a client
//! chose, records included. Two rules keep such bytes from ever being read as records: a
//! record is read only if both tags check out, which takes the key; and a reader that
//! finds an intact header trusts its length, so it steps over a damaged record whole
//! instead of looking for records inside it (`replay.rs`).

pub use super::siphash::SipKey;
use super::siphash::{siphash64, siphash128};

/// Marks the start of every record: "LBJ2".
pub const MAGIC: [u8; 4] = *b"LBJ2";
pub const HEADER: usize = 16;
pub const TAG: usize = 16;
/// No payload is larger: a length beyond it is damage, not a record.
pub const MAX_PAYLOAD: usize = 1 << 30;

const JOB: u8 = 1;
const OUTCOME: u8 = 2;

/// A POST still owed to some backends, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord<'a> {
    /// Random (unguessable), and so unique within one journal directory; the same id when
    /// a job is carried forward.
    pub id: u128,
    pub request_id: &'a [u8],
    /// The request exactly as it goes to each backend (head and body).
    pub request: &'a [u8],
    /// The backends (by label) the job is still owed to.
    pub backends: &'a [&'a str],
}

/// How one backend's copy of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Refused,
    /// Given up: attempts spent, or a failure --retry-on does not retry.
    Spent,
}

/// A record as read back.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Job {
        id: u128,
        request_id: &'a [u8],
        request: &'a [u8],
        backends: Vec<&'a str>,
    },
    Outcome {
        id: u128,
        backend: &'a str,
        outcome: Outcome,
    },
}

/// Appends one job record to `out`.
pub fn encode_job(out: &mut Vec<u8>, key: SipKey, job: &JobRecord) {
    let start = begin(out);
    out.push(JOB);
    out.extend_from_slice(&job.id.to_le_bytes());
    put_bytes(out, job.request_id);
    out.extend_from_slice(&(job.backends.len() as u32).to_le_bytes());
    for b in job.backends {
        put_bytes(out, b.as_bytes());
    }
    put_bytes(out, job.request);
    finish(out, start, key);
}

/// Appends one outcome record to `out`.
pub fn encode_outcome(out: &mut Vec<u8>, key: SipKey, id: u128, backend: &str, outcome: Outcome) {
    let start = begin(out);
    out.push(OUTCOME);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(match outcome {
        Outcome::Delivered => 0,
        Outcome::Refused => 1,
        Outcome::Spent => 2,
    });
    put_bytes(out, backend.as_bytes());
    finish(out, start, key);
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    start
}

fn finish(out: &mut Vec<u8>, start: usize, key: SipKey) {
    let len = (out.len() - start - HEADER) as u32;
    out[start..start + 4].copy_from_slice(&MAGIC);
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    let header_tag = siphash64(key, &out[start..start + 8]);
    out[start + 8..start + HEADER].copy_from_slice(&header_tag.to_le_bytes());
    let tag = siphash128(key, &out[start..]);
    out.extend_from_slice(&tag);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// What is at `buf[pos..]`.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole, authentic record, and where the next one starts.
    Record(Record<'a>, usize),
    /// Too few bytes for a header, or for the record an intact header announces: at the
    /// end of a segment, a write cut short.
    Short,
    /// An intact header whose record does not authenticate: damaged, and the next record
    /// starts at the given position.
    Damaged(usize),
    /// No intact header: where the next record starts is not known.
    Lost,
}

pub fn read_at(buf: &[u8], pos: usize, key: SipKey) -> Read<'_> {
    let Some(len) = header_at(buf, pos, key) else {
        return match buf.len() - pos.min(buf.len()) < HEADER {
            true => Read::Short,
            false => Read::Lost,
        };
    };
    let body = pos + HEADER + len;
    let Some(tag) = buf.get(body..body + TAG) else {
        return Read::Short;
    };
    if !same(&siphash128(key, &buf[pos..body]), tag) {
        return Read::Damaged(body + TAG);
    }
    match decode(&buf[pos + HEADER..body], 16) {
        Some(record) => Read::Record(record, body + TAG),
        None => Read::Damaged(body + TAG),
    }
}

/// Compared without an early exit: how long a check takes says nothing of how much of a
/// tag was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

/// The payload length of the intact header at `pos`, if there is one there.
fn header_at(buf: &[u8], pos: usize, key: SipKey) -> Option<usize> {
    let header = buf.get(pos..pos + HEADER)?;
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let tag = u64::from_le_bytes(header[8..16].try_into().ok()?);
    (header[..4] == MAGIC && siphash64(key, &header[..8]) == tag && len <= MAX_PAYLOAD)
        .then_some(len)
}

/// The first intact header after `pos`, for a reader that lost its place: only a header
/// made with the key counts, so bytes from a request never do.
pub fn next_header(buf: &[u8], pos: usize, key: SipKey) -> Option<usize> {
    let from = pos.checked_add(1)?;
    let rest = buf.get(from..)?;
    rest.windows(MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == MAGIC)
        .map(|(i, _)| from + i)
        .find(|&p| header_at(buf, p, key).is_some())
}

/// Reads fields front to back; `None` once anything is out of bounds.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }

    /// An id of `width` bytes (8 in the old format, 16 now).
    fn id(&mut self, width: usize) -> Option<u128> {
        let mut id = [0u8; 16];
        id.get_mut(..width)?.copy_from_slice(self.take(width)?);
        Some(u128::from_le_bytes(id))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

/// A payload, whose ids are `id_width` bytes long.
pub fn decode(payload: &[u8], id_width: usize) -> Option<Record<'_>> {
    let mut f = Fields(payload);
    let record = match f.u8()? {
        JOB => {
            let id = f.id(id_width)?;
            let request_id = f.bytes()?;
            let n = f.u32()? as usize;
            // Each label takes at least its 4-byte length: a count beyond that is damage.
            if n > f.0.len() / 4 {
                return None;
            }
            let backends = (0..n).map(|_| f.text()).collect::<Option<Vec<_>>>()?;
            Record::Job {
                id,
                request_id,
                backends,
                request: f.bytes()?,
            }
        }
        OUTCOME => {
            let id = f.id(id_width)?;
            let outcome = match f.u8()? {
                0 => Outcome::Delivered,
                1 => Outcome::Refused,
                2 => Outcome::Spent,
                _ => return None,
            };
            Record::Outcome {
                id,
                backend: f.text()?,
                outcome,
            }
        }
        _ => return None,
    };
    f.0.is_empty().then_some(record)
}

#[cfg(test)]
mod tests;
