//! What a client or backend field may change in the head lb forwards (issue 21): Connection
//! nominations, several X-Request-Ids, absolute-form targets, Upgrade lists and 101s.

use super::tests::{GET11, request, status_of};
use super::*;
use crate::buffer::BufferPool;

#[test]
fn a_request_whose_connection_names_its_framing_or_host_is_refused() {
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 3\r\n\r\nabc"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: HOST\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: a, Host\r\n\r\n",
        // Named without being sent: still no honest client.
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive, Content-Length\r\n\r\n",
    ] {
        assert_eq!(status_of(raw), 400, "{}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn naming_what_lb_or_a_proxy_before_it_asserts_removes_nothing() {
    let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\
        Connection: X-Request-Id, X-Forwarded-For, Forwarded, X-Real-IP, x-forwarded-host, X-Secret\r\n\
        X-Request-Id: key-1\r\nX-Forwarded-For: 1.1.1.1\r\nForwarded: for=1.1.1.1\r\n\
        X-Real-IP: 1.1.1.1\r\nX-Forwarded-Host: h\r\nX-Secret: s\r\n\r\n";
    let (head, out) = request(raw).unwrap().unwrap();
    assert_eq!(head.request_id.as_str(), "key-1");
    assert_eq!(
        out,
        "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: key-1\r\n\
         X-Forwarded-For: 1.1.1.1, 10.0.0.7\r\nForwarded: for=1.1.1.1\r\nX-Real-IP: 1.1.1.1\r\n\
         X-Forwarded-Host: h\r\nX-Forwarded-Proto: http\r\n\r\n",
        "only X-Secret and Connection go"
    );
}

#[test]
fn a_response_whose_connection_names_its_framing_is_refused() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(
            super::tests::response(raw, GET11).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    let (_, out) = super::tests::response(
        b"HTTP/1.1 200 OK\r\nConnection: X-Request-Id, X-B\r\nX-Request-Id: r\r\nX-B: 1\r\n\
          Content-Length: 0\r\n\r\n",
        GET11,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nX-Request-Id: r\r\nContent-Length: 0\r\n\r\n"
    );
}

#[test]
fn an_absolute_form_target_goes_out_in_origin_form_with_its_own_host() {
    let raw = b"GET http://evil.example/admin?a HTTP/1.1\r\nHost: good.example\r\nA: b\r\n\r\n";
    let (head, out) = request(raw).unwrap().unwrap();
    assert_eq!(&raw[head.path.0..head.path.1], b"/admin?a");
    assert_eq!(
        out,
        "GET /admin?a HTTP/1.1\r\nA: b\r\nX-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n\
         X-Request-Id: 00000000-0000-4000-8000-000000000abc\r\nHost: evil.example\r\n\r\n"
    );
    let (_, out) = request(b"GET HTTP://a.example:81?q HTTP/1.0\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(out.starts_with("GET /?q HTTP/1.1\r\n"), "{out}");
    assert!(out.contains("\r\nHost: a.example:81\r\n"), "{out}");
    for raw in [
        &b"GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n"[..],
        b"GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a.example\r\n\r\n",
        // One Host is still required in HTTP/1.1 (RFC 9112 §3.2).
        b"GET http://a.example/ HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(status_of(raw), 400, "{}", String::from_utf8_lossy(raw));
    }
    assert_eq!(status_of(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
}

#[test]
fn h2c_is_taken_out_of_any_upgrade_list() {
    for (offer, forwarded) in [
        ("websocket, h2c", "websocket"),
        ("h2c, foo", "foo"),
        ("h2c,foo , H2C, bar/1", "foo, bar/1"),
    ] {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nupgrade: {offer}\r\nX: y\r\n\r\n"
        );
        let (head, out) = request(raw.as_bytes()).unwrap().unwrap();
        let (start, end) = head.upgrade.expect("an upgrade");
        assert_eq!(&raw[start..end], offer);
        assert!(
            out.contains(&format!("\r\nupgrade: {forwarded}\r\nX: y\r\n")),
            "{out}"
        );
        assert!(!out.to_ascii_lowercase().contains("h2c"), "{out}");
    }
}

fn switch(answer: &str, offered: &str) -> Result<(), &'static str> {
    let raw = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n{answer}\r\n");
    let mut pool = BufferPool::new(64 * 1024, 1);
    let mut out = pool.get();
    let client = ClientSide {
        upgrade: true,
        ..GET11
    };
    let id = RequestId::uuid(1);
    parse_response(
        raw.as_bytes(),
        client,
        offered.as_bytes(),
        (&id, None),
        &mut out,
    )
    .map(|_| ())
}

#[test]
fn a_101_must_switch_to_a_protocol_the_request_offered() {
    assert!(switch("Upgrade: websocket\r\n", "websocket").is_ok());
    assert!(switch("Upgrade: WebSocket\r\n", "foo, websocket").is_ok());
    assert!(switch("Upgrade: foo/2\r\n", "foo").is_ok());
    assert!(switch("Upgrade: foo\r\n", "websocket").is_err());
    assert!(switch("Upgrade: websocket, foo\r\n", "websocket").is_err());
    assert!(switch("Upgrade: foo\r\n", "foo/2").is_err());
    assert!(switch("Upgrade: h2c\r\n", "websocket, h2c").is_err());
    assert!(switch("", "websocket").is_err(), "a 101 names its protocol");
    assert!(switch("Upgrade: \r\n", "websocket").is_err());
}

#[test]
fn a_grpc_call_forwards_te_trailers_and_other_requests_do_not() {
    let grpc = b"POST /a.B/C HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\n\
        TE: trailers\r\nContent-Length: 0\r\n\r\n";
    let (head, out) = request(grpc).unwrap().unwrap();
    assert!(head.grpc.grpc);
    assert!(out.contains("\r\nTE: trailers\r\n"), "{out}");
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\nTE: gzip\r\n\
          Content-Length: 0\r\n\r\n",
    ] {
        let (_, out) = request(raw).unwrap().unwrap();
        assert!(!out.to_lowercase().contains("te: "), "{out}");
    }
}
