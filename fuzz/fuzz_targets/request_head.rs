//! The request head parser: never panics, and what it accepts is forwarded as a head that
//! a strict parser reads the same way (one framing, one Host, CRLF only), whose header
//! lines are the client's own bytes, and which our parser accepts again unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use lb::buffer::BufferPool;
use lb::http::body::Framing;
use lb::http::head::{ForwardInfo, MAX_REQUEST_LINE, RequestId, Routing, parse_request};
use lb::route::RouteTable;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{assert_crlf_only, fields};

fuzz_target!(|data: &[u8]| {
    let mut pool = BufferPool::new(32 * 1024, 1);
    let mut out = pool.get();
    let info = ForwardInfo {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        fresh_id: RequestId::uuid(7),
        default_host: "lb.test",
        tls: false,
    };
    let table = RouteTable::everything_to("default");
    let mut scratch = vec![0; 2 * (MAX_REQUEST_LINE + 2)];
    let Ok(Some(head)) = parse_request(data, &info, &mut out, Routing {
            table: &table,
            scratch: &mut scratch,
        }) else {
        return;
    };
    let accepted = &data[..head.len];
    assert!(accepted.ends_with(b"\r\n\r\n"));
    assert_crlf_only("the accepted head", accepted);
    let forwarded = out.data();
    assert_crlf_only("the forwarded head", forwarded);

    // A strict parser reads the forwarded head whole, as one request with one framing.
    // No more fields than lb itself takes: the next hop may be another lb.
    let mut storage = [httparse::EMPTY_HEADER; lb::http::head::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let Ok(httparse::Status::Complete(n)) = req.parse(forwarded) else {
        panic!(
            "forwarded head does not parse: {:?}",
            String::from_utf8_lossy(forwarded)
        );
    };
    assert_eq!(n, forwarded.len(), "bytes after the forwarded head");
    assert_eq!(req.version, Some(1));
    assert_eq!(fields(req.headers, "host").len(), 1, "one Host");
    let lengths = fields(req.headers, "content-length");
    let codings = fields(req.headers, "transfer-encoding");
    assert!(
        lengths.len() + codings.len() <= 1,
        "one framing field at most"
    );
    let framing = match (lengths.first(), codings.first()) {
        (Some(v), None) => {
            let n: u64 = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .expect("a length");
            if n == 0 {
                Framing::Done
            } else {
                Framing::Length(n)
            }
        }
        (None, Some(_)) => Framing::chunked(),
        _ => Framing::Done,
    };
    assert_eq!(
        framing, head.framing,
        "the backend would frame the body differently"
    );

    // Every header line forwarded that is not ours is one the client sent, byte for byte.
    let ours = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-request-id",
        "host",
    ];
    for h in req.headers.iter() {
        if ours.iter().any(|o| h.name.eq_ignore_ascii_case(o)) {
            continue;
        }
        let line = [h.name.as_bytes(), b":"].concat();
        assert!(
            accepted.windows(line.len()).any(|w| w == line.as_slice()),
            "forwarded a field the client did not send: {}",
            h.name
        );
    }

    // What we forward, we accept again: same framing, same method, same target.
    let mut again = pool.get();
    let reparsed = parse_request(forwarded, &info, &mut again, Routing {
            table: &table,
            scratch: &mut scratch,
        });
    let Ok(Some(second)) = reparsed else {
        panic!("our own forwarded head is refused: {reparsed:?}");
    };
    assert_eq!(second.framing, head.framing);
    assert_eq!(second.method, head.method);
    // Origin-form: the path as it came, with a `/` in front if an absolute-form target
    // had none.
    let path = &data[head.path.0..head.path.1];
    let again = &forwarded[second.path.0..second.path.1];
    assert!(
        again == path || (again.first() == Some(&b'/') && &again[1..] == path),
        "forwarded target {:?} for {:?}",
        String::from_utf8_lossy(again),
        String::from_utf8_lossy(path)
    );
    assert!(again.first() == Some(&b'/') || again == b"*");
});
