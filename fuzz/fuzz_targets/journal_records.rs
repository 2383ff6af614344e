//! Reading journal records back: a job record whose request is the input (as a client's
//! POST body would be), perhaps with one byte of it damaged, followed by the input again
//! as raw bytes, is walked the way replay walks a segment. The walk always moves forward;
//! an undamaged job reads back as written; and when the damage leaves the job's header
//! intact, the walk steps over the whole record and never reads inside it. (When the
//! header itself is damaged the reader looks for the next authentic header, and there the
//! fuzzer can win where no client can: it sees the tag lb computes in each comparison and
//! copies it into the input.) Payload decoding never panics on any input.
#![no_main]

use lb::journal::record::{self, JobRecord, Read, Record, SipKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SipKey::new(*b"fuzzing-journal!");
    let _ = record::decode(data, 8);
    let _ = record::decode(data, 16);
    let mut buf = Vec::new();
    let job = JobRecord {
        id: 7,
        request_id: b"rid",
        request: data,
        backends: &["a:1", "b:2"],
    };
    record::encode_job(&mut buf, key, &job);
    let end = buf.len();
    buf.extend_from_slice(data);
    // The first two bytes, when there are, choose a byte of the record to damage.
    let damaged = match data {
        [hi, lo, ..] => {
            let at = usize::from(u16::from_le_bytes([*hi, *lo])) % end;
            buf[at] ^= 0x5a;
            Some(at)
        }
        _ => None,
    };
    let header_intact = damaged.is_none_or(|at| at >= record::HEADER);
    if damaged.is_none() {
        match record::read_at(&buf, 0, key) {
            Read::Record(Record::Job { request, .. }, next) => {
                assert_eq!((request, next), (data, end));
            }
            other => panic!("an intact job read as {other:?}"),
        }
    }
    let mut pos = 0;
    while pos < buf.len() {
        assert!(
            pos == 0 || pos >= end || !header_intact,
            "stopped at {pos}, inside the job's record"
        );
        let next = match record::read_at(&buf, pos, key) {
            Read::Record(_, next) | Read::Damaged(next) => next,
            Read::Lost => match record::next_header(&buf, pos, key) {
                Some(next) => next,
                None => break,
            },
            Read::Short => break,
        };
        assert!(next > pos, "no progress at {pos}");
        pos = next;
    }
});
