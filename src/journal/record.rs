//! The journal's record format. Each record is
//!
//! ```text
//! magic u32 "LBJ1" | payload length u32 | CRC-32C of the payload u32 | payload
//! ```
//!
//! all little-endian. The payload's first byte says what it is: a job (the request and the
//! backends it is still owed to) or an outcome (one backend's copy of one job is finished).
//! The magic lets a reader find the next record after a damaged one.

/// Marks the start of every record: "LBJ1".
pub const MAGIC: u32 = u32::from_le_bytes(*b"LBJ1");
pub const HEADER: usize = 12;
/// No payload is larger: a length beyond it is damage, not a record.
pub const MAX_PAYLOAD: usize = 1 << 30;

const JOB: u8 = 1;
const OUTCOME: u8 = 2;

/// A POST still owed to some backends, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord<'a> {
    /// Unique within one journal directory; the same id when a job is carried forward.
    pub id: u64,
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
        id: u64,
        request_id: &'a [u8],
        request: &'a [u8],
        backends: Vec<&'a str>,
    },
    Outcome {
        id: u64,
        backend: &'a str,
        outcome: Outcome,
    },
}

/// Appends one job record to `out`.
pub fn encode_job(out: &mut Vec<u8>, job: &JobRecord) {
    let start = begin(out);
    out.push(JOB);
    out.extend_from_slice(&job.id.to_le_bytes());
    put_bytes(out, job.request_id);
    out.extend_from_slice(&(job.backends.len() as u32).to_le_bytes());
    for b in job.backends {
        put_bytes(out, b.as_bytes());
    }
    put_bytes(out, job.request);
    finish(out, start);
}

/// Appends one outcome record to `out`.
pub fn encode_outcome(out: &mut Vec<u8>, id: u64, backend: &str, outcome: Outcome) {
    let start = begin(out);
    out.push(OUTCOME);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(match outcome {
        Outcome::Delivered => 0,
        Outcome::Refused => 1,
        Outcome::Spent => 2,
    });
    put_bytes(out, backend.as_bytes());
    finish(out, start);
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    start
}

fn finish(out: &mut [u8], start: usize) {
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32c(payload);
    out[start..start + 4].copy_from_slice(&MAGIC.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// What is at `buf[pos..]`.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<'a> {
    /// A whole, intact record, and where the next one starts.
    Record(Record<'a>, usize),
    /// Too few bytes for the record the header announces (or for a header).
    Short,
    /// Bytes that are not an intact record.
    Damaged,
}

pub fn read_at(buf: &[u8], pos: usize) -> Read<'_> {
    let Some(header) = buf.get(pos..pos + HEADER) else {
        return Read::Short;
    };
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (magic, len, crc) = (word(0), word(4) as usize, word(8));
    if magic != MAGIC || len > MAX_PAYLOAD {
        return Read::Damaged;
    }
    let Some(payload) = buf.get(pos + HEADER..pos + HEADER + len) else {
        return Read::Short;
    };
    if crc32c(payload) != crc {
        return Read::Damaged;
    }
    match decode(payload) {
        Some(record) => Read::Record(record, pos + HEADER + len),
        None => Read::Damaged,
    }
}

/// The next position after `pos` where an intact record starts, if any.
pub fn resync(buf: &[u8], pos: usize) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    (pos + 1..buf.len().saturating_sub(HEADER - 1))
        .filter(|&p| buf[p..p + 4] == magic)
        .find(|&p| matches!(read_at(buf, p), Read::Record(..)))
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

    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

fn decode(payload: &[u8]) -> Option<Record<'_>> {
    let mut f = Fields(payload);
    let record = match f.u8()? {
        JOB => {
            let id = f.u64()?;
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
            let id = f.u64()?;
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

/// CRC-32C (Castagnoli), the checksum of ext4, iSCSI and most logs: it catches every
/// burst error up to 32 bits.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answers() {
        // RFC 3720 B.4 test vectors.
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    fn sample(out: &mut Vec<u8>) {
        let job = JobRecord {
            id: 7,
            request_id: b"abc",
            request: b"POST / HTTP/1.1\r\n\r\n",
            backends: &["a:1", "b:2"],
        };
        encode_job(out, &job);
        encode_outcome(out, 7, "a:1", Outcome::Refused);
    }

    #[test]
    fn records_read_back_as_written() {
        let mut buf = Vec::new();
        sample(&mut buf);
        let Read::Record(job, next) = read_at(&buf, 0) else {
            panic!("a job record");
        };
        let expected = Record::Job {
            id: 7,
            request_id: b"abc",
            request: b"POST / HTTP/1.1\r\n\r\n",
            backends: vec!["a:1", "b:2"],
        };
        assert_eq!(job, expected);
        let expected = Record::Outcome {
            id: 7,
            backend: "a:1",
            outcome: Outcome::Refused,
        };
        assert_eq!(read_at(&buf, next), Read::Record(expected, buf.len()));
        assert_eq!(read_at(&buf, buf.len()), Read::Short);
    }

    #[test]
    fn damage_is_seen_and_skipped() {
        let mut buf = Vec::new();
        sample(&mut buf);
        let Read::Record(_, second) = read_at(&buf, 0) else {
            panic!("intact");
        };
        for cut in [1, HEADER, second - 1] {
            assert_eq!(read_at(&buf[..cut], 0), Read::Short, "cut at {cut}");
        }
        let mut flipped = buf.clone();
        flipped[HEADER + 3] ^= 0x40;
        assert_eq!(read_at(&flipped, 0), Read::Damaged);
        assert_eq!(resync(&flipped, 0), Some(second));
        assert_eq!(resync(&buf, second), None, "nothing after the last");
        let mut bad_len = buf.clone();
        bad_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_at(&bad_len, 0), Read::Damaged);
    }

    #[test]
    fn a_valid_checksum_over_nonsense_is_still_damage() {
        let mut buf = Vec::new();
        let start = begin(&mut buf);
        buf.extend_from_slice(&[JOB, 1, 2, 3]);
        finish(&mut buf, start);
        assert_eq!(read_at(&buf, 0), Read::Damaged);
    }
}
