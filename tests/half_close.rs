//! A client that half-closes after a complete request still gets its answer
//! (issue 16, item 5): `shutdown(SHUT_WR)` is not a disconnect.

mod common;

use std::net::Shutdown;

use common::{Client, backend, lb};

fn send_then_half_close(addr: std::net::SocketAddr, raw: &[u8]) -> Client {
    let mut c = Client::new(addr);
    c.send(raw);
    c.stream.shutdown(Shutdown::Write).expect("half-close");
    c
}

#[test]
fn a_put_with_a_body_then_half_close_is_answered() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = send_then_half_close(
        lb.addr,
        b"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    let r = c.read_response(false).expect("answer").expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello");
    assert!(c.closed_within(std::time::Duration::from_secs(2)));
}

#[test]
fn a_chunked_put_then_half_close_is_answered() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = send_then_half_close(
        lb.addr,
        b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let r = c.read_response(false).expect("answer").expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "hello");
}

#[test]
fn a_delete_with_a_body_then_half_close_reaches_the_backend() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = send_then_half_close(
        lb.addr,
        b"DELETE /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nid",
    );
    let r = c.read_response(false).expect("answer").expect("an answer");
    // The demo backend does not delete: its own refusal proves the request reached it.
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn pipelined_requests_then_half_close_are_all_answered() {
    let b = backend("b1", &[]);
    let lb = lb(&[&b], &[]);
    let mut c = send_then_half_close(
        lb.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /login HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for _ in 0..3 {
        let r = c.read_response(false).expect("answer").expect("an answer");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(c.closed_within(std::time::Duration::from_secs(2)));
}
