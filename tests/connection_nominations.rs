//! A Connection field that names a field lb frames, routes or identifies a message by
//! (issue 21, item 1). lb must drop what Connection names; dropping Content-Length or
//! Transfer-Encoding made the backend read the body as a request lb never saw. Now such
//! a request is refused before a byte reaches a backend (over plain HTTP, TLS, with two
//! workers and in a fanned-out POST), a named X-Request-Id or X-Forwarded-For is kept,
//! and a response that names its framing is a 502, never an answer without framing.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use common::tls::*;
use common::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/// What a nomination would have smuggled: a request with an address of its choosing.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n";
const WAIT: Duration = Duration::from_secs(10);

/// The requests that smuggled `SMUGGLED` past lb or stripped its Host, by what they name.
fn nominating(method: &str) -> [(&'static str, String); 3] {
    let n = SMUGGLED.len();
    [
        (
            "/cl",
            format!(
                "{method} /cl HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Content-Length\r\n\
                 Content-Length: {n}\r\n\r\n{SMUGGLED}"
            ),
        ),
        (
            "/te",
            format!(
                "{method} /te HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Transfer-Encoding\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{n:x}\r\n{SMUGGLED}\r\n0\r\n\r\n"
            ),
        ),
        (
            "/host",
            format!(
                "{method} /host HTTP/1.1\r\nHost: a\r\nConnection: Host\r\nContent-Length: 0\r\n\r\n"
            ),
        ),
    ]
}

/// A request naming X-Request-Id and X-Forwarded-For in Connection: both are kept.
fn naming_ours(method: &str) -> String {
    format!(
        "{method} /id HTTP/1.1\r\nHost: a\r\nConnection: close, X-Request-Id, X-Forwarded-For\r\n\
         X-Request-Id: key-21\r\nX-Forwarded-For: 10.9.8.7\r\nContent-Length: 2\r\n\r\nhi"
    )
}

/// Sends `raw` on a fresh connection made by `open` and reads the answer.
fn answer<S: Read + Write>(stream: S, raw: &str) -> Response {
    let mut c = Client::over(stream);
    c.send(raw.as_bytes());
    c.read_response(false)
        .expect("read an answer")
        .expect("an answer before close")
}

/// Every nominating request through `open` is refused with a 400 that closes, and no
/// byte of it reaches a backend; a nominated X-Request-Id and X-Forwarded-For reach
/// every backend. `marker` then goes through plain `lb_addr` to every backend, and once
/// each has it, nothing refused is there before it.
fn check<S: Read + Write>(
    open: impl Fn() -> S,
    method: &str,
    lb_addr: SocketAddr,
    backends: &[&RawBackend],
) {
    for (target, raw) in nominating(method) {
        let r = answer(open(), &raw);
        assert_eq!(r.status, 400, "{method} {target}: {}", r.text());
        assert_eq!(r.header("connection"), Some("close"), "{method} {target}");
    }
    let r = answer(open(), &naming_ours(method));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-request-id"), Some("key-21"));
    for b in backends {
        let kept = eventually(WAIT, || {
            let got = b.received();
            got.contains("\r\nX-Request-Id: key-21\r\n")
                && got.contains("\r\nX-Forwarded-For: 10.9.8.7, 127.0.0.1\r\n")
        });
        assert!(
            kept,
            "a nominated id or address was dropped:\n{}",
            b.received()
        );
    }
    let marker = format!("{method} /marker HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(answer(connect(lb_addr), &marker).status, 200);
    for b in backends {
        assert!(eventually(WAIT, || b.received().contains("/marker")));
        let got = b.received();
        for target in ["/smuggled", "/cl", "/te", "/host"] {
            assert!(
                !got.contains(target),
                "{method} {target} reached a backend:\n{got}"
            );
        }
    }
}

fn plain_lb(backends: &[&RawBackend], extra: &[&str]) -> Proc {
    let addrs: Vec<String> = backends.iter().map(|b| b.addr.to_string()).collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let mut args = vec!["--health-interval", "0"];
    args.extend_from_slice(extra);
    lb_addrs(&addrs, &args)
}

#[test]
fn a_nomination_smuggles_nothing_over_plain_http() {
    let b = RawBackend::start(OK);
    let lb = plain_lb(&[&b], &[]);
    check(|| connect(lb.addr), "PUT", lb.addr, &[&b]);
}

#[test]
fn a_nomination_smuggles_nothing_over_tls() {
    let b = RawBackend::start(OK);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &["--health-interval", "0"]);
    let (config, addr) = (site.ca.client_config(), tls_addr(&lb));
    check(
        || tls_connect(&config, addr, "localhost"),
        "PUT",
        lb.addr,
        &[&b],
    );
}

#[test]
fn a_nomination_smuggles_nothing_with_two_workers() {
    let b = RawBackend::start(OK);
    let lb = plain_lb(&[&b], &["--workers", "2"]);
    check(|| connect(lb.addr), "PUT", lb.addr, &[&b]);
}

#[test]
fn a_nomination_smuggles_nothing_into_a_fanned_out_post() {
    let (a, b) = (RawBackend::start(OK), RawBackend::start(OK));
    let lb = plain_lb(&[&a, &b], &[]);
    check(|| connect(lb.addr), "POST", lb.addr, &[&a, &b]);
}

/// What a keep-alive client gets when the backend's answer names its own framing.
fn keep_alive_answer(reply: &[u8]) -> Response {
    let b = RawBackend::start(reply);
    let lb = plain_lb(&[&b], &[]);
    let mut c = Client::new(lb.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c.read_response(false)
        .expect("a framed answer (an unframed one leaves this read waiting for a close)")
        .expect("an answer before close")
}

#[test]
fn a_response_that_names_its_content_length_is_a_502_not_an_unframed_answer() {
    let r = keep_alive_answer(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.header("content-length").is_some());
    assert!(!r.text().contains("hello"));
}

#[test]
fn a_response_that_names_its_transfer_encoding_is_a_502() {
    let r = keep_alive_answer(
        b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("hello"));
}
