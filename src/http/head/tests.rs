use super::*;
use crate::buffer::BufferPool;
use std::net::Ipv4Addr;

fn info() -> ForwardInfo<'static> {
    ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        fresh_id: RequestId::uuid(0xabc),
        default_host: "lb.local",
        tls: false,
    }
}

pub(super) fn request(raw: &[u8]) -> Result<Option<(RequestHead, String)>, Reject> {
    let mut pool = BufferPool::new(64 * 1024, 1);
    let mut out = pool.get();
    let table = RouteTable::everything_to("default");
    let mut scratch = vec![0; 2 * (MAX_REQUEST_LINE + 2)];
    let routing = Routing {
        table: &table,
        scratch: &mut scratch,
    };
    parse_request(raw, &info(), &mut out, routing)
        .map(|r| r.map(|h| (h, String::from_utf8_lossy(out.data()).into_owned())))
}

pub(super) fn status_of(raw: &[u8]) -> u16 {
    match request(raw) {
        Err(r) => r.status,
        Ok(Some(_)) => 200,
        Ok(None) => 0,
    }
}

#[test]
fn forwards_headers_and_adds_proxy_fields() {
    let raw = b"GET /a?b HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nAccept: */*\r\nX-Forwarded-Proto: https\r\nKeep-Alive: 5\r\n\r\nrest";
    let (head, out) = request(raw).unwrap().unwrap();
    assert_eq!(head.len, raw.len() - 4);
    assert_eq!(head.method, Method::Get);
    assert!(head.keep_alive);
    assert_eq!(&raw[head.path.0..head.path.1], b"/a?b");
    assert_eq!(
        out,
        "GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.7\r\n\
         X-Forwarded-Proto: http\r\nX-Request-Id: 00000000-0000-4000-8000-000000000abc\r\n\r\n"
    );
    assert_eq!(
        head.request_id.as_str(),
        "00000000-0000-4000-8000-000000000abc"
    );
}

#[test]
fn appends_to_existing_forwarded_for_and_keeps_request_id() {
    let raw = b"POST / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\nContent-Length: 3\r\n\r\nabc";
    let (head, out) = request(raw).unwrap().unwrap();
    assert_eq!(head.framing, Framing::Length(3));
    assert_eq!(head.request_id.as_str(), "abc-1");
    assert_eq!(
        out,
        "POST / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1, 10.0.0.7\r\nHost: x\r\nX-Request-Id: abc-1\r\n\
         Content-Length: 3\r\nX-Forwarded-Proto: http\r\n\r\n"
    );
}

#[test]
fn http10_is_forwarded_as_11_with_a_host() {
    let (head, out) = request(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!head.keep_alive);
    assert!(out.starts_with("GET / HTTP/1.1\r\n"));
    assert!(out.contains("Host: lb.local\r\n"));
    let (head, _) = request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(head.keep_alive);
}

#[test]
fn partial_heads_wait() {
    assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: x\r\n"), 0);
    assert_eq!(status_of(b"GE"), 0);
}

#[test]
fn ambiguous_framing_is_refused() {
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"G T / HTTP/1.1\r\nHost: a\r\n\r\n",
        // Found by fuzzing: httparse skips a bare LF before the request line.
        b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(status_of(raw), 400, "{}", String::from_utf8_lossy(raw));
    }
    // An empty CRLF line before the request line is tolerated (RFC 9112 §2.2).
    assert_eq!(status_of(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
}

#[test]
fn limits_have_their_own_statuses() {
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(long_line.as_bytes()), 414);
    let partial_long_line = format!("GET /{}", "a".repeat(9000));
    assert_eq!(status_of(partial_long_line.as_bytes()), 414);
    let big_block = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17000)
    );
    assert_eq!(status_of(big_block.as_bytes()), 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(status_of(many.as_bytes()), 431);
}

/// Found by fuzzing: a head within the field limit went out past it once our fields were
/// added, so that the next hop (another lb, or a server with the same limit) refused it.
#[test]
fn what_goes_out_stays_within_the_field_limit() {
    let with_fields = |n: usize| {
        let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 1..n {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        head + "\r\n"
    };
    // Ours: X-Forwarded-For, X-Forwarded-Proto and X-Request-Id.
    assert_eq!(status_of(with_fields(MAX_HEADERS - 3).as_bytes()), 200);
    assert_eq!(status_of(with_fields(MAX_HEADERS - 2).as_bytes()), 431);
    let mut full = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for i in 1..MAX_HEADERS {
        full.push_str(&format!("X-{i}: v\r\n"));
    }
    full.push_str("\r\n");
    assert!(
        response(full.as_bytes(), GET11).is_err(),
        "no room for X-Request-Id"
    );
}

#[test]
fn unusable_request_ids_are_replaced_by_ours() {
    let with_id =
        |id: &str| format!("GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\nA: b\r\n\r\n");
    let longest = "i".repeat(128);
    let (head, _) = request(with_id(&longest).as_bytes()).unwrap().unwrap();
    assert_eq!(head.request_id.as_str(), longest, "128 bytes are kept");
    for bad in [
        "i".repeat(129),
        "fake 200 0.1ms INJECTED".into(),
        "a\"b".into(),
        "caf\u{e9}".into(),
        "".into(),
    ] {
        let (head, out) = request(with_id(&bad).as_bytes()).unwrap().unwrap();
        assert_eq!(
            head.request_id.as_str(),
            "00000000-0000-4000-8000-000000000abc",
            "{bad:?}"
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\nX-Forwarded-For: 10.0.0.7\r\n\
             X-Forwarded-Proto: http\r\nX-Request-Id: 00000000-0000-4000-8000-000000000abc\r\n\r\n",
            "only ours goes to the backend: {bad:?}"
        );
    }
    // Two ids, usable or not: refused, so that no hop keys the write on another than lb's.
    for second in ["later", "x y", "abc-1"] {
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-1\r\nX-Request-Id: {second}\r\n\r\n"
        );
        assert_eq!(status_of(raw.as_bytes()), 400, "{second}");
    }
}

pub(super) fn response(
    raw: &[u8],
    client: ClientSide,
) -> Result<Option<(ResponseHead, String)>, &'static str> {
    let mut pool = BufferPool::new(64 * 1024, 1);
    let mut out = pool.get();
    parse_response(
        raw,
        client,
        b"websocket",
        (&RequestId::uuid(1), None),
        &mut out,
    )
    .map(|r| r.map(|h| (h, String::from_utf8_lossy(out.data()).into_owned())))
}

pub(super) const GET11: ClientSide = ClientSide {
    method: Method::Get,
    version: 1,
    keep_alive: true,
    upgrade: false,
};

#[test]
fn response_framing_and_rewrite() {
    let (head, out) = response(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n\r\nhello",
        GET11,
    )
    .unwrap()
    .unwrap();
    assert_eq!(head.framing, Framing::Length(5));
    assert!(head.reusable && !head.close_client);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-Request-Id: 00000000-0000-4000-8000-000000000001\r\n\r\n"
    );

    let (head, out) = response(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", GET11)
        .unwrap()
        .unwrap();
    assert_eq!(head.framing, Framing::UntilClose);
    assert!(!head.reusable && head.close_client);
    assert!(out.contains("Connection: close\r\n"));

    let head_req = ClientSide {
        method: Method::Head,
        ..GET11
    };
    let (head, _) = response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head_req)
        .unwrap()
        .unwrap();
    assert_eq!(head.framing, Framing::Done);
    for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
        let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n");
        let (head, _) = response(raw.as_bytes(), GET11).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Done, "{status}");
    }
}

#[test]
fn chunked_response_is_dechunked_for_http10_clients() {
    let client = ClientSide {
        method: Method::Get,
        version: 0,
        keep_alive: true,
        upgrade: false,
    };
    let (head, out) = response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Request-Id: z\r\n\r\n",
        client,
    )
    .unwrap()
    .unwrap();
    assert!(head.dechunk && head.close_client);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nX-Request-Id: z\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn broken_responses_are_refused() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ] {
        assert!(
            response(raw, GET11).is_err(),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(response(b"HTTP/1.1 200 OK\r\n", GET11).unwrap().is_none());
}

#[test]
fn upgrades_keep_their_headers_and_h2c_is_dropped() {
    let (head, out) = request(
        b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n\
          Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
    )
    .unwrap()
    .unwrap();
    assert!(head.upgrade.is_some());
    assert!(out.contains("Upgrade: websocket\r\n"), "{out}");
    assert!(out.ends_with("Connection: upgrade\r\n\r\n"), "{out}");
    assert!(!out.contains("keep-alive"), "{out}");

    for raw in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    ] {
        let (head, out) = request(raw).unwrap().unwrap();
        assert!(head.upgrade.is_none(), "{}", String::from_utf8_lossy(raw));
        let lower = out.to_ascii_lowercase();
        assert!(!lower.contains("upgrade") && !lower.contains("http2-settings"), "{out}");
    }
}

#[test]
fn a_101_is_forwarded_only_to_an_upgrade_request() {
    let upgrade = ClientSide {
        upgrade: true,
        ..GET11
    };
    let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: a\r\n\r\n\x81\x02hi";
    let (head, out) = response(raw, upgrade).unwrap().unwrap();
    assert!(head.is_switch() && !head.is_interim());
    assert_eq!(head.framing, Framing::Done);
    assert_eq!(
        &raw[head.len..],
        b"\x81\x02hi",
        "frames after the head are not the head's"
    );
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\
         Connection: upgrade\r\nX-Request-Id: 00000000-0000-4000-8000-000000000001\r\n\r\n"
    );
    assert!(response(raw, GET11).is_err());
    let (head, out) = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", upgrade)
        .unwrap()
        .unwrap();
    assert!(head.reusable && !head.is_switch());
    assert!(!out.contains("pgrade"));
}
