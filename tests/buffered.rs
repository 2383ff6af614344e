//! What POSTs make lb hold (issue 21, item 3): bodies still arriving count against one
//! process-wide bound, --max-buffered-bytes, past which a new POST gets 503 at once; a
//! body must keep coming at --client-min-rate, judged once per --client-timeout window,
//! so that a trickle after a fast start cannot hold its buffer.

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
