//! The response head parser: never panics, and what it accepts goes to the client as a
//! head that a strict parser reads whole, with CRLF only, with no framing field on a
//! status that has no body, with the framing lb read the body by, and with
//! `Connection: close` whenever the client's connection is to close.
#![no_main]

use lb::buffer::BufferPool;
use lb::http::body::Framing;
use lb::http::head::{ClientSide, Method, RequestId, parse_response};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::{assert_crlf_only, fields};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, response)) = data.split_first() else {
        return;
    };
    let client = ClientSide {
        method: [Method::Get, Method::Head, Method::Post, Method::Other][usize::from(pick & 3)],
        version: (pick >> 2) & 1,
        keep_alive: pick & 8 != 0,
        upgrade: pick & 16 != 0,
    };
    let mut pool = BufferPool::new(32 * 1024, 1);
    let mut out = pool.get();
    let offered: &[u8] = if client.upgrade { b"websocket, foo" } else { b"" };
    let id = RequestId::uuid(9);
    let Ok(Some(head)) = parse_response(response, client, offered, (&id, None), &mut out) else {
        return;
    };
    assert!(head.len <= response.len());
    assert_crlf_only("the accepted head", &response[..head.len]);
    let forwarded = out.data();
    assert_crlf_only("the forwarded head", forwarded);

    // No more fields than lb itself takes: the next hop may be another lb.
    let mut storage = [httparse::EMPTY_HEADER; lb::http::head::MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let Ok(httparse::Status::Complete(n)) = resp.parse(forwarded) else {
        panic!(
            "forwarded head does not parse: {:?}",
            String::from_utf8_lossy(forwarded)
        );
    };
    assert_eq!(n, forwarded.len(), "bytes after the forwarded head");
    assert_eq!(resp.code, Some(head.status));
    let lengths = fields(resp.headers, "content-length");
    let codings = fields(resp.headers, "transfer-encoding");
    assert!(
        lengths.len() + codings.len() <= 1,
        "one framing field at most"
    );
    // The client reads the body as lb does: the framing field lb read goes on with it.
    match head.framing {
        Framing::Length(n) => assert_eq!(
            lengths
                .first()
                .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok()),
            Some(n),
            "a body lb frames by length goes out without that length"
        ),
        Framing::UntilClose => assert!(lengths.is_empty() && codings.is_empty()),
        Framing::Chunked(_) if !head.dechunk => {
            assert_eq!(codings.len(), 1, "a chunked body goes out without its coding")
        }
        Framing::Chunked(_) | Framing::Done => {}
    }
    let status = head.status;
    if (100..200).contains(&status) || status == 204 || status == 304 {
        assert!(
            lengths.is_empty() && codings.is_empty(),
            "framing on a {status}"
        );
        assert!(head.framing.is_done());
    }
    if head.framing == Framing::UntilClose || head.dechunk {
        assert!(
            head.close_client,
            "a body that ends at close must close the client"
        );
    }
    if head.dechunk {
        assert!(
            codings.is_empty(),
            "chunked coding sent to an HTTP/1.0 client"
        );
    }
    let closes = fields(resp.headers, "connection")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(b"close"));
    if head.close_client && !head.is_interim() && !head.is_switch() {
        assert!(closes, "the client connection closes without telling it");
    }
});
