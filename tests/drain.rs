//! Stopping on SIGTERM/SIGINT: lb refuses new clients at once, finishes what is in
//! progress (requests, TCP sessions, POST copies), then exits; a deadline or a second
//! signal cuts it short with exit code 1 and a log line saying what was lost.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

fn refused(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

fn registered(b: &Proc, user: &str) -> bool {
    let r = get(b.addr, &format!("/users/{user}"));
    r.status == 200
}

/// lb in front of a backend that answers after `delay`, one GET on its way, then SIGTERM.
fn signalled_during_a_slow_request(delay: &str) -> (Proc, Proc, Client) {
    let slow = backend("slow", &["--delay", delay]);
    let lb = lb(&[&slow], &[]);
    let mut client = Client::new(lb.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    lb.signal(libc::SIGTERM);
    (slow, lb, client)
}

#[test]
fn a_request_in_progress_finishes_and_new_clients_are_refused() {
    let (_slow, mut lb, mut client) = signalled_during_a_slow_request("1s");
    assert!(
        eventually(Duration::from_secs(2), || refused(lb.addr)),
        "new connections are still accepted while draining"
    );
    let r = client
        .read_response(false)
        .expect("read")
        .expect("the request in progress is answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(client.closed_within(Duration::from_secs(2)));
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(5)),
        Some(0),
        "{}",
        lb.log_text()
    );
    assert!(lb.log_text().contains("SIGTERM: stopped accepting"));
}

#[test]
fn idle_keep_alive_clients_are_closed_and_lb_exits_at_once() {
    let b = backend("b", &[]);
    let mut lb = lb(&[&b], &[]);
    let mut idle = Client::new(lb.addr);
    assert_eq!(idle.get("/").status, 200);
    lb.signal(libc::SIGINT);
    assert!(idle.closed_within(Duration::from_secs(2)));
    assert_eq!(lb.exit_code_within(Duration::from_secs(2)), Some(0));
    assert!(lb.log_text().contains("SIGINT: stopped accepting"));
}

#[test]
fn a_pending_post_copy_is_delivered_before_exit() {
    let up = backend("up", &[]);
    let late_addr = format!("127.0.0.1:{}", free_port());
    let up_addr = up.addr.to_string();
    let mut lb = lb_addrs(&[&up_addr, &late_addr], FAST_RETRIES);
    assert_eq!(
        post(lb.addr, "/register?username=ann&password=p").status,
        201
    );
    lb.signal(libc::SIGTERM);
    assert!(lb.wait_log("1 POST copies", Duration::from_secs(2)));
    assert_eq!(
        lb.exit_code_within(Duration::from_millis(700)),
        None,
        "lb exited with a write still undelivered"
    );
    let late = backend_on("late", &late_addr, &[]);
    assert_eq!(
        lb.exit_code_within(Duration::from_secs(10)),
        Some(0),
        "{}",
        lb.log_text()
    );
    assert!(registered(&late, "ann"));
}

#[test]
fn the_drain_timeout_exits_1_and_names_the_lost_copies() {
    let up = backend("up", &[]);
    let never = format!("127.0.0.1:{}", free_port());
    let up_addr = up.addr.to_string();
    let extra: Vec<&str> = FAST_RETRIES
        .iter()
        .copied()
        .chain(["--drain-timeout", "500ms"])
        .collect();
    let mut lb = lb_addrs(&[&up_addr, &never], &extra);
    assert_eq!(
        post(lb.addr, "/register?username=bob&password=p").status,
        201
    );
    lb.signal(libc::SIGTERM);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(1));
    let log = lb.log_text();
    assert!(
        log.contains("--drain-timeout passed")
            && log.contains(&format!("undelivered: 1 to {never}")),
        "{log}"
    );
}

#[test]
fn a_second_signal_stops_at_once() {
    let (_slow, mut lb, _client) = signalled_during_a_slow_request("10s");
    assert!(lb.wait_log("stopped accepting", Duration::from_secs(2)));
    assert_eq!(lb.exit_code_within(Duration::from_millis(500)), None);
    lb.signal(libc::SIGTERM);
    assert_eq!(lb.exit_code_within(Duration::from_secs(2)), Some(1));
    assert!(
        lb.log_text()
            .contains("SIGTERM while draining: exiting with 1 HTTP and 0 TCP connection(s) open"),
        "{}",
        lb.log_text()
    );
}

#[test]
fn a_tcp_session_goes_on_until_it_closes() {
    let b = backend("b", &[]);
    let mut lb = lb(&[&b], &["-m", "tcp"]);
    let mut session = connect(lb.addr);
    let ask = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut answer = [0u8; 256];
    session.write_all(ask).expect("send");
    assert!(session.read(&mut answer).expect("answer") > 0);
    lb.signal(libc::SIGTERM);
    assert!(eventually(Duration::from_secs(2), || refused(lb.addr)));
    session.write_all(ask).expect("send while draining");
    let n = session.read(&mut answer).expect("answer while draining");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(lb.exit_code_within(Duration::from_millis(300)), None);
    drop(session);
    assert_eq!(lb.exit_code_within(Duration::from_secs(5)), Some(0));
}

#[test]
fn sighup_neither_kills_nor_stops_lb() {
    let b = backend("b", &[]);
    let mut lb = lb(&[&b], &[]);
    let mut client = Client::new(lb.addr);
    assert_eq!(client.get("/").status, 200);
    lb.signal(libc::SIGHUP);
    assert!(
        lb.wait_log("SIGHUP", Duration::from_secs(2)),
        "{}",
        lb.log_text()
    );
    assert_eq!(lb.exit_code_within(Duration::from_millis(300)), None);
    assert_eq!(
        client.get("/").status,
        200,
        "the keep-alive client is served on"
    );
    assert_eq!(get(lb.addr, "/").status, 200, "new clients are accepted");
}
