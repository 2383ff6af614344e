//! lb's own limits (issue 16, items 3 and 10): running out of descriptors must neither
//! stop lb accepting for good nor take a healthy backend out, and clients beyond
//! --max-connections wait in a deep backlog instead of being dropped.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, backend, eventually, lb, lb_with_fd_limit};

/// Up to `n` connections that lb accepts or queues; stops once three in a row cannot
/// even connect (the backlog is full).
fn crowd(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    let mut failed_in_a_row = 0;
    while held.len() < n && failed_in_a_row < 3 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(common::IO_TIMEOUT));
                held.push(s);
                failed_in_a_row = 0;
            }
            Err(_) => failed_in_a_row += 1,
        }
    }
    held
}

/// The status of `GET /` on a fresh connection, or `None` if no answer came in a second.
fn try_get(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[test]
fn clients_queued_while_out_of_descriptors_are_answered() {
    let b = backend("b1", &[]);
    // --max-connections given: kept as asked, far past what 64 descriptors allow.
    let lb = lb_with_fd_limit(
        &[&b],
        &["--health-interval", "0", "--max-connections", "10000"],
        64,
    );
    // More clients than lb has descriptors: the rest wait in the backlog, and no new
    // connection will come to announce them once descriptors are free again.
    let held = crowd(lb.addr, 120);
    assert_eq!(held.len(), 120);
    let mut clients: Vec<Client> = held.into_iter().map(Client::from_stream).collect();
    for c in &mut clients {
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        // 503 while lb cannot open a backend connection; never silence.
        let r = c.read_response(false);
        let status = r.as_ref().ok().and_then(|r| r.as_ref()).map(|r| r.status);
        assert!(
            matches!(status, Some(200 | 503)),
            "client {i}: {r:?}\n{}",
            lb.log_text()
        );
    }
    assert_eq!(try_get(lb.addr), Some(200));
}

#[test]
fn running_out_of_descriptors_is_not_the_backends_fault() {
    let b = backend("b1", &[]);
    let lb = lb_with_fd_limit(
        &[&b],
        &[
            "--fall",
            "1",
            "--health-interval",
            "60s",
            "--retries",
            "0",
            "--max-connections",
            "10000",
        ],
        64,
    );
    let mut first = Client::new(lb.addr);
    let held = crowd(lb.addr, 80);
    std::thread::sleep(Duration::from_millis(300));
    // Every descriptor is taken by a client: lb cannot open one to the backend.
    first.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = first
        .read_response(false)
        .expect("an answer")
        .expect("an answer before close");
    assert_eq!(r.status, 503, "{}", r.text());
    drop((first, held));
    assert!(
        eventually(Duration::from_secs(5), || try_get(lb.addr) == Some(200)),
        "the healthy backend was taken out:\n{}",
        lb.log_text()
    );
    assert!(!lb.log_text().contains("DOWN"), "{}", lb.log_text());
}

#[test]
fn the_default_connection_count_fits_the_descriptor_limit_without_a_warning() {
    let b = backend("b1", &[]);
    // 4096 descriptors, --pool-size 128 for one backend, 64 in reserve: 1952 clients.
    let quiet = lb_with_fd_limit(&[&b], &[], 4096);
    let log = quiet.log_text();
    assert!(
        log.contains("INFO  --max-connections 1952: the default 10000"),
        "{log}"
    );
    assert!(!log.contains("WARN"), "{log}");
    assert_eq!(try_get(quiet.addr), Some(200));
    // A count the operator asked for stays, and the shortfall is a warning.
    let asked = lb_with_fd_limit(&[&b], &["--max-connections", "10000"], 4096);
    assert!(
        asked.log_text().contains(
            "WARN  --max-connections 10000 may need 20192 file descriptors, but lb may open \
             only 4096"
        ),
        "{}",
        asked.log_text()
    );
}

#[test]
fn clients_over_max_connections_wait_in_the_backlog() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &["--max-connections", "10"]);
    let mut holders: Vec<Client> = (0..10).map(|_| Client::new(lb.addr)).collect();
    for h in &mut holders {
        assert_eq!(h.get("/").status, 200);
    }
    // lb takes no more clients now; the kernel must queue these, not drop them.
    let waiting = crowd(lb.addr, 300);
    assert_eq!(waiting.len(), 300, "clients were dropped, not queued");
    let mut waiting: Vec<Client> = waiting.into_iter().map(Client::from_stream).collect();
    for w in &mut waiting {
        w.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    }
    drop(holders);
    for w in &mut waiting {
        let r = w.read_response(false).expect("answer").expect("answer");
        assert_eq!(r.status, 200);
    }
}
