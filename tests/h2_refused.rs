//! Streams an h2 backend refuses (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last
//! stream) were not processed (RFC 9113 §8.7): a POST goes to another backend, once, or
//! with no other left to the same one on another connection, within --retries, and the
//! refusing backend's health is not blamed, nor for the requests that waited for room on a
//! connection it sent GOAWAY on; a stream reset with another code is a failure, answered
//! 502 as before. The backends are tests/support/h2_backend.py.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::tls::TempDir;
use common::*;

const BACKEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/h2_backend.py");

fn h2_backend(extra: &[&str]) -> Proc {
    spawn_command(Command::new("python3").arg(BACKEND).args(extra))
}

/// lb (one listener, with h2c) before `backends` in one `protocol = "h2"` pool, without
/// active health checks; its route does not fan POSTs out (as gRPC routes), so that each
/// goes to one backend and is retried as a request.
fn lb_h2(dir: &TempDir, backends: &[&Proc]) -> (Proc, SocketAddr) {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[listeners.web]\naddress = \"127.0.0.1:0\"\nh2c = true\n\n\
         [pools.grpc]\nbackends = [{}]\nprotocol = \"h2\"\nhealth = {{ interval = \"0s\" }}\n\n\
         [[routes]]\npool = \"grpc\"\nfanout = false\n",
        list.join(", ")
    );
    let lb = lb_file(&dir.write("lb.toml", &text), &[]);
    let addr = listener(&lb, "web");
    (lb, addr)
}

/// A backend's counters, asked of it directly in HTTP/2.
fn stats(b: &Proc, key: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .arg(format!("http://{}/stats", b.addr))
        .output()
        .expect("curl runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON stats");
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// `backend`'s failures for `reason` (connect, reset) in lb's /metrics.
fn failures(lb: &Proc, backend: &Proc, reason: &str) -> f64 {
    let series = format!(
        "lb_backend_failures_total{{backend=\"{}\",pool=\"grpc\",reason=\"{reason}\"}}",
        backend.addr
    );
    metric(admin_addr(lb), &series)
}

/// `n` POSTs through `addr` at once, each of body "b"; each must come back 200.
fn concurrent_posts_answered(addr: SocketAddr, n: usize) {
    let posts: Vec<_> = (0..n)
        .map(|i| std::thread::spawn(move || post_body(addr, &format!("/echo?{i}"), "b")))
        .collect();
    for (i, p) in posts.into_iter().enumerate() {
        let r = p.join().expect("the POST's thread");
        assert_eq!(r.status, 200, "POST {i}: {}", r.text());
        assert_eq!(r.text(), format!("POST /echo?{i} 1 b"));
    }
}

/// POSTs `n` bodies through `addr`; each must come back 200 from the backend that took it.
fn posts_answered(addr: SocketAddr, n: usize) {
    for i in 0..n {
        let body = format!("body {i}");
        let r = post_body(addr, &format!("/echo?{i}"), &body);
        assert_eq!(r.status, 200, "POST {i}: {}", r.text());
        assert_eq!(r.text(), format!("POST /echo?{i} {} {body}", body.len()));
    }
}

#[test]
fn a_post_refused_with_rst_stream_goes_to_another_backend_once() {
    let refusing = h2_backend(&["--refuse"]);
    let good = h2_backend(&[]);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2(&dir, &[&refusing, &good]);
    posts_answered(addr, 6);
    // An HTTP/2 client's POST (gRPC calls are such) too.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http2-prior-knowledge"])
        .args(["--data-binary", "h2 body", &format!("http://{addr}/echo")])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "POST /echo 7 h2 body");
    assert!(stats(&refusing, "refused") >= 1, "round robin sent it some");
    assert_eq!(stats(&good, "processed"), 7, "each POST processed once");
    // Refusing is load shedding, not a failure of the backend's.
    assert_eq!(failures(&lb, &refusing, "reset"), 0.0);
}

#[test]
fn a_post_above_a_goaway_last_stream_goes_to_another_backend_once() {
    let leaving = h2_backend(&["--goaway"]);
    let good = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&leaving, &good]);
    posts_answered(addr, 4);
    assert!(stats(&leaving, "refused") >= 1, "round robin sent it some");
    assert_eq!(stats(&good, "processed"), 4, "each POST processed once");
}

#[test]
fn a_post_reset_with_internal_error_is_not_sent_again() {
    let failing = h2_backend(&["--reset-internal"]);
    let good = h2_backend(&[]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&failing, &good]);
    let mut failed = 0;
    for i in 0..4 {
        let r = post_body(addr, &format!("/echo?{i}"), "body");
        match r.status {
            200 => assert_eq!(r.text(), format!("POST /echo?{i} 4 body")),
            502 => failed += 1,
            s => panic!("POST {i}: {s} {}", r.text()),
        }
    }
    // The backend may have processed what it reset: it is not sent elsewhere.
    assert!(failed >= 1, "round robin sent it some");
    assert_eq!(stats(&failing, "refused"), failed);
    assert_eq!(stats(&good, "processed"), 4 - failed);
}

#[test]
fn posts_waiting_for_room_on_a_connection_going_away_go_elsewhere_unblamed() {
    // One stream a connection: the others wait for room, and each connection goes away
    // at its first request, before they had any.
    let leaving = h2_backend(&["--goaway", "1"]);
    let good = h2_backend(&[]);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2(&dir, &[&leaving, &good]);
    concurrent_posts_answered(addr, 12);
    assert_eq!(stats(&good, "processed"), 12);
    assert_eq!(failures(&lb, &leaving, "connect"), 0.0);
}

#[test]
fn posts_above_a_restarting_backends_goaway_go_to_it_again_on_a_new_connection() {
    // The pool's only backend: its first connection takes four POSTs, answers the first
    // and sends GOAWAY above it, as a server restarting gracefully; its later connections
    // serve, as the new process would.
    let restarting = h2_backend(&["--restart"]);
    let dir = TempDir::new();
    let (lb, addr) = lb_h2(&dir, &[&restarting]);
    // The first connection is open, with the server's SETTINGS, before the POSTs come:
    // they all go on it.
    assert_eq!(get(addr, "/stats").status, 200);
    concurrent_posts_answered(addr, 4);
    assert_eq!(
        stats(&restarting, "refused"),
        3,
        "three were above the GOAWAY"
    );
    assert_eq!(
        stats(&restarting, "processed"),
        4,
        "each POST processed once"
    );
    for reason in ["connect", "reset"] {
        assert_eq!(failures(&lb, &restarting, reason), 0.0, "{reason}");
    }
}

#[test]
fn a_post_the_only_backend_refuses_every_time_gets_502_after_retries() {
    let refusing = h2_backend(&["--refuse"]);
    let dir = TempDir::new();
    let (_lb, addr) = lb_h2(&dir, &[&refusing]);
    // The default --retries is 2: three tries in all, each on the same backend, then 502.
    for round in 1..=2 {
        let r = post_body(addr, "/echo", "body");
        assert_eq!(r.status, 502, "round {round}: {}", r.text());
        assert_eq!(stats(&refusing, "refused"), 3 * round, "round {round}");
    }
}
