//! Framing fields a response may not carry as they came (issue 16, item 9).

mod common;

use std::time::Duration;

use common::{RawBackend, exchange_raw, lb_addrs};

/// What a client gets for one keep-alive GET when the backend answers `reply`.
fn through_lb(reply: &[u8]) -> (String, bool) {
    let backend = RawBackend::start(reply);
    let addr = backend.addr.to_string();
    let lb = lb_addrs(&[&addr], &["--health-interval", "0"]);
    exchange_raw(
        lb.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_millis(1500),
    )
}

#[test]
fn a_204_goes_out_without_content_length() {
    let (answer, _) = through_lb(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 204 "), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("content-length"),
        "{answer}"
    );
}

#[test]
fn a_304_goes_out_without_framing_fields() {
    let (answer, closed) =
        through_lb(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 304 "), "{answer}");
    assert!(answer.contains("ETag: \"x\""), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("content-length"),
        "{answer}"
    );
    assert!(!closed, "a 304 needs no close");
}

#[test]
fn an_http_1_0_chunked_response_closes_the_client_connection() {
    let (answer, closed) =
        through_lb(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.0 200 "), "{answer}");
    assert!(answer.contains("hello"), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");
    assert!(closed, "the client connection stayed open:\n{answer}");
}
