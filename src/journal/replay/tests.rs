use super::super::legacy;
use super::super::record::{JobRecord, Outcome, encode_job, encode_outcome};
use super::*;

const KEY: [u8; 16] = [9; 16];

fn key() -> SipKey {
    SipKey::new(KEY)
}

fn job_with(id: u128, backends: &[&str], request: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let record = JobRecord {
        id,
        request_id: b"rid",
        request,
        backends,
    };
    encode_job(&mut out, key(), &record);
    out
}

fn job(id: u128, backends: &[&str]) -> Vec<u8> {
    job_with(
        id,
        backends,
        b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    )
}

fn delivered(out: &mut Vec<u8>, id: u128, backend: &str) {
    encode_outcome(out, key(), id, backend, Outcome::Delivered);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads one segment of `bytes`.
fn read(name: &str, bytes: &[u8]) -> Found {
    let dir = temp_dir(name);
    std::fs::write(dir.join(segment_name("w0", 1)), bytes).unwrap();
    let found = read_dir(&dir, key()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    found
}

fn owed(found: &Found) -> Vec<(u128, Vec<String>)> {
    found.jobs.iter().map(|j| (j.id, j.owed.clone())).collect()
}

#[test]
fn outcomes_and_carried_copies_settle_what_is_owed_in_any_order() {
    let dir = temp_dir("order");
    let mut first = job(1, &["a", "b", "c"]);
    first.extend(job(2, &["a", "b"]));
    delivered(&mut first, 1, "a");
    let mut second = job(1, &["b", "c"]);
    encode_outcome(&mut second, key(), 1, "c", Outcome::Refused);
    delivered(&mut second, 2, "a");
    encode_outcome(&mut second, key(), 2, "b", Outcome::Spent);
    std::fs::write(dir.join(segment_name("w1", 3)), &second).unwrap();
    std::fs::write(dir.join(segment_name("w0", 7)), &first).unwrap();
    std::fs::write(dir.join("lock"), b"123").unwrap();
    std::fs::write(dir.join("key"), b"not read here").unwrap();
    let found = read_dir(&dir, key()).unwrap();
    assert_eq!(owed(&found), [(1, vec!["b".to_string()])]);
    assert_eq!(found.max_segment, 7);
    assert_eq!((found.records, found.corrupt, found.torn), (7, 0, 0));
    assert_eq!(
        found.segments.len(),
        2,
        "the lock and key files are no segments"
    );
    assert_eq!((found.current, found.headed, found.authentic), (2, 2, 2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_tail_is_dropped_and_a_damaged_middle_skipped_whole() {
    let mut bytes = job(1, &["a"]);
    let second = bytes.len();
    bytes.extend(job(2, &["a"]));
    bytes.extend(job(3, &["a"]));
    bytes[second + 40] ^= 0xff;
    let torn = job(4, &["a"]);
    bytes.extend_from_slice(&torn[..torn.len() - 3]);
    let found = read("damage", &bytes);
    let ids: Vec<u128> = found.jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!((found.records, found.corrupt, found.torn), (2, 1, 1));
}

/// A victim's job owed to "late", then an attacker's whose request carries `forged`;
/// where the attacker's record starts, and where its request starts.
fn attacked(forged: &[u8]) -> (Vec<u8>, usize, usize) {
    let mut bytes = job(1, &["live", "late"]);
    delivered(&mut bytes, 1, "live");
    let attacker = bytes.len();
    let mut request = b"POST /attacker HTTP/1.1\r\nContent-Length: 9999\r\n\r\n".to_vec();
    let padding = vec![b'p'; 100];
    request.extend_from_slice(&padding);
    request.extend_from_slice(forged);
    request.extend_from_slice(&padding);
    bytes.extend(job_with(2, &["late"], &request));
    let body = bytes.len() - request.len() - super::super::record::TAG;
    (bytes, attacker, body)
}

/// A forged job to "late" and a forged delivery of the victim's job to "late", in every
/// form a client could try: the old format, and this one under keys it guessed; and in
/// this one under the directory's own key, which no client has, to show that a record
/// whose header is intact is never searched for records.
fn forgeries(with_real_key: bool) -> Vec<u8> {
    let mut forged = Vec::new();
    legacy::write::job(&mut forged, 9, &["late"], b"POST /forged HTTP/1.1\r\n\r\n");
    legacy::write::delivered(&mut forged, 1, "late");
    let mut keys = vec![SipKey::new([0; 16]), SipKey::new([1; 16])];
    if with_real_key {
        keys.push(key());
    }
    for k in keys {
        let record = JobRecord {
            id: 9,
            request_id: b"forged",
            request: b"POST /forged HTTP/1.1\r\n\r\n",
            backends: &["late"],
        };
        encode_job(&mut forged, k, &record);
        encode_outcome(&mut forged, k, 1, "late", Outcome::Delivered);
    }
    forged
}

fn only_the_victim_is_owed(found: &Found) {
    assert_eq!(owed(found), [(1, vec!["late".to_string()])]);
}

#[test]
fn a_torn_record_is_not_searched_for_records() {
    let forged = forgeries(true);
    let (bytes, _, body) = attacked(&forged);
    // Cut inside the attacker's request, just after the forgeries.
    let cut = body + 50 + 100 + forged.len() + 10;
    let found = read("torn-forged", &bytes[..cut]);
    only_the_victim_is_owed(&found);
    assert_eq!((found.corrupt, found.torn), (0, 1));
}

#[test]
fn a_damaged_record_is_skipped_whole_not_searched() {
    let (mut bytes, _, body) = attacked(&forgeries(true));
    bytes[body + 60] ^= 0xff;
    let found = read("damaged-forged", &bytes);
    only_the_victim_is_owed(&found);
    assert_eq!((found.records, found.corrupt, found.torn), (2, 1, 0));
}

#[test]
fn after_a_damaged_header_no_forged_record_authenticates() {
    let (mut bytes, attacker, _) = attacked(&forgeries(false));
    let after = bytes.len();
    delivered(&mut bytes, 2, "late");
    bytes[attacker + 5] ^= 0x10;
    let found = read("header-forged", &bytes);
    only_the_victim_is_owed(&found);
    assert_eq!((found.records, found.corrupt, found.torn), (3, 1, 0));
    // With nothing after it, the rest of the segment is dropped.
    let found = read("header-forged-end", &bytes[..after]);
    only_the_victim_is_owed(&found);
    assert_eq!((found.records, found.corrupt, found.torn), (2, 0, 1));
}

#[test]
fn old_format_segments_are_read_up_to_the_first_damage_and_not_past_it() {
    let request = b"POST /x HTTP/1.1\r\n\r\n";
    let mut bytes = Vec::new();
    legacy::write::job(&mut bytes, 1, &["live", "late"], request);
    legacy::write::delivered(&mut bytes, 1, "live");
    let intact = read("legacy", &bytes);
    assert_eq!(owed(&intact), [(1, vec!["late".to_string()])]);
    assert_eq!((intact.legacy, intact.current, intact.records), (1, 0, 2));
    // An attacker's job carrying forged old-format records, then damaged or cut.
    let mut forged = Vec::new();
    legacy::write::job(&mut forged, 9, &["late"], b"POST /forged HTTP/1.1\r\n\r\n");
    legacy::write::delivered(&mut forged, 1, "late");
    let mut attack = b"POST /a HTTP/1.1\r\n\r\n".to_vec();
    attack.extend_from_slice(&forged);
    attack.extend_from_slice(&[b'p'; 64]);
    let attacker = bytes.len();
    legacy::write::job(&mut bytes, 2, &["late"], &attack);
    let mut damaged = bytes.clone();
    damaged[attacker + 30] ^= 0xff;
    let found = read("legacy-damaged", &damaged);
    assert_eq!(owed(&found), [(1, vec!["late".to_string()])]);
    assert_eq!((found.records, found.corrupt, found.torn), (2, 1, 0));
    let found = read("legacy-torn", &bytes[..bytes.len() - 20]);
    assert_eq!(owed(&found), [(1, vec!["late".to_string()])]);
    assert_eq!((found.records, found.corrupt, found.torn), (2, 0, 1));
}

#[test]
fn segments_made_with_another_key_do_not_authenticate() {
    let dir = temp_dir("other-key");
    std::fs::write(dir.join(segment_name("w0", 1)), job(1, &["a"])).unwrap();
    let found = read_dir(&dir, SipKey::new([8; 16])).unwrap();
    assert!(found.jobs.is_empty());
    assert_eq!((found.current, found.headed, found.authentic), (1, 1, 0));
    assert_eq!(
        found.unreadable.len(),
        1,
        "reported only once the key is known right"
    );
    assert_eq!(found.torn, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
