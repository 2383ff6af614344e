//! HTTP/1.1 responses and what each becomes on an HTTP/2 stream.

use super::*;

type Http1Fields = &'static [(&'static str, &'static str)];

/// A case: what it checks, the status and fields of an HTTP/1.1 response, and what it
/// becomes (its kind and header list) or why it cannot be relayed.
type ResponseCase = (
    &'static str,
    u16,
    Http1Fields,
    Result<(ResponseKind, Fields), &'static str>,
);

const RESPONSES: &[ResponseCase] = &[
    (
        "8.3.2 200 -> :status first, names lowercased, values trimmed",
        200,
        &[
            ("Content-Type", "text/plain"),
            ("Content-Length", "20"),
            ("X-Request-Id", " 00a1 "),
        ],
        Ok((
            ResponseKind::Final,
            &[
                (":status", "200"),
                ("content-type", "text/plain"),
                ("content-length", "20"),
                ("x-request-id", "00a1"),
            ],
        )),
    ),
    (
        "8.2.2 connection-specific fields -> dropped",
        200,
        &[
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Connection", "close"),
            ("TE", "trailers"),
            ("Server", "x"),
        ],
        Ok((ResponseKind::Final, &[(":status", "200"), ("server", "x")])),
    ),
    (
        "8.2.2 fields the Connection header names -> dropped",
        200,
        &[
            ("X-Hop", "1"),
            ("Connection", "close, X-Hop"),
            ("X-End", "2"),
        ],
        Ok((ResponseKind::Final, &[(":status", "200"), ("x-end", "2")])),
    ),
    (
        "8.1 100 Continue -> an interim HEADERS",
        100,
        &[],
        Ok((ResponseKind::Interim, &[(":status", "100")])),
    ),
    (
        "8.1 103 Early Hints -> an interim HEADERS with its fields",
        103,
        &[("Link", "</a.css>; rel=preload")],
        Ok((
            ResponseKind::Interim,
            &[(":status", "103"), ("link", "</a.css>; rel=preload")],
        )),
    ),
    (
        "8.6 101 -> no 101 in HTTP/2: 200 for an extended CONNECT's tunnel",
        101,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ],
        Ok((
            ResponseKind::Tunnel,
            &[
                (":status", "200"),
                ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            ],
        )),
    ),
    (
        "RFC 9110 8.6 204 with content-length -> dropped",
        204,
        &[("Content-Length", "0"), ("Date", "x")],
        Ok((ResponseKind::Final, &[(":status", "204"), ("date", "x")])),
    ),
    (
        "RFC 9110 8.6 304 keeps content-length",
        304,
        &[("Content-Length", "10")],
        Ok((
            ResponseKind::Final,
            &[(":status", "304"), ("content-length", "10")],
        )),
    ),
    (
        "8.3.2 status of four digits -> refused",
        1000,
        &[],
        Err("8.3.2 status not three digits"),
    ),
    (
        "8.3.2 status of two digits -> refused",
        99,
        &[],
        Err("8.3.2 status not three digits"),
    ),
    (
        "8.2.1 NUL in a response value -> refused",
        200,
        &[("X-A", "a\0b")],
        Err("8.2.1 field value with NUL, CR or LF"),
    ),
];

fn as_bytes(fields: Http1Fields) -> impl Iterator<Item = (&'static str, &'static [u8])> + Clone {
    fields.iter().map(|(n, v)| (*n, v.as_bytes()))
}

fn owned(list: &HeaderList) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

#[test]
fn responses() {
    for (name, status, fields, want) in RESPONSES {
        let mut out = HeaderList::new();
        out.push(b"left", b"over");
        let got = response_head(*status, as_bytes(fields), &mut out);
        match (want, got) {
            (Ok((kind, list_want)), Ok(got)) => {
                assert_eq!(got, *kind, "{name}");
                assert_eq!(owned(&out), owned(&list(list_want)), "{name}");
            }
            (Err(reason), Err(got)) => assert_eq!(got, *reason, "{name}"),
            (_, got) => panic!("{name}: got {got:?}"),
        }
    }
}

#[test]
fn response_trailers_drop_what_does_not_belong_in_trailers() {
    let fields: Http1Fields = &[
        ("Grpc-Status", "0"),
        ("Content-Length", "5"),
        ("Connection", "close"),
        ("Grpc-Message", "ok"),
    ];
    let mut out = HeaderList::new();
    response_trailers(as_bytes(fields), &mut out).unwrap();
    assert_eq!(
        owned(&out),
        owned(&list(&[("grpc-status", "0"), ("grpc-message", "ok")])),
        "RFC 9110 6.5.1 content-length is not a trailer; 8.2.2 connection-specific dropped"
    );
}
