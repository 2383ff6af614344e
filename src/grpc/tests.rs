use std::time::{Duration, Instant};

use super::health::{HealthCall, Verdict};
use super::message::{MAX_RESPONSE, MessageError, ServingStatus, decode_response, encode_request};
use super::{is_grpc_content_type, timeout};
use crate::h2::error::ErrorCode;
use crate::h2::frame;
use crate::h2::hpack::Encoder;

#[test]
fn timeout_units() {
    let p = |s: &str| timeout::parse(s.as_bytes());
    assert_eq!(p("100m"), Some(Duration::from_millis(100)));
    assert_eq!(p("1H"), Some(Duration::from_secs(3600)));
    assert_eq!(p("2M"), Some(Duration::from_secs(120)));
    assert_eq!(p("3S"), Some(Duration::from_secs(3)));
    assert_eq!(p("5u"), Some(Duration::from_micros(5)));
    assert_eq!(p("7n"), Some(Duration::from_nanos(7)));
    assert_eq!(p("0m"), Some(Duration::ZERO));
    assert_eq!(p("99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
}

#[test]
fn timeout_grammar_refused() {
    for bad in [
        "",
        "m",
        "S",
        "123456789m",
        "10x",
        "10h",
        "-1S",
        "+1S",
        "1 S",
        " 1S",
        "1S ",
        "1.5S",
        "１S",
    ] {
        assert_eq!(timeout::parse(bad.as_bytes()), None, "{bad:?}");
    }
}

#[test]
fn grpc_content_types() {
    for yes in [
        "application/grpc",
        "application/grpc+proto",
        "Application/GRPC+json",
        "application/grpc; charset=utf-8",
    ] {
        assert!(is_grpc_content_type(yes.as_bytes()), "{yes}");
    }
    for no in [
        "application/grpcx",
        "application/grp",
        "application/json",
        "",
    ] {
        assert!(!is_grpc_content_type(no.as_bytes()), "{no}");
    }
}

#[test]
fn request_encoding() {
    let mut out = Vec::new();
    encode_request("", &mut out);
    assert_eq!(out, [0, 0, 0, 0, 0]);
    out.clear();
    encode_request("svc", &mut out);
    assert_eq!(out, b"\0\0\0\0\x05\x0a\x03svc");
    out.clear();
    let long = "a".repeat(200);
    encode_request(&long, &mut out);
    // 200 needs a two-byte varint: 0xc8 0x01.
    assert_eq!(&out[..8], b"\0\0\0\0\xcb\x0a\xc8\x01");
    assert_eq!(out.len(), 5 + 3 + 200);
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn response_statuses() {
    assert_eq!(
        decode_response(&framed(&[0x08, 1])),
        Ok(ServingStatus::Serving)
    );
    assert_eq!(
        decode_response(&framed(&[0x08, 2])),
        Ok(ServingStatus::NotServing)
    );
    assert_eq!(
        decode_response(&framed(&[0x08, 3])),
        Ok(ServingStatus::ServiceUnknown)
    );
    assert_eq!(
        decode_response(&framed(&[0x08, 9])),
        Ok(ServingStatus::Other(9))
    );
    // Proto3 leaves the default, UNKNOWN, out.
    assert_eq!(decode_response(&framed(&[])), Ok(ServingStatus::Unknown));
    // The last value of a field wins.
    assert_eq!(
        decode_response(&framed(&[0x08, 2, 0x08, 1])),
        Ok(ServingStatus::Serving)
    );
}

#[test]
fn response_unknown_fields_skipped() {
    let body = [
        0x12, 2, b'h', b'i', // field 2, a string
        0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3, fixed64
        0x25, 1, 2, 3, 4, // field 4, fixed32
        0x28, 0xff, 0x01, // field 5, a varint
        0x08, 1,
    ];
    assert_eq!(decode_response(&framed(&body)), Ok(ServingStatus::Serving));
}

#[test]
fn response_short_trailing_compressed_oversized() {
    assert_eq!(decode_response(&[0, 0, 0]), Err(MessageError::Short));
    assert_eq!(
        decode_response(&[0, 0, 0, 0, 3, 0x08, 1]),
        Err(MessageError::Short)
    );
    assert_eq!(
        decode_response(&[0, 0, 0, 0, 1, 0x08, 1]),
        Err(MessageError::Trailing)
    );
    assert_eq!(
        decode_response(&[1, 0, 0, 0, 2, 0x08, 1]),
        Err(MessageError::Compressed)
    );
    assert!(matches!(
        decode_response(&[2, 0, 0, 0, 2, 0x08, 1]),
        Err(MessageError::Malformed(_))
    ));
    // The limit: MAX_RESPONSE is read, one byte more is refused before it arrives.
    let mut at_limit = vec![0x12, 0xfb, 0x01];
    at_limit.resize(MAX_RESPONSE - 2, b'x');
    at_limit.extend_from_slice(&[0x08, 1]);
    assert_eq!(
        decode_response(&framed(&at_limit)),
        Ok(ServingStatus::Serving)
    );
    let too_long = (MAX_RESPONSE as u32 + 1).to_be_bytes();
    let prefix = [0, too_long[0], too_long[1], too_long[2], too_long[3]];
    assert_eq!(decode_response(&prefix), Err(MessageError::TooLarge));
    assert_eq!(
        decode_response(&[0, 0xff, 0xff, 0xff, 0xff]),
        Err(MessageError::TooLarge)
    );
}

#[test]
fn response_malformed_protobuf() {
    for body in [
        &[0x08][..],   // status without its value
        &[0x08, 0x80], // varint cut short
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ], // 11 bytes
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ], // over 64 bits
        &[0x0a, 1, 1], // status as a string
        &[0x00, 1],    // field 0
        &[0x1b],       // a group (wire type 3)
        &[0x12, 5, 1], // a string longer than the message
        &[0x19, 1, 2], // fixed64 cut short
        &[
            0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ], // huge length
    ] {
        assert!(
            matches!(
                decode_response(&framed(body)),
                Err(MessageError::Malformed(_))
            ),
            "{body:?}"
        );
    }
}

/// A backend's side of the call: frames written by hand.
struct Backend {
    encoder: Encoder,
    out: Vec<u8>,
}

impl Backend {
    fn new() -> Self {
        let mut out = Vec::new();
        frame::encode_settings(&mut out, &[]);
        Backend {
            encoder: Encoder::new(),
            out,
        }
    }

    fn headers(mut self, fields: &[(&str, &str)], end_stream: bool) -> Self {
        let mut block = Vec::new();
        self.encoder.encode(
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &mut block,
        );
        frame::encode_headers(&mut self.out, 1, &block, end_stream, 16_384);
        self
    }

    fn ok(self) -> Self {
        self.headers(
            &[(":status", "200"), ("content-type", "application/grpc")],
            false,
        )
    }

    fn data(mut self, bytes: &[u8], end_stream: bool) -> Self {
        frame::encode_data(&mut self.out, 1, bytes, end_stream);
        self
    }

    fn status(self, code: &str) -> Self {
        self.headers(&[("grpc-status", code)], true)
    }
}

fn call() -> HealthCall {
    HealthCall::new("backend:50051", "", Instant::now()).unwrap()
}

fn verdict(backend: Backend) -> Verdict {
    let (_, verdict) = call().receive(&backend.out, Instant::now());
    verdict.expect("a verdict")
}

fn serving() -> Backend {
    Backend::new()
        .ok()
        .data(&framed(&[0x08, 1]), false)
        .status("0")
}

#[test]
fn call_sends_preface_headers_and_request() {
    let mut out = Vec::new();
    let mut c = call();
    assert!(c.has_output());
    c.take_output(&mut out);
    assert!(out.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    // The last frame: DATA, END_STREAM, stream 1, an empty HealthCheckRequest.
    assert!(out.ends_with(&[0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]));
}

#[test]
fn call_serving_passes() {
    assert_eq!(verdict(serving()), Ok(()));
}

#[test]
fn call_fed_byte_by_byte() {
    let mut c = call();
    let mut input = Vec::new();
    for b in serving().out {
        input.push(b);
        let (used, verdict) = c.receive(&input, Instant::now());
        input.drain(..used);
        if let Some(v) = verdict {
            assert_eq!(v, Ok(()));
            return;
        }
    }
    panic!("no verdict");
}

#[test]
fn call_message_split_across_frames() {
    let m = framed(&[0x08, 1]);
    let b = Backend::new()
        .ok()
        .data(&m[..3], false)
        .data(&m[3..], false)
        .status("0");
    assert_eq!(verdict(b), Ok(()));
}

#[test]
fn call_failures() {
    let not_serving = Backend::new()
        .ok()
        .data(&framed(&[0x08, 2]), false)
        .status("0");
    assert_eq!(
        verdict(not_serving),
        Err("health status NOT_SERVING".into())
    );
    let trailers_only = Backend::new().headers(
        &[
            (":status", "200"),
            ("grpc-status", "12"),
            ("grpc-message", "unimplemented"),
        ],
        true,
    );
    assert_eq!(
        verdict(trailers_only),
        Err("grpc-status 12: unimplemented".into())
    );
    let ok_without_message =
        Backend::new().headers(&[(":status", "200"), ("grpc-status", "0")], true);
    assert_eq!(
        verdict(ok_without_message),
        Err("no HealthCheckResponse".into())
    );
    let http_error = Backend::new().headers(&[(":status", "503")], true);
    assert_eq!(verdict(http_error), Err("HTTP status 503".into()));
    let grpc_error = Backend::new()
        .ok()
        .data(&framed(&[0x08, 1]), false)
        .status("14");
    assert_eq!(verdict(grpc_error), Err("grpc-status 14".into()));
    let no_status = Backend::new()
        .ok()
        .data(&framed(&[0x08, 1]), false)
        .headers(&[("x", "y")], true);
    assert_eq!(verdict(no_status), Err("no grpc-status".into()));
    let no_trailers = Backend::new().ok().data(&framed(&[0x08, 1]), true);
    assert_eq!(
        verdict(no_trailers),
        Err("the response ended without grpc-status".into())
    );
    let mut reset = Backend::new().ok();
    frame::encode_rst_stream(&mut reset.out, 1, ErrorCode::INTERNAL_ERROR);
    assert_eq!(verdict(reset), Err("stream reset (INTERNAL_ERROR)".into()));
}

#[test]
fn call_bounds_the_message() {
    // A prefix announcing more than MAX_RESPONSE fails before the body comes.
    let big = Backend::new().ok().data(&[0, 0, 0, 0x10, 0], false);
    assert_eq!(verdict(big), Err(MessageError::TooLarge.to_string()));
    // A second message behind the first.
    let mut two = framed(&[0x08, 1]);
    two.extend_from_slice(&framed(&[0x08, 1]));
    let b = Backend::new().ok().data(&two, false).status("0");
    assert_eq!(verdict(b), Err(MessageError::Trailing.to_string()));
    // One full-size message and a byte more: the byte is not held.
    let mut full = framed(&vec![0x20; MAX_RESPONSE]);
    full.push(0);
    let b = Backend::new().ok().data(&full, false);
    assert_eq!(verdict(b), Err(MessageError::TooLarge.to_string()));
    let compressed = Backend::new().ok().data(&[1, 0, 0, 0, 2, 0x08, 1], false);
    assert_eq!(
        verdict(compressed),
        Err(MessageError::Compressed.to_string())
    );
}

#[test]
fn call_refuses_http1() {
    let mut b = Backend::new();
    b.out = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let v = verdict(b);
    assert!(
        v.as_ref()
            .is_err_and(|why| why.starts_with("HTTP/2 connection error")),
        "{v:?}"
    );
}

#[test]
fn call_fields() {
    let mut f = super::CallFields::default();
    assert!(!f.read("host", b"x"));
    assert!(f.read("Content-Type", b"application/grpc+proto"));
    assert!(f.grpc);
    assert!(f.read("grpc-timeout", b" 10S "));
    assert!(f.read("grpc-timeout", b"200m"));
    assert!(f.read("grpc-timeout", b"1H"));
    // A bad one is no deadline: the tightest good one stands.
    assert!(f.read("grpc-timeout", b"1000000000n"));
    assert_eq!(f.deadline, Some(Duration::from_millis(200)));
    let now = Instant::now();
    assert_eq!(f.deadline_from(now), Some(now + Duration::from_millis(200)));
    assert_eq!(super::CallFields::default().deadline_from(now), None);
    f.read("content-type", b"application/json");
    assert!(!f.grpc);
}
