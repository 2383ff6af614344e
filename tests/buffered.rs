//! What POSTs make lb hold (issue 21, items 3 and 4): bodies still arriving count against
//! one process-wide bound, --max-buffered-bytes, past which a new POST gets 503 at once; a
//! body must keep coming at --client-min-rate, judged once per --client-timeout window,
//! so that a trickle after a fast start cannot hold its buffer; the delivered answer to a
//! POST streams to its client, so that one that does not read holds what a GET's would;
//! and a refusal kept whole for its client counts against the same bound.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Bytes of a 64 KiB body that the clients holding the bound send before they stall.
const MOST: usize = 60_000;

fn buffered(admin: SocketAddr) -> f64 {
    metric(admin, "lb_fanout_buffered_bytes")
}

/// A POST declaring a 64 KiB body, and the first `sent` bytes of it.
fn start_post(addr: SocketAddr, sent: usize) -> Client {
    let mut c = Client::new(addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n");
    c.send(&vec![b'x'; sent]);
    c
}

/// The answer to a POST of 64 KiB that asks for `100-continue` first.
fn post_64k(addr: SocketAddr) -> Response {
    let mut c = Client::new(addr);
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\nExpect: 100-continue\r\n\r\n",
    );
    c.read_response(false)
        .expect("an answer before the body is sent")
        .expect("an answer before close")
}

fn bound_holds(extra: &[&str]) {
    let b = backend("b1", &[]);
    let mut flags = vec![
        "--admin",
        "127.0.0.1:0",
        "--max-body",
        "64k",
        "--max-buffered-bytes",
        "256k",
        "--client-timeout",
        "60s",
    ];
    flags.extend_from_slice(extra);
    let lb = lb(&[&b], &flags);
    let admin = admin_addr(&lb);
    // Four bodies of just under 64 KiB each, stalled: most of the 256 KiB.
    let held: Vec<Client> = (0..4).map(|_| start_post(lb.addr, MOST)).collect();
    assert!(
        eventually(Duration::from_secs(10), || buffered(admin)
            >= (4 * MOST) as f64),
        "the bodies arriving are counted: {}",
        get(admin, "/metrics").text()
    );
    // A fifth would not fit: 503 at once, before its body, and the connection closes.
    for _ in 0..3 {
        let r = post_64k(lb.addr);
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(r.text().contains("--max-buffered-bytes"), "{}", r.text());
    }
    // The bound is on bytes: a small POST still fits.
    let r = post_body(lb.addr, "/echo", "small");
    assert_eq!((r.status, r.text().as_str()), (200, "small"));
    assert!(buffered(admin) <= (256 * 1024) as f64);
    assert!(metric(admin, "lb_fanout_refused_buffers_total") >= 3.0);
    assert_eq!(
        lb.log_text().matches("up to --max-buffered-bytes").count(),
        1,
        "said once, not per POST:\n{}",
        lb.log_text()
    );
    // The held bodies were never at fault: once whole, they are served.
    for mut c in held {
        c.send(&vec![b'x'; 65536 - MOST]);
        let r = c.read_response(false).expect("answer").expect("answer");
        assert_eq!((r.status, r.body.len()), (200, 65536));
    }
    assert!(eventually(Duration::from_secs(10), || buffered(admin) == 0.0));
    assert!(
        lb.wait_log("were at --max-buffered-bytes", Duration::from_secs(5)),
        "the all-clear is said once the bytes held fall:\n{}",
        lb.log_text()
    );
    let r = start_post(lb.addr, 65536)
        .read_response(false)
        .expect("answer")
        .expect("answer");
    assert_eq!(r.status, 200, "taken again");
}

#[test]
fn past_max_buffered_bytes_new_posts_get_503_at_once() {
    bound_holds(&[]);
}

#[test]
fn max_buffered_bytes_bounds_the_whole_process_with_workers() {
    bound_holds(&["--workers", "2"]);
}

/// Sends a byte every `every` until an answer head comes back or `within` passes; what
/// came back.
fn trickle(s: &mut TcpStream, every: Duration, within: Duration) -> String {
    s.set_read_timeout(Some(every)).expect("timeout");
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        // Fails once lb has closed; what it answered is still to be read.
        let _ = s.write(b"x");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_body_that_trickles_after_a_fast_start_gets_408_though_it_keeps_sending() {
    let b = backend("b1", &[]);
    let lb = lb(
        &[&b],
        &[
            "--admin",
            "127.0.0.1:0",
            "--client-timeout",
            "400ms",
            "--client-min-rate",
            "1k",
        ],
    );
    let admin = admin_addr(&lb);
    // A buffered POST body and a PUT body that streams to its backend alike.
    for method in ["POST /echo", "PUT /sink"] {
        let mut c = connect(lb.addr);
        let head = format!("{method} HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
        c.write_all(head.as_bytes()).expect("head");
        // Far more than many windows' worth at once: a rate measured since the start
        // would owe this client a minute of trickling.
        c.write_all(&[b'x'; 60_000]).expect("a fast start");
        // Then a byte every 50 ms, each of which used to push the client's timer back.
        let got = trickle(&mut c, Duration::from_millis(50), Duration::from_secs(20));
        assert!(got.starts_with("HTTP/1.1 408"), "{method}: {got:?}");
        assert!(got.contains("Connection: close"), "{got}");
    }
    assert!(metric(admin, "lb_client_too_slow_total") >= 2.0);
    assert!(
        lb.wait_log("cut off sending its request body", Duration::from_secs(5)),
        "{}",
        lb.log_text()
    );
}

#[test]
fn a_slow_body_that_keeps_the_rate_is_served() {
    let b = backend("b1", &[]);
    let lb = lb(
        &[&b],
        &["--client-timeout", "1s", "--client-min-rate", "1k"],
    );
    for method in ["POST /echo", "PUT /echo"] {
        let mut c = Client::new(lb.addr);
        c.send(format!("{method} HTTP/1.1\r\nHost: t\r\nContent-Length: 40000\r\n\r\n").as_bytes());
        // 20 KiB a second, over two windows that each ask for 1 KiB.
        for _ in 0..20 {
            c.send(&[b'y'; 2000]);
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = c.read_response(false).expect("answer").expect("answer");
        assert_eq!((r.status, r.body.len()), (200, 40000), "{method}");
    }
}

/// A backend that answers every request head with `status` and a body of `len` bytes.
fn answering(status: &str, len: usize) -> RawBackend {
    let mut reply = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    reply.resize(reply.len() + len, b'z');
    RawBackend::start(&reply)
}

/// Reads from `s` until `n` bytes came; what came.
fn read_at_least(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < n {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => panic!("after {} bytes: {e}", got.len()),
        }
    }
    got
}

/// Eight clients POST and read only the first 64 KiB of an 8 MiB answer.
fn slow_readers_of_a_large_answer(extra: &[&str]) {
    const ANSWER: usize = 8 << 20;
    let big = answering("200 OK", ANSWER);
    let mut flags = vec!["--health-interval", "0"];
    flags.extend_from_slice(extra);
    let lb = lb_addrs(&[&big.addr.to_string()], &flags);
    let before = lb.rss_kib();
    let mut readers: Vec<(TcpStream, Vec<u8>)> = (0..8)
        .map(|_| {
            let mut s = connect(lb.addr);
            s.write_all(b"POST /write HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
                .expect("send");
            let first = read_at_least(&mut s, 64 * 1024);
            (s, first)
        })
        .collect();
    // Each client had its first bytes at once; none of the answers is held whole.
    let grown = lb.rss_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "8 clients not reading an 8 MiB answer to a POST grew lb by {grown} KiB"
    );
    // Read to its end, the answer is whole.
    let (mut s, first) = readers.pop().expect("a reader");
    let head = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head first")
        + 4;
    assert!(first.starts_with(b"HTTP/1.1 200"), "{:?}", &first[..head]);
    let rest = read_at_least(&mut s, head + ANSWER - first.len());
    assert_eq!(first.len() + rest.len(), head + ANSWER);
}

#[test]
fn the_answer_to_a_post_streams_to_a_client_that_does_not_read() {
    slow_readers_of_a_large_answer(&[]);
}

#[test]
fn with_a_journal_the_answer_streams_once_the_write_is_durable() {
    let dir = std::env::temp_dir().join(format!("lb-test-buffered-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let arg = dir.to_str().expect("a UTF-8 temp path").to_string();
    slow_readers_of_a_large_answer(&["--journal", &arg]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refusal_kept_for_its_client_counts_against_the_bound() {
    const REFUSAL: usize = 300 * 1024;
    let refuser = answering("404 Not Found", REFUSAL);
    // Nothing listens there: the write stays open while its copy is retried, and the
    // refusal is kept for the client meanwhile.
    let dead = format!("127.0.0.1:{}", free_port());
    let backends = [refuser.addr.to_string(), dead];
    let backends: Vec<&str> = backends.iter().map(String::as_str).collect();
    let retried = [
        "--admin",
        "127.0.0.1:0",
        "--health-interval",
        "0",
        "--retry-attempts",
        "4",
        "--retry-base",
        "500ms",
        "--retry-jitter",
        "0",
        "--max-body",
        "64k",
    ];
    let lb1 = lb_addrs(
        &backends,
        &[&retried[..], &["--max-buffered-bytes", "1m"]].concat(),
    );
    let admin = admin_addr(&lb1);
    let mut c = Client::new(lb1.addr);
    c.send(b"POST /write HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    assert!(
        eventually(Duration::from_secs(10), || buffered(admin)
            >= REFUSAL as f64),
        "the refusal kept is counted: {}",
        get(admin, "/metrics").text()
    );
    let r = c.read_response(false).expect("answer").expect("answer");
    assert_eq!((r.status, r.body.len()), (404, REFUSAL));
    assert!(eventually(Duration::from_secs(5), || buffered(admin) == 0.0));
    // With no room for it under the bound, only its status is kept.
    let lb2 = lb_addrs(
        &backends,
        &[&retried[..], &["--max-buffered-bytes", "200k"]].concat(),
    );
    let r = post(lb2.addr, "/write");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("too large to keep"), "{}", r.text());
}

#[test]
fn a_client_too_slow_to_take_a_kept_refusal_is_cut_off() {
    // Far more than the kernel's socket buffers take, so lb holds the rest meanwhile.
    const REFUSAL: usize = 24 << 20;
    let refuser = answering("404 Not Found", REFUSAL);
    let dead = format!("127.0.0.1:{}", free_port());
    let backends = [refuser.addr.to_string(), dead];
    let backends: Vec<&str> = backends.iter().map(String::as_str).collect();
    let lb = lb_addrs(
        &backends,
        &[
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "0",
            "--retry-attempts",
            "2",
            "--retry-base",
            "200ms",
            "--max-buffered-bytes",
            "32m",
            "--fanout-max-response",
            "32m",
            "--client-timeout",
            "2s",
            "--client-min-rate",
            "4m",
        ],
    );
    let admin = admin_addr(&lb);
    let mut s = connect(lb.addr);
    s.write_all(b"POST /write HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        .expect("send");
    // Taken at about 1.6 MB a second, a little every 20 ms: often enough to push the
    // client's timer back each time, as it used to be, but below the rate asked.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 32 * 1024];
            let mut got = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got += n,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Then whatever lb had written before it let go, at full speed.
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            while let Ok(n @ 1..) = s.read(&mut buf) {
                got += n;
            }
            got
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || buffered(admin)
            >= REFUSAL as f64),
        "the refusal is kept: {}",
        lb.log_text()
    );
    let let_go = eventually(Duration::from_secs(20), || buffered(admin) == 0.0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let got = reader.join().expect("reader");
    assert!(
        let_go,
        "the slow reader still holds its answer:\n{}",
        lb.log_text()
    );
    assert!(
        got < REFUSAL,
        "it was served whole ({got} bytes), not cut off"
    );
    assert!(metric(admin, "lb_client_too_slow_total") >= 1.0);
    assert!(lb.log_text().contains("cut off taking its answer"));
}
