//! Messages between lb's HTTP/1.1 side and a backend's HTTP/2: request heads to request
//! header lists, response header lists to response heads, each case naming its rule.

use super::list;
use crate::h2::hpack::HeaderList;
use crate::h2::message::{
    BodyFraming, Response, check_response, request_list, write_response_head, write_trailers,
};

type Pairs = &'static [(&'static str, &'static str)];

/// A case: what it checks, an HTTP/1.1 request (method, target, fields) and the header
/// list it becomes, or why it cannot go to an HTTP/2 backend.
type RequestCase = (
    &'static str,
    &'static str,
    &'static str,
    Pairs,
    Result<Pairs, &'static str>,
);

const REQUESTS: &[RequestCase] = &[
    (
        "8.3.1 origin-form: the pseudo-header fields from the line and Host, names lowercased",
        "GET",
        "/a?b=1",
        &[
            ("Host", "api.example:8080"),
            ("User-Agent", "curl"),
            ("X-Request-Id", "r1"),
        ],
        Ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "api.example:8080"),
            (":path", "/a?b=1"),
            ("user-agent", "curl"),
            ("x-request-id", "r1"),
        ]),
    ),
    (
        "8.2.2 connection-specific fields and those Connection names -> dropped",
        "POST",
        "/up",
        &[
            ("Host", "b"),
            ("Connection", "keep-alive, X-Hop"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("X-Hop", "1"),
            ("Content-Type", "application/grpc"),
        ],
        Ok(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "/up"),
            ("content-type", "application/grpc"),
        ]),
    ),
    (
        "8.2.2 te with trailers among others -> te: trailers",
        "POST",
        "/grpc.Svc/Call",
        &[
            ("Host", "b"),
            ("TE", "deflate, trailers"),
            ("Connection", "TE"),
        ],
        Ok(&[
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "/grpc.Svc/Call"),
            ("te", "trailers"),
        ]),
    ),
    (
        "8.2.2 te without trailers -> dropped",
        "GET",
        "/",
        &[("Host", "b"), ("TE", "gzip")],
        Ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "/"),
        ]),
    ),
    (
        "8.1.1 content-length goes on",
        "PUT",
        "/f",
        &[("Host", "b"), ("Content-Length", "12")],
        Ok(&[
            (":method", "PUT"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "/f"),
            ("content-length", "12"),
        ]),
    ),
    (
        "RFC 9112 3.2.2 absolute-form: its authority, not Host's",
        "GET",
        "http://target.example/p",
        &[("Host", "other")],
        Ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "target.example"),
            (":path", "/p"),
        ]),
    ),
    (
        "8.3.1 absolute-form without a path -> /",
        "GET",
        "http://target.example",
        &[],
        Ok(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", "target.example"),
            (":path", "/"),
        ]),
    ),
    (
        "8.3.1 OPTIONS * -> :path *",
        "OPTIONS",
        "*",
        &[("Host", "b")],
        Ok(&[
            (":method", "OPTIONS"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "*"),
        ]),
    ),
    (
        "8.3.1 no Host and an origin-form target -> no authority",
        "GET",
        "/",
        &[],
        Err("8.3.1 no authority: neither the target nor Host names a host"),
    ),
    (
        "8.3.1 * for a method other than OPTIONS",
        "GET",
        "*",
        &[("Host", "b")],
        Err("8.3.1 :path * for a method other than OPTIONS"),
    ),
    (
        "8.5 CONNECT is not carried",
        "CONNECT",
        "b:443",
        &[("Host", "b:443")],
        Err("8.5 CONNECT is not carried to an HTTP/2 backend"),
    ),
    (
        "RFC 9112 3.2 a target of no known form",
        "GET",
        "a/b",
        &[("Host", "b")],
        Err("3.2 request target neither origin-form, absolute-form nor *"),
    ),
];

fn pairs(list: &HeaderList) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn strings(fields: Pairs) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn http1_requests_become_h2_header_lists() {
    let mut out = HeaderList::new();
    for (name, method, target, fields, want) in REQUESTS {
        let fields = fields.iter().map(|(n, v)| (*n, v.as_bytes()));
        let got = request_list(method, target.as_bytes(), "http", fields, &mut out);
        match (want, got) {
            (Ok(want), Ok(())) => assert_eq!(pairs(&out), strings(want), "{name}"),
            (Err(reason), Err(got)) => assert_eq!(got, *reason, "{name}"),
            (_, got) => panic!("{name}: got {got:?}"),
        }
    }
}

/// A case: what it checks, an HTTP/2 response header list, and the HTTP/1.1 head and
/// framing it becomes.
type ResponseCase = (&'static str, Pairs, &'static str, BodyFraming);

const RESPONSES: &[ResponseCase] = &[
    (
        "a content-length frames the body",
        &[
            (":status", "200"),
            ("content-type", "text/plain"),
            ("content-length", "5"),
        ],
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\n",
        BodyFraming::Length(5),
    ),
    (
        "without one, chunked: the DATA and trailers follow as chunks",
        &[(":status", "200"), ("content-type", "application/grpc")],
        "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n",
        BodyFraming::Chunked,
    ),
    (
        "204 has no body and no content-length",
        &[(":status", "204"), ("content-length", "0")],
        "HTTP/1.1 204 No Content\r\n\r\n",
        BodyFraming::None,
    ),
    (
        "304 keeps the length of what it stands for",
        &[
            (":status", "304"),
            ("etag", "\"a\""),
            ("content-length", "10"),
        ],
        "HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\ncontent-length: 10\r\n\r\n",
        BodyFraming::None,
    ),
    (
        "a 1xx is a head alone",
        &[(":status", "103"), ("link", "</a.css>; rel=preload")],
        "HTTP/1.1 103 \r\nlink: </a.css>; rel=preload\r\n\r\n",
        BodyFraming::None,
    ),
];

#[test]
fn h2_responses_become_http1_heads() {
    for (name, fields, head, framing) in RESPONSES {
        let list = list(fields);
        let response = check_response(&list).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut out = Vec::new();
        assert_eq!(
            write_response_head(&response, &list, &mut out),
            *framing,
            "{name}"
        );
        assert_eq!(String::from_utf8_lossy(&out), *head, "{name}");
    }
}

#[test]
fn response_checks_name_their_rule() {
    let cases: &[(Pairs, &str)] = &[
        (&[("server", "x")], "8.3.2 no :status"),
        (
            &[(":status", "200"), (":status", "204")],
            "8.3.2 repeated :status",
        ),
        (
            &[(":status", "200"), (":method", "GET")],
            "8.3.2 pseudo-header field other than :status in a response",
        ),
        (
            &[("server", "x"), (":status", "200")],
            "8.3 pseudo-header field after a regular field",
        ),
        (&[(":status", "2000")], "8.3.2 :status not three digits"),
        (&[(":status", "099")], "8.3.2 :status not three digits"),
        (
            &[(":status", "101")],
            "8.6 101 Switching Protocols, which HTTP/2 does not have",
        ),
        (
            &[(":status", "200"), ("transfer-encoding", "chunked")],
            "8.2.2 connection-specific field",
        ),
        (
            &[(":status", "200"), ("te", "gzip")],
            "8.2.2 te other than trailers",
        ),
        (
            &[
                (":status", "200"),
                ("content-length", "1"),
                ("content-length", "2"),
            ],
            "8.1.1 content-length values differ",
        ),
        (
            &[(":status", "200"), ("X-Upper", "1")],
            "8.2.1 field name not a lowercase token",
        ),
    ];
    for (fields, reason) in cases {
        assert_eq!(check_response(&list(fields)), Err(*reason), "{fields:?}");
    }
    assert_eq!(
        check_response(&list(&[(":status", "200"), ("content-length", "7")])),
        Ok(Response {
            status: 200,
            content_length: Some(7)
        })
    );
}

#[test]
fn a_grpc_response_reads_back_through_lbs_http1_parser() {
    use crate::buffer::BufferPool;
    use crate::http::head::{ClientSide, Method, RequestId, parse_response};

    let fields = list(&[(":status", "200"), ("content-type", "application/grpc")]);
    let response = check_response(&fields).unwrap();
    let mut bytes = Vec::new();
    assert_eq!(
        write_response_head(&response, &fields, &mut bytes),
        BodyFraming::Chunked
    );
    let head_len = bytes.len();
    crate::h2::message::put_chunk_size(&mut bytes, 5);
    bytes.extend_from_slice(b"\0\0\0\0\0\r\n");
    write_trailers(
        &list(&[("grpc-status", "0"), ("grpc-message", "")]),
        &mut bytes,
    )
    .unwrap();
    let client = ClientSide {
        method: Method::Post,
        version: 1,
        keep_alive: true,
        upgrade: false,
    };
    let mut pool = BufferPool::new(32 * 1024, 1);
    let mut out = pool.get();
    let parsed = parse_response(&bytes, client, b"", (&RequestId::uuid(1), None), &mut out)
        .unwrap()
        .unwrap();
    assert_eq!((parsed.status, parsed.len), (200, head_len));
    assert!(
        !parsed.framing.is_done(),
        "chunked, so the trailers can follow"
    );
    assert!(bytes.ends_with(b"0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n"));
}
