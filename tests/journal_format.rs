//! The journal's record format over real processes. A POST body cannot forge records: the
//! attacker's body carries a job record for a request of its own and a "delivered" record
//! for the victim's acknowledged write, in the format of the lb before records were
//! authenticated and in today's format under a key the attacker made up; then the
//! attacker's own record is damaged, as `kill -9` in the middle of writing it (or a bad
//! sector) would leave it, and lb starts again on the directory. Nothing forged may be
//! delivered, and the victim's write must be. And a directory in the format before is
//! still replayed once, then written anew.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::tls::TempDir;
use common::*;
use lb::journal::record::{self, JobRecord, Outcome, Read, SipKey};

/// How the attacker's record is damaged before the restart.
#[derive(Clone, Copy, PartialEq)]
enum Damage {
    /// Cut short just after the forged bytes: a write that a crash stopped.
    Torn,
    /// A byte of the request before the forged bytes flipped; the header intact.
    Payload,
    /// A byte of the record's length flipped: where the record ends is unknown.
    Header,
}

#[test]
fn forged_records_in_a_post_cut_short_by_a_crash_are_never_replayed() {
    forged_records_are_not_replayed("forge-torn", Damage::Torn);
}

#[test]
fn forged_records_in_a_damaged_post_are_never_replayed() {
    forged_records_are_not_replayed("forge-payload", Damage::Payload);
}

#[test]
fn forged_records_after_a_damaged_record_header_are_never_replayed() {
    forged_records_are_not_replayed("forge-header", Damage::Header);
}

const MARK: &[u8] = b"ATTACKER-BODY";

fn forged_records_are_not_replayed(name: &str, damage: Damage) {
    let tmp = TempDir::new();
    let dir = tmp.0.join(name);
    let dir_arg = dir.to_str().expect("a UTF-8 path").to_string();
    let live = backend("live", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let live_addr = live.addr.to_string();
    // Without health checks and with a long backoff, the copies to `late` stay owed.
    let args = lb_args(
        &[&live_addr, &late_addr],
        &[
            "--journal",
            &dir_arg,
            "--health-interval",
            "0",
            "--retry-base",
            "10m",
            "--admin",
            "127.0.0.1:0",
        ],
    );
    let mut lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let victim = post(lb.addr, "/register?username=victim&password=p");
    assert_eq!(victim.status, 201, "{}", victim.text());

    let forged = forgeries(&dir, &[&live_addr, &late_addr], &late_addr);
    let mut body = MARK.to_vec();
    body.extend_from_slice(&[b'p'; 200]);
    body.extend_from_slice(&forged);
    body.extend_from_slice(&[b'q'; 4000]);
    let mut raw = format!(
        "POST /register?username=attacker&password=p HTTP/1.1\r\nHost: t\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    assert_eq!(request(lb.addr, &raw).status, 201);
    lb.signal(libc::SIGKILL);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(-1));

    let segment = only_segment(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    let body_at = find(&bytes, MARK).expect("the attacker's body is in the journal");
    match damage {
        Damage::Torn => bytes.truncate(body_at + MARK.len() + 200 + forged.len() + 100),
        Damage::Payload => bytes[body_at + 3] ^= 0xff,
        Damage::Header => {
            let header = bytes[..body_at]
                .windows(3)
                .rposition(|w| w == b"LBJ")
                .expect("the attacker's record header");
            bytes[header + 5] ^= 0x01;
        }
    }
    std::fs::write(&segment, &bytes).unwrap();

    let late = backend_on("late", &late_addr, &[]);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert!(
        eventually(Duration::from_secs(20), || registered(&late, "victim") == 1),
        "the victim's acknowledged write never reached late:\n{}",
        lb.log_text()
    );
    // Every job resumed at start went out together with the victim's: the forged one
    // was not among them.
    let admin = admin_addr(&lb);
    assert!(eventually(Duration::from_secs(3), || {
        get(admin, "/metrics")
            .text()
            .contains("lb_journal_resumed_writes_total 1\n")
    }));
    for b in [&live, &late] {
        assert_eq!(
            registered(b, "forged"),
            0,
            "a forged job reached {}",
            b.addr
        );
    }
    assert_eq!(registered(&live, "victim"), 1);
}

fn only_segment(dir: &Path) -> PathBuf {
    let segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.into_iter().next().unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What an attacker can put in a body: records that would give every backend a forged
/// job and finish the victim's copy to `late`. In the format before records were
/// authenticated (where job ids counted from 1), and in today's under keys of its own,
/// with the victim's real id (read here from the journal, as if it had leaked).
fn forgeries(dir: &Path, everyone: &[&str], late: &str) -> Vec<u8> {
    let request = b"POST /register?username=forged&password=p HTTP/1.1\r\nHost: t\r\n\
                    Content-Length: 0\r\nX-Request-Id: forged\r\n\r\n";
    let mut out = Vec::new();
    old_format_job(&mut out, 9, everyone, request);
    old_format_delivered(&mut out, 1, late);
    let victim = victim_id(dir);
    for guess in [[0u8; 16], [0x5a; 16]] {
        let key = SipKey::new(guess);
        let job = JobRecord {
            id: 9,
            request_id: b"forged",
            request,
            backends: everyone,
        };
        record::encode_job(&mut out, key, &job);
        record::encode_outcome(&mut out, key, victim, late, Outcome::Delivered);
    }
    out
}

/// The id of the one job in the journal so far, read with the directory's own key.
fn victim_id(dir: &Path) -> u128 {
    let hex = std::fs::read_to_string(dir.join(lb::journal::KEY_FILE)).expect("the key file");
    let hex = hex.trim_end();
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let key = SipKey::new(bytes.try_into().expect("16 bytes"));
    let segment = std::fs::read(only_segment(dir)).unwrap();
    match record::read_at(&segment, 0, key) {
        Read::Record(record::Record::Job { id, .. }, _) => id,
        other => panic!("the victim's job first: {other:?}"),
    }
}

fn old_format_job(out: &mut Vec<u8>, id: u64, backends: &[&str], request: &[u8]) {
    let mut p = vec![1];
    p.extend_from_slice(&id.to_le_bytes());
    put(&mut p, b"forged");
    p.extend_from_slice(&(backends.len() as u32).to_le_bytes());
    for b in backends {
        put(&mut p, b.as_bytes());
    }
    put(&mut p, request);
    old_format_record(out, &p);
}

fn old_format_delivered(out: &mut Vec<u8>, id: u64, backend: &str) {
    let mut p = vec![2];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0);
    put(&mut p, backend.as_bytes());
    old_format_record(out, &p);
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// `magic "LBJ1" | length | CRC-32C | payload`, as the lb of that format wrote it.
fn old_format_record(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(b"LBJ1");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_journal_of_the_format_before_the_key_is_delivered_once_and_written_anew() {
    let tmp = TempDir::new();
    let dir = tmp.0.join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let late = backend("late", &[]);
    let late_addr = late.addr.to_string();
    let request = b"POST /register?username=old&password=p HTTP/1.1\r\nHost: t\r\n\
                    Content-Length: 0\r\nX-Request-Id: old-1\r\n\r\n";
    let mut old = Vec::new();
    old_format_job(&mut old, 1, &["127.0.0.1:1", &late_addr], request);
    old_format_delivered(&mut old, 1, "127.0.0.1:1");
    let legacy = dir.join("w0-000000000005.journal");
    std::fs::write(&legacy, &old).unwrap();
    let dir_arg = dir.to_str().expect("a UTF-8 path");
    let args = lb_args(&["127.0.0.1:1", &late_addr], &["--journal", dir_arg]);
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    assert!(
        lb.wait_log("read once", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
    assert!(eventually(Duration::from_secs(10), || registered(
        &late, "old"
    ) == 1));
    assert!(
        eventually(Duration::from_secs(5), || !legacy.exists()),
        "the old segment goes once its write is written anew or delivered"
    );
    assert!(dir.join(lb::journal::KEY_FILE).exists());
    let mut lb = lb;
    lb.signal(libc::SIGTERM);
    assert_eq!(lb.exit_code_within(Duration::from_secs(10)), Some(0));
    // Started again on what it wrote, nothing is owed any more.
    let args = lb_args(
        &["127.0.0.1:1", &late_addr],
        &["--journal", dir_arg, "--admin", "127.0.0.1:0"],
    );
    let lb = spawn(env!("CARGO_BIN_EXE_lb"), &args);
    let admin = admin_addr(&lb);
    assert!(eventually(Duration::from_secs(3), || {
        get(admin, "/metrics")
            .text()
            .contains("lb_journal_resumed_writes_total 0\n")
    }));
    assert_eq!(registered(&late, "old"), 1);
}
