//! Table-driven: each case names the section of RFC 9113 (or 8441, 9110) it checks.

mod requests_malformed;
mod requests_valid;
mod responses;

use self::Want::{Head, Malformed as Bad};
use super::*;
use crate::h2::hpack::HeaderList;

type Fields = &'static [(&'static str, &'static str)];

/// A valid GET's pseudo-header fields, which most request cases start with.
const GET: Fields = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "a.example"),
    (":path", "/x"),
];

fn list(fields: &[(&str, &str)]) -> HeaderList {
    let mut list = HeaderList::new();
    for (name, value) in fields {
        list.push(name.as_bytes(), value.as_bytes());
    }
    list
}

enum Want {
    Head(&'static str, BodyFraming),
    Malformed(&'static str),
}

struct Case {
    name: &'static str,
    /// The fields follow a valid GET's pseudo-header fields.
    after_get: bool,
    fields: Fields,
    has_body: bool,
    extended_connect: bool,
    want: Want,
}

/// A case whose fields follow `GET`, without a body.
const fn get(name: &'static str, fields: Fields, want: Want) -> Case {
    Case {
        name,
        after_get: true,
        fields,
        has_body: false,
        extended_connect: true,
        want,
    }
}

/// A case with its own pseudo-header fields.
const fn own(name: &'static str, fields: Fields, has_body: bool, want: Want) -> Case {
    Case {
        name,
        after_get: false,
        fields,
        has_body,
        extended_connect: true,
        want,
    }
}

#[test]
fn requests() {
    for case in requests_valid::CASES
        .iter()
        .chain(requests_malformed::CASES)
    {
        let mut fields = Vec::new();
        if case.after_get {
            fields.extend_from_slice(GET);
        }
        fields.extend_from_slice(case.fields);
        let list = list(&fields);
        let got = check_request(&list, case.has_body, case.extended_connect);
        match (&case.want, got) {
            (Head(head, body), Ok(request)) => {
                assert_eq!(request.body, *body, "{}", case.name);
                let mut out = Vec::new();
                write_request_head(&request, &list, &mut out);
                assert_eq!(String::from_utf8_lossy(&out), *head, "{}", case.name);
            }
            (Bad(reason), Err(got)) => assert_eq!(got, *reason, "{}", case.name),
            (_, got) => panic!("{}: got {got:?}", case.name),
        }
    }
}

#[test]
fn a_written_head_is_one_lbs_http1_parser_takes() {
    use crate::buffer::BufferPool;
    use crate::http::head::{ForwardInfo, RequestId, Routing, parse_request};
    use crate::route::RouteTable;

    let list = list(&[
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/f?q=1"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
        ("te", "trailers"),
    ]);
    let request = check_request(&list, true, false).unwrap();
    let mut head = Vec::new();
    write_request_head(&request, &list, &mut head);
    let info = ForwardInfo {
        client_ip: "127.0.0.1".parse().unwrap(),
        fresh_id: RequestId::uuid(1),
        default_host: "lb",
        tls: true,
    };
    let mut pool = BufferPool::new(32 * 1024, 1);
    let mut out = pool.get();
    let mut scratch = vec![0; 2 * (crate::http::head::MAX_REQUEST_LINE + 2)];
    let routing = Routing {
        table: &RouteTable::everything_to("default"),
        scratch: &mut scratch,
    };
    let parsed = parse_request(&head, &info, &mut out, routing)
        .unwrap()
        .unwrap();
    assert_eq!(parsed.len, head.len());
    assert!(!parsed.framing.is_done(), "chunked");
}

#[test]
fn trailers() {
    let cases: &[(&str, Fields, Result<&str, &str>)] = &[
        (
            "8.1 trailers -> the last chunk, the fields, a blank line",
            &[("grpc-status", "0"), ("x-sum", "ab")],
            Ok("0\r\ngrpc-status: 0\r\nx-sum: ab\r\n\r\n"),
        ),
        (
            "8.1 no trailer field -> the last chunk alone",
            &[],
            Ok("0\r\n\r\n"),
        ),
        (
            "8.1 pseudo-header field in trailers -> malformed",
            &[(":status", "200")],
            Err("8.1 pseudo-header field in trailers"),
        ),
        (
            "8.2.2 connection-specific field in trailers -> malformed",
            &[("transfer-encoding", "chunked")],
            Err("8.2.2 connection-specific field"),
        ),
        (
            "8.2.1 uppercase name in trailers -> malformed",
            &[("Grpc-Status", "0")],
            Err("8.2.1 field name not a lowercase token"),
        ),
        (
            "8.2.1 LF in a trailer value -> malformed",
            &[("x-a", "a\nb")],
            Err("8.2.1 field value with NUL, CR, LF or whitespace at an end"),
        ),
    ];
    for (name, fields, want) in cases {
        let mut out = Vec::new();
        match (want, write_trailers(&list(fields), &mut out)) {
            (Ok(head), Ok(())) => assert_eq!(String::from_utf8_lossy(&out), *head, "{name}"),
            (Err(reason), Err(got)) => {
                assert_eq!(got, *reason, "{name}");
                assert!(out.is_empty(), "{name}: nothing written");
            }
            (_, got) => panic!("{name}: got {got:?}"),
        }
    }
    let mut out = Vec::new();
    write_trailers(&HeaderList::new(), &mut out).unwrap();
    assert_eq!(out, LAST_CHUNK);
}

#[test]
fn chunk_sizes_are_hex() {
    for (len, want) in [
        (0, "0\r\n"),
        (10, "a\r\n"),
        (16, "10\r\n"),
        (16384, "4000\r\n"),
        (0xabcdef, "abcdef\r\n"),
    ] {
        let mut out = Vec::new();
        put_chunk_size(&mut out, len);
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
}
