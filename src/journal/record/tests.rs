use super::*;
use crate::journal::legacy;

fn key(seed: u8) -> SipKey {
    SipKey::new([seed; 16])
}

fn job(id: u128, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let job = JobRecord {
        id,
        request_id: b"abc",
        request,
        backends: &["a:1", "b:2"],
    };
    encode_job(&mut out, key(1), &job);
    out
}

/// A job and an outcome; where the second starts.
fn sample() -> (Vec<u8>, usize) {
    let mut buf = job(7, b"POST / HTTP/1.1\r\n\r\n");
    let second = buf.len();
    encode_outcome(&mut buf, key(1), 7, "a:1", Outcome::Refused);
    (buf, second)
}

#[test]
fn records_read_back_as_written() {
    let (buf, second) = sample();
    let expected = Record::Job {
        id: 7,
        request_id: b"abc",
        request: b"POST / HTTP/1.1\r\n\r\n",
        backends: vec!["a:1", "b:2"],
    };
    assert_eq!(read_at(&buf, 0, key(1)), Read::Record(expected, second));
    let expected = Record::Outcome {
        id: 7,
        backend: "a:1",
        outcome: Outcome::Refused,
    };
    assert_eq!(
        read_at(&buf, second, key(1)),
        Read::Record(expected, buf.len())
    );
    assert_eq!(read_at(&buf, buf.len(), key(1)), Read::Short);
}

#[test]
fn a_record_cut_anywhere_is_short() {
    let (buf, second) = sample();
    for cut in 1..second {
        assert_eq!(read_at(&buf[..cut], 0, key(1)), Read::Short, "cut at {cut}");
    }
}

#[test]
fn damage_after_an_intact_header_skips_the_record_whole() {
    let (buf, second) = sample();
    for at in [HEADER, HEADER + 30, second - 1] {
        let mut damaged = buf.clone();
        damaged[at] ^= 0x40;
        assert_eq!(
            read_at(&damaged, 0, key(1)),
            Read::Damaged(second),
            "at {at}"
        );
    }
}

#[test]
fn a_damaged_header_loses_the_place_until_the_next_intact_header() {
    let (buf, second) = sample();
    for at in [0, 5, HEADER - 1] {
        let mut damaged = buf.clone();
        damaged[at] ^= 0x01;
        assert_eq!(read_at(&damaged, 0, key(1)), Read::Lost, "at {at}");
        assert_eq!(next_header(&damaged, 0, key(1)), Some(second));
    }
    assert_eq!(
        next_header(&buf, second, key(1)),
        None,
        "nothing after the last"
    );
}

#[test]
fn records_made_with_another_key_are_not_records() {
    let (buf, _) = sample();
    assert_eq!(read_at(&buf, 0, key(2)), Read::Lost);
    assert_eq!(next_header(&buf, 0, key(2)), None);
}

#[test]
fn records_a_client_put_in_a_request_are_never_found() {
    // What a client can write without the key: records in the old format, and in this
    // one under a key of its own.
    let mut forged = Vec::new();
    legacy::write::job(&mut forged, 1, &["a:1"], b"POST /forged HTTP/1.1\r\n\r\n");
    legacy::write::delivered(&mut forged, 7, "b:2");
    encode_outcome(&mut forged, key(2), 7, "b:2", Outcome::Delivered);
    let mut request = b"POST /x HTTP/1.1\r\nContent-Length: 999\r\n\r\n".to_vec();
    request.extend_from_slice(&forged);
    request.extend_from_slice(&forged);
    let mut buf = job(7, b"POST / HTTP/1.1\r\n\r\n");
    let attacker = buf.len();
    buf.extend(job(8, &request));
    let after = buf.len();
    encode_outcome(&mut buf, key(1), 8, "a:1", Outcome::Delivered);
    for pos in attacker + 1..after {
        assert_eq!(next_header(&buf, pos, key(1)), Some(after), "from {pos}");
        assert!(
            !matches!(read_at(&buf, pos, key(1)), Read::Record(..)),
            "a record at {pos}"
        );
    }
}

#[test]
fn valid_tags_over_nonsense_are_still_damage() {
    let mut buf = Vec::new();
    let start = begin(&mut buf);
    buf.extend_from_slice(&[JOB, 1, 2, 3]);
    finish(&mut buf, start, key(1));
    assert_eq!(read_at(&buf, 0, key(1)), Read::Damaged(buf.len()));
}

#[test]
fn old_format_records_read_back_with_their_ids() {
    let mut buf = Vec::new();
    legacy::write::job(&mut buf, u64::MAX, &["a:1"], b"POST / HTTP/1.1\r\n\r\n");
    let Read::Record(Record::Job { id, backends, .. }, next) = legacy::read_at(&buf, 0) else {
        panic!("an old-format job");
    };
    assert_eq!(
        (id, backends, next),
        (u128::from(u64::MAX), vec!["a:1"], buf.len())
    );
    assert_eq!(legacy::read_at(&buf[..buf.len() - 1], 0), Read::Short);
    let mut damaged = buf.clone();
    damaged[20] ^= 0x40;
    assert_eq!(legacy::read_at(&damaged, 0), Read::Lost);
}
