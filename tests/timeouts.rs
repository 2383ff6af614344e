//! Every wait on a client has a deadline, and a client's stall is the client's
//! (issue 16, items 4 and 6): a POST body that stops arriving gets 408, and a client
//! that stops sending its body or reading its answer never takes a healthy backend out.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, backend, get, lb};

/// Flags that make a backend blamed for any timeout go DOWN at once and stay down.
const BLAME_AT_ONCE: &[&str] = &[
    "--server-timeout",
    "500ms",
    "--client-timeout",
    "1500ms",
    "--fall",
    "1",
    "--health-interval",
    "60s",
];

fn status_of(c: &mut Client) -> Option<u16> {
    c.read_response(false).ok().flatten().map(|r| r.status)
}

fn assert_backend_still_up(lb: &common::Proc, addr: SocketAddr) {
    let r = get(addr, "/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), lb.log_text());
    assert!(!lb.log_text().contains("DOWN"), "{}", lb.log_text());
}

#[test]
fn a_post_body_that_stops_arriving_gets_408() {
    let b = backend("b1", &[]);
    let lb = lb(
        &[&b],
        &["--client-timeout", "300ms", "--max-connections", "2"],
    );
    // Two stalled bodies hold every slot --max-connections allows...
    let mut stalled: Vec<Client> = (0..2).map(|_| Client::new(lb.addr)).collect();
    for c in &mut stalled {
        c.send(b"POST /register HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nuser");
    }
    let started = Instant::now();
    for c in &mut stalled {
        assert_eq!(status_of(c), Some(408));
        assert!(c.closed_within(Duration::from_secs(2)));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // ...until the timeout frees them.
    assert_eq!(get(lb.addr, "/").status, 200);
}

#[test]
fn a_client_that_does_not_read_its_answer_is_not_the_backends_fault() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], BLAME_AT_ONCE);
    let mut slow = Client::new(lb.addr);
    slow.send(b"GET /bytes/1000000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    // Never read: lb's buffers and the kernel's fill, and the backend has to wait.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !lb.log_text().contains("backend b"),
        "the stall was blamed on the backend:\n{}",
        lb.log_text()
    );
    assert_backend_still_up(&lb, lb.addr);
    drop(slow);
}

#[test]
fn a_client_that_stops_sending_its_body_gets_408_and_no_backend_is_blamed() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], BLAME_AT_ONCE);
    let mut slow = Client::new(lb.addr);
    slow.send(b"PUT /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nonly a little");
    let started = Instant::now();
    assert_eq!(status_of(&mut slow), Some(408), "{}", lb.log_text());
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(slow.closed_within(Duration::from_secs(2)));
    assert_backend_still_up(&lb, lb.addr);
}

#[test]
fn a_backend_that_stops_answering_is_still_timed() {
    let b = backend("b1", &["--delay", "3s"]);
    let lb = lb(
        &[&b],
        &["--server-timeout", "300ms", "--health-interval", "0"],
    );
    let mut c = Client::new(lb.addr);
    c.stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("send");
    assert_eq!(status_of(&mut c), Some(504));
}
