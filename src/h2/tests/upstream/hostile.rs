//! A server that breaks RFC 9113's rules one at a time: each is a connection or stream
//! error with its exact code, and lb's connection goes on when only a stream was wrong.

use super::{CEv, RawServer, get, list};
use crate::h2::client::{ClientConnection, State};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{flag, kind};
use crate::h2::limits::Limits;
use crate::h2::settings::id;
use crate::h2::tests::client::{data, ping, raw, rst, settings, window_update};

const RST: u8 = kind::RST_STREAM;

/// A case: what it checks, a header list, and whether its HEADERS ends the stream.
type Case = (&'static str, &'static [(&'static str, &'static str)], bool);
const GOAWAY: u8 = kind::GOAWAY;

fn server() -> RawServer {
    RawServer::new(Limits::default(), &[])
}

/// A server with stream 1 open: a GET, sent.
fn with_get() -> RawServer {
    let mut s = server();
    assert_eq!(s.client.open_stream(&get("/"), true), Ok(1));
    s.frames();
    s
}

/// The connection error a frame sequence is, from a server with stream 1 open.
fn connection_error(frames: &[u8]) -> (Option<ErrorCode>, Vec<(u8, u32, ErrorCode)>) {
    let mut s = with_get();
    s.send(frames);
    (s.failed, s.errors())
}

fn assert_connection_error(name: &str, frames: &[u8], code: ErrorCode) {
    let (failed, errors) = connection_error(frames);
    assert_eq!(failed, Some(code), "{name}");
    assert_eq!(errors, [(GOAWAY, 0, code)], "{name}");
}

#[test]
fn connection_errors_have_their_codes() {
    let mut s = server();
    let block = s.headers(2, &[(":status", "200")], true);
    let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        (
            "8.4 PUSH_PROMISE with push disabled",
            raw(
                kind::PUSH_PROMISE,
                flag::END_HEADERS,
                1,
                &[0, 0, 0, 2, 0x88],
            ),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "6.5.2 SETTINGS_ENABLE_PUSH = 1 from a server",
            settings(&[(id::ENABLE_PUSH, 1)]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "5.1.1 HEADERS on an even stream we did not open",
            block,
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "5.1 HEADERS on an odd stream we did not open",
            raw(kind::HEADERS, flag::END_HEADERS, 3, &[0x88]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "5.1 DATA on an idle stream",
            data(5, b"x", true),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "6.4 RST_STREAM on an idle stream",
            rst(3, ErrorCode::CANCEL),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "6.9 WINDOW_UPDATE on an idle stream",
            window_update(3, 1),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "6.10 a frame inside a header block",
            [raw(kind::HEADERS, 0, 1, &[0x88]), ping()].concat(),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "6.10 CONTINUATION without a block",
            raw(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x88]),
            ErrorCode::PROTOCOL_ERROR,
        ),
        (
            "4.3 a header block that does not decode",
            raw(
                kind::HEADERS,
                flag::END_HEADERS,
                1,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            ErrorCode::COMPRESSION_ERROR,
        ),
        (
            "6.9.1 the connection window overflowed",
            window_update(0, (1 << 31) - 1),
            ErrorCode::FLOW_CONTROL_ERROR,
        ),
        (
            "4.2 a frame larger than our SETTINGS_MAX_FRAME_SIZE",
            raw(kind::DATA, 0, 1, &[0; 16_385]),
            ErrorCode::FRAME_SIZE_ERROR,
        ),
    ];
    for (name, frames, code) in cases {
        assert_connection_error(name, &frames, code);
    }
}

#[test]
fn the_servers_first_frame_must_be_its_settings() {
    let mut s = RawServer {
        client: ClientConnection::new(Limits::default(), std::time::Instant::now()),
        ..server()
    };
    s.frames();
    s.send(&ping());
    assert_eq!(s.failed, Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn data_beyond_the_streams_window_resets_it() {
    let mut s = with_get();
    let head = s.headers(1, &[(":status", "200")], false);
    s.send(&head);
    let chunk = [b'x'; 16_384];
    for _ in 0..3 {
        s.send(&data(1, &chunk, false));
    }
    assert_eq!(s.errors(), [], "49,152 bytes fit in 65,535");
    let events = s.send(&data(1, &chunk, false));
    assert_eq!(
        events,
        [CEv::Reset(1, ErrorCode::FLOW_CONTROL_ERROR)],
        "65,536 do not"
    );
    assert_eq!(s.errors(), [(RST, 1, ErrorCode::FLOW_CONTROL_ERROR)]);
    assert_eq!(s.failed, None);
}

#[test]
fn data_beyond_the_connections_window_ends_it() {
    let limits = Limits {
        connection_window: 65_535,
        ..Limits::default()
    };
    let mut s = RawServer::new(limits, &[]);
    s.client.open_stream(&get("/1"), true).unwrap();
    s.client.open_stream(&get("/3"), true).unwrap();
    let chunk = [b'x'; 16_384];
    for stream in [1, 3] {
        let head = s.headers(stream, &[(":status", "200")], false);
        s.send(&head);
    }
    for stream in [1, 1, 3] {
        s.send(&data(stream, &chunk, false));
    }
    s.send(&data(3, &chunk[..16_383], false));
    assert_eq!(s.failed, None, "65,535 bytes in all fit");
    s.send(&data(3, b"x", false));
    assert_eq!(s.failed, Some(ErrorCode::FLOW_CONTROL_ERROR));
}

/// The events and errors a response header list makes on stream 1 (a GET, or a HEAD),
/// and whether a new stream still works after it.
fn answer(request: &str, fields: &[(&str, &str)], end_stream: bool) -> Vec<CEv> {
    let mut s = server();
    let mut head = get("/");
    if request == "HEAD" {
        head = list(&[
            (":method", "HEAD"),
            (":scheme", "http"),
            (":authority", "b"),
            (":path", "/"),
        ]);
    }
    s.client.open_stream(&head, true).unwrap();
    let block = s.headers(1, fields, end_stream);
    let events = s.send(&block);
    assert_eq!(s.failed, None);
    s.client.open_stream(&get("/"), true).unwrap();
    let block = s.headers(3, &[(":status", "204")], true);
    assert!(matches!(
        s.send(&block)[..],
        [CEv::Response { stream: 3, .. }]
    ));
    events
}

#[test]
fn malformed_responses_reset_their_stream() {
    let bad: &[Case] = &[
        ("8.3.2 no :status", &[("server", "x")], true),
        (
            "8.3.2 :status twice",
            &[(":status", "200"), (":status", "200")],
            true,
        ),
        (
            "8.3.2 a request pseudo-header in a response",
            &[(":status", "200"), (":path", "/")],
            true,
        ),
        (
            "8.3 pseudo-header after a regular field",
            &[("server", "x"), (":status", "200")],
            true,
        ),
        ("8.3.2 :status not three digits", &[(":status", "20")], true),
        ("8.6 101 in HTTP/2", &[(":status", "101")], false),
        (
            "8.2.1 an uppercase field name",
            &[(":status", "200"), ("Server", "x")],
            true,
        ),
        (
            "8.2.2 a connection-specific field",
            &[(":status", "200"), ("connection", "close")],
            true,
        ),
        (
            "8.1 an interim response that ends the stream",
            &[(":status", "100")],
            true,
        ),
        (
            "8.1.1 content-length above 0 on a HEADERS that ends the stream",
            &[(":status", "200"), ("content-length", "10")],
            true,
        ),
        (
            "8.1.1 content-length values that differ",
            &[
                (":status", "200"),
                ("content-length", "1"),
                ("content-length", "2"),
            ],
            false,
        ),
    ];
    for (name, fields, end_stream) in bad {
        assert_eq!(
            answer("GET", fields, *end_stream),
            [CEv::Reset(1, ErrorCode::PROTOCOL_ERROR)],
            "{name}"
        );
    }
}

#[test]
fn responses_without_content_may_declare_a_length() {
    for (request, status) in [("HEAD", "200"), ("GET", "304"), ("GET", "204")] {
        let events = answer(
            request,
            &[(":status", status), ("content-length", "10")],
            true,
        );
        assert!(
            matches!(events[..], [CEv::Response { stream: 1, .. }]),
            "{request} {status}: {events:?}"
        );
    }
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let mut s = with_get();
    let mut frames = s.headers(1, &[(":status", "103"), ("link", "</a>")], false);
    frames.extend(s.headers(1, &[(":status", "200")], true));
    let events = s.send(&frames);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], CEv::Interim(1, 103));
    assert!(matches!(
        events[1],
        CEv::Response {
            stream: 1,
            status: 200,
            end_stream: true,
            ..
        }
    ));
}

/// The events on stream 1 after a 200 with `content-length: 5` and then `frames`.
fn body(frames: impl FnOnce(&mut RawServer) -> Vec<u8>) -> Vec<CEv> {
    let mut s = with_get();
    let head = s.headers(1, &[(":status", "200"), ("content-length", "5")], false);
    s.send(&head);
    let frames = frames(&mut s);
    let events = s.send(&frames);
    assert_eq!(s.failed, None);
    events
}

#[test]
fn a_body_must_match_its_content_length() {
    let reset = CEv::Reset(1, ErrorCode::PROTOCOL_ERROR);
    let short = body(|_| data(1, b"abcd", true));
    assert_eq!(short.last(), Some(&reset), "fewer bytes than declared");
    let long = body(|_| data(1, b"abcdef", false));
    assert_eq!(
        long,
        std::slice::from_ref(&reset),
        "more bytes than declared"
    );
    let trailers_early = body(|s| {
        let mut f = data(1, b"ab", false);
        f.extend(s.headers(1, &[("grpc-status", "0")], true));
        f
    });
    assert_eq!(
        trailers_early.last(),
        Some(&reset),
        "trailers before the length"
    );
    let exact = body(|_| data(1, b"abcde", true));
    assert!(matches!(
        exact[..],
        [CEv::Data {
            end_stream: true,
            ..
        }]
    ));
}

#[test]
fn trailers_must_end_the_stream_and_have_no_pseudo_header() {
    let reset = CEv::Reset(1, ErrorCode::PROTOCOL_ERROR);
    let cases: [Case; 2] = [
        (
            "8.1 trailers without END_STREAM",
            &[("grpc-status", "0")],
            false,
        ),
        (
            "8.1 a pseudo-header in trailers",
            &[(":status", "200")],
            true,
        ),
    ];
    for (name, fields, end_stream) in cases {
        let mut s = with_get();
        let head = s.headers(1, &[(":status", "200")], false);
        s.send(&head);
        let trailers = s.headers(1, fields, end_stream);
        assert_eq!(s.send(&trailers), std::slice::from_ref(&reset), "{name}");
    }
}

#[test]
fn data_before_the_response_or_after_its_end_is_an_error() {
    let mut s = with_get();
    assert_eq!(
        s.send(&data(1, b"x", false)),
        [CEv::Reset(1, ErrorCode::PROTOCOL_ERROR)],
        "8.1 DATA before HEADERS"
    );
    // A POST whose request is still going: the response ended, a DATA more cannot come.
    let mut s = server();
    let post = list(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "b"),
        (":path", "/"),
    ]);
    s.client.open_stream(&post, false).unwrap();
    let head = s.headers(1, &[(":status", "200")], true);
    s.send(&head);
    assert_eq!(
        s.send(&data(1, b"x", false)),
        [CEv::Reset(1, ErrorCode::STREAM_CLOSED)],
        "5.1 half-closed (remote)"
    );
}

#[test]
fn a_header_list_over_our_limit_resets_the_stream_and_keeps_hpack_in_step() {
    let mut s = with_get();
    let value = "v".repeat(60);
    let over = Limits::default().max_header_list_size as usize / (5 + 60 + 32) + 1;
    let mut fields = vec![(":status", "200")];
    fields.extend(std::iter::repeat_n(("x-big", value.as_str()), over));
    let block = s.headers(1, &fields, true);
    assert_eq!(
        s.send(&block),
        [CEv::Reset(1, ErrorCode::ENHANCE_YOUR_CALM)]
    );
    // The next response refers to the table entries the refused one added.
    s.client.open_stream(&get("/"), true).unwrap();
    let block = s.headers(3, &[(":status", "200"), ("x-big", value.as_str())], true);
    assert!(matches!(
        s.send(&block)[..],
        [CEv::Response { stream: 3, .. }]
    ));
    assert_eq!(s.failed, None);
}

#[test]
fn the_servers_settings_shape_what_the_client_sends() {
    let mut s = RawServer::new(
        Limits::default(),
        &[
            (id::MAX_CONCURRENT_STREAMS, 1),
            (id::INITIAL_WINDOW_SIZE, 10),
        ],
    );
    assert_eq!(s.client.can_open(), 1);
    let post = list(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "b"),
        (":path", "/"),
    ]);
    let id = s.client.open_stream(&post, false).unwrap();
    assert_eq!(s.client.send_data(id, &[b'x'; 100], true, s.now), Ok(10));
    assert_eq!(s.client.send_data(id, &[b'x'; 90], true, s.now), Ok(0));
    assert_eq!(s.client.stalled_since(id), Some(s.now));
    let events = s.send(&settings(&[
        (id::INITIAL_WINDOW_SIZE, 100),
        (id::MAX_CONCURRENT_STREAMS, 2),
    ]));
    assert_eq!(events, [CEv::Settings]);
    assert_eq!(s.client.can_open(), 1);
    assert_eq!(s.client.send_data(id, &[b'x'; 90], true, s.now), Ok(90));
    let sent: Vec<_> = s
        .frames()
        .into_iter()
        .map(|f| (f.kind, f.flags, f.payload.len()))
        .collect();
    assert_eq!(
        sent,
        [
            (kind::HEADERS, flag::END_HEADERS, sent[0].2),
            (kind::DATA, 0, 10),
            (kind::SETTINGS, flag::ACK, 0),
            (kind::DATA, flag::END_STREAM, 90),
        ]
    );
}

fn goaway(last_stream: u32, code: ErrorCode) -> Vec<u8> {
    let mut out = Vec::new();
    crate::h2::frame::encode_goaway(&mut out, last_stream, code, b"");
    out
}

#[test]
fn a_goaway_alone_refuses_the_streams_above_its_last() {
    let mut s = server();
    for want in [1, 3, 5, 7] {
        assert_eq!(s.client.open_stream(&get("/"), true), Ok(want));
    }
    assert_eq!(
        s.send(&goaway(5, ErrorCode::NO_ERROR)),
        [
            CEv::GoAway(5, ErrorCode::NO_ERROR),
            CEv::Reset(7, ErrorCode::REFUSED_STREAM)
        ]
    );
    // A second GOAWAY may only lower the last stream (§6.8).
    assert_eq!(
        s.send(&goaway(1, ErrorCode::NO_ERROR)),
        [
            CEv::GoAway(1, ErrorCode::NO_ERROR),
            CEv::Reset(3, ErrorCode::REFUSED_STREAM),
            CEv::Reset(5, ErrorCode::REFUSED_STREAM)
        ]
    );
    assert_eq!(s.client.state(), State::Draining { last_stream: 1 });
    let done = s.headers(1, &[(":status", "204")], true);
    assert!(matches!(s.send(&done)[..], [CEv::Response { .. }]));
    assert_eq!(s.client.state(), State::Closed);
    assert_eq!(s.errors(), [], "nothing to reset: the server forgot them");
}
